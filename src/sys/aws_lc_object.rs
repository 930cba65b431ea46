//! [`Owned`]: one AWS-LC object (a digest or HMAC context, a key, a point, a big number)
//! reached through AWS-LC's own C interface where aws-lc-rs stops, owned by one value and
//! freed by its matching `*_free` when that value is dropped — on every path, early returns
//! included.

use std::ptr::NonNull;

pub(super) struct Owned<T> {
    pointer: NonNull<T>,
    free: unsafe extern "C" fn(*mut T),
}

// SAFETY: the object is owned by this value alone (never shared or aliased), and the AWS-LC
// objects kept in one (contexts, keys, points, big numbers) carry no thread affinity, so
// moving one to another thread is sound.
unsafe impl<T> Send for Owned<T> {}

impl<T> Owned<T> {
    /// Takes what a `*_new` call returned (`None`: it returned null, it failed) with its
    /// matching `*_free`.
    pub(super) fn new(pointer: *mut T, free: unsafe extern "C" fn(*mut T)) -> Option<Owned<T>> {
        NonNull::new(pointer).map(|pointer| Owned { pointer, free })
    }

    /// The object, for a call; it stays owned here.
    pub(super) fn get(&self) -> *mut T {
        self.pointer.as_ptr()
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from the `*_new` call `free` matches, and is freed once.
        unsafe { (self.free)(self.pointer.as_ptr()) }
    }
}
