//! [`Version`]: an opened dataset version, its records read on demand and proven against its
//! root.

use oai_core::{ids, merkle::MerkleTree, Cid, Digest};

use super::manifest::{chunk_leaf, ChunkRef, Manifest, PageRef, RecordProof};
use super::record::Encoded;
use super::{Builder, Record};
use crate::{cbor, BlockStore, Error, Result};

/// An opened dataset version: its manifest and chunk list (records load on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    cid: Cid,
    manifest: Manifest,
    pub(super) chunks: Vec<ChunkRef>,
    /// Global index of each chunk's first record.
    pub(super) starts: Vec<u64>,
    /// The version tree over chunk leaves, kept to hand out proofs without rebuilding it.
    tree: MerkleTree,
}

impl Version {
    /// Build a version from `records` with default settings.
    pub async fn from_records<S: BlockStore + ?Sized>(
        store: &S,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self> {
        let mut b = Builder::new(store);
        for r in records {
            b.push(r).await?;
        }
        b.finish().await
    }

    /// Open the version whose manifest is `cid`, checking its pages against its root.
    pub async fn open<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Self> {
        if cid.codec() != ids::DAG_CBOR {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("{cid} is not a dag-cbor block"),
            });
        }
        let manifest = Manifest::decode(&store.get(cid).await?)?;
        Self::from_manifest(store, *cid, manifest).await
    }

    pub(super) async fn from_manifest<S: BlockStore + ?Sized>(
        store: &S,
        cid: Cid,
        manifest: Manifest,
    ) -> Result<Self> {
        let mut level = manifest.pages.clone();
        for _ in 0..manifest.depth {
            let mut next = Vec::new();
            for p in &level {
                let kids: Vec<PageRef> = load_page(store, p).await?;
                let under: u64 = kids.iter().map(|k| k.chunks).sum();
                check_page_count(p, under)?;
                next.extend(kids);
            }
            level = next;
        }
        let mut chunks = Vec::new();
        for p in &level {
            let page: Vec<ChunkRef> = load_page(store, p).await?;
            check_page_count(p, page.len() as u64)?;
            chunks.extend(page);
        }
        let mut starts = Vec::with_capacity(chunks.len());
        let (mut n, mut bytes) = (0u64, 0u64);
        let mut leaves = Vec::with_capacity(chunks.len());
        for c in &chunks {
            starts.push(n);
            leaves.push(chunk_leaf(&c.root, n, c.records));
            n += c.records;
            bytes += c.bytes;
        }
        let tree = MerkleTree::new(&leaves);
        if n != manifest.records || bytes != manifest.bytes || tree.root() != manifest.root {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("{cid}: record count, byte count or root disagree with its pages"),
            });
        }
        Ok(Self {
            cid,
            manifest,
            chunks,
            starts,
            tree,
        })
    }

    /// CID of the manifest: the version's identity.
    pub fn cid(&self) -> Cid {
        self.cid
    }
    /// The version root (Merkle root that record proofs verify against).
    pub fn root(&self) -> Digest {
        self.manifest.root
    }
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Number of records.
    pub fn len(&self) -> u64 {
        self.manifest.records
    }
    /// Whether the version has no records.
    pub fn is_empty(&self) -> bool {
        self.manifest.records == 0
    }
    /// The chunks, in record order.
    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    fn locate(&self, index: u64) -> Result<usize> {
        if index >= self.len() {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(self.starts.partition_point(|&s| s <= index) - 1)
    }

    pub(crate) async fn load_chunk<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        i: usize,
    ) -> Result<Vec<Encoded>> {
        Ok(self.load_chunk_tree(store, i).await?.0)
    }

    /// [`Version::load_chunk`], with the Merkle tree over the chunk's record digests that
    /// checked it (what record proofs are cut from).
    async fn load_chunk_tree<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        i: usize,
    ) -> Result<(Vec<Encoded>, MerkleTree)> {
        let r = &self.chunks[i];
        let records: Vec<Record> = cbor::decode("chunk", Some(&r.cid), &store.get(&r.cid).await?)?;
        let enc = records
            .into_iter()
            .map(Encoded::new)
            .collect::<Result<Vec<_>>>()?;
        let digests: Vec<Digest> = enc.iter().map(|e| e.digest).collect();
        let tree = MerkleTree::new(&digests);
        if enc.len() as u64 != r.records || tree.root() != r.root {
            return Err(Error::Verification(format!(
                "chunk {} does not match the root and count its page lists",
                r.cid
            )));
        }
        Ok((enc, tree))
    }

    /// The record at `index`.
    pub async fn record<S: BlockStore + ?Sized>(&self, store: &S, index: u64) -> Result<Record> {
        let c = self.locate(index)?;
        let mut recs = self.load_chunk(store, c).await?;
        Ok(recs.swap_remove((index - self.starts[c]) as usize).record)
    }

    /// All records, in order (loads the whole dataset).
    pub async fn records<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for i in 0..self.chunks.len() {
            out.extend(
                self.load_chunk(store, i)
                    .await?
                    .into_iter()
                    .map(|e| e.record),
            );
        }
        Ok(out)
    }

    /// Fetch every chunk from `store` and check it against its CID, record count and Merkle
    /// root, one chunk at a time (memory stays bounded by one chunk): the whole dataset is
    /// there and is what the root commits. A node runs this before it takes a job on the
    /// dataset, so that a requester cannot withhold a chunk to make the job fail on the node.
    pub async fn check_complete<S: BlockStore + ?Sized>(&self, store: &S) -> Result<()> {
        for i in 0..self.chunks.len() {
            self.load_chunk(store, i).await?;
        }
        Ok(())
    }

    /// The CIDs of all records, in order.
    pub async fn record_cids<S: BlockStore + ?Sized>(&self, store: &S) -> Result<Vec<Cid>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for i in 0..self.chunks.len() {
            out.extend(self.load_chunk(store, i).await?.iter().map(Encoded::cid));
        }
        Ok(out)
    }

    /// The record at `index`, its CID and its inclusion proof against [`Version::root`].
    pub async fn prove<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        index: u64,
    ) -> Result<(Record, Cid, RecordProof)> {
        let mut one = self.prove_many(store, &[index]).await?;
        Ok(one.pop().expect("one index, one proof"))
    }

    /// [`Version::prove`] of each of `indices`, in their order: each chunk they fall in is read,
    /// checked and hashed once, however many of them it holds (a batch of records drawn from
    /// a few chunks reads those chunks once, not once a record).
    pub async fn prove_many<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        indices: &[u64],
    ) -> Result<Vec<(Record, Cid, RecordProof)>> {
        let mut chunks: std::collections::BTreeMap<usize, (Vec<Encoded>, MerkleTree)> =
            std::collections::BTreeMap::new();
        let mut out = Vec::with_capacity(indices.len());
        for &index in indices {
            let c = self.locate(index)?;
            if let std::collections::btree_map::Entry::Vacant(slot) = chunks.entry(c) {
                slot.insert(self.load_chunk_tree(store, c).await?);
            }
            let (recs, tree) = &chunks[&c];
            let offset = index - self.starts[c];
            let e = &recs[offset as usize];
            out.push((
                e.record.clone(),
                e.cid(),
                RecordProof {
                    index,
                    first: self.starts[c],
                    chunk_root: self.chunks[c].root,
                    in_chunk: tree.proof(offset).expect("offset in chunk"),
                    in_version: self.tree.proof(c as u64).expect("chunk in version"),
                },
            ));
        }
        Ok(out)
    }
}

async fn load_page<S: BlockStore + ?Sized, T: serde::de::DeserializeOwned>(
    store: &S,
    p: &PageRef,
) -> Result<Vec<T>> {
    cbor::decode("page", Some(&p.cid), &store.get(&p.cid).await?)
}

fn check_page_count(p: &PageRef, found: u64) -> Result<()> {
    if found != p.chunks {
        return Err(Error::Malformed {
            what: "page",
            reason: format!(
                "{} holds {found} chunks, its parent says {}",
                p.cid, p.chunks
            ),
        });
    }
    Ok(())
}
