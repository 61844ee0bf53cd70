//! Explorer reads for front ends: an address's balance, coins and history a page at a time,
//! and who spent an output. Each is read from one store snapshot (plus the mempool), so its
//! figures agree with each other while blocks arrive.

use super::{NodeError, NodeHandle};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::Txid;
use crate::core::tx::OutPoint;
use crate::storage::{HistoryEntry, StoreError};

/// An unspent coin of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressCoin {
    pub outpoint: OutPoint,
    pub amount: Amount,
    /// Height of the block that created it.
    pub height: u64,
    pub coinbase: bool,
    /// A coinbase coin that cannot be spent yet: blocks still to be mined before it can.
    pub matures_in: Option<u64>,
    /// The mempool transaction spending it, if any.
    pub spent_in_mempool: Option<Txid>,
}

/// What the node knows about one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressView {
    pub address: Address,
    /// Height of the tip the figures were read at.
    pub tip: u64,
    /// Mature unspent coins.
    pub confirmed: Amount,
    /// Coinbase coins still waiting for maturity.
    pub immature: Amount,
    /// Mempool outputs paying the address.
    pub incoming: Amount,
    /// Its confirmed coins that mempool transactions spend.
    pub outgoing: Amount,
    /// Blocks until its next immature coin can be spent (`None`: none is immature).
    pub next_maturity: Option<u64>,
    /// Unspent coins in all.
    pub coin_count: usize,
    /// The requested page of unspent coins, newest first.
    pub coins: Vec<AddressCoin>,
    /// Confirmed history entries in all.
    pub history_count: u64,
    /// The requested page of confirmed history, newest first.
    pub history: Vec<HistoryEntry>,
    /// Mempool transactions paying or spending the address.
    pub mempool: Vec<Txid>,
}

/// Whether an output is spent, and by what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Unspent on the active chain and in the mempool.
    Unspent,
    /// Spent by a mempool transaction.
    Mempool(Txid),
    /// Spent by a transaction confirmed at this height.
    Confirmed(Txid, u64),
    /// Spent on the active chain, but the spender was not found within the scan's budget
    /// (or the output is not known).
    Unknown,
}

/// Block reads at most while looking for the spenders of one transaction's outputs; past it
/// the rest read `Unknown`.
const SPEND_SCAN: usize = 4096;

impl NodeHandle {
    /// Balance, one page of unspent coins (`coins_skip`, newest first) and one page of
    /// confirmed history (`history_skip`, newest first) of `addr`, `limit` rows each.
    pub fn address_view(
        &self,
        addr: &Address,
        coins_skip: usize,
        history_skip: usize,
        limit: usize,
    ) -> Result<AddressView, NodeError> {
        let r = self.store()?.read()?;
        let tip = r.tip()?.height;
        let maturity = self.params().coinbase_maturity;
        let mut coins = r.address_coins(addr)?;
        coins.sort_by_key(|c| std::cmp::Reverse((c.1.height, c.0)));
        let (history, history_count) = r.address_history_page(addr, history_skip, limit)?;
        drop(r);
        let pool = self.mempool.read().map_err(|_| NodeError::Stopped)?;
        let mut view = AddressView {
            address: *addr,
            tip,
            confirmed: Amount::ZERO,
            immature: Amount::ZERO,
            incoming: Amount::ZERO,
            outgoing: Amount::ZERO,
            next_maturity: None,
            coin_count: coins.len(),
            coins: Vec::new(),
            history_count,
            history,
            mempool: Vec::new(),
        };
        // Coins of one address cannot sum past the money supply unless the store is damaged.
        let add = |t: Amount, v: Amount| {
            t.checked_add(v).ok_or_else(|| {
                NodeError::Store(StoreError::Corrupt(format!(
                    "the coins of {} sum past the largest amount",
                    addr.encode(self.params().network)
                )))
            })
        };
        for (n, (outpoint, coin)) in coins.iter().enumerate() {
            // Spendable in the block after the tip once that block is `maturity` deep.
            let matures_in = (coin.coinbase)
                .then(|| (coin.height + maturity).saturating_sub(tip + 1))
                .filter(|n| *n > 0);
            let spent_in_mempool = pool.spender(outpoint);
            let amount = coin.output.amount;
            if let Some(n) = matures_in {
                view.immature = add(view.immature, amount)?;
                view.next_maturity = Some(view.next_maturity.map_or(n, |m| m.min(n)));
            } else {
                view.confirmed = add(view.confirmed, amount)?;
            }
            if spent_in_mempool.is_some() {
                view.outgoing = add(view.outgoing, amount)?;
            }
            if n >= coins_skip && view.coins.len() < limit {
                view.coins.push(AddressCoin {
                    outpoint: *outpoint,
                    amount,
                    height: coin.height,
                    coinbase: coin.coinbase,
                    matures_in,
                    spent_in_mempool,
                });
            }
        }
        for tx in pool.ordered_txs() {
            let txid = tx.txid();
            let mut touches = false;
            for out in tx.outputs.iter().filter(|o| o.address == *addr) {
                view.incoming = add(view.incoming, out.amount)?;
                touches = true;
            }
            touches |= tx.inputs.iter().any(|i| {
                coins.iter().any(|(o, _)| *o == i.prevout)
                    || pool
                        .get(&i.prevout.txid)
                        .and_then(|p| p.tx.outputs.get(i.prevout.vout as usize))
                        .is_some_and(|o| o.address == *addr)
            });
            if touches {
                view.mempool.push(txid);
            }
        }
        Ok(view)
    }

