//! The tamper-evident audit record (`ecm_hsm::audit`): concurrent appends keep one contiguous
//! chain; edits, deletions, reorderings, truncation, rewrites and interrupted writes are each
//! reported at the right record; export filters and quotes; and `ecm-hsm audit verify` /
//! `audit export` work on a real token. Every test uses a directory of its own.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::audit::{lines, temp_dir, test_key, write_lines};
use common::{SO_PIN, USER_PIN, write_test_config};
use cryptoki_sys::*;
use ecm_hsm::audit::{
    self, Anchor, AuditKey, Filter, Format, LINK_LEN, ProblemKind, Record, Register, VerifyReport, verify,
};
use ecm_hsm::config::Config;
use ecm_hsm::module::Module;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");

/// A directory of its own, removed afterwards.
type Dir = tempfile::TempDir;

fn key() -> AuditKey {
    test_key()
}

fn other_key() -> AuditKey {
    audit::derive_key(&[0xa5; 32])
}

/// A file of 10 records: 2 written before any login (`h`), then 8 with the key (`m`).
fn ten_records(dir: &Dir) -> (PathBuf, [u8; LINK_LEN]) {
    let path = dir.path().join("token-0.audit");
    let log = Register::open(&path).unwrap();
    for i in 1..=10u64 {
        if i == 3 {
            log.set_key(Some(key()));
        }
        let op = format!("op-{i}");
        let mut r = Record::new(&op, 0);
        r.principal = if i < 3 { "" } else { "user" };
        r.session = i;
        assert_eq!(log.append(&r).unwrap(), i);
    }
    let (seq, link) = log.head().unwrap();
    assert_eq!(seq, 10);
    (path, link)
}

/// The problem verify reports: (line, seq, kind).
fn problem(report: &VerifyReport) -> (u64, u64, ProblemKind) {
    let p = report.problem.clone().unwrap_or_else(|| panic!("a problem expected: {report:?}"));
    (p.line, p.seq, p.kind)
}

/// A copy of `original` changed by `change`, as a file of its own.
fn tampered(dir: &Dir, original: &Path, name: &str, change: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let mut l = lines(original);
    change(&mut l);
    let path = dir.path().join(name);
    write_lines(&path, &l);
    path
}

#[test]
fn concurrent_appends_from_threads_and_processes_make_one_chain() {
    let dir = temp_dir("audit-concurrent");
    let path = dir.path().join("token-0.audit");
    // Two handles on one file: two processes, as far as the file can tell.
    let a = Arc::new(Register::open(&path).unwrap());
    let b = Arc::new(Register::open(&path).unwrap());
    a.set_key(Some(key()));
    b.set_key(Some(key()));
    const THREADS: u64 = 8;
    const EACH: u64 = 250;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = if t % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..EACH {
                    let op = format!("t{t}-{i}");
                    let mut r = Record::new(&op, 0);
                    r.key_label = Some("dek-acme-v1");
                    r.mechanism = Some(CKM_AES_GCM);
                    seqs.push(log.append(&r).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    seqs.sort_unstable();
    let total = THREADS * EACH;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "every append got its own seq");
    let report = verify(&path, Some(&key()), None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.authenticated), (total, total));
    assert_eq!(report.head, Some(a.head().unwrap()));
    assert_eq!(a.head().unwrap(), b.head().unwrap());
    let l = lines(&path);
    for (i, line) in l.iter().enumerate() {
        assert!(line.starts_with(&format!("{{\"seq\":{},", i + 1)), "line {}: {line}", i + 1);
    }
}

#[test]
fn an_intact_file_verifies_with_and_without_the_key() {
    let dir = temp_dir("audit-intact");
    let (path, link) = ten_records(&dir);
    let report = verify(&path, Some(&key()), Some(Anchor { seq: 10, link: Some(link) })).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.authenticated, report.unchecked), (10, 8, 0));
    assert_eq!(report.unauthenticated_tail, 0);
    assert_eq!(report.head, Some((10, link)));
    let report = verify(&path, None, None).unwrap();
    assert!(report.is_intact());
    assert_eq!((report.records, report.authenticated, report.unchecked), (10, 0, 8));
    // The wrong key: the first `m` record is refused.
    let report = verify(&path, Some(&other_key()), None).unwrap();
    assert_eq!(problem(&report), (3, 3, ProblemKind::BadMac));
}

