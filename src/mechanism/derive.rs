//! Key derivation from a secret base key (`C_DeriveKey`): the simple derivations of
//! PKCS#11 3.0 (CKM_CONCATENATE_BASE_AND_KEY, _BASE_AND_DATA, _DATA_AND_BASE,
//! CKM_XOR_BASE_AND_DATA, CKM_EXTRACT_KEY_FROM_KEY), encryption of data under an AES base key
//! (CKM_AES_ECB_ENCRYPT_DATA, CKM_AES_CBC_ENCRYPT_DATA), and dispatch to HKDF
//! ([`super::hkdf`]) and the SP 800-108 KDFs ([`super::sp800_108`]).
//!
//! The derived key is the leftmost `len` bytes of what the mechanism produces; asking for
//! more than it produces is `CKR_TEMPLATE_INCONSISTENT`. The module passes the base key's
//! protection on where the output could reveal it ([`propagates_protection`]): a copy (XOR
//! with zeros, a concatenation with nothing) must not be a way to read a sensitive key.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{Mechanism, MechanismParams, SecretKey, aes_modes, hkdf, sp800_108};
use crate::{Error, Result};

/// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`: the IV and the data to encrypt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CbcDataParams {
    pub iv: [u8; 16],
    pub data: Vec<u8>,
}

/// A parameter that is one native-endian `CK_ULONG` (`CK_OBJECT_HANDLE`, `CK_EXTRACT_PARAMS`).
fn ulong_param(params: &MechanismParams) -> Result<CK_ULONG> {
    let MechanismParams::Opaque(bytes) = params else {
        return Err(Error::MechanismParamInvalid);
    };
    let raw: [u8; size_of::<CK_ULONG>()] =
        bytes.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?;
    Ok(CK_ULONG::from_ne_bytes(raw))
}

/// The object a derivation's parameter names besides the base key (the second key of
/// CKM_CONCATENATE_BASE_AND_KEY, an HKDF salt key): the caller fetches it, checked for
/// derivation like the base key, and passes it to [`super::derive_with`].
pub fn other_key(mechanism: &Mechanism) -> Result<Option<CK_OBJECT_HANDLE>> {
    match (mechanism.kind, &mechanism.params) {
        (CKM_CONCATENATE_BASE_AND_KEY, params) => ulong_param(params).map(Some),
        // The salt is ignored without extraction, its key too.
        (CKM_HKDF_DERIVE | CKM_HKDF_DATA, MechanismParams::Hkdf(p)) if p.extract => Ok(p.salt_key()),
        _ => Ok(None),
    }
}

/// Whether the derived key must inherit the base key's `CKA_SENSITIVE` (true) and
/// `CKA_EXTRACTABLE` (false). PKCS#11 3.0 states it for the simple derivations, whose output
/// holds the base key's bits (a concatenation with nothing, an XOR with zeros, an extraction
/// would otherwise copy a sensitive key out). The module applies it to the AES encrypt-data
/// derivations too, the safer choice: they would otherwise be an encryption oracle of a key
/// that may not encrypt. HKDF and SP 800-108 are one-way, and the standard leaves their
/// keys' sensitivity to the template, as for ECDH.
pub fn propagates_protection(mechanism: CK_MECHANISM_TYPE) -> bool {
    matches!(
        mechanism,
        CKM_CONCATENATE_BASE_AND_KEY
            | CKM_CONCATENATE_BASE_AND_DATA
            | CKM_CONCATENATE_DATA_AND_BASE
            | CKM_XOR_BASE_AND_DATA
            | CKM_EXTRACT_KEY_FROM_KEY
            | CKM_AES_ECB_ENCRYPT_DATA
            | CKM_AES_CBC_ENCRYPT_DATA
    )
}

/// The length of the key when the template names none (see [`super::natural_derive_len`]).
pub(super) fn natural_len(
    mechanism: &Mechanism,
    base: &SecretKey,
    other: Option<&SecretKey>,
) -> Option<usize> {
    let base_len = base.value.len();
    match (mechanism.kind, &mechanism.params) {
        (CKM_CONCATENATE_BASE_AND_KEY, _) => other.map(|o| base_len + o.value.len()),
        (CKM_CONCATENATE_BASE_AND_DATA | CKM_CONCATENATE_DATA_AND_BASE, MechanismParams::Data(d)) => {
            Some(base_len + d.len())
        }
        (CKM_XOR_BASE_AND_DATA, MechanismParams::Data(d)) => Some(base_len.min(d.len())),
        (CKM_AES_ECB_ENCRYPT_DATA, MechanismParams::Data(d)) => Some(d.len()),
        (CKM_AES_CBC_ENCRYPT_DATA, MechanismParams::CbcData(p)) => Some(p.data.len()),
        (CKM_HKDF_DERIVE | CKM_HKDF_DATA, MechanismParams::Hkdf(p)) => p.natural_len(),
        _ => None,
    }
}

