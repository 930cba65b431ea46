//! The audit trail as the module writes it (`ecm_hsm::audit::trail`): the register and one
//! segment per process. What a single chain shows is tested in audit_chain_tamper_and_cli.rs; here, what
//! the register adds — a deleted, added, or cut-short segment is named — and what the
//! linking of records off the caller's path leaves: an unlinked tail, reported apart, and
//! never an unlinked record before a linked one.
mod common;

use std::path::{Path, PathBuf};

use common::audit::{lines, temp_dir, test_key, wait_until, write_lines};
use ecm_hsm::audit::{
    self, AuditKey, AuditLog, Filter, Format, OpenOptions, ProblemKind, Record, TrailProblemKind, TrailReport,
};

type Dir = tempfile::TempDir;

fn key() -> AuditKey {
    test_key()
}

/// Records linked as they are written (no thread), so that each test sees whole links.
fn inline() -> OpenOptions {
    OpenOptions { threads: false, ..OpenOptions::default() }
}

fn record(op: &str) -> Record<'_> {
    let mut r = Record::new(op, 0);
    r.principal = "user";
    r.key_label = Some("dek-acme-v1");
    r
}

/// A trail with a closed segment of 5 records (segment 1) and an open one of 3 (segment 3,
/// opened by the register's third record), still held by the returned log.
fn two_segments(tag: &str) -> (Dir, PathBuf, AuditLog) {
    let dir = temp_dir(tag);
    let path = dir.path().join("token-0.audit");
    let log = AuditLog::open_with(&path, inline()).unwrap();
    log.set_key(Some(key()));
    for op in ["login", "encrypt", "encrypt", "decrypt", "logout"] {
        log.append(&record(op)).unwrap();
    }
    assert_eq!(log.segment(), Some(1));
    log.close().unwrap();
    for op in ["login", "decrypt", "decrypt"] {
        log.append(&record(op)).unwrap();
    }
    assert_eq!(log.segment(), Some(3));
    (dir, path, log)
}

fn segment(path: &Path, n: u64) -> PathBuf {
    audit::segment_dir(path).join(format!("segment-{n}.jsonl"))
}

fn verify(path: &Path) -> TrailReport {
    audit::verify_trail(path, Some(&key()), None).unwrap()
}

fn problem(report: &TrailReport) -> (String, TrailProblemKind) {
    let p = report.problem.clone().unwrap_or_else(|| panic!("no problem found: {report:?}"));
    (p.file, p.kind)
}

#[test]
fn a_whole_trail_verifies_and_exports_in_time_order() {
    let (_dir, path, log) = two_segments("trail-whole");
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    // Register: open 1, close 1, open 3. Segments: 5 + 3.
    assert_eq!((report.register.records, report.segments, report.closed_segments), (3, 2, 1));
    assert_eq!((report.records, report.authenticated, report.unlinked), (11, 11, 0));
    let mut out = Vec::new();
    assert_eq!(audit::export_trail(&path, &Filter::default(), Format::Jsonl, &mut out).unwrap(), 11);
    let ops: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["operation"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ops.iter().filter(|o| o.starts_with("segment_")).count(), 3);
    let calls: Vec<&str> = ops.iter().map(String::as_str).filter(|o| !o.starts_with("segment_")).collect();
    assert_eq!(calls, ["login", "encrypt", "encrypt", "decrypt", "logout", "login", "decrypt", "decrypt"]);
    // A clean close links the rest and closes the segment in the register.
    drop(log);
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.segments, report.closed_segments, report.register.records), (2, 2, 4));
}

#[test]
fn a_deleted_segment_is_named() {
    let (_dir, path, _log) = two_segments("trail-deleted");
    std::fs::remove_file(segment(&path, 1)).unwrap();
    let (file, kind) = problem(&verify(&path));
    assert_eq!(file, "token-0.audit.d/segment-1.jsonl");
    assert_eq!(kind, TrailProblemKind::Missing { segment: 1 });
}

