//! Approvals recorded ahead (issue 5), for the management operations that cannot wait in a
//! session for approvers the way a cryptographic operation does (`approval.rs`): destroying,
//! modifying or rotating a key, and replacing the policy.
//!
//! An approver (a principal whose rule grants `approve` on the key without needing approval
//! itself) records, with its own PIN, a single-use approval bound to one principal, one
//! operation, one key (its `CKA_UNIQUE_ID`; for a policy change the SHA-256 of the new
//! canonical document) and an expiry. When that principal does that operation on that key
//! and its rule requires approval, the operation succeeds only if a quorum of such
//! approvals by distinct approvers is pending, and uses exactly that many up in the
//! transaction that makes the change. This file holds the pure rules; the store keeps the
//! approvals and `module/approvals.rs` applies them.

use std::time::Duration;

use super::{Decision, Operation, Policy};
use crate::store::ApprovalRecord;
use crate::{Error, Result};

/// The longest an approval may last: an approval is for a change about to be made, not a
/// standing permission.
pub const MAX_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// The principal a policy change is approved for: the SO, who alone applies policies.
pub const SO_PRINCIPAL: &str = "so";

/// The operations approved ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagementOp {
    Destroy,
    Modify,
    Rotate,
    /// Replacing the policy (by the SO), bound to the new document.
    Policy,
}

impl ManagementOp {
    pub const ALL: [ManagementOp; 4] =
        [ManagementOp::Destroy, ManagementOp::Modify, ManagementOp::Rotate, ManagementOp::Policy];

    /// The name in the store, the audit record and the command line.
    pub fn name(self) -> &'static str {
        match self {
            ManagementOp::Destroy => "destroy",
            ManagementOp::Modify => "modify",
            ManagementOp::Rotate => "rotate",
            ManagementOp::Policy => "policy",
        }
    }

    pub fn from_name(name: &str) -> Option<ManagementOp> {
        ManagementOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The policy's operation for a key operation (`None` for a policy change, which is
    /// not an operation on a key).
    pub fn key_operation(self) -> Option<Operation> {
        match self {
            ManagementOp::Destroy => Some(Operation::Destroy),
            ManagementOp::Modify => Some(Operation::Modify),
            ManagementOp::Rotate => Some(Operation::Rotate),
            ManagementOp::Policy => None,
        }
    }
}

/// What an approval is bound to besides its principal and operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The key's `CKA_UNIQUE_ID`, or the policy document's SHA-256 in hex.
    pub key: String,
    /// For display: the key's label, or `policy sha256:<first 16 hex digits>`.
    pub label: String,
}

impl Binding {
    /// The binding of a change to the policy whose canonical form is `document`.
    pub fn policy(document: &str) -> Binding {
        let digest = crate::mechanism::digest::sha256(document.as_bytes());
        let key = hex::encode(digest);
        Binding { label: format!("policy sha256:{}", &key[..16]), key }
    }
}

impl Binding {
    /// The binding of a change of the key with unique id `uid` (labelled `label`) by the
    /// attributes `changes`: the key's id, then the SHA-256 of the changes in a canonical
    /// form (sorted by type, each as type, length and value), so that an approval of one
    /// change is not used by another change of the same key.
    pub fn change(uid: &str, label: &str, changes: &[crate::object::Attribute]) -> Binding {
        let mut sorted: Vec<&crate::object::Attribute> = changes.iter().collect();
        sorted.sort_by_key(|a| a.kind);
        let mut canonical = zeroize::Zeroizing::new(Vec::new());
        for a in sorted {
            canonical.extend_from_slice(&a.kind.to_be_bytes());
            canonical.extend_from_slice(&(a.value.len() as u64).to_be_bytes());
            canonical.extend_from_slice(&a.value);
        }
        let digest = hex::encode(crate::mechanism::digest::sha256(&canonical));
        Binding {
            label: format!("{label} (changes sha256:{})", &digest[..16]),
            key: format!("{uid}{CHANGE_SEPARATOR}{digest}"),
        }
    }

    /// The key's unique id of a binding (without a change's digest).
    pub fn uid_of(key: &str) -> &str {
        key.split_once(CHANGE_SEPARATOR).map_or(key, |(uid, _)| uid)
    }
}

