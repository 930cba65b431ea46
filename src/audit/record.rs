//! One audit record: what a caller describes ([`Record`]), its line in the file, and the
//! parsed form of a line ([`Entry`]).
//!
//! A line is a JSON object with the fields in this fixed order, optional ones left out when
//! absent, then `\n`:
//!
//! ```text
//! {"seq":7,"segment":12,"time":1764356400000,"principal":"user","pid":4242,"session":3,
//!  "operation":"encrypt","key_uid":"…","key_label":"dek-acme-v1","key_version":1,
//!  "mechanism":4231,"result":0,"auth":"g","link":"<32 hex>"}
//! ```
//!
//! (on one line; `segment` in the records of a segment and in the register's records that
//! open and close one, `end_seq` and `end_link` after `result` in those that close one).
//! The link covers the previous record's link (raw, as 32 bytes: the chain) followed by the
//! line's bytes up to, not including, `,"link":"`: everything the record says and its
//! `auth`, which names how the link is computed:
//!
//! - `m`: HMAC-SHA256 under the audit key (64 hex digits), the register's records;
//! - `g`: AES-256-GMAC (32 hex digits) under the segment's own key, [`segment_key`], with the
//!   record's sequence number as its nonce: a segment's records (HMAC-SHA256 was most of the
//!   linking thread's work, GMAC costs a seventh of it);
//! - `h`: SHA-256 (64 hex digits), written while the writer has no key (nobody logged in).
//!
//! A `g` link stands in the chain as its 16 bytes followed by 16 zero bytes. (The previous
//! link is not repeated in the line: a verifier has it, and leaving it out makes every record
//! 74 bytes shorter.)
//!
//! **Repeats.** In a segment, a record whose middle fields (`principal` to `mechanism`: who
//! did what to which key) are those of the last record written in full before it is written
//! as a repeat of that record, M, with `"as":M` in their place:
//!
//! ```text
//! {"seq":9,"segment":12,"time":1764356400002,"as":7,"result":0,"auth":"g","link":"<32 hex>"}
//! ```
//!
//! A thread repeating one operation on one key — the common case under load — writes half
//! the bytes a record (~110 instead of ~240): a busy process's trail no longer outruns the
//! disk. A reader ([`LineParser`]) takes the fields from record M, which must be the last
//! record of the file written in full (anything else is malformed); the register has no
//! repeats. The link covers the line as stored, `as` included, so a repeat is as bound to
//! its place as any record, and record M to its fields; the export writes repeats whole
//! ([`expanded_line`]).

use serde::Deserialize;

use crate::mechanism::{digest, mac};

/// Bytes of a link as the chain carries it (SHA-256 / HMAC-SHA256; a GMAC tag padded).
pub const LINK_LEN: usize = 32;

/// The derivation label of a segment's GMAC key ([`segment_key`]).
const SEGMENT_KEY_LABEL: &[u8] = b"ecm-hsm audit segment v1";

/// At most this many bytes of a string field are recorded (cut at a character boundary).
pub const MAX_FIELD_LEN: usize = 256;

/// `,"link":"` + the link's hex digits + `"}`: the end of every line, before its `\n`.
pub const LINK_PREFIX: &[u8] = b",\"link\":\"";

/// The hex digits of the link of a record whose auth is `auth`.
const fn link_digits(auth: u8) -> usize {
    if auth == b'g' { 2 * mac::GMAC_LEN } else { 2 * LINK_LEN }
}

/// The bytes after the covered ones (before the `\n`) of a record whose auth is `auth`.
const fn suffix_len(auth: u8) -> usize {
    LINK_PREFIX.len() + link_digits(auth) + 2
}

