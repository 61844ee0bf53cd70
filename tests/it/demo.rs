//! The multi-node demo: every shipped scenario passes headless through the library API, bad
//! scenario files are refused with a clear message, a partition holds until healed, and a
//! stopped node restarted from its data dir catches up to the common tip. Regtest, 127.0.0.1,
//! bounded waits.

use chain_tui::core::params::Network;
use chain_tui::demo::controller::{Demo, DemoConfig, DemoError, Topology};
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
        power: Vec::new(),
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

async fn play(file: &str) -> scenario::ScenarioReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(file);
    let sc = Scenario::load(&path).expect("the shipped scenario parses");
    let dir = tempfile::tempdir().unwrap();
    // The scenario's own powers and pace, as `chain-tui demo --scenario` takes them.
    let d = Demo::start(DemoConfig {
        nodes: sc.nodes,
        topology: sc.topology.unwrap_or_default(),
        network: Network::Regtest,
        dir: dir.path().to_path_buf(),
        block_interval: Duration::from_secs_f64(sc.block_interval.unwrap_or(0.5)),
        power: sc.power.clone().unwrap_or_default(),
    })
    .await
    .expect("demo starts");
    let (_pause, pause_rx) = tokio::sync::watch::channel(scenario::Pace::default());
    let report = tokio::time::timeout(
        Duration::from_secs(90),
        scenario::run(&d, &sc, pause_rx, |_| {}),
    )
    .await
    .expect("the scenario ends in time");
    d.shutdown().await;
    let text: Vec<String> = report.steps.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{file} failed:\n{}", text.join("\n"));
    let (passed, total) = report.expectations();
    assert!(total > 0 && passed == total);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_fork_and_reorg_passes() {
    play("fork-and-reorg.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_double_spend_passes() {
    let report = play("double-spend.toml").await;
    // The verdicts say what happened in words: which payment survived, where, how deep.
    let one = report
        .steps
        .iter()
        .find(|s| s.text.starts_with("expect exactly one of"))
        .expect("the one-spend expectation");
    assert!(
        one.detail
            .starts_with("payment to-node-3 survived: confirmed at height ")
            && one.detail.contains("on nodes 1,2,3")
            && one
                .detail
                .contains("to-node-2 is in no node's chain or mempool"),
        "{}",
        one.detail
    );
    let reorg = report.steps.last().expect("steps");
    assert!(
        reorg
            .detail
            .starts_with("node 2's deepest reorganisation: 1 block replaced"),
        "{}",
        reorg.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_late_joiner_passes() {
    play("late-joiner.toml").await;
}

/// The step whose text starts with `start`.
fn step<'a>(r: &'a scenario::ScenarioReport, start: &str) -> &'a scenario::StepReport {
    r.steps
        .iter()
        .find(|s| s.text.starts_with(start))
        .unwrap_or_else(|| panic!("no step starts with {start:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_invalid_block_gets_the_sender_banned_by_every_honest_node() {
    let report = play("invalid-block.toml").await;
    let relay = step(&report, "node 4 relays an invalid block");
    assert!(
        relay.detail.contains("claims 100 where 50 is allowed"),
        "{}",
        relay.detail
    );
    let banned = step(&report, "expect node 4 banned");
    assert!(
        banned
            .detail
            .starts_with("node 4 banned by nodes 1,2,3: invalid block ")
            && banned.detail.contains("coinbase pays 100, at most 50"),
        "{}",
        banned.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_majority_attack_reverses_a_payment_with_three_confirmations() {
    let report = play("majority-attack.toml").await;
    let attack = step(&report, "node 1 pays node 3 10");
    // "payment … had c confirmations": at least the 3 asked for (the private branch may
    // need longer than that to get ahead).
    let confirmations: u64 = attack
        .detail
        .split(" confirmation")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        confirmations >= 3 && attack.detail.contains("the victim took its branch"),
        "{}",
        attack.detail
    );
    let reversed = step(&report, "expect payment to-node-3 reversed on node 3");
    assert!(
        reversed
            .detail
            .starts_with("payment to-node-3 is gone from node 3's chain, mempool and wallet"),
        "{}",
        reversed.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_selfish_mining_earns_more_than_its_share_of_the_blocks() {
    let report = play("selfish-mining.toml").await;
    let run = step(&report, "node 1 mines selfishly for 300 blocks");
    // The run says how the ties went and what γ came to.
    assert!(
        run.detail.contains(" ties: ") && run.detail.contains("γ = "),
        "{}",
        run.detail
    );
    let gain = step(&report, "expect node 1 earned more of the best chain");
    assert!(
        gain.detail.contains("Eyal–Sirer's model at α = ") && gain.detail.contains(" points"),
        "{}",
        gain.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_and_the_node_columns_come_from_one_read_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = Demo::start(DemoConfig {
        nodes: 3,
        topology: Topology::Mesh,
        network: Network::Regtest,
        dir: dir.path().to_path_buf(),
        block_interval: Duration::from_millis(60),
        power: Vec::new(),
    })
    .await
    .expect("demo starts");
    for i in 0..3 {
        d.set_mining(i, true).await.unwrap();
    }
    // Every node mines about 16 blocks a second: a read of the columns and a later read of
    // the tree would disagree often.
    let mut checked = 0;
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        let d2 = d.clone();
        let (st, tree) = tokio::task::spawn_blocking(move || d2.view(false, 60))
            .await
            .unwrap();
        for s in st.iter().filter(|s| s.running) {
            assert_eq!(
                tree.tips[s.index],
                Some(s.tip),
                "node {}'s tip",
                s.index + 1
            );
            let b = tree.blocks.iter().find(|b| b.hash == s.tip);
            let b = b.unwrap_or_else(|| panic!("node {}'s tip is in the tree", s.index + 1));
            assert_eq!(b.height, s.height);
            assert_eq!(b.have[s.index], Have::Active);
            checked += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..3 {
        d.set_mining(i, false).await.unwrap();
    }
    d.shutdown().await;
    assert!(checked > 100, "{checked} checks");
}

/// Blocks each node mined among the recent blocks the demo saw.
fn mined_by(d: &Demo) -> Vec<usize> {
    let input = d.tree_input(400);
    let mut n = vec![0; d.len()];
    for b in &input.blocks {
        if let Some(m) = b.miner {
            n[m] += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_blocks_come_in_proportion_to_each_nodes_power() {
    let dir = tempfile::tempdir().unwrap();
    // Power 3 against 1 and 0: node 1 should find 3 of every 4 blocks, node 3 none.
    let d = Demo::start(DemoConfig {
        nodes: 3,
        topology: Topology::Mesh,
        network: Network::Regtest,
        dir: dir.path().to_path_buf(),
        block_interval: Duration::from_millis(400),
        power: vec![3, 1, 0],
    })
    .await
    .expect("demo starts");
    let st = d.status(false);
    assert_eq!(st.iter().map(|s| s.power).collect::<Vec<_>>(), [3, 1, 0]);
    for i in 0..3 {
        d.set_mining(i, true).await.unwrap();
    }
    let st = d.status(false);
    assert_eq!(
        st.iter().map(|s| s.power_share_pm).collect::<Vec<_>>(),
        [750, 250, 0]
    );
    assert!(
        eventually(Duration::from_secs(60), || mined_by(&d)
            .iter()
            .sum::<usize>()
            >= 120)
        .await,
        "blocks come: {:?}",
        mined_by(&d)
    );
    for i in 0..3 {
        d.set_mining(i, false).await.unwrap();
    }
    let n = mined_by(&d);
    d.shutdown().await;
    let total = n.iter().sum::<usize>() as f64;
    let share = n[0] as f64 / total;
    // Binomial, p = 0.75, n ≥ 120: σ ≤ 0.04; the band is ±3.7σ around 0.75 (equal power
    // would give 0.5).
    assert!(
        (0.6..=0.9).contains(&share),
        "node 1's share {share:.3} of {n:?}"
    );
    assert_eq!(n[2], 0, "power 0 finds no block: {n:?}");
    // A power out of range is refused and changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let err = Demo::start(DemoConfig {
        nodes: 2,
        topology: Topology::Line,
        network: Network::Regtest,
        dir: dir.path().to_path_buf(),
        block_interval: Duration::from_millis(400),
        power: vec![1, 101],
    })
    .await
    .err()
    .expect("power 101 is refused");
    assert!(err.to_string().contains("0 to 100"), "{err}");
}

#[test]
fn a_power_list_that_does_not_fit_the_nodes_is_refused() {
    use crate::common::bin;
    let out = bin::run(bin::command().args([
        "--network",
        "regtest",
        "demo",
        "--headless",
        "--nodes",
        "3",
        "--power",
        "1,2",
    ]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--power gives 2 powers for 3 nodes"),
        "{out:?}"
    );
    let out = bin::run(bin::command().args([
        "--network",
        "regtest",
        "demo",
        "--headless",
        "--nodes",
        "2",
        "--power",
        "1,x",
    ]));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--power"), "{out:?}");
}

#[test]
fn bad_scenarios_are_refused_with_the_reason() {
    let cases = [
        ("not toml at all [", "expected"),
        ("name = \"x\"\n", "no steps"),
        ("[[step]]\ndo = \"fly\"\n", "unknown variant `fly`"),
        ("[[step]]\nnode = 1\n", "missing field `do`"),
        (
            "[[step]]\ndo = \"mine\"\nnode = 1\n",
            "missing field `blocks`",
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
        (
            "[[step]]\ndo = \"wait\"\nuntil = \"seen\"\nnode = 2\nlabel = \"p\"\n",
            "no send has the label",
        ),
        (
            "[[step]]\ndo = \"wait\"\nuntil = \"seen\"\nnode = 2\n",
            "`label` (a send label) is required",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"height\"\nnode = 2\nat_least = 1\nlabel = \"p\"\n",
            "does not apply",
        ),
        ("[[step]]\ndo = \"sleep\"\nseconds = -1\n", "seconds"),
        ("[[step]]\ndo = \"heal\"\nsay = 3\n", "`say` must be text"),
        (
            &format!("[[step]]\ndo = \"heal\"\nsay = \"{}\"\n", "x".repeat(301)),
            "longer than 300",
        ),
        (
            "[[step]]\ndo = \"wait\"\nthat = \"converged\"\n",
            "`until` (the condition) is required",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"converged\"\nuntil = \"converged\"\n",
            "not `until`",
        ),
        (
            "nodes = 99\n[[step]]\ndo = \"heal\"\n",
            "`nodes` must be 1 to 64",
        ),
        (
            "topology = \"star\"\n[[step]]\ndo = \"heal\"\n",
            "unknown variant `star`, expected one of `line`, `ring`, `mesh`",
        ),
        (
            "colour = 1\n[[step]]\ndo = \"heal\"\n",
            "unknown field `colour`",
        ),
        ("power = [1, 101]\n[[step]]\ndo = \"heal\"\n", "0 to 100"),
        (
            "[[step]]\ndo = \"power\"\nnode = 1\npower = -1\n",
            "mining power must be 0 to 100",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"nuke\"\nnode = 1\n",
            "unknown variant `nuke`",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"majority\"\nnode = 1\namount = \"1\"\n",
            "`victim` (the node paid) is required",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"majority\"\nnode = 1\nvictim = 1\namount = \"1\"\n",
            "its own `victim`",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"majority\"\nnode = 1\nvictim = 2\n",
            "`amount`",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"majority\"\nnode = 1\nvictim = 2\namount = \"1\"\nconfirmations = 0\n",
            "`confirmations` must be 1 to 100",
        ),
        (
            "[[step]]\ndo = \"attack\"\nkind = \"invalid_block\"\nnode = 1\nvictim = 2\n",
            "`victim` does not apply to the invalid_block attack",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"reversed\"\nnode = 2\nlabel = \"p\"\n",
            "no send has the label",
        ),
        (
            "[[step]]\ndo = \"expect\"\nthat = \"banned\"\n",
            "`node` (a node number) is required",
        ),
    ];
    for (text, want) in cases {
        let err = Scenario::parse(text).expect_err(text);
        assert!(
            err.contains(want),
            "{text:?}: {err:?} does not mention {want:?}"
        );
    }
    // A mistake in a step names the step, its action and where the step starts.
    let text = "name = \"x\"\n\n[[step]]\ndo = \"heal\"\n\n[[step]]\ndo = \"mine\"\nnode = 1\nblockz = 2\n";
    let err = Scenario::parse(text).unwrap_err();
    assert!(
        err.contains("step 2 (mine) at line 6, column 1") && err.contains("unknown field `blockz`"),
        "{err}"
    );
    // A TOML syntax error says where too.
    let err = Scenario::parse("name = \"x\"\nnodes = = 2\n").unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    let sc = Scenario::parse("[[step]]\ndo = \"mine\"\nnode = 5\nblocks = 1\n").unwrap();
    let err = sc.check_nodes(3).unwrap_err();
    assert!(err.contains("--nodes 5"), "{err}");
    let sc = Scenario::parse("power = [1, 2, 3]\n[[step]]\ndo = \"heal\"\n").unwrap();
    assert_eq!(sc.power, Some(vec![1, 2, 3]));
    let err = sc.check_nodes(2).unwrap_err();
    assert!(err.contains("`power` gives 3 nodes their power"), "{err}");
    // An attack's label can be named by later conditions.
    let sc = Scenario::parse(
        "[[step]]\ndo = \"attack\"\nkind = \"majority\"\nnode = 1\nvictim = 3\namount = \"2\"\nlabel = \"p\"\n\
         [[step]]\ndo = \"expect\"\nthat = \"reversed\"\nnode = 3\nlabel = \"p\"\n",
    )
    .unwrap();
    assert_eq!(sc.highest_node(), 2);
    let err = Scenario::load(Path::new("/no/such/scenario.toml")).unwrap_err();
    assert!(
        err.starts_with("cannot read scenario /no/such/scenario.toml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_holds_until_healed() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path(), 3, Topology::Mesh).await;
    d.mine(0, 2).await.unwrap();
    assert!(eventually(Duration::from_secs(20), || d.common_tip().is_some()).await);
    d.partition(&[2]).await.unwrap();
    assert!(d.is_partitioned(2));
    assert!(
        matches!(d.partition(&[7]).await, Err(DemoError::Bad(e)) if e.contains("no node 8")),
        "no node 8"
    );
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

// ---- the dashboard: snapshots from fixed data, keys driven through the app ----

use chain_tui::core::amount::Amount;
use chain_tui::core::hash::BlockHash;
use chain_tui::core::pow::{U256, Work};
use chain_tui::demo::app::{DemoApp, DemoCommand, Overlay, ScenarioView};
use chain_tui::demo::controller::NodeStatus;
use chain_tui::demo::render;
use chain_tui::demo::scenario::StepReport;
use chain_tui::demo::tree::{Have, TreeBlock, TreeInput};
use chain_tui::wallet::Balance;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn h(n: u8, branch: u8) -> BlockHash {
    let mut b = [n; 32];
    b[0] = branch * 0x40 + n;
    BlockHash(b)
}

/// Three nodes after a partition: heights 0..=6 shared, then node 3 mined its own branch
/// (7, 8) while nodes 1 and 2 mined 7..=9; node 2 reorganised once, two deep.
fn fork_tree() -> TreeInput {
    let mut blocks = Vec::new();
    let mut prev = BlockHash::ZERO;
    for n in 0..=9u8 {
        let hash = h(n, 0);
        blocks.push(TreeBlock {
            hash,
            height: n as u64,
            prev,
            miner: Some(0),
            have: if n <= 6 {
                vec![Have::Active; 3]
            } else {
                vec![Have::Active, Have::Active, Have::Missing]
            },
        });
        prev = hash;
    }
    let mut prev = h(6, 0);
    for n in 7..=8u8 {
        let hash = h(n, 1);
        blocks.push(TreeBlock {
            hash,
            height: n as u64,
            prev,
            miner: Some(2),
            have: vec![Have::Missing, Have::Side, Have::Active],
        });
        prev = hash;
    }
    TreeInput {
        blocks,
        tips: vec![Some(h(9, 0)), Some(h(9, 0)), Some(h(8, 1))],
        reorgs: vec![(1, 2, h(9, 0))],
    }
}

fn fixture_app() -> DemoApp {
    let mut app = DemoApp::new(Network::Regtest, Topology::Line, 3);
    app.tree = fork_tree();
    app.nodes = (0..3)
        .map(|i| NodeStatus {
            index: i,
            running: i != 1,
            partitioned: i == 2,
            mining: i == 0,
            power: if i == 0 { 3 } else { 1 },
            power_share_pm: if i == 0 { 1000 } else { 0 },
            height: if i == 2 { 8 } else { 9 },
            tip: if i == 2 { h(8, 1) } else { h(9, 0) },
            work: Work(U256::from(if i == 2 { 18u64 } else { 20 })),
            peers: Vec::new(),
            mempool_count: i,
            mempool_bytes: 250 * i,
            hashrate: 0,
            balance: Some(Balance {
                confirmed: Amount::from_units(50 * 100_000_000 * i as u64),
                unconfirmed: Amount::ZERO,
                immature: Amount::from_units(450 * 100_000_000),
            }),
            deepest_reorg: if i == 1 { 2 } else { 0 },
            listen: Some(format!("127.0.0.1:{}", 7001 + i).parse().unwrap()),
        })
        .collect();
    app.scenario = Some(ScenarioView {
        name: "fork-and-reorg".into(),
        steps: 10,
        current: Some((5, "mine 4 block(s) on node 3".into())),
        done: (1..=4)
            .map(|i| StepReport {
                index: i,
                text: format!("step number {i}"),
                ok: true,
                detail: if i == 4 {
                    "2 mined".into()
                } else {
                    String::new()
                },
                expectation: i == 2,
                took: Duration::from_millis(10),
                at: Duration::from_millis(100 * i as u64),
            })
            .collect(),
        description: "both sides of a partition mine; the heal reorganises the lighter side".into(),
        say: Some("node 3, cut off, mines four blocks on its own branch".into()),
        started: 5,
        pace: chain_tui::demo::app::dashboard_pace(),
        finished: None,
    });
    app
}

fn screen(app: &DemoApp, w: u16, hgt: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, hgt)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    t
}

#[test]
fn snapshot_side_by_side_layout() {
    insta::assert_snapshot!(screen(&fixture_app(), 150, 30).backend());
}

#[test]
fn snapshot_block_tree_with_a_fork() {
    let view = chain_tui::demo::tree::TreeView::build(&fork_tree(), 12, 3);
    assert_eq!(view.lanes, 2);
    let area = ratatui::layout::Rect::new(0, 0, 60, 12);
    let mut buf = ratatui::buffer::Buffer::empty(area);
    render::render_tree(&view, 20, area, &mut buf);
    let mut t = Terminal::new(TestBackend::new(60, 12)).unwrap();
    t.draw(|f| {
        let b = f.buffer_mut();
        b.merge(&buf);
    })
    .unwrap();
    insta::assert_snapshot!(t.backend());
}

/// A chain of 20 blocks with short forks: one block off 3, two off 8, one off 15 and one
/// off 16 (the last two overlap in height, so they cannot share a lane).
fn many_forks() -> TreeInput {
    let mut blocks = Vec::new();
    let mut prev = BlockHash::ZERO;
    for n in 0..=19u8 {
        let hash = h(n, 0);
        blocks.push(TreeBlock {
            hash,
            height: n as u64,
            prev,
            miner: Some(0),
            have: vec![Have::Active; 3],
        });
        prev = hash;
    }
    let mut fork = |from: u8, len: u8, branch: u8| {
        let mut prev = h(from, 0);
        for n in from + 1..=from + len {
            let hash = h(n, branch);
            blocks.push(TreeBlock {
                hash,
                height: n as u64,
                prev,
                miner: Some(1),
                have: vec![Have::Side, Have::Missing, Have::Missing],
            });
            prev = hash;
        }
    };
    fork(3, 1, 1);
    fork(8, 2, 2);
    fork(15, 1, 3);
    fork(16, 1, 1);
    TreeInput {
        blocks,
        tips: vec![Some(h(19, 0)); 3],
        reorgs: vec![],
    }
}

#[test]
fn forks_share_a_lane_once_out_of_each_others_way_and_no_connector_crosses_a_block() {
    use chain_tui::demo::tree::TreeView;
    let view = TreeView::build(&many_forks(), 20, 4);
    // Four forks on two lanes, highest first: the ones off 16, 8 and 3 are apart in height
    // and share lane 1; the one off 15 overlaps the one off 16 (rows 15–17) and takes lane 2.
    assert_eq!((view.lanes, view.hidden_lanes), (3, 0), "{view:?}");
    let lane_at = |height: u64, branch: u8| {
        let row = view.rows.iter().find(|r| r.height == height).unwrap();
        row.cells.iter().position(|c| {
            c.as_ref()
                .is_some_and(|c| c.hash == h(height as u8, branch))
        })
    };
    assert_eq!(lane_at(4, 1), Some(1));
    assert_eq!(lane_at(9, 2), Some(1));
    assert_eq!(lane_at(10, 2), Some(1));
    assert_eq!(lane_at(17, 1), Some(1));
    assert_eq!(lane_at(16, 3), Some(2));
    // Every fork row: the lanes between the forking lane and the fork are empty there.
    for row in &view.rows {
        for &(lane, from) in &row.forks {
            for m in from + 1..lane {
                assert!(
                    row.cells[m].is_none(),
                    "height {}: lane {m} crossed",
                    row.height
                );
            }
            assert!(
                row.cells[lane].is_none(),
                "height {}: ╯ on a block",
                row.height
            );
        }
    }
    // With room for two lanes only, the overlapping fork is left out and counted.
    let narrow = TreeView::build(&many_forks(), 20, 2);
    assert_eq!((narrow.lanes, narrow.hidden_lanes), (2, 1));
    let area = ratatui::layout::Rect::new(0, 0, 60, 21);
    let mut buf = ratatui::buffer::Buffer::empty(area);
    render::render_tree(&view, 18, area, &mut buf);
    let mut t = Terminal::new(TestBackend::new(60, 21)).unwrap();
    t.draw(|f| f.buffer_mut().merge(&buf)).unwrap();
    insta::assert_snapshot!(t.backend());
}

#[test]
fn snapshot_help_and_send_form() {
    let mut app = fixture_app();
    app.on_key(key('?'));
    insta::assert_snapshot!("demo_help", screen(&app, 120, 30).backend());
    app.on_key(code(KeyCode::Esc));
    app.on_key(key('s'));
    for c in "3".chars() {
        app.on_key(key(c));
    }
    app.on_key(code(KeyCode::Tab));
    for c in "99999".chars() {
        app.on_key(key(c));
    }
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!("demo_send_form_error", screen(&app, 100, 24).backend());
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}
fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn brackets_change_the_selected_nodes_power_and_say_its_share() {
    let mut app = fixture_app();
    // Node 1 mines alone with power 3: `]` asks for 4, all of the mining power.
    assert_eq!(app.on_key(key(']')), Some(DemoCommand::SetPower(0, 4)));
    let text = &app.message.as_ref().unwrap().text;
    assert_eq!(text, "node 1: power 4, 100% of the mining power");
    assert_eq!(app.on_key(key('[')), Some(DemoCommand::SetPower(0, 2)));
    // Node 3 does not mine: the message says so; at power 0, `[` does nothing.
    app.on_key(key('3'));
    assert_eq!(app.on_key(key('[')), Some(DemoCommand::SetPower(2, 0)));
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("it is not mining"),
        "{:?}",
        app.message
    );
    app.nodes[2].power = 0;
    assert_eq!(app.on_key(key('[')), None);
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("power is already 0"),
        "{:?}",
        app.message
    );
    // Shares count only the nodes that mine: node 1 at 3 and node 3 at 1 give 75 % and 25 %.
    app.nodes[2].mining = true;
    assert_eq!(
        chain_tui::demo::app::power_text(&app.nodes, 2, 1),
        "node 3: power 1, 25% of the mining power"
    );
}

#[test]
fn bad_keys_leave_a_message_and_change_nothing() {
    let mut app = fixture_app();
    let before = app.clone();
    // No node 7; node 2 is stopped (no mining, no send, no second stop); node 1 is running.
    assert_eq!(app.on_key(key('7')), None);
    assert!(app.message.as_ref().unwrap().text.contains("no node 7"));
    assert_eq!(app.selected, 0);
    assert_eq!(app.on_key(key('r')), None, "node 1 runs: r does nothing");
    assert_eq!(app.on_key(key('2')), None);
    assert_eq!(app.on_key(key('m')), None);
    assert_eq!(app.on_key(key('s')), None);
    assert_eq!(app.on_key(key('x')), None);
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("already stopped")
    );
    assert_eq!(app.on_key(key('z')), None);
    assert_eq!(app.on_key(key('3')), None);
    assert_eq!(app.on_key(key('p')), None, "node 3 is already cut off");
    // The send form refuses a bad recipient and a bad amount, then sends a good one.
    app.on_key(key('s'));
    for bad in ["3", "9", "x"] {
        if let Some(Overlay::Send(f)) = &mut app.overlay {
            f.to = bad.into();
            f.amount = "1".into();
        }
        assert_eq!(app.on_key(code(KeyCode::Enter)), None, "to {bad}");
    }
    for bad in ["", "-1", "0", "1.000000001", "101"] {
        if let Some(Overlay::Send(f)) = &mut app.overlay {
            f.to = "1".into();
            f.amount = bad.into();
        }
        assert_eq!(app.on_key(code(KeyCode::Enter)), None, "amount {bad:?}");
    }
    if let Some(Overlay::Send(f)) = &mut app.overlay {
        f.amount = "2.5".into();
    }
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(DemoCommand::Send {
            from: 2,
            to: 0,
            amount: Amount::from_units(250_000_000)
        })
    );
    assert_eq!(app.nodes, before.nodes);
    assert_eq!(app.on_key(key('h')), Some(DemoCommand::Heal(vec![2])));
    assert!(matches!(
        app.on_key(key(' ')),
        Some(DemoCommand::Pace(p)) if p.paused
    ));
    assert_eq!(app.on_key(key('q')), Some(DemoCommand::Quit));
}

/// `x` then `r` on a node, through the dashboard's keys: it stops, the others move on, and
/// after the restart it comes back from its data dir to the common tip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_restart_by_key_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path(), 3, Topology::Ring).await;
    d.mine(0, 3).await.unwrap();
    assert!(eventually(Duration::from_secs(20), || d.common_tip().is_some()).await);
    let mut app = DemoApp::new(Network::Regtest, Topology::Ring, 3);
    app.nodes = d.status(false);
    app.on_key(key('2'));
    let Some(DemoCommand::Stop(i)) = app.on_key(key('x')) else {
        panic!("x stops the selected node");
    };
    assert_eq!(i, 1);
    d.stop(i).await.unwrap();
    assert!(!d.is_running(1));
    d.mine(0, 4).await.unwrap();
    assert!(eventually(Duration::from_secs(20), || d.common_tip().is_some()).await);
    let tip = d.common_tip().unwrap();
    app.nodes = d.status(false);
    app.busy[1] = false;
    let Some(DemoCommand::Restart(i)) = app.on_key(key('r')) else {
        panic!("r restarts the stopped node");
    };
    d.restart(i).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || {
            d.running(1).map(|r| r.node.snapshot().tip) == Some(tip)
        })
        .await,
        "{:?}",
        d.status(false)
    );
    assert_eq!(d.common_tip(), Some(tip));
    assert_eq!(d.running(1).unwrap().node.snapshot().height, 7);
    d.shutdown().await;
}

// ---- `demo --sim`: the simulated network ----

fn sim_demo(nodes: usize) -> chain_tui::demo::simview::SimDemo {
    chain_tui::demo::simview::SimDemo {
        nodes,
        relay: chain_tui::sim::Relay::Compact,
        block_interval: Duration::from_secs(60),
        seed: 3,
    }
}

fn sim_screen(frame: &chain_tui::demo::simview::SimFrame, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| chain_tui::demo::simview::draw(f, frame))
        .unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_simulated_network_view_shows_how_far_the_newest_block_spread_with_true_counts() {
    use chain_tui::demo::simview::{frame_at, short};
    // The moment the last block of the first 30 minutes is a third of a second old:
    // on its way.
    let before = frame_at(&sim_demo(60), Duration::from_secs(1800)).unwrap();
    let mined = before
        .spreads
        .first()
        .expect("blocks in 30 minutes")
        .mined_at;
    let frame = frame_at(&sim_demo(60), mined + Duration::from_millis(330)).unwrap();
    let newest = frame.spreads.first().unwrap();
    assert!(
        (2..60).contains(&newest.reached()),
        "partly spread: {}",
        newest.reached()
    );
    let text = sim_screen(&frame, 140, 45);
    // The title names the newest block, and the summary its reach, as the simulation has it.
    assert!(
        text.contains(&format!("({})", short(&newest.hash))),
        "{text}"
    );
    assert!(
        text.contains(&format!("reached {} of 60 nodes", newest.reached())),
        "{text}"
    );
    // One cell per node in the grid panel (below its summary line), full where the node
    // has the block.
    let grid: Vec<&str> = text
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with('└'))
        .collect();
    let full: usize = grid.iter().map(|l| l.matches('█').count()).sum();
    let empty: usize = grid.iter().map(|l| l.matches('·').count()).sum();
    assert_eq!(full, newest.reached(), "{text}");
    assert_eq!(full + empty, 60, "{text}");
    // The recent blocks list each block with its reach.
    for b in frame.spreads.iter().take(5) {
        assert!(text.contains(&short(&b.hash)), "{text}");
    }
    insta::assert_snapshot!("demo_sim_view", text);
}

#[tokio::test]
async fn the_simulated_network_speeds_up_pauses_and_quits_from_the_keyboard() {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use futures_util::StreamExt;
    let key = |c: char| {
        Ok(Event::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    };
    // Each key after a pause, so the simulation thread takes it in before the next one; the
    // frame drawn last before `q` is one the simulation made after the pause.
    let keys = Box::pin(
        futures_util::stream::iter(vec![key('+'), key('+'), key(' '), key('q')]).then(
            |k| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                k
            },
        ),
    );
    let mut t = Terminal::new(TestBackend::new(140, 45)).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        chain_tui::demo::simview::event_loop(&mut t, keys, sim_demo(30)),
    )
    .await
    .expect("q ends the loop")
    .expect("no error");
    // The last frame drawn (before q) shows the speed and the pause the simulation ran with.
    let buf = t.backend().buffer().clone();
    let top: String = (0..140).map(|x| buf[(x, 0)].symbol().to_string()).collect();
    assert!(top.contains("speed ×4"), "{top}");
    assert!(top.contains("paused"), "{top}");
}

/// The shipped scenario's file, for the binary.
fn scenario_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(name)
}

#[test]
fn a_scenario_runs_on_its_own_network_and_a_closed_pipe_ends_the_run_quietly_and_cleans_up() {
    use crate::common::bin;
    use std::io::BufRead;
    use std::process::Stdio;
    // No --network: the scenario says regtest, so it runs there (it was refused: the default
    // devnet was taken as the user's choice).
    let mut child = bin::command()
        .arg("demo")
        .arg("--headless")
        .arg("--scenario")
        .arg(scenario_file("fork-and-reorg.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chain-tui");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a first line");
    assert!(first.contains(" on regtest "), "{first}");
    let dir = first
        .split("data in ")
        .nth(1)
        .map(|d| std::path::PathBuf::from(d.trim()))
        .expect("the data dir named");
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    // The reader is gone (as `| head -1` goes): the run ends with 0, says nothing on stderr
    // about it, and its temporary dir is gone.
    let mut stderr = child.stderr.take().expect("stderr piped");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = bin::wait(&mut child, Duration::from_secs(90)).expect("the demo ends");
    let errors = errors.join().expect("stderr read");
    assert_eq!(status.code(), Some(0), "{errors}");
    assert!(!errors.contains("panicked"), "{errors}");
    assert!(!errors.contains("Broken pipe"), "{errors}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn a_network_chosen_against_the_scenarios_own_is_refused_naming_both() {
    use crate::common::bin;
    let file = scenario_file("fork-and-reorg.toml");
    let file = file.to_str().expect("a UTF-8 path");
    for (args, env) in [
        (vec!["--network", "devnet"], vec![]),
        (vec![], vec![("CHAIN_TUI_NETWORK", "devnet")]),
    ] {
        let out = bin::run(
            bin::command()
                .args(&args)
                .args(["demo", "--headless", "--scenario", file])
                .envs(env),
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("written for regtest")
                && out.stderr.contains("--network devnet was given"),
            "{out:?}"
        );
    }
    // Chosen and the same: it runs, and passes.
    let out = bin::run(bin::command().args([
        "--network",
        "regtest",
        "demo",
        "--headless",
        "--scenario",
        file,
    ]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("PASSED"), "{out:?}");
}

#[test]
fn the_key_hints_stay_with_a_message_beside_them_until_it_expires() {
    use chain_tui::demo::app::MESSAGE_FOR;
    let bottom = |app: &DemoApp| {
        let t = screen(app, 160, 30);
        let b = t.backend().buffer();
        let y = b.area.height - 1;
        (0..b.area.width)
            .map(|x| b[(x, y)].symbol().to_string())
            .collect::<String>()
    };
    let mut app = fixture_app();
    let hints = bottom(&app);
    assert!(hints.contains(" m ") && hints.contains("quit"), "{hints}");
    // A key that does nothing: its message appears beside the hints, which stay.
    app.on_key(key('7'));
    let line = bottom(&app);
    assert!(line.contains("there is no node 7"), "{line}");
    assert!(line.contains(" m ") && line.contains(" s "), "{line}");
    // It goes once it is old; not before.
    let since = app.message.as_ref().expect("a message").since;
    assert!(!app.expire_message(since + MESSAGE_FOR - Duration::from_millis(1)));
    assert!(app.message.is_some());
    assert!(app.expire_message(since + MESSAGE_FOR));
    assert_eq!(bottom(&app), hints);
}

#[test]
fn a_restart_and_a_cut_of_a_stopped_node_say_what_really_happens() {
    use chain_tui::core::pow::{U256, Work};
    use chain_tui::demo::app::after_restart;
    use chain_tui::demo::controller::NodeStatus;
    let node = |index: usize, height: u64, running: bool, partitioned: bool| NodeStatus {
        index,
        height,
        running,
        partitioned,
        work: Work(U256::from(height)),
        ..NodeStatus::default()
    };
    let behind = [node(0, 12, true, false), node(1, 9, true, false)];
    assert_eq!(
        after_restart(&behind, 1),
        "node 2 restarted at height 9, 3 blocks behind node 1 (12): catching up from its peers"
    );
    let level = [node(0, 12, true, false), node(1, 12, true, false)];
    assert_eq!(
        after_restart(&level, 1),
        "node 2 restarted at height 12, level with the others"
    );
    let cut = [node(0, 12, true, false), node(1, 9, true, true)];
    assert!(after_restart(&cut, 1).contains("cannot catch up until h heals"));
    let alone = [node(0, 12, false, false), node(1, 9, true, false)];
    assert!(after_restart(&alone, 1).contains("no other node runs"));
    // `p` on a stopped node cuts its links for when it restarts, and says so.
    let mut app = fixture_app();
    app.on_key(key('2'));
    assert!(!app.nodes[1].running);
    assert_eq!(app.on_key(key('p')), Some(DemoCommand::Partition(1)));
    let m = app.message.as_ref().expect("a message");
    assert!(
        m.text
            .contains("stopped: its links stay cut when r restarts it"),
        "{m:?}"
    );
}

#[test]
fn a_step_caption_is_read_and_kept() {
    let sc = Scenario::parse(
        "[[step]]\ndo = \"heal\"\nsay = \"the links come back\"\n[[step]]\ndo = \"heal\"\n",
    )
    .expect("parses");
    assert_eq!(sc.steps[0].say.as_deref(), Some("the links come back"));
    assert_eq!(sc.steps[1].say, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_mode_runs_one_step_per_grant_and_speed_shortens_sleeps() {
    use chain_tui::demo::scenario::{Pace, Progress};
    let sc = Scenario::parse(
        "[[step]]\ndo = \"sleep\"\nseconds = 2\nsay = \"first\"\n\
         [[step]]\ndo = \"sleep\"\nseconds = 0.1\n",
    )
    .expect("parses");
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path(), 1, Topology::Line).await;
    let (pace_tx, pace_rx) = tokio::sync::watch::channel(Pace {
        stepping: true,
        speed_pct: 400,
        ..Pace::default()
    });
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let run = {
        let (d, sc) = (d.clone(), sc.clone());
        tokio::spawn(async move {
            scenario::run(&d, &sc, pace_rx, move |p| {
                let _ = seen_tx.send((Instant::now(), p));
            })
            .await
        })
    };
    // Step mode, nothing granted: nothing starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(seen.try_recv().is_err(), "a step started ungranted");
    // One grant: the first step runs, with its caption, and at ×4 its 2 s take about 0.5 s.
    pace_tx.send_modify(|p| p.granted = 1);
    let (t0, first) = seen.recv().await.expect("step 1 starts");
    assert!(
        matches!(&first, Progress::Started { index: 1, say: Some(s), .. } if s == "first"),
        "{first:?}"
    );
    let (t1, done) = seen.recv().await.expect("step 1 ends");
    assert!(matches!(done, Progress::Finished(ref r) if r.index == 1 && r.ok));
    let took = t1 - t0;
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // The second waits for its own grant.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(seen.try_recv().is_err(), "step 2 started ungranted");
    pace_tx.send_modify(|p| p.granted = 2);
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the scenario ends")
        .expect("the run task");
    assert!(report.passed() && report.steps.len() == 2);
    d.shutdown().await;
}

#[test]
fn n_enters_step_mode_plus_and_minus_change_speed_and_space_plays_on() {
    use chain_tui::demo::scenario::Pace;
    let mut app = fixture_app();
    // The fixture's step 5 is running: n turns step mode on and lets nothing new start.
    let pace = |c: Option<DemoCommand>| match c {
        Some(DemoCommand::Pace(p)) => p,
        other => panic!("{other:?}"),
    };
    let p = pace(app.on_key(key('n')));
    assert!(p.stepping && p.granted == 5, "{p:?}");
    // Once it ended, n grants step 6 exactly.
    if let Some(s) = &mut app.scenario {
        s.current = None;
        s.pace = p;
    }
    let p = pace(app.on_key(key('n')));
    assert!(p.stepping && !p.paused && p.granted == 6, "{p:?}");
    if let Some(s) = &mut app.scenario {
        s.pace = p;
    }
    assert_eq!(pace(app.on_key(key('+'))).speed_pct, 200);
    assert_eq!(pace(app.on_key(key('+'))).speed_pct, 400);
    assert_eq!(pace(app.on_key(key('-'))).speed_pct, 200);
    let p: Pace = pace(app.on_key(key(' ')));
    assert!(!p.stepping && !p.paused, "{p:?}");
    assert!(app.message.as_ref().unwrap().text.contains("plays on"));
}

/// Step mode as a person uses it, in a real terminal: Space pauses, `n` runs exactly one step
/// (its caption appears, and the next does not start), Space plays on to the verdict.
#[cfg(unix)]
#[test]
fn a_closed_terminal_ends_the_demo_as_q_does_and_removes_its_dir() {
    use crate::pty::{Tui, wait_exit};
    // SIGHUP is what a closed window or `tmux kill-session` sends: by default it kills the
    // process where it stands, leaving the nodes' temporary dir behind.
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_chain-tui");
    let mut t = Tui::start_with(
        bin,
        &["--network", "regtest", "demo"],
        &[("TMPDIR", tmp.path())],
        40,
        140,
    );
    t.wait_for("the dashboard", Duration::from_secs(60), |s| {
        s.contains("Block tree")
    });
    let demo_dirs = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("chain-tui-demo-")
            })
            .count()
    };
    assert_eq!(demo_dirs(), 1, "the demo's dir is in TMPDIR");
    let pid = t.child.process_id().expect("a pid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (status, restored, _) = wait_exit(&mut t, "SIGHUP");
    assert!(status.success(), "{status:?}");
    assert!(restored, "the screen is restored");
    assert_eq!(demo_dirs(), 0, "the demo's dir is removed");
}

#[test]
fn in_a_terminal_n_runs_one_step_at_a_time_and_space_plays_on() {
    use crate::pty::{Tui, wait_exit};
    let file = scenario_file("fork-and-reorg.toml");
    let bin = env!("CARGO_BIN_EXE_chain-tui");
    let mut t = Tui::start(
        bin,
        &["demo", "--scenario", file.to_str().expect("UTF-8 path")],
        45,
        160,
    );
    let long = Duration::from_secs(60);
    t.wait_for("the scenario", long, |s| {
        s.contains("scenario fork-and-reorg")
    });
    t.send(" ");
    t.wait_for("paused", long, |s| s.contains("paused"));
    t.wait_for("step 1 done", long, |s| s.contains(" 1 ok "));
    let step2 = "every node on one tip";
    let step3 = "node 3's links are cut";
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !t.text().contains(step2),
        "paused, yet step 2 started:\n{}",
        t.text()
    );
    t.send("n");
    t.wait_for("step 2's caption", long, |s| {
        s.contains(step2) && s.contains("step by step (n)")
    });
    t.wait_for("step 2 done", long, |s| s.contains(" 2 ok "));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !t.text().contains(step3),
        "step 3 ran ungranted:\n{}",
        t.text()
    );
    t.send("n");
    t.wait_for("step 3's caption", long, |s| s.contains(step3));
    t.send(" ");
    t.wait_for("the verdict", Duration::from_secs(120), |s| {
        s.contains("PASSED")
    });
    t.send("q");
    let (status, restored, cursor) = wait_exit(&mut t, "q");
    assert!(status.success() && restored && cursor, "{status:?}");
}

#[test]
fn an_expectation_shows_what_it_saw_under_it_in_the_dashboard() {
    let mut app = fixture_app();
    if let Some(s) = &mut app.scenario {
        s.done.push(StepReport {
            index: 5,
            text: "expect exactly one of to-node-2 / to-node-3 confirmed (≤ 10 s)".into(),
            ok: true,
            detail: "payment to-node-3 survived: confirmed at height 12 on nodes 1,2,3".into(),
            expectation: true,
            took: Duration::from_millis(10),
            at: Duration::from_millis(500),
        });
        s.current = None;
    }
    let t = screen(&app, 160, 40);
    let text: String = {
        let b = t.backend().buffer();
        (0..b.area.height)
            .map(|y| {
                (0..b.area.width)
                    .map(|x| b[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(text.contains("payment to-node-3 survived"), "{text}");
}
