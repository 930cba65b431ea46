//! Issue 13, items 5 and 6: what a key's value and a key's use need beyond visibility.
//!
//! - The policy's `read` guards every way a key's value leaves: `C_GetAttributeValue` of its
//!   secret attributes, `C_DigestKey` (recorded), `C_WrapKey` (the wrapping key needs `wrap`,
//!   the wrapped key `read`), `C_CopyObject` (the source needs `read`, the copy `generate`),
//!   and searches that name a value.
//! - A private key with `CKA_ALWAYS_AUTHENTICATE` needs `C_Login(CKU_CONTEXT_SPECIFIC)` with
//!   the login's own PIN after each `*Init`, beside the in-band approvals.
#![allow(unsafe_code)]

mod common;
use common::objects::{find_label, login_as};
use common::workers::{administer, apply_policy};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

/// The administration worker (does nothing when run as an ordinary test).
#[test]
fn admin_worker() {
    common::workers::run_admin_actions();
}

fn context_login(s: &Session, text: &str) -> cryptoki::error::Result<()> {
    s.login(UserType::ContextSpecific, Some(&AuthPin::new(text.into())))
}

/// The audit records of slot 0's token as JSON values.
fn audit_records() -> Vec<serde_json::Value> {
    let text = ecm_hsm::audit::trail_text(&ecm_hsm::audit::path_for(&token_dir(), 0)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `signer` may only sign with `app-*` keys (and make keys there); `reader` may read and
/// wrap them too, which shows that each refusal below is the missing `read` alone.
const READ_POLICY: &str = r#"{"key_permissions": {
    "signer": {"keys": ["app-*", "copy-*"], "operations": ["sign", "wrap", "generate"]},
    "reader": {"keys": ["app-*", "copy-*"], "operations": ["sign", "wrap", "generate", "read"]}
}}"#;

const KEY_VALUE: [u8; 32] = [0x5a; 32];

