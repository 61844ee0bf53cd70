//! Shared test harness: a regtest chain in a temporary dir, deterministic keys, and blocks
//! and transactions built and solved by hand.
#![allow(dead_code)]

pub mod api;
pub mod bin;
pub mod net;

use chain_tui::core::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::{Block, BlockHeader};
use chain_tui::core::hash::BlockHash;
use chain_tui::core::merkle::merkle_root;
use chain_tui::core::params::{Network, Params};
use chain_tui::core::rules::{Coin, SerialVerifier};
use chain_tui::core::tx::{OutPoint, Transaction, TxOut};
use chain_tui::node::chain::{Accepted, Chain, Durability, ProcessError};
use chain_tui::storage::{BlockMeta, Store};
use ed25519_dalek::SigningKey;

/// A deterministic key.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn address(k: &SigningKey) -> Address {
    Address::from_pubkey(&k.verifying_key().to_bytes())
}

/// An unsolved block on `parent` with `txs`, at the easiest target, one second after its
/// parent, whose coinbase pays `subsidy + fees` to `to`.
pub fn template(
    params: &Params,
    parent: &BlockMeta,
    to: Address,
    txs: Vec<Transaction>,
    fees: Amount,
) -> Block {
    let height = parent.height + 1;
    let coinbase = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: params.subsidy(height).checked_add(fees).unwrap(),
            address: to,
        }],
        lock_height: height,
        memo: vec![],
    };
    let mut all = vec![coinbase];
    all.extend(txs);
    Block {
        header: BlockHeader {
            version: 1,
            prev: parent.hash(),
            merkle_root: merkle_root(&all.iter().map(Transaction::txid).collect::<Vec<_>>()),
            time: parent.header.time + 1,
            bits: params.pow_limit.to_compact(),
            nonce: 0,
        },
        txs: all,
    }
}

/// A regtest chain in its own temporary directory.
pub struct TestChain {
    pub dir: tempfile::TempDir,
    pub chain: Chain,
    pub params: &'static Params,
}

impl TestChain {
    pub fn new() -> TestChain {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(&dir.path().join("chain.redb"), Network::Regtest).expect("open store");
        let params = store.params();
        TestChain {
            dir,
            chain: Chain::new(store, Box::new(SerialVerifier)),
            params,
        }
    }

    pub fn tip(&self) -> BlockMeta {
        self.chain.tip().expect("tip")
    }

    pub fn meta(&self, hash: &BlockHash) -> BlockMeta {
        self.chain
            .store()
            .read()
            .unwrap()
            .meta(hash)
            .unwrap()
            .expect("known block")
    }

    pub fn coin(&self, o: &OutPoint) -> Option<Coin> {
        self.chain.store().read().unwrap().coin(o).unwrap()
    }

    /// Every unspent coin, sorted.
    pub fn utxo_set(&self) -> Vec<(OutPoint, Coin)> {
        let mut v = Vec::new();
        self.chain
            .store()
            .read()
            .unwrap()
            .for_each_coin(|o, c| v.push((o, c)))
            .unwrap();
        v
    }

    /// An unsolved block on `parent` whose coinbase pays `subsidy + fees` to `to`.
    /// An unsolved block on `parent` whose coinbase pays `subsidy + fees` to `to`.
    pub fn template(
        &self,
        parent: &BlockMeta,
        to: Address,
        txs: Vec<Transaction>,
        fees: Amount,
    ) -> Block {
        template(self.params, parent, to, txs, fees)
    }

    pub fn process(&mut self, block: Block) -> Result<Accepted, ProcessError> {
        self.chain.process_block(block, Durability::Immediate)
    }

    /// Build, solve and process a block on `parent`; panics if it is refused.
    pub fn mine_on(
        &mut self,
        parent: &BlockMeta,
        to: Address,
        txs: Vec<Transaction>,
        fees: Amount,
    ) -> BlockMeta {
        let mut b = self.template(parent, to, txs, fees);
        solve(&mut b, self.params);
        let hash = b.hash();
        self.process(b).expect("block accepted");
        self.meta(&hash)
    }

    /// Mine `n` empty blocks on the tip paying `to`; returns the last.
    pub fn mine(&mut self, n: u64, to: Address) -> BlockMeta {
        let mut tip = self.tip();
        for _ in 0..n {
            tip = self.mine_on(&tip, to, vec![], Amount::ZERO);
        }
        tip
    }
}

/// Recompute the merkle root and find a nonce meeting the block's target.
pub fn solve(b: &mut Block, params: &Params) {
    b.header.merkle_root = merkle_root(&b.txids());
    let target = b.header.bits.to_target().unwrap_or(params.pow_limit);
    b.header.nonce = 0;
    while !target.is_met_by(&b.hash().0) {
        b.header.nonce += 1;
    }
}

/// Grind the nonce until the hash is ABOVE the target (a block with too little work).
pub fn unsolve(b: &mut Block) {
    let target = b.header.bits.to_target().unwrap();
    while target.is_met_by(&b.hash().0) {
        b.header.nonce += 1;
    }
}

/// A transaction spending `inputs` (outpoint, owner key) to `outputs`, signed.
pub fn spend(
    params: &Params,
    inputs: &[(OutPoint, &SigningKey)],
    outputs: Vec<TxOut>,
) -> Transaction {
    Transaction::signed(inputs, outputs, &params.genesis_hash)
}

/// (Re)sign every input with the given keys, in order.
pub fn sign(params: &Params, tx: &mut Transaction, keys: &[&SigningKey]) {
    tx.sign(keys.iter().copied(), &params.genesis_hash);
}

/// Output `vout` of `tx`.
pub fn out(tx: &Transaction, vout: u32) -> OutPoint {
    OutPoint {
        txid: tx.txid(),
        vout,
    }
}

/// The coinbase outpoint of a block.
pub fn coinbase_of(b: &Block) -> OutPoint {
    OutPoint {
        txid: b.txs[0].txid(),
        vout: 0,
    }
}

/// A signed transaction spending the coin at `o`, owned by `from`, to `outputs` (the key
/// each pays, and how much).
pub fn pays(
    params: &Params,
    o: OutPoint,
    from: &SigningKey,
    outputs: &[(&SigningKey, u64)],
) -> Transaction {
    let outputs = outputs.iter().map(|(to, a)| pay(address(to), *a)).collect();
    spend(params, &[(o, from)], outputs)
}

pub fn pay(to: Address, amount: u64) -> TxOut {
    TxOut {
        amount: Amount::from_units(amount),
        address: to,
    }
}
