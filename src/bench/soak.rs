//! `chain-tui bench soak`: resources over time. A regtest node in a temporary data dir mines to
//! its wallet's address with the peer-to-peer layer and the API running, as `chain-tui node
//! --mine` would, and every K blocks the process's resident memory (VmRSS of
//! /proc/self/status), the bytes in redb's page cache and the chain store's file size are
//! recorded, so a curve that grows with the chain shows up; redb's space figures per table
//! close the run.

use crate::core::params::Network;
use crate::node::P2pConfig;
use crate::node::{NodeConfig, NodeError, NodeHandle, store_path};
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use crate::wallet::Wallet;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Stop at this height.
    pub blocks: u64,
    /// Stop after this long, whatever the height.
    pub seconds: Option<f64>,
    /// A sample every this many blocks.
    pub every: u64,
    /// Mining threads.
    pub threads: usize,
    /// Blocks before the memory curve counts (caches filling up, the allocator settling).
    pub warmup: u64,
}

/// One point of the curves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoakSample {
    pub height: u64,
    pub seconds: f64,
    /// Resident memory of the process (`None` where /proc/self/status is missing).
    pub rss_bytes: Option<u64>,
    /// Length of the chain store's file.
    pub store_bytes: u64,
    /// Bytes in redb's page cache.
    pub cache_bytes: u64,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct SoakReport {
    pub threads: usize,
    pub warmup: u64,
    pub samples: Vec<SoakSample>,
    /// How the store's file is used at the end (one full walk of its trees, after the last
    /// sample, so the walk's reads do not show in the memory curve).
    pub space: Option<crate::node::StoreSpace>,
    /// Why the run stopped early (a time limit, a stalled miner), if it did.
    pub stopped_early: Option<String>,
}

/// Resident memory of this process from /proc/self/status.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

fn sample(node: &NodeHandle, dir: &Path, height: u64, start: Instant) -> SoakSample {
    let store_bytes = std::fs::metadata(store_path(dir))
        .map(|m| m.len())
        .unwrap_or(0);
    SoakSample {
        height,
        seconds: start.elapsed().as_secs_f64(),
        rss_bytes: rss_bytes(),
        store_bytes,
        cache_bytes: node.store_cache_bytes().unwrap_or(0),
    }
}

/// Mine in `dir` (a fresh directory) until `config.blocks` or `config.seconds`, sampling.
pub async fn run(config: &SoakConfig, dir: &Path) -> anyhow::Result<SoakReport> {
    let wallet = Wallet::open_or_create(dir, Network::Regtest, None)
        .map_err(|e| anyhow::anyhow!("cannot create the soak wallet: {e}"))?;
    let address = wallet.receive_address();
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let services = Services::start(ServicesConfig {
        node: NodeConfig::new(dir, Network::Regtest),
        p2p: Some(P2pConfig::new(dir, loopback).into()),
        api: Some(ApiSetup {
            addr: loopback,
            limits: Default::default(),
            wallet: Ok(std::sync::Arc::new(std::sync::Mutex::new(wallet))),
            mine_threads: config.threads,
        }),
    })
    .await?;
    let result = mine_and_sample(config, dir, &services.node, address).await;
    let _ = services.node.set_mining(0, None).await;
    services.shutdown().await?;
    Ok(result?)
}

async fn mine_and_sample(
    config: &SoakConfig,
    dir: &Path,
    node: &NodeHandle,
    address: crate::core::Address,
) -> Result<SoakReport, NodeError> {
    /// A miner that connects no block for this long has stalled.
    const STALL: Duration = Duration::from_secs(60);
    let every = config.every.max(1);
    let start = Instant::now();
    let deadline = config
        .seconds
        .map(|s| start + Duration::from_secs_f64(s.max(0.0)));
    let mut watch = node.watch();
    let mut samples = vec![sample(node, dir, node.snapshot().height, start)];
    let mut next = every;
    node.set_mining(config.threads.max(1), Some(address))
        .await?;
    let mut stopped_early = None;
    loop {
        let height = watch.borrow_and_update().height;
        if height >= next {
            samples.push(sample(node, dir, height, start));
            next = (height / every + 1) * every;
        }
        if height >= config.blocks {
            break;
        }
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left.min(STALL),
                None => {
                    stopped_early = Some(format!("time limit reached at height {height}"));
                    break;
                }
            },
            None => STALL,
        };
        match tokio::time::timeout(wait, watch.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(NodeError::Stopped),
            // The deadline: checked at the top of the loop.
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {}
            Err(_) => {
                stopped_early = Some(format!(
                    "no block for {} s at height {height}",
                    STALL.as_secs()
                ));
                break;
            }
        }
    }
    node.set_mining(0, None).await?;
    let last = node.snapshot().height;
    if samples.last().is_none_or(|s| s.height != last) {
        samples.push(sample(node, dir, last, start));
    }
    let space = match node.store_space() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("no store space figures: {e}");
            None
        }
    };
    Ok(SoakReport {
        threads: config.threads.max(1),
        warmup: config.warmup,
        samples,
        space,
        stopped_early,
    })
}

const MB: f64 = 1024.0 * 1024.0;

impl SoakReport {
    /// The first sample at or after the warm-up height.
    pub fn warm(&self) -> Option<&SoakSample> {
        self.samples.iter().find(|s| s.height >= self.warmup)
    }

    /// Highest resident memory after warm-up minus the resident memory at warm-up.
    pub fn rss_growth_after_warmup(&self) -> Option<i64> {
        let warm = self.warm()?;
        let base = warm.rss_bytes?;
        let max = self
            .samples
            .iter()
            .filter(|s| s.height >= warm.height)
            .filter_map(|s| s.rss_bytes)
            .max()?;
        Some(max as i64 - base as i64)
    }

