//! The authenticated QUIC transport: one UDP socket that both listens and dials, where every
//! connection is mutually authenticated by node key.
//!
//! Each node presents a self-signed certificate made from its [`NodeKey`] (ed25519). There is
//! no certificate authority: a peer *is* its public key. [`PeerVerifier`] accepts exactly one
//! certificate whose key is ed25519, derives the [`NodeId`] from it, refuses it if a different
//! identity was pinned, and verifies the TLS 1.3 handshake signature with that key, so a peer
//! that replays someone else's certificate without the private key fails. TLS 1.2, other key
//! types and session resumption are refused or disabled. Client certificates are mandatory.
//!
//! A client finishes its side of the TLS 1.3 handshake before the server has checked the
//! client's certificate, so [`Transport::connect`] also waits for the server's HANDSHAKE_DONE:
//! a `Connection` it returns was accepted by both ends.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, IdleTimeout, TransportConfig, TransportErrorCode, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ParsedCertificate};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::identity::{NetError, NodeId, NodeKey};
use super::wire::PROTOCOL_VERSION;

/// The application protocol of protocol version 1 (full blocks only). Nodes from before
/// compact blocks offer and accept only this one.
pub const ALPN: &[u8] = b"chain-tui/1";
/// The application protocol of protocol version 2 (compact block relay).
pub const ALPN_V2: &[u8] = b"chain-tui/2";

/// The ALPN name of protocol `version`.
fn alpn_of(version: u32) -> Option<&'static [u8]> {
    match version {
        1 => Some(ALPN),
        2 => Some(ALPN_V2),
        _ => None,
    }
}

/// The protocols a transport speaking at most `max` offers and accepts, newest first (a
/// server picks the first of its own list that the client offers).
fn alpn_list(max: u32) -> Vec<Vec<u8>> {
    (1..=max)
        .rev()
        .filter_map(|v| alpn_of(v).map(<[u8]>::to_vec))
        .collect()
}

/// The TLS server name sent by dialers. Identity is checked by key, never by name.
pub const SERVER_NAME: &str = "chain-tui";

/// Limits of a [`Transport`]: how many peers, how long to wait, how much to buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Inbound connections (established or in handshake) at once; more are refused.
    pub max_inbound: usize,
    /// Time allowed for a whole handshake, dialing or accepting.
    pub handshake_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Ping interval that keeps a quiet connection alive; must be below `idle_timeout`.
    pub keep_alive: Duration,
    /// Bidirectional streams a peer may have open at once.
    pub max_bidi_streams: u32,
    /// Unidirectional streams a peer may have open at once.
    pub max_uni_streams: u32,
    /// Bytes a peer may send on one stream ahead of our reading (a whole block must fit).
    pub stream_window: u32,
    /// Bytes a peer may send on the whole connection ahead of our reading.
    pub conn_window: u32,
    /// The newest protocol version offered and accepted (the two ends settle on the newest
    /// both speak, see [`Connection::protocol`]); from 1 to [`PROTOCOL_VERSION`].
    pub max_protocol: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_inbound: 32,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            max_bidi_streams: 4,
            max_uni_streams: 4,
            // A 1,000,000-byte block plus framing fits in one stream window.
            stream_window: 4 * 1024 * 1024,
            conn_window: 8 * 1024 * 1024,
            max_protocol: PROTOCOL_VERSION,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), NetError> {
        let bad = |s: &str| Err(NetError::BadConfig(s.to_string()));
        if self.handshake_timeout.is_zero() {
            return bad("the handshake timeout must be above zero");
        }
        if self.idle_timeout.is_zero() {
            return bad("the idle timeout must be above zero");
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return bad("the keep-alive interval must be above zero and below the idle timeout");
        }
        if !(1..=PROTOCOL_VERSION).contains(&self.max_protocol) {
            return bad("the protocol version must be from 1 to the newest this build speaks");
        }
        if self.stream_window == 0 || self.conn_window < self.stream_window {
            return bad(
                "the stream window must be above zero and the connection window at least as large",
            );
        }
        Ok(())
    }

    fn transport_config(&self) -> Result<TransportConfig, NetError> {
        let idle = IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| NetError::BadConfig("the idle timeout is too long".into()))?;
        let mut config = TransportConfig::default();
        config
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams))
            .stream_receive_window(VarInt::from_u32(self.stream_window))
            .receive_window(VarInt::from_u32(self.conn_window))
            .send_window(u64::from(self.conn_window))
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive))
            // No unreliable datagrams in this protocol.
            .datagram_receive_buffer_size(None);
        Ok(config)
    }
}

