//! One audit record: what a caller describes ([`Record`]), its line in the file, and the
//! parsed form of a line ([`Entry`]).
//!
//! A line is a JSON object with the fields in this fixed order, optional ones left out when
//! absent, then `\n`:
//!
//! ```text
//! {"seq":7,"segment":12,"time":1764356400000,"principal":"user","pid":4242,"session":3,
//!  "operation":"encrypt","key_uid":"…","key_label":"dek-acme-v1","key_version":1,
//!  "mechanism":4231,"result":0,"auth":"m","link":"<64 hex>"}
//! ```
//!
//! (on one line; `segment` in the records of a segment and in the register's records that
//! open and close one, `end_seq` and `end_link` after `result` in those that close one).
//! The link covers the previous record's link (raw, 32 bytes: the chain) followed by the
//! line's bytes up to, not including, `,"link":"`: everything the record says and its
//! `auth`. (The previous link is not repeated in the line: a verifier has it, and leaving it
//! out makes every record 74 bytes shorter.)

use serde::Deserialize;

use crate::mechanism::{digest, mac};

/// Bytes of a link (SHA-256 / HMAC-SHA256).
pub const LINK_LEN: usize = 32;

/// At most this many bytes of a string field are recorded (cut at a character boundary).
pub const MAX_FIELD_LEN: usize = 256;

/// `,"link":"` + 64 hex digits + `"}`: the end of every line, before its `\n`.
pub const LINK_PREFIX: &[u8] = b",\"link\":\"";
pub const SUFFIX_LEN: usize = LINK_PREFIX.len() + 2 * LINK_LEN + 2;

/// An event to record, as its caller describes it. Never a secret: no PIN, key value or data.
/// The writer adds the sequence number, the process id, the segment and the chain.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Unix time in milliseconds ([`now_ms`] for the present).
    pub time_ms: u64,
    /// `so`, `user`, a principal's name, or empty when nobody is logged in.
    pub principal: &'a str,
    /// The session handle, 0 for none.
    pub session: u64,
    /// What happened: `login`, `encrypt`, `C_EncryptInit`, ... (the caller's choice).
    pub operation: &'a str,
    pub key_uid: Option<&'a str>,
    pub key_label: Option<&'a str>,
    pub key_version: Option<u32>,
    /// The `CKM_*` mechanism, if any.
    pub mechanism: Option<u64>,
    /// The `CK_RV` returned.
    pub result: u64,
    /// The segment (`crate::audit::trail`) the record belongs to, or, in the register, the
    /// segment it opens or closes. Set by the writer.
    pub segment: Option<u64>,
    /// In the register's record closing a segment: that segment's last sequence number and
    /// link.
    pub end: Option<(u64, [u8; LINK_LEN])>,
    /// Names the principal and key fields as a whole: records with the same id have the
    /// same principal, key uid, label and version, so a writer may reuse their encoding
    /// without comparing them (see [`Middle`]). `None`: no such promise.
    pub described_as: Option<u64>,
}

impl<'a> Record<'a> {
    /// A record of `operation` now, by nobody, on no session and no key.
    pub fn new(operation: &'a str, result: u64) -> Record<'a> {
        Record {
            time_ms: now_ms(),
            principal: "",
            session: 0,
            operation,
            key_uid: None,
            key_label: None,
            key_version: None,
            mechanism: None,
            result,
            segment: None,
            end: None,
            described_as: None,
        }
    }
}

/// The present as Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A line read back from the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    #[serde(default)]
    pub segment: Option<u64>,
    pub time: u64,
    pub principal: String,
    pub pid: u32,
    pub session: u64,
    pub operation: String,
    #[serde(default)]
    pub key_uid: Option<String>,
    #[serde(default)]
    pub key_label: Option<String>,
    #[serde(default)]
    pub key_version: Option<u32>,
    #[serde(default)]
    pub mechanism: Option<u64>,
    pub result: u64,
    #[serde(default)]
    pub end_seq: Option<u64>,
    #[serde(default)]
    pub end_link: Option<String>,
    /// `m` (HMAC under the audit key) or `h` (SHA-256).
    pub auth: String,
    /// This record's link, hex.
    pub link: String,
}

/// Why a line is not a well-formed record.
pub type Malformed = &'static str;

