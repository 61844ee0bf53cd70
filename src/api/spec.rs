//! What every operation of the OpenAPI document shares, added after the routes' annotations are
//! collected: the bearer scheme, the error answers any request can get (from the host check,
//! the limits, the token check and the node), and the links between operations that let a
//! client (or Schemathesis' stateful phase) follow an answer to the next request.

use serde_json::{Map, Value, json};

/// The error answers shared by many operations: name in `components/responses`, status, and
/// what it means.
const SHARED: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "The path, query or body is malformed (`bad_json`, `bad_query`, `bad_address`, \
         `bad_txid`, …); nothing changed",
    ),
    (
        "Unauthorized",
        "401",
        "`unauthorized`: no token, or a wrong one (answered after a short delay)",
    ),
    (
        "BadHost",
        "403",
        "`bad_host`: the Host header does not name this machine",
    ),
    (
        "Timeout",
        "408",
        "`timeout`: the request or its body took too long",
    ),
    (
        "TooLarge",
        "413",
        "`too_large`: the body is over the endpoint's limit",
    ),
    (
        "Internal",
        "500",
        "The node failed (`internal`, `storage`); the request may not have been applied",
    ),
    (
        "Unavailable",
        "503",
        "`busy` (too many requests or connections; try again shortly) or `stopped`",
    ),
];

/// A link's name, the operation it leads to, and `parameter=expression` taking its parameter
/// from the answer.
type Link = (&'static str, &'static str, &'static str);

/// Links: from (path, method, status) to the operations its answer leads to.
const LINKS: &[(&str, &str, &str, &[Link])] = &[
    (
        "/transactions/new",
        "post",
        "201",
        &[
            ("GetTransaction", "tx", "txid=$response.body#/txid"),
            (
                "GetConfirmations",
                "confirmations",
                "txid=$response.body#/txid",
            ),
        ],
    ),
    (
        "/wallet/send",
        "post",
        "200",
        &[
            ("GetTransaction", "tx", "txid=$response.body#/txid"),
            (
                "GetConfirmations",
                "confirmations",
                "txid=$response.body#/txid",
            ),
        ],
    ),
    (
        "/mine",
        "post",
        "200",
        &[("GetTip", "block", "id=$response.body#/tip")],
    ),
    (
        "/mine",
        "post",
        "202",
        &[
            ("GetJob", "job", "id=$response.body#/id"),
            ("CancelJob", "cancel_job", "id=$response.body#/id"),
        ],
    ),
    (
        "/blocks",
        "post",
        "200",
        &[("GetBlock", "block", "id=$response.body#/hash")],
    ),
    (
        "/wallet/address",
        "post",
        "200",
        &[
            ("GetBalance", "balance", "address=$response.body#/address"),
            (
                "GetCoins",
                "address_utxos",
                "address=$response.body#/address",
            ),
            (
                "GetHistory",
                "address_history",
                "address=$response.body#/address",
            ),
        ],
    ),
    (
        "/info",
        "get",
        "200",
        &[("GetTip", "block", "id=$response.body#/tip")],
    ),
];

/// Adds the shared parts to a document generated from the routes.
pub fn complete(doc: &mut Value) {
    let responses: Map<String, Value> = SHARED
        .iter()
        .map(|(name, _, description)| {
            (
                name.to_string(),
                json!({
                    "description": description,
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
                }),
            )
        })
        .collect();
    doc["components"]["responses"] = Value::Object(responses);
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The token in the data dir's node.json (a new one each start)",
        }
    });
    widths(doc);
    // Fee rates in base units per byte: the node keeps them per 1,000 bytes, in a u64.
    for body in ["SendOne", "SendMany", "BuildRequest"] {
        let rate = &mut doc["components"]["schemas"][body]["properties"]["fee_rate"];
        if rate.is_object() {
            rate["maximum"] = json!(MAX_FEE_RATE);
        }
    }
    // Mining threads: at most four per core of this machine.
    let max = crate::node::max_threads();
    for body in ["MineRequest", "MiningRequest"] {
        let threads = &mut doc["components"]["schemas"][body]["properties"]["threads"];
        if threads.is_object() {
            threads["maximum"] = json!(max);
        }
    }
    addresses(doc);
    if let Some(schemas) = doc["components"]["schemas"].as_object().cloned() {
        optional_bodies(doc, &schemas);
    }
    // The stream's events are the `Event` schema, each as the JSON of one `data:` line.
    let stream = &mut doc["paths"]["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
        ["schema"];
    if stream.is_object() {
        stream["contentSchema"] = json!({ "$ref": "#/components/schemas/Event" });
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            shared_errors(path, op);
            describe_answers(op);
            for (from, m, status, links) in LINKS {
                if from == path && m == method {
                    let r = &mut op["responses"][*status];
                    for (name, target, param) in links.iter() {
                        let (p, expr) = param.split_once('=').unwrap_or((param, ""));
                        r["links"][*name] = json!({
                            "operationId": target,
                            "parameters": { p: expr },
                        });
                    }
                }
            }
        }
    }
}

