//! General-purpose, slot and token management functions (PKCS#11 3.0 chapters 5.4 and 5.5),
//! and random number generation (5.15).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cryptoki_sys::*;

use super::Module;
use super::audit::rv_of;
use crate::mechanism;
use crate::session::TokenStatus;
use crate::token::audit::{Context, Who};
use crate::{Error, Result};

/// The word `C_GetTokenInfo`'s model ends with for a token in service custody.
pub const SERVICE_CUSTODY_MODEL: &str = "svc";

impl Module {
    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        let mut slots = self.slots.write();
        slots.rescan(&self.config, &self.handles)?;
        Ok(slots.ids())
    }

    /// What each slot shows now (after a look at the token directory, where another
    /// process may have made a token): slot id → whether it holds an initialized token.
    fn current_slot_states(&self) -> Result<BTreeMap<CK_SLOT_ID, bool>> {
        let mut slots = self.slots.write();
        slots.rescan(&self.config, &self.handles)?;
        Ok(slot_states(&slots))
    }

    /// `C_WaitForSlotEvent`: the next slot whose token changed since the module was
    /// initialized or the slot was last reported — a slot that appeared or went, a token
    /// initialized in it (by this process or another). With `dont_block`, `CKR_NO_EVENT`
    /// when there is none; otherwise waits for one, or for `C_Finalize`
    /// (`CKR_CRYPTOKI_NOT_INITIALIZED`). Changes made by this process wake a waiter at
    /// once; those of other processes are seen at the next look at the token directory,
    /// made every [`SlotEvents::POLL`].
    pub fn wait_for_slot_event(&self, dont_block: bool) -> Result<CK_SLOT_ID> {
        loop {
            if let Some(slot) = self.slot_events.next(self.current_slot_states()?)? {
                return Ok(slot);
            }
            if dont_block {
                return Err(Error::NoEvent);
            }
            self.slot_events.wait()?;
        }
    }

    /// Fails with `CKR_SLOT_ID_INVALID` for a slot that does not exist.
    pub fn check_slot(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.token(slot).map(|_| ())
    }

    pub fn token_status(&self, slot: CK_SLOT_ID) -> Result<TokenStatus> {
        let token = self.token(slot)?;
        let info = token.info()?;
        let sessions = self.sessions_of(slot);
        Ok(TokenStatus {
            info,
            session_count: sessions.len(),
            rw_session_count: sessions.iter().filter(|s| s.read_write).count(),
        })
    }

    /// `C_InitToken`, recorded as `init_token` in the slot's trail, without a session (the
    /// call has none): by `so` when done (its PIN was set, or checked), else by nobody; and
    /// `pin_locked` after it when its SO PIN check locked the SO PIN.
    ///
    /// A re-initialization must not let whoever knows the SO PIN erase the record of what
    /// was done with the old token: its trail is archived (`AuditLog::archive`), not
    /// deleted. The record is written after the call, like every other, so it says how the
    /// call ended; a done initialization makes a new token key, and this record, first of
    /// the new trail, and the process's later ones are authenticated under the new token's
    /// audit key (the old trail's MACs are under a key that no longer exists).
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: [u8; 32]) -> Result<()> {
        let token = self.token(slot)?;
        let mut locked = None;
        let result = token
            .init_token(so_pin, label, !self.sessions_of(slot).is_empty())
            .map_err(|refused| refused.noting_lock(&mut locked))
            .and_then(|audit_key| {
                // The free slot is taken: make the next one.
                self.slots.write().rescan(&self.config, &self.handles)?;
                Ok(audit_key)
            });
        let recorded = record_new_token_key(&token, "init_token", &result, locked);
        self.slot_events.changed();
        recorded?;
        result.map(drop)
    }

    /// `ecm-hsm token seal-for-service`: the token of `slot` moves to service custody
    /// under `service_key` (`crate::token::custody`), recorded as `seal_for_service` as
    /// `C_InitToken` is: its token key is rotated, so the old trail is archived and the new
    /// one starts with this record, under the audit key the service key gives.
    pub fn seal_for_service(
        &self,
        slot: CK_SLOT_ID,
        so_pin: &[u8],
        service_key: crate::token::ServiceKey,
    ) -> Result<()> {
        let token = self.token(slot)?;
        let mut locked = None;
        let result = token
            .seal_for_service(so_pin, service_key, !self.sessions_of(slot).is_empty())
            .map_err(|refused| refused.noting_lock(&mut locked));
        record_new_token_key(&token, "seal_for_service", &result, locked)?;
        result.map(drop)
    }

    /// Makes this process open the token of `slot` with `service_key` (an admin command's
    /// key file) rather than the configured one; a token made on a free slot then starts in
    /// service custody.
    pub fn use_service_key(&self, slot: CK_SLOT_ID, service_key: crate::token::ServiceKey) -> Result<()> {
        self.token(slot)?.use_service_key(service_key);
        Ok(())
    }

    /// Who can open the token key of the token of `slot` (`ecm-hsm status`).
    pub fn token_custody(&self, slot: CK_SLOT_ID) -> Result<crate::token::Custody> {
        self.token(slot)?.custody()
    }

    /// `C_GetTokenInfo`'s model: the settings' model, then `svc` for a token in service
    /// custody (its token key opens with the service key alone), so that an application
    /// sees whether its PIN guards the keys or only logs it in. An uninitialized token has
    /// no custody yet: the bare model.
    pub fn token_model(&self, slot: CK_SLOT_ID) -> Result<String> {
        let model = self.config.model();
        Ok(match self.token(slot)?.custody() {
            Ok(crate::token::Custody::Service) => format!("{model} {SERVICE_CUSTODY_MODEL}"),
            Ok(crate::token::Custody::Pins) | Err(Error::TokenNotRecognized) => model.to_owned(),
            Err(e) => return Err(e),
        })
    }

    /// `C_InitPIN`: the SO sets the user PIN; recorded as `init_pin` by the session's login
    /// (the SO, or a refusal). A refusal by the policy's custody rule (the quorum, not the
    /// SO alone, controls a restricted user) answers `CKR_USER_NOT_LOGGED_IN`: the standard
    /// lets only `C_CopyObject`, `C_SetAttributeValue` and `C_DestroyObject` answer
    /// `CKR_ACTION_PROHIBITED` (3.0 section 5.1.6), and `C_InitPIN`'s list has, of its
    /// codes, only this one for "the login this needs is not the one there".
    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let init_pin = || {
            let (session, token) = self.session_and_token(h)?;
            token.init_pin(token.view(session.read_write), pin).map_err(|e| match e {
                Error::ActionProhibited => Error::UserNotLoggedIn,
                e => e,
            })
        };
        self.audited(h, "init_pin", None, None, init_pin, || {})
    }

    /// `C_SetPIN`, recorded as `set_pin` by the session's login: the SO changes its own
    /// PIN, anyone else the token user's (a public session included, where the principal is
    /// empty). A wrong old PIN counts toward that PIN's lockout.
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let mut locked = None;
        let set_pin = || {
            let (session, token) = self.session_and_token(h)?;
            token.set_pin(token.view(session.read_write), old, new).map_err(|r| r.noting_lock(&mut locked))
        };
        let result = self.audited(h, "set_pin", None, None, set_pin, || {});
        self.record_pin_locked(h, locked)?;
        result
    }

    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(h)?;
        mechanism::rng::fill(out)
    }

    /// `C_SeedRandom`: the generator is AWS-LC's DRBG, reseeded from the operating system;
    /// it takes no seed from callers.
    pub fn seed_random(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::RandomSeedNotSupported)
    }
}

