//! ML-KEM (FIPS 203, PKCS#11 3.2): CKM_ML_KEM_KEY_PAIR_GEN, and CKM_ML_KEM for
//! `C_EncapsulateKey`/`C_DecapsulateKey`.
//!
//! Keys are `CKK_ML_KEM` objects with `CKA_PARAMETER_SET` `CKP_ML_KEM_512`, `_768` or
//! `_1024`; the public key's `CKA_VALUE` is the encapsulation key `ek`, the private key's the
//! decapsulation key `dk` (which holds `ek` and its hash, FIPS 203 algorithm 16), and its
//! `CKA_SEED` the 64-byte seed d ‖ z of ML-KEM.KeyGen when known. Keys are generated from a
//! fresh seed that is kept (the 3.2 text has the mechanism contribute `CKA_SEED`); a key may
//! be imported from its seed, `dk` or both (the seed must then expand to `dk`), and one given
//! by its seed alone is kept with its `dk` too, which every use reads. aws-lc-rs neither takes
//! nor gives the seed, so expanding one goes through AWS-LC's own interface
//! ([`crate::sys::ml_kem_seed`]).
//!
//! The shared secret is 32 bytes. A ciphertext of the wrong length is
//! `CKR_ENCRYPTED_DATA_LEN_RANGE`; one of the right length that was not made for the key
//! gives a different secret (ML-KEM's implicit rejection), not an error.

use aws_lc_rs::kem::{self, Ciphertext, DecapsulationKey, EncapsulationKey};
use cryptoki_sys::{CK_ULONG, CKK_ML_KEM, CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_ML_KEM_1024};
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use super::pq::{PqPrivateKey, PqPublicKey};
use crate::sys::ml_kem_seed::{self, ParameterSet};
use crate::{Error, Result};

/// Bytes of the shared secret.
pub const SHARED_SECRET_LEN: usize = 32;
/// The shortest and longest encapsulation keys (`CK_MECHANISM_INFO`'s key sizes, in bytes).
pub const PUBLIC_KEY_LENS: (usize, usize) = (800, 1568);
/// Bytes of the seed d ‖ z (`CKA_SEED`).
pub const SEED_LEN: usize = ml_kem_seed::SEED_LEN;

/// One parameter set: aws-lc-rs's algorithm, AWS-LC's name of it (for seeds) and FIPS 203's
/// k and ciphertext length.
struct Params {
    algorithm: &'static kem::Algorithm,
    set: ParameterSet,
    k: usize,
    ciphertext_len: usize,
}

impl Params {
    fn of(parameter_set: CK_ULONG) -> Result<Params> {
        let (algorithm, set, k, ciphertext_len) = match parameter_set {
            CKP_ML_KEM_512 => (&kem::ML_KEM_512, ParameterSet::MlKem512, 2, 768),
            CKP_ML_KEM_768 => (&kem::ML_KEM_768, ParameterSet::MlKem768, 3, 1088),
            CKP_ML_KEM_1024 => (&kem::ML_KEM_1024, ParameterSet::MlKem1024, 4, 1568),
            _ => return Err(Error::AttributeValueInvalid),
        };
        Ok(Params { algorithm, set, k, ciphertext_len })
    }

    /// `ek`: 384k + 32 bytes.
    fn ek_len(&self) -> usize {
        self.set.ek_len()
    }

    /// `dk`: `dk_PKE` (384k) ‖ `ek` ‖ H(`ek`) (32) ‖ z (32).
    fn dk_len(&self) -> usize {
        self.set.dk_len()
    }

    /// Where `ek` sits inside `dk`.
    fn ek_in_dk(&self) -> std::ops::Range<usize> {
        384 * self.k..384 * self.k + self.ek_len()
    }
}

/// id-alg-ml-kem-512/768/1024 (NIST CSOR 2.16.840.1.101.3.4.4.1-3).
pub fn oid(parameter_set: CK_ULONG) -> Result<ObjectIdentifier> {
    Ok(match parameter_set {
        CKP_ML_KEM_512 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.1"),
        CKP_ML_KEM_768 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.2"),
        CKP_ML_KEM_1024 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.3"),
        _ => return Err(Error::AttributeValueInvalid),
    })
}

