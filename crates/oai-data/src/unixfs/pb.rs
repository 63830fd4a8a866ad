//! The two protobuf messages UnixFS needs (dag-pb `PBNode` and UnixFS `Data`), encoded by hand
//! in the canonical field order IPFS uses (links before data), so CIDs match byte for byte.

use oai_core::Cid;

use crate::{Error, Result};

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field << 3));
    put_varint(out, v);
}

/// Read an unsigned LEB128 varint at `*pos`, advancing it.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| Error::Truncated {
            what,
            detail: format!("varint at byte {pos}"),
        })?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::Malformed {
        what,
        reason: "varint longer than 64 bits".into(),
    })
}

enum Field<'a> {
    Uint(u64),
    Bytes(&'a [u8]),
}

fn fields<'a>(buf: &'a [u8], what: &'static str) -> Result<Vec<(u32, Field<'a>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos, what)?;
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Field::Uint(read_varint(buf, &mut pos, what)?))),
            2 => {
                let len = read_varint(buf, &mut pos, what)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| Error::Truncated {
                        what,
                        detail: format!("field {field} wants {len} bytes at {pos}"),
                    })?;
                out.push((field, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            wt => {
                return Err(Error::Malformed {
                    what,
                    reason: format!("unsupported wire type {wt} for field {field}"),
                })
            }
        }
    }
    Ok(out)
}

fn bad(what: &'static str, reason: &str) -> Error {
    Error::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// A dag-pb link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    /// Binary CID of the child.
    pub hash: Vec<u8>,
    /// Link name (empty for file chunks; still encoded, as IPFS does).
    pub name: String,
    /// Cumulative size of the child's DAG in bytes.
    pub tsize: u64,
}

/// A dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    /// Links to children.
    pub links: Vec<PbLink>,
    /// The payload (a UnixFS `Data` message).
    pub data: Option<Vec<u8>>,
}

impl PbNode {
    /// Canonical encoding: links (field 2) first, then data (field 1).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.links {
            let mut lb = Vec::with_capacity(l.hash.len() + 16);
            put_bytes(&mut lb, 1, &l.hash);
            put_bytes(&mut lb, 2, l.name.as_bytes());
            put_uint(&mut lb, 3, l.tsize);
            put_bytes(&mut out, 2, &lb);
        }
        if let Some(d) = &self.data {
            put_bytes(&mut out, 1, d);
        }
        out
    }

    /// Decode a dag-pb block.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        const W: &str = "dag-pb node";
        let mut node = PbNode::default();
        for (field, value) in fields(buf, W)? {
            match (field, value) {
                (1, Field::Bytes(b)) => node.data = Some(b.to_vec()),
                (2, Field::Bytes(b)) => {
                    let mut link = PbLink {
                        hash: Vec::new(),
                        name: String::new(),
                        tsize: 0,
                    };
                    for (lf, lv) in fields(b, W)? {
                        match (lf, lv) {
                            (1, Field::Bytes(h)) => link.hash = h.to_vec(),
                            (2, Field::Bytes(n)) => {
                                link.name = String::from_utf8(n.to_vec())
                                    .map_err(|_| bad(W, "link name is not UTF-8"))?
                            }
                            (3, Field::Uint(t)) => link.tsize = t,
                            _ => return Err(bad(W, "unexpected link field")),
                        }
                    }
                    if link.hash.is_empty() {
                        return Err(bad(W, "link without hash"));
                    }
                    node.links.push(link);
                }
                _ => return Err(bad(W, "unexpected node field")),
            }
        }
        Ok(node)
    }
}

/// UnixFS node types oai reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Raw data (old-style leaves).
    Raw = 0,
    /// A directory.
    Directory = 1,
    /// A file (root or leaf).
    File = 2,
}

/// The UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixFsData {
    /// Node type.
    pub kind: DataType,
    /// Inline file bytes (leaves).
    pub data: Option<Vec<u8>>,
    /// Total file bytes under this node.
    pub filesize: Option<u64>,
    /// File bytes under each child, in link order.
    pub blocksizes: Vec<u64>,
}

