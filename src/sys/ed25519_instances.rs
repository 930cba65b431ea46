//! Ed25519ctx and Ed25519ph (RFC 8032 5.1), through AWS-LC's `curve25519.h` interface.
//!
//! aws-lc-rs signs and verifies pure Ed25519 only; AWS-LC itself has the two other instances
//! of RFC 8032 on edwards25519 (the same scalar arithmetic, with the `dom2` prefix that binds
//! a context and the pre-hash flag into both hashes). This file only makes the calls. The
//! pre-hash (SHA-512 of the message) is the caller's, so that a multi-part signature can
//! hash its parts as they come.
//!
//! AWS-LC takes the private key as 64 bytes (the RFC's 32-byte seed, then the public key);
//! [`SigningKey`] holds that buffer on the heap, wiped when dropped.

use aws_lc_sys::{
    ED25519_keypair_from_seed, ED25519ctx_sign, ED25519ctx_verify, ED25519ph_sign_digest,
    ED25519ph_verify_digest,
};
use zeroize::Zeroizing;

/// Bytes of the RFC's private key (the seed) and of a public key.
pub const KEY_LEN: usize = 32;
/// Bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of the pre-hash of Ed25519ph (SHA-512).
pub const DIGEST_LEN: usize = 64;
/// The longest context RFC 8032 allows (its length is one octet of `dom2`).
pub const MAX_CONTEXT_LEN: usize = 255;

/// AWS-LC's private key: seed, then public key.
const EXPANDED_LEN: usize = 2 * KEY_LEN;

/// AWS-LC refused to sign: a context of a length this instance does not take (Ed25519ctx
/// needs 1 to 255 bytes, Ed25519ph 0 to 255), which callers rule out beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineFailure;

/// Whether Ed25519ctx takes `context`: RFC 8032 says it SHOULD NOT be empty, and AWS-LC
/// refuses an empty one.
pub fn ctx_takes(context: &[u8]) -> bool {
    (1..=MAX_CONTEXT_LEN).contains(&context.len())
}

/// Whether Ed25519ph takes `context` (empty allowed).
pub fn ph_takes(context: &[u8]) -> bool {
    context.len() <= MAX_CONTEXT_LEN
}

/// An Ed25519 private key in AWS-LC's 64-byte form, wiped on drop.
pub struct SigningKey {
    expanded: Box<Zeroizing<[u8; EXPANDED_LEN]>>,
}

impl SigningKey {
    /// The key of a 32-byte seed (RFC 8032 5.1.5); `None` for any other length.
    pub fn from_seed(seed: &[u8]) -> Option<SigningKey> {
        let seed: &[u8; KEY_LEN] = seed.try_into().ok()?;
        let mut expanded = Box::new(Zeroizing::new([0u8; EXPANDED_LEN]));
        let mut public = [0u8; KEY_LEN];
        // SAFETY: AWS-LC reads 32 bytes of `seed` (it has 32), writes 32 bytes into `public`
        // and 64 into `expanded` (their sizes); nothing else is touched.
        unsafe { ED25519_keypair_from_seed(public.as_mut_ptr(), expanded.as_mut_ptr(), seed.as_ptr()) };
        Some(SigningKey { expanded })
    }