#[test]
fn an_edited_record_is_named() {
    let dir = temp_dir("audit-edit");
    let (path, _) = ten_records(&dir);
    // An authenticated record: its MAC no longer matches.
    let edited = tampered(&dir, &path, "edit-m", |l| l[4] = l[4].replace("\"op-5\"", "\"op-X\""));
    let report = verify(&edited, Some(&key()), None).unwrap();
    assert_eq!(problem(&report), (5, 5, ProblemKind::BadMac));
    assert_eq!(report.records, 4);
    assert!(report.problem.unwrap().to_string().contains("record 5"));
    // A hashed record: detected without the key too.
    let edited = tampered(&dir, &path, "edit-h", |l| l[1] = l[1].replace("\"session\":2", "\"session\":9"));
    assert_eq!(problem(&verify(&edited, None, None).unwrap()), (2, 2, ProblemKind::BadHash));
    // A result changed and its link recomputed as a hash: an unauthenticated record after
    // authenticated ones is itself the failure, with or without the key.
    let edited = tampered(&dir, &path, "edit-relinked", |l| {
        let changed = l[5].replace("\"result\":0", "\"result\":5");
        l[5] = relink_as_hash(&changed, &l[4]);
    });
    for key in [None, Some(key())] {
        assert_eq!(
            problem(&verify(&edited, key.as_ref(), None).unwrap()),
            (6, 6, ProblemKind::Unauthenticated)
        );
    }
    // A line that is not a record at all.
    let edited = tampered(&dir, &path, "edit-garbage", |l| l[7] = "hello".into());
    assert!(matches!(problem(&verify(&edited, None, None).unwrap()), (8, 8, ProblemKind::Malformed(_))));
}

/// `line` with `"auth":"h"` and the SHA-256 link that follows `prev_line`, as a forger without
/// the key would write it.
fn relink_as_hash(line: &str, prev_line: &str) -> String {
    let prev_link = &prev_line[prev_line.len() - 66..prev_line.len() - 2];
    let covered_end = line.len() - 75;
    let covered = line[..covered_end].replace("\"auth\":\"m\"", "\"auth\":\"h\"");
    let mut data = audit::verify::parse_link(prev_link).unwrap().to_vec();
    data.extend_from_slice(covered.as_bytes());
    let link = ecm_hsm::mechanism::digest::sha256(&data);
    let digits = hex::encode(link);
    format!("{covered},\"link\":\"{digits}\"}}")
}

#[test]
fn a_gmac_record_in_the_register_is_refused() {
    // `g` links (GMAC under a segment's key, 32 hex digits) belong to segments: the register's
    // records are `m` or `h`, so a forger cannot pass a register record off as a `g` one.
    let dir = temp_dir("audit-g-in-register");
    let (path, _) = ten_records(&dir);
    let edited = tampered(&dir, &path, "g", |l| {
        let covered_end = l[7].len() - 75;
        let covered = l[7][..covered_end].replace("\"auth\":\"m\"", "\"auth\":\"g\"");
        l[7] = format!("{covered},\"link\":\"{}\"}}", "ab".repeat(16));
    });
    for key in [None, Some(key())] {
        let report = verify(&edited, key.as_ref(), None).unwrap();
        assert_eq!(
            problem(&report),
            (8, 8, ProblemKind::Malformed("a segment's record (auth g) in the register"))
        );
        assert_eq!(report.records, 7);
    }
}

