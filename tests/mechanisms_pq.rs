//! Post-quantum mechanisms of PKCS#11 3.2 through the built module:
//!
//! 1. ML-DSA (`CKM_ML_DSA_KEY_PAIR_GEN`, `CKM_ML_DSA`) with the `cryptoki` crate's 3.2
//!    support: each parameter set generates, signs and verifies; the token's signatures
//!    verify with aws-lc-rs directly, and aws-lc-rs's keys imported (public `pk`, private
//!    seed and/or `sk`) verify and sign; what aws-lc-rs cannot do is refused.
//! 2. ML-KEM (`CKM_ML_KEM_KEY_PAIR_GEN`, `CKM_ML_KEM`) through `C_EncapsulateKey` and
//!    `C_DecapsulateKey` of the 3.2 function list: both shared secrets become AES keys that
//!    agree (an AES-GCM round trip), and bad lengths, templates and keys are refused.
//! 3. The 3.2 interface (`C_GetInterface` with version 3.2) beside 3.0 and 2.40; its new
//!    functions that the module does not offer answer `CKR_FUNCTION_NOT_SUPPORTED`.
//! 4. The same through the key service (client mode), and the attacks: private values and
//!    seeds are not readable, not wrappable and not stored in clear.
//!
//! The `cryptoki` crate takes the interface `C_GetInterface(NULL, NULL)` gives, which stays
//! 3.0 (see `src/abi/function_list.rs`), so encapsulation is called through the 3.2 list
//! the module hands out for version 3.2, on sessions and keys made with `cryptoki`.
//!
//! After each refusal the test checks that the objects are the same and the session works.
#![allow(unsafe_code)]

mod common;
mod service_support;
use common::raw::load_raw;
use common::*;

use std::ptr::null_mut;

use aws_lc_rs::encoding::AsRawBytes;
use aws_lc_rs::signature::{self as sig, KeyPair, PqdsaKeyPair, UnparsedPublicKey};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
    ObjectHandle, ParameterSetType,
};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::Ulong;
use cryptoki_sys::*;

fn setup() -> (Pkcs11, Slot, Session) {
    let (p, slot) = load_with_token();
    let s = user_session(&p, slot);
    (p, slot, s)
}

fn count(s: &Session) -> usize {
    s.find_objects(&[]).unwrap().len()
}

#[track_caller]
fn assert_unchanged(s: &Session, before: usize) {
    assert_eq!(count(s), before, "a refused call changed the objects");
    assert_eq!(s.digest(&Mechanism::Sha256, b"abc").unwrap().len(), 32, "the session is unusable");
}

const ML_DSA_SETS: [(MlDsaParameterSetType, usize, usize); 3] = [
    (MlDsaParameterSetType::ML_DSA_44, 1312, 2420),
    (MlDsaParameterSetType::ML_DSA_65, 1952, 3309),
    (MlDsaParameterSetType::ML_DSA_87, 2592, 4627),
];

fn ml_dsa() -> Mechanism<'static> {
    Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None))
}

fn dsa_pair(s: &Session, set: MlDsaParameterSetType) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::ParameterSet(set.into()), Attribute::Token(true), Attribute::Verify(true)],
        &[Attribute::Token(true), Attribute::Sensitive(true), Attribute::Sign(true)],
    )
    .unwrap()
}

fn kem_pair(s: &Session, set: MlKemParameterSetType) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::MlKemKeyPairGen,
        &[Attribute::ParameterSet(set.into()), Attribute::Token(true), Attribute::Encapsulate(true)],
        &[Attribute::Token(true), Attribute::Sensitive(true), Attribute::Decapsulate(true)],
    )
    .unwrap()
}

fn value(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(h, &[AttributeType::Value]).unwrap().as_slice() {
        [Attribute::Value(v)] => v.clone(),
        other => panic!("no readable CKA_VALUE: {other:?}"),
    }
}

fn aws_lc_algorithm(set: MlDsaParameterSetType) -> &'static sig::PqdsaVerificationAlgorithm {
    match *set.as_ref() {
        CKP_ML_DSA_44 => &sig::ML_DSA_44,
        CKP_ML_DSA_65 => &sig::ML_DSA_65,
        _ => &sig::ML_DSA_87,
    }
}

