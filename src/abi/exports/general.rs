//! General-purpose, slot and token management exports (PKCS#11 3.0 chapters 5.4 and 5.5),
//! random numbers, the legacy parallel-function stubs, and the functions not supported.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::super::guard::{not_supported, pkcs11_fn};
use super::super::marshal::*;
use crate::Error;
use crate::module;

const MANUFACTURER: &[u8] = b"ecm-hsm project";

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
        crate::error::install_env_logger();
        super::super::fork::watch()?;
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
        let module = module::instance()?;
        module.check_slot(slotID)?;
        // Where the token is: in this process, or behind the key service (client mode).
        let place = if module.is_client() { " via the key service" } else { "" };
        let info = CK_SLOT_INFO {
            slotDescription: padded(format!("ecm-hsm slot {slotID}{place}").as_bytes()),
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
        let (status, model) = module::instance()?.token_status_and_model(slotID)?;
        let info = CK_TOKEN_INFO {
            label: status.info.label,
            manufacturerID: padded(MANUFACTURER),
            model: padded(model.as_bytes()),
            serialNumber: padded(status.info.serial.as_bytes()),
            flags: status.info.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: to_ulong(status.session_count),
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: to_ulong(status.rw_session_count),
            ulMaxPinLen: to_ulong(crate::token::MAX_PIN_LEN),
            ulMinPinLen: to_ulong(crate::token::MIN_PIN_LEN),
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
        // C_InitToken's list has no length code: a PIN no token can have is a bad argument.
        // SAFETY: the PIN has `ulPinLen` bytes and the label 32, by contract.
        let (pin, label) =
            unsafe { (bytes_in_capped(pPin, ulPinLen, caps::PIN, Error::ArgumentsBad)?, bytes_in(pLabel, 32)?) };
        module.init_token(slotID, pin, padded(label))
    }
}

pkcs11_fn! {
    fn C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: *mut CK_UTF8CHAR, ulPinLen: CK_ULONG) {
        let module = module::instance()?;
        // SAFETY: the PIN has `ulPinLen` bytes by contract.
        let pin = unsafe { bytes_in_capped(pPin, ulPinLen, caps::PIN, Error::PinLenRange)? };
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
        let (old, new) = unsafe {
            (
                bytes_in_capped(pOldPin, ulOldLen, caps::PIN, Error::PinLenRange)?,
                bytes_in_capped(pNewPin, ulNewLen, caps::PIN, Error::PinLenRange)?,
            )
        };
        module.set_pin(hSession, old, new)
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
    fn C_WaitForSlotEvent(flags: CK_FLAGS, pSlot: *mut CK_SLOT_ID, pReserved: *mut c_void) {
        if pSlot.is_null() || !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let slot = module::instance()?.wait_for_slot_event(flags & CKF_DONT_BLOCK != 0)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write(pSlot, slot) }
    }
}

not_supported! {
    C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
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
