//! Object management and the attribute rules, through the `cryptoki` client.
//!
//! Covers every object class the module stores (data, AES and generic secret keys, RSA and EC
//! public and private keys, X.509 certificates), the defaults and module-managed attributes,
//! template errors, the access rules of sessions and logins, reading and changing attributes,
//! copying, destroying and searching. After each refusal the tests check that nothing changed:
//! no object appeared or vanished, and attribute values are as before.
//!
//! Not expressible through `cryptoki` 0.12 and therefore not tested here: `C_GetObjectSize`
//! (the crate has no call for it). `C_FindObjects` without `C_FindObjectsInit` cannot be
//! called directly either; it is reached through a search that a logout ended.
mod common;
use common::objects::{bytes, flag, read};
use common::*;

use std::num::NonZeroUsize;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

/// Every object this session can see.
fn all(s: &Session) -> Vec<ObjectHandle> {
    s.find_objects(&[]).unwrap()
}

fn label(s: &Session, h: ObjectHandle) -> Vec<u8> {
    bytes(s, h, AttributeType::Label)
}

/// What `C_GetAttributeValue` says about one attribute asked for alone (cryptoki's
/// `AttributeInfo`, comparable).
#[derive(Debug, PartialEq, Eq)]
enum Info {
    TypeInvalid,
    Sensitive,
    Available(usize),
    Unavailable,
}

#[track_caller]
fn info(s: &Session, h: ObjectHandle, t: AttributeType) -> Info {
    match s.get_attribute_info(h, &[t]).unwrap().remove(0) {
        AttributeInfo::TypeInvalid => Info::TypeInvalid,
        AttributeInfo::Sensitive => Info::Sensitive,
        AttributeInfo::Available(n) => Info::Available(n),
        AttributeInfo::Unavailable => Info::Unavailable,
    }
}

/// An AES key template with the given value (a session object unless the caller adds more).
fn aes(value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
        Attribute::Label(b"aes".to_vec()),
    ]
}

fn with(mut template: Vec<Attribute>, extra: &[Attribute]) -> Vec<Attribute> {
    template.extend_from_slice(extra);
    template
}

/// A public data object template.
fn data(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(b"data value".to_vec()),
    ]
}

/// An attribute of a known type with raw bytes of the caller's choosing.
fn raw(t: AttributeType, value: &[u8]) -> Attribute {
    Attribute::VendorDefined((t, value.to_vec()))
}

const KEY: [u8; 32] = [0x42; 32];

/// AES-GCM encryption of a fixed message, to compare two keys without reading them.
fn seal_with(s: &Session, key: ObjectHandle) -> Vec<u8> {
    let mut iv = [9u8; 12];
    let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
    s.encrypt(&Mechanism::AesGcm(params), key, b"compare these keys").unwrap()
}

// A toy RSA key (p = 61, q = 53): consistent numbers, small enough to read.
const RSA_N: [u8; 2] = [0x0c, 0xa1]; // 3233, 12 bits
const RSA_E: [u8; 1] = [17];
const RSA_D: [u8; 2] = [0x0a, 0xc1]; // 2753
const RSA_P: [u8; 1] = [61];
const RSA_Q: [u8; 1] = [53];
const RSA_DP: [u8; 1] = [53];
const RSA_DQ: [u8; 1] = [49];
const RSA_QINV: [u8; 1] = [38];

fn rsa_public() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(RSA_N.to_vec()),
        Attribute::PublicExponent(RSA_E.to_vec()),
    ]
}

fn rsa_private() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(RSA_N.to_vec()),
        Attribute::PublicExponent(RSA_E.to_vec()),
        Attribute::PrivateExponent(RSA_D.to_vec()),
    ]
}

/// DER OID of NIST P-256.
const P256: &str = "06082a8648ce3d030107";
/// The P-256 base point as a DER OCTET STRING (the public key of private value 1).
const P256_G: &str = "044104\
    6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
    4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

fn ec_public() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(hex(P256)),
        Attribute::EcPoint(hex(P256_G)),
    ]
}

fn ec_private() -> Vec<Attribute> {
    let mut one = vec![0u8; 32];
    one[31] = 1;
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(hex(P256)),
        Attribute::Value(one),
    ]
}

fn certificate() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Subject(b"0\x0f1\r0\x0b\x06\x03U\x04\x03\x0c\x04test".to_vec()),
        Attribute::Value(b"0\x82\x01\x00 not really DER".to_vec()),
        Attribute::Label(b"cert".to_vec()),
    ]
}

/// `template` without its attribute of type `t`.
fn without(template: Vec<Attribute>, t: AttributeType) -> Vec<Attribute> {
    template.into_iter().filter(|a| a.attribute_type() != t).collect()
}

/// Asserts that creating `template` fails with `expected` and creates nothing.
#[track_caller]
fn refused_create(s: &Session, template: &[Attribute], expected: RvError) {
    let before = all(s);
    expect_rv(s.create_object(template), expected);
    assert_eq!(all(s), before, "a refused C_CreateObject must not create an object");
}

/// Asserts, case by case, that creating each named template fails with `expected` and creates
/// nothing; a failure names its case.
#[track_caller]
fn refused_creates<N: std::fmt::Display>(s: &Session, expected: RvError, cases: &[(N, Vec<Attribute>)]) {
    for (case, template) in cases {
        let before = all(s);
        match s.create_object(template) {
            Ok(h) => panic!("{case}: expected {expected:?}, created {h:?}"),
            Err(e) => assert_eq!(rv(e), expected, "{case}"),
        }
        assert_eq!(all(s), before, "{case}: a refused C_CreateObject must not create an object");
    }
}

/// Asserts that `template` lacking any one of `required` is CKR_TEMPLATE_INCOMPLETE and
/// creates nothing; a failure names the attribute left out.
#[track_caller]
fn refused_without(s: &Session, template: &[Attribute], required: &[AttributeType]) {
    let cases: Vec<_> =
        required.iter().map(|&t| (format!("without {t:?}"), without(template.to_vec(), t))).collect();
    refused_creates(s, RvError::TemplateIncomplete, &cases);
}

// ---------------------------------------------------------------------------------------------
// Classes and defaults
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn data_objects_are_created_and_read_back() {
        let (p, slot) = load_with_token();
        // No login: public data objects need none.
        let s = p.open_rw_session(slot).unwrap();
        let h = s
            .create_object(&with(
                data("my data"),
                &[
                    Attribute::Token(true),
                    Attribute::Application(b"the app".to_vec()),
                    Attribute::ObjectId(vec![0x06, 0x01, 0x2a]),
                ],
            ))
            .unwrap();
        assert_eq!(read(&s, h, AttributeType::Class), Attribute::Class(ObjectClass::DATA));
        assert_eq!(label(&s, h), b"my data");
        assert_eq!(bytes(&s, h, AttributeType::Value), b"data value");
        assert_eq!(bytes(&s, h, AttributeType::Application), b"the app");
        assert_eq!(bytes(&s, h, AttributeType::ObjectId), vec![0x06, 0x01, 0x2a]);
        assert!(flag(&s, h, AttributeType::Token));
        assert!(!flag(&s, h, AttributeType::Private), "data objects default to public");
        assert!(flag(&s, h, AttributeType::Modifiable));
        assert!(flag(&s, h, AttributeType::Copyable));
        assert!(flag(&s, h, AttributeType::Destroyable));
        // A data object has no key attributes.
        assert_eq!(info(&s, h, AttributeType::KeyType), Info::TypeInvalid);
        assert_eq!(info(&s, h, AttributeType::Sensitive), Info::TypeInvalid);
        assert_eq!(all(&s), vec![h]);
    }
);

