//! Issue 13, item 15: principal names cannot be probed. Whether a name exists changes neither
//! the answer nor the work done (an unknown name costs a KDF run as a wrong PIN does: shown
//! by counting runs in `token::pin`'s unit tests, not by timing here); `name:pin` with an
//! unknown name is never tried as the user PIN; an in-band approval by an unknown name is
//! answered as one by a known principal without `approve`. Item 8 (part): a refused login's
//! record names whom it tried, the same whether or not that principal exists.
#![allow(unsafe_code)]

mod common;

use std::process::{Command, Stdio};

use common::cli::tool_on_token;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// admin's encryptions wait for an approver; alice approves nothing; ghost may approve but
/// is no principal of the token.
const POLICY: &str = r#"{"key_permissions": {
    "admin": {"keys": ["app-*"], "operations": ["encrypt"], "requires_approval": true},
    "alice": {"keys": ["app-*"], "operations": ["encrypt"]},
    "approver": {"keys": ["*"], "operations": ["approve"]},
    "ghost": {"keys": ["*"], "operations": ["approve"]}
}}"#;

fn cli(args: &[&str], new_pin: &str) {
    let out = tool_on_token(args, USER_PIN, new_pin).output().unwrap();
    assert!(out.status.success(), "ecm-hsm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The principals' failure counts, as the SO sees them.
fn failures() -> Vec<(String, u64)> {
    let out = Command::new(BIN)
        .args(["principal", "list", "--json"])
        .env("ECM_HSM_DIR", token_dir())
        .env_remove("ECM_HSM_CONF")
        .env("ECM_HSM_SO_PIN", SO_PIN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["failed_logins"].as_u64().unwrap()))
        .collect()
}

fn audit() -> (String, Vec<Value>) {
    let text = ecm_hsm::audit::trail_text(&ecm_hsm::audit::path_for(&token_dir(), 0)).unwrap();
    let records = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (text, records)
}

fn count(records: &[Value], principal: &str, operation: &str, rv: CK_RV) -> usize {
    records
        .iter()
        .filter(|r| r["principal"] == principal && r["operation"] == operation && r["result"] == rv)
        .count()
}

fn login_as(s: &Session, text: &str) -> Result<(), RvError> {
    s.login(UserType::User, Some(&pin(text))).map_err(rv)
}

/// The token's user flags that a failed user login would set.
fn user_flags(p: &cryptoki::context::Pkcs11, slot: cryptoki::slot::Slot) -> CK_FLAGS {
    let info = p.get_token_info(slot).unwrap();
    let mut flags = 0;
    if info.user_pin_count_low() {
        flags |= CKF_USER_PIN_COUNT_LOW;
    }
    if info.user_pin_final_try() {
        flags |= CKF_USER_PIN_FINAL_TRY;
    }
    if info.user_pin_locked() {
        flags |= CKF_USER_PIN_LOCKED;
    }
    flags
}

isolated_test!(
    fn unknown_names_answer_as_wrong_pins_and_are_never_tried_as_the_user_pin() {
        let (p, slot) = load_with_token();
        cli(&["principal", "add", "alice"], "alice-pin-1");
        let s = p.open_rw_session(slot).unwrap();
        let before = user_flags(&p, slot);
        assert_eq!(before, 0);

        // The review's probe: "nobody:x" was tried as the user PIN (the user's count-low
        // flag flipped) while "alice:x" was not. Now both are principal logins, refused
        // alike; neither touches the user's count, and only alice (who exists) counts one.
        assert_eq!(login_as(&s, "nobody:x-pin-1"), Err(RvError::PinIncorrect));
        assert_eq!(login_as(&s, "alice:x-pin-1"), Err(RvError::PinIncorrect));
        assert_eq!(user_flags(&p, slot), before);
        assert_eq!(failures(), [("alice".to_owned(), 1)]);

        // C_LoginUser: an unknown name, a known one with a wrong PIN, and something that
        // cannot be a name, all CKR_PIN_INCORRECT.
        let raw = common::raw::load_raw();
        let h = s.handle();
        let login_user = |name: &[u8], pin: &str| {
            let (mut name, mut pin) = (name.to_vec(), pin.as_bytes().to_vec());
            // SAFETY: both buffers are live and of the stated lengths.
            unsafe {
                raw.C_LoginUser(
                    h,
                    CKU_USER,
                    pin.as_mut_ptr(),
                    pin.len() as _,
                    name.as_mut_ptr(),
                    name.len() as _,
                )
            }
        };
        assert_eq!(login_user(b"nobody", "x-pin-1"), CKR_PIN_INCORRECT);
        assert_eq!(login_user(b"alice", "x-pin-1"), CKR_PIN_INCORRECT);
        assert_eq!(login_user(b"a b\xff", "x-pin-1"), CKR_PIN_INCORRECT);
        assert_eq!(failures(), [("alice".to_owned(), 2)]);
        assert_eq!(user_flags(&p, slot), before);
        // A PIN whose prefix is no principal name is still the user's.
        assert_eq!(login_as(&s, "user:x-pin-1"), Err(RvError::PinIncorrect));
        assert_ne!(user_flags(&p, slot), before, "counted as the user's");
        assert_eq!(login_as(&s, USER_PIN), Ok(()));
        s.logout().unwrap();
        assert_eq!(login_as(&s, "alice:alice-pin-1"), Ok(()));
        s.logout().unwrap();

        // Each refused login names whom it tried, existing or not; no PIN is written.
        let (text, records) = audit();
        assert_eq!(count(&records, "nobody", "login", CKR_PIN_INCORRECT), 2);
        assert_eq!(count(&records, "alice", "login", CKR_PIN_INCORRECT), 2);
        assert_eq!(count(&records, "(not a principal name)", "login", CKR_PIN_INCORRECT), 1);
        assert_eq!(count(&records, "user", "login", CKR_PIN_INCORRECT), 1);
        assert_eq!(count(&records, "alice", "login", CKR_OK), 1);
        assert!(!text.contains("x-pin-1") && !text.contains("alice-pin-1"));
    }
);

isolated_test!(
    fn an_approval_by_an_unknown_name_is_answered_as_by_a_known_one() {
        let (p, slot) = load_with_token();
        for (name, pin) in [("admin", "adm-pin-1"), ("alice", "alice-pin-1"), ("approver", "apr-pin-1")] {
            cli(&["principal", "add", name], pin);
        }
        let user = user_session(&p, slot);
        user.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Label(b"app-key-1".to_vec()),
            ],
        )
        .unwrap();
        user.logout().unwrap();
        let file = token_dir().join("policy.json");
        std::fs::write(&file, POLICY).unwrap();
        cli(&["policy", "apply", file.to_str().unwrap()], USER_PIN);

        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(login_as(&s, "admin:adm-pin-1"), Ok(()));
        let key = s.find_objects(&[Attribute::Label(b"app-key-1".to_vec())]).unwrap()[0];
        let mut iv = [7u8; 12];
        let gcm =
            Mechanism::AesGcm(cryptoki::mechanism::aead::GcmParams::new(&mut iv, b"", 128.into()).unwrap());
        s.encrypt_init(&gcm, key).unwrap();
        let approve = |text: &str| s.login(UserType::ContextSpecific, Some(&pin(text))).map_err(rv);
        // Without `approve`: refused before any PIN is tried, known or unknown.
        assert_eq!(approve("alice:alice-pin-1"), Err(RvError::ActionProhibited));
        assert_eq!(approve("nobody:alice-pin-1"), Err(RvError::ActionProhibited));
        // With `approve`: a wrong PIN, and a name the token does not have, alike.
        assert_eq!(approve("approver:wrong-pin"), Err(RvError::PinIncorrect));
        assert_eq!(approve("ghost:wrong-pin"), Err(RvError::PinIncorrect));
        let counted = failures();
        assert!(counted.contains(&("approver".to_owned(), 1)) && counted.contains(&("alice".to_owned(), 0)));
        assert!(!counted.iter().any(|(n, _)| n == "ghost" || n == "nobody"));
        // Still waiting; the right approver lets it go on.
        assert_eq!(approve("approver:apr-pin-1"), Ok(()));
        s.encrypt_update(b"sixteen bytes...").unwrap();
    }
);
