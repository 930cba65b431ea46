//! Exporting records: filtered by time, principal, key and operation, as JSON lines (the
//! lines as stored, chain fields included) or CSV (a header row, then one row per record,
//! quoted as RFC 4180 says). Export does not verify the chain: run `verify` for that.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use super::merge::{RecordReader, merge_trail};
use super::record::{self, Entry};
use crate::policy::document::glob;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// Which records to export; `None` matches all. `key` and `operation` are glob patterns
/// (`*` any run, `?` one character; a name without them matches exactly); `key` matches the
/// record's key uid or label. `principal` is exact (`""` matches records made by nobody).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Unix milliseconds: records at or after.
    pub since_ms: Option<u64>,
    pub principal: Option<String>,
    pub key: Option<String>,
    pub operation: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        let glob_opt = |pattern: &str, value: &Option<String>| {
            value.as_deref().is_some_and(|v| glob(pattern.as_bytes(), v.as_bytes()))
        };
        self.since_ms.is_none_or(|t| e.time >= t)
            && self.principal.as_deref().is_none_or(|p| p == e.principal)
            && self.key.as_deref().is_none_or(|k| glob_opt(k, &e.key_uid) || glob_opt(k, &e.key_label))
            && self.operation.as_deref().is_none_or(|o| glob(o.as_bytes(), e.operation.as_bytes()))
    }
}

/// The CSV columns. The key service's client comes last (empty in-process), so that the
/// columns of earlier versions keep their places for scripts that read them by number.
pub const CSV_HEADER: &str = "seq,segment,time_ms,principal,pid,session,operation,key_uid,key_label,key_version,\
     mechanism,result,auth,link,client_uid,client_gid,client_pid";

/// Writes the records of the file at `path` that `filter` matches to `out`; how many. A line
/// that is not a record is an `InvalidData` error naming it (after the records before it
/// were written); a partial final line (an interrupted writer) is skipped.
pub fn export(path: &Path, filter: &Filter, format: Format, out: &mut dyn Write) -> io::Result<u64> {
    let file = File::open(path)?;
    export_reader(BufReader::with_capacity(1 << 16, file), filter, format, out)
}

pub fn export_reader(
    reader: impl BufRead,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<u64> {
    write_all(format, out, |each| {
        let mut records = RecordReader::new(reader, false);
        while let Some((line, entry)) = records.next_record()? {
            if filter.matches(&entry) {
                each(&line, &entry)?;
            }
        }
        Ok(())
    })
}

/// As [`export`], for a whole trail (`super::trail`): the register's records and every
/// segment's, merged in time order as they are read ([`merge_trail`]: records of one file
/// keep their order; memory does not grow with the trail).
pub fn export_trail(
    register: &Path,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<u64> {
    write_all(format, out, |each| merge_trail(register, &|entry| filter.matches(entry), each))
}

/// The header, then every record `records` hands to the writer it is given, then a flush;
/// how many records.
fn write_all(
    format: Format,
    out: &mut dyn Write,
    records: impl FnOnce(&mut dyn FnMut(&[u8], &Entry) -> io::Result<()>) -> io::Result<()>,
) -> io::Result<u64> {
    write_header(format, out)?;
    let mut written = 0u64;
    records(&mut |line, entry| {
        write_record(format, out, line, entry)?;
        written += 1;
        Ok(())
    })?;
    out.flush()?;
    Ok(written)
}

/// Every record of a trail, in time order, as JSON lines (what `export_trail` writes
/// unfiltered).
pub fn trail_text(register: &Path) -> io::Result<String> {
    let mut out = Vec::new();
    export_trail(register, &Filter::default(), Format::Jsonl, &mut out)?;
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn write_header(format: Format, out: &mut dyn Write) -> io::Result<()> {
    if format == Format::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    Ok(())
}

fn write_record(format: Format, out: &mut dyn Write, line: &[u8], entry: &Entry) -> io::Result<()> {
    match format {
        // A repeat record is written whole: every exported line stands alone.
        Format::Jsonl if entry.repeats.is_some() => {
            out.write_all(&record::expanded_line(entry))?;
            out.write_all(b"\n")
        }
        Format::Jsonl => {
            out.write_all(line)?;
            out.write_all(b"\n")
        }
        Format::Csv => write_csv_row(out, entry),
    }
}

fn write_csv_row(out: &mut dyn Write, e: &Entry) -> io::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let fields = [
        e.seq.to_string(),
        e.segment.map(|n| n.to_string()).unwrap_or_default(),
        e.time.to_string(),
        csv_field(&e.principal),
        e.pid.to_string(),
        e.session.to_string(),
        csv_field(&e.operation),
        csv_field(&opt(e.key_uid.clone())),
        csv_field(&opt(e.key_label.clone())),
        e.key_version.map(|v| v.to_string()).unwrap_or_default(),
        e.mechanism.map(|m| format!("0x{m:08x}")).unwrap_or_default(),
        format!("0x{:08x}", e.result),
        csv_field(&e.auth),
        csv_field(&e.link),
        e.client.map(|c| c.uid.to_string()).unwrap_or_default(),
        e.client.map(|c| c.gid.to_string()).unwrap_or_default(),
        e.client.map(|c| c.pid.to_string()).unwrap_or_default(),
    ];
    writeln!(out, "{}", fields.join(","))
}

/// A CSV field: quoted (with `"` doubled) when it holds a comma, a quote, a line break or
/// leading or trailing spaces.
pub fn csv_field(value: &str) -> String {
    let needs = value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if needs { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" padded"), "\" padded\"");
    }
}
