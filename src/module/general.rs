//! Slot and token management, session management and login (spec chapters 5.5, 5.6).

use std::sync::Arc;

use cryptoki_sys::*;

use super::Module;
use super::token::{PinRole, Token, TokenInfo};
use crate::policy::{LoginState, SessionView};
use crate::session::Session;
use crate::{Error, Result};

/// What `C_GetTokenInfo` needs beyond the token's own record.
pub struct TokenStatus {
    pub info: TokenInfo,
    pub session_count: usize,
    pub rw_session_count: usize,
}

impl Module {
    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        let mut slots = self.slots.write();
        slots.rescan(&self.config, &self.handles)?;
        Ok(slots.ids())
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

    /// `C_InitToken` on `token` (of `slot`); returns the new token's audit key.
    pub(super) fn init_token_unrecorded(
        &self,
        slot: CK_SLOT_ID,
        token: &Token,
        so_pin: &[u8],
        label: [u8; 32],
    ) -> Result<crate::audit::AuditKey> {
        let audit_key = token.init_token(so_pin, label, !self.sessions_of(slot).is_empty())?;
        // The free slot is taken: make the next one.
        self.slots.write().rescan(&self.config, &self.handles)?;
        Ok(audit_key)
    }

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let token = self.token(slot)?;
        let read_write = flags & CKF_RW_SESSION != 0;
        // Hold the token while adding the session, so a concurrent SO login sees it.
        let state = token.ready_lazy()?;
        if !read_write && state.login == LoginState::SecurityOfficer {
            return Err(Error::SessionReadWriteSoExists);
        }
        let handle = self.new_session_handle();
        self.sessions.insert(Arc::new(Session::new(handle, slot, read_write, token.clone())));
        Ok(handle)
    }

    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.sessions.remove(handle).ok_or(Error::SessionHandleInvalid)?;
        self.after_session_closed(&session)
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.token(slot)?;
        let closed = self.sessions.remove_where(|s| s.slot_id == slot);
        for s in &closed {
            self.after_session_closed(s)?;
        }
        Ok(())
    }

    /// Session objects die with their session; the login ends with the last session.
    fn after_session_closed(&self, session: &Session) -> Result<()> {
        let token = &session.token;
        token.drop_session_objects(session.handle);
        if self.sessions_of(session.slot_id).is_empty() && token.login_state() != LoginState::Public {
            token.logout()?;
        }
        Ok(())
    }

    pub fn session_view(&self, handle: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, SessionView)> {
        let (session, token) = self.session_and_token(handle)?;
        Ok((session.slot_id, token.view(session.read_write)))
    }

    /// `C_Login`. A user PIN of the form `name:pin` whose name is one of the token's
    /// principals logs that principal in (the AWS CloudHSM convention); any other user PIN,
    /// colons included, is the token's user PIN.
    pub(super) fn login_unrecorded(
        &self,
        handle: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
    ) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        let role = match user_type {
            CKU_SO => PinRole::SecurityOfficer,
            CKU_USER => PinRole::User,
            CKU_CONTEXT_SPECIFIC => return self.approve(&session, &token, pin),
            _ => return Err(Error::UserTypeInvalid),
        };
        if role == PinRole::SecurityOfficer && self.sessions_of(session.slot_id).iter().any(|s| !s.read_write)
        {
            return Err(Error::SessionReadOnlyExists);
        }
        if role == PinRole::User
            && let Some(colon) = pin.iter().position(|b| *b == b':')
            && let Ok(name) = std::str::from_utf8(&pin[..colon])
            && token.has_principal(name)?
        {
            return token.login_principal(name, &pin[colon + 1..]);
        }
        token.login(role, pin)
    }

    /// `C_Login(CKU_CONTEXT_SPECIFIC, "name:pin")`: principal `name` approves the
    /// operations of this session that wait for approvers and that it may approve (see
    /// `crate::policy::approval`). Nothing waiting → `CKR_OPERATION_NOT_INITIALIZED`; an
    /// unknown name or a wrong PIN → `CKR_PIN_INCORRECT`; the caller itself, or a principal
    /// without `approve` on the key → `CKR_ACTION_PROHIBITED`; an approver already counted →
    /// `CKR_USER_ALREADY_LOGGED_IN`.
    fn approve(&self, session: &Session, token: &Token, pin: &[u8]) -> Result<()> {
        let mut ops = session.operations.lock();
        let mut waiting: Vec<&mut crate::policy::PendingApproval> =
            ops.approvals.values_mut().filter(|a| !a.is_met()).collect();
        if waiting.is_empty() {
            return Err(Error::OperationNotInitialized);
        }
        let colon = pin.iter().position(|b| *b == b':').ok_or(Error::PinIncorrect)?;
        let name = std::str::from_utf8(&pin[..colon]).map_err(|_| Error::PinIncorrect)?;
        token.approve(&mut waiting, name, &pin[colon + 1..])
    }

    /// `C_LoginUser`: the name `user` is the token's user; another name is one of its
    /// principals. An unknown name is refused like a wrong PIN, so that names cannot be probed.
    pub(super) fn login_user_unrecorded(
        &self,
        handle: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
        name: &[u8],
    ) -> Result<()> {
        if user_type != CKU_USER || name == b"user" {
            return self.login_unrecorded(handle, user_type, pin);
        }
        let token = self.token_of(handle)?;
        match std::str::from_utf8(name) {
            Ok(name) if token.has_principal(name)? => token.login_principal(name, pin),
            _ => Err(Error::PinIncorrect),
        }
    }

    /// The principals of a session's token, with their failure counts (SO only).
    pub fn principals(&self, handle: CK_SESSION_HANDLE) -> Result<Vec<(String, u32)>> {
        let (session, token) = self.session_and_token(handle)?;
        token.principals(token.view(session.read_write))
    }

    /// Adds a principal, or with `replace` sets a new PIN for one (SO only).
    pub(super) fn set_principal_unrecorded(
        &self,
        handle: CK_SESSION_HANDLE,
        name: &str,
        pin: &[u8],
        replace: bool,
    ) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        token.set_principal(token.view(session.read_write), name, pin, replace)
    }

    /// Validates and stores a policy document as the next version (SO only).
    pub(super) fn apply_policy_unrecorded(&self, handle: CK_SESSION_HANDLE, text: &str) -> Result<u64> {
        let (session, token) = self.session_and_token(handle)?;
        let (version, consumed) = token.apply_policy(token.view(session.read_write), text)?;
        token.record_consumed(handle, &consumed)?;
        Ok(version)
    }

    /// The token's policy: version and canonical JSON document, if one was applied.
    pub fn policy(&self, handle: CK_SESSION_HANDLE) -> Result<Option<(u64, String)>> {
        let token = self.token_of(handle)?;
        token.policy()
    }

    /// The audit key of the token of session `handle`, if someone is logged in on it.
    pub fn audit_key(&self, handle: CK_SESSION_HANDLE) -> Result<crate::audit::AuditKey> {
        let token = self.token_of(handle)?;
        token.audit_key()
    }

    /// Removes a principal (SO only).
    pub(super) fn remove_principal_unrecorded(&self, handle: CK_SESSION_HANDLE, name: &str) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        token.remove_principal(token.view(session.read_write), name)
    }

    pub(super) fn logout_unrecorded(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        token.logout()?;
        // Operations begun under the login end with it.
        for s in self.sessions_of(session.slot_id) {
            s.operations.lock().cancel_all();
        }
        Ok(())
    }

    pub(super) fn init_pin_unrecorded(&self, handle: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        token.init_pin(token.view(session.read_write), pin)
    }

    pub(super) fn set_pin_unrecorded(&self, handle: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let (session, token) = self.session_and_token(handle)?;
        token.set_pin(token.view(session.read_write), old, new)
    }

    /// `C_SessionCancel`: ends the operations named by `flags` (`CKF_ENCRYPT`, ...).
    ///
    /// Not recorded: it uses no key and grants nothing; it only ends operations whose
    /// `*Init` was recorded, as `C_*Final` or a `C_*Init` with a NULL mechanism do (which are
    /// not recorded either). An operation's record says it was begun, not how it ended.
    pub fn session_cancel(&self, handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.operations.lock();
        if flags & CKF_ENCRYPT != 0 {
            ops.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            ops.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            ops.digest = None;
        }
        if flags & CKF_SIGN != 0 {
            ops.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            ops.verify = None;
        }
        if flags & CKF_SIGN_RECOVER != 0 {
            ops.sign_recover = None;
        }
        if flags & CKF_VERIFY_RECOVER != 0 {
            ops.verify_recover = None;
        }
        if flags & CKF_MESSAGE_ENCRYPT != 0 {
            ops.message_encrypt = None;
        }
        if flags & CKF_MESSAGE_DECRYPT != 0 {
            ops.message_decrypt = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            ops.find = None;
        }
        Ok(())
    }
}
