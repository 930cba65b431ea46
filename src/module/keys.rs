//! Key management (PKCS#11 3.0 chapter 5.14): keys generated (secret keys, key pairs, and
//! the keys of the envelope hierarchy), derived, wrapped and unwrapped; each recorded naming
//! the key it made or used.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::Module;
use super::audit::rv_of;
use crate::hierarchy;
use crate::mechanism::{self, KeyMaterial, Mechanism, MechanismParams};
use crate::object::attribute::decode_attribute_array;
use crate::object::template::{self, Actor, Origin};
use crate::object::{Attribute, AttributeRead};
use crate::session::{Output, OutputBuffer};
use crate::token::Token;
use crate::{Error, Result};

impl Module {
    /// `C_GenerateKey`, recorded as `generate` naming the new key, or `rotate` for a later
    /// version of a family of the hierarchy (after the approvals it used up).
    pub fn generate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let generate = || -> Result<CK_OBJECT_HANDLE> {
            let (s, token) = self.session_and_token(h)?;
            let key_type = mechanism::registry::secret_key_type(mechanism.kind)?;
            if mechanism.params != MechanismParams::None {
                return Err(Error::MechanismParamInvalid);
            }
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            let origin = Origin::Generate { mechanism: mechanism.kind };
            if let Some(tier) = hierarchy::requested_tier(template)? {
                return self.generate_hierarchy_key(
                    h,
                    &token,
                    s.read_write,
                    mechanism,
                    tier,
                    template,
                    actor,
                );
            }
            let defaults = self.config.object_defaults();
            let mut key = template::new_object_with(
                template,
                Some((CKO_SECRET_KEY, key_type)),
                origin,
                actor,
                defaults,
            )?;
            let len = key.ulong(CKA_VALUE_LEN).ok_or(Error::TemplateIncomplete)?;
            // The size is the template's CKA_VALUE_LEN: one the key type cannot have is an
            // invalid attribute value (C_GenerateKey's list in the standard has no
            // CKR_KEY_SIZE_RANGE, which is about a key supplied to an operation).
            let value = usize::try_from(len)
                .map_err(|_| Error::KeySizeRange)
                .and_then(|len| mechanism::keygen::generate_secret(mechanism.kind, key_type, len))
                .map_err(|e| match e {
                    Error::KeySizeRange => Error::AttributeValueInvalid,
                    e => e,
                })?;
            key.set(CKA_VALUE, value.to_vec());
            token.store_new_object(h, s.read_write, key)
        };
        let result = generate();
        let token = self.token_of(h)?;
        let context = token.audit_context(result.as_ref().ok().copied());
        // A later version of a family of the hierarchy is its rotation.
        let operation = if context.key_version().is_some_and(|v| v > 1) { "rotate" } else { "generate" };
        token.record_with(h, operation, context, Some(mechanism.kind), rv_of(&result))?;
        result
    }

    /// `C_GenerateKey` with a `CKA_ECM_TIER` template: the next version of a family of the
    /// envelope hierarchy (the first, or a rotation).
    #[allow(clippy::too_many_arguments)]
    fn generate_hierarchy_key(
        &self,
        h: CK_SESSION_HANDLE,
        token: &Token,
        read_write: bool,
        mechanism: &Mechanism,
        tier: hierarchy::Tier,
        template: &[Attribute],
        actor: Actor,
    ) -> Result<CK_OBJECT_HANDLE> {
        use crate::object::attribute::decode_ulong;
        if mechanism.kind != CKM_AES_KEY_GEN {
            return Err(Error::TemplateInconsistent);
        }
        let full = hierarchy::generation_template(tier, template)?;
        let tenant =
            template.iter().find(|a| a.kind == crate::vendor::CKA_ECM_TENANT).map(|a| a.value.to_vec());
        let period = match template.iter().find(|a| a.kind == crate::vendor::CKA_ECM_ROTATION_PERIOD) {
            // CK_ULONG is u64 on LP64 targets and u32 elsewhere; widening is lossless.
            #[allow(clippy::unnecessary_cast)]
            Some(a) => decode_ulong(&a.value).filter(|p| *p > 0).ok_or(Error::AttributeValueInvalid)? as u64,
            None => self.config.rotation_period(tier),
        };
        let origin = Origin::Generate { mechanism: mechanism.kind };
        let mut key = template::new_object(&full, Some((CKO_SECRET_KEY, CKK_AES)), origin, actor)?;
        let value = mechanism::keygen::generate_secret(CKM_AES_KEY_GEN, CKK_AES, 32)?;
        key.set(CKA_VALUE, value.to_vec());
        let (handle, consumed) = token.generate_in_hierarchy(read_write, key, tier, tenant, period)?;
        token.record_consumed(h, &consumed)?;
        Ok(handle)
    }

    /// `C_GenerateKeyPair`: both templates are checked before anything is generated, and
    /// both keys are stored together or not at all. Recorded as `generate_key_pair` naming the private key.
    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let generate = || -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
            use crate::mechanism::{KeyMaterial, KeyPair, encoding};
            use crate::object::attribute::{decode_ulong, encode_ulong};
            let (s, token) = self.session_and_token(h)?;
            let key_type = mechanism::registry::key_pair_type(mechanism.kind)?;
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            let origin = Origin::Generate { mechanism: mechanism.kind };
            let mut public =
                template::new_object(public_template, Some((CKO_PUBLIC_KEY, key_type)), origin, actor)?;
            let mut private =
                template::new_object(private_template, Some((CKO_PRIVATE_KEY, key_type)), origin, actor)?;
            // Check where the keys would go before spending time on generation.
            let view = token.view(s.read_write);
            view.may_write(public.is_token(), public.is_private())?;
            view.may_write(private.is_token(), private.is_private())?;

            // CK_ULONG is u64 on LP64 targets and u32 elsewhere; widening is lossless either way.
            #[allow(clippy::unnecessary_cast)]
            let modulus_bits = public.get(CKA_MODULUS_BITS).and_then(decode_ulong).map(|b| b as u64);
            let pair = mechanism::generate_key_pair(
                mechanism,
                modulus_bits,
                public.get(CKA_PUBLIC_EXPONENT),
                public.get(CKA_EC_PARAMS),
                public.ulong(CKA_PARAMETER_SET),
            )?;
            let (public_material, private_material) = match pair {
                KeyPair::Rsa(pk, sk) => {
                    for o in [&mut public, &mut private] {
                        o.set(CKA_MODULUS, pk.modulus.clone());
                        o.set(CKA_PUBLIC_EXPONENT, pk.public_exponent.clone());
                    }
                    set_rsa_private_values(&mut private, &sk);
                    let bits = public.get(CKA_MODULUS_BITS).and_then(decode_ulong).unwrap_or(0);
                    public.set(CKA_MODULUS_BITS, encode_ulong(bits));
                    (KeyMaterial::RsaPublic(pk), KeyMaterial::RsaPrivate(sk))
                }
                KeyPair::Ec(pk, sk) => {
                    public.set(CKA_EC_POINT, encoding::ec_point_to_attribute(&pk.point));
                    private.set(CKA_EC_PARAMS, pk.params.clone());
                    private.set(CKA_VALUE, sk.value.to_vec());
                    (KeyMaterial::EcPublic(pk), KeyMaterial::EcPrivate(sk))
                }
                KeyPair::Pq(pk, sk) => {
                    public.set(CKA_VALUE, pk.value.clone());
                    private.set_ulong(CKA_PARAMETER_SET, sk.parameter_set);
                    private.set(CKA_VALUE, sk.value.to_vec());
                    if let Some(seed) = &sk.seed {
                        private.set(CKA_SEED, seed.to_vec());
                    }
                    (KeyMaterial::PqPublic(pk), KeyMaterial::PqPrivate(sk))
                }
            };
            let info = encoding::public_key_info(&public_material)?;
            public.set(CKA_PUBLIC_KEY_INFO, info.clone());
            private.set(CKA_PUBLIC_KEY_INFO, info);
            drop((public_material, private_material));
            let handles = token.store_new_objects(h, s.read_write, vec![public, private])?;
            Ok((handles[0], handles[1]))
        };
        let result = generate();
        let token = self.token_of(h)?;
        let private = result.as_ref().ok().map(|(_, private)| *private);
        token.record(h, "generate_key_pair", private, Some(mechanism.kind), rv_of(&result))?;
        result
    }

    /// `C_DeriveKey` (ECDH): a new secret key from the base key and the other party's public
    /// point. Its length is `CKA_VALUE_LEN`, or the key type's natural size. Recorded as `derive` naming the new key.
    pub fn derive_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        // A derivation into a data object has rules of its own (`derive_data.rs`).
        if mechanism.kind == CKM_HKDF_DATA {
            return self.derive_data(h, mechanism, base, template);
        }
        self.audited_new(h, "derive", Some(mechanism.kind), || {
            use crate::object::attribute::{decode_bool, encode_ulong};
            let (s, token) = self.session_and_token(h)?;
            let (material, other_handle, other) = derivation_keys(&token, s.read_write, mechanism, base)?;
            // [always sensitive, never extractable, sensitive, unextractable] of the base key and
            // of the other key; the derived key's history needs both (CKM_CONCATENATE_BASE_AND_KEY).
            let protection = |key| -> Result<[bool; 4]> {
                let read = token.get_attributes(
                    s.read_write,
                    key,
                    &[CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE, CKA_EXTRACTABLE],
                )?;
                let is =
                    |r: &AttributeRead, want| matches!(r, AttributeRead::Value(v) if decode_bool(v) == Some(want));
                Ok([is(&read[0], true), is(&read[1], true), is(&read[2], true), is(&read[3], false)])
            };
            let mut history = protection(base)?;
            if let Some(other) = other_handle {
                let more = protection(other)?;
                history =
                    [history[0] && more[0], history[1] && more[1], history[2] || more[2], history[3] || more[3]];
            }
            let origin = Origin::Derive { base_always_sensitive: history[0], base_never_extractable: history[1] };
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            hierarchy::refuse_outside_generation(template)?;
            // The base key's CKA_DERIVE_TEMPLATE is imposed like an unwrap template.
            let mut template =
                with_imposed_template(&token, s.read_write, base, CKA_DERIVE_TEMPLATE, template)?;
            // The simple derivations pass the base key's protection on (PKCS#11 3.0): a sensitive
            // base gives a sensitive key, an unextractable base an unextractable key (see
            // mechanism::derive::propagates_protection for which mechanisms).
            if mechanism::derive::propagates_protection(mechanism.kind) {
                for (imposed, applies) in [
                    (Attribute::bool(CKA_SENSITIVE, true), history[2]),
                    (Attribute::bool(CKA_EXTRACTABLE, false), history[3]),
                ] {
                    if !applies {
                        continue;
                    }
                    match template.iter().find(|a| a.kind == imposed.kind) {
                        Some(given) if given.value != imposed.value => return Err(Error::TemplateInconsistent),
                        Some(_) => {}
                        None => template.push(imposed),
                    }
                }
            }
            // Without a class or key type, the key is a generic secret, as the standard says for
            // the derivation mechanisms.
            for (kind, default) in [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET)] {
                if !template.iter().any(|a| a.kind == kind) {
                    template.push(Attribute::ulong(kind, default));
                }
            }
            let mut key =
                template::new_object_with(&template, None, origin, actor, self.config.object_defaults())?;
            if key.profile() != crate::object::Profile::SecretKey {
                return Err(Error::TemplateInconsistent);
            }
            let len = match (key.ulong(CKA_VALUE_LEN), key.key_type()) {
                (Some(len), _) => usize::try_from(len).map_err(|_| Error::KeySizeRange)?,
                (None, Some(CKK_AES)) => 32,
                (None, _) => mechanism::natural_derive_len(mechanism, &material, other.as_ref())?
                    .ok_or(Error::TemplateIncomplete)?,
            };
            if key.key_type() == Some(CKK_AES) && !matches!(len, 16 | 24 | 32) {
                return Err(Error::TemplateInconsistent);
            }
            let value = mechanism::derive_with(mechanism, &material, other.as_ref(), len)?;
            key.set(CKA_VALUE_LEN, encode_ulong(value.len() as CK_ULONG));
            key.set(CKA_VALUE, value.to_vec());
            token.store_new_object(h, s.read_write, key)
        })
    }

    /// `C_WrapKey`: the key's bytes encrypted under the wrapping key, through the
    /// output-buffer protocol (a size query makes every check; it wraps too, to learn the
    /// length, unless the mechanism's output length is known beforehand; it releases
    /// nothing). Recorded as `wrap` naming the wrapped key.
    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let wrap = || -> Result<Output> {
            let (s, token) = self.session_and_token(h)?;
            let (wrapping_key, bytes) = token.wrap_inputs(s.read_write, wrapping, key, mechanism.kind)?;
            // A size query of an AES key wrap needs no wrap: its length follows from the input's.
            if buffer == OutputBuffer::Query
                && let Some(len) = mechanism::wrapped_len(mechanism, &wrapping_key, bytes.len())
            {
                return len.map(Output::Length);
            }
            let wrapped = mechanism::wrap(mechanism, &wrapping_key, &bytes)?;
            match buffer {
                OutputBuffer::Query => Ok(Output::Length(wrapped.len())),
                OutputBuffer::Capacity(c) if c < wrapped.len() => {
                    Err(Error::BufferTooSmall { needed: wrapped.len() })
                }
                OutputBuffer::Capacity(_) => Ok(Output::Bytes(Zeroizing::new(wrapped))),
            }
        };
        self.audited(h, "wrap", Some(key), Some(mechanism.kind), wrap, || {})
    }

    /// `C_UnwrapKey`: a new secret key from a wrapped blob and a template that names its
    /// class and key type. The key is not local and has no history of being sensitive. Recorded as `unwrap` naming the new key.
    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "unwrap", Some(mechanism.kind), || {
            let (s, token) = self.session_and_token(h)?;
            // The unwrapping key, checked, with its CKA_UNWRAP_TEMPLATE imposed on `template`.
            let (unwrapping_key, template, actor) =
                token.unwrap_inputs(s.read_write, unwrapping, mechanism.kind, template)?;
            // Check the template before opening anything.
            let defaults = self.config.object_defaults();
            let mut key = template::new_object_with(&template, None, Origin::Unwrap, actor, defaults)?;
            let value = mechanism::unwrap(mechanism, &unwrapping_key, wrapped)?;
            match key.profile() {
                crate::object::Profile::SecretKey => {
                    let fits = match key.key_type() {
                        Some(CKK_AES) => matches!(value.len(), 16 | 24 | 32),
                        _ => !value.is_empty(),
                    };
                    let len_matches = key.ulong(CKA_VALUE_LEN).is_none_or(|l| l == value.len() as CK_ULONG);
                    if !fits || !len_matches {
                        return Err(Error::TemplateInconsistent);
                    }
                    key.set(CKA_VALUE_LEN, crate::object::attribute::encode_ulong(value.len() as CK_ULONG));
                    key.set(CKA_VALUE, value.to_vec());
                }
                crate::object::Profile::RsaPrivateKey
                | crate::object::Profile::EcPrivateKey
                | crate::object::Profile::MlDsaPrivateKey
                | crate::object::Profile::MlKemPrivateKey => {
                    set_private_key_components(
                        &mut key,
                        mechanism::encoding::private_key_from_pkcs8(&value)?,
                    )?;
                }
                _ => return Err(Error::TemplateInconsistent),
            }
            token.store_new_object(h, s.read_write, key)
        })
    }
}

