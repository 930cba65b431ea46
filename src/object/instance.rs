//! An object: its profile and its attribute values.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::attribute::{AttributeRead, decode_bool, decode_ulong};
use super::rules::{CHECKSUM, Profile, SECRET_AT_REST, SENSITIVE};
use super::{Attribute, Values};
use crate::mechanism::pq::{PqPrivateKey, PqPublicKey};
use crate::mechanism::{
    EcPrivateKey, EcPublicKey, KeyMaterial, RsaCrt, RsaPrivateKey, RsaPublicKey, SecretKey, encoding,
};
use crate::{Error, Result};

#[derive(Clone)]
pub struct Object {
    profile: Profile,
    values: Values,
    /// Attributes stored sealed under the token key that could not be opened because nobody
    /// is logged in; they exist but are not readable or usable.
    sealed: Vec<CK_ATTRIBUTE_TYPE>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("profile", &self.profile)
            .field("attributes", &self.values.iter().map(|(a, _)| a).collect::<Vec<_>>())
            .finish()
    }
}

impl Object {
    /// Assembles an object from stored or validated attributes; `sealed` lists the secret
    /// attributes present in the store but not opened.
    pub fn from_parts(values: Values, sealed: Vec<CK_ATTRIBUTE_TYPE>) -> Result<Object> {
        let ulong = |t| values.get(t).and_then(decode_ulong);
        let class = ulong(CKA_CLASS).ok_or(Error::TemplateIncomplete)?;
        let subtype = Profile::subtype_attribute(class).and_then(ulong);
        let profile = Profile::of(class, subtype)?;
        Ok(Object { profile, values, sealed })
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn get(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.values.get(attribute)
    }

    pub fn set(&mut self, attribute: CK_ATTRIBUTE_TYPE, value: Vec<u8>) {
        self.set_bytes(attribute, &Zeroizing::new(value));
    }

    pub fn set_bytes(&mut self, attribute: CK_ATTRIBUTE_TYPE, value: &[u8]) {
        self.sealed.retain(|a| *a != attribute);
        self.values.insert(attribute, value);
    }

    pub fn set_bool(&mut self, attribute: CK_ATTRIBUTE_TYPE, value: bool) {
        self.set_bytes(attribute, &[value as CK_BBOOL]);
    }

    pub fn set_ulong(&mut self, attribute: CK_ATTRIBUTE_TYPE, value: CK_ULONG) {
        self.set_bytes(attribute, &value.to_ne_bytes());
    }

    /// A boolean attribute; absent counts as false.
    pub fn flag(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        self.get(attribute).and_then(decode_bool).unwrap_or(false)
    }

    pub fn ulong(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(attribute).and_then(decode_ulong)
    }

    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.ulong(CKA_KEY_TYPE)
    }

    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    /// True when the values marked sensitive must not be revealed.
    pub fn guards_sensitive_values(&self) -> bool {
        self.profile.has_sensitivity() && (self.flag(CKA_SENSITIVE) || !self.flag(CKA_EXTRACTABLE))
    }

    /// All attributes present, in type order.
    pub fn attributes(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.values.iter()
    }

    pub fn sealed_attributes(&self) -> &[CK_ATTRIBUTE_TYPE] {
        &self.sealed
    }

    /// Whether `attribute` is encrypted under the token key when stored: key material always,
    /// and the value of a private data object.
    pub fn is_secret_at_rest(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        let by_rule = self.profile.rule(attribute).is_some_and(|r| r.flags & SECRET_AT_REST != 0);
        by_rule || (self.profile == Profile::Data && attribute == CKA_VALUE && self.is_private())
    }

    fn is_protected(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        let sensitive_rule = self.profile.rule(attribute).is_some_and(|r| r.flags & SENSITIVE != 0);
        sensitive_rule && self.guards_sensitive_values()
    }

