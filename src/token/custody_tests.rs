//! Custody of the token key (`custody.rs`): a token in service custody opens only with the
//! service key, its PIN records are verifiers, its audit key is the service's, and the move
//! from pins custody rotates the token key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki_sys::CKA_VALUE;
use parking_lot::RwLock;

use super::*;
use crate::config::Config;
use crate::mechanism::pin_kdf;
use crate::policy::{LoginState, SessionView};
use crate::token::PinRefused;
use crate::token::handles::HandleTable;

const SO: SessionView =
    SessionView { login: LoginState::SecurityOfficer, read_write: true, principal: false };

/// A token on `dir/token-0.sqlite`, with `key_file` as its configured service key file.
fn token_at(dir: &Path, key_file: Option<&Path>) -> Token {
    let settings = "test_settings = true\npin_kdf_iterations = 1\nmax_pin_failures = 3\naudit = false\n";
    let mut config = Config::from_toml(dir.to_path_buf(), settings, Path::new("test")).unwrap();
    config.service_key_file = key_file.map(Path::to_path_buf);
    let handles = Arc::new(RwLock::new(HandleTable::default()));
    Token::open(0, dir.join("token-0.sqlite"), Arc::new(config), handles)
}

struct Dirs {
    _root: tempfile::TempDir,
    tokens: PathBuf,
    key: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let tokens = root.path().join("tokens");
    let key = root.path().join("service.key");
    Dirs { tokens, key, _root: root }
}

/// A token initialized in service custody (SO PIN `so-pin-1`), with the SO logged in.
fn service_token_as_so(d: &Dirs) -> Token {
    let token = token_at(&d.tokens, Some(&d.key));
    ServiceKey::create(&d.key).unwrap();
    token.init_token(b"so-pin-1", [b' '; 32], false).unwrap();
    token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
    token
}

/// Every byte of the token's files (database, `-wal`, `-shm`).
fn file_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["token-0.sqlite", "token-0.sqlite-wal", "token-0.sqlite-shm"]
        .iter()
        .filter_map(|name| std::fs::read(dir.join(name)).ok().map(|b| (name.to_string(), b)))
        .collect()
}

