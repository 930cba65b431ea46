//! The specification's attribute tables as data.
//!
//! Each row says, for one attribute in one *scope* (a row of the spec's class hierarchy:
//! common, storage, key, secret key, RSA private key, ...), its value kind, its footnote
//! flags and its default. An object's [`Profile`] (class plus key or certificate type) is a
//! list of scopes; the attributes an object may have are exactly the rows of its scopes.
//! `template.rs` applies these rows for create, generate, copy and set; nothing else in the
//! module decides attribute rules.

use cryptoki_sys::*;

use crate::vendor;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Ulong,
    Bytes,
    /// `CK_DATE`: eight characters, or empty.
    Date,
    /// An array of `CK_MECHANISM_TYPE`.
    MechanismList,
    /// An array of attributes (`CKA_WRAP_TEMPLATE`, ...), encoded as in `attribute.rs`.
    AttributeArray,
}

impl ValueKind {
    pub fn accepts(self, value: &[u8]) -> bool {
        let ulong = std::mem::size_of::<CK_ULONG>();
        match self {
            ValueKind::Bool => value.len() == 1,
            ValueKind::Ulong => value.len() == ulong,
            ValueKind::Bytes => true,
            ValueKind::Date => value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit)),
            ValueKind::MechanismList => value.len().is_multiple_of(ulong),
            // No nesting, and no vendor attribute: an array is imposed on keys made later
            // (an unwrap or derive template), so a vendor attribute there (`CKA_ECM_TIER`,
            // say) would reach a key by a path that never checks it.
            ValueKind::AttributeArray => {
                super::attribute::decode_attribute_array(value).is_some_and(|entries| {
                    entries
                        .iter()
                        .all(|a| !super::attribute::is_attribute_array(a.kind) && !is_vendor(a.kind))
                })
            }
        }
    }
}

/// Whether `kind` is a vendor-defined attribute type (this module's `CKA_ECM_*` or another's).
pub fn is_vendor(kind: CK_ATTRIBUTE_TYPE) -> bool {
    kind & CKA_VENDOR_DEFINED != 0
}

/// Footnote flags (PKCS#11 3.0 base, table 10), plus four of the module's own.
pub type Flags = u32;
/// Footnote 1: must be specified when the object is created with `C_CreateObject`.
pub const REQUIRED_ON_CREATE: Flags = 1 << 0;
/// Footnote 2: must not be specified when the object is created with `C_CreateObject`.
pub const FORBIDDEN_ON_CREATE: Flags = 1 << 1;
/// Footnote 3: must be specified when the object is generated.
pub const REQUIRED_ON_GENERATE: Flags = 1 << 2;
/// Footnote 4: must not be specified when the object is generated.
pub const FORBIDDEN_ON_GENERATE: Flags = 1 << 3;
/// Footnote 7: not revealed while the object is sensitive or unextractable.
pub const SENSITIVE: Flags = 1 << 6;
/// Footnote 8: may be changed by `C_SetAttributeValue` and by `C_CopyObject`.
pub const MODIFIABLE: Flags = 1 << 7;
/// Footnote 10: only the SO may set it to true.
pub const SO_SETS_TRUE: Flags = 1 << 9;
/// Footnote 11: once true, read-only (may only change false → true).
pub const ONLY_TO_TRUE: Flags = 1 << 10;
/// Footnote 12: once false, read-only (may only change true → false).
pub const ONLY_TO_FALSE: Flags = 1 << 11;
/// Set by the module alone (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, ...); read-only to callers.
pub const MODULE_MANAGED: Flags = 1 << 16;
/// May be changed in `C_CopyObject` though not by `C_SetAttributeValue` (`CKA_TOKEN`, ...).
pub const COPY_SETTABLE: Flags = 1 << 17;
/// Encrypted under the token key at rest.
pub const SECRET_AT_REST: Flags = 1 << 18;
/// `CKA_CHECK_VALUE`: computed from `CKA_VALUE` (see `mechanism::check_value`); a template
/// may give it, and it must then match (or be empty: no check value kept), and
/// `C_SetAttributeValue` may only empty it (3.0, "Common Secret Key Attributes").
pub const CHECKSUM: Flags = 1 << 19;

/// The default a row gives an attribute the template does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// Absent unless given.
    Absent,
    Bool(bool),
    Ulong(CK_ULONG),
    Empty,
}

