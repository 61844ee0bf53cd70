//! Running a command: its arguments checked first ([`Job`]), then run on the data dir itself
//! when no node runs there, or through that node's API (found through `node.json`); either way
//! the answer is one of the API's types.

use super::answer::{Answer, Exported};
use super::{ChainCmd, Cli, Command, Global, NodeArgs, PeersCmd, WalletCmd};
use crate::api::client::ApiClient;
use crate::api::types as t;
use crate::api::views::{self, BlockId, parse_txid};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::core::hash::Txid;
use crate::core::params::Network;
use crate::core::pow::{U256, si_text};
use crate::node::P2pConfig;
use crate::node::PeerAddr;
use crate::node::{NodeConfig, NodeHandle};
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use crate::wallet::Wallet;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What a command printed: text lines and the JSON object.
pub(super) struct Output {
    pub text: String,
    pub json: Value,
}

pub(super) fn out(text: impl Into<String>, json: Value) -> Output {
    Output {
        text: text.into(),
        json,
    }
}

/// `chain-tui sim`: run the simulator on a blocking thread; its report and the wall time.
async fn simulate(args: super::SimArgs) -> Result<Output> {
    let config = crate::sim::SimConfig {
        nodes: args.nodes as usize,
        peers: args.peers as usize,
        block_interval: std::time::Duration::from_secs(args.block_interval),
        block_size: args.block_size,
        latency: args.latency,
        duration: std::time::Duration::from_secs(args.minutes * 60),
        seed: args.seed,
        miners: args.miners as usize,
        upload_bps: args.upload_mbps * 1_000_000,
        verify_per_mb: std::time::Duration::from_millis(args.verify_ms_per_mb),
        relay: args.relay,
        txs: args.txs as usize,
        tx_size: args.tx_size,
        tx_delay: std::time::Duration::from_secs(args.tx_delay),
        validation: args.validate,
        invalid_miner: args.invalid_miner,
        ..crate::sim::SimConfig::default()
    };
    if args.invalid_miner && args.validate != crate::sim::Validation::Full {
        bail!("--invalid-miner needs --validate full: light nodes do not check blocks");
    }
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || crate::sim::run(config))
        .await?
        .map_err(|e| anyhow!(e))?;
    let wall = started.elapsed();
    let [p50, p90, p99] = report.propagation_ms;
    let [q50, q90, q99] = report.propagation_p90_ms;
    let text = format!(
        "{} nodes, {} simulated minutes, {} blocks mined ({} stale: {}.{:02} %)\n\
         block propagation, median over blocks: 50 % of nodes {:.2} s, 90 % {:.2} s, 99 % {:.2} s\n\
         block propagation, 90th percentile over blocks: 50 % {:.2} s, 90 % {:.2} s, 99 % {:.2} s\n\
         {:.1} MB sent and received per node, {} messages, {} events; wall time {:.1} s{}",
        report.nodes,
        args.minutes,
        report.blocks_mined,
        report.stale_blocks,
        report.stale_ppm / 10_000,
        report.stale_ppm % 10_000 / 100,
        p50 as f64 / 1000.0,
        p90 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        q50 as f64 / 1000.0,
        q90 as f64 / 1000.0,
        q99 as f64 / 1000.0,
        report.bytes_per_node as f64 / 1e6,
        report.messages,
        report.events,
        wall.as_secs_f64(),
        match report.relay {
            crate::sim::Relay::Full => "\nrelay: full blocks (protocol 1)".to_string(),
            crate::sim::Relay::Compact => format!(
                "\nrelay: compact blocks, {} received, {} rebuilt from the mempool alone, \
                 {} transactions asked for, {} fetched whole",
                report.compact.received,
                report.compact.rebuilt_at_once,
                report.compact.txs_asked,
                report.compact.fetched_whole
            ),
        },
    );
    let mut text = text;
    if report.validation == crate::sim::Validation::Full {
        text.push_str(&format!(
            "\nfull validation: {} payments, {} confirmed on the best chain; {} bans in force; \
             {} blocks refused from a node's own template",
            report.payments, report.payments_confirmed, report.bans, report.own_blocks_refused
        ));
    }
    let mut json = serde_json::to_value(&report)?;
    json["wall_seconds"] = json!(wall.as_secs_f64());
    Ok(out(text, json))
}