/// Generates a key pair from a fresh seed (FIPS 203's ML-KEM.KeyGen: d and z random), and
/// keeps the seed with `dk`.
pub fn generate_key_pair(parameter_set: CK_ULONG) -> Result<(PqPublicKey, PqPrivateKey)> {
    Params::of(parameter_set)?;
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| Error::Internal("ML-KEM seed generation failed"))?;
    key_pair_from_seed(parameter_set, seed)
}

/// The key pair of `seed` (d ‖ z), the seed kept in the private key. A seed of another
/// length is `Error::AttributeValueInvalid`.
pub fn key_pair_from_seed(
    parameter_set: CK_ULONG,
    seed: Zeroizing<Vec<u8>>,
) -> Result<(PqPublicKey, PqPrivateKey)> {
    let params = Params::of(parameter_set)?;
    if seed.len() != SEED_LEN {
        return Err(Error::AttributeValueInvalid);
    }
    let pair = ml_kem_seed::key_pair_from_seed(params.set, &seed)
        .ok_or(Error::Internal("ML-KEM key generation failed"))?;
    Ok((
        PqPublicKey { key_type: CKK_ML_KEM, parameter_set, value: pair.ek },
        PqPrivateKey { key_type: CKK_ML_KEM, parameter_set, value: pair.dk, seed: Some(seed) },
    ))
}

/// The decapsulation key `dk` of a private key: its value, or what its seed expands to
/// when it has no value.
pub fn expanded_key(key: &PqPrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let params = Params::of(key.parameter_set)?;
    match &key.seed {
        _ if !key.value.is_empty() => Ok(key.value.clone()),
        Some(seed) => expand(&params, seed),
        None => Err(Error::AttributeValueInvalid),
    }
}

/// The `dk` of a seed; a seed of the wrong length is `Error::AttributeValueInvalid`.
fn expand(params: &Params, seed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if seed.len() != SEED_LEN {
        return Err(Error::AttributeValueInvalid);
    }
    ml_kem_seed::key_pair_from_seed(params.set, seed)
        .map(|pair| pair.dk)
        .ok_or(Error::Internal("ML-KEM key generation failed"))
}

