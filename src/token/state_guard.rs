//! The guard of a token's state, which counts changes.
//!
//! Every change to a token's state (objects, login, policy, handles of its objects, a reload
//! from the store) is made through a mutable borrow of this guard, and the token's
//! `version` is bumped when such a guard is released. A session may then keep what a key
//! lookup established — that the key is visible, permitted this use and mechanism, and its
//! value — and use it again without the token's lock while the version is unchanged and the
//! store was checked for other processes' changes less than `KEY_USE_STALENESS` ago (the
//! window `ready_for_use` already allows). See `Module::begin`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::MutexGuard;

use super::{Token, TokenState};

pub(crate) struct StateGuard<'a> {
    token: &'a Token,
    inner: MutexGuard<'a, TokenState>,
    changed: bool,
}

impl<'a> StateGuard<'a> {
    pub(crate) fn new(token: &'a Token, inner: MutexGuard<'a, TokenState>) -> StateGuard<'a> {
        StateGuard { token, inner, changed: false }
    }

    /// Mutable access that does not count as a change, for bookkeeping that no cached lookup
    /// depends on (when the store was last checked). Whoever uses it and does change
    /// something calls [`StateGuard::mark_changed`].
    pub(crate) fn quiet(&mut self) -> &mut TokenState {
        &mut self.inner
    }

    pub(crate) fn mark_changed(&mut self) {
        self.changed = true;
    }
}

impl Deref for StateGuard<'_> {
    type Target = TokenState;

    fn deref(&self) -> &TokenState {
        &self.inner
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut TokenState {
        self.changed = true;
        &mut self.inner
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Bumped while the lock is still held (the inner guard drops after this), so a reader
        // that sees the old version saw no part of this change.
        if self.changed {
            self.token.version.fetch_add(1, Ordering::Release);
        }
    }
}

impl Token {
    /// How many changes the token's state has seen (see the module comment).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// `refresh`, counted as a change only if it changed something (or failed part-way).
    pub(crate) fn refresh_counted(&self, state: &mut StateGuard<'_>) -> crate::Result<()> {
        match self.refresh(state.quiet()) {
            Ok(false) => Ok(()),
            Ok(true) => {
                state.mark_changed();
                Ok(())
            }
            Err(e) => {
                state.mark_changed();
                Err(e)
            }
        }
    }

    /// When the store was last checked for other processes' changes.
    pub(crate) fn checked_at(&self) -> Option<Instant> {
        self.lock().checked_at
    }
}
