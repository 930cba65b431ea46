//! Writing lines: a record's fields in their fixed order, and the kept parts of the last
//! record that let a writer under load encode the next one at a fraction of the cost
//! ([`Head`], [`Middle`], [`Tail`]).

use super::{
    AUTH_FIELD, Entry, LINK_LEN, LINK_PREFIX, MAX_FIELD_LEN, MiddleFields, Record, UNLINKED, decode_hex,
    link_digits,
};

/// A record's line as the writer would have written it in full: for a repeat record, what
/// the export writes (every exported line stands alone), its link being the stored line's
/// (`verify` reads the stored lines); for any other, its stored line again.
pub fn expanded_line(e: &Entry) -> Vec<u8> {
    let end = e.end_seq.zip(e.end_link.as_deref().and_then(|link| decode_hex(link.as_bytes())));
    let record = Record {
        time_ms: e.time,
        principal: &e.principal,
        session: e.session,
        operation: &e.operation,
        key_uid: e.key_uid.as_deref(),
        key_label: e.key_label.as_deref(),
        key_version: e.key_version,
        mechanism: e.mechanism,
        result: e.result,
        segment: e.segment,
        end,
        described_as: None,
        client: e.client,
    };
    let mut buf = Vec::with_capacity(256);
    // The auth letter and the link's digits or dashes were checked when the line was parsed.
    encode_covered(&mut buf, e.seq, e.pid, &record, e.auth.as_bytes().first().copied().unwrap_or(b'h'));
    buf.extend_from_slice(LINK_PREFIX);
    buf.extend_from_slice(e.link.as_bytes());
    buf.extend_from_slice(b"\"}");
    buf
}

/// Appends the bytes a link covers: the line from `{` to the end of its `auth` field.
/// The link is written by [`encode_link`]: computed, or [`UNLINKED`] for [`link_line`] to
/// fill in later.
/// Appends the bytes a link covers: the line from `{` to the end of its `auth` field.
/// The link is written by [`encode_link`]: computed, or [`UNLINKED`] for [`link_line`] to
/// fill in later.
pub fn encode_covered(buf: &mut Vec<u8>, seq: u64, pid: u32, record: &Record<'_>, auth: u8) {
    encode_head(buf, seq, record);
    encode_middle(buf, pid, record);
    encode_tail(buf, record, auth);
}

/// The fields that change from record to record at the start: seq, segment, time.
pub fn encode_head(buf: &mut Vec<u8>, seq: u64, record: &Record<'_>) {
    buf.extend_from_slice(b"{\"seq\":");
    push_u64(buf, seq);
    if let Some(segment) = record.segment {
        buf.extend_from_slice(b",\"segment\":");
        push_u64(buf, segment);
    }
    buf.extend_from_slice(b",\"time\":");
    push_u64(buf, record.time_ms);
}

/// The head of a writer's records, kept between them: a process records up to millions of
/// operations a second, so its next sequence number is the last one's digits incremented
/// in place, and `,"segment":N,"time":T` is encoded again only when the millisecond (or
/// the segment) changes — what [`encode_head`] writes, at a fraction of its cost.
#[derive(Default)]
pub struct Head {
    seq: u64,
    seq_digits: Vec<u8>,
    segment: Option<u64>,
    time_ms: u64,
    rest: Vec<u8>,
    valid: bool,
}

impl Head {
    pub fn encode(&mut self, buf: &mut Vec<u8>, seq: u64, record: &Record<'_>) {
        if self.valid && seq == self.seq.wrapping_add(1) {
            increment_decimal(&mut self.seq_digits);
        } else {
            self.seq_digits.clear();
            push_u64(&mut self.seq_digits, seq);
        }
        self.seq = seq;
        if !self.valid || self.segment != record.segment || self.time_ms != record.time_ms {
            self.rest.clear();
            if let Some(segment) = record.segment {
                self.rest.extend_from_slice(b",\"segment\":");
                push_u64(&mut self.rest, segment);
            }
            self.rest.extend_from_slice(b",\"time\":");
            push_u64(&mut self.rest, record.time_ms);
            self.segment = record.segment;
            self.time_ms = record.time_ms;
        }
        self.valid = true;
        buf.extend_from_slice(b"{\"seq\":");
        buf.extend_from_slice(&self.seq_digits);
        buf.extend_from_slice(&self.rest);
    }
}

