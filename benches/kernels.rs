//! Nonce-scanning speed of every mining kernel this CPU supports (fastest first), on a header
//! no hash can solve. Run with `cargo bench --bench kernels`.

use chain_tui::core::block::BlockHeader;
use chain_tui::core::hash::{BlockHash, MerkleRoot};
use chain_tui::core::pow::{CompactTarget, Target, U256};
use chain_tui::node::miner::kernel::{HeaderJob, available, select};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// Nonces per measured scan (a multiple of every lane width).
const NONCES: u64 = 1 << 14;

fn kernels(c: &mut Criterion) {
    let header = BlockHeader {
        version: 1,
        prev: BlockHash([7; 32]),
        merkle_root: MerkleRoot([9; 32]),
        time: 1,
        bits: CompactTarget(0x0300_0001),
        nonce: 0,
    };
    let job = HeaderJob::new(&header, &Target(U256::ZERO));
    let mut g = c.benchmark_group("mining_kernels");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(NONCES));
    for name in available() {
        let kernel = select(Some(name)).expect("available kernel");
        let mut start = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                start = start.wrapping_add(NONCES);
                kernel.scan(black_box(&job), black_box(start), NONCES)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
