//! Key generation, AES-GCM, digests, random numbers and the mechanism list, through the
//! `cryptoki` client.
//!
//! Known-answer tests use the NIST GCM vectors and the FIPS 180-4 digest examples. Refusals
//! are checked for their exact return code, for leaving no object behind, and for their effect
//! on the operation in progress (an error that ends an operation must end it; a refused
//! `*Init` must not start one).
//!
//! Not expressible through `cryptoki` 0.12 and therefore not tested here: the output-buffer
//! protocol (a NULL output asking for the length, `CKR_BUFFER_TOO_SMALL` keeping the operation)
//! — the crate always asks for the length first and then passes a buffer of that size.
mod common;
use common::keys::aes_key;
use common::objects::{gcm, read};
use common::operations::assert_no_cipher_operation;
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

fn all(s: &Session) -> Vec<ObjectHandle> {
    s.find_objects(&[]).unwrap()
}

/// Encrypts `data` under `key` with a fixed IV and AAD.
fn seal(s: &Session, key: ObjectHandle, data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [1u8; 12];
    s.encrypt(&gcm(&mut iv, b"header"), key, data)
}

fn open(s: &Session, key: ObjectHandle, data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [1u8; 12];
    s.decrypt(&gcm(&mut iv, b"header"), key, data)
}

/// Asserts what C_GenerateKey records on a secret key: its type, length in bytes, CKA_LOCAL and
/// the mechanism that made it.
#[track_caller]
fn assert_generated(s: &Session, key: ObjectHandle, key_type: KeyType, len: u64, mechanism: MechanismType) {
    assert_eq!(read(s, key, AttributeType::KeyType), Attribute::KeyType(key_type));
    assert_eq!(read(s, key, AttributeType::ValueLen), Attribute::ValueLen(len.into()));
    assert_eq!(read(s, key, AttributeType::Local), Attribute::Local(true));
    assert_eq!(read(s, key, AttributeType::KeyGenMechanism), Attribute::KeyGenMechanism(mechanism));
}

// ---------------------------------------------------------------------------------------------
// Mechanism list and information
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// Every mechanism listed answers C_GetMechanismInfo with a function, none is listed
    /// twice, the mechanisms of this suite are all there, and every slot offers the same.
    fn the_mechanism_list_is_complete_and_consistent() {
        let (p, slot) = load_with_token();
        let mut got: Vec<u64> = p.get_mechanism_list(slot).unwrap().iter().map(|m| **m).collect();
        got.sort_unstable();
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(unique, got, "a mechanism is listed twice");
        // cryptoki 0.12.1 silently drops codes it does not know (CKM_SHA224 among them) from
        // C_GetMechanismList's answer, so SHA-224 is checked through C_GetMechanismInfo.
        for m in [
            MechanismType::AES_KEY_GEN,
            MechanismType::GENERIC_SECRET_KEY_GEN,
            MechanismType::AES_GCM,
            MechanismType::SHA1,
            MechanismType::SHA256,
            MechanismType::SHA384,
            MechanismType::SHA512,
        ] {
            assert!(got.contains(&m), "{m} missing from the list");
        }
        assert!(p.get_mechanism_info(slot, MechanismType::SHA224).unwrap().digest());
        for m in p.get_mechanism_list(slot).unwrap() {
            let info = p.get_mechanism_info(slot, m).unwrap();
            let functions = [
                info.encrypt(),
                info.decrypt(),
                info.digest(),
                info.sign(),
                info.verify(),
                info.generate(),
                info.generate_key_pair(),
                info.wrap(),
                info.unwrap(),
                info.derive(),
                info.encapsulate(),
                info.decapsulate(),
            ];
            assert!(functions.contains(&true), "{m} is listed with no function");
        }
        // The free slot offers the same mechanisms.
        let free = cryptoki::slot::Slot::try_from(1u64).unwrap();
        let mut on_free: Vec<u64> = p.get_mechanism_list(free).unwrap().iter().map(|m| **m).collect();
        on_free.sort_unstable();
        assert_eq!(on_free, got);
    }
);

