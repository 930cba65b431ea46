//! The policy document: which principal may do what with which keys, in the seed's JSON shape
//! (accepted as it is) or the same in TOML:
//!
//! ```json
//! { "key_permissions": {
//!     "context-api":          { "keys": ["dek-*"], "operations": ["decrypt"] },
//!     "key-rotation-service": { "keys": ["dek-*", "kek-*"], "operations": ["encrypt", "decrypt", "rotate"] },
//!     "security-admin":       { "keys": ["*"], "operations": ["*"], "requires_approval": true } } }
//! ```
//!
//! Key patterns are globs (`*`, `?`) over the key's label. A principal without a rule may do
//! nothing with keys; the token's `user` behaves as without a policy unless a rule names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Derive,
    Generate,
    Rotate,
    Destroy,
    Read,
    Modify,
    Approve,
}

const OPERATIONS: [(&str, Operation); 13] = [
    ("encrypt", Operation::Encrypt),
    ("decrypt", Operation::Decrypt),
    ("sign", Operation::Sign),
    ("verify", Operation::Verify),
    ("wrap", Operation::Wrap),
    ("unwrap", Operation::Unwrap),
    ("derive", Operation::Derive),
    ("generate", Operation::Generate),
    ("rotate", Operation::Rotate),
    ("destroy", Operation::Destroy),
    ("read", Operation::Read),
    ("modify", Operation::Modify),
    ("approve", Operation::Approve),
];

/// One principal's rule, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub keys: Vec<String>,
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
    /// With `requires_approval`: how many distinct approvers an operation needs (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
}

/// The document, as written (and as stored, in canonical JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub key_permissions: BTreeMap<String, Rule>,
    /// How many distinct approvers, recorded ahead, the SO needs to replace this policy
    /// (0, the default: none). Left out of the canonical form when 0, so a document without
    /// it (the seed's) is stored and hashed exactly as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub policy_change_approvals: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the policy says about one principal doing one operation on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Allowed with the approval the rule asks for.
    NeedsApproval,
}

