//! The REST/JSON API: an axum server on 127.0.0.1 that lets scripts and other programs do what
//! a person does in the dashboard, through the node handle only. It owns `node.json` (the
//! address and bearer token a running node leaves in its data dir), authentication, request
//! limits (connection cap, timeouts, limits on expensive reads), background jobs, JSON errors
//! and metrics; and the client the CLI uses to drive a running node.

pub mod client;
pub mod conn;
pub mod error;
pub mod events;
pub(crate) mod jobs;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod views;

pub use conn::ApiLimits;
pub use error::ApiError;
pub use server::{ApiContext, ApiServer, NodeFile, StartError, node_file_path};

use serde_json::{Value, json};

/// `GET /openapi.json`: the route table as an OpenAPI 3.1 description.
pub fn openapi_json() -> Value {
    let mut paths = serde_json::Map::new();
    for r in routes::ROUTES {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": { "description": "JSON answer" },
                "4XX": { "description": "{\"error\": \"...\", \"code\": \"...\"}; nothing changed" }
            }
        });
        if r.token {
            op["security"] = json!([{ "bearer": [] }]);
            op["responses"]["401"] = json!({ "description": "missing or wrong token" });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "chain-tui node API", "version": env!("CARGO_PKG_VERSION") },
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } },
        "paths": paths,
    })
}