/// The shared errors an operation can answer with.
fn shared_errors(path: &str, op: &mut Value) {
    let token = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    let has_input = op.get("requestBody").is_some()
        || op["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["in"] != "header"));
    let body = op.get("requestBody").is_some();
    let mut wanted = vec!["BadHost", "Internal", "Unavailable"];
    // The long poll and the event stream have no deadline; everything else does.
    if path != "/events" && path != "/blocks/wait" {
        wanted.push("Timeout");
    }
    if has_input {
        wanted.push("BadRequest");
    }
    if token {
        wanted.push("Unauthorized");
    }
    if body {
        wanted.push("TooLarge");
    }
    for name in wanted {
        let Some((_, status, _)) = SHARED.iter().find(|(n, _, _)| *n == name) else {
            continue;
        };
        let r = &mut op["responses"][*status];
        if r.is_null() {
            *r = json!({ "$ref": format!("#/components/responses/{name}") });
        }
    }
}

/// Every answer says what it is (an annotation without a description says the operation's
/// summary); a binary body is a string of bytes, not an array of numbers.
fn describe_answers(op: &mut Value) {
    let summary = op["summary"].as_str().unwrap_or("The answer").to_string();
    if let Some(responses) = op["responses"].as_object_mut() {
        for r in responses.values_mut() {
            if r.get("description").and_then(Value::as_str) == Some("") {
                r["description"] = Value::String(summary.clone());
            }
        }
    }
    if let Some(bin) = op
        .get_mut("requestBody")
        .and_then(|b| b.get_mut("content"))
        .and_then(|c| c.get_mut("application/octet-stream"))
    {
        bin["schema"] = json!({ "type": "string", "format": "binary" });
    }
}

/// Every integer says its real range: the server's unsigned fields take 0 to 2^32-1 or 2^64-1.
/// utoipa writes them as `int32`/`int64`, whose ranges are signed, so the format goes and the
/// range is said with `minimum` and `maximum` alone (there is no standard unsigned format).
fn widths(v: &mut Value) {
    match v {
        Value::Object(o) => {
            // utoipa gives unsigned fields a minimum of 0 (or the one annotated).
            let unsigned = o.get("minimum").and_then(Value::as_u64).is_some();
            let integer = o.get("type") == Some(&json!("integer"))
                || o.get("type") == Some(&json!(["integer", "null"]));
            let max = match o.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(u64::from(u32::MAX)),
                Some("int64") if unsigned => Some(u64::MAX),
                // An annotated minimum drops utoipa's format: every such field is a u64 or
                // usize (the one u32 with a default keeps its format).
                None if unsigned && integer => Some(u64::MAX),
                _ => None,
            };
            if let Some(max) = max {
                o.remove("format");
                o.entry("maximum").or_insert(json!(max));
            }
            o.values_mut().for_each(widths);
        }
        Value::Array(a) => a.iter_mut().for_each(widths),
        _ => {}
    }
}

/// The highest fee rate a request may name, in base units per byte.
pub const MAX_FEE_RATE: u64 = u64::MAX / 1_000;

/// What an address is, for its schemas.
const ADDRESS: &str = "An address: bech32m with the network's prefix (`ctrt` on regtest, `ct` \
    on devnet), `1`, then 40 characters (a version byte 0 and the 20-byte key hash, then the \
    checksum), like ctrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqz7ctn5";

/// Addresses (parameters and properties named `address`, and `change`) have the `address` format, which a
/// client can generate or check. (No pattern: one would pass strings whose checksum is wrong.)
fn addresses(doc: &mut Value) {
    fn mark(schema: &mut Value) {
        let address = json!({ "type": "string", "format": "address", "description": ADDRESS });
        if schema["type"] == "string" {
            schema["format"] = json!("address");
            if schema.get("description").is_none() {
                schema["description"] = json!(ADDRESS);
            }
        } else if schema["type"] == json!(["string", "null"]) {
            // An address or `null` (as leaving it out): the format belongs to the string.
            let description = schema.get("description").cloned();
            *schema = json!({ "anyOf": [address, { "type": "null" }] });
            if let Some(d) = description {
                schema["description"] = d;
            }
        }
    }
    // (`get_mut`, not indexing: indexing a missing key would add it as `null`.)
    for op in operations(doc) {
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in params.into_iter().flatten() {
            if p["name"] == "address"
                && let Some(schema) = p.get_mut("schema")
            {
                mark(schema);
            }
        }
    }
    for schema in doc["components"]["schemas"]
        .as_object_mut()
        .into_iter()
        .flat_map(|s| s.values_mut())
    {
        // `change`: where a build's change goes.
        for name in ["address", "change"] {
            if let Some(a) = schema.get_mut("properties").and_then(|p| p.get_mut(name)) {
                mark(a);
            }
        }
    }
}

/// A body whose fields are all optional may be left out (the server reads no body as `{}`).
fn optional_bodies(doc: &mut Value, schemas: &Map<String, Value>) {
    for op in operations(doc) {
        let Some(body) = op.get_mut("requestBody") else {
            continue;
        };
        let target = body["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas.get(name));
        let all_optional = |s: &Value| {
            s["properties"].is_object() && s["required"].as_array().is_none_or(Vec::is_empty)
        };
        if target.is_some_and(all_optional) {
            body["required"] = json!(false);
        }
    }
}

/// Every operation of the document, to change.
pub(super) fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
        .flat_map(|item| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::FeeRate;

    #[test]
    fn the_documented_fee_rate_range_is_the_one_taken() {
        assert!(FeeRate::parse_per_byte(MAX_FEE_RATE).is_ok());
        assert!(FeeRate::parse_per_byte(MAX_FEE_RATE + 1).is_err());
        assert!(FeeRate::parse_per_byte(1).is_ok());
    }
}