impl Policy {
    /// Parses and validates a document, JSON if it starts with `{`, TOML otherwise. Every
    /// error names the line (and column where the parser knows it).
    pub fn parse(text: &str) -> Result<Policy> {
        let policy: Policy = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                Error::PolicyInvalid(format!(
                    "line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    strip_position(&e.to_string())
                ))
            })?
        } else {
            toml::from_str(text).map_err(|e| {
                let line = e.span().map_or(0, |s| line_of(text, s.start));
                Error::PolicyInvalid(format!("line {line}: {}", e.message()))
            })?
        };
        for (name, rule) in &policy.key_permissions {
            let at = |what: &str| {
                line_of(text, text.find(&format!("\"{what}\"")).or_else(|| text.find(what)).unwrap_or(0))
            };
            let name_ok = (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                && name != "so";
            if !name_ok {
                return Err(Error::PolicyInvalid(format!(
                    "line {}: '{name}' is not a principal name",
                    at(name)
                )));
            }
            for op in &rule.operations {
                if op != "*" && !OPERATIONS.iter().any(|(n, _)| n == op) {
                    let known: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
                    return Err(Error::PolicyInvalid(format!(
                        "line {}: unknown operation '{op}' for '{name}' (known: {}, *)",
                        at(op),
                        known.join(", ")
                    )));
                }
            }
            if rule.approvals == Some(0) {
                return Err(Error::PolicyInvalid(format!(
                    "line {}: 'approvals' for '{name}' must be at least 1",
                    at("approvals")
                )));
            }
            if rule.keys.iter().any(|k| k.is_empty()) {
                return Err(Error::PolicyInvalid(format!(
                    "line {}: an empty key pattern for '{name}'",
                    at(name)
                )));
            }
        }
        let change_quorum = policy.policy_change_approvals as usize;
        let approvers = policy.key_permissions.keys().filter(|n| policy.may_approve_policy_change(n)).count();
        if approvers < change_quorum {
            // Such a policy could never be replaced (short of re-initializing the token).
            return Err(Error::PolicyInvalid(format!(
                "line {}: 'policy_change_approvals' is {change_quorum}, but only {approvers} principal(s) \
                 may approve a policy change (a rule granting 'approve' on keys [\"*\"] without \
                 'requires_approval')",
                line_of(text, text.find("policy_change_approvals").unwrap_or(0))
            )));
        }
        Ok(policy)
    }

    /// Whether `principal` may approve a change of this policy: its rule grants `approve`
    /// (or `*`) on every key (the pattern `*`) and needs no approval itself. A policy
    /// change touches every key, so only an approver of every key may approve one.
    pub fn may_approve_policy_change(&self, principal: &str) -> bool {
        self.key_permissions.get(principal).is_some_and(|r| {
            !r.requires_approval
                && r.keys.iter().any(|k| k == "*")
                && r.operations.iter().any(|o| o == "*" || o == "approve")
        })
    }

    /// The document in its stored, canonical form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// What `principal` (`user` for the token's user) may do with the key labelled `label`.
    pub fn decide(&self, principal: &str, label: &[u8], op: Operation) -> Decision {
        let Some(rule) = self.key_permissions.get(principal) else {
            return if principal == "user" { Decision::Allow } else { Decision::Deny };
        };
        let key_matches = rule.keys.iter().any(|pattern| glob(pattern.as_bytes(), label));
        let op_matches =
            rule.operations.iter().any(|o| o == "*" || OPERATIONS.iter().any(|(n, x)| n == o && *x == op));
        match (key_matches && op_matches, rule.requires_approval) {
            (false, _) => Decision::Deny,
            (true, false) => Decision::Allow,
            (true, true) => Decision::NeedsApproval,
        }
    }

    /// How many approvers an operation of `principal` needs when its rule requires approval.
    pub fn quorum(&self, principal: &str) -> u32 {
        self.key_permissions.get(principal).and_then(|r| r.approvals).unwrap_or(1)
    }

    /// Whether `principal` may do anything at all with the key labelled `label` (and so
    /// sees it).
    pub fn sees(&self, principal: &str, label: &[u8]) -> bool {
        OPERATIONS.iter().any(|(_, op)| self.decide(principal, label, *op) != Decision::Deny)
    }
}

/// What a principal may do without any policy: the token's user everything, others nothing.
pub fn decide_without_policy(principal: &str) -> Decision {
    if principal == "user" { Decision::Allow } else { Decision::Deny }
}