/// The key of the `g` links of the segment opened by the register record whose link is
/// `opened_by`: HMAC-SHA256(audit key, label ‖ `opened_by`). A key of its own per segment
/// keeps the GMAC nonces (sequence numbers) from ever repeating under one key, even if a
/// segment number came back.
pub fn segment_key(audit_key: &[u8], opened_by: &[u8; LINK_LEN]) -> mac::GmacKey {
    let mut input = [0u8; SEGMENT_KEY_LABEL.len() + LINK_LEN];
    input[..SEGMENT_KEY_LABEL.len()].copy_from_slice(SEGMENT_KEY_LABEL);
    input[SEGMENT_KEY_LABEL.len()..].copy_from_slice(opened_by);
    let key = zeroize::Zeroizing::new(mac::hmac_sha256(audit_key, &input));
    mac::GmacKey::new(&key)
}

/// The `g` link of the record at `seq` of a segment: the GMAC of `chained` (the previous
/// link and the record's covered bytes), as the chain carries it.
pub fn gmac_link(key: &mac::GmacKey, seq: u64, chained: &[u8]) -> [u8; LINK_LEN] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut link = [0u8; LINK_LEN];
    link[..mac::GMAC_LEN].copy_from_slice(&key.tag(nonce, chained));
    link
}

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

/// A line read back from the file, a repeat record with the fields it repeats filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub segment: Option<u64>,
    pub time: u64,
    pub principal: String,
    pub pid: u32,
    pub session: u64,
    pub operation: String,
    pub key_uid: Option<String>,
    pub key_label: Option<String>,
    pub key_version: Option<u32>,
    pub mechanism: Option<u64>,
    pub result: u64,
    pub end_seq: Option<u64>,
    pub end_link: Option<String>,
    /// `m` (HMAC under the audit key), `g` (GMAC under the segment's key) or `h` (SHA-256).
    pub auth: String,
    /// This record's link, hex.
    pub link: String,
    /// For a repeat record (`"as":M`), M: the record its middle fields come from.
    pub repeats: Option<u64>,
}

/// A line as stored: the middle fields absent from a repeat record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    seq: u64,
    #[serde(default)]
    segment: Option<u64>,
    time: u64,
    #[serde(default, rename = "as")]
    repeats: Option<u64>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    session: Option<u64>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    key_uid: Option<String>,
    #[serde(default)]
    key_label: Option<String>,
    #[serde(default)]
    key_version: Option<u32>,
    #[serde(default)]
    mechanism: Option<u64>,
    result: u64,
    #[serde(default)]
    end_seq: Option<u64>,
    #[serde(default)]
    end_link: Option<String>,
    auth: String,
    link: String,
}

/// The middle fields of a record written in full: what a repeat of it takes (for a reader),
/// what the next record is compared with (for a writer, [`Middle`]).
#[derive(Clone, Default)]
struct MiddleFields {
    principal: String,
    pid: u32,
    session: u64,
    operation: String,
    key_uid: Option<String>,
    key_label: Option<String>,
    key_version: Option<u32>,
    mechanism: Option<u64>,
}

impl Stored {
    fn has_middle(&self) -> bool {
        self.principal.is_some()
            || self.pid.is_some()
            || self.session.is_some()
            || self.operation.is_some()
            || self.key_uid.is_some()
            || self.key_label.is_some()
            || self.key_version.is_some()
            || self.mechanism.is_some()
    }

    /// The middle fields of a record written in full, taken out of it.
    fn own_middle(&mut self) -> Result<MiddleFields, Malformed> {
        Ok(MiddleFields {
            principal: self.principal.take().ok_or("no principal")?,
            pid: self.pid.take().ok_or("no pid")?,
            session: self.session.take().ok_or("no session")?,
            operation: self.operation.take().ok_or("no operation")?,
            key_uid: self.key_uid.take(),
            key_label: self.key_label.take(),
            key_version: self.key_version.take(),
            mechanism: self.mechanism.take(),
        })
    }