isolated_test!(
    fn aes_keys_of_each_size_get_the_safe_defaults() {
        let (_p, _slot, s) = logged_in();
        for len in [16usize, 24, 32] {
            let h = s.create_object(&aes(&vec![7u8; len])).unwrap();
            assert_eq!(read(&s, h, AttributeType::Class), Attribute::Class(ObjectClass::SECRET_KEY));
            assert_eq!(read(&s, h, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
            assert_eq!(read(&s, h, AttributeType::ValueLen), Attribute::ValueLen((len as u64).into()));
            assert!(flag(&s, h, AttributeType::Private), "secret keys default to private");
            // PKCS #11 3.0, secret key attributes: "CK_TRUE if object is sensitive (default
            // CK_FALSE)". The value is still withheld: not extractable (the token's default).
            assert!(!flag(&s, h, AttributeType::Sensitive), "secret keys default to not sensitive");
            assert!(!flag(&s, h, AttributeType::Extractable), "secret keys default to unextractable");
            assert!(!flag(&s, h, AttributeType::Local), "a created key is not local");
            assert!(!flag(&s, h, AttributeType::AlwaysSensitive));
            assert!(!flag(&s, h, AttributeType::NeverExtractable));
            assert!(!flag(&s, h, AttributeType::Token));
            assert!(flag(&s, h, AttributeType::Encrypt));
            assert!(flag(&s, h, AttributeType::Decrypt));
            assert_eq!(info(&s, h, AttributeType::Value), Info::Sensitive);
        }
        assert_eq!(all(&s).len(), 3);
    }
);

isolated_test!(
    fn generic_secret_keys_are_created() {
        let (_p, _slot, s) = logged_in();
        let h = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(vec![3u8; 20]),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ])
            .unwrap();
        assert_eq!(read(&s, h, AttributeType::KeyType), Attribute::KeyType(KeyType::GENERIC_SECRET));
        assert_eq!(read(&s, h, AttributeType::ValueLen), Attribute::ValueLen(20.into()));
        assert_eq!(bytes(&s, h, AttributeType::Value), vec![3u8; 20]);
        // An empty generic secret is not a key.
        refused_create(
            &s,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(vec![]),
            ],
            RvError::AttributeValueInvalid,
        );
    }
);

isolated_test!(
    fn rsa_public_keys_are_created_with_modulus_bits() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let h = s.create_object(&rsa_public()).unwrap();
        assert_eq!(bytes(&s, h, AttributeType::Modulus), RSA_N);
        assert_eq!(bytes(&s, h, AttributeType::PublicExponent), RSA_E);
        assert_eq!(read(&s, h, AttributeType::ModulusBits), Attribute::ModulusBits(12.into()));
        assert!(!flag(&s, h, AttributeType::Private), "public keys default to public");
        assert!(!flag(&s, h, AttributeType::Local));
        assert!(flag(&s, h, AttributeType::Verify));
        assert_eq!(info(&s, h, AttributeType::Sensitive), Info::TypeInvalid);
        // Leading zero bytes do not count towards the modulus size.
        let padded = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(vec![0x00, 0x00, 0x80, 0x01]),
                Attribute::PublicExponent(RSA_E.to_vec()),
            ])
            .unwrap();
        assert_eq!(read(&s, padded, AttributeType::ModulusBits), Attribute::ModulusBits(16.into()));
        // A modulus or exponent is required.
        refused_without(&s, &rsa_public(), &[AttributeType::Modulus, AttributeType::PublicExponent]);
        assert_eq!(all(&s), vec![h, padded]);
    }
);

isolated_test!(
    fn rsa_private_keys_are_created_with_and_without_crt_values() {
        let (_p, _slot, s) = logged_in();
        let plain = s.create_object(&rsa_private()).unwrap();
        let crt = s
            .create_object(&with(
                rsa_private(),
                &[
                    Attribute::Prime1(RSA_P.to_vec()),
                    Attribute::Prime2(RSA_Q.to_vec()),
                    Attribute::Exponent1(RSA_DP.to_vec()),
                    Attribute::Exponent2(RSA_DQ.to_vec()),
                    Attribute::Coefficient(RSA_QINV.to_vec()),
                ],
            ))
            .unwrap();
        for h in [plain, crt] {
            assert_eq!(read(&s, h, AttributeType::Class), Attribute::Class(ObjectClass::PRIVATE_KEY));
            assert_eq!(bytes(&s, h, AttributeType::Modulus), RSA_N);
            assert_eq!(bytes(&s, h, AttributeType::PublicExponent), RSA_E);
            assert!(flag(&s, h, AttributeType::Private), "private keys default to private");
            assert!(flag(&s, h, AttributeType::Sensitive));
            assert!(!flag(&s, h, AttributeType::Extractable));
            assert!(!flag(&s, h, AttributeType::Local));
            assert!(!flag(&s, h, AttributeType::AlwaysSensitive));
            assert!(!flag(&s, h, AttributeType::NeverExtractable));
            assert_eq!(info(&s, h, AttributeType::PrivateExponent), Info::Sensitive);
        }
        for t in [
            AttributeType::Prime1,
            AttributeType::Prime2,
            AttributeType::Exponent1,
            AttributeType::Exponent2,
            AttributeType::Coefficient,
        ] {
            assert_eq!(info(&s, crt, t), Info::Sensitive, "{t:?}");
        }
        // The private exponent is required.
        refused_without(&s, &rsa_private(), &[AttributeType::PrivateExponent]);
        // CKA_MODULUS_BITS belongs to public keys only.
        refused_create(
            &s,
            &with(rsa_private(), &[Attribute::ModulusBits(12.into())]),
            RvError::AttributeTypeInvalid,
        );
    }
);

isolated_test!(
    fn ec_public_and_private_keys_are_created() {
        let (_p, _slot, s) = logged_in();
        let public = s.create_object(&ec_public()).unwrap();
        assert_eq!(bytes(&s, public, AttributeType::EcParams), hex(P256));
        assert_eq!(bytes(&s, public, AttributeType::EcPoint), hex(P256_G));
        assert!(!flag(&s, public, AttributeType::Private));
        assert_eq!(read(&s, public, AttributeType::KeyType), Attribute::KeyType(KeyType::EC));

        let private = s.create_object(&ec_private()).unwrap();
        assert_eq!(bytes(&s, private, AttributeType::EcParams), hex(P256));
        assert!(flag(&s, private, AttributeType::Private));
        assert!(flag(&s, private, AttributeType::Sensitive));
        assert_eq!(info(&s, private, AttributeType::Value), Info::Sensitive);
        // EC private keys have no point, public keys no private value.
        assert_eq!(info(&s, private, AttributeType::EcPoint), Info::TypeInvalid);
        assert_eq!(info(&s, public, AttributeType::Value), Info::TypeInvalid);

        refused_without(&s, &ec_public(), &[AttributeType::EcPoint]);
        refused_without(&s, &ec_private(), &[AttributeType::Value]);
        assert_eq!(all(&s), vec![public, private]);
    }
);

