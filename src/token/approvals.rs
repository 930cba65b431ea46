//! Approvals recorded ahead on a token (the rules are in `crate::policy::approval_ahead`):
//! an approver logged in records one, anyone logged in lists them, the SO (or the approver)
//! revokes one; and the gate every management operation passes: where the policy says the
//! caller needs approval, the operation goes ahead only with a quorum of pending approvals
//! bound to it, used up inside the transaction that makes the change, so that a refused or
//! failed change uses none and a used approval always means the change was made. Also the
//! approvals given in band, by an approver's context-specific login (`Token::approve`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys::*;

use super::pin::{PinOwner, PinResult};
use super::{Token, TokenState};
use crate::audit::record::now_ms;
use crate::hierarchy::{self, KeyState};
use crate::object::{Attribute, Object};
use crate::policy::PendingApproval;
use crate::policy::approval_ahead::{self, ApprovalState, Binding, MAX_EXPIRY, ManagementOp, SO_PRINCIPAL};
use crate::policy::{Decision, LoginState, Policy};
use crate::store::{ApprovalRecord, ApprovalsOf, StoreWriter};
use crate::{Error, Result};

/// What an approval is asked to allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalTarget {
    /// A key of the token, by handle in the approver's session (to destroy or rotate).
    Key(CK_OBJECT_HANDLE),
    /// A change of a key's attributes (`modify`): the key, by handle in the approver's
    /// session, and the attributes `C_SetAttributeValue` is to set; the approval serves
    /// only a change by exactly these.
    Change { key: CK_OBJECT_HANDLE, attributes: Vec<Attribute> },
    /// A new policy document (JSON or TOML) the SO is to apply.
    Policy(String),
}

/// An approval to record: `op` by `principal` on `target`, valid for `expires_in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub principal: String,
    pub op: ManagementOp,
    pub target: ApprovalTarget,
    pub expires_in: Duration,
}

/// A management operation that may go ahead once it has used up its approvals.
pub(crate) struct Gate {
    principal: String,
    op: ManagementOp,
    /// The binding's key: a `CKA_UNIQUE_ID` or a policy document's hash.
    key: String,
    /// The label approvers are checked against (still entitled when the approval is used).
    label: Vec<u8>,
    quorum: u32,
    policy: Arc<Policy>,
    refusal: Error,
}

impl Gate {
    /// The gate of a change of the policy `current` (in force) to the canonical `document`,
    /// or `None` when `current` needs no approvals for it.
    pub(crate) fn policy_change(current: Policy, document: &str) -> Option<Gate> {
        (current.policy_change_approvals > 0).then(|| Gate {
            principal: SO_PRINCIPAL.to_string(),
            op: ManagementOp::Policy,
            key: Binding::policy(document).key,
            label: Vec::new(),
            quorum: current.policy_change_approvals,
            policy: Arc::new(current),
            refusal: Error::ActionProhibited,
        })
    }

    /// Uses up a quorum of pending approvals bound to this operation, inside the caller's
    /// transaction `w`; fails with the operation's refusal (and the caller's transaction is
    /// rolled back) when there are not enough. Approvers must still be principals entitled
    /// to approve under the policy in force.
    pub(crate) fn consume(&self, w: &mut dyn StoreWriter, now: u64) -> Result<Vec<ApprovalRecord>> {
        let bound = w.approvals_for(&self.principal, self.op.name(), &self.key)?;
        let mut entitled = HashSet::new();
        for approver in bound.iter().map(|a| a.approver.as_str()).collect::<HashSet<_>>() {
            let approves =
                approval_ahead::check_approver(&self.policy, approver, &self.principal, self.op, &self.label)
                    .is_ok();
            if approves && w.principal(approver)?.is_some() {
                entitled.insert(approver.to_string());
            }
        }
        let chosen =
            approval_ahead::select(&bound, &self.principal, self.quorum, now, |a| entitled.contains(a))
                .ok_or_else(|| self.refusal.clone())?;
        let mut used = Vec::with_capacity(chosen.len());
        for a in chosen {
            if !w.consume_approval(a.id, now)? {
                return Err(self.refusal.clone());
            }
            used.push(ApprovalRecord { consumed_at: Some(now), ..a.clone() });
        }
        Ok(used)
    }
}

