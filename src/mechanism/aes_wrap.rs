//! The AES key wraps: CKM_AES_KEY_WRAP (RFC 3394), CKM_AES_KEY_WRAP_KWP (RFC 5649), and
//! CKM_AES_KEY_WRAP_PAD / CKM_AES_KEY_WRAP_PKCS7 (RFC 3394 over PKCS #7-padded input), for
//! C_WrapKey/C_UnwrapKey and as single-part C_Encrypt/C_Decrypt.
//!
//! The wrap algorithm (RFC 3394 section 2.2, the "W" function of NIST SP 800-38F) is written
//! here over aws-lc-rs's AES block cipher, because aws-lc-rs's own `key_wrap` offers neither
//! 192-bit KEKs nor an initial value other than the default; so every AES key size and the
//! PKCS #11 alternative initial value (8 bytes for KW and PAD/PKCS7, the 4-byte prefix of the
//! alternative IV for KWP) are supported. Every unwrap failure is one opaque
//! `CKR_WRAPPED_KEY_INVALID`, checked in constant shape, except a length that can never be
//! valid (`CKR_WRAPPED_KEY_LEN_RANGE`).
//!
//! **SoftHSMv2 differs:** it ships RFC 5649 under the code `CKM_AES_KEY_WRAP_PAD`. Here that
//! code means what PKCS #11 3.x defines it as (the same as `CKM_AES_KEY_WRAP_PKCS7`); a blob
//! wrapped by SoftHSMv2 with `CKM_AES_KEY_WRAP_PAD` opens here with `CKM_AES_KEY_WRAP_KWP`.

use aws_lc_rs::key_wrap::{AES_128, AES_256, AesBlockCipher, AesKek, KeyWrap, KeyWrapPadded};
use cryptoki_sys::CKK_AES;
use cryptoki_sys::{
    CK_MECHANISM_TYPE, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_PKCS7,
};
use zeroize::Zeroizing;

use super::aes_modes::{self, AesBlocks, BLOCK_LEN, ct, pkcs7_check};
use super::whole_input::{Collected, WholeInputCipher};
use super::{CipherOperation, MechanismParams, SecretKey};
use crate::{Error, Result};

/// The 64-bit semiblock of the wrap algorithm.
const SEMIBLOCK: usize = 8;
/// RFC 3394's default initial value.
pub const DEFAULT_IV: [u8; SEMIBLOCK] = [0xa6; SEMIBLOCK];
/// RFC 5649's default prefix of the alternative initial value.
pub const DEFAULT_KWP_PREFIX: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// Wraps `plaintext` (the value of the key to wrap) under `key`.
///
/// Input lengths: CKM_AES_KEY_WRAP a multiple of 8 bytes, at least 16; KWP at least 1 byte
/// (and below 2^32); PAD/PKCS7 at least 8 bytes, since RFC 3394 needs at least two 64-bit
/// blocks after padding. Others are `Error::DataLenRange`.
pub fn wrap(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    if let Some((cipher, variant)) = native(mechanism, params, key) {
        let mut out = vec![0u8; variant.wrapped_len(plaintext.len())?];
        let kek = AesKek::new(cipher, &key.value).map_err(|_| Error::KeySizeRange)?;
        let written = match variant {
            Variant::Kwp => kek.wrap_with_padding(plaintext, &mut out),
            _ => kek.wrap(plaintext, &mut out),
        }
        .map_err(|_| Error::DataLenRange)?
        .len();
        out.truncate(written);
        return Ok(out);
    }
    Wrapper::new(mechanism, params, key)?.wrap(plaintext)
}

/// The length [`wrap`] gives `len` bytes, without wrapping (for a length query).
pub fn wrapped_len(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
    len: usize,
) -> Result<usize> {
    if let Some((_, variant)) = native(mechanism, params, key) {
        return variant.wrapped_len(len);
    }
    aes_modes::aes_algorithm(key)?;
    Wrapper::parameters(mechanism, params)?.0.wrapped_len(len)
}