/// `template` with the entries of the key's attribute-array attribute `imposed` (an unwrap
/// or derive template) added; a template that contradicts them is inconsistent.
fn with_imposed_template(
    token: &Token,
    read_write: bool,
    key: CK_OBJECT_HANDLE,
    imposed: CK_ATTRIBUTE_TYPE,
    template: &[Attribute],
) -> Result<Vec<Attribute>> {
    let mut template = template.to_vec();
    if let [AttributeRead::Value(encoded)] = &token.get_attributes(read_write, key, &[imposed])?[..] {
        let entries = decode_attribute_array(encoded).ok_or(Error::Internal("bad stored attribute array"))?;
        for a in entries {
            if template.iter().any(|t| t.kind == a.kind && t.value != a.value) {
                return Err(Error::TemplateInconsistent);
            }
            template.push(a);
        }
    }
    Ok(template)
}

/// An RSA private key object's private values: the private exponent and, when the key has
/// them, the CRT values.
fn set_rsa_private_values(key: &mut crate::object::Object, sk: &mechanism::RsaPrivateKey) {
    key.set(CKA_PRIVATE_EXPONENT, sk.private_exponent.to_vec());
    if let Some(crt) = &sk.crt {
        key.set(CKA_PRIME_1, crt.prime_1.to_vec());
        key.set(CKA_PRIME_2, crt.prime_2.to_vec());
        key.set(CKA_EXPONENT_1, crt.exponent_1.to_vec());
        key.set(CKA_EXPONENT_2, crt.exponent_2.to_vec());
        key.set(CKA_COEFFICIENT, crt.coefficient.to_vec());
    }
}

