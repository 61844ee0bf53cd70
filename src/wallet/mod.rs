//! The wallet: ed25519 keys in a keystore file in the data dir, several addresses, balances
//! (confirmed, unconfirmed, immature), coin selection with change, fees from a fee rate, signing
//! and history with confirmation counts. It sees the chain only through the node handle.
//!
//! A data dir's wallet is never silently replaced: next to the keystore (`wallet.json`) a
//! record (`wallet.id`) keeps the public keys the data dir's wallet has had. Opening refuses,
//! and says what it found, when the keystore is gone, damaged, altered or another one; when
//! other users can read it; or when the passphrase is wrong. Coins chosen for a payment are
//! reserved until it is in the mempool or has failed, so concurrent payments never pick the
//! same coins.

pub mod keystore;

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::Txid;
use crate::core::params::Network;
use crate::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use crate::node::FeeRate;
use crate::node::{NodeError, NodeHandle};
use ed25519_dalek::{Signer, SigningKey};
use keystore::{Keystore, KeystoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Change below this is left to the fee rather than creating a tiny output.
pub const DUST: Amount = Amount::from_units(1_000);

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
    #[error("fee rate {0} is below the minimum of {min}", min = FeeRate::MIN_RELAY)]
    FeeRateTooLow(FeeRate),
    /// Paying it takes more coins than one transaction may spend.
    #[error(
        "paying {amount} takes more than {fit} coins, more than one transaction of at most {max_size} bytes can spend: one payment can send at most {most} at this fee rate; send less, or first pay yourself from some of the small coins to merge them", max_size = crate::node::MAX_TX_SIZE
    )]
    TooManyInputs {
        amount: Amount,
        fit: usize,
        most: Amount,
    },
    #[error("amounts overflow")]
    Overflow,
    /// The data dir had a wallet, and its keystore is gone.
    #[error(
        "{} is missing, but this data dir had a wallet (first address {first}, recorded in {}); refusing to start with no wallet or a new one: restore wallet.json from your backup, or run `chain-tui wallet new --force` to start a new, empty wallet", path.display(), record.display()
    )]
    Missing {
        path: PathBuf,
        record: PathBuf,
        first: String,
    },
    /// The keystore is there but cannot be read as one.
    #[error(
        "{found}; refusing to start with it or to replace it: restore wallet.json from your backup, or run `chain-tui wallet new --force` to set it aside and start a new, empty wallet"
    )]
    Damaged { found: KeystoreError },
    /// The keystore lacks keys the data dir's wallet had.
    #[error(
        "{} is not this data dir's wallet: it lacks {missing} of the {had} keys recorded in {} (first missing address {first}); it was altered or replaced. Refusing to use it: restore wallet.json from your backup, or run `chain-tui wallet new --force` to set it aside and start a new, empty wallet", path.display(), record.display()
    )]
    Altered {
        path: PathBuf,
        record: PathBuf,
        missing: usize,
        had: usize,
        first: String,
    },
    /// Other users may read the keystore.
    #[error(
        "{} holds secret keys but other users can read it (mode {mode:04o}); refusing to use it: run `chmod 600 {}` (and consider the keys seen)", path.display(), path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    /// The record of the data dir's wallet is damaged.
    #[error(
        "{} (the record of this data dir's wallet) is damaged: {reason}; move it away to accept wallet.json as this data dir's wallet", path.display()
    )]
    Record { path: PathBuf, reason: String },
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
        i128::from(self.received.units()) - i128::from(self.sent.units())
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
    /// `wallet.id`: the public keys this data dir's wallet has had.
    record: PathBuf,
    /// Coins chosen for payments not yet in the mempool.
    reserved: Arc<Mutex<HashSet<OutPoint>>>,
}

/// The keystore file of a data dir.
pub fn keystore_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.json")
}

/// The record of a data dir's wallet: the public keys it has had (never secrets), so that a
/// keystore that is gone, damaged or replaced is noticed instead of silently recreated.
pub fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.id")
}

/// Largest record file read (a few thousand keys).
const MAX_RECORD: u64 = 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    /// Public keys, hex, oldest first.
    keys: Vec<String>,
}

