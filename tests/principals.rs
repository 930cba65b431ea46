//! Principals: named users of a token with their own PINs, managed by the SO through the
//! core (the `ecm-hsm` tool's path), logging in through PKCS#11 with `name:pin` or
//! `C_LoginUser`. Until a policy is applied (issue 5) a principal may do nothing with keys.
#![allow(unsafe_code)]

mod common;
use common::objects::{login_as, tier, vendor};
use common::workers::{administer, apply_policy};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::types::AuthPin;
use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION};

const PRINCIPAL: &str = "context-api";
const PRINCIPAL_PIN: &str = "context-pin-1";

/// The administration worker (does nothing when run as an ordinary test).
#[test]
fn admin_worker() {
    common::workers::run_admin_actions();
}

isolated_test!(
    fn a_principal_logs_in_with_its_own_pin_and_sees_no_keys() {
        let (p, slot) = load_with_token();
        let (key, data) = {
            let s = user_session(&p, slot);
            let key = s.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Token(true)],
            );
            let data = s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Label(b"shared".to_vec()),
            ]);
            (key.unwrap(), data.unwrap())
        };
        let out = administer(&[
            &format!("add {PRINCIPAL} {PRINCIPAL_PIN}"),
            "list",
            // Names are checked, and a principal is added once.
            "add user pin-1234",
            "add so pin-1234",
            "add a:b pin-1234",
            &format!("add {PRINCIPAL} other-pin"),
        ]);
        assert!(out[0].ends_with(": ok "), "{out:?}");
        assert!(out[1].contains(&format!("[(\"{PRINCIPAL}\", 0)]")), "{out:?}");
        for refused in &out[2..] {
            assert!(refused.contains(": err"), "{refused}");
        }

        let s = p.open_rw_session(slot).unwrap();
        login_as(&s, &format!("{PRINCIPAL}:{PRINCIPAL_PIN}")).expect("name:pin logs the principal in");
        assert_eq!(s.get_session_info().unwrap().session_state(), cryptoki::session::SessionState::RwUser);
        // Default deny: no key is visible or usable, none can be made; other objects are.
        assert_eq!(s.find_objects(&[]).unwrap(), vec![data]);
        assert_eq!(
            rv(s.get_attributes(key, &[cryptoki::object::AttributeType::Label]).unwrap_err()),
            RvError::ObjectHandleInvalid
        );
        let made = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())]);
        assert_eq!(rv(made.unwrap_err()), RvError::ActionProhibited);
        s.logout().unwrap();
        // The token's user still sees everything.
        login_as(&s, USER_PIN).unwrap();
        assert_eq!(s.find_objects(&[]).unwrap().len(), 2);
    }
);

isolated_test!(
    fn principal_pins_lock_on_their_own_and_the_so_resets_them() {
        let (p, slot) = load_with_token();
        administer(&[&format!("add {PRINCIPAL} {PRINCIPAL_PIN}")]);
        let s = p.open_rw_session(slot).unwrap();
        for attempt in 1..=MAX_PIN_FAILURES {
            let e = rv(login_as(&s, &format!("{PRINCIPAL}:wrong-pin")).unwrap_err());
            let expected =
                if attempt == MAX_PIN_FAILURES { RvError::PinLocked } else { RvError::PinIncorrect };
            assert_eq!(e, expected, "attempt {attempt}");
        }
        assert_eq!(
            rv(login_as(&s, &format!("{PRINCIPAL}:{PRINCIPAL_PIN}")).unwrap_err()),
            RvError::PinLocked
        );
        // The user's PIN and count are untouched.
        let info = p.get_token_info(slot).unwrap();
        assert!(!info.user_pin_count_low() && !info.user_pin_locked());
        login_as(&s, USER_PIN).unwrap();
        s.logout().unwrap();
        let out = administer(&["list", &format!("reset {PRINCIPAL} new-principal-pin")]);
        assert!(out[0].contains(&format!("[(\"{PRINCIPAL}\", {MAX_PIN_FAILURES})]")), "{out:?}");
        assert!(out[1].ends_with(": ok "), "{out:?}");
        login_as(&s, &format!("{PRINCIPAL}:new-principal-pin")).expect("reset and unlocked");
        s.logout().unwrap();
        assert_eq!(
            rv(login_as(&s, &format!("{PRINCIPAL}:{PRINCIPAL_PIN}")).unwrap_err()),
            RvError::PinIncorrect
        );
        // Removed, the name is no principal any more: the text is taken as a user PIN.
        assert!(administer(&[&format!("remove {PRINCIPAL}")])[0].ends_with(": ok "));
        assert_eq!(
            rv(login_as(&s, &format!("{PRINCIPAL}:new-principal-pin")).unwrap_err()),
            RvError::PinIncorrect
        );
    }
);

