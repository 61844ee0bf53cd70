//! A selfish miner (Eyal and Sirer, "Majority is not enough", 2014), staged on real nodes.
//!
//! The selfish node's links are cut, so the blocks its own miner finds stay private: its
//! chain is the private branch. The strategy watches every node (as a pool with listening
//! nodes next to every miner would) and acts on the heights of the two branches above their
//! common block ([`decide`]): it adopts the public chain when that is longer (the public
//! blocks are handed to its node, which takes the heavier chain itself), publishes its block
//! in a tie, publishes everything when one block ahead after an honest block, and otherwise
//! publishes as many blocks as the public chain has. Publishing hands the real blocks to the
//! honest nodes it reaches (`reach`: its direct links); they relay them on by the protocol.
//! In a tie, the honest nodes that got its block first mine on it: γ is their share of the
//! honest power, measured from how the ties resolved.
//!
//! The run ends after `blocks` best-chain blocks; [`SelfishOutcome`] compares the selfish
//! node's share of those with its share of all the blocks found (paired, so that luck in
//! finding blocks cancels) and with Eyal and Sirer's formula.

use super::{Demo, DemoError, lock};
use crate::core::hash::BlockHash;
use crate::node::NodeEvent;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How a selfish mining run is set up.
#[derive(Clone, Debug)]
pub struct SelfishMining {
    pub node: usize,
    /// Honest nodes its published blocks reach directly (empty: every other node).
    pub reach: Vec<usize>,
    /// Best-chain blocks to measure over.
    pub blocks: u64,
    pub within: Duration,
}

/// What the strategy does next, from the two branches' heights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The public chain is longer: take it.
    Adopt,
    /// Publish the private blocks up to this height.
    Publish(u64),
    Wait,
}

/// Eyal and Sirer's strategy as a function of the private tip's height `private`, the public
/// tip's height `public`, the height of their common block `base` and the height up to which
/// the private branch is published `published`.
pub fn decide(private: u64, public: u64, base: u64, published: u64) -> Decision {
    let branch = private.saturating_sub(base);
    if private < public {
        return Decision::Adopt;
    }
    match private - public {
        // A tie: publish the branch and race (or wait for the race to end).
        0 if branch > 0 && published < private => Decision::Publish(private),
        0 => Decision::Wait,
        // One ahead: keep a fresh lead of one; after a race or an honest block that cut a
        // lead of two, publish everything and win.
        1 if branch >= 2 => Decision::Publish(private),
        1 => Decision::Wait,
        // Well ahead: publish as much as the public chain has.
        _ if published < public => Decision::Publish(public),
        _ => Decision::Wait,
    }
}

/// Eyal and Sirer's expected share of the best chain for a pool with share `alpha` of the
/// power and tie share `gamma` (their equation 8).
pub fn eyal_sirer_share(alpha: f64, gamma: f64) -> f64 {
    let a = alpha;
    (a * (1.0 - a).powi(2) * (4.0 * a + gamma * (1.0 - 2.0 * a)) - a.powi(3))
        / (1.0 - a * (1.0 + (2.0 - a) * a))
}

/// The gain — share of the best chain less share of the blocks found — over runs of `blocks`
/// best-chain blocks of Eyal and Sirer's model: its mean, its standard deviation and the
/// share of runs with no gain (≤ 0). 2,000 model runs from a fixed seed (the same arguments
/// give the same answer).
pub fn model_gain(alpha: f64, gamma: f64, blocks: u64) -> ModelGain {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let runs = 2_000;
    let gains: Vec<f64> = (0..runs)
        .map(|_| {
            // Blocks of each branch above their common block, and whether a tie is raced.
            let (mut private, mut public, mut race) = (0u64, 0u64, false);
            let (mut ours, mut theirs, mut found_ours, mut found) = (0u64, 0u64, 0u64, 0u64);
            // At α ≥ 1/2 the lead can grow for good: a run stops after this many blocks.
            let cap = blocks.saturating_mul(1_000);
            while ours + theirs < blocks && found < cap {
                found += 1;
                if rng.unit() < alpha {
                    found_ours += 1;
                    if race {
                        // Its two blocks win the race.
                        ours += 2;
                        (private, public, race) = (0, 0, false);
                    } else {
                        private += 1;
                    }
                } else if race {
                    // The honest block lands on its block (γ) or on the other.
                    if rng.unit() < gamma {
                        ours += 1;
                        theirs += 1;
                    } else {
                        theirs += 2;
                    }
                    (private, public, race) = (0, 0, false);
                } else {
                    let lead = private - public;
                    public += 1;
                    match lead {
                        0 => {
                            theirs += 1;
                            (private, public) = (0, 0);
                        }
                        1 => race = true,
                        2 => {
                            ours += private;
                            (private, public) = (0, 0);
                        }
                        _ => {}
                    }
                }
            }
            ours as f64 / (ours + theirs).max(1) as f64 - found_ours as f64 / found.max(1) as f64
        })
        .collect();
    let mean = gains.iter().sum::<f64>() / runs as f64;
    let var = gains.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / runs as f64;
    ModelGain {
        mean,
        sd: var.sqrt(),
        none: gains.iter().filter(|g| **g <= 0.0).count() as f64 / runs as f64,
    }
}