isolated_test!(
    fn ml_dsa_each_parameter_set_generates_signs_and_verifies() {
        let (_p, _slot, s) = setup();
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
        let (_p, _slot, s) = setup();
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
        let (_p, _slot, s) = setup();
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let (kem_public, _) = kem_pair(&s, MlKemParameterSetType::ML_KEM_512);
        let before = count(&s);
        let context = b"application context";
        for refused in [
            Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, Some(context))),
            Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::DeterministicRequired, None)),
        ] {
            expect_rv(s.sign(&refused, private, b"m"), RvError::MechanismParamInvalid);
            assert_unchanged(&s, before);
        }
        let signature = s.sign(&ml_dsa(), private, b"m").unwrap();
        let with_context = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, Some(context)));
        expect_rv(s.verify(&with_context, public, b"m", &signature), RvError::MechanismParamInvalid);
        // An ML-KEM key is no ML-DSA key; ML-DSA is single-part.
        expect_rv(s.verify(&ml_dsa(), kem_public, b"m", &signature), RvError::KeyTypeInconsistent);
        s.sign_init(&ml_dsa(), private).unwrap();
        expect_rv(s.sign_update(b"part"), RvError::MechanismInvalid);
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
        let (p, slot, _s) = setup();
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
        // HashML-DSA and external mu are not offered.
        expect_rv(p.get_mechanism_info(slot, MechanismType::HASH_ML_DSA), RvError::MechanismInvalid);
    }
);

// ---------------------------------------------------------------------------------------
// ML-KEM through the 3.2 function list.
// ---------------------------------------------------------------------------------------

/// The 3.2 function list, as `C_GetInterface("PKCS 11", {3, 2})` hands it out.
fn list_3_2() -> &'static CK_FUNCTION_LIST_3_2 {
    let lib = load_raw();
    let mut version = CK_VERSION { major: 3, minor: 2 };
    let mut name = *b"PKCS 11\0";
    let mut interface: *mut CK_INTERFACE = null_mut();
    // SAFETY: a NUL-terminated name, a live version and out-pointer.
    let rv = unsafe { lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut interface, 0) };
    assert_eq!(rv, CKR_OK);
    // SAFETY: the module's static interface table; a 3.2 interface points to a 3.2 list.
    let list = unsafe { &*((*interface).pFunctionList as *const CK_FUNCTION_LIST_3_2) };
    assert_eq!((list.version.major, list.version.minor), (3, 2));
    list
}

fn raw_template(template: &[Attribute]) -> Vec<CK_ATTRIBUTE> {
    template.iter().map(CK_ATTRIBUTE::from).collect()
}

fn kem_mechanism() -> CK_MECHANISM {
    CK_MECHANISM { mechanism: CKM_ML_KEM, pParameter: null_mut(), ulParameterLen: 0 }
}

/// `C_EncapsulateKey` with an output buffer of `capacity` bytes (`None`: a size query):
/// the return code, the length it set, the ciphertext and the new key's handle.
fn encapsulate(
    s: &Session,
    public: ObjectHandle,
    template: &[Attribute],
    capacity: Option<usize>,
) -> (CK_RV, CK_ULONG, Vec<u8>, CK_OBJECT_HANDLE) {
    let mut m = kem_mechanism();
    let mut t = raw_template(template);
    let mut out = vec![0u8; capacity.unwrap_or(0)];
    let out_ptr = if capacity.is_some() { out.as_mut_ptr() } else { null_mut() };
    let mut len = out.len() as CK_ULONG;
    let mut key: CK_OBJECT_HANDLE = 0;
    // SAFETY: the mechanism, template (whose values live in `template`), buffer and
    // out-pointers are live for the call.
    let rv = unsafe {
        (list_3_2().C_EncapsulateKey.unwrap())(
            s.handle(),
            &mut m,
            public.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            out_ptr,
            &mut len,
            &mut key,
        )
    };
    if rv == CKR_OK && capacity.is_some() {
        out.truncate(len as usize);
    }
    (rv, len, out, key)
}

fn decapsulate(
    s: &Session,
    private: ObjectHandle,
    template: &[Attribute],
    ciphertext: &[u8],
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut m = kem_mechanism();
    let mut t = raw_template(template);
    let mut ct = ciphertext.to_vec();
    let mut key: CK_OBJECT_HANDLE = 0;
    // SAFETY: as in `encapsulate`.
    let rv = unsafe {
        (list_3_2().C_DecapsulateKey.unwrap())(
            s.handle(),
            &mut m,
            private.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            ct.as_mut_ptr(),
            ct.len() as CK_ULONG,
            &mut key,
        )
    };
    (rv, key)
}

