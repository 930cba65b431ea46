//! The `ecm-hsm` admin tool, run as a user runs it: the built binary in a fresh token
//! directory with the PINs in the environment. Also the envelope library calls and a KEK
//! rotation over 2,000 DEKs through the safe core directly.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{refused, settings_dir, succeeded};
use common::{SO_PIN, USER_PIN};
use cryptoki_sys::*;
use ecm_hsm::config::Config;
use ecm_hsm::envelope;
use ecm_hsm::mechanism::{Mechanism, MechanismParams};
use ecm_hsm::module::{Backend, Module};
use ecm_hsm::object::{Attribute, AttributeRead};
use ecm_hsm::vendor::*;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// A token directory of its own, removed afterwards.
struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new(tag: &str) -> Hsm {
        Hsm { dir: settings_dir(tag) }
    }

    /// A token with the hierarchy and tenants acme and globex.
    fn with_tenants(tag: &str) -> Hsm {
        let hsm = Hsm::new(tag);
        hsm.ok(&["init", "--label", "cli-test"], b"");
        hsm.ok(&["hierarchy", "init"], b"");
        hsm.ok(&["tenant", "add", "acme", "globex"], b"");
        hsm
    }

    /// The command with this directory and no PIN anywhere.
    fn bare(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("ECM_HSM_DIR", self.dir.path())
            .env_remove("ECM_HSM_CONF")
            .env_remove("ECM_HSM_PIN")
            .env_remove("ECM_HSM_SO_PIN")
            .env_remove("ECM_HSM_NEW_PIN");
        c
    }

    /// The command with every PIN in the environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.bare(args);
        c.env("ECM_HSM_PIN", USER_PIN).env("ECM_HSM_SO_PIN", SO_PIN).env("ECM_HSM_NEW_PIN", USER_PIN);
        c
    }

    fn run(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_input(self.cmd(args), input)
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        succeeded(args, self.run(args, input))
    }

    fn ok_text(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args, b"")).unwrap()
    }

    /// Runs a command that must fail with exit code 1 and one line on stderr; that line.
    fn fails(&self, args: &[&str], input: &[u8]) -> String {
        refused(args, self.run(args, input))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.ok(&["status", "--json"], b"")).expect("status --json is JSON")
    }

    /// The logged-in safe core on this directory, for what is too slow through the CLI.
    fn library(&self) -> (Module, CK_SESSION_HANDLE) {
        let text = std::fs::read_to_string(self.dir.path().join("ecm-hsm.toml")).unwrap();
        let config =
            Config::from_toml(self.dir.path().to_path_buf(), &text, Path::new("ecm-hsm.toml")).unwrap();
        let module = Module::new(config).unwrap();
        let s = module.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
        module.login(s, CKU_USER, USER_PIN.as_bytes()).unwrap();
        (module, s)
    }
}

fn run_with_input(mut c: Command, input: &[u8]) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs with a deadline: a command that waits for a prompt nobody answers fails the test
/// instead of hanging it.
fn run_with_deadline(mut c: Command, deadline: Duration) -> Output {
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(deadline) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the command hung for {deadline:?} (waiting for a prompt?)");
        }
    }
}

fn key<'a>(status: &'a serde_json::Value, label: &str) -> Option<&'a serde_json::Value> {
    status["keys"].as_array().unwrap().iter().find(|k| k["label"] == label)
}

fn state(status: &serde_json::Value, label: &str) -> String {
    key(status, label).unwrap_or_else(|| panic!("{label} in {status}"))["state"].as_str().unwrap().to_owned()
}

