//! The exported `C_*` functions. Each validates and copies its arguments in (through
//! `marshal`), calls the module, and copies the results out; nothing else.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::guard::{not_supported, pkcs11_fn};
use super::marshal::*;
use crate::module::{self, CipherKind, OperationKind, Step};
use crate::object::AttributeRead;
use crate::session::{Delivered, Dest, OutputBuffer};
use crate::{Error, Result};

const MANUFACTURER: &[u8] = b"ecm-hsm project";
const MODEL: &[u8] = b"ecm-hsm";

fn library_version() -> CK_VERSION {
    let (major, minor) = crate::version::library_version();
    CK_VERSION { major, minor }
}

pkcs11_fn! {
    /// Starts the module. Thread safety comes from the module's own locks whichever locking
    /// the arguments ask for, so OS locking, the application's mutex callbacks, or none are
    /// all accepted; inconsistent arguments are refused.
    fn C_Initialize(pInitArgs: *mut c_void) {
        let mut may_create_threads = true;
        if !pInitArgs.is_null() {
            // SAFETY: a non-NULL argument points to a CK_C_INITIALIZE_ARGS by contract.
            let args = unsafe { (pInitArgs as *const CK_C_INITIALIZE_ARGS).read_unaligned() };
            let callbacks = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if !args.pReserved.is_null() || (callbacks.contains(&true) && callbacks.contains(&false)) {
                return Err(Error::ArgumentsBad);
            }
            may_create_threads = args.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS == 0;
        }
        super::fork::watch()?;
        module::initialize_with(may_create_threads)
    }
}

pkcs11_fn! {
    fn C_Finalize(pReserved: *mut c_void) {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module::finalize()
    }
}

pkcs11_fn! {
    fn C_GetInfo(pInfo: *mut CK_INFO) {
        module::instance()?;
        let info = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded(crate::version::library_description().as_bytes()),
            libraryVersion: library_version(),
        };
        // SAFETY: out-pointer from the caller.
        unsafe { write(pInfo, info) }
    }
}

pkcs11_fn! {
    /// Every slot has a token present (the free slot's is uninitialized), so the list is the
    /// same whichever way `tokenPresent` asks.
    fn C_GetSlotList(_tokenPresent: CK_BBOOL, pSlotList: *mut CK_SLOT_ID, pulCount: *mut CK_ULONG) {
        let slots = module::instance()?.slot_list()?;
        // SAFETY: caller's list and count pointers.
        unsafe { list_out(&slots, pSlotList, pulCount) }
    }
}

pkcs11_fn! {
    fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) {
        module::instance()?.check_slot(slotID)?;
        let info = CK_SLOT_INFO {
            slotDescription: padded(format!("ecm-hsm slot {slotID}").as_bytes()),
            manufacturerID: padded(MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: library_version(),
            firmwareVersion: library_version(),
        };
        // SAFETY: out-pointer from the caller.
        unsafe { write(pInfo, info) }
    }
}

pkcs11_fn! {
    fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) {
        if pInfo.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let status = module::instance()?.token_status(slotID)?;
        let info = CK_TOKEN_INFO {
            label: status.info.label,
            manufacturerID: padded(MANUFACTURER),
            model: padded(MODEL),
            serialNumber: padded(status.info.serial.as_bytes()),
            flags: status.info.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: to_ulong(status.session_count),
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: to_ulong(status.rw_session_count),
            ulMaxPinLen: to_ulong(module::token::MAX_PIN_LEN),
            ulMinPinLen: to_ulong(module::token::MIN_PIN_LEN),
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: library_version(),
            firmwareVersion: library_version(),
            utcTime: [b' '; 16],
        };
        // SAFETY: out-pointer from the caller.
        unsafe { write(pInfo, info) }
    }
}

pkcs11_fn! {
    fn C_GetMechanismList(slotID: CK_SLOT_ID, pMechanismList: *mut CK_MECHANISM_TYPE, pulCount: *mut CK_ULONG) {
        module::instance()?.check_slot(slotID)?;
        let list = crate::mechanism::mechanism_list();
        // SAFETY: caller's list and count pointers.
        unsafe { list_out(&list, pMechanismList, pulCount) }
    }
}

pkcs11_fn! {
    fn C_GetMechanismInfo(slotID: CK_SLOT_ID, type_: CK_MECHANISM_TYPE, pInfo: *mut CK_MECHANISM_INFO) {
        module::instance()?.check_slot(slotID)?;
        let i = crate::mechanism::mechanism_info(type_)?;
        let info = CK_MECHANISM_INFO { ulMinKeySize: i.min_key_size, ulMaxKeySize: i.max_key_size, flags: i.flags };
        // SAFETY: out-pointer from the caller.
        unsafe { write(pInfo, info) }
    }
}

