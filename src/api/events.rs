//! Live events for `GET /events` (Server-Sent Events): what the node did (blocks connected and
//! disconnected, reorganisations, mined and rejected blocks, transactions accepted into and
//! removed from the mempool), who came and went (peers connected, disconnected, banned) and
//! the mining state, numbered in the order they happened. The last [`BACKLOG`] events are kept
//! so a client that reconnects with `Last-Event-ID` misses nothing that is still there, and is
//! told when it missed more.

use crate::core::hash::BlockHash;
use crate::node::{NodeEvent, NodeHandle, P2pHandle, P2pView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Events kept for clients that reconnect.
pub const BACKLOG: usize = 1024;

/// One event, as its SSE `data:` (JSON); its `type` is also the SSE `event:` name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    BlockConnected(BlockAt),
    BlockDisconnected(BlockAt),
    /// The active chain switched branches: `depth` blocks were disconnected.
    Reorg {
        depth: usize,
        old_tip: String,
        new_tip: String,
    },
    /// This node mined the block (it is also announced as connected).
    BlockMined(BlockAt),
    BlockRejected {
        hash: String,
        reason: String,
    },
    TxAccepted {
        txid: String,
    },
    TxRemoved {
        txid: String,
    },
    PeerConnected {
        id: String,
        addr: String,
        inbound: bool,
    },
    PeerDisconnected {
        id: String,
        addr: String,
    },
    PeerBanned {
        id: Option<String>,
        addr: Option<String>,
        reason: String,
    },
    Mining {
        mining: bool,
        threads: usize,
    },
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::BlockConnected(_) => "block_connected",
            Event::BlockDisconnected(_) => "block_disconnected",
            Event::Reorg { .. } => "reorg",
            Event::BlockMined(_) => "block_mined",
            Event::BlockRejected { .. } => "block_rejected",
            Event::TxAccepted { .. } => "tx_accepted",
            Event::TxRemoved { .. } => "tx_removed",
            Event::PeerConnected { .. } => "peer_connected",
            Event::PeerDisconnected { .. } => "peer_disconnected",
            Event::PeerBanned { .. } => "peer_banned",
            Event::Mining { .. } => "mining",
        }
    }

    fn from_node(e: NodeEvent) -> Event {
        let h = |h: BlockHash| h.to_string();
        let at = |hash: BlockHash, height| BlockAt {
            hash: hash.to_string(),
            height,
        };
        match e {
            NodeEvent::BlockConnected { hash, height } => Event::BlockConnected(at(hash, height)),
            NodeEvent::BlockDisconnected { hash, height } => {
                Event::BlockDisconnected(at(hash, height))
            }
            NodeEvent::Reorg {
                depth,
                old_tip,
                new_tip,
            } => Event::Reorg {
                depth,
                old_tip: h(old_tip),
                new_tip: h(new_tip),
            },
            NodeEvent::BlockMined { hash, height } => Event::BlockMined(at(hash, height)),
            NodeEvent::BlockRejected { hash, reason } => Event::BlockRejected {
                hash: h(hash),
                reason,
            },
            NodeEvent::TxAccepted(txid) => Event::TxAccepted {
                txid: txid.to_string(),
            },
            NodeEvent::TxRemoved(txid) => Event::TxRemoved {
                txid: txid.to_string(),
            },
        }
    }
}

/// A block and its height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockAt {
    pub hash: String,
    pub height: u64,
}

/// A numbered event.
pub type Numbered = (u64, Arc<Event>);

/// What a client gets when it (re)connects.
pub struct Since {
    /// Events after the one it named that are still kept, oldest first.
    pub backlog: Vec<Numbered>,
    /// The first event it asked for is gone from the backlog: it missed some.
    pub missed: bool,
    /// What comes next.
    pub live: broadcast::Receiver<Numbered>,
}

/// The numbered events and their backlog.
pub struct EventLog {
    kept: Mutex<Kept>,
    tx: broadcast::Sender<Numbered>,
    /// Cancelled when the server stops: open streams end then, so that they do not hold the
    /// server's graceful shutdown for its whole grace period.
    stopped: CancellationToken,
}

struct Kept {
    next: u64,
    events: VecDeque<Numbered>,
}

impl EventLog {
    /// An empty log (events are numbered from 1).
    pub fn new() -> EventLog {
        EventLog {
            kept: Mutex::new(Kept {
                next: 1,
                events: VecDeque::with_capacity(BACKLOG),
            }),
            tx: broadcast::channel(BACKLOG).0,
            stopped: CancellationToken::new(),
        }
    }

    /// Resolves when the server stops.
    pub fn stopped(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopped.clone().cancelled_owned()
    }

