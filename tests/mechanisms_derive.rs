//! Secret-key derivations through `C_DeriveKey` of the built module:
//!
//! 1. The simple derivations (CKM_CONCATENATE_BASE_AND_KEY, _BASE_AND_DATA, _DATA_AND_BASE,
//!    CKM_XOR_BASE_AND_DATA, CKM_EXTRACT_KEY_FROM_KEY) and CKM_AES_ECB_ENCRYPT_DATA /
//!    CKM_AES_CBC_ENCRYPT_DATA, with known answers (FIPS 197, SP 800-38A, the standard's
//!    extraction example).
//! 2. HKDF (RFC 5869 A.1) with the salt as data and as a key, extract and expand separately.
//! 3. SP 800-108 counter and feedback KDFs (known answers computed by OpenSSL 3's KBKDF).
//! 4. The attributes of derived keys: CKA_LOCAL false, CKA_ALWAYS_SENSITIVE and
//!    CKA_NEVER_EXTRACTABLE from the base, and the base key's protection passed on — attack:
//!    reading a sensitive key through a copy (XOR with zeros, concatenation with nothing)
//!    fails, and nothing is created.
//! 5. A mechanism the module does not derive with is CKR_MECHANISM_INVALID, whatever the
//!    template.
#![allow(unsafe_code)]

mod common;
use common::keys::secret_key;
use common::objects::{count, flag, value};
use common::raw::{self, attr, attr_bytes};
use common::*;

use std::ffi::c_void;
use std::num::NonZeroUsize;

use cryptoki::error::RvError;
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::kbkdf::{
    Endianness, KbkdfCounterFormat, KbkdfDkmLengthFormat, KbkdfDkmLengthMethod, KbkdfFeedbackParams,
    KbkdfParams, PrfDataParam, PrfDataParamType,
};
use cryptoki::mechanism::misc::{ExtractParams, KeyDerivationStringData};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys as sys;

/// A secret key that may derive, extractable and not sensitive unless asked.
fn secret(s: &Session, key_type: KeyType, value: &[u8], sensitive: bool) -> ObjectHandle {
    let extra = [Attribute::Derive(true), Attribute::Sensitive(sensitive), Attribute::Extractable(true)];
    secret_key(s, key_type, value, &extra)
}

/// The template of a readable generic secret of `len` bytes.
fn readable(len: u64) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(len.into()),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// The template of a readable generic secret whose length the mechanism decides.
fn readable_any() -> Vec<Attribute> {
    let mut t = readable(0);
    t.remove(2);
    t
}