isolated_test!(
    fn x509_certificates_need_subject_and_value() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let h = s
            .create_object(&with(
                certificate(),
                &[Attribute::Issuer(b"issuer".to_vec()), Attribute::SerialNumber(vec![2, 1, 7])],
            ))
            .unwrap();
        assert_eq!(
            read(&s, h, AttributeType::CertificateType),
            Attribute::CertificateType(CertificateType::X_509)
        );
        assert_eq!(bytes(&s, h, AttributeType::Value), b"0\x82\x01\x00 not really DER");
        assert_eq!(bytes(&s, h, AttributeType::Subject), b"0\x0f1\r0\x0b\x06\x03U\x04\x03\x0c\x04test");
        assert_eq!(bytes(&s, h, AttributeType::Issuer), b"issuer");
        assert_eq!(bytes(&s, h, AttributeType::SerialNumber), vec![2, 1, 7]);
        assert!(!flag(&s, h, AttributeType::Private), "certificates default to public");
        assert!(!flag(&s, h, AttributeType::Trusted));
        refused_without(
            &s,
            &certificate(),
            &[AttributeType::Subject, AttributeType::Value, AttributeType::CertificateType],
        );
        assert_eq!(all(&s), vec![h]);
    }
);

isolated_test!(
    fn unique_ids_are_present_distinct_and_module_managed() {
        let (_p, _slot, s) = logged_in();
        let handles = [
            s.create_object(&data("a")).unwrap(),
            s.create_object(&data("a")).unwrap(),
            s.create_object(&aes(&KEY)).unwrap(),
            s.create_object(&rsa_public()).unwrap(),
            s.create_object(&certificate()).unwrap(),
        ];
        let ids: Vec<Vec<u8>> = handles.iter().map(|h| bytes(&s, *h, AttributeType::UniqueId)).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!id.is_empty());
            assert_eq!(ids.iter().filter(|other| *other == id).count(), 1, "object {i} shares its unique id");
        }
        // Callers cannot choose one.
        refused_create(
            &s,
            &with(data("b"), &[Attribute::UniqueId(b"mine".to_vec())]),
            RvError::AttributeReadOnly,
        );
        expect_rv(
            s.update_attributes(handles[0], &[Attribute::UniqueId(b"mine".to_vec())]),
            RvError::AttributeReadOnly,
        );
        assert_eq!(bytes(&s, handles[0], AttributeType::UniqueId), ids[0]);
    }
);

// ---------------------------------------------------------------------------------------------
// Template errors
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn incomplete_templates_are_refused() {
        let (_p, _slot, s) = logged_in();
        s.create_object(&data("existing")).unwrap();
        let secret = Attribute::Class(ObjectClass::SECRET_KEY);
        refused_creates(
            &s,
            RvError::TemplateIncomplete,
            &[
                ("no class", vec![Attribute::Label(b"x".to_vec()), Attribute::Value(vec![1])]),
                ("empty template", vec![]),
                ("secret key without key type", vec![secret.clone(), Attribute::Value(KEY.to_vec())]),
                ("AES key without value", vec![secret, Attribute::KeyType(KeyType::AES)]),
            ],
        );
        assert_eq!(all(&s).len(), 1);
    }
);

isolated_test!(
    fn attributes_foreign_to_the_class_are_type_invalid() {
        let (_p, _slot, s) = logged_in();
        let unknown = AttributeType::VendorDefined(cryptoki_sys::CKA_VENDOR_DEFINED | 0x1234);
        refused_creates(
            &s,
            RvError::AttributeTypeInvalid,
            &[
                ("modulus on an AES key", with(aes(&KEY), &[Attribute::Modulus(vec![1, 2])])),
                ("EC params on an AES key", with(aes(&KEY), &[Attribute::EcParams(hex(P256))])),
                ("EC point on an RSA public key", with(rsa_public(), &[Attribute::EcPoint(vec![4])])),
                ("sensitive on a data object", with(data("d"), &[Attribute::Sensitive(true)])),
                ("key type on a data object", with(data("d"), &[Attribute::KeyType(KeyType::AES)])),
                ("unknown vendor attribute", with(data("d"), &[raw(unknown, b"?")])),
            ],
        );
        assert!(all(&s).is_empty());
    }
);

isolated_test!(
    fn malformed_values_are_value_invalid() {
        let (_p, _slot, s) = logged_in();
        let des3 = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::DES3),
            Attribute::Value(vec![1u8; 24]),
        ];
        refused_creates(
            &s,
            RvError::AttributeValueInvalid,
            &[
                ("two-byte CK_BBOOL", with(aes(&KEY), &[raw(AttributeType::Sensitive, &[1, 1])])),
                ("empty CK_BBOOL", with(data("d"), &[raw(AttributeType::Token, &[])])),
                // A CK_ULONG has the platform's width.
                (
                    "four-byte CK_ULONG",
                    vec![raw(AttributeType::Class, &[0u8; 4]), Attribute::Label(b"x".to_vec())],
                ),
                ("key type the module does not know", des3.to_vec()),
                ("CK_DATE not eight digits", with(aes(&KEY), &[raw(AttributeType::StartDate, b"2026-1-1")])),
            ],
        );
        // AES keys are 16, 24 or 32 bytes.
        for len in [0usize, 1, 15, 17, 31, 33, 64] {
            refused_create(&s, &aes(&vec![1u8; len]), RvError::AttributeValueInvalid);
        }
        assert!(all(&s).is_empty());
        // The same templates with well-formed values are accepted.
        s.create_object(&with(aes(&KEY), &[Attribute::Sensitive(true)])).unwrap();
        s.create_object(&with(aes(&KEY), &[raw(AttributeType::StartDate, b"20260101")])).unwrap();
        assert_eq!(all(&s).len(), 2);
    }
);

