//! Nonce-scanning speed of every mining kernel this CPU supports (fastest first), on a header
//! no hash can solve. Run with `cargo bench --bench kernels`.

mod common;

use chain_tui::core::pow::{Target, U256};
use chain_tui::node::miner::kernel::{HeaderJob, available, select};
use common::bench_header;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// Nonces per measured scan (a multiple of every lane width).
const NONCES: u64 = 1 << 14;

fn kernels(c: &mut Criterion) {
    let header = bench_header();
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
