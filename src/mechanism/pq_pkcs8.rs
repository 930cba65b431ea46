//! ML-DSA and ML-KEM private keys as PKCS#8, the form `C_WrapKey` encrypts and
//! `C_UnwrapKey` reads (PKCS#11 3.2, "Wrapping/unwrapping private keys").
//!
//! The 3.2 text names the algorithm identifiers (id-ml-dsa-44/65/87, id-alg-ml-kem-512/768/
//! 1024, without parameters) and lets the private key be "encoded with a seed, a value, or
//! both", leaving which one a token writes to the token. The encodings are those of the IETF
//! profiles (RFC 9881 for ML-DSA, RFC 9935 for ML-KEM), the `privateKey` OCTET STRING holding
//! a CHOICE of
//!
//! - `seed [0] IMPLICIT OCTET STRING` (ML-DSA's ξ, 32 bytes; ML-KEM's d ‖ z, 64 bytes),
//! - `expandedKey OCTET STRING` (`sk`, `dk`), or
//! - `both SEQUENCE { seed OCTET STRING, expandedKey OCTET STRING }`.
//!
//! What this module writes: an ML-DSA key that keeps its seed (every key it generated) as
//! `both`, so that a token that can only expand seeds and one that can only take expanded
//! keys (the 3.2 text warns that either may refuse the other form) both read it; a key
//! without its seed as `expandedKey`. The same for ML-KEM: keys generated here keep their
//! seed d ‖ z and leave as `both`; a key imported as `dk` alone leaves as `expandedKey`.
//!
//! What it reads: all three, for both families; with `both`, the seed must expand to the key
//! given. An ML-KEM seed alone is expanded (AWS-LC's deterministic key generation, see
//! `ml_kem.rs`) and the key kept with both. Every refusal is `Error::WrappedKeyInvalid`, as
//! any other key that does not parse.

use cryptoki_sys::{
    CK_ULONG, CKK_ML_DSA, CKK_ML_KEM, CKP_ML_DSA_44, CKP_ML_DSA_65, CKP_ML_DSA_87, CKP_ML_KEM_512,
    CKP_ML_KEM_768, CKP_ML_KEM_1024,
};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use pkcs8::PrivateKeyInfoRef;
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use super::pq::PqPrivateKey;
use super::{ml_dsa, ml_kem};
use crate::{Error, Result};

/// The key type and parameter set an algorithm identifier names, if it names one of these.
fn parameter_set_of(oid: &ObjectIdentifier) -> Option<(cryptoki_sys::CK_KEY_TYPE, CK_ULONG)> {
    let sets = [
        (CKK_ML_DSA, CKP_ML_DSA_44),
        (CKK_ML_DSA, CKP_ML_DSA_65),
        (CKK_ML_DSA, CKP_ML_DSA_87),
        (CKK_ML_KEM, CKP_ML_KEM_512),
        (CKK_ML_KEM, CKP_ML_KEM_768),
        (CKK_ML_KEM, CKP_ML_KEM_1024),
    ];
    sets.into_iter().find(|(key_type, set)| oid_of(*key_type, *set).is_ok_and(|o| o == *oid))
}

fn oid_of(key_type: cryptoki_sys::CK_KEY_TYPE, parameter_set: CK_ULONG) -> Result<ObjectIdentifier> {
    match key_type {
        CKK_ML_DSA => ml_dsa::oid(parameter_set),
        CKK_ML_KEM => ml_kem::oid(parameter_set),
        _ => Err(Error::KeyNotWrappable),
    }
}

/// Whether `oid` is an ML-DSA or ML-KEM algorithm identifier (so that `from_pkcs8` is the
/// reader to ask).
pub fn is_pq_algorithm(oid: &ObjectIdentifier) -> bool {
    parameter_set_of(oid).is_some()
}

/// The PKCS#8 `PrivateKeyInfo` of `key`, in the form the module comment gives.
pub fn to_pkcs8(key: &PqPrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let oid = oid_of(key.key_type, key.parameter_set).map_err(|_| Error::KeyNotWrappable)?;
    let inner = Zeroizing::new(private_key_choice(key).map_err(|_| Error::KeyNotWrappable)?);
    let info = PrivateKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters: None },
        private_key: OctetStringRef::new(&inner).map_err(|_| Error::KeyNotWrappable)?,
        public_key: None,
    };
    info.to_der().map(Zeroizing::new).map_err(|_| Error::KeyNotWrappable)
}

/// The `privateKey` CHOICE of `key`: `both`, `expandedKey` or `seed`, as it has them.
fn private_key_choice(key: &PqPrivateKey) -> der::Result<Vec<u8>> {
    match (&key.seed, key.value.is_empty()) {
        (Some(seed), false) => [OctetStringRef::new(seed)?, OctetStringRef::new(&key.value)?].to_der(),
        (None, false) => OctetStringRef::new(&key.value)?.to_der(),
        (Some(seed), true) => implicit_seed(seed),
        (None, true) => Err(Tag::OctetString.value_error().into()),
    }
}