isolated_test!(
    fn simple_derivations_match_their_definitions() {
        let (_p, _slot, s) = logged_in();
        let base = secret(&s, KeyType::GENERIC_SECRET, &[0x32, 0x9f, 0x84, 0xa9], false);
        let other = secret(&s, KeyType::GENERIC_SECRET, &[1, 2], false);
        let data = [0xff, 0x00, 0x0f];
        let derive =
            |m: &Mechanism, template: &[Attribute]| value(&s, s.derive_key(m, base, template).unwrap());

        let concat = Mechanism::ConcatenateBaseAndKey(other);
        assert_eq!(derive(&concat, &readable(6)), [0x32, 0x9f, 0x84, 0xa9, 1, 2]);
        // Without a length, the whole concatenation.
        assert_eq!(derive(&concat, &readable_any()), [0x32, 0x9f, 0x84, 0xa9, 1, 2]);
        let d = KeyDerivationStringData::new(&data);
        assert_eq!(
            derive(&Mechanism::ConcatenateBaseAndData(d), &readable(7)),
            [0x32, 0x9f, 0x84, 0xa9, 0xff, 0x00, 0x0f]
        );
        assert_eq!(
            derive(&Mechanism::ConcatenateDataAndBase(d), &readable(5)),
            [0xff, 0x00, 0x0f, 0x32, 0x9f]
        );
        assert_eq!(derive(&Mechanism::XorBaseAndData(d), &readable(3)), [0xcd, 0x9f, 0x8b]);
        let extract = Mechanism::ExtractKeyFromKey(ExtractParams::new(21));
        assert_eq!(derive(&extract, &readable(2)), [0x95, 0x26]);

        // Derived keys: not local, no generation mechanism.
        let key = s.derive_key(&Mechanism::XorBaseAndData(d), base, &readable(3)).unwrap();
        assert!(!flag(&s, key, AttributeType::Local));
        assert!(!flag(&s, key, AttributeType::AlwaysSensitive));

        // More than the mechanism gives is inconsistent; nothing is created.
        let before = count(&s);
        expect_rv(
            s.derive_key(&Mechanism::XorBaseAndData(d), base, &readable(4)),
            RvError::TemplateInconsistent,
        );
        expect_rv(s.derive_key(&extract, base, &readable(5)), RvError::TemplateInconsistent);
        expect_rv(
            s.derive_key(&Mechanism::ExtractKeyFromKey(ExtractParams::new(32)), base, &readable(1)),
            RvError::MechanismParamInvalid,
        );
        assert_eq!(count(&s), before);

        // FIPS 197 C.1 (ECB, raw: cryptoki 0.12 has no CKM_AES_ECB_ENCRYPT_DATA) and SP 800-38A F.2.1 (CBC).
        let aes = secret(&s, KeyType::AES, &hex("000102030405060708090a0b0c0d0e0f"), false);
        let raw = raw::load_raw();
        let plain = hex("00112233445566778899aabbccddeeff");
        let mut string = sys::CK_KEY_DERIVATION_STRING_DATA { pData: plain.as_ptr() as *mut u8, ulLen: 16 };
        let mut m = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_ECB_ENCRYPT_DATA,
            pParameter: &mut string as *mut _ as *mut c_void,
            ulParameterLen: size_of::<sys::CK_KEY_DERIVATION_STRING_DATA>() as sys::CK_ULONG,
        };
        let (class, kind, len, no, yes) =
            (sys::CKO_SECRET_KEY, sys::CKK_GENERIC_SECRET, 16 as sys::CK_ULONG, raw::FALSE, raw::TRUE);
        let mut template = [
            attr(sys::CKA_CLASS, &class),
            attr(sys::CKA_KEY_TYPE, &kind),
            attr(sys::CKA_VALUE_LEN, &len),
            attr(sys::CKA_SENSITIVE, &no),
            attr(sys::CKA_EXTRACTABLE, &yes),
        ];
        let mut derived = sys::CK_INVALID_HANDLE;
        // SAFETY: the mechanism, its parameter and the template are live locals.
        let rv = unsafe {
            raw.C_DeriveKey(
                s.handle(),
                &mut m,
                aes.handle(),
                template.as_mut_ptr(),
                template.len() as sys::CK_ULONG,
                &mut derived,
            )
        };
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(
            raw::read_bytes(&raw, s.handle(), derived, sys::CKA_VALUE),
            hex("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
        let _ = attr_bytes;

        let sp = secret(&s, KeyType::AES, &hex("2b7e151628aed2a6abf7158809cf4f3c"), false);
        let blocks = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let cbc = Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new(iv, &blocks));
        let key = s.derive_key(&cbc, sp, &readable(32)).unwrap();
        assert_eq!(value(&s, key), hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"));
        // An AES key of the first 16 bytes, its length from the template.
        let aes_key = s
            .derive_key(
                &cbc,
                sp,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(16.into()),
                ],
            )
            .unwrap();
        let cipher = s.encrypt(&Mechanism::AesEcb, aes_key, &[0; 16]).unwrap();
        assert_eq!(cipher.len(), 16);
        // The base must be an AES key.
        let before = count(&s);
        expect_rv(s.derive_key(&cbc, base, &readable(16)), RvError::KeyTypeInconsistent);
        assert_eq!(count(&s), before);
    }
);

isolated_test!(
    fn hkdf_matches_rfc5869() {
        let (p, slot, s) = logged_in();
        let info = p.get_mechanism_info(slot, MechanismType::HKDF_DERIVE).unwrap();
        assert!(info.derive());
        let ikm = secret(&s, KeyType::GENERIC_SECRET, &[0x0b; 22], false);
        let salt = hex("000102030405060708090a0b0c");
        let context = hex("f0f1f2f3f4f5f6f7f8f9");
        let okm = hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
        let prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        let both = Mechanism::HkdfDerive(HkdfParams::new(
            MechanismType::SHA256,
            Some(HkdfSalt::Data(&salt)),
            Some(&context),
        ));
        assert_eq!(value(&s, s.derive_key(&both, ikm, &readable(42)).unwrap()), okm);
        // The salt as a key.
        let salt_key = secret(&s, KeyType::GENERIC_SECRET, &salt, false);
        let keyed = Mechanism::HkdfDerive(HkdfParams::new(
            MechanismType::SHA256,
            Some(HkdfSalt::Key(salt_key)),
            Some(&context),
        ));
        assert_eq!(value(&s, s.derive_key(&keyed, ikm, &readable(42)).unwrap()), okm);
        // Extract, then expand the pseudorandom key.
        let extract =
            Mechanism::HkdfDerive(HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Data(&salt)), None));
        let prk_key =
            s.derive_key(&extract, ikm, &[readable_any(), vec![Attribute::Derive(true)]].concat()).unwrap();
        assert_eq!(value(&s, prk_key), prk);
        let expand = Mechanism::HkdfDerive(HkdfParams::new(MechanismType::SHA256, None, Some(&context)));
        assert_eq!(value(&s, s.derive_key(&expand, prk_key, &readable(42)).unwrap()), okm);
        // Expansion needs a length; SHA-224 is not offered.
        let before = count(&s);
        expect_rv(s.derive_key(&both, ikm, &readable_any()), RvError::TemplateIncomplete);
        let sha224 = Mechanism::HkdfDerive(HkdfParams::new(
            MechanismType::SHA224,
            Some(HkdfSalt::Null),
            Some(&context),
        ));
        expect_rv(s.derive_key(&sha224, ikm, &readable(32)), RvError::MechanismParamInvalid);
        assert_eq!(count(&s), before);
    }
);

