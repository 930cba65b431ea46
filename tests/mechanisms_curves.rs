//! The curves beyond the NIST prime curves, through the PKCS#11 API of the built module:
//!
//! 1. secp256k1: `CKM_EC_KEY_PAIR_GEN`, ECDSA signatures (and a signature made by OpenSSL,
//!    verified through an imported public key); ECDH on it answers `CKR_CURVE_NOT_SUPPORTED`.
//! 2. Ed25519: `CKM_EC_EDWARDS_KEY_PAIR_GEN` (`CKK_EC_EDWARDS`, curve named by OID or by
//!    name), `CKM_EDDSA`; RFC 8032 known answers through imported keys.
//! 3. X25519: `CKM_EC_MONTGOMERY_KEY_PAIR_GEN` (`CKK_EC_MONTGOMERY`), `CKM_ECDH1_DERIVE`;
//!    RFC 7748 known answers through imported keys.
//! 4. Ed25519 and X25519 private keys wrapped (PKCS#8, RFC 8410) and unwrapped: the
//!    unwrapped key signs (derives) as the original did.
//! 5. Curves not offered (P-192, Brainpool, Ed448, X448) answer `CKR_CURVE_NOT_SUPPORTED` on
//!    generation, and nothing changes.
//!
//! After each refusal the test checks that the number of objects is the same and the
//! session still works.

mod common;
use common::keys::ec_public_template;
use common::objects::{count, value, wrapping_key};
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const X25519_NAME: &[u8] = b"\x13\x0acurve25519";
const P192: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01];
const BRAINPOOL_P256R1: &[u8] = &[0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
const X448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];

#[track_caller]
fn assert_unchanged(s: &Session, before: usize) {
    assert_eq!(count(s), before, "a refused call changed the objects");
    assert_eq!(s.digest(&Mechanism::Sha256, b"abc").unwrap().len(), 32, "the session is unusable");
}

fn pair(s: &Session, mechanism: &Mechanism, params: &[u8], sign: bool) -> (ObjectHandle, ObjectHandle) {
    let usage = |private: bool| {
        if sign {
            if private { Attribute::Sign(true) } else { Attribute::Verify(true) }
        } else {
            Attribute::Derive(true)
        }
    };
    s.generate_key_pair(
        mechanism,
        &[Attribute::EcParams(params.to_vec()), Attribute::Token(true), usage(false)],
        &[Attribute::Token(true), Attribute::Sensitive(true), usage(true)],
    )
    .unwrap()
}

/// `CKA_EC_POINT` of a public key, and the raw key inside its DER OCTET STRING.
fn ec_point(s: &Session, public: ObjectHandle) -> (Vec<u8>, Vec<u8>) {
    let Attribute::EcPoint(der) = s.get_attributes(public, &[AttributeType::EcPoint]).unwrap().remove(0)
    else {
        panic!("no CKA_EC_POINT")
    };
    assert_eq!(der[0], 0x04, "CKA_EC_POINT is a DER OCTET STRING");
    let raw = der[2..].to_vec();
    assert_eq!(usize::from(der[1]), raw.len());
    (der, raw)
}

fn key_type(s: &Session, key: ObjectHandle) -> KeyType {
    let Attribute::KeyType(t) = s.get_attributes(key, &[AttributeType::KeyType]).unwrap().remove(0) else {
        panic!("no CKA_KEY_TYPE")
    };
    t
}

fn import_public(s: &Session, kind: KeyType, params: &[u8], point: Vec<u8>) -> ObjectHandle {
    s.create_object(&ec_public_template(kind, params, &point)).unwrap()
}

fn import_private(s: &Session, kind: KeyType, params: &[u8], value: Vec<u8>, derive: bool) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(kind),
        Attribute::EcParams(params.to_vec()),
        Attribute::Value(value),
        Attribute::Sign(!derive),
        Attribute::Derive(derive),
    ])
    .unwrap()
}

fn ecdh_derive(
    s: &Session,
    private: ObjectHandle,
    peer: &[u8],
    len: u64,
) -> cryptoki::error::Result<ObjectHandle> {
    let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
    s.derive_key(
        &Mechanism::Ecdh1Derive(params),
        private,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(len.into()),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )
}

/// `CKM_EDDSA` without parameters: pure Ed25519.
fn eddsa() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519))
}

