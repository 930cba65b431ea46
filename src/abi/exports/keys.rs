//! Key management exports (PKCS#11 3.0 chapter 5.14).

use cryptoki_sys::*;

use super::super::guard::pkcs11_fn;
use super::super::marshal::*;
use crate::Error;
use crate::module;

pkcs11_fn! {
    fn C_GenerateKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        let make = || {
            // SAFETY: caller's mechanism and template.
            let (mechanism, template) = unsafe { mechanism_and_template_in(pMechanism, pTemplate, ulCount)? };
            module.generate_key(hSession, &mechanism, &template)
        };
        // SAFETY: out-pointer from the caller.
        unsafe { new_handle_out(phKey, make) }
    }
}

pkcs11_fn! {
    fn C_GenerateKeyPair(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        pPublicKeyTemplate: *mut CK_ATTRIBUTE,
        ulPublicKeyAttributeCount: CK_ULONG,
        pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
        ulPrivateKeyAttributeCount: CK_ULONG,
        phPublicKey: *mut CK_OBJECT_HANDLE,
        phPrivateKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: caller's mechanism and templates.
        let (mechanism, public, private) = unsafe {
            (
                mechanism_in(pMechanism)?,
                template_in(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template_in(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        let mechanism = mechanism.ok_or(Error::ArgumentsBad)?;
        let (public, private) = module.generate_key_pair(hSession, &mechanism, &public, &private)?;
        // SAFETY: checked non-NULL; out-pointers from the caller.
        unsafe {
            write(phPublicKey, public)?;
            write(phPrivateKey, private)
        }
    }
}

pkcs11_fn! {
    fn C_DeriveKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hBaseKey: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulAttributeCount: CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        let make = || {
            // SAFETY: caller's mechanism and template.
            let (mechanism, template) = unsafe { mechanism_and_template_in(pMechanism, pTemplate, ulAttributeCount)? };
            module.derive_key(hSession, &mechanism, hBaseKey, &template)
        };
        // SAFETY: out-pointer from the caller.
        unsafe { new_handle_out(phKey, make) }
    }
}

pkcs11_fn! {
    fn C_WrapKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hWrappingKey: CK_OBJECT_HANDLE,
        hKey: CK_OBJECT_HANDLE,
        pWrappedKey: *mut CK_BYTE,
        pulWrappedKeyLen: *mut CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism and output buffer.
        unsafe {
            let mechanism = mechanism_in(pMechanism)?.ok_or(Error::ArgumentsBad)?;
            let buffer = output_buffer(pWrappedKey, pulWrappedKeyLen)?;
            let result = module.wrap_key(hSession, &mechanism, hWrappingKey, hKey, buffer);
            output_out(result, pWrappedKey, pulWrappedKeyLen)
        }
    }
}

pkcs11_fn! {
    fn C_UnwrapKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hUnwrappingKey: CK_OBJECT_HANDLE,
        pWrappedKey: *mut CK_BYTE,
        ulWrappedKeyLen: CK_ULONG,
        pTemplate: *mut CK_ATTRIBUTE,
        ulAttributeCount: CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        let make = || {
            // SAFETY: caller's mechanism, blob and template.
            let (mechanism, wrapped, template) = unsafe {
                (mechanism_in(pMechanism)?, bytes_in_capped(pWrappedKey, ulWrappedKeyLen, caps::WRAPPED_KEY, Error::WrappedKeyLenRange)?, template_in(pTemplate, ulAttributeCount)?)
            };
            let mechanism = mechanism.ok_or(Error::ArgumentsBad)?;
            module.unwrap_key(hSession, &mechanism, hUnwrappingKey, wrapped, &template)
        };
        // SAFETY: out-pointer from the caller.
        unsafe { new_handle_out(phKey, make) }
    }
}
