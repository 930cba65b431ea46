//! The symmetric mechanisms through the PKCS#11 API of the built module, with published
//! known-answer vectors run through keys made by `C_CreateObject`:
//!
//! - AES-ECB, AES-CBC and AES-CTR: NIST SP 800-38A appendix F (F.1, F.2, F.5; AES-128 and
//!   AES-256); AES-CBC-PAD round trips, single- and multi-part; the length, parameter and
//!   padding refusals.
//! - HMAC (RFC 4231 test cases 1 and 2, SHA-256 and SHA-512), `CKM_SHA256_HMAC_GENERAL`, and
//!   AES-CMAC (RFC 4493 section 4).
//! - Key wrapping: RFC 3394 (4.1, 4.6) with `CKM_AES_KEY_WRAP`, RFC 5649 (section 6) with
//!   `CKM_AES_KEY_WRAP_KWP`, round trips with `CKM_AES_KEY_WRAP_PAD`,
//!   `CKM_AES_KEY_WRAP_PKCS7`, `CKM_AES_GCM` and `CKM_AES_CBC_PAD`; the output-buffer protocol
//!   of `C_WrapKey`; every refusal of `C_WrapKey` and `C_UnwrapKey` checked to change nothing.
//! - PKCS#11 3.0 message-based AES-GCM (`C_MessageEncryptInit`, `C_EncryptMessage`, ...) with
//!   the caller's IV (NIST GCM test case 16) and with IVs the module generates.
//!
//! The `cryptoki` crate is the client wherever it can express the call. It has no
//! `CKM_AES_CTR`, `CKM_AES_KEY_WRAP_KWP`, `CKM_AES_KEY_WRAP_PKCS7` or `*_HMAC_GENERAL`, cannot
//! pass a malformed parameter, always asks for output lengths itself, and does not show the
//! handle a failed `C_UnwrapKey` leaves behind: those calls go through `cryptoki_sys::Pkcs11`,
//! loaded beside it (the same library, so the same initialized module, sessions and objects).
#![allow(unsafe_code)]

mod common;
use common::keys::{aes_key, secret_key};
use common::objects::{count, gcm, read, value};
use common::raw_wrap::{check, mech_none, object, unwrap_key, wrap_key};
use common::*;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys as sys;
use sys::{
    CK_ATTRIBUTE, CK_GCM_MESSAGE_PARAMS, CK_GENERATOR_FUNCTION, CK_MECHANISM, CK_MECHANISM_TYPE,
    CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_ULONG,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ulen(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

/// A session AES key with the defaults (sensitive, not extractable, every usage allowed).
fn aes(s: &Session, value: &[u8]) -> ObjectHandle {
    aes_key(s, value, &[])
}

/// Attributes of a key that may be wrapped and read back.
const OPEN: [Attribute; 2] = [Attribute::Extractable(true), Attribute::Sensitive(false)];

/// Splits `data` into parts of 1, 3, 5, 7, ... bytes (odd sizes, none a block).
fn odd_chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut at, mut size) = (0, 1);
    while at < data.len() {
        let end = (at + size).min(data.len());
        parts.push(&data[at..end]);
        at = end;
        size = if size >= 13 { 1 } else { size + 2 };
    }
    parts
}

/// A multi-part operation over `data` in parts of odd sizes: `init`, `update` with each part,
/// `last`; the output of every step in order.
fn in_parts(
    data: &[u8],
    init: impl FnOnce() -> cryptoki::error::Result<()>,
    update: impl Fn(&[u8]) -> cryptoki::error::Result<Vec<u8>>,
    last: impl FnOnce() -> cryptoki::error::Result<Vec<u8>>,
) -> cryptoki::error::Result<Vec<u8>> {
    init()?;
    let mut out = Vec::new();
    for part in odd_chunks(data) {
        out.extend(update(part)?);
    }
    out.extend(last()?);
    Ok(out)
}

/// Multi-part encryption (`encrypt`) or decryption through `cryptoki`, in parts of odd sizes.
fn parts(
    s: &Session,
    encrypt: bool,
    m: &Mechanism,
    key: ObjectHandle,
    data: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    if encrypt {
        in_parts(data, || s.encrypt_init(m, key), |part| s.encrypt_update(part), || s.encrypt_final())
    } else {
        in_parts(data, || s.decrypt_init(m, key), |part| s.decrypt_update(part), || s.decrypt_final())
    }
}

/// The template of `C_UnwrapKey` for a readable session or token key of `key_type`.
fn unwrap_template(key_type: KeyType, token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Extractable(true),
        Attribute::Sensitive(false),
        Attribute::Token(token),
    ]
}

/// An unwrapped key holds `expected` and has the history of a key that came from outside.
#[track_caller]
fn assert_unwrapped(s: &Session, key: ObjectHandle, expected: &[u8]) {
    assert_eq!(value(s, key), expected);
    assert_eq!(read(s, key, AttributeType::ValueLen), Attribute::ValueLen(ulen(expected.len()).into()));
    assert_eq!(read(s, key, AttributeType::Local), Attribute::Local(false));
    assert_eq!(read(s, key, AttributeType::AlwaysSensitive), Attribute::AlwaysSensitive(false));
    assert_eq!(read(s, key, AttributeType::NeverExtractable), Attribute::NeverExtractable(false));
}

// --- Raw calls -------------------------------------------------------------------------------

/// The module's C ABI, loaded beside the `cryptoki` client.
struct Raw(sys::Pkcs11);

/// A mechanism whose parameter is `param`, which must outlive every use of the result.
fn mech_with<T>(kind: CK_MECHANISM_TYPE, param: &mut T) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: param as *mut T as *mut c_void,
        ulParameterLen: ulen(size_of::<T>()),
    }
}

/// A mechanism whose parameter is the bytes of `param`, which must outlive every use.
fn mech_bytes(kind: CK_MECHANISM_TYPE, param: &mut [u8]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: param.as_mut_ptr() as *mut c_void,
        ulParameterLen: ulen(param.len()),
    }
}

/// The `CK_GCM_MESSAGE_PARAMS` of one message: a 12-byte IV buffer, a 16-byte tag buffer.
fn message_params(
    iv: &mut [u8; 12],
    fixed_bits: CK_ULONG,
    generator: CK_GENERATOR_FUNCTION,
    tag: &mut [u8; 16],
) -> CK_GCM_MESSAGE_PARAMS {
    CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: fixed_bits,
        ivGenerator: generator,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    }
}

/// The encrypting function of the C ABI when `encrypt`, else its decrypting twin, which takes
/// the same arguments (`C_EncryptInit`/`C_DecryptInit`, `C_Encrypt`/`C_Decrypt`, ...).
fn pick<F: Copy, E: std::fmt::Debug>(
    encrypt: bool,
    encrypting: &Result<F, E>,
    decrypting: &Result<F, E>,
) -> F {
    *(if encrypt { encrypting } else { decrypting }).as_ref().expect("the module exports both")
}

impl Raw {
    fn crypt_init(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        mut m: CK_MECHANISM,
        key: ObjectHandle,
    ) -> CK_RV {
        let init = pick(encrypt, &self.0.C_EncryptInit, &self.0.C_DecryptInit);
        // SAFETY: `m` is a live mechanism whose parameter (if any) outlives the call.
        unsafe { init(h, &mut m, key.handle()) }
    }

    /// `C_Encrypt` or `C_Decrypt` of `input`; `out` `None` is a NULL output (a length
    /// query). Returns the code and the length written back.
    fn crypt_into(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        input: &[u8],
        out: Option<&mut [u8]>,
    ) -> (CK_RV, usize) {
        let call = pick(encrypt, &self.0.C_Encrypt, &self.0.C_Decrypt);
        let mut input = input.to_vec();
        let (out_ptr, mut len) = match out {
            Some(buf) => (buf.as_mut_ptr(), ulen(buf.len())),
            None => (null_mut(), 0),
        };
        // SAFETY: the input holds its stated length; a non-NULL output holds `len` bytes.
        let rv = unsafe { call(h, input.as_mut_ptr(), ulen(input.len()), out_ptr, &mut len) };
        (rv, len as usize)
    }

    /// `C_Encrypt` or `C_Decrypt` with a NULL output: the length.
    fn crypt_len(&self, encrypt: bool, h: CK_SESSION_HANDLE, input: &[u8]) -> Result<usize, CK_RV> {
        let (rv, len) = self.crypt_into(encrypt, h, input, None);
        check(rv).map(|()| len)
    }

    /// `C_Encrypt` or `C_Decrypt` into a buffer of `capacity` bytes.
    fn crypt(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        input: &[u8],
        capacity: usize,
    ) -> Result<Vec<u8>, CK_RV> {
        let mut out = vec![0u8; capacity];
        let (rv, len) = self.crypt_into(encrypt, h, input, Some(out.as_mut_slice()));
        check(rv)?;
        out.truncate(len);
        Ok(out)
    }

