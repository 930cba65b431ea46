//! A fuzz driver for the C ABI: random call sequences with random (and valid) handles,
//! lengths (0, 1, huge), NULL pointers, templates and mechanism parameters, against a real
//! token in a temporary `ECM_HSM_DIR`. After each call it checks that the process did not
//! crash, that the call did not hang (a watchdog on the child process), and that the code
//! returned is one the standard lists for that function (`rv_table.rs`).
//!
//! Each seed runs in a child process of its own and is deterministic: a failing seed is
//! printed with the command that reproduces it. Settings (all optional):
//! - `ECM_FUZZ_SEED=N`: run only seed N (a reproducer);
//! - `ECM_FUZZ_SECONDS=S`: after the seed corpus (`seeds.txt`), run fresh random
//!   seeds until S seconds have passed (`.ci/run` uses 60; an hour is 3600);
//! - `ECM_FUZZ_STEPS=N`: calls per seed (400);
//! - `ECM_FUZZ_CALL_TIMEOUT=S`: seconds one call may take before it counts as a hang (30).
//!
//! Known, unfixed defects are listed with their reason in `allow.txt`; they are
//! counted and printed, never silently dropped.
#![allow(unsafe_code)]

mod allow;
mod args;
#[path = "../common/mod.rs"]
mod common;
mod driver;
mod guard;
mod rv_table;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{fresh_dir, write_test_config};

const CHILD_SEED: &str = "ECM_FUZZ_CHILD_SEED";
const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/abi_fuzz/seeds.txt");

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The child: one seed's calls, printed as they are made.
#[test]
fn abi_fuzz_child() {
    let Ok(seed) = std::env::var(CHILD_SEED) else {
        return; // Only the parent test below runs this, with a seed.
    };
    let seed: u64 = seed.parse().expect("a numeric seed");
    // libtest has printed "test abi_fuzz_child ... " without a newline: end that line, so
    // that the first CALL starts a line of its own.
    println!();
    let mut d = driver::Driver::new(seed, allow::load());
    for _ in 0..env_number("ECM_FUZZ_STEPS", 400) {
        d.step();
    }
    println!("DONE bad={}", d.bad);
}

/// What one seed's run found.
struct Outcome {
    seed: u64,
    calls: usize,
    /// Codes outside the standard's list, crashes, hangs: each fails the run.
    failures: Vec<String>,
    /// Calls the allow-list covered, by its line (`Kind:function:what`): how many, and the
    /// first such call.
    allowed: BTreeMap<String, (usize, String)>,
}

fn run_seed(seed: u64, call_timeout: Duration) -> Outcome {
    let dir = fresh_dir("fuzz");
    write_test_config(&dir, "");
    let stderr_path = dir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("child stderr file");
    let mut child = Command::new(std::env::current_exe().expect("test executable"))
        .args(["abi_fuzz_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_SEED, seed.to_string())
        .env("ECM_HSM_DIR", &dir)
        .env_remove("ECM_HSM_CONF")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn the fuzz child");
    let (tx, rx) = channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = Outcome { seed, calls: 0, failures: Vec::new(), allowed: BTreeMap::new() };
    let mut last_call = String::from("(before the first call)");
    let mut done = false;
    let mut hung = false;
    loop {
        match rx.recv_timeout(call_timeout) {
            Ok(line) => {
                if line.starts_with("CALL ") {
                    out.calls += 1;
                    last_call = line;
                } else if line.starts_with("BAD ") {
                    out.failures.push(format!("code outside the standard's list: {line}"));
                } else if line.starts_with("KNOWN ") || line.starts_with("SKIP ") {
                    let entry = line.split_whitespace().nth(2).unwrap_or_default().to_string();
                    out.allowed.entry(entry).or_insert((0, line)).0 += 1;
                } else if line.starts_with("DONE ") {
                    done = true;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // The child made no progress for a whole call timeout: a hang.
                hung = true;
                let _ = child.kill();
                out.failures.push(format!("hang (no answer in {call_timeout:?}): {last_call}"));
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().expect("wait for the fuzz child");
    let _ = reader.join();
    if !hung && (!status.success() || !done) {
        // The child's last words (a panic message, the module's log) say why.
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let what = match status.signal() {
            Some(signal) => format!("crash (signal {signal}) in or after"),
            None => format!("child failed ({status}) after"),
        };
        out.failures.push(format!("{what}: {last_call}\n    stderr: {}", tail.join("\n    stderr: ")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&stderr_path);
    out
}

fn corpus() -> Vec<u64> {
    let text = std::fs::read_to_string(SEEDS).unwrap_or_else(|e| panic!("read {SEEDS}: {e}"));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap_or_else(|_| panic!("{SEEDS}: {l:?} is not a seed")))
        .collect()
}

#[test]
fn abi_fuzz() {
    if std::env::var_os(CHILD_SEED).is_some() {
        return;
    }
    let call_timeout = Duration::from_secs(env_number("ECM_FUZZ_CALL_TIMEOUT", 30));
    let budget = Duration::from_secs(env_number("ECM_FUZZ_SECONDS", 0));
    let fixed = std::env::var("ECM_FUZZ_SEED").ok().map(|s| s.trim().parse::<u64>().expect("ECM_FUZZ_SEED"));
    let mut seeds: Vec<u64> = match fixed {
        Some(seed) => vec![seed],
        None => corpus(),
    };
    let start = Instant::now();
    let mut next_random = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64
        ^ u64::from(std::process::id());
    let mut failed = Vec::new();
    let mut allowed: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut i = 0;
    loop {
        let seed = if i < seeds.len() {
            seeds[i]
        } else if fixed.is_none() && start.elapsed() < budget {
            next_random = next_random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seeds.push(next_random >> 1);
            seeds[i]
        } else {
            break;
        };
        i += 1;
        let o = run_seed(seed, call_timeout);
        let covered: usize = o.allowed.values().map(|v| v.0).sum();
        println!(
            "seed {}: {} calls, {} failures, {} covered by the allow-list",
            o.seed,
            o.calls,
            o.failures.len(),
            covered
        );
        for (entry, (n, first)) in &o.allowed {
            let total = allowed.entry(entry.clone()).or_insert((0, first.clone()));
            total.0 += n;
        }
        for f in &o.failures {
            println!("  FAIL {f}");
        }
        if !o.failures.is_empty() {
            failed.push(o);
        }
    }
    println!("{} seeds in {:?}", seeds.len(), start.elapsed());
    // What the allow-list (allow.txt) covered: known defects, counted, never dropped silently.
    let entries = allow::load();
    for (entry, (n, first)) in &allowed {
        let reason = entries
            .iter()
            .find(|e| format!("{:?}:{}:{}", e.kind, e.function, e.what) == *entry)
            .map_or("?", |e| e.reason.as_str());
        let what = if entry.starts_with("Standard:") { "allowed by the standard" } else { "allow-listed" };
        println!("{what} {entry} ({reason}): {n} calls (rv: answered; crash, hang: skipped); first: {first}");
    }
    let report: Vec<String> = failed
        .iter()
        .map(|o| {
            format!(
                "seed {} ({} failures; reproduce: ECM_FUZZ_SEED={} cargo test --test abi_fuzz abi_fuzz -- --nocapture):\n  {}",
                o.seed,
                o.failures.len(),
                o.seed,
                o.failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
            )
        })
        .collect();
    assert!(failed.is_empty(), "the ABI fuzz run found defects:\n{}", report.join("\n"));
}
