//! The audit record: `audit verify` (logs in, to check the chain's MACs with the token's
//! audit key) and `audit export` (reads the file; needs no PIN: the records hold no secret
//! and the file's permissions say who may read it).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use cryptoki_sys::CK_SLOT_ID;
use ecm_hsm::audit::{self, Anchor, Filter, Format, LINK_LEN, Problem, ProblemKind, TrailProblemKind};

use super::token::{Token, choose_slot, local_module};
use super::util::explain;
use super::{Failure, Global, Outcome, pins};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the token's audit record: every record present, in order, unaltered, and its
    /// MACs made with the token's key (as the SO with ECM_HSM_SO_PIN or --so-pin-file, else
    /// as the user or the principal --user NAME)
    #[command(long_about = "Check the token's audit record (the register token-<slot>.audit and \
                            every process's segment in token-<slot>.audit.d/): every record \
                            present, in order and unaltered, every segment the register opened \
                            there and whole, and every MAC made with the token's key. Logs in to get that key: as the SO with ECM_HSM_SO_PIN or \
                            --so-pin-file, else as the user or the principal --user NAME.\n\n\
                            On success, prints the number of records and the last one's link; \
                            keep them elsewhere and pass them back as --expect-seq and \
                            --expect-link, to detect a file cut short or rewritten. Exit code \
                            1 names the first bad record.")]
    Verify(VerifyArgs),
    /// Write the token's audit records to stdout, as JSON lines or CSV, optionally filtered
    /// (does not verify the chain; needs no PIN)
    Export(ExportArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The register must hold at least N records (an earlier verify's head)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    expect_seq: Option<u64>,
    /// ...and record N's link must be HEX (64 hex digits, an earlier verify's head)
    #[arg(long, value_name = "HEX", requires = "expect_seq", value_parser = parse_link)]
    expect_link: Option<[u8; LINK_LEN]>,
    /// Log in as the SO with the SO PIN from FILE [default: as the SO if $ECM_HSM_SO_PIN is
    /// set, else as the user]
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// Check the trail a re-initialization archived (its register, token-<slot>.audit.archived-<time>)
    /// instead: as a chain only, without logging in (its MACs were made under the old token's key)
    #[arg(long, value_name = "REGISTER", conflicts_with = "so_pin_file")]
    archived: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One JSON object a line, as stored (chain fields included)
    Jsonl,
    /// A header row, then one row per record
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "jsonl")]
    format: ExportFormat,
    /// Only records at or after T: Unix seconds, or UTC as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    #[arg(long, value_name = "T", value_parser = parse_since)]
    since: Option<u64>,
    /// Only records of principal P (`so`, `user`, a principal's name; '' for nobody)
    #[arg(long, value_name = "P")]
    principal: Option<String>,
    /// Only records of the key whose unique id or label matches K (`*` and `?` as wildcards)
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Only records of operation O (`*` and `?` as wildcards)
    #[arg(long, value_name = "O")]
    operation: Option<String>,
    /// Export the trail a re-initialization archived (its register) instead
    #[arg(long, value_name = "REGISTER")]
    archived: Option<PathBuf>,
}

pub fn run(global: &Global, command: &AuditCommand) -> Outcome<()> {
    match command {
        AuditCommand::Verify(a) => verify(global, a),
        AuditCommand::Export(a) => export(global, a),
    }
}

fn parse_link(text: &str) -> Result<[u8; LINK_LEN], String> {
    audit::verify::parse_link(text)
        .map_err(|_| "expected 64 hex digits (the link `audit verify` printed)".into())
}

/// `--since`: Unix seconds, `YYYY-MM-DD[Z]` or `YYYY-MM-DDTHH:MM:SSZ` (UTC); Unix milliseconds.
pub fn parse_since(text: &str) -> Result<u64, String> {
    let refuse = || {
        format!(
            "'{text}' is not a time: give Unix seconds, or UTC as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ \
             (e.g. 2026-11-28T09:30:00Z)"
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok().and_then(|s| s.checked_mul(1000)).ok_or_else(refuse);
    }
    // A date alone is its midnight; both forms are then RFC 3339 in UTC, which humantime
    // parses strictly (a `T`, a `Z`, every field two digits, the calendar checked).
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        11 if text.ends_with('Z') => format!("{}T00:00:00Z", &text[..10]),
        20 => text.to_owned(),
        _ => return Err(refuse()),
    };
    let time = humantime::parse_rfc3339(&full).map_err(|_| refuse())?;
    let since = time.duration_since(std::time::UNIX_EPOCH).map_err(|_| refuse())?;
    u64::try_from(since.as_millis()).map_err(|_| refuse())
}

fn missing(path: &Path, label: &str, slot: CK_SLOT_ID) -> Failure {
    Failure(format!("token '{label}' (slot {slot}) has no audit record file ({})", path.display()))
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
fn print(text: &str) -> Outcome<()> {
    match writeln!(io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure(format!("standard output: {e}"))),
        _ => Ok(()),
    }
}

