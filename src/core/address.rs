//! Addresses: the 20-byte hash of an ed25519 public key, written in bech32m with a per-network
//! human-readable part, so a mistyped or wrong-network address is refused before anything is signed.

use super::params::Network;
use bech32::{Bech32m, Hrp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Version byte carried in front of the key hash (shown as the `q` after the separator).
const ADDRESS_VERSION: u8 = 0;

/// The hash of a public key that an output pays to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Address([u8; 20]);

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not a valid address (bad characters or checksum): {0}")]
    Malformed(String),
    #[error("address is for network {found:?}, this node runs {expected}")]
    WrongNetwork { expected: Network, found: String },
    #[error("address has an unknown version or length")]
    BadPayload,
}

impl Address {
    /// The address whose key hash is `hash` (any 20 bytes; [`Address::from_pubkey`] makes the
    /// hash of a key, [`Address::decode`] checks a written one).
    pub const fn from_hash(hash: [u8; 20]) -> Address {
        Address(hash)
    }
    /// The key hash.
    pub const fn hash(self) -> [u8; 20] {
        self.0
    }
    /// The address of an ed25519 public key: the first 20 bytes of SHA-256(key).
    pub fn from_pubkey(pubkey: &[u8; 32]) -> Address {
        let d = Sha256::digest(pubkey);
        let mut a = [0u8; 20];
        a.copy_from_slice(&d[..20]);
        Address(a)
    }

    /// bech32m text for `network`.
    pub fn encode(&self, network: Network) -> String {
        let mut data = [0u8; 21];
        data[0] = ADDRESS_VERSION;
        data[1..].copy_from_slice(&self.0);
        match Hrp::parse(network.hrp()) {
            Ok(hrp) => bech32::encode::<Bech32m>(hrp, &data).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Parse bech32m text, requiring `network`'s prefix and the bech32m checksum.
    pub fn decode(s: &str, network: Network) -> Result<Address, AddressError> {
        let s = s.trim();
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| AddressError::Malformed(e.to_string()))?;
        let hrp = checked.hrp();
        if hrp.as_str() != network.hrp() {
            return Err(AddressError::WrongNetwork {
                expected: network,
                found: hrp.to_string(),
            });
        }
        let data: Vec<u8> = checked.byte_iter().collect();
        if data.len() != 21 || data[0] != ADDRESS_VERSION {
            return Err(AddressError::BadPayload);
        }
        let mut a = [0u8; 20];
        a.copy_from_slice(&data[1..]);
        Ok(Address(a))
    }

    /// An address no key can spend (all zero bytes): the genesis coinbase pays here.
    pub const UNSPENDABLE: Address = Address([0; 20]);
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let a = Address::from_pubkey(&[7u8; 32]);
        for net in [Network::Regtest, Network::Devnet] {
            let s = a.encode(net);
            assert!(s.starts_with(&format!("{}1q", net.hrp())), "{s}");
            assert_eq!(Address::decode(&s, net), Ok(a));
        }
        let s = a.encode(Network::Devnet);
        assert!(matches!(
            Address::decode(&s, Network::Regtest),
            Err(AddressError::WrongNetwork { .. })
        ));
        // One changed character breaks the checksum.
        let mut chars: Vec<char> = s.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            Address::decode(&typo, Network::Devnet),
            Err(AddressError::Malformed(_))
        ));
        assert!(Address::decode("", Network::Devnet).is_err());
        assert!(Address::decode("ct1qqqqq", Network::Devnet).is_err());
    }
}
