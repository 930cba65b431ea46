//! Encryption, decryption, digest, signature and verification exports (PKCS#11 3.0
//! chapters 5.8 to 5.13, with 3.2's verification with the signature first): the steps'
//! arguments are read here, once (`step_in`); the module applies the rules of steps.

use cryptoki_sys::*;

use super::super::guard::pkcs11_fn;
use super::super::marshal::*;
use crate::module::{self, CipherKind, OperationKind, Step};
use crate::session::{Delivered, Dest, OutputBuffer};
use crate::{Error, Result};

/// Every `*Init` of an operation; `key` is `None` for `C_DigestInit`, which takes none.
///
/// # Safety
/// `m` is the export's mechanism pointer, under its PKCS#11 contract.
unsafe fn operation_init(
    h: CK_SESSION_HANDLE,
    kind: OperationKind,
    m: *mut CK_MECHANISM,
    key: Option<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let module = module::instance()?;
    // SAFETY: forwarded contract of the export.
    let mechanism = unsafe { mechanism_in(m)? };
    module.operation_init(h, kind, mechanism.as_ref(), key.unwrap_or(CK_INVALID_HANDLE))
}

/// The code for an input longer than an operation of `kind` can take, from each function's
/// list in the standard: the digest functions list no length code, so theirs is
/// `CKR_ARGUMENTS_BAD`, which any function may answer.
fn too_long(kind: OperationKind) -> Error {
    match kind {
        OperationKind::Decrypt => Error::EncryptedDataLenRange,
        OperationKind::VerifyRecover => Error::SignatureLenRange,
        OperationKind::Digest => Error::ArgumentsBad,
        OperationKind::Encrypt | OperationKind::Sign | OperationKind::Verify | OperationKind::SignRecover => {
            Error::DataLenRange
        }
    }
}

/// The step a call makes: `input` for `C_Encrypt`-like calls (`single`) and updates, none
/// for a final. An input longer than one call may bring (`caps::DATA`), or an update
/// longer than the operation can still take, is refused before the caller's buffer is
/// borrowed: its length is all that is known to be true of it.
///
/// # Safety
/// A non-NULL input pointer must point to its length of readable bytes that outlive `'a`.
unsafe fn step_in<'a>(
    room: impl FnOnce() -> Result<Option<usize>>,
    kind: OperationKind,
    input: Option<(*mut u8, CK_ULONG)>,
    single: bool,
) -> Result<Step<'a>> {
    Ok(match input {
        Some((p, n)) => {
            capped(n, caps::DATA, too_long(kind))?;
            if !single
                && let Some(room) = room()?
                && to_usize(n).map_or(true, |n| n > room)
            {
                return Err(too_long(kind));
            }
            // SAFETY: forwarded contract of the caller.
            let data = unsafe { bytes_in(p, n)? };
            if single { Step::Single(data) } else { Step::Update(data) }
        }
        None => Step::Final,
    })
}

/// One step of an operation: reads the caller's arguments, runs the step (the module ends
/// the operation when the arguments could not be read), and delivers its output (if the
/// function has any) through the output-buffer protocol.
///
/// # Safety
/// The pointers are the export's, under its PKCS#11 contract.
unsafe fn operation_step(
    h: CK_SESSION_HANDLE,
    kind: OperationKind,
    input: Option<(*mut u8, CK_ULONG)>,
    single: bool,
    output: Option<(*mut u8, *mut CK_ULONG)>,
) -> Result<()> {
    let module = module::instance()?;
    let cipher = match kind {
        OperationKind::Encrypt => Some(CipherKind::Encrypt),
        OperationKind::Decrypt => Some(CipherKind::Decrypt),
        _ => None,
    };
    // In client mode the output comes over the socket anyway: the copying path below.
    if let (Some(cipher), Some((out, out_len)), Some(local)) = (cipher, output, module.local()) {
        // `None` for overlapping buffers: the copying path below, which reads all input first.
        // SAFETY: forwarded contract of the export.
        if let Some(done) = unsafe { cipher_step(local, h, kind, cipher, input, single, out, out_len) } {
            return done;
        }
    }
    let arguments = || -> Result<(OutputBuffer, Step<'_>)> {
        let buffer = match output {
            // SAFETY: forwarded contract of the export.
            Some((out, out_len)) => unsafe { output_buffer(out, out_len)? },
            None => OutputBuffer::Capacity(0),
        };
        // SAFETY: forwarded contract of the export.
        let step = unsafe { step_in(|| module.update_room(h, kind), kind, input, single)? };
        Ok((buffer, step))
    };
    let result = module.step_with(h, kind, arguments(), |module, (buffer, step)| {
        module.operation_step(h, kind, step, buffer)
    });
    match output {
        // SAFETY: forwarded contract of the export; checked by output_buffer above.
        Some((out, out_len)) => unsafe { output_out(result, out, out_len) },
        None => result.map(|_| ()),
    }
}