    /// Single-part encryption or decryption, asking for the length first.
    fn crypt_single(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        m: CK_MECHANISM,
        key: ObjectHandle,
        input: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        check(self.crypt_init(encrypt, h, m, key))?;
        let len = self.crypt_len(encrypt, h, input)?;
        self.crypt(encrypt, h, input, len)
    }

    /// Multi-part encryption or decryption in parts of odd sizes.
    fn crypt_parts(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        m: CK_MECHANISM,
        key: ObjectHandle,
        input: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        let update = pick(encrypt, &self.0.C_EncryptUpdate, &self.0.C_DecryptUpdate);
        let last = pick(encrypt, &self.0.C_EncryptFinal, &self.0.C_DecryptFinal);
        check(self.crypt_init(encrypt, h, m, key))?;
        let mut produced = Vec::new();
        for part in odd_chunks(input) {
            let mut part = part.to_vec();
            let mut buf = vec![0u8; part.len() + 32];
            let mut len = ulen(buf.len());
            // SAFETY: the part holds its stated length and the output `buf.len()` bytes.
            check(unsafe { update(h, part.as_mut_ptr(), ulen(part.len()), buf.as_mut_ptr(), &mut len) })?;
            produced.extend_from_slice(&buf[..len as usize]);
        }
        let mut buf = [0u8; 64];
        let mut len = ulen(buf.len());
        // SAFETY: the output holds 64 bytes.
        check(unsafe { last(h, buf.as_mut_ptr(), &mut len) })?;
        produced.extend_from_slice(&buf[..len as usize]);
        Ok(produced)
    }

    /// Single-part `C_Sign`, asking for the length first.
    fn sign(
        &self,
        h: CK_SESSION_HANDLE,
        mut m: CK_MECHANISM,
        key: ObjectHandle,
        data: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        // SAFETY: `m` is a live mechanism whose parameter outlives the call.
        check(unsafe { self.0.C_SignInit(h, &mut m, key.handle()) })?;
        let mut data = data.to_vec();
        let mut len: CK_ULONG = 0;
        // SAFETY: the data holds its stated length; a NULL output asks for the length.
        check(unsafe { self.0.C_Sign(h, data.as_mut_ptr(), ulen(data.len()), null_mut(), &mut len) })?;
        let mut mac = vec![0u8; len as usize];
        // SAFETY: the output holds `len` bytes.
        check(unsafe { self.0.C_Sign(h, data.as_mut_ptr(), ulen(data.len()), mac.as_mut_ptr(), &mut len) })?;
        mac.truncate(len as usize);
        Ok(mac)
    }

    /// Single-part `C_Verify`.
    fn verify(
        &self,
        h: CK_SESSION_HANDLE,
        mut m: CK_MECHANISM,
        key: ObjectHandle,
        data: &[u8],
        mac: &[u8],
    ) -> CK_RV {
        // SAFETY: `m` is a live mechanism whose parameter outlives the call.
        let rv = unsafe { self.0.C_VerifyInit(h, &mut m, key.handle()) };
        if rv != sys::CKR_OK {
            return rv;
        }
        let (mut data, mut mac) = (data.to_vec(), mac.to_vec());
        // SAFETY: both buffers hold their stated lengths.
        unsafe { self.0.C_Verify(h, data.as_mut_ptr(), ulen(data.len()), mac.as_mut_ptr(), ulen(mac.len())) }
    }

    /// `C_WrapKey`, asking for the length first.
    fn wrap(
        &self,
        h: CK_SESSION_HANDLE,
        mut m: CK_MECHANISM,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<Vec<u8>, CK_RV> {
        wrap_key(&self.0, h, &mut m, wrapping, key)
    }

    /// `C_UnwrapKey` with the template of `cryptoki` attributes; the code and the handle left.
    fn unwrap(
        &self,
        h: CK_SESSION_HANDLE,
        mut m: CK_MECHANISM,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut t: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
        unwrap_key(&self.0, h, &mut m, unwrapping, wrapped, &mut t)
    }

    fn message_init(&self, encrypt: bool, h: CK_SESSION_HANDLE, key: ObjectHandle) -> CK_RV {
        let init = pick(encrypt, &self.0.C_MessageEncryptInit, &self.0.C_MessageDecryptInit);
        let mut m = mech_none(sys::CKM_AES_GCM);
        // SAFETY: a live mechanism without parameter.
        unsafe { init(h, &mut m, key.handle()) }
    }

    fn message_final(&self, encrypt: bool, h: CK_SESSION_HANDLE) -> CK_RV {
        let last = pick(encrypt, &self.0.C_MessageEncryptFinal, &self.0.C_MessageDecryptFinal);
        // SAFETY: no pointers.
        unsafe { last(h) }
    }

    /// `C_EncryptMessage` (`encrypt`) or `C_DecryptMessage` of `input` with `params`; `out`
    /// `None` is a NULL output (a length query). Returns the code and the length written.
    fn message(
        &self,
        encrypt: bool,
        h: CK_SESSION_HANDLE,
        params: &mut CK_GCM_MESSAGE_PARAMS,
        aad: &[u8],
        input: &[u8],
        out: Option<&mut [u8]>,
    ) -> (CK_RV, usize) {
        let call = pick(encrypt, &self.0.C_EncryptMessage, &self.0.C_DecryptMessage);
        let (mut aad, mut input) = (aad.to_vec(), input.to_vec());
        let (out_ptr, mut len) = match out {
            Some(buf) => (buf.as_mut_ptr(), ulen(buf.len())),
            None => (null_mut(), 0),
        };
        let p = params as *mut CK_GCM_MESSAGE_PARAMS as *mut c_void;
        let p_len = ulen(size_of::<CK_GCM_MESSAGE_PARAMS>());
        // SAFETY: the parameter structure and the IV and tag buffers it points to are live
        // for the call, the AAD and input hold their stated lengths, and a non-NULL output
        // holds `len` bytes.
        let rv = unsafe {
            call(
                h,
                p,
                p_len,
                aad.as_mut_ptr(),
                ulen(aad.len()),
                input.as_mut_ptr(),
                ulen(input.len()),
                out_ptr,
                &mut len,
            )
        };
        (rv, len as usize)
    }
}

/// A token with its user PIN set, a read/write session logged in as the user, and the raw ABI.
fn setup() -> (Pkcs11, Session, Raw) {
    let (p, _slot, s) = logged_in();
    let raw = Raw(common::raw::load_raw());
    (p, s, raw)
}

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

/// NIST SP 800-38A appendix F: the plaintext of every example, and the keys.
const SP800_38A_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                            30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const AES128_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const AES256_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
/// F.1.1 / F.1.5.
const ECB128_CT: &str = "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
                         43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4";
const ECB256_CT: &str = "f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870
                         b6ed21b99ca6f4f9f153e7b1beafed1d 23304b7a39f9f3ff067d8d8f9e24ecc7";
/// F.2.1 / F.2.5.
const CBC_IV: &str = "000102030405060708090a0b0c0d0e0f";
const CBC128_CT: &str = "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
                         73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7";
const CBC256_CT: &str = "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
                         39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b";
/// F.5.1 / F.5.5.
const CTR_BLOCK: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const CTR128_CT: &str = "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
                         5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee";
const CTR256_CT: &str = "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
                         2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6";

/// RFC 3394: the KEK and key data of section 4 (prefixes of these).
const KW_KEK: &str = "000102030405060708090A0B0C0D0E0F 101112131415161718191A1B1C1D1E1F";
const KW_DATA: &str = "00112233445566778899AABBCCDDEEFF 000102030405060708090A0B0C0D0E0F";
/// 4.1: 128-bit KEK, 128-bit key data.
const KW_4_1: &str = "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5";
/// 4.6: 256-bit KEK, 256-bit key data.
const KW_4_6: &str = "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21";

/// The section 4.1 KEK and the readable 128-bit AES key it wraps into [`KW_4_1`].
fn kw_4_1_keys(s: &Session) -> (ObjectHandle, ObjectHandle) {
    let kek = aes(s, &hex(KW_KEK)[..16]);
    let key = secret_key(s, KeyType::AES, &hex(KW_DATA)[..16], &OPEN);
    (kek, key)
}

/// RFC 5649 section 6: the 192-bit KEK, then (key, wrapped) for the 20- and 7-byte keys.
const KWP_KEK: &str = "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8";
const KWP_CASES: [(&str, &str); 2] = [
    (
        "c37b7e6492584340 bed1220780894115 5068f738",
        "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a",
    ),
    ("466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"),
];

fn cbc_iv() -> [u8; 16] {
    hex(CBC_IV).try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. AES-ECB, AES-CBC, AES-CTR, AES-CBC-PAD
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// SP 800-38A F.1.1, F.1.2, F.1.5, F.1.6: single-part and multi-part in odd chunks.
    fn aes_ecb_matches_sp800_38a() {
        let (_p, s, _raw) = setup();
        let pt = hex(SP800_38A_PT);
        for (key, ct) in [(AES128_KEY, ECB128_CT), (AES256_KEY, ECB256_CT)] {
            let (key, ct) = (aes(&s, &hex(key)), hex(ct));
            assert_eq!(s.encrypt(&Mechanism::AesEcb, key, &pt).unwrap(), ct);
            assert_eq!(s.decrypt(&Mechanism::AesEcb, key, &ct).unwrap(), pt);
            assert_eq!(parts(&s, true, &Mechanism::AesEcb, key, &pt).unwrap(), ct);
            assert_eq!(parts(&s, false, &Mechanism::AesEcb, key, &ct).unwrap(), pt);
        }
    }
);

isolated_test!(
    /// SP 800-38A F.2.1, F.2.2, F.2.5, F.2.6: single-part and multi-part in odd chunks.
    fn aes_cbc_matches_sp800_38a() {
        let (_p, s, _raw) = setup();
        let pt = hex(SP800_38A_PT);
        let m = Mechanism::AesCbc(cbc_iv());
        for (key, ct) in [(AES128_KEY, CBC128_CT), (AES256_KEY, CBC256_CT)] {
            let (key, ct) = (aes(&s, &hex(key)), hex(ct));
            assert_eq!(s.encrypt(&m, key, &pt).unwrap(), ct);
            assert_eq!(s.decrypt(&m, key, &ct).unwrap(), pt);
            assert_eq!(parts(&s, true, &m, key, &pt).unwrap(), ct);
            assert_eq!(parts(&s, false, &m, key, &ct).unwrap(), pt);
        }
    }
);

isolated_test!(
    /// SP 800-38A F.5.1, F.5.2, F.5.5, F.5.6 with a CK_AES_CTR_PARAMS of 128 counter bits
    /// (raw calls: `cryptoki` 0.12 has no CKM_AES_CTR).
    fn aes_ctr_matches_sp800_38a() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let pt = hex(SP800_38A_PT);
        for (key, ct) in [(AES128_KEY, CTR128_CT), (AES256_KEY, CTR256_CT)] {
            let (key, ct) = (aes(&s, &hex(key)), hex(ct));
            let mut params =
                sys::CK_AES_CTR_PARAMS { ulCounterBits: 128, cb: hex(CTR_BLOCK).try_into().unwrap() };
            let m = mech_with(sys::CKM_AES_CTR, &mut params);
            assert_eq!(raw.crypt_single(true, h, m, key, &pt), Ok(ct.clone()));
            assert_eq!(raw.crypt_single(false, h, m, key, &ct), Ok(pt.clone()));
            // Odd parts: the keystream carries across calls.
            assert_eq!(raw.crypt_parts(true, h, m, key, &pt), Ok(ct.clone()));
            assert_eq!(raw.crypt_parts(false, h, m, key, &ct), Ok(pt.clone()));
            // A prefix of odd length is the prefix of the keystream.
            assert_eq!(raw.crypt_single(true, h, m, key, &pt[..37]), Ok(ct[..37].to_vec()));
        }
    }
);

