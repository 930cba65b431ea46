//! Attacks on attribute rules (issue 13 items 7 and 8, the object parts), each performed
//! through the C ABI and shown to fail with nothing changed:
//! - `CKA_KEY_GEN_MECHANISM` and the other attributes the standard's tables give no
//!   footnote 8 cannot be changed with `C_SetAttributeValue`;
//! - an empty `CKA_ALLOWED_MECHANISMS` allows no mechanism (absent allows any);
//! - vendor attributes (`CKA_ECM_*`) are refused inside attribute arrays
//!   (`CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`, `CKA_WRAP_TEMPLATE`), at create and set,
//!   and a tier planted in a stored unwrap template (through the token file) makes no key:
//!   the template is checked after the unwrapping key's array is merged into it.
#![allow(unsafe_code)]

mod common;
use common::objects::{imported_secret, token_aes_key};
use common::*;

use std::ffi::c_void;
use std::mem::size_of_val;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn refused(result: cryptoki::error::Result<impl std::fmt::Debug>, expected: RvError) {
    match result {
        Err(Error::Pkcs11(rv, _)) => assert_eq!(rv, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

fn one(s: &Session, h: ObjectHandle, t: AttributeType) -> Attribute {
    s.get_attributes(h, &[t]).unwrap().remove(0)
}

isolated_test!(
    fn key_gen_mechanism_and_other_fixed_attributes_cannot_be_set() {
        let (_p, _slot, s) = logged_in();
        let key = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())]).unwrap();
        let before = s.get_attributes(key, &[AttributeType::KeyGenMechanism, AttributeType::Local]).unwrap();
        assert_eq!(before[0], Attribute::KeyGenMechanism(MechanismType::AES_KEY_GEN));
        for forged in [
            Attribute::KeyGenMechanism(MechanismType::ECC_KEY_PAIR_GEN),
            Attribute::Local(false),
            Attribute::AlwaysSensitive(true),
            Attribute::AllowedMechanisms(vec![MechanismType::AES_GCM]),
        ] {
            refused(s.update_attributes(key, &[forged]), RvError::AttributeReadOnly);
        }
        assert_eq!(
            s.get_attributes(key, &[AttributeType::KeyGenMechanism, AttributeType::Local]).unwrap(),
            before
        );
        // Restating the current value changes nothing and is allowed.
        s.update_attributes(key, &[Attribute::KeyGenMechanism(MechanismType::AES_KEY_GEN)]).unwrap();

        // CKA_ALWAYS_AUTHENTICATE has no footnote 8 either: it stays as the key was made.
        let (_, private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])],
                &[Attribute::Sign(true), Attribute::AlwaysAuthenticate(true)],
            )
            .unwrap();
        refused(
            s.update_attributes(private, &[Attribute::AlwaysAuthenticate(false)]),
            RvError::AttributeReadOnly,
        );
        assert_eq!(one(&s, private, AttributeType::AlwaysAuthenticate), Attribute::AlwaysAuthenticate(true));
    }
);

isolated_test!(
    fn an_empty_allowed_mechanisms_list_allows_no_mechanism() {
        let (_p, _slot, s) = logged_in();
        let key = |allowed: Option<Vec<MechanismType>>| {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(vec![9; 32]),
                Attribute::Encrypt(true),
            ];
            t.extend(allowed.map(Attribute::AllowedMechanisms));
            s.create_object(&t).unwrap()
        };
        let mut iv = [0u8; 12];
        let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, &[], 128.into()).unwrap());
        let none = key(Some(vec![]));
        assert_eq!(one(&s, none, AttributeType::AllowedMechanisms), Attribute::AllowedMechanisms(vec![]));
        refused(s.encrypt(&gcm, none, b"data"), RvError::MechanismInvalid);
        refused(s.encrypt(&Mechanism::AesEcb, none, &[0; 16]), RvError::MechanismInvalid);
        refused(
            s.update_attributes(none, &[Attribute::AllowedMechanisms(vec![MechanismType::AES_ECB])]),
            RvError::AttributeReadOnly,
        );
        assert_eq!(one(&s, none, AttributeType::AllowedMechanisms), Attribute::AllowedMechanisms(vec![]));

        let only_ecb = key(Some(vec![MechanismType::AES_ECB]));
        s.encrypt(&Mechanism::AesEcb, only_ecb, &[0; 16]).unwrap();
        refused(s.encrypt(&gcm, only_ecb, b"data"), RvError::MechanismInvalid);

        // Without the attribute, any mechanism the key fits.
        let any = key(None);
        s.encrypt(&Mechanism::AesEcb, any, &[0; 16]).unwrap();
        s.encrypt(&gcm, any, b"data").unwrap();
    }
);

/// `C_CreateObject` of an AES key with `array` as the value of attribute `kind`.
fn create_with_array(
    p: &cryptoki_sys::Pkcs11,
    h: cryptoki_sys::CK_SESSION_HANDLE,
    kind: cryptoki_sys::CK_ATTRIBUTE_TYPE,
    array: &mut [cryptoki_sys::CK_ATTRIBUTE],
) -> cryptoki_sys::CK_RV {
    use common::raw::*;
    use cryptoki_sys::*;
    let nested = CK_ATTRIBUTE {
        type_: kind,
        pValue: array.as_mut_ptr() as *mut c_void,
        ulValueLen: ulen(size_of_val(array)),
    };
    try_create(p, h, &mut secret_template(&CKK_AES, &[3u8; 32], &[nested])).0
}

