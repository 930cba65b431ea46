//! In-band approvals of one cryptographic operation (issue 5): a rule with
//! `requires_approval` lets its principal begin an operation (`*Init`), which then waits
//! until a quorum of distinct approvers — other principals whose rule grants `approve` on
//! the key — have each authenticated with `C_Login(CKU_CONTEXT_SPECIFIC, "name:pin")`, as
//! for a key with `CKA_ALWAYS_AUTHENTICATE`. The approval is for that one operation: the
//! next `*Init` asks again.

use super::{Decision, Operation, Policy};
use crate::{Error, Result};

/// An operation waiting for (or holding) its approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApproval {
    /// The label of the key, as the policy's patterns see it.
    pub label: Vec<u8>,
    /// Who began the operation (who may not approve it).
    pub caller: String,
    /// How many distinct approvers it needs.
    pub quorum: u32,
    /// Who approved it so far.
    pub approvers: Vec<String>,
}

impl PendingApproval {
    pub fn new(policy: &Policy, caller: &str, label: &[u8]) -> PendingApproval {
        PendingApproval {
            label: label.to_vec(),
            caller: caller.to_string(),
            quorum: policy.quorum(caller),
            approvers: Vec::new(),
        }
    }

    /// Whether the quorum is met.
    pub fn is_met(&self) -> bool {
        self.approvers.len() as u32 >= self.quorum
    }

    /// Whether `approver` may approve this operation now: not the caller, not already
    /// counted, and granted `approve` on the key without needing an approval itself.
    /// Checked before the approver's PIN, so a refusal costs no PIN try.
    pub fn check(&self, policy: &Policy, approver: &str) -> Result<()> {
        if approver == self.caller {
            return Err(Error::ActionProhibited);
        }
        if self.approvers.iter().any(|a| a == approver) {
            return Err(Error::UserAlreadyLoggedIn);
        }
        match policy.decide(approver, &self.label, Operation::Approve) {
            Decision::Allow => Ok(()),
            Decision::Deny | Decision::NeedsApproval => Err(Error::ActionProhibited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"key_permissions": {
        "admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true, "approvals": 2},
        "alice": {"keys": ["dek-*"], "operations": ["approve"]},
        "bob": {"keys": ["*"], "operations": ["approve", "decrypt"]},
        "carol": {"keys": ["*"], "operations": ["decrypt"]},
        "dave": {"keys": ["*"], "operations": ["approve"], "requires_approval": true}
    }}"#;

    #[test]
    fn a_quorum_of_distinct_entitled_approvers_other_than_the_caller() {
        let policy = Policy::parse(POLICY).unwrap();
        let mut p = PendingApproval::new(&policy, "admin", b"dek-acme-v1");
        assert_eq!(p.quorum, 2);
        assert!(!p.is_met());
        assert_eq!(p.check(&policy, "admin"), Err(Error::ActionProhibited), "no self-approval");
        assert_eq!(p.check(&policy, "carol"), Err(Error::ActionProhibited), "no approve operation");
        assert_eq!(p.check(&policy, "dave"), Err(Error::ActionProhibited), "an approver needing approval");
        assert_eq!(p.check(&policy, "nobody"), Err(Error::ActionProhibited));
        p.check(&policy, "alice").unwrap();
        p.approvers.push("alice".into());
        assert_eq!(p.check(&policy, "alice"), Err(Error::UserAlreadyLoggedIn), "counted once");
        assert!(!p.is_met());
        p.check(&policy, "bob").unwrap();
        p.approvers.push("bob".into());
        assert!(p.is_met());
        // alice approves only dek-* keys.
        let q = PendingApproval::new(&policy, "admin", b"kek-v1");
        assert_eq!(q.check(&policy, "alice"), Err(Error::ActionProhibited));
        q.check(&policy, "bob").unwrap();
    }

    #[test]
    fn the_default_quorum_is_one_and_zero_is_refused() {
        let policy = Policy::parse(
            r#"{"key_permissions": {"a": {"keys": ["*"], "operations": ["*"], "requires_approval": true}}}"#,
        )
        .unwrap();
        assert_eq!(PendingApproval::new(&policy, "a", b"k").quorum, 1);
        let zero = r#"{"key_permissions": {"a": {"keys": ["*"], "operations": ["*"], "requires_approval": true, "approvals": 0}}}"#;
        assert!(matches!(Policy::parse(zero), Err(Error::PolicyInvalid(_))));
    }
}
