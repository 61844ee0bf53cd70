//! The integration tests, one binary (so the crate is linked once, not once per file). Each
//! module is one subject; `common` holds the shared harness: chains built by hand, in-process
//! nodes on 127.0.0.1, and the runner for the real `chain-tui` binary.

mod common;
mod pty;

mod api;
mod api_limits;
mod cli;
mod crash;
mod demo;
mod hostile;
mod local_files;
mod node;
mod p2p;
mod reorg;
mod resources;
mod rules;
mod smoke;
mod store_damage;
mod transport;
mod tui;
mod verify;
mod wire;
