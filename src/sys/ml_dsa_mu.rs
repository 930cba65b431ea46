//! ML-DSA signing and verification of an external mu (FIPS 204 Algorithms 7 and 8 from line
//! 6 on), and the hashes HashML-DSA pre-hashes with, through AWS-LC's `EVP_PKEY` and `EVP_MD`
//! interfaces.
//!
//! aws-lc-rs signs pure ML-DSA with an empty context only. AWS-LC's `EVP_PKEY_sign` and
//! `EVP_PKEY_verify` take mu = SHAKE256(tr || M', 64) instead of the message, so a caller
//! that builds M' itself (a context string, or HashML-DSA's pre-hash) gets every variant of
//! FIPS 204 from the same engine; no cryptography is written here, only the calls. Signing
//! through `EVP_PKEY_sign` is hedged (AWS-LC draws the 32 random bytes of `rnd` itself).
//! FIPS 204's deterministic variant (`rnd` = 32 zero bytes, Algorithm 2 line 5) goes to
//! AWS-LC's `ml_dsa_extmu_{44,65,87}_sign_internal`, the entry points its own ACVP tests
//! sign with: exported by the library aws-lc-sys builds but declared in a header aws-lc-sys
//! does not bind, so they are declared here under that build's symbol prefix. Keys and
//! contexts are freed on drop (AWS-LC cleanses a private key as it frees it); the private
//! key bytes handed in stay the caller's, in its zeroizing buffer, and the copy read back
//! for a deterministic signature is wiped when it is done.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use zeroize::Zeroizing;

use aws_lc_sys::{
    EVP_DigestFinal_ex, EVP_DigestFinalXOF, EVP_DigestInit_ex, EVP_DigestUpdate, EVP_MD, EVP_MD_CTX,
    EVP_MD_CTX_free, EVP_MD_CTX_new, EVP_PKEY, EVP_PKEY_CTX, EVP_PKEY_CTX_free, EVP_PKEY_CTX_new,
    EVP_PKEY_free, EVP_PKEY_get_raw_private_key, EVP_PKEY_pqdsa_new_raw_private_key,
    EVP_PKEY_pqdsa_new_raw_public_key, EVP_PKEY_sign, EVP_PKEY_sign_init, EVP_PKEY_verify,
    EVP_PKEY_verify_init, EVP_sha3_224, EVP_sha3_256, EVP_sha3_384, EVP_sha3_512, EVP_sha224, EVP_sha256,
    EVP_sha384, EVP_sha512, EVP_shake128, EVP_shake256, NID_MLDSA44, NID_MLDSA65, NID_MLDSA87,
};

use super::aws_lc_object::Owned;
use super::sha3::{EngineFailure, check, owned};

/// Bytes of mu, and of tr (FIPS 204: both are 64-byte SHAKE256 outputs).
pub const MU_LEN: usize = 64;

/// AWS-LC's `ml_dsa_extmu_*_sign_internal(sk, sig, sig_len, mu, mu_len, pre, pre_len, rnd)`:
/// signs the 64-byte `mu` under the expanded private key `sk` with the given 32-byte `rnd`
/// (`pre` is unused with an external mu); 1 on success. The names carry the symbol prefix of
/// aws-lc-sys 0.47.0 (its `links = "aws_lc_0_47_0"`), the version Cargo.lock pins: another
/// version fails to link rather than call anything else.
type SignInternal = unsafe extern "C" fn(
    *const u8,
    *mut u8,
    *mut usize,
    *const u8,
    usize,
    *const u8,
    usize,
    *const u8,
) -> c_int;

/// Declares AWS-LC's `ml_dsa_extmu_*_sign_internal` entry points, each of the
/// [`SignInternal`] shape, under their linked names.
macro_rules! sign_internal {
    ($($name:ident = $symbol:literal),* $(,)?) => {
        unsafe extern "C" {
            $(
                #[link_name = $symbol]
                fn $name(
                    sk: *const u8,
                    sig: *mut u8,
                    sig_len: *mut usize,
                    mu: *const u8,
                    mu_len: usize,
                    pre: *const u8,
                    pre_len: usize,
                    rnd: *const u8,
                ) -> c_int;
            )*
        }
    };
}

