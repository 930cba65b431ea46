//! Issue 13, item 4: the SO alone may not take an approver's place (or a restricted user's)
//! while the policy needs approvals. The review's attack, through the admin tool and the C
//! ABI: with `"policy_change_approvals": 2`, the SO resets approver-a's and approver-b's PINs,
//! approves as each and applies a policy; and the SO resets the user PIN with `C_InitPIN`
//! while the policy restricts `user`. Each step is refused and nothing changes. The way
//! that remains is the quorum's: a policy change they approve.
#![allow(unsafe_code)]

mod common;

use std::process::Output;

use common::cli::tool_on_token;
use common::raw::{close, initialize, login, open, token_info, ulen};
use common::*;
use cryptoki_sys::*;
use serde_json::Value;

/// Two approvers of every key, both needed for a policy change; the user restricted.
const POLICY: &str = r#"{"policy_change_approvals": 2, "key_permissions": {
    "approver-a": {"keys": ["*"], "operations": ["approve"]},
    "approver-b": {"keys": ["*"], "operations": ["approve"]},
    "approver-c": {"keys": ["*"], "operations": ["approve"]},
    "app-signer": {"keys": ["app-*"], "operations": ["sign"]},
    "user": {"keys": ["app-*"], "operations": ["sign"]}
}}"#;

/// The policy the SO would like: the user may do everything.
const WANTED: &str = r#"{"key_permissions": {
    "approver-a": {"keys": ["*"], "operations": ["approve"]},
    "approver-b": {"keys": ["*"], "operations": ["approve"]}
}}"#;

/// The admin tool on this test's token, with the SO PIN, `ECM_HSM_PIN` = `pin`,
/// `ECM_HSM_NEW_PIN` = `new_pin`.
fn cli(args: &[&str], pin: &str, new_pin: &str) -> Output {
    tool_on_token(args, pin, new_pin).output().unwrap()
}

