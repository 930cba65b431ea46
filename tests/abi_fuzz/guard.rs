//! Buffers that end at a page the process may not touch, for calls that state a length far
//! larger than the memory behind the pointer: a module that reads (or writes) past the real
//! end faults at once, so the driver sees a crash instead of the module quietly using garbage.

use std::ptr::null_mut;

pub struct Guarded {
    map: *mut libc::c_void,
    map_len: usize,
    data: *mut u8,
}

impl Guarded {
    /// `len` bytes (at most one page) filled with `fill`, followed directly by a page mapped
    /// with no access.
    pub fn new(len: usize, fill: u8) -> Guarded {
        // SAFETY: sysconf has no memory effects.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page size");
        assert!(len <= page, "a guarded buffer holds at most one page");
        let map_len = 2 * page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap a guarded buffer");
        // SAFETY: the second page lies inside the mapping made above.
        let rc = unsafe { libc::mprotect(map.cast::<u8>().add(page).cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect the guard page");
        // SAFETY: `page - len` is inside the first page of the mapping.
        let data = unsafe { map.cast::<u8>().add(page - len) };
        // SAFETY: `len` writable bytes start at `data`, all inside the first page.
        unsafe { std::ptr::write_bytes(data, fill, len) };
        Guarded { map, map_len, data }
    }

    pub fn ptr(&self) -> *mut u8 {
        self.data
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this length and is unmapped once.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}
