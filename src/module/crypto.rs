//! Object calls routed to the session's token, and the cryptographic functions (spec
//! chapters 5.7 to 5.15): key generation, encryption, decryption, digests, random numbers.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use std::sync::Arc;

use super::Module;
use super::token::KEY_USE_STALENESS;
use crate::hierarchy;
use crate::mechanism::aes_gcm::{self, GcmMessageParams};
use crate::mechanism::prepared::PreparedKey;
use crate::mechanism::{self, Mechanism, MechanismParams};
use crate::object::attribute::decode_attribute_array;
use crate::object::template::{self, Actor, Origin};
use crate::object::{Attribute, AttributeRead};
use crate::policy::PendingApproval;
use crate::session::{
    CachedKey, Delivered, Dest, FindCursor, Operations, Output, OutputBuffer, output_step, output_step_into,
};
use crate::{Error, Result};

/// Records what the operation just begun as `operation` waits for, replacing what an
/// earlier operation of that kind had: an approval serves one operation only.
fn set_approval(ops: &mut Operations, operation: &'static str, approval: Option<PendingApproval>) {
    match approval {
        Some(a) => ops.approvals.insert(operation, a),
        None => ops.approvals.remove(operation),
    };
}

/// `CKR_USER_NOT_LOGGED_IN` while the operation in progress as `operation` still waits for
/// approvers (as for a `CKA_ALWAYS_AUTHENTICATE` key before its context-specific login).
fn awaits_approval(ops: &Operations, operation: &str) -> Result<()> {
    match ops.approvals.get(operation) {
        Some(a) if !a.is_met() => Err(Error::UserNotLoggedIn),
        _ => Ok(()),
    }
}

/// Which of a session's cipher operations a call concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    Encrypt,
    Decrypt,
}

impl CipherKind {
    /// The operation's name in the policy, approvals and the audit record.
    pub fn name(self) -> &'static str {
        match self {
            CipherKind::Encrypt => "encrypt",
            CipherKind::Decrypt => "decrypt",
        }
    }
}

/// The operations of a session that run in steps (for ending one from outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
    SignRecover,
    VerifyRecover,
}

/// Which step of a multi-part operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Single(&'a [u8]),
    Update(&'a [u8]),
    Final,
}

