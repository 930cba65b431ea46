//! `CKM_EDDSA` with `CK_EDDSA_PARAMS` (issue 15): Ed25519ctx and Ed25519ph through the built
//! module.
//!
//! 1. RFC 8032 7.2 (the four Ed25519ctx tests) and 7.3 (Ed25519ph "abc") through imported
//!    keys: the signature is deterministic, so the module's bytes must be the RFC's; in
//!    process and in client mode (the parameters travel to a key service).
//! 2. Ed25519ph in parts gives the RFC's signature; Ed25519ctx and pure Ed25519 refuse parts
//!    (`CKR_OPERATION_NOT_INITIALIZED`) and the operation ends.
//! 3. A signature under one context, or one instance, verifies under no other
//!    (`CKR_SIGNATURE_INVALID`); `phFlag` false with an empty context is pure Ed25519.
//! 4. Refusals, each changing nothing and leaving no operation active: a context over 255
//!    bytes; through the raw C ABI, a NULL `pContextData` with a length, a length beyond any
//!    buffer, a `phFlag` that is no `CK_BBOOL`, a parameter of the wrong size — all
//!    `CKR_MECHANISM_PARAM_INVALID`.
#![allow(unsafe_code)]

#[macro_use]
mod common;
mod service_support;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use common::keys::ec_public_template;
use common::objects::count;
use common::raw::{self, FALSE, TRUE, attr, attr_bytes, ulen};
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use ecm_hsm::server::Limits;

const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// RFC 8032 7.2: seed, public key, message, context, signature.
const CTX_VECTORS: [(&str, &str, &str, &[u8], &str); 4] = [
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "f726936d19c800494e3fdaff20b276a8",
        b"foo",
        "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a
         8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
    ),
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "f726936d19c800494e3fdaff20b276a8",
        b"bar",
        "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3
         216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
    ),
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "508e9e6882b979fea900f62adceaca35",
        b"foo",
        "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc6490
         8922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
    ),
    (
        "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
        "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
        "f726936d19c800494e3fdaff20b276a8",
        b"foo",
        "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85
         e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
    ),
];

/// RFC 8032 7.3 (Ed25519ph, message "abc", empty context).
const PH_SEED: &str = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42";
const PH_PUBLIC: &str = "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf";
const PH_SIGNATURE: &str = "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41
                            31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406";

fn pure() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519))
}

fn ctx(context: &[u8]) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ctx(context)))
}

fn ph(context: &[u8]) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ph(context)))
}

/// An Ed25519 key pair imported from the RFC's seed and public key.
fn import_pair(s: &Session, seed: &str, public: &str) -> (ObjectHandle, ObjectHandle) {
    let public =
        s.create_object(&ec_public_template(KeyType::EC_EDWARDS, ED25519_OID, &hex(public))).unwrap();
    let private = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(ED25519_OID.to_vec()),
            Attribute::Value(hex(seed)),
            Attribute::Sign(true),
        ])
        .unwrap();
    (public, private)
}

#[track_caller]
fn assert_unchanged(s: &Session, before: usize, private: ObjectHandle) {
    assert_eq!(count(s), before, "a refused call changed the objects");
    // No operation was left active: a new signature starts and ends.
    assert_eq!(s.sign(&pure(), private, b"after").unwrap().len(), 64, "the session is unusable");
}

