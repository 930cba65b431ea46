//! From a caller's template to an object, by the rules of `rules.rs`.
//!
//! [`new_object`] serves `C_CreateObject` and `C_GenerateKey` (and later `C_UnwrapKey` and
//! `C_DeriveKey`); [`changed_object`] serves `C_SetAttributeValue` and `C_CopyObject`. Each
//! returns a new object or an error, never a half-changed one.

use cryptoki_sys::*;

use super::attribute::{Attribute, decode_bool, decode_ulong, encode_ulong};
use super::instance::Object;
use super::rules::*;
use super::values::Values;
use crate::mechanism::rng;
use crate::{Error, Result};

/// How a new object comes to be; it decides which footnotes apply and what the module sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Create,
    Generate {
        mechanism: CK_MECHANISM_TYPE,
    },
    /// `C_UnwrapKey`: the value comes from the wrapped blob.
    Unwrap,
    /// `C_DeriveKey`: the value comes from the derivation; the new key has always been
    /// sensitive (never been extractable) only if the base key has.
    Derive {
        base_always_sensitive: bool,
        base_never_extractable: bool,
    },
}

/// How an existing object is being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Set,
    Copy,
}

/// Who is asking; only the SO may set `CKA_TRUSTED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub is_so: bool,
}

/// Collapses a template into one value per attribute; repeating an attribute with a
/// different value is inconsistent.
fn collect(template: &[Attribute]) -> Result<Values> {
    let mut values = Values::new();
    for a in template {
        match values.get(a.kind) {
            Some(previous) if previous != a.value.as_slice() => return Err(Error::TemplateInconsistent),
            Some(_) => {}
            None => values.insert(a.kind, &a.value),
        }
    }
    Ok(values)
}

fn ulong_in(values: &Values, attribute: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
    match values.get(attribute) {
        None => Ok(None),
        Some(v) => decode_ulong(v).map(Some).ok_or(Error::AttributeValueInvalid),
    }
}

/// Builds a new object of the class and subtype the template names; `implied` gives the
/// class and subtype an operation fixes (a key generation mechanism makes one key type), which
/// the template may repeat but not contradict.
pub fn new_object(
    template: &[Attribute],
    implied: Option<(CK_OBJECT_CLASS, CK_ULONG)>,
    origin: Origin,
    actor: Actor,
) -> Result<Object> {
    let mut values = collect(template)?;
    if let Some((class, subtype)) = implied {
        for (attribute, value) in [(CKA_CLASS, class), (CKA_KEY_TYPE, subtype)] {
            match ulong_in(&values, attribute)? {
                Some(given) if given != value => return Err(Error::TemplateInconsistent),
                _ => {
                    values.insert(attribute, &value.to_ne_bytes());
                }
            }
        }
    }
    let class = ulong_in(&values, CKA_CLASS)?.ok_or(Error::TemplateIncomplete)?;
    let subtype = match Profile::subtype_attribute(class) {
        Some(a) => ulong_in(&values, a)?,
        None => None,
    };
    let profile = Profile::of(class, subtype)?;
    let implied_attributes = if implied.is_some() { &[CKA_CLASS, CKA_KEY_TYPE][..] } else { &[] };

    let (required, forbidden) = match origin {
        Origin::Create => (REQUIRED_ON_CREATE, FORBIDDEN_ON_CREATE),
        Origin::Generate { .. } => (REQUIRED_ON_GENERATE, FORBIDDEN_ON_GENERATE),
        // Values come from the blob or the derivation, as they do from a generator; what a
        // generator must be told (a length, a curve) the blob or the mechanism carries.
        Origin::Unwrap | Origin::Derive { .. } => (0, FORBIDDEN_ON_GENERATE),
    };
    for (attribute, value) in values.iter() {
        let rule = profile.rule(attribute).ok_or(Error::AttributeTypeInvalid)?;
        if !rule.kind.accepts(value) {
            return Err(Error::AttributeValueInvalid);
        }
        if rule.flags & MODULE_MANAGED != 0 {
            return Err(Error::AttributeReadOnly);
        }
        if rule.flags & forbidden != 0 && !implied_attributes.contains(&attribute) {
            return Err(Error::TemplateInconsistent);
        }
        if rule.flags & SO_SETS_TRUE != 0 && decode_bool(value) == Some(true) && !actor.is_so {
            return Err(Error::AttributeReadOnly);
        }
    }
    for rule in profile.rules() {
        if values.contains(rule.attribute) {
            continue;
        }
        if rule.flags & required != 0 {
            return Err(Error::TemplateIncomplete);
        }
        rule.default.write_to(&mut values, rule.attribute);
    }

    let mut object = Object::from_parts(values, Vec::new())?;
    set_module_managed(&mut object, origin)?;
    check_consistency(&mut object, origin)?;
    Ok(object)
}

