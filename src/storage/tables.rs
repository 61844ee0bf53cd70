//! redb table definitions and metadata keys.

use redb::TableDefinition;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Block hash → postcard `BlockMeta`, every known block on every branch.
pub(super) const INDEX: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("block_index");
/// Block hash → canonical block bytes.
pub(super) const BLOCKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blocks");
/// Height → block hash, active chain only.
pub(super) const ACTIVE: TableDefinition<u64, [u8; 32]> = TableDefinition::new("active_chain");
/// Outpoint (txid ‖ vout BE) → coin (amount ‖ address ‖ height ‖ coinbase).
pub(super) const UTXO: TableDefinition<[u8; 36], [u8; 37]> = TableDefinition::new("utxo");
/// Block hash → postcard `BlockUndo` (coins the block spent).
pub(super) const UNDO: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("undo");
/// Txid → block hash ‖ position BE, active chain only.
pub(super) const TXINDEX: TableDefinition<[u8; 32], [u8; 36]> = TableDefinition::new("tx_index");
/// Address ‖ outpoint → coin: unspent coins by address.
pub(super) const ADDR_COINS: TableDefinition<[u8; 56], [u8; 37]> =
    TableDefinition::new("address_coins");
/// Address ‖ height BE ‖ txid → received LE ‖ sent LE.
pub(super) const ADDR_HIST: TableDefinition<[u8; 60], [u8; 16]> =
    TableDefinition::new("address_history");
/// Blocks that no stored block builds on.
pub(super) const LEAVES: TableDefinition<[u8; 32], ()> = TableDefinition::new("leaves");
/// Txid → transaction bytes: the mempool saved at shutdown, and wallet sends as they happen.
pub(super) const MEMPOOL: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("mempool");

/// Block hash → when this node first stored the block (milliseconds since the epoch). Added
/// after format 2 was fixed: a store from before has no such table, and its blocks no times.
pub(super) const SEEN: TableDefinition<[u8; 32], u64> = TableDefinition::new("block_seen");

/// Network records (peer address book, bans), keyed by the network layer's own keys.
pub(super) const NET: TableDefinition<&str, &[u8]> = TableDefinition::new("net_records");

pub(super) const K_FORMAT: &str = "format";
pub(super) const K_GENESIS: &str = "genesis";
pub(super) const K_TIP: &str = "tip";
/// Tip hash ‖ UTXO commitment ‖ coin count: the commitment of the UTXO set after the tip
/// (format 2 and later).
pub(super) const K_UTXO_STATE: &str = "utxo_state";
