//! Post-quantum signatures and the 3.2 interface of PKCS#11 through the built module:
//!
//! 1. ML-DSA (`CKM_ML_DSA_KEY_PAIR_GEN`, `CKM_ML_DSA`) with the `cryptoki` crate's 3.2
//!    support: each parameter set generates, signs and verifies; the token's signatures
//!    verify with aws-lc-rs directly, and aws-lc-rs's keys imported (public `pk`, private
//!    seed and/or `sk`) verify and sign; a deterministic signature is refused (context
//!    strings and HashML-DSA: `mechanisms_ml_dsa_context.rs`).
//! 2. `C_GetMechanismInfo` of ML-DSA and ML-KEM.
//! 3. The 3.2 interface (`C_GetInterface` with version 3.2) beside 3.0 and 2.40; its new
//!    functions that the module does not offer answer `CKR_FUNCTION_NOT_SUPPORTED`.
//!
//! ML-KEM is `mechanisms_pq_kem.rs`. After each refusal the test checks that the objects are
//! the same and the session works.
#![allow(unsafe_code)]

mod common;
mod pq_support;
use common::raw::load_raw;
use common::*;
use pq_support::*;

use std::ptr::null_mut;

use aws_lc_rs::encoding::AsRawBytes;
use aws_lc_rs::signature::{self as sig, KeyPair, PqdsaKeyPair, UnparsedPublicKey};
use cryptoki::error::RvError;
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
    ParameterSetType,
};
use cryptoki::types::Ulong;
use cryptoki_sys::*;

isolated_test!(
    fn ml_dsa_each_parameter_set_generates_signs_and_verifies() {
        let (_p, _slot, s) = logged_in();
        for (set, pk_len, sig_len) in ML_DSA_SETS {
            let (public, private) = dsa_pair(&s, set);
            let pk = value(&s, public);
            assert_eq!(pk.len(), pk_len);
            // The private key has its parameter set, and its value and seed stay inside.
            let read = s
                .get_attributes(
                    private,
                    &[AttributeType::ParameterSet, AttributeType::Value, AttributeType::Seed],
                )
                .unwrap();
            assert_eq!(read, vec![Attribute::ParameterSet(set.into())], "sk and the seed are sensitive");
            let info = s.get_attributes(public, &[AttributeType::PublicKeyInfo]).unwrap();
            let [Attribute::PublicKeyInfo(spki)] = info.as_slice() else { panic!("no CKA_PUBLIC_KEY_INFO") };
            assert!(spki.ends_with(&pk), "the SubjectPublicKeyInfo holds pk");

            let message = b"post-quantum message";
            let signature = s.sign(&ml_dsa(), private, message).unwrap();
            assert_eq!(signature.len(), sig_len);
            // aws-lc-rs, outside the token, accepts the token's signature.
            UnparsedPublicKey::new(aws_lc_algorithm(set), &pk).verify(message, &signature).unwrap();
            s.verify(&ml_dsa(), public, message, &signature).unwrap();
            // The hedge variant is ignored on verification (3.2).
            let deterministic =
                Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::DeterministicRequired, None));
            s.verify(&deterministic, public, message, &signature).unwrap();
            let mut bad = signature.clone();
            bad[10] ^= 1;
            expect_rv(s.verify(&ml_dsa(), public, message, &bad), RvError::SignatureInvalid);
            expect_rv(s.verify(&ml_dsa(), public, message, &signature[1..]), RvError::SignatureLenRange);
            // Hedged: the same message signs differently each time, and both verify.
            let hedged = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, None));
            let again = s.sign(&hedged, private, message).unwrap();
            assert_ne!(again, signature);
            s.verify(&ml_dsa(), public, message, &again).unwrap();
        }
    }
);

