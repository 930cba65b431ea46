//! Attribute defaults as PKCS #11 3.0 states them (issue 15 item 1), through `cryptoki`.
//!
//! The standard's secret-key table gives `CKA_SENSITIVE` "default CK_FALSE": a key made
//! without it reads back, digests and wraps as clients expect (when it is extractable, which
//! the standard leaves to the token and this token makes opt-in). The setting
//! `sensitive_by_default = true` makes such keys sensitive instead. Defaults the standard
//! leaves to the token stay on the safe side (README, "Attribute defaults"). The one default
//! the standard ties to a function: a key made by `C_UnwrapKey`, `C_EncapsulateKey` or
//! `C_DecapsulateKey` is extractable unless its template says no.
mod common;
use common::objects::{flag, imported_secret, wrapping_key};
use common::*;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;

/// The value of a key, if it may be read.
fn value(s: &Session, h: ObjectHandle) -> Option<Vec<u8>> {
    match s.get_attribute_info(h, &[AttributeType::Value]).unwrap().as_slice() {
        [AttributeInfo::Available(_)] => {
            match s.get_attributes(h, &[AttributeType::Value]).unwrap().remove(0) {
                Attribute::Value(v) => Some(v),
                other => panic!("{other:?}"),
            }
        }
        [AttributeInfo::Sensitive] => None,
        other => panic!("{other:?}"),
    }
}

/// A generated AES-256 session key, extractable, with `extra` in its template.
fn generated(s: &Session, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![Attribute::ValueLen(32.into()), Attribute::Extractable(true)];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t).unwrap()
}

fn refused(result: cryptoki::error::Result<impl std::fmt::Debug>, expected: RvError) {
    match result {
        Err(Error::Pkcs11(rv, _)) => assert_eq!(rv, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

isolated_test!(
    fn a_secret_key_made_without_sensitive_reads_back_digests_and_wraps() {
        let (_p, _slot, s) = logged_in();
        let key = generated(&s, &[]);
        assert!(!flag(&s, key, AttributeType::Sensitive), "the standard's default is CK_FALSE");
        assert!(!flag(&s, key, AttributeType::AlwaysSensitive));
        let v = value(&s, key).expect("a non-sensitive, extractable key reads back");
        assert_eq!(v.len(), 32);

        s.digest_init(&Mechanism::Sha256).unwrap();
        s.digest_key(key).unwrap();
        assert_eq!(s.digest_final().unwrap(), s.digest(&Mechanism::Sha256, &v).unwrap());

        let kek = wrapping_key(&s);
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        let back = s
            .unwrap_key(
                &Mechanism::AesKeyWrap,
                kek,
                &wrapped,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        assert_eq!(value(&s, back), Some(v), "the unwrapped key is not sensitive either");

        // C_CreateObject follows the same default.
        let created = imported_secret(&s, KeyType::AES, vec![5; 16]);
        assert!(!flag(&s, created, AttributeType::Sensitive));
        assert_eq!(value(&s, created), Some(vec![5; 16]));
    }
);

isolated_test!(
    fn defaults_the_standard_leaves_to_the_token_stay_on_the_safe_side() {
        let (_p, _slot, s) = logged_in();
        // Not extractable unless asked: not readable though not sensitive.
        let key = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())]).unwrap();
        assert!(!flag(&s, key, AttributeType::Sensitive) && !flag(&s, key, AttributeType::Extractable));
        assert_eq!(value(&s, key), None);
        refused(s.wrap_key(&Mechanism::AesKeyWrap, wrapping_key(&s), key), RvError::KeyUnextractable);
        assert!(flag(&s, key, AttributeType::Private) && !flag(&s, key, AttributeType::Token));
        assert!(flag(&s, key, AttributeType::Modifiable) && flag(&s, key, AttributeType::Copyable));
        assert!(flag(&s, key, AttributeType::Destroyable) && !flag(&s, key, AttributeType::Derive));
        // A private key made without CKA_SENSITIVE is sensitive.
        let (_, private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
                &[Attribute::Extractable(true)],
            )
            .unwrap();
        assert!(
            flag(&s, private, AttributeType::Sensitive) && flag(&s, private, AttributeType::AlwaysSensitive)
        );
        assert_eq!(value(&s, private), None);
    }
);

isolated_test!(
    config = "sensitive_by_default = true",
    fn the_sensitive_by_default_setting_makes_new_secret_keys_sensitive() {
        let (_p, _slot, s) = logged_in();
        let key = generated(&s, &[]);
        assert!(flag(&s, key, AttributeType::Sensitive) && flag(&s, key, AttributeType::AlwaysSensitive));
        assert_eq!(value(&s, key), None);
        s.digest_init(&Mechanism::Sha256).unwrap();
        refused(s.digest_key(key), RvError::KeyIndigestible);
        // Still extractable, so it still leaves wrapped.
        s.wrap_key(&Mechanism::AesKeyWrap, wrapping_key(&s), key).unwrap();
        let created = imported_secret(&s, KeyType::GENERIC_SECRET, vec![5; 20]);
        assert!(flag(&s, created, AttributeType::Sensitive));
        assert_eq!(value(&s, created), None);
        // A default, not a rule: the template may still say no.
        let plain = generated(&s, &[Attribute::Sensitive(false)]);
        assert!(!flag(&s, plain, AttributeType::Sensitive));
        assert!(value(&s, plain).is_some());
    }
);

/// The template of an AES key made by unwrap or a KEM, with `extra`.
fn new_aes(extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)];
    t.extend_from_slice(extra);
    t
}

