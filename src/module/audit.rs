//! The module's side of the audit record (`crate::audit`): which calls are recorded, with
//! what, and what happens when a record cannot be written.
//!
//! A call is recorded after it ran, with the `CK_RV` it returns, the principal logged in,
//! the session, the key (unique id, label, version of the hierarchy) and the mechanism. A
//! refused call is recorded like a successful one. If the record cannot be written the call
//! fails with `CKR_DEVICE_ERROR` (fail closed): an operation begun by a `*Init` is ended
//! again, so nothing can be done under a call that left no record. A change to the token
//! (a key generated, an object destroyed) has already been committed when its record fails;
//! the caller still sees the error.

use std::sync::Arc;

use cryptoki_sys::{
    CK_INVALID_HANDLE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_USER_TYPE,
    CKA_LABEL, CKA_UNIQUE_ID, CKU_CONTEXT_SPECIFIC, CKU_SO,
};

use super::Module;
use super::crypto::CipherKind;
use super::handles::ObjectRef;
use super::token::{Token, TokenState};
use crate::audit::{AuditLog, OpenOptions, Record};
use crate::mechanism::Mechanism;
use crate::object::{Attribute, Object};
use crate::policy::LoginState;
use crate::session::{Output, OutputBuffer};
use crate::vendor::CKA_ECM_KEY_VERSION;
use crate::{Error, Result};

/// Who did it and to which key, as the record names them. Shared, not copied: this is on
/// the path of every operation.
struct Context {
    principal: Who,
    key: Option<Arc<KeyNames>>,
}

/// How a record names a key (never its value).
struct KeyNames {
    uid: String,
    label: String,
    /// The key's version in the hierarchy, if it has one.
    version: Option<u32>,
}

impl KeyNames {
    fn of(object: &Object) -> KeyNames {
        let text = |a| object.get(a).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        let version = object
            .get(CKA_ECM_KEY_VERSION)
            .and_then(|v| v.try_into().ok())
            .map(|b: [u8; 8]| u64::from_ne_bytes(b) as u32);
        KeyNames { uid: text(CKA_UNIQUE_ID), label: text(CKA_LABEL), version }
    }
}

impl Context {
    /// The key's version in the hierarchy, if it has one.
    fn key_version(&self) -> Option<u32> {
        self.key.as_ref().and_then(|k| k.version)
    }
}

/// The last context a thread described, with what it was described from: the trail (each
/// has its own number), the key's handle and the token's version (`Token::version`, bumped by
/// every change to the token's state, logins included). While all three are unchanged the
/// description is too, and the thread's next record of an operation on that key takes no
/// lock and looks nothing up.
struct Described {
    trail: u64,
    handle: Option<CK_OBJECT_HANDLE>,
    version: u64,
    principal: Who,
    key: Option<Arc<KeyNames>>,
}

thread_local! {
    static DESCRIBED: std::cell::RefCell<Option<Described>> = const { std::cell::RefCell::new(None) };
}

/// The principal of a record.
#[derive(Clone)]
enum Who {
    Nobody,
    So,
    User,
    Named(Arc<str>),
}

impl Who {
    fn as_str(&self) -> &str {
        match self {
            Who::Nobody => "",
            Who::So => "so",
            Who::User => "user",
            Who::Named(name) => name,
        }
    }
}

impl Token {
    /// The token's audit file, opened on first use; `None` when auditing is off.
    fn audit_log(&self) -> Result<Option<&AuditLog>> {
        if !self.config.audit {
            return Ok(None);
        }
        if let Some(log) = self.audit_log.get() {
            return Ok(Some(log));
        }
        let options = OpenOptions {
            sync: self.config.audit_sync,
            threads: self.config.may_create_threads,
            segment_bytes: self.config.audit_segment_bytes,
        };
        let log =
            AuditLog::open_with(&crate::audit::path_for(&self.config.token_dir, self.slot_id), options)?;
        // Another thread may have opened it meanwhile; either handle continues the chain.
        Ok(Some(self.audit_log.get_or_init(|| log)))
    }

