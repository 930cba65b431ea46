//! The migration race (`epoch.rs`): two `Token`s on one file stand for two processes. Process
//! A is logged in; process B re-keys the token (`seal_for_service`, `init_token`) at the moment
//! A's change has done its checks and sealed its values but not yet opened its transaction
//! (`BEFORE_WRITE`, run once by `Token::write_in_epoch`): the interleaving is driven, not timed.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys::*;
use parking_lot::RwLock;

use super::*;
use crate::config::Config;
use crate::object::{Attribute, AttributeRead};
use crate::policy::{LoginState, SessionView};
use crate::store::TokenStore;
use crate::token::handles::HandleTable;
use crate::token::{Custody, PinRefused, PinRole, ServiceKey};

thread_local! {
    /// Run once just before the next change's transaction opens: what another process does
    /// in that moment.
    pub(crate) static BEFORE_WRITE: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

fn in_that_moment(another_process: impl FnOnce() + 'static) {
    BEFORE_WRITE.with(|h| *h.borrow_mut() = Some(Box::new(another_process)));
}

const SO_PIN: &[u8] = b"so-pin-1";
const USER_PIN: &[u8] = b"user-pin";
const SO: SessionView =
    SessionView { login: LoginState::SecurityOfficer, read_write: true, principal: false };
const SESSION: CK_SESSION_HANDLE = 1;

/// A process's token on `dir/token-0.sqlite`, with `key_file` as its service key file.
fn process(dir: &Path, key_file: Option<&Path>) -> Token {
    let settings = "test_settings = true\npin_kdf_iterations = 1\nmax_pin_failures = 3\naudit = false\n";
    let mut config = Config::from_toml(dir.to_path_buf(), settings, Path::new("test")).unwrap();
    config.service_key_file = key_file.map(Path::to_path_buf);
    let handles = Arc::new(RwLock::new(HandleTable::default()));
    Token::open(0, dir.join("token-0.sqlite"), Arc::new(config), handles)
}

struct Setup {
    _root: tempfile::TempDir,
    tokens: PathBuf,
    key: PathBuf,
}

/// A token in pins custody with a user PIN and one private AES key labelled `kept` (value
/// `[7; 32]`), nobody logged in; the service key file exists beside it.
fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let s = Setup { tokens: root.path().join("tokens"), key: root.path().join("service.key"), _root: root };
    let maker = process(&s.tokens, None);
    maker.init_token(SO_PIN, [b' '; 32], false).unwrap();
    maker.login(PinRole::SecurityOfficer, SO_PIN).unwrap();
    maker.init_pin(SO, USER_PIN).unwrap();
    maker.logout().unwrap();
    maker.login(PinRole::User, USER_PIN).unwrap();
    maker.create_object(SESSION, true, &aes_key("kept", [7; 32])).unwrap();
    maker.logout().unwrap();
    ServiceKey::create(&s.key).unwrap();
    s
}

fn aes_key(label: &str, value: [u8; 32]) -> Vec<Attribute> {
    vec![
        Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
        Attribute::bool(CKA_TOKEN, true),
        Attribute::bool(CKA_PRIVATE, true),
        Attribute::bool(CKA_MODIFIABLE, true),
        Attribute::bool(CKA_SENSITIVE, false),
        Attribute::bool(CKA_EXTRACTABLE, true),
        Attribute::new(CKA_LABEL, label.as_bytes().to_vec()),
        Attribute::new(CKA_VALUE, value.to_vec()),
    ]
}

/// The handle of the object labelled `label`, if this process's login sees one.
fn find(token: &Token, label: &str) -> Option<CK_OBJECT_HANDLE> {
    let found = token.find(true, &[Attribute::new(CKA_LABEL, label.as_bytes().to_vec())]).unwrap();
    assert!(found.len() <= 1);
    found.first().copied()
}

fn value(token: &Token, label: &str) -> Vec<u8> {
    let handle = find(token, label).unwrap_or_else(|| panic!("no object '{label}'"));
    match token.get_attributes(true, handle, &[CKA_VALUE]).unwrap().remove(0) {
        AttributeRead::Value(v) => v.to_vec(),
        other => panic!("{label}: {other:?}"),
    }
}