/// KW and KWP with the default initial value under a 128- or 256-bit KEK (nearly every
/// use) go to AWS-LC's own `AES_wrap_key`/`AES_wrap_key_padded` (several times faster than
/// the block-by-block W below, which serves the other cases).
fn native(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
) -> Option<(&'static AesBlockCipher, Variant)> {
    let default_iv = match params {
        MechanismParams::None => true,
        MechanismParams::Iv(v) => v.is_empty(),
        _ => false,
    };
    let variant = match mechanism {
        CKM_AES_KEY_WRAP => Variant::Kw,
        CKM_AES_KEY_WRAP_KWP => Variant::Kwp,
        _ => return None,
    };
    let cipher = match key.value.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => return None,
    };
    (default_iv && key.key_type == CKK_AES).then_some((cipher, variant))
}

/// Unwraps `wrapped` under `key`; any failure of its integrity check or padding is
/// `Error::WrappedKeyInvalid`, a length that can never be valid `Error::WrappedKeyLenRange`.
pub fn unwrap(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if let Some((cipher, variant)) = native(mechanism, params, key) {
        let mut out = Zeroizing::new(vec![0u8; variant.unwrapped_len(wrapped.len())?]);
        let kek = AesKek::new(cipher, &key.value).map_err(|_| Error::KeySizeRange)?;
        let opened = match variant {
            Variant::Kwp => kek.unwrap_with_padding(wrapped, &mut out),
            _ => kek.unwrap(wrapped, &mut out),
        };
        let len = opened.map_err(|_| Error::WrappedKeyInvalid)?.len();
        out.truncate(len);
        return Ok(out);
    }
    Wrapper::new(mechanism, params, key)?.unwrap(wrapped)
}

/// The key wraps as C_Encrypt/C_Decrypt: multi-part calls buffer their input and do the work at
/// the final call. Decrypting, a failed check is `CKR_ENCRYPTED_DATA_INVALID` and a bad length
/// `CKR_ENCRYPTED_DATA_LEN_RANGE`.
pub fn cipher(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let wrapper = Wrapper::new(mechanism, params, key)?;
    Ok(Box::new(Collected::around(WrapCipher { wrapper, encrypt })))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// RFC 3394.
    Kw,
    /// RFC 5649.
    Kwp,
    /// RFC 3394 after PKCS #7 padding to a multiple of 8 bytes.
    Pkcs7,
}

impl Variant {
    /// The wrapped length of `len` bytes, or `Error::DataLenRange`.
    fn wrapped_len(self, len: usize) -> Result<usize> {
        let padded = match self {
            Variant::Kw if len >= 2 * SEMIBLOCK && len.is_multiple_of(SEMIBLOCK) => Some(len),
            Variant::Kwp if len >= 1 && u32::try_from(len).is_ok() => len.checked_next_multiple_of(SEMIBLOCK),
            Variant::Pkcs7 if len >= SEMIBLOCK => (len / SEMIBLOCK + 1).checked_mul(SEMIBLOCK),
            _ => None,
        };
        padded.and_then(|p| p.checked_add(SEMIBLOCK)).ok_or(Error::DataLenRange)
    }

    /// An upper bound of the unwrapped length of `len` bytes, or `Error::WrappedKeyLenRange`
    /// for a length no wrap can have.
    fn unwrapped_len(self, len: usize) -> Result<usize> {
        let min = match self {
            Variant::Kwp => 2 * SEMIBLOCK,
            Variant::Kw | Variant::Pkcs7 => 3 * SEMIBLOCK,
        };
        if len < min || !len.is_multiple_of(SEMIBLOCK) {
            return Err(Error::WrappedKeyLenRange);
        }
        Ok(match self {
            Variant::Pkcs7 => len - SEMIBLOCK - 1,
            _ => len - SEMIBLOCK,
        })
    }
}

struct Wrapper {
    variant: Variant,
    aes: AesBlocks,
    /// The initial value (KW, PKCS7), or for KWP its 4-byte prefix then zeros.
    iv: [u8; SEMIBLOCK],
}

