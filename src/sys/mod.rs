//! Operating-system interfaces `std` lacks, on `memmap2` and `rustix` (no raw `libc`
//! calls, no constants copied by hand). The only module besides `abi` allowed `unsafe`,
//! each block with its `SAFETY:` note; every layer may use it, it uses none of them.
//!
//! - [`memory`]: memory hygiene for key material: locking pages (`mlock`, best effort),
//!   keeping them out of core dumps (`MADV_DONTDUMP`), and making the process not dumpable
//!   (`PR_SET_DUMPABLE` 0).
//! - [`secret`]: [`secret::LockedBuffer`], page-aligned memory for key material that is
//!   locked, excluded from core dumps and zeroed before it is given back.
#![allow(unsafe_code)]

pub mod memory;
pub mod secret;

/// The size of a memory page.
pub fn page_size() -> usize {
    rustix::param::page_size()
}