impl Module {
    pub(super) fn create_object_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let (s, token) = self.session_and_token(h)?;
        token.create_object(h, s.read_write, template)
    }

    pub(super) fn copy_object_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let (s, token) = self.session_and_token(h)?;
        token.copy_object(h, s.read_write, object, template)
    }

    pub(super) fn destroy_object_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let consumed = token.destroy_object(s.read_write, object)?;
        token.record_consumed(h, &consumed)
    }

    pub fn object_size(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<usize> {
        let (s, token) = self.session_and_token(h)?;
        token.object_size(s.read_write, object)
    }

    pub(super) fn get_attributes_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        let (s, token) = self.session_and_token(h)?;
        token.get_attributes(s.read_write, object, kinds)
    }

    pub(super) fn set_attributes_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let consumed = token.set_attributes(s.read_write, object, template)?;
        token.record_consumed(h, &consumed)
    }

    pub(super) fn find_init_unrecorded(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        if ops.find.is_some() {
            return Err(Error::OperationActive);
        }
        ops.find = Some(FindCursor::new(token.find(s.read_write, template)?));
        Ok(())
    }

    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        Ok(ops.find.as_mut().ok_or(Error::OperationNotInitialized)?.take(max))
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        s.operations.lock().find.take().map(|_| ()).ok_or(Error::OperationNotInitialized)
    }

    pub(super) fn generate_key_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let (s, token) = self.session_and_token(h)?;
        let key_type = mechanism::registry::secret_key_type(mechanism.kind)?;
        if mechanism.params != MechanismParams::None {
            return Err(Error::MechanismParamInvalid);
        }
        let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
        let origin = Origin::Generate { mechanism: mechanism.kind };
        if let Some(tier) = hierarchy::requested_tier(template)? {
            return self.generate_hierarchy_key(h, &token, s.read_write, mechanism, tier, template, actor);
        }
        let mut key = template::new_object(template, Some((CKO_SECRET_KEY, key_type)), origin, actor)?;
        let len = key.ulong(CKA_VALUE_LEN).ok_or(Error::TemplateIncomplete)?;
        let len = usize::try_from(len).map_err(|_| Error::KeySizeRange)?;
        let value = mechanism::keygen::generate_secret(mechanism.kind, key_type, len)?;
        key.set(CKA_VALUE, value.to_vec());
        token.store_new_object(h, s.read_write, key)
    }

    /// `C_GenerateKey` with a `CKA_ECM_TIER` template: the next version of a family of the
    /// envelope hierarchy (the first, or a rotation).
    #[allow(clippy::too_many_arguments)]
    fn generate_hierarchy_key(
        &self,
        h: CK_SESSION_HANDLE,
        token: &super::token::Token,
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
    /// both keys are stored together or not at all.
    pub(super) fn generate_key_pair_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
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
        )?;
        let (public_material, private_material) = match pair {
            KeyPair::Rsa(pk, sk) => {
                for o in [&mut public, &mut private] {
                    o.set(CKA_MODULUS, pk.modulus.clone());
                    o.set(CKA_PUBLIC_EXPONENT, pk.public_exponent.clone());
                }
                private.set(CKA_PRIVATE_EXPONENT, sk.private_exponent.to_vec());
                if let Some(crt) = &sk.crt {
                    private.set(CKA_PRIME_1, crt.prime_1.to_vec());
                    private.set(CKA_PRIME_2, crt.prime_2.to_vec());
                    private.set(CKA_EXPONENT_1, crt.exponent_1.to_vec());
                    private.set(CKA_EXPONENT_2, crt.exponent_2.to_vec());
                    private.set(CKA_COEFFICIENT, crt.coefficient.to_vec());
                }
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
        };
        let info = encoding::public_key_info(&public_material)?;
        public.set(CKA_PUBLIC_KEY_INFO, info.clone());
        private.set(CKA_PUBLIC_KEY_INFO, info);
        drop((public_material, private_material));
        let handles = token.store_new_objects(h, s.read_write, vec![public, private])?;
        Ok((handles[0], handles[1]))
    }

    /// `C_DeriveKey` (ECDH): a new secret key from the base key and the other party's public
    /// point. Its length is `CKA_VALUE_LEN`, or the key type's natural size.
    pub(super) fn derive_key_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        use crate::object::attribute::{decode_bool, encode_ulong};
        let (s, token) = self.session_and_token(h)?;
        // A mechanism the module cannot derive with is refused before the template is read.
        mechanism::registry::require(mechanism.kind, CKF_DERIVE)?;
        let material = token.key_material_for(s.read_write, base, CKA_DERIVE, mechanism.kind)?;
        // A second key named in the parameter, checked for derivation like the base key.
        let other_handle = mechanism::derive::other_key(mechanism)?;
        let other = match other_handle {
            Some(other) => Some(token.key_material_for(s.read_write, other, CKA_DERIVE, mechanism.kind)?),
            None => None,
        };
        // [always sensitive, never extractable, sensitive, unextractable] of the base key and of
        // the other key; the derived key's history needs both (CKM_CONCATENATE_BASE_AND_KEY).
        let protection = |key| -> Result<[bool; 4]> {
            let read = token.get_attributes(
                s.read_write,
                key,
                &[CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE, CKA_EXTRACTABLE],
            )?;
            let is = |r: &AttributeRead, want| matches!(r, AttributeRead::Value(v) if decode_bool(v) == Some(want));
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
        let mut template = with_imposed_template(&token, s.read_write, base, CKA_DERIVE_TEMPLATE, template)?;
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
        // Without a class or key type, the key is a generic secret, as the standard says for the
        // derivation mechanisms.
        for (kind, default) in [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET)] {
            if !template.iter().any(|a| a.kind == kind) {
                template.push(Attribute::ulong(kind, default));
            }
        }
        let mut key = template::new_object(&template, None, origin, actor)?;
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
    }

    /// `C_WrapKey`: the key's bytes encrypted under the wrapping key, through the
    /// output-buffer protocol (a size query makes every check; it wraps too, to learn the
    /// length, unless the mechanism's output length is known beforehand; it releases
    /// nothing).
    pub(super) fn wrap_key_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        buffer: OutputBuffer,
    ) -> Result<Output> {
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
    }

    /// `C_UnwrapKey`: a new secret key from a wrapped blob and a template that names its
    /// class and key type. The key is not local and has no history of being sensitive.
    pub(super) fn unwrap_key_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let (s, token) = self.session_and_token(h)?;
        // The unwrapping key, checked, with its CKA_UNWRAP_TEMPLATE imposed on `template`.
        let (unwrapping_key, template, actor) =
            token.unwrap_inputs(s.read_write, unwrapping, mechanism.kind, template)?;
        // Check the template before opening anything.
        let mut key = template::new_object(&template, None, Origin::Unwrap, actor)?;
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
            crate::object::Profile::RsaPrivateKey | crate::object::Profile::EcPrivateKey => {
                set_private_key_components(&mut key, mechanism::encoding::private_key_from_pkcs8(&value)?)?;
            }
            _ => return Err(Error::TemplateInconsistent),
        }
        token.store_new_object(h, s.read_write, key)
    }

    /// `C_EncryptInit`/`C_DecryptInit`; `None` for the mechanism ends an active operation.
    pub(super) fn cipher_init_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        match kind {
            CipherKind::Encrypt => self.begin(
                h,
                mechanism,
                key,
                CKA_ENCRYPT,
                kind.name(),
                |o| &mut o.encrypt,
                |m, k| mechanism::cipher_init_prepared(m, k, true),
            ),
            CipherKind::Decrypt => self.begin(
                h,
                mechanism,
                key,
                CKA_DECRYPT,
                kind.name(),
                |o| &mut o.decrypt,
                |m, k| mechanism::cipher_init_prepared(m, k, false),
            ),
        }
    }

    /// Every `*Init` that may wait for approvals: `None` for the mechanism ends the operation
    /// in `slot` (and its approval); otherwise the key is checked for `usage`, `begin` makes
    /// the operation, and the approval it waits for, if any, is kept under `name`.
    ///
    /// A key this session looked up for the same use and mechanism is taken from its cache
    /// (`crate::session::keys`) while the token has not changed since and the store was
    /// checked recently enough: the lookup would give the same answer, and the token's lock
    /// is not taken. Keys that wait for approvals are never cached.
    #[allow(clippy::too_many_arguments)]
    fn begin<T>(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        name: &'static str,
        slot: fn(&mut Operations) -> &mut Option<T>,
        begin: impl FnOnce(&Mechanism, &Arc<PreparedKey>) -> Result<T>,
    ) -> Result<()> {
        let s = self.session(h)?;
        let token = &s.token;
        let mut ops = s.operations.lock();
        let Some(mechanism) = mechanism else {
            *slot(&mut ops) = None;
            ops.approvals.remove(name);
            return Ok(());
        };
        if slot(&mut ops).is_some() {
            return Err(Error::OperationActive);
        }
        let version = token.version();
        if let Some(prepared) = ops.keys.get(key, usage, mechanism.kind, version, KEY_USE_STALENESS).cloned()
        {
            *slot(&mut ops) = Some(begin(mechanism, &prepared)?);
            ops.approvals.remove(name);
            return Ok(());
        }
        let (material, approval) = token.key_material_gated(s.read_write, key, usage, mechanism.kind)?;
        let prepared = Arc::new(PreparedKey::new(material));
        // Read after the lookup: unchanged, the lookup saw the token as of `version`.
        let checked_at = token.checked_at();
        if approval.is_none()
            && let Some(checked_at) = checked_at
            && token.version() == version
        {
            let entry = CachedKey {
                handle: key,
                usage,
                mechanism: mechanism.kind,
                version,
                checked_at,
                key: prepared.clone(),
            };
            ops.keys.put(entry);
        }
        *slot(&mut ops) = Some(begin(mechanism, &prepared)?);
        set_approval(&mut ops, name, approval);
        Ok(())
    }

    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        awaits_approval(&ops, kind.name())?;
        let slot = match kind {
            CipherKind::Encrypt => &mut ops.encrypt,
            CipherKind::Decrypt => &mut ops.decrypt,
        };
        match step {
            Step::Single(input) => {
                output_step(slot, buffer, true, |op| op.single_len(input.len()), |op| op.single(input))
            }
            Step::Update(input) => {
                output_step(slot, buffer, false, |op| Ok(op.update_len(input.len())), |op| op.update(input))
            }
            Step::Final => output_step(slot, buffer, true, |op| Ok(op.final_len()), |op| op.finish()),
        }
    }

    /// As [`Module::cipher`], writing into the caller's buffer (the C ABI's path, when the
    /// input and output do not overlap).
    pub fn cipher_into(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        dest: Dest<'_>,
    ) -> Result<Delivered> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        if !ops.approvals.is_empty() {
            awaits_approval(&ops, kind.name())?;
        }
        let slot = match kind {
            CipherKind::Encrypt => &mut ops.encrypt,
            CipherKind::Decrypt => &mut ops.decrypt,
        };
        match step {
            Step::Single(input) => output_step_into(
                slot,
                dest,
                true,
                |op| op.single_len(input.len()),
                |op, out| op.single_into(input, out),
            ),
            Step::Update(input) => output_step_into(
                slot,
                dest,
                false,
                |op| Ok(op.update_len(input.len())),
                |op, out| op.update_into(input, out),
            ),
            Step::Final => {
                output_step_into(slot, dest, true, |op| Ok(op.final_len()), |op, out| op.finish_into(out))
            }
        }
    }

    /// `C_SignInit`; `None` for the mechanism ends an active operation.
    pub(super) fn sign_init_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.begin(
            h,
            mechanism,
            key,
            CKA_SIGN,
            "sign",
            |o| &mut o.sign,
            |m, k| mechanism::sign_init(m, &k.material),
        )
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        awaits_approval(&ops, "sign")?;
        let slot = &mut ops.sign;
        let bytes = |r: Result<Vec<u8>>| r.map(Zeroizing::new);
        match step {
            Step::Single(data) => {
                output_step(slot, buffer, true, |op| Ok(op.signature_len()), |op| bytes(op.sign(data)))
            }
            Step::Update(data) => output_step(
                slot,
                buffer,
                false,
                |_| Ok(0),
                |op| op.update(data).map(|()| Zeroizing::new(Vec::new())),
            ),
            Step::Final => {
                output_step(slot, buffer, true, |op| Ok(op.signature_len()), |op| bytes(op.finish()))
            }
        }
    }

    /// `C_SignRecoverInit` (`kind` `SignRecover`) or `C_VerifyRecoverInit`; `None` for the
    /// mechanism ends an active operation.
    pub(super) fn recover_init_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        let (slot, usage) = match kind {
            OperationKind::SignRecover => (&mut ops.sign_recover, CKA_SIGN_RECOVER),
            OperationKind::VerifyRecover => (&mut ops.verify_recover, CKA_VERIFY_RECOVER),
            _ => return Err(Error::Internal("not a recovery operation")),
        };
        let Some(mechanism) = mechanism else {
            *slot = None;
            return Ok(());
        };
        if slot.is_some() {
            return Err(Error::OperationActive);
        }
        let material = token.key_material_for(s.read_write, key, usage, mechanism.kind)?;
        *slot = Some(match kind {
            OperationKind::SignRecover => mechanism::sign_recover_init(mechanism, &material)?,
            _ => mechanism::verify_recover_init(mechanism, &material)?,
        });
        Ok(())
    }

    /// `C_SignRecover`/`C_VerifyRecover`: single-part only.
    fn recover(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let slot = match kind {
            OperationKind::SignRecover => &mut ops.sign_recover,
            _ => &mut ops.verify_recover,
        };
        match step {
            Step::Single(input) => {
                output_step(slot, buffer, true, |op| op.single_len(input.len()), |op| op.single(input))
            }
            Step::Update(_) | Step::Final => Err(Error::FunctionNotSupported),
        }
    }

    /// `C_VerifyInit`; `None` for the mechanism ends an active operation.
    pub(super) fn verify_init_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.begin(
            h,
            mechanism,
            key,
            CKA_VERIFY,
            "verify",
            |o| &mut o.verify,
            |m, k| mechanism::verify_init(m, &k.material),
        )
    }

    /// One step of a verification: `Single(data)` and `Final` take the signature; the
    /// operation ends after them, and after any error.
    pub fn verify(&self, h: CK_SESSION_HANDLE, step: Step<'_>, signature: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        if ops.verify.is_some() {
            awaits_approval(&ops, "verify")?;
        }
        let op = ops.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
        let (result, finished) = match step {
            Step::Single(data) => (op.verify(data, signature), true),
            Step::Update(data) => (op.update(data), false),
            Step::Final => (op.finish(signature), true),
        };
        if finished || result.is_err() {
            ops.verify = None;
        }
        result
    }

    /// Runs one step of the operation `kind` that produces output (not a verification).
    pub fn operation_step(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        match kind {
            OperationKind::Encrypt => self.cipher(h, CipherKind::Encrypt, step, buffer),
            OperationKind::Decrypt => self.cipher(h, CipherKind::Decrypt, step, buffer),
            OperationKind::Digest => self.digest(h, step, buffer),
            OperationKind::Sign => self.sign(h, step, buffer),
            OperationKind::SignRecover | OperationKind::VerifyRecover => self.recover(h, kind, step, buffer),
            OperationKind::Verify => Err(Error::Internal("verification steps take a signature")),
        }
    }

    /// Ends the operation `kind` of a session, if any: a step refused for its arguments ends
    /// it, like any failed step.
    pub fn end_operation(&self, h: CK_SESSION_HANDLE, kind: OperationKind) {
        if let Ok(s) = self.session(h) {
            let mut ops = s.operations.lock();
            match kind {
                OperationKind::Encrypt => ops.encrypt = None,
                OperationKind::Decrypt => ops.decrypt = None,
                OperationKind::Digest => ops.digest = None,
                OperationKind::Sign => ops.sign = None,
                OperationKind::Verify => ops.verify = None,
                OperationKind::SignRecover => ops.sign_recover = None,
                OperationKind::VerifyRecover => ops.verify_recover = None,
            }
        }
    }

    /// `C_MessageEncryptInit`/`C_MessageDecryptInit`; the per-message parameters come with
    /// each message.
    pub(super) fn message_init_unrecorded(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        let (slot, usage, encrypt) = match kind {
            CipherKind::Encrypt => (&mut ops.message_encrypt, CKA_ENCRYPT, true),
            CipherKind::Decrypt => (&mut ops.message_decrypt, CKA_DECRYPT, false),
        };
        if slot.is_some() {
            return Err(Error::OperationActive);
        }
        let secret = token.secret_key_for(s.read_write, key, usage, mechanism.kind)?;
        *slot = Some(mechanism::message_init(mechanism, &secret, encrypt)?);
        Ok(())
    }

    /// `C_EncryptMessage`: seals one message, generating its IV if asked. The output is the
    /// ciphertext (as long as the plaintext); the IV used and the tag are returned beside it.
    /// A size query or a short buffer consumes no IV. Errors leave the operation active.
    pub fn encrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &mut GcmMessageParams,
        aad: &[u8],
        plaintext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<(Output, [u8; aes_gcm::TAG_LEN])> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let key = ops.message_encrypt.as_mut().ok_or(Error::OperationNotInitialized)?;
        match buffer {
            OutputBuffer::Query => return Ok((Output::Length(plaintext.len()), [0; aes_gcm::TAG_LEN])),
            OutputBuffer::Capacity(c) if c < plaintext.len() => {
                return Err(Error::BufferTooSmall { needed: plaintext.len() });
            }
            OutputBuffer::Capacity(_) => {}
        }
        let (ciphertext, tag) = key.encrypt(params, aad, plaintext)?;
        Ok((Output::Bytes(Zeroizing::new(ciphertext)), tag))
    }

    /// `C_DecryptMessage`: opens one message with its IV and tag.
    pub fn decrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &GcmMessageParams,
        tag: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let ops = s.operations.lock();
        let key = ops.message_decrypt.as_ref().ok_or(Error::OperationNotInitialized)?;
        match buffer {
            OutputBuffer::Query => return Ok(Output::Length(ciphertext.len())),
            OutputBuffer::Capacity(c) if c < ciphertext.len() => {
                return Err(Error::BufferTooSmall { needed: ciphertext.len() });
            }
            OutputBuffer::Capacity(_) => {}
        }
        key.decrypt(params, tag, aad, ciphertext).map(Output::Bytes)
    }

    /// `C_MessageEncryptFinal`/`C_MessageDecryptFinal`.
    pub fn message_final(&self, h: CK_SESSION_HANDLE, kind: CipherKind) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let slot = match kind {
            CipherKind::Encrypt => &mut ops.message_encrypt,
            CipherKind::Decrypt => &mut ops.message_decrypt,
        };
        slot.take().map(|_| ()).ok_or(Error::OperationNotInitialized)
    }

    pub fn digest_init(&self, h: CK_SESSION_HANDLE, mechanism: Option<&Mechanism>) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let Some(mechanism) = mechanism else {
            ops.digest = None;
            return Ok(());
        };
        if ops.digest.is_some() {
            return Err(Error::OperationActive);
        }
        ops.digest = Some(mechanism::digest_init(mechanism)?);
        Ok(())
    }

    pub fn digest(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let slot = &mut ops.digest;
        let bytes = |v: Vec<u8>| Ok(Zeroizing::new(v));
        match step {
            Step::Single(input) => output_step(
                slot,
                buffer,
                true,
                |op| Ok(op.output_len()),
                |op| {
                    op.update(input);
                    bytes(op.finish())
                },
            ),
            Step::Update(input) => output_step(
                slot,
                buffer,
                false,
                |_| Ok(0),
                |op| {
                    op.update(input);
                    bytes(Vec::new())
                },
            ),
            Step::Final => output_step(slot, buffer, true, |op| Ok(op.output_len()), |op| bytes(op.finish())),
        }
    }

    /// `C_DigestKey`: feeds a secret key's value to the digest. Keys whose value may not be
    /// revealed are refused (`CKR_KEY_INDIGESTIBLE`): a digest is a partial reveal.
    pub fn digest_key(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        if ops.digest.is_none() {
            return Err(Error::OperationNotInitialized);
        }
        let value = match token.get_attributes(s.read_write, key, &[CKA_CLASS, CKA_VALUE]) {
            Ok(reads) => match &reads[..] {
                [AttributeRead::Value(class), AttributeRead::Value(v)]
                    if class.as_slice()
                        == crate::object::attribute::encode_ulong(CKO_SECRET_KEY).as_slice() =>
                {
                    Ok(v.clone())
                }
                _ => Err(Error::KeyIndigestible),
            },
            Err(Error::ObjectHandleInvalid) => Err(Error::KeyHandleInvalid),
            Err(e) => Err(e),
        };
        match value {
            Ok(v) => {
                if let Some(d) = ops.digest.as_mut() {
                    d.update(&v);
                }
                Ok(())
            }
            Err(e) => {
                ops.digest = None;
                Err(e)
            }
        }
    }

    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(h)?;
        mechanism::rng::fill(out)
    }

    /// `C_SeedRandom`: the generator is AWS-LC's DRBG, reseeded from the operating system;
    /// it takes no seed from callers.
    pub fn seed_random(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session(h)?;
        Err(Error::RandomSeedNotSupported)
    }
}

/// `template` with the entries of the key's attribute-array attribute `imposed` (an unwrap
/// or derive template) added; a template that contradicts them is inconsistent.
fn with_imposed_template(
    token: &super::token::Token,
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
            key.set(CKA_PRIVATE_EXPONENT, k.private_exponent.to_vec());
            if let Some(crt) = &k.crt {
                key.set(CKA_PRIME_1, crt.prime_1.to_vec());
                key.set(CKA_PRIME_2, crt.prime_2.to_vec());
                key.set(CKA_EXPONENT_1, crt.exponent_1.to_vec());
                key.set(CKA_EXPONENT_2, crt.exponent_2.to_vec());
                key.set(CKA_COEFFICIENT, crt.coefficient.to_vec());
            }
        }
        (Some(kind @ (CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)), KeyMaterial::EcPrivate(k))
            if mechanism::ec::key_type_of_params(&k.params) == kind =>
        {
            key.set(CKA_EC_PARAMS, k.params.clone());
            key.set(CKA_VALUE, k.value.to_vec());
        }
        _ => return Err(Error::TemplateInconsistent),
    }
    if let Some(info) = info {
        key.set(CKA_PUBLIC_KEY_INFO, info);
    }
    Ok(())
}