sign_internal! {
    ml_dsa_extmu_44_sign_internal = "aws_lc_0_47_0_ml_dsa_extmu_44_sign_internal",
    ml_dsa_extmu_65_sign_internal = "aws_lc_0_47_0_ml_dsa_extmu_65_sign_internal",
    ml_dsa_extmu_87_sign_internal = "aws_lc_0_47_0_ml_dsa_extmu_87_sign_internal",
}

/// The three parameter sets of FIPS 204.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterSet {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

impl ParameterSet {
    pub const fn signature_len(self) -> usize {
        match self {
            ParameterSet::MlDsa44 => 2420,
            ParameterSet::MlDsa65 => 3309,
            ParameterSet::MlDsa87 => 4627,
        }
    }

    /// Bytes of the expanded private key `sk` (FIPS 204 Table 2).
    const fn private_key_len(self) -> usize {
        match self {
            ParameterSet::MlDsa44 => 2560,
            ParameterSet::MlDsa65 => 4032,
            ParameterSet::MlDsa87 => 4896,
        }
    }

    fn sign_internal(self) -> SignInternal {
        match self {
            ParameterSet::MlDsa44 => ml_dsa_extmu_44_sign_internal,
            ParameterSet::MlDsa65 => ml_dsa_extmu_65_sign_internal,
            ParameterSet::MlDsa87 => ml_dsa_extmu_87_sign_internal,
        }
    }

    fn nid(self) -> std::ffi::c_int {
        match self {
            ParameterSet::MlDsa44 => NID_MLDSA44,
            ParameterSet::MlDsa65 => NID_MLDSA65,
            ParameterSet::MlDsa87 => NID_MLDSA87,
        }
    }
}

/// A hash of FIPS 180-4 or FIPS 202, as HashML-DSA uses it: the SHAKEs with the output
/// lengths FIPS 204 gives them (256 bits for SHAKE128, 512 for SHAKE256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Shake128,
    Shake256,
}

impl Hash {
    /// Bytes of output.
    pub const fn output_len(self) -> usize {
        match self {
            Hash::Sha224 | Hash::Sha3_224 => 28,
            Hash::Sha256 | Hash::Sha3_256 | Hash::Shake128 => 32,
            Hash::Sha384 | Hash::Sha3_384 => 48,
            Hash::Sha512 | Hash::Sha3_512 | Hash::Shake256 => 64,
        }
    }

    const fn is_xof(self) -> bool {
        matches!(self, Hash::Shake128 | Hash::Shake256)
    }

    fn md(self) -> *const EVP_MD {
        // SAFETY: these return pointers to static digest tables; no argument.
        unsafe {
            match self {
                Hash::Sha224 => EVP_sha224(),
                Hash::Sha256 => EVP_sha256(),
                Hash::Sha384 => EVP_sha384(),
                Hash::Sha512 => EVP_sha512(),
                Hash::Sha3_224 => EVP_sha3_224(),
                Hash::Sha3_256 => EVP_sha3_256(),
                Hash::Sha3_384 => EVP_sha3_384(),
                Hash::Sha3_512 => EVP_sha3_512(),
                Hash::Shake128 => EVP_shake128(),
                Hash::Shake256 => EVP_shake256(),
            }
        }
    }
}

/// A hash in progress; `finish` ends it.
pub struct Hashing {
    context: Owned<EVP_MD_CTX>,
    hash: Hash,
}