isolated_test!(
    fn login_user_names_the_principal_and_only_the_so_manages_them() {
        let (p, slot) = load_with_token();
        administer(&[&format!("add {PRINCIPAL} {PRINCIPAL_PIN}")]);
        // C_LoginUser with the principal's name (raw: cryptoki's login_with_utf8 has no name).
        let raw = common::raw::load_raw();
        let h = {
            let mut h = 0;
            // SAFETY: out-pointer to a live local; no callback.
            let rv = unsafe {
                raw.C_OpenSession(
                    slot.id(),
                    CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h,
                )
            };
            assert_eq!(rv, cryptoki_sys::CKR_OK);
            h
        };
        let login_user = |name: &str, pin: &str| {
            let (mut name, mut pin) = (name.as_bytes().to_vec(), pin.as_bytes().to_vec());
            // SAFETY: both buffers are live and of the stated lengths.
            unsafe {
                raw.C_LoginUser(
                    h,
                    cryptoki_sys::CKU_USER,
                    pin.as_mut_ptr(),
                    pin.len() as _,
                    name.as_mut_ptr(),
                    name.len() as _,
                )
            }
        };
        assert_eq!(login_user("nobody", PRINCIPAL_PIN), cryptoki_sys::CKR_PIN_INCORRECT);
        assert_eq!(login_user(PRINCIPAL, PRINCIPAL_PIN), cryptoki_sys::CKR_OK);
        // SAFETY: no pointers.
        assert_eq!(unsafe { raw.C_Logout(h) }, cryptoki_sys::CKR_OK);
        // The user cannot manage principals.
        let out = administer(&["user-add intruder", "list"]);
        assert!(out[0].contains(": err"), "{out:?}");
        assert!(!out[1].contains("intruder"), "{out:?}");
        let _ = p;
    }
);

/// The seed's permission model, as it is written there.
const SEED_POLICY: &str = include_str!("fixtures/seed-policy.json");

fn labels(s: &cryptoki::session::Session) -> Vec<String> {
    let mut out: Vec<String> = s
        .find_objects(&[])
        .unwrap()
        .into_iter()
        .map(|o| match &s.get_attributes(o, &[cryptoki::object::AttributeType::Label]).unwrap()[..] {
            [Attribute::Label(l)] => String::from_utf8(l.clone()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    out.sort();
    out
}

fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
    Mechanism::AesGcm(cryptoki::mechanism::aead::GcmParams::new(iv, b"", 128.into()).unwrap())
}

/// As the user: a master key, a KEK and tenant acme's DEK, and a record encrypted under it.
fn hierarchy_with_record(p: &cryptoki::context::Pkcs11, slot: cryptoki::slot::Slot) -> Vec<u8> {
    use ecm_hsm::vendor::{CKA_ECM_TENANT, CKT_ECM_DEK, CKT_ECM_KEK, CKT_ECM_MASTER};
    let s = user_session(p, slot);
    s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_MASTER)]).unwrap();
    s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_KEK)]).unwrap();
    let dek = s
        .generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_DEK), vendor(CKA_ECM_TENANT, b"acme".to_vec())])
        .unwrap();
    let mut iv = [1u8; 12];
    s.encrypt(&gcm(&mut iv), dek, b"tenant record").unwrap()
}

/// A token with the hierarchy and a tenant's record ([`hierarchy_with_record`]), the
/// `principals` added and `policy` applied as its first version.
fn token_with_policy(
    policy: &str,
    principals: &[(&str, &str)],
) -> (cryptoki::context::Pkcs11, cryptoki::slot::Slot, Vec<u8>) {
    let (p, slot) = load_with_token();
    let record = hierarchy_with_record(&p, slot);
    let out = apply_policy(policy, principals);
    assert!(out.last().unwrap().ends_with(": ok v1"), "{out:?}");
    (p, slot, record)
}

