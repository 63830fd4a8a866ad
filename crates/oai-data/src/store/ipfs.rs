use async_trait::async_trait;
use bytes::Bytes;
use oai_core::{ids, Cid};
use reqwest::multipart::{Form, Part};
use std::time::Duration;

use super::{check_block, Block, BlockStore, RefStore};
use crate::unixfs::Profile;
use crate::{Error, Result};

/// Blocks on an IPFS node over the kubo RPC API (`/api/v0`), as served by kubo and js-ipfs.
///
/// Every block read back is verified against its CID, so a lying or broken node yields
/// [`Error::CorruptBlock`], never bad data. Requests ask the node to stay offline (no network
/// lookups), so a missing block is [`Error::NotFound`] rather than a hang. js-ipfs ignores
/// `offline` for lookups and waits for the network, so reads also pass a lookup timeout
/// (default 2 s, [`IpfsStore::with_lookup_timeout`]) after which an absent block counts as not
/// found; a put of such a block is harmless, so the worst case of a slow node is a re-put. The node keys blocks
/// by multihash: [`BlockStore::list`] returns CIDs as the node reports them (the codec may
/// differ from the one used to put; compare by `cid.hash()`).
#[derive(Debug, Clone)]
pub struct IpfsStore {
    base: String,
    http: reqwest::Client,
    lookup_timeout: Duration,
}

fn codec_name(codec: u64) -> Result<&'static str> {
    match codec {
        ids::RAW => Ok("raw"),
        ids::DAG_PB => Ok("dag-pb"),
        ids::DAG_CBOR => Ok("dag-cbor"),
        other => Err(Error::UnknownCodec(other)),
    }
}

/// A multipart form with one file part, as `/api/v0/add` and `block/put` expect.
fn upload(field: &'static str, file_name: &'static str, bytes: &[u8]) -> Form {
    let part = Part::bytes(bytes.to_vec())
        .file_name(file_name)
        .mime_str("application/octet-stream")
        .expect("a valid MIME type");
    Form::new().part(field, part)
}

/// Parse a JSON answer of the node.
fn json(what: &'static str, bytes: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
        what,
        reason: e.to_string(),
    })
}

fn is_not_found(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("not found")
        || b.contains("notfound")
        || b.contains("could not find")
        || b.contains("request timed out")
}

