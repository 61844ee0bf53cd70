//! `GET /metrics`: the node's numbers as Prometheus/OpenMetrics text, built fresh from the
//! snapshot and the network view on every scrape (no global registry, so several nodes can
//! share a process).

use crate::node::P2pView;
use crate::node::Snapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

fn gauge(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let g: Gauge<i64> = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter<u64> = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

/// The exposition text.
pub fn render(s: &Snapshot, p2p: Option<&P2pView>, api_streams: u64) -> String {
    let mut reg = Registry::with_prefix("chaintui");
    gauge(
        &mut reg,
        "api_streams",
        "Event streams and long polls open on the API",
        api_streams,
    );
    gauge(
        &mut reg,
        "height",
        "Height of the active chain's tip",
        s.height,
    );
    gauge(
        &mut reg,
        "peers",
        "Connected peers",
        p2p.map_or(0, |v| v.peers.len() as u64),
    );
    gauge(
        &mut reg,
        "bans",
        "Active bans",
        p2p.map_or(0, |v| v.bans.len() as u64),
    );
    gauge(
        &mut reg,
        "mempool_transactions",
        "Transactions in the mempool",
        s.mempool_count as u64,
    );
    gauge(
        &mut reg,
        "mempool_bytes",
        "Bytes of transactions in the mempool",
        s.mempool_bytes as u64,
    );
    gauge(
        &mut reg,
        "hashrate",
        "Local hashes per second over the last second",
        s.hashrate,
    );
    gauge(
        &mut reg,
        "mining_threads",
        "Mining threads (0: not mining)",
        s.mining_threads as u64,
    );
    gauge(
        &mut reg,
        "orphans",
        "Blocks waiting for their parent",
        s.orphans as u64,
    );
    counter(
        &mut reg,
        "blocks_connected",
        "Blocks connected to the active chain since start",
        s.blocks_connected,
    );
    counter(
        &mut reg,
        "blocks_rejected",
        "Invalid blocks refused since start",
        s.blocks_rejected,
    );
    counter(
        &mut reg,
        "transactions_accepted",
        "Transactions accepted into the mempool since start",
        s.txs_accepted,
    );
    let mut out = String::new();
    if encode(&mut out, &reg).is_err() {
        out = "# metrics could not be encoded\n".into();
    }
    out
}
