//! Several processes sharing one token directory, and processes killed mid-write.
//!
//! Each test is a coordinator that spawns worker processes of this same test binary (the
//! test re-run with `--exact` and `ECM_WORKER=<role>`), all pointed at one shared token
//! directory. Workers talk back through stdout lines prefixed with `> `; the coordinator
//! never loads the module itself, so the tests stay independent of each other.
//!
//! Every PKCS#11 call a worker makes on its own objects must return CKR_OK: a busy store is
//! to be waited for by the module (busy_timeout_ms = 20000 in the test configuration), never
//! reported.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use common::*;
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

const WORKER_ENV: &str = "ECM_WORKER";

const CRUD_TEST: &str = "two_processes_with_two_threads_create_find_destroy_token_objects";
const KILL_TEST: &str = "kill_9_during_writes_loses_no_acknowledged_object_and_leaves_none_half_made";
const VISIBILITY_TEST: &str = "token_changes_by_one_process_are_seen_by_another_running_process";

/// Iterations of create/find/read/destroy/find per thread (two threads per process).
const CRUD_ITERATIONS: usize = 200;
/// Long-lived objects each CRUD worker creates first, for the other worker to find.
const LONG_LIVED: usize = 3;
const KILL_ROUNDS: usize = 5;
const KILL_AFTER: Duration = Duration::from_millis(300);
const PROTOCOL_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Coordinator side: the shared directory and worker processes.
// ---------------------------------------------------------------------------------------

/// The worker role of this process, if it is a worker.
fn worker_role() -> Option<String> {
    std::env::var(WORKER_ENV).ok()
}

/// A token directory shared by the workers of one test, removed at the end.
struct SharedDir(PathBuf);

impl SharedDir {
    /// A fresh directory with the test configuration and an initialized token (made by a
    /// `setup` worker, as every module call happens in a worker).
    fn with_token(test: &str) -> SharedDir {
        let dir = SharedDir(fresh_dir("conc"));
        write_test_config(&dir.0, "");
        let out = run_worker(test, &dir.0, "setup");
        assert!(out.contains("> SETUP DONE"), "setup worker did not finish:\n{out}");
        dir
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn worker_command(test: &str, dir: &Path, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test executable"));
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("ECM_HSM_TEST_CHILD", "1")
        .env("ECM_HSM_DIR", dir)
        .env_remove("ECM_HSM_CONF")
        .env(WORKER_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs a worker to completion; its stdout, after asserting it succeeded.
fn run_worker(test: &str, dir: &Path, role: &str) -> String {
    let out = worker_command(test, dir, role).output().expect("spawn worker");
    check_worker_output(role, out)
}

fn check_worker_output(role: &str, out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "worker `{role}` failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    stdout
}

/// The protocol lines (`> ...`) of a worker's output, without the prefix.
fn protocol_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter_map(|l| l.strip_prefix("> ")).collect()
}

/// Collects a child's stdout lines through a channel and its stderr into a string.
fn stream_output(child: &mut Child) -> (Receiver<String>, thread::JoinHandle<String>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (rx, errors)
}

// ---------------------------------------------------------------------------------------
// Worker side.
// ---------------------------------------------------------------------------------------

/// Prints one protocol line and flushes it at once (a worker may be killed any time).
fn say(line: &str) {
    static FIRST: std::sync::Once = std::sync::Once::new();
    let mut out = std::io::stdout().lock();
    // The test harness has printed `test <name> ... ` without a newline: end that line.
    FIRST.call_once(|| writeln!(out).expect("stdout"));
    writeln!(out, "> {line}").expect("stdout");
    out.flush().expect("flush stdout");
}

/// Fails the worker on any error: a busy store must be waited for, not reported.
fn ok<T>(what: &str, r: cryptoki::error::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{what} failed (pid {}): {e:?}", std::process::id()))
}

fn label_of(s: &Session, h: ObjectHandle) -> cryptoki::error::Result<Option<Vec<u8>>> {
    Ok(s.get_attributes(h, &[AttributeType::Label])?.into_iter().find_map(|a| match a {
        Attribute::Label(l) => Some(l),
        _ => None,
    }))
}

fn value_of(s: &Session, h: ObjectHandle) -> cryptoki::error::Result<Option<Vec<u8>>> {
    Ok(s.get_attributes(h, &[AttributeType::Value])?.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(v),
        _ => None,
    }))
}

fn find_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    ok("C_FindObjects by label", s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]))
}