impl Hashing {
    pub fn new(hash: Hash) -> Result<Hashing, EngineFailure> {
        // SAFETY: no argument; a null result is refused by `owned`.
        let context = owned(unsafe { EVP_MD_CTX_new() }, EVP_MD_CTX_free)?;
        // SAFETY: the context is live; the digest table is static; no engine.
        check(unsafe { EVP_DigestInit_ex(context.get(), hash.md(), null_mut()) })?;
        Ok(Hashing { context, hash })
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn update(&mut self, data: &[u8]) -> Result<(), EngineFailure> {
        // SAFETY: the context is live and initialised; `data` is readable for its length.
        check(unsafe { EVP_DigestUpdate(self.context.get(), data.as_ptr().cast::<c_void>(), data.len()) })
    }

    /// The hash of everything given to `update`, `output_len` bytes.
    pub fn finish(self) -> Result<Vec<u8>, EngineFailure> {
        let mut out = vec![0u8; self.hash.output_len()];
        if self.hash.is_xof() {
            // SAFETY: the context is live and initialised with an XOF; `out` is writable for
            // the length asked.
            check(unsafe { EVP_DigestFinalXOF(self.context.get(), out.as_mut_ptr(), out.len()) })?;
        } else {
            let mut len = 0;
            // SAFETY: the context is live and initialised; the final call writes the digest's
            // length, which is `output_len` (at most 64 bytes), into `out`, which has that.
            check(unsafe { EVP_DigestFinal_ex(self.context.get(), out.as_mut_ptr(), &mut len) })?;
            if len as usize != out.len() {
                return Err(EngineFailure);
            }
        }
        Ok(out)
    }
}

/// An ML-DSA key in AWS-LC: private (signs) or public (verifies).
pub struct MlDsaKey {
    key: Owned<EVP_PKEY>,
    set: ParameterSet,
}

impl MlDsaKey {
    /// A private key from its expanded `sk` or its 32-byte seed ξ (AWS-LC tells them apart by
    /// length). Bytes that are neither are refused.
    pub fn private(set: ParameterSet, bytes: &[u8]) -> Result<MlDsaKey, EngineFailure> {
        // SAFETY: `bytes` is readable for its length; AWS-LC copies it; a null result is
        // refused by `owned`.
        let key = unsafe { EVP_PKEY_pqdsa_new_raw_private_key(set.nid(), bytes.as_ptr(), bytes.len()) };
        Ok(MlDsaKey { key: owned(key, EVP_PKEY_free)?, set })
    }

    /// A public key from `pk`.
    pub fn public(set: ParameterSet, pk: &[u8]) -> Result<MlDsaKey, EngineFailure> {
        // SAFETY: as in `private`.
        let key = unsafe { EVP_PKEY_pqdsa_new_raw_public_key(set.nid(), pk.as_ptr(), pk.len()) };
        Ok(MlDsaKey { key: owned(key, EVP_PKEY_free)?, set })
    }

    pub fn parameter_set(&self) -> ParameterSet {
        self.set
    }

    /// An operation context on this key, freed when the returned value drops.
    fn operation(&self) -> Result<Owned<EVP_PKEY_CTX>, EngineFailure> {
        // SAFETY: the key is live; the context takes its own reference to it; no engine; a
        // null result is refused by `owned`.
        owned(unsafe { EVP_PKEY_CTX_new(self.key.get(), null_mut()) }, EVP_PKEY_CTX_free)
    }

    /// Signs `mu` (hedged); the key must be private.
    pub fn sign_mu(&self, mu: &[u8; MU_LEN]) -> Result<Vec<u8>, EngineFailure> {
        let context = self.operation()?;
        // SAFETY: the context is live.
        check(unsafe { EVP_PKEY_sign_init(context.get()) })?;
        let mut signature = vec![0u8; self.set.signature_len()];
        let mut len = signature.len();
        // SAFETY: the context is live and set up for signing; `signature` is writable for
        // `len` bytes, which AWS-LC checks against the signature's length before writing;
        // `mu` is readable for its 64 bytes.
        check(unsafe {
            EVP_PKEY_sign(context.get(), signature.as_mut_ptr(), &mut len, mu.as_ptr(), mu.len())
        })?;
        if len != signature.len() {
            return Err(EngineFailure);
        }
        Ok(signature)
    }

    /// Signs `mu` deterministically (FIPS 204: `rnd` = 32 zero bytes); the key must be
    /// private. The same key and mu always give the same signature.
    pub fn sign_mu_deterministic(&self, mu: &[u8; MU_LEN]) -> Result<Vec<u8>, EngineFailure> {
        let mut sk = Zeroizing::new(vec![0u8; self.set.private_key_len()]);
        let mut sk_len = sk.len();
        // SAFETY: the key is live; `sk` is writable for `sk_len` bytes, which AWS-LC checks
        // against the key's length before writing.
        check(unsafe { EVP_PKEY_get_raw_private_key(self.key.get(), sk.as_mut_ptr(), &mut sk_len) })?;
        if sk_len != sk.len() {
            return Err(EngineFailure);
        }
        let rnd = [0u8; 32];
        let mut signature = vec![0u8; self.set.signature_len()];
        let mut len = 0usize;
        // SAFETY: `sk` holds the parameter set's whole expanded key (its length checked
        // above), `signature` that set's signature length, `mu` its 64 bytes and `rnd` 32;
        // `pre` is NULL with length 0; AWS-LC writes the signature and its length only.
        check(unsafe {
            (self.set.sign_internal())(
                sk.as_ptr(),
                signature.as_mut_ptr(),
                &mut len,
                mu.as_ptr(),
                mu.len(),
                std::ptr::null(),
                0,
                rnd.as_ptr(),
            )
        })?;
        if len != signature.len() {
            return Err(EngineFailure);
        }
        Ok(signature)
    }