/// One step of an encryption or decryption that writes straight into the caller's output
/// buffer: no intermediate allocation, copy or wipe. `None` when the input and the output
/// overlap (an in-place call), which the copying path serves.
///
/// # Safety
/// The pointers are the export's, under its PKCS#11 contract.
#[allow(clippy::too_many_arguments)]
unsafe fn cipher_step(
    module: &module::Module,
    h: CK_SESSION_HANDLE,
    kind: OperationKind,
    cipher: CipherKind,
    input: Option<(*mut u8, CK_ULONG)>,
    single: bool,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> Option<Result<()>> {
    let arguments = || -> Result<Option<(Dest<'_>, Step<'_>)>> {
        if out_len.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: non-NULL, readable by contract.
        let capacity = output_capacity(unsafe { *out_len });
        // SAFETY: forwarded contract of the export.
        let step = unsafe { step_in(|| module.update_room(h, kind), kind, input, single)? };
        if out.is_null() {
            return Ok(Some((Dest::Query, step)));
        }
        let input_range = match step {
            Step::Single(d) | Step::Update(d) => (d.as_ptr(), d.len()),
            Step::Final => (std::ptr::null(), 0),
        };
        if overlaps(input_range, (out, capacity)) {
            return Ok(None);
        }
        // SAFETY: the caller's output buffer holds `capacity` writable bytes, and it does not
        // overlap the input borrowed above.
        let buffer = unsafe { bytes_out(out, to_ulong(capacity))? };
        Ok(Some((Dest::Buffer(buffer), step)))
    };
    // `None`: the input and the output overlap.
    let arguments = arguments().transpose()?;
    let delivered = module
        .step_with(h, kind, arguments, |module, (dest, step)| module.cipher_into(h, cipher, step, dest));
    let written = match delivered {
        Ok(Delivered::Length(n) | Delivered::Written(n)) => n,
        Err(Error::BufferTooSmall { needed }) => {
            // SAFETY: checked non-NULL above; writable by contract.
            return Some(
                unsafe { write(out_len, to_ulong(needed)) }.and(Err(Error::BufferTooSmall { needed })),
            );
        }
        Err(e) => return Some(Err(e)),
    };
    // SAFETY: checked non-NULL above; writable by contract.
    Some(unsafe { write(out_len, to_ulong(written)) })
}

/// One `*Init` export: `C_<Kind>Init(hSession, pMechanism, hKey)`, `C_DigestInit` without
/// the key. A NULL mechanism ends the active operation, as the standard has it.
macro_rules! init_exports {
    ($($name:ident($kind:ident $(, $key:ident)?);)*) => {$(
        pkcs11_fn! {
            fn $name(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM $(, $key: CK_OBJECT_HANDLE)?) {
                // SAFETY: caller's mechanism pointer.
                unsafe { operation_init(hSession, OperationKind::$kind, pMechanism, optional!($($key)?)) }
            }
        }
    )*};
}

/// `Some(($pair))` when the export has the pair of arguments, `None` when it does not.
macro_rules! optional {
    () => {
        None
    };
    ($pair:expr) => {
        Some($pair)
    };
}

/// One step export that produces output (all but the verification's):
/// `C_<Kind>(hSession, in, inLen, out, outLen)` (`single`), `C_<Kind>Update(hSession, in,
/// inLen[, out, outLen])` (`update`) and `C_<Kind>Final(hSession, out, outLen)` (`last`),
/// each named with the standard's argument names; `operation_step` reads the arguments.
macro_rules! step_exports {
    (@single single) => { true };
    (@single update) => { false };
    (@single last) => { false };
    ($($name:ident($kind:ident, $step:ident $(; $in:ident, $in_len:ident)? $(=> $out:ident, $out_len:ident)?);)*) => {$(
        pkcs11_fn! {
            fn $name(
                hSession: CK_SESSION_HANDLE,
                $($in: *mut CK_BYTE, $in_len: CK_ULONG,)?
                $($out: *mut CK_BYTE, $out_len: *mut CK_ULONG,)?
            ) {
                let (input, output) = (optional!($(($in, $in_len))?), optional!($(($out, $out_len))?));
                // SAFETY: caller's buffers.
                unsafe { operation_step(hSession, OperationKind::$kind, input, step_exports!(@single $step), output) }
            }
        }
    )*};
}

init_exports! {
    C_EncryptInit(Encrypt, hKey);
    C_DecryptInit(Decrypt, hKey);
    C_DigestInit(Digest);
    C_SignInit(Sign, hKey);
    C_SignRecoverInit(SignRecover, hKey);
    C_VerifyRecoverInit(VerifyRecover, hKey);
    C_VerifyInit(Verify, hKey);
}

step_exports! {
    C_Encrypt(Encrypt, single; pData, ulDataLen => pEncryptedData, pulEncryptedDataLen);
    C_EncryptUpdate(Encrypt, update; pPart, ulPartLen => pEncryptedPart, pulEncryptedPartLen);
    C_EncryptFinal(Encrypt, last => pLastEncryptedPart, pulLastEncryptedPartLen);
    C_Decrypt(Decrypt, single; pEncryptedData, ulEncryptedDataLen => pData, pulDataLen);
    C_DecryptUpdate(Decrypt, update; pEncryptedPart, ulEncryptedPartLen => pPart, pulPartLen);
    C_DecryptFinal(Decrypt, last => pLastPart, pulLastPartLen);
    C_Digest(Digest, single; pData, ulDataLen => pDigest, pulDigestLen);
    C_DigestUpdate(Digest, update; pPart, ulPartLen);
    C_DigestFinal(Digest, last => pDigest, pulDigestLen);
    C_Sign(Sign, single; pData, ulDataLen => pSignature, pulSignatureLen);
    C_SignUpdate(Sign, update; pPart, ulPartLen);
    C_SignFinal(Sign, last => pSignature, pulSignatureLen);
    C_SignRecover(SignRecover, single; pData, ulDataLen => pSignature, pulSignatureLen);
    C_VerifyRecover(VerifyRecover, single; pSignature, ulSignatureLen => pData, pulDataLen);
}

pkcs11_fn! {
    fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) {
        module::instance()?.digest_key(hSession, hKey)
    }
}