/// Puts an unwrapped private key's components on the object built from the template, which
/// must have named the same key type.
fn set_private_key_components(
    key: &mut crate::object::Object,
    material: mechanism::KeyMaterial,
) -> Result<()> {
    use crate::mechanism::{KeyMaterial, encoding};
    let info = encoding::public_key_info(&material).ok();
    match (key.key_type(), material) {
        (Some(CKK_RSA), KeyMaterial::RsaPrivate(k)) => {
            key.set(CKA_MODULUS, k.public.modulus.clone());
            key.set(CKA_PUBLIC_EXPONENT, k.public.public_exponent.clone());
            set_rsa_private_values(key, &k);
        }
        (Some(kind @ (CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)), KeyMaterial::EcPrivate(k))
            if mechanism::ec::key_type_of_params(&k.params) == kind =>
        {
            key.set(CKA_EC_PARAMS, k.params.clone());
            key.set(CKA_VALUE, k.value.to_vec());
        }
        // ML-DSA and ML-KEM (3.2): the parameter set is the PKCS#8 algorithm's; the seed and
        // the expanded key as the wrapped form carried them (at least one).
        (Some(kind @ (CKK_ML_DSA | CKK_ML_KEM)), KeyMaterial::PqPrivate(k)) if k.key_type == kind => {
            key.set_ulong(CKA_PARAMETER_SET, k.parameter_set);
            if !k.value.is_empty() {
                key.set(CKA_VALUE, k.value.to_vec());
            }
            if let Some(seed) = &k.seed {
                key.set(CKA_SEED, seed.to_vec());
            }
        }
        _ => return Err(Error::TemplateInconsistent),
    }
    if let Some(info) = info {
        key.set(CKA_PUBLIC_KEY_INFO, info);
    }
    Ok(())
}

/// The keys a `C_DeriveKey` reads, once the module is known to derive with `mechanism` (one
/// it cannot derive with is refused before the template is read): the base key's material,
/// and the handle and material of a second key its parameter names, checked for derivation
/// like the base key.
pub(super) fn derivation_keys(
    token: &Token,
    read_write: bool,
    mechanism: &Mechanism,
    base: CK_OBJECT_HANDLE,
) -> Result<(KeyMaterial, Option<CK_OBJECT_HANDLE>, Option<KeyMaterial>)> {
    mechanism::registry::require(mechanism.kind, CKF_DERIVE)?;
    let material = token.key_material_for(read_write, base, CKA_DERIVE, mechanism.kind)?;
    let other_handle = mechanism::derive::other_key(mechanism)?;
    let other = match other_handle {
        Some(other) => Some(token.key_material_for(read_write, other, CKA_DERIVE, mechanism.kind)?),
        None => None,
    };
    Ok((material, other_handle, other))
}
