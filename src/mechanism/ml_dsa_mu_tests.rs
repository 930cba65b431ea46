//! Tests of `ml_dsa_mu`: the external-mu construction pinned against aws-lc-rs's pure
//! ML-DSA, context strings, and HashML-DSA with each hash.

use aws_lc_rs::signature::UnparsedPublicKey;
use aws_lc_rs::signature::{self as sig};

use super::*;
use crate::mechanism::ml_dsa::generate_key_pair;

fn context(context: &[u8]) -> MechanismParams {
    MechanismParams::SignContext(SignContext {
        hedge: CKH_HEDGE_PREFERRED,
        context: context.to_vec(),
        hash: None,
    })
}

fn hashed(hash: CK_MECHANISM_TYPE, ctx: &[u8]) -> MechanismParams {
    MechanismParams::SignContext(SignContext {
        hedge: CKH_HEDGE_REQUIRED,
        context: ctx.to_vec(),
        hash: Some(hash),
    })
}

/// The construction of tr and mu, pinned two ways against aws-lc-rs's pure ML-DSA (empty
/// context, domain byte 0): this module's signature verifies there, and aws-lc-rs's
/// signature verifies here, in every parameter set.
#[test]
fn pure_mu_matches_aws_lc_rs() {
    for (set, alg) in
        [(CKP_ML_DSA_44, &sig::ML_DSA_44), (CKP_ML_DSA_65, &sig::ML_DSA_65), (CKP_ML_DSA_87, &sig::ML_DSA_87)]
    {
        let (q, d) = generate_key_pair(set).unwrap();
        let mut ours = sign_init(CKM_ML_DSA, &MechanismParams::None, &d).unwrap();
        ours.update(b"pinned ").unwrap();
        ours.update(b"message").unwrap();
        let signature = ours.finish().unwrap();
        UnparsedPublicKey::new(alg, &q.value).verify(b"pinned message", &signature).unwrap();
        let theirs =
            super::super::ml_dsa::sign_init(&MechanismParams::None, &d).unwrap().sign(b"theirs").unwrap();
        verify_init(CKM_ML_DSA, &MechanismParams::None, &q).unwrap().verify(b"theirs", &theirs).unwrap();
        assert_eq!(
            verify_init(CKM_ML_DSA, &MechanismParams::None, &q).unwrap().verify(b"Theirs", &theirs),
            Err(Error::SignatureInvalid)
        );
    }
}

#[test]
fn context_strings_bind_the_signature() {
    let (q, d) = generate_key_pair(CKP_ML_DSA_65).unwrap();
    for ctx in [&b"x"[..], &[0xa5; 255][..]] {
        let signature = super::super::ml_dsa::sign_init(&context(ctx), &d).unwrap().sign(b"m").unwrap();
        super::super::ml_dsa::verify_init(&context(ctx), &q).unwrap().verify(b"m", &signature).unwrap();
        // Another context, none, or the pure verifier of aws-lc-rs: refused.
        for other in [context(b"y"), MechanismParams::None] {
            assert_eq!(
                super::super::ml_dsa::verify_init(&other, &q).unwrap().verify(b"m", &signature),
                Err(Error::SignatureInvalid)
            );
        }
    }
    assert_eq!(
        super::super::ml_dsa::sign_init(&context(&[0; 256]), &d).err(),
        Some(Error::MechanismParamInvalid)
    );
}

#[test]
fn hash_ml_dsa_each_hash_round_trips_and_binds_the_hash() {
    let (q, d) = generate_key_pair(CKP_ML_DSA_44).unwrap();
    let message = b"pre-hashed message";
    for &(mechanism, hash) in &HASH_ML_DSA[1..] {
        let hash = hash.unwrap();
        let mut signer = sign_init(mechanism, &hashed_ctx(b"app"), &d).unwrap();
        signer.update(&message[..3]).unwrap();
        signer.update(&message[3..]).unwrap();
        let signature = signer.finish().unwrap();
        let mut verifier = verify_init(mechanism, &hashed_ctx(b"app"), &q).unwrap();
        verifier.update(message).unwrap();
        verifier.finish(&signature).unwrap();
        // CKM_HASH_ML_DSA over the hash made outside gives the same mu.
        let mut h = Hashing::new(hash).unwrap();
        h.update(message).unwrap();
        let ph = h.finish().unwrap();
        if let Some(name) = digest_mechanism(hash) {
            verify_init(CKM_HASH_ML_DSA, &hashed(name, b"app"), &q).unwrap().verify(&ph, &signature).unwrap();
            let again = sign_init(CKM_HASH_ML_DSA, &hashed(name, b"app"), &d).unwrap().sign(&ph).unwrap();
            verify_init(mechanism, &hashed_ctx(b"app"), &q).unwrap().verify(message, &again).unwrap();
            assert_eq!(
                sign_init(CKM_HASH_ML_DSA, &hashed(name, b"app"), &d).unwrap().sign(&ph[1..]).err(),
                Some(Error::DataLenRange)
            );
        }
        // Another hash, another context, or pure ML-DSA: refused.
        let other =
            if mechanism == CKM_HASH_ML_DSA_SHA256 { CKM_HASH_ML_DSA_SHA384 } else { CKM_HASH_ML_DSA_SHA256 };
        for (m, p) in
            [(other, hashed_ctx(b"app")), (mechanism, hashed_ctx(b"apq")), (CKM_ML_DSA, context(b"app"))]
        {
            assert_eq!(
                verify_init(m, &p, &q).unwrap().verify(message, &signature),
                Err(Error::SignatureInvalid)
            );
        }
    }
}

