//! The envelope key hierarchy: a master key wraps key-encryption keys (KEKs), which wrap the
//! per-tenant data-encryption keys (DEKs), which encrypt data.
//!
//! | tier | may do | stored as | rotation (default) |
//! |---|---|---|---|
//! | master | wrap/unwrap KEKs, nothing else; never extractable | token-key sealed | yearly |
//! | KEK | wrap/unwrap DEKs, nothing else; leaves only wrapped by a master key | wrapped by the master, then sealed | quarterly |
//! | DEK | encrypt/decrypt data with AES-GCM; leaves only wrapped by a KEK | wrapped by a KEK, then sealed | monthly |
//!
//! This module holds the rules as pure functions of objects and templates; `module` calls them
//! at every entry point (create, generate, copy, set, destroy, wrap, unwrap, derive, `*Init`),
//! so no path around them exists. Keys of the hierarchy are made only by `C_GenerateKey` with
//! a `CKA_ECM_TIER` template: the first of a family is version 1, each later one rotates the
//! family (the previous version becomes decrypt-only).

pub mod rotation;

use cryptoki_sys::*;

use crate::object::attribute::{decode_ulong, encode_bool, encode_ulong};
use crate::object::{Attribute, Object};
use crate::vendor::*;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Master,
    Kek,
    Dek,
}

impl Tier {
    pub fn from_code(code: CK_ULONG) -> Result<Tier> {
        match code {
            CKT_ECM_MASTER => Ok(Tier::Master),
            CKT_ECM_KEK => Ok(Tier::Kek),
            CKT_ECM_DEK => Ok(Tier::Dek),
            _ => Err(Error::AttributeValueInvalid),
        }
    }

    pub fn code(self) -> CK_ULONG {
        match self {
            Tier::Master => CKT_ECM_MASTER,
            Tier::Kek => CKT_ECM_KEK,
            Tier::Dek => CKT_ECM_DEK,
        }
    }

    /// The tier whose keys wrap this tier's keys.
    pub fn parent(self) -> Option<Tier> {
        match self {
            Tier::Master => None,
            Tier::Kek => Some(Tier::Master),
            Tier::Dek => Some(Tier::Kek),
        }
    }

    /// The tier this tier's keys wrap.
    pub fn child(self) -> Option<Tier> {
        match self {
            Tier::Master => Some(Tier::Kek),
            Tier::Kek => Some(Tier::Dek),
            Tier::Dek => None,
        }
    }

