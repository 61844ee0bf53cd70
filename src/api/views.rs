//! The API's answers ([`types`](super::types)), built from the node handle and core types only.
//! The CLI uses the same functions when no node runs on its data dir, so its output is the same
//! either way. Also the conversion between a [`Transaction`] and its JSON form.

use super::error::ApiError;
use super::types::{self as t};
pub use super::types::{InputJson, OutputJson, TxJson};
use crate::core::address::{Address, AddressError};
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::core::encode::decode_canonical;
use crate::core::hash::{BlockHash, Txid};
use crate::core::merkle::merkle_proof;
use crate::core::params::Network;
use crate::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use crate::node::P2pView;
use crate::node::{ChainRead, NodeHandle, SearchHit, Snapshot, Spend, Template};
use crate::node::{FeeRate, MAX_TX_SIZE};
use crate::wallet::Wallet;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Blocks per page of `GET /chain` at most.
pub const MAX_PAGE: u64 = 500;

/// A block named by height or hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    Height(u64),
    Hash(BlockHash),
}

impl std::str::FromStr for BlockId {
    type Err = ApiError;
    fn from_str(id: &str) -> Result<BlockId, ApiError> {
        match id.parse::<u64>() {
            Ok(h) if id.len() < 64 => Ok(BlockId::Height(h)),
            _ => id.parse::<BlockHash>().map(BlockId::Hash).map_err(|_| {
                ApiError::bad_request("bad_id", format!("not a height or a block hash: {id:?}"))
            }),
        }
    }
}

pub fn parse_txid(s: &str) -> Result<Txid, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request("bad_txid", format!("not a txid: {s:?}")))
}

pub fn parse_address(s: &str, network: Network) -> Result<Address, ApiError> {
    Address::decode(s, network).map_err(|e| {
        let msg = match e {
            // A name (`alice`) or a typo: say what an address looks like.
            AddressError::Malformed(_) => format!(
                "{s:?} is not an address: a {network} address is {} characters and starts with \
                 {}1, like {} (GET /wallet/address gives this node's)",
                Address::UNSPENDABLE.encode(network).len(),
                network.hrp(),
                Address::UNSPENDABLE.encode(network),
            ),
            e => format!("bad address: {e}"),
        };
        ApiError::bad_request("bad_address", msg)
    })
}

fn difficulty_u64(s: &Snapshot) -> u64 {
    u64::try_from(s.difficulty).unwrap_or(u64::MAX)
}

/// `GET /info`: the node at a glance.
pub fn info(node: &NodeHandle, p2p: Option<&P2pView>) -> t::Info {
    let s = node.snapshot();
    t::Info {
        network: s.network.name().to_string(),
        height: s.height,
        tip: s.tip.to_string(),
        work: s.chainwork.0.to_string(),
        difficulty: difficulty_u64(&s),
        bits: s.bits,
        mempool: s.mempool_count,
        mempool_bytes: s.mempool_bytes,
        peers: p2p.map(|v| v.peers.len()),
        node_id: p2p.and_then(|v| v.id).map(|i| i.to_string()),
        listen: p2p.and_then(|v| v.listen).map(|a| a.to_string()),
        mining: s.mining_threads > 0,
        hashrate: s.hashrate,
        orphans: s.orphans,
        next_bits: s.next_bits,
        estimates: estimates(&s),
        version: env!("CARGO_PKG_VERSION").to_string(),
        sync: sync_state(s.height, p2p),
        identity_proof: None,
    }
}

