//! Walking a whole trail (`super::trail`): the register first, then every segment it opened,
//! each from the link of the record that opened it. Beyond what each chain shows, the walk
//! catches a segment deleted (opened in the register, no file), added (a file the register
//! never opened), or cut short or extended after its close (its last record is not the one
//! the register's `segment_close` names).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::AuditKey;
use super::record::{Entry, LINK_LEN, decode_hex};
use super::segment;
use super::trail::{SEGMENT_CLOSE, SEGMENT_OPEN, segment_dir};
use super::verify::{Anchor, Chain, Problem, ProblemKind, VerifyReport, read_register, verify_chain};
use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailReport {
    /// The register's own report (its head is what `--expect-seq/--expect-link` anchor).
    pub register: VerifyReport,
    /// Segments walked, and of those, closed by their process.
    pub segments: u64,
    pub closed_segments: u64,
    /// Records that passed, in all files.
    pub records: u64,
    pub authenticated: u64,
    pub unchecked: u64,
    /// `h` records (written before any login of their process): only their chain protects
    /// them, and a chain without a key can be recomputed.
    pub unauthenticated: u64,
    /// Records written and not linked yet, at the end of segments still open (their process
    /// is running, or was killed before linking them): present, but unprotected.
    pub unlinked: u64,
    /// Segments whose last record was cut by the death of its writer (holding no record).
    pub interrupted: Vec<u64>,
    /// Files in the segment directory that hold nothing and that the register never opened:
    /// a writer killed between creating its segment and recording it.
    pub empty_strays: Vec<String>,
    pub problem: Option<TrailProblem>,
}

impl TrailReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first problem of a trail, with the file it is in (relative to the token directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailProblem {
    pub file: String,
    pub kind: TrailProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailProblemKind {
    /// A bad record in the file.
    Record(Problem),
    /// The register opened this segment; its file is gone.
    Missing { segment: u64 },
    /// A file the register never opened, holding data.
    Unregistered,
    /// The segment does not end where its `segment_close` says.
    EndMismatch { closed_at: u64, ends_at: u64 },
}

impl fmt::Display for TrailProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.kind {
            TrailProblemKind::Record(p) => write!(f, "{file}: {p}"),
            TrailProblemKind::Missing { segment } => write!(
                f,
                "{file}: missing (segment {segment} was opened by register record {segment}; the file was deleted)"
            ),
            TrailProblemKind::Unregistered => {
                write!(
                    f,
                    "{file}: a segment the register never opened (added, or its opening record removed)"
                )
            }
            TrailProblemKind::EndMismatch { closed_at, ends_at } if ends_at < closed_at => write!(
                f,
                "{file}: ends at record {ends_at}, but was closed at record {closed_at} (truncated)"
            ),
            TrailProblemKind::EndMismatch { closed_at, ends_at } => write!(
                f,
                "{file}: its record {closed_at} is not the one it was closed with, or records follow it \
                 (ends at {ends_at}: rewritten or appended to after its close)"
            ),
        }
    }
}

