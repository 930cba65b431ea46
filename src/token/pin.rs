//! PIN authentication: logins and logouts, PIN changes, and the persistent failure count
//! that locks a PIN.

use cryptoki_sys::CK_FLAGS;
use zeroize::Zeroizing;

use super::custody::ServiceKey;
use super::epoch::Written;
use super::handles::ObjectRef;
use super::principals::{refuse_guarded, so_writes};
use super::{Token, TokenKey, TokenState};
use crate::mechanism::{pin_kdf, rng, seal};
use crate::policy::{LoginState, SessionView};
use crate::store::{KeyCustody, StoreWriter, TokenStore, WrappedTokenKey};
use crate::{Error, Result};

pub const MIN_PIN_LEN: usize = 4;
pub const MAX_PIN_LEN: usize = 255;

/// Which PIN an operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    SecurityOfficer,
    User,
}

/// Whose PIN a check or a change concerns: the SO, the user, or a named principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinOwner<'a> {
    SecurityOfficer,
    User,
    Principal(&'a str),
}

impl From<PinRole> for PinOwner<'_> {
    fn from(role: PinRole) -> Self {
        match role {
            PinRole::SecurityOfficer => PinOwner::SecurityOfficer,
            PinRole::User => PinOwner::User,
        }
    }
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

    /// The associated data of this owner's PIN verifier in service custody.
    fn verifier_context(self) -> Vec<u8> {
        [b"ecm-hsm pin verifier/".as_slice(), &self.context()].concat()
    }

    /// Replaces this owner's PIN record, inside the transaction `w`.
    fn save_pin(self, w: &mut dyn StoreWriter, pin: &WrappedTokenKey) -> Result<()> {
        match self {
            PinOwner::SecurityOfficer | PinOwner::User => {
                let mut r = w.record()?;
                if self == PinOwner::SecurityOfficer {
                    r.so_pin = pin.clone();
                } else {
                    r.user_pin = Some(pin.clone());
                }
                w.save_record(&r)
            }
            PinOwner::Principal(name) => {
                let mut p = w.principal(name)?.ok_or(Error::PinIncorrect)?;
                p.pin = pin.clone();
                w.save_principal(&p)
            }
        }
    }

    /// The wrapped token key and the failure count, as stored now; `None` for a principal
    /// the token does not have.
    fn current(self, store: &mut dyn TokenStore) -> Result<Option<(WrappedTokenKey, u32)>> {
        match self {
            PinOwner::SecurityOfficer => store.record().map(|r| Some((r.so_pin, r.so_failures))),
            PinOwner::User => {
                let r = store.record()?;
                Ok(Some((r.user_pin.ok_or(Error::UserPinNotInitialized)?, r.user_failures)))
            }
            PinOwner::Principal(name) => {
                Ok(store.principals()?.into_iter().find(|p| p.name == name).map(|p| (p.pin, p.failures)))
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

    /// How the audit record names this owner.
    fn name(self) -> String {
        match self {
            PinOwner::SecurityOfficer => "so".to_string(),
            PinOwner::User => "user".to_string(),
            PinOwner::Principal(name) => name.to_string(),
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
    /// `C_Login` for the SO or the user. The caller has checked the session rules that need
    /// the session table (`CKR_SESSION_READ_ONLY_EXISTS`).
    pub fn login(&self, role: PinRole, pin: &[u8]) -> PinResult<()> {
        let mut state = self.ready_lazy()?;
        match (state.login, role) {
            (LoginState::User, PinRole::User) | (LoginState::SecurityOfficer, PinRole::SecurityOfficer) => {
                return Err(Error::UserAlreadyLoggedIn.into());
            }
            (LoginState::Public, _) => {}
            _ => return Err(Error::UserAnotherAlreadyLoggedIn.into()),
        }
        let key = self.check_pin(&mut state, role, pin)?;
        state.token_key = Some(key);
        state.login_epoch = state.record.as_ref().map(|r| r.epoch);
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
    pub fn login_principal(&self, name: &str, pin: &[u8]) -> PinResult<()> {
        let mut state = self.ready_lazy()?;
        match state.login {
            LoginState::Public => {}
            LoginState::User => return Err(Error::UserAlreadyLoggedIn.into()),
            LoginState::SecurityOfficer => return Err(Error::UserAnotherAlreadyLoggedIn.into()),
        }
        let key = self.check_owner_pin(&mut state, PinOwner::Principal(name), pin)?;
        state.token_key = Some(key);
        state.login_epoch = state.record.as_ref().map(|r| r.epoch);
        state.login = LoginState::User;
        state.principal = Some(name.into());
        self.reopen_objects(&mut state);
        Ok(())
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
    /// The values the login opened go at once, not at the next refresh of the cache: the
    /// token objects still held by a handle are read again as a public session sees them,
    /// their secrets sealed (their opened copies are wiped as they drop).
    pub(crate) fn end_login(&self, state: &mut TokenState) {
        state.forget_login();
        state.session_objects.retain(|_, o| !o.object.is_private());
        let (objects, sessions) = (&state.objects, &state.session_objects);
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => objects.get(&id).is_some_and(|o| !o.is_private()),
            ObjectRef::Session { id, .. } => sessions.contains_key(&id),
        });
        if state.store.is_some() {
            self.reopen_objects(state);
        } else {
            state.objects.clear();
        }
    }

    /// `C_InitPIN`: the SO sets the user PIN, which also unlocks it. Refused while the
    /// policy in force needs approvals and restricts the user (`CKR_ACTION_PROHIBITED`, see
    /// `crate::policy::custody`), and for a PIN of a principal's form `name:pin`
    /// (`CKR_PIN_INVALID`: `C_Login` would take it for that principal's login).
    pub fn init_pin(&self, view: SessionView, pin: &[u8]) -> Result<()> {
        let mut state = self.ready_lazy()?;
        so_writes(view)?;
        check_pin_len(pin)?;
        if principal_login_of(pin).is_some() {
            return Err(Error::PinInvalid);
        }
        let key = state.token_key.clone().ok_or(Error::Internal("SO without token key"))?;
        let wrapped = self.pin_record(&mut state, &key, pin, PinOwner::User)?;
        let mut saved = None;
        // In pins custody the record wraps the SO login's token key: only in its epoch.
        self.write_as_login(&mut state, &mut |w| {
            refuse_guarded(w, "user")?;
            let mut r = w.record()?;
            r.user_pin = Some(wrapped.clone());
            r.user_failures = 0;
            w.save_record(&r)?;
            saved = Some(r);
            Ok(())
        })?;
        state.record = saved;
        self.scrub(&mut state);
        Ok(())
    }

    /// `C_SetPIN`: the SO's PIN if the SO is logged in, the user's otherwise.
    ///
    /// The new record is made from the token key the old PIN opened, so it is written only
    /// in the epoch that key belongs to (`epoch.rs`). If another process re-keyed the token
    /// in between, a login ends and the call answers `CKR_USER_NOT_LOGGED_IN`; a public
    /// session's change is made again from the start, against the token as it now is.
    pub fn set_pin(&self, view: SessionView, old: &[u8], new: &[u8]) -> PinResult<()> {
        match self.set_pin_in_epoch(view, old, new)? {
            Written::Done => Ok(()),
            Written::Stale if view.login == LoginState::Public => {
                match self.set_pin_in_epoch(view, old, new)? {
                    Written::Done => Ok(()),
                    // Re-keyed twice during one call: `CKR_FUNCTION_FAILED`, try again.
                    Written::Stale => Err(Error::StoreBusy.into()),
                }
            }
            Written::Stale => Err(Error::UserNotLoggedIn.into()),
        }
    }

    fn set_pin_in_epoch(&self, view: SessionView, old: &[u8], new: &[u8]) -> PinResult<Written> {
        let mut state = self.ready_lazy()?;
        if !view.read_write {
            return Err(Error::SessionReadOnly.into());
        }
        let role = match view.login {
            LoginState::SecurityOfficer => PinRole::SecurityOfficer,
            _ => PinRole::User,
        };
        check_pin_len(new)?;
        if role == PinRole::User && principal_login_of(new).is_some() {
            return Err(Error::PinInvalid.into());
        }
        // The epoch the record the old PIN was checked against belongs to.
        let checked_epoch = state.record.as_ref().map(|r| r.epoch);
        let key = self.check_pin(&mut state, role, old)?;
        let wrapped = self.pin_record(&mut state, &key, new, role.into())?;
        let mut saved = None;
        let written = self.write_in_epoch(&mut state, checked_epoch, &mut |w| {
            let mut r = w.record()?;
            match role {
                PinRole::SecurityOfficer => r.so_pin = wrapped.clone(),
                PinRole::User => r.user_pin = Some(wrapped.clone()),
            }
            w.save_record(&r)?;
            saved = Some(r);
            Ok(())
        })?;
        if written == Written::Done {
            state.record = saved;
            self.scrub(&mut state);
        }
        Ok(written)
    }

    /// Checks `pin` for `role` against the store, counting failures persistently (in one
    /// transaction, so concurrent processes cannot lose a count), and returns the token key.
    pub(crate) fn check_pin(&self, state: &mut TokenState, role: PinRole, pin: &[u8]) -> PinResult<TokenKey> {
        self.check_owner_pin(state, role.into(), pin)
    }

    /// As `check_pin`, for the SO, the user or a named principal.
    ///
    /// Every check of a PIN the token has costs one run of the KDF, whether the PIN is right,
    /// wrong or locked, and one of a name it does not have costs the same (issue 13, item 15):
    /// the time tells nothing. A locked PIN still answers `CKR_PIN_LOCKED`, as the standard
    /// asks, for a named principal too: its holder must learn to ask the SO for a reset, and
    /// no name can be locked without first being known (a name the token does not have never
    /// counts a failure, so it never locks and always answers `CKR_PIN_INCORRECT`).
    ///
    /// In service custody (`custody.rs`) the token key is opened with the service key first,
    /// so that a process without it (or with the wrong one) is refused as a device fault,
    /// counting nothing; the PIN is then checked against its verifier. A record still holding
    /// the pre-migration sealed copy (which opens only the dead old key) is accepted as the
    /// verifier of its PIN once more and replaced by a verifier proper in the same transaction.
    pub(crate) fn check_owner_pin(
        &self,
        state: &mut TokenState,
        owner: PinOwner<'_>,
        pin: &[u8],
    ) -> PinResult<TokenKey> {
        let max = self.config.max_pin_failures;
        let service = self.service_token_key(state)?;
        let serial = state.record.as_ref().map(|r| r.serial.clone()).unwrap_or_default();
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let Some((stored, failures)) = owner.current(store.as_mut())? else {
            // An unknown principal costs what a known one's wrong PIN costs and answers the
            // same, so that neither the time nor the answer tells whether the name exists.
            // There is no count to raise for a name that does not exist.
            let cost = store.record()?.so_pin.iterations;
            run_kdf(pin, &[0; pin_kdf::SALT_LEN], cost)?;
            return Err(Error::PinIncorrect.into());
        };
        // The KDF runs outside the transaction, so other processes are not held up by it,
        // and before the count is looked at, so that a locked PIN costs what another does.
        let pin_key = run_kdf(pin, &stored.salt, stored.iterations)?;
        if failures >= max {
            return Err(Error::PinLocked.into());
        }
        let mut upgrade = None;
        let opened: Result<TokenKey> = match &service {
            None => seal::open(&pin_key, &owner.context(), &stored.sealed_key).and_then(|opened| {
                let key: [u8; seal::KEY_LEN] = opened
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::StoreCorrupt("token key length".into()))?;
                Ok(TokenKey::new(key))
            }),
            Some((svc, key)) => {
                let verifier_context = owner.verifier_context();
                if svc.verifies(&serial, &pin_key, &verifier_context, &stored.sealed_key) {
                    Ok(key.clone())
                } else if seal::open(&pin_key, &owner.context(), &stored.sealed_key).is_ok() {
                    let sealed_key = svc.verifier(&serial, &pin_key, &verifier_context)?;
                    upgrade = Some(WrappedTokenKey { sealed_key, ..stored.clone() });
                    Ok(key.clone())
                } else {
                    Err(Error::PinIncorrect)
                }
            }
        };
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
            if let (Ok(_), Some(record)) = (&opened, &upgrade) {
                owner.save_pin(w, record)?;
            }
            if new_count != count { owner.save_failures(w, new_count) } else { Ok(()) }
        })?;
        if let Err(error) = outcome {
            // When this very failure locked the PIN (the count is stored; an attempt on a
            // PIN locked before is refused above without counting), the caller records it.
            return Err(PinRefused { error, locked: locked_now.then(|| owner.name()) });
        }
        if upgrade.is_some() {
            self.scrub(state);
        }
        Ok(opened.map_err(|_| Error::PinIncorrect)?)
    }

    /// A new record of `pin` for `owner`, as the token's custody wants it: the token key
    /// `key` sealed under the PIN's KDF output (`pins`), or a verifier of the PIN (`service`).
    pub(crate) fn pin_record(
        &self,
        state: &mut TokenState,
        key: &TokenKey,
        pin: &[u8],
        owner: PinOwner<'_>,
    ) -> Result<WrappedTokenKey> {
        match state.record.as_ref().map(|r| (&r.custody, r.serial.clone())) {
            Some((KeyCustody::Service { .. }, serial)) => {
                let service = self.required_service_key(state)?;
                self.new_pin_record(&service, &serial, pin, owner)
            }
            _ => self.wrap_token_key_for(key, pin, owner),
        }
    }

    /// A verifier of `pin` for `owner` on token `serial` in service custody.
    pub(crate) fn new_pin_record(
        &self,
        service: &ServiceKey,
        serial: &str,
        pin: &[u8],
        owner: PinOwner<'_>,
    ) -> Result<WrappedTokenKey> {
        self.new_pin_sealed(pin, |pin_key| service.verifier(serial, pin_key, &owner.verifier_context()))
    }

    pub(crate) fn wrap_token_key_for(
        &self,
        key: &TokenKey,
        pin: &[u8],
        owner: PinOwner<'_>,
    ) -> Result<WrappedTokenKey> {
        self.new_pin_sealed(pin, |pin_key| seal::seal(pin_key, &owner.context(), key.as_slice()))
    }

    /// A record of `pin` under a fresh salt and the configured KDF iterations: what `seal_under`
    /// makes of the key the KDF derives from the PIN (the token key wrapped under it, or a
    /// verifier of it).
    fn new_pin_sealed(
        &self,
        pin: &[u8],
        seal_under: impl FnOnce(&[u8; 32]) -> Result<Vec<u8>>,
    ) -> Result<WrappedTokenKey> {
        let salt = rng::bytes::<{ pin_kdf::SALT_LEN }>()?.to_vec();
        let iterations = self.config.pin_kdf_iterations;
        let pin_key = pin_kdf::derive(pin, &salt, iterations)?;
        let sealed_key = seal_under(&pin_key)?;
        Ok(WrappedTokenKey { salt, iterations, sealed_key })
    }
}

/// A refused PIN check: the error the call returns, and whose PIN (`so`, `user` or a
/// principal's name) this very check locked, if it did. The error alone cannot tell: a PIN
/// locked before gives the same `CKR_PIN_LOCKED`. The module records a lock apart
/// (`pin_locked`), after the call's own record.
#[derive(Debug, PartialEq, Eq)]
pub struct PinRefused {
    pub error: Error,
    pub locked: Option<String>,
}

impl From<Error> for PinRefused {
    fn from(error: Error) -> PinRefused {
        PinRefused { error, locked: None }
    }
}

impl PinRefused {
    /// The error of the call, with whose PIN it locked kept in `locked`.
    pub fn noting_lock(self, locked: &mut Option<String>) -> Error {
        *locked = self.locked;
        self.error
    }
}

/// The result of a call that checks a PIN.
pub type PinResult<T> = std::result::Result<T, PinRefused>;

pub(crate) fn pin_flags(failures: u32, max: u32, [low, final_try, locked]: [CK_FLAGS; 3]) -> CK_FLAGS {
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

/// The PIN KDF, every run of it by a PIN check counted in tests (so that a test can show
/// that an unknown name costs a run as a known one does, without measuring time).
fn run_kdf(pin: &[u8], salt: &[u8], iterations: u32) -> Result<Zeroizing<[u8; 32]>> {
    #[cfg(test)]
    KDF_RUNS.with(|n| n.set(n.get() + 1));
    pin_kdf::derive(pin, salt, iterations)
}

#[cfg(test)]
thread_local! {
    /// PIN checks' KDF runs on this thread (tests run one per thread).
    pub(crate) static KDF_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a user PIN has the form `name:pin` of a principal's login: a colon whose prefix
/// is a well-formed principal name. Such a PIN is always a principal's login, whether or not
/// the name exists (so the answer does not tell), and so is refused as the user's PIN.
pub fn principal_login_of(pin: &[u8]) -> Option<(&str, &[u8])> {
    let colon = pin.iter().position(|b| *b == b':')?;
    let name = std::str::from_utf8(&pin[..colon]).ok()?;
    super::principals::check_principal_name(name).ok()?;
    Some((name, &pin[colon + 1..]))
}

pub fn check_pin_len(pin: &[u8]) -> Result<()> {
    if (MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) { Ok(()) } else { Err(Error::PinLenRange) }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use parking_lot::RwLock;

    use super::*;
    use crate::config::Config;
    use crate::token::handles::HandleTable;

    /// A token on a file of its own that does not exist yet (a free slot).
    fn free_token(name: &str) -> (Token, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ecm-hsm-pin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = "test_settings = true\npin_kdf_iterations = 1\nmax_pin_failures = 2\naudit = false\n";
        let config = Config::from_toml(dir.clone(), settings, Path::new("test")).unwrap();
        let handles = Arc::new(RwLock::new(HandleTable::default()));
        (Token::open(0, dir.join("token-0.sqlite"), Arc::new(config), handles), dir)
    }

    #[test]
    fn the_check_that_locks_a_pin_says_whose_and_no_other_check_does() {
        let (token, dir) = free_token("lockout");
        token.init_token(b"so-pin-1", [b' '; 32], false).unwrap();
        let refused =
            |error, locked: Option<&str>| Err(PinRefused { error, locked: locked.map(String::from) });
        assert_eq!(token.login(PinRole::SecurityOfficer, b"wrong-1"), refused(Error::PinIncorrect, None));
        assert_eq!(token.login(PinRole::SecurityOfficer, b"wrong-2"), refused(Error::PinLocked, Some("so")));
        // Locked before: the same error, and no lock of this check's own.
        assert_eq!(token.login(PinRole::SecurityOfficer, b"so-pin-1"), refused(Error::PinLocked, None));
        assert_eq!(token.login_state(), LoginState::Public);
        drop(token);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Initializes `token` and gives it the principal `alice` (PIN `alice-pin`); nobody is
    /// logged in after. Returns the SO's session view, for reading the principals back.
    fn with_alice(token: &Token) -> SessionView {
        token.init_token(b"so-pin-1", [b' '; 32], false).unwrap();
        token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
        let so = SessionView { login: LoginState::SecurityOfficer, read_write: true, principal: false };
        token.set_principal(so, "alice", b"alice-pin", false).unwrap();
        token.logout().unwrap();
        so
    }

    /// What a PIN check answered, and how many KDF runs it cost.
    fn runs(f: &dyn Fn() -> PinResult<()>) -> (PinResult<()>, u64) {
        let before = KDF_RUNS.with(|n| n.get());
        let result = f();
        (result, KDF_RUNS.with(|n| n.get()) - before)
    }

    /// Issue 13, item 15: an unknown principal's login costs a KDF run, as a known one's
    /// wrong PIN does, answers the same and counts nothing; no lockout is set off by it.
    #[test]
    fn an_unknown_principal_costs_a_kdf_run_and_answers_as_a_wrong_pin() {
        let (token, dir) = free_token("unknown-principal");
        let so = with_alice(&token);
        let incorrect = || Err(PinRefused { error: Error::PinIncorrect, locked: None });
        assert_eq!(runs(&|| token.login_principal("nobody", b"x-pin")), (incorrect(), 1));
        assert_eq!(runs(&|| token.login_principal("alice", b"wrong")), (incorrect(), 1));
        // Twice over the lockout threshold: an unknown name is never locked, and nothing
        // was stored for it.
        assert_eq!(runs(&|| token.login_principal("nobody", b"x-pin")), (incorrect(), 1));
        assert_eq!(runs(&|| token.login_principal("alice", b"alice-pin")), (Ok(()), 1));
        token.logout().unwrap();
        token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
        assert_eq!(token.principals(so).unwrap(), vec![("alice".to_string(), 0)]);
        drop(token);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Issue 13, item 15: a locked principal's login costs a KDF run as any other check
    /// does (no instant answer tells a locked name apart), and still answers
    /// `CKR_PIN_LOCKED`, counting nothing more.
    #[test]
    fn a_locked_principal_costs_a_kdf_run_too() {
        let (token, dir) = free_token("locked-principal");
        let so = with_alice(&token);
        let refused =
            |error, locked: Option<&str>| Err(PinRefused { error, locked: locked.map(String::from) });
        assert_eq!(
            runs(&|| token.login_principal("alice", b"wrong")),
            (refused(Error::PinIncorrect, None), 1)
        );
        assert_eq!(
            runs(&|| token.login_principal("alice", b"wrong")),
            (refused(Error::PinLocked, Some("alice")), 1)
        );
        for pin in [b"wrong".as_slice(), b"alice-pin"] {
            assert_eq!(runs(&|| token.login_principal("alice", pin)), (refused(Error::PinLocked, None), 1));
        }
        token.login(PinRole::SecurityOfficer, b"so-pin-1").unwrap();
        assert_eq!(token.principals(so).unwrap(), vec![("alice".to_string(), 2)], "counted no further");
        drop(token);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn principal_logins_are_told_by_form_alone() {
        assert_eq!(principal_login_of(b"alice:pin:x"), Some(("alice", b"pin:x".as_slice())));
        assert_eq!(principal_login_of(b"nobody:x"), Some(("nobody", b"x".as_slice())));
        // Not a principal name before the colon: the user's PIN.
        for user_pin in [b":1234".as_slice(), b"user:1234", b"so:1234", b"a b:1234", b"1234", b"\xff:12"] {
            assert_eq!(principal_login_of(user_pin), None, "{user_pin:?}");
        }
    }

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
