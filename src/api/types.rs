//! The API's contract: every request body, query and answer as a Rust type, shared by the server
//! (which builds them in [`views`](super::views) and [`routes`](super::routes)), the client
//! (which decodes them) and the CLI (which prints them through their `Display`). The OpenAPI
//! document (`GET /openapi.json`) is generated from these types and the routes, so what it
//! describes is what the server sends.
//!
//! Amounts are integers in base units (100,000,000 to the coin); hashes, txids, keys and
//! signatures are lowercase hex; addresses are text (`rt1…` on regtest, `dv1…` on devnet).

use crate::core::amount::Amount;
use crate::core::pow::{U256, si_text};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::{IntoParams, ToSchema};

/// Whole numbers in request bodies. JSON has one kind of number, so `4.0` is the whole number
/// 4 (JSON Schema says so too); a fraction, a negative number or one out of the field's range
/// is refused. A number with a fraction part is taken only up to 2^53, where every whole
/// number is exact: larger ones must be written without `.0` or an exponent.
mod whole {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};
    use serde_json::Number;

    fn value<T: TryFrom<u64>, E: Error>(n: &Number) -> Result<T, E> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        let u = match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u,
            (None, Some(f)) if f.fract() == 0.0 && (0.0..=EXACT).contains(&f) => f as u64,
            _ => {
                return Err(E::custom(format!(
                    "expected a whole number of 0 or more, not {n}"
                )));
            }
        };
        T::try_from(u).map_err(|_| E::custom(format!("{n} is out of range")))
    }

    pub fn one<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
        value(&Number::deserialize(d)?)
    }

    pub fn opt<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<Number>::deserialize(d)?
            .map(|n| value(&n))
            .transpose()
    }
}

// ---- errors ----

/// Every error: a sentence for people and a stable code for programs. A 4xx answer means the
/// request was refused and nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do about it.
    pub error: String,
    /// Machine-readable: `bad_json`, `bad_query`, `bad_address`, `not_found`, `unauthorized`,
    /// `double_spend`, `fee_too_low`, `busy`, …
    pub code: String,
}

// ---- node and chain ----

/// `GET /info`: the node at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Info {
    /// `regtest` or `devnet`.
    pub network: String,
    pub height: u64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub tip: String,
    /// Total work of the active chain (expected hashes), as a decimal string.
    pub work: String,
    /// The tip's difficulty (expected hashes per block).
    pub difficulty: u64,
    /// The tip's compact target.
    pub bits: u32,
    /// Transactions in the mempool.
    pub mempool: usize,
    pub mempool_bytes: usize,
    /// Connected peers (`null`: the node runs without its network part).
    pub peers: Option<usize>,
    /// The node's identity (the public key of its node key).
    pub node_id: Option<String>,
    /// Where peers connect to it.
    pub listen: Option<String>,
    pub mining: bool,
    /// This node's hash rate (hashes per second).
    pub hashrate: u64,
    /// Blocks held while their parents are fetched.
    pub orphans: usize,
    /// The compact target the next block must meet.
    pub next_bits: Option<u32>,
    /// Figures estimated from recent blocks (`null` with too little history).
    pub estimates: Option<Estimates>,
    /// The node's version.
    pub version: String,
    pub sync: SyncState,
    /// With `?challenge=HEX`: the node key's signature over the API address and the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_proof: Option<String>,
}

/// Chain figures from a window of recent blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Estimates {
    /// Mean time between blocks, in milliseconds.
    pub avg_block_ms: u64,
    /// Hashes per second the whole network spends, as a decimal string.
    pub network_hashrate: String,
    /// Expected seconds to the next block at that rate.
    pub next_block_secs: Option<u64>,
    /// Block intervals the window spans.
    pub intervals: u64,
    pub span_ms: u64,
    /// `timestamps` (the blocks' own) or `seen_times` (when this node first saw them).
    pub measured_by: String,
}