isolated_test!(
    fn vendor_attributes_are_refused_inside_attribute_arrays() {
        use common::raw::*;
        use cryptoki_sys::*;
        use ecm_hsm::vendor::{CKA_ECM_TENANT, CKA_ECM_TIER};
        let (p, _, h) = user_setup();
        let before = find_all(&p, h);
        let (dek_tier, tenant): (CK_ULONG, &[u8]) = (3, b"acme");
        for kind in [CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE, CKA_WRAP_TEMPLATE] {
            let mut forged = [attr(CKA_SENSITIVE, &TRUE), attr(CKA_ECM_TIER, &dek_tier)];
            assert_eq!(create_with_array(&p, h, kind, &mut forged), CKR_ATTRIBUTE_VALUE_INVALID, "{kind:#x}");
            let mut forged = [attr_bytes(CKA_ECM_TENANT, tenant)];
            assert_eq!(create_with_array(&p, h, kind, &mut forged), CKR_ATTRIBUTE_VALUE_INVALID, "{kind:#x}");
        }
        assert_eq!(find_all(&p, h), before, "nothing was created");

        // Nor may C_SetAttributeValue put one there.
        let mut plain = [attr(CKA_SENSITIVE, &TRUE)];
        assert_eq!(create_with_array(&p, h, CKA_UNWRAP_TEMPLATE, &mut plain), CKR_OK);
        let key = *find_all(&p, h).iter().find(|k| !before.contains(k)).unwrap();
        let stored = read_bytes(&p, h, key, CKA_UNWRAP_TEMPLATE);
        let mut forged = [attr(CKA_ECM_TIER, &dek_tier)];
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_UNWRAP_TEMPLATE,
            pValue: forged.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(size_of_val(&forged)),
        }];
        // SAFETY: the template and the nested array are live locals of the stated sizes.
        let rv = unsafe { p.C_SetAttributeValue(h, key, t.as_mut_ptr(), 1) };
        assert!(matches!(rv, CKR_ATTRIBUTE_VALUE_INVALID | CKR_ATTRIBUTE_READ_ONLY), "{rv:#x}");
        assert_eq!(read_bytes(&p, h, key, CKA_UNWRAP_TEMPLATE), stored, "unchanged");
    }
);

/// The stored form of an attribute array (`src/object/attribute.rs`): per entry, the type
/// and the value's length as little-endian u64s, then the value.
fn stored_array(entries: &[(cryptoki_sys::CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, value) in entries {
        // CK_ULONG is u64 on LP64 targets and u32 elsewhere; widening is lossless.
        #[allow(clippy::unnecessary_cast)]
        out.extend_from_slice(&(*kind as u64).to_le_bytes());
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Gives the token key labelled `label` a stored `CKA_UNWRAP_TEMPLATE` of `array`, behind the
/// module's back (as anyone who can write the token file, or an array stored before vendor
/// attributes were refused in arrays).
fn plant_unwrap_template(label: &str, array: &[u8]) {
    use cryptoki_sys::{CKA_LABEL, CKA_UNWRAP_TEMPLATE};
    let conn = rusqlite::Connection::open(token_dir().join("token-0.sqlite")).unwrap();
    let n = conn
        .execute(
            "INSERT INTO attributes (object_id, kind, value, sealed)
             SELECT object_id, ?1, ?2, 0 FROM attributes WHERE kind = ?3 AND value = ?4",
            rusqlite::params![CKA_UNWRAP_TEMPLATE as i64, array, CKA_LABEL as i64, label.as_bytes()],
        )
        .unwrap();
    assert_eq!(n, 1);
}

isolated_test!(
    fn a_tier_forged_in_a_stored_unwrap_template_makes_no_key() {
        use ecm_hsm::vendor::CKA_ECM_TIER;
        let (p, slot) = load_with_token();
        let blob = {
            let s = user_session(&p, slot);
            for label in ["forged", "clean"] {
                token_aes_key(&s, label, &[Attribute::Wrap(true), Attribute::Unwrap(true)]);
            }
            let kek = s.find_objects(&[Attribute::Label("forged".into())]).unwrap()[0];
            let key = imported_secret(&s, KeyType::AES, vec![0x11; 32]);
            let clean = s.find_objects(&[Attribute::Label("clean".into())]).unwrap()[0];
            (
                s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap(),
                s.wrap_key(&Mechanism::AesKeyWrap, clean, key).unwrap(),
            )
        };
        p.finalize().unwrap();
        plant_unwrap_template(
            "forged",
            &stored_array(&[(cryptoki_sys::CKA_DERIVE, vec![0]), (CKA_ECM_TIER, dek_bytes())]),
        );
        plant_unwrap_template("clean", &stored_array(&[(cryptoki_sys::CKA_LABEL, b"imposed".to_vec())]));

        let p = load();
        let s = user_session(&p, first_slot(&p));
        let before = s.find_objects(&[]).unwrap();
        let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)];
        let forged = s.find_objects(&[Attribute::Label("forged".into())]).unwrap()[0];
        refused(
            s.unwrap_key(&Mechanism::AesKeyWrap, forged, &blob.0, &template),
            RvError::TemplateInconsistent,
        );
        assert_eq!(s.find_objects(&[]).unwrap(), before, "no key was made");
        assert!(
            s.find_objects(&[Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_ECM_TIER),
                dek_bytes()
            ))])
            .unwrap()
            .is_empty()
        );
        // The planted template is really imposed: the clean one's entry reaches its key.
        let clean = s.find_objects(&[Attribute::Label("clean".into())]).unwrap()[0];
        let key = s.unwrap_key(&Mechanism::AesKeyWrap, clean, &blob.1, &template).unwrap();
        assert_eq!(one(&s, key, AttributeType::Label), Attribute::Label(b"imposed".to_vec()));
    }
);

fn dek_bytes() -> Vec<u8> {
    (ecm_hsm::vendor::CKT_ECM_DEK as cryptoki_sys::CK_ULONG).to_ne_bytes().to_vec()
}