/// Where the node stands against its peers: `offline` (no network part), `no_peers`,
/// `syncing` (a peer has more blocks, or blocks are being downloaded) or `synced`.
pub fn sync_state(height: u64, p2p: Option<&P2pView>) -> t::SyncState {
    let Some(v) = p2p else {
        return t::SyncState {
            state: t::SyncStatus::Offline,
            best_peer_height: None,
            blocks_behind: 0,
            downloading: 0,
        };
    };
    let best = v.peers.iter().map(|p| p.height).max();
    let behind = best.map_or(0, |b| b.saturating_sub(height));
    let state = match best {
        None => t::SyncStatus::NoPeers,
        Some(_) if behind > 0 || v.downloading > 0 => t::SyncStatus::Syncing,
        Some(_) => t::SyncStatus::Synced,
    };
    t::SyncState {
        state,
        best_peer_height: best,
        blocks_behind: behind,
        downloading: v.downloading,
    }
}

/// The chain figures estimated from recent blocks (`None` with too little history).
pub fn estimates(s: &Snapshot) -> Option<t::Estimates> {
    let r = s.rates?;
    let next = s
        .next_bits
        .and_then(|b| r.secs_for(crate::core::pow::CompactTarget(b)));
    let measured_by = match r.source {
        crate::core::estimate::SpanSource::Timestamps => "timestamps",
        crate::core::estimate::SpanSource::SeenTimes => "seen_times",
    };
    Some(t::Estimates {
        avg_block_ms: r.avg_block_ms,
        network_hashrate: r.hashrate.to_string(),
        next_block_secs: next,
        intervals: r.intervals,
        span_ms: r.span_ms,
        measured_by: measured_by.to_string(),
    })
}

/// One block: header fields, place in the chain and txids; with `hex`, also its encoding.
pub fn block_value(r: &ChainRead, b: &Block, hex: bool) -> Result<t::BlockView, ApiError> {
    let hash = b.hash();
    let meta = r
        .block_meta(&hash)?
        .ok_or_else(|| ApiError::internal(format!("block {hash} is not in the index")))?;
    let active = r.is_active(&meta)?;
    let confirmations = r.block_confirmations(&meta)?;
    let next = if active {
        r.hash_at(meta.height + 1)?
    } else {
        None
    };
    Ok(t::BlockView {
        hash: hash.to_string(),
        height: meta.height,
        prev: b.header.prev.to_string(),
        merkle_root: b.header.merkle_root.to_string(),
        time: b.header.time,
        bits: b.header.bits.0,
        nonce: b.header.nonce,
        size: meta.size.into(),
        active,
        confirmations,
        chainwork: meta.chainwork.0.to_string(),
        next: next.map(|h| h.to_string()),
        seen_ms: r.seen_ms(&hash)?,
        txs: b.txids().iter().map(ToString::to_string).collect(),
        hex: hex.then(|| hex::encode(b.encode())),
    })
}

/// `GET /blocks/{id}` (with `hex`: its encoding too).
pub fn block(node: &NodeHandle, id: BlockId, hex: bool) -> Result<t::BlockView, ApiError> {
    let r = node.read()?;
    let hash = match id {
        BlockId::Height(h) => r.hash_at(h)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "no block at height {h} (tip is {})",
                r.tip().height
            ))
        })?,
        BlockId::Hash(h) => h,
    };
    let b = r
        .block(&hash)?
        .ok_or_else(|| ApiError::not_found(format!("unknown block {hash}")))?;
    block_value(&r, &b, hex)
}

/// `GET /chain?from=H&limit=N`: active-chain blocks from height `from`, oldest first.
pub fn chain_page(
    node: &NodeHandle,
    from: u64,
    limit: u64,
    hex: bool,
) -> Result<t::ChainPage, ApiError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let r = node.read()?;
    let tip = *r.tip();
    let blocks = if from > tip.height {
        Vec::new()
    } else if from == 0 {
        // Genesis is part of the chain people page through.
        let mut v = vec![r.params().genesis.clone()];
        v.extend(r.blocks_from(1, limit - 1)?);
        v
    } else {
        r.blocks_from(from, limit)?
    };
    let list = blocks
        .iter()
        .map(|b| block_value(&r, b, hex))
        .collect::<Result<Vec<_>, _>>()?;
    let next = from + list.len() as u64;
    Ok(t::ChainPage {
        from,
        length: tip.height + 1,
        height: tip.height,
        next: (next <= tip.height).then_some(next),
        chain: list,
    })
}

fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], ApiError> {
    let bytes = hex::decode(s)
        .map_err(|e| ApiError::bad_request("bad_transaction", format!("{what}: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        ApiError::bad_request(
            "bad_transaction",
            format!("{what}: {} bytes, expected {N}", b.len()),
        )
    })
}

impl TxJson {
    pub fn from_tx(tx: &Transaction, network: Network) -> TxJson {
        TxJson {
            version: tx.version,
            inputs: tx
                .inputs
                .iter()
                .map(|i| InputJson {
                    txid: i.prevout.txid.to_string(),
                    vout: i.prevout.vout,
                    pubkey: hex::encode(i.pubkey),
                    signature: hex::encode(i.signature),
                })
                .collect(),
            outputs: tx
                .outputs
                .iter()
                .map(|o| OutputJson {
                    address: o.address.encode(network),
                    amount: o.amount.units(),
                })
                .collect(),
            lock_height: tx.lock_height,
            memo: hex::encode(&tx.memo),
        }
    }

    /// The transaction, or why these fields do not make one (nothing is checked against the
    /// chain here).
    pub fn to_tx(&self, network: Network) -> Result<Transaction, ApiError> {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for (n, i) in self.inputs.iter().enumerate() {
            inputs.push(TxIn {
                prevout: OutPoint {
                    txid: i.txid.parse().map_err(|_| {
                        ApiError::bad_request(
                            "bad_transaction",
                            format!("input {n}: not a txid: {:?}", i.txid),
                        )
                    })?,
                    vout: i.vout,
                },
                pubkey: hex_array(&i.pubkey, &format!("input {n} pubkey"))?,
                signature: hex_array(&i.signature, &format!("input {n} signature"))?,
            });
        }
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (n, o) in self.outputs.iter().enumerate() {
            outputs.push(TxOut {
                amount: Amount::from_units(o.amount),
                address: Address::decode(&o.address, network).map_err(|e| {
                    ApiError::bad_request(
                        "bad_transaction",
                        format!("output {n}: bad address: {e}"),
                    )
                })?,
            });
        }
        let memo = hex::decode(&self.memo)
            .map_err(|e| ApiError::bad_request("bad_transaction", format!("memo: {e}")))?;
        Ok(Transaction {
            version: self.version,
            inputs,
            outputs,
            lock_height: self.lock_height,
            memo,
        })
    }
}

/// A transaction from a request body: `{"hex": "..."}` (its canonical encoding) or the fields
/// of [`TxJson`].
pub fn tx_from_json(v: Value, network: Network) -> Result<Transaction, ApiError> {
    if let Some(obj) = v.as_object()
        && obj.contains_key("hex")
    {
        let Some(h) = obj
            .get("hex")
            .and_then(Value::as_str)
            .filter(|_| obj.len() == 1)
        else {
            return Err(ApiError::bad_request(
                "bad_json",
                "expected {\"hex\": \"...\"} with a string and nothing else",
            ));
        };
        let bytes = hex::decode(h)
            .map_err(|e| ApiError::bad_request("bad_transaction", format!("hex: {e}")))?;
        // Hex that is not a transaction's encoding: well-formed, but nothing the node can use.
        return decode_canonical::<Transaction>(&bytes, MAX_TX_SIZE).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "bad_transaction",
                format!("transaction: {e}"),
            )
        });
    }
    let j: TxJson = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request("bad_json", format!("bad transaction JSON: {e}")))?;
    j.to_tx(network)
}

