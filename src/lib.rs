//! chain-tui: a real proof-of-work UTXO blockchain node you drive from the terminal.
//!
//! Dependencies point one way: [`core`] (pure consensus, no I/O) ← [`storage`] (redb) ← [`node`]
//! (chain state, mempool, miner, the [`node::NodeHandle`]) ← [`wallet`], [`api`], [`tui`],
//! [`cli`].

pub mod api;
pub mod bench;
pub mod cli;
pub mod core;
pub mod demo;
pub mod fsutil;
pub mod net;
pub mod node;
pub mod runtime;
pub mod storage;
pub mod tui;
pub mod wallet;