/// Checks an imported encapsulation key: a known parameter set and `ek` of its length
/// (FIPS 203's modulus check is AWS-LC's, at encapsulation).
pub fn check_public_key(key: &PqPublicKey) -> Result<()> {
    let params = Params::of(key.parameter_set)?;
    if key.value.len() != params.ek_len() {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// Checks an imported decapsulation key: a seed of 64 bytes (else
/// `Error::AttributeValueInvalid`), or `dk` of its length whose hash of `ek` is right (FIPS
/// 203 7.3's input check), or both, the seed expanding to that `dk`; a `dk` that fails is
/// `Error::KeyTypeInconsistent`.
pub fn check_private_key(key: &PqPrivateKey) -> Result<()> {
    let params = Params::of(key.parameter_set)?;
    let from_seed = key.seed.as_ref().map(|seed| expand(&params, seed)).transpose()?;
    if key.value.is_empty() {
        return from_seed.map(drop).ok_or(Error::AttributeValueInvalid);
    }
    if key.value.len() != params.dk_len() {
        return Err(Error::KeyTypeInconsistent);
    }
    let ek = &key.value[params.ek_in_dk()];
    let hash = &key.value[params.ek_in_dk().end..params.ek_in_dk().end + 32];
    if aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, ek).as_ref() != hash {
        return Err(Error::KeyTypeInconsistent);
    }
    if from_seed.is_some_and(|dk| *dk != *key.value) {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// The encapsulation key inside a decapsulation key.
pub fn public_key(key: &PqPrivateKey) -> Result<Vec<u8>> {
    let params = Params::of(key.parameter_set).map_err(|_| Error::KeyTypeInconsistent)?;
    let dk = expanded_key(key).map_err(|_| Error::KeyTypeInconsistent)?;
    dk.get(params.ek_in_dk()).map(<[u8]>::to_vec).ok_or(Error::KeyTypeInconsistent)
}

/// The length of the ciphertext `encapsulate` makes under `key`.
pub fn ciphertext_len(key: &PqPublicKey) -> Result<usize> {
    if key.key_type != CKK_ML_KEM {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(Params::of(key.parameter_set).map_err(|_| Error::KeyTypeInconsistent)?.ciphertext_len)
}

/// Encapsulates under `key`: the ciphertext and the shared secret.
pub fn encapsulate(key: &PqPublicKey) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    ciphertext_len(key)?;
    check_public_key(key).map_err(|_| Error::KeyTypeInconsistent)?;
    let params = Params::of(key.parameter_set)?;
    let ek = EncapsulationKey::new(params.algorithm, &key.value).map_err(|_| Error::KeyTypeInconsistent)?;
    // AWS-LC refuses an `ek` whose coefficients are not reduced (FIPS 203 7.2's check).
    let (ciphertext, secret) = ek.encapsulate().map_err(|_| Error::KeyTypeInconsistent)?;
    Ok((ciphertext.as_ref().to_vec(), Zeroizing::new(secret.as_ref().to_vec())))
}

/// Decapsulates `ciphertext` under `key`: the shared secret.
pub fn decapsulate(key: &PqPrivateKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if key.key_type != CKK_ML_KEM {
        return Err(Error::KeyTypeInconsistent);
    }
    let params = Params::of(key.parameter_set).map_err(|_| Error::KeyTypeInconsistent)?;
    if ciphertext.len() != params.ciphertext_len {
        return Err(Error::EncryptedDataLenRange);
    }
    let dk = expanded_key(key).map_err(|_| Error::KeyTypeInconsistent)?;
    let dk = DecapsulationKey::new(params.algorithm, &dk).map_err(|_| Error::KeyTypeInconsistent)?;
    let secret = dk
        .decapsulate(Ciphertext::from(ciphertext))
        .map_err(|_| Error::Internal("ML-KEM decapsulation failed"))?;
    Ok(Zeroizing::new(secret.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_parameter_set_agrees_on_a_secret() {
        for (set, ek_len, dk_len, ct_len) in [
            (CKP_ML_KEM_512, 800, 1632, 768),
            (CKP_ML_KEM_768, 1184, 2400, 1088),
            (CKP_ML_KEM_1024, 1568, 3168, 1568),
        ] {
            let (ek, dk) = generate_key_pair(set).unwrap();
            assert_eq!((ek.value.len(), dk.value.len()), (ek_len, dk_len));
            check_public_key(&ek).unwrap();
            check_private_key(&dk).unwrap();
            assert_eq!(public_key(&dk).unwrap(), ek.value);
            assert_eq!(ciphertext_len(&ek).unwrap(), ct_len);
            let (ciphertext, secret) = encapsulate(&ek).unwrap();
            assert_eq!((ciphertext.len(), secret.len()), (ct_len, SHARED_SECRET_LEN));
            assert_eq!(decapsulate(&dk, &ciphertext).unwrap(), secret);
            // Implicit rejection: another ciphertext gives another secret, not an error.
            let mut other = ciphertext.clone();
            other[0] ^= 1;
            assert_ne!(decapsulate(&dk, &other).unwrap(), secret);
            assert_eq!(decapsulate(&dk, &ciphertext[1..]), Err(Error::EncryptedDataLenRange));
        }
    }

    /// aws-lc-rs's own decapsulation agrees with ours: the secret is standard ML-KEM.
    #[test]
    fn aws_lc_decapsulates_what_we_encapsulate() {
        let dk = DecapsulationKey::generate(&kem::ML_KEM_768).unwrap();
        let ek = dk.encapsulation_key().unwrap().key_bytes().unwrap();
        let public =
            PqPublicKey { key_type: CKK_ML_KEM, parameter_set: CKP_ML_KEM_768, value: ek.as_ref().to_vec() };
        let (ciphertext, secret) = encapsulate(&public).unwrap();
        assert_eq!(
            dk.decapsulate(Ciphertext::from(ciphertext.as_slice())).unwrap().as_ref(),
            secret.as_slice()
        );
    }

    /// A generated key keeps its seed, and the seed alone is the same key: it expands to the
    /// same `dk` and `ek`, and decapsulates what was encapsulated to the generated `ek`;
    /// aws-lc-rs, given the expanded `dk`, agrees.
    #[test]
    fn a_generated_key_keeps_its_seed_and_the_seed_alone_is_the_same_key() {
        for set in [CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_ML_KEM_1024] {
            let (ek, dk) = generate_key_pair(set).unwrap();
            let seed = dk.seed.clone().unwrap();
            assert_eq!(seed.len(), SEED_LEN);
            assert_eq!(dk.value[dk.value.len() - 32..], seed[32..], "z ends dk");
            let (again_ek, again_dk) = key_pair_from_seed(set, seed.clone()).unwrap();
            assert_eq!((&again_ek.value, &*again_dk.value), (&ek.value, &*dk.value));

            let seed_only = PqPrivateKey { value: Zeroizing::new(Vec::new()), ..dk.clone() };
            check_private_key(&seed_only).unwrap();
            check_private_key(&dk).unwrap();
            assert_eq!(*expanded_key(&seed_only).unwrap(), *dk.value);
            assert_eq!(public_key(&seed_only).unwrap(), ek.value);
            let (ciphertext, secret) = encapsulate(&ek).unwrap();
            assert_eq!(decapsulate(&seed_only, &ciphertext).unwrap(), secret);
            let theirs = DecapsulationKey::new(Params::of(set).unwrap().algorithm, &dk.value).unwrap();
            assert_eq!(
                theirs.decapsulate(Ciphertext::from(ciphertext.as_slice())).unwrap().as_ref(),
                secret.as_slice()
            );
        }
        // Two generations draw two seeds.
        let (a, b) =
            (generate_key_pair(CKP_ML_KEM_512).unwrap().1, generate_key_pair(CKP_ML_KEM_512).unwrap().1);
        assert_ne!(a.seed, b.seed);
        assert_eq!(
            key_pair_from_seed(CKP_ML_KEM_512, Zeroizing::new(vec![1; 32])).err(),
            Some(Error::AttributeValueInvalid)
        );
        assert_eq!(
            key_pair_from_seed(7, Zeroizing::new(vec![1; 64])).err(),
            Some(Error::AttributeValueInvalid)
        );
    }

    #[test]
    fn imported_keys_are_checked() {
        let (ek, dk) = generate_key_pair(CKP_ML_KEM_512).unwrap();
        let mut tampered = dk.value.clone();
        let at = Params::of(CKP_ML_KEM_512).unwrap().ek_in_dk().start;
        tampered[at] ^= 1;
        let bad =
            PqPrivateKey { key_type: CKK_ML_KEM, parameter_set: CKP_ML_KEM_512, value: tampered, seed: None };
        assert_eq!(check_private_key(&bad), Err(Error::KeyTypeInconsistent));
        // A seed beside a dk it does not expand to; a seed of the wrong length.
        let seeded = PqPrivateKey { seed: Some(Zeroizing::new(vec![0; 64])), value: dk.value.clone(), ..bad };
        assert_eq!(check_private_key(&seeded), Err(Error::KeyTypeInconsistent));
        let short = PqPrivateKey { seed: Some(Zeroizing::new(vec![0; 63])), ..seeded.clone() };
        assert_eq!(check_private_key(&short), Err(Error::AttributeValueInvalid));
        let short_alone = PqPrivateKey { value: Zeroizing::new(Vec::new()), ..short };
        assert_eq!(check_private_key(&short_alone), Err(Error::AttributeValueInvalid));
        assert_eq!(public_key(&short_alone), Err(Error::KeyTypeInconsistent));
        let wrong_set = PqPublicKey { parameter_set: CKP_ML_KEM_768, ..ek.clone() };
        assert_eq!(check_public_key(&wrong_set), Err(Error::KeyTypeInconsistent));
        assert_eq!(
            check_public_key(&PqPublicKey { parameter_set: 9, ..ek }),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(generate_key_pair(0).err(), Some(Error::AttributeValueInvalid));
    }
}