/// What Eyal and Sirer's model says of the gain over a run (see [`model_gain`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelGain {
    pub mean: f64,
    pub sd: f64,
    /// Share of model runs with no gain.
    pub none: f64,
}

/// A small fixed-seed generator for the model runs.
struct Xorshift(u64);

impl Xorshift {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a selfish mining run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfishOutcome {
    pub node: usize,
    /// Its share of the mining power (its power over the power of the nodes mining).
    pub alpha: f64,
    /// Best-chain blocks measured, and how many of them it mined.
    pub blocks: u64,
    pub ours: u64,
    /// Blocks found by every node in the run (including those that ended stale), and by it.
    pub found: u64,
    pub found_ours: u64,
    /// Ties it raced: won by its own next block, by an honest block built on its block (γ),
    /// or lost.
    pub races_won: u64,
    pub races_gamma: u64,
    pub races_lost: u64,
    /// Honest blocks found in the measured heights that the best chain left out: replaced by
    /// one of the pool's (as the strategy means to), or by another honest block (two honest
    /// nodes finding a block within the time a block takes to travel: a loss the model does
    /// not have, and a single pool never suffers).
    pub honest_lost_to_pool: u64,
    pub honest_lost_to_honest: u64,
}

impl SelfishOutcome {
    pub fn share(&self) -> f64 {
        self.ours as f64 / self.blocks.max(1) as f64
    }
    pub fn found_share(&self) -> f64 {
        self.found_ours as f64 / self.found.max(1) as f64
    }
    /// γ as measured: of the ties honest blocks settled, the share settled on its block.
    pub fn gamma(&self) -> Option<f64> {
        let n = self.races_gamma + self.races_lost;
        (n > 0).then(|| self.races_gamma as f64 / n as f64)
    }
    /// Its share of the best chain less its share of the blocks found.
    pub fn gain(&self) -> f64 {
        self.share() - self.found_share()
    }
}

impl std::fmt::Display for SelfishOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gamma = self.gamma().unwrap_or(0.0);
        let gamma_text = match self.gamma() {
            Some(g) => format!("γ = {g:.2}"),
            None => "γ not measured, taken as 0".to_string(),
        };
        write!(
            f,
            "node {} mined {} of {} best-chain blocks ({:.1}%) and found {} of {} blocks \
             ({:.1}%); {} ties: {} won by its next block, {} settled on its block, {} lost \
             ({gamma_text}); honest blocks left out: {} for the pool's, {} for another honest \
             block; Eyal–Sirer predict {:.1}% at α = {:.1}% (its share of the blocks found; \
             {:.1}% of the power)",
            self.node + 1,
            self.ours,
            self.blocks,
            100.0 * self.share(),
            self.found_ours,
            self.found,
            100.0 * self.found_share(),
            self.races_won + self.races_gamma + self.races_lost,
            self.races_won,
            self.races_gamma,
            self.races_lost,
            self.honest_lost_to_pool,
            self.honest_lost_to_honest,
            100.0 * eyal_sirer_share(self.found_share(), gamma),
            100.0 * self.found_share(),
            100.0 * self.alpha,
        )
    }
}

/// One node's block event, for the strategy's loop.
struct Seen {
    node: usize,
    hash: BlockHash,
    height: u64,
    mined: bool,
}

impl Demo {
    /// The outcome of the last selfish mining run.
    pub fn selfish_outcome(&self) -> Option<SelfishOutcome> {
        lock(&self.inner.selfish).clone()
    }

