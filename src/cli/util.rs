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

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn date_time(unix: u64) -> String {
    let secs = unix % 86_400;
    format!("{} {:02}:{:02}", date(unix), secs / 3600, (secs % 3600) / 60)
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

/// Replaces FILE by `data` atomically (a temporary file beside it, then a rename), keeping
/// its permissions.
pub fn replace_file(path: &Path, data: &[u8]) -> Outcome<()> {
    let name = path.file_name().ok_or_else(|| Failure(format!("{} is not a file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".ecm-hsm-tmp");
    let tmp = path.with_file_name(tmp_name);
    let permissions = std::fs::metadata(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?
        .permissions();
    write_file(&tmp, data, true)?;
    std::fs::set_permissions(&tmp, permissions).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure(format!("cannot replace {}: {e}", path.display()))
    })
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
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_709_208_000), "2024-02-29");
        assert_eq!(date_time(1_700_000_000), "2023-11-14 22:13");
    }
}