impl UnixFsData {
    /// Encode (fields in order 1, 2, 3, 4; blocksizes unpacked, as proto2 writes them).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.kind as u64);
        if let Some(d) = &self.data {
            put_bytes(&mut out, 2, d);
        }
        if let Some(s) = self.filesize {
            put_uint(&mut out, 3, s);
        }
        for b in &self.blocksizes {
            put_uint(&mut out, 4, *b);
        }
        out
    }

    /// Decode a UnixFS `Data` message.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        const W: &str = "UnixFS data";
        let mut kind = None;
        let mut out = UnixFsData {
            kind: DataType::Raw,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
        };
        for (field, value) in fields(buf, W)? {
            match (field, value) {
                (1, Field::Uint(t)) => {
                    kind = Some(match t {
                        0 => DataType::Raw,
                        1 => DataType::Directory,
                        2 => DataType::File,
                        other => return Err(bad(W, &format!("unsupported UnixFS type {other}"))),
                    })
                }
                (2, Field::Bytes(b)) => out.data = Some(b.to_vec()),
                (3, Field::Uint(s)) => out.filesize = Some(s),
                (4, Field::Uint(s)) => out.blocksizes.push(s),
                (4, Field::Bytes(packed)) => {
                    let mut p = 0;
                    while p < packed.len() {
                        out.blocksizes.push(read_varint(packed, &mut p, W)?);
                    }
                }
                (5..=8, _) => {} // hashType, fanout, mode, mtime: ignored for files
                _ => return Err(bad(W, "unexpected field")),
            }
        }
        out.kind = kind.ok_or_else(|| bad(W, "missing type"))?;
        Ok(out)
    }
}

/// The dag-pb leaf node of a file chunk, `PbNode { Data: UnixFsData { File, chunk, filesize } }`,
/// written in one allocation (the same bytes as encoding the two messages in turn).
pub fn file_leaf_node(chunk: &[u8]) -> Vec<u8> {
    let n = chunk.len() as u64;
    let mut tail = Vec::with_capacity(11);
    put_uint(&mut tail, 3, n);
    let mut head = Vec::with_capacity(16);
    put_uint(&mut head, 1, DataType::File as u64);
    if !chunk.is_empty() {
        put_varint(&mut head, 2 << 3 | 2);
        put_varint(&mut head, n);
    }
    let inner_len = head.len() + chunk.len() + tail.len();
    let mut out = Vec::with_capacity(inner_len + 11);
    put_varint(&mut out, 1 << 3 | 2);
    put_varint(&mut out, inner_len as u64);
    out.extend_from_slice(&head);
    out.extend_from_slice(chunk);
    out.extend_from_slice(&tail);
    out
}

/// The dag-pb inner node of a file over `children`, each `(cid, file bytes under it, DAG bytes
/// under it)`: the `Data` lists the file sizes, the links carry the DAG sizes, as kubo writes
/// them.
pub fn file_node(children: &[(Cid, u64, u64)]) -> Vec<u8> {
    let data = UnixFsData {
        kind: DataType::File,
        data: None,
        filesize: Some(children.iter().map(|c| c.1).sum()),
        blocksizes: children.iter().map(|c| c.1).collect(),
    };
    PbNode {
        links: children
            .iter()
            .map(|(cid, _, dag_size)| PbLink {
                hash: cid.to_bytes(),
                name: String::new(),
                tsize: *dag_size,
            })
            .collect(),
        data: Some(data.encode()),
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_node_fast_path_matches_generic_encoding() {
        for chunk in [vec![], vec![7u8], vec![1u8; 300], vec![2u8; 262_144]] {
            let generic = PbNode {
                links: vec![],
                data: Some(
                    UnixFsData {
                        kind: DataType::File,
                        data: (!chunk.is_empty()).then(|| chunk.clone()),
                        filesize: Some(chunk.len() as u64),
                        blocksizes: vec![],
                    }
                    .encode(),
                ),
            }
            .encode();
            assert_eq!(file_leaf_node(&chunk), generic);
        }
    }

    #[test]
    fn node_round_trip() {
        let n = PbNode {
            links: vec![PbLink {
                hash: vec![1, 2, 3],
                name: String::new(),
                tsize: 300,
            }],
            data: Some(
                UnixFsData {
                    kind: DataType::File,
                    data: None,
                    filesize: Some(1 << 20),
                    blocksizes: vec![262144, 5],
                }
                .encode(),
            ),
        };
        let back = PbNode::decode(&n.encode()).unwrap();
        assert_eq!(back, n);
        let d = UnixFsData::decode(back.data.as_ref().unwrap()).unwrap();
        assert_eq!(d.blocksizes, vec![262144, 5]);
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        let n = PbNode {
            links: vec![],
            data: Some(vec![8, 2]),
        }
        .encode();
        assert!(matches!(
            PbNode::decode(&n[..n.len() - 1]),
            Err(Error::Truncated { .. })
        ));
        assert!(PbNode::decode(&[0x0d, 1, 2, 3, 4]).is_err());
        assert!(UnixFsData::decode(&[0x08, 9]).is_err());
    }
}
