//! Tokens and the key hierarchy: `init`, `hierarchy init`, `tenant add`, `rotate`, `retire`,
//! `status`.

use cryptoki_sys::*;
use ecm_hsm::Error;
use ecm_hsm::hierarchy::Tier;
use ecm_hsm::hierarchy::rotation::now;
use ecm_hsm::module::token::{MAX_PIN_LEN, MIN_PIN_LEN};
use ecm_hsm::token::Custody;
use serde::Serialize;

use super::token::{self, Key, SlotState, Token, tier_name};
use super::util::{Progress, date, date_time, explain};
use super::{Failure, Global, InitArgs, Outcome, RotateWhat, pins};

/// `init`: a token on the free slot (never over an existing one), with its SO PIN and user PIN.
pub fn init(global: &Global, args: &InitArgs) -> Outcome<()> {
    let label = args.label.as_bytes();
    if label.is_empty() || label.len() > 32 {
        return Err(Failure(format!(
            "a token label has 1 to 32 bytes; '{}' has {}",
            args.label,
            label.len()
        )));
    }
    let module = token::module(global)?;
    let slots = module.slot_list().map_err(|e| Failure(explain(&e)))?;
    let mut free = None;
    for slot in &slots {
        match token::slot_state(&module, *slot)? {
            SlotState::Token(existing) if existing == args.label => {
                return Err(Failure(format!(
                    "slot {slot} already holds a token labelled '{existing}': choose another label"
                )));
            }
            SlotState::Free => free = free.or(Some(*slot)),
            _ => {}
        }
    }
    let slot = match global.slot {
        None => free.ok_or_else(|| Failure("no free slot".into()))?,
        Some(n) => {
            let n = n as CK_SLOT_ID;
            match slots.contains(&n).then(|| token::slot_state(&module, n)).transpose()? {
                Some(SlotState::Free) => n,
                Some(SlotState::Token(l)) => {
                    return Err(Failure(format!(
                        "slot {n} already holds token '{l}'; init never wipes a token (the free slot is {})",
                        free.map_or("none".into(), |f| f.to_string())
                    )));
                }
                _ => {
                    return Err(Failure(format!(
                        "slot {n} is not the free slot of {} (the free slot is {})",
                        token::token_dir(&module),
                        free.map_or("none".into(), |f| f.to_string())
                    )));
                }
            }
        }
    };
    // Both PINs first, so that a missing one leaves no half-made token behind.
    let so_pin = pins::so_pin(args.so_pin_file.as_deref())?;
    let user_pin = pins::new_user_pin(args.new_pin_file.as_deref())?;
    for (what, pin) in [("SO PIN", &so_pin), ("user PIN", &user_pin)] {
        ecm_hsm::module::token::check_pin_len(pin)
            .map_err(|_| Failure(format!("the {what} must have {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes")))?;
    }
    let mut padded = [b' '; 32];
    padded[..label.len()].copy_from_slice(label);
    if let Some(path) = &args.service_key {
        let key = token::service_key(&module, path)?;
        module.use_service_key(slot, key).map_err(|e| Failure(explain(&e)))?;
    } else if let Some(path) = &module.config().service_key_file {
        // The configured service key makes the token in service custody: a key file that
        // cannot be used is said now, before anything is made.
        ecm_hsm::token::ServiceKey::load(path).map_err(|e| Failure(explain(&e)))?;
    }
    let steps = || -> ecm_hsm::Result<()> {
        module.init_token(slot, &so_pin, padded)?;
        let s = module.open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        let set = module.login(s, CKU_SO, &so_pin).and_then(|()| module.init_pin(s, &user_pin));
        let _ = module.close_session(s);
        set
    };
    steps().map_err(|e| Failure(format!("initializing slot {slot}: {}", explain(&e))))?;
    let custody = module.token_custody(slot).map(|c| c.name()).unwrap_or("unknown");
    say!(
        "initialized token '{}' in slot {slot} ({}), user PIN set, custody: {custody}",
        args.label,
        token::token_dir(&module)
    );
    Ok(())
}

