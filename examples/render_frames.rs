//! Draw the fixed dashboard frame (`chain_tui::tui::fixture`) N times on a `TestBackend`, for
//! instruction counts that do not depend on the machine's load:
//!
//! ```sh
//! cargo build --release --example render_frames
//! valgrind --tool=callgrind target/release/examples/render_frames 1000   # and 0, to subtract
//! ```
//!
//! Arguments: frames (default 1000), width and height (default 200 50), `full-log` to fill the
//! Log pane with 200 lines.

use chain_tui::tui::{draw, fixture};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (frames, w, h) = (num(0, 1000), num(1, 200) as u16, num(2, 50) as u16);
    let mut app = fixture::demo_app();
    if args.iter().any(|a| a == "full-log") {
        app.logs = fixture::log_lines(200);
    }
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    // One frame outside the count: the first draw writes every cell.
    t.draw(|f| draw(f, &app)).expect("draw");
    for _ in 0..frames {
        t.draw(|f| draw(f, black_box(&app))).expect("draw");
    }
    black_box(t.backend().buffer());
}