impl DefaultValue {
    /// Sets `attribute` in `values` to this default, if there is one (without allocating).
    pub fn write_to(self, values: &mut super::Values, attribute: CK_ATTRIBUTE_TYPE) {
        match self {
            DefaultValue::Absent => {}
            DefaultValue::Bool(b) => values.insert(attribute, &[b as CK_BBOOL]),
            DefaultValue::Ulong(v) => values.insert(attribute, &v.to_ne_bytes()),
            DefaultValue::Empty => values.insert(attribute, &[]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Common,
    Storage,
    Data,
    Certificate,
    X509,
    Key,
    PublicKey,
    PrivateKey,
    SecretKey,
    SecretValue,
    RsaPublic,
    RsaPrivate,
    EcPublic,
    EcPrivate,
    /// ML-DSA and ML-KEM keys (PKCS#11 3.2).
    PqPublic,
    PqPrivate,
    /// What an ML-KEM key has beside (3.2's `CKA_ENCAPSULATE`/`CKA_DECAPSULATE`).
    KemPublic,
    KemPrivate,
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub scope: Scope,
    pub attribute: CK_ATTRIBUTE_TYPE,
    pub kind: ValueKind,
    pub flags: Flags,
    pub default: DefaultValue,
}

const fn row(
    scope: Scope,
    attribute: CK_ATTRIBUTE_TYPE,
    kind: ValueKind,
    flags: Flags,
    default: DefaultValue,
) -> Rule {
    Rule { scope, attribute, kind, flags, default }
}

use DefaultValue::{Absent, Empty};
use Scope::*;
use ValueKind::{AttributeArray, Bool, Bytes, Date, MechanismList, Ulong};

const fn yes() -> DefaultValue {
    DefaultValue::Bool(true)
}
const fn no() -> DefaultValue {
    DefaultValue::Bool(false)
}

/// Defaults are the standard's where its tables state one (a secret key is not sensitive
/// unless asked: "default CK_FALSE"). Where the standard leaves the default to the token
/// (footnote 9), the choice is the README's "Attribute defaults": usage flags default to true
/// (as SoftHSMv2's do, so that tools which do not name them keep working); a private key is
/// sensitive, and no key is extractable, unless the template says otherwise; keys are private
/// objects. `template::TokenDefaults` may make secret keys sensitive by default too.
pub const RULES: &[Rule] = &[
    row(Common, CKA_CLASS, Ulong, REQUIRED_ON_CREATE, Absent),
    row(Storage, CKA_TOKEN, Bool, COPY_SETTABLE, no()),
    row(Storage, CKA_MODIFIABLE, Bool, COPY_SETTABLE | ONLY_TO_FALSE, yes()),
    row(Storage, CKA_LABEL, Bytes, MODIFIABLE, Empty),
    row(Storage, CKA_COPYABLE, Bool, MODIFIABLE | ONLY_TO_FALSE, yes()),
    row(Storage, CKA_DESTROYABLE, Bool, MODIFIABLE | ONLY_TO_FALSE, yes()),
    row(Storage, CKA_UNIQUE_ID, Bytes, MODULE_MANAGED, Absent),
    // Data objects.
    row(Data, CKA_PRIVATE, Bool, COPY_SETTABLE, no()),
    row(Data, CKA_APPLICATION, Bytes, MODIFIABLE, Empty),
    row(Data, CKA_OBJECT_ID, Bytes, MODIFIABLE, Empty),
    row(Data, CKA_VALUE, Bytes, MODIFIABLE, Empty),
    // Certificates, and X.509 public key certificates.
    row(Certificate, CKA_PRIVATE, Bool, COPY_SETTABLE, no()),
    row(Certificate, CKA_CERTIFICATE_TYPE, Ulong, REQUIRED_ON_CREATE, Absent),
    row(Certificate, CKA_TRUSTED, Bool, SO_SETS_TRUE | MODIFIABLE, no()),
    // "This attribute may not be modified after an object is created"; nor may anything of an
    // X.509 certificate but its CKA_ID, CKA_ISSUER and CKA_SERIAL_NUMBER.
    row(Certificate, CKA_CERTIFICATE_CATEGORY, Ulong, 0, DefaultValue::Ulong(0)),
    row(Certificate, CKA_CHECK_VALUE, Bytes, CHECKSUM, Absent),
    row(Certificate, CKA_START_DATE, Date, 0, Empty),
    row(Certificate, CKA_END_DATE, Date, 0, Empty),
    row(Certificate, CKA_PUBLIC_KEY_INFO, Bytes, 0, Empty),
    row(X509, CKA_SUBJECT, Bytes, REQUIRED_ON_CREATE, Absent),
    row(X509, CKA_ID, Bytes, MODIFIABLE, Empty),
    row(X509, CKA_ISSUER, Bytes, MODIFIABLE, Empty),
    row(X509, CKA_SERIAL_NUMBER, Bytes, MODIFIABLE, Empty),
    row(X509, CKA_VALUE, Bytes, REQUIRED_ON_CREATE, Absent),
    row(X509, CKA_URL, Bytes, 0, Empty),
    row(X509, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Bytes, 0, Empty),
    row(X509, CKA_HASH_OF_ISSUER_PUBLIC_KEY, Bytes, 0, Empty),
    row(X509, CKA_JAVA_MIDP_SECURITY_DOMAIN, Ulong, 0, DefaultValue::Ulong(0)),
    row(X509, CKA_NAME_HASH_ALGORITHM, Ulong, 0, Absent),
    // Keys.
    row(Key, CKA_KEY_TYPE, Ulong, REQUIRED_ON_CREATE, Absent),
    row(Key, CKA_ID, Bytes, MODIFIABLE, Empty),
    row(Key, CKA_START_DATE, Date, MODIFIABLE, Empty),
    row(Key, CKA_END_DATE, Date, MODIFIABLE, Empty),
    row(Key, CKA_DERIVE, Bool, MODIFIABLE, no()),
    row(Key, CKA_LOCAL, Bool, MODULE_MANAGED, Absent),
    row(Key, CKA_KEY_GEN_MECHANISM, Ulong, MODULE_MANAGED, Absent),
    // Absent: any mechanism; present, only those listed, none if the list is empty.
    row(Key, CKA_ALLOWED_MECHANISMS, MechanismList, 0, Absent),
    row(Key, CKA_DERIVE_TEMPLATE, AttributeArray, 0, Absent),
    // Public keys.
    row(PublicKey, CKA_PRIVATE, Bool, COPY_SETTABLE, no()),
    row(PublicKey, CKA_SUBJECT, Bytes, MODIFIABLE, Empty),
    row(PublicKey, CKA_ENCRYPT, Bool, MODIFIABLE, yes()),
    row(PublicKey, CKA_VERIFY, Bool, MODIFIABLE, yes()),
    row(PublicKey, CKA_VERIFY_RECOVER, Bool, MODIFIABLE, yes()),
    row(PublicKey, CKA_WRAP, Bool, MODIFIABLE, yes()),
    row(PublicKey, CKA_TRUSTED, Bool, SO_SETS_TRUE | MODIFIABLE, no()),
    row(PublicKey, CKA_WRAP_TEMPLATE, AttributeArray, 0, Absent),
    row(PublicKey, CKA_PUBLIC_KEY_INFO, Bytes, 0, Absent),
    // Private keys.
    row(PrivateKey, CKA_PRIVATE, Bool, COPY_SETTABLE, yes()),
    row(PrivateKey, CKA_SUBJECT, Bytes, MODIFIABLE, Empty),
    row(PrivateKey, CKA_SENSITIVE, Bool, MODIFIABLE | ONLY_TO_TRUE, yes()),
    row(PrivateKey, CKA_DECRYPT, Bool, MODIFIABLE, yes()),
    row(PrivateKey, CKA_SIGN, Bool, MODIFIABLE, yes()),
    row(PrivateKey, CKA_SIGN_RECOVER, Bool, MODIFIABLE, yes()),
    row(PrivateKey, CKA_UNWRAP, Bool, MODIFIABLE, yes()),
    row(PrivateKey, CKA_EXTRACTABLE, Bool, MODIFIABLE | ONLY_TO_FALSE, no()),
    row(PrivateKey, CKA_ALWAYS_SENSITIVE, Bool, MODULE_MANAGED, Absent),
    row(PrivateKey, CKA_NEVER_EXTRACTABLE, Bool, MODULE_MANAGED, Absent),
    row(PrivateKey, CKA_WRAP_WITH_TRUSTED, Bool, MODIFIABLE | ONLY_TO_TRUE, no()),
    // No footnote 8 in the table: fixed once the key exists.
    row(PrivateKey, CKA_ALWAYS_AUTHENTICATE, Bool, 0, no()),
    row(PrivateKey, CKA_UNWRAP_TEMPLATE, AttributeArray, 0, Absent),
    row(PrivateKey, CKA_PUBLIC_KEY_INFO, Bytes, 0, Absent),
    // Secret keys.
    row(SecretKey, CKA_PRIVATE, Bool, COPY_SETTABLE, yes()),
    row(SecretKey, CKA_SENSITIVE, Bool, MODIFIABLE | ONLY_TO_TRUE, no()),
    row(SecretKey, CKA_ENCRYPT, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_DECRYPT, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_SIGN, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_VERIFY, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_WRAP, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_UNWRAP, Bool, MODIFIABLE, yes()),
    row(SecretKey, CKA_EXTRACTABLE, Bool, MODIFIABLE | ONLY_TO_FALSE, no()),
    row(SecretKey, CKA_ALWAYS_SENSITIVE, Bool, MODULE_MANAGED, Absent),
    row(SecretKey, CKA_NEVER_EXTRACTABLE, Bool, MODULE_MANAGED, Absent),
    row(SecretKey, CKA_CHECK_VALUE, Bytes, CHECKSUM, Absent),
    row(SecretKey, CKA_WRAP_WITH_TRUSTED, Bool, MODIFIABLE | ONLY_TO_TRUE, no()),
    row(SecretKey, CKA_TRUSTED, Bool, SO_SETS_TRUE | MODIFIABLE, no()),
    row(SecretKey, CKA_WRAP_TEMPLATE, AttributeArray, 0, Absent),
    // The envelope key hierarchy (vendor attributes; `hierarchy` decides who sets them).
    row(SecretKey, vendor::CKA_ECM_TIER, Ulong, 0, Absent),
    row(SecretKey, vendor::CKA_ECM_TENANT, Bytes, 0, Absent),
    row(SecretKey, vendor::CKA_ECM_ROTATION_PERIOD, Ulong, 0, Absent),
    row(SecretKey, vendor::CKA_ECM_KEY_VERSION, Ulong, MODULE_MANAGED, Absent),
    row(SecretKey, vendor::CKA_ECM_KEY_STATE, Ulong, MODULE_MANAGED, Absent),
    row(SecretKey, vendor::CKA_ECM_PARENT_ID, Bytes, MODULE_MANAGED, Absent),
    row(SecretKey, vendor::CKA_ECM_CREATED_AT, Ulong, MODULE_MANAGED, Absent),
    row(SecretKey, vendor::CKA_ECM_ROTATED_AT, Ulong, MODULE_MANAGED, Absent),
    row(SecretKey, vendor::CKA_ECM_NEXT_ROTATION, Ulong, MODULE_MANAGED, Absent),
    row(SecretKey, CKA_UNWRAP_TEMPLATE, AttributeArray, 0, Absent),
    // AES and generic secret values.
    row(
        SecretValue,
        CKA_VALUE,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | SENSITIVE | SECRET_AT_REST,
        Absent,
    ),
    row(SecretValue, CKA_VALUE_LEN, Ulong, FORBIDDEN_ON_CREATE | REQUIRED_ON_GENERATE, Absent),
    // RSA.
    row(RsaPublic, CKA_MODULUS, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(RsaPublic, CKA_MODULUS_BITS, Ulong, FORBIDDEN_ON_CREATE | REQUIRED_ON_GENERATE, Absent),
    row(RsaPublic, CKA_PUBLIC_EXPONENT, Bytes, REQUIRED_ON_CREATE, Absent),
    row(RsaPrivate, CKA_MODULUS, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(RsaPrivate, CKA_PUBLIC_EXPONENT, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(RsaPrivate, CKA_PRIVATE_EXPONENT, Bytes, RSA_PRIVATE_REQUIRED, Absent),
    row(RsaPrivate, CKA_PRIME_1, Bytes, RSA_PRIVATE_OPTIONAL, Absent),
    row(RsaPrivate, CKA_PRIME_2, Bytes, RSA_PRIVATE_OPTIONAL, Absent),
    row(RsaPrivate, CKA_EXPONENT_1, Bytes, RSA_PRIVATE_OPTIONAL, Absent),
    row(RsaPrivate, CKA_EXPONENT_2, Bytes, RSA_PRIVATE_OPTIONAL, Absent),
    row(RsaPrivate, CKA_COEFFICIENT, Bytes, RSA_PRIVATE_OPTIONAL, Absent),
    // Elliptic curves.
    row(EcPublic, CKA_EC_PARAMS, Bytes, REQUIRED_ON_CREATE | REQUIRED_ON_GENERATE, Absent),
    row(EcPublic, CKA_EC_POINT, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(EcPrivate, CKA_EC_PARAMS, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(
        EcPrivate,
        CKA_VALUE,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | SENSITIVE | SECRET_AT_REST,
        Absent,
    ),
    // ML-DSA and ML-KEM (3.2). The public key template of a generation names the parameter
    // set, and the private key takes it from there. A private key is created from its
    // CKA_VALUE, its CKA_SEED or both (`template.rs` checks that one is there).
    row(PqPublic, CKA_PARAMETER_SET, Ulong, REQUIRED_ON_CREATE | REQUIRED_ON_GENERATE, Absent),
    row(PqPublic, CKA_VALUE, Bytes, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(PqPrivate, CKA_PARAMETER_SET, Ulong, REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE, Absent),
    row(PqPrivate, CKA_SEED, Bytes, FORBIDDEN_ON_GENERATE | SENSITIVE | SECRET_AT_REST, Absent),
    row(PqPrivate, CKA_VALUE, Bytes, FORBIDDEN_ON_GENERATE | SENSITIVE | SECRET_AT_REST, Absent),
    // Usage flags default to true, as the others do (README "Attribute defaults").
    row(KemPublic, CKA_ENCAPSULATE, Bool, MODIFIABLE, yes()),
    row(KemPrivate, CKA_DECAPSULATE, Bool, MODIFIABLE, yes()),
    // 3.2's templates of the keys a KEM key makes, imposed as CKA_UNWRAP_TEMPLATE is
    // (`module/encapsulation.rs`); fixed once the key exists, as that one.
    row(KemPublic, CKA_ENCAPSULATE_TEMPLATE, AttributeArray, 0, Absent),
    row(KemPrivate, CKA_DECAPSULATE_TEMPLATE, AttributeArray, 0, Absent),
];

const RSA_PRIVATE_OPTIONAL: Flags = FORBIDDEN_ON_GENERATE | SENSITIVE | SECRET_AT_REST;
const RSA_PRIVATE_REQUIRED: Flags = REQUIRED_ON_CREATE | RSA_PRIVATE_OPTIONAL;

/// What kind of object this is, as far as its attribute set goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Data,
    X509Certificate,
    SecretKey,
    RsaPublicKey,
    RsaPrivateKey,
    EcPublicKey,
    EcPrivateKey,
    MlDsaPublicKey,
    MlDsaPrivateKey,
    MlKemPublicKey,
    MlKemPrivateKey,
}

impl Profile {
    /// The profile of an object of `class`; `subtype` is its `CKA_KEY_TYPE` or
    /// `CKA_CERTIFICATE_TYPE` where the class has one (`None` if the template lacks it).
    pub fn of(class: CK_OBJECT_CLASS, subtype: Option<CK_ULONG>) -> Result<Profile> {
        let need = |s: Option<CK_ULONG>| s.ok_or(Error::TemplateIncomplete);
        Ok(match class {
            CKO_DATA => Profile::Data,
            CKO_CERTIFICATE => match need(subtype)? {
                CKC_X_509 => Profile::X509Certificate,
                _ => return Err(Error::AttributeValueInvalid),
            },
            CKO_SECRET_KEY => match need(subtype)? {
                // The HMAC and HKDF key types of PKCS#11 3.0 are generic secrets named for their use.
                CKK_AES | CKK_GENERIC_SECRET | CKK_SHA_1_HMAC | CKK_SHA224_HMAC | CKK_SHA256_HMAC
                | CKK_SHA384_HMAC | CKK_SHA512_HMAC | CKK_SHA3_224_HMAC | CKK_SHA3_256_HMAC
                | CKK_SHA3_384_HMAC | CKK_SHA3_512_HMAC | CKK_HKDF => Profile::SecretKey,
                _ => return Err(Error::AttributeValueInvalid),
            },
            CKO_PUBLIC_KEY => match need(subtype)? {
                CKK_RSA => Profile::RsaPublicKey,
                CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY => Profile::EcPublicKey,
                CKK_ML_DSA => Profile::MlDsaPublicKey,
                CKK_ML_KEM => Profile::MlKemPublicKey,
                _ => return Err(Error::AttributeValueInvalid),
            },
            CKO_PRIVATE_KEY => match need(subtype)? {
                CKK_RSA => Profile::RsaPrivateKey,
                CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY => Profile::EcPrivateKey,
                CKK_ML_DSA => Profile::MlDsaPrivateKey,
                CKK_ML_KEM => Profile::MlKemPrivateKey,
                _ => return Err(Error::AttributeValueInvalid),
            },
            _ => return Err(Error::AttributeValueInvalid),
        })
    }

    /// The attribute naming this class's subtype, if it has one.
    pub fn subtype_attribute(class: CK_OBJECT_CLASS) -> Option<CK_ATTRIBUTE_TYPE> {
        match class {
            CKO_CERTIFICATE => Some(CKA_CERTIFICATE_TYPE),
            CKO_SECRET_KEY | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => Some(CKA_KEY_TYPE),
            _ => None,
        }
    }

    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Profile::Data => &[Common, Storage, Data],
            Profile::X509Certificate => &[Common, Storage, Certificate, X509],
            Profile::SecretKey => &[Common, Storage, Key, SecretKey, SecretValue],
            Profile::RsaPublicKey => &[Common, Storage, Key, PublicKey, RsaPublic],
            Profile::RsaPrivateKey => &[Common, Storage, Key, PrivateKey, RsaPrivate],
            Profile::EcPublicKey => &[Common, Storage, Key, PublicKey, EcPublic],
            Profile::EcPrivateKey => &[Common, Storage, Key, PrivateKey, EcPrivate],
            Profile::MlDsaPublicKey => &[Common, Storage, Key, PublicKey, PqPublic],
            Profile::MlDsaPrivateKey => &[Common, Storage, Key, PrivateKey, PqPrivate],
            Profile::MlKemPublicKey => &[Common, Storage, Key, PublicKey, PqPublic, KemPublic],
            Profile::MlKemPrivateKey => &[Common, Storage, Key, PrivateKey, PqPrivate, KemPrivate],
        }
    }

    /// The rule for `attribute` in this profile, or `None` if objects of this profile do not
    /// have it.
    pub fn rule(self, attribute: CK_ATTRIBUTE_TYPE) -> Option<&'static Rule> {
        let sorted = &profile_tables()[self as usize].by_attribute;
        sorted.binary_search_by_key(&attribute, |r| r.attribute).ok().map(|i| sorted[i])
    }

    /// This profile's rules, in the order of `RULES`.
    pub fn rules(self) -> impl Iterator<Item = &'static Rule> {
        profile_tables()[self as usize].in_order.iter().copied()
    }
}

/// The rules of one profile, picked out of `RULES` once: every attribute read, search match,
/// template check and at-rest decision asks for a rule, and scanning all of `RULES` with each
/// profile's scope list cost more than the rest of making an object.
struct ProfileRules {
    in_order: Vec<&'static Rule>,
    /// The same rules sorted by attribute, for a binary search (no profile has an attribute
    /// twice, a test checks).
    by_attribute: Vec<&'static Rule>,
}

const PROFILES: [Profile; 11] = [
    Profile::Data,
    Profile::X509Certificate,
    Profile::SecretKey,
    Profile::RsaPublicKey,
    Profile::RsaPrivateKey,
    Profile::EcPublicKey,
    Profile::EcPrivateKey,
    Profile::MlDsaPublicKey,
    Profile::MlDsaPrivateKey,
    Profile::MlKemPublicKey,
    Profile::MlKemPrivateKey,
];

fn profile_tables() -> &'static [ProfileRules; 11] {
    static TABLES: std::sync::OnceLock<[ProfileRules; 11]> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        PROFILES.map(|p| {
            let scopes = p.scopes();
            let in_order: Vec<&'static Rule> = RULES.iter().filter(|r| scopes.contains(&r.scope)).collect();
            let mut by_attribute = in_order.clone();
            by_attribute.sort_by_key(|r| r.attribute);
            ProfileRules { in_order, by_attribute }
        })
    })
}

impl Profile {
    pub fn is_key(self) -> bool {
        !matches!(self, Profile::Data | Profile::X509Certificate)
    }

