//! Logging while the dashboard owns the terminal: nothing goes to stdout or stderr. Events go to
//! `DATA_DIR/chain-tui.log` (tracing-appender, non-blocking) and into an in-memory ring of the
//! last [`CAPACITY`] lines that the Log pane shows.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::sync::Notify;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines the ring keeps.
pub const CAPACITY: usize = 500;

/// The last log lines, and a wake-up for the dashboard when one arrives.
pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
    /// Lines pushed so far, so a reader copies the ring only when it changed.
    pushed: AtomicU64,
    notify: Notify,
}

impl LogRing {
    fn new() -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            pushed: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    pub fn push(&self, line: String) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() == CAPACITY {
                l.pop_front();
            }
            l.push_back(line);
            self.pushed.fetch_add(1, Ordering::Release);
        }
        self.notify.notify_one();
    }

    /// How many lines were ever pushed: when it has not moved, [`LogRing::last`] would return
    /// the same lines as before.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
    }

    /// The newest `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().skip(l.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }

    /// Resolves when a line was pushed since the last call.
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

/// The process-wide ring (the Log pane reads it; the layer writes it).
pub fn ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(LogRing::new)
}

/// A tracing layer that formats each event as one line into [`ring`].
pub struct RingLayer;

struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields {
            message: String::new(),
            rest: String::new(),
        };
        event.record(&mut f);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            % 86_400;
        let meta = event.metadata();
        let target = meta
            .target()
            .strip_prefix("chain_tui::")
            .unwrap_or(meta.target());
        ring().push(format!(
            "{:02}:{:02}:{:02} {:>5} {target}: {}{}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            meta.level(),
            f.message,
            f.rest
        ));
    }
}

/// Install the dashboard's logging: the file in `data_dir` and the ring. Keep the returned
/// guard alive until exit (it flushes the file writer).
pub fn init(
    data_dir: &Path,
    filter: tracing_subscriber::EnvFilter,
) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    init_file(data_dir, "chain-tui.log", filter)
}

/// As [`init`], to the file `name` in `data_dir`.
pub fn init_file(
    data_dir: &Path,
    name: &str,
    filter: tracing_subscriber::EnvFilter,
) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    crate::fsutil::create_private_dir(data_dir)?;
    // Open the file now, so an unwritable data dir fails before the terminal is taken.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(name))?;
    let appender = tracing_appender::rolling::never(data_dir, name);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false),
        )
        .with(RingLayer)
        .try_init();
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_lines() {
        let r = LogRing::new();
        for i in 0..CAPACITY + 10 {
            r.push(format!("line {i}"));
        }
        let last = r.last(3);
        assert_eq!(
            last,
            vec![
                format!("line {}", CAPACITY + 7),
                format!("line {}", CAPACITY + 8),
                format!("line {}", CAPACITY + 9)
            ]
        );
        assert_eq!(r.last(10_000).len(), CAPACITY);
        assert_eq!(r.pushed(), (CAPACITY + 10) as u64);
    }
}
