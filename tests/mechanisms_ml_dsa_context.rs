//! ML-DSA context strings and HashML-DSA (PKCS#11 3.2) through the built module, with the
//! `cryptoki` crate's 3.2 support:
//!
//! 1. CKM_ML_DSA with a context string (1–255 bytes) signs and verifies in each parameter
//!    set; another context, or none, fails verification with `CKR_SIGNATURE_INVALID`; a
//!    longer context and a deterministic signature are refused.
//! 2. CKM_HASH_ML_DSA_SHA224 ... _SHAKE256 sign and verify in one part and in parts; the
//!    signature binds the hash (verifying with another fails); CKM_HASH_ML_DSA over a hash
//!    made outside the token (aws-lc-rs's digests) gives signatures the hashing variants
//!    accept, and the other way round; a hash of the wrong length is `CKR_DATA_LEN_RANGE`.
//! 3. `C_GetMechanismInfo` of the eleven HashML-DSA mechanisms.
//!
//! After each refusal the test checks that the objects are the same, no operation was left
//! active, and the session works.
#![allow(unsafe_code)] // pq_support's raw 3.2 calls

mod common;
mod pq_support;
use common::raw::load_raw;
use common::*;
use pq_support::*;

use aws_lc_rs::digest;
use aws_lc_rs::signature::UnparsedPublicKey;
use cryptoki::error::RvError;
use cryptoki::mechanism::dsa::{HashSignAdditionalContext, HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{MlDsaParameterSetType, MlKemParameterSetType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn with_context(hedge: HedgeType, context: &[u8]) -> Mechanism<'_> {
    Mechanism::MlDsa(SignAdditionalContext::new(hedge, Some(context)))
}

/// The HashML-DSA mechanism `kind` that hashes the data itself, with `context`.
fn hashing(kind: CK_MECHANISM_TYPE, context: Option<&[u8]>) -> Mechanism<'_> {
    let p = SignAdditionalContext::new(HedgeType::Preferred, context);
    match kind {
        CKM_HASH_ML_DSA_SHA224 => Mechanism::HashMlDsaSha224(p),
        CKM_HASH_ML_DSA_SHA256 => Mechanism::HashMlDsaSha256(p),
        CKM_HASH_ML_DSA_SHA384 => Mechanism::HashMlDsaSha384(p),
        CKM_HASH_ML_DSA_SHA512 => Mechanism::HashMlDsaSha512(p),
        CKM_HASH_ML_DSA_SHA3_224 => Mechanism::HashMlDsaSha3_224(p),
        CKM_HASH_ML_DSA_SHA3_256 => Mechanism::HashMlDsaSha3_256(p),
        CKM_HASH_ML_DSA_SHA3_384 => Mechanism::HashMlDsaSha3_384(p),
        CKM_HASH_ML_DSA_SHA3_512 => Mechanism::HashMlDsaSha3_512(p),
        CKM_HASH_ML_DSA_SHAKE128 => Mechanism::HashMlDsaShake128(p),
        CKM_HASH_ML_DSA_SHAKE256 => Mechanism::HashMlDsaShake256(p),
        _ => unreachable!("{kind}"),
    }
}

const HASHING: [CK_MECHANISM_TYPE; 10] = [
    CKM_HASH_ML_DSA_SHA224,
    CKM_HASH_ML_DSA_SHA256,
    CKM_HASH_ML_DSA_SHA384,
    CKM_HASH_ML_DSA_SHA512,
    CKM_HASH_ML_DSA_SHA3_224,
    CKM_HASH_ML_DSA_SHA3_256,
    CKM_HASH_ML_DSA_SHA3_384,
    CKM_HASH_ML_DSA_SHA3_512,
    CKM_HASH_ML_DSA_SHAKE128,
    CKM_HASH_ML_DSA_SHAKE256,
];

/// CKM_HASH_ML_DSA over a hash of `hash` (a digest mechanism), with `context`.
fn prehashed(hash: MechanismType, context: Option<&[u8]>) -> Mechanism<'_> {
    Mechanism::HashMlDsa(HashSignAdditionalContext::new(HedgeType::Required, context, hash))
}

/// The SHA-2 variants, their digest mechanism, and aws-lc-rs's digest outside the token.
fn sha2(kind: CK_MECHANISM_TYPE) -> Option<(MechanismType, &'static digest::Algorithm)> {
    Some(match kind {
        CKM_HASH_ML_DSA_SHA224 => (MechanismType::SHA224, &digest::SHA224),
        CKM_HASH_ML_DSA_SHA256 => (MechanismType::SHA256, &digest::SHA256),
        CKM_HASH_ML_DSA_SHA384 => (MechanismType::SHA384, &digest::SHA384),
        CKM_HASH_ML_DSA_SHA512 => (MechanismType::SHA512, &digest::SHA512),
        _ => return None,
    })
}