fn labels(status: &serde_json::Value) -> Vec<String> {
    status["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap().to_owned()).collect()
}

fn header(e: &[u8]) -> envelope::Header {
    envelope::parse(e).expect("an envelope").header
}

/// Every byte value, so that binary data is seen to pass unchanged.
fn binary_record() -> Vec<u8> {
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend(b"\r\n\0 tail");
    data
}

#[test]
fn the_scheme_end_to_end() {
    let hsm = Hsm::new("cli-e2e");
    let init = hsm.ok_text(&["init", "--label", "cli-test"]);
    assert!(init.contains("initialized token 'cli-test' in slot 0"), "{init}");
    let made = hsm.ok_text(&["hierarchy", "init"]);
    assert!(made.contains("master-v1") && made.contains("kek-v1"), "{made}");
    assert!(hsm.ok_text(&["tenant", "add", "acme"]).contains("dek-acme-v1"));
    assert!(hsm.ok_text(&["tenant", "add", "globex"]).contains("dek-globex-v1"));

    // Seal a record for each tenant: stdin to stdout, and file to file.
    let record = binary_record();
    let acme_v1 = hsm.ok(&["envelope", "encrypt", "--tenant", "acme", "--aad", "order 42"], &record);
    assert_eq!(&acme_v1[..5], b"ECME\x01");
    let h = header(&acme_v1);
    assert_eq!((h.tenant.as_str(), h.dek_version, h.aad.as_slice()), ("acme", 1, b"order 42".as_slice()));
    std::fs::write(hsm.path("globex.txt"), b"globex ledger").unwrap();
    let (globex_in, globex_env) = (hsm.path("globex.txt"), hsm.path("globex.env"));
    hsm.ok(
        &[
            "envelope",
            "encrypt",
            "--tenant",
            "globex",
            "-i",
            globex_in.to_str().unwrap(),
            "-o",
            globex_env.to_str().unwrap(),
        ],
        b"",
    );
    let globex_v1 = std::fs::read(&globex_env).unwrap();
    assert_eq!(header(&globex_v1).tenant, "globex");

    // Rotate acme's DEK: the old envelope still opens; reencrypt moves it to v2.
    let rotated = hsm.ok_text(&["rotate", "dek", "--tenant", "acme"]);
    assert!(rotated.contains("dek-acme-v2 is current") && rotated.contains("dek-acme-v1 is decrypt-only"));
    assert_eq!(hsm.ok(&["envelope", "decrypt"], &acme_v1), record);
    let acme_v2 = hsm.ok(&["envelope", "reencrypt"], &acme_v1);
    let h2 = header(&acme_v2);
    assert_eq!((h2.tenant.as_str(), h2.dek_version, h2.aad.as_slice()), ("acme", 2, b"order 42".as_slice()));
    assert_eq!(hsm.ok(&["envelope", "decrypt", "--tenant", "acme", "--aad", "order 42"], &acme_v2), record);
    // Many envelopes at once, in place: those already current are left alone.
    let files: Vec<PathBuf> = (0..3).map(|i| hsm.path(&format!("batch-{i}.env"))).collect();
    std::fs::write(&files[0], &acme_v1).unwrap();
    std::fs::write(&files[1], &acme_v2).unwrap();
    std::fs::write(&files[2], &globex_v1).unwrap();
    let mut args = vec!["envelope", "reencrypt", "--in-place"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let summary = hsm.ok_text(&args);
    assert!(summary.contains("reencrypted 1 envelope(s); 2 already under the current DEK"), "{summary}");
    assert_eq!(header(&std::fs::read(&files[0]).unwrap()).dek_version, 2);
    assert_eq!(std::fs::read(&files[1]).unwrap(), acme_v2, "already current: untouched");

    // Rotate the KEK: every DEK is rewrapped, every envelope still opens.
    let status = hsm.status();
    assert_eq!(state(&status, "dek-acme-v1"), "decrypt-only");
    let kek = hsm.ok_text(&["rotate", "kek"]);
    assert!(kek.contains("kek-v2 is current, 3 DEK(s) rewrapped"), "{kek}");
    for e in [&acme_v1, &acme_v2] {
        assert_eq!(hsm.ok(&["envelope", "decrypt"], e), record);
    }
    assert_eq!(hsm.ok(&["envelope", "decrypt"], &globex_v1), b"globex ledger");
    let status = hsm.status();
    assert_eq!(state(&status, "kek-v1"), "decrypt-only");
    let kek2_uid = key(&status, "kek-v2").unwrap()["unique_id"].clone();
    for dek in ["dek-acme-v1", "dek-acme-v2", "dek-globex-v1"] {
        assert_eq!(key(&status, dek).unwrap()["parent_id"], kek2_uid, "{dek} is wrapped by kek-v2");
    }

    // Retire what no envelope needs any more; the current versions are refused.
    assert!(hsm.ok_text(&["retire", "--label", "dek-acme-v1"]).contains("retired dek-acme-v1"));
    let gone = hsm.fails(&["envelope", "decrypt"], &acme_v1);
    assert!(gone.contains(&format!(
        "no DEK {} (dek-acme-v1) for tenant acme: was it retired?",
        String::from_utf8_lossy(&h.dek_unique_id)
    )));
    assert_eq!(hsm.ok(&["envelope", "decrypt"], &acme_v2), record);
    let current = hsm.fails(&["retire", "--label", "dek-acme-v2"], b"");
    assert!(current.contains("dek-acme-v2 is the current version of dek-acme; rotate first"), "{current}");
    let current_kek = hsm.fails(&["retire", "--label", "kek-v2"], b"");
    assert!(current_kek.contains("kek-v2 is the current version of kek; rotate first"), "{current_kek}");
    hsm.ok(&["retire", "--label", "kek-v1"], b"");
    let unknown = hsm.fails(&["retire", "--label", "dek-acme-v9"], b"");
    assert!(unknown.contains("no key labelled dek-acme-v9"), "{unknown}");

    // Status lists every key with its state.
    let status = hsm.status();
    assert_eq!(status["token"], "cli-test");
    assert_eq!(labels(&status), ["master-v1", "kek-v2", "dek-acme-v2", "dek-globex-v1"]);
    for k in status["keys"].as_array().unwrap() {
        assert_eq!(k["state"], "active", "{k}");
        assert_eq!(k["overdue"], false);
        assert!(k["next_rotation"].as_u64().unwrap() > status["now"].as_u64().unwrap());
    }
    assert_eq!(key(&status, "dek-acme-v2").unwrap()["tenant"], "acme");
    assert_eq!(key(&status, "dek-acme-v2").unwrap()["rotation_period_days"], 30);
    let table = hsm.ok_text(&["status"]);
    for needle in ["TIER", "TENANT", "VERSION", "STATE", "AGE (DAYS)", "NEXT DUE", "dek-globex-v1"] {
        assert!(table.contains(needle), "{needle} in\n{table}");
    }
    // A master rotation takes the KEK along.
    assert!(hsm.ok_text(&["rotate", "master"]).contains("1 KEK(s) rewrapped"));
    hsm.ok(&["retire", "--label", "master-v1"], b"");
    assert_eq!(hsm.ok(&["envelope", "decrypt"], &acme_v2), record);
}

#[test]
fn tampered_truncated_and_foreign_envelopes_are_refused_with_their_messages() {
    let hsm = Hsm::with_tenants("cli-refusals");
    let e = hsm.ok(&["envelope", "encrypt", "--tenant", "acme", "--aad", "ctx"], b"secret record");
    let header_len = envelope::parse(&e).unwrap().header_bytes.len();
    let altered = "the envelope was altered or belongs to another key";
    for i in [header_len - 9, header_len + 2, e.len() - 1, 8] {
        // The associated data, the ciphertext, the tag, the tenant name.
        let mut bad = e.clone();
        bad[i] ^= 0x20;
        assert!(hsm.fails(&["envelope", "decrypt"], &bad).contains(altered), "byte {i}");
    }
    for n in [0, 3, 10, header_len, e.len() - 1] {
        let msg = hsm.fails(&["envelope", "decrypt"], &e[..n]);
        assert!(msg.contains("the envelope is truncated"), "{n}: {msg}");
    }
    let mut longer = e.clone();
    longer.extend(b"xx");
    assert!(hsm.fails(&["envelope", "decrypt"], &longer).contains("2 stray bytes after its tag"));
    assert!(hsm.fails(&["envelope", "decrypt"], b"hello world").contains("not an ecm-hsm envelope"));
    let mut v9 = e.clone();
    v9[4] = 9;
    assert!(hsm.fails(&["envelope", "decrypt"], &v9).contains("unknown envelope format version 9"));
    // An envelope of another token, whose acme DEK v1 has another id.
    let other = Hsm::with_tenants("cli-foreign");
    let foreign = other.ok(&["envelope", "encrypt", "--tenant", "acme"], b"theirs");
    assert!(hsm.fails(&["envelope", "decrypt"], &foreign).contains(altered));
    let foreign_tenant = other.ok(&["envelope", "encrypt", "--tenant", "globex"], b"x");
    other.ok(&["tenant", "add", "initech"], b"");
    let stranger = other.ok(&["envelope", "encrypt", "--tenant", "initech"], b"x");
    let msg = hsm.fails(&["envelope", "decrypt"], &stranger);
    assert!(msg.contains("for tenant initech: was it retired?"), "{msg}");
    assert!(hsm.fails(&["envelope", "decrypt"], &foreign_tenant).contains(altered));
    // Expectations of the reader, and tenants without a DEK.
    let wrong = hsm.fails(&["envelope", "decrypt", "--tenant", "globex"], &e);
    assert!(wrong.contains("the envelope belongs to tenant acme, not globex"), "{wrong}");
    assert!(hsm.fails(&["envelope", "decrypt", "--aad", "other"], &e).contains("associated data"));
    let none = hsm.fails(&["envelope", "encrypt", "--tenant", "nobody"], b"x");
    assert!(none.contains("tenant nobody has no active DEK"), "{none}");
    assert!(hsm.fails(&["rotate", "dek", "--tenant", "nobody"], b"").contains("ecm-hsm tenant add nobody"));
    assert!(hsm.fails(&["tenant", "add", "acme"], b"").contains("tenant acme already exists"));
    assert!(hsm.fails(&["tenant", "add", "a b"], b"").contains("is not a tenant name"));
    assert!(hsm.fails(&["tenant", "add", "acme-eu"], b"").contains("'-' separates the tenant"));
    assert!(hsm.fails(&["hierarchy", "init"], b"").contains("already has its hierarchy"));
    assert!(hsm.fails(&["init", "--label", "cli-test"], b"").contains("already holds a token labelled"));
    let inspect = String::from_utf8(hsm.ok(&["envelope", "inspect"], &e)).unwrap();
    assert!(inspect.contains("dek-acme-v1") && inspect.contains("\"ctx\""), "{inspect}");
}

#[test]
fn help_works_for_every_command_and_usage_errors_exit_2() {
    let hsm = Hsm::new("cli-help");
    let commands: &[&[&str]] = &[
        &[],
        &["init"],
        &["hierarchy"],
        &["hierarchy", "init"],
        &["tenant"],
        &["tenant", "add"],
        &["rotate"],
        &["rotate", "master"],
        &["rotate", "kek"],
        &["rotate", "dek"],
        &["retire"],
        &["status"],
        &["envelope"],
        &["envelope", "encrypt"],
        &["envelope", "decrypt"],
        &["envelope", "reencrypt"],
        &["envelope", "inspect"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = hsm.run(&args, b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Usage: ecm-hsm"), "{args:?}: {text}");
    }
    for usage_error in [
        &["bogus"][..],
        &["rotate"],
        &["rotate", "dek"],
        &["rotate", "kek", "--due"],
        &["init"],
        &["envelope", "encrypt"],
        // PINs are never taken from the command line.
        &["--pin", "1234", "status"],
        &["init", "--label", "x", "--so-pin", "1234"],
    ] {
        let out = hsm.run(usage_error, b"");
        assert_eq!(out.status.code(), Some(2), "{usage_error:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_pin_given_nowhere_without_a_terminal_is_a_clear_error_not_a_hang() {
    let hsm = Hsm::new("cli-pins");
    // Without a controlling terminal (setsid), as under CI or cron.
    let detached = |args: &[&str]| {
        let mut c = Command::new(if Path::new("/usr/bin/setsid").exists() { "/usr/bin/setsid" } else { BIN });
        if Path::new("/usr/bin/setsid").exists() {
            c.arg(BIN);
        }
        c.args(args).env("ECM_HSM_DIR", hsm.dir.path());
        for v in ["ECM_HSM_CONF", "ECM_HSM_PIN", "ECM_HSM_SO_PIN", "ECM_HSM_NEW_PIN"] {
            c.env_remove(v);
        }
        c
    };
    let out = run_with_deadline(detached(&["init", "--label", "p"]), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no SO PIN given: set ECM_HSM_SO_PIN or pass --so-pin-file FILE"), "{stderr}");
    assert!(!hsm.path("token-0.sqlite").exists(), "no half-made token");

    // PINs from files work without the environment.
    std::fs::write(hsm.path("so.pin"), format!("{SO_PIN}\n")).unwrap();
    std::fs::write(hsm.path("user.pin"), format!("{USER_PIN}\r\n")).unwrap();
    let (so, user) = (hsm.path("so.pin"), hsm.path("user.pin"));
    let init = [
        "init",
        "--label",
        "p",
        "--so-pin-file",
        so.to_str().unwrap(),
        "--new-pin-file",
        user.to_str().unwrap(),
    ];
    let out = run_with_deadline(detached(&init), Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_with_deadline(
        detached(&["--pin-file", user.to_str().unwrap(), "--user", "user", "status"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let start = Instant::now();
    let out = run_with_deadline(detached(&["status"]), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no user PIN given: set ECM_HSM_PIN or pass --pin-file FILE"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20), "failed fast");

    // A wrong PIN and an unknown principal are refused by the core, with the token named.
    let wrong =
        hsm.bare(&["status"]).env("ECM_HSM_PIN", "not-the-pin").stdin(Stdio::null()).output().unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("token 'p' (slot 0) refused the user PIN"));
    let bob = hsm.bare(&["--user", "bob", "status"]).env("ECM_HSM_PIN", USER_PIN).output().unwrap();
    assert_eq!(bob.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bob.stderr).contains("for principal 'bob'"));
}

#[test]
fn rotate_due_rotates_what_is_overdue_and_status_marks_it() {
    let hsm = Hsm::with_tenants("cli-due");
    {
        // A tenant whose DEK is due one second after it is made.
        let (module, s) = hsm.library();
        let mechanism = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
        let template = [
            Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK),
            Attribute::new(CKA_ECM_TENANT, b"hasty".to_vec()),
            Attribute::ulong(CKA_ECM_ROTATION_PERIOD, 1),
        ];
        module.generate_key(s, &mechanism, &template).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2100));
    let status = hsm.status();
    assert_eq!(key(&status, "dek-hasty-v1").unwrap()["overdue"], true);
    assert_eq!(key(&status, "dek-acme-v1").unwrap()["overdue"], false);
    assert!(hsm.ok_text(&["status"]).contains("OVERDUE"));
    let dry = hsm.ok_text(&["rotate", "--due", "--dry-run"]);
    assert!(dry.contains("due: dek-hasty-v1") && !dry.contains("acme"), "{dry}");
    let rotated = hsm.ok_text(&["rotate", "--due"]);
    assert!(rotated.contains("rotated dek-hasty: dek-hasty-v2 is current"), "{rotated}");
    assert_eq!(rotated.lines().count(), 1, "{rotated}");
    assert!(hsm.ok_text(&["rotate", "--due"]).contains("nothing is due"));
    let status = hsm.status();
    assert_eq!(state(&status, "dek-hasty-v1"), "decrypt-only");
    assert_eq!(key(&status, "dek-hasty-v2").unwrap()["rotation_period_days"], 30, "the default period");
}

/// The envelope calls of the library on a logged-in session of the core.
#[test]
fn envelope_library_calls_on_the_core() {
    let hsm = Hsm::with_tenants("cli-lib");
    let (module, s) = hsm.library();
    let module = Backend::Local(module);
    let sealed = envelope::seal(&module, s, "globex", b"aad", b"data").unwrap();
    let opened = envelope::open(&module, s, &sealed).unwrap();
    assert_eq!((opened.tenant.as_str(), opened.aad.as_slice()), ("globex", b"aad".as_slice()));
    assert_eq!(opened.plaintext.as_slice(), b"data");
    // The CLI opens what the library sealed.
    drop(module);
    assert_eq!(hsm.ok(&["envelope", "decrypt"], &sealed), b"data");
}

/// 2,000 tenants (made through the library, for speed), then one KEK rotation that rewraps
/// all their DEKs in one transaction. The time is printed, not asserted.
#[test]
fn a_kek_rotation_over_2000_deks() {
    let hsm = Hsm::new("cli-2000");
    hsm.ok(&["init", "--label", "many"], b"");
    hsm.ok(&["hierarchy", "init"], b"");
    let (module, s) = hsm.library();
    let module = Backend::Local(module);
    let mechanism = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
    let made = Instant::now();
    for i in 0..2000 {
        let template = [
            Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK),
            Attribute::new(CKA_ECM_TENANT, format!("tenant_{i:04}").into_bytes()),
        ];
        module.generate_key(s, &mechanism, &template).unwrap();
    }
    let made = made.elapsed();
    let sealed = envelope::seal(&module, s, "tenant_1999", b"", b"kept").unwrap();
    let start = Instant::now();
    let kek2 = module.generate_key(s, &mechanism, &[Attribute::ulong(CKA_ECM_TIER, CKT_ECM_KEK)]).unwrap();
    let rotation = start.elapsed();
    eprintln!("2,000 DEKs made in {made:.2?}; KEK rotation rewrapping all 2,000 took {rotation:.2?}");
    let uid = match module.get_attributes(s, kek2, &[CKA_UNIQUE_ID]).unwrap().pop() {
        Some(AttributeRead::Value(v)) => v.to_vec(),
        other => panic!("{other:?}"),
    };
    module.find_init(s, &[Attribute::new(CKA_ECM_PARENT_ID, uid)]).unwrap();
    let under_new = module.find_next(s, 5000).unwrap().len();
    module.find_final(s).unwrap();
    assert_eq!(under_new, 2000, "every DEK is wrapped by the new KEK");
    assert_eq!(envelope::open(&module, s, &sealed).unwrap().plaintext.as_slice(), b"kept");
    drop(module);
    // The old KEK wraps nothing now, and the CLI sees the lot.
    hsm.ok(&["retire", "--label", "kek-v1"], b"");
    assert_eq!(labels(&hsm.status()).len(), 2 + 2000);
}

#[test]
fn a_closed_stdout_does_not_crash_the_tool() {
    let hsm = Hsm::with_tenants("closed-stdout");
    for args in [&["status"][..], &["status", "--json"], &["tenant", "add", "initech"]] {
        let mut child =
            hsm.cmd(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The reading end closes before the tool (still opening the token) writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ecm-hsm {args:?}: {} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The work was done all the same.
    assert!(labels(&hsm.status()).iter().any(|l| l == "dek-initech-v1"));
}
