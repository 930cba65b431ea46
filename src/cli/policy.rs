//! The key-access policy: `policy apply FILE` (the SO) and `policy show` (anyone logged in).
//! The core validates a document (JSON or TOML), stores it with a new version and keeps the
//! previous one when a document is refused; these commands carry files and messages.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use cryptoki_sys::CK_SLOT_ID;
use ecm_hsm::Error;
use serde::Serialize;

use super::principals::SoPinArg;
use super::token::Token;
use super::util::read_input;
use super::{Failure, Global, Outcome, pins};

/// What a token does without a policy.
const NO_POLICY: &str = "no policy: principals may do nothing with keys";

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (JSON or TOML) and make it the token's policy under a new version
    /// (SO only); a refused file leaves the policy in force unchanged
    #[command(long_about = "Validate a policy file (JSON or TOML) and make it the token's policy \
                            under a new version (SO only); a refused file leaves the policy in \
                            force unchanged.\n\n\
                            The document grants each principal operations on keys named by \
                            patterns, e.g.\n\n\
                            {\"key_permissions\": {\"context-api\": {\"keys\": [\"dek-*\"], \
                            \"operations\": [\"decrypt\"], \"requires_approval\": false}}}\n\n\
                            or the same in TOML ([key_permissions.context-api] with keys = \
                            [\"dek-*\"] ...).")]
    Apply(ApplyArgs),
    /// Show the policy in force: its version and document (as the SO with ECM_HSM_SO_PIN or
    /// --so-pin-file, else as the user or the principal --user NAME)
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The policy document, JSON or TOML ('-' for stdin)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    so: SoPinArg,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Print JSON: {"version": N, "policy": {...}}, or nulls without a policy
    #[arg(long)]
    json: bool,
    /// Log in as the SO with the SO PIN from FILE [default: as the SO if $ECM_HSM_SO_PIN is
    /// set, else as the user]
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

pub fn run(global: &Global, command: &PolicyCommand) -> Outcome<()> {
    match command {
        PolicyCommand::Apply(a) => apply(global, a),
        PolicyCommand::Show(a) => show(global, a),
    }
}

/// The principals a stored policy document (JSON) names, in its order.
pub fn principals_named(document: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
    match value.get("key_permissions").and_then(|p| p.as_object()) {
        Some(map) => map.keys().cloned().collect(),
        None => Vec::new(),
    }
}

/// A message of the core on one line (a parser's message may span several).
fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn file_name(path: &Path) -> String {
    if path == Path::new("-") { "standard input".into() } else { path.display().to_string() }
}

/// `policy apply FILE`.
pub fn apply(global: &Global, args: &ApplyArgs) -> Outcome<()> {
    let name = file_name(&args.file);
    let bytes = read_input(Some(&args.file))?;
    let text = String::from_utf8(bytes).map_err(|_| Failure(format!("{name} is not UTF-8 text")))?;
    let token = Token::open_so(global, args.so.so_pin_file.as_deref())?;
    let version = match token.module.apply_policy(token.session, &text) {
        Ok(version) => version,
        Err(Error::PolicyInvalid(message)) => {
            let kept = match token.module.policy(token.session) {
                Ok(Some((v, _))) => format!("version {v} stays in force"),
                Ok(None) => "the token still has no policy".into(),
                Err(_) => "the policy in force is unchanged".into(),
            };
            return Err(Failure(format!("{name}: {} (not applied; {kept})", one_line(&message))));
        }
        Err(Error::ActionProhibited) => return Err(change_needs_approvals(&token, &name, &text)),
        Err(e) => return Err(token.fail(&e)),
    };
    say!("applied policy version {version} to token '{}' (slot {})", token.label, token.slot);
    // Names that are no principal yet are allowed (the grants wait for them), but worth a note.
    if let Ok(Some((_, document))) = token.module.policy(token.session)
        && let Ok(existing) = token.module.principals(token.session)
    {
        // `user` is the token's own user, which a rule may name too.
        for named in principals_named(&document).into_iter().filter(|n| n != "user") {
            if !existing.iter().any(|(n, _)| *n == named) {
                eprintln!(
                    "note: the policy names '{named}', which is not a principal of token '{}' yet",
                    token.label
                );
            }
        }
    }
    Ok(())
}

/// Why a valid document was refused: the policy in force asks approvals for its change.
fn change_needs_approvals(token: &Token, name: &str, text: &str) -> Failure {
    let current = match token.module.policy(token.session) {
        Ok(Some((v, document))) => ecm_hsm::policy::Policy::parse(&document).ok().map(|p| (v, p)),
        _ => None,
    };
    let binding = ecm_hsm::policy::Policy::parse(text)
        .map(|p| ecm_hsm::policy::approval_ahead::Binding::policy(&p.to_json()).label)
        .unwrap_or_default();
    match current {
        Some((v, p)) if p.policy_change_approvals > 0 => Failure(format!(
            "{name}: policy version {v} asks {} approval(s) by distinct approvers, recorded ahead for this \
             document ({binding}), and they are not all there (not applied; version {v} stays in force): \
             `ecm-hsm approve --operation policy --policy FILE --approver NAME`",
            p.policy_change_approvals
        )),
        _ => token.fail(&Error::ActionProhibited),
    }
}

#[derive(Serialize)]
struct ShowJson<'a> {
    token: &'a str,
    slot: CK_SLOT_ID,
    version: Option<u64>,
    policy: Option<serde_json::Value>,
}

/// `policy show [--json]`.
pub fn show(global: &Global, args: &ShowArgs) -> Outcome<()> {
    let token = if pins::so_pin_given(args.so_pin_file.as_deref()) {
        Token::open_so(global, args.so_pin_file.as_deref())?
    } else {
        Token::open(global)?
    };
    let current = token.module.policy(token.session).map_err(|e| token.fail(&e))?;
    if args.json {
        let (version, policy) = match &current {
            Some((v, document)) => {
                let value = serde_json::from_str(document)
                    .map_err(|e| Failure(format!("the stored policy is not JSON: {e}")))?;
                (Some(*v), Some(value))
            }
            None => (None, None),
        };
        let out = ShowJson { token: &token.label, slot: token.slot, version, policy };
        let text = serde_json::to_string_pretty(&out).map_err(|e| Failure(format!("JSON: {e}")))?;
        say!("{text}");
        return Ok(());
    }
    match current {
        None => say!("{NO_POLICY}"),
        Some((version, document)) => {
            say!("policy version {version} of token '{}' (slot {}):", token.label, token.slot);
            say!("{}", document.trim_end());
        }
    }
    Ok(())
}
