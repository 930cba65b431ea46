//! Approvals recorded ahead: `approve` (an approver, with its own PIN, lets one principal do
//! one management operation once on one key, or lets the SO apply one policy document),
//! `approval list` and `approval revoke ID`. The core checks every rule again and stores
//! the approval; these commands check first what they can, so that each refusal has its own
//! message and costs no PIN try where it need not.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use cryptoki_sys::*;
use ecm_hsm::Error;
use ecm_hsm::module::{ApprovalRequest, ApprovalTarget};
use ecm_hsm::object::attribute::decode_ulong;
use ecm_hsm::object::{Attribute, AttributeRead};
use ecm_hsm::policy::approval_ahead::{
    ApprovalState, ManagementOp, SO_PRINCIPAL, check_approver, parse_expiry,
};
use ecm_hsm::policy::{Decision, Policy};
use ecm_hsm::store::ApprovalRecord;
use ecm_hsm::vendor::{CKA_ECM_KEY_STATE, CKA_ECM_TIER, CKS_ECM_ACTIVE};
use serde::Serialize;

use super::token::Token;
use super::util::{date_time, print_table, read_input};
use super::{Failure, Global, Outcome, pins};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["key", "policy"])))]
pub struct ApproveArgs {
    /// The approving principal, who logs in with its own PIN (--pin-file, ECM_HSM_PIN or a
    /// prompt) [default: --user]
    #[arg(long, value_name = "NAME")]
    approver: Option<String>,
    /// The principal the approval is for [default with --policy: so]
    #[arg(long = "for", value_name = "PRINCIPAL")]
    for_principal: Option<String>,
    /// The operation approved: destroy, modify, rotate (the current version named by --key)
    /// or policy (with --policy)
    #[arg(long, value_name = "OP")]
    operation: String,
    /// The key, by label; the approval is bound to its unique id
    #[arg(long, value_name = "LABEL")]
    key: Option<String>,
    /// The new policy document the SO may apply; the approval is bound to its SHA-256
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// With --operation modify, one attribute the change sets, as NAME=VALUE (once for each):
    /// the approval serves only a change by exactly these. NAME is label, id (VALUE in hex),
    /// start_date or end_date (YYYYMMDD), or a flag (encrypt, decrypt, sign, verify, wrap,
    /// unwrap, derive, extractable, sensitive, modifiable, copyable, destroyable) with VALUE
    /// true or false
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// How long the approval lasts, e.g. 90s, 15m, 1h, 1h30m (at most 24h)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    expires_in: String,
}