/// An authenticated connection to a peer.
///
/// Keep this value for as long as the connection is used: for an inbound connection it holds
/// one of the transport's `max_inbound` slots, released when it is dropped or the connection
/// closes.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The QUIC connection; open streams on it.
    pub conn: quinn::Connection,
    /// The peer's proven identity.
    pub peer: NodeId,
    /// The peer's address as seen at the handshake.
    pub remote: SocketAddr,
    /// Whether the peer dialed us.
    pub inbound: bool,
    /// Unique among this process's connections: how the peer manager tells a connection
    /// from a newer one to the same node.
    pub serial: u64,
    /// The protocol version the two ends settled on (ALPN): the newest both speak.
    pub protocol: u32,
    _slot: Option<Arc<InboundSlot>>,
}

/// The next [`Connection::serial`].
fn next_serial() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Connection {
    /// Why the connection is closed, in words, once it is (`None` while it is open): the
    /// reason the other side gave, or what ended it.
    pub fn closed_because(&self) -> Option<String> {
        self.conn.close_reason().map(|e| describe(&e))
    }
}

/// One inbound connection counted against `max_inbound`: live while a handshake runs, then
/// while the connection is open and its [`Connection`] exists.
#[derive(Debug, Default)]
struct InboundSlot {
    conn: OnceLock<quinn::Connection>,
}

impl InboundSlot {
    fn is_live(&self) -> bool {
        self.conn.get().is_none_or(|c| c.close_reason().is_none())
    }
}

/// A QUIC endpoint (listener and dialer on one UDP socket) authenticated by a [`NodeKey`].
pub struct Transport {
    endpoint: quinn::Endpoint,
    id: NodeId,
    limits: Limits,
    provider: Arc<CryptoProvider>,
    certified: Arc<CertifiedKey>,
    transport_config: Arc<TransportConfig>,
    inbound: tokio::sync::Mutex<mpsc::Receiver<Result<Connection, NetError>>>,
    accept_task: JoinHandle<()>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("id", &self.id)
            .field("local_addr", &self.endpoint.local_addr().ok())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Binds the UDP socket and starts accepting. Must be called within a tokio runtime.
    pub fn bind(addr: SocketAddr, key: &NodeKey, limits: Limits) -> Result<Transport, NetError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::BadConfig(
                "the transport must be started within a tokio runtime".into(),
            ));
        }
        limits.validate()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key_with(key, &provider)?;
        let transport_config = Arc::new(limits.transport_config()?);

        let mut server_crypto = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(Arc::new(PeerVerifier::with_provider(None, &provider)))
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
        server_crypto.alpn_protocols = alpn_list(limits.max_protocol);
        server_crypto.max_early_data_size = 0;
        server_crypto.send_tls13_tickets = 0;
        server_crypto.session_storage = Arc::new(NoServerSessionStorage {});
        let server_crypto = QuicServerConfig::try_from(server_crypto).map_err(tls_err)?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config
            .transport_config(transport_config.clone())
            .max_incoming(256);

        let endpoint =
            quinn::Endpoint::server(server_config, addr).map_err(|error| NetError::Io {
                context: format!("cannot listen on {addr}"),
                error,
            })?;
        let (tx, rx) = mpsc::channel(limits.max_inbound.saturating_add(16));
        let accept_task = tokio::spawn(accept_loop(endpoint.clone(), tx, limits.clone(), key.id()));
        Ok(Transport {
            endpoint,
            id: key.id(),
            limits,
            provider,
            certified,
            transport_config,
            inbound: tokio::sync::Mutex::new(rx),
            accept_task,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.endpoint.local_addr().map_err(|error| NetError::Io {
            context: "cannot read the transport's local address".into(),
            error,
        })
    }

    /// This node's identity.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The limits the transport was bound with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Dials `addr`, within the handshake timeout. `expect` pins the peer's identity: a peer
    /// proving another key is refused with [`NetError::IdentityMismatch`].
    pub async fn connect(
        &self,
        addr: SocketAddr,
        expect: Option<NodeId>,
    ) -> Result<Connection, NetError> {
        let verifier = Arc::new(PeerVerifier::with_provider(expect, &self.provider));
        let config = self.client_config(verifier.clone())?;
        let connecting = self
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| match e {
                quinn::ConnectError::EndpointStopping => NetError::Closed,
                e => NetError::Connect {
                    addr,
                    reason: e.to_string(),
                },
            })?;
        let handshake = async {
            let conn = connecting.await.map_err(|e| verifier.explain(addr, &e))?;
            let (peer, protocol) = authenticated_peer(&conn).map_err(|reason| {
                refuse(&conn, &reason);
                NetError::Handshake { addr, reason }
            })?;
            if let Some(expected) = expect
                && expected != peer
            {
                refuse(&conn, "identity mismatch");
                return Err(NetError::IdentityMismatch {
                    expected,
                    found: peer,
                });
            }
            if peer == self.id {
                refuse(&conn, "connection to self");
                return Err(NetError::SelfConnection { addr });
            }
            // Only now has the server accepted our certificate.
            await_confirmation(&conn)
                .await
                .map_err(|e| verifier.explain(addr, &e))?;
            Ok(Connection {
                remote: conn.remote_address(),
                conn,
                peer,
                inbound: false,
                serial: next_serial(),
                protocol,
                _slot: None,
            })
        };
        match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout {
                addr,
                after: self.limits.handshake_timeout,
            }),
        }
    }

    /// The next inbound connection that completed the handshake, or an inbound attempt that
    /// failed (refused over `max_inbound`, failed authentication, timed out) so it can be
    /// logged. `None` once the transport is closed.
    pub async fn accept(&self) -> Option<Result<Connection, NetError>> {
        self.inbound.lock().await.recv().await
    }

    /// Closes every connection and stops listening.
    pub fn close(&self) {
        self.accept_task.abort();
        self.endpoint.close(
            super::DisconnectReason::Normal.code().into(),
            b"node shutting down",
        );
    }

    /// Waits until every connection has been closed cleanly (use after [`Transport::close`]).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }

    fn client_config(&self, verifier: Arc<PeerVerifier>) -> Result<quinn::ClientConfig, NetError> {
        let mut crypto = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(self.certified.clone())));
        crypto.alpn_protocols = alpn_list(self.limits.max_protocol);
        crypto.resumption = rustls::client::Resumption::disabled();
        crypto.enable_early_data = false;
        let crypto = QuicClientConfig::try_from(crypto).map_err(tls_err)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(self.transport_config.clone());
        Ok(config)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Stop accepting; connections still held elsewhere live on, as quinn's do.
        self.accept_task.abort();
        self.endpoint.set_server_config(None);
    }
}

