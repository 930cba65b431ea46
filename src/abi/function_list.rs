//! The function lists (2.40, 3.0 and 3.2) and the interface table. These three entry points
//! work before `C_Initialize`, since they are how a caller finds it.

use std::cell::UnsafeCell;
use std::ffi::c_void;

use cryptoki_sys::*;

use super::exports::*;
use super::guard::pkcs11_fn;
use super::marshal::*;
use crate::Error;

macro_rules! function_list {
    // A 3.x list: the functions 3.0 adds to 2.40, then `$extra`.
    ($ty:ident, $major:expr, $minor:expr, v3_0 + { $($extra:ident),* }) => {
        function_list!($ty, $major, $minor, {
            C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
            C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext,
            C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin,
            C_DecryptMessageNext, C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
            C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit,
            C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal
            $(, $extra)*
        })
    };
    ($ty:ident, $major:expr, $minor:expr, { $($extra:ident),* }) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// A static that C callers may write through. The standard hands out `CK_FUNCTION_LIST_PTR`
/// and `CK_INTERFACE_PTR` as non-const pointers and some hosts write through them (OpenSC's
/// pkcs11-spy swaps the function list inside the interface it is given), so these tables
/// live in writable memory rather than in read-only statics, where such a write would crash
/// the host.
struct CallerWritable<T>(UnsafeCell<T>);

// SAFETY: the module itself never writes to these tables after initialization; any write is
// the caller's, made under the same rules as with any C module's static tables.
unsafe impl<T> Sync for CallerWritable<T> {}

static FUNCTION_LIST: CallerWritable<CK_FUNCTION_LIST> =
    CallerWritable(UnsafeCell::new(function_list!(CK_FUNCTION_LIST, 2, 40, {})));

static FUNCTION_LIST_3_0: CallerWritable<CK_FUNCTION_LIST_3_0> =
    CallerWritable(UnsafeCell::new(function_list!(CK_FUNCTION_LIST_3_0, 3, 0, v3_0 + {})));

/// The 3.2 list: 3.0's, then the functions 3.2 adds (key encapsulation, verification with
/// the signature first; the others answer `CKR_FUNCTION_NOT_SUPPORTED`, see
/// `exports/v3_2.rs`).
static FUNCTION_LIST_3_2: CallerWritable<CK_FUNCTION_LIST_3_2> =
    CallerWritable(UnsafeCell::new(function_list!(CK_FUNCTION_LIST_3_2, 3, 2, v3_0 + {
        C_EncapsulateKey, C_DecapsulateKey, C_VerifySignatureInit, C_VerifySignature,
        C_VerifySignatureUpdate, C_VerifySignatureFinal, C_GetSessionValidationFlags,
        C_AsyncComplete, C_AsyncGetID, C_AsyncJoin, C_WrapKeyAuthenticated, C_UnwrapKeyAuthenticated
    })));

const INTERFACE_NAME: &[u8] = b"PKCS 11\0";

const fn interface(list: *mut c_void) -> CK_INTERFACE {
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: list,
        flags: 0,
    }
}

/// The interface table. The first entry is what `C_GetInterface` gives a caller that names
/// no version: the standard leaves that default to the module ("the cryptoki library can
/// return an interface of any version"), and it is the newest, 3.2, so that clients that
/// take the default (the `cryptoki` crate does) reach `C_EncapsulateKey`/`C_DecapsulateKey`.
/// A `CK_FUNCTION_LIST_3_2` begins with the whole 3.0 list in its order, so a caller written
/// for 3.0 that takes the default still finds every 3.0 function where it looks.
static INTERFACES: CallerWritable<[CK_INTERFACE; 3]> = CallerWritable(UnsafeCell::new([
    interface(FUNCTION_LIST_3_2.0.get() as *mut c_void),
    interface(FUNCTION_LIST_3_0.0.get() as *mut c_void),
    interface(FUNCTION_LIST.0.get() as *mut c_void),
]));

/// The versions of the interfaces, in table order (kept here rather than read back
/// through the table, which callers may have written to).
const INTERFACE_VERSIONS: [CK_VERSION; 3] = [
    CK_VERSION { major: 3, minor: 2 },
    CK_VERSION { major: 3, minor: 0 },
    CK_VERSION { major: 2, minor: 40 },
];

/// The environment variable that makes 3.0 the default interface (`3.0`; anything else keeps 3.2).
const DEFAULT_INTERFACE_ENV: &str = "ECM_HSM_DEFAULT_INTERFACE";

fn interfaces() -> *mut CK_INTERFACE {
    INTERFACES.0.get() as *mut CK_INTERFACE
}

pkcs11_fn! {
    fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) {
        // SAFETY: out-pointer from the caller; the list is static and never written.
        unsafe { write(ppFunctionList, FUNCTION_LIST.0.get()) }
    }
}

pkcs11_fn! {
    fn C_GetInterfaceList(pInterfacesList: *mut CK_INTERFACE, pulCount: *mut CK_ULONG) {
        // SAFETY: the table is a static of `INTERFACE_VERSIONS.len()` entries, read here; the caller's list and
        // count follow the PKCS#11 contract.
        unsafe {
            let all = std::slice::from_raw_parts(interfaces(), INTERFACE_VERSIONS.len());
            list_out(all, pInterfacesList, pulCount)
        }
    }
}

pkcs11_fn! {
    /// Finds an interface by name ("PKCS 11" or NULL), version (NULL for the default) and
    /// flags (all must be offered).
    fn C_GetInterface(
        pInterfaceName: *mut CK_UTF8CHAR,
        pVersion: *mut CK_VERSION,
        ppInterface: *mut *mut CK_INTERFACE,
        flags: CK_FLAGS,
    ) {
        if ppInterface.is_null() {
            return Err(Error::ArgumentsBad);
        }
        if !pInterfaceName.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string by contract.
            let name = unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes_with_nul() != INTERFACE_NAME {
                return Err(Error::ArgumentsBad);
            }
        }
        let wanted = if pVersion.is_null() {
            None
        } else {
            // SAFETY: non-NULL, valid by contract.
            Some(unsafe { *pVersion })
        };
        // No version named: the default, 3.2 unless `ECM_HSM_DEFAULT_INTERFACE=3.0` asks for
        // 3.0, for tools that know only the interfaces up to 3.0 (OpenSC 0.23's pkcs11-spy
        // wraps a 3.0 interface but passes a 3.2 one through unwatched).
        let wanted = wanted.or_else(|| {
            (std::env::var_os(DEFAULT_INTERFACE_ENV).as_deref() == Some(std::ffi::OsStr::new("3.0")))
                .then_some(CK_VERSION { major: 3, minor: 0 })
        });
        // Neither interface sets flags (we do not claim CKF_INTERFACE_FORK_SAFE), so only a
        // request for no flags can match.
        let index = INTERFACE_VERSIONS
            .iter()
            .position(|v| wanted.is_none_or(|w| w.major == v.major && w.minor == v.minor) && flags == 0)
            .ok_or(Error::ArgumentsBad)?;
        // SAFETY: out-pointer from the caller; `index` is within the table.
        unsafe { write(ppInterface, interfaces().add(index)) }
    }
}