/// A refusal left no operation behind (a sign or verify update has none to continue).
#[track_caller]
fn assert_no_operation(s: &Session, before: usize) {
    expect_rv(s.sign_update(b"x"), RvError::OperationNotInitialized);
    expect_rv(s.verify_update(b"x"), RvError::OperationNotInitialized);
    assert_unchanged(s, before);
}

isolated_test!(
    fn ml_dsa_context_strings_sign_and_bind() {
        let (_p, _slot, s) = logged_in();
        let longest = [0xc5_u8; 255];
        for (set, _, sig_len) in ML_DSA_SETS {
            let (public, private) = dsa_pair(&s, set);
            let pk = value(&s, public);
            for context in [&b"tenant-7/invoices"[..], &longest, b"\0"] {
                let message = b"context-bound message";
                let signature =
                    s.sign(&with_context(HedgeType::Preferred, context), private, message).unwrap();
                assert_eq!(signature.len(), sig_len);
                s.verify(&with_context(HedgeType::Required, context), public, message, &signature).unwrap();
                // Verification ignores the hedge variant (3.2).
                s.verify(
                    &with_context(HedgeType::DeterministicRequired, context),
                    public,
                    message,
                    &signature,
                )
                .unwrap();
                // Hedged: two signatures differ, both verify.
                let again = s.sign(&with_context(HedgeType::Required, context), private, message).unwrap();
                assert_ne!(again, signature);
                s.verify(&with_context(HedgeType::Preferred, context), public, message, &again).unwrap();
                // Another context, no context, another message: not this signature. Nor is
                // it a pure ML-DSA signature to aws-lc-rs.
                let mut other = context.to_vec();
                other[0] ^= 1;
                expect_rv(
                    s.verify(&with_context(HedgeType::Preferred, &other), public, message, &signature),
                    RvError::SignatureInvalid,
                );
                expect_rv(s.verify(&ml_dsa(), public, message, &signature), RvError::SignatureInvalid);
                expect_rv(
                    s.verify(&with_context(HedgeType::Preferred, context), public, b"other", &signature),
                    RvError::SignatureInvalid,
                );
                assert!(
                    UnparsedPublicKey::new(aws_lc_algorithm(set), &pk).verify(message, &signature).is_err()
                );
            }
            // A signature in parts is the signature of the whole, and verifies in parts.
            let ctx = with_context(HedgeType::Preferred, b"parts");
            s.sign_init(&ctx, private).unwrap();
            s.sign_update(b"multi-").unwrap();
            s.sign_update(b"part").unwrap();
            let in_parts = s.sign_final().unwrap();
            s.verify(&ctx, public, b"multi-part", &in_parts).unwrap();
            s.verify_init(&ctx, public).unwrap();
            s.verify_update(b"multi-").unwrap();
            s.verify_update(b"part").unwrap();
            s.verify_final(&in_parts).unwrap();
            s.verify_init(&with_context(HedgeType::Preferred, b"other"), public).unwrap();
            s.verify_update(b"multi-part").unwrap();
            expect_rv(s.verify_final(&in_parts), RvError::SignatureInvalid);
        }
    }
);

isolated_test!(
    fn ml_dsa_context_refusals_change_nothing() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_65);
        let (kem_public, kem_private) = kem_pair(&s, MlKemParameterSetType::ML_KEM_768);
        let signature = s.sign(&with_context(HedgeType::Preferred, b"ok"), private, b"m").unwrap();
        let before = count(&s);
        let too_long = [0x11_u8; 256];
        for refused in [
            with_context(HedgeType::Preferred, &too_long),
            hashing(CKM_HASH_ML_DSA_SHA256, Some(&too_long)),
            prehashed(MechanismType::SHA256, Some(&too_long)),
            // A hash CKM_HASH_ML_DSA does not take (FIPS 204 approves none weaker than SHA-224).
            prehashed(MechanismType::SHA1, None),
        ] {
            expect_rv(s.sign_init(&refused, private), RvError::MechanismParamInvalid);
            assert_no_operation(&s, before);
        }
        expect_rv(
            s.verify(&with_context(HedgeType::Preferred, &too_long), public, b"m", &signature),
            RvError::MechanismParamInvalid,
        );
        assert_no_operation(&s, before);
        // Keys of another type.
        expect_rv(
            s.sign_init(&hashing(CKM_HASH_ML_DSA_SHA512, None), kem_private),
            RvError::KeyTypeInconsistent,
        );
        expect_rv(
            s.verify_init(&with_context(HedgeType::Preferred, b"ok"), kem_public),
            RvError::KeyTypeInconsistent,
        );
        assert_no_operation(&s, before);
        // A signature of the wrong length.
        expect_rv(
            s.verify(&with_context(HedgeType::Preferred, b"ok"), public, b"m", &signature[1..]),
            RvError::SignatureLenRange,
        );
        assert_no_operation(&s, before);
    }
);