isolated_test!(
    fn module_managed_attributes_are_read_only_on_create() {
        let (_p, _slot, s) = logged_in();
        for extra in [
            Attribute::Local(false),
            Attribute::Local(true),
            Attribute::AlwaysSensitive(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::KeyGenMechanism(cryptoki::mechanism::MechanismType::AES_KEY_GEN),
        ] {
            refused_create(&s, &with(aes(&KEY), std::slice::from_ref(&extra)), RvError::AttributeReadOnly);
        }
        assert!(all(&s).is_empty());
    }
);

isolated_test!(
    fn attributes_forbidden_on_create_are_inconsistent() {
        let (_p, _slot, s) = logged_in();
        // The module derives CKA_VALUE_LEN and CKA_MODULUS_BITS itself.
        refused_creates(
            &s,
            RvError::TemplateInconsistent,
            &[
                ("value length given", with(aes(&KEY), &[Attribute::ValueLen(32.into())])),
                ("modulus bits given", with(rsa_public(), &[Attribute::ModulusBits(12.into())])),
            ],
        );
        assert!(all(&s).is_empty());
    }
);

isolated_test!(
    fn repeated_attributes_must_agree() {
        let (_p, _slot, s) = logged_in();
        refused_creates(
            &s,
            RvError::TemplateInconsistent,
            &[
                ("two labels", with(aes(&KEY), &[Attribute::Label(b"another label".to_vec())])),
                (
                    "sensitive and not",
                    with(aes(&KEY), &[Attribute::Sensitive(true), Attribute::Sensitive(false)]),
                ),
            ],
        );
        assert!(all(&s).is_empty());
        // Repeating an attribute with the same value is harmless.
        let h = s.create_object(&with(aes(&KEY), &[Attribute::Label(b"aes".to_vec())])).unwrap();
        assert_eq!(label(&s, h), b"aes");
    }
);

isolated_test!(
    fn only_the_so_may_set_trusted() {
        let (p, slot) = load_with_token();
        {
            let s = user_session(&p, slot);
            let trusted = [Attribute::Trusted(true)];
            refused_creates(
                &s,
                RvError::AttributeReadOnly,
                &[
                    ("trusted AES key", with(aes(&KEY), &trusted)),
                    ("trusted certificate", with(certificate(), &trusted)),
                    ("trusted RSA public key", with(rsa_public(), &trusted)),
                ],
            );
            assert!(all(&s).is_empty());
            // False is fine, and the user cannot raise it later.
            let cert = s
                .create_object(&with(certificate(), &[Attribute::Token(true), Attribute::Trusted(false)]))
                .unwrap();
            expect_rv(s.update_attributes(cert, &[Attribute::Trusted(true)]), RvError::AttributeReadOnly);
            assert!(!flag(&s, cert, AttributeType::Trusted));
        }
        let s = so_session(&p, slot);
        // The SO may create a trusted public object, and mark an existing one trusted.
        let key = s
            .create_object(&with(rsa_public(), &[Attribute::Token(true), Attribute::Trusted(true)]))
            .unwrap();
        assert!(flag(&s, key, AttributeType::Trusted));
        let cert = s.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)]).unwrap();
        assert_eq!(cert.len(), 1);
        s.update_attributes(cert[0], &[Attribute::Trusted(true)]).unwrap();
        assert!(flag(&s, cert[0], AttributeType::Trusted));
        s.logout().unwrap();
        // The user sees the SO's work.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert!(flag(&s, key, AttributeType::Trusted));
        assert!(flag(&s, cert[0], AttributeType::Trusted));
    }
);

