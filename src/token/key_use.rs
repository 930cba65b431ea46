//! Keys looked up for use: the checks every operation's key passes (visible to the
//! session, a key, permitted the use and the mechanism, allowed by the policy or waiting for
//! approvers, the hierarchy's rules) and what wrapping and unwrapping need besides.

use std::borrow::Cow;
use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::pin::{PinOwner, PinResult};
use super::{Token, TokenState};
use crate::hierarchy;
use crate::mechanism::{KeyMaterial, SecretKey};
use crate::object::attribute::decode_attribute_array;
use crate::object::template::Actor;
use crate::object::{Attribute, AttributeRead, Object};
use crate::policy::{Decision, LoginState, Operation, PendingApproval};
use crate::{Error, Result};

/// A key looked up for an operation that may wait in its session before its steps run
/// (`C_SignInit`, `C_DecryptInit`, ...): its material, the approval the policy asks for, if
/// any, and whether the key is one the user must authenticate for at each use.
pub struct KeyForUse {
    pub material: KeyMaterial,
    pub approval: Option<PendingApproval>,
    /// A private key with `CKA_ALWAYS_AUTHENTICATE`: the operation waits for
    /// `C_Login(CKU_CONTEXT_SPECIFIC)` with the login's own PIN ([`Token::reauthenticate`]).
    pub needs_pin: bool,
}

/// What a context-specific login's PIN turned out to be for ([`Token::reauthenticate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextPin {
    /// The login's own PIN, checked.
    Reauthenticated,
    /// Another principal's `name:pin`: an approval (`crate::policy::approval`), not
    /// checked here.
    Approval,
}

