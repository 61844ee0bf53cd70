//! The chain file of `chain export` / `chain import`: magic, format version, genesis hash,
//! block count, then length-prefixed blocks. Writing goes through the one atomic writer;
//! reading (from bytes or a stream, block by block) refuses anything malformed before a store
//! is touched.

use crate::core::block::Block;
use crate::core::hash::BlockHash;
use crate::core::merkle::merkle_root;
use crate::core::params::Network;
use std::io::{Read, Write};
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
    read_chain(bytes, name, network)
}

/// Decode and check every block of a chain file read from `r` (`name` is used in messages),
/// block by block: only the decoded blocks are held, never the whole file, and a bad block
/// stops the reading there.
pub fn read_chain(mut r: impl Read, name: &str, network: Network) -> Result<Vec<Block>, String> {
    let bad = |why: String| format!("{name} is not a valid chain file: {why}");
    let io = |e: std::io::Error| format!("cannot read {name}: {e}");
    let params = network.params();
    let mut head = [0u8; HEADER];
    if read_full(&mut r, &mut head).map_err(io)? < HEADER || &head[..8] != CHAIN_MAGIC {
        return Err(bad("bad magic".into()));
    }
    let version = u32::from_le_bytes(head[8..12].try_into().map_err(|_| bad("short".into()))?);
    if version != CHAIN_FILE_VERSION {
        return Err(bad(format!("unsupported version {version}")));
    }
    if head[12..44] != params.genesis_hash.0 {
        return Err(format!(
            "{name} holds a chain of another network (this node runs {network})"
        ));
    }
    let count = u64::from_le_bytes(head[44..52].try_into().map_err(|_| bad("short".into()))?);
    let mut pos = HEADER;
    let mut blocks = Vec::new();
    let mut data = Vec::new();
    // A chain file is one chain from genesis, each body matching its header.
    let mut prev = params.genesis_hash;
    loop {
        let mut len_bytes = [0u8; 4];
        match read_full(&mut r, &mut len_bytes).map_err(io)? {
            0 => break,
            4 => {}
            _ => return Err(bad(format!("truncated at byte {pos}"))),
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        pos += 4;
        let n = blocks.len() + 1;
        if len > params.max_block_size {
            return Err(bad(format!("block {n} is {len} bytes, over the limit")));
        }
        if blocks.len() as u64 >= count {
            return Err(bad(format!("header says {count} blocks, file holds more")));
        }
        data.resize(len, 0);
        if read_full(&mut r, &mut data).map_err(io)? < len {
            return Err(bad(format!("truncated in block {n}")));
        }
        let block = Block::decode(&data, params.max_block_size)
            .map_err(|e| bad(format!("block {n}: {e}")))?;
        if block.header.prev != prev {
            return Err(bad(format!(
                "block {n} does not build on the block before it"
            )));
        }
        if merkle_root(&block.txids()) != block.header.merkle_root {
            return Err(bad(format!(
                "block {n}'s transactions do not match its header"
            )));
        }
        prev = block.hash();
        blocks.push(block);
        pos += len;
    }
    if blocks.len() as u64 != count {
        return Err(bad(format!(
            "header says {count} blocks, file holds {}",
            blocks.len()
        )));
    }
    Ok(blocks)
}

/// Fill `buf` from `r` unless it ends first; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Read and decode every block of the chain file `file`, refusing anything malformed before a
/// store is touched.
pub fn read_chain_file(
    file: &std::path::Path,
    network: Network,
) -> Result<Vec<Block>, super::NodeError> {
    let bytes = std::fs::read(file)
        .map_err(|e| super::NodeError::Import(format!("cannot read {}: {e}", file.display())))?;
    parse_chain(&bytes, &file.display().to_string(), network).map_err(super::NodeError::Import)
}