/// Where the node stands against its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// The node runs without its network part.
    Offline,
    NoPeers,
    /// A peer has more blocks, or blocks are being downloaded.
    Syncing,
    Synced,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncState {
    pub state: SyncStatus,
    pub best_peer_height: Option<u64>,
    pub blocks_behind: u64,
    pub downloading: usize,
}

/// One block: its header, place in the chain and txids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    pub height: u64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub prev: String,
    pub merkle_root: String,
    /// Seconds since 1970.
    pub time: u64,
    pub bits: u32,
    pub nonce: u64,
    /// Encoded size in bytes.
    pub size: u64,
    /// On the active chain (false: a side branch).
    pub active: bool,
    /// 0 off the active chain.
    pub confirmations: u64,
    /// Total work of the chain up to and including this block (expected hashes), as a decimal
    /// string.
    pub chainwork: String,
    /// The next block on the active chain (`null` at the tip and off the active chain).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub next: Option<String>,
    /// When this node first stored the block (milliseconds since 1970; `null`: not recorded).
    pub seen_ms: Option<u64>,
    /// Its transactions' ids, coinbase first.
    pub txs: Vec<String>,
    /// The block's encoding (with `hex=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// `GET /chain`: a page of the active chain, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainPage {
    pub from: u64,
    /// Blocks in the active chain (genesis included).
    pub length: u64,
    pub height: u64,
    /// `from` of the next page (`null` on the last).
    pub next: Option<u64>,
    pub chain: Vec<BlockView>,
}

/// `GET /difficulty`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Difficulty {
    pub difficulty: u64,
    pub bits: u32,
    /// The full target, 64 hex digits.
    pub target: Option<String>,
    pub height: u64,
    /// Target seconds between blocks.
    pub block_spacing: u64,
    /// How the target is retargeted.
    pub rule: String,
}

/// Where a tip of the block tree stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TipState {
    /// The tip of the active chain.
    Active,
    /// A fully validated branch with less work.
    ValidFork,
    /// Blocks stored but not validated (they never had the most work).
    Stored,
    /// A branch with an invalid block.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainTip {
    pub hash: String,
    pub height: u64,
    /// Blocks from where the branch leaves the active chain (0 for the active tip).
    pub branch_len: u64,
    pub status: TipState,
}

/// `GET /chain/tips`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainTips {
    pub tips: Vec<ChainTip>,
}

/// `GET /blocks/wait`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockWait {
    /// Whether the tip moved (false: the wait timed out).
    pub changed: bool,
    pub tip: String,
    pub height: u64,
}

/// `POST /blocks`: what became of a submitted block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockResult {
    /// It extended (or switched) the active chain.
    Connected,
    /// Stored on a side branch with less work.
    SideBranch,
    Duplicate,
    Orphan,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockSubmitted {
    pub hash: String,
    pub result: BlockResult,
    pub height: Option<u64>,
}

/// One `{"hex": "..."}` body: a block's (or a transaction's) canonical encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HexBody {
    #[schema(pattern = "^([0-9a-fA-F]{2})*$")]
    pub hex: String,
}

/// `GET /validate`: the whole chain re-verified from genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub height: u64,
    /// Unspent outputs counted (when valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utxos: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_block: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Damaged index entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damage: Vec<Damage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Damage {
    pub index: String,
    pub entry: String,
    pub problem: String,
}

/// `POST /chain/import`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    pub blocks: u64,
    pub height: u64,
}

// ---- transactions ----

/// A signed transaction as JSON: hex for keys, signatures and memo; amounts in base units;
/// addresses as text. Its signing bytes and encoding are in the README's signing recipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    #[serde(default = "one", deserialize_with = "whole::one")]
    #[schema(default = 1)]
    pub version: u32,
    pub inputs: Vec<InputJson>,
    pub outputs: Vec<OutputJson>,
    /// The first height at which it may be mined (0: any).
    #[serde(default, deserialize_with = "whole::one")]
    pub lock_height: u64,
    /// Hex, at most 80 bytes.
    #[serde(default)]
    #[schema(pattern = "^([0-9a-fA-F]{2})*$")]
    pub memo: String,
}

