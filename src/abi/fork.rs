//! Fork detection without a system call on every call: a `pthread_atfork` child handler
//! tells the module it now runs in a child (`module::forked`), where before every call
//! compared `getpid()` with the initializing process's id (a system call each time, 2.7% of
//! an AES-GCM 1 KiB operation).

use std::ffi::c_int;
use std::sync::OnceLock;

use crate::{Error, Result};

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> c_int;
}

/// Runs in the child right after `fork()`: only atomic stores, as is allowed there.
extern "C" fn in_child() {
    crate::module::forked();
}

/// Installs the handler once per load of the library (glibc drops it when the library is
/// unloaded: see `unload.rs`).
/// Failing to install it fails `C_Initialize`: without it a child would use its parent's
/// store connections.
pub fn watch() -> Result<()> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    // SAFETY: registers a plain function of this library; glibc removes it at the library's
    // unloading (the static `pthread_atfork` stub passes this library's `__dso_handle`).
    let ok = *INSTALLED.get_or_init(|| unsafe { pthread_atfork(None, None, Some(in_child)) } == 0);
    if ok { Ok(()) } else { Err(Error::Internal("pthread_atfork failed")) }
}