/// Run the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let mut g = cli.global.clone();
    g.load_passphrase_file()?;
    #[cfg(feature = "tui")]
    let dashboard = cli.opens_dashboard();
    let attach_url = match &cli.command {
        #[cfg(feature = "tui")]
        Some(Command::Attach { url }) => url.is_some(),
        _ => false,
    };
    if let Some(f) = &g.token_file
        && g.node_url.is_none()
        && !attach_url
    {
        bail!(
            "--token-file {} goes with --node URL (or attach URL): a node on the data dir is \
             found through its node.json",
            f.display()
        );
    }
    let (output, code) = match cli.command {
        #[cfg(feature = "tui")]
        None if dashboard => {
            crate::tui::run(tui_config(&g, cli.node)?).await?;
            return Ok(0);
        }
        #[cfg(feature = "tui")]
        Some(Command::Attach { url }) => {
            if url.is_some() {
                g.node_url = url;
            }
            super::attach::attach(&g).await?;
            return Ok(0);
        }
        #[cfg(feature = "tui")]
        Some(Command::Tui(args)) => {
            crate::tui::run(tui_config(&g, args)?).await?;
            return Ok(0);
        }
        None => (status(&g).await?, 0),
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => {
            let network = g.network_given.then_some(g.network);
            return crate::demo::run(args, network).await;
        }
        #[cfg(feature = "bench")]
        Some(Command::Bench(b)) => (super::bench::bench(&g, b).await?, 0),
        Some(Command::Sim(args)) => (simulate(args).await?, 0),
        Some(Command::Node(args)) => {
            run_node(&g, args).await?;
            (out("", json!({ "stopped": true })), 0)
        }
        Some(cmd) => {
            // Everything the user typed is checked before a data dir is touched (with --node,
            // once the node has said which network it runs).
            let node = running_node(&g).await?;
            if let Some((_, net)) = &node {
                g.network = *net;
            }
            let job = prepare(&g, cmd)?;
            let answer = match node {
                Some((api, net)) => remote_command(&api, net, job).await.map_err(|e| {
                    let refused = e
                        .downcast_ref::<crate::api::ApiError>()
                        .is_some_and(|e| e.status.as_u16() == 401);
                    match (&g.node_url, refused, &g.token_file) {
                        (Some(url), true, None) => anyhow!(
                            "{e}: the node at {url} needs its token for this: --token-file FILE \
                             (its node.json, or a file with the token)"
                        ),
                        (Some(_), true, Some(f)) => anyhow!(
                            "{e}: the token in {} is not this node's (it changes each time the \
                             node starts)",
                            f.display()
                        ),
                        _ => e,
                    }
                })?,
                None => direct_command(&g, job).await?,
            };
            let code = answer.exit_code();
            (out(answer.to_string(), answer.json()), code)
        }
    };
    let mut stdout = std::io::stdout().lock();
    if g.json {
        writeln!(stdout, "{}", output.json)?;
    } else if !output.text.is_empty() {
        writeln!(stdout, "{}", output.text)?;
    }
    Ok(code)
}

/// The node to drive through its API: the one `--node` names, or the one running on the data
/// dir (proven to be that data dir's own); `None` when no node runs there.
pub(super) async fn running_node(g: &Global) -> Result<Option<(ApiClient, Network)>> {
    let Some(url) = &g.node_url else {
        let dir = g.data_dir()?;
        let api = ApiClient::discover(&dir, g.network)
            .await
            .map_err(|e| anyhow!(e))?;
        return Ok(api.map(|a| (a, g.network)));
    };
    let token = match &g.token_file {
        None => None,
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token file {}", f.display()))?;
            // A node.json (copied from the node's data dir), or the token alone.
            let token = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["token"].as_str().map(str::to_string))
                .or_else(|| text.lines().next().map(|l| l.trim().to_string()))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| anyhow!("the token file {} is empty", f.display()))?;
            Some(token)
        }
    };
    // Without a token, reads still work; a write is refused with what to give.
    let (api, net) = ApiClient::remote(url, token)
        .await
        .map_err(|e| anyhow!(e))?;
    Ok(Some((api, net)))
}