#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// List the approvals recorded ahead: pending, consumed, expired, revoked (as the SO
    /// with ECM_HSM_SO_PIN or --so-pin-file, else as the user or the principal --user NAME)
    List(ListArgs),
    /// Revoke a pending approval (the SO any, an approver its own with --user NAME)
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Log in as the SO with the SO PIN from FILE [default: as the SO if $ECM_HSM_SO_PIN is
    /// set, else as the user or --user NAME]
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct RevokeArgs {
    /// The approval's id, as `approve` printed it
    #[arg(value_name = "ID")]
    id: i64,
    /// Log in as the SO with the SO PIN from FILE [default: as the SO if $ECM_HSM_SO_PIN is
    /// set, else as the user or --user NAME]
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

pub fn run(global: &Global, command: &ApprovalCommand) -> Outcome<()> {
    match command {
        ApprovalCommand::List(a) => list(global, a),
        ApprovalCommand::Revoke(a) => revoke(global, a),
    }
}

/// The SO if an SO PIN is at hand, else the user or `--user NAME`.
fn open_as_so_or_user(global: &Global, so_pin_file: Option<&std::path::Path>) -> Outcome<Token> {
    if pins::so_pin_given(so_pin_file) { Token::open_so(global, so_pin_file) } else { Token::open(global) }
}

/// The policy in force, parsed.
fn policy_in_force(token: &Token) -> Outcome<Option<Policy>> {
    match token.module.policy(token.session).map_err(|e| token.fail(&e))? {
        Some((_, document)) => Policy::parse(&document)
            .map(Some)
            .map_err(|e| Failure(format!("the stored policy does not parse: {e}"))),
        None => Ok(None),
    }
}

/// `approve --approver A --for P --operation OP (--key LABEL | --policy FILE)`.
pub fn approve(global: &Global, args: &ApproveArgs) -> Outcome<()> {
    let op = ManagementOp::from_name(&args.operation).ok_or_else(|| {
        Failure(format!(
            "'{}' is not an operation approved ahead: use destroy, modify, rotate or policy \
             (encrypt, decrypt, sign and verify are approved in the session, with \
             C_Login(CKU_CONTEXT_SPECIFIC))",
            args.operation
        ))
    })?;
    match (op, &args.key, &args.policy) {
        (ManagementOp::Policy, Some(_), _) => {
            return Err(Failure("--operation policy approves a policy document: give --policy FILE".into()));
        }
        (ManagementOp::Policy, None, _) => {}
        (_, None, _) => {
            return Err(Failure(format!("--operation {} approves a key: give --key LABEL", op.name())));
        }
        _ => {}
    }
    let expires_in = parse_expiry(&args.expires_in).map_err(|e| Failure(format!("--expires-in {e}")))?;
    let approver = match (&args.approver, &global.user) {
        (Some(a), Some(u)) if a != u => {
            return Err(Failure(format!("--approver {a} and --user {u} disagree: the approver logs in")));
        }
        (Some(a), _) | (None, Some(a)) => a.clone(),
        (None, None) => return Err(Failure("name the approving principal with --approver NAME".into())),
    };
    if approver == "user" || approver == SO_PRINCIPAL {
        return Err(Failure(format!(
            "'{approver}' cannot approve: approvers are principals whose policy rule grants `approve`"
        )));
    }
    let principal = match (&args.for_principal, op) {
        (Some(p), _) => p.clone(),
        (None, ManagementOp::Policy) => SO_PRINCIPAL.to_string(),
        (None, _) => {
            return Err(Failure("name the principal the approval is for with --for PRINCIPAL".into()));
        }
    };
    if op == ManagementOp::Policy && principal != SO_PRINCIPAL {
        return Err(Failure(format!(
            "a policy change is made by the SO: approve it --for so, not --for {principal}"
        )));
    }
    let policy_text = match &args.policy {
        Some(path) => {
            let bytes = read_input(Some(path))?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|_| Failure(format!("{} is not UTF-8 text", path.display())))?,
            )
        }
        None => None,
    };

    let as_approver = Global {
        slot: global.slot,
        token_dir: global.token_dir.clone(),
        pin_file: global.pin_file.clone(),
        user: Some(approver.clone()),
        service: global.service.clone(),
    };
    let token = Token::open(&as_approver)?;
    let who = format!("token '{}' (slot {})", token.label, token.slot);
    let policy = policy_in_force(&token)?
        .ok_or_else(|| Failure(format!("{who} has no policy: no operation needs approval")))?;
    // The tool checks first what it can, for a message of its own, but lets the core
    // refuse too, so that every refusal after the approver's login is audited.
    let self_approval = (principal == approver)
        .then(|| Failure(format!("'{approver}' cannot approve its own operation: ask another approver")));
    let (target, label, precheck) = match (&args.key, policy_text) {
        (Some(label), _) => {
            let handle = find_key(&token, label, &approver)?;
            let precheck =
                check_key_approval(&token, &policy, &approver, &principal, op, label, handle).err();
            let target = match (op, args.set.is_empty()) {
                (ManagementOp::Modify, false) => {
                    ApprovalTarget::Change { key: handle, attributes: parse_changes(&args.set)? }
                }
                (ManagementOp::Modify, true) => {
                    return Err(Failure(
                        "a modify approval names its change: give --set NAME=VALUE for each attribute set"
                            .into(),
                    ));
                }
                (_, false) => {
                    return Err(Failure(format!("--set is for --operation modify, not {}", op.name())));
                }
                (_, true) => ApprovalTarget::Key(handle),
            };
            (target, label.clone(), precheck)
        }
        (None, Some(text)) => {
            let precheck = if !policy.may_approve_policy_change(&approver) {
                Some(Failure(format!(
                    "principal '{approver}' may not approve a policy change: that needs a rule granting \
                     `approve` on keys [\"*\"] without requires_approval"
                )))
            } else if policy.policy_change_approvals == 0 {
                Some(Failure(format!(
                    "the policy of {who} asks no approvals for its change (policy_change_approvals is 0): \
                     the SO applies a new one directly"
                )))
            } else {
                None
            };
            let shown = args.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            (ApprovalTarget::Policy(text), shown, precheck)
        }
        (None, None) => return Err(Failure("give --key LABEL or --policy FILE".into())),
    };
    let request = ApprovalRequest { principal: principal.clone(), op, target, expires_in };
    let approval = token.module.approve_ahead(token.session, &request).map_err(|e| match e {
        Error::PolicyInvalid(m) => Failure(format!(
            "{label}: {} (nothing approved)",
            m.lines().map(str::trim).collect::<Vec<_>>().join(" ")
        )),
        _ if self_approval.is_some() || precheck.is_some() => {
            self_approval.or(precheck).unwrap_or_else(|| Failure(String::new()))
        }
        Error::ArgumentsBad => {
            Failure(format!("{who} has no principal '{principal}' (see `ecm-hsm principal list`)"))
        }
        Error::ActionProhibited => Failure(format!("{who} refused the approval (see `ecm-hsm policy show`)")),
        other => token.fail(&other),
    })?;
    let what = match op {
        ManagementOp::Policy => format!("applying the policy in {label} ({})", approval.key_label),
        _ => format!("{} of {label}", op.name()),
    };
    say!(
        "approval {} recorded: '{approver}' approves {what} by '{principal}', once, until {} UTC",
        approval.id,
        date_time(approval.expires_at / 1000)
    );
    Ok(())
}

