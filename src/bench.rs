//! Benchmarks behind `chain-tui bench`: a generator of regtest chains with real signed
//! transactions, and timed runs of import, peer-to-peer sync and signature verification on
//! this machine; [`soak`] watches resources while a node mines for a long time.

pub mod api;
pub mod events;
pub mod soak;

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::{Block, BlockHeader};
use crate::core::merkle::merkle_root;
use crate::core::params::Network;
use crate::core::rules::{
    BatchVerifier, SerialVerifier, SigCheck, SigVerifier, check_block_sanity, connect_block_txs,
    tx_sig_checks,
};
use crate::core::tx::{OutPoint, Transaction, TxOut};
use crate::node::NodeConfig;
use crate::node::P2pConfig;
use crate::node::verify::ParallelVerifier;
use crate::runtime::{Services, ServicesConfig};
use ed25519_dalek::SigningKey;
use std::path::Path;
use std::time::{Duration, Instant};

/// A regtest chain of `n` blocks on genesis. From the block after coinbase maturity on, every
/// block carries `txs_per_block` signed transactions, each spending an earlier coinbase output
/// or an earlier transaction's output, paying two outputs.
pub fn generate_chain(n: u64, txs_per_block: usize) -> Vec<Block> {
    let params = Network::Regtest.params();
    let key = SigningKey::from_bytes(&[42; 32]);
    let pubkey = key.verifying_key().to_bytes();
    let addr = Address::from_pubkey(&pubkey);
    // Spendable outputs: (outpoint, amount, height it became spendable).
    let mut coins: std::collections::VecDeque<(OutPoint, Amount, u64)> = Default::default();
    let mut blocks = Vec::with_capacity(n as usize);
    let mut prev = params.genesis_hash;
    for height in 1..=n {
        let time = params.genesis.header.time + height;
        let mut txs = Vec::new();
        let mut fees = Amount::ZERO;
        for _ in 0..txs_per_block {
            // The oldest output that is spendable at this height and worth splitting.
            let Some(pos) = coins
                .iter()
                .position(|c| c.2 <= height && c.1.units() >= 20_000)
            else {
                break;
            };
            let Some((o, amount, _)) = coins.remove(pos) else {
                break;
            };
            let fee = Amount::from_units(1_000);
            let half = Amount::from_units((amount.units() - fee.units()) / 2);
            let rest = Amount::from_units(amount.units() - fee.units() - half.units());
            let outputs = vec![
                TxOut {
                    amount: half,
                    address: addr,
                },
                TxOut {
                    amount: rest,
                    address: addr,
                },
            ];
            let tx = Transaction::signed(&[(o, &key)], outputs, &params.genesis_hash);
            fees = Amount::from_units(fees.units() + fee.units());
            let txid = tx.txid();
            coins.push_back((OutPoint { txid, vout: 0 }, half, height + 1));
            coins.push_back((OutPoint { txid, vout: 1 }, rest, height + 1));
            txs.push(tx);
        }
        let reward = params.subsidy(height).checked_add(fees).unwrap_or(fees);
        let coinbase = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![TxOut {
                amount: reward,
                address: addr,
            }],
            lock_height: height,
            memo: Vec::new(),
        };
        let cb_txid = coinbase.txid();
        if reward.units() > 0 {
            coins.push_back((
                OutPoint {
                    txid: cb_txid,
                    vout: 0,
                },
                reward,
                height + params.coinbase_maturity,
            ));
        }
        let mut all = vec![coinbase];
        all.extend(txs);
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev,
                merkle_root: merkle_root(&all.iter().map(Transaction::txid).collect::<Vec<_>>()),
                time,
                bits: params.pow_limit.to_compact(),
                nonce: 0,
            },
            txs: all,
        };
        while !params.pow_limit.is_met_by(&block.hash().0) {
            block.header.nonce += 1;
        }
        prev = block.hash();
        blocks.push(block);
    }
    blocks
}

/// Hashes per second of the mining kernel `kernel` (default: the fastest this CPU supports)
/// on `threads` threads for `seconds`; and the kernel's name.
pub async fn hashrate(
    kernel: Option<&str>,
    threads: usize,
    seconds: f64,
) -> anyhow::Result<(&'static str, u64)> {
    let k = crate::node::miner::kernel::select(kernel).map_err(|e| anyhow::anyhow!(e))?;
    let name = k.name();
    let hps = tokio::task::spawn_blocking(move || crate::node::miner::bench(&*k, threads, seconds))
        .await?;
    Ok((name, hps))
}