/// The attributes only the module sets: where the object came from and what it has always
/// been.
fn set_module_managed(object: &mut Object, origin: Origin) -> Result<()> {
    let profile = object.profile();
    object.set(CKA_UNIQUE_ID, new_unique_id()?);
    if !profile.is_key() {
        return Ok(());
    }
    let generated = matches!(origin, Origin::Generate { .. });
    object.set_bool(CKA_LOCAL, generated);
    let mechanism = match origin {
        Origin::Generate { mechanism } => mechanism,
        _ => CK_UNAVAILABLE_INFORMATION,
    };
    object.set_ulong(CKA_KEY_GEN_MECHANISM, mechanism);
    if profile.has_sensitivity() {
        let (history_sensitive, history_unextractable) = match origin {
            Origin::Generate { .. } => (true, true),
            Origin::Derive { base_always_sensitive, base_never_extractable } => {
                (base_always_sensitive, base_never_extractable)
            }
            Origin::Create | Origin::Unwrap => (false, false),
        };
        let always_sensitive = history_sensitive && object.flag(CKA_SENSITIVE);
        let never_extractable = history_unextractable && !object.flag(CKA_EXTRACTABLE);
        object.set_bool(CKA_ALWAYS_SENSITIVE, always_sensitive);
        object.set_bool(CKA_NEVER_EXTRACTABLE, never_extractable);
    }
    Ok(())
}

/// A fresh `CKA_UNIQUE_ID`: 128 random bits in lowercase hex. Written digit by digit into
/// one buffer: a `format!` per byte cost more than the rest of a `C_UnwrapKey`'s template
/// work (17 allocations on every new object).
fn new_unique_id() -> Result<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let raw = rng::bytes::<16>()?;
    let mut id = Vec::with_capacity(2 * raw.len());
    for b in raw {
        id.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    Ok(id)
}

