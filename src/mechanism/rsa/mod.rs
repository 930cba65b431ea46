//! RSA: CKM_RSA_PKCS_KEY_PAIR_GEN; signatures with CKM_RSA_PKCS, CKM_SHA*_RSA_PKCS,
//! CKM_RSA_PKCS_PSS, CKM_SHA*_RSA_PKCS_PSS and CKM_RSA_X_509; encryption with CKM_RSA_PKCS,
//! CKM_RSA_PKCS_OAEP and CKM_RSA_X_509.
//!
//! AWS-LC does the work wherever aws-lc-rs offers it: key generation, PKCS#1 v1.5 and PSS
//! signatures with SHA-256/384/512 (PSS with a salt as long as the hash), verification of those
//! and of PKCS#1 v1.5 SHA-1 signatures, PKCS#1 v1.5 and OAEP (SHA-1/256/384/512) encryption.
//! aws-lc-rs has no raw RSA operation, so the rest — CKM_RSA_X_509, CKM_RSA_PKCS over data that
//! is not a SHA-256/384/512 DigestInfo, SHA-1/SHA-224 PKCS#1 v1.5 signing, SHA-224
//! verification, PSS with SHA-1/SHA-224 or another salt length — is the RSA primitive of the
//! RustCrypto `rsa` crate (constant-time arithmetic, blinded with AWS-LC randomness, checked by
//! re-encryption) with the crate's own PKCS#1 encodings (RFC 8017 §9, `padding.rs`).
//!
//! Files by job: `keys.rs` (sizes, components, checks, generation, the raw primitive),
//! `padding.rs` (the `rsa` crate's signature encodings), `sign.rs` (signing and
//! verification), `cipher.rs` (encryption and decryption), `recover.rs` (sign/verify-recover),
//! `tests.rs` (known answers and refusals; the recover tests sit beside their code).
//!
//! Key sizes: keys of 1024 to 8192 bits import, and verify signatures; signing, encryption
//! and decryption take keys from the process's `rsa_min_bits` (default 2048, see
//! [`set_min_modulus_bits`]). Generation makes keys from `rsa_min_bits` to 4096 bits with
//! e = 65537: AWS-LC's at 2048, 3072 and 4096 bits, the `rsa` crate's at other sizes. AWS-LC
//! takes keys from 2048 bits, so smaller ones use the `rsa` crate's primitive; OAEP, which only AWS-LC offers here, needs 2048 bits. The
//! engine's key is built once per `*_init`. Decryption failures of every kind are one
//! `Error::EncryptedDataInvalid`.

use ::rsa::BoxedUint;
use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeyPairComponents, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    PublicKeyComponents,
};
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaEncoding, RsaParameters};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::encoding::{self, RsaParts, strip_leading_zeros};
use super::prepared::{self, PreparedKeys};
use super::{
    CipherOperation, MechanismParams, OaepParams, PssParams, RsaCrt, RsaPrivateKey, RsaPublicKey,
    SignOperation, VerifyOperation,
};
use crate::{Error, Result};

/// Smallest and largest modulus the module accepts at all, in bits: 1024-bit keys still sign
/// old documents that need checking.
pub const LEGACY_MIN_MODULUS_BITS: u64 = 1024;
pub const MAX_MODULUS_BITS: u64 = 8192;
/// The smallest modulus AWS-LC takes; smaller keys use the `rsa` crate's primitive.
const AWS_MIN_MODULUS_BITS: usize = 2048;

/// The smallest modulus generated or used to sign, encrypt or decrypt (`rsa_min_bits`).
static MIN_MODULUS_BITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2048);

/// Sets the smallest modulus generated or used to sign, encrypt or decrypt, for the process
/// (from the settings' `rsa_min_bits`, at `C_Initialize`); clamped to 1024..=8192.
pub fn set_min_modulus_bits(bits: u64) {
    let bits = bits.clamp(LEGACY_MIN_MODULUS_BITS, MAX_MODULUS_BITS);
    MIN_MODULUS_BITS.store(bits, std::sync::atomic::Ordering::Relaxed);
}

