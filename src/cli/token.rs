//! Opening the module and a token, logging in, and reading the keys of the hierarchy.
//!
//! The core is a [`Backend`]: in-process (`Module` on the token files), or with `--service
//! ADDR` / `ECM_HSM_SERVICE` a client of the key service, whose core does the work under the
//! same rules and records it in the service's audit trail (naming this process). Commands
//! that read the token's files themselves (`audit verify`, `audit export`) run in-process
//! on the token directory in either case, see [`local_module`].

use std::path::Path;

use cryptoki_sys::*;
use ecm_hsm::config::Config;
use ecm_hsm::mechanism::{Mechanism, MechanismParams};
use ecm_hsm::module::Backend;
use ecm_hsm::object::attribute::decode_ulong;
use ecm_hsm::object::{Attribute, AttributeRead};
use ecm_hsm::token::{Custody, ServiceKey};
use ecm_hsm::vendor::*;
use ecm_hsm::{Error, hierarchy::Tier};

use super::util::explain;
use super::{Failure, Global, Outcome, pins};

/// `ecm-hsm token ...`: custody of the token key.
#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Move the token to service custody: rotate its token key, seal the new one under the
    /// service key in --key-file, and turn its PINs into verifiers (SO PIN from
    /// --so-pin-file or ECM_HSM_SO_PIN)
    #[command(long_about = "Move the token to service custody, in one transaction: a new token \
                            key seals every secret value again (so the token key that copies \
                            under PINs in old backups open is dead), the new key is sealed under \
                            the service key in --key-file (made, 32 random bytes readable by \
                            this user alone, if it does not exist), and the SO's PIN record \
                            becomes a verifier; the others become verifiers at their next \
                            login. The audit trail so far is archived (its MACs were under the \
                            old key; run `ecm-hsm audit verify` first) and a new one starts \
                            under a key derived from the service key. Run it as the service's \
                            user, with no other process using the token.")]
    SealForService {
        /// The service key file (outside the token directory)
        #[arg(long, value_name = "PATH")]
        key_file: std::path::PathBuf,
        /// Read the SO PIN from FILE [default: $ECM_HSM_SO_PIN, else a prompt]
        #[arg(long, value_name = "FILE")]
        so_pin_file: Option<std::path::PathBuf>,
    },
}

pub fn run(global: &Global, command: &TokenCommand) -> Outcome<()> {
    match command {
        TokenCommand::SealForService { key_file, so_pin_file } => {
            let module = module(global)?;
            let (slot, label) = choose_slot(&module, global.slot)?;
            if module.token_custody(slot).map_err(|e| Failure(explain(&e)))? == Custody::Service {
                return Err(Failure(format!("token '{label}' (slot {slot}) is in service custody already")));
            }
            let pin = pins::so_login_pin(so_pin_file.as_deref())?;
            let key = service_key(&module, key_file)?;
            let path = key.path().display().to_string();
            module.seal_for_service(slot, &pin, key).map_err(|e| {
                Failure(match e {
                    Error::PinIncorrect => format!("token '{label}' (slot {slot}) refused the SO PIN"),
                    Error::PinLocked => format!("the SO PIN of token '{label}' (slot {slot}) is locked"),
                    Error::SessionExists => format!("token '{label}' (slot {slot}) has sessions open"),
                    e => format!("token '{label}' (slot {slot}): {}", explain(&e)),
                })
            })?;
            say!(
                "token '{label}' (slot {slot}) is in service custody: its new token key opens only with {path}; \
                 the audit trail so far was archived"
            );
            Ok(())
        }
    }
}

/// The service key file at `path`, made if it does not exist. Refused inside the token
/// directory: every copy or backup of the tokens would carry the key that opens them.
pub fn service_key(module: &Backend, path: &Path) -> Outcome<ServiceKey> {
    let dir = std::fs::canonicalize(&module.config().token_dir).ok();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let holder = std::fs::canonicalize(parent)
        .map_err(|e| Failure(format!("the service key's directory {}: {e}", parent.display())))?;
    if dir.is_some_and(|d| holder.starts_with(d)) {
        return Err(Failure(format!(
            "{} is inside the token directory: keep the service key elsewhere (a copy of the tokens must not carry it)",
            path.display()
        )));
    }
    let (key, made) = ServiceKey::load_or_create(path).map_err(|e| Failure(explain(&e)))?;
    if made {
        say!(
            "made the service key {} (mode 0600): keep a copy where the token backups are not",
            path.display()
        );
    }
    Ok(key)
}

/// The settings: `--token-dir` in place of `ECM_HSM_DIR`, the rest as the module reads them.
pub fn config(token_dir: Option<&Path>) -> Outcome<Config> {
    Config::from_env_with_dir(token_dir.map(Path::to_path_buf)).map_err(|e| Failure(explain(&e)))
}