/// Signs `message` with `mechanism` in two parts.
fn sign_in_parts(s: &Session, mechanism: &Mechanism, key: ObjectHandle, message: &[u8]) -> Vec<u8> {
    s.sign_init(mechanism, key).unwrap();
    s.sign_update(&message[..5]).unwrap();
    s.sign_update(&message[5..]).unwrap();
    s.sign_final().unwrap()
}

isolated_test!(
    fn hash_ml_dsa_each_hash_round_trips_and_binds_the_hash() {
        let (_p, _slot, s) = logged_in();
        let (public, private) = dsa_pair(&s, MlDsaParameterSetType::ML_DSA_44);
        let message = b"a message hashed before signing";
        let ctx = Some(&b"hash-ctx"[..]);
        for kind in HASHING {
            let mechanism = hashing(kind, ctx);
            let whole = s.sign(&mechanism, private, message).unwrap();
            let parts = sign_in_parts(&s, &mechanism, private, message);
            for signature in [&whole, &parts] {
                s.verify(&mechanism, public, message, signature).unwrap();
                s.verify_init(&mechanism, public).unwrap();
                s.verify_update(&message[..3]).unwrap();
                s.verify_update(&message[3..]).unwrap();
                s.verify_final(signature).unwrap();
            }
            // Another hash, another context, pure ML-DSA with the same context: refused.
            let other = if kind == CKM_HASH_ML_DSA_SHA256 {
                CKM_HASH_ML_DSA_SHA3_256
            } else {
                CKM_HASH_ML_DSA_SHA256
            };
            expect_rv(s.verify(&hashing(other, ctx), public, message, &whole), RvError::SignatureInvalid);
            expect_rv(s.verify(&hashing(kind, None), public, message, &whole), RvError::SignatureInvalid);
            expect_rv(
                s.verify(&with_context(HedgeType::Preferred, b"hash-ctx"), public, message, &whole),
                RvError::SignatureInvalid,
            );
            // CKM_HASH_ML_DSA over a hash made outside the token, both ways.
            if let Some((name, alg)) = sha2(kind) {
                let ph = digest::digest(alg, message);
                s.verify(&prehashed(name, ctx), public, ph.as_ref(), &whole).unwrap();
                let outside = s.sign(&prehashed(name, ctx), private, ph.as_ref()).unwrap();
                s.verify(&mechanism, public, message, &outside).unwrap();
                expect_rv(s.sign(&prehashed(name, ctx), private, &ph.as_ref()[1..]), RvError::DataLenRange);
                // CKM_HASH_ML_DSA is single-part.
                s.sign_init(&prehashed(name, ctx), private).unwrap();
                expect_rv(s.sign_update(ph.as_ref()), RvError::OperationNotInitialized);
            }
        }
    }
);

isolated_test!(
    fn hash_ml_dsa_mechanism_info() {
        let (p, slot, _s) = logged_in();
        // The list through the C ABI itself: cryptoki 0.12's list drops CKM_HASH_ML_DSA_SHAKE256,
        // which its conversion from CK_MECHANISM_TYPE lacks.
        let lib = load_raw();
        let mut len: CK_ULONG = 0;
        // SAFETY: a size query: NULL list, out-pointer to a live local.
        assert_eq!(unsafe { lib.C_GetMechanismList(slot.id(), std::ptr::null_mut(), &mut len) }, CKR_OK);
        let mut list = vec![0; len as usize];
        // SAFETY: `list` has room for `len` mechanism types.
        assert_eq!(unsafe { lib.C_GetMechanismList(slot.id(), list.as_mut_ptr(), &mut len) }, CKR_OK);
        let types = HASHING.iter().map(|&kind| hashing(kind, None).mechanism_type());
        for m in std::iter::once(MechanismType::HASH_ML_DSA).chain(types) {
            assert!(list.contains(&*m), "{m} listed");
            let info = p.get_mechanism_info(slot, m).unwrap();
            assert_eq!((info.min_key_size(), info.max_key_size()), (1312, 2592), "{m}");
            assert!(info.sign() && info.verify(), "{m}");
            assert!(!info.encrypt() && !info.generate_key_pair(), "{m}");
        }
    }
);
