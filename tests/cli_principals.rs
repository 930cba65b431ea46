//! The `ecm-hsm` tool's `principal` and `policy` commands, run as a user runs them: the built
//! binary in a fresh token directory, every PIN in the environment (or in files), never argv.
mod common;

use std::process::{Command, Output, Stdio};

use common::cli::{refused, settings_dir, succeeded};
use common::{MAX_PIN_FAILURES, SO_PIN, USER_PIN};

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");
const PRINCIPAL: &str = "context-api";
const PRINCIPAL_PIN: &str = "context-pin-1";

/// The seed's permission model, as it is written there.
const SEED_POLICY: &str = include_str!("fixtures/seed-policy.json");

/// The same permissions in TOML.
const SEED_POLICY_TOML: &str = r#"[key_permissions.context-api]
keys = ["dek-*"]
operations = ["decrypt"]

[key_permissions.key-rotation-service]
keys = ["dek-*", "kek-*"]
operations = ["encrypt", "decrypt", "rotate"]

[key_permissions.security-admin]
keys = ["*"]
operations = ["*"]
requires_approval = true
"#;

/// A token directory of its own, removed afterwards.
struct Hsm {
    dir: tempfile::TempDir,
}

/// Changes to the environment of one run: `Some` sets a variable, `None` removes it.
type Env<'a> = &'a [(&'a str, Option<&'a str>)];

impl Hsm {
    fn new(tag: &str) -> Hsm {
        Hsm { dir: settings_dir(tag) }
    }

    /// A token labelled `principals`, with its SO and user PINs.
    fn with_token(tag: &str) -> Hsm {
        let hsm = Hsm::new(tag);
        hsm.ok(&["init", "--label", "principals"], &[("ECM_HSM_NEW_PIN", Some(USER_PIN))]);
        hsm
    }

