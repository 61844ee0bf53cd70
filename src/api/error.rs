//! API errors: every failure is JSON `{"error": "...", "code": "..."}` with a status that says
//! whose fault it was (4xx: the request, nothing changed; 5xx: the node).

use crate::core::rules::TxError;
use crate::node::MempoolError;
use crate::node::NodeError;
use crate::node::ProcessError;
use crate::wallet::WalletError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failed request: status, a stable machine-readable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    /// Malformed input: bad JSON, wrong types, unparsable ids.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message, "code": self.code }));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

fn tx_error(e: &TxError) -> (StatusCode, &'static str) {
    match e {
        TxError::AlreadySpent(_) => (StatusCode::CONFLICT, "double_spend"),
        TxError::MissingInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_input"),
        TxError::BadSignature(_) | TxError::WrongKey(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature")
        }
        TxError::ImmatureCoinbase { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "immature_coinbase"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_transaction"),
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            NodeError::Mempool(m) => match m {
                MempoolError::AlreadyKnown(_) | MempoolError::AlreadyConfirmed(_) => {
                    (StatusCode::CONFLICT, "duplicate")
                }
                MempoolError::Conflict { .. } => (StatusCode::CONFLICT, "double_spend"),
                MempoolError::TooLarge(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too_large"),
                MempoolError::FeeTooLow { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "fee_too_low"),
                MempoolError::Full(_) => (StatusCode::UNPROCESSABLE_ENTITY, "mempool_full"),
                MempoolError::Coinbase => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_transaction"),
                MempoolError::Invalid(t) => tx_error(t),
            },
            NodeError::Block(p) => match p {
                ProcessError::Invalid { .. } | ProcessError::KnownInvalid(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid_block")
                }
                ProcessError::Disconnected(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "unknown_parent")
                }
                ProcessError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            },
            NodeError::Import(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chain"),
            NodeError::AlreadyMining | NodeError::Dial(_) => (StatusCode::CONFLICT, "refused"),
            NodeError::NoNetwork => (StatusCode::SERVICE_UNAVAILABLE, "no_network"),
            NodeError::Persist(_) | NodeError::Export(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "storage")
            }
            NodeError::Kernel(_)
            | NodeError::Thread(_)
            | NodeError::NodeKey(_)
            | NodeError::Listen { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            NodeError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
            NodeError::Store(_) | NodeError::DataDir { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "storage")
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> ApiError {
        let message = e.to_string();
        match e {
            WalletError::Node(n) => n.into(),
            WalletError::ZeroAmount => ApiError::bad_request("bad_amount", message),
            // A well-formed amount that no wallet could pay with its fee.
            WalletError::Overflow => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_amount", message)
            }
            WalletError::FeeRateTooLow(_) => ApiError::bad_request("bad_fee_rate", message),
            WalletError::InsufficientFunds { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_funds",
                message,
            ),
            WalletError::TooManyInputs { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_inputs", message)
            }
            WalletError::Keystore(_)
            | WalletError::Missing { .. }
            | WalletError::Damaged { .. }
            | WalletError::Altered { .. }
            | WalletError::Exposed { .. }
            | WalletError::Record { .. } => {
                ApiError::new(StatusCode::CONFLICT, "wallet_unavailable", message)
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("a background task failed: {e}"))
    }
}