isolated_test!(
    fn secp256k1_signs_verifies_and_agrees() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = pair(&s, &Mechanism::EccKeyPairGen, SECP256K1, true);
        assert_eq!(key_type(&s, public), KeyType::EC);
        let (_, raw) = ec_point(&s, public);
        assert_eq!((raw.len(), raw[0]), (65, 0x04));
        let signature = s.sign(&Mechanism::EcdsaSha256, private, b"bitcoin").unwrap();
        assert_eq!(signature.len(), 64);
        s.verify(&Mechanism::EcdsaSha256, public, b"bitcoin", &signature).unwrap();
        expect_rv(
            s.verify(&Mechanism::EcdsaSha256, public, b"bitcoiN", &signature),
            RvError::SignatureInvalid,
        );

        // A signature made by OpenSSL 3 over "secp256k1 known answer", through an imported key.
        let point = hex("04 2f840e4aaf6bbce2cbdb41302c29e277fe2e7ad9fb2cac0e85075b49e9729e04
                30375f55d17b950473c43dcf865f7a3e3a38ca483e2a74f0ff11908bd0e23496");
        let imported = import_public(&s, KeyType::EC, SECP256K1, [vec![0x04, 0x41], point].concat());
        let openssl = hex("467D69F62D003F404115288447DA828457674EE0BAAC5765671B8F3C56B7EFE1
             C0CB3B83B50A54F89CD8C1246AC1793837139DF1F11058537467ED751A94802E");
        s.verify(&Mechanism::EcdsaSha256, imported, b"secp256k1 known answer", &openssl).unwrap();

        // ECDH: both sides agree; a point off the curve is refused and changes nothing.
        let (a_public, a_private) = pair(&s, &Mechanism::EccKeyPairGen, SECP256K1, false);
        let (b_public, b_private) = pair(&s, &Mechanism::EccKeyPairGen, SECP256K1, false);
        let (_, a_point) = ec_point(&s, a_public);
        let (_, b_point) = ec_point(&s, b_public);
        let ab = value(&s, ecdh_derive(&s, a_private, &b_point, 32).unwrap());
        let ba = value(&s, ecdh_derive(&s, b_private, &a_point, 32).unwrap());
        assert_eq!(ab, ba);
        assert_ne!(ab, vec![0; 32]);
        let mut off_curve = b_point.clone();
        off_curve[64] ^= 1;
        let before = count(&s);
        expect_rv(ecdh_derive(&s, a_private, &off_curve, 32), RvError::MechanismParamInvalid);
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn ed25519_generates_signs_and_matches_rfc8032() {
        let (p, slot, s) = logged_in();
        let info = p.get_mechanism_info(slot, MechanismType::EDDSA).unwrap();
        assert!(info.sign() && info.verify());
        assert_eq!((info.min_key_size(), info.max_key_size()), (255, 255));
        let info = p.get_mechanism_info(slot, MechanismType::ECC_EDWARDS_KEY_PAIR_GEN).unwrap();
        assert!(info.generate_key_pair());

        for params in [ED25519_OID, ED25519_NAME] {
            let (public, private) = pair(&s, &Mechanism::EccEdwardsKeyPairGen, params, true);
            assert_eq!(key_type(&s, public), KeyType::EC_EDWARDS);
            assert_eq!(key_type(&s, private), KeyType::EC_EDWARDS);
            let (_, raw) = ec_point(&s, public);
            assert_eq!(raw.len(), 32);
            let Attribute::PublicKeyInfo(spki) =
                s.get_attributes(public, &[AttributeType::PublicKeyInfo]).unwrap().remove(0)
            else {
                panic!("no CKA_PUBLIC_KEY_INFO")
            };
            // RFC 8410: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING { key } }.
            assert_eq!(spki, [&hex("302a300506032b6570032100")[..], &raw].concat());
            let signature = s.sign(&eddsa(), private, b"message").unwrap();
            assert_eq!(signature.len(), 64);
            s.verify(&eddsa(), public, b"message", &signature).unwrap();
            let before = count(&s);
            expect_rv(s.verify(&eddsa(), public, b"messagE", &signature), RvError::SignatureInvalid);
            expect_rv(s.verify(&eddsa(), public, b"message", &signature[..63]), RvError::SignatureLenRange);
            // A context RFC 8032 does not allow (Ed25519ctx and Ed25519ph themselves are
            // tests/mechanisms_eddsa_params.rs); ECDSA does not take the key.
            let ctx = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ctx(&[1; 256])));
            expect_rv(s.sign(&ctx, private, b"message"), RvError::MechanismParamInvalid);
            expect_rv(s.sign(&Mechanism::Ecdsa, private, &[1; 32]), RvError::KeyTypeInconsistent);
            assert_unchanged(&s, before);
        }

        // RFC 8032 7.1 TEST 2, through imported keys: the signature is deterministic.
        let private = import_private(
            &s,
            KeyType::EC_EDWARDS,
            ED25519_OID,
            hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
            false,
        );
        let public_key = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let expected = hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
        assert_eq!(s.sign(&eddsa(), private, &[0x72]).unwrap(), expected);
        // The key type must match the curve's family, both ways.
        let before = count(&s);
        let mismatched = |kind: KeyType, params: &[u8], point: Vec<u8>| {
            s.create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(kind),
                Attribute::EcParams(params.to_vec()),
                Attribute::EcPoint(point),
            ])
        };
        expect_rv(mismatched(KeyType::EC, ED25519_OID, public_key.clone()), RvError::TemplateInconsistent);
        expect_rv(
            mismatched(KeyType::EC_MONTGOMERY, ED25519_OID, public_key.clone()),
            RvError::TemplateInconsistent,
        );
        let p256_point = [vec![0x04, 0x41, 0x04], vec![1; 64]].concat();
        let p256 = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07][..];
        expect_rv(mismatched(KeyType::EC_EDWARDS, p256, p256_point), RvError::TemplateInconsistent);
        assert_unchanged(&s, before);
        // The public key as the DER OCTET STRING and raw.
        for point in [[&[0x04, 0x20][..], &public_key].concat(), public_key.clone()] {
            let public = import_public(&s, KeyType::EC_EDWARDS, ED25519_NAME, point);
            s.verify(&eddsa(), public, &[0x72], &expected).unwrap();
            expect_rv(s.verify(&eddsa(), public, &[0x73], &expected), RvError::SignatureInvalid);
        }
    }
);

