//! The register: one chained file of records shared by every process, `token-<slot>.audit`.
//! It records what opens and closes each process's segment (`super::trail`), and anything a
//! caller appends to it directly; it is also the simplest form of a chain, which the tests
//! of tampering use.
//!
//! Threads of a process share one [`Register`] (a mutex); processes share the file through
//! an exclusive `flock` held for each append. Each append checks the file's length: if it
//! is not where this handle's last write left it, another process appended, and the last
//! line is read again to continue its chain. The line is then written with one `write` on a
//! file opened with `O_APPEND`, without `fsync`: once `append` returns, the record is in the
//! kernel's page cache and survives the writer being killed, but not a power loss or a
//! kernel crash, unless the log was opened with [`OpenOptions::sync`].
//!
//! A final line without its `\n` (a writer stopped in the middle of its write) holds no
//! record; the next append removes it and chains from the last complete line.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::AuditKey;
use super::record::{LINK_LEN, Record, encode_covered, encode_link, may_follow_authenticated, parse_line};
use super::trail::{AUDIT_OFF, AUDIT_ON};
use crate::mechanism::{digest, mac};
use crate::{Error, Result};

/// How to open an audit file.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// `fdatasync` after every record: it then survives a power loss too, at the price of a
    /// disk flush per record (and each record is linked before its call returns).
    pub sync: bool,
    /// Whether the trail may link records on a thread of its own (`super::trail`); not when
    /// the application forbids the library threads.
    pub threads: bool,
    /// How large a process's segment grows before the next is opened.
    pub segment_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions { sync: false, threads: true, segment_bytes: crate::config::DEFAULT_AUDIT_SEGMENT_BYTES }
    }
}

/// A register opened for appending.
pub struct Register {
    path: PathBuf,
    sync: bool,
    pid: u32,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    /// The file's length after this handle's last read or write (`u64::MAX`: unknown).
    known_len: u64,
    /// The last record: its sequence number (0: none) and link.
    seq: u64,
    link: [u8; LINK_LEN],
    /// The audit key, prepared for HMAC.
    key: Option<mac::HmacSha256Key>,
    /// How far the file's lines were checked against [`may_follow_authenticated`] (a writer
    /// does not chain onto a forgery), how many lines that is, and whether an authenticated
    /// record was among them.
    scanned: u64,
    scanned_lines: u64,
    authenticated: bool,
    /// Whether the last of those lines that turned auditing off or on turned it off.
    audit_off: bool,
    /// The line being written, preceded by the previous link: what the link covers is
    /// `buf[..LINK_LEN + covered]`, what is written is `buf[LINK_LEN..]`.
    buf: Vec<u8>,
}

impl Register {
    /// Opens (creating it, mode 0600) the audit file at `path`.
    pub fn open(path: &Path) -> Result<Register> {
        Register::open_with(path, OpenOptions::default())
    }

    pub fn open_with(path: &Path, options: OpenOptions) -> Result<Register> {
        let file = std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
        let inner = Inner {
            file,
            known_len: u64::MAX,
            seq: 0,
            link: [0; LINK_LEN],
            key: None,
            scanned: 0,
            scanned_lines: 0,
            authenticated: false,
            audit_off: false,
            buf: Vec::with_capacity(1024),
        };
        let log = Register {
            path: path.to_path_buf(),
            sync: options.sync,
            pid: std::process::id(),
            inner: Mutex::new(inner),
        };
        log.head()?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key to write `m` links with (a login), or `None` for `h` links (a logout).
    pub fn set_key(&self, key: Option<AuditKey>) {
        self.inner.lock().key = key.map(|k| mac::HmacSha256Key::new(k.as_ref()));
    }

    /// Whether records are written with `m` links.
    pub fn has_key(&self) -> bool {
        self.inner.lock().key.is_some()
    }

    /// The last record of the file: its sequence number (0 for none) and link (zeros).
    pub fn head(&self) -> Result<(u64, [u8; LINK_LEN])> {
        let mut inner = self.inner.lock();
        inner.file.lock_shared()?;
        let result = inner.catch_up(false);
        let _ = inner.file.unlock();
        result?;
        Ok((inner.seq, inner.link))
    }

    /// Appends `record`; its sequence number. An error means the record was not written
    /// (or not completely: the next append removes the remains).
    pub fn append(&self, record: &Record<'_>) -> Result<u64> {
        self.append_after(record, |_| Ok(())).map(|(seq, _)| seq)
    }

    /// Appends `record` after `before` ran with the record's sequence number, both under the
    /// file's lock (nothing is appended if `before` fails); the record's sequence number and
    /// link.
    pub fn append_after(
        &self,
        record: &Record<'_>,
        before: impl FnOnce(u64) -> Result<()>,
    ) -> Result<(u64, [u8; LINK_LEN])> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.file.lock()?;
        let result = inner
            .catch_up(true)
            .and_then(|()| inner.check_new_lines(&self.path))
            .and_then(|()| before(inner.seq + 1))
            .and_then(|()| {
                inner.append(record, self.pid, self.sync)?;
                Ok((inner.seq, inner.link))
            });
        let _ = inner.file.unlock();
        if result.is_err() {
            inner.known_len = u64::MAX;
        }
        result
    }
}

