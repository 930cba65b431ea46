//! From a caller's template to an object, by the rules of `rules.rs`.
//!
//! [`new_object`] serves `C_CreateObject` and `C_GenerateKey` (and later `C_UnwrapKey` and
//! `C_DeriveKey`); [`changed_object`] serves `C_SetAttributeValue` and `C_CopyObject`. Each
//! returns a new object or an error, never a half-changed one.

use cryptoki_sys::*;

use super::attribute::{Attribute, decode_attribute_array, decode_bool, decode_ulong};
pub use super::check_value::settle_check_value;
use super::consistency::check_consistency;
use super::instance::Object;
use super::rules::*;
use super::values::Values;
use crate::mechanism::{check_value, rng};
use crate::{Error, Result};

/// How a new object comes to be; it decides which footnotes apply and what the module sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Create,
    Generate {
        mechanism: CK_MECHANISM_TYPE,
    },
    /// `C_UnwrapKey`, `C_EncapsulateKey`, `C_DecapsulateKey`: the value comes from the
    /// wrapped blob or the KEM; extractable unless the template says otherwise.
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

/// The token's own choices among the defaults the standard leaves to it (footnote 9) or lets
/// a token tighten. `Default` is the standard's: a secret key made without `CKA_SENSITIVE` is
/// not sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenDefaults {
    /// A secret key made without `CKA_SENSITIVE` is sensitive (the `sensitive_by_default`
    /// setting).
    pub sensitive_secret_keys: bool,
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
    new_object_with(template, implied, origin, actor, TokenDefaults::default())
}

/// As [`new_object`], with the token's `defaults` for what the template leaves out.
///
/// A `CKA_CHECK_VALUE` the template gives is checked here when the template carries the
/// value (`C_CreateObject`); when the module makes the value afterwards (generate, unwrap,
/// derive), it calls [`settle_check_value`] once the value is set.
pub fn new_object_with(
    template: &[Attribute],
    implied: Option<(CK_OBJECT_CLASS, CK_ULONG)>,
    origin: Origin,
    actor: Actor,
    defaults: TokenDefaults,
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
        // The vendor attributes of the envelope hierarchy are named only when one of its keys
        // is generated (`hierarchy` checks those). Anywhere else one can only come from the
        // caller or from an attribute array merged into the template (an unwrapping key's
        // CKA_UNWRAP_TEMPLATE, a base key's CKA_DERIVE_TEMPLATE): checked here, after the
        // merge, so that a tier forged in a stored array never reaches a key.
        if is_vendor(attribute) && !matches!(origin, Origin::Generate { .. }) {
            return Err(Error::TemplateInconsistent);
        }
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
        if rule.flags & CHECKSUM != 0 && !matches!(value.len(), 0 | check_value::LEN) {
            return Err(Error::AttributeValueInvalid);
        }
    }
    for rule in profile.rules() {
        if values.contains(rule.attribute) {
            continue;
        }
        if rule.flags & required != 0 {
            return Err(Error::TemplateIncomplete);
        }
        if rule.attribute == CKA_SENSITIVE && profile == Profile::SecretKey && defaults.sensitive_secret_keys
        {
            DefaultValue::Bool(true).write_to(&mut values, CKA_SENSITIVE);
            continue;
        }
        // The one default the standard ties to the function rather than the class: a key
        // made by C_UnwrapKey ("The CKA_EXTRACTABLE attribute is by default set to CK_TRUE",
        // 2.40 to 3.2) or by C_EncapsulateKey/C_DecapsulateKey (3.2: "with a default of
        // CK_TRUE if not provided") is extractable unless its template (or the unwrapping
        // key's imposed template) says otherwise.
        if rule.attribute == CKA_EXTRACTABLE && origin == Origin::Unwrap {
            DefaultValue::Bool(true).write_to(&mut values, CKA_EXTRACTABLE);
            continue;
        }
        rule.default.write_to(&mut values, rule.attribute);
    }

    let mut object = Object::from_parts(values, Vec::new())?;
    set_module_managed(&mut object, origin)?;
    check_consistency(&mut object, origin)?;
    if origin == Origin::Create {
        settle_check_value(&mut object)?;
    }
    Ok(object)
}