    /// Height of the last block node `a` and node `b` share on their active chains (walking
    /// down from `from`).
    fn common_height(&self, a: usize, b: usize, from: u64) -> Option<u64> {
        let (ra, rb) = (self.running(a)?, self.running(b)?);
        let mut h = from;
        loop {
            let (x, y) = (ra.node.hash_at(h).ok()?, rb.node.hash_at(h).ok()?);
            if x.is_some() && x == y {
                return Some(h);
            }
            h = h.checked_sub(1)?;
        }
    }

    /// Run Eyal and Sirer's selfish mining strategy on node `s.node` (see the module doc)
    /// until `s.blocks` best-chain blocks are measured, then stop every node's mining, publish
    /// what is left, heal its links and settle. The nodes must be mining, with their powers.
    pub async fn selfish_mining(&self, s: &SelfishMining) -> Result<SelfishOutcome, DemoError> {
        let me = s.node;
        self.check(me)?;
        let honest: Vec<usize> = (0..self.len())
            .filter(|&j| j != me && self.is_running(j))
            .collect();
        if !self.is_running(me) || honest.is_empty() {
            return Err(DemoError::Bad(
                "the selfish node and at least one other node must be running".into(),
            ));
        }
        let reach: Vec<usize> = if s.reach.is_empty() {
            honest.clone()
        } else {
            s.reach.clone()
        };
        if let Some(j) = reach.iter().find(|j| !honest.contains(j)) {
            return Err(DemoError::Bad(format!(
                "node {} is not a running node other than the selfish one",
                j + 1
            )));
        }
        let status = self.status(false);
        let alpha = f64::from(status[me].power_share_pm) / 1000.0;
        if !status[me].mining || alpha == 0.0 {
            return Err(DemoError::Bad(format!(
                "node {} must be mining with some power",
                me + 1
            )));
        }
        if alpha >= 0.5 {
            return Err(DemoError::Bad(format!(
                "node {} has {:.0}% of the mining power: with half or more it never needs to \
                 publish (stage a majority attack instead)",
                me + 1,
                100.0 * alpha
            )));
        }
        if s.blocks == 0 {
            return Err(DemoError::Bad(
                "a selfish mining run needs some blocks".into(),
            ));
        }
        let deadline = Instant::now() + s.within;
        self.partition(&[me]).await?;
        // Every node's mined and connected blocks wake the strategy at once.
        let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
        let mut forwarders = Vec::new();
        for j in std::iter::once(me).chain(honest.iter().copied()) {
            let Some(r) = self.running(j) else { continue };
            let mut events = r.node.events();
            let tx = tx.clone();
            forwarders.push(tokio::spawn(async move {
                loop {
                    let seen = match events.recv().await {
                        Ok(NodeEvent::BlockMined { hash, height }) => Seen {
                            node: j,
                            hash,
                            height,
                            mined: true,
                        },
                        Ok(NodeEvent::BlockConnected { hash, height }) => Seen {
                            node: j,
                            hash,
                            height,
                            mined: false,
                        },
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    };
                    if tx.send(seen).is_err() {
                        return;
                    }
                }
            }));
        }
        drop(tx);
        let result = self
            .play_selfish(s, &honest, &reach, alpha, deadline, &mut rx)
            .await;
        for f in forwarders {
            f.abort();
        }
        if result.is_err() {
            // As at the end of a run: mining stops and the links come back.
            for j in 0..self.len() {
                let _ = self.set_mining(j, false).await;
            }
            let _ = self.heal(&[me]).await;
        }
        let outcome = result?;
        *lock(&self.inner.selfish) = Some(outcome.clone());
        Ok(outcome)
    }

