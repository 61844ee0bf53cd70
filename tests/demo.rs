//! The multi-node demo: every shipped scenario passes headless through the library API, bad
//! scenario files are refused with a clear message, a partition holds until healed, and a
//! stopped node restarted from its data dir catches up to the common tip. Regtest, 127.0.0.1,
//! bounded waits.

use chain_tui::core::params::Network;
use chain_tui::demo::controller::{Demo, DemoConfig, Topology};
use chain_tui::demo::scenario::{self, Scenario};
use std::path::Path;
use std::time::{Duration, Instant};

async fn demo(dir: &Path, nodes: usize, topology: Topology) -> Demo {
    Demo::start(DemoConfig {
        nodes,
        topology,
        network: Network::Regtest,
        dir: dir.to_path_buf(),
        block_interval: Duration::from_millis(500),
    })
    .await
    .expect("demo starts")
}

/// Poll `cond` every 50 ms for at most `limit`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

async fn play(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(file);
    let sc = Scenario::load(&path).expect("the shipped scenario parses");
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path(), sc.nodes, sc.topology.unwrap_or_default()).await;
    let (_pause, pause_rx) = tokio::sync::watch::channel(false);
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        scenario::run(&d, &sc, pause_rx, |_| {}),
    )
    .await
    .expect("the scenario ends in time");
    d.shutdown().await;
    let text: Vec<String> = report.steps.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{file} failed:\n{}", text.join("\n"));
    let (passed, total) = report.expectations();
    assert!(total > 0 && passed == total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_fork_and_reorg_passes() {
    play("fork-and-reorg.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_double_spend_passes() {
    play("double-spend.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_late_joiner_passes() {
    play("late-joiner.toml").await;
}

#[test]
fn bad_scenarios_are_refused_with_the_reason() {
    let cases = [
        ("not toml at all [", "expected"),
        ("name = \"x\"\n", "no steps"),
        ("[[step]]\ndo = \"fly\"\n", "unknown action \"fly\""),
        ("[[step]]\nnode = 1\n", "`do` is required"),
        (
            "[[step]]\ndo = \"mine\"\nnode = 1\n",
            "`blocks` is required",
        ),
        (
            "[[step]]\ndo = \"mine\"\nnode = 0\nblocks = 1\n",
            "node number",
        ),
        (
            "[[step]]\ndo = \"mine\"\nnode = 1\nblocks = 1\nspeed = 3\n",
            "unknown field `speed`",
        ),
        (
            "[[step]]\ndo = \"send\"\nfrom = 1\nto = 1\namount = \"1\"\n",
            "different nodes",
        ),
        (
            "[[step]]\ndo = \"send\"\nfrom = 1\nto = 2\namount = \"1.000000001\"\n",
            "amount",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"magic\"\n",
            "unknown condition",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"converged\"\nnode = 2\n",
            "does not apply",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"one_spend\"\nlabels = [\"a\", \"b\"]\n",
            "no send has the label",
        ),
        ("[[step]]\ndo = \"sleep\"\nseconds = -1\n", "seconds"),
        (
            "nodes = 99\n[[step]]\ndo = \"heal\"\n",
            "`nodes` must be 1 to 64",
        ),
        (
            "topology = \"star\"\n[[step]]\ndo = \"heal\"\n",
            "line, ring or mesh",
        ),
        (
            "colour = 1\n[[step]]\ndo = \"heal\"\n",
            "unknown key `colour`",
        ),
    ];
    for (text, want) in cases {
        let err = Scenario::parse(text).expect_err(text);
        assert!(
            err.contains(want),
            "{text:?}: {err:?} does not mention {want:?}"
        );
    }
    let sc = Scenario::parse("[[step]]\ndo = \"mine\"\nnode = 5\nblocks = 1\n").unwrap();
    let err = sc.check_nodes(3).unwrap_err();
    assert!(err.contains("--nodes 5"), "{err}");
    assert!(Scenario::load(Path::new("/no/such/scenario.toml")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_holds_until_healed() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path(), 3, Topology::Mesh).await;
    d.mine(0, 2).await.unwrap();
    assert!(eventually(Duration::from_secs(20), || d.common_tip().is_some()).await);
    d.partition(&[2]).await.unwrap();
    assert!(d.is_partitioned(2));
    assert!(d.partition(&[7]).await.is_err(), "no node 8");
    d.mine(2, 3).await.unwrap();
    // Nothing crosses the cut, and no one reconnects by itself (peer exchange, retries).
    let tip3 = d.running(2).unwrap().node.snapshot().tip;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = d.status(false);
    assert!(st[2].peers.is_empty(), "{:?}", st[2].peers);
    assert_eq!(st[0].peers, vec![1]);
    assert_eq!(st[0].height, 2);
    assert_ne!(st[0].tip, tip3);
    d.heal(&[]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || d.common_tip() == Some(tip3)).await,
        "{:?}",
        d.status(false)
    );
    assert!(
        d.deepest_reorg(None) == 0,
        "node 3's branch extends the common chain"
    );
    d.shutdown().await;
}
