//! `CKA_CHECK_VALUE` (PKCS #11 3.0, issue 15 item 2) through `cryptoki`: offered for secret
//! keys (sensitive ones too) and certificates, computed as the standard defines it per type,
//! and checked when a template gives it: a wrong one is `CKR_ATTRIBUTE_VALUE_INVALID` and
//! nothing is created or changed.
mod common;
use common::keys::{secret_key, secret_key_template};
use common::objects::wrapping_key;
use common::*;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn check_value(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(h, &[AttributeType::CheckValue]).unwrap().as_slice() {
        [Attribute::CheckValue(v)] => v.clone(),
        other => panic!("{other:?}"),
    }
}

fn refused(result: cryptoki::error::Result<impl std::fmt::Debug>, expected: RvError) {
    match result {
        Err(Error::Pkcs11(rv, _)) => assert_eq!(rv, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

/// An AES key of all-zero bytes: its check value is the start of AES(0, 0) (AES-256:
/// dc95c078...).
fn zero_aes(extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = secret_key_template(KeyType::AES, &[0; 32], &[Attribute::Sensitive(true)]);
    t.extend_from_slice(extra);
    t
}

const ZERO_AES_256: [u8; 3] = [0xdc, 0x95, 0xc0];
/// SHA-1("abc") begins a9993e.
const SHA1_ABC: [u8; 3] = [0xa9, 0x99, 0x3e];

isolated_test!(
    fn check_values_are_offered_for_sensitive_keys_and_certificates() {
        let (_p, _slot, s) = logged_in();
        let aes = s.create_object(&zero_aes(&[])).unwrap();
        assert_eq!(check_value(&s, aes), ZERO_AES_256);
        let generic = secret_key(&s, KeyType::GENERIC_SECRET, b"abc", &[]);
        assert_eq!(check_value(&s, generic), SHA1_ABC);
        let cert = s
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Subject(b"subject".to_vec()),
                Attribute::Value(b"abc".to_vec()),
            ])
            .unwrap();
        assert_eq!(check_value(&s, cert), SHA1_ABC);
        // A generated key has one too, and a search finds a key by it.
        let generated = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())]).unwrap();
        let kcv = check_value(&s, generated);
        assert_eq!(kcv.len(), 3);
        assert!(s.find_objects(&[Attribute::CheckValue(kcv)]).unwrap().contains(&generated));
        assert_eq!(s.find_objects(&[Attribute::CheckValue(ZERO_AES_256.to_vec())]).unwrap(), vec![aes]);
    }
);

isolated_test!(
    fn a_wrong_check_value_in_c_create_object_creates_nothing() {
        let (_p, _slot, s) = logged_in();
        for wrong in [vec![0xdc, 0x95, 0xc1], vec![0xdc, 0x95], vec![0xdc, 0x95, 0xc0, 0x78]] {
            refused(
                s.create_object(&zero_aes(&[Attribute::CheckValue(wrong)])),
                RvError::AttributeValueInvalid,
            );
        }
        refused(
            s.create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Subject(b"subject".to_vec()),
                Attribute::Value(b"abc".to_vec()),
                Attribute::CheckValue(vec![0, 0, 0]),
            ]),
            RvError::AttributeValueInvalid,
        );
        assert!(s.find_objects(&[]).unwrap().is_empty(), "nothing was created");
        let right = s.create_object(&zero_aes(&[Attribute::CheckValue(ZERO_AES_256.to_vec())])).unwrap();
        assert_eq!(check_value(&s, right), ZERO_AES_256);
        // An empty one asks for none.
        let none = s.create_object(&zero_aes(&[Attribute::CheckValue(vec![])])).unwrap();
        assert_eq!(check_value(&s, none), Vec::<u8>::new());
    }
);

isolated_test!(
    fn a_wrong_check_value_in_c_unwrap_key_creates_nothing() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s);
        let key = s.create_object(&zero_aes(&[Attribute::Extractable(true)])).unwrap();
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        let template = |kcv: Vec<u8>| {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::CheckValue(kcv),
            ]
        };
        let before = s.find_objects(&[]).unwrap();
        refused(
            s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &template(vec![1, 2, 3])),
            RvError::AttributeValueInvalid,
        );
        assert_eq!(s.find_objects(&[]).unwrap(), before, "nothing was created");
        let back =
            s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &template(ZERO_AES_256.to_vec())).unwrap();
        assert_eq!(check_value(&s, back), ZERO_AES_256);
    }
);

isolated_test!(
    fn c_set_attribute_value_may_empty_a_check_value_but_not_change_it() {
        let (_p, _slot, s) = logged_in();
        let key = s.create_object(&zero_aes(&[])).unwrap();
        refused(
            s.update_attributes(key, &[Attribute::CheckValue(vec![1, 2, 3])]),
            RvError::AttributeValueInvalid,
        );
        assert_eq!(check_value(&s, key), ZERO_AES_256, "unchanged");
        s.update_attributes(key, &[Attribute::CheckValue(ZERO_AES_256.to_vec())]).unwrap();
        s.update_attributes(key, &[Attribute::CheckValue(vec![])]).unwrap();
        assert_eq!(check_value(&s, key), Vec::<u8>::new());
    }
);

isolated_test!(
    fn a_public_keys_check_value_is_read_without_a_login() {
        let (p, slot) = load_with_token();
        {
            let s = user_session(&p, slot);
            s.create_object(&zero_aes(&[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(b"public".to_vec()),
            ]))
            .unwrap();
        }
        p.finalize().unwrap();
        // A new process: nobody logged in, so the key's value stays sealed in the file.
        let p = load();
        let s = p.open_ro_session(first_slot(&p)).unwrap();
        let key = s.find_objects(&[Attribute::Label(b"public".to_vec())]).unwrap()[0];
        assert_eq!(check_value(&s, key), ZERO_AES_256);
        let value = s.get_attribute_info(key, &[AttributeType::Value]).unwrap();
        assert!(matches!(value[..], [cryptoki::object::AttributeInfo::Sensitive]), "{value:?}");
    }
);