fn aes_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// The object handle `cryptoki` uses for a raw handle the module returned: found by search.
fn handle_of(s: &Session, raw: CK_OBJECT_HANDLE) -> ObjectHandle {
    s.find_objects(&[]).unwrap().into_iter().find(|h| h.handle() == raw).expect("the new key is visible")
}

const ML_KEM_SETS: [(MlKemParameterSetType, usize); 3] = [
    (MlKemParameterSetType::ML_KEM_512, 768),
    (MlKemParameterSetType::ML_KEM_768, 1088),
    (MlKemParameterSetType::ML_KEM_1024, 1568),
];

isolated_test!(
    fn ml_kem_shared_secrets_agree_as_aes_keys() {
        let (_p, _slot, s) = setup();
        for (set, ct_len) in ML_KEM_SETS {
            let (public, private) = kem_pair(&s, set);
            let before = count(&s);
            // A size query makes no key.
            let (rv, len, _, key) = encapsulate(&s, public, &aes_template(), None);
            assert_eq!((rv, len as usize, key), (CKR_OK, ct_len, 0));
            assert_unchanged(&s, before);

            let (rv, _, ciphertext, sender) = encapsulate(&s, public, &aes_template(), Some(ct_len));
            assert_eq!(rv, CKR_OK);
            assert_eq!(ciphertext.len(), ct_len);
            let (rv, receiver) = decapsulate(&s, private, &aes_template(), &ciphertext);
            assert_eq!(rv, CKR_OK);
            assert_eq!(count(&s), before + 2);
            let (sender, receiver) = (handle_of(&s, sender), handle_of(&s, receiver));
            for k in [sender, receiver] {
                let read = s.get_attributes(k, &[AttributeType::ValueLen, AttributeType::Local]).unwrap();
                assert_eq!(read, vec![Attribute::ValueLen(32.into()), Attribute::Local(false)]);
            }
            // Both ends hold the same AES-256 key: one encrypts, the other decrypts.
            let mut iv = [7u8; 12];
            let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
            let sealed = s.encrypt(&gcm, sender, b"key agreed by ML-KEM").unwrap();
            let mut iv = [7u8; 12];
            let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
            assert_eq!(s.decrypt(&gcm, receiver, &sealed).unwrap(), b"key agreed by ML-KEM");
        }
    }
);

