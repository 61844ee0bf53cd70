//! `chain-tui bench …`: benchmark runs on this machine, each printed as text or JSON.

use super::run::{Output, default_threads, out};
use super::{BenchCmd, Global};
use crate::core::pow::{U256, si_text};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use std::path::PathBuf;

#[cfg(feature = "bench")]
pub(super) async fn bench(g: &Global, b: BenchCmd) -> Result<Output> {
    match b {
        BenchCmd::Mine {
            threads,
            seconds,
            kernel,
        } => {
            let threads = threads.unwrap_or_else(default_threads).max(1);
            let (name, hps) = crate::bench::hashrate(kernel.as_deref(), threads, seconds).await?;
            Ok(out(
                format!(
                    "{name}: {} H/s with {threads} threads ({} per thread)",
                    si_text(U256::from(hps)),
                    si_text(U256::from(hps / threads as u64))
                ),
                json!({ "hashes_per_second": hps, "threads": threads, "kernel": name, "seconds": seconds }),
            ))
        }
        BenchCmd::Sync { blocks, txs } => {
            let chain = crate::bench::generate_chain(blocks, txs);
            let tx_count: usize = chain.iter().map(|b| b.txs.len() - 1).sum();
            let tmp = tempdir_for("sync")?;
            let result = async {
                let import = crate::bench::time_import(chain.clone(), &tmp.join("import")).await?;
                let sync =
                    crate::bench::time_sync(chain, &tmp.join("source"), &tmp.join("sync")).await?;
                Ok::<_, anyhow::Error>((import, sync))
            }
            .await;
            let _ = std::fs::remove_dir_all(&tmp);
            let (import, sync) = result?;
            let per_sec = |d: std::time::Duration| (blocks as f64 / d.as_secs_f64()) as u64;
            let ratio = import.as_secs_f64() / sync.as_secs_f64();
            Ok(out(
                format!(
                    "{blocks} blocks with {tx_count} transactions: import {:.3} s ({} blocks/s), sync over QUIC {:.3} s ({} blocks/s): sync at {:.2}x the import speed",
                    import.as_secs_f64(),
                    per_sec(import),
                    sync.as_secs_f64(),
                    per_sec(sync),
                    ratio
                ),
                json!({ "blocks": blocks, "transactions": tx_count, "import_seconds": import.as_secs_f64(),
                        "sync_seconds": sync.as_secs_f64(), "import_blocks_per_second": per_sec(import),
                        "sync_blocks_per_second": per_sec(sync), "sync_to_import_ratio": ratio }),
            ))
        }
        BenchCmd::Api { txs, clients } => {
            if txs == 0 || clients == 0 {
                bail!("--txs and --clients must be at least 1");
            }
            let tmp = tempdir_for("api")?;
            let r = crate::bench::api::run(&tmp, txs, clients).await;
            let _ = std::fs::remove_dir_all(&tmp);
            let r = r?;
            Ok(out(
                format!(
                    "POST /transactions/new: {} of {} transactions accepted from {} clients in {:.3} s: {:.0} tx/s (one core verifies their signatures at {:.0}/s: {:.2}x)",
                    r.accepted,
                    r.transactions,
                    r.clients,
                    r.seconds,
                    r.per_second,
                    r.verify_per_second,
                    r.per_second / r.verify_per_second
                ),
                json!({ "transactions": r.transactions, "clients": r.clients, "accepted": r.accepted,
                        "seconds": r.seconds, "transactions_per_second": r.per_second,
                        "verify_per_second_one_core": r.verify_per_second }),
            ))
        }
        BenchCmd::Events { listeners, blocks } => {
            if listeners == 0 || blocks == 0 {
                bail!("--listeners and --blocks must be at least 1");
            }
            let tmp = tempdir_for("events")?;
            let r = crate::bench::events::run(&tmp, listeners, blocks).await;
            let _ = std::fs::remove_dir_all(&tmp);
            let r = r?;
            Ok(out(
                format!(
                    "GET /events: {} blocks to {} listeners ({} deliveries): from commit to \
                     client, median {:.2} ms, 90th percentile {:.2} ms, slowest {:.2} ms",
                    r.blocks, r.listeners, r.deliveries, r.median_ms, r.p90_ms, r.max_ms
                ),
                json!({ "listeners": r.listeners, "blocks": r.blocks, "deliveries": r.deliveries,
                        "median_ms": r.median_ms, "p90_ms": r.p90_ms, "max_ms": r.max_ms }),
            ))
        }
        BenchCmd::Verify {
            threads,
            txs,
            seconds,
        } => {
            let (text, json) =
                tokio::task::spawn_blocking(move || crate::bench::verify(txs, threads, seconds))
                    .await?
                    .map_err(|e| anyhow!(e))?;
            Ok(out(text, json))
        }
        BenchCmd::Soak {
            blocks,
            seconds,
            every,
            warmup,
            threads,
        } => {
            if blocks == 0 || threads == 0 || every == Some(0) {
                bail!("--blocks, --threads and --every must be at least 1");
            }
            if seconds.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
                bail!("--seconds must be a positive number");
            }
            let config = crate::bench::soak::SoakConfig {
                blocks,
                seconds,
                every: every.unwrap_or((blocks / 20).max(1)),
                threads,
                warmup: warmup.unwrap_or(blocks / 10),
            };
            let tmp = tempdir_for("soak")?;
            let r = crate::bench::soak::run(&config, &tmp).await;
            let _ = std::fs::remove_dir_all(&tmp);
            let r = r?;
            Ok(out(r.text(), r.json()))
        }
        BenchCmd::Import { blocks } => {
            let _ = g;
            let (n, secs) = crate::bench::time_export_import(blocks).await?;
            let rate = (n as f64 / secs) as u64;
            Ok(out(
                format!("imported {n} blocks in {secs:.3} s: {rate} blocks/s"),
                json!({ "blocks": n, "seconds": secs, "blocks_per_second": rate }),
            ))
        }
    }
}

/// A fresh temporary directory for a benchmark.
#[cfg(feature = "bench")]
fn tempdir_for(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("chain-tui-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
