//! ML-DSA and ML-KEM private keys through `C_WrapKey`/`C_UnwrapKey` (PKCS#11 3.2: PKCS#8
//! `PrivateKeyInfo` with the NIST algorithm identifiers; the seed form, the expanded form or
//! both, as `src/mechanism/pq_pkcs8.rs` says):
//!
//! 1. Each ML-DSA parameter set wraps under AES-KWP, AES-GCM and AES-CBC-PAD, unwraps into a
//!    key that signs what the original public key verifies; the KWP blob, opened outside the
//!    token with aws-lc-rs, is a PKCS#8 AWS-LC reads as the same key.
//! 2. ML-KEM keys round-trip and decapsulate what was encapsulated to the original.
//! 3. Attacks and bad inputs: a tampered blob, a blob of another key type than the template
//!    names, a template that sets what the blob gives, a PKCS#8 whose seed and expanded key
//!    disagree, an ML-KEM seed of the wrong length, an unextractable key; each refused with
//!    its code and nothing created.
#![allow(unsafe_code)]

mod common;
mod pq_support;
use common::logged_in;
use common::raw::{gcm_params, ulen};
use pq_support::*;

use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use aws_lc_rs::signature::{KeyPair, PqdsaKeyPair, UnparsedPublicKey};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
    ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki_sys::*;

/// The known value of the wrapping key, so that the test can open a KWP blob itself.
const KEK: [u8; 32] = [0x4b; 32];

/// An ML-DSA private key that may leave wrapped.
fn extractable_dsa_pair(s: &Session, set: MlDsaParameterSetType) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::ParameterSet(set.into()), Attribute::Verify(true)],
        &[Attribute::Sensitive(true), Attribute::Extractable(true), Attribute::Sign(true)],
    )
    .unwrap()
}

fn private_template(key_type: KeyType) -> Vec<Attribute> {
    let usage =
        if key_type == KeyType::ML_KEM { Attribute::Decapsulate(true) } else { Attribute::Sign(true) };
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sensitive(true),
        usage,
    ]
}

fn public_key_info(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(key, &[AttributeType::PublicKeyInfo]).unwrap().as_slice() {
        [Attribute::PublicKeyInfo(info)] => info.clone(),
        other => panic!("no CKA_PUBLIC_KEY_INFO: {other:?}"),
    }
}

isolated_test!(
    fn ml_dsa_keys_wrap_and_unwrap_under_each_mechanism() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s, &KEK);
        let mut iv = [7u8; 16];
        let mut gcm_iv = [9u8; 12];
        let mut gcm_params = gcm_params(&mut gcm_iv);
        for (set, _, _) in ML_DSA_SETS {
            let (public, private) = extractable_dsa_pair(&s, set);
            let pk = value(&s, public);
            let mechanisms = [
                kwp(),
                CK_MECHANISM {
                    mechanism: CKM_AES_GCM,
                    pParameter: (&mut gcm_params as *mut CK_GCM_PARAMS).cast(),
                    ulParameterLen: ulen(size_of::<CK_GCM_PARAMS>()),
                },
                CK_MECHANISM {
                    mechanism: CKM_AES_CBC_PAD,
                    pParameter: iv.as_mut_ptr().cast(),
                    ulParameterLen: 16,
                },
            ];
            for mut m in mechanisms {
                let wrapped = wrap(&s, &mut m, kek, private).unwrap();
                let copy = unwrap(&s, &mut m, kek, &wrapped, &private_template(KeyType::ML_DSA)).unwrap();
                // The parameter set came from the blob; the key signs for the original public key.
                let read =
                    s.get_attributes(copy, &[AttributeType::ParameterSet, AttributeType::Seed]).unwrap();
                assert_eq!(read, vec![Attribute::ParameterSet(set.into())], "the seed stays sensitive");
                assert_eq!(public_key_info(&s, copy), public_key_info(&s, public));
                let signature = s.sign(&ml_dsa(), copy, b"wrapped and back").unwrap();
                s.verify(&ml_dsa(), public, b"wrapped and back", &signature).unwrap();
                UnparsedPublicKey::new(aws_lc_algorithm(set), &pk)
                    .verify(b"wrapped and back", &signature)
                    .unwrap();
                s.destroy_object(copy).unwrap();
            }

            // Outside the token: the KWP blob opens to a PKCS#8 that AWS-LC reads as this key.
            let wrapped = wrap(&s, &mut kwp(), kek, private).unwrap();
            let mut plain = vec![0u8; wrapped.len()];
            let kek_lc = KeyEncryptionKey::new(&AES_256, &KEK).unwrap();
            let pkcs8 = kek_lc.unwrap_with_padding(&wrapped, &mut plain).unwrap();
            let alg = match *set.as_ref() {
                CKP_ML_DSA_44 => &aws_lc_rs::signature::ML_DSA_44_SIGNING,
                CKP_ML_DSA_65 => &aws_lc_rs::signature::ML_DSA_65_SIGNING,
                _ => &aws_lc_rs::signature::ML_DSA_87_SIGNING,
            };
            let theirs = PqdsaKeyPair::from_pkcs8(alg, pkcs8).unwrap();
            assert_eq!(theirs.public_key().as_ref(), pk.as_slice());
        }
    }
);

