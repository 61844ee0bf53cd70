//! `chain-tui demo`: several real nodes in one process, side by side.
//!
//! This module owns the multi-node demo: N nodes, each with its own redb store in a temporary
//! data dir, its own QUIC endpoint on 127.0.0.1 and its own wallet, linked by a topology; their
//! partitions and heals, stops and restarts; scripted scenarios; and the dashboard that shows
//! them. It talks to nodes only through [`crate::node::NodeHandle`] and
//! [`crate::node::P2pHandle`].
//!
//! - [`controller`]: the nodes and their links, with no UI ([`controller::Demo`]);
//! - [`scenario`]: TOML scenarios (`assets/demo/`), parsed and checked up front, and the runner
//!   that plays them and reports each step;
//! - [`tree`]: the recent block tree of all nodes as plain data;
//! - [`app`], [`keys`]: the dashboard's state and keys (as data: `assets/demo/keymap.toml`);
//! - [`render`]: drawing, from an [`app::DemoApp`] alone;
//! - [`dashboard`]: the terminal and the event loop, and the key-to-redraw measurement;
//! - [`simview`]: `--sim`, a simulated network of hundreds of nodes ([`crate::sim`]) in
//!   virtual time, with how far each new block has spread.
//!
//! `--headless` runs the same controller and scenarios with a step-by-step report on stdout.

pub mod app;
pub mod controller;
pub mod dashboard;
pub mod keys;
pub mod render;
pub mod scenario;
pub mod simview;
pub mod tree;

use crate::core::params::Network;
use anyhow::{Result, anyhow, bail};
use clap::Args;
use controller::{Demo, DemoConfig, Topology};
use scenario::{Progress, Scenario};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Nodes the dashboard has columns for.
pub const MAX_DASHBOARD_NODES: usize = 8;
/// Nodes when neither `--nodes` nor the scenario says.
pub const DEFAULT_NODES: usize = 3;

/// `chain-tui demo` options (the network is the global `--network`).
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Nodes to run: default 3 (or the scenario's); the dashboard shows up to 8, headless runs
    /// take up to 64; with --sim, default 200 and up to 2,000.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// A simulated network instead of real nodes: every node runs the real protocol on a
    /// virtual network of world regions, in virtual time you can speed up or pause.
    #[arg(long)]
    pub sim: bool,
    /// With --sim: how blocks travel (compact or full).
    #[arg(long, value_enum)]
    pub relay: Option<crate::sim::Relay>,
    /// With --sim: the seed (the same seed gives the same network and blocks).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How the nodes are linked (default line, or the scenario's).
    #[arg(long, value_enum)]
    pub topology: Option<Topology>,
    /// A scenario file (TOML, see assets/demo/) to play.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// No dashboard: print a step-by-step report; exit non-zero if an expectation fails.
    #[arg(long)]
    pub headless: bool,
    /// Keep the nodes' data dirs (and the log) instead of removing them on exit.
    #[arg(long)]
    pub keep: bool,
    /// Start with every node mining.
    #[arg(long)]
    pub mine: bool,
    /// Each node's mining power, one per node (e.g. 1,1,3: node 3 finds three blocks for
    /// each one of the others). On regtest a node of power p finds paced blocks p times as
    /// often; on devnet it mines on p threads. 0 to 100; default 1 each (or the scenario's).
    #[arg(long, value_delimiter = ',', value_name = "P,P,…")]
    pub power: Option<Vec<u32>>,
    /// Mean seconds between two paced blocks of a mining node of power 1 on regtest (default
    /// 2, or the scenario's); with --sim, between two blocks of the whole network in virtual
    /// time (default 60).
    #[arg(long)]
    pub block_interval: Option<f64>,
    /// Headless without a scenario: stop after this many seconds (default: at Ctrl-C).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Measure key-to-redraw latency instead of opening the terminal: press this many keys
    /// into the dashboard drawn off-screen (160×50) and print the percentiles.
    #[arg(long, value_name = "KEYS")]
    pub bench_keys: Option<usize>,
}