/// Checks across attributes that the rows alone cannot express, and derives the attributes
/// that follow from others (`CKA_VALUE_LEN`, `CKA_MODULUS_BITS`).
fn check_consistency(object: &mut Object, origin: Origin) -> Result<()> {
    let nonempty = |o: &Object, a| o.get(a).is_some_and(|v| !v.is_empty());
    match object.profile() {
        Profile::SecretKey if origin == Origin::Create => {
            let len = object.get(CKA_VALUE).map_or(0, <[u8]>::len);
            let ok = match object.key_type() {
                Some(CKK_AES) => matches!(len, 16 | 24 | 32),
                _ => len > 0,
            };
            if !ok {
                return Err(Error::AttributeValueInvalid);
            }
            object.set(CKA_VALUE_LEN, encode_ulong(len as CK_ULONG));
        }
        Profile::RsaPublicKey | Profile::RsaPrivateKey if origin == Origin::Create => {
            let modulus = object.get(CKA_MODULUS).unwrap_or_default();
            let first = modulus.iter().position(|b| *b != 0);
            let Some(first) = first else { return Err(Error::AttributeValueInvalid) };
            if !nonempty(object, CKA_PUBLIC_EXPONENT) {
                return Err(Error::AttributeValueInvalid);
            }
            if object.profile() == Profile::RsaPrivateKey && !nonempty(object, CKA_PRIVATE_EXPONENT) {
                return Err(Error::AttributeValueInvalid);
            }
            if object.profile() == Profile::RsaPublicKey {
                let bits = (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize;
                object.set(CKA_MODULUS_BITS, encode_ulong(bits as CK_ULONG));
            }
            check_key_material(object)?;
        }
        Profile::EcPublicKey | Profile::EcPrivateKey if origin == Origin::Create => {
            let point_or_value =
                if object.profile() == Profile::EcPublicKey { CKA_EC_POINT } else { CKA_VALUE };
            if !nonempty(object, CKA_EC_PARAMS) || !nonempty(object, point_or_value) {
                return Err(Error::AttributeValueInvalid);
            }
            // An Edwards or Montgomery curve only in a key of its own type, and back.
            let params = object.get(CKA_EC_PARAMS).unwrap_or_default();
            if object.key_type() != Some(crate::mechanism::ec::key_type_of_params(params)) {
                return Err(Error::TemplateInconsistent);
            }
            check_key_material(object)?;
        }
        _ => {}
    }
    Ok(())
}

/// Checks an imported asymmetric key with the mechanism layer (a point on its curve,
/// consistent RSA components) and records its `CKA_PUBLIC_KEY_INFO`. A key of a size the
/// mechanisms do not use is kept: using it fails then, with `CKR_KEY_SIZE_RANGE`.
fn check_key_material(object: &mut Object) -> Result<()> {
    use crate::mechanism::{KeyMaterial, ec, encoding, rsa};
    let material = object.key_material().map_err(|_| Error::AttributeValueInvalid)?;
    let checked = match &material {
        KeyMaterial::RsaPublic(k) => rsa::check_public_key(k),
        KeyMaterial::RsaPrivate(k) => rsa::check_private_key(k),
        KeyMaterial::EcPublic(k) => ec::check_public_key(k),
        KeyMaterial::EcPrivate(k) => ec::check_private_key(k),
        KeyMaterial::Secret(_) => Ok(()),
    };
    match checked {
        Ok(()) | Err(Error::KeySizeRange) => {}
        Err(_) => return Err(Error::AttributeValueInvalid),
    }
    if object.get(CKA_PUBLIC_KEY_INFO).is_none_or(<[u8]>::is_empty)
        && let Ok(info) = encoding::public_key_info(&material)
    {
        object.set(CKA_PUBLIC_KEY_INFO, info);
    }
    Ok(())
}

/// Applies `changes` to a copy of `object` for `C_SetAttributeValue` or `C_CopyObject`.
pub fn changed_object(
    object: &Object,
    changes: &[Attribute],
    change: Change,
    actor: Actor,
) -> Result<Object> {
    let changes = collect(changes)?;
    let profile = object.profile();
    let mut new = object.clone();
    for (attribute, value) in changes.iter() {
        let rule = profile.rule(attribute).ok_or(Error::AttributeTypeInvalid)?;
        if !rule.kind.accepts(value) {
            return Err(Error::AttributeValueInvalid);
        }
        let unchanged = object.get(attribute) == Some(value);
        let settable = match change {
            Change::Set => rule.flags & MODIFIABLE != 0,
            Change::Copy => rule.flags & (MODIFIABLE | COPY_SETTABLE) != 0,
        };
        // Restating a read-only attribute's current value changes nothing and is allowed.
        if !settable && !unchanged {
            return Err(Error::AttributeReadOnly);
        }
        if rule.kind == ValueKind::Bool {
            let old = object.flag(attribute);
            let new_value = decode_bool(value).ok_or(Error::AttributeValueInvalid)?;
            let forbidden = (rule.flags & ONLY_TO_TRUE != 0 && old && !new_value)
                || (rule.flags & ONLY_TO_FALSE != 0 && !old && new_value)
                || (rule.flags & SO_SETS_TRUE != 0 && new_value && !old && !actor.is_so);
            if forbidden {
                return Err(Error::AttributeReadOnly);
            }
        }
        new.set_bytes(attribute, value);
    }
    if change == Change::Copy {
        new.set(CKA_UNIQUE_ID, new_unique_id()?);
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::AttributeRead;

    const USER: Actor = Actor { is_so: false };

    fn aes_template() -> Vec<Attribute> {
        vec![
            Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
            Attribute::new(CKA_VALUE, vec![7; 32]),
            Attribute::new(CKA_LABEL, b"k".to_vec()),
        ]
    }

    #[test]
    fn created_secret_key_gets_safe_defaults_and_module_attributes() {
        let o = new_object(&aes_template(), None, Origin::Create, USER).unwrap();
        assert!(o.flag(CKA_SENSITIVE) && !o.flag(CKA_EXTRACTABLE) && o.is_private());
        assert!(!o.flag(CKA_LOCAL) && !o.flag(CKA_ALWAYS_SENSITIVE) && !o.flag(CKA_NEVER_EXTRACTABLE));
        assert_eq!(o.ulong(CKA_VALUE_LEN), Some(32));
        assert_eq!(o.ulong(CKA_KEY_GEN_MECHANISM), Some(CK_UNAVAILABLE_INFORMATION));
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Sensitive);
        assert_eq!(o.get(CKA_UNIQUE_ID).unwrap().len(), 32);
    }

    #[test]
    fn create_refuses_what_the_footnotes_forbid() {
        let with = |extra: Attribute| {
            let mut t = aes_template();
            t.push(extra);
            new_object(&t, None, Origin::Create, USER).unwrap_err()
        };
        assert_eq!(with(Attribute::bool(CKA_LOCAL, true)), Error::AttributeReadOnly);
        assert_eq!(with(Attribute::ulong(CKA_VALUE_LEN, 32)), Error::TemplateInconsistent);
        assert_eq!(with(Attribute::bool(CKA_TRUSTED, true)), Error::AttributeReadOnly);
        assert_eq!(with(Attribute::new(CKA_MODULUS, vec![1])), Error::AttributeTypeInvalid);
        assert_eq!(with(Attribute::new(CKA_SENSITIVE, vec![1, 1])), Error::AttributeValueInvalid);
        assert_eq!(with(Attribute::new(CKA_LABEL, b"other".to_vec())), Error::TemplateInconsistent);

        let mut short = aes_template();
        short[2] = Attribute::new(CKA_VALUE, vec![1; 17]);
        assert_eq!(new_object(&short, None, Origin::Create, USER).unwrap_err(), Error::AttributeValueInvalid);
        let no_value: Vec<_> = aes_template().into_iter().filter(|a| a.kind != CKA_VALUE).collect();
        assert_eq!(new_object(&no_value, None, Origin::Create, USER).unwrap_err(), Error::TemplateIncomplete);
        assert_eq!(new_object(&[], None, Origin::Create, USER).unwrap_err(), Error::TemplateIncomplete);
        let so = Actor { is_so: true };
        let mut trusted = aes_template();
        trusted.push(Attribute::bool(CKA_TRUSTED, true));
        assert!(new_object(&trusted, None, Origin::Create, so).is_ok());
    }

    #[test]
    fn generate_sets_local_and_history_and_refuses_contradictions() {
        let t = vec![Attribute::ulong(CKA_VALUE_LEN, 32), Attribute::bool(CKA_EXTRACTABLE, false)];
        let implied = Some((CKO_SECRET_KEY, CKK_AES));
        let o = new_object(&t, implied, Origin::Generate { mechanism: CKM_AES_KEY_GEN }, USER).unwrap();
        assert!(o.flag(CKA_LOCAL) && o.flag(CKA_ALWAYS_SENSITIVE) && o.flag(CKA_NEVER_EXTRACTABLE));
        assert_eq!(o.ulong(CKA_KEY_GEN_MECHANISM), Some(CKM_AES_KEY_GEN));

        let generate = Origin::Generate { mechanism: CKM_AES_KEY_GEN };
        let contradicting =
            vec![Attribute::ulong(CKA_VALUE_LEN, 32), Attribute::ulong(CKA_KEY_TYPE, CKK_RSA)];
        assert_eq!(
            new_object(&contradicting, implied, generate, USER).unwrap_err(),
            Error::TemplateInconsistent
        );
        let with_value = vec![Attribute::ulong(CKA_VALUE_LEN, 32), Attribute::new(CKA_VALUE, vec![0; 32])];
        assert_eq!(
            new_object(&with_value, implied, generate, USER).unwrap_err(),
            Error::TemplateInconsistent
        );
        assert_eq!(new_object(&[], implied, generate, USER).unwrap_err(), Error::TemplateIncomplete);
    }

    #[test]
    fn unwrapped_and_derived_keys_get_their_history_from_their_origin() {
        let implied = Some((CKO_SECRET_KEY, CKK_AES));
        let sensitive = vec![Attribute::bool(CKA_SENSITIVE, true)];
        let o = new_object(&sensitive, implied, Origin::Unwrap, USER).unwrap();
        assert!(!o.flag(CKA_LOCAL) && !o.flag(CKA_ALWAYS_SENSITIVE) && !o.flag(CKA_NEVER_EXTRACTABLE));
        let with_value = vec![Attribute::new(CKA_VALUE, vec![0; 32])];
        assert_eq!(
            new_object(&with_value, implied, Origin::Unwrap, USER).unwrap_err(),
            Error::TemplateInconsistent
        );

        let from = |s, e| Origin::Derive { base_always_sensitive: s, base_never_extractable: e };
        let d = new_object(&sensitive, implied, from(true, true), USER).unwrap();
        assert!(d.flag(CKA_ALWAYS_SENSITIVE) && d.flag(CKA_NEVER_EXTRACTABLE) && !d.flag(CKA_LOCAL));
        let d = new_object(&sensitive, implied, from(false, true), USER).unwrap();
        assert!(!d.flag(CKA_ALWAYS_SENSITIVE) && d.flag(CKA_NEVER_EXTRACTABLE));
    }

    #[test]
    fn set_follows_one_way_rules_and_read_only_attributes() {
        let mut t = aes_template();
        t.push(Attribute::bool(CKA_SENSITIVE, false));
        t.push(Attribute::bool(CKA_EXTRACTABLE, true));
        let o = new_object(&t, None, Origin::Create, USER).unwrap();
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Value(zeroize::Zeroizing::new(vec![7; 32])));
        let set = |o: &Object, a: Attribute| changed_object(o, &[a], Change::Set, USER);

        let sensitive = set(&o, Attribute::bool(CKA_SENSITIVE, true)).unwrap();
        assert!(!sensitive.flag(CKA_ALWAYS_SENSITIVE), "history is kept");
        assert_eq!(
            set(&sensitive, Attribute::bool(CKA_SENSITIVE, false)).unwrap_err(),
            Error::AttributeReadOnly
        );
        let unextractable = set(&o, Attribute::bool(CKA_EXTRACTABLE, false)).unwrap();
        assert_eq!(
            set(&unextractable, Attribute::bool(CKA_EXTRACTABLE, true)).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert_eq!(set(&o, Attribute::new(CKA_VALUE, vec![0; 32])).unwrap_err(), Error::AttributeReadOnly);
        assert_eq!(set(&o, Attribute::ulong(CKA_CLASS, CKO_DATA)).unwrap_err(), Error::AttributeReadOnly);
        assert_eq!(
            set(&o, Attribute::ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)).unwrap_err(),
            Error::AttributeReadOnly
        );
        assert_eq!(set(&o, Attribute::bool(CKA_LOCAL, true)).unwrap_err(), Error::AttributeReadOnly);
        assert_eq!(set(&o, Attribute::bool(CKA_TOKEN, true)).unwrap_err(), Error::AttributeReadOnly);
        assert_eq!(set(&o, Attribute::bool(CKA_TRUSTED, true)).unwrap_err(), Error::AttributeReadOnly);
        assert_eq!(set(&o, Attribute::new(CKA_MODULUS, vec![1])).unwrap_err(), Error::AttributeTypeInvalid);
        let relabeled = set(&o, Attribute::new(CKA_LABEL, b"new".to_vec())).unwrap();
        assert_eq!(relabeled.get(CKA_LABEL), Some(&b"new"[..]));
        assert_eq!(o.get(CKA_LABEL), Some(&b"k"[..]), "the original is untouched");

        let copy = changed_object(&o, &[Attribute::bool(CKA_TOKEN, true)], Change::Copy, USER).unwrap();
        assert!(copy.is_token());
        assert_ne!(copy.get(CKA_UNIQUE_ID), o.get(CKA_UNIQUE_ID));
    }

    #[test]
    fn search_never_matches_protected_values() {
        let o = new_object(&aes_template(), None, Origin::Create, USER).unwrap();
        assert!(o.matches(&[Attribute::new(CKA_LABEL, b"k".to_vec())]));
        assert!(!o.matches(&[Attribute::new(CKA_VALUE, vec![7; 32])]));
        assert!(!o.matches(&[Attribute::new(CKA_LABEL, b"x".to_vec())]));
    }

    #[test]
    fn rsa_public_key_gets_modulus_bits() {
        let t = vec![
            Attribute::ulong(CKA_CLASS, CKO_PUBLIC_KEY),
            Attribute::ulong(CKA_KEY_TYPE, CKK_RSA),
            Attribute::new(CKA_MODULUS, vec![0x00, 0x81, 0, 0]),
            Attribute::new(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        ];
        let o = new_object(&t, None, Origin::Create, USER).unwrap();
        assert_eq!(o.ulong(CKA_MODULUS_BITS), Some(24));
        assert!(!o.is_private());
    }
}