#[test]
fn a_deleted_record_is_named() {
    let dir = temp_dir("audit-delete");
    let (path, _) = ten_records(&dir);
    let deleted = tampered(&dir, &path, "deleted", |l| {
        l.remove(3);
    });
    let report = verify(&deleted, Some(&key()), None).unwrap();
    assert_eq!(problem(&report), (4, 4, ProblemKind::Sequence { found: 5 }));
    assert!(report.problem.unwrap().to_string().contains("record 4 missing"));
    // The first record too.
    let deleted = tampered(&dir, &path, "deleted-first", |l| {
        l.remove(0);
    });
    assert_eq!(problem(&verify(&deleted, None, None).unwrap()), (1, 1, ProblemKind::Sequence { found: 2 }));
    // Renumbering the rest after a deletion breaks the chain at the first renumbered record
    // (its MAC covers its number and the link before it).
    let renumbered = tampered(&dir, &path, "renumbered", |l| {
        l.remove(3);
        for (i, line) in l.iter_mut().enumerate().skip(3) {
            *line = line.replacen(&format!("{{\"seq\":{}", i + 2), &format!("{{\"seq\":{}", i + 1), 1);
        }
    });
    assert_eq!(problem(&verify(&renumbered, Some(&key()), None).unwrap()), (4, 4, ProblemKind::BadMac));
}

#[test]
fn swapped_records_are_named() {
    let dir = temp_dir("audit-swap");
    let (path, _) = ten_records(&dir);
    let swapped = tampered(&dir, &path, "swapped", |l| l.swap(5, 6));
    let report = verify(&swapped, Some(&key()), None).unwrap();
    assert_eq!(problem(&report), (6, 6, ProblemKind::Sequence { found: 7 }));
    let swapped = tampered(&dir, &path, "swapped-far", |l| l.swap(1, 8));
    assert_eq!(problem(&verify(&swapped, None, None).unwrap()), (2, 2, ProblemKind::Sequence { found: 9 }));
}

#[test]
fn a_truncated_file_is_caught_by_the_anchor() {
    let dir = temp_dir("audit-truncate");
    let (path, link) = ten_records(&dir);
    let cut = tampered(&dir, &path, "cut", |l| l.truncate(7));
    // Without an anchor, a shorter chain is a valid chain.
    let report = verify(&cut, Some(&key()), None).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.records, 7);
    let anchor = Anchor { seq: 10, link: Some(link) };
    let report = verify(&cut, Some(&key()), Some(anchor)).unwrap();
    assert_eq!(problem(&report), (8, 8, ProblemKind::Truncated { anchor: 10 }));
    assert!(report.problem.unwrap().to_string().contains("truncated after record 7"));
    // The count alone does too.
    let report = verify(&cut, None, Some(Anchor { seq: 8, link: None })).unwrap();
    assert_eq!(problem(&report), (8, 8, ProblemKind::Truncated { anchor: 8 }));
    // An empty file.
    let empty = tampered(&dir, &path, "empty", Vec::clear);
    std::fs::write(&empty, b"").unwrap();
    let report = verify(&empty, Some(&key()), Some(anchor)).unwrap();
    assert_eq!(problem(&report), (1, 1, ProblemKind::Truncated { anchor: 10 }));
}

#[test]
fn a_chain_rewritten_without_the_key_is_caught() {
    let dir = temp_dir("audit-rewrite");
    let (path, link) = ten_records(&dir);
    // A forger without the token key writes a whole new chain of `h` records.
    let forged = dir.path().join("forged.audit");
    let log = Register::open(&forged).unwrap();
    for i in 1..=10u64 {
        let op = format!("innocent-{i}");
        log.append(&Record::new(&op, 0)).unwrap();
    }
    // Its hashes are consistent: without key and anchor, nothing to see.
    assert!(verify(&forged, None, None).unwrap().is_intact());
    // With the key: no record is authenticated, though every login writes an `m` record.
    let report = verify(&forged, Some(&key()), None).unwrap();
    assert_eq!(problem(&report), (1, 1, ProblemKind::NoneAuthenticated));
    // With the anchor: record 10 is not the one that was there.
    let report = verify(&forged, None, Some(Anchor { seq: 10, link: Some(link) })).unwrap();
    assert_eq!(problem(&report), (10, 10, ProblemKind::AnchorMismatch));
    // Keeping the authenticated prefix and rewriting the tail as `h`: the first rewritten
    // record is named, with or without key and anchor.
    let rewritten = tampered(&dir, &path, "tail", |l| {
        for i in 7..10 {
            let changed = l[i].replace("\"result\":0", "\"result\":1");
            l[i] = relink_as_hash(&changed, &l[i - 1]);
        }
    });
    for (key, anchor) in
        [(None, None), (Some(key()), None), (Some(key()), Some(Anchor { seq: 10, link: Some(link) }))]
    {
        let report = verify(&rewritten, key.as_ref(), anchor).unwrap();
        assert_eq!(problem(&report), (8, 8, ProblemKind::Unauthenticated));
        assert_eq!(report.records, 7);
    }
}

