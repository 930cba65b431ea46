//! Reading objects and building templates and mechanisms through the `cryptoki` crate, the
//! small helpers many test files need the same way.
#![allow(dead_code)]

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_ULONG};

/// How many objects the session sees.
#[track_caller]
pub fn count(s: &Session) -> usize {
    s.find_objects(&[]).unwrap().len()
}

/// The objects labelled `label` that the session sees.
#[track_caller]
pub fn find_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).unwrap()
}

/// One attribute of an object, which must be readable.
#[track_caller]
pub fn read(s: &Session, h: ObjectHandle, t: AttributeType) -> Attribute {
    let mut v = s.get_attributes(h, &[t]).unwrap();
    assert_eq!(v.len(), 1, "{t:?} is not readable");
    v.remove(0)
}

/// The value inside `attribute` when it is one of the variants listed (all carrying the same
/// type), a panic naming the attribute otherwise: the one match every typed reader shares.
macro_rules! payload {
    ($attribute:expr, $what:literal, $($variant:ident)+) => {
        match $attribute {
            $(cryptoki::object::Attribute::$variant(v))|+ => v,
            other => panic!("{other:?} is not {}", $what),
        }
    };
}

/// `CKA_VALUE` of an object, which must be readable.
#[track_caller]
pub fn value(s: &Session, h: ObjectHandle) -> Vec<u8> {
    bytes(s, h, AttributeType::Value)
}

/// A byte-string attribute of an object.
#[track_caller]
pub fn bytes(s: &Session, h: ObjectHandle, t: AttributeType) -> Vec<u8> {
    payload!(
        read(s, h, t),
        "a byte string",
        Label Value Application ObjectId UniqueId Id Subject Issuer SerialNumber Modulus
        PublicExponent PrivateExponent PublicKeyInfo EcParams EcPoint
    )
}

/// A boolean attribute of an object.
#[track_caller]
pub fn flag(s: &Session, h: ObjectHandle, t: AttributeType) -> bool {
    payload!(
        read(s, h, t),
        "a boolean",
        Token Private Modifiable Copyable Destroyable Sensitive Extractable Local AlwaysSensitive
        NeverExtractable Encrypt Decrypt Sign Verify Wrap Unwrap Derive Trusted
    )
}

/// A vendor-defined attribute (the hierarchy's `CKA_ECM_*`).
pub fn vendor(kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(kind), value))
}

/// `CKA_ECM_TIER` with the tier `t`.
pub fn tier(t: CK_ULONG) -> Attribute {
    vendor(ecm_hsm::vendor::CKA_ECM_TIER, t.to_ne_bytes().to_vec())
}

/// `CKM_AES_GCM` with a 128-bit tag.
pub fn gcm<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, aad, 128.into()).unwrap())
}

/// `C_Login` as the user with `text`, which may name a principal (`name:pin`).
pub fn login_as(s: &Session, text: &str) -> cryptoki::error::Result<()> {
    s.login(UserType::User, Some(&AuthPin::new(text.into())))
}

/// A session secret key of `key_type` made by `C_CreateObject` from `value`, extractable: a
/// key imported from outside the token, as the wrap and sensitivity tests need one.
#[track_caller]
pub fn imported_secret(s: &Session, key_type: KeyType, value: Vec<u8>) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Value(value),
        Attribute::Extractable(true),
    ])
    .unwrap()
}

/// A token AES-256 key labelled `label` made by `C_GenerateKey`, with the `extra` attributes.
#[track_caller]
pub fn token_aes_key(s: &Session, label: &str, extra: &[Attribute]) -> ObjectHandle {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Label(label.into()),
    ];
    template.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &template).unwrap()
}

/// A generated 256-bit AES session key that may wrap and unwrap: the KEK most wrapping tests
/// need.
#[track_caller]
pub fn wrapping_key(s: &Session) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[Attribute::ValueLen(32.into()), Attribute::Wrap(true), Attribute::Unwrap(true)],
    )
    .unwrap()
}
