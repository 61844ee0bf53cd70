//! The authenticated QUIC transport on 127.0.0.1: identities, pinning, forged and foreign
//! certificates, the inbound limit, node key files and peer addresses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chain_tui::net::identity::{NetError, NodeId, NodeKey, PeerAddr};
use chain_tui::net::transport::{
    ALPN, Limits, PeerVerifier, SERVER_NAME, Transport, certified_key,
};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

const LIMIT: Duration = Duration::from_secs(15);

/// Every await in these tests goes through here.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

fn bind(key: &NodeKey) -> Transport {
    Transport::bind(localhost(), key, Limits::default()).unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Always presents the given certificate and key, whatever they are.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for Present {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// cert(A) paired with the signing key of B.
fn forged(a: &NodeKey, b: &NodeKey) -> Arc<CertifiedKey> {
    let cert_a = certified_key(a).unwrap();
    let key_b = certified_key(b).unwrap();
    Arc::new(CertifiedKey::new(cert_a.cert.clone(), key_b.key.clone()))
}

/// An rcgen default (ECDSA P-256) self-signed certificate with its key.
fn ecdsa_certified() -> Arc<CertifiedKey> {
    let kp = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()));
    let signer = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
    Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// A hand-built client: verifies the server with `PeerVerifier`, presents `client_cert` (or
/// no certificate at all).
fn raw_client(client_cert: Option<Arc<CertifiedKey>>) -> (quinn::Endpoint, quinn::ClientConfig) {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(None)));
    let mut crypto = match client_cert {
        Some(ck) => builder.with_client_cert_resolver(Arc::new(Present(ck))),
        None => builder.with_no_client_auth(),
    };
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(crypto).unwrap()));
    (quinn::Endpoint::client(localhost()).unwrap(), config)
}

/// A hand-built server presenting `server_cert`, requiring ed25519 client certificates. Its
/// accept loop runs in the background so handshakes progress.
fn raw_server(server_cert: Arc<CertifiedKey>) -> (quinn::Endpoint, SocketAddr) {
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(PeerVerifier::new(None)))
        .with_cert_resolver(Arc::new(Present(server_cert)));
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let config =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(crypto).unwrap()));
    let endpoint = quinn::Endpoint::server(config, localhost()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let ep = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            tokio::spawn(async move {
                if let Ok(connecting) = incoming.accept()
                    && let Ok(conn) = connecting.await
                {
                    // Hold the connection until the peer goes away.
                    conn.closed().await;
                }
            });
        }
    });
    (endpoint, addr)
}

/// Dials `server` with a hand-built client; the connection must not survive.
async fn raw_dial_is_refused(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    server: SocketAddr,
) -> String {
    let connecting = endpoint.connect_with(config, server, SERVER_NAME).unwrap();
    let reason = match within(connecting).await {
        Err(e) => e.to_string(),
        // The client's half of TLS 1.3 can finish before the server checks its certificate;
        // the server must then close the connection.
        Ok(conn) => {
            let reason = within(conn.closed()).await;
            assert!(
                !matches!(reason, quinn::ConnectionError::LocallyClosed),
                "{reason}"
            );
            reason.to_string()
        }
    };
    eprintln!("client: {reason}");
    reason
}

/// The server side reports a failed inbound handshake and never hands out the connection.
async fn server_reports_failure(server: &Transport) -> NetError {
    match within(server.accept()).await {
        Some(Err(e)) => {
            eprintln!("server: {e}");
            e
        }
        Some(Ok(c)) => panic!("the server accepted {}", c.peer),
        None => panic!("the server closed"),
    }
}

async fn echo(conn: &quinn::Connection, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = within(conn.open_bi()).await.unwrap();
    within(send.write_all(data)).await.unwrap();
    send.finish().unwrap();
    within(recv.read_to_end(4 * 1024 * 1024)).await.unwrap()
}

async fn serve_echo(conn: quinn::Connection) {
    let (mut send, mut recv) = within(conn.accept_bi()).await.unwrap();
    let data = within(recv.read_to_end(4 * 1024 * 1024)).await.unwrap();
    within(send.write_all(&data)).await.unwrap();
    send.finish().unwrap();
    // Keep the connection until the other side has read everything.
    let _ = within(conn.closed()).await;
}