    /// Whether objects of this profile carry `CKA_SENSITIVE`/`CKA_EXTRACTABLE`.
    pub fn has_sensitivity(self) -> bool {
        matches!(
            self,
            Profile::SecretKey
                | Profile::RsaPrivateKey
                | Profile::EcPrivateKey
                | Profile::MlDsaPrivateKey
                | Profile::MlKemPrivateKey
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_attribute_appears_twice_in_one_profile() {
        for p in PROFILES {
            let rules: Vec<_> = p.rules().collect();
            for r in &rules {
                let n = rules.iter().filter(|x| x.attribute == r.attribute).count();
                assert_eq!(n, 1, "{p:?} has attribute {:#x} {n} times", r.attribute);
            }
            assert!(p.rule(CKA_CLASS).is_some() && p.rule(CKA_PRIVATE).is_some());
        }
    }

    #[test]
    fn the_profile_tables_give_what_a_scan_of_the_rules_gives() {
        let key = |r: &Rule| (r.scope, r.attribute, r.flags);
        for (i, p) in PROFILES.into_iter().enumerate() {
            assert_eq!(p as usize, i, "PROFILES is indexed by the enum's order");
            let scopes = p.scopes();
            let scanned: Vec<&Rule> = RULES.iter().filter(|r| scopes.contains(&r.scope)).collect();
            let ours: Vec<_> = p.rules().map(key).collect();
            assert_eq!(ours, scanned.iter().map(|r| key(r)).collect::<Vec<_>>());
            for r in RULES {
                let expected = scanned.iter().find(|x| x.attribute == r.attribute).map(|x| key(x));
                assert_eq!(p.rule(r.attribute).map(key), expected);
            }
            assert!(p.rule(0xdead_beef).is_none());
        }
    }

    #[test]
    fn contradictory_flags_never_meet_in_one_row() {
        for r in RULES {
            let f = r.flags;
            assert!(f & REQUIRED_ON_CREATE == 0 || f & FORBIDDEN_ON_CREATE == 0);
            assert!(f & REQUIRED_ON_GENERATE == 0 || f & FORBIDDEN_ON_GENERATE == 0);
            assert!(f & ONLY_TO_TRUE == 0 || f & ONLY_TO_FALSE == 0);
            assert!(f & MODULE_MANAGED == 0 || f & (MODIFIABLE | COPY_SETTABLE) == 0);
            assert!(f & SECRET_AT_REST == 0 || f & SENSITIVE != 0, "{:#x}", r.attribute);
            let mut default = super::super::Values::new();
            r.default.write_to(&mut default, r.attribute);
            if let Some(v) = default.get(r.attribute) {
                assert!(r.kind.accepts(v), "{:#x} default of the wrong kind", r.attribute);
            }
        }
    }

    #[test]
    fn profiles_come_from_class_and_subtype() {
        assert_eq!(Profile::of(CKO_SECRET_KEY, Some(CKK_AES)), Ok(Profile::SecretKey));
        assert_eq!(Profile::of(CKO_SECRET_KEY, None), Err(Error::TemplateIncomplete));
        assert_eq!(Profile::of(CKO_SECRET_KEY, Some(CKK_DES3)), Err(Error::AttributeValueInvalid));
        assert_eq!(Profile::of(CKO_HW_FEATURE, None), Err(Error::AttributeValueInvalid));
        assert_eq!(Profile::of(CKO_DATA, None), Ok(Profile::Data));
    }

    #[test]
    fn value_kinds_check_lengths() {
        assert!(ValueKind::Bool.accepts(&[1]) && !ValueKind::Bool.accepts(&[1, 0]));
        assert!(ValueKind::Date.accepts(b"20261128") && !ValueKind::Date.accepts(b"2026112x"));
        assert!(ValueKind::Ulong.accepts(&[0; 8]) && !ValueKind::Ulong.accepts(&[0; 4]));
    }
}