isolated_test!(
    fn mechanism_info_is_truthful() {
        let (p, slot) = load_with_token();
        let gcm = p.get_mechanism_info(slot, MechanismType::AES_GCM).unwrap();
        assert_eq!((gcm.min_key_size(), gcm.max_key_size()), (16, 32));
        assert!(gcm.encrypt() && gcm.decrypt());
        assert!(!gcm.digest() && !gcm.generate() && !gcm.sign() && !gcm.derive());

        let keygen = p.get_mechanism_info(slot, MechanismType::AES_KEY_GEN).unwrap();
        assert_eq!((keygen.min_key_size(), keygen.max_key_size()), (16, 32));
        assert!(keygen.generate() && !keygen.encrypt());
        let generic = p.get_mechanism_info(slot, MechanismType::GENERIC_SECRET_KEY_GEN).unwrap();
        assert!(generic.generate() && !generic.encrypt());

        for digest in [
            MechanismType::SHA1,
            MechanismType::SHA224,
            MechanismType::SHA256,
            MechanismType::SHA384,
            MechanismType::SHA512,
        ] {
            let info = p.get_mechanism_info(slot, digest).unwrap();
            assert!(info.digest(), "{digest}");
            assert!(!info.encrypt() && !info.generate() && !info.sign(), "{digest}");
        }
    }
);

isolated_test!(
    fn unknown_mechanisms_have_no_info() {
        let (p, slot) = load_with_token();
        for m in [
            MechanismType::DES3_CBC,
            MechanismType::DES3_KEY_GEN,
            MechanismType::AES_CFB128,
            MechanismType::DES_ECB,
        ] {
            expect_rv(p.get_mechanism_info(slot, m), RvError::MechanismInvalid);
        }
        let bad_slot = cryptoki::slot::Slot::try_from(42u64).unwrap();
        expect_rv(p.get_mechanism_info(bad_slot, MechanismType::AES_GCM), RvError::SlotIdInvalid);
    }
);

// ---------------------------------------------------------------------------------------------
// C_GenerateKey
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn aes_keys_are_generated_in_each_size() {
        let (_p, _slot, s) = logged_in();
        for len in [16u64, 24, 32] {
            let key = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(len.into())]).unwrap();
            assert_eq!(read(&s, key, AttributeType::Class), Attribute::Class(ObjectClass::SECRET_KEY));
            assert_generated(&s, key, KeyType::AES, len, MechanismType::AES_KEY_GEN);
            // Defaults: not sensitive (the standard's "default CK_FALSE"), so never always
            // sensitive; unextractable (the token's choice), so never extractable.
            assert_eq!(read(&s, key, AttributeType::Sensitive), Attribute::Sensitive(false));
            assert_eq!(read(&s, key, AttributeType::AlwaysSensitive), Attribute::AlwaysSensitive(false));
            assert_eq!(read(&s, key, AttributeType::NeverExtractable), Attribute::NeverExtractable(true));
            assert_eq!(read(&s, key, AttributeType::Private), Attribute::Private(true));
            assert_eq!(read(&s, key, AttributeType::Token), Attribute::Token(false));
            // The key works.
            let ct = seal(&s, key, b"generated").unwrap();
            assert_eq!(open(&s, key, &ct).unwrap(), b"generated");
        }
        // Two generated keys differ.
        let template =
            [Attribute::ValueLen(32.into()), Attribute::Sensitive(false), Attribute::Extractable(true)];
        let a = s.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
        let b = s.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
        assert_ne!(read(&s, a, AttributeType::Value), read(&s, b, AttributeType::Value));
    }
);