/// Open (or create) the data dir's wallet, asking for its passphrase on a terminal.
fn open_wallet(g: &Global) -> Result<Wallet> {
    let dir = g.data_dir()?;
    let pass = g.wallet_passphrase(&dir)?;
    Wallet::open_or_create(&dir, g.network, pass.as_deref()).map_err(|e| wallet_error(&dir, e))
}

/// A wallet error with what to do about a missing or wrong passphrase.
fn wallet_error(dir: &Path, e: crate::wallet::WalletError) -> anyhow::Error {
    use crate::wallet::WalletError;
    use crate::wallet::keystore::KeystoreError;
    let path = crate::wallet::keystore_path(dir);
    match e {
        WalletError::Keystore(KeystoreError::PassphraseRequired) => anyhow!(
            "the wallet {} is encrypted: give its passphrase on the terminal prompt, with --passphrase-file FILE or in CHAIN_TUI_PASSPHRASE",
            path.display()
        ),
        WalletError::Keystore(KeystoreError::WrongPassphrase) => anyhow!(
            "cannot open the wallet {}: wrong passphrase (or the keystore was tampered with)",
            path.display()
        ),
        e => anyhow!(e),
    }
}

/// A command whose arguments have been parsed and checked.
enum Job {
    WalletNew {
        force: bool,
    },
    WalletAddress,
    Balance,
    History,
    Mine {
        blocks: u64,
        threads: Option<usize>,
    },
    Send {
        to: Address,
        amount: Amount,
        fee_rate: Option<u64>,
    },
    Chain(ChainJob),
    Peers(PeersJob),
}

enum ChainJob {
    Info,
    Block(BlockId),
    Tx(Txid),
    Validate,
    Export(PathBuf),
    Import(PathBuf, Vec<Block>),
}

enum PeersJob {
    List,
    Add(PeerAddr),
    Unban(String),
}

fn prepare(g: &Global, cmd: Command) -> Result<Job> {
    let net = g.network;
    Ok(match cmd {
        Command::Wallet(WalletCmd::New { force }) => Job::WalletNew { force },
        Command::Wallet(WalletCmd::Address) => Job::WalletAddress,
        Command::Wallet(WalletCmd::Balance) => Job::Balance,
        Command::Wallet(WalletCmd::History) => Job::History,
        Command::Mine { blocks, threads } => {
            if let Some(t) = threads {
                check_threads(t)?;
            }
            Job::Mine { blocks, threads }
        }
        Command::Send {
            address,
            amount,
            fee_rate,
        } => {
            let to = Address::decode(&address, net).map_err(|e| anyhow!("bad address: {e}"))?;
            let amount = Amount::parse_coins(&amount).map_err(|e| anyhow!("bad amount: {e}"))?;
            if amount == Amount::ZERO {
                bail!("bad amount: must be above zero");
            }
            // Checked here so that a bad rate is refused before anything runs.
            fee_rate_arg(fee_rate)?;
            Job::Send {
                to,
                amount,
                fee_rate,
            }
        }
        Command::Chain(c) => Job::Chain(match c {
            ChainCmd::Info => ChainJob::Info,
            ChainCmd::Block { id } => ChainJob::Block(id.parse()?),
            ChainCmd::Tx { txid } => ChainJob::Tx(parse_txid(&txid)?),
            ChainCmd::Validate => ChainJob::Validate,
            ChainCmd::Export { file } => ChainJob::Export(file),
            ChainCmd::Import { file } => {
                let blocks = crate::node::read_chain_file(&file, net)?;
                ChainJob::Import(file, blocks)
            }
        }),
        Command::Peers(p) => Job::Peers(match p {
            PeersCmd::List => PeersJob::List,
            PeersCmd::Add { addr } => PeersJob::Add(
                addr.parse()
                    .map_err(|e| anyhow!("bad peer address {addr:?}: {e}"))?,
            ),
            PeersCmd::Unban { id } => PeersJob::Unban(id),
        }),
        #[cfg(feature = "bench")]
        Command::Bench(_) => bail!("internal error: command dispatched to the wrong handler"),
        Command::Sim(_) => bail!("internal error: command dispatched to the wrong handler"),
        #[cfg(feature = "demo")]
        Command::Demo(_) => bail!("internal error: command dispatched to the wrong handler"),
        #[cfg(feature = "tui")]
        Command::Tui(_) => bail!("internal error: command dispatched to the wrong handler"),
        #[cfg(feature = "tui")]
        Command::Attach { .. } => {
            bail!("internal error: command dispatched to the wrong handler")
        }
        Command::Node(_) => bail!("internal error: command dispatched to the wrong handler"),
    })
}

