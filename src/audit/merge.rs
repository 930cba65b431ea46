//! Reading a whole trail in time order without holding it in memory: a k-way merge of the
//! register and the segments (`super::trail`), each file read as a stream.
//!
//! A file is opened only when the merge reaches the time of its first record and closed
//! when it is read out, so what is open at once is the register and the segments whose
//! processes were writing at that time — not the thousands of segments a trail collects
//! over the runs of many processes.
//!
//! A file's records keep their order. Within a file, times normally only grow; a thread
//! may take its record's time and then wait for its segment's lock while another thread
//! writes a later one, so that a time can be a millisecond (rarely more) below the one
//! before it. Such a record comes out after its predecessor in the file, so the merge is
//! in time order up to those inversions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::record::{Entry, LineParser, may_follow_authenticated};
use super::segment;
use super::trail::segment_dir;
use super::verify::MAX_LINE;

/// The complete records of one file, one at a time: its line (without `\n`) and its parsed
/// form. With `padded` (a segment), the records end at the first zero byte. A line that is
/// not a record is an `InvalidData` error naming it, and so is an unauthenticated record after
/// authenticated ones (a forgery, [`may_follow_authenticated`]); a partial final line ends
/// the records.
pub struct RecordReader<R> {
    reader: R,
    padded: bool,
    parser: LineParser,
    number: u64,
    done: bool,
    /// Whether an authenticated record came before.
    seen_authenticated: bool,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(reader: R, padded: bool) -> RecordReader<R> {
        RecordReader {
            reader,
            padded,
            parser: LineParser::new(padded),
            number: 0,
            done: false,
            seen_authenticated: false,
        }
    }

    pub fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, Entry)>> {
        if self.done {
            return Ok(None);
        }
        let mut line = Vec::with_capacity(512);
        if (&mut self.reader).take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            self.done = true;
            return Ok(None);
        }
        self.number += 1;
        if (self.padded && line.contains(&0)) || line.pop() != Some(b'\n') {
            self.done = true;
            return Ok(None);
        }
        let number = self.number;
        let entry = self
            .parser
            .parse(&line)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, format!("line {number}: {why}")))?
            .entry;
        // A forgery is not handed out as a record (`verify` names it too).
        if self.seen_authenticated && !may_follow_authenticated(&entry.auth, &entry.operation, !self.padded) {
            self.done = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {number}: an unauthenticated record after authenticated ones (forged)"),
            ));
        }
        self.seen_authenticated |= entry.auth != "h";
        Ok(Some((line, entry)))
    }
}

/// One file of the trail.
struct Source {
    path: PathBuf,
    padded: bool,
    /// Its place among the files: the register first, then segments by number (the order
    /// between records of the same millisecond).
    rank: usize,
    /// The time of its first record.
    first_time: u64,
}

impl Source {
    fn open(&self) -> io::Result<RecordReader<BufReader<File>>> {
        Ok(RecordReader::new(BufReader::with_capacity(1 << 16, File::open(&self.path)?), self.padded))
    }
}

/// An open file and its next record that `keep` accepted.
struct Open {
    rank: usize,
    path: PathBuf,
    reader: RecordReader<BufReader<File>>,
    head: Option<(Vec<u8>, Entry)>,
}

impl Open {
    fn advance(&mut self, keep: &dyn Fn(&Entry) -> bool) -> io::Result<()> {
        self.head = None;
        while let Some((line, entry)) = self.reader.next_record().map_err(|e| named(&self.path, e))? {
            if keep(&entry) {
                self.head = Some((line, entry));
                break;
            }
        }
        Ok(())
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Calls `each` with every record of the trail whose register is `register` that `keep`
/// accepts, in time order (see the module's comment), records of the same millisecond in
/// the order of their files (register, then segments by number) and lines.
pub fn merge_trail(
    register: &Path,
    keep: &dyn Fn(&Entry) -> bool,
    each: &mut dyn FnMut(&[u8], &Entry) -> io::Result<()>,
) -> io::Result<()> {
    let mut pending = sources(register)?;
    // Latest first, so that the next file to open is the last.
    pending.sort_by_key(|s| Reverse((s.first_time, s.rank)));
    let mut open: Vec<Option<Open>> = Vec::new();
    // (time, rank, slot in `open`) of every open file's head, earliest on top.
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    loop {
        // Open every file that may hold a record due before the earliest head.
        while let Some(next) = pending.last() {
            let due = heads
                .peek()
                .is_none_or(|Reverse((time, rank, _))| (next.first_time, next.rank) <= (*time, *rank));
            if !due {
                break;
            }
            let source = pending.pop().expect("looked at above");
            let mut file = Open {
                rank: source.rank,
                reader: source.open().map_err(|e| named(&source.path, e))?,
                path: source.path,
                head: None,
            };
            file.advance(keep)?;
            if let Some((_, entry)) = &file.head {
                let slot = open.iter().position(Option::is_none).unwrap_or_else(|| {
                    open.push(None);
                    open.len() - 1
                });
                heads.push(Reverse((entry.time, file.rank, slot)));
                open[slot] = Some(file);
            }
        }
        let Some(Reverse((_, _, slot))) = heads.pop() else {
            return Ok(());
        };
        let file = open[slot].as_mut().expect("a head's file is open");
        let (line, entry) = file.head.take().expect("an open file has a head");
        each(&line, &entry)?;
        file.advance(keep)?;
        match &file.head {
            Some((_, next)) => heads.push(Reverse((next.time, file.rank, slot))),
            // Read out: closed.
            None => open[slot] = None,
        }
    }
}

/// The register and the segments in its directory that hold a record, with the time of
/// their first one (each file opened and closed again).
fn sources(register: &Path) -> io::Result<Vec<Source>> {
    let mut files = vec![(register.to_path_buf(), false)];
    let dir = segment_dir(register);
    if dir.exists() {
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment::number_of(&e.file_name().to_string_lossy()).map(|n| (n, e.path())))
            .collect();
        segments.sort();
        files.extend(segments.into_iter().map(|(_, p)| (p, true)));
    }
    let mut sources = Vec::with_capacity(files.len());
    for (rank, (path, padded)) in files.into_iter().enumerate() {
        let mut source = Source { path, padded, rank, first_time: 0 };
        let first = source.open().and_then(|mut r| r.next_record()).map_err(|e| named(&source.path, e))?;
        if let Some((_, entry)) = first {
            source.first_time = entry.time;
            sources.push(source);
        }
    }
    Ok(sources)
}