/// The end of a writer's unlinked records (result, auth, the dashes of the link to come),
/// kept while result and auth repeat: what [`encode_tail`] and `encode_link(…, None)`
/// write. A record that closes a segment (with `end`) is encoded afresh.
#[derive(Default)]
pub struct Tail {
    result: u64,
    auth: u8,
    bytes: Vec<u8>,
}

impl Tail {
    pub fn encode_unlinked(&mut self, buf: &mut Vec<u8>, record: &Record<'_>, auth: u8) {
        if record.end.is_some() {
            encode_tail(buf, record, auth);
            encode_link(buf, auth, None);
            return;
        }
        if self.bytes.is_empty() || self.result != record.result || self.auth != auth {
            self.bytes.clear();
            encode_tail(&mut self.bytes, record, auth);
            encode_link(&mut self.bytes, auth, None);
            self.result = record.result;
            self.auth = auth;
        }
        buf.extend_from_slice(&self.bytes);
    }
}

/// Adds one to a number written in decimal digits.
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// The fields that describe who did what to which key (principal to mechanism): the same
/// for a run of the same operation, which a writer may keep (see [`Middle`]).
pub fn encode_middle(buf: &mut Vec<u8>, pid: u32, record: &Record<'_>) {
    buf.extend_from_slice(b",\"principal\":");
    push_str(buf, record.principal);
    buf.extend_from_slice(b",\"pid\":");
    push_u64(buf, u64::from(pid));
    if let Some(client) = record.client {
        buf.extend_from_slice(b",\"client_uid\":");
        push_u64(buf, u64::from(client.uid));
        buf.extend_from_slice(b",\"client_gid\":");
        push_u64(buf, u64::from(client.gid));
        buf.extend_from_slice(b",\"client_pid\":");
        push_u64(buf, u64::from(client.pid));
    }
    buf.extend_from_slice(b",\"session\":");
    push_u64(buf, record.session);
    buf.extend_from_slice(b",\"operation\":");
    push_str(buf, record.operation);
    if let Some(uid) = record.key_uid {
        buf.extend_from_slice(b",\"key_uid\":");
        push_str(buf, uid);
    }
    if let Some(label) = record.key_label {
        buf.extend_from_slice(b",\"key_label\":");
        push_str(buf, label);
    }
    if let Some(v) = record.key_version {
        buf.extend_from_slice(b",\"key_version\":");
        push_u64(buf, u64::from(v));
    }
    if let Some(m) = record.mechanism {
        buf.extend_from_slice(b",\"mechanism\":");
        push_u64(buf, m);
    }
}

/// The rest of the covered bytes: result, a segment's end and auth.
pub fn encode_tail(buf: &mut Vec<u8>, record: &Record<'_>, auth: u8) {
    buf.extend_from_slice(b",\"result\":");
    push_u64(buf, record.result);
    if let Some((end_seq, end_link)) = &record.end {
        buf.extend_from_slice(b",\"end_seq\":");
        push_u64(buf, *end_seq);
        buf.extend_from_slice(b",\"end_link\":\"");
        push_hex(buf, end_link);
        buf.push(b'"');
    }
    buf.extend_from_slice(AUTH_FIELD);
    buf.push(auth);
    buf.push(b'"');
}

/// The middle of the last record a writer encoded, kept with what it was encoded from: a
/// process repeating one operation on one key (the common case under load) writes it once
/// in full and then, record after record, only `,"as":M` — M being the record that has it
/// in full (see the module comment; a repeat record is half the size).
#[derive(Default)]
pub struct Middle {
    bytes: Vec<u8>,
    /// `,"as":M` where M is the last record of the segment written with `bytes` in full; empty
    /// while there is none (the next record with this middle is written in full).
    repeat: Vec<u8>,
    described_as: Option<u64>,
    /// What `bytes` was encoded from (nothing yet while `bytes` is empty).
    kept: MiddleFields,
}

