//! The audit record's remaining events (issue 5): PIN and token events (`init_token`,
//! `init_pin`, `set_pin`, `pin_locked`), searches and key reads (`find`, `read`), recovery
//! and message-based operations (`sign_recover`, `verify_recover`, `encrypt`/`decrypt` at
//! `C_Message*Init`), retirement (`retire`), and `CKA_ALWAYS_AUTHENTICATE` as a login with
//! in-band approvals experiences it. Each record is checked for its principal, operation,
//! key and result, refusals included; no PIN typed, right or wrong, is in the trail's bytes.
#![allow(unsafe_code)]

mod common;
use common::objects::{tier, token_aes_key, vendor};

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use common::audit::*;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use ecm_hsm::audit;
use serde_json::Value;

#[track_caller]
fn assert_no_secret(secrets: &[&str]) {
    let bytes = trail_bytes();
    for secret in secrets {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in the audit files");
    }
}

/// (operation, principal, result) of each record.
fn summary(records: &[Value]) -> Vec<(String, String, u64)> {
    records
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap().to_owned(),
                r["principal"].as_str().unwrap().to_owned(),
                r["result"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(operation: &str, principal: &str, result: CK_RV) -> (String, String, u64) {
    (operation.into(), principal.into(), result)
}

#[track_caller]
fn assert_trail_intact() {
    let report = audit::verify_trail(&audit_path(), None, None).unwrap();
    assert!(report.problem.is_none(), "{report:?}");
}

const SO_PIN_2: &str = "so-secret-2";
const USER_PIN_2: &str = "user-secret-2";

isolated_test!(
    fn pin_and_token_events_name_whose_pin_and_hold_none() {
        let p = load();
        let slot = first_slot(&p);
        p.init_token(slot, &pin(SO_PIN), LABEL).unwrap();
        // A re-initialization with a wrong SO PIN (no session open) is refused, and recorded.
        expect_rv(p.init_token(slot, &pin("wrong-so-pin-9"), LABEL), RvError::PinIncorrect);
        {
            let s = so_session(&p, slot);
            s.init_pin(&pin(USER_PIN)).unwrap();
            s.set_pin(&pin(SO_PIN), &pin(SO_PIN_2)).unwrap();
            s.logout().unwrap();
            // C_InitPIN is the SO's.
            expect_rv(s.init_pin(&pin("user-secret-9")), RvError::UserNotLoggedIn);
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            expect_rv(s.set_pin(&pin("wrong-old-pin"), &pin("user-secret-8")), RvError::PinIncorrect);
            s.set_pin(&pin(USER_PIN), &pin(USER_PIN_2)).unwrap();
            s.logout().unwrap();
            // The user's PIN locks at the fifth failure in a row; a login after is refused
            // without locking anything again.
            for _ in 1..MAX_PIN_FAILURES {
                expect_rv(s.login(UserType::User, Some(&pin("wrong-user-pin"))), RvError::PinIncorrect);
            }
            expect_rv(s.login(UserType::User, Some(&pin("wrong-user-pin"))), RvError::PinLocked);
            expect_rv(s.login(UserType::User, Some(&pin(USER_PIN_2))), RvError::PinLocked);
        }
        // Re-initialized by the SO (its changed PIN): the old token's trail is archived (its
        // MACs are under a token key that no longer exists) and a new one begins.
        assert!(archived_trails().is_empty(), "the first initialization had nothing to archive");
        p.init_token(slot, &pin(SO_PIN_2), LABEL).unwrap();
        {
            let s = p.open_rw_session(slot).unwrap();
            for _ in 1..MAX_PIN_FAILURES {
                expect_rv(s.login(UserType::So, Some(&pin("wrong-so-login"))), RvError::PinIncorrect);
            }
            expect_rv(s.login(UserType::So, Some(&pin("wrong-so-login"))), RvError::PinLocked);
        }

        let archived = archived_trails();
        assert_eq!(archived.len(), 1);
        let before = records_of(&archived[0]);
        let after = records();
        let mut expected = vec![
            row("init_token", "so", CKR_OK),
            row("init_token", "", CKR_PIN_INCORRECT),
            row("login_so", "so", CKR_OK),
            row("init_pin", "so", CKR_OK),
            row("set_pin", "so", CKR_OK),
            row("logout", "so", CKR_OK),
            row("init_pin", "", CKR_USER_NOT_LOGGED_IN),
            row("login", "user", CKR_OK),
            row("set_pin", "user", CKR_PIN_INCORRECT),
            row("set_pin", "user", CKR_OK),
            row("logout", "user", CKR_OK),
        ];
        // A refused login names whom it tried (issue 13, item 8).
        for _ in 1..MAX_PIN_FAILURES {
            expected.push(row("login", "user", CKR_PIN_INCORRECT));
        }
        expected.push(row("login", "user", CKR_PIN_LOCKED));
        // Whose PIN was locked, just after the login that locked it; only then.
        expected.push(row("pin_locked", "user", CKR_PIN_LOCKED));
        expected.push(row("login", "user", CKR_PIN_LOCKED));
        expected.push(row("trail_archived", "", CKR_OK));
        assert_eq!(summary(&before), expected);
        let mut expected = vec![row("init_token", "so", CKR_OK)];
        for _ in 1..MAX_PIN_FAILURES {
            expected.push(row("login_so", "so", CKR_PIN_INCORRECT));
        }
        expected.push(row("login_so", "so", CKR_PIN_LOCKED));
        expected.push(row("pin_locked", "so", CKR_PIN_LOCKED));
        assert_eq!(summary(&after), expected);
        // The archived trail is whole (as a chain: its MACs need the old token's key).
        let report = audit::verify_trail(&archived[0], None, None).unwrap();
        assert!(report.problem.is_none() && report.unlinked == 0, "{report:?}");
        assert_eq!(report.segments, report.closed_segments);
        let all: Vec<Value> =
            before.into_iter().filter(|r| r["operation"] != "trail_archived").chain(after).collect();

        // C_InitToken has no session; every other call names its own. None names a key.
        for r in &all {
            let token_call = r["operation"] == "init_token";
            assert_eq!(r["session"].as_u64() == Some(0), token_call, "{r}");
            assert!(r.get("key_uid").is_none() && r.get("mechanism").is_none(), "{r}");
        }
        // The pin_locked record is in the session of the login that locked the PIN.
        let locked = all.iter().position(|r| r["operation"] == "pin_locked").unwrap();
        assert_eq!(all[locked]["session"], all[locked - 1]["session"]);
        // The first initialization's record is authenticated under the new token's key, as
        // is every record after it.
        // (`g`: GMAC under the key of the segment, derived from the audit key.)
        assert!(all.iter().all(|r| r["auth"] == "g"), "{all:?}");
        assert_trail_intact();
        assert_no_secret(&[
            SO_PIN,
            SO_PIN_2,
            USER_PIN,
            USER_PIN_2,
            "wrong-so-pin-9",
            "user-secret-9",
            "wrong-old-pin",
            "user-secret-8",
            "wrong-user-pin",
            "wrong-so-login",
        ]);
    }
);

/// `C_GetAttributeValue` of one attribute, asking its length (NULL value) or, with `buf`,
/// its value; the code.
fn get_attribute(
    p: &cryptoki_sys::Pkcs11,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
    buf: Option<&mut [u8]>,
) -> CK_RV {
    let mut t = [match buf {
        Some(buf) => raw::out(kind, buf),
        None => raw::query(kind),
    }];
    // SAFETY: the entry's buffer, if any, holds its stated length.
    unsafe { p.C_GetAttributeValue(h, o, t.as_mut_ptr(), 1) }
}

use common::raw;

isolated_test!(
    fn a_search_is_one_record_and_each_read_of_a_key_one_more() {
        let (p, _slot, h) = raw::user_setup();
        let key = raw::aes_key(&p, h, &[7; 32], true);
        let note = raw::data_object(&p, h, b"note", b"not a key", false);
        let before = records().len();

        assert_eq!(raw::find(&p, h, &mut [raw::attr_bytes(CKA_LABEL, b"aes")]), vec![key]);
        assert_eq!(raw::find_all(&p, h).len(), 2);
        assert_eq!(get_attribute(&p, h, key, CKA_LABEL, None), CKR_OK);
        assert_eq!(get_attribute(&p, h, key, CKA_VALUE, None), CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(get_attribute(&p, h, key, CKA_CERTIFICATE_TYPE, None), CKR_ATTRIBUTE_TYPE_INVALID);
        // A buffer too small is the caller's sizing, not a refusal of the read.
        assert_eq!(get_attribute(&p, h, key, CKA_LABEL, Some(&mut [0u8; 1])), CKR_BUFFER_TOO_SMALL);
        // Not keys: a data object, a handle of nothing.
        assert_eq!(get_attribute(&p, h, note, CKA_LABEL, None), CKR_OK);
        assert_eq!(get_attribute(&p, h, 0xdead, CKA_LABEL, None), CKR_OBJECT_HANDLE_INVALID);

        let all = records();
        let new = &all[before..];
        assert_eq!(
            summary(new),
            [
                row("find", "user", CKR_OK),
                row("find", "user", CKR_OK),
                row("read", "user", CKR_OK),
                row("read", "user", CKR_ATTRIBUTE_SENSITIVE),
                row("read", "user", CKR_ATTRIBUTE_TYPE_INVALID),
                row("read", "user", CKR_OK),
            ]
        );
        // A search names no key (and not what it found); a read names the key.
        for r in &new[..2] {
            assert!(r.get("key_uid").is_none() && r.get("key_label").is_none(), "{r}");
        }
        let uid = all[before - 2]["key_uid"].as_str().unwrap().to_owned();
        assert_eq!(all[before - 2]["operation"], "create");
        for r in &new[2..] {
            assert_eq!(r["key_label"], "aes", "{r}");
            assert_eq!(r["key_uid"], uid.as_str(), "{r}");
            assert!(r.get("mechanism").is_none(), "{r}");
            assert_eq!(r["session"].as_u64(), Some(h));
        }
        assert_trail_intact();
        assert_no_secret(&[USER_PIN, SO_PIN]);
        raw::close(&p, h);
        raw::finalize(&p);
    }
);

fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 }
}

/// A session RSA-2048 key pair whose private key may sign with recovery.
fn recovery_key_pair(p: &cryptoki_sys::Pkcs11, h: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let bits: CK_ULONG = 2048;
    let mut public = [raw::attr(CKA_MODULUS_BITS, &bits), raw::attr_bytes(CKA_LABEL, b"rsa-public")];
    let mut private = [raw::attr(CKA_SIGN_RECOVER, &raw::TRUE), raw::attr_bytes(CKA_LABEL, b"rsa-private")];
    let mut m = mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let (mut pk, mut sk) = (0, 0);
    // SAFETY: mechanism, templates and out-pointers are live locals.
    let rv = unsafe {
        p.C_GenerateKeyPair(h, &mut m, public.as_mut_ptr(), 2, private.as_mut_ptr(), 2, &mut pk, &mut sk)
    };
    assert_eq!(rv, CKR_OK, "C_GenerateKeyPair");
    (pk, sk)
}

/// Seals one message of the session's message-based encryption; the code.
fn encrypt_message(p: &cryptoki_sys::Pkcs11, h: CK_SESSION_HANDLE, iv: u8) -> CK_RV {
    let (mut iv, mut tag) = ([iv; 12], [0u8; 16]);
    let mut params = CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvFixedBits: 0,
        ivGenerator: CKG_NO_GENERATE,
        pTag: tag.as_mut_ptr(),
        ulTagBits: 128,
    };
    let (mut plain, mut out) = (*b"one message", [0u8; 11]);
    let mut len = raw::ulen(out.len());
    // SAFETY: the parameters, the IV and tag they point to, the input and the output are
    // live locals of their stated lengths.
    unsafe {
        p.C_EncryptMessage(
            h,
            &mut params as *mut CK_GCM_MESSAGE_PARAMS as *mut c_void,
            raw::ulen(size_of::<CK_GCM_MESSAGE_PARAMS>()),
            null_mut(),
            0,
            plain.as_mut_ptr(),
            raw::ulen(plain.len()),
            out.as_mut_ptr(),
            &mut len,
        )
    }
}

