//! Node identity: the node's ed25519 network key ([`NodeKey`], kept in its own file, separate
//! from wallet keys), the [`NodeId`] peers know it by, peer addresses ([`PeerAddr`]) and the
//! networking error type ([`NetError`]).
//!
//! The key file holds the 32-byte secret seed as 64 lowercase hex characters and a newline. It
//! is created on first use with mode 0600 through [`crate::fsutil`] (random temporary name,
//! fsync, an atomic no-clobber link), so a crash never leaves a half-written key and two
//! processes racing to create it agree on one.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Everything that can go wrong in networking: identity, addresses, TLS and connections.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An I/O error, with what was being done.
    #[error("{context}: {error}")]
    Io { context: String, error: io::Error },
    /// The node key file exists but cannot be used.
    #[error("node key file {} is damaged: {reason} (move it away to create a new node identity)", path.display())]
    KeyFile { path: PathBuf, reason: String },
    /// The operating system's random number generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Randomness(String),
    /// A node id that is not 64 hex characters of a valid ed25519 key.
    #[error("invalid node id: {0}")]
    BadNodeId(String),
    /// A peer address that does not parse.
    #[error("invalid peer address {input:?}: {reason}")]
    BadAddress { input: String, reason: String },
    /// Transport settings that cannot work together.
    #[error("invalid transport settings: {0}")]
    BadConfig(String),
    /// Building the TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A connection could not even be started.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The QUIC/TLS handshake failed or the peer was refused.
    #[error("handshake with {addr} failed: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
    /// The handshake did not finish in time.
    #[error("handshake with {addr} timed out after {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
    /// The peer proved a different identity than the one we pinned.
    #[error("peer identity mismatch: expected node {expected}, found node {found}")]
    IdentityMismatch { expected: NodeId, found: NodeId },
    /// An inbound connection was refused because the inbound limit is reached.
    #[error("refused inbound connection from {addr}: already {max} inbound connections")]
    TooManyInbound { addr: SocketAddr, max: usize },
    /// The connection turned out to be to or from this node itself.
    #[error("connection to {addr} leads back to this node")]
    SelfConnection { addr: SocketAddr },
    /// The transport was closed.
    #[error("the transport is closed")]
    Closed,
}

impl NetError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
        let context = context.into();
        move |error| NetError::Io { context, error }
    }
}

/// A node's identity on the network: its ed25519 public key.
///
/// Displayed as 64 lowercase hex characters. Serialized as that hex string in human-readable
/// formats (JSON) and as 32 raw bytes in binary ones (postcard).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex characters and an ellipsis, for logs and tables.
    pub fn short(&self) -> String {
        let mut s = hex::encode(&self.0[..4]);
        s.push('…');
        s
    }

    /// The ed25519 verifying key, if the bytes are a valid curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, NetError> {
        VerifyingKey::from_bytes(&self.0)
            .map_err(|_| NetError::BadNodeId("not a valid ed25519 public key".into()))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        if s.len() != 64 {
            return Err(NetError::BadNodeId(format!(
                "expected 64 hex characters, got {}",
                s.chars().count()
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|_| NetError::BadNodeId("expected 64 hex characters (0-9, a-f)".into()))?;
        let id = NodeId(bytes);
        id.verifying_key()?;
        Ok(id)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(NodeId)
        }
    }
}

/// The node's ed25519 network identity key. Separate from any wallet key.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "NodeKey({})", self.id())
    }
}

/// Fixed PKCS#8 v1 prefix of an ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Largest key file we are willing to read (64 hex chars, a newline and some slack).
const MAX_KEY_FILE: u64 = 256;