fn data_template(label: &str, value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

/// Initializes the shared token (SO and user PINs).
fn setup_worker() {
    let (p, _slot) = load_with_token();
    drop(p);
    say("SETUP DONE");
}

// ---------------------------------------------------------------------------------------
// 1. Two processes × two threads: create, find, read, destroy, find.
// ---------------------------------------------------------------------------------------

fn crud_value(label: &str) -> Vec<u8> {
    format!("value of {label}").into_bytes()
}

fn long_lived_label(worker: &str, i: usize) -> String {
    format!("long-{worker}-{i}")
}

/// What the threads of one worker share.
struct CrudShared {
    /// Handles this process saw destroyed (acknowledged); handles are never reused.
    destroyed: Mutex<HashSet<u64>>,
    /// The other worker's long-lived objects seen so far.
    seen_other: Mutex<BTreeSet<String>>,
    violations: Mutex<Vec<String>>,
}

impl CrudShared {
    fn violation(&self, v: String) {
        say(&format!("VIOLATION {v}"));
        self.violations.lock().unwrap().push(v);
    }
}

fn crud_worker(me: &str, other: &str) {
    let p = load();
    let slot = first_slot(&p);
    // The login is the token's, shared by every session of this process.
    let login = user_session(&p, slot);
    for i in 0..LONG_LIVED {
        let label = long_lived_label(me, i);
        let h = ok("create long-lived", login.create_object(&data_template(&label, &crud_value(&label))));
        say(&format!("CREATED {label} {}", h.handle()));
    }
    let shared = Arc::new(CrudShared {
        destroyed: Mutex::new(HashSet::new()),
        seen_other: Mutex::new(BTreeSet::new()),
        violations: Mutex::new(Vec::new()),
    });
    // Start the loops together: wait until the other worker's long-lived objects (made
    // first thing) are visible, so that both processes really work at the same time.
    wait_for_other(&login, other, &shared);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (p, shared, me, other) = (p.clone(), shared.clone(), me.to_string(), other.to_string());
            thread::spawn(move || crud_thread(&p, slot, &me, &other, t, &shared))
        })
        .collect();
    for t in threads {
        t.join().expect("a worker thread failed");
    }

    for label in shared.seen_other.lock().unwrap().iter() {
        say(&format!("SAW-OTHER {label}"));
    }
    drop(login);
    say("DONE");
}