impl Middle {
    /// Appends the middle of `record` by `pid` to `buf`: as a repeat when the kept one
    /// matches and a record written in full has it, else in full. [`Middle::written`] must
    /// follow once the line is in the segment: a repeat may only name a record that is there.
    pub fn encode(&mut self, buf: &mut Vec<u8>, pid: u32, record: &Record<'_>) {
        let same_names = match (self.described_as, record.described_as) {
            (Some(kept), Some(now)) => kept == now,
            _ => {
                self.kept.principal == record.principal
                    && self.kept.key_uid.as_deref() == record.key_uid
                    && self.kept.key_label.as_deref() == record.key_label
                    && self.kept.key_version == record.key_version
            }
        };
        let same = !self.bytes.is_empty()
            && self.kept.pid == pid
            && self.kept.client == record.client
            && self.kept.session == record.session
            && self.kept.mechanism == record.mechanism
            && self.kept.operation == record.operation
            && same_names;
        if !same {
            self.bytes.clear();
            encode_middle(&mut self.bytes, pid, record);
            self.described_as = record.described_as;
            self.kept.pid = pid;
            self.kept.client = record.client;
            self.kept.session = record.session;
            self.kept.key_version = record.key_version;
            self.kept.mechanism = record.mechanism;
            replace(&mut self.kept.operation, record.operation);
            replace(&mut self.kept.principal, record.principal);
            replace_opt(&mut self.kept.key_uid, record.key_uid);
            replace_opt(&mut self.kept.key_label, record.key_label);
            self.repeat.clear();
        }
        if self.repeat.is_empty() {
            buf.extend_from_slice(&self.bytes);
        } else {
            buf.extend_from_slice(&self.repeat);
        }
    }

    /// Record `seq`, just encoded, is in the segment: if it was written in full, the next
    /// records with its middle may repeat it.
    pub fn written(&mut self, seq: u64) {
        if self.repeat.is_empty() {
            self.repeat.extend_from_slice(REPEAT_FIELD);
            push_u64(&mut self.repeat, seq);
        }
    }
}

/// The field of a repeat record naming the record whose middle it repeats.
const REPEAT_FIELD: &[u8] = b",\"as\":";

fn replace(kept: &mut String, new: &str) {
    kept.clear();
    kept.push_str(new);
}

fn replace_opt(kept: &mut Option<String>, new: Option<&str>) {
    match (kept.as_mut(), new) {
        (Some(k), Some(n)) => replace(k, n),
        (_, n) => *kept = n.map(str::to_owned),
    }
}

/// Appends the end of a line whose auth is `auth`: its link (or [`UNLINKED`]) and `}\n`.
pub fn encode_link(buf: &mut Vec<u8>, auth: u8, link: Option<&[u8; LINK_LEN]>) {
    let digits = link_digits(auth);
    buf.extend_from_slice(LINK_PREFIX);
    match link {
        Some(link) => push_hex(buf, &link[..digits / 2]),
        None => buf.extend_from_slice(&UNLINKED[..digits]),
    }
    buf.extend_from_slice(b"\"}\n");
}

/// `s` (at most [`MAX_FIELD_LEN`] bytes of it) as a JSON string.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    let s = truncate(s, MAX_FIELD_LEN);
    buf.push(b'"');
    let bytes = s.as_bytes();
    // Names, labels and hex ids seldom need escaping: one pass to check, one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f) {
        buf.extend_from_slice(bytes);
        buf.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(b"\\u00");
            push_hex(buf, &[b]);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `n` in decimal.
