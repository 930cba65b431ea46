//! Session keys made with `C_CreateObject` from known values (a secret key's value, an RSA
//! key's published components), as the known-answer tests need them.
#![allow(dead_code)]

use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::hex;

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

/// The template of an EC public key (of `key_type`: EC, Edwards or Montgomery) on the curve
/// of `params` with the encoded `point`, which verifies.
pub fn ec_public_template(key_type: KeyType, params: &[u8], point: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
        Attribute::EcParams(params.to_vec()),
        Attribute::EcPoint(point.to_vec()),
        Attribute::Verify(true),
    ]
}

/// An RSA key's components in hex, as a test vector publishes them.
pub struct RsaComponents<'a> {
    pub n: &'a str,
    pub e: &'a str,
    pub d: &'a str,
    pub p: &'a str,
    pub q: &'a str,
    pub dp: &'a str,
    pub dq: &'a str,
    pub qinv: &'a str,
}

impl RsaComponents<'_> {
    /// The template of the public key, which verifies and encrypts.
    pub fn public_template(&self) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(hex(self.n)),
            Attribute::PublicExponent(hex(self.e)),
            Attribute::Verify(true),
            Attribute::Encrypt(true),
        ]
    }

    /// The template of the private key, which signs and decrypts; with its CRT values (p, q,
    /// dp, dq, qinv) or with n, e and d alone.
    pub fn private_template(&self, with_crt: bool) -> Vec<Attribute> {
        let mut t = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(hex(self.n)),
            Attribute::PublicExponent(hex(self.e)),
            Attribute::PrivateExponent(hex(self.d)),
            Attribute::Sign(true),
            Attribute::Decrypt(true),
        ];
        if with_crt {
            t.extend([
                Attribute::Prime1(hex(self.p)),
                Attribute::Prime2(hex(self.q)),
                Attribute::Exponent1(hex(self.dp)),
                Attribute::Exponent2(hex(self.dq)),
                Attribute::Coefficient(hex(self.qinv)),
            ]);
        }
        t
    }
}
