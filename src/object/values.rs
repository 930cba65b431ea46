//! An object's attribute values, kept compact: every value's bytes in one buffer and a
//! sorted index of (attribute, where, how long).
//!
//! A key has some thirty attributes, most of them a byte or a `CK_ULONG`. Kept one heap
//! value each (in a map), making and dropping a key cost some seventy allocations and frees,
//! which were most of a `C_UnwrapKey` or `C_DestroyObject` and of a token's memory per
//! object. Here an object holds two allocations.
//!
//! The buffer may hold secrets (key material): it is zeroized when dropped, a value it
//! stops holding is zeroized in place, and it never grows by reallocation (which would
//! leave the old copy in freed memory): a larger buffer is made, filled, and the old one
//! zeroized and dropped. The buffer is in `sys::secret_pool`'s memory: locked (best effort)
//! and excluded from core dumps, like every opened key value the token holds.

use cryptoki_sys::CK_ATTRIBUTE_TYPE;
use zeroize::Zeroize;

use crate::sys::secret_pool::SecretVec;

#[derive(Clone, Default)]
pub struct Values {
    /// (attribute, offset in `bytes`, length), sorted by attribute.
    index: Vec<(CK_ATTRIBUTE_TYPE, u32, u32)>,
    bytes: SecretVec,
    /// Bytes of `bytes` no value uses any more (zeroed), reclaimed when they outweigh the
    /// rest.
    unused: usize,
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    fn position(&self, attribute: CK_ATTRIBUTE_TYPE) -> Result<usize, usize> {
        self.index.binary_search_by_key(&attribute, |(a, _, _)| *a)
    }

    pub fn get(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        let i = self.position(attribute).ok()?;
        let (_, at, len) = self.index[i];
        Some(&self.bytes[at as usize..(at + len) as usize])
    }

    pub fn contains(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        self.position(attribute).is_ok()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sets `attribute` to `value`; the value it had, if any, is zeroized.
    pub fn insert(&mut self, attribute: CK_ATTRIBUTE_TYPE, value: &[u8]) {
        let len = u32::try_from(value.len()).expect("an attribute value under 4 GiB");
        match self.position(attribute) {
            Ok(i) => {
                let (_, at, old_len) = self.index[i];
                if old_len == len {
                    self.bytes[at as usize..(at + len) as usize].copy_from_slice(value);
                    return;
                }
                self.bytes[at as usize..(at + old_len) as usize].zeroize();
                self.unused += old_len as usize;
                let at = self.append(value);
                self.index[i] = (attribute, at, len);
            }
            Err(i) => {
                let at = self.append(value);
                self.index.insert(i, (attribute, at, len));
            }
        }
        if self.unused > 64 && self.unused > self.bytes.len() / 2 {
            self.compact();
        }
    }

    /// Removes `attribute`; whether it was there. Its value is zeroized.
    pub fn remove(&mut self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        let Ok(i) = self.position(attribute) else {
            return false;
        };
        let (_, at, len) = self.index.remove(i);
        self.bytes[at as usize..(at + len) as usize].zeroize();
        self.unused += len as usize;
        true
    }

    /// The values in attribute order.
    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.index.iter().map(|&(a, at, len)| (a, &self.bytes[at as usize..(at + len) as usize]))
    }

    /// Appends `value`'s bytes to the buffer; where they start.
    fn append(&mut self, value: &[u8]) -> u32 {
        if self.bytes.capacity() - self.bytes.len() < value.len() {
            let wanted = (self.bytes.len() + value.len()).max(2 * self.bytes.capacity()).max(64);
            self.move_to(wanted, false);
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(value);
        u32::try_from(at).expect("an object under 4 GiB")
    }

    /// Moves the values to a new buffer of `capacity` bytes (only the used ones with
    /// `compact`); the old buffer is zeroized as it is dropped.
    fn move_to(&mut self, capacity: usize, compact: bool) {
        let mut fresh = SecretVec::with_capacity(capacity);
        if compact {
            for entry in &mut self.index {
                let (_, at, len) = *entry;
                entry.1 = fresh.len() as u32;
                fresh.extend_from_slice(&self.bytes[at as usize..(at + len) as usize]);
            }
            self.unused = 0;
        } else {
            fresh.extend_from_slice(&self.bytes);
        }
        self.bytes = fresh;
    }

    fn compact(&mut self) {
        let used = self.bytes.len() - self.unused;
        self.move_to(used.max(64), true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_replaced_and_removed_in_attribute_order() {
        let mut v = Values::new();
        assert!(v.is_empty() && v.get(1).is_none());
        v.insert(0x11, b"value");
        v.insert(0x01, &[1]);
        v.insert(0x100, &[]);
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(0x11), Some(&b"value"[..]));
        assert_eq!(v.get(0x100), Some(&[][..]), "an empty value is a value");
        assert!(v.contains(0x100) && !v.contains(0x12));
        // Same length: in place; another length: moved, the old bytes zeroed.
        v.insert(0x11, b"VALUE");
        assert_eq!(v.get(0x11), Some(&b"VALUE"[..]));
        v.insert(0x11, b"longer value");
        assert_eq!(v.get(0x11), Some(&b"longer value"[..]));
        assert!(!v.bytes.windows(5).any(|w| w == b"VALUE"), "the old value does not linger");
        assert_eq!(v.iter().map(|(a, _)| a).collect::<Vec<_>>(), [0x01, 0x11, 0x100]);
        assert!(v.remove(0x01) && !v.remove(0x01));
        assert_eq!(v.get(0x01), None);
        assert_eq!(v.get(0x11), Some(&b"longer value"[..]));
    }

    #[test]
    fn many_changes_keep_every_value_and_reclaim_the_space() {
        let mut v = Values::new();
        let value = |a: u64, round: u64| vec![(a + round) as u8; ((a * 7 + round) % 40) as usize];
        for round in 0..50 {
            for a in 0..30 {
                v.insert(a, &value(a, round));
            }
            for a in 0..30 {
                assert_eq!(v.get(a), Some(&value(a, round)[..]), "attribute {a}, round {round}");
            }
        }
        let live: usize = (0..30).map(|a| value(a, 49).len()).sum();
        assert!(v.bytes.len() <= 3 * live + 64, "{} bytes for {live} live ones", v.bytes.len());
        let copy = v.clone();
        assert_eq!(copy.iter().collect::<Vec<_>>(), v.iter().collect::<Vec<_>>());
    }
}