pkcs11_fn! {
    fn C_InitToken(slotID: CK_SLOT_ID, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG, pLabel: *mut CK_UTF8CHAR) {
        let module = module::instance()?;
        if pPin.is_null() || pLabel.is_null() {
            // No protected authentication path: a PIN is required.
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: the PIN has `ulPinLen` bytes and the label 32, by contract.
        let (pin, label) = unsafe { (bytes_in(pPin, ulPinLen)?, bytes_in(pLabel, 32)?) };
        module.init_token(slotID, pin, padded(label))
    }
}

pkcs11_fn! {
    fn C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: the PIN has `ulPinLen` bytes by contract.
        let pin = unsafe { bytes_in(pPin, ulPinLen)? };
        module.init_pin(hSession, pin)
    }
}

pkcs11_fn! {
    fn C_SetPIN(
        hSession: CK_SESSION_HANDLE,
        pOldPin: *mut CK_UTF8CHAR,
        ulOldLen: CK_ULONG,
        pNewPin: *mut CK_UTF8CHAR,
        ulNewLen: CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: each PIN has its stated length by contract.
        let (old, new) = unsafe { (bytes_in(pOldPin, ulOldLen)?, bytes_in(pNewPin, ulNewLen)?) };
        module.set_pin(hSession, old, new)
    }
}

pkcs11_fn! {
    fn C_OpenSession(
        slotID: CK_SLOT_ID,
        flags: CK_FLAGS,
        _pApplication: *mut c_void,
        _Notify: CK_NOTIFY,
        phSession: *mut CK_SESSION_HANDLE,
    ) {
        let module = module::instance()?;
        if phSession.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = module.open_session(slotID, flags)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phSession, handle) }
    }
}

pkcs11_fn! {
    fn C_CloseSession(hSession: CK_SESSION_HANDLE) {
        module::instance()?.close_session(hSession)
    }
}

pkcs11_fn! {
    fn C_CloseAllSessions(slotID: CK_SLOT_ID) {
        module::instance()?.close_all_sessions(slotID)
    }
}

pkcs11_fn! {
    fn C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: *mut CK_SESSION_INFO) {
        let (slot, view) = module::instance()?.session_view(hSession)?;
        let flags = CKF_SERIAL_SESSION | if view.read_write { CKF_RW_SESSION } else { 0 };
        let info = CK_SESSION_INFO { slotID: slot, state: view.state(), flags, ulDeviceError: 0 };
        // SAFETY: out-pointer from the caller.
        unsafe { write(pInfo, info) }
    }
}

pkcs11_fn! {
    fn C_Login(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: the PIN has `ulPinLen` bytes by contract.
        let pin = unsafe { bytes_in(pPin, ulPinLen)? };
        module.login(hSession, userType, pin)
    }
}

pkcs11_fn! {
    fn C_LoginUser(
        hSession: CK_SESSION_HANDLE,
        userType: CK_USER_TYPE,
        pPin: *mut CK_UTF8CHAR,
        ulPinLen: CK_ULONG,
        pUsername: *mut CK_UTF8CHAR,
        ulUsernameLen: CK_ULONG,
    ) {
        let module = module::instance()?;
        // SAFETY: PIN and name have their stated lengths by contract.
        let (pin, name) = unsafe { (bytes_in(pPin, ulPinLen)?, bytes_in(pUsername, ulUsernameLen)?) };
        module.login_user(hSession, userType, pin, name)
    }
}

pkcs11_fn! {
    fn C_Logout(hSession: CK_SESSION_HANDLE) {
        module::instance()?.logout(hSession)
    }
}

pkcs11_fn! {
    fn C_CreateObject(
        hSession: CK_SESSION_HANDLE,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
        phObject: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        if phObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: the template has `ulCount` entries by contract.
        let template = unsafe { template_in(pTemplate, ulCount)? };
        let handle = module.create_object(hSession, &template)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phObject, handle) }
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
        if phNewObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: the template has `ulCount` entries by contract.
        let template = unsafe { template_in(pTemplate, ulCount)? };
        let handle = module.copy_object(hSession, hObject, &template)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phNewObject, handle) }
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
        let count = to_usize(ulCount)?;
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