    /// Whether `signature` is this key's signature of `mu`.
    pub fn verify_mu(&self, mu: &[u8; MU_LEN], signature: &[u8]) -> Result<bool, EngineFailure> {
        let context = self.operation()?;
        // SAFETY: the context is live.
        check(unsafe { EVP_PKEY_verify_init(context.get()) })?;
        // SAFETY: the context is live and set up for verification; both buffers are readable
        // for their lengths. AWS-LC answers 1 for a good signature and 0 for anything else.
        Ok(unsafe {
            EVP_PKEY_verify(context.get(), signature.as_ptr(), signature.len(), mu.as_ptr(), mu.len())
        } == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::hex;

    /// FIPS 202's examples: SHAKE128 and SHAKE256 of the empty message (the first 32 and 64
    /// bytes), and SHA-224 of "abc" (FIPS 180-4).
    #[test]
    fn hash_known_answers() {
        let cases = [
            (Hash::Shake128, &b""[..], "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"),
            (
                Hash::Shake256,
                b"",
                "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f\
                 d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be",
            ),
            (Hash::Sha224, b"abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        ];
        for (hash, message, expected) in cases {
            let mut h = Hashing::new(hash).unwrap();
            h.update(message).unwrap();
            assert_eq!(h.finish().unwrap(), hex(expected), "{hash:?}");
        }
    }

    #[test]
    fn bad_keys_and_wrong_signatures_are_refused() {
        assert!(MlDsaKey::private(ParameterSet::MlDsa44, &[1; 31]).is_err());
        assert!(MlDsaKey::public(ParameterSet::MlDsa44, &[1; 1311]).is_err());
        let key = MlDsaKey::private(ParameterSet::MlDsa44, &[7; 32]).unwrap();
        let signature = key.sign_mu(&[3; MU_LEN]).unwrap();
        assert_eq!(signature.len(), 2420);
        assert!(key.verify_mu(&[3; MU_LEN], &signature).unwrap());
        assert!(!key.verify_mu(&[4; MU_LEN], &signature).unwrap());
        assert!(!key.verify_mu(&[3; MU_LEN], &signature[1..]).unwrap());
    }

    /// The deterministic variant, for each parameter set: the same key and mu give the same
    /// signature, which AWS-LC's verifier takes and which differs from a hedged one; a key
    /// made from its seed and from its expanded form sign alike; a public key cannot sign.
    #[test]
    fn deterministic_signatures_repeat_and_verify() {
        for set in [ParameterSet::MlDsa44, ParameterSet::MlDsa65, ParameterSet::MlDsa87] {
            let key = MlDsaKey::private(set, &[9; 32]).unwrap();
            let mu = [5u8; MU_LEN];
            let first = key.sign_mu_deterministic(&mu).unwrap();
            assert_eq!(first.len(), set.signature_len());
            assert_eq!(key.sign_mu_deterministic(&mu).unwrap(), first, "{set:?}");
            assert!(key.verify_mu(&mu, &first).unwrap());
            assert_ne!(key.sign_mu(&mu).unwrap(), first, "a hedged signature draws rnd");
            assert_ne!(key.sign_mu_deterministic(&[6; MU_LEN]).unwrap(), first);
            let mut sk = vec![0u8; set.private_key_len()];
            let mut len = sk.len();
            // SAFETY: `sk` is writable for `len` bytes.
            check(unsafe { EVP_PKEY_get_raw_private_key(key.key.get(), sk.as_mut_ptr(), &mut len) }).unwrap();
            let expanded = MlDsaKey::private(set, &sk).unwrap();
            assert_eq!(expanded.sign_mu_deterministic(&mu).unwrap(), first);
        }
        let public = MlDsaKey::public(ParameterSet::MlDsa44, &[1; 1312]).unwrap();
        assert!(public.sign_mu_deterministic(&[0; MU_LEN]).is_err());
    }
}
