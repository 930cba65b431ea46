//! `CKA_CHECK_VALUE` (PKCS #11 3.0): a three-byte fingerprint of a key or certificate, to
//! cross-check a value against another system's copy without revealing it.
//!
//! As the standard defines it per object type: an AES key's is the first three bytes of the
//! AES-ECB encryption of one all-zero block under the key; a generic secret's is the first
//! three bytes of the SHA-1 of its value; a certificate's is the first three bytes of the
//! SHA-1 of its `CKA_VALUE`. SHA-1 is what the standard names here; it fingerprints, it does
//! not protect anything.

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use cryptoki_sys::{CKK_AES, CKK_GENERIC_SECRET, CKM_AES_ECB};

use super::{MechanismParams, SecretKey, aes_modes};
use crate::{Error, Result};

/// The length of every check value.
pub const LEN: usize = 3;

/// The check value of a secret key; `KeyTypeInconsistent` for a key type the standard gives
/// none of here.
pub fn of_secret_key(key: &SecretKey) -> Result<[u8; LEN]> {
    match key.key_type {
        CKK_AES => {
            let mut ecb = aes_modes::cipher(CKM_AES_ECB, &MechanismParams::None, key, true)?;
            let block = ecb.single(&[0; aes_modes::BLOCK_LEN])?;
            first_three(&block)
        }
        CKK_GENERIC_SECRET => first_three(digest(&SHA1_FOR_LEGACY_USE_ONLY, &key.value).as_ref()),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// The check value of a certificate whose `CKA_VALUE` is `value`.
pub fn of_certificate(value: &[u8]) -> [u8; LEN] {
    let hash = digest(&SHA1_FOR_LEGACY_USE_ONLY, value);
    let mut out = [0; LEN];
    out.copy_from_slice(&hash.as_ref()[..LEN]);
    out
}

fn first_three(bytes: &[u8]) -> Result<[u8; LEN]> {
    bytes.get(..LEN).and_then(|b| b.try_into().ok()).ok_or(Error::Internal("check value input too short"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn key(key_type: cryptoki_sys::CK_KEY_TYPE, value: &[u8]) -> SecretKey {
        SecretKey { key_type, value: Zeroizing::new(value.to_vec()) }
    }

    #[test]
    fn aes_check_values_are_the_encrypted_zero_block() {
        // The all-zero key over the all-zero block: 66e94bd4ef8a2c3b884cfa59ca342b2e
        // (AES-128) and dc95c078a2408989ad48a21492842087 (AES-256).
        assert_eq!(of_secret_key(&key(CKK_AES, &[0; 16])).unwrap(), [0x66, 0xe9, 0x4b]);
        assert_eq!(of_secret_key(&key(CKK_AES, &[0; 32])).unwrap(), [0xdc, 0x95, 0xc0]);
        assert!(of_secret_key(&key(CKK_AES, &[0; 15])).is_err());
    }

    #[test]
    fn generic_secret_and_certificate_check_values_are_sha1_prefixes() {
        // SHA-1("abc") = a9993e36...
        assert_eq!(of_secret_key(&key(CKK_GENERIC_SECRET, b"abc")).unwrap(), [0xa9, 0x99, 0x3e]);
        assert_eq!(of_certificate(b"abc"), [0xa9, 0x99, 0x3e]);
        assert_eq!(of_secret_key(&key(cryptoki_sys::CKK_DES3, &[1; 24])), Err(Error::KeyTypeInconsistent));
    }
}
