//! Keys a session looked up recently, kept to begin further operations on them without the
//! token's lock, the key lookup and a new key schedule.
//!
//! An entry records what one `*Init` established under the token's lock — that the key
//! behind a handle is visible to this session, permitted `usage` with `mechanism`, needs no
//! approval, and has this material — along with the token's version at that moment
//! (`Token::version`, bumped by every change to the token's state) and when the store was
//! last checked for other processes' changes. It is used again only while the version is
//! unchanged and that check is younger than `KEY_USE_STALENESS`, which are exactly the
//! conditions under which the lookup would find the same answer. Logging out ends every
//! operation of the session and empties this cache with them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE};

use crate::mechanism::prepared::PreparedKey;

/// Keys kept per session; the oldest entry makes room.
const CAPACITY: usize = 4;

pub struct CachedKey {
    pub handle: CK_OBJECT_HANDLE,
    pub usage: CK_ATTRIBUTE_TYPE,
    pub mechanism: CK_MECHANISM_TYPE,
    pub version: u64,
    pub checked_at: Instant,
    pub key: Arc<PreparedKey>,
}

#[derive(Default)]
pub struct KeyCache {
    entries: Vec<CachedKey>,
    next: usize,
}

impl KeyCache {
    /// The key of an entry that matches and is still valid under the token's `version`.
    pub fn get(
        &self,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: CK_MECHANISM_TYPE,
        version: u64,
        staleness: Duration,
    ) -> Option<&Arc<PreparedKey>> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.handle == handle && e.usage == usage && e.mechanism == mechanism)?;
        (entry.version == version && entry.checked_at.elapsed() < staleness).then_some(&entry.key)
    }

    pub fn put(&mut self, entry: CachedKey) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.handle == entry.handle && e.usage == entry.usage && e.mechanism == entry.mechanism)
        {
            *e = entry;
        } else if self.entries.len() < CAPACITY {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % CAPACITY;
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::{KeyMaterial, SecretKey};

    fn key() -> Arc<PreparedKey> {
        let secret = SecretKey { key_type: cryptoki_sys::CKK_AES, value: vec![1; 32].into() };
        Arc::new(PreparedKey::new(KeyMaterial::Secret(secret)))
    }

    fn entry(handle: CK_OBJECT_HANDLE, version: u64, checked_at: Instant) -> CachedKey {
        CachedKey { handle, usage: 1, mechanism: 2, version, checked_at, key: key() }
    }

    #[test]
    fn entries_serve_only_their_key_use_version_and_window() {
        let long = Duration::from_secs(60);
        let mut c = KeyCache::default();
        let now = Instant::now();
        c.put(entry(5, 7, now));
        assert!(c.get(5, 1, 2, 7, long).is_some());
        assert!(c.get(5, 1, 2, 8, long).is_none(), "the token changed since");
        assert!(c.get(5, 9, 2, 7, long).is_none(), "another usage");
        assert!(c.get(5, 1, 3, 7, long).is_none(), "another mechanism");
        assert!(c.get(6, 1, 2, 7, long).is_none(), "another key");
        assert!(c.get(5, 1, 2, 7, Duration::ZERO).is_none(), "the store check is too old");
        for h in 10..20 {
            c.put(entry(h, 7, now));
        }
        assert!(c.entries.len() <= CAPACITY);
        c.clear();
        assert!(c.get(19, 1, 2, 7, long).is_none());
    }
}
