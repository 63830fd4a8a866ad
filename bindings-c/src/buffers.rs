//! Strings and byte buffers across the boundary. Strings in are NUL-terminated UTF-8; strings
//! and buffers out are allocated here, belong to the caller and go back through
//! [`oai_string_free`] and [`oai_bytes_free`].

use std::ffi::{c_char, CStr, CString};

use crate::status::{oai_status, Error, Result};

/// The UTF-8 string at `ptr` (`what` names the argument in errors).
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid during the call.
pub unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Error::new(
            oai_status::OAI_ERROR_INVALID_UTF8,
            format!("{what} is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

/// Like [`str_arg`], `None` for NULL.
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn opt_str_arg<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: as the caller's.
        unsafe { str_arg(ptr, what) }.map(Some)
    }
}

/// The `len` bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
/// `ptr` points to `len` readable bytes that stay valid during the call.
pub unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-null, `len` readable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A C string of `s` (NUL bytes inside become U+FFFD).
pub fn c_string(s: &str) -> CString {
    crate::status::message_cstring(s)
}

/// A checked out-pointer: NULL is an error before any work is done.
pub struct Out<T>(*mut T);

impl<T> Out<T> {
    /// `ptr` as an out-parameter named `what`.
    pub fn new(ptr: *mut T, what: &str) -> Result<Self> {
        if ptr.is_null() {
            Err(Error::null(what))
        } else {
            Ok(Out(ptr))
        }
    }

    /// `ptr` as an optional out-parameter: `None` when the caller passed NULL.
    pub fn optional(ptr: *mut T) -> Option<Self> {
        (!ptr.is_null()).then_some(Out(ptr))
    }

    /// Store `value` (the old contents are not read or dropped).
    pub fn set(self, value: T) {
        // SAFETY: non-null and writable by the caller's contract; `write` drops nothing.
        unsafe { self.0.write(value) }
    }
}

impl Out<*mut c_char> {
    /// Store a new caller-owned copy of `s`.
    pub fn set_string(self, s: &str) {
        self.set(c_string(s).into_raw());
    }
}

/// Store a new caller-owned buffer holding `bytes` in `data` and its length in `len` (NULL and
/// 0 for no bytes).
pub fn set_bytes(data: Out<*mut u8>, len: Out<usize>, bytes: Vec<u8>) {
    let n = bytes.len();
    if n == 0 {
        data.set(std::ptr::null_mut());
    } else {
        data.set(Box::into_raw(bytes.into_boxed_slice()).cast());
    }
    len.set(n);
}

/// Free a string liboai returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from liboai not freed before.
#[no_mangle]
pub unsafe extern "C" fn oai_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by `CString::into_raw` in this library, freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Free a byte buffer liboai returned, with the length it returned. NULL is ignored.
///
/// # Safety
/// `data` is NULL or a buffer from liboai of exactly `len` bytes, not freed before.
#[no_mangle]
pub unsafe extern "C" fn oai_bytes_free(data: *mut u8, len: usize) {
    if !data.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(data, len);
        // SAFETY: made by `Box::<[u8]>::into_raw` with this length, freed once.
        drop(unsafe { Box::from_raw(slice) });
    }
}
