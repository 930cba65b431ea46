//! One token: its store, the application's login state and token key, and the object cache.
//!
//! Every public method takes the token's lock once, refreshes the cache if another process
//! changed the store, and does its work. Token objects are cached in memory with their secret
//! values opened (while someone is logged in); a change by another process is seen through
//! the store's data version and triggers a reload, so processes sharing a token see each
//! other's objects. Writes go to the store first, in one transaction, and reach the cache
//! only once committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};
use zeroize::Zeroizing;

use super::handles::{HandleTable, ObjectRef};
use super::object_cache::ObjectCache;
use super::state_guard::StateGuard;
use crate::config::Config;
use crate::mechanism::prepared::PreparedKeys;
use crate::mechanism::{pin_kdf, rng, seal};
use crate::object::Object;
use crate::policy::{Decision, LoginState, Operation, Policy, SessionView};
use crate::session::table::NumberMap;
use crate::store::{PrincipalRecord, SqliteStore, StoreWriter, TokenRecord, TokenStore, WrappedTokenKey};
use crate::{Error, Result};

pub const MIN_PIN_LEN: usize = 4;
/// How stale the object cache may be when a key is looked up for a cryptographic operation.
pub const KEY_USE_STALENESS: Duration = Duration::from_millis(2);
pub const MAX_PIN_LEN: usize = 255;

pub type TokenKey = Zeroizing<[u8; seal::KEY_LEN]>;

pub struct Token {
    pub slot_id: CK_SLOT_ID,
    pub(super) path: PathBuf,
    pub(super) config: Arc<Config>,
    pub(super) handles: Arc<RwLock<HandleTable>>,
    pub(super) state: Mutex<TokenState>,
    /// Bumped by every change to `state` (see `state_guard.rs`).
    pub(super) version: std::sync::atomic::AtomicU64,
    /// The token's audit file, opened at its first record (see `audit.rs`).
    pub(super) audit_log: std::sync::OnceLock<crate::audit::AuditLog>,
}

pub(super) struct TokenState {
    /// `None` for the free slot's uninitialized token.
    pub store: Option<Box<dyn TokenStore>>,
    /// Why the file could not be used, if it could not.
    pub unrecognized: Option<String>,
    pub record: Option<TokenRecord>,
    pub login: LoginState,
    /// The named principal logged in, if the user logged in as one.
    pub principal: Option<std::sync::Arc<str>>,
    /// The key-permission policy stored in the token, and its version (0: none).
    pub policy: Option<Arc<Policy>>,
    pub policy_version: u64,
    pub token_key: Option<TokenKey>,
    pub objects: ObjectCache,
    /// Whether `objects` reflects the store, and whether secrets were opened when it was read.
    pub loaded: Option<bool>,
    /// When the store was last asked whether another process changed it.
    pub checked_at: Option<std::time::Instant>,
    pub session_objects: NumberMap<u64, SessionObject>,
    pub next_session_object: u64,
    /// Values of KEKs and DEKs unwrapped through their parents for recent use: bounded, and
    /// emptied with the login (see `hierarchy_keys.rs`).
    pub unwrapped: PreparedKeys<Zeroizing<Vec<u8>>>,
}

pub(super) struct SessionObject {
    pub owner: CK_SESSION_HANDLE,
    pub object: Arc<Object>,
}

/// What `C_GetTokenInfo` reports, before marshalling.
pub struct TokenInfo {
    pub label: [u8; 32],
    pub serial: String,
    pub flags: CK_FLAGS,
}

/// Which PIN an operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    SecurityOfficer,
    User,
}

/// Whose PIN a check or a change concerns: the SO, the user, or a named principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PinOwner<'a> {
    SecurityOfficer,
    User,
    Principal(&'a str),
}