/// Polls until every long-lived object of `other` has been found (once each), for 30 s at most.
fn wait_for_other(s: &Session, other: &str, shared: &CrudShared) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for i in 0..LONG_LIVED {
            let label = long_lived_label(other, i);
            match find_label(s, &label).len() {
                0 => {}
                1 => {
                    shared.seen_other.lock().unwrap().insert(label);
                }
                n => shared.violation(format!("{label} found with {n} handles")),
            }
        }
        if shared.seen_other.lock().unwrap().len() == LONG_LIVED || Instant::now() > deadline {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn crud_thread(p: &Pkcs11, slot: Slot, me: &str, other: &str, t: usize, shared: &CrudShared) {
    let s = ok("C_OpenSession", p.open_rw_session(slot));
    for i in 0..CRUD_ITERATIONS {
        let label = format!("{me}-{t}-{i}");
        let value = crud_value(&label);
        let h = ok("C_CreateObject", s.create_object(&data_template(&label, &value)));
        say(&format!("CREATED {label} {}", h.handle()));

        let found = find_label(&s, &label);
        if found != vec![h] {
            shared.violation(format!("{label} (handle {}) found as {found:?}", h.handle()));
        }
        let read = ok("C_GetAttributeValue", value_of(&s, h));
        if read.as_deref() != Some(&value[..]) {
            shared.violation(format!("{label} read back as {read:?}"));
        }
        ok("C_DestroyObject", s.destroy_object(h));
        shared.destroyed.lock().unwrap().insert(h.handle());
        say(&format!("DESTROYED {label}"));
        let found = find_label(&s, &label);
        if !found.is_empty() {
            shared.violation(format!("{label} found after its destroy: {found:?}"));
        }

        if i % 10 == 0 {
            scan(&s, other, shared);
        }
    }
}

/// Looks at every data object: none destroyed before the search began may be returned, no
/// handle twice, and no object (label) under two handles.
fn scan(s: &Session, other: &str, shared: &CrudShared) {
    let destroyed_before = shared.destroyed.lock().unwrap().clone();
    let found = ok("C_FindObjects (all data)", s.find_objects(&[Attribute::Class(ObjectClass::DATA)]));
    let mut handles = HashSet::new();
    let mut labels: HashMap<Vec<u8>, u64> = HashMap::new();
    for h in found {
        if destroyed_before.contains(&h.handle()) {
            shared.violation(format!("search returned handle {} destroyed before it began", h.handle()));
        }
        if !handles.insert(h.handle()) {
            shared.violation(format!("search returned handle {} twice", h.handle()));
        }
        let label = match label_of(s, h) {
            Ok(Some(l)) => l,
            Ok(None) => {
                shared.violation(format!("object {} has no label", h.handle()));
                continue;
            }
            // Destroyed by another thread or process between the search and this read:
            // the one error that is legitimate here.
            Err(Error::Pkcs11(RvError::ObjectHandleInvalid, _)) => continue,
            Err(e) => panic!("C_GetAttributeValue(label) failed: {e:?}"),
        };
        if let Some(first) = labels.insert(label.clone(), h.handle()) {
            shared.violation(format!(
                "object {} found under two handles: {first} and {}",
                String::from_utf8_lossy(&label),
                h.handle()
            ));
        }
        let text = String::from_utf8_lossy(&label).into_owned();
        if (0..LONG_LIVED).any(|i| long_lived_label(other, i) == text) {
            shared.seen_other.lock().unwrap().insert(text);
        }
    }
}

/// Lists every object of the token as `OBJ <label> <handle> <value ok>`.
fn dump_worker() {
    let p = load();
    let slot = first_slot(&p);
    let s = user_session(&p, slot);
    for h in ok("C_FindObjects (all)", s.find_objects(&[])) {
        let label = ok("read label", label_of(&s, h)).expect("every object has a label");
        let label = String::from_utf8(label).expect("labels are UTF-8");
        let value = ok("read value", value_of(&s, h));
        let good = value.as_deref() == Some(&crud_value(&label)[..]);
        say(&format!("OBJ {label} {} {good}", h.handle()));
    }
}

#[derive(Default, Debug)]
struct CrudReport {
    created: Vec<String>,
    destroyed: Vec<String>,
    saw_other: BTreeSet<String>,
    violations: Vec<String>,
    done: bool,
}

fn parse_crud(stdout: &str) -> CrudReport {
    let mut r = CrudReport::default();
    for line in protocol_lines(stdout) {
        let mut words = line.split(' ');
        match words.next() {
            Some("CREATED") => r.created.push(words.next().unwrap().to_string()),
            Some("DESTROYED") => r.destroyed.push(words.next().unwrap().to_string()),
            Some("SAW-OTHER") => {
                r.saw_other.insert(words.next().unwrap().to_string());
            }
            Some("VIOLATION") => r.violations.push(line.to_string()),
            Some("DONE") => r.done = true,
            _ => {}
        }
    }
    r
}

#[test]
fn two_processes_with_two_threads_create_find_destroy_token_objects() {
    if let Some(role) = worker_role() {
        match role.as_str() {
            "setup" => setup_worker(),
            "A" => crud_worker("A", "B"),
            "B" => crud_worker("B", "A"),
            "dump" => dump_worker(),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let dir = SharedDir::with_token(CRUD_TEST);
    let workers: Vec<_> = ["A", "B"]
        .into_iter()
        .map(|role| {
            let child = worker_command(CRUD_TEST, &dir.0, role).spawn().expect("spawn worker");
            thread::spawn(move || (role, child.wait_with_output().expect("worker output")))
        })
        .collect();
    let mut reports = BTreeMap::new();
    for w in workers {
        let (role, out) = w.join().unwrap();
        reports.insert(role, parse_crud(&check_worker_output(role, out)));
    }

    let mut all_destroyed = HashSet::new();
    let mut expected_alive = BTreeMap::new();
    for (role, other) in [("A", "B"), ("B", "A")] {
        let r = &reports[role];
        assert!(r.done, "worker {role} did not finish");
        assert!(r.violations.is_empty(), "worker {role} saw:\n{}", r.violations.join("\n"));
        assert_eq!(r.created.len(), 2 * CRUD_ITERATIONS + LONG_LIVED, "worker {role}'s acknowledged creates");
        assert_eq!(r.destroyed.len(), 2 * CRUD_ITERATIONS, "worker {role}'s acknowledged destroys");
        let expected_seen: BTreeSet<String> = (0..LONG_LIVED).map(|i| long_lived_label(other, i)).collect();
        assert_eq!(r.saw_other, expected_seen, "worker {role} must find the other process's objects");
        let destroyed: HashSet<&String> = r.destroyed.iter().collect();
        for label in &r.created {
            if !destroyed.contains(label) {
                expected_alive.insert(label.clone(), 0usize);
            }
        }
        all_destroyed.extend(r.destroyed.iter().cloned());
    }

    // A fresh process opens the token and finds exactly the survivors, once each.
    let dump = run_worker(CRUD_TEST, &dir.0, "dump");
    let mut handles = HashSet::new();
    let mut unexpected = Vec::new();
    for line in protocol_lines(&dump) {
        let Some(rest) = line.strip_prefix("OBJ ") else { continue };
        let [label, handle, good] = rest.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad dump line {line}")
        };
        assert!(handles.insert(handle.to_string()), "handle {handle} listed twice");
        assert_eq!(good, "true", "{label} has a wrong value");
        assert!(!all_destroyed.contains(label), "{label} was acknowledged destroyed but is still there");
        match expected_alive.get_mut(label) {
            Some(n) => *n += 1,
            None => unexpected.push(label.to_string()),
        }
    }
    assert!(unexpected.is_empty(), "objects nobody acknowledged: {unexpected:?}");
    for (label, n) in &expected_alive {
        assert_eq!(*n, 1, "{label} (created, never destroyed) must exist exactly once");
    }
}

// ---------------------------------------------------------------------------------------
// 2. kill -9 during writes.
// ---------------------------------------------------------------------------------------

/// The 32-byte AES key a writer stores under `label`.
fn key_value(label: &str) -> Vec<u8> {
    digest(&SHA256, label.as_bytes()).as_ref().to_vec()
}

fn kill_data_value(label: &str) -> Vec<u8> {
    format!("data object {label} ").repeat(8).into_bytes()
}

fn is_key_index(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// Creates token objects as fast as it can, acknowledging each, until killed.
fn writer_worker(round: usize) {
    let p = load();
    let slot = first_slot(&p);
    let s = user_session(&p, slot);
    say("READY");
    // A safety net, should the coordinator die before killing us.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let label = format!("r{round}-{i}");
        let template = if is_key_index(i) {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Value(key_value(&label)),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ]
        } else {
            data_template(&label, &kill_data_value(&label))
        };
        let h = ok("C_CreateObject", s.create_object(&template));
        say(&format!("ACK {label} {}", h.handle()));
    }
}

/// Opens the token after the kills and checks every object is whole; lists their labels.
fn verify_after_kills_worker() {
    let p = load();
    let slot = first_slot(&p);
    let info = ok("C_GetTokenInfo", p.get_token_info(slot));
    assert!(info.token_initialized() && info.user_pin_initialized(), "the token opens initialized");
    let s = user_session(&p, slot);
    let all = ok("C_FindObjects (all)", s.find_objects(&[]));
    let mut handles = HashSet::new();
    for h in all {
        assert!(handles.insert(h.handle()), "handle {} returned twice", h.handle());
        let attrs =
            ok("C_GetAttributeValue", s.get_attributes(h, &[AttributeType::Class, AttributeType::Label]));
        let class = attrs.iter().find_map(|a| match a {
            Attribute::Class(c) => Some(*c),
            _ => None,
        });
        let label = attrs.iter().find_map(|a| match a {
            Attribute::Label(l) => Some(String::from_utf8(l.clone()).expect("UTF-8 label")),
            _ => None,
        });
        let (Some(class), Some(label)) = (class, label) else {
            panic!("object {} is half-made: {attrs:?}", h.handle())
        };
        let kind = if class == ObjectClass::SECRET_KEY {
            check_key(&s, h, &label);
            "key"
        } else {
            assert_eq!(class, ObjectClass::DATA, "{label}: unexpected class");
            assert_eq!(ok("read value", value_of(&s, h)), Some(kill_data_value(&label)), "{label}: value");
            "data"
        };
        say(&format!("OBJ {label} {kind}"));
    }
}

/// A key made before a kill: complete, its value the one written, and usable for AES-GCM.
fn check_key(s: &Session, h: ObjectHandle, label: &str) {
    let want = key_value(label);
    let attrs = ok(
        "C_GetAttributeValue (key)",
        s.get_attributes(h, &[AttributeType::KeyType, AttributeType::ValueLen, AttributeType::Value]),
    );
    let mut key_type = None;
    let mut value_len = None;
    let mut value = None;
    for a in attrs {
        match a {
            Attribute::KeyType(k) => key_type = Some(k),
            Attribute::ValueLen(n) => value_len = Some(u64::from(n)),
            Attribute::Value(v) => value = Some(v),
            _ => {}
        }
    }
    assert_eq!(key_type, Some(KeyType::AES), "{label}: key type");
    assert_eq!(value_len, Some(32), "{label}: CKA_VALUE_LEN");
    assert_eq!(value.as_deref(), Some(&want[..]), "{label}: CKA_VALUE");

    // Encrypt with the module; decrypt independently with the value that was written.
    let mut iv = [3u8; 12];
    let params = GcmParams::new(&mut iv, label.as_bytes(), 128.into()).unwrap();
    let ct = ok("C_Encrypt (AES-GCM)", s.encrypt(&Mechanism::AesGcm(params), h, b"probe plaintext"));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &want).unwrap());
    let mut buf = ct.clone();
    let pt = key
        .open_in_place(Nonce::assume_unique_for_key([3u8; 12]), Aad::from(label.as_bytes()), &mut buf)
        .unwrap_or_else(|_| panic!("{label}: the module's ciphertext does not open with the stored value"));
    assert_eq!(pt, b"probe plaintext");
}

