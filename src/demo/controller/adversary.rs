//! Adversaries the demo stages, each a demo node turned hostile with real blocks, never faked:
//!
//! - [`Demo::relay_invalid_block`]: the node's own block template with an overpaid coinbase,
//!   solved for real, announced to every other node over the wire under the node's own
//!   identity (its QUIC key). Honest nodes download it, refuse it and ban the sender with the
//!   reason; [`Demo::banned_by`] reads those bans back from their network views.
//! - [`Demo::majority_attack`]: the attacker pays a victim on the public network, spends the
//!   same coin to itself on a private branch that its own miner extends (its links cut, so its
//!   blocks stay private), and releases the branch once the payment has its confirmations and
//!   the branch has more work than the public chain by a block. The honest nodes reorganise
//!   onto it and the payment is reversed.
//!
//! The node would never relay a block it refuses, so the invalid-block relayer offers its
//! block through [`crate::node::offer_block`], which speaks the wire protocol by
//! hand under the node's identity; everything else goes through the node's handle and the
//! controller's links.

use super::{Demo, DemoError, lock, node_err};
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::merkle::merkle_root;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the invalid coinbase claims beyond what it may: the block's subsidy once more.
fn overpay(block: &mut Block, by: Amount) -> Option<()> {
    let out = block.txs.first_mut()?.outputs.first_mut()?;
    out.amount = out.amount.checked_add(by)?;
    block.header.merkle_root = merkle_root(&block.txids());
    Some(())
}

/// One honest node's answer to the invalid block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub node: usize,
    /// Why the connection ended, as the honest node said it (or what ended it).
    pub reason: String,
}

/// What [`Demo::relay_invalid_block`] did.
#[derive(Clone, Debug)]
pub struct InvalidRelay {
    pub block: BlockHash,
    pub height: u64,
    /// What the coinbase claims, and what it may claim.
    pub claimed: Amount,
    pub allowed: Amount,
    /// The nodes it was offered to, each with how it ended (`None`: still open at the limit).
    pub offered: Vec<(usize, Option<String>)>,
}

/// How a majority attack is set up.
#[derive(Clone, Debug)]
pub struct MajorityAttack {
    pub attacker: usize,
    pub victim: usize,
    pub amount: Amount,
    /// Confirmations the payment must have on the victim's node before the release.
    pub confirmations: u64,
    pub within: Duration,
}

/// What a majority attack did.
#[derive(Clone, Debug)]
pub struct MajorityOutcome {
    /// The payment to the victim, and the spend of the same coin back to the attacker.
    pub payment: Txid,
    pub double_spend: Txid,
    /// The attacker's height when its links were cut: its private branch starts above it.
    pub fork_height: u64,
    /// The payment's block height and its confirmations on the victim's node at the release.
    pub paid_at: u64,
    pub confirmations: u64,
    /// Blocks on each side of the fork at the release.
    pub private_blocks: u64,
    pub public_blocks: u64,
    /// Whether the victim's node took the attacker's branch within the time left.
    pub victim_reorganised: bool,
}

impl std::fmt::Display for MajorityOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "payment {} had {} confirmation{} (block {}) when the attacker released {} private \
             block{} against {} public from height {}; {}",
            self.payment.short(),
            self.confirmations,
            if self.confirmations == 1 { "" } else { "s" },
            self.paid_at,
            self.private_blocks,
            if self.private_blocks == 1 { "" } else { "s" },
            self.public_blocks,
            self.fork_height,
            if self.victim_reorganised {
                format!(
                    "the victim took its branch, where {} spends the same coin",
                    self.double_spend.short()
                )
            } else {
                "the victim has not taken its branch yet".to_string()
            }
        )
    }
}

impl Demo {
    /// Spend the coins of node `i`'s payment `txid` (one the demo made) again, all to node
    /// `i`'s own wallet, submitted to node `i`: a payment that conflicts with it.
    async fn spend_again(&self, i: usize, txid: &Txid) -> Result<Txid, DemoError> {
        let paid = lock(&self.inner.sent).get(txid).cloned().ok_or_else(|| {
            DemoError::Bad(format!("{} is not a payment the demo made", txid.short()))
        })?;
        let to = self.inner.slots[i].address;
        self.pay_with(i, i, move |w, node| w.conflicting_payment(node, &paid, to))
            .await
    }

    /// Whether node `i`'s own links are held down while an adversary speaks for it.
    pub(super) fn is_muted(&self, i: usize) -> bool {
        lock(&self.inner.muted).contains(&i)
    }

