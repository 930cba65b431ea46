//! The PIN key-derivation function: PBKDF2-HMAC-SHA256 (SP 800-132), whose iteration count is
//! stored beside each wrapped token key so that a change of the configured cost applies to
//! PINs set afterwards and never locks out an existing one.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use zeroize::Zeroizing;

use crate::{Error, Result};

pub const SALT_LEN: usize = 16;

pub fn derive(pin: &[u8], salt: &[u8], iterations: u32) -> Result<Zeroizing<[u8; 32]>> {
    let iterations = NonZeroU32::new(iterations).ok_or(Error::Internal("zero KDF iterations"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, pin, out.as_mut_slice());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7914 section 11 test vector for PBKDF2-HMAC-SHA256 ("passwd", "salt", c = 1).
    #[test]
    fn known_answer() {
        let key = derive(b"passwd", b"salt", 1).unwrap();
        assert_eq!(key[..4], [0x55, 0xac, 0x04, 0x6e]);
        assert_ne!(*derive(b"passwd", b"salt", 2).unwrap(), *key);
    }
}