fn contains(haystack: &[(String, Vec<u8>)], needle: &[u8]) -> bool {
    haystack.iter().any(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
}

/// Stores an object with one sealed value under the logged-in token key; returns its id.
fn store_secret(token: &Token, value: &[u8]) -> i64 {
    let mut state = token.lock();
    let key = state.token_key.clone().unwrap();
    let mut id = 0;
    state
        .store
        .as_mut()
        .unwrap()
        .write(&mut |w| {
            id = w.insert_object()?;
            let context = objects::seal_context(id, CKA_VALUE);
            let sealed = seal::seal(&key, &context, value)?;
            w.put_attributes(id, &[StoredAttribute { kind: CKA_VALUE, value: sealed, sealed: true }])
        })
        .unwrap();
    id
}

/// The sealed value of object `id`, as stored.
fn sealed_value(token: &Token, id: i64) -> Vec<u8> {
    let mut state = token.lock();
    let objects = state.store.as_mut().unwrap().load_objects_by_id(&[id]).unwrap();
    objects[0].attributes[0].value.clone()
}

fn principal_record(token: &Token, name: &str) -> crate::store::WrappedTokenKey {
    let mut state = token.lock();
    let principals = state.store.as_mut().unwrap().principals().unwrap();
    principals.into_iter().find(|p| p.name == name).unwrap().pin
}

#[test]
fn a_service_token_opens_with_the_service_key_and_its_pins_are_verifiers() {
    let d = dirs();
    let token = service_token_as_so(&d);
    assert_eq!(token.custody(), Ok(Custody::Service));
    token.set_principal(SO, "alice", b"alice-pin", false).unwrap();
    let token_key = token.lock().token_key.clone().unwrap();
    let audit_key = token.audit_key().unwrap();
    let service = ServiceKey::load(&d.key).unwrap();
    let serial = token.lock().record.clone().unwrap().serial;
    assert_eq!(*audit_key, *service.audit_key(&serial, 1), "the audit key is the service's");
    assert_ne!(*audit_key, *crate::audit::derive_key(token_key.as_ref()), "not the token key's");
    token.logout().unwrap();

    // A principal's own record, with its own PIN's KDF output, opens nothing.
    let record = principal_record(&token, "alice");
    let pin_key = pin_kdf::derive(b"alice-pin", &record.salt, record.iterations).unwrap();
    assert!(seal::open(&pin_key, b"ecm-hsm token key/principal/alice", &record.sealed_key).is_err());
    assert!(!contains(&file_bytes(&d.tokens), token_key.as_slice()), "no token key in clear");
    token.login_principal("alice", b"alice-pin").unwrap();
    assert_eq!(token.lock().token_key.as_deref(), Some(&*token_key));
    token.logout().unwrap();
    assert!(matches!(
        token.login_principal("alice", b"wrong-pin"),
        Err(PinRefused { error: Error::PinIncorrect, .. })
    ));
}

#[test]
fn without_the_service_key_a_login_is_a_device_error_and_changes_nothing() {
    let d = dirs();
    let made = service_token_as_so(&d);
    made.init_pin(SO, b"user-pin").unwrap();
    made.set_principal(SO, "alice", b"alice-pin", false).unwrap();
    made.logout().unwrap();
    drop(made);
    let before = file_bytes(&d.tokens);

    let other = dirs();
    ServiceKey::create(&other.key).unwrap();
    for key_file in [None, Some(d.tokens.join("missing.key")), Some(other.key.clone())] {
        let token = token_at(&d.tokens, key_file.as_deref());
        assert!(token.info().is_ok(), "the token shows");
        for attempt in [
            token.login(PinRole::SecurityOfficer, b"so-pin-1"),
            token.login(PinRole::User, b"user-pin"),
            token.login_principal("alice", b"alice-pin"),
            token.login_principal("alice", b"wrong"),
        ] {
            assert!(
                matches!(attempt, Err(PinRefused { error: Error::Device(_), locked: None })),
                "{key_file:?}"
            );
        }
        assert_eq!(token.login_state(), LoginState::Public);
        drop(token);
        assert!(file_bytes(&d.tokens) == before, "{key_file:?}: the files did not change");
    }
}

#[test]
fn a_key_file_others_can_read_or_of_the_wrong_size_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = dirs();
    ServiceKey::create(&d.key).unwrap();
    std::fs::set_permissions(&d.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(ServiceKey::load(&d.key), Err(Error::Device(m)) if m.contains("0640")));
    std::fs::set_permissions(&d.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(ServiceKey::load(&d.key).is_ok());
    std::fs::write(&d.key, [7u8; 31]).unwrap();
    assert!(matches!(ServiceKey::load(&d.key), Err(Error::Device(m)) if m.contains("31 bytes")));
    assert!(format!("{:?}", ServiceKey::create(&d.tokens.with_extension("k")).unwrap()).contains("path"));
}

#[test]
fn sealing_for_the_service_rotates_the_token_key_and_old_pins_open_only_the_dead_one() {
    let d = dirs();
    let token = token_at(&d.tokens, None);
    token.init_token(b"so-pin-1", [b' '; 32], false).unwrap();
    token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
    token.set_principal(SO, "alice", b"alice-pin", false).unwrap();
    let old_key = token.lock().token_key.clone().unwrap();
    let id = store_secret(&token, b"the master key value");
    let old_sealed = sealed_value(&token, id);
    token.logout().unwrap();
    let old_alice = principal_record(&token, "alice");

    // A wrong SO PIN changes nothing.
    let service = ServiceKey::create(&d.key).unwrap();
    let refused = token.seal_for_service(b"wrong-so", service, false);
    assert!(matches!(refused, Err(PinRefused { error: Error::PinIncorrect, .. })));
    assert_eq!(token.custody(), Ok(Custody::Pins));
    assert_eq!(sealed_value(&token, id), old_sealed);

    let audit_key = token.seal_for_service(b"so-pin-1", ServiceKey::load(&d.key).unwrap(), false).unwrap();
    assert_eq!(token.custody(), Ok(Custody::Service));
    // The value was sealed again under a new key: the old one opens it no more.
    let context = objects::seal_context(id, CKA_VALUE);
    let new_sealed = sealed_value(&token, id);
    assert!(seal::open(&old_key, &context, &new_sealed).is_err());
    // Alice's old record still opens, with her PIN, only the dead old key.
    let pin_key = pin_kdf::derive(b"alice-pin", &old_alice.salt, old_alice.iterations).unwrap();
    let dead = seal::open(&pin_key, b"ecm-hsm token key/principal/alice", &old_alice.sealed_key).unwrap();
    assert_eq!(dead.as_slice(), old_key.as_slice());
    // Sealing twice is refused.
    let again = token.seal_for_service(b"so-pin-1", ServiceKey::load(&d.key).unwrap(), false);
    assert!(matches!(again, Err(PinRefused { error: Error::ArgumentsBad, .. })));

    // The SO's PIN (now a verifier) opens the new key, which opens the value.
    token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
    let new_key = token.lock().token_key.clone().unwrap();
    assert_ne!(*new_key, *old_key);
    assert_eq!(seal::open(&new_key, &context, &new_sealed).unwrap().as_slice(), b"the master key value");
    assert_eq!(token.audit_key().unwrap(), audit_key);
    token.logout().unwrap();
    // Alice's first login turns her old record into a verifier, and the old one is gone
    // from every file.
    token.login_principal("alice", b"alice-pin").unwrap();
    token.logout().unwrap();
    let upgraded = principal_record(&token, "alice");
    assert_ne!(upgraded.sealed_key, old_alice.sealed_key);
    assert!(seal::open(&pin_key, b"ecm-hsm token key/principal/alice", &upgraded.sealed_key).is_err());
    let files = file_bytes(&d.tokens);
    assert!(!contains(&files, &old_alice.sealed_key), "the old record is gone from the raw pages");
    assert!(!contains(&files, &old_sealed), "the old sealed value is gone from the raw pages");
    token.login_principal("alice", b"alice-pin").unwrap();
}