fn hashed_ctx(ctx: &[u8]) -> MechanismParams {
    context(ctx)
}

fn digest_mechanism(hash: Hash) -> Option<CK_MECHANISM_TYPE> {
    Some(match hash {
        Hash::Sha224 => CKM_SHA224,
        Hash::Sha256 => CKM_SHA256,
        Hash::Sha384 => CKM_SHA384,
        Hash::Sha512 => CKM_SHA512,
        Hash::Sha3_224 => CKM_SHA3_224,
        Hash::Sha3_256 => CKM_SHA3_256,
        Hash::Sha3_384 => CKM_SHA3_384,
        Hash::Sha3_512 => CKM_SHA3_512,
        Hash::Shake128 | Hash::Shake256 => return None,
    })
}

#[test]
fn bad_parameters_are_refused() {
    let (q, d) = generate_key_pair(CKP_ML_DSA_44).unwrap();
    let deterministic = MechanismParams::SignContext(SignContext {
        hedge: CKH_DETERMINISTIC_REQUIRED,
        context: vec![1],
        hash: None,
    });
    // Deterministic HashML-DSA (FIPS 204 rnd = 0): the same signature twice, verified under
    // any hedge variant (verification ignores it).
    let once = sign_init(CKM_HASH_ML_DSA_SHA256, &deterministic, &d).unwrap().sign(b"m").unwrap();
    assert_eq!(sign_init(CKM_HASH_ML_DSA_SHA256, &deterministic, &d).unwrap().sign(b"m").unwrap(), once);
    verify_init(CKM_HASH_ML_DSA_SHA256, &deterministic, &q).unwrap().verify(b"m", &once).unwrap();
    let hedged =
        MechanismParams::SignContext(SignContext { hedge: CKH_HEDGE_REQUIRED, context: vec![1], hash: None });
    verify_init(CKM_HASH_ML_DSA_SHA256, &hedged, &q).unwrap().verify(b"m", &once).unwrap();
    assert_ne!(sign_init(CKM_HASH_ML_DSA_SHA256, &hedged, &d).unwrap().sign(b"m").unwrap(), once);
    let unknown = MechanismParams::SignContext(SignContext { hedge: 7, context: vec![], hash: None });
    assert_eq!(sign_init(CKM_HASH_ML_DSA_SHA256, &unknown, &d).err(), Some(Error::MechanismParamInvalid));
    // CKM_HASH_ML_DSA needs a hash it knows; the hashing variants take none in the parameter.
    for (m, p) in [
        (CKM_HASH_ML_DSA, context(b"")),
        (CKM_HASH_ML_DSA, hashed(CKM_MD5, b"")),
        (CKM_HASH_ML_DSA, MechanismParams::None),
        (CKM_HASH_ML_DSA_SHA256, hashed(CKM_SHA256, b"")),
        (CKM_HASH_ML_DSA_SHA256, MechanismParams::Opaque(vec![1])),
    ] {
        assert_eq!(sign_init(m, &p, &d).err(), Some(Error::MechanismParamInvalid), "{m}");
    }
    // CKM_HASH_ML_DSA is single-part both ways; CKM_ML_DSA with a context verifies in parts
    // (the 3.2 table marks only HashML-DSA and external mu single-part).
    let mut op = sign_init(CKM_HASH_ML_DSA, &hashed(CKM_SHA256, b""), &d).unwrap();
    assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
    let mut v = verify_init(CKM_HASH_ML_DSA, &hashed(CKM_SHA256, b""), &q).unwrap();
    assert_eq!(v.update(b"x"), Err(Error::OperationNotInitialized));
    let signature = sign_init(CKM_ML_DSA, &context(b"c"), &d).unwrap().sign(b"in parts").unwrap();
    let mut v = verify_init(CKM_ML_DSA, &context(b"c"), &q).unwrap();
    v.update(b"in ").unwrap();
    v.update(b"parts").unwrap();
    v.finish(&signature).unwrap();
    let mut v = verify_init(CKM_ML_DSA, &context(b"d"), &q).unwrap();
    v.update(b"in parts").unwrap();
    assert_eq!(v.finish(&signature), Err(Error::SignatureInvalid));
    // A key of the wrong type.
    let other = PqPrivateKey { key_type: CKK_ML_KEM, ..d.clone() };
    assert_eq!(
        sign_init(CKM_HASH_ML_DSA_SHA256, &context(b""), &other).err(),
        Some(Error::KeyTypeInconsistent)
    );
    let signature = sign_init(CKM_HASH_ML_DSA_SHA256, &context(b""), &d).unwrap().sign(b"m").unwrap();
    assert_eq!(
        verify_init(CKM_HASH_ML_DSA_SHA256, &context(b""), &q).unwrap().verify(b"m", &signature[1..]),
        Err(Error::SignatureLenRange)
    );
}