/// Waits for a protocol line satisfying `want`, collecting every line read into `seen`.
fn wait_for_line(rx: &Receiver<String>, seen: &mut Vec<String>, want: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + PROTOCOL_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.strip_prefix("> ").is_some_and(&want);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
        }
    }
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_object_and_leaves_none_half_made() {
    if let Some(role) = worker_role() {
        match role.split_once(':') {
            None if role == "setup" => setup_worker(),
            None if role == "verify" => verify_after_kills_worker(),
            Some(("writer", round)) => writer_worker(round.parse().unwrap()),
            _ => panic!("unknown role {role}"),
        }
        return;
    }
    let dir = SharedDir::with_token(KILL_TEST);
    let mut acked: Vec<usize> = Vec::new();
    for round in 0..KILL_ROUNDS {
        let role = format!("writer:{round}");
        let mut child = worker_command(KILL_TEST, &dir.0, &role).spawn().expect("spawn writer");
        let (rx, stderr) = stream_output(&mut child);
        let mut lines = Vec::new();
        if !wait_for_line(&rx, &mut lines, |l| l == "READY") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("writer {round} never got ready:\n{}\n{}", lines.join("\n"), stderr.join().unwrap());
        }
        // Killed while it writes: after its second acknowledged write (waited for with a
        // deadline: a loaded machine may take longer than KILL_AFTER to get there), then a while.
        let second = format!("ACK r{round}-1 ");
        let writing = wait_for_line(&rx, &mut lines, |l| l.starts_with(&second));
        thread::sleep(KILL_AFTER);
        child.kill().expect("SIGKILL the writer");
        assert!(writing, "writer {round} acknowledged no second write: {}", lines.join("\n"));
        let status = child.wait().unwrap();
        lines.extend(rx.iter());
        let stderr = stderr.join().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "writer {round} must die by SIGKILL, not on its own ({status}):\n{}\n{stderr}",
            lines.join("\n")
        );
        // Acknowledgements are sequential: r<round>-0, r<round>-1, ...
        let acks: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("> ACK "))
            .map(|rest| rest.split(' ').next().unwrap())
            .collect();
        for (i, label) in acks.iter().enumerate() {
            assert_eq!(*label, format!("r{round}-{i}"), "acknowledgements in order");
        }
        assert!(acks.len() >= 2, "round {round}: the writer must have written before the kill ({acks:?})");
        acked.push(acks.len());
    }

    // The token opens, every object is whole, and every acknowledged one is there.
    let out = run_worker(KILL_TEST, &dir.0, "verify");
    let mut by_round: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); KILL_ROUNDS];
    for line in protocol_lines(&out) {
        let Some((label, kind)) = line.strip_prefix("OBJ ").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        let (round, i) = label
            .strip_prefix('r')
            .and_then(|l| l.split_once('-'))
            .map(|(r, i)| (r.parse::<usize>().unwrap(), i.parse::<usize>().unwrap()))
            .unwrap_or_else(|| panic!("unexpected object {label}"));
        assert!(by_round[round].insert(i), "{label} exists twice");
        let want = if is_key_index(i) { "key" } else { "data" };
        assert_eq!(kind, want, "{label} has the class it was created with");
    }
    let found: Vec<usize> = by_round.iter().map(BTreeSet::len).collect();
    eprintln!("kill -9 rounds: acknowledged {acked:?}, found {found:?}");
    for (round, found) in by_round.iter().enumerate() {
        let n = acked[round];
        let acknowledged: BTreeSet<usize> = (0..n).collect();
        let missing: Vec<_> = acknowledged.difference(found).collect();
        assert!(missing.is_empty(), "round {round}: acknowledged objects lost: {missing:?}");
        let extra: Vec<_> = found.difference(&acknowledged).collect();
        assert!(
            extra.is_empty() || extra == vec![&n],
            "round {round}: {n} acknowledged; beyond them only the one in flight may exist, found {extra:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Changes are seen by a process that is already running.
// ---------------------------------------------------------------------------------------

/// A running worker driven through stdin, one command per line, one `> ` answer each.
struct Agent {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Agent {
    fn spawn(name: &'static str, dir: &Path) -> Agent {
        let mut child =
            worker_command(VISIBILITY_TEST, dir, "agent").stdin(Stdio::piped()).spawn().expect("spawn agent");
        let stdin = child.stdin.take().unwrap();
        let (lines, stderr) = stream_output(&mut child);
        let mut agent = Agent { name, child, stdin, lines, stderr: Some(stderr) };
        agent.answer();
        agent
    }

    /// The next answer line, or a failure with everything the agent said.
    fn answer(&mut self) -> String {
        let mut seen = Vec::new();
        if wait_for_line(&self.lines, &mut seen, |_| true) {
            return seen.pop().unwrap().strip_prefix("> ").unwrap().to_string();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.take().map(|h| h.join().unwrap()).unwrap_or_default();
        panic!("agent {} gave no answer:\n{}\n{stderr}", self.name, seen.join("\n"));
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("write to agent");
        self.stdin.flush().unwrap();
        let answer = self.answer();
        assert!(!answer.starts_with("ERROR"), "agent {} on `{command}`: {answer}", self.name);
        answer
    }

    fn quit(mut self) {
        assert_eq!(self.ask("quit"), "BYE");
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().map(|h| h.join().unwrap()).unwrap_or_default();
        assert!(status.success(), "agent {} failed ({status}):\n{stderr}", self.name);
    }
}

/// Answers commands on one session, kept open (and logged in) for the whole run.
fn agent_worker() {
    let p = load();
    let slot = first_slot(&p);
    let s = user_session(&p, slot);
    // Handles seen by number, so that `read` can use an old one.
    let mut seen: HashMap<u64, ObjectHandle> = HashMap::new();
    say("READY");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split(' ').collect();
        let answer = match words[..] {
            ["create", label, value] => {
                let h = ok("C_CreateObject", s.create_object(&data_template(label, value.as_bytes())));
                format!("CREATED {}", h.handle())
            }
            ["find", label] => {
                let found = find_label(&s, label);
                let mut answer = format!("FOUND {}", found.len());
                for h in found {
                    seen.insert(h.handle(), h);
                    let v = ok("read value", value_of(&s, h)).unwrap_or_default();
                    answer += &format!(" {}={}", h.handle(), String::from_utf8_lossy(&v));
                }
                answer
            }
            ["set", label, value] => {
                let found = find_label(&s, label);
                assert_eq!(found.len(), 1, "set: {label} must exist once");
                ok("C_SetAttributeValue", s.update_attributes(found[0], &[Attribute::Value(value.into())]));
                "SET".to_string()
            }
            ["destroy", label] => {
                let found = find_label(&s, label);
                assert_eq!(found.len(), 1, "destroy: {label} must exist once");
                ok("C_DestroyObject", s.destroy_object(found[0]));
                "DESTROYED".to_string()
            }
            ["read", handle] => {
                let h = seen.get(&handle.parse().unwrap()).copied();
                match h.map(|h| value_of(&s, h)) {
                    Some(Ok(v)) => format!("READ {}", String::from_utf8_lossy(&v.unwrap_or_default())),
                    Some(Err(Error::Pkcs11(rv, _))) => format!("READ-ERR {rv:?}"),
                    Some(Err(e)) => format!("ERROR {e:?}"),
                    None => "ERROR unknown handle".to_string(),
                }
            }
            ["quit"] => {
                say("BYE");
                return;
            }
            _ => format!("ERROR bad command {line}"),
        };
        say(&answer);
    }
}

/// `FOUND <n> <handle>=<value>...` → (n, [(handle, value)]).
fn parse_found(answer: &str) -> (usize, Vec<(String, String)>) {
    let mut words = answer.split(' ');
    assert_eq!(words.next(), Some("FOUND"), "answer {answer}");
    let n = words.next().unwrap().parse().unwrap();
    let pairs = words
        .map(|w| {
            let (h, v) = w.split_once('=').unwrap();
            (h.to_string(), v.to_string())
        })
        .collect();
    (n, pairs)
}

#[test]
fn token_changes_by_one_process_are_seen_by_another_running_process() {
    if let Some(role) = worker_role() {
        match role.as_str() {
            "setup" => setup_worker(),
            "agent" => agent_worker(),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let dir = SharedDir::with_token(VISIBILITY_TEST);
    let mut a = Agent::spawn("A", &dir.0);
    let mut b = Agent::spawn("B", &dir.0);

    assert_eq!(a.ask("find shared"), "FOUND 0");
    assert!(b.ask("create shared v1").starts_with("CREATED "));
    let (n, found) = parse_found(&a.ask("find shared"));
    assert_eq!(n, 1, "A sees B's new object without restarting");
    let (handle, value) = found[0].clone();
    assert_eq!(value, "v1");

    assert_eq!(b.ask("set shared v2"), "SET");
    let (n, found) = parse_found(&a.ask("find shared"));
    assert_eq!(n, 1);
    assert_eq!(found[0], (handle.clone(), "v2".to_string()), "A sees the change, under the same handle");
    assert_eq!(a.ask(&format!("read {handle}")), "READ v2");

    assert_eq!(b.ask("destroy shared"), "DESTROYED");
    assert_eq!(a.ask("find shared"), "FOUND 0", "A no longer finds what B destroyed");
    assert_eq!(a.ask(&format!("read {handle}")), "READ-ERR ObjectHandleInvalid", "A's old handle is dead");

    // And the other way round.
    assert!(a.ask("create back v3").starts_with("CREATED "));
    let (n, found) = parse_found(&b.ask("find back"));
    assert_eq!((n, found[0].1.as_str()), (1, "v3"));
    assert_eq!(a.ask("destroy back"), "DESTROYED");
    assert_eq!(b.ask("find back"), "FOUND 0");

    a.quit();
    b.quit();
}
