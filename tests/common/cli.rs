//! The admin tool `ecm-hsm` run as a user runs it, for the CLI tests: a token directory of
//! their own, and the checks every run of the tool gets (success, or a refusal in one line).

use std::process::{Command, Output, Stdio};

use super::audit::temp_dir;
use super::{SO_PIN, token_dir, write_test_config};

/// The admin tool under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// `command` with every PIN in the environment: the SO's, `pin` as the user's and `new_pin` as
/// the PIN to set.
pub fn with_pins<'c>(command: &'c mut Command, pin: &str, new_pin: &str) -> &'c mut Command {
    command.env("ECM_HSM_SO_PIN", SO_PIN).env("ECM_HSM_PIN", pin).env("ECM_HSM_NEW_PIN", new_pin)
}

/// The admin tool on this (child) test's token directory, no settings file named, the SO PIN
/// in the environment with `ECM_HSM_PIN` = `pin` and `ECM_HSM_NEW_PIN` = `new_pin`, and an
/// empty stdin.
pub fn tool_on_token(args: &[&str], pin: &str, new_pin: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("ECM_HSM_DIR", token_dir()).env_remove("ECM_HSM_CONF").stdin(Stdio::null());
    with_pins(&mut c, pin, new_pin);
    c
}

/// A fresh token directory with the test settings, removed when dropped.
pub fn settings_dir(tag: &str) -> tempfile::TempDir {
    let dir = temp_dir(tag);
    write_test_config(dir.path(), "");
    dir
}

/// Asserts that the run `ecm-hsm ARGS` succeeded; its stdout.
#[track_caller]
pub fn succeeded(args: &[&str], out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "ecm-hsm {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts that the run `ecm-hsm ARGS` failed as a refusal does: exit code 1, nothing on
/// stdout, one line on stderr starting `ecm-hsm: `; that line.
#[track_caller]
pub fn refused(args: &[&str], out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "ecm-hsm {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("ecm-hsm: "), "{stderr}");
    stderr
}
