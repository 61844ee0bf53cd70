//! The command line: clap definitions and the commands that drive a node on a data dir (wallet,
//! mine, send, chain, bench). Every command prints text, or one JSON object with `--json`; bad
//! input prints one line on stderr, exits non-zero and changes nothing.

use crate::api::client::ApiClient;
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
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// chain-tui: a real proof-of-work blockchain node you drive from the terminal.
#[derive(Parser, Debug)]
#[command(name = "chain-tui", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Node options of the dashboard that opens without a subcommand.
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Whether this command line opens the dashboard: `chain-tui tui`, or no subcommand on a
    /// terminal without `--json` (otherwise no subcommand prints the data dir's status).
    pub fn opens_dashboard(&self) -> bool {
        use std::io::IsTerminal;
        match self.command {
            #[cfg(feature = "tui")]
            Some(Command::Tui(_)) => true,
            // A build without the dashboard prints the status instead.
            None if cfg!(not(feature = "tui")) => false,
            None => {
                !self.global.json
                    && std::io::stdout().is_terminal()
                    && std::io::stdin().is_terminal()
            }
            Some(_) => false,
        }
    }
}

/// Options every command takes, before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data directory, used exactly as given (default: a per-network folder in the user's data dir).
    #[arg(long, global = true, env = "CHAIN_TUI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Network: regtest or devnet.
    #[arg(
        long,
        global = true,
        default_value = "devnet",
        env = "CHAIN_TUI_NETWORK"
    )]
    pub network: Network,
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Wallet passphrase (for an encrypted keystore; also encrypts a new one). Other users can
    /// see it in `ps`: prefer the prompt (on a terminal), --passphrase-file or the environment.
    #[arg(
        long,
        global = true,
        env = "CHAIN_TUI_PASSPHRASE",
        hide_env_values = true
    )]
    pub passphrase: Option<String>,
    /// Read the wallet passphrase from the first line of FILE.
    #[arg(
        long,
        global = true,
        env = "CHAIN_TUI_PASSPHRASE_FILE",
        value_name = "FILE",
        conflicts_with = "passphrase"
    )]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the dashboard: the node with its peers, live in the terminal (the default).
    #[cfg(feature = "tui")]
    Tui(NodeArgs),
    /// Run the node headless (logs to stderr) until SIGINT or SIGTERM.
    Node(NodeArgs),
    /// Wallet: addresses, balance, history.
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Mine N blocks paying the wallet.
    Mine {
        #[arg(long)]
        blocks: u64,
        /// Mining threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Send coins: signs locally; the transaction waits in the mempool for the next block.
    Send {
        address: String,
        /// Amount in coins, an exact decimal with at most 8 places (e.g. 2.5).
        amount: String,
        /// Fee rate in base units per byte.
        #[arg(long)]
        fee_rate: Option<u64>,
    },
    /// Inspect, validate, export and import the chain.
    #[command(subcommand)]
    Chain(ChainCmd),
    /// Peers of the node running on the data dir: list, add, unban.
    #[command(subcommand)]
    Peers(PeersCmd),
    /// Benchmarks.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Several nodes in one process, side by side: partitions, forks, scenarios.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
}

#[derive(Subcommand, Debug)]
pub enum PeersCmd {
    /// Connected peers and bans with their reasons.
    List,
    /// Connect to a peer now: HOST:PORT or NODEID@HOST:PORT.
    Add { addr: String },
    /// Lift a ban: a node id or an address.
    Unban { id: String },
}

/// Options of a running node.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Address to accept peers on (default 127.0.0.1 and the network's port; 0.0.0.0:PORT
    /// accepts remote peers).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Peer to keep connected to: HOST:PORT or NODEID@HOST:PORT (pins its identity). Repeatable.
    #[arg(long)]
    pub connect: Vec<PeerAddr>,
    /// Mine, paying the wallet.
    #[arg(long)]
    pub mine: bool,
    /// Mining threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Dashboard on regtest: mean seconds between two mined blocks (real hashing, paced so the
    /// chain can be watched; 0 mines flat out). The headless `node` always mines flat out.
    #[arg(long, default_value_t = 2.0)]
    pub block_interval: f64,
    /// REST API address (default 127.0.0.1 and the network's API port; :0 lets the system
    /// pick a port; `off` disables it). The address and a fresh token go to DATA_DIR/node.json.
    #[arg(long)]
    pub api: Option<ApiSetting>,
}