/// `seed [0] IMPLICIT OCTET STRING`: an OCTET STRING's encoding with its tag replaced by the
/// context-specific primitive tag 0 (implicit tagging changes the tag alone).
fn implicit_seed(seed: &[u8]) -> der::Result<Vec<u8>> {
    let mut der = OctetStringRef::new(seed)?.to_der()?;
    // Class context-specific (0b10), primitive, number 0.
    der[0] = 0x80;
    Ok(der)
}

/// The seed and the expanded key of a `privateKey` CHOICE (either may be absent, not both).
type SeedAndValue = (Option<Zeroizing<Vec<u8>>>, Zeroizing<Vec<u8>>);

fn choice(private_key: &[u8]) -> Option<SeedAndValue> {
    let owned = |b: &[u8]| Zeroizing::new(b.to_vec());
    let any = AnyRef::from_der(private_key).ok()?;
    match any.tag() {
        Tag::ContextSpecific { constructed: false, number: TagNumber(0) } => {
            Some((Some(owned(any.value())), Zeroizing::new(Vec::new())))
        }
        Tag::OctetString => Some((None, owned(any.value()))),
        Tag::Sequence => {
            let (seed, value) = any
                .sequence(|r| der::Result::Ok((<&OctetStringRef>::decode(r)?, <&OctetStringRef>::decode(r)?)))
                .ok()?;
            Some((Some(owned(seed.as_bytes())), owned(value.as_bytes())))
        }
        _ => None,
    }
}

