//! A segment: one process's own chain of records, `segment-<n>.jsonl` in the token's audit
//! directory, where `n` is the sequence number of the register record that opened it.
//!
//! Only its process writes it, so an append takes no file lock and makes no system call: the
//! file is mapped (`crate::sys::mapped_file`) and a record is copied into the page cache,
//! which is what a `write(2)` would have done, at a fraction of its cost. The file is
//! allocated ahead, so its tail is zero bytes until the segment is finished (cut to its
//! records) at a clean close; a reader stops at the first zero byte.
//!
//! The writing is split in two, so that the caller of an operation pays only for the first:
//! the [`Segment`] writes the record *unlinked* (its `link` is
//! [`super::record::UNLINKED`]), and the [`Linker`] — later, on another thread, or at once
//! — fills it in, record after record, computing the GMAC (or hash) that chains them. A
//! process killed between the two leaves its last records on disk but unlinked: present,
//! and reported as such by `verify`, but not protected by the chain.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::record::{Head, LINK_LEN, Middle, Record, Tail, link_line, segment_key};
use crate::mechanism::mac;
use crate::sys::mapped_file::{self, Appender, Sealer};
use crate::{Error, Result};

/// The file name of segment `n`.
pub fn file_name(n: u64) -> String {
    format!("segment-{n}.jsonl")
}

