//! Session secret keys made with `C_CreateObject` from a known value, as the known-answer
//! tests need them.
#![allow(dead_code)]

use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The `C_CreateObject` template of a secret key of `key_type` holding `value`, with the
/// extra attributes (the module's defaults otherwise: sensitive, not extractable, every usage
/// allowed).
pub fn secret_key_template(key_type: KeyType, value: &[u8], extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    t
}

/// A session secret key made from [`secret_key_template`].
#[track_caller]
pub fn secret_key(s: &Session, key_type: KeyType, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    s.create_object(&secret_key_template(key_type, value, extra)).unwrap()
}

/// A session AES key holding `value`, with the extra attributes.
#[track_caller]
pub fn aes_key(s: &Session, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    secret_key(s, KeyType::AES, value, extra)
}