/// Between a key's unique id and a change's digest in a binding.
const CHANGE_SEPARATOR: char = '/';

/// Parses an expiry such as `90s`, `15m`, `1h` or `1h30m` (a bare number is seconds): at
/// least one second, at most [`MAX_EXPIRY`].
pub fn parse_expiry(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: use e.g. 90s, 15m, 1h or 1h30m");
    let text = text.trim();
    let total = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().map_err(|_| bad())?
    } else if text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        humantime::parse_duration(text).map_err(|_| bad())?.as_secs()
    } else {
        // Spaces, signs and fractions are not durations here.
        return Err(bad());
    };
    let duration = Duration::from_secs(total);
    if duration.is_zero() {
        return Err(format!("'{text}': an approval must last at least 1s"));
    }
    if duration > MAX_EXPIRY {
        return Err(format!("'{text}': an approval may last at most {}h", MAX_EXPIRY.as_secs() / 3600));
    }
    Ok(duration)
}

/// Whether `approver` may approve `op` by `principal` on the key labelled `label` (for a
/// policy change: the policy in force's rule for approvers of every key). Never for oneself,
/// never by a principal without a rule granting `approve`, nor by one whose rule needs
/// approval itself (an approval would then need an approval).
pub fn check_approver(
    policy: &Policy,
    approver: &str,
    principal: &str,
    op: ManagementOp,
    label: &[u8],
) -> Result<()> {
    if approver == principal {
        return Err(Error::ActionProhibited);
    }
    let entitled = match op {
        ManagementOp::Policy => policy.may_approve_policy_change(approver),
        _ => policy.decide(approver, label, Operation::Approve) == Decision::Allow,
    };
    if entitled { Ok(()) } else { Err(Error::ActionProhibited) }
}

/// The state of an approval at `now` (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Consumed,
    Revoked,
    Expired,
}

impl ApprovalState {
    pub fn of(a: &ApprovalRecord, now: u64) -> ApprovalState {
        match (a.consumed_at, a.revoked_at) {
            (Some(_), _) => ApprovalState::Consumed,
            (None, Some(_)) => ApprovalState::Revoked,
            (None, None) if now >= a.expires_at => ApprovalState::Expired,
            (None, None) => ApprovalState::Pending,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Consumed => "consumed",
            ApprovalState::Revoked => "revoked",
            ApprovalState::Expired => "expired",
        }
    }
}

