//! Keys already prepared for the engine (an AWS-LC RSA or ECDSA key pair, with the checks
//! done when it is built), shared by every operation on the same key. Building one costs
//! several times the operation itself, so a token key is built once rather than at every
//! `*Init`. Entries are keyed by a SHA-256 fingerprint of the private key, kept only in
//! memory; the cache is bounded, and AWS-LC cleanses a key's memory when the last operation
//! still using an evicted entry drops it.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest::{self, Context};
use parking_lot::Mutex;

use crate::{Error, Result};

/// How many prepared keys of one kind are kept.
pub const CAPACITY: usize = 64;

pub struct PreparedKeys<T> {
    entries: Mutex<Option<HashMap<[u8; 32], Arc<T>>>>,
}

impl<T> PreparedKeys<T> {
    pub const fn new() -> PreparedKeys<T> {
        PreparedKeys { entries: Mutex::new(None) }
    }

    /// Forgets every entry (their memory is cleansed as the last users drop them).
    pub fn clear(&self) {
        *self.entries.lock() = None;
    }

    /// The prepared key with this fingerprint, built by `build` if it is not cached.
    pub fn get_or_build(&self, fingerprint: [u8; 32], build: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        if let Some(key) = self.entries.lock().as_ref().and_then(|m| m.get(&fingerprint)) {
            return Ok(key.clone());
        }
        // Built outside the lock: other keys stay usable meanwhile.
        let key = Arc::new(build()?);
        let mut entries = self.entries.lock();
        let map = entries.get_or_insert_with(HashMap::new);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(fingerprint, key.clone());
        Ok(key)
    }
}

impl<T> Default for PreparedKeys<T> {
    fn default() -> Self {
        PreparedKeys::new()
    }
}

/// A key as an operation uses it: the material the object layer handed down, with the
/// engine's form of it built at first use and kept for later operations on the same key
/// (an AES-GCM key schedule and GHASH table cost as much as sealing 300 bytes). A session
/// keeps these between `*Init` calls (`crate::session::KeyCache`).
pub struct PreparedKey {
    pub material: super::KeyMaterial,
    gcm: std::sync::OnceLock<aws_lc_rs::aead::LessSafeKey>,
}

impl PreparedKey {
    pub fn new(material: super::KeyMaterial) -> PreparedKey {
        PreparedKey { material, gcm: std::sync::OnceLock::new() }
    }

    /// The key as an AES-GCM key (an AES secret key of 16, 24 or 32 bytes).
    pub fn gcm(&self) -> Result<&aws_lc_rs::aead::LessSafeKey> {
        if let Some(key) = self.gcm.get() {
            return Ok(key);
        }
        let super::KeyMaterial::Secret(secret) = &self.material else {
            return Err(Error::KeyTypeInconsistent);
        };
        if secret.key_type != cryptoki_sys::CKK_AES {
            return Err(Error::KeyTypeInconsistent);
        }
        let key = super::aes_gcm::gcm_key(&secret.value)?;
        Ok(self.gcm.get_or_init(|| key))
    }
}

/// A fingerprint of a key from its parts (each length-prefixed, so parts cannot run into
/// each other).
pub fn fingerprint(parts: &[&[u8]]) -> Result<[u8; 32]> {
    let mut context = Context::new(&digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.finish().as_ref().try_into().map_err(|_| Error::Internal("fingerprint length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_built_once_and_the_cache_stays_bounded() {
        let cache: PreparedKeys<u32> = PreparedKeys::new();
        let mut builds = 0;
        let fp = fingerprint(&[b"a", b"b"]).unwrap();
        assert_ne!(fp, fingerprint(&[b"ab", b""]).unwrap(), "parts are delimited");
        for _ in 0..3 {
            let k = cache
                .get_or_build(fp, || {
                    builds += 1;
                    Ok(7)
                })
                .unwrap();
            assert_eq!(*k, 7);
        }
        assert_eq!(builds, 1);
        for i in 0..(CAPACITY as u32 * 2) {
            cache.get_or_build(fingerprint(&[&i.to_be_bytes()]).unwrap(), || Ok(i)).unwrap();
        }
        assert!(cache.entries.lock().as_ref().unwrap().len() <= CAPACITY);
        assert!(cache.get_or_build(fingerprint(&[b"x"]).unwrap(), || Err(Error::KeySizeRange)).is_err());
    }
}
