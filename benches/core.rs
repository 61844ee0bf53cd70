//! Benchmarks of the hot paths: nonce scanning, header hashing, block encoding, block validation
//! bulk import and signature verification (serial, batch, multi-core). Run with
//! `cargo bench --bench core`.

mod common;

use chain_tui::core::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::{Block, BlockHeader};
use chain_tui::core::encode::{decode_canonical, encode};
use chain_tui::core::hash::{BlockHash, MerkleRoot, Txid};
use chain_tui::core::merkle::merkle_root;
use chain_tui::core::params::{Network, Params};
use chain_tui::core::pow::{Target, U256};
use chain_tui::core::rules::{
    BatchVerifier, Coin, SerialVerifier, SigCheck, SigVerifier, check_block_sanity,
    connect_block_txs, tx_sig_checks,
};
use chain_tui::core::tx::{OutPoint, Transaction, TxOut};
use chain_tui::node::chain::Chain;
use chain_tui::node::miner::kernel::{HeaderJob, Kernel, Sha2Kernel};
use chain_tui::node::verify::ParallelVerifier;
use chain_tui::storage::Store;
use common::bench_header;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

const SCAN_NONCES: u64 = 4096;
const ENCODE_TXS: usize = 100;
const VALIDATE_TXS: usize = 200;
const IMPORT_BLOCKS: usize = 1000;
const VERIFY_TXS: usize = 2000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn address(k: &SigningKey) -> Address {
    Address::from_pubkey(&k.verifying_key().to_bytes())
}

fn pay(to: Address, amount: u64) -> TxOut {
    TxOut {
        amount: Amount::from_units(amount),
        address: to,
    }
}

/// A signed transaction spending `prevout` (owned by `k`) to `outputs`.
fn spend(params: &Params, prevout: OutPoint, k: &SigningKey, outputs: Vec<TxOut>) -> Transaction {
    Transaction::signed(&[(prevout, k)], outputs, &params.genesis_hash)
}

fn coinbase(params: &Params, height: u64, fees: Amount, to: Address) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: params.subsidy(height).checked_add(fees).expect("amount"),
            address: to,
        }],
        lock_height: height,
        memo: vec![],
    }
}

/// Recompute the merkle root and find a nonce meeting the block's target.
fn solve(b: &mut Block, params: &Params) {
    b.header.merkle_root = merkle_root(&b.txids());
    let target = b.header.bits.to_target().unwrap_or(params.pow_limit);
    b.header.nonce = 0;
    while !target.is_met_by(&b.hash().0) {
        b.header.nonce += 1;
    }
}

/// A solved regtest block at `height` on `prev` with a coinbase and `txs`.
fn block_with(
    params: &Params,
    prev: BlockHash,
    height: u64,
    time: u64,
    txs: Vec<Transaction>,
    fees: Amount,
) -> Block {
    let mut all = vec![coinbase(params, height, fees, address(&key(0xcb)))];
    all.extend(txs);
    let mut b = Block {
        header: BlockHeader {
            version: 1,
            prev,
            merkle_root: MerkleRoot::ZERO,
            time,
            bits: params.pow_limit.to_compact(),
            nonce: 0,
        },
        txs: all,
    };
    solve(&mut b, params);
    b
}

/// Fake funding coins, one per transaction, each owned by one of a few keys.
fn funding(n: usize, keys: &[SigningKey]) -> Vec<(OutPoint, Coin, usize)> {
    (0..n)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..8].copy_from_slice(&(i as u64).to_le_bytes());
            t[31] = 0xf0;
            let ki = i % keys.len();
            let o = OutPoint {
                txid: Txid(t),
                vout: 0,
            };
            let c = Coin {
                output: pay(address(&keys[ki]), 1_000_000),
                height: 0,
                coinbase: false,
            };
            (o, c, ki)
        })
        .collect()
}

fn mining(c: &mut Criterion) {
    let job = HeaderJob::new(&bench_header(), &Target(U256::ZERO));
    let mut g = c.benchmark_group("mining");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(SCAN_NONCES));
    let mut start = 0u64;
    g.bench_function("sha2_scan_4096", |b| {
        b.iter(|| {
            let r = Sha2Kernel.scan(black_box(&job), start, SCAN_NONCES);
            start = start.wrapping_add(SCAN_NONCES);
            assert!(r.is_none());
            r
        })
    });
    g.finish();
}

