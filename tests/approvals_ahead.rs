//! Approvals recorded ahead for management operations (issue 5): an approver records, with
//! its own PIN, a single-use approval (`ecm-hsm approve`) bound to a principal, an
//! operation, a key and an expiry; the principal's destroy, modify, rotate or the SO's policy
//! change uses it up in the transaction that makes the change. Each test runs in its own
//! process and token directory: the admin tool (the built binary) and the module (the built
//! `.so`, through `cryptoki`) on the same token, as an operator and an application would.
mod common;

use std::process::{Command, Output, Stdio};

use common::objects::token_aes_key;
use common::*;
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// security-admin needs one approval, dual-admin two; approver-a approves DEKs only,
/// approver-b and approver-c any key (and policy changes); context-api approves nothing.
const POLICY: &str = r#"{"key_permissions": {
    "security-admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true},
    "dual-admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true, "approvals": 2},
    "approver-a": {"keys": ["dek-*"], "operations": ["approve"]},
    "approver-b": {"keys": ["*"], "operations": ["approve", "decrypt"]},
    "approver-c": {"keys": ["*"], "operations": ["approve"]},
    "context-api": {"keys": ["dek-*"], "operations": ["decrypt"]}
}}"#;

const PRINCIPALS: [(&str, &str); 6] = [
    ("security-admin", "adm-pin-1"),
    ("dual-admin", "dual-pin-1"),
    ("approver-a", "a-pin-1"),
    ("approver-b", "b-pin-1"),
    ("approver-c", "c-pin-1"),
    ("context-api", "ctx-pin-1"),
];

fn pin_of(name: &str) -> &'static str {
    PRINCIPALS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p).unwrap()
}

/// The admin tool on this test's token directory, with the SO PIN, `ECM_HSM_PIN` = `pin`
/// and `ECM_HSM_NEW_PIN` = `new_pin`.
fn cli(args: &[&str], pin: &str, new_pin: &str) -> Output {
    command(args, pin).env("ECM_HSM_SO_PIN", SO_PIN).env("ECM_HSM_NEW_PIN", new_pin).output().unwrap()
}

fn command(args: &[&str], pin: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("ECM_HSM_DIR", token_dir())
        .env_remove("ECM_HSM_CONF")
        .env_remove("ECM_HSM_SO_PIN")
        .env_remove("ECM_HSM_NEW_PIN")
        .env("ECM_HSM_PIN", pin)
        .stdin(Stdio::null());
    c
}

/// The admin tool as principal `name` (`--user NAME`, its PIN, no SO PIN at hand).
fn as_principal(name: &str, args: &[&str]) -> Output {
    let mut all = vec!["--user", name];
    all.extend(args);
    command(&all, pin_of(name)).output().unwrap()
}