isolated_test!(
    fn aes_key_sizes_out_of_range_are_refused() {
        let (_p, _slot, s) = logged_in();
        for len in [0u64, 1, 8, 15, 17, 20, 31, 33, 64] {
            expect_rv(
                s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(len.into())]),
                // C_GenerateKey's list in the standard has no CKR_KEY_SIZE_RANGE: the size is
                // the template's CKA_VALUE_LEN, an invalid attribute value.
                RvError::AttributeValueInvalid,
            );
        }
        assert!(all(&s).is_empty());
    }
);

isolated_test!(
    fn aes_key_generation_templates_are_checked() {
        let (_p, _slot, s) = logged_in();
        expect_rv(s.generate_key(&Mechanism::AesKeyGen, &[]), RvError::TemplateIncomplete);
        expect_rv(
            s.generate_key(&Mechanism::AesKeyGen, &[Attribute::Label(b"no length".to_vec())]),
            RvError::TemplateIncomplete,
        );
        expect_rv(
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Value(vec![0; 32])],
            ),
            RvError::TemplateInconsistent,
        );
        expect_rv(
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::KeyType(KeyType::GENERIC_SECRET)],
            ),
            RvError::TemplateInconsistent,
        );
        expect_rv(
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Class(ObjectClass::DATA)],
            ),
            RvError::TemplateInconsistent,
        );
        // The module sets CKA_LOCAL itself.
        expect_rv(
            s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Local(true)]),
            RvError::AttributeReadOnly,
        );
        assert!(all(&s).is_empty());
        // Naming the implied class and key type is fine.
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ],
        )
        .unwrap();
        assert_eq!(all(&s).len(), 1);
    }
);

isolated_test!(
    fn generated_key_history_follows_the_template() {
        let (_p, _slot, s) = logged_in();
        let generate = |sensitive: bool, extractable: bool| {
            let t = [
                Attribute::ValueLen(16.into()),
                Attribute::Sensitive(sensitive),
                Attribute::Extractable(extractable),
            ];
            s.generate_key(&Mechanism::AesKeyGen, &t).unwrap()
        };
        // CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE of `key` as `case` expects them.
        let assert_history = |key, always_sensitive: bool, never_extractable: bool, case: &str| {
            let always = read(&s, key, AttributeType::AlwaysSensitive);
            assert_eq!(always, Attribute::AlwaysSensitive(always_sensitive), "{case}");
            let never = read(&s, key, AttributeType::NeverExtractable);
            assert_eq!(never, Attribute::NeverExtractable(never_extractable), "{case}");
        };
        let open_key = generate(false, true);
        assert_history(open_key, false, false, "generated readable");
        match read(&s, open_key, AttributeType::Value) {
            Attribute::Value(v) => assert_eq!(v.len(), 16),
            other => panic!("{other:?}"),
        }
        // Becoming sensitive later does not make it "always" sensitive.
        s.update_attributes(open_key, &[Attribute::Sensitive(true), Attribute::Extractable(false)]).unwrap();
        assert_history(open_key, false, false, "made sensitive later");

        let mixed = generate(true, true);
        assert_history(mixed, true, false, "generated sensitive but extractable");
    }
);

isolated_test!(
    fn generic_secrets_are_generated_with_a_length_in_bytes() {
        let (_p, _slot, s) = logged_in();
        let template = |len: u64| {
            [Attribute::ValueLen(len.into()), Attribute::Sensitive(false), Attribute::Extractable(true)]
        };
        for len in [1u64, 20, 64, 512] {
            let key = s.generate_key(&Mechanism::GenericSecretKeyGen, &template(len)).unwrap();
            assert_generated(&s, key, KeyType::GENERIC_SECRET, len, MechanismType::GENERIC_SECRET_KEY_GEN);
            match read(&s, key, AttributeType::Value) {
                Attribute::Value(v) => assert_eq!(v.len() as u64, len),
                other => panic!("{other:?}"),
            }
        }
        let count = all(&s).len();
        // 8 to 4096 bits.
        for len in [0u64, 513, 4096] {
            expect_rv(
                s.generate_key(&Mechanism::GenericSecretKeyGen, &template(len)),
                RvError::AttributeValueInvalid,
            );
        }
        expect_rv(
            s.generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[Attribute::KeyType(KeyType::AES), Attribute::ValueLen(32.into())],
            ),
            RvError::TemplateInconsistent,
        );
        expect_rv(s.generate_key(&Mechanism::GenericSecretKeyGen, &[]), RvError::TemplateIncomplete);
        assert_eq!(all(&s).len(), count);
    }
);

