//! Helpers of the post-quantum tests (`mechanisms_pq.rs`, `mechanisms_pq_kem.rs`): key pairs,
//! and `C_EncapsulateKey`/`C_DecapsulateKey` through the 3.2 function list.
//!
//! The raw calls here take the 3.2 function list by name and version (`C_GetInterface`
//! "PKCS 11" 3.2), on sessions and keys made with `cryptoki`, so that the tests reach the
//! 3.2 functions whatever `C_GetInterface(NULL, NULL)` gives (3.2 by default; 3.0 with
//! `ECM_HSM_DEFAULT_INTERFACE=3.0`, see `src/abi/function_list.rs`).
#![allow(dead_code)]

use std::ptr::null_mut;

use aws_lc_rs::signature as sig;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::object::{
    Attribute, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki_sys::*;

// Re-exported for the test files that include this module; not each of them uses both.
#[allow(unused_imports)]
pub use crate::common::objects::{count, value};
use crate::common::raw::load_raw;
use crate::common::raw_wrap::{mech_none, unwrap_key, wrap_key};

#[track_caller]
pub fn assert_unchanged(s: &Session, before: usize) {
    assert_eq!(count(s), before, "a refused call changed the objects");
    assert_eq!(s.digest(&Mechanism::Sha256, b"abc").unwrap().len(), 32, "the session is unusable");
}

pub const ML_DSA_SETS: [(MlDsaParameterSetType, usize, usize); 3] = [
    (MlDsaParameterSetType::ML_DSA_44, 1312, 2420),
    (MlDsaParameterSetType::ML_DSA_65, 1952, 3309),
    (MlDsaParameterSetType::ML_DSA_87, 2592, 4627),
];

pub fn ml_dsa() -> Mechanism<'static> {
    Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None))
}

pub fn dsa_pair(s: &Session, set: MlDsaParameterSetType) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::ParameterSet(set.into()), Attribute::Token(true), Attribute::Verify(true)],
        &[Attribute::Token(true), Attribute::Sensitive(true), Attribute::Sign(true)],
    )
    .unwrap()
}

pub fn kem_pair(s: &Session, set: MlKemParameterSetType) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::MlKemKeyPairGen,
        &[Attribute::ParameterSet(set.into()), Attribute::Token(true), Attribute::Encapsulate(true)],
        &[Attribute::Token(true), Attribute::Sensitive(true), Attribute::Decapsulate(true)],
    )
    .unwrap()
}

pub fn aws_lc_algorithm(set: MlDsaParameterSetType) -> &'static sig::PqdsaVerificationAlgorithm {
    match *set.as_ref() {
        CKP_ML_DSA_44 => &sig::ML_DSA_44,
        CKP_ML_DSA_65 => &sig::ML_DSA_65,
        _ => &sig::ML_DSA_87,
    }
}

/// The 3.2 function list, as `C_GetInterface("PKCS 11", {3, 2})` hands it out.
pub fn list_3_2() -> &'static CK_FUNCTION_LIST_3_2 {
    let lib = load_raw();
    let mut version = CK_VERSION { major: 3, minor: 2 };
    let mut name = *b"PKCS 11\0";
    let mut interface: *mut CK_INTERFACE = null_mut();
    // SAFETY: a NUL-terminated name, a live version and out-pointer.
    let rv = unsafe { lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut interface, 0) };
    assert_eq!(rv, CKR_OK);
    // SAFETY: the module's static interface table; a 3.2 interface points to a 3.2 list.
    let list = unsafe { &*((*interface).pFunctionList as *const CK_FUNCTION_LIST_3_2) };
    assert_eq!((list.version.major, list.version.minor), (3, 2));
    list
}

pub fn raw_template(template: &[Attribute]) -> Vec<CK_ATTRIBUTE> {
    template.iter().map(CK_ATTRIBUTE::from).collect()
}

/// An AES wrapping key of a value the test knows, so that it can seal and open KWP blobs
/// itself.
pub fn wrapping_key(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ])
    .unwrap()
}

