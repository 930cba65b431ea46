//! Post-quantum keys of PKCS#11 3.2: what ML-DSA ([`super::ml_dsa`]) and ML-KEM
//! ([`super::ml_kem`]) keys have in common, and the dispatch between the two families.
//!
//! Both key types carry `CKA_PARAMETER_SET` (`CKP_ML_DSA_44`... or `CKP_ML_KEM_512`...) and,
//! as `CKA_VALUE`, the key in the encoding of FIPS 204/203: the public key (`pk`, `ek`) of a
//! public key object, the expanded private key (`sk`, `dk`) of a private key object. A private
//! key may carry its seed as `CKA_SEED` too (ML-DSA's 32-byte ξ, ML-KEM's 64-byte d ‖ z; this
//! module keeps it for the keys it generates). An ML-KEM key given by its seed alone is kept
//! with its `dk` as well ([`expanded_value_to_keep`]); an ML-DSA key is kept as given.

use cryptoki_sys::{CK_KEY_TYPE, CK_ULONG, CKK_ML_DSA, CKK_ML_KEM};
use der::Encode;
use der::asn1::{BitStringRef, ObjectIdentifier};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// An ML-DSA or ML-KEM public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PqPublicKey {
    pub key_type: CK_KEY_TYPE,
    pub parameter_set: CK_ULONG,
    /// The public key as FIPS 204 (`pk`) or FIPS 203 (`ek`) encodes it.
    pub value: Vec<u8>,
}

/// An ML-DSA or ML-KEM private key: the expanded key, the seed, or both (at least one).
/// Not `Clone` outside tests, so that no copy of the secret is made by accident.
#[cfg_attr(test, derive(Clone))]
pub struct PqPrivateKey {
    pub key_type: CK_KEY_TYPE,
    pub parameter_set: CK_ULONG,
    /// The expanded private key (`sk`, `dk`); empty when only the seed is known.
    pub value: Zeroizing<Vec<u8>>,
    /// The seed (`CKA_SEED`) when known: ML-DSA's ξ, ML-KEM's d ‖ z.
    pub seed: Option<Zeroizing<Vec<u8>>>,
}

/// Generates a key pair of `key_type` (`CKK_ML_DSA` or `CKK_ML_KEM`) for `parameter_set`;
/// a parameter set the family does not have is `Error::AttributeValueInvalid`.
pub fn generate_key_pair(
    key_type: CK_KEY_TYPE,
    parameter_set: CK_ULONG,
) -> Result<(PqPublicKey, PqPrivateKey)> {
    match key_type {
        CKK_ML_DSA => super::ml_dsa::generate_key_pair(parameter_set),
        CKK_ML_KEM => super::ml_kem::generate_key_pair(parameter_set),
        _ => Err(Error::MechanismInvalid),
    }
}

/// Checks an imported public key: a known parameter set and a value of its length.
pub fn check_public_key(key: &PqPublicKey) -> Result<()> {
    match key.key_type {
        CKK_ML_DSA => super::ml_dsa::check_public_key(key),
        CKK_ML_KEM => super::ml_kem::check_public_key(key),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// Checks an imported private key: a known parameter set, values of its lengths, and a seed
/// that gives the expanded key given beside it.
pub fn check_private_key(key: &PqPrivateKey) -> Result<()> {
    match key.key_type {
        CKK_ML_DSA => super::ml_dsa::check_private_key(key),
        CKK_ML_KEM => super::ml_kem::check_private_key(key),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// The expanded key to store beside a private key given by its seed alone: an ML-KEM key's
/// `dk`, which every use of the key reads (and which a seed expands to in one keygen); `None`
/// for a key that has its value, and for ML-DSA keys, which are kept as given. A seed that
/// expands to no key is `Error::AttributeValueInvalid`.
pub fn expanded_value_to_keep(key: &PqPrivateKey) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if key.key_type != CKK_ML_KEM || !key.value.is_empty() {
        return Ok(None);
    }
    super::ml_kem::expanded_key(key).map(Some).map_err(|_| Error::AttributeValueInvalid)
}

/// The SubjectPublicKeyInfo of a public key, for `CKA_PUBLIC_KEY_INFO`: the parameter set's
/// OID without parameters and the raw key as the bit string (the IETF LAMPS profiles of
/// ML-DSA and ML-KEM in X.509).
pub fn public_key_info(key: &PqPublicKey) -> Result<Vec<u8>> {
    let oid = match key.key_type {
        CKK_ML_DSA => super::ml_dsa::oid(key.parameter_set)?,
        CKK_ML_KEM => super::ml_kem::oid(key.parameter_set)?,
        _ => return Err(Error::KeyTypeInconsistent),
    };
    spki(oid, &key.value)
}

/// The public half of a private key (for its `CKA_PUBLIC_KEY_INFO`), where the private key
/// gives it: an ML-DSA key does; an ML-KEM key kept as `dk` holds `ek` inside it.
pub fn public_of(key: &PqPrivateKey) -> Result<PqPublicKey> {
    let value = match key.key_type {
        CKK_ML_DSA => super::ml_dsa::public_key(key)?,
        CKK_ML_KEM => super::ml_kem::public_key(key)?,
        _ => return Err(Error::KeyTypeInconsistent),
    };
    Ok(PqPublicKey { key_type: key.key_type, parameter_set: key.parameter_set, value })
}

fn spki(oid: ObjectIdentifier, key: &[u8]) -> Result<Vec<u8>> {
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters: None },
        subject_public_key: BitStringRef::from_bytes(key).map_err(|_| Error::AttributeValueInvalid)?,
    };
    info.to_der().map_err(|_| Error::AttributeValueInvalid)
}