/// The settings of a command that goes through the core: `--service` in place of
/// `ECM_HSM_SERVICE`.
pub fn client_config(global: &Global) -> Outcome<Config> {
    let mut config = config(global.token_dir.as_deref())?;
    if let Some(address) = &global.service {
        config.service = Some(address.clone());
    }
    Ok(config)
}

/// The core the command works on: in-process, or the key service's (see the module comment).
pub fn module(global: &Global) -> Outcome<Backend> {
    Backend::new(client_config(global)?).map_err(|e| Failure(explain(&e)))
}

/// How the command reaches the tokens, for `status`: `in-process` or `through service ADDR`.
pub fn mode(module: &Backend) -> String {
    match &module.config().service {
        Some(address) => format!("through service {address}"),
        None => "in-process".to_owned(),
    }
}

/// The core of a command that reads or writes the token's files itself (`audit verify`,
/// `audit export`): always in-process, on the token directory (`--token-dir`, else
/// `ECM_HSM_DIR`), also when the tool is otherwise a client of the key service — which it
/// then says on stderr, since the files are wherever that directory is, not the service's
/// unless this is the service's host and user.
pub fn local_module(global: &Global, command: &str) -> Outcome<Backend> {
    let mut config = client_config(global)?;
    if let Some(address) = config.service.take() {
        eprintln!(
            "ecm-hsm: note: `{command}` reads the token's files: it runs in-process on {}, not through \
             the key service {address} (on the service's host, run it as the service's user)",
            config.token_dir.display()
        );
    }
    Backend::new(config).map_err(|e| Failure(explain(&e)))
}

/// The label of a token, without its padding.
pub fn label_text(label: &[u8; 32]) -> String {
    String::from_utf8_lossy(label).trim_end_matches([' ', '\0']).to_owned()
}

/// What a slot holds.
pub enum SlotState {
    Free,
    Token(String),
    Unrecognized,
}

pub fn slot_state(module: &Backend, slot: CK_SLOT_ID) -> Outcome<SlotState> {
    match module.token_status(slot) {
        Ok(s) if s.info.flags & CKF_TOKEN_INITIALIZED != 0 => Ok(SlotState::Token(label_text(&s.info.label))),
        Ok(_) => Ok(SlotState::Free),
        Err(Error::TokenNotRecognized) => Ok(SlotState::Unrecognized),
        Err(e) => Err(Failure(explain(&e))),
    }
}

/// Where the tokens are, for messages: a directory, or the key service.
pub fn token_dir(module: &Backend) -> String {
    module.describe_tokens()
}

/// A logged-in read/write session on the chosen token; closed (and so logged out) on drop.
pub struct Token {
    pub module: Backend,
    pub slot: CK_SLOT_ID,
    pub label: String,
    pub session: CK_SESSION_HANDLE,
    /// The principal logged in (`--user NAME`), if not the token's user or the SO.
    pub principal: Option<String>,
}

impl Drop for Token {
    fn drop(&mut self) {
        let _ = self.module.close_session(self.session);
    }
}

impl Token {
    /// A read/write session on the token of `--slot` (else the first initialized one) of
    /// `module`, not logged in yet.
    fn session(module: Backend, global: &Global) -> Outcome<Token> {
        let (slot, label) = choose_slot(&module, global.slot)?;
        let session = module
            .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .map_err(|e| Failure(format!("token '{label}' (slot {slot}): {}", explain(&e))))?;
        Ok(Token { module, slot, label, session, principal: None })
    }

    /// Opens the token of `--slot` (else the first initialized one) and logs in as the user,
    /// or as the principal `--user NAME` (`--user user` is the token's own user).
    pub fn open(global: &Global) -> Outcome<Token> {
        Token::open_on(module(global)?, global)
    }

    /// As [`Token::open`], on the core `module` (for [`local_module`]).
    pub fn open_on(module: Backend, global: &Global) -> Outcome<Token> {
        let mut token = Token::session(module, global)?;
        let pin = pins::user_pin(global.pin_file.as_deref())?;
        let session = token.session;
        let result = match &global.user {
            Some(name) => token.module.login_user(session, CKU_USER, &pin, name.as_bytes()),
            None => token.module.login(session, CKU_USER, &pin),
        };
        result.map_err(|e| token.login_failure(&e, global.user.as_deref()))?;
        token.principal = global.user.clone().filter(|u| u != "user");
        Ok(token)
    }

    /// Opens the token as `open` does and logs in as the SO, with the SO PIN from
    /// `so_pin_file`, else `ECM_HSM_SO_PIN`, else a prompt.
    pub fn open_so(global: &Global, so_pin_file: Option<&Path>) -> Outcome<Token> {
        Token::open_so_on(module(global)?, global, so_pin_file)
    }