    /// Whether the output `o` is spent, and by which transaction (see [`NodeHandle::spenders`]).
    pub fn spender(&self, o: &OutPoint) -> Result<Spend, NodeError> {
        Ok(self
            .spenders(&o.txid)?
            .get(o.vout as usize)
            .copied()
            .unwrap_or(Spend::Unknown))
    }

    /// What became of each output of transaction `txid` (empty if it is unknown): spent in the
    /// mempool, unspent, or spent by a confirmed transaction found in the confirmed history of
    /// the addresses it pays, from its own height. One walk per address for all the outputs,
    /// and at most `SPEND_SCAN` block reads for the whole transaction, however many outputs
    /// it has (a view that reads it again with every block stays cheap).
    pub fn spenders(&self, txid: &Txid) -> Result<Vec<Spend>, NodeError> {
        let r = self.store()?.read()?;
        let (outputs, height) = match r.tx_location(txid)? {
            Some(loc) => {
                let (Some(meta), Some(block)) = (r.meta(&loc.block)?, r.block(&loc.block)?) else {
                    return Ok(Vec::new());
                };
                match block.txs.into_iter().nth(loc.index as usize) {
                    Some(t) => (t.outputs, Some(meta.height)),
                    None => return Ok(Vec::new()),
                }
            }
            None => match self.mempool_tx(txid) {
                Some(t) => (t.outputs, None),
                None => return Ok(Vec::new()),
            },
        };
        let mut spends = vec![Spend::Unknown; outputs.len()];
        let mut open = std::collections::BTreeSet::new();
        for (vout, spend) in spends.iter_mut().enumerate() {
            let o = OutPoint {
                txid: *txid,
                vout: vout as u32,
            };
            *spend = match self.mempool_spender(&o) {
                Some(t) => Spend::Mempool(t),
                // A mempool transaction's outputs can only be spent in the mempool.
                None if height.is_none() || r.coin(&o)?.is_some() => Spend::Unspent,
                None => {
                    open.insert(vout);
                    Spend::Unknown
                }
            };
        }
        let Some(height) = height else {
            return Ok(spends);
        };
        let addresses: std::collections::BTreeSet<Address> =
            open.iter().map(|v| outputs[*v].address).collect();
        let mut budget = SPEND_SCAN;
        for a in addresses {
            for e in r.address_history_from(&a, height, SPEND_SCAN.saturating_mul(4))? {
                if open.is_empty() || budget == 0 {
                    return Ok(spends);
                }
                // A spend moves coins out; the creating transaction cannot spend its outputs.
                if e.sent == Amount::ZERO || e.txid == *txid {
                    continue;
                }
                budget -= 1;
                let Some(l) = r.tx_location(&e.txid)? else {
                    continue;
                };
                let Some(b) = r.block(&l.block)? else {
                    continue;
                };
                let Some(t) = b.txs.get(l.index as usize) else {
                    continue;
                };
                for i in t.inputs.iter().filter(|i| i.prevout.txid == *txid) {
                    if open.remove(&(i.prevout.vout as usize)) {
                        spends[i.prevout.vout as usize] = Spend::Confirmed(e.txid, e.height);
                    }
                }
            }
        }
        Ok(spends)
    }
}