// ---------------------------------------------------------------------------------------------
// Access rules
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn private_objects_are_invisible_without_the_user() {
        let (p, slot) = load_with_token();
        let (public, private, key) = {
            let s = user_session(&p, slot);
            let public = s.create_object(&with(data("public"), &[Attribute::Token(true)])).unwrap();
            let private = s
                .create_object(&with(data("private"), &[Attribute::Token(true), Attribute::Private(true)]))
                .unwrap();
            let key = s.create_object(&with(aes(&KEY), &[Attribute::Token(true)])).unwrap();
            (public, private, key)
        };
        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(all(&s), vec![public]);
        assert!(s.find_objects(&[Attribute::Label(b"private".to_vec())]).unwrap().is_empty());
        assert!(s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap().is_empty());
        for h in [private, key] {
            expect_rv(s.get_attributes(h, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
            expect_rv(s.get_attribute_info(h, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
            expect_rv(
                s.update_attributes(h, &[Attribute::Label(b"x".to_vec())]),
                RvError::ObjectHandleInvalid,
            );
            expect_rv(s.copy_object(h, &[]), RvError::ObjectHandleInvalid);
            expect_rv(s.destroy_object(h), RvError::ObjectHandleInvalid);
        }
        // The SO does not see them either.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(all(&s), vec![public]);
        expect_rv(s.get_attributes(private, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        s.logout().unwrap();
        // Nothing was changed or destroyed by the refusals: the user sees all three as before
        // (the private ones under new handles, since handles to private objects die with the
        // login).
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(all(&s).len(), 3);
        let private = s.find_objects(&[Attribute::Label(b"private".to_vec())]).unwrap();
        assert_eq!(private.len(), 1);
        assert_eq!(bytes(&s, private[0], AttributeType::Value), b"data value");
        let key = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!(key.len(), 1);
        assert_eq!(label(&s, key[0]), b"aes");
        assert_eq!(label(&s, public), b"public");
    }
);

isolated_test!(
    fn creating_private_objects_needs_the_user() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        refused_create(&s, &with(data("p"), &[Attribute::Private(true)]), RvError::UserNotLoggedIn);
        // Secret and private keys are private by default.
        refused_create(&s, &aes(&KEY), RvError::UserNotLoggedIn);
        refused_create(&s, &rsa_private(), RvError::UserNotLoggedIn);
        // The SO may not create private objects either.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        refused_create(&s, &with(aes(&KEY), &[Attribute::Token(true)]), RvError::UserNotLoggedIn);
        s.logout().unwrap();
        // A public secret key needs no login.
        let public_key = s.create_object(&with(aes(&KEY), &[Attribute::Private(false)])).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(all(&s), vec![public_key]);
    }
);

isolated_test!(
    fn read_only_sessions_cannot_change_token_objects() {
        let (p, slot) = load_with_token();
        let token_object = {
            let rw = user_session(&p, slot);
            rw.create_object(&with(data("token object"), &[Attribute::Token(true)])).unwrap()
        };
        let ro = p.open_ro_session(slot).unwrap();
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        refused_create(&ro, &with(data("t"), &[Attribute::Token(true)]), RvError::SessionReadOnly);
        refused_create(&ro, &with(aes(&KEY), &[Attribute::Token(true)]), RvError::SessionReadOnly);
        expect_rv(ro.destroy_object(token_object), RvError::SessionReadOnly);
        expect_rv(
            ro.update_attributes(token_object, &[Attribute::Label(b"renamed".to_vec())]),
            RvError::SessionReadOnly,
        );
        expect_rv(ro.copy_object(token_object, &[Attribute::Token(true)]), RvError::SessionReadOnly);
        assert_eq!(all(&ro), vec![token_object]);
        assert_eq!(label(&ro, token_object), b"token object");

        // Session objects are fine in a read-only session, and so is copying to one.
        let session_object = ro.create_object(&data("session object")).unwrap();
        ro.update_attributes(session_object, &[Attribute::Label(b"renamed".to_vec())]).unwrap();
        assert_eq!(label(&ro, session_object), b"renamed");
        let copy = ro.copy_object(token_object, &[Attribute::Token(false)]).unwrap();
        assert!(!flag(&ro, copy, AttributeType::Token));
        ro.destroy_object(session_object).unwrap();
        ro.destroy_object(copy).unwrap();
        assert_eq!(all(&ro), vec![token_object]);
    }
);

isolated_test!(
    fn session_objects_vanish_with_their_session() {
        let (p, slot) = load_with_token();
        let s1 = p.open_rw_session(slot).unwrap();
        let s2 = p.open_ro_session(slot).unwrap();
        let session_object = s1.create_object(&data("ephemeral")).unwrap();
        let token_object = s1.create_object(&with(data("lasting"), &[Attribute::Token(true)])).unwrap();
        // Other sessions of the application see session objects too.
        assert_eq!(
            s2.find_objects(&[Attribute::Label(b"ephemeral".to_vec())]).unwrap(),
            vec![session_object]
        );
        assert_eq!(label(&s2, session_object), b"ephemeral");
        drop(s1);
        expect_rv(s2.get_attributes(session_object, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        assert_eq!(all(&s2), vec![token_object]);
    }
);

isolated_test!(
    fn private_session_objects_are_destroyed_at_logout() {
        let (p, slot, s) = logged_in();
        let other = p.open_rw_session(slot).unwrap();
        let private = s.create_object(&aes(&KEY)).unwrap();
        let public = s.create_object(&data("public session object")).unwrap();
        s.logout().unwrap();
        assert_eq!(all(&other), vec![public]);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // Logging in again does not bring it back.
        expect_rv(s.get_attributes(private, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        assert_eq!(all(&s), vec![public]);
        assert_eq!(label(&other, public), b"public session object");
    }
);

// PKCS#11 3.0 base, C_Logout: "any of the application's handles to private objects become
// invalid (even if a user is later logged back into the token, those handles remain invalid)".
isolated_test!(
    fn handles_to_private_objects_die_with_the_login() {
        let (_p, _slot, s) = logged_in();
        let private = s
            .create_object(&with(data("private"), &[Attribute::Token(true), Attribute::Private(true)]))
            .unwrap();
        let key = s.create_object(&with(aes(&KEY), &[Attribute::Token(true)])).unwrap();
        let public = s.create_object(&with(data("public"), &[Attribute::Token(true)])).unwrap();
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // The objects are still there, under new handles.
        let found_private = s.find_objects(&[Attribute::Label(b"private".to_vec())]).unwrap();
        let found_key = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!((found_private.len(), found_key.len()), (1, 1));
        assert_eq!(label(&s, found_private[0]), b"private");
        // Public objects keep their handles.
        assert_eq!(s.find_objects(&[Attribute::Label(b"public".to_vec())]).unwrap(), vec![public]);
        // The old handles stay invalid after the new login.
        assert_ne!(found_private[0], private, "a private object kept its handle across a logout");
        assert_ne!(found_key[0], key, "a private key kept its handle across a logout");
        expect_rv(s.get_attributes(private, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        expect_rv(s.get_attributes(key, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
    }
);

// ---------------------------------------------------------------------------------------------
// C_GetAttributeValue
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn sensitive_values_are_withheld_while_other_attributes_are_read() {
        let (_p, _slot, s) = logged_in();
        let h = s.create_object(&with(aes(&KEY), &[Attribute::Sensitive(true)])).unwrap();
        assert_eq!(info(&s, h, AttributeType::Value), Info::Sensitive);
        assert_eq!(info(&s, h, AttributeType::Label), Info::Available(3));
        assert_eq!(info(&s, h, AttributeType::Modulus), Info::TypeInvalid);
        // One C_GetAttributeValue for all of them: CKR_ATTRIBUTE_SENSITIVE, but the other
        // attributes are filled in (cryptoki drops the withheld one from its answer).
        let got = s
            .get_attributes(
                h,
                &[AttributeType::Label, AttributeType::Value, AttributeType::Class, AttributeType::Sensitive],
            )
            .unwrap();
        assert_eq!(
            got,
            vec![
                Attribute::Label(b"aes".to_vec()),
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Sensitive(true),
            ]
        );
        // Not sensitive but not extractable is still withheld.
        let unextractable = s.create_object(&with(aes(&KEY), &[Attribute::Sensitive(false)])).unwrap();
        assert_eq!(info(&s, unextractable, AttributeType::Value), Info::Sensitive);
        // Sensitive but extractable is withheld too.
        let sensitive = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(true), Attribute::Extractable(true)]))
            .unwrap();
        assert_eq!(info(&s, sensitive, AttributeType::Value), Info::Sensitive);
        // Neither: readable.
        let open = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(false), Attribute::Extractable(true)]))
            .unwrap();
        assert_eq!(info(&s, open, AttributeType::Value), Info::Available(32));
        assert_eq!(bytes(&s, open, AttributeType::Value), KEY);
    }
);

isolated_test!(
    fn unknown_attributes_are_type_invalid() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let h = s.create_object(&data("d")).unwrap();
        let unknown = AttributeType::VendorDefined(cryptoki_sys::CKA_VENDOR_DEFINED | 0x77);
        assert_eq!(info(&s, h, unknown), Info::TypeInvalid);
        assert_eq!(info(&s, h, AttributeType::Modulus), Info::TypeInvalid);
        // The valid attributes of the same call are still returned.
        let got = s.get_attributes(h, &[AttributeType::Label, unknown, AttributeType::Value]).unwrap();
        assert_eq!(got, vec![Attribute::Label(b"d".to_vec()), Attribute::Value(b"data value".to_vec())]);
    }
);

// ---------------------------------------------------------------------------------------------
// C_SetAttributeValue
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn label_changes_persist_across_reinitialization() {
        let (p, slot) = load_with_token();
        let before = {
            let s = user_session(&p, slot);
            let public = s.create_object(&with(data("old public"), &[Attribute::Token(true)])).unwrap();
            let private = s.create_object(&with(aes(&KEY), &[Attribute::Token(true)])).unwrap();
            let session = s.create_object(&data("old session")).unwrap();
            s.update_attributes(public, &[Attribute::Label(b"new public".to_vec())]).unwrap();
            s.update_attributes(private, &[Attribute::Label(b"new private".to_vec())]).unwrap();
            s.update_attributes(session, &[Attribute::Label(b"new session".to_vec())]).unwrap();
            assert_eq!(label(&s, public), b"new public");
            assert_eq!(label(&s, private), b"new private");
            assert_eq!(label(&s, session), b"new session");
            seal_with(&s, private)
        };
        reinitialize(&p);
        let s = user_session(&p, slot);
        let found = s.find_objects(&[Attribute::Label(b"new public".to_vec())]).unwrap();
        assert_eq!(found.len(), 1);
        let key = s.find_objects(&[Attribute::Label(b"new private".to_vec())]).unwrap();
        assert_eq!(key.len(), 1);
        assert_eq!(all(&s).len(), 2);
        // The key material itself survived the relabelling.
        assert_eq!(seal_with(&s, key[0]), before);
    }
);

isolated_test!(
    fn searches_by_cka_id_find_token_objects_read_or_not_and_follow_changes() {
        let (p, slot) = load_with_token();
        let id = |n: u8| Attribute::Id(vec![0xc0, n]);
        let one = {
            let s = user_session(&p, slot);
            let one = s.create_object(&with(aes(&KEY), &[Attribute::Token(true), id(1)])).unwrap();
            s.create_object(&with(data("no id"), &[Attribute::Token(true)])).unwrap();
            for n in 10..40 {
                s.create_object(&with(aes(&KEY), &[Attribute::Token(true), id(n)])).unwrap();
            }
            seal_with(&s, one)
        };
        // A new module: the objects' rows are not read; a search by CKA_ID reads what it names.
        reinitialize(&p);
        let s = user_session(&p, slot);
        let found = s.find_objects(&[id(1)]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(seal_with(&s, found[0]), one, "the key behind it, secrets opened");
        assert_eq!(s.find_objects(&[id(2)]).unwrap().len(), 0);
        assert_eq!(s.find_objects(&[id(1), Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap().len(), 1);
        assert_eq!(s.find_objects(&[id(1), Attribute::Class(ObjectClass::DATA)]).unwrap().len(), 0);
        assert_eq!(s.find_objects(&[id(25)]).unwrap().len(), 1);
        // A changed CKA_ID is found by the new one only; session objects are found too.
        s.update_attributes(found[0], &[id(2)]).unwrap();
        assert_eq!(s.find_objects(&[id(1)]).unwrap().len(), 0);
        assert_eq!(s.find_objects(&[id(2)]).unwrap(), found);
        let session = s.create_object(&with(aes(&KEY), &[id(2)])).unwrap();
        assert_eq!(s.find_objects(&[id(2)]).unwrap(), vec![found[0], session]);
        // After a logout and login (objects forgotten and read again; the private session
        // object gone with the logout, the private token key under a new handle), and once
        // destroyed.
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let again = s.find_objects(&[id(2)]).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(seal_with(&s, again[0]), one);
        s.destroy_object(again[0]).unwrap();
        assert_eq!(s.find_objects(&[id(2)]).unwrap().len(), 0);
        assert_eq!(all(&s).len(), 1 + 30, "the rest are all there");
    }
);

isolated_test!(
    fn sensitive_and_extractable_change_one_way_only() {
        let (_p, _slot, s) = logged_in();
        let h = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(false), Attribute::Extractable(true)]))
            .unwrap();
        s.update_attributes(h, &[Attribute::Sensitive(true)]).unwrap();
        assert!(flag(&s, h, AttributeType::Sensitive));
        assert!(!flag(&s, h, AttributeType::AlwaysSensitive), "history is not rewritten");
        assert_eq!(info(&s, h, AttributeType::Value), Info::Sensitive);
        expect_rv(s.update_attributes(h, &[Attribute::Sensitive(false)]), RvError::AttributeReadOnly);
        assert!(flag(&s, h, AttributeType::Sensitive));
        assert_eq!(info(&s, h, AttributeType::Value), Info::Sensitive);

        s.update_attributes(h, &[Attribute::Extractable(false)]).unwrap();
        assert!(!flag(&s, h, AttributeType::Extractable));
        assert!(!flag(&s, h, AttributeType::NeverExtractable), "history is not rewritten");
        expect_rv(s.update_attributes(h, &[Attribute::Extractable(true)]), RvError::AttributeReadOnly);
        assert!(!flag(&s, h, AttributeType::Extractable));
        // Restating the current value is not a change.
        s.update_attributes(h, &[Attribute::Sensitive(true), Attribute::Extractable(false)]).unwrap();
    }
);

isolated_test!(
    fn read_only_attributes_cannot_be_set() {
        let (_p, _slot, s) = logged_in();
        let h = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(false), Attribute::Extractable(true)]))
            .unwrap();
        for change in [
            Attribute::Class(ObjectClass::DATA),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(vec![0u8; 32]),
            Attribute::Local(true),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::ValueLen(16.into()),
        ] {
            expect_rv(s.update_attributes(h, std::slice::from_ref(&change)), RvError::AttributeReadOnly);
        }
        // A refused template changes nothing, not even its acceptable entries.
        expect_rv(
            s.update_attributes(
                h,
                &[Attribute::Label(b"renamed".to_vec()), Attribute::Class(ObjectClass::DATA)],
            ),
            RvError::AttributeReadOnly,
        );
        assert_eq!(read(&s, h, AttributeType::Class), Attribute::Class(ObjectClass::SECRET_KEY));
        assert_eq!(read(&s, h, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
        assert_eq!(bytes(&s, h, AttributeType::Value), KEY);
        assert!(!flag(&s, h, AttributeType::Local));
        assert!(!flag(&s, h, AttributeType::Token));
        assert!(flag(&s, h, AttributeType::Private));
        assert_eq!(read(&s, h, AttributeType::ValueLen), Attribute::ValueLen(32.into()));
        assert_eq!(label(&s, h), b"aes");
        // Attributes the class does not have are type-invalid, not read-only.
        expect_rv(s.update_attributes(h, &[Attribute::Modulus(vec![1])]), RvError::AttributeTypeInvalid);
        // The same object accepts a change that is allowed.
        s.update_attributes(h, &[Attribute::Label(b"renamed".to_vec()), Attribute::Encrypt(false)]).unwrap();
        assert_eq!(label(&s, h), b"renamed");
        assert!(!flag(&s, h, AttributeType::Encrypt));
    }
);

isolated_test!(
    fn unmodifiable_objects_refuse_changes() {
        let (_p, _slot, s) = logged_in();
        let h = s.create_object(&with(data("frozen"), &[Attribute::Modifiable(false)])).unwrap();
        assert!(!flag(&s, h, AttributeType::Modifiable));
        expect_rv(s.update_attributes(h, &[Attribute::Label(b"thawed".to_vec())]), RvError::ActionProhibited);
        expect_rv(s.update_attributes(h, &[Attribute::Value(b"new".to_vec())]), RvError::ActionProhibited);
        assert_eq!(label(&s, h), b"frozen");
        assert_eq!(bytes(&s, h, AttributeType::Value), b"data value");
        // CKA_MODIFIABLE does not protect against destruction.
        s.destroy_object(h).unwrap();
        assert!(all(&s).is_empty());
    }
);

// ---------------------------------------------------------------------------------------------
// C_CopyObject
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn copies_take_a_new_label_and_may_become_token_objects() {
        let (p, slot, s) = logged_in();
        let original = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(false), Attribute::Extractable(true)]))
            .unwrap();
        let copy = s
            .copy_object(original, &[Attribute::Label(b"the copy".to_vec()), Attribute::Token(true)])
            .unwrap();
        assert_ne!(copy, original);
        assert_eq!(label(&s, copy), b"the copy");
        assert!(flag(&s, copy, AttributeType::Token));
        assert_eq!(bytes(&s, copy, AttributeType::Value), KEY);
        assert_ne!(bytes(&s, copy, AttributeType::UniqueId), bytes(&s, original, AttributeType::UniqueId));
        // The original is unchanged.
        assert_eq!(label(&s, original), b"aes");
        assert!(!flag(&s, original, AttributeType::Token));
        assert_eq!(all(&s), vec![copy, original], "token objects are listed before session objects");
        // The copy is a token object: it outlives the session (found anew, since closing the
        // last session logged the user out).
        drop(s);
        let s = user_session(&p, slot);
        let found = all(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(label(&s, found[0]), b"the copy");
        assert_eq!(bytes(&s, found[0], AttributeType::Value), KEY);
    }
);

