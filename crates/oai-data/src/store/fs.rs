use async_trait::async_trait;
use bytes::Bytes;
use oai_core::{ids, Cid};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{check_block, check_ref_name, Block, BlockStore, RefStore};
use crate::{Error, Result};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A block and ref store in a directory, safe against crashes and concurrent writers.
///
/// Layout: `blocks/<xy>/<cid>` (`xy` = two characters of the CID before its last one),
/// `refs/<name>` (one CID per file), `tmp/` for writes in flight. Every write goes to a fresh
/// file in `tmp/`, is fsynced, then renamed into place and the directory fsynced: a crash
/// leaves either the old state or the new one, never a torn block or ref. Ref updates hold an
/// exclusive lock on `refs/.lock`, so compare-and-swap is atomic across threads and processes.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
}

impl FsStore {
    /// Open (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        blocking(move || {
            for sub in ["blocks", "refs", "tmp"] {
                fs::create_dir_all(root.join(sub))?;
            }
            Ok(Self {
                root: Arc::new(root),
            })
        })
        .await
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a block is kept in.
    pub fn block_path(&self, cid: &Cid) -> PathBuf {
        let s = cid.to_string();
        let n = s.len();
        self.root
            .join("blocks")
            .join(&s[n.saturating_sub(3)..n.saturating_sub(1)])
            .join(s)
    }

    fn ref_path(&self, name: &str) -> PathBuf {
        self.root.join("refs").join(name)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?
}

/// Write `bytes` to `dest` atomically: temp file in `tmp_dir`, fsync, rename, fsync the dir.
fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().expect("destination has a parent");
    fs::create_dir_all(dir)?;
    let tmp = tmp_dir.join(format!(
        "{}-{}.tmp",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)?;
        File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove a file; one that is already gone is fine.
fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl BlockStore for FsStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        let (cid, bytes) = block.into_parts();
        let path = self.block_path(&cid);
        let tmp_dir = self.root.join("tmp");
        blocking(move || {
            match fs::metadata(&path) {
                Ok(m) if m.len() == bytes.len() as u64 => return Ok(()),
                _ => {}
            }
            write_atomic(&tmp_dir, &path, &bytes)
        })
        .await
    }

    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        let path = self.block_path(cid);
        let cid = *cid;
        blocking(move || match fs::read(&path) {
            Ok(b) => {
                check_block(&cid, &b)?;
                Ok(Bytes::from(b))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NotFound(cid)),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let path = self.block_path(cid);
        blocking(move || Ok(path.is_file())).await
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        let path = self.block_path(cid);
        blocking(move || remove_if_present(&path)).await
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        let dir = self.root.join("blocks");
        blocking(move || {
            let mut out = Vec::new();
            for shard in fs::read_dir(dir)? {
                for entry in fs::read_dir(shard?.path())? {
                    let name = entry?.file_name();
                    if let Some(cid) = name.to_str().and_then(|s| ids::parse(s).ok()) {
                        out.push(cid);
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

fn read_ref(path: &Path) -> Result<Option<Cid>> {
    match fs::read_to_string(path) {
        Ok(s) => ids::parse(s.trim())
            .map(Some)
            .map_err(|e| Error::Malformed {
                what: "ref file",
                reason: format!("{}: {e}", path.display()),
            }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn collect_refs(base: &Path, dir: &Path, out: &mut Vec<(String, Cid)>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_refs(base, &path, out)?;
        } else {
            let name = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            if check_ref_name(&name).is_ok() && !name.starts_with(".lock") {
                if let Some(cid) = read_ref(&path)? {
                    out.push((name, cid));
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl RefStore for FsStore {
    async fn get_ref(&self, name: &str) -> Result<Option<Cid>> {
        check_ref_name(name)?;
        let path = self.ref_path(name);
        blocking(move || read_ref(&path)).await
    }

    async fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<Cid>,
        new: Option<Cid>,
    ) -> Result<()> {
        check_ref_name(name)?;
        let path = self.ref_path(name);
        let lock_path = self.root.join("refs").join(".lock");
        let tmp_dir = self.root.join("tmp");
        let name = name.to_string();
        blocking(move || {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            lock.lock()?;
            let actual = read_ref(&path)?;
            if actual != expected {
                return Err(Error::cas_conflict(&name, expected, actual));
            }
            match new {
                Some(cid) => write_atomic(&tmp_dir, &path, format!("{cid}\n").as_bytes()),
                None => remove_if_present(&path),
            }
            // the lock is released when `lock` is dropped
        })
        .await
    }

    async fn list_refs(&self) -> Result<Vec<(String, Cid)>> {
        let base = self.root.join("refs");
        blocking(move || {
            let mut out = Vec::new();
            collect_refs(&base, &base, &mut out)?;
            out.sort();
            Ok(out)
        })
        .await
    }
}
