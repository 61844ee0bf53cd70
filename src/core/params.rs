//! Network parameters (`regtest`, `devnet`) and each network's deterministic genesis block.

use super::address::Address;
use super::amount::{Amount, COIN};
use super::block::{Block, BlockHeader};
use super::hash::BlockHash;
use super::merkle::merkle_root;
use super::pow::{CompactTarget, DifficultyRule, Target};
use super::tx::{Transaction, TxOut};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// Which chain a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Minimum difficulty, short coinbase maturity: for tests and demos.
    Regtest,
    /// Real difficulty adjustment toward 10-second blocks. The default.
    #[default]
    Devnet,
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::Regtest => "regtest",
            Network::Devnet => "devnet",
        }
    }
    /// bech32 human-readable part of addresses.
    pub fn hrp(self) -> &'static str {
        match self {
            Network::Regtest => "ctrt",
            Network::Devnet => "ct",
        }
    }
    pub fn params(self) -> &'static Params {
        static REGTEST: OnceLock<Params> = OnceLock::new();
        static DEVNET: OnceLock<Params> = OnceLock::new();
        match self {
            Network::Regtest => REGTEST.get_or_init(|| Params::build(Network::Regtest)),
            Network::Devnet => DEVNET.get_or_init(|| Params::build(Network::Devnet)),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "regtest" => Ok(Network::Regtest),
            "devnet" => Ok(Network::Devnet),
            other => Err(format!(
                "unknown network {other:?} (expected regtest or devnet)"
            )),
        }
    }
}

/// Everything consensus needs to know about a network.
#[derive(Debug, Clone)]
pub struct Params {
    pub network: Network,
    /// Easiest allowed target.
    pub pow_limit: Target,
    /// Target of the first blocks, before the difficulty rule has history.
    pub initial_target: Target,
    pub difficulty: DifficultyRule,
    /// Target seconds between blocks.
    pub block_spacing: u64,
    /// Blocks a coinbase output must wait before it can be spent.
    pub coinbase_maturity: u64,
    /// Subsidy halves every this many blocks; after 64 halvings it is zero.
    pub halving_interval: u64,
    pub initial_subsidy: Amount,
    /// Largest encoded block, in bytes.
    pub max_block_size: usize,
    /// How far past the local clock a block's timestamp may be.
    pub max_future_secs: u64,
    /// Default QUIC port.
    pub default_port: u16,
    pub genesis: Block,
    pub genesis_hash: BlockHash,
}

/// 2026-01-01T00:00:00Z.
const GENESIS_TIME: u64 = 1_767_225_600;

impl Params {
    fn build(network: Network) -> Params {
        let (limit, initial, rule, spacing, maturity, halving, max_future, port) = match network {
            Network::Regtest => (
                CompactTarget(0x207f_ffff),
                CompactTarget(0x207f_ffff),
                DifficultyRule::Fixed,
                1,
                10,
                150,
                // Blocks must be above the median of the last 11, so mining many blocks a
                // second runs timestamps ahead of the clock (about 1 s per 6 blocks): regtest
                // allows a week, room for millions of fast blocks.
                7 * 24 * 60 * 60,
                18_444,
            ),
            Network::Devnet => (
                // ~65 k hashes a block at the easiest; ~16 M at the start.
                CompactTarget(0x1f00_ffff),
                CompactTarget(0x1e01_0000),
                DifficultyRule::Lwma { window: 30 },
                10,
                100,
                210_000,
                10 * 60,
                7_420,
            ),
        };
        let pow_limit = limit
            .to_target()
            .unwrap_or(Target(super::pow::U256::from(1u8)));
        let initial_target = initial.to_target().unwrap_or(pow_limit);
        let genesis = genesis_block(network, pow_limit);
        let genesis_hash = genesis.header.hash();
        Params {
            network,
            pow_limit,
            initial_target,
            difficulty: rule,
            block_spacing: spacing,
            coinbase_maturity: maturity,
            halving_interval: halving,
            initial_subsidy: Amount::from_units(50 * COIN),
            max_block_size: 1_000_000,
            max_future_secs: max_future,
            default_port: port,
            genesis,
            genesis_hash,
        }
    }

    /// Block subsidy at `height`.
    pub fn subsidy(&self, height: u64) -> Amount {
        let halvings = height / self.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.units() >> halvings)
    }

    /// Sum of all subsidies ever paid: the fixed maximum supply.
    pub fn max_supply(&self) -> Amount {
        let mut total = 0u64;
        for h in 0..64u32 {
            total = total.saturating_add(
                (self.initial_subsidy.units() >> h).saturating_mul(self.halving_interval),
            );
        }
        Amount::from_units(total)
    }
}

/// The genesis block: a coinbase paying the subsidy to an unspendable address, at the easiest
/// target, with the first nonce that meets it (found deterministically from zero).
fn genesis_block(network: Network, pow_limit: Target) -> Block {
    let coinbase = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: Amount::from_units(50 * COIN),
            address: Address::UNSPENDABLE,
        }],
        lock_height: 0,
        memo: format!("chain-tui {} genesis", network.name()).into_bytes(),
    };
    let merkle = merkle_root(&[coinbase.txid()]);
    let mut header = BlockHeader {
        version: 1,
        prev: BlockHash::ZERO,
        merkle_root: merkle,
        time: GENESIS_TIME,
        bits: pow_limit.to_compact(),
        nonce: 0,
    };
    while !pow_limit.is_met_by(&header.hash().0) {
        header.nonce += 1;
    }
    Block {
        header,
        txs: vec![coinbase],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic_and_valid_pow() {
        for net in [Network::Regtest, Network::Devnet] {
            let p = net.params();
            assert_eq!(
                p.genesis_hash,
                genesis_block(net, p.pow_limit).header.hash()
            );
            assert!(p.pow_limit.is_met_by(&p.genesis_hash.0));
        }
        assert_ne!(
            Network::Regtest.params().genesis_hash,
            Network::Devnet.params().genesis_hash
        );
    }

    #[test]
    fn subsidy_halves_and_supply_is_bounded() {
        let p = Network::Regtest.params();
        assert_eq!(p.subsidy(0), Amount::from_units(50 * COIN));
        assert_eq!(p.subsidy(149), Amount::from_units(50 * COIN));
        assert_eq!(p.subsidy(150), Amount::from_units(25 * COIN));
        assert_eq!(p.subsidy(150 * 64), Amount::ZERO);
        let d = Network::Devnet.params();
        // Like Bitcoin: just under 21 M coins.
        assert!(d.max_supply() < Amount::from_units(21_000_000 * COIN));
        assert!(d.max_supply() > Amount::from_units(20_999_999 * COIN));
    }
}