/// Every object row in the file, read past any login: labels and the count.
fn stored_labels(dir: &Path) -> Vec<Vec<u8>> {
    let mut store =
        crate::store::SqliteStore::open(&dir.join("token-0.sqlite"), Duration::from_secs(5)).unwrap();
    store.object_names().unwrap().into_iter().map(|n| n.label).collect()
}

/// Process B moves the token to service custody with the SO PIN.
fn seal_for_service_by_another_process(s: &Setup) -> impl FnOnce() + 'static {
    let (tokens, key) = (s.tokens.clone(), s.key.clone());
    move || {
        let b = process(&tokens, None);
        b.seal_for_service(SO_PIN, ServiceKey::load(&key).unwrap(), false).unwrap();
    }
}

/// After B's move: every object that existed opens, unchanged, under service custody, for a
/// fresh process and for `a` logging in again; and `a` can write again.
fn all_readable_under_service_custody(s: &Setup, a: &Token) {
    let fresh = process(&s.tokens, Some(&s.key));
    assert_eq!(fresh.custody(), Ok(Custody::Service));
    fresh.login(PinRole::User, USER_PIN).unwrap();
    assert_eq!(value(&fresh, "kept"), [7; 32]);
    a.login(PinRole::User, USER_PIN).unwrap();
    assert_eq!(value(a, "kept"), [7; 32]);
    a.create_object(SESSION, true, &aes_key("after", [9; 32])).unwrap();
    assert_eq!(value(&fresh, "after"), [9; 32], "written under the new key, read by another process");
}

#[test]
fn an_object_made_as_the_token_is_sealed_for_the_service_is_refused_and_the_login_ends() {
    let s = setup();
    let a = process(&s.tokens, Some(&s.key));
    a.login(PinRole::User, USER_PIN).unwrap();
    assert_eq!(value(&a, "kept"), [7; 32]);

    in_that_moment(seal_for_service_by_another_process(&s));
    let made = a.create_object(SESSION, true, &aes_key("stale", [8; 32]));
    assert_eq!(made, Err(Error::UserNotLoggedIn));
    assert_eq!(a.login_state(), LoginState::Public, "the login of the old epoch ended");
    assert!(a.lock().token_key.is_none(), "and its key went with it");
    assert_eq!(stored_labels(&s.tokens), vec![b"kept".to_vec()], "nothing of the refused object was written");
    all_readable_under_service_custody(&s, &a);
    assert_eq!(find(&a, "stale"), None);
}

#[test]
fn a_change_of_attributes_as_the_token_is_sealed_for_the_service_is_refused() {
    let s = setup();
    let a = process(&s.tokens, Some(&s.key));
    a.login(PinRole::User, USER_PIN).unwrap();
    let kept = find(&a, "kept").unwrap();

    in_that_moment(seal_for_service_by_another_process(&s));
    let changed = a.set_attributes(true, kept, &[Attribute::new(CKA_LABEL, b"renamed".to_vec())]);
    assert_eq!(changed, Err(Error::UserNotLoggedIn), "not CKR_OBJECT_HANDLE_INVALID: the object is there");
    assert_eq!(a.login_state(), LoginState::Public);
    assert_eq!(stored_labels(&s.tokens), vec![b"kept".to_vec()], "the label did not change");
    all_readable_under_service_custody(&s, &a);
}

