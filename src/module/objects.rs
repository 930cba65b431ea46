//! Object management (PKCS#11 3.0 chapter 5.7): objects made, copied, destroyed, read,
//! changed and searched, each on the session's token and recorded.

use cryptoki_sys::*;

use super::Module;
use super::audit::rv_of;
use crate::object::{Attribute, AttributeRead};
use crate::session::FindCursor;
use crate::token::audit::Context;
use crate::{Error, Result};

impl Module {
    /// `C_CreateObject`, recorded as `create` naming the new object.
    pub fn create_object(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "create", None, || {
            let (s, token) = self.session_and_token(h)?;
            token.create_object(h, s.read_write, template)
        })
    }

    /// `C_CopyObject`, recorded as `copy` naming the new object.
    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.audited_new(h, "copy", None, || {
            let (s, token) = self.session_and_token(h)?;
            token.copy_object(h, s.read_write, object, template)
        })
    }

    /// `C_DestroyObject`, recorded as `destroy` (`retire` for a key of the hierarchy),
    /// naming the object as it was, after the approvals it used up.
    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
        // The record names the object as it was, so it is described before it goes.
        let token = self.token_of(h)?;
        let context = token.audit_context(Some(object));
        let result = self.session_and_token(h).and_then(|(s, token)| {
            let consumed = token.destroy_object(s.read_write, object)?;
            token.record_consumed(h, &consumed)
        });
        let operation = destroy_name(&context);
        token.record_with(h, operation, context, None, rv_of(&result))?;
        result
    }

    pub fn object_size(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<usize> {
        let (s, token) = self.session_and_token(h)?;
        token.object_size(s.read_write, object)
    }

    /// `C_GetAttributeValue`, recorded as `read` when the object is a key (unique id, label,
    /// version), refused reads included: a key the login may not see (the handle is invalid
    /// for it), and a value it may not read (`CKR_ATTRIBUTE_SENSITIVE`, or
    /// `CKR_ATTRIBUTE_TYPE_INVALID` for an attribute the key lacks; sensitive first, as the
    /// export answers). A buffer too small is the caller sizing its buffer, not a refusal:
    /// the core does not see it, and it is recorded with the read's own result. Reads of
    /// other objects (certificates, data) are not key operations and are not recorded. Hot
    /// for some applications, so it costs one record and nothing else (no store access
    /// beyond the call's own).
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        let result = self
            .session_and_token(h)
            .and_then(|(s, token)| token.get_attributes(s.read_write, object, kinds));
        let Ok(token) = self.token_of(h) else {
            return result;
        };
        if !token.config.audit {
            return result;
        }
        let context = token.audit_context(Some(object));
        if !context.key.as_ref().is_some_and(|k| k.is_key) {
            return result;
        }
        let rv = match &result {
            Ok(reads) => reads_rv(reads),
            Err(e) => e.ck_rv(),
        };
        token.record_with(h, "read", context, None, rv)?;
        result
    }

    /// `C_SetAttributeValue`, recorded as `set_attributes` naming the object, after the
    /// approvals it used up.
    pub fn set_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<()> {
        let set_attributes = || {
            let (s, token) = self.session_and_token(h)?;
            let consumed = token.set_attributes(s.read_write, object, template)?;
            token.record_consumed(h, &consumed)
        };
        self.audited(h, "set_attributes", Some(object), None, set_attributes, || {})
    }

    /// `C_FindObjectsInit`, recorded as `find` without a key. One record per search, not
    /// per object found: the search is the caller's act (its template decides what it may
    /// learn), the handles it returns are only what the policy already lets it see, and an
    /// application listing a token of thousands of keys would otherwise write thousands of
    /// records for one question. Reading a found key's attributes is recorded apart
    /// (`read`), naming it.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
        let find_init = || {
            let (s, token) = self.session_and_token(h)?;
            let mut ops = s.operations.lock();
            if ops.find.is_some() {
                return Err(Error::OperationActive);
            }
            ops.find = Some(FindCursor::new(token.find(s.read_write, template)?));
            Ok(())
        };
        self.audited(h, "find", None, None, find_init, || drop(self.find_final(h)))
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
}

/// The `CK_RV` of a `C_GetAttributeValue` whose attributes read as `reads`, before the
/// caller's buffers are seen.
fn reads_rv(reads: &[AttributeRead]) -> CK_RV {
    if reads.iter().any(|r| matches!(r, AttributeRead::Sensitive)) {
        CKR_ATTRIBUTE_SENSITIVE
    } else if reads.iter().any(|r| matches!(r, AttributeRead::Invalid)) {
        CKR_ATTRIBUTE_TYPE_INVALID
    } else {
        CKR_OK
    }
}

/// Retirement: the destruction of a key of the envelope hierarchy.
fn destroy_name(context: &Context) -> &'static str {
    // Destroying a version of a family of the hierarchy is its retirement (allowed only
    // once it is superseded and nothing depends on it, `hierarchy::check_destroy`), the
    // step of the key's life an auditor looks for. As `generate_key` tells `rotate` from
    // `generate` by the key's version, the key's tier tells `retire` from `destroy`.
    if context.key.as_ref().is_some_and(|k| k.in_hierarchy) { "retire" } else { "destroy" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_recorded_with_its_most_significant_refusal() {
        let value = || AttributeRead::Value(zeroize::Zeroizing::new(vec![1]));
        assert_eq!(reads_rv(&[]), CKR_OK);
        assert_eq!(reads_rv(&[value(), value()]), CKR_OK);
        assert_eq!(reads_rv(&[value(), AttributeRead::Invalid]), CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(
            reads_rv(&[AttributeRead::Invalid, AttributeRead::Sensitive, value()]),
            CKR_ATTRIBUTE_SENSITIVE
        );
    }
}