/// The attributes of `--set NAME=VALUE`, encoded as `C_SetAttributeValue` receives them.
fn parse_changes(specs: &[String]) -> Outcome<Vec<Attribute>> {
    const FLAGS: [(&str, CK_ATTRIBUTE_TYPE); 12] = [
        ("encrypt", CKA_ENCRYPT),
        ("decrypt", CKA_DECRYPT),
        ("sign", CKA_SIGN),
        ("verify", CKA_VERIFY),
        ("wrap", CKA_WRAP),
        ("unwrap", CKA_UNWRAP),
        ("derive", CKA_DERIVE),
        ("extractable", CKA_EXTRACTABLE),
        ("sensitive", CKA_SENSITIVE),
        ("modifiable", CKA_MODIFIABLE),
        ("copyable", CKA_COPYABLE),
        ("destroyable", CKA_DESTROYABLE),
    ];
    specs
        .iter()
        .map(|spec| {
            let bad = |why: &str| Failure(format!("--set {spec}: {why}"));
            let (name, value) = spec.split_once('=').ok_or_else(|| bad("give NAME=VALUE"))?;
            let flag = FLAGS.iter().find(|(n, _)| *n == name).map(|(_, kind)| *kind);
            match (name, flag) {
                ("label", _) => Ok(Attribute::new(CKA_LABEL, value.as_bytes().to_vec())),
                ("id", _) => hex::decode(value)
                    .map(|v| Attribute::new(CKA_ID, v))
                    .map_err(|_| bad("the id is given in hex")),
                ("start_date" | "end_date", _) => {
                    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad("a date is YYYYMMDD"));
                    }
                    let kind = if name == "start_date" { CKA_START_DATE } else { CKA_END_DATE };
                    Ok(Attribute::new(kind, value.as_bytes().to_vec()))
                }
                (_, Some(kind)) => match value {
                    "true" => Ok(Attribute::bool(kind, true)),
                    "false" => Ok(Attribute::bool(kind, false)),
                    _ => Err(bad("a flag is true or false")),
                },
                _ => Err(bad("unknown attribute (see `ecm-hsm approve --help`)")),
            }
        })
        .collect()
}

/// The one key labelled `label` the approver can see.
fn find_key(token: &Token, label: &str, approver: &str) -> Outcome<CK_OBJECT_HANDLE> {
    let found = token.find(&[Attribute::new(CKA_LABEL, label.as_bytes().to_vec())])?;
    let keys: Vec<CK_OBJECT_HANDLE> = found
        .into_iter()
        .filter(|h| {
            matches!(token.module.get_attributes(token.session, *h, &[CKA_CLASS]).as_deref(),
                Ok([AttributeRead::Value(v)]) if decode_ulong(v).is_some_and(|c| c == CKO_SECRET_KEY || c == CKO_PRIVATE_KEY || c == CKO_PUBLIC_KEY))
        })
        .collect();
    match keys[..] {
        [one] => Ok(one),
        [] => Err(Failure(format!(
            "no key labelled {label} on token '{}' that principal '{approver}' may approve (see `ecm-hsm status`)",
            token.label
        ))),
        _ => Err(Failure(format!(
            "{} keys are labelled {label} on token '{}': an approval must name one key",
            keys.len(),
            token.label
        ))),
    }
}