    /// `CKA_CHECK_VALUE` as the object's value gives it (not the stored one): for a secret
    /// key or a certificate. It is not secret, so a sensitive key offers it too; a value
    /// sealed while nobody is logged in gives `UserNotLoggedIn`.
    pub fn computed_check_value(&self) -> Result<Vec<u8>> {
        use crate::mechanism::check_value;
        match self.profile {
            // A KEK's or DEK's CKA_VALUE is its value wrapped by its parent, not the key.
            Profile::SecretKey if self.get(crate::vendor::CKA_ECM_PARENT_ID).is_some() => {
                Err(Error::AttributeTypeInvalid)
            }
            Profile::SecretKey => Ok(check_value::of_secret_key(&self.secret_key()?)?.to_vec()),
            Profile::X509Certificate => {
                let value = self.get(CKA_VALUE).ok_or(Error::Internal("certificate without value"))?;
                Ok(check_value::of_certificate(value).to_vec())
            }
            _ => Err(Error::AttributeTypeInvalid),
        }
    }

    /// The check value as read: the stored one if the template gave one (empty: none
    /// kept), else computed, so that keys stored before check values existed have one too.
    fn check_value(&self) -> Result<Vec<u8>> {
        match self.values.get(CKA_CHECK_VALUE) {
            Some(stored) => Ok(stored.to_vec()),
            None => self.computed_check_value(),
        }
    }

    fn is_check_value(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        self.profile.rule(attribute).is_some_and(|r| r.flags & CHECKSUM != 0)
    }

    /// Whether a key may be used with `mechanism`: with no `CKA_ALLOWED_MECHANISMS`, any;
    /// else only those listed, so an empty list allows none.
    pub fn permits_mechanism(&self, mechanism: CK_MECHANISM_TYPE) -> bool {
        let Some(list) = self.get(CKA_ALLOWED_MECHANISMS) else { return true };
        list.chunks_exact(std::mem::size_of::<CK_ULONG>()).filter_map(decode_ulong).any(|m| m == mechanism)
    }

    /// `C_GetAttributeValue` for one attribute.
    pub fn read(&self, attribute: CK_ATTRIBUTE_TYPE) -> AttributeRead {
        if self.profile.rule(attribute).is_none() {
            return AttributeRead::Invalid;
        }
        if self.is_check_value(attribute) {
            return match self.check_value() {
                Ok(v) => AttributeRead::Value(Zeroizing::new(v)),
                Err(Error::UserNotLoggedIn) => AttributeRead::Sensitive,
                Err(_) => AttributeRead::Invalid,
            };
        }
        if self.is_protected(attribute) || self.sealed.contains(&attribute) {
            return AttributeRead::Sensitive;
        }
        match self.values.get(attribute) {
            Some(v) => AttributeRead::Value(Zeroizing::new(v.to_vec())),
            None => AttributeRead::Invalid,
        }
    }

    /// Whether every entry of `template` equals this object's value. Protected values never
    /// match, so a search cannot be used to guess them.
    pub fn matches(&self, template: &[Attribute]) -> bool {
        template.iter().all(|a| {
            if self.is_check_value(a.kind) {
                return self.check_value().is_ok_and(|v| v == a.value.as_slice());
            }
            !self.is_protected(a.kind)
                && !self.sealed.contains(&a.kind)
                && self.values.get(a.kind).is_some_and(|v| v == a.value.as_slice())
        })
    }

    /// An approximation of the object's size in bytes, for `C_GetObjectSize`.
    pub fn size(&self) -> usize {
        self.values.iter().map(|(_, v)| v.len() + 16).sum()
    }

    /// The key material of a secret key, for a cryptographic operation.
    pub fn secret_key(&self) -> Result<SecretKey> {
        if self.profile != Profile::SecretKey {
            return Err(Error::KeyTypeInconsistent);
        }
        if self.sealed.contains(&CKA_VALUE) {
            return Err(Error::UserNotLoggedIn);
        }
        let value = self.values.get(CKA_VALUE).ok_or(Error::Internal("secret key without value"))?;
        let key_type = self.key_type().ok_or(Error::Internal("key without key type"))?;
        Ok(SecretKey { key_type, value: Zeroizing::new(value.to_vec()) })
    }