isolated_test!(
    fn generate_key_needs_a_key_generation_mechanism() {
        let (_p, _slot, s) = logged_in();
        let mut iv = [0u8; 12];
        for m in [Mechanism::Sha256, Mechanism::AesEcb, gcm(&mut iv, b"")] {
            expect_rv(s.generate_key(&m, &[Attribute::ValueLen(32.into())]), RvError::MechanismInvalid);
        }
        assert!(all(&s).is_empty());
    }
);

isolated_test!(
    fn generate_key_follows_the_access_rules() {
        let (p, slot) = load_with_token();
        // A token key in a read-only session.
        let ro = p.open_ro_session(slot).unwrap();
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(
            ro.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Token(true)]),
            RvError::SessionReadOnly,
        );
        // Session keys are fine there.
        let session_key = ro.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())]).unwrap();
        assert_eq!(all(&ro), vec![session_key]);
        ro.logout().unwrap();
        drop(ro);

        // A private key (the default) without login.
        let rw = p.open_rw_session(slot).unwrap();
        expect_rv(
            rw.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())]),
            RvError::UserNotLoggedIn,
        );
        // The SO may not generate private keys either.
        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        expect_rv(
            rw.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Token(true)]),
            RvError::UserNotLoggedIn,
        );
        rw.logout().unwrap();
        // A public session key needs no login.
        let public = rw
            .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Private(false)])
            .unwrap();
        assert_eq!(all(&rw), vec![public]);
        let ct = seal(&rw, public, b"public").unwrap();
        assert_eq!(open(&rw, public, &ct).unwrap(), b"public");
        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(all(&rw), vec![public]);
    }
);

// The specification gives R/W public sessions read/write access to public token objects
// (PKCS#11 3.0 base, table 5); a generated key with CKA_PRIVATE = false is one.
isolated_test!(
    /// Key values are sealed under the token key even on public (`CKA_PRIVATE=false`) keys,
    /// so that nothing secret is readable from the file without a PIN: making one needs a
    /// login, and once made it is usable by the logged-in user.
    fn public_token_keys_need_a_login_to_be_generated() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let template = [Attribute::ValueLen(32.into()), Attribute::Token(true), Attribute::Private(false)];
        assert_eq!(
            rv(s.generate_key(&Mechanism::AesKeyGen, &template).unwrap_err()),
            RvError::UserNotLoggedIn
        );
        assert!(all(&s).is_empty(), "nothing was created");
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let key = s.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
        s.logout().unwrap();
        assert_eq!(all(&s), vec![key], "a public key stays visible without login");
        assert_eq!(rv(seal(&s, key, b"public").unwrap_err()), RvError::UserNotLoggedIn);
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let ct = seal(&s, key, b"public").unwrap();
        assert_eq!(open(&s, key, &ct).unwrap(), b"public");
    }
);

// ---------------------------------------------------------------------------------------------
// AES-GCM
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn aes_gcm_matches_the_nist_vector() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &hex(nist_gcm::KEY), &[]);
        let (mut iv, aad, pt) = (hex(nist_gcm::IV), hex(nist_gcm::AAD), hex(nist_gcm::PT));
        let ct = s.encrypt(&gcm(&mut iv, &aad), key, &pt).unwrap();
        assert_eq!(ct, nist_gcm::ct_and_tag());
        let mut iv = hex(nist_gcm::IV);
        assert_eq!(s.decrypt(&gcm(&mut iv, &aad), key, &ct).unwrap(), pt);
    }
);

