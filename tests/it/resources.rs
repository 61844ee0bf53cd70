//! Resources that must not grow with the chain (issue 11, "resources over time"). The long
//! curves are `chain-tui bench soak`; these tests pin the mechanisms.

use chain_tui::core::params::Network;
use chain_tui::storage::{CACHE_BYTES, Store};

/// redb's page cache filled with every page it read or wrote until its 1 GiB default: a node's
/// resident memory grew with its chain store. It is now bounded by [`CACHE_BYTES`].
#[test]
fn the_store_page_cache_stays_bounded_as_the_store_grows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("chain.redb"), Network::Regtest).expect("open");
    // Twice the bound in 1 MiB records, written in a few transactions and read back.
    let record = vec![0x5au8; 1 << 20];
    let per_tx = 8;
    let txs = (2 * CACHE_BYTES).div_ceil(per_tx << 20);
    for t in 0..txs {
        let records: Vec<(String, Vec<u8>)> = (0..per_tx)
            .map(|i| (format!("load{t:03}:{i}"), record.clone()))
            .collect();
        store
            .write(false, |b| {
                b.put_net_records(&format!("load{t:03}:"), &records)
            })
            .expect("write");
        assert!(
            store.cache_bytes() <= CACHE_BYTES,
            "after {} MiB written the cache holds {} MiB",
            (t + 1) * per_tx,
            store.cache_bytes() >> 20
        );
    }
    store.flush().expect("flush");
    let read = store
        .read()
        .and_then(|r| r.net_records("load"))
        .expect("read back");
    assert_eq!(read.len(), txs * per_tx);
    assert!(read.iter().all(|(_, v)| *v == record));
    let cached = store.cache_bytes();
    assert!(cached > 0, "the cache figure is measured");
    assert!(
        cached <= CACHE_BYTES,
        "{} MiB cached after reading {} MiB back, bound {} MiB",
        cached >> 20,
        read.len(),
        CACHE_BYTES >> 20
    );
}
