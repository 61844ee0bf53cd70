//! Where the dashboard's figures come from and where its commands go: [`Backend`]. The
//! dashboard that runs its own node drives it through [`Local`] (the node handle, its network
//! and its wallet); `chain-tui attach` drives a node elsewhere through its API (the CLI builds
//! that backend). The event loop sees only this trait, so both show the same panes and take
//! the same keys.

use super::app::{BlockDetail, InputRow, OutputRow, ProofView, TxDetail, TxRow, WalletView};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::{BlockHash, Txid};
use crate::node::{AddressView, BlockSummary, NodeEvent, NodeHandle, P2pView, SearchHit};
use crate::node::{FeeRate, P2pHandle, PeerAddr, Snapshot, Spend};
use crate::wallet::Wallet;
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// An answer that comes later; errors are the words the status bar shows.
pub type Reply<T> = BoxFuture<'static, Result<T, String>>;

/// What the event stream delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Event(NodeEvent),
    /// Some events were lost on the way: views read before may be stale.
    Missed,
}

/// Events a dashboard's stream holds for it.
pub const EVENT_QUEUE: usize = 1024;

/// Wallet transactions kept for the pane.
pub const WALLET_HISTORY: usize = 100;

/// A node the dashboard shows and drives.
pub trait Backend: Send + Sync + 'static {
    /// The node's state, published on every change.
    fn snapshots(&self) -> watch::Receiver<Snapshot>;
    /// Its peers and bans.
    fn views(&self) -> watch::Receiver<P2pView>;
    /// What it did (blocks, reorganisations, transactions), as they happen.
    fn events(&self) -> broadcast::Receiver<Seen>;
    /// Where the node is, for the log and the title (`None`: in this process).
    fn remote(&self) -> Option<String> {
        None
    }
    /// Whether the node can be reached: `Some(why)` while it cannot (an attached node that
    /// stopped answering), `None` while it can. A node in this process always can.
    fn reachable(&self) -> watch::Receiver<Option<String>> {
        watch::channel(None).1
    }

    /// Mine with `threads` threads paying `address` (0: stop).
    fn set_mining(&self, threads: usize, address: Option<Address>) -> Reply<()>;
    /// Mine one block now.
    fn mine_one(&self, address: Address, threads: usize) -> Reply<()>;
    /// Pay `amount` to `to` from the wallet; the txid once the mempool took it.
    fn send(&self, to: Address, amount: Amount, fee_rate: FeeRate) -> Reply<Txid>;
    fn new_address(&self) -> Reply<Address>;
    /// Dial a peer; its node id (hex) once connected.
    fn connect(&self, addr: PeerAddr) -> Reply<String>;
    /// Lift a ban on a node id or address; whether there was one.
    fn unban(&self, who: String) -> Reply<bool>;

    fn wallet(&self) -> Reply<WalletView>;
    fn block(&self, hash: BlockHash) -> Reply<BlockDetail>;
    fn tx(&self, txid: Txid) -> Reply<TxDetail>;
    fn search(&self, text: String) -> Reply<SearchHit>;
    /// An address with a page of its coins and one of its history.
    fn address(
        &self,
        address: Address,
        coins_skip: usize,
        history_skip: usize,
    ) -> Reply<AddressView>;
    /// Up to `count` active-chain blocks from height `top` down.
    fn chain_page(&self, top: u64, count: u64) -> Reply<Vec<BlockSummary>>;
}

/// The node running in this process, its network and its wallet.
#[derive(Clone)]
pub struct Local {
    pub node: NodeHandle,
    pub net: P2pHandle,
    pub wallet: Arc<Mutex<Wallet>>,
}

/// Run a blocking read off the async threads.
fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Reply<T> {
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| format!("a background read failed: {e}"))?
    })
}

fn words(e: crate::node::NodeError) -> String {
    e.to_string()
}

