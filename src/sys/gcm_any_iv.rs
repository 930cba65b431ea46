//! AES-GCM with an IV of any length, through AWS-LC's `EVP_CIPHER` interface.
//!
//! aws-lc-rs's AEAD API takes 96-bit nonces only; an IV of another length is hashed with
//! GHASH into the first counter block (NIST SP 800-38D, section 7.1), which AWS-LC does
//! behind `EVP_CTRL_GCM_SET_IVLEN`, and no safe Rust API exposes. So this file calls that C
//! interface of the same engine (the `aws-lc-sys` copy aws-lc-rs links): no cryptography is
//! written here, only the calls. The mechanism layer keeps 96-bit IVs on aws-lc-rs (its
//! fast path) and comes here for the others.
//!
//! A truncated tag is checked by AWS-LC itself (`EVP_CTRL_GCM_SET_TAG` with the shorter
//! length, compared with `CRYPTO_memcmp` in the final call), and plaintext is wiped when the
//! tag does not match.

use std::ffi::c_int;
use std::ptr::{null, null_mut};

use aws_lc_sys::{
    EVP_CIPHER, EVP_CIPHER_CTX, EVP_CIPHER_CTX_ctrl, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_new,
    EVP_CTRL_GCM_GET_TAG, EVP_CTRL_GCM_SET_IVLEN, EVP_CTRL_GCM_SET_TAG, EVP_CipherFinal_ex,
    EVP_CipherInit_ex, EVP_CipherUpdate, EVP_aes_128_gcm, EVP_aes_192_gcm, EVP_aes_256_gcm,
};
use zeroize::Zeroize;

/// Why a sealing or an opening did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcmFailure {
    /// A key, IV, tag or buffer of a length this interface does not take.
    BadLength,
    /// The tag did not match (opening only); the output was wiped.
    TagMismatch,
    /// AWS-LC refused a call it should have taken.
    Engine,
}

/// The full tag's length.
pub const MAX_TAG_LEN: usize = 16;

/// A cipher context, freed on drop.
struct Context(*mut EVP_CIPHER_CTX);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_CIPHER_CTX_new and is freed once; freeing also
        // cleanses the key schedule it holds.
        unsafe { EVP_CIPHER_CTX_free(self.0) }
    }
}

fn cipher_for(key: &[u8]) -> Result<*const EVP_CIPHER, GcmFailure> {
    // SAFETY: these return pointers to static cipher tables; no argument.
    unsafe {
        match key.len() {
            16 => Ok(EVP_aes_128_gcm()),
            24 => Ok(EVP_aes_192_gcm()),
            32 => Ok(EVP_aes_256_gcm()),
            _ => Err(GcmFailure::BadLength),
        }
    }
}

fn c_len(len: usize) -> Result<c_int, GcmFailure> {
    c_int::try_from(len).map_err(|_| GcmFailure::BadLength)
}

fn check(status: c_int) -> Result<(), GcmFailure> {
    if status == 1 { Ok(()) } else { Err(GcmFailure::Engine) }
}

/// A context keyed with `key` and `iv` for one direction, with the AAD already absorbed.
fn keyed(key: &[u8], iv: &[u8], aad: &[u8], encrypt: bool) -> Result<Context, GcmFailure> {
    let cipher = cipher_for(key)?;
    if iv.is_empty() {
        return Err(GcmFailure::BadLength);
    }
    let (iv_len, aad_len) = (c_len(iv.len())?, c_len(aad.len())?);
    // SAFETY: no argument; a null result is checked.
    let context = Context(unsafe { EVP_CIPHER_CTX_new() });
    if context.0.is_null() {
        return Err(GcmFailure::Engine);
    }
    let direction = c_int::from(encrypt);
    // SAFETY: the context is live; `cipher` is a static table; key and IV are set in the
    // second call, after the IV length, and are read there within their lengths (the key's
    // length is the cipher's, checked by `cipher_for`); the AAD update reads `aad_len`
    // bytes of `aad` and writes no output (null out pointer means AAD in AWS-LC's GCM).
    unsafe {
        check(EVP_CipherInit_ex(context.0, cipher, null_mut(), null(), null(), direction))?;
        check(EVP_CIPHER_CTX_ctrl(context.0, EVP_CTRL_GCM_SET_IVLEN, iv_len, null_mut()))?;
        check(EVP_CipherInit_ex(context.0, null(), null_mut(), key.as_ptr(), iv.as_ptr(), direction))?;
        if !aad.is_empty() {
            let mut written: c_int = 0;
            check(EVP_CipherUpdate(context.0, null_mut(), &mut written, aad.as_ptr(), aad_len))?;
        }
    }
    Ok(context)
}

