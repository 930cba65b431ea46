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
    /// Set when this principal and key were described together before (see [`Described`]):
    /// the records' `described_as`.
    described_as: Option<u64>,
}

/// How a record names a key (never its value).
struct KeyNames {
    uid: String,
    label: String,
    /// The key's version in the hierarchy, if it has one.
    version: Option<u32>,
    /// Whether the object is a key at all (records of reads name keys only), and one of the
    /// envelope hierarchy (its destruction is a retirement).
    is_key: bool,
    in_hierarchy: bool,
}

impl KeyNames {
    fn of(object: &Object) -> KeyNames {
        let text = |a| object.get(a).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        let version = object
            .get(CKA_ECM_KEY_VERSION)
            .and_then(|v| v.try_into().ok())
            .map(|b: [u8; 8]| u64::from_ne_bytes(b) as u32);
        KeyNames {
            uid: text(CKA_UNIQUE_ID),
            label: text(CKA_LABEL),
            version,
            is_key: object.profile().is_key(),
            in_hierarchy: object.get(crate::vendor::CKA_ECM_TIER).is_some(),
        }
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
    /// Unique in the process ([`NEXT_DESCRIPTION`]).
    id: u64,
    trail: u64,
    handle: Option<CK_OBJECT_HANDLE>,
    version: u64,
    principal: Who,
    key: Option<Arc<KeyNames>>,
}

static NEXT_DESCRIPTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
        if !self.config.audit {
            // Auditing off: said again, authenticated now that the key is here.
            let key = self.audit_key()?;
            return crate::audit::switch::note_audit_off(&self.config.token_dir, self.slot_id, Some(&key))
                .map_err(audit_unwritable);
        }
        if let Some(log) = self.audit_log()?
            && !log.has_key()
        {
            log.set_key(Some(self.audit_key()?));
        }
        Ok(())
    }

    /// The object of `handle` on this token, whoever may see it (the record only names it).
    fn object_for_audit<'s>(&self, state: &'s TokenState, handle: CK_OBJECT_HANDLE) -> Option<&'s Object> {
        match self.handles.read().resolve(handle)? {
            ObjectRef::Token { slot, id } if slot == self.slot_id => state.objects.get(&id).map(|o| &**o),
            ObjectRef::Session { slot, id } if slot == self.slot_id => {
                state.session_objects.get(&id).map(|s| &*s.object)
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
                (Some(d.trail) == trail && d.handle == key && d.version == version).then(|| Context {
                    principal: d.principal.clone(),
                    key: d.key.clone(),
                    described_as: Some(d.id),
                })
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
        let names = key.and_then(|h| self.object_for_audit(&state, h)).map(|o| Arc::new(KeyNames::of(o)));
        drop(state);
        let Some(trail) = trail else {
            return Context { principal, key: names, described_as: None };
        };
        let id = NEXT_DESCRIPTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let described =
            Described { id, trail, handle: key, version, principal: principal.clone(), key: names.clone() };
        DESCRIBED.with(|d| *d.borrow_mut() = Some(described));
        Context { principal, key: names, described_as: Some(id) }
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
            // Auditing off: the register says so, once per process (crate::audit::switch).
            return crate::audit::switch::note_audit_off(&self.config.token_dir, self.slot_id, None)
                .map_err(audit_unwritable);
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
            described_as: context.described_as,
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
}

/// The recorded entry points: each runs its `*_unrecorded` body (in `crypto.rs` or
/// `general.rs`) and records it under the name the export and the README use.
impl Module {
    pub fn login(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        if user_type == CKU_CONTEXT_SPECIFIC {
            return self.pin_checked(h, || self.approve_recorded(h, pin));
        }
        self.pin_checked(h, || {
            self.audited(
                h,
                login_name(user_type),
                None,
                None,
                || self.armed_login(h, || self.login_unrecorded(h, user_type, pin)),
                || drop(self.logout_unrecorded(h)),
            )
        })
    }

    pub fn login_user(
        &self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: &[u8],
        name: &[u8],
    ) -> Result<()> {
        self.pin_checked(h, || {
            self.audited(
                h,
                login_name(user_type),
                None,
                None,
                || self.armed_login(h, || self.login_user_unrecorded(h, user_type, pin, name)),
                || drop(self.logout_unrecorded(h)),
            )
        })
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        // Described before, so that the record still names who logged out.
        let token = self.token_of(h)?;
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
        let token = self.token_of(h)?;
        let context = token.audit_context(Some(object));
        let result = self.destroy_object_unrecorded(h, object);
        let operation = destroy_name(&context);
        token.record_with(h, operation, context, None, rv_of(&result))?;
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
        let token = self.token_of(h)?;
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
        let token = self.token_of(h)?;
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
        let token = self.token_of(h)?;
        let mut context = token.audit_context(None);
        let operation = match &result {
            Ok(()) => {
                let name = pin.split(|b| *b == b':').next().unwrap_or_default();
                context.principal = Who::Named(String::from_utf8_lossy(name).into());
                context.described_as = None;
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
        let token = self.token_of(h)?;
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
            context.described_as = None;
        }
        if let Some(a) = approval {
            context.described_as = None;
            context.key = Some(Arc::new(KeyNames {
                uid: a.key.clone(),
                label: a.key_label.clone(),
                version: None,
                is_key: true,
                in_hierarchy: false,
            }));
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
        let token = self.token_of(h)?;
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
        let token = self.token_of(h)?;
        token.record_approval(h, "approval_revoke", None, result.as_ref().ok(), rv_of(&result))?;
        result
    }
}

/// Searches and attribute reads (issue 5): `find` at `C_FindObjectsInit`, `read` at
/// `C_GetAttributeValue` on a key. Both are hot for some applications, so they cost one
/// record each and nothing else (no store access beyond the call's own).
impl Module {
    /// `C_FindObjectsInit`, recorded as `find` without a key. One record per search, not
    /// per object found: the search is the caller's act (its template decides what it may
    /// learn), the handles it returns are only what the policy already lets it see, and an
    /// application listing a token of thousands of keys would otherwise write thousands of
    /// records for one question. Reading a found key's attributes is recorded apart
    /// (`read`), naming it.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
        self.audited(
            h,
            "find",
            None,
            None,
            || self.find_init_unrecorded(h, template),
            || drop(self.find_final(h)),
        )
    }

    /// `C_GetAttributeValue`, recorded as `read` when the object is a key (unique id, label,
    /// version), refused reads included: a key the login may not see (the handle is invalid
    /// for it), and a value it may not read (`CKR_ATTRIBUTE_SENSITIVE`, or
    /// `CKR_ATTRIBUTE_TYPE_INVALID` for an attribute the key lacks; sensitive first, as the
    /// export answers). A buffer too small is the caller sizing its buffer, not a refusal:
    /// the core does not see it, and it is recorded with the read's own result. Reads of
    /// other objects (certificates, data) are not key operations and are not recorded.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        kinds: &[cryptoki_sys::CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<crate::object::AttributeRead>> {
        let result = self.get_attributes_unrecorded(h, object, kinds);
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        if !token.config.audit {
            return result;
        }
        let context = token.audit_context(Some(object));
        if !context.key.as_ref().is_some_and(|k| k.is_key) {
            return result;
        }
        let rv = match &result {
            Ok(reads) => reads_rv(reads),
            Err(e) => e.ck_rv(),
        };
        token.record_with(h, "read", context, None, rv)?;
        result
    }
}

/// The `CK_RV` of a `C_GetAttributeValue` whose attributes read as `reads`, before the
/// caller's buffers are seen.
fn reads_rv(reads: &[crate::object::AttributeRead]) -> CK_RV {
    use crate::object::AttributeRead::{Invalid, Sensitive};
    if reads.iter().any(|r| matches!(r, Sensitive)) {
        cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE
    } else if reads.iter().any(|r| matches!(r, Invalid)) {
        cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID
    } else {
        cryptoki_sys::CKR_OK
    }
}

/// Recovery and message-based operations: recorded at their `*Init`, like the others.
impl Module {
    /// `C_SignRecoverInit`/`C_VerifyRecoverInit`, recorded as `sign_recover` and
    /// `verify_recover` (the policy counts them as `sign` and `verify`; the record keeps the
    /// difference, since what is recovered from a signature is data).
    pub fn recover_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: super::crypto::OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let operation = match kind {
            super::crypto::OperationKind::SignRecover => "sign_recover",
            _ => "verify_recover",
        };
        self.audited_init(h, operation, mechanism, key, |m| self.recover_init_unrecorded(h, kind, m, key))
    }

    /// `C_MessageEncryptInit`/`C_MessageDecryptInit`, recorded as `encrypt`/`decrypt`
    /// naming key and mechanism. The messages of the operation (`C_EncryptMessage`,
    /// `C_DecryptMessage`) are not recorded one by one, as the steps of `C_EncryptInit`'s
    /// operation are not: the key, the mechanism, the principal and the permission are all
    /// settled at the init, and a record per message would double the cost of each small
    /// message for nothing the init's record does not say.
    pub fn message_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.audited(
            h,
            kind.name(),
            Some(key),
            Some(mechanism.kind),
            || self.message_init_unrecorded(h, kind, mechanism, key),
            || drop(self.message_final(h, kind)),
        )
    }
}