/// The ML-DSA or ML-KEM key of a `PrivateKeyInfo` whose algorithm is one of theirs
/// ([`is_pq_algorithm`]), checked as an imported key is; `Error::WrappedKeyInvalid` if it is
/// none this module takes.
pub fn from_pkcs8(info: &PrivateKeyInfoRef<'_>) -> Result<PqPrivateKey> {
    const INVALID: Error = Error::WrappedKeyInvalid;
    let (key_type, parameter_set) = parameter_set_of(&info.algorithm.oid).ok_or(INVALID)?;
    if info.algorithm.parameters.is_some() || info.public_key.is_some() {
        return Err(INVALID);
    }
    let (seed, value) = choice(info.private_key.as_bytes()).ok_or(INVALID)?;
    let mut key = PqPrivateKey { key_type, parameter_set, value, seed };
    super::pq::check_private_key(&key).map_err(|_| INVALID)?;
    if let Some(value) = super::pq::expanded_value_to_keep(&key).map_err(|_| INVALID)? {
        key.value = value;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{KeyPair, ML_DSA_65_SIGNING, PqdsaKeyPair};

    fn read(der: &[u8]) -> Result<PqPrivateKey> {
        from_pkcs8(&PrivateKeyInfoRef::from_der(der).map_err(|_| Error::WrappedKeyInvalid)?)
    }

    /// The three forms round-trip, and AWS-LC (which reads all three, checking `both`)
    /// finds the same key in each; AWS-LC's own PKCS#8 (the seed form) reads back here.
    #[test]
    fn ml_dsa_forms_round_trip_and_agree_with_aws_lc() {
        let (public, key) = ml_dsa::generate_key_pair(CKP_ML_DSA_65).unwrap();
        let seed_only = PqPrivateKey { value: Zeroizing::new(Vec::new()), ..key.clone() };
        let value_only = PqPrivateKey { seed: None, ..key.clone() };
        for (k, first_inner_byte) in [(&key, 0x30), (&seed_only, 0x80), (&value_only, 0x04)] {
            let der = to_pkcs8(k).unwrap();
            let info = PrivateKeyInfoRef::from_der(&der).unwrap();
            assert_eq!(info.private_key.as_bytes()[0], first_inner_byte);
            let back = read(&der).unwrap();
            assert_eq!((back.key_type, back.parameter_set), (CKK_ML_DSA, CKP_ML_DSA_65));
            assert_eq!(back.seed, k.seed);
            assert_eq!(*back.value, *k.value);
            let theirs = PqdsaKeyPair::from_pkcs8(&ML_DSA_65_SIGNING, &der).unwrap();
            assert_eq!(theirs.public_key().as_ref(), public.value.as_slice());
        }
        let theirs = PqdsaKeyPair::from_seed(&ML_DSA_65_SIGNING, key.seed.as_ref().unwrap()).unwrap();
        let back = read(theirs.to_pkcs8v1().unwrap().as_ref()).unwrap();
        assert_eq!(back.seed, key.seed);
        assert_eq!(ml_dsa::public_key(&back).unwrap(), public.value);
    }

    /// RFC 9935's example ML-KEM-768 key (`tests/fixtures/rfc9935_ml_kem_keys.txt`): its `dk`,
    /// of the seed 00 01 … 3f.
    fn rfc9935_ml_kem_768_dk() -> Vec<u8> {
        let examples = include_str!("../../tests/fixtures/rfc9935_ml_kem_keys.txt");
        let line = examples.lines().find(|l| l.starts_with("768 ")).unwrap();
        hex::decode(line.split(' ').nth(2).unwrap()).unwrap()
    }

    /// The three forms of ML-KEM round-trip; a generated key (which keeps its seed) leaves as
    /// `both`, one without its seed as `expandedKey`; a seed alone is expanded and kept with
    /// its `dk` (RFC 9935's example seed gives the RFC's `dk`).
    #[test]
    fn ml_kem_forms_round_trip_and_a_seed_alone_is_expanded() {
        let (_, key) = ml_kem::generate_key_pair(CKP_ML_KEM_768).unwrap();
        let value_only = PqPrivateKey { seed: None, ..key.clone() };
        let seed_only = PqPrivateKey { value: Zeroizing::new(Vec::new()), ..key.clone() };
        for (k, first_inner_byte) in [(&key, 0x30), (&value_only, 0x04), (&seed_only, 0x80)] {
            let der = to_pkcs8(k).unwrap();
            let info = PrivateKeyInfoRef::from_der(&der).unwrap();
            assert_eq!(info.private_key.as_bytes()[0], first_inner_byte);
            assert_eq!(info.algorithm.oid, ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.2"));
            let back = read(&der).unwrap();
            assert_eq!((back.key_type, back.parameter_set), (CKK_ML_KEM, CKP_ML_KEM_768));
            assert_eq!(*back.value, *key.value, "always kept with dk");
            assert_eq!(back.seed, k.seed);
        }

        let rfc_seed: Vec<u8> = (0..64).collect();
        let rfc_key = PqPrivateKey {
            key_type: CKK_ML_KEM,
            parameter_set: CKP_ML_KEM_768,
            value: Zeroizing::new(Vec::new()),
            seed: Some(Zeroizing::new(rfc_seed.clone())),
        };
        let back = read(&to_pkcs8(&rfc_key).unwrap()).unwrap();
        assert_eq!(*back.value, rfc9935_ml_kem_768_dk());
        assert_eq!(back.seed.as_deref(), Some(&rfc_seed));
    }

    #[test]
    fn ml_kem_seeds_that_do_not_fit_are_refused() {
        let (_, key) = ml_kem::generate_key_pair(CKP_ML_KEM_768).unwrap();
        let refused = |k: &PqPrivateKey| read(&to_pkcs8(k).unwrap()).err();
        // Both, with a seed of another key: another d (z, the end of dk, still matching), or
        // another z.
        for at in [0, 63] {
            let mut seed = key.seed.clone().unwrap();
            seed[at] ^= 1;
            assert_eq!(
                refused(&PqPrivateKey { seed: Some(seed), ..key.clone() }),
                Some(Error::WrappedKeyInvalid)
            );
        }
        // A seed of 63 or 65 bytes, alone or beside dk.
        for len in [63, 65] {
            let seed = Some(Zeroizing::new(vec![5; len]));
            let alone = PqPrivateKey { seed: seed.clone(), value: Zeroizing::new(Vec::new()), ..key.clone() };
            assert_eq!(refused(&alone), Some(Error::WrappedKeyInvalid), "{len} alone");
            assert_eq!(
                refused(&PqPrivateKey { seed, ..key.clone() }),
                Some(Error::WrappedKeyInvalid),
                "{len}"
            );
        }
        // A dk whose ek no longer matches its hash (from byte 1152 of an ML-KEM-768 dk).
        let mut tampered = key.value.to_vec();
        tampered[1200] ^= 1;
        let tampered = PqPrivateKey { seed: None, value: Zeroizing::new(tampered), ..key.clone() };
        assert_eq!(refused(&tampered), Some(Error::WrappedKeyInvalid));
    }

    #[test]
    fn malformed_or_mismatched_keys_are_refused() {
        let (_, key) = ml_dsa::generate_key_pair(CKP_ML_DSA_44).unwrap();
        let der = to_pkcs8(&key).unwrap();
        // A seed that does not give the expanded key beside it.
        let mut other = key.clone();
        other.seed = Some(Zeroizing::new(vec![7; 32]));
        assert_eq!(read(&to_pkcs8(&other).unwrap()).err(), Some(Error::WrappedKeyInvalid));
        // Another parameter set's identifier on this key.
        let mut relabelled = key.clone();
        relabelled.parameter_set = CKP_ML_DSA_87;
        assert_eq!(read(&to_pkcs8(&relabelled).unwrap()).err(), Some(Error::WrappedKeyInvalid));
        // Truncated, and a seed of the wrong length.
        assert!(PrivateKeyInfoRef::from_der(&der[..der.len() - 1]).is_err());
        let short_seed = PqPrivateKey {
            seed: Some(Zeroizing::new(vec![1; 31])),
            value: Zeroizing::new(Vec::new()),
            ..key.clone()
        };
        assert_eq!(read(&to_pkcs8(&short_seed).unwrap()).err(), Some(Error::WrappedKeyInvalid));
        assert_eq!(
            to_pkcs8(&PqPrivateKey { seed: None, value: Zeroizing::new(Vec::new()), ..key.clone() }).err(),
            Some(Error::KeyNotWrappable)
        );
        assert!(!is_pq_algorithm(&ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1")));
    }
}