/// Where the API listens, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiSetting {
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for ApiSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<ApiSetting, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(ApiSetting::Off);
        }
        s.parse()
            .map(ApiSetting::At)
            .map_err(|_| format!("expected IP:PORT or off, got {s:?}"))
    }
}

/// The API's default port: devnet 7421, regtest 18443.
pub fn default_api_port(network: Network) -> u16 {
    match network {
        Network::Devnet => 7421,
        Network::Regtest => 18443,
    }
}

impl NodeArgs {
    /// The API address, `None` when it is off.
    pub fn api_addr(&self, network: Network) -> Option<SocketAddr> {
        match self.api {
            Some(ApiSetting::Off) => None,
            Some(ApiSetting::At(a)) => Some(a),
            None => Some(SocketAddr::from((
                [127, 0, 0, 1],
                default_api_port(network),
            ))),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Make a new receive address (creates the wallet on first use).
    New {
        /// When the data dir's wallet is gone, damaged or altered: set its keystore aside
        /// (renamed, never deleted) and start a new, empty wallet.
        #[arg(long)]
        force: bool,
    },
    /// Show the current receive address.
    Address,
    /// Confirmed, unconfirmed and immature balance.
    Balance,
    /// Transactions with confirmation counts.
    History,
}

#[derive(Subcommand, Debug)]
pub enum ChainCmd {
    /// Network, height, tip, cumulative work, difficulty.
    Info,
    /// One block by height or hash.
    Block { id: String },
    /// One transaction.
    Tx { txid: String },
    /// Re-verify the whole chain from genesis.
    Validate,
    /// Write the active chain to a file.
    Export { file: PathBuf },
    /// Validate and connect a chain file (all or nothing).
    Import { file: PathBuf },
}

#[cfg(feature = "bench")]
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Hash rate of the mining kernel.
    Mine {
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Kernel name (default: the fastest this CPU supports).
        #[arg(long)]
        kernel: Option<String>,
    },
    /// Import speed: mines N regtest blocks in a temporary dir, exports, imports them fresh.
    Import {
        #[arg(long, default_value_t = 10_000)]
        blocks: u64,
    },
    /// API throughput: several HTTP clients post N distinct signed transactions to
    /// `POST /transactions/new` of a regtest node on 127.0.0.1.
    Api {
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
        /// Concurrent clients, each with one request in flight at a time.
        #[arg(long, default_value_t = 32)]
        clients: usize,
    },
    /// Sync speed: a fresh node syncs N regtest blocks carrying transactions from one peer over
    /// 127.0.0.1, against importing the same blocks, in one run.
    Sync {
        #[arg(long, default_value_t = 5_000)]
        blocks: u64,
        /// Transactions per block (after coinbase maturity).
        #[arg(long, default_value_t = 3)]
        txs: usize,
    },
    /// Signature checks: a block of one-input transactions verified one by one, as one batch,
    /// and as batches on several threads (ZIP-215).
    Verify {
        /// Threads for the multi-core run (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 2_000)]
        txs: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Resources over time: a regtest node (with its network layer and API) mines to its wallet
    /// in a temporary dir; resident memory and store size are sampled every K blocks.
    Soak {
        /// Stop at this height.
        #[arg(long, default_value_t = 200_000)]
        blocks: u64,
        /// Stop after this many seconds, whatever the height.
        #[arg(long)]
        seconds: Option<f64>,
        /// Sample every K blocks (default: blocks / 20).
        #[arg(long)]
        every: Option<u64>,
        /// Blocks before the memory curve counts (default: blocks / 10).
        #[arg(long)]
        warmup: Option<u64>,
        /// Mining threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

/// The default data dir of `network`.
pub fn default_data_dir(network: Network) -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "chain-tui")
        .ok_or_else(|| anyhow!("no home directory: pass --data-dir"))?;
    Ok(dirs.data_dir().join(network.name()))
}

impl Global {
    pub fn data_dir(&self) -> Result<PathBuf> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => default_data_dir(self.network),
        }
    }