    fn into_entry(self, middle: MiddleFields) -> Entry {
        Entry {
            seq: self.seq,
            segment: self.segment,
            time: self.time,
            principal: middle.principal,
            pid: middle.pid,
            session: middle.session,
            operation: middle.operation,
            key_uid: middle.key_uid,
            key_label: middle.key_label,
            key_version: middle.key_version,
            mechanism: middle.mechanism,
            result: self.result,
            end_seq: self.end_seq,
            end_link: self.end_link,
            auth: self.auth,
            link: self.link,
            repeats: self.repeats,
        }
    }
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

/// Where a line's covered bytes end, and its auth letter: the line ends with
/// `,"auth":"<a>",",link":"<hex>"}` with as many digits as that auth's links have.
fn split_point(line: &[u8]) -> Result<(usize, u8), Malformed> {
    const NOT_A_RECORD: Malformed = "not an audit record (no link at its end)";
    if !line.ends_with(b"\"}") {
        return Err(NOT_A_RECORD);
    }
    for auth in [b'm', b'g'] {
        let Some(covered_end) = line.len().checked_sub(suffix_len(auth)) else { continue };
        if covered_end < AUTH_FIELD_LEN || !line[covered_end..].starts_with(LINK_PREFIX) {
            continue;
        }
        let field = &line[covered_end - AUTH_FIELD_LEN..covered_end];
        if !field.starts_with(AUTH_FIELD) || field[AUTH_FIELD_LEN - 1] != b'"' {
            return Err("no auth before its link");
        }
        let letter = field[AUTH_FIELD.len()];
        // The link's length must be its auth's.
        return match (auth, letter) {
            (b'm', b'm' | b'h') | (b'g', b'g') => Ok((covered_end, letter)),
            (_, b'm' | b'h' | b'g') => Err("its link's length is not its auth's"),
            _ => Err("its auth is not \"m\", \"g\" or \"h\""),
        };
    }
    Err(NOT_A_RECORD)
}

/// Parses one line (without its `\n`) that stands alone: a repeat record is refused (the
/// register has none; a segment's lines are read with a [`LineParser`]).
pub fn parse_line(line: &[u8]) -> Result<ParsedLine<'_>, Malformed> {
    parse_with(line, |mut stored| {
        if stored.repeats.is_some() {
            return Err("a repeat record outside a segment");
        }
        let middle = stored.own_middle()?;
        Ok(stored.into_entry(middle))
    })
}

/// Parses the lines of one file in order, filling in each repeat record from the record it
/// names, which must be the last one of the file written in full (as the writer does,
/// [`Middle`]); repeat records only where `repeats_allowed` (a segment).
pub struct LineParser {
    repeats_allowed: bool,
    /// The last record written in full: its `seq` and middle fields.
    last_full: Option<(u64, MiddleFields)>,
}

impl LineParser {
    pub fn new(repeats_allowed: bool) -> LineParser {
        LineParser { repeats_allowed, last_full: None }
    }

    /// Parses the file's next line (without its `\n`).
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<ParsedLine<'a>, Malformed> {
        parse_with(line, |mut stored| match stored.repeats {
            Some(_) if !self.repeats_allowed => Err("a repeat record outside a segment"),
            Some(_) if stored.has_middle() => Err("a repeat record with fields of its own"),
            Some(m) => match &self.last_full {
                Some((seq, middle)) if *seq == m => Ok(stored.into_entry(middle.clone())),
                _ => Err("a repeat record naming another record than the last one written in full"),
            },
            None => {
                let middle = stored.own_middle()?;
                self.last_full = Some((stored.seq, middle.clone()));
                Ok(stored.into_entry(middle))
            }
        })
    }
}

