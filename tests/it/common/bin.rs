//! The real `chain-tui` binary, run as a user runs it: none of the caller's own `CHAIN_TUI_*`
//! or `RUST_LOG` variables, stdin closed, bounded in time, with what it printed collected. The
//! CLI, crash, local-file, store-damage, API and dashboard tests all start it through here.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chain-tui");

/// No single one-shot command may take longer than this.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What one finished run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Removes the caller's `CHAIN_TUI_*` and `RUST_LOG` variables from `cmd` and closes its stdin.
pub fn clean(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CHAIN_TUI_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("RUST_LOG").stdin(Stdio::null())
}

/// `chain-tui` in a clean environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    clean(&mut cmd);
    cmd
}

/// `chain-tui --network regtest --data-dir DIR` in a clean environment.
pub fn regtest(dir: impl AsRef<OsStr>) -> Command {
    let mut cmd = command();
    cmd.args(["--network", "regtest", "--data-dir"]).arg(dir);
    cmd
}

/// `chain-tui --network regtest --data-dir DIR` started by `sh -c 'PRELUDE; exec chain-tui …'`,
/// for a limit or mask set in the child only (`ulimit -n 1024`, `umask 000`).
pub fn regtest_after(prelude: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    clean(&mut cmd);
    cmd.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(["--network", "regtest", "--data-dir"])
        .arg(dir);
    cmd
}

/// Runs `cmd` to its end within [`RUN_LIMIT`], with what it printed. A run that hangs or
/// panics fails the test.
pub fn run(cmd: &mut Command) -> Out {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start chain-tui");
    let out = finish(child, RUN_LIMIT)
        .unwrap_or_else(|| panic!("{cmd:?} did not finish within {RUN_LIMIT:?}"));
    assert!(
        !out.stderr.contains("panicked"),
        "{cmd:?} panicked: {out:?}"
    );
    out
}

/// Waits for `child` (stdout and stderr piped) to exit within `limit`, with what it printed;
/// `None`, and the child killed, if it was still running then.
pub fn finish(mut child: Child, limit: Duration) -> Option<Out> {
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = wait(&mut child, limit);
    let stdout = t_out.join().expect("stdout reader");
    let stderr = t_err.join().expect("stderr reader");
    status.map(|st| Out {
        code: st.code(),
        stdout,
        stderr,
    })
}

/// Waits for `child` to exit within `limit`; `None`, and the child killed, if it had not.
pub fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait for chain-tui") {
            return Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running `chain-tui … node` child: ready once it has written `node.json` in its data dir;
/// killed on drop.
pub struct NodeProcess {
    pub child: Child,
    pub dir: PathBuf,
}

impl NodeProcess {
    /// `chain-tui --network regtest --data-dir DIR node` with its peers and its API on
    /// 127.0.0.1:0 and one mining thread (its log dropped).
    pub fn regtest(dir: &Path) -> NodeProcess {
        NodeProcess::start(
            regtest(dir)
                .args([
                    "node",
                    "--listen",
                    "127.0.0.1:0",
                    "--api",
                    "127.0.0.1:0",
                    "--threads",
                    "1",
                ])
                .stderr(Stdio::null()),
            dir,
        )
    }

    /// Starts `cmd`, a `chain-tui … node` on data dir `dir` (stdout dropped, stderr where
    /// `cmd` sends it), and waits at most 30 s for `dir/node.json`. A node that exits first
    /// fails the test.
    pub fn start(cmd: &mut Command, dir: &Path) -> NodeProcess {
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start chain-tui node");
        NodeProcess::ready(child, dir)
    }

    /// Waits at most 30 s for an already started node to write `dir/node.json`.
    pub fn ready(mut child: Child, dir: &Path) -> NodeProcess {
        let file = dir.join("node.json");
        let start = Instant::now();
        while !file.exists() {
            if let Some(st) = child.try_wait().expect("wait for chain-tui node") {
                panic!("the node exited ({st}) before writing node.json");
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the node wrote no node.json within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        NodeProcess {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// What the node wrote in `node.json`.
    pub fn node_json(&self) -> serde_json::Value {
        let bytes = std::fs::read(self.dir.join("node.json")).expect("read node.json");
        serde_json::from_slice(&bytes).expect("node.json is JSON")
    }

    /// Sends SIGTERM and returns the exit code; the node must stop within 30 s.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let st = wait(&mut self.child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the node did not stop within 30 s of SIGTERM"));
        st.code()
    }

    /// SIGKILL, as a crash or a power cut would stop it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
