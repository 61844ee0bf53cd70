//! The API client the CLI uses when a node already runs on its data dir: found through
//! `node.json`, authenticated with its token, errors turned back into [`ApiError`]s.

use super::error::ApiError;
use super::server::NodeFile;
use crate::core::params::Network;
use axum::http::StatusCode;
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
    /// The node running on `data_dir`, if one answers. A `node.json` left behind by a node
    /// that was killed (nothing listening) counts as no node.
    pub async fn discover(data_dir: &Path, network: Network) -> Result<Option<ApiClient>, String> {
        let Some(file) = NodeFile::read(data_dir)? else {
            return Ok(None);
        };
        if file.network != network.name() {
            return Err(format!(
                "the node running on {} is on {}, not {network}",
                data_dir.display(),
                file.network
            ));
        }
        let client = ApiClient::new(&file)?;
        match client
            .http
            .get(format!("{}/info", client.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(_) => Ok(Some(client)),
            Err(e) if e.is_connect() => Ok(None),
            Err(e) => Err(format!(
                "a node runs on {} (node.json) but its API at {} does not answer: {e}",
                data_dir.display(),
                file.api
            )),
        }
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

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        answer(req.send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        answer(req.send().await).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        let req = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        answer(req.send().await).await
    }

    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value, ApiError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        answer(req.send().await).await
    }
}

async fn answer(r: Result<reqwest::Response, reqwest::Error>) -> Result<Value, ApiError> {
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
        return Ok(body);
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
