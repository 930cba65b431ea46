//! HKDF (RFC 5869) as PKCS#11 3.0's CKM_HKDF_DERIVE and CKM_HKDF_DATA: extract, expand, or
//! both, with the HMAC of SHA-1, SHA-256, SHA-384 or SHA-512 (`prfHashMechanism`), a salt
//! that is absent (`CKF_HKDF_SALT_NULL`: a hash length of zeros), given
//! (`CKF_HKDF_SALT_DATA`) or the value of a key (`CKF_HKDF_SALT_KEY`), and the info string.
//!
//! Extract and expand are AWS-LC's; extract alone outputs the pseudorandom key, which
//! aws-lc-rs keeps inside its `Prk`, so it is computed as RFC 5869 defines it, the HMAC of
//! the input keyed with the salt. SHA-224 has no HKDF in aws-lc-rs:
//! `CKR_MECHANISM_PARAM_INVALID`.

use aws_lc_rs::{hkdf, hmac};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::SecretKey;
use crate::{Error, Result};

/// The salt of a `CK_HKDF_PARAMS`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HkdfSalt {
    Null,
    Data(Vec<u8>),
    /// A key's handle, fetched by the caller ([`super::derive::other_key`]).
    Key(CK_OBJECT_HANDLE),
}

/// `CK_HKDF_PARAMS`, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HkdfParams {
    pub extract: bool,
    pub expand: bool,
    pub prf: CK_MECHANISM_TYPE,
    pub salt: HkdfSalt,
    pub info: Vec<u8>,
}

impl HkdfParams {
    /// The salt key's handle, if the salt is a key.
    pub fn salt_key(&self) -> Option<CK_OBJECT_HANDLE> {
        match self.salt {
            HkdfSalt::Key(handle) => Some(handle),
            _ => None,
        }
    }

    /// Extract alone gives a key as long as the hash; expansion's length is the caller's.
    pub(super) fn natural_len(&self) -> Option<usize> {
        match (self.extract, self.expand, algorithms(self.prf)) {
            (true, false, Ok((_, h))) => Some(h.digest_algorithm().output_len()),
            _ => None,
        }
    }
}

