//! Whose credentials the SO alone may not change (issue 13, item 4). While a policy needs
//! approvals, an SO who could set an approver's PIN could approve as that approver, and one
//! who could set the PIN of a user the policy restricts could act as that user: an M-of-N
//! rule would then bind everyone but the SO. So, while the policy in force needs approvals,
//! the SO may not add, re-key or remove an approver, nor set the user PIN when the policy
//! has a rule for `user`. The way to do any of these is the quorum's: a policy change
//! (approved as the policy in force asks) that stops naming the principal as an approver
//! (or stops needing approvals), then the change, then a further approved policy change.

use super::Policy;

impl Policy {
    /// Whether this policy asks approvals for anything: replacing it, or an operation of
    /// some principal's rule.
    pub fn needs_approvals(&self) -> bool {
        self.policy_change_approvals > 0 || self.key_permissions.values().any(|r| r.requires_approval)
    }

    /// Whether `principal` may approve something under this policy: its rule grants
    /// `approve` (or `*`) on some keys and needs no approval itself.
    pub fn is_approver(&self, principal: &str) -> bool {
        self.key_permissions
            .get(principal)
            .is_some_and(|r| !r.requires_approval && r.operations.iter().any(|o| o == "*" || o == "approve"))
    }

    /// Whether the SO alone may not set, reset or remove the PIN of `principal` (`user` for
    /// the token's user) under this policy (see the module comment).
    pub fn guards_credentials_of(&self, principal: &str) -> bool {
        self.needs_approvals()
            && (self.is_approver(principal)
                || (principal == "user" && self.key_permissions.contains_key("user")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str, change: u32) -> Policy {
        Policy::parse(&format!("{{\"key_permissions\": {{{rules}}}, \"policy_change_approvals\": {change}}}"))
            .unwrap()
    }

    #[test]
    fn approvers_and_a_restricted_user_are_guarded_while_approvals_are_needed() {
        let approvers = r#""a": {"keys": ["*"], "operations": ["approve"]},
            "b": {"keys": ["dek-*"], "operations": ["*"]},
            "c": {"keys": ["*"], "operations": ["approve"], "requires_approval": true},
            "d": {"keys": ["*"], "operations": ["decrypt"]}"#;
        let p = policy(approvers, 1);
        assert!(p.needs_approvals());
        assert!(p.guards_credentials_of("a") && p.guards_credentials_of("b"));
        // c cannot approve (its approvals would need approvals), d has no `approve`, e no rule.
        assert!(!p.guards_credentials_of("c") && !p.guards_credentials_of("d"));
        assert!(!p.guards_credentials_of("e"));
        assert!(!p.guards_credentials_of("user"), "no rule for user: the user is not restricted");
        let with_user = policy(
            &format!("{approvers}, \"user\": {{\"keys\": [\"app-*\"], \"operations\": [\"sign\"]}}"),
            1,
        );
        assert!(with_user.guards_credentials_of("user"));
        // The same principals, with nothing needing approval: nothing is guarded.
        let free = policy(
            r#""a": {"keys": ["*"], "operations": ["approve"]}, "user": {"keys": ["*"], "operations": ["sign"]}"#,
            0,
        );
        assert!(!free.needs_approvals());
        assert!(!free.guards_credentials_of("a") && !free.guards_credentials_of("user"));
        // A rule needing approval makes the policy need approvals without a change quorum.
        let rule = policy(
            r#""a": {"keys": ["*"], "operations": ["approve"]}, "x": {"keys": ["*"], "operations": ["*"], "requires_approval": true}"#,
            0,
        );
        assert!(rule.needs_approvals() && rule.guards_credentials_of("a"));
    }
}