impl NodeKey {
    /// A fresh random key.
    pub fn generate() -> Result<NodeKey, NetError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| NetError::Randomness(e.to_string()))?;
        Ok(NodeKey::from_seed(&seed))
    }

    /// The key with this 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> NodeKey {
        NodeKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Loads the key at `path`, or creates it (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<NodeKey, NetError> {
        match Self::load(path) {
            Err(NetError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::generate()?;
        let mut contents = Zeroizing::new(hex::encode(key.key.as_bytes()));
        contents.push('\n');
        if write_new_file(path, contents.as_bytes())? {
            Ok(key)
        } else {
            // Someone else created it first: use theirs.
            Self::load(path)
        }
    }

    /// Loads an existing key file.
    pub fn load(path: &Path) -> Result<NodeKey, NetError> {
        let damaged = |reason: &str| NetError::KeyFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let file = File::open(path).map_err(NetError::io(format!(
            "cannot open node key file {}",
            path.display()
        )))?;
        let mut raw = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut raw)
            .map_err(NetError::io(format!(
                "cannot read node key file {}",
                path.display()
            )))?;
        if raw.len() as u64 > MAX_KEY_FILE {
            return Err(damaged("the file is too large to be a node key"));
        }
        let text = std::str::from_utf8(&raw).map_err(|_| damaged("the file is not text"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(damaged("the file is empty"));
        }
        if text.len() != 64 {
            return Err(damaged(
                "expected 64 hex characters (a 32-byte ed25519 seed)",
            ));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, seed.as_mut())
            .map_err(|_| damaged("expected 64 hex characters (a 32-byte ed25519 seed)"))?;
        Ok(NodeKey::from_seed(&seed))
    }

    /// This node's identity.
    pub fn id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    /// The ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The key as an unencrypted PKCS#8 v1 document (RFC 8410), as TLS libraries want it.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(self.key.as_bytes());
        der
    }
}

/// `DATA_DIR/node_key`: the node's identity key file.
pub fn node_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node_key")
}

/// What an API identity proof signs before the API address and the challenge (domain
/// separation: no TLS or wire message starts with it).
const API_PROOF_CONTEXT: &[u8] = b"chain-tui API identity proof v1\0";

fn api_proof_message(api: &SocketAddr, challenge: &[u8]) -> Vec<u8> {
    let mut m = API_PROOF_CONTEXT.to_vec();
    m.extend_from_slice(api.to_string().as_bytes());
    m.push(0);
    m.extend_from_slice(challenge);
    m
}

impl NodeKey {
    /// Proves to a client that the API at `api` is served by this node: a signature over a
    /// domain-separated message holding `api` and the client's random `challenge`.
    pub fn sign_api_challenge(&self, api: &SocketAddr, challenge: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(&api_proof_message(api, challenge)).to_bytes()
    }
}

impl NodeId {
    /// Whether `signature` is this node's proof for the API at `api` and `challenge`.
    pub fn verify_api_challenge(
        &self,
        api: &SocketAddr,
        challenge: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        let Ok(key) = self.verifying_key() else {
            return false;
        };
        key.verify_strict(
            &api_proof_message(api, challenge),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .is_ok()
    }
}

/// Writes `contents` to a new file at `path` with mode 0600 through the one atomic writer
/// ([`crate::fsutil::write_new`]), which never replaces an existing file. Returns false if
/// `path` already existed, in which case nothing was changed.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<bool, NetError> {
    crate::fsutil::write_new(path, contents).map_err(NetError::io(format!(
        "cannot create node key file {}",
        path.display()
    )))
}

/// Where a peer listens, optionally with the identity it must prove.
///
/// Written `HOST:PORT` or `NODEID@HOST:PORT`, where HOST is an IPv4 literal, a bracketed IPv6
/// literal (`[::1]:9000`) or `localhost` (read as 127.0.0.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PeerAddr {
    pub id: Option<NodeId>,
    pub addr: SocketAddr,
}

