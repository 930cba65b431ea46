//! A pool of locked memory, excluded from core dumps, for the many small secrets a token holds
//! while someone is logged in: every object's attribute values (a key's value among them,
//! see `object::values`), the token key and the audit key.
//!
//! Why a pool and not a [`super::secret::LockedBuffer`] (a mapping) per value: a token of
//! 1,000 keys would take 1,000 mappings and 4 MiB of locked pages, half of the usual 8 MiB
//! `RLIMIT_MEMLOCK`, for some 300 KiB of values; in the pool the same keys take ~0.5 MiB of
//! locked arenas (measured in the tests below). Chunks come in power-of-two sizes carved from
//! 64 KiB arenas; a request larger than the largest size gets a mapping of its own.
//!
//! Arenas are locked (best effort, as [`memory::lock`]) and advised `MADV_DONTDUMP` before
//! any chunk of them is handed out; a chunk is zeroed by its owner before it comes back, so a
//! chunk handed out is all zeroes. Arenas are kept for the process's life (a token logged in
//! again reuses them).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use std::sync::{Mutex, MutexGuard};

use memmap2::MmapMut;
use zeroize::Zeroize;

use super::memory;

/// The smallest chunk; chunk sizes double up to [`LARGEST`].
const SMALLEST: usize = 32;
const CLASSES: usize = 10;
const LARGEST: usize = SMALLEST << (CLASSES - 1);
const ARENA: usize = 64 * 1024;

struct Pool {
    /// Free chunks' addresses, by size class.
    free: [Vec<usize>; CLASSES],
    /// Every arena, kept mapped for the process's life (chunks point into them).
    arenas: Vec<MmapMut>,
    locked_bytes: usize,
}

/// std's `Mutex`, not parking_lot's: a host thread that waits for parking_lot's lock gets a
/// thread-local record with a destructor, which keeps the library mapped (`abi/unload.rs`).
static POOL: Mutex<Pool> =
    Mutex::new(Pool { free: [const { Vec::new() }; CLASSES], arenas: Vec::new(), locked_bytes: 0 });

/// The pool, locked (a panic while it was held leaves it consistent: lists of addresses).
fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

fn class_of(len: usize) -> usize {
    let size = len.max(SMALLEST).next_power_of_two();
    (size / SMALLEST).trailing_zeros() as usize
}

fn class_size(class: usize) -> usize {
    SMALLEST << class
}

/// Where a chunk lives: a pooled chunk, or a mapping of its own for a large request.
enum Place {
    Pooled { class: usize },
    Own(MmapMut),
}

/// A zeroed chunk of at least `len` bytes: where, its size, and where it comes from. The
/// system refusing memory is a panic, as for any allocation (the C boundary catches it).
fn take(len: usize) -> (NonNull<u8>, usize, Place) {
    if len > LARGEST {
        let size = len.div_ceil(super::page_size()) * super::page_size();
        let mut map = MmapMut::map_anon(size).unwrap_or_else(|e| panic!("key memory: {e}"));
        // Advice before the first write; a refusal means a key could land in a dump.
        assert!(memory::exclude_from_core_dumps(&map), "MADV_DONTDUMP refused for key memory");
        memory::lock(&map);
        let at = NonNull::new(map.as_mut_ptr()).expect("a mapping is not at address 0");
        return (at, size, Place::Own(map));
    }
    let class = class_of(len);
    let mut pool = pool();
    if pool.free[class].is_empty() {
        let mut arena = MmapMut::map_anon(ARENA).unwrap_or_else(|e| panic!("key memory: {e}"));
        assert!(memory::exclude_from_core_dumps(&arena), "MADV_DONTDUMP refused for key memory");
        if memory::lock(&arena) {
            pool.locked_bytes += ARENA;
        }
        let start = arena.as_mut_ptr() as usize;
        let size = class_size(class);
        pool.free[class].extend((0..ARENA / size).rev().map(|i| start + i * size));
        pool.arenas.push(arena);
    }
    let address = pool.free[class].pop().expect("a fresh arena has chunks");
    (
        NonNull::new(address as *mut u8).expect("arena addresses are not 0"),
        class_size(class),
        Place::Pooled { class },
    )
}