/// Run a job on the data dir itself (no node runs there): wallet commands open the keystore,
/// the rest start a node for the command and stop it after.
async fn direct_command(g: &Global, job: Job) -> Result<Answer> {
    let net = g.network;
    match job {
        Job::WalletNew { force } => {
            use crate::wallet::WalletError;
            // The first `new` creates the wallet with its first address; later ones add one.
            let dir = g.data_dir()?;
            let existed = crate::wallet::keystore_path(&dir).exists();
            let pass = g.wallet_passphrase(&dir)?;
            let a = match Wallet::open_or_create(&dir, net, pass.as_deref()) {
                Ok(mut w) if existed => w.new_address()?,
                Ok(w) => w.receive_address(),
                Err(
                    WalletError::Missing { .. }
                    | WalletError::Damaged { .. }
                    | WalletError::Altered { .. },
                ) if force => {
                    let (w, aside) = Wallet::create_replacing(&dir, net, pass.as_deref())?;
                    if let Some(old) = aside {
                        eprintln!(
                            "the old keystore is kept as {}; a new, empty wallet was started",
                            old.display()
                        );
                    }
                    w.receive_address()
                }
                Err(e) => return Err(wallet_error(&dir, e)),
            };
            return Ok(Answer::Address(t::AddressView {
                address: a.encode(net),
            }));
        }
        Job::WalletAddress => {
            let w = open_wallet(g)?;
            return Ok(Answer::Address(t::AddressView {
                address: w.receive_address().encode(net),
            }));
        }
        Job::Peers(_) => bail!(
            "no node is running on {}: start one with `chain-tui node` or the dashboard",
            g.data_dir()?.display()
        ),
        _ => {}
    }
    let dir = g.data_dir()?;
    let path = crate::node::store_path(&dir);
    if matches!(job, Job::Chain(ChainJob::Validate)) && path.exists() {
        // Checked without starting a node: the node refuses a damaged store, which is what
        // validate is for (and a read-only store is checked read-only).
        let v = tokio::task::spawn_blocking(move || -> Result<t::Validation> {
            let report = crate::node::validate_data_dir(&dir, net)?;
            Ok(views::validation(&report))
        })
        .await??;
        return Ok(Answer::Validation(v));
    }
    let services = Services::start(ServicesConfig::node(NodeConfig::new(&dir, net))).await?;
    let result = node_job(g, &services.node, job).await;
    services.shutdown().await?;
    result
}

async fn node_job(g: &Global, node: &NodeHandle, job: Job) -> Result<Answer> {
    Ok(match job {
        Job::Balance => Answer::Balance(views::wallet_balance(&open_wallet(g)?, node)?),
        Job::History => Answer::History(views::wallet_history(
            &open_wallet(g)?,
            node,
            views::Page::ALL,
        )?),
        Job::Mine { blocks, threads } => {
            let w = open_wallet(g)?;
            let threads = threads.unwrap_or_else(default_threads);
            Answer::Mined(views::mine(node, w.receive_address(), blocks, threads).await?)
        }
        Job::Send {
            to,
            amount,
            fee_rate,
        } => {
            let w = std::sync::Arc::new(std::sync::Mutex::new(open_wallet(g)?));
            let rate = fee_rate_arg(fee_rate)?;
            let pay = vec![crate::core::tx::TxOut {
                address: to,
                amount,
            }];
            Answer::Sent(views::send(&w, node, pay, rate).await?)
        }
        Job::Chain(c) => match c {
            ChainJob::Info => Answer::Info(Box::new(views::info(node, None))),
            ChainJob::Block(id) => Answer::Block(views::block(node, id, false)?),
            ChainJob::Tx(id) => Answer::Tx(views::tx(node, &id, false)?),
            ChainJob::Validate => {
                let n = node.clone();
                Answer::Validation(tokio::task::spawn_blocking(move || views::validate(&n)).await??)
            }
            ChainJob::Export(file) => {
                let n = node.export_chain(&file)?;
                Answer::Exported(Exported {
                    blocks: n,
                    file: file.display().to_string(),
                })
            }
            ChainJob::Import(_, blocks) => {
                let n = blocks.len() as u64;
                let height = node.import(blocks).await?;
                Answer::Imported(t::Imported { blocks: n, height })
            }
        },
        Job::WalletNew { .. } | Job::WalletAddress | Job::Peers(_) => {
            bail!("internal error: command dispatched to the wrong handler")
        }
    })
}

