//! No change under a login of an older epoch of the token.
//!
//! A token's epoch moves when another process re-keys it: `C_InitToken` (a new token key,
//! every object gone) or `ecm-hsm token seal-for-service` (every sealed value sealed again
//! under a new token key). A process logged in before holds the old token key. Its next
//! [`Token::refresh`] sees the new epoch and ends the login, but a change it had already
//! begun — the refresh done, the values sealed, the transaction not yet open — would seal
//! them under the old key and commit them after the re-key: an object nobody could open again
//! (or that whoever keeps the old key could), a PIN record wrapping a dead key. So every change
//! made under a login runs in [`Token::write_as_login`], whose transaction first reads the
//! stored epoch (one column; the transaction holds the store's write lock, so the epoch cannot
//! move before the commit) and compares it with the epoch the login's key belongs to.
//!
//! On a mismatch nothing is written (the transaction rolls back), the login ends as the refresh
//! would end it, and the call answers `CKR_USER_NOT_LOGGED_IN`: the login the call was made
//! under is gone, and the standard's definition of that code ("the appropriate user is not
//! logged in") is what the caller must act on — log in again. It is among the listed codes of
//! every call that makes or changes an object (`C_CreateObject`, `C_CopyObject`,
//! `C_SetAttributeValue`, `C_GenerateKey(Pair)`, `C_UnwrapKey`, `C_DeriveKey`) and of
//! `C_InitPIN`; `CKR_DEVICE_REMOVED` or `CKR_TOKEN_NOT_RECOGNIZED` would tell the caller the
//! token is gone, which it is not (the same token serves the next login). The lists of
//! `C_DestroyObject` and `C_SetPIN` lack it; the standard's section 5.1 lets a function answer
//! a code it does not list when the code's definition applies (as `tests/abi_fuzz/allow.txt`
//! records for others), and no code of theirs says "your login is over". A `C_SetPIN` from a
//! public session, which ends no login, is checked and made again instead (`pin.rs`).
//!
//! The check costs one read of a cached statement inside a transaction that already writes
//! and syncs, and only changes pay it: the cryptographic calls write nothing. SQLite's
//! `data_version` would not be cheaper — asking it is a statement too — and would only say
//! that something changed, not whether the epoch did.

use super::{Token, TokenState};
use crate::store::StoreWriter;
use crate::{Error, Result};

/// What [`Token::write_in_epoch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Done,
    /// The token was in another epoch: nothing was written, and the login (if any) ended.
    Stale,
}

impl Token {
    /// Runs `change` in one store transaction, after checking inside it that the token is
    /// still in the epoch of this process's login (if someone is logged in). If it is not,
    /// nothing is written, the login ends and the answer is `CKR_USER_NOT_LOGGED_IN`.
    pub(crate) fn write_as_login(
        &self,
        state: &mut TokenState,
        change: &mut dyn FnMut(&mut dyn StoreWriter) -> Result<()>,
    ) -> Result<()> {
        match self.write_in_epoch(state, state.login_epoch, change)? {
            Written::Done => Ok(()),
            Written::Stale => Err(Error::UserNotLoggedIn),
        }
    }

    /// Runs `change` in one store transaction if the token is in epoch `expected` (any
    /// epoch if `None`): the epoch of the token key the change depends on. Otherwise nothing
    /// is written and this process's login, which belongs to an older epoch, ends.
    pub(crate) fn write_in_epoch(
        &self,
        state: &mut TokenState,
        expected: Option<u64>,
        change: &mut dyn FnMut(&mut dyn StoreWriter) -> Result<()>,
    ) -> Result<Written> {
        #[cfg(test)]
        if let Some(another_process) = tests::BEFORE_WRITE.with(|h| h.borrow_mut().take()) {
            another_process();
        }
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut stored_epoch = None;
        let written = store.write(&mut |w| {
            if let Some(expected) = expected {
                let epoch = w.epoch()?;
                if epoch != expected {
                    stored_epoch = Some(epoch);
                    // Rolls the transaction back; the answer is decided below.
                    return Err(Error::UserNotLoggedIn);
                }
            }
            change(w)
        });
        let (Some(stored), Some(expected)) = (stored_epoch, expected) else {
            return written.map(|()| Written::Done);
        };
        log::warn!(
            "token of slot {}: re-keyed by another process (epoch {expected} -> {stored}) during a change; \
             the change was not made, and a login of the old epoch ended",
            self.slot_id
        );
        if state.login_epoch.is_some() {
            self.end_login(state);
        }
        // The next call reloads the record and the objects of the new epoch.
        state.loaded = None;
        Ok(Written::Stale)
    }
}

#[cfg(test)]
#[path = "epoch_tests.rs"]
mod tests;
