//! What the module records in the token's audit file (issue 5, audit): logins, key
//! operations and refusals, through the C ABI; and that a call whose record cannot be
//! written is refused with nothing left behind (fail closed).

mod common;

use std::path::PathBuf;

use common::audit::*;
use common::objects::token_aes_key;
use common::workers::{read_until_marked, worker_token};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::{CKM_AES_GCM, CKM_AES_KEY_GEN, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_OK, CKR_PIN_INCORRECT};
use ecm_hsm::audit;

/// The token's audit key, as `ecm-hsm audit verify` gets it: through the core, logged in as
/// the user (its login is recorded, in a segment of its own, closed before this returns).
fn token_audit_key() -> audit::AuditKey {
    let core = ecm_hsm::module::Module::new(ecm_hsm::config::Config::from_env().unwrap()).unwrap();
    let h = core.open_session(0, cryptoki_sys::CKF_SERIAL_SESSION).unwrap();
    core.login(h, cryptoki_sys::CKU_USER, USER_PIN.as_bytes()).unwrap();
    core.audit_key(h).unwrap()
}

/// An AES key labelled `label` that may encrypt or only decrypt.
fn aes_key(s: &Session, label: &str, encrypt: bool) -> cryptoki::object::ObjectHandle {
    token_aes_key(s, label, &[Attribute::Encrypt(encrypt), Attribute::Decrypt(true)])
}

fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
    Mechanism::AesGcm(GcmParams::new(iv, &[], 128.into()).unwrap())
}

isolated_test!(
    fn logins_key_operations_and_refusals_are_recorded_in_a_chain() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let wrong = s.login(UserType::User, Some(&AuthPin::new("not-the-pin".into())));
        assert_eq!(rv(wrong.unwrap_err()), RvError::PinIncorrect);
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let key = aes_key(&s, "dek-acme-v1", true);
        let decrypt_only = aes_key(&s, "decrypt-only", false);
        let mut iv = [7u8; 12];
        let ciphertext = s.encrypt(&gcm(&mut iv), key, b"record me, not my data").unwrap();
        assert_eq!(
            rv(s.encrypt(&gcm(&mut iv), decrypt_only, b"x").unwrap_err()),
            RvError::KeyFunctionNotPermitted
        );
        s.decrypt(&gcm(&mut iv), key, &ciphertext).unwrap();
        s.destroy_object(decrypt_only).unwrap();
        s.logout().unwrap();

        let all = records();
        let ops: Vec<&str> = all.iter().map(|r| r["operation"].as_str().unwrap()).collect();
        // The setup's own records first (C_InitToken, the SO's login, C_InitPIN).
        assert_eq!(
            ops,
            [
                "init_token",
                "login_so",
                "init_pin",
                "login",
                "login",
                "generate",
                "generate",
                "encrypt",
                "encrypt",
                "decrypt",
                "destroy",
                "logout"
            ]
        );
        // Indexed from the setup's last record (C_InitPIN), as before it was recorded.
        let all = &all[2..];
        let result = |i: usize| all[i]["result"].as_u64().unwrap();
        assert_eq!(result(1), CKR_PIN_INCORRECT);
        assert_eq!(result(6), CKR_KEY_FUNCTION_NOT_PERMITTED);
        for i in [0, 2, 3, 4, 5, 7, 8, 9] {
            assert_eq!(result(i), CKR_OK, "{}", all[i]);
        }
        // Who, on which key, with what.
        assert_eq!(all[1]["principal"], "user", "a refused login names whom it tried");
        assert_eq!(all[5]["principal"], "user");
        assert_eq!(all[5]["key_label"], "dek-acme-v1");
        assert_eq!(all[5]["mechanism"].as_u64(), Some(CKM_AES_GCM));
        assert_eq!(all[3]["mechanism"].as_u64(), Some(CKM_AES_KEY_GEN));
        assert!(all[5]["key_uid"].as_str().is_some_and(|u| !u.is_empty()), "{}", all[5]);
        assert_eq!(all[8]["key_label"], "decrypt-only", "a destroyed key is named as it was");
        assert_eq!(all[9]["principal"], "user", "the logout names who logged out");
        let all = records();
        assert!(all.iter().all(|r| r["pid"].as_u64() == Some(std::process::id() as u64)));
        // Every record names its session but C_InitToken's, which has none.
        assert_eq!(all[0]["session"].as_u64(), Some(0));
        assert!(all[1..].iter().all(|r| r["session"].as_u64().is_some_and(|h| h != 0)));
        // The first record is C_InitToken's, authenticated with the new token's key, so
        // every record is, with the token's key, which the process keeps for its records
        // once an initialization or a login showed it (the failed login and those after
        // the logout included). The chain is whole; the MACs themselves are checked with the
        // key by `ecm-hsm audit verify` (tests/audit_chain_tamper_and_cli.rs).
        // (`g`: GMAC under the key of the segment, derived from the audit key.)
        assert!(all.iter().all(|r| r["auth"] == "g"), "{all:?}");
        // In this process's segment, opened by the register's only record so far; records
        // may still be waiting for their links (the linking thread), never missing.
        let report = audit::verify_trail(&audit_path(), None, None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!((report.register.records, report.segments, report.closed_segments), (1, 1, 0));
        assert_eq!(report.records, 13);
        // With the token's key (as `ecm-hsm audit verify` gets it: the core, logged in),
        // every record's MAC holds, once C_Finalize closed the segment.
        drop(s);
        p.finalize().unwrap();
        let key = token_audit_key();
        let report = audit::verify_trail(&audit_path(), Some(&key), None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        // Register: two segments opened and closed; segments: the 12 records, the core's login.
        assert_eq!((report.segments, report.closed_segments, report.unlinked), (2, 2, 0));
        assert_eq!((report.records, report.authenticated), (17, 17), "{report:?}");
        // Never a secret: no PIN and no data in any file.
        let bytes = trail_bytes();
        for secret in [USER_PIN, SO_PIN, "not-the-pin", "record me"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the audit files"
            );
        }
    }
);

