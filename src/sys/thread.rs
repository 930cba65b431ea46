//! [`spawn`]: the library's own threads, started with `pthread_create` rather than
//! `std::thread::spawn`, so that the library can be unloaded.
//!
//! `std::thread::spawn` runs the spawning thread's spawn hooks, a `thread_local!` with a
//! destructor: spawning the audit linking thread from a host's thread (at the first audit
//! record) registered that destructor in the library and so kept it mapped, with its state,
//! until the host's thread exited (see `abi/unload.rs`). A thread started here runs Rust code
//! as any other: its own thread-locals are destroyed when it ends, before [`Spawned::join`]
//! returns.

use std::ffi::{CString, c_void};
use std::sync::{Condvar, Mutex};
use std::thread::Thread;

/// A thread started by [`spawn`], to unpark and to join.
pub struct Spawned {
    id: libc::pthread_t,
    thread: Thread,
}

type Body = Box<dyn FnOnce() + Send>;

/// What the parent waits for: the new thread's handle (std's `Mutex`/`Condvar`, which use
/// no thread-local of the waiting host thread, unlike parking_lot's when it must wait).
type Handshake = (Mutex<Option<Thread>>, Condvar);

extern "C" fn start(argument: *mut c_void) -> *mut c_void {
    // SAFETY: `spawn` passes a `Box<(Body, Arc<Handshake>)>` it gave up, taken back once here.
    let (body, handshake) = *unsafe { Box::from_raw(argument.cast::<(Body, std::sync::Arc<Handshake>)>()) };
    *handshake.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
    handshake.1.notify_all();
    drop(handshake);
    // A panic must not unwind out of a pthread start routine.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    std::ptr::null_mut()
}

/// Starts a thread named `name` (at most 15 bytes are shown) that runs `body`.
pub fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> std::io::Result<Spawned> {
    let handshake = std::sync::Arc::new(Handshake::default());
    let argument: Box<(Body, std::sync::Arc<Handshake>)> = Box::new((Box::new(body), handshake.clone()));
    let argument = Box::into_raw(argument);
    let mut id: libc::pthread_t = 0;
    // SAFETY: `start` takes ownership of `argument` if and only if the thread is created.
    let error = unsafe { libc::pthread_create(&mut id, std::ptr::null(), start, argument.cast()) };
    if error != 0 {
        // SAFETY: no thread was made: the box is still ours alone.
        drop(unsafe { Box::from_raw(argument) });
        return Err(std::io::Error::from_raw_os_error(error));
    }
    if let Ok(name) = CString::new(name.chars().take(15).collect::<String>()) {
        // SAFETY: a live thread id and a NUL-terminated name of at most 15 bytes.
        unsafe { libc::pthread_setname_np(id, name.as_ptr()) };
    }
    let mut slot = handshake.0.lock().unwrap_or_else(|e| e.into_inner());
    let thread = loop {
        if let Some(thread) = slot.take() {
            break thread;
        }
        slot = handshake.1.wait(slot).unwrap_or_else(|e| e.into_inner());
    };
    Ok(Spawned { id, thread })
}

impl Spawned {
    /// The thread, to unpark.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Waits for the thread to end (its thread-locals destroyed).
    pub fn join(self) {
        // SAFETY: a thread made by `spawn`, joined once (`self` is consumed), never detached.
        unsafe { libc::pthread_join(self.id, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_thread_runs_is_unparked_and_joined() {
        let woken = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (w, d) = (woken.clone(), done.clone());
        let spawned = spawn("ecm-hsm-test", move || {
            while !w.load(Ordering::SeqCst) {
                std::thread::park();
            }
            d.store(true, Ordering::SeqCst);
        })
        .unwrap();
        woken.store(true, Ordering::SeqCst);
        spawned.thread().unpark();
        spawned.join();
        assert!(done.load(Ordering::SeqCst));
    }
}