    /// The command with this directory, the SO and user PINs in the environment, the
    /// principal's PIN as the PIN to set, and `env` applied over them.
    fn cmd(&self, args: &[&str], env: Env) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("ECM_HSM_DIR", self.dir.path())
            .env_remove("ECM_HSM_CONF")
            .env("ECM_HSM_PIN", USER_PIN)
            .env("ECM_HSM_SO_PIN", SO_PIN)
            .env("ECM_HSM_NEW_PIN", PRINCIPAL_PIN)
            .stdin(Stdio::null());
        for (name, value) in env {
            match value {
                Some(v) => c.env(name, v),
                None => c.env_remove(name),
            };
        }
        c
    }

    fn run(&self, args: &[&str], env: Env) -> Output {
        self.cmd(args, env).output().unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str], env: Env) -> String {
        String::from_utf8(succeeded(args, self.run(args, env))).unwrap()
    }

    /// Runs a command that must fail with exit code 1, nothing on stdout and one line on
    /// stderr; that line.
    fn fails(&self, args: &[&str], env: Env) -> String {
        refused(args, self.run(args, env))
    }

    /// The principals as `principal list --json` shows them: (name, failed logins, locked).
    fn principals(&self) -> Vec<(String, u64, bool)> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["principal", "list", "--json"], &[])).expect("JSON");
        assert_eq!(json["max_pin_failures"], MAX_PIN_FAILURES);
        json["principals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["failed_logins"].as_u64().unwrap(),
                    p["locked"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    /// `--user NAME status` with `pin` as ECM_HSM_PIN, and without the SO PIN.
    fn login_as(&self, name: &str, pin: &str) -> Output {
        self.run(&["--user", name, "status"], &[("ECM_HSM_PIN", Some(pin)), ("ECM_HSM_SO_PIN", None)])
    }

    /// Asserts that [`Hsm::login_as`] is refused (exit code 1) with `reason` in its message.
    #[track_caller]
    fn login_refused(&self, name: &str, pin: &str, reason: &str) {
        let out = self.login_as(name, pin);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(reason), "{}", stderr(&out));
    }

    /// Writes `text` into the token directory; the file's path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// `policy show --json` as the SO: (version, document).
    fn policy(&self) -> (serde_json::Value, serde_json::Value) {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["policy", "show", "--json"], &[])).expect("JSON");
        (json["version"].clone(), json["policy"].clone())
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn principals_are_added_listed_given_new_pins_and_removed() {
    let hsm = Hsm::with_token("cli-principals");
    let empty = hsm.ok(&["principal", "list"], &[]);
    assert!(empty.contains("token 'principals' (slot 0) has no principals"), "{empty}");
    assert!(hsm.principals().is_empty());

    let added = hsm.ok(&["principal", "add", PRINCIPAL], &[]);
    assert!(
        added.contains(&format!("added principal '{PRINCIPAL}' to token 'principals' (slot 0)")),
        "{added}"
    );
    assert!(added.contains("no policy yet"), "{added}");
    // The SO PIN and the new PIN from files, with neither in the environment.
    let so_file = hsm.file("so.pin", &format!("{SO_PIN}\n"));
    let new_file = hsm.file("new.pin", "batch-pin-1\n");
    let from_files = hsm.ok(
        &["principal", "add", "batch.job_2", "--so-pin-file", &so_file, "--new-pin-file", &new_file],
        &[("ECM_HSM_SO_PIN", None), ("ECM_HSM_NEW_PIN", None)],
    );
    assert!(from_files.contains("added principal 'batch.job_2'"), "{from_files}");

    let table = hsm.ok(&["principal", "list"], &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains(&format!("locks after {MAX_PIN_FAILURES} wrong PINs")), "{table}");
    let cells = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        lines[1].split("  ").filter(|c| !c.is_empty()).map(str::trim).collect::<Vec<_>>(),
        ["NAME", "FAILED LOGINS", "LOCKED"]
    );
    assert_eq!(cells(lines[2]), ["batch.job_2", "0", "no"], "{table}");
    assert_eq!(cells(lines[3]), [PRINCIPAL, "0", "no"], "{table}");
    assert_eq!(hsm.principals(), [("batch.job_2".to_owned(), 0, false), (PRINCIPAL.to_owned(), 0, false)]);

    // Each principal logs in with its own PIN; the user still with the user PIN.
    for (name, pin) in [(PRINCIPAL, PRINCIPAL_PIN), ("batch.job_2", "batch-pin-1"), ("user", USER_PIN)] {
        let out = hsm.login_as(name, pin);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    let seen = String::from_utf8(hsm.login_as(PRINCIPAL, PRINCIPAL_PIN).stdout).unwrap();
    assert!(seen.contains(&format!("principal '{PRINCIPAL}' may see")), "{seen}");

    // Refusals, each with its own message, and nothing changed by them.
    let twice = hsm.fails(&["principal", "add", PRINCIPAL], &[]);
    assert!(twice.contains(&format!("principal '{PRINCIPAL}' already exists")), "{twice}");
    assert!(twice.contains("principal reset-pin"), "{twice}");
    for reserved in ["user", "so"] {
        let e = hsm.fails(&["principal", "add", reserved], &[]);
        assert!(e.contains(&format!("'{reserved}' is the token's")), "{e}");
        assert!(e.contains("choose another name"), "{e}");
    }
    let long = "x".repeat(65);
    for bad in ["a:b", "", "with space", "ümlaut", long.as_str()] {
        let e = hsm.fails(&["principal", "add", bad], &[]);
        assert!(e.contains("is not a principal name: use 1 to 64 letters, digits"), "{bad}: {e}");
    }
    assert!(hsm.ok(&["principal", "add", &"x".repeat(64)], &[]).contains("added principal"));
    hsm.ok(&["principal", "remove", &"x".repeat(64)], &[]);
    for command in ["remove", "reset-pin"] {
        let e = hsm.fails(&["principal", command, "nobody"], &[]);
        assert!(e.contains("no principal 'nobody' on token 'principals' (slot 0)"), "{e}");
        let e = hsm.fails(&["principal", command, "user"], &[]);
        assert!(e.contains("'user' is the token's own user"), "{e}");
    }
    for args in [
        &["principal", "add", "mallory"][..],
        &["principal", "remove", PRINCIPAL],
        &["principal", "reset-pin", PRINCIPAL],
        &["principal", "list"],
    ] {
        let e = hsm.fails(args, &[("ECM_HSM_SO_PIN", Some("not-the-so-pin"))]);
        assert!(e.contains("token 'principals' (slot 0) refused the SO PIN"), "{args:?}: {e}");
        // A right SO PIN in between, so that the SO PIN's failures never add up to a lock.
        assert_eq!(hsm.principals().len(), 2, "{args:?} changed nothing");
    }
    // The SO PIN is the SO's: the user PIN does not manage principals.
    let e = hsm.fails(&["principal", "list"], &[("ECM_HSM_SO_PIN", Some(USER_PIN))]);
    assert!(e.contains("refused the SO PIN"), "{e}");
    let short = hsm.fails(&["principal", "add", "shorty"], &[("ECM_HSM_NEW_PIN", Some("abc"))]);
    assert!(short.contains("a principal's PIN must have 4 to"), "{short}");
    assert_eq!(hsm.principals().len(), 2, "no refusal added or removed anyone");

    // A new PIN: the old one stops working.
    let reset = hsm.ok(&["principal", "reset-pin", PRINCIPAL], &[("ECM_HSM_NEW_PIN", Some("context-pin-2"))]);
    assert!(reset.contains(&format!("set a new PIN for principal '{PRINCIPAL}'")), "{reset}");
    assert!(!reset.contains("unlocked"), "it was not locked: {reset}");
    hsm.login_refused(PRINCIPAL, PRINCIPAL_PIN, &format!("refused the user PIN for principal '{PRINCIPAL}'"));
    assert!(hsm.login_as(PRINCIPAL, "context-pin-2").status.success());

    // Removed, it cannot log in any more.
    let removed = hsm.ok(&["principal", "remove", PRINCIPAL], &[]);
    assert!(
        removed.contains(&format!("removed principal '{PRINCIPAL}' from token 'principals'")),
        "{removed}"
    );
    assert_eq!(hsm.principals(), [("batch.job_2".to_owned(), 0, false)]);
    hsm.login_refused(PRINCIPAL, "context-pin-2", &format!("for principal '{PRINCIPAL}'"));
    let e = hsm.fails(&["principal", "remove", PRINCIPAL], &[]);
    assert!(e.contains(&format!("no principal '{PRINCIPAL}'")), "{e}");
}

