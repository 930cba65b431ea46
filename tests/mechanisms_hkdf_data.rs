//! CKM_HKDF_DATA (PKCS#11 3.0) through the built module: HKDF into a `CKO_DATA` object.
//!
//! 1. RFC 5869's test case 1, extract-and-expand and extract alone, as data objects (private
//!    unless the template says otherwise; the length from `CKA_VALUE_LEN` in the template).
//! 2. The attack: the data output is the value CKM_HKDF_DERIVE gives a key with the same
//!    parameters, so a sensitive base key that did not opt in (by listing CKM_HKDF_DATA in
//!    `CKA_ALLOWED_MECHANISMS`) is refused, and nothing is created; one that opted in works.
//! 3. Bad templates are refused, and nothing changes.

mod common;
use common::keys::secret_key;
use common::objects::{count, value};
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn ikm(s: &Session, sensitive: bool, allowed: Option<Vec<MechanismType>>) -> ObjectHandle {
    let mut extra =
        vec![Attribute::Derive(true), Attribute::Sensitive(sensitive), Attribute::Extractable(!sensitive)];
    extra.extend(allowed.map(Attribute::AllowedMechanisms));
    secret_key(s, KeyType::GENERIC_SECRET, &[0x0b; 22], &extra)
}

const SALT: &str = "000102030405060708090a0b0c";
const INFO: &str = "f0f1f2f3f4f5f6f7f8f9";
const OKM: &str = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
const PRK: &str = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";

isolated_test!(
    fn hkdf_data_gives_rfc5869_output_as_private_data() {
        let (p, slot, s) = logged_in();
        let info = p.get_mechanism_info(slot, MechanismType::HKDF_DATA).unwrap();
        assert!(info.derive());
        let (salt, context) = (hex(SALT), hex(INFO));
        let both = Mechanism::HkdfData(HkdfParams::new(
            MechanismType::SHA256,
            Some(HkdfSalt::Data(&salt)),
            Some(&context),
        ));
        let extract =
            Mechanism::HkdfData(HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Data(&salt)), None));
        // A readable base key may derive data; so may a sensitive one that opted in.
        for base in [ikm(&s, false, None), ikm(&s, true, Some(vec![MechanismType::HKDF_DATA]))] {
            let okm = s.derive_key(&both, base, &[Attribute::ValueLen(42.into())]).unwrap();
            assert_eq!(value(&s, okm), hex(OKM));
            let read = s.get_attributes(okm, &[AttributeType::Class, AttributeType::Private]).unwrap();
            assert_eq!(read, vec![Attribute::Class(ObjectClass::DATA), Attribute::Private(true)]);
            let prk = s.derive_key(&extract, base, &[Attribute::Private(false)]).unwrap();
            assert_eq!(value(&s, prk), hex(PRK));
        }
    }
);

isolated_test!(
    fn a_sensitive_key_that_did_not_opt_in_gives_no_data() {
        let (_p, _slot, s) = logged_in();
        let (salt, context) = (hex(SALT), hex(INFO));
        let params = || HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Data(&salt)), Some(&context));
        let sensitive = ikm(&s, true, None);
        // The key HKDF derives from it is sensitive...
        let derived = s
            .derive_key(
                &Mechanism::HkdfDerive(params()),
                sensitive,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(42.into()),
                    Attribute::Sensitive(true),
                ],
            )
            .unwrap();
        assert!(s.get_attributes(derived, &[AttributeType::Value]).unwrap().is_empty(), "sensitive");
        // ...and the same derivation into a data object, which would reveal it, is refused.
        let before = count(&s);
        expect_rv(
            s.derive_key(&Mechanism::HkdfData(params()), sensitive, &[Attribute::ValueLen(42.into())]),
            RvError::KeyFunctionNotPermitted,
        );
        // A key allowed only CKM_HKDF_DERIVE is refused by its own list.
        let derive_only = ikm(&s, true, Some(vec![MechanismType::HKDF_DERIVE]));
        let before_list = count(&s);
        assert!(
            s.derive_key(&Mechanism::HkdfData(params()), derive_only, &[Attribute::ValueLen(42.into())])
                .is_err()
        );
        assert_eq!(count(&s), before_list);
        // A readable salt key does not make a sensitive base readable.
        let salt_key = ikm(&s, false, None);
        let keyed =
            Mechanism::HkdfData(HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Key(salt_key)), None));
        let before_salt = count(&s);
        expect_rv(s.derive_key(&keyed, sensitive, &[]), RvError::KeyFunctionNotPermitted);
        assert_eq!(count(&s), before_salt);
        assert_eq!(before + 2, before_salt, "only the two keys made here were added");
    }
);

isolated_test!(
    fn bad_templates_are_refused() {
        let (_p, _slot, s) = logged_in();
        let (salt, context) = (hex(SALT), hex(INFO));
        let both = Mechanism::HkdfData(HkdfParams::new(
            MechanismType::SHA256,
            Some(HkdfSalt::Data(&salt)),
            Some(&context),
        ));
        let base = ikm(&s, false, None);
        let before = count(&s);
        for (template, expected) in [
            // Expansion needs a length.
            (vec![], RvError::TemplateIncomplete),
            // The mechanism gives the value; the class is data.
            (vec![Attribute::ValueLen(42.into()), Attribute::Value(vec![1])], RvError::TemplateInconsistent),
            (
                vec![
                    Attribute::ValueLen(42.into()),
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                ],
                RvError::TemplateInconsistent,
            ),
            // Longer than HKDF-SHA256 can expand (255 hash lengths).
            (vec![Attribute::ValueLen((255 * 32 + 1).into())], RvError::TemplateInconsistent),
        ] {
            let result = s.derive_key(&both, base, &template);
            expect_rv(result, expected);
            assert_eq!(count(&s), before, "a refused derivation created an object");
        }
    }
);
