//! PKCS#11 3.2's verification with the signature first (`C_VerifySignatureInit`,
//! `C_VerifySignature`, `C_VerifySignatureUpdate`, `C_VerifySignatureFinal`): through the raw
//! 3.2 function list and through the `cryptoki` crate, in-process and in client mode against
//! an `ecm-hsm serve`. ECDSA P-256 (`CKM_ECDSA`, single-part), RSA PKCS#1 v1.5 with SHA-256,
//! HMAC-SHA256 and pure ML-DSA-65 (in one part and in parts).
#![allow(unsafe_code)]

mod common;
mod pq_support;
mod service_support;

use std::ptr::null_mut;
use std::sync::OnceLock;

use common::objects::login_as;
use common::served::Served;
use common::workers::apply_policy;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, MlDsaParameterSetType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

/// The administration worker of [`apply_policy`] (does nothing when run as an ordinary test).
#[test]
fn admin_worker() {
    common::workers::run_admin_actions();
}

const P256: &str = "06082a8648ce3d030107";

/// One signature to verify: its mechanism, verification key, data and signature.
struct Case {
    name: &'static str,
    mechanism: Mechanism<'static>,
    public: ObjectHandle,
    data: Vec<u8>,
    signature: Vec<u8>,
    /// Whether the mechanism verifies in parts (`CKM_ECDSA` does not).
    multi_part: bool,
}

/// A key of each mechanism made in `s`, and a signature the token made with it.
fn cases(s: &Session) -> Vec<Case> {
    let data = b"the signature came first".to_vec();
    let hash = s.digest(&Mechanism::Sha256, &data).unwrap();
    let (ec_public, ec_private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(hex(P256)), Attribute::Verify(true)],
            &[Attribute::Sign(true)],
        )
        .unwrap();
    let (rsa_public, rsa_private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ],
            &[Attribute::Sign(true)],
        )
        .unwrap();
    let hmac = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Sign(true), Attribute::Verify(true)],
        )
        .unwrap();
    let (ml_public, ml_private) = pq_support::dsa_pair(s, MlDsaParameterSetType::ML_DSA_65);
    let case = |name, mechanism: Mechanism<'static>, (public, private), data: &[u8], multi_part| {
        let signature = s.sign(&mechanism, private, data).unwrap();
        Case { name, mechanism, public, data: data.to_vec(), signature, multi_part }
    };
    vec![
        case("ECDSA P-256", Mechanism::Ecdsa, (ec_public, ec_private), &hash, false),
        case("RSA PKCS#1 v1.5 SHA-256", Mechanism::Sha256RsaPkcs, (rsa_public, rsa_private), &data, true),
        case("HMAC-SHA256", Mechanism::Sha256Hmac, (hmac, hmac), &data, true),
        case("ML-DSA-65", pq_support::ml_dsa(), (ml_public, ml_private), &data, true),
    ]
}

/// `signature` with one byte changed.
fn flipped(signature: &[u8]) -> Vec<u8> {
    let mut out = signature.to_vec();
    out[signature.len() / 2] ^= 0x01;
    out
}

// ---------------------------------------------------------------------------------------
// The raw 3.2 function list: each call answers its CK_RV.
// ---------------------------------------------------------------------------------------

fn list() -> &'static CK_FUNCTION_LIST_3_2 {
    static LIST: OnceLock<&'static CK_FUNCTION_LIST_3_2> = OnceLock::new();
    LIST.get_or_init(pq_support::list_3_2)
}

/// `C_VerifySignatureInit`.
fn init(s: &Session, mechanism: &Mechanism, key: ObjectHandle, signature: &[u8]) -> CK_RV {
    let mut raw = CK_MECHANISM::from(mechanism);
    let mut signature = signature.to_vec();
    let len = signature.len() as CK_ULONG;
    // SAFETY: the mechanism (whose parameter lives in `mechanism`) and the signature are live
    // for the call, the signature of the length stated.
    unsafe {
        (list().C_VerifySignatureInit.unwrap())(
            s.handle(),
            &mut raw,
            key.handle(),
            signature.as_mut_ptr(),
            len,
        )
    }
}