#[test]
fn wrong_pins_lock_a_principal_but_not_the_user_and_reset_pin_unlocks_it() {
    let hsm = Hsm::with_token("cli-lockout");
    hsm.ok(&["principal", "add", PRINCIPAL], &[]);
    for attempt in 1..=MAX_PIN_FAILURES {
        let out = hsm.login_as(PRINCIPAL, "wrong-pin");
        assert_eq!(out.status.code(), Some(1), "attempt {attempt}");
        let e = stderr(&out);
        assert_eq!(e.lines().count(), 1, "{e}");
        if attempt < MAX_PIN_FAILURES {
            assert!(
                e.contains(&format!("refused the user PIN for principal '{PRINCIPAL}'")),
                "{attempt}: {e}"
            );
            assert_eq!(hsm.principals(), [(PRINCIPAL.to_owned(), u64::from(attempt), false)]);
        } else {
            assert!(
                e.contains(&format!("principal '{PRINCIPAL}' of token 'principals' (slot 0) is locked")),
                "{e}"
            );
        }
    }
    // Locked: even the right PIN is refused, and the list says so.
    hsm.login_refused(PRINCIPAL, PRINCIPAL_PIN, &format!("ecm-hsm principal reset-pin {PRINCIPAL}"));
    assert_eq!(hsm.principals(), [(PRINCIPAL.to_owned(), u64::from(MAX_PIN_FAILURES), true)]);
    let table = hsm.ok(&["principal", "list"], &[]);
    let row = table.lines().find(|l| l.starts_with(PRINCIPAL)).expect("a row");
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), [PRINCIPAL, &MAX_PIN_FAILURES.to_string(), "yes"]);
    assert!(table.contains("1 locked"), "{table}");

    // The user's PIN has its own count: the user still logs in.
    let user = hsm.ok(&["status"], &[("ECM_HSM_SO_PIN", None)]);
    assert!(user.contains("token 'principals' (slot 0)"), "{user}");

    let reset = hsm.ok(&["principal", "reset-pin", PRINCIPAL], &[("ECM_HSM_NEW_PIN", Some("context-pin-2"))]);
    assert!(reset.contains("and unlocked it"), "{reset}");
    assert_eq!(hsm.principals(), [(PRINCIPAL.to_owned(), 0, false)]);
    assert!(hsm.login_as(PRINCIPAL, "context-pin-2").status.success());
}

