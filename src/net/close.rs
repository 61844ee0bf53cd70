//! [`DisconnectReason`]: why a connection is closed, as the QUIC application close code the
//! other side receives (with a short text after it). One table for the transport (refusals
//! after the handshake) and the peer manager, so that no two reasons share a code and a closed
//! dial can be explained in words.

use std::fmt;

/// Why a connection was closed. The discriminant is the close code on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DisconnectReason {
    /// Ordinary goodbye: shutdown, a peer that left, a link cut, a stalled download.
    Normal = 0,
    /// No Hello (or no stream for it) in time.
    HandshakeTimeout = 1,
    /// Something other than Hello came first.
    ExpectedHello = 2,
    /// Another genesis: another network.
    OtherNetwork = 3,
    /// A protocol version we do not speak.
    Version = 4,
    /// A protocol violation (the text says which).
    Misbehaviour = 5,
    /// The peer is banned.
    Banned = 6,
    /// Both sides dialed: this one of the two connections goes.
    Duplicate = 7,
    /// Not an allowed peer while peers are restricted.
    NotAllowed = 8,
    /// Inbound slots are full and this peer was the least useful.
    Evicted = 9,
    /// The peer does not read what we send.
    NotReading = 10,
    /// Refused by the transport after the TLS handshake (wrong protocol, no identity, too
    /// many connections from one address).
    Refused = 11,
}

impl DisconnectReason {
    const ALL: [DisconnectReason; 12] = [
        DisconnectReason::Normal,
        DisconnectReason::HandshakeTimeout,
        DisconnectReason::ExpectedHello,
        DisconnectReason::OtherNetwork,
        DisconnectReason::Version,
        DisconnectReason::Misbehaviour,
        DisconnectReason::Banned,
        DisconnectReason::Duplicate,
        DisconnectReason::NotAllowed,
        DisconnectReason::Evicted,
        DisconnectReason::NotReading,
        DisconnectReason::Refused,
    ];

    /// The close code on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }
    /// The reason a close code stands for, if it is one of ours.
    pub fn from_code(code: u64) -> Option<DisconnectReason> {
        DisconnectReason::ALL
            .into_iter()
            .find(|r| u64::from(r.code()) == code)
    }
    /// Close `conn` for this reason, with `detail` as the text the other side sees.
    pub fn close(self, conn: &quinn::Connection, detail: &[u8]) {
        conn.close(self.code().into(), detail);
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisconnectReason::Normal => "goodbye",
            DisconnectReason::HandshakeTimeout => "no hello in time",
            DisconnectReason::ExpectedHello => "hello expected first",
            DisconnectReason::OtherNetwork => "another network",
            DisconnectReason::Version => "unsupported protocol version",
            DisconnectReason::Misbehaviour => "protocol violation",
            DisconnectReason::Banned => "banned",
            DisconnectReason::Duplicate => "duplicate connection",
            DisconnectReason::NotAllowed => "not an allowed peer",
            DisconnectReason::Evicted => "evicted: inbound slots full",
            DisconnectReason::NotReading => "does not read",
            DisconnectReason::Refused => "refused",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_code_and_comes_back_from_it() {
        let mut codes = std::collections::HashSet::new();
        for r in DisconnectReason::ALL {
            assert!(codes.insert(r.code()), "{r:?} shares its code");
            assert_eq!(DisconnectReason::from_code(u64::from(r.code())), Some(r));
        }
        assert_eq!(DisconnectReason::from_code(12), None);
        assert_eq!(DisconnectReason::from_code(u64::MAX), None);
    }
}