#[tokio::test]
async fn peers_see_each_other_and_echo() {
    let (a, b) = (key(1), key(2));
    let server = bind(&a);
    let client = bind(&b);
    let addr = server.local_addr().unwrap();
    assert_eq!(server.id(), a.id());

    let outbound = within(client.connect(addr, None)).await.unwrap();
    assert_eq!(outbound.peer, a.id());
    assert!(!outbound.inbound);
    assert_eq!(outbound.remote, addr);

    let inbound = within(server.accept()).await.unwrap().unwrap();
    assert_eq!(inbound.peer, b.id());
    assert!(inbound.inbound);
    assert_eq!(inbound.remote, client.local_addr().unwrap());

    let echo_task = tokio::spawn(serve_echo(inbound.conn.clone()));
    // More than a full 1 MB block in one stream.
    let data: Vec<u8> = (0..1_100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo(&outbound.conn, &data).await, data);
    outbound.conn.close(0u32.into(), b"done");
    within(echo_task).await.unwrap();
}

#[tokio::test]
async fn pinned_identity_is_enforced() {
    let (a, b, c) = (key(3), key(4), key(5));
    let server = bind(&a);
    let client = bind(&b);
    let addr = server.local_addr().unwrap();

    let ok = within(client.connect(addr, Some(a.id()))).await.unwrap();
    assert_eq!(ok.peer, a.id());
    assert_eq!(within(server.accept()).await.unwrap().unwrap().peer, b.id());

    let err = within(client.connect(addr, Some(c.id())))
        .await
        .unwrap_err();
    eprintln!("{err}");
    match &err {
        NetError::IdentityMismatch { expected, found } => {
            assert_eq!(*expected, c.id());
            assert_eq!(*found, a.id());
        }
        other => panic!("expected an identity mismatch, got {other}"),
    }
    assert!(err.to_string().contains(&c.id().to_string()), "{err}");
    let e = server_reports_failure(&server).await;
    assert!(matches!(e, NetError::Handshake { .. }), "{e}");
}

#[tokio::test]
async fn forged_client_certificate_is_refused() {
    let (a, b, s) = (key(6), key(7), key(8));
    let server = bind(&s);
    let addr = server.local_addr().unwrap();

    // Control: the same hand-built client with an honest certificate gets in.
    let (endpoint, config) = raw_client(Some(certified_key(&a).unwrap()));
    let conn = within(endpoint.connect_with(config, addr, SERVER_NAME).unwrap())
        .await
        .unwrap();
    assert_eq!(within(server.accept()).await.unwrap().unwrap().peer, a.id());
    conn.close(0u32.into(), b"");

    // cert(A) signed with key(B): claims A without holding A's key.
    let (endpoint, config) = raw_client(Some(forged(&a, &b)));
    let client_view = raw_dial_is_refused(&endpoint, config, addr).await;
    let e = server_reports_failure(&server).await;
    let text = e.to_string().to_lowercase();
    assert!(
        text.contains("signature"),
        "server: {e}; client: {client_view}"
    );
}

#[tokio::test]
async fn forged_server_certificate_is_refused() {
    let (a, b, c) = (key(9), key(10), key(11));
    let client = bind(&c);

    // Control: the hand-built server with an honest certificate is accepted.
    let (_honest, honest_addr) = raw_server(certified_key(&a).unwrap());
    let ok = within(client.connect(honest_addr, Some(a.id())))
        .await
        .unwrap();
    assert_eq!(ok.peer, a.id());

    // cert(A) signed with key(B).
    let (_forger, forger_addr) = raw_server(forged(&a, &b));
    for expect in [None, Some(a.id())] {
        let err = within(client.connect(forger_addr, expect))
            .await
            .unwrap_err();
        eprintln!("{err}");
        match &err {
            NetError::Handshake { reason, .. } => {
                assert!(reason.to_lowercase().contains("signature"), "{err}")
            }
            other => panic!("expected a handshake failure, got {other}"),
        }
    }
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let server = bind(&key(12));
    let addr = server.local_addr().unwrap();
    let (endpoint, config) = raw_client(None);
    raw_dial_is_refused(&endpoint, config, addr).await;
    let e = server_reports_failure(&server).await;
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test]
async fn non_ed25519_certificates_are_refused() {
    // An ECDSA client certificate.
    let server = bind(&key(13));
    let addr = server.local_addr().unwrap();
    let (endpoint, config) = raw_client(Some(ecdsa_certified()));
    raw_dial_is_refused(&endpoint, config, addr).await;
    assert!(matches!(
        server_reports_failure(&server).await,
        NetError::Handshake { .. }
    ));

    // An ECDSA server certificate.
    let client = bind(&key(14));
    let (_server, server_addr) = raw_server(ecdsa_certified());
    let err = within(client.connect(server_addr, None)).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, NetError::Handshake { .. }), "{err}");
}