/// `C_EncryptInit`/`C_DecryptInit`.
///
/// # Safety
/// `m` is the export's mechanism pointer, under its PKCS#11 contract.
unsafe fn cipher_init(
    h: CK_SESSION_HANDLE,
    kind: CipherKind,
    m: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let module = module::instance()?;
    // SAFETY: forwarded contract of the export.
    let mechanism = unsafe { mechanism_in(m)? };
    module.cipher_init(h, kind, mechanism.as_ref(), key)
}

/// One step of an operation: checks the caller's arguments, runs the step, and delivers its
/// output (if the function has any) through the output-buffer protocol. Bad arguments end
/// the operation like any other failed step, as the specification requires.
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
    if let (Some(cipher), Some((out, out_len))) = (cipher, output) {
        // SAFETY: forwarded contract of the export.
        // `None` for overlapping buffers: the copying path below, which reads all input first.
        // SAFETY: forwarded contract of the export.
        if let Some(done) = unsafe { cipher_step(&module, h, kind, cipher, input, single, out, out_len) } {
            return done;
        }
    }
    let arguments = || -> Result<(OutputBuffer, Step<'_>)> {
        let buffer = match output {
            // SAFETY: forwarded contract of the export.
            Some((out, out_len)) => unsafe { output_buffer(out, out_len)? },
            None => OutputBuffer::Capacity(0),
        };
        let step = match input {
            Some((p, n)) => {
                // SAFETY: forwarded contract of the export.
                let data = unsafe { bytes_in(p, n)? };
                if single { Step::Single(data) } else { Step::Update(data) }
            }
            None => Step::Final,
        };
        Ok((buffer, step))
    };
    let (buffer, step) = match arguments() {
        Ok(a) => a,
        Err(e) => {
            module.end_operation(h, kind);
            return Err(e);
        }
    };
    let result = module.operation_step(h, kind, step, buffer);
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
        let capacity = to_usize(unsafe { *out_len })?;
        let step = match input {
            Some((p, n)) => {
                // SAFETY: forwarded contract of the export.
                let data = unsafe { bytes_in(p, n)? };
                if single { Step::Single(data) } else { Step::Update(data) }
            }
            None => Step::Final,
        };
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
    let (dest, step) = match arguments() {
        Ok(Some(a)) => a,
        Ok(None) => return None,
        Err(e) => {
            module.end_operation(h, kind);
            return Some(Err(e));
        }
    };
    let written = match module.cipher_into(h, cipher, step, dest) {
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

pkcs11_fn! {
    fn C_EncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        // SAFETY: caller's mechanism pointer.
        unsafe { cipher_init(hSession, CipherKind::Encrypt, pMechanism, hKey) }
    }
}

pkcs11_fn! {
    fn C_Encrypt(
        hSession: CK_SESSION_HANDLE,
        pData: *mut CK_BYTE,
        ulDataLen: CK_ULONG,
        pEncryptedData: *mut CK_BYTE,
        pulEncryptedDataLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pData, ulDataLen)), Some((pEncryptedData, pulEncryptedDataLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Encrypt, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_EncryptUpdate(
        hSession: CK_SESSION_HANDLE,
        pPart: *mut CK_BYTE,
        ulPartLen: CK_ULONG,
        pEncryptedPart: *mut CK_BYTE,
        pulEncryptedPartLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pPart, ulPartLen)), Some((pEncryptedPart, pulEncryptedPartLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Encrypt, input, false, output) }
    }
}

pkcs11_fn! {
    fn C_EncryptFinal(hSession: CK_SESSION_HANDLE, pLastEncryptedPart: *mut CK_BYTE, pulLastEncryptedPartLen: *mut CK_ULONG) {
        let output = Some((pLastEncryptedPart, pulLastEncryptedPartLen));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Encrypt, None, false, output) }
    }
}

pkcs11_fn! {
    fn C_DecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        // SAFETY: caller's mechanism pointer.
        unsafe { cipher_init(hSession, CipherKind::Decrypt, pMechanism, hKey) }
    }
}

pkcs11_fn! {
    fn C_Decrypt(
        hSession: CK_SESSION_HANDLE,
        pEncryptedData: *mut CK_BYTE,
        ulEncryptedDataLen: CK_ULONG,
        pData: *mut CK_BYTE,
        pulDataLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pEncryptedData, ulEncryptedDataLen)), Some((pData, pulDataLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Decrypt, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_DecryptUpdate(
        hSession: CK_SESSION_HANDLE,
        pEncryptedPart: *mut CK_BYTE,
        ulEncryptedPartLen: CK_ULONG,
        pPart: *mut CK_BYTE,
        pulPartLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pEncryptedPart, ulEncryptedPartLen)), Some((pPart, pulPartLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Decrypt, input, false, output) }
    }
}

