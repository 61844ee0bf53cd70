//! [`DisconnectReason`]: why a connection is closed, as the QUIC application close code the
//! other side receives (with a short text after it). One table for the transport (refusals
//! after the handshake) and the peer manager, so that no two reasons share a code and a closed
//! dial can be explained in words.

/// Why a connection was closed. The discriminant is the close code on the wire.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter, strum::FromRepr, strum::Display,
)]
#[repr(u32)]
pub enum DisconnectReason {
    /// Ordinary goodbye: shutdown, a peer that left, a link cut, a stalled download.
    #[strum(to_string = "goodbye")]
    Normal = 0,
    /// No Hello (or no stream for it) in time.
    #[strum(to_string = "no hello in time")]
    HandshakeTimeout = 1,
    /// Something other than Hello came first.
    #[strum(to_string = "hello expected first")]
    ExpectedHello = 2,
    /// Another genesis: another network.
    #[strum(to_string = "another network")]
    OtherNetwork = 3,
    /// A protocol version we do not speak.
    #[strum(to_string = "unsupported protocol version")]
    Version = 4,
    /// A protocol violation (the text says which).
    #[strum(to_string = "protocol violation")]
    Misbehaviour = 5,
    /// The peer is banned.
    #[strum(to_string = "banned")]
    Banned = 6,
    /// Both sides dialed: this one of the two connections goes.
    #[strum(to_string = "duplicate connection")]
    Duplicate = 7,
    /// Not an allowed peer while peers are restricted.
    #[strum(to_string = "not an allowed peer")]
    NotAllowed = 8,
    /// Inbound slots are full and this peer was the least useful.
    #[strum(to_string = "evicted: inbound slots full")]
    Evicted = 9,
    /// The peer does not read what we send.
    #[strum(to_string = "does not read")]
    NotReading = 10,
    /// Refused by the transport after the TLS handshake (wrong protocol, no identity, too
    /// many connections from one address).
    #[strum(to_string = "refused")]
    Refused = 11,
}

impl DisconnectReason {
    /// The close code on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }
    /// The reason a close code stands for, if it is one of ours.
    pub fn from_code(code: u64) -> Option<DisconnectReason> {
        u32::try_from(code)
            .ok()
            .and_then(DisconnectReason::from_repr)
    }
    /// Close `conn` for this reason, with `detail` as the text the other side sees.
    pub fn close(self, conn: &quinn::Connection, detail: &[u8]) {
        conn.close(self.code().into(), detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_reason_has_its_own_code_and_comes_back_from_it() {
        let mut codes = std::collections::HashSet::new();
        for r in DisconnectReason::iter() {
            assert!(codes.insert(r.code()), "{r:?} shares its code");
            assert_eq!(DisconnectReason::from_code(u64::from(r.code())), Some(r));
        }
        assert_eq!(DisconnectReason::from_code(12), None);
        assert_eq!(DisconnectReason::from_code(1 << 32), None);
        assert_eq!(
            DisconnectReason::Evicted.to_string(),
            "evicted: inbound slots full"
        );
        assert_eq!(DisconnectReason::from_code(u64::MAX), None);
    }
}
