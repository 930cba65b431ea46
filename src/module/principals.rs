//! Principals, the policy and approvals recorded ahead: the functions of this HSM that
//! PKCS#11 has no verb for (the CLI calls them), each recorded like a standard call.

use cryptoki_sys::CK_SESSION_HANDLE;

use super::Module;
use super::audit::rv_of;
use crate::Result;
use crate::store::ApprovalRecord;
use crate::token::{ApprovalRequest, ApprovalTarget};

impl Module {
    /// The principals of a session's token, with their failure counts (SO only).
    pub fn principals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<(String, u32)>> {
        let (session, token) = self.session_and_token(h)?;
        token.principals(token.view(session.read_write))
    }

    /// Adds a principal, or with `replace` sets a new PIN for one (SO only); recorded as
    /// `principal_add` or `principal_reset_pin`.
    pub fn set_principal(&self, h: CK_SESSION_HANDLE, name: &str, pin: &[u8], replace: bool) -> Result<()> {
        let operation = if replace { "principal_reset_pin" } else { "principal_add" };
        let set_principal = || {
            let (session, token) = self.session_and_token(h)?;
            token.set_principal(token.view(session.read_write), name, pin, replace)
        };
        self.audited(h, operation, None, None, set_principal, || {})
    }

    /// Removes a principal (SO only); recorded as `principal_remove`.
    pub fn remove_principal(&self, h: CK_SESSION_HANDLE, name: &str) -> Result<()> {
        let remove_principal = || {
            let (session, token) = self.session_and_token(h)?;
            token.remove_principal(token.view(session.read_write), name)
        };
        self.audited(h, "principal_remove", None, None, remove_principal, || {})
    }

    /// Validates and stores a policy document as the next version (SO only); recorded as
    /// `policy_apply`, after the approvals it used up (`approval_consume`).
    pub fn apply_policy(&self, h: CK_SESSION_HANDLE, text: &str) -> Result<u64> {
        let apply_policy = || {
            let (session, token) = self.session_and_token(h)?;
            let (version, consumed) = token.apply_policy(token.view(session.read_write), text)?;
            token.record_consumed(h, &consumed)?;
            Ok(version)
        };
        self.audited(h, "policy_apply", None, None, apply_policy, || {})
    }

    /// The token's policy: version and canonical JSON document, if one was applied.
    pub fn policy(&self, h: CK_SESSION_HANDLE) -> Result<Option<(u64, String)>> {
        let token = self.token_of(h)?;
        token.policy()
    }

    /// The audit key of the token of session `h`, if someone is logged in on it.
    pub fn audit_key(&self, h: CK_SESSION_HANDLE) -> Result<crate::audit::AuditKey> {
        let token = self.token_of(h)?;
        token.audit_key()
    }

    /// Records an approval by the principal logged in on session `h` (see
    /// [`crate::token::Token::approve_ahead`]), and audits it as `approval_give` by the
    /// approver, given or refused (a refused one names the key when the request named one
    /// it may see).
    pub fn approve_ahead(&self, h: CK_SESSION_HANDLE, request: &ApprovalRequest) -> Result<ApprovalRecord> {
        let result = self
            .session_and_token(h)
            .and_then(|(session, token)| token.approve_ahead(session.read_write, request));
        let token = self.token_of(h)?;
        match &result {
            Ok(a) => token.record_approval(h, "approval_give", None, Some(a), cryptoki_sys::CKR_OK)?,
            Err(e) => {
                let key = match request.target {
                    ApprovalTarget::Key(handle) | ApprovalTarget::Change { key: handle, .. } => Some(handle),
                    ApprovalTarget::Policy(_) => None,
                };
                token.record(h, "approval_give", key, None, e.ck_rv())?;
            }
        }
        result
    }

    /// The approvals recorded ahead on the token of session `h` that its login may see.
    pub fn approvals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<ApprovalRecord>> {
        let token = self.token_of(h)?;
        token.approvals()
    }

    /// Revokes a pending approval (the SO any, an approver its own), recorded as
    /// `approval_revoke` by whoever revoked it.
    pub fn revoke_approval(&self, h: CK_SESSION_HANDLE, id: i64) -> Result<ApprovalRecord> {
        let result = self
            .session_and_token(h)
            .and_then(|(session, token)| token.revoke_approval(session.read_write, id));
        let token = self.token_of(h)?;
        token.record_approval(h, "approval_revoke", None, result.as_ref().ok(), rv_of(&result))?;
        result
    }
}
