//! The command line: clap definitions and the commands that drive a node on a data dir (wallet,
//! mine, send, chain, bench). Every command prints text, or one JSON object with `--json`; bad
//! input prints one line on stderr, exits non-zero and changes nothing.

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::merkle::merkle_root;
use crate::core::params::Network;
use crate::core::pow::{U256, si_text};
use crate::net::identity::PeerAddr;
use crate::node::mempool::FeeRate;
use crate::node::p2p::{self, P2pConfig};
use crate::node::{Node, NodeConfig, NodeHandle, miner};
use crate::wallet::{Wallet, WalletError};
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
            Some(Command::Tui(_)) => true,
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
    /// Wallet passphrase (for an encrypted keystore; also encrypts a new one).
    #[arg(
        long,
        global = true,
        env = "CHAIN_TUI_PASSPHRASE",
        hide_env_values = true
    )]
    pub passphrase: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the dashboard: the node with its peers, live in the terminal (the default).
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
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Several nodes in one process, side by side: partitions, forks, scenarios.
    Demo(crate::demo::DemoArgs),
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
}

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Make a new receive address (creates the wallet on first use).
    New,
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
    /// Sync speed: a fresh node syncs N regtest blocks carrying transactions from one peer over
    /// 127.0.0.1, against importing the same blocks, in one run.
    Sync {
        #[arg(long, default_value_t = 5_000)]
        blocks: u64,
        /// Transactions per block (after coinbase maturity).
        #[arg(long, default_value_t = 3)]
        txs: usize,
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
    let g = cli.global.clone();
    let dashboard = cli.opens_dashboard();
    let (output, code) = match cli.command {
        None if dashboard => {
            crate::tui::run(tui_config(&g, cli.node)?).await?;
            return Ok(0);
        }
        Some(Command::Tui(args)) => {
            crate::tui::run(tui_config(&g, args)?).await?;
            return Ok(0);
        }
        None => (status(&g).await?, 0),
        Some(Command::Demo(args)) => return crate::demo::run(args, g.network).await,
        Some(Command::Bench(b)) => (bench(&g, b).await?, 0),
        Some(Command::Node(args)) => {
            run_node(&g, args).await?;
            (out("", json!({ "stopped": true })), 0)
        }
        Some(Command::Wallet(WalletCmd::New)) => {
            // The first `new` creates the wallet with its first address; later ones add one.
            let existed = crate::wallet::keystore_path(&g.data_dir()?).exists();
            let mut w = open_wallet(&g)?;
            let a = if existed {
                w.new_address()?
            } else {
                w.receive_address()
            };
            let s = a.encode(g.network);
            (out(s.clone(), json!({ "address": s })), 0)
        }
        Some(Command::Wallet(WalletCmd::Address)) => {
            let w = open_wallet(&g)?;
            let s = w.receive_address().encode(g.network);
            (out(s.clone(), json!({ "address": s })), 0)
        }
        Some(cmd) => {
            // Everything the user typed is checked before a node (and its data dir) exists.
            let job = prepare(&g, cmd)?;
            let g2 = g.clone();
            with_node(
                &g,
                |node| async move { node_command(&g2, &node, job).await },
            )
            .await?
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

fn open_wallet(g: &Global) -> Result<Wallet> {
    Ok(Wallet::open_or_create(
        &g.data_dir()?,
        g.network,
        g.passphrase.as_deref(),
    )?)
}

/// Start a node on the data dir, run `f`, shut the node down (saving the mempool).
async fn with_node<F, Fut>(g: &Global, f: F) -> Result<(Output, i32)>
where
    F: FnOnce(NodeHandle) -> Fut,
    Fut: std::future::Future<Output = Result<(Output, i32)>>,
{
    let dir = g.data_dir()?;
    let node = Node::spawn(NodeConfig::new(&dir, g.network))?;
    let result = f(node.clone()).await;
    node.shutdown().await?;
    result
}

/// A command whose arguments have been parsed and checked.
enum Job {
    Balance,
    History,
    Mine {
        blocks: u64,
        threads: usize,
    },
    Send {
        to: Address,
        amount: Amount,
        rate: FeeRate,
    },
    Chain(ChainJob),
}

enum ChainJob {
    Info,
    Block(BlockId),
    Tx(Txid),
    Validate,
    Export(PathBuf),
    Import(Vec<Block>),
}

enum BlockId {
    Height(u64),
    Hash(BlockHash),
}

fn prepare(g: &Global, cmd: Command) -> Result<Job> {
    let net = g.network;
    Ok(match cmd {
        Command::Wallet(WalletCmd::Balance) => Job::Balance,
        Command::Wallet(WalletCmd::History) => Job::History,
        Command::Mine { blocks, threads } => {
            let threads = threads.unwrap_or_else(default_threads);
            if threads == 0 {
                bail!("--threads must be at least 1");
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
            let rate = match fee_rate {
                Some(0) => bail!("bad fee rate: at least 1 base unit per byte"),
                Some(r) => FeeRate(
                    r.checked_mul(1000)
                        .ok_or_else(|| anyhow!("bad fee rate: too large"))?,
                ),
                None => crate::wallet::DEFAULT_FEE_RATE,
            };
            Job::Send { to, amount, rate }
        }
        Command::Chain(c) => Job::Chain(match c {
            ChainCmd::Info => ChainJob::Info,
            ChainCmd::Block { id } => ChainJob::Block(match id.parse::<u64>() {
                Ok(h) if id.len() < 64 => BlockId::Height(h),
                _ => BlockId::Hash(
                    id.parse::<BlockHash>()
                        .map_err(|_| anyhow!("not a height or a block hash: {id:?}"))?,
                ),
            }),
            ChainCmd::Tx { txid } => {
                ChainJob::Tx(txid.parse().map_err(|_| anyhow!("not a txid: {txid:?}"))?)
            }
            ChainCmd::Validate => ChainJob::Validate,
            ChainCmd::Export { file } => ChainJob::Export(file),
            ChainCmd::Import { file } => ChainJob::Import(read_chain_file(&file, net)?),
        }),
        Command::Wallet(WalletCmd::New | WalletCmd::Address)
        | Command::Bench(_)
        | Command::Node(_)
        | Command::Demo(_)
        | Command::Tui(_) => {
            bail!("internal error: command dispatched to the wrong handler")
        }
    })
}

async fn node_command(g: &Global, node: &NodeHandle, job: Job) -> Result<(Output, i32)> {
    Ok(match job {
        Job::Balance => {
            let w = open_wallet(g)?;
            let b = w.balance(node)?;
            (
                out(
                    format!(
                        "confirmed   {}\nunconfirmed {}\nimmature    {}",
                        b.confirmed, b.unconfirmed, b.immature
                    ),
                    json!({ "confirmed": b.confirmed.0, "unconfirmed": b.unconfirmed.0, "immature": b.immature.0 }),
                ),
                0,
            )
        }
        Job::History => {
            let w = open_wallet(g)?;
            let h = w.history(node)?;
            let mut text = String::new();
            for t in &h {
                let net = t.net();
                let sign = if net < 0 { "-" } else { "+" };
                let amount = Amount(net.unsigned_abs().min(u128::from(u64::MAX)) as u64);
                text.push_str(&format!(
                    "{}  {sign}{amount}  {} conf{}\n",
                    t.txid,
                    t.confirmations,
                    t.height
                        .map(|h| format!("  height {h}"))
                        .unwrap_or_default()
                ));
            }
            let rows: Vec<Value> = h
                .iter()
                .map(|t| {
                    json!({ "txid": t.txid.to_string(), "height": t.height, "confirmations": t.confirmations,
                            "received": t.received.0, "sent": t.sent.0, "net": t.net() as i64 })
                })
                .collect();
            (out(text.trim_end(), json!({ "transactions": rows })), 0)
        }
        Job::Mine { blocks, threads } => {
            let w = open_wallet(g)?;
            let hashes = node
                .mine_blocks(blocks, threads, w.receive_address())
                .await?;
            let tip = node.tip()?;
            let list: Vec<String> = hashes.iter().map(ToString::to_string).collect();
            (
                out(
                    format!(
                        "mined {} blocks; height {} tip {}",
                        hashes.len(),
                        tip.height,
                        tip.hash()
                    ),
                    json!({ "blocks": list, "height": tip.height, "tip": tip.hash().to_string() }),
                ),
                0,
            )
        }
        Job::Send { to, amount, rate } => {
            let w = open_wallet(g)?;
            let tx = w
                .build_payment(node, to, amount, rate)
                .map_err(|e| match e {
                    WalletError::InsufficientFunds { .. }
                    | WalletError::ZeroAmount
                    | WalletError::FeeRateTooLow(_) => {
                        anyhow!("{e}")
                    }
                    other => anyhow!(other),
                })?;
            let fee = fee_of(node, &tx)?;
            let txid = node.submit_tx(tx, true).await?;
            (
                out(
                    format!("{txid}"),
                    json!({ "txid": txid.to_string(), "fee": fee.0, "amount": amount.0 }),
                ),
                0,
            )
        }
        Job::Chain(c) => chain_command(g, node, c).await?,
    })
}

fn fee_of(node: &NodeHandle, tx: &crate::core::tx::Transaction) -> Result<Amount> {
    let mut total = Amount::ZERO;
    for i in &tx.inputs {
        if let Some(info) = node.transaction(&i.prevout.txid)?
            && let Some(o) = info.tx.outputs.get(i.prevout.vout as usize)
        {
            total = total.checked_add(o.amount).unwrap_or(total);
        }
    }
    Ok(total
        .checked_sub(tx.output_total().unwrap_or(total))
        .unwrap_or_default())
}

/// All cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn block_json(node: &NodeHandle, b: &Block) -> Result<(String, Value)> {
    let hash = b.hash();
    let meta = node
        .block_meta(&hash)?
        .ok_or_else(|| anyhow!("block {hash} is not in the index"))?;
    let tip = node.tip()?;
    let active = node.is_active(&meta)?;
    let confirmations = if active {
        tip.height + 1 - meta.height
    } else {
        0
    };
    let txids: Vec<String> = b.txids().iter().map(ToString::to_string).collect();
    let text = format!(
        "block {hash}\nheight {}  {}\nprev {}\ntime {}  bits {:#010x}  nonce {}\nsize {} bytes, {} transactions, {confirmations} confirmations\n{}",
        meta.height,
        if active { "active" } else { "side branch" },
        b.header.prev,
        b.header.time,
        b.header.bits.0,
        b.header.nonce,
        meta.size,
        meta.tx_count,
        txids.join("\n")
    );
    Ok((
        text,
        json!({ "hash": hash.to_string(), "height": meta.height, "prev": b.header.prev.to_string(),
                "merkle_root": b.header.merkle_root.to_string(), "time": b.header.time, "bits": b.header.bits.0,
                "nonce": b.header.nonce, "size": meta.size, "active": active, "confirmations": confirmations,
                "txs": txids }),
    ))
}

async fn chain_command(g: &Global, node: &NodeHandle, c: ChainJob) -> Result<(Output, i32)> {
    Ok(match c {
        ChainJob::Info => {
            let s = node.snapshot();
            (
                out(
                    format!(
                        "network    {}\nheight     {}\ntip        {}\nwork       {} ({})\ndifficulty {}\nmempool    {} tx",
                        s.network,
                        s.height,
                        s.tip,
                        s.chainwork.0,
                        si_text(s.chainwork.0),
                        s.difficulty,
                        s.mempool_count
                    ),
                    json!({ "network": s.network.name(), "height": s.height, "tip": s.tip.to_string(),
                            "work": s.chainwork.0.to_string(), "difficulty": u64::try_from(s.difficulty).unwrap_or(u64::MAX),
                            "bits": s.bits, "mempool": s.mempool_count }),
                ),
                0,
            )
        }
        ChainJob::Block(id) => {
            let hash = match id {
                BlockId::Height(h) => node.hash_at(h)?.ok_or_else(|| {
                    anyhow!("no block at height {h} (tip is {})", node.snapshot().height)
                })?,
                BlockId::Hash(h) => h,
            };
            let b = node
                .block(&hash)?
                .ok_or_else(|| anyhow!("unknown block {hash}"))?;
            let (text, j) = block_json(node, &b)?;
            (out(text, j), 0)
        }
        ChainJob::Tx(id) => {
            let info = node
                .transaction(&id)?
                .ok_or_else(|| anyhow!("unknown transaction {id}"))?;
            let outputs: Vec<Value> = info
                .tx
                .outputs
                .iter()
                .map(|o| json!({ "address": o.address.encode(g.network), "amount": o.amount.0 }))
                .collect();
            let inputs: Vec<Value> = info
                .tx
                .inputs
                .iter()
                .map(|i| json!({ "txid": i.prevout.txid.to_string(), "vout": i.prevout.vout }))
                .collect();
            let where_ = match info.block {
                Some((h, height)) => format!("in block {h} at height {height}"),
                None => "in the mempool".into(),
            };
            let mut text = format!("tx {id}\n{where_}, {} confirmations\n", info.confirmations);
            for i in &info.tx.inputs {
                text.push_str(&format!("  in  {}\n", i.prevout));
            }
            for o in &info.tx.outputs {
                text.push_str(&format!(
                    "  out {} {}\n",
                    o.address.encode(g.network),
                    o.amount
                ));
            }
            (
                out(
                    text.trim_end(),
                    json!({ "txid": id.to_string(), "confirmations": info.confirmations,
                            "block": info.block.map(|(h, _)| h.to_string()), "height": info.block.map(|(_, h)| h),
                            "coinbase": info.tx.is_coinbase(), "inputs": inputs, "outputs": outputs }),
                ),
                0,
            )
        }
        ChainJob::Validate => {
            let n = node.clone();
            let report = tokio::task::spawn_blocking(move || n.validate_chain()).await??;
            match &report.first_bad {
                None => (
                    out(
                        "VALID",
                        json!({ "valid": true, "height": report.height, "utxos": report.utxo_count }),
                    ),
                    0,
                ),
                Some((h, hash, why)) => (
                    out(
                        format!("INVALID: block {h} ({hash}): {why}"),
                        json!({ "valid": false, "height": report.height, "bad_height": h,
                                "bad_block": hash.to_string(), "error": why }),
                    ),
                    1,
                ),
            }
        }
        ChainJob::Export(file) => {
            let n = export_chain(node, &file)?;
            (
                out(
                    format!("exported {n} blocks to {}", file.display()),
                    json!({ "blocks": n, "file": file.display().to_string() }),
                ),
                0,
            )
        }
        ChainJob::Import(blocks) => {
            let n = blocks.len();
            let height = node.import(blocks).await?;
            (
                out(
                    format!("imported {n} blocks; height {height}"),
                    json!({ "blocks": n, "height": height }),
                ),
                0,
            )
        }
    })
}

/// Chain file: magic, format version, genesis hash, block count, then length-prefixed blocks.
const CHAIN_MAGIC: &[u8; 8] = b"CTCHAIN\0";
const CHAIN_FILE_VERSION: u32 = 1;

/// Write the active chain (without genesis) to `file`, through a temp file and a rename.
pub fn export_chain(node: &NodeHandle, file: &Path) -> Result<u64> {
    let tip = node.tip()?;
    let tmp = file.with_extension("partial");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    w.write_all(CHAIN_MAGIC)?;
    w.write_all(&CHAIN_FILE_VERSION.to_le_bytes())?;
    w.write_all(&node.params().genesis_hash.0)?;
    w.write_all(&tip.height.to_le_bytes())?;
    let mut h = 1;
    while h <= tip.height {
        for b in node.blocks_from(h, 1000)? {
            let bytes = b.encode();
            w.write_all(&(bytes.len() as u32).to_le_bytes())?;
            w.write_all(&bytes)?;
            h += 1;
        }
    }
    let f = w
        .into_inner()
        .map_err(|e| anyhow!("writing {}: {e}", tmp.display()))?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(tip.height)
}

/// Read and decode every block of a chain file, refusing anything malformed before the store
/// is touched.
pub fn read_chain_file(file: &Path, network: Network) -> Result<Vec<Block>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bad = |why: String| anyhow!("{} is not a valid chain file: {why}", file.display());
    let params = network.params();
    let header = 8 + 4 + 32 + 8;
    if bytes.len() < header || &bytes[..8] != CHAIN_MAGIC {
        return Err(bad("bad magic".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| bad("short".into()))?);
    if version != CHAIN_FILE_VERSION {
        return Err(bad(format!("unsupported version {version}")));
    }
    if bytes[12..44] != params.genesis_hash.0 {
        return Err(anyhow!(
            "{} holds a chain of another network (this node runs {network})",
            file.display()
        ));
    }
    let count = u64::from_le_bytes(bytes[44..52].try_into().map_err(|_| bad("short".into()))?);
    let mut pos = header;
    let mut blocks = Vec::new();
    while pos < bytes.len() {
        let len_bytes: [u8; 4] = bytes
            .get(pos..pos + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad(format!("truncated at byte {pos}")))?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        pos += 4;
        if len > params.max_block_size {
            return Err(bad(format!(
                "block {} is {len} bytes, over the limit",
                blocks.len() + 1
            )));
        }
        let data = bytes
            .get(pos..pos + len)
            .ok_or_else(|| bad(format!("truncated in block {}", blocks.len() + 1)))?;
        let block = Block::decode(data, params.max_block_size)
            .map_err(|e| bad(format!("block {}: {e}", blocks.len() + 1)))?;
        blocks.push(block);
        pos += len;
    }
    if blocks.len() as u64 != count {
        return Err(bad(format!(
            "header says {count} blocks, file holds {}",
            blocks.len()
        )));
    }
    // A chain file is one chain from genesis, each body matching its header.
    let mut prev = params.genesis_hash;
    for (i, b) in blocks.iter().enumerate() {
        if b.header.prev != prev {
            return Err(bad(format!(
                "block {} does not build on the block before it",
                i + 1
            )));
        }
        if merkle_root(&b.txids()) != b.header.merkle_root {
            return Err(bad(format!(
                "block {}'s transactions do not match its header",
                i + 1
            )));
        }
        prev = b.hash();
    }
    Ok(blocks)
}

/// Run a node with its network until SIGINT or SIGTERM, then shut down cleanly: peers told,
/// mempool saved, store closed.
async fn run_node(g: &Global, args: NodeArgs) -> Result<()> {
    let dir = g.data_dir()?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], g.network.params().default_port)));
    let node = Node::spawn(NodeConfig::new(&dir, g.network))?;
    let mut config = P2pConfig::new(&dir, listen);
    config.connect = args.connect.clone();
    let net = match p2p::start(node.clone(), config).await {
        Ok(n) => n,
        Err(e) => {
            node.shutdown().await?;
            return Err(e.into());
        }
    };
    let view = net.view();
    tracing::info!(
        "node {} on {} listening on {}",
        view.id.map(|i| i.to_string()).unwrap_or_default(),
        g.network,
        view.listen.map(|a| a.to_string()).unwrap_or_default()
    );
    if args.mine {
        let w = open_wallet(g)?;
        let threads = args.threads.unwrap_or_else(default_threads).max(1);
        node.set_mining(threads, Some(w.receive_address())).await?;
        tracing::info!(
            "mining with {threads} threads to {}",
            w.receive_address().encode(g.network)
        );
    }
    wait_for_stop_signal().await;
    tracing::info!("shutting down");
    net.shutdown().await?;
    node.shutdown().await?;
    Ok(())
}

