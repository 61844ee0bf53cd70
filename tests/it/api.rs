//! The REST API against real nodes on 127.0.0.1: every endpoint answers from a live node;
//! every write needs the token; bad input to each write endpoint gets the right 4xx and changes
//! nothing; eight concurrent clients submitting 1,000 transactions get each accepted once.

use crate::common::api::*;
use crate::common::net;
use crate::common::*;
use chain_tui::api::routes::route_table;
use chain_tui::api::server::AUTH_DELAY;
use chain_tui::api::{ApiLimits, NodeFile};
use chain_tui::core::Address;
use chain_tui::core::block::Block;
use chain_tui::core::hash::{BlockHash, Txid};
use chain_tui::core::merkle::{ProofStep, verify_proof};
use chain_tui::core::params::Network;
use chain_tui::core::tx::{OutPoint, Transaction};
use net::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const COIN: u64 = 100_000_000;
const FEE: u64 = 10_000;

async fn start() -> Api {
    start_with(ApiLimits::default()).await
}

fn tx_json(tx: &Transaction) -> Value {
    serde_json::to_value(chain_tui::api::views::TxJson::from_tx(tx, Network::Regtest)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_json_names_the_api_and_token_and_goes_away_on_shutdown() {
    let api = start().await;
    let dir = api.tn.dir.path().to_path_buf();
    let file = NodeFile::read(&dir).unwrap().expect("node.json written");
    assert_eq!(file.api, api.server.addr());
    assert_ne!(file.api.port(), 0, "the real port, not :0");
    assert_eq!(file.token, api.token);
    assert_eq!(file.token.len(), 64);
    assert_eq!(file.network, "regtest");
    assert_eq!(file.p2p, Some(api.tn.listen()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("node.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "node.json is private");
    }
    let info = api.ok("/info").await;
    assert_eq!(info["network"], "regtest");
    api.stop().await;
    assert!(!dir.join("node.json").exists(), "removed on clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_endpoint_answers_from_the_live_node() {
    let api = start().await;
    // Mine through the API: 12 blocks, the first two coinbases mature. (JSON has one kind of
    // number: 12.0 is the whole number 12.)
    let (s, mined) = api.post("/mine", json!({ "blocks": 12.0 })).await;
    assert_eq!(s, 200, "{mined}");
    assert_eq!(mined["blocks"].as_array().unwrap().len(), 12);
    assert_eq!(mined["height"], 12);

    let info = api.ok("/info").await;
    assert_eq!(info["height"], 12);
    assert_eq!(info["tip"], mined["tip"]);
    assert_eq!(info["peers"], 0);
    assert_eq!(info["mining"], false);

    // Paged chain.
    let page = api.ok("/chain?from=0&limit=5").await;
    let blocks = page["chain"].as_array().unwrap();
    assert_eq!(blocks.len(), 5);
    assert_eq!(blocks[0]["height"], 0);
    assert_eq!(blocks[4]["height"], 4);
    assert_eq!(page["next"], 5);
    assert_eq!(page["length"], 13);
    let last = api.ok("/chain?from=10&limit=100&hex=true").await;
    assert_eq!(last["chain"].as_array().unwrap().len(), 3);
    assert_eq!(last["next"], Value::Null);
    let hex = last["chain"][2]["hex"].as_str().unwrap();
    let b = Block::decode(&hex::decode(hex).unwrap(), usize::MAX).unwrap();
    assert_eq!(b.hash().to_string(), mined["tip"].as_str().unwrap());
    assert_error(&api.get("/chain?limit=0").await, 400, "bad_limit");
    assert_error(&api.get("/chain?from=x").await, 400, "bad_query");

    // Blocks by height and by hash.
    let b3 = api.ok("/blocks/3").await;
    let by_hash = api
        .ok(&format!("/blocks/{}", b3["hash"].as_str().unwrap()))
        .await;
    assert_eq!(b3, by_hash);
    assert_eq!(b3["confirmations"], 10);
    assert_error(&api.get("/blocks/999").await, 404, "not_found");
    assert_error(&api.get("/blocks/xyz").await, 400, "bad_id");
    assert_error(
        &api.get(&format!("/blocks/{}", "ab".repeat(32))).await,
        404,
        "not_found",
    );

    // A payment from the node's wallet, in the mempool, then mined.
    let to = address(&key(42));
    let (s, sent) = api
        .post(
            "/wallet/send",
            json!({ "address": to.encode(Network::Regtest), "amount": 3 * COIN, "fee_rate": 5 }),
        )
        .await;
    assert_eq!(s, 200, "{sent}");
    let txid = sent["txid"].as_str().unwrap().to_string();
    assert!(sent["fee"].as_u64().unwrap() > 0);
    let pool = api.ok("/mempool").await;
    assert_eq!(pool["count"], 1);
    assert_eq!(pool["txs"][0]["txid"], txid);
    assert_eq!(pool["txs"][0]["fee_rate"], 5);
    let unconfirmed = api.ok(&format!("/tx/{txid}")).await;
    assert_eq!(unconfirmed["confirmations"], 0);
    assert_eq!(unconfirmed["fee"], sent["fee"]);
    assert_error(
        &api.get(&format!("/tx/{txid}/proof")).await,
        409,
        "unconfirmed",
    );
    let (s, _) = api.post("/mine", json!({})).await;
    assert_eq!(s, 200);

    let tx = api.ok(&format!("/tx/{txid}")).await;
    assert_eq!(tx["confirmations"], 1);
    assert_eq!(tx["height"], 13);
    assert_eq!(tx["coinbase"], false);
    assert!(
        tx["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["address"] == to.encode(Network::Regtest) && o["amount"] == 3 * COIN)
    );
    let conf = api.ok(&format!("/transaction/confirmations/{txid}")).await;
    assert_eq!(conf["confirmations"], 1);
    assert_eq!(conf["block"], tx["block"]);
    assert_error(
        &api.get(&format!("/tx/{}", "cd".repeat(32))).await,
        404,
        "not_found",
    );
    assert_error(&api.get("/tx/nothex").await, 400, "bad_txid");

    // The merkle proof leads from the txid to the header's root.
    let proof = api.ok(&format!("/tx/{txid}/proof")).await;
    assert_eq!(proof["index"], 1);
    let steps: Vec<ProofStep> = proof["branch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| ProofStep {
            sibling: hex::decode(s["hash"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
            sibling_on_left: s["side"] == "left",
        })
        .collect();
    assert_eq!(steps.len(), 1);
    let block = api
        .tn
        .node
        .block(&tx["block"].as_str().unwrap().parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(proof["merkle_root"], block.header.merkle_root.to_string());
    let id: Txid = txid.parse().unwrap();
    assert!(verify_proof(&id, &steps, &block.header.merkle_root));

    // Balances: any address from the index, and the wallet's own.
    let bal = api
        .ok(&format!("/balance/{}", to.encode(Network::Regtest)))
        .await;
    assert_eq!(bal["balance"], 3 * COIN);
    assert_eq!(bal["coins"], 1);
    assert_error(&api.get("/balance/nonsense").await, 400, "bad_address");
    let wa = api.ok("/wallet/address").await;
    assert_eq!(wa["address"], api.address().encode(Network::Regtest));
    let wb = api.ok("/wallet/balance").await;
    let direct = api.wallet.lock().unwrap().balance(&api.tn.node).unwrap();
    assert_eq!(wb["confirmed"], direct.confirmed.units());
    assert_eq!(wb["immature"], direct.immature.units());
    let hist = api.ok("/wallet/history").await;
    assert!(
        hist["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == txid && t["net"].as_i64().unwrap() < 0)
    );

    // Chain check, difficulty, peers, mining.
    let (s, v) = api.get_auth("/validate").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["height"], 13);
    let d = api.ok("/difficulty").await;
    assert_eq!(d["bits"], 0x207f_ffff);
    assert_eq!(d["difficulty"], 1);
    let p = api.ok("/peers").await;
    assert_eq!(p["peers"], json!([]));
    assert_eq!(p["bans"], json!([]));
    assert_eq!(p["id"], api.tn.id().to_string());
    let m = api.ok("/mining").await;
    assert_eq!(m["mining"], false);
    assert_eq!(m["threads"], 0);

    // An external miner: take the template, solve it, submit it.
    let t = api.ok("/mining/template").await;
    assert_eq!(t["height"], 14);
    assert_eq!(t["prev"], api.tn.tip().to_string());
    assert_eq!(
        t["coinbase_address"],
        api.address().encode(Network::Regtest)
    );
    let mut b = Block::decode(
        &hex::decode(t["block_hex"].as_str().unwrap()).unwrap(),
        usize::MAX,
    )
    .unwrap();
    solve(&mut b, Network::Regtest.params());
    let (s, r) = api
        .post("/blocks", json!({ "hex": hex::encode(b.encode()) }))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["result"], "connected");
    assert_eq!(r["height"], 14);
    assert_eq!(api.tn.tip(), b.hash());
    let (s, r) = api
        .post("/blocks", json!({ "hex": hex::encode(b.encode()) }))
        .await;
    assert_eq!((s, r["result"].as_str()), (200, Some("duplicate")));
    let other = address(&key(9)).encode(Network::Regtest);
    let t2 = api.ok(&format!("/mining/template?address={other}")).await;
    assert_eq!(t2["coinbase_address"], other);
    assert_error(
        &api.get("/mining/template?address=zzz").await,
        400,
        "bad_address",
    );

    // Metrics and the OpenAPI description.
    let (s, metrics) = api.get("/metrics").await;
    assert_eq!(s, 200);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("chaintui_height 14"), "{text}");
    assert!(
        text.contains("chaintui_blocks_connected_total 14"),
        "{text}"
    );
    assert!(text.contains("chaintui_peers 0"), "{text}");
    assert!(
        text.contains("chaintui_transactions_accepted_total 1"),
        "{text}"
    );
    let spec = api.ok("/openapi.json").await;
    let routes = route_table();
    assert!(routes.len() >= 40, "{} routes", routes.len());
    for r in &routes {
        assert!(
            spec["paths"][&r.path][r.method.to_ascii_lowercase()].is_object(),
            "{} {} missing from openapi.json",
            r.method,
            r.path
        );
    }

    // Unknown paths and methods get JSON errors too.
    assert_error(&api.get("/nope").await, 404, "not_found");
    let a = answer(api.http.delete(api.url("/info"))).await;
    assert_error(&a, 405, "method_not_allowed");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_needs_the_token_and_waits_before_refusing() {
    // The delay as shipped: a wrong token waits AUTH_DELAY.
    let shipped = start().await;
    let start_at = Instant::now();
    let a = answer(shipped.http.post(shipped.url("/mine")).bearer_auth("wrong")).await;
    assert_error(&a, 401, "unauthorized");
    assert!(
        start_at.elapsed() >= AUTH_DELAY,
        "refused without the delay"
    );
    shipped.stop().await;
    // Every write route, with the delay shortened for the test.
    let delay = Duration::from_millis(40);
    let api = start_with(ApiLimits {
        auth_delay: delay,
        ..ApiLimits::default()
    })
    .await;
    let before = api.state();
    for r in route_table().iter().filter(|r| r.token) {
        let path = r
            .path
            .replace("{id}", "1")
            .replace("{txid}", &"ab".repeat(32));
        for token in [None, Some("wrong"), Some(&api.token[..63])] {
            let mut req = match r.method.as_str() {
                "GET" => api.http.get(api.url(&path)),
                "DELETE" => api.http.delete(api.url(&path)),
                _ => api.http.post(api.url(&path)).json(&json!({ "blocks": 1 })),
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let start = Instant::now();
            let a = answer(req).await;
            assert_error(&a, 401, "unauthorized");
            assert!(
                start.elapsed() >= delay,
                "{} {path}: refused without the delay",
                r.method
            );
        }
    }
    assert_eq!(api.state(), before, "nothing changed");
    // With the token, GET /mine mines one block.
    let (s, v) = api.get_auth("/mine").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["height"], before.0 + 1);
    assert_eq!(api.tn.height(), before.0 + 1);
    // Reads need no token (the event stream and the long poll answer as they go: their own
    // test reads them).
    let streams = ["/events", "/blocks/wait"];
    for r in route_table()
        .iter()
        .filter(|r| !r.token && !r.path.contains('{') && !streams.contains(&r.path.as_str()))
    {
        let (s, v) = api.get(&r.path).await;
        assert_eq!(s, 200, "GET {}: {v}", r.path);
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_must_name_this_machine_and_no_cors_is_sent() {
    let api = start().await;
    let port = api.server.addr().port();
    for host in ["evil.example", "evil.example:80", "localhost.evil.example"] {
        let a = answer(api.http.get(api.url("/info")).header("host", host)).await;
        assert_error(&a, 403, "bad_host");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let (s, _) = answer(api.http.get(api.url("/info")).header("host", host)).await;
        assert_eq!(s, 200);
    }
    let resp = api
        .http
        .get(api.url("/info"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "no CORS by default"
    );
    api.stop().await;
}

/// A transaction spending `from` (owned by `k`) to `to`, `amount` minus the fee.
fn pay_from(
    from: OutPoint,
    k: &ed25519_dalek::SigningKey,
    amount: u64,
    to: Address,
) -> Transaction {
    spend(
        Network::Regtest.params(),
        &[(from, k)],
        vec![pay(to, amount - FEE)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_every_write_endpoint_gets_a_4xx_and_changes_nothing() {
    let api = start().await;
    let owner = key(7);
    let hashes = api.tn.mine(12, address(&owner)).await;
    let coin = |i: usize| coinbase_of(&api.tn.node.block(&hashes[i]).unwrap().unwrap());
    let subsidy = 50 * COIN;
    let good = pay_from(coin(0), &owner, subsidy, address(&key(8)));
    let (s, v) = api.post("/transactions/new", tx_json(&good)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["txid"], good.txid().to_string());
    let before = api.state();

    // POST /transactions/new
    let mut bad_sig = pay_from(coin(1), &owner, subsidy, address(&key(8)));
    bad_sig.inputs[0].signature[5] ^= 1;
    let mut unknown = pay_from(coin(1), &owner, subsidy, address(&key(8)));
    unknown.inputs[0].prevout.txid = Txid([0x55; 32]);
    sign(Network::Regtest.params(), &mut unknown, &[&owner]);
    let double = pay_from(coin(0), &owner, subsidy, address(&key(9)));
    let mut wrong_types = tx_json(&good);
    wrong_types["outputs"][0]["amount"] = json!("lots");
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            api.post_raw("/transactions/new", "{").await,
            400,
            "bad_json",
        ),
        (
            api.post_raw("/transactions/new", "[1,2]").await,
            400,
            "bad_json",
        ),
        (
            api.post("/transactions/new", wrong_types).await,
            400,
            "bad_json",
        ),
        (
            api.post("/transactions/new", json!({ "hex": "zz" })).await,
            400,
            "bad_transaction",
        ),
        // Hex, but not a transaction's encoding: understood, and refused by what it says.
        (
            api.post("/transactions/new", json!({ "hex": "00" })).await,
            422,
            "bad_transaction",
        ),
        (
            api.post("/transactions/new", tx_json(&bad_sig)).await,
            422,
            "bad_signature",
        ),
        (
            api.post("/transactions/new", tx_json(&unknown)).await,
            422,
            "missing_input",
        ),
        (
            api.post("/transactions/new", tx_json(&good)).await,
            409,
            "duplicate",
        ),
        (
            api.post("/transactions/new", tx_json(&double)).await,
            409,
            "double_spend",
        ),
        (
            api.post_raw("/transactions/new", vec![b' '; 300 * 1024])
                .await,
            413,
            "too_large",
        ),
    ];
    for (a, status, code) in &cases {
        assert_error(a, *status, code);
    }
    // A transaction of the hex form is the same transaction.
    let (s, v) = api
        .post(
            "/transactions/new",
            json!({ "hex": hex::encode(good.encode()) }),
        )
        .await;
    assert_error(&(s, v), 409, "duplicate");

    // POST /wallet/send
    let to = address(&key(8)).encode(Network::Regtest);
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            api.post("/wallet/send", json!({ "address": to, "amount": "1" }))
                .await,
            400,
            "bad_json",
        ),
        (
            api.post("/wallet/send", json!({ "address": to })).await,
            400,
            "bad_json",
        ),
        (
            api.post("/wallet/send", json!({ "address": to, "amount": 0 }))
                .await,
            400,
            "bad_amount",
        ),
        // A whole number can be written 5.0, not 5.5.
        (
            api.post("/wallet/send", json!({ "address": to, "amount": 5.5 }))
                .await,
            400,
            "bad_json",
        ),
        // Well-formed, but no wallet can pay it with its fee.
        (
            api.post(
                "/wallet/send",
                json!({ "address": to, "amount": u64::MAX - 1, "fee_rate": 1 }),
            )
            .await,
            422,
            "bad_amount",
        ),
        (
            api.post("/wallet/send", json!({ "address": "ct1nope", "amount": 5 }))
                .await,
            400,
            "bad_address",
        ),
        (
            api.post(
                "/wallet/send",
                json!({ "address": to, "amount": 5, "fee_rate": 0 }),
            )
            .await,
            400,
            "bad_fee_rate",
        ),
        (
            api.post(
                "/wallet/send",
                json!({ "address": to, "amount": 1_000_000 * COIN }),
            )
            .await,
            422,
            "insufficient_funds",
        ),
    ];
    for (a, status, code) in &cases {
        assert_error(a, *status, code);
    }

    // POST /blocks
    let tip = api.tn.node.tip().unwrap();
    let mut orphan = net::block_on(
        Network::Regtest.params(),
        &tip,
        address(&owner),
        vec![],
        0,
        0,
    );
    orphan.header.prev = BlockHash([0x77; 32]);
    solve(&mut orphan, Network::Regtest.params());
    let mut unsolved = net::block_on(
        Network::Regtest.params(),
        &tip,
        address(&owner),
        vec![],
        0,
        0,
    );
    unsolve(&mut unsolved);
    let overpaid = net::block_on(
        Network::Regtest.params(),
        &tip,
        address(&owner),
        vec![],
        0,
        1,
    );
    let limit = Network::Regtest.params().max_block_size * 2 + 2048;
    let cases: Vec<(Answer, u16, &str)> = vec![
        (api.post_raw("/blocks", "not json").await, 400, "bad_json"),
        (
            api.post("/blocks", json!({ "hex": 5 })).await,
            400,
            "bad_json",
        ),
        (
            api.post("/blocks", json!({ "hex": "0102" })).await,
            422,
            "bad_block",
        ),
        (
            api.post("/blocks", json!({ "hex": hex::encode(orphan.encode()) }))
                .await,
            422,
            "unknown_parent",
        ),
        (
            api.post("/blocks", json!({ "hex": hex::encode(unsolved.encode()) }))
                .await,
            422,
            "invalid_block",
        ),
        (
            api.post("/blocks", json!({ "hex": hex::encode(overpaid.encode()) }))
                .await,
            422,
            "invalid_block",
        ),
        (
            api.post_raw("/blocks", vec![b' '; limit]).await,
            413,
            "too_large",
        ),
    ];
    for (a, status, code) in &cases {
        assert_error(a, *status, code);
    }

    // Mining, peers, import.
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            api.post("/mine", json!({ "blocks": "x" })).await,
            400,
            "bad_json",
        ),
        (
            api.post("/mine", json!({ "blocks": 0 })).await,
            400,
            "bad_blocks",
        ),
        (
            api.post("/mine", json!({ "blocks": 1, "threads": 0 }))
                .await,
            400,
            "bad_threads",
        ),
        (
            api.post("/mine", json!({ "blocks": 1, "extra": 1 })).await,
            400,
            "bad_json",
        ),
        (
            api.post("/mining", json!({ "mining": "yes" })).await,
            400,
            "bad_json",
        ),
        (
            api.post("/mining", json!({ "mining": true, "threads": 0 }))
                .await,
            400,
            "bad_threads",
        ),
        (
            api.post("/nodes/register", json!({ "nodes": ["nonsense"] }))
                .await,
            400,
            "bad_address",
        ),
        (
            api.post("/nodes/register", json!({ "nodes": [] })).await,
            400,
            "bad_nodes",
        ),
        (
            api.post("/peers/unban", json!({ "id": "ab".repeat(32) }))
                .await,
            404,
            "not_found",
        ),
        (api.post("/peers/unban", json!({})).await, 400, "bad_json"),
        (
            api.post_raw("/chain/import", "garbage").await,
            422,
            "invalid_chain",
        ),
    ];
    for (a, status, code) in &cases {
        assert_error(a, *status, code);
    }

    assert_eq!(api.state(), before, "no refused request changed anything");
    assert_eq!(api.tn.node.snapshot().mining_threads, 0);
    assert_eq!(api.get_auth("/validate").await.1["valid"], true);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_submit_1000_transactions_each_accepted_once_and_all_mined() {
    let api = start().await;
    let owner = key(7);
    let hashes = api.tn.mine(11, address(&owner)).await;
    // Fan one mature coinbase out to 1,000 coins of the owner.
    let first = coinbase_of(&api.tn.node.block(&hashes[0]).unwrap().unwrap());
    let each = 4_000_000;
    let fan = spend(
        Network::Regtest.params(),
        &[(first, &owner)],
        (0..1000).map(|_| pay(address(&owner), each)).collect(),
    );
    api.tn.node.submit_tx(fan.clone(), false).await.unwrap();
    api.tn.mine(1, address(&key(1))).await;
    let fan_id = fan.txid();
    let txs: Vec<Transaction> = (0..1000u32)
        .map(|vout| {
            pay_from(
                OutPoint { txid: fan_id, vout },
                &owner,
                each,
                address(&key((vout % 200) as u8 + 20)),
            )
        })
        .collect();
    // Every transaction goes to two of the eight clients: one is accepted, one is a duplicate.
    let mut tasks = Vec::new();
    for client in 0..8usize {
        let (http, url, token) = (
            reqwest::Client::builder().no_proxy().build().unwrap(),
            api.url("/transactions/new"),
            api.token.clone(),
        );
        let mine: Vec<(usize, Value)> = txs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 8 == client || (i + 1) % 8 == client)
            .map(|(i, t)| (i, tx_json(t)))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (i, body) in mine {
                let a = answer(http.post(&url).bearer_auth(&token).json(&body)).await;
                out.push((i, a));
            }
            out
        }));
    }
    let mut accepted = vec![0u32; txs.len()];
    let mut duplicate = vec![0u32; txs.len()];
    for t in tasks {
        for (i, (status, v)) in within("clients", t).await.unwrap() {
            match status {
                201 => {
                    assert_eq!(v["txid"], txs[i].txid().to_string());
                    accepted[i] += 1;
                }
                409 => {
                    assert_eq!(v["code"], "duplicate", "{v}");
                    duplicate[i] += 1;
                }
                other => panic!("transaction {i}: unexpected {other} {v}"),
            }
        }
    }
    assert!(
        accepted.iter().all(|&n| n == 1),
        "each accepted exactly once"
    );
    assert!(duplicate.iter().all(|&n| n == 1));
    assert_eq!(api.tn.node.snapshot().mempool_count, 1000);
    let (s, v) = api.post("/mine", json!({ "blocks": 1 })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.tn.node.snapshot().mempool_count, 0, "all in one block");
    for t in &txs {
        let info = api.tn.node.transaction(&t.txid()).unwrap().expect("known");
        assert_eq!(info.confirmations, 1, "mined");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_resolve_sync_with_a_peer() {
    let a = start().await;
    let b = start().await;
    b.tn.mine(5, address(&key(3))).await;
    let id = b.tn.peer_addr().to_string();
    let (s, v) = a.post("/nodes/register", json!({ "nodes": [id] })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["connected"][0]["id"], b.tn.id().to_string());
    assert_eq!(v["failed"], json!([]));
    let (s, r) = a.post("/nodes/resolve", json!({})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["height"], 5, "synced with the peer: {r}");
    assert_eq!(r["tip"], b.tn.tip().to_string());
    assert_eq!(
        r["replaced"],
        r["previous_tip"] != r["tip"],
        "replaced says whether the tip changed: {r}"
    );
    // Nothing new: a second resolve changes nothing.
    let (s, r) = a.get_auth("/nodes/resolve").await;
    assert_eq!(s, 200);
    assert_eq!(r["replaced"], false);
    let peers = a.ok("/peers").await;
    assert_eq!(peers["peers"][0]["id"], b.tn.id().to_string());
    assert_eq!(peers["peers"][0]["inbound"], false);
    // A peer that does not answer is reported, not fatal.
    let (s, v) = a
        .post("/nodes/register", json!({ "nodes": ["127.0.0.1:1"] }))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["failed"][0]["addr"], "127.0.0.1:1");
    a.stop().await;
    b.stop().await;
}

#[test]
fn every_endpoint_is_documented_in_the_readme_with_a_curl_example() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for r in route_table() {
        let prefix = r.path.split('{').next().unwrap();
        assert!(
            readme.contains(&format!("`{} {prefix}", r.method)),
            "README's endpoint table lacks {} {}",
            r.method,
            r.path
        );
        assert!(
            readme.contains(&format!("$API{prefix}")),
            "README has no curl example for {}",
            r.path
        );
    }
}

/// People coming from the teaching blockchains get answers that say what to do instead: an
/// unsigned `sender/recipient/amount`, a name for an address, another node's API port where a
/// peer port goes, its API URL as the seeds write nodes, and `GET /wallets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_style_requests_are_answered_with_what_to_do() {
    let api = start().await;
    let other = start().await;
    let before = api.state();

    let a = api
        .post(
            "/transactions/new",
            json!({ "sender": "alice", "recipient": "bob", "amount": 5 }),
        )
        .await;
    assert_error(&a, 400, "unsigned_transaction");
    assert!(
        a.1["error"].as_str().unwrap().contains("POST /wallet/send"),
        "{a:?}"
    );

    let a = api.get("/balance/alice").await;
    assert_error(&a, 400, "bad_address");
    let msg = a.1["error"].as_str().unwrap();
    let example = Address::UNSPENDABLE.encode(Network::Regtest);
    assert!(
        msg.starts_with("\"alice\" is not an address")
            && msg.contains(&format!(
                "{} characters and starts with ctrt1",
                example.len()
            ))
            && msg.contains(&example),
        "{msg}"
    );

    // The other node's API port given as a peer: said so, with the port its peers use.
    let other_api = other.addr();
    let other_peers = other.tn.listen();
    let t = Instant::now();
    let a = api
        .post(
            "/nodes/register",
            json!({ "nodes": [other_api.to_string()] }),
        )
        .await;
    assert_eq!(a.0, 200, "{a:?}");
    let err = a.1["failed"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("is a chain-tui API port (HTTP), not a peer port")
            && err.contains(&format!("connect to {other_peers}")),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    for bad in [
        format!("https://{other_api}"),
        format!("http://{}@{other_api}", other.tn.id()),
    ] {
        let a = api.post("/nodes/register", json!({ "nodes": [bad] })).await;
        assert_error(&a, 400, "bad_address");
    }
    assert_eq!(api.state(), before, "nothing changed");

    // A program that answers `/info` with an endless body is read no further than 64 KiB:
    // it gets to send a few socket buffers' worth, not what 1.5 s of loopback carries.
    let endless = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endless_addr = endless.local_addr().unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut c, _)) = endless.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n[";
                if c.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'1'; 64 * 1024];
                for _ in 0..100_000 {
                    if c.write_all(&chunk).await.is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let a = api
        .post(
            "/nodes/register",
            json!({ "nodes": [format!("http://{endless_addr}")] }),
        )
        .await;
    assert_eq!(
        a.1["failed"][0]["error"],
        format!("no chain-tui API answered at http://{endless_addr}"),
        "{a:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 16 << 20,
        "the lookup read {sent} bytes of a foreign answer"
    );

    // Its API URL, as the seeds write nodes: looked up and dialled.
    let a = api
        .post(
            "/nodes/register",
            json!({ "nodes": [format!("http://{other_api}/")] }),
        )
        .await;
    assert_eq!(
        a.1["connected"][0]["id"],
        other.tn.id().to_string(),
        "{a:?}"
    );
    expect("the other node listed as a peer", || {
        api.tn.has_peer(&other.tn.id())
    })
    .await;

    // GET /wallets: the wallet's addresses with their balances.
    api.tn.mine(11, api.address()).await;
    let v = api.ok("/wallets").await;
    let w = &v["wallets"][0];
    assert_eq!(w["address"], api.address().encode(Network::Regtest), "{v}");
    assert_eq!(w["balance"], 11 * 50 * COIN, "{v}");
    // Spendable in the next block (12): the coinbases of blocks 1 and 2 (maturity 10).
    assert_eq!(w["spendable"], 2 * 50 * COIN, "{v}");
    assert_eq!(v["height"], 11);
    other.stop().await;
    api.stop().await;
}

/// One Server-Sent Event: its id, name and JSON data.
#[derive(Debug)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// A `GET /events` stream being read.
struct SseStream {
    resp: reqwest::Response,
    buf: String,
}

impl SseStream {
    async fn open(api: &Api, last_event_id: Option<u64>) -> SseStream {
        let mut req = api.http.get(api.url("/events"));
        if let Some(n) = last_event_id {
            req = req.header("last-event-id", n.to_string());
        }
        let resp = within("events answer", req.send()).await.expect("events");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped).
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap();
                return Sse { id, event, data };
            }
            let chunk = within("an event", self.resp.chunk())
                .await
                .expect("stream")
                .expect("the stream goes on");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event named one of `names`.
    async fn next_of(&mut self, names: &[&str]) -> Sse {
        loop {
            let e = self.next().await;
            if names.contains(&e.event.as_str()) {
                return e;
            }
        }
    }
}

/// `GET /events` across a reorganisation: blocks connected, the tip block disconnected, the
/// new branch connected and the reorg with its depth, in order; a client that reconnects with
/// `Last-Event-ID` gets what came after; `GET /blocks/wait` answers when the tip moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_across_a_reorg_and_resume() {
    let api = start().await;
    let node = &api.tn.node;
    let mut sse = SseStream::open(&api, None).await;
    let blocks = ["block_connected", "block_disconnected", "reorg"];

    let mined = api.tn.mine(2, api.address()).await;
    let e1 = sse.next_of(&blocks).await;
    assert_eq!(
        (e1.event.as_str(), &e1.data["height"]),
        ("block_connected", &json!(1))
    );
    assert_eq!(e1.data["hash"], mined[0].to_string());
    let e2 = sse.next_of(&blocks).await;
    assert_eq!(e2.data["hash"], mined[1].to_string());

    // A heavier branch from block 1: b2 (side branch, same work), then b3.
    let params = node.params();
    let meta1 = node.block_meta(&mined[0]).unwrap().unwrap();
    let b2 = block_on(params, &meta1, miner(), vec![], 0, 0);
    node.submit_block(b2.clone()).await.unwrap();
    let meta2 = node.block_meta(&b2.hash()).unwrap().unwrap();
    let b3 = block_on(params, &meta2, miner(), vec![], 0, 0);
    node.submit_block(b3.clone()).await.unwrap();
    let seen: Vec<(String, Value)> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let e = sse.next_of(&blocks).await;
            v.push((e.event, e.data));
        }
        v
    };
    assert_eq!(
        seen,
        vec![
            (
                "block_disconnected".into(),
                json!({ "type": "block_disconnected", "hash": mined[1].to_string(), "height": 2 })
            ),
            (
                "block_connected".into(),
                json!({ "type": "block_connected", "hash": b2.hash().to_string(), "height": 2 })
            ),
            (
                "block_connected".into(),
                json!({ "type": "block_connected", "hash": b3.hash().to_string(), "height": 3 })
            ),
            (
                "reorg".into(),
                json!({ "type": "reorg", "depth": 1, "old_tip": mined[1].to_string(),
                        "new_tip": b3.hash().to_string() })
            ),
        ]
    );

    // The block tree's tips: the new branch active, the old one a valid fork; a block that
    // overpays its coinbase on the old branch makes that one invalid.
    let tips = api.ok("/chain/tips").await;
    assert_eq!(
        tips,
        json!({ "tips": [
            { "hash": b3.hash().to_string(), "height": 3, "branch_len": 0, "status": "active" },
            { "hash": mined[1].to_string(), "height": 2, "branch_len": 1, "status": "valid_fork" },
        ]})
    );
    let meta_old = node.block_meta(&mined[1]).unwrap().unwrap();
    let greedy = block_on(params, &meta_old, miner(), vec![], 0, 1);
    node.submit_block(greedy.clone()).await.unwrap();
    let meta_greedy = node.block_meta(&greedy.hash()).unwrap().unwrap();
    let on_greedy = block_on(params, &meta_greedy, miner(), vec![], 0, 0);
    let r = node.submit_block(on_greedy.clone()).await;
    assert!(
        matches!(
            r,
            Err(chain_tui::node::NodeError::Block(
                chain_tui::node::ProcessError::Invalid { .. }
            ))
        ),
        "the branch is invalid: {r:?}"
    );
    assert_eq!(
        api.ok("/chain/tips").await,
        json!({ "tips": [
            { "hash": b3.hash().to_string(), "height": 3, "branch_len": 0, "status": "active" },
            { "hash": on_greedy.hash().to_string(), "height": 4, "branch_len": 3,
              "status": "invalid" },
        ]})
    );

    // Reconnecting after the second block: the events after it, the reorg's included.
    let mut again = SseStream::open(&api, e2.id).await;
    let first = again.next().await;
    assert_eq!(first.id, e2.id.map(|n| n + 1));
    let r = again.next_of(&["reorg"]).await;
    assert_eq!(r.data["new_tip"], b3.hash().to_string());

    // A server that stops ends its event streams instead of waiting out its grace period.
    let mut open = SseStream::open(&api, None).await;
    open.next().await;
    // Bad resume points and waits are refused.
    let a = answer(
        api.http
            .get(api.url("/events"))
            .header("last-event-id", "yesterday"),
    )
    .await;
    assert_error(&a, 400, "bad_event_id");
    assert_error(&api.get("/blocks/wait?timeout=61").await, 400, "bad_query");
    assert_error(&api.get("/blocks/wait?after=nope").await, 400, "bad_hash");

    // The long poll: unchanged tip after its timeout, then a block wakes it.
    let tip = b3.hash().to_string();
    let v = api.ok(&format!("/blocks/wait?after={tip}&timeout=1")).await;
    assert_eq!(v, json!({ "changed": false, "tip": tip, "height": 3 }));
    let v = api.ok(&format!("/blocks/wait?after={}", mined[1])).await;
    assert_eq!(v["changed"], true, "the tip is not that block already");
    let path = format!("/blocks/wait?after={tip}&timeout=30");
    let waiting = api.ok(&path);
    let mine = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.tn.mine(1, api.address()).await
    };
    let (v, new) = tokio::join!(waiting, mine);
    assert_eq!(v["changed"], true);
    assert_eq!(v["tip"], new[0].to_string());
    assert_eq!(v["height"], 4);
    let Api { server, tn, .. } = api;
    let t = Instant::now();
    server.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for an open event stream",
        t.elapsed()
    );
    // The client sees the stream end (within the harness's bounded wait).
    while let Ok(Some(_)) = within("the stream's end", open.resp.chunk()).await {}
    tn.stop().await;
}

