//! Key encapsulation (PKCS#11 3.2, `C_EncapsulateKey` and `C_DecapsulateKey`): a shared
//! secret made under a KEM public key, or recovered with its private key, becomes a new
//! secret key object from the caller's template; each call is recorded naming that key.
//!
//! The KEM key's `CKA_ENCAPSULATE_TEMPLATE` (public key) or `CKA_DECAPSULATE_TEMPLATE`
//! (private key) is imposed on the caller's template as an unwrapping key's
//! `CKA_UNWRAP_TEMPLATE` is (`template::impose`): its entries are added, one the caller gave
//! with another value, or a vendor attribute, is `CKR_TEMPLATE_INCONSISTENT`. The 3.2 text
//! words the encapsulation template as one the new key must match; a key made from the
//! merged template always does, and one that cannot is refused before anything is made.
//!
//! The new key is made as an unwrapped key is (`Origin::Unwrap`: not local, no history of
//! being sensitive, extractable unless the template says no), a generic secret unless the
//! template names another secret key type. Its value is the shared secret (32 bytes for
//! ML-KEM), or the leading `CKA_VALUE_LEN` bytes of it when the template asks for a shorter
//! key (an AES-128 key from ML-KEM, as python-pkcs11 asks and Kryoptic makes); a longer
//! length, or one the key type cannot have, is `CKR_TEMPLATE_INCONSISTENT`.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::Module;
use crate::hierarchy;
use crate::mechanism::{self, Mechanism};
use crate::object::attribute::encode_ulong;
use crate::object::template::{self, Actor, Origin};
use crate::object::{Attribute, AttributeRead, Object, Profile};
use crate::session::{Output, OutputBuffer};
use crate::{Error, Result};

impl Module {
    /// `C_EncapsulateKey`: the ciphertext through the output-buffer protocol and, unless
    /// only its length was asked for (or the buffer is too small), the handle of the new key
    /// holding the shared secret. A size query makes every check but creates nothing.
    pub fn encapsulate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public: CK_OBJECT_HANDLE,
        template: &[Attribute],
        buffer: OutputBuffer,
    ) -> Result<(Output, Option<CK_OBJECT_HANDLE>)> {
        let encapsulate = || -> Result<(Output, Option<CK_OBJECT_HANDLE>)> {
            let (s, token) = self.session_and_token(h)?;
            mechanism::registry::require(mechanism.kind, CKF_ENCAPSULATE)?;
            let material = token.key_material_for(s.read_write, public, CKA_ENCAPSULATE, mechanism.kind)?;
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            let needed = mechanism::encapsulated_len(mechanism, &material)?;
            let template = imposed(&token, s.read_write, public, CKA_ENCAPSULATE_TEMPLATE, template)?;
            let mut key = self.shared_secret_key(&template, actor)?;
            match buffer {
                OutputBuffer::Query => return Ok((Output::Length(needed), None)),
                OutputBuffer::Capacity(c) if c < needed => return Err(Error::BufferTooSmall { needed }),
                OutputBuffer::Capacity(_) => {}
            }
            let (ciphertext, secret) = mechanism::encapsulate(mechanism, &material)?;
            set_secret(&mut key, &secret)?;
            let handle = token.store_new_object(h, s.read_write, key)?;
            Ok((Output::Bytes(Zeroizing::new(ciphertext)), Some(handle)))
        };
        let result = encapsulate();
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        let made = result.as_ref().ok().and_then(|(_, key)| *key);
        token.record(h, "encapsulate", made, Some(mechanism.kind), super::audit::rv_of(&result))?;
        result
    }

    /// `C_DecapsulateKey`: the shared secret in `ciphertext`, under the private key, as a
    /// new key from `template`.
    pub fn decapsulate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        private: CK_OBJECT_HANDLE,
        template: &[Attribute],
        ciphertext: &[u8],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "decapsulate", Some(mechanism.kind), || {
            let (s, token) = self.session_and_token(h)?;
            mechanism::registry::require(mechanism.kind, CKF_DECAPSULATE)?;
            let material = token.key_material_for(s.read_write, private, CKA_DECAPSULATE, mechanism.kind)?;
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            let template = imposed(&token, s.read_write, private, CKA_DECAPSULATE_TEMPLATE, template)?;
            let mut key = self.shared_secret_key(&template, actor)?;
            let secret = mechanism::decapsulate(mechanism, &material, ciphertext)?;
            set_secret(&mut key, &secret)?;
            token.store_new_object(h, s.read_write, key)
        })
    }

    /// The object the shared secret goes into, from the caller's template (checked before
    /// any cryptography is done).
    fn shared_secret_key(&self, template: &[Attribute], actor: Actor) -> Result<Object> {
        hierarchy::refuse_outside_generation(template)?;
        let class = template.iter().find(|a| a.kind == CKA_CLASS);
        if class.is_some_and(|a| a.value.as_slice() != CKO_SECRET_KEY.to_ne_bytes()) {
            return Err(Error::TemplateInconsistent);
        }
        let mut template = template.to_vec();
        for (kind, default) in [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET)] {
            if !template.iter().any(|a| a.kind == kind) {
                template.push(Attribute::ulong(kind, default));
            }
        }
        let key =
            template::new_object_with(&template, None, Origin::Unwrap, actor, self.config.object_defaults())?;
        if key.profile() != Profile::SecretKey {
            return Err(Error::TemplateInconsistent);
        }
        Ok(key)
    }
}

/// `template` with the KEM key's attribute array `kind` imposed on it, if the key has one.
fn imposed(
    token: &crate::token::Token,
    read_write: bool,
    key: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
    template: &[Attribute],
) -> Result<Vec<Attribute>> {
    match &token.get_attributes(read_write, key, &[kind])?[..] {
        [AttributeRead::Value(encoded)] => template::impose(template, encoded),
        _ => Ok(template.to_vec()),
    }
}

/// Gives `key` the shared secret as its value, if the template's length and type allow it.
fn set_secret(key: &mut Object, secret: &[u8]) -> Result<()> {
    let len = match key.ulong(CKA_VALUE_LEN) {
        None => secret.len(),
        Some(asked) => {
            usize::try_from(asked).ok().filter(|l| *l <= secret.len()).ok_or(Error::TemplateInconsistent)?
        }
    };
    let fits = match key.key_type() {
        Some(CKK_AES) => matches!(len, 16 | 24 | 32),
        _ => len > 0,
    };
    if !fits {
        return Err(Error::TemplateInconsistent);
    }
    key.set(CKA_VALUE_LEN, encode_ulong(len as CK_ULONG));
    key.set(CKA_VALUE, secret[..len].to_vec());
    Ok(())
}
