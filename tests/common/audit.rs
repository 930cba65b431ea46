//! Helpers of the audit tests: the trail of the token under test (slot 0 in the child's
//! `ECM_HSM_DIR`), its records and bytes, and files of records in directories of their own.

use std::path::{Path, PathBuf};

use ecm_hsm::audit;
use serde_json::Value;

use super::token_dir;

/// The register of slot 0's token.
pub fn audit_path() -> PathBuf {
    audit::path_for(&token_dir(), 0)
}

/// The records of the module's calls (the register's own records of segments left out), in
/// time order.
pub fn records() -> Vec<Value> {
    records_of(&audit_path())
}

/// As [`records`], of the trail whose register is `path`.
pub fn records_of(path: &Path) -> Vec<Value> {
    let text = audit::trail_text(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| !r["operation"].as_str().unwrap().starts_with("segment_"))
        .collect()
}

/// The registers archived by re-initializations of slot 0's token, oldest first.
pub fn archived_trails() -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(token_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("token-0.audit.archived-") && !name.ends_with(".d")
        })
        .collect();
    found.sort();
    found
}

/// The bytes of every file of the trail, and of the trails it archived.
pub fn trail_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    for register in archived_trails().into_iter().chain([audit_path()]) {
        bytes.extend(std::fs::read(&register).unwrap());
        if let Ok(dir) = std::fs::read_dir(audit::segment_dir(&register)) {
            for entry in dir {
                bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
            }
        }
    }
    bytes
}

/// A directory of its own for a test, removed when dropped.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("ecm-hsm-{tag}-")).tempdir().unwrap()
}

/// An audit key of no token, for files the tests write themselves.
pub fn test_key() -> audit::AuditKey {
    audit::derive_key(&[0x5a; 32])
}

/// The records of a file, one string each (a segment still open ends in zero bytes).
pub fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_end_matches('\0').lines().map(str::to_owned).collect()
}

/// Writes `lines` as a file of records.
pub fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// How long a test waits for something the module does on a thread of its own (a thread
/// naming itself, linking records, exiting): far longer than it takes on a loaded machine,
/// so that only a real failure reaches it.
pub const BACKGROUND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until `done` holds, checking every few milliseconds; panics with `what` (and what
/// `done` last said) after [`BACKGROUND_DEADLINE`].
#[track_caller]
pub fn wait_until<T: std::fmt::Debug>(what: &str, mut done: impl FnMut() -> Result<(), T>) {
    let deadline = std::time::Instant::now() + BACKGROUND_DEADLINE;
    loop {
        let last = match done() {
            Ok(()) => return,
            Err(last) => last,
        };
        assert!(std::time::Instant::now() < deadline, "{what}: not after {BACKGROUND_DEADLINE:?}: {last:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
