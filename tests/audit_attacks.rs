//! Attacks on the audit trail by someone who can write the token directory but does not hold
//! the token key (issue 13, items 9-11): each performed on a real trail the module wrote,
//! then `ecm-hsm audit verify` and `audit export` run as an operator would.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::audit::*;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// `ecm-hsm <args>` on the token directory of this test, logged in as the user.
fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ECM_HSM_DIR", token_dir())
        .env_remove("ECM_HSM_CONF")
        .env("ECM_HSM_PIN", USER_PIN)
        .env_remove("ECM_HSM_SO_PIN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A token with a trail: the setup's records, then a user's login and a search.
fn token_with_a_trail() {
    let (p, slot) = load_with_token();
    let s = user_session(&p, slot);
    s.find_objects(&[]).unwrap();
    drop(s);
    p.finalize().unwrap();
}

/// Appends to the register at `path` a record that hashes correctly onto its last line, as a
/// forger without the key writes it (`"auth":"h"`); its line number.
fn forge_register_record(path: &Path, fields: &str) -> usize {
    let lines = lines(path);
    let last = lines.last().unwrap();
    let seq: u64 = serde_json::from_str::<serde_json::Value>(last).unwrap()["seq"].as_u64().unwrap() + 1;
    let prev = hex::decode(&last[last.rfind("\"link\":\"").unwrap() + 8..last.len() - 2]).unwrap();
    let covered =
        format!("{{\"seq\":{seq},\"time\":{},{fields},\"auth\":\"h\"", ecm_hsm::audit::record::now_ms());
    let link = ecm_hsm::mechanism::digest::sha256(&[prev.as_slice(), covered.as_bytes()].concat());
    let mut all = lines.clone();
    all.push(format!("{covered},\"link\":\"{}\"}}", hex::encode(link)));
    write_lines(path, &all);
    all.len()
}

isolated_test!(
    fn a_forged_unauthenticated_record_in_the_register_fails_verify_whatever_follows_it() {
        token_with_a_trail();
        let register = audit_path();
        let forged = forge_register_record(
            &register,
            "\"principal\":\"security-admin\",\"pid\":4242,\"session\":1,\"operation\":\"destroy\",\
             \"key_label\":\"dek-globex-v1\",\"result\":0",
        );
        let after_forgery = std::fs::read(&register).unwrap();

        // A new process records after it, authenticated records chained onto the forgery:
        // the writer reports the forgery as a fault and goes on (the token keeps working,
        // and verify below logs in, itself a recorded call).
        let p = load();
        let s = user_session(&p, first_slot(&p));
        s.find_objects(&[]).unwrap();
        drop(s);
        p.finalize().unwrap();
        assert!(std::fs::read(&register).unwrap().len() > after_forgery.len(), "recorded after it");
        assert!(std::fs::read(&register).unwrap().starts_with(&after_forgery));

        // verify names the forged line; export does not present it.
        let out = cli(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(said.contains(&format!("line {forged}")) && said.contains("unauthenticated"), "{said}");
        let out = cli(&["audit", "export"]);
        // Export stops before it: the records before it are out, it and the rest are not.
        assert!(text(&out.stdout).contains("\"operation\":\"login\""), "{}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("dek-globex-v1"), "{}", text(&out.stdout));
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(&format!("line {forged}")), "{}", text(&out.stderr));
    }
);
