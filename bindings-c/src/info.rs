//! The library's version and this machine's compute class.

use std::ffi::c_char;

use crate::buffers::Out;
use crate::status::{call, oai_status};

/// The version of liboai (`"0.1.0"`), a static string not to be freed.
#[no_mangle]
pub extern "C" fn oai_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Keep freed heap memory in this process (glibc on Linux; a no-op elsewhere): training steps
/// run up to twice as fast, and the process keeps its peak heap. It changes the allocator of
/// the whole host process, so liboai never does it unasked: call it once in a process that
/// trains.
#[no_mangle]
pub extern "C" fn oai_keep_freed_memory() {
    oai::train::keep_freed_memory();
}

/// The compute class of this machine's CPU (what a training log made here names, and what a
/// replay must match) in `*class_out` (free with `oai_string_free`).
///
/// # Safety
/// `class_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_compute_class(class_out: *mut *mut c_char) -> oai_status {
    call(|| {
        let out = Out::new(class_out, "class_out")?;
        let env =
            oai::train::ComputeEnv::detect(&oai::train::candle::Device::Cpu, Default::default());
        out.set_string(&env.class.to_string());
        Ok(())
    })
}