    /// Starts a task that records `node`'s and `p2p`'s events until `stop` is cancelled.
    pub fn start(node: NodeHandle, p2p: Option<P2pHandle>, stop: CancellationToken) -> Arc<Self> {
        let log = Arc::new(EventLog {
            stopped: stop.clone(),
            ..EventLog::new()
        });
        let task_log = log.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task_log.collect(node, p2p) => {}
            }
        });
        log
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // The backlog holds no invariant a panic could break halfway.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers `event`, keeps it, and sends it to every listener.
    pub fn push(&self, event: Event) {
        let mut k = self.kept();
        let n = (k.next, Arc::new(event));
        k.next += 1;
        if k.events.len() == BACKLOG {
            k.events.pop_front();
        }
        k.events.push_back(n.clone());
        // Sent under the lock, so that `since` never sees an event twice or misses one.
        let _ = self.tx.send(n);
    }

    /// The number of the newest event (0 before the first).
    pub fn newest(&self) -> u64 {
        self.kept().next.saturating_sub(1)
    }

    /// The events after number `after` (all kept ones for `None`), and what comes next.
    pub fn since(&self, after: Option<u64>) -> Since {
        let k = self.kept();
        let live = self.tx.subscribe();
        let oldest = k.events.front().map_or(k.next, |(n, _)| *n);
        let from = after.map_or(oldest, |a| a.saturating_add(1));
        Since {
            backlog: k
                .events
                .iter()
                .filter(|(n, _)| *n >= from)
                .cloned()
                .collect(),
            missed: after.is_some() && from < oldest,
            live,
        }
    }

    async fn collect(&self, node: NodeHandle, p2p: Option<P2pHandle>) {
        let mut events = node.events();
        let mut snapshot = node.watch();
        let mut threads = snapshot.borrow_and_update().mining_threads;
        let mut view = p2p.as_ref().map(P2pHandle::watch);
        let mut last_view = view
            .as_mut()
            .map(|v| v.borrow_and_update().clone())
            .unwrap_or_default();
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Ok(e) => self.push(Event::from_node(e)),
                    // A slow collector: the node's own channel dropped some; nothing to number.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                changed = snapshot.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = snapshot.borrow_and_update().mining_threads;
                    if now != threads {
                        threads = now;
                        self.push(Event::Mining { mining: now > 0, threads: now });
                    }
                }
                now = next_view(&mut view), if view.is_some() => match now {
                    Some(now) => {
                        for e in peer_changes(&last_view, &now) {
                            self.push(e);
                        }
                        last_view = now;
                    }
                    // The network part stopped.
                    None => view = None,
                }
            }
        }
    }
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::new()
    }
}

/// The next network view; `None` once the network part is gone.
async fn next_view(view: &mut Option<watch::Receiver<P2pView>>) -> Option<P2pView> {
    let v = view.as_mut()?;
    v.changed().await.ok()?;
    Some(v.borrow_and_update().clone())
}

/// The peers that came, went or were banned between two views.
fn peer_changes(old: &P2pView, new: &P2pView) -> Vec<Event> {
    let before: BTreeMap<_, _> = old.peers.iter().map(|p| (p.id, p)).collect();
    let after: BTreeMap<_, _> = new.peers.iter().map(|p| (p.id, p)).collect();
    let mut out = Vec::new();
    for (id, p) in &before {
        if !after.contains_key(id) {
            out.push(Event::PeerDisconnected {
                id: id.to_string(),
                addr: p.addr.to_string(),
            });
        }
    }
    for (id, p) in &after {
        if !before.contains_key(id) {
            out.push(Event::PeerConnected {
                id: id.to_string(),
                addr: p.addr.to_string(),
                inbound: p.inbound,
            });
        }
    }
    for b in &new.bans {
        let known = old
            .bans
            .iter()
            .any(|o| o.id == b.id && o.addr == b.addr && o.until == b.until);
        if !known {
            out.push(Event::PeerBanned {
                id: b.id.map(|i| i.to_string()),
                addr: b.addr.map(|a| a.to_string()),
                reason: b.reason.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: u8) -> Event {
        Event::TxAccepted {
            txid: n.to_string(),
        }
    }

    #[test]
    fn a_client_resumes_after_its_last_event_and_is_told_when_it_missed_some() {
        let log = EventLog::new();
        for n in 0..5 {
            log.push(tx(n));
        }
        let s = log.since(Some(3));
        assert_eq!(
            s.backlog.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [4, 5]
        );
        assert!(!s.missed);
        assert_eq!(log.since(None).backlog.len(), 5);
        assert!(log.since(Some(5)).backlog.is_empty());
        // Past the backlog: the oldest kept events, and `missed`.
        for n in 0..BACKLOG {
            log.push(tx(n as u8));
        }
        let s = log.since(Some(2));
        assert!(s.missed);
        assert_eq!(s.backlog.len(), BACKLOG);
        assert_eq!(s.backlog[0].0, 6);
    }

    #[test]
    fn what_comes_after_since_arrives_live_once() {
        let log = EventLog::new();
        log.push(tx(1));
        let mut s = log.since(Some(1));
        log.push(tx(2));
        let (n, e) = s.live.try_recv().unwrap();
        assert_eq!((n, &*e), (2, &tx(2)));
        assert!(s.live.try_recv().is_err());
    }
}