/// The template of a key made under an imposing key: `template` with the entries of
/// `imposed` (an encoded `CKA_UNWRAP_TEMPLATE` or `CKA_DERIVE_TEMPLATE`) added. An entry the
/// caller gave with another value is `CKR_TEMPLATE_INCONSISTENT`, and so is a vendor
/// attribute in the array (refused when arrays are set, but one stored before that rule
/// may hold one). Pass the result to [`new_object_with`], which checks it whole.
pub fn impose(template: &[Attribute], imposed: &[u8]) -> Result<Vec<Attribute>> {
    let entries = decode_attribute_array(imposed).ok_or(Error::Internal("bad stored attribute array"))?;
    let mut merged = template.to_vec();
    for a in entries {
        if is_vendor(a.kind) || template.iter().any(|t| t.kind == a.kind && t.value != a.value) {
            return Err(Error::TemplateInconsistent);
        }
        merged.push(a);
    }
    Ok(merged)
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
        if rule.flags & CHECKSUM != 0 {
            // Emptied (no check value kept) or restated; never another value.
            let restated = !value.is_empty() && object.computed_check_value()?.as_slice() == value;
            if !value.is_empty() && !restated {
                return Err(Error::AttributeValueInvalid);
            }
            new.set_bytes(attribute, value);
            continue;
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
    use crate::object::attribute::encode_ulong;

    use crate::object::test_templates::{USER, aes_template};

    #[test]
    fn created_secret_key_gets_the_standards_defaults_and_module_attributes() {
        let o = new_object(&aes_template(), None, Origin::Create, USER).unwrap();
        // "CK_TRUE if object is sensitive (default CK_FALSE)"; extractability is the
        // token's choice, and this token's is no.
        assert!(!o.flag(CKA_SENSITIVE) && !o.flag(CKA_EXTRACTABLE) && o.is_private());
        assert!(!o.flag(CKA_LOCAL) && !o.flag(CKA_ALWAYS_SENSITIVE) && !o.flag(CKA_NEVER_EXTRACTABLE));
        assert!(o.flag(CKA_MODIFIABLE) && o.flag(CKA_COPYABLE) && o.flag(CKA_DESTROYABLE) && !o.is_token());
        assert!(!o.flag(CKA_DERIVE) && !o.flag(CKA_WRAP_WITH_TRUSTED) && !o.flag(CKA_TRUSTED));
        assert_eq!(o.ulong(CKA_VALUE_LEN), Some(32));
        assert_eq!(o.ulong(CKA_KEY_GEN_MECHANISM), Some(CK_UNAVAILABLE_INFORMATION));
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Sensitive, "not extractable");
        assert_eq!(o.read(CKA_ALLOWED_MECHANISMS), AttributeRead::Invalid, "absent: any mechanism");
        assert!(o.permits_mechanism(CKM_AES_GCM));
        assert_eq!(o.get(CKA_UNIQUE_ID).unwrap().len(), 32);

        let mut extractable = aes_template();
        extractable.push(Attribute::bool(CKA_EXTRACTABLE, true));
        let o = new_object(&extractable, None, Origin::Create, USER).unwrap();
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Value(zeroize::Zeroizing::new(vec![7; 32])));
        let sensitive = TokenDefaults { sensitive_secret_keys: true };
        let o = new_object_with(&extractable, None, Origin::Create, USER, sensitive).unwrap();
        assert!(o.flag(CKA_SENSITIVE));
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Sensitive);
        // The setting is a default, not a rule: a template may still say no.
        extractable.push(Attribute::bool(CKA_SENSITIVE, false));
        let o = new_object_with(&extractable, None, Origin::Create, USER, sensitive).unwrap();
        assert!(!o.flag(CKA_SENSITIVE));
    }

    #[test]
    fn token_specific_defaults_stay_on_the_safe_side() {
        let rsa_private =
            vec![Attribute::ulong(CKA_CLASS, CKO_PRIVATE_KEY), Attribute::ulong(CKA_KEY_TYPE, CKK_RSA)];
        let implied = Some((CKO_PRIVATE_KEY, CKK_RSA));
        let generate = Origin::Generate { mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN };
        let o = new_object(&rsa_private, implied, generate, USER).unwrap();
        assert!(o.flag(CKA_SENSITIVE) && !o.flag(CKA_EXTRACTABLE) && o.is_private());
        assert!(!o.flag(CKA_ALWAYS_AUTHENTICATE) && o.flag(CKA_ALWAYS_SENSITIVE));
    }

    #[test]
    fn empty_allowed_mechanisms_allow_none() {
        let mut t = aes_template();
        t.push(Attribute::new(CKA_ALLOWED_MECHANISMS, vec![]));
        let o = new_object(&t, None, Origin::Create, USER).unwrap();
        assert!(!o.permits_mechanism(CKM_AES_GCM) && !o.permits_mechanism(CKM_AES_ECB));
        let mut t = aes_template();
        t.push(Attribute::new(CKA_ALLOWED_MECHANISMS, encode_ulong(CKM_AES_GCM)));
        let o = new_object(&t, None, Origin::Create, USER).unwrap();
        assert!(o.permits_mechanism(CKM_AES_GCM) && !o.permits_mechanism(CKM_AES_ECB));
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
        let t = vec![
            Attribute::ulong(CKA_VALUE_LEN, 32),
            Attribute::bool(CKA_EXTRACTABLE, false),
            Attribute::bool(CKA_SENSITIVE, true),
        ];
        let implied = Some((CKO_SECRET_KEY, CKK_AES));
        let o = new_object(&t, implied, Origin::Generate { mechanism: CKM_AES_KEY_GEN }, USER).unwrap();
        assert!(o.flag(CKA_LOCAL) && o.flag(CKA_ALWAYS_SENSITIVE) && o.flag(CKA_NEVER_EXTRACTABLE));
        // Made without CKA_SENSITIVE, a generated key is not sensitive, so never was.
        let o = new_object(&t[..2], implied, Origin::Generate { mechanism: CKM_AES_KEY_GEN }, USER).unwrap();
        assert!(!o.flag(CKA_SENSITIVE) && !o.flag(CKA_ALWAYS_SENSITIVE) && o.flag(CKA_NEVER_EXTRACTABLE));
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
    fn certificates_get_a_check_value_and_only_some_attributes_change() {
        let cert = |extra: Vec<Attribute>| {
            let mut t = vec![
                Attribute::ulong(CKA_CLASS, CKO_CERTIFICATE),
                Attribute::ulong(CKA_CERTIFICATE_TYPE, CKC_X_509),
                Attribute::new(CKA_SUBJECT, b"subject".to_vec()),
                Attribute::new(CKA_VALUE, b"abc".to_vec()),
            ];
            t.extend(extra);
            new_object(&t, None, Origin::Create, USER)
        };
        let o = cert(vec![]).unwrap();
        assert_eq!(
            o.read(CKA_CHECK_VALUE),
            AttributeRead::Value(zeroize::Zeroizing::new(vec![0xa9, 0x99, 0x3e]))
        );
        assert_eq!(
            cert(vec![Attribute::new(CKA_CHECK_VALUE, vec![0, 0, 0])]).unwrap_err(),
            Error::AttributeValueInvalid
        );
        let set = |a: Attribute| changed_object(&o, &[a], Change::Set, USER);
        assert!(set(Attribute::new(CKA_ISSUER, b"i".to_vec())).is_ok());
        assert!(set(Attribute::new(CKA_SERIAL_NUMBER, b"1".to_vec())).is_ok());
        assert!(set(Attribute::new(CKA_ID, b"1".to_vec())).is_ok());
        for fixed in [
            Attribute::new(CKA_START_DATE, b"20260101".to_vec()),
            Attribute::new(CKA_END_DATE, b"20270101".to_vec()),
            Attribute::ulong(CKA_CERTIFICATE_CATEGORY, 2),
            Attribute::new(CKA_VALUE, b"abd".to_vec()),
            Attribute::new(CKA_SUBJECT, b"other".to_vec()),
        ] {
            assert_eq!(set(fixed).unwrap_err(), Error::AttributeReadOnly);
        }
    }

    #[test]
    fn unmodifiable_attributes_of_the_tables_stay_as_made() {
        let mut t = aes_template();
        t.push(Attribute::new(CKA_ALLOWED_MECHANISMS, encode_ulong(CKM_AES_GCM)));
        let key = new_object(&t, None, Origin::Create, USER).unwrap();
        let set = |o: &Object, a: Attribute| changed_object(o, &[a], Change::Set, USER);
        for fixed in [
            Attribute::ulong(CKA_KEY_GEN_MECHANISM, CKM_AES_KEY_GEN),
            Attribute::ulong(CKA_KEY_GEN_MECHANISM, CKM_EC_KEY_PAIR_GEN),
            Attribute::new(CKA_ALLOWED_MECHANISMS, vec![]),
            Attribute::new(CKA_ALLOWED_MECHANISMS, encode_ulong(CKM_AES_ECB)),
            Attribute::bool(CKA_ALWAYS_SENSITIVE, true),
            Attribute::bool(CKA_NEVER_EXTRACTABLE, true),
            Attribute::new(CKA_UNIQUE_ID, b"x".to_vec()),
        ] {
            assert_eq!(set(&key, fixed).unwrap_err(), Error::AttributeReadOnly);
        }
        let private = new_object(
            &[Attribute::bool(CKA_ALWAYS_AUTHENTICATE, true)],
            Some((CKO_PRIVATE_KEY, CKK_EC)),
            Origin::Generate { mechanism: CKM_EC_KEY_PAIR_GEN },
            USER,
        )
        .unwrap();
        assert_eq!(
            set(&private, Attribute::bool(CKA_ALWAYS_AUTHENTICATE, false)).unwrap_err(),
            Error::AttributeReadOnly
        );
    }

    #[test]
    fn attribute_arrays_refuse_vendor_attributes_at_create_and_set() {
        use super::super::attribute::encode_attribute_array;
        let array = |entries: &[Attribute]| encode_attribute_array(entries);
        let tier = Attribute::ulong(crate::vendor::CKA_ECM_TIER, 2);
        let forged = array(&[Attribute::bool(CKA_SENSITIVE, true), tier.clone()]);
        let mut t = aes_template();
        t.push(Attribute::new(CKA_UNWRAP_TEMPLATE, forged.clone()));
        assert_eq!(new_object(&t, None, Origin::Create, USER).unwrap_err(), Error::AttributeValueInvalid);
        let mut t = aes_template();
        t.push(Attribute::new(
            CKA_DERIVE_TEMPLATE,
            array(&[Attribute::new(crate::vendor::CKA_ECM_TENANT, b"acme".to_vec())]),
        ));
        assert_eq!(new_object(&t, None, Origin::Create, USER).unwrap_err(), Error::AttributeValueInvalid);
        let mut t = aes_template();
        t.push(Attribute::new(CKA_WRAP_TEMPLATE, array(&[Attribute::ulong(CKA_VENDOR_DEFINED | 1, 0)])));
        assert_eq!(new_object(&t, None, Origin::Create, USER).unwrap_err(), Error::AttributeValueInvalid);
        let o = new_object(&aes_template(), None, Origin::Create, USER).unwrap();
        assert_eq!(
            changed_object(&o, &[Attribute::new(CKA_UNWRAP_TEMPLATE, forged)], Change::Set, USER)
                .unwrap_err(),
            Error::AttributeValueInvalid
        );
        let mut t = aes_template();
        t.push(Attribute::new(CKA_UNWRAP_TEMPLATE, array(&[Attribute::bool(CKA_SENSITIVE, true)])));
        assert!(new_object(&t, None, Origin::Create, USER).is_ok(), "standard attributes pass");
    }

    #[test]
    fn vendor_attributes_merged_into_a_template_make_no_key() {
        use super::super::attribute::encode_attribute_array;
        let implied = Some((CKO_SECRET_KEY, CKK_AES));
        let tier = Attribute::ulong(crate::vendor::CKA_ECM_TIER, crate::vendor::CKT_ECM_DEK);
        let tenant = Attribute::new(crate::vendor::CKA_ECM_TENANT, b"acme".to_vec());
        let derive = Origin::Derive { base_always_sensitive: true, base_never_extractable: true };
        for origin in [Origin::Unwrap, derive, Origin::Create] {
            for forged in [&tier, &tenant] {
                let (mut t, implied) = match origin {
                    Origin::Create => (aes_template(), None),
                    _ => (vec![Attribute::ulong(CKA_VALUE_LEN, 32)], implied),
                };
                t.push(forged.clone());
                assert_eq!(
                    new_object(&t, implied, origin, USER).unwrap_err(),
                    Error::TemplateInconsistent,
                    "{origin:?}"
                );
            }
        }
        // A generation of the hierarchy names them; `hierarchy` decides which it may.
        let generate = Origin::Generate { mechanism: CKM_AES_KEY_GEN };
        assert!(
            new_object(&[Attribute::ulong(CKA_VALUE_LEN, 32), tier.clone()], implied, generate, USER).is_ok()
        );

        // impose: the array's entries are added; a vendor entry or a contradiction refused.
        let caller = [Attribute::bool(CKA_SENSITIVE, true)];
        let merged =
            impose(&caller, &encode_attribute_array(&[Attribute::bool(CKA_EXTRACTABLE, false)])).unwrap();
        assert_eq!(merged, [Attribute::bool(CKA_SENSITIVE, true), Attribute::bool(CKA_EXTRACTABLE, false)]);
        let forged = encode_attribute_array(&[Attribute::bool(CKA_EXTRACTABLE, false), tier]);
        assert_eq!(impose(&caller, &forged).unwrap_err(), Error::TemplateInconsistent);
        let contradicting = encode_attribute_array(&[Attribute::bool(CKA_SENSITIVE, false)]);
        assert_eq!(impose(&caller, &contradicting).unwrap_err(), Error::TemplateInconsistent);
        assert!(impose(&caller, &[1, 2, 3]).is_err());
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
