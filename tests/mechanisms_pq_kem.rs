//! ML-KEM (PKCS#11 3.2) through the built module: `CKM_ML_KEM_KEY_PAIR_GEN`, and
//! `CKM_ML_KEM` through `C_EncapsulateKey` and `C_DecapsulateKey` of the 3.2 function list.
//!
//! 1. Both shared secrets become AES keys that agree (an AES-GCM round trip), for each
//!    parameter set; bad lengths, templates and keys are refused and change nothing.
//! 2. ML-DSA and ML-KEM keys survive a restart, and work through the key service.
//! 3. The attacks: private values and seeds are not readable, not wrapped in clear and not stored
//!    in clear.
#![allow(unsafe_code)]

mod common;
mod pq_support;
mod service_support;
use common::audit::records;
use common::raw::load_raw;
use common::*;
use pq_support::*;

use std::ptr::null_mut;

use aws_lc_rs::encoding::AsRawBytes;
use aws_lc_rs::signature::{self as sig, KeyPair, PqdsaKeyPair, UnparsedPublicKey};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::dsa::{HashSignAdditionalContext, HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
};
use cryptoki_sys::*;

const ML_KEM_SETS: [(MlKemParameterSetType, usize); 3] = [
    (MlKemParameterSetType::ML_KEM_512, 768),
    (MlKemParameterSetType::ML_KEM_768, 1088),
    (MlKemParameterSetType::ML_KEM_1024, 1568),
];

isolated_test!(
    fn ml_kem_shared_secrets_agree_as_aes_keys() {
        let (_p, _slot, s) = logged_in();
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
        // Each call is recorded with its mechanism and result: per parameter set, a size
        // query and an encapsulation, and a decapsulation.
        let all = records();
        for (operation, expected) in [("encapsulate", 6), ("decapsulate", 3)] {
            let calls: Vec<_> = all.iter().filter(|r| r["operation"] == operation).collect();
            assert_eq!(calls.len(), expected, "{operation} records");
            for r in calls {
                assert_eq!(r["mechanism"].as_u64(), Some(CKM_ML_KEM), "{r}");
                assert_eq!(r["result"].as_u64(), Some(CKR_OK), "{r}");
            }
        }
    }
);

isolated_test!(
    /// A client that takes `C_GetInterface`'s default, as the `cryptoki` crate does, reaches
    /// `C_EncapsulateKey`/`C_DecapsulateKey` through its own 3.2 calls: the default is 3.2.
    fn the_cryptoki_crate_encapsulates_through_the_default_interface() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let (ciphertext, sender) = s.encapsulate_key(&Mechanism::MlKem, public, &aes_template()).unwrap();
        assert_eq!(ciphertext.len(), 1088);
        let receiver = s.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), &ciphertext).unwrap();
        let mut iv = [9u8; 12];
        let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap());
        let sealed = s.encrypt(&gcm, sender, b"through cryptoki's own calls").unwrap();
        assert_eq!(s.decrypt(&gcm, receiver, &sealed).unwrap(), b"through cryptoki's own calls");
        let before = count(&s);
        let short = &ciphertext[..ciphertext.len() - 1];
        let refused = s.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), short);
        assert!(
            matches!(refused, Err(cryptoki::error::Error::Pkcs11(RvError::EncryptedDataLenRange, _))),
            "{refused:?}"
        );
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    /// A template asking for a shorter key than the 32-byte shared secret (an AES-128 key, as
    /// python-pkcs11's own suite asks) gets the secret's leading bytes, at both ends.
    fn a_shorter_key_is_the_shared_secrets_leading_bytes() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let mut aes_128 = aes_template();
        aes_128.push(Attribute::ValueLen(16.into()));
        let (ciphertext, sender) = s.encapsulate_key(&Mechanism::MlKem, public, &aes_128).unwrap();
        let receiver = s.decapsulate_key(&Mechanism::MlKem, private, &aes_128, &ciphertext).unwrap();
        let whole = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::GENERIC_SECRET)];
        let full = s.decapsulate_key(&Mechanism::MlKem, private, &whole, &ciphertext).unwrap();
        let (sent, received, secret) = (value(&s, sender), value(&s, receiver), value(&s, full));
        assert_eq!(secret.len(), 32);
        assert_eq!(sent, secret[..16]);
        assert_eq!(received, sent);
        assert_eq!(
            s.get_attributes(sender, &[AttributeType::ValueLen]).unwrap(),
            vec![Attribute::ValueLen(16.into())]
        );
    }
);