isolated_test!(
    /// Item 5: without `read`, a principal that may sign with a key cannot take its value
    /// out by any route; with `read` every route works. Nothing changes on a refusal.
    fn a_key_value_leaves_only_with_read() {
        let (p, slot) = load_with_token();
        {
            let s = user_session(&p, slot);
            s.create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(KEY_VALUE.to_vec()),
                Attribute::Label(b"app-hmac".to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Copyable(true),
            ])
            .unwrap();
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Wrap(true),
                    Attribute::Label(b"app-wrap".to_vec()),
                ],
            )
            .unwrap();
        }
        apply_policy(READ_POLICY, &[("signer", "pin-signer-1"), ("reader", "pin-reader-1")]);

        let s = p.open_rw_session(slot).unwrap();
        login_as(&s, "signer:pin-signer-1").unwrap();
        let key = find_label(&s, "app-hmac")[0];
        let wrapping = find_label(&s, "app-wrap")[0];
        let before = s.find_objects(&[]).unwrap();
        // The key is usable for what the rule allows.
        let mac = s.sign(&Mechanism::Sha256Hmac, key, b"data").unwrap();
        assert_eq!(mac.len(), 32);
        // Its value is sensitive to this login; its other attributes are not.
        let raw = raw::load_raw();
        let mut query = [raw::query(cryptoki_sys::CKA_VALUE)];
        // SAFETY: one entry asking for a length only.
        let read = unsafe { raw.C_GetAttributeValue(s.handle(), key.handle(), query.as_mut_ptr(), 1) };
        assert_eq!(read, cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(query[0].ulValueLen, cryptoki_sys::CK_UNAVAILABLE_INFORMATION);
        assert!(s.get_attributes(key, &[AttributeType::Value]).unwrap().is_empty());
        assert_eq!(
            s.get_attributes(key, &[AttributeType::Label]).unwrap(),
            vec![Attribute::Label(b"app-hmac".to_vec())]
        );
        // Digested: refused, and the digest ends.
        s.digest_init(&Mechanism::Sha256).unwrap();
        assert_eq!(rv(s.digest_key(key).unwrap_err()), RvError::KeyIndigestible);
        assert_eq!(rv(s.digest_final().unwrap_err()), RvError::OperationNotInitialized);
        // Wrapped: the wrapping key's `wrap` is not the wrapped key's `read`.
        let wrap = Mechanism::AesKeyWrapPad;
        assert_eq!(rv(s.wrap_key(&wrap, wrapping, key).unwrap_err()), RvError::KeyNotWrappable);
        // Copied under a label the copier could otherwise read: refused.
        let copy = s.copy_object(key, &[Attribute::Label(b"copy-hmac".to_vec())]);
        assert_eq!(rv(copy.unwrap_err()), RvError::ActionProhibited);
        // Searched by value, a guessing oracle: finds nothing.
        assert!(s.find_objects(&[Attribute::Value(KEY_VALUE.to_vec())]).unwrap().is_empty());
        // Nothing changed: the same objects, the key still whole.
        assert_eq!(s.find_objects(&[]).unwrap(), before);
        s.logout().unwrap();

        // With `read`, every route works.
        login_as(&s, "reader:pin-reader-1").unwrap();
        let key = find_label(&s, "app-hmac")[0];
        let wrapping = find_label(&s, "app-wrap")[0];
        assert_eq!(s.find_objects(&[]).unwrap().len(), before.len(), "no copy was made");
        assert_eq!(
            s.get_attributes(key, &[AttributeType::Value]).unwrap(),
            vec![Attribute::Value(KEY_VALUE.to_vec())]
        );
        s.digest_init(&Mechanism::Sha256).unwrap();
        s.digest_key(key).unwrap();
        let digest = s.digest_final().unwrap();
        assert_eq!(digest, s.digest(&Mechanism::Sha256, &KEY_VALUE).unwrap());
        assert!(!s.wrap_key(&wrap, wrapping, key).unwrap().is_empty());
        let copy = s.copy_object(key, &[Attribute::Label(b"copy-hmac".to_vec())]).unwrap();
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, copy, b"data").unwrap(), mac);
        assert_eq!(s.find_objects(&[Attribute::Value(KEY_VALUE.to_vec())]).unwrap().len(), 2);
        s.logout().unwrap();

        // C_DigestKey is recorded, refused or not, naming the key.
        let records = audit_records();
        let digests: Vec<_> = records
            .iter()
            .filter(|r| r["operation"] == "digest_key")
            .map(|r| (r["principal"].as_str().unwrap().to_string(), r["result"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            digests,
            vec![
                ("signer".to_string(), cryptoki_sys::CKR_KEY_INDIGESTIBLE),
                ("reader".to_string(), cryptoki_sys::CKR_OK)
            ]
        );
        assert!(
            records
                .iter()
                .filter(|r| r["operation"] == "digest_key")
                .all(|r| r.to_string().contains("app-hmac"))
        );
    }
);

/// An EC key pair whose private key needs the PIN at each use.
fn always_authenticated_pair(s: &Session, label: &str) -> (ObjectHandle, ObjectHandle) {
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(p256),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(label.into()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Derive(true),
            Attribute::AlwaysAuthenticate(true),
            Attribute::Label(label.into()),
        ],
    )
    .unwrap()
}

fn user_pin_flags(p: &cryptoki::context::Pkcs11, slot: cryptoki::slot::Slot) -> (bool, bool) {
    let info = p.get_token_info(slot).unwrap();
    (info.user_pin_count_low(), info.user_pin_locked())
}