/// Takes inbound attempts off the endpoint, refuses those over the limit and runs the others'
/// handshakes concurrently, so one slow peer cannot hold up the rest.
async fn accept_loop(
    endpoint: quinn::Endpoint,
    tx: mpsc::Sender<Result<Connection, NetError>>,
    limits: Limits,
    own_id: NodeId,
) {
    let mut slots: Vec<Weak<InboundSlot>> = Vec::new();
    let mut handshakes = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
        };
        let Some(incoming) = incoming else { break };
        let remote = incoming.remote_address();
        slots.retain(|slot| slot.upgrade().is_some_and(|s| s.is_live()));
        if slots.len() >= limits.max_inbound {
            tracing::debug!(%remote, max = limits.max_inbound, "inbound limit reached: refused");
            incoming.refuse();
            let _ = tx.try_send(Err(NetError::TooManyInbound {
                addr: remote,
                max: limits.max_inbound,
            }));
            continue;
        }
        let slot = Arc::new(InboundSlot::default());
        slots.push(Arc::downgrade(&slot));
        handshakes.spawn(inbound_handshake(
            incoming,
            slot,
            tx.clone(),
            limits.handshake_timeout,
            own_id,
        ));
    }
}

async fn inbound_handshake(
    incoming: quinn::Incoming,
    slot: Arc<InboundSlot>,
    tx: mpsc::Sender<Result<Connection, NetError>>,
    timeout: Duration,
    own_id: NodeId,
) {
    let addr = incoming.remote_address();
    let handshake = async {
        let connecting = incoming.accept().map_err(|e| NetError::Handshake {
            addr,
            reason: describe(&e),
        })?;
        let conn = connecting.await.map_err(|e| NetError::Handshake {
            addr,
            reason: describe(&e),
        })?;
        let (peer, protocol) = authenticated_peer(&conn).map_err(|reason| {
            refuse(&conn, &reason);
            NetError::Handshake { addr, reason }
        })?;
        if peer == own_id {
            refuse(&conn, "connection to self");
            return Err(NetError::SelfConnection { addr });
        }
        Ok((conn, peer, protocol))
    };
    let result = match tokio::time::timeout(timeout, handshake).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout {
            addr,
            after: timeout,
        }),
    };
    match result {
        Ok((conn, peer, protocol)) => {
            let _ = slot.conn.set(conn.clone());
            let connection = Connection {
                remote: conn.remote_address(),
                conn,
                peer,
                inbound: true,
                serial: next_serial(),
                protocol,
                _slot: Some(slot),
            };
            // If the transport is gone, dropping the connection closes it.
            let _ = tx.send(Ok(connection)).await;
        }
        Err(e) => {
            tracing::debug!(%addr, error = %e, "inbound handshake failed");
            drop(slot);
            let _ = tx.try_send(Err(e));
        }
    }
}