isolated_test!(
    /// The seed's three principals, through the C ABI.
    fn the_seeds_permissions_hold_for_its_three_principals() {
        use ecm_hsm::vendor::{CKA_ECM_TENANT, CKT_ECM_DEK, CKT_ECM_KEK, CKT_ECM_MASTER};
        let (p, slot, record) = token_with_policy(
            SEED_POLICY,
            &[
                ("context-api", "pin-ctx-1"),
                ("key-rotation-service", "pin-rot-1"),
                ("security-admin", "pin-adm-1"),
            ],
        );
        let dek_template = [tier(CKT_ECM_DEK), vendor(CKA_ECM_TENANT, b"acme".to_vec())];
        let s = p.open_rw_session(slot).unwrap();

        // context-api: decrypts with DEKs, nothing else; sees no KEK.
        login_as(&s, "context-api:pin-ctx-1").unwrap();
        assert_eq!(labels(&s), vec!["dek-acme-v1"]);
        let dek = s.find_objects(&[Attribute::Label(b"dek-acme-v1".to_vec())]).unwrap()[0];
        let mut iv = [1u8; 12];
        assert_eq!(s.decrypt(&gcm(&mut iv), dek, &record).unwrap(), b"tenant record");
        let mut iv = [2u8; 12];
        assert_eq!(rv(s.encrypt(&gcm(&mut iv), dek, b"x").unwrap_err()), RvError::KeyFunctionNotPermitted);
        assert_eq!(
            rv(s.generate_key(&Mechanism::AesKeyGen, &dek_template).unwrap_err()),
            RvError::ActionProhibited
        );
        assert_eq!(rv(s.destroy_object(dek).unwrap_err()), RvError::ActionProhibited);
        s.logout().unwrap();

        // key-rotation-service: rotates DEKs and KEKs, never the master; destroys nothing.
        login_as(&s, "key-rotation-service:pin-rot-1").unwrap();
        assert_eq!(labels(&s), vec!["dek-acme-v1", "kek-v1"]);
        s.generate_key(&Mechanism::AesKeyGen, &dek_template).expect("rotate the DEK");
        s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_KEK)]).expect("rotate the KEK");
        assert_eq!(
            rv(s.generate_key(&Mechanism::AesKeyGen, &[tier(CKT_ECM_MASTER)]).unwrap_err()),
            RvError::ActionProhibited
        );
        let old = s.find_objects(&[Attribute::Label(b"dek-acme-v1".to_vec())]).unwrap()[0];
        assert_eq!(rv(s.destroy_object(old).unwrap_err()), RvError::ActionProhibited);
        let mut iv = [1u8; 12];
        assert_eq!(s.decrypt(&gcm(&mut iv), old, &record).unwrap(), b"tenant record");
        s.logout().unwrap();

        // security-admin: everything, but only with an approval, which it does not have
        // (the next test gives it some): the operation begins and waits for approvers.
        login_as(&s, "security-admin:pin-adm-1").unwrap();
        assert_eq!(labels(&s).len(), 5, "it sees every key");
        let old = s.find_objects(&[Attribute::Label(b"dek-acme-v1".to_vec())]).unwrap()[0];
        let mut iv = [1u8; 12];
        assert_eq!(rv(s.decrypt(&gcm(&mut iv), old, &record).unwrap_err()), RvError::UserNotLoggedIn);
        assert_eq!(rv(s.destroy_object(old).unwrap_err()), RvError::ActionProhibited);
        s.logout().unwrap();

        // The token's user, whom the policy does not name, works as before.
        login_as(&s, USER_PIN).unwrap();
        assert_eq!(labels(&s).len(), 5);

        // Every refusal above is in the audit record, with who was refused what on which key,
        // and the SO's changes (made by another process) are in the same chain. Destroying a
        // version of the hierarchy is its retirement, and recorded as such.
        let path = ecm_hsm::audit::path_for(&token_dir(), 0);
        let report = ecm_hsm::audit::verify_trail(&path, None, None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        let lines: Vec<serde_json::Value> = ecm_hsm::audit::trail_text(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let has = |principal: &str, operation: &str, label: Option<&str>, rv: cryptoki_sys::CK_RV| {
            lines.iter().any(|r| {
                r["principal"] == principal
                    && r["operation"] == operation
                    && r["result"].as_u64() == Some(rv)
                    && label.is_none_or(|l| r["key_label"] == l)
            })
        };
        use cryptoki_sys::{CKR_ACTION_PROHIBITED, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_OK};
        for (who, what, key, rv) in [
            ("context-api", "decrypt", Some("dek-acme-v1"), CKR_OK),
            ("context-api", "encrypt", Some("dek-acme-v1"), CKR_KEY_FUNCTION_NOT_PERMITTED),
            ("context-api", "generate", None, CKR_ACTION_PROHIBITED),
            ("context-api", "retire", Some("dek-acme-v1"), CKR_ACTION_PROHIBITED),
            ("key-rotation-service", "rotate", Some("dek-acme-v2"), CKR_OK),
            ("key-rotation-service", "rotate", Some("kek-v2"), CKR_OK),
            ("user", "generate", Some("kek-v1"), CKR_OK),
            ("key-rotation-service", "generate", None, CKR_ACTION_PROHIBITED),
            ("key-rotation-service", "retire", Some("dek-acme-v1"), CKR_ACTION_PROHIBITED),
            ("security-admin", "decrypt", Some("dek-acme-v1"), CKR_OK),
            ("security-admin", "retire", Some("dek-acme-v1"), CKR_ACTION_PROHIBITED),
            ("so", "principal_add", None, CKR_OK),
            ("so", "policy_apply", None, CKR_OK),
        ] {
            assert!(has(who, what, key, rv), "no record of {who} {what} {key:?} → {rv:#x}");
        }
    }
);