/// A growable byte buffer for secrets in the pool: zeroed (all of its capacity) before its
/// memory is given back, moved (never reallocated in place) when it grows, never printed.
pub struct SecretVec {
    /// Dangling while `capacity` is 0.
    at: NonNull<u8>,
    len: usize,
    capacity: usize,
    place: Option<Place>,
}

// SAFETY: a SecretVec owns its chunk exclusively (like a Vec owns its allocation); the
// pointer is never shared between two buffers.
unsafe impl Send for SecretVec {}
// SAFETY: shared references only read the bytes; writes need `&mut`.
unsafe impl Sync for SecretVec {}

impl SecretVec {
    /// An empty buffer: takes no memory until something is written.
    pub const fn new() -> SecretVec {
        SecretVec { at: NonNull::dangling(), len: 0, capacity: 0, place: None }
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> SecretVec {
        if capacity == 0 {
            return SecretVec::new();
        }
        let (at, capacity, place) = take(capacity);
        SecretVec { at, len: 0, capacity, place: Some(place) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `bytes`; a buffer too small moves to a larger chunk, the old one zeroed.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.capacity - self.len < bytes.len() {
            let mut larger = SecretVec::with_capacity((self.len + bytes.len()).max(2 * self.capacity));
            larger.extend_from_slice(self);
            *self = larger;
        }
        // SAFETY: `len + bytes.len() <= capacity` (ensured above), so the destination is
        // inside this buffer's chunk; `bytes` cannot overlap it (`&mut self` is exclusive).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at.as_ptr().add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    /// Where the bytes are (for tests of the mapping's flags).
    #[cfg(test)]
    fn address(&self) -> usize {
        self.at.as_ptr() as usize
    }
}

impl Default for SecretVec {
    fn default() -> SecretVec {
        SecretVec::new()
    }
}

impl Deref for SecretVec {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the chunk are initialized (chunks are handed out
        // zeroed) and owned by this buffer; a dangling pointer with `len` 0 is allowed.
        unsafe { std::slice::from_raw_parts(self.at.as_ptr(), self.len) }
    }
}

impl DerefMut for SecretVec {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.at.as_ptr(), self.len) }
    }
}

impl Clone for SecretVec {
    fn clone(&self) -> SecretVec {
        let mut copy = SecretVec::with_capacity(self.capacity);
        copy.extend_from_slice(self);
        copy
    }
}

impl Drop for SecretVec {
    fn drop(&mut self) {
        let Some(place) = self.place.take() else { return };
        // SAFETY: the whole chunk belongs to this buffer and is initialized (handed out
        // zeroed); it is zeroed entirely, not only `len`, since moved values leave bytes
        // beyond `len` (see `object::values`).
        unsafe { std::slice::from_raw_parts_mut(self.at.as_ptr(), self.capacity) }.zeroize();
        match place {
            Place::Pooled { class } => pool().free[class].push(self.at.as_ptr() as usize),
            // Unmapped as it drops (which also unlocks it).
            Place::Own(map) => drop(map),
        }
    }
}

impl fmt::Debug for SecretVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretVec({} bytes)", self.len)
    }
}

/// A fixed-size secret (a token key, an audit key) in the pool; reads as `[u8; N]`.
pub struct SecretArray<const N: usize>(SecretVec);

impl<const N: usize> SecretArray<N> {
    /// Moves `bytes` into the pool and wipes the caller's copy.
    pub fn new(mut bytes: [u8; N]) -> SecretArray<N> {
        let mut buffer = SecretVec::with_capacity(N);
        buffer.extend_from_slice(&bytes);
        bytes.zeroize();
        SecretArray(buffer)
    }
}

impl<const N: usize> Deref for SecretArray<N> {
    type Target = [u8; N];
    fn deref(&self) -> &[u8; N] {
        (*self.0).try_into().expect("a SecretArray holds N bytes")
    }
}