/// What script authors asked for: version and sync state in `/info`, mining to a chosen
/// address, and pages of `/mempool` and `/wallet/history`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_says_version_and_sync_mine_pays_any_address_and_lists_page() {
    let api = start().await;
    let other = start().await;
    let info = api.ok("/info").await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["sync"]["state"], "no_peers", "{info}");

    // Mining to another address: its coinbases pay that address; a bad one mines nothing.
    let to = other.address().encode(Network::Regtest);
    let a = api
        .post("/mine", json!({ "blocks": 2, "address": to }))
        .await;
    assert_eq!(a.0, 200, "{a:?}");
    assert_eq!(
        api.ok(&format!("/balance/{to}")).await["balance"],
        2 * 50 * COIN
    );
    let a = api.post("/mine", json!({ "address": "alice" })).await;
    assert_error(&a, 400, "bad_address");
    assert_eq!(api.tn.height(), 2);

    // Linked: the other node catches up, and both say synced.
    let a = api
        .post(
            "/nodes/register",
            json!({ "nodes": [other.tn.peer_addr().to_string()] }),
        )
        .await;
    assert_eq!(a.1["connected"].as_array().map(Vec::len), Some(1), "{a:?}");
    expect("the other node synced", || other.tn.height() == 2).await;
    for node in [&api, &other] {
        let mut synced = false;
        for _ in 0..100 {
            let s = node.ok("/info").await["sync"].clone();
            if s["state"] == "synced" && s["best_peer_height"] == 2 {
                assert_eq!(s["blocks_behind"], 0, "{s}");
                synced = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(synced, "{}", node.ok("/info").await);
    }

    // Pages: three payments in the mempool, two a page.
    api.tn.mine(11, api.address()).await;
    for i in 0..3u64 {
        let a = api
            .post("/wallet/send", json!({ "address": to, "amount": COIN + i }))
            .await;
        assert_eq!(a.0, 200, "{a:?}");
    }
    let p1 = api.ok("/mempool?limit=2").await;
    assert_eq!(
        (p1["count"].as_u64(), p1["txs"].as_array().map(Vec::len)),
        (Some(3), Some(2))
    );
    assert_eq!(p1["next"], 2);
    let p2 = api.ok("/mempool?offset=2&limit=2").await;
    assert_eq!(p2["txs"].as_array().map(Vec::len), Some(1));
    assert_eq!(p2["next"], Value::Null);
    let all = api.ok("/mempool").await;
    let paged: Vec<&Value> = p1["txs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["txs"].as_array().unwrap())
        .collect();
    assert_eq!(
        paged,
        all["txs"].as_array().unwrap().iter().collect::<Vec<_>>()
    );
    for bad in [
        "/mempool?limit=0",
        "/mempool?limit=1001",
        "/wallet/history?limit=x",
    ] {
        assert_error(&api.get(bad).await, 400, "bad_query");
    }
    // Three small payments leave the next block room: the minimum relay rate is enough.
    let f = api.ok("/fees/estimate?blocks=2").await;
    assert_eq!(
        (f["blocks"].as_u64(), f["fee_rate"].as_u64()),
        (Some(2), Some(1)),
        "{f}"
    );
    assert_eq!(f["fee_rate_per_kb"], 1_000);
    assert!(
        f["method"]
            .as_str()
            .unwrap()
            .starts_with("the higher of two")
    );
    // Both halves: the queue leaves room, and the last blocks (13, none of them full) had room.
    assert_eq!(f["from_mempool_per_kb"], 1_000);
    assert_eq!(f["from_blocks_per_kb"], 1_000);
    assert_eq!(
        (f["blocks_read"].as_u64(), f["full_blocks"].as_u64()),
        (Some(13), Some(0))
    );
    for bad in ["/fees/estimate?blocks=0", "/fees/estimate?blocks=101"] {
        assert_error(&api.get(bad).await, 400, "bad_query");
    }
    let h = api.ok("/wallet/history?limit=1").await;
    assert_eq!(h["transactions"].as_array().map(Vec::len), Some(1));
    assert_eq!(h["next"], 1);
    assert!(h["count"].as_u64().unwrap() > 1, "{h}");

    // Any address's coins and history: the two coinbases mined to it, newest first, and the
    // three payments to it still in the mempool.
    let u = api.ok(&format!("/address/{to}/utxos?limit=1")).await;
    assert_eq!(
        (u["count"].as_u64(), u["next"].as_u64()),
        (Some(2), Some(1)),
        "{u}"
    );
    assert_eq!(u["coins"][0]["height"], 2);
    assert_eq!(u["coins"][0]["coinbase"], true);
    assert_eq!(u["coins"][0]["amount"], 50 * COIN);
    let u2 = api.ok(&format!("/address/{to}/utxos?offset=1")).await;
    assert_eq!(u2["coins"][0]["height"], 1);
    assert_eq!(u2["next"], Value::Null);
    let h = api.ok(&format!("/address/{to}/history")).await;
    assert_eq!(h["count"], 2, "{h}");
    assert_eq!(h["history"][0]["height"], 2);
    assert_eq!(h["history"][0]["received"], 50 * COIN);
    assert_eq!(h["mempool"].as_array().map(Vec::len), Some(3), "{h}");
    assert_error(&api.get("/address/alice/utxos").await, 400, "bad_address");
    assert_error(
        &api.get(&format!("/address/{to}/history?limit=0")).await,
        400,
        "bad_query",
    );
    // Once mined, the block's figures are its transactions' bytes and their lowest rate, each
    // fee read from the coins the block spent.
    use chain_tui::core::amount::Amount;
    use chain_tui::node::FeeRate;
    let rows = all["txs"].as_array().unwrap();
    let used: u64 = rows.iter().map(|t| t["size"].as_u64().unwrap()).sum();
    let lowest = rows
        .iter()
        .map(|t| {
            FeeRate::of(
                Amount::from_units(t["fee"].as_u64().unwrap()),
                t["size"].as_u64().unwrap() as usize,
            )
        })
        .min();
    api.tn.mine(1, api.address()).await;
    let recent = api.tn.node.recent_block_fees().unwrap();
    assert_eq!(recent.len(), 14);
    assert_eq!((recent[0].used as u64, recent[0].lowest), (used, lowest));
    assert!(!recent[0].full());
    assert!(
        recent[1..]
            .iter()
            .all(|b| b.used == 0 && b.lowest.is_none())
    );
    other.stop().await;
    api.stop().await;
}

/// `POST /transactions/check` answers what `POST /transactions/new` would do (accepted with
/// its fee, or the code and reason of the refusal) and changes nothing; the transaction then
/// goes in as checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_new_would_do_and_changes_nothing() {
    let api = start().await;
    let owner = key(7);
    let hashes = api.tn.mine(12, address(&owner)).await;
    let coin = |i: usize| coinbase_of(&api.tn.node.block(&hashes[i]).unwrap().unwrap());
    let good = pay_from(coin(0), &owner, 50 * COIN, address(&key(8)));
    let mut bad_sig = pay_from(coin(1), &owner, 50 * COIN, address(&key(8)));
    bad_sig.inputs[0].signature[5] ^= 1;
    let immature = pay_from(coin(11), &owner, 50 * COIN, address(&key(8)));
    let before = api.state();

    let v = api.post("/transactions/check", tx_json(&good)).await;
    assert_eq!(v.0, 200, "{v:?}");
    assert_eq!(
        v.1,
        json!({ "accepted": true, "txid": good.txid().to_string(), "fee": FEE,
                "size": good.size(), "fee_rate": (FEE * 1000 / good.size() as u64).div_ceil(1000),
                "fee_rate_per_kb": FEE * 1000 / good.size() as u64, "would_evict": 0 })
    );
    for (tx, code) in [
        (&bad_sig, "bad_signature"),
        (&immature, "immature_coinbase"),
    ] {
        let v = api.post("/transactions/check", tx_json(tx)).await;
        assert_eq!(v.0, 200, "{v:?}");
        assert_eq!(
            (&v.1["accepted"], &v.1["code"]),
            (&json!(false), &json!(code)),
            "{v:?}"
        );
        assert!(
            v.1["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{v:?}"
        );
    }
    // Malformed or seed-style bodies are refused as by /transactions/new.
    let a = api
        .post(
            "/transactions/check",
            json!({ "sender": "a", "recipient": "b", "amount": 1 }),
        )
        .await;
    assert_error(&a, 400, "unsigned_transaction");
    assert_eq!(api.state(), before, "a dry run changes nothing");

    let (s, v) = api.post("/transactions/new", tx_json(&good)).await;
    assert_eq!((s, &v["txid"]), (201, &json!(good.txid().to_string())));
    // Now it would be a duplicate.
    let v = api.post("/transactions/check", tx_json(&good)).await;
    assert_eq!(v.1["code"], "duplicate", "{v:?}");
    api.stop().await;
}

/// The OpenAPI document is generated from the routes and the API's types: every operation has
/// an id, a summary, its parameters, its request body, an answer schema for every status
/// (errors as `{error, code}`), and says whether it needs the token; the stream and the metrics
/// say their real content types; the state-changing GETs are marked deprecated; every `$ref`
/// resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_operation() {
    let api = start().await;
    let doc = api.ok("/openapi.json").await;
    api.stop().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    let responses = &doc["components"]["responses"];
    // Every reference points at something.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "{} refs", all.len());
    for r in &all {
        let target = r
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("{r}: not local"))
            .split('/')
            .fold(&doc, |v, k| &v[k]);
        assert!(target.is_object(), "{r} resolves to nothing");
    }
    let mut ids = std::collections::HashSet::new();
    // Writes that take a JSON body (the rest take none, or bytes).
    let json_bodies = [
        "post /blocks",
        "post /transactions/new",
        "post /transactions/check",
        "post /wallet/send",
        "post /peers/unban",
        "post /nodes/register",
        "post /mining",
        "post /mine",
    ];
    let mut seen_bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no id"));
            assert!(ids.insert(id.to_string()), "{name}: id {id} used twice");
            assert!(!op["summary"].as_str().unwrap_or("").is_empty(), "{name}");
            assert!(!op["tags"].as_array().unwrap().is_empty(), "{name}: no tag");
            // Security: writes name the bearer token, reads say none is needed.
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}"));
            let token = security.iter().any(|s| s.get("bearer").is_some());
            let statuses = op["responses"].as_object().unwrap();
            if token {
                assert!(statuses.contains_key("401"), "{name}: no 401");
            } else {
                assert_eq!(security, &vec![json!({})], "{name}: a read says no token");
            }
            // Every status has an answer with a described body (a `$ref` to a shared one).
            for (status, r) in statuses {
                let r = match r["$ref"].as_str() {
                    Some(rf) => &responses[rf.rsplit('/').next().unwrap()],
                    None => r,
                };
                assert!(
                    !r["description"].as_str().unwrap_or("").is_empty(),
                    "{name} {status}"
                );
                let content = r["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{name} {status}"));
                assert_eq!(content.len(), 1, "{name} {status}");
                let (ctype, c) = content.iter().next().unwrap();
                assert!(c["schema"].is_object(), "{name} {status}: no schema");
                if !status.starts_with('2') {
                    assert_eq!(ctype, "application/json", "{name} {status}");
                    assert_eq!(
                        c["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{name} {status}: errors are {{error, code}}"
                    );
                }
            }
            for common in ["403", "500", "503"] {
                assert!(statuses.contains_key(common), "{name}: no {common}");
            }
            if json_bodies.contains(&name.as_str()) {
                seen_bodies += 1;
                let body = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
                assert!(body.is_string(), "{name}: no request body schema");
                assert!(statuses.contains_key("400"), "{name}: no 400");
                assert!(statuses.contains_key("413"), "{name}: no 413");
            }
            if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
                assert!(
                    statuses.contains_key("400"),
                    "{name}: parameters but no 400"
                );
            }
        }
    }
    assert_eq!(seen_bodies, json_bodies.len());
    let op = |m: &str, p: &str| doc["paths"][p][m].clone();
    // Statuses as the server sends them.
    assert!(op("post", "/transactions/new")["responses"]["201"].is_object());
    assert!(op("post", "/mine")["responses"]["202"]["headers"]["Location"].is_object());
    assert_eq!(op("post", "/mine")["requestBody"]["required"], false);
    assert_eq!(op("post", "/wallet/send")["requestBody"]["required"], true);
    // Content types.
    let events = &op("get", "/events")["responses"]["200"]["content"];
    assert_eq!(
        events["text/event-stream"]["schema"]["contentSchema"]["$ref"],
        "#/components/schemas/Event"
    );
    let metrics = op("get", "/metrics")["responses"]["200"]["content"].clone();
    assert!(
        metrics
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("application/openmetrics-text")),
        "{metrics}"
    );
    assert_eq!(
        op("post", "/chain/import")["requestBody"]["content"]["application/octet-stream"]["schema"]
            ["format"],
        "binary"
    );
    // The seeds' state-changing GETs are served, and marked as such.
    for (m, p) in [("get", "/mine"), ("get", "/nodes/resolve")] {
        assert_eq!(op(m, p)["deprecated"], true, "{m} {p}");
    }
    for (m, p) in [
        ("post", "/mine"),
        ("post", "/nodes/resolve"),
        ("get", "/info"),
    ] {
        assert!(op(m, p)["deprecated"].is_null(), "{m} {p}");
    }
    // Types: unsigned integers say their range; addresses their format; bodies refuse
    // unknown fields as the server does.
    assert_eq!(
        schemas["SendRequest"]["oneOf"].as_array().map(Vec::len),
        Some(2),
        "one recipient or several"
    );
    let send = &schemas["SendOne"];
    assert_eq!(send["additionalProperties"], false);
    assert_eq!(send["properties"]["address"]["format"], "address");
    assert_eq!(send["properties"]["amount"]["maximum"], json!(u64::MAX));
    // Every fee rate a request may name says the highest the node takes.
    for body in ["SendOne", "SendMany", "BuildRequest"] {
        assert_eq!(
            schemas[body]["properties"]["fee_rate"]["maximum"],
            json!(u64::MAX / 1000),
            "{body}"
        );
    }
    assert_eq!(
        schemas["InputJson"]["properties"]["vout"]["maximum"],
        json!(u32::MAX)
    );
    assert_eq!(
        schemas["TxRequest"]["oneOf"].as_array().map(Vec::len),
        Some(2),
        "fields or hex"
    );
    // Links for clients that follow answers (and Schemathesis' stateful phase).
    let links = &op("post", "/mine")["responses"]["202"]["links"];
    assert_eq!(links["GetJob"]["operationId"], "job");
    assert!(doc["paths"]["/jobs/{id}"]["get"]["operationId"] == "job");
}