    /// As [`Token::open_so`], on the core `module`.
    pub fn open_so_on(module: Backend, global: &Global, so_pin_file: Option<&Path>) -> Outcome<Token> {
        let token = Token::session(module, global)?;
        let pin = pins::so_login_pin(so_pin_file)?;
        token.module.login(token.session, CKU_SO, &pin).map_err(|e| token.so_login_failure(&e))?;
        Ok(token)
    }

    fn so_login_failure(&self, e: &Error) -> Failure {
        let who = format!("token '{}' (slot {})", self.label, self.slot);
        Failure(match e {
            Error::PinIncorrect => {
                let flags = self.module.token_status(self.slot).map(|s| s.info.flags).unwrap_or(0);
                let hint = if flags & CKF_SO_PIN_FINAL_TRY != 0 {
                    "; one more wrong SO PIN locks it for good"
                } else {
                    "; check ECM_HSM_SO_PIN or --so-pin-file"
                };
                format!("{who} refused the SO PIN{hint}")
            }
            Error::PinLocked => format!("the SO PIN of {who} is locked (it cannot be reset)"),
            Error::PinLenRange => format!("{who} refused the SO PIN: it is too short or too long"),
            Error::UserAlreadyLoggedIn | Error::UserAnotherAlreadyLoggedIn => {
                format!("{who}: someone is already logged in")
            }
            other => format!("{who}: SO login failed: {}", explain(other)),
        })
    }

    fn login_failure(&self, e: &Error, user: Option<&str>) -> Failure {
        let who = format!("token '{}' (slot {})", self.label, self.slot);
        // `--user user` is the token's own user; any other name is a principal.
        let principal_name = user.filter(|u| *u != "user");
        let principal = user.map(|u| format!(" for principal '{u}'")).unwrap_or_default();
        Failure(match e {
            Error::PinIncorrect => {
                let flags = self.module.token_status(self.slot).map(|s| s.info.flags).unwrap_or(0);
                // The token's flags count the user's failures, not a principal's.
                let hint = if principal_name.is_none() && flags & CKF_USER_PIN_FINAL_TRY != 0 {
                    "; one more wrong PIN locks it"
                } else {
                    "; check ECM_HSM_PIN or --pin-file"
                };
                format!("{who} refused the user PIN{principal}{hint}")
            }
            Error::PinLocked => match principal_name {
                Some(name) => format!(
                    "principal '{name}' of {who} is locked: the SO must set a new PIN \
                     (`ecm-hsm principal reset-pin {name}`)"
                ),
                None => format!("the user PIN of {who} is locked: the SO must set a new one (C_InitPIN)"),
            },
            Error::UserPinNotInitialized => format!("{who} has no user PIN yet: the SO must set one"),
            Error::PinLenRange => format!("{who} refused the user PIN: it is too short or too long"),
            Error::UserAlreadyLoggedIn | Error::UserAnotherAlreadyLoggedIn => {
                format!("{who}: someone is already logged in")
            }
            other => format!("{who}: login failed: {}", explain(other)),
        })
    }

    /// A message naming the token.
    pub fn fail(&self, e: &Error) -> Failure {
        let why = match (e, &self.principal) {
            (Error::ActionProhibited | Error::KeyFunctionNotPermitted, Some(name)) => format!(
                "the policy does not let principal '{name}' do this (see `ecm-hsm policy show`; where \
                 its rule requires approval, this needs approvals recorded ahead with `ecm-hsm approve`)"
            ),
            _ => explain(e),
        };
        Failure(format!("token '{}' (slot {}): {why}", self.label, self.slot))
    }

    /// Every object matching `template`.
    pub fn find(&self, template: &[Attribute]) -> Outcome<Vec<CK_OBJECT_HANDLE>> {
        let m = &self.module;
        m.find_init(self.session, template).map_err(|e| self.fail(&e))?;
        let mut found = Vec::new();
        let result = loop {
            match m.find_next(self.session, 1024) {
                Ok(batch) if batch.is_empty() => break Ok(()),
                Ok(batch) => found.extend(batch),
                Err(e) => break Err(e),
            }
        };
        let _ = m.find_final(self.session);
        result.map_err(|e| self.fail(&e))?;
        Ok(found)
    }

    /// Every key of the hierarchy, masters first, then KEKs, then DEKs by tenant; each
    /// family by version.
    pub fn keys(&self) -> Outcome<Vec<Key>> {
        let mut keys = Vec::new();
        for tier in [Tier::Master, Tier::Kek, Tier::Dek] {
            for handle in self.find(&[Attribute::ulong(CKA_ECM_TIER, tier.code())])? {
                keys.push(self.key(handle, tier)?);
            }
        }
        keys.sort_by(|a, b| (a.tier, &a.tenant, a.version).cmp(&(b.tier, &b.tenant, b.version)));
        Ok(keys)
    }