/// The fixed input after the iteration data: Label ‖ 0x00 ‖ Context (OpenSSL's layout).
fn tail(mut first: Vec<PrfDataParam<'_>>) -> Vec<PrfDataParam<'_>> {
    first.push(PrfDataParam::new(PrfDataParamType::ByteArray(b"label")));
    first.push(PrfDataParam::new(PrfDataParamType::ByteArray(&[0])));
    first.push(PrfDataParam::new(PrfDataParamType::ByteArray(b"context")));
    first
}

isolated_test!(
    fn sp800_108_counter_and_feedback_match_openssl() {
        let (_p, _slot, s) = logged_in();
        let key = secret(&s, KeyType::GENERIC_SECRET, &(0u8..32).collect::<Vec<_>>(), false);
        let counter = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(32).unwrap());
        let dkm = KbkdfDkmLengthFormat::new(
            KbkdfDkmLengthMethod::SumOfKeys,
            Endianness::Big,
            NonZeroUsize::new(32).unwrap(),
        );
        let mut data = tail(vec![PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&counter)))]);
        data.push(PrfDataParam::new(PrfDataParamType::DkmLength(&dkm)));
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::SHA256_HMAC, &data, None));
        assert_eq!(
            value(&s, s.derive_key(&m, key, &readable(40)).unwrap()),
            hex("c5115a8e2c9cf655fabbfecbe725e440a9838838f5b46130c654f368f780edd650d532c0fdeb6a35")
        );
        let mut data = tail(vec![
            PrfDataParam::new(PrfDataParamType::IterationVariable(None)),
            PrfDataParam::new(PrfDataParamType::Counter(&counter)),
        ]);
        data.push(PrfDataParam::new(PrfDataParamType::DkmLength(&dkm)));
        let iv: Vec<u8> = (0xa0u8..0xc0).collect();
        let m = Mechanism::KbkdfFeedback(KbkdfFeedbackParams::new(
            MechanismType::SHA256_HMAC,
            &data,
            Some(&iv),
            None,
        ));
        assert_eq!(
            value(&s, s.derive_key(&m, key, &readable(40)).unwrap()),
            hex("429d4a1f9b421653d084fd6ab43e90f9b9c51c5f4cc5f6001d37b614fade3bffc70f88ab29314deb")
        );
        // No iteration variable: refused, nothing created.
        let before = count(&s);
        let bad = tail(vec![]);
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::SHA256_HMAC, &bad, None));
        expect_rv(s.derive_key(&m, key, &readable(32)), RvError::MechanismParamInvalid);
        assert_eq!(count(&s), before);
    }
);