isolated_test!(
    fn ml_dsa_keys_of_aws_lc_import_and_interoperate() {
        let (_p, _slot, s) = logged_in();
        let seed = [0x5a_u8; 32];
        let theirs = PqdsaKeyPair::from_seed(&sig::ML_DSA_65_SIGNING, &seed).unwrap();
        let pk = theirs.public_key().as_ref().to_vec();
        let sk = theirs.private_key().as_raw_bytes().unwrap().as_ref().to_vec();
        let set: ParameterSetType = MlDsaParameterSetType::ML_DSA_65.into();
        let public = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::ML_DSA),
                Attribute::ParameterSet(set),
                Attribute::Value(pk.clone()),
                Attribute::Verify(true),
            ])
            .unwrap();
        let mut signature = vec![0; sig::ML_DSA_65_SIGNING.signature_len()];
        theirs.sign(b"signed outside", &mut signature).unwrap();
        s.verify(&ml_dsa(), public, b"signed outside", &signature).unwrap();

        let private_template = |extra: Vec<Attribute>| {
            let mut t = vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::ML_DSA),
                Attribute::ParameterSet(set),
                Attribute::Sign(true),
            ];
            t.extend(extra);
            t
        };
        // From the seed, from sk, and from both: each key signs what aws-lc-rs verifies.
        for extra in [
            vec![Attribute::Seed(seed.to_vec())],
            vec![Attribute::Value(sk.clone())],
            vec![Attribute::Seed(seed.to_vec()), Attribute::Value(sk.clone())],
        ] {
            let private = s.create_object(&private_template(extra)).unwrap();
            let signature = s.sign(&ml_dsa(), private, b"signed inside").unwrap();
            UnparsedPublicKey::new(&sig::ML_DSA_65, &pk).verify(b"signed inside", &signature).unwrap();
        }

        // Refused imports, each changing nothing.
        let before = count(&s);
        let mut other_sk = sk.clone();
        other_sk[100] ^= 1;
        let refusals: Vec<(Vec<Attribute>, RvError)> = vec![
            // A seed that does not give the sk beside it.
            (
                private_template(vec![Attribute::Seed(vec![1; 32]), Attribute::Value(sk.clone())]),
                RvError::AttributeValueInvalid,
            ),
            (private_template(vec![Attribute::Seed(vec![1; 31])]), RvError::AttributeValueInvalid),
            (private_template(vec![Attribute::Value(sk[1..].to_vec())]), RvError::AttributeValueInvalid),
            // Neither seed nor sk.
            (private_template(vec![]), RvError::TemplateIncomplete),
            // pk of another parameter set's length; an unknown parameter set; none.
            (
                vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::ML_DSA),
                    Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_44.into()),
                    Attribute::Value(pk.clone()),
                ],
                RvError::AttributeValueInvalid,
            ),
            (
                vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::ML_DSA),
                    Attribute::ParameterSet(ParameterSetType::try_from(Ulong::new(9)).unwrap()),
                    Attribute::Value(pk.clone()),
                ],
                RvError::AttributeValueInvalid,
            ),
            (
                vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::ML_DSA),
                    Attribute::Value(pk.clone()),
                ],
                RvError::TemplateIncomplete,
            ),
        ];
        for (template, expected) in refusals {
            expect_rv(s.create_object(&template), expected);
            assert_unchanged(&s, before);
        }
    }
);

isolated_test!(
    fn ml_dsa_refuses_what_aws_lc_cannot_do_and_bad_templates() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let (kem_public, _) = kem_pair(&s, MlKemParameterSetType::ML_KEM_512);
        let before = count(&s);
        // Context strings are mechanisms_ml_dsa_context.rs's. A deterministic signature (FIPS
        // 204's rnd = 0) is the same each time and pure ML-DSA (aws-lc-rs verifies it); a
        // hedged one is not.
        let deterministic =
            Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::DeterministicRequired, None));
        let once = s.sign(&deterministic, private, b"m").unwrap();
        assert_eq!(s.sign(&deterministic, private, b"m").unwrap(), once);
        s.verify(&ml_dsa(), public, b"m", &once).unwrap();
        let Attribute::Value(pk) = s.get_attributes(public, &[AttributeType::Value]).unwrap().remove(0)
        else {
            panic!("no CKA_VALUE")
        };
        UnparsedPublicKey::new(aws_lc_algorithm(MlDsaParameterSetType::ML_DSA_44), &pk)
            .verify(b"m", &once)
            .unwrap();
        assert_ne!(s.sign(&ml_dsa(), private, b"m").unwrap(), once);
        assert_unchanged(&s, before);
        let signature = s.sign(&ml_dsa(), private, b"m").unwrap();
        // An ML-KEM key is no ML-DSA key. A signature in parts is the signature of the whole
        // message, and CKM_ML_DSA verifies in parts too (the 3.2 table marks it multi-part).
        expect_rv(s.verify(&ml_dsa(), kem_public, b"m", &signature), RvError::KeyTypeInconsistent);
        s.sign_init(&ml_dsa(), private).unwrap();
        s.sign_update(b"multi-").unwrap();
        s.sign_update(b"part").unwrap();
        let in_parts = s.sign_final().unwrap();
        s.verify(&ml_dsa(), public, b"multi-part", &in_parts).unwrap();
        s.verify_init(&ml_dsa(), public).unwrap();
        s.verify_update(b"multi").unwrap();
        s.verify_update(b"-part").unwrap();
        s.verify_final(&in_parts).unwrap();
        s.verify_init(&ml_dsa(), public).unwrap();
        s.verify_update(b"multi-parT").unwrap();
        expect_rv(s.verify_final(&in_parts), RvError::SignatureInvalid);
        // Generation needs a known parameter set in the public template, and none in the private.
        let generate = |public: Vec<Attribute>, private: Vec<Attribute>| {
            s.generate_key_pair(&Mechanism::MlDsaKeyPairGen, &public, &private)
        };
        expect_rv(generate(vec![Attribute::Token(true)], vec![]), RvError::TemplateIncomplete);
        let unknown = ParameterSetType::try_from(Ulong::new(4)).unwrap();
        expect_rv(generate(vec![Attribute::ParameterSet(unknown)], vec![]), RvError::AttributeValueInvalid);
        let set: ParameterSetType = MlDsaParameterSetType::ML_DSA_44.into();
        expect_rv(
            generate(vec![Attribute::ParameterSet(set)], vec![Attribute::ParameterSet(set)]),
            RvError::TemplateInconsistent,
        );
        expect_rv(
            generate(vec![Attribute::ParameterSet(set), Attribute::Value(vec![0; 1312])], vec![]),
            RvError::TemplateInconsistent,
        );
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn mechanism_info_gives_public_key_byte_ranges() {
        let (p, slot, _s) = logged_in();
        let list = p.get_mechanism_list(slot).unwrap();
        for (m, min, max, flags) in [
            (MechanismType::ML_DSA_KEY_PAIR_GEN, 1312, 2592, CKF_GENERATE_KEY_PAIR),
            (MechanismType::ML_DSA, 1312, 2592, CKF_SIGN | CKF_VERIFY),
            (MechanismType::ML_KEM_KEY_PAIR_GEN, 800, 1568, CKF_GENERATE_KEY_PAIR),
            (MechanismType::ML_KEM, 800, 1568, CKF_ENCAPSULATE | CKF_DECAPSULATE),
        ] {
            assert!(list.contains(&m), "{m} listed");
            let info = p.get_mechanism_info(slot, m).unwrap();
            assert_eq!((info.min_key_size(), info.max_key_size()), (min, max), "{m}");
            let mut raw = CK_MECHANISM_INFO::default();
            let lib = load_raw();
            // SAFETY: out-pointer to a live local.
            assert_eq!(unsafe { lib.C_GetMechanismInfo(slot.id(), *m, &mut raw) }, CKR_OK);
            assert_eq!(raw.flags, flags, "{m}");
        }
    }
);

