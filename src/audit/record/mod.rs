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
//! open and close one, `end_seq` and `end_link` after `result` in those that close one;
//! `client_uid`, `client_gid` and `client_pid` after `pid` in the records a key service
//! writes for a client, see [`ClientProcess`]).
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
//!
//! The jobs, one file each: [`parse`] reads lines back ([`LineParser`], [`parse_line`]),
//! [`encode`] writes them (incrementally, as a writer under load does: [`Head`], [`Middle`],
//! [`Tail`]), [`link`] computes links ([`segment_key`], [`gmac_link`], [`link_line`]).

mod encode;
mod link;
mod parse;

pub use encode::{
    Head, Middle, Tail, encode_covered, encode_head, encode_link, encode_middle, encode_tail, expanded_line,
};
pub use link::{gmac_link, link_line, segment_key};
pub use parse::{LineParser, ParsedLine, parse_line};

use crate::mechanism::mac;

/// Bytes of a link as the chain carries it (SHA-256 / HMAC-SHA256; a GMAC tag padded).
pub const LINK_LEN: usize = 32;

/// At most this many bytes of a string field are recorded (cut at a character boundary).
pub const MAX_FIELD_LEN: usize = 256;

/// `,"link":"` + the link's hex digits + `"}`: the end of every line, before its `\n`.
pub const LINK_PREFIX: &[u8] = b",\"link\":\"";

/// What stands for the link of a record written before its link was computed.
pub const UNLINKED: [u8; 2 * LINK_LEN] = [b'-'; 2 * LINK_LEN];

/// `,"auth":"` + the auth letter + `"`: the end of the covered bytes.
pub(super) const AUTH_FIELD: &[u8] = b",\"auth\":\"";
pub(super) const AUTH_FIELD_LEN: usize = AUTH_FIELD.len() + 2;

/// The hex digits of the link of a record whose auth is `auth`.
pub(super) const fn link_digits(auth: u8) -> usize {
    if auth == b'g' { 2 * mac::GMAC_LEN } else { 2 * LINK_LEN }
}

/// The bytes after the covered ones (before the `\n`) of a record whose auth is `auth`.
pub(super) const fn suffix_len(auth: u8) -> usize {
    LINK_PREFIX.len() + link_digits(auth) + 2
}

/// The client process a key service acted for, as the kernel named it when the client
/// connected (`SO_PEERCRED`): what it is, not what it claims. Recorded as `client_uid`,
/// `client_gid` and `client_pid` after `pid` (which stays the writing process, the
/// service's). Records written in-process carry none: their `pid` is the caller's own
/// process, and the token directory (0700) is writable only by its owner, so the uid is that
/// owner's. Lines of older versions have none either and verify as before: the fields are
/// optional, and a link covers a line's bytes as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientProcess {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
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
    /// The key service's client the record is made for; `None` in-process.
    pub client: Option<ClientProcess>,
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
            client: None,
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
    /// The key service's client the record was made for (none in-process, and in records of
    /// versions before it was recorded).
    pub client: Option<ClientProcess>,
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

/// The middle fields of a record written in full: what a repeat of it takes (for a reader),
/// what the next record is compared with (for a writer, [`Middle`]).
#[derive(Clone, Default)]
pub(super) struct MiddleFields {
    pub(super) principal: String,
    pub(super) pid: u32,
    pub(super) client: Option<ClientProcess>,
    pub(super) session: u64,
    pub(super) operation: String,
    pub(super) key_uid: Option<String>,
    pub(super) key_label: Option<String>,
    pub(super) key_version: Option<u32>,
    pub(super) mechanism: Option<u64>,
}

/// Why a line is not a well-formed record.
pub type Malformed = &'static str;

/// Whether a record of `operation` with auth `auth` may follow an authenticated record (`m`
/// or `g`) of its chain: an authenticated one always; an unauthenticated (`h`) one only in
/// the register and only as one of the register's own records (opening or closing a
/// segment, archiving the trail), which a process that has not logged in writes and which
/// say nothing of what a caller did. Anything else is what a forger who can write the
/// directory, but lacks the token key, would append: `verify` fails on it, `export` stops
/// at it, and a writer refuses to chain onto it.
pub fn may_follow_authenticated(auth: &str, operation: &str, in_register: bool) -> bool {
    use super::trail::{AUDIT_OFF, SEGMENT_CLOSE, SEGMENT_OPEN, TRAIL_ARCHIVED};
    // `audit_off` too: a process with auditing off says so before it logs in (a forged one
    // shows a gap that was not there, never hides one; `audit_on` is never in this list).
    auth != "h"
        || (in_register && [SEGMENT_OPEN, SEGMENT_CLOSE, TRAIL_ARCHIVED, AUDIT_OFF].contains(&operation))
}

/// Lower-case hex of a link.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// A link from 64 hex digits (either case).
pub fn decode_hex(text: &[u8]) -> Option<[u8; LINK_LEN]> {
    let mut out = [0u8; LINK_LEN];
    ::hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(decode_hex(hex(&bytes).as_bytes()), Some(bytes));
        assert_eq!(decode_hex(hex(&bytes).to_uppercase().as_bytes()), Some(bytes));
        assert_eq!(decode_hex(b"zz"), None);
        assert_eq!(decode_hex(&[b'a'; 62]), None);
    }
}