isolated_test!(
    /// Attack: a sensitive or unextractable key copied by a derivation whose output is the
    /// key itself. The copy stays sensitive (its value unreadable) and a template asking for
    /// a readable copy is refused, creating nothing.
    fn derivation_passes_protection_on() {
        let (_p, _slot, s) = logged_in();
        let raw = raw::load_raw();
        let secret_value = [0x5a; 16];
        let base = secret(&s, KeyType::GENERIC_SECRET, &secret_value, true);
        let zeros = [0u8; 16];
        let copy = Mechanism::XorBaseAndData(KeyDerivationStringData::new(&zeros));
        let nothing = Mechanism::ConcatenateBaseAndData(KeyDerivationStringData::new(&[]));
        let before = count(&s);
        for m in [&copy, &nothing, &Mechanism::ExtractKeyFromKey(ExtractParams::new(0))] {
            expect_rv(s.derive_key(m, base, &readable(16)), RvError::TemplateInconsistent);
        }
        assert_eq!(count(&s), before, "a refused derivation created a key");
        // Without a sensitivity in the template the copy is made sensitive.
        let derived = s.derive_key(&copy, base, &readable(16)[..3]).unwrap();
        assert!(flag(&s, derived, AttributeType::Sensitive));
        let mut t = [raw::query(sys::CKA_VALUE)];
        // SAFETY: a query entry with a NULL value.
        let rv = unsafe { raw.C_GetAttributeValue(s.handle(), derived.handle(), t.as_mut_ptr(), 1) };
        assert_eq!(rv, sys::CKR_ATTRIBUTE_SENSITIVE);
        // CKA_ALWAYS_SENSITIVE follows the base's (false: it was created, not generated).
        assert!(!flag(&s, derived, AttributeType::AlwaysSensitive));

        // An unextractable base gives an unextractable key.
        let locked = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(secret_value.to_vec()),
                Attribute::Derive(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(false),
            ])
            .unwrap();
        let before = count(&s);
        expect_rv(s.derive_key(&copy, locked, &readable(16)), RvError::TemplateInconsistent);
        assert_eq!(count(&s), before);
        let derived = s.derive_key(&copy, locked, &readable(16)[..3]).unwrap();
        assert!(!flag(&s, derived, AttributeType::Extractable));

        // A generated, sensitive base: the derived key is always sensitive, never extractable.
        let generated = s
            .generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[
                    Attribute::ValueLen(16.into()),
                    Attribute::Derive(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                ],
            )
            .unwrap();
        let derived = s.derive_key(&copy, generated, &readable(16)[..3]).unwrap();
        assert!(flag(&s, derived, AttributeType::AlwaysSensitive));
        assert!(flag(&s, derived, AttributeType::NeverExtractable));
        assert!(!flag(&s, derived, AttributeType::Local));

        // CKM_CONCATENATE_BASE_AND_KEY: the second key's protection counts too.
        let open = secret(&s, KeyType::GENERIC_SECRET, &[1; 8], false);
        let with_sensitive = Mechanism::ConcatenateBaseAndKey(base);
        let before = count(&s);
        expect_rv(s.derive_key(&with_sensitive, open, &readable(24)), RvError::TemplateInconsistent);
        assert_eq!(count(&s), before);
        let joined = s.derive_key(&with_sensitive, open, &readable(24)[..3]).unwrap();
        assert!(flag(&s, joined, AttributeType::Sensitive));
        // Without class, key type or length: a generic secret as long as both keys.
        let plain = s.derive_key(&Mechanism::ConcatenateBaseAndKey(open), open, &[]).unwrap();
        assert_eq!(
            s.get_attributes(plain, &[AttributeType::Class, AttributeType::KeyType, AttributeType::ValueLen])
                .unwrap(),
            [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(16.into())
            ]
        );

        // AES encrypt-data is held to the same rule (an encryption oracle otherwise).
        let aes = secret(&s, KeyType::AES, &[3; 16], true);
        let block = [0u8; 16];
        let ecb_like = Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new([0; 16], &block));
        let before = count(&s);
        expect_rv(s.derive_key(&ecb_like, aes, &readable(16)), RvError::TemplateInconsistent);
        assert_eq!(count(&s), before);

        // HKDF is one-way: a CKK_HKDF key from CKM_HKDF_KEY_GEN, sensitive, may give a readable
        // key; it is neither always sensitive nor never extractable.
        let hkdf_key = s
            .generate_key(
                &Mechanism::HkdfKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Derive(true), Attribute::Sensitive(true)],
            )
            .unwrap();
        assert_eq!(
            s.get_attributes(hkdf_key, &[AttributeType::KeyType]).unwrap(),
            [Attribute::KeyType(KeyType::HKDF)]
        );
        let expand =
            Mechanism::HkdfDerive(HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(b"i")));
        let out = s.derive_key(&expand, hkdf_key, &readable(32)).unwrap();
        assert_eq!(value(&s, out).len(), 32);
        assert!(!flag(&s, out, AttributeType::AlwaysSensitive));
    }
);

isolated_test!(
    fn unsupported_derive_mechanisms_are_mechanism_invalid() {
        let (_p, _slot, s) = logged_in();
        let base = secret(&s, KeyType::GENERIC_SECRET, &[1; 16], false);
        let before = count(&s);
        // Even with an empty template (which would be incomplete for a supported one).
        for m in [Mechanism::Sha256, Mechanism::Sha256KeyGen, Mechanism::AesEcb] {
            expect_rv(s.derive_key(&m, base, &[]), RvError::MechanismInvalid);
        }
        assert_eq!(count(&s), before);
    }
);