/// The dashboard's settings from the command line (same defaults as `node`).
fn tui_config(g: &Global, args: NodeArgs) -> Result<crate::tui::TuiConfig> {
    let threads = args.threads.unwrap_or_else(default_threads);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    Ok(crate::tui::TuiConfig {
        data_dir: g.data_dir()?,
        network: g.network,
        passphrase: g.passphrase.clone(),
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], g.network.params().default_port))),
        connect: args.connect,
        mine: args.mine,
        threads,
    })
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn status(g: &Global) -> Result<Output> {
    let dir = g.data_dir()?;
    let node = Node::spawn(NodeConfig::new(&dir, g.network))?;
    let s = node.snapshot();
    let wallet = Wallet::open_existing(&dir, g.network, g.passphrase.as_deref())
        .ok()
        .flatten();
    let addr = wallet
        .as_ref()
        .map(|w| w.receive_address().encode(g.network));
    node.shutdown().await?;
    Ok(out(
        format!(
            "chain-tui {} — data dir {}\nheight {}  tip {}\nwork {}  difficulty {}\nmempool {} tx\nwallet {}",
            s.network,
            dir.display(),
            s.height,
            s.tip,
            si_text(s.chainwork.0),
            s.difficulty,
            s.mempool_count,
            addr.clone()
                .unwrap_or_else(|| "none yet (chain-tui wallet new)".into())
        ),
        json!({ "network": s.network.name(), "data_dir": dir.display().to_string(), "height": s.height,
                "tip": s.tip.to_string(), "mempool": s.mempool_count, "address": addr }),
    ))
}