/// Waits for the server's HANDSHAKE_DONE, its confirmation that it accepted our certificate.
async fn await_confirmation(conn: &quinn::Connection) -> Result<(), ConnectionError> {
    let mut delay = Duration::from_millis(1);
    loop {
        if let Some(e) = conn.close_reason() {
            return Err(e);
        }
        if conn.stats().frame_rx.handshake_done > 0 {
            return Ok(());
        }
        tokio::select! {
            e = conn.closed() => return Err(e),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// The peer's identity from a completed handshake, and the negotiated protocol version.
fn authenticated_peer(conn: &quinn::Connection) -> Result<(NodeId, u32), String> {
    let protocol = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    let Some(version) = (1..=PROTOCOL_VERSION)
        .find(|v| alpn_of(*v).is_some_and(|a| protocol.as_deref() == Some(a)))
    else {
        return Err("the peer does not speak chain-tui/1 or chain-tui/2".into());
    };
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("the peer presented no certificate")?;
    let cert = certs.first().ok_or("the peer presented no certificate")?;
    let id = node_id_of(cert).map_err(|e| e.to_string())?;
    Ok((id, version))
}

fn refuse(conn: &quinn::Connection, reason: &str) {
    super::DisconnectReason::Refused.close(conn, reason.as_bytes());
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionClosed(frame)
            if frame.error_code == TransportErrorCode::CONNECTION_REFUSED =>
        {
            "the peer refused the connection (it may be at its inbound limit)".into()
        }
        ConnectionError::TimedOut => "the peer did not answer".into(),
        ConnectionError::ApplicationClosed(c) => {
            let detail = peer_text(&c.reason);
            match super::DisconnectReason::from_code(c.error_code.into_inner()) {
                Some(r) if detail.is_empty() => format!("the peer closed the connection: {r}"),
                Some(r) => format!("the peer closed the connection: {r} ({detail})"),
                None => format!("the peer closed the connection ({detail})"),
            }
        }
        e => e.to_string(),
    }
}

/// A close reason the peer sent, fit for a log line or a screen: at most 200 characters, its
/// control characters escaped.
fn peer_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(200)
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}

fn tls_err(e: impl fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

/// This node's self-signed certificate: its ed25519 key, signed by itself.
pub fn self_signed_certificate(key: &NodeKey) -> Result<CertificateDer<'static>, NetError> {
    let pkcs8 = PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(tls_err)?;
    let mut params =
        rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(tls_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("chain-tui node {}", key.id()),
    );
    let cert = params.self_signed(&key_pair).map_err(tls_err)?;
    Ok(cert.der().clone())
}

/// The node's certificate paired with its signing key, as rustls presents it.
pub fn certified_key(key: &NodeKey) -> Result<Arc<CertifiedKey>, NetError> {
    certified_key_with(key, &rustls::crypto::ring::default_provider())
}

fn certified_key_with(
    key: &NodeKey,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, NetError> {
    let cert = self_signed_certificate(key)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec()));
    // from_der checks that the key matches the certificate.
    let certified = CertifiedKey::from_der(vec![cert], der, provider).map_err(tls_err)?;
    Ok(Arc::new(certified))
}

/// DER of an ed25519 SubjectPublicKeyInfo (RFC 8410) before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The node id a certificate claims: its ed25519 public key. Claims only: the handshake
/// signature is what proves the peer holds the key.
pub fn node_id_from_certificate(cert: &CertificateDer<'_>) -> Result<NodeId, NetError> {
    node_id_of(cert).map_err(tls_err)
}

fn node_id_of(cert: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    let key = spki
        .as_ref()
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| cert_error("the certificate's key is not an ed25519 key".into()))?;
    Ok(NodeId(key))
}

/// Why a peer's certificate was refused, carried inside a rustls error.
struct PeerRefused(String);