impl PinOwner<'_> {
    /// The associated data of the token key sealed under this owner's PIN, so that one
    /// owner's wrapped key cannot be passed off as another's.
    fn context(self) -> Vec<u8> {
        match self {
            PinOwner::SecurityOfficer => b"ecm-hsm token key/so".to_vec(),
            PinOwner::User => b"ecm-hsm token key/user".to_vec(),
            PinOwner::Principal(name) => {
                [b"ecm-hsm token key/principal/".as_slice(), name.as_bytes()].concat()
            }
        }
    }

    /// The wrapped token key and the failure count, as stored now.
    fn current(self, store: &mut dyn TokenStore) -> Result<(WrappedTokenKey, u32)> {
        match self {
            PinOwner::SecurityOfficer => store.record().map(|r| (r.so_pin, r.so_failures)),
            PinOwner::User => {
                let r = store.record()?;
                Ok((r.user_pin.ok_or(Error::UserPinNotInitialized)?, r.user_failures))
            }
            PinOwner::Principal(name) => {
                let p =
                    store.principals()?.into_iter().find(|p| p.name == name).ok_or(Error::PinIncorrect)?;
                Ok((p.pin, p.failures))
            }
        }
    }

    fn failures_in(self, w: &mut dyn StoreWriter) -> Result<u32> {
        match self {
            PinOwner::SecurityOfficer => w.record().map(|r| r.so_failures),
            PinOwner::User => w.record().map(|r| r.user_failures),
            PinOwner::Principal(name) => w.principal(name)?.map(|p| p.failures).ok_or(Error::PinIncorrect),
        }
    }

    fn save_failures(self, w: &mut dyn StoreWriter, failures: u32) -> Result<()> {
        match self {
            PinOwner::SecurityOfficer | PinOwner::User => {
                let mut r = w.record()?;
                if self == PinOwner::SecurityOfficer {
                    r.so_failures = failures;
                } else {
                    r.user_failures = failures;
                }
                w.save_record(&r)
            }
            PinOwner::Principal(name) => {
                let mut p = w.principal(name)?.ok_or(Error::PinIncorrect)?;
                p.failures = failures;
                w.save_principal(&p)
            }
        }
    }
}

impl Token {
    pub(super) fn open(
        slot_id: CK_SLOT_ID,
        path: PathBuf,
        config: Arc<Config>,
        handles: Arc<RwLock<HandleTable>>,
    ) -> Token {
        let mut state = TokenState::empty();
        if path.exists() {
            match SqliteStore::open(&path, busy_timeout(&config)).and_then(|mut s| {
                let record = s.record()?;
                Ok((s, record))
            }) {
                Ok((store, record)) => {
                    state.store = Some(Box::new(store));
                    state.record = Some(record);
                }
                Err(e) => {
                    crate::error::log_fault(&format!("token file {}", path.display()), &e);
                    state.unrecognized = Some(e.to_string());
                }
            }
        }
        Token {
            slot_id,
            path,
            config,
            handles,
            state: Mutex::new(state),
            version: std::sync::atomic::AtomicU64::new(0),
            audit_log: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn lock(&self) -> StateGuard<'_> {
        StateGuard::new(self, self.state.lock())
    }

    pub fn is_initialized(&self) -> bool {
        self.lock().store.is_some()
    }

    /// The free slot's token: no file yet.
    pub fn is_free(&self) -> bool {
        let state = self.lock();
        state.store.is_none() && state.unrecognized.is_none()
    }

    /// The guard of an initialized token, refreshed against the store, with every object's
    /// rows loaded (see `object_cache.rs`): for whatever looks at all objects.
    pub(super) fn ready(&self) -> Result<StateGuard<'_>> {
        let mut state = self.ready_lazy()?;
        if !state.objects.is_complete() {
            self.complete(&mut state)?;
        }
        Ok(state)
    }