fn current(keys: &[Key], tier: Tier, tenant: Option<&str>) -> Option<Key> {
    keys.iter()
        .find(|k| k.tier == tier && k.active && (tier != Tier::Dek || k.tenant.as_deref() == tenant))
        .cloned()
}

fn days(seconds: u64) -> u64 {
    seconds / 86_400
}

/// `hierarchy init`: the master key and the first KEK, whichever is missing.
pub fn hierarchy_init(global: &Global) -> Outcome<()> {
    let token = Token::open(global)?;
    let keys = token.keys()?;
    let (master, kek) = (current(&keys, Tier::Master, None), current(&keys, Tier::Kek, None));
    if let (Some(m), Some(k)) = (&master, &kek) {
        return Err(Failure(format!(
            "token '{}' already has its hierarchy ({} and {} are current); rotate with `ecm-hsm rotate master|kek`",
            token.label, m.label, k.label
        )));
    }
    for (tier, existing) in [(Tier::Master, master), (Tier::Kek, kek)] {
        if existing.is_none() {
            let key = token.generate(tier, None)?;
            say!("created {} (rotates every {} days)", key.label, days(key.period));
        }
    }
    Ok(())
}

/// Tenant names become labels (`dek-<tenant>-v<N>`): the core's grammar, said here with
/// the name refused.
fn check_tenant_name(tenant: &str) -> Outcome<()> {
    if ecm_hsm::hierarchy::is_tenant_name(tenant.as_bytes()) {
        Ok(())
    } else {
        Err(Failure(format!(
            "'{tenant}' is not a tenant name: use 1 to {} letters, digits or '_' ('-' separates the \
             tenant from the version in key labels)",
            ecm_hsm::hierarchy::MAX_TENANT_LEN
        )))
    }
}

/// `tenant add T...`: the first DEK of each tenant.
pub fn tenant_add(global: &Global, tenants: &[String]) -> Outcome<()> {
    for t in tenants {
        check_tenant_name(t)?;
    }
    let token = Token::open(global)?;
    let keys = token.keys()?;
    if current(&keys, Tier::Kek, None).is_none() {
        return Err(Failure(format!(
            "token '{}' has no KEK to wrap DEKs: run `ecm-hsm hierarchy init` first",
            token.label
        )));
    }
    for t in tenants {
        if let Some(k) = keys
            .iter()
            .filter(|k| k.tier == Tier::Dek && k.tenant.as_deref() == Some(t))
            .max_by_key(|k| k.version)
        {
            return Err(Failure(format!(
                "tenant {t} already exists ({} is its newest DEK); rotate it with `ecm-hsm rotate dek --tenant {t}`",
                k.label
            )));
        }
    }
    for t in tenants {
        let key = token.generate(Tier::Dek, Some(t))?;
        say!("added tenant {t}: {} (rotates every {} days)", key.label, days(key.period));
    }
    Ok(())
}

/// Rotates one family whose current version is `old`; returns the new version.
fn rotate_family(token: &Token, keys: &[Key], old: &Key) -> Outcome<Key> {
    let children = match old.tier.child() {
        Some(child) => keys.iter().filter(|k| k.tier == child).count(),
        None => 0,
    };
    let progress = Progress::new("rewrapping", children);
    if children > 0 {
        let what = if old.tier == Tier::Master { "KEKs" } else { "DEKs" };
        progress.note(&format!("rotating {}: rewrapping {children} {what} inside the token…", old.family()));
    }
    let new = token.generate(old.tier, old.tenant.as_deref())?;
    let rewrapped = match (old.tier, children) {
        (_, 0) => String::new(),
        (Tier::Master, n) => format!(", {n} KEK(s) rewrapped under it"),
        (_, n) => format!(", {n} DEK(s) rewrapped under it"),
    };
    let retire_hint = if old.tier == Tier::Dek {
        format!("retire it with `ecm-hsm retire --label {}` once no envelope needs it", old.label)
    } else {
        format!("it wraps nothing now: retire it with `ecm-hsm retire --label {}`", old.label)
    };
    say!(
        "rotated {}: {} is current{rewrapped}; {} is decrypt-only ({retire_hint})",
        old.family(),
        new.label,
        old.label
    );
    Ok(new)
}

