//! CKM_AES_GCM for C_Encrypt*/C_Decrypt*.
//!
//! AES-GCM cannot release plaintext before the tag is checked, and aws-lc-rs seals whole
//! messages, so multi-part calls buffer their input and produce everything at the final call
//! (as SoftHSMv2 does); updates return no bytes.
//!
//! Tags: PKCS#11 lets `ulTagBits` be anything up to 128; this module takes the lengths NIST
//! SP 800-38D allows (128, 120, 112, 104, 96, and 64 and 32 for the uses its appendix C
//! bounds) and refuses the rest with `CKR_MECHANISM_PARAM_INVALID`. A truncated tag is the
//! full tag's leading bytes; AWS-LC computes the full tag and the prefix is compared in
//! constant time.
//!
//! IVs: 1 to 256 bytes (the range PKCS#11 2.40 gives `ulIvLen`; 3.0 allows more, which no
//! client needs and which would only be memory to hold). 96-bit IVs, the length SP 800-38D
//! recommends and every common client uses, run on aws-lc-rs's AEAD API; the others, which
//! need GHASH over the IV, on AWS-LC's `EVP_CIPHER` interface (`sys::gcm_any_iv`, as
//! aws-lc-rs offers no API for them). An empty or longer IV is refused with
//! `CKR_MECHANISM_PARAM_INVALID`. The message API (`GcmMessageKey`) takes the same lengths
//! for IVs its caller gives, and generates 96-bit ones (its generators are defined on
//! 96-bit blocks).

use aws_lc_rs::aead::{AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use cryptoki_sys::CKK_AES;
use zeroize::Zeroizing;

use std::sync::Arc;

pub use super::aes_gcm_message::{GcmMessageKey, GcmMessageParams};
use super::prepared::PreparedKey;
use super::whole_input::{Collected, WholeInputCipher};
use super::{GcmParams, KeyMaterial, SecretKey};
use crate::sys::gcm_any_iv::{self, GcmFailure};
use crate::{Error, Result};

pub const IV_LEN: usize = 12;
/// The full tag's length; a shorter one is its prefix.
pub const TAG_LEN: usize = 16;

/// The tag lengths in bits SP 800-38D (section 5.2.1.2) allows.
const TAG_BITS_ALLOWED: [u64; 7] = [128, 120, 112, 104, 96, 64, 32];

/// The length in bytes of a tag of `tag_bits`, if the module takes that length.
pub fn tag_len(tag_bits: u64) -> Result<usize> {
    if TAG_BITS_ALLOWED.contains(&tag_bits) {
        Ok((tag_bits / 8) as usize)
    } else {
        Err(Error::MechanismParamInvalid)
    }
}

/// The longest IV taken, in bytes.
pub const MAX_IV_LEN: usize = 256;

/// A 96-bit IV, or `CKR_MECHANISM_PARAM_INVALID`.
pub(super) fn iv_of(iv: &[u8]) -> Result<[u8; IV_LEN]> {
    iv.try_into().map_err(|_| Error::MechanismParamInvalid)
}

/// The IV of a single-message operation: 96 bits (aws-lc-rs), or another length AWS-LC's C
/// interface takes.
#[derive(Clone)]
enum OperationIv {
    Standard([u8; IV_LEN]),
    Other(Vec<u8>),
}

impl OperationIv {
    fn new(iv: &[u8]) -> Result<OperationIv> {
        match iv.len() {
            IV_LEN => iv_of(iv).map(OperationIv::Standard),
            1..=MAX_IV_LEN => Ok(OperationIv::Other(iv.to_vec())),
            _ => Err(Error::MechanismParamInvalid),
        }
    }
}

/// A tag as produced: the full tag computed, `len` leading bytes of it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    bytes: [u8; TAG_LEN],
    len: usize,
}

impl Tag {
    /// An empty tag (for a length query, where nothing is sealed).
    pub const fn none() -> Tag {
        Tag { bytes: [0; TAG_LEN], len: 0 }
    }