// rustls shows this error with `{:?}`: keep it readable.
impl fmt::Debug for PeerRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for PeerRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerRefused {}

fn cert_error(reason: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PeerRefused(
        reason,
    )))))
}

/// Verifies a peer by key, on either side of the handshake: exactly one certificate, an
/// ed25519 key, the pinned identity if any, and a valid TLS 1.3 handshake signature.
#[derive(Debug)]
pub struct PeerVerifier {
    expect: Option<NodeId>,
    algorithms: WebPkiSupportedAlgorithms,
    /// The identity found when it differed from the pinned one.
    mismatch: Mutex<Option<NodeId>>,
}

impl PeerVerifier {
    /// A verifier pinning `expect` if given, using the ring provider's algorithms.
    pub fn new(expect: Option<NodeId>) -> PeerVerifier {
        PeerVerifier::with_provider(expect, &rustls::crypto::ring::default_provider())
    }

    fn with_provider(expect: Option<NodeId>, provider: &CryptoProvider) -> PeerVerifier {
        PeerVerifier {
            expect,
            algorithms: provider.signature_verification_algorithms,
            mismatch: Mutex::new(None),
        }
    }

    fn check_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<NodeId, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(cert_error(
                "expected a single self-signed certificate, got a chain".into(),
            ));
        }
        let found = node_id_of(end_entity)?;
        if let Some(expected) = self.expect
            && expected != found
        {
            if let Ok(mut m) = self.mismatch.lock() {
                *m = Some(found);
            }
            return Err(cert_error(format!(
                "identity mismatch: expected node {expected}, found node {found}"
            )));
        }
        Ok(found)
    }

    fn check_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        node_id_of(cert)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    /// Turns a failed handshake into the most precise error.
    fn explain(&self, addr: SocketAddr, e: &ConnectionError) -> NetError {
        let mismatch = self.mismatch.lock().ok().and_then(|m| *m);
        match (self.expect, mismatch) {
            (Some(expected), Some(found)) => NetError::IdentityMismatch { expected, found },
            _ => NetError::Handshake {
                addr,
                reason: describe(e),
            },
        }
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_certificate(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_certificate(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_close_reason_is_cut_and_its_control_characters_escaped() {
        assert_eq!(peer_text(b"banned (flood)"), "banned (flood)");
        assert_eq!(peer_text(b"a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(peer_text(&[b'x'; 1000]).len(), 200);
        assert_eq!(peer_text(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn certificate_carries_the_node_id() {
        let key = NodeKey::from_seed(&[3; 32]);
        let cert = self_signed_certificate(&key).unwrap();
        assert_eq!(node_id_from_certificate(&cert).unwrap(), key.id());
        let ck = certified_key(&key).unwrap();
        assert_eq!(ck.cert.len(), 1);
    }

    #[test]
    fn verifier_pins_and_refuses_other_keys() {
        let a = NodeKey::from_seed(&[4; 32]);
        let b = NodeKey::from_seed(&[5; 32]);
        let cert = self_signed_certificate(&a).unwrap();
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let now = UnixTime::now();
        assert!(
            PeerVerifier::new(Some(a.id()))
                .verify_server_cert(&cert, &[], &name, &[], now)
                .is_ok()
        );
        let pinned_b = PeerVerifier::new(Some(b.id()));
        let err = pinned_b
            .verify_server_cert(&cert, &[], &name, &[], now)
            .unwrap_err();
        assert!(err.to_string().contains("identity mismatch"), "{err}");
        assert!(matches!(
            pinned_b.explain("127.0.0.1:1".parse().unwrap(), &ConnectionError::TimedOut),
            NetError::IdentityMismatch { .. }
        ));
        // A chain is refused.
        assert!(
            PeerVerifier::new(None)
                .verify_client_cert(&cert, std::slice::from_ref(&cert), now)
                .is_err()
        );
        // An ECDSA certificate is refused.
        let ecdsa = rcgen::KeyPair::generate().unwrap();
        let ecdsa_cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .unwrap()
            .self_signed(&ecdsa)
            .unwrap();
        let err = PeerVerifier::new(None)
            .verify_client_cert(ecdsa_cert.der(), &[], now)
            .unwrap_err();
        assert!(err.to_string().contains("not an ed25519 key"), "{err}");
    }

    #[test]
    fn limits_are_checked() {
        assert!(Limits::default().validate().is_ok());
        let bad = Limits {
            keep_alive: Duration::from_secs(60),
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
        let bad = Limits {
            conn_window: 1,
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
    }
}