#[track_caller]
fn ok(args: &[&str], pin: &str) -> String {
    let out = cli(args, pin, USER_PIN);
    assert!(out.status.success(), "ecm-hsm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A command that must fail with exit 1 and one line on stderr; that line.
#[track_caller]
fn fails(args: &[&str], pin: &str) -> String {
    let out = cli(args, pin, USER_PIN);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "ecm-hsm {args:?} should fail: {stderr}");
    assert!(out.stdout.is_empty(), "{:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// `ecm-hsm approve` by `approver` (with its PIN) for `principal`; the approval's id.
#[track_caller]
fn approve(approver: &str, principal: &str, op: &str, key: &str, extra: &[&str]) -> i64 {
    let mut args =
        vec!["approve", "--approver", approver, "--for", principal, "--operation", op, "--key", key];
    args.extend(extra);
    let out = ok(&args, pin_of(approver));
    assert!(out.contains(&format!("'{approver}' approves {op} of {key} by '{principal}', once")), "{out}");
    out.strip_prefix("approval ").and_then(|r| r.split(' ').next()).unwrap().parse().unwrap()
}

/// As `approve`, for a command that must be refused; the message.
#[track_caller]
fn approve_fails(approver: &str, pin: &str, args: &[&str]) -> String {
    let mut all = vec!["approve", "--approver", approver];
    all.extend(args);
    fails(&all, pin)
}

/// Every approval, as the SO sees them: id → (state, approver, principal, operation, label).
fn approvals() -> Vec<(i64, String, String, String, String, String)> {
    let json: Value = serde_json::from_str(&ok(&["approval", "list", "--json"], USER_PIN)).unwrap();
    json["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (
                a["id"].as_i64().unwrap(),
                s("state"),
                s("approver"),
                s("principal"),
                s("operation"),
                s("key_label"),
            )
        })
        .collect()
}

fn state_of(id: i64) -> String {
    approvals().into_iter().find(|a| a.0 == id).map(|a| a.1).unwrap()
}

/// A token with the hierarchy (master, KEK, tenant acme's DEK), the principals, the policy,
/// and two ordinary AES keys of the user, `app-key-1` and `app-key-2`.
fn setup() -> (Pkcs11, Slot) {
    let out = cli(&["init", "--label", "approvals"], USER_PIN, USER_PIN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&["hierarchy", "init"], USER_PIN);
    ok(&["tenant", "add", "acme"], USER_PIN);
    for (name, pin) in PRINCIPALS {
        let out = cli(&["principal", "add", name], USER_PIN, pin);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    apply_policy(POLICY);
    let p = load();
    let slot = first_slot(&p);
    let s = user_session(&p, slot);
    for label in ["app-key-1", "app-key-2"] {
        token_aes_key(&s, label, &[]);
    }
    (p, slot)
}

fn apply_policy(text: &str) -> String {
    let file = token_dir().join("policy-to-apply.json");
    std::fs::write(&file, text).unwrap();
    ok(&["policy", "apply", file.to_str().unwrap()], USER_PIN)
}

/// A read/write session of principal `name`.
fn session_of(p: &Pkcs11, slot: Slot, name: &str) -> Session {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin(&format!("{name}:{}", pin_of(name))))).unwrap();
    s
}

fn find(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).unwrap()
}

