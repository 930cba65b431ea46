//! Closing the segments of processes that died without closing them (killed, or crashed):
//! until a segment is closed its end is nowhere in the register, so its tail could be cut —
//! to one record, or to nothing — and no anchor of the register would show it.
//!
//! A live writer holds an exclusive `flock` on its segment file for as long as it has it
//! open (`super::segment::Segment::create`); the kernel drops the lock when the process
//! dies. So a segment opened in the register, not closed there, whose lock can be taken, has
//! no writer any more. A process holding the audit key (at its first login; `ecm-hsm audit
//! verify` logs in, so it does it too) then, under that lock: links the records the dead
//! writer left unlinked (it has the key that the segment's links are made with), cuts a
//! partial last line (a write the death interrupted: no record), and appends `segment_close`
//! with the segment's head to the register — exactly what the writer's own close would have
//! written. From then on the segment is covered like any closed one, and an anchor taken
//! after it covers its head.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::AuditKey;
use super::record::{LINK_LEN, LineParser, Record, gmac_link, link_line, parse_line, segment_key};
use super::register::Register;
use super::segment;
use super::trail::{SEGMENT_CLOSE, SEGMENT_OPEN};
use crate::mechanism::digest;
use crate::{Error, Result};

/// The segments the register at `path` opened and did not close: number → the link of the
/// record that opened it.
fn open_segments(path: &Path) -> Result<BTreeMap<u64, [u8; LINK_LEN]>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut open = BTreeMap::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &bytes) {
        let line = &bytes[start..end];
        start = end + 1;
        // What does not parse is `verify`'s to report.
        let Ok(parsed) = parse_line(line) else { continue };
        let e = &parsed.entry;
        match (e.operation.as_str(), parsed.link, e.segment) {
            (SEGMENT_OPEN, Some(link), _) => {
                open.insert(e.seq, link);
            }
            (SEGMENT_CLOSE, _, Some(n)) => {
                open.remove(&n);
            }
            _ => {}
        }
    }
    Ok(open)
}

/// Closes every segment of `register` whose writer is gone (see the module comment); how
/// many. A segment that is not sound (a bad link) is left as it is, for `verify` to name.
pub fn close_dead_segments(register: &Register, dir: &Path, key: &AuditKey) -> Result<usize> {
    let mut closed = 0;
    for (number, _) in open_segments(register.path())? {
        let path = dir.join(segment::file_name(number));
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else {
            // Deleted: `verify` names it.
            continue;
        };
        if file.try_lock().is_err() {
            // Its writer is alive (or another process is closing it right now).
            continue;
        }
        // Under the lock, the register again: another process may have closed it since.
        let Some(opened_by) = open_segments(register.path())?.get(&number).copied() else {
            continue;
        };
        match close_one(register, &file, number, opened_by, key) {
            Ok(()) => closed += 1,
            Err(e) => crate::error::log_fault("closing the audit segment of a dead process", &e),
        }
    }
    Ok(closed)
}

fn close_one(
    register: &Register,
    file: &File,
    number: u64,
    opened_by: [u8; LINK_LEN],
    key: &AuditKey,
) -> Result<()> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut bytes)?;
    // The records end at the first zero byte (the file was allocated ahead).
    let data_end = memchr::memchr(0, &bytes).unwrap_or(bytes.len());
    let gmac_key = segment_key(key.as_ref(), &opened_by);
    let mut parser = LineParser::new(true);
    let (mut seq, mut link, mut start) = (0u64, opened_by, 0usize);
    let mut scratch = Vec::new();
    while let Some(newline) = memchr::memchr(b'\n', &bytes[start..data_end]) {
        let end = start + newline;
        let parsed = parser
            .parse(&bytes[start..end])
            .map_err(|why| Error::Device(format!("segment {number}, record {}: {why}", seq + 1)))?;
        if parsed.entry.seq != seq + 1 {
            return Err(Error::Device(format!("segment {number}: record {} out of sequence", seq + 1)));
        }
        let next = match parsed.link {
            Some(stored) => {
                let mut chained = link.to_vec();
                chained.extend_from_slice(parsed.covered);
                let expected = match parsed.entry.auth.as_str() {
                    "g" => gmac_link(&gmac_key, seq + 1, &chained),
                    _ => digest::sha256_array(&chained),
                };
                if expected != stored {
                    return Err(Error::Device(format!("segment {number}, record {}: bad link", seq + 1)));
                }
                stored
            }
            // Left unlinked by the dead writer: linked now, as its linker would have.
            None => link_line(&mut bytes[start..end], seq + 1, &link, Some(&gmac_key), &mut scratch)
                .map_err(|why| Error::Device(format!("segment {number}, record {}: {why}", seq + 1)))?,
        };
        (seq, link, start) = (seq + 1, next, end + 1);
    }
    // `start` is the end of the last complete record: a partial line after it held none.
    file.write_all_at(&bytes[..start], 0)?;
    file.set_len(start as u64)?;
    let closing = Record { segment: Some(number), end: Some((seq, link)), ..Record::new(SEGMENT_CLOSE, 0) };
    register.append(&closing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, OpenOptions, derive_key, segment_dir, verify_trail};

    #[test]
    fn a_segment_whose_writer_is_alive_is_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-0.audit");
        let key = derive_key(&[3; 32]);
        let log =
            AuditLog::open_with(&path, OpenOptions { threads: false, ..OpenOptions::default() }).unwrap();
        log.set_key(Some(key.clone()));
        log.append(&Record::new("encrypt", 0)).unwrap();
        // Another handle of the register, as another process's: the writer holds its lock.
        let other = Register::open(&path).unwrap();
        other.set_key(Some(key.clone()));
        assert_eq!(close_dead_segments(&other, &segment_dir(&path), &key).unwrap(), 0);
        let report = verify_trail(&path, Some(&key), None).unwrap();
        assert_eq!((report.segments, report.closed_segments), (1, 0), "{report:?}");
        drop(log);
        let report = verify_trail(&path, Some(&key), None).unwrap();
        assert_eq!((report.segments, report.closed_segments, report.records), (1, 1, 3), "{report:?}");
    }
}