/// `POST /transactions/build` for a key the node does not hold: the answer's encoding, sighash
/// and fee are what the transaction is; signed here with that sighash, it is accepted by
/// `POST /transactions/new` and pays what was asked. Bad input changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_then_sign_elsewhere_then_submit() {
    use ed25519_dalek::Signer;
    let api = start().await;
    let k = key(41);
    let from = address(&k);
    let (to, to2) = (address(&key(42)), address(&key(43)));
    let enc = |a: &Address| a.encode(Network::Regtest);
    // Coinbases to the outside key, mature.
    let (s, v) = api
        .post("/mine", json!({ "blocks": 3, "address": enc(&from) }))
        .await;
    assert_eq!(s, 200, "{v}");
    api.tn.mine(100, address(&key(1))).await;
    let before = api.state();
    let build = json!({
        "pubkey": hex::encode(k.verifying_key().to_bytes()),
        "outputs": [
            { "address": enc(&to), "amount": 3 * COIN },
            { "address": enc(&to2), "amount": 2.0 * COIN as f64 },
        ],
        "fee_rate": 3,
    });
    let (s, b) = api.post("/transactions/build", build.clone()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(api.state(), before, "a build changes nothing");
    // The answer's parts agree with each other and with the rules.
    let bytes = hex::decode(b["hex"].as_str().unwrap()).unwrap();
    let mut tx: Transaction = chain_tui::core::encode::decode_canonical(&bytes, 1 << 20).unwrap();
    assert_eq!(tx_json(&tx), b["tx"]);
    let genesis = Network::Regtest.params().genesis_hash;
    assert_eq!(b["genesis"], genesis.to_string());
    assert_eq!(b["sighash"], hex::encode(tx.sighash(&genesis)));
    assert!(tx.inputs.iter().all(|i| i.signature == [0; 64]));
    assert_eq!(tx.outputs[0].address, to);
    assert_eq!(tx.outputs[0].amount.units(), 3 * COIN);
    assert_eq!(tx.outputs[1].amount.units(), 2 * COIN);
    assert_eq!(
        tx.outputs[2].address, from,
        "change back to the key's address"
    );
    let inputs: u64 = b["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_u64().unwrap())
        .sum();
    let outputs: u64 = tx.outputs.iter().map(|o| o.amount.units()).sum();
    assert_eq!(inputs - outputs, b["fee"].as_u64().unwrap());
    assert_eq!(b["size"], tx.size());
    assert!(b["fee_rate"].as_u64().unwrap() >= 3, "{b}");
    // Signed elsewhere: one signature over the sighash, in every input.
    let sighash: [u8; 32] = hex::decode(b["sighash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig = k.sign(&sighash).to_bytes();
    for i in &mut tx.inputs {
        i.signature = sig;
    }
    let (s, v) = api.post("/transactions/new", tx_json(&tx)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["txid"], tx.txid().to_string());
    let (_, seen) = api.get(&format!("/tx/{}", tx.txid())).await;
    assert_eq!(seen["fee"], b["fee"]);
    // Bad input: the exact status and code, and nothing changes.
    let after = api.state();
    let with = |k: &str, v: Value| {
        let mut b = build.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("pubkey", json!("zz")), 400, "bad_pubkey"),
        (with("pubkey", json!("ab".repeat(31))), 400, "bad_pubkey"),
        (with("outputs", json!([])), 400, "bad_outputs"),
        (
            with("outputs", json!([{ "address": enc(&to), "amount": 0 }])),
            400,
            "bad_amount",
        ),
        (
            with("outputs", json!([{ "address": "alice", "amount": 5 }])),
            400,
            "bad_address",
        ),
        (with("fee_rate", json!(0)), 400, "bad_fee_rate"),
        (with("change", json!("ct1nope")), 400, "bad_address"),
        (with("extra", json!(1)), 400, "bad_json"),
        // A key with no coins.
        (
            with(
                "pubkey",
                json!(hex::encode(key(44).verifying_key().to_bytes())),
            ),
            422,
            "insufficient_funds",
        ),
    ];
    for (body, status, code) in cases {
        let a = api.post("/transactions/build", body.clone()).await;
        assert_error(&a, status, code);
    }
    assert_eq!(api.state(), after);
    // The token is needed, as for every POST.
    let a = answer(api.http.post(api.url("/transactions/build")).json(&build)).await;
    assert_error(&a, 401, "unauthorized");
    api.stop().await;
}

/// The README's signing recipe, worked through byte for byte: the bytes are laid out here by
/// hand as the recipe says (LEB128 varints, fixed-size keys, hashes and signatures), checked
/// against the node's own encoder and rules, and every value the README's worked example shows
/// is recomputed and compared.
#[test]
fn the_readme_signing_example_is_recomputed_byte_for_byte() {
    use chain_tui::core::amount::Amount;
    use chain_tui::core::tx::{TxIn, TxOut};
    use ed25519_dalek::{Signer, SigningKey};
    use sha2::{Digest, Sha256};
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let sha256d = |b: &[u8]| -> [u8; 32] { Sha256::digest(Sha256::digest(b)).into() };
    // The example's inputs.
    let key = SigningKey::from_bytes(&[1; 32]);
    let pubkey = key.verifying_key().to_bytes();
    let own = Address::from_pubkey(&pubkey);
    let payee = Address::from_pubkey(&SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes());
    let prev_txid = [0x11u8; 32];
    let (vout, version, lock_height, memo) = (1u32, 1u32, 0u64, b"hi".to_vec());
    let outputs = [(150_000_000u64, payee), (49_990_000u64, own)];
    let genesis = Network::Regtest.params().genesis_hash;

    // The bytes, by hand. Without signatures (what is signed) ...
    let mut unsigned_view = Vec::new();
    varint(u64::from(version), &mut unsigned_view);
    varint(1, &mut unsigned_view); // one input
    unsigned_view.extend_from_slice(&prev_txid);
    varint(u64::from(vout), &mut unsigned_view);
    unsigned_view.extend_from_slice(&pubkey);
    let mut rest = Vec::new();
    varint(outputs.len() as u64, &mut rest);
    for (amount, address) in &outputs {
        varint(*amount, &mut rest);
        rest.extend_from_slice(&address.hash());
    }
    varint(lock_height, &mut rest);
    varint(memo.len() as u64, &mut rest);
    rest.extend_from_slice(&memo);
    unsigned_view.extend_from_slice(&rest);
    let mut preimage = b"chain-tui/sighash/v1".to_vec();
    preimage.extend_from_slice(&genesis.0);
    preimage.extend_from_slice(&unsigned_view);
    let sighash = sha256d(&preimage);
    let signature = key.sign(&sighash).to_bytes();
    // ... and the transaction: each input's signature after its key.
    let mut signed = Vec::new();
    varint(u64::from(version), &mut signed);
    varint(1, &mut signed);
    signed.extend_from_slice(&prev_txid);
    varint(u64::from(vout), &mut signed);
    signed.extend_from_slice(&pubkey);
    signed.extend_from_slice(&signature);
    signed.extend_from_slice(&rest);
    let txid = sha256d(&signed);

    // The node's encoder and rules agree.
    let tx = Transaction {
        version,
        inputs: vec![TxIn {
            prevout: OutPoint {
                txid: Txid(prev_txid),
                vout,
            },
            pubkey,
            signature,
        }],
        outputs: outputs
            .iter()
            .map(|(a, address)| TxOut {
                amount: Amount::from_units(*a),
                address: *address,
            })
            .collect(),
        lock_height,
        memo,
    };
    assert_eq!(tx.encode(), signed);
    assert_eq!(tx.sighash(&genesis), sighash);
    assert_eq!(tx.txid().0, txid);
    assert!(chain_tui::core::sig::verify_one(
        &chain_tui::core::sig::SigCheck {
            msg: sighash,
            pubkey,
            signature,
        }
    ));

    // The README shows the same values.
    let values = [
        ("secret key", hex::encode([1u8; 32])),
        ("public key", hex::encode(pubkey)),
        ("address", own.encode(Network::Regtest)),
        ("pays", payee.encode(Network::Regtest)),
        ("genesis", genesis.to_string()),
        ("signed bytes", hex::encode(&unsigned_view)),
        ("sighash", hex::encode(sighash)),
        ("signature", hex::encode(signature)),
        ("transaction", hex::encode(&signed)),
        ("txid", hex::encode(txid)),
    ];
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("<!-- signing example: tests/it/api.rs recomputes every value -->")
        .nth(1)
        .and_then(|b| b.split("```").nth(1))
        .unwrap_or("");
    let mut missing = Vec::new();
    for (name, value) in &values {
        // A long value may wrap: its lines follow the name, indented.
        let found = block.lines().enumerate().find_map(|(n, l)| {
            let rest = l.strip_prefix(&format!("{name}:"))?;
            let mut text = rest.trim().to_string();
            for next in block.lines().skip(n + 1) {
                match next.strip_prefix("    ") {
                    Some(more) if !more.starts_with(' ') && !next.contains(':') => {
                        text.push_str(more.trim())
                    }
                    _ => break,
                }
            }
            Some(text)
        });
        if found.as_deref() != Some(value.as_str()) {
            missing.push(format!("{name}: {value}"));
        }
    }
    assert!(
        missing.is_empty(),
        "the README's worked example should say:\n{}",
        missing.join("\n")
    );
}

/// `POST /wallet/send` with several recipients pays them all in one transaction, change back
/// to the wallet; a body that mixes both forms, or has no recipient, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_send_pays_several_recipients_in_one_transaction() {
    let api = start().await;
    let mine_to = api.address();
    api.tn.mine(102, mine_to).await;
    let enc = |a: &Address| a.encode(Network::Regtest);
    let (a, b) = (address(&key(51)), address(&key(52)));
    let before = api.state();
    let bad = [
        json!({ "outputs": [] }),
        json!({ "outputs": [{ "address": enc(&a), "amount": 1 }], "address": enc(&b) }),
        json!({ "amount": 5 }),
        json!({ "outputs": [{ "address": enc(&a), "amount": 0 }] }),
    ];
    let codes = ["bad_outputs", "bad_json", "bad_json", "bad_amount"];
    for (body, code) in bad.into_iter().zip(codes) {
        assert_error(&api.post("/wallet/send", body).await, 400, code);
    }
    assert_eq!(api.state(), before, "nothing changed");
    let (s, v) = api
        .post(
            "/wallet/send",
            json!({ "outputs": [
                { "address": enc(&a), "amount": COIN },
                { "address": enc(&b), "amount": 2 * COIN },
                { "address": enc(&a), "amount": 3 },
            ] }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outputs"], 3);
    assert_eq!(v["amount"], 3 * COIN + 3);
    let (_, tx) = api
        .get(&format!("/tx/{}", v["txid"].as_str().unwrap()))
        .await;
    let outs = tx["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 4, "three payments and the change: {tx}");
    assert_eq!(outs[0], json!({ "address": enc(&a), "amount": COIN }));
    assert_eq!(outs[1], json!({ "address": enc(&b), "amount": 2 * COIN }));
    assert_eq!(outs[2], json!({ "address": enc(&a), "amount": 3 }));
    assert_eq!(tx["fee"], v["fee"]);
    api.stop().await;
}

/// What the attached dashboard reads from a node's API, checked against the node: a search
/// names blocks, transactions and addresses; a transaction says who spent its outputs; a block
/// comes with its encoding, chain work, successor and when the node saw it; an address's
/// balance carries its mempool figures and next maturity; `/events?backlog=false` starts at the
/// next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_spends_block_hex_and_pending_balance_say_what_the_node_knows() {
    let api = start().await;
    let other = start().await;
    api.tn.mine(12, api.address()).await;
    let (me, to) = (
        api.address().encode(Network::Regtest),
        other.address().encode(Network::Regtest),
    );
    let a = api
        .post("/wallet/send", json!({ "address": to, "amount": COIN }))
        .await;
    assert_eq!(a.0, 200, "{a:?}");
    let sent = a.1["txid"].as_str().unwrap().to_string();

    // The coin the payment spends says so, and the payment's outputs are unspent.
    let view = api.ok(&format!("/tx/{sent}")).await;
    assert!(view.get("spends").is_none(), "only when asked: {view}");
    let input = &view["inputs"][0];
    let (prev, vout) = (
        input["txid"].as_str().unwrap().to_string(),
        input["vout"].as_u64().unwrap() as usize,
    );
    let spends = api.ok(&format!("/tx/{prev}?spends=true")).await["spends"].clone();
    assert_eq!(spends[vout]["state"], "mempool", "{spends}");
    assert_eq!(spends[vout]["txid"], sent.as_str());
    let own = api.ok(&format!("/tx/{sent}?spends=true")).await["spends"].clone();
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "unspent"),
        "{own}"
    );
    assert_error(
        &api.get(&format!("/tx/{sent}?spends=maybe")).await,
        400,
        "bad_query",
    );

    // Balances with the mempool: the payee's incoming, the payer's outgoing (the coins of it
    // that the mempool spends), and the next coinbase to mature.
    let theirs = api.ok(&format!("/balance/{to}")).await;
    assert_eq!(theirs["incoming"], COIN, "{theirs}");
    assert_eq!(theirs["outgoing"], 0);
    let mine = api.ok(&format!("/balance/{me}")).await;
    let coins = api.ok(&format!("/address/{me}/utxos")).await["coins"].clone();
    let coins = coins.as_array().unwrap();
    let spent: u64 = coins
        .iter()
        .filter(|c| !c["spent_in_mempool"].is_null())
        .map(|c| c["amount"].as_u64().unwrap())
        .sum();
    assert!(spent > 0);
    assert_eq!(mine["outgoing"], spent, "{mine}");
    let soonest = coins.iter().filter_map(|c| c["matures_in"].as_u64()).min();
    assert!(soonest.is_some());
    assert_eq!(mine["next_maturity"].as_u64(), soonest, "{mine}");
    let wallets = api.ok("/wallets").await;
    assert!(wallets["wallets"][0].get("incoming").is_none(), "{wallets}");

    // Mined: the spend is confirmed at the new height, and the proof counts the block's txs.
    let top = api.tn.mine(1, api.address()).await[0];
    let spends = api.ok(&format!("/tx/{prev}?spends=true")).await["spends"].clone();
    assert_eq!(spends[vout]["state"], "confirmed", "{spends}");
    assert_eq!(spends[vout]["height"], 13);
    assert_eq!(api.ok(&format!("/tx/{sent}/proof")).await["count"], 2);

    // A block with its encoding, chain work, successor and when this node stored it.
    let b = api.ok("/blocks/13?hex=true").await;
    let bytes = hex::decode(b["hex"].as_str().unwrap()).unwrap();
    let block: Block = chain_tui::core::encode::decode_canonical(&bytes, 1_000_000).unwrap();
    assert_eq!(block.hash(), top);
    assert_eq!(b["chainwork"], api.ok("/info").await["work"]);
    assert_eq!(b["next"], Value::Null);
    assert!(api.ok("/blocks/13").await.get("hex").is_none());
    let twelve = api.ok("/blocks/12").await;
    assert_eq!(twelve["next"], top.to_string());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let seen = twelve["seen_ms"].as_u64().expect("seen_ms");
    assert!(
        seen <= now_ms && seen + 60_000 > now_ms,
        "{seen} vs {now_ms}"
    );

    // Search: a height, a txid prefix, an address, nothing, too much.
    let s = api.ok("/search?q=13").await;
    assert_eq!(
        (s["kind"].as_str(), s["id"].as_str()),
        (Some("block"), Some(&*top.to_string()))
    );
    let s = api.ok(&format!("/search?q={}", &sent[..12])).await;
    assert_eq!(
        (s["kind"].as_str(), s["id"].as_str()),
        (Some("transaction"), Some(&*sent))
    );
    let s = api.ok(&format!("/search?q={to}")).await;
    assert_eq!(
        (s["kind"].as_str(), s["id"].as_str()),
        (Some("address"), Some(&*to))
    );
    let s = api.ok("/search?q=99").await;
    assert_eq!(s["kind"], "nothing");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("no block at height 99"),
        "{s}"
    );
    assert_eq!(api.ok("/search").await["kind"], "nothing");
    let long = "a".repeat(201);
    assert_error(
        &api.get(&format!("/search?q={long}")).await,
        400,
        "bad_query",
    );
    assert!(api.ok("/mining").await["max_threads"].as_u64().unwrap() >= 1);

    // The event stream from now on: the first event is the next block, not the backlog.
    let (client, _) = chain_tui::api::client::ApiClient::remote(&api.base, None)
        .await
        .unwrap();
    let mut events = client.events(None).await.unwrap();
    let next = api.tn.mine(1, api.address()).await[0];
    // Mining starts, the block is mined and connected: nothing from before (blocks 1 to 13,
    // the payment) comes first.
    use chain_tui::api::events::{BlockAt, Event};
    let at = BlockAt {
        hash: next.to_string(),
        height: 14,
    };
    let mut seen = Vec::new();
    while !seen.contains(&Event::BlockConnected(at.clone())) {
        match within("the next event", events.next()).await.unwrap() {
            Some(chain_tui::api::client::Streamed::Event(_, e)) => seen.push(e),
            other => panic!("{other:?} after {seen:?}"),
        }
        assert!(seen.len() <= 4, "{seen:?}");
    }
    for e in &seen {
        assert!(
            matches!(e, Event::Mining { .. })
                || *e == Event::BlockMined(at.clone())
                || *e == Event::BlockConnected(at.clone()),
            "not from now on: {seen:?}"
        );
    }
    api.stop().await;
    other.stop().await;
}