fn push_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `bytes` in lower-case hex.
fn push_hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    let start = buf.len();
    buf.resize(start + 2 * bytes.len(), 0);
    // The output is exactly twice the input, as sized above: this cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut buf[start..]);
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    /// The lines a segment's writer makes of `records` (unlinked), as `Segment::append` does;
    /// the records at the indexes `lost` are encoded and then not taken by the file.
    fn segment_lines(records: &[Record<'_>], lost: &[usize]) -> Vec<Vec<u8>> {
        let (mut head, mut middle, mut tail) = (Head::default(), Middle::default(), Tail::default());
        let mut lines = vec![];
        let mut seq = 0;
        for (i, r) in records.iter().enumerate() {
            let r = Record { segment: Some(5), ..*r };
            let mut buf = vec![];
            head.encode(&mut buf, seq + 1, &r);
            middle.encode(&mut buf, 77, &r);
            tail.encode_unlinked(&mut buf, &r, b'g');
            // A line the segment did not take (a full file) is not there, and its number is
            // the next line's.
            if !lost.contains(&i) {
                seq += 1;
                middle.written(seq);
                buf.pop();
                lines.push(buf);
            }
        }
        lines
    }

    fn sample(operation: &str) -> Record<'_> {
        let mut r = Record::new(operation, 0);
        r.principal = "ctx-api";
        r.session = 3;
        r.key_uid = Some("u1");
        r.key_label = Some("dek-acme-v1");
        r.mechanism = Some(0x1087);
        r
    }

    #[test]
    fn a_kept_middle_is_reused_only_for_the_same_fields() {
        let mut middle = Middle::default();
        let mut r = Record::new("encrypt", 0);
        r.principal = "ctx-api";
        r.key_uid = Some("u1");
        r.key_label = Some("dek-acme-v1");
        r.mechanism = Some(0x1087);
        let fresh = |r: &Record<'_>, pid| {
            let mut b = vec![];
            encode_middle(&mut b, pid, r);
            b
        };
        let mut variants = vec![r];
        let mut v = r;
        v.principal = "other";
        variants.push(v);
        let mut v = r;
        v.session = 9;
        variants.push(v);
        let mut v = r;
        v.key_label = None;
        variants.push(v);
        let mut v = r;
        v.key_version = Some(2);
        variants.push(v);
        let mut v = r;
        v.operation = "decrypt";
        variants.push(v);
        // Under one description id the names are promised equal; a new id re-encodes.
        let mut described = variants.clone();
        for (i, v) in described.iter_mut().enumerate() {
            v.described_as = Some(100 + i as u64);
        }
        variants.extend(described);
        // A middle equal to the last one is a repeat of the record that has it in full.
        let (mut seq, mut last, mut full_at) = (0u64, Vec::new(), 0u64);
        let mut repeats = 0;
        for (i, v) in variants.iter().chain(variants.iter().rev()).enumerate() {
            for pid in [1, 1, 2] {
                seq += 1;
                let mut got = vec![];
                middle.encode(&mut got, pid, v);
                middle.written(seq);
                let full = fresh(v, pid);
                if full == last {
                    assert_eq!(got, format!(",\"as\":{full_at}").into_bytes(), "variant {i}, pid {pid}");
                    repeats += 1;
                } else {
                    assert_eq!(got, full, "variant {i}, pid {pid}");
                    (last, full_at) = (full, seq);
                }
            }
        }
        assert!(repeats >= variants.len(), "{repeats} repeats");
    }

    #[test]
    fn repeat_records_read_back_as_the_record_they_repeat() {
        let (enc, dec) = (sample("encrypt"), sample("decrypt"));
        let records = [enc, enc, enc, dec, dec, enc];
        let lines = segment_lines(&records, &[]);
        let text: Vec<&str> = lines.iter().map(|l| std::str::from_utf8(l).unwrap()).collect();
        for (i, repeats) in [(1, 1), (2, 1), (4, 4)] {
            assert!(text[i].contains(&format!(",\"as\":{repeats},")), "{}", text[i]);
            assert!(!text[i].contains("principal") && text[i].len() < text[0].len() / 2 + 20, "{}", text[i]);
        }
        for i in [0, 3, 5] {
            assert!(!text[i].contains("\"as\"") && text[i].contains("\"principal\""), "{}", text[i]);
        }
        let mut parser = LineParser::new(true);
        let entries: Vec<Entry> = lines.iter().map(|l| parser.parse(l).unwrap().entry).collect();
        for (e, r) in entries.iter().zip(records) {
            assert_eq!((e.principal.as_str(), e.pid, e.session), (r.principal, 77, r.session));
            assert_eq!((e.operation.as_str(), e.key_uid.as_deref()), (r.operation, r.key_uid));
            assert_eq!((e.key_label.as_deref(), e.mechanism), (r.key_label, r.mechanism));
        }
        assert_eq!(
            entries.iter().map(|e| e.repeats).collect::<Vec<_>>(),
            [None, Some(1), Some(1), None, Some(4), None]
        );
        // The export writes a repeat whole: as the writer would have written it in full.
        for ((e, line), r) in entries.iter().zip(&lines).zip(records) {
            let whole = expanded_line(e);
            if e.repeats.is_none() {
                assert_eq!(&whole, line);
            } else {
                let mut full = vec![];
                encode_covered(
                    &mut full,
                    e.seq,
                    77,
                    &Record { segment: Some(5), time_ms: e.time, ..r },
                    b'g',
                );
                encode_link(&mut full, b'g', None);
                full.pop();
                assert_eq!(whole, full);
                assert_eq!(parse_line(&whole).unwrap().entry, Entry { repeats: None, ..e.clone() });
            }
        }
    }

    #[test]
    fn a_repeat_names_only_a_record_in_the_segment() {
        // The second record, the first encrypt, could not be written: the next one (numbered
        // 2 in its place) is written in full, not as a repeat of it, and the rest repeat that.
        let (enc, dec) = (sample("encrypt"), sample("decrypt"));
        let lines = segment_lines(&[dec, enc, enc, enc], &[1]);
        assert_eq!(lines.len(), 3);
        let mut parser = LineParser::new(true);
        let repeats: Vec<Option<u64>> =
            lines.iter().map(|l| parser.parse(l).unwrap().entry.repeats).collect();
        assert_eq!(repeats, [None, None, Some(2)]);
    }

    #[test]
    fn repeat_records_out_of_place_are_refused() {
        let enc = sample("encrypt");
        let lines = segment_lines(&[enc, enc, sample("decrypt"), enc], &[]);
        let text = |l: &[u8]| String::from_utf8(l.to_vec()).unwrap();
        let repeat = text(&lines[1]);
        let refused = |lines: &[String], repeats_allowed: bool| {
            let mut parser = LineParser::new(repeats_allowed);
            lines.iter().map(|l| parser.parse(l.as_bytes()).map(|_| ())).collect::<Result<Vec<_>, _>>()
        };
        let full = text(&lines[0]);
        assert!(refused(&[full.clone(), repeat.clone()], true).is_ok());
        // Outside a segment; standing alone; first in its file.
        assert!(refused(&[full.clone(), repeat.clone()], false).is_err());
        assert!(parse_line(repeat.as_bytes()).is_err());
        assert!(refused(std::slice::from_ref(&repeat), true).is_err());
        // Naming a record that is not the last one written in full (line 3 is).
        let after_other =
            [full.clone(), repeat.clone(), text(&lines[2]), repeat.replace("\"seq\":2", "\"seq\":4")];
        assert_eq!(
            refused(&after_other, true),
            Err("a repeat record naming another record than the last one written in full")
        );
        let wrong = repeat.replace("\"as\":1", "\"as\":2");
        assert!(refused(&[full.clone(), wrong], true).is_err());
        // With a field of its own; a record without a middle that is no repeat.
        let own = repeat.replace("\"as\":1", "\"as\":1,\"principal\":\"x\"");
        assert_eq!(refused(&[full.clone(), own], true), Err("a repeat record with fields of its own"));
        let bare = repeat.replace(",\"as\":1", "");
        assert_eq!(refused(&[full, bare], true), Err("no principal"));
    }

    #[test]
    fn a_kept_head_writes_what_encode_head_writes() {
        let mut head = Head::default();
        let mut r = Record::new("encrypt", 0);
        r.segment = Some(9);
        let seqs = (1..=12).chain(97..=1002).chain([5, 6, 99_999, 100_000, 100_001, u64::MAX - 1, u64::MAX]);
        for (i, seq) in seqs.enumerate() {
            // The time moves every few records; the segment once.
            r.time_ms = 1_795_858_200_000 + (i / 3) as u64;
            if i == 500 {
                r.segment = Some(10);
            }
            let (mut kept, mut fresh) = (vec![], vec![]);
            head.encode(&mut kept, seq, &r);
            encode_head(&mut fresh, seq, &r);
            assert_eq!(kept, fresh, "seq {seq}");
        }
    }

    #[test]
    fn a_kept_tail_writes_what_encode_tail_and_encode_link_write() {
        let mut tail = Tail::default();
        let mut r = Record::new("encrypt", 0);
        for (result, auth, end) in [
            (0, b'g', None),
            (0, b'g', None),
            (0x91, b'g', None),
            (0x91, b'h', None),
            (0, b'h', Some((4, [7; 32]))),
        ]
        .into_iter()
        .chain([(0, b'g', None), (5, b'g', None), (0, b'g', None)])
        {
            r.result = result;
            r.end = end;
            let (mut kept, mut fresh) = (vec![], vec![]);
            tail.encode_unlinked(&mut kept, &r, auth);
            encode_tail(&mut fresh, &r, auth);
            encode_link(&mut fresh, auth, None);
            assert_eq!(kept, fresh, "result {result:#x}, auth {}, end {end:?}", auth as char);
        }
    }

    #[test]
    fn numbers_are_decimal() {
        for n in [0, 7, 9, 10, 99, 100, 101, 1234567890, 1795858200000, u64::MAX] {
            let mut buf = Vec::new();
            push_u64(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes());
        }
    }
}