isolated_test!(
    /// CBC_PAD: PKCS #7 padding always adds 1 to 16 bytes; single- and multi-part (odd
    /// chunks) agree both ways; over the SP 800-38A plaintext it is F.2.1 plus a block of
    /// padding.
    fn aes_cbc_pad_round_trips_single_and_multi_part() {
        let (_p, s, _raw) = setup();
        let key = aes(&s, &hex(AES128_KEY));
        let m = Mechanism::AesCbcPad(cbc_iv());
        for len in [0usize, 1, 15, 16, 17, 33] {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(7)).collect();
            let ct = s.encrypt(&m, key, &data).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16, "length {len}");
            assert_eq!(s.decrypt(&m, key, &ct).unwrap(), data, "length {len}");
            assert_eq!(parts(&s, true, &m, key, &data).unwrap(), ct, "multi-part encryption, length {len}");
            assert_eq!(parts(&s, false, &m, key, &ct).unwrap(), data, "multi-part decryption, length {len}");
            // The padding is PKCS #7: CBC without padding over the padded data gives the same.
            let mut padded = data.clone();
            padded.resize((len / 16 + 1) * 16, (16 - len % 16) as u8);
            assert_eq!(s.encrypt(&Mechanism::AesCbc(cbc_iv()), key, &padded).unwrap(), ct, "length {len}");
        }
        let pt = hex(SP800_38A_PT);
        let ct = s.encrypt(&m, key, &pt).unwrap();
        assert_eq!(ct.len(), 80);
        assert_eq!(&ct[..64], &hex(CBC128_CT)[..]);
        assert_eq!(s.decrypt(&m, key, &ct).unwrap(), pt);
    }
);

isolated_test!(
    /// ECB and CBC without padding take whole blocks only; the refusal ends the operation.
    fn aes_without_padding_refuses_partial_blocks() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let key = aes(&s, &hex(AES128_KEY));
        let cbc = Mechanism::AesCbc(cbc_iv());
        for len in [1usize, 15, 17, 33] {
            let data = vec![0x5a; len];
            expect_rv(s.encrypt(&cbc, key, &data), RvError::DataLenRange);
            // The operation is over: a new one starts.
            assert_eq!(raw.crypt_len(true, h, &[0; 16]), Err(sys::CKR_OPERATION_NOT_INITIALIZED));
            expect_rv(s.encrypt(&Mechanism::AesEcb, key, &data), RvError::DataLenRange);
            expect_rv(s.decrypt(&cbc, key, &data), RvError::EncryptedDataLenRange);
            assert_eq!(raw.crypt_len(false, h, &[0; 16]), Err(sys::CKR_OPERATION_NOT_INITIALIZED));
        }
        // Multi-part: the whole blocks come out of the update, the rest is refused at the end.
        s.encrypt_init(&cbc, key).unwrap();
        assert_eq!(s.encrypt_update(&hex(SP800_38A_PT)[..17]).unwrap(), hex(CBC128_CT)[..16].to_vec());
        expect_rv(s.encrypt_final(), RvError::DataLenRange);
        expect_rv(s.encrypt_final(), RvError::OperationNotInitialized);
        // And the session still works.
        assert_eq!(s.encrypt(&cbc, key, &hex(SP800_38A_PT)).unwrap(), hex(CBC128_CT));
    }
);

isolated_test!(
    /// An IV of 8 bytes is not an AES-CBC IV; the refused init starts nothing.
    fn aes_cbc_with_an_8_byte_iv_is_refused() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let key = aes(&s, &hex(AES128_KEY));
        for kind in [sys::CKM_AES_CBC, sys::CKM_AES_CBC_PAD] {
            for iv_len in [8usize, 0x0f, 17] {
                let mut iv = vec![7u8; iv_len];
                for encrypt in [true, false] {
                    let rv = raw.crypt_init(encrypt, h, mech_bytes(kind, &mut iv), key);
                    assert_eq!(rv, sys::CKR_MECHANISM_PARAM_INVALID, "{kind:#x} IV of {iv_len}");
                    assert_eq!(raw.crypt_len(encrypt, h, &[0; 16]), Err(sys::CKR_OPERATION_NOT_INITIALIZED));
                }
            }
        }
        // No IV at all is no better.
        assert_eq!(
            raw.crypt_init(true, h, mech_none(sys::CKM_AES_CBC), key),
            sys::CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(s.encrypt(&Mechanism::AesCbc(cbc_iv()), key, &hex(SP800_38A_PT)).unwrap(), hex(CBC128_CT));
    }
);

isolated_test!(
    /// A tampered last block breaks the padding: CKR_ENCRYPTED_DATA_INVALID, and the
    /// operation is over, single-part and multi-part.
    fn aes_cbc_pad_tampered_last_block_is_refused_and_ends_the_operation() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let key = aes(&s, &hex(AES128_KEY));
        let m = Mechanism::AesCbcPad(cbc_iv());
        let data = b"thirty-three bytes of plaintext!!".to_vec();
        let ct = s.encrypt(&m, key, &data).unwrap();
        assert_eq!(ct.len(), 48);
        let mut bad = ct.clone();
        bad[47] ^= 0x5c;

        expect_rv(s.decrypt(&m, key, &bad), RvError::EncryptedDataInvalid);
        assert_eq!(raw.crypt_len(false, h, &ct), Err(sys::CKR_OPERATION_NOT_INITIALIZED), "operation ended");

        s.decrypt_init(&m, key).unwrap();
        let mut released = Vec::new();
        for part in odd_chunks(&bad) {
            released.extend(s.decrypt_update(part).unwrap());
        }
        assert_eq!(released, data[..32].to_vec(), "only blocks before the held-back one");
        expect_rv(s.decrypt_final(), RvError::EncryptedDataInvalid);
        expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);

        // The session and key still work.
        assert_eq!(s.decrypt(&m, key, &ct).unwrap(), data);
    }
);