/// `C_VerifySignatureInit(hSession, NULL, CK_INVALID_HANDLE, NULL, 0)`: ends the verification.
fn cancel(s: &Session) -> CK_RV {
    // SAFETY: NULL mechanism and signature, read as such.
    unsafe {
        (list().C_VerifySignatureInit.unwrap())(s.handle(), null_mut(), CK_INVALID_HANDLE, null_mut(), 0)
    }
}

/// `C_VerifyInit(hSession, NULL, CK_INVALID_HANDLE)`: ends the verification too.
fn cancel_verify_init(s: &Session) -> CK_RV {
    // SAFETY: a NULL mechanism, read as such.
    unsafe { (list().C_VerifyInit.unwrap())(s.handle(), null_mut(), CK_INVALID_HANDLE) }
}

/// `C_VerifySignature`.
fn single(s: &Session, data: &[u8]) -> CK_RV {
    let mut data = data.to_vec();
    // SAFETY: the data is live for the call and of the length stated.
    unsafe { (list().C_VerifySignature.unwrap())(s.handle(), data.as_mut_ptr(), data.len() as CK_ULONG) }
}

/// `C_VerifySignatureUpdate`.
fn update(s: &Session, part: &[u8]) -> CK_RV {
    let mut part = part.to_vec();
    // SAFETY: as in `single`.
    unsafe {
        (list().C_VerifySignatureUpdate.unwrap())(s.handle(), part.as_mut_ptr(), part.len() as CK_ULONG)
    }
}

/// `C_VerifySignatureFinal`.
fn finish(s: &Session) -> CK_RV {
    // SAFETY: no pointers.
    unsafe { (list().C_VerifySignatureFinal.unwrap())(s.handle()) }
}

/// `C_VerifyInit` through the same list.
fn verify_init(s: &Session, mechanism: &Mechanism, key: ObjectHandle) -> CK_RV {
    let mut raw = CK_MECHANISM::from(mechanism);
    // SAFETY: the mechanism (whose parameter lives in `mechanism`) is live for the call.
    unsafe { (list().C_VerifyInit.unwrap())(s.handle(), &mut raw, key.handle()) }
}

/// `C_Verify`, `C_VerifyUpdate` (no signature) or `C_VerifyFinal` (no data).
fn verify_step(s: &Session, data: Option<&[u8]>, signature: Option<&[u8]>) -> CK_RV {
    let (mut data, mut signature) = (data.map(<[u8]>::to_vec), signature.map(<[u8]>::to_vec));
    let l = list();
    // SAFETY: each buffer is live for the call and of the length stated.
    unsafe {
        match (&mut data, &mut signature) {
            (Some(d), Some(sig)) => (l.C_Verify.unwrap())(
                s.handle(),
                d.as_mut_ptr(),
                d.len() as CK_ULONG,
                sig.as_mut_ptr(),
                sig.len() as CK_ULONG,
            ),
            (Some(d), None) => (l.C_VerifyUpdate.unwrap())(s.handle(), d.as_mut_ptr(), d.len() as CK_ULONG),
            (None, Some(sig)) => {
                (l.C_VerifyFinal.unwrap())(s.handle(), sig.as_mut_ptr(), sig.len() as CK_ULONG)
            }
            (None, None) => unreachable!("a verification step has data or a signature"),
        }
    }
}

/// No verification is active on `s`: one may begin, and is ended again.
#[track_caller]
fn assert_none_active(s: &Session, c: &Case) {
    assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{}", c.name);
    assert_eq!(verify_init(s, &c.mechanism, c.public), CKR_OK, "{}: nothing was active", c.name);
    assert_eq!(cancel_verify_init(s), CKR_OK);
}

