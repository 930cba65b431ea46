//! Planning a new version of a family of the hierarchy: which version it is, which key wraps
//! it, which version it supersedes, and which keys of the next tier must be rewrapped under
//! it. The plan is pure; `module` carries it out in one store transaction.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{KeyState, Tier, state_of, tier_of};
use crate::mechanism::{MechanismParams, SecretKey, aes_wrap};
use crate::object::attribute::encode_ulong;
use crate::object::{Attribute, Object};
use crate::vendor::*;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tier: Tier,
    pub tenant: Option<Vec<u8>>,
    pub version: CK_ULONG,
    /// The store id of the active key of the parent tier, which wraps the new key.
    pub parent: Option<i64>,
    /// The store id of the version this one supersedes.
    pub supersedes: Option<i64>,
    /// Keys of the next tier to rewrap under the new key (a new master or KEK takes over
    /// every key below it, so the old one can be retired).
    pub rewrap: Vec<i64>,
    /// The hierarchy attributes and the label of the new key.
    pub attributes: Vec<Attribute>,
}

/// Plans the next version of the family (`tier`, `tenant`) among `existing` token objects.
pub fn plan<'a>(
    tier: Tier,
    tenant: Option<&[u8]>,
    period: u64,
    now: u64,
    existing: impl Iterator<Item = (i64, &'a Object)> + Clone,
) -> Result<Plan> {
    let in_family =
        |o: &Object| tier_of(o) == Some(tier) && (tier != Tier::Dek || o.get(CKA_ECM_TENANT) == tenant);
    let version = existing
        .clone()
        .filter(|(_, o)| in_family(o))
        .filter_map(|(_, o)| o.ulong(CKA_ECM_KEY_VERSION))
        .max()
        .unwrap_or(0)
        + 1;
    let supersedes = existing
        .clone()
        .find(|(_, o)| in_family(o) && state_of(o) == Some(KeyState::Active))
        .map(|(id, _)| id);
    let parent = match tier.parent() {
        None => None,
        Some(parent_tier) => {
            let active = existing
                .clone()
                .find(|(_, o)| tier_of(o) == Some(parent_tier) && state_of(o) == Some(KeyState::Active));
            // A KEK needs a master key to wrap it, a DEK a KEK.
            Some(active.ok_or(Error::TemplateInconsistent)?.0)
        }
    };
    let rewrap = match tier.child() {
        Some(child) => existing.filter(|(_, o)| tier_of(o) == Some(child)).map(|(id, _)| id).collect(),
        None => Vec::new(),
    };
    let mut attributes = vec![
        Attribute::ulong(CKA_ECM_TIER, tier.code()),
        Attribute::ulong(CKA_ECM_KEY_VERSION, version),
        Attribute::ulong(CKA_ECM_KEY_STATE, KeyState::Active.code()),
        Attribute::ulong(CKA_ECM_ROTATION_PERIOD, period as CK_ULONG),
        Attribute::ulong(CKA_ECM_CREATED_AT, now as CK_ULONG),
        Attribute::ulong(CKA_ECM_ROTATED_AT, 0),
        Attribute::ulong(CKA_ECM_NEXT_ROTATION, now.saturating_add(period) as CK_ULONG),
        Attribute::new(CKA_LABEL, tier.label(tenant, version)),
        Attribute::new(CKA_ID, tier.label(tenant, version)),
    ];
    if let Some(t) = tenant {
        attributes.push(Attribute::new(CKA_ECM_TENANT, t.to_vec()));
    }
    Ok(Plan { tier, tenant: tenant.map(<[u8]>::to_vec), version, parent, supersedes, rewrap, attributes })
}

/// A key's value as stored at rest below the master tier: wrapped (RFC 5649) by its
/// parent's value, before the store seals it under the token key as well.
pub fn wrap_value(parent: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    let kek = SecretKey { key_type: CKK_AES, value: Zeroizing::new(parent.to_vec()) };
    aes_wrap::wrap(CKM_AES_KEY_WRAP_KWP, &MechanismParams::None, &kek, value)
}