    /// A tag received whole (from the key service): at most [`TAG_LEN`] bytes.
    pub fn from_bytes(tag: &[u8]) -> Option<Tag> {
        let mut bytes = [0u8; TAG_LEN];
        bytes.get_mut(..tag.len())?.copy_from_slice(tag);
        Some(Tag { bytes, len: tag.len() })
    }

    pub(super) fn truncated(full: &aws_lc_rs::aead::Tag, len: usize) -> Tag {
        let mut bytes = [0u8; TAG_LEN];
        bytes.copy_from_slice(full.as_ref());
        Tag { bytes, len }
    }
}

impl std::ops::Deref for Tag {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Opens `buf` (the ciphertext; the plaintext on success, zeros on failure) whose tag is the
/// truncated `tag`. aws-lc-rs opens only with a full tag, so the full tag is recomputed:
/// GCM's keystream does not depend on the AAD, so sealing the ciphertext with no AAD yields
/// the plaintext, and sealing that plaintext yields the ciphertext again with its full tag.
/// Nothing sealed here leaves the function except the plaintext after the tag matched.
pub(super) fn open_truncated(
    key: &LessSafeKey,
    iv: [u8; IV_LEN],
    aad: &[u8],
    tag: &[u8],
    buf: &mut [u8],
) -> Result<()> {
    let keystream = |buf: &mut [u8]| {
        key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), buf)
            .map(drop)
            .map_err(|_| Error::EncryptedDataLenRange)
    };
    keystream(buf)?;
    let full = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), buf)
        .map_err(|_| Error::EncryptedDataLenRange)?;
    let matches = verify_slices_are_equal(&full.as_ref()[..tag.len()], tag).is_ok();
    keystream(buf)?;
    if !matches {
        zeroize::Zeroize::zeroize(buf);
        return Err(Error::EncryptedDataInvalid);
    }
    Ok(())
}

/// AES-GCM over a whole input; multi-part, the input is kept until the final call (GCM
/// cannot release plaintext before the tag is checked).
pub type GcmOperation = Collected<Gcm>;

pub struct Gcm {
    /// Shared with the session's cache of prepared keys: the key schedule is built once.
    key: Arc<PreparedKey>,
    iv: OperationIv,
    aad: Vec<u8>,
    /// The tag's length in bytes (16, or a truncation the standard allows).
    tag_len: usize,
    encrypt: bool,
}

/// Builds an AES-GCM key of the size of `value`.
pub fn gcm_key(value: &[u8]) -> Result<LessSafeKey> {
    let algorithm = match value.len() {
        16 => &AES_128_GCM,
        24 => &AES_192_GCM,
        32 => &AES_256_GCM,
        _ => return Err(Error::KeySizeRange),
    };
    let unbound = UnboundKey::new(algorithm, value).map_err(|_| Error::KeySizeRange)?;
    Ok(LessSafeKey::new(unbound))
}

