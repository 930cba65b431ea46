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

/// `cli` that must succeed.
#[track_caller]
fn cli_ok(args: &[&str]) -> Output {
    let out = cli(args);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `report` names the gap auditing off left in the trail, from one register
/// record until another, its line starting `lead`.
#[track_caller]
fn assert_gap_named(report: &str, lead: &str) {
    let off = format!("{lead}auditing was turned off (audit = false) from register record");
    assert!(report.contains(&off) && report.contains("until register record"), "{report}");
}

/// A token with a trail: the setup's records, then a user's login and a search.
fn token_with_a_trail() {
    let (p, _slot, s) = logged_in();
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

const ROLE: &str = "ECM_HSM_AUDIT_ATTACK_ROLE";

/// In a worker process: logs in and searches in a loop, printing `> DONE n` after the n-th
/// call returned (its record written), until killed.
fn searching_worker() {
    use std::io::Write;
    let p = load();
    let s = user_session(&p, first_slot(&p));
    let mut out = std::io::stdout().lock();
    for n in 1.. {
        s.find_objects(&[]).unwrap();
        writeln!(out, "> DONE {n}").unwrap();
        out.flush().unwrap();
    }
}

/// The `--expect-seq N --expect-link L` that `audit verify` printed.
fn anchor_of(verify_output: &str) -> (String, String) {
    let at = verify_output.find("--expect-seq ").unwrap_or_else(|| panic!("no anchor: {verify_output}"));
    let words: Vec<&str> = verify_output[at..].split_whitespace().collect();
    (words[1].to_owned(), words[3].to_owned())
}

isolated_test!(
    fn a_killed_writers_segment_is_closed_by_the_next_login_so_its_tail_cannot_be_cut_unseen() {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::ExitStatusExt;
        const TEST: &str =
            "a_killed_writers_segment_is_closed_by_the_next_login_so_its_tail_cannot_be_cut_unseen";
        if std::env::var_os(ROLE).is_some() {
            searching_worker();
            return;
        }
        token_with_a_trail();
        let segments_before: Vec<_> = std::fs::read_dir(ecm_hsm::audit::segment_dir(&audit_path()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // A writer killed (-9) after 40 acknowledged calls: its segment is never closed by it.
        let mut child = worker_command(TEST, &token_dir(), ROLE, "search").spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        for line in stdout.lines() {
            if line.unwrap().contains("> DONE") {
                seen += 1;
                if seen == 40 {
                    break;
                }
            }
        }
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        let killed = std::fs::read_dir(ecm_hsm::audit::segment_dir(&audit_path()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| !segments_before.contains(p))
            .unwrap();

        // The operator verifies (logging in: the dead writer's segment is closed in the
        // register with its head) and keeps the anchor it prints.
        let out = cli_ok(&["audit", "verify"]);
        let (seq, link) = anchor_of(&text(&out.stdout));
        let number = killed
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("segment-")
            .trim_end_matches(".jsonl")
            .to_owned();
        let number: u64 = number.parse().unwrap();
        let closes = lines(&audit_path())
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["operation"] == "segment_close" && r["segment"].as_u64() == Some(number))
            .count();
        assert_eq!(closes, 1, "the killed writer's segment {number} closed once");
        let records = lines(&killed);
        assert!(records.len() >= 40, "{} records", records.len());

        // The attacker cuts the tail of the killed writer's segment (two of its records).
        let kept = &records[..records.len() - 2];
        write_lines(&killed, kept);
        let out = cli(&["audit", "verify", "--expect-seq", &seq, "--expect-link", &link]);
        assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(said.contains(&format!("segment-{number}.jsonl")) && said.contains("truncated"), "{said}");
    }
);

#[test]
fn turning_auditing_off_and_on_leaves_authenticated_records_of_the_gap() {
    use ecm_hsm::audit::{self, AuditGap, AuditLog, OpenOptions, ProblemKind, Record};
    let dir = temp_dir("audit-switch");
    let path = audit::path_for(dir.path(), 0);
    let key = test_key();
    let inline = OpenOptions { threads: false, ..OpenOptions::default() };
    let log = AuditLog::open_with(&path, inline).unwrap();
    log.set_key(Some(key.clone()));
    log.append(&Record::new("encrypt", 0)).unwrap();
    drop(log);
    // A process with auditing off: said before its login (hash-linked) and after it
    // (authenticated), once each however many calls it makes.
    for _ in 0..3 {
        audit::switch::note_audit_off(dir.path(), 0, None).unwrap();
        audit::switch::note_audit_off(dir.path(), 0, Some(&key)).unwrap();
    }
    let register = lines(&path);
    let offs: Vec<_> = register.iter().filter(|l| l.contains("\"operation\":\"audit_off\"")).collect();
    assert_eq!(offs.len(), 2, "{register:?}");
    assert!(offs[0].contains("\"auth\":\"h\"") && offs[1].contains("\"auth\":\"m\""), "{offs:?}");
    let off_at = register.iter().position(|l| l.contains("audit_off")).unwrap() as u64 + 1;
    let report = audit::verify_trail(&path, Some(&key), None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.register.audit_gaps, [AuditGap { off_at, on_at: None }]);

    // A forger cannot end the gap: an `audit_on` without the key is refused by verify.
    let mut forged = register.clone();
    let last = forged.last().unwrap().clone();
    let seq = register.len() + 1;
    let prev = hex::decode(&last[last.rfind("\"link\":\"").unwrap() + 8..last.len() - 2]).unwrap();
    let covered = format!(
        "{{\"seq\":{seq},\"time\":1,\"principal\":\"\",\"pid\":1,\"session\":0,\"operation\":\"audit_on\",\"result\":0,\"auth\":\"h\""
    );
    let link = ecm_hsm::mechanism::digest::sha256(&[prev.as_slice(), covered.as_bytes()].concat());
    forged.push(format!("{covered},\"link\":\"{}\"}}", hex::encode(link)));
    let forged_path = dir.path().join("forged.audit");
    write_lines(&forged_path, &forged);
    let report = audit::verify(&forged_path, None, None).unwrap();
    assert_eq!(report.problem.map(|p| (p.line, p.kind)), Some((seq as u64, ProblemKind::Unauthenticated)));

    // The next process with auditing on that holds the key ends the gap, authenticated.
    let log = AuditLog::open_with(&path, inline).unwrap();
    log.set_key(Some(key.clone()));
    log.append(&Record::new("decrypt", 0)).unwrap();
    drop(log);
    let report = audit::verify_trail(&path, Some(&key), None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    let on_at =
        lines(&path).iter().position(|l| l.contains("\"operation\":\"audit_on\"")).unwrap() as u64 + 1;
    assert!(lines(&path)[on_at as usize - 1].contains("\"auth\":\"m\""));
    assert_eq!(report.register.audit_gaps, [AuditGap { off_at, on_at: Some(on_at) }]);
    // And only once.
    let log = AuditLog::open_with(&path, inline).unwrap();
    log.set_key(Some(key.clone()));
    drop(log);
    assert_eq!(lines(&path).iter().filter(|l| l.contains("audit_on")).count(), 1);
}

isolated_test!(
    fn auditing_turned_off_in_the_settings_shows_as_a_gap_in_verify() {
        token_with_a_trail();
        let settings = token_dir().join("ecm-hsm.toml");
        let original = std::fs::read_to_string(&settings).unwrap();
        // Someone turns auditing off; a process works unrecorded; auditing is turned on again.
        std::fs::write(&settings, format!("{original}audit = false\n")).unwrap();
        let p = load();
        let s = user_session(&p, first_slot(&p));
        s.find_objects(&[]).unwrap();
        drop(s);
        p.finalize().unwrap();
        std::fs::write(&settings, &original).unwrap();
        let offs: Vec<String> =
            lines(&audit_path()).into_iter().filter(|l| l.contains("\"operation\":\"audit_off\"")).collect();
        assert!(!offs.is_empty() && offs.len() <= 2, "{offs:?}");
        assert!(
            offs.iter().any(|l| l.contains("\"auth\":\"m\"")),
            "authenticated once the process logged in: {offs:?}"
        );

        // verify (its process audits again, and holds the key: it ends the gap) shows it.
        let out = cli_ok(&["audit", "verify"]);
        assert_gap_named(&text(&out.stderr), "");
        let ons = lines(&audit_path()).iter().filter(|l| l.contains("\"operation\":\"audit_on\"")).count();
        assert_eq!(ons, 1);

        // status shows the same gap, as a warning and in its JSON.
        let out = cli_ok(&["status"]);
        assert_gap_named(&text(&out.stdout), "WARNING: ");
        let out = cli(&["status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let gaps = json["audit_gaps"].as_array().unwrap();
        assert_eq!(gaps.len(), 1, "{json}");
        assert!(gaps[0]["off_at"].as_u64().unwrap() < gaps[0]["on_at"].as_u64().unwrap(), "{json}");
    }
);
