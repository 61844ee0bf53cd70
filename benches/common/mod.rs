//! What more than one benchmark uses.

use chain_tui::core::block::BlockHeader;
use chain_tui::core::hash::{BlockHash, MerkleRoot};
use chain_tui::core::pow::CompactTarget;

/// A header to scan nonces on; the benchmarks pair it with a target no hash meets.
pub fn bench_header() -> BlockHeader {
    BlockHeader {
        version: 1,
        prev: BlockHash([7; 32]),
        merkle_root: MerkleRoot([9; 32]),
        time: 1,
        bits: CompactTarget(0x0300_0001),
        nonce: 0,
    }
}