/// `audit verify [--expect-seq N [--expect-link HEX]]`.
pub fn verify(global: &Global, args: &VerifyArgs) -> Outcome<()> {
    if let Some(path) = &args.archived {
        return verify_archived(path, args);
    }
    let module = local_module(global, "audit verify")?;
    let token = if pins::so_pin_given(args.so_pin_file.as_deref()) {
        Token::open_so_on(module, global, args.so_pin_file.as_deref())?
    } else {
        Token::open_on(module, global)?
    };
    let local = token.module.local().ok_or_else(|| Failure("audit verify runs in-process".into()))?;
    let key = local.audit_key(token.session).map_err(|e| token.fail(&e))?;
    let slot = token.slot;
    let path = audit::path_for(&token.module.config().token_dir, slot);
    if !path.exists() {
        return Err(missing(&path, &token.label, slot));
    }
    let anchor = args.expect_seq.map(|seq| Anchor { seq, link: args.expect_link });
    let report = audit::verify_trail(&path, Some(&key), anchor)
        .map_err(|e| Failure(format!("audit record file {}: {}", path.display(), explain(&e))))?;
    if let Some(problem) = &report.problem {
        let counted = match &problem.kind {
            TrailProblemKind::Record(Problem {
                kind: ProblemKind::Truncated { .. } | ProblemKind::NoneAuthenticated,
                ..
            }) => "records read",
            _ => "good records before it",
        };
        return Err(Failure(format!(
            "audit record of token '{}' (slot {slot}) is NOT intact: {problem} ({} {counted})",
            token.label, report.records
        )));
    }
    if let Some(line) = report.register.partial_last_line {
        eprintln!(
            "warning: line {line} of the register is an incomplete record (a writer was stopped in the \
             middle of it); it holds no record and the next record replaces it"
        );
    }
    for n in &report.interrupted {
        eprintln!(
            "warning: segment {n} ends in an incomplete record (its process was killed in the middle of \
             it); it holds no record"
        );
    }
    for name in &report.empty_strays {
        eprintln!(
            "note: {name} is empty and was never opened in the register (a writer killed while opening it)"
        );
    }
    if report.register.unauthenticated_tail > 0 {
        eprintln!(
            "note: the last {} register records were written without a login (hash-linked, not \
             authenticated): only --expect-seq/--expect-link protect them until the next authenticated record",
            report.register.unauthenticated_tail
        );
    }
    if report.unauthenticated > 0 {
        eprintln!(
            "note: {} records were written by processes not yet logged in (hash-linked, not authenticated)",
            report.unauthenticated
        );
    }
    for gap in &report.register.audit_gaps {
        let until =
            gap.on_at.map_or("and is still off".to_owned(), |on| format!("until register record {on}"));
        eprintln!(
            "warning: auditing was turned off (audit = false) from register record {} {until}: calls of \
             that time are not recorded",
            gap.off_at
        );
    }
    print(&format!(
        "audit: {} records ({} in the register, the rest in {} segments, {} of them closed), chain intact \
         ({} authenticated)",
        report.records,
        report.register.records,
        report.segments,
        report.closed_segments,
        report.authenticated
    ))?;
    if let Some((seq, link)) = report.register.head {
        print(&format!("head: --expect-seq {seq} --expect-link {}", audit::verify::link_text(&link)))?;
    }
    Ok(())
}

/// `audit verify --archived REGISTER`: the chain of an archived trail, its MACs unchecked.
fn verify_archived(path: &Path, args: &VerifyArgs) -> Outcome<()> {
    if !path.is_file() {
        return Err(Failure(format!("{}: no such audit register", path.display())));
    }
    let anchor = args.expect_seq.map(|seq| Anchor { seq, link: args.expect_link });
    let report = audit::verify_trail(path, None, anchor)
        .map_err(|e| Failure(format!("audit record file {}: {}", path.display(), explain(&e))))?;
    if let Some(problem) = &report.problem {
        return Err(Failure(format!("archived audit trail {} is NOT intact: {problem}", path.display())));
    }
    print(&format!(
        "audit: {} records ({} in the register, the rest in {} segments, {} of them closed), chain intact; \
         {} MACs not checked (made under the key of the token as it was before its re-initialization)",
        report.records, report.register.records, report.segments, report.closed_segments, report.unchecked
    ))?;
    if let Some((seq, link)) = report.register.head {
        print(&format!("head: --expect-seq {seq} --expect-link {}", audit::verify::link_text(&link)))?;
    }
    Ok(())
}

/// `audit export --format jsonl|csv [filters]`.
pub fn export(global: &Global, args: &ExportArgs) -> Outcome<()> {
    let path = match &args.archived {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => return Err(Failure(format!("{}: no such audit register", path.display()))),
        None => {
            let module = local_module(global, "audit export")?;
            let (slot, label) = choose_slot(&module, global.slot)?;
            let path = audit::path_for(&module.config().token_dir, slot);
            if !path.exists() {
                return Err(missing(&path, &label, slot));
            }
            path
        }
    };
    let filter = Filter {
        since_ms: args.since,
        principal: args.principal.clone(),
        key: args.key.clone(),
        operation: args.operation.clone(),
    };
    let format = match args.format {
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Csv => Format::Csv,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match audit::export_trail(&path, &filter, format, &mut out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            // What was written stays written; the error names the line.
            let _ = out.flush();
            Err(Failure(format!("audit record file {}: {e}", path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_seconds_and_utc_dates() {
        assert_eq!(parse_since("0"), Ok(0));
        assert_eq!(parse_since("1795858200"), Ok(1_795_858_200_000));
        assert_eq!(parse_since("1970-01-01"), Ok(0));
        assert_eq!(parse_since("2000-03-01Z"), Ok(951_868_800_000));
        assert_eq!(parse_since("2026-11-28T09:30:00Z"), Ok(1_795_858_200_000));
        assert_eq!(parse_since("2024-02-29"), Ok(1_709_164_800_000));
    }

    #[test]
    fn since_refuses_anything_else() {
        for bad in [
            "",
            "-5",
            "yesterday",
            "2026-11-28T09:30:00",
            "2026-11-28T09:30:00+02:00",
            "2026-11-28 09:30:00Z",
            "2026-13-01",
            "2023-02-29",
            "2026-1-5",
            "1969-12-31",
            "2026-11-28T24:00:00Z",
            "99999999999999999999",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