isolated_test!(
    fn recovery_and_message_based_operations_are_recorded_at_their_init() {
        let (p, _slot, h) = raw::user_setup();
        let (public, private) = recovery_key_pair(&p, h);
        let aes = raw::aes_key(&p, h, &[9; 32], true);
        let before = records().len();
        let (mut rsa, mut gcm) = (mechanism(CKM_RSA_PKCS), mechanism(CKM_AES_GCM));
        // SAFETY: live mechanisms without parameters, or NULL (which ends an operation).
        let rvs = unsafe {
            [
                p.C_SignRecoverInit(h, &mut rsa, private),
                p.C_SignRecoverInit(h, &mut rsa, private),
                p.C_SignRecoverInit(h, null_mut(), private),
                p.C_VerifyRecoverInit(h, &mut rsa, public),
                p.C_VerifyRecoverInit(h, null_mut(), public),
                p.C_VerifyRecoverInit(h, &mut rsa, aes),
                p.C_MessageEncryptInit(h, &mut gcm, aes),
                encrypt_message(&p, h, 1),
                encrypt_message(&p, h, 2),
                p.C_MessageEncryptFinal(h),
                p.C_MessageDecryptInit(h, &mut gcm, aes),
                p.C_MessageDecryptInit(h, &mut gcm, aes),
                p.C_SessionCancel(h, CKF_MESSAGE_DECRYPT),
                p.C_MessageEncryptInit(h, &mut gcm, private),
            ]
        };
        let refused_aes = rvs[5];
        let refused_rsa = rvs[13];
        assert_ne!(refused_aes, CKR_OK);
        assert_ne!(refused_rsa, CKR_OK);
        let ok = CKR_OK;
        assert_eq!(
            rvs,
            [
                ok,
                CKR_OPERATION_ACTIVE,
                ok,
                ok,
                ok,
                refused_aes,
                ok,
                ok,
                ok,
                ok,
                ok,
                CKR_OPERATION_ACTIVE,
                ok,
                refused_rsa
            ]
        );

        let all = records();
        let new = &all[before..];
        // One record per *Init that begins (or is refused to begin) an operation; none for
        // ending one, for each message, or for C_SessionCancel.
        assert_eq!(
            summary(new),
            [
                row("sign_recover", "user", CKR_OK),
                row("sign_recover", "user", CKR_OPERATION_ACTIVE),
                row("verify_recover", "user", CKR_OK),
                row("verify_recover", "user", refused_aes),
                row("encrypt", "user", CKR_OK),
                row("decrypt", "user", CKR_OK),
                row("decrypt", "user", CKR_OPERATION_ACTIVE),
                row("encrypt", "user", refused_rsa),
            ]
        );
        let keys: Vec<&str> = new.iter().map(|r| r["key_label"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            ["rsa-private", "rsa-private", "rsa-public", "aes", "aes", "aes", "aes", "rsa-private"]
        );
        let mechanisms: Vec<u64> = new.iter().map(|r| r["mechanism"].as_u64().unwrap()).collect();
        assert_eq!(
            mechanisms,
            [
                CKM_RSA_PKCS,
                CKM_RSA_PKCS,
                CKM_RSA_PKCS,
                CKM_RSA_PKCS,
                CKM_AES_GCM,
                CKM_AES_GCM,
                CKM_AES_GCM,
                CKM_AES_GCM
            ]
        );
        assert!(new.iter().all(|r| r["key_uid"].as_str().is_some_and(|u| !u.is_empty())));
        assert_trail_intact();
        raw::close(&p, h);
        raw::finalize(&p);
    }
);

fn aes(s: &Session, label: &str) -> cryptoki::object::ObjectHandle {
    token_aes_key(s, label, &[])
}

isolated_test!(
    fn destroying_a_version_of_the_hierarchy_is_recorded_as_its_retirement() {
        use ecm_hsm::vendor::{CKA_ECM_TENANT, CKT_ECM_DEK, CKT_ECM_KEK, CKT_ECM_MASTER};
        let (_p, _slot, s) = logged_in();
        let dek = [tier(CKT_ECM_DEK), vendor(CKA_ECM_TENANT, b"acme".to_vec())];
        s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_MASTER)]).unwrap();
        s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_KEK)]).unwrap();
        let dek1 = s.generate_key(&Mechanism::AesKeyGen, &dek).unwrap();
        let dek2 = s.generate_key(&Mechanism::AesKeyGen, &dek).unwrap();
        let plain = aes(&s, "plain-key");
        let before = records().len();
        s.destroy_object(dek1).expect("a superseded version retires");
        expect_rv(s.destroy_object(dek2), RvError::ActionProhibited);
        s.destroy_object(plain).unwrap();

        let all = records();
        let new = &all[before..];
        assert_eq!(
            summary(new),
            [
                row("retire", "user", CKR_OK),
                row("retire", "user", CKR_ACTION_PROHIBITED),
                row("destroy", "user", CKR_OK),
            ]
        );
        let named: Vec<(&str, Option<u64>)> =
            new.iter().map(|r| (r["key_label"].as_str().unwrap(), r["key_version"].as_u64())).collect();
        assert_eq!(named, [("dek-acme-v1", Some(1)), ("dek-acme-v2", Some(2)), ("plain-key", None)]);
        // The generation of the second version was its rotation (as before).
        let ops: Vec<&str> = all[..before].iter().map(|r| r["operation"].as_str().unwrap()).collect();
        assert!(ops.ends_with(&["generate", "generate", "generate", "rotate", "generate"]), "{ops:?}");
        assert_trail_intact();
    }
);

