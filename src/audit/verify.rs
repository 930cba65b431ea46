//! Walking an audit file: every line well-formed, sequence numbers contiguous from 1, every
//! link recomputed from the link before it (`h` always; `m` with the audit
//! key), and, when given, the anchor reached and matched. The first failure is reported with
//! its line and record; the walk stops there.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::AuditKey;
use super::record::{self, Entry, LINK_LEN, LineParser, decode_hex, hex};
use super::trail::{AUDIT_OFF, AUDIT_ON};
use crate::mechanism::{digest, mac};
use crate::{Error, Result};

/// A line longer than this is not a record (records are well under 4 KiB).
pub const MAX_LINE: u64 = 1 << 20;

/// What the verifier was told to expect from outside the file: at least `seq` records,
/// and, if given, `link` as the link of record `seq`. (Kept where the file cannot be
/// rewritten, it is what detects a truncated file or one rewritten without the key.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub link: Option<[u8; LINK_LEN]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records that passed, from seq 1 (up to the first problem, if any).
    pub records: u64,
    /// Of those, `m` records whose MAC was checked with the key.
    pub authenticated: u64,
    /// `m` records whose MAC could not be checked (no key given).
    pub unchecked: u64,
    /// `h` records after the last authenticated one: these only the anchor protects.
    pub unauthenticated_tail: u64,
    /// The last good record: seq and link (for the next anchor).
    pub head: Option<(u64, [u8; LINK_LEN])>,
    /// Records at the end written but not linked yet (a segment whose process is running, or
    /// was killed before linking them): present, but not protected by the chain.
    pub unlinked: u64,
    /// The line number of a final line without its `\n`: a writer interrupted in the middle
    /// of a record. It holds no record; reported apart from problems.
    pub partial_last_line: Option<u64>,
    /// The first bad record, if any.
    pub problem: Option<Problem>,
    /// Times with auditing off (`super::switch`), in the register: calls then are not
    /// recorded. The chain can be intact across them; they are reported beside it.
    pub audit_gaps: Vec<AuditGap>,
}

/// A time with auditing off: from the first `audit_off` record to the `audit_on` that ended
/// it (`None`: auditing is still off, or no process with the key has run since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditGap {
    pub off_at: u64,
    pub on_at: Option<u64>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first bad record: its line (from 1) and the seq it should have had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub seq: u64,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a record at all.
    Malformed(&'static str),
    /// Another sequence number than the next one: a record deleted, inserted or moved.
    Sequence { found: u64 },
    /// Its `h` link is not the SHA-256 of the link before it and what it covers: the record,
    /// or the chain before it, was changed.
    BadHash,
    /// Its `m` link is not the HMAC under the audit key of the link before it and what it
    /// covers: the record or the chain before it changed, or it was not written by a holder
    /// of the token key.
    BadMac,
    /// The file ends before the anchor's record.
    Truncated { anchor: u64 },
    /// The anchor's record has another link: the file was rewritten.
    AnchorMismatch,
    /// With the key, records but none authenticated: rewritten without the token key (any
    /// login writes an `m` record).
    NoneAuthenticated,
    /// A segment's record names another segment.
    WrongSegment { found: Option<u64> },
    /// A record closes a segment the register never opened, or one already closed.
    UnknownSegment { segment: u64 },
    /// An unauthenticated (`h`) record after authenticated ones, where only a holder of the
    /// key writes ([`super::record::may_follow_authenticated`]): a forgery.
    Unauthenticated,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, seq) = (self.line, self.seq);
        match &self.kind {
            ProblemKind::Malformed(why) => write!(f, "line {line} (record {seq}): malformed: {why}"),
            ProblemKind::Sequence { found } if *found < seq => write!(
                f,
                "line {line}: record {found} where record {seq} belongs (records reordered or duplicated)"
            ),
            ProblemKind::Sequence { found } => write!(
                f,
                "line {line}: record {found} where record {seq} belongs (record {seq} missing or records reordered)"
            ),
            ProblemKind::BadHash => {
                write!(
                    f,
                    "line {line}, record {seq}: its hash does not match (record altered, or the chain before it)"
                )
            }
            ProblemKind::BadMac => write!(
                f,
                "line {line}, record {seq}: bad MAC (record altered, or the chain before it, or not written by a holder of the token key)"
            ),
            ProblemKind::Truncated { anchor } => write!(
                f,
                "the file ends before record {anchor}, which was expected (truncated after record {})",
                seq - 1
            ),
            ProblemKind::AnchorMismatch => {
                write!(
                    f,
                    "line {line}, record {seq}: not the expected record (its link differs: file rewritten)"
                )
            }
            ProblemKind::WrongSegment { found } => write!(
                f,
                "line {line}, record {seq}: a record of {} in this segment (records moved between files)",
                found.map_or("the register".to_string(), |n| format!("segment {n}"))
            ),
            ProblemKind::UnknownSegment { segment } => write!(
                f,
                "line {line}, record {seq}: closes segment {segment}, which is not open (records moved or forged)"
            ),
            ProblemKind::Unauthenticated => write!(
                f,
                "line {line}, record {seq}: an unauthenticated record (auth h) after authenticated ones: not written by a holder of the token key (forged)"
            ),
            ProblemKind::NoneAuthenticated => write!(
                f,
                "no record is authenticated by the token key (the file was rewritten without it, from record {seq})"
            ),
        }
    }
}