/// Run a job through the API of the node running on the data dir.
async fn remote_command(api: &ApiClient, net: Network, job: Job) -> Result<Answer> {
    Ok(match job {
        Job::WalletNew { .. } => Answer::Address(api.post("/wallet/address", &json!({})).await?),
        Job::WalletAddress => Answer::Address(api.get("/wallet/address").await?),
        Job::Balance => Answer::Balance(api.get("/wallet/balance").await?),
        Job::History => Answer::History(api.get_pages("/wallet/history").await?),
        Job::Mine { blocks, threads } => {
            let threads = threads.unwrap_or_else(default_threads);
            let body = t::MineRequest {
                blocks: Some(blocks),
                threads: Some(threads),
                address: None,
            };
            match api.post("/mine", &body).await? {
                t::MineAnswer::Mined(m) => Answer::Mined(m),
                t::MineAnswer::Job(job) => Answer::Mined(follow_mine_job(api, &job).await?),
            }
        }
        Job::Send {
            to,
            amount,
            fee_rate,
        } => {
            let body = t::SendRequest::One(t::SendOne {
                address: to.encode(net),
                amount: amount.units(),
                fee_rate,
            });
            Answer::Sent(api.post("/wallet/send", &body).await?)
        }
        Job::Chain(c) => match c {
            ChainJob::Info => Answer::Info(Box::new(api.get("/info").await?)),
            ChainJob::Block(id) => {
                let id = match id {
                    BlockId::Height(h) => h.to_string(),
                    BlockId::Hash(h) => h.to_string(),
                };
                Answer::Block(api.get(&format!("/blocks/{id}")).await?)
            }
            ChainJob::Tx(id) => Answer::Tx(api.get(&format!("/tx/{id}")).await?),
            ChainJob::Validate => Answer::Validation(api.get("/validate").await?),
            ChainJob::Export(file) => {
                let n = export_remote(api, net, &file).await?;
                Answer::Exported(Exported {
                    blocks: n,
                    file: file.display().to_string(),
                })
            }
            ChainJob::Import(file, _) => {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                Answer::Imported(api.post_bytes("/chain/import", bytes).await?)
            }
        },
        Job::Peers(p) => match p {
            PeersJob::List => Answer::Peers(api.get("/peers").await?),
            PeersJob::Add(addr) => {
                let body = t::RegisterRequest {
                    nodes: vec![addr.to_string()],
                };
                let v: t::Registered = api.post("/nodes/register", &body).await?;
                if let Some(f) = v.failed.first() {
                    bail!("cannot connect to {addr}: {}", f.error);
                }
                Answer::Registered(v)
            }
            PeersJob::Unban(id) => {
                Answer::Unbanned(api.post("/peers/unban", &t::UnbanRequest { id }).await?)
            }
        },
    })
}