// ---------------------------------------------------------------------------------------------
// 2. HMAC and CMAC
// ---------------------------------------------------------------------------------------------

/// RFC 4231 test cases 1 and 2: key, data, HMAC-SHA-256, HMAC-SHA-512.
/// (key, data, HMAC-SHA-256, HMAC-SHA-512).
type HmacCase = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn rfc4231() -> [HmacCase; 2] {
    [
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            hex("87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
                 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            hex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        ),
    ]
}

/// Signs `data` single-part and in odd parts, checks both against `mac`, and has C_Verify
/// accept it (single and multi-part), refuse a changed one and a truncated one.
#[track_caller]
fn mac_known_answer(s: &Session, m: &Mechanism, key: ObjectHandle, data: &[u8], mac: &[u8]) {
    assert_eq!(s.sign(m, key, data).unwrap(), mac);
    s.sign_init(m, key).unwrap();
    for part in odd_chunks(data) {
        s.sign_update(part).unwrap();
    }
    assert_eq!(s.sign_final().unwrap(), mac, "multi-part");

    s.verify(m, key, data, mac).unwrap();
    s.verify_init(m, key).unwrap();
    for part in odd_chunks(data) {
        s.verify_update(part).unwrap();
    }
    s.verify_final(mac).unwrap();

    let mut wrong = mac.to_vec();
    *wrong.last_mut().unwrap() ^= 1;
    expect_rv(s.verify(m, key, data, &wrong), RvError::SignatureInvalid);
    let mut wrong = mac.to_vec();
    wrong[0] ^= 0x80;
    expect_rv(s.verify(m, key, data, &wrong), RvError::SignatureInvalid);
    expect_rv(s.verify(m, key, data, &mac[..mac.len() - 1]), RvError::SignatureLenRange);
    expect_rv(s.verify(m, key, data, &mac[..mac.len() / 2]), RvError::SignatureLenRange);
    let mut longer = mac.to_vec();
    longer.push(0);
    expect_rv(s.verify(m, key, data, &longer), RvError::SignatureLenRange);
}

isolated_test!(
    fn hmac_sha256_and_sha512_match_rfc4231() {
        let (_p, s, _raw) = setup();
        for (key, data, sha256, sha512) in rfc4231() {
            let key = secret_key(&s, KeyType::GENERIC_SECRET, &key, &[]);
            mac_known_answer(&s, &Mechanism::Sha256Hmac, key, &data, &sha256);
            mac_known_answer(&s, &Mechanism::Sha512Hmac, key, &data, &sha512);
        }
    }
);

isolated_test!(
    /// A key not allowed to sign, and a key of the wrong type, are refused at C_SignInit,
    /// which then starts nothing.
    fn hmac_refuses_keys_it_may_not_use() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let (key, data, sha256, _) = rfc4231().into_iter().next().unwrap();
        let no_sign = secret_key(&s, KeyType::GENERIC_SECRET, &key, &[Attribute::Sign(false)]);
        expect_rv(s.sign_init(&Mechanism::Sha256Hmac, no_sign), RvError::KeyFunctionNotPermitted);
        let mut data_buf = data.clone();
        let mut len: CK_ULONG = 0;
        // SAFETY: the data holds its stated length; a NULL output asks for the length.
        let rv =
            unsafe { raw.0.C_Sign(h, data_buf.as_mut_ptr(), ulen(data_buf.len()), null_mut(), &mut len) };
        assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED, "the refused init started nothing");
        // It still verifies (CKA_VERIFY defaults to true).
        s.verify(&Mechanism::Sha256Hmac, no_sign, &data, &sha256).unwrap();
        let no_verify = secret_key(&s, KeyType::GENERIC_SECRET, &key, &[Attribute::Verify(false)]);
        expect_rv(s.verify_init(&Mechanism::Sha256Hmac, no_verify), RvError::KeyFunctionNotPermitted);

        let aes_key = aes(&s, &[0x0b; 32]);
        expect_rv(s.sign_init(&Mechanism::Sha256Hmac, aes_key), RvError::KeyTypeInconsistent);
        expect_rv(s.sign_init(&Mechanism::Sha512Hmac, aes_key), RvError::KeyTypeInconsistent);
        expect_rv(s.verify_init(&Mechanism::Sha256Hmac, aes_key), RvError::KeyTypeInconsistent);
        // ... and CMAC takes no generic secret.
        let generic = secret_key(&s, KeyType::GENERIC_SECRET, &[1; 16], &[]);
        expect_rv(s.sign_init(&Mechanism::AesCMac, generic), RvError::KeyTypeInconsistent);

        // Nothing was left active.
        let good = secret_key(&s, KeyType::GENERIC_SECRET, &key, &[]);
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, good, &data).unwrap(), sha256);
    }
);

isolated_test!(
    /// CKM_SHA256_HMAC_GENERAL with a CK_MAC_GENERAL_PARAMS of 16: the first 16 bytes of the
    /// HMAC (raw calls: `cryptoki` 0.12 has no *_HMAC_GENERAL).
    fn hmac_general_truncates_to_the_asked_length() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        for (key, data, sha256, _) in rfc4231() {
            let key = secret_key(&s, KeyType::GENERIC_SECRET, &key, &[]);
            let mut len16: CK_ULONG = 16;
            let m = mech_with(sys::CKM_SHA256_HMAC_GENERAL, &mut len16);
            let mac = raw.sign(h, m, key, &data).unwrap();
            assert_eq!(mac, sha256[..16].to_vec());
            assert_eq!(raw.verify(h, m, key, &data, &mac), sys::CKR_OK);
            assert_eq!(raw.verify(h, m, key, &data, &sha256), sys::CKR_SIGNATURE_LEN_RANGE);
            let mut wrong = mac.clone();
            wrong[15] ^= 1;
            assert_eq!(raw.verify(h, m, key, &data, &wrong), sys::CKR_SIGNATURE_INVALID);
            // The full length is allowed and is the whole HMAC.
            let mut len32: CK_ULONG = 32;
            assert_eq!(
                raw.sign(h, mech_with(sys::CKM_SHA256_HMAC_GENERAL, &mut len32), key, &data),
                Ok(sha256)
            );
        }
    }
);

isolated_test!(
    /// RFC 4493 section 4: AES-128 key 2b7e1516..., messages of 0, 16, 40 and 64 bytes.
    fn aes_cmac_matches_rfc4493() {
        let (_p, s, _raw) = setup();
        let key = aes(&s, &hex(AES128_KEY));
        let message = hex(SP800_38A_PT);
        for (len, mac) in [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ] {
            let data = &message[..len];
            let mac = hex(mac);
            assert_eq!(s.sign(&Mechanism::AesCMac, key, data).unwrap(), mac, "{len} bytes");
            if len > 0 {
                mac_known_answer(&s, &Mechanism::AesCMac, key, data, &mac);
            } else {
                s.verify(&Mechanism::AesCMac, key, data, &mac).unwrap();
                s.sign_init(&Mechanism::AesCMac, key).unwrap();
                assert_eq!(s.sign_final().unwrap(), mac, "no update at all");
            }
        }
    }
);

