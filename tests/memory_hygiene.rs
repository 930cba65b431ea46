//! Memory hygiene of the admin tool (issue 13 item 14): it makes itself not dumpable
//! (`PR_SET_DUMPABLE` 0) before it reads a PIN or opens a key, so that it leaves no core
//! file and no other process of the same user can read its memory.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

#[test]
fn the_admin_tool_is_not_dumpable() {
    // The hidden `debug-process` command reports the state of the process that runs it,
    // after the start every command shares.
    let out = Command::new(BIN).arg("debug-process").output().expect("run ecm-hsm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dumpable: 0");
}

#[test]
fn the_debug_command_is_not_offered_in_the_help() {
    let out = Command::new(BIN).arg("--help").output().expect("run ecm-hsm");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("debug-process"));
}