/// Valid and invalid signatures, wrong lengths, single and multi-part, each ending its
/// operation.
fn each_mechanism_through_the_raw_list(s: &Session, cases: &[Case]) {
    for c in cases {
        let (m, name) = (&c.mechanism, c.name);
        // A valid signature, in one part; the call ends the operation.
        assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
        assert_eq!(single(s, &c.data), CKR_OK, "{name}");
        assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}: ended by the first");
        assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        // One byte changed in the signature, or in the data: invalid, and ended.
        assert_eq!(init(s, m, c.public, &flipped(&c.signature)), CKR_OK, "{name}");
        assert_eq!(single(s, &c.data), CKR_SIGNATURE_INVALID, "{name}");
        assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}: ended when invalid");
        assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
        assert_eq!(single(s, &flipped(&c.data)), CKR_SIGNATURE_INVALID, "{name}");
        // A signature of another length is refused at the init, which begins nothing.
        let longer = [&c.signature[..], &[0]].concat();
        for wrong in [&c.signature[..c.signature.len() - 1], &longer, &[]] {
            assert_eq!(init(s, m, c.public, wrong), CKR_SIGNATURE_LEN_RANGE, "{name}: {} bytes", wrong.len());
            assert_none_active(s, c);
        }
        if c.multi_part {
            // In parts: the signature is checked at the final call, which ends the operation.
            let (first, second) = c.data.split_at(c.data.len() / 2);
            assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
            assert_eq!(update(s, first), CKR_OK, "{name}");
            assert_eq!(update(s, b""), CKR_OK, "{name}");
            assert_eq!(update(s, second), CKR_OK, "{name}");
            assert_eq!(finish(s), CKR_OK, "{name}");
            assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}: ended by the final call");
            assert_eq!(init(s, m, c.public, &flipped(&c.signature)), CKR_OK, "{name}");
            assert_eq!(update(s, &c.data), CKR_OK, "{name}");
            assert_eq!(finish(s), CKR_SIGNATURE_INVALID, "{name}");
            assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}: ended when invalid");
            // C_VerifySignature after an update is refused, and ends the operation.
            assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
            assert_eq!(update(s, first), CKR_OK, "{name}");
            assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}: not after an update");
            assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}: the refusal ended it");
        } else {
            // Single-part only: an update or a final call is refused as C_VerifyUpdate's and
            // C_VerifyFinal's are (no multi-part operation is active), and ends it.
            assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
            assert_eq!(update(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}");
            assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
            assert_none_active(s, c);
            assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
            assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
            assert_none_active(s, c);
        }
    }
}

/// Bad arguments, a key that may not verify, a NULL mechanism.
fn arguments_keys_and_cancelling(s: &Session, cases: &[Case]) {
    let c = &cases[0];
    // A NULL signature with a length: refused before anything begins.
    let mut raw = CK_MECHANISM::from(&c.mechanism);
    // SAFETY: a live mechanism; the NULL signature is what is tested, the module checks it.
    let rv = unsafe {
        (list().C_VerifySignatureInit.unwrap())(s.handle(), &mut raw, c.public.handle(), null_mut(), 64)
    };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
    assert_none_active(s, c);
    // NULL data with a length ends the operation, as any failed C_VerifySignature does.
    assert_eq!(init(s, &c.mechanism, c.public, &c.signature), CKR_OK);
    // SAFETY: the NULL data is what is tested; the module checks it.
    let rv = unsafe { (list().C_VerifySignature.unwrap())(s.handle(), null_mut(), 32) };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
    assert_none_active(s, c);

    // A key without CKA_VERIFY is refused as C_VerifyInit refuses it, and nothing begins.
    let (no_verify, _) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(hex(P256)), Attribute::Verify(false)],
            &[Attribute::Sign(true)],
        )
        .unwrap();
    assert_eq!(init(s, &c.mechanism, no_verify, &c.signature), CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_eq!(verify_init(s, &c.mechanism, no_verify), CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_none_active(s, c);

    // A NULL mechanism ends the verification in progress, whichever init began it.
    assert_eq!(init(s, &c.mechanism, c.public, &c.signature), CKR_OK);
    assert_eq!(cancel(s), CKR_OK);
    assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "cancelled");
    assert_eq!(verify_init(s, &c.mechanism, c.public), CKR_OK);
    assert_eq!(cancel(s), CKR_OK);
    assert_eq!(verify_step(s, Some(&c.data), Some(&c.signature)), CKR_OPERATION_NOT_INITIALIZED, "cancelled");
    // And C_VerifyInit's NULL mechanism ends one begun with the signature (in client mode too,
    // whatever key handle comes with it).
    assert_eq!(init(s, &c.mechanism, c.public, &c.signature), CKR_OK);
    assert_eq!(cancel_verify_init(s), CKR_OK);
    assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "cancelled");
    // With none in progress, a NULL mechanism is no error.
    assert_eq!(cancel(s), CKR_OK);
}