    async fn play_selfish(
        &self,
        s: &SelfishMining,
        honest: &[usize],
        reach: &[usize],
        alpha: f64,
        deadline: Instant,
        rx: &mut mpsc::UnboundedReceiver<Seen>,
    ) -> Result<SelfishOutcome, DemoError> {
        let me = s.node;
        let mine = self
            .running(me)
            .ok_or_else(|| DemoError::Bad(format!("node {} stopped", me + 1)))?;
        let public_best = || {
            honest
                .iter()
                .filter_map(|&j| self.running(j).and_then(|r| Some((j, r.node.tip().ok()?))))
                .max_by_key(|(_, s)| s.chainwork)
        };
        // Measured from the last block the selfish node shares with the public chain (one it
        // mined just before its links were cut may not have gone out).
        let own = mine.node.tip().map_or(0, |t| t.height);
        let start = public_best()
            .and_then(|(best, p)| self.common_height(me, best, own.min(p.height)))
            .unwrap_or(own);
        let mut base = start;
        let mut published = start;
        let mut hint = start;
        // (height, our block) of a tie being raced.
        let mut race: Option<(u64, BlockHash)> = None;
        let mut out = SelfishOutcome {
            node: me,
            alpha,
            blocks: 0,
            ours: 0,
            found: 0,
            found_ours: 0,
            races_won: 0,
            races_gamma: 0,
            races_lost: 0,
            honest_lost_to_pool: 0,
            honest_lost_to_honest: 0,
        };
        let mut honest_found: Vec<(BlockHash, u64)> = Vec::new();
        loop {
            if Instant::now() >= deadline {
                return Err(DemoError::Bad(format!(
                    "not within {:.0} s: {} of {} best-chain blocks measured",
                    s.within.as_secs_f64(),
                    base.saturating_sub(start),
                    s.blocks
                )));
            }
            // Wait for a block anywhere (or look again after 20 ms).
            if let Ok(Some(first)) =
                tokio::time::timeout(Duration::from_millis(20), rx.recv()).await
            {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                for seen in batch {
                    if seen.mined {
                        out.found += 1;
                        if seen.node == me {
                            out.found_ours += 1;
                        } else {
                            honest_found.push((seen.hash, seen.height));
                        }
                    }
                    if seen.node != me {
                        hint = hint.max(seen.height);
                    }
                }
            }
            let Some((best, public)) = public_best() else {
                return Err(DemoError::Bad("no honest node is running".into()));
            };
            // A block just mined may not be in its node's snapshot yet.
            let public_height = public.height.max(hint);
            let private = mine.node.tip().map_or(0, |t| t.height);
            // Their common block (lower after a lost race: the public chain replaced ours).
            if let Some(h) = self.common_height(me, best, private.min(public.height)) {
                base = h;
                published = published.max(base);
            }
            // A race ends once an honest chain is past it.
            if let Some(r) = race
                && public.height > r.0
            {
                self.settle_race(r, best, &mut out);
                race = None;
            }
            if base.saturating_sub(start) >= s.blocks {
                break;
            }
            match decide(private, public_height, base, published) {
                Decision::Adopt => {
                    // Hand the public chain to the selfish node: it takes the heavier chain.
                    let Some(from) = self.running(best) else {
                        continue;
                    };
                    for h in base + 1..=public.height {
                        let block = from
                            .node
                            .hash_at(h)
                            .ok()
                            .flatten()
                            .and_then(|hash| from.node.block(&hash).ok().flatten());
                        if let Some(b) = block {
                            let _ = mine.node.submit_block(b).await;
                        }
                    }
                }
                Decision::Publish(to) => {
                    if private == public_height && private > base {
                        // A tie before the last was settled: settle that one as it stands.
                        if let Some(r) = race.take() {
                            self.settle_race(r, best, &mut out);
                        }
                        race = mine
                            .node
                            .hash_at(private)
                            .ok()
                            .flatten()
                            .map(|h| (private, h));
                    } else if private == public_height + 1
                        && let Some((h, _)) = race.take()
                        && private == h + 1
                    {
                        out.races_won += 1;
                    }
                    self.publish(me, reach, published + 1, to).await;
                    published = to;
                }
                Decision::Wait => {}
            }
        }
        out.blocks = base.saturating_sub(start);
        // Count the measured blocks on the selfish node's own chain: up to `base` it is the
        // chain the honest nodes share.
        let address = self.address(me);
        if let Some(r) = self.running(me) {
            let mut pool_at = std::collections::HashMap::new();
            for h in start + 1..=base {
                let hash = r.node.hash_at(h).ok().flatten();
                let coinbase_to_us = hash
                    .and_then(|hash| r.node.block(&hash).ok().flatten())
                    .and_then(|b| {
                        b.txs
                            .first()
                            .and_then(|c| c.outputs.first())
                            .map(|o| o.address)
                    })
                    == address;
                if coinbase_to_us {
                    out.ours += 1;
                }
                pool_at.insert(h, (hash, coinbase_to_us));
            }
            for (hash, height) in honest_found {
                match pool_at.get(&height) {
                    Some((kept, _)) if *kept == Some(hash) => {}
                    Some((_, true)) => out.honest_lost_to_pool += 1,
                    Some((_, false)) => out.honest_lost_to_honest += 1,
                    None => {}
                }
            }
        }
        // The end: mining stops, what is left is published, the links come back.
        for j in 0..self.len() {
            let _ = self.set_mining(j, false).await;
        }
        let private = mine.node.tip().map_or(0, |t| t.height);
        if private > published {
            self.publish(me, reach, published + 1, private).await;
        }
        self.heal(&[me]).await?;
        // Two branches of equal work stay two until a block lands on one: if the nodes are
        // not on one tip after a second, an honest node mines one block.
        let settle = Instant::now();
        let mut tie_broken = false;
        while settle.elapsed() < Duration::from_secs(10) && self.common_tip().is_none() {
            if !tie_broken && settle.elapsed() > Duration::from_secs(1) {
                tie_broken = true;
                let _ = self.mine(honest[0], 1).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(out)
    }

    /// Count a tie raced at height `r.0` with our block `r.1` as settled by where node
    /// `best`'s chain has it: on our block (γ) or not.
    fn settle_race(&self, r: (u64, BlockHash), best: usize, out: &mut SelfishOutcome) {
        let settled = self
            .running(best)
            .and_then(|run| run.node.hash_at(r.0).ok().flatten());
        if settled == Some(r.1) {
            out.races_gamma += 1;
        } else {
            out.races_lost += 1;
        }
    }

    /// Hand node `me`'s blocks at heights `from..=to` to the nodes in `reach`, in order, each
    /// node at once.
    async fn publish(&self, me: usize, reach: &[usize], from: u64, to: u64) {
        let Some(mine) = self.running(me) else { return };
        let blocks: Vec<_> = (from..=to)
            .filter_map(|h| {
                let hash = mine.node.hash_at(h).ok().flatten()?;
                mine.node.block(&hash).ok().flatten()
            })
            .collect();
        let sends = reach.iter().filter_map(|&j| self.running(j)).map(|r| {
            let blocks = blocks.clone();
            async move {
                for b in blocks {
                    let _ = r.node.submit_block(b).await;
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_follows_eyal_and_sirer() {
        use Decision::*;
        // (private, public, base, published) → decision
        let table = [
            // Same chain: nothing to do. Behind: adopt.
            ((5, 5, 5, 5), Wait),
            ((5, 6, 5, 5), Adopt),
            // A fresh lead of one is kept; a lead of two too.
            ((6, 5, 5, 5), Wait),
            ((7, 5, 5, 5), Wait),
            // Lead of one, then an honest block: a tie; publish and race.
            ((6, 6, 5, 5), Publish(6)),
            // The race is on (published): wait.
            ((6, 6, 5, 6), Wait),
            // In the race it finds the next block: publish everything and win.
            ((7, 6, 5, 6), Publish(7)),
            // Lead of two, then an honest block: publish everything and win.
            ((7, 6, 5, 5), Publish(7)),
            // Lead of three, then an honest block: publish the first unpublished one.
            ((8, 6, 5, 5), Publish(6)),
            ((8, 6, 5, 6), Wait),
            ((9, 7, 5, 6), Publish(7)),
        ];
        for ((p, h, b, pb), want) in table {
            assert_eq!(
                decide(p, h, b, pb),
                want,
                "private {p} public {h} base {b} pub {pb}"
            );
        }
    }

    #[test]
    fn the_formula_and_the_model_agree_with_the_paper() {
        // At α = 1/3 the pool breaks even at γ = 0 and gains with γ.
        assert!((eyal_sirer_share(1.0 / 3.0, 0.0) - 1.0 / 3.0).abs() < 1e-9);
        assert!((eyal_sirer_share(1.0 / 3.0, 0.5) - 0.3846).abs() < 1e-3);
        // An honest-sized pool below 1/4 loses at γ = 1/2.
        assert!(eyal_sirer_share(0.2, 0.5) < 0.2);
        let m = model_gain(1.0 / 3.0, 0.5, 300);
        assert!((0.04..0.065).contains(&m.mean), "{m:?}");
        assert!((0.015..0.035).contains(&m.sd), "{m:?}");
        assert!(m.none < 0.02, "{m:?}");
        assert_eq!(model_gain(1.0 / 3.0, 0.5, 300), m, "fixed seed");
        // No γ and a small pool: no gain to speak of.
        assert!(model_gain(0.2, 0.0, 300).mean < 0.0);
    }
}