isolated_test!(
    // Segments of one record: every record after the first opens a segment in the register,
    // so a register that cannot be continued stops every record.
    config = "audit_segment_bytes = 4096",
    fn a_call_whose_record_cannot_be_written_is_refused_and_leaves_nothing_behind() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let key = aes_key(&s, "k", true);
        let count = records().len();
        let segments = || std::fs::read_dir(audit::segment_dir(&audit_path())).unwrap().count();
        let segments_before = segments();

        // The last line of the register becomes unreadable: no segment can be opened.
        let mut text = std::fs::read_to_string(audit_path()).unwrap();
        text.push_str("{\"seq\": garbage}\n");
        std::fs::write(audit_path(), &text).unwrap();
        let mut iv = [1u8; 12];
        assert_eq!(rv(s.encrypt(&gcm(&mut iv), key, b"data").unwrap_err()), RvError::DeviceError);
        // The operation the refused C_EncryptInit began was ended again.
        assert_eq!(rv(s.encrypt(&gcm(&mut iv), key, b"data").unwrap_err()), RvError::DeviceError);
        assert_eq!(std::fs::read_to_string(audit_path()).unwrap(), text, "nothing was appended");
        assert_eq!(segments(), segments_before, "no segment was opened");
        // A search is recorded too, so it is refused as well.
        let found = s.find_objects(&[Attribute::Label(b"k".to_vec())]);
        assert_eq!(rv(found.unwrap_err()), RvError::DeviceError);
        // Nor a logout (done, the token being safer logged out, but reported) or a login
        // (refused: not logged in).
        assert_eq!(rv(s.logout().unwrap_err()), RvError::DeviceError);
        let login = s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())));
        assert_eq!(rv(login.unwrap_err()), RvError::DeviceError);
        assert_eq!(rv(s.encrypt(&gcm(&mut iv), key, b"data").unwrap_err()), RvError::DeviceError);

        // Once the register is whole again, calls go through and are recorded.
        text.truncate(text.len() - "{\"seq\": garbage}\n".len());
        std::fs::write(audit_path(), &text).unwrap();
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        // (Handles of private objects died with the logout.)
        let key = s.find_objects(&[Attribute::Label(b"k".to_vec())]).unwrap()[0];
        s.encrypt(&gcm(&mut iv), key, b"data").unwrap();
        let after = records();
        let ops: Vec<&str> = after[count..].iter().map(|r| r["operation"].as_str().unwrap()).collect();
        assert_eq!(ops, ["login", "find", "encrypt"], "the refused calls left no record");
        drop(s);
        p.finalize().unwrap();
        let report = audit::verify_trail(&audit_path(), None, None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
    }
);

