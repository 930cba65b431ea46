//! `envelope encrypt | decrypt | reencrypt | inspect`: the library calls of
//! `ecm_hsm::envelope` on files or stdin/stdout (binary-safe).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ecm_hsm::envelope::{self, EnvelopeError};
use ecm_hsm::hierarchy::Tier;
use serde::Serialize;

use super::token::Token;
use super::util::{Progress, read_input, replace_file, write_output};
use super::{DecryptArgs, EncryptArgs, Failure, Global, InspectArgs, Outcome, ReencryptArgs};

/// Binary output is never written to a terminal; say so before asking for a PIN.
fn check_binary_output(output: Option<&Path>) -> Outcome<()> {
    if output.is_none_or(|p| p == Path::new("-")) && std::io::stdout().is_terminal() {
        return Err(Failure(
            "refusing to write a binary envelope to a terminal: use -o FILE or a pipe".into(),
        ));
    }
    Ok(())
}

pub fn encrypt(global: &Global, args: &EncryptArgs) -> Outcome<()> {
    check_binary_output(args.io.output.as_deref())?;
    let data = zeroize::Zeroizing::new(read_input(args.io.input.as_deref())?);
    let token = Token::open(global)?;
    let aad = args.aad.as_deref().unwrap_or_default().as_bytes();
    let sealed = envelope::seal(&token.module, token.session, &args.tenant, aad, &data)?;
    write_output(args.io.output.as_deref(), &sealed, false, true)
}

pub fn decrypt(global: &Global, args: &DecryptArgs) -> Outcome<()> {
    let data = read_input(args.io.input.as_deref())?;
    // A malformed envelope is refused before any PIN is asked for.
    envelope::parse(&data)?;
    let token = Token::open(global)?;
    let opened = envelope::open(&token.module, token.session, &data)?;
    if let Some(t) = &args.tenant
        && *t != opened.tenant
    {
        return Err(Failure(format!("the envelope belongs to tenant {}, not {t}", opened.tenant)));
    }
    if let Some(aad) = &args.aad
        && aad.as_bytes() != opened.aad.as_slice()
    {
        return Err(Failure("the envelope's associated data is not the --aad given".into()));
    }
    write_output(args.io.output.as_deref(), &opened.plaintext, true, false)
}

pub fn reencrypt(global: &Global, args: &ReencryptArgs) -> Outcome<()> {
    if args.in_place {
        return reencrypt_files(global, &args.files);
    }
    check_binary_output(args.io.output.as_deref())?;
    let data = read_input(args.io.input.as_deref())?;
    envelope::parse(&data)?;
    let token = Token::open(global)?;
    let sealed = envelope::reencrypt(&token.module, token.session, &data)?;
    write_output(args.io.output.as_deref(), &sealed, false, true)
}

/// `reencrypt --in-place FILE...`: each file rewritten atomically under its tenant's current
/// DEK; files already there are left alone; a failure is reported and the rest go on.
fn reencrypt_files(global: &Global, files: &[PathBuf]) -> Outcome<()> {
    let token = Token::open(global)?;
    let current: HashMap<String, u64> = token
        .keys()?
        .into_iter()
        .filter(|k| k.tier == Tier::Dek && k.active)
        .filter_map(|k| Some((k.tenant?, k.version)))
        .collect();
    let progress = Progress::new("reencrypting", files.len());
    let (mut moved, mut current_already, mut failed) = (0usize, 0usize, 0usize);
    for (i, path) in files.iter().enumerate() {
        progress.step(i);
        let result = (|| -> Outcome<bool> {
            let data = std::fs::read(path).map_err(|e| Failure(format!("cannot read it: {e}")))?;
            let header = envelope::parse(&data)?.header;
            if current.get(&header.tenant) == Some(&u64::from(header.dek_version)) {
                return Ok(false);
            }
            let sealed = envelope::reencrypt(&token.module, token.session, &data)?;
            replace_file(path, &sealed)?;
            Ok(true)
        })();
        match result {
            Ok(true) => moved += 1,
            Ok(false) => current_already += 1,
            Err(Failure(message)) => {
                failed += 1;
                if progress_shown() {
                    eprintln!();
                }
                eprintln!("ecm-hsm: {}: {message}", path.display());
            }
        }
    }
    progress.step(files.len());
    progress.finish();
    say!("reencrypted {moved} envelope(s); {current_already} already under the current DEK");
    if failed > 0 {
        return Err(Failure(format!("{failed} of {} envelope(s) could not be reencrypted", files.len())));
    }
    Ok(())
}

fn progress_shown() -> bool {
    std::io::stderr().is_terminal()
}

#[derive(Serialize)]
struct HeaderJson {
    format_version: u8,
    tenant: String,
    dek_version: u32,
    dek_label: String,
    dek_unique_id: String,
    iv: String,
    aad: Option<String>,
    aad_hex: String,
    ciphertext_len: u64,
}

/// `inspect`: the header, read without any key (so nothing in it is authenticated yet).
pub fn inspect(args: &InspectArgs) -> Outcome<()> {
    let data = read_input(args.input.as_deref())?;
    let h = envelope::parse(&data).map_err(|e: EnvelopeError| Failure(e.to_string()))?.header;
    let aad_text = std::str::from_utf8(&h.aad).ok().map(str::to_owned);
    if args.json {
        let out = HeaderJson {
            format_version: envelope::FORMAT_VERSION,
            tenant: h.tenant.clone(),
            dek_version: h.dek_version,
            dek_label: h.dek_label(),
            dek_unique_id: String::from_utf8_lossy(&h.dek_unique_id).into_owned(),
            iv: hex::encode(h.iv),
            aad: aad_text,
            aad_hex: hex::encode(&h.aad),
            ciphertext_len: h.ciphertext_len,
        };
        let text = serde_json::to_string_pretty(&out).map_err(|e| Failure(format!("JSON: {e}")))?;
        say!("{text}");
        return Ok(());
    }
    say!("format      ecm-hsm envelope, version {}", envelope::FORMAT_VERSION);
    say!("tenant      {}", h.tenant);
    say!("DEK         {} (unique id {})", h.dek_label(), String::from_utf8_lossy(&h.dek_unique_id));
    say!("IV          {}", hex::encode(h.iv));
    match aad_text {
        Some(t) => say!("aad         {} bytes: {t:?}", h.aad.len()),
        None => say!("aad         {} bytes: {}", h.aad.len(), hex::encode(&h.aad)),
    }
    say!("ciphertext  {} bytes", h.ciphertext_len);
    Ok(())
}