/// `rotate master | kek | dek --tenant T`.
pub fn rotate(global: &Global, what: &RotateWhat) -> Outcome<()> {
    let (tier, tenant) = match what {
        RotateWhat::Master => (Tier::Master, None),
        RotateWhat::Kek => (Tier::Kek, None),
        RotateWhat::Dek { tenant } => (Tier::Dek, Some(tenant.as_str())),
    };
    let token = Token::open(global)?;
    let keys = token.keys()?;
    let Some(old) = current(&keys, tier, tenant) else {
        return Err(Failure(match tenant {
            Some(t) => format!(
                "tenant {t} has no DEK on token '{}': add it with `ecm-hsm tenant add {t}`",
                token.label
            ),
            None => format!(
                "token '{}' has no {} yet: run `ecm-hsm hierarchy init`",
                token.label,
                if tier == Tier::Master { "master key" } else { "KEK" }
            ),
        }));
    };
    rotate_family(&token, &keys, &old).map(|_| ())
}

/// `rotate --due`: every current key whose next rotation has come, masters first.
pub fn rotate_due(global: &Global, dry_run: bool) -> Outcome<()> {
    let token = Token::open(global)?;
    let now = now();
    let keys = token.keys()?;
    let due: Vec<Key> = keys.iter().filter(|k| k.is_due(now)).cloned().collect();
    if due.is_empty() {
        let next = keys.iter().filter(|k| k.active).min_by_key(|k| k.next_rotation);
        match next {
            Some(k) => say!("nothing is due (next: {} on {})", k.label, date(k.next_rotation)),
            None => say!("nothing is due (no keys yet)"),
        }
        return Ok(());
    }
    for old in &due {
        if dry_run {
            say!("due: {} (since {})", old.label, date(old.next_rotation));
            continue;
        }
        // Earlier rotations rewrapped keys: list again for accurate counts.
        let keys = token.keys()?;
        rotate_family(&token, &keys, old)?;
    }
    Ok(())
}

