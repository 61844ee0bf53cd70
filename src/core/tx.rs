//! Transactions: outpoints, inputs signed with ed25519, outputs paying addresses, txid and sighash.

use super::address::Address;
use super::amount::Amount;
use super::encode::encode;
use super::hash::{BlockHash, Txid, sha256d, sha256d_parts};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

/// Largest memo a transaction may carry, in bytes.
pub const MAX_MEMO: usize = 100;

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutPoint {
    pub txid: Txid,
    pub vout: u32,
}

impl OutPoint {
    /// Fixed 36-byte key form: txid then big-endian index (sorts by txid, then index).
    pub fn to_key(&self) -> [u8; 36] {
        let mut k = [0u8; 36];
        k[..32].copy_from_slice(&self.txid.0);
        k[32..].copy_from_slice(&self.vout.to_be_bytes());
        k
    }
    pub fn from_key(k: &[u8; 36]) -> OutPoint {
        let mut t = [0u8; 32];
        t.copy_from_slice(&k[..32]);
        let mut v = [0u8; 4];
        v.copy_from_slice(&k[32..]);
        OutPoint {
            txid: Txid(t),
            vout: u32::from_be_bytes(v),
        }
    }
}

impl std::fmt::Display for OutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// An input: the output it spends and the key and signature that unlock it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIn {
    pub prevout: OutPoint,
    /// ed25519 public key whose address the spent output pays.
    pub pubkey: [u8; 32],
    /// ed25519 signature over the transaction's sighash.
    #[serde(with = "serde_big_array::BigArray")]
    pub signature: [u8; 64],
}

/// An output: an amount paid to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOut {
    pub amount: Amount,
    pub address: Address,
}

/// A transaction. A coinbase has no inputs and `lock_height` equal to its block's height (so
/// two coinbases never share a txid); any other transaction is valid only in blocks at a
/// height of at least its `lock_height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub version: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    pub lock_height: u64,
    /// Free bytes (at most [`MAX_MEMO`]).
    pub memo: Vec<u8>,
}

#[derive(Serialize)]
struct SighashInput<'a> {
    prevout: &'a OutPoint,
    pubkey: &'a [u8; 32],
}

#[derive(Serialize)]
struct SighashView<'a> {
    version: u32,
    inputs: Vec<SighashInput<'a>>,
    outputs: &'a [TxOut],
    lock_height: u64,
    memo: &'a [u8],
}

const SIGHASH_TAG: &[u8] = b"chain-tui/sighash/v1";

impl Transaction {
    pub fn is_coinbase(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn txid(&self) -> Txid {
        Txid(sha256d(&self.encode()))
    }

    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        self.encode().len()
    }

    /// A version-1 transaction spending `inputs` (each coin with the key that owns it) to
    /// `outputs`, every input signed for the network whose genesis block is `genesis`.
    pub fn signed(
        inputs: &[(OutPoint, &SigningKey)],
        outputs: Vec<TxOut>,
        genesis: &BlockHash,
    ) -> Transaction {
        let mut tx = Transaction {
            version: 1,
            inputs: inputs
                .iter()
                .map(|(prevout, key)| TxIn {
                    prevout: *prevout,
                    pubkey: key.verifying_key().to_bytes(),
                    signature: [0; 64],
                })
                .collect(),
            outputs,
            lock_height: 0,
            memo: Vec::new(),
        };
        tx.sign(inputs.iter().map(|(_, k)| *k), genesis);
        tx
    }

    /// Signs the inputs in order with `keys` (the sighash does not cover signatures, so this
    /// also re-signs a changed transaction).
    pub fn sign<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k SigningKey>,
        genesis: &BlockHash,
    ) {
        let sighash = self.sighash(genesis);
        for (input, key) in self.inputs.iter_mut().zip(keys) {
            input.signature = key.sign(&sighash).to_bytes();
        }
    }

    /// What every input signs: the whole transaction except signatures, tagged with the
    /// network's genesis hash so a transaction cannot be replayed on another network.
    pub fn sighash(&self, genesis: &BlockHash) -> [u8; 32] {
        let view = SighashView {
            version: self.version,
            inputs: self
                .inputs
                .iter()
                .map(|i| SighashInput {
                    prevout: &i.prevout,
                    pubkey: &i.pubkey,
                })
                .collect(),
            outputs: &self.outputs,
            lock_height: self.lock_height,
            memo: &self.memo,
        };
        sha256d_parts(&[SIGHASH_TAG, &genesis.0, &encode(&view)])
    }

    /// Sum of outputs, `None` on overflow.
    pub fn output_total(&self) -> Option<Amount> {
        Amount::checked_sum(self.outputs.iter().map(|o| o.amount))
    }
}