/// security-admin uses every key, each operation only once an approver logged in for it;
/// context-api decrypts with DEKs outright; approver-b approves.
const POLICY: &str = r#"{"key_permissions": {
    "context-api": {"keys": ["dek-*"], "operations": ["decrypt"]},
    "security-admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true},
    "approver-b": {"keys": ["*"], "operations": ["approve"]}
}}"#;

/// A token with the user PIN, three principals and [`POLICY`], made through the core (as
/// the admin tool does) and closed again before the test loads the module.
fn token_with_policy() {
    use ecm_hsm::module::Module;
    let m = Module::new(ecm_hsm::config::Config::from_env().unwrap()).unwrap();
    let mut label = [b' '; 32];
    label[..LABEL.len()].copy_from_slice(LABEL.as_bytes());
    m.init_token(0, SO_PIN.as_bytes(), label).unwrap();
    let so = m.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    m.login(so, CKU_SO, SO_PIN.as_bytes()).unwrap();
    m.init_pin(so, USER_PIN.as_bytes()).unwrap();
    for (name, pin) in
        [("context-api", "ctx-pin-1"), ("security-admin", "adm-pin-1"), ("approver-b", "apr-pin-1")]
    {
        m.set_principal(so, name, pin.as_bytes(), false).unwrap();
    }
    m.apply_policy(so, POLICY).unwrap();
    m.logout(so).unwrap();
}

