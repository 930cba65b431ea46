//! A map for numbers the module (or SQLite, for row ids) chose: session and object handles,
//! object references, row ids.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for handles, which are small distinct integers chosen by the module (not by an
/// attacker): one multiplication spreads them over the hash's high bits, where the table
/// looks, at a fraction of SipHash's cost.
#[derive(Default)]
pub struct HandleHasher(u64);

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by numbers the module (or SQLite, for row ids) chose, not an attacker:
/// session and object handles, object references, row ids.
pub type NumberMap<K, V> = HashMap<K, V, BuildHasherDefault<HandleHasher>>;