fn parse_with<'a>(
    line: &'a [u8],
    entry_of: impl FnOnce(Stored) -> Result<Entry, Malformed>,
) -> Result<ParsedLine<'a>, Malformed> {
    let (covered_end, auth) = split_point(line)?;
    let (covered, suffix) = line.split_at(covered_end);
    let link_text = &suffix[LINK_PREFIX.len()..suffix.len() - 2];
    // A link still (or partly: read while it was being written) dashes: not linked yet.
    let link = if link_text.contains(&b'-') {
        if !link_text.iter().all(|b| *b == b'-' || b.is_ascii_hexdigit()) {
            return Err("its link is not hex digits");
        }
        None
    } else {
        let mut link = [0u8; LINK_LEN];
        let n = link_text.len() / 2;
        decode_hex_into(&mut link[..n], link_text).ok_or("its link is not hex digits")?;
        Some(link)
    };
    let stored: Stored = serde_json::from_slice(line).map_err(|_| "not a well-formed audit record (JSON)")?;
    let entry = entry_of(stored)?;
    if entry.auth.as_bytes() != [auth] {
        return Err("its auth is not the one before its link");
    }
    Ok(ParsedLine { covered, link, entry })
}

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
            && self.kept.session == record.session
            && self.kept.mechanism == record.mechanism
            && self.kept.operation == record.operation
            && same_names;
        if !same {
            self.bytes.clear();
            encode_middle(&mut self.bytes, pid, record);
            self.described_as = record.described_as;
            self.kept.pid = pid;
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

/// Links an unlinked segment record in place: `line` (without its `\n`), the record at `seq`,
/// gets the link that follows `prev`, computed as [`verify`](super::verify) checks it (GMAC
/// under `key` for a `g` record, SHA-256 for `h`); the link. `scratch` is working space.
/// Nothing is changed when the line is not an unlinked `g` or `h` record, or is a `g` one
/// and there is no key.
pub fn link_line(
    line: &mut [u8],
    seq: u64,
    prev: &[u8; LINK_LEN],
    key: Option<&mac::GmacKey>,
    scratch: &mut Vec<u8>,
) -> Result<[u8; LINK_LEN], Malformed> {
    let (covered_end, auth) = split_point(line)?;
    let link_at = covered_end + LINK_PREFIX.len();
    let digits = link_digits(auth);
    if line[link_at..link_at + digits] != UNLINKED[..digits] {
        return Err("not an unlinked audit record");
    }
    let link = match auth {
        b'g' => {
            let key = key.ok_or("an authenticated record to link without the key")?;
            scratch.clear();
            scratch.extend_from_slice(prev);
            scratch.extend_from_slice(&line[..covered_end]);
            gmac_link(key, seq, scratch)
        }
        b'h' => digest::sha256_parts(&[prev, &line[..covered_end]]),
        _ => return Err("a segment's record whose auth is neither \"g\" nor \"h\""),
    };
    hex_into(&mut line[link_at..link_at + digits], &link[..digits / 2]);
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
    let mut out = [0u8; LINK_LEN];
    decode_hex_into(&mut out, text)?;
    Some(out)
}

/// Fills `out` from twice as many hex digits (either case).
fn decode_hex_into(out: &mut [u8], text: &[u8]) -> Option<()> {
    if text.len() != 2 * out.len() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: &Record<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_covered(&mut buf, 3, 99, record, b'h');
        encode_link(&mut buf, b'h', Some(&[0x01; LINK_LEN]));
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
        let key = segment_key(&[5; 32], &[6; LINK_LEN]);
        let mut r = Record::new("encrypt", 0);
        r.segment = Some(4);
        r.key_label = Some("dek-acme-v1");
        r.end = Some((9, [3; LINK_LEN]));
        let mut scratch = vec![];
        for auth in [b'g', b'h'] {
            let prev = [0x42; LINK_LEN];
            // What a writer holding the chain writes...
            let mut linked = vec![];
            linked.extend_from_slice(&prev);
            encode_covered(&mut linked, 7, 1, &r, auth);
            let link = match auth {
                b'g' => gmac_link(&key, 7, &linked),
                _ => digest::sha256_array(&linked),
            };
            encode_link(&mut linked, auth, Some(&link));
            let linked = linked[LINK_LEN..].to_vec();
            // ...and what a writer without it writes, linked afterwards.
            let mut unlinked = vec![];
            encode_covered(&mut unlinked, 7, 1, &r, auth);
            encode_link(&mut unlinked, auth, None);
            let parsed = parse_line(&unlinked[..unlinked.len() - 1]).unwrap();
            assert_eq!(parsed.link, None);
            let end = unlinked.len() - 1;
            assert_eq!(link_line(&mut unlinked[..end], 7, &prev, Some(&key), &mut scratch), Ok(link));
            assert_eq!(unlinked, linked);
            let parsed = parse_line(&linked[..end]).unwrap();
            assert_eq!((parsed.link, parsed.entry.auth.as_bytes()), (Some(link), &[auth][..]));
            // A record written in full (here with a segment's end) comes back from its entry
            // as it was stored, linked or not.
            assert_eq!(expanded_line(&parsed.entry), &linked[..end]);
            let unlinked_entry = parse_line(&{
                let mut u = vec![];
                encode_covered(&mut u, 7, 1, &r, auth);
                encode_link(&mut u, auth, None);
                u.pop();
                u
            })
            .unwrap()
            .entry;
            let mut u = expanded_line(&unlinked_entry);
            u.push(b'\n');
            assert_eq!(link_line(&mut u[..end], 7, &prev, Some(&key), &mut scratch), Ok(link));
            assert!(
                link_line(&mut unlinked[..end], 7, &prev, Some(&key), &mut scratch).is_err(),
                "linked once only"
            );
        }
        // A `g` link is 32 hex digits, the last 16 bytes of its chain value zero; it
        // depends on the position (the nonce) and on the segment's key.
        let mut g = vec![];
        encode_covered(&mut g, 7, 1, &r, b'g');
        encode_link(&mut g, b'g', None);
        let end = g.len() - 1;
        let at_7 = link_line(&mut g.clone()[..end], 7, &[0; LINK_LEN], Some(&key), &mut scratch).unwrap();
        assert_eq!(at_7[16..], [0; 16]);
        let at_8 = link_line(&mut g.clone()[..end], 8, &[0; LINK_LEN], Some(&key), &mut scratch).unwrap();
        let other_segment = segment_key(&[5; 32], &[7; LINK_LEN]);
        let elsewhere =
            link_line(&mut g.clone()[..end], 7, &[0; LINK_LEN], Some(&other_segment), &mut scratch).unwrap();
        assert!(at_7 != at_8 && at_7 != elsewhere);
        // Without the key a `g` record stays as it is; an `m` record is the register's.
        let before = g.clone();
        assert!(link_line(&mut g[..end], 1, &[0; LINK_LEN], None, &mut scratch).is_err());
        assert_eq!(g, before, "nothing changed");
        let mut m = vec![];
        encode_covered(&mut m, 1, 1, &r, b'm');
        encode_link(&mut m, b'm', None);
        let end = m.len() - 1;
        let before = m.clone();
        assert!(link_line(&mut m[..end], 1, &[0; LINK_LEN], Some(&key), &mut scratch).is_err());
        assert_eq!(m, before, "nothing changed");
    }

    #[test]
    fn a_link_of_the_wrong_length_for_its_auth_is_refused() {
        for (auth, other) in [(b'g', b'm'), (b'm', b'g'), (b'h', b'g')] {
            let mut line = vec![];
            encode_covered(&mut line, 1, 1, &Record::new("x", 0), auth);
            encode_link(&mut line, other, Some(&[0xab; LINK_LEN]));
            assert!(
                parse_line(&line[..line.len() - 1]).is_err(),
                "{} with a {} link",
                auth as char,
                other as char
            );
        }
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

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(decode_hex(hex(&bytes).as_bytes()), Some(bytes));
        assert_eq!(decode_hex(hex(&bytes).to_uppercase().as_bytes()), Some(bytes));
        assert_eq!(decode_hex(b"zz"), None);
    }
}