fn one() -> u32 {
    1
}

/// A coin being spent, with its owner's key and signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputJson {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub txid: String,
    #[serde(deserialize_with = "whole::one")]
    pub vout: u32,
    /// 32 bytes, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub pubkey: String,
    /// 64 bytes, hex.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputJson {
    pub address: String,
    /// Base units.
    #[serde(deserialize_with = "whole::one")]
    pub amount: u64,
}

/// What `POST /transactions/new` and `/transactions/check` take: the transaction's fields, or
/// `{"hex": "..."}` with its canonical encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TxRequest {
    Hex(HexBody),
    Fields(TxJson),
}

/// `POST /transactions/build`: pay `outputs` from the coins of the key `pubkey`, for signing
/// elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// The ed25519 public key whose address's coins pay (32 bytes, hex).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub pubkey: String,
    /// 1 to 100 payments.
    #[schema(min_items = 1, max_items = 100)]
    pub outputs: Vec<Payment>,
    /// Base units per byte, at least 1 (the default rate when left out).
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1)]
    pub fee_rate: Option<u64>,
    /// Where the change goes (the key's own address when left out).
    pub change: Option<String>,
}

/// A coin an unsigned transaction spends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuiltInput {
    pub txid: String,
    pub vout: u32,
    pub amount: u64,
}

/// An unsigned transaction: sign `sighash` with the key and put the 64-byte signature in every
/// input, then `POST /transactions/new`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Built {
    /// Its JSON fields, every signature 64 zero bytes.
    pub tx: TxJson,
    /// Its canonical encoding, signatures zero (the README's signing recipe has the layout).
    pub hex: String,
    /// What every input signs: SHA-256d of the tag, the genesis hash and the transaction
    /// without signatures.
    pub sighash: String,
    /// The network's genesis block hash (part of what is signed).
    pub genesis: String,
    /// Inputs minus outputs.
    pub fee: u64,
    /// Encoded size once signed (a signature takes the place of its zeros).
    pub size: usize,
    /// The fee rate it pays, base units per byte, rounded down.
    pub fee_rate: u64,
    /// The coins spent, in input order.
    pub inputs: Vec<BuiltInput>,
}

/// `GET /tx/{txid}`: a transaction, confirmed or in the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxView {
    pub txid: String,
    pub version: u32,
    pub inputs: Vec<InputJson>,
    pub outputs: Vec<OutputJson>,
    pub lock_height: u64,
    pub memo: String,
    /// 0 in the mempool.
    pub confirmations: u64,
    /// The confirming block (`null` in the mempool).
    pub block: Option<String>,
    pub height: Option<u64>,
    pub coinbase: bool,
    /// Inputs minus outputs (`null` for a coinbase).
    pub fee: Option<u64>,
    /// Encoded size in bytes.
    pub size: usize,
    /// With `spends=true`: what became of each output, in output order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spends: Option<Vec<OutputSpend>>,
}

/// Whether an output is spent, and by what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpendState {
    Unspent,
    /// Spent by a mempool transaction.
    Mempool,
    /// Spent by a confirmed transaction.
    Confirmed,
    /// Spent on the active chain, but the spender was not found within the node's search
    /// budget (or the output is not known).
    Unknown,
}

/// What became of one output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutputSpend {
    pub state: SpendState,
    /// The spending transaction (`mempool` and `confirmed`).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub txid: Option<String>,
    /// Height of the spending transaction's block (`confirmed`).
    pub height: Option<u64>,
}

/// `GET /blocks/{id}`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlockQuery {
    /// Add the block's encoding (`hex`).
    pub hex: Option<bool>,
}

/// `GET /tx/{txid}`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TxQuery {
    /// Add what became of each output (`spends`): a search of the blocks after the
    /// transaction's, bounded by the node.
    pub spends: Option<bool>,
}

