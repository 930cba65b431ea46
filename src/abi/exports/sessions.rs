//! Session management and login exports (PKCS#11 3.0 chapter 5.6).

use std::ffi::c_void;

use cryptoki_sys::*;

use super::super::guard::pkcs11_fn;
use super::super::marshal::*;
use crate::Error;
use crate::module;

pkcs11_fn! {
    fn C_OpenSession(
        slotID: CK_SLOT_ID,
        flags: CK_FLAGS,
        _pApplication: *mut c_void,
        _Notify: CK_NOTIFY,
        phSession: *mut CK_SESSION_HANDLE,
    ) {
        let module = module::instance()?;
        // SAFETY: out-pointer from the caller.
        unsafe { new_handle_out(phSession, || module.open_session(slotID, flags)) }
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
        let pin = unsafe { bytes_in_capped(pPin, ulPinLen, caps::LOGIN_PIN, Error::ArgumentsBad)? };
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
        let (pin, name) = unsafe {
            (
                bytes_in_capped(pPin, ulPinLen, caps::LOGIN_PIN, Error::ArgumentsBad)?,
                bytes_in_capped(pUsername, ulUsernameLen, caps::NAME, Error::ArgumentsBad)?,
            )
        };
        module.login_user(hSession, userType, pin, name)
    }
}

pkcs11_fn! {
    fn C_Logout(hSession: CK_SESSION_HANDLE) {
        module::instance()?.logout(hSession)
    }
}

pkcs11_fn! {
    fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) {
        module::instance()?.session_cancel(hSession, flags)
    }
}
