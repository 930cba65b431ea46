//! Principals, the named users of a token with PINs of their own: `principal add`, `remove`,
//! `reset-pin` and `list`. Only the SO manages them, so every command logs in as the SO.
//!
//! The core answers `CKR_ARGUMENTS_BAD` alike for a malformed or reserved name, a name added
//! twice and an unknown name; the commands check the name's shape and the token's list first
//! so that each case has its own message.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use cryptoki_sys::CK_SLOT_ID;
use ecm_hsm::Error;
use ecm_hsm::module::token::{MAX_PIN_LEN, MIN_PIN_LEN, check_pin_len};
use serde::Serialize;

use super::token::Token;
use super::util::print_table;
use super::{Failure, Global, Outcome, pins, policy};

#[derive(Subcommand)]
pub enum PrincipalCommand {
    /// Add a principal with a PIN of its own (SO only); it may do with keys only what the
    /// policy grants it
    Add(PinArgs),
    /// Remove a principal (SO only)
    Remove(NameArgs),
    /// Set a new PIN for a principal, which also unlocks it (SO only)
    ResetPin(PinArgs),
    /// List the principals with their failed logins in a row and whether they are locked (SO only)
    List(ListArgs),
}

/// The SO PIN's file option, shared by every command that logs in as the SO.
#[derive(Args)]
pub struct SoPinArg {
    /// Read the SO PIN from FILE [default: $ECM_HSM_SO_PIN, else a prompt]
    #[arg(long, value_name = "FILE")]
    pub so_pin_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct NameArgs {
    /// The principal's name: 1 to 64 letters, digits, '.', '_' or '-' (not `user` or `so`)
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    so: SoPinArg,
}

#[derive(Args)]
pub struct PinArgs {
    /// The principal's name: 1 to 64 letters, digits, '.', '_' or '-' (not `user` or `so`)
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    so: SoPinArg,
    /// Read the principal's new PIN from FILE [default: $ECM_HSM_NEW_PIN, else a prompt]
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    so: SoPinArg,
}

pub fn run(global: &Global, command: &PrincipalCommand) -> Outcome<()> {
    match command {
        PrincipalCommand::Add(a) => add(global, a),
        PrincipalCommand::Remove(a) => remove(global, a),
        PrincipalCommand::ResetPin(a) => reset_pin(global, a),
        PrincipalCommand::List(a) => list(global, a),
    }
}

/// The core's rule for names (`check_principal_name`), with a message for each way to break it.
fn check_name(name: &str) -> Outcome<()> {
    match name {
        "user" => {
            return Err(Failure(
                "'user' is the token's own user, not a principal: choose another name".into(),
            ));
        }
        "so" => {
            return Err(Failure(
                "'so' is the token's security officer, not a principal: choose another name".into(),
            ));
        }
        _ => {}
    }
    let well_formed = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if well_formed {
        Ok(())
    } else {
        Err(Failure(format!(
            "'{}' is not a principal name: use 1 to 64 letters, digits, '.', '_' or '-'",
            name.escape_debug()
        )))
    }
}

/// The token's principals and their failure counts, by name.
fn principals(token: &Token) -> Outcome<Vec<(String, u32)>> {
    let mut list = token.module.principals(token.session).map_err(|e| token.fail(&e))?;
    list.sort();
    Ok(list)
}

fn failures_of(token: &Token, name: &str) -> Outcome<Option<u32>> {
    Ok(principals(token)?.into_iter().find(|(n, _)| n == name).map(|(_, f)| f))
}

/// The token opened as the SO for a command on principal `name` (checked first), and that
/// principal's failure count (`None`: no such principal).
fn open_so_for(global: &Global, name: &str, so_pin_file: Option<&Path>) -> Outcome<(Token, Option<u32>)> {
    check_name(name)?;
    let token = Token::open_so(global, so_pin_file)?;
    let failures = failures_of(&token, name)?;
    Ok((token, failures))
}

fn unknown(token: &Token, name: &str) -> Failure {
    Failure(format!(
        "no principal '{name}' on token '{}' (slot {}): see `ecm-hsm principal list`",
        token.label, token.slot
    ))
}

/// The principal's new PIN, checked for length before the core sees it.
fn new_pin(file: Option<&Path>) -> Outcome<pins::Pin> {
    let pin = pins::new_principal_pin(file)?;
    check_pin_len(&pin)
        .map_err(|_| Failure(format!("a principal's PIN must have {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes")))?;
    Ok(pin)
}

fn set_failure(token: &Token, name: &str, e: &Error) -> Failure {
    match e {
        Error::PinLenRange => {
            Failure(format!("a principal's PIN must have {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes"))
        }
        // Another process added or removed it since the list was read.
        Error::ArgumentsBad => Failure(format!(
            "token '{}' (slot {}) refused to change principal '{name}': was it just added or removed?",
            token.label, token.slot
        )),
        Error::ActionProhibited => guarded(token, name),
        other => token.fail(other),
    }
}

/// The refusal of a change to an approver's PIN while the policy needs approvals (see
/// `ecm_hsm::policy` custody rules): the SO alone may not take an approver's place.
fn guarded(token: &Token, name: &str) -> Failure {
    Failure(format!(
        "token '{}' (slot {}) refused: the policy in force needs approvals and lets '{name}'          approve, so the SO alone may not add, re-key or remove it; apply (with the approvals          it asks) a policy that does not let '{name}' approve, then try again",
        token.label, token.slot
    ))
}

/// What the current policy grants a principal, for the notes after `add` and `remove`:
/// `None` without a policy, else whether the policy names it.
fn named_by_policy(token: &Token, name: &str) -> Option<(u64, bool)> {
    let (version, document) = token.module.policy(token.session).ok()??;
    Some((version, policy::principals_named(&document).iter().any(|n| n == name)))
}

/// `principal add NAME`.
pub fn add(global: &Global, args: &PinArgs) -> Outcome<()> {
    let name = args.name.as_str();
    let (token, failures) = open_so_for(global, name, args.so.so_pin_file.as_deref())?;
    if failures.is_some() {
        return Err(Failure(format!(
            "principal '{name}' already exists on token '{}' (slot {}); give it a new PIN with \
             `ecm-hsm principal reset-pin {name}`",
            token.label, token.slot
        )));
    }
    let pin = new_pin(args.new_pin_file.as_deref())?;
    token
        .module
        .set_principal(token.session, name, &pin, false)
        .map_err(|e| set_failure(&token, name, &e))?;
    let grants = match named_by_policy(&token, name) {
        None => "; no policy yet, so it may do nothing with keys (see `ecm-hsm policy apply`)".to_owned(),
        Some((version, false)) => {
            format!("; policy version {version} does not name it, so it may do nothing with keys")
        }
        Some((version, true)) => format!("; it has what policy version {version} grants it"),
    };
    say!("added principal '{name}' to token '{}' (slot {}){grants}", token.label, token.slot);
    Ok(())
}

/// `principal remove NAME`.
pub fn remove(global: &Global, args: &NameArgs) -> Outcome<()> {
    let name = args.name.as_str();
    let (token, failures) = open_so_for(global, name, args.so.so_pin_file.as_deref())?;
    if failures.is_none() {
        return Err(unknown(&token, name));
    }
    token.module.remove_principal(token.session, name).map_err(|e| match e {
        Error::ArgumentsBad => unknown(&token, name),
        Error::ActionProhibited => guarded(&token, name),
        other => token.fail(&other),
    })?;
    let note = match named_by_policy(&token, name) {
        Some((version, true)) => format!(
            " (policy version {version} still names it: a principal added again as '{name}' gets its grants)"
        ),
        _ => String::new(),
    };
    say!("removed principal '{name}' from token '{}' (slot {}){note}", token.label, token.slot);
    Ok(())
}

/// `principal reset-pin NAME`: a new PIN, and the failure count back to zero.
pub fn reset_pin(global: &Global, args: &PinArgs) -> Outcome<()> {
    let name = args.name.as_str();
    let (token, failures) = open_so_for(global, name, args.so.so_pin_file.as_deref())?;
    let Some(failures) = failures else {
        return Err(unknown(&token, name));
    };
    let pin = new_pin(args.new_pin_file.as_deref())?;
    token.module.set_principal(token.session, name, &pin, true).map_err(|e| set_failure(&token, name, &e))?;
    let max = token.module.config().max_pin_failures;
    let unlocked = if failures >= max { " and unlocked it" } else { "" };
    say!("set a new PIN for principal '{name}' on token '{}' (slot {}){unlocked}", token.label, token.slot);
    Ok(())
}

#[derive(Serialize)]
struct ListJson<'a> {
    token: &'a str,
    slot: CK_SLOT_ID,
    max_pin_failures: u32,
    principals: Vec<PrincipalJson>,
}