/// The checks of the core for a key, with a message for each.
fn check_key_approval(
    token: &Token,
    policy: &Policy,
    approver: &str,
    principal: &str,
    op: ManagementOp,
    label: &str,
    handle: CK_OBJECT_HANDLE,
) -> Outcome<()> {
    if check_approver(policy, approver, principal, op, label.as_bytes()).is_err() {
        return Err(Failure(format!(
            "principal '{approver}' may not approve {} of {label}: its policy rule does not grant \
             `approve` on that key, or needs approval itself",
            op.name()
        )));
    }
    let key_op = op.key_operation().ok_or_else(|| Failure("not a key operation".into()))?;
    if policy.decide(principal, label.as_bytes(), key_op) != Decision::NeedsApproval {
        return Err(Failure(format!(
            "principal '{principal}' needs no approval to {} {label}: the policy either lets it or forbids it \
             outright (see `ecm-hsm policy show`)",
            op.name()
        )));
    }
    if op == ManagementOp::Rotate {
        let reads = token
            .module
            .get_attributes(token.session, handle, &[CKA_ECM_TIER, CKA_ECM_KEY_STATE])
            .map_err(|e| token.fail(&e))?;
        let value = |r: &AttributeRead| match r {
            AttributeRead::Value(v) => decode_ulong(v),
            _ => None,
        };
        if value(&reads[0]).is_none() || value(&reads[1]) != Some(CKS_ECM_ACTIVE) {
            return Err(Failure(format!(
                "{label} is not the current version of a key family: a rotation is approved on the \
                 version it supersedes (see `ecm-hsm status`)"
            )));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct ApprovalJson<'a> {
    id: i64,
    approver: &'a str,
    principal: &'a str,
    operation: &'a str,
    key: &'a str,
    key_label: &'a str,
    created_at: u64,
    expires_at: u64,
    consumed_at: Option<u64>,
    revoked_at: Option<u64>,
    state: &'static str,
}

#[derive(Serialize)]
struct ListJson<'a> {
    token: &'a str,
    slot: CK_SLOT_ID,
    approvals: Vec<ApprovalJson<'a>>,
}

/// `approval list [--json]`: never a secret (approvals hold none).
pub fn list(global: &Global, args: &ListArgs) -> Outcome<()> {
    let token = open_as_so_or_user(global, args.so_pin_file.as_deref())?;
    let approvals = token.module.approvals(token.session).map_err(|e| token.fail(&e))?;
    let now = ecm_hsm::audit::record::now_ms();
    if args.json {
        let out = ListJson {
            token: &token.label,
            slot: token.slot,
            approvals: approvals
                .iter()
                .map(|a| ApprovalJson {
                    id: a.id,
                    approver: &a.approver,
                    principal: &a.principal,
                    operation: &a.operation,
                    key: &a.key,
                    key_label: &a.key_label,
                    created_at: a.created_at,
                    expires_at: a.expires_at,
                    consumed_at: a.consumed_at,
                    revoked_at: a.revoked_at,
                    state: ApprovalState::of(a, now).name(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&out).map_err(|e| Failure(format!("JSON: {e}")))?;
        say!("{text}");
        return Ok(());
    }
    if approvals.is_empty() {
        say!("token '{}' (slot {}) has no approvals recorded ahead", token.label, token.slot);
        return Ok(());
    }
    let when = |a: &ApprovalRecord| match ApprovalState::of(a, now) {
        ApprovalState::Consumed => a.consumed_at,
        ApprovalState::Revoked => a.revoked_at,
        _ => Some(a.expires_at),
    };
    let rows: Vec<[String; 7]> = approvals
        .iter()
        .map(|a| {
            [
                a.id.to_string(),
                a.approver.clone(),
                a.principal.clone(),
                a.operation.clone(),
                a.key_label.clone(),
                ApprovalState::of(a, now).name().to_owned(),
                when(a).map(|t| date_time(t / 1000)).unwrap_or_default(),
            ]
        })
        .collect();
    say!("token '{}' (slot {}): approvals recorded ahead (times UTC)", token.label, token.slot);
    print_table(["ID", "APPROVER", "FOR", "OPERATION", "KEY", "STATE", "SINCE / UNTIL"], &rows);
    Ok(())
}

/// `approval revoke ID`.
pub fn revoke(global: &Global, args: &RevokeArgs) -> Outcome<()> {
    let token = open_as_so_or_user(global, args.so_pin_file.as_deref())?;
    let who = format!("token '{}' (slot {})", token.label, token.slot);
    let revoked = token.module.revoke_approval(token.session, args.id).map_err(|e| match e {
        Error::ArgumentsBad => {
            Failure(format!("{who} has no approval {} (see `ecm-hsm approval list`)", args.id))
        }
        Error::ActionProhibited => Failure(format!(
            "approval {} is not pending, or not yours to revoke (the SO revokes any, an approver its own)",
            args.id
        )),
        other => token.fail(&other),
    })?;
    say!(
        "revoked approval {}: '{}' no longer approves {} of {} by '{}'",
        revoked.id,
        revoked.approver,
        revoked.operation,
        revoked.key_label,
        revoked.principal
    );
    Ok(())
}