    /// The seed's label for a version: `master-v<N>`, `kek-v<N>`, `dek-<tenant>-v<N>`, so
    /// that permission patterns over labels (`dek-*`) work.
    pub fn label(self, tenant: Option<&[u8]>, version: CK_ULONG) -> Vec<u8> {
        match (self, tenant) {
            (Tier::Master, _) => format!("master-v{version}").into_bytes(),
            (Tier::Kek, _) => format!("kek-v{version}").into_bytes(),
            (Tier::Dek, Some(t)) => [b"dek-".as_slice(), t, format!("-v{version}").as_bytes()].concat(),
            (Tier::Dek, None) => format!("dek-v{version}").into_bytes(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    DecryptOnly,
}

impl KeyState {
    pub fn code(self) -> CK_ULONG {
        match self {
            KeyState::Active => CKS_ECM_ACTIVE,
            KeyState::DecryptOnly => CKS_ECM_DECRYPT_ONLY,
        }
    }
}

/// The tier of an object of the hierarchy, `None` for any other object.
pub fn tier_of(object: &Object) -> Option<Tier> {
    object.ulong(CKA_ECM_TIER).and_then(|c| Tier::from_code(c).ok())
}

pub fn state_of(object: &Object) -> Option<KeyState> {
    match object.ulong(CKA_ECM_KEY_STATE)? {
        CKS_ECM_ACTIVE => Some(KeyState::Active),
        CKS_ECM_DECRYPT_ONLY => Some(KeyState::DecryptOnly),
        _ => None,
    }
}

/// The vendor attributes of the hierarchy, which only `C_GenerateKey` may name.
pub const HIERARCHY_ATTRIBUTES: [CK_ATTRIBUTE_TYPE; 9] = [
    CKA_ECM_TIER,
    CKA_ECM_TENANT,
    CKA_ECM_KEY_VERSION,
    CKA_ECM_KEY_STATE,
    CKA_ECM_ROTATION_PERIOD,
    CKA_ECM_PARENT_ID,
    CKA_ECM_CREATED_AT,
    CKA_ECM_ROTATED_AT,
    CKA_ECM_NEXT_ROTATION,
];

/// Attributes a `C_GenerateKey` template of the hierarchy may set itself.
const GENERATE_SETTABLE: [CK_ATTRIBUTE_TYPE; 3] = [CKA_ECM_TIER, CKA_ECM_TENANT, CKA_ECM_ROTATION_PERIOD];

/// `C_CreateObject`, `C_UnwrapKey`, `C_DeriveKey` and `C_CopyObject` cannot make keys of the
/// hierarchy: they are generated inside, by `C_GenerateKey`, or not at all.
pub fn refuse_outside_generation(template: &[Attribute]) -> Result<()> {
    if template.iter().any(|a| HIERARCHY_ATTRIBUTES.contains(&a.kind)) {
        return Err(Error::TemplateInconsistent);
    }
    Ok(())
}

/// The tier a `C_GenerateKey` template asks for, if any; the module-set attributes of the
/// hierarchy may not be named.
pub fn requested_tier(template: &[Attribute]) -> Result<Option<Tier>> {
    if template.iter().any(|a| HIERARCHY_ATTRIBUTES.contains(&a.kind) && !GENERATE_SETTABLE.contains(&a.kind))
    {
        return Err(Error::AttributeReadOnly);
    }
    let Some(tier) = template.iter().find(|a| a.kind == CKA_ECM_TIER) else {
        if template.iter().any(|a| GENERATE_SETTABLE.contains(&a.kind)) {
            return Err(Error::TemplateIncomplete);
        }
        return Ok(None);
    };
    let code = decode_ulong(&tier.value).ok_or(Error::AttributeValueInvalid)?;
    Ok(Some(Tier::from_code(code)?))
}

/// What a key of each tier is, whatever the template says; a template may repeat these
/// values but not contradict them (`CKR_TEMPLATE_INCONSISTENT`).
pub fn fixed_attributes(tier: Tier) -> Vec<Attribute> {
    let b = Attribute::bool;
    let mut fixed = vec![
        Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
        Attribute::ulong(CKA_VALUE_LEN, 32),
        b(CKA_TOKEN, true),
        b(CKA_PRIVATE, true),
        b(CKA_SENSITIVE, true),
        b(CKA_SIGN, false),
        b(CKA_VERIFY, false),
        b(CKA_DERIVE, false),
        b(CKA_COPYABLE, false),
        b(CKA_TRUSTED, false),
        b(CKA_WRAP_WITH_TRUSTED, false),
    ];
    let (extractable, wraps, encrypts) = match tier {
        // The master key never leaves; KEKs and DEKs leave only wrapped by their parent tier.
        Tier::Master => (false, true, false),
        Tier::Kek => (true, true, false),
        Tier::Dek => (true, false, true),
    };
    fixed.extend([
        b(CKA_EXTRACTABLE, extractable),
        b(CKA_WRAP, wraps),
        b(CKA_UNWRAP, wraps),
        b(CKA_ENCRYPT, encrypts),
        b(CKA_DECRYPT, encrypts),
    ]);
    if tier == Tier::Dek {
        fixed.push(Attribute::new(CKA_ALLOWED_MECHANISMS, encode_ulong(CKM_AES_GCM)));
    }
    fixed
}

/// The longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

/// The tenant grammar: 1 to [`MAX_TENANT_LEN`] ASCII letters, digits and `_`. No `-`, the
/// separator of the labels `dek-<tenant>-v<N>`, so that a policy pattern `dek-acme-*` names
/// tenant acme's DEKs and nobody else's (with `-` allowed, a tenant `acme-eu` would fall
/// under it too).
pub fn is_tenant_name(name: &[u8]) -> bool {
    (1..=MAX_TENANT_LEN).contains(&name.len()) && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The template of a hierarchy key: the caller's, checked against the tier's fixed values,
/// with those values added.
pub fn generation_template(tier: Tier, template: &[Attribute]) -> Result<Vec<Attribute>> {
    let fixed = fixed_attributes(tier);
    let mut out: Vec<Attribute> = Vec::with_capacity(template.len() + fixed.len());
    for a in template {
        if let Some(f) = fixed.iter().find(|f| f.kind == a.kind)
            && f.value != a.value
        {
            return Err(Error::TemplateInconsistent);
        }
        if a.kind == CKA_LABEL {
            // Labels name the version (`dek-<tenant>-v<N>`); the module sets them.
            return Err(Error::TemplateInconsistent);
        }
        if a.kind == CKA_ECM_TENANT && tier != Tier::Dek {
            return Err(Error::TemplateInconsistent);
        }
        if a.kind == CKA_ECM_TENANT && !is_tenant_name(&a.value) {
            return Err(Error::AttributeValueInvalid);
        }
        if !HIERARCHY_ATTRIBUTES.contains(&a.kind) && !fixed.iter().any(|f| f.kind == a.kind) {
            out.push(a.clone());
        }
    }
    if tier == Tier::Dek && !template.iter().any(|a| a.kind == CKA_ECM_TENANT) {
        return Err(Error::TemplateIncomplete);
    }
    out.extend(fixed);
    Ok(out)
}

/// May `key` be used for `usage` (`CKA_ENCRYPT`, `CKA_WRAP`, ...)? A superseded version only
/// decrypts and unwraps. (What each tier may do at all is in its fixed usage flags.)
pub fn check_use(key: &Object, usage: CK_ATTRIBUTE_TYPE) -> Result<()> {
    if tier_of(key).is_some()
        && state_of(key) != Some(KeyState::Active)
        && matches!(usage, CKA_ENCRYPT | CKA_WRAP | CKA_SIGN)
    {
        return Err(Error::KeyFunctionNotPermitted);
    }
    Ok(())
}

/// `C_WrapKey` between keys of the hierarchy: a master key wraps only KEKs and a KEK only
/// DEKs; a KEK leaves only under a master key, a DEK only under a KEK.
pub fn check_wrap(wrapping: &Object, target: &Object) -> Result<()> {
    let (w, t) = (tier_of(wrapping), tier_of(target));
    if let Some(w) = w
        && w.child() != t
    {
        return Err(Error::KeyFunctionNotPermitted);
    }
    if let Some(t) = t
        && t.parent() != w
    {
        return Err(Error::KeyUnextractable);
    }
    check_use(wrapping, CKA_WRAP)
}

/// `C_UnwrapKey` with a key of the hierarchy as the unwrapping key: keys of the hierarchy
/// are made only by generation, so a master key or KEK unwraps nothing into the token.
pub fn check_unwrap(unwrapping: &Object) -> Result<()> {
    if tier_of(unwrapping).is_some() {
        return Err(Error::KeyFunctionNotPermitted);
    }
    Ok(())
}

/// `C_SetAttributeValue` on a key of the hierarchy: everything about it is fixed by its tier
/// and by rotation, so nothing may be changed but its `CKA_ID`.
pub fn check_change(object: &Object, changes: &[Attribute]) -> Result<()> {
    if tier_of(object).is_some()
        && changes.iter().any(|a| a.kind != CKA_ID && object.get(a.kind) != Some(&a.value))
    {
        return Err(Error::AttributeReadOnly);
    }
    if changes.iter().any(|a| HIERARCHY_ATTRIBUTES.contains(&a.kind)) && tier_of(object).is_none() {
        return Err(Error::AttributeTypeInvalid);
    }
    Ok(())
}

/// Retiring (destroying) a version: refused while it is the current one or while keys of the
/// next tier still depend on it (are wrapped by it).
pub fn check_destroy<'a>(object: &Object, others: impl Iterator<Item = &'a Object>) -> Result<()> {
    if tier_of(object).is_none() {
        return Ok(());
    }
    if state_of(object) == Some(KeyState::Active) {
        return Err(Error::ActionProhibited);
    }
    let me = object.get(CKA_UNIQUE_ID);
    if others.into_iter().any(|o| tier_of(o).is_some() && o.get(CKA_ECM_PARENT_ID) == me) {
        return Err(Error::ActionProhibited);
    }
    Ok(())
}

/// The attributes rotation sets on the superseded version.
pub fn superseded(now: u64) -> Vec<Attribute> {
    vec![
        Attribute::ulong(CKA_ECM_KEY_STATE, KeyState::DecryptOnly.code()),
        Attribute::ulong(CKA_ECM_ROTATED_AT, now as CK_ULONG),
    ]
}

pub fn bool_attr(kind: CK_ATTRIBUTE_TYPE, v: bool) -> (CK_ATTRIBUTE_TYPE, Vec<u8>) {
    (kind, encode_bool(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::template::{self, Actor, Origin};

    fn key(tier: Tier, state: KeyState, unique: &[u8], parent: Option<&[u8]>) -> Object {
        let mut t = generation_template(
            tier,
            &[Attribute::ulong(CKA_ECM_TIER, tier.code()), Attribute::new(CKA_ECM_TENANT, b"t".to_vec())]
                [..if tier == Tier::Dek { 2 } else { 1 }],
        )
        .unwrap();
        t.retain(|a| a.kind != CKA_CLASS && a.kind != CKA_KEY_TYPE);
        let origin = Origin::Generate { mechanism: CKM_AES_KEY_GEN };
        let mut o = template::new_object(&t, Some((CKO_SECRET_KEY, CKK_AES)), origin, Actor { is_so: false })
            .unwrap();
        o.set(CKA_ECM_TIER, encode_ulong(tier.code()));
        o.set(CKA_ECM_KEY_STATE, encode_ulong(state.code()));
        o.set(CKA_UNIQUE_ID, unique.to_vec());
        if let Some(p) = parent {
            o.set(CKA_ECM_PARENT_ID, p.to_vec());
        }
        o
    }

    #[test]
    fn templates_may_repeat_the_fixed_values_but_not_contradict_them() {
        let tier = [Attribute::ulong(CKA_ECM_TIER, CKT_ECM_MASTER)];
        assert_eq!(requested_tier(&tier), Ok(Some(Tier::Master)));
        let ok =
            generation_template(Tier::Master, &[tier[0].clone(), Attribute::bool(CKA_EXTRACTABLE, false)]);
        assert!(ok.unwrap().contains(&Attribute::bool(CKA_WRAP, true)));
        for bad in [
            Attribute::bool(CKA_EXTRACTABLE, true),
            Attribute::bool(CKA_ENCRYPT, true),
            Attribute::bool(CKA_SENSITIVE, false),
            Attribute::bool(CKA_TOKEN, false),
            Attribute::ulong(CKA_VALUE_LEN, 16),
            Attribute::new(CKA_LABEL, b"mine".to_vec()),
            Attribute::new(CKA_ECM_TENANT, b"t".to_vec()),
        ] {
            assert_eq!(
                generation_template(Tier::Master, &[tier[0].clone(), bad.clone()]).unwrap_err(),
                Error::TemplateInconsistent,
                "{bad:?}"
            );
        }
        let dek = [Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK)];
        assert_eq!(generation_template(Tier::Dek, &dek).unwrap_err(), Error::TemplateIncomplete);
        assert_eq!(
            requested_tier(&[Attribute::ulong(CKA_ECM_KEY_VERSION, 3)]).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert_eq!(
            requested_tier(&[Attribute::new(CKA_ECM_TENANT, b"t".to_vec())]).unwrap_err(),
            Error::TemplateIncomplete
        );
        assert_eq!(
            requested_tier(&[Attribute::ulong(CKA_ECM_TIER, 9)]).unwrap_err(),
            Error::AttributeValueInvalid
        );
        assert_eq!(refuse_outside_generation(&tier), Err(Error::TemplateInconsistent));
        assert_eq!(Tier::Dek.label(Some(b"acme"), 3), b"dek-acme-v3");
    }

    #[test]
    fn each_tier_wraps_only_the_next_and_leaves_only_under_the_previous() {
        let m = key(Tier::Master, KeyState::Active, b"m", None);
        let k = key(Tier::Kek, KeyState::Active, b"k", Some(b"m"));
        let d = key(Tier::Dek, KeyState::Active, b"d", Some(b"k"));
        let plain = {
            let t = [
                Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
                Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
                Attribute::new(CKA_VALUE, vec![1; 32]),
            ];
            template::new_object(&t, None, Origin::Create, Actor { is_so: false }).unwrap()
        };
        assert_eq!(check_wrap(&m, &k), Ok(()));
        assert_eq!(check_wrap(&k, &d), Ok(()));
        assert_eq!(check_wrap(&m, &d), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_wrap(&k, &plain), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_wrap(&plain, &d), Err(Error::KeyUnextractable));
        assert_eq!(check_wrap(&d, &k), Err(Error::KeyFunctionNotPermitted));
        let old_kek = key(Tier::Kek, KeyState::DecryptOnly, b"k0", Some(b"m"));
        assert_eq!(check_wrap(&old_kek, &d), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_unwrap(&k), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_unwrap(&plain), Ok(()));
    }

    #[test]
    fn superseded_versions_decrypt_only_and_retire_only_without_dependents() {
        let old = key(Tier::Dek, KeyState::DecryptOnly, b"d1", Some(b"k"));
        let current = key(Tier::Dek, KeyState::Active, b"d2", Some(b"k"));
        assert_eq!(check_use(&old, CKA_ENCRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_use(&old, CKA_DECRYPT), Ok(()));
        assert_eq!(check_use(&current, CKA_ENCRYPT), Ok(()));
        assert_eq!(check_destroy(&current, [].iter()), Err(Error::ActionProhibited));
        assert_eq!(check_destroy(&old, [&current].into_iter()), Ok(()));
        let old_kek = key(Tier::Kek, KeyState::DecryptOnly, b"k", Some(b"m"));
        assert_eq!(check_destroy(&old_kek, [&old].into_iter()), Err(Error::ActionProhibited));
        assert_eq!(
            check_change(&current, &[Attribute::new(CKA_LABEL, b"x".to_vec())]),
            Err(Error::AttributeReadOnly)
        );
        assert_eq!(check_change(&current, &[Attribute::new(CKA_ID, b"x".to_vec())]), Ok(()));
    }
}
