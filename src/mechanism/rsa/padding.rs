//! The PKCS#1 signature encodings (RFC 8017 §9: EMSA-PKCS1-v1_5, and EMSA-PSS with MGF1)
//! for what AWS-LC does not sign or verify here: keys below 2048 bits, SHA-1 and SHA-224
//! PKCS#1 v1.5 signing, PSS with SHA-1/SHA-224 or a salt other than the hash's length, and
//! CKM_RSA_PKCS over data that is not a SHA-2 DigestInfo; and RSAES-OAEP (RFC 8017 §7.1)
//! with keys below 2048 bits, which AWS-LC does not take. The `rsa` crate's own `pkcs1v15`,
//! `pss` and `oaep` do the encoding around its constant-time primitive, blinded with AWS-LC
//! randomness; padding is security code this project does not keep a copy of.

use ::rsa::oaep;
use ::rsa::pss::Pss;
use ::rsa::sha2::digest::{Digest, FixedOutputReset};
use ::rsa::sha2::{Sha224, Sha256, Sha384, Sha512};
use ::rsa::traits::{RandomizedDecryptor, RandomizedEncryptor};
use ::rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use cryptoki_sys::*;

use super::keys::AwsLcRng;
use crate::{Error, Result};

/// A signing failure: an input too long for the modulus is `Error::DataLenRange`.
fn sign_error(e: ::rsa::Error) -> Error {
    match e {
        ::rsa::Error::MessageTooLong | ::rsa::Error::InputNotHashed => Error::DataLenRange,
        _ => Error::Internal("RSA signing failed"),
    }
}

/// EMSA-PKCS1-v1_5 signature of `prefix ‖ data` (a DigestInfo's prefix and the hash, or an
/// empty prefix and CKM_RSA_PKCS's raw data).
pub(super) fn pkcs1_sign(key: &PrivateKey, prefix: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let scheme = Pkcs1v15Sign { hash_len: None, prefix: prefix.into() };
    key.sign_with_rng(&mut AwsLcRng, scheme, data).map_err(sign_error)
}

/// Whether `signature` is the EMSA-PKCS1-v1_5 signature of `prefix ‖ data`.
pub(super) fn pkcs1_verify(key: &PublicKey, prefix: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let scheme = Pkcs1v15Sign { hash_len: None, prefix: prefix.into() };
    key.verify(scheme, data, signature).is_ok()
}

/// Runs `$body` with `$d` the RustCrypto digest type of the hash mechanism `$hash`; the
/// table of mechanisms and types is the second rule's input.
macro_rules! with_digest {
    ($hash:expr, $d:ident => $body:expr) => {
        with_digest!(@table $hash, $d, $body, [
            CKM_SHA_1 => sha1::Sha1,
            CKM_SHA224 => Sha224,
            CKM_SHA256 => Sha256,
            CKM_SHA384 => Sha384,
            CKM_SHA512 => Sha512,
        ])
    };
    (@table $hash:expr, $d:ident, $body:expr, [$($mechanism:ident => $digest:ty,)*]) => {
        match $hash {
            $($mechanism => {
                type $d = $digest;
                $body
            })*
            _ => return Err(Error::MechanismParamInvalid),
        }
    };
}

fn pss<D: Digest>(salt_len: usize) -> Pss<D> {
    Pss::new_with_salt(salt_len)
}

/// EMSA-PSS signature (MGF1 with the same hash) of the hash `m_hash`, with a fresh salt of
/// `salt_len` bytes.
pub(super) fn pss_sign(
    key: &PrivateKey,
    hash: CK_MECHANISM_TYPE,
    salt_len: usize,
    m_hash: &[u8],
) -> Result<Vec<u8>> {
    fn sign<D: Digest + FixedOutputReset>(
        key: &PrivateKey,
        salt_len: usize,
        m_hash: &[u8],
    ) -> Result<Vec<u8>> {
        key.sign_with_rng(&mut AwsLcRng, pss::<D>(salt_len), m_hash).map_err(sign_error)
    }
    with_digest!(hash, D => sign::<D>(key, salt_len, m_hash))
}

/// Whether `signature` is an EMSA-PSS signature of the hash `m_hash` with a salt of exactly
/// `salt_len` bytes.
pub(super) fn pss_verify(
    key: &PublicKey,
    hash: CK_MECHANISM_TYPE,
    salt_len: usize,
    m_hash: &[u8],
    signature: &[u8],
) -> Result<bool> {
    fn verify<D: Digest + FixedOutputReset>(
        key: &PublicKey,
        salt_len: usize,
        m_hash: &[u8],
        signature: &[u8],
    ) -> bool {
        key.verify(pss::<D>(salt_len), m_hash, signature).is_ok()
    }
    Ok(with_digest!(hash, D => verify::<D>(key, salt_len, m_hash, signature)))
}

/// RSAES-OAEP encryption of `message` with `hash` for OAEP and MGF1 and the `label`.
pub(super) fn oaep_encrypt(
    key: &PublicKey,
    hash: CK_MECHANISM_TYPE,
    label: &[u8],
    message: &[u8],
) -> Result<Vec<u8>> {
    with_digest!(hash, D => {
        oaep::EncryptingKey::<D>::new_with_label(key.clone(), label.to_vec())
            .encrypt_with_rng(&mut AwsLcRng, message)
            .map_err(|_| Error::DataLenRange)
    })
}

/// RSAES-OAEP decryption; every failure is the one opaque `Error::EncryptedDataInvalid`.
pub(super) fn oaep_decrypt(
    key: &PrivateKey,
    hash: CK_MECHANISM_TYPE,
    label: &[u8],
    ciphertext: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    with_digest!(hash, D => {
        oaep::DecryptingKey::<D>::new_with_label(key.clone(), label.to_vec())
            .decrypt_with_rng(&mut AwsLcRng, ciphertext)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| Error::EncryptedDataInvalid)
    })
}