#[derive(Serialize)]
struct PrincipalJson {
    name: String,
    failed_logins: u32,
    locked: bool,
}

/// `principal list [--json]`.
pub fn list(global: &Global, args: &ListArgs) -> Outcome<()> {
    let token = Token::open_so(global, args.so.so_pin_file.as_deref())?;
    let list = principals(&token)?;
    let max = token.module.config().max_pin_failures;
    if args.json {
        let out = ListJson {
            token: &token.label,
            slot: token.slot,
            max_pin_failures: max,
            principals: list
                .iter()
                .map(|(name, failures)| PrincipalJson {
                    name: name.clone(),
                    failed_logins: *failures,
                    locked: *failures >= max,
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&out).map_err(|e| Failure(format!("JSON: {e}")))?;
        say!("{text}");
        return Ok(());
    }
    if list.is_empty() {
        say!(
            "token '{}' (slot {}) has no principals: add one with `ecm-hsm principal add NAME`",
            token.label,
            token.slot
        );
        return Ok(());
    }
    say!("token '{}' (slot {}): a principal locks after {max} wrong PINs in a row", token.label, token.slot);
    let rows: Vec<[String; 3]> = list
        .iter()
        .map(|(name, failures)| {
            [name.clone(), failures.to_string(), if *failures >= max { "yes" } else { "no" }.to_owned()]
        })
        .collect();
    print_table(["NAME", "FAILED LOGINS", "LOCKED"], &rows);
    let locked = list.iter().filter(|(_, f)| *f >= max).count();
    if locked > 0 {
        say!("{locked} locked: `ecm-hsm principal reset-pin NAME` sets a new PIN and unlocks it");
    }
    Ok(())
}