fn read_record(path: &Path) -> Result<Option<Vec<[u8; 32]>>, WalletError> {
    let damaged = |reason: String| WalletError::Record {
        path: path.to_path_buf(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(damaged(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_RECORD + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| damaged(e.to_string()))?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(damaged("the file is too large".into()));
    }
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if record.version != 1 {
        return Err(damaged(format!("unknown version {}", record.version)));
    }
    let mut keys = Vec::with_capacity(record.keys.len());
    for k in &record.keys {
        let mut key = [0u8; 32];
        hex::decode_to_slice(k, &mut key)
            .map_err(|_| damaged(format!("{k:?} is not a 32-byte public key in hex")))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(damaged("it records no keys".into()));
    }
    Ok(Some(keys))
}

fn write_record(path: &Path, keys: &[[u8; 32]]) -> Result<(), WalletError> {
    let record = Record {
        version: 1,
        keys: keys.iter().map(hex::encode).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
    bytes.push(b'\n');
    crate::fsutil::write_atomic(path, &bytes).map_err(|error| {
        WalletError::Keystore(KeystoreError::Io {
            path: path.to_path_buf(),
            error,
        })
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError + '_ {
    move |error| {
        WalletError::Keystore(KeystoreError::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// Coins held for one payment until it is in the mempool or has failed: dropping it frees them.
pub struct Reservation {
    set: Arc<Mutex<HashSet<OutPoint>>>,
    coins: Vec<OutPoint>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        for c in &self.coins {
            set.remove(c);
        }
    }
}

impl Wallet {
    /// Open the data dir's wallet, creating it (one key) on first use. Refuses, saying what it
    /// found, a keystore that is gone (when the data dir had one), damaged, altered or another
    /// wallet's, readable by other users, or encrypted under another passphrase.
    pub fn open_or_create(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
    ) -> Result<Wallet, WalletError> {
        match Self::open_checked(data_dir, network, passphrase, true)? {
            Some(w) => Ok(w),
            None => Err(io_error(data_dir)(std::io::Error::other(
                "the wallet was not created",
            ))),
        }
    }

    /// Open an existing wallet, if there is one (same checks as [`Wallet::open_or_create`]; a
    /// keystore the data dir had and lost is an error, not `None`).
    pub fn open_existing(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
    ) -> Result<Option<Wallet>, WalletError> {
        Self::open_checked(data_dir, network, passphrase, false)
    }

    /// Start a new wallet on a data dir whose wallet cannot be opened: the keystore there (if
    /// any) is renamed aside, never deleted; returns the new wallet and where the old file went.
    pub fn create_replacing(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
    ) -> Result<(Wallet, Option<PathBuf>), WalletError> {
        crate::fsutil::create_private_dir(data_dir).map_err(io_error(data_dir))?;
        let path = keystore_path(data_dir);
        let aside = if std::fs::symlink_metadata(&path).is_ok() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut aside = data_dir.join(format!("wallet.json.old-{stamp}"));
            let mut n = 1;
            while std::fs::symlink_metadata(&aside).is_ok() {
                aside = data_dir.join(format!("wallet.json.old-{stamp}-{n}"));
                n += 1;
            }
            std::fs::rename(&path, &aside).map_err(io_error(&path))?;
            Some(aside)
        } else {
            None
        };
        let keystore = Keystore::create(&path, passphrase)?;
        let wallet = Wallet::from_keystore(keystore, network, data_dir);
        write_record(&wallet.record, &wallet.public_keys())?;
        Ok((wallet, aside))
    }

    fn from_keystore(keystore: Keystore, network: Network, data_dir: &Path) -> Wallet {
        Wallet {
            keystore,
            network,
            record: record_path(data_dir),
            reserved: Arc::default(),
        }
    }

    fn public_keys(&self) -> Vec<[u8; 32]> {
        self.keystore
            .keys()
            .iter()
            .map(|k| k.public_key())
            .collect()
    }

    fn open_checked(
        data_dir: &Path,
        network: Network,
        passphrase: Option<&str>,
        create: bool,
    ) -> Result<Option<Wallet>, WalletError> {
        let path = keystore_path(data_dir);
        let record_file = record_path(data_dir);
        let record = read_record(&record_file)?;
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_error(&path)(e)),
        };
        if !exists {
            if let Some(keys) = record {
                return Err(WalletError::Missing {
                    path,
                    record: record_file,
                    first: Address::from_pubkey(&keys[0]).encode(network),
                });
            }
            if !create {
                return Ok(None);
            }
            crate::fsutil::create_private_dir(data_dir).map_err(io_error(data_dir))?;
            let keystore = Keystore::open_or_create(&path, passphrase)?;
            let wallet = Wallet::from_keystore(keystore, network, data_dir);
            write_record(&wallet.record, &wallet.public_keys())?;
            return Ok(Some(wallet));
        }
        if let Some(mode) = crate::fsutil::exposed_mode(&path).map_err(io_error(&path))? {
            return Err(WalletError::Exposed { path, mode });
        }
        let keystore = Keystore::open(&path, passphrase).map_err(|e| match e {
            KeystoreError::Corrupt { .. } | KeystoreError::UnsupportedVersion { .. } => {
                WalletError::Damaged { found: e }
            }
            e => WalletError::Keystore(e),
        })?;
        let wallet = Wallet::from_keystore(keystore, network, data_dir);
        let keys = wallet.public_keys();
        match record {
            Some(had) => {
                let missing: Vec<&[u8; 32]> = had.iter().filter(|k| !keys.contains(k)).collect();
                if let Some(first) = missing.first() {
                    return Err(WalletError::Altered {
                        path,
                        record: record_file,
                        missing: missing.len(),
                        had: had.len(),
                        first: Address::from_pubkey(first).encode(network),
                    });
                }
                if had.len() != keys.len() {
                    write_record(&record_file, &keys)?;
                }
            }
            // A data dir from before the record existed: record its wallet now.
            None => write_record(&record_file, &keys)?,
        }
        Ok(Some(wallet))
    }

    /// Whether the data dir's keystore is encrypted (false when there is none or it cannot be
    /// read; opening it then says why).
    pub fn is_encrypted_at(data_dir: &Path) -> bool {
        keystore::is_encrypted_file(&keystore_path(data_dir))
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

    /// Make a new receive address (saved, and recorded in `wallet.id`, before it is returned).
    pub fn new_address(&mut self) -> Result<Address, WalletError> {
        let n = self.keystore.keys().len();
        let i = self.keystore.new_key(&format!("address {n}"))?;
        if let Err(e) = write_record(&self.record, &self.public_keys()) {
            // The key is saved in the keystore; the next open records it.
            tracing::warn!("{e}");
        }
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
        let mine: HashMap<Address, [u8; 32]> = self
            .keystore
            .keys()
            .iter()
            .map(|k| (Address::from_pubkey(&k.public_key()), k.public_key()))
            .collect();
        scan(node, &mine)
    }
}

/// The coins of these addresses (each with the public key it is spent with): the spendable
/// ones (mature, unspent, mempool outputs included), and the balance.
fn scan(
    node: &NodeHandle,
    mine: &HashMap<Address, [u8; 32]>,
) -> Result<(Vec<Spendable>, Balance), WalletError> {
    {
        // Coins and the tip they mature against come from one snapshot.
        let r = node.read()?;
        let mut spendable = Vec::new();
        let mut balance = Balance::default();
        for (addr, pubkey) in mine {
            for (outpoint, coin) in r.address_coins(addr)? {
                if r.immature(&coin)? {
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
}

impl Wallet {
    pub fn balance(&self, node: &NodeHandle) -> Result<Balance, WalletError> {
        Ok(self.scan(node)?.1)
    }

    /// The balance, and the amounts of the coins a payment may spend now (not reserved by a
    /// payment under way).
    pub fn balance_and_coins(
        &self,
        node: &NodeHandle,
    ) -> Result<(Balance, Vec<Amount>), WalletError> {
        let (coins, balance) = self.scan(node)?;
        let reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let amounts = coins
            .iter()
            .filter(|c| !reserved.contains(&c.outpoint))
            .map(|c| c.amount)
            .collect();
        Ok((balance, amounts))
    }

    /// Build and sign a payment of `amount` to `to` at `fee_rate`, with change back to the
    /// receive address. Nothing is sent: submit the result to the node. Coins reserved by
    /// [`Wallet::build_payment_reserved`] are not used.
    pub fn build_payment(
        &self,
        node: &NodeHandle,
        to: Address,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        let reserved = self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pay = [TxOut {
            amount,
            address: to,
        }];
        self.build_payment_avoiding(node, &pay, fee_rate, &reserved)
    }

    /// Like [`Wallet::build_payment`], to one or more outputs (`pay`), and the coins it spends
    /// stay reserved (no other payment
    /// of this wallet picks them) until the [`Reservation`] is dropped: keep it until the
    /// transaction is in the mempool or the send has failed.
    pub fn build_payment_reserved(
        &self,
        node: &NodeHandle,
        pay: &[TxOut],
        fee_rate: FeeRate,
    ) -> Result<(Transaction, Reservation), WalletError> {
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.build_payment_avoiding(node, pay, fee_rate, &reserved)?;
        let coins: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prevout).collect();
        reserved.extend(coins.iter().copied());
        drop(reserved);
        Ok((
            tx,
            Reservation {
                set: self.reserved.clone(),
                coins,
            },
        ))
    }

    fn build_payment_avoiding(
        &self,
        node: &NodeHandle,
        pay: &[TxOut],
        fee_rate: FeeRate,
        reserved: &HashSet<OutPoint>,
    ) -> Result<Transaction, WalletError> {
        let (mut coins, balance) = self.scan(node)?;
        coins.retain(|c| !reserved.contains(&c.outpoint));
        let mut tx = plan(coins, &balance, pay, fee_rate, self.receive_address())?.0;
        self.sign(&mut tx, node)?;
        Ok(tx)
    }

    /// A transaction that spends exactly the coins `tx` spends (this wallet's) and pays all
    /// that `tx` paid out, in one output, to `to`, signed: it conflicts with `tx`, whichever
    /// of the two a chain keeps. (The demo's majority attack spends a payment's coin back to
    /// itself with it.)
    pub fn conflicting_payment(
        &self,
        node: &NodeHandle,
        tx: &Transaction,
        to: Address,
    ) -> Result<Transaction, WalletError> {
        if tx.inputs.is_empty() {
            return Err(WalletError::ZeroAmount);
        }
        let amount = Amount::checked_sum(tx.outputs.iter().map(|o| o.amount))
            .ok_or(WalletError::Overflow)?;
        let mut out = Transaction {
            version: tx.version,
            inputs: tx
                .inputs
                .iter()
                .map(|i| TxIn {
                    signature: [0; 64],
                    ..i.clone()
                })
                .collect(),
            outputs: vec![TxOut {
                amount,
                address: to,
            }],
            lock_height: tx.lock_height,
            memo: Vec::new(),
        };
        self.sign(&mut out, node)?;
        Ok(out)
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
        // Histories and the tip confirmations count from come from one snapshot.
        let r = node.read()?;
        let mine: HashSet<Address> = self.addresses().into_iter().collect();
        let mut by_tx: BTreeMap<(u64, Txid), WalletTx> = BTreeMap::new();
        for addr in &mine {
            for e in r.address_history(addr)? {
                let confirmations = r.confirmations(e.height)?;
                let w = by_tx.entry((e.height, e.txid)).or_insert(WalletTx {
                    txid: e.txid,
                    height: Some(e.height),
                    confirmations,
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

/// Pay `pay` from `coins` at `fee_rate`, change to `change`: the unsigned transaction (coins
/// largest first, the fewest that cover the outputs and the fee) and its fee; or why not.
fn plan(
    mut coins: Vec<Spendable>,
    balance: &Balance,
    pay: &[TxOut],
    fee_rate: FeeRate,
    change: Address,
) -> Result<(Transaction, Amount), WalletError> {
    if pay.is_empty() || pay.iter().any(|o| o.amount == Amount::ZERO) {
        return Err(WalletError::ZeroAmount);
    }
    if fee_rate < FeeRate::MIN_RELAY {
        return Err(WalletError::FeeRateTooLow(fee_rate));
    }
    // Largest first: fewest inputs, smallest transaction.
    coins.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.outpoint.cmp(&b.outpoint)));
    let available =
        Amount::checked_sum(coins.iter().map(|c| c.amount)).ok_or(WalletError::Overflow)?;
    match select(&coins, pay, fee_rate, change)? {
        Ok(plan) => {
            let tx = unsigned(&coins[..plan.inputs], pay, plan.change.map(|c| (change, c)));
            Ok((tx, plan.fee))
        }
        Err(needed) => {
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
    }
}

/// An unsigned payment from the coins of the address of `pubkey`, for a key held elsewhere
/// (`POST /transactions/build`): the coins chosen as the wallet chooses its own, change back to
/// `change` (that address if `None`), every input's signature left zero. Sign
/// [`Transaction::sighash`] with the key and put the signature in every input. Also its fee.
pub fn build_unsigned(
    node: &NodeHandle,
    pubkey: [u8; 32],
    pay: &[TxOut],
    fee_rate: FeeRate,
    change: Option<Address>,
) -> Result<(Transaction, Amount), WalletError> {
    let from = Address::from_pubkey(&pubkey);
    let (coins, balance) = scan(node, &HashMap::from([(from, pubkey)]))?;
    plan(coins, &balance, pay, fee_rate, change.unwrap_or(from))
}

/// What a payment would spend: the first `inputs` coins (largest first), the fee, and the
/// change (`None` when it would be dust and goes to the fee).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentPlan {
    pub inputs: usize,
    pub fee: Amount,
    pub change: Option<Amount>,
}

/// Coin selection as [`Wallet::build_payment`] does it, on `coins` sorted largest first: the
/// fewest coins that pay `amount` and the fee of a transaction spending them. `Ok(Err(needed))`
/// when all of them together fall short of `needed` (amount and fee).
fn select(
    coins: &[Spendable],
    pay: &[TxOut],
    fee_rate: FeeRate,
    change_address: Address,
) -> Result<Result<PaymentPlan, Amount>, WalletError> {
    let amount = Amount::checked_sum(pay.iter().map(|o| o.amount)).ok_or(WalletError::Overflow)?;
    let mut total = Amount::ZERO;
    // Sizes are summed input by input instead of encoding a draft per step: with thousands of
    // coins the form that checks as you type would otherwise encode millions of inputs.
    let mut size = DraftSize::new(pay, change_address);
    let mut last_size = size.empty;
    for (i, coin) in coins.iter().enumerate() {
        // Size with a change output (amounts at their widest encoding, so never short).
        let n = size.add(coin);
        if n > crate::node::MAX_TX_SIZE {
            // What the coins that fit pay after the fee of spending them all.
            return Err(WalletError::TooManyInputs {
                amount,
                fit: i,
                most: total
                    .checked_sub(fee_rate.fee_for(last_size))
                    .unwrap_or(Amount::ZERO),
            });
        }
        last_size = n;
        total = total
            .checked_add(coin.amount)
            .ok_or(WalletError::Overflow)?;
        let fee = fee_rate.fee_for(n);
        let needed = amount.checked_add(fee).ok_or(WalletError::Overflow)?;
        if total < needed {
            continue;
        }
        let change = Amount::from_units(total.units() - needed.units());
        // Change too small to be worth an output goes to the fee: the fee is what is paid.
        let (fee, change) = if change >= DUST {
            (fee, Some(change))
        } else {
            (Amount::from_units(total.units() - amount.units()), None)
        };
        return Ok(Ok(PaymentPlan {
            inputs: i + 1,
            fee,
            change,
        }));
    }
    let needed = amount
        .checked_add(fee_rate.fee_for(unsigned(coins, pay, None).size()))
        .ok_or(WalletError::Overflow)?;
    Ok(Err(needed))
}

/// The encoded size of `unsigned(coins[..n], pay, Some((change, Amount::from_units(u64::MAX))))`,
/// kept up to date as coins are added one at a time.
struct DraftSize {
    /// Size with no inputs (its input count is one byte then).
    empty: usize,
    inputs: usize,
    input_bytes: usize,
}

impl DraftSize {
    fn new(pay: &[TxOut], change: Address) -> DraftSize {
        DraftSize {
            empty: unsigned(&[], pay, Some((change, Amount::from_units(u64::MAX)))).size(),
            inputs: 0,
            input_bytes: 0,
        }
    }

    /// Add one input; the size of the draft with every input so far.
    fn add(&mut self, coin: &Spendable) -> usize {
        let input = TxIn {
            prevout: coin.outpoint,
            pubkey: coin.pubkey,
            signature: [0; 64],
        };
        self.inputs += 1;
        self.input_bytes += crate::core::encode::encode(&input).len();
        // The input count is a varint: 7 bits a byte.
        let count_bytes = (usize::BITS - self.inputs.leading_zeros())
            .div_ceil(7)
            .max(1) as usize;
        self.empty - 1 + count_bytes + self.input_bytes
    }
}

/// The most one payment at `fee_rate` can send from spendable coins of these amounts: all the
/// coins worth more than the fee of spending them (largest first, as many as one transaction
/// may hold), less the fee. `None` when nothing is left after the fee.
pub fn max_payment(coins: &[Amount], fee_rate: FeeRate) -> Option<Amount> {
    let mut sorted: Vec<Amount> = coins.to_vec();
    sorted.sort_by_key(|a| std::cmp::Reverse(*a));
    let anyone = Address::from_hash([0; 20]);
    // Drafted with the widest amount; the real one is `widest - varint(amount)` bytes shorter.
    let widest = [TxOut {
        amount: Amount::from_units(u64::MAX),
        address: anyone,
    }];
    let mut size = DraftSize::new(&widest, anyone);
    let varint = |v: u64| (u64::BITS - v.leading_zeros()).div_ceil(7).max(1) as usize;
    let fits = |total: Amount, n: usize| -> Option<Amount> {
        // The amount and the fee of a transaction paying it depend on each other only through
        // the amount's encoded width: settle it in a few rounds, then check it is covered.
        let mut a = total.checked_sub(fee_rate.fee_for(n))?;
        for _ in 0..3 {
            let fee = fee_rate.fee_for(n - varint(u64::MAX) + varint(a.units()));
            a = total.checked_sub(fee)?;
        }
        let fee = fee_rate.fee_for(n - varint(u64::MAX) + varint(a.units()));
        (a.checked_add(fee)? <= total && a > Amount::ZERO).then_some(a)
    };
    let mut total = Amount::ZERO;
    let mut best: Option<Amount> = None;
    for a in sorted {
        let coin = Spendable {
            outpoint: OutPoint {
                txid: Txid([0; 32]),
                vout: 0,
            },
            amount: a,
            pubkey: [0; 32],
        };
        let n = size.add(&coin);
        if n > crate::node::MAX_TX_SIZE {
            break;
        }
        total = total.checked_add(a)?;
        match fits(total, n) {
            Some(left) if Some(left) > best => best = Some(left),
            // A coin worth less than its own input's fee: the rest are smaller still.
            _ => break,
        }
    }
    best
}

/// What paying `amount` at `fee_rate` would cost from spendable coins of these amounts (the
/// same selection [`Wallet::build_payment`] makes, for a form that checks as you type):
/// `Ok(plan)`, or why not.
pub fn plan_payment(
    coins: &[Amount],
    amount: Amount,
    fee_rate: FeeRate,
) -> Result<PaymentPlan, PlanError> {
    let mut sorted: Vec<Spendable> = coins
        .iter()
        .map(|a| Spendable {
            outpoint: OutPoint {
                txid: Txid([0; 32]),
                vout: 0,
            },
            amount: *a,
            pubkey: [0; 32],
        })
        .collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.amount));
    let anyone = Address::from_hash([0; 20]);
    let pay = [TxOut {
        amount,
        address: anyone,
    }];
    match select(&sorted, &pay, fee_rate, anyone) {
        Ok(Ok(plan)) => Ok(plan),
        Ok(Err(needed)) => Err(PlanError::Short(needed)),
        Err(WalletError::TooManyInputs { most, .. }) => Err(PlanError::TooManyInputs(most)),
        Err(_) => Err(PlanError::TooLarge),
    }
}

/// Why [`plan_payment`] found no plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The coins fall short of amount and fee: this much is needed.
    Short(Amount),
    /// It takes more coins than one transaction may spend; one payment can send at most this.
    TooManyInputs(Amount),
    /// Amount and fee overflow.
    TooLarge,
}

fn unsigned(inputs: &[Spendable], pay: &[TxOut], change: Option<(Address, Amount)>) -> Transaction {
    let mut outputs = pay.to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_sizes_match_the_encoded_drafts() {
        let (to, change) = (Address::from_hash([1; 20]), Address::from_hash([2; 20]));
        let coins: Vec<Spendable> = (0..300u32)
            .map(|i| Spendable {
                outpoint: OutPoint {
                    txid: Txid([i as u8; 32]),
                    vout: i * 97,
                },
                amount: Amount::from_units(u64::from(i) + 1),
                pubkey: [3; 32],
            })
            .collect();
        let pay = [
            TxOut {
                amount: Amount::from_units(5),
                address: to,
            },
            TxOut {
                amount: Amount::from_units(7_000_000),
                address: change,
            },
        ];
        let mut size = DraftSize::new(&pay, change);
        for i in 0..coins.len() {
            let want = unsigned(
                &coins[..=i],
                &pay,
                Some((change, Amount::from_units(u64::MAX))),
            );
            assert_eq!(size.add(&coins[i]), want.size(), "{} inputs", i + 1);
        }
    }

    #[test]
    fn max_payment_is_the_largest_amount_the_selection_covers() {
        let rate = FeeRate::DEFAULT;
        let coins: Vec<Amount> = [50u64, 12, 3, 1]
            .into_iter()
            .map(|c| Amount::from_units(c * 100_000_000))
            .chain([Amount::from_units(100)]) // worth less than its own input's fee
            .collect();
        let max = max_payment(&coins, rate).unwrap();
        let plan = plan_payment(&coins, max, rate).unwrap();
        assert_eq!(plan.inputs, 4, "the dust coin is left out");
        assert_eq!(
            max.checked_add(plan.fee),
            Some(Amount::from_units(66 * 100_000_000))
        );
        assert!(plan_payment(&coins, Amount::from_units(max.units() + 1), rate).is_err());
        assert_eq!(max_payment(&[Amount::from_units(10)], rate), None);
        assert_eq!(max_payment(&[], rate), None);
    }

    /// Thousands of small coins: a payment that would need more of them than one transaction
    /// may spend is refused with the most one payment can send (it used to build a transaction
    /// the mempool then refused as too large), and that most is payable.
    #[test]
    fn a_payment_needing_more_coins_than_a_transaction_holds_says_the_most_it_can_send() {
        let rate = FeeRate::MIN_RELAY;
        let coins = vec![Amount::from_units(10_000); 3_000];
        let all = Amount::from_units(10_000 * 3_000);
        let Err(PlanError::TooManyInputs(most)) = plan_payment(&coins, all, rate) else {
            panic!("{:?}", plan_payment(&coins, all, rate));
        };
        let p = plan_payment(&coins, most, rate).unwrap();
        assert!(p.inputs < 3_000 && p.inputs > 500, "{p:?}");
        assert!(matches!(
            plan_payment(&coins, Amount::from_units(most.units() + 1), rate),
            Err(PlanError::TooManyInputs(m)) if m == most
        ));
        let spendables: Vec<Spendable> = coins
            .iter()
            .enumerate()
            .map(|(i, a)| Spendable {
                outpoint: OutPoint {
                    txid: Txid([(i % 251) as u8; 32]),
                    vout: (i / 251) as u32,
                },
                amount: *a,
                pubkey: [3; 32],
            })
            .collect();
        let to = [TxOut {
            amount: most,
            address: Address::from_hash([1; 20]),
        }];
        let change = Address::from_hash([2; 20]);
        let (tx, _) = plan(spendables.clone(), &Balance::default(), &to, rate, change).unwrap();
        assert!(tx.size() <= crate::node::MAX_TX_SIZE, "{}", tx.size());
        let over = [TxOut {
            amount: all,
            address: Address::from_hash([1; 20]),
        }];
        let e = plan(spendables, &Balance::default(), &over, rate, change).unwrap_err();
        assert!(
            matches!(e, WalletError::TooManyInputs { most: m, .. } if m == most),
            "{e}"
        );
        assert!(
            e.to_string().contains("one payment can send at most"),
            "{e}"
        );
    }
}