fn key(s: &Session, label: &str) -> ObjectHandle {
    let found = find(s, label);
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

fn id_of(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match &s.get_attributes(key, &[AttributeType::Id]).unwrap()[..] {
        [Attribute::Id(v)] => v.clone(),
        other => panic!("{other:?}"),
    }
}

/// The audit records as JSON.
fn audit() -> Vec<Value> {
    let path = ecm_hsm::audit::path_for(&token_dir(), 0);
    ecm_hsm::audit::trail_text(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn audited(records: &[Value], principal: &str, operation: &str, label: &str, rv: u64) -> usize {
    records
        .iter()
        .filter(|r| {
            r["principal"] == principal
                && r["operation"] == operation
                && r["key_label"] == label
                && r["result"] == rv
        })
        .count()
}

isolated_test!(
    /// Destroy: refused without an approval, allowed with one recorded ahead by another
    /// principal holding `approve`, which it uses up; every step audited.
    fn security_admin_destroys_a_key_only_with_an_approval_recorded_ahead() {
        let (p, slot) = setup();
        let admin = session_of(&p, slot, "security-admin");
        let k = key(&admin, "app-key-1");
        assert_eq!(rv(admin.destroy_object(k).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(find(&admin, "app-key-1").len(), 1, "still there");

        let id = approve("approver-b", "security-admin", "destroy", "app-key-1", &[]);
        assert_eq!(state_of(id), "pending");
        admin.destroy_object(k).expect("approved");
        assert!(find(&admin, "app-key-1").is_empty());
        assert_eq!(state_of(id), "consumed");

        // The audit record names the approval given, its use and the destroy, and no PIN.
        let records = audit();
        assert_eq!(audited(&records, "approver-b", "approval_give", "app-key-1", 0), 1);
        assert_eq!(audited(&records, "approver-b", "approval_consume", "app-key-1", 0), 1);
        assert_eq!(audited(&records, "security-admin", "destroy", "app-key-1", 0), 1);
        assert_eq!(audited(&records, "security-admin", "destroy", "app-key-1", 0x1b), 1, "refused first");
        let text = ecm_hsm::audit::trail_text(&ecm_hsm::audit::path_for(&token_dir(), 0)).unwrap();
        for (_, secret) in PRINCIPALS {
            assert!(!text.contains(secret), "{secret} in the audit file");
        }
        // The list never shows a secret either.
        let listed = ok(&["approval", "list"], USER_PIN);
        assert!(listed.contains("approver-b") && listed.contains("consumed"), "{listed}");
        for (_, secret) in PRINCIPALS {
            assert!(!listed.contains(secret));
        }
    }
);

isolated_test!(
    /// Modify: an approval counts only for its own principal, operation and key, once.
    fn modify_uses_an_approval_once_and_mismatched_ones_never() {
        let (p, slot) = setup();
        let admin = session_of(&p, slot, "security-admin");
        let k1 = key(&admin, "app-key-1");
        let before = id_of(&admin, k1);
        let set = |s: &Session, k| s.update_attributes(k, &[Attribute::Id(b"new-id".to_vec())]);

        // For another principal, another operation, another key: none of them counts.
        // (A modify approval names its change: here CKA_ID = "new-id", in hex.)
        let new_id: &[&str] = &["--set", "id=6e65772d6964"];
        let other_principal = approve("approver-b", "dual-admin", "modify", "app-key-1", new_id);
        let other_op = approve("approver-b", "security-admin", "destroy", "app-key-1", &[]);
        let other_key = approve("approver-b", "security-admin", "modify", "app-key-2", new_id);
        // Issue 13, item 8: another change of the same key (another value, or the same
        // value with another attribute beside it) does not count either.
        let other_change =
            approve("approver-c", "security-admin", "modify", "app-key-1", &["--set", "id=6f74686572"]);
        let more_change = approve(
            "approver-b",
            "security-admin",
            "modify",
            "app-key-1",
            &["--set", "id=6e65772d6964", "--set", "decrypt=false"],
        );
        assert_eq!(rv(set(&admin, k1).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(id_of(&admin, k1), before, "unchanged");
        for id in [other_principal, other_op, other_key, other_change, more_change] {
            assert_eq!(state_of(id), "pending", "approval {id} not used");
        }
        // Nor the other way round: the change approved with decrypt=false is not made
        // with another id.
        let other =
            admin.update_attributes(k1, &[Attribute::Id(b"other".to_vec()), Attribute::Decrypt(false)]);
        assert_eq!(rv(other.unwrap_err()), RvError::ActionProhibited);
        assert_eq!(id_of(&admin, k1), before, "unchanged");
        assert_eq!(state_of(more_change), "pending");
        // Without --set, or with it for another operation, nothing is approved.
        let e = approve_fails(
            "approver-c",
            pin_of("approver-c"),
            &["--for", "security-admin", "--operation", "modify", "--key", "app-key-1"],
        );
        assert!(e.contains("give --set NAME=VALUE"), "{e}");
        let e = approve_fails(
            "approver-c",
            pin_of("approver-c"),
            &["--for", "security-admin", "--operation", "destroy", "--key", "app-key-1", "--set", "id=00"],
        );
        assert!(e.contains("--set is for --operation modify"), "{e}");
        for bad in ["id=xyz", "colour=red", "decrypt=yes", "end_date=2027", "label"] {
            let e = approve_fails(
                "approver-c",
                pin_of("approver-c"),
                &["--for", "security-admin", "--operation", "modify", "--key", "app-key-1", "--set", bad],
            );
            assert!(e.contains(&format!("--set {bad}:")), "{e}");
        }
        assert_eq!(approvals().len(), 5, "nothing stored by the refusals");

        let id = approve("approver-c", "security-admin", "modify", "app-key-1", new_id);
        set(&admin, k1).expect("approved");
        assert_eq!(id_of(&admin, k1), b"new-id");
        assert_eq!(state_of(id), "consumed");
        // Reuse: the approval is spent.
        let again = admin.update_attributes(k1, &[Attribute::Id(b"third".to_vec())]);
        assert_eq!(rv(again.unwrap_err()), RvError::ActionProhibited);
        assert_eq!(id_of(&admin, k1), b"new-id", "unchanged");
        for id in [other_principal, other_op, other_key, other_change, more_change] {
            assert_eq!(state_of(id), "pending");
        }
        // The other key's approval still works for that key.
        let k2 = key(&admin, "app-key-2");
        set(&admin, k2).unwrap();
        assert_eq!(state_of(other_key), "consumed");
    }
);

isolated_test!(
    /// An approval lasts its expiry and no longer.
    fn an_expired_approval_is_refused() {
        let (p, slot) = setup();
        let admin = session_of(&p, slot, "security-admin");
        let id = approve("approver-b", "security-admin", "destroy", "app-key-1", &["--expires-in", "1s"]);
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let k = key(&admin, "app-key-1");
        assert_eq!(rv(admin.destroy_object(k).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(find(&admin, "app-key-1").len(), 1);
        assert_eq!(state_of(id), "expired");
    }
);

isolated_test!(
    /// dual-admin's rule asks two approvals: two by one approver are one; a third approval
    /// beyond the quorum stays pending.
    fn two_of_n_needs_two_distinct_approvers() {
        let (p, slot) = setup();
        let dual = session_of(&p, slot, "dual-admin");
        let k = key(&dual, "app-key-1");
        let b1 = approve("approver-b", "dual-admin", "destroy", "app-key-1", &[]);
        let b2 = approve("approver-b", "dual-admin", "destroy", "app-key-1", &["--expires-in", "2h"]);
        assert_eq!(rv(dual.destroy_object(k).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(find(&dual, "app-key-1").len(), 1);
        assert_eq!((state_of(b1), state_of(b2)), ("pending".into(), "pending".into()));
        let c = approve("approver-c", "dual-admin", "destroy", "app-key-1", &[]);
        dual.destroy_object(k).expect("two distinct approvers");
        assert!(find(&dual, "app-key-1").is_empty());
        // Exactly two used: approver-c's and the approver-b one expiring first.
        assert_eq!(state_of(c), "consumed");
        assert_eq!(state_of(b1), "consumed");
        assert_eq!(state_of(b2), "pending");
    }
);

isolated_test!(
    /// A change refused for another reason (the hierarchy's rules) uses no approval; a
    /// rotation with its approval does, bound to the version it supersedes.
    fn a_change_refused_for_another_reason_uses_no_approval_and_rotation_needs_one() {
        let (p, slot) = setup();
        let admin = session_of(&p, slot, "security-admin");
        // The current DEK may not be retired (hierarchy rule), approval or not.
        let id = approve("approver-a", "security-admin", "destroy", "dek-acme-v1", &[]);
        let dek = key(&admin, "dek-acme-v1");
        assert_eq!(rv(admin.destroy_object(dek).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(find(&admin, "dek-acme-v1").len(), 1);
        assert_eq!(state_of(id), "pending", "nothing used by a refused change");

        // Rotation through the admin tool: refused without its approval, no new version.
        let refused = fails(&["--user", "security-admin", "rotate", "dek", "--tenant", "acme"], "adm-pin-1");
        assert!(refused.contains("ecm-hsm approve"), "{refused}");
        assert!(find(&admin, "dek-acme-v2").is_empty());
        let rotate = approve("approver-a", "security-admin", "rotate", "dek-acme-v1", &[]);
        ok(&["--user", "security-admin", "rotate", "dek", "--tenant", "acme"], "adm-pin-1");
        assert_eq!(find(&admin, "dek-acme-v2").len(), 1);
        assert_eq!(state_of(rotate), "consumed");
        // v1 is no longer current: a rotation is approved on v2 now, and v1 may be retired
        // with the destroy approval given before.
        let e = approve_fails(
            "approver-a",
            "a-pin-1",
            &["--for", "security-admin", "--operation", "rotate", "--key", "dek-acme-v1"],
        );
        assert!(e.contains("not the current version"), "{e}");
        ok(&["--user", "security-admin", "retire", "--label", "dek-acme-v1"], "adm-pin-1");
        assert_eq!(state_of(id), "consumed");
        let records = audit();
        assert_eq!(audited(&records, "approver-a", "approval_consume", "dek-acme-v1", 0), 2);
        assert_eq!(audited(&records, "security-admin", "rotate", "dek-acme-v2", 0), 1);
    }
);

isolated_test!(
    /// Every refusal of `ecm-hsm approve` has its own message, exits 1 and stores nothing.
    fn refused_approvals_are_explained_and_store_nothing() {
        let (_p, _slot) = setup();
        let for_admin = ["--for", "security-admin", "--operation", "destroy", "--key", "app-key-1"];
        let on_dek = ["--for", "security-admin", "--operation", "destroy", "--key", "dek-acme-v1"];
        let with = |extra: &[&'static str]| [&for_admin[..], extra].concat();
        let cases: Vec<(&str, &str, Vec<&str>, &str)> = vec![
            ("security-admin", "adm-pin-1", for_admin.to_vec(), "cannot approve its own operation"),
            // context-api sees the DEK (it decrypts with it) but may not approve.
            ("context-api", "ctx-pin-1", on_dek.to_vec(), "may not approve destroy of dek-acme-v1"),
            // approver-a approves DEKs only: other keys do not exist for it.
            ("approver-a", "a-pin-1", for_admin.to_vec(), "no key labelled app-key-1"),
            (
                "approver-b",
                "wrong-pin",
                for_admin.to_vec(),
                "refused the user PIN for principal 'approver-b'",
            ),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "security-admin", "--operation", "destroy", "--key", "no-such-key"],
                "no key labelled no-such-key",
            ),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "security-admin", "--operation", "encrypt", "--key", "app-key-1"],
                "'encrypt' is not an operation approved ahead",
            ),
            ("approver-b", "b-pin-1", with(&["--expires-in", "25h"]), "at most 24h"),
            ("approver-b", "b-pin-1", with(&["--expires-in", "soon"]), "not a duration"),
            ("approver-b", "b-pin-1", with(&["--expires-in", "0s"]), "at least 1s"),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "approver-c", "--operation", "destroy", "--key", "app-key-1"],
                "principal 'approver-c' needs no approval",
            ),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "so", "--operation", "destroy", "--key", "app-key-1"],
                "needs no approval",
            ),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "security-admin", "--operation", "rotate", "--key", "app-key-1"],
                "not the current version of a key family",
            ),
            (
                "approver-b",
                "b-pin-1",
                vec!["--for", "security-admin", "--operation", "policy", "--key", "app-key-1"],
                "give --policy FILE",
            ),
        ];
        for (approver, pin, args, message) in &cases {
            let e = approve_fails(approver, pin, args);
            assert!(e.starts_with("ecm-hsm: ") && e.contains(message), "{approver} {args:?}: {e}");
        }
        assert!(approvals().is_empty(), "nothing stored");
        // A wrong PIN counts toward the approver's lockout, as a login's would.
        let e = approve_fails("approver-c", "wrong", &for_admin);
        assert!(e.contains("refused the user PIN"), "{e}");
        let list: Value = serde_json::from_str(&ok(&["principal", "list", "--json"], USER_PIN)).unwrap();
        let failures = |name: &str| {
            list["principals"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["failed_logins"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(failures("approver-c"), 1);
        assert_eq!(failures("approver-b"), 0, "its right PIN later reset the count");
        // The refusals the core saw (after the approver's login) are audited, by approver.
        let records = audit();
        let refused = |who: &str, label: &str| audited(&records, who, "approval_give", label, 0x1b);
        assert_eq!(refused("security-admin", "app-key-1"), 1, "self-approval");
        assert_eq!(refused("context-api", "dek-acme-v1"), 1);
        assert_eq!(refused("approver-b", "app-key-1"), 2, "for approver-c, and a rotation");
        assert_eq!(
            audited(&records, "approver-b", "approval_give", "app-key-1", 0x7),
            1,
            "for so: no principal"
        );
        assert!(records.iter().all(|r| r["operation"] != "approval_give" || r["result"] != 0));
    }
);

isolated_test!(
    /// The core refuses on its own what the tool checks first, and only a principal's login
    /// approves (the module API, as the tool reaches it).
    fn the_core_refuses_what_the_tool_checks_first() {
        let (p, slot) = setup();
        // In a worker process: one copy of SQLite per process (the .so is loaded here).
        let lines = common::workers::worker_lines("core_worker", CORE_ENV, "1");
        assert_eq!(
            lines,
            [
                "self: Err(ActionProhibited)",
                "not entitled: Err(ActionProhibited)",
                "needs none: Err(ActionProhibited)",
                "unknown principal: Err(ArgumentsBad)",
                "policy op on a key: Err(ArgumentsBad)",
                "too long: Err(ArgumentsBad)",
                "the token's user: Err(UserNotLoggedIn)",
                "given: Ok",
            ]
        );
        assert_eq!(approvals().len(), 1, "only the last one was stored");
        drop((p, slot));
    }
);

const CORE_ENV: &str = "ECM_APPROVALS_CORE";

/// The worker of the test above (does nothing when run as an ordinary test).
#[test]
fn core_worker() {
    use cryptoki_sys::{CK_SESSION_HANDLE, CKA_LABEL, CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_USER};
    use ecm_hsm::module::{ApprovalRequest, ApprovalTarget, Module};
    use ecm_hsm::policy::approval_ahead::ManagementOp::{Destroy, Policy};
    if std::env::var_os(CORE_ENV).is_none() {
        return;
    }
    let m = Module::new(ecm_hsm::config::Config::from_env().unwrap()).unwrap();
    let session = |name: &str| {
        let h = m.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
        match name {
            "user" => m.login(h, CKU_USER, USER_PIN.as_bytes()).unwrap(),
            _ => m.login_user(h, CKU_USER, pin_of(name).as_bytes(), name.as_bytes()).unwrap(),
        }
        h
    };
    let key = |h: CK_SESSION_HANDLE, label: &str| {
        m.find_init(h, &[ecm_hsm::object::Attribute::new(CKA_LABEL, label.as_bytes().to_vec())]).unwrap();
        let found = m.find_next(h, 10).unwrap();
        m.find_final(h).unwrap();
        ApprovalTarget::Key(found[0])
    };
    let ask = |what: &str, h, principal: &str, op, target, secs| {
        let request = ApprovalRequest {
            principal: principal.into(),
            op,
            target,
            expires_in: std::time::Duration::from_secs(secs),
        };
        let shown = match m.approve_ahead(h, &request) {
            Ok(_) => "Ok".to_string(),
            Err(e) => format!("Err({e:?})"),
        };
        println!("> {what}: {shown}");
    };
    let admin = session("security-admin");
    ask("self", admin, "security-admin", Destroy, key(admin, "app-key-1"), 60);
    m.close_session(admin).unwrap();
    let ctx = session("context-api");
    ask("not entitled", ctx, "security-admin", Destroy, key(ctx, "dek-acme-v1"), 60);
    m.close_session(ctx).unwrap();
    let b = session("approver-b");
    ask("needs none", b, "approver-c", Destroy, key(b, "app-key-1"), 60);
    ask("unknown principal", b, "nobody", Destroy, key(b, "app-key-1"), 60);
    ask("policy op on a key", b, "security-admin", Policy, key(b, "app-key-1"), 60);
    ask("too long", b, "security-admin", Destroy, key(b, "app-key-1"), 24 * 3600 + 1);
    m.close_session(b).unwrap();
    let user = session("user");
    ask("the token's user", user, "security-admin", Destroy, key(user, "app-key-1"), 60);
    m.close_session(user).unwrap();
    let b = session("approver-b");
    ask("given", b, "security-admin", Destroy, key(b, "app-key-1"), 60);
}

isolated_test!(
    /// A policy whose `policy_change_approvals` is set is replaced only with approvals bound
    /// to the exact new document, each used once; approvers must approve every key.
    fn a_policy_change_needs_approvals_bound_to_the_new_document() {
        let (_p, _slot) = setup();
        let guarded = POLICY.replacen(
            "{\"key_permissions\"",
            "{\"policy_change_approvals\": 1, \"key_permissions\"",
            1,
        );
        assert!(apply_policy(&guarded).contains("applied policy version 2"));
        let next = guarded.replace("\"decrypt\"]}\n}}", "\"decrypt\", \"verify\"]}\n}}");
        assert_ne!(next, guarded);
        let other = guarded.replace("\"decrypt\"]}\n}}", "\"decrypt\", \"sign\"]}\n}}");
        let next_file = token_dir().join("next.json");
        std::fs::write(&next_file, &next).unwrap();
        let next_path = next_file.to_str().unwrap();
        let show = || -> u64 {
            let v: Value = serde_json::from_str(&ok(&["policy", "show", "--json"], USER_PIN)).unwrap();
            v["version"].as_u64().unwrap()
        };

        // Without an approval: refused, version 2 stays.
        let e = fails(&["policy", "apply", next_path], USER_PIN);
        assert!(e.contains("asks 1 approval(s)") && e.contains("version 2 stays"), "{e}");
        assert_eq!(show(), 2);
        // approver-a approves DEKs only, not a policy; a bad document is refused by line.
        let e = approve_fails("approver-a", "a-pin-1", &["--operation", "policy", "--policy", next_path]);
        assert!(e.contains("may not approve a policy change"), "{e}");
        let bad = token_dir().join("bad.json");
        std::fs::write(&bad, next.replace("\"verify\"", "\"verfy\"")).unwrap();
        let e = approve_fails(
            "approver-b",
            "b-pin-1",
            &["--operation", "policy", "--policy", bad.to_str().unwrap()],
        );
        assert!(e.contains("line 7") && e.contains("verfy"), "{e}");
        let e = approve_fails(
            "approver-b",
            "b-pin-1",
            &["--for", "security-admin", "--operation", "policy", "--policy", next_path],
        );
        assert!(e.contains("--for so"), "{e}");
        assert!(approvals().is_empty());

        // An approval of `next` does not let `other` in.
        let out = ok(
            &["approve", "--approver", "approver-b", "--operation", "policy", "--policy", next_path],
            "b-pin-1",
        );
        assert!(out.contains("by 'so', once"), "{out}");
        let other_file = token_dir().join("other.json");
        std::fs::write(&other_file, &other).unwrap();
        let e = fails(&["policy", "apply", other_file.to_str().unwrap()], USER_PIN);
        assert!(e.contains("asks 1 approval(s)"), "{e}");
        assert_eq!(show(), 2);
        assert!(ok(&["policy", "apply", next_path], USER_PIN).contains("applied policy version 3"));
        let listed = approvals();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].1.as_str(), listed[0].3.as_str(), listed[0].4.as_str()),
            ("consumed", "so", "policy")
        );
        // Used once: applying it again needs a new approval.
        let e = fails(&["policy", "apply", next_path], USER_PIN);
        assert!(e.contains("asks 1 approval(s)"), "{e}");
        assert_eq!(show(), 3);
        let records = audit();
        assert_eq!(
            records
                .iter()
                .filter(|r| r["operation"] == "approval_consume" && r["principal"] == "approver-b")
                .count(),
            1
        );
    }
);

isolated_test!(
    /// Revoked approvals, and those of a removed principal, are never used.
    fn revoked_approvals_and_those_of_removed_principals_are_not_used() {
        let (p, slot) = setup();
        let admin = session_of(&p, slot, "security-admin");
        let k = key(&admin, "app-key-1");
        let own = approve("approver-b", "security-admin", "destroy", "app-key-1", &[]);
        let other = approve("approver-c", "security-admin", "destroy", "app-key-1", &[]);
        // An approver revokes its own, not another's; the SO any.
        let out = as_principal("approver-c", &["approval", "revoke", &own.to_string()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not yours to revoke"));
        assert_eq!(state_of(own), "pending");
        let out = as_principal("approver-b", &["approval", "revoke", &own.to_string()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(state_of(own), "revoked");
        assert!(ok(&["approval", "revoke", &other.to_string()], USER_PIN).contains("revoked approval"));
        assert_eq!(state_of(other), "revoked");
        assert!(fails(&["approval", "revoke", &own.to_string()], USER_PIN).contains("not pending"));
        assert!(fails(&["approval", "revoke", "999"], USER_PIN).contains("has no approval 999"));
        // A principal lists what concerns it: approver-a sees nothing of app-key-1.
        let listed = as_principal("approver-a", &["approval", "list"]);
        assert!(String::from_utf8_lossy(&listed.stdout).contains("no approvals recorded ahead"));
        let listed = as_principal("security-admin", &["approval", "list"]);
        assert!(String::from_utf8_lossy(&listed.stdout).contains("revoked"));
        assert_eq!(rv(admin.destroy_object(k).unwrap_err()), RvError::ActionProhibited);

        let by_c = approve("approver-c", "security-admin", "destroy", "app-key-1", &[]);
        // While the policy needs approvals the SO alone may not remove an approver (issue 13,
        // item 4): first a policy that does not let approver-c approve, then the removal,
        // then the policy again (naming approver-c, who no longer exists).
        let e = fails(&["principal", "remove", "approver-c"], USER_PIN);
        assert!(e.contains("needs approvals"), "{e}");
        apply_policy(&POLICY.replace(
            "\"approver-c\": {\"keys\": [\"*\"], \"operations\": [\"approve\"]}",
            "\"approver-c\": {\"keys\": [\"*\"], \"operations\": [\"verify\"]}",
        ));
        ok(&["principal", "remove", "approver-c"], USER_PIN);
        apply_policy(POLICY);
        assert_eq!(state_of(by_c), "revoked");
        assert_eq!(rv(admin.destroy_object(k).unwrap_err()), RvError::ActionProhibited);
        assert_eq!(find(&admin, "app-key-1").len(), 1);
    }
);