// ---------------------------------------------------------------------------------------
// The 3.2 interface.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn the_3_2_interface_lists_every_function() {
        let lib = load_raw();
        let list = list_3_2();
        // Every entry is set: the structure is the version, then one pointer per function.
        // SAFETY: reading the list's bytes as pointers, which is what it is made of after the version.
        let entries = (std::mem::size_of::<CK_FUNCTION_LIST_3_2>()
            - std::mem::offset_of!(CK_FUNCTION_LIST_3_2, C_Initialize))
            / std::mem::size_of::<usize>();
        let base = std::ptr::from_ref(list).cast::<u8>();
        for i in 0..entries {
            // SAFETY: within the structure, at a pointer-aligned offset of a function entry.
            let entry = unsafe {
                base.add(
                    std::mem::offset_of!(CK_FUNCTION_LIST_3_2, C_Initialize)
                        + i * std::mem::size_of::<usize>(),
                )
                .cast::<usize>()
                .read()
            };
            assert_ne!(entry, 0, "entry {i} of the 3.2 list is NULL");
        }
        assert_eq!(
            list.C_EncapsulateKey.map(|f| f as usize),
            lib.C_EncapsulateKey.as_ref().ok().map(|f| *f as usize)
        );
        assert_eq!(
            list.C_DecapsulateKey.map(|f| f as usize),
            lib.C_DecapsulateKey.as_ref().ok().map(|f| *f as usize)
        );
        // The 3.2 functions not offered answer so, whatever their arguments.
        // SAFETY: these functions read none of their arguments.
        unsafe {
            assert_eq!(
                (list.C_GetSessionValidationFlags.unwrap())(1, 0, null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!((list.C_AsyncGetID.unwrap())(1, null_mut(), null_mut()), CKR_FUNCTION_NOT_SUPPORTED);
            let wrap = list.C_WrapKeyAuthenticated.unwrap();
            assert_eq!(
                wrap(1, null_mut(), 1, 2, null_mut(), 0, null_mut(), null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );
        }
        // The functions the other lists share are the same exports.
        assert_eq!(list.C_Sign.map(|f| f as usize), lib.C_Sign.as_ref().ok().map(|f| *f as usize));
        // The verification with the signature first is offered: before C_Initialize it is
        // refused like any call (tests/verify_signature.rs tests it).
        // SAFETY: a NULL mechanism and signature of length 0, read as such.
        unsafe {
            assert_eq!(
                (list.C_VerifySignatureInit.unwrap())(1, null_mut(), 1, null_mut(), 0),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
            assert_eq!((list.C_VerifySignature.unwrap())(1, null_mut(), 0), CKR_CRYPTOKI_NOT_INITIALIZED);
            assert_eq!((list.C_VerifySignatureFinal.unwrap())(1), CKR_CRYPTOKI_NOT_INITIALIZED);
        }
        // Before C_Initialize, encapsulation is refused like any call.
        let mut m = kem_mechanism();
        let (mut len, mut key) = (0 as CK_ULONG, 0);
        // SAFETY: live mechanism and out-pointers; a NULL template of length 0.
        let rv = unsafe {
            (list.C_EncapsulateKey.unwrap())(1, &mut m, 1, null_mut(), 0, null_mut(), &mut len, &mut key)
        };
        assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    }
);