/// Runs the data through `context` into `out` (as long as `input`) and finishes.
fn run(context: &Context, input: &[u8], out: &mut [u8]) -> Result<(), GcmFailure> {
    if out.len() != input.len() {
        return Err(GcmFailure::BadLength);
    }
    let input_len = c_len(input.len())?;
    let mut written: c_int = 0;
    let mut finished: c_int = 0;
    // SAFETY: GCM is a stream mode in AWS-LC: an update writes exactly as many bytes as it
    // reads, so `out` (as long as `input`) holds them, and the final call writes nothing
    // (its out pointer is the end of `out`, never dereferenced for GCM).
    unsafe {
        if !input.is_empty() {
            check(EVP_CipherUpdate(context.0, out.as_mut_ptr(), &mut written, input.as_ptr(), input_len))?;
        }
        if EVP_CipherFinal_ex(context.0, out.as_mut_ptr().add(input.len()), &mut finished) != 1 {
            return Err(GcmFailure::TagMismatch);
        }
    }
    if written as usize != input.len() || finished != 0 {
        return Err(GcmFailure::Engine);
    }
    Ok(())
}

/// Encrypts `input` into `out` (as long as `input`) and writes the tag's first
/// `tag.len()` bytes (1 to 16) into `tag`.
pub fn seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    input: &[u8],
    out: &mut [u8],
    tag: &mut [u8],
) -> Result<(), GcmFailure> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(GcmFailure::BadLength);
    }
    let context = keyed(key, iv, aad, true)?;
    // Encrypting, the final call has no tag to compare: its failure is the engine's.
    run(&context, input, out)
        .map_err(|e| if e == GcmFailure::TagMismatch { GcmFailure::Engine } else { e })?;
    let mut full = [0u8; MAX_TAG_LEN];
    // SAFETY: GET_TAG writes `MAX_TAG_LEN` bytes into `full`, which has that many.
    check(unsafe {
        EVP_CIPHER_CTX_ctrl(context.0, EVP_CTRL_GCM_GET_TAG, MAX_TAG_LEN as c_int, full.as_mut_ptr().cast())
    })?;
    tag.copy_from_slice(&full[..tag.len()]);
    Ok(())
}

/// Decrypts `input` into `out` (as long as `input`) if `tag` (1 to 16 bytes, a prefix of
/// the full tag) matches; otherwise wipes `out` and answers [`GcmFailure::TagMismatch`].
pub fn open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    input: &[u8],
    tag: &[u8],
    out: &mut [u8],
) -> Result<(), GcmFailure> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(GcmFailure::BadLength);
    }
    let context = keyed(key, iv, aad, false)?;
    let mut expected = [0u8; MAX_TAG_LEN];
    expected[..tag.len()].copy_from_slice(tag);
    // SAFETY: SET_TAG copies `tag.len()` (at most 16) bytes from `expected`, which has 16.
    check(unsafe {
        EVP_CIPHER_CTX_ctrl(context.0, EVP_CTRL_GCM_SET_TAG, tag.len() as c_int, expected.as_mut_ptr().cast())
    })?;
    let result = run(&context, input, out);
    if result.is_err() {
        out.zeroize();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::hex;

    /// The GCM specification's test case 6 (AES-128, a 60-byte IV), from McGrew and Viega's
    /// "The Galois/Counter Mode of Operation", appendix B.
    #[test]
    fn known_answer_with_a_long_iv() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let iv = hex(
            "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let expected = hex(
            "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
        );
        let mut out = vec![0; plain.len()];
        let mut tag = [0; 16];
        seal(&key, &iv, &aad, &plain, &mut out, &mut tag).unwrap();
        assert_eq!(out, expected);
        assert_eq!(tag.to_vec(), hex("619cc5aefffe0bfa462af43c1699d050"));

        let mut back = vec![0; out.len()];
        open(&key, &iv, &aad, &out, &tag[..12], &mut back).unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn a_wrong_tag_wipes_the_output_and_bad_lengths_are_refused() {
        let key = [7u8; 32];
        let iv = [1u8; 8];
        let mut sealed = [0u8; 20];
        let mut tag = [0u8; 16];
        seal(&key, &iv, b"aad", &[9u8; 20], &mut sealed, &mut tag).unwrap();
        tag[15] ^= 1;
        let mut out = [0xaau8; 20];
        assert_eq!(open(&key, &iv, b"aad", &sealed, &tag, &mut out), Err(GcmFailure::TagMismatch));
        assert_eq!(out, [0u8; 20]);
        // The prefix before the flipped byte still matches.
        open(&key, &iv, b"aad", &sealed, &tag[..15], &mut out).unwrap();
        assert_eq!(out, [9u8; 20]);

        let mut short = [0u8; 19];
        assert_eq!(seal(&key, &iv, b"", &[0; 20], &mut short, &mut [0; 16]), Err(GcmFailure::BadLength));
        assert_eq!(seal(&key, &[], b"", &[0; 20], &mut sealed, &mut [0; 16]), Err(GcmFailure::BadLength));
        assert_eq!(seal(&[0; 15], &iv, b"", &[0; 20], &mut sealed, &mut [0; 16]), Err(GcmFailure::BadLength));
        assert_eq!(seal(&key, &iv, b"", &[0; 20], &mut sealed, &mut [0; 17]), Err(GcmFailure::BadLength));
    }
}