#[track_caller]
fn ok(args: &[&str], pin: &str, new_pin: &str) -> String {
    let out = cli(args, pin, new_pin);
    assert!(out.status.success(), "ecm-hsm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn fails(args: &[&str], pin: &str, new_pin: &str) -> String {
    let out = cli(args, pin, new_pin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "ecm-hsm {args:?} should fail: {stderr}");
    stderr
}

fn write(name: &str, text: &str) -> String {
    let path = token_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Whether principal `name` logs in with `pin` (the admin tool's `--user NAME status`).
fn logs_in(name: &str, pin: &str) -> bool {
    cli(&["--user", name, "status"], pin, pin).status.success()
}

/// The policy in force: (version, canonical document).
fn policy() -> (u64, String) {
    let json: Value = serde_json::from_str(&ok(&["policy", "show", "--json"], USER_PIN, USER_PIN)).unwrap();
    (json["version"].as_u64().unwrap(), json["policy"].to_string())
}

/// A token with approver-a/-b (PINs a-pin-1, b-pin-1), app-signer and the policy.
fn setup() {
    ok(&["init", "--label", "custody"], USER_PIN, USER_PIN);
    for (name, pin) in [("approver-a", "a-pin-1"), ("approver-b", "b-pin-1"), ("app-signer", "s-pin-1")] {
        ok(&["principal", "add", name], USER_PIN, pin);
    }
    let file = write("policy.json", POLICY);
    assert!(ok(&["policy", "apply", &file], USER_PIN, USER_PIN).contains("version 1"));
}

isolated_test!(
    fn the_so_alone_cannot_take_the_approvers_places() {
        setup();
        let before = policy();
        let wanted = write("wanted.json", WANTED);

        // The review's attack: new PINs for both approvers, approvals as each, the change.
        for name in ["approver-a", "approver-b"] {
            let e = fails(&["principal", "reset-pin", name], USER_PIN, "so-chose-1");
            assert!(e.contains("needs approvals") && e.contains(name), "{e}");
            let e = fails(&["principal", "remove", name], USER_PIN, USER_PIN);
            assert!(e.contains("needs approvals"), "{e}");
            let e = fails(
                &["approve", "--approver", name, "--operation", "policy", "--policy", &wanted],
                "so-chose-1",
                USER_PIN,
            );
            assert!(!e.is_empty());
        }
        let e = fails(&["policy", "apply", &wanted], USER_PIN, USER_PIN);
        assert!(e.contains("asks 2 approval(s)"), "{e}");
        // An approver the policy names but the token does not have yet is no way in either.
        let e = fails(&["principal", "add", "approver-c"], USER_PIN, "so-chose-1");
        assert!(e.contains("needs approvals"), "{e}");

        // Nothing changed: the old PINs open, the SO's do not, no approver-c, no approval,
        // the same policy.
        assert!(logs_in("approver-a", "a-pin-1") && logs_in("approver-b", "b-pin-1"));
        assert!(!logs_in("approver-a", "so-chose-1") && !logs_in("approver-c", "so-chose-1"));
        let listed = ok(&["principal", "list"], USER_PIN, USER_PIN);
        assert!(!listed.contains("approver-c"), "{listed}");
        let approvals: Value =
            serde_json::from_str(&ok(&["approval", "list", "--json"], USER_PIN, USER_PIN)).unwrap();
        assert_eq!(approvals["approvals"].as_array().unwrap().len(), 0);
        assert_eq!(policy(), before);

        // Principals the policy lets approve nothing stay the SO's to manage.
        ok(&["principal", "reset-pin", "app-signer"], USER_PIN, "s-pin-2");
        assert!(logs_in("app-signer", "s-pin-2"));
        ok(&["principal", "add", "batch-job"], USER_PIN, "j-pin-1");

        // The quorum's way: both approve a policy that no longer lets approver-a approve
        // (and asks no approvals); then the SO may give approver-a a new PIN.
        let drop_a = write(
            "drop-a.json",
            &POLICY.replace("\"policy_change_approvals\": 2, ", "").replace(
                "\"approver-a\": {\"keys\": [\"*\"], \"operations\": [\"approve\"]}",
                "\"approver-a\": {\"keys\": [\"app-*\"], \"operations\": [\"verify\"]}",
            ),
        );
        for (name, pin) in [("approver-a", "a-pin-1"), ("approver-b", "b-pin-1")] {
            ok(&["approve", "--approver", name, "--operation", "policy", "--policy", &drop_a], pin, USER_PIN);
        }
        assert!(ok(&["policy", "apply", &drop_a], USER_PIN, USER_PIN).contains("version 2"));
        ok(&["principal", "reset-pin", "approver-a"], USER_PIN, "a-pin-2");
        assert!(logs_in("approver-a", "a-pin-2"));
    }
);

isolated_test!(
    fn the_so_cannot_reset_a_restricted_users_pin_with_c_init_pin() {
        setup();
        let p = common::raw::load_raw();
        initialize(&p);
        let slot = 0;
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_SO, SO_PIN), CKR_OK);
        let init_pin = |pin: &str| {
            let mut pin = pin.as_bytes().to_vec();
            // SAFETY: the PIN buffer holds its stated length.
            unsafe { p.C_InitPIN(h, pin.as_mut_ptr(), ulen(pin.len())) }
        };
        let flags_before = token_info(&p, slot).flags;
        // Not CKR_ACTION_PROHIBITED, which the standard lets only C_CopyObject,
        // C_SetAttributeValue and C_DestroyObject answer.
        assert_eq!(init_pin("so-chose-1"), CKR_USER_NOT_LOGGED_IN);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_Logout(h) }, CKR_OK);
        // The user's PIN is the user's still, with no failure counted.
        assert_eq!(login(&p, h, CKU_USER, "so-chose-1"), CKR_PIN_INCORRECT);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(token_info(&p, slot).flags, flags_before);
        close(&p, h);
        assert!(!logs_in("user", "so-chose-1"));
    }
);

isolated_test!(
    fn a_user_pin_cannot_take_the_form_of_a_principals_login() {
        // Without a policy the SO sets the user PIN as before, but not one that C_Login
        // would take for principal `alice`'s login.
        ok(&["init", "--label", "custody"], USER_PIN, USER_PIN);
        let p = common::raw::load_raw();
        initialize(&p);
        let h = open(&p, 0);
        assert_eq!(login(&p, h, CKU_SO, SO_PIN), CKR_OK);
        let init_pin = |pin: &str| {
            let mut pin = pin.as_bytes().to_vec();
            // SAFETY: the PIN buffer holds its stated length.
            unsafe { p.C_InitPIN(h, pin.as_mut_ptr(), ulen(pin.len())) }
        };
        assert_eq!(init_pin("alice:1234"), CKR_PIN_INVALID);
        assert_eq!(init_pin("user-secret-2"), CKR_OK);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_Logout(h) }, CKR_OK);
        assert_eq!(login(&p, h, CKU_USER, "alice:1234"), CKR_PIN_INCORRECT);
        assert_eq!(login(&p, h, CKU_USER, "user-secret-2"), CKR_OK);
        // The user's own C_SetPIN is held to the same rule.
        let (mut old, mut new) = (b"user-secret-2".to_vec(), b"alice:1234".to_vec());
        // SAFETY: both buffers hold their stated lengths.
        let rv =
            unsafe { p.C_SetPIN(h, old.as_mut_ptr(), ulen(old.len()), new.as_mut_ptr(), ulen(new.len())) };
        assert_eq!(rv, CKR_PIN_INVALID);
        close(&p, h);
    }
);