/// Items 1 to 3, on a logged-in session (in process or in client mode).
fn known_answers_and_separation(s: &Session) {
    for (seed, public, message, context, expected) in CTX_VECTORS {
        let (public, private) = import_pair(s, seed, public);
        let (message, expected) = (hex(message), hex(expected));
        assert_eq!(s.sign(&ctx(context), private, &message).unwrap(), expected, "RFC 8032 7.2 {context:?}");
        s.verify(&ctx(context), public, &message, &expected).unwrap();
        let before = count(s);
        for other in [ctx(b"baz"), ph(context), pure()] {
            expect_rv(s.verify(&other, public, &message, &expected), RvError::SignatureInvalid);
        }
        expect_rv(s.verify(&ctx(context), public, b"other", &expected), RvError::SignatureInvalid);
        expect_rv(s.verify(&ctx(context), public, &message, &expected[..63]), RvError::SignatureLenRange);
        // Ed25519ctx is single-part: a part is refused and the operation ends.
        s.sign_init(&ctx(context), private).unwrap();
        expect_rv(s.sign_update(&message), RvError::OperationNotInitialized);
        s.verify_init(&ctx(context), public).unwrap();
        expect_rv(s.verify_update(&message), RvError::OperationNotInitialized);
        assert_unchanged(s, before, private);
    }

    let (public, private) = import_pair(s, PH_SEED, PH_PUBLIC);
    let expected = hex(PH_SIGNATURE);
    assert_eq!(s.sign(&ph(b""), private, b"abc").unwrap(), expected, "RFC 8032 7.3");
    s.sign_init(&ph(b""), private).unwrap();
    for part in [&b"a"[..], b"", b"bc"] {
        s.sign_update(part).unwrap();
    }
    assert_eq!(s.sign_final().unwrap(), expected, "RFC 8032 7.3 in parts");
    s.verify(&ph(b""), public, b"abc", &expected).unwrap();
    s.verify_init(&ph(b""), public).unwrap();
    s.verify_update(b"ab").unwrap();
    s.verify_update(b"c").unwrap();
    s.verify_final(&expected).unwrap();
    let before = count(s);
    s.verify_init(&ph(b""), public).unwrap();
    s.verify_update(b"abd").unwrap();
    expect_rv(s.verify_final(&expected), RvError::SignatureInvalid);
    // The pre-hashed signature is neither Ed25519ctx's nor pure Ed25519's, nor any other
    // context's; a context binds Ed25519ph's signatures too.
    for other in [ph(b"x"), ctx(b"x"), pure()] {
        expect_rv(s.verify(&other, public, b"abc", &expected), RvError::SignatureInvalid);
    }
    let bound = s.sign(&ph(b"tenant-a"), private, b"abc").unwrap();
    s.verify(&ph(b"tenant-a"), public, b"abc", &bound).unwrap();
    expect_rv(s.verify(&ph(b"tenant-b"), public, b"abc", &bound), RvError::SignatureInvalid);
    expect_rv(s.verify(&ph(b""), public, b"abc", &bound), RvError::SignatureInvalid);
    // phFlag false with an empty context is pure Ed25519, both ways.
    let plain = s.sign(&pure(), private, b"abc").unwrap();
    assert_eq!(s.sign(&ctx(b""), private, b"abc").unwrap(), plain);
    s.verify(&ctx(b""), public, b"abc", &plain).unwrap();
    // Pure Ed25519 stays single-part.
    s.sign_init(&pure(), private).unwrap();
    expect_rv(s.sign_update(b"abc"), RvError::OperationNotInitialized);
    // A context over 255 bytes, either instance, at either init.
    let long = [7u8; 256];
    for m in [ctx(&long), ph(&long)] {
        expect_rv(s.sign_init(&m, private), RvError::MechanismParamInvalid);
        expect_rv(s.verify_init(&m, public), RvError::MechanismParamInvalid);
    }
    let longest = [7u8; 255];
    for m in [ctx(&longest), ph(&longest)] {
        let signature = s.sign(&m, private, b"abc").unwrap();
        s.verify(&m, public, b"abc", &signature).unwrap();
    }
    assert_unchanged(s, before, private);
}

isolated_test!(
    fn ctx_and_ph_match_rfc8032_in_process() {
        let (_p, _slot, s) = logged_in();
        known_answers_and_separation(&s);
    }
);

isolated_test!(
    fn ctx_and_ph_match_rfc8032_through_the_key_service() {
        let service = service_support::Service::start(Limits::default());
        write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", service.socket.display()));
        let (p, slot) = load_with_token();
        let s = user_session(&p, slot);
        assert!(p.get_slot_info(slot).unwrap().slot_description().ends_with("via the key service"));
        known_answers_and_separation(&s);
        drop(s);
        drop(service);
    }
);

