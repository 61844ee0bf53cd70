//! Handshakes and the peer table: taking a connection (bans, allowed peers, the crossing-dial
//! tie-break, inbound slots and eviction), a peer leaving, bans for misbehaviour, and dialing
//! what the address book says is due.

use super::{
    CROSSING_DIAL, ConnInfo, Now, Output, P2pState, Peer, ROTATE_EVERY, ROTATION_LOOK, Rotation,
};
use crate::core::pow::Work;
use crate::net::DisconnectReason;
use crate::net::identity::NodeId;
use crate::net::wire::{Hello, MAX_INV, Message};
use crate::node::p2p::PeerInfo;
use crate::node::p2p::book::DialFilter;
use crate::node::p2p::conn::Activity;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl P2pState {
    /// Ban `id` for misbehaviour: its identity, and the address its connection came from
    /// (never an address it merely claims to listen on: that may be another node's).
    /// The peer leaves the view in the same publish that lists its ban.
    pub(super) fn ban(&mut self, id: NodeId, reason: &str, now: Now) {
        let addr = self.peers.get(&id).map(|p| p.info.addr);
        self.drop_peer(&id, DisconnectReason::Misbehaviour, reason);
        self.ban_as(id, addr, reason, now);
    }

    pub(super) fn ban_as(&mut self, id: NodeId, addr: Option<SocketAddr>, reason: &str, now: Now) {
        tracing::warn!("banning peer {} ({addr:?}): {reason}", id.short());
        self.book.ban(id, addr, reason, now.unix);
        // Headers it sent count for nothing now; blocks only it announced are dropped at the
        // next tick unless another peer can give them.
        self.sched.forget_sender(&id);
        self.save_records();
        self.publish(now);
    }

    pub(super) fn disconnect(
        &mut self,
        id: &NodeId,
        code: DisconnectReason,
        reason: &str,
        now: Now,
    ) {
        if self.drop_peer(id, code, reason) {
            self.publish(now);
        }
    }

    /// Closes `id`'s connection and forgets the peer, without publishing; false if it was not
    /// connected.
    pub(super) fn drop_peer(&mut self, id: &NodeId, code: DisconnectReason, reason: &str) -> bool {
        let Some(p) = self.peers.remove(id) else {
            return false;
        };
        self.close(p.serial, code, reason);
        self.sched.remove_peer(id);
        true
    }

    pub(super) fn gone(
        &mut self,
        id: NodeId,
        serial: Option<u64>,
        remote: Option<SocketAddr>,
        reason: &str,
        misbehaviour: bool,
        now: Now,
    ) {
        // Only the connection that ended: a newer one to the same node stays.
        let current = match (serial, self.peers.get(&id)) {
            (Some(s), Some(p)) => p.serial == s,
            _ => false,
        };
        if misbehaviour {
            if current {
                self.ban(id, reason, now);
            } else {
                // Misbehaved during the handshake: ban the identity and the address it came
                // from.
                self.ban_as(id, remote, reason, now);
            }
        } else if current {
            tracing::info!("peer {} left: {reason}", id.short());
            self.peers.remove(&id);
            self.sched.remove_peer(&id);
        } else {
            tracing::debug!("connection to {} ended: {reason}", id.short());
        }
        self.publish(now);
    }

    /// The inbound peer to drop for a newcomer when inbound slots are full: protected are
    /// the peers that recently gave us blocks or transactions, that recently fetched blocks
    /// or headers from us, and the lowest-latency ones; of the rest, the one useful longest
    /// ago, youngest first. None if every inbound peer is protected.
    pub(super) fn eviction_candidate(&self) -> Option<NodeId> {
        let mut candidates: Vec<&Peer> = self.peers.values().filter(|p| p.info.inbound).collect();
        let protect = |c: &mut Vec<&Peer>, n: usize, key: &dyn Fn(&Peer) -> u64| {
            // Keep the `n` with the highest key (only those with a key above zero).
            c.sort_by_key(|p| std::cmp::Reverse(key(p)));
            let keep = c.iter().take(n).filter(|p| key(p) > 0).count();
            c.drain(..keep);
        };
        protect(&mut candidates, 4, &|p| p.last_useful);
        protect(&mut candidates, 4, &|p| {
            p.activity.last_served.load(Ordering::Relaxed)
        });
        protect(&mut candidates, 4, &|p| {
            p.info.rtt.map_or(0, |r| {
                u64::MAX - r.as_micros().min(u64::MAX as u128 - 1) as u64
            })
        });
        candidates
            .into_iter()
            .min_by_key(|p| {
                let useful = p
                    .last_useful
                    .max(p.activity.last_served.load(Ordering::Relaxed));
                (useful, std::cmp::Reverse(p.connected_at))
            })
            .map(|p| p.info.id)
    }

    pub(super) fn connected(
        &mut self,
        conn: ConnInfo,
        hello: Hello,
        dialed: Option<SocketAddr>,
        activity: Arc<Activity>,
        now: Now,
    ) -> Result<NodeId, String> {
        let id = conn.id;
        if let Some(a) = dialed {
            self.dialing.remove(&a);
        }
        // The extra connection of a rotation: tried for a while once it is in the table
        // (unless it reached a peer we already had: then it only replaces that connection).
        let mut rotating = dialed.is_some_and(|a| self.rotation == Some(Rotation::Dialing(a)));
        if rotating {
            self.rotation = None;
            rotating = !self.peers.contains_key(&id);
        }
        let addr = conn.remote;
        if let Some(b) = self.book.is_banned(
            &id,
            &addr,
            dialed.is_none(),
            self.allowed.as_ref(),
            now.unix,
        ) {
            let reason = if b.id == Some(id) {
                format!("banned: {}", b.reason)
            } else {
                format!("address {} has a banned peer: {}", addr.ip(), b.reason)
            };
            self.close(conn.serial, DisconnectReason::Banned, &reason);
            return Err(reason);
        }
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&id)) {
            self.close(conn.serial, DisconnectReason::NotAllowed, "link cut");
            return Err(format!("node {} is not an allowed peer", id.short()));
        }
        if let Some(old) = self.peers.get(&id) {
            // Both sides dialed each other at once: keep the connection made by the node
            // with the smaller id, so both ends keep the same one. A second connection in the
            // same direction, or one next to an older connection, is no crossing dial: the
            // node restarted (or lost the old one), and the new one wins at once.
            let crossing = old.info.inbound != dialed.is_none()
                && now.local.duration_since(old.connected_at) < CROSSING_DIAL;
            let keep_new = !crossing || (dialed.is_some() == (self.settings.id < id));
            if !keep_new {
                self.close(
                    conn.serial,
                    DisconnectReason::Duplicate,
                    "duplicate connection",
                );
                return Ok(id);
            }
            // Blocks asked on the old connection are asked again on the new one.
            self.drop_peer(&id, DisconnectReason::Duplicate, "duplicate connection");
        }
        if dialed.is_none() {
            let inbound = self.peers.values().filter(|p| p.info.inbound).count();
            if inbound >= self.settings.max_inbound {
                match self.eviction_candidate() {
                    Some(victim) => {
                        tracing::info!(
                            "inbound slots full: evicting {} for {}",
                            victim.short(),
                            id.short()
                        );
                        self.disconnect(
                            &victim,
                            DisconnectReason::Evicted,
                            "evicted: inbound slots full",
                            now,
                        );
                    }
                    None => {
                        self.close(conn.serial, DisconnectReason::Evicted, "inbound slots full");
                        return Err("inbound slots full".into());
                    }
                }
            }
        }
        if let Some(listen) = hello.listen {
            if dialed.is_some() {
                // We reached it at this address and it proved its identity there.
                self.book.dial_succeeded(addr, id);
            } else {
                // Only claimed: worth a dial, bound to no identity until that dial proves one.
                self.book.add(listen, None, false);
            }
        }
        self.book.note_seen(id);
        let work = Work::from_be_bytes(hello.work);
        let mut peer = Peer {
            serial: conn.serial,
            activity,
            info: PeerInfo {
                id,
                addr,
                inbound: dialed.is_none(),
                height: hello.height,
                tip: hello.tip,
                work,
                rtt: None,
                bytes_in: 0,
                bytes_out: 0,
                user_agent: hello.user_agent.clone(),
                connected_since: now.unix,
                last_message: now.unix,
                protocol: hello.version,
            },
            known: HashSet::new(),
            requested_txs: HashMap::new(),
            last_heard: now.local,
            last_useful: 0,
            pings: VecDeque::new(),
            last_ping: now.local,
            connected_at: now.local,
            tx_inv: Vec::new(),
            overflow: None,
            listen: hello.listen,
            protocol: hello.version,
            partial: None,
            asked_txs_of: VecDeque::new(),
        };
        peer.know(hello.tip.0);
        tracing::info!(
            "peer {} connected ({}, {}), height {}",
            id.short(),
            addr,
            if dialed.is_some() {
                "outbound"
            } else {
                "inbound"
            },
            hello.height
        );
        self.peers.insert(id, peer);
        self.sched.add_peer(id, now.local);
        if rotating {
            self.rotation = Some(Rotation::Connected(id, conn.serial));
        }
        // The Hello we sent was made when the connection started: our tip may have moved since
        // (and been announced before this peer was in the table), so announce it now.
        let (_, tip, ours) = self.chain.tip();
        self.send(&id, Message::GetAddrs);
        if let Some(p) = self.peers.get_mut(&id)
            && !p.known.contains(&tip.0)
        {
            p.know(tip.0);
            self.send(&id, Message::InvBlocks(vec![tip]));
        }
        if work > ours {
            self.ask_headers(&id);
        }
        // Share our mempool: peers fetch what they lack.
        let txids = self.chain.mempool_txids();
        for chunk in txids.chunks(MAX_INV) {
            if let Some(p) = self.peers.get_mut(&id) {
                for t in chunk {
                    p.know(t.0);
                }
            }
            self.send(&id, Message::InvTxs(chunk.to_vec()));
        }
        self.publish(now);
        Ok(id)
    }

    /// Outbound connections, and dials under way.
    fn outbound(&self) -> usize {
        self.peers.values().filter(|p| !p.info.inbound).count() + self.dialing.len()
    }

    /// Addresses and ids of the peers we are connected to (not to be dialed).
    fn connected_sets(&self) -> (HashSet<SocketAddr>, HashSet<NodeId>) {
        let addrs = self
            .peers
            .values()
            .flat_map(|p| [Some(p.info.addr), p.listen])
            .flatten()
            .collect();
        (addrs, self.peers.keys().copied().collect())
    }

    /// Dial book entries that are due, while outbound connections are below the limit.
    pub(super) fn dial_due(&mut self, now: Now) {
        let room = self.settings.max_outbound.saturating_sub(self.outbound());
        if room == 0 {
            return;
        }
        let (connected_addrs, connected_ids) = self.connected_sets();
        let due = self.book.due(
            now.unix,
            room,
            &DialFilter {
                own_id: self.settings.id,
                connected_addrs: &connected_addrs,
                connected_ids: &connected_ids,
                dialing: &self.dialing,
                allowed: self.allowed.as_ref(),
            },
        );
        for target in due {
            self.dialing.insert(target.addr);
            self.out.push(Output::Dial(target));
        }
    }

    /// Rotation: every [`ROTATE_EVERY`] with outbound slots full, one extra outbound
    /// connection, to the address in the book that was the extra one longest ago (never,
    /// first; ties broken by a hash of our id and the address, so that nodes spread out). If
    /// it gives us a block or a transaction within [`ROTATION_LOOK`] it stays and the
    /// outbound peer useful longest ago goes (never one given with `--connect`); otherwise
    /// it goes, unless it is a `--connect` peer or a slot freed meanwhile has room for it. Both ends meanwhile learn each other's tip, and whichever is behind syncs.
    ///
    /// Without it, a network that splits and heals while both sides keep mining can stay
    /// split for good: while the link is down every node fills its outbound slots with peers
    /// of its own side, and full slots dial nobody (Bitcoin Core rotates an extra
    /// block-relay peer for the same reason).
    pub(super) fn rotate(&mut self, now: Now) {
        match self.rotation {
            // Settled by the dial (`connected` or `DialFailed`).
            Some(Rotation::Dialing(_)) => {}
            Some(Rotation::Connected(id, serial)) => {
                // Gone, or since replaced by another connection: no longer ours to judge.
                let Some(p) = self
                    .peers
                    .get(&id)
                    .filter(|p| p.serial == serial && !p.info.inbound)
                else {
                    self.rotation = None;
                    return;
                };
                if now.local.duration_since(p.connected_at) < ROTATION_LOOK {
                    return;
                }
                self.rotation = None;
                // A peer given with --connect, or one that a slot freed meanwhile has room
                // for, stays whatever it gave.
                let pinned = self.book.entry(&p.info.addr).is_some_and(|e| e.pinned);
                let room = self.outbound() <= self.settings.max_outbound;
                if p.last_useful < p.info.connected_since && !pinned && !room {
                    self.disconnect(&id, DisconnectReason::Normal, "rotation: nothing new", now);
                    return;
                }
                // Useful: it stays, and the least useful other outbound peer makes room.
                if self.outbound() > self.settings.max_outbound {
                    let victim = self
                        .peers
                        .values()
                        .filter(|q| {
                            !q.info.inbound
                                && q.info.id != id
                                && !self.book.entry(&q.info.addr).is_some_and(|e| e.pinned)
                        })
                        .min_by_key(|q| (q.last_useful, q.connected_at))
                        .map(|q| q.info.id);
                    if let Some(v) = victim {
                        self.disconnect(
                            &v,
                            DisconnectReason::Evicted,
                            "rotated out for a more useful peer",
                            now,
                        );
                    }
                }
            }
            None => {
                if now.local.duration_since(self.last_rotation) < ROTATE_EVERY
                    || self.outbound() < self.settings.max_outbound
                {
                    return;
                }
                self.last_rotation = now.local;
                let (connected_addrs, connected_ids) = self.connected_sets();
                let own = self.settings.id;
                let rotated = &self.rotated;
                let target = self.book.pick(
                    now.unix,
                    &DialFilter {
                        own_id: own,
                        connected_addrs: &connected_addrs,
                        connected_ids: &connected_ids,
                        dialing: &self.dialing,
                        allowed: self.allowed.as_ref(),
                    },
                    |e| (rotated.get(&e.addr).copied(), spread(&own, &e.addr)),
                );
                let Some(target) = target else { return };
                if self.rotated.len() >= crate::node::p2p::book::MAX_BOOK * 2 {
                    self.rotated.clear();
                }
                self.rotated.insert(target.addr, now.local);
                tracing::info!("rotation: trying an extra peer at {}", target.addr);
                self.rotation = Some(Rotation::Dialing(target.addr));
                self.dialing.insert(target.addr);
                self.out.push(Output::Dial(target));
            }
        }
    }
}

/// A number for `addr` that differs from node to node: the order in which a node tries
/// addresses for rotation.
fn spread(own: &NodeId, addr: &SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = siphasher::sip::SipHasher13::new_with_key(&[0; 16]);
    own.0.hash(&mut h);
    addr.hash(&mut h);
    h.finish()
}
