//! The chain file of `chain export` / `chain import`: magic, format version, genesis hash,
//! block count, then length-prefixed blocks. Writing goes through the one atomic writer;
//! reading refuses anything malformed before a store is touched.

use crate::core::block::Block;
use crate::core::hash::BlockHash;
use crate::core::merkle::merkle_root;
use crate::core::params::Network;
use std::io::Write;
use std::path::Path;

const CHAIN_MAGIC: &[u8; 8] = b"CTCHAIN\0";
const CHAIN_FILE_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 32 + 8;

/// Writes a chain file of a known number of blocks, through the one atomic writer
/// ([`crate::fsutil::AtomicFile`]): nothing appears at the target until [`ChainWriter::finish`].
pub struct ChainWriter {
    file: std::path::PathBuf,
    out: crate::fsutil::AtomicFile,
}

impl ChainWriter {
    pub fn create(file: &Path, genesis: &BlockHash, count: u64) -> Result<ChainWriter, String> {
        let mut out = crate::fsutil::AtomicFile::create(file)
            .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
        let mut head = Vec::with_capacity(HEADER);
        head.extend_from_slice(CHAIN_MAGIC);
        head.extend_from_slice(&CHAIN_FILE_VERSION.to_le_bytes());
        head.extend_from_slice(&genesis.0);
        head.extend_from_slice(&count.to_le_bytes());
        out.write_all(&head)
            .map_err(|e| format!("writing {}: {e}", file.display()))?;
        Ok(ChainWriter {
            file: file.to_path_buf(),
            out,
        })
    }

    pub fn push(&mut self, b: &Block) -> Result<(), String> {
        let bytes = b.encode();
        let r = self
            .out
            .write_all(&(bytes.len() as u32).to_le_bytes())
            .and_then(|_| self.out.write_all(&bytes));
        r.map_err(|e| format!("writing {}: {e}", self.file.display()))
    }

    /// Flush, fsync and rename into place.
    pub fn finish(self) -> Result<(), String> {
        let target = self.file;
        self.out
            .commit()
            .map_err(|e| format!("cannot write {}: {e}", target.display()))
    }
}

/// Decode and check every block of a chain file's bytes (`name` is used in messages).
pub fn parse_chain(bytes: &[u8], name: &str, network: Network) -> Result<Vec<Block>, String> {
    let bad = |why: String| format!("{name} is not a valid chain file: {why}");
    let params = network.params();
    if bytes.len() < HEADER || &bytes[..8] != CHAIN_MAGIC {
        return Err(bad("bad magic".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| bad("short".into()))?);
    if version != CHAIN_FILE_VERSION {
        return Err(bad(format!("unsupported version {version}")));
    }
    if bytes[12..44] != params.genesis_hash.0 {
        return Err(format!(
            "{name} holds a chain of another network (this node runs {network})"
        ));
    }
    let count = u64::from_le_bytes(bytes[44..52].try_into().map_err(|_| bad("short".into()))?);
    let mut pos = HEADER;
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