    /// As [`Token::ready`], without loading objects that are not loaded yet: for the calls
    /// that reach objects only by handle (always loaded) or by label (loaded as found).
    pub(super) fn ready_lazy(&self) -> Result<StateGuard<'_>> {
        let mut state = self.lock();
        if state.unrecognized.is_some() || state.store.is_none() {
            return Err(Error::TokenNotRecognized);
        }
        self.refresh_counted(&mut state)?;
        Ok(state)
    }

    /// As [`Token::ready`], for the lookup of a key at a cryptographic `*Init`: the store is
    /// asked about other processes' changes at most every `KEY_USE_STALENESS`, since that
    /// check (an SQLite statement under the token's lock) would otherwise cost more than an
    /// AES-GCM encryption and serialize threads. A key another process destroyed may so be
    /// used for up to that long; searches, attribute reads and every change always check.
    pub(super) fn ready_for_use(&self) -> Result<StateGuard<'_>> {
        let mut state = self.lock();
        if state.unrecognized.is_some() || state.store.is_none() {
            return Err(Error::TokenNotRecognized);
        }
        let fresh = state.checked_at.is_some_and(|t| t.elapsed() < KEY_USE_STALENESS)
            && state.loaded == Some(state.token_key.is_some());
        if !fresh {
            self.refresh_counted(&mut state)?;
        }
        Ok(state)
    }

    /// The view of a session of this token.
    pub fn view(&self, read_write: bool) -> SessionView {
        self.lock().view(read_write)
    }

    pub fn login_state(&self) -> LoginState {
        self.lock().login
    }

    pub fn info(&self) -> Result<TokenInfo> {
        let mut state = self.lock();
        if state.unrecognized.is_some() {
            return Err(Error::TokenNotRecognized);
        }
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_RESTORE_KEY_NOT_NEEDED;
        if state.store.is_none() {
            return Ok(TokenInfo { label: [b' '; 32], serial: String::new(), flags });
        }
        // Counters may have moved in another process: read the record afresh.
        let record =
            state.store.as_mut().map(|s| s.record()).transpose()?.ok_or(Error::Internal("no store"))?;
        state.record = Some(record.clone());
        let max = self.config.max_pin_failures;
        flags |= CKF_TOKEN_INITIALIZED;
        if record.user_pin.is_some() {
            flags |= CKF_USER_PIN_INITIALIZED;
        }
        flags |= pin_flags(
            record.user_failures,
            max,
            [CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED],
        );
        flags |= pin_flags(
            record.so_failures,
            max,
            [CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED],
        );
        Ok(TokenInfo { label: record.label, serial: record.serial, flags })
    }

    /// `C_InitToken`: creates the token on a free slot, or wipes and re-keys an existing one
    /// after checking its SO PIN. `sessions_open` is checked by the caller's count. Returns
    /// the new token's audit key, so that the record of this call, and the process's later
    /// ones, are authenticated under the token as it now is (see `audit.rs`).
    pub fn init_token(
        &self,
        so_pin: &[u8],
        label: [u8; 32],
        sessions_open: bool,
    ) -> Result<crate::audit::AuditKey> {
        check_pin_len(so_pin).map_err(|_| Error::PinIncorrect)?;
        let mut state = self.lock();
        if state.unrecognized.is_some() {
            return Err(Error::TokenNotRecognized);
        }
        if sessions_open {
            return Err(Error::SessionExists);
        }
        let token_key: TokenKey = Zeroizing::new(rng::bytes::<{ seal::KEY_LEN }>()?);
        let audit_key = crate::audit::derive_key(token_key.as_ref());
        let so_wrap = self.wrap_token_key(&token_key, so_pin, PinRole::SecurityOfficer)?;
        if state.store.is_none() {
            let record = TokenRecord {
                slot_id: self.slot_id,
                label,
                serial: new_serial()?,
                epoch: 1,
                so_pin: so_wrap,
                user_pin: None,
                so_failures: 0,
                user_failures: 0,
            };
            let store = create_token_file(&self.path, &record, busy_timeout(&self.config))?;
            state.store = Some(Box::new(store));
            state.record = Some(record);
            return Ok(audit_key);
        }
        self.refresh(&mut state)?;
        self.check_pin(&mut state, PinRole::SecurityOfficer, so_pin)?;
        let store = state.store.as_mut().ok_or(Error::Internal("no store"))?;
        let mut new_record = None;
        store.write(&mut |w| {
            let mut r = w.record()?;
            w.delete_all_objects()?;
            w.delete_all_principals()?;
            w.delete_policy()?;
            w.delete_all_approvals()?;
            r.label = label;
            r.epoch += 1;
            r.so_pin = so_wrap.clone();
            r.user_pin = None;
            r.so_failures = 0;
            r.user_failures = 0;
            w.save_record(&r)?;
            new_record = Some(r);
            Ok(())
        })?;
        state.record = new_record;
        state.forget_login();
        state.objects.clear();
        state.loaded = None;
        self.handles.write().retain_slot(self.slot_id, |r| matches!(r, ObjectRef::Session { .. }));
        Ok(audit_key)
    }

    /// `C_Login` for the SO or the user. The caller has checked the session rules that need
    /// the session table (`CKR_SESSION_READ_ONLY_EXISTS`).
    pub fn login(&self, role: PinRole, pin: &[u8]) -> Result<()> {
        let mut state = self.ready_lazy()?;
        match (state.login, role) {
            (LoginState::User, PinRole::User) | (LoginState::SecurityOfficer, PinRole::SecurityOfficer) => {
                return Err(Error::UserAlreadyLoggedIn);
            }
            (LoginState::Public, _) => {}
            _ => return Err(Error::UserAnotherAlreadyLoggedIn),
        }
        let key = self.check_pin(&mut state, role, pin)?;
        state.token_key = Some(key);
        state.login = match role {
            PinRole::SecurityOfficer => LoginState::SecurityOfficer,
            PinRole::User => LoginState::User,
        };
        // Secret values sealed in the store are opened as objects are read again.
        self.reopen_objects(&mut state);
        Ok(())
    }

    /// The login of a named principal (`C_Login(CKU_USER, "name:pin")` or `C_LoginUser`):
    /// the user's functions, under the principal's own PIN and failure count.
    pub fn login_principal(&self, name: &str, pin: &[u8]) -> Result<()> {
        let mut state = self.ready_lazy()?;
        match state.login {
            LoginState::Public => {}
            LoginState::User => return Err(Error::UserAlreadyLoggedIn),
            LoginState::SecurityOfficer => return Err(Error::UserAnotherAlreadyLoggedIn),
        }
        let key = self.check_owner_pin(&mut state, PinOwner::Principal(name), pin)?;
        state.token_key = Some(key);
        state.login = LoginState::User;
        state.principal = Some(name.into());
        self.reopen_objects(&mut state);
        Ok(())
    }

    /// Whether the token has a principal of this name.
    pub fn has_principal(&self, name: &str) -> Result<bool> {
        let mut state = self.ready_lazy()?;
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        Ok(store.principals()?.iter().any(|p| p.name == name))
    }

    /// The principals' names and failure counts (the SO's view).
    pub fn principals(&self, view: SessionView) -> Result<Vec<(String, u32)>> {
        let mut state = self.ready_lazy()?;
        if view.login != LoginState::SecurityOfficer {
            return Err(Error::UserNotLoggedIn);
        }
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        Ok(store.principals()?.into_iter().map(|p| (p.name, p.failures)).collect())
    }

    /// Adds a principal (`replace` false) or sets a new PIN for one, which also unlocks it
    /// (`replace` true). Only the SO, in a read/write session.
    pub fn set_principal(&self, view: SessionView, name: &str, pin: &[u8], replace: bool) -> Result<()> {
        let mut state = self.ready_lazy()?;
        if view.login != LoginState::SecurityOfficer {
            return Err(Error::UserNotLoggedIn);
        }
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        check_principal_name(name)?;
        check_pin_len(pin)?;
        let key = state.token_key.clone().ok_or(Error::Internal("SO without token key"))?;
        let wrapped = self.wrap_token_key_for(&key, pin, PinOwner::Principal(name))?;
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        store.write(&mut |w| {
            if w.principal(name)?.is_some() != replace {
                // Adding one that exists, or resetting one that does not.
                return Err(Error::ArgumentsBad);
            }
            w.save_principal(&PrincipalRecord { name: name.to_string(), pin: wrapped.clone(), failures: 0 })
        })
    }

    /// Validates and stores a new policy document (JSON or TOML) as the next version; a bad
    /// document changes nothing. Only the SO, in a read/write session. When the policy in
    /// force asks approvals for its change (`policy_change_approvals`), as many approvals
    /// recorded ahead for this document are used up in the same transaction, else the
    /// change is `CKR_ACTION_PROHIBITED`; returns the version and the approvals used.
    pub fn apply_policy(
        &self,
        view: SessionView,
        text: &str,
    ) -> Result<(u64, Vec<crate::store::ApprovalRecord>)> {
        let mut state = self.ready_lazy()?;
        if view.login != LoginState::SecurityOfficer {
            return Err(Error::UserNotLoggedIn);
        }
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        let policy = Policy::parse(text)?;
        let document = policy.to_json();
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut version = 0;
        let mut consumed = Vec::new();
        let now = crate::audit::record::now_ms();
        store.write(&mut |w| {
            let current = w.policy()?;
            version = current.as_ref().map_or(0, |(v, _)| *v) + 1;
            // The policy in force is read inside the transaction, so that no other process
            // can change it between the check and the change. One that no longer parses
            // grants nothing, and asks no approvals for its replacement.
            let gate = current
                .and_then(|(_, stored)| Policy::parse(&stored).ok())
                .and_then(|p| super::approvals::Gate::policy_change(p, &document));
            consumed = super::approvals::consume(gate.as_ref(), w, now)?;
            w.save_policy(version, &document)
        })?;
        state.policy = Some(Arc::new(policy));
        state.policy_version = version;
        Ok((version, consumed))
    }

    /// The stored policy: its version and canonical document, for any logged-in session.
    pub fn policy(&self) -> Result<Option<(u64, String)>> {
        let state = self.ready_lazy()?;
        if state.login == LoginState::Public {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(state.policy.as_ref().map(|p| (state.policy_version, p.to_json())))
    }

    /// The token's audit key (see `crate::audit`), for any logged-in session: derived from
    /// the token key, which only a login holds.
    pub fn audit_key(&self) -> Result<crate::audit::AuditKey> {
        let state = self.ready_lazy()?;
        match (&state.login, &state.token_key) {
            (LoginState::Public, _) | (_, None) => Err(Error::UserNotLoggedIn),
            (_, Some(key)) => Ok(crate::audit::derive_key(key.as_ref())),
        }
    }

    /// Removes a principal. Only the SO, in a read/write session.
    pub fn remove_principal(&self, view: SessionView, name: &str) -> Result<()> {
        let mut state = self.ready_lazy()?;
        if view.login != LoginState::SecurityOfficer {
            return Err(Error::UserNotLoggedIn);
        }
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut existed = false;
        let now = crate::audit::record::now_ms();
        store.write(&mut |w| {
            existed = w.delete_principal(name)?;
            // Its pending approvals, given or received, go with it: a principal added
            // again under the name is someone new.
            w.revoke_approvals(crate::store::ApprovalsOf::Principal(name), now)?;
            Ok(())
        })?;
        if existed { Ok(()) } else { Err(Error::ArgumentsBad) }
    }

    /// `C_Logout`: back to public.
    pub fn logout(&self) -> Result<()> {
        let mut state = self.lock();
        if state.login == LoginState::Public {
            return Err(Error::UserNotLoggedIn);
        }
        self.end_login(&mut state);
        Ok(())
    }

    /// Ends the application's login: private session objects are destroyed, and handles to
    /// private token objects die with it (a later login finds them under new handles).
    fn end_login(&self, state: &mut TokenState) {
        state.forget_login();
        state.session_objects.retain(|_, o| !o.object.is_private());
        let (objects, sessions) = (&state.objects, &state.session_objects);
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => objects.get(&id).is_some_and(|o| !o.is_private()),
            ObjectRef::Session { id, .. } => sessions.contains_key(&id),
        });
    }

    /// `C_InitPIN`: the SO sets the user PIN, which also unlocks it.
    pub fn init_pin(&self, view: SessionView, pin: &[u8]) -> Result<()> {
        let mut state = self.ready_lazy()?;
        if view.login != LoginState::SecurityOfficer {
            return Err(Error::UserNotLoggedIn);
        }
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        check_pin_len(pin)?;
        let key = state.token_key.clone().ok_or(Error::Internal("SO without token key"))?;
        let wrapped = self.wrap_token_key(&key, pin, PinRole::User)?;
        self.update_record(&mut state, |r| {
            r.user_pin = Some(wrapped.clone());
            r.user_failures = 0;
        })
    }

    /// `C_SetPIN`: the SO's PIN if the SO is logged in, the user's otherwise.
    pub fn set_pin(&self, view: SessionView, old: &[u8], new: &[u8]) -> Result<()> {
        let mut state = self.ready_lazy()?;
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        let role = match view.login {
            LoginState::SecurityOfficer => PinRole::SecurityOfficer,
            _ => PinRole::User,
        };
        check_pin_len(new)?;
        let key = self.check_pin(&mut state, role, old)?;
        let wrapped = self.wrap_token_key(&key, new, role)?;
        self.update_record(&mut state, |r| match role {
            PinRole::SecurityOfficer => r.so_pin = wrapped.clone(),
            PinRole::User => r.user_pin = Some(wrapped.clone()),
        })
    }

    /// Checks `pin` for `role` against the store, counting failures persistently (in one
    /// transaction, so concurrent processes cannot lose a count), and returns the token key.
    fn check_pin(&self, state: &mut TokenState, role: PinRole, pin: &[u8]) -> Result<TokenKey> {
        let owner = match role {
            PinRole::SecurityOfficer => PinOwner::SecurityOfficer,
            PinRole::User => PinOwner::User,
        };
        self.check_owner_pin(state, owner, pin)
    }

    /// As `check_pin`, for the SO, the user or a named principal.
    pub(super) fn check_owner_pin(
        &self,
        state: &mut TokenState,
        owner: PinOwner<'_>,
        pin: &[u8],
    ) -> Result<TokenKey> {
        let max = self.config.max_pin_failures;
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let (wrapped, failures) = owner.current(store.as_mut())?;
        if failures >= max {
            return Err(Error::PinLocked);
        }
        // The KDF runs outside the transaction, so other processes are not held up by it.
        let opened = pin_kdf::derive(pin, &wrapped.salt, wrapped.iterations)
            .and_then(|k| seal::open(&k, &owner.context(), &wrapped.sealed_key));
        let mut outcome = Err(Error::PinIncorrect);
        let mut locked_now = false;
        store.write(&mut |w| {
            locked_now = false;
            let count = owner.failures_in(w)?;
            if count >= max {
                outcome = Err(Error::PinLocked);
                return Ok(());
            }
            let new_count = match &opened {
                Ok(_) => 0,
                Err(_) => count + 1,
            };
            outcome = match (&opened, new_count >= max) {
                (Ok(_), _) => Ok(()),
                (Err(_), true) => Err(Error::PinLocked),
                (Err(_), false) => Err(Error::PinIncorrect),
            };
            locked_now = opened.is_err() && new_count >= max;
            if new_count != count { owner.save_failures(w, new_count) } else { Ok(()) }
        })?;
        if locked_now {
            // This very failure locked the PIN, and the count is stored (an attempt on a
            // PIN locked before is refused above without counting): recorded apart.
            note_pin_locked(owner);
        }
        outcome?;
        let opened = opened.map_err(|_| Error::PinIncorrect)?;
        let key: [u8; seal::KEY_LEN] =
            opened.as_slice().try_into().map_err(|_| Error::StoreCorrupt("token key length".into()))?;
        Ok(Zeroizing::new(key))
    }

    fn wrap_token_key(&self, key: &TokenKey, pin: &[u8], role: PinRole) -> Result<WrappedTokenKey> {
        let owner = match role {
            PinRole::SecurityOfficer => PinOwner::SecurityOfficer,
            PinRole::User => PinOwner::User,
        };
        self.wrap_token_key_for(key, pin, owner)
    }

    fn wrap_token_key_for(&self, key: &TokenKey, pin: &[u8], owner: PinOwner<'_>) -> Result<WrappedTokenKey> {
        let salt = rng::bytes::<{ pin_kdf::SALT_LEN }>()?.to_vec();
        let iterations = self.config.pin_kdf_iterations;
        let pin_key = pin_kdf::derive(pin, &salt, iterations)?;
        let sealed_key = seal::seal(&pin_key, &owner.context(), key.as_slice())?;
        Ok(WrappedTokenKey { salt, iterations, sealed_key })
    }

    fn update_record(&self, state: &mut TokenState, mut change: impl FnMut(&mut TokenRecord)) -> Result<()> {
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut saved = None;
        store.write(&mut |w| {
            let mut r = w.record()?;
            change(&mut r);
            w.save_record(&r)?;
            saved = Some(r);
            Ok(())
        })?;
        state.record = saved;
        Ok(())
    }

    /// Reloads the object cache if the store changed under us, or if the login changed what
    /// can be opened. A re-initialization by another process logs this one out. Returns
    /// whether anything changed (beyond the time of the check).
    pub(super) fn refresh(&self, state: &mut TokenState) -> Result<bool> {
        let Some(store) = state.store.as_mut() else { return Ok(false) };
        let changed = store.changed_elsewhere()?;
        state.checked_at = Some(std::time::Instant::now());
        let with_key = state.token_key.is_some();
        if !changed && state.loaded == Some(with_key) {
            return Ok(false);
        }
        let record = store.record()?;
        if state.record.as_ref().is_some_and(|r| r.epoch != record.epoch) {
            self.end_login(state);
        }
        state.record = Some(record);
        let store = state.store.as_mut().ok_or(Error::Internal("no store"))?;
        let (policy, policy_version) = match store.policy()? {
            Some((version, document)) => match Policy::parse(&document) {
                Ok(p) => (Some(Arc::new(p)), version),
                Err(e) => {
                    // A stored policy that no longer parses grants principals nothing.
                    crate::error::log_fault("stored policy", &e);
                    (None, version)
                }
            },
            None => (None, 0),
        };
        state.policy = policy;
        state.policy_version = policy_version;
        // Only ids, labels and CKA_IDs: rows are read as objects are used (`object_cache.rs`).
        let names = state.store.as_mut().ok_or(Error::Internal("no store"))?.object_names()?;
        state.objects = ObjectCache::from_names(names);
        state.loaded = Some(state.token_key.is_some());
        // Handles to objects that still exist stay valid, and their objects are read now:
        // `visible`, and the audit context, find an object by handle without the store.
        let objects = &state.objects;
        let mut held = Vec::new();
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => {
                let exists = objects.contains_key(&id);
                if exists {
                    held.push(id);
                }
                exists
            }
            ObjectRef::Session { .. } => true,
        });
        self.load_ids(state, &held)?;
        Ok(true)
    }

    /// After a login, which changes what can be opened: the objects read so far are read
    /// again (with the token key) as they are used, those with handles now. Their ids and
    /// labels stay, since the store was checked as the login began. If the read fails, the
    /// next call reloads from the store.
    fn reopen_objects(&self, state: &mut TokenState) {
        state.objects.unload_all();
        state.loaded = Some(state.token_key.is_some());
        let mut held = Vec::new();
        self.handles.write().retain_slot(self.slot_id, |r| {
            if let ObjectRef::Token { id, .. } = r {
                held.push(id);
            }
            true
        });
        if let Err(e) = self.load_ids(state, &held) {
            crate::error::log_fault("objects after login", &e);
            state.loaded = None;
        }
    }

    /// Reads the rows of the objects `ids` names that are not loaded yet, opening their
    /// secrets if someone is logged in. An object gone from the store in the meantime (another
    /// process destroyed it) leaves the cache; one that does not open is logged and left out,
    /// as a full load does. A key of the envelope hierarchy makes the whole cache load: its
    /// value is checked against its parent's, and `hierarchy_value` finds parents among
    /// loaded objects.
    pub(super) fn load_ids(&self, state: &mut TokenState, ids: &[i64]) -> Result<()> {
        let wanted: Vec<i64> = ids.iter().copied().filter(|id| state.objects.is_unloaded(id)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let stored = state.store.as_mut().ok_or(Error::Internal("no store"))?.load_objects_by_id(&wanted)?;
        let key = state.token_key.clone();
        let mut opened = Vec::with_capacity(stored.len());
        for s in stored {
            let id = s.id;
            match super::objects::object_from_store(s, key.as_ref()) {
                Ok(o) if crate::hierarchy::tier_of(&o).is_some() => return self.complete(state),
                Ok(o) => opened.push((id, o)),
                Err(e) => crate::error::log_fault(&format!("object {id} skipped"), &e),
            }
        }
        let all_found = opened.len() == wanted.len();
        for id in &wanted {
            state.objects.remove(id);
        }
        for (id, o) in opened {
            state.objects.insert(id, Arc::new(o));
        }
        if !all_found {
            // Handles to what is gone go too (walking the handle table only then: it grows
            // with every object a session has found).
            let objects = &state.objects;
            self.handles.write().retain_slot(self.slot_id, |r| match r {
                ObjectRef::Token { id, .. } => objects.contains_key(&id),
                ObjectRef::Session { .. } => true,
            });
        }
        Ok(())
    }

    /// Loads every object's rows (with the key of the current login, if any): what a search
    /// without a label, the hierarchy rules and approval listings need.
    pub(super) fn complete(&self, state: &mut TokenState) -> Result<()> {
        if state.objects.is_complete() {
            return Ok(());
        }
        let stored = state.store.as_mut().ok_or(Error::Internal("no store"))?.load_objects()?;
        let key = state.token_key.clone();
        let mut loaded = HashMap::with_capacity(stored.len());
        for s in stored {
            let id = s.id;
            match super::objects::object_from_store(s, key.as_ref()) {
                Ok(o) => {
                    loaded.insert(id, o);
                }
                Err(e) => crate::error::log_fault(&format!("object {id} skipped"), &e),
            }
        }
        // Keys of the hierarchy below the master are stored wrapped by their parent.
        super::hierarchy_keys::open_wrapped_values(&mut loaded);
        state.objects = ObjectCache::from_loaded(loaded);
        let objects = &state.objects;
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => objects.contains_key(&id),
            ObjectRef::Session { .. } => true,
        });
        Ok(())
    }
}

