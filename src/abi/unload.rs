//! What happens when a host unloads the library (`dlclose()`), with or without `C_Finalize`:
//! the module is finalized, and nothing is left that would call into the unmapped code, so
//! that a later `dlopen()` maps a fresh copy that starts clean (issue 15 item 6).
//!
//! - An ELF destructor (an entry of `.fini_array`) runs when the library is unmapped. It
//!   finalizes the module as `C_Finalize` does (sessions and tokens dropped: stores closed,
//!   audit segments sealed, their linking threads stopped and joined), drops this thread's
//!   per-thread values and deletes their pthread keys (`sys::thread_slot`), and clears and
//!   deletes AWS-LC's thread-local key (`AWSLC_thread_local_clear`/`_shutdown`), so that
//!   threads exiting later call no destructor of ours or AWS-LC's. The key-memory pool's
//!   arenas are wiped and unmapped (`sys::secret_pool`): locked memory is not leaked by
//!   each load.
//! - At process exit the same destructor runs too; it then does nothing (a host's threads
//!   may still be in calls, and the process's end releases everything): an `atexit` handler
//!   registered at load marks the exit, and runs before any library's destructors.
//! - The `pthread_atfork` handler (`fork.rs`) is registered with this library's
//!   `__dso_handle` (glibc's `pthread_atfork` is a static stub that passes it), and glibc
//!   removes it when the library is unloaded.
//!
//! The per-thread values are kept in pthread keys rather than Rust's `thread_local!` for the
//! same reason: glibc keeps a library mapped while a thread has a Rust thread-local
//! destructor registered in it, so one call from the host's main thread would pin the
//! library, and its state, for the rest of the process. A wait in `parking_lot` does the
//! same (its per-thread record has a destructor), so the locks a host thread waits for while
//! the module's own threads hold them, and `C_WaitForSlotEvent`'s wait, are std's
//! (`docs/locking.md`); host threads that contend with each other for the other locks are
//! not covered (README, Unloading).

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

unsafe extern "C" {
    fn atexit(handler: extern "C" fn()) -> c_int;
}

/// Set by the `atexit` handler: the process is exiting, not unloading the library.
static EXITING: AtomicBool = AtomicBool::new(false);

extern "C" fn exiting() {
    EXITING.store(true, Ordering::SeqCst);
}

extern "C" fn on_load() {
    // SAFETY: registers a plain function of this library; glibc runs it at exit, or drops it
    // when the library is unloaded (atexit passes this library's __dso_handle).
    unsafe { atexit(exiting) };
}

extern "C" fn on_unload() {
    if EXITING.load(Ordering::SeqCst) {
        return;
    }
    // Not initialized is the usual case (the host called C_Finalize); a panic must not
    // unwind into the loader.
    let _ = std::panic::catch_unwind(|| {
        let _ = crate::module::finalize();
        crate::sys::thread_slot::unload();
        // Last: nothing of the module holds key memory any more.
        crate::sys::secret_pool::release_all();
    });
    // SAFETY: AWS-LC's documented steps before unloading it: this thread's thread-local data
    // freed, then the key deleted (no thread is in an AWS-LC call: the host unloads the
    // library only when no call is in progress, and the module's threads were joined).
    unsafe {
        aws_lc_sys::AWSLC_thread_local_clear();
        aws_lc_sys::AWSLC_thread_local_shutdown();
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[unsafe(link_section = ".fini_array")]
static ON_UNLOAD: extern "C" fn() = on_unload;