    fn last(&self) -> Option<&SoakSample> {
        self.samples.last()
    }

    /// The table and the summary lines.
    pub fn text(&self) -> String {
        let mut t = String::from(
            "  height  seconds   RSS MB  cache MB  store MB  store B/block  B/block since last sample\n",
        );
        let mut prev: Option<&SoakSample> = None;
        for s in &self.samples {
            let per_block = s
                .store_bytes
                .checked_div(s.height)
                .map_or_else(|| "-".to_string(), |b| b.to_string());
            let since = match prev {
                Some(p) if s.height > p.height => ((s.store_bytes as i64 - p.store_bytes as i64)
                    / (s.height - p.height) as i64)
                    .to_string(),
                _ => "-".into(),
            };
            t.push_str(&format!(
                "{:>8} {:>8.1} {:>8} {:>9.1} {:>9.1} {:>14} {:>26}\n",
                s.height,
                s.seconds,
                s.rss_bytes
                    .map(|r| format!("{:.1}", r as f64 / MB))
                    .unwrap_or_else(|| "n/a".into()),
                s.cache_bytes as f64 / MB,
                s.store_bytes as f64 / MB,
                per_block,
                since,
            ));
            prev = Some(s);
        }
        if let Some(last) = self.last() {
            let rate = if last.seconds > 0.0 {
                last.height as f64 / last.seconds
            } else {
                0.0
            };
            t.push_str(&format!(
                "{} blocks in {:.1} s ({rate:.0} blocks/s, {} mining thread{})",
                last.height,
                last.seconds,
                self.threads,
                if self.threads == 1 { "" } else { "s" }
            ));
        }
        match (self.warm(), self.rss_growth_after_warmup()) {
            (Some(w), Some(g)) => t.push_str(&format!(
                "\nresident memory after warm-up (height {}): {:+.1} MB at most",
                w.height,
                g as f64 / MB
            )),
            _ => t.push_str(&format!(
                "\nno resident-memory figure after warm-up (height {})",
                self.warmup
            )),
        }
        if let (Some(sp), Some(last)) = (&self.space, self.last())
            && last.height > 0
        {
            let per = |b: u64| b / last.height;
            t.push_str(&format!(
                "\nstore at the end: file {} B/block, allocated pages {} B/block \
                 (stored {} + index and page overhead {} + fragmented {}), free in the file {} B/block",
                per(sp.file_bytes),
                per(sp.allocated_bytes),
                per(sp.stored_bytes),
                per(sp.metadata_bytes),
                per(sp.fragmented_bytes),
                per(sp.file_bytes.saturating_sub(sp.allocated_bytes)),
            ));
            t.push_str("\n  table              entries  stored B/block  pages B/block");
            for tb in &sp.tables {
                t.push_str(&format!(
                    "\n  {:<16} {:>9} {:>15} {:>14}",
                    tb.name,
                    tb.entries,
                    per(tb.stored_bytes),
                    per(tb.page_bytes)
                ));
            }
        }
        if let Some(reason) = &self.stopped_early {
            t.push_str(&format!("\nstopped early: {reason}"));
        }
        t
    }

    pub fn json(&self) -> serde_json::Value {
        let samples: Vec<serde_json::Value> = self
            .samples
            .iter()
            .map(|s| {
                serde_json::json!({
                    "height": s.height,
                    "seconds": s.seconds,
                    "rss_bytes": s.rss_bytes,
                    "store_bytes": s.store_bytes,
                    "cache_bytes": s.cache_bytes,
                    "store_bytes_per_block": s.store_bytes.checked_div(s.height),
                })
            })
            .collect();
        let last = self.last();
        let space = self.space.as_ref().map(|sp| {
            serde_json::json!({
                "file_bytes": sp.file_bytes,
                "allocated_bytes": sp.allocated_bytes,
                "stored_bytes": sp.stored_bytes,
                "metadata_bytes": sp.metadata_bytes,
                "fragmented_bytes": sp.fragmented_bytes,
                "tables": sp.tables.iter().map(|t| serde_json::json!({
                    "name": t.name, "entries": t.entries, "stored_bytes": t.stored_bytes,
                    "page_bytes": t.page_bytes, "fragmented_bytes": t.fragmented_bytes,
                })).collect::<Vec<_>>(),
            })
        });
        serde_json::json!({
            "network": "regtest",
            "threads": self.threads,
            "blocks": last.map(|s| s.height),
            "seconds": last.map(|s| s.seconds),
            "warmup_height": self.warm().map(|s| s.height),
            "rss_growth_after_warmup_bytes": self.rss_growth_after_warmup(),
            "store_space_at_end": space,
            "stopped_early": self.stopped_early,
            "samples": samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(height: u64, rss: u64) -> SoakSample {
        SoakSample {
            height,
            seconds: height as f64,
            rss_bytes: Some(rss),
            store_bytes: height * 1000,
            cache_bytes: 0,
        }
    }

    #[test]
    fn growth_counts_from_the_first_sample_after_warm_up() {
        let r = SoakReport {
            threads: 1,
            warmup: 150,
            samples: vec![s(0, 10), s(100, 50), s(200, 60), s(300, 90), s(400, 70)],
            space: None,
            stopped_early: None,
        };
        assert_eq!(r.warm().map(|w| w.height), Some(200));
        assert_eq!(r.rss_growth_after_warmup(), Some(30));
        let j = r.json();
        assert_eq!(j["samples"][4]["store_bytes_per_block"], 1000);
        assert!(r.text().contains("+0.0 MB"));
    }

    #[test]
    fn reads_this_process_resident_memory() {
        if Path::new("/proc/self/status").exists() {
            assert!(rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