    /// The honest nodes holding a ban on node `i`, each with its reason.
    pub fn banned_by(&self, i: usize) -> Vec<Refusal> {
        let Some(id) = self.node_id(i) else {
            return Vec::new();
        };
        (0..self.len())
            .filter(|&j| j != i)
            .filter_map(|j| {
                let r = self.running(j)?;
                let ban = r.net.view().bans.into_iter().find(|b| b.id == Some(id))?;
                Some(Refusal {
                    node: j,
                    reason: ban.reason,
                })
            })
            .collect()
    }

    /// Make node `i` relay an invalid block: its own template with a coinbase that claims
    /// the subsidy twice, solved for real, offered under node `i`'s identity to every other
    /// running node (its own links are held down meanwhile, so the two do not cross). Each
    /// honest node asks for the block, refuses it and bans node `i` with the reason. Ends
    /// when every offer is closed or `within` has passed.
    pub async fn relay_invalid_block(
        &self,
        i: usize,
        within: Duration,
    ) -> Result<InvalidRelay, DemoError> {
        let slot = self.check(i)?;
        let run = self
            .running(i)
            .ok_or_else(|| DemoError::Bad(format!("node {} is stopped", i + 1)))?;
        let targets: Vec<(usize, SocketAddr, crate::node::NodeId)> = (0..self.len())
            .filter(|&j| j != i && self.is_running(j))
            .filter_map(|j| {
                let s = &self.inner.slots[j];
                (*lock(&s.listen)).map(|a| (j, a, s.id))
            })
            .collect();
        if targets.is_empty() {
            return Err(DemoError::Bad("no other node is running".into()));
        }
        let t = run
            .node
            .block_template(slot.address)
            .await
            .map_err(|e| node_err(i, e))?;
        let params = run.node.params();
        let allowed = t.block.txs.first().map_or(Amount::ZERO, |c| {
            Amount::checked_sum(c.outputs.iter().map(|o| o.amount)).unwrap_or(Amount::ZERO)
        });
        let mut block = t.block;
        overpay(&mut block, params.subsidy(t.height))
            .ok_or_else(|| DemoError::Bad("the template has no coinbase to overpay".into()))?;
        let claimed = block
            .txs
            .first()
            .and_then(|c| Amount::checked_sum(c.outputs.iter().map(|o| o.amount)))
            .unwrap_or(allowed);
        let target = t.target;
        // Real work: the block must pass every check before the coinbase's. (On devnet this
        // can take a while: it gives up at the step's limit.)
        let deadline = Instant::now() + within;
        let block = tokio::task::spawn_blocking(move || {
            for n in 0..=u64::MAX {
                block.header.nonce = n;
                if target.is_met_by(&block.header.hash().0) {
                    return Some(block);
                }
                if n % 65_536 == 0 && Instant::now() >= deadline {
                    return None;
                }
            }
            None
        })
        .await
        .map_err(|e| node_err(i, e))?
        .ok_or_else(|| {
            DemoError::Bad(format!(
                "node {}: no proof of work found for the invalid block within {:.0} s",
                i + 1,
                within.as_secs_f64()
            ))
        })?;
        let work = run.node.snapshot().chainwork.saturating_add(target.work());
        tracing::warn!(
            "node {} relays invalid block {} (coinbase {claimed}, allowed {allowed})",
            i + 1,
            block.hash()
        );
        lock(&self.inner.muted).insert(i);
        self.relink(&[i].into_iter().collect()).await;
        // Its own connections must be gone, or the honest nodes would take the relay's for a
        // duplicate of one of them.
        let quiet = Instant::now() + Duration::from_secs(5);
        while !run.net.view().peers.is_empty() && Instant::now() < quiet {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let to: Vec<(SocketAddr, crate::node::NodeId)> =
            targets.iter().map(|&(_, a, id)| (a, id)).collect();
        let ends = crate::node::offer_block(
            &slot.dir,
            params.genesis_hash,
            &to,
            &block,
            t.height,
            work,
            within,
        )
        .await
        .map_err(|e| node_err(i, e));
        let offered = ends.map(|ends| {
            targets
                .iter()
                .map(|&(j, ..)| j)
                .zip(ends)
                .collect::<Vec<_>>()
        });
        lock(&self.inner.muted).remove(&i);
        self.relink(&[i].into_iter().collect()).await;
        Ok(InvalidRelay {
            block: block.hash(),
            height: t.height,
            claimed,
            allowed,
            offered: offered?,
        })
    }

    /// Stage a majority attack (see [`MajorityAttack`]): the attacker's links are cut (its
    /// miner goes on, privately), it pays the victim through the victim's node and spends the
    /// same coin to itself on its own node, then waits until the payment has its
    /// confirmations on the victim's node and its own branch has more work than any honest
    /// node's chain, and heals its links: the branch is released. The attacker and the
    /// honest nodes must be mining (with their powers) for it to get anywhere.
    pub async fn majority_attack(&self, a: &MajorityAttack) -> Result<MajorityOutcome, DemoError> {
        let (att, vic) = (a.attacker, a.victim);
        self.check(att)?;
        self.check(vic)?;
        if att == vic {
            return Err(DemoError::Bad(
                "the attacker cannot be its own victim".into(),
            ));
        }
        let (Some(attacker), true) = (self.running(att), self.is_running(vic)) else {
            return Err(DemoError::Bad(
                "the attacker and the victim must be running".into(),
            ));
        };
        let deadline = Instant::now() + a.within;
        self.partition(&[att]).await?;
        let fork_height = attacker.node.tip().map_err(|e| node_err(att, e))?.height;
        let payment = match self.send(att, vic, a.amount, Some(vic)).await {
            Ok(p) => p,
            Err(e) => {
                let _ = self.heal(&[att]).await;
                return Err(e);
            }
        };
        // The same coins, all back to the attacker, on its own node only.
        let double_spend = match self.spend_again(att, &payment).await {
            Ok(d) => d,
            Err(e) => {
                let _ = self.heal(&[att]).await;
                return Err(e);
            }
        };
        // Wait for both conditions; the controller watches every node, as an attacker with
        // listening nodes on the public network would.
        let (paid_at, confirmations, private_blocks, public_blocks) = loop {
            let place = self.tx_place(vic, &payment).flatten();
            // The stores, not the snapshots: a snapshot can trail the store by a block, and
            // a release on a tie is a lost race.
            let mine = match attacker.node.tip() {
                Ok(m) => m,
                Err(e) => {
                    let _ = self.heal(&[att]).await;
                    return Err(node_err(att, e));
                }
            };
            let ours_has_spend = self.tx_state(att, &double_spend) == Some(true);
            let public = (0..self.len())
                .filter(|&j| j != att)
                .filter_map(|j| self.running(j).and_then(|r| r.node.tip().ok()))
                .max_by_key(|s| s.chainwork);
            if let (Some((h, c)), Some(p)) = (place, &public)
                && c >= a.confirmations
                && ours_has_spend
                // A block's margin: an honest block found while the branch travels must not
                // turn the release into a tie.
                && mine.chainwork
                    > p.chainwork.saturating_add(
                        mine.header.bits.to_target().map(|t| t.work()).unwrap_or_default(),
                    )
            {
                break (
                    h,
                    c,
                    mine.height.saturating_sub(fork_height),
                    p.height.saturating_sub(fork_height),
                );
            }
            if Instant::now() >= deadline {
                let _ = self.heal(&[att]).await;
                let h = public.map_or(0, |p| p.height);
                return Err(DemoError::Bad(format!(
                    "not within {:.0} s: the payment has {} of {} confirmations on node {}; the \
                     private branch is at height {} against {h}{}",
                    a.within.as_secs_f64(),
                    place.map_or(0, |p| p.1),
                    a.confirmations,
                    vic + 1,
                    mine.height,
                    if ours_has_spend {
                        ""
                    } else {
                        " and does not hold the spend to the attacker yet"
                    }
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tracing::warn!(
            "node {} releases {private_blocks} private blocks against {public_blocks}",
            att + 1
        );
        self.heal(&[att]).await?;
        let mut victim_reorganised = false;
        while Instant::now() < deadline {
            if self.tx_state(vic, &payment).is_none()
                && self.tx_state(vic, &double_spend) == Some(true)
            {
                victim_reorganised = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(MajorityOutcome {
            payment,
            double_spend,
            fork_height,
            paid_at,
            confirmations,
            private_blocks,
            public_blocks,
            victim_reorganised,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::Network;

    #[test]
    fn an_overpaid_coinbase_claims_more_and_changes_the_merkle_root() {
        let mut b = Network::Regtest.params().genesis.clone();
        let before = (b.txs[0].outputs[0].amount, b.header.merkle_root);
        overpay(&mut b, Amount::from_units(7)).unwrap();
        assert_eq!(
            b.txs[0].outputs[0].amount,
            before.0.checked_add(Amount::from_units(7)).unwrap()
        );
        assert_ne!(b.header.merkle_root, before.1);
        assert_eq!(b.header.merkle_root, merkle_root(&b.txids()));
    }
}