// ---------------------------------------------------------------------------------------------
// 3. Key wrapping
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// RFC 3394 4.1 (128-bit KEK, 128-bit key) and 4.6 (256/256) through C_WrapKey, and
    /// C_UnwrapKey of the RFC's outputs back to the same key.
    fn aes_key_wrap_matches_rfc3394() {
        let (_p, s, _raw) = setup();
        let (kek_bytes, data) = (hex(KW_KEK), hex(KW_DATA));
        for (len, expected, token) in [(16, KW_4_1, false), (32, KW_4_6, true)] {
            let kek = aes(&s, &kek_bytes[..len]);
            let key = secret_key(&s, KeyType::AES, &data[..len], &OPEN);
            let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
            assert_eq!(wrapped, hex(expected), "RFC 3394 with {len}-byte keys");

            let before = count(&s);
            let unwrapped = s
                .unwrap_key(
                    &Mechanism::AesKeyWrap,
                    kek,
                    &hex(expected),
                    &unwrap_template(KeyType::AES, token),
                )
                .unwrap();
            assert_eq!(count(&s), before + 1);
            assert_unwrapped(&s, unwrapped, &data[..len]);
            assert_eq!(read(&s, unwrapped, AttributeType::Token), Attribute::Token(token));
            assert_eq!(read(&s, unwrapped, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
            // The unwrapped key works as the original does.
            let pt = hex(SP800_38A_PT);
            assert_eq!(
                s.encrypt(&Mechanism::AesEcb, unwrapped, &pt).unwrap(),
                s.encrypt(&Mechanism::AesEcb, key, &pt).unwrap()
            );
        }
    }
);

isolated_test!(
    /// RFC 5649 section 6 through C_WrapKey with CKM_AES_KEY_WRAP_KWP (raw calls), the keys
    /// as CKK_GENERIC_SECRET, and back through C_UnwrapKey.
    fn aes_key_wrap_kwp_matches_rfc5649() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let kek = aes(&s, &hex(KWP_KEK));
        for (data, expected) in KWP_CASES {
            let (data, expected) = (hex(data), hex(expected));
            let key = secret_key(&s, KeyType::GENERIC_SECRET, &data, &OPEN);
            let wrapped =
                raw.wrap(h, mech_none(sys::CKM_AES_KEY_WRAP_KWP), kek.handle(), key.handle()).unwrap();
            assert_eq!(wrapped, expected, "RFC 5649 with a {}-byte key", data.len());

            let before = count(&s);
            let template = unwrap_template(KeyType::GENERIC_SECRET, false);
            let (rv, handle) =
                raw.unwrap(h, mech_none(sys::CKM_AES_KEY_WRAP_KWP), kek.handle(), &expected, &template);
            assert_eq!(rv, sys::CKR_OK);
            assert_eq!(count(&s), before + 1);
            let unwrapped = object(handle);
            assert_unwrapped(&s, unwrapped, &data);
            assert_eq!(
                read(&s, unwrapped, AttributeType::KeyType),
                Attribute::KeyType(KeyType::GENERIC_SECRET)
            );
        }
    }
);

isolated_test!(
    /// CKM_AES_KEY_WRAP_PAD (through `cryptoki`) and CKM_AES_KEY_WRAP_PKCS7 (raw) wrap keys of
    /// any length of at least 8 bytes, and unwrap them back.
    fn aes_key_wrap_pad_and_pkcs7_round_trip() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        for kek_len in [16usize, 24, 32] {
            let kek = aes(&s, &hex(KW_KEK)[..kek_len]);
            for (key_type, len) in [
                (KeyType::AES, 16usize),
                (KeyType::AES, 24),
                (KeyType::AES, 32),
                (KeyType::GENERIC_SECRET, 20),
            ] {
                let data: Vec<u8> = (0..len).map(|i| (i as u8) ^ 0xa5).collect();
                let key = secret_key(&s, key_type, &data, &OPEN);
                let template = unwrap_template(key_type, false);
                // PKCS #7 padding always adds 1 to 8 bytes, then RFC 3394 adds 8.
                let expected_len = (len / 8 + 1) * 8 + 8;

                let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, key).unwrap();
                assert_eq!(wrapped.len(), expected_len, "PAD: {len}-byte key under a {kek_len}-byte KEK");
                let unwrapped = s.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template).unwrap();
                assert_unwrapped(&s, unwrapped, &data);

                let wrapped =
                    raw.wrap(h, mech_none(sys::CKM_AES_KEY_WRAP_PKCS7), kek.handle(), key.handle()).unwrap();
                assert_eq!(wrapped.len(), expected_len, "PKCS7: {len}-byte key under a {kek_len}-byte KEK");
                // It is RFC 3394 over the PKCS #7-padded key: C_Decrypt with CKM_AES_KEY_WRAP
                // shows the padding.
                let mut padded = data.clone();
                padded.resize(expected_len - 8, (8 - len % 8) as u8);
                assert_eq!(
                    raw.crypt_single(false, h, mech_none(sys::CKM_AES_KEY_WRAP), kek, &wrapped),
                    Ok(padded)
                );
                let (rv, handle) =
                    raw.unwrap(h, mech_none(sys::CKM_AES_KEY_WRAP_PKCS7), kek.handle(), &wrapped, &template);
                assert_eq!(rv, sys::CKR_OK);
                assert_unwrapped(&s, object(handle), &data);
            }
        }
    }
);

isolated_test!(
    /// CKM_AES_GCM and CKM_AES_CBC_PAD as wrapping mechanisms: the wrapped key is the
    /// encryption of its value, and C_UnwrapKey opens it.
    fn aes_gcm_and_cbc_pad_wrap_and_unwrap() {
        let (_p, s, _raw) = setup();
        let kek = aes(&s, &hex(nist_gcm::KEY));
        for (key_type, len) in [(KeyType::AES, 16usize), (KeyType::AES, 32), (KeyType::GENERIC_SECRET, 20)] {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(13)).collect();
            let key = secret_key(&s, key_type, &data, &OPEN);
            let template = unwrap_template(key_type, false);

            let (mut iv1, mut iv2, mut iv3) = ([9u8; 12], [9u8; 12], [9u8; 12]);
            let wrapped = s.wrap_key(&gcm(&mut iv1, b"wrap"), kek, key).unwrap();
            assert_eq!(wrapped.len(), len + 16);
            assert_eq!(wrapped, s.encrypt(&gcm(&mut iv2, b"wrap"), kek, &data).unwrap());
            let unwrapped = s.unwrap_key(&gcm(&mut iv3, b"wrap"), kek, &wrapped, &template).unwrap();
            assert_unwrapped(&s, unwrapped, &data);
            // A wrong AAD opens nothing.
            let before = count(&s);
            let mut iv4 = [9u8; 12];
            expect_rv(
                s.unwrap_key(&gcm(&mut iv4, b"warp"), kek, &wrapped, &template),
                RvError::WrappedKeyInvalid,
            );
            assert_eq!(count(&s), before);

            let cbc = Mechanism::AesCbcPad(cbc_iv());
            let wrapped = s.wrap_key(&cbc, kek, key).unwrap();
            assert_eq!(wrapped.len(), (len / 16 + 1) * 16);
            assert_eq!(wrapped, s.encrypt(&cbc, kek, &data).unwrap());
            let unwrapped = s.unwrap_key(&cbc, kek, &wrapped, &template).unwrap();
            assert_unwrapped(&s, unwrapped, &data);
        }
    }
);

isolated_test!(
    /// C_WrapKey's output: a NULL buffer asks for the length, a short one gets
    /// CKR_BUFFER_TOO_SMALL with the length and nothing written, a larger one the bytes.
    fn wrap_key_follows_the_output_buffer_protocol() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let (kek, key) = kw_4_1_keys(&s);
        let expected = hex(KW_4_1);
        let before = count(&s);
        let mut m = mech_none(sys::CKM_AES_KEY_WRAP);

        let mut len: CK_ULONG = 0;
        // SAFETY: a live mechanism; a NULL output asks for the length.
        let rv = unsafe { raw.0.C_WrapKey(h, &mut m, kek.handle(), key.handle(), null_mut(), &mut len) };
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(len, 24);

        let mut buf = [0xeeu8; 40];
        for short in [0 as CK_ULONG, 8, 23] {
            let mut small = short;
            // SAFETY: the output holds 40 bytes, more than the stated capacity.
            let rv = unsafe {
                raw.0.C_WrapKey(h, &mut m, kek.handle(), key.handle(), buf.as_mut_ptr(), &mut small)
            };
            assert_eq!(rv, sys::CKR_BUFFER_TOO_SMALL, "capacity {short}");
            assert_eq!(small, 24, "the needed length is returned");
            assert_eq!(buf, [0xee; 40], "nothing written");
        }

        let mut len: CK_ULONG = 40;
        // SAFETY: the output holds 40 bytes.
        let rv =
            unsafe { raw.0.C_WrapKey(h, &mut m, kek.handle(), key.handle(), buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(len, 24);
        assert_eq!(&buf[..24], &expected[..]);
        assert_eq!(&buf[24..], &[0xee; 16], "nothing written past the wrapped key");

        let mut exact = [0u8; 24];
        let mut len: CK_ULONG = 24;
        // SAFETY: the output holds 24 bytes.
        let rv =
            unsafe { raw.0.C_WrapKey(h, &mut m, kek.handle(), key.handle(), exact.as_mut_ptr(), &mut len) };
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(exact.to_vec(), expected);

        // SAFETY: a NULL length pointer must be refused, not written.
        let rv =
            unsafe { raw.0.C_WrapKey(h, &mut m, kek.handle(), key.handle(), buf.as_mut_ptr(), null_mut()) };
        assert_eq!(rv, sys::CKR_ARGUMENTS_BAD);
        assert_eq!(count(&s), before, "wrapping creates no object");
    }
);

isolated_test!(
    /// Each refusal of C_WrapKey has its own code and changes nothing.
    fn wrap_key_refusals_change_nothing() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let (kek, key) = kw_4_1_keys(&s);
        let kw = || mech_none(sys::CKM_AES_KEY_WRAP);

        let no_wrap = secret_key(&s, KeyType::AES, &hex(KW_KEK)[..16], &[Attribute::Wrap(false)]);
        let before = count(&s);
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrap, no_wrap, key), RvError::KeyFunctionNotPermitted);
        assert_eq!(count(&s), before);

        // CKA_EXTRACTABLE defaults to false.
        let kept = aes(&s, &hex(KW_DATA)[..16]);
        assert_eq!(read(&s, kept, AttributeType::Extractable), Attribute::Extractable(false));
        let before = count(&s);
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrap, kek, kept), RvError::KeyUnextractable);
        // Made unextractable later is unextractable too.
        let was_open = secret_key(&s, KeyType::AES, &hex(KW_DATA)[..16], &OPEN);
        s.update_attributes(was_open, &[Attribute::Extractable(false)]).unwrap();
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrap, kek, was_open), RvError::KeyUnextractable);
        assert_eq!(count(&s) - 1, before);

        let before = count(&s);
        assert_eq!(raw.wrap(h, kw(), 0xdead_beef, key.handle()), Err(sys::CKR_WRAPPING_KEY_HANDLE_INVALID));
        assert_eq!(
            raw.wrap(h, kw(), sys::CK_INVALID_HANDLE, key.handle()),
            Err(sys::CKR_WRAPPING_KEY_HANDLE_INVALID)
        );
        let gone = aes(&s, &[3; 16]);
        s.destroy_object(gone).unwrap();
        assert_eq!(raw.wrap(h, kw(), gone.handle(), key.handle()), Err(sys::CKR_WRAPPING_KEY_HANDLE_INVALID));
        assert_eq!(raw.wrap(h, kw(), kek.handle(), 0xdead_beef), Err(sys::CKR_KEY_HANDLE_INVALID));
        assert_eq!(count(&s), before);

        // The wrapping key and the key are unchanged and still work together.
        assert_eq!(s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap(), hex(KW_4_1));
    }
);

