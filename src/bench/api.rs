//! `chain-tui bench api`: a load generator for `POST /transactions/new`. A regtest node with
//! its API on 127.0.0.1 gets N distinct signed transactions from several HTTP clients at once;
//! the figure is accepted transactions per second, next to how fast one core verifies their
//! signatures, so it shows whether the HTTP layer or the signature checks bound the rate.

use crate::api::views::TxJson;
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::params::Network;
use crate::core::rules::{SerialVerifier, SigCheck, SigVerifier};
use crate::core::tx::{OutPoint, Transaction, TxOut};
use crate::node::NodeConfig;
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use ed25519_dalek::SigningKey;
use std::path::Path;
use std::time::Instant;

/// What one run measured.
#[derive(Clone, Debug)]
pub struct ApiBench {
    pub transactions: usize,
    pub clients: usize,
    pub seconds: f64,
    pub accepted: usize,
    /// Accepted transactions per second over HTTP.
    pub per_second: f64,
    /// Signatures one core verifies per second (the same transactions, one at a time).
    pub verify_per_second: f64,
}

/// Outputs a fan-out transaction makes (it stays under the transaction size limit).
const FAN: usize = 1000;
const FEE: u64 = 1_000;

fn signed(key: &SigningKey, inputs: &[OutPoint], outputs: Vec<TxOut>) -> Transaction {
    let inputs: Vec<(OutPoint, &SigningKey)> = inputs.iter().map(|o| (*o, key)).collect();
    Transaction::signed(&inputs, outputs, &Network::Regtest.params().genesis_hash)
}

/// Run the benchmark in `dir` (a fresh temporary directory).
pub async fn run(dir: &Path, n: usize, clients: usize) -> anyhow::Result<ApiBench> {
    let clients = clients.max(1);
    let params = Network::Regtest.params();
    let services = Services::start(ServicesConfig {
        node: NodeConfig::new(dir, Network::Regtest),
        p2p: None,
        api: Some(ApiSetup {
            addr: "127.0.0.1:0".parse()?,
            limits: Default::default(),
            wallet: Err("the API benchmark runs without a wallet".into()),
            mine_threads: 1,
        }),
    })
    .await?;
    let node = &services.node;
    let result = async {
        let key = SigningKey::from_bytes(&[7; 32]);
        let me = Address::from_pubkey(&key.verifying_key().to_bytes());
        // Coins: mature coinbases, each fanned out to FAN outputs.
        let fans = n.div_ceil(FAN);
        let mined = node
            .mine_blocks(fans as u64 + params.coinbase_maturity, 1, me)
            .await?;
        let each = 4_000_000u64;
        let mut coins = Vec::with_capacity(fans * FAN);
        for h in mined.iter().take(fans) {
            let b = node
                .block(h)?
                .ok_or_else(|| anyhow::anyhow!("mined block {h} missing"))?;
            let cb = OutPoint {
                txid: b.txs[0].txid(),
                vout: 0,
            };
            let fan = signed(
                &key,
                &[cb],
                (0..FAN)
                    .map(|_| TxOut {
                        amount: Amount::from_units(each),
                        address: me,
                    })
                    .collect(),
            );
            let id = node.submit_tx(fan, false).await?;
            coins.extend((0..FAN as u32).map(|vout| OutPoint { txid: id, vout }));
        }
        while node.snapshot().mempool_count > 0 {
            node.mine_blocks(1, 1, me).await?;
        }
        // The transactions, signed and encoded before the clock starts.
        let to = Address::from_pubkey(&SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes());
        let txs: Vec<Transaction> = coins
            .iter()
            .take(n)
            .map(|o| {
                signed(
                    &key,
                    &[*o],
                    vec![TxOut {
                        amount: Amount::from_units(each - FEE),
                        address: to,
                    }],
                )
            })
            .collect();
        let t = Instant::now();
        for tx in &txs {
            let msg = tx.sighash(&params.genesis_hash);
            let checks: Vec<SigCheck> = tx
                .inputs
                .iter()
                .map(|i| SigCheck {
                    msg,
                    pubkey: i.pubkey,
                    signature: i.signature,
                })
                .collect();
            if SerialVerifier.verify_all(&checks).is_err() {
                anyhow::bail!("a benchmark transaction has a bad signature");
            }
        }
        let verify_per_second = txs.len() as f64 / t.elapsed().as_secs_f64();
        let bodies: Vec<Vec<u8>> = txs
            .iter()
            .map(|tx| serde_json::to_vec(&TxJson::from_tx(tx, Network::Regtest)))
            .collect::<Result<_, _>>()?;

        let server = services
            .api()
            .ok_or_else(|| anyhow::anyhow!("the API did not start"))?;
        let url = format!("http://{}/transactions/new", server.addr());
        let token = server.token().to_string();
        let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients];
        for (i, b) in bodies.into_iter().enumerate() {
            shares[i % clients].push(b);
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for share in shares {
            let (url, token) = (url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder().no_proxy().build()?;
                let mut ok = 0usize;
                for body in share {
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await?;
                    if r.status() == reqwest::StatusCode::CREATED {
                        ok += 1;
                    } else {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        anyhow::bail!("a transaction was refused: {status} {text}");
                    }
                }
                Ok::<_, anyhow::Error>(ok)
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await??;
        }
        let seconds = start.elapsed().as_secs_f64();
        Ok(ApiBench {
            transactions: txs.len(),
            clients,
            seconds,
            accepted,
            per_second: accepted as f64 / seconds,
            verify_per_second,
        })
    }
    .await;
    services.shutdown().await?;
    result
}
