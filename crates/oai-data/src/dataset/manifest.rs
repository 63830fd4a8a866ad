use oai_core::{merkle::MerkleProof, Cid, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Chunking;
use crate::{Error, Result};

/// Format version written into every manifest.
pub const FORMAT: u64 = 1;

/// A manifest lists at most this many pages; more are grouped into index pages, level by
/// level, so manifests stay small whatever the dataset size.
pub const MAX_TOP_PAGES: usize = 64;

/// Deepest index tree a manifest may declare (16^16 pages is beyond any real dataset).
pub const MAX_DEPTH: u64 = 16;

/// A chunk as listed in a page: its block, the Merkle root over its record digests, and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    // DAG-CBOR canonical key order
    /// The chunk block (dag-cbor list of records).
    pub cid: Cid,
    /// Merkle root over the digests of the chunk's records.
    pub root: Digest,
    /// Encoded bytes of the chunk's records.
    pub bytes: u64,
    /// Number of records.
    pub records: u64,
}

/// A page: a block listing consecutive chunks (depth 0) or pages (index pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    // DAG-CBOR canonical key order
    /// The page block (dag-cbor list of [`ChunkRef`], or of [`PageRef`] for index pages).
    pub cid: Cid,
    /// Number of chunks under the page.
    pub chunks: u64,
}

/// One dataset version, stored as a dag-cbor block; its CID names the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    // DAG-CBOR canonical key order: by length, then bytes
    /// The version root: Merkle root over the chunks' leaves (see [`chunk_leaf`]); what a chain
    /// contract and a training log cite.
    pub root: Digest,
    /// Total encoded record bytes.
    pub bytes: u64,
    /// Levels of index pages above the chunk pages: 0 when `pages` lists pages of chunk
    /// references; `d` when it lists pages of [`PageRef`]s of depth `d - 1`.
    pub depth: u64,
    /// The top-level pages, in record order (at most [`MAX_TOP_PAGES`] unless `depth` is 0).
    pub pages: Vec<PageRef>,
    /// Manifest format version ([`FORMAT`]).
    pub format: u64,
    /// The version this one was derived from.
    pub parent: Option<Cid>,
    /// Free-form schema description (e.g. `"labeled f32[64] -> 10 classes"`).
    pub schema: String,
    /// Number of records.
    pub records: u64,
    /// How records were grouped into chunks.
    pub chunking: Chunking,
    /// Free-form metadata, sorted by key.
    pub metadata: BTreeMap<String, String>,
}

impl Manifest {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        serde_ipld_dagcbor::to_vec(self).expect("manifests always encode")
    }

    /// Decode and sanity-check a manifest block.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let m: Manifest = crate::cbor::decode("manifest", None, bytes)?;
        if m.format != FORMAT {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("format {} (this oai reads format {FORMAT})", m.format),
            });
        }
        if m.depth > MAX_DEPTH {
            return Err(Error::Malformed {
                what: "manifest",
                reason: format!("depth {} exceeds {MAX_DEPTH}", m.depth),
            });
        }
        m.chunking.validate().map_err(|e| Error::Malformed {
            what: "manifest",
            reason: e.to_string(),
        })?;
        Ok(m)
    }
}

/// The leaf of the version tree for a chunk whose first record has global index `first`:
/// SHA-256(`oai-chunk` || records root || first || count). Binding the index range makes a
/// record proof prove the record's global position, not just its membership.
pub fn chunk_leaf(records_root: &Digest, first: u64, count: u64) -> Digest {
    Digest::of_parts(&[
        b"oai-chunk",
        records_root.as_bytes(),
        &first.to_be_bytes(),
        &count.to_be_bytes(),
    ])
}

/// Proof that a record sits at a global index of a dataset version. About
/// 2 * log2(records) hashes; checked against the version root alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordProof {
    /// Global record index.
    pub index: u64,
    /// Index of the chunk's first record.
    pub first: u64,
    /// Merkle root over the chunk's record digests.
    pub chunk_root: Digest,
    /// Path from the record to the chunk root (its `leaf_count` is the chunk's record count).
    pub in_chunk: MerkleProof,
    /// Path from the chunk leaf to the version root.
    pub in_version: MerkleProof,
}

impl RecordProof {
    /// Whether the record with digest `record` (SHA-256 of its encoding, the digest in its CID)
    /// is at `self.index` under `version_root`.
    pub fn verify(&self, record: &Digest, version_root: &Digest) -> bool {
        let in_chunk_ok = self.in_chunk.verify(record, &self.chunk_root);
        let index_ok = self.first.checked_add(self.in_chunk.index) == Some(self.index);
        let leaf = chunk_leaf(&self.chunk_root, self.first, self.in_chunk.leaf_count);
        in_chunk_ok && index_ok && self.in_version.verify(&leaf, version_root)
    }

    /// Like [`RecordProof::verify`] for a record CID; `false` if the CID is not sha2-256.
    pub fn verify_cid(&self, record: &Cid, version_root: &Digest) -> bool {
        oai_core::ids::digest_of(record).is_ok_and(|d| self.verify(&d, version_root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipld_core::ipld::Ipld;
    use oai_core::ids;

    /// Our structs declare fields in DAG-CBOR's canonical key order; re-encoding through a
    /// generic IPLD value (which sorts keys) must give the same bytes.
    #[test]
    fn manifest_encoding_is_canonical_dag_cbor() {
        let m = Manifest {
            root: Digest::of(b"r"),
            bytes: 10,
            depth: 0,
            pages: vec![PageRef {
                cid: ids::cid_v1(ids::DAG_CBOR, b"p"),
                chunks: 1,
            }],
            format: FORMAT,
            parent: Some(ids::cid_v1(ids::DAG_CBOR, b"q")),
            schema: "text".into(),
            records: 3,
            chunking: Chunking::default(),
            metadata: [
                ("b".to_string(), "1".to_string()),
                ("aa".to_string(), "2".to_string()),
            ]
            .into_iter()
            .collect(),
        };
        let bytes = m.encode();
        let ipld: Ipld = serde_ipld_dagcbor::from_slice(&bytes).unwrap();
        assert_eq!(serde_ipld_dagcbor::to_vec(&ipld).unwrap(), bytes);
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        let c = ChunkRef {
            cid: ids::cid_v1(ids::DAG_CBOR, b"c"),
            root: Digest::of(b"x"),
            bytes: 5,
            records: 1,
        };
        let cb = serde_ipld_dagcbor::to_vec(&c).unwrap();
        let ipld: Ipld = serde_ipld_dagcbor::from_slice(&cb).unwrap();
        assert_eq!(serde_ipld_dagcbor::to_vec(&ipld).unwrap(), cb);
    }
}