/// `CKM_AES_KEY_WRAP_KWP`, which the `cryptoki` client cannot name.
pub fn kwp() -> CK_MECHANISM {
    mech_none(CKM_AES_KEY_WRAP_KWP)
}

/// `C_WrapKey` with `m` on a `cryptoki` session: a length query, then the wrap.
pub fn wrap(
    s: &Session,
    m: &mut CK_MECHANISM,
    wrapping: ObjectHandle,
    key: ObjectHandle,
) -> Result<Vec<u8>, CK_RV> {
    wrap_key(&load_raw(), s.handle(), m, wrapping.handle(), key.handle())
}

/// `C_UnwrapKey` with `m` on a `cryptoki` session and template: the new key or the code.
pub fn unwrap(
    s: &Session,
    m: &mut CK_MECHANISM,
    unwrapping: ObjectHandle,
    wrapped: &[u8],
    template: &[Attribute],
) -> Result<ObjectHandle, CK_RV> {
    let mut t = raw_template(template);
    match unwrap_key(&load_raw(), s.handle(), m, unwrapping.handle(), wrapped, &mut t) {
        (CKR_OK, key) => Ok(handle_of(s, key)),
        (rv, _) => Err(rv),
    }
}

/// A DER TLV.
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// A PKCS#8 `PrivateKeyInfo` (v1, no parameters) of `oid` around `private_key` (DER).
pub fn pkcs8(oid: &[u8], private_key: &[u8]) -> Vec<u8> {
    let algorithm = tlv(0x30, &tlv(0x06, oid));
    tlv(0x30, &[&[0x02, 0x01, 0x00][..], &algorithm, &tlv(0x04, private_key)].concat())
}

pub fn kem_mechanism() -> CK_MECHANISM {
    mech_none(CKM_ML_KEM)
}

/// `C_EncapsulateKey` with an output buffer of `capacity` bytes (`None`: a size query):
/// the return code, the length it set, the ciphertext and the new key's handle.
pub fn encapsulate(
    s: &Session,
    public: ObjectHandle,
    template: &[Attribute],
    capacity: Option<usize>,
) -> (CK_RV, CK_ULONG, Vec<u8>, CK_OBJECT_HANDLE) {
    let mut m = kem_mechanism();
    let mut t = raw_template(template);
    let mut out = vec![0u8; capacity.unwrap_or(0)];
    let out_ptr = if capacity.is_some() { out.as_mut_ptr() } else { null_mut() };
    let mut len = out.len() as CK_ULONG;
    let mut key: CK_OBJECT_HANDLE = 0;
    // SAFETY: the mechanism, template (whose values live in `template`), buffer and
    // out-pointers are live for the call.
    let rv = unsafe {
        (list_3_2().C_EncapsulateKey.unwrap())(
            s.handle(),
            &mut m,
            public.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            out_ptr,
            &mut len,
            &mut key,
        )
    };
    if rv == CKR_OK && capacity.is_some() {
        out.truncate(len as usize);
    }
    (rv, len, out, key)
}

pub fn decapsulate(
    s: &Session,
    private: ObjectHandle,
    template: &[Attribute],
    ciphertext: &[u8],
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut m = kem_mechanism();
    let mut t = raw_template(template);
    let mut ct = ciphertext.to_vec();
    let mut key: CK_OBJECT_HANDLE = 0;
    // SAFETY: as in `encapsulate`.
    let rv = unsafe {
        (list_3_2().C_DecapsulateKey.unwrap())(
            s.handle(),
            &mut m,
            private.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            ct.as_mut_ptr(),
            ct.len() as CK_ULONG,
            &mut key,
        )
    };
    (rv, key)
}

pub fn aes_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// The object handle `cryptoki` uses for a raw handle the module returned: found by search.
pub fn handle_of(s: &Session, raw: CK_OBJECT_HANDLE) -> ObjectHandle {
    s.find_objects(&[]).unwrap().into_iter().find(|h| h.handle() == raw).expect("the new key is visible")
}