/// Glob matching of a label: `*` any run of bytes, `?` one byte.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// serde_json's message ends with " at line L column C", which we say first instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The seed's document, shared with the integration tests.
    const SEED: &str = include_str!("../../tests/fixtures/seed-policy.json");

    #[test]
    fn the_seeds_document_is_accepted_as_it_is_and_decides_as_it_says() {
        let p = Policy::parse(SEED).unwrap();
        use Decision::*;
        assert_eq!(p.decide("context-api", b"dek-acme-v1", Operation::Decrypt), Allow);
        assert_eq!(p.decide("context-api", b"dek-acme-v1", Operation::Encrypt), Deny);
        assert_eq!(p.decide("context-api", b"kek-v1", Operation::Decrypt), Deny);
        assert!(p.sees("context-api", b"dek-acme-v1") && !p.sees("context-api", b"kek-v1"));
        assert_eq!(p.decide("key-rotation-service", b"kek-v2", Operation::Rotate), Allow);
        assert_eq!(p.decide("key-rotation-service", b"master-v1", Operation::Rotate), Deny);
        assert_eq!(p.decide("security-admin", b"master-v1", Operation::Destroy), NeedsApproval);
        assert_eq!(p.decide("stranger", b"dek-a-v1", Operation::Read), Deny);
        assert_eq!(p.decide("user", b"anything", Operation::Sign), Allow, "the user, unnamed, as before");
        let again = Policy::parse(&p.to_json()).unwrap();
        assert_eq!(again, p, "the canonical form parses back");
    }

    #[test]
    fn toml_says_the_same() {
        let toml = r#"
[key_permissions.context-api]
keys = ["dek-*"]
operations = ["decrypt"]

[key_permissions.security-admin]
keys = ["*"]
operations = ["*"]
requires_approval = true
"#;
        let p = Policy::parse(toml).unwrap();
        assert_eq!(p.decide("context-api", b"dek-x-v1", Operation::Decrypt), Decision::Allow);
        assert_eq!(p.decide("security-admin", b"kek-v1", Operation::Wrap), Decision::NeedsApproval);
    }

    #[test]
    fn errors_name_their_line() {
        let syntax = "{\n\"key_permissions\": {\n\"a\": { \"keys\": [\"dek-*\"] \"operations\": [] }\n}\n}";
        let e = Policy::parse(syntax).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let unknown =
            SEED.replace("\"decrypt\"]\n},\n\"key-rotation", "\"decrypt\", \"encryt\"]\n},\n\"key-rotation");
        let e = Policy::parse(&unknown).unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("encryt"), "{e}");
        let extra = SEED.replace(
            "\"keys\": [\"dek-*\"],\n\"operations\": [\"decrypt\"]",
            "\"keys\": [\"dek-*\"],\n\"operation\": [\"decrypt\"]",
        );
        assert!(Policy::parse(&extra).unwrap_err().to_string().contains("line 5"));
        let toml = "[key_permissions.a]\nkeys = [\"x\"]\noperations = [\"sing\"]\n";
        assert!(Policy::parse(toml).unwrap_err().to_string().contains("line 3"));
        let toml_syntax = "[key_permissions.a]\nkeys = [\"x\"\noperations = []\n";
        assert!(Policy::parse(toml_syntax).unwrap_err().to_string().contains("line "));
        assert!(Policy::parse(&SEED.replace("context-api", "so")).is_err());
    }

    #[test]
    fn a_policy_change_quorum_needs_enough_approvers_of_every_key() {
        let with = |n: u32, rules: &str| {
            Policy::parse(&format!("{{\"key_permissions\": {{{rules}}},\n\"policy_change_approvals\": {n}}}"))
        };
        let a = r#""a": {"keys": ["*"], "operations": ["approve"]}"#;
        let b = r#""b": {"keys": ["*"], "operations": ["*"]}"#;
        let c = r#""c": {"keys": ["dek-*"], "operations": ["approve"]}"#;
        let d = r#""d": {"keys": ["*"], "operations": ["approve"], "requires_approval": true}"#;
        let p = with(2, &[a, b, c, d].join(",")).unwrap();
        assert_eq!(p.policy_change_approvals, 2);
        assert!(p.may_approve_policy_change("a") && p.may_approve_policy_change("b"));
        assert!(!p.may_approve_policy_change("c") && !p.may_approve_policy_change("d"));
        assert!(!p.may_approve_policy_change("nobody"));
        assert!(p.to_json().contains("\"policy_change_approvals\": 2"));
        assert_eq!(Policy::parse(&p.to_json()).unwrap(), p);
        let e = with(3, &[a, b, c, d].join(",")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("only 2 principal(s)"), "{e}");
        // Absent or 0: none needed, and the canonical form does not mention it.
        let seed = Policy::parse(SEED).unwrap();
        assert_eq!(seed.policy_change_approvals, 0);
        assert!(!seed.to_json().contains("policy_change_approvals"));
        assert!(Policy::parse("policy_change_approvals = 1\n[key_permissions.a]\nkeys = [\"*\"]\noperations = [\"approve\"]\n").is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob(b"dek-*", b"dek-acme-v1") && glob(b"*", b"") && glob(b"kek-v?", b"kek-v2"));
        assert!(!glob(b"dek-*", b"kek-v1") && !glob(b"kek-v?", b"kek-v10") && !glob(b"", b"x"));
        assert!(glob(b"*-v1", b"dek-a-v1") && glob(b"d*k*1", b"dek-a-v1"));
    }
}
