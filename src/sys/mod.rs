//! Interfaces below the project that have no safe Rust API: the operating system's, on
//! `memmap2` and `rustix` (raw `libc` calls only for pthreads, which rustix lacks; no
//! constants copied by hand), and the AWS-LC
//! operations aws-lc-rs does not offer. The only module besides `abi` allowed
//! `unsafe`, each block with its `SAFETY:` note; every layer may use it, it uses none of them.
//!
//! - [`mapped_file`]: a shared file mapping with one appender and one sealer (the audit
//!   trail's per-process segments).
//! - [`memory`]: memory hygiene for key material: locking pages (`mlock`, best effort),
//!   keeping them out of core dumps (`MADV_DONTDUMP`), and making the process not dumpable
//!   (`PR_SET_DUMPABLE` 0).
//! - `deadlock` (with the test feature `deadlock-detection` only): a thread that asks
//!   `parking_lot` for cycles of locks and aborts with their threads' backtraces.
//! - `aws_lc_object`: one owner for the AWS-LC objects the files below make (freed by their
//!   own `*_free` on drop).
//! - [`ecdh_secp256k1`]: ECDH on secp256k1, through AWS-LC's `EC_KEY` interface
//!   (aws-lc-rs signs on that curve but has no key agreement on it).
//! - [`ed25519_instances`]: Ed25519ctx and Ed25519ph, through AWS-LC's `curve25519.h`
//!   interface (aws-lc-rs offers pure Ed25519 only).
//! - [`gcm_any_iv`]: AES-GCM with IVs other than 96 bits, through AWS-LC's `EVP_CIPHER`
//!   interface (aws-lc-rs's AEAD API takes 96-bit nonces only).
//! - [`ml_dsa_mu`]: ML-DSA over an external mu, and the hashes HashML-DSA uses, through
//!   AWS-LC's `EVP_PKEY` and `EVP_MD` interfaces (aws-lc-rs signs pure ML-DSA with an empty
//!   context only).
//! - [`ml_kem_seed`]: ML-KEM key pairs from their seed d ‖ z, through AWS-LC's
//!   deterministic KEM key generation (aws-lc-rs neither takes nor gives the seed).
//! - [`sha3`]: SHA3-224 and HMAC over the SHA-3 hashes, through AWS-LC's `EVP_MD` and
//!   `HMAC_CTX` interfaces (aws-lc-rs has neither).
//! - [`owned_file`]: opening a file only its owner may have written (or read), checked
//!   through the open file.
//! - [`secret`]: [`secret::LockedBuffer`], page-aligned memory for key material that is
//!   locked, excluded from core dumps and zeroed before it is given back.
//! - [`secret_pool`]: the same guarantees for many small secrets (every object's values, the
//!   token key, the audit key), from a pool of locked no-dump arenas.
//! - [`thread`]: the library's own threads, through `pthread_create` (std's spawning
//!   registers a thread-local destructor in the spawning host thread).
//! - [`thread_slot`]: per-thread values in pthread keys (through `libc`: rustix has none),
//!   so that the library can be unloaded (`abi/unload.rs`).
#![allow(unsafe_code)]

mod aws_lc_object;
#[cfg(feature = "deadlock-detection")]
pub mod deadlock;
pub mod ecdh_secp256k1;
pub mod ed25519_instances;
pub mod gcm_any_iv;
pub mod mapped_file;
pub mod memory;
pub mod ml_dsa_mu;
pub mod ml_kem_seed;
pub mod owned_file;
pub mod secret;
pub mod secret_pool;
pub mod sha3;
pub mod thread;
pub mod thread_slot;

/// The size of a memory page.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// For the known-answer tests here: the bytes of a hex string.
#[cfg(test)]
fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s).unwrap()
}
