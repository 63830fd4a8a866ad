//! Plug in your own block store: `PackStore` keeps every block in one append-only file (a pack)
//! with an in-memory index rebuilt, and verified, when the pack is opened. It implements
//! `BlockStore`, passes the conformance suite every oai store must pass, and then carries a
//! dataset and a training run like any other store.
//!
//! Run: `cargo run --release -p oai-examples --example custom_store [PACK_FILE]` (default
//! `target/oai-pack/blocks.pack`).
//!
//! This is a template, not a production store: deleted blocks stay in the file until a
//! compaction you would add, and one mutex serialises every access.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use oai::core::Cid;
use oai::data::dataset::{Record, Version};
use oai::data::store::{conformance, Block};
use oai::data::{BlockStore, Error};

/// Blocks appended to one file as `[cid length: u16][cid][data length: u32][data]`.
#[derive(Debug, Clone)]
pub struct PackStore {
    inner: Arc<Mutex<Pack>>,
}

#[derive(Debug)]
struct Pack {
    file: std::fs::File,
    /// CID -> (offset of the data, length).
    index: HashMap<Cid, (u64, u32)>,
}

impl PackStore {
    /// Open (or create) the pack at `path`, reading and verifying every block in it. A torn
    /// last entry (a crash mid-append) is cut off; anything else that does not verify is an
    /// error.
    pub fn open(path: impl AsRef<Path>) -> oai::data::Result<Self> {
        let path = path.as_ref();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut index = HashMap::new();
        let mut at = 0usize;
        while let Some((cid, data_at, len, next)) = entry(&bytes, at) {
            let cid = Cid::try_from(cid)
                .map_err(|e| Error::InvalidCid(format!("{} at byte {at}: {e}", path.display())))?;
            // Verify on open: a flipped bit in the pack is found now, not at some later read.
            Block::verified(cid, Bytes::copy_from_slice(&bytes[data_at..data_at + len]))?;
            index.insert(cid, (data_at as u64, len as u32));
            at = next;
        }
        if at < bytes.len() {
            file.set_len(at as u64)?;
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Pack { file, index })),
        })
    }
}

/// The entry at `at`: (cid bytes, data offset, data length, next entry); `None` at the end or
/// on a torn entry.
fn entry(bytes: &[u8], at: usize) -> Option<(&[u8], usize, usize, usize)> {
    let cid_len = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize;
    let cid = bytes.get(at + 2..at + 2 + cid_len)?;
    let len_at = at + 2 + cid_len;
    let len = u32::from_le_bytes(bytes.get(len_at..len_at + 4)?.try_into().ok()?) as usize;
    let data_at = len_at + 4;
    bytes.get(data_at..data_at + len)?;
    Some((cid, data_at, len, data_at + len))
}

#[async_trait::async_trait]
impl BlockStore for PackStore {
    async fn put_block(&self, block: Block) -> oai::data::Result<()> {
        let mut p = self.inner.lock().expect("pack lock");
        if p.index.contains_key(block.cid()) {
            return Ok(());
        }
        let cid = block.cid().to_bytes();
        let data = block.data();
        let mut entry = Vec::with_capacity(6 + cid.len() + data.len());
        entry.extend_from_slice(&(cid.len() as u16).to_le_bytes());
        entry.extend_from_slice(&cid);
        entry.extend_from_slice(&(data.len() as u32).to_le_bytes());
        entry.extend_from_slice(data);
        let start = p.file.seek(SeekFrom::End(0))?;
        // one write, then fsync: a crash leaves at most a torn last entry, cut off on open
        p.file.write_all(&entry)?;
        p.file.sync_data()?;
        let data_at = start + 6 + cid.len() as u64;
        p.index.insert(*block.cid(), (data_at, data.len() as u32));
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> oai::data::Result<Bytes> {
        let mut p = self.inner.lock().expect("pack lock");
        let (at, len) = *p.index.get(cid).ok_or(Error::NotFound(*cid))?;
        let mut data = vec![0u8; len as usize];
        p.file.seek(SeekFrom::Start(at))?;
        p.file.read_exact(&mut data)?;
        // every read verified: bytes that do not hash to `cid` never leave the store
        Ok(Block::verified(*cid, data)?.data().clone())
    }

    async fn has(&self, cid: &Cid) -> oai::data::Result<bool> {
        Ok(self
            .inner
            .lock()
            .expect("pack lock")
            .index
            .contains_key(cid))
    }

    async fn delete(&self, cid: &Cid) -> oai::data::Result<()> {
        self.inner.lock().expect("pack lock").index.remove(cid);
        Ok(())
    }

    async fn list(&self) -> oai::data::Result<Vec<Cid>> {
        Ok(self
            .inner
            .lock()
            .expect("pack lock")
            .index
            .keys()
            .copied()
            .collect())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/oai-pack/blocks.pack".to_string());
    if let Some(dir) = Path::new(&path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&path);

    // 1. the contract every block store must keep
    let store = PackStore::open(&path)?;
    conformance::block_store(&store).await;
    println!("PackStore passes oai_data::store::conformance::block_store");

    // 2. it carries datasets like any store; reopened, the pack is re-read and verified
    let records: Vec<Record> = (0..1_000)
        .map(|i| Record::Text(format!("line {i}")))
        .collect();
    let v = Version::from_records(&store, records).await?;
    let reopened = PackStore::open(&path)?;
    let (record, cid, proof) = Version::open(&reopened, &v.cid())
        .await?
        .prove(&reopened, 500)
        .await?;
    assert!(proof.verify_cid(&cid, &v.root()));
    println!(
        "dataset of {} records in {path} ({} bytes); reopened, record 500 is {record:?}, proven in root {}",
        v.len(),
        std::fs::metadata(&path)?.len(),
        v.root()
    );

    // 3. a flipped byte is caught when the pack is opened
    let mut bytes = std::fs::read(&path)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes)?;
    match PackStore::open(&path) {
        Err(e) => println!("after flipping the pack's last byte: {e}"),
        Ok(_) => anyhow::bail!("a corrupted pack opened"),
    }
    Ok(())
}