    /// Reads `--passphrase-file` into `passphrase`: its first line, without the line end.
    pub fn load_passphrase_file(&mut self) -> Result<()> {
        let Some(file) = &self.passphrase_file else {
            return Ok(());
        };
        let mut raw = Vec::new();
        std::fs::File::open(file)
            .and_then(|f| {
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 64 * 1024), &mut raw)
            })
            .with_context(|| format!("cannot read the passphrase file {}", file.display()))?;
        let text = String::from_utf8(raw)
            .map_err(|_| anyhow!("the passphrase file {} is not UTF-8 text", file.display()))?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            bail!("the passphrase file {} is empty", file.display());
        }
        self.passphrase = Some(line.to_string());
        Ok(())
    }

    /// The passphrase for the data dir's wallet: the one given (flag, file or environment); or,
    /// when the keystore is encrypted and a terminal is there, asked for without echo.
    pub fn wallet_passphrase(&self, dir: &Path) -> Result<Option<String>> {
        use std::io::IsTerminal;
        if self.passphrase.is_some() {
            return Ok(self.passphrase.clone());
        }
        if !Wallet::is_encrypted_at(dir) || !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        let path = crate::wallet::keystore_path(dir);
        let p = rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
            .context("cannot read the passphrase from the terminal")?;
        Ok(Some(p))
    }
}

/// What a command printed: text lines and the JSON object.
struct Output {
    text: String,
    json: Value,
}

fn out(text: impl Into<String>, json: Value) -> Output {
    Output {
        text: text.into(),
        json,
    }
}

/// Run the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let mut g = cli.global.clone();
    g.load_passphrase_file()?;
    #[cfg(feature = "tui")]
    let dashboard = cli.opens_dashboard();
    let (output, code) = match cli.command {
        #[cfg(feature = "tui")]
        None if dashboard => {
            crate::tui::run(tui_config(&g, cli.node)?).await?;
            return Ok(0);
        }
        #[cfg(feature = "tui")]
        Some(Command::Tui(args)) => {
            crate::tui::run(tui_config(&g, args)?).await?;
            return Ok(0);
        }
        None => (status(&g).await?, 0),
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => return crate::demo::run(args, g.network).await,
        #[cfg(feature = "bench")]
        Some(Command::Bench(b)) => (bench(&g, b).await?, 0),
        Some(Command::Node(args)) => {
            run_node(&g, args).await?;
            (out("", json!({ "stopped": true })), 0)
        }
        Some(cmd) => {
            // Everything the user typed is checked before a node (and its data dir) is touched.
            let job = prepare(&g, cmd)?;
            let kind = job.kind();
            let dir = g.data_dir()?;
            let (v, code) = match ApiClient::discover(&dir, g.network)
                .await
                .map_err(|e| anyhow!(e))?
            {
                Some(api) => remote_command(&api, g.network, job).await?,
                None => direct_command(&g, job).await?,
            };
            let v = project(kind, v);
            (out(render(kind, &v), v), code)
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

/// Which answer a job prints (its text is rendered from its JSON, whichever way it ran).
#[derive(Clone, Copy)]
enum Kind {
    Address,
    Balance,
    History,
    Mine,
    Send,
    Info,
    Block,
    Tx,
    Validate,
    Export,
    Import,
    PeersList,
    PeersAdd,
    Unban,
}

impl Job {
    fn kind(&self) -> Kind {
        match self {
            Job::WalletNew { .. } | Job::WalletAddress => Kind::Address,
            Job::Balance => Kind::Balance,
            Job::History => Kind::History,
            Job::Mine { .. } => Kind::Mine,
            Job::Send { .. } => Kind::Send,
            Job::Chain(c) => match c {
                ChainJob::Info => Kind::Info,
                ChainJob::Block(_) => Kind::Block,
                ChainJob::Tx(_) => Kind::Tx,
                ChainJob::Validate => Kind::Validate,
                ChainJob::Export(_) => Kind::Export,
                ChainJob::Import(..) => Kind::Import,
            },
            Job::Peers(p) => match p {
                PeersJob::List => Kind::PeersList,
                PeersJob::Add(_) => Kind::PeersAdd,
                PeersJob::Unban(_) => Kind::Unban,
            },
        }
    }
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
        #[cfg(feature = "demo")]
        Command::Demo(_) => bail!("internal error: command dispatched to the wrong handler"),
        #[cfg(feature = "tui")]
        Command::Tui(_) => bail!("internal error: command dispatched to the wrong handler"),
        Command::Node(_) => bail!("internal error: command dispatched to the wrong handler"),
    })
}

