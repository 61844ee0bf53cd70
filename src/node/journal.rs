//! The mempool's journal: transactions the mempool took through `submit_txs`, written to the
//! store on a thread of its own, so the node thread goes on to the next batch while the disk
//! syncs. What arrives during one durable write goes into the next, together (group commit),
//! and every submitter is answered only once its transactions are on disk. The saved mempool
//! is a cache the node re-validates when it starts, so a write that lands after a block
//! confirmed its transaction leaves nothing wrong behind.

use super::NodeError;
use crate::core::hash::Txid;
use crate::core::tx::Transaction;
use crate::storage::Store;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// A batch's answers, sent once its transactions are durable (or the write failed).
pub(super) type Answer = oneshot::Sender<Result<Vec<Result<Txid, NodeError>>, NodeError>>;

struct Entry {
    txs: Vec<Transaction>,
    results: Vec<Result<Txid, NodeError>>,
    reply: Answer,
}

/// Most batches one durable write takes.
const MAX_GROUP: usize = 256;

pub(super) struct Journal {
    queue: Option<mpsc::Sender<Entry>>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    pub(super) fn start(store: Store) -> Result<Journal, NodeError> {
        let (queue, rx) = mpsc::channel::<Entry>();
        let thread = std::thread::Builder::new()
            .name("chain-tui-journal".into())
            .spawn(move || write_groups(store, rx))
            .map_err(|e| NodeError::Persist(format!("cannot start the mempool journal: {e}")))?;
        Ok(Journal {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Write `txs` (accepted into the mempool) and then answer `results` on `reply`.
    pub(super) fn write(
        &self,
        txs: Vec<Transaction>,
        results: Vec<Result<Txid, NodeError>>,
        reply: Answer,
    ) {
        let entry = Entry {
            txs,
            results,
            reply,
        };
        let unsent = match &self.queue {
            Some(q) => q.send(entry).err().map(|e| e.0),
            None => Some(entry),
        };
        // Stopped: the transactions are in the mempool, which the node saves when it stops.
        if let Some(e) = unsent {
            let _ = e.reply.send(Err(NodeError::Stopped));
        }
    }

    /// Finish every write asked for, and stop.
    pub(super) fn stop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the mempool journal panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_groups(store: Store, rx: mpsc::Receiver<Entry>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(e) => group.push(e),
                Err(_) => break,
            }
        }
        let written = store.write(true, |b| {
            group
                .iter()
                .flat_map(|e| &e.txs)
                .try_for_each(|tx| b.add_mempool(tx))
        });
        if let Err(e) = &written {
            tracing::error!("saving mempool transactions failed: {e}");
        }
        for e in group {
            let answer = match &written {
                Ok(()) => Ok(e.results),
                Err(err) => Err(NodeError::Persist(err.to_string())),
            };
            let _ = e.reply.send(answer);
        }
    }
}
