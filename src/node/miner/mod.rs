//! The miner: N OS threads scanning nonces of the current block template with the selected
//! kernel. A new template (tip or mempool changed) replaces the job at once; every thread drops
//! the stale job on its next chunk (a few milliseconds). Found blocks go to a callback, at most
//! one per job (threads that solve the same job too late keep quiet); hashes are counted for the
//! hashrate.

pub mod kernel;

use crate::core::block::{Block, BlockHeader};
use crate::core::pow::Target;
use kernel::{HeaderJob, Kernel};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Nonces a thread scans between checks for a new job.
const CHUNK: u64 = 1 << 14;

/// One block template to mine.
pub struct Job {
    /// Increases with every new template.
    pub seq: u64,
    /// The block with nonce 0.
    pub block: Block,
    pub target: Target,
    pub header_job: HeaderJob,
}

impl Job {
    pub fn new(seq: u64, block: Block, target: Target) -> Job {
        let header_job = HeaderJob::new(&block.header, &target);
        Job {
            seq,
            block,
            target,
            header_job,
        }
    }
}

/// Most mining threads: four per core. More only slow the machine down, and with thousands
/// the node thread and the API starve and stopping takes seconds. Callers refuse more with a
/// message naming this cap; [`Miner::set_threads`] also clamps to it.
pub fn max_threads() -> usize {
    4 * crate::node::cores()
}

/// A random wait with an exponential distribution of mean `mean` (capped at 20 means): the
/// time to the next block of a paced miner, as real mining at a steady hashrate would give.
pub fn paced_wait(mean: Duration) -> Duration {
    let mut b = [0u8; 8];
    // A uniform number in (0, 1]; 0.5 if the system has no randomness to give.
    let u = if getrandom::fill(&mut b).is_ok() {
        ((u64::from_le_bytes(b) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    } else {
        0.5
    };
    let m = mean.as_secs_f64();
    Duration::from_secs_f64((-u.ln() * m).min(m * 20.0))
}

/// Paced mining, for watchable regtest chains: while `active` finds something to mine with in
/// the watched value (and the mean wait), call `mine` with it at random times, the waits
/// between them exponential with that mean ([`paced_wait`]). Each time is counted from the
/// last one, not from when its mining ended, so the time mining takes does not slow the rate
/// (a node of power p mines p times as often as one of power 1). A change of the value starts
/// afresh. Ends when the sender is gone or `mine` says to stop (returns false).
pub async fn run_paced<V, T, F, Fut>(
    mut on: tokio::sync::watch::Receiver<V>,
    active: impl Fn(&V) -> Option<(T, Duration)>,
    mut mine: F,
) where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        let Some((what, mean)) = active(&on.borrow_and_update()) else {
            last = None;
            if on.changed().await.is_err() {
                return;
            }
            continue;
        };
        let now = tokio::time::Instant::now();
        // After a stall (a suspended machine) start from now rather than catch up at once.
        let from = last
            .filter(|l| now.saturating_duration_since(*l) < mean.saturating_mul(20))
            .unwrap_or(now);
        let at = from + paced_wait(mean);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            r = on.changed() => {
                if r.is_err() {
                    return;
                }
                last = None;
                continue;
            }
        }
        last = Some(at);
        if !mine(what).await {
            return;
        }
    }
}

/// Called with a solved job and its nonce, from a mining thread.
pub type OnFound = Arc<dyn Fn(Arc<Job>, u64) + Send + Sync>;

struct Shared {
    job: Mutex<Option<Arc<Job>>>,
    seq: AtomicU64,
    /// Highest job seq already reported solved.
    solved: AtomicU64,
    stop: AtomicBool,
    hashes: AtomicU64,
    kernel: Box<dyn Kernel>,
    on_found: OnFound,
}

/// The running miner.
pub struct Miner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Miner {
    pub fn new(kernel: Box<dyn Kernel>, on_found: OnFound) -> Miner {
        Miner {
            shared: Arc::new(Shared {
                job: Mutex::new(None),
                seq: AtomicU64::new(0),
                solved: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                hashes: AtomicU64::new(0),
                kernel,
                on_found,
            }),
            threads: Vec::new(),
        }
    }

