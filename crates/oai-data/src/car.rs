//! CARv1 files: a DAG packed into one file, the way IPFS tools exchange content offline.
//!
//! [`export`] writes every block reachable from a root (dag-pb, dag-cbor and raw links are
//! followed), each once, depth first. [`import`] reads a CAR written by anyone, verifies every
//! block against its CID before storing it, and returns the roots. Both stream: memory holds one
//! block at a time plus the set of CIDs seen.

use bytes::Bytes;
use ipld_core::ipld::Ipld;
use oai_core::{ids, Cid};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::store::Block;
use crate::unixfs::pb::PbNode;
use crate::{cbor, BlockStore, Error, Result};

/// Largest CAR section (CID + block) accepted on import.
const MAX_SECTION: u64 = crate::store::MAX_BLOCK_SIZE as u64 + 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    // DAG-CBOR canonical key order: shorter keys first
    roots: Vec<Cid>,
    version: u64,
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The CIDs a block links to, by its codec.
pub fn links(cid: &Cid, block: &[u8]) -> Result<Vec<Cid>> {
    match cid.codec() {
        ids::RAW => Ok(vec![]),
        ids::DAG_PB => PbNode::decode(block)?
            .links
            .iter()
            .map(|l| ids::from_bytes(&l.hash).map_err(Error::from))
            .collect(),
        ids::DAG_CBOR => {
            let ipld: Ipld = cbor::decode("dag-cbor block", Some(cid), block)?;
            let mut out = Vec::new();
            collect_links(&ipld, &mut out);
            Ok(out)
        }
        other => Err(Error::UnknownCodec(other)),
    }
}

fn collect_links(ipld: &Ipld, out: &mut Vec<Cid>) {
    match ipld {
        Ipld::Link(c) => out.push(*c),
        Ipld::List(items) => items.iter().for_each(|i| collect_links(i, out)),
        Ipld::Map(m) => m.values().for_each(|i| collect_links(i, out)),
        _ => {}
    }
}

/// Write the DAG under `root` as a CARv1 to `out`; returns the number of blocks written.
pub async fn export<S, W>(store: &S, root: &Cid, out: &mut W) -> Result<u64>
where
    S: BlockStore + ?Sized,
    W: AsyncWrite + Unpin,
{
    let header = serde_ipld_dagcbor::to_vec(&Header {
        roots: vec![*root],
        version: 1,
    })
    .map_err(|e| Error::Malformed {
        what: "CAR header",
        reason: e.to_string(),
    })?;
    let mut buf = Vec::new();
    varint(header.len() as u64, &mut buf);
    buf.extend_from_slice(&header);
    out.write_all(&buf).await?;

    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut count = 0;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let block = store.get(&cid).await?;
        let cid_bytes = cid.to_bytes();
        buf.clear();
        varint((cid_bytes.len() + block.len()) as u64, &mut buf);
        buf.extend_from_slice(&cid_bytes);
        out.write_all(&buf).await?;
        out.write_all(&block).await?;
        count += 1;
        let mut kids = links(&cid, &block)?;
        kids.reverse();
        stack.extend(kids.into_iter().filter(|c| !seen.contains(c)));
    }
    out.flush().await?;
    Ok(count)
}

/// Read a varint; `Ok(None)` on a clean end of input before its first byte.
async fn read_varint<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<u64>> {
    let mut v: u64 = 0;
    for (i, shift) in (0..64).step_by(7).enumerate() {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(Error::Truncated {
                what: "CAR",
                detail: "inside a length prefix".into(),
            });
        }
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(Error::Malformed {
        what: "CAR",
        reason: "length prefix longer than 64 bits".into(),
    })
}

async fn read_section<R: AsyncRead + Unpin>(r: &mut R, len: u64) -> Result<Vec<u8>> {
    if len > MAX_SECTION {
        return Err(Error::Malformed {
            what: "CAR",
            reason: format!("section of {len} bytes exceeds {MAX_SECTION}"),
        });
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated {
            what: "CAR",
            detail: format!("a section of {len} bytes is cut short"),
        },
        _ => Error::Io(e),
    })?;
    Ok(buf)
}

/// Import a CARv1 from `input` into `store`, verifying every block; returns the header roots.
///
/// A block that does not match its CID stops the import with [`Error::CorruptBlock`]; blocks
/// before it stay stored (they verified), nothing is overwritten.
pub async fn import<S, R>(store: &S, mut input: R) -> Result<Vec<Cid>>
where
    S: BlockStore + ?Sized,
    R: AsyncRead + Unpin,
{
    let hlen = read_varint(&mut input).await?.ok_or(Error::Truncated {
        what: "CAR",
        detail: "empty input".into(),
    })?;
    let header: Header = cbor::decode("CAR header", None, &read_section(&mut input, hlen).await?)?;
    if header.version != 1 {
        return Err(Error::Malformed {
            what: "CAR header",
            reason: format!("version {} (only CARv1 is supported)", header.version),
        });
    }
    while let Some(len) = read_varint(&mut input).await? {
        let section = read_section(&mut input, len).await?;
        let mut cursor = std::io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| Error::Malformed {
            what: "CAR section",
            reason: format!("bad CID: {e}"),
        })?;
        let data = Bytes::copy_from_slice(&section[cursor.position() as usize..]);
        store.put_block(Block::verified(cid, data)?).await?;
    }
    Ok(header.roots)
}