/// `GET /search`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A height of the active chain, a block hash or txid (a unique hex prefix is enough; `0x`
    /// first when it is all digits) or an address. Left out, nothing is found.
    #[serde(default)]
    pub q: String,
}

/// What a search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    Block,
    Transaction,
    Address,
    /// Nothing, or more than one hash: `reason` says which.
    Nothing,
}

/// `GET /search`: what the text names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub kind: SearchKind,
    /// The block hash, txid or address found (`null` for `nothing`).
    pub id: Option<String>,
    /// Why nothing was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /transaction/confirmations/{txid}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Confirmations {
    pub txid: String,
    pub confirmations: u64,
    pub block: Option<String>,
    pub height: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

/// One step of a merkle branch: the sibling hash and which side it goes on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProofStep {
    pub hash: String,
    pub side: Side,
}

/// `GET /tx/{txid}/proof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Proof {
    pub txid: String,
    pub block: String,
    pub height: u64,
    pub merkle_root: String,
    /// The transaction's place in its block.
    pub index: usize,
    /// Transactions in the block.
    pub count: usize,
    /// From the txid up to the merkle root.
    pub branch: Vec<ProofStep>,
    pub confirmations: u64,
}

/// `POST /transactions/new` (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    pub txid: String,
}

/// `POST /transactions/check`: whether the mempool would take it. When it would, what it
/// pays; when not, the code and reason `/transactions/new` would refuse it with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckVerdict {
    pub accepted: bool,
    pub txid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Base units per byte, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate_per_kb: Option<u64>,
    /// Mempool transactions it would displace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_evict: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One mempool entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MempoolTx {
    pub txid: String,
    pub fee: u64,
    pub size: usize,
    /// Base units per byte.
    pub fee_rate: u64,
}

/// `GET /mempool`: a page of the mempool, highest fee rate first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mempool {
    /// Transactions in the whole mempool.
    pub count: usize,
    pub bytes: usize,
    pub txs: Vec<MempoolTx>,
    /// `offset` of the next page (`null` on the last).
    pub next: Option<usize>,
}

/// `GET /fees/estimate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeEstimate {
    pub blocks: u64,
    /// Base units per byte, rounded up.
    pub fee_rate: u64,
    pub fee_rate_per_kb: u64,
    /// What the mempool's queue asks (base units per kB).
    pub from_mempool_per_kb: u64,
    /// What the last blocks took (base units per kB; `null` before the first block).
    pub from_blocks_per_kb: Option<u64>,
    /// Blocks read (the last 24 of the active chain, fewer on a short chain), and how many
    /// of them were full.
    pub blocks_read: usize,
    pub full_blocks: usize,
    pub mempool_bytes: usize,
    /// How the rate was found.
    pub method: String,
}

// ---- addresses and the wallet ----

/// `GET /balance/{address}`, and each row of `GET /wallets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressBalance {
    pub address: String,
    /// Spendable plus immature.
    pub balance: u64,
    pub spendable: u64,
    /// Coinbase rewards not yet mature.
    pub immature: u64,
    /// Unspent coins.
    pub coins: usize,
    pub height: u64,
    /// Mempool outputs paying the address (`GET /balance` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<u64>,
    /// Its confirmed coins that mempool transactions spend (`GET /balance` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<u64>,
    /// Blocks until its next immature coin can be spent (`GET /balance` only; absent when
    /// none is immature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_maturity: Option<u64>,
}

/// One unspent coin of an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Coin {
    pub txid: String,
    pub vout: u32,
    pub amount: u64,
    pub height: u64,
    pub coinbase: bool,
    /// A coinbase that cannot be spent yet: blocks still to be mined before it can.
    pub matures_in: Option<u64>,
    /// A mempool transaction that spends it.
    pub spent_in_mempool: Option<String>,
}