/// `gate.consume` for an optional gate.
pub(crate) fn consume(gate: Option<&Gate>, w: &mut dyn StoreWriter, now: u64) -> Result<Vec<ApprovalRecord>> {
    match gate {
        Some(g) => g.consume(w, now),
        None => Ok(Vec::new()),
    }
}

impl TokenState {
    /// What the policy says about management operation `op` on `object` for this login:
    /// `Ok(None)` allowed, `Ok(Some(gate))` allowed once the gate has used up its
    /// approvals (in the change's transaction), `Err(refusal)` denied.
    pub(crate) fn gate(&self, object: &Object, op: ManagementOp, refusal: Error) -> Result<Option<Gate>> {
        self.gate_for(object, object, op, refusal)
    }

    /// As [`TokenState::gate`], with the decision taken on `decided` and the approvals
    /// bound to `bound`: a rotation is decided on the new version (as a generation is) and
    /// approved on the current version, which it supersedes (the new one does not exist
    /// when the approval is given).
    pub(crate) fn gate_for(
        &self,
        decided: &Object,
        bound: &Object,
        op: ManagementOp,
        refusal: Error,
    ) -> Result<Option<Gate>> {
        let Some(key_op) = op.key_operation() else {
            return Err(Error::Internal("policy change is no key op"));
        };
        if !decided.profile().is_key() {
            return Ok(None);
        }
        match self.decide(decided.get(CKA_LABEL).unwrap_or_default(), key_op) {
            Decision::Allow => Ok(None),
            Decision::Deny => Err(refusal),
            Decision::NeedsApproval => {
                let policy = self.policy.clone().ok_or(Error::Internal("approval without a policy"))?;
                let principal = self.principal.as_deref().unwrap_or("user").to_string();
                let key = bound.get(CKA_UNIQUE_ID).ok_or_else(|| refusal.clone())?;
                Ok(Some(Gate {
                    quorum: policy.quorum(&principal),
                    principal,
                    op,
                    key: String::from_utf8_lossy(key).into_owned(),
                    label: bound.get(CKA_LABEL).unwrap_or_default().to_vec(),
                    policy,
                    refusal,
                }))
            }
        }
    }

    /// As [`TokenState::gate`] for `C_SetAttributeValue` of `template` on `object`: the
    /// approvals it may use are those bound to exactly this change (see
    /// `Binding::change`).
    pub(crate) fn gate_change(
        &self,
        object: &Object,
        template: &[Attribute],
        refusal: Error,
    ) -> Result<Option<Gate>> {
        Ok(self.gate(object, ManagementOp::Modify, refusal)?.map(|mut gate| {
            let label = String::from_utf8_lossy(&gate.label).into_owned();
            gate.key = Binding::change(&gate.key, &label, template).key;
            gate
        }))
    }

    /// Whether this login may see approval `a` in a listing: the SO every one; others
    /// those they gave or were given, those of policy changes, and those on keys they see.
    fn may_list(&self, a: &ApprovalRecord) -> bool {
        let me = self.principal.as_deref().unwrap_or("user");
        self.login == LoginState::SecurityOfficer
            || a.approver == me
            || a.principal == me
            || a.operation == ManagementOp::Policy.name()
            || self
                .objects
                .values()
                .any(|o| o.get(CKA_UNIQUE_ID) == Some(Binding::uid_of(&a.key).as_bytes()) && self.sees(o))
    }
}