isolated_test!(
    /// A key with CKA_WRAP_WITH_TRUSTED leaves only under a wrapping key with CKA_TRUSTED,
    /// which only the SO can set; once set, the wrap works.
    fn wrap_with_trusted_needs_a_trusted_wrapping_key() {
        let (_p, s, _raw) = setup();
        let label = |l: &str| Attribute::Label(l.as_bytes().to_vec());
        let find = |s: &Session, l: &str| {
            let found = s.find_objects(&[label(l)]).unwrap();
            assert_eq!(found.len(), 1, "{l}");
            found[0]
        };
        // A public token wrapping key (so that the SO can see it) and a private token key.
        let wrapper = secret_key(
            &s,
            KeyType::AES,
            &hex(KW_KEK)[..16],
            &[Attribute::Token(true), Attribute::Private(false), label("wrapper")],
        );
        let target = secret_key(
            &s,
            KeyType::AES,
            &hex(KW_DATA)[..16],
            &[
                Attribute::Token(true),
                Attribute::WrapWithTrusted(true),
                label("target"),
                OPEN[0].clone(),
                OPEN[1].clone(),
            ],
        );
        assert_eq!(read(&s, wrapper, AttributeType::Trusted), Attribute::Trusted(false));
        let before = count(&s);
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrap, wrapper, target), RvError::KeyNotWrappable);
        assert_eq!(count(&s), before);
        // The user cannot make the key trusted.
        expect_rv(s.update_attributes(wrapper, &[Attribute::Trusted(true)]), RvError::AttributeReadOnly);
        assert_eq!(read(&s, wrapper, AttributeType::Trusted), Attribute::Trusted(false));
        // An untrusted wrap of an ordinary key still works with the same wrapping key.
        let ordinary = secret_key(&s, KeyType::AES, &hex(KW_DATA)[..16], &OPEN);
        assert_eq!(s.wrap_key(&Mechanism::AesKeyWrap, wrapper, ordinary).unwrap(), hex(KW_4_1));

        // The SO sets CKA_TRUSTED.
        s.logout().unwrap();
        s.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).unwrap();
        let wrapper_for_so = find(&s, "wrapper");
        s.update_attributes(wrapper_for_so, &[Attribute::Trusted(true)]).unwrap();
        s.logout().unwrap();

        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let (wrapper, target) = (find(&s, "wrapper"), find(&s, "target"));
        assert_eq!(read(&s, wrapper, AttributeType::Trusted), Attribute::Trusted(true));
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, wrapper, target).unwrap();
        assert_eq!(wrapped, hex(KW_4_1));
        let unwrapped = s
            .unwrap_key(&Mechanism::AesKeyWrap, wrapper, &wrapped, &unwrap_template(KeyType::AES, false))
            .unwrap();
        assert_unwrapped(&s, unwrapped, &hex(KW_DATA)[..16]);
    }
);

isolated_test!(
    /// A key whose length the wrapping mechanism cannot take is refused with
    /// CKR_KEY_SIZE_RANGE (CKR_DATA_LEN_RANGE is not among C_WrapKey's return values in
    /// PKCS#11 3.0), and nothing changes.
    fn wrap_key_refuses_key_sizes_the_mechanism_cannot_wrap() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let kek = aes(&s, &hex(KW_KEK)[..16]);
        // RFC 3394 wraps multiples of 8 bytes, at least 16; PKCS #7 padding then RFC 3394
        // needs at least 8 bytes.
        let cases = [
            (sys::CKM_AES_KEY_WRAP, 20usize),
            (sys::CKM_AES_KEY_WRAP, 8),
            (sys::CKM_AES_KEY_WRAP, 1),
            (sys::CKM_AES_KEY_WRAP_PAD, 7),
            (sys::CKM_AES_KEY_WRAP_PKCS7, 7),
            (sys::CKM_AES_KEY_WRAP_PKCS7, 1),
        ];
        let mut problems = Vec::new();
        for (kind, len) in cases {
            let key = secret_key(&s, KeyType::GENERIC_SECRET, &vec![0x3c; len], &OPEN);
            let before = count(&s);
            let result = raw.wrap(h, mech_none(kind), kek.handle(), key.handle());
            assert!(result.is_err(), "{kind:#x} wrapped a {len}-byte key");
            if result != Err(sys::CKR_KEY_SIZE_RANGE) {
                problems.push(format!(
                    "C_WrapKey({kind:#x}, {len}-byte key) -> {:#x}, expected CKR_KEY_SIZE_RANGE (0x62)",
                    result.unwrap_err()
                ));
            }
            assert_eq!(count(&s), before);
        }
        // The same mechanisms wrap keys of a size they take.
        assert_eq!(
            s.wrap_key(&Mechanism::AesKeyWrap, kek, secret_key(&s, KeyType::AES, &[1; 16], &OPEN))
                .unwrap()
                .len(),
            24
        );
        assert!(problems.is_empty(), "wrong codes:\n{}", problems.join("\n"));
    }
);

isolated_test!(
    /// A wrapping key of a type the mechanism does not take is
    /// CKR_WRAPPING_KEY_TYPE_INCONSISTENT for C_WrapKey and CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
    /// for C_UnwrapKey (CKR_KEY_TYPE_INCONSISTENT is not among their return values in
    /// PKCS#11 3.0, and would name the wrong key), and nothing changes.
    fn wrap_and_unwrap_refuse_a_wrapping_key_of_the_wrong_type() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let generic = secret_key(&s, KeyType::GENERIC_SECRET, &hex(KW_KEK)[..16], &[]);
        let key = secret_key(&s, KeyType::AES, &hex(KW_DATA)[..16], &OPEN);
        let template = unwrap_template(KeyType::AES, false);
        let mut iv = cbc_iv();
        let mut gcm_iv = [1u8; 12];
        let mut gcm_params = raw::gcm_params(&mut gcm_iv);
        let mechanisms = [
            ("CKM_AES_KEY_WRAP", mech_none(sys::CKM_AES_KEY_WRAP)),
            ("CKM_AES_KEY_WRAP_KWP", mech_none(sys::CKM_AES_KEY_WRAP_KWP)),
            ("CKM_AES_CBC_PAD", mech_bytes(sys::CKM_AES_CBC_PAD, &mut iv)),
            ("CKM_AES_GCM", mech_with(sys::CKM_AES_GCM, &mut gcm_params)),
        ];
        let mut problems = Vec::new();
        for (name, m) in mechanisms {
            let before = count(&s);
            let wrapped = raw.wrap(h, m, generic.handle(), key.handle());
            if wrapped != Err(sys::CKR_WRAPPING_KEY_TYPE_INCONSISTENT) {
                problems.push(format!(
                    "C_WrapKey({name}, generic secret wrapping key) -> {wrapped:x?}, expected \
                     CKR_WRAPPING_KEY_TYPE_INCONSISTENT (0x115)"
                ));
            }
            let (rv, handle) = raw.unwrap(h, m, generic.handle(), &[0x55; 32], &template);
            if rv != sys::CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT {
                problems.push(format!(
                    "C_UnwrapKey({name}, generic secret unwrapping key) -> {rv:#x}, expected \
                     CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT (0xf2)"
                ));
            }
            assert!(wrapped.is_err() && rv != sys::CKR_OK, "{name}: a generic secret wrapped or unwrapped");
            assert_eq!(handle, sys::CK_INVALID_HANDLE);
            assert_eq!(count(&s), before);
        }
        assert!(problems.is_empty(), "wrong codes:\n{}", problems.join("\n"));
    }
);

