//! The token's audit trail: its file, opened at the first record and armed with the token's
//! audit key at a login, and how a record names who acted and on which key (which calls are
//! recorded is the module facade's choice, one layer up).

use std::sync::Arc;

use cryptoki_sys::{
    CK_INVALID_HANDLE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CKA_LABEL,
    CKA_UNIQUE_ID,
};

use super::handles::ObjectRef;
use super::{Token, TokenState};
use crate::audit::{AuditLog, OpenOptions, Record};
use crate::object::Object;
use crate::policy::LoginState;
use crate::vendor::CKA_ECM_KEY_VERSION;
use crate::{Error, Result};

/// Who did it and to which key, as the record names them. Shared, not copied: this is on
/// the path of every operation.
pub(crate) struct Context {
    pub(crate) principal: Who,
    pub(crate) key: Option<Arc<KeyNames>>,
    /// Set when this principal and key were described together before (see [`Described`]):
    /// the records' `described_as`.
    pub(crate) described_as: Option<u64>,
}

/// How a record names a key (never its value).
pub(crate) struct KeyNames {
    uid: String,
    label: String,
    /// The key's version in the hierarchy, if it has one.
    version: Option<u32>,
    /// Whether the object is a key at all (records of reads name keys only), and one of the
    /// envelope hierarchy (its destruction is a retirement).
    pub(crate) is_key: bool,
    pub(crate) in_hierarchy: bool,
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
    pub(crate) fn key_version(&self) -> Option<u32> {
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

/// In a pthread key, not a `thread_local!`, so that the library can be unloaded (see
/// `sys::thread_slot`).
static DESCRIBED: crate::sys::thread_slot::ThreadSlot<std::cell::RefCell<Option<Described>>> =
    crate::sys::thread_slot::ThreadSlot::new();

/// The principal of a record.
#[derive(Clone)]
pub(crate) enum Who {
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
    pub(crate) fn arm_audit(&self) -> Result<()> {
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

    pub(crate) fn audit_context(&self, key: Option<CK_OBJECT_HANDLE>) -> Context {
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
    pub(crate) fn record(
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
    pub(crate) fn record_with(
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
            // The key service's client this core serves (`Config::audit_client`), if any.
            client: self.config.audit_client,
            ..Record::new(operation, rv)
        };
        log.append(&record).map(drop).map_err(|e| {
            crate::error::log_fault("audit record", &e);
            Error::Device("the audit record could not be written".into())
        })
    }
}

/// Approvals recorded ahead (`approvals.rs`): each one given or refused is recorded as
/// `approval_give` by the approver (the session's login), naming the key it is bound to;
/// each one used up as `approval_consume` by its approver, in the session of the operation
/// that used it (recorded just before that operation's own record); a revocation as
/// `approval_revoke` by whoever revoked it.
impl Token {
    /// Records the approvals an operation of session `session` used up, one record each.
    pub(crate) fn record_consumed(
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
    pub(crate) fn record_approval(
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

impl Token {
    /// After `C_InitToken`: the audit file takes the new token's audit key, replacing any
    /// key of the token as it was.
    pub(crate) fn rearm_audit(&self, key: &crate::audit::AuditKey) -> Result<()> {
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
    pub(crate) fn record_pin_locked(&self, session: CK_SESSION_HANDLE, owner: Option<String>) -> Result<()> {
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

/// A failure to write to the audit trail, as a call meets it (fail closed).
fn audit_unwritable(e: Error) -> Error {
    crate::error::log_fault("audit record", &e);
    Error::Device("the audit record could not be written".into())
}