    /// The public key (RFC 8032 5.1.5 step 4), the second half of AWS-LC's form.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(&self.expanded[KEY_LEN..]);
        public
    }

    /// An Ed25519ctx signature of `message` under `context` (1 to 255 bytes).
    pub fn sign_ctx(&self, message: &[u8], context: &[u8]) -> Result<[u8; SIGNATURE_LEN], EngineFailure> {
        if !ctx_takes(context) {
            return Err(EngineFailure);
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        // SAFETY: AWS-LC writes 64 bytes into `signature` (its size), reads 64 bytes of the
        // key (its size) and `message`/`context` within their lengths.
        let status = unsafe {
            ED25519ctx_sign(
                signature.as_mut_ptr(),
                message.as_ptr(),
                message.len(),
                self.expanded.as_ptr(),
                context.as_ptr(),
                context.len(),
            )
        };
        if status == 1 { Ok(signature) } else { Err(EngineFailure) }
    }

    /// An Ed25519ph signature of the message whose SHA-512 is `digest`, under `context`
    /// (0 to 255 bytes).
    pub fn sign_ph_digest(
        &self,
        digest: &[u8; DIGEST_LEN],
        context: &[u8],
    ) -> Result<[u8; SIGNATURE_LEN], EngineFailure> {
        if !ph_takes(context) {
            return Err(EngineFailure);
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        // SAFETY: AWS-LC writes 64 bytes into `signature`, reads 64 of `digest` and of the
        // key (their sizes) and `context` within its length.
        let status = unsafe {
            ED25519ph_sign_digest(
                signature.as_mut_ptr(),
                digest.as_ptr(),
                self.expanded.as_ptr(),
                context.as_ptr(),
                context.len(),
            )
        };
        if status == 1 { Ok(signature) } else { Err(EngineFailure) }
    }
}

/// Whether `signature` is an Ed25519ctx signature of `message` under `context` by `public`.
/// A context Ed25519ctx does not take verifies nothing.
pub fn verify_ctx(
    public: &[u8; KEY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
    context: &[u8],
) -> bool {
    if !ctx_takes(context) {
        return false;
    }
    // SAFETY: AWS-LC reads 64 bytes of `signature` and 32 of `public` (their sizes), and
    // `message`/`context` within their lengths; it writes nothing.
    let status = unsafe {
        ED25519ctx_verify(
            message.as_ptr(),
            message.len(),
            signature.as_ptr(),
            public.as_ptr(),
            context.as_ptr(),
            context.len(),
        )
    };
    status == 1
}

/// Whether `signature` is an Ed25519ph signature, under `context` by `public`, of the
/// message whose SHA-512 is `digest`.
pub fn verify_ph_digest(
    public: &[u8; KEY_LEN],
    digest: &[u8; DIGEST_LEN],
    signature: &[u8; SIGNATURE_LEN],
    context: &[u8],
) -> bool {
    if !ph_takes(context) {
        return false;
    }
    // SAFETY: AWS-LC reads 64 bytes of `digest` and of `signature`, 32 of `public` (their
    // sizes), and `context` within its length; it writes nothing.
    let status = unsafe {
        ED25519ph_verify_digest(
            digest.as_ptr(),
            signature.as_ptr(),
            public.as_ptr(),
            context.as_ptr(),
            context.len(),
        )
    };
    status == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::hex;

    fn array<const N: usize>(s: &str) -> [u8; N] {
        hex(s).try_into().unwrap()
    }

    /// RFC 8032 7.2: the four Ed25519ctx tests ("foo", "bar", "foo2", "foo3").
    #[test]
    fn ed25519ctx_known_answers() {
        let seed_1 = "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6";
        let public_1 = "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292";
        let vectors = [
            (
                seed_1,
                public_1,
                "f726936d19c800494e3fdaff20b276a8",
                "666f6f",
                "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a\
                 8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
            ),
            (
                seed_1,
                public_1,
                "f726936d19c800494e3fdaff20b276a8",
                "626172",
                "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3\
                 216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
            ),
            (
                seed_1,
                public_1,
                "508e9e6882b979fea900f62adceaca35",
                "666f6f",
                "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc6490\
                 8922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
            ),
            (
                "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
                "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
                "f726936d19c800494e3fdaff20b276a8",
                "666f6f",
                "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85\
                 e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
            ),
        ];
        for (seed, public, message, context, expected) in vectors {
            let key = SigningKey::from_seed(&hex(seed)).unwrap();
            let public: [u8; KEY_LEN] = array(public);
            assert_eq!(key.public_key(), public);
            let (message, context) = (hex(message), hex(context));
            let signature = key.sign_ctx(&message, &context).unwrap();
            assert_eq!(signature.to_vec(), hex(expected));
            assert!(verify_ctx(&public, &message, &signature, &context));
            // Another context, another message, a flipped bit: no.
            assert!(!verify_ctx(&public, &message, &signature, b"baz"));
            assert!(!verify_ctx(&public, b"other", &signature, &context));
            let mut bad = signature;
            bad[0] ^= 1;
            assert!(!verify_ctx(&public, &message, &bad, &context));
        }
    }

    /// RFC 8032 7.3: Ed25519ph of "abc" (empty context); the signature is no Ed25519ctx one.
    #[test]
    fn ed25519ph_known_answer() {
        let key =
            SigningKey::from_seed(&hex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"))
                .unwrap();
        let public: [u8; KEY_LEN] = array("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
        assert_eq!(key.public_key(), public);
        let digest: [u8; DIGEST_LEN] = array(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        );
        let signature = key.sign_ph_digest(&digest, b"").unwrap();
        assert_eq!(
            signature.to_vec(),
            hex("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                 31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406")
        );
        assert!(verify_ph_digest(&public, &digest, &signature, b""));
        assert!(!verify_ph_digest(&public, &digest, &signature, b"x"));
        assert!(!verify_ctx(&public, b"abc", &signature, b"x"));
        // With a context, it signs and verifies under that context only.
        let with_context = key.sign_ph_digest(&digest, b"ctx").unwrap();
        assert_ne!(with_context, signature);
        assert!(verify_ph_digest(&public, &digest, &with_context, b"ctx"));
        assert!(!verify_ph_digest(&public, &digest, &with_context, b""));
    }

    #[test]
    fn context_lengths_and_seed_length() {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let public = key.public_key();
        let long = [1u8; MAX_CONTEXT_LEN + 1];
        let longest = [1u8; MAX_CONTEXT_LEN];
        assert_eq!(key.sign_ctx(b"m", b""), Err(EngineFailure));
        assert_eq!(key.sign_ctx(b"m", &long), Err(EngineFailure));
        let signature = key.sign_ctx(b"m", &longest).unwrap();
        assert!(verify_ctx(&public, b"m", &signature, &longest));
        assert!(!verify_ctx(&public, b"m", &signature, &long));
        assert_eq!(key.sign_ph_digest(&[0; DIGEST_LEN], &long), Err(EngineFailure));
        let signature = key.sign_ph_digest(&[0; DIGEST_LEN], &longest).unwrap();
        assert!(verify_ph_digest(&public, &[0; DIGEST_LEN], &signature, &longest));
        assert!(SigningKey::from_seed(&[7; 31]).is_none());
        assert!(SigningKey::from_seed(&[7; 33]).is_none());
    }
}