/// Run a job on the data dir itself (no node runs there): wallet commands open the keystore,
/// the rest start a node for the command and stop it after.
async fn direct_command(g: &Global, job: Job) -> Result<(Value, i32)> {
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
            return Ok((json!({ "address": a.encode(net) }), 0));
        }
        Job::WalletAddress => {
            let w = open_wallet(g)?;
            return Ok((json!({ "address": w.receive_address().encode(net) }), 0));
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
        let (v, valid) = tokio::task::spawn_blocking(move || -> Result<(Value, bool)> {
            let report = crate::node::validate_data_dir(&dir, net)?;
            Ok(views::validate_json(&report))
        })
        .await??;
        return Ok((v, if valid { 0 } else { 1 }));
    }
    let services = Services::start(ServicesConfig::node(NodeConfig::new(&dir, net))).await?;
    let result = node_job(g, &services.node, job).await;
    services.shutdown().await?;
    result
}

async fn node_job(g: &Global, node: &NodeHandle, job: Job) -> Result<(Value, i32)> {
    let v = match job {
        Job::Balance => views::wallet_balance(&open_wallet(g)?, node)?,
        Job::History => views::wallet_history(&open_wallet(g)?, node, views::Page::ALL)?,
        Job::Mine { blocks, threads } => {
            let w = open_wallet(g)?;
            let threads = threads.unwrap_or_else(default_threads);
            views::mine(node, w.receive_address(), blocks, threads).await?
        }
        Job::Send {
            to,
            amount,
            fee_rate,
        } => {
            let w = std::sync::Arc::new(std::sync::Mutex::new(open_wallet(g)?));
            let rate = fee_rate_arg(fee_rate)?;
            views::send(&w, node, to, amount, rate).await?
        }
        Job::Chain(c) => match c {
            ChainJob::Info => views::info(node, None),
            ChainJob::Block(id) => views::block(node, id)?,
            ChainJob::Tx(id) => views::tx(node, &id)?,
            ChainJob::Validate => {
                let n = node.clone();
                let (v, valid) = tokio::task::spawn_blocking(move || views::validate(&n)).await??;
                return Ok((v, if valid { 0 } else { 1 }));
            }
            ChainJob::Export(file) => {
                let n = node.export_chain(&file)?;
                json!({ "blocks": n, "file": file.display().to_string() })
            }
            ChainJob::Import(_, blocks) => {
                let n = blocks.len();
                let height = node.import(blocks).await?;
                json!({ "blocks": n, "height": height })
            }
        },
        Job::WalletNew { .. } | Job::WalletAddress | Job::Peers(_) => {
            bail!("internal error: command dispatched to the wrong handler")
        }
    };
    Ok((v, 0))
}