impl Token {
    /// Records an approval given by the principal logged in (its PIN was checked by its
    /// login, which counted a wrong one toward its lockout). Refused, with nothing stored:
    /// without a named principal logged in (`CKR_USER_NOT_LOGGED_IN`); a read-only session;
    /// an expiry out of range or an unknown principal, or `so` for anything but a policy
    /// change and anyone else for one (`CKR_ARGUMENTS_BAD`); a key the approver cannot see or
    /// that is no token key (`CKR_KEY_HANDLE_INVALID`); a policy document that does not
    /// validate (`PolicyInvalid`); and (`CKR_ACTION_PROHIBITED`) self-approval, an approver
    /// not entitled, a principal whose rule does not need approval for it, a rotation of a
    /// key that is not the current version of a family of the hierarchy, or a policy change
    /// the policy in force does not ask approvals for.
    pub fn approve_ahead(&self, read_write: bool, request: &ApprovalRequest) -> Result<ApprovalRecord> {
        let mut state = self.ready()?;
        let approver = match (state.login, &state.principal) {
            (LoginState::User, Some(name)) => name.clone(),
            _ => return Err(Error::UserNotLoggedIn),
        };
        let view = state.view(read_write);
        if !view.read_write {
            return Err(Error::SessionReadOnly);
        }
        if request.expires_in.is_zero() || request.expires_in > MAX_EXPIRY {
            return Err(Error::ArgumentsBad);
        }
        let principal = request.principal.as_str();
        let is_principal = state
            .store
            .as_mut()
            .ok_or(Error::TokenNotRecognized)?
            .principals()?
            .iter()
            .any(|p| p.name == principal);
        let known = match request.op {
            ManagementOp::Policy => principal == SO_PRINCIPAL,
            _ => is_principal || principal == "user",
        };
        if !known {
            return Err(Error::ArgumentsBad);
        }
        let policy = state.policy.clone().ok_or(Error::ActionProhibited)?;
        let binding = match (&request.target, request.op) {
            (ApprovalTarget::Policy(text), ManagementOp::Policy) => {
                let document = Policy::parse(text)?.to_json();
                approval_ahead::check_approver(&policy, &approver, principal, request.op, b"")?;
                if policy.policy_change_approvals == 0 {
                    return Err(Error::ActionProhibited);
                }
                Binding::policy(&document)
            }
            (ApprovalTarget::Key(handle), op) | (ApprovalTarget::Change { key: handle, .. }, op)
                if op != ManagementOp::Policy =>
            {
                // A modify approval names its change; nothing else has one.
                let changes = match &request.target {
                    ApprovalTarget::Change { attributes, .. } => Some(attributes.as_slice()),
                    _ => None,
                };
                if changes.is_some() != (op == ManagementOp::Modify) {
                    return Err(Error::ArgumentsBad);
                }
                let (_, key, _) = self.visible(&state, view, *handle).map_err(|_| Error::KeyHandleInvalid)?;
                if !key.profile().is_key() || !key.is_token() {
                    return Err(Error::KeyHandleInvalid);
                }
                let label = key.get(CKA_LABEL).unwrap_or_default();
                approval_ahead::check_approver(&policy, &approver, principal, op, label)?;
                let key_op = op.key_operation().ok_or(Error::Internal("key op"))?;
                if policy.decide(principal, label, key_op) != Decision::NeedsApproval {
                    return Err(Error::ActionProhibited);
                }
                let current = hierarchy::state_of(&key) == Some(KeyState::Active);
                if op == ManagementOp::Rotate && (hierarchy::tier_of(&key).is_none() || !current) {
                    return Err(Error::ActionProhibited);
                }
                let uid = String::from_utf8_lossy(key.get(CKA_UNIQUE_ID).ok_or(Error::KeyHandleInvalid)?);
                let label = String::from_utf8_lossy(label);
                match changes {
                    Some(changes) => Binding::change(&uid, &label, changes),
                    None => Binding { key: uid.into_owned(), label: label.into_owned() },
                }
            }
            _ => return Err(Error::ArgumentsBad),
        };
        let now = now_ms();
        let mut approval = ApprovalRecord {
            id: 0,
            approver: approver.to_string(),
            principal: principal.to_string(),
            operation: request.op.name().to_string(),
            key: binding.key,
            key_label: binding.label,
            created_at: now,
            expires_at: now + request.expires_in.as_millis() as u64,
            consumed_at: None,
            revoked_at: None,
        };
        self.write_as_login(&mut state, &mut |w| {
            approval.id = w.insert_approval(&approval)?;
            Ok(())
        })?;
        Ok(approval)
    }

