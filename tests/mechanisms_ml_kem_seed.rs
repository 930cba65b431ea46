//! ML-KEM private keys from their seed d ‖ z (FIPS 203; PKCS#11 3.2's `CKA_SEED`; RFC 9935's
//! seed form of PKCS#8) through the built module:
//!
//! 1. `C_CreateObject` from `CKA_SEED` alone gives RFC 9935's `dk` for its example seed, in
//!    each parameter set, and decapsulates what is encapsulated to the RFC's `ek` (aws-lc-rs,
//!    given the RFC's `dk`, finds the same secret); with `CKA_VALUE` beside, they must agree.
//! 2. Bad seeds (another key's, of the wrong length, without a parameter set) are refused with
//!    their code and make nothing.
//! 3. Generated keys keep their seed; a readable one's seed alone makes the same key.
//! 4. `C_UnwrapKey` of the RFC's seed-only PKCS#8; `C_WrapKey` of that key gives the `both`
//!    form, byte for byte; bad seed-only blobs are refused.
//! 5. The attack: a sensitive seed is not readable, not found by search, not changed, not
//!    wrapped, and not stored in clear.
#![allow(unsafe_code)]

mod common;
mod pq_support;
use common::objects::bytes;
use common::raw::load_raw;
use common::*;
use pq_support::*;

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_512, ML_KEM_768, ML_KEM_1024};
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle, ParameterSetType,
};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use cryptoki_sys::*;

/// RFC 9935's example seed: 00 01 … 3f.
fn rfc_seed() -> Vec<u8> {
    (0..64).collect()
}

/// RFC 9935's example keys of [`rfc_seed`]: the parameter set, `ek` and `dk`.
fn rfc_examples() -> Vec<(MlKemParameterSetType, Vec<u8>, Vec<u8>)> {
    include_str!("fixtures/rfc9935_ml_kem_keys.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let set = match f[0] {
                "512" => MlKemParameterSetType::ML_KEM_512,
                "768" => MlKemParameterSetType::ML_KEM_768,
                _ => MlKemParameterSetType::ML_KEM_1024,
            };
            (set, hex(f[1]), hex(f[2]))
        })
        .collect()
}

/// A readable generic secret, for comparing the two ends' shared secrets.
fn readable() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// An ML-KEM private key template with `extra` (the seed, the value, flags).
fn private_key(set: Option<MlKemParameterSetType>, extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::ML_KEM),
        Attribute::Decapsulate(true),
    ];
    t.extend(set.map(|s| Attribute::ParameterSet(s.into())));
    t.extend_from_slice(extra);
    t
}

fn public_key(s: &Session, set: MlKemParameterSetType, ek: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::ML_KEM),
        Attribute::ParameterSet(set.into()),
        Attribute::Value(ek.to_vec()),
        Attribute::Encapsulate(true),
    ])
    .unwrap()
}

fn seed_of(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(key, &[AttributeType::Seed]).unwrap().as_slice() {
        [Attribute::Seed(seed)] => seed.clone(),
        other => panic!("no readable CKA_SEED: {other:?}"),
    }
}

/// Encapsulates to `public` and decapsulates with `private`: the two secrets and the
/// ciphertext.
fn round_trip(s: &Session, public: ObjectHandle, private: ObjectHandle) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (rv, _, ciphertext, sent) = encapsulate(s, public, &readable(), Some(4096));
    assert_eq!(rv, CKR_OK);
    let (rv, received) = decapsulate(s, private, &readable(), &ciphertext);
    assert_eq!(rv, CKR_OK);
    (value(s, handle_of(s, sent)), value(s, handle_of(s, received)), ciphertext)
}