isolated_test!(
    fn x25519_agrees_and_matches_rfc7748() {
        let (p, slot, s) = logged_in();
        let info = p.get_mechanism_info(slot, MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN).unwrap();
        assert!(info.generate_key_pair());
        let info = p.get_mechanism_info(slot, MechanismType::ECDH1_DERIVE).unwrap();
        assert_eq!((info.min_key_size(), info.max_key_size()), (255, 521));

        let (a_public, a) = pair(&s, &Mechanism::EccMontgomeryKeyPairGen, X25519_OID, false);
        let (b_public, b) = pair(&s, &Mechanism::EccMontgomeryKeyPairGen, X25519_NAME, false);
        assert_eq!(key_type(&s, a_public), KeyType::EC_MONTGOMERY);
        let (a_der, a_raw) = ec_point(&s, a_public);
        let (_, b_raw) = ec_point(&s, b_public);
        assert_eq!(a_raw.len(), 32);
        let ab = ecdh_derive(&s, a, &b_raw, 32).unwrap();
        let ba = ecdh_derive(&s, b, &a_der, 32).unwrap();
        assert_eq!(value(&s, ab), value(&s, ba));
        // A small-order peer and an EdDSA signature with an X25519 key are refused.
        let before = count(&s);
        expect_rv(ecdh_derive(&s, a, &[0; 32], 32), RvError::MechanismParamInvalid);
        expect_rv(ecdh_derive(&s, a, &b_raw, 33), RvError::KeySizeRange);
        assert_unchanged(&s, before);

        // RFC 7748 6.1.
        let alice = import_private(
            &s,
            KeyType::EC_MONTGOMERY,
            X25519_OID,
            hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
            true,
        );
        let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = ecdh_derive(&s, alice, &bob_public, 32).unwrap();
        assert_eq!(
            value(&s, shared),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }
);

isolated_test!(
    fn curves_not_offered_are_curve_not_supported_on_generation() {
        let (_p, _slot, s) = logged_in();
        let before = count(&s);
        for (mechanism, params) in [
            (Mechanism::EccKeyPairGen, P192),
            (Mechanism::EccKeyPairGen, BRAINPOOL_P256R1),
            (Mechanism::EccEdwardsKeyPairGen, ED448_OID),
            (Mechanism::EccEdwardsKeyPairGen, P192),
            (Mechanism::EccMontgomeryKeyPairGen, X448_OID),
            (Mechanism::EccMontgomeryKeyPairGen, ED25519_OID),
        ] {
            let result = s.generate_key_pair(
                &mechanism,
                &[Attribute::EcParams(params.to_vec()), Attribute::Token(true)],
                &[Attribute::Token(true)],
            );
            expect_rv(result, RvError::CurveNotSupported);
            assert_unchanged(&s, before);
        }
        // Not a curve name at all.
        let result = s.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::EcParams(vec![0x05, 0x00])],
            &[Attribute::Token(true)],
        );
        expect_rv(result, RvError::AttributeValueInvalid);
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn curve25519_private_keys_wrap_and_unwrap_as_pkcs8() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s);
        let extractable = |params: &[u8], sign: bool| {
            let usage = |private| match (sign, private) {
                (true, true) => Attribute::Sign(true),
                (true, false) => Attribute::Verify(true),
                _ => Attribute::Derive(true),
            };
            let mechanism =
                if sign { Mechanism::EccEdwardsKeyPairGen } else { Mechanism::EccMontgomeryKeyPairGen };
            s.generate_key_pair(
                &mechanism,
                &[Attribute::EcParams(params.to_vec()), usage(false)],
                &[usage(true), Attribute::Sensitive(true), Attribute::Extractable(true)],
            )
            .unwrap()
        };
        let unwrap_template = |kind: KeyType, sign: bool| {
            vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(kind),
                if sign { Attribute::Sign(true) } else { Attribute::Derive(true) },
            ]
        };

        let (public, private) = extractable(ED25519_OID, true);
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, private).unwrap();
        let unwrapped = s
            .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &unwrap_template(KeyType::EC_EDWARDS, true))
            .unwrap();
        assert_eq!(key_type(&s, unwrapped), KeyType::EC_EDWARDS);
        let signature = s.sign(&eddsa(), unwrapped, b"unwrapped").unwrap();
        s.verify(&eddsa(), public, b"unwrapped", &signature).unwrap();
        // The wrapped Ed25519 key is not an EC key.
        let before = count(&s);
        expect_rv(
            s.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &unwrap_template(KeyType::EC, true)),
            RvError::TemplateInconsistent,
        );
        assert_unchanged(&s, before);

        let (a_public, a) = extractable(X25519_OID, false);
        let (b_public, b) = extractable(X25519_OID, false);
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, a).unwrap();
        let a2 = s
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &wrapped,
                &unwrap_template(KeyType::EC_MONTGOMERY, false),
            )
            .unwrap();
        let (_, b_raw) = ec_point(&s, b_public);
        let (_, a_raw) = ec_point(&s, a_public);
        let one = ecdh_derive(&s, a2, &b_raw, 32).unwrap();
        let two = ecdh_derive(&s, b, &a_raw, 32).unwrap();
        assert_eq!(value(&s, one), value(&s, two));
    }
);