impl Token {
    /// The secret key behind `handle` for an operation that needs `usage` (`CKA_ENCRYPT`, ...)
    /// with `mechanism`.
    pub fn secret_key_for(
        &self,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<SecretKey> {
        match self.key_material_for(read_write, handle, usage, mechanism)? {
            KeyMaterial::Secret(key) => Ok(key),
            _ => Err(Error::KeyTypeInconsistent),
        }
    }

    /// The key behind `handle` for an operation that needs `usage` (`CKA_SIGN`, ...) with
    /// `mechanism`: visible to the session, a key, permitted that use and that mechanism.
    pub fn key_material_for(
        &self,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<KeyMaterial> {
        match self.key_material_gated(read_write, handle, usage, mechanism)? {
            KeyForUse { material, approval: None, needs_pin: false } => Ok(material),
            // Only the operations that can wait for approvers in band accept a key that
            // needs them (`key_material_gated`); elsewhere it is refused.
            KeyForUse { approval: Some(_), .. } => Err(Error::KeyFunctionNotPermitted),
            // A one-call use (C_DeriveKey) has no moment for the context-specific login
            // that each use of such a key needs.
            KeyForUse { needs_pin: true, .. } => Err(Error::UserNotLoggedIn),
        }
    }

    /// As [`Token::key_material_for`], for an operation that may wait for approvals: a key
    /// the policy lets this login use only with approval comes with the approval to wait
    /// for (`crate::policy::approval`).
    pub fn key_material_gated(
        &self,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<KeyForUse> {
        let state = self.ready_for_use()?;
        let (key, material, approval) = self.checked_key(&state, read_write, handle, usage, mechanism)?;
        Ok(KeyForUse { material, approval, needs_pin: needs_pin(&key) })
    }

    /// The checks of [`Token::key_material_gated`] under a lock the caller holds: the key
    /// object itself comes back too, for callers that read more of it (an unwrapping key's
    /// `CKA_UNWRAP_TEMPLATE`) without resolving the handle again.
    fn checked_key(
        &self,
        state: &TokenState,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<(Arc<Object>, KeyMaterial, Option<PendingApproval>)> {
        let (_, key, _) =
            self.visible(state, state.view(read_write), handle).map_err(|_| Error::KeyHandleInvalid)?;
        if !key.profile().is_key() {
            return Err(Error::KeyHandleInvalid);
        }
        if !key.flag(usage) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        hierarchy::check_use(&key, usage)?;
        let op = match usage {
            CKA_ENCRYPT => Operation::Encrypt,
            CKA_DECRYPT => Operation::Decrypt,
            CKA_SIGN | CKA_SIGN_RECOVER => Operation::Sign,
            CKA_VERIFY | CKA_VERIFY_RECOVER => Operation::Verify,
            CKA_WRAP => Operation::Wrap,
            CKA_UNWRAP => Operation::Unwrap,
            CKA_DERIVE => Operation::Derive,
            // A KEM transports a key as a wrap does (PKCS#11 3.2).
            CKA_ENCAPSULATE => Operation::Wrap,
            CKA_DECAPSULATE => Operation::Unwrap,
            _ => Operation::Read,
        };
        let label = key.get(CKA_LABEL).unwrap_or_default();
        let pending = match state.decide(label, op) {
            Decision::Allow => None,
            Decision::Deny => return Err(Error::KeyFunctionNotPermitted),
            Decision::NeedsApproval => {
                let policy = state.policy.as_ref().ok_or(Error::Internal("approval without a policy"))?;
                let caller = state.principal.as_deref().unwrap_or("user");
                Some(PendingApproval::new(policy, caller, label))
            }
        };
        if usage == CKA_UNWRAP {
            hierarchy::check_unwrap(&key)?;
        }
        check_allowed_mechanism(&key, mechanism)?;
        let mut material = key.key_material()?;
        if let KeyMaterial::Secret(secret) = &mut material
            && hierarchy::tier_of(&key).is_some()
        {
            secret.value = self.hierarchy_value(state, &key)?;
        }
        Ok((key, material, pending))
    }

    /// What `C_UnwrapKey` needs before it unwraps, under one lock and one lookup of the
    /// unwrapping key: the key's material (permitted `CKA_UNWRAP` with `mechanism`, as
    /// [`Token::key_material_for`] checks it), the caller's template with the key's
    /// `CKA_UNWRAP_TEMPLATE` imposed on it, and who is asking.
    ///
    /// The store is checked for other processes' changes as for any key use
    /// ([`Token::ready_for_use`]); this used to be two full lookups, each with its own store
    /// check, which cost more than the unwrap itself.
    pub fn unwrap_inputs<'t>(
        &self,
        read_write: bool,
        unwrapping: CK_OBJECT_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        template: &'t [Attribute],
    ) -> Result<(KeyMaterial, Cow<'t, [Attribute]>, Actor)> {
        let state = self.ready_for_use()?;
        let (key, material) = match self.checked_key(&state, read_write, unwrapping, CKA_UNWRAP, mechanism) {
            // As for C_DeriveKey (`key_material_for`): no context-specific login can come
            // before a one-call use.
            Ok((key, _, None)) if needs_pin(&key) => return Err(Error::UserNotLoggedIn),
            Ok((key, material, None)) => (key, material),
            // Unwrapping cannot wait for approvers in band (see `key_material_for`).
            Ok((_, _, Some(_))) => return Err(Error::KeyFunctionNotPermitted),
            Err(Error::KeyHandleInvalid) => return Err(Error::UnwrappingKeyHandleInvalid),
            Err(e) => return Err(e),
        };
        let actor = Actor { is_so: state.login == crate::policy::LoginState::SecurityOfficer };
        hierarchy::refuse_outside_generation(template)?;
        // An unwrapping key's CKA_UNWRAP_TEMPLATE is imposed on every key it unwraps: each
        // entry is added, and one the caller gave with another value is inconsistent.
        // Copied only if there is something to add.
        let mut template = Cow::Borrowed(template);
        if let AttributeRead::Value(encoded) = key.read(CKA_UNWRAP_TEMPLATE) {
            let entries =
                decode_attribute_array(&encoded).ok_or(Error::Internal("bad stored attribute array"))?;
            for a in entries {
                if template.iter().any(|t| t.kind == a.kind && t.value != a.value) {
                    return Err(Error::TemplateInconsistent);
                }
                template.to_mut().push(a);
            }
        }
        Ok((material, template, actor))
    }

    /// What `C_WrapKey` needs: the wrapping key (permitted `CKA_WRAP` with `mechanism`) and
    /// the bytes of the key to wrap, after the extraction rules: the key must be
    /// extractable, and one with `CKA_WRAP_WITH_TRUSTED` leaves only under a trusted key.
    pub fn wrap_inputs(
        &self,
        read_write: bool,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<(KeyMaterial, Zeroizing<Vec<u8>>)> {
        let wrapping_material = self
            .key_material_for(read_write, wrapping, CKA_WRAP, mechanism)
            .map_err(|e| if e == Error::KeyHandleInvalid { Error::WrappingKeyHandleInvalid } else { e })?;
        // A use of keys like an encryption's (`Token::ready_for_use`): the store is asked
        // about other processes' changes at most every `KEY_USE_STALENESS`, not at every
        // wrap (an SQLite statement and its file locks: more than half of a wrap's time).
        let state = self.ready_for_use()?;
        let view = state.view(read_write);
        let (_, target, _) = self.visible(&state, view, key).map_err(|_| Error::KeyHandleInvalid)?;
        let (_, wrapper, _) =
            self.visible(&state, view, wrapping).map_err(|_| Error::WrappingKeyHandleInvalid)?;
        if !target.profile().is_key() {
            return Err(Error::KeyHandleInvalid);
        }
        hierarchy::check_wrap(&wrapper, &target)?;
        // Wrapping exports the key's value: the wrapping key needs `wrap` (above), the
        // wrapped key `read`, as a read of its value would.
        state.permits(&target, Operation::Read, Error::KeyNotWrappable)?;
        if !target.flag(CKA_EXTRACTABLE) {
            return Err(Error::KeyUnextractable);
        }
        if target.flag(CKA_WRAP_WITH_TRUSTED) && !wrapper.flag(CKA_TRUSTED) {
            return Err(Error::KeyNotWrappable);
        }
        // A wrapping key's CKA_WRAP_TEMPLATE names what the keys it wraps must be.
        if let Some(encoded) = wrapper.get(CKA_WRAP_TEMPLATE) {
            let required =
                decode_attribute_array(encoded).ok_or(Error::Internal("bad stored wrap template"))?;
            if !target.matches(&required) {
                return Err(Error::KeyNotWrappable);
            }
        }
        // Secret keys leave as their value, private keys as PKCS#8 (ML-DSA and ML-KEM keys in
        // the form `mechanism::pq_pkcs8` chooses).
        let bytes = match target.key_material()? {
            KeyMaterial::Secret(_) => self.hierarchy_value(&state, &target)?,
            private
            @ (KeyMaterial::RsaPrivate(_) | KeyMaterial::EcPrivate(_) | KeyMaterial::PqPrivate(_)) => {
                crate::mechanism::encoding::private_key_to_pkcs8(&private)?
            }
            KeyMaterial::RsaPublic(_) | KeyMaterial::EcPublic(_) | KeyMaterial::PqPublic(_) => {
                return Err(Error::KeyNotWrappable);
            }
        };
        Ok((wrapping_material, bytes))
    }

    /// `C_Login(CKU_CONTEXT_SPECIFIC, pin)` while an operation on a key with
    /// `CKA_ALWAYS_AUTHENTICATE` waits: `pin` is checked as the login's own PIN, and a wrong
    /// one counts toward its lockout as a `C_Login` would (the login itself is unchanged).
    ///
    /// The same call gives in-band approvals, as `name:pin` of another principal; it is one
    /// when `approvals_waiting` and the PIN starts with the name of a principal other than
    /// the one logged in ([`ContextPin::Approval`], not checked here). A principal logged in
    /// gives its PIN as `name:pin` (its own name, as at `C_Login`) or alone; the token's user
    /// its PIN as at `C_Login`. Nobody logged in: `CKR_USER_NOT_LOGGED_IN`.
    pub fn reauthenticate(&self, pin: &[u8], approvals_waiting: bool) -> PinResult<ContextPin> {
        let mut state = self.ready_lazy()?;
        if state.login != LoginState::User {
            return Err(Error::UserNotLoggedIn.into());
        }
        let named = pin
            .iter()
            .position(|b| *b == b':')
            .and_then(|colon| Some((std::str::from_utf8(&pin[..colon]).ok()?, &pin[colon + 1..])));
        let (owner, secret) = match (state.principal.clone(), named) {
            (Some(me), Some((name, rest))) if name == &*me => (Some(me), rest),
            (Some(_), Some(_)) if approvals_waiting => return Ok(ContextPin::Approval),
            (Some(me), _) => (Some(me), pin),
            (None, Some((name, _))) if approvals_waiting => {
                let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
                if store.principals()?.iter().any(|p| p.name == name) {
                    return Ok(ContextPin::Approval);
                }
                (None, pin)
            }
            (None, _) => (None, pin),
        };
        let owner = match owner.as_deref() {
            Some(name) => PinOwner::Principal(name),
            None => PinOwner::User,
        };
        self.check_owner_pin(&mut state, owner, secret)?;
        Ok(ContextPin::Reauthenticated)
    }
}

/// Whether each use of `key` needs the user's PIN again (`CKA_ALWAYS_AUTHENTICATE`, an
/// attribute that only private keys store).
fn needs_pin(key: &Object) -> bool {
    key.flag(CKA_ALWAYS_AUTHENTICATE)
}

/// `CKA_ALLOWED_MECHANISMS` lists the only mechanisms the key may be used with (an empty list:
/// none); a key without it may be used with any.
fn check_allowed_mechanism(key: &Object, mechanism: CK_MECHANISM_TYPE) -> Result<()> {
    if key.permits_mechanism(mechanism) { Ok(()) } else { Err(Error::MechanismInvalid) }
}
