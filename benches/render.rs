//! Time to draw a full dashboard frame at 200×50 (the budget is 0.5 ms) from the fixed
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
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