/// PINs and the token itself: `set_pin`, `init_pin`, `init_token`, and `pin_locked` when a
/// failed PIN check locks a PIN.
impl Module {
    /// `C_SetPIN`, recorded as `set_pin` by the session's login: the SO changes its own
    /// PIN, anyone else the token user's (a public session included, where the principal is
    /// empty). A wrong old PIN counts toward that PIN's lockout.
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        self.pin_checked(h, || {
            self.audited(h, "set_pin", None, None, || self.set_pin_unrecorded(h, old, new), || {})
        })
    }

    /// `C_InitPIN`, recorded as `init_pin` by the session's login (the SO, or a refusal).
    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        self.audited(h, "init_pin", None, None, || self.init_pin_unrecorded(h, pin), || {})
    }

    /// `C_InitToken`, recorded as `init_token` in the slot's trail, without a session (the
    /// call has none): by `so` when done (its PIN was set, or checked), else by nobody.
    ///
    /// A re-initialization must not let whoever knows the SO PIN erase the record of what
    /// was done with the old token: its trail is archived (`AuditLog::archive`), not
    /// deleted. The record is written after the call, like every other, so it says how the
    /// call ended; a done initialization makes a new token key, and this record, first of
    /// the new trail, and the process's later ones are authenticated under the new token's
    /// audit key (the old trail's MACs are under a key that no longer exists).
    pub fn init_token(&self, slot: cryptoki_sys::CK_SLOT_ID, so_pin: &[u8], label: [u8; 32]) -> Result<()> {
        let token = self.token(slot)?;
        drop(super::token::take_pin_locked());
        let result = self.init_token_unrecorded(slot, &token, so_pin, label);
        let locked = super::token::take_pin_locked();
        if !token.config.audit {
            return result.map(drop);
        }
        let principal = match &result {
            Ok(audit_key) => {
                token.rearm_audit(audit_key)?;
                Who::So
            }
            Err(_) => Who::Nobody,
        };
        let context = Context { principal, key: None, described_as: None };
        token.record_with(0, "init_token", context, None, rv_of(&result))?;
        token.record_pin_locked(0, locked)?;
        result.map(drop)
    }

    /// Runs `call`, a call that checks a PIN and records itself, then records `pin_locked`
    /// if that check locked a PIN (see `token::take_pin_locked`), after the call's own
    /// record. The call failed in that case, whatever the record does.
    fn pin_checked<T>(&self, h: CK_SESSION_HANDLE, call: impl FnOnce() -> Result<T>) -> Result<T> {
        drop(super::token::take_pin_locked());
        let result = call();
        let locked = super::token::take_pin_locked();
        if locked.is_some()
            && let Ok(token) = self.token_of(h)
        {
            token.record_pin_locked(h, locked)?;
        }
        result
    }
}