/// `GET /tx/{txid}` (with `spends`: what became of each output).
pub fn tx(node: &NodeHandle, id: &Txid, spends: bool) -> Result<t::TxView, ApiError> {
    let info = node
        .transaction(id)?
        .ok_or_else(|| ApiError::not_found(format!("unknown transaction {id}")))?;
    let j = TxJson::from_tx(&info.tx, node.network());
    Ok(t::TxView {
        txid: id.to_string(),
        version: j.version,
        inputs: j.inputs,
        outputs: j.outputs,
        lock_height: j.lock_height,
        memo: j.memo,
        confirmations: info.confirmations,
        block: info.block.map(|(h, _)| h.to_string()),
        height: info.block.map(|(_, h)| h),
        coinbase: info.tx.is_coinbase(),
        fee: info.fee.map(|f| f.units()),
        size: info.tx.size(),
        spends: if spends {
            Some(output_spends(node, id, info.tx.outputs.len())?)
        } else {
            None
        },
    })
}

/// What became of each of a transaction's `count` outputs.
fn output_spends(
    node: &NodeHandle,
    id: &Txid,
    count: usize,
) -> Result<Vec<t::OutputSpend>, ApiError> {
    let found = node.spenders(id)?;
    Ok((0..count)
        .map(|vout| {
            let (state, txid, height) = match found.get(vout).copied().unwrap_or(Spend::Unknown) {
                Spend::Unspent => (t::SpendState::Unspent, None, None),
                Spend::Mempool(t) => (t::SpendState::Mempool, Some(t), None),
                Spend::Confirmed(t, h) => (t::SpendState::Confirmed, Some(t), Some(h)),
                Spend::Unknown => (t::SpendState::Unknown, None, None),
            };
            t::OutputSpend {
                state,
                txid: txid.map(|t| t.to_string()),
                height,
            }
        })
        .collect())
}

/// `GET /search`.
pub fn search(node: &NodeHandle, text: &str) -> Result<t::SearchResult, ApiError> {
    let network = node.network();
    let (kind, id, reason) = match node.search(text)? {
        SearchHit::Block(h) => (t::SearchKind::Block, Some(h.to_string()), None),
        SearchHit::Tx(x) => (t::SearchKind::Transaction, Some(x.to_string()), None),
        SearchHit::Address(a) => (t::SearchKind::Address, Some(a.encode(network)), None),
        SearchHit::Nothing(why) => (t::SearchKind::Nothing, None, Some(why)),
    };
    Ok(t::SearchResult { kind, id, reason })
}

/// `GET /transaction/confirmations/{txid}`.
pub fn confirmations(node: &NodeHandle, id: &Txid) -> Result<t::Confirmations, ApiError> {
    let info = node
        .transaction(id)?
        .ok_or_else(|| ApiError::not_found(format!("unknown transaction {id}")))?;
    Ok(t::Confirmations {
        txid: id.to_string(),
        confirmations: info.confirmations,
        block: info.block.map(|(h, _)| h.to_string()),
        height: info.block.map(|(_, h)| h),
    })
}

/// `GET /tx/{txid}/proof`: the merkle branch from the txid to its block's header.
pub fn proof(node: &NodeHandle, id: &Txid) -> Result<t::Proof, ApiError> {
    let info = node
        .transaction(id)?
        .ok_or_else(|| ApiError::not_found(format!("unknown transaction {id}")))?;
    let Some((hash, height)) = info.block else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "unconfirmed",
            format!("transaction {id} is in the mempool, not in a block yet"),
        ));
    };
    let block = node
        .block(&hash)?
        .ok_or_else(|| ApiError::internal(format!("block {hash} missing")))?;
    let txids = block.txids();
    let index = txids
        .iter()
        .position(|t| t == id)
        .ok_or_else(|| ApiError::internal(format!("{id} not found in block {hash}")))?;
    let steps = merkle_proof(&txids, index)
        .ok_or_else(|| ApiError::internal("proof index out of range"))?;
    let branch = steps
        .iter()
        .map(|s| t::ProofStep {
            hash: hex::encode(s.sibling),
            side: if s.sibling_on_left {
                t::Side::Left
            } else {
                t::Side::Right
            },
        })
        .collect();
    Ok(t::Proof {
        txid: id.to_string(),
        block: hash.to_string(),
        height,
        merkle_root: block.header.merkle_root.to_string(),
        index,
        count: block.txs.len(),
        branch,
        confirmations: info.confirmations,
    })
}