/// Run a job through the API of the node running on the data dir.
async fn remote_command(api: &ApiClient, net: Network, job: Job) -> Result<(Value, i32)> {
    let v = match job {
        Job::WalletNew { .. } => api.post("/wallet/address", &json!({})).await?,
        Job::WalletAddress => api.get("/wallet/address").await?,
        Job::Balance => api.get("/wallet/balance").await?,
        Job::History => api.get_pages("/wallet/history", "transactions").await?,
        Job::Mine { blocks, threads } => {
            let threads = threads.unwrap_or_else(default_threads);
            let v = api
                .post("/mine", &json!({ "blocks": blocks, "threads": threads }))
                .await?;
            if v["kind"] == "mine" && v["id"].is_u64() {
                follow_mine_job(api, &v).await?
            } else {
                v
            }
        }
        Job::Send {
            to,
            amount,
            fee_rate,
        } => {
            api.post(
                "/wallet/send",
                &json!({ "address": to.encode(net), "amount": amount.units(), "fee_rate": fee_rate }),
            )
            .await?
        }
        Job::Chain(c) => match c {
            ChainJob::Info => api.get("/info").await?,
            ChainJob::Block(id) => {
                let id = match id {
                    BlockId::Height(h) => h.to_string(),
                    BlockId::Hash(h) => h.to_string(),
                };
                api.get(&format!("/blocks/{id}")).await?
            }
            ChainJob::Tx(id) => api.get(&format!("/tx/{id}")).await?,
            ChainJob::Validate => {
                let v = api.get("/validate").await?;
                let code = if v["valid"].as_bool() == Some(true) {
                    0
                } else {
                    1
                };
                return Ok((v, code));
            }
            ChainJob::Export(file) => {
                let n = export_remote(api, net, &file).await?;
                json!({ "blocks": n, "file": file.display().to_string() })
            }
            ChainJob::Import(file, _) => {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                api.post_bytes("/chain/import", bytes).await?
            }
        },
        Job::Peers(p) => match p {
            PeersJob::List => api.get("/peers").await?,
            PeersJob::Add(addr) => {
                let v = api
                    .post("/nodes/register", &json!({ "nodes": [addr.to_string()] }))
                    .await?;
                if let Some(err) = v["failed"][0]["error"].as_str() {
                    bail!("cannot connect to {addr}: {err}");
                }
                v
            }
            PeersJob::Unban(id) => api.post("/peers/unban", &json!({ "id": id })).await?,
        },
    };
    Ok((v, 0))
}