/// `retire --label L`: destroys a superseded version; the core refuses the current one and
/// one that still wraps keys of the next tier.
pub fn retire(global: &Global, label: &str) -> Outcome<()> {
    let token = Token::open(global)?;
    let keys = token.keys()?;
    let Some(key) = keys.iter().find(|k| k.label == label) else {
        let any = token.find(&[ecm_hsm::object::Attribute::new(CKA_LABEL, label.as_bytes().to_vec())])?;
        return Err(Failure(if any.is_empty() {
            format!("no key labelled {label} on token '{}' (see `ecm-hsm status`)", token.label)
        } else {
            format!("{label} is not a key of the hierarchy: retire removes master, KEK and DEK versions only")
        }));
    };
    match token.module.destroy_object(token.session, key.handle) {
        Ok(()) => {
            let consequence = match key.tier {
                Tier::Dek => ": envelopes sealed under it can no longer be opened",
                _ => "",
            };
            say!("retired {label}{consequence}");
            Ok(())
        }
        Err(Error::ActionProhibited) => {
            let dependents: Vec<&Key> =
                keys.iter().filter(|k| k.parent_id.as_deref() == Some(key.unique_id.as_str())).collect();
            Err(Failure(if key.active {
                format!(
                    "{label} is the current version of {}; rotate first (`{}`)",
                    key.family(),
                    key.rotate_command()
                )
            } else if !dependents.is_empty() {
                let what = if key.tier == Tier::Master { "KEK" } else { "DEK" };
                let s = if dependents.len() == 1 { "" } else { "s" };
                format!(
                    "{label} still wraps {} {what}{s}; rotate `{}` so they move to a new version",
                    dependents.len(),
                    key.rotate_command()
                )
            } else if let Some(name) = &token.principal {
                format!(
                    "the policy does not let principal '{name}' retire {label} (see `ecm-hsm policy show`; \
                     where its rule requires approval, record approvals ahead with \
                     `ecm-hsm approve --for {name} --operation destroy --key {label} --approver NAME`)"
                )
            } else {
                format!("the token refused to retire {label} (CKR_ACTION_PROHIBITED)")
            }))
        }
        Err(e) => Err(token.fail(&e)),
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    token: &'a str,
    slot: CK_SLOT_ID,
    /// `in-process`, or `through service ADDR` (issue 14: what each protects is in the README).
    mode: String,
    now: u64,
    /// Who can open the token key: `pins` or `service`.
    custody: &'static str,
    /// What weakens this token's protection (a directory others can reach, test settings,
    /// times with auditing off).
    warnings: Vec<String>,
    /// Times with auditing off, as `audit verify` reports them: register records of the
    /// `audit_off` that began each and of the `audit_on` that ended it (`null`: still off).
    audit_gaps: Vec<GapJson>,
    keys: Vec<KeyJson>,
}

#[derive(Serialize)]
struct GapJson {
    off_at: u64,
    on_at: Option<u64>,
}

#[derive(Serialize)]
struct KeyJson {
    label: String,
    tier: &'static str,
    tenant: Option<String>,
    version: u64,
    state: &'static str,
    created_at: u64,
    rotated_at: Option<u64>,
    age_days: u64,
    rotation_period_days: u64,
    /// When the current version is due to rotate; none for superseded versions.
    next_rotation: Option<u64>,
    next_due: Option<String>,
    overdue: bool,
    unique_id: String,
    parent_id: Option<String>,
}

fn state_name(k: &Key) -> &'static str {
    if k.active { "active" } else { "decrypt-only" }
}

/// What `status` must not let pass unnoticed about where and how the token runs. Through the
/// key service, the files and settings are the service's: only what its token reports (a
/// model saying `TEST`) is known here.
fn token_warnings(token: &Token) -> Vec<String> {
    let config = token.module.config();
    let (exposure, test_settings) = match token.module.local() {
        Some(_) => (ecm_hsm::store::files::exposure(&config.token_dir), config.test_settings),
        None => {
            let model = token.module.token_status_and_model(token.slot).map(|(_, m)| m).unwrap_or_default();
            (None, model.contains("TEST"))
        }
    };
    let mut warnings: Vec<String> = exposure.into_iter().collect();
    if test_settings {
        warnings.push(
            "test settings (test_settings = true): PIN cost and lockout may be below a production token's floors"
                .into(),
        );
    }
    warnings
}

/// The times the token's audit register shows auditing off (issue 13 item 11), read as
/// `audit verify` reads them, with the key of the status's login; each is also a warning.
/// A register that does not verify is a warning too (`audit verify` says where).
fn audit_gaps(token: &Token, warnings: &mut Vec<String>) -> Vec<GapJson> {
    // Through the service, the trail and its key are the service's: its host's status shows
    // the gaps.
    let Some(module) = token.module.local() else {
        return Vec::new();
    };
    let path = ecm_hsm::audit::path_for(&module.config().token_dir, token.slot);
    if !path.exists() {
        return Vec::new();
    }
    let report = module
        .audit_key(token.session)
        .map_err(|e| explain(&e))
        .and_then(|key| ecm_hsm::audit::verify(&path, Some(&key), None).map_err(|e| explain(&e)));
    let report = match report {
        Ok(report) => report,
        Err(why) => {
            warnings.push(format!("the audit record could not be read ({why}): run `ecm-hsm audit verify`"));
            return Vec::new();
        }
    };
    if report.problem.is_some() {
        warnings.push("the audit record is NOT intact: run `ecm-hsm audit verify`".into());
    }
    report
        .audit_gaps
        .iter()
        .map(|gap| {
            let until =
                gap.on_at.map_or("and is still off".to_owned(), |on| format!("until register record {on}"));
            warnings.push(format!(
                "auditing was turned off (audit = false) from register record {} {until}: calls of that time \
                 are not recorded",
                gap.off_at
            ));
            GapJson { off_at: gap.off_at, on_at: gap.on_at }
        })
        .collect()
}

