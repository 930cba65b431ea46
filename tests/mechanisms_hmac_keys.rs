//! The HMAC key types of PKCS#11 3.0 through the PKCS#11 API of the built module:
//! `CKM_SHA_1_KEY_GEN` ... `CKM_SHA512_KEY_GEN` make `CKK_SHA_1_HMAC` ... `CKK_SHA512_HMAC`
//! keys, which sign with their own hash's HMAC and no other; `C_CreateObject` takes those key
//! types (it answered `CKR_ATTRIBUTE_VALUE_INVALID`: the object layer knew no such key type)
//! and generic secrets of any length, shorter or longer than the hash's block (RFC 4231).
//! (Truncated MACs with `CKM_SHA256_HMAC_GENERAL` are in `tests/mechanisms_symmetric.rs`.)
//!
//! `cryptoki` 0.12 gives `KeyType::SHA224_HMAC`, `SHA384_HMAC` and `SHA512_HMAC` the value of
//! `CKK_SHA256_HMAC`, so key types are written and read here through the raw ABI.
#![allow(unsafe_code)]

mod common;
use common::keys::secret_key_template;
use common::objects::count;
use common::raw::{self, attr, attr_bytes};
use common::raw_wrap::object;
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys as sys;

/// The key type of `key` as the module stores it.
fn key_type(raw: &sys::Pkcs11, s: &Session, key: ObjectHandle) -> sys::CK_KEY_TYPE {
    raw::read_ulong(raw, s.handle(), key.handle(), sys::CKA_KEY_TYPE)
}

/// Imports a secret key of `key_type` (a raw `CKK_*`) that signs and verifies.
fn import_typed(raw: &sys::Pkcs11, s: &Session, key_type: sys::CK_KEY_TYPE, value: &[u8]) -> ObjectHandle {
    let (class, yes) = (sys::CKO_SECRET_KEY, raw::TRUE);
    let mut template = [
        attr(sys::CKA_CLASS, &class),
        attr(sys::CKA_KEY_TYPE, &key_type),
        attr_bytes(sys::CKA_VALUE, value),
        attr(sys::CKA_SIGN, &yes),
        attr(sys::CKA_VERIFY, &yes),
    ];
    object(raw::create(raw, s.handle(), &mut template))
}

fn import(s: &Session, key_type: KeyType, value: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.create_object(&secret_key_template(key_type, value, &[Attribute::Sign(true), Attribute::Verify(true)]))
}

/// RFC 4231 test case 2 ("Jefe") and 6 (a 131-byte key, larger than the block).
const JEFE_DATA: &[u8] = b"what do ya want for nothing?";
const JEFE_SHA256: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
const LARGE_KEY_DATA: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";
const LARGE_KEY_SHA256: &str = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
const LARGE_KEY_SHA512: &str = "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e52\
                                95e64f73f63f0aec8b915a985d786598";

isolated_test!(
    fn hmac_key_generation_makes_the_typed_keys() {
        let (p, slot, s) = logged_in();
        let raw = raw::load_raw();
        let info = p.get_mechanism_info(slot, MechanismType::SHA256_KEY_GEN).unwrap();
        assert!(info.generate());
        for (gen_mechanism, expected_type, hmac, other) in [
            (Mechanism::Sha256KeyGen, sys::CKK_SHA256_HMAC, Mechanism::Sha256Hmac, Mechanism::Sha384Hmac),
            (Mechanism::Sha384KeyGen, sys::CKK_SHA384_HMAC, Mechanism::Sha384Hmac, Mechanism::Sha512Hmac),
            (Mechanism::Sha512KeyGen, sys::CKK_SHA512_HMAC, Mechanism::Sha512Hmac, Mechanism::Sha256Hmac),
        ] {
            let key = s
                .generate_key(&gen_mechanism, &[Attribute::ValueLen(32.into()), Attribute::Sign(true)])
                .unwrap();
            assert_eq!(key_type(&raw, &s, key), expected_type);
            let attrs = s.get_attributes(key, &[AttributeType::Local, AttributeType::ValueLen]).unwrap();
            assert_eq!(attrs, [Attribute::Local(true), Attribute::ValueLen(32.into())]);
            let mac = s.sign(&hmac, key, b"data").unwrap();
            assert!(!mac.is_empty());
            let before = count(&s);
            expect_rv(s.sign(&other, key, b"data"), RvError::KeyTypeInconsistent);
            // A template naming another key type, and a length out of range.
            expect_rv(
                s.generate_key(
                    &gen_mechanism,
                    &[Attribute::KeyType(KeyType::GENERIC_SECRET), Attribute::ValueLen(32.into())],
                ),
                RvError::TemplateInconsistent,
            );
            expect_rv(
                s.generate_key(&gen_mechanism, &[Attribute::ValueLen(513.into())]),
                RvError::AttributeValueInvalid,
            );
            expect_rv(s.generate_key(&gen_mechanism, &[]), RvError::TemplateIncomplete);
            assert_eq!(count(&s), before, "a refused call changed the objects");
        }
    }
);

isolated_test!(
    fn hmac_keys_of_any_length_import_and_match_rfc4231() {
        let (_p, _slot, s) = logged_in();
        let raw = raw::load_raw();
        let jefe = import_typed(&raw, &s, sys::CKK_SHA256_HMAC, b"Jefe");
        assert_eq!(key_type(&raw, &s, jefe), sys::CKK_SHA256_HMAC);
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, jefe, JEFE_DATA).unwrap(), hex(JEFE_SHA256));
        s.verify(&Mechanism::Sha256Hmac, jefe, JEFE_DATA, &hex(JEFE_SHA256)).unwrap();
        expect_rv(s.sign(&Mechanism::Sha512Hmac, jefe, JEFE_DATA), RvError::KeyTypeInconsistent);

        let large = [0xaa; 131];
        let generic = import(&s, KeyType::GENERIC_SECRET, &large).unwrap();
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, generic, LARGE_KEY_DATA).unwrap(), hex(LARGE_KEY_SHA256));
        assert_eq!(s.sign(&Mechanism::Sha512Hmac, generic, LARGE_KEY_DATA).unwrap(), hex(LARGE_KEY_SHA512));
        let typed = import_typed(&raw, &s, sys::CKK_SHA512_HMAC, &large);
        assert_eq!(s.sign(&Mechanism::Sha512Hmac, typed, LARGE_KEY_DATA).unwrap(), hex(LARGE_KEY_SHA512));

        // Every length from one byte to far beyond the block, for each key type.
        for kind in [
            sys::CKK_GENERIC_SECRET,
            sys::CKK_SHA_1_HMAC,
            sys::CKK_SHA224_HMAC,
            sys::CKK_SHA256_HMAC,
            sys::CKK_SHA384_HMAC,
            sys::CKK_SHA512_HMAC,
        ] {
            for len in [1, 20, 64, 65, 128, 129, 1000] {
                let key = import_typed(&raw, &s, kind, &vec![7; len]);
                assert_eq!(key_type(&raw, &s, key), kind);
                let attrs = s.get_attributes(key, &[AttributeType::ValueLen]).unwrap();
                assert_eq!(attrs, [Attribute::ValueLen((len as u64).into())]);
            }
        }
        // An empty value is no key.
        let before = count(&s);
        expect_rv(import(&s, KeyType::SHA256_HMAC, &[]), RvError::AttributeValueInvalid);
        assert_eq!(count(&s), before);
    }
);