async fn bench(g: &Global, b: BenchCmd) -> Result<Output> {
    match b {
        BenchCmd::Mine {
            threads,
            seconds,
            kernel,
        } => {
            let threads = threads.unwrap_or_else(default_threads).max(1);
            let k = miner::kernel::select(kernel.as_deref()).map_err(|e| anyhow!(e))?;
            let name = k.name();
            let hps =
                tokio::task::spawn_blocking(move || miner::bench(&*k, threads, seconds)).await?;
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
        BenchCmd::Import { blocks } => {
            let _ = g;
            let (n, secs) = bench_import(blocks).await?;
            let rate = (n as f64 / secs) as u64;
            Ok(out(
                format!("imported {n} blocks in {secs:.3} s: {rate} blocks/s"),
                json!({ "blocks": n, "seconds": secs, "blocks_per_second": rate }),
            ))
        }
    }
}

/// A fresh temporary directory for a benchmark.
fn tempdir_for(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("chain-tui-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Mine `n` regtest blocks in a temporary dir, export, and time importing them into a fresh one.
async fn bench_import(n: u64) -> Result<(u64, f64)> {
    let tmp = std::env::temp_dir().join(format!("chain-tui-bench-{}", std::process::id()));
    let src = tmp.join("src");
    let dst = tmp.join("dst");
    let file = tmp.join("chain.bin");
    let result = async {
        let node = Node::spawn(NodeConfig::new(&src, Network::Regtest))?;
        let w = Wallet::open_or_create(&src, Network::Regtest, None)?;
        node.mine_blocks(n, 1, w.receive_address()).await?;
        export_chain(&node, &file)?;
        node.shutdown().await?;
        let blocks = read_chain_file(&file, Network::Regtest)?;
        let node = Node::spawn(NodeConfig::new(&dst, Network::Regtest))?;
        let start = std::time::Instant::now();
        node.import(blocks).await?;
        let secs = start.elapsed().as_secs_f64();
        node.shutdown().await?;
        Ok::<_, anyhow::Error>((n, secs))
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