#[test]
fn an_added_segment_is_named_and_an_empty_stray_only_noted() {
    let (_dir, path, _log) = two_segments("trail-added");
    // A file of zeros (a writer killed while opening its segment) holds nothing.
    std::fs::write(audit::segment_dir(&path).join("segment-7.jsonl"), vec![0u8; 4096]).unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.empty_strays, ["token-0.audit.d/segment-7.jsonl"]);
    // A file with records the register never opened.
    let copied = lines(&segment(&path, 1));
    write_lines(&audit::segment_dir(&path).join("segment-9.jsonl"), &copied);
    let (file, kind) = problem(&verify(&path));
    assert_eq!(file, "token-0.audit.d/segment-9.jsonl");
    assert_eq!(kind, TrailProblemKind::Unregistered);
}

#[test]
fn a_closed_segment_cut_short_or_extended_is_named() {
    let (_dir, path, _log) = two_segments("trail-cut");
    let whole = lines(&segment(&path, 1));
    assert_eq!(whole.len(), 5);
    write_lines(&segment(&path, 1), &whole[..4]);
    let (file, kind) = problem(&verify(&path));
    assert_eq!(file, "token-0.audit.d/segment-1.jsonl");
    assert_eq!(kind, TrailProblemKind::EndMismatch { closed_at: 5, ends_at: 4 });
    let message = verify(&path).problem.unwrap().to_string();
    assert!(message.contains("truncated"), "{message}");
    // Emptied entirely.
    write_lines(&segment(&path, 1), &[]);
    assert_eq!(problem(&verify(&path)).1, TrailProblemKind::EndMismatch { closed_at: 5, ends_at: 0 });
    // Whole again, then a record of the open segment appended to it.
    let mut extended = whole.clone();
    extended.push(lines(&segment(&path, 3))[0].clone());
    write_lines(&segment(&path, 1), &extended);
    assert!(matches!(problem(&verify(&path)).1, TrailProblemKind::Record(_)));
    write_lines(&segment(&path, 1), &whole);
    assert!(verify(&path).is_intact());
}

#[test]
fn an_edited_record_in_a_segment_is_named_with_its_file() {
    let (_dir, path, _log) = two_segments("trail-edit");
    let mut l = lines(&segment(&path, 3));
    l[1] = l[1].replace("\"decrypt\"", "\"encrypt\"");
    write_lines(&segment(&path, 3), &l);
    let (file, kind) = problem(&verify(&path));
    assert_eq!(file, "token-0.audit.d/segment-3.jsonl");
    let TrailProblemKind::Record(p) = kind else { panic!("{kind:?}") };
    assert_eq!((p.line, p.seq, p.kind), (2, 2, ProblemKind::BadMac));
    // Without the key, the MAC of a `g` record cannot be checked: counted, unchecked.
    let report = audit::verify_trail(&path, None, None).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.unchecked, report.records);
}

#[test]
fn a_segment_moved_under_another_number_is_caught() {
    let (_dir, path, log) = two_segments("trail-moved");
    drop(log);
    // Swap the two segments' files: each first record is chained to another opening.
    let (one, three) = (segment(&path, 1), segment(&path, 3));
    let tmp = one.with_extension("tmp");
    std::fs::rename(&one, &tmp).unwrap();
    std::fs::rename(&three, &one).unwrap();
    std::fs::rename(&tmp, &three).unwrap();
    let (file, kind) = problem(&verify(&path));
    assert_eq!(file, "token-0.audit.d/segment-1.jsonl");
    assert!(matches!(kind, TrailProblemKind::Record(ref p) if p.kind == ProblemKind::BadMac), "{kind:?}");
}

/// What a writer killed before linking leaves: its last records unlinked.
fn unlink(line: &str) -> String {
    let link_at = line.find("\"link\":\"").unwrap() + 8;
    let digits = line.len() - 2 - link_at;
    let mut s = line.to_owned();
    s.replace_range(link_at..link_at + digits, &"-".repeat(digits));
    s
}

