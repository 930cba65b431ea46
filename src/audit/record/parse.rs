//! Reading lines back: the stored form of a line, where its covered bytes end, and a
//! repeat record filled in from the record it repeats.

use serde::Deserialize;

use super::{
    AUTH_FIELD, AUTH_FIELD_LEN, ClientProcess, Entry, LINK_LEN, LINK_PREFIX, Malformed, MiddleFields,
    suffix_len,
};

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
    client_uid: Option<u32>,
    #[serde(default)]
    client_gid: Option<u32>,
    #[serde(default)]
    client_pid: Option<u32>,
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

impl Stored {
    fn has_middle(&self) -> bool {
        self.principal.is_some()
            || self.pid.is_some()
            || self.client_uid.is_some()
            || self.client_gid.is_some()
            || self.client_pid.is_some()
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
            client: match (self.client_uid.take(), self.client_gid.take(), self.client_pid.take()) {
                (Some(uid), Some(gid), Some(pid)) => Some(ClientProcess { uid, gid, pid }),
                (None, None, None) => None,
                _ => return Err("a client named in part (client_uid, client_gid, client_pid)"),
            },
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
            client: middle.client,
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

/// A line (without its `\n`) split into the bytes its link covers and its link, then parsed.
pub struct ParsedLine<'a> {
    /// The line up to, not including, `,"link":"`.
    pub covered: &'a [u8],
    /// `None` for a record written and not yet linked (its `link` is [`UNLINKED`]; see
    /// `super::segment`).
    pub link: Option<[u8; LINK_LEN]>,
    pub entry: Entry,
}

/// Where a line's covered bytes end, and its auth letter: the line ends with
/// `,"auth":"<a>",",link":"<hex>"}` with as many digits as that auth's links have.
pub(super) fn split_point(line: &[u8]) -> Result<(usize, u8), Malformed> {
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
        hex::decode_to_slice(link_text, &mut link[..n]).map_err(|_| "its link is not hex digits")?;
        Some(link)
    };
    let stored: Stored = serde_json::from_slice(line).map_err(|_| "not a well-formed audit record (JSON)")?;
    let entry = entry_of(stored)?;
    if entry.auth.as_bytes() != [auth] {
        return Err("its auth is not the one before its link");
    }
    Ok(ParsedLine { covered, link, entry })
}

#[cfg(test)]
mod tests {
    use super::super::*;

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
    fn a_service_client_is_recorded_after_the_pid_and_read_back() {
        let client = ClientProcess { uid: 1001, gid: 1002, pid: 4242 };
        let r = Record { client: Some(client), ..Record::new("encrypt", 0) };
        let bytes = line(&r);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains(r#""pid":99,"client_uid":1001,"client_gid":1002,"client_pid":4242,"session""#),
            "{text}"
        );
        let parsed = parse_line(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(parsed.entry.client, Some(client));
        assert_eq!(expanded_line(&parsed.entry), &bytes[..bytes.len() - 1]);
        // An in-process record (and every record of earlier versions) names none.
        let plain = line(&Record::new("encrypt", 0));
        assert!(!std::str::from_utf8(&plain).unwrap().contains("client_"));
        assert_eq!(parse_line(&plain[..plain.len() - 1]).unwrap().entry.client, None);
        // A client named in part is not a record the writer makes.
        let partial = text.replace(r#","client_gid":1002"#, "");
        assert_eq!(
            parse_line(&partial.as_bytes()[..partial.len() - 1]).err(),
            Some("a client named in part (client_uid, client_gid, client_pid)")
        );
    }

    #[test]
    fn a_record_for_another_client_is_no_repeat() {
        let mut middle = Middle::default();
        let a = Record { client: Some(ClientProcess { uid: 1, gid: 1, pid: 10 }), ..Record::new("sign", 0) };
        let b = Record { client: Some(ClientProcess { uid: 1, gid: 1, pid: 11 }), ..a };
        let mut encoded = vec![];
        for (seq, r) in [a, a, b].iter().enumerate() {
            let mut buf = vec![];
            middle.encode(&mut buf, 7, r);
            middle.written(seq as u64 + 1);
            encoded.push(String::from_utf8(buf).unwrap());
        }
        assert_eq!(encoded[1], ",\"as\":1");
        assert!(encoded[2].contains("\"client_pid\":11"), "{}", encoded[2]);
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
}