    pub fn kernel_name(&self) -> &'static str {
        self.shared.kernel.name()
    }
    /// Threads mining now.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
    /// Hashes computed since the miner was made.
    pub fn total_hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }

    /// Replace the job (or clear it with `None`): threads switch on their next chunk.
    pub fn set_job(&self, job: Option<Job>) {
        let seq = job.as_ref().map(|j| j.seq);
        if let Ok(mut g) = self.shared.job.lock() {
            *g = job.map(Arc::new);
        }
        self.shared.seq.store(
            seq.unwrap_or_else(|| self.shared.seq.load(Ordering::SeqCst) + 1),
            Ordering::SeqCst,
        );
    }

    /// Run `n` threads (0 stops mining), at most [`max_threads`].
    pub fn set_threads(&mut self, n: usize) {
        let n = n.min(max_threads());
        if n == self.threads.len() {
            return;
        }
        self.stop_threads();
        self.shared.stop.store(false, Ordering::SeqCst);
        for i in 0..n {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("miner-{i}"))
                .spawn(move || mine_loop(&shared, i as u64));
            if let Ok(h) = spawned {
                self.threads.push(h);
            }
        }
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn mine_loop(shared: &Shared, index: u64) {
    // Threads start far apart in the nonce space.
    let base = index << 56;
    while !shared.stop.load(Ordering::Relaxed) {
        let seq = shared.seq.load(Ordering::SeqCst);
        let job = shared.job.lock().ok().and_then(|g| g.clone());
        let Some(job) = job.filter(|j| j.seq == seq) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let mut nonce = base;
        loop {
            if shared.stop.load(Ordering::Relaxed) || shared.seq.load(Ordering::Relaxed) != seq {
                break;
            }
            match shared.kernel.scan(&job.header_job, nonce, CHUNK) {
                Some(found) => {
                    shared
                        .hashes
                        .fetch_add(found - nonce + 1, Ordering::Relaxed);
                    // Only the first thread to solve a job reports it: a second solution of
                    // the same template would be a competing block on the same parent, stored
                    // as a stale side branch (and a leaf) for good.
                    if shared.solved.fetch_max(job.seq, Ordering::SeqCst) < job.seq {
                        (shared.on_found)(job.clone(), found);
                    }
                    // Wait for the next template rather than solving this one twice.
                    while !shared.stop.load(Ordering::Relaxed)
                        && shared.seq.load(Ordering::SeqCst) == seq
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    break;
                }
                None => {
                    shared.hashes.fetch_add(CHUNK, Ordering::Relaxed);
                    nonce = nonce.wrapping_add(CHUNK);
                }
            }
        }
    }
}

/// The solved block of `job` with `nonce`.
pub fn solved_block(job: &Job, nonce: u64) -> Block {
    let mut block = job.block.clone();
    block.header.nonce = nonce;
    block
}

/// Measure a kernel: `threads` threads hash an unsolvable header for `seconds`; returns hashes
/// per second (integer).
pub fn bench(kernel: &dyn Kernel, threads: usize, seconds: f64) -> u64 {
    let header = BlockHeader {
        version: 1,
        prev: crate::core::hash::BlockHash([7; 32]),
        merkle_root: crate::core::hash::MerkleRoot([9; 32]),
        time: 1,
        bits: crate::core::pow::CompactTarget(0x0300_0001),
        nonce: 0,
    };
    // A target no hash meets.
    let job = HeaderJob::new(&header, &Target(crate::core::pow::U256::ZERO));
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..threads.max(1) {
            let (job, stop, total) = (&job, &stop, &total);
            s.spawn(move || {
                let mut n = (i as u64) << 56;
                while !stop.load(Ordering::Relaxed) {
                    let _ = kernel.scan(job, n, CHUNK);
                    n = n.wrapping_add(CHUNK);
                    total.fetch_add(CHUNK, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds.max(0.05)));
        stop.store(true, Ordering::SeqCst);
    });
    let elapsed = start.elapsed().as_nanos().max(1);
    (u128::from(total.load(Ordering::Relaxed)) * 1_000_000_000 / elapsed) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::Network;
    use crate::core::pow::U256;

    /// Every thread solving one easy template reported its own block: with two threads each
    /// height of a regtest chain got a stale twin in the store, and a leaf, for good.
    #[test]
    fn a_job_is_reported_solved_once_whatever_the_threads() {
        let found = Arc::new(Mutex::new(Vec::new()));
        let sink = found.clone();
        let kernel = kernel::select(None).expect("a mining kernel");
        let mut miner = Miner::new(
            kernel,
            Arc::new(move |job: Arc<Job>, nonce| {
                if let Ok(mut f) = sink.lock() {
                    f.push((job.seq, nonce));
                }
            }),
        );
        let block = Network::Regtest.params().genesis.clone();
        // Every hash meets this target: each thread solves the job with its first nonce.
        miner.set_job(Some(Job::new(1, block, Target(U256::MAX))));
        miner.set_threads(4);
        // Wait until the threads stop hashing (all have solved the job), at most 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = u64::MAX;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = miner.total_hashes();
            if now == last && found.lock().map(|f| !f.is_empty()).unwrap_or(false) {
                break;
            }
            last = now;
        }
        miner.set_threads(0);
        let found = found.lock().map(|f| f.clone()).unwrap_or_default();
        assert_eq!(found.len(), 1, "solutions reported for one job: {found:?}");
    }
}
