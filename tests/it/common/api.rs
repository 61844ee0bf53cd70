//! The REST API harness: a regtest node with its network part, a wallet and its API on
//! 127.0.0.1:0, a client that sends with or without the token, and the error-answer check.

use crate::common::net::{TestNode, localhost, within};
use chain_tui::api::{ApiContext, ApiLimits, ApiServer};
use chain_tui::core::Address;
use chain_tui::core::hash::BlockHash;
use chain_tui::core::params::Network;
use chain_tui::wallet::Wallet;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A node with its network part and its API on 127.0.0.1:0.
pub struct Api {
    pub tn: TestNode,
    pub server: ApiServer,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub wallet: Arc<Mutex<Wallet>>,
}

/// Status and JSON body of an answer.
pub type Answer = (u16, Value);

/// A node with its API (with `limits`) on 127.0.0.1:0, and a wallet.
pub async fn start_with(limits: ApiLimits) -> Api {
    let tn = TestNode::new().await;
    let wallet = Wallet::open_or_create(tn.dir.path(), Network::Regtest, None).expect("wallet");
    let wallet = Arc::new(Mutex::new(wallet));
    let ctx = ApiContext {
        node: tn.node.clone(),
        p2p: Some(tn.net.clone()),
        wallet: Ok(wallet.clone()),
        mine_threads: 1,
    };
    let server = within("API start", ApiServer::start_with(ctx, localhost(), limits))
        .await
        .expect("API starts");
    Api {
        base: format!("http://{}", server.addr()),
        token: server.token().to_string(),
        server,
        tn,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        wallet,
    }
}

/// Sends `r`: the status and the JSON body (a body that is not JSON as a string).
pub async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let resp = within("API answer", r.send()).await.expect("API answers");
    let status = resp.status().as_u16();
    let text = within("API answer's body", resp.text())
        .await
        .expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    (status, v)
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    pub async fn get(&self, path: &str) -> Answer {
        answer(self.http.get(self.url(path))).await
    }
    pub async fn get_auth(&self, path: &str) -> Answer {
        answer(self.http.get(self.url(path)).bearer_auth(&self.token)).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        answer(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.token)
                .json(&body),
        )
        .await
    }
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        answer(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }
    /// The JSON of a GET that must succeed.
    pub async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }
    pub fn address(&self) -> Address {
        self.wallet.lock().unwrap().receive_address()
    }
    /// What a refused request must leave as it was.
    pub fn state(&self) -> (u64, BlockHash, usize, usize, usize) {
        let s = self.tn.node.snapshot();
        let v = self.tn.net.view();
        (
            s.height,
            s.tip,
            s.mempool_count,
            v.peers.len(),
            self.wallet.lock().unwrap().addresses().len(),
        )
    }
    pub async fn delete(&self, path: &str) -> Answer {
        answer(self.http.delete(self.url(path)).bearer_auth(&self.token)).await
    }
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
    pub async fn stop(self) {
        self.server.shutdown().await;
        self.tn.stop().await;
    }
}

/// An error answer: status, JSON `{error, code}` with the expected code.
#[track_caller]
pub fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.0, status, "expected {status} {code}, got {a:?}");
    assert_eq!(a.1["code"], code, "expected code {code}: {a:?}");
    assert!(
        a.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an error says why: {a:?}"
    );
}
