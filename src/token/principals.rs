//! Principals and the policy: the SO adds, re-keys and removes principals and applies
//! policy documents; any login reads the policy and the token's audit key.

use std::sync::Arc;

use super::pin::{PinOwner, check_pin_len};
use super::{Token, approvals};
use crate::policy::{LoginState, Policy, SessionView};
use crate::store::{KeyCustody, PrincipalRecord, StoreWriter};
use crate::{Error, Result};

impl Token {
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
    /// (`replace` true). Only the SO, in a read/write session, and not for an approver while
    /// the policy needs approvals (`CKR_ACTION_PROHIBITED`, see [`refuse_guarded`]).
    pub fn set_principal(&self, view: SessionView, name: &str, pin: &[u8], replace: bool) -> Result<()> {
        let mut state = self.ready_lazy()?;
        so_writes(view)?;
        check_principal_name(name)?;
        check_pin_len(pin)?;
        let key = state.token_key.clone().ok_or(Error::Internal("SO without token key"))?;
        let wrapped = self.pin_record(&mut state, &key, pin, PinOwner::Principal(name))?;
        // In pins custody the record wraps the login's token key: only in its epoch.
        self.write_as_login(&mut state, &mut |w| {
            refuse_guarded(w, name)?;
            if w.principal(name)?.is_some() != replace {
                // Adding one that exists, or resetting one that does not.
                return Err(Error::ArgumentsBad);
            }
            w.save_principal(&PrincipalRecord { name: name.to_string(), pin: wrapped.clone(), failures: 0 })
        })?;
        if replace {
            self.scrub(&mut state);
        }
        Ok(())
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
        so_writes(view)?;
        let policy = Policy::parse(text)?;
        let document = policy.to_json();
        let mut version = 0;
        let mut consumed = Vec::new();
        let now = crate::audit::record::now_ms();
        self.write_as_login(&mut state, &mut |w| {
            let current = w.policy()?;
            version = current.as_ref().map_or(0, |(v, _)| *v) + 1;
            // The policy in force is read inside the transaction, so that no other process
            // can change it between the check and the change. One that no longer parses
            // grants nothing, and asks no approvals for its replacement.
            let gate = current
                .and_then(|(_, stored)| Policy::parse(&stored).ok())
                .and_then(|p| approvals::Gate::policy_change(p, &document));
            consumed = approvals::consume(gate.as_ref(), w, now)?;
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

    /// The token's audit key (see `crate::audit`), for any logged-in session: in pins
    /// custody derived from the token key, which only a login holds; in service custody from
    /// the service key (`custody.rs`), which no principal holds.
    pub fn audit_key(&self) -> Result<crate::audit::AuditKey> {
        let mut state = self.ready_lazy()?;
        let token_key = match (&state.login, &state.token_key) {
            (LoginState::Public, _) | (_, None) => return Err(Error::UserNotLoggedIn),
            (_, Some(key)) => key.clone(),
        };
        let record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        match record.custody {
            KeyCustody::Pins => Ok(crate::audit::derive_key(token_key.as_ref())),
            KeyCustody::Service { .. } => {
                Ok(self.required_service_key(&mut state)?.audit_key(&record.serial, record.epoch))
            }
        }
    }

    /// Removes a principal. Only the SO, in a read/write session, and not an approver while
    /// the policy needs approvals (`CKR_ACTION_PROHIBITED`, see [`refuse_guarded`]).
    pub fn remove_principal(&self, view: SessionView, name: &str) -> Result<()> {
        let mut state = self.ready_lazy()?;
        so_writes(view)?;
        let mut existed = false;
        let now = crate::audit::record::now_ms();
        self.write_as_login(&mut state, &mut |w| {
            refuse_guarded(w, name)?;
            existed = w.delete_principal(name)?;
            // Its pending approvals, given or received, go with it: a principal added
            // again under the name is someone new.
            w.revoke_approvals(crate::store::ApprovalsOf::Principal(name), now)?;
            Ok(())
        })?;
        if !existed {
            return Err(Error::ArgumentsBad);
        }
        // Nothing of the removed principal's PIN record stays in the write-ahead log.
        self.scrub(&mut state);
        Ok(())
    }
}

/// Refuses (`CKR_ACTION_PROHIBITED`) a change by the SO alone to the PIN of `name` (`user`
/// for the token's user) while the policy in force guards it (`crate::policy::custody`).
/// The policy is read inside the change's transaction `w`, so that no other process can
/// apply one between the check and the change.
pub(crate) fn refuse_guarded(w: &mut dyn StoreWriter, name: &str) -> Result<()> {
    let policy = w.policy()?.and_then(|(_, document)| Policy::parse(&document).ok());
    if policy.is_some_and(|p| p.guards_credentials_of(name)) {
        return Err(Error::ActionProhibited);
    }
    Ok(())
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

/// The SO's changes to the token's PINs, principals and policy: an SO login
/// (`CKR_USER_NOT_LOGGED_IN` otherwise) in a read/write session (`CKR_SESSION_READ_ONLY`).
pub(crate) fn so_writes(view: SessionView) -> Result<()> {
    if view.login != LoginState::SecurityOfficer {
        return Err(Error::UserNotLoggedIn);
    }
    if !view.read_write {
        return Err(Error::SessionReadOnly);
    }
    Ok(())
}
