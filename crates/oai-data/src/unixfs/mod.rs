//! Files as IPFS stores them (UnixFS, balanced DAG, sha2-256), byte-identical to kubo and
//! js-ipfs for each [`Profile`].
//!
//! [`import`] reads any `AsyncRead` in one pass and holds at most one chunk plus one pending link
//! list per tree level in memory, so files larger than memory import fine. [`cat`] streams a
//! file back, verifying every block.

mod import;
pub mod pb;
mod read;

pub use import::{import, import_bytes, Imported};
pub use read::{cat, declared_size, read_to_vec, read_to_vec_within};

/// How files are cut and linked. The CID of a file depends on all four parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// CIDv1, raw leaves, 256 KiB chunks, 174 links per node: `ipfs add --cid-version=1`.
    /// The oai default.
    #[default]
    KuboCidV1,
    /// CIDv0, dag-pb leaves, 256 KiB chunks, 174 links: kubo's legacy default
    /// (`unixfs-v0-2015`), the `Qm...` CIDs.
    UnixfsV0_2015,
    /// CIDv1, raw leaves, 1 MiB chunks, 1024 links: IPIP-499 `unixfs-v1-2025`.
    UnixfsV1_2025,
}

impl Profile {
    /// Bytes per leaf.
    pub fn chunk_size(self) -> usize {
        match self {
            Profile::KuboCidV1 | Profile::UnixfsV0_2015 => 256 * 1024,
            Profile::UnixfsV1_2025 => 1024 * 1024,
        }
    }

    /// Maximum links per inner node.
    pub fn max_links(self) -> usize {
        match self {
            Profile::KuboCidV1 | Profile::UnixfsV0_2015 => 174,
            Profile::UnixfsV1_2025 => 1024,
        }
    }

    /// Whether leaves are raw blocks (otherwise dag-pb UnixFS file nodes).
    pub fn raw_leaves(self) -> bool {
        !matches!(self, Profile::UnixfsV0_2015)
    }

    /// CID version of the nodes.
    pub fn cid_version(self) -> u8 {
        match self {
            Profile::UnixfsV0_2015 => 0,
            _ => 1,
        }
    }
}