/// `C_SignInit`/`C_VerifyInit` with CKM_EDDSA and `params` laid out as given.
fn init_with(
    p: &cryptoki_sys::Pkcs11,
    h: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    verify: bool,
    params: &mut CK_EDDSA_PARAMS,
    len: usize,
) -> CK_RV {
    let mut m = CK_MECHANISM {
        mechanism: CKM_EDDSA,
        pParameter: std::ptr::from_mut(params).cast::<c_void>(),
        ulParameterLen: ulen(len),
    };
    // SAFETY: the mechanism and the parameter block are live locals; the block's own pointer
    // and length are what the test hands the module (the module must refuse bad pairs without
    // reading past the 3 bytes behind a non-NULL pointer).
    unsafe { if verify { p.C_VerifyInit(h, &mut m, key) } else { p.C_SignInit(h, &mut m, key) } }
}

isolated_test!(
    fn malformed_parameters_are_refused_through_the_c_abi() {
        let (p, _slot, h) = raw::user_setup();
        let (class, public_class, kind) = (CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKK_EC_EDWARDS);
        let (seed, point) = (hex(CTX_VECTORS[0].0), hex(CTX_VECTORS[0].1));
        let private = raw::create(
            &p,
            h,
            &mut [
                attr(CKA_CLASS, &class),
                attr(CKA_KEY_TYPE, &kind),
                attr_bytes(CKA_EC_PARAMS, ED25519_OID),
                attr_bytes(CKA_VALUE, &seed),
                attr(CKA_SIGN, &TRUE),
            ],
        );
        let public = raw::create(
            &p,
            h,
            &mut [
                attr(CKA_CLASS, &public_class),
                attr(CKA_KEY_TYPE, &kind),
                attr_bytes(CKA_EC_PARAMS, ED25519_OID),
                attr_bytes(CKA_EC_POINT, &point),
                attr(CKA_VERIFY, &TRUE),
            ],
        );
        let before = raw::find_all(&p, h).len();
        let mut foo = *b"foo";
        let size = size_of::<CK_EDDSA_PARAMS>();
        let valid = |foo: &mut [u8; 3]| CK_EDDSA_PARAMS {
            phFlag: FALSE,
            ulContextDataLen: 3,
            pContextData: foo.as_mut_ptr(),
        };
        let bad: [(CK_EDDSA_PARAMS, usize); 5] = [
            // A NULL context with a length.
            (CK_EDDSA_PARAMS { pContextData: null_mut(), ..valid(&mut foo) }, size),
            // A length no buffer has (refused by the copy-in's cap, before any read).
            (CK_EDDSA_PARAMS { ulContextDataLen: CK_ULONG::MAX, ..valid(&mut foo) }, size),
            // A phFlag that is neither CK_FALSE nor CK_TRUE.
            (CK_EDDSA_PARAMS { phFlag: 2, ..valid(&mut foo) }, size),
            // The structure's size, wrong either way.
            (valid(&mut foo), size - 1),
            (valid(&mut foo), size + 1),
        ];
        for (params, len) in bad {
            for verify in [false, true] {
                let key = if verify { public } else { private };
                let mut params = params;
                assert_eq!(
                    init_with(&p, h, key, verify, &mut params, len),
                    CKR_MECHANISM_PARAM_INVALID,
                    "{len} bytes, verify {verify}"
                );
            }
        }
        assert_eq!(raw::find_all(&p, h).len(), before, "a refused init changed the objects");
        // Nothing was left active: the valid parameters start a signature that is the RFC's.
        let message = hex(CTX_VECTORS[0].2);
        let mut params = valid(&mut foo);
        assert_eq!(init_with(&p, h, private, false, &mut params, size), CKR_OK);
        let mut signature = [0u8; 64];
        let mut signature_len = ulen(signature.len());
        // SAFETY: the message and the signature buffer are live locals of their stated lengths.
        let rv = unsafe {
            p.C_Sign(
                h,
                message.as_ptr().cast_mut(),
                ulen(message.len()),
                signature.as_mut_ptr(),
                &mut signature_len,
            )
        };
        assert_eq!((rv, signature_len), (CKR_OK, 64));
        assert_eq!(signature.to_vec(), hex(CTX_VECTORS[0].4));
        let mut params = valid(&mut foo);
        assert_eq!(init_with(&p, h, public, true, &mut params, size), CKR_OK);
        // SAFETY: as above.
        let rv = unsafe {
            p.C_Verify(
                h,
                message.as_ptr().cast_mut(),
                ulen(message.len()),
                signature.as_mut_ptr(),
                ulen(signature.len()),
            )
        };
        assert_eq!(rv, CKR_OK);
    }
);