isolated_test!(
    fn ml_kem_refuses_bad_lengths_templates_and_keys() {
        let (_p, _slot, s) = setup();
        let (public, private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let (dsa_public, _) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let before = count(&s);
        // Too small a buffer: the length needed, and no key.
        let (rv, len, _, key) = encapsulate(&s, public, &aes_template(), Some(1087));
        assert_eq!((rv, len, key), (CKR_BUFFER_TOO_SMALL, 1088, 0));
        assert_unchanged(&s, before);
        // A template asking for another length, or a non-secret class.
        let mut short = aes_template();
        short.push(Attribute::ValueLen(16.into()));
        assert_eq!(encapsulate(&s, public, &short, Some(1088)).0, CKR_TEMPLATE_INCONSISTENT);
        let data = [Attribute::Class(ObjectClass::DATA)];
        assert_eq!(encapsulate(&s, public, &data, Some(1088)).0, CKR_TEMPLATE_INCONSISTENT);
        // Keys without the usage: an ML-DSA key has no CKA_ENCAPSULATE, a private key none.
        assert_eq!(
            encapsulate(&s, dsa_public, &aes_template(), Some(4096)).0,
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        assert_eq!(encapsulate(&s, private, &aes_template(), Some(1088)).0, CKR_KEY_FUNCTION_NOT_PERMITTED);
        assert_unchanged(&s, before);

        let (rv, _, ciphertext, _) = encapsulate(&s, public, &aes_template(), Some(1088));
        assert_eq!(rv, CKR_OK);
        let before = count(&s);
        assert_eq!(
            decapsulate(&s, private, &aes_template(), &ciphertext[1..]).0,
            CKR_ENCRYPTED_DATA_LEN_RANGE
        );
        assert_eq!(decapsulate(&s, private, &short, &ciphertext).0, CKR_TEMPLATE_INCONSISTENT);
        assert_eq!(decapsulate(&s, public, &aes_template(), &ciphertext).0, CKR_KEY_FUNCTION_NOT_PERMITTED);
        assert_unchanged(&s, before);

        // A parameter, and a NULL key out-pointer.
        let mut param = [0u8; 8];
        let mut m =
            CK_MECHANISM { mechanism: CKM_ML_KEM, pParameter: param.as_mut_ptr().cast(), ulParameterLen: 8 };
        let template = aes_template();
        let mut t = raw_template(&template);
        let (mut out, mut len, mut key) = ([0u8; 1088], 1088 as CK_ULONG, 0);
        let encap = list_3_2().C_EncapsulateKey.unwrap();
        // SAFETY: live mechanism, template, buffer and out-pointers.
        let rv = unsafe {
            encap(
                s.handle(),
                &mut m,
                public.handle(),
                t.as_mut_ptr(),
                4,
                out.as_mut_ptr(),
                &mut len,
                &mut key,
            )
        };
        assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID);
        let mut m = kem_mechanism();
        // SAFETY: as above, with a NULL phKey, which must be refused before anything is done.
        let rv = unsafe {
            encap(
                s.handle(),
                &mut m,
                public.handle(),
                t.as_mut_ptr(),
                4,
                out.as_mut_ptr(),
                &mut len,
                null_mut(),
            )
        };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        assert_unchanged(&s, before);

        // CKA_ENCAPSULATE false: the key may not encapsulate.
        s.update_attributes(public, &[Attribute::Encapsulate(false)]).unwrap();
        assert_eq!(encapsulate(&s, public, &aes_template(), Some(1088)).0, CKR_KEY_FUNCTION_NOT_PERMITTED);
        // An ML-KEM private key cannot be imported from a seed here (aws-lc-rs has no way).
        expect_rv(
            s.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::ML_KEM),
                Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Seed(vec![1; 64]),
            ]),
            RvError::AttributeValueInvalid,
        );
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn pq_keys_survive_a_restart() {
        let (p, slot, s) = setup();
        let (dsa_public, dsa_private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_87);
        let (kem_public, kem_private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_1024);
        let (rv, _, ciphertext, sender) = encapsulate(&s, kem_public, &aes_template(), Some(1568));
        assert_eq!(rv, CKR_OK);
        let sender = handle_of(&s, sender);
        let mut iv = [1u8; 12];
        let sealed = s
            .encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()), sender, b"kept")
            .unwrap();
        let labels = [(dsa_public, "dsa public"), (dsa_private, "dsa private"), (kem_private, "kem private")];
        for (h, label) in labels {
            s.update_attributes(h, &[Attribute::Label(label.into())]).unwrap();
        }
        drop(s);
        reinitialize(&p);
        let s = user_session(&p, slot);
        let find = |label: &str| s.find_objects(&[Attribute::Label(label.into())]).unwrap().remove(0);
        let (dsa_public, dsa_private, kem_private) =
            (find("dsa public"), find("dsa private"), find("kem private"));
        let signature = s.sign(&ml_dsa(), dsa_private, b"after restart").unwrap();
        s.verify(&ml_dsa(), dsa_public, b"after restart", &signature).unwrap();
        let (rv, receiver) = decapsulate(&s, kem_private, &aes_template(), &ciphertext);
        assert_eq!(rv, CKR_OK);
        let mut iv = [1u8; 12];
        let opened = s.decrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
            handle_of(&s, receiver),
            &sealed,
        );
        assert_eq!(opened.unwrap(), b"kept");
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
                (list.C_VerifySignatureInit.unwrap())(1, null_mut(), 1, null_mut(), 0),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!((list.C_VerifySignature.unwrap())(1, null_mut(), 0), CKR_FUNCTION_NOT_SUPPORTED);
            assert_eq!((list.C_VerifySignatureFinal.unwrap())(1), CKR_FUNCTION_NOT_SUPPORTED);
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

// ---------------------------------------------------------------------------------------
// Attacks: the private halves stay inside, in memory and at rest.
// ---------------------------------------------------------------------------------------