/// Export through the API: the chain in pages, each block checked to follow the one before.
async fn export_remote(api: &ApiClient, net: Network, file: &Path) -> Result<u64> {
    let info: t::Info = api.get("/info").await?;
    let height = info.height;
    let genesis = net.params().genesis_hash;
    let mut w = crate::node::ChainWriter::create(file, &genesis, height).map_err(|e| anyhow!(e))?;
    let mut prev = genesis;
    let mut h = 1;
    while h <= height {
        let limit = (height - h + 1).min(views::MAX_PAGE);
        let page: t::ChainPage = api
            .get(&format!("/chain?from={h}&limit={limit}&hex=true"))
            .await?;
        let blocks = page.chain;
        if blocks.is_empty() {
            bail!("the node's chain changed during the export (height {h} is gone); try again");
        }
        for b in blocks {
            let bytes = hex::decode(b.hex.as_deref().unwrap_or_default())
                .map_err(|e| anyhow!("the node sent a bad block: {e}"))?;
            let block = Block::decode(&bytes, usize::MAX)
                .map_err(|e| anyhow!("the node sent a bad block: {e}"))?;
            if block.header.prev != prev {
                bail!("the node's chain changed during the export (at height {h}); try again");
            }
            prev = block.hash();
            w.push(&block).map_err(|e| anyhow!(e))?;
            h += 1;
        }
    }
    w.finish().map_err(|e| anyhow!(e))?;
    Ok(height)
}

/// A larger `mine` through the API is a job: follow it until it ends (Ctrl-C cancels it) and
/// answer as a direct mine does.
async fn follow_mine_job(api: &ApiClient, job: &t::JobView) -> Result<t::Mined> {
    let path = format!("/jobs/{}", job.id);
    let cancel = tokio::signal::ctrl_c();
    tokio::pin!(cancel);
    let mut cancelled = false;
    loop {
        let v: t::JobView = api.get(&path).await?;
        let tip = v.tip.clone().unwrap_or_default();
        let height = v.height.unwrap_or_default();
        match v.state {
            t::JobState::Done => {
                return Ok(t::Mined {
                    blocks: v.blocks.unwrap_or_default(),
                    height,
                    tip,
                    job: Some(v.id),
                });
            }
            t::JobState::Cancelled => bail!(
                "mining cancelled after {} of {} blocks; height {height} tip {tip}",
                v.mined,
                v.requested,
            ),
            t::JobState::Failed => bail!(
                "mining failed after {} of {} blocks: {}",
                v.mined,
                v.requested,
                v.error.map(|e| e.error).unwrap_or_default()
            ),
            t::JobState::Running | t::JobState::Cancelling => {}
        }
        if cancelled {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            _ = &mut cancel => {
                cancelled = true;
                // The job as it stopped (and forgotten by the node), or still stopping.
                let v: t::JobView = api.delete(&path).await?;
                if v.state == t::JobState::Cancelled {
                    bail!(
                        "mining cancelled after {} of {} blocks; height {} tip {}",
                        v.mined,
                        v.requested,
                        v.height.unwrap_or_default(),
                        v.tip.unwrap_or_default()
                    );
                }
            }
        }
    }
}

/// `--threads`: at least 1, at most the miner's cap (four per core).
pub fn check_threads(threads: usize) -> Result<usize> {
    let max = crate::node::max_threads();
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    if threads > max {
        bail!("--threads: at most {max} (four per core), got {threads}");
    }
    Ok(threads)
}

/// `--fee-rate` in base units per byte (default: the wallet's usual rate).
fn fee_rate_arg(per_byte: Option<u64>) -> Result<crate::core::FeeRate> {
    match per_byte {
        Some(r) => {
            crate::core::FeeRate::parse_per_byte(r).map_err(|e| anyhow!("bad fee rate: {e}"))
        }
        None => Ok(crate::core::FeeRate::DEFAULT),
    }
}

/// All cores.
pub fn default_threads() -> usize {
    crate::node::cores()
}