isolated_test!(
    /// Item 6: after C_SignInit/C_DecryptInit on a key with CKA_ALWAYS_AUTHENTICATE, the
    /// operation waits for C_Login(CKU_CONTEXT_SPECIFIC) with the user's PIN; a wrong PIN is
    /// refused and counted; each operation needs its own.
    fn an_always_authenticate_key_needs_the_pin_at_each_use() {
        let (p, slot, s) = logged_in();
        let (public, private) = always_authenticated_pair(&s, "aa-ec");
        assert_eq!(
            s.get_attributes(private, &[AttributeType::AlwaysAuthenticate]).unwrap(),
            vec![Attribute::AlwaysAuthenticate(true)]
        );
        // Nothing waits yet.
        assert_eq!(rv(context_login(&s, USER_PIN).unwrap_err()), RvError::OperationNotInitialized);
        // Without the context-specific login, no signature.
        s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
        assert_eq!(rv(s.sign_update(&[7u8; 32]).unwrap_err()), RvError::UserNotLoggedIn);
        assert_eq!(rv(s.sign_final().unwrap_err()), RvError::UserNotLoggedIn);
        // A wrong PIN is refused and counted toward the user PIN's lockout.
        assert_eq!(user_pin_flags(&p, slot), (false, false));
        assert_eq!(rv(context_login(&s, "wrong-pin-1").unwrap_err()), RvError::PinIncorrect);
        assert_eq!(user_pin_flags(&p, slot), (true, false));
        assert_eq!(rv(s.sign_update(&[7u8; 32]).unwrap_err()), RvError::UserNotLoggedIn, "still waiting");
        // The right PIN lets this operation run (and resets the count).
        context_login(&s, USER_PIN).unwrap();
        assert_eq!(user_pin_flags(&p, slot), (false, false));
        s.sign_update(&[7u8; 32]).unwrap();
        let signature = s.sign_final().unwrap();
        s.verify(&Mechanism::EcdsaSha256, public, &[7u8; 32], &signature).unwrap();
        // The next operation needs its own; a single-part C_Sign (init and sign in one call)
        // has no moment for it.
        s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
        assert_eq!(rv(s.sign_update(&[1u8; 32]).unwrap_err()), RvError::UserNotLoggedIn);
        assert_eq!(rv(s.sign_init(&Mechanism::EcdsaSha256, private).unwrap_err()), RvError::OperationActive);
        assert_eq!(
            rv(s.sign(&Mechanism::EcdsaSha256, private, &[1u8; 32]).unwrap_err()),
            RvError::OperationActive
        );
        context_login(&s, USER_PIN).unwrap();
        s.sign_update(&[1u8; 32]).unwrap();
        s.sign_final().unwrap();
        assert_eq!(
            rv(s.sign(&Mechanism::EcdsaSha256, private, &[1u8; 32]).unwrap_err()),
            RvError::UserNotLoggedIn
        );
        // A one-call use has no moment for the context-specific login: refused, nothing made.
        let objects = s.find_objects(&[]).unwrap().len();
        let peer = [4u8; 65];
        let ecdh = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &peer));
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
        ];
        assert_eq!(rv(s.derive_key(&ecdh, private, &template).unwrap_err()), RvError::UserNotLoggedIn);
        assert_eq!(s.find_objects(&[]).unwrap().len(), objects);
        // A logout ends the waiting operation; without a login there is nothing to approve.
        s.logout().unwrap();
        assert_eq!(rv(context_login(&s, USER_PIN).unwrap_err()), RvError::OperationNotInitialized);
    }
);