/// `GET /validate` (blocking: run it off the async threads).
pub fn validate(node: &NodeHandle) -> Result<t::Validation, ApiError> {
    Ok(validation(&node.validate_chain()?))
}

/// A validation report as the API gives it. Damaged index entries are listed under `damage`
/// (index, entry, problem).
pub fn validation(report: &crate::node::ValidationReport) -> t::Validation {
    let damage: Vec<t::Damage> = report
        .damage
        .iter()
        .map(|d| t::Damage {
            index: d.index.to_string(),
            entry: d.entry.clone(),
            problem: d.problem.clone(),
        })
        .collect();
    let mut v = t::Validation {
        valid: report.is_valid(),
        height: report.height,
        utxos: None,
        bad_height: None,
        bad_block: None,
        error: report.damage.first().map(ToString::to_string),
        damage,
    };
    match &report.first_bad {
        None if v.valid => v.utxos = Some(report.utxo_count as u64),
        None => {}
        Some((h, hash, why)) => {
            v.bad_height = Some(*h);
            v.bad_block = Some(hash.to_string());
            v.error = Some(why.to_string());
        }
    }
    v
}

/// `GET /mempool`: every entry by fee rate.
pub fn mempool(node: &NodeHandle, page: Page) -> t::Mempool {
    let entries = node.mempool_entries();
    let bytes: usize = entries.iter().map(|e| e.size).sum();
    let (rows, next) = page.of(&entries);
    let txs = rows
        .iter()
        .map(|e| t::MempoolTx {
            txid: e.txid.to_string(),
            fee: e.fee.units(),
            size: e.size,
            fee_rate: e.fee_rate.per_byte_units(),
        })
        .collect();
    t::Mempool {
        count: entries.len(),
        bytes,
        txs,
        next,
    }
}

/// One page of a list: `limit` rows from `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Page {
    /// Every row.
    pub const ALL: Page = Page {
        offset: 0,
        limit: usize::MAX,
    };

    /// This page's rows of `all`, and the offset of the next page (`None` on the last).
    pub fn of<T>(self, all: &[T]) -> (&[T], Option<usize>) {
        let from = self.offset.min(all.len());
        let to = from.saturating_add(self.limit).min(all.len());
        (&all[from..to], (to < all.len()).then_some(to))
    }
}

/// `GET /difficulty`.
pub fn difficulty(node: &NodeHandle) -> t::Difficulty {
    let s = node.snapshot();
    let p = node.params();
    let target = crate::core::pow::CompactTarget(s.bits)
        .to_target()
        .map(|t| format!("{:064x}", t.0))
        .ok();
    t::Difficulty {
        difficulty: difficulty_u64(&s),
        bits: s.bits,
        target,
        height: s.height,
        block_spacing: p.block_spacing,
        rule: format!("{:?}", p.difficulty),
    }
}

/// `GET /balance/{address}`: confirmed coins from the address index.
pub fn address_balance(node: &NodeHandle, addr: &Address) -> Result<t::AddressBalance, ApiError> {
    let v = node.address_view(addr, 0, 0, 0)?;
    Ok(t::AddressBalance {
        address: addr.encode(node.network()),
        balance: v.confirmed.units().saturating_add(v.immature.units()),
        spendable: v.confirmed.units(),
        immature: v.immature.units(),
        coins: v.coin_count,
        height: v.tip,
        incoming: Some(v.incoming.units()),
        outgoing: Some(v.outgoing.units()),
        next_maturity: v.next_maturity,
    })
}