pkcs11_fn! {
    fn C_DecryptFinal(hSession: CK_SESSION_HANDLE, pLastPart: *mut CK_BYTE, pulLastPartLen: *mut CK_ULONG) {
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Decrypt, None, false, Some((pLastPart, pulLastPartLen))) }
    }
}

pkcs11_fn! {
    fn C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        module.digest_init(hSession, mechanism.as_ref())
    }
}

pkcs11_fn! {
    fn C_Digest(
        hSession: CK_SESSION_HANDLE,
        pData: *mut CK_BYTE,
        ulDataLen: CK_ULONG,
        pDigest: *mut CK_BYTE,
        pulDigestLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pData, ulDataLen)), Some((pDigest, pulDigestLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Digest, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_DigestUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { operation_step(hSession, OperationKind::Digest, Some((pPart, ulPartLen)), false, None) }
    }
}

pkcs11_fn! {
    fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) {
        module::instance()?.digest_key(hSession, hKey)
    }
}

pkcs11_fn! {
    fn C_DigestFinal(hSession: CK_SESSION_HANDLE, pDigest: *mut CK_BYTE, pulDigestLen: *mut CK_ULONG) {
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Digest, None, false, Some((pDigest, pulDigestLen))) }
    }
}

pkcs11_fn! {
    fn C_SignInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        module.sign_init(hSession, mechanism.as_ref(), hKey)
    }
}

pkcs11_fn! {
    fn C_Sign(
        hSession: CK_SESSION_HANDLE,
        pData: *mut CK_BYTE,
        ulDataLen: CK_ULONG,
        pSignature: *mut CK_BYTE,
        pulSignatureLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pData, ulDataLen)), Some((pSignature, pulSignatureLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Sign, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_SignUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { operation_step(hSession, OperationKind::Sign, Some((pPart, ulPartLen)), false, None) }
    }
}

pkcs11_fn! {
    fn C_SignFinal(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG) {
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::Sign, None, false, Some((pSignature, pulSignatureLen))) }
    }
}

pkcs11_fn! {
    fn C_SignRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        module.recover_init(hSession, OperationKind::SignRecover, mechanism.as_ref(), hKey)
    }
}

pkcs11_fn! {
    fn C_SignRecover(
        hSession: CK_SESSION_HANDLE,
        pData: *mut CK_BYTE,
        ulDataLen: CK_ULONG,
        pSignature: *mut CK_BYTE,
        pulSignatureLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pData, ulDataLen)), Some((pSignature, pulSignatureLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::SignRecover, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_VerifyRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        module.recover_init(hSession, OperationKind::VerifyRecover, mechanism.as_ref(), hKey)
    }
}

pkcs11_fn! {
    fn C_VerifyRecover(
        hSession: CK_SESSION_HANDLE,
        pSignature: *mut CK_BYTE,
        ulSignatureLen: CK_ULONG,
        pData: *mut CK_BYTE,
        pulDataLen: *mut CK_ULONG,
    ) {
        let (input, output) = (Some((pSignature, ulSignatureLen)), Some((pData, pulDataLen)));
        // SAFETY: caller's buffers.
        unsafe { operation_step(hSession, OperationKind::VerifyRecover, input, true, output) }
    }
}

pkcs11_fn! {
    fn C_VerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? };
        module.verify_init(hSession, mechanism.as_ref(), hKey)
    }
}

/// One step of a verification; bad arguments end the operation.
///
/// # Safety
/// The pointers are the export's, under its PKCS#11 contract.
unsafe fn verify_step(
    h: CK_SESSION_HANDLE,
    input: Option<(*mut u8, CK_ULONG)>,
    single: bool,
    signature: (*mut u8, CK_ULONG),
) -> Result<()> {
    let module = module::instance()?;
    let arguments = || -> Result<(Step<'_>, &[u8])> {
        // SAFETY: forwarded contract of the export.
        let signature = unsafe { bytes_in(signature.0, signature.1)? };
        let step = match input {
            Some((p, n)) => {
                // SAFETY: forwarded contract of the export.
                let data = unsafe { bytes_in(p, n)? };
                if single { Step::Single(data) } else { Step::Update(data) }
            }
            None => Step::Final,
        };
        Ok((step, signature))
    };
    match arguments() {
        Ok((step, signature)) => module.verify(h, step, signature),
        Err(e) => {
            module.end_operation(h, OperationKind::Verify);
            Err(e)
        }
    }
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
        unsafe { verify_step(hSession, Some((pData, ulDataLen)), true, (pSignature, ulSignatureLen)) }
    }
}