/// Derives `len` bytes from the secret `base` (and `other`, see [`other_key`]).
pub(super) fn secret(
    mechanism: &Mechanism,
    base: &SecretKey,
    other: Option<&SecretKey>,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let params = &mechanism.params;
    let data = || match params {
        MechanismParams::Data(d) => Ok(d.as_slice()),
        _ => Err(Error::MechanismParamInvalid),
    };
    let produced: Zeroizing<Vec<u8>> = match mechanism.kind {
        CKM_CONCATENATE_BASE_AND_KEY => {
            let other = other.ok_or(Error::MechanismParamInvalid)?;
            Zeroizing::new([base.value.as_slice(), &other.value].concat())
        }
        CKM_CONCATENATE_BASE_AND_DATA => Zeroizing::new([base.value.as_slice(), data()?].concat()),
        CKM_CONCATENATE_DATA_AND_BASE => Zeroizing::new([data()?, base.value.as_slice()].concat()),
        CKM_XOR_BASE_AND_DATA => Zeroizing::new(base.value.iter().zip(data()?).map(|(k, d)| k ^ d).collect()),
        CKM_EXTRACT_KEY_FROM_KEY => return extract(base, ulong_param(params)?, len),
        CKM_AES_ECB_ENCRYPT_DATA => {
            let produced = encrypt_data(CKM_AES_ECB, &MechanismParams::None, base, data()?)?;
            return leftmost(long_enough(produced, len)?, len);
        }
        CKM_AES_CBC_ENCRYPT_DATA => {
            let MechanismParams::CbcData(p) = params else {
                return Err(Error::MechanismParamInvalid);
            };
            let produced = encrypt_data(CKM_AES_CBC, &MechanismParams::Iv(p.iv.to_vec()), base, &p.data)?;
            return leftmost(long_enough(produced, len)?, len);
        }
        CKM_HKDF_DERIVE | CKM_HKDF_DATA => {
            let MechanismParams::Hkdf(p) = params else {
                return Err(Error::MechanismParamInvalid);
            };
            return hkdf::derive(p, base, other, len);
        }
        CKM_SP800_108_COUNTER_KDF | CKM_SP800_108_FEEDBACK_KDF => {
            let MechanismParams::Kbkdf(p) = params else {
                return Err(Error::MechanismParamInvalid);
            };
            return sp800_108::derive(mechanism.kind, p, base, len);
        }
        _ => return Err(Error::MechanismInvalid),
    };
    leftmost(produced, len)
}

/// The leftmost `len` bytes of a derivation's output.
fn leftmost(mut produced: Zeroizing<Vec<u8>>, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len == 0 || len > produced.len() {
        return Err(Error::TemplateInconsistent);
    }
    produced.truncate(len);
    Ok(produced)
}

/// The encrypted data of CKM_AES_*_ENCRYPT_DATA, if it is at least the `len` bytes the
/// template asks for: shorter data is a parameter too short for the key
/// (`CKR_MECHANISM_PARAM_INVALID`, as SoftHSMv2 answers and python-pkcs11's suite expects),
/// not a template at fault.
fn long_enough(produced: Zeroizing<Vec<u8>>, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len > produced.len() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(produced)
}

/// CKM_AES_ECB_ENCRYPT_DATA / CKM_AES_CBC_ENCRYPT_DATA: the data, a whole number of blocks,
/// encrypted under the AES base key without padding.
fn encrypt_data(
    cipher: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    base: &SecretKey,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return Err(Error::MechanismParamInvalid);
    }
    let mut op = aes_modes::cipher(cipher, params, base, true)?;
    op.single(data)
}