/// What the standard says of a key made by `C_UnwrapKey` or a KEM: never local, never
/// always sensitive or never extractable, and extractable by default.
#[track_caller]
fn assert_made_outside(s: &Session, key: ObjectHandle, extractable: bool) {
    assert_eq!(flag(s, key, AttributeType::Extractable), extractable, "CKA_EXTRACTABLE");
    assert!(!flag(s, key, AttributeType::NeverExtractable), "CKA_NEVER_EXTRACTABLE");
    assert!(!flag(s, key, AttributeType::AlwaysSensitive), "CKA_ALWAYS_SENSITIVE");
    assert!(!flag(s, key, AttributeType::Local), "CKA_LOCAL");
}

isolated_test!(
    /// C_UnwrapKey: "The CKA_EXTRACTABLE attribute is by default set to CK_TRUE" (2.40 to
    /// 3.2); the template may say no.
    fn an_unwrapped_key_is_extractable_unless_its_template_says_no() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s);
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, generated(&s, &[])).unwrap();

        let key = s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &new_aes(&[])).unwrap();
        assert_made_outside(&s, key, true);
        // So it leaves again, wrapped, as a client that unwrapped it expects.
        let again = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        assert_eq!(again, wrapped);

        let asked = new_aes(&[Attribute::Extractable(false)]);
        let key = s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &asked).unwrap();
        assert_made_outside(&s, key, false);
        refused(s.wrap_key(&Mechanism::AesKeyWrap, kek, key), RvError::KeyUnextractable);

        // An unwrapping key's CKA_UNWRAP_TEMPLATE may say no too: attribute_arrays.rs.
    }
);

isolated_test!(
    /// C_EncapsulateKey and C_DecapsulateKey (3.2): CKA_EXTRACTABLE "set to the value of the
    /// input template with a default of CK_TRUE if not provided".
    fn a_shared_secret_key_is_extractable_unless_its_template_says_no() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[
                    Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                    Attribute::Encapsulate(true),
                ],
                &[Attribute::Decapsulate(true)],
            )
            .unwrap();
        let (ciphertext, sender) = s.encapsulate_key(&Mechanism::MlKem, public, &new_aes(&[])).unwrap();
        let receiver = s.decapsulate_key(&Mechanism::MlKem, private, &new_aes(&[]), &ciphertext).unwrap();
        assert_made_outside(&s, sender, true);
        assert_made_outside(&s, receiver, true);
        assert_eq!(value(&s, sender), value(&s, receiver), "the shared secret, readable: not sensitive");

        let asked = new_aes(&[Attribute::Extractable(false)]);
        let (ciphertext, sender) = s.encapsulate_key(&Mechanism::MlKem, public, &asked).unwrap();
        let receiver = s.decapsulate_key(&Mechanism::MlKem, private, &asked, &ciphertext).unwrap();
        assert_made_outside(&s, sender, false);
        assert_made_outside(&s, receiver, false);
    }
);