#[test]
fn a_partially_written_last_line_is_reported_apart() {
    let dir = temp_dir("audit-partial");
    let (path, link) = ten_records(&dir);
    let partial = dir.path().join("partial.audit");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":11,\"time\":17643");
    std::fs::write(&partial, &bytes).unwrap();
    let report = verify(&partial, Some(&key()), Some(Anchor { seq: 10, link: Some(link) })).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.partial_last_line), (10, Some(11)));
    // The next append removes it and continues the chain.
    let log = Register::open(&partial).unwrap();
    log.set_key(Some(key()));
    assert_eq!(log.append(&Record::new("after", 0)).unwrap(), 11);
    let report = verify(&partial, Some(&key()), Some(Anchor { seq: 10, link: Some(link) })).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.partial_last_line), (11, None));
    // A cut inside an earlier record is no partial last line: record 10 is malformed.
    let cut = dir.path().join("cut-mid.audit");
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    let report = verify(&cut, Some(&key()), None).unwrap();
    assert!(report.is_intact());
    assert_eq!((report.records, report.partial_last_line), (9, Some(10)));
    let report = verify(&cut, Some(&key()), Some(Anchor { seq: 10, link: Some(link) })).unwrap();
    assert_eq!(problem(&report), (11, 10, ProblemKind::Truncated { anchor: 10 }));
}

/// time, principal, operation, key uid, key label.
type Row = (u64, &'static str, &'static str, Option<&'static str>, Option<&'static str>);

/// Records of several principals, keys, operations and times, for export.
fn varied(dir: &Dir) -> PathBuf {
    let path = dir.path().join("token-3.audit");
    let log = Register::open(&path).unwrap();
    let rows: [Row; 6] = [
        (1_000, "", "C_OpenSession", None, None),
        (2_000, "user", "login", None, None),
        (3_000, "user", "encrypt", Some("uid-1"), Some("dek-acme-v1")),
        (4_000, "context-api", "decrypt", Some("uid-2"), Some("dek-beta-v1")),
        (5_000, "context-api", "decrypt", Some("uid-3"), Some("label, with \"quotes\"")),
        (6_000, "so", "C_EncryptInit", Some("uid-1"), Some("dek-acme-v1")),
    ];
    for (time, principal, op, uid, label) in rows {
        let r = Record {
            time_ms: time,
            principal,
            session: 1,
            operation: op,
            key_uid: uid,
            key_label: label,
            key_version: uid.map(|_| 1),
            mechanism: uid.map(|_| CKM_AES_GCM),
            result: 0,
            segment: None,
            end: None,
            described_as: None,
            client: None,
        };
        log.append(&r).unwrap();
    }
    path
}

fn exported(path: &Path, filter: &Filter, format: Format) -> String {
    let mut out = Vec::new();
    audit::export(path, filter, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn seqs(jsonl: &str) -> Vec<u64> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn export_filters_records() {
    let dir = temp_dir("audit-export");
    let path = varied(&dir);
    let all = exported(&path, &Filter::default(), Format::Jsonl);
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6]);
    assert_eq!(all.lines().collect::<Vec<_>>(), lines(&path), "JSON lines are the stored lines");
    let f = |since_ms, principal: Option<&str>, key: Option<&str>, operation: Option<&str>| Filter {
        since_ms,
        principal: principal.map(Into::into),
        key: key.map(Into::into),
        operation: operation.map(Into::into),
    };
    let pick = |filter: Filter| seqs(&exported(&path, &filter, Format::Jsonl));
    assert_eq!(pick(f(Some(4_000), None, None, None)), [4, 5, 6]);
    assert_eq!(pick(f(None, Some("context-api"), None, None)), [4, 5]);
    assert_eq!(pick(f(None, Some(""), None, None)), [1]);
    assert_eq!(pick(f(None, None, Some("uid-1"), None)), [3, 6]);
    assert_eq!(pick(f(None, None, Some("dek-acme-v1"), None)), [3, 6]);
    assert_eq!(pick(f(None, None, Some("dek-*"), None)), [3, 4, 6]);
    assert_eq!(pick(f(None, None, Some("dek-?eta-v1"), None)), [4]);
    assert_eq!(pick(f(None, None, Some("dek"), None)), Vec::<u64>::new());
    assert_eq!(pick(f(None, None, None, Some("decrypt"))), [4, 5]);
    assert_eq!(pick(f(None, None, None, Some("C_*"))), [1, 6]);
    assert_eq!(pick(f(Some(3_000), Some("user"), Some("dek-*"), Some("encrypt"))), [3]);
}

