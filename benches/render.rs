//! Time to draw a full dashboard frame, the Chain pane scrolled to the middle of a
//! 100,000-block chain, and a block's view at 200×50 (the budget is 0.5 ms) from the fixed
//! state the snapshot tests use, on ratatui's `TestBackend`. Run with `cargo bench --bench
//! render`. `examples/render_frames.rs` draws the same frame N times for callgrind.

use chain_tui::tui::{draw, fixture};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::time::Duration;

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let app = fixture::demo_app();
    let mut t = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    g.bench_function("dashboard_200x50", |b| {
        b.iter(|| t.draw(|f| draw(f, black_box(&app))).map(|_| ()))
    });
    // The same with the Log pane full (the live dashboard keeps the last 200 lines).
    let mut busy = fixture::demo_app();
    busy.logs = fixture::log_lines(200);
    g.bench_function("dashboard_200x50_full_log", |b| {
        b.iter(|| t.draw(|f| draw(f, black_box(&busy))).map(|_| ()))
    });
    // The Chain pane zoomed and scrolled to the middle of a 100,000-block chain (the rows it
    // shows come from its page cache, as in the live dashboard), and a block's view.
    let mut mid = fixture::demo_app();
    mid.snapshot.height = 100_000;
    mid.zoomed = true;
    mid.chain_sel = Some(50_000);
    mid.chain_top = Some(50_020);
    mid.on_chain_rows(fixture::chain_rows(50_064, 128));
    g.bench_function("chain_pane_200x50_mid_100k", |b| {
        b.iter(|| t.draw(|f| draw(f, black_box(&mid))).map(|_| ()))
    });
    let mut block = fixture::demo_app();
    block.on_block(Ok(fixture::block_detail()));
    g.bench_function("block_view_200x50", |b| {
        b.iter(|| t.draw(|f| draw(f, black_box(&block))).map(|_| ()))
    });
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