impl TokenState {
    fn empty() -> TokenState {
        TokenState {
            store: None,
            unrecognized: None,
            record: None,
            login: LoginState::Public,
            principal: None,
            policy: None,
            policy_version: 0,
            token_key: None,
            objects: ObjectCache::default(),
            loaded: None,
            checked_at: None,
            session_objects: NumberMap::default(),
            next_session_object: 0,
            unwrapped: PreparedKeys::new(),
        }
    }

    pub fn view(&self, read_write: bool) -> SessionView {
        SessionView { login: self.login, read_write, principal: self.principal.is_some() }
    }

    /// What the policy says about the logged-in user (or principal) doing `op` with the key
    /// labelled `label`. The SO and, unless the policy names it, the token's user are not
    /// restricted; a principal without a rule may do nothing (default deny).
    pub fn decide(&self, label: &[u8], op: Operation) -> Decision {
        if self.login == LoginState::SecurityOfficer {
            return Decision::Allow;
        }
        let who = self.principal.as_deref().unwrap_or("user");
        match &self.policy {
            Some(p) => p.decide(who, label, op),
            None => crate::policy::document::decide_without_policy(who),
        }
    }

    /// Whether `object` exists for this login: any object but a key, or a key the policy
    /// lets it do anything with.
    pub fn sees(&self, object: &Object) -> bool {
        if !object.profile().is_key() || self.login == LoginState::SecurityOfficer {
            return true;
        }
        let who = self.principal.as_deref().unwrap_or("user");
        let label = object.get(cryptoki_sys::CKA_LABEL).unwrap_or_default();
        match &self.policy {
            Some(p) => p.sees(who, label),
            None => crate::policy::document::decide_without_policy(who) != Decision::Deny,
        }
    }