isolated_test!(
    fn ml_dsa_keys_of_aws_lc_unwrap_from_their_seed_form() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s, &KEK);
        // AWS-LC's PKCS#8 of a key from a known seed (the seed form), wrapped outside.
        let theirs = PqdsaKeyPair::from_seed(&aws_lc_rs::signature::ML_DSA_44_SIGNING, &[0x33; 32]).unwrap();
        let pkcs8 = theirs.to_pkcs8v1().unwrap();
        let mut out = vec![0u8; pkcs8.as_ref().len() + 16];
        let blob = KeyEncryptionKey::new(&AES_256, &KEK)
            .unwrap()
            .wrap_with_padding(pkcs8.as_ref(), &mut out)
            .unwrap()
            .to_vec();
        let key = unwrap(&s, &mut kwp(), kek, &blob, &private_template(KeyType::ML_DSA)).unwrap();
        let signature = s.sign(&ml_dsa(), key, b"from the seed").unwrap();
        UnparsedPublicKey::new(&aws_lc_rs::signature::ML_DSA_44, theirs.public_key().as_ref())
            .verify(b"from the seed", &signature)
            .unwrap();
    }
);

isolated_test!(
    fn ml_kem_keys_wrap_unwrap_and_decapsulate() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s, &KEK);
        let readable = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        for set in [
            MlKemParameterSetType::ML_KEM_512,
            MlKemParameterSetType::ML_KEM_768,
            MlKemParameterSetType::ML_KEM_1024,
        ] {
            let (public, private) = s
                .generate_key_pair(
                    &Mechanism::MlKemKeyPairGen,
                    &[Attribute::ParameterSet(set.into()), Attribute::Encapsulate(true)],
                    &[Attribute::Sensitive(true), Attribute::Extractable(true), Attribute::Decapsulate(true)],
                )
                .unwrap();
            let wrapped = wrap(&s, &mut kwp(), kek, private).unwrap();
            let copy = unwrap(&s, &mut kwp(), kek, &wrapped, &private_template(KeyType::ML_KEM)).unwrap();
            assert_eq!(public_key_info(&s, copy), public_key_info(&s, public));
            let (rv, _, ciphertext, sent) = encapsulate(&s, public, &readable, Some(4096));
            assert_eq!(rv, CKR_OK);
            let (rv, received) = decapsulate(&s, copy, &readable, &ciphertext);
            assert_eq!(rv, CKR_OK);
            assert_eq!(value(&s, handle_of(&s, received)), value(&s, handle_of(&s, sent)));
        }
    }
);