/// `GET /address/{address}/utxos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressCoins {
    pub address: String,
    pub height: u64,
    pub count: usize,
    pub coins: Vec<Coin>,
    pub next: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryRow {
    pub txid: String,
    pub height: u64,
    pub received: u64,
    pub sent: u64,
}

/// `GET /address/{address}/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressHistory {
    pub address: String,
    pub height: u64,
    pub count: usize,
    pub history: Vec<HistoryRow>,
    pub next: Option<usize>,
    /// Mempool transactions that pay or spend the address.
    pub mempool: Vec<String>,
}

/// An address (`GET`/`POST /wallet/address`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    pub address: String,
}

/// `GET /wallets`: the node wallet's addresses, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Wallets {
    pub wallets: Vec<AddressBalance>,
    pub height: u64,
}

/// `GET /wallet/balance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletBalance {
    /// Mature confirmed coins not spent by a mempool transaction.
    pub confirmed: u64,
    /// Mempool outputs paying the wallet.
    pub unconfirmed: u64,
    /// Coinbase rewards waiting for maturity.
    pub immature: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletTx {
    pub txid: String,
    /// `null` in the mempool.
    pub height: Option<u64>,
    pub confirmations: u64,
    pub received: u64,
    pub sent: u64,
    /// Received minus sent.
    pub net: i64,
}

/// `GET /wallet/history`: newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletHistory {
    pub transactions: Vec<WalletTx>,
    pub count: usize,
    pub next: Option<usize>,
}

/// Most outputs one `POST /wallet/send` pays.
pub const MAX_SEND_OUTPUTS: usize = 100;

/// `POST /wallet/send`: one recipient (`address` and `amount`) or several (`outputs`), paid in
/// one transaction from the node's wallet, change back to the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, try_from = "SendFields")]
pub enum SendRequest {
    One(SendOne),
    Many(SendMany),
}

/// One recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendOne {
    pub address: String,
    /// Base units, above zero.
    #[serde(deserialize_with = "whole::one")]
    #[schema(minimum = 1)]
    pub amount: u64,
    /// Base units per byte, at least 1 (the default rate when left out).
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1)]
    pub fee_rate: Option<u64>,
}

/// Several recipients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMany {
    /// 1 to 100 payments; an address may appear more than once.
    #[schema(min_items = 1, max_items = 100)]
    pub outputs: Vec<Payment>,
    /// Base units per byte, at least 1 (the default rate when left out).
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1)]
    pub fee_rate: Option<u64>,
}

/// One payment of a send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub address: String,
    /// Base units, above zero.
    #[serde(deserialize_with = "whole::one")]
    #[schema(minimum = 1)]
    pub amount: u64,
}

/// The fields either form of [`SendRequest`] may have, read first so that a mistake gets a
/// plain answer (an untagged enum would only say that nothing matched).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFields {
    address: Option<String>,
    #[serde(default, deserialize_with = "whole::opt")]
    amount: Option<u64>,
    outputs: Option<Vec<Payment>>,
    #[serde(default, deserialize_with = "whole::opt")]
    fee_rate: Option<u64>,
}

impl TryFrom<SendFields> for SendRequest {
    type Error = String;
    fn try_from(f: SendFields) -> Result<SendRequest, String> {
        match (f.address, f.amount, f.outputs) {
            (None, None, Some(outputs)) => Ok(SendRequest::Many(SendMany {
                outputs,
                fee_rate: f.fee_rate,
            })),
            (Some(address), Some(amount), None) => Ok(SendRequest::One(SendOne {
                address,
                amount,
                fee_rate: f.fee_rate,
            })),
            (_, _, Some(_)) => Err("give `outputs`, or `address` and `amount`, not both".into()),
            (None, _, None) => Err("missing field `address` (or `outputs`)".into()),
            (Some(_), None, None) => Err("missing field `amount`".into()),
        }
    }
}