    /// Fails with `refusal` unless the policy allows `op` on the key `object` outright: a
    /// rule that requires approval refuses here. The management operations that take
    /// approvals recorded ahead (destroy, modify, rotate) use `TokenState::gate` instead.
    pub fn permits(&self, object: &Object, op: Operation, refusal: Error) -> Result<()> {
        if !object.profile().is_key() {
            return Ok(());
        }
        match self.decide(object.get(cryptoki_sys::CKA_LABEL).unwrap_or_default(), op) {
            Decision::Allow => Ok(()),
            Decision::Deny | Decision::NeedsApproval => Err(refusal),
        }
    }

    fn forget_login(&mut self) {
        self.login = LoginState::Public;
        self.principal = None;
        self.token_key = None;
        self.unwrapped.clear();
        // Cached secrets go with the key (zeroized as the objects drop).
        self.loaded = None;
    }
}

thread_local! {
    /// Whose PIN a PIN check of this thread locked, for the audit record of the call that
    /// made the check (`audit.rs` takes it right after the call). The check returns only
    /// `CKR_PIN_LOCKED`, the same as for a PIN that was locked already; a thread-local
    /// carries the difference to the recording wrapper without threading it through every
    /// login path. The wrapper clears it before the call, so a value is never stale.
    static PIN_LOCKED_HERE: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

pub(super) fn note_pin_locked(owner: PinOwner<'_>) {
    let name = match owner {
        PinOwner::SecurityOfficer => "so".to_string(),
        PinOwner::User => "user".to_string(),
        PinOwner::Principal(name) => name.to_string(),
    };
    PIN_LOCKED_HERE.with(|c| c.set(Some(name)));
}

/// Whose PIN (`so`, `user` or a principal's name) a PIN check of this thread locked since
/// the last call; clears it.
pub(super) fn take_pin_locked() -> Option<String> {
    PIN_LOCKED_HERE.with(std::cell::Cell::take)
}

fn pin_flags(failures: u32, max: u32, [low, final_try, locked]: [CK_FLAGS; 3]) -> CK_FLAGS {
    if failures >= max {
        locked
    } else if failures + 1 == max {
        final_try | low
    } else if failures > 0 {
        low
    } else {
        0
    }
}

/// Principal names: 1 to 64 of `[A-Za-z0-9._-]`; `user` and `so` are taken by the token's
/// own roles.
pub fn check_principal_name(name: &str) -> Result<()> {
    let well_formed = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !well_formed || name == "user" || name == "so" {
        return Err(Error::ArgumentsBad);
    }
    Ok(())
}

pub fn check_pin_len(pin: &[u8]) -> Result<()> {
    if (MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) { Ok(()) } else { Err(Error::PinLenRange) }
}

fn busy_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.busy_timeout_ms)
}

fn new_serial() -> Result<String> {
    Ok(rng::bytes::<8>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the token file so that no other process ever sees it half made: it is built
/// under a temporary name and linked into place, which fails if another process made a token
/// in this slot first.
fn create_token_file(path: &std::path::Path, record: &TokenRecord, busy: Duration) -> Result<SqliteStore> {
    let dir = path.parent().ok_or(Error::Internal("token path without directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", record.serial, std::process::id()));
    let built = SqliteStore::create(&tmp, record, busy);
    let linked = built.and_then(|store| {
        drop(store);
        std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::Device("another process initialized this slot".into())
            }
            _ => Error::from(e),
        })
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    SqliteStore::open(path, busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_flags_follow_the_count() {
        let f = |n| pin_flags(n, 3, [1, 2, 4]);
        assert_eq!([f(0), f(1), f(2), f(3), f(9)], [0, 1, 3, 4, 4]);
    }

    #[test]
    fn pin_lengths() {
        assert_eq!(check_pin_len(b"123"), Err(Error::PinLenRange));
        assert!(check_pin_len(b"1234").is_ok());
        assert_eq!(check_pin_len(&[b'1'; 256]), Err(Error::PinLenRange));
    }
}
