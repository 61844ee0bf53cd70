//! A program in a pseudo-terminal (portable-pty), its screen parsed by vt100: the dashboard's
//! end-to-end tests (`tests/it/tui.rs`) and its idle and scrolling benchmark
//! (`benches/dashboard.rs`) drive chain-tui through it as a person at a terminal would.
#![allow(dead_code)]

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Tui {
    pub parser: Arc<Mutex<vt100::Parser>>,
    /// Text the program put on the clipboard with OSC 52 (base64-decoded), oldest first.
    pub clipboard: Arc<Mutex<Vec<String>>>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: Option<std::thread::JoinHandle<()>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Tui {
    /// Run `bin` with `args` in a `rows`×`cols` terminal (chain-tui's environment variables
    /// cleared), reading its screen on a thread.
    pub fn start(bin: &str, args: &[&str], rows: u16, cols: u16) -> Tui {
        Tui::start_with(bin, args, &[], rows, cols)
    }

    /// [`Tui::start`] with these environment variables set too.
    pub fn start_with(
        bin: &str,
        args: &[&str],
        env: &[(&str, &std::path::Path)],
        rows: u16,
        cols: u16,
    ) -> Tui {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        for v in [
            "CHAIN_TUI_DATA_DIR",
            "CHAIN_TUI_NETWORK",
            "CHAIN_TUI_PASSPHRASE",
            "RUST_LOG",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn chain-tui");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows.max(1)).unwrap(),
            std::num::NonZeroU16::new(cols.max(1)).unwrap(),
            0,
        )));
        let p = parser.clone();
        let clipboard = Arc::new(Mutex::new(Vec::new()));
        let clip = clipboard.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        clip.lock().unwrap().extend(osc52(&buf[..n]));
                        p.lock().unwrap().process(&buf[..n]);
                    }
                }
            }
        });
        Tui {
            parser,
            clipboard,
            writer,
            child,
            reader: Some(reader),
            _master: pair.master,
        }
    }

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    pub fn send(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Type text a character at a time (as a person would).
    pub fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            self.send(&c.to_string());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn wait_for(&mut self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let t = self.text();
            if ok(&t) {
                return t;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{t}");
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("chain-tui exited ({st:?}) while waiting for {what}; screen:\n{t}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Wait for exit; the status and whether the screen was restored.
pub fn wait_exit(tui: &mut Tui, what: &str) -> (portable_pty::ExitStatus, bool, bool) {
    let start = Instant::now();
    let status = loop {
        if let Some(st) = tui.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chain-tui did not exit after {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(r) = tui.reader.take() {
        // The reader ends when the terminal closes; don't hang if it doesn't.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let p = tui.parser.lock().unwrap();
    (
        status,
        !p.screen().alternate_screen(),
        !p.screen().hide_cursor(),
    )
}

/// The texts of the OSC 52 clipboard sequences (`ESC ] 52 ; c ; BASE64 BEL`) in `bytes`.
fn osc52(bytes: &[u8]) -> Vec<String> {
    use base64::Engine;
    let start = b"\x1b]52;c;";
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(start.len()).position(|w| w == start) {
        rest = &rest[i + start.len()..];
        let Some(end) = rest.iter().position(|b| *b == 0x07) else {
            break;
        };
        if let Ok(text) = base64::engine::general_purpose::STANDARD.decode(&rest[..end]) {
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
        rest = &rest[end..];
    }
    out
}
