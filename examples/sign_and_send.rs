//! A signer that holds its key outside the node: it asks a running node to build a payment
//! (`POST /transactions/build`), checks the node's sighash against the bytes it was given, signs
//! it, and submits the signed bytes (`POST /transactions/new`). It uses only what the README's
//! signing recipe documents: the transaction's byte layout and the sighash. Nothing of the node's
//! code is used to read or sign the transaction.
//!
//! ```sh
//! cargo run --example sign_and_send -- DATA_DIR SECRET_KEY_HEX ADDRESS AMOUNT [FEE_RATE]
//! ```
//! DATA_DIR is the running node's data dir (its `node.json` names the API and its token);
//! SECRET_KEY_HEX the 32-byte ed25519 secret key that owns the coins; AMOUNT in base units.
//! (A real signer would not take its key on the command line, where `ps` shows it.)

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What every input signs is SHA-256d of this tag, the genesis hash and the unsigned bytes.
const TAG: &[u8] = b"chain-tui/sighash/v1";

/// A LEB128 varint at `at`: its value and where the next field starts.
fn varint(bytes: &[u8], at: usize) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().skip(at).take(10) {
        value |= u64::from(b & 0x7f) << (7 * (i - at));
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(format!("no varint at byte {at}"))
}

/// Where each input's 64-byte signature sits in a transaction's bytes, per the recipe:
/// version, input count, then per input txid (32), vout (varint), public key (32), signature
/// (64).
fn signature_offsets(tx: &[u8]) -> Result<Vec<usize>, String> {
    let (_version, at) = varint(tx, 0)?;
    let (count, mut at) = varint(tx, at)?;
    let mut offsets = Vec::new();
    for _ in 0..count {
        let (_vout, after) = varint(tx, at + 32)?;
        let sig = after + 32;
        if sig + 64 > tx.len() {
            return Err("the transaction ends inside an input".into());
        }
        offsets.push(sig);
        at = sig + 64;
    }
    Ok(offsets)
}

/// The transaction's bytes without its signatures: what the sighash covers after the tag and
/// the genesis hash.
fn without_signatures(tx: &[u8], offsets: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tx.len());
    let mut from = 0;
    for &o in offsets {
        out.extend_from_slice(&tx[from..o]);
        from = o + 64;
    }
    out.extend_from_slice(&tx[from..]);
    out
}

fn sha256d(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Sha256::digest(h.finalize()).into()
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what}: 32 bytes of hex"))
}

/// A node's API, as its `node.json` names it.
pub struct Node {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Node {
    pub fn from_data_dir(dir: &std::path::Path) -> Result<Node, String> {
        let path = dir.join("node.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (is the node running?)", path.display()))?;
        let file: Value = serde_json::from_str(&text).map_err(|e| format!("node.json: {e}"))?;
        let (Some(api), Some(token)) = (file["api"].as_str(), file["token"].as_str()) else {
            return Err("node.json names no api and token".into());
        };
        Ok(Node {
            base: format!("http://{api}"),
            token: token.to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| format!("{path}: {e}"))?;
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!("{path}: {status}: {}", v["error"]))
        }
    }
}

/// Pay `amount` base units to `to` from the coins of `key`: build, check, sign, submit. The
/// txid, which is also checked: SHA-256d of the signed bytes.
pub async fn sign_and_send(
    node: &Node,
    key: &SigningKey,
    to: &str,
    amount: u64,
    fee_rate: u64,
) -> Result<String, String> {
    let built = node
        .post(
            "/transactions/build",
            json!({
                "pubkey": hex::encode(key.verifying_key().to_bytes()),
                "outputs": [{ "address": to, "amount": amount }],
                "fee_rate": fee_rate,
            }),
        )
        .await?;
    let mut tx = hex::decode(built["hex"].as_str().unwrap_or_default())
        .map_err(|e| format!("the node's hex: {e}"))?;
    let genesis = hex32(built["genesis"].as_str().unwrap_or_default(), "genesis")?;
    // Do not sign what the node says the sighash is: compute it from the bytes.
    let offsets = signature_offsets(&tx)?;
    let sighash = sha256d(&[TAG, &genesis, &without_signatures(&tx, &offsets)]);
    if hex::encode(sighash) != built["sighash"].as_str().unwrap_or_default() {
        return Err("the node's sighash is not the one its bytes give: not signing".into());
    }
    let signature = key.sign(&sighash).to_bytes();
    for &o in &offsets {
        tx[o..o + 64].copy_from_slice(&signature);
    }
    let txid = hex::encode(sha256d(&[&tx]));
    let sent = node
        .post("/transactions/new", json!({ "hex": hex::encode(&tx) }))
        .await?;
    if sent["txid"].as_str() != Some(txid.as_str()) {
        return Err(format!(
            "the node says txid {}, the bytes {txid}",
            sent["txid"]
        ));
    }
    Ok(txid)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, secret, to, amount, rest @ ..] = args.as_slice() else {
        eprintln!("usage: sign_and_send DATA_DIR SECRET_KEY_HEX ADDRESS AMOUNT [FEE_RATE]");
        std::process::exit(2);
    };
    let run = async {
        let node = Node::from_data_dir(std::path::Path::new(dir))?;
        let key = SigningKey::from_bytes(&hex32(secret, "secret key")?);
        let amount: u64 = amount.parse().map_err(|e| format!("amount: {e}"))?;
        let rate: u64 = match rest.first() {
            Some(r) => r.parse().map_err(|e| format!("fee rate: {e}"))?,
            None => 1,
        };
        sign_and_send(&node, &key, to, amount, rate).await
    };
    match run.await {
        Ok(txid) => println!("{txid}"),
        Err(e) => {
            eprintln!("sign_and_send: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_tui::api::ApiLimits;
    use chain_tui::core::Address;
    use chain_tui::core::params::Network;
    use chain_tui::node::NodeConfig;
    use chain_tui::runtime::{ApiSetup, Services, ServicesConfig};

    /// Against a real node on 127.0.0.1: coins mined to a key the node does not hold are paid
    /// out by this signer, and the payment is in the mempool with the txid the bytes give.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signs_and_sends_through_a_running_node() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServicesConfig {
            node: NodeConfig::new(dir.path(), Network::Regtest),
            p2p: None,
            api: Some(ApiSetup {
                addr: "127.0.0.1:0".parse().unwrap(),
                limits: ApiLimits::default(),
                wallet: Err("no wallet in this test".into()),
                mine_threads: 1,
            }),
        };
        let services = Services::start(config).await.unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let own = Address::from_pubkey(&key.verifying_key().to_bytes());
        services.node.mine_blocks(101, 1, own).await.unwrap();
        let node = Node::from_data_dir(dir.path()).unwrap();
        let to = Address::from_hash([9; 20]).encode(Network::Regtest);
        let txid = sign_and_send(&node, &key, &to, 123_456_789, 2)
            .await
            .unwrap();
        let entries = services.node.mempool_entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].txid.to_string(), txid);
        assert!(entries[0].fee_rate.per_byte_units() >= 2);
        // Bytes that end inside an input are refused before anything is signed.
        let mut tx = hex::decode("0101").unwrap();
        tx.extend([0u8; 32]);
        assert!(
            signature_offsets(&tx).is_err(),
            "a cut-off input is refused"
        );
        services.shutdown().await.unwrap();
    }
}