impl Register {
    /// Appends `audit_on` (authenticated: with the key only) if the register's last word on
    /// auditing is an `audit_off`; whether it did. Checked and appended under the file's
    /// lock.
    pub fn record_audit_on_if_off(&self) -> Result<bool> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        if inner.key.is_none() {
            return Ok(false);
        }
        inner.file.lock()?;
        let result = inner.catch_up(true).and_then(|()| inner.check_new_lines(&self.path)).and_then(|()| {
            if !inner.audit_off {
                return Ok(false);
            }
            inner.append(&Record::new(AUDIT_ON, 0), self.pid, self.sync)?;
            Ok(true)
        });
        let _ = inner.file.unlock();
        if result.is_err() {
            inner.known_len = u64::MAX;
        }
        result
    }
}

impl Inner {
    /// Brings `seq` and `link` up to the file's last complete line, if the file changed since
    /// this handle last saw it. With `repair`, removes a partial final line.
    fn catch_up(&mut self, repair: bool) -> Result<()> {
        // `lseek` is cheaper than `fstat`; the offset does not matter to `O_APPEND` writes.
        let len = (&self.file).seek(SeekFrom::End(0))?;
        if len == self.known_len {
            return Ok(());
        }
        let (complete, last) = read_tail(&self.file, len)?;
        match last {
            None => {
                self.seq = 0;
                self.link = [0; LINK_LEN];
            }
            Some(line) => {
                let parsed = parse_line(&line).map_err(|why| {
                    Error::Device(format!("the last line of the audit file cannot be continued: {why}"))
                })?;
                self.seq = parsed.entry.seq;
                self.link = parsed.link.ok_or_else(|| {
                    Error::Device(
                        "the last line of the audit file cannot be continued: it is not linked".into(),
                    )
                })?;
            }
        }
        if complete < len {
            if !repair {
                // Seen again (and removed) by the next append.
                self.known_len = u64::MAX;
                return Ok(());
            }
            self.file.set_len(complete)?;
        }
        self.known_len = complete;
        Ok(())
    }

    /// Checks the lines other writers added since the last check (after `catch_up`, which
    /// sets `known_len` to the end of the complete lines): an unauthenticated record after
    /// authenticated ones is a forgery. The writer does not stop there — the token goes on
    /// working, and `ecm-hsm audit verify`, which logs in (a recorded call), must run — but
    /// reports it as a fault naming the line; `verify` fails on that line however many
    /// authenticated records follow it, and `export` stops before it.
    fn check_new_lines(&mut self, path: &Path) -> Result<()> {
        if self.known_len < self.scanned {
            // Shorter than when checked: cut or replaced; checked again from the start.
            (self.scanned, self.scanned_lines, self.authenticated, self.audit_off) = (0, 0, false, false);
        }
        if self.known_len == self.scanned {
            return Ok(());
        }
        let len = usize::try_from(self.known_len - self.scanned)
            .map_err(|_| Error::Internal("audit register larger than memory"))?;
        let mut bytes = vec![0u8; len];
        self.file.read_exact_at(&mut bytes, self.scanned)?;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &bytes) {
            let line = &bytes[start..end];
            start = end + 1;
            self.scanned_lines += 1;
            // A line that does not parse is `verify`'s to report; only the last line matters
            // for chaining (`catch_up`).
            let Ok(parsed) = parse_line(line) else { continue };
            let (auth, operation) = (&parsed.entry.auth, &parsed.entry.operation);
            if self.authenticated && !may_follow_authenticated(auth, operation, true) {
                crate::error::log_fault(
                    "audit register",
                    &Error::Device(format!(
                        "{}, line {}: an unauthenticated record after authenticated ones (forged); \
                         `ecm-hsm audit verify` fails on it",
                        path.display(),
                        self.scanned_lines
                    )),
                );
            }
            self.authenticated |= auth != "h";
            self.note_switch(operation, auth == "m");
        }
        self.scanned = self.known_len;
        Ok(())
    }

    /// Follows auditing being turned off and on (only an authenticated `audit_on` counts).
    fn note_switch(&mut self, operation: &str, authenticated: bool) {
        if operation == AUDIT_OFF {
            self.audit_off = true;
        } else if operation == AUDIT_ON && authenticated {
            self.audit_off = false;
        }
    }

    /// Appends after `catch_up(true)` and `check_new_lines`.
    fn append(&mut self, record: &Record<'_>, pid: u32, sync: bool) -> Result<u64> {
        let seq = self.seq + 1;
        let auth = if self.key.is_some() { b'm' } else { b'h' };
        if self.authenticated
            && !may_follow_authenticated(if auth == b'm' { "m" } else { "h" }, record.operation, true)
        {
            return Err(Error::Device(
                "an unauthenticated record cannot follow authenticated ones in the audit register (no login)"
                    .into(),
            ));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&self.link);
        encode_covered(&mut self.buf, seq, pid, record, auth);
        let link = match &self.key {
            Some(key) => key.sign(&self.buf),
            None => digest::sha256_array(&self.buf),
        };
        encode_link(&mut self.buf, auth, Some(&link));
        let line = &self.buf[LINK_LEN..];
        self.file.write_all(line)?;
        if sync {
            self.file.sync_data()?;
        }
        let written = line.len() as u64;
        if self.scanned == self.known_len {
            self.scanned += written;
            self.scanned_lines += 1;
            self.authenticated |= auth == b'm';
            self.note_switch(record.operation, auth == b'm');
        }
        self.known_len += written;
        self.seq = seq;
        self.link = link;
        Ok(seq)
    }
}

