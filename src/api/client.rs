//! The API client the CLI uses when a node already runs on its data dir: found through
//! `node.json` and trusted only after it proves to hold the data dir's node key, authenticated
//! with its token, errors turned back into [`ApiError`]s.

use super::error::ApiError;
use super::server::NodeFile;
use super::types;
use crate::core::params::Network;
use crate::node::{NodeKey, node_key_path};
use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A connection to a running node's API.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// The node running on `data_dir`, if one answers and proves to be that data dir's own
    /// node: `node.json` must name the data dir's node id (the public key of its `node_key`),
    /// and the API must sign a fresh random challenge with that key. A `node.json` left behind
    /// by a node that was killed (nothing listening) counts as no node; one whose address now
    /// answers as another node or another program is stale too, and said so on stderr.
    pub async fn discover(data_dir: &Path, network: Network) -> Result<Option<ApiClient>, String> {
        let Some(file) = NodeFile::read(data_dir)? else {
            return Ok(None);
        };
        let stale = |why: String| {
            eprintln!(
                "warning: {} is stale: {why}; treating the node as not running",
                super::node_file_path(data_dir).display()
            );
            Ok(None)
        };
        let own = match NodeKey::load(&node_key_path(data_dir)) {
            Ok(k) => k.id(),
            Err(e) => return stale(format!("the data dir has no usable node key ({e})")),
        };
        if file.node_id != Some(own) {
            return stale(format!(
                "it does not name this data dir's node {}",
                own.short()
            ));
        }
        if file.network != network.name() {
            return Err(format!(
                "the node running on {} is on {}, not {network}",
                data_dir.display(),
                file.network
            ));
        }
        let client = ApiClient::new(&file)?;
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).map_err(|e| format!("no system randomness: {e}"))?;
        let answer = client
            .http
            .get(format!(
                "{}/info?challenge={}",
                client.base,
                hex::encode(challenge)
            ))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let resp = match answer {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "a node runs on {} (node.json) but its API at {} does not answer: {e}",
                    data_dir.display(),
                    file.api
                ));
            }
        };
        let body: Option<types::Info> = resp.json().await.ok();
        let proof = body
            .as_ref()
            .and_then(|b| b.identity_proof.as_deref())
            .and_then(|p| hex::decode(p).ok())
            .unwrap_or_default();
        if !own.verify_api_challenge(&file.api, &challenge, &proof) {
            let who = match body.as_ref().and_then(|b| b.node_id.as_deref()) {
                Some(id) if id != own.to_string() => format!("another node ({id})"),
                _ => "another node or program".to_string(),
            };
            return stale(format!(
                "the API at {} is {who}, not this data dir's node {}",
                file.api,
                own.short()
            ));
        }
        Ok(Some(client))
    }

    /// The node whose API is at `url` (`http://HOST:PORT`), with `token` for writes (and for
    /// reads on a node that asks for it). It must answer `/info` as a chain-tui node; its
    /// network is returned with it. Unlike [`ApiClient::discover`], nothing proves which node
    /// answers: the URL is trusted as given.
    pub async fn remote(url: &str, token: Option<String>) -> Result<(ApiClient, Network), String> {
        let hostport = url
            .trim()
            .strip_prefix("http://")
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| format!("--node {url:?}: write the node's API as http://HOST:PORT"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let client = ApiClient {
            base: format!("http://{hostport}"),
            token: token.unwrap_or_default(),
            http,
        };
        let info: types::Info = client.get("/info").await.map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                format!(
                    "the node at {url} needs its token for reads: --token-file FILE (its \
                     node.json, or a file with the token)"
                )
            } else {
                format!("no chain-tui node answered at {url}: {e}")
            }
        })?;
        let network = [Network::Regtest, Network::Devnet]
            .into_iter()
            .find(|n| n.name() == info.network)
            .ok_or_else(|| format!("the node at {url} runs {:?}", info.network))?;
        Ok((client, network))
    }

    pub fn new(file: &NodeFile) -> Result<ApiClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(ApiClient {
            base: format!("http://{}", file.api),
            token: file.token.clone(),
            http,
        })
    }

    /// Where the API is: `http://HOST:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, answered as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(READ_TIMEOUT)
            .bearer_auth(&self.token);
        answer(req.send().await).await
    }

    /// A paged list (`/wallet/history`, `/mempool`, an address's coins or history) read to its
    /// end: every page's rows in one answer.
    pub async fn get_pages<T: DeserializeOwned + Paged>(&self, path: &str) -> Result<T, ApiError> {
        let mut all: T = self.get(path).await?;
        let mut next = all.next();
        let mut last = 0;
        while let Some(offset) = next {
            // A page must move on, or a server's answers could loop forever.
            if offset <= last {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_answer",
                    format!("the node's pages of {path} do not move on (next {offset})"),
                ));
            }
            last = offset;
            let sep = if path.contains('?') { '&' } else { '?' };
            let page: T = self.get(&format!("{path}{sep}offset={offset}")).await?;
            next = page.next();
            all.append(page);
        }
        Ok(all)
    }

    /// `GET /events`, from the event after number `after` (`None`: from now on).
    pub async fn events(&self, after: Option<u64>) -> Result<EventStream, ApiError> {
        let req = match after {
            Some(n) => self
                .http
                .get(format!("{}/events", self.base))
                .header("Last-Event-ID", n.to_string()),
            None => self.http.get(format!("{}/events?backlog=false", self.base)),
        }
        .bearer_auth(&self.token);
        let resp = req.send().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unreachable",
                format!("the node's API did not answer: {e}"),
            )
        })?;
        if !resp.status().is_success() {
            return Err(answer::<Value>(Ok(resp)).await.err().unwrap_or_else(|| {
                ApiError::new(StatusCode::BAD_GATEWAY, "bad_answer", "GET /events failed")
            }));
        }
        Ok(EventStream {
            resp,
            buf: String::new(),
        })
    }

    /// `POST path` with a JSON body, answered as `T`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        answer(req.send().await).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let req = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        answer(req.send().await).await
    }

    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ApiError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        answer(req.send().await).await
    }
}