/// A verification's signature, read once: of a `C_VerifyInit` step, or of
/// `C_VerifySignatureInit`. A length beyond any signature's is `CKR_SIGNATURE_LEN_RANGE`.
///
/// # Safety
/// A non-NULL pointer must point to its length of readable bytes that outlive `'a`.
unsafe fn signature_in<'a>(p: *mut u8, n: CK_ULONG) -> Result<&'a [u8]> {
    // SAFETY: forwarded contract of the caller.
    unsafe { bytes_in_capped(p, n, caps::DATA, Error::SignatureLenRange) }
}

/// One step of a verification (the module ends it when the arguments could not be read):
/// `signature` for the steps of a `C_VerifyInit` operation, `None` for those of a
/// `C_VerifySignatureInit` one, which took its signature there.
///
/// # Safety
/// The pointers are the export's, under its PKCS#11 contract.
unsafe fn verify_step(
    h: CK_SESSION_HANDLE,
    input: Option<(*mut u8, CK_ULONG)>,
    single: bool,
    signature: Option<(*mut u8, CK_ULONG)>,
) -> Result<()> {
    let module = module::instance()?;
    let arguments = || -> Result<(Step<'_>, Option<&[u8]>)> {
        // SAFETY: forwarded contract of the export.
        let signature = signature.map(|(p, n)| unsafe { signature_in(p, n) }).transpose()?;
        // SAFETY: forwarded contract of the export.
        let step = unsafe {
            step_in(|| module.update_room(h, OperationKind::Verify), OperationKind::Verify, input, single)?
        };
        Ok((step, signature))
    };
    module.step_with(h, OperationKind::Verify, arguments(), |module, (step, signature)| match signature {
        Some(signature) => module.verify(h, step, signature),
        None => module.verify_signature(h, step),
    })
}

pkcs11_fn! {
    fn C_Verify(
        hSession: CK_SESSION_HANDLE,
        pData: *mut CK_BYTE,
        ulDataLen: CK_ULONG,
        pSignature: *mut CK_BYTE,
        ulSignatureLen: CK_ULONG,
    ) {
        // SAFETY: caller's buffers.
        unsafe { verify_step(hSession, Some((pData, ulDataLen)), true, Some((pSignature, ulSignatureLen))) }
    }
}

pkcs11_fn! {
    fn C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, Some((pPart, ulPartLen)), false, Some((std::ptr::null_mut(), 0))) }
    }
}

pkcs11_fn! {
    fn C_VerifyFinal(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, None, false, Some((pSignature, ulSignatureLen))) }
    }
}

// PKCS#11 3.2's verification with the signature first, in the 3.2 function list only: the
// session's verification (one slot with `C_VerifyInit`'s), whose steps take no signature.

pkcs11_fn! {
    /// A NULL mechanism ends the verification in progress; the signature is not read then.
    fn C_VerifySignatureInit(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        hKey: CK_OBJECT_HANDLE,
        pSignature: *mut CK_BYTE,
        ulSignatureLen: CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        let signature = match mechanism {
            // SAFETY: caller's signature buffer.
            Some(_) => unsafe { signature_in(pSignature, ulSignatureLen)? },
            None => &[],
        };
        module.verify_signature_init(hSession, mechanism.as_ref(), hKey, signature)
    }
}

pkcs11_fn! {
    fn C_VerifySignature(hSession: CK_SESSION_HANDLE, pData: *mut CK_BYTE, ulDataLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, Some((pData, ulDataLen)), true, None) }
    }
}

pkcs11_fn! {
    fn C_VerifySignatureUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, Some((pPart, ulPartLen)), false, None) }
    }
}

pkcs11_fn! {
    fn C_VerifySignatureFinal(hSession: CK_SESSION_HANDLE) {
        // SAFETY: no pointers; the signature was given at the init.
        unsafe { verify_step(hSession, None, false, None) }
    }
}