fn always_authenticate(s: &Session, key: cryptoki::object::ObjectHandle) -> bool {
    match &s.get_attributes(key, &[AttributeType::AlwaysAuthenticate]).unwrap()[..] {
        [Attribute::AlwaysAuthenticate(v)] => *v,
        other => panic!("{other:?}"),
    }
}

fn key_labelled(s: &Session, label: &str) -> cryptoki::object::ObjectHandle {
    s.find_objects(&[Attribute::Label(label.into())]).unwrap()[0]
}

isolated_test!(
    fn always_authenticate_is_true_for_a_login_that_needs_approvers() {
        token_with_policy();
        let p = load();
        let slot = first_slot(&p);
        let s = user_session(&p, slot);
        aes(&s, "dek-aa");
        s.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::Token(true),
                Attribute::Label("dek-rsa-pub".into()),
            ],
            &[Attribute::Token(true), Attribute::Label("dek-rsa".into())],
        )
        .unwrap();
        s.logout().unwrap();

        // security-admin: every operation waits for approvers, as with CKA_ALWAYS_AUTHENTICATE.
        s.login(UserType::User, Some(&pin("security-admin:adm-pin-1"))).unwrap();
        for label in ["dek-aa", "dek-rsa"] {
            assert!(always_authenticate(&s, key_labelled(&s, label)), "{label}");
        }
        // And what it reports is what happens: a decryption begins, then waits.
        let aa = key_labelled(&s, "dek-aa");
        let mut iv = [1u8; 12];
        let gcm =
            Mechanism::AesGcm(cryptoki::mechanism::aead::GcmParams::new(&mut iv, &[], 128.into()).unwrap());
        expect_rv(s.decrypt(&gcm, aa, &[0u8; 32]), RvError::UserNotLoggedIn);
        s.logout().unwrap();

        // The others read false on the same keys: a view, not a change to the key.
        s.login(UserType::User, Some(&pin("context-api:ctx-pin-1"))).unwrap();
        for label in ["dek-aa", "dek-rsa"] {
            assert!(!always_authenticate(&s, key_labelled(&s, label)), "{label}");
        }
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        for label in ["dek-aa", "dek-rsa"] {
            assert!(!always_authenticate(&s, key_labelled(&s, label)), "{label}");
        }
        // A public key has no such attribute.
        let public = key_labelled(&s, "dek-rsa-pub");
        assert!(s.get_attributes(public, &[AttributeType::AlwaysAuthenticate]).unwrap().is_empty());
        s.logout().unwrap();

        // Each read is recorded by who read, naming the key, with its result (the public
        // key's: the attribute is not one of its).
        let all = records();
        let read = |who: &str, label: &str, rv: CK_RV| {
            all.iter().any(|r| {
                r["operation"] == "read"
                    && r["principal"] == who
                    && r["key_label"] == label
                    && r["result"] == rv
            })
        };
        for (who, label) in [
            ("security-admin", "dek-aa"),
            ("security-admin", "dek-rsa"),
            ("context-api", "dek-aa"),
            ("context-api", "dek-rsa"),
            ("user", "dek-aa"),
            ("user", "dek-rsa"),
        ] {
            assert!(read(who, label, CKR_OK), "no read of {label} by {who}");
        }
        assert!(read("user", "dek-rsa-pub", CKR_ATTRIBUTE_TYPE_INVALID));
        assert_trail_intact();
    }
);