isolated_test!(
    /// CKM_ECDH1_DERIVE with SP 800-56A's concatenation KDF (`CKD_SHA256_KDF_SP800`) through
    /// the C ABI: the X25519 case of the `cryptoki` crate's own test suite (an OpenPGP ECDH
    /// parameter string as the other info; the key it expects was computed outside any
    /// token), and a P-256 agreement whose two sides derive the same key under each hashing
    /// KDF the module offers, X9.63 and SP 800-56A, SHA-2 and SHA-3.
    fn ecdh_hashing_kdfs_agree_and_match_a_known_answer() {
        let (_p, _slot, s) = logged_in();
        let key = hex("f00670c5f139e7e6c2511ea04ff507afbbe237ce3c71a89ca59a1c5cf8856562");
        let ephemeral = hex("533b3f09e53b3deed661a13f7a7d9694ab71ce156c728e00dee87a1ee3a14c4a");
        let other_info = hex(
            "0a2b0601040197550105011203010807416e6f6e796d6f75732053656e646572202020205633a4c5ae4305bc0fe2abb699a8ee54632790a0",
        );
        let private = import_private(&s, KeyType::EC_MONTGOMERY, X25519_NAME, key, true);
        let derive = |private, kdf, peer: &[u8], len: u64| {
            let params = Ecdh1DeriveParams::new(kdf, peer);
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(len.into()),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            let key = s.derive_key(&Mechanism::Ecdh1Derive(params), private, &template).unwrap();
            value(&s, key)
        };
        let derived = derive(private, EcKdf::sha256_sp800(&other_info), &ephemeral, 16);
        assert_eq!(derived, hex("af8ce51d0139a6d60831a9babab20186"));

        let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let (a_public, a) = pair(&s, &Mechanism::EccKeyPairGen, &p256, false);
        let (b_public, b) = pair(&s, &Mechanism::EccKeyPairGen, &p256, false);
        let (_, a_point) = ec_point(&s, a_public);
        let (_, b_point) = ec_point(&s, b_public);
        let info = b"shared info".as_slice();
        let mut seen = Vec::new();
        for kdf in [
            EcKdf::sha256(info),
            EcKdf::sha3_256(info),
            EcKdf::sha3_224(info),
            EcKdf::sha256_sp800(info),
            EcKdf::sha512_sp800(info),
            EcKdf::sha3_384_sp800(info),
        ] {
            let ab = derive(a, kdf, &b_point, 48);
            assert_eq!(ab, derive(b, kdf, &a_point, 48), "{kdf:?}");
            assert!(!seen.contains(&ab), "each KDF derives its own key: {kdf:?}");
            seen.push(ab);
        }
    }
);
