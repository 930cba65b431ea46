//! Small helpers: messages for the core's errors, dates, input and output, progress.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use ecm_hsm::Error;

use super::{Failure, Outcome};

/// A one-line description of a refusal of the core that has no more specific message.
pub fn explain(e: &Error) -> String {
    match e {
        Error::StoreBusy => "the token store is busy (another process holds it); try again".into(),
        Error::StoreCorrupt(m) => format!("the token store is damaged: {m}"),
        Error::Device(m) => m.clone(),
        Error::TokenNotRecognized => "the token file is not a readable ecm-hsm token".into(),
        Error::UserNotLoggedIn => "not logged in as the user".into(),
        Error::PinLocked => "the PIN is locked: the SO must set a new one".into(),
        Error::KeyFunctionNotPermitted => {
            "the key may not be used for this (its attributes, or for a principal the policy, forbid it; \
             see `ecm-hsm policy show`)"
                .into()
        }
        other => format!("the token refused the operation ({other:?}, CKR {:#x})", other.ck_rv()),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time, from which the shorter forms below are cut.
fn rfc3339(unix: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn date(unix: u64) -> String {
    rfc3339(unix)[..10].to_owned()
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn date_time(unix: u64) -> String {
    let text = rfc3339(unix);
    format!("{} {}", &text[..10], &text[11..16])
}

/// Everything from FILE, or from stdin for `None` or `-`.
pub fn read_input(path: Option<&Path>) -> Outcome<Vec<u8>> {
    let mut data = Vec::new();
    match path.filter(|p| *p != Path::new("-")) {
        Some(p) => {
            data = std::fs::read(p).map_err(|e| Failure(format!("cannot read {}: {e}", p.display())))?;
        }
        None => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut data)
                .map_err(|e| Failure(format!("cannot read standard input: {e}")))?;
        }
    }
    Ok(data)
}

/// Writes `data` to FILE (created with mode 0600 if `private`), or to stdout for `None` or
/// `-`. `binary` output is not written to a terminal.
pub fn write_output(path: Option<&Path>, data: &[u8], private: bool, binary: bool) -> Outcome<()> {
    match path.filter(|p| *p != Path::new("-")) {
        Some(p) => write_file(p, data, private),
        None => {
            let stdout = std::io::stdout();
            if binary && stdout.is_terminal() {
                return Err(Failure(
                    "refusing to write a binary envelope to a terminal: use -o FILE or a pipe".into(),
                ));
            }
            let mut out = stdout.lock();
            out.write_all(data)
                .and_then(|()| out.flush())
                .map_err(|e| Failure(format!("cannot write standard output: {e}")))
        }
    }
}

fn write_file(path: &Path, data: &[u8], private: bool) -> Outcome<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

/// Replaces FILE by `data` atomically (a temporary file of a unique name beside it, then a
/// rename), keeping its permissions; two commands replacing files in one directory never
/// share a temporary file.
pub fn replace_file(path: &Path, data: &[u8]) -> Outcome<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let cannot = |e: std::io::Error| Failure(format!("cannot replace {}: {e}", path.display()));
    let permissions = std::fs::metadata(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?
        .permissions();
    // Created 0600 by tempfile, so the new contents are never readable by others before the
    // old file's permissions are put on it.
    let mut tmp = tempfile::Builder::new().prefix(".ecm-hsm-").tempfile_in(dir).map_err(cannot)?;
    tmp.write_all(data).and_then(|()| tmp.as_file().sync_all()).map_err(cannot)?;
    std::fs::set_permissions(tmp.path(), permissions).map_err(cannot)?;
    tmp.persist(path).map_err(|e| cannot(e.error))?;
    Ok(())
}

/// Prints a table: the header, then the rows, in columns two spaces apart.
pub fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let text: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", text.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
}

/// Progress of long work on stderr, shown only when stderr is a terminal.
pub struct Progress {
    shown: bool,
    what: &'static str,
    total: usize,
}

impl Progress {
    pub fn new(what: &'static str, total: usize) -> Progress {
        Progress { shown: std::io::stderr().is_terminal(), what, total }
    }

    pub fn step(&self, done: usize) {
        if self.shown {
            eprint!("\r{} {done}/{}", self.what, self.total);
        }
    }

    pub fn note(&self, text: &str) {
        if self.shown {
            eprintln!("{text}");
        }
    }

    pub fn finish(&self) {
        if self.shown && self.total > 0 {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_keeps_its_mode_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.ecme");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(replace_file(&dir.path().join("missing"), b"x").is_err());
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_709_208_000), "2024-02-29");
        assert_eq!(date_time(1_700_000_000), "2023-11-14 22:13");
    }
}
