//! Peer-to-peer networking: node identity, the authenticated QUIC transport, the wire protocol
//! and compact blocks.
//! The peer manager that uses them lives in `node::p2p`.

pub mod close;
pub mod compact;
pub mod identity;
pub mod transport;
pub mod wire;

pub use close::DisconnectReason;