fn header_hash(c: &mut Criterion) {
    let mut h = bench_header();
    let mut g = c.benchmark_group("header_hash");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    g.bench_function("sha256d_88", |b| {
        b.iter(|| {
            h.nonce = h.nonce.wrapping_add(1);
            black_box(&h).hash()
        })
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let params = Network::Regtest.params();
    let keys: Vec<SigningKey> = (1..=8).map(key).collect();
    let to = address(&key(0xaa));
    let txs: Vec<Transaction> = funding(ENCODE_TXS, &keys)
        .into_iter()
        .map(|(o, _, ki)| {
            spend(
                params,
                o,
                &keys[ki],
                vec![pay(to, 600_000), pay(to, 399_000)],
            )
        })
        .collect();
    let fees = Amount::from_units(1000 * ENCODE_TXS as u64);
    let block = block_with(params, params.genesis_hash, 1, 2, txs, fees);
    let bytes = encode(&block);
    let mut g = c.benchmark_group("encoding");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode_block_100tx", |b| {
        b.iter(|| encode(black_box(&block)))
    });
    g.bench_function("decode_canonical_block_100tx", |b| {
        b.iter(|| {
            decode_canonical::<Block>(black_box(&bytes), params.max_block_size).expect("decodes")
        })
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let params = Network::Regtest.params();
    let keys: Vec<SigningKey> = (1..=16).map(key).collect();
    let to = address(&key(0xaa));
    let funds = funding(VALIDATE_TXS, &keys);
    let view: HashMap<OutPoint, Coin> = funds.iter().map(|(o, c, _)| (*o, *c)).collect();
    let txs: Vec<Transaction> = funds
        .iter()
        .map(|(o, _, ki)| spend(params, *o, &keys[*ki], vec![pay(to, 999_000)]))
        .collect();
    let fees = Amount::from_units(1000 * VALIDATE_TXS as u64);
    let block = block_with(params, params.genesis_hash, 1, 2, txs, fees);
    let size = encode(&block).len();
    // Sanity: the block is valid against the view.
    let txids = check_block_sanity(&block, size, params).expect("sane block");
    connect_block_txs(&block, &txids, 1, &view, params, &SerialVerifier).expect("valid block");

    let mut g = c.benchmark_group("validation");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(VALIDATE_TXS as u64));
    g.bench_function("sanity_and_connect_200sig", |b| {
        b.iter(|| {
            let block = black_box(&block);
            let txids = check_block_sanity(block, size, params).expect("sane");
            connect_block_txs(block, &txids, 1, &view, params, &SerialVerifier).expect("valid")
        })
    });
    g.finish();
}

fn import(c: &mut Criterion) {
    let params = Network::Regtest.params();
    let mut blocks = Vec::with_capacity(IMPORT_BLOCKS);
    let mut prev = params.genesis_hash;
    let mut time = params.genesis.header.time;
    for height in 1..=IMPORT_BLOCKS as u64 {
        time += 1;
        let b = block_with(params, prev, height, time, vec![], Amount::ZERO);
        prev = b.hash();
        blocks.push(b);
    }
    let mut g = c.benchmark_group("import");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(IMPORT_BLOCKS as u64));
    g.bench_function("process_batch_1000_empty", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store =
                    Store::open(&dir.path().join("chain.redb"), Network::Regtest).expect("store");
                let chain = Chain::new(store, Box::new(SerialVerifier));
                (dir, chain, blocks.clone())
            },
            |(dir, mut chain, blocks)| {
                let change = chain.process_batch(blocks).expect("import");
                assert_eq!(change.connected.len(), IMPORT_BLOCKS);
                // Dropped after the measurement.
                (dir, chain, change)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The signatures of a 2,000-transaction block (one key per transaction), each verifier.
fn signatures(c: &mut Criterion) {
    let params = Network::Regtest.params();
    let (block, view) = chain_tui::bench::signed_block(VERIFY_TXS);
    let checks: Vec<SigCheck> = block
        .txs
        .iter()
        .flat_map(|t| tx_sig_checks(t, params))
        .collect();
    let all_cores = ParallelVerifier::all_cores();
    let mut g = c.benchmark_group("signatures");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(checks.len() as u64));
    let verifiers: [(&str, &dyn SigVerifier); 3] = [
        ("serial_2000", &SerialVerifier),
        ("batch_1thread_2000", &BatchVerifier),
        ("batch_all_cores_2000", &all_cores),
    ];
    for (name, v) in verifiers {
        g.bench_function(name, |b| {
            b.iter(|| v.verify_all(black_box(&checks)).expect("valid"))
        });
    }
    let size = encode(&block).len();
    g.bench_function("connect_block_2000tx_all_cores", |b| {
        b.iter(|| {
            let txids = check_block_sanity(black_box(&block), size, params).expect("sane");
            connect_block_txs(&block, &txids, 1, &view, params, &all_cores).expect("valid")
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    mining,
    header_hash,
    encoding,
    validation,
    import,
    signatures
);
criterion_main!(benches);