isolated_test!(
    /// Each refusal of C_UnwrapKey has its own code, creates no object and returns no handle;
    /// the session stays usable.
    fn unwrap_key_refusals_change_nothing() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let kek = aes(&s, &hex(KW_KEK)[..16]);
        let blob = hex(KW_4_1);
        let kw = || mech_none(sys::CKM_AES_KEY_WRAP);
        let good = unwrap_template(KeyType::AES, false);

        let refused = |unwrapping: CK_OBJECT_HANDLE,
                       wrapped: &[u8],
                       template: &[Attribute],
                       expected: CK_RV,
                       what: &str| {
            let before = count(&s);
            let (rv, handle) = raw.unwrap(h, kw(), unwrapping, wrapped, template);
            assert_eq!(rv, expected, "{what}: {rv:#x}");
            assert_eq!(handle, sys::CK_INVALID_HANDLE, "{what}: no handle returned");
            assert_eq!(count(&s), before, "{what}: no object created");
        };

        let no_unwrap = secret_key(&s, KeyType::AES, &hex(KW_KEK)[..16], &[Attribute::Unwrap(false)]);
        refused(no_unwrap.handle(), &blob, &good, sys::CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_UNWRAP false");
        refused(0xdead_beef, &blob, &good, sys::CKR_UNWRAPPING_KEY_HANDLE_INVALID, "no such unwrapping key");

        for i in [0usize, 7, 8, 23] {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            refused(kek.handle(), &tampered, &good, sys::CKR_WRAPPED_KEY_INVALID, "tampered blob");
            // The session is still usable.
            let pt = hex(SP800_38A_PT);
            assert_eq!(
                s.encrypt(&Mechanism::AesCbc(cbc_iv()), aes(&s, &hex(AES128_KEY)), &pt).unwrap(),
                hex(CBC128_CT)
            );
        }
        // A wrong KEK is the same error.
        let other = aes(&s, &[0x42; 16]);
        refused(other.handle(), &blob, &good, sys::CKR_WRAPPED_KEY_INVALID, "wrong KEK");

        for len in [0usize, 8, 16, 20, 23, 25] {
            refused(
                kek.handle(),
                &vec![0x11; len],
                &good,
                sys::CKR_WRAPPED_KEY_LEN_RANGE,
                "blob of bad length",
            );
        }

        let no_class: Vec<Attribute> =
            good.iter().filter(|a| a.attribute_type() != AttributeType::Class).cloned().collect();
        refused(kek.handle(), &blob, &no_class, sys::CKR_TEMPLATE_INCOMPLETE, "template without CKA_CLASS");

        let mut with_value = good.clone();
        with_value.push(Attribute::Value(hex(KW_DATA)[..16].to_vec()));
        refused(kek.handle(), &blob, &with_value, sys::CKR_TEMPLATE_INCONSISTENT, "template with CKA_VALUE");

        let mut len32 = good.clone();
        len32.push(Attribute::ValueLen(32.into()));
        refused(
            kek.handle(),
            &blob,
            &len32,
            sys::CKR_TEMPLATE_INCONSISTENT,
            "CKA_VALUE_LEN 32 for a 16-byte key",
        );

        // The right CKA_VALUE_LEN is accepted, and the untampered blob opens.
        let mut len16 = good.clone();
        len16.push(Attribute::ValueLen(16.into()));
        let (rv, handle) = raw.unwrap(h, kw(), kek.handle(), &blob, &len16);
        assert_eq!(rv, sys::CKR_OK);
        assert_unwrapped(&s, object(handle), &hex(KW_DATA)[..16]);
    }
);

// ---------------------------------------------------------------------------------------------
// 4. PKCS#11 3.0 message-based AES-GCM
// ---------------------------------------------------------------------------------------------

/// The NIST GCM test case 16 key as a session key, with the case's AAD and plaintext.
fn nist_gcm_case(s: &Session) -> (ObjectHandle, Vec<u8>, Vec<u8>) {
    (aes(s, &hex(nist_gcm::KEY)), hex(nist_gcm::AAD), hex(nist_gcm::PT))
}

isolated_test!(
    /// CKG_NO_GENERATE with NIST GCM test case 16: ciphertext and tag are the known answer,
    /// the IV is left as given, and C_DecryptMessage opens it.
    fn message_gcm_matches_nist_with_the_callers_iv() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let (key, aad, pt) = nist_gcm_case(&s);
        assert_eq!(raw.message_init(true, h, key), sys::CKR_OK);

        let mut iv: [u8; 12] = hex(nist_gcm::IV).try_into().unwrap();
        let mut tag = [0u8; 16];
        let mut ct = vec![0u8; 64];
        let mut params = message_params(&mut iv, 0, sys::CKG_NO_GENERATE, &mut tag);
        let (rv, len) = raw.message(true, h, &mut params, &aad, &pt, Some(ct.as_mut_slice()));
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(len, 60);
        assert_eq!(&ct[..60], &hex(nist_gcm::CT)[..]);
        assert_eq!(tag.to_vec(), hex(nist_gcm::TAG));
        assert_eq!(iv.to_vec(), hex(nist_gcm::IV), "the caller's IV is used as given");

        assert_eq!(raw.message_init(false, h, key), sys::CKR_OK);
        let mut out = vec![0u8; 60];
        let mut params = message_params(&mut iv, 0, sys::CKG_NO_GENERATE, &mut tag);
        let (rv, len) =
            raw.message(false, h, &mut params, &aad, &hex(nist_gcm::CT), Some(out.as_mut_slice()));
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(len, 60);
        assert_eq!(out, pt);

        // The same message through single-shot C_Encrypt agrees.
        let mut iv2: [u8; 12] = hex(nist_gcm::IV).try_into().unwrap();
        let single = s.encrypt(&gcm(&mut iv2, &aad), key, &pt).unwrap();
        assert_eq!(single, nist_gcm::ct_and_tag());
        end_messages(&raw, h);
    }
);

/// [`setup`] with message-based encryption and decryption started under the NIST key.
fn message_setup() -> (Pkcs11, Session, Raw) {
    let (p, s, raw) = setup();
    let key = aes(&s, &hex(nist_gcm::KEY));
    assert_eq!(raw.message_init(true, s.handle(), key), sys::CKR_OK);
    assert_eq!(raw.message_init(false, s.handle(), key), sys::CKR_OK);
    (p, s, raw)
}

/// Both message-based operations end without error.
#[track_caller]
fn end_messages(raw: &Raw, h: CK_SESSION_HANDLE) {
    assert_eq!(raw.message_final(true, h), sys::CKR_OK);
    assert_eq!(raw.message_final(false, h), sys::CKR_OK);
}

/// Seals `pt` with a generated IV whose first 4 bytes are `fixed`; returns the IV the module
/// wrote back, the ciphertext and the tag.
fn seal_generated(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    generator: CK_GENERATOR_FUNCTION,
    fixed: [u8; 4],
    aad: &[u8],
    pt: &[u8],
) -> ([u8; 12], Vec<u8>, [u8; 16]) {
    let mut iv = [0u8; 12];
    iv[..4].copy_from_slice(&fixed);
    let mut tag = [0u8; 16];
    let mut ct = vec![0u8; pt.len()];
    let mut params = message_params(&mut iv, 32, generator, &mut tag);
    let (rv, len) = raw.message(true, h, &mut params, aad, pt, Some(ct.as_mut_slice()));
    assert_eq!(rv, sys::CKR_OK, "C_EncryptMessage with generator {generator}");
    assert_eq!(len, pt.len());
    assert_eq!(iv[..4], fixed, "the fixed 32 bits are the caller's");
    assert_ne!(iv[4..], [0u8; 8], "the module wrote an IV");
    (iv, ct, tag)
}

/// Opens a message with its IV and tag.
fn open_message(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    iv: [u8; 12],
    tag: [u8; 16],
    aad: &[u8],
    ct: &[u8],
) -> (CK_RV, Vec<u8>) {
    let (mut iv, mut tag) = (iv, tag);
    let mut out = vec![0u8; ct.len()];
    let mut params = message_params(&mut iv, 0, sys::CKG_NO_GENERATE, &mut tag);
    let (rv, len) = raw.message(false, h, &mut params, aad, ct, Some(out.as_mut_slice()));
    if rv == sys::CKR_OK {
        out.truncate(len);
    }
    (rv, out)
}

