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
