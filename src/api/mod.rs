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
mod spec;
pub mod types;
pub mod views;

pub use conn::ApiLimits;
pub use error::ApiError;
pub use server::{ApiContext, ApiServer, NodeFile, StartError, node_file_path};

pub use routes::openapi_json;