/// Run a node with its network until SIGINT or SIGTERM, then shut down cleanly: peers told,
/// mempool saved, store closed.
async fn run_node(g: &Global, args: NodeArgs) -> Result<()> {
    let dir = g.data_dir()?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], g.network.params().default_port)));
    // The wallet is checked first: a node never starts with a lost, damaged, exposed or locked
    // wallet, nor with a new one in its place.
    let wallet = open_wallet(g).map_err(|e| anyhow!("the node does not start: {e:#}"))?;
    let threads = check_threads(args.threads.unwrap_or_else(default_threads).max(1))?;
    let address = wallet.receive_address();
    let wallet = std::sync::Arc::new(std::sync::Mutex::new(wallet));
    let mut p2p = P2pConfig::new(&dir, listen);
    p2p.connect = args.connect.clone();
    let services = Services::start(ServicesConfig {
        node: NodeConfig::new(&dir, g.network),
        p2p: Some(p2p.into()),
        api: args.api_addr(g.network).map(|addr| ApiSetup {
            addr,
            limits: args.api_limits(g.network),
            wallet: Ok(wallet),
            mine_threads: threads,
        }),
    })
    .await?;
    let view = services.net()?.view();
    tracing::info!(
        "node {} on {} listening on {}",
        view.id.map(|i| i.to_string()).unwrap_or_default(),
        g.network,
        view.listen.map(|a| a.to_string()).unwrap_or_default()
    );
    if args.mine {
        if let Err(e) = services.node.set_mining(threads, Some(address)).await {
            services.shutdown().await?;
            return Err(e.into());
        }
        tracing::info!(
            "mining with {threads} threads to {}",
            address.encode(g.network)
        );
    }
    crate::runtime::stop_signal().await;
    tracing::info!("shutting down");
    services.shutdown().await?;
    Ok(())
}

/// The dashboard's settings from the command line (same defaults as `node`).
#[cfg(feature = "tui")]
fn tui_config(g: &Global, args: NodeArgs) -> Result<crate::tui::TuiConfig> {
    let threads = check_threads(args.threads.unwrap_or_else(default_threads))?;
    let api = args.api_addr(g.network);
    let api_limits = args.api_limits(g.network);
    let data_dir = g.data_dir()?;
    // Asked here, before the dashboard takes the screen.
    if !(args.block_interval.is_finite() && (0.0..=3600.0).contains(&args.block_interval)) {
        bail!("--block-interval must be 0 to 3600 seconds");
    }
    let pace = (g.network == Network::Regtest && args.block_interval > 0.0)
        .then(|| std::time::Duration::from_secs_f64(args.block_interval));
    let passphrase = g.wallet_passphrase(&data_dir)?;
    Ok(crate::tui::TuiConfig {
        pace,
        data_dir,
        network: g.network,
        passphrase,
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], g.network.params().default_port))),
        connect: args.connect,
        mine: args.mine,
        threads,
        api,
        api_limits,
    })
}

async fn status(g: &Global) -> Result<Output> {
    let node = running_node(g).await?;
    let dir = match (&g.node_url, &node) {
        (Some(url), Some(_)) => PathBuf::from(url),
        _ => g.data_dir()?,
    };
    let (info, addr, wallet_error_text) = match node {
        Some((api, _)) => {
            let info: t::Info = api.get("/info").await?;
            let addr = api
                .get::<t::AddressView>("/wallet/address")
                .await
                .ok()
                .map(|v| v.address);
            (info, addr, None)
        }
        None => {
            let services =
                Services::start(ServicesConfig::node(NodeConfig::new(&dir, g.network))).await?;
            let info = views::info(&services.node, None);
            // A wallet that cannot be opened is said so, never shown as "none yet".
            let (addr, err) = match Wallet::open_existing(&dir, g.network, g.passphrase.as_deref())
            {
                Ok(w) => (w.map(|w| w.receive_address().encode(g.network)), None),
                Err(e) => (None, Some(format!("{:#}", wallet_error(&dir, e)))),
            };
            services.shutdown().await?;
            (info, addr, err)
        }
    };
    let work: U256 = info.work.parse().unwrap_or_default();
    let wallet_text = match (&addr, &wallet_error_text) {
        (Some(a), _) => a.clone(),
        (None, Some(e)) => format!("cannot be opened: {e}"),
        (None, None) => "none yet (chain-tui wallet new)".into(),
    };
    Ok(out(
        format!(
            "chain-tui {} — data dir {}\nheight {}  tip {}\nwork {}  difficulty {}\nmempool {} tx\nwallet {}",
            info.network,
            dir.display(),
            info.height,
            info.tip,
            si_text(work),
            info.difficulty,
            info.mempool,
            wallet_text
        ),
        json!({ "network": info.network, "data_dir": dir.display().to_string(), "height": info.height,
                "tip": info.tip, "mempool": info.mempool, "address": addr,
                "wallet_error": wallet_error_text }),
    ))
}