/// CKM_EXTRACT_KEY_FROM_KEY: `len` bytes of the base key's bits starting at bit `first`,
/// bits numbered from the most significant bit of the first byte, wrapping around to the
/// start. The key cannot be longer than the base key.
fn extract(base: &SecretKey, first: CK_ULONG, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let bits = base.value.len() * 8;
    if len == 0 || len > base.value.len() {
        return Err(Error::TemplateInconsistent);
    }
    let first = usize::try_from(first).ok().filter(|f| *f < bits).ok_or(Error::MechanismParamInvalid)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    for j in 0..len * 8 {
        let i = (first + j) % bits;
        let bit = (base.value[i / 8] >> (7 - i % 8)) & 1;
        out[j / 8] |= bit << (7 - j % 8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key_type: CK_KEY_TYPE, value: &[u8]) -> SecretKey {
        SecretKey { key_type, value: Zeroizing::new(value.to_vec()) }
    }

    fn mech(kind: CK_MECHANISM_TYPE, params: MechanismParams) -> Mechanism {
        Mechanism { kind, params }
    }

    use crate::mechanism::test_vectors::unhex as hex;

    #[test]
    fn simple_derivations() {
        let base = key(CKK_GENERIC_SECRET, &[1, 2, 3, 4]);
        let other = key(CKK_GENERIC_SECRET, &[9, 8]);
        let data = MechanismParams::Data(vec![0xf0, 0x0f, 0xff]);
        let handle = MechanismParams::Opaque(7u64.to_ne_bytes()[..size_of::<CK_ULONG>()].to_vec());
        let concat_key = mech(CKM_CONCATENATE_BASE_AND_KEY, handle);
        assert_eq!(other_key(&concat_key).unwrap(), Some(7));
        assert_eq!(natural_len(&concat_key, &base, Some(&other)), Some(6));
        assert_eq!(*secret(&concat_key, &base, Some(&other), 6).unwrap(), [1, 2, 3, 4, 9, 8]);
        assert_eq!(*secret(&concat_key, &base, Some(&other), 5).unwrap(), [1, 2, 3, 4, 9]);
        assert_eq!(secret(&concat_key, &base, Some(&other), 7).err(), Some(Error::TemplateInconsistent));
        assert_eq!(secret(&concat_key, &base, None, 6).err(), Some(Error::MechanismParamInvalid));
        let m = mech(CKM_CONCATENATE_BASE_AND_DATA, data.clone());
        assert_eq!(*secret(&m, &base, None, 7).unwrap(), [1, 2, 3, 4, 0xf0, 0x0f, 0xff]);
        let m = mech(CKM_CONCATENATE_DATA_AND_BASE, data.clone());
        assert_eq!(*secret(&m, &base, None, 7).unwrap(), [0xf0, 0x0f, 0xff, 1, 2, 3, 4]);
        let m = mech(CKM_XOR_BASE_AND_DATA, data.clone());
        assert_eq!(natural_len(&m, &base, None), Some(3));
        assert_eq!(*secret(&m, &base, None, 3).unwrap(), [0xf1, 0x0d, 0xfc]);
        assert_eq!(secret(&m, &base, None, 4).err(), Some(Error::TemplateInconsistent));
        assert_eq!(
            secret(&mech(CKM_XOR_BASE_AND_DATA, MechanismParams::None), &base, None, 3).err(),
            Some(Error::MechanismParamInvalid)
        );
        assert_eq!(
            secret(&mech(CKM_SHA256, MechanismParams::None), &base, None, 3).err(),
            Some(Error::MechanismInvalid)
        );
    }

    /// The example of PKCS#11's CKM_EXTRACT_KEY_FROM_KEY: from 0x329F84A9, 16 bits starting at
    /// bit 21 wrap around to 0x9526.
    #[test]
    fn extract_key_from_key() {
        let base = key(CKK_GENERIC_SECRET, &[0x32, 0x9f, 0x84, 0xa9]);
        let at = |bit: u64| MechanismParams::Opaque(bit.to_ne_bytes()[..size_of::<CK_ULONG>()].to_vec());
        let m = mech(CKM_EXTRACT_KEY_FROM_KEY, at(21));
        assert_eq!(*secret(&m, &base, None, 2).unwrap(), [0x95, 0x26]);
        assert_eq!(*secret(&mech(CKM_EXTRACT_KEY_FROM_KEY, at(0)), &base, None, 4).unwrap(), *base.value);
        assert_eq!(*secret(&mech(CKM_EXTRACT_KEY_FROM_KEY, at(8)), &base, None, 1).unwrap(), [0x9f]);
        assert_eq!(secret(&m, &base, None, 5).err(), Some(Error::TemplateInconsistent));
        assert_eq!(
            secret(&mech(CKM_EXTRACT_KEY_FROM_KEY, at(32)), &base, None, 1).err(),
            Some(Error::MechanismParamInvalid)
        );
        assert_eq!(natural_len(&m, &base, None), None);
    }

    /// FIPS 197 C.1 / SP 800-38A F.2.1: ECB and CBC encryption of known blocks.
    #[test]
    fn aes_encrypt_data() {
        let aes = key(CKK_AES, &hex("000102030405060708090a0b0c0d0e0f"));
        let m =
            mech(CKM_AES_ECB_ENCRYPT_DATA, MechanismParams::Data(hex("00112233445566778899aabbccddeeff")));
        assert_eq!(*secret(&m, &aes, None, 16).unwrap(), hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
        assert_eq!(*secret(&m, &aes, None, 8).unwrap(), hex("69c4e0d86a7b0430"));
        // A key longer than the data: the data is too short a parameter for it.
        assert_eq!(secret(&m, &aes, None, 32).err(), Some(Error::MechanismParamInvalid));
        let sp = key(CKK_AES, &hex("2b7e151628aed2a6abf7158809cf4f3c"));
        let m = mech(
            CKM_AES_CBC_ENCRYPT_DATA,
            MechanismParams::CbcData(CbcDataParams {
                iv: hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap(),
                data: hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"),
            }),
        );
        assert_eq!(
            *secret(&m, &sp, None, 32).unwrap(),
            hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")
        );
        // Data that is not whole blocks; a base key that is not AES.
        let bad = mech(CKM_AES_ECB_ENCRYPT_DATA, MechanismParams::Data(vec![0; 15]));
        assert_eq!(secret(&bad, &aes, None, 15).err(), Some(Error::MechanismParamInvalid));
        let generic = key(CKK_GENERIC_SECRET, &[0; 16]);
        let m = mech(CKM_AES_ECB_ENCRYPT_DATA, MechanismParams::Data(vec![0; 16]));
        assert_eq!(secret(&m, &generic, None, 16).err(), Some(Error::KeyTypeInconsistent));
    }
}
