//! The token layer: one token, below the sessions that use it and above the rules
//! (`crate::policy`, `crate::hierarchy`) and the store. It knows nothing of sessions beyond
//! the handles and read/write flags callers pass in.
//!
//! A [`Token`] holds its store, the application's login state and token key, and the object
//! cache. Every public method takes the token's lock once, refreshes the cache if another
//! process changed the store, and does its work. Token objects are cached in memory with
//! their secret values opened (while someone is logged in); a change by another process is
//! seen through the store's data version and triggers a reload, so processes sharing a token
//! see each other's objects. Writes go to the store first, in one transaction, and reach the
//! cache only once committed.
//!
//! By job: the state and its guard (`mod.rs`, `state_guard.rs`), the object cache and its
//! loading (`object_cache.rs`, `loading.rs`), `C_InitToken` (`init.rs`), PIN authentication
//! (`pin.rs`), principals and the policy (`principals.rs`), objects (`objects.rs`), keys
//! looked up for use (`key_use.rs`), keys of the envelope hierarchy (`hierarchy_keys.rs`),
//! approvals and the gate of management operations (`approvals.rs`), object handles
//! (`handles.rs`), the token's audit trail (`audit.rs`), custody of the token key: under the
//! PINs or the key service's alone (`custody.rs`), and the check that keeps a login from
//! writing after another process re-keyed the token (`epoch.rs`).

mod approvals;
pub(crate) mod audit;
pub mod custody;
mod epoch;
pub mod handles;
mod hierarchy_keys;
mod init;
mod key_use;
mod loading;
pub mod number_map;
mod object_cache;
mod objects;
mod pin;
mod principals;
mod state_guard;

pub use approvals::{ApprovalRequest, ApprovalTarget};
pub use custody::{Custody, ServiceKey};
pub use key_use::{ContextPin, KeyForUse};
pub use pin::{MAX_PIN_LEN, MIN_PIN_LEN, PinRefused, PinResult, PinRole, check_pin_len, principal_login_of};
pub use principals::check_principal_name;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::mechanism::prepared::PreparedKeys;
use crate::mechanism::seal;
use crate::object::Object;
use crate::policy::{Decision, LoginState, Operation, Policy, SessionView};
use crate::store::{SqliteStore, TokenRecord, TokenStore};
use crate::{Error, Result};
use handles::HandleTable;
use number_map::NumberMap;
use object_cache::ObjectCache;
use pin::pin_flags;
use state_guard::StateGuard;

/// How stale the object cache may be when a key is looked up for a cryptographic operation.
pub const KEY_USE_STALENESS: Duration = Duration::from_millis(2);

/// Held in locked memory excluded from core dumps (`sys::secret_pool`), as long as a login.
pub type TokenKey = crate::sys::secret_pool::SecretArray<{ seal::KEY_LEN }>;

pub struct Token {
    pub slot_id: CK_SLOT_ID,
    pub(crate) path: PathBuf,
    pub(crate) config: Arc<Config>,
    pub(crate) handles: Arc<RwLock<HandleTable>>,
    pub(crate) state: Mutex<TokenState>,
    /// Bumped by every change to `state` (see `state_guard.rs`).
    pub(crate) version: std::sync::atomic::AtomicU64,
    /// The token's audit file, opened at its first record (see `audit.rs`).
    pub(crate) audit_log: std::sync::OnceLock<crate::audit::AuditLog>,
}

pub(crate) struct TokenState {
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
    /// The epoch of the token the login's `token_key` belongs to (`None`: no login). Every
    /// change made under the login checks it inside its transaction (`epoch.rs`).
    pub login_epoch: Option<u64>,
    pub objects: ObjectCache,
    /// Whether `objects` reflects the store, and whether secrets were opened when it was read.
    pub loaded: Option<bool>,
    /// When the store was last asked whether another process changed it.
    pub checked_at: Option<std::time::Instant>,
    pub session_objects: NumberMap<u64, SessionObject>,
    pub next_session_object: u64,
    /// Values of KEKs and DEKs unwrapped through their parents for recent use: bounded, and
    /// emptied with the login (see `hierarchy_keys.rs`); each in locked memory excluded from
    /// core dumps.
    pub unwrapped: PreparedKeys<crate::sys::secret::LockedBuffer>,
    /// The key service's key, once read (see `custody.rs`): kept for the process's life, not
    /// the login's.
    pub service_key: Option<Arc<custody::ServiceKey>>,
}

pub(crate) struct SessionObject {
    pub owner: CK_SESSION_HANDLE,
    pub object: Arc<Object>,
}

/// What `C_GetTokenInfo` reports, before marshalling.
pub struct TokenInfo {
    pub label: [u8; 32],
    pub serial: String,
    pub flags: CK_FLAGS,
}

impl Token {
    pub(crate) fn open(
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

    pub(crate) fn lock(&self) -> StateGuard<'_> {
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
    pub(crate) fn ready(&self) -> Result<StateGuard<'_>> {
        let mut state = self.ready_lazy()?;
        if !state.objects.is_complete() {
            self.complete(&mut state)?;
        }
        Ok(state)
    }

    /// The token's lock, when the token holds a recognized store (else
    /// `CKR_TOKEN_NOT_RECOGNIZED`); the callers bring its state up to date.
    fn lock_recognized(&self) -> Result<StateGuard<'_>> {
        let state = self.lock();
        if state.unrecognized.is_some() || state.store.is_none() {
            return Err(Error::TokenNotRecognized);
        }
        Ok(state)
    }

    /// As [`Token::ready`], without loading objects that are not loaded yet: for the calls
    /// that reach objects only by handle (always loaded) or by label (loaded as found).
    pub(crate) fn ready_lazy(&self) -> Result<StateGuard<'_>> {
        let mut state = self.lock_recognized()?;
        self.refresh_counted(&mut state)?;
        Ok(state)
    }

    /// As [`Token::ready`], for the lookup of a key at a cryptographic `*Init`: the store is
    /// asked about other processes' changes at most every `KEY_USE_STALENESS`, since that
    /// check (an SQLite statement under the token's lock) would otherwise cost more than an
    /// AES-GCM encryption and serialize threads. A key another process destroyed may so be
    /// used for up to that long; searches, attribute reads and every change always check.
    pub(crate) fn ready_for_use(&self) -> Result<StateGuard<'_>> {
        let mut state = self.lock_recognized()?;
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
            login_epoch: None,
            objects: ObjectCache::default(),
            loaded: None,
            checked_at: None,
            session_objects: NumberMap::default(),
            next_session_object: 0,
            unwrapped: PreparedKeys::new(),
            service_key: None,
        }
    }

    /// For tests: the state of `principal`'s login under the policy `policy` (JSON).
    #[cfg(test)]
    fn principal_login(principal: &str, policy: &str) -> TokenState {
        let mut state = TokenState::empty();
        state.login = LoginState::User;
        state.principal = Some(principal.into());
        state.policy = Some(Arc::new(Policy::parse(policy).unwrap()));
        state
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
        self.login_epoch = None;
        self.unwrapped.clear();
        // Cached secrets go with the key (zeroized as the objects drop).
        self.loaded = None;
    }
}

fn busy_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.busy_timeout_ms)
}