#[test]
fn policies_are_applied_with_versions_shown_and_bad_files_refused() {
    let hsm = Hsm::with_token("cli-policy");
    assert_eq!(hsm.ok(&["policy", "show"], &[]).trim(), "no policy: principals may do nothing with keys");
    let (version, document) = hsm.policy();
    assert!(version.is_null() && document.is_null());

    let seed = hsm.file("policy.json", SEED_POLICY);
    let out = hsm.run(&["policy", "apply", &seed], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "applied policy version 1 to token 'principals' (slot 0)");
    // Names that are no principal yet are noted, not refused.
    assert!(stderr(&out).contains("note: the policy names 'context-api', which is not a principal"));

    let expected: serde_json::Value = serde_json::from_str(SEED_POLICY).unwrap();
    let (version, document) = hsm.policy();
    assert_eq!((version, &document), (1.into(), &expected));
    let shown = hsm.ok(&["policy", "show"], &[]);
    assert!(shown.starts_with("policy version 1 of token 'principals' (slot 0):\n"), "{shown}");
    let body: serde_json::Value = serde_json::from_str(shown.split_once('\n').unwrap().1).unwrap();
    assert_eq!(body, expected, "the document as stored");
    // Any role may show it: the user without the SO PIN, and a principal.
    let as_user = hsm.ok(&["policy", "show"], &[("ECM_HSM_SO_PIN", None)]);
    assert_eq!(as_user, shown);
    hsm.ok(&["principal", "add", PRINCIPAL], &[]);
    let as_principal = hsm.ok(
        &["--user", PRINCIPAL, "policy", "show"],
        &[("ECM_HSM_SO_PIN", None), ("ECM_HSM_PIN", Some(PRINCIPAL_PIN))],
    );
    assert_eq!(as_principal, shown);

    // The same in TOML is the next version, with the same content.
    let toml = hsm.file("policy.toml", SEED_POLICY_TOML);
    let applied = hsm.ok(&["policy", "apply", &toml], &[]);
    assert!(applied.contains("applied policy version 2"), "{applied}");
    assert_eq!(hsm.policy(), (2.into(), expected.clone()));

    // Broken files are refused with the line named, and version 2 stays in force.
    let broken = [
        (
            "syntax.toml",
            "[key_permissions.context-api]\nkeys = [\"dek-*\"]\noperations = [\"decrypt\",, \"encrypt\"]\n",
            "line 3",
        ),
        (
            "syntax.json",
            "{\n\"key_permissions\": {\n\"a\": { \"keys\": [\"dek-*\"] \"operations\": [] }\n}\n}\n",
            "line 3",
        ),
        ("typo.json", &SEED_POLICY.replace("[\"decrypt\"]", "[\"encryt\"]"), "line 5"),
        ("typo.toml", &SEED_POLICY_TOML.replace("[\"decrypt\"]", "[\"encryt\"]"), "line 3"),
    ];
    for (name, text, line) in broken {
        let path = hsm.file(name, text);
        let e = hsm.fails(&["policy", "apply", &path], &[]);
        assert!(e.contains(&format!("{path}: {line}")), "{name}: {e}");
        assert!(e.contains("not applied; version 2 stays in force"), "{name}: {e}");
        if name.starts_with("typo") {
            assert!(e.contains("unknown operation 'encryt'"), "{name}: {e}");
        }
        assert_eq!(hsm.policy(), (2.into(), expected.clone()), "{name}");
    }
    let shown = hsm.ok(&["policy", "show"], &[]);
    assert!(shown.starts_with("policy version 2 of token"), "{shown}");

    // Only the SO applies a policy.
    let e = hsm.fails(&["policy", "apply", &seed], &[("ECM_HSM_SO_PIN", Some(USER_PIN))]);
    assert!(e.contains("refused the SO PIN"), "{e}");
    let missing = hsm.dir.path().join("missing.json");
    let e = hsm.fails(&["policy", "apply", missing.to_str().unwrap()], &[]);
    assert!(e.contains("cannot read"), "{e}");
    assert_eq!(hsm.policy().0, 2);
}