impl PeerAddr {
    pub fn new(addr: SocketAddr, id: Option<NodeId>) -> PeerAddr {
        PeerAddr { id, addr }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{id}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl FromStr for PeerAddr {
    type Err = NetError;

    fn from_str(input: &str) -> Result<Self, NetError> {
        let bad = |reason: String| NetError::BadAddress {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad(
                "empty address; expected HOST:PORT or NODEID@HOST:PORT".into()
            ));
        }
        if s.contains("://") {
            return Err(bad(
                "a URL; a peer is HOST:PORT, the address its node listens on for peers \
                 (--listen), not its API's URL"
                    .into(),
            ));
        }
        let (id, hostport) = match s.split_once('@') {
            Some((id, rest)) => {
                let id = id.parse::<NodeId>().map_err(|e| bad(e.to_string()))?;
                (Some(id), rest)
            }
            None => (None, s),
        };
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| bad("missing :PORT (expected HOST:PORT)".into()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(format!("{port:?} is not a port number (1-65535)")))?;
        if port == 0 {
            return Err(bad("port 0 is not a peer's port".into()));
        }
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            IpAddr::V6(
                v6.parse()
                    .map_err(|_| bad(format!("{v6:?} is not an IPv6 address")))?,
            )
        } else if host.contains(':') {
            return Err(bad(
                "write an IPv6 address in brackets, like [::1]:9000".into()
            ));
        } else if host.is_empty() {
            return Err(bad("missing host before :PORT".into()));
        } else {
            IpAddr::V4(host.parse().map_err(|_| {
                bad(format!(
                    "{host:?} is not an IP address or localhost (host names are not resolved)"
                ))
            })?)
        };
        Ok(PeerAddr {
            id,
            addr: SocketAddr::new(ip, port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_hex_round_trip_and_short() {
        let key = NodeKey::from_seed(&[7; 32]);
        let id = key.id();
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(s.parse::<NodeId>().unwrap(), id);
        assert_eq!(id.short(), format!("{}…", &s[..8]));
        assert!("abc".parse::<NodeId>().is_err());
        assert!("zz".repeat(32).parse::<NodeId>().is_err());
    }

    #[test]
    fn node_id_serde_forms() {
        let id = NodeKey::from_seed(&[9; 32]).id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
        let bin = postcard::to_stdvec(&id).unwrap();
        assert_eq!(bin.len(), 32);
        assert_eq!(postcard::from_bytes::<NodeId>(&bin).unwrap(), id);
    }

    #[test]
    fn pkcs8_has_the_rfc8410_layout() {
        let key = NodeKey::from_seed(&[1; 32]);
        let der = key.to_pkcs8_der();
        assert_eq!(der.len(), 48);
        assert_eq!(hex::encode(&der[..16]), "302e020100300506032b657004220420");
        assert_eq!(&der[16..], &[1; 32]);
    }

    #[test]
    fn api_proofs_bind_key_address_and_challenge() {
        let a = NodeKey::from_seed(&[1; 32]);
        let b = NodeKey::from_seed(&[2; 32]);
        let at: SocketAddr = "127.0.0.1:7421".parse().unwrap();
        let elsewhere: SocketAddr = "127.0.0.1:7422".parse().unwrap();
        let sig = a.sign_api_challenge(&at, b"challenge-0123456789");
        assert!(
            a.id()
                .verify_api_challenge(&at, b"challenge-0123456789", &sig)
        );
        assert!(
            !b.id()
                .verify_api_challenge(&at, b"challenge-0123456789", &sig)
        );
        assert!(
            !a.id()
                .verify_api_challenge(&elsewhere, b"challenge-0123456789", &sig)
        );
        assert!(
            !a.id()
                .verify_api_challenge(&at, b"challenge-0123456788", &sig)
        );
        assert!(
            !a.id()
                .verify_api_challenge(&at, b"challenge-0123456789", &sig[..63])
        );
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = NodeKey::from_seed(&[0xab; 32]);
        assert!(!format!("{key:?}").contains(&"ab".repeat(32)));
    }
}