/// `GET /chain/tips`.
pub fn chain_tips(node: &NodeHandle) -> Result<t::ChainTips, ApiError> {
    use crate::node::TipStatus;
    let r = node.read()?;
    let tips = r
        .tips()?
        .iter()
        .map(|tip| t::ChainTip {
            hash: tip.hash.to_string(),
            height: tip.height,
            branch_len: tip.branch_len,
            status: match tip.status {
                TipStatus::Active => t::TipState::Active,
                TipStatus::ValidFork => t::TipState::ValidFork,
                TipStatus::Stored => t::TipState::Stored,
                TipStatus::Invalid => t::TipState::Invalid,
            },
        })
        .collect();
    Ok(t::ChainTips { tips })
}

/// `GET /address/{addr}/utxos`: one page of the address's unspent coins, newest first.
pub fn address_coins(
    node: &NodeHandle,
    addr: &Address,
    page: Page,
) -> Result<t::AddressCoins, ApiError> {
    let v = node.address_view(addr, page.offset, usize::MAX, page.limit)?;
    let coins: Vec<t::Coin> = v
        .coins
        .iter()
        .map(|c| t::Coin {
            txid: c.outpoint.txid.to_string(),
            vout: c.outpoint.vout,
            amount: c.amount.units(),
            height: c.height,
            coinbase: c.coinbase,
            matures_in: c.matures_in,
            spent_in_mempool: c.spent_in_mempool.map(|t| t.to_string()),
        })
        .collect();
    let next = page.offset.saturating_add(coins.len());
    Ok(t::AddressCoins {
        address: addr.encode(node.network()),
        height: v.tip,
        count: v.coin_count,
        coins,
        next: (next < v.coin_count).then_some(next),
    })
}

/// `GET /address/{addr}/history`: one page of the address's confirmed history, newest first,
/// and its mempool transactions.
pub fn address_history(
    node: &NodeHandle,
    addr: &Address,
    page: Page,
) -> Result<t::AddressHistory, ApiError> {
    let v = node.address_view(addr, usize::MAX, page.offset, page.limit)?;
    let history: Vec<t::HistoryRow> = v
        .history
        .iter()
        .map(|h| t::HistoryRow {
            txid: h.txid.to_string(),
            height: h.height,
            received: h.received.units(),
            sent: h.sent.units(),
        })
        .collect();
    let count = usize::try_from(v.history_count).unwrap_or(usize::MAX);
    let next = page.offset.saturating_add(history.len());
    Ok(t::AddressHistory {
        address: addr.encode(node.network()),
        height: v.tip,
        count,
        history,
        next: (next < count).then_some(next),
        mempool: v.mempool.iter().map(ToString::to_string).collect(),
    })
}