/// Records a call that gave the token a new token key (`C_InitToken`, `seal-for-service`), as
/// `operation` without a session: by `so` when done — after the trail is re-armed under the
/// new audit key, so that the record is the first of the new trail — else by nobody; and
/// `pin_locked` after it when the SO PIN check locked the SO PIN.
fn record_new_token_key(
    token: &crate::token::Token,
    operation: &'static str,
    result: &Result<crate::audit::AuditKey>,
    locked: Option<String>,
) -> Result<()> {
    if !token.config.audit {
        return Ok(());
    }
    let principal = match result {
        Ok(audit_key) => {
            token.rearm_audit(audit_key)?;
            Who::So
        }
        Err(_) => Who::Nobody,
    };
    let context = Context { principal, key: None, described_as: None };
    token.record_with(0, operation, context, None, rv_of(result))?;
    token.record_pin_locked(0, locked)
}

/// Each slot of `slots` → whether it holds an initialized token.
pub(super) fn slot_states(slots: &super::slots::SlotTable) -> BTreeMap<CK_SLOT_ID, bool> {
    let state = |id| slots.token(id).is_ok_and(|t| t.is_initialized());
    slots.ids().into_iter().map(|id| (id, state(id))).collect()
}

/// What `C_WaitForSlotEvent` has reported: the slots' states as its callers last learnt
/// them, a signal for changes this process makes, and whether `C_Finalize` has come.
///
/// std's `Mutex` and `Condvar`, not parking_lot's: a blocked `C_WaitForSlotEvent` always
/// waits, and a host thread that once waited in parking_lot keeps a per-thread record whose
/// destructor pins the library in memory until that thread exits, so a host that unloads the
/// library would get the same copy back (README, Unloading). std's wait on a futex and keep
/// nothing per thread.
pub(super) struct SlotEvents {
    state: Mutex<EventState>,
    signal: Condvar,
}