impl Backend for Local {
    fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.node.watch()
    }
    fn views(&self) -> watch::Receiver<P2pView> {
        self.net.watch()
    }
    fn events(&self) -> broadcast::Receiver<Seen> {
        let (tx, rx) = broadcast::channel(EVENT_QUEUE);
        let mut from = self.node.events();
        tokio::spawn(async move {
            use broadcast::error::RecvError;
            loop {
                let seen = match from.recv().await {
                    Ok(e) => Seen::Event(e),
                    Err(RecvError::Lagged(_)) => Seen::Missed,
                    Err(RecvError::Closed) => return,
                };
                // Nobody listens any more: the dashboard closed.
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn set_mining(&self, threads: usize, address: Option<Address>) -> Reply<()> {
        let node = self.node.clone();
        Box::pin(async move { node.set_mining(threads, address).await.map_err(words) })
    }

    fn mine_one(&self, address: Address, threads: usize) -> Reply<()> {
        let node = self.node.clone();
        Box::pin(async move {
            node.mine_blocks(1, threads, address)
                .await
                .map(|_| ())
                .map_err(words)
        })
    }

    fn send(&self, to: Address, amount: Amount, fee_rate: FeeRate) -> Reply<Txid> {
        let (node, w) = (self.node.clone(), self.wallet.clone());
        Box::pin(async move {
            let n = node.clone();
            let built = blocking(move || {
                let w = w.lock().map_err(|_| "wallet unavailable".to_string())?;
                w.build_payment(&n, to, amount, fee_rate)
                    .map_err(|e| e.to_string())
            })
            .await?;
            node.submit_tx(built, true).await.map_err(words)
        })
    }

    fn new_address(&self) -> Reply<Address> {
        let w = self.wallet.clone();
        blocking(move || {
            w.lock()
                .map_err(|_| "wallet unavailable".to_string())
                .and_then(|mut w| w.new_address().map_err(|e| e.to_string()))
        })
    }

    fn connect(&self, addr: PeerAddr) -> Reply<String> {
        let net = self.net.clone();
        Box::pin(async move {
            net.connect(addr)
                .await
                .map(|id| id.to_string())
                .map_err(words)
        })
    }

    fn unban(&self, who: String) -> Reply<bool> {
        let net = self.net.clone();
        Box::pin(async move { net.unban(&who).await.map_err(words) })
    }

    fn wallet(&self) -> Reply<WalletView> {
        let (w, node) = (self.wallet.clone(), self.node.clone());
        blocking(move || Ok(load_wallet(&w, &node)))
    }

    fn block(&self, hash: BlockHash) -> Reply<BlockDetail> {
        let node = self.node.clone();
        blocking(move || load_block(&node, hash))
    }

    fn tx(&self, txid: Txid) -> Reply<TxDetail> {
        let node = self.node.clone();
        blocking(move || load_tx(&node, txid))
    }

    fn search(&self, text: String) -> Reply<SearchHit> {
        let node = self.node.clone();
        blocking(move || node.search(&text).map_err(words))
    }

    fn address(
        &self,
        address: Address,
        coins_skip: usize,
        history_skip: usize,
    ) -> Reply<AddressView> {
        let node = self.node.clone();
        blocking(move || {
            node.address_view(&address, coins_skip, history_skip, super::app::ADDRESS_PAGE)
                .map_err(words)
        })
    }

    fn chain_page(&self, top: u64, count: u64) -> Reply<Vec<BlockSummary>> {
        let node = self.node.clone();
        blocking(move || {
            node.chain_page(top, count)
                .map_err(|e| format!("reading the chain: {e}"))
        })
    }
}

/// Address, balance and history (a blocking store scan).
fn load_wallet(w: &Mutex<Wallet>, node: &NodeHandle) -> WalletView {
    let Ok(w) = w.lock() else {
        return WalletView {
            error: Some("wallet unavailable".into()),
            ..WalletView::default()
        };
    };
    let mut view = WalletView {
        address: Some(w.receive_address()),
        addresses: w.addresses(),
        ..WalletView::default()
    };
    match w.balance_and_coins(node) {
        Ok((b, coins)) => {
            view.balance = Some(b);
            view.coins = coins;
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    match w.history(node) {
        Ok(mut h) => {
            h.truncate(WALLET_HISTORY);
            view.history = h;
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    view
}

/// A block and its transactions, for the details overlay.
pub fn load_block(node: &NodeHandle, hash: BlockHash) -> Result<BlockDetail, String> {
    // One snapshot: the block, its place in the chain and the tip it is counted against.
    let r = node.read().map_err(words)?;
    let block = r
        .block(&hash)
        .map_err(words)?
        .ok_or_else(|| format!("unknown block {}", hash.short()))?;
    let meta = r
        .block_meta(&hash)
        .map_err(words)?
        .ok_or_else(|| format!("unknown block {}", hash.short()))?;
    let active = r.is_active(&meta).map_err(words)?;
    let confirmations = r.block_confirmations(&meta).map_err(words)?;
    let next = if active {
        r.hash_at(meta.height + 1).map_err(words)?
    } else {
        None
    };
    let seen = r.seen_ms(&hash).map_err(words)?.map(|ms| ms / 1000);
    Ok(block_detail(
        node.params(),
        &block,
        meta.height,
        meta.size as usize,
        confirmations,
        meta.chainwork.0,
        next,
        seen,
    ))
}

/// A block's details from the block itself and what the chain says of it.
#[allow(clippy::too_many_arguments)]
pub fn block_detail(
    params: &crate::core::params::Params,
    block: &crate::core::block::Block,
    height: u64,
    size: usize,
    confirmations: u64,
    chainwork: crate::core::pow::U256,
    next: Option<BlockHash>,
    seen: Option<u64>,
) -> BlockDetail {
    let h = &block.header;
    let subsidy = params.subsidy(height);
    let minted = block
        .txs
        .first()
        .and_then(|c| c.output_total())
        .unwrap_or_default();
    let work = h.bits.to_target().map(|t| t.work().0).unwrap_or_default();
    BlockDetail {
        version: h.version,
        prev: h.prev,
        merkle_root: h.merkle_root,
        bits: h.bits.0,
        nonce: h.nonce,
        work,
        chainwork,
        subsidy,
        fees: Amount::from_units(minted.units().saturating_sub(subsidy.units())),
        next,
        hash: block.hash(),
        height,
        time: h.time,
        seen,
        confirmations,
        size,
        txs: block
            .txs
            .iter()
            .map(|t| TxRow {
                txid: t.txid(),
                coinbase: t.is_coinbase(),
                inputs: t.inputs.len(),
                outputs: t.outputs.len(),
                amount: t.output_total().unwrap_or_default(),
                size: t.size(),
            })
            .collect(),
    }
}

/// One transaction with the outputs its inputs spend, and its fee.
pub fn load_tx(node: &NodeHandle, txid: Txid) -> Result<TxDetail, String> {
    let info = node
        .transaction(&txid)
        .map_err(words)?
        .ok_or_else(|| format!("unknown transaction {}", txid.short()))?;
    let mut spent = Vec::new();
    for i in &info.tx.inputs {
        spent.push(
            node.transaction(&i.prevout.txid)
                .map_err(words)?
                .and_then(|p| p.tx.outputs.get(i.prevout.vout as usize).copied()),
        );
    }
    let spends = node.spenders(&txid).map_err(words)?;
    // The path from the txid to the merkle root of its block, checked against the header.
    let proof = match info.block {
        Some((hash, _)) => {
            let block = node
                .block(&hash)
                .map_err(words)?
                .ok_or_else(|| format!("block {} is missing", hash.short()))?;
            let ids: Vec<Txid> = block.txs.iter().map(|t| t.txid()).collect();
            ids.iter().position(|t| *t == txid).and_then(|index| {
                let steps = crate::core::merkle::merkle_proof(&ids, index)?;
                Some(proof_view(
                    txid,
                    index,
                    ids.len(),
                    steps,
                    block.header.merkle_root,
                ))
            })
        }
        None => None,
    };
    Ok(tx_detail(
        &info.tx,
        info.block,
        info.confirmations,
        info.fee,
        &spent,
        &spends,
        proof,
    ))
}

/// A merkle proof as the overlay shows it, checked against the header's root.
pub fn proof_view(
    txid: Txid,
    index: usize,
    count: usize,
    steps: Vec<crate::core::merkle::ProofStep>,
    root: crate::core::hash::MerkleRoot,
) -> ProofView {
    ProofView {
        index,
        count,
        path: crate::core::merkle::proof_path(&txid, &steps),
        valid: crate::core::merkle::verify_proof(&txid, &steps, &root),
        steps,
        root,
    }
}

/// A transaction's details from the transaction, the outputs its inputs spend (`None`: not
/// found) and what became of its outputs.
pub fn tx_detail(
    tx: &crate::core::tx::Transaction,
    block: Option<(BlockHash, u64)>,
    confirmations: u64,
    fee: Option<Amount>,
    spent: &[Option<crate::core::tx::TxOut>],
    spends: &[Spend],
    proof: Option<ProofView>,
) -> TxDetail {
    let coinbase = tx.is_coinbase();
    let mut in_total = Some(Amount::ZERO);
    let mut inputs = Vec::new();
    for (n, i) in tx.inputs.iter().enumerate() {
        let spent = spent.get(n).copied().flatten();
        in_total = match (in_total, spent) {
            (Some(t), Some(o)) => t.checked_add(o.amount),
            _ => None,
        };
        inputs.push(InputRow {
            prevout: i.prevout,
            address: spent.map(|o| o.address),
            amount: spent.map(|o| o.amount),
        });
    }
    let outputs = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(vout, o)| OutputRow {
            address: o.address,
            amount: o.amount,
            spend: spends.get(vout).copied().unwrap_or(Spend::Unknown),
        })
        .collect();
    let fee = fee.or_else(|| {
        if coinbase {
            return None;
        }
        in_total?.checked_sub(tx.output_total()?)
    });
    TxDetail {
        txid: tx.txid(),
        block,
        confirmations,
        coinbase,
        size: tx.size(),
        inputs,
        outputs,
        fee,
        proof,
    }
}