/// Verifies the trail whose register is at `register_path`; `key` and `anchor` as in
/// [`super::verify`] (the anchor is the register's).
pub fn verify_trail(
    register_path: &Path,
    key: Option<&AuditKey>,
    anchor: Option<Anchor>,
) -> Result<TrailReport> {
    let register_name = file_label(register_path);
    let mut opened: BTreeMap<u64, [u8; LINK_LEN]> = BTreeMap::new();
    let mut closed: BTreeMap<u64, (u64, [u8; LINK_LEN])> = BTreeMap::new();
    let mut check_register = |e: &Entry, link: &[u8; LINK_LEN]| {
        if e.operation == SEGMENT_OPEN {
            opened.insert(e.seq, *link);
        } else if e.operation == SEGMENT_CLOSE {
            let n = e.segment.unwrap_or(0);
            let end = e.end_seq.zip(e.end_link.as_deref().and_then(|l| decode_hex(l.as_bytes())));
            match end {
                Some(end) if opened.contains_key(&n) && !closed.contains_key(&n) => {
                    closed.insert(n, end);
                }
                _ => return Some(ProblemKind::UnknownSegment { segment: n }),
            }
        }
        None
    };
    let chain = Chain { require_authenticated: false, ..Chain::default() };
    let register_report =
        verify_chain(read_register(register_path)?, key, anchor, chain, &mut check_register)?;
    let mut report = TrailReport {
        segments: 0,
        closed_segments: 0,
        records: register_report.records,
        authenticated: register_report.authenticated,
        unchecked: register_report.unchecked,
        unauthenticated: register_report.records - register_report.authenticated - register_report.unchecked,
        unlinked: 0,
        interrupted: Vec::new(),
        empty_strays: Vec::new(),
        problem: register_report
            .problem
            .clone()
            .map(|p| TrailProblem { file: register_name.clone(), kind: TrailProblemKind::Record(p) }),
        register: register_report,
    };
    if report.problem.is_some() {
        return Ok(report);
    }
    let dir = segment_dir(register_path);
    let dir_name = file_label(&dir);
    let at = |name: &str| format!("{dir_name}/{name}");
    // Files the register did not open.
    if dir.exists() {
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            if segment::number_of(&name).is_some_and(|n| opened.contains_key(&n)) {
                continue;
            }
            if holds_nothing(&dir.join(&name))? {
                report.empty_strays.push(at(&name));
            } else {
                report.problem = Some(TrailProblem { file: at(&name), kind: TrailProblemKind::Unregistered });
                return Ok(report);
            }
        }
    }
    for (&n, start) in &opened {
        let name = segment::file_name(n);
        let path = dir.join(&name);
        let chain = Chain { start: *start, padded: true, require_authenticated: false };
        let mut check_segment = |e: &Entry, _: &[u8; LINK_LEN]| {
            (e.segment != Some(n)).then_some(ProblemKind::WrongSegment { found: e.segment })
        };
        // A segment still open may be read while its process links records, so that a read
        // sees a record unlinked and one after it linked: read again before calling it a
        // problem (a forged file stays wrong).
        let mut attempts = if closed.contains_key(&n) { 1 } else { 3 };
        let r = loop {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.problem = Some(TrailProblem {
                        file: at(&name),
                        kind: TrailProblemKind::Missing { segment: n },
                    });
                    return Ok(report);
                }
                Err(e) => return Err(e.into()),
            };
            let r =
                verify_chain(BufReader::with_capacity(1 << 16, file), key, None, chain, &mut check_segment)?;
            attempts -= 1;
            if r.problem.is_none() || attempts == 0 {
                break r;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        report.segments += 1;
        report.records += r.records;
        report.authenticated += r.authenticated;
        report.unchecked += r.unchecked;
        report.unauthenticated += r.records - r.authenticated - r.unchecked - r.unlinked;
        report.unlinked += r.unlinked;
        if let Some(p) = r.problem {
            report.problem = Some(TrailProblem { file: at(&name), kind: TrailProblemKind::Record(p) });
            return Ok(report);
        }
        let head = r.head.unwrap_or((0, *start));
        match closed.get(&n) {
            Some(&(closed_at, link)) => {
                report.closed_segments += 1;
                if head != (closed_at, link) || r.records != closed_at || r.partial_last_line.is_some() {
                    report.problem = Some(TrailProblem {
                        file: at(&name),
                        kind: TrailProblemKind::EndMismatch { closed_at, ends_at: r.records },
                    });
                    return Ok(report);
                }
            }
            None if r.partial_last_line.is_some() => report.interrupted.push(n),
            None => {}
        }
    }
    if key.is_some() && report.records > 0 && report.authenticated == 0 {
        report.problem = Some(TrailProblem {
            file: register_name,
            kind: TrailProblemKind::Record(Problem { line: 1, seq: 1, kind: ProblemKind::NoneAuthenticated }),
        });
    }
    Ok(report)
}

/// `token-0.audit` for `/some/dir/token-0.audit`.
fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Whether the file is empty or all zero bytes.
fn holds_nothing(path: &Path) -> Result<bool> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}
