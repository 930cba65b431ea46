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
        let make = |m: &_, t: &_| module.generate_key(hSession, m, t);
        // SAFETY: caller's mechanism, template and out-pointer.
        unsafe { keyed_template_to_new_handle(phKey, pMechanism, pTemplate, ulCount, make) }
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
        let make = |m: &_, t: &_| module.derive_key(hSession, m, hBaseKey, t);
        // SAFETY: caller's mechanism, template and out-pointer.
        unsafe { keyed_template_to_new_handle(phKey, pMechanism, pTemplate, ulAttributeCount, make) }
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
        // SAFETY: the wrapped key has its stated length by contract.
        let wrapped = || unsafe { bytes_in_capped(pWrappedKey, ulWrappedKeyLen, caps::WRAPPED_KEY, Error::WrappedKeyLenRange) };
        let make = |m: &_, w, t: &_| module.unwrap_key(hSession, m, hUnwrappingKey, w, t);
        // SAFETY: caller's mechanism, template and out-pointer.
        unsafe { keyed_blob_to_new_handle(phKey, pMechanism, wrapped, pTemplate, ulAttributeCount, make) }
    }
}
