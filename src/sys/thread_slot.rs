//! [`ThreadSlot`]: per-thread values kept in pthread keys rather than Rust's `thread_local!`,
//! so that the library can be unloaded.
//!
//! A `thread_local!` value that needs dropping registers its destructor with glibc's
//! `__cxa_thread_atexit_impl`, which pins the library in memory until that thread exits: a
//! host's main thread that made one call would keep the library mapped, with all its state,
//! for the rest of the process, and a `dlopen()` after `dlclose()` would find the module
//! still initialized. Destructors of pthread keys pin nothing; [`unload`] deletes the keys
//! (pthreads then never calls a destructor in code about to be unmapped), dropping the
//! unloading thread's own values first. Values of other threads still alive then are leaked:
//! by then the module is shut down and they hold nothing but memory.

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

/// Every key made, with the destructor of its values, for [`unload`].
static KEYS: Mutex<Vec<(libc::pthread_key_t, unsafe extern "C" fn(*mut c_void))>> = Mutex::new(Vec::new());

/// A value of type `T` per thread, made with `T::default()` at a thread's first use and
/// dropped when the thread exits.
pub struct ThreadSlot<T: Default + 'static> {
    /// `None` when pthreads refused a key (the values are then made for each use).
    key: OnceLock<Option<libc::pthread_key_t>>,
    _values: PhantomData<Cell<T>>,
}

// SAFETY: the slot itself is only a key number; each value is reached from its own thread
// only (pthread_getspecific), made and dropped there.
unsafe impl<T: Default + 'static> Sync for ThreadSlot<T> {}

/// Drops a value of a thread that exits (called by pthreads).
unsafe extern "C" fn drop_value<T>(value: *mut c_void) {
    // SAFETY: `value` is what `with` stored: a `Box<T>` turned into a raw pointer, given to
    // this destructor once (pthreads clears the slot before calling it).
    drop(unsafe { Box::from_raw(value.cast::<T>()) });
}

impl<T: Default + 'static> Default for ThreadSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a thread's value could not be reached (pthreads refused the key or the memory).
#[derive(Debug)]
pub struct NoSlot;

impl<T: Default + 'static> ThreadSlot<T> {
    pub const fn new() -> Self {
        ThreadSlot { key: OnceLock::new(), _values: PhantomData }
    }

    fn key(&self) -> Option<libc::pthread_key_t> {
        *self.key.get_or_init(|| {
            let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: `key` is a live local; the destructor matches what the slot stores.
            let made = unsafe { libc::pthread_key_create(&mut key, Some(drop_value::<T>)) } == 0;
            made.then(|| {
                keys.push((key, drop_value::<T>));
                key
            })
        })
    }

    /// Runs `f` with this thread's value.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, NoSlot> {
        let key = self.key().ok_or(NoSlot)?;
        // SAFETY: a key this slot made (never deleted while the library is loaded).
        let mut value = unsafe { libc::pthread_getspecific(key) }.cast::<T>();
        if value.is_null() {
            let fresh = Box::into_raw(Box::<T>::default());
            // SAFETY: as above; the slot takes the box.
            if unsafe { libc::pthread_setspecific(key, fresh.cast()) } != 0 {
                // SAFETY: not stored: still ours alone.
                drop(unsafe { Box::from_raw(fresh) });
                return Err(NoSlot);
            }
            value = fresh;
        }
        // SAFETY: the value lives until this thread exits or the library unloads, neither of
        // which can happen during `f` on this thread; only this thread reaches it.
        Ok(f(unsafe { &*value }))
    }

    /// As [`ThreadSlot::try_with`], with a value made for this use alone when pthreads
    /// refuses one.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let mut f = Some(f);
        match self.try_with(|v| (f.take().expect("called once"))(v)) {
            Ok(r) => r,
            Err(NoSlot) => (f.take().expect("not called"))(&T::default()),
        }
    }
}

/// At the library's unloading: drops the calling thread's values and deletes every key, so
/// that no thread's exit calls into the unmapped library.
pub fn unload() {
    let keys = std::mem::take(&mut *KEYS.lock().unwrap_or_else(|e| e.into_inner()));
    for (key, destructor) in keys {
        // SAFETY: a key made by a slot and not deleted yet; the value, if any, is cleared
        // from the slot before its destructor takes it.
        unsafe {
            let value = libc::pthread_getspecific(key);
            if !value.is_null() {
                libc::pthread_setspecific(key, std::ptr::null());
                destructor(value);
            }
            libc::pthread_key_delete(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Default)]
    struct Counted(Cell<u32>);

    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }

    static SLOT: ThreadSlot<Counted> = ThreadSlot::new();

    #[test]
    fn each_thread_has_its_value_dropped_when_it_exits() {
        SLOT.with(|c| c.0.set(7));
        let before = DROPS.load(Ordering::SeqCst);
        std::thread::spawn(|| {
            assert_eq!(SLOT.with(|c| c.0.get()), 0, "a new thread starts from the default");
            SLOT.with(|c| c.0.set(1));
        })
        .join()
        .unwrap();
        assert_eq!(DROPS.load(Ordering::SeqCst), before + 1, "the thread's value dropped at its exit");
        assert_eq!(SLOT.with(|c| c.0.get()), 7);
    }
}
