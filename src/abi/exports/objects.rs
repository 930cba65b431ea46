//! Object management exports (PKCS#11 3.0 chapter 5.7).

use cryptoki_sys::*;

use super::super::guard::pkcs11_fn;
use super::super::marshal::*;
use crate::Error;
use crate::module;
use crate::object::AttributeRead;

pkcs11_fn! {
    fn C_CreateObject(
        hSession: CK_SESSION_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
        phObject: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        // SAFETY: the template has `ulCount` entries by contract; out-pointer from the caller.
        unsafe { template_to_new_handle(phObject, pTemplate, ulCount, |t| module.create_object(hSession, t)) }
    }
}

pkcs11_fn! {
    fn C_CopyObject(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
        phNewObject: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        // SAFETY: the template has `ulCount` entries by contract; out-pointer from the caller.
        unsafe { template_to_new_handle(phNewObject, pTemplate, ulCount, |t| module.copy_object(hSession, hObject, t)) }
    }
}

pkcs11_fn! {
    fn C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE) {
        module::instance()?.destroy_object(hSession, hObject)
    }
}

pkcs11_fn! {
    fn C_GetObjectSize(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pulSize: *mut CK_ULONG) {
        let module = module::instance()?;
        if pulSize.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let size = module.object_size(hSession, hObject)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(pulSize, to_ulong(size)) }
    }
}

pkcs11_fn! {
    /// Processes every attribute of the template, as the specification requires, and
    /// returns the most significant of the per-attribute problems.
    fn C_GetAttributeValue(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
    ) {
        let module = module::instance()?;
        let count = to_usize(capped(ulCount, caps::TEMPLATE_COUNT, Error::ArgumentsBad)?)?;
        if pTemplate.is_null() && count > 0 {
            return Err(Error::ArgumentsBad);
        }
        let template: &mut [CK_ATTRIBUTE] = if count == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL; the template has `ulCount` writable entries by contract.
            unsafe { std::slice::from_raw_parts_mut(pTemplate, count) }
        };
        let kinds: Vec<CK_ATTRIBUTE_TYPE> = template.iter().map(|a| a.type_).collect();
        let reads = module.get_attributes(hSession, hObject, &kinds)?;
        let (mut sensitive, mut invalid, mut too_small) = (false, false, false);
        for (entry, read) in template.iter_mut().zip(reads) {
            match read {
                AttributeRead::Invalid => {
                    entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    invalid = true;
                }
                AttributeRead::Sensitive => {
                    entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    sensitive = true;
                }
                AttributeRead::Value(value) => {
                    // SAFETY: the entry's buffer is the caller's, under the PKCS#11 contract.
                    if !unsafe { attribute_value_out(entry, &value)? } {
                        too_small = true;
                    }
                }
            }
        }
        match (sensitive, invalid, too_small) {
            (true, _, _) => Err(Error::AttributeSensitive),
            (_, true, _) => Err(Error::AttributeTypeInvalid),
            (_, _, true) => Err(Error::BufferTooSmall { needed: 0 }),
            _ => Ok(()),
        }
    }
}

pkcs11_fn! {
    fn C_SetAttributeValue(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: the template has `ulCount` entries by contract.
        let template = unsafe { template_in(pTemplate, ulCount)? };
        module.set_attributes(hSession, hObject, &template)
    }
}

pkcs11_fn! {
    fn C_FindObjectsInit(hSession: CK_SESSION_HANDLE, pTemplate: *mut CK_ATTRIBUTE, ulCount: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: the template has `ulCount` entries by contract.
        let template = unsafe { template_in(pTemplate, ulCount)? };
        module.find_init(hSession, &template)
    }
}

pkcs11_fn! {
    fn C_FindObjects(
        hSession: CK_SESSION_HANDLE,
        phObject: *mut CK_OBJECT_HANDLE,
        ulMaxObjectCount: CK_ULONG,
        pulObjectCount: *mut CK_ULONG,
    ) {
        let module = module::instance()?;
        let max = to_usize(ulMaxObjectCount)?;
        if pulObjectCount.is_null() || (phObject.is_null() && max > 0) {
            return Err(Error::ArgumentsBad);
        }
        let found = module.find_next(hSession, max)?;
        if !found.is_empty() {
            // SAFETY: the caller's array holds `ulMaxObjectCount >= found.len()` handles.
            unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), phObject, found.len()) };
        }
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(pulObjectCount, to_ulong(found.len())) }
    }
}

pkcs11_fn! {
    fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) {
        module::instance()?.find_final(hSession)
    }
}
