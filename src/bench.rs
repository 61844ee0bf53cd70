//! Benchmarks behind `chain-tui bench`: a generator of regtest chains with real signed
//! transactions, and timed runs of import and peer-to-peer sync on this machine.

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::{Block, BlockHeader};
use crate::core::merkle::merkle_root;
use crate::core::params::Network;
use crate::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use crate::node::p2p::{self, P2pConfig};
use crate::node::{Node, NodeConfig, NodeError};
use ed25519_dalek::{Signer, SigningKey};
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
            let Some(pos) = coins.iter().position(|c| c.2 <= height && c.1.0 >= 20_000) else {
                break;
            };
            let Some((o, amount, _)) = coins.remove(pos) else {
                break;
            };
            let fee = Amount(1_000);
            let half = Amount((amount.0 - fee.0) / 2);
            let rest = Amount(amount.0 - fee.0 - half.0);
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prevout: o,
                    pubkey,
                    signature: [0; 64],
                }],
                outputs: vec![
                    TxOut {
                        amount: half,
                        address: addr,
                    },
                    TxOut {
                        amount: rest,
                        address: addr,
                    },
                ],
                lock_height: 0,
                memo: Vec::new(),
            };
            let sighash = tx.sighash(&params.genesis_hash);
            tx.inputs[0].signature = key.sign(&sighash).to_bytes();
            fees = Amount(fees.0 + fee.0);
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
        if reward.0 > 0 {
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

/// Time to import `blocks` into a fresh store in `dir`.
pub async fn time_import(blocks: Vec<Block>, dir: &Path) -> Result<Duration, NodeError> {
    let node = Node::spawn(NodeConfig::new(dir, Network::Regtest))?;
    let start = Instant::now();
    node.import(blocks).await?;
    let took = start.elapsed();
    node.shutdown().await?;
    Ok(took)
}

/// Time for a fresh node in `dir` to sync from a peer that already has `blocks` (imported into
/// `source_dir`), over QUIC on 127.0.0.1.
pub async fn time_sync(
    blocks: Vec<Block>,
    source_dir: &Path,
    dir: &Path,
) -> Result<Duration, NodeError> {
    let target = blocks.len() as u64;
    let source = Node::spawn(NodeConfig::new(source_dir, Network::Regtest))?;
    source.import(blocks).await?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let source_net = p2p::start(source.clone(), P2pConfig::new(source_dir, loopback)).await?;
    let source_addr = source_net
        .view()
        .listen
        .ok_or_else(|| NodeError::Config("source node has no listen address".into()))?;
    let node = Node::spawn(NodeConfig::new(dir, Network::Regtest))?;
    let mut watch = node.watch();
    let start = Instant::now();
    let mut config = P2pConfig::new(dir, loopback);
    config.connect = vec![crate::net::identity::PeerAddr::new(source_addr, None)];
    let net = p2p::start(node.clone(), config).await?;
    let deadline = Duration::from_secs(600);
    let synced = tokio::time::timeout(deadline, async {
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
    let height = node.snapshot().height;
    net.shutdown().await?;
    source_net.shutdown().await?;
    node.shutdown().await?;
    source.shutdown().await?;
    if synced.is_err() || height < target {
        return Err(NodeError::Config(format!(
            "sync did not finish: height {height} of {target} after {took:?}"
        )));
    }
    Ok(took)
}