#[test]
fn export_csv_has_a_header_and_quotes_fields() {
    let dir = temp_dir("audit-csv");
    let path = varied(&dir);
    let csv = exported(&path, &Filter::default(), Format::Csv);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0], audit::export::CSV_HEADER);
    assert!(rows[1].starts_with("1,,1000,,"), "{}", rows[1]);
    assert!(rows[3].starts_with("3,,3000,user,"), "{}", rows[3]);
    assert!(rows[3].contains(",encrypt,uid-1,dek-acme-v1,1,0x00001087,0x00000000,h,"), "{}", rows[3]);
    assert!(rows[5].contains(",\"label, with \"\"quotes\"\"\",1,"), "{}", rows[5]);
    // Every row has the header's columns (counted outside quotes).
    let columns = |row: &str| {
        let mut quoted = false;
        1 + row
            .chars()
            .filter(|c| {
                if *c == '"' {
                    quoted = !quoted;
                }
                *c == ',' && !quoted
            })
            .count()
    };
    for row in &rows {
        assert_eq!(columns(row), 17, "{row}");
    }
}

#[test]
fn export_names_a_line_that_is_not_a_record() {
    let dir = temp_dir("audit-export-bad");
    let path = varied(&dir);
    let bad = tampered(&dir, &path, "bad.audit", |l| l[2] = "nonsense".into());
    let mut out = Vec::new();
    let e = audit::export(&bad, &Filter::default(), Format::Jsonl, &mut out).unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
}

// The admin tool.

/// A token directory with a token (slot 0), and the token's audit key obtained as the CLI
/// does: through the module, logged in. The module's own records are off here (`audit =
/// false`), so that the file holds only what each test writes; tests/audit_module_calls.rs
/// checks what the module records.
struct Hsm {
    dir: Dir,
}