pkcs11_fn! {
    fn C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: *mut CK_BYTE, ulPartLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, Some((pPart, ulPartLen)), false, (std::ptr::null_mut(), 0)) }
    }
}

pkcs11_fn! {
    fn C_VerifyFinal(hSession: CK_SESSION_HANDLE, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG) {
        // SAFETY: caller's buffer.
        unsafe { verify_step(hSession, None, false, (pSignature, ulSignatureLen)) }
    }
}

pkcs11_fn! {
    fn C_GenerateKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: *mut CK_MECHANISM,
        pTemplate: *mut CK_ATTRIBUTE,
        ulCount: CK_ULONG,
        phKey: *mut CK_OBJECT_HANDLE,
    ) {
        let module = module::instance()?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: caller's mechanism and template.
        let (mechanism, template) = unsafe { (mechanism_in(pMechanism)?, template_in(pTemplate, ulCount)?) };
        let mechanism = mechanism.ok_or(Error::ArgumentsBad)?;
        let handle = module.generate_key(hSession, &mechanism, &template)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phKey, handle) }
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
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: caller's mechanism and template.
        let (mechanism, template) = unsafe { (mechanism_in(pMechanism)?, template_in(pTemplate, ulAttributeCount)?) };
        let mechanism = mechanism.ok_or(Error::ArgumentsBad)?;
        let handle = module.derive_key(hSession, &mechanism, hBaseKey, &template)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phKey, handle) }
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
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: caller's mechanism, blob and template.
        let (mechanism, wrapped, template) = unsafe {
            (mechanism_in(pMechanism)?, bytes_in(pWrappedKey, ulWrappedKeyLen)?, template_in(pTemplate, ulAttributeCount)?)
        };
        let mechanism = mechanism.ok_or(Error::ArgumentsBad)?;
        let handle = module.unwrap_key(hSession, &mechanism, hUnwrappingKey, wrapped, &template)?;
        // SAFETY: checked non-NULL; out-pointer from the caller.
        unsafe { write(phKey, handle) }
    }
}

pkcs11_fn! {
    fn C_SeedRandom(hSession: CK_SESSION_HANDLE, pSeed: *mut CK_BYTE, ulSeedLen: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: caller's buffer; checked only for consistency, never used.
        unsafe { bytes_in(pSeed, ulSeedLen)? };
        module.seed_random(hSession)
    }
}

pkcs11_fn! {
    fn C_GenerateRandom(hSession: CK_SESSION_HANDLE, RandomData: *mut CK_BYTE, ulRandomLen: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: the caller's buffer holds `ulRandomLen` writable bytes.
        let out = unsafe { bytes_out(RandomData, ulRandomLen)? };
        module.generate_random(hSession, out)
    }
}

pkcs11_fn! {
    fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) {
        module::instance()?.session_view(hSession)?;
        Err(Error::FunctionNotParallel)
    }
}

pkcs11_fn! {
    fn C_CancelFunction(hSession: CK_SESSION_HANDLE) {
        module::instance()?.session_view(hSession)?;
        Err(Error::FunctionNotParallel)
    }
}

pkcs11_fn! {
    fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) {
        module::instance()?.session_cancel(hSession, flags)
    }
}

pkcs11_fn! {
    fn C_MessageEncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE) {
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? }.ok_or(Error::ArgumentsBad)?;
        module.message_init(hSession, CipherKind::Encrypt, &mechanism, hKey)
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
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            let plaintext = bytes_in(pPlaintext, ulPlaintextLen)?;
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
        let module = module::instance()?;
        // SAFETY: caller's mechanism pointer.
        let mechanism = unsafe { mechanism_in(pMechanism)? }.ok_or(Error::ArgumentsBad)?;
        module.message_init(hSession, CipherKind::Decrypt, &mechanism, hKey)
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
            let tag = bytes_in(raw.pTag, raw.ulTagBits / 8).map_err(|_| Error::MechanismParamInvalid)?;
            let aad = bytes_in(pAssociatedData, ulAssociatedDataLen)?;
            let ciphertext = bytes_in(pCiphertext, ulCiphertextLen)?;
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

not_supported! {
    C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void);
    C_EncryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_EncryptMessageNext(
        CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG, CK_FLAGS,
    );
    C_DecryptMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_DecryptMessageNext(
        CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG, CK_FLAGS,
    );
    C_MessageSignInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_SignMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG);
    C_SignMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_MessageSignFinal(CK_SESSION_HANDLE);
    C_MessageVerifyInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_VerifyMessage(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_VerifyMessageBegin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG);
    C_VerifyMessageNext(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_MessageVerifyFinal(CK_SESSION_HANDLE);
}
