//! How the module records its calls (`crate::audit`; the token's side, its trail and how a
//! record names who acted on which key, is `crate::token`'s `audit.rs`).
//!
//! A call is recorded after it ran, with the `CK_RV` it returns, the principal logged in,
//! the session, the key (unique id, label, version of the hierarchy) and the mechanism. A
//! refused call is recorded like a successful one. If the record cannot be written the call
//! fails with `CKR_DEVICE_ERROR` (fail closed): an operation begun by a `*Init` is ended
//! again, so nothing can be done under a call that left no record. A change to the token
//! (a key generated, an object destroyed) has already been committed when its record fails;
//! the caller still sees the error. A PIN check that locks a PIN is recorded apart, as
//! `pin_locked`, after the record of the call that made it.

use cryptoki_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE};

use super::Module;
use crate::Result;
use crate::mechanism::Mechanism;

/// The `CK_RV` of a result.
pub(super) fn rv_of<T>(result: &Result<T>) -> CK_RV {
    match result {
        Ok(_) => cryptoki_sys::CKR_OK,
        Err(e) => e.ck_rv(),
    }
}

impl Module {
    /// Runs `call` on the token of session `h` and records it (see the module comment).
    /// `undo` runs when the call succeeded but its record failed.
    pub(super) fn audited<T>(
        &self,
        h: CK_SESSION_HANDLE,
        operation: &str,
        key: Option<CK_OBJECT_HANDLE>,
        mechanism: Option<CK_MECHANISM_TYPE>,
        call: impl FnOnce() -> Result<T>,
        undo: impl FnOnce(),
    ) -> Result<T> {
        let result = call();
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        match token.record(h, operation, key, mechanism, rv_of(&result)) {
            Ok(()) => result,
            Err(e) => {
                if result.is_ok() {
                    undo();
                }
                Err(e)
            }
        }
    }

    /// As [`Module::audited`] for a call that makes an object: the record names the new one.
    pub(super) fn audited_new(
        &self,
        h: CK_SESSION_HANDLE,
        operation: &str,
        mechanism: Option<CK_MECHANISM_TYPE>,
        call: impl FnOnce() -> Result<CK_OBJECT_HANDLE>,
    ) -> Result<CK_OBJECT_HANDLE> {
        let result = call();
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        let key = result.as_ref().ok().copied();
        token.record(h, operation, key, mechanism, rv_of(&result))?;
        result
    }

    /// A `*Init`: `init(Some(m))` begins the operation and is recorded; `init(None)` ends
    /// one (not recorded), which is also how a begun operation is undone when its record
    /// fails.
    pub(super) fn audited_init(
        &self,
        h: CK_SESSION_HANDLE,
        operation: &str,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        init: impl Fn(Option<&Mechanism>) -> Result<()>,
    ) -> Result<()> {
        let Some(m) = mechanism else {
            return init(None);
        };
        self.audited(h, operation, Some(key), Some(m.kind), || init(Some(m)), || drop(init(None)))
    }

    /// Records `pin_locked` when the PIN check of a call of session `h` locked the PIN of
    /// `locked` (`so`, `user` or a principal's name; see `crate::token::PinRefused`), after
    /// the call's own record. The call failed in that case, whatever this record does.
    pub(super) fn record_pin_locked(&self, h: CK_SESSION_HANDLE, locked: Option<String>) -> Result<()> {
        if locked.is_some()
            && let Ok(token) = self.token_of(h)
        {
            token.record_pin_locked(h, locked)?;
        }
        Ok(())
    }
}