/// Time to import `blocks` into a fresh store in `dir`.
pub async fn time_import(blocks: Vec<Block>, dir: &Path) -> anyhow::Result<Duration> {
    let services =
        Services::start(ServicesConfig::node(NodeConfig::new(dir, Network::Regtest))).await?;
    let start = Instant::now();
    let imported = services.node.import(blocks).await;
    let took = start.elapsed();
    services.shutdown().await?;
    imported?;
    Ok(took)
}

/// Time for a fresh node in `dir` to sync from a peer that already has `blocks` (imported into
/// `source_dir`), over QUIC on 127.0.0.1.
pub async fn time_sync(
    blocks: Vec<Block>,
    source_dir: &Path,
    dir: &Path,
) -> anyhow::Result<Duration> {
    let target = blocks.len() as u64;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let node_on = |dir: &Path, p2p: P2pConfig| ServicesConfig {
        node: NodeConfig::new(dir, Network::Regtest),
        p2p: Some(p2p.into()),
        api: None,
    };
    let source = Services::start(node_on(source_dir, P2pConfig::new(source_dir, loopback))).await?;
    let run = async {
        source.node.import(blocks).await?;
        let source_addr = source
            .net()?
            .view()
            .listen
            .ok_or_else(|| anyhow::anyhow!("the source node has no listen address"))?;
        let mut config = P2pConfig::new(dir, loopback);
        config.connect = vec![crate::node::PeerAddr::new(source_addr, None)];
        let start = Instant::now();
        let node = Services::start(node_on(dir, config)).await?;
        let mut watch = node.node.watch();
        let synced = tokio::time::timeout(Duration::from_secs(600), async {
            loop {
                if watch.borrow().height >= target {
                    return;
                }
                if watch.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        let took = start.elapsed();
        let height = node.node.snapshot().height;
        node.shutdown().await?;
        if synced.is_err() || height < target {
            anyhow::bail!("sync did not finish: height {height} of {target} after {took:?}");
        }
        Ok(took)
    }
    .await;
    source.shutdown().await?;
    run
}

/// Mine `n` regtest blocks in a temporary dir, export, and time importing them into a fresh one.
pub async fn time_export_import(n: u64) -> anyhow::Result<(u64, f64)> {
    let tmp = std::env::temp_dir().join(format!("chain-tui-bench-{}", std::process::id()));
    let src = tmp.join("src");
    let dst = tmp.join("dst");
    let file = tmp.join("chain.bin");
    let result = async {
        let node = |dir: &Path| ServicesConfig::node(NodeConfig::new(dir, Network::Regtest));
        let source = Services::start(node(&src)).await?;
        let w = crate::wallet::Wallet::open_or_create(&src, Network::Regtest, None)?;
        let exported = async {
            source.node.mine_blocks(n, 1, w.receive_address()).await?;
            Ok::<_, anyhow::Error>(source.node.export_chain(&file)?)
        }
        .await;
        source.shutdown().await?;
        exported?;
        let blocks = crate::node::read_chain_file(&file, Network::Regtest)?;
        let dest = Services::start(node(&dst)).await?;
        let start = std::time::Instant::now();
        let imported = dest.node.import(blocks).await;
        let secs = start.elapsed().as_secs_f64();
        dest.shutdown().await?;
        imported?;
        Ok((n, secs))
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// A regtest block at height 1 with a coinbase and `n` one-input transactions, each signed by
/// its own key (so no two signatures share a key, as on a real chain), and the coins it spends.
pub fn signed_block(
    n: usize,
) -> (
    Block,
    std::collections::HashMap<OutPoint, crate::core::rules::Coin>,
) {
    let params = Network::Regtest.params();
    let mut view = std::collections::HashMap::with_capacity(n);
    let mut txs = Vec::with_capacity(n + 1);
    let fee = Amount::from_units(1_000);
    for i in 0..n {
        let mut seed = [0x5eu8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let key = SigningKey::from_bytes(&seed);
        let pubkey = key.verifying_key().to_bytes();
        let addr = Address::from_pubkey(&pubkey);
        let mut t = [0xf0u8; 32];
        t[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let prevout = OutPoint {
            txid: crate::core::hash::Txid(t),
            vout: 0,
        };
        view.insert(
            prevout,
            crate::core::rules::Coin {
                output: TxOut {
                    amount: Amount::from_units(1_000_000),
                    address: addr,
                },
                height: 0,
                coinbase: false,
            },
        );
        let outputs = vec![TxOut {
            amount: Amount::from_units(1_000_000 - fee.units()),
            address: addr,
        }];
        let tx = Transaction::signed(&[(prevout, &key)], outputs, &params.genesis_hash);
        txs.push(tx);
    }
    let fees = Amount::from_units(fee.units() * n as u64);
    let coinbase = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: params.subsidy(1).checked_add(fees).unwrap_or(fees),
            address: Address::from_hash([0; 20]),
        }],
        lock_height: 1,
        memo: Vec::new(),
    };
    let mut all = vec![coinbase];
    all.extend(txs);
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            prev: params.genesis_hash,
            merkle_root: merkle_root(&all.iter().map(Transaction::txid).collect::<Vec<_>>()),
            time: params.genesis.header.time + 1,
            bits: params.pow_limit.to_compact(),
            nonce: 0,
        },
        txs: all,
    };
    while !params.pow_limit.is_met_by(&block.hash().0) {
        block.header.nonce += 1;
    }
    (block, view)
}

/// Signatures per second of `verifier` over `checks`, repeated for about `seconds`.
fn sig_rate(verifier: &dyn SigVerifier, checks: &[SigCheck], seconds: f64) -> Result<f64, String> {
    let start = Instant::now();
    let mut rounds = 0u64;
    loop {
        verifier
            .verify_all(checks)
            .map_err(|i| format!("signature {i} of the benchmark block is invalid"))?;
        rounds += 1;
        let took = start.elapsed().as_secs_f64();
        if took >= seconds {
            return Ok((rounds as f64 * checks.len() as f64) / took);
        }
    }
}

/// `chain-tui bench verify`: the signatures of a block of `txs` one-input transactions,
/// checked one by one on one thread, as one ZIP-215 batch on one thread, and as batches on
/// `threads` threads (default: all cores); then the whole block connected with the node's
/// verifier. Returns the text and the JSON object.
pub fn verify(
    txs: usize,
    threads: Option<usize>,
    seconds: f64,
) -> Result<(String, serde_json::Value), String> {
    let params = Network::Regtest.params();
    let threads = threads.unwrap_or_else(|| ParallelVerifier::all_cores().threads());
    let (block, view) = signed_block(txs);
    let size = block.encode().len();
    let txids = check_block_sanity(&block, size, params).map_err(|e| e.to_string())?;
    let checks: Vec<SigCheck> = block
        .txs
        .iter()
        .flat_map(|t| tx_sig_checks(t, params))
        .collect();
    let seconds = seconds.max(0.05);
    let serial = sig_rate(&SerialVerifier, &checks, seconds)?;
    let batch = sig_rate(&BatchVerifier, &checks, seconds)?;
    let parallel = sig_rate(&ParallelVerifier::new(threads), &checks, seconds)?;
    // The whole block, every rule, as the node connects it.
    let verifier = ParallelVerifier::new(threads);
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed().as_secs_f64() < seconds || rounds == 0 {
        connect_block_txs(&block, &txids, 1, &view, params, &verifier)
            .map_err(|e| e.to_string())?;
        rounds += 1;
    }
    let connect_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    let n = checks.len();
    let text = format!(
        "{n} signatures ({txs} one-input transactions, one key each), ZIP-215:\n\
         serial, 1 thread:     {serial:>9.0} signatures/s\n\
         batch, 1 thread:      {batch:>9.0} signatures/s ({:.2}x serial)\n\
         batch, {threads} thread{}:     {parallel:>9.0} signatures/s ({:.2}x one thread)\n\
         whole block connect:  {connect_ms:.2} ms with {threads} thread{}",
        batch / serial,
        if threads == 1 { " " } else { "s" },
        parallel / batch,
        if threads == 1 { "" } else { "s" },
    );
    let json = serde_json::json!({
        "signatures": n,
        "threads": threads,
        "signatures_per_second": batch.round() as u64,
        "serial_signatures_per_second": serial.round() as u64,
        "parallel_signatures_per_second": parallel.round() as u64,
        "batch_to_serial_ratio": batch / serial,
        "parallel_to_batch_ratio": parallel / batch,
        "block_connect_ms": connect_ms,
        "seconds_per_mode": seconds,
    });
    Ok((text, json))
}
