//! What a command prints: one of the API's types, the same whether the command ran on the data
//! dir or through a running node's API. Text comes from the types' `Display`; `--json` prints
//! the type as the API sends it (`chain info` keeps the chain's fields only, so that its JSON is
//! the same with or without a running node).

use crate::api::types as t;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;

/// A command's answer.
pub enum Answer {
    Address(t::AddressView),
    Balance(t::WalletBalance),
    History(t::WalletHistory),
    Mined(t::Mined),
    Sent(t::Sent),
    Info(Box<t::Info>),
    Block(t::BlockView),
    Tx(t::TxView),
    Validation(t::Validation),
    Exported(Exported),
    Imported(t::Imported),
    Peers(t::Peers),
    Registered(t::Registered),
    Unbanned(t::Unbanned),
}

/// `chain export`: blocks written to a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exported {
    pub blocks: u64,
    pub file: String,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exported {} blocks to {}", self.blocks, self.file)
    }
}

impl Answer {
    /// The process exit code: 1 for a chain that failed validation, else 0.
    pub fn exit_code(&self) -> i32 {
        match self {
            Answer::Validation(v) if !v.valid => 1,
            _ => 0,
        }
    }

    /// The JSON `--json` prints.
    pub fn json(&self) -> Value {
        fn v<T: Serialize>(x: &T) -> Value {
            serde_json::to_value(x).unwrap_or(Value::Null)
        }
        match self {
            Answer::Address(a) => v(a),
            Answer::Balance(a) => v(a),
            Answer::History(a) => v(a),
            Answer::Mined(a) => v(a),
            Answer::Sent(a) => v(a),
            Answer::Info(i) => json!({
                "network": i.network, "height": i.height, "tip": i.tip, "work": i.work,
                "difficulty": i.difficulty, "bits": i.bits, "mempool": i.mempool,
            }),
            Answer::Block(a) => v(a),
            Answer::Tx(a) => v(a),
            Answer::Validation(a) => v(a),
            Answer::Exported(a) => v(a),
            Answer::Imported(a) => v(a),
            Answer::Peers(a) => v(a),
            Answer::Registered(a) => v(a),
            Answer::Unbanned(a) => v(a),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Address(a) => a.fmt(f),
            Answer::Balance(a) => a.fmt(f),
            Answer::History(a) => a.fmt(f),
            Answer::Mined(a) => a.fmt(f),
            Answer::Sent(a) => a.fmt(f),
            Answer::Info(a) => a.fmt(f),
            Answer::Block(a) => a.fmt(f),
            Answer::Tx(a) => a.fmt(f),
            Answer::Validation(a) => a.fmt(f),
            Answer::Exported(a) => a.fmt(f),
            Answer::Imported(a) => a.fmt(f),
            Answer::Peers(a) => a.fmt(f),
            Answer::Registered(a) => a.fmt(f),
            Answer::Unbanned(a) => a.fmt(f),
        }
    }
}