#[test]
fn a_principal_works_through_the_existing_commands_as_the_policy_allows() {
    let hsm = Hsm::with_token("cli-principal-use");
    hsm.ok(&["hierarchy", "init"], &[]);
    hsm.ok(&["tenant", "add", "acme"], &[]);
    hsm.ok(&["principal", "add", PRINCIPAL], &[]);
    let record = b"a record of acme".to_vec();
    let sealed = {
        let mut c = hsm.cmd(&["envelope", "encrypt", "--tenant", "acme"], &[]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &record).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    let envelope = hsm.dir.path().join("record.ecme");
    std::fs::write(&envelope, &sealed).unwrap();
    let envelope = envelope.to_str().unwrap();
    let principal: Env = &[("ECM_HSM_SO_PIN", None), ("ECM_HSM_PIN", Some(PRINCIPAL_PIN))];
    fn as_principal<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--user", PRINCIPAL];
        all.extend(args);
        all
    }

    // No policy: it logs in but sees no keys and opens nothing.
    let status = hsm.ok(&as_principal(&["status"]), principal);
    assert!(
        status.contains(&format!("no keys of the hierarchy that principal '{PRINCIPAL}' may see")),
        "{status}"
    );
    hsm.fails(&as_principal(&["envelope", "decrypt", "-i", envelope]), principal);

    // The seed's policy: DEKs for decryption only.
    hsm.ok(&["policy", "apply", &hsm.file("policy.json", SEED_POLICY)], &[]);
    let status = hsm.ok(&as_principal(&["status", "--json"]), principal);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let labels: Vec<&str> =
        status["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["dek-acme-v1"]);
    let opened = hsm.run(&as_principal(&["envelope", "decrypt", "-i", envelope]), principal);
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(opened.stdout, record);
    let out = hsm.dir.path().join("new.ecme");
    let refused = hsm.fails(
        &as_principal(&[
            "envelope",
            "encrypt",
            "--tenant",
            "acme",
            "-i",
            envelope,
            "-o",
            out.to_str().unwrap(),
        ]),
        principal,
    );
    assert!(refused.contains("for a principal the policy, forbid it"), "{refused}");
    let rotate = hsm.fails(&as_principal(&["rotate", "dek", "--tenant", "acme"]), principal);
    assert!(rotate.contains(&format!("the policy does not let principal '{PRINCIPAL}' do this")), "{rotate}");
    // The token's user is not restricted by rules for principals.
    hsm.ok(&["status"], &[("ECM_HSM_SO_PIN", None)]);
}

#[test]
fn help_works_for_every_new_command_and_usage_errors_exit_2() {
    let hsm = Hsm::new("cli-principal-help");
    for command in [
        &["principal"][..],
        &["principal", "add"],
        &["principal", "remove"],
        &["principal", "reset-pin"],
        &["principal", "list"],
        &["policy"],
        &["policy", "apply"],
        &["policy", "show"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = hsm.run(&args, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Usage: ecm-hsm"), "{args:?}: {text}");
        assert!(text.contains(&format!("Usage: ecm-hsm {}", command.join(" "))), "{args:?}: {text}");
    }
    let top = hsm.ok(&["--help"], &[]);
    assert!(top.contains("principal") && top.contains("policy"), "{top}");
    for usage_error in [
        &["principal"][..],
        &["principal", "add"],
        &["principal", "add", "a", "b"],
        &["principal", "remove"],
        &["principal", "reset-pin"],
        &["principal", "bogus"],
        &["policy", "apply"],
        &["policy", "bogus"],
        // PINs are never taken from the command line.
        &["principal", "add", "a", "--pin", "1234"],
        &["principal", "add", "a", "--new-pin", "1234"],
        &["policy", "apply", "f.json", "--so-pin", "1234"],
    ] {
        let out = hsm.run(usage_error, &[]);
        assert_eq!(out.status.code(), Some(2), "{usage_error:?}: {}", stderr(&out));
    }
}