isolated_test!(
    /// CKG_GENERATE_RANDOM with 32 fixed bits: each message gets a new IV that keeps the
    /// caller's first 4 bytes, and C_DecryptMessage opens each with its IV and tag.
    fn message_gcm_generates_random_ivs() {
        let (_p, s, raw) = message_setup();
        let h = s.handle();
        let fixed = [0xde, 0xad, 0xbe, 0xef];
        let (iv1, ct1, tag1) =
            seal_generated(&raw, h, sys::CKG_GENERATE_RANDOM, fixed, b"one", b"first message");
        let (iv2, ct2, tag2) =
            seal_generated(&raw, h, sys::CKG_GENERATE_RANDOM, fixed, b"two", b"first message");
        assert_ne!(iv1, iv2, "two messages, two IVs");
        assert_ne!(ct1, ct2);
        // A size query on C_DecryptMessage answers the plaintext's length.
        let (mut iv_q, mut tag_q) = (iv1, tag1);
        let mut params = message_params(&mut iv_q, 0, sys::CKG_NO_GENERATE, &mut tag_q);
        assert_eq!(raw.message(false, h, &mut params, b"one", &ct1, None), (sys::CKR_OK, ct1.len()));
        assert_eq!(open_message(&raw, h, iv1, tag1, b"one", &ct1), (sys::CKR_OK, b"first message".to_vec()));
        assert_eq!(open_message(&raw, h, iv2, tag2, b"two", &ct2), (sys::CKR_OK, b"first message".to_vec()));
        // Each opens only with its own IV.
        assert_eq!(open_message(&raw, h, iv2, tag1, b"one", &ct1).0, sys::CKR_ENCRYPTED_DATA_INVALID);
        end_messages(&raw, h);
    }
);

isolated_test!(
    /// CKG_GENERATE_COUNTER with 32 fixed bits: IVs differ and keep the fixed part; a size
    /// query (NULL ciphertext) answers the length, leaves the IV buffer alone and uses no IV.
    fn message_gcm_generates_counter_ivs_and_size_queries_use_none() {
        let (_p, s, raw) = message_setup();
        let h = s.handle();
        let fixed = [0x01, 0x02, 0x03, 0x04];
        let pt = b"counter message".to_vec();
        let (iv1, ct1, tag1) = seal_generated(&raw, h, sys::CKG_GENERATE_COUNTER, fixed, b"", &pt);

        // A size query.
        let mut iv = [0x5au8; 12];
        iv[..4].copy_from_slice(&fixed);
        let sentinel = iv;
        let mut tag = [0x77u8; 16];
        let mut params = message_params(&mut iv, 32, sys::CKG_GENERATE_COUNTER, &mut tag);
        let (rv, len) = raw.message(true, h, &mut params, b"", &pt, None);
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(len, pt.len(), "the ciphertext is as long as the plaintext");
        assert_eq!(iv, sentinel, "the size query did not change the IV buffer");
        assert_eq!(tag, [0x77; 16], "nor the tag buffer");
        // A short buffer: CKR_BUFFER_TOO_SMALL with the length, nothing written, no IV used.
        let mut short = vec![0u8; pt.len() - 1];
        let mut params = message_params(&mut iv, 32, sys::CKG_GENERATE_COUNTER, &mut tag);
        let (rv, len) = raw.message(true, h, &mut params, b"", &pt, Some(short.as_mut_slice()));
        assert_eq!(rv, sys::CKR_BUFFER_TOO_SMALL);
        assert_eq!(len, pt.len());
        assert_eq!(short, vec![0u8; pt.len() - 1], "nothing written");
        assert_eq!(iv, sentinel, "the short buffer did not change the IV buffer");
        assert_eq!(tag, [0x77; 16], "nor the tag buffer");

        let (iv2, ct2, tag2) = seal_generated(&raw, h, sys::CKG_GENERATE_COUNTER, fixed, b"", &pt);
        let (iv3, _, _) = seal_generated(&raw, h, sys::CKG_GENERATE_COUNTER, fixed, b"", &pt);
        assert_ne!(iv1, iv2);
        assert_ne!(iv2, iv3);
        assert_ne!(iv1, iv3);
        // The counter counts messages, not size queries.
        let counter = |iv: [u8; 12]| u64::from_be_bytes(iv[4..].try_into().unwrap());
        assert_eq!(counter(iv2), counter(iv1).wrapping_add(1), "the size query and short buffer used no IV");
        assert_eq!(counter(iv3), counter(iv2).wrapping_add(1));

        assert_eq!(open_message(&raw, h, iv1, tag1, b"", &ct1), (sys::CKR_OK, pt.clone()));
        assert_eq!(open_message(&raw, h, iv2, tag2, b"", &ct2), (sys::CKR_OK, pt.clone()));
        end_messages(&raw, h);
    }
);

isolated_test!(
    /// A tampered tag opens nothing; C_EncryptMessage before C_MessageEncryptInit and after
    /// C_MessageEncryptFinal is CKR_OPERATION_NOT_INITIALIZED.
    fn message_gcm_refusals_and_final() {
        let (_p, s, raw) = setup();
        let h = s.handle();
        let (key, aad, pt) = nist_gcm_case(&s);
        let encrypt_once = |raw: &Raw| {
            let mut iv: [u8; 12] = hex(nist_gcm::IV).try_into().unwrap();
            let mut tag = [0u8; 16];
            let mut ct = vec![0u8; 60];
            let mut params = message_params(&mut iv, 0, sys::CKG_NO_GENERATE, &mut tag);
            let (rv, _) = raw.message(true, h, &mut params, &aad, &pt, Some(ct.as_mut_slice()));
            (rv, ct, tag)
        };

        // Before init.
        let (rv, ct, _) = encrypt_once(&raw);
        assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(ct, vec![0u8; 60], "nothing written");
        let iv: [u8; 12] = hex(nist_gcm::IV).try_into().unwrap();
        let tag: [u8; 16] = hex(nist_gcm::TAG).try_into().unwrap();
        assert_eq!(
            open_message(&raw, h, iv, tag, &aad, &hex(nist_gcm::CT)).0,
            sys::CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(raw.message_final(true, h), sys::CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(raw.message_final(false, h), sys::CKR_OPERATION_NOT_INITIALIZED);

        // Init, a second init is refused, messages go through.
        assert_eq!(raw.message_init(true, h, key), sys::CKR_OK);
        assert_eq!(raw.message_init(true, h, key), sys::CKR_OPERATION_ACTIVE);
        let (rv, ct, tag) = encrypt_once(&raw);
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(ct, hex(nist_gcm::CT));

        // A tampered tag, or ciphertext: refused, nothing released.
        assert_eq!(raw.message_init(false, h, key), sys::CKR_OK);
        let mut bad_tag = tag;
        bad_tag[15] ^= 1;
        let (mut iv_buf, mut tag_buf) = (iv, bad_tag);
        let mut out = vec![0u8; 60];
        let mut params = message_params(&mut iv_buf, 0, sys::CKG_NO_GENERATE, &mut tag_buf);
        let (rv, _) = raw.message(false, h, &mut params, &aad, &ct, Some(out.as_mut_slice()));
        assert_eq!(rv, sys::CKR_ENCRYPTED_DATA_INVALID);
        assert_eq!(out, vec![0u8; 60], "no unauthenticated plaintext released");
        let mut bad_ct = ct.clone();
        bad_ct[0] ^= 1;
        assert_eq!(open_message(&raw, h, iv, tag, &aad, &bad_ct).0, sys::CKR_ENCRYPTED_DATA_INVALID);
        assert_eq!(open_message(&raw, h, iv, tag, b"other aad", &ct).0, sys::CKR_ENCRYPTED_DATA_INVALID);
        // A message-based operation goes on until its final call: the genuine message opens.
        assert_eq!(open_message(&raw, h, iv, tag, &aad, &ct), (sys::CKR_OK, pt.clone()));

        // C_MessageEncryptFinal ends the encryption (and only it).
        assert_eq!(raw.message_final(true, h), sys::CKR_OK);
        assert_eq!(encrypt_once(&raw).0, sys::CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(raw.message_final(true, h), sys::CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(open_message(&raw, h, iv, tag, &aad, &ct), (sys::CKR_OK, pt.clone()));
        assert_eq!(raw.message_final(false, h), sys::CKR_OK);
        assert_eq!(open_message(&raw, h, iv, tag, &aad, &ct).0, sys::CKR_OPERATION_NOT_INITIALIZED);
        // And a new one can start.
        assert_eq!(raw.message_init(true, h, key), sys::CKR_OK);
        assert_eq!(encrypt_once(&raw).0, sys::CKR_OK);
        assert_eq!(raw.message_final(true, h), sys::CKR_OK);
    }
);