struct EventState {
    /// Each slot's state as last reported (or as at `C_Initialize`).
    reported: BTreeMap<CK_SLOT_ID, bool>,
    /// Bumped by every change this process makes, so that a waiter never sleeps past one.
    changes: u64,
    finalized: bool,
}

impl SlotEvents {
    /// How often a blocked `C_WaitForSlotEvent` looks at the token directory for tokens
    /// other processes made.
    const POLL: Duration = Duration::from_millis(500);

    pub(super) fn new(initial: BTreeMap<CK_SLOT_ID, bool>) -> SlotEvents {
        let state = EventState { reported: initial, changes: 0, finalized: false };
        SlotEvents { state: Mutex::new(state), signal: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first slot whose state differs from what was reported (now reported), if any.
    fn next(&self, now: BTreeMap<CK_SLOT_ID, bool>) -> Result<Option<CK_SLOT_ID>> {
        let mut state = self.lock();
        if state.finalized {
            return Err(Error::CryptokiNotInitialized);
        }
        let appeared_or_changed =
            now.iter().find(|(id, s)| state.reported.get(id) != Some(s)).map(|(id, _)| *id);
        let gone = || state.reported.keys().find(|id| !now.contains_key(id)).copied();
        let Some(slot) = appeared_or_changed.or_else(gone) else {
            return Ok(None);
        };
        match now.get(&slot) {
            Some(s) => state.reported.insert(slot, *s),
            None => state.reported.remove(&slot),
        };
        Ok(Some(slot))
    }

    /// Sleeps until this process changes a token, `C_Finalize` comes, or the poll interval
    /// passes.
    fn wait(&self) -> Result<()> {
        let mut state = self.lock();
        let seen = state.changes;
        let deadline = std::time::Instant::now() + Self::POLL;
        while !state.finalized && state.changes == seen {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.signal.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        if state.finalized { Err(Error::CryptokiNotInitialized) } else { Ok(()) }
    }

    /// A token of this process changed (wakes the waiters to look).
    pub(super) fn changed(&self) {
        self.lock().changes += 1;
        self.signal.notify_all();
    }

    /// `C_Finalize`: every waiter returns `CKR_CRYPTOKI_NOT_INITIALIZED`.
    pub(super) fn finalize(&self) {
        self.lock().finalized = true;
        self.signal.notify_all();
    }
}