/// `GET /wallets`: the node wallet's addresses, oldest first, each with its balance, from one
/// snapshot of the chain.
pub fn wallets(w: &Wallet, node: &NodeHandle) -> Result<t::Wallets, ApiError> {
    let r = node.read()?;
    let rows = w
        .addresses()
        .iter()
        .map(|a| address_balance_in(&r, a, node.network()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(t::Wallets {
        wallets: rows,
        height: r.tip().height,
    })
}

fn address_balance_in(
    r: &ChainRead,
    addr: &Address,
    net: Network,
) -> Result<t::AddressBalance, ApiError> {
    let (mut spendable, mut immature, mut count) = (0u64, 0u64, 0usize);
    for (_, coin) in r.address_coins(addr)? {
        count += 1;
        if r.immature(&coin)? {
            immature = immature.saturating_add(coin.output.amount.units());
        } else {
            spendable = spendable.saturating_add(coin.output.amount.units());
        }
    }
    Ok(t::AddressBalance {
        address: addr.encode(net),
        balance: spendable.saturating_add(immature),
        spendable,
        immature,
        coins: count,
        height: r.tip().height,
        incoming: None,
        outgoing: None,
        next_maturity: None,
    })
}

/// `GET /wallet/balance`.
pub fn wallet_balance(w: &Wallet, node: &NodeHandle) -> Result<t::WalletBalance, ApiError> {
    let b = w.balance(node)?;
    Ok(t::WalletBalance {
        confirmed: b.confirmed.units(),
        unconfirmed: b.unconfirmed.units(),
        immature: b.immature.units(),
    })
}

/// `GET /wallet/history`: newest first.
pub fn wallet_history(
    w: &Wallet,
    node: &NodeHandle,
    page: Page,
) -> Result<t::WalletHistory, ApiError> {
    let all = w.history(node)?;
    let (rows, next) = page.of(&all);
    let transactions = rows
        .iter()
        .map(|tx| {
            let net = tx.net();
            t::WalletTx {
                txid: tx.txid.to_string(),
                height: tx.height,
                confirmations: tx.confirmations,
                received: tx.received.units(),
                sent: tx.sent.units(),
                net: i64::try_from(net).unwrap_or(if net < 0 { i64::MIN } else { i64::MAX }),
            }
        })
        .collect();
    Ok(t::WalletHistory {
        transactions,
        count: all.len(),
        next,
    })
}

/// `GET /peers`: connected peers, and bans with their reasons.
pub fn peers(view: &P2pView) -> t::Peers {
    let peers = view
        .peers
        .iter()
        .map(|p| t::PeerView {
            id: p.id.to_string(),
            addr: p.addr.to_string(),
            inbound: p.inbound,
            height: p.height,
            tip: p.tip.to_string(),
            work: p.work.0.to_string(),
            rtt_ms: p
                .rtt
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
            user_agent: p.user_agent.clone(),
            connected_since: p.connected_since,
            last_message: p.last_message,
            protocol: p.protocol,
        })
        .collect();
    let bans = view
        .bans
        .iter()
        .map(|b| t::BanView {
            id: b.id.map(|i| i.to_string()),
            addr: b.addr.map(|a| a.to_string()),
            reason: b.reason.clone(),
            until: b.until,
        })
        .collect();
    t::Peers {
        id: view.id.map(|i| i.to_string()),
        listen: view.listen.map(|a| a.to_string()),
        peers,
        bans,
        known_addrs: view.known_addrs,
        compact: t::CompactRelay {
            sent: view.compact.sent,
            received: view.compact.received,
            rebuilt_at_once: view.compact.rebuilt_at_once,
            txs_asked: view.compact.txs_asked,
            fetched_whole: view.compact.fetched_whole,
        },
    }
}

/// `GET /mining`.
pub fn mining(node: &NodeHandle) -> t::Mining {
    let s = node.snapshot();
    t::Mining {
        mining: s.mining_threads > 0,
        threads: s.mining_threads,
        max_threads: crate::node::max_threads(),
        kernel: s.mining_kernel.to_string(),
        hashrate: s.hashrate,
        address: s.mining_address.map(|a| a.encode(s.network)),
    }
}

/// Mine `blocks` blocks paying `address` (`POST /mine`, `chain-tui mine`).
pub async fn mine(
    node: &NodeHandle,
    address: Address,
    blocks: u64,
    threads: usize,
) -> Result<t::Mined, ApiError> {
    let hashes = node.mine_blocks(blocks, threads, address).await?;
    let tip = node.tip()?;
    Ok(t::Mined {
        blocks: hashes.iter().map(ToString::to_string).collect(),
        height: tip.height,
        tip: tip.hash().to_string(),
        job: None,
    })
}

/// Pay each output of `pay` from the wallet, in one transaction, and submit it
/// (`POST /wallet/send`, `chain-tui send`).
pub async fn send(
    w: &Arc<Mutex<Wallet>>,
    node: &NodeHandle,
    pay: Vec<TxOut>,
    rate: FeeRate,
) -> Result<t::Sent, ApiError> {
    let amount = Amount::checked_sum(pay.iter().map(|o| o.amount)).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
            "the amounts overflow",
        )
    })?;
    let n = pay.len();
    let (w2, n2) = (w.clone(), node.clone());
    // The coins stay reserved until the transaction is in the mempool (or the send failed), so
    // concurrent sends never pick the same ones.
    let (tx, reservation) = tokio::task::spawn_blocking(move || {
        let w = w2
            .lock()
            .map_err(|_| ApiError::internal("the wallet lock is poisoned"))?;
        Ok::<_, ApiError>(w.build_payment_reserved(&n2, &pay, rate)?)
    })
    .await??;
    let txid = node.submit_tx(tx, true).await;
    drop(reservation);
    let txid = txid?;
    let fee = node
        .transaction(&txid)?
        .and_then(|i| i.fee)
        .unwrap_or_default();
    Ok(t::Sent {
        txid: txid.to_string(),
        fee: fee.units(),
        amount: amount.units(),
        outputs: n,
    })
}

