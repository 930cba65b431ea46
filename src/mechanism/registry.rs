//! The mechanism registry: what the module offers, with truthful key-size ranges and flags.
//! `C_GetMechanismList` and `C_GetMechanismInfo` read this table and nothing else, and every
//! operation's `*Init` checks it, so a mechanism that is not here cannot be used.

use cryptoki_sys::*;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismInfo {
    pub min_key_size: CK_ULONG,
    pub max_key_size: CK_ULONG,
    pub flags: CK_FLAGS,
}

const fn info(min_key_size: CK_ULONG, max_key_size: CK_ULONG, flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo { min_key_size, max_key_size, flags }
}

/// What raw RSA and PKCS#1 v1.5 do: encrypt, decrypt, sign and verify, with recovery too.
const RSA_ALL: CK_FLAGS =
    CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER;

/// What the EC mechanisms support: prime curves named by OID, uncompressed points.
const EC_CURVES: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
/// What the Edwards and Montgomery mechanisms support: curves named by OID or by name
/// (PKCS#11 3.0's `CKF_EC_CURVENAME`).
const EC_25519: CK_FLAGS = CKF_EC_OID | CKF_EC_CURVENAME;

const ML_DSA_KEYS: (CK_ULONG, CK_ULONG) =
    (super::ml_dsa::PUBLIC_KEY_LENS.0 as CK_ULONG, super::ml_dsa::PUBLIC_KEY_LENS.1 as CK_ULONG);
const ML_KEM_KEYS: (CK_ULONG, CK_ULONG) =
    (super::ml_kem::PUBLIC_KEY_LENS.0 as CK_ULONG, super::ml_kem::PUBLIC_KEY_LENS.1 as CK_ULONG);

/// Every ML-DSA signature mechanism: the same key range, sign and verify.
const ML_DSA_SIGNING: MechanismInfo = info(ML_DSA_KEYS.0, ML_DSA_KEYS.1, CKF_SIGN | CKF_VERIFY);

/// Key sizes: bytes for AES and HMAC keys (and the HMAC key generations), bits for generic
/// secret generation, RSA and EC
/// (as the specification defines them); digests take no key.
const REGISTRY: &[(CK_MECHANISM_TYPE, MechanismInfo)] = &[
    (CKM_AES_KEY_GEN, info(16, 32, CKF_GENERATE)),
    (CKM_GENERIC_SECRET_KEY_GEN, info(8, 4096, CKF_GENERATE)),
    (CKM_SHA_1_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA224_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA256_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA384_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA512_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA3_224_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA3_256_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA3_384_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_SHA3_512_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (CKM_HKDF_KEY_GEN, info(1, 512, CKF_GENERATE)),
    (
        CKM_AES_GCM,
        info(
            16,
            32,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
        ),
    ),
    (CKM_AES_ECB, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT)),
    (CKM_AES_CBC, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT)),
    (CKM_AES_CBC_PAD, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_AES_CTR, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT)),
    (CKM_AES_KEY_WRAP, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_AES_KEY_WRAP_PAD, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_AES_KEY_WRAP_KWP, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_AES_KEY_WRAP_PKCS7, info(16, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_AES_CMAC, info(16, 32, CKF_SIGN | CKF_VERIFY)),
    (CKM_AES_CMAC_GENERAL, info(16, 32, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA_1_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA224_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA256_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA384_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA512_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA_1_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA224_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA256_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA384_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA512_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_224_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_256_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_384_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_512_HMAC, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_224_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_256_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_384_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA3_512_HMAC_GENERAL, info(1, 512, CKF_SIGN | CKF_VERIFY)),
    // RSA: generation from `rsa_min_bits` (see `mechanism_info`); 1024-bit keys verify, and
    // serve the other functions where `rsa_min_bits` allows (OAEP below 2048 bits by the
    // `rsa` crate, AWS-LC's from 2048).
    (CKM_RSA_PKCS_KEY_PAIR_GEN, info(1024, 4096, CKF_GENERATE_KEY_PAIR)),
    (CKM_RSA_PKCS, info(1024, 8192, RSA_ALL | CKF_WRAP | CKF_UNWRAP)),
    (CKM_RSA_PKCS_OAEP, info(1024, 8192, CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)),
    (CKM_RSA_X_509, info(1024, 8192, RSA_ALL)),
    (CKM_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA1_RSA_PKCS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA224_RSA_PKCS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA256_RSA_PKCS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA384_RSA_PKCS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA512_RSA_PKCS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA1_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA224_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA256_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA384_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_SHA512_RSA_PKCS_PSS, info(1024, 8192, CKF_SIGN | CKF_VERIFY)),
    (CKM_EC_KEY_PAIR_GEN, info(256, 521, CKF_GENERATE_KEY_PAIR | EC_CURVES)),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, info(255, 255, CKF_GENERATE_KEY_PAIR | EC_25519)),
    (CKM_EDDSA, info(255, 255, CKF_SIGN | CKF_VERIFY | EC_25519)),
    (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, info(255, 255, CKF_GENERATE_KEY_PAIR | EC_25519)),
    // ML-DSA and ML-KEM (PKCS#11 3.2): key sizes are the public key's length in bytes.
    (CKM_ML_DSA_KEY_PAIR_GEN, info(ML_DSA_KEYS.0, ML_DSA_KEYS.1, CKF_GENERATE_KEY_PAIR)),
    (CKM_ML_DSA, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA224, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA256, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA384, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA512, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA3_224, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA3_256, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA3_384, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHA3_512, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHAKE128, ML_DSA_SIGNING),
    (CKM_HASH_ML_DSA_SHAKE256, ML_DSA_SIGNING),
    (CKM_ML_KEM_KEY_PAIR_GEN, info(ML_KEM_KEYS.0, ML_KEM_KEYS.1, CKF_GENERATE_KEY_PAIR)),
    (CKM_ML_KEM, info(ML_KEM_KEYS.0, ML_KEM_KEYS.1, CKF_ENCAPSULATE | CKF_DECAPSULATE)),
    (CKM_ECDSA, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDSA_SHA1, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDSA_SHA224, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDSA_SHA256, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDSA_SHA384, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDSA_SHA512, info(256, 521, CKF_SIGN | CKF_VERIFY | EC_CURVES)),
    (CKM_ECDH1_DERIVE, info(255, 521, CKF_DERIVE | EC_CURVES | EC_25519)),
    (CKM_CONCATENATE_BASE_AND_KEY, info(0, 0, CKF_DERIVE)),
    (CKM_CONCATENATE_BASE_AND_DATA, info(0, 0, CKF_DERIVE)),
    (CKM_CONCATENATE_DATA_AND_BASE, info(0, 0, CKF_DERIVE)),
    (CKM_XOR_BASE_AND_DATA, info(0, 0, CKF_DERIVE)),
    (CKM_EXTRACT_KEY_FROM_KEY, info(0, 0, CKF_DERIVE)),
    (CKM_AES_ECB_ENCRYPT_DATA, info(16, 32, CKF_DERIVE)),
    (CKM_AES_CBC_ENCRYPT_DATA, info(16, 32, CKF_DERIVE)),
    (CKM_HKDF_DERIVE, info(1, 512, CKF_DERIVE)),
    (CKM_HKDF_DATA, info(1, 512, CKF_DERIVE)),
    (CKM_SP800_108_COUNTER_KDF, info(1, 512, CKF_DERIVE)),
    (CKM_SP800_108_FEEDBACK_KDF, info(1, 512, CKF_DERIVE)),
    (CKM_SHA_1, info(0, 0, CKF_DIGEST)),
    (CKM_SHA224, info(0, 0, CKF_DIGEST)),
    (CKM_SHA256, info(0, 0, CKF_DIGEST)),
    (CKM_SHA384, info(0, 0, CKF_DIGEST)),
    (CKM_SHA512, info(0, 0, CKF_DIGEST)),
    (CKM_SHA3_224, info(0, 0, CKF_DIGEST)),
    (CKM_SHA3_256, info(0, 0, CKF_DIGEST)),
    (CKM_SHA3_384, info(0, 0, CKF_DIGEST)),
    (CKM_SHA3_512, info(0, 0, CKF_DIGEST)),
];