pub fn unwrap_value(parent: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let kek = SecretKey { key_type: CKK_AES, value: Zeroizing::new(parent.to_vec()) };
    aes_wrap::unwrap(CKM_AES_KEY_WRAP_KWP, &MechanismParams::None, &kek, wrapped)
}

/// The attribute naming a key's parent.
pub fn parent_attribute(parent_unique_id: &[u8]) -> Attribute {
    Attribute::new(CKA_ECM_PARENT_ID, parent_unique_id.to_vec())
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn encode_time(t: u64) -> Vec<u8> {
    encode_ulong(t as CK_ULONG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::template::{self, Actor, Origin};

    fn tiered(tier: Tier, tenant: Option<&[u8]>, version: CK_ULONG, state: KeyState) -> Object {
        let t = [Attribute::ulong(CKA_VALUE_LEN, 32)];
        let origin = Origin::Generate { mechanism: CKM_AES_KEY_GEN };
        let mut o = template::new_object(&t, Some((CKO_SECRET_KEY, CKK_AES)), origin, Actor { is_so: false })
            .unwrap();
        o.set(CKA_ECM_TIER, encode_ulong(tier.code()));
        o.set(CKA_ECM_KEY_VERSION, encode_ulong(version));
        o.set(CKA_ECM_KEY_STATE, encode_ulong(state.code()));
        if let Some(t) = tenant {
            o.set(CKA_ECM_TENANT, t.to_vec());
        }
        o
    }

    #[test]
    fn versions_parents_and_rewraps_follow_the_family() {
        let objects = [
            (1, tiered(Tier::Master, None, 1, KeyState::Active)),
            (2, tiered(Tier::Kek, None, 1, KeyState::Active)),
            (3, tiered(Tier::Dek, Some(b"a"), 1, KeyState::DecryptOnly)),
            (4, tiered(Tier::Dek, Some(b"a"), 2, KeyState::Active)),
            (5, tiered(Tier::Dek, Some(b"b"), 1, KeyState::Active)),
        ];
        let all = || objects.iter().map(|(id, o)| (*id, o));
        let dek = plan(Tier::Dek, Some(b"a"), 10, 100, all()).unwrap();
        assert_eq!((dek.version, dek.parent, dek.supersedes), (3, Some(2), Some(4)));
        assert!(dek.rewrap.is_empty());
        assert!(dek.attributes.contains(&Attribute::new(CKA_LABEL, b"dek-a-v3".to_vec())));
        assert!(dek.attributes.contains(&Attribute::ulong(CKA_ECM_NEXT_ROTATION, 110)));
        let new_tenant = plan(Tier::Dek, Some(b"c"), 10, 100, all()).unwrap();
        assert_eq!((new_tenant.version, new_tenant.supersedes), (1, None));
        let kek = plan(Tier::Kek, None, 10, 100, all()).unwrap();
        assert_eq!(
            (kek.version, kek.parent, kek.supersedes, kek.rewrap),
            (2, Some(1), Some(2), vec![3, 4, 5])
        );
        let master = plan(Tier::Master, None, 10, 100, all()).unwrap();
        assert_eq!((master.version, master.parent, master.rewrap), (2, None, vec![2]));
        // No KEK without a master, no DEK without a KEK.
        assert_eq!(plan(Tier::Kek, None, 1, 1, std::iter::empty()).unwrap_err(), Error::TemplateInconsistent);
        let only_master = || objects[..1].iter().map(|(id, o)| (*id, o));
        assert_eq!(
            plan(Tier::Dek, Some(b"a"), 1, 1, only_master()).unwrap_err(),
            Error::TemplateInconsistent
        );
    }

    #[test]
    fn values_round_trip_through_their_parent_and_nothing_else() {
        let wrapped = wrap_value(&[1; 32], &[9; 32]).unwrap();
        assert_eq!(unwrap_value(&[1; 32], &wrapped).unwrap().as_slice(), &[9; 32]);
        assert!(unwrap_value(&[2; 32], &wrapped).is_err());
        assert!(!wrapped.windows(32).any(|w| w == [9; 32]));
    }
}