    fn key(&self, handle: CK_OBJECT_HANDLE, tier: Tier) -> Outcome<Key> {
        let kinds = [
            CKA_LABEL,
            CKA_ECM_TENANT,
            CKA_ECM_KEY_VERSION,
            CKA_ECM_KEY_STATE,
            CKA_ECM_CREATED_AT,
            CKA_ECM_ROTATED_AT,
            CKA_ECM_NEXT_ROTATION,
            CKA_ECM_ROTATION_PERIOD,
            CKA_UNIQUE_ID,
            CKA_ECM_PARENT_ID,
        ];
        let reads = self.module.get_attributes(self.session, handle, &kinds).map_err(|e| self.fail(&e))?;
        let bytes = |i: usize| match &reads[i] {
            AttributeRead::Value(v) => Some(v.to_vec()),
            _ => None,
        };
        #[allow(clippy::unnecessary_cast)] // CK_ULONG is u64 on LP64, u32 elsewhere
        let number = |i: usize| bytes(i).and_then(|v| decode_ulong(&v)).map(|n| n as u64).unwrap_or(0);
        let text = |i: usize| bytes(i).map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(Key {
            handle,
            label: text(0).unwrap_or_default(),
            tier,
            tenant: text(1),
            version: number(2),
            active: bytes(3).and_then(|v| decode_ulong(&v)) == Some(CKS_ECM_ACTIVE),
            created_at: number(4),
            rotated_at: number(5),
            next_rotation: number(6),
            period: number(7),
            unique_id: text(8).unwrap_or_default(),
            parent_id: text(9),
        })
    }

    /// `C_GenerateKey` of the next version of a family: its first version, or a rotation.
    pub fn generate(&self, tier: Tier, tenant: Option<&str>) -> Outcome<Key> {
        let mut template = vec![Attribute::ulong(CKA_ECM_TIER, tier.code())];
        if let Some(t) = tenant {
            template.push(Attribute::new(CKA_ECM_TENANT, t.as_bytes().to_vec()));
        }
        let mechanism = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
        let handle =
            self.module.generate_key(self.session, &mechanism, &template).map_err(|e| self.fail(&e))?;
        self.key(handle, tier)
    }
}

/// One key of the hierarchy as `status` shows it.
#[derive(Debug, Clone)]
pub struct Key {
    pub handle: CK_OBJECT_HANDLE,
    pub label: String,
    pub tier: Tier,
    pub tenant: Option<String>,
    pub version: u64,
    /// The current version of its family (else decrypt-only).
    pub active: bool,
    pub created_at: u64,
    pub rotated_at: u64,
    pub next_rotation: u64,
    pub period: u64,
    pub unique_id: String,
    pub parent_id: Option<String>,
}

impl Key {
    /// The family's name: `master`, `kek`, `dek-<tenant>`.
    pub fn family(&self) -> String {
        match (self.tier, &self.tenant) {
            (Tier::Dek, Some(t)) => format!("dek-{t}"),
            (tier, _) => tier_name(tier).to_owned(),
        }
    }

    pub fn is_due(&self, now: u64) -> bool {
        self.active && self.next_rotation <= now
    }

    /// The command that rotates this key's family.
    pub fn rotate_command(&self) -> String {
        match (self.tier, &self.tenant) {
            (Tier::Dek, Some(t)) => format!("ecm-hsm rotate dek --tenant {t}"),
            (tier, _) => format!("ecm-hsm rotate {}", tier_name(tier)),
        }
    }
}

pub fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Master => "master",
        Tier::Kek => "kek",
        Tier::Dek => "dek",
    }
}

/// `--slot N` if given (it must hold a token), else the first initialized token.
pub fn choose_slot(module: &Backend, wanted: Option<u64>) -> Outcome<(CK_SLOT_ID, String)> {
    let dir = token_dir(module);
    let slots = module.slot_list().map_err(|e| Failure(explain(&e)))?;
    if let Some(slot) = wanted {
        let slot = slot as CK_SLOT_ID;
        if !slots.contains(&slot) {
            return Err(Failure(format!("there is no slot {slot} in {dir}")));
        }
        return match slot_state(module, slot)? {
            SlotState::Token(label) => Ok((slot, label)),
            SlotState::Free => Err(Failure(format!(
                "slot {slot} holds no token: initialize one with `ecm-hsm init --label NAME`"
            ))),
            SlotState::Unrecognized => {
                Err(Failure(format!("slot {slot} in {dir} is not a readable ecm-hsm token file")))
            }
        };
    }
    for slot in slots {
        if let SlotState::Token(label) = slot_state(module, slot)? {
            return Ok((slot, label));
        }
    }
    Err(Failure(format!("no initialized token in {dir}: create one with `ecm-hsm init --label NAME`")))
}