/// The segment number of a file name, if it is one.
pub fn number_of(name: &str) -> Option<u64> {
    let n = name.strip_prefix("segment-")?.strip_suffix(".jsonl")?;
    if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A segment open for appending (the writing half).
pub struct Segment {
    number: u64,
    path: PathBuf,
    appender: Appender,
    /// The last record's sequence number (0: none).
    seq: u64,
    sync: bool,
    buf: Vec<u8>,
    head: Head,
    middle: Middle,
    tail: Tail,
}

/// The linking half of a segment.
pub struct Linker {
    sealer: Sealer,
    /// The last linked record: its sequence number (0: none) and link (at first, the link of
    /// the register record that opened the segment).
    seq: u64,
    link: [u8; LINK_LEN],
    /// The link the first record follows: the register record that opened the segment.
    opened_by: [u8; LINK_LEN],
    /// The segment's GMAC key ([`segment_key`]), once the audit key is known.
    key: Option<mac::GmacKey>,
    scratch: Vec<u8>,
}

impl Segment {
    /// Creates segment `number` in `dir` (the file must not exist), as its two halves. The
    /// first record is chained to the link given to [`Linker::chain_to`]: the register record
    /// opening the segment.
    /// It holds at most `window` bytes.
    pub fn create(dir: &Path, number: u64, sync: bool, window: usize) -> Result<(Segment, Linker)> {
        let path = dir.join(file_name(number));
        let file: File =
            std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
        // Held while the file is open, by this process (or a child it forked): a segment
        // whose lock can be taken has no writer any more (`super::reclaim`).
        if let Err(e) = file.try_lock() {
            let _ = std::fs::remove_file(&path);
            return Err(Error::Device(format!("{}: cannot lock a new audit segment: {e}", path.display())));
        }
        let (appender, sealer) = match mapped_file::create(file, window) {
            Ok(halves) => halves,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        let segment = Segment {
            number,
            path,
            appender,
            seq: 0,
            sync,
            buf: Vec::with_capacity(1024),
            head: Head::default(),
            middle: Middle::default(),
            tail: Tail::default(),
        };
        let linker = Linker {
            sealer,
            seq: 0,
            link: [0; LINK_LEN],
            opened_by: [0; LINK_LEN],
            key: None,
            scratch: Vec::with_capacity(1024),
        };
        Ok((segment, linker))
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last record's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a record of `len` bytes still fits.
    pub fn fits(&self, len: usize) -> bool {
        self.appender.fits(len)
    }

    /// Appends `record` (by process `pid`), unlinked, to be linked with a `g` link
    /// (`authenticated`: the linker will hold the key) or an `h` link; its sequence number.
    pub fn append(&mut self, record: &Record<'_>, pid: u32, authenticated: bool) -> Result<u64> {
        let seq = self.seq + 1;
        let record = Record { segment: Some(self.number), ..*record };
        self.buf.clear();
        self.head.encode(&mut self.buf, seq, &record);
        self.middle.encode(&mut self.buf, pid, &record);
        let auth = if authenticated { b'g' } else { b'h' };
        self.tail.encode_unlinked(&mut self.buf, &record, auth);
        let at = self
            .appender
            .append(&self.buf)
            .map_err(|e| Error::Device(format!("audit segment {}: {e}", self.number)))?;
        // The line is in the file from here on, whether or not the flush below succeeds: the
        // next record must follow it.
        self.middle.written(seq);
        self.seq = seq;
        if self.sync {
            self.appender.sync(at, self.buf.len())?;
        }
        Ok(seq)
    }

    /// Cuts the file to its records (a clean close), with the linker given back.
    pub fn finish(self, linker: Linker) -> Result<()> {
        self.appender.finish(linker.sealer)?;
        Ok(())
    }
}

impl Linker {
    /// Chains the first record to `opened_by` (before any record is linked).
    pub fn chain_to(&mut self, opened_by: [u8; LINK_LEN]) {
        debug_assert_eq!(self.seq, 0);
        self.link = opened_by;
        self.opened_by = opened_by;
    }

    /// The audit key, from which the segment's key for `g` records is derived (after
    /// [`Self::chain_to`]); records written as `g` are linked only once it is here.
    pub fn set_key(&mut self, audit_key: Option<&[u8]>) {
        self.key = audit_key.map(|k| segment_key(k, &self.opened_by));
    }

    pub fn has_pending(&self) -> bool {
        self.sealer.has_pending()
    }

    /// Prepares the file for the next `ahead` bytes of records (see
    /// `crate::sys::mapped_file`): a linking thread does it, so that writers do not.
    pub fn reserve_ahead(&self, ahead: usize) -> Result<()> {
        Ok(self.sealer.reserve_ahead(ahead)?)
    }

    /// The last linked record's sequence number and link.
    pub fn end(&self) -> (u64, [u8; LINK_LEN]) {
        (self.seq, self.link)
    }

    /// Links every record written so far; how many. On an error, the records before the one
    /// that failed stay linked.
    pub fn link_pending(&mut self) -> Result<usize> {
        let (mut link, key) = (self.link, self.key.as_ref());
        let pending = self.sealer.pending();
        let (mut done, mut linked, mut failure) = (0, 0, None);
        while let Some(newline) = memchr::memchr(b'\n', &pending[done..]) {
            let seq = self.seq + linked as u64 + 1;
            match link_line(&mut pending[done..done + newline], seq, &link, key, &mut self.scratch) {
                Ok(next) => link = next,
                Err(why) => {
                    failure = Some(Error::Device(format!("audit segment: cannot link a record: {why}")));
                    break;
                }
            }
            done += newline + 1;
            linked += 1;
        }
        self.sealer.advance(done);
        self.sealer.release_sealed();
        self.link = link;
        self.seq += linked as u64;
        match failure {
            Some(e) => Err(e),
            None => Ok(linked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::LineParser;

    #[test]
    fn names_and_numbers() {
        assert_eq!(file_name(12), "segment-12.jsonl");
        assert_eq!(number_of("segment-12.jsonl"), Some(12));
        for bad in ["segment-.jsonl", "segment-012.jsonl", "segment-1a.jsonl", "segment-1.json", "x-1.jsonl"]
        {
            assert_eq!(number_of(bad), None, "{bad}");
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ecm-hsm-segment-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn records(path: &Path) -> Vec<Vec<u8>> {
        let text = std::fs::read(path).unwrap();
        let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        assert!(text[end..].iter().all(|b| *b == 0));
        text[..end].split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn records_are_written_unlinked_then_linked_in_order_and_finish_cuts_the_padding() {
        let dir = dir("link");
        let (mut segment, mut linker) = Segment::create(&dir, 3, false, 1 << 30).unwrap();
        linker.chain_to([9; LINK_LEN]);
        linker.set_key(Some(&[1; 32]));
        assert!(Segment::create(&dir, 3, false, 1 << 30).is_err(), "a segment is never reopened");
        let label = "x".repeat(200);
        let mut record = Record::new("encrypt", 0);
        record.key_label = Some(&label);
        for i in 1..=400 {
            assert_eq!(segment.append(&record, 1, i % 2 == 0).unwrap(), i);
        }
        let path = segment.path().to_path_buf();
        let written = records(&path);
        assert_eq!(written.len(), 400);
        let mut parser = LineParser::new(true);
        assert!(written.iter().all(|l| parser.parse(l).unwrap().link.is_none()));
        assert!(written[0].starts_with(b"{\"seq\":1,\"segment\":3,"));
        // The same operation again: the first in full, the rest repeats of it.
        assert!(written[0].windows(10).any(|w| w == b"\"operation"));
        for line in &written[1..] {
            let text = String::from_utf8_lossy(line);
            assert!(text.contains("\"as\":1,") && line.len() < 150, "{text}");
        }
        assert_eq!(linker.link_pending().unwrap(), 400);
        assert_eq!(linker.link_pending().unwrap(), 0);
        let linked = records(&path);
        // Each link follows the one before, from the opening record's.
        let key = segment_key(&[1; 32], &[9; LINK_LEN]);
        let mut prev = [9; LINK_LEN];
        let mut parser = LineParser::new(true);
        for line in &linked {
            let parsed = parser.parse(line).unwrap();
            let chained = [&prev[..], parsed.covered].concat();
            let expected = match parsed.entry.auth.as_str() {
                "g" => crate::audit::record::gmac_link(&key, parsed.entry.seq, &chained),
                _ => crate::mechanism::digest::sha256_array(&chained),
            };
            assert_eq!(parsed.link, Some(expected));
            prev = expected;
        }
        assert_eq!(linker.end(), (400, prev));
        segment.finish(linker).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().last(), Some(&b'\n'), "cut to its records");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_g_record_waits_for_the_key() {
        let dir = dir("key");
        let (mut segment, mut linker) = Segment::create(&dir, 1, false, 1 << 30).unwrap();
        segment.append(&Record::new("login", 0), 1, true).unwrap();
        assert!(linker.link_pending().is_err());
        assert!(linker.has_pending(), "nothing linked, nothing lost");
        linker.set_key(Some(&[1; 32]));
        assert_eq!(linker.link_pending().unwrap(), 1);
        segment.finish(linker).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_full_window_refuses_the_record() {
        let dir = dir("full");
        let (mut segment, linker) = Segment::create(&dir, 1, false, 4096).unwrap();
        let mut n = 0;
        while segment.append(&Record::new("encrypt", 0), 1, false).is_ok() {
            n += 1;
        }
        assert!(n > 5 && !segment.fits(400));
        assert_eq!(segment.seq(), n);
        segment.finish(linker).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