/// One verification per session: each init finds the other's operation active, and each
/// family of steps refuses the other's operation without ending it.
fn crossing_with_c_verify_init(s: &Session, cases: &[Case]) {
    for c in cases {
        let (m, name) = (&c.mechanism, c.name);
        // C_VerifyInit first.
        assert_eq!(verify_init(s, &c.mechanism, c.public), CKR_OK, "{name}");
        assert_eq!(init(s, m, c.public, &c.signature), CKR_OPERATION_ACTIVE, "{name}");
        assert_eq!(single(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(update(s, &c.data), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(finish(s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(
            verify_step(s, Some(&c.data), Some(&c.signature)),
            CKR_OK,
            "{name}: C_VerifyInit's went on"
        );
        // C_VerifySignatureInit first.
        assert_eq!(init(s, m, c.public, &c.signature), CKR_OK, "{name}");
        assert_eq!(verify_init(s, &c.mechanism, c.public), CKR_OPERATION_ACTIVE, "{name}");
        assert_eq!(
            verify_step(s, Some(&c.data), Some(&c.signature)),
            CKR_OPERATION_NOT_INITIALIZED,
            "{name}"
        );
        assert_eq!(verify_step(s, Some(&c.data), None), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(verify_step(s, None, Some(&c.signature)), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(single(s, &c.data), CKR_OK, "{name}: C_VerifySignatureInit's went on");
    }
}

/// The same through the `cryptoki` crate (which reaches the 3.2 list, the module's default
/// interface).
fn each_mechanism_through_cryptoki(s: &Session, cases: &[Case]) {
    let refused = |r: cryptoki::error::Result<()>| rv(r.unwrap_err());
    for c in cases {
        let (m, name) = (&c.mechanism, c.name);
        s.verify_signature_init(m, c.public, &c.signature).unwrap();
        s.verify_signature(&c.data).unwrap();
        assert_eq!(refused(s.verify_signature(&c.data)), RvError::OperationNotInitialized, "{name}");
        s.verify_signature_init(m, c.public, &flipped(&c.signature)).unwrap();
        assert_eq!(refused(s.verify_signature(&c.data)), RvError::SignatureInvalid, "{name}");
        assert_eq!(refused(s.verify_signature_final()), RvError::OperationNotInitialized, "{name}");
        let short = &c.signature[..c.signature.len() - 1];
        assert_eq!(
            refused(s.verify_signature_init(m, c.public, short)),
            RvError::SignatureLenRange,
            "{name}"
        );
        assert_eq!(refused(s.verify_signature(&c.data)), RvError::OperationNotInitialized, "{name}");
        // C_VerifyInit and C_VerifySignatureInit share the session's verification.
        s.verify_init(m, c.public).unwrap();
        assert_eq!(refused(s.verify_signature_init(m, c.public, &c.signature)), RvError::OperationActive);
        assert_eq!(refused(s.verify_signature(&c.data)), RvError::OperationNotInitialized, "{name}");
        assert_eq!(
            verify_step(s, Some(&c.data), Some(&c.signature)),
            CKR_OK,
            "{name}: C_VerifyInit's went on"
        );
        if c.multi_part {
            s.verify_signature_init(m, c.public, &c.signature).unwrap();
            for part in c.data.chunks(5) {
                s.verify_signature_update(part).unwrap();
            }
            s.verify_signature_final().unwrap();
            assert_eq!(refused(s.verify_signature_final()), RvError::OperationNotInitialized, "{name}");
            s.verify_signature_init(m, c.public, &c.signature).unwrap();
            s.verify_signature_update(&c.data).unwrap();
            assert_eq!(refused(s.verify_signature(&c.data)), RvError::OperationNotInitialized, "{name}");
            assert_eq!(refused(s.verify_signature_final()), RvError::OperationNotInitialized, "{name}");
        } else {
            s.verify_signature_init(m, c.public, &c.signature).unwrap();
            assert_eq!(
                refused(s.verify_signature_update(&c.data)),
                RvError::OperationNotInitialized,
                "{name}"
            );
            assert_eq!(refused(s.verify_signature_final()), RvError::OperationNotInitialized, "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// In-process.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn each_mechanism_verifies_a_signature_given_first() {
        let (_p, _slot, s) = logged_in();
        each_mechanism_through_the_raw_list(&s, &cases(&s));
    }
);

isolated_test!(
    fn arguments_keys_and_a_null_mechanism() {
        let (_p, _slot, s) = logged_in();
        arguments_keys_and_cancelling(&s, &cases(&s));
    }
);

isolated_test!(
    fn one_verification_per_session_with_c_verify_init() {
        let (_p, _slot, s) = logged_in();
        crossing_with_c_verify_init(&s, &cases(&s));
    }
);

isolated_test!(
    fn each_mechanism_through_the_cryptoki_crate() {
        let (_p, _slot, s) = logged_in();
        each_mechanism_through_cryptoki(&s, &cases(&s));
    }
);

/// The seed's kind of policy for three principals on keys labelled `sig-*`.
const POLICY: &str = r#"{"key_permissions": {
    "checker": {"keys": ["sig-*"], "operations": ["verify"]},
    "signer": {"keys": ["sig-*"], "operations": ["sign"]},
    "guarded": {"keys": ["sig-*"], "operations": ["verify"], "requires_approval": true}
}}"#;

isolated_test!(
    /// The key-permission policy, approvals and the audit record treat the init as
    /// C_VerifyInit: the same refusals, the same wait for approvers, recorded as `verify`.
    fn the_policy_approvals_and_the_record_are_c_verify_init_s() {
        let (p, slot, s) = logged_in();
        let label = || Attribute::Label(b"sig-ec".to_vec());
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(hex(P256)), Attribute::Verify(true), label()],
                &[Attribute::Sign(true), label()],
            )
            .unwrap();
        let data = [0x5a; 32];
        let signature = s.sign(&Mechanism::Ecdsa, private, &data).unwrap();
        let c = Case {
            name: "ECDSA",
            mechanism: Mechanism::Ecdsa,
            public,
            data: data.to_vec(),
            signature,
            multi_part: false,
        };
        // Refused for its length, as the token's user: recorded too.
        assert_eq!(init(&s, &c.mechanism, public, &c.signature[1..]), CKR_SIGNATURE_LEN_RANGE);
        s.logout().unwrap();
        apply_policy(
            POLICY,
            &[("checker", "pin-check-1"), ("signer", "pin-sign-1"), ("guarded", "pin-guard-1")],
        );
        let s = p.open_rw_session(slot).unwrap();

        login_as(&s, "checker:pin-check-1").unwrap();
        assert_eq!(init(&s, &c.mechanism, public, &c.signature), CKR_OK);
        assert_eq!(single(&s, &c.data), CKR_OK);
        s.logout().unwrap();

        // A principal the policy lets sign, not verify: refused as C_VerifyInit refuses it.
        login_as(&s, "signer:pin-sign-1").unwrap();
        let refused = init(&s, &c.mechanism, public, &c.signature);
        assert_ne!(refused, CKR_OK);
        assert_eq!(refused, verify_init(&s, &c.mechanism, public));
        assert_eq!(single(&s, &c.data), CKR_OPERATION_NOT_INITIALIZED);
        s.logout().unwrap();

        // A principal whose verifications need approvers: the step waits, as C_Verify's does,
        // and the operation stays.
        login_as(&s, "guarded:pin-guard-1").unwrap();
        assert_eq!(init(&s, &c.mechanism, public, &c.signature), CKR_OK);
        assert_eq!(single(&s, &c.data), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(verify_init(&s, &c.mechanism, public), CKR_OPERATION_ACTIVE, "still waiting");
        assert_eq!(cancel(&s), CKR_OK);
        assert_eq!(verify_init(&s, &c.mechanism, public), CKR_OK);
        assert_eq!(verify_step(&s, Some(&c.data), Some(&c.signature)), CKR_USER_NOT_LOGGED_IN);
        s.logout().unwrap();

        // Every init is recorded as C_VerifyInit's: `verify`, naming key, mechanism and result.
        let records = common::audit::records();
        let verify = |principal: &str, result: CK_RV| {
            records.iter().filter(|r| r["operation"] == "verify" && r["principal"] == principal).any(|r| {
                r["result"].as_u64() == Some(result)
                    && r["key_label"] == "sig-ec"
                    && r["mechanism"].as_u64() == Some(CKM_ECDSA)
            })
        };
        assert!(verify("user", CKR_SIGNATURE_LEN_RANGE), "the refused init is recorded");
        assert!(verify("checker", CKR_OK));
        assert!(verify("signer", refused));
        assert!(verify("guarded", CKR_OK));
        let report = ecm_hsm::audit::verify_trail(&common::audit::audit_path(), None, None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
    }
);

// ---------------------------------------------------------------------------------------
// Client mode: the module as a client of `ecm-hsm serve`.
// ---------------------------------------------------------------------------------------

/// `ecm-hsm serve` on a token directory of its own (test settings), and this process's
/// module pointed at it.
fn serve() -> Served {
    let dir = fresh_dir("verify-sig-svc");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    write_test_config(&tokens, "");
    let served = Served::start(dir.clone(), dir.join("s.sock"), &[]);
    write_test_config(&token_dir(), &format!("service = \"{}\"\n", served.address()));
    served
}

isolated_test!(
    fn through_the_key_service() {
        let served = serve();
        let (p, slot, s) = logged_in();
        let description = p.get_slot_info(slot).unwrap().slot_description().to_string();
        assert!(description.ends_with("via the key service"), "{description}");
        assert!(
            served
                .tokens()
                .read_dir()
                .unwrap()
                .any(|e| e.unwrap().path().extension() == Some("sqlite".as_ref()))
        );
        let cases = cases(&s);
        // Twice: the first init of each key and mechanism goes to the service at once, later
        // ones with a signature of the length it accepted travel with their first step.
        for _ in 0..2 {
            each_mechanism_through_the_raw_list(&s, &cases);
            crossing_with_c_verify_init(&s, &cases);
            each_mechanism_through_cryptoki(&s, &cases);
            arguments_keys_and_cancelling(&s, &cases);
        }
    }
);

/// Through the key service's Rust client: once the service has accepted an init of a key and
/// mechanism with a signature of some length, a later init with a signature of that length
/// travels with its first step (one round trip); one of another length goes at once and is
/// refused there.
#[test]
fn a_held_init_and_its_first_step_are_one_round_trip() {
    use ecm_hsm::Error;
    use ecm_hsm::mechanism::{Mechanism, MechanismParams};
    use ecm_hsm::module::{OperationKind, Step};
    use ecm_hsm::session::{Output, OutputBuffer};
    use service_support::{attr_bool, attr_ulong};

    let (_service, client, h) = service_support::serving_a_user(ecm_hsm::server::Limits::default());
    let keygen = Mechanism { kind: CKM_GENERIC_SECRET_KEY_GEN, params: MechanismParams::None };
    let template = [attr_ulong(CKA_VALUE_LEN, 32), attr_bool(CKA_SIGN, true), attr_bool(CKA_VERIFY, true)];
    let key = client.generate_key(h, &keygen, &template).unwrap();
    let hmac = Mechanism { kind: CKM_SHA256_HMAC, params: MechanismParams::None };
    client.operation_init(h, OperationKind::Sign, Some(&hmac), key).unwrap();
    let Output::Bytes(mac) = client.sign(h, Step::Single(b"data"), OutputBuffer::Capacity(64)).unwrap()
    else {
        panic!("a MAC, not a length");
    };
    // The first init of this key and mechanism goes at once.
    client.verify_signature_init(h, Some(&hmac), key, &mac).unwrap();
    client.verify_signature(h, Step::Single(b"data")).unwrap();
    // Later ones, valid or not, travel with their first step.
    let before = client.round_trips();
    client.verify_signature_init(h, Some(&hmac), key, &mac).unwrap();
    client.verify_signature(h, Step::Single(b"data")).unwrap();
    assert_eq!(client.round_trips() - before, 1, "init and step in one round trip");
    let before = client.round_trips();
    client.verify_signature_init(h, Some(&hmac), key, &flipped(&mac)).unwrap();
    assert_eq!(client.verify_signature(h, Step::Single(b"data")).unwrap_err(), Error::SignatureInvalid);
    assert_eq!(client.round_trips() - before, 1, "init and step in one round trip");
    // A signature of another length is not held back: refused at the init, nothing begun.
    let before = client.round_trips();
    let refused = client.verify_signature_init(h, Some(&hmac), key, &mac[1..]).unwrap_err();
    assert_eq!(refused, Error::SignatureLenRange);
    assert_eq!(client.round_trips() - before, 1, "sent at once");
    let step = client.verify_signature(h, Step::Single(b"data")).unwrap_err();
    assert_eq!(step, Error::OperationNotInitialized);
}
