//! A file mapped into memory, shared with the kernel's page cache (the audit trail's
//! per-process segments, `crate::audit::segment`), on `memmap2`'s raw mapping: the mapping
//! is written through a pointer by two halves that own disjoint ranges, which no safe slice
//! type expresses, hence `unsafe` here.
//!
//! The file is appended to by one writer, the [`Appender`], while one [`Sealer`] patches
//! bytes the writer has already published (the audit records' links, computed off the
//! caller's path). The two halves own disjoint byte ranges — the appender everything from
//! its cursor on, the sealer what lies between its own cursor and the appender's published
//! one — so neither ever sees the other's writes in progress; the hand-over is one atomic
//! store (release) and load (acquire).
//!
//! What a write to the mapping guarantees is what a `write(2)` without `fsync` does: once
//! the bytes are copied they are the file's page cache and survive the process being
//! killed; [`Appender::sync`] makes a range survive a power loss too.
//!
//! The mapping is a fixed window that never moves (the file grows inside it), and the
//! blocks under it are allocated (zeros written) before they are written through the
//! mapping, so a full disk is an error from [`Appender::append`], not a `SIGBUS` in the
//! middle of a write. (A mapped
//! file truncated by somebody else under the writer does raise `SIGBUS`; the audit
//! directory is the token's, mode 0700, like its store.)

use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{Advice, MmapOptions, MmapRaw, UncheckedAdvice};

use super::page_size;

/// The first allocation; it doubles as the file fills, by at most [`MAX_GROWTH`] (whose
/// page faults, taken at once, are a pause of about a millisecond — for the sealer, when
/// it reserves ahead, else for the appender).
const FIRST_ALLOCATION: usize = 64 << 10;
const MAX_GROWTH: usize = 1 << 20;

/// The shared mapping.
struct Mapping {
    file: File,
    map: MmapRaw,
    window: usize,
    /// How far the appender has written: bytes below are the sealer's to patch.
    published: AtomicUsize,
    /// Bytes of the file allocated and faulted in. Either half may grow it (under
    /// `growing`): the appender when it runs out, the sealer ahead of it, so that the page
    /// faults of a growing file are taken off the appender's path.
    allocated: AtomicUsize,
    /// std's `Mutex`, not parking_lot's: the sealer is the audit trail's linking thread,
    /// which holds it for about a millisecond per step, and a host thread (the appender)
    /// that waited for it in parking_lot would keep the library mapped until that thread
    /// exits (`audit::trail::SharedLinker` says why).
    growing: std::sync::Mutex<()>,
}

impl Mapping {
    /// Makes sure the first `want` bytes (at most the window) are allocated and faulted in;
    /// how many are.
    fn reserve(&self, want: usize) -> io::Result<usize> {
        let want = want.min(self.window);
        loop {
            let allocated = self.allocated.load(Ordering::Acquire);
            if want <= allocated {
                return Ok(allocated);
            }
            // One step at a time, the lock given back between steps: the appender, which
            // needs only the next step, never waits for all of a sealer's reservation.
            let _growing = self.growing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let allocated = self.allocated.load(Ordering::Acquire);
            if want <= allocated {
                return Ok(allocated);
            }
            let grown = (allocated + allocated.min(MAX_GROWTH)).min(self.window);
            allocate(&self.file, allocated, grown - allocated)?;
            prefault(self, allocated, grown);
            self.allocated.store(grown, Ordering::Release);
        }
    }
}

impl Mapping {
    fn ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
}

/// The writing half: appends bytes and publishes them.
pub struct Appender {
    map: Arc<Mapping>,
    /// Bytes written (and published).
    cursor: usize,
    /// Bytes of the file allocated.
    allocated: usize,
}

/// The patching half: sees the bytes published and not yet handed back.
pub struct Sealer {
    map: Arc<Mapping>,
    /// Bytes already sealed (never seen again).
    sealed: usize,
    /// Bytes whose pages were let go of (see [`Sealer::release_sealed`]).
    released: usize,
}

/// How much sealed data the mapping keeps before letting it go (a page-table flush is not
/// free: done rarely).
const RELEASE_EVERY: usize = 8 << 20;