#[tokio::test]
async fn inbound_limit_refuses_extra_connections() {
    let limits = Limits {
        max_inbound: 1,
        ..Limits::default()
    };
    let server = Transport::bind(localhost(), &key(15), limits).unwrap();
    let addr = server.local_addr().unwrap();
    let (c1, c2, c3) = (bind(&key(16)), bind(&key(17)), bind(&key(18)));

    let first = within(c1.connect(addr, None)).await.unwrap();
    let first_in = within(server.accept()).await.unwrap().unwrap();
    assert_eq!(first_in.peer, c1.id());

    let err = within(c2.connect(addr, None)).await.unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(matches!(
        within(server.accept()).await,
        Some(Err(NetError::TooManyInbound { max: 1, .. }))
    ));
    // The first connection is unaffected.
    assert!(first.conn.close_reason().is_none());

    // Once the first one is gone, the slot is free again.
    drop(first_in);
    let third = within(c3.connect(addr, None)).await.unwrap();
    assert_eq!(third.peer, server.id());
    assert_eq!(
        within(server.accept()).await.unwrap().unwrap().peer,
        c3.id()
    );
}

#[tokio::test]
async fn self_connection_and_silent_peer() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let t = Transport::bind(localhost(), &key(19), limits).unwrap();
    let own = t.local_addr().unwrap();
    let err = within(t.connect(own, None)).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, NetError::SelfConnection { .. }), "{err}");

    // A UDP socket that never answers: the handshake times out.
    let silent = std::net::UdpSocket::bind(localhost()).unwrap();
    let err = within(t.connect(silent.local_addr().unwrap(), None))
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn close_ends_accept_and_connect() {
    let t = bind(&key(20));
    let other = bind(&key(21));
    t.close();
    assert!(within(t.accept()).await.is_none());
    assert!(matches!(
        within(t.connect(other.local_addr().unwrap(), None)).await,
        Err(NetError::Closed)
    ));
}

#[test]
fn bind_outside_a_runtime_is_an_error() {
    let err = Transport::bind(localhost(), &key(22), Limits::default()).unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[test]
fn node_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node_key");
    let first = NodeKey::load_or_create(&path).unwrap();
    let second = NodeKey::load_or_create(&path).unwrap();
    assert_eq!(first.id(), second.id());
    assert_eq!(NodeKey::load(&path).unwrap().id(), first.id());
    assert_ne!(NodeKey::generate().unwrap().id(), first.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Only the key file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("node_key")]);

    for (contents, expect) in [
        (&b"not a key at all"[..], "64 hex"),
        (&b""[..], "empty"),
        (&b"\xff\xfe\x00garbage"[..], "not text"),
        (&[b'a'; 1000][..], "too large"),
        (&b"zz"[..].repeat(32)[..], "64 hex"),
    ] {
        let bad = dir.path().join("bad_key");
        std::fs::write(&bad, contents).unwrap();
        let err = NodeKey::load_or_create(&bad).unwrap_err();
        eprintln!("{err}");
        assert!(matches!(err, NetError::KeyFile { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("damaged") && text.contains(expect), "{text}");
        // The damaged file is left as it was.
        assert_eq!(std::fs::read(&bad).unwrap(), contents);
    }

    let err = NodeKey::load_or_create(&dir.path().join("missing/dir/node_key")).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, NetError::Io { .. }), "{err}");
}

#[test]
fn peer_addr_parsing() {
    let id = key(23).id();
    for text in [
        "127.0.0.1:9000".to_string(),
        format!("{id}@127.0.0.1:9000"),
        "[::1]:9000".to_string(),
        format!("{id}@[::1]:65535"),
    ] {
        let parsed: PeerAddr = text.parse().unwrap();
        assert_eq!(parsed.to_string(), text);
    }
    let p: PeerAddr = format!("{id}@localhost:8333").parse().unwrap();
    assert_eq!(p.id, Some(id));
    assert_eq!(p.addr, "127.0.0.1:8333".parse().unwrap());
    assert_eq!(p.to_string(), format!("{id}@127.0.0.1:8333"));

    for (bad, hint) in [
        ("", "empty"),
        ("127.0.0.1", "PORT"),
        ("127.0.0.1:0", "port 0"),
        ("127.0.0.1:99999", "port number"),
        ("127.0.0.1:x", "port number"),
        ("example.com:9000", "not an IP address"),
        ("::1:9000", "brackets"),
        (":9000", "missing host"),
        ("abc@127.0.0.1:9000", "64 hex"),
    ] {
        let err = bad.parse::<PeerAddr>().unwrap_err();
        eprintln!("{err}");
        let text = err.to_string();
        assert!(matches!(err, NetError::BadAddress { .. }), "{text}");
        assert!(text.contains(hint), "{bad:?}: {text}");
    }

    let parsed: NodeId = id.to_string().parse().unwrap();
    assert_eq!(parsed, id);
    assert!(id.to_string().to_uppercase().parse::<NodeId>().is_ok());
}
