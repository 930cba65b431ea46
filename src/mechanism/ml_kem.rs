//! ML-KEM (FIPS 203, PKCS#11 3.2): CKM_ML_KEM_KEY_PAIR_GEN, and CKM_ML_KEM for
//! `C_EncapsulateKey`/`C_DecapsulateKey`.
//!
//! Keys are `CKK_ML_KEM` objects with `CKA_PARAMETER_SET` `CKP_ML_KEM_512`, `_768` or
//! `_1024`; the public key's `CKA_VALUE` is the encapsulation key `ek`, the private key's the
//! decapsulation key `dk` (which holds `ek` and its hash, FIPS 203 algorithm 16). aws-lc-rs
//! neither exports nor imports the seed (d, z) of ML-KEM.KeyGen, so a private key has no
//! `CKA_SEED` here: a template that gives one is refused (`CKR_ATTRIBUTE_VALUE_INVALID`),
//! as the 3.2 text lets a token refuse creation from one of the two values.
//!
//! The shared secret is 32 bytes. A ciphertext of the wrong length is
//! `CKR_ENCRYPTED_DATA_LEN_RANGE`; one of the right length that was not made for the key
//! gives a different secret (ML-KEM's implicit rejection), not an error.

use aws_lc_rs::kem::{self, Ciphertext, DecapsulationKey, EncapsulationKey};
use cryptoki_sys::{CK_ULONG, CKK_ML_KEM, CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_ML_KEM_1024};
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use super::pq::{PqPrivateKey, PqPublicKey};
use crate::{Error, Result};

/// Bytes of the shared secret.
pub const SHARED_SECRET_LEN: usize = 32;
/// The shortest and longest encapsulation keys (`CK_MECHANISM_INFO`'s key sizes, in bytes).
pub const PUBLIC_KEY_LENS: (usize, usize) = (800, 1568);

/// One parameter set: aws-lc-rs's algorithm and FIPS 203's k and ciphertext length.
struct Params {
    algorithm: &'static kem::Algorithm,
    k: usize,
    ciphertext_len: usize,
}

impl Params {
    fn of(parameter_set: CK_ULONG) -> Result<Params> {
        Ok(match parameter_set {
            CKP_ML_KEM_512 => Params { algorithm: &kem::ML_KEM_512, k: 2, ciphertext_len: 768 },
            CKP_ML_KEM_768 => Params { algorithm: &kem::ML_KEM_768, k: 3, ciphertext_len: 1088 },
            CKP_ML_KEM_1024 => Params { algorithm: &kem::ML_KEM_1024, k: 4, ciphertext_len: 1568 },
            _ => return Err(Error::AttributeValueInvalid),
        })
    }

    /// `ek`: 384k + 32 bytes.
    fn ek_len(&self) -> usize {
        384 * self.k + 32
    }

    /// `dk`: `dk_PKE` (384k) ‖ `ek` ‖ H(`ek`) (32) ‖ z (32).
    fn dk_len(&self) -> usize {
        768 * self.k + 96
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

pub fn generate_key_pair(parameter_set: CK_ULONG) -> Result<(PqPublicKey, PqPrivateKey)> {
    let params = Params::of(parameter_set)?;
    let failed = |_| Error::Internal("ML-KEM key generation failed");
    let dk = DecapsulationKey::generate(params.algorithm).map_err(failed)?;
    let ek = dk.encapsulation_key().map_err(failed)?.key_bytes().map_err(failed)?;
    let dk_bytes = dk.key_bytes().map_err(failed)?;
    Ok((
        PqPublicKey { key_type: CKK_ML_KEM, parameter_set, value: ek.as_ref().to_vec() },
        PqPrivateKey {
            key_type: CKK_ML_KEM,
            parameter_set,
            value: Zeroizing::new(dk_bytes.as_ref().to_vec()),
            seed: None,
        },
    ))
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

/// Checks an imported decapsulation key: `dk` of its length whose hash of `ek` is right
/// (FIPS 203 7.3's input check); no seed.
pub fn check_private_key(key: &PqPrivateKey) -> Result<()> {
    let params = Params::of(key.parameter_set)?;
    if key.seed.is_some() {
        return Err(Error::AttributeValueInvalid);
    }
    if key.value.len() != params.dk_len() {
        return Err(Error::KeyTypeInconsistent);
    }
    let ek = &key.value[params.ek_in_dk()];
    let hash = &key.value[params.ek_in_dk().end..params.ek_in_dk().end + 32];
    if aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, ek).as_ref() != hash {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// The encapsulation key inside a decapsulation key.
pub fn public_key(key: &PqPrivateKey) -> Result<Vec<u8>> {
    let params = Params::of(key.parameter_set).map_err(|_| Error::KeyTypeInconsistent)?;
    key.value.get(params.ek_in_dk()).map(<[u8]>::to_vec).ok_or(Error::KeyTypeInconsistent)
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
    let dk = DecapsulationKey::new(params.algorithm, &key.value).map_err(|_| Error::KeyTypeInconsistent)?;
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

    #[test]
    fn imported_keys_are_checked() {
        let (ek, dk) = generate_key_pair(CKP_ML_KEM_512).unwrap();
        let mut tampered = dk.value.clone();
        let at = Params::of(CKP_ML_KEM_512).unwrap().ek_in_dk().start;
        tampered[at] ^= 1;
        let bad =
            PqPrivateKey { key_type: CKK_ML_KEM, parameter_set: CKP_ML_KEM_512, value: tampered, seed: None };
        assert_eq!(check_private_key(&bad), Err(Error::KeyTypeInconsistent));
        let seeded = PqPrivateKey { seed: Some(Zeroizing::new(vec![0; 64])), value: dk.value.clone(), ..bad };
        assert_eq!(check_private_key(&seeded), Err(Error::AttributeValueInvalid));
        let wrong_set = PqPublicKey { parameter_set: CKP_ML_KEM_768, ..ek.clone() };
        assert_eq!(check_public_key(&wrong_set), Err(Error::KeyTypeInconsistent));
        assert_eq!(
            check_public_key(&PqPublicKey { parameter_set: 9, ..ek }),
            Err(Error::AttributeValueInvalid)
        );
        assert_eq!(generate_key_pair(0).err(), Some(Error::AttributeValueInvalid));
    }
}