/// Maps a window of `window` bytes over `file` (open for reading and writing, empty), which
/// grows inside it as the appender writes; the two halves.
pub fn create(file: File, window: usize) -> io::Result<(Appender, Sealer)> {
    let page = page_size();
    let window = window.div_ceil(page) * page;
    let first = FIRST_ALLOCATION.min(window);
    allocate(&file, 0, first)?;
    // A shared read-write mapping of `window` bytes, longer than the file: pages past the
    // end of the file are never touched (see `Appender::append`).
    let map = MmapOptions::new().len(window).map_raw(&file)?;
    let map = Arc::new(Mapping {
        file,
        map,
        window,
        published: AtomicUsize::new(0),
        allocated: AtomicUsize::new(first),
        growing: std::sync::Mutex::new(()),
    });
    prefault(&map, 0, first);
    Ok((Appender { map: map.clone(), cursor: 0, allocated: first }, Sealer { map, sealed: 0, released: 0 }))
}

impl Appender {
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.cursor == 0
    }

    /// Whether `n` more bytes fit in the window.
    pub fn fits(&self, n: usize) -> bool {
        self.cursor.checked_add(n).is_some_and(|end| end <= self.map.window)
    }

    /// Appends `data` and publishes it to the sealer; its offset. Fails, writing nothing,
    /// when the disk is full or the window is ([`Appender::fits`]).
    pub fn append(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.fits(data.len()) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "the mapped window is full"));
        }
        let end = self.cursor + data.len();
        if end > self.allocated {
            self.allocated = self.map.reserve(end)?;
        }
        // SAFETY: `cursor..end` lies inside the window and inside the allocated file (checked
        // above), and at or after `published`, so the sealer does not touch it.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.ptr().add(self.cursor), data.len());
        }
        let offset = self.cursor;
        self.cursor = end;
        // SeqCst rather than Release: the audit trail's sealer pairs this store with a flag of
        // its own to decide whether to sleep (a store-load order only SeqCst gives).
        self.map.published.store(end, Ordering::SeqCst);
        Ok(offset)
    }

    /// Waits until the bytes `offset..offset + len` are on the disk (`msync(MS_SYNC)`).
    pub fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = (offset + len).min(self.cursor);
        if end <= offset {
            return Ok(());
        }
        // `flush_range` aligns the start down to a page itself.
        self.map.map.flush_range(offset, end - offset)
    }

    /// Unmaps and cuts the file to the bytes written, given the sealer back (so that
    /// nothing can touch the mapping any more).
    pub fn finish(self, sealer: Sealer) -> io::Result<()> {
        let file = self.map.file.try_clone()?;
        let len = self.cursor as u64;
        drop(sealer);
        drop(self);
        file.set_len(len)
    }
}

impl Sealer {
    /// Whether the appender published bytes not yet sealed.
    pub fn has_pending(&self) -> bool {
        self.map.published.load(Ordering::SeqCst) > self.sealed
    }

    /// The bytes published and not yet sealed, to read and patch.
    pub fn pending(&mut self) -> &mut [u8] {
        let published = self.map.published.load(Ordering::Acquire);
        // SAFETY: `sealed..published` was written and published by the appender, which
        // never touches bytes before `published` again; only this (unique) sealer does, and
        // the slice borrows it mutably.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr().add(self.sealed), published - self.sealed) }
    }

    /// Allocates and faults in the file up to `ahead` bytes past what was published, so that
    /// the appender finds its pages ready.
    pub fn reserve_ahead(&self, ahead: usize) -> io::Result<()> {
        let published = self.map.published.load(Ordering::Acquire);
        self.map.reserve(published.saturating_add(ahead)).map(drop)
    }

    /// Lets go of the mapping's pages of data sealed long enough ago (the file keeps it, in
    /// the page cache and then on disk): a process that writes a gigabyte of records does
    /// not keep a gigabyte mapped, nor a gigabyte waiting to be written. Neither half
    /// touches those bytes again.
    pub fn release_sealed(&mut self) {
        let page = page_size();
        let end = self.sealed - self.sealed % page;
        if end < self.released + RELEASE_EVERY {
            return;
        }
        // SAFETY: `released..end` is page-aligned, inside the mapping, and below both halves'
        // cursors: no reference into it exists or will be made. For a shared file mapping
        // MADV_DONTNEED only unmaps the pages; their contents (dirty or not) stay the file's.
        // Only advice: a refusal leaves the pages mapped, nothing else.
        let _ = unsafe {
            self.map.map.unchecked_advise_range(UncheckedAdvice::DontNeed, self.released, end - self.released)
        };
        // Starts writing those pages to the disk now, without waiting for it. Left to the
        // kernel, a process recording a million operations a second dirties some 250 MB/s,
        // and after a few seconds (~0.6-1 GB dirty here) the kernel throttles it to what it
        // estimates the disk writes: the linking thread then sleeps while growing the file,
        // and the writer waits for it. Measured (1 KiB AES-GCM, audited, 6M operations):
        // without this, 0.57 us/op, then 0.74-0.79 us/op after 4.5M; with it, 0.59-0.62
        // us/op throughout, dirty pages ~6 MB instead of 1.5 GB, and the records on the
        // disk within moments rather than after the kernel's 30 s.
        // `POSIX_FADV_DONTNEED` is how `rustix` offers it: on Linux it starts the writeback
        // of the range's dirty pages without waiting (as `sync_file_range(WRITE)` does) and
        // drops those already clean from the page cache, which this process reads no more.
        if let Some(len) = NonZeroU64::new((end - self.released) as u64) {
            let _ = rustix::fs::fadvise(
                &self.map.file,
                self.released as u64,
                Some(len),
                rustix::fs::Advice::DontNeed,
            );
        }
        self.released = end;
    }