isolated_test!(
    fn aes_gcm_multi_part_equals_single_part() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &hex(nist_gcm::KEY), &[]);
        let (aad, pt) = (hex(nist_gcm::AAD), hex(nist_gcm::PT));

        let mut iv = hex(nist_gcm::IV);
        s.encrypt_init(&gcm(&mut iv, &aad), key).unwrap();
        for part in pt.chunks(7) {
            assert!(s.encrypt_update(part).unwrap().is_empty(), "GCM releases nothing before the end");
        }
        assert_eq!(s.encrypt_final().unwrap(), nist_gcm::ct_and_tag());

        let mut iv = hex(nist_gcm::IV);
        let ct = nist_gcm::ct_and_tag();
        s.decrypt_init(&gcm(&mut iv, &aad), key).unwrap();
        for part in ct.chunks(13) {
            assert!(s.decrypt_update(part).unwrap().is_empty(), "no plaintext before the tag is checked");
        }
        assert_eq!(s.decrypt_final().unwrap(), pt);
        // Each final ended its operation.
        assert_no_cipher_operation(&s);
    }
);

isolated_test!(
    fn aes_gcm_handles_empty_plaintext_and_empty_aad() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[5u8; 16], &[]);
        let tag_only = seal(&s, key, b"").unwrap();
        assert_eq!(tag_only.len(), 16);
        assert!(open(&s, key, &tag_only).unwrap().is_empty());
        let mut iv = [2u8; 12];
        let ct = s.encrypt(&gcm(&mut iv, b""), key, b"no aad").unwrap();
        assert_eq!(ct.len(), 6 + 16);
        let mut iv = [2u8; 12];
        assert_eq!(s.decrypt(&gcm(&mut iv, b""), key, &ct).unwrap(), b"no aad");
    }
);

isolated_test!(
    fn aes_gcm_detects_tampering_and_ends_the_operation() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[9u8; 32], &[]);
        let ct = seal(&s, key, b"attack at dawn").unwrap();
        for i in [0, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            expect_rv(open(&s, key, &bad), RvError::EncryptedDataInvalid);
            // The failed C_Decrypt ended the operation.
            expect_rv(s.decrypt_update(&ct), RvError::OperationNotInitialized);
        }
        // Different AAD is tampering too.
        let mut iv = [1u8; 12];
        expect_rv(s.decrypt(&gcm(&mut iv, b"other header"), key, &ct), RvError::EncryptedDataInvalid);
        // Multi-part: the tag is checked by the final call, which then ends the operation.
        let mut bad = ct.clone();
        bad[3] ^= 0x80;
        let mut iv = [1u8; 12];
        s.decrypt_init(&gcm(&mut iv, b"header"), key).unwrap();
        assert!(s.decrypt_update(&bad).unwrap().is_empty());
        expect_rv(s.decrypt_final(), RvError::EncryptedDataInvalid);
        expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);
        // The genuine ciphertext still decrypts.
        assert_eq!(open(&s, key, &ct).unwrap(), b"attack at dawn");
    }
);

isolated_test!(
    fn aes_gcm_refuses_ciphertext_shorter_than_the_tag() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[9u8; 32], &[]);
        for len in [0usize, 1, 15] {
            expect_rv(open(&s, key, &vec![0u8; len]), RvError::EncryptedDataLenRange);
            expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);
        }
        // Multi-part, the length is known only at the end.
        let mut iv = [1u8; 12];
        s.decrypt_init(&gcm(&mut iv, b"header"), key).unwrap();
        assert!(s.decrypt_update(&[0u8; 10]).unwrap().is_empty());
        expect_rv(s.decrypt_final(), RvError::EncryptedDataLenRange);
        expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);
    }
);

