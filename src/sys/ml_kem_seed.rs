//! ML-KEM key pairs from their seed d ‖ z (FIPS 203, `ML-KEM.KeyGen_internal`), through
//! AWS-LC's deterministic key generation (`EVP_PKEY_keygen_deterministic`, declared in its
//! `openssl/experimental/kem_deterministic_api.h`).
//!
//! aws-lc-rs generates ML-KEM keys from fresh randomness only and neither takes nor gives
//! their seed, while PKCS#11 3.2 keeps the seed as an ML-KEM private key's `CKA_SEED` and
//! RFC 9935 wraps a key as its seed alone. AWS-LC's KEM interface of the same engine expands
//! a seed; this file only makes those calls and reads the two keys back. AWS-LC cleanses the
//! key's buffers as it frees them (`OPENSSL_free` zeroes), and `dk` is returned zeroizing.

use std::ffi::c_int;
use std::ptr::null_mut;

use super::aws_lc_object::Owned;
use aws_lc_sys::{
    EVP_PKEY, EVP_PKEY_CTX, EVP_PKEY_CTX_free, EVP_PKEY_CTX_kem_set_params, EVP_PKEY_CTX_new_id,
    EVP_PKEY_KEM, EVP_PKEY_free, EVP_PKEY_get_raw_private_key, EVP_PKEY_get_raw_public_key,
    EVP_PKEY_keygen_deterministic, EVP_PKEY_keygen_init, NID_MLKEM512, NID_MLKEM768, NID_MLKEM1024,
};
use zeroize::Zeroizing;

/// Bytes of a seed: d (32) ‖ z (32).
pub const SEED_LEN: usize = 64;

/// One of FIPS 203's three parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterSet {
    MlKem512,
    MlKem768,
    MlKem1024,
}

impl ParameterSet {
    /// FIPS 203's k.
    const fn k(self) -> usize {
        match self {
            ParameterSet::MlKem512 => 2,
            ParameterSet::MlKem768 => 3,
            ParameterSet::MlKem1024 => 4,
        }
    }

    /// Bytes of `ek`: 384k + 32.
    pub const fn ek_len(self) -> usize {
        384 * self.k() + 32
    }

    /// Bytes of `dk`: 768k + 96.
    pub const fn dk_len(self) -> usize {
        768 * self.k() + 96
    }

    fn nid(self) -> c_int {
        match self {
            ParameterSet::MlKem512 => NID_MLKEM512,
            ParameterSet::MlKem768 => NID_MLKEM768,
            ParameterSet::MlKem1024 => NID_MLKEM1024,
        }
    }
}

/// The two keys a seed gives.
pub struct KeyPair {
    /// The encapsulation key `ek`.
    pub ek: Vec<u8>,
    /// The decapsulation key `dk`.
    pub dk: Zeroizing<Vec<u8>>,
}

/// Expands `seed` (d ‖ z, [`SEED_LEN`] bytes) into the key pair of `set`. `None` when the
/// seed has another length or AWS-LC fails (out of memory).
pub fn key_pair_from_seed(set: ParameterSet, seed: &[u8]) -> Option<KeyPair> {
    if seed.len() != SEED_LEN {
        return None;
    }
    // SAFETY: each constructor's result is checked for null and owned (freed on every path);
    // the context is set up as the KEM interface requires (parameters, then keygen_init)
    // before the key is made; `seed` is read within its length, which `seed_len` gives;
    // the key AWS-LC returns through `raw` is owned at once (AWS-LC leaves it null on
    // failure); each raw read is given a buffer of the length in its length argument, and
    // writes at most that many bytes.
    unsafe {
        let ctx =
            Owned::<EVP_PKEY_CTX>::new(EVP_PKEY_CTX_new_id(EVP_PKEY_KEM, null_mut()), EVP_PKEY_CTX_free)?;
        if EVP_PKEY_CTX_kem_set_params(ctx.get(), set.nid()) != 1 || EVP_PKEY_keygen_init(ctx.get()) != 1 {
            return None;
        }
        let mut raw: *mut EVP_PKEY = null_mut();
        let mut seed_len = seed.len();
        let made = EVP_PKEY_keygen_deterministic(ctx.get(), &mut raw, seed.as_ptr(), &mut seed_len);
        let key = Owned::<EVP_PKEY>::new(raw, EVP_PKEY_free);
        if made != 1 {
            return None;
        }
        let key = key?;
        let mut ek = vec![0u8; set.ek_len()];
        let mut ek_len = ek.len();
        if EVP_PKEY_get_raw_public_key(key.get(), ek.as_mut_ptr(), &mut ek_len) != 1 || ek_len != ek.len() {
            return None;
        }
        let mut dk = Zeroizing::new(vec![0u8; set.dk_len()]);
        let mut dk_len = dk.len();
        if EVP_PKEY_get_raw_private_key(key.get(), dk.as_mut_ptr(), &mut dk_len) != 1 || dk_len != dk.len() {
            return None;
        }
        Some(KeyPair { ek, dk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9935's example keys (`tests/fixtures/rfc9935_ml_kem_keys.txt`): the parameter set,
    /// `ek` and `dk` of the seed 00 01 … 3f.
    fn rfc9935_examples() -> Vec<(ParameterSet, Vec<u8>, Vec<u8>)> {
        include_str!("../../tests/fixtures/rfc9935_ml_kem_keys.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let mut fields = l.split(' ');
                let set = match fields.next().unwrap() {
                    "512" => ParameterSet::MlKem512,
                    "768" => ParameterSet::MlKem768,
                    _ => ParameterSet::MlKem1024,
                };
                (set, super::super::hex(fields.next().unwrap()), super::super::hex(fields.next().unwrap()))
            })
            .collect()
    }

    #[test]
    fn known_answers_of_rfc_9935() {
        let seed: Vec<u8> = (0..64).collect();
        let examples = rfc9935_examples();
        assert_eq!(examples.len(), 3);
        for (set, ek, dk) in examples {
            let pair = key_pair_from_seed(set, &seed).unwrap();
            assert_eq!((pair.ek.len(), pair.dk.len()), (set.ek_len(), set.dk_len()));
            assert_eq!(pair.ek, ek, "{set:?} ek");
            assert_eq!(*pair.dk, dk, "{set:?} dk");
        }
    }

    #[test]
    fn the_seed_decides_the_key_and_its_length_is_checked() {
        let seed = [7u8; SEED_LEN];
        let a = key_pair_from_seed(ParameterSet::MlKem768, &seed).unwrap();
        let b = key_pair_from_seed(ParameterSet::MlKem768, &seed).unwrap();
        assert_eq!((&a.ek, &*a.dk), (&b.ek, &*b.dk));
        // z is the last 32 bytes of dk; d alone decides ek.
        let mut other_z = seed;
        other_z[63] ^= 1;
        let c = key_pair_from_seed(ParameterSet::MlKem768, &other_z).unwrap();
        assert_eq!(c.ek, a.ek);
        assert_ne!(*c.dk, *a.dk);
        assert_eq!(c.dk[..c.dk.len() - 32], a.dk[..a.dk.len() - 32]);
        let mut other_d = seed;
        other_d[0] ^= 1;
        assert_ne!(key_pair_from_seed(ParameterSet::MlKem768, &other_d).unwrap().ek, a.ek);
        assert!(key_pair_from_seed(ParameterSet::MlKem768, &seed[1..]).is_none());
        assert!(key_pair_from_seed(ParameterSet::MlKem768, &[seed.as_slice(), &[0]].concat()).is_none());
        assert!(key_pair_from_seed(ParameterSet::MlKem768, &[]).is_none());
    }
}
