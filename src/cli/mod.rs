//! The command line: the clap definitions here; running a command ([`run`]: on the data dir
//! itself, or through the API of the node running there), what a command prints
//! ([`answer`]: the API's types through their `Display`, or their JSON with `--json`), and the
//! benchmarks ([`bench`]). Bad input prints one line on stderr, exits non-zero and changes
//! nothing.

mod answer;
#[cfg(feature = "tui")]
mod attach;
#[cfg(feature = "bench")]
mod bench;
mod run;

pub use run::{check_threads, default_threads, run};

use crate::core::params::Network;
use crate::node::PeerAddr;
use crate::wallet::Wallet;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
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
    /// Parse the process's arguments, noting whether the network was chosen.
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let mut matches = Cli::command().try_get_matches()?;
        let given = !matches!(
            matches.value_source("network"),
            None | Some(clap::parser::ValueSource::DefaultValue)
        );
        let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
        cli.global.network_given = given;
        Ok(cli)
    }

    /// Whether this command line opens the dashboard: `chain-tui tui`, or no subcommand on a
    /// terminal without `--json` (otherwise no subcommand prints the data dir's status).
    pub fn opens_dashboard(&self) -> bool {
        use std::io::IsTerminal;
        match self.command {
            #[cfg(feature = "tui")]
            Some(Command::Tui(_) | Command::Attach { .. }) => true,
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
    /// Whether the network was chosen (by `--network` or `CHAIN_TUI_NETWORK`), not the
    /// default: a demo scenario declares its own, which only a chosen one may contradict.
    #[arg(skip)]
    pub network_given: bool,
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
    /// Drive the node whose API is at URL (http://HOST:PORT) instead of the one running on the
    /// data dir; its network is the node's. Reads need no token unless that node asks for one.
    #[arg(
        long = "node",
        global = true,
        env = "CHAIN_TUI_NODE",
        value_name = "URL"
    )]
    pub node_url: Option<String>,
    /// The API token for --node (or attach URL): a node.json (its `token`) or a file whose
    /// first line is it.
    #[arg(long, global = true, env = "CHAIN_TUI_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
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
    /// Simulate a network of many nodes running this protocol, in virtual time: block
    /// propagation, stale blocks, bytes per node.
    Sim(SimArgs),
    /// Several nodes in one process, side by side: partitions, forks, scenarios.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
    /// Open the dashboard on a node running elsewhere (`chain-tui node`), through its API. Sends
    /// and mining need its token (--token-file); q leaves the node running.
    #[cfg(feature = "tui")]
    Attach {
        /// The node's API, http://HOST:PORT (default: --node, or the node running on the data
        /// dir).
        url: Option<String>,
    },
}

/// `chain-tui sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Nodes in the network.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub nodes: u32,
    /// Outbound connections each node keeps.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=125))]
    pub peers: u32,
    /// Mean time between blocks, in seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub block_interval: u64,
    /// Each block's size on the network, in bytes.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(88..=100_000_000))]
    pub block_size: u64,
    /// Latency model: world (six regions) or lan (1 ms).
    #[arg(long, default_value = "world")]
    pub latency: crate::sim::world::Latency,
    /// Simulated minutes to run.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=525_600))]
    pub minutes: u64,
    /// Seed: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Nodes that mine, with equal hashrate (default: all).
    #[arg(long, default_value_t = 0)]
    pub miners: u32,
    /// Each node's upload bandwidth, in Mbit/s.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub upload_mbps: u64,
    /// Milliseconds a node takes to validate one megabyte of block before relaying it
    /// (with --txs: one megabyte of transactions that had not reached its mempool; those
    /// that had were checked on the way in).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub verify_ms_per_mb: u64,
    /// How blocks travel: compact (protocol 2, rebuilt from the mempool) or full
    /// (protocol 1: announced, then headers and the whole block asked for).
    #[arg(long, default_value = "compact")]
    pub relay: crate::sim::Relay,
    /// Simulated transactions per full block, each standing for block-size / txs bytes
    /// (0: blocks carry none and are validated whole).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub txs: u64,
    /// Bytes of one real transaction (a compact block has one short id per tx-size bytes).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=1_000_000))]
    pub tx_size: u64,
    /// Mean seconds for a transaction to reach a node's mempool (light validation).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub tx_delay: u64,
    /// How far nodes check what they receive: light (blocks connect by parent and work;
    /// thousands of nodes) or full (every consensus rule, by the node's own chain state
    /// machine and mempool in memory; --txs real signed payments per block interval,
    /// relayed message by message; real block and message sizes, so --block-size, --tx-size
    /// and --tx-delay do not apply; at most 500 nodes).
    #[arg(long, default_value = "light")]
    pub validate: crate::sim::Validation,
    /// With --validate full: the last node makes each block it finds invalid (its coinbase
    /// overpays) and announces it; its peers ban it.
    #[arg(long)]
    pub invalid_miner: bool,
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
    /// Reads need the API token too, not only writes. Always so when --api is not a loopback
    /// address (a warning says so).
    #[arg(long)]
    pub api_read_token: bool,
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
    /// The API's limits: reads need the token when asked, and whenever the API listens
    /// beyond loopback (said on stderr, before anything else runs).
    pub fn api_limits(&self, network: Network) -> crate::api::ApiLimits {
        let beyond = self
            .api_addr(network)
            .is_some_and(crate::api::server::reads_need_token_at);
        if beyond && !self.api_read_token {
            eprintln!(
                "warning: the API listens beyond loopback ({}): every request, reads too, \
                 needs the token in DATA_DIR/node.json; it speaks plain HTTP, so the token \
                 crosses the network in clear",
                self.api_addr(network)
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            );
        }
        crate::api::ApiLimits {
            reads_need_token: beyond || self.api_read_token,
            ..crate::api::ApiLimits::default()
        }
    }

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
    /// Event delivery: L clients read `GET /events` of a regtest node on 127.0.0.1 while it
    /// mines B blocks; how long each block takes from its commit to each client.
    Events {
        #[arg(long, default_value_t = 100)]
        listeners: usize,
        #[arg(long, default_value_t = 20)]
        blocks: usize,
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