/// The length of the file's complete lines (up to its last `\n`) and its last complete line
/// (without the `\n`), if any.
fn read_tail(file: &File, len: u64) -> Result<(u64, Option<Vec<u8>>)> {
    const CHUNK: u64 = 4096;
    // Bytes from `start` to `len`, read backwards a chunk at a time.
    let mut tail: Vec<u8> = Vec::new();
    let mut start = len;
    let mut complete: Option<u64> = None;
    loop {
        // The newlines found so far, as offsets in the file.
        let newlines: Vec<u64> = memchr::memchr_iter(b'\n', &tail).map(|i| start + i as u64).collect();
        if complete.is_none() {
            complete = newlines.last().map(|n| n + 1);
        }
        if let Some(end) = complete {
            // The line ending at `end - 1` starts after the newline before it.
            let before = newlines.iter().rev().find(|n| **n + 1 < end).map(|n| n + 1);
            if let Some(begin) = before.or(if start == 0 { Some(0) } else { None }) {
                let from = (begin - start) as usize;
                let to = (end - 1 - start) as usize;
                return Ok((end, Some(tail[from..to].to_vec())));
            }
        } else if start == 0 {
            return Ok((0, None));
        }
        let step = CHUNK.min(start);
        let mut chunk = vec![0u8; step as usize];
        file.read_exact_at(&mut chunk, start - step)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        start -= step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("ecm-hsm-audit-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn tail_of(content: &[u8]) -> (u64, Option<Vec<u8>>) {
        let dir = temp("tail");
        let path = dir.join("f");
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        let out = read_tail(&file, content.len() as u64).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        out
    }

    #[test]
    fn the_tail_is_the_last_complete_line() {
        assert_eq!(tail_of(b""), (0, None));
        assert_eq!(tail_of(b"partial"), (0, None));
        assert_eq!(tail_of(b"a\n"), (2, Some(b"a".to_vec())));
        assert_eq!(tail_of(b"a\nbc\n"), (5, Some(b"bc".to_vec())));
        assert_eq!(tail_of(b"a\nbc\nde"), (5, Some(b"bc".to_vec())));
        let long =
            [vec![b'x'; 5000], b"\n".to_vec(), vec![b'y'; 9000], b"\n".to_vec(), vec![b'z'; 10]].concat();
        assert_eq!(tail_of(&long), (14002, Some(vec![b'y'; 9000])));
    }

    #[test]
    fn appends_chain_and_a_partial_line_is_removed() {
        let dir = temp("append");
        let path = dir.join("token-0.audit");
        let log = Register::open(&path).unwrap();
        assert_eq!(log.head().unwrap(), (0, [0; LINK_LEN]));
        assert_eq!(log.append(&Record::new("a", 0)).unwrap(), 1);
        log.set_key(Some(crate::audit::AuditKey::new([7; 32])));
        assert_eq!(log.append(&Record::new("b", 0)).unwrap(), 2);
        let (seq, link) = log.head().unwrap();
        assert_eq!(seq, 2);
        // Another writer dies in the middle of a line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":3,\"ti").unwrap();
        assert_eq!(log.head().unwrap(), (2, link));
        let other = Register::open(&path).unwrap();
        // Without the key, no record may follow an authenticated one (only the register's
        // own records of segments); with it, the other writer goes on.
        assert!(other.append(&Record::new("c", 0)).is_err());
        other.set_key(Some(crate::audit::AuditKey::new([7; 32])));
        assert_eq!(other.append(&Record::new("c", 0)).unwrap(), 3);
        assert_eq!(log.append(&Record::new("d", 0)).unwrap(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(!text.contains("\"ti{"));
        let report = super::super::verify(&path, Some(&crate::audit::AuditKey::new([7; 32])), None).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!((report.records, report.authenticated), (4, 3));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