/// The approvals among `bound` (all bound to one principal, operation and key) that an
/// operation needing `quorum` approvals uses up at `now`: pending ones, one per distinct
/// approver other than `principal`, each approver still `entitled` (a principal of the
/// token allowed to approve under the policy in force), those expiring first chosen first.
/// `None` if there are fewer than `quorum` such approvers: the operation is refused and
/// nothing is used.
pub fn select<'a>(
    bound: &'a [ApprovalRecord],
    principal: &str,
    quorum: u32,
    now: u64,
    entitled: impl Fn(&str) -> bool,
) -> Option<Vec<&'a ApprovalRecord>> {
    let mut pending: Vec<&ApprovalRecord> = bound
        .iter()
        .filter(|a| {
            ApprovalState::of(a, now) == ApprovalState::Pending
                && a.approver != principal
                && entitled(&a.approver)
        })
        .collect();
    pending.sort_by_key(|a| (a.expires_at, a.id));
    let mut chosen: Vec<&ApprovalRecord> = Vec::new();
    for a in pending {
        if chosen.len() as u32 == quorum {
            break;
        }
        if !chosen.iter().any(|c| c.approver == a.approver) {
            chosen.push(a);
        }
    }
    if (chosen.len() as u32) < quorum.max(1) { None } else { Some(chosen) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(id: i64, approver: &str, expires_at: u64) -> ApprovalRecord {
        ApprovalRecord {
            id,
            approver: approver.into(),
            principal: "admin".into(),
            operation: "destroy".into(),
            key: "uid".into(),
            key_label: "dek-a-v1".into(),
            created_at: 0,
            expires_at,
            consumed_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn expiries_parse_within_bounds() {
        let secs = |t: &str| parse_expiry(t).map(|d| d.as_secs());
        assert_eq!(secs("1s"), Ok(1));
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("1d"), Ok(86_400));
        assert!(secs("24h1s").unwrap_err().contains("at most 24h"));
        assert!(secs("0s").unwrap_err().contains("at least 1s"));
        for bad in ["", "h", "1x", "-1s", "1.5h", "99999999999999999999s"] {
            assert!(secs(bad).unwrap_err().contains("not a duration"), "{bad}");
        }
    }

    #[test]
    fn a_quorum_takes_one_pending_approval_per_distinct_entitled_approver() {
        let mut used = approval(1, "alice", 100);
        used.consumed_at = Some(5);
        let mut revoked = approval(2, "carol", 100);
        revoked.revoked_at = Some(5);
        let bound = vec![
            used,
            revoked,
            approval(3, "alice", 50), // expired at now = 60
            approval(4, "bob", 200),
            approval(5, "bob", 150),
            approval(6, "admin", 200), // the principal itself
            approval(7, "dave", 200),  // no longer entitled
            approval(8, "erin", 300),
        ];
        let entitled = |n: &str| n != "dave";
        let ids =
            |q| select(&bound, "admin", q, 60, entitled).map(|v| v.iter().map(|a| a.id).collect::<Vec<_>>());
        assert_eq!(ids(1), Some(vec![5]), "the one expiring first");
        assert_eq!(ids(2), Some(vec![5, 8]), "bob counts once");
        assert_eq!(ids(3), None, "only bob and erin are left");
        assert_eq!(select(&bound, "admin", 1, 400, entitled), None, "all expired by then");
        assert!(select(&[], "admin", 0, 0, entitled).is_none(), "never approved by nobody");
    }

    #[test]
    fn approvers_are_others_entitled_to_approve() {
        let policy = Policy::parse(
            r#"{"key_permissions": {
                "admin": {"keys": ["*"], "operations": ["*"], "requires_approval": true},
                "alice": {"keys": ["dek-*"], "operations": ["approve"]},
                "bob": {"keys": ["*"], "operations": ["approve"]},
                "dave": {"keys": ["*"], "operations": ["approve"], "requires_approval": true}}}"#,
        )
        .unwrap();
        let check = |who, op, label: &[u8]| check_approver(&policy, who, "admin", op, label);
        assert_eq!(check("alice", ManagementOp::Destroy, b"dek-a-v1"), Ok(()));
        assert_eq!(check("alice", ManagementOp::Destroy, b"kek-v1"), Err(Error::ActionProhibited));
        assert_eq!(check("alice", ManagementOp::Policy, b""), Err(Error::ActionProhibited));
        assert_eq!(check("bob", ManagementOp::Policy, b""), Ok(()));
        assert_eq!(check("dave", ManagementOp::Rotate, b"kek-v1"), Err(Error::ActionProhibited));
        assert_eq!(check("nobody", ManagementOp::Modify, b"kek-v1"), Err(Error::ActionProhibited));
        assert_eq!(
            check_approver(&policy, "bob", "bob", ManagementOp::Modify, b"k"),
            Err(Error::ActionProhibited)
        );
        assert_eq!(ManagementOp::from_name("rotate"), Some(ManagementOp::Rotate));
        assert_eq!(ManagementOp::from_name("encrypt"), None);
        let change = |v: &[u8]| {
            Binding::change("uid-1", "k", &[crate::object::Attribute::new(cryptoki_sys::CKA_ID, v.to_vec())])
        };
        assert_ne!(change(b"a").key, change(b"b").key, "bound to the values");
        assert_eq!(Binding::uid_of(&change(b"a").key), "uid-1");
        assert_eq!(Binding::uid_of("uid-1"), "uid-1");
        let two = |first, second| Binding::change("u", "k", &[first, second]).key;
        let (label, id) = (
            || crate::object::Attribute::new(cryptoki_sys::CKA_LABEL, b"x".to_vec()),
            || crate::object::Attribute::new(cryptoki_sys::CKA_ID, b"x".to_vec()),
        );
        assert_eq!(two(label(), id()), two(id(), label()), "in any order");
        assert_ne!(two(label(), label()), two(id(), id()), "bound to the types");
        let b = Binding::policy("{}");
        assert_eq!(b.key.len(), 64);
        assert!(b.label.starts_with("policy sha256:") && b.key.starts_with(&b.label[14..]));
    }
}