    /// After a login: the audit file takes the token's audit key, so that this record and
    /// every later one of the process are authenticated (kept after a logout: it is not the
    /// token key, and it only authenticates records).
    fn arm_audit(&self) -> Result<()> {
        if let Some(log) = self.audit_log()?
            && !log.has_key()
        {
            log.set_key(Some(self.audit_key()?));
        }
        Ok(())
    }

    /// The object of `handle` on this token, whoever may see it (the record only names it).
    fn object_for_audit(&self, state: &TokenState, handle: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        match self.handles.read().resolve(handle)? {
            ObjectRef::Token { slot, id } if slot == self.slot_id => state.objects.get(&id).cloned(),
            ObjectRef::Session { slot, id } if slot == self.slot_id => {
                state.session_objects.get(&id).map(|s| s.object.clone())
            }
            _ => None,
        }
    }

    fn audit_context(&self, key: Option<CK_OBJECT_HANDLE>) -> Context {
        let trail = self.audit_log.get().map(AuditLog::id);
        // Read before the lock: a change after it bumps the version again.
        let version = self.version();
        let remembered = DESCRIBED.with(|d| {
            d.borrow().as_ref().and_then(|d| {
                (Some(d.trail) == trail && d.handle == key && d.version == version)
                    .then(|| Context { principal: d.principal.clone(), key: d.key.clone() })
            })
        });
        if let Some(context) = remembered {
            return context;
        }
        let state = self.lock();
        let principal = match (state.login, &state.principal) {
            (LoginState::Public, _) => Who::Nobody,
            (LoginState::SecurityOfficer, _) => Who::So,
            (LoginState::User, Some(name)) => Who::Named(name.clone()),
            (LoginState::User, None) => Who::User,
        };
        let names = key.and_then(|h| self.object_for_audit(&state, h)).map(|o| Arc::new(KeyNames::of(&o)));
        drop(state);
        if let Some(trail) = trail {
            let described =
                Described { trail, handle: key, version, principal: principal.clone(), key: names.clone() };
            DESCRIBED.with(|d| *d.borrow_mut() = Some(described));
        }
        Context { principal, key: names }
    }

    /// Records one call on this token.
    pub(super) fn record(
        &self,
        session: CK_SESSION_HANDLE,
        operation: &str,
        key: Option<CK_OBJECT_HANDLE>,
        mechanism: Option<CK_MECHANISM_TYPE>,
        rv: CK_RV,
    ) -> Result<()> {
        if !self.config.audit {
            return Ok(());
        }
        let context = self.audit_context(key.filter(|h| *h != CK_INVALID_HANDLE));
        self.record_with(session, operation, context, mechanism, rv)
    }

    /// As [`Token::record`], with the principal and key already described.
    fn record_with(
        &self,
        session: CK_SESSION_HANDLE,
        operation: &str,
        context: Context,
        mechanism: Option<CK_MECHANISM_TYPE>,
        rv: CK_RV,
    ) -> Result<()> {
        let Some(log) = self.audit_log()? else {
            return Ok(());
        };
        let key = context.key.as_deref();
        let record = Record {
            principal: context.principal.as_str(),
            session,
            key_uid: key.map(|k| k.uid.as_str()),
            key_label: key.map(|k| k.label.as_str()),
            key_version: key.and_then(|k| k.version),
            mechanism,
            ..Record::new(operation, rv)
        };
        log.append(&record).map(drop).map_err(|e| {
            crate::error::log_fault("audit record", &e);
            Error::Device("the audit record could not be written".into())
        })
    }
}

/// The `CK_RV` of a result.
fn rv_of<T>(result: &Result<T>) -> CK_RV {
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
        let Ok((_, token)) = self.session_and_token(h) else {
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
        let Ok((_, token)) = self.session_and_token(h) else {
            return result;
        };
        let key = result.as_ref().ok().copied();
        token.record(h, operation, key, mechanism, rv_of(&result))?;
        result
    }
}

/// The recorded entry points: each runs its `*_unrecorded` body (in `crypto.rs` or
/// `general.rs`) and records it under the name the export and the README use.
impl Module {
    pub fn login(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        if user_type == CKU_CONTEXT_SPECIFIC {
            return self.approve_recorded(h, pin);
        }
        self.audited(
            h,
            login_name(user_type),
            None,
            None,
            || self.armed_login(h, || self.login_unrecorded(h, user_type, pin)),
            || drop(self.logout_unrecorded(h)),
        )
    }