impl SendRequest {
    /// The payments, in order.
    pub fn payments(&self) -> Vec<Payment> {
        match self {
            SendRequest::One(o) => vec![Payment {
                address: o.address.clone(),
                amount: o.amount,
            }],
            SendRequest::Many(m) => m.outputs.clone(),
        }
    }
    pub fn fee_rate(&self) -> Option<u64> {
        match self {
            SendRequest::One(o) => o.fee_rate,
            SendRequest::Many(m) => m.fee_rate,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    pub txid: String,
    pub fee: u64,
    /// All the payments together (change not counted).
    pub amount: u64,
    /// Payments made (1 for `address` and `amount`).
    #[serde(default)]
    pub outputs: usize,
}

// ---- mining ----

/// `GET /mining`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mining {
    pub mining: bool,
    pub threads: usize,
    /// The most threads it takes (four per core).
    pub max_threads: usize,
    /// The hashing kernel (`sha-ni`, `avx2`, `scalar` …).
    pub kernel: String,
    pub hashrate: u64,
    /// Who the mined coinbases pay.
    pub address: Option<String>,
}

/// `POST /mining`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MiningRequest {
    pub mining: bool,
    /// At least 1, at most four per core (the node's default when left out).
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1)]
    pub threads: Option<usize>,
}

/// `POST /mine`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MineRequest {
    /// 1 by default, at most 100,000.
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1, maximum = 100_000)]
    pub blocks: Option<u64>,
    /// At least 1, at most four per core (the node's default when left out).
    #[serde(default, deserialize_with = "whole::opt")]
    #[schema(minimum = 1)]
    pub threads: Option<usize>,
    /// Who the coinbases pay (the wallet's receive address if left out).
    pub address: Option<String>,
}

/// Blocks mined: `POST /mine` (200), `chain-tui mine`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mined {
    pub blocks: Vec<String>,
    pub height: u64,
    pub tip: String,
    /// The job that mined them (through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Cancelling,
    Done,
    Cancelled,
    Failed,
}

/// `GET /jobs/{id}`, and `POST /mine` answered with 202.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: u64,
    /// `mine`.
    pub kind: String,
    pub requested: u64,
    pub threads: usize,
    pub mined: u64,
    pub state: JobState,
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `GET /mining/template`: the block to solve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub height: u64,
    pub prev: String,
    pub merkle_root: String,
    pub time: u64,
    pub bits: u32,
    pub version: u32,
    /// 64 hex digits; a header hash at or below it solves the block.
    pub target: String,
    pub fees: u64,
    pub coinbase_value: Option<u64>,
    pub coinbase_address: Option<String>,
    pub txs: Vec<String>,
    /// The header's bytes: the nonce is the last 8 (little-endian).
    pub header_hex: String,
    /// The whole block, to send to `POST /blocks` with the solved header.
    pub block_hex: String,
}

// ---- peers ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    pub id: String,
    pub addr: String,
    pub inbound: bool,
    pub height: u64,
    pub tip: String,
    pub work: String,
    pub rtt_ms: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub user_agent: String,
    /// Seconds since 1970.
    pub connected_since: u64,
    pub last_message: u64,
    /// The protocol version settled on with it (2 and up: compact blocks; 0: not reported,
    /// a node from before this field).
    #[serde(default)]
    pub protocol: u32,
}

/// Compact block relay since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompactRelay {
    /// Compact blocks sent to peers.
    pub sent: u64,
    /// Compact blocks received of blocks we did not have.
    pub received: u64,
    /// Of those, rebuilt from the mempool alone, with no round trip.
    pub rebuilt_at_once: u64,
    /// Transactions asked of senders because the mempool lacked them.
    pub txs_asked: u64,
    /// Blocks asked for whole after all (a short id collision, or a rebuilt block that did
    /// not match its header).
    pub fetched_whole: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BanView {
    pub id: Option<String>,
    pub addr: Option<String>,
    pub reason: String,
    /// Seconds since 1970.
    pub until: u64,
}

/// `GET /peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Peers {
    pub id: Option<String>,
    pub listen: Option<String>,
    pub peers: Vec<PeerView>,
    pub bans: Vec<BanView>,
    pub known_addrs: usize,
    /// Compact block relay so far (zeros from a node from before this field).
    #[serde(default)]
    pub compact: CompactRelay,
}

