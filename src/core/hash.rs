//! Hashes: SHA-256d and the 32-byte newtypes built on it (`BlockHash`, `Txid`).
//!
//! Hashes are shown and parsed as 64 lowercase hex digits in byte order; as numbers (proof of
//! work) they are read big-endian, so a hash that starts with zeros is a small number.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 applied twice.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// SHA-256d of several byte slices laid end to end, without concatenating them.
pub fn sha256d_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Sha256::digest(h.finalize()).into()
}

/// Why a hex hash did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits, got {0:?}")]
pub struct HashParseError(pub String);

macro_rules! hash_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The all-zero hash.
            pub const ZERO: $name = $name([0; 32]);
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// A short form for narrow displays: first 4 and last 2 bytes.
            pub fn short(&self) -> String {
                let h = hex::encode(self.0);
                format!("{}…{}", &h[..8], &h[60..])
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
        impl FromStr for $name {
            type Err = HashParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s.trim(), &mut out)
                    .map_err(|_| HashParseError(s.chars().take(80).collect()))?;
                Ok($name(out))
            }
        }
    };
}

hash_newtype!(
    /// The SHA-256d of a block's 88-byte header.
    BlockHash
);
hash_newtype!(
    /// The SHA-256d of a transaction's canonical encoding.
    Txid
);
hash_newtype!(
    /// A merkle root over txids.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_known_vector() {
        // SHA-256d("hello") as published for Bitcoin's hash256.
        assert_eq!(
            hex::encode(sha256d(b"hello")),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
        );
        assert_eq!(sha256d_parts(&[b"he", b"llo"]), sha256d(b"hello"));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Txid(sha256d(b"x"));
        assert_eq!(h.to_string().parse::<Txid>(), Ok(h));
        assert!("zz".parse::<Txid>().is_err());
        assert!("00".repeat(31).parse::<Txid>().is_err());
        assert!("é".repeat(64).parse::<Txid>().is_err());
    }
}
