//! `C_DeriveKey` with CKM_HKDF_DATA (PKCS#11 3.0): HKDF as CKM_HKDF_DERIVE, its output a
//! `CKO_DATA` object's value instead of a key. Recorded as `derive` naming the new object.
//!
//! Data objects have no `CKA_VALUE_LEN`, so the template may carry one for this mechanism
//! alone: the length to derive (taken out of the template, never stored); without it, an
//! extraction alone gives the hash's length and an expansion is `CKR_TEMPLATE_INCOMPLETE`.
//!
//! The output of CKM_HKDF_DATA is the value CKM_HKDF_DERIVE would give a key with the same
//! parameters, and a data object's value is readable by whoever sees it. So that this does
//! not reveal the value of keys derived from a sensitive key, a base key (and a salt key)
//! must opt in: either list CKM_HKDF_DATA in its `CKA_ALLOWED_MECHANISMS`, or be itself
//! readable (not sensitive, extractable). Anything else is `CKR_KEY_FUNCTION_NOT_PERMITTED`.
//! The object is private unless the template says otherwise.

use cryptoki_sys::*;

use super::Module;
use crate::hierarchy;
use crate::mechanism::{self, Mechanism};
use crate::object::attribute::{decode_bool, decode_ulong};
use crate::object::template::{self, Actor, Origin};
use crate::object::{Attribute, AttributeRead, Profile};
use crate::token::Token;
use crate::{Error, Result};

impl Module {
    pub(super) fn derive_data(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "derive", Some(mechanism.kind), || {
            let (s, token) = self.session_and_token(h)?;
            let (material, salt_key, other) =
                super::keys::derivation_keys(&token, s.read_write, mechanism, base)?;
            for key in std::iter::once(base).chain(salt_key) {
                may_derive_data(&token, s.read_write, key)?;
            }
            hierarchy::refuse_outside_generation(template)?;
            let mut template = template.to_vec();
            let requested_len = match template.iter().position(|a| a.kind == CKA_VALUE_LEN) {
                Some(i) => {
                    let len = decode_ulong(&template.remove(i).value).ok_or(Error::AttributeValueInvalid)?;
                    Some(usize::try_from(len).map_err(|_| Error::TemplateInconsistent)?)
                }
                None => None,
            };
            if template.iter().any(|a| a.kind == CKA_VALUE) {
                return Err(Error::TemplateInconsistent);
            }
            for (kind, default) in [
                (CKA_CLASS, Attribute::ulong(CKA_CLASS, CKO_DATA)),
                (CKA_PRIVATE, Attribute::bool(CKA_PRIVATE, true)),
            ] {
                if !template.iter().any(|a| a.kind == kind) {
                    template.push(default);
                }
            }
            let actor = Actor { is_so: token.login_state() == crate::policy::LoginState::SecurityOfficer };
            let origin = Origin::Derive { base_always_sensitive: false, base_never_extractable: false };
            let mut object =
                template::new_object_with(&template, None, origin, actor, self.config.object_defaults())?;
            if object.profile() != Profile::Data {
                return Err(Error::TemplateInconsistent);
            }
            let len = match requested_len {
                Some(len) => len,
                None => mechanism::natural_derive_len(mechanism, &material, other.as_ref())?
                    .ok_or(Error::TemplateIncomplete)?,
            };
            let value = mechanism::derive_with(mechanism, &material, other.as_ref(), len)?;
            object.set(CKA_VALUE, value.to_vec());
            token.store_new_object(h, s.read_write, object)
        })
    }
}

/// Whether `key` may give its HKDF output as data (see the module comment).
fn may_derive_data(token: &Token, read_write: bool, key: CK_OBJECT_HANDLE) -> Result<()> {
    let read =
        token.get_attributes(read_write, key, &[CKA_ALLOWED_MECHANISMS, CKA_SENSITIVE, CKA_EXTRACTABLE])?;
    let opted_in = match &read[0] {
        AttributeRead::Value(list) => list
            .chunks_exact(std::mem::size_of::<CK_ULONG>())
            .filter_map(decode_ulong)
            .any(|m| m == CKM_HKDF_DATA),
        _ => false,
    };
    let flag = |r: &AttributeRead| matches!(r, AttributeRead::Value(v) if decode_bool(v) == Some(true));
    let readable = !flag(&read[1]) && flag(&read[2]);
    if opted_in || readable { Ok(()) } else { Err(Error::KeyFunctionNotPermitted) }
}