/// A fresh, empty directory for the demo's nodes.
fn make_dir() -> Result<PathBuf> {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!(
        "chain-tui-demo-{}-{}",
        std::process::id(),
        hex::encode(b)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// What a run is made of, checked before anything starts.
struct Plan {
    nodes: usize,
    topology: Topology,
    scenario: Option<Scenario>,
    interval: Duration,
    network: Network,
    power: Vec<u32>,
}

/// The network a demo runs on: the one chosen (`--network` or `CHAIN_TUI_NETWORK`), else the
/// scenario's, else devnet. A chosen network that contradicts the scenario's is refused.
fn demo_network(chosen: Option<Network>, scenario: Option<&Scenario>) -> Result<Network> {
    match (chosen, scenario.and_then(|s| s.network)) {
        (Some(c), Some(n)) if c != n => bail!(
            "the scenario is written for {n} (its `network`), but --network {} was given \
             (or CHAIN_TUI_NETWORK): leave it out, or give --network {}",
            c.name(),
            n.name()
        ),
        (Some(c), _) => Ok(c),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(Network::Devnet),
    }
}

fn plan(args: &DemoArgs, chosen: Option<Network>) -> Result<Plan> {
    let scenario = match &args.scenario {
        Some(p) => Some(Scenario::load(p).map_err(|e| anyhow!(e))?),
        None => None,
    };
    let network = demo_network(chosen, scenario.as_ref())?;
    let nodes = args
        .nodes
        .or(scenario.as_ref().map(|s| s.nodes))
        .unwrap_or(DEFAULT_NODES);
    let max = if args.headless {
        controller::MAX_NODES
    } else {
        MAX_DASHBOARD_NODES
    };
    if nodes == 0 || nodes > max {
        bail!(
            "--nodes must be 1 to {max}{}",
            if args.headless {
                ""
            } else {
                " with the dashboard (up to 64 with --headless)"
            }
        );
    }
    if let Some(sc) = &scenario {
        sc.check_nodes(nodes).map_err(|e| anyhow!(e))?;
    }
    let power = match (&args.power, scenario.as_ref().and_then(|s| s.power.clone())) {
        (Some(p), _) => {
            if p.len() != nodes {
                bail!(
                    "--power gives {} powers for {nodes} nodes: give one per node (e.g. {})",
                    p.len(),
                    vec!["1"; nodes].join(",")
                );
            }
            p.clone()
        }
        (None, Some(p)) => p,
        (None, None) => Vec::new(),
    };
    if let Some(p) = power.iter().find(|p| **p > controller::MAX_POWER) {
        bail!(
            "--power must be 0 to {} for each node, not {p}",
            controller::MAX_POWER
        );
    }
    let interval = args
        .block_interval
        .or(scenario.as_ref().and_then(|s| s.block_interval))
        .unwrap_or(2.0);
    if !(interval.is_finite() && (0.01..=3600.0).contains(&interval)) {
        bail!("--block-interval must be 0.01 to 3600 seconds");
    }
    if let Some(s) = args.seconds
        && !(s.is_finite() && s >= 0.0)
    {
        bail!("--seconds must be a positive number");
    }
    let topology = args
        .topology
        .or(scenario.as_ref().and_then(|s| s.topology))
        .unwrap_or_default();
    Ok(Plan {
        nodes,
        topology,
        scenario,
        interval: Duration::from_secs_f64(interval),
        network,
        power,
    })
}

/// The simulated network `--sim` asks for, checked.
fn sim_plan(args: &DemoArgs) -> Result<simview::SimDemo> {
    if args.headless || args.scenario.is_some() || args.bench_keys.is_some() {
        bail!(
            "--sim draws a simulated network in the terminal; for a headless one, run `chain-tui sim`"
        );
    }
    if args.topology.is_some()
        || args.mine
        || args.keep
        || args.seconds.is_some()
        || args.power.is_some()
    {
        bail!("--topology, --mine, --power, --keep and --seconds are for real nodes, not --sim");
    }
    let nodes = args.nodes.unwrap_or(200);
    if !(2..=2000).contains(&nodes) {
        bail!("--nodes must be 2 to 2000 with --sim");
    }
    let interval = args.block_interval.unwrap_or(60.0);
    if !(interval.is_finite() && (1.0..=86_400.0).contains(&interval)) {
        bail!("--block-interval must be 1 to 86400 seconds with --sim");
    }
    Ok(simview::SimDemo {
        nodes,
        relay: args.relay.unwrap_or(crate::sim::Relay::Compact),
        block_interval: Duration::from_secs_f64(interval),
        seed: args.seed.unwrap_or(1),
    })
}

/// Run `chain-tui demo` on the network chosen (`None`: the scenario's, else devnet); returns
/// the exit code (1 when a scenario failed).
pub async fn run(args: DemoArgs, network: Option<Network>) -> Result<i32> {
    if args.sim {
        let cfg = sim_plan(&args)?;
        simview::run(cfg).await?;
        return Ok(0);
    }
    if args.relay.is_some() || args.seed.is_some() {
        bail!("--relay and --seed go with --sim");
    }
    // Everything the user gave is checked before a directory or a node exists.
    let plan = plan(&args, network)?;
    let dir = make_dir()?;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Logs go to a file in the demo's dir (and the dashboard's log ring), never the terminal.
    let _log_guard = crate::term::logbuf::init(&dir, filter)
        .map_err(|e| anyhow!("cannot write the log in {}: {e}", dir.display()))?;
    let cfg = DemoConfig {
        nodes: plan.nodes,
        topology: plan.topology,
        network: plan.network,
        dir: dir.clone(),
        block_interval: plan.interval,
        power: plan.power.clone(),
    };
    let result = run_in(&args, plan, cfg).await;
    if args.keep {
        eprintln!("demo data kept in {}", dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot remove {}: {e}", dir.display());
    }
    result
}

/// A line of headless output on stdout. `false` once stdout is gone (a reader that stopped, as
/// `| head -1` does): the run then ends quietly, cleaning up as at any end. Any other error
/// writing stdout is said on stderr, once.
fn say(line: impl std::fmt::Display) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            GONE.store(true, Ordering::Relaxed);
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("demo: cannot write the report: {e}");
            }
            false
        }
    }
}

