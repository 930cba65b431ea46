//! Curves not offered (P-192, P-224, Brainpool, an OID no curve has) answer
//! `CKR_CURVE_NOT_SUPPORTED` the same way on key-pair generation and on import, and leave no
//! object behind; an EC parameter that is not an OID at all is `CKR_ATTRIBUTE_VALUE_INVALID`.
mod common;
use common::keys::ec_public_template;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;

/// `CKA_EC_PARAMS` of curves the token does not offer, each with the length of its
/// uncompressed point.
const NOT_OFFERED: [(&str, &str, usize); 4] = [
    ("P-192", "06082a8648ce3d030101", 49),
    ("P-224", "06052b81040021", 57),
    ("brainpoolP256r1", "06092b2403030208010107", 65),
    ("1.2.3.4", "06032a0304", 65),
];

/// `CKA_EC_POINT`: an uncompressed point of `len` bytes in a DER OCTET STRING.
fn point(len: usize) -> Vec<u8> {
    let mut p = vec![0x04, len as u8, 0x04];
    p.extend(std::iter::repeat_n(0x11, len - 1));
    p
}

fn import_public(
    s: &Session,
    params: Vec<u8>,
    point: Vec<u8>,
) -> cryptoki::error::Result<cryptoki::object::ObjectHandle> {
    s.create_object(&ec_public_template(KeyType::EC, &params, &point))
}

isolated_test!(
    /// Attack: import a verification key on a curve the token cannot check, so that it sits
    /// in the token as if usable (and fails only later, or is trusted by a tool that lists
    /// it). Refused at import with the generation's code; nothing is stored.
    fn unsupported_curves_are_refused_alike_on_import_and_generation() {
        let (_p, _slot, s) = logged_in();
        let before = s.find_objects(&[]).unwrap().len();
        for (name, oid, len) in NOT_OFFERED {
            expect_rv(import_public(&s, hex(oid), point(len)), RvError::CurveNotSupported);
            let private = s.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(hex(oid)),
                Attribute::Value(vec![0x01; len / 2]),
                Attribute::Sign(true),
            ]);
            expect_rv(private, RvError::CurveNotSupported);
            let generated = s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(hex(oid)), Attribute::Verify(true)],
                &[Attribute::Sign(true)],
            );
            expect_rv(generated, RvError::CurveNotSupported);
            assert_eq!(s.find_objects(&[]).unwrap().len(), before, "{name}: nothing stored");
        }
        // A curve named in the PrintableString form (not one offered) is refused alike on both
        // paths; a parameter that names no curve at all (NULL: implicitlyCA) is a bad value.
        for (params, rv) in [
            (b"\x13\x05P-256".to_vec(), RvError::CurveNotSupported),
            (vec![0x05, 0x00], RvError::AttributeValueInvalid),
        ] {
            expect_rv(import_public(&s, params.clone(), point(65)), rv);
            let generated = s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(params), Attribute::Verify(true)],
                &[Attribute::Sign(true)],
            );
            expect_rv(generated, rv);
        }
        assert_eq!(s.find_objects(&[]).unwrap().len(), before);

        // P-256 with a real point still imports.
        let (public, _) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(hex("06082a8648ce3d030107")), Attribute::Verify(true)],
                &[Attribute::Sign(true)],
            )
            .unwrap();
        let Attribute::EcPoint(good) =
            s.get_attributes(public, &[cryptoki::object::AttributeType::EcPoint]).unwrap().remove(0)
        else {
            panic!("no CKA_EC_POINT")
        };
        import_public(&s, hex("06082a8648ce3d030107"), good).unwrap();
    }
);