impl Wrapper {
    fn new(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams, key: &SecretKey) -> Result<Wrapper> {
        let (variant, iv) = Wrapper::parameters(mechanism, params)?;
        Ok(Wrapper { variant, aes: AesBlocks::new(key)?, iv })
    }

    /// The variant and initial value `mechanism` and `params` ask for (without the key
    /// schedule, which a length query does not need).
    fn parameters(
        mechanism: CK_MECHANISM_TYPE,
        params: &MechanismParams,
    ) -> Result<(Variant, [u8; SEMIBLOCK])> {
        let variant = match mechanism {
            CKM_AES_KEY_WRAP => Variant::Kw,
            CKM_AES_KEY_WRAP_KWP => Variant::Kwp,
            CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_PKCS7 => Variant::Pkcs7,
            _ => return Err(Error::MechanismInvalid),
        };
        let mut iv = [0u8; SEMIBLOCK];
        match (params, variant) {
            (MechanismParams::None, Variant::Kwp) => iv[..4].copy_from_slice(&DEFAULT_KWP_PREFIX),
            (MechanismParams::None, _) => iv = DEFAULT_IV,
            // An empty IV is the NULL parameter of the specification: the default.
            (MechanismParams::Iv(v), Variant::Kwp) if v.is_empty() => {
                iv[..4].copy_from_slice(&DEFAULT_KWP_PREFIX)
            }
            (MechanismParams::Iv(v), _) if v.is_empty() => iv = DEFAULT_IV,
            (MechanismParams::Iv(v), Variant::Kwp) if v.len() == 4 => iv[..4].copy_from_slice(v),
            (MechanismParams::Iv(v), Variant::Kw | Variant::Pkcs7) if v.len() == SEMIBLOCK => {
                iv.copy_from_slice(v)
            }
            _ => return Err(Error::MechanismParamInvalid),
        }
        Ok((variant, iv))
    }

    fn wrapped_len(&self, len: usize) -> Result<usize> {
        self.variant.wrapped_len(len)
    }

    fn unwrapped_len(&self, len: usize) -> Result<usize> {
        self.variant.unwrapped_len(len)
    }

    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let out_len = self.wrapped_len(plaintext.len())?;
        let mut data = Zeroizing::new(Vec::with_capacity(out_len - SEMIBLOCK));
        data.extend_from_slice(plaintext);
        let iv = match self.variant {
            Variant::Kw => self.iv,
            Variant::Kwp => {
                let mli = u32::try_from(plaintext.len()).map_err(|_| Error::DataLenRange)?;
                data.resize(out_len - SEMIBLOCK, 0);
                let mut aiv = self.iv;
                aiv[4..].copy_from_slice(&mli.to_be_bytes());
                if data.len() == SEMIBLOCK {
                    // RFC 5649 section 4.1: one semiblock is encrypted as one AES block.
                    let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
                    block[..SEMIBLOCK].copy_from_slice(&aiv);
                    block[SEMIBLOCK..].copy_from_slice(&data);
                    self.aes.encrypt(block.as_mut_slice())?;
                    return Ok(block.to_vec());
                }
                aiv
            }
            Variant::Pkcs7 => {
                let pad = SEMIBLOCK - plaintext.len() % SEMIBLOCK;
                data.resize(out_len - SEMIBLOCK, pad as u8);
                self.iv
            }
        };
        w(&self.aes, iv, &data)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.unwrapped_len(wrapped.len())?;
        let (a, mut r) = if wrapped.len() == BLOCK_LEN {
            // Only KWP gets here (a single AES block).
            let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
            block.copy_from_slice(wrapped);
            self.aes.decrypt(block.as_mut_slice())?;
            let a: [u8; SEMIBLOCK] =
                block[..SEMIBLOCK].try_into().map_err(|_| Error::Internal("semiblock"))?;
            (a, Zeroizing::new(block[SEMIBLOCK..].to_vec()))
        } else {
            w_inverse(&self.aes, wrapped)?
        };
        let last = &r[r.len() - SEMIBLOCK..];
        // Every check is computed before the one branch on their conjunction.
        let (valid, keep) = match self.variant {
            Variant::Kw => (ct::eq(&a, &self.iv), r.len()),
            Variant::Pkcs7 => {
                let (padding_ok, pad) = pkcs7_check(last);
                (ct::eq(&a, &self.iv) & padding_ok, r.len().saturating_sub(pad))
            }
            Variant::Kwp => {
                let mli = u64::from(u32::from_be_bytes([a[4], a[5], a[6], a[7]]));
                let len = r.len() as u64;
                // RFC 5649 section 3: 8 * (n - 1) < MLI <= 8 * n, and the padding is zeros.
                let mut ok = ct::eq(&a[..4], &self.iv[..4]) & ct::lt(len - 8, mli) & ct::le(mli, len);
                for (i, byte) in last.iter().enumerate() {
                    let position = len - 8 + i as u64;
                    ok &= 1 ^ (ct::le(mli, position) & ct::nonzero(u64::from(*byte)));
                }
                (ok, mli as usize)
            }
        };
        if valid != 1 {
            return Err(Error::WrappedKeyInvalid);
        }
        r.truncate(keep);
        Ok(r)
    }
}

