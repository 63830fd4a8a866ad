//! Status codes, the thread-local last error, and the wrapper every exported function runs
//! its body in (null checks, panics caught, errors recorded).

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use oai::core::ErrorKind;

/// What a call of liboai returned. `OAI_OK` (0) is success; every other value is an error
/// whose message `oai_last_error_message` gives.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum oai_status {
    /// Success.
    OAI_OK = 0,
    /// A required pointer or handle was NULL.
    OAI_ERROR_NULL = 1,
    /// A handle that is not live (freed, never made) or of another kind.
    OAI_ERROR_WRONG_HANDLE = 2,
    /// A string argument is not valid UTF-8.
    OAI_ERROR_INVALID_UTF8 = 3,
    /// An argument, spec, CID or file content that is malformed or out of range.
    OAI_ERROR_INVALID_INPUT = 4,
    /// A block, file, dataset or run that is not there.
    OAI_ERROR_NOT_FOUND = 5,
    /// Bytes that do not match their CID, a proof or log that does not check out.
    OAI_ERROR_INTEGRITY = 6,
    /// A node or server (IPFS, Ethereum, Qdrant) that cannot be reached or failed.
    OAI_ERROR_UNAVAILABLE = 7,
    /// A named head moved under a compare-and-swap (another writer won).
    OAI_ERROR_CONFLICT = 8,
    /// A log of another compute class or kernel version than this machine runs.
    OAI_ERROR_COMPUTE = 9,
    /// A contract call reverted.
    OAI_ERROR_REVERTED = 10,
    /// A bug in liboai: a panic, caught at the boundary.
    OAI_ERROR_PANIC = 11,
    /// Anything else (an I/O error, a failing backend library).
    OAI_ERROR_OTHER = 12,
}

/// An error on its way to the caller: a status and a message.
#[derive(Debug, Clone)]
pub struct Error {
    /// The code returned.
    pub status: oai_status,
    /// What went wrong, for people.
    pub message: String,
}

impl Error {
    /// An error of `status` saying `message`.
    pub fn new(status: oai_status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }

    /// `OAI_ERROR_NULL` naming the argument.
    pub fn null(what: &str) -> Self {
        Error::new(oai_status::OAI_ERROR_NULL, format!("{what} is NULL"))
    }

    /// `OAI_ERROR_INVALID_INPUT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(oai_status::OAI_ERROR_INVALID_INPUT, message)
    }
}

/// The status of an oai error of `kind`.
pub fn status_of(kind: ErrorKind) -> oai_status {
    match kind {
        ErrorKind::Integrity => oai_status::OAI_ERROR_INTEGRITY,
        ErrorKind::NotFound => oai_status::OAI_ERROR_NOT_FOUND,
        ErrorKind::InvalidInput => oai_status::OAI_ERROR_INVALID_INPUT,
        ErrorKind::Unavailable => oai_status::OAI_ERROR_UNAVAILABLE,
        ErrorKind::Conflict => oai_status::OAI_ERROR_CONFLICT,
        ErrorKind::Compute => oai_status::OAI_ERROR_COMPUTE,
        ErrorKind::Reverted => oai_status::OAI_ERROR_REVERTED,
        _ => oai_status::OAI_ERROR_OTHER,
    }
}

macro_rules! from_crate_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::new(status_of(e.kind()), e.to_string())
            }
        }
    )*};
}
from_crate_error!(
    oai::core::Error,
    oai::data::Error,
    oai::train::Error,
    oai::verify::Error,
    oai::rag::Error,
    oai::chain::Error
);

/// What a call returns inside the library.
pub type Result<T = ()> = std::result::Result<T, Error>;

thread_local! {
    static LAST: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Run an exported function's body: its error or panic becomes the returned status and the
/// thread's last error. A successful call leaves the last error as it was (as `errno`).
pub fn call(body: impl FnOnce() -> Result) -> oai_status {
    let outcome = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return oai_status::OAI_OK,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::new(
                oai_status::OAI_ERROR_PANIC,
                format!("liboai panicked (a bug, please report it): {what}"),
            )
        }
    };
    let status = outcome.status;
    LAST.with(|l| *l.borrow_mut() = Some(outcome));
    status
}