/// `POST /peers/unban`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnbanRequest {
    /// A node id or an address.
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unbanned {
    pub unbanned: String,
}

/// `POST /nodes/register`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// `HOST:PORT`, `NODEID@HOST:PORT`, or another node's API as `http://HOST:PORT`.
    #[schema(min_items = 1, max_items = 16)]
    pub nodes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Connected {
    pub addr: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DialFailed {
    pub addr: String,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub connected: Vec<Connected>,
    pub failed: Vec<DialFailed>,
    /// Peers connected now.
    pub peers: usize,
}

/// `POST /nodes/resolve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resolved {
    /// Whether the tip changed.
    pub replaced: bool,
    pub previous_tip: String,
    pub previous_height: u64,
    pub tip: String,
    pub height: u64,
    pub peers: usize,
}

// ---- queries ----

/// `?offset=N&limit=M` on a list.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows to skip (0 by default).
    #[param(minimum = 0)]
    pub offset: Option<usize>,
    /// Rows in the page: 1 to 1000 (1000 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// `GET /chain`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChainQuery {
    /// First height (0 by default).
    #[param(minimum = 0)]
    pub from: Option<u64>,
    /// Blocks in the page: 1 to 500 (100 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Add each block's encoding.
    pub hex: Option<bool>,
}

/// `GET /info`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InfoQuery {
    /// 16 to 64 random bytes, hex: the answer then carries `identity_proof`.
    #[param(pattern = "^([0-9a-fA-F]{2}){16,64}$")]
    pub challenge: Option<String>,
}

/// `GET /fees/estimate`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeeQuery {
    /// Blocks to be mined within: 1 to 100 (1 by default).
    #[param(minimum = 1, maximum = 100)]
    pub blocks: Option<u64>,
}

/// `GET /mining/template`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// Who the coinbase pays (the wallet's receive address by default).
    pub address: Option<String>,
}

/// `GET /events`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event number (as the `Last-Event-ID` header does).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// `false`: only what happens from now on, not the kept events (ignored when resuming).
    pub backlog: Option<bool>,
}

/// `GET /blocks/wait`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Answer when the tip is not this block (the current tip by default).
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub after: Option<String>,
    /// Seconds to wait at most: 0 to 60 (60 by default).
    #[param(minimum = 0, maximum = 60)]
    pub timeout: Option<u64>,
}

// ---- what the CLI prints ----

fn amount(units: u64) -> Amount {
    Amount::from_units(units)
}

impl fmt::Display for AddressView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Display for WalletBalance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "confirmed   {}\nunconfirmed {}\nimmature    {}",
            amount(self.confirmed),
            amount(self.unconfirmed),
            amount(self.immature)
        )
    }
}

impl fmt::Display for WalletHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.transactions {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            let sign = if t.net < 0 { "-" } else { "+" };
            write!(
                f,
                "{}  {sign}{}  {} conf",
                t.txid,
                amount(t.net.unsigned_abs()),
                t.confirmations
            )?;
            if let Some(h) = t.height {
                write!(f, "  height {h}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Mined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mined {} blocks; height {} tip {}",
            self.blocks.len(),
            self.height,
            self.tip
        )
    }
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.txid)
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let work: U256 = self.work.parse().unwrap_or_default();
        writeln!(f, "network    {}", self.network)?;
        writeln!(f, "height     {}", self.height)?;
        writeln!(f, "tip        {}", self.tip)?;
        writeln!(f, "work       {work} ({})", si_text(work))?;
        writeln!(f, "difficulty {} (the tip's)", self.difficulty)?;
        match &self.estimates {
            None => writeln!(f, "avg block  — (too few blocks yet)")?,
            Some(e) => {
                let rate: U256 = e.network_hashrate.parse().unwrap_or_default();
                let next = e
                    .next_block_secs
                    .map_or("—".to_string(), |s| format!("≈ {s} s"));
                writeln!(
                    f,
                    "avg block  {}.{} s over the last {} blocks (by {})",
                    e.avg_block_ms / 1000,
                    e.avg_block_ms % 1000 / 100,
                    e.intervals,
                    e.measured_by.replace('_', " ")
                )?;
                writeln!(f, "network    ≈ {} H/s", si_text(rate))?;
                writeln!(f, "next block {next}")?;
            }
        }
        write!(f, "mempool    {} tx", self.mempool)
    }
}