#[test]
fn an_object_made_as_the_token_is_re_initialized_is_refused_and_the_new_token_stays_empty() {
    let s = setup();
    let a = process(&s.tokens, None);
    a.login(PinRole::User, USER_PIN).unwrap();
    let tokens = s.tokens.clone();
    in_that_moment(move || {
        // C_InitToken checks the SO PIN, which the new token keeps.
        process(&tokens, None).init_token(SO_PIN, [b'n'; 32], false).unwrap();
    });
    let made = a.create_object(SESSION, true, &aes_key("stale", [8; 32]));
    assert_eq!(made, Err(Error::UserNotLoggedIn));
    assert_eq!(a.login_state(), LoginState::Public);
    assert!(stored_labels(&s.tokens).is_empty(), "the re-initialized token holds no object");
    // The new token's SO logs in, in this process too, and the user PIN is gone with the old token.
    assert!(matches!(
        a.login(PinRole::User, USER_PIN),
        Err(PinRefused { error: Error::UserPinNotInitialized, .. })
    ));
    a.login(PinRole::SecurityOfficer, SO_PIN).unwrap();
    a.init_pin(SO, b"user-pin-2").unwrap();
    a.logout().unwrap();
    a.login(PinRole::User, b"user-pin-2").unwrap();
    a.create_object(SESSION, true, &aes_key("new", [5; 32])).unwrap();
    let fresh = process(&s.tokens, None);
    fresh.login(PinRole::User, b"user-pin-2").unwrap();
    assert_eq!(value(&fresh, "new"), [5; 32]);
}

#[test]
fn a_principal_added_as_the_token_is_sealed_for_the_service_is_refused() {
    let s = setup();
    let a = process(&s.tokens, Some(&s.key));
    a.login(PinRole::SecurityOfficer, SO_PIN).unwrap();
    in_that_moment(seal_for_service_by_another_process(&s));
    // In pins custody the record would wrap the old, dead token key under alice's PIN.
    assert_eq!(a.set_principal(SO, "alice", b"alice-pin", false), Err(Error::UserNotLoggedIn));
    assert_eq!(a.login_state(), LoginState::Public);
    assert!(!a.has_principal("alice").unwrap());
    a.login(PinRole::SecurityOfficer, SO_PIN).unwrap();
    a.set_principal(SO, "alice", b"alice-pin", false).unwrap();
    a.logout().unwrap();
    a.login_principal("alice", b"alice-pin").unwrap();
}

#[test]
fn a_public_pin_change_as_the_token_is_sealed_for_the_service_is_checked_again_and_made() {
    let s = setup();
    let a = process(&s.tokens, Some(&s.key));
    let public = SessionView { login: LoginState::Public, read_write: true, principal: false };
    in_that_moment(seal_for_service_by_another_process(&s));
    // The first attempt's record would wrap the old key; the second is a verifier.
    a.set_pin(public, USER_PIN, b"user-pin-new").unwrap();
    assert_eq!(a.custody(), Ok(Custody::Service));
    // What the file holds for the new PIN wraps no token key, dead or alive.
    let mut store =
        crate::store::SqliteStore::open(&s.tokens.join("token-0.sqlite"), Duration::from_secs(5)).unwrap();
    let record = store.record().unwrap().user_pin.unwrap();
    let pin_key =
        crate::mechanism::pin_kdf::derive(b"user-pin-new", &record.salt, record.iterations).unwrap();
    let context = b"ecm-hsm token key/user";
    assert!(crate::mechanism::seal::open(&pin_key, context, &record.sealed_key).is_err(), "a verifier");
    assert!(a.login(PinRole::User, USER_PIN).is_err());
    a.login(PinRole::User, b"user-pin-new").unwrap();
    assert_eq!(value(&a, "kept"), [7; 32]);
}

/// `C_GetTokenInfo` reads the token's record afresh; before the login's own epoch was kept, it
/// hid the new epoch from the next refresh, and the login wrote under the old key.
#[test]
fn token_info_after_the_move_does_not_keep_the_old_login() {
    let s = setup();
    let a = process(&s.tokens, Some(&s.key));
    a.login(PinRole::User, USER_PIN).unwrap();
    seal_for_service_by_another_process(&s)();
    a.info().unwrap();
    assert_eq!(a.create_object(SESSION, true, &aes_key("stale", [8; 32])), Err(Error::UserNotLoggedIn));
    assert_eq!(a.login_state(), LoginState::Public);
    assert_eq!(stored_labels(&s.tokens), vec![b"kept".to_vec()]);
    all_readable_under_service_custody(&s, &a);
}