isolated_test!(
    fn copies_of_sensitive_keys_keep_the_key() {
        let (_p, _slot, s) = logged_in();
        let original = s.create_object(&with(aes(&KEY), &[Attribute::Sensitive(true)])).unwrap();
        let copy = s.copy_object(original, &[]).unwrap();
        assert_eq!(seal_with(&s, copy), seal_with(&s, original));
        assert!(flag(&s, copy, AttributeType::Sensitive));
        assert_eq!(info(&s, copy, AttributeType::Value), Info::Sensitive);
        // A copy may be made unextractable but not less sensitive.
        expect_rv(s.copy_object(original, &[Attribute::Sensitive(false)]), RvError::AttributeReadOnly);
        assert_eq!(all(&s).len(), 2);
    }
);

isolated_test!(
    fn uncopyable_objects_refuse_copies() {
        let (_p, _slot, s) = logged_in();
        let h = s.create_object(&with(aes(&KEY), &[Attribute::Copyable(false)])).unwrap();
        expect_rv(s.copy_object(h, &[]), RvError::ActionProhibited);
        expect_rv(s.copy_object(h, &[Attribute::Token(true)]), RvError::ActionProhibited);
        // CKA_COPYABLE cannot go back to true.
        expect_rv(s.update_attributes(h, &[Attribute::Copyable(true)]), RvError::AttributeReadOnly);
        assert!(!flag(&s, h, AttributeType::Copyable));
        assert_eq!(all(&s), vec![h]);
    }
);