impl fmt::Display for BlockView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "block {}", self.hash)?;
        writeln!(
            f,
            "height {}  {}",
            self.height,
            if self.active { "active" } else { "side branch" }
        )?;
        writeln!(f, "prev {}", self.prev)?;
        writeln!(
            f,
            "time {}  bits {:#010x}  nonce {}",
            self.time, self.bits, self.nonce
        )?;
        writeln!(
            f,
            "size {} bytes, {} transactions, {} confirmations",
            self.size,
            self.txs.len(),
            self.confirmations
        )?;
        f.write_str(&self.txs.join("\n"))
    }
}

impl fmt::Display for TxView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let where_ = match (&self.block, self.height) {
            (Some(b), Some(h)) => format!("in block {b} at height {h}"),
            _ => "in the mempool".into(),
        };
        write!(
            f,
            "tx {}\n{where_}, {} confirmations",
            self.txid, self.confirmations
        )?;
        for i in &self.inputs {
            write!(f, "\n  in  {}:{}", i.txid, i.vout)?;
        }
        for o in &self.outputs {
            write!(f, "\n  out {} {}", o.address, amount(o.amount))?;
        }
        Ok(())
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.valid {
            return f.write_str("VALID");
        }
        match &self.bad_block {
            Some(b) => write!(
                f,
                "INVALID: block {} ({b}): {}",
                self.bad_height.unwrap_or_default(),
                self.error.as_deref().unwrap_or_default()
            )?,
            None => f.write_str("INVALID: damaged index entries")?,
        }
        for d in &self.damage {
            write!(f, "\n  {}: {}: {}", d.index, d.entry, d.problem)?;
        }
        Ok(())
    }
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "imported {} blocks; height {}", self.blocks, self.height)
    }
}

impl fmt::Display for Peers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        if self.peers.is_empty() {
            lines.push("no peers connected".to_string());
        }
        for p in &self.peers {
            lines.push(format!(
                "{}  {}  {}  height {}  rtt {}",
                p.id,
                p.addr,
                if p.inbound { "in " } else { "out" },
                p.height,
                p.rtt_ms.map_or_else(|| "-".into(), |ms| format!("{ms} ms"))
            ));
        }
        for b in &self.bans {
            let who = b.id.as_deref().or(b.addr.as_deref()).unwrap_or("?");
            lines.push(format!("banned {who} until {}: {}", b.until, b.reason));
        }
        let c = &self.compact;
        if c.sent + c.received > 0 {
            lines.push(format!(
                "compact blocks: {} sent, {} received ({} rebuilt from the mempool alone, {} \
                 transactions asked for, {} fetched whole)",
                c.sent, c.received, c.rebuilt_at_once, c.txs_asked, c.fetched_whole
            ));
        }
        f.write_str(&lines.join("\n"))
    }
}

impl fmt::Display for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = self
            .connected
            .iter()
            .map(|c| format!("connected to {} at {}", c.id, c.addr))
            .collect();
        lines.extend(
            self.failed
                .iter()
                .map(|d| format!("cannot connect to {}: {}", d.addr, d.error)),
        );
        f.write_str(&lines.join("\n"))
    }
}

impl fmt::Display for Unbanned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unbanned {}", self.unbanned)
    }
}

/// What `POST /mine` answers: the blocks (200), or the job mining them (202).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MineAnswer {
    Job(JobView),
    Mined(Mined),
}