    pub fn login_user(
        &self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
        name: &[u8],
    ) -> Result<()> {
        self.audited(
            h,
            login_name(user_type),
            None,
            None,
            || self.armed_login(h, || self.login_user_unrecorded(h, user_type, pin, name)),
            || drop(self.logout_unrecorded(h)),
        )
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        // Described before, so that the record still names who logged out.
        let (_, token) = self.session_and_token(h)?;
        let context = token.audit_context(None);
        let result = self.logout_unrecorded(h);
        token.record_with(h, "logout", context, None, rv_of(&result))?;
        result
    }

    pub fn set_principal(&self, h: CK_SESSION_HANDLE, name: &str, pin: &[u8], replace: bool) -> Result<()> {
        let operation = if replace { "principal_reset_pin" } else { "principal_add" };
        self.audited(h, operation, None, None, || self.set_principal_unrecorded(h, name, pin, replace), || {})
    }

    pub fn remove_principal(&self, h: CK_SESSION_HANDLE, name: &str) -> Result<()> {
        self.audited(h, "principal_remove", None, None, || self.remove_principal_unrecorded(h, name), || {})
    }

    pub fn apply_policy(&self, h: CK_SESSION_HANDLE, text: &str) -> Result<u64> {
        self.audited(h, "policy_apply", None, None, || self.apply_policy_unrecorded(h, text), || {})
    }

    pub fn create_object(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "create", None, || self.create_object_unrecorded(h, template))
    }

    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "copy", None, || self.copy_object_unrecorded(h, object, template))
    }

    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
        // The record names the object as it was, so it is described before it goes.
        let (_, token) = self.session_and_token(h)?;
        let context = token.audit_context(Some(object));
        let result = self.destroy_object_unrecorded(h, object);
        token.record_with(h, "destroy", context, None, rv_of(&result))?;
        result
    }

    pub fn set_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<()> {
        self.audited(
            h,
            "set_attributes",
            Some(object),
            None,
            || self.set_attributes_unrecorded(h, object, template),
            || {},
        )
    }

    pub fn generate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let result = self.generate_key_unrecorded(h, mechanism, template);
        let (_, token) = self.session_and_token(h)?;
        let context = token.audit_context(result.as_ref().ok().copied());
        // A later version of a family of the hierarchy is its rotation.
        let operation = if context.key_version().is_some_and(|v| v > 1) { "rotate" } else { "generate" };
        token.record_with(h, operation, context, Some(mechanism.kind), rv_of(&result))?;
        result
    }

    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let result = self.generate_key_pair_unrecorded(h, mechanism, public_template, private_template);
        let (_, token) = self.session_and_token(h)?;
        let private = result.as_ref().ok().map(|(_, private)| *private);
        token.record(h, "generate_key_pair", private, Some(mechanism.kind), rv_of(&result))?;
        result
    }

    pub fn derive_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "derive", Some(mechanism.kind), || {
            self.derive_key_unrecorded(h, mechanism, base, template)
        })
    }

    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        self.audited(
            h,
            "wrap",
            Some(key),
            Some(mechanism.kind),
            || self.wrap_key_unrecorded(h, mechanism, wrapping, key, buffer),
            || {},
        )
    }

    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "unwrap", Some(mechanism.kind), || {
            self.unwrap_key_unrecorded(h, mechanism, unwrapping, wrapped, template)
        })
    }

    pub fn cipher_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.audited_init(h, kind.name(), mechanism, key, |m| self.cipher_init_unrecorded(h, kind, m, key))
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.audited_init(h, "sign", mechanism, key, |m| self.sign_init_unrecorded(h, m, key))
    }

    pub fn verify_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.audited_init(h, "verify", mechanism, key, |m| self.verify_init_unrecorded(h, m, key))
    }

    /// A `*Init`: `init(Some(m))` begins the operation and is recorded; `init(None)` ends
    /// one (not recorded), which is also how a begun operation is undone when its record
    /// fails.
    fn audited_init(
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
}

