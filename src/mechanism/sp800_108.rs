//! The key-based KDFs of NIST SP 800-108 as PKCS#11 3.0 defines them:
//! CKM_SP800_108_COUNTER_KDF and CKM_SP800_108_FEEDBACK_KDF, with HMAC (SHA-1, SHA-224,
//! SHA-256, SHA-384, SHA-512) or AES-CMAC as the PRF.
//!
//! Each PRF input is the caller's list of data parameters in order: the iteration variable
//! (counter mode: the block counter i in the given format; feedback mode: the previous block,
//! the IV for the first), an optional counter (feedback mode only), the length L of the
//! derived material in bits, and byte arrays. Block i of the output is PRF(key, input(i)).
//!
//! Not offered (`CKR_MECHANISM_PARAM_INVALID`): additional derived keys
//! (`pAdditionalDerivedKeys`), key-handle data parameters, and the double-pipeline KDF.

use aws_lc_rs::{cmac, hmac};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::SecretKey;
use crate::{Error, Result};

/// `CK_SP800_108_COUNTER_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CounterFormat {
    pub little_endian: bool,
    pub width_bits: u64,
}

/// `CK_SP800_108_DKM_LENGTH_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DkmFormat {
    /// `CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS` or `_SUM_OF_SEGMENTS`.
    pub method: CK_ULONG,
    pub little_endian: bool,
    pub width_bits: u64,
}

/// One `CK_PRF_DATA_PARAM`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PrfData {
    /// `CK_SP800_108_ITERATION_VARIABLE`: a counter format (counter mode) or none (feedback).
    Iteration(Option<CounterFormat>),
    /// `CK_SP800_108_OPTIONAL_COUNTER`.
    OptionalCounter(CounterFormat),
    /// `CK_SP800_108_DKM_LENGTH`.
    DkmLength(DkmFormat),
    /// `CK_SP800_108_BYTE_ARRAY`.
    Bytes(Vec<u8>),
    /// `CK_SP800_108_KEY_HANDLE` (not offered).
    KeyHandle(CK_OBJECT_HANDLE),
}

/// `CK_SP800_108_KDF_PARAMS` or `CK_SP800_108_FEEDBACK_KDF_PARAMS`, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KbkdfParams {
    pub prf: CK_MECHANISM_TYPE,
    pub data: Vec<PrfData>,
    /// The feedback mode's IV (`None` in counter mode).
    pub iv: Option<Vec<u8>>,
    /// `ulAdditionalDerivedKeys`.
    pub additional_keys: usize,
}

enum Prf {
    Hmac(Box<hmac::Key>),
    Cmac(cmac::Key),
}

impl Prf {
    fn new(prf: CK_MECHANISM_TYPE, key: &SecretKey) -> Result<(Prf, usize)> {
        let hmac_algorithm = match prf {
            CKM_SHA_1_HMAC => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            CKM_SHA224_HMAC => hmac::HMAC_SHA224,
            CKM_SHA256_HMAC => hmac::HMAC_SHA256,
            CKM_SHA384_HMAC => hmac::HMAC_SHA384,
            CKM_SHA512_HMAC => hmac::HMAC_SHA512,
            CKM_AES_CMAC => {
                let algorithm = match (key.key_type, key.value.len()) {
                    (CKK_AES, 16) => cmac::AES_128,
                    (CKK_AES, 24) => cmac::AES_192,
                    (CKK_AES, 32) => cmac::AES_256,
                    (CKK_AES, _) => return Err(Error::KeySizeRange),
                    _ => return Err(Error::KeyTypeInconsistent),
                };
                let k = cmac::Key::new(algorithm, &key.value).map_err(|_| Error::KeySizeRange)?;
                return Ok((Prf::Cmac(k), algorithm.tag_len()));
            }
            _ => return Err(Error::MechanismParamInvalid),
        };
        if key.value.is_empty() {
            return Err(Error::KeySizeRange);
        }
        let len = hmac_algorithm.digest_algorithm().output_len();
        Ok((Prf::Hmac(Box::new(hmac::Key::new(hmac_algorithm, &key.value))), len))
    }

    fn block(&self, parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(match self {
            Prf::Hmac(k) => {
                let mut c = hmac::Context::with_key(k);
                parts.iter().for_each(|p| c.update(p));
                c.sign().as_ref().to_vec()
            }
            Prf::Cmac(k) => {
                let failed = |_| Error::Internal("CMAC failed");
                let mut c = cmac::Context::with_key(k);
                for p in parts {
                    c.update(p).map_err(failed)?;
                }
                c.sign().map_err(failed)?.as_ref().to_vec()
            }
        }))
    }
}