impl Hsm {
    fn new(tag: &str) -> Hsm {
        let dir = temp_dir(tag);
        write_test_config(dir.path(), "audit = false\n");
        let hsm = Hsm { dir };
        let out = hsm.run(&["init", "--label", "audited"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        hsm.forget_audit_off_notes();
        hsm
    }

    /// Removes the register: with auditing off, a process still says so in it (`audit_off`,
    /// `ecm_hsm::audit::switch`), and each test here writes the records it checks itself.
    fn forget_audit_off_notes(&self) {
        let _ = std::fs::remove_file(self.path());
    }

    fn module(&self) -> Module {
        let toml = self.dir.path().join("ecm-hsm.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        Module::new(Config::from_toml(self.dir.path().to_path_buf(), &text, &toml).unwrap()).unwrap()
    }

    fn audit_key(&self) -> AuditKey {
        let module = self.module();
        let session = module.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
        assert!(matches!(module.audit_key(session), Err(ecm_hsm::Error::UserNotLoggedIn)));
        module.login(session, CKU_USER, USER_PIN.as_bytes()).unwrap();
        let key = module.audit_key(session).unwrap();
        module.close_session(session).unwrap();
        // This process noted auditing off (once per process: not again).
        self.forget_audit_off_notes();
        key
    }

    fn path(&self) -> PathBuf {
        audit::path_for(self.dir.path(), 0)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("ECM_HSM_DIR", self.dir.path())
            .env_remove("ECM_HSM_CONF")
            .env("ECM_HSM_PIN", USER_PIN)
            .env_remove("ECM_HSM_SO_PIN")
            .env("ECM_HSM_NEW_PIN", USER_PIN)
            .stdin(Stdio::null());
        if args.first() == Some(&"init") {
            c.env("ECM_HSM_SO_PIN", SO_PIN);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn cli_verify_and_export() {
    let hsm = Hsm::new("audit-cli");
    let key = hsm.audit_key();
    // The key is the token's: the same in another login.
    assert_eq!(*key, *hsm.audit_key());
    let log = Register::open(&hsm.path()).unwrap();
    log.append(&Record::new("C_OpenSession", 0)).unwrap();
    log.set_key(Some(key));
    for op in ["login", "encrypt", "decrypt", "logout"] {
        let mut r = Record::new(op, 0);
        r.principal = "user";
        r.key_label = Some("dek-acme-v1");
        log.append(&r).unwrap();
    }
    let (_, head) = log.head().unwrap();
    let head_hex = hex::encode(head);

    let out = hsm.run(&["audit", "verify"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // The CLI's process runs with auditing off (this fixture): it says so, authenticated
    // once it has logged in (and hash-linked before, if a call came first): records 6 on,
    // which verify shows as a gap.
    let now = lines(&hsm.path());
    let n = now.len();
    assert!((6..=7).contains(&n) && now[5..].iter().all(|l| l.contains("\"audit_off\"")), "{now:?}");
    assert!(
        stdout.contains(&format!(
            "audit: {n} records ({n} in the register, the rest in 0 segments, 0 of them closed), chain intact (5 authenticated)"
        )),
        "{stdout}"
    );
    assert!(
        text(&out.stderr)
            .contains("auditing was turned off (audit = false) from register record 6 and is still off"),
        "{}",
        text(&out.stderr)
    );
    assert!(stdout.contains(&format!("--expect-seq {n} --expect-link ")), "{stdout}");
    // As the SO.
    let out = hsm.run(&["audit", "verify"], &[("ECM_HSM_SO_PIN", SO_PIN)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // With the anchor it printed, and with one beyond the end.
    let out = hsm.run(&["audit", "verify", "--expect-seq", "5", "--expect-link", &head_hex], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let beyond = lines(&hsm.path()).len() + 3;
    let out = hsm.run(&["audit", "verify", "--expect-seq", &beyond.to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("ends before record {beyond}")), "{}", text(&out.stderr));
    // Bad arguments: usage errors.
    let out = hsm.run(&["audit", "verify", "--expect-link", &head_hex], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = hsm.run(&["audit", "verify", "--expect-seq", "5", "--expect-link", "xyz"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("64 hex digits"), "{}", text(&out.stderr));
    // A wrong PIN: refused, nothing verified.
    let out = hsm.run(&["audit", "verify"], &[("ECM_HSM_PIN", "wrong-pin-9")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());

    // Export.
    let out = hsm.run(&["audit", "export", "--format", "csv", "--operation", "*crypt"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("seq,segment,time_ms,principal,"));
    let out = hsm.run(&["audit", "export", "--since", "2000-01-01T00:00:00Z", "--principal", "user"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4);
    let out = hsm.run(&["audit", "export", "--since", "1764322200000000000000"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = hsm.run(&["audit", "export", "--since", "2026-11-28 10:00"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("YYYY-MM-DD"), "{}", text(&out.stderr));
    let out = hsm.run(&["audit", "export", "--format", "xml"], &[]);
    assert_eq!(out.status.code(), Some(2));

    // An edited record is named.
    let before = std::fs::read(hsm.path()).unwrap();
    let mut l = lines(&hsm.path());
    l[2] = l[2].replace("\"encrypt\"", "\"decrypt\"");
    write_lines(&hsm.path(), &l);
    let out = hsm.run(&["audit", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("NOT intact") && stderr.contains("record 3: bad MAC"), "{stderr}");
    assert!(out.stdout.is_empty());
    // Verify changes nothing of what was there (its own process notes auditing off after it).
    std::fs::write(hsm.path(), &before).unwrap();
    let out = hsm.run(&["audit", "verify"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = std::fs::read(hsm.path()).unwrap();
    assert!(after.starts_with(&before));
    assert!(
        lines(&hsm.path())[before.iter().filter(|b| **b == b'\n').count()..]
            .iter()
            .all(|l| l.contains("\"audit_off\""))
    );
}