/// Verifies the audit file at `path`. `key` checks `m` links (without it they are counted as
/// unchecked); `anchor` is what the file must reach. An error means the file could not be read.
pub fn verify(path: &Path, key: Option<&AuditKey>, anchor: Option<Anchor>) -> Result<VerifyReport> {
    verify_reader(read_register(path)?, key, anchor)
}

/// A register (a file shared by writers under `flock`) to read, up to the length it had
/// under the shared lock: no line half-written by a writer holding the exclusive one.
pub fn read_register(path: &Path) -> Result<impl BufRead> {
    let file = File::open(path)?;
    file.lock_shared()?;
    let len = file.metadata();
    let _ = file.unlock();
    let len = len?.len();
    Ok(BufReader::with_capacity(1 << 16, file.take(len)))
}

/// As [`verify`], over the bytes of a file.
pub fn verify_reader(
    reader: impl BufRead,
    key: Option<&AuditKey>,
    anchor: Option<Anchor>,
) -> Result<VerifyReport> {
    verify_chain(reader, key, anchor, Chain::default(), &mut |_, _| None)
}

/// Where a chain starts and how it ends.
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    /// The first record's `prev`: zeros for a register, the opening record's link for a
    /// segment.
    pub start: [u8; LINK_LEN],
    /// The file may end in zero bytes (a segment allocated ahead): the records end at the
    /// first zero byte, and everything after it must be zero.
    pub padded: bool,
    /// With the key, fail when no record is authenticated (see [`ProblemKind::NoneAuthenticated`]).
    pub require_authenticated: bool,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain { start: [0; LINK_LEN], padded: false, require_authenticated: true }
    }
}