/// `value` in `width_bits` (a multiple of 8, at most 64) bits, big- or little-endian;
/// `None` if it does not fit.
fn encode(value: u64, width_bits: u64, little_endian: bool, max_width: u64) -> Option<Vec<u8>> {
    if width_bits == 0 || !width_bits.is_multiple_of(8) || width_bits > max_width {
        return None;
    }
    let bytes = (width_bits / 8) as usize;
    if bytes < 8 && value >> (8 * bytes) != 0 {
        return None;
    }
    let be = value.to_be_bytes();
    let mut out = be[8 - bytes..].to_vec();
    if little_endian {
        out.reverse();
    }
    Some(out)
}

/// Derives `len` bytes from `key` with the counter (`CKM_SP800_108_COUNTER_KDF`) or feedback
/// (`CKM_SP800_108_FEEDBACK_KDF`) KDF.
pub fn derive(
    mechanism: CK_MECHANISM_TYPE,
    params: &KbkdfParams,
    key: &SecretKey,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = Error::MechanismParamInvalid;
    let feedback = match (mechanism, &params.iv) {
        (CKM_SP800_108_COUNTER_KDF, None) => false,
        (CKM_SP800_108_FEEDBACK_KDF, Some(_)) => true,
        _ => return Err(bad),
    };
    if params.additional_keys != 0 {
        return Err(bad);
    }
    // Exactly one iteration variable, of the mode's form; optional counters in feedback only.
    let iterations: Vec<&Option<CounterFormat>> = params
        .data
        .iter()
        .filter_map(|d| if let PrfData::Iteration(f) = d { Some(f) } else { None })
        .collect();
    match iterations.as_slice() {
        [None] if feedback => {}
        [Some(_)] if !feedback => {}
        _ => return Err(bad),
    }
    // An optional counter is "invalid for this KDF type" in counter mode (the counter is the
    // iteration variable); the block counter and the length L each appear at most once.
    let counters = params.data.iter().filter(|d| matches!(d, PrfData::OptionalCounter(_))).count();
    let lengths = params.data.iter().filter(|d| matches!(d, PrfData::DkmLength(_))).count();
    if (counters > 0 && !feedback) || counters > 1 || lengths > 1 {
        return Err(bad);
    }
    let (prf, block_len) = Prf::new(params.prf, key)?;
    if len == 0 {
        return Err(Error::TemplateInconsistent);
    }
    let blocks = len.div_ceil(block_len);
    let mut fixed: Vec<Option<Vec<u8>>> = Vec::with_capacity(params.data.len());
    for d in &params.data {
        fixed.push(match d {
            PrfData::Iteration(_) | PrfData::OptionalCounter(_) => None,
            PrfData::Bytes(b) => Some(b.clone()),
            PrfData::DkmLength(f) => {
                let bits = match f.method {
                    CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => len as u64 * 8,
                    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => (blocks * block_len) as u64 * 8,
                    _ => return Err(bad),
                };
                Some(encode(bits, f.width_bits, f.little_endian, 64).ok_or(Error::MechanismParamInvalid)?)
            }
            PrfData::KeyHandle(_) => return Err(bad),
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * block_len));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(params.iv.clone().unwrap_or_default());
    for i in 1..=blocks as u64 {
        let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(params.data.len());
        for (d, f) in params.data.iter().zip(&fixed) {
            parts.push(match (d, f) {
                (_, Some(bytes)) => Zeroizing::new(bytes.clone()),
                (PrfData::Iteration(None), None) => previous.clone(),
                (PrfData::Iteration(Some(c)) | PrfData::OptionalCounter(c), None) => Zeroizing::new(
                    encode(i, c.width_bits, c.little_endian, 32).ok_or(Error::MechanismParamInvalid)?,
                ),
                _ => return Err(Error::Internal("SP 800-108 data parameter")),
            });
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        previous = prf.block(&refs)?;
        out.extend_from_slice(&previous);
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mechanism::test_vectors::unhex as hex;

    const BE32: CounterFormat = CounterFormat { little_endian: false, width_bits: 32 };
    const L32: DkmFormat =
        DkmFormat { method: CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, little_endian: false, width_bits: 32 };

    /// Label ‖ 0x00 ‖ Context ‖ [L]32, around the iteration data of each mode.
    fn fixed_input(mut iteration: Vec<PrfData>) -> Vec<PrfData> {
        iteration.extend([
            PrfData::Bytes(b"label".to_vec()),
            PrfData::Bytes(vec![0]),
            PrfData::Bytes(b"context".to_vec()),
            PrfData::DkmLength(L32),
        ]);
        iteration
    }

    fn key(key_type: CK_KEY_TYPE, value: &[u8]) -> SecretKey {
        SecretKey { key_type, value: Zeroizing::new(value.to_vec()) }
    }

    /// Known answers computed by OpenSSL 3.0's KBKDF (`openssl kdf ... KBKDF`), whose input
    /// layout is [i]32 ‖ Label ‖ 0x00 ‖ Context ‖ [L]32 (feedback: K(i-1) first).
    #[test]
    fn known_answers_from_openssl() {
        let k = key(CKK_GENERIC_SECRET, &(0u8..32).collect::<Vec<_>>());
        let counter = KbkdfParams {
            prf: CKM_SHA256_HMAC,
            data: fixed_input(vec![PrfData::Iteration(Some(BE32))]),
            iv: None,
            additional_keys: 0,
        };
        assert_eq!(
            *derive(CKM_SP800_108_COUNTER_KDF, &counter, &k, 40).unwrap(),
            hex("c5115a8e2c9cf655fabbfecbe725e440a9838838f5b46130c654f368f780edd650d532c0fdeb6a35")
        );
        let feedback = KbkdfParams {
            prf: CKM_SHA256_HMAC,
            data: fixed_input(vec![PrfData::Iteration(None), PrfData::OptionalCounter(BE32)]),
            iv: Some((0xa0u8..0xc0).collect()),
            additional_keys: 0,
        };
        assert_eq!(
            *derive(CKM_SP800_108_FEEDBACK_KDF, &feedback, &k, 40).unwrap(),
            hex("429d4a1f9b421653d084fd6ab43e90f9b9c51c5f4cc5f6001d37b614fade3bffc70f88ab29314deb")
        );
        let aes = key(CKK_AES, &(0u8..16).collect::<Vec<_>>());
        let cmac = KbkdfParams { prf: CKM_AES_CMAC, ..counter.clone() };
        assert_eq!(
            *derive(CKM_SP800_108_COUNTER_KDF, &cmac, &aes, 20).unwrap(),
            hex("005ccdd612ed86ac3a5169c555986b7f880d5d7d")
        );
    }

    #[test]
    fn formats_and_refusals() {
        assert_eq!(encode(0x0102, 16, false, 32), Some(vec![1, 2]));
        assert_eq!(encode(0x0102, 16, true, 32), Some(vec![2, 1]));
        assert_eq!(encode(0x0102, 8, false, 32), None);
        assert_eq!(encode(1, 12, false, 32), None);
        assert_eq!(encode(1, 64, false, 32), None);
        let k = key(CKK_GENERIC_SECRET, &[7; 32]);
        let ok = KbkdfParams {
            prf: CKM_SHA256_HMAC,
            data: fixed_input(vec![PrfData::Iteration(Some(BE32))]),
            iv: None,
            additional_keys: 0,
        };
        assert_eq!(derive(CKM_SP800_108_COUNTER_KDF, &ok, &k, 100).unwrap().len(), 100);
        let bad = |p: KbkdfParams, m| derive(m, &p, &k, 32).err();
        let invalid = Some(Error::MechanismParamInvalid);
        assert_eq!(bad(ok.clone(), CKM_SP800_108_FEEDBACK_KDF), invalid);
        assert_eq!(bad(KbkdfParams { additional_keys: 1, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        assert_eq!(bad(KbkdfParams { prf: CKM_SHA256, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        assert_eq!(bad(KbkdfParams { data: vec![], ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        let two = fixed_input(vec![PrfData::Iteration(Some(BE32)), PrfData::Iteration(Some(BE32))]);
        assert_eq!(bad(KbkdfParams { data: two, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        // A counter beside the iteration variable in counter mode ("invalid for this KDF
        // type"); a second counter or a second length L in either mode.
        let counter = fixed_input(vec![PrfData::Iteration(Some(BE32)), PrfData::OptionalCounter(BE32)]);
        assert_eq!(bad(KbkdfParams { data: counter, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        let mut two_lengths = ok.data.clone();
        two_lengths.push(PrfData::DkmLength(L32));
        assert_eq!(bad(KbkdfParams { data: two_lengths, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        let feedback = KbkdfParams {
            data: fixed_input(vec![
                PrfData::Iteration(None),
                PrfData::OptionalCounter(BE32),
                PrfData::OptionalCounter(BE32),
            ]),
            iv: Some(vec![]),
            ..ok.clone()
        };
        assert_eq!(bad(feedback, CKM_SP800_108_FEEDBACK_KDF), invalid);
        let handle = fixed_input(vec![PrfData::Iteration(Some(BE32)), PrfData::KeyHandle(1)]);
        assert_eq!(bad(KbkdfParams { data: handle, ..ok.clone() }, CKM_SP800_108_COUNTER_KDF), invalid);
        // An 8-bit counter cannot count past 255 blocks.
        let narrow = vec![PrfData::Iteration(Some(CounterFormat { little_endian: false, width_bits: 8 }))];
        let p = KbkdfParams { data: narrow, ..ok.clone() };
        assert_eq!(derive(CKM_SP800_108_COUNTER_KDF, &p, &k, 255 * 32).unwrap().len(), 255 * 32);
        assert_eq!(derive(CKM_SP800_108_COUNTER_KDF, &p, &k, 255 * 32 + 1).err(), invalid);
        // CMAC needs an AES key.
        let cmac = KbkdfParams { prf: CKM_AES_CMAC, ..ok };
        assert_eq!(derive(CKM_SP800_108_COUNTER_KDF, &cmac, &k, 32).err(), Some(Error::KeyTypeInconsistent));
    }
}