isolated_test!(
    fn ml_kem_refuses_bad_lengths_templates_and_keys() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let (dsa_public, _) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let before = count(&s);
        // Too small a buffer: the length needed, and no key.
        let (rv, len, _, key) = encapsulate(&s, public, &aes_template(), Some(1087));
        assert_eq!((rv, len, key), (CKR_BUFFER_TOO_SMALL, 1088, 0));
        assert_unchanged(&s, before);
        // A template asking for a longer key than the 32-byte secret, a length AES keys do
        // not have, or a non-secret class.
        let mut long = aes_template();
        long.push(Attribute::ValueLen(33.into()));
        assert_eq!(encapsulate(&s, public, &long, Some(1088)).0, CKR_TEMPLATE_INCONSISTENT);
        let mut odd = aes_template();
        odd.push(Attribute::ValueLen(20.into()));
        assert_eq!(encapsulate(&s, public, &odd, Some(1088)).0, CKR_TEMPLATE_INCONSISTENT);
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
        assert_eq!(decapsulate(&s, private, &long, &ciphertext).0, CKR_TEMPLATE_INCONSISTENT);
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
        // An ML-KEM private key from a seed of the wrong length (d ‖ z is 64 bytes; seeds
        // themselves are `mechanisms_ml_kem_seed.rs`).
        expect_rv(
            s.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::ML_KEM),
                Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Seed(vec![1; 63]),
            ]),
            RvError::AttributeValueInvalid,
        );
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn pq_keys_survive_a_restart() {
        let (p, slot, s) = logged_in();
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
// Attacks: the private halves stay inside, in memory and at rest.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn private_values_and_seeds_are_neither_readable_wrappable_nor_stored_in_clear() {
        let (p, _slot, s) = logged_in();
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
        // The extractable one leaves only encrypted (its PKCS#8 under the wrapping key; the
        // round trip is `mechanisms_pq_wrap.rs`); a generated one is unextractable by default.
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, dsa).unwrap();
        assert!(!contains(&wrapped, &seed) && !contains(&wrapped, &sk[..64]), "wrapped in clear");
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
        let service = service_support::Service::start(ecm_hsm::server::Limits::default());
        write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", service.socket.display()));
        let (p, slot, s) = logged_in();
        assert!(
            p.get_slot_info(slot).unwrap().slot_description().ends_with("via the key service"),
            "client mode"
        );
        let context = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, None));
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_65);
        let signature = s.sign(&context, private, b"through the service").unwrap();
        UnparsedPublicKey::new(&sig::ML_DSA_65, &value(&s, public))
            .verify(b"through the service", &signature)
            .unwrap();
        s.verify(&ml_dsa(), public, b"through the service", &signature).unwrap();
        // A context string (and the hash of HashML-DSA) crosses the service too.
        let with_context = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, Some(b"ctx")));
        let signature = s.sign(&with_context, private, b"m").unwrap();
        s.verify(&with_context, public, b"m", &signature).unwrap();
        expect_rv(s.verify(&ml_dsa(), public, b"m", &signature), RvError::SignatureInvalid);
        let hashed = Mechanism::HashMlDsa(HashSignAdditionalContext::new(
            HedgeType::Preferred,
            Some(b"ctx"),
            MechanismType::SHA256,
        ));
        let digest = s.digest(&Mechanism::Sha256, b"m").unwrap();
        let signature = s.sign(&hashed, private, &digest).unwrap();
        s.verify(
            &Mechanism::HashMlDsaSha256(SignAdditionalContext::new(HedgeType::Preferred, Some(b"ctx"))),
            public,
            b"m",
            &signature,
        )
        .unwrap();
        // Deterministic signing through the service too: the same signature twice.
        let deterministic =
            Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::DeterministicRequired, Some(b"c")));
        let once = s.sign(&deterministic, private, b"m").unwrap();
        assert_eq!(s.sign(&deterministic, private, b"m").unwrap(), once);
        s.verify(&deterministic, public, b"m", &once).unwrap();

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
