//! A buffer of secret bytes (input an operation holds between calls), zeroized on drop.
//!
//! `zeroize::Zeroizing<Vec<u8>>` does the same but zeroizes even a buffer that never
//! allocated: a `memset` of no bytes at the dangling pointer of an empty `Vec`, which glibc's
//! AVX-512 `memset` performs as a masked store to an unmapped address — a microcode assist
//! of some 60 ns on this project's reference machine, a tenth of a whole 1 KiB AES-GCM
//! encryption through PKCS#11. Single-part operations never fill their buffer, so this one
//! skips the zeroizing when nothing was ever allocated.

use zeroize::Zeroize;

use crate::{Error, Result};

/// The most input a multi-part operation holds between calls, and the most one update of a
/// cipher takes in one call (64 MiB). A caller's length beyond it is refused before its
/// buffer is read: the operation could not hold it, and a length that large with a buffer
/// far shorter would otherwise have the module read (and copy) memory the caller never
/// gave it. Streaming callers pass their data in parts far smaller than this.
pub const MAX_HELD_INPUT: usize = 64 << 20;

/// What an update may still bring to an operation holding `held` bytes.
pub fn room_after(held: usize) -> usize {
    MAX_HELD_INPUT.saturating_sub(held)
}

#[derive(Default)]
pub struct SecretBuffer(Vec<u8>);

impl SecretBuffer {
    pub fn new() -> SecretBuffer {
        SecretBuffer(Vec::new())
    }

    /// Appends `input`, or refuses with `too_long` (the caller's length-range error)
    /// when the buffer would then hold more than [`MAX_HELD_INPUT`]; nothing is kept then.
    pub fn append(&mut self, input: &[u8], too_long: Error) -> Result<()> {
        if input.len() > room_after(self.0.len()) {
            return Err(too_long);
        }
        self.0.extend_from_slice(input);
        Ok(())
    }

    /// What an update may still bring (see [`MAX_HELD_INPUT`]).
    pub fn room(&self) -> usize {
        room_after(self.0.len())
    }

    /// The bytes, leaving the buffer empty; the caller holds them as secret.
    pub fn take(&mut self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(std::mem::take(&mut self.0))
    }
}

/// Drops secret bytes an operation returned; an empty one that never allocated (the output
/// of an update that holds its input back) is let go without the zeroizing call, which
/// would cost the assist described above at every such update. Nothing is leaked: there
/// is no allocation to free and no byte to zero.
pub fn discard(bytes: zeroize::Zeroizing<Vec<u8>>) {
    if bytes.capacity() == 0 {
        std::mem::forget(bytes);
    }
}

impl std::ops::Deref for SecretBuffer {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for SecretBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for SecretBuffer {
    fn drop(&mut self) {
        if self.0.capacity() > 0 {
            self.0.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_bytes_and_hands_them_over() {
        let mut b = SecretBuffer::new();
        b.extend_from_slice(b"secret");
        assert_eq!(b.as_slice(), b"secret");
        let taken = b.take();
        assert_eq!(taken.as_slice(), b"secret");
        assert!(b.is_empty() && b.capacity() == 0);
    }

    #[test]
    fn refuses_to_hold_more_than_the_cap_and_keeps_what_it_had() {
        let mut b = SecretBuffer::new();
        b.append(b"abc", Error::DataLenRange).unwrap();
        assert_eq!(b.room(), MAX_HELD_INPUT - 3);
        let big = vec![0u8; MAX_HELD_INPUT - 2];
        assert_eq!(b.append(&big, Error::EncryptedDataLenRange), Err(Error::EncryptedDataLenRange));
        assert_eq!(b.as_slice(), b"abc", "a refused part is not kept");
        b.append(&big[..MAX_HELD_INPUT - 3], Error::DataLenRange).unwrap();
        assert_eq!(b.room(), 0);
    }
}