async fn run_in(args: &DemoArgs, plan: Plan, cfg: DemoConfig) -> Result<i32> {
    let headless = args.headless;
    if headless
        && !say(format_args!(
            "demo: {} {} nodes on {} ({}), data in {}",
            cfg.nodes,
            cfg.topology.name(),
            cfg.network,
            if cfg.network == Network::Regtest {
                "paced regtest mining"
            } else {
                "real difficulty"
            },
            cfg.dir.display()
        ))
    {
        return Ok(0);
    }
    let started = Instant::now();
    let demo = Demo::start(cfg).await?;
    if headless
        && !say(format_args!(
            "demo: {} nodes started in {:.2} s; log in {}",
            demo.len(),
            started.elapsed().as_secs_f64(),
            demo.dir().join("chain-tui.log").display()
        ))
    {
        demo.shutdown().await;
        return Ok(0);
    }
    if args.mine {
        for i in 0..demo.len() {
            demo.set_mining(i, true).await?;
        }
    }
    let code = if let Some(n) = args.bench_keys {
        let r = dashboard::bench_keys(&demo, n).await;
        demo.shutdown().await;
        say(r?);
        0
    } else if headless {
        let code = headless_run(&demo, plan.scenario, args.seconds).await;
        demo.shutdown().await;
        code
    } else {
        let r = dashboard::run(&demo, plan.scenario).await;
        demo.shutdown().await;
        r?;
        0
    };
    Ok(code)
}

/// The headless run: play the scenario with a line per step, or watch the network until Ctrl-C
/// (or `--seconds`), with a status line every five seconds. Ends early, with 0, once stdout is
/// gone.
async fn headless_run(demo: &Demo, scenario: Option<Scenario>, seconds: Option<f64>) -> i32 {
    let Some(sc) = scenario else {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        let end = async {
            match seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = every.tick() => if !print_status(demo) { return 0 },
                _ = tokio::signal::ctrl_c() => break,
                _ = &mut end => break,
            }
        }
        print_status(demo);
        return 0;
    };
    if !say(format_args!(
        "scenario {}: {} ({} steps)",
        sc.name,
        sc.description,
        sc.steps.len()
    )) {
        return 0;
    }
    let (_pause_tx, pause_rx) = tokio::sync::watch::channel(scenario::Pace::default());
    let gone = std::sync::Arc::new(tokio::sync::Notify::new());
    let told = gone.clone();
    let play = scenario::run(demo, &sc, pause_rx, move |p| {
        let line = match p {
            Progress::Finished(r) => Some(r.to_string()),
            Progress::Started { say: Some(s), .. } => Some(format!("           » {s}")),
            Progress::Started { .. } => None,
        };
        if let Some(l) = line
            && !say(l)
        {
            told.notify_one();
        }
    });
    let report = tokio::select! {
        r = play => r,
        () = gone.notified() => return 0,
    };
    let (passed, total) = report.expectations();
    if report.skipped > 0 {
        say(format_args!(
            "{} step(s) skipped after a failed step",
            report.skipped
        ));
    }
    let verdict = if report.passed() { "PASSED" } else { "FAILED" };
    say(format_args!(
        "scenario {}: {verdict} ({passed}/{total} expectations)",
        sc.name
    ));
    print_status(demo);
    if report.passed() { 0 } else { 1 }
}

/// The nodes' status, a line each; `false` once stdout is gone.
fn print_status(demo: &Demo) -> bool {
    for s in demo.status(false) {
        let state = if !s.running {
            "stopped"
        } else if s.partitioned {
            "partitioned"
        } else {
            "up"
        };
        let peers: Vec<String> = s.peers.iter().map(|p| (p + 1).to_string()).collect();
        if !say(format_args!(
            "  node {:>2} {state:<11} height {:>5} tip {} peers [{}]",
            s.index + 1,
            s.height,
            s.tip.short(),
            peers.join(",")
        )) {
            return false;
        }
    }
    true
}