impl Module {
    /// An approval (`C_Login(CKU_CONTEXT_SPECIFIC, "name:pin")`): a given one is recorded as
    /// `approve` by the approver, under the session's login; a refused one as
    /// `login_context_specific` by the session's principal, without the name (what was typed
    /// before a colon may have been a PIN).
    fn approve_recorded(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let result = self.login_unrecorded(h, CKU_CONTEXT_SPECIFIC, pin);
        let (_, token) = self.session_and_token(h)?;
        let mut context = token.audit_context(None);
        let operation = match &result {
            Ok(()) => {
                let name = pin.split(|b| *b == b':').next().unwrap_or_default();
                context.principal = Who::Named(String::from_utf8_lossy(name).into());
                "approve"
            }
            Err(_) => "login_context_specific",
        };
        token.record_with(h, operation, context, None, rv_of(&result))?;
        result
    }
}

impl Module {
    /// Runs `login`, then arms the audit file with the token's key; a login whose audit
    /// cannot be armed is undone (fail closed).
    fn armed_login(&self, h: CK_SESSION_HANDLE, login: impl FnOnce() -> Result<()>) -> Result<()> {
        login()?;
        let (_, token) = self.session_and_token(h)?;
        token.arm_audit().inspect_err(|_| drop(self.logout_unrecorded(h)))
    }
}

fn login_name(user_type: CK_USER_TYPE) -> &'static str {
    match user_type {
        CKU_SO => "login_so",
        _ => "login",
    }
}

/// Approvals recorded ahead (`approvals.rs`): each one given or refused is recorded as
/// `approval_give` by the approver (the session's login), naming the key it is bound to;
/// each one used up as `approval_consume` by its approver, in the session of the operation
/// that used it (recorded just before that operation's own record); a revocation as
/// `approval_revoke` by whoever revoked it.
impl Token {
    /// Records the approvals an operation of session `session` used up, one record each.
    pub(super) fn record_consumed(
        &self,
        session: CK_SESSION_HANDLE,
        consumed: &[crate::store::ApprovalRecord],
    ) -> Result<()> {
        for a in consumed {
            self.record_approval(
                session,
                "approval_consume",
                Some(a.approver.clone()),
                Some(a),
                cryptoki_sys::CKR_OK,
            )?;
        }
        Ok(())
    }

    /// One approval record: by `principal` (else the session's login), on `approval`'s key.
    fn record_approval(
        &self,
        session: CK_SESSION_HANDLE,
        operation: &str,
        principal: Option<String>,
        approval: Option<&crate::store::ApprovalRecord>,
        rv: CK_RV,
    ) -> Result<()> {
        if !self.config.audit {
            return Ok(());
        }
        let mut context = self.audit_context(None);
        if let Some(p) = principal {
            context.principal = Who::Named(p.into());
        }
        if let Some(a) = approval {
            context.key =
                Some(Arc::new(KeyNames { uid: a.key.clone(), label: a.key_label.clone(), version: None }));
        }
        self.record_with(session, operation, context, None, rv)
    }
}

impl Module {
    /// Records an approval by the principal logged in on session `h`, and audits it, given
    /// or refused (a refused one names the key when the request named one it may see).
    pub fn approve_ahead(
        &self,
        h: CK_SESSION_HANDLE,
        request: &super::ApprovalRequest,
    ) -> Result<crate::store::ApprovalRecord> {
        let result = self.approve_ahead_unrecorded(h, request);
        let (_, token) = self.session_and_token(h)?;
        match &result {
            Ok(a) => token.record_approval(h, "approval_give", None, Some(a), cryptoki_sys::CKR_OK)?,
            Err(e) => {
                let key = match request.target {
                    super::ApprovalTarget::Key(handle) => Some(handle),
                    super::ApprovalTarget::Policy(_) => None,
                };
                token.record(h, "approval_give", key, None, e.ck_rv())?;
            }
        }
        result
    }

    /// Revokes a pending approval (the SO any, an approver its own), audited.
    pub fn revoke_approval(&self, h: CK_SESSION_HANDLE, id: i64) -> Result<crate::store::ApprovalRecord> {
        let result = self.revoke_approval_unrecorded(h, id);
        let (_, token) = self.session_and_token(h)?;
        token.record_approval(h, "approval_revoke", None, result.as_ref().ok(), rv_of(&result))?;
        result
    }
}
