//! [`LockedBuffer`]: memory for key material that stays out of swap and core dumps.
//!
//! Each buffer is its own anonymous mapping, so it starts on a page boundary and no other
//! data shares its pages: locking and the no-dump advice cover exactly it, and a key never
//! sits beside something a dump keeps. A page per key is cheap next to a token's handful of
//! keys; it is not meant for bulk data.

use std::fmt;
use std::ops::{Deref, DerefMut};

use memmap2::MmapMut;
use zeroize::Zeroize;

use super::memory;

/// A fixed-length byte buffer for secrets: page-aligned, locked in memory (best effort,
/// [`memory::lock`]), excluded from core dumps, zeroed before its pages are given back, and
/// never printed.
pub struct LockedBuffer {
    map: MmapMut,
    len: usize,
    locked: bool,
}

impl LockedBuffer {
    /// A buffer of `len` zero bytes.
    pub fn zeroed(len: usize) -> std::io::Result<Self> {
        // Whole pages (an empty secret still takes one: the system refuses an empty
        // mapping), so that the zeroing on drop covers every byte the mapping has.
        let page = super::page_size();
        let map = MmapMut::map_anon(len.div_ceil(page).max(1) * page)?;
        // Advice before the first write, so that no byte of the secret is ever dumpable.
        if !memory::exclude_from_core_dumps(&map) {
            return Err(std::io::Error::other("MADV_DONTDUMP refused for key material"));
        }
        let locked = memory::lock(&map);
        Ok(LockedBuffer { map, len, locked })
    }

    /// A buffer holding a copy of `bytes` (the caller zeroizes its own copy).
    pub fn copy_from(bytes: &[u8]) -> std::io::Result<Self> {
        let mut buffer = Self::zeroed(bytes.len())?;
        buffer.copy_from_slice(bytes);
        Ok(buffer)
    }

    /// Whether the pages are locked in RAM (false when the system refused, see
    /// [`memory::lock`]).
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Deref for LockedBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl DerefMut for LockedBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

impl Drop for LockedBuffer {
    fn drop(&mut self) {
        // The whole mapping, not only `len`: nothing of the secret may outlive it. The
        // unmapping that follows also unlocks the pages.
        self.map.zeroize();
    }
}

impl fmt::Debug for LockedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedBuffer")
            .field("len", &self.len)
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::memory::tests::vm_flags;

    #[test]
    fn a_buffer_is_page_aligned_excluded_from_dumps_and_locked_as_it_says() {
        let buffer = LockedBuffer::copy_from(&[0x5a; 48]).unwrap();
        assert_eq!(&buffer[..], &[0x5a; 48]);
        let address = buffer.as_ptr() as usize;
        assert_eq!(address % crate::sys::page_size(), 0);
        let flags = vm_flags(address);
        assert!(flags.contains(&"dd".to_owned()), "{flags:?}");
        assert_eq!(flags.contains(&"lo".to_owned()), buffer.is_locked(), "{flags:?}");
    }

    #[test]
    fn a_buffer_never_prints_its_bytes() {
        let buffer = LockedBuffer::copy_from(b"very secret key!").unwrap();
        let printed = format!("{buffer:?}");
        assert!(printed.contains("len: 16"), "{printed}");
        assert!(!printed.contains("secret") && !printed.contains("118"), "{printed}");
    }

    #[test]
    fn the_zeroing_drop_runs_covers_the_whole_page() {
        let mut buffer = LockedBuffer::zeroed(32).unwrap();
        buffer.fill(0xa5);
        buffer.map[4000] = 0xa5;
        // What `drop` runs, observed before the pages are gone.
        buffer.map.zeroize();
        assert!(buffer.map.iter().all(|b| *b == 0));
        assert_eq!(buffer.len(), 32);
        assert!(LockedBuffer::zeroed(0).unwrap().is_empty());
    }
}