/// A line (without its `\n`) split into the bytes its link covers and its link, then parsed.
pub struct ParsedLine<'a> {
    /// The line up to, not including, `,"link":"`.
    pub covered: &'a [u8],
    /// `None` for a record written and not yet linked (its `link` is [`UNLINKED`]; see
    /// `super::segment`).
    pub link: Option<[u8; LINK_LEN]>,
    pub entry: Entry,
}

/// What stands for the link of a record written before its link was computed.
pub const UNLINKED: [u8; 2 * LINK_LEN] = [b'-'; 2 * LINK_LEN];

/// `,"auth":"` + the auth letter + `"`: the end of the covered bytes.
const AUTH_FIELD: &[u8] = b",\"auth\":\"";
const AUTH_FIELD_LEN: usize = AUTH_FIELD.len() + 2;

/// Parses one line (without its `\n`).
pub fn parse_line(line: &[u8]) -> Result<ParsedLine<'_>, Malformed> {
    if line.len() < SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return Err("not an audit record (no link at its end)");
    }
    let split = line.len() - SUFFIX_LEN;
    let (covered, suffix) = line.split_at(split);
    if !suffix.starts_with(LINK_PREFIX) {
        return Err("not an audit record (no link at its end)");
    }
    let link_text = &suffix[LINK_PREFIX.len()..LINK_PREFIX.len() + 2 * LINK_LEN];
    // A link still (or partly: read while it was being written) dashes: not linked yet.
    let link = if link_text.contains(&b'-') {
        if !link_text.iter().all(|b| *b == b'-' || b.is_ascii_hexdigit()) {
            return Err("its link is not 64 hex digits");
        }
        None
    } else {
        Some(decode_hex(link_text).ok_or("its link is not 64 hex digits")?)
    };
    let entry: Entry = serde_json::from_slice(line).map_err(|_| "not a well-formed audit record (JSON)")?;
    if entry.auth != "m" && entry.auth != "h" {
        return Err("its auth is neither \"m\" nor \"h\"");
    }
    Ok(ParsedLine { covered, link, entry })
}

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

/// The fields that describe who did what to which key (principal to mechanism): the same
/// for a run of the same operation, which a writer may keep (see [`Middle`]).
pub fn encode_middle(buf: &mut Vec<u8>, pid: u32, record: &Record<'_>) {
    buf.extend_from_slice(b",\"principal\":");
    push_str(buf, record.principal);
    buf.extend_from_slice(b",\"pid\":");
    push_u64(buf, u64::from(pid));
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
/// process repeating one operation on one key (the common case under load) copies it
/// rather than encoding it again.
#[derive(Default)]
pub struct Middle {
    bytes: Vec<u8>,
    described_as: Option<u64>,
    pid: u32,
    principal: String,
    session: u64,
    operation: String,
    key_uid: Option<String>,
    key_label: Option<String>,
    key_version: Option<u32>,
    mechanism: Option<u64>,
    valid: bool,
}

impl Middle {
    /// Appends the middle of `record` by `pid` to `buf`, from the kept one when it matches.
    pub fn encode(&mut self, buf: &mut Vec<u8>, pid: u32, record: &Record<'_>) {
        let same_names = match (self.described_as, record.described_as) {
            (Some(kept), Some(now)) => kept == now,
            _ => {
                self.principal == record.principal
                    && self.key_uid.as_deref() == record.key_uid
                    && self.key_label.as_deref() == record.key_label
                    && self.key_version == record.key_version
            }
        };
        let same = self.valid
            && self.pid == pid
            && self.session == record.session
            && self.mechanism == record.mechanism
            && self.operation == record.operation
            && same_names;
        if !same {
            self.bytes.clear();
            encode_middle(&mut self.bytes, pid, record);
            self.described_as = record.described_as;
            self.pid = pid;
            self.session = record.session;
            self.key_version = record.key_version;
            self.mechanism = record.mechanism;
            replace(&mut self.operation, record.operation);
            replace(&mut self.principal, record.principal);
            replace_opt(&mut self.key_uid, record.key_uid);
            replace_opt(&mut self.key_label, record.key_label);
            self.valid = true;
        }
        buf.extend_from_slice(&self.bytes);
    }
}

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

/// Appends the end of a line: its link (or [`UNLINKED`]) and `}\n`.
pub fn encode_link(buf: &mut Vec<u8>, link: Option<&[u8; LINK_LEN]>) {
    buf.extend_from_slice(LINK_PREFIX);
    match link {
        Some(link) => push_hex(buf, link),
        None => buf.extend_from_slice(&UNLINKED),
    }
    buf.extend_from_slice(b"\"}\n");
}

/// Links an unlinked record in place: `line` (without its `\n`) gets the link that follows
/// `prev`, computed as the writer would have (HMAC under `key` for an `m` record, SHA-256 for `h`);
/// the link. `scratch` is working space. Nothing is changed when the line is not an unlinked
/// record, or is an `m` record and there is no key.
pub fn link_line(
    line: &mut [u8],
    prev: &[u8; LINK_LEN],
    key: Option<&mac::HmacSha256Key>,
) -> Result<[u8; LINK_LEN], Malformed> {
    let n = line.len();
    if n < SUFFIX_LEN + AUTH_FIELD_LEN || !line.ends_with(b"\"}") {
        return Err("not an audit record (no link at its end)");
    }
    let covered_end = n - SUFFIX_LEN;
    let link_at = covered_end + LINK_PREFIX.len();
    let auth_at = covered_end - AUTH_FIELD_LEN;
    if !line[covered_end..].starts_with(LINK_PREFIX)
        || line[link_at..link_at + 2 * LINK_LEN] != UNLINKED
        || !line[auth_at..].starts_with(AUTH_FIELD)
    {
        return Err("not an unlinked audit record");
    }
    let key = match line[covered_end - 2] {
        b'm' => Some(key.ok_or("an authenticated record to link without the key")?),
        b'h' => None,
        _ => return Err("its auth is neither \"m\" nor \"h\""),
    };
    let parts: [&[u8]; 2] = [prev, &line[..covered_end]];
    let link = match key {
        Some(key) => key.sign_parts(&parts),
        None => digest::sha256_parts(&parts),
    };
    hex_into(&mut line[link_at..link_at + 2 * LINK_LEN], &link);
    Ok(link)
}

/// Writes `bytes` as lower-case hex into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
}