/// `status [--json]`.
pub fn status(global: &Global, json: bool) -> Outcome<()> {
    let token = Token::open(global)?;
    let now = now();
    let keys = token.keys()?;
    let mut warnings = token_warnings(&token);
    let audit_gaps = audit_gaps(&token, &mut warnings);
    // Through the service the custody is the service's word (its token model); `None` only
    // where a backend cannot tell.
    let custody = match token.module.token_custody(token.slot) {
        Ok(custody) => Some(custody),
        Err(Error::FunctionNotSupported) => None,
        Err(e) => return Err(Failure(explain(&e))),
    };
    let mode = token::mode(&token.module);
    if json {
        let out = StatusJson {
            token: &token.label,
            slot: token.slot,
            mode,
            now,
            custody: custody.map_or("unknown", |c| c.name()),
            warnings,
            audit_gaps,
            keys: keys
                .iter()
                .map(|k| KeyJson {
                    label: k.label.clone(),
                    tier: tier_name(k.tier),
                    tenant: k.tenant.clone(),
                    version: k.version,
                    state: state_name(k),
                    created_at: k.created_at,
                    rotated_at: (k.rotated_at != 0).then_some(k.rotated_at),
                    age_days: days(now.saturating_sub(k.created_at)),
                    rotation_period_days: days(k.period),
                    next_rotation: k.active.then_some(k.next_rotation),
                    next_due: k.active.then(|| date(k.next_rotation)),
                    overdue: k.is_due(now),
                    unique_id: k.unique_id.clone(),
                    parent_id: k.parent_id.clone(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&out).map_err(|e| Failure(format!("JSON: {e}")))?;
        say!("{text}");
        return Ok(());
    }
    say!("token '{}' (slot {}), {} UTC", token.label, token.slot, date_time(now));
    say!("mode: {mode}");
    say!(
        "custody: {}",
        match custody {
            None => "shown by `ecm-hsm status` on the service's host",
            Some(Custody::Service) =>
                "service (the token key opens only with the service key; PINs are verifiers)",
            Some(Custody::Pins) =>
                "pins (any PIN opens the token key: for development; see `ecm-hsm token seal-for-service`)",
        }
    );
    for warning in &warnings {
        say!("WARNING: {warning}");
    }
    if keys.is_empty() {
        match global.user.as_deref().filter(|u| *u != "user") {
            // A principal sees only the keys the policy grants it.
            Some(name) => {
                say!("no keys of the hierarchy that principal '{name}' may see (see `ecm-hsm policy show`)")
            }
            None => say!("no keys of the hierarchy yet: run `ecm-hsm hierarchy init`"),
        }
        return Ok(());
    }
    let header = ["LABEL", "TIER", "TENANT", "VERSION", "STATE", "AGE (DAYS)", "NEXT DUE", ""];
    let rows: Vec<[String; 8]> = keys
        .iter()
        .map(|k| {
            [
                k.label.clone(),
                tier_name(k.tier).to_owned(),
                k.tenant.clone().unwrap_or_else(|| "-".into()),
                k.version.to_string(),
                state_name(k).to_owned(),
                days(now.saturating_sub(k.created_at)).to_string(),
                if k.active { date(k.next_rotation) } else { "-".into() },
                if k.is_due(now) { "OVERDUE".into() } else { String::new() },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    let overdue = keys.iter().filter(|k| k.is_due(now)).count();
    if overdue > 0 {
        say!("{overdue} key(s) overdue: `ecm-hsm rotate --due` rotates them");
    }
    Ok(())
}
