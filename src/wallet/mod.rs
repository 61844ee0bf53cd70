//! The wallet: ed25519 keys in a keystore file in the data dir, several addresses, balances
//! (confirmed, unconfirmed, immature), coin selection with change, fees from a fee rate, signing
//! and history with confirmation counts. It sees the chain only through the node handle.

pub mod keystore;

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::Txid;
use crate::core::params::Network;
use crate::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use crate::node::mempool::FeeRate;
use crate::node::{NodeError, NodeHandle};
use ed25519_dalek::{Signer, SigningKey};
use keystore::{Keystore, KeystoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Default fee rate: 2 base units per byte.
pub const DEFAULT_FEE_RATE: FeeRate = FeeRate(2_000);
/// Change below this is left to the fee rather than creating a tiny output.
pub const DUST: Amount = Amount(1_000);

/// A wallet failure.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("amount must be above zero")]
    ZeroAmount,
    #[error(
        "insufficient funds: {needed} needed (amount + fee), {available} spendable{immature_note}"
    )]
    InsufficientFunds {
        needed: Amount,
        available: Amount,
        immature_note: String,
    },
    #[error("fee rate {0} per byte is below the minimum of 1")]
    FeeRateTooLow(u64),
    #[error("amounts overflow")]
    Overflow,
}

/// Balances in base units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Mature confirmed coins not spent by a mempool transaction.
    pub confirmed: Amount,
    /// Mempool outputs paying the wallet (incoming payments and our own change).
    pub unconfirmed: Amount,
    /// Coinbase rewards still waiting for maturity.
    pub immature: Amount,
}

/// One wallet transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletTx {
    pub txid: Txid,
    /// Height of the confirming block (None: in the mempool).
    pub height: Option<u64>,
    pub confirmations: u64,
    pub received: Amount,
    pub sent: Amount,
}

impl WalletTx {
    /// Net effect on the wallet, in base units (negative when paying out).
    pub fn net(&self) -> i128 {
        i128::from(self.received.0) - i128::from(self.sent.0)
    }
}

/// A coin the wallet can spend.
#[derive(Clone, Copy, Debug)]
struct Spendable {
    outpoint: OutPoint,
    amount: Amount,
    /// Public key of the address the coin pays.
    pubkey: [u8; 32],
}

/// The wallet of one data dir.
pub struct Wallet {
    keystore: Keystore,
    network: Network,
}

/// The keystore file of a data dir.
pub fn keystore_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.json")
}

impl Wallet {
    /// Open the data dir's wallet, creating it (one key) on first use.
    pub fn open_or_create(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
    ) -> Result<Wallet, WalletError> {
        std::fs::create_dir_all(data_dir).map_err(|error| KeystoreError::Io {
            path: data_dir.to_path_buf(),
            error,
        })?;
        let keystore = Keystore::open_or_create(&keystore_path(data_dir), passphrase)?;
        Ok(Wallet { keystore, network })
    }

