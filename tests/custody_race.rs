//! Issue 14, the migration race, through the C ABI: a process logged in on a token whose key
//! another process changes — `ecm-hsm token seal-for-service`, or `C_InitToken` — between two
//! calls. The logged-in process's next change is refused with `CKR_USER_NOT_LOGGED_IN`
//! (its login is over), nothing of it is written, every object that existed still opens, with
//! the same value, after a new login, and that login works as any other. The moment inside a
//! call (the change checked and sealed, its transaction not yet open) is driven in
//! `src/token/epoch_tests.rs`; here the other process is a real one.
mod common;

use std::path::{Path, PathBuf};

use common::cli::{succeeded, tool_on_token};
use common::{SO_PIN, USER_PIN, expect_rv, fresh_dir, load, pin, token_dir, user_session};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};

const ROLE: &str = "ECM_HSM_RACE_ROLE";

/// A private AES key on the token, its value readable.
fn aes_key(label: &str, value: [u8; 32]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

fn find(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).unwrap()
}

fn value(s: &Session, label: &str) -> Vec<u8> {
    let found = find(s, label);
    assert_eq!(found.len(), 1, "one object '{label}'");
    match s.get_attributes(found[0], &[AttributeType::Value]).unwrap().remove(0) {
        Attribute::Value(v) => v,
        other => panic!("{label}: {other:?}"),
    }
}

/// What the logged-in session of the old epoch gets: every change refused as not logged in,
/// the session back in the public state, and nothing written. `C_GetTokenInfo` first: it
/// reads the token's record afresh, which once hid the new epoch from the login's next call.
fn changes_are_refused(p: &Pkcs11, s: &Session) {
    p.get_token_info(common::first_slot(p)).unwrap();
    expect_rv(s.create_object(&aes_key("stale", [8; 32])), RvError::UserNotLoggedIn);
    let generated = s.generate_key(
        &Mechanism::AesKeyGen,
        &[Attribute::Token(true), Attribute::Label(b"stale".to_vec()), Attribute::ValueLen(32.into())],
    );
    expect_rv(generated, RvError::UserNotLoggedIn);
    assert_eq!(s.get_session_info().unwrap().session_state(), SessionState::RwPublic, "the login ended");
    assert!(find(s, "stale").is_empty());
}

/// The settings file of this test's token directory, with `service_key_file` set to `key`:
/// read by the module at `C_Initialize`, the key itself only when a login needs it.
fn configure_service_key(key: &Path) {
    let extra = format!("service_key_file = \"{}\"\n", key.display());
    common::write_test_config(&token_dir(), &extra);
}

isolated_test!(
    fn a_session_logged_in_as_the_token_is_sealed_for_the_service_writes_nothing_and_logs_in_again() {
        // A token in pins custody, made by the tool, with one private key.
        let made = tool_on_token(&["init", "--label", "race"], USER_PIN, USER_PIN).output().unwrap();
        succeeded(&["init"], made);
        let key_dir = fresh_dir("race-key");
        let key_file: PathBuf = key_dir.join("token-key");
        configure_service_key(&key_file);
        let p: Pkcs11 = load();
        let slot = common::first_slot(&p);
        let s = user_session(&p, slot);
        s.create_object(&aes_key("kept", [7; 32])).unwrap();
        assert_eq!(value(&s, "kept"), [7; 32]);

        // Another process moves the token to service custody between two calls.
        let args = ["token", "seal-for-service", "--key-file", &key_file.display().to_string()];
        succeeded(&args, tool_on_token(&args, USER_PIN, "").output().unwrap());
        changes_are_refused(&p, &s);

        // A new login in this same process: the key service's key opens the new token key,
        // the object that existed has its value, and changes work again.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(value(&s, "kept"), [7; 32]);
        assert!(find(&s, "stale").is_empty());
        s.create_object(&aes_key("after", [9; 32])).unwrap();
        let status = tool_on_token(&["status"], USER_PIN, "").output().unwrap();
        let status = String::from_utf8(succeeded(&["status"], status)).unwrap();
        assert!(status.contains("custody: service"), "{status}");
        drop(s);
        drop(p);
        let _ = std::fs::remove_dir_all(key_dir);
    }
);

isolated_test!(
    fn a_session_logged_in_as_another_process_re_initializes_the_token_writes_nothing() {
        if std::env::var_os(ROLE).is_some() {
            // The other process: C_InitToken on the token (same SO PIN, a new label).
            let p = load();
            let slot = common::first_slot(&p);
            p.init_token(slot, &pin(SO_PIN), "race-new").unwrap();
            return;
        }
        let made = tool_on_token(&["init", "--label", "race"], USER_PIN, USER_PIN).output().unwrap();
        succeeded(&["init"], made);
        let p = load();
        let slot = common::first_slot(&p);
        let s = user_session(&p, slot);
        s.create_object(&aes_key("kept", [7; 32])).unwrap();

        let name = "a_session_logged_in_as_another_process_re_initializes_the_token_writes_nothing";
        let out = common::worker_command(name, &token_dir(), ROLE, "init").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        changes_are_refused(&p, &s);

        // The new token: no user PIN, no objects; its SO sets a user PIN, whose login works.
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserPinNotInitialized);
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin("user-pin-new")).unwrap();
        assert!(find(&s, "kept").is_empty() && find(&s, "stale").is_empty(), "the new token is empty");
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin("user-pin-new"))).unwrap();
        assert!(find(&s, "kept").is_empty());
        s.create_object(&aes_key("new", [5; 32])).unwrap();
        assert_eq!(value(&s, "new"), [5; 32]);
        assert_eq!(p.get_token_info(slot).unwrap().label(), "race-new");
    }
);
