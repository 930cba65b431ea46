//! Session management and login (PKCS#11 3.0 chapter 5.6): sessions opened and closed,
//! `C_Login`, `C_LoginUser` and `C_Logout`, approvals given by a context-specific login,
//! and `C_SessionCancel`.

use std::sync::Arc;

use cryptoki_sys::*;

use super::Module;
use super::audit::rv_of;
use crate::policy::{LoginState, SessionView};
use crate::session::{Operations, Session};
use crate::token::audit::Who;
use crate::token::{ContextPin, PinRefused, PinResult, PinRole, check_principal_name, principal_login_of};
use crate::{Error, Result};

impl Module {
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
        // Checked and ended under the token's lock, which `open_session` holds while it adds a
        // session: a session opened (and logged in) by another thread meanwhile is either seen
        // here, or opened after the logout; never logged out after its login succeeded.
        let mut state = token.lock();
        if state.login != LoginState::Public && self.sessions_of(session.slot_id).is_empty() {
            token.end_login(&mut state);
        }
        Ok(())
    }

    pub fn session_view(&self, handle: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, SessionView)> {
        let (session, token) = self.session_and_token(handle)?;
        Ok((session.slot_id, token.view(session.read_write)))
    }

    /// `C_Login`, recorded as `login` or `login_so` (and `pin_locked` after it when its PIN
    /// check locked the PIN). A user PIN of the form `name:pin` whose `name` is a well-formed
    /// principal name logs that principal in (the AWS CloudHSM convention), whether or not
    /// the token has it: an unknown one fails as a wrong PIN does, so the answer does not
    /// tell (the user PIN may not have that form, see `principal_login_of`); any other user
    /// PIN, colons included, is the token's user PIN. `CKU_CONTEXT_SPECIFIC` gives an
    /// approval (see [`Module::approve`]). A login whose audit cannot be armed, or whose
    /// record cannot be written, is undone (fail closed).
    pub fn login(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        if user_type == CKU_CONTEXT_SPECIFIC {
            return self.approve(h, pin);
        }
        let mut locked = None;
        let result = self
            .with_audit_armed(h, self.authenticate(h, user_type, pin))
            .map_err(|r| r.noting_lock(&mut locked));
        let tried = match user_type {
            CKU_USER => principal_login_of(pin).map_or(Who::User, |(name, _)| Who::Named(name.into())),
            other => who_of(other),
        };
        self.record_login(h, user_type, tried, result, locked)
    }

    /// `C_LoginUser`, recorded as `C_Login` is: the name `user` is the token's user, an empty
    /// name makes it `C_Login`; another name is one of its principals. An unknown name is
    /// refused like a wrong PIN, after as long, so that names cannot be probed.
    pub fn login_user(
        &self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
        name: &[u8],
    ) -> Result<()> {
        // No name (NULL or empty): the call is `C_Login`, `name:pin` convention included,
        // as clients that always call `C_LoginUser` expect.
        if name.is_empty() {
            return self.login(h, user_type, pin);
        }
        let mut locked = None;
        let logged_in = if user_type != CKU_USER || name == b"user" {
            self.authenticate(h, user_type, pin)
        } else {
            self.authenticate_principal(h, name, pin)
        };
        let result = self.with_audit_armed(h, logged_in).map_err(|r| r.noting_lock(&mut locked));
        let tried = match std::str::from_utf8(name) {
            _ if user_type != CKU_USER || name == b"user" => who_of(user_type),
            Ok(name) if check_principal_name(name).is_ok() => Who::Named(name.into()),
            // What cannot be a name is not copied into the record.
            _ => Who::Named(INVALID_NAME.into()),
        };
        self.record_login(h, user_type, tried, result, locked)
    }

    /// Records a login as `login` or `login_so`, then `pin_locked` when its PIN check
    /// locked a PIN. A refused login names whom it tried (`tried`), the same whether or not
    /// that principal exists; a login whose record cannot be written is undone.
    fn record_login(
        &self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        tried: Who,
        result: Result<()>,
        locked: Option<String>,
    ) -> Result<()> {
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        let mut context = token.audit_context(None);
        if result.is_err() {
            context.principal = tried;
            context.described_as = None;
        }
        if let Err(e) = token.record_with(h, login_name(user_type), context, None, rv_of(&result)) {
            if result.is_ok() {
                drop(self.end_login(h));
            }
            return Err(e);
        }
        self.record_pin_locked(h, locked)?;
        result
    }

    /// The login of `user_type` on the token of session `h`, after the session rules that
    /// need the session table (`CKR_SESSION_READ_ONLY_EXISTS`).
    fn authenticate(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> PinResult<()> {
        let (session, token) = self.session_and_token(h)?;
        let role = match user_type {
            CKU_SO => PinRole::SecurityOfficer,
            CKU_USER => PinRole::User,
            CKU_CONTEXT_SPECIFIC => return self.context_login(&session, pin).map(drop),
            _ => return Err(Error::UserTypeInvalid.into()),
        };
        if role == PinRole::SecurityOfficer && self.sessions_of(session.slot_id).iter().any(|s| !s.read_write)
        {
            return Err(Error::SessionReadOnlyExists.into());
        }
        if role == PinRole::User
            && let Some((name, pin)) = principal_login_of(pin)
        {
            return token.login_principal(name, pin);
        }
        token.login(role, pin)
    }

    /// The login of principal `name`: an unknown name fails as a wrong PIN does, after as
    /// long (see `Token::login_principal`); one that is no principal name cannot exist.
    fn authenticate_principal(&self, h: CK_SESSION_HANDLE, name: &[u8], pin: &[u8]) -> PinResult<()> {
        let token = self.token_of(h)?;
        match std::str::from_utf8(name) {
            Ok(name) if check_principal_name(name).is_ok() => token.login_principal(name, pin),
            _ => Err(Error::PinIncorrect.into()),
        }
    }

    /// After a login: the audit file takes the token's audit key; a login whose audit
    /// cannot be armed is undone (fail closed).
    fn with_audit_armed(&self, h: CK_SESSION_HANDLE, login: PinResult<()>) -> PinResult<()> {
        login?;
        let token = self.token_of(h)?;
        Ok(token.arm_audit().inspect_err(|_| drop(self.end_login(h)))?)
    }

    /// `C_Login(CKU_CONTEXT_SPECIFIC, "name:pin")`: principal `name` approves the
    /// operations of this session that wait for approvers. A given approval is recorded as
    /// `approve` by the approver, under the session's login; a refused one as
    /// `login_context_specific` by the session's principal, without the name (what was typed
    /// before a colon may have been a PIN).
    fn approve(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let mut locked = None;
        let result = self
            .session(h)
            .map_err(PinRefused::from)
            .and_then(|session| self.context_login(&session, pin))
            .map_err(|r| r.noting_lock(&mut locked));
        let recorded = self.token_of(h).and_then(|token| {
            let mut context = token.audit_context(None);
            let operation = match &result {
                Ok(ContextPin::Approval) => {
                    let name = pin.split(|b| *b == b':').next().unwrap_or_default();
                    context.principal = Who::Named(String::from_utf8_lossy(name).into());
                    context.described_as = None;
                    "approve"
                }
                // The login's own PIN for a CKA_ALWAYS_AUTHENTICATE key, or a refusal.
                Ok(ContextPin::Reauthenticated) | Err(_) => "login_context_specific",
            };
            token.record_with(h, operation, context, None, rv_of(&result))
        });
        self.record_pin_locked(h, locked)?;
        recorded.and(result.map(drop))
    }

    /// A context-specific login: the login's own PIN for the operations of `session` begun on
    /// a key with `CKA_ALWAYS_AUTHENTICATE` (`Token::reauthenticate`, which tells it from an
    /// approval), else an approval of the operations waiting for approvers.
    fn context_login(&self, session: &Session, pin: &[u8]) -> PinResult<ContextPin> {
        if !self.reauthenticate(session, pin)? {
            self.approve_waiting(session, pin)?;
            return Ok(ContextPin::Approval);
        }
        Ok(ContextPin::Reauthenticated)
    }

    /// Counts principal `name` of `pin` (`name:pin`) as an approver of the operations of
    /// `session` that wait for approvers and that it may approve (see
    /// `crate::policy::approval`). Nothing waiting → `CKR_OPERATION_NOT_INITIALIZED`; the
    /// caller itself, or a name the policy does not grant `approve` on the key, whether or
    /// not the token has it → `CKR_ACTION_PROHIBITED`; a wrong PIN, or an entitled name the
    /// token does not have → `CKR_PIN_INCORRECT`; an approver already counted →
    /// `CKR_USER_ALREADY_LOGGED_IN`.
    fn approve_waiting(&self, session: &Session, pin: &[u8]) -> PinResult<()> {
        let mut ops = session.operations.lock();
        let mut waiting: Vec<&mut crate::policy::PendingApproval> =
            ops.approvals.values_mut().filter(|a| !a.is_met()).collect();
        if waiting.is_empty() {
            return Err(Error::OperationNotInitialized.into());
        }
        let colon = pin.iter().position(|b| *b == b':').ok_or(Error::PinIncorrect)?;
        let name = std::str::from_utf8(&pin[..colon]).map_err(|_| Error::PinIncorrect)?;
        session.token.approve(&mut waiting, name, &pin[colon + 1..])
    }

    /// `C_Logout`, recorded as `logout` naming who logged out.
    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        // Described before, so that the record still names who logged out.
        let token = self.token_of(h)?;
        let context = token.audit_context(None);
        let result = self.end_login(h);
        token.record_with(h, "logout", context, None, rv_of(&result))?;
        result
    }

    /// Logs the token of session `h` out; the operations begun under the login, in every
    /// session of the slot, end with it.
    fn end_login(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (session, token) = self.session_and_token(h)?;
        token.logout()?;
        for s in self.sessions_of(session.slot_id) {
            s.operations.lock().cancel_all();
        }
        Ok(())
    }

    /// `C_SessionCancel`: ends the operations named by `flags` (`CKF_ENCRYPT`, ...).
    ///
    /// Not recorded: it uses no key and grants nothing; it only ends operations whose
    /// `*Init` was recorded, as `C_*Final` or a `C_*Init` with a NULL mechanism do (which are
    /// not recorded either). An operation's record says it was begun, not how it ended.
    pub fn session_cancel(&self, handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        // Each flag and the operation it names.
        let named: [(CK_FLAGS, EndOperation); 10] = [
            (CKF_ENCRYPT, |o| o.encrypt = None),
            (CKF_DECRYPT, |o| o.decrypt = None),
            (CKF_DIGEST, |o| o.digest = None),
            (CKF_SIGN, |o| o.sign = None),
            (CKF_VERIFY, |o| o.verify = None),
            (CKF_SIGN_RECOVER, |o| o.sign_recover = None),
            (CKF_VERIFY_RECOVER, |o| o.verify_recover = None),
            (CKF_MESSAGE_ENCRYPT, |o| o.message_encrypt = None),
            (CKF_MESSAGE_DECRYPT, |o| o.message_decrypt = None),
            (CKF_FIND_OBJECTS, |o| o.find = None),
        ];
        let session = self.session(handle)?;
        let mut ops = session.operations.lock();
        for (flag, end) in named {
            if flags & flag != 0 {
                end(&mut ops);
            }
        }
        Ok(())
    }
}

/// Ends one kind of operation of a session.
type EndOperation = fn(&mut Operations);

/// How a refused login's record names a `C_LoginUser` name that is no principal name.
const INVALID_NAME: &str = "(not a principal name)";

/// Whom a login of `user_type` without a principal's name tries.
fn who_of(user_type: CK_USER_TYPE) -> Who {
    match user_type {
        CKU_SO => Who::So,
        CKU_USER => Who::User,
        _ => Who::Nobody,
    }
}

fn login_name(user_type: CK_USER_TYPE) -> &'static str {
    match user_type {
        CKU_SO => "login_so",
        _ => "login",
    }
}