isolated_test!(
    fn copies_cannot_change_read_only_attributes() {
        let (_p, _slot, s) = logged_in();
        let h = s.create_object(&aes(&KEY)).unwrap();
        for change in [
            Attribute::Class(ObjectClass::DATA),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(vec![0u8; 32]),
            Attribute::Local(true),
        ] {
            expect_rv(s.copy_object(h, std::slice::from_ref(&change)), RvError::AttributeReadOnly);
        }
        expect_rv(s.copy_object(h, &[Attribute::Modulus(vec![1])]), RvError::AttributeTypeInvalid);
        assert_eq!(all(&s), vec![h]);
    }
);

// ---------------------------------------------------------------------------------------------
// C_DestroyObject
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn destroyed_objects_are_gone() {
        let (p, slot, s) = logged_in();
        let keep = s.create_object(&with(data("keep"), &[Attribute::Token(true)])).unwrap();
        for template in [with(data("token"), &[Attribute::Token(true)]), data("session")] {
            let h = s.create_object(&template).unwrap();
            s.destroy_object(h).unwrap();
            expect_rv(s.get_attributes(h, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
            expect_rv(s.destroy_object(h), RvError::ObjectHandleInvalid);
            assert_eq!(all(&s), vec![keep]);
        }
        // Destroyed token objects stay destroyed.
        drop(s);
        reinitialize(&p);
        let s = user_session(&p, slot);
        assert_eq!(s.find_objects(&[]).unwrap().len(), 1);
    }
);

isolated_test!(
    fn undestroyable_objects_stay() {
        let (_p, _slot, s) = logged_in();
        let h = s.create_object(&with(data("permanent"), &[Attribute::Destroyable(false)])).unwrap();
        expect_rv(s.destroy_object(h), RvError::ActionProhibited);
        assert_eq!(all(&s), vec![h]);
        assert_eq!(label(&s, h), b"permanent");
        expect_rv(s.update_attributes(h, &[Attribute::Destroyable(true)]), RvError::AttributeReadOnly);
        assert!(!flag(&s, h, AttributeType::Destroyable));
    }
);

// ---------------------------------------------------------------------------------------------
// C_FindObjects*
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn find_objects_matches_templates() {
        let (_p, _slot, s) = logged_in();
        let d1 = s.create_object(&with(data("shared"), &[Attribute::Token(true)])).unwrap();
        let d2 = s.create_object(&data("other")).unwrap();
        let k = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(KEY.to_vec()),
                Attribute::Label(b"shared".to_vec()),
            ])
            .unwrap();
        let mut everything = all(&s);
        everything.sort_by_key(ObjectHandle::handle);
        let mut expected = vec![d1, d2, k];
        expected.sort_by_key(ObjectHandle::handle);
        assert_eq!(everything, expected);

        let mut shared = s.find_objects(&[Attribute::Label(b"shared".to_vec())]).unwrap();
        shared.sort_by_key(ObjectHandle::handle);
        let mut expected = vec![d1, k];
        expected.sort_by_key(ObjectHandle::handle);
        assert_eq!(shared, expected);
        assert_eq!(
            s.find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Label(b"shared".to_vec())])
                .unwrap(),
            vec![d1]
        );
        assert_eq!(s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap(), vec![k]);
        assert_eq!(s.find_objects(&[Attribute::Token(true)]).unwrap(), vec![d1]);
        assert!(s.find_objects(&[Attribute::Label(b"nobody".to_vec())]).unwrap().is_empty());
        // An attribute the objects do not have matches nothing.
        assert!(s.find_objects(&[Attribute::Modulus(vec![1])]).unwrap().is_empty());
    }
);

isolated_test!(
    fn find_objects_hands_out_every_handle_once_in_pages() {
        let (_p, _slot, s) = logged_in();
        for i in 0..7 {
            s.create_object(&with(data(&format!("object {i}")), &[Attribute::Token(i % 2 == 0)])).unwrap();
        }
        let everything = all(&s);
        assert_eq!(everything.len(), 7);
        for page in [1usize, 2, 3, 7, 100] {
            let paged: Vec<ObjectHandle> = s
                .iter_objects_with_cache_size(&[], NonZeroUsize::new(page).unwrap())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(paged, everything, "page size {page}");
        }
    }
);

isolated_test!(
    fn a_second_find_init_is_refused_while_a_search_is_active() {
        let (_p, _slot, s) = logged_in();
        let a = s.create_object(&data("a")).unwrap();
        let b = s.create_object(&data("b")).unwrap();
        let mut search = s.iter_objects_with_cache_size(&[], NonZeroUsize::new(1).unwrap()).unwrap();
        assert_eq!(search.next().unwrap().unwrap(), a);
        expect_rv(s.find_objects(&[]), RvError::OperationActive);
        // The first search is undisturbed.
        assert_eq!(search.next().unwrap().unwrap(), b);
        assert!(search.next().is_none());
        drop(search);
        assert_eq!(all(&s), vec![a, b]);
    }
);

isolated_test!(
    fn find_objects_without_an_active_search_is_refused() {
        let (_p, _slot, s) = logged_in();
        s.create_object(&data("a")).unwrap();
        let mut search = s.iter_objects_with_cache_size(&[], NonZeroUsize::new(1).unwrap()).unwrap();
        // Logging out ends the operations begun under the login, the search included, so the
        // iterator's next C_FindObjects has no search to continue.
        s.logout().unwrap();
        match search.next() {
            Some(Err(e)) => assert_eq!(rv(e), RvError::OperationNotInitialized),
            other => panic!("expected CKR_OPERATION_NOT_INITIALIZED, got {other:?}"),
        }
        drop(search);
        // A new search can start.
        assert_eq!(all(&s).len(), 1);
    }
);