impl<const N: usize> DerefMut for SecretArray<N> {
    fn deref_mut(&mut self) -> &mut [u8; N] {
        (&mut *self.0).try_into().expect("a SecretArray holds N bytes")
    }
}

impl<const N: usize> Clone for SecretArray<N> {
    fn clone(&self) -> Self {
        SecretArray(self.0.clone())
    }
}

impl<const N: usize> PartialEq for SecretArray<N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<const N: usize> fmt::Debug for SecretArray<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretArray<{N}>")
    }
}

/// What the pool holds: arenas mapped and bytes of them locked (for tests and reports).
pub fn pool_usage() -> (usize, usize) {
    let pool = pool();
    (pool.arenas.len() * ARENA, pool.locked_bytes)
}

/// At the library's unloading, after the module is finalized: wipes and unmaps every arena.
/// A value still alive then (held by a host thread's leaked per-thread value) can no longer
/// be reached: the code that would use or drop it is being unmapped.
pub fn release_all() {
    let mut pool = pool();
    for mut arena in pool.arenas.drain(..) {
        arena.zeroize();
    }
    pool.free.iter_mut().for_each(Vec::clear);
    pool.locked_bytes = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::memory::tests::vm_flags_at;

    #[test]
    fn values_grow_clone_and_read_back() {
        let mut v = SecretVec::new();
        assert!(v.is_empty() && v.capacity() == 0);
        for i in 0..3000u32 {
            v.extend_from_slice(&i.to_le_bytes());
        }
        assert_eq!(v.len(), 12000);
        assert!(v.capacity() >= 12000);
        assert_eq!(&v[4..8], &1u32.to_le_bytes());
        let copy = v.clone();
        assert_eq!(&copy[..], &v[..]);
        let mut large = SecretVec::with_capacity(LARGEST + 1);
        large.extend_from_slice(&[9; 40000]);
        assert_eq!(large.iter().filter(|b| **b == 9).count(), 40000);
        let key = SecretArray::new([0x42u8; 32]);
        assert_eq!(*key, [0x42; 32]);
        assert_eq!(key.clone(), key);
        assert_eq!(format!("{key:?}{v:?}"), "SecretArray<32>SecretVec(12000 bytes)");
    }

    #[test]
    fn chunks_are_in_no_dump_mappings_locked_when_the_limit_allows() {
        let mut small = SecretVec::with_capacity(40);
        small.extend_from_slice(&[1; 40]);
        let mut large = SecretVec::with_capacity(LARGEST * 2);
        large.extend_from_slice(&[2; 100]);
        for buffer in [&small, &large] {
            let flags = vm_flags_at(buffer.address());
            assert!(flags.contains(&"dd".to_owned()), "{flags:?}");
        }
        let (mapped, locked) = pool_usage();
        assert!(mapped >= ARENA && locked <= mapped);
    }

    #[test]
    fn a_chunk_given_back_is_zeroed_and_reused() {
        let mut a = SecretVec::with_capacity(SMALLEST * 64);
        a.extend_from_slice(&[0xa5; 100]);
        let address = a.address();
        drop(a);
        // The chunk is either handed out again (to this test or another running at once) or
        // on the free list; it is zero in either case until its new owner writes.
        let pool = pool();
        let class = class_of(SMALLEST * 64);
        if pool.free[class].contains(&address) {
            // SAFETY: the chunk is free (on the list, under the lock): nobody writes it.
            let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, class_size(class)) };
            assert!(bytes.iter().all(|b| *b == 0));
        }
    }

    #[test]
    fn a_thousand_keys_take_a_fraction_of_the_lock_limit() {
        // A stored AES-256 key's values (some 30 attributes) are ~300 bytes: a 512-byte
        // chunk, 128 to an arena, so 1,000 keys take 8 arenas (512 KiB) of locked memory,
        // against 1,000 mappings and 4,000 KiB for a page each.
        assert_eq!(class_size(class_of(300)), 512);
        assert_eq!(1000usize.div_ceil(ARENA / 512) * ARENA, 512 * 1024);
        assert_eq!((class_of(1), class_of(33), class_of(LARGEST)), (0, 1, CLASSES - 1));
    }
}