/// Opens `buf` (the ciphertext and its full tag) in place under `key`; any mismatch is one
/// opaque `CKR_ENCRYPTED_DATA_INVALID`. What is left of `buf` is the plaintext.
pub(super) fn open_in_place(
    key: &LessSafeKey,
    iv: [u8; IV_LEN],
    aad: &[u8],
    mut buf: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>> {
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

impl GcmOperation {
    pub fn new(key: &SecretKey, params: &GcmParams, encrypt: bool) -> Result<GcmOperation> {
        let secret = SecretKey { key_type: key.key_type, value: key.value.clone() };
        GcmOperation::with_key(&Arc::new(PreparedKey::new(KeyMaterial::Secret(secret))), params, encrypt)
    }

    /// As [`GcmOperation::new`], with a key whose schedule may already be built.
    pub fn with_key(key: &Arc<PreparedKey>, params: &GcmParams, encrypt: bool) -> Result<GcmOperation> {
        match &key.material {
            KeyMaterial::Secret(s) if s.key_type == CKK_AES => {}
            _ => return Err(Error::KeyTypeInconsistent),
        }
        let iv = OperationIv::new(&params.iv)?;
        let tag_len = tag_len(params.tag_bits)?;
        key.gcm()?;
        Ok(Collected::around(Gcm { key: key.clone(), iv, aad: params.aad.clone(), tag_len, encrypt }))
    }
}

impl WholeInputCipher for Gcm {
    fn encrypting(&self) -> bool {
        self.encrypt
    }

    fn out_len(&self, input_len: usize) -> Result<usize> {
        if self.encrypt {
            Ok(input_len + self.tag_len)
        } else {
            input_len.checked_sub(self.tag_len).ok_or(Error::EncryptedDataLenRange)
        }
    }

    fn run(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let iv = match &self.iv {
            OperationIv::Standard(iv) => *iv,
            OperationIv::Other(iv) => {
                let mut out = Zeroizing::new(vec![0; self.out_len(input.len())?]);
                self.run_any_iv(iv, input, &mut out)?;
                return Ok(out);
            }
        };
        let nonce = Nonce::assume_unique_for_key(iv);
        let aad = Aad::from(self.aad.as_slice());
        if self.encrypt {
            let mut out = Zeroizing::new(Vec::with_capacity(input.len() + self.tag_len));
            out.extend_from_slice(input);
            let tag = self
                .key
                .gcm()?
                .seal_in_place_separate_tag(nonce, aad, out.as_mut_slice())
                .map_err(|_| Error::DataLenRange)?;
            out.extend_from_slice(&tag.as_ref()[..self.tag_len]);
            Ok(out)
        } else {
            let plain_len = self.out_len(input.len())?;
            if self.tag_len != TAG_LEN {
                let (ciphertext, tag) = input.split_at(plain_len);
                let mut out = Zeroizing::new(ciphertext.to_vec());
                open_truncated(self.key.gcm()?, iv, &self.aad, tag, &mut out)?;
                return Ok(out);
            }
            let mut out = Zeroizing::new(input.to_vec());
            let plain_len = self
                .key
                .gcm()?
                .open_in_place(nonce, aad, out.as_mut_slice())
                .map_err(|_| Error::EncryptedDataInvalid)?
                .len();
            out.truncate(plain_len);
            Ok(out)
        }
    }

    /// As `run`, into the caller's buffer `out` (at least `out_len` bytes): encryption
    /// seals straight into it (out of place); decryption opens straight into it,
    /// and wipes it again if the tag is wrong, so unauthenticated plaintext never stays.
    fn run_into(&self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        let len = self.out_len(input.len())?;
        let out = out.get_mut(..len).ok_or(Error::Internal("GCM output buffer too short"))?;
        let iv = match &self.iv {
            OperationIv::Standard(iv) => *iv,
            OperationIv::Other(iv) => return self.run_any_iv(iv, input, out).map(|()| len),
        };
        let nonce = Nonce::assume_unique_for_key(iv);
        let aad = Aad::from(self.aad.as_slice());
        if self.encrypt {
            // Out of place: the plaintext is read once, not copied first.
            let (body, tag_out) = out.split_at_mut(input.len());
            if self.tag_len == TAG_LEN {
                self.key
                    .gcm()?
                    .seal_out_of_place_scatter(nonce, aad, input, body, &[], tag_out)
                    .map_err(|_| Error::DataLenRange)?;
            } else {
                body.copy_from_slice(input);
                let tag = self
                    .key
                    .gcm()?
                    .seal_in_place_separate_tag(nonce, aad, body)
                    .map_err(|_| Error::DataLenRange)?;
                tag_out.copy_from_slice(&tag.as_ref()[..self.tag_len]);
            }
        } else {
            let (ciphertext, tag) = input.split_at(len);
            if self.tag_len != TAG_LEN {
                out.copy_from_slice(ciphertext);
                open_truncated(self.key.gcm()?, iv, &self.aad, tag, out)?;
            } else if self.key.gcm()?.open_separate_gather(nonce, aad, ciphertext, tag, out).is_err() {
                zeroize::Zeroize::zeroize(out);
                return Err(Error::EncryptedDataInvalid);
            }
        }
        Ok(len)
    }
}

impl Gcm {
    /// `run_into` for an IV other than 96 bits, on AWS-LC's C interface; `out` is exactly
    /// `out_len` bytes.
    fn run_any_iv(&self, iv: &[u8], input: &[u8], out: &mut [u8]) -> Result<()> {
        let KeyMaterial::Secret(key) = &self.key.material else {
            return Err(Error::KeyTypeInconsistent);
        };
        let result = if self.encrypt {
            let (body, tag) = out.split_at_mut(input.len());
            gcm_any_iv::seal(&key.value, iv, &self.aad, input, body, tag)
        } else {
            let (ciphertext, tag) = input.split_at(out.len());
            gcm_any_iv::open(&key.value, iv, &self.aad, ciphertext, tag, out)
        };
        result.map_err(|failure| match failure {
            GcmFailure::TagMismatch => Error::EncryptedDataInvalid,
            GcmFailure::BadLength if self.encrypt => Error::DataLenRange,
            GcmFailure::BadLength => Error::EncryptedDataLenRange,
            GcmFailure::Engine => Error::Internal("AWS-LC refused an AES-GCM call"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::CipherOperation;

    fn key(bytes: &[u8]) -> SecretKey {
        SecretKey { key_type: CKK_AES, value: Zeroizing::new(bytes.to_vec()) }
    }

    use crate::mechanism::test_vectors::unhex as hex;

    /// NIST GCM test vector (gcmEncryptExtIV256, Count 0 with 128-bit plaintext).
    #[test]
    fn known_answer_aes256() {
        let k = key(&hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"));
        let params = GcmParams {
            iv: hex("cafebabefacedbaddecaf888"),
            aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            tag_bits: 128,
        };
        let pt = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let mut op = GcmOperation::new(&k, &params, true).unwrap();
        let ct = op.single(&pt).unwrap();
        assert_eq!(
            ct.as_slice(),
            hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                 76fc6ece0f4e1768cddf8853bb2d551b").as_slice()
        );
        let mut dec = GcmOperation::new(&k, &params, false).unwrap();
        assert_eq!(dec.single(&ct).unwrap().as_slice(), pt.as_slice());
    }

    #[test]
    fn multipart_equals_single_part_and_tampering_is_refused() {
        let k = key(&[7u8; 32]);
        let p = GcmParams { iv: vec![1; 12], aad: b"ad".to_vec(), tag_bits: 128 };
        let single = GcmOperation::new(&k, &p, true).unwrap().single(b"hello world").unwrap();
        let mut op = GcmOperation::new(&k, &p, true).unwrap();
        assert!(op.update(b"hello ").unwrap().is_empty());
        assert!(op.update(b"world").unwrap().is_empty());
        assert_eq!(op.final_len(), single.len());
        assert_eq!(op.finish().unwrap().as_slice(), single.as_slice());

        let mut bad = single.to_vec();
        bad[0] ^= 1;
        let mut dec = GcmOperation::new(&k, &p, false).unwrap();
        assert_eq!(dec.single(&bad).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(dec.single(&[0; 5]).unwrap_err(), Error::EncryptedDataLenRange);
    }

    #[test]
    fn writing_into_a_buffer_matches_the_owned_output_and_wipes_a_bad_opening() {
        let k = key(&[9u8; 32]);
        let p = GcmParams { iv: vec![2; 12], aad: b"ad".to_vec(), tag_bits: 128 };
        let owned = GcmOperation::new(&k, &p, true).unwrap().single(b"some plaintext").unwrap();
        let mut out = [0xEEu8; 64];
        let n = GcmOperation::new(&k, &p, true).unwrap().single_into(b"some plaintext", &mut out).unwrap();
        assert_eq!(&out[..n], owned.as_slice());
        let mut op = GcmOperation::new(&k, &p, true).unwrap();
        assert_eq!(op.update_into(b"some ", &mut out).unwrap(), 0);
        assert_eq!(op.update_into(b"plaintext", &mut out).unwrap(), 0);
        let n = op.finish_into(&mut out).unwrap();
        assert_eq!(&out[..n], owned.as_slice());

        let mut plain = [0u8; 32];
        let n = GcmOperation::new(&k, &p, false).unwrap().single_into(&owned, &mut plain).unwrap();
        assert_eq!(&plain[..n], b"some plaintext");
        let mut bad = owned.to_vec();
        bad[3] ^= 1;
        let mut plain = [0xEEu8; 32];
        let mut dec = GcmOperation::new(&k, &p, false).unwrap();
        assert_eq!(dec.single_into(&bad, &mut plain), Err(Error::EncryptedDataInvalid));
        assert!(plain[..bad.len() - TAG_LEN].iter().all(|b| *b == 0), "no unauthenticated plaintext");
        assert_eq!(dec.single_into(&[0; 5], &mut plain), Err(Error::EncryptedDataLenRange));
    }

    /// NIST GCM test vector (gcmEncryptExtIV128.rsp, [Keylen = 128] [IVlen = 96] [PTlen = 128]
    /// [AADlen = 128] [Taglen = 128], Count 0), and its tag truncated to each length allowed:
    /// SP 800-38D defines a truncated tag as the full tag's leading bits.
    #[test]
    fn known_answers_with_truncated_tags() {
        let k = key(&hex("c939cc13397c1d37de6ae0e1cb7c423c"));
        let iv = hex("b3d8cc017cbb89b39e0f67e2");
        let aad = hex("24825602bd12a984e0092d3e448eda5f");
        let pt = hex("c3b3c41f113a31b73d9a5cd432103069");
        let ct = hex("93fe7d9e9bfd10348a5606e5cafa7354");
        let full = hex("0032a1dc85f1c9786925a2e71d8272dd");
        for bits in [128u64, 120, 112, 104, 96, 64, 32] {
            let p = GcmParams { iv: iv.clone(), aad: aad.clone(), tag_bits: bits };
            let expected = [ct.as_slice(), &full[..bits as usize / 8]].concat();
            let sealed = GcmOperation::new(&k, &p, true).unwrap().single(&pt).unwrap();
            assert_eq!(sealed.as_slice(), expected.as_slice(), "{bits}");
            let mut out = [0u8; 32];
            let n = GcmOperation::new(&k, &p, true).unwrap().single_into(&pt, &mut out).unwrap();
            assert_eq!(&out[..n], expected.as_slice(), "{bits} into");
            assert_eq!(GcmOperation::new(&k, &p, false).unwrap().single(&expected).unwrap().as_slice(), pt);
            let n = GcmOperation::new(&k, &p, false).unwrap().single_into(&expected, &mut out).unwrap();
            assert_eq!(&out[..n], pt.as_slice());
            let mut dec = GcmOperation::new(&k, &p, false).unwrap();
            dec.update(&expected[..5]).unwrap();
            dec.update(&expected[5..]).unwrap();
            assert_eq!(dec.finish().unwrap().as_slice(), pt);

            // Every flipped bit of the (truncated) tag or the ciphertext is refused, and no
            // plaintext is left behind.
            for i in [0, ct.len() - 1, ct.len(), expected.len() - 1] {
                let mut bad = expected.clone();
                bad[i] ^= 0x80;
                let mut out = [0xEEu8; 32];
                let mut dec = GcmOperation::new(&k, &p, false).unwrap();
                assert_eq!(dec.single_into(&bad, &mut out), Err(Error::EncryptedDataInvalid), "{bits} {i}");
                assert!(out[..ct.len()].iter().all(|b| *b == 0));
                assert_eq!(dec.single(&bad).unwrap_err(), Error::EncryptedDataInvalid);
            }
            let wrong_aad = GcmParams { aad: hex("24825602bd12a984e0092d3e448eda5e"), ..p.clone() };
            let mut dec = GcmOperation::new(&k, &wrong_aad, false).unwrap();
            assert_eq!(dec.single(&expected).unwrap_err(), Error::EncryptedDataInvalid);
        }
    }

    /// IVs other than 96 bits: the GCM specification's test case 6 (a 60-byte IV, AES-128),
    /// single-part, multi-part, into a buffer, and with a truncated tag; a wrong tag is refused.
    #[test]
    fn ivs_of_other_lengths_give_the_specified_answers() {
        let k = key(&hex("feffe9928665731c6d6a8f9467308308"));
        let params = GcmParams {
            iv: hex(
                "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
            ),
            aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            tag_bits: 128,
        };
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let expected = [
            hex(
                "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
            ),
            hex("619cc5aefffe0bfa462af43c1699d050"),
        ]
        .concat();
        let sealed = GcmOperation::new(&k, &params, true).unwrap().single(&plain).unwrap();
        assert_eq!(*sealed, expected);
        let mut parts = GcmOperation::new(&k, &params, true).unwrap();
        parts.update(&plain[..7]).unwrap();
        parts.update(&plain[7..]).unwrap();
        assert_eq!(*parts.finish().unwrap(), expected);
        let mut into = vec![0; expected.len()];
        GcmOperation::new(&k, &params, true).unwrap().single_into(&plain, &mut into).unwrap();
        assert_eq!(into, expected);

        assert_eq!(*GcmOperation::new(&k, &params, false).unwrap().single(&expected).unwrap(), plain);
        let short = GcmParams { tag_bits: 96, ..params.clone() };
        let truncated = &expected[..expected.len() - 4];
        assert_eq!(*GcmOperation::new(&k, &short, true).unwrap().single(&plain).unwrap(), truncated);
        assert_eq!(*GcmOperation::new(&k, &short, false).unwrap().single(truncated).unwrap(), plain);
        let mut forged = expected.clone();
        *forged.last_mut().unwrap() ^= 1;
        let mut out = vec![0xaa; plain.len()];
        let mut decrypt = GcmOperation::new(&k, &params, false).unwrap();
        assert_eq!(decrypt.single_into(&forged, &mut out), Err(Error::EncryptedDataInvalid));
        assert!(out.iter().all(|&b| b == 0), "plaintext of a forged message was left behind");
    }

    #[test]
    fn parameters_and_keys_are_checked() {
        let p = GcmParams { iv: vec![1; 12], aad: vec![], tag_bits: 128 };
        let k = key(&[1; 32]);
        for iv_len in [0, MAX_IV_LEN + 1, 4096] {
            let iv = GcmParams { iv: vec![1; iv_len], ..p.clone() };
            assert_eq!(
                GcmOperation::new(&k, &iv, true).err(),
                Some(Error::MechanismParamInvalid),
                "{iv_len}"
            );
        }
        for iv_len in [1, 8, 11, 12, 13, 16, 64, MAX_IV_LEN] {
            let iv = GcmParams { iv: vec![1; iv_len], ..p.clone() };
            assert!(GcmOperation::new(&k, &iv, true).is_ok(), "{iv_len}");
        }
        for bits in [0, 8, 24, 31, 40, 56, 72, 88, 100, 129, 256, u64::MAX] {
            let tag = GcmParams { tag_bits: bits, ..p.clone() };
            assert_eq!(GcmOperation::new(&k, &tag, true).err(), Some(Error::MechanismParamInvalid), "{bits}");
        }
        assert_eq!(GcmOperation::new(&key(&[1; 20]), &p, true).err(), Some(Error::KeySizeRange));
        let generic =
            SecretKey { key_type: cryptoki_sys::CKK_GENERIC_SECRET, value: Zeroizing::new(vec![1; 32]) };
        assert_eq!(GcmOperation::new(&generic, &p, true).err(), Some(Error::KeyTypeInconsistent));
    }
}
