//! chain-tui: a real proof-of-work UTXO blockchain node you drive from the terminal.
//!
//! Dependencies point one way: [`core`] (pure consensus, no I/O) ← [`storage`] (redb) ← [`net`]
//! (QUIC transport, wire) ← [`node`] (chain state, mempool, miner, peer-to-peer; the
//! [`node::NodeHandle`]) ← [`wallet`], [`api`] ← [`runtime`] (the one place that starts and
//! stops a node's services) ← `term`, `tui`, `demo`, `bench` (cargo features) and [`cli`].
//! [`sim`] runs many nodes' protocol state machines on a virtual network.
//! Front ends reach the node through its handle.

pub mod api;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod core;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fsutil;
pub mod net;
pub mod node;
pub mod runtime;
pub mod sim;
pub mod storage;
#[cfg(feature = "tui")]
pub mod term;
#[cfg(feature = "tui")]
pub mod tui;
pub mod wallet;
