//! SHA3-224 and HMAC over the SHA-3 hashes (FIPS 202, FIPS 198-1), through AWS-LC's `EVP_MD`
//! and `HMAC_CTX` interfaces.
//!
//! aws-lc-rs offers SHA3-256/384/512 digests but no SHA3-224 and no HMAC over any SHA-3 hash
//! (its `hmac::Algorithm` cannot be built outside the crate); AWS-LC itself has both
//! (`EVP_sha3_224`, and HMAC takes the SHA-3 `EVP_MD`s). So this file calls that C interface of
//! the same engine (the `aws-lc-sys` copy aws-lc-rs links): no cryptography is written here,
//! only the calls. Contexts are freed on drop; AWS-LC cleanses an HMAC context
//! (`HMAC_CTX_cleanup`) and a digest's state (`OPENSSL_free` zeroes) as it frees them, so no
//! key-dependent state outlives them.

use std::ffi::{c_uint, c_void};
use std::ptr::null_mut;

use super::aws_lc_object::Owned;
use aws_lc_sys::{
    EVP_DigestFinal_ex, EVP_DigestInit_ex, EVP_DigestUpdate, EVP_MD, EVP_MD_CTX, EVP_MD_CTX_free,
    EVP_MD_CTX_new, EVP_sha3_224, EVP_sha3_256, EVP_sha3_384, EVP_sha3_512, HMAC_CTX, HMAC_CTX_free,
    HMAC_CTX_new, HMAC_Final, HMAC_Init_ex, HMAC_Update,
};

/// AWS-LC refused a call it should have taken (out of memory, or a misuse this file rules out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineFailure;

/// One of the four SHA-3 hashes of FIPS 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha3 {
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

/// The longest output, SHA3-512's.
const MAX_OUTPUT_LEN: usize = 64;

impl Sha3 {
    /// Bytes of output.
    pub const fn output_len(self) -> usize {
        match self {
            Sha3::Sha3_224 => 28,
            Sha3::Sha3_256 => 32,
            Sha3::Sha3_384 => 48,
            Sha3::Sha3_512 => 64,
        }
    }

    fn md(self) -> *const EVP_MD {
        // SAFETY: these return pointers to static digest tables; no argument.
        unsafe {
            match self {
                Sha3::Sha3_224 => EVP_sha3_224(),
                Sha3::Sha3_256 => EVP_sha3_256(),
                Sha3::Sha3_384 => EVP_sha3_384(),
                Sha3::Sha3_512 => EVP_sha3_512(),
            }
        }
    }
}

pub(super) fn check(status: std::ffi::c_int) -> Result<(), EngineFailure> {
    if status == 1 { Ok(()) } else { Err(EngineFailure) }
}

/// Owns what a `*_new` call returned, with its matching `*_free`; null (it failed) is an
/// [`EngineFailure`].
pub(super) fn owned<T>(
    pointer: *mut T,
    free: unsafe extern "C" fn(*mut T),
) -> Result<Owned<T>, EngineFailure> {
    Owned::new(pointer, free).ok_or(EngineFailure)
}

/// The output a final call writes: `finish` gets a buffer of the longest output and where to
/// put the length written, which must be `hash`'s.
fn final_output(
    hash: Sha3,
    finish: impl FnOnce(*mut u8, &mut c_uint) -> std::ffi::c_int,
) -> Result<Vec<u8>, EngineFailure> {
    let mut out = [0u8; MAX_OUTPUT_LEN];
    let mut len: c_uint = 0;
    check(finish(out.as_mut_ptr(), &mut len))?;
    out.get(..len as usize).filter(|o| o.len() == hash.output_len()).map(<[u8]>::to_vec).ok_or(EngineFailure)
}

/// A SHA-3 digest in progress.
pub struct Sha3Digest {
    context: Owned<EVP_MD_CTX>,
    hash: Sha3,
}

impl Sha3Digest {
    pub fn new(hash: Sha3) -> Result<Sha3Digest, EngineFailure> {
        // SAFETY: no argument; a null result is refused by `Context::new`.
        let context = owned(unsafe { EVP_MD_CTX_new() }, EVP_MD_CTX_free)?;
        let digest = Sha3Digest { context, hash };
        digest.start()?;
        Ok(digest)
    }

    fn start(&self) -> Result<(), EngineFailure> {
        // SAFETY: the context is live; the digest table is static; no engine.
        check(unsafe { EVP_DigestInit_ex(self.context.get(), self.hash.md(), null_mut()) })
    }

    pub fn hash(&self) -> Sha3 {
        self.hash
    }

    pub fn update(&mut self, data: &[u8]) -> Result<(), EngineFailure> {
        // SAFETY: the context is live and initialised; `data` is readable for its length.
        check(unsafe { EVP_DigestUpdate(self.context.get(), data.as_ptr().cast::<c_void>(), data.len()) })
    }