/// The wrapping function W of RFC 3394 section 2.2.1 (index-based form): `data` is n >= 2
/// semiblocks; returns the n + 1 semiblocks of the wrapped value.
fn w(aes: &AesBlocks, iv: [u8; SEMIBLOCK], data: &[u8]) -> Result<Vec<u8>> {
    let n = data.len() / SEMIBLOCK;
    let mut out = Zeroizing::new(vec![0u8; SEMIBLOCK + data.len()]);
    out[SEMIBLOCK..].copy_from_slice(data);
    let mut a = iv;
    let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
    for j in 0..6u64 {
        for i in 1..=n {
            let r = &mut out[i * SEMIBLOCK..(i + 1) * SEMIBLOCK];
            block[..SEMIBLOCK].copy_from_slice(&a);
            block[SEMIBLOCK..].copy_from_slice(r);
            aes.encrypt(block.as_mut_slice())?;
            let t = (n as u64) * j + i as u64;
            for (x, (b, t)) in a.iter_mut().zip(block[..SEMIBLOCK].iter().zip(t.to_be_bytes())) {
                *x = b ^ t;
            }
            r.copy_from_slice(&block[SEMIBLOCK..]);
        }
    }
    out[..SEMIBLOCK].copy_from_slice(&a);
    Ok(std::mem::take(&mut *out))
}

/// The unwrapping function W^-1 of RFC 3394 section 2.2.2: returns the recovered initial
/// value A and the n semiblocks R; the caller checks A.
fn w_inverse(aes: &AesBlocks, wrapped: &[u8]) -> Result<([u8; SEMIBLOCK], Zeroizing<Vec<u8>>)> {
    let n = wrapped.len() / SEMIBLOCK - 1;
    let mut a: [u8; SEMIBLOCK] = wrapped[..SEMIBLOCK].try_into().map_err(|_| Error::WrappedKeyLenRange)?;
    let mut r = Zeroizing::new(wrapped[SEMIBLOCK..].to_vec());
    let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let ri = &mut r[(i - 1) * SEMIBLOCK..i * SEMIBLOCK];
            let t = (n as u64) * j + i as u64;
            for (b, (x, t)) in block[..SEMIBLOCK].iter_mut().zip(a.iter().zip(t.to_be_bytes())) {
                *b = x ^ t;
            }
            block[SEMIBLOCK..].copy_from_slice(ri);
            aes.decrypt(block.as_mut_slice())?;
            a.copy_from_slice(&block[..SEMIBLOCK]);
            ri.copy_from_slice(&block[SEMIBLOCK..]);
        }
    }
    Ok((a, r))
}