    /// Counts `name` as an approver of the operations in `pending` it may approve, once its
    /// PIN is right. The approver's PIN tries count against its lockout like a login; the
    /// session's own login does not change. Whether `name` exists changes neither the answer
    /// nor the time: the policy decides first, for any name (a name without a rule granting
    /// `approve` is `CKR_ACTION_PROHIBITED`), then an unknown name costs a KDF run and is
    /// `CKR_PIN_INCORRECT`, as a wrong PIN is.
    pub fn approve(&self, pending: &mut [&mut PendingApproval], name: &str, pin: &[u8]) -> PinResult<()> {
        let mut state = self.ready()?;
        let policy = state.policy.clone().ok_or(Error::OperationNotInitialized)?;
        let mut first_refusal = None;
        let mut approvable: Vec<&mut &mut PendingApproval> = Vec::new();
        for p in pending.iter_mut() {
            match p.check(&policy, name) {
                Ok(()) => approvable.push(p),
                Err(e) => first_refusal = first_refusal.or(Some(e)),
            }
        }
        if approvable.is_empty() {
            return Err(first_refusal.unwrap_or(Error::OperationNotInitialized).into());
        }
        self.check_owner_pin(&mut state, PinOwner::Principal(name), pin)?;
        for p in approvable {
            p.approvers.push(name.to_string());
        }
        Ok(())
    }

    /// The approvals this login may see (see `TokenState::may_list`), oldest first.
    pub fn approvals(&self) -> Result<Vec<ApprovalRecord>> {
        let mut state = self.ready()?;
        if state.login == LoginState::Public {
            return Err(Error::UserNotLoggedIn);
        }
        let all = state.store.as_mut().ok_or(Error::TokenNotRecognized)?.approvals()?;
        Ok(all.into_iter().filter(|a| state.may_list(a)).collect())
    }

    /// Revokes pending approval `id`: the SO any, an approver its own. An unknown id, or one
    /// this login may not see, is `CKR_ARGUMENTS_BAD`; one that is no longer pending (used,
    /// revoked, expired) `CKR_ACTION_PROHIBITED`.
    pub fn revoke_approval(&self, read_write: bool, id: i64) -> Result<ApprovalRecord> {
        let mut state = self.ready()?;
        if state.login == LoginState::Public {
            return Err(Error::UserNotLoggedIn);
        }
        if !read_write {
            return Err(Error::SessionReadOnly);
        }
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let approval = store.approvals()?.into_iter().find(|a| a.id == id);
        let approval = approval.filter(|a| state.may_list(a)).ok_or(Error::ArgumentsBad)?;
        let me = state.principal.as_deref();
        if state.login != LoginState::SecurityOfficer && me != Some(approval.approver.as_str()) {
            return Err(Error::ActionProhibited);
        }
        let now = now_ms();
        if ApprovalState::of(&approval, now) != ApprovalState::Pending {
            return Err(Error::ActionProhibited);
        }
        let mut revoked = 0;
        self.write_as_login(&mut state, &mut |w| {
            revoked = w.revoke_approvals(ApprovalsOf::Id(id), now)?;
            Ok(())
        })?;
        if revoked == 1 {
            Ok(ApprovalRecord { revoked_at: Some(now), ..approval })
        } else {
            Err(Error::ActionProhibited)
        }
    }
}