isolated_test!(
    fn private_keys_from_their_seed_alone_are_rfc_9935s() {
        let (_p, _slot, s) = logged_in();
        let readable_key = [Attribute::Sensitive(false), Attribute::Extractable(true)];
        for (set, ek, dk) in rfc_examples() {
            let seed = [&readable_key[..], &[Attribute::Seed(rfc_seed())]].concat();
            let private = s.create_object(&private_key(Some(set), &seed)).unwrap();
            assert_eq!(value(&s, private), dk, "{set}: kept with the RFC's dk");
            assert_eq!(seed_of(&s, private), rfc_seed());
            let info = bytes(&s, private, AttributeType::PublicKeyInfo);
            assert!(info.ends_with(&ek), "{set}: CKA_PUBLIC_KEY_INFO holds the RFC's ek");

            let public = public_key(&s, set, &ek);
            let (sent, received, ciphertext) = round_trip(&s, public, private);
            assert_eq!((sent.len(), &received), (32, &sent));
            let algorithm = match *set.as_ref() {
                CKP_ML_KEM_512 => &ML_KEM_512,
                CKP_ML_KEM_768 => &ML_KEM_768,
                _ => &ML_KEM_1024,
            };
            let theirs = DecapsulationKey::new(algorithm, &dk).unwrap();
            let secret = theirs.decapsulate(Ciphertext::from(ciphertext.as_slice())).unwrap();
            assert_eq!(secret.as_ref(), sent.as_slice(), "{set}: aws-lc-rs agrees");

            // The seed and the value together, agreeing: the same key.
            let both = [&seed[..], &[Attribute::Value(dk.clone())]].concat();
            let again = s.create_object(&private_key(Some(set), &both)).unwrap();
            assert_eq!(value(&s, again), dk);
            let (sent, received, _) = round_trip(&s, public, again);
            assert_eq!(received, sent);
        }
    }
);

isolated_test!(
    fn bad_seeds_are_refused_and_make_nothing() {
        let (_p, _slot, s) = logged_in();
        let (set, _, dk) = rfc_examples().remove(1);
        let before = count(&s);
        // A seed of another key beside the RFC's dk: another d, or another z.
        for at in [0, 63] {
            let mut other = rfc_seed();
            other[at] ^= 1;
            let t = private_key(Some(set), &[Attribute::Seed(other), Attribute::Value(dk.clone())]);
            expect_rv(s.create_object(&t), RvError::AttributeValueInvalid);
        }
        // Seeds of the wrong length, alone or beside dk. (An empty one is no seed, as for
        // ML-DSA: alone, the key is incomplete.)
        for len in [1, 32, 63, 65] {
            let seed = Attribute::Seed(vec![3; len]);
            let alone = private_key(Some(set), std::slice::from_ref(&seed));
            expect_rv(s.create_object(&alone), RvError::AttributeValueInvalid);
            let t = private_key(Some(set), &[seed, Attribute::Value(dk.clone())]);
            expect_rv(s.create_object(&t), RvError::AttributeValueInvalid);
        }
        let empty = private_key(Some(set), &[Attribute::Seed(Vec::new())]);
        expect_rv(s.create_object(&empty), RvError::TemplateIncomplete);
        // The RFC's ML-KEM-768 pair labelled ML-KEM-512; an unknown parameter set; none.
        let t = private_key(
            Some(MlKemParameterSetType::ML_KEM_512),
            &[Attribute::Seed(rfc_seed()), Attribute::Value(dk.clone())],
        );
        expect_rv(s.create_object(&t), RvError::AttributeValueInvalid);
        let unknown = ParameterSetType::try_from(Ulong::from(9)).unwrap();
        let t = [&private_key(None, &[Attribute::Seed(rfc_seed())])[..], &[Attribute::ParameterSet(unknown)]]
            .concat();
        expect_rv(s.create_object(&t), RvError::AttributeValueInvalid);
        expect_rv(
            s.create_object(&private_key(None, &[Attribute::Seed(rfc_seed())])),
            RvError::TemplateIncomplete,
        );
        assert_unchanged(&s, before);
    }
);