/// pkcs11-tool's order through the function list: `C_DecryptInit`, then (given `pin`)
/// `C_Login(CKU_CONTEXT_SPECIFIC)`, then a single-part `C_Decrypt`; the return values of the
/// login and of the decryption, and the plaintext.
fn raw_decrypt(
    raw: &cryptoki_sys::Pkcs11,
    h: cryptoki_sys::CK_SESSION_HANDLE,
    key: ObjectHandle,
    data: &[u8],
    pin: Option<&str>,
) -> (cryptoki_sys::CK_RV, cryptoki_sys::CK_RV, Vec<u8>) {
    use cryptoki_sys::*;
    let mut mechanism =
        CK_MECHANISM { mechanism: CKM_RSA_PKCS, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
    // SAFETY: the mechanism is a live local without parameters.
    assert_eq!(unsafe { raw.C_DecryptInit(h, &mut mechanism, key.handle()) }, CKR_OK, "C_DecryptInit");
    let login = pin.map_or(CKR_OK, |pin| raw::login(raw, h, CKU_CONTEXT_SPECIFIC, pin));
    let mut input = data.to_vec();
    let mut out = vec![0u8; 512];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: input and output buffers hold their stated lengths; out-pointer to a local.
    let rv =
        unsafe { raw.C_Decrypt(h, input.as_mut_ptr(), input.len() as CK_ULONG, out.as_mut_ptr(), &mut len) };
    out.truncate(if rv == CKR_OK { len as usize } else { 0 });
    (login, rv, out)
}

isolated_test!(
    /// Item 6 with RSA decryption, and the lockout: wrong context-specific PINs lock the user
    /// PIN as wrong logins do.
    fn a_decryption_waits_for_the_pin_and_wrong_pins_lock_it() {
        let (p, slot, s) = logged_in();
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[Attribute::ModulusBits(2048.into()), Attribute::Encrypt(true)],
                &[Attribute::Decrypt(true), Attribute::Private(true), Attribute::AlwaysAuthenticate(true)],
            )
            .unwrap();
        let secret = s.encrypt(&Mechanism::RsaPkcs, public, b"session key").unwrap();
        let raw = raw::load_raw();
        let h = s.handle();
        use cryptoki_sys::{CKR_OK, CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_USER_NOT_LOGGED_IN};
        // Without the context-specific login: refused, and the operation still waits.
        let (_, refused, _) = raw_decrypt(&raw, h, private, &secret, None);
        assert_eq!(refused, CKR_USER_NOT_LOGGED_IN);
        assert_eq!(rv(s.decrypt_init(&Mechanism::RsaPkcs, private).unwrap_err()), RvError::OperationActive);
        assert_eq!(raw::login(&raw, h, cryptoki_sys::CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_OK);
        let mut out = vec![0u8; 512];
        let mut len = out.len() as cryptoki_sys::CK_ULONG;
        let mut input = secret.clone();
        // SAFETY: input and output buffers hold their stated lengths; out-pointer to a local.
        let rv_decrypt =
            unsafe { raw.C_Decrypt(h, input.as_mut_ptr(), input.len() as _, out.as_mut_ptr(), &mut len) };
        assert_eq!(rv_decrypt, CKR_OK);
        assert_eq!(&out[..len as usize], b"session key");
        // pkcs11-tool's order in one go; a wrong PIN leaves the operation waiting.
        assert_eq!(
            raw_decrypt(&raw, h, private, &secret, Some(USER_PIN)),
            (CKR_OK, CKR_OK, b"session key".to_vec())
        );
        let (login, refused, _) = raw_decrypt(&raw, h, private, &secret, Some("wrong-pin-1"));
        assert_eq!((login, refused), (CKR_PIN_INCORRECT, CKR_USER_NOT_LOGGED_IN));
        // Wrong PINs lock the user PIN as wrong logins do (one counted above).
        for _ in 0..MAX_PIN_FAILURES - 2 {
            assert_eq!(rv(context_login(&s, "wrong-pin-1").unwrap_err()), RvError::PinIncorrect);
        }
        assert_eq!(rv(context_login(&s, "wrong-pin-1").unwrap_err()), RvError::PinLocked);
        assert!(user_pin_flags(&p, slot).1);
        assert_eq!(raw::login(&raw, h, cryptoki_sys::CKU_CONTEXT_SPECIFIC, USER_PIN), CKR_PIN_LOCKED);
        let mut len = out.len() as cryptoki_sys::CK_ULONG;
        // SAFETY: as above.
        let still =
            unsafe { raw.C_Decrypt(h, input.as_mut_ptr(), input.len() as _, out.as_mut_ptr(), &mut len) };
        assert_eq!(still, CKR_USER_NOT_LOGGED_IN);
    }
);

/// security-admin's operations wait for one approver; approver-b approves any key.
const APPROVAL_POLICY: &str = r#"{"key_permissions": {
    "security-admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true},
    "plain": {"keys": ["aa-*"], "operations": ["sign", "verify"]},
    "approver-b": {"keys": ["*"], "operations": ["approve"]}
}}"#;

