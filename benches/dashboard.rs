//! The live dashboard at rest and while it scrolls: the real binary in a 200×50 pseudo-terminal
//! on a regtest chain of 100,000 blocks whose wallet has 4,000 entries (the last 4,000 blocks
//! pay it). Reports the CPU the whole process uses while nothing happens (share of one core
//! over 30 s; the budget is 0.5 %) and its resident memory while the Chain pane pages from the
//! tip to genesis (it must not grow with the blocks passed).
//!
//! `cargo bench --bench dashboard`. The chain is mined first (a few minutes);
//! `DASHBOARD_BLOCKS`, `DASHBOARD_WALLET` and `DASHBOARD_IDLE_SECS` change its length, the
//! wallet's share and the idle time. Under `cargo test --benches` (no `--bench` argument) it
//! does nothing.

#[path = "../tests/it/pty.rs"]
mod pty;

use chain_tui::core::Address;
use chain_tui::core::params::Network;
use chain_tui::node::{Node, NodeConfig};
use chain_tui::wallet::Wallet;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chain-tui");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mine `blocks` regtest blocks on `dir`, the last `wallet` of them to its wallet.
fn build_chain(dir: &Path, blocks: u64, wallet: u64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let me = Wallet::open_or_create(dir, Network::Regtest, None)
            .expect("wallet")
            .receive_address();
        let node = Node::spawn(NodeConfig::new(dir, Network::Regtest)).expect("node");
        let others = Address::from_hash([7; 20]);
        let t0 = Instant::now();
        let mut done = 0;
        for (count, to) in [
            (blocks.saturating_sub(wallet), others),
            (wallet.min(blocks), me),
        ] {
            let mut left = count;
            while left > 0 {
                let n = left.min(5_000);
                node.mine_blocks(n, 2, to).await.expect("mined");
                left -= n;
                done += n;
                eprintln!(
                    "  mined {done} of {blocks} blocks ({:.0} s)",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        node.shutdown().await.expect("shutdown");
    });
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks as f64 / hz
}

/// Resident memory of a process, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1000.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let blocks = env_num("DASHBOARD_BLOCKS", 100_000);
    let wallet = env_num("DASHBOARD_WALLET", 4_000);
    let idle = env_num("DASHBOARD_IDLE_SECS", 30);
    let tmp = tempfile::tempdir().expect("temp dir");
    // DASHBOARD_DIR keeps the chain between runs (built there once).
    let kept = std::env::var_os("DASHBOARD_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(tmp.path());
    if !dir.join("chain.redb").exists() {
        eprintln!("building a {blocks}-block regtest chain ({wallet} to the wallet)…");
        std::fs::create_dir_all(dir).expect("data dir");
        build_chain(dir, blocks, wallet);
    }

    let mut tui = pty::Tui::start(
        BIN,
        &[
            "--network",
            "regtest",
            "--data-dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--listen",
            "127.0.0.1:0",
        ],
        50,
        200,
    );
    let pid = tui.child.process_id().expect("pid");
    tui.wait_for("the tip", Duration::from_secs(60), |s| {
        s.contains(&format!("height {blocks}")) && s.contains("Wallet")
    });
    // Let start-up work (the wallet scan, the first pages) finish.
    std::thread::sleep(Duration::from_secs(10));
    // Two windows back to back: a one-off burst shows in one only.
    for window in 1..=2 {
        let (c0, t0) = (cpu_secs(pid), Instant::now());
        std::thread::sleep(Duration::from_secs(idle));
        let cpu = (cpu_secs(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
        println!(
            "dashboard_idle_cpu ({window}): {cpu:.2} % of one core over {idle} s ({blocks} blocks, {wallet}-entry wallet, 200×50; budget 0.5 %)"
        );
    }

    // Zoom the Chain pane and page from the tip to genesis, sampling memory as it goes.
    tui.send("z");
    std::thread::sleep(Duration::from_millis(300));
    let at_genesis = |s: &str| s.lines().any(|l| l.starts_with("│0 "));
    let mut samples = vec![rss_mb(pid)];
    let t = Instant::now();
    let mut pages = 0u64;
    while !at_genesis(&tui.text()) && t.elapsed() < Duration::from_secs(600) {
        for _ in 0..20 {
            tui.send("\x1b[6~"); // PageDown
        }
        pages += 20;
        std::thread::sleep(Duration::from_millis(100));
        if pages.is_multiple_of(200) {
            samples.push(rss_mb(pid));
        }
    }
    samples.push(rss_mb(pid));
    assert!(
        at_genesis(&tui.text()),
        "did not reach genesis:\n{}",
        tui.text()
    );
    // A second pass over the whole chain: memory bounded by the store's cache stays put.
    tui.send("g");
    std::thread::sleep(Duration::from_millis(500));
    let mut again = vec![rss_mb(pid)];
    let t2 = Instant::now();
    while !at_genesis(&tui.text()) && t2.elapsed() < Duration::from_secs(600) {
        for _ in 0..20 {
            tui.send("\x1b[6~");
        }
        std::thread::sleep(Duration::from_millis(100));
        again.push(rss_mb(pid));
    }
    let max2 = again.iter().copied().fold(0.0, f64::max);
    let max = samples.iter().copied().fold(0.0, f64::max);
    println!(
        "dashboard_scroll_rss: {:.1} MB at the tip, {max:.1} MB at most, {:.1} MB at genesis after {pages} pages in {:.1} s ({} samples: {})",
        samples[0],
        samples[samples.len() - 1],
        t.elapsed().as_secs_f64(),
        samples.len(),
        samples
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "dashboard_scroll_rss_second_pass: {:.1} MB at the tip, {max2:.1} MB at most",
        again[0]
    );
    tui.send("q");
    let _ = pty::wait_exit(&mut tui, "q");
}