isolated_test!(
    fn searches_never_match_protected_values() {
        let (_p, _slot, s) = logged_in();
        let sensitive = s.create_object(&aes(&KEY)).unwrap();
        assert!(s.find_objects(&[Attribute::Value(KEY.to_vec())]).unwrap().is_empty());
        assert!(
            s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Value(KEY.to_vec())])
                .unwrap()
                .is_empty()
        );
        // The same value on a readable key does match: the refusal is about sensitivity.
        let open = s
            .create_object(&with(aes(&KEY), &[Attribute::Sensitive(false), Attribute::Extractable(true)]))
            .unwrap();
        assert_eq!(s.find_objects(&[Attribute::Value(KEY.to_vec())]).unwrap(), vec![open]);
        let mut everything = all(&s);
        everything.sort_by_key(ObjectHandle::handle);
        assert_eq!(everything, vec![sensitive, open]);
    }
);

isolated_test!(
    fn one_object_has_one_handle() {
        let (p, slot) = load_with_token();
        let s1 = user_session(&p, slot);
        let s2 = p.open_ro_session(slot).unwrap();
        let token = s1.create_object(&with(data("t"), &[Attribute::Token(true)])).unwrap();
        let session = s1.create_object(&data("s")).unwrap();
        for _ in 0..2 {
            assert_eq!(s1.find_objects(&[Attribute::Label(b"t".to_vec())]).unwrap(), vec![token]);
            assert_eq!(s2.find_objects(&[Attribute::Label(b"t".to_vec())]).unwrap(), vec![token]);
            assert_eq!(s2.find_objects(&[Attribute::Label(b"s".to_vec())]).unwrap(), vec![session]);
        }
        // Logging out and in again (which reloads the token's objects) keeps the handles.
        s1.logout().unwrap();
        assert_eq!(s2.find_objects(&[Attribute::Label(b"t".to_vec())]).unwrap(), vec![token]);
        s1.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(s2.find_objects(&[Attribute::Label(b"t".to_vec())]).unwrap(), vec![token]);
        assert_eq!(label(&s1, token), b"t");
    }
);

// A handle of an object on one token means nothing in a session of another token.
isolated_test!(
    fn handles_do_not_cross_tokens() {
        let (p, slot0) = load_with_token();
        let slot1 = Slot::try_from(1u64).unwrap();
        p.init_token(slot1, &pin(SO_PIN), "second").unwrap();
        let s0 = p.open_rw_session(slot0).unwrap();
        let s1 = p.open_rw_session(slot1).unwrap();
        let h = s0.create_object(&with(data("on token 0"), &[Attribute::Token(true)])).unwrap();
        expect_rv(s1.get_attributes(h, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        expect_rv(s1.destroy_object(h), RvError::ObjectHandleInvalid);
        assert!(all(&s1).is_empty());
        assert_eq!(all(&s0), vec![h]);
    }
);

// ---------------------------------------------------------------------------------------------
// Public secret keys (CKA_PRIVATE = false)
//
// The specification gives public sessions read/write access to public token objects
// (PKCS#11 3.0 base, table 5). ecm-hsm keeps that for everything but the key value itself:
// key values are sealed under the token key even on public keys, so that nothing secret is
// readable from the token file without a PIN (README, "Security model"). A public key is
// visible, readable (but for its value) and changeable without a login; making one, reading
// its value, copying it, or using it needs someone logged in.
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn public_token_secret_keys_need_a_login_to_be_created() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let template = with(aes(&KEY), &[Attribute::Token(true), Attribute::Private(false)]);
        expect_rv(s.create_object(&template), RvError::UserNotLoggedIn);
        assert!(all(&s).is_empty(), "nothing was created");
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let h = s.create_object(&template).unwrap();
        assert!(!flag(&s, h, AttributeType::Private));
        s.logout().unwrap();
        assert_eq!(all(&s), vec![h], "the public key stays visible without a login");
    }
);

/// Public token keys made by the user: one sensitive, one readable. Returns their handles and
/// the reference ciphertext of `seal_with`. All sessions are closed afterwards (nobody is
/// logged in).
fn public_token_keys(p: &Pkcs11, slot: Slot) -> (ObjectHandle, ObjectHandle, Vec<u8>) {
    let s = user_session(p, slot);
    let sensitive =
        s.create_object(&with(aes(&KEY), &[Attribute::Token(true), Attribute::Private(false)])).unwrap();
    let readable = s
        .create_object(&with(
            aes(&KEY),
            &[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        ))
        .unwrap();
    let expected = seal_with(&s, sensitive);
    (sensitive, readable, expected)
}

isolated_test!(
    fn public_token_key_values_are_readable_only_after_login() {
        let (p, slot) = load_with_token();
        let (sensitive, readable, _) = public_token_keys(&p, slot);
        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(all(&s), vec![sensitive, readable]);
        assert_eq!(info(&s, sensitive, AttributeType::Value), Info::Sensitive);
        assert_eq!(info(&s, readable, AttributeType::Value), Info::Sensitive, "sealed until a login");
        assert_eq!(label(&s, readable), b"aes", "other attributes are readable");
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(info(&s, sensitive, AttributeType::Value), Info::Sensitive);
        assert_eq!(info(&s, readable, AttributeType::Value), Info::Available(32));
        assert_eq!(bytes(&s, readable, AttributeType::Value), KEY);
    }
);

isolated_test!(
    fn public_token_keys_encrypt_only_after_login() {
        let (p, slot) = load_with_token();
        let (sensitive, _, expected) = public_token_keys(&p, slot);
        let s = p.open_rw_session(slot).unwrap();
        let mut iv = [9u8; 12];
        let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
        let refused = s.encrypt(&Mechanism::AesGcm(params), sensitive, b"compare these keys");
        expect_rv(refused, RvError::UserNotLoggedIn);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(seal_with(&s, sensitive), expected);
    }
);

isolated_test!(
    fn public_token_keys_can_be_relabelled_without_login() {
        let (p, slot) = load_with_token();
        let (sensitive, _, expected) = public_token_keys(&p, slot);
        let s = p.open_rw_session(slot).unwrap();
        s.update_attributes(sensitive, &[Attribute::Label(b"relabelled".to_vec())])
            .expect("a public token object may be changed in a R/W public session");
        assert_eq!(label(&s, sensitive), b"relabelled");
        // The sealed value was left as it was: after a login the key is the same key.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(seal_with(&s, sensitive), expected);
        assert_eq!(label(&s, sensitive), b"relabelled");
    }
);

isolated_test!(
    fn copies_of_public_keys_need_a_login() {
        let (p, slot) = load_with_token();
        let (key, _, expected) = public_token_keys(&p, slot);
        let s = p.open_rw_session(slot).unwrap();
        // Without a login the value is sealed, so there is nothing to copy.
        expect_rv(s.copy_object(key, &[Attribute::Token(false)]), RvError::UserNotLoggedIn);
        assert_eq!(all(&s).len(), 2, "no copy was made");
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let copy = s.copy_object(key, &[Attribute::Token(false)]).unwrap();
        let mut iv = [9u8; 12];
        let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
        let sealed = s.encrypt(&Mechanism::AesGcm(params), copy, b"compare these keys");
        assert_eq!(sealed.expect("the copy is a usable key"), expected);
    }
);