/// `GET /mining/template`: the block to solve, its header bytes and the target.
pub fn template(tpl: &Template, network: Network) -> t::Template {
    let h = &tpl.block.header;
    t::Template {
        height: tpl.height,
        prev: h.prev.to_string(),
        merkle_root: h.merkle_root.to_string(),
        time: h.time,
        bits: h.bits.0,
        version: h.version,
        target: format!("{:064x}", tpl.target.0),
        fees: tpl.fees.units(),
        coinbase_value: tpl
            .block
            .txs
            .first()
            .and_then(|c| c.output_total())
            .map(|a| a.units()),
        coinbase_address: tpl
            .block
            .txs
            .first()
            .and_then(|c| c.outputs.first())
            .map(|o| o.address.encode(network)),
        txs: tpl.block.txids().iter().map(ToString::to_string).collect(),
        header_hex: hex::encode(h.to_bytes()),
        block_hex: hex::encode(tpl.block.encode()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{CompactStats, NodeId, PeerInfo};

    #[test]
    fn peers_report_each_peers_protocol_and_the_compact_relay_counts() {
        let view = P2pView {
            peers: vec![PeerInfo {
                id: NodeId([1; 32]),
                addr: "127.0.0.1:7001".parse().expect("an address"),
                inbound: false,
                height: 3,
                tip: crate::core::hash::BlockHash([2; 32]),
                work: crate::core::pow::Work::ZERO,
                rtt: None,
                bytes_in: 0,
                bytes_out: 0,
                user_agent: "test".into(),
                connected_since: 0,
                last_message: 0,
                protocol: 2,
            }],
            compact: CompactStats {
                sent: 12,
                received: 40,
                rebuilt_at_once: 37,
                txs_asked: 5,
                fetched_whole: 1,
            },
            ..P2pView::default()
        };
        let p = peers(&view);
        assert_eq!(p.peers[0].protocol, 2);
        assert_eq!(
            (
                p.compact.sent,
                p.compact.received,
                p.compact.rebuilt_at_once,
                p.compact.txs_asked,
                p.compact.fetched_whole
            ),
            (12, 40, 37, 5, 1)
        );
        assert!(
            p.to_string().contains(
                "compact blocks: 12 sent, 40 received (37 rebuilt from the mempool alone, 5 \
                 transactions asked for, 1 fetched whole)"
            ),
            "{p}"
        );
        // A node from before these fields: its answer still reads, with zeros.
        let mut old = serde_json::to_value(&p).expect("json");
        old.as_object_mut().expect("an object").remove("compact");
        old["peers"][0]
            .as_object_mut()
            .expect("a peer")
            .remove("protocol");
        let back: t::Peers = serde_json::from_value(old).expect("reads");
        assert_eq!(back.compact, t::CompactRelay::default());
        assert_eq!(back.peers[0].protocol, 0);
    }
}