/// security-admin needs two approvers; approver-a may approve DEKs only, approver-b any key.
const APPROVAL_POLICY: &str = r#"{"key_permissions": {
    "context-api": {"keys": ["dek-*"], "operations": ["decrypt"]},
    "security-admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true, "approvals": 2},
    "approver-a": {"keys": ["dek-*"], "operations": ["approve"]},
    "approver-b": {"keys": ["*"], "operations": ["approve"]}
}}"#;

isolated_test!(
    /// In-band approvals: the operation waits after its *Init until a quorum of distinct
    /// approvers other than the caller has logged in with CKU_CONTEXT_SPECIFIC, for that one
    /// operation; every wrong approval is refused and changes nothing.
    fn an_operation_needing_approval_waits_for_a_quorum_of_other_approvers() {
        use cryptoki::session::UserType;
        let (p, slot, record) = token_with_policy(
            APPROVAL_POLICY,
            &[
                ("context-api", "pin-ctx-1"),
                ("security-admin", "pin-adm-1"),
                ("approver-a", "pin-a-1"),
                ("approver-b", "pin-b-1"),
            ],
        );
        let approve = |s: &cryptoki::session::Session, text: &str| {
            s.login(UserType::ContextSpecific, Some(&AuthPin::new(text.into())))
        };

        let s = p.open_rw_session(slot).unwrap();
        login_as(&s, "security-admin:pin-adm-1").unwrap();
        let dek = s.find_objects(&[Attribute::Label(b"dek-acme-v1".to_vec())]).unwrap()[0];
        // Nothing waits yet.
        assert_eq!(rv(approve(&s, "approver-b:pin-b-1").unwrap_err()), RvError::OperationNotInitialized);
        let mut iv = [1u8; 12];
        s.decrypt_init(&gcm(&mut iv), dek).unwrap();
        assert_eq!(rv(s.decrypt_update(&record).unwrap_err()), RvError::UserNotLoggedIn);
        // Refused approvals: the caller itself, a principal without `approve`, an unknown
        // name (as one without `approve`: the answer does not tell whether it exists), a
        // wrong PIN, no name at all.
        assert_eq!(rv(approve(&s, "security-admin:pin-adm-1").unwrap_err()), RvError::ActionProhibited);
        assert_eq!(rv(approve(&s, "context-api:pin-ctx-1").unwrap_err()), RvError::ActionProhibited);
        assert_eq!(rv(approve(&s, "nobody:pin-a-1").unwrap_err()), RvError::ActionProhibited);
        assert_eq!(rv(approve(&s, "approver-a:wrong").unwrap_err()), RvError::PinIncorrect);
        assert_eq!(rv(approve(&s, "pin-a-1").unwrap_err()), RvError::PinIncorrect);
        assert_eq!(rv(s.decrypt_update(&record).unwrap_err()), RvError::UserNotLoggedIn, "still waiting");
        // The wrong PIN counted toward approver-a's lockout, as a login's would.
        let out = administer(&["list"]);
        assert!(out[0].contains("(\"approver-a\", 1)"), "{out:?}");
        // One approver is not a quorum of two, and counts once.
        approve(&s, "approver-a:pin-a-1").unwrap();
        assert_eq!(rv(s.decrypt_update(&record).unwrap_err()), RvError::UserNotLoggedIn);
        assert_eq!(rv(approve(&s, "approver-a:pin-a-1").unwrap_err()), RvError::UserAlreadyLoggedIn);
        approve(&s, "approver-b:pin-b-1").unwrap();
        s.decrypt_update(&record).unwrap();
        assert_eq!(s.decrypt_final().unwrap(), b"tenant record");
        // For that one operation: the next one waits again.
        let mut iv = [1u8; 12];
        assert_eq!(rv(s.decrypt(&gcm(&mut iv), dek, &record).unwrap_err()), RvError::UserNotLoggedIn);
        // A logout ends the waiting operation; the next login starts afresh.
        s.logout().unwrap();
        login_as(&s, "security-admin:pin-adm-1").unwrap();
        assert_eq!(rv(approve(&s, "approver-b:pin-b-1").unwrap_err()), RvError::OperationNotInitialized);
        // The session's login is still security-admin's, and management needs approvals
        // recorded ahead instead (tests/approvals_ahead.rs).
        assert_eq!(labels(&s).len(), 3);
        let dek = s.find_objects(&[Attribute::Label(b"dek-acme-v1".to_vec())]).unwrap()[0];
        assert_eq!(rv(s.destroy_object(dek).unwrap_err()), RvError::ActionProhibited);
        // approver-a's right PIN reset its failure count.
        let out = administer(&["list"]);
        assert!(out[0].contains("(\"approver-a\", 0)"), "{out:?}");

        // The audit record names the approvers of given approvals and the refusals, and
        // holds no PIN (nor what was typed for one).
        let text = ecm_hsm::audit::trail_text(&ecm_hsm::audit::path_for(&token_dir(), 0)).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let count = |principal: &str, operation: &str, rv: cryptoki_sys::CK_RV| {
            lines
                .iter()
                .filter(|r| r["principal"] == principal && r["operation"] == operation && r["result"] == rv)
                .count()
        };
        assert_eq!(count("approver-a", "approve", cryptoki_sys::CKR_OK), 1);
        assert_eq!(count("approver-b", "approve", cryptoki_sys::CKR_OK), 1);
        let refused = |rv| count("security-admin", "login_context_specific", rv);
        assert_eq!(refused(cryptoki_sys::CKR_ACTION_PROHIBITED), 3);
        assert_eq!(refused(cryptoki_sys::CKR_PIN_INCORRECT), 2);
        assert_eq!(refused(cryptoki_sys::CKR_USER_ALREADY_LOGGED_IN), 1);
        assert_eq!(refused(cryptoki_sys::CKR_OPERATION_NOT_INITIALIZED), 2);
        for secret in ["pin-a-1", "pin-b-1", "pin-adm-1", "wrong", "nobody"] {
            assert!(!text.contains(secret), "{secret} in the audit file");
        }
    }
);