    /// Open an existing wallet, if there is one.
    pub fn open_existing(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
    ) -> Result<Option<Wallet>, WalletError> {
        let path = keystore_path(data_dir);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Wallet {
            keystore: Keystore::open(&path, passphrase)?,
            network,
        }))
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// Every address, oldest first.
    pub fn addresses(&self) -> Vec<Address> {
        self.keystore
            .keys()
            .iter()
            .map(|k| Address::from_pubkey(&k.public_key()))
            .collect()
    }

    /// The address to receive on: the newest.
    pub fn receive_address(&self) -> Address {
        self.addresses()
            .last()
            .copied()
            .unwrap_or(Address::UNSPENDABLE)
    }

    /// Make a new receive address (saved before it is returned).
    pub fn new_address(&mut self) -> Result<Address, WalletError> {
        let n = self.keystore.keys().len();
        let i = self.keystore.new_key(&format!("address {n}"))?;
        Ok(Address::from_pubkey(&self.keystore.keys()[i].public_key()))
    }

    fn keys_by_address(&self) -> HashMap<Address, &SigningKey> {
        self.keystore
            .keys()
            .iter()
            .map(|k| (Address::from_pubkey(&k.public_key()), k.signing_key()))
            .collect()
    }

    /// Spendable coins, the balance, and immature total.
    fn scan(&self, node: &NodeHandle) -> Result<(Vec<Spendable>, Balance), WalletError> {
        let tip = node.tip()?;
        let params = node.params();
        let next = tip.height + 1;
        let mine: HashMap<Address, [u8; 32]> = self
            .keystore
            .keys()
            .iter()
            .map(|k| (Address::from_pubkey(&k.public_key()), k.public_key()))
            .collect();
        let mut spendable = Vec::new();
        let mut balance = Balance::default();
        for (addr, pubkey) in &mine {
            for (outpoint, coin) in node.address_coins(addr)? {
                if coin.coinbase && next.saturating_sub(coin.height) < params.coinbase_maturity {
                    balance.immature = balance
                        .immature
                        .checked_add(coin.output.amount)
                        .ok_or(WalletError::Overflow)?;
                    continue;
                }
                if node.mempool_spender(&outpoint).is_some() {
                    continue;
                }
                balance.confirmed = balance
                    .confirmed
                    .checked_add(coin.output.amount)
                    .ok_or(WalletError::Overflow)?;
                spendable.push(Spendable {
                    outpoint,
                    amount: coin.output.amount,
                    pubkey: *pubkey,
                });
            }
        }
        for tx in node.mempool_txs() {
            let txid = tx.txid();
            for (vout, out) in tx.outputs.iter().enumerate() {
                let Some(pubkey) = mine.get(&out.address) else {
                    continue;
                };
                let outpoint = OutPoint {
                    txid,
                    vout: vout as u32,
                };
                if node.mempool_spender(&outpoint).is_some() {
                    continue;
                }
                balance.unconfirmed = balance
                    .unconfirmed
                    .checked_add(out.amount)
                    .ok_or(WalletError::Overflow)?;
                spendable.push(Spendable {
                    outpoint,
                    amount: out.amount,
                    pubkey: *pubkey,
                });
            }
        }
        Ok((spendable, balance))
    }

    pub fn balance(&self, node: &NodeHandle) -> Result<Balance, WalletError> {
        Ok(self.scan(node)?.1)
    }

    /// Build and sign a payment of `amount` to `to` at `fee_rate`, with change back to the
    /// receive address. Nothing is sent: submit the result to the node.
    pub fn build_payment(
        &self,
        node: &NodeHandle,
        to: Address,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        if amount == Amount::ZERO {
            return Err(WalletError::ZeroAmount);
        }
        if fee_rate.0 < crate::node::mempool::MIN_FEE_RATE {
            return Err(WalletError::FeeRateTooLow(fee_rate.0 / 1000));
        }
        let (mut coins, balance) = self.scan(node)?;
        // Largest first: fewest inputs, smallest transaction.
        coins.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.outpoint.cmp(&b.outpoint)));
        let change_address = self.receive_address();
        let mut chosen: Vec<Spendable> = Vec::new();
        let mut total = Amount::ZERO;
        let available =
            Amount::checked_sum(coins.iter().map(|c| c.amount)).ok_or(WalletError::Overflow)?;
        for coin in coins {
            chosen.push(coin);
            total = total
                .checked_add(coin.amount)
                .ok_or(WalletError::Overflow)?;
            // Size with a change output (amounts at their widest encoding, so never short).
            let draft = unsigned(
                &chosen,
                to,
                amount,
                Some((change_address, Amount(u64::MAX))),
            );
            let fee = fee_rate.fee_for(draft.size());
            let needed = amount.checked_add(fee).ok_or(WalletError::Overflow)?;
            if total < needed {
                continue;
            }
            let change = Amount(total.0 - needed.0);
            let change = (change >= DUST).then_some((change_address, change));
            let mut tx = unsigned(&chosen, to, amount, change);
            self.sign(&mut tx, node)?;
            return Ok(tx);
        }
        let needed = amount
            .checked_add(fee_rate.fee_for(unsigned(&chosen, to, amount, None).size()))
            .ok_or(WalletError::Overflow)?;
        let immature_note = if balance.immature > Amount::ZERO {
            format!(" ({} more is immature coinbase)", balance.immature)
        } else {
            String::new()
        };
        Err(WalletError::InsufficientFunds {
            needed,
            available,
            immature_note,
        })
    }

    fn sign(&self, tx: &mut Transaction, node: &NodeHandle) -> Result<(), WalletError> {
        let keys = self.keys_by_address();
        let sighash = tx.sighash(&node.params().genesis_hash);
        // Inputs were chosen from the wallet's own addresses, so every key is present.
        let addrs: Vec<Address> = tx
            .inputs
            .iter()
            .map(|i| Address::from_pubkey(&i.pubkey))
            .collect();
        for (input, addr) in tx.inputs.iter_mut().zip(addrs) {
            if let Some(k) = keys.get(&addr) {
                input.signature = k.sign(&sighash).to_bytes();
            }
        }
        Ok(())
    }

    /// Wallet transactions, newest first, with confirmations.
    pub fn history(&self, node: &NodeHandle) -> Result<Vec<WalletTx>, WalletError> {
        let tip = node.tip()?;
        let mine: HashSet<Address> = self.addresses().into_iter().collect();
        let mut by_tx: BTreeMap<(u64, Txid), WalletTx> = BTreeMap::new();
        for addr in &mine {
            for e in node.address_history(addr)? {
                let w = by_tx.entry((e.height, e.txid)).or_insert(WalletTx {
                    txid: e.txid,
                    height: Some(e.height),
                    confirmations: tip.height + 1 - e.height,
                    received: Amount::ZERO,
                    sent: Amount::ZERO,
                });
                w.received = w
                    .received
                    .checked_add(e.received)
                    .ok_or(WalletError::Overflow)?;
                w.sent = w.sent.checked_add(e.sent).ok_or(WalletError::Overflow)?;
            }
        }
        let mut out: Vec<WalletTx> = by_tx.into_values().rev().collect();
        // Unconfirmed: amounts from the mempool transaction and the coins it spends.
        let mut pending = Vec::new();
        for tx in node.mempool_txs() {
            let received = Amount::checked_sum(
                tx.outputs
                    .iter()
                    .filter(|o| mine.contains(&o.address))
                    .map(|o| o.amount),
            )
            .ok_or(WalletError::Overflow)?;
            let mut sent = Amount::ZERO;
            for i in &tx.inputs {
                if mine.contains(&Address::from_pubkey(&i.pubkey))
                    && let Some(amount) = input_amount(node, &i.prevout)?
                {
                    sent = sent.checked_add(amount).ok_or(WalletError::Overflow)?;
                }
            }
            if received > Amount::ZERO || sent > Amount::ZERO {
                pending.push(WalletTx {
                    txid: tx.txid(),
                    height: None,
                    confirmations: 0,
                    received,
                    sent,
                });
            }
        }
        pending.extend(out);
        out = pending;
        Ok(out)
    }
}

/// Amount of the output `o` (confirmed or in the mempool).
fn input_amount(node: &NodeHandle, o: &OutPoint) -> Result<Option<Amount>, WalletError> {
    if let Some(info) = node.transaction(&o.txid)? {
        return Ok(info.tx.outputs.get(o.vout as usize).map(|x| x.amount));
    }
    Ok(None)
}

fn unsigned(
    inputs: &[Spendable],
    to: Address,
    amount: Amount,
    change: Option<(Address, Amount)>,
) -> Transaction {
    let mut outputs = vec![TxOut {
        amount,
        address: to,
    }];
    if let Some((address, amount)) = change {
        outputs.push(TxOut { amount, address });
    }
    Transaction {
        version: 1,
        inputs: inputs
            .iter()
            .map(|c| TxIn {
                prevout: c.outpoint,
                pubkey: c.pubkey,
                signature: [0; 64],
            })
            .collect(),
        outputs,
        lock_height: 0,
        memo: Vec::new(),
    }
}
