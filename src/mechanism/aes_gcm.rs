//! CKM_AES_GCM for C_Encrypt*/C_Decrypt*.
//!
//! AES-GCM cannot release plaintext before the tag is checked, and aws-lc-rs seals whole
//! messages, so multi-part calls buffer their input and produce everything at the final call
//! (as SoftHSMv2 does); updates return no bytes. The IV is the caller's (96 bits) and the tag
//! is 128 bits; other lengths are refused with `CKR_MECHANISM_PARAM_INVALID`.

use aws_lc_rs::aead::{AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use cryptoki_sys::CKK_AES;
use zeroize::Zeroizing;

use std::sync::Arc;

use super::prepared::PreparedKey;
use super::secret_buffer::SecretBuffer;
use super::{CipherOperation, GcmParams, KeyMaterial, SecretKey, rng};
use crate::{Error, Result};

pub const IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

pub struct GcmOperation {
    /// Shared with the session's cache of prepared keys: the key schedule is built once.
    key: Arc<PreparedKey>,
    iv: [u8; IV_LEN],
    aad: Vec<u8>,
    encrypt: bool,
    /// The input of a multi-part operation, kept until its final call (GCM cannot release
    /// plaintext before the tag is checked).
    buffered: SecretBuffer,
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
        let iv: [u8; IV_LEN] = params.iv.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?;
        if params.tag_bits != (TAG_LEN * 8) as u64 {
            return Err(Error::MechanismParamInvalid);
        }
        key.gcm()?;
        Ok(GcmOperation {
            key: key.clone(),
            iv,
            aad: params.aad.clone(),
            encrypt,
            buffered: SecretBuffer::new(),
        })
    }

    fn run(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::assume_unique_for_key(self.iv);
        let aad = Aad::from(self.aad.as_slice());
        if self.encrypt {
            let mut out = Zeroizing::new(Vec::with_capacity(input.len() + TAG_LEN));
            out.extend_from_slice(input);
            let tag = self
                .key
                .gcm()?
                .seal_in_place_separate_tag(nonce, aad, out.as_mut_slice())
                .map_err(|_| Error::DataLenRange)?;
            out.extend_from_slice(tag.as_ref());
            Ok(out)
        } else {
            if input.len() < TAG_LEN {
                return Err(Error::EncryptedDataLenRange);
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
        let nonce = Nonce::assume_unique_for_key(self.iv);
        let aad = Aad::from(self.aad.as_slice());
        let len = self.out_len(input.len())?;
        let out = out.get_mut(..len).ok_or(Error::Internal("GCM output buffer too short"))?;
        if self.encrypt {
            // Out of place: the plaintext is read once, not copied first.
            let (body, tag_out) = out.split_at_mut(input.len());
            self.key
                .gcm()?
                .seal_out_of_place_scatter(nonce, aad, input, body, &[], tag_out)
                .map_err(|_| Error::DataLenRange)?;
        } else {
            let (ciphertext, tag) = input.split_at(len);
            if self.key.gcm()?.open_separate_gather(nonce, aad, ciphertext, tag, out).is_err() {
                zeroize::Zeroize::zeroize(out);
                return Err(Error::EncryptedDataInvalid);
            }
        }
        Ok(len)
    }

    fn out_len(&self, input_len: usize) -> Result<usize> {
        if self.encrypt {
            Ok(input_len + TAG_LEN)
        } else {
            input_len.checked_sub(TAG_LEN).ok_or(Error::EncryptedDataLenRange)
        }
    }
}

impl CipherOperation for GcmOperation {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        self.out_len(input_len)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        // A too-short decryption input is reported by `finish`, not by the size query.
        self.out_len(self.buffered.len()).unwrap_or(0)
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.run(input)
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.buffered.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let input = self.buffered.take();
        self.run(&input)
    }

    fn single_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        self.run_into(input, out)
    }

    fn update_into(&mut self, input: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.buffered.extend_from_slice(input);
        Ok(0)
    }

    fn finish_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let input = self.buffered.take();
        self.run_into(&input, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> SecretKey {
        SecretKey { key_type: CKK_AES, value: Zeroizing::new(bytes.to_vec()) }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

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

    #[test]
    fn parameters_and_keys_are_checked() {
        let p = GcmParams { iv: vec![1; 12], aad: vec![], tag_bits: 128 };
        let short_iv = GcmParams { iv: vec![1; 8], ..p.clone() };
        let short_tag = GcmParams { tag_bits: 96, ..p.clone() };
        let k = key(&[1; 32]);
        assert_eq!(GcmOperation::new(&k, &short_iv, true).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(GcmOperation::new(&k, &short_tag, true).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(GcmOperation::new(&key(&[1; 20]), &p, true).err(), Some(Error::KeySizeRange));
        let generic =
            SecretKey { key_type: cryptoki_sys::CKK_GENERIC_SECRET, value: Zeroizing::new(vec![1; 32]) };
        assert_eq!(GcmOperation::new(&generic, &p, true).err(), Some(Error::KeyTypeInconsistent));
    }
}

/// The per-message parameters of PKCS#11 3.0 message-based AES-GCM (`CK_GCM_MESSAGE_PARAMS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmMessageParams {
    /// The IV: given by the caller (`CKG_NO_GENERATE`), or its fixed leading bits kept and the
    /// rest generated by the module, which writes the IV used back here.
    pub iv: Vec<u8>,
    pub fixed_bits: u64,
    pub generator: cryptoki_sys::CK_GENERATOR_FUNCTION,
    pub tag_bits: u64,
}

/// A key set up for message-based encryption or decryption (`C_MessageEncryptInit`), which
/// may seal many messages, each with its own IV; the module can generate the IVs so that an
/// application doing envelope encryption never has to invent one.
pub struct GcmMessageKey {
    key: LessSafeKey,
    /// The next counter value for `CKG_GENERATE_COUNTER`. It starts at a random point of the
    /// counter space, so that two sessions using the same key and fixed field do not walk
    /// the same IVs; it never wraps.
    counter: u64,
    counter_used: u64,
}

/// At least this many bits of a generated counter IV must be counter (not fixed), so that
/// the random starting points of two sessions are unlikely to overlap.
const MIN_COUNTER_BITS: u64 = 32;

impl GcmMessageKey {
    pub fn new(key: &SecretKey) -> Result<GcmMessageKey> {
        if key.key_type != CKK_AES {
            return Err(Error::KeyTypeInconsistent);
        }
        Ok(GcmMessageKey {
            key: gcm_key(&key.value)?,
            counter: u64::from_be_bytes(rng::bytes::<8>()?),
            counter_used: 0,
        })
    }

    fn check(params: &GcmMessageParams) -> Result<()> {
        if params.iv.len() != IV_LEN || params.tag_bits != (TAG_LEN * 8) as u64 || params.fixed_bits > 96 {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(())
    }

    /// The IV for the next message: the caller's, or generated into the bits after the fixed
    /// ones.
    fn next_iv(&mut self, params: &GcmMessageParams) -> Result<[u8; IV_LEN]> {
        use cryptoki_sys::{CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM, CKG_NO_GENERATE};
        let given: [u8; IV_LEN] =
            params.iv.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?;
        let free_bits = 96 - params.fixed_bits;
        let generated: [u8; IV_LEN] = match params.generator {
            CKG_NO_GENERATE => return Ok(given),
            CKG_GENERATE | CKG_GENERATE_RANDOM => rng::bytes::<IV_LEN>()?,
            CKG_GENERATE_COUNTER => {
                if free_bits < MIN_COUNTER_BITS {
                    return Err(Error::MechanismParamInvalid);
                }
                let space = if free_bits >= 64 { u64::MAX } else { (1u64 << free_bits) - 1 };
                if self.counter_used >= space {
                    // Every IV of this key's counter space has been used in this operation.
                    return Err(Error::ActionProhibited);
                }
                let value = self.counter & space;
                self.counter = self.counter.wrapping_add(1);
                self.counter_used += 1;
                let mut block = [0u8; IV_LEN];
                block[4..].copy_from_slice(&value.to_be_bytes());
                block
            }
            _ => return Err(Error::MechanismParamInvalid),
        };
        // Keep the caller's fixed leading bits, take the rest from the generated block.
        let mut iv = [0u8; IV_LEN];
        for bit in 0..96u64 {
            let (byte, mask) = ((bit / 8) as usize, 0x80u8 >> (bit % 8));
            let source = if bit < params.fixed_bits { given[byte] } else { generated[byte] };
            iv[byte] |= source & mask;
        }
        Ok(iv)
    }

    /// Seals one message; returns the ciphertext (as long as the plaintext) and the tag, and
    /// leaves the IV used in `params.iv`.
    pub fn encrypt(
        &mut self,
        params: &mut GcmMessageParams,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, [u8; TAG_LEN])> {
        Self::check(params)?;
        let iv = self.next_iv(params)?;
        let mut out = plaintext.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut out)
            .map_err(|_| Error::DataLenRange)?;
        params.iv = iv.to_vec();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag.as_ref());
        Ok((out, t))
    }

    /// Opens one message sealed with `params.iv` and `tag`; any mismatch is one opaque error.
    pub fn decrypt(
        &self,
        params: &GcmMessageParams,
        tag: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        Self::check(params)?;
        let iv: [u8; IV_LEN] = params.iv.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?;
        if tag.len() != TAG_LEN {
            return Err(Error::MechanismParamInvalid);
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + TAG_LEN));
        buf.extend_from_slice(ciphertext);
        buf.extend_from_slice(tag);
        let len = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| Error::EncryptedDataInvalid)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod message_tests {
    use super::*;
    use cryptoki_sys::{CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM, CKG_NO_GENERATE};

    fn key() -> SecretKey {
        SecretKey { key_type: CKK_AES, value: Zeroizing::new(vec![3; 32]) }
    }

    fn params(generator: u64, fixed_bits: u64) -> GcmMessageParams {
        GcmMessageParams { iv: vec![0xAB; 12], fixed_bits, generator, tag_bits: 128 }
    }

    #[test]
    fn message_encryption_matches_single_shot_gcm_with_the_same_iv() {
        let mut m = GcmMessageKey::new(&key()).unwrap();
        let mut p = params(CKG_NO_GENERATE, 0);
        let (ct, tag) = m.encrypt(&mut p, b"aad", b"message").unwrap();
        let single = GcmOperation::new(
            &key(),
            &GcmParams { iv: vec![0xAB; 12], aad: b"aad".to_vec(), tag_bits: 128 },
            true,
        )
        .unwrap()
        .single(b"message")
        .unwrap();
        assert_eq!([ct.as_slice(), &tag[..]].concat(), single.as_slice());
        assert_eq!(m.decrypt(&p, &tag, b"aad", &ct).unwrap().as_slice(), b"message");
        let mut bad = tag;
        bad[0] ^= 1;
        assert_eq!(m.decrypt(&p, &bad, b"aad", &ct).unwrap_err(), Error::EncryptedDataInvalid);
    }

    #[test]
    fn generated_ivs_keep_the_fixed_bits_and_never_repeat() {
        let mut m = GcmMessageKey::new(&key()).unwrap();
        for generator in [CKG_GENERATE_RANDOM, CKG_GENERATE_COUNTER] {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                let mut p = params(generator, 36);
                let (ct, tag) = m.encrypt(&mut p, b"", b"x").unwrap();
                assert_eq!(p.iv[..4], [0xAB; 4], "the fixed 32 bits are kept");
                assert_eq!(p.iv[4] & 0xF0, 0xA0, "and the next 4");
                assert!(seen.insert(p.iv.clone()), "an IV repeated");
                assert_eq!(m.decrypt(&p, &tag, b"", &ct).unwrap().as_slice(), b"x");
            }
        }
    }

    #[test]
    fn counters_need_room_and_bad_parameters_are_refused() {
        let mut m = GcmMessageKey::new(&key()).unwrap();
        assert_eq!(
            m.encrypt(&mut params(CKG_GENERATE_COUNTER, 80), b"", b"x").unwrap_err(),
            Error::MechanismParamInvalid
        );
        let mut short = params(CKG_NO_GENERATE, 0);
        short.iv.truncate(8);
        assert_eq!(m.encrypt(&mut short, b"", b"x").unwrap_err(), Error::MechanismParamInvalid);
        let mut tag96 = params(CKG_NO_GENERATE, 0);
        tag96.tag_bits = 96;
        assert_eq!(m.encrypt(&mut tag96, b"", b"x").unwrap_err(), Error::MechanismParamInvalid);
        assert_eq!(m.encrypt(&mut params(99, 0), b"", b"x").unwrap_err(), Error::MechanismParamInvalid);
    }
}
