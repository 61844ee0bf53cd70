//! The API against a hostile world: idle and slow connections beyond the open-files limit,
//! slow headers and bodies, absurd mining threads, long mines, concurrent expensive reads,
//! long peer lists and large imports. Each would starve or stall the node without its limit.

use crate::common::api::*;
use crate::common::net;
use crate::common::*;
use chain_tui::api::{ApiLimits, NodeFile};
use chain_tui::core::params::Network;
use net::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::bin::{self, NodeProcess};

/// Whether the server closes `s` within `limit` (reads until EOF or an error).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// `GET /info` on a new connection; its status and how long it took.
async fn probe_info(addr: SocketAddr) -> (u16, Duration) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t = Instant::now();
    let status = match http.get(format!("http://{addr}/info")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    (status, t.elapsed())
}

/// A `chain-tui node` child under an open-files limit of 1,024 (soft and hard), as the
/// testers ran it; killed on drop.
struct Child {
    _node: NodeProcess,
    _dir: tempfile::TempDir,
    api: SocketAddr,
    log: std::path::PathBuf,
}

impl Child {
    fn start() -> Child {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let data = dir.path().join("data");
        let mut cmd = bin::regtest_after("ulimit -n 1024", &data);
        cmd.args(["node", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(&log).unwrap());
        let node = NodeProcess::start(&mut cmd, &data);
        let file = NodeFile::read(&data)
            .expect("node.json reads")
            .expect("node.json is there");
        Child {
            _node: node,
            _dir: dir,
            api: file.api,
            log,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_beyond_the_open_files_limit_do_not_starve_the_api() {
    // This process holds the other end of every connection.
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        soft >= 2_000,
        "this test needs 2,000 open files, the limit is {soft}"
    );
    let node = Child::start();
    let addr = node.api;
    let (s, _) = probe_info(addr).await;
    assert_eq!(s, 200);

    // 1,100 idle connections, more than the node's 1,024 open files, that send nothing...
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        if let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
        {
            idle.push(c);
        }
    }
    // ...and 200 that send a request head one byte a second.
    let mut slow = Vec::new();
    for _ in 0..200 {
        slow.push(tokio::spawn(async move {
            let Ok(mut c) = TcpStream::connect(addr).await else {
                return;
            };
            for b in b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .iter()
                .cycle()
            {
                if c.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut times = Vec::new();
    for _ in 0..20 {
        let (status, took) = probe_info(addr).await;
        assert_eq!(status, 200, "GET /info failed after {took:?}");
        times.push(took);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in &slow {
        t.abort();
    }
    drop(idle);
    times.sort();
    eprintln!("GET /info under 1,300 hostile connections: {times:?}");
    let fast = times
        .iter()
        .filter(|t| **t < Duration::from_millis(100))
        .count();
    assert!(
        fast >= 19,
        "GET /info within 100 ms only {fast} of 20 times: {times:?}"
    );
    assert!(times[19] < Duration::from_secs(1), "{times:?}");
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    let emfile = log.matches("open files").count();
    assert!(emfile <= 1, "the node kept logging accept errors:\n{log}");
}

fn quick() -> ApiLimits {
    ApiLimits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..ApiLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_idle_connections_and_slow_bodies_are_cut_off() {
    let api = start_with(quick()).await;
    let addr = api.addr();
    // Nothing sent at all.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // A request head, one byte every 200 ms: never complete within the header timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let dripping = tokio::spawn(async move {
        for b in b"GET /info HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    let t = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "an idle connection stays open"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
    let mut slow = dripping.await.unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_millis(500)).await,
        "a slow request head is still being read after {:?}",
        t.elapsed()
    );

    // A keep-alive connection that goes quiet after an answer is closed too.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);

    // A body that trickles in: 408 once the request timeout is up.
    let mut body = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /transactions/new HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{",
        api.token
    );
    body.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let (mut rd, mut wr) = body.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"}") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "{text:?} after {:?}",
        t.elapsed()
    );
    assert!(text.contains("\"code\":\"timeout\""), "{text}");
    assert!(t.elapsed() < Duration::from_secs(4));

    // The API still answers.
    let (s, _) = api.get("/info").await;
    assert_eq!(s, 200);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_threads_are_capped_and_stopping_is_prompt() {
    let api = start_with(ApiLimits::default()).await;
    let max = chain_tui::node::miner::max_threads();
    for (path, body) in [
        ("/mining", json!({ "mining": true, "threads": 1024 })),
        ("/mine", json!({ "blocks": 1, "threads": 1024 })),
        ("/mining", json!({ "mining": true, "threads": max + 1 })),
    ] {
        let a = api.post(path, body).await;
        assert_error(&a, 400, "bad_threads");
        let msg = a.1["error"].as_str().unwrap();
        assert!(msg.contains(&format!("at most {max}")), "{msg}");
    }
    assert_eq!(api.tn.node.snapshot().mining_threads, 0);
    assert_eq!(api.tn.height(), 0);

    // The most threads allowed: stopping them is prompt.
    let (s, v) = api
        .post("/mining", json!({ "mining": true, "threads": max }))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["threads"], max);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let (s, v) = api.post("/mining", json!({ "mining": false })).await;
    let took = t.elapsed();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mining"], false);
    assert_eq!(api.tn.node.snapshot().mining_threads, 0);
    eprintln!("stopping {max} mining threads took {took:?}");
    assert!(took < Duration::from_secs(1), "stopping took {took:?}");
    api.stop().await;
}

/// GET a job until `done` says so (at most 10 s).
async fn job_until(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (s, v) = api.get(path).await;
        assert_eq!(s, 200, "{v}");
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "job stuck: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_mine_is_a_job_to_follow_and_cancel() {
    let api = start_with(ApiLimits::default()).await;
    // A few blocks: answered with the blocks, as before.
    let (s, v) = api.post("/mine", json!({ "blocks": 3 })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["blocks"].as_array().unwrap().len(), 3);
    assert_eq!(v["height"], 3);

    // Many blocks: 202 at once, with the job to follow.
    let t = Instant::now();
    let resp = within(
        "POST /mine of 100,000 blocks",
        api.http
            .post(api.url("/mine"))
            .bearer_auth(&api.token)
            .json(&json!({ "blocks": 100_000, "threads": 1 }))
            .send(),
    )
    .await
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let job: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/jobs/{}", job["id"]));
    assert_eq!(job["state"], "running");
    assert_eq!(job["requested"], 100_000);

    // It makes progress, and a second mine is refused while it runs.
    let v = job_until(&api, &location, |v| v["mined"].as_u64().unwrap() >= 5).await;
    assert_eq!(v["state"], "running");
    assert_error(
        &api.post("/mine", json!({ "blocks": 1 })).await,
        409,
        "busy",
    );
    // Cancelling needs the token.
    let a = answer(api.http.delete(api.url(&location))).await;
    assert_error(&a, 401, "unauthorized");

    let t = Instant::now();
    let (s, v) = api.delete(&location).await;
    assert_eq!(s, 200, "{v}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(v["state"], "cancelled", "{v}");
    let mined = v["mined"].as_u64().unwrap();
    assert!((5..100_000).contains(&mined), "{v}");
    assert_eq!(v["blocks"].as_array().unwrap().len() as u64, mined);
    // Mining stopped: the height holds (a block found as it stopped may still count).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let height = api.tn.height();
    assert!(height == 3 + mined || height == 4 + mined, "{height} {v}");
    assert_eq!(api.tn.node.snapshot().mining_threads, 0);
    assert!(
        holds_for(Duration::from_millis(300), || api.tn.height() == height).await,
        "still mining: {height} then {}",
        api.tn.height()
    );
    // Deleted means gone: the job is forgotten once it has stopped.
    assert_error(&api.get(&location).await, 404, "not_found");
    assert_error(&api.delete(&location).await, 404, "not_found");
    assert_error(&api.get("/jobs/999").await, 404, "not_found");
    assert_error(&api.get("/jobs/x").await, 404, "not_found");

    // Turning mining off stops a mine job too.
    let (s, job) = api.post("/mine", json!({ "blocks": 100_000 })).await;
    assert_eq!(s, 202, "{job}");
    let path = format!("/jobs/{}", job["id"]);
    job_until(&api, &path, |v| v["mined"].as_u64().unwrap() >= 1).await;
    let (s, _) = api.post("/mining", json!({ "mining": false })).await;
    assert_eq!(s, 200);
    let v = job_until(&api, &path, |v| v["state"] != "running").await;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(api.tn.node.snapshot().mining_threads, 0);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_needs_the_token_and_runs_one_at_a_time() {
    let api = start_with(ApiLimits::default()).await;
    api.tn.mine(400, address(&key(1))).await;
    let a = api.get("/validate").await;
    assert_error(&a, 401, "unauthorized");
    let (s, v) = api.get_auth("/validate").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["height"], 400);
    // Eight at once: one runs, the others are told the node is busy (or, if one finished
    // before another began, run after it); none waits behind another.
    let all = futures_util::future::join_all((0..8).map(|_| api.get_auth("/validate"))).await;
    let ok = all.iter().filter(|a| a.0 == 200).count();
    let busy = all
        .iter()
        .filter(|a| a.0 == 503 && a.1["code"] == "busy")
        .count();
    eprintln!("8 concurrent validations: {ok} ran, {busy} busy");
    assert_eq!(ok + busy, 8, "{all:?}");
    assert!(ok >= 1 && busy >= 1, "{all:?}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_chain_pages_at_once_do_not_slow_info() {
    let api = start_with(ApiLimits::default()).await;
    api.tn.mine(500, address(&key(1))).await;
    let url = api.url("/chain?from=0&limit=500&hex=true");
    let mut pages = Vec::new();
    for _ in 0..100 {
        let (http, url) = (api.http.clone(), url.clone());
        pages.push(tokio::spawn(async move {
            match http.get(&url).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (s, _) = api.get("/info").await;
        assert_eq!(s, 200);
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for p in pages {
        statuses.push(within("pages", p).await.unwrap());
    }
    times.sort();
    eprintln!("GET /info during 100 pages of 500 blocks: {times:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200));
    assert!(
        times[8] < Duration::from_millis(100),
        "GET /info slowed down: {times:?}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_long_lists_and_dials_dead_addresses_at_once() {
    let api = start_with(ApiLimits::default()).await;
    // UDP sockets that never answer: a dial to each gives up after its 5 s timeout.
    let mut dead = Vec::new();
    for _ in 0..17 {
        dead.push(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    }
    let addrs: Vec<String> = dead
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    let a = api.post("/nodes/register", json!({ "nodes": addrs })).await;
    assert_error(&a, 400, "bad_nodes");
    assert!(
        a.1["error"].as_str().unwrap().contains("at most 16"),
        "{a:?}"
    );
    assert_eq!(api.tn.view().peers.len(), 0);

    let t = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(9),
        api.post("/nodes/register", json!({ "nodes": addrs[..16] })),
    )
    .await;
    let took = t.elapsed();
    let (s, v) = r.unwrap_or_else(|_| panic!("16 dead addresses still dialling after {took:?}"));
    eprintln!("16 dead addresses answered in {took:?}");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["failed"].as_array().unwrap().len(), 16, "{v}");
    assert_eq!(v["connected"], json!([]));
    assert!(took < Duration::from_secs(8), "{took:?}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_import_is_read_as_it_arrives_and_refused_early() {
    let api = start_with(ApiLimits::default()).await;
    let params = Network::Regtest.params();
    // A valid chain file header, then 200 MiB of zeros: the first block is refused at once.
    let mut head = b"CTCHAIN\0".to_vec();
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&params.genesis_hash.0);
    head.extend_from_slice(&1_000_000u64.to_le_bytes());
    let total: usize = 200 << 20;
    let mut s = TcpStream::connect(api.addr()).await.unwrap();
    let req = format!(
        "POST /chain/import HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        api.token,
        head.len() + total
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(&head).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent2 = sent.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..200 {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            sent2.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let answered_after = loop {
        let n = within("import answer", rd.read(&mut buf))
            .await
            .unwrap_or(0);
        if got.is_empty() && n > 0 {
            got.extend_from_slice(&buf[..n]);
            break sent.load(std::sync::atomic::Ordering::SeqCst);
        }
        if n == 0 {
            break sent.load(std::sync::atomic::Ordering::SeqCst);
        }
    };
    writer.abort();
    let text = String::from_utf8_lossy(&got);
    eprintln!("import answered after {} MiB of 200", answered_after >> 20);
    assert!(text.starts_with("HTTP/1.1 422"), "{text}");
    assert!(
        answered_after < 64 << 20,
        "answered after {answered_after} bytes"
    );

    // Over the limit by its declared length: refused before it is read.
    let big = chain_tui::api::routes::MAX_IMPORT + 1;
    let mut s = TcpStream::connect(api.addr()).await.unwrap();
    let req = format!(
        "POST /chain/import HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {big}\r\n\r\n",
        api.token
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let n = within("413", s.read(&mut buf)).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");

    // A real chain still imports, through the stream.
    let other = TestNode::new().await;
    other.mine(30, address(&key(2))).await;
    let file = other.dir.path().join("c.bin");
    other.node.export_chain(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let (s, v) = answer(
        api.http
            .post(api.url("/chain/import"))
            .bearer_auth(&api.token)
            .body(bytes),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["height"], 30);
    assert_eq!(api.tn.tip(), other.tip());
    other.stop().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mine_through_a_running_node_follows_the_job() {
    let node = Child::start();
    let data = node._dir.path().join("data");
    let run = |args: &[&str]| {
        bin::regtest(&data)
            .args(args)
            .output()
            .expect("chain-tui runs")
    };
    // More blocks than are answered at once: the API makes a job and the CLI follows it.
    let out = run(&["--json", "mine", "--blocks", "40", "--threads", "1"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["blocks"].as_array().unwrap().len(), 40, "{v}");
    assert_eq!(v["height"], 40);
    let info: Value = serde_json::from_slice(&run(&["--json", "chain", "info"]).stdout).unwrap();
    assert_eq!(info["tip"], v["tip"]);
    // Too many threads: refused before anything runs.
    let out = run(&["mine", "--blocks", "1", "--threads", "100000"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at most"),
        "{out:?}"
    );
}

/// Event streams and long polls keep their connections busy, so they have a cap of their own
/// below the connection cap: one more is refused `503 busy` at once, everything else still
/// gets through, and a place frees when a stream's client goes or a poll answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_and_long_polls_have_their_own_cap() {
    let api = start_with(ApiLimits {
        max_streams: 3,
        ..ApiLimits::default()
    })
    .await;
    async fn open(api: &Api, path: &str) -> reqwest::Response {
        within("an answer", api.http.get(api.url(path)).send())
            .await
            .unwrap()
    }
    let a = open(&api, "/events").await;
    let b = open(&api, "/events").await;
    let c = open(&api, "/events").await;
    for r in [&a, &b, &c] {
        assert_eq!(r.status(), 200);
    }
    let refused = answer(api.http.get(api.url("/events"))).await;
    assert_error(&refused, 503, "busy");
    let text = refused.1["error"].as_str().unwrap();
    assert!(text.contains("3 event streams and long polls"), "{text}");
    assert_error(
        &answer(api.http.get(api.url("/blocks/wait?timeout=0"))).await,
        503,
        "busy",
    );
    // Everything else still gets through.
    for path in ["/info", "/chain/tips", "/mempool", "/peers"] {
        let (s, v) = api.get(path).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    // A client that goes frees its place (noticed when the next event is written to it).
    drop(c);
    let freed = async {
        loop {
            api.tn.mine(1, address(&key(1))).await;
            let (s, _) = answer(api.http.get(api.url("/blocks/wait?timeout=0"))).await;
            if s == 200 {
                break;
            }
        }
    };
    within("the closed stream's place", freed).await;
    // A waiting long poll holds a place until it answers (watched through /metrics, which
    // takes none).
    let streams = |text: &Value| {
        text.as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("chaintui_api_streams "))
            .map(|n| n.trim().parse::<u64>().unwrap())
    };
    let open_now = async || streams(&api.get("/metrics").await.1);
    assert_eq!(open_now().await, Some(2), "a and b");
    let tip = api.ok("/info").await["tip"].as_str().unwrap().to_string();
    let url = api.url(&format!("/blocks/wait?after={tip}&timeout=30"));
    let poll = tokio::spawn(api.http.get(url).send());
    let taken = async {
        while open_now().await != Some(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within("the long poll's place", taken).await;
    assert_error(
        &answer(api.http.get(api.url("/blocks/wait?timeout=0"))).await,
        503,
        "busy",
    );
    // The next block answers it, and its place frees.
    api.tn.mine(1, address(&key(1))).await;
    let r = within("the long poll's answer", poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["changed"], true, "{v}");
    let (s, v) = answer(api.http.get(api.url("/blocks/wait?timeout=0"))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(open_now().await, Some(2));
    drop((a, b));
    api.stop().await;
}

/// With `reads_need_token` (`--api-read-token`, and always beyond loopback) every request
/// needs the token, after the same delay as a write; with it, the Host check is not needed
/// (a rebinding page cannot know the token); the document says so for every operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_need_the_token_too() {
    let api = start_with(ApiLimits {
        reads_need_token: true,
        auth_delay: Duration::from_millis(40),
        ..ApiLimits::default()
    })
    .await;
    for path in [
        "/info",
        "/chain",
        "/mempool",
        "/openapi.json",
        "/metrics",
        "/events",
    ] {
        let t = Instant::now();
        let a = answer(api.http.get(api.url(path))).await;
        assert_error(&a, 401, "unauthorized");
        assert!(t.elapsed() >= Duration::from_millis(40), "{path}: no delay");
    }
    let (s, info) = api.get_auth("/info").await;
    assert_eq!(s, 200, "{info}");
    let (s, _) = answer(
        api.http
            .get(api.url("/info"))
            .bearer_auth(&api.token)
            .header("host", "node.example:8080"),
    )
    .await;
    assert_eq!(s, 200, "the Host check gives way to the token");
    let (s, doc) = api.get_auth("/openapi.json").await;
    assert_eq!(s, 200);
    let info_op = &doc["paths"]["/info"]["get"];
    assert_eq!(info_op["security"], json!([{ "bearer": [] }]));
    assert!(info_op["responses"]["401"].is_object());
    api.stop().await;
    // Beyond loopback, reads always need it.
    use chain_tui::api::server::reads_need_token_at;
    assert!(!reads_need_token_at("127.0.0.1:1".parse().unwrap()));
    assert!(!reads_need_token_at("[::1]:1".parse().unwrap()));
    assert!(reads_need_token_at("0.0.0.0:1".parse().unwrap()));
    assert!(reads_need_token_at("[::]:1".parse().unwrap()));
    assert!(reads_need_token_at("192.168.1.5:1".parse().unwrap()));
}