isolated_test!(
    /// Item 6 beside the in-band approvals: an operation may wait for both an approver and
    /// the PIN of the principal logged in; each context-specific login serves the one it is.
    fn a_principal_gives_its_own_pin_beside_the_approvals() {
        let (p, slot) = load_with_token();
        let public = {
            let s = user_session(&p, slot);
            always_authenticated_pair(&s, "aa-ec").0
        };
        apply_policy(
            APPROVAL_POLICY,
            &[("security-admin", "pin-adm-1"), ("plain", "pin-plain-1"), ("approver-b", "pin-b-1")],
        );
        let find_private = |s: &Session| {
            s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"aa-ec".to_vec())])
                .unwrap()[0]
        };

        let s = p.open_rw_session(slot).unwrap();
        login_as(&s, "security-admin:pin-adm-1").unwrap();
        let private = find_private(&s);
        s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
        assert_eq!(rv(s.sign_update(&[3u8; 32]).unwrap_err()), RvError::UserNotLoggedIn);
        // The approver's login is an approval, not the caller's PIN.
        context_login(&s, "approver-b:pin-b-1").unwrap();
        assert_eq!(
            rv(s.sign_update(&[3u8; 32]).unwrap_err()),
            RvError::UserNotLoggedIn,
            "the PIN is missing"
        );
        // Another principal's PIN is not the caller's.
        assert_eq!(rv(context_login(&s, "security-admin:pin-b-1").unwrap_err()), RvError::PinIncorrect);
        context_login(&s, "security-admin:pin-adm-1").unwrap();
        s.sign_update(&[3u8; 32]).unwrap();
        let signature = s.sign_final().unwrap();
        s.logout().unwrap();

        // A principal without approvals gives its PIN as at C_Login, or alone.
        login_as(&s, "plain:pin-plain-1").unwrap();
        let private = find_private(&s);
        s.verify(&Mechanism::EcdsaSha256, public, &[3u8; 32], &signature).unwrap();
        for pin in ["plain:pin-plain-1", "pin-plain-1"] {
            s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
            assert_eq!(rv(s.sign_update(&[4u8; 32]).unwrap_err()), RvError::UserNotLoggedIn);
            assert_eq!(rv(context_login(&s, "approver-b:pin-b-1").unwrap_err()), RvError::PinIncorrect);
            context_login(&s, pin).unwrap();
            s.sign_update(&[4u8; 32]).unwrap();
            s.sign_final().unwrap();
        }
        // The wrong tries counted against plain, not against approver-b.
        let out = administer(&["list"]);
        assert!(out[0].contains("(\"approver-b\", 0)") && out[0].contains("(\"plain\", 0)"), "{out:?}");
        s.logout().unwrap();

        // The records: context-specific logins under the session's principal, approvals by
        // the approver, and no PIN anywhere.
        let records = audit_records();
        let count = |principal: &str, operation: &str, result: cryptoki_sys::CK_RV| {
            records
                .iter()
                .filter(|r| {
                    r["principal"] == principal && r["operation"] == operation && r["result"] == result
                })
                .count()
        };
        assert_eq!(count("approver-b", "approve", cryptoki_sys::CKR_OK), 1);
        assert_eq!(count("security-admin", "login_context_specific", cryptoki_sys::CKR_OK), 1);
        assert_eq!(count("security-admin", "login_context_specific", cryptoki_sys::CKR_PIN_INCORRECT), 1);
        assert_eq!(count("plain", "login_context_specific", cryptoki_sys::CKR_OK), 2);
        let text = records.iter().map(|r| r.to_string()).collect::<String>();
        for secret in ["pin-adm-1", "pin-b-1", "pin-plain-1"] {
            assert!(!text.contains(secret), "{secret} in the audit file");
        }
    }
);

isolated_test!(
    /// pkcs11-tool reads CKA_ALWAYS_AUTHENTICATE and gives the PIN again between C_SignInit
    /// and C_Sign, in a process of its own on the same token: its signature verifies.
    fn pkcs11_tool_signs_with_an_always_authenticate_key() {
        let tool = std::path::Path::new("/usr/bin/pkcs11-tool");
        if !tool.exists() {
            eprintln!("pkcs11-tool not installed: skipped");
            return;
        }
        let (_p, slot, s) = logged_in();
        let (public, _) = always_authenticated_pair(&s, "aa-tool");
        let dir = token_dir();
        let (input, output) = (dir.join("in.bin"), dir.join("sig.bin"));
        std::fs::write(&input, b"signed by pkcs11-tool").unwrap();
        let out = std::process::Command::new(tool)
            .arg("--module")
            .arg(module_path())
            .args(["--slot", &slot.id().to_string(), "--login", "--pin", USER_PIN, "--sign"])
            .args(["--mechanism", "ECDSA-SHA256", "--label", "aa-tool", "--input-file"])
            .arg(&input)
            .arg("--output-file")
            .arg(&output)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let signature = std::fs::read(&output).unwrap();
        s.verify(&Mechanism::EcdsaSha256, public, b"signed by pkcs11-tool", &signature).unwrap();
    }
);
