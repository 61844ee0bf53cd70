//! `chain-tui bench events`: how soon a new block reaches the clients of `GET /events`. A
//! regtest node with its API on 127.0.0.1 has L clients reading its event stream over HTTP; it
//! mines B blocks, one at a time, and each delivery is timed from the node's own announcement
//! of the block's commit (its event stream, read in this process on the same clock) to the
//! moment a client has read that block's `block_connected` event.

use crate::core::address::Address;
use crate::core::hash::BlockHash;
use crate::core::params::Network;
use crate::node::{NodeConfig, NodeEvent};
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What one run measured.
#[derive(Clone, Debug)]
pub struct EventsBench {
    pub listeners: usize,
    pub blocks: usize,
    /// Deliveries timed (listeners × blocks when none was lost).
    pub deliveries: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

/// A client of the stream: every `block_connected` it reads, with when it read it.
async fn listen(
    api: crate::api::client::ApiClient,
    seen: mpsc::UnboundedSender<(String, Instant)>,
) -> anyhow::Result<()> {
    use crate::api::client::Streamed;
    use crate::api::events::Event;
    let mut stream = api.events(None).await?;
    while let Some(item) = stream.next().await? {
        let now = Instant::now();
        if let Streamed::Event(_, Event::BlockConnected(b)) = item
            && seen.send((b.hash, now)).is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Run the benchmark in `dir` (a fresh temporary directory).
pub async fn run(dir: &Path, listeners: usize, blocks: usize) -> anyhow::Result<EventsBench> {
    let services = Services::start(ServicesConfig {
        node: NodeConfig::new(dir, Network::Regtest),
        p2p: None,
        api: Some(ApiSetup {
            addr: "127.0.0.1:0".parse()?,
            limits: crate::api::ApiLimits {
                max_streams: listeners.max(1),
                max_connections: (listeners * 4).max(512),
                ..Default::default()
            },
            wallet: Err("the events benchmark runs without a wallet".into()),
            mine_threads: 1,
        }),
    })
    .await?;
    let result = measure(&services, listeners, blocks).await;
    services.shutdown().await?;
    result
}

async fn measure(
    services: &Services,
    listeners: usize,
    blocks: usize,
) -> anyhow::Result<EventsBench> {
    let api = services
        .api()
        .ok_or_else(|| anyhow::anyhow!("the API did not start"))?
        .addr();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let (client, _) = crate::api::client::ApiClient::remote(&format!("http://{api}"), None)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for _ in 0..listeners {
        tasks.push(tokio::spawn(listen(client.clone(), tx.clone())));
    }
    drop(tx);
    // Every listener's stream is open (the API counts them in /metrics).
    let started = Instant::now();
    loop {
        let text = http
            .get(format!("http://{api}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let open = text
            .lines()
            .find_map(|l| l.strip_prefix("chaintui_api_streams "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if open >= listeners {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "only {open} of {listeners} listeners connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = &services.node;
    // The commit as the node announces it, read as it comes (the API's event log reads the
    // same announcements).
    let committed: Arc<Mutex<HashMap<BlockHash, Instant>>> = Arc::default();
    let mut events = node.events();
    let log = committed.clone();
    let announcements = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let NodeEvent::BlockConnected { hash, .. } = e {
                let now = Instant::now();
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, now);
            }
        }
    });
    let to = Address::from_hash([1; 20]);
    let mut delays = Vec::with_capacity(listeners * blocks);
    for _ in 0..blocks {
        let mined = node.mine_blocks(1, 1, to).await?;
        let hash = *mined
            .first()
            .ok_or_else(|| anyhow::anyhow!("no block mined"))?;
        let at = Instant::now();
        let commit = loop {
            if let Some(c) = committed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&hash)
            {
                break *c;
            }
            anyhow::ensure!(
                at.elapsed() < Duration::from_secs(10),
                "block {hash} was never announced"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        // Every listener's copy of it.
        let mut got = 0;
        while got < listeners {
            let Ok(Some((h, at))) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await
            else {
                anyhow::bail!("{got} of {listeners} listeners read block {hash}");
            };
            if h == hash.to_string() {
                delays.push(at.saturating_duration_since(commit).as_secs_f64() * 1000.0);
                got += 1;
            }
        }
        // A breath between blocks, so that each is timed on its own.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.abort();
    }
    announcements.abort();
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    Ok(EventsBench {
        listeners,
        blocks,
        deliveries: delays.len(),
        median_ms: at(0.5),
        p90_ms: at(0.9),
        max_ms: at(1.0),
    })
}
