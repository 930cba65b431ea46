//! The functions PKCS#11 3.2 adds: key encapsulation (`C_EncapsulateKey`,
//! `C_DecapsulateKey`, with ML-KEM), and the others, which this module does not offer yet
//! and which answer `CKR_FUNCTION_NOT_SUPPORTED` (session validation flags, asynchronous
//! calls, authenticated wrapping). Verification with the signature first
//! (`C_VerifySignatureInit` ...) is in `operations.rs`, beside `C_Verify`, whose chapter it is.

use cryptoki_sys::*;

use super::super::guard::{not_supported, pkcs11_fn};
use super::super::marshal::*;
use crate::Error;
use crate::module;
use crate::session::Output;

pkcs11_fn! {
    /// The ciphertext through the output-buffer protocol (a NULL `pCiphertext` asks for its
    /// length and makes no key); the new key's handle once the ciphertext is delivered.
    fn C_EncapsulateKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hPublicKey: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulAttributeCount: CK_ULONG,
        pCiphertext: *mut CK_BYTE,
        pulCiphertextLen: *mut CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: caller's mechanism, template and output buffer.
        unsafe {
            let mechanism = mechanism_in(pMechanism)?.ok_or(Error::ArgumentsBad)?;
            let template = template_in(pTemplate, ulAttributeCount)?;
            let buffer = output_buffer(pCiphertext, pulCiphertextLen)?;
            let result = module.encapsulate_key(hSession, &mechanism, hPublicKey, &template, buffer);
            let (output, key) = match result {
                Ok((output, key)) => (Ok(output), key),
                Err(e) => (Err(e), None),
            };
            let delivered = matches!(output, Ok(Output::Bytes(_)));
            output_out(output, pCiphertext, pulCiphertextLen)?;
            match key {
                Some(key) if delivered => write(phKey, key),
                _ => Ok(()),
            }
        }
    }
}

pkcs11_fn! {
    fn C_DecapsulateKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hPrivateKey: CK_OBJECT_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulAttributeCount: CK_ULONG,
        pCiphertext: *mut CK_BYTE,
        ulCiphertextLen: CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        // SAFETY: the ciphertext has its stated length by contract.
        let ciphertext = || unsafe { bytes_in(pCiphertext, ulCiphertextLen) };
        let make = |m: &_, c, t: &_| module.decapsulate_key(hSession, m, hPrivateKey, t, c);
        // SAFETY: caller's mechanism, template and out-pointer.
        unsafe { keyed_blob_to_new_handle(phKey, pMechanism, ciphertext, pTemplate, ulAttributeCount, make) }
    }
}

not_supported! {
    C_GetSessionValidationFlags(CK_SESSION_HANDLE, CK_SESSION_VALIDATION_FLAGS_TYPE, *mut CK_FLAGS);
    C_AsyncComplete(CK_SESSION_HANDLE, *mut CK_UTF8CHAR, *mut CK_ASYNC_DATA);
    C_AsyncGetID(CK_SESSION_HANDLE, *mut CK_UTF8CHAR, *mut CK_ULONG);
    C_AsyncJoin(CK_SESSION_HANDLE, *mut CK_UTF8CHAR, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_WrapKeyAuthenticated(
        CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE,
        *mut CK_ULONG,
    );
    C_UnwrapKeyAuthenticated(
        CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG,
        *mut CK_BYTE, CK_ULONG, *mut CK_OBJECT_HANDLE,
    );
}