#[test]
fn an_unlinked_tail_is_reported_apart_and_an_unlinked_record_before_a_linked_one_is_caught() {
    let (_dir, path, log) = two_segments("trail-unlinked");
    let open = segment(&path, 3);
    let mut l = lines(&open);
    l[2] = unlink(&l[2]);
    write_lines(&open, &l);
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.unlinked, report.authenticated), (11, 1, 10));
    // In a closed segment there is nothing to link later.
    let closed = segment(&path, 1);
    let mut c = lines(&closed);
    let whole = c.clone();
    c[4] = unlink(&c[4]);
    write_lines(&closed, &c);
    assert!(matches!(problem(&verify(&path)).1, TrailProblemKind::EndMismatch { closed_at: 5, ends_at: 5 }));
    write_lines(&closed, &whole);
    // An unlinked record in the middle: records are linked in order, so this was forged.
    let mut l = lines(&open);
    l[0] = unlink(&l[0]);
    write_lines(&open, &l);
    let TrailProblemKind::Record(p) = problem(&verify(&path)).1 else { panic!() };
    assert_eq!((p.line, p.kind), (2, ProblemKind::Malformed("a linked record after an unlinked one")));
    drop(log);
}

#[test]
fn records_are_linked_by_the_thread_soon_after_and_all_at_close() {
    let dir = temp_dir("trail-thread");
    let path = dir.path().join("token-0.audit");
    let log = AuditLog::open(&path).unwrap();
    log.set_key(Some(key()));
    for _ in 0..1000 {
        log.append(&record("encrypt")).unwrap();
    }
    // Linked by the thread, without another call (within milliseconds on an idle machine;
    // the deadline is for a loaded one).
    wait_until("records linked by the linking thread", || {
        let report = verify(&path);
        assert!(report.is_intact(), "{report:?}");
        if report.unlinked == 0 { Ok(()) } else { Err(report.unlinked) }
    });
    assert_eq!(verify(&path).records, 1001);
    log.append(&record("decrypt")).unwrap();
    drop(log);
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.unlinked, report.closed_segments), (1003, 0, 1));
    // Cut to its records.
    assert_eq!(std::fs::read(segment(&path, 1)).unwrap().last(), Some(&b'\n'));
}

#[test]
fn threads_of_a_process_write_to_their_own_segments_and_all_verify() {
    let dir = temp_dir("trail-stripes");
    let path = dir.path().join("token-0.audit");
    let log = std::sync::Arc::new(AuditLog::open(&path).unwrap());
    log.set_key(Some(key()));
    let segments: Vec<u64> = (0..2)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    log.append(&record("encrypt")).unwrap();
                }
                log.segment().unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    if log.stripes() >= 2 {
        assert_ne!(segments[0], segments[1], "two threads, two stripes");
    }
    drop(std::sync::Arc::try_unwrap(log).ok().unwrap());
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records - report.register.records, 1000);
    assert_eq!(report.segments, report.closed_segments);
}

