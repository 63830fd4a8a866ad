//! `oai_store`: blocks (memory, a directory, an IPFS node) with named heads; UnixFS files with
//! the CIDs IPFS gives them.

use std::ffi::c_char;
use std::sync::Arc;

use oai::data::dataset::{sources, Repo};
use oai::data::store::IpfsStore;
use oai::data::{unixfs, BlockStore, FsStore, MemStore, RefStore};

use crate::buffers::{bytes_arg, opt_str_arg, set_bytes, str_arg, Out};
use crate::handles::{self, Object};
use crate::runtime::block_on;
use crate::status::{call, oai_status, Error, Result};

/// An open store (opaque). Thread-safe: any number of threads may use one store at once.
#[allow(non_camel_case_types)]
pub struct oai_store {
    _private: [u8; 0],
}

/// What an `oai_store` handle holds.
pub struct StoreHandle {
    /// Datasets, runs and files over the store's blocks and heads.
    pub repo: Repo<Arc<dyn BlockStore>, Arc<dyn RefStore>>,
}

impl StoreHandle {
    /// The block store.
    pub fn blocks(&self) -> &Arc<dyn BlockStore> {
        self.repo.blocks()
    }
}

fn register(blocks: Arc<dyn BlockStore>, refs: Arc<dyn RefStore>, out: Out<*mut oai_store>) {
    let handle = StoreHandle {
        repo: Repo::new(blocks, refs),
    };
    out.set(handles::insert(Object::Store(Arc::new(handle))));
}

/// The store behind `store` (`what` names the argument in errors).
pub fn store_arg(store: *const oai_store, what: &str) -> Result<Arc<StoreHandle>> {
    match handles::get(store, what)? {
        Object::Store(s) => Ok(s),
        other => Err(handles::wrong_kind(what, "oai_store", &other)),
    }
}

/// A CID from its string form, or `OAI_ERROR_INVALID_INPUT`.
pub fn cid_arg(s: &str, what: &str) -> Result<oai::core::Cid> {
    oai::core::ids::parse(s).map_err(|e| Error::invalid(format!("{what} {s:?}: {e}")))
}

/// Open a new, empty in-memory store into `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_memory(out: *mut *mut oai_store) -> oai_status {
    call(|| {
        let out = Out::new(out, "out")?;
        let m = MemStore::new();
        register(Arc::new(m.clone()), Arc::new(m), out);
        Ok(())
    })
}

/// Open the filesystem store in directory `path` (created if missing; the layout
/// `oai --store` uses) into `*out`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_open(
    path: *const c_char,
    out: *mut *mut oai_store,
) -> oai_status {
    call(|| {
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let fs = block_on(FsStore::open(path))??;
        register(Arc::new(fs.clone()), Arc::new(fs), out);
        Ok(())
    })
}

/// Open a store whose blocks live in the IPFS node whose RPC API is at `url` (e.g.
/// `http://127.0.0.1:5001`) into `*out`. Named heads are kept in the filesystem store at
/// `refs_dir`, or in memory when it is NULL. Every block read is verified against its CID.
///
/// # Safety
/// `url` and `refs_dir` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_ipfs(
    url: *const c_char,
    refs_dir: *const c_char,
    out: *mut *mut oai_store,
) -> oai_status {
    call(|| {
        // SAFETY: the caller's contract.
        let url = unsafe { str_arg(url, "url") }?;
        // SAFETY: the caller's contract.
        let refs_dir = unsafe { opt_str_arg(refs_dir, "refs_dir") }?;
        let out = Out::new(out, "out")?;
        let blocks = IpfsStore::new(url)?;
        let refs: Arc<dyn RefStore> = match refs_dir {
            Some(dir) => Arc::new(block_on(FsStore::open(dir))??),
            None => Arc::new(MemStore::new()),
        };
        register(Arc::new(blocks), refs, out);
        Ok(())
    })
}

/// Free a store handle (NULL is ignored). Datasets opened from it stay usable.
///
/// # Safety
/// Any pointer value is accepted; a freed or foreign one is `OAI_ERROR_WRONG_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn oai_store_free(store: *mut oai_store) -> oai_status {
    call(|| handles::free(store, "store", |o| matches!(o, Object::Store(_))))
}

/// Store `len` bytes at `data` as a UnixFS file (the kubo-cidv1 profile: the CID
/// `ipfs add --cid-version 1` gives) and return its CID in `*cid_out` (free it with
/// `oai_string_free`).
///
/// # Safety
/// `data` points to `len` readable bytes (or is NULL with `len` 0); `cid_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_add(
    store: *const oai_store,
    data: *const u8,
    len: usize,
    cid_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let bytes = unsafe { bytes_arg(data, len, "data") }?;
        let cid_out = Out::new(cid_out, "cid_out")?;
        let r = block_on(unixfs::import_bytes(
            store.blocks(),
            bytes,
            unixfs::Profile::KuboCidV1,
        ))??;
        cid_out.set_string(&r.root.to_string());
        Ok(())
    })
}

/// Store the file at `path` as [`oai_store_add`] stores bytes; its CID in `*cid_out`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `cid_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_add_file(
    store: *const oai_store,
    path: *const c_char,
    cid_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let cid_out = Out::new(cid_out, "cid_out")?;
        let bytes = sources::read_file(path.as_ref())?;
        let r = block_on(unixfs::import_bytes(
            store.blocks(),
            &bytes,
            unixfs::Profile::KuboCidV1,
        ))??;
        cid_out.set_string(&r.root.to_string());
        Ok(())
    })
}

/// The bytes of the UnixFS file `cid` (every block verified), in a new buffer: `*data_out`
/// and `*len_out` (free it with `oai_bytes_free(data, len)`; NULL and 0 for an empty file).
///
/// # Safety
/// `cid` is NULL or a NUL-terminated string; `data_out` and `len_out` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_store_cat(
    store: *const oai_store,
    cid: *const c_char,
    data_out: *mut *mut u8,
    len_out: *mut usize,
) -> oai_status {
    call(|| {
        let store = store_arg(store, "store")?;
        // SAFETY: the caller's contract.
        let cid = cid_arg(unsafe { str_arg(cid, "cid") }?, "cid")?;
        let data_out = Out::new(data_out, "data_out")?;
        let len_out = Out::new(len_out, "len_out")?;
        let bytes = block_on(unixfs::read_to_vec(store.blocks(), &cid))??;
        set_bytes(data_out, len_out, bytes);
        Ok(())
    })
}