isolated_test!(
    fn a_principals_lockout_is_recorded_under_its_name() {
        token_with_policy();
        let p = load();
        let slot = first_slot(&p);
        let s = p.open_rw_session(slot).unwrap();
        let before = records().len();
        for _ in 1..MAX_PIN_FAILURES {
            expect_rv(
                s.login(UserType::User, Some(&pin("context-api:wrong-ctx-pin"))),
                RvError::PinIncorrect,
            );
        }
        expect_rv(s.login(UserType::User, Some(&pin("context-api:wrong-ctx-pin"))), RvError::PinLocked);
        expect_rv(s.login(UserType::User, Some(&pin("context-api:ctx-pin-1"))), RvError::PinLocked);
        // An approver's wrong PIN in band counts toward its own lockout, and locks it too.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        aes(&s, "dek-x");
        s.logout().unwrap();
        // (Another principal is not locked by context-api's lockout.)
        s.login(UserType::User, Some(&pin("security-admin:adm-pin-1"))).unwrap();
        let dek = key_labelled(&s, "dek-x");
        let mut iv = [1u8; 12];
        let gcm =
            Mechanism::AesGcm(cryptoki::mechanism::aead::GcmParams::new(&mut iv, &[], 128.into()).unwrap());
        s.decrypt_init(&gcm, dek).unwrap();
        for _ in 1..MAX_PIN_FAILURES {
            expect_rv(
                s.login(UserType::ContextSpecific, Some(&pin("approver-b:wrong-apr-pin"))),
                RvError::PinIncorrect,
            );
        }
        expect_rv(
            s.login(UserType::ContextSpecific, Some(&pin("approver-b:wrong-apr-pin"))),
            RvError::PinLocked,
        );

        let all = records();
        let new = &all[before..];
        let mut expected = vec![];
        // Each refused login names the principal it tried (issue 13, item 8).
        for _ in 1..MAX_PIN_FAILURES {
            expected.push(row("login", "context-api", CKR_PIN_INCORRECT));
        }
        expected.push(row("login", "context-api", CKR_PIN_LOCKED));
        expected.push(row("pin_locked", "context-api", CKR_PIN_LOCKED));
        expected.push(row("login", "context-api", CKR_PIN_LOCKED));
        assert_eq!(summary(&new[..expected.len()]), expected);
        let locked: Vec<(&str, &str)> = new
            .iter()
            .filter(|r| r["operation"] == "pin_locked")
            .map(|r| (r["principal"].as_str().unwrap(), r["operation"].as_str().unwrap()))
            .collect();
        assert_eq!(locked, [("context-api", "pin_locked"), ("approver-b", "pin_locked")]);
        // The approver's lockout follows its refused approval, in the same session.
        let at = new.iter().rposition(|r| r["operation"] == "pin_locked").unwrap();
        assert_eq!(new[at - 1]["operation"], "login_context_specific");
        assert_eq!(new[at - 1]["result"].as_u64(), Some(CKR_PIN_LOCKED));
        assert_eq!(new[at]["session"], new[at - 1]["session"]);
        assert_trail_intact();
        assert_no_secret(&[
            "wrong-ctx-pin",
            "ctx-pin-1",
            "adm-pin-1",
            "wrong-apr-pin",
            "apr-pin-1",
            USER_PIN,
            SO_PIN,
        ]);
    }
);
