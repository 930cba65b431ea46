//! Message-based encryption and decryption exports (PKCS#11 3.0).

use std::ffi::c_void;

use cryptoki_sys::*;

use super::super::guard::pkcs11_fn;
use super::super::marshal::*;
use crate::module::{self, CipherKind};
use crate::{Error, Result};

/// `C_MessageEncryptInit`/`C_MessageDecryptInit`: the mechanism is required.
///
/// # Safety
/// `m` is the export's mechanism pointer, under its PKCS#11 contract.
unsafe fn message_init(
    h: CK_SESSION_HANDLE,
    kind: CipherKind,
    m: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let module = module::instance()?;
    // SAFETY: forwarded contract of the export.
    let mechanism = unsafe { message_mechanism_in(m)? }.ok_or(Error::ArgumentsBad)?;
    module.message_init(h, kind, &mechanism, key)
}

pkcs11_fn! {
    fn C_MessageEncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        // SAFETY: caller's mechanism pointer.
        unsafe { message_init(hSession, CipherKind::Encrypt, pMechanism, hKey) }
    }
}

pkcs11_fn! {
    /// Seals one message. With an IV generator the module writes the IV it used back into
    /// the caller's `CK_GCM_MESSAGE_PARAMS`; the tag goes to its `pTag`.
    fn C_EncryptMessage(
        hSession: CK_SESSION_HANDLE,
        pParameter: *mut c_void,
        ulParameterLen: CK_ULONG,
        pAssociatedData: *mut CK_BYTE,
        ulAssociatedDataLen: CK_ULONG,
        pPlaintext: *mut CK_BYTE,
        ulPlaintextLen: CK_ULONG,
        pCiphertext: *mut CK_BYTE,
        pulCiphertextLen: *mut CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: the caller's parameter, data and output buffers, under the PKCS#11 contract.
        unsafe {
            let (mut params, raw) = gcm_message_params_in(pParameter, ulParameterLen)?;
            if raw.pTag.is_null() || (raw.pIv.is_null() && raw.ulIvLen > 0) {
                return Err(Error::MechanismParamInvalid);
            }
            let aad = bytes_in_capped(pAssociatedData, ulAssociatedDataLen, caps::DATA, Error::DataLenRange)?;
            let plaintext = bytes_in_capped(pPlaintext, ulPlaintextLen, caps::DATA, Error::DataLenRange)?;
            let buffer = output_buffer(pCiphertext, pulCiphertextLen)?;
            let (output, tag) = match module.encrypt_message(hSession, &mut params, aad, plaintext, buffer) {
                Ok(done) => done,
                Err(e) => return output_out(Err(e), pCiphertext, pulCiphertextLen),
            };
            if matches!(output, crate::session::Output::Bytes(_)) {
                std::ptr::copy_nonoverlapping(params.iv.as_ptr(), raw.pIv, params.iv.len());
                std::ptr::copy_nonoverlapping(tag.as_ptr(), raw.pTag, tag.len());
            }
            output_out(Ok(output), pCiphertext, pulCiphertextLen)
        }
    }
}

pkcs11_fn! {
    fn C_MessageEncryptFinal(hSession: CK_SESSION_HANDLE) {
        module::instance()?.message_final(hSession, CipherKind::Encrypt)
    }
}

pkcs11_fn! {
    fn C_MessageDecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        // SAFETY: caller's mechanism pointer.
        unsafe { message_init(hSession, CipherKind::Decrypt, pMechanism, hKey) }
    }
}

pkcs11_fn! {
    /// Opens one message with the IV and tag in the caller's `CK_GCM_MESSAGE_PARAMS`.
    fn C_DecryptMessage(
        hSession: CK_SESSION_HANDLE,
        pParameter: *mut c_void,
        ulParameterLen: CK_ULONG,
        pAssociatedData: *mut CK_BYTE,
        ulAssociatedDataLen: CK_ULONG,
        pCiphertext: *mut CK_BYTE,
        ulCiphertextLen: CK_ULONG,
        pPlaintext: *mut CK_BYTE,
        pulPlaintextLen: *mut CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: the caller's parameter, data and output buffers, under the PKCS#11 contract.
        unsafe {
            let (params, raw) = gcm_message_params_in(pParameter, ulParameterLen)?;
            // The tag's length is checked before its bytes are borrowed.
            let tag_len = crate::mechanism::aes_gcm::tag_len(params.tag_bits)?;
            let tag = bytes_in(raw.pTag, tag_len as CK_ULONG).map_err(|_| Error::MechanismParamInvalid)?;
            let too_long = Error::EncryptedDataLenRange;
            let aad = bytes_in_capped(pAssociatedData, ulAssociatedDataLen, caps::DATA, too_long.clone())?;
            let ciphertext = bytes_in_capped(pCiphertext, ulCiphertextLen, caps::DATA, too_long)?;
            let buffer = output_buffer(pPlaintext, pulPlaintextLen)?;
            let result = module.decrypt_message(hSession, &params, tag, aad, ciphertext, buffer);
            output_out(result, pPlaintext, pulPlaintextLen)
        }
    }
}

pkcs11_fn! {
    fn C_MessageDecryptFinal(hSession: CK_SESSION_HANDLE) {
        module::instance()?.message_final(hSession, CipherKind::Decrypt)
    }
}
