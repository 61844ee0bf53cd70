//! Relay: announcing our tip and new transactions to the peers that do not know them, at
//! most once per trickle.

use super::{MAX_REQUESTED_TXS, Now, Output, P2pState, Peer, TRICKLE};
use crate::core::hash::Txid;
use crate::core::tx::Transaction;
use crate::net::identity::NodeId;
use crate::net::wire::{MAX_INV, Message};
use crate::node::NodeEvent;

impl P2pState {
    /// A peer announces transactions: ask it for the ones we lack.
    pub(super) fn on_inv_txs(&mut self, id: NodeId, txids: Vec<Txid>, now: Now) {
        if let Some(p) = self.peers.get_mut(&id) {
            for t in &txids {
                p.know(t.0);
            }
        }
        let Some(asked) = self.peers.get(&id).map(|p| &p.requested_txs) else {
            return;
        };
        let room = MAX_REQUESTED_TXS.saturating_sub(asked.len());
        let want: Vec<Txid> = txids
            .into_iter()
            .filter(|t| !asked.contains_key(t) && !self.chain.has_tx(t))
            .take(room)
            .collect();
        if !want.is_empty()
            && let Some(p) = self.peers.get_mut(&id)
        {
            p.requested_txs.extend(want.iter().map(|t| (*t, now.local)));
            self.send(&id, Message::GetTxs(want));
        }
    }

    /// A transaction arrived: one we asked this peer for goes to the node (its verdict comes
    /// back as `Input::TxDone`); any other is a violation.
    pub(super) fn on_tx(&mut self, id: NodeId, tx: Transaction) -> Result<(), String> {
        let txid = tx.txid();
        let asked = self
            .peers
            .get_mut(&id)
            .is_some_and(|p| p.requested_txs.remove(&txid).is_some());
        if !asked {
            return Err(format!("unrequested transaction {}", txid.short()));
        }
        if let Some(p) = self.peers.get_mut(&id) {
            p.know(txid.0);
        }
        if let Some(p) = self.peers.get(&id) {
            let remote = p.info.addr;
            self.out.push(Output::SubmitTx {
                from: id,
                remote,
                tx,
            });
        }
        Ok(())
    }

    pub(super) fn node_event(&mut self, ev: NodeEvent, now: Now) {
        match ev {
            // At most one announcement per TRICKLE: a fast miner's tips go out together.
            NodeEvent::BlockConnected { .. } | NodeEvent::Reorg { .. }
                if now.local.duration_since(self.last_trickle) >= TRICKLE =>
            {
                self.trickle(now);
            }
            NodeEvent::TxAccepted(txid) => {
                let mut full = Vec::new();
                for p in self.peers.values_mut() {
                    if !p.known.contains(&txid.0) {
                        p.know(txid.0);
                        p.tx_inv.push(txid);
                        if p.tx_inv.len() >= MAX_INV {
                            full.push((p.serial, std::mem::take(&mut p.tx_inv)));
                        }
                    }
                }
                for (serial, batch) in full {
                    self.out.push(Output::Send {
                        serial,
                        msg: Message::InvTxs(batch),
                    });
                }
            }
            _ => {}
        }
    }

    /// Send what waited for the trickle: our tip, and each peer's new transactions.
    pub(super) fn trickle(&mut self, now: Now) {
        self.last_trickle = now.local;
        // Nobody to tell (an idle node with no peers wakes ten times a second for nothing).
        if self.peers.is_empty() {
            return;
        }
        self.announce_tip();
        let mut sends = Vec::new();
        for p in self.peers.values_mut() {
            if !p.tx_inv.is_empty() {
                sends.push((p.serial, std::mem::take(&mut p.tx_inv)));
            }
        }
        for (serial, batch) in sends {
            self.out.push(Output::Send {
                serial,
                msg: Message::InvTxs(batch),
            });
        }
    }

    /// Announce our tip to peers that do not know it (only while no download is under way:
    /// mid-sync tips are not news).
    pub(super) fn announce_tip(&mut self) {
        if self.sched.busy() || self.submission.is_some() {
            return;
        }
        let (_, tip, _) = self.chain.tip();
        if self.last_announced == Some(tip) {
            return;
        }
        self.last_announced = Some(tip);
        // Version-2 peers that have its parent get it compactly (built once, for all).
        let prev = self.chain.block_meta(&tip).map(|m| m.header.prev);
        let compact_to = |p: &Peer| {
            p.protocol >= 2
                && prev.is_some_and(|prev| {
                    p.known.contains(&prev.0) || p.activity.best().is_some_and(|b| b.tip == prev)
                })
        };
        let compact = if self
            .peers
            .values()
            .any(|p| !p.known.contains(&tip.0) && compact_to(p))
        {
            self.compact_tip(&tip).map(Message::CompactBlock)
        } else {
            None
        };
        let mut sends = Vec::new();
        for p in self.peers.values_mut() {
            if !p.known.contains(&tip.0) {
                let msg = match &compact {
                    Some(c) if compact_to(p) => {
                        self.compact_stats.sent += 1;
                        c.clone()
                    }
                    _ => Message::InvBlocks(vec![tip]),
                };
                p.know(tip.0);
                sends.push((p.serial, msg));
            }
        }
        for (serial, msg) in sends {
            self.out.push(Output::Send { serial, msg });
        }
    }
}