/// The smallest modulus generated or used to sign, encrypt or decrypt.
pub fn min_modulus_bits() -> u64 {
    MIN_MODULUS_BITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A hash as the RSA mechanisms name it: mechanism, MGF1 generator, AWS-LC algorithm and the
/// DER prefix of its PKCS#1 v1.5 DigestInfo.
struct Hash {
    mechanism: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    algorithm: &'static digest::Algorithm,
    digest_info: &'static [u8],
}

const SHA1: Hash = Hash {
    mechanism: CKM_SHA_1,
    mgf: CKG_MGF1_SHA1,
    algorithm: &digest::SHA1_FOR_LEGACY_USE_ONLY,
    digest_info: &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
};
const SHA224: Hash = Hash {
    mechanism: CKM_SHA224,
    mgf: CKG_MGF1_SHA224,
    algorithm: &digest::SHA224,
    digest_info: &[
        0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00,
        0x04, 0x1c,
    ],
};
const SHA256: Hash = Hash {
    mechanism: CKM_SHA256,
    mgf: CKG_MGF1_SHA256,
    algorithm: &digest::SHA256,
    digest_info: &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ],
};
const SHA384: Hash = Hash {
    mechanism: CKM_SHA384,
    mgf: CKG_MGF1_SHA384,
    algorithm: &digest::SHA384,
    digest_info: &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
        0x04, 0x30,
    ],
};
const SHA512: Hash = Hash {
    mechanism: CKM_SHA512,
    mgf: CKG_MGF1_SHA512,
    algorithm: &digest::SHA512,
    digest_info: &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
        0x04, 0x40,
    ],
};
const HASHES: [&Hash; 5] = [&SHA1, &SHA224, &SHA256, &SHA384, &SHA512];

impl Hash {
    fn by_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<&'static Hash> {
        HASHES.into_iter().find(|h| h.mechanism == mechanism)
    }

    fn len(&self) -> usize {
        self.algorithm.output_len()
    }

    /// The hash a DigestInfo names, if `data` is exactly one.
    fn of_digest_info(data: &[u8]) -> Option<&'static Hash> {
        HASHES
            .into_iter()
            .find(|h| data.len() == h.digest_info.len() + h.len() && data.starts_with(h.digest_info))
    }

    /// AWS-LC's PKCS#1 v1.5 signing encoding for this hash, if it has one.
    fn aws_pkcs1_signing(&self) -> Option<&'static dyn RsaEncoding> {
        match self.mechanism {
            CKM_SHA256 => Some(&sig::RSA_PKCS1_SHA256),
            CKM_SHA384 => Some(&sig::RSA_PKCS1_SHA384),
            CKM_SHA512 => Some(&sig::RSA_PKCS1_SHA512),
            _ => None,
        }
    }

    /// AWS-LC's PKCS#1 v1.5 verification parameters for this hash, if it has them.
    fn aws_pkcs1_verification(&self) -> Option<&'static RsaParameters> {
        match self.mechanism {
            CKM_SHA_1 => Some(&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
            CKM_SHA256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            CKM_SHA384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            CKM_SHA512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            _ => None,
        }
    }

    /// AWS-LC's PSS encoding and parameters for this hash with a salt as long as the hash.
    fn aws_pss(&self, salt_len: usize) -> Option<(&'static dyn RsaEncoding, &'static RsaParameters)> {
        if salt_len != self.len() {
            return None;
        }
        match self.mechanism {
            CKM_SHA256 => Some((&sig::RSA_PSS_SHA256, &sig::RSA_PSS_2048_8192_SHA256)),
            CKM_SHA384 => Some((&sig::RSA_PSS_SHA384, &sig::RSA_PSS_2048_8192_SHA384)),
            CKM_SHA512 => Some((&sig::RSA_PSS_SHA512, &sig::RSA_PSS_2048_8192_SHA512)),
            _ => None,
        }
    }

    fn aws_oaep(&self) -> Option<&'static OaepAlgorithm> {
        match self.mechanism {
            CKM_SHA_1 => Some(&OAEP_SHA1_MGF1SHA1),
            CKM_SHA256 => Some(&OAEP_SHA256_MGF1SHA256),
            CKM_SHA384 => Some(&OAEP_SHA384_MGF1SHA384),
            CKM_SHA512 => Some(&OAEP_SHA512_MGF1SHA512),
            _ => None,
        }
    }

    #[cfg(test)]
    fn digest(&self, parts: &[&[u8]]) -> Digest {
        let mut ctx = digest::Context::new(self.algorithm);
        for part in parts {
            ctx.update(part);
        }
        ctx.finish()
    }
}

fn no_params(params: &MechanismParams) -> Result<()> {
    match params {
        MechanismParams::None => Ok(()),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

mod cipher;
mod keys;
mod padding;
mod recover;
mod sign;
#[cfg(test)]
pub(crate) mod tests;

pub use cipher::*;
pub use keys::*;
pub use recover::*;
pub use sign::*;
