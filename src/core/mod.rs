//! Pure consensus: hashes and newtypes, amounts, addresses, transactions, blocks, canonical
//! encoding, proof of work and difficulty, merkle trees, network parameters and the validation
//! rules. No I/O, no threads, no tokio: everything here is a function of its inputs.

pub mod address;
pub mod amount;
pub mod block;
pub mod encode;
pub mod estimate;
pub mod fee;
pub mod hash;
pub mod merkle;
pub mod params;
pub mod pow;
pub mod rules;
pub mod sig;
pub mod tx;

pub use address::Address;
pub use amount::{Amount, COIN};
pub use block::{Block, BlockHeader};
pub use fee::{FeeRate, FeeRateError};
pub use hash::{BlockHash, MerkleRoot, Txid};
pub use params::{Network, Params};
pub use pow::{CompactTarget, Target, Work};
pub use tx::{OutPoint, Transaction, TxIn, TxOut};