isolated_test!(
    fn generated_keys_keep_their_seed_and_the_seed_alone_remakes_them() {
        let (_p, _slot, s) = logged_in();
        let mut seeds = Vec::new();
        for (set, _, _) in rfc_examples() {
            let (public, private) = s
                .generate_key_pair(
                    &Mechanism::MlKemKeyPairGen,
                    &[Attribute::ParameterSet(set.into()), Attribute::Encapsulate(true)],
                    &[
                        Attribute::Sensitive(false),
                        Attribute::Extractable(true),
                        Attribute::Decapsulate(true),
                    ],
                )
                .unwrap();
            let seed = seed_of(&s, private);
            assert_eq!(seed.len(), 64);
            let dk = value(&s, private);
            assert_eq!(dk[dk.len() - 32..], seed[32..], "z ends dk");
            let seed_alone =
                [Attribute::Sensitive(false), Attribute::Extractable(true), Attribute::Seed(seed.clone())];
            let remade = s.create_object(&private_key(Some(set), &seed_alone)).unwrap();
            assert_eq!(value(&s, remade), dk);
            assert_eq!(
                bytes(&s, remade, AttributeType::PublicKeyInfo),
                bytes(&s, public, AttributeType::PublicKeyInfo)
            );
            let (sent, received, _) = round_trip(&s, public, remade);
            assert_eq!(received, sent);
            seeds.push(seed);
        }
        // Each generation drew a seed of its own (d, the first half, too).
        seeds.sort();
        seeds.dedup_by(|a, b| a[..32] == b[..32]);
        assert_eq!(seeds.len(), 3);
    }
);

/// The known value of the wrapping key, so that the test can seal and open KWP blobs itself.
const KEK: [u8; 32] = [0x5a; 32];

fn seal(plain: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; plain.len() + 16];
    KeyEncryptionKey::new(&AES_256, &KEK).unwrap().wrap_with_padding(plain, &mut out).unwrap().to_vec()
}

fn open(blob: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; blob.len()];
    KeyEncryptionKey::new(&AES_256, &KEK).unwrap().unwrap_with_padding(blob, &mut out).unwrap().to_vec()
}

/// RFC 9935's PKCS#8 of an ML-KEM key (OID arc 2.16.840.1.101.3.4.4.`n`) around the
/// `privateKey` CHOICE `choice`.
fn pkcs8(n: u8, choice: &[u8]) -> Vec<u8> {
    let oid = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, n];
    pq_support::pkcs8(&oid, choice)
}

isolated_test!(
    fn the_seed_only_pkcs8_unwraps_and_wraps_back_as_both() {
        let (_p, _slot, s) = logged_in();
        let kek = wrapping_key(&s, &KEK);
        let template = private_key(None, &[Attribute::Sensitive(false), Attribute::Extractable(true)]);
        for (n, (set, ek, dk)) in (1..).zip(rfc_examples()) {
            // RFC 9935 C.1.x.1, the seed format: `seed [0] IMPLICIT OCTET STRING`.
            let seed_only = pkcs8(n, &tlv(0x80, &rfc_seed()));
            let key = unwrap(&s, &mut kwp(), kek, &seal(&seed_only), &template).unwrap();
            assert_eq!(value(&s, key), dk, "{set}");
            assert_eq!(seed_of(&s, key), rfc_seed());
            let read = s.get_attributes(key, &[AttributeType::ParameterSet]).unwrap();
            assert_eq!(read, vec![Attribute::ParameterSet(set.into())], "from the blob's OID");
            let (sent, received, _) = round_trip(&s, public_key(&s, set, &ek), key);
            assert_eq!(received, sent);

            // Back out: RFC 9935's `both` form (C.1.x.3), byte for byte.
            let blob = wrap(&s, &mut kwp(), kek, key).unwrap();
            let both = tlv(0x30, &[tlv(0x04, &rfc_seed()), tlv(0x04, &dk)].concat());
            assert_eq!(open(&blob), pkcs8(n, &both), "{set}");
        }

        // Seed-only blobs that are no key: a seed of 63 or 65 bytes, or empty.
        let before = count(&s);
        for len in [0, 63, 65] {
            let blob = seal(&pkcs8(1, &tlv(0x80, &vec![7; len])));
            assert_eq!(
                unwrap(&s, &mut kwp(), kek, &blob, &template).err(),
                Some(CKR_WRAPPED_KEY_INVALID),
                "{len}"
            );
        }
        // `both` whose seed is not dk's (the RFC's ML-KEM-512 dk with another z).
        let (_, _, dk) = rfc_examples().remove(0);
        let mut other = rfc_seed();
        other[63] ^= 1;
        let both = tlv(0x30, &[tlv(0x04, &other), tlv(0x04, &dk)].concat());
        assert_eq!(
            unwrap(&s, &mut kwp(), kek, &seal(&pkcs8(1, &both)), &template).err(),
            Some(CKR_WRAPPED_KEY_INVALID)
        );
        assert_unchanged(&s, before);
    }
);

