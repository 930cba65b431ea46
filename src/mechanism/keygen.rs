//! Secret key generation (CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN, and the HMAC key
//! generations of PKCS#11 3.0, CKM_SHA_1_KEY_GEN ... CKM_SHA512_KEY_GEN and
//! CKM_SHA3_224_KEY_GEN ... CKM_SHA3_512_KEY_GEN, which make keys of the type named for their
//! hash, `CKK_SHA256_HMAC`, `CKK_SHA3_256_HMAC` ...; CKM_HKDF_KEY_GEN, `CKK_HKDF`).
//!
//! Lengths (`CKA_VALUE_LEN`) are bytes; the registry gives the range of the generic secret
//! generation in bits and that of the HMAC key generations in bytes, as the HMAC mechanisms'
//! own ranges are.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{registry, rng};
use crate::{Error, Result};

/// The key type `mechanism` generates.
pub(super) fn key_type_of(mechanism: CK_MECHANISM_TYPE) -> Option<CK_KEY_TYPE> {
    Some(match mechanism {
        CKM_AES_KEY_GEN => CKK_AES,
        CKM_GENERIC_SECRET_KEY_GEN => CKK_GENERIC_SECRET,
        CKM_SHA_1_KEY_GEN => CKK_SHA_1_HMAC,
        CKM_SHA224_KEY_GEN => CKK_SHA224_HMAC,
        CKM_SHA256_KEY_GEN => CKK_SHA256_HMAC,
        CKM_SHA384_KEY_GEN => CKK_SHA384_HMAC,
        CKM_SHA512_KEY_GEN => CKK_SHA512_HMAC,
        CKM_SHA3_224_KEY_GEN => CKK_SHA3_224_HMAC,
        CKM_SHA3_256_KEY_GEN => CKK_SHA3_256_HMAC,
        CKM_SHA3_384_KEY_GEN => CKK_SHA3_384_HMAC,
        CKM_SHA3_512_KEY_GEN => CKK_SHA3_512_HMAC,
        CKM_HKDF_KEY_GEN => CKK_HKDF,
        _ => return None,
    })
}

/// Generates the value of a secret key of `len` bytes with `mechanism`, checking the length
/// against the mechanism's range and the key type it makes.
pub fn generate_secret(
    mechanism: CK_MECHANISM_TYPE,
    key_type: CK_KEY_TYPE,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let info = registry::require(mechanism, CKF_GENERATE)?;
    let expected_type = key_type_of(mechanism).ok_or(Error::MechanismInvalid)?;
    let len_in_range = match mechanism {
        CKM_AES_KEY_GEN => matches!(len, 16 | 24 | 32),
        CKM_GENERIC_SECRET_KEY_GEN => {
            let bits = len as u64 * 8;
            bits >= info.min_key_size && bits <= info.max_key_size
        }
        _ => (info.min_key_size..=info.max_key_size).contains(&(len as u64)),
    };
    if key_type != expected_type {
        return Err(Error::TemplateInconsistent);
    }
    if !len_in_range {
        return Err(Error::KeySizeRange);
    }
    let mut value = Zeroizing::new(vec![0u8; len]);
    rng::fill(&mut value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_types_are_checked() {
        assert_eq!(generate_secret(CKM_AES_KEY_GEN, CKK_AES, 32).unwrap().len(), 32);
        assert_eq!(generate_secret(CKM_AES_KEY_GEN, CKK_AES, 20).unwrap_err(), Error::KeySizeRange);
        assert_eq!(
            generate_secret(CKM_AES_KEY_GEN, CKK_GENERIC_SECRET, 16).unwrap_err(),
            Error::TemplateInconsistent
        );
        assert_eq!(generate_secret(CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, 1).unwrap().len(), 1);
        assert_eq!(
            generate_secret(CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, 513).unwrap_err(),
            Error::KeySizeRange
        );
        assert_eq!(generate_secret(CKM_SHA256_KEY_GEN, CKK_SHA256_HMAC, 32).unwrap().len(), 32);
        assert_eq!(generate_secret(CKM_SHA512_KEY_GEN, CKK_SHA512_HMAC, 512).unwrap().len(), 512);
        assert_eq!(generate_secret(CKM_HKDF_KEY_GEN, CKK_HKDF, 32).unwrap().len(), 32);
        assert_eq!(generate_secret(CKM_SHA3_224_KEY_GEN, CKK_SHA3_224_HMAC, 28).unwrap().len(), 28);
        assert_eq!(generate_secret(CKM_SHA3_512_KEY_GEN, CKK_SHA3_512_HMAC, 1).unwrap().len(), 1);
        assert_eq!(
            generate_secret(CKM_SHA3_256_KEY_GEN, CKK_SHA256_HMAC, 32).unwrap_err(),
            Error::TemplateInconsistent
        );
        assert_eq!(
            generate_secret(CKM_SHA3_384_KEY_GEN, CKK_SHA3_384_HMAC, 513).unwrap_err(),
            Error::KeySizeRange
        );
        assert_eq!(generate_secret(CKM_SHA_1_KEY_GEN, CKK_SHA_1_HMAC, 0).unwrap_err(), Error::KeySizeRange);
        assert_eq!(
            generate_secret(CKM_SHA256_KEY_GEN, CKK_SHA384_HMAC, 32).unwrap_err(),
            Error::TemplateInconsistent
        );
        let a = generate_secret(CKM_AES_KEY_GEN, CKK_AES, 32).unwrap();
        let b = generate_secret(CKM_AES_KEY_GEN, CKK_AES, 32).unwrap();
        assert_ne!(*a, *b);
    }
}