/// Walks one chain. `check` sees every record whose link verified, with that link, and may
/// name a problem with it (the walk then stops there).
pub fn verify_chain(
    mut reader: impl BufRead,
    key: Option<&AuditKey>,
    anchor: Option<Anchor>,
    chain: Chain,
    check: &mut dyn FnMut(&Entry, &[u8; LINK_LEN]) -> Option<ProblemKind>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        records: 0,
        authenticated: 0,
        unchecked: 0,
        unauthenticated_tail: 0,
        unlinked: 0,
        head: None,
        partial_last_line: None,
        problem: None,
        audit_gaps: Vec::new(),
    };
    let mut prev = chain.start;
    // A segment's key for its `g` links, derived at its first `g` record.
    let mut segment_key = None;
    // Repeat records are a segment's (the writer's `Middle`), never the register's.
    let mut parser = LineParser::new(chain.padded);
    let mut line = Vec::with_capacity(1024);
    let mut covered = Vec::with_capacity(1024);
    let mut number = 0u64;
    // Whether an authenticated record came before (by its auth, checked or not).
    let mut seen_authenticated = false;
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        let seq = report.records + 1;
        let problem = |kind| Some(Problem { line: number, seq, kind });
        if chain.padded
            && let Some(zero) = line.iter().position(|b| *b == 0)
        {
            // The end of the records: all zeros from here, else something was written
            // after them.
            if !rest_is_zero(&line[zero..], &mut reader)? {
                report.problem = problem(ProblemKind::Malformed("data after the end of the records"));
            } else if zero > 0 {
                report.partial_last_line = Some(number);
            }
            break;
        }
        if line.last() != Some(&b'\n') {
            if n as u64 >= MAX_LINE {
                report.problem = problem(ProblemKind::Malformed("line too long"));
            } else {
                report.partial_last_line = Some(number);
            }
            break;
        }
        line.pop();
        let parsed = match parser.parse(&line) {
            Ok(p) => p,
            Err(why) => {
                report.problem = problem(ProblemKind::Malformed(why));
                break;
            }
        };
        let entry = &parsed.entry;
        if entry.seq != seq {
            report.problem = problem(ProblemKind::Sequence { found: entry.seq });
            break;
        }
        let Some(link) = parsed.link else {
            if !chain.padded {
                report.problem = problem(ProblemKind::Malformed("a record without a link in the register"));
                break;
            }
            // Written and not linked yet: only a tail of such records can be.
            report.unlinked += 1;
            report.records = seq;
            continue;
        };
        if report.unlinked > 0 {
            report.problem = problem(ProblemKind::Malformed("a linked record after an unlinked one"));
            break;
        }
        if seen_authenticated
            && !record::may_follow_authenticated(&entry.auth, &entry.operation, !chain.padded)
        {
            report.problem = problem(ProblemKind::Unauthenticated);
            break;
        }
        seen_authenticated |= entry.auth != "h";
        covered.clear();
        covered.extend_from_slice(&prev);
        covered.extend_from_slice(parsed.covered);
        let authenticated = if entry.auth == "m" || entry.auth == "g" {
            if entry.auth == "g" && !chain.padded {
                report.problem =
                    problem(ProblemKind::Malformed("a segment's record (auth g) in the register"));
                break;
            }
            match key {
                Some(key) => {
                    let expected = if entry.auth == "m" {
                        mac::hmac_sha256(key.as_ref(), &covered)
                    } else {
                        let segment_key = segment_key
                            .get_or_insert_with(|| record::segment_key(key.as_ref(), &chain.start));
                        record::gmac_link(segment_key, seq, &covered)
                    };
                    if expected != link {
                        report.problem = problem(ProblemKind::BadMac);
                        break;
                    }
                    report.authenticated += 1;
                    true
                }
                None => {
                    report.unchecked += 1;
                    false
                }
            }
        } else {
            if digest::sha256_array(&covered) != link {
                report.problem = problem(ProblemKind::BadHash);
                break;
            }
            false
        };
        if let Some(a) = anchor
            && a.seq == seq
            && a.link.is_some_and(|l| l != link)
        {
            report.problem = problem(ProblemKind::AnchorMismatch);
            break;
        }
        if let Some(kind) = check(entry, &link) {
            report.problem = problem(kind);
            break;
        }
        if !chain.padded {
            let open_gap = report.audit_gaps.last_mut().filter(|g| g.on_at.is_none());
            match (entry.operation.as_str(), open_gap) {
                (AUDIT_OFF, None) => report.audit_gaps.push(AuditGap { off_at: seq, on_at: None }),
                // Only an authenticated record ends a gap (`h` cannot be one, see above).
                (AUDIT_ON, Some(gap)) => gap.on_at = Some(seq),
                _ => {}
            }
        }
        report.unauthenticated_tail = if authenticated { 0 } else { report.unauthenticated_tail + 1 };
        report.records = seq;
        prev = link;
        report.head = Some((seq, prev));
    }
    if report.problem.is_none() {
        if let Some(a) = anchor
            && report.records < a.seq
        {
            report.problem = Some(Problem {
                line: number + 1,
                seq: report.records + 1,
                kind: ProblemKind::Truncated { anchor: a.seq },
            });
        } else if chain.require_authenticated
            && key.is_some()
            && report.records > 0
            && report.authenticated == 0
        {
            report.problem = Some(Problem { line: 1, seq: 1, kind: ProblemKind::NoneAuthenticated });
        }
    }
    Ok(report)
}

/// Whether `head` and everything left in `reader` are zero bytes.
fn rest_is_zero(head: &[u8], reader: &mut impl BufRead) -> Result<bool> {
    if head.iter().any(|b| *b != 0) {
        return Ok(false);
    }
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(true);
        }
        if buf.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// A link given as text (64 hex digits).
pub fn parse_link(text: &str) -> Result<[u8; LINK_LEN]> {
    decode_hex(text.trim().as_bytes()).ok_or(Error::ArgumentsBad)
}

/// A link as text.
pub fn link_text(link: &[u8; LINK_LEN]) -> String {
    hex(link)
}