/// The key type a key-pair generation mechanism makes (`C_GenerateKeyPair`);
/// `CKR_MECHANISM_INVALID` for any other mechanism.
pub fn key_pair_type(mechanism: CK_MECHANISM_TYPE) -> Result<CK_KEY_TYPE> {
    require(mechanism, CKF_GENERATE_KEY_PAIR)?;
    Ok(match mechanism {
        CKM_RSA_PKCS_KEY_PAIR_GEN => CKK_RSA,
        CKM_EC_KEY_PAIR_GEN => CKK_EC,
        CKM_EC_EDWARDS_KEY_PAIR_GEN => CKK_EC_EDWARDS,
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN => CKK_EC_MONTGOMERY,
        CKM_ML_DSA_KEY_PAIR_GEN => CKK_ML_DSA,
        CKM_ML_KEM_KEY_PAIR_GEN => CKK_ML_KEM,
        _ => return Err(Error::MechanismInvalid),
    })
}

/// The key type a secret-key generation mechanism makes (`C_GenerateKey`);
/// `CKR_MECHANISM_INVALID` for any other mechanism.
pub fn secret_key_type(mechanism: CK_MECHANISM_TYPE) -> Result<CK_KEY_TYPE> {
    require(mechanism, CKF_GENERATE)?;
    super::keygen::key_type_of(mechanism).ok_or(Error::MechanismInvalid)
}

/// Every mechanism the module offers, in a stable order.
pub fn mechanism_list() -> Vec<CK_MECHANISM_TYPE> {
    REGISTRY.iter().map(|(m, _)| *m).collect()
}

pub fn mechanism_info(mechanism: CK_MECHANISM_TYPE) -> Result<MechanismInfo> {
    let mut info =
        REGISTRY.iter().find(|(m, _)| *m == mechanism).map(|(_, i)| *i).ok_or(Error::MechanismInvalid)?;
    if mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN {
        // The settings decide the smallest key generated (`rsa_min_bits`, 2048 by default).
        info.min_key_size = info.min_key_size.max(super::rsa::min_modulus_bits() as CK_ULONG);
    }
    Ok(info)
}

/// Fails with `CKR_MECHANISM_INVALID` unless `mechanism` is registered for `function`.
pub fn require(mechanism: CK_MECHANISM_TYPE, function: CK_FLAGS) -> Result<MechanismInfo> {
    let info = mechanism_info(mechanism)?;
    if info.flags & function == 0 {
        return Err(Error::MechanismInvalid);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_listed_once_and_has_a_function() {
        let list = mechanism_list();
        for m in &list {
            assert_eq!(list.iter().filter(|x| *x == m).count(), 1);
            assert_ne!(mechanism_info(*m).unwrap().flags, 0);
        }
    }

    #[test]
    fn unknown_or_misused_mechanisms_are_invalid() {
        assert_eq!(mechanism_info(CKM_VENDOR_DEFINED), Err(Error::MechanismInvalid));
        assert_eq!(require(CKM_SHA256, CKF_ENCRYPT), Err(Error::MechanismInvalid));
        assert!(require(CKM_AES_GCM, CKF_DECRYPT).is_ok());
    }
}