isolated_test!(
    fn a_bad_policy_is_refused_whole_and_the_old_one_kept() {
        let (_p, _slot) = load_with_token();
        let good = token_dir().join("good.json");
        std::fs::write(&good, SEED_POLICY).unwrap();
        let bad = token_dir().join("bad.json");
        std::fs::write(
            &bad,
            SEED_POLICY
                .replace("\"decrypt\"]\n},\n\"key-rotation", "\"decrypt\", \"encryt\"]\n},\n\"key-rotation"),
        )
        .unwrap();
        let toml = token_dir().join("policy.toml");
        std::fs::write(
            &toml,
            "[key_permissions.context-api]\nkeys = [\"dek-*\"]\noperations = [\"decrypt\"]\n",
        )
        .unwrap();
        let out = administer(&[
            &format!("policy {}", good.display()),
            &format!("policy {}", bad.display()),
            "show",
            &format!("policy {}", toml.display()),
            "show",
        ]);
        assert!(out[0].ends_with("ok v1"), "{out:?}");
        assert!(out[1].contains("err") && out[1].contains("line 5") && out[1].contains("encryt"), "{out:?}");
        assert!(out[2].ends_with("ok Some(1)"), "the old policy stays: {out:?}");
        assert!(out[3].ends_with("ok v2") && out[4].ends_with("ok Some(2)"), "{out:?}");
    }
);