    /// The digest of everything given to `update`; the context starts over, empty.
    pub fn finish(&mut self) -> Result<Vec<u8>, EngineFailure> {
        // SAFETY: the context is live and initialised; the final call writes the digest's
        // length (at most 64 bytes) into the buffer `final_output` gives, which has 64.
        let out =
            final_output(self.hash, |out, len| unsafe { EVP_DigestFinal_ex(self.context.get(), out, len) })?;
        self.start()?;
        Ok(out)
    }
}

/// An HMAC over a SHA-3 hash in progress; the key's padded states live in the context until
/// it is dropped (cleansed then).
pub struct Sha3Hmac {
    context: Owned<HMAC_CTX>,
    hash: Sha3,
}

impl Sha3Hmac {
    /// Keys an HMAC with `key` (any length; a key longer than the hash's block is hashed
    /// first, as FIPS 198-1 says).
    pub fn new(hash: Sha3, key: &[u8]) -> Result<Sha3Hmac, EngineFailure> {
        // SAFETY: no argument; a null result is refused by `Context::new`. HMAC_CTX_free
        // cleanses the keyed state as it frees it.
        let context = owned(unsafe { HMAC_CTX_new() }, HMAC_CTX_free)?;
        let mac = Sha3Hmac { context, hash };
        // SAFETY: the context is live; `key` is readable for its length; the digest table is
        // static; no engine.
        check(unsafe {
            HMAC_Init_ex(mac.context.get(), key.as_ptr().cast::<c_void>(), key.len(), hash.md(), null_mut())
        })?;
        Ok(mac)
    }

    pub fn output_len(&self) -> usize {
        self.hash.output_len()
    }

    pub fn update(&mut self, data: &[u8]) -> Result<(), EngineFailure> {
        // SAFETY: the context is live and keyed; `data` is readable for its length.
        check(unsafe { HMAC_Update(self.context.get(), data.as_ptr(), data.len()) })
    }

    /// The MAC of everything given to `update`; ends this computation.
    pub fn finish(self) -> Result<Vec<u8>, EngineFailure> {
        // SAFETY: the context is live and keyed; the final call writes the hash's output
        // length (at most 64 bytes) into the buffer `final_output` gives, which has 64.
        final_output(self.hash, |out, len| unsafe { HMAC_Final(self.context.get(), out, len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::hex;

    /// FIPS 202's SHA3-224 examples: the empty message and "abc"; and one million "a"s in
    /// parts, checking that `finish` starts over.
    #[test]
    fn sha3_224_known_answers() {
        let mut d = Sha3Digest::new(Sha3::Sha3_224).unwrap();
        assert_eq!(d.finish().unwrap(), hex("6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"));
        d.update(b"a").unwrap();
        d.update(b"bc").unwrap();
        assert_eq!(d.finish().unwrap(), hex("e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"));
        d.update(b"abc").unwrap();
        assert_eq!(d.finish().unwrap(), hex("e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"));
        let mut s = Sha3Digest::new(Sha3::Sha3_256).unwrap();
        s.update(b"abc").unwrap();
        assert_eq!(
            s.finish().unwrap(),
            hex("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")
        );
    }

    /// NIST's HMAC-SHA3 examples (csrc.nist.gov, "Examples with Intermediate Values"),
    /// sample 1: key 00 01 .. of the hash's output length, "Sample message for keylen<blocklen".
    #[test]
    fn hmac_sha3_known_answers() {
        let cases = [
            (Sha3::Sha3_224, 28, "332cfd59347fdb8e576e77260be4aba2d6dc53117b3bfb52c6d18c04"),
            (Sha3::Sha3_256, 32, "4fe8e202c4f058e8dddc23d8c34e467343e23555e24fc2f025d598f558f67205"),
            (
                Sha3::Sha3_384,
                48,
                "d588a3c51f3f2d906e8298c1199aa8ff6296218127f6b38a90b6afe2c5617725bc99987f79b22a557b6520db710b7f42",
            ),
            (
                Sha3::Sha3_512,
                64,
                "4efd629d6c71bf86162658f29943b1c308ce27cdfa6db0d9c3ce81763f9cbce5\
                 f7ebe9868031db1a8f8eb7b6b95e5c5e3f657a8996c86a2f6527e307f0213196",
            ),
        ];
        for (hash, key_len, expected) in cases {
            let key: Vec<u8> = (0..key_len).collect();
            let mut mac = Sha3Hmac::new(hash, &key).unwrap();
            assert_eq!(mac.output_len(), expected.len() / 2);
            mac.update(b"Sample message ").unwrap();
            mac.update(b"for keylen<blocklen").unwrap();
            assert_eq!(mac.finish().unwrap(), hex(expected), "{hash:?}");
        }
    }
}