isolated_test!(
    fn aes_gcm_parameters_are_checked() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[9u8; 32], &[]);
        // IVs of 1 to 256 bytes are taken (tests/mechanisms_aes_gcm.rs); longer ones are not.
        let mut long_iv = [1u8; 257];
        let m = gcm(&mut long_iv, b"header");
        expect_rv(s.encrypt_init(&m, key), RvError::MechanismParamInvalid);
        expect_rv(s.decrypt_init(&m, key), RvError::MechanismParamInvalid);
        for tag_bits in [0u64, 8, 100, 129] {
            let mut iv = [1u8; 12];
            let m = Mechanism::AesGcm(GcmParams::new(&mut iv, b"header", tag_bits.into()).unwrap());
            expect_rv(s.encrypt_init(&m, key), RvError::MechanismParamInvalid);
        }
        // A refused init leaves no operation behind: a good one can start.
        expect_rv(s.encrypt_final(), RvError::OperationNotInitialized);
        assert_eq!(open(&s, key, &seal(&s, key, b"fine").unwrap()).unwrap(), b"fine");
    }
);

isolated_test!(
    fn aes_gcm_checks_the_key() {
        let (_p, _slot, s) = logged_in();
        let value = [9u8; 32];
        let reference = seal(&s, aes_key(&s, &value, &[]), b"data").unwrap();

        let no_encrypt = aes_key(&s, &value, &[Attribute::Encrypt(false)]);
        expect_rv(seal(&s, no_encrypt, b"data"), RvError::KeyFunctionNotPermitted);
        assert_eq!(open(&s, no_encrypt, &reference).unwrap(), b"data");
        let no_decrypt = aes_key(&s, &value, &[Attribute::Decrypt(false)]);
        expect_rv(open(&s, no_decrypt, &reference), RvError::KeyFunctionNotPermitted);
        assert_eq!(seal(&s, no_decrypt, b"data").unwrap(), reference);

        let generic = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(value.to_vec()),
            ])
            .unwrap();
        expect_rv(seal(&s, generic, b"data"), RvError::KeyTypeInconsistent);

        let hash_only = aes_key(&s, &value, &[Attribute::AllowedMechanisms(vec![MechanismType::SHA256])]);
        expect_rv(seal(&s, hash_only, b"data"), RvError::MechanismInvalid);
        let gcm_allowed = aes_key(
            &s,
            &value,
            &[Attribute::AllowedMechanisms(vec![MechanismType::SHA256, MechanismType::AES_GCM])],
        );
        assert_eq!(seal(&s, gcm_allowed, b"data").unwrap(), reference);

        // Not a key, and no object at all.
        let data = s
            .create_object(&[Attribute::Class(ObjectClass::DATA), Attribute::Value(value.to_vec())])
            .unwrap();
        expect_rv(seal(&s, data, b"data"), RvError::KeyHandleInvalid);
        let gone = aes_key(&s, &value, &[]);
        s.destroy_object(gone).unwrap();
        expect_rv(seal(&s, gone, b"data"), RvError::KeyHandleInvalid);
        expect_rv(open(&s, gone, &reference), RvError::KeyHandleInvalid);

        // None of the refusals left an operation active.
        assert_no_cipher_operation(&s);
    }
);

isolated_test!(
    fn a_second_cipher_init_is_refused_and_the_first_continues() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[9u8; 32], &[]);
        let other = aes_key(&s, &[8u8; 32], &[]);
        let mut iv = [1u8; 12];
        s.encrypt_init(&gcm(&mut iv, b"header"), key).unwrap();
        assert!(s.encrypt_update(b"first ").unwrap().is_empty());
        let mut iv = [1u8; 12];
        expect_rv(s.encrypt_init(&gcm(&mut iv, b"header"), other), RvError::OperationActive);
        assert!(s.encrypt_update(b"operation").unwrap().is_empty());
        let ct = s.encrypt_final().unwrap();
        assert_eq!(open(&s, key, &ct).unwrap(), b"first operation");

        // Decryption has its own slot and its own refusal.
        let mut iv = [1u8; 12];
        s.decrypt_init(&gcm(&mut iv, b"header"), key).unwrap();
        let mut iv = [1u8; 12];
        expect_rv(s.decrypt_init(&gcm(&mut iv, b"header"), key), RvError::OperationActive);
        s.decrypt_update(&ct).unwrap();
        assert_eq!(s.decrypt_final().unwrap(), b"first operation");
    }
);