    /// Marks the first `n` pending bytes sealed.
    pub fn advance(&mut self, n: usize) {
        let published = self.map.published.load(Ordering::Acquire);
        self.sealed = (self.sealed + n).min(published);
    }
}

/// Reserves the blocks of `offset..offset + len` (the file grows to cover them) by writing
/// zeros there: the file system reserves the space (a full disk is this write's error) and
/// the pages enter the page cache by the write path, whole. (`fallocate` reserves the space
/// too, but leaves pages that a fault must then read in and zero one by one, several times
/// slower here.)
fn allocate(file: &File, offset: usize, len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let n = (end - at).min(ZEROS.len());
        file.write_all_at(&ZEROS[..n], at as u64)?;
        at += n;
    }
    Ok(())
}

/// Takes the page faults of `from..to` now, in one call, rather than one by one in the
/// writes (each first write of a page would otherwise fault to read it and again to make it
/// writable). Only a hint: kernels before 5.14 refuse it, and the writes then fault.
fn prefault(map: &Mapping, from: usize, to: usize) {
    let page = page_size();
    let start = from - from % page;
    if start >= to {
        return;
    }
    // `start..to` lies inside the window and the allocated file; the advice only faults
    // pages in, it changes no byte. `MADV_POPULATE_WRITE` is Linux 5.14's.
    let _ = map.map.advise_range(Advice::PopulateWrite, start, to - start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(tag: &str) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("ecm-hsm-mapped-{tag}-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn appended_bytes_reach_the_file_patches_too_and_finish_cuts_it() {
        let (path, file) = temp_file("append");
        let (mut appender, mut sealer) = create(file, 1 << 20).unwrap();
        assert!(!sealer.has_pending());
        assert_eq!(appender.append(b"hello ----\n").unwrap(), 0);
        let big = vec![b'x'; 100_000];
        assert_eq!(appender.append(&big).unwrap(), 11);
        assert!(sealer.has_pending());
        let pending = sealer.pending();
        assert_eq!(pending.len(), 100_011);
        pending[6..10].copy_from_slice(b"link");
        sealer.advance(11);
        assert_eq!(sealer.pending().len(), 100_000);
        sealer.reserve_ahead(500_000).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() >= 600_011, "allocated ahead by the sealer");
        appender.sync(0, 11).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk.len() >= 100_011, "allocated ahead");
        assert_eq!(&on_disk[..11], b"hello link\n");
        assert!(on_disk[100_011..].iter().all(|b| *b == 0));
        appender.finish(sealer).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100_011);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn released_pages_keep_their_bytes_in_the_file() {
        let (path, file) = temp_file("release");
        let (mut appender, mut sealer) = create(file, 32 << 20).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..10 {
            appender.append(&chunk).unwrap();
        }
        let n = sealer.pending().len();
        sealer.pending()[5] = b'!';
        sealer.advance(n);
        sealer.release_sealed();
        assert!(sealer.released >= 8 << 20);
        appender.append(b"tail").unwrap();
        assert_eq!(sealer.pending(), b"tail");
        appender.finish(sealer).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), (10 << 20) + 4);
        assert_eq!(on_disk[5], b'!');
        assert_eq!(&on_disk[(9 << 20) + 7..(9 << 20) + 8], &chunk[7..8]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_full_window_refuses_and_writes_nothing() {
        let (path, file) = temp_file("full");
        let (mut appender, sealer) = create(file, 4096).unwrap();
        appender.append(&[1; 4000]).unwrap();
        assert!(!appender.fits(100));
        assert_eq!(appender.append(&[2; 100]).unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert_eq!(appender.len(), 4000);
        appender.finish(sealer).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![1; 4000]);
        std::fs::remove_file(path).unwrap();
    }
}
