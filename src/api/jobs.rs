//! Work the API runs in the background: `POST /mine`. Each mine is a job, followed with
//! `GET /jobs/{id}` (blocks mined so far) and cancelled with `DELETE /jobs/{id}`, which answers
//! the job as it stopped and forgets it; a small one that finishes quickly is answered in full
//! at once. One mine job runs at a time; the last
//! [`KEEP`] finished ones are kept.

use super::error::ApiError;
use super::types::{ErrorBody, JobState, JobView, Mined};
use crate::core::address::Address;
use crate::node::NodeHandle;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Finished jobs kept for `GET /jobs/{id}`.
pub const KEEP: usize = 32;

/// The jobs of one API server.
#[derive(Default)]
pub(crate) struct Jobs {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    jobs: BTreeMap<u64, Arc<MineJob>>,
}

/// Mining a number of blocks.
pub(crate) struct MineJob {
    pub id: u64,
    requested: u64,
    threads: usize,
    mined: Arc<AtomicU64>,
    started: Instant,
    cancel: CancellationToken,
    /// Cancelled when the job has finished and `outcome` is set.
    finished: CancellationToken,
    outcome: Mutex<Option<Outcome>>,
}

struct Outcome {
    result: Result<Vec<String>, ApiError>,
    height: u64,
    tip: String,
    took: Duration,
}

impl Jobs {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start mining `blocks` blocks with `threads` threads paying `address`; `409 busy` while
    /// another mine job runs.
    pub fn start_mine(
        &self,
        node: &NodeHandle,
        address: Address,
        blocks: u64,
        threads: usize,
    ) -> Result<Arc<MineJob>, ApiError> {
        let mut t = self.table();
        if let Some(running) = t.jobs.values().find(|j| !j.finished.is_cancelled()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "busy",
                format!(
                    "mine job {} is still running (GET /jobs/{} follows it, DELETE cancels it)",
                    running.id, running.id
                ),
            ));
        }
        t.next_id += 1;
        let job = Arc::new(MineJob {
            id: t.next_id,
            requested: blocks,
            threads,
            mined: Arc::default(),
            started: Instant::now(),
            cancel: CancellationToken::new(),
            finished: CancellationToken::new(),
            outcome: Mutex::default(),
        });
        t.jobs.insert(job.id, job.clone());
        // Forget the oldest finished jobs beyond KEEP.
        let finished: Vec<u64> = t
            .jobs
            .values()
            .filter(|j| j.finished.is_cancelled())
            .map(|j| j.id)
            .collect();
        for id in finished.iter().take(finished.len().saturating_sub(KEEP)) {
            t.jobs.remove(id);
        }
        drop(t);
        tokio::spawn(run(job.clone(), node.clone(), address));
        Ok(job)
    }

    pub fn get(&self, id: u64) -> Option<Arc<MineJob>> {
        self.table().jobs.get(&id).cloned()
    }

    /// Forget a finished job (`DELETE /jobs/{id}`); a running one stays.
    pub fn forget(&self, id: u64) {
        let mut t = self.table();
        if t.jobs.get(&id).is_some_and(|j| j.is_finished()) {
            t.jobs.remove(&id);
        }
    }

    /// Cancel every running job and wait (a few seconds at most) for them to stop.
    pub async fn cancel_all(&self) {
        let running: Vec<Arc<MineJob>> = self
            .table()
            .jobs
            .values()
            .filter(|j| !j.finished.is_cancelled())
            .cloned()
            .collect();
        for j in running {
            j.cancel_and_wait(Duration::from_secs(5)).await;
        }
    }
}

async fn run(job: Arc<MineJob>, node: NodeHandle, address: Address) {
    let mining = node.mine_blocks_counted(job.requested, job.threads, address, job.mined.clone());
    tokio::pin!(mining);
    let result = tokio::select! {
        biased;
        r = mining.as_mut() => r,
        _ = job.cancel.cancelled() => loop {
            // The node answers the mine with the blocks mined so far. Asked again until it
            // does, in case the mine had not reached the node yet.
            let _ = node.cancel_mine().await;
            tokio::select! {
                r = mining.as_mut() => break r,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        },
    };
    let (height, tip) = match node.tip() {
        Ok(t) => (t.height, t.hash().to_string()),
        Err(_) => (0, String::new()),
    };
    let outcome = Outcome {
        result: result
            .map(|hashes| hashes.iter().map(ToString::to_string).collect())
            .map_err(ApiError::from),
        height,
        tip,
        took: job.started.elapsed(),
    };
    *job.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    job.finished.cancel();
}

impl MineJob {
    pub fn is_finished(&self) -> bool {
        self.finished.is_cancelled()
    }

    /// Wait until the job has finished, for at most `limit`; whether it has.
    pub async fn wait(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.finished.cancelled())
            .await
            .is_ok()
    }

    /// Ask the job to stop and wait up to `limit` for it to.
    pub async fn cancel_and_wait(&self, limit: Duration) -> bool {
        self.cancel.cancel();
        self.wait(limit).await
    }

    /// `GET /jobs/{id}`: state, blocks mined so far, and once finished the blocks, height and
    /// tip (or the error).
    pub fn view(&self) -> JobView {
        let outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = JobView {
            id: self.id,
            kind: "mine".into(),
            requested: self.requested,
            threads: self.threads,
            mined: self.mined.load(Ordering::Relaxed),
            state: JobState::Running,
            elapsed_ms: 0,
            height: None,
            tip: None,
            blocks: None,
            error: None,
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match &*outcome {
            None => {
                if self.cancel.is_cancelled() {
                    v.state = JobState::Cancelling;
                }
                v.elapsed_ms = ms(self.started.elapsed());
            }
            Some(o) => {
                v.elapsed_ms = ms(o.took);
                v.height = Some(o.height);
                v.tip = Some(o.tip.clone());
                match &o.result {
                    Ok(blocks) => {
                        let done = blocks.len() as u64 >= self.requested;
                        v.state = if done {
                            JobState::Done
                        } else {
                            JobState::Cancelled
                        };
                        v.mined = blocks.len() as u64;
                        v.blocks = Some(blocks.clone());
                    }
                    Err(e) => {
                        v.state = JobState::Failed;
                        v.error = Some(ErrorBody {
                            error: e.message.clone(),
                            code: e.code.to_string(),
                        });
                    }
                }
            }
        }
        v
    }

    /// The answer of a finished mine, as `POST /mine` gave it before jobs: blocks, height and
    /// tip; or its error.
    pub fn result(&self) -> Option<Result<Mined, ApiError>> {
        let outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let o = outcome.as_ref()?;
        Some(match &o.result {
            Ok(blocks) => Ok(Mined {
                blocks: blocks.clone(),
                height: o.height,
                tip: o.tip.clone(),
                job: Some(self.id),
            }),
            Err(e) => Err(e.clone()),
        })
    }
}