isolated_test!(
    fn private_token_keys_are_usable_only_after_login() {
        let (p, slot) = load_with_token();
        let (key, ct) = {
            let s = user_session(&p, slot);
            let key = s
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[Attribute::ValueLen(32.into()), Attribute::Token(true)],
                )
                .unwrap();
            (key, seal(&s, key, b"kept secret").unwrap())
        };
        // The last session closed, which logged the user out.
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(seal(&s, key, b"kept secret"), RvError::KeyHandleInvalid);
        expect_rv(open(&s, key, &ct), RvError::KeyHandleInvalid);
        assert!(all(&s).is_empty());
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // Handles to private objects do not survive a logout: find the key again.
        let found = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!(found.len(), 1);
        let key = found[0];
        assert_eq!(open(&s, key, &ct).unwrap(), b"kept secret");

        // An operation begun under the login ends with it.
        let mut iv = [1u8; 12];
        s.encrypt_init(&gcm(&mut iv, b"header"), key).unwrap();
        s.logout().unwrap();
        expect_rv(s.encrypt_final(), RvError::OperationNotInitialized);
        drop(s);

        // The key survives a new module instance, usable after login only.
        reinitialize(&p);
        let s = p.open_rw_session(slot).unwrap();
        assert!(all(&s).is_empty());
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let found = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(open(&s, found[0], &ct).unwrap(), b"kept secret");
    }
);

// ---------------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------------

/// FIPS 180-4 examples: (mechanism, SHA("abc"), SHA("")).
fn digest_vectors() -> Vec<(Mechanism<'static>, &'static str, &'static str)> {
    vec![
        (
            Mechanism::Sha1,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ),
        (
            Mechanism::Sha224,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f",
        ),
        (
            Mechanism::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            Mechanism::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
        ),
        (
            Mechanism::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        ),
    ]
}

isolated_test!(
    fn digests_match_fips_180_4() {
        let (p, slot) = load_with_token();
        // Digests need no login and no read/write session.
        let s = p.open_ro_session(slot).unwrap();
        for (m, abc, empty) in digest_vectors() {
            assert_eq!(s.digest(&m, b"abc").unwrap(), hex(abc), "{m:?}(abc)");
            assert_eq!(s.digest(&m, b"").unwrap(), hex(empty), "{m:?}(empty)");
        }
        // The two-block example, for SHA-256.
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            s.digest(&Mechanism::Sha256, long).unwrap(),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
    }
);

isolated_test!(
    fn multi_part_digests_equal_single_part() {
        let (p, slot) = load_with_token();
        let s = p.open_ro_session(slot).unwrap();
        for (m, abc, empty) in digest_vectors() {
            s.digest_init(&m).unwrap();
            s.digest_update(b"a").unwrap();
            s.digest_update(b"").unwrap();
            s.digest_update(b"bc").unwrap();
            assert_eq!(s.digest_final().unwrap(), hex(abc), "{m:?}");
            s.digest_init(&m).unwrap();
            assert_eq!(s.digest_final().unwrap(), hex(empty), "{m:?}");
            // The final ended the operation.
            expect_rv(s.digest_final(), RvError::OperationNotInitialized);
        }
    }
);