fn algorithms(prf: CK_MECHANISM_TYPE) -> Result<(hkdf::Algorithm, hmac::Algorithm)> {
    Ok(match prf {
        CKM_SHA_1 => (hkdf::HKDF_SHA1_FOR_LEGACY_USE_ONLY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        CKM_SHA256 => (hkdf::HKDF_SHA256, hmac::HMAC_SHA256),
        CKM_SHA384 => (hkdf::HKDF_SHA384, hmac::HMAC_SHA384),
        CKM_SHA512 => (hkdf::HKDF_SHA512, hmac::HMAC_SHA512),
        _ => return Err(Error::MechanismParamInvalid),
    })
}

/// An output length for aws-lc-rs's `expand`.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives `len` bytes from the input key `ikm` (the base key) and, with a salt key, its
/// value `salt_key`. Expansion gives 1 to 255 hash lengths; extraction alone exactly the
/// hash's length. Other lengths are `Error::TemplateInconsistent`.
pub fn derive(
    params: &HkdfParams,
    ikm: &SecretKey,
    salt_key: Option<&SecretKey>,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let (algorithm, mac) = algorithms(params.prf)?;
    let hash_len = mac.digest_algorithm().output_len();
    // The standard has the salt ignored without extraction, and the info without expansion.
    let salt: &[u8] = match (&params.salt, salt_key) {
        _ if !params.extract => &[],
        (HkdfSalt::Null, None) => &[],
        (HkdfSalt::Data(d), None) if !d.is_empty() => d,
        (HkdfSalt::Key(_), Some(k)) => &k.value,
        _ => return Err(Error::MechanismParamInvalid),
    };
    let max_len = if params.expand { 255 * hash_len } else { hash_len };
    if len == 0 || len > max_len || (!params.expand && len != hash_len) {
        return Err(Error::TemplateInconsistent);
    }
    let failed = |_| Error::Internal("HKDF failed");
    let mut out = Zeroizing::new(vec![0u8; len]);
    match (params.extract, params.expand) {
        (true, true) => {
            let prk = hkdf::Salt::new(algorithm, salt).extract(&ikm.value);
            prk.expand(&[&params.info], Len(len)).map_err(failed)?.fill(&mut out).map_err(failed)?;
        }
        (false, true) => {
            let prk = hkdf::Prk::new_less_safe(algorithm, &ikm.value);
            prk.expand(&[&params.info], Len(len)).map_err(failed)?.fill(&mut out).map_err(failed)?;
        }
        (true, false) => {
            // An absent salt is a hash length of zeros, which HMAC pads an empty key to.
            let tag = hmac::sign(&hmac::Key::new(mac, salt), &ikm.value);
            // (The info, if any, is ignored, as the standard says.)
            out.copy_from_slice(tag.as_ref());
        }
        (false, false) => return Err(Error::MechanismParamInvalid),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mechanism::test_vectors::unhex as hex;

    fn key(value: &[u8]) -> SecretKey {
        SecretKey { key_type: CKK_GENERIC_SECRET, value: Zeroizing::new(value.to_vec()) }
    }

    fn params(extract: bool, expand: bool, salt: HkdfSalt, info: &[u8]) -> HkdfParams {
        HkdfParams { extract, expand, prf: CKM_SHA256, salt, info: info.to_vec() }
    }

    /// RFC 5869 A.1 (SHA-256, test case 1) and A.3 (no salt, no info).
    #[test]
    fn known_answers_rfc5869() {
        let ikm = key(&[0x0b; 22]);
        let salt = HkdfSalt::Data(hex("000102030405060708090a0b0c"));
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        let okm = hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
        assert_eq!(*derive(&params(true, true, salt.clone(), &info), &ikm, None, 42).unwrap(), okm);
        let extract = params(true, false, salt.clone(), &[]);
        assert_eq!(extract.natural_len(), Some(32));
        assert_eq!(*derive(&extract, &ikm, None, 32).unwrap(), prk);
        assert_eq!(*derive(&params(false, true, HkdfSalt::Null, &info), &key(&prk), None, 42).unwrap(), okm);
        // The salt as a key's value.
        let salt_key = key(&hex("000102030405060708090a0b0c"));
        let with_key = params(true, true, HkdfSalt::Key(5), &info);
        assert_eq!(with_key.salt_key(), Some(5));
        assert_eq!(*derive(&with_key, &ikm, Some(&salt_key), 42).unwrap(), okm);

        let okm3 =
            hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
        assert_eq!(*derive(&params(true, true, HkdfSalt::Null, &[]), &ikm, None, 42).unwrap(), okm3);
    }

    #[test]
    fn bad_parameters_and_lengths() {
        let ikm = key(&[1; 32]);
        let ok = params(true, true, HkdfSalt::Null, b"i");
        assert_eq!(derive(&ok, &ikm, None, 0).err(), Some(Error::TemplateInconsistent));
        assert_eq!(derive(&ok, &ikm, None, 255 * 32 + 1).err(), Some(Error::TemplateInconsistent));
        assert_eq!(derive(&ok, &ikm, None, 255 * 32).unwrap().len(), 255 * 32);
        let none = params(false, false, HkdfSalt::Null, b"");
        assert_eq!(derive(&none, &ikm, None, 32).err(), Some(Error::MechanismParamInvalid));
        let sha224 = HkdfParams { prf: CKM_SHA224, ..ok.clone() };
        assert_eq!(derive(&sha224, &ikm, None, 32).err(), Some(Error::MechanismParamInvalid));
        let empty_salt = params(true, true, HkdfSalt::Data(vec![]), b"");
        assert_eq!(derive(&empty_salt, &ikm, None, 32).err(), Some(Error::MechanismParamInvalid));
        let missing_key = params(true, true, HkdfSalt::Key(3), b"");
        assert_eq!(derive(&missing_key, &ikm, None, 32).err(), Some(Error::MechanismParamInvalid));
        // Salt without extraction and info without expansion are ignored.
        let expand_only = derive(&params(false, true, HkdfSalt::Null, b"i"), &ikm, None, 32).unwrap();
        let with_salt = derive(&params(false, true, HkdfSalt::Data(vec![1]), b"i"), &ikm, None, 32).unwrap();
        assert_eq!(*expand_only, *with_salt);
        let extract_only = derive(&params(true, false, HkdfSalt::Null, b""), &ikm, None, 32).unwrap();
        let with_info = derive(&params(true, false, HkdfSalt::Null, b"info"), &ikm, None, 32).unwrap();
        assert_eq!(*extract_only, *with_info);
        let extract_len = params(true, false, HkdfSalt::Null, b"");
        assert_eq!(derive(&extract_len, &ikm, None, 16).err(), Some(Error::TemplateInconsistent));
    }
}