isolated_test!(
    config = "audit = false",
    fn with_auditing_off_nothing_is_written_but_that_it_is_off() {
        let (p, _) = load_with_token();
        encrypt_once(&p);
        // No segment, no record of a call: only the register's note that auditing is off
        // (tests/audit_attacks.rs shows the gap in verify).
        assert!(!audit::segment_dir(&audit_path()).exists());
        let register = lines(&audit_path());
        assert!(!register.is_empty() && register.len() <= 2, "{register:?}");
        assert!(register.iter().all(|l| l.contains("\"operation\":\"audit_off\"")), "{register:?}");
        assert!(register.iter().any(|l| l.contains("\"auth\":\"m\"")), "{register:?}");
    }
);

isolated_test!(
    fn a_record_names_the_key_and_principal_as_they_are_at_the_call() {
        // (Descriptions are remembered between records; any change to the token forgets them.)
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let key = aes_key(&s, "before", true);
        let mut iv = [3u8; 12];
        s.encrypt(&gcm(&mut iv), key, b"x").unwrap();
        s.encrypt(&gcm(&mut iv), key, b"x").unwrap();
        s.update_attributes(key, &[Attribute::Label(b"after".to_vec())]).unwrap();
        s.encrypt(&gcm(&mut iv), key, b"x").unwrap();
        s.logout().unwrap();
        let so = p.open_rw_session(slot).unwrap();
        so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).unwrap();
        so.logout().unwrap();
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        let key = s.find_objects(&[Attribute::Label(b"after".to_vec())]).unwrap()[0];
        s.encrypt(&gcm(&mut iv), key, b"x").unwrap();
        let encrypts: Vec<(String, String)> = records()
            .iter()
            .filter(|r| r["operation"] == "encrypt")
            .map(|r| {
                (r["principal"].as_str().unwrap().to_owned(), r["key_label"].as_str().unwrap().to_owned())
            })
            .collect();
        let expect = |p: &str, l: &str| (p.to_owned(), l.to_owned());
        assert_eq!(
            encrypts,
            [
                expect("user", "before"),
                expect("user", "before"),
                expect("user", "after"),
                expect("user", "after")
            ]
        );
        let principals: Vec<String> = records()
            .iter()
            .filter(|r| r["operation"] == "logout")
            .map(|r| r["principal"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(principals, ["user", "so"]);
    }
);

isolated_test!(
    fn a_reinitialized_token_starts_a_trail_its_key_verifies_and_keeps_the_old_one() {
        let (p, slot) = load_with_token();
        encrypt_once(&p);
        p.init_token(slot, &AuthPin::new(SO_PIN.into()), LABEL).unwrap();
        {
            let s = p.open_rw_session(slot).unwrap();
            s.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).unwrap();
            s.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
        }
        encrypt_once(&p);
        p.finalize().unwrap();
        let archived: Vec<PathBuf> = std::fs::read_dir(token_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.to_string_lossy().contains(".audit.archived-") && !p.to_string_lossy().ends_with(".d")
            })
            .collect();
        assert_eq!(archived.len(), 1, "{archived:?}");
        // The new token's key (as `ecm-hsm audit verify` gets it) checks every MAC of the
        // new trail; the old trail's MACs were made under the old token's key.
        let key = token_audit_key();
        let report = audit::verify_trail(&audit_path(), Some(&key), None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!(report.records, report.authenticated);
        let old = audit::verify_trail(&archived[0], None, None).unwrap();
        assert!(old.problem.is_none(), "{old:?}");
        assert!(old.records > 5 && old.unchecked > 0);
        let with_new_key = audit::verify_trail(&archived[0], Some(&key), None).unwrap();
        assert!(with_new_key.problem.is_some(), "the old MACs are not the new key's");
        // The admin tool: the current trail with the new token's key, the archived one as a
        // chain.
        let tool = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_ecm-hsm"))
                .args(args)
                .env("ECM_HSM_DIR", token_dir())
                .env("ECM_HSM_PIN", USER_PIN)
                .env_remove("ECM_HSM_SO_PIN")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let out = tool(&["audit", "verify"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = tool(&["audit", "verify", "--archived", archived[0].to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("chain intact"), "{stdout}");
        let out = tool(&[
            "audit",
            "export",
            "--archived",
            archived[0].to_str().unwrap(),
            "--operation",
            "trail_archived",
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
        let out = tool(&["audit", "verify", "--archived", "/nonexistent/token-0.audit.archived-1"]);
        assert_eq!(out.status.code(), Some(1));
    }
);

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// Logs in on slot 0 and encrypts once.
fn encrypt_once(p: &cryptoki::context::Pkcs11) {
    let slot = first_slot(p);
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
    let key = aes_key(&s, "k", true);
    let mut iv = [1u8; 12];
    s.encrypt(&gcm(&mut iv), key, b"data").unwrap();
}

isolated_test!(
    fn records_are_linked_by_a_thread_of_the_module_unless_the_application_forbids_threads() {
        load_with_token().0.finalize().unwrap();
        // Allowed (the default): a linking thread.
        let p = load();
        encrypt_once(&p);
        // The thread names itself when it first runs, which under load may be a while after
        // it was started: until then /proc shows the name of the thread that started it.
        let linking = |names: Vec<String>| names.iter().any(|n| n.starts_with("ecm-hsm-audit"));
        wait_until("a linking thread named ecm-hsm-audit-*", || {
            let names = thread_names();
            if linking(names.clone()) { Ok(()) } else { Err(names) }
        });
        p.finalize().unwrap();
        // Joined at C_Finalize; /proc may list an exited thread a moment longer.
        wait_until("the linking thread stopped at C_Finalize", || {
            let names = thread_names();
            if linking(names.clone()) { Err(names) } else { Ok(()) }
        });
        // Forbidden: no thread, and every record is linked before its call returns.
        let p = cryptoki::context::Pkcs11::new(module_path()).unwrap();
        let flags = cryptoki::context::CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS
            | cryptoki::context::CInitializeFlags::OS_LOCKING_OK;
        p.initialize(cryptoki::context::CInitializeArgs::new(flags)).unwrap();
        encrypt_once(&p);
        assert!(!thread_names().iter().any(|n| n.starts_with("ecm-hsm-audit")), "{:?}", thread_names());
        let report = audit::verify_trail(&audit_path(), None, None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!((report.unlinked, report.segments - report.closed_segments), (0, 1), "linked, still open");
        p.finalize().unwrap();
    }
);

// A writer killed at any moment loses no record of a call that returned.

const KILL_TEST: &str = "a_kill_loses_no_record_of_a_call_that_returned";
const ROLE_ENV: &str = "ECM_AUDIT_KILL_ROLE";

/// Encrypts in a loop, printing `> DONE n` after the n-th C_Encrypt returned.
fn encrypting_worker() {
    use std::io::Write;
    let p = load();
    let slot = first_slot(&p);
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
    let key = aes_key(&s, "killed", true);
    let mut out = std::io::stdout().lock();
    for n in 1.. {
        let mut iv = [n as u8; 12];
        s.encrypt(&gcm(&mut iv), key, b"data").unwrap();
        writeln!(out, "> DONE {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_kill_loses_no_record_of_a_call_that_returned() {
    use std::os::unix::process::ExitStatusExt;

    if let Ok(role) = std::env::var(ROLE_ENV) {
        match role.as_str() {
            "setup" => drop(load_with_token()),
            "encrypt" => encrypting_worker(),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let (dir, worker) = worker_token(KILL_TEST, "audit-kill", ROLE_ENV);
    let path = audit::path_for(&dir, 0);
    let mut acknowledged = 0;
    for round in 0..3 {
        let mut child = worker("encrypt").spawn().unwrap();
        let seen = read_until_marked(&mut child, "> DONE", 300 + 97 * round);
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        acknowledged += seen;
        let text = audit::trail_text(&path).unwrap();
        let encrypts = text.lines().filter(|l| l.contains("\"operation\":\"encrypt\"")).count();
        // Each acknowledged call has its record; the worker may have gone on a little after
        // its last line was read.
        assert!(encrypts >= acknowledged, "{encrypts} encrypt records after {acknowledged} acknowledged");
        acknowledged = encrypts;
        // The killed writer's segment is whole; its last records may be unlinked (killed
        // before its linking thread reached them), which verify reports apart.
        let report = audit::verify_trail(&path, None, None).unwrap();
        assert!(report.problem.is_none(), "round {round}: {report:?}");
        assert_eq!(report.segments, round as u64 + 2, "the setup's and one per worker");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