// ---------------------------------------------------------------------------------------
// The attack: a seed given to the token stays inside.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn a_sensitive_seed_is_neither_readable_findable_changed_wrapped_nor_stored_in_clear() {
        let (p, _slot, s) = logged_in();
        let (set, ek, _) = rfc_examples().remove(2);
        // A seed of its own, so that the files cannot hold it by accident.
        let seed: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        let private = s
            .create_object(&private_key(
                Some(set),
                &[
                    Attribute::Token(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Seed(seed.clone()),
                ],
            ))
            .unwrap();
        let (rfc_public, rfc_private) = (
            public_key(&s, set, &ek),
            s.create_object(&private_key(Some(set), &[Attribute::Seed(rfc_seed())])).unwrap(),
        );
        let kek = wrapping_key(&s, &KEK);
        let before = count(&s);
        let lib = load_raw();
        for attribute in [CKA_SEED, CKA_VALUE] {
            let mut buffer = vec![0u8; 4096];
            let mut t =
                [CK_ATTRIBUTE { type_: attribute, pValue: buffer.as_mut_ptr().cast(), ulValueLen: 4096 }];
            // SAFETY: one attribute whose buffer holds 4096 bytes.
            let rv = unsafe { lib.C_GetAttributeValue(s.handle(), private.handle(), t.as_mut_ptr(), 1) };
            assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert!(buffer.iter().all(|b| *b == 0), "nothing of the value was written");
        }
        assert!(s.find_objects(&[Attribute::Seed(seed.clone())]).unwrap().is_empty());
        // Replacing the seed (with the RFC's) is refused, and the key is still its own.
        assert!(s.update_attributes(private, &[Attribute::Seed(rfc_seed())]).is_err());
        let (rv, _, ciphertext, _) = encapsulate(&s, rfc_public, &readable(), Some(4096));
        assert_eq!(rv, CKR_OK);
        let secret = |key| {
            let (rv, h) = decapsulate(&s, key, &readable(), &ciphertext);
            assert_eq!(rv, CKR_OK);
            value(&s, handle_of(&s, h))
        };
        assert_ne!(secret(private), secret(rfc_private), "still another key than the RFC's");
        let before_wrap = count(&s);
        expect_rv(s.wrap_key(&Mechanism::AesKeyWrapPad, kek, private), RvError::KeyUnextractable);
        assert_eq!(count(&s), before_wrap);
        assert!(before_wrap > before, "the decapsulations made keys; nothing else did");
        drop(s);
        // Neither half of the seed: d, nor z (which also ends dk).
        let check = |stage: &str| {
            let bytes = all_file_bytes();
            assert!(!contains(&bytes, &seed[..32]), "{stage}: d in clear");
            assert!(!contains(&bytes, &seed[32..]), "{stage}: z in clear");
        };
        check("running");
        p.finalize().unwrap();
        check("finalized");
    }
);