    /// The key material of any key, for a cryptographic operation. Values sealed while
    /// nobody is logged in are not usable.
    pub fn key_material(&self) -> Result<KeyMaterial> {
        let public =
            |o: &Object, a| o.get(a).map(<[u8]>::to_vec).ok_or(Error::Internal("key lacks a component"));
        let secret = |o: &Object, a| -> Result<Zeroizing<Vec<u8>>> {
            if o.sealed.contains(&a) {
                return Err(Error::UserNotLoggedIn);
            }
            o.values
                .get(a)
                .map(|v| Zeroizing::new(v.to_vec()))
                .ok_or(Error::Internal("key lacks a component"))
        };
        let rsa_public = |o: &Object| -> Result<RsaPublicKey> {
            Ok(RsaPublicKey {
                modulus: public(o, CKA_MODULUS)?,
                public_exponent: public(o, CKA_PUBLIC_EXPONENT)?,
            })
        };
        Ok(match self.profile {
            Profile::SecretKey => KeyMaterial::Secret(self.secret_key()?),
            Profile::RsaPublicKey => KeyMaterial::RsaPublic(rsa_public(self)?),
            Profile::RsaPrivateKey => {
                let crt_parts = [CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT];
                let has_crt = crt_parts
                    .iter()
                    .all(|a| self.sealed.contains(a) || self.get(*a).is_some_and(|v| !v.is_empty()));
                let crt = if has_crt {
                    Some(RsaCrt {
                        prime_1: secret(self, CKA_PRIME_1)?,
                        prime_2: secret(self, CKA_PRIME_2)?,
                        exponent_1: secret(self, CKA_EXPONENT_1)?,
                        exponent_2: secret(self, CKA_EXPONENT_2)?,
                        coefficient: secret(self, CKA_COEFFICIENT)?,
                    })
                } else {
                    None
                };
                KeyMaterial::RsaPrivate(RsaPrivateKey {
                    public: rsa_public(self)?,
                    private_exponent: secret(self, CKA_PRIVATE_EXPONENT)?,
                    crt,
                })
            }
            Profile::EcPublicKey => KeyMaterial::EcPublic(EcPublicKey {
                params: public(self, CKA_EC_PARAMS)?,
                point: encoding::ec_point_from_attribute(&public(self, CKA_EC_POINT)?)
                    .map_err(|_| Error::KeyTypeInconsistent)?,
            }),
            Profile::EcPrivateKey => KeyMaterial::EcPrivate(EcPrivateKey {
                params: public(self, CKA_EC_PARAMS)?,
                value: secret(self, CKA_VALUE)?,
            }),
            Profile::MlDsaPublicKey | Profile::MlKemPublicKey => KeyMaterial::PqPublic(PqPublicKey {
                key_type: self.key_type().ok_or(Error::Internal("key without key type"))?,
                parameter_set: self
                    .ulong(CKA_PARAMETER_SET)
                    .ok_or(Error::Internal("key lacks a component"))?,
                value: public(self, CKA_VALUE)?,
            }),
            Profile::MlDsaPrivateKey | Profile::MlKemPrivateKey => {
                // The expanded key, the seed, or both (`template.rs` saw to one at least).
                let optional = |a| {
                    if self.sealed.contains(&a) || self.get(a).is_some_and(|v| !v.is_empty()) {
                        secret(self, a).map(Some)
                    } else {
                        Ok(None)
                    }
                };
                KeyMaterial::PqPrivate(PqPrivateKey {
                    key_type: self.key_type().ok_or(Error::Internal("key without key type"))?,
                    parameter_set: self
                        .ulong(CKA_PARAMETER_SET)
                        .ok_or(Error::Internal("key lacks a component"))?,
                    value: optional(CKA_VALUE)?.unwrap_or_default(),
                    seed: optional(CKA_SEED)?,
                })
            }
            Profile::Data | Profile::X509Certificate => return Err(Error::KeyHandleInvalid),
        })
    }
}