/// A key with more small coins than one transaction can spend: `POST /transactions/build` for
/// all of them says so with the most one payment can send (it used to build a transaction the
/// mempool then refused as too large), and building that most works and is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_past_the_transaction_size_says_the_most_one_payment_sends() {
    use chain_tui::core::amount::Amount;
    let api = start().await;
    let params = Network::Regtest.params();
    let (rich, small) = (key(51), key(52));
    let hashes = api.tn.mine(12, address(&rich)).await;
    // One coinbase fanned out to 1,000 coins of 0.001 each, then 800 more from another.
    let mut fans = Vec::new();
    for (i, n) in [(0usize, 1000usize), (1, 800)] {
        let c = coinbase_of(&api.tn.node.block(&hashes[i]).unwrap().unwrap());
        let outputs = (0..n).map(|_| pay(address(&small), 100_000)).collect();
        fans.push(spend(params, &[(c, &rich)], outputs));
    }
    for fan in &fans {
        let a = api.post("/transactions/new", tx_json(fan)).await;
        assert_eq!(a.0, 201, "{a:?}");
    }
    api.tn.mine(1, address(&rich)).await;
    let before = api.state();
    let build = |amount: u64| {
        json!({
            "pubkey": hex::encode(small.verifying_key().to_bytes()),
            "outputs": [{ "address": address(&rich).encode(Network::Regtest), "amount": amount }],
            "fee_rate": 1,
        })
    };
    let a = api
        .post("/transactions/build", build(1800 * 100_000 - 10_000))
        .await;
    assert_error(&a, 422, "too_many_inputs");
    let message = a.1["error"].as_str().unwrap();
    assert!(
        message.contains("one payment can send at most"),
        "{message}"
    );
    assert_eq!(api.state(), before, "nothing changed");
    // The most it names, in base units, is payable: built, signed here, accepted.
    let most: u64 = message
        .split("can send at most ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|c| Amount::parse_coins(c).ok())
        .map(|a| a.units())
        .unwrap_or_else(|| panic!("no amount in {message}"));
    let (s, b) = api.post("/transactions/build", build(most)).await;
    assert_eq!(s, 200, "{b}");
    let mut tx: Transaction = chain_tui::core::encode::decode_canonical(
        &hex::decode(b["hex"].as_str().unwrap()).unwrap(),
        1_000_000,
    )
    .unwrap();
    let keys = vec![&small; tx.inputs.len()];
    sign(params, &mut tx, &keys);
    assert!(tx.size() <= chain_tui::node::MAX_TX_SIZE);
    let a = api.post("/transactions/new", tx_json(&tx)).await;
    assert_eq!(a.0, 201, "{a:?}");
    api.stop().await;
}