impl Token {
    /// After `C_InitToken`: the audit file takes the new token's audit key, replacing any
    /// key of the token as it was.
    fn rearm_audit(&self, key: &crate::audit::AuditKey) -> Result<()> {
        if let Some(log) = self.audit_log()? {
            // The old token's records keep their trail, whose MACs only its key checks.
            log.archive()?;
            log.set_key(Some(key.clone()));
        }
        Ok(())
    }

    /// `pin_locked`: the PIN of `owner` (`so`, `user` or a principal's name) was locked by a
    /// failed check in session `session`. The record's principal is whose PIN it is (not
    /// the session's login, which is usually nobody), with `CKR_PIN_LOCKED`.
    fn record_pin_locked(&self, session: CK_SESSION_HANDLE, owner: Option<String>) -> Result<()> {
        let Some(owner) = owner else {
            return Ok(());
        };
        if !self.config.audit {
            return Ok(());
        }
        let principal = match owner.as_str() {
            "so" => Who::So,
            "user" => Who::User,
            name => Who::Named(name.into()),
        };
        let context = Context { principal, key: None, described_as: None };
        self.record_with(session, "pin_locked", context, None, cryptoki_sys::CKR_PIN_LOCKED)
    }
}

/// Retirement: the destruction of a key of the envelope hierarchy.
fn destroy_name(context: &Context) -> &'static str {
    // Destroying a version of a family of the hierarchy is its retirement (allowed only
    // once it is superseded and nothing depends on it, `hierarchy::check_destroy`), the
    // step of the key's life an auditor looks for. As `generate_key` tells `rotate` from
    // `generate` by the key's version, the key's tier tells `retire` from `destroy`.
    if context.key.as_ref().is_some_and(|k| k.in_hierarchy) { "retire" } else { "destroy" }
}

/// A failure to write to the audit trail, as a call meets it (fail closed).
fn audit_unwritable(e: Error) -> Error {
    crate::error::log_fault("audit record", &e);
    Error::Device("the audit record could not be written".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::AttributeRead;

    #[test]
    fn a_read_is_recorded_with_its_most_significant_refusal() {
        let value = || AttributeRead::Value(zeroize::Zeroizing::new(vec![1]));
        assert_eq!(reads_rv(&[]), cryptoki_sys::CKR_OK);
        assert_eq!(reads_rv(&[value(), value()]), cryptoki_sys::CKR_OK);
        assert_eq!(reads_rv(&[value(), AttributeRead::Invalid]), cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(
            reads_rv(&[AttributeRead::Invalid, AttributeRead::Sensitive, value()]),
            cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE
        );
    }

    #[test]
    fn a_pin_lockout_is_told_once_to_its_own_thread() {
        drop(super::super::token::take_pin_locked());
        super::super::token::note_pin_locked(super::super::token::PinOwner::Principal("context-api"));
        let elsewhere = std::thread::spawn(super::super::token::take_pin_locked).join().unwrap();
        assert_eq!(elsewhere, None);
        assert_eq!(super::super::token::take_pin_locked().as_deref(), Some("context-api"));
        assert_eq!(super::super::token::take_pin_locked(), None);
    }
}