/// What `GET /events` delivers, one frame at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Streamed {
    /// Event number `n`.
    Event(u64, super::events::Event),
    /// Some events are gone (the client was too slow, or resumed after the backlog).
    Missed,
    /// Event number `n`, of a kind this build cannot read (a newer node's): skipped.
    Other(u64),
}

/// An open `GET /events` stream.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

/// Longest an event stream may stay silent (the server's keep-alives come every 15 s).
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// Longest a read may take (a node that accepts connections but does not answer).
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest event frame a client holds while it waits for the frame's end.
const MAX_FRAME: usize = 1 << 20;

impl EventStream {
    /// The next event or `missed` (keep-alives are skipped); `None` when the server ends the
    /// stream.
    pub async fn next(&mut self) -> Result<Option<Streamed>, ApiError> {
        let broken = |why: String| ApiError::new(StatusCode::BAD_GATEWAY, "bad_answer", why);
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                if let Some(item) = parse_frame(&frame).map_err(broken)? {
                    return Ok(Some(item));
                }
            }
            if self.buf.len() > MAX_FRAME {
                return Err(broken(format!(
                    "an event frame longer than {MAX_FRAME} bytes"
                )));
            }
            // The server sends a keep-alive every 15 s: a stream silent for longer is dead.
            let chunk = tokio::time::timeout(STREAM_IDLE, self.resp.chunk())
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unreachable",
                        format!(
                            "the event stream was silent for {} s",
                            STREAM_IDLE.as_secs()
                        ),
                    )
                })?;
            match chunk {
                Ok(Some(c)) => self
                    .buf
                    .push_str(&String::from_utf8_lossy(&c).replace('\r', "")),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unreachable",
                        format!("the event stream broke: {e}"),
                    ));
                }
            }
        }
    }
}

/// One SSE frame: an event, `missed`, or nothing (a keep-alive comment).
fn parse_frame(frame: &str) -> Result<Option<Streamed>, String> {
    let (mut id, mut name, mut data) = (None, None, String::new());
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = value.parse::<u64>().ok(),
            "event" => name = Some(value),
            "data" => data.push_str(value),
            _ => {}
        }
    }
    match name {
        None => Ok(None),
        Some("missed") => Ok(Some(Streamed::Missed)),
        Some(name) => {
            let n = id.ok_or_else(|| format!("a {name} event without a number"))?;
            Ok(Some(match serde_json::from_str(&data) {
                Ok(e) => Streamed::Event(n, e),
                Err(_) => Streamed::Other(n),
            }))
        }
    }
}

/// A page of a list: where the next page starts, and how to add it to this one.
pub trait Paged {
    fn next(&self) -> Option<usize>;
    fn append(&mut self, page: Self);
}

impl Paged for types::WalletHistory {
    fn next(&self) -> Option<usize> {
        self.next
    }
    fn append(&mut self, page: Self) {
        self.transactions.extend(page.transactions);
        self.next = page.next;
    }
}

impl Paged for types::Mempool {
    fn next(&self) -> Option<usize> {
        self.next
    }
    fn append(&mut self, page: Self) {
        self.txs.extend(page.txs);
        self.next = page.next;
    }
}

impl Paged for types::AddressCoins {
    fn next(&self) -> Option<usize> {
        self.next
    }
    fn append(&mut self, page: Self) {
        self.coins.extend(page.coins);
        self.next = page.next;
    }
}

async fn answer<T: DeserializeOwned>(
    r: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ApiError> {
    let resp = r.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unreachable",
            format!("the node's API did not answer: {e}"),
        )
    })?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_answer",
            format!("the node's API answered {status} without JSON: {e}"),
        )
    })?;
    if status.is_success() {
        return serde_json::from_value(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_answer",
                format!("the node's API answered {status} with JSON of another shape: {e}"),
            )
        });
    }
    let message = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("the node refused the request")
        .to_string();
    // Codes are static strings on the server; keep the common ones, and the status.
    let code = match body.get("code").and_then(Value::as_str) {
        Some("not_found") => "not_found",
        Some("unauthorized") => "unauthorized",
        _ => "remote",
    };
    Err(ApiError::new(status, code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames as the server writes them: an event, `missed`, a keep-alive, and an event kind
    /// this build does not know (a newer node's), which is skipped but counted as read.
    #[test]
    fn event_frames_are_read_and_unknown_kinds_are_skipped() {
        let block = "id: 7\nevent: block_connected\ndata: {\"type\":\"block_connected\",\
                     \"hash\":\"ab\",\"height\":3}\n\n";
        assert_eq!(
            parse_frame(block),
            Ok(Some(Streamed::Event(
                7,
                super::super::events::Event::BlockConnected(super::super::events::BlockAt {
                    hash: "ab".into(),
                    height: 3
                })
            )))
        );
        assert_eq!(
            parse_frame("event: missed\ndata: {\"lost\":4}\n\n"),
            Ok(Some(Streamed::Missed))
        );
        assert_eq!(parse_frame(":\n\n"), Ok(None));
        assert_eq!(
            parse_frame("id: 9\nevent: comet\ndata: {\"type\":\"comet\"}\n\n"),
            Ok(Some(Streamed::Other(9)))
        );
        assert!(parse_frame("event: block_connected\ndata: {}\n\n").is_err());
    }
}