/// A key wrap as C_Encrypt/C_Decrypt.
struct WrapCipher {
    wrapper: Wrapper,
    encrypt: bool,
}

impl WholeInputCipher for WrapCipher {
    fn encrypting(&self) -> bool {
        self.encrypt
    }

    fn out_len(&self, input_len: usize) -> Result<usize> {
        if self.encrypt {
            self.wrapper.wrapped_len(input_len)
        } else {
            self.wrapper.unwrapped_len(input_len).map_err(as_decrypt_error)
        }
    }

    fn run(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.encrypt {
            self.wrapper.wrap(input).map(Zeroizing::new)
        } else {
            self.wrapper.unwrap(input).map_err(as_decrypt_error)
        }
    }
}

/// The C_Decrypt names of the unwrap errors.
fn as_decrypt_error(e: Error) -> Error {
    match e {
        Error::WrappedKeyInvalid => Error::EncryptedDataInvalid,
        Error::WrappedKeyLenRange => Error::EncryptedDataLenRange,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::CKK_AES;

    fn key(bytes: &[u8]) -> SecretKey {
        SecretKey { key_type: CKK_AES, value: Zeroizing::new(bytes.to_vec()) }
    }

    use crate::mechanism::test_vectors::unhex as hex;

    const NONE: MechanismParams = MechanismParams::None;
    const KEK: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    const DATA: &str = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F";

    /// RFC 3394 section 4.1 to 4.6: (KEK bytes, key data bytes, ciphertext).
    const RFC3394: [(usize, usize, &str); 6] = [
        (16, 16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"),
        (24, 16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"),
        (32, 16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"),
        (24, 24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"),
        (32, 24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"),
        (32, 32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"),
    ];

    #[test]
    fn rfc3394_known_answers() {
        for (kek_len, data_len, ct) in RFC3394 {
            let kek = key(&hex(KEK)[..kek_len]);
            let data = &hex(DATA)[..data_len];
            assert_eq!(
                wrap(CKM_AES_KEY_WRAP, &NONE, &kek, data).unwrap(),
                hex(ct),
                "4.x: {kek_len}/{data_len}"
            );
            assert_eq!(unwrap(CKM_AES_KEY_WRAP, &NONE, &kek, &hex(ct)).unwrap().as_slice(), data);
            // The default IV given explicitly is the same.
            let iv = MechanismParams::Iv(DEFAULT_IV.to_vec());
            assert_eq!(wrap(CKM_AES_KEY_WRAP, &iv, &kek, data).unwrap(), hex(ct));
        }
    }

    /// RFC 5649 section 6: a 20-byte and a 7-byte key under a 192-bit KEK.
    #[test]
    fn rfc5649_known_answers() {
        let kek = key(&hex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8"));
        let cases = [
            (
                "c37b7e6492584340 bed1220780894115 5068f738",
                "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"),
        ];
        for (data, ct) in cases {
            assert_eq!(wrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &hex(data)).unwrap(), hex(ct));
            assert_eq!(unwrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &hex(ct)).unwrap().as_slice(), hex(data));
        }
    }

    /// Our W agrees with aws-lc-rs's own key wrap where that applies (128/256-bit KEKs,
    /// default IV), for KW and KWP over many lengths.
    #[test]
    fn agrees_with_aws_lc_key_wrap() {
        use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap, KeyWrapPadded};
        for kek_bytes in [vec![3u8; 16], vec![5u8; 32]] {
            let kek = key(&kek_bytes);
            let cipher = if kek_bytes.len() == 16 { &AES_128 } else { &AES_256 };
            for len in 1..=72usize {
                let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
                let mut buf = vec![0u8; len + 16];
                let theirs =
                    AesKek::new(cipher, &kek_bytes).unwrap().wrap_with_padding(&data, &mut buf).unwrap();
                assert_eq!(wrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &data).unwrap(), theirs, "KWP {len}");
                if len % 8 == 0 && len >= 16 {
                    let mut buf = vec![0u8; len + 8];
                    let theirs = AesKek::new(cipher, &kek_bytes).unwrap().wrap(&data, &mut buf).unwrap();
                    assert_eq!(wrap(CKM_AES_KEY_WRAP, &NONE, &kek, &data).unwrap(), theirs, "KW {len}");
                }
            }
        }
    }

    #[test]
    fn pkcs7_variant_round_trips_and_is_rfc3394_over_padded_input() {
        let kek = key(&hex(KEK)[..24]);
        let data: Vec<u8> = (0..40u8).collect();
        for mechanism in [CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_PKCS7] {
            for len in 8..=40 {
                let wrapped = wrap(mechanism, &NONE, &kek, &data[..len]).unwrap();
                let pad = 8 - len % 8;
                assert_eq!(wrapped.len(), len + pad + 8, "length {len}");
                let mut padded = data[..len].to_vec();
                padded.resize(len + pad, pad as u8);
                assert_eq!(wrap(CKM_AES_KEY_WRAP, &NONE, &kek, &padded).unwrap(), wrapped);
                assert_eq!(unwrap(mechanism, &NONE, &kek, &wrapped).unwrap().as_slice(), &data[..len]);
            }
            for len in 0..8 {
                assert_eq!(wrap(mechanism, &NONE, &kek, &data[..len]), Err(Error::DataLenRange));
            }
        }
        // Both codes are the same mechanism.
        let a = wrap(CKM_AES_KEY_WRAP_PAD, &NONE, &kek, b"0123456789").unwrap();
        assert_eq!(unwrap(CKM_AES_KEY_WRAP_PKCS7, &NONE, &kek, &a).unwrap().as_slice(), b"0123456789");
    }

    #[test]
    fn pkcs7_variant_refuses_tampering_and_bad_padding() {
        let kek = key(&[9; 32]);
        let wrapped = wrap(CKM_AES_KEY_WRAP_PKCS7, &NONE, &kek, b"twelve bytes").unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert_eq!(unwrap(CKM_AES_KEY_WRAP_PKCS7, &NONE, &kek, &bad), Err(Error::WrappedKeyInvalid));
        }
        // A valid RFC 3394 wrap of data whose padding is wrong is refused with the same error.
        for bad_tail in [[1u8, 2, 3, 4, 5, 6, 7, 0], [0, 0, 0, 0, 0, 0, 0, 9], [1, 2, 3, 4, 5, 3, 4, 3]] {
            let mut data = vec![0x55u8; 8];
            data.extend_from_slice(&bad_tail);
            let blob = wrap(CKM_AES_KEY_WRAP, &NONE, &kek, &data).unwrap();
            assert_eq!(unwrap(CKM_AES_KEY_WRAP_PKCS7, &NONE, &kek, &blob), Err(Error::WrappedKeyInvalid));
        }
        // A wrong key is the same error too.
        assert_eq!(
            unwrap(CKM_AES_KEY_WRAP_PKCS7, &NONE, &key(&[8; 32]), &wrapped),
            Err(Error::WrappedKeyInvalid)
        );
    }

    #[test]
    fn tampering_is_refused_for_kw_and_kwp() {
        let kek = key(&[4; 16]);
        for (m, data) in [(CKM_AES_KEY_WRAP, &[7u8; 24][..]), (CKM_AES_KEY_WRAP_KWP, &[7u8; 5][..])] {
            let wrapped = wrap(m, &NONE, &kek, data).unwrap();
            for i in 0..wrapped.len() {
                let mut bad = wrapped.clone();
                bad[i] ^= 0x80;
                assert_eq!(unwrap(m, &NONE, &kek, &bad), Err(Error::WrappedKeyInvalid), "{m:#x} byte {i}");
            }
        }
        // KWP: a blob whose semiblocks unwrap with a wrong length indicator or nonzero padding.
        let kek = key(&hex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8"));
        let aes = AesBlocks::new(&kek).unwrap();
        for (mli, tail) in [(0u32, [0u8; 8]), (9, [0; 8]), (3, [1, 2, 3, 0, 0, 0, 0, 1]), (8, [0; 8])] {
            let mut block = [0u8; 16];
            block[..4].copy_from_slice(&DEFAULT_KWP_PREFIX);
            block[4..8].copy_from_slice(&mli.to_be_bytes());
            block[8..].copy_from_slice(&tail);
            aes.encrypt(&mut block).unwrap();
            let result = unwrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &block);
            if mli == 8 {
                assert_eq!(result.unwrap().as_slice(), &[0; 8]);
            } else {
                assert_eq!(result, Err(Error::WrappedKeyInvalid), "MLI {mli}");
            }
        }
    }

    #[test]
    fn lengths_are_checked() {
        let kek = key(&[1; 16]);
        for len in [0, 8, 15, 17, 23] {
            assert_eq!(wrap(CKM_AES_KEY_WRAP, &NONE, &kek, &vec![0; len]), Err(Error::DataLenRange), "{len}");
        }
        assert_eq!(wrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &[]), Err(Error::DataLenRange));
        for (m, bad) in [
            (CKM_AES_KEY_WRAP, &[0usize, 8, 16, 25, 33][..]),
            (CKM_AES_KEY_WRAP_KWP, &[0, 8, 15, 17][..]),
            (CKM_AES_KEY_WRAP_PKCS7, &[0, 16, 23, 31][..]),
        ] {
            for len in bad {
                assert_eq!(
                    unwrap(m, &NONE, &kek, &vec![0; *len]),
                    Err(Error::WrappedKeyLenRange),
                    "{m:#x} {len}"
                );
            }
        }
    }

    #[test]
    fn alternative_initial_values() {
        let kek = key(&hex(KEK)[..16]);
        let data = hex(DATA);
        let iv = MechanismParams::Iv(vec![1, 2, 3, 4, 5, 6, 7, 8]);
        for m in [CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PKCS7] {
            let wrapped = wrap(m, &iv, &kek, &data).unwrap();
            assert_ne!(wrapped, wrap(m, &NONE, &kek, &data).unwrap());
            assert_eq!(unwrap(m, &iv, &kek, &wrapped).unwrap().as_slice(), data.as_slice());
            assert_eq!(unwrap(m, &NONE, &kek, &wrapped), Err(Error::WrappedKeyInvalid));
            // Unwrapping with W^-1 recovers the IV that was given.
            let (a, _) = w_inverse(&AesBlocks::new(&kek).unwrap(), &wrapped).unwrap();
            assert_eq!(a, [1, 2, 3, 4, 5, 6, 7, 8]);
        }
        let prefix = MechanismParams::Iv(vec![9, 9, 9, 9]);
        let wrapped = wrap(CKM_AES_KEY_WRAP_KWP, &prefix, &kek, b"abc").unwrap();
        assert_eq!(unwrap(CKM_AES_KEY_WRAP_KWP, &prefix, &kek, &wrapped).unwrap().as_slice(), b"abc");
        assert_eq!(unwrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, &wrapped), Err(Error::WrappedKeyInvalid));
        // The default prefix given explicitly, and an empty IV, are the default.
        let default = wrap(CKM_AES_KEY_WRAP_KWP, &NONE, &kek, b"abc").unwrap();
        let explicit = MechanismParams::Iv(DEFAULT_KWP_PREFIX.to_vec());
        assert_eq!(wrap(CKM_AES_KEY_WRAP_KWP, &explicit, &kek, b"abc").unwrap(), default);
        assert_eq!(wrap(CKM_AES_KEY_WRAP_KWP, &MechanismParams::Iv(vec![]), &kek, b"abc").unwrap(), default);
    }

    #[test]
    fn parameters_and_keys_are_checked() {
        let kek = key(&[1; 16]);
        let data = [0u8; 16];
        let bad_params = [
            (CKM_AES_KEY_WRAP, MechanismParams::Iv(vec![0; 4])),
            (CKM_AES_KEY_WRAP, MechanismParams::Iv(vec![0; 16])),
            (CKM_AES_KEY_WRAP_PKCS7, MechanismParams::Iv(vec![0; 7])),
            (CKM_AES_KEY_WRAP_KWP, MechanismParams::Iv(vec![0; 8])),
            (CKM_AES_KEY_WRAP, MechanismParams::Opaque(vec![0; 8])),
        ];
        for (m, p) in &bad_params {
            assert_eq!(wrap(*m, p, &kek, &data), Err(Error::MechanismParamInvalid));
            assert_eq!(unwrap(*m, p, &kek, &[0; 24]).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(cipher(*m, p, &kek, true).err(), Some(Error::MechanismParamInvalid));
        }
        assert_eq!(wrap(CKM_AES_KEY_WRAP, &NONE, &key(&[1; 17]), &data), Err(Error::KeySizeRange));
        let generic =
            SecretKey { key_type: cryptoki_sys::CKK_GENERIC_SECRET, value: Zeroizing::new(vec![1; 16]) };
        assert_eq!(wrap(CKM_AES_KEY_WRAP, &NONE, &generic, &data), Err(Error::KeyTypeInconsistent));
        assert_eq!(
            unwrap(CKM_AES_KEY_WRAP, &NONE, &generic, &[0; 24]).err(),
            Some(Error::KeyTypeInconsistent)
        );
        assert_eq!(wrap(cryptoki_sys::CKM_AES_ECB, &NONE, &kek, &data), Err(Error::MechanismInvalid));
    }

    #[test]
    fn as_a_cipher_single_and_multi_part() {
        let kek = key(&hex(KEK)[..24]);
        let data = &hex(DATA)[..16];
        let ct = hex(RFC3394[1].2);
        let mut enc = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, true).unwrap();
        assert_eq!(enc.single_len(16).unwrap(), 24);
        assert_eq!(enc.single(data).unwrap().as_slice(), ct.as_slice());
        let mut enc = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, true).unwrap();
        for part in data.chunks(7) {
            assert_eq!(enc.update_len(part.len()), 0);
            assert!(enc.update(part).unwrap().is_empty());
        }
        assert_eq!(enc.final_len(), 24);
        assert_eq!(enc.finish().unwrap().as_slice(), ct.as_slice());
        let mut dec = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, false).unwrap();
        for part in ct.chunks(5) {
            assert!(dec.update(part).unwrap().is_empty());
        }
        assert_eq!(dec.final_len(), 16);
        assert_eq!(dec.finish().unwrap().as_slice(), data);

        // KWP and PKCS7: the announced sizes bound the real ones.
        for m in [CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PKCS7] {
            for len in [8usize, 9, 15, 16, 17] {
                let input = vec![0x3c; len];
                let mut enc = cipher(m, &NONE, &kek, true).unwrap();
                let n = enc.single_len(len).unwrap();
                let out = enc.single(&input).unwrap();
                assert_eq!(out.len(), n);
                let mut dec = cipher(m, &NONE, &kek, false).unwrap();
                assert!(dec.single_len(out.len()).unwrap() >= len);
                assert_eq!(dec.single(&out).unwrap().as_slice(), input.as_slice());
            }
        }

        // Decrypt errors carry C_Decrypt's names.
        let mut bad = ct.clone();
        bad[3] ^= 1;
        let mut dec = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, false).unwrap();
        assert_eq!(dec.single(&bad).unwrap_err(), Error::EncryptedDataInvalid);
        let dec = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, false).unwrap();
        assert_eq!(dec.single_len(20).unwrap_err(), Error::EncryptedDataLenRange);
        let mut dec = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, false).unwrap();
        dec.update(&ct[..20]).unwrap();
        assert_eq!(dec.final_len(), 0);
        assert_eq!(dec.finish().unwrap_err(), Error::EncryptedDataLenRange);
        let mut enc = cipher(CKM_AES_KEY_WRAP, &NONE, &kek, true).unwrap();
        assert_eq!(enc.single(&[0; 12]).unwrap_err(), Error::DataLenRange);
    }
}