isolated_test!(
    fn digest_operations_follow_the_rules() {
        let (p, slot) = load_with_token();
        let s = p.open_ro_session(slot).unwrap();
        expect_rv(s.digest_update(b"x"), RvError::OperationNotInitialized);
        expect_rv(s.digest_final(), RvError::OperationNotInitialized);
        s.digest_init(&Mechanism::Sha256).unwrap();
        s.digest_update(b"a").unwrap();
        expect_rv(s.digest_init(&Mechanism::Sha1), RvError::OperationActive);
        // The first digest continues.
        s.digest_update(b"bc").unwrap();
        assert_eq!(
            s.digest_final().unwrap(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // Not digest mechanisms.
        let mut iv = [0u8; 12];
        for m in [Mechanism::AesKeyGen, Mechanism::Sha256RsaPkcs, gcm(&mut iv, b"")] {
            expect_rv(s.digest(&m, b"abc"), RvError::MechanismInvalid);
        }
        expect_rv(s.digest_final(), RvError::OperationNotInitialized);
    }
);

isolated_test!(
    fn digest_key_feeds_the_value_of_a_readable_key() {
        let (_p, _slot, s) = logged_in();
        let readable = [Attribute::Sensitive(false), Attribute::Extractable(true)];
        // A generic secret whose value is "abc": its digest is the FIPS example.
        let abc = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(b"abc".to_vec()),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ])
            .unwrap();
        s.digest_init(&Mechanism::Sha256).unwrap();
        s.digest_key(abc).unwrap();
        assert_eq!(
            s.digest_final().unwrap(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // Mixed with data, and for a generated AES key.
        let aes = s
            .generate_key(&Mechanism::AesKeyGen, &[&[Attribute::ValueLen(32.into())][..], &readable].concat())
            .unwrap();
        let value = match read(&s, aes, AttributeType::Value) {
            Attribute::Value(v) => v,
            other => panic!("{other:?}"),
        };
        s.digest_init(&Mechanism::Sha512).unwrap();
        s.digest_update(b"prefix").unwrap();
        s.digest_key(aes).unwrap();
        s.digest_update(b"suffix").unwrap();
        let got = s.digest_final().unwrap();
        assert_eq!(got, s.digest(&Mechanism::Sha512, &[&b"prefix"[..], &value, b"suffix"].concat()).unwrap());
    }
);

isolated_test!(
    fn digest_key_refuses_protected_keys() {
        let (_p, _slot, s) = logged_in();
        let sensitive = aes_key(&s, &[9u8; 32], &[]);
        let unextractable = aes_key(&s, &[9u8; 32], &[Attribute::Sensitive(false)]);
        for key in [sensitive, unextractable] {
            s.digest_init(&Mechanism::Sha256).unwrap();
            s.digest_update(b"abc").unwrap();
            expect_rv(s.digest_key(key), RvError::KeyIndigestible);
            // The error ended the digest.
            expect_rv(s.digest_final(), RvError::OperationNotInitialized);
        }
        // Without a digest in progress.
        expect_rv(s.digest_key(sensitive), RvError::OperationNotInitialized);
        // An invalid handle.
        let gone = aes_key(&s, &[9u8; 32], &[Attribute::Sensitive(false), Attribute::Extractable(true)]);
        s.destroy_object(gone).unwrap();
        s.digest_init(&Mechanism::Sha256).unwrap();
        expect_rv(s.digest_key(gone), RvError::KeyHandleInvalid);
    }
);

// ---------------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn generate_random_returns_fresh_bytes_of_the_requested_length() {
        let (p, slot) = load_with_token();
        let s = p.open_ro_session(slot).unwrap();
        for len in [1u32, 16, 32, 1000, 65536] {
            assert_eq!(s.generate_random_vec(len).unwrap().len(), len as usize);
        }
        let a = s.generate_random_vec(32).unwrap();
        let b = s.generate_random_vec(32).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, vec![0u8; 32]);
        let mut buffer = [0u8; 64];
        s.generate_random_slice(&mut buffer).unwrap();
        assert_ne!(buffer, [0u8; 64]);
    }
);

isolated_test!(
    fn seed_random_is_not_supported() {
        let (p, slot) = load_with_token();
        let s = p.open_ro_session(slot).unwrap();
        expect_rv(s.seed_random(b"not so random"), RvError::RandomSeedNotSupported);
        // The generator still works.
        assert_eq!(s.generate_random_vec(16).unwrap().len(), 16);
    }
);