/// Export through the API: the chain in pages, each block checked to follow the one before.
async fn export_remote(api: &ApiClient, net: Network, file: &Path) -> Result<u64> {
    let info = api.get("/info").await?;
    let height = info["height"]
        .as_u64()
        .ok_or_else(|| anyhow!("the node's /info has no height"))?;
    let genesis = net.params().genesis_hash;
    let mut w = crate::node::ChainWriter::create(file, &genesis, height).map_err(|e| anyhow!(e))?;
    let mut prev = genesis;
    let mut h = 1;
    while h <= height {
        let limit = (height - h + 1).min(views::MAX_PAGE);
        let page = api
            .get(&format!("/chain?from={h}&limit={limit}&hex=true"))
            .await?;
        let blocks = page["chain"].as_array().cloned().unwrap_or_default();
        if blocks.is_empty() {
            bail!("the node's chain changed during the export (height {h} is gone); try again");
        }
        for b in blocks {
            let bytes = hex::decode(b["hex"].as_str().unwrap_or(""))
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

/// The JSON a job prints: `chain info` keeps the chain's fields (the same with or without a
/// running node); the rest print the answer as it is.
fn project(kind: Kind, v: Value) -> Value {
    match kind {
        Kind::Info => {
            let keys = [
                "network",
                "height",
                "tip",
                "work",
                "difficulty",
                "bits",
                "mempool",
            ];
            Value::Object(
                keys.iter()
                    .map(|k| (k.to_string(), v[*k].clone()))
                    .collect(),
            )
        }
        _ => v,
    }
}

fn jstr<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn jnum(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// The text a job prints, from its JSON answer.
fn render(kind: Kind, v: &Value) -> String {
    match kind {
        Kind::Address => jstr(v, "address").to_string(),
        Kind::Balance => format!(
            "confirmed   {}\nunconfirmed {}\nimmature    {}",
            Amount::from_units(jnum(v, "confirmed")),
            Amount::from_units(jnum(v, "unconfirmed")),
            Amount::from_units(jnum(v, "immature"))
        ),
        Kind::History => {
            let mut text = String::new();
            for t in v["transactions"].as_array().into_iter().flatten() {
                let net = t["net"].as_i64().unwrap_or(0);
                let sign = if net < 0 { "-" } else { "+" };
                text.push_str(&format!(
                    "{}  {sign}{}  {} conf{}\n",
                    jstr(t, "txid"),
                    Amount::from_units(net.unsigned_abs()),
                    jnum(t, "confirmations"),
                    t["height"]
                        .as_u64()
                        .map(|h| format!("  height {h}"))
                        .unwrap_or_default()
                ));
            }
            text.trim_end().to_string()
        }
        Kind::Mine => format!(
            "mined {} blocks; height {} tip {}",
            v["blocks"].as_array().map_or(0, Vec::len),
            jnum(v, "height"),
            jstr(v, "tip")
        ),
        Kind::Send => jstr(v, "txid").to_string(),
        Kind::Info => {
            let work: U256 = jstr(v, "work").parse().unwrap_or_default();
            let e = &v["estimates"];
            let rates = if e.is_null() {
                "avg block  — (too few blocks yet)".to_string()
            } else {
                let ms = jnum(e, "avg_block_ms");
                let rate: U256 = jstr(e, "network_hashrate").parse().unwrap_or_default();
                let next = e["next_block_secs"]
                    .as_u64()
                    .map_or("—".to_string(), |s| format!("≈ {s} s"));
                format!(
                    "avg block  {}.{} s over the last {} blocks (by {})\nnetwork    ≈ {} H/s\nnext block {next}",
                    ms / 1000,
                    ms % 1000 / 100,
                    jnum(e, "intervals"),
                    jstr(e, "measured_by").replace('_', " "),
                    si_text(rate)
                )
            };
            format!(
                "network    {}\nheight     {}\ntip        {}\nwork       {} ({})\ndifficulty {} (the tip's)\n{rates}\nmempool    {} tx",
                jstr(v, "network"),
                jnum(v, "height"),
                jstr(v, "tip"),
                work,
                si_text(work),
                jnum(v, "difficulty"),
                jnum(v, "mempool")
            )
        }
        Kind::Block => {
            let txids: Vec<&str> = v["txs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "block {}\nheight {}  {}\nprev {}\ntime {}  bits {:#010x}  nonce {}\nsize {} bytes, {} transactions, {} confirmations\n{}",
                jstr(v, "hash"),
                jnum(v, "height"),
                if v["active"].as_bool() == Some(true) {
                    "active"
                } else {
                    "side branch"
                },
                jstr(v, "prev"),
                jnum(v, "time"),
                jnum(v, "bits"),
                jnum(v, "nonce"),
                jnum(v, "size"),
                txids.len(),
                jnum(v, "confirmations"),
                txids.join("\n")
            )
        }
        Kind::Tx => {
            let where_ = match (v["block"].as_str(), v["height"].as_u64()) {
                (Some(b), Some(h)) => format!("in block {b} at height {h}"),
                _ => "in the mempool".into(),
            };
            let mut text = format!(
                "tx {}\n{where_}, {} confirmations\n",
                jstr(v, "txid"),
                jnum(v, "confirmations")
            );
            for i in v["inputs"].as_array().into_iter().flatten() {
                text.push_str(&format!("  in  {}:{}\n", jstr(i, "txid"), jnum(i, "vout")));
            }
            for o in v["outputs"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "  out {} {}\n",
                    jstr(o, "address"),
                    Amount::from_units(jnum(o, "amount"))
                ));
            }
            text.trim_end().to_string()
        }
        Kind::Validate => {
            if v["valid"].as_bool() == Some(true) {
                "VALID".into()
            } else {
                let mut t = if v["bad_block"].is_string() {
                    format!(
                        "INVALID: block {} ({}): {}",
                        jnum(v, "bad_height"),
                        jstr(v, "bad_block"),
                        jstr(v, "error")
                    )
                } else {
                    "INVALID: damaged index entries".to_string()
                };
                for d in v["damage"].as_array().into_iter().flatten() {
                    t.push_str(&format!(
                        "\n  {}: {}: {}",
                        jstr(d, "index"),
                        jstr(d, "entry"),
                        jstr(d, "problem")
                    ));
                }
                t
            }
        }
        Kind::Export => format!(
            "exported {} blocks to {}",
            jnum(v, "blocks"),
            jstr(v, "file")
        ),
        Kind::Import => format!(
            "imported {} blocks; height {}",
            jnum(v, "blocks"),
            jnum(v, "height")
        ),
        Kind::PeersList => {
            let mut text = String::new();
            let peers = v["peers"].as_array().cloned().unwrap_or_default();
            if peers.is_empty() {
                text.push_str("no peers connected\n");
            }
            for p in &peers {
                text.push_str(&format!(
                    "{}  {}  {}  height {}  rtt {}\n",
                    jstr(p, "id"),
                    jstr(p, "addr"),
                    if p["inbound"].as_bool() == Some(true) {
                        "in "
                    } else {
                        "out"
                    },
                    jnum(p, "height"),
                    p["rtt_ms"]
                        .as_u64()
                        .map(|ms| format!("{ms} ms"))
                        .unwrap_or_else(|| "-".into())
                ));
            }
            for b in v["bans"].as_array().into_iter().flatten() {
                let who = b["id"]
                    .as_str()
                    .or_else(|| b["addr"].as_str())
                    .unwrap_or("?");
                text.push_str(&format!(
                    "banned {who} until {}: {}\n",
                    jnum(b, "until"),
                    jstr(b, "reason")
                ));
            }
            text.trim_end().to_string()
        }
        Kind::PeersAdd => {
            let c = &v["connected"][0];
            format!("connected to {} at {}", jstr(c, "id"), jstr(c, "addr"))
        }
        Kind::Unban => format!("unbanned {}", jstr(v, "unbanned")),
    }
}

/// A larger `mine` through the API is a job: follow it until it ends (Ctrl-C cancels it) and
/// answer as a direct mine does.
async fn follow_mine_job(api: &ApiClient, job: &Value) -> Result<Value> {
    let path = format!("/jobs/{}", job["id"]);
    let cancel = tokio::signal::ctrl_c();
    tokio::pin!(cancel);
    let mut cancelled = false;
    loop {
        let v = api.get(&path).await?;
        match v["state"].as_str() {
            Some("done") => {
                return Ok(
                    json!({ "blocks": v["blocks"], "height": v["height"], "tip": v["tip"] }),
                );
            }
            Some("cancelled") => bail!(
                "mining cancelled after {} of {} blocks; height {} tip {}",
                v["mined"],
                v["requested"],
                v["height"],
                jstr(&v, "tip")
            ),
            Some("failed") => bail!(
                "mining failed after {} of {} blocks: {}",
                v["mined"],
                v["requested"],
                jstr(&v["error"], "error")
            ),
            _ => {}
        }
        if cancelled {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            _ = &mut cancel => {
                cancelled = true;
                api.delete(&path).await?;
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
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
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
            limits: Default::default(),
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
    })
}

async fn status(g: &Global) -> Result<Output> {
    let dir = g.data_dir()?;
    let (info, addr, wallet_error_text) = match ApiClient::discover(&dir, g.network)
        .await
        .map_err(|e| anyhow!(e))?
    {
        Some(api) => {
            let info = api.get("/info").await?;
            let addr = api
                .get("/wallet/address")
                .await
                .ok()
                .and_then(|v| v["address"].as_str().map(String::from));
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
    let work: U256 = jstr(&info, "work").parse().unwrap_or_default();
    let wallet_text = match (&addr, &wallet_error_text) {
        (Some(a), _) => a.clone(),
        (None, Some(e)) => format!("cannot be opened: {e}"),
        (None, None) => "none yet (chain-tui wallet new)".into(),
    };
    Ok(out(
        format!(
            "chain-tui {} — data dir {}\nheight {}  tip {}\nwork {}  difficulty {}\nmempool {} tx\nwallet {}",
            jstr(&info, "network"),
            dir.display(),
            jnum(&info, "height"),
            jstr(&info, "tip"),
            si_text(work),
            jnum(&info, "difficulty"),
            jnum(&info, "mempool"),
            wallet_text
        ),
        json!({ "network": info["network"], "data_dir": dir.display().to_string(), "height": info["height"],
                "tip": info["tip"], "mempool": info["mempool"], "address": addr,
                "wallet_error": wallet_error_text }),
    ))
}

#[cfg(feature = "bench")]
async fn bench(g: &Global, b: BenchCmd) -> Result<Output> {
    match b {
        BenchCmd::Mine {
            threads,
            seconds,
            kernel,
        } => {
            let threads = threads.unwrap_or_else(default_threads).max(1);
            let (name, hps) = crate::bench::hashrate(kernel.as_deref(), threads, seconds).await?;
            Ok(out(
                format!(
                    "{name}: {} H/s with {threads} threads ({} per thread)",
                    si_text(U256::from(hps)),
                    si_text(U256::from(hps / threads as u64))
                ),
                json!({ "hashes_per_second": hps, "threads": threads, "kernel": name, "seconds": seconds }),
            ))
        }
        BenchCmd::Sync { blocks, txs } => {
            let chain = crate::bench::generate_chain(blocks, txs);
            let tx_count: usize = chain.iter().map(|b| b.txs.len() - 1).sum();
            let tmp = tempdir_for("sync")?;
            let result = async {
                let import = crate::bench::time_import(chain.clone(), &tmp.join("import")).await?;
                let sync =
                    crate::bench::time_sync(chain, &tmp.join("source"), &tmp.join("sync")).await?;
                Ok::<_, anyhow::Error>((import, sync))
            }
            .await;
            let _ = std::fs::remove_dir_all(&tmp);
            let (import, sync) = result?;
            let per_sec = |d: std::time::Duration| (blocks as f64 / d.as_secs_f64()) as u64;
            let ratio = import.as_secs_f64() / sync.as_secs_f64();
            Ok(out(
                format!(
                    "{blocks} blocks with {tx_count} transactions: import {:.3} s ({} blocks/s), sync over QUIC {:.3} s ({} blocks/s): sync at {:.2}x the import speed",
                    import.as_secs_f64(),
                    per_sec(import),
                    sync.as_secs_f64(),
                    per_sec(sync),
                    ratio
                ),
                json!({ "blocks": blocks, "transactions": tx_count, "import_seconds": import.as_secs_f64(),
                        "sync_seconds": sync.as_secs_f64(), "import_blocks_per_second": per_sec(import),
                        "sync_blocks_per_second": per_sec(sync), "sync_to_import_ratio": ratio }),
            ))
        }
        BenchCmd::Api { txs, clients } => {
            if txs == 0 || clients == 0 {
                bail!("--txs and --clients must be at least 1");
            }
            let tmp = tempdir_for("api")?;
            let r = crate::bench::api::run(&tmp, txs, clients).await;
            let _ = std::fs::remove_dir_all(&tmp);
            let r = r?;
            Ok(out(
                format!(
                    "POST /transactions/new: {} of {} transactions accepted from {} clients in {:.3} s: {:.0} tx/s (one core verifies their signatures at {:.0}/s: {:.2}x)",
                    r.accepted,
                    r.transactions,
                    r.clients,
                    r.seconds,
                    r.per_second,
                    r.verify_per_second,
                    r.per_second / r.verify_per_second
                ),
                json!({ "transactions": r.transactions, "clients": r.clients, "accepted": r.accepted,
                        "seconds": r.seconds, "transactions_per_second": r.per_second,
                        "verify_per_second_one_core": r.verify_per_second }),
            ))
        }
        BenchCmd::Verify {
            threads,
            txs,
            seconds,
        } => {
            let (text, json) =
                tokio::task::spawn_blocking(move || crate::bench::verify(txs, threads, seconds))
                    .await?
                    .map_err(|e| anyhow!(e))?;
            Ok(out(text, json))
        }
        BenchCmd::Soak {
            blocks,
            seconds,
            every,
            warmup,
            threads,
        } => {
            if blocks == 0 || threads == 0 || every == Some(0) {
                bail!("--blocks, --threads and --every must be at least 1");
            }
            if seconds.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
                bail!("--seconds must be a positive number");
            }
            let config = crate::bench::soak::SoakConfig {
                blocks,
                seconds,
                every: every.unwrap_or((blocks / 20).max(1)),
                threads,
                warmup: warmup.unwrap_or(blocks / 10),
            };
            let tmp = tempdir_for("soak")?;
            let r = crate::bench::soak::run(&config, &tmp).await;
            let _ = std::fs::remove_dir_all(&tmp);
            let r = r?;
            Ok(out(r.text(), r.json()))
        }
        BenchCmd::Import { blocks } => {
            let _ = g;
            let (n, secs) = crate::bench::time_export_import(blocks).await?;
            let rate = (n as f64 / secs) as u64;
            Ok(out(
                format!("imported {n} blocks in {secs:.3} s: {rate} blocks/s"),
                json!({ "blocks": n, "seconds": secs, "blocks_per_second": rate }),
            ))
        }
    }
}

/// A fresh temporary directory for a benchmark.
#[cfg(feature = "bench")]
fn tempdir_for(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("chain-tui-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