/// Every byte the token directory holds (database, WAL, anything else).
fn all_file_bytes() -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(token_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

isolated_test!(
    fn private_values_and_seeds_are_neither_readable_wrappable_nor_stored_in_clear() {
        let (p, _slot, s) = setup();
        let seed: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29).wrapping_add(3)).collect();
        let theirs = PqdsaKeyPair::from_seed(&sig::ML_DSA_44_SIGNING, &seed).unwrap();
        let sk = theirs.private_key().as_raw_bytes().unwrap().as_ref().to_vec();
        let pk = theirs.public_key().as_ref().to_vec();
        // Imported as extractable but sensitive; generated ones as the defaults make them.
        let dsa = s
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::ML_DSA),
                Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_44.into()),
                Attribute::Token(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(true),
                Attribute::Seed(seed.clone()),
                Attribute::Value(sk.clone()),
            ])
            .unwrap();
        let (_, kem) = kem_pair(&s, MlKemParameterSetType::ML_KEM_512);
        let wrapping = s
            .generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Wrap(true), Attribute::Token(true)],
            )
            .unwrap();
        let before = count(&s);
        let lib = load_raw();
        for (key, attribute) in [(dsa, CKA_VALUE), (dsa, CKA_SEED), (kem, CKA_VALUE)] {
            let mut buffer = vec![0u8; 4096];
            let mut t =
                [CK_ATTRIBUTE { type_: attribute, pValue: buffer.as_mut_ptr().cast(), ulValueLen: 4096 }];
            // SAFETY: one attribute whose buffer holds 4096 bytes.
            let rv = unsafe { lib.C_GetAttributeValue(s.handle(), key.handle(), t.as_mut_ptr(), 1) };
            assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert!(buffer.iter().all(|b| *b == 0), "nothing of the value was written");
        }
        // Neither leaves wrapped: an extractable one has no PKCS#8 form here yet, and a
        // generated one is unextractable by default.
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, dsa), RvError::KeyNotWrappable);
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, kem), RvError::KeyUnextractable);
        // Nor can a search find them by value.
        assert!(s.find_objects(&[Attribute::Seed(seed.clone())]).unwrap().is_empty());
        assert_unchanged(&s, before);
        // The key still works, and the public half is not secret.
        let signature = s.sign(&ml_dsa(), dsa, b"m").unwrap();
        UnparsedPublicKey::new(&sig::ML_DSA_44, &pk).verify(b"m", &signature).unwrap();
        drop(s);
        let check = |stage: &str| {
            let bytes = all_file_bytes();
            assert!(!contains(&bytes, &seed), "{stage}: ML-DSA seed in clear");
            assert!(!contains(&bytes, &sk[..64]), "{stage}: ML-DSA sk in clear");
        };
        check("running");
        p.finalize().unwrap();
        check("finalized");
    }
);

isolated_test!(
    fn ml_dsa_and_ml_kem_work_in_client_mode() {
        let service = service_support::Service::start(ecm_hsm::service::Limits::default());
        write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", service.socket.display()));
        let (p, slot, s) = setup();
        assert!(p.get_token_info(slot).unwrap().model().ends_with("svc"), "client mode");
        let context = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, None));
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_65);
        let signature = s.sign(&context, private, b"through the service").unwrap();
        UnparsedPublicKey::new(&sig::ML_DSA_65, &value(&s, public))
            .verify(b"through the service", &signature)
            .unwrap();
        s.verify(&ml_dsa(), public, b"through the service", &signature).unwrap();
        let refused = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, Some(b"ctx")));
        expect_rv(s.sign(&refused, private, b"m"), RvError::MechanismParamInvalid);

        let (ek, dk) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let (rv, len, _, key) = encapsulate(&s, ek, &aes_template(), None);
        assert_eq!((rv, len, key), (CKR_OK, 1088, 0));
        let (rv, _, ciphertext, sender) = encapsulate(&s, ek, &aes_template(), Some(1088));
        assert_eq!(rv, CKR_OK);
        let (rv, receiver) = decapsulate(&s, dk, &aes_template(), &ciphertext);
        assert_eq!(rv, CKR_OK);
        assert_eq!(decapsulate(&s, dk, &aes_template(), &ciphertext[..100]).0, CKR_ENCRYPTED_DATA_LEN_RANGE);
        let mut iv = [3u8; 12];
        let sealed = s
            .encrypt(
                &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
                handle_of(&s, sender),
                b"svc",
            )
            .unwrap();
        let mut iv = [3u8; 12];
        let opened = s
            .decrypt(
                &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
                handle_of(&s, receiver),
                &sealed,
            )
            .unwrap();
        assert_eq!(opened, b"svc");
    }
);