/// The index of the first `\n` in `bytes`, eight bytes a step (a linking thread looks for
/// the end of every record it links).
pub fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let x = word ^ NEWLINES;
        // A zero byte of `x` (a newline of `word`) sets its high bit here; the lowest set
        // bit is the first one (bytes above a zero may be flagged falsely, never below).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| at + i)
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

/// `n` in decimal (cheaper than `write!`; two digits a step, as every record has a
/// thirteen-digit time).
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    buf.extend_from_slice(&digits[at..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub fn push_hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.chunks(LINK_LEN) {
        let mut out = [0u8; 2 * LINK_LEN];
        hex_into(&mut out, chunk);
        buf.extend_from_slice(&out[..2 * chunk.len()]);
    }
}

/// Lower-case hex of a link.
pub fn hex(bytes: &[u8]) -> String {
    let mut buf = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut buf, bytes);
    String::from_utf8(buf).unwrap_or_default()
}

/// A link from 64 hex digits (either case).
pub fn decode_hex(text: &[u8]) -> Option<[u8; LINK_LEN]> {
    if text.len() != 2 * LINK_LEN {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; LINK_LEN];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: &Record<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_covered(&mut buf, 3, 99, record, b'h');
        encode_link(&mut buf, Some(&[0x01; LINK_LEN]));
        buf
    }

    #[test]
    fn a_line_parses_back_to_its_record() {
        let mut r = Record::new("C_EncryptInit", 0x91);
        r.principal = "ctx \"api\"\\\n\u{1}é";
        r.session = 7;
        r.key_uid = Some("uid-1");
        r.key_label = Some("dek-acme-v1");
        r.key_version = Some(2);
        r.mechanism = Some(0x1087);
        let bytes = line(&r);
        assert!(bytes.ends_with(b"\"}\n"));
        let text = &bytes[..bytes.len() - 1];
        let parsed = parse_line(text).unwrap();
        let e = parsed.entry;
        assert_eq!((e.seq, e.pid, e.session, e.result), (3, 99, 7, 0x91));
        assert_eq!(e.principal, r.principal);
        assert_eq!(e.operation, "C_EncryptInit");
        assert_eq!(e.key_uid.as_deref(), Some("uid-1"));
        assert_eq!(e.key_label.as_deref(), Some("dek-acme-v1"));
        assert_eq!((e.key_version, e.mechanism), (Some(2), Some(0x1087)));
        assert_eq!(e.auth, "h");
        assert_eq!(parsed.link, Some([0x01; LINK_LEN]));
        assert!(text.starts_with(parsed.covered));
        assert!(parsed.covered.ends_with(b"\"auth\":\"h\""));
    }

    #[test]
    fn optional_fields_are_left_out_and_long_strings_cut() {
        let long = "é".repeat(200);
        let mut r = Record::new("login", 0);
        r.principal = &long;
        let bytes = line(&r);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(!text.contains("key_uid") && !text.contains("mechanism"));
        let e = parse_line(&bytes[..bytes.len() - 1]).unwrap().entry;
        assert_eq!(e.principal.len(), MAX_FIELD_LEN);
        assert_eq!((e.key_uid, e.key_version), (None, None));
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse_line(b"").is_err());
        assert!(parse_line(b"{\"seq\":1}").is_err());
        let good = line(&Record::new("x", 0));
        let text = &good[..good.len() - 1];
        let mut unknown = text.to_vec();
        unknown.splice(1..1, b"\"extra\":1,".iter().copied());
        assert!(parse_line(&unknown).is_err());
        let mut bad_auth = text.to_vec();
        let at = bad_auth.windows(10).position(|w| w == b"\"auth\":\"h\"").unwrap();
        bad_auth[at + 8] = b'x';
        assert!(parse_line(&bad_auth).is_err());
    }

    #[test]
    fn an_unlinked_record_is_linked_in_place_as_the_writer_would_have() {
        let key = mac::HmacSha256Key::new(&[5; 32]);
        let mut r = Record::new("encrypt", 0);
        r.segment = Some(4);
        r.key_label = Some("dek-acme-v1");
        r.end = Some((9, [3; LINK_LEN]));
        for (auth, key) in [(b'm', Some(&key)), (b'h', None)] {
            let prev = [0x42; LINK_LEN];
            // What a writer holding the chain writes...
            let mut linked = vec![];
            linked.extend_from_slice(&prev);
            encode_covered(&mut linked, 7, 1, &r, auth);
            let link = match key {
                Some(k) => k.sign(&linked),
                None => digest::sha256_array(&linked),
            };
            encode_link(&mut linked, Some(&link));
            let linked = linked[LINK_LEN..].to_vec();
            // ...and what a writer without it writes, linked afterwards.
            let mut unlinked = vec![];
            encode_covered(&mut unlinked, 7, 1, &r, auth);
            encode_link(&mut unlinked, None);
            let parsed = parse_line(&unlinked[..unlinked.len() - 1]).unwrap();
            assert_eq!(parsed.link, None);
            let end = unlinked.len() - 1;
            assert_eq!(link_line(&mut unlinked[..end], &prev, key), Ok(link));
            assert_eq!(unlinked, linked);
            assert!(link_line(&mut unlinked[..end], &prev, key).is_err(), "linked once only");
        }
        let mut m = vec![];
        encode_covered(&mut m, 1, 1, &r, b'm');
        encode_link(&mut m, None);
        let end = m.len() - 1;
        let before = m.clone();
        assert!(link_line(&mut m[..end], &[0; LINK_LEN], None).is_err());
        assert_eq!(m, before, "nothing changed");
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
        for (i, v) in variants.iter().chain(variants.iter().rev()).enumerate() {
            for pid in [1, 1, 2] {
                let mut got = vec![];
                middle.encode(&mut got, pid, v);
                assert_eq!(got, fresh(v, pid), "variant {i}, pid {pid}");
            }
        }
    }

    #[test]
    fn newlines_are_found_where_they_are() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                // Bytes around the newline that could fool a word-wise search.
                if at < len {
                    bytes[at] = b'\n';
                    if at + 1 < len {
                        bytes[at + 1] = 0x0b;
                    }
                    if at > 0 {
                        bytes[at - 1] = 0x8a;
                    }
                }
                let expected = bytes.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&bytes), expected, "len {len} at {at}");
            }
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

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(decode_hex(hex(&bytes).as_bytes()), Some(bytes));
        assert_eq!(decode_hex(hex(&bytes).to_uppercase().as_bytes()), Some(bytes));
        assert_eq!(decode_hex(b"zz"), None);
    }
}