#[test]
fn an_export_merges_many_segments_in_time_order_opening_only_those_it_reaches() {
    // Two "processes" on one trail: one writes a long segment all along, the other opens,
    // writes and closes 150 short ones after one another, their times interleaved with
    // the long one's.
    let dir = temp_dir("trail-many");
    let path = dir.path().join("token-0.audit");
    let long = AuditLog::open_with(&path, inline()).unwrap();
    let short = AuditLog::open_with(&path, inline()).unwrap();
    long.set_key(Some(key()));
    short.set_key(Some(key()));
    let base = audit::record::now_ms() - 10_000_000;
    let at = |op, time_ms| Record { time_ms, ..record(op) };
    for i in 0..150u64 {
        long.append(&at("encrypt", base + i * 10)).unwrap();
        short.append(&at("login", base + i * 10 + 1)).unwrap();
        short.append(&at("decrypt", base + i * 10 + 2)).unwrap();
        short.close().unwrap();
    }
    long.close().unwrap();
    assert!(verify(&path).is_intact());
    // Exported by the admin tool with room for a few dozen open files: the register, the
    // long segment and one short one at a time are open, never the 151 segments at once.
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 32 && exec \"$0\" audit export --archived \"$1\""])
        .args([env!("CARGO_BIN_EXE_ecm-hsm"), path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let calls: Vec<(u64, &str)> = records
        .iter()
        .filter(|r| !r["operation"].as_str().unwrap().starts_with("segment_"))
        .map(|r| (r["time"].as_u64().unwrap() - base, r["operation"].as_str().unwrap()))
        .collect();
    let expected: Vec<(u64, &str)> = (0..150)
        .flat_map(|i| [(i * 10, "encrypt"), (i * 10 + 1, "login"), (i * 10 + 2, "decrypt")])
        .collect();
    assert_eq!(calls, expected);
    // Every record once, the register's too (151 segments opened and closed).
    assert_eq!(records.len(), 450 + 2 * 151);
    let times: Vec<u64> = records.iter().map(|r| r["time"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // A filter applies while streaming.
    let mut out = Vec::new();
    let filter = Filter { operation: Some("decrypt".into()), ..Filter::default() };
    assert_eq!(audit::export_trail(&path, &filter, Format::Jsonl, &mut out).unwrap(), 150);
}

#[test]
fn repeated_operations_are_stored_as_short_repeats_and_read_back_whole() {
    let dir = temp_dir("trail-repeats");
    let path = dir.path().join("token-0.audit");
    let log = AuditLog::open_with(&path, inline()).unwrap();
    log.set_key(Some(key()));
    let ops: Vec<&str> =
        ["login"].into_iter().chain(["encrypt"; 40]).chain(["decrypt"; 10]).chain(["encrypt"; 5]).collect();
    for op in &ops {
        log.append(&record(op)).unwrap();
    }
    // Stored: each change of operation in full, the records after it as repeats of it.
    let stored = lines(&segment(&path, 1));
    let repeats: Vec<&String> = stored.iter().filter(|l| l.contains("\"as\":")).collect();
    assert_eq!(repeats.len(), 39 + 9 + 4);
    assert!(stored[2].contains("\"as\":2,") && stored[42].contains("\"as\":42,"), "{}", stored[42]);
    let full_len = stored[1].len();
    assert!(
        repeats.iter().all(|l| !l.contains("principal") && l.len() * 10 < full_len * 7),
        "{}",
        repeats[0]
    );
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, ops.len() as u64 + 1);

    // Exported, every record stands whole (no `as`), as if written in full.
    let mut out = Vec::new();
    audit::export_trail(&path, &Filter::default(), Format::Jsonl, &mut out).unwrap();
    let exported: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let calls: Vec<&serde_json::Value> =
        exported.iter().filter(|e| e["operation"] != "segment_open").collect();
    assert_eq!(calls.iter().map(|e| e["operation"].as_str().unwrap()).collect::<Vec<_>>(), ops);
    for e in &calls {
        assert!(e.get("as").is_none(), "{e}");
        assert_eq!(
            (e["principal"].as_str(), e["key_label"].as_str()),
            (Some("user"), Some("dek-acme-v1")),
            "{e}"
        );
        assert_eq!(e["pid"].as_u64(), Some(u64::from(std::process::id())));
    }
    let mut csv = Vec::new();
    let filter = Filter { operation: Some("encrypt".into()), ..Filter::default() };
    assert_eq!(audit::export_trail(&path, &filter, Format::Csv, &mut csv).unwrap(), 45);
    assert!(
        String::from_utf8(csv)
            .unwrap()
            .lines()
            .skip(1)
            .all(|l| l.contains(",user,") && l.contains(",encrypt,"))
    );

    // A repeat made to name another record is refused as malformed; the record a repeat
    // names, edited, fails its MAC (and so would every repeat of it, were they checked).
    let mut renamed = stored.clone();
    renamed[2] = renamed[2].replace("\"as\":2,", "\"as\":1,");
    let mut edited = stored.clone();
    edited[1] = edited[1].replace("\"operation\":\"encrypt\"", "\"operation\":\"decrypt\"");
    for (lines_now, line, malformed) in [(renamed, 3, true), (edited, 2, false)] {
        write_lines(&segment(&path, 1), &lines_now);
        let (file, kind) = problem(&verify(&path));
        assert_eq!(file, "token-0.audit.d/segment-1.jsonl");
        let TrailProblemKind::Record(p) = kind else { panic!("{kind:?}") };
        assert_eq!(p.line, line, "{p:?}");
        assert_eq!(matches!(p.kind, ProblemKind::Malformed(_)), malformed, "{p:?}");
        assert_eq!(matches!(p.kind, ProblemKind::BadMac), !malformed, "{p:?}");
    }
    write_lines(&segment(&path, 1), &stored);
    assert!(verify(&path).is_intact());
    drop(log);
}
