//! Handles: what C holds is a key into a registry of live objects, never an address liboai
//! dereferences. A NULL, freed, never-made or other-kind handle is an error
//! (`OAI_ERROR_NULL`, `OAI_ERROR_WRONG_HANDLE`), and a call that runs while another thread
//! frees the handle keeps the object alive until it returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::dataset::DatasetHandle;
use crate::generate::ModelHandle;
use crate::rag::{EmbedderHandle, IndexHandle};
use crate::status::{oai_status, Error, Result};
use crate::store::StoreHandle;

/// A live object of any kind.
#[derive(Clone)]
pub enum Object {
    /// An `oai_store`.
    Store(Arc<StoreHandle>),
    /// An `oai_dataset`.
    Dataset(Arc<DatasetHandle>),
    /// An `oai_embedder`.
    Embedder(EmbedderHandle),
    /// An `oai_index`.
    Index(IndexHandle),
    /// An `oai_model`.
    Model(Arc<ModelHandle>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Store(_) => "oai_store",
            Object::Dataset(_) => "oai_dataset",
            Object::Embedder(_) => "oai_embedder",
            Object::Index(_) => "oai_index",
            Object::Model(_) => "oai_model",
        }
    }
}

fn registry() -> &'static Mutex<HashMap<usize, Object>> {
    static REGISTRY: OnceLock<Mutex<HashMap<usize, Object>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<usize, Object>> {
    // A panic while holding the lock cannot leave the map half-changed (each use is one
    // insert, get or remove), so a poisoned lock is still sound to use.
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

// Keys are never reused (a freed handle stays invalid) and never 0 (NULL). Steps of 16 keep
// them looking like aligned pointers to tools that inspect them.
static NEXT: AtomicUsize = AtomicUsize::new(16);

/// Register `object`; the key, as the C handle pointer.
pub fn insert<T>(object: Object) -> *mut T {
    let key = NEXT.fetch_add(16, Ordering::Relaxed);
    lock().insert(key, object);
    key as *mut T
}

/// The live object behind `handle` (`what` names the argument in errors).
pub fn get<T>(handle: *const T, what: &str) -> Result<Object> {
    if handle.is_null() {
        return Err(Error::null(what));
    }
    lock()
        .get(&(handle as usize))
        .cloned()
        .ok_or_else(|| not_live(what))
}

fn not_live(what: &str) -> Error {
    Error::new(
        oai_status::OAI_ERROR_WRONG_HANDLE,
        format!("{what} is not a live handle (freed, or never returned by liboai)"),
    )
}

/// The error for a live handle of the wrong kind.
pub fn wrong_kind(what: &str, expected: &str, got: &Object) -> Error {
    Error::new(
        oai_status::OAI_ERROR_WRONG_HANDLE,
        format!("{what} is an {}, not an {expected}", got.kind()),
    )
}

/// Unregister `handle` if it is a live object of the kind `is_kind` accepts (NULL is ignored).
/// The object is dropped once no running call holds it.
pub fn free<T>(handle: *mut T, what: &str, is_kind: impl Fn(&Object) -> bool) -> Result {
    if handle.is_null() {
        return Ok(());
    }
    let mut map = lock();
    match map.get(&(handle as usize)) {
        None => Err(not_live(what)),
        Some(o) if !is_kind(o) => Err(Error::new(
            oai_status::OAI_ERROR_WRONG_HANDLE,
            format!("{what} is an {}", o.kind()),
        )),
        Some(_) => {
            let object = map.remove(&(handle as usize));
            drop(map);
            drop(object);
            Ok(())
        }
    }
}

/// The number of live handles (made and not yet freed) of every kind, in `*count_out`: a
/// program that frees what it made ends with 0.
///
/// # Safety
/// `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_live_handles(count_out: *mut usize) -> crate::status::oai_status {
    crate::status::call(|| {
        crate::buffers::Out::new(count_out, "count_out")?.set(lock().len());
        Ok(())
    })
}