isolated_test!(
    fn bad_blobs_and_templates_are_refused_and_create_nothing() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s, &KEK);
        let (_, dsa) = extractable_dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let wrapped = wrap(&s, &mut kwp(), kek, dsa).unwrap();
        let before = count(&s);
        let dsa_template = private_template(KeyType::ML_DSA);

        // A tampered blob fails KWP's integrity check.
        let mut tampered = wrapped.clone();
        tampered[20] ^= 1;
        assert_eq!(
            unwrap(&s, &mut kwp(), kek, &tampered, &dsa_template).err(),
            Some(CKR_WRAPPED_KEY_INVALID)
        );
        // An ML-DSA key where the template names ML-KEM, or EC.
        assert_eq!(
            unwrap(&s, &mut kwp(), kek, &wrapped, &private_template(KeyType::ML_KEM)).err(),
            Some(CKR_TEMPLATE_INCONSISTENT)
        );
        assert_eq!(
            unwrap(&s, &mut kwp(), kek, &wrapped, &private_template(KeyType::EC)).err(),
            Some(CKR_TEMPLATE_INCONSISTENT)
        );
        // The template may not set what the blob gives.
        let mut with_set = dsa_template.clone();
        with_set.push(Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_44.into()));
        assert!(unwrap(&s, &mut kwp(), kek, &wrapped, &with_set).is_err());
        let mut with_seed = dsa_template.clone();
        with_seed.push(Attribute::Seed(vec![1; 32]));
        assert!(unwrap(&s, &mut kwp(), kek, &wrapped, &with_seed).is_err());
        assert_unchanged(&s, before);

        // Well-wrapped PKCS#8 that is no key this token takes.
        let seal = |plain: &[u8]| {
            let mut out = vec![0u8; plain.len() + 16];
            KeyEncryptionKey::new(&AES_256, &KEK)
                .unwrap()
                .wrap_with_padding(plain, &mut out)
                .unwrap()
                .to_vec()
        };
        let ml_dsa_44 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11];
        let ml_kem_512 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x01];
        let theirs = PqdsaKeyPair::from_seed(&aws_lc_rs::signature::ML_DSA_44_SIGNING, &[0x33; 32]).unwrap();
        let sk = aws_lc_rs::encoding::AsRawBytes::as_raw_bytes(&theirs.private_key()).unwrap();
        let octets = |b: &[u8]| {
            let mut der = vec![0x04, 0x82, (b.len() >> 8) as u8, b.len() as u8];
            if b.len() < 0x80 {
                der = vec![0x04, b.len() as u8];
            }
            der.extend_from_slice(b);
            der
        };
        let both = |seed: &[u8]| {
            let body = [octets(seed), octets(sk.as_ref())].concat();
            [vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8], body].concat()
        };
        let cases: [(&str, Vec<u8>); 5] = [
            ("both, the seed of another key", pkcs8(&ml_dsa_44, &both(&[0x34; 32]))),
            ("a seed of 31 bytes", pkcs8(&ml_dsa_44, &[&[0x80, 31][..], &[0x33; 31]].concat())),
            ("an expanded key one byte short", pkcs8(&ml_dsa_44, &octets(&sk.as_ref()[1..]))),
            ("ML-KEM from a seed of 63 bytes", pkcs8(&ml_kem_512, &[&[0x80, 63][..], &[0x33; 63]].concat())),
            ("not DER", b"definitely not a PrivateKeyInfo".to_vec()),
        ];
        for (what, plain) in cases {
            let template = if what.starts_with("ML-KEM") {
                private_template(KeyType::ML_KEM)
            } else {
                dsa_template.clone()
            };
            assert_eq!(
                unwrap(&s, &mut kwp(), kek, &seal(&plain), &template).err(),
                Some(CKR_WRAPPED_KEY_INVALID),
                "{what}"
            );
        }
        // The good one of the same construction unwraps (so the cases above fail for their fault).
        assert!(
            unwrap(&s, &mut kwp(), kek, &seal(&pkcs8(&ml_dsa_44, &both(&[0x33; 32]))), &dsa_template).is_ok()
        );
        assert_eq!(count(&s), before + 1);

        // A key that is not extractable does not leave.
        let (_, locked) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_65);
        assert_eq!(wrap(&s, &mut kwp(), kek, locked).err(), Some(CKR_KEY_UNEXTRACTABLE));
        // A public key is not wrapped (PKCS#11 wraps secret and private keys; this one is not
        // extractable either, which is checked first).
        let (public, _) = extractable_dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        assert_eq!(wrap(&s, &mut kwp(), kek, public).err(), Some(CKR_KEY_UNEXTRACTABLE));
    }
);