/// The status of the last call on this thread that failed (`OAI_OK` if none has).
#[no_mangle]
pub extern "C" fn oai_last_error_code() -> oai_status {
    LAST.with(|l| l.borrow().as_ref().map_or(oai_status::OAI_OK, |e| e.status))
}

/// The message of the last call on this thread that failed, as a new string the caller frees
/// with `oai_string_free`; NULL if no call has failed.
#[no_mangle]
pub extern "C" fn oai_last_error_message() -> *mut c_char {
    LAST.with(|l| {
        l.borrow().as_ref().map_or(std::ptr::null_mut(), |e| {
            crate::buffers::c_string(&e.message).into_raw()
        })
    })
}

/// The name of a status code (`"OAI_ERROR_NOT_FOUND"`), a static string not to be freed;
/// `"OAI_UNKNOWN_STATUS"` for a value that is none of them.
#[no_mangle]
pub extern "C" fn oai_status_name(status: i32) -> *const c_char {
    let name: &'static [u8] = match status {
        0 => b"OAI_OK\0",
        1 => b"OAI_ERROR_NULL\0",
        2 => b"OAI_ERROR_WRONG_HANDLE\0",
        3 => b"OAI_ERROR_INVALID_UTF8\0",
        4 => b"OAI_ERROR_INVALID_INPUT\0",
        5 => b"OAI_ERROR_NOT_FOUND\0",
        6 => b"OAI_ERROR_INTEGRITY\0",
        7 => b"OAI_ERROR_UNAVAILABLE\0",
        8 => b"OAI_ERROR_CONFLICT\0",
        9 => b"OAI_ERROR_COMPUTE\0",
        10 => b"OAI_ERROR_REVERTED\0",
        11 => b"OAI_ERROR_PANIC\0",
        12 => b"OAI_ERROR_OTHER\0",
        _ => b"OAI_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}

/// `CString` of a message that may contain NUL bytes (they become U+FFFD).
pub(crate) fn message_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).expect("NUL bytes replaced")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_message() -> String {
        LAST.with(|l| {
            l.borrow()
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default()
        })
    }

    #[test]
    fn a_panic_is_caught_and_becomes_a_status_and_a_message() {
        let status = call(|| panic!("boom at the boundary"));
        assert_eq!(status, oai_status::OAI_ERROR_PANIC);
        assert_eq!(oai_last_error_code(), oai_status::OAI_ERROR_PANIC);
        assert!(
            last_message().contains("boom at the boundary"),
            "{}",
            last_message()
        );
        // a success leaves the last error as it was, as errno
        assert_eq!(call(|| Ok(())), oai_status::OAI_OK);
        assert_eq!(oai_last_error_code(), oai_status::OAI_ERROR_PANIC);
        // a formatted panic message too
        let n = 7;
        assert_eq!(call(|| panic!("step {n}")), oai_status::OAI_ERROR_PANIC);
        assert!(last_message().contains("step 7"));
    }

    #[test]
    fn crate_errors_map_to_their_status_and_messages_keep_nul_bytes_out() {
        let e: Error = oai::data::Error::UnknownName {
            what: "dataset",
            name: "x".into(),
        }
        .into();
        assert_eq!(e.status, oai_status::OAI_ERROR_NOT_FOUND);
        assert_eq!(e.message, "no dataset named \"x\"");
        assert_eq!(message_cstring("a\0b").to_str().unwrap(), "a\u{fffd}b");
        // every named status has its own name; other values are unknown
        let names: std::collections::BTreeSet<_> = (0..=12)
            .map(|s| {
                // SAFETY: oai_status_name returns a static NUL-terminated string.
                unsafe { std::ffi::CStr::from_ptr(oai_status_name(s)) }
                    .to_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(names.len(), 13);
        // SAFETY: as above.
        let unknown = unsafe { std::ffi::CStr::from_ptr(oai_status_name(13)) };
        assert_eq!(unknown.to_str().unwrap(), "OAI_UNKNOWN_STATUS");
    }
}