impl IpfsStore {
    /// A store talking to the RPC API at `api`, e.g. `http://127.0.0.1:5001`; anything but an
    /// http(s) URL is [`Error::InvalidArgument`].
    pub fn new(api: &str) -> Result<Self> {
        match reqwest::Url::parse(api) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "IPFS API {api:?} is not an http:// or https:// URL"
                )))
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::IpfsUnreachable {
                url: api.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base: format!("{}/api/v0", api.trim_end_matches('/')),
            http,
            lookup_timeout: Duration::from_secs(2),
        })
    }

    /// How long a read waits for a block the node does not have locally.
    pub fn with_lookup_timeout(mut self, t: Duration) -> Self {
        self.lookup_timeout = t;
        self
    }

    fn lookup_query(&self, cid: &Cid) -> Vec<(&'static str, String)> {
        vec![
            ("arg", cid.to_string()),
            ("offline", "true".into()),
            ("timeout", format!("{}ms", self.lookup_timeout.as_millis())),
        ]
    }

    async fn call(
        &self,
        path: &str,
        query: &[(&str, String)],
        form: Option<Form>,
    ) -> Result<Bytes> {
        let url = format!("{}/{path}", self.base);
        let mut req = self.http.post(&url).query(query);
        if let Some(f) = form {
            req = req.multipart(f);
        }
        let resp = req.send().await.map_err(|e| Error::IpfsUnreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| Error::IpfsUnreachable {
            url,
            reason: e.to_string(),
        })?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Error::Ipfs {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        }
    }

    /// The node's identity (a reachability check).
    pub async fn id(&self) -> Result<String> {
        let b = self.call("id", &[], None).await?;
        let v = json("IPFS id response", &b)?;
        Ok(v["ID"].as_str().unwrap_or_default().to_string())
    }

    /// Have the node itself import `bytes` as a file with `profile` (`/api/v0/add`), returning
    /// the root CID it computed. Used to check that oai's importer agrees with IPFS.
    pub async fn add(&self, bytes: Bytes, profile: Profile) -> Result<Cid> {
        let query = vec![
            ("cid-version", profile.cid_version().to_string()),
            ("raw-leaves", profile.raw_leaves().to_string()),
            ("chunker", format!("size-{}", profile.chunk_size())),
            ("pin", "false".to_string()),
        ];
        let form = upload("file", "file", &bytes);
        let b = self.call("add", &query, Some(form)).await?;
        let last = b
            .split(|&c| c == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        let v = json("IPFS add response", last)?;
        ids::parse(v["Hash"].as_str().unwrap_or_default()).map_err(Error::from)
    }

    /// Read a whole file through the node's `/api/v0/cat`, verified: the bytes are re-imported
    /// with `profile` and must give `root`, else [`Error::Verification`]. (To stream a file
    /// block by block instead, use [`crate::unixfs::cat`] over this store.)
    pub async fn cat(&self, root: &Cid, profile: Profile) -> Result<Bytes> {
        let bytes = self.call("cat", &[("arg", root.to_string())], None).await?;
        let got = crate::unixfs::import_bytes(&super::MemStore::new(), &bytes, profile).await?;
        if &got.root != root {
            return Err(Error::Verification(format!(
                "the node's bytes for {root} import as {} with {profile:?}",
                got.root
            )));
        }
        Ok(bytes)
    }

    /// Pin `cid` (recursively) on the node so its GC keeps it.
    pub async fn pin(&self, cid: &Cid) -> Result<()> {
        self.call("pin/add", &[("arg", cid.to_string())], None)
            .await
            .map(|_| ())
    }

    /// Remove the recursive pin of `cid` (its blocks may then be collected by the node's GC);
    /// a CID that is not pinned is not an error.
    pub async fn unpin(&self, cid: &Cid) -> Result<()> {
        if !self.is_pinned(cid).await? {
            return Ok(());
        }
        self.call("pin/rm", &[("arg", cid.to_string())], None)
            .await
            .map(|_| ())
    }

    /// Whether `cid` is pinned recursively on the node.
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool> {
        let query = [("arg", cid.to_string()), ("type", "recursive".to_string())];
        match self.call("pin/ls", &query, None).await {
            Ok(b) => Ok(json("IPFS pin/ls response", &b)?["Keys"]
                .as_object()
                .is_some_and(|k| !k.is_empty())),
            // the node answers "not pinned" with an error
            Err(Error::Ipfs { body, .. }) if body.contains("not pinned") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A [`RefStore`] whose every head is also pinned (recursively) on an IPFS node while it is
/// named: `compare_and_swap` pins the new head before it names it, and unpins the old one once
/// no other name holds it. Names themselves live in `refs` (an IPFS node has no names); the
/// pins keep the node's own garbage collection from dropping a named DAG.
#[derive(Debug, Clone)]
pub struct PinnedRefs<R> {
    refs: R,
    ipfs: IpfsStore,
}

impl<R: RefStore> PinnedRefs<R> {
    /// Names in `refs`, pins on `ipfs`.
    pub fn new(refs: R, ipfs: IpfsStore) -> Self {
        PinnedRefs { refs, ipfs }
    }
}

#[async_trait]
impl<R: RefStore> RefStore for PinnedRefs<R> {
    async fn get_ref(&self, name: &str) -> Result<Option<Cid>> {
        self.refs.get_ref(name).await
    }

    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> Result<()> {
        let mut pinned_here = None;
        if let Some(cid) = &new {
            if !self.ipfs.is_pinned(cid).await? {
                self.ipfs.pin(cid).await?;
                pinned_here = Some(*cid);
            }
        }
        if let Err(e) = self.refs.compare_and_swap(name, expected, new).await {
            // the swap lost its race: take back only the pin this call made
            if let Some(cid) = pinned_here {
                self.ipfs.unpin(&cid).await?;
            }
            return Err(e);
        }
        if let Some(old) = expected.filter(|old| Some(*old) != new) {
            let still_named = self.refs.list_refs().await?.iter().any(|(_, c)| *c == old);
            if !still_named {
                self.ipfs.unpin(&old).await?;
            }
        }
        Ok(())
    }

    async fn list_refs(&self) -> Result<Vec<(String, Cid)>> {
        self.refs.list_refs().await
    }
}

#[async_trait]
impl BlockStore for IpfsStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        let (cid, bytes) = block.into_parts();
        let cid = &cid;
        let query = vec![
            ("format", codec_name(cid.codec())?.to_string()),
            ("mhtype", "sha2-256".to_string()),
            ("version", u64::from(cid.version()).to_string()),
            ("cid-base", "base32".to_string()),
            ("pin", "false".to_string()),
        ];
        let form = upload("data", "block", &bytes);
        let b = self.call("block/put", &query, Some(form)).await?;
        let v = json("IPFS block/put response", &b)?;
        let got = ids::parse(v["Key"].as_str().unwrap_or_default())?;
        if got.hash() != cid.hash() {
            return Err(Error::Verification(format!(
                "IPFS node stored {cid} as {got}"
            )));
        }
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        match self.call("block/get", &self.lookup_query(cid), None).await {
            Ok(b) => {
                check_block(cid, &b)?;
                Ok(b)
            }
            Err(Error::Ipfs { body, .. }) if is_not_found(&body) => Err(Error::NotFound(*cid)),
            Err(e) => Err(e),
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self.call("block/stat", &self.lookup_query(cid), None).await {
            Ok(_) => Ok(true),
            Err(Error::Ipfs { body, .. }) if is_not_found(&body) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        match self
            .call(
                "block/rm",
                &[("arg", cid.to_string()), ("force", "true".into())],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Ipfs { body, .. }) if is_not_found(&body) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        let b = self
            .call("refs/local", &[("cid-base", "base32".into())], None)
            .await?;
        b.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let v = json("IPFS refs/local response", line)?;
                ids::parse(v["Ref"].as_str().unwrap_or_default()).map_err(Error::from)
            })
            .collect()
    }
}
