//! The C ABI called directly, through `cryptoki_sys::Pkcs11` (each `C_*` symbol loaded from
//! `libecm_hsm.so`), so that NULL pointers, wrong lengths and the buffer protocols can be
//! exercised the way a careless or adversarial C caller would.
//!
//! Every refusal is followed by a check that it changed nothing.
#![allow(unsafe_code)]

mod common;

use std::ffi::{CStr, c_void};
use std::mem::size_of;
use std::ptr::null_mut;

use common::raw::*;
use common::*;
use cryptoki_sys::*;

// ---------------------------------------------------------------------------------------
// Helpers: each wraps one call with valid arguments, so that the tests' own `unsafe` blocks
// are the deliberately unusual calls.
// ---------------------------------------------------------------------------------------

/// NIST GCM test vector (gcmEncryptExtIV256, 60-byte plaintext with AAD), independent of
/// the module.
struct Kat {
    key: Vec<u8>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
}

fn kat() -> Kat {
    Kat {
        key: hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
        iv: hex("cafebabefacedbaddecaf888"),
        aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
        pt: hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
        ct: hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
                 8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
                 76fc6ece0f4e1768cddf8853bb2d551b"),
    }
}

/// A user session holding the vector's key as a sensitive session key: the module, the
/// session, the vector and the key.
fn kat_setup() -> (Pkcs11, CK_SESSION_HANDLE, Kat, CK_OBJECT_HANDLE) {
    let (p, _slot, h) = user_setup();
    let k = kat();
    let key = aes_key(&p, h, &k.key, true);
    (p, h, k, key)
}

/// A GCM parameter block pointing into `iv` and `aad`, which must outlive its use.
fn gcm_params(iv: &mut [u8], aad: &mut [u8], tag_bits: CK_ULONG) -> CK_GCM_PARAMS {
    CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: ulen(iv.len()),
        ulIvBits: ulen(iv.len() * 8),
        pAAD: aad.as_mut_ptr(),
        ulAADLen: ulen(aad.len()),
        ulTagBits: tag_bits,
    }
}

fn gcm_mechanism(params: &mut CK_GCM_PARAMS) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: params as *mut CK_GCM_PARAMS as *mut c_void,
        ulParameterLen: ulen(size_of::<CK_GCM_PARAMS>()),
    }
}

fn encrypt_init(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, iv: &[u8], aad: &[u8]) -> CK_RV {
    let (mut iv, mut aad) = (iv.to_vec(), aad.to_vec());
    let mut params = gcm_params(&mut iv, &mut aad, 128);
    let mut m = gcm_mechanism(&mut params);
    // SAFETY: the mechanism and the buffers it points to are live for the call (the module
    // copies them in).
    unsafe { p.C_EncryptInit(h, &mut m, key) }
}

fn decrypt_init(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, iv: &[u8], aad: &[u8]) -> CK_RV {
    let (mut iv, mut aad) = (iv.to_vec(), aad.to_vec());
    let mut params = gcm_params(&mut iv, &mut aad, 128);
    let mut m = gcm_mechanism(&mut params);
    // SAFETY: as in encrypt_init.
    unsafe { p.C_DecryptInit(h, &mut m, key) }
}

/// Whether an encryption is active, without disturbing any other operation: a second init
/// is refused with CKR_OPERATION_ACTIVE exactly when one is.
fn encryption_active(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> bool {
    match encrypt_init(p, h, key, &[0; 12], b"") {
        CKR_OPERATION_ACTIVE => true,
        CKR_OK => {
            // We started one: end it again.
            // SAFETY: a NULL mechanism ends the active encryption (PKCS#11 3.0).
            assert_eq!(unsafe { p.C_EncryptInit(h, null_mut(), key) }, CKR_OK);
            false
        }
        other => panic!("C_EncryptInit returned {other:#x}"),
    }
}

fn sha256_mechanism() -> CK_MECHANISM {
    CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 }
}

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// ---------------------------------------------------------------------------------------
// Function lists and interfaces (these work before C_Initialize).
// ---------------------------------------------------------------------------------------

/// Applies `$check!(list, Type, [fields...])` to the 2.40 fields plus `$extra`.
macro_rules! with_fields {
    ($check:ident, $list:expr, $ty:ty, [$($extra:ident),*]) => {
        $check!($list, $ty, [
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,
            C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,
            C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,
            C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,
            C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,
            C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit,
            C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
            C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit, C_SignRecover,
            C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,
            C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate,
            C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom,
            C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent $(, $extra)*
        ])
    };
}

/// The 3.0 additions, in list order.
macro_rules! with_fields_3_0 {
    ($check:ident, $list:expr) => {
        with_fields!(
            $check,
            $list,
            CK_FUNCTION_LIST_3_0,
            [
                C_GetInterfaceList,
                C_GetInterface,
                C_LoginUser,
                C_SessionCancel,
                C_MessageEncryptInit,
                C_EncryptMessage,
                C_EncryptMessageBegin,
                C_EncryptMessageNext,
                C_MessageEncryptFinal,
                C_MessageDecryptInit,
                C_DecryptMessage,
                C_DecryptMessageBegin,
                C_DecryptMessageNext,
                C_MessageDecryptFinal,
                C_MessageSignInit,
                C_SignMessage,
                C_SignMessageBegin,
                C_SignMessageNext,
                C_MessageSignFinal,
                C_MessageVerifyInit,
                C_VerifyMessage,
                C_VerifyMessageBegin,
                C_VerifyMessageNext,
                C_MessageVerifyFinal
            ]
        )
    };
}

/// Asserts that every entry named is set, and that the names cover the whole structure.
macro_rules! assert_all_set {
    ($list:expr, $ty:ty, [$($f:ident),*]) => {{
        let list: &$ty = $list;
        let mut n = 0usize;
        $(
            assert!(list.$f.is_some(), concat!(stringify!($f), " is NULL in ", stringify!($ty)));
            n += 1;
        )*
        assert_eq!(
            size_of::<$ty>(),
            std::mem::offset_of!($ty, C_Initialize) + n * size_of::<usize>(),
            "every entry of {} was checked", stringify!($ty)
        );
    }};
}

/// Asserts that every entry named is the module's exported symbol of that name.
macro_rules! assert_entries_are_exports {
    ($pair:expr, $ty:ty, [$($f:ident),*]) => {{
        let (list, p): (&$ty, &Pkcs11) = $pair;
        $(
            let entry = list.$f.map(|f| f as usize);
            let export = p.$f.as_ref().ok().map(|f| *f as usize);
            assert!(export.is_some(), concat!(stringify!($f), " is not exported"));
            assert_eq!(entry, export, concat!(stringify!($f), " in ", stringify!($ty), " is not the export"));
        )*
    }};
}

fn function_list_2_40(p: &Pkcs11) -> &'static CK_FUNCTION_LIST {
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: out-pointer to a live local.
    assert_eq!(unsafe { p.C_GetFunctionList(&mut list) }, CKR_OK, "C_GetFunctionList");
    assert!(!list.is_null());
    // SAFETY: the module returns a pointer to its static, never-written list.
    unsafe { &*list }
}

isolated_test!(
    fn get_function_list_is_complete_version_2_40_and_works_before_initialize() {
        let p = load_raw();
        let list = function_list_2_40(&p);
        assert_eq!((list.version.major, list.version.minor), (2, 40));
        with_fields!(assert_all_set, list, CK_FUNCTION_LIST, []);
        with_fields!(assert_entries_are_exports, (list, &p), CK_FUNCTION_LIST, []);
        // The same list every time.
        assert!(std::ptr::eq(list, function_list_2_40(&p)));

        // SAFETY: a NULL out-pointer must be refused, not written.
        assert_eq!(unsafe { p.C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD);

        // Calls through the list reach the module: not initialized yet, then initialized.
        let mut info = CK_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { (list.C_GetInfo.unwrap())(&mut info) }, CKR_CRYPTOKI_NOT_INITIALIZED);
        // SAFETY: NULL arguments are allowed.
        assert_eq!(unsafe { (list.C_Initialize.unwrap())(null_mut()) }, CKR_OK);
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { (list.C_GetInfo.unwrap())(&mut info) }, CKR_OK);
        assert_eq!((info.cryptokiVersion.major, info.cryptokiVersion.minor), (3, 0));
        finalize(&p);
    }
);

fn interfaces(p: &Pkcs11) -> Vec<CK_INTERFACE> {
    let mut n: CK_ULONG = 0;
    // SAFETY: a NULL list asks for the count.
    assert_eq!(unsafe { p.C_GetInterfaceList(null_mut(), &mut n) }, CKR_OK);
    let empty = CK_INTERFACE { pInterfaceName: null_mut(), pFunctionList: null_mut(), flags: 0 };
    let mut list = vec![empty; n as usize];
    // SAFETY: the list holds `n` entries.
    assert_eq!(unsafe { p.C_GetInterfaceList(list.as_mut_ptr(), &mut n) }, CKR_OK);
    assert_eq!(n as usize, list.len());
    list
}

fn interface_name(i: &CK_INTERFACE) -> String {
    assert!(!i.pInterfaceName.is_null());
    // SAFETY: interface names are static NUL-terminated strings.
    unsafe { CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) }.to_str().unwrap().to_string()
}

fn interface_version(i: &CK_INTERFACE) -> (u8, u8) {
    assert!(!i.pFunctionList.is_null());
    // SAFETY: every function list begins with its CK_VERSION.
    let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
    (v.major, v.minor)
}

isolated_test!(
    fn get_interface_list_follows_the_buffer_protocol_before_initialize() {
        let p = load_raw();
        let mut n: CK_ULONG = 99;
        // SAFETY: a NULL list asks for the count.
        assert_eq!(unsafe { p.C_GetInterfaceList(null_mut(), &mut n) }, CKR_OK);
        assert_eq!(n, 3);

        let empty = CK_INTERFACE { pInterfaceName: null_mut(), pFunctionList: null_mut(), flags: 0 };
        let mut list = [empty; 4];
        let mut n: CK_ULONG = 1;
        // SAFETY: the list holds 4 entries, more than the count claims.
        assert_eq!(unsafe { p.C_GetInterfaceList(list.as_mut_ptr(), &mut n) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(n, 3, "the count is set to what is needed");
        assert!(
            list.iter().all(|i| i.pInterfaceName.is_null() && i.pFunctionList.is_null()),
            "nothing written"
        );

        // SAFETY: a NULL count must be refused.
        assert_eq!(unsafe { p.C_GetInterfaceList(list.as_mut_ptr(), null_mut()) }, CKR_ARGUMENTS_BAD);

        let mut n: CK_ULONG = 4;
        // SAFETY: the list holds 4 entries.
        assert_eq!(unsafe { p.C_GetInterfaceList(list.as_mut_ptr(), &mut n) }, CKR_OK);
        assert_eq!(n, 3);
        assert!(list[3].pFunctionList.is_null(), "only `n` entries are written");
        let found: Vec<(String, (u8, u8))> =
            list[..3].iter().map(|i| (interface_name(i), interface_version(i))).collect();
        let pkcs11 = |v| ("PKCS 11".to_string(), v);
        assert_eq!(found, vec![pkcs11((3, 2)), pkcs11((3, 0)), pkcs11((2, 40))]);
        assert_eq!(
            list[2].pFunctionList as *const CK_FUNCTION_LIST,
            function_list_2_40(&p) as *const CK_FUNCTION_LIST,
            "the 2.40 interface is C_GetFunctionList's list"
        );
        // Still not initialized: these calls changed no state.
        assert_eq!(get_info(&p), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
);

fn get_interface(
    p: &Pkcs11,
    name: Option<&[u8]>,
    version: Option<(u8, u8)>,
    flags: CK_FLAGS,
) -> (CK_RV, *mut CK_INTERFACE) {
    let mut name = name.map(|n| n.to_vec());
    let name_ptr = name.as_mut().map_or(null_mut(), |n| n.as_mut_ptr());
    let mut version = version.map(|(major, minor)| CK_VERSION { major, minor });
    let version_ptr = version.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
    let sentinel = 0x5a5a as *mut CK_INTERFACE;
    let mut iface = sentinel;
    // SAFETY: the name (NUL-terminated) and version are NULL or live locals.
    let rv = unsafe { p.C_GetInterface(name_ptr, version_ptr, &mut iface, flags) };
    if rv != CKR_OK {
        assert_eq!(iface, sentinel, "a refused C_GetInterface must not write ppInterface");
    }
    (rv, iface)
}

isolated_test!(
    fn get_interface_by_name_and_version_before_initialize() {
        let p = load_raw();
        let listed = interfaces(&p);

        let (rv, default) = get_interface(&p, None, None, 0);
        assert_eq!(rv, CKR_OK);
        // SAFETY: the module returned a pointer to its static interface table.
        let default = unsafe { &*default };
        assert_eq!(interface_name(default), "PKCS 11");
        // The standard leaves the default to the module; it is the newest, 3.2, whose list
        // begins with the whole 3.0 list.
        assert_eq!(interface_version(default), (3, 2), "the default is 3.2");
        assert_eq!(default.pFunctionList, listed[0].pFunctionList);
        // SAFETY: a 3.2 list begins with the fields of a CK_FUNCTION_LIST_3_0, in its order.
        let prefix = unsafe { &*(default.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        with_fields_3_0!(assert_all_set, prefix);
        with_fields_3_0!(assert_entries_are_exports, (prefix, &p));

        let (rv, v2) = get_interface(&p, Some(b"PKCS 11\0"), Some((2, 40)), 0);
        assert_eq!(rv, CKR_OK);
        // SAFETY: as above.
        let v2 = unsafe { &*v2 };
        assert_eq!(interface_version(v2), (2, 40));
        assert_eq!(v2.pFunctionList as *const CK_FUNCTION_LIST, function_list_2_40(&p) as *const _);

        let (rv, v3) = get_interface(&p, Some(b"PKCS 11\0"), Some((3, 0)), 0);
        assert_eq!(rv, CKR_OK);
        // SAFETY: as above.
        let v3 = unsafe { &*v3 };
        assert_eq!(interface_version(v3), (3, 0));
        assert_eq!(v3.pFunctionList, listed[1].pFunctionList);
        // SAFETY: a 3.0 interface points to a CK_FUNCTION_LIST_3_0.
        let list3 = unsafe { &*(v3.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
        with_fields_3_0!(assert_all_set, list3);
        with_fields_3_0!(assert_entries_are_exports, (list3, &p));
        let (rv, by_name) = get_interface(&p, Some(b"PKCS 11\0"), None, 0);
        assert_eq!(rv, CKR_OK);
        // SAFETY: as above.
        assert_eq!(interface_version(unsafe { &*by_name }), (3, 2));

        assert_eq!(get_interface(&p, Some(b"PKCS 12\0"), None, 0).0, CKR_ARGUMENTS_BAD);
        assert_eq!(get_interface(&p, Some(b"PKCS 11 \0"), None, 0).0, CKR_ARGUMENTS_BAD);
        assert_eq!(get_interface(&p, Some(b"\0"), None, 0).0, CKR_ARGUMENTS_BAD);
        assert_eq!(get_interface(&p, None, Some((9, 9)), 0).0, CKR_ARGUMENTS_BAD);
        assert_eq!(get_interface(&p, Some(b"PKCS 11\0"), Some((2, 11)), 0).0, CKR_ARGUMENTS_BAD);
        // No interface claims to be fork-safe.
        assert_eq!(get_interface(&p, None, None, CKF_INTERFACE_FORK_SAFE).0, CKR_ARGUMENTS_BAD);
        // SAFETY: a NULL ppInterface must be refused, not written.
        assert_eq!(unsafe { p.C_GetInterface(null_mut(), null_mut(), null_mut(), 0) }, CKR_ARGUMENTS_BAD);

        // A tool that knows interfaces up to 3.0 only may ask for 3.0 as the default.
        // SAFETY: this test is a process of its own (isolated_test!) with no other thread
        // reading the environment now.
        unsafe { std::env::set_var("ECM_HSM_DEFAULT_INTERFACE", "3.0") };
        let (rv, old_default) = get_interface(&p, None, None, 0);
        assert_eq!(rv, CKR_OK);
        // SAFETY: as above.
        assert_eq!(interface_version(unsafe { &*old_default }), (3, 0));

        assert_eq!(get_info(&p), CKR_CRYPTOKI_NOT_INITIALIZED, "still not initialized");
    }
);

// ---------------------------------------------------------------------------------------
// C_Initialize / C_Finalize.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn calls_before_initialize_are_refused_and_write_nothing() {
        let p = load_raw();
        let nope = CKR_CRYPTOKI_NOT_INITIALIZED;
        let mut info = CK_INFO { flags: 77, ..Default::default() };
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetInfo(&mut info) }, nope);
        assert_eq!(info.flags, 77, "nothing written");
        let mut n: CK_ULONG = 77;
        let mut slots = [0 as CK_SLOT_ID; 4];
        // SAFETY: NULL list with a live count.
        assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, null_mut(), &mut n) }, nope);
        // SAFETY: the list holds 4 slots.
        assert_eq!(unsafe { p.C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n) }, nope);
        assert_eq!(n, 77, "count untouched");
        let mut slot_info = CK_SLOT_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetSlotInfo(0, &mut slot_info) }, nope);
        let mut ti = CK_TOKEN_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetTokenInfo(0, &mut ti) }, nope);
        // SAFETY: NULL list with a live count.
        assert_eq!(unsafe { p.C_GetMechanismList(0, null_mut(), &mut n) }, nope);
        let mut h: CK_SESSION_HANDLE = 77;
        // SAFETY: no callback; out-pointer to a live local.
        let rv = unsafe { p.C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut h) };
        assert_eq!(rv, nope);
        assert_eq!(h, 77, "no session handle written");
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_CloseSession(1) }, nope);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_CloseAllSessions(0) }, nope);
        let mut si = CK_SESSION_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetSessionInfo(1, &mut si) }, nope);
        assert_eq!(login(&p, 1, CKU_USER, USER_PIN), nope);
        let class = CKO_DATA;
        let mut t = [attr(CKA_CLASS, &class)];
        let mut o: CK_OBJECT_HANDLE = 77;
        // SAFETY: template and out-pointer are live locals.
        assert_eq!(unsafe { p.C_CreateObject(1, t.as_mut_ptr(), 1, &mut o) }, nope);
        assert_eq!(o, 77);
        let mut m = sha256_mechanism();
        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(1, &mut m) }, nope);
        let mut random = [0u8; 8];
        // SAFETY: the buffer holds 8 bytes.
        assert_eq!(unsafe { p.C_GenerateRandom(1, random.as_mut_ptr(), 8) }, nope);
        assert_eq!(random, [0; 8]);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(1, CKF_ENCRYPT) }, nope);
        // SAFETY: pReserved is NULL.
        assert_eq!(unsafe { p.C_Finalize(null_mut()) }, nope);

        // And none of it stopped a normal start.
        initialize(&p);
        assert_eq!(get_info(&p), CKR_OK);
        assert!(!slot_list(&p).is_empty());
        finalize(&p);
    }
);

isolated_test!(
    fn initialize_finalize_lifecycle_and_reinitialization() {
        let p = load_raw();
        initialize(&p);
        // SAFETY: NULL arguments.
        assert_eq!(unsafe { p.C_Initialize(null_mut()) }, CKR_CRYPTOKI_ALREADY_INITIALIZED);
        assert_eq!(get_info(&p), CKR_OK, "still initialized");

        let slot = init_token(&p);
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        data_object(&p, h, b"kept", b"survives finalize", true);
        data_object(&p, h, b"session-only", b"dies with finalize", false);
        assert_eq!(token_info(&p, slot).ulSessionCount, 1);

        let mut reserved = 0u8;
        // SAFETY: a non-NULL pReserved must be refused without being read.
        let rv = unsafe { p.C_Finalize(&mut reserved as *mut u8 as *mut c_void) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        assert_eq!(get_info(&p), CKR_OK, "a refused C_Finalize leaves the module initialized");
        assert_eq!(session_info(&p, h).state, CKS_RW_USER_FUNCTIONS, "and the session logged in");
        assert_eq!(find_all(&p, h).len(), 2);

        finalize(&p);
        // SAFETY: pReserved is NULL.
        assert_eq!(unsafe { p.C_Finalize(null_mut()) }, CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(get_info(&p), CKR_CRYPTOKI_NOT_INITIALIZED);
        let mut si = CK_SESSION_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetSessionInfo(h, &mut si) }, CKR_CRYPTOKI_NOT_INITIALIZED);

        // Initialize again: the module works, sessions and the login did not survive,
        // token objects did and session objects did not.
        initialize(&p);
        assert_eq!(get_info(&p), CKR_OK);
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetSessionInfo(h, &mut si) }, CKR_SESSION_HANDLE_INVALID);
        let ti = token_info(&p, slot);
        assert_eq!(ti.ulSessionCount, 0);
        assert_ne!(ti.flags & CKF_TOKEN_INITIALIZED, 0);
        assert_eq!(ti.label, padded_label(LABEL));
        let h = open(&p, slot);
        assert_eq!(session_info(&p, h).state, CKS_RW_PUBLIC_SESSION);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        let all = find_all(&p, h);
        assert_eq!(all.len(), 1, "only the token object remains");
        assert_eq!(read_bytes(&p, h, all[0], CKA_LABEL), b"kept");
        assert_eq!(read_bytes(&p, h, all[0], CKA_VALUE), b"survives finalize");
        finalize(&p);
    }
);

extern "C" fn create_mutex(_mutex: *mut *mut c_void) -> CK_RV {
    CKR_OK
}
extern "C" fn destroy_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}
extern "C" fn lock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}
extern "C" fn unlock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}

fn init_args(flags: CK_FLAGS, callbacks: [bool; 4]) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: if callbacks[0] { Some(create_mutex) } else { None },
        DestroyMutex: if callbacks[1] { Some(destroy_mutex) } else { None },
        LockMutex: if callbacks[2] { Some(lock_mutex) } else { None },
        UnlockMutex: if callbacks[3] { Some(unlock_mutex) } else { None },
        flags,
        pReserved: null_mut(),
    }
}

fn initialize_with(p: &Pkcs11, args: &mut CK_C_INITIALIZE_ARGS) -> CK_RV {
    // SAFETY: points to a live CK_C_INITIALIZE_ARGS whose callbacks (if any) are valid.
    unsafe { p.C_Initialize(args as *mut CK_C_INITIALIZE_ARGS as *mut c_void) }
}

isolated_test!(
    fn initialize_arguments_are_checked() {
        let p = load_raw();
        let accepted = [
            init_args(0, [false; 4]),
            init_args(CKF_OS_LOCKING_OK, [false; 4]),
            init_args(0, [true; 4]),
            init_args(CKF_OS_LOCKING_OK, [true; 4]),
        ];
        for (i, mut args) in accepted.into_iter().enumerate() {
            assert_eq!(initialize_with(&p, &mut args), CKR_OK, "accepted arguments #{i}");
            assert_eq!(get_info(&p), CKR_OK);
            assert!(!slot_list(&p).is_empty());
            finalize(&p);
        }

        // Some but not all callbacks: every such combination is inconsistent.
        for mask in 1u8..15 {
            let callbacks = [mask & 1 != 0, mask & 2 != 0, mask & 4 != 0, mask & 8 != 0];
            for flags in [0, CKF_OS_LOCKING_OK] {
                let mut args = init_args(flags, callbacks);
                assert_eq!(initialize_with(&p, &mut args), CKR_ARGUMENTS_BAD, "callbacks {callbacks:?}");
                assert_eq!(get_info(&p), CKR_CRYPTOKI_NOT_INITIALIZED, "refused: not initialized");
            }
        }

        let mut reserved = 0u8;
        for callbacks in [[false; 4], [true; 4]] {
            let mut args = init_args(CKF_OS_LOCKING_OK, callbacks);
            args.pReserved = &mut reserved as *mut u8 as *mut c_void;
            assert_eq!(initialize_with(&p, &mut args), CKR_ARGUMENTS_BAD, "pReserved must be NULL");
            assert_eq!(get_info(&p), CKR_CRYPTOKI_NOT_INITIALIZED);
        }

        // The refusals left the module startable.
        let mut args = init_args(CKF_OS_LOCKING_OK, [false; 4]);
        assert_eq!(initialize_with(&p, &mut args), CKR_OK);
        assert_eq!(initialize_with(&p, &mut args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
        let slot = init_token(&p);
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        finalize(&p);
    }
);

// ---------------------------------------------------------------------------------------
// Functions the module does not offer.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn unimplemented_functions_return_function_not_supported() {
        let (p, slot, h) = user_setup();
        let key = aes_key(&p, h, &[1; 32], true);
        let ns = CKR_FUNCTION_NOT_SUPPORTED;
        let mut m = sha256_mechanism();
        let (n, np) = (null_mut::<u8>(), null_mut::<CK_ULONG>());
        let mut objects_before = find_all(&p, h);
        objects_before.sort_unstable();
        // SAFETY: the module reads none of the arguments of these functions; the pointers
        // passed are NULL or point to live locals.
        unsafe {
            assert_eq!(p.C_GetOperationState(h, n, np), ns);
            assert_eq!(p.C_SetOperationState(h, n, 0, 0, 0), ns);
            assert_eq!(p.C_DigestEncryptUpdate(h, n, 0, n, np), ns);
            assert_eq!(p.C_DecryptDigestUpdate(h, n, 0, n, np), ns);
            assert_eq!(p.C_SignEncryptUpdate(h, n, 0, n, np), ns);
            assert_eq!(p.C_DecryptVerifyUpdate(h, n, 0, n, np), ns);
            let v = null_mut::<c_void>();
            assert_eq!(p.C_EncryptMessageBegin(h, v, 0, n, 0), ns);
            assert_eq!(p.C_EncryptMessageNext(h, v, 0, n, 0, n, np, 0), ns);
            assert_eq!(p.C_DecryptMessageBegin(h, v, 0, n, 0), ns);
            assert_eq!(p.C_DecryptMessageNext(h, v, 0, n, 0, n, np, 0), ns);
            assert_eq!(p.C_MessageSignInit(h, &mut m, key), ns);
            assert_eq!(p.C_SignMessage(h, v, 0, n, 0, n, np), ns);
            assert_eq!(p.C_SignMessageBegin(h, v, 0), ns);
            assert_eq!(p.C_SignMessageNext(h, v, 0, n, 0, n, np), ns);
            assert_eq!(p.C_MessageSignFinal(h), ns);
            assert_eq!(p.C_MessageVerifyInit(h, &mut m, key), ns);
            assert_eq!(p.C_VerifyMessage(h, v, 0, n, 0, n, 0), ns);
            assert_eq!(p.C_VerifyMessageBegin(h, v, 0), ns);
            assert_eq!(p.C_VerifyMessageNext(h, v, 0, n, 0, n, 0), ns);
            assert_eq!(p.C_MessageVerifyFinal(h), ns);
            // The legacy parallel-function calls have their own code.
            assert_eq!(p.C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
            assert_eq!(p.C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
        }
        // Nothing was created, and the session is as it was.
        let mut objects_after = find_all(&p, h);
        objects_after.sort_unstable();
        assert_eq!(objects_after, objects_before);
        assert_eq!(session_info(&p, h).state, CKS_RW_USER_FUNCTIONS);
        assert!(!encryption_active(&p, h, key));
        assert_eq!(token_info(&p, slot).ulSessionCount, 1);
    }
);

// ---------------------------------------------------------------------------------------
// NULL pointers and lengths.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn slot_list_follows_the_buffer_protocol() {
        let p = load_raw();
        initialize(&p);
        // SAFETY: a NULL count must be refused.
        assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, null_mut(), null_mut()) }, CKR_ARGUMENTS_BAD);
        let mut buf = [777 as CK_SLOT_ID; 4];
        // SAFETY: as above, with a live list.
        assert_eq!(unsafe { p.C_GetSlotList(CK_TRUE, buf.as_mut_ptr(), null_mut()) }, CKR_ARGUMENTS_BAD);
        assert_eq!(buf, [777; 4]);

        // Before any token: the free slot alone.
        let mut n: CK_ULONG = 0;
        // SAFETY: the list holds 4 slots; the count claims 0.
        assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, buf.as_mut_ptr(), &mut n) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(n, 1);
        assert_eq!(buf, [777; 4], "nothing written");

        init_token(&p);
        for present in [CK_FALSE, CK_TRUE] {
            let mut n: CK_ULONG = 12345;
            // SAFETY: a NULL list asks for the count.
            assert_eq!(unsafe { p.C_GetSlotList(present, null_mut(), &mut n) }, CKR_OK);
            assert_eq!(n, 2, "the token's slot and a free one");
            let mut n: CK_ULONG = 1;
            // SAFETY: the list holds 4 slots; the count claims 1.
            assert_eq!(unsafe { p.C_GetSlotList(present, buf.as_mut_ptr(), &mut n) }, CKR_BUFFER_TOO_SMALL);
            assert_eq!(n, 2, "the count is set to what is needed");
            assert_eq!(buf, [777; 4], "nothing written");
        }
        let mut n: CK_ULONG = 4;
        // SAFETY: the list holds 4 slots.
        assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, buf.as_mut_ptr(), &mut n) }, CKR_OK);
        assert_eq!(n, 2);
        assert_ne!(buf[0], buf[1]);
        assert_eq!(&buf[2..], &[777, 777], "only `n` entries are written");
        let mut n: CK_ULONG = 2;
        let mut exact = [0 as CK_SLOT_ID; 2];
        // SAFETY: the list holds 2 slots.
        assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, exact.as_mut_ptr(), &mut n) }, CKR_OK);
        assert_eq!(&exact, &buf[..2]);
    }
);

isolated_test!(
    fn null_out_pointers_are_refused_and_change_nothing() {
        let (p, slot, h) = user_setup();
        let bad = CKR_ARGUMENTS_BAD;
        // SAFETY: NULL out-pointers must be refused, not written.
        unsafe {
            assert_eq!(p.C_GetInfo(null_mut()), bad);
            assert_eq!(p.C_GetSlotInfo(slot, null_mut()), bad);
            assert_eq!(p.C_GetTokenInfo(slot, null_mut()), bad);
            assert_eq!(p.C_GetSessionInfo(h, null_mut()), bad);
            assert_eq!(p.C_GetMechanismList(slot, null_mut(), null_mut()), bad);
            assert_eq!(p.C_GetMechanismInfo(slot, CKM_AES_GCM, null_mut()), bad);
        }

        // C_OpenSession without phSession opens nothing.
        assert_eq!(token_info(&p, slot).ulSessionCount, 1);
        for flags in [CKF_SERIAL_SESSION, CKF_SERIAL_SESSION | CKF_RW_SESSION] {
            // SAFETY: a NULL phSession must be refused.
            assert_eq!(unsafe { p.C_OpenSession(slot, flags, null_mut(), None, null_mut()) }, bad);
        }
        let ti = token_info(&p, slot);
        assert_eq!((ti.ulSessionCount, ti.ulRwSessionCount), (1, 1), "no session was opened");

        // C_CreateObject with a NULL template and a count, or without phObject, creates nothing.
        assert!(find_all(&p, h).is_empty());
        let mut o: CK_OBJECT_HANDLE = 4242;
        // SAFETY: a NULL template with a non-zero count must be refused.
        assert_eq!(unsafe { p.C_CreateObject(h, null_mut(), 3, &mut o) }, bad);
        assert_eq!(o, 4242);
        let (class, token) = (CKO_DATA, TRUE);
        let mut t = [attr(CKA_CLASS, &class), attr(CKA_TOKEN, &token), attr_bytes(CKA_LABEL, b"no handle")];
        // SAFETY: a NULL phObject must be refused before anything is created.
        assert_eq!(unsafe { p.C_CreateObject(h, t.as_mut_ptr(), 3, null_mut()) }, bad);
        // An attribute whose value pointer is NULL but whose length is not.
        let mut t2 =
            [attr(CKA_CLASS, &class), CK_ATTRIBUTE { type_: CKA_LABEL, pValue: null_mut(), ulValueLen: 5 }];
        // SAFETY: the NULL value with a length must be refused, not read.
        assert_eq!(unsafe { p.C_CreateObject(h, t2.as_mut_ptr(), 2, &mut o) }, bad);
        assert_eq!(o, 4242);
        assert!(find_all(&p, h).is_empty(), "no object was created");
        // A zero-length value with a NULL pointer is fine.
        let mut t3 =
            [attr(CKA_CLASS, &class), CK_ATTRIBUTE { type_: CKA_LABEL, pValue: null_mut(), ulValueLen: 0 }];
        // SAFETY: the NULL value has length 0.
        assert_eq!(unsafe { p.C_CreateObject(h, t3.as_mut_ptr(), 2, &mut o) }, CKR_OK);
        assert_eq!(read_bytes(&p, h, o, CKA_LABEL), b"");
        let created = data_object(&p, h, b"second", b"v", true);

        // C_FindObjects without pulObjectCount: refused, and the search goes on unchanged.
        // SAFETY: NULL template with count 0 matches everything.
        assert_eq!(unsafe { p.C_FindObjectsInit(h, null_mut(), 0) }, CKR_OK);
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        // SAFETY: a NULL count must be refused.
        assert_eq!(unsafe { p.C_FindObjects(h, found.as_mut_ptr(), 4, null_mut()) }, bad);
        let mut n: CK_ULONG = 99;
        // SAFETY: a NULL array with a non-zero maximum must be refused.
        assert_eq!(unsafe { p.C_FindObjects(h, null_mut(), 4, &mut n) }, bad);
        assert_eq!(found, [0; 4]);
        // SAFETY: the array holds 4 handles.
        assert_eq!(unsafe { p.C_FindObjects(h, found.as_mut_ptr(), 4, &mut n) }, CKR_OK);
        assert_eq!(n, 2, "the refused calls consumed no results");
        let mut got = found[..2].to_vec();
        got.sort_unstable();
        let mut want = vec![o, created];
        want.sort_unstable();
        assert_eq!(got, want);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_FindObjectsFinal(h) }, CKR_OK);

        // C_Login with a NULL PIN and a length: refused, no login, no failure counted.
        let h2 = open(&p, slot);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_Logout(h2) }, CKR_OK);
        assert_eq!(session_info(&p, h).state, CKS_RW_PUBLIC_SESSION);
        // SAFETY: a NULL PIN with a non-zero length must be refused, not read.
        assert_eq!(unsafe { p.C_Login(h, CKU_USER, null_mut(), 8) }, bad);
        assert_eq!(session_info(&p, h).state, CKS_RW_PUBLIC_SESSION, "not logged in");
        let ti = token_info(&p, slot);
        assert_eq!(
            ti.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
            0,
            "no failure counted"
        );
        close(&p, h2);

        // C_GenerateRandom into NULL with a length.
        // SAFETY: a NULL buffer with a non-zero length must be refused, not written.
        assert_eq!(unsafe { p.C_GenerateRandom(h, null_mut(), 16) }, bad);
        // SAFETY: a NULL buffer of length 0 is an empty request.
        assert_eq!(unsafe { p.C_GenerateRandom(h, null_mut(), 0) }, CKR_OK);
        let mut random = [0u8; 32];
        // SAFETY: the buffer holds 32 bytes.
        assert_eq!(unsafe { p.C_GenerateRandom(h, random.as_mut_ptr(), 32) }, CKR_OK);
        assert_ne!(random, [0; 32]);

        // C_InitToken with a NULL PIN or a NULL label, on the initialized token (no sessions
        // open) and on the free slot: nothing is re-initialized or created.
        close(&p, h);
        let slots_before = slot_list(&p);
        let free = *slots_before.iter().find(|s| **s != slot).expect("a free slot");
        let mut so = SO_PIN.as_bytes().to_vec();
        let mut label = padded_label("wiped");
        for target in [slot, free] {
            // SAFETY: a NULL PIN must be refused (there is no protected authentication path).
            assert_eq!(unsafe { p.C_InitToken(target, null_mut(), ulen(so.len()), label.as_mut_ptr()) }, bad);
            // SAFETY: a NULL label must be refused, not read.
            assert_eq!(unsafe { p.C_InitToken(target, so.as_mut_ptr(), ulen(so.len()), null_mut()) }, bad);
        }
        assert_eq!(slot_list(&p), slots_before, "no slot was taken");
        assert_eq!(token_info(&p, free).flags & CKF_TOKEN_INITIALIZED, 0, "the free slot is still free");
        let ti = token_info(&p, slot);
        assert_eq!(ti.label, padded_label(LABEL), "the token was not re-initialized");
        assert_ne!(ti.flags & CKF_USER_PIN_INITIALIZED, 0);
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK, "the user PIN still works");
        assert!(find_all(&p, h).contains(&created), "the token object is still there");
    }
);

// ---------------------------------------------------------------------------------------
// C_GetAttributeValue.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn get_attribute_value_follows_the_protocol_for_every_entry() {
        let (p, _slot, h) = user_setup();
        let label = b"hello-label".to_vec();
        let value: Vec<u8> = (0..100u8).collect();
        let data = data_object(&p, h, &label, &value, false);
        let key = aes_key(&p, h, &[9; 32], true);

        // Length queries: every ulValueLen is set.
        let mut t = [query(CKA_CLASS), query(CKA_LABEL), query(CKA_VALUE)];
        // SAFETY: NULL values ask for lengths.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, t.as_mut_ptr(), 3) }, CKR_OK);
        let lens: Vec<CK_ULONG> = t.iter().map(|a| a.ulValueLen).collect();
        assert_eq!(lens, vec![ulen(size_of::<CK_ULONG>()), 11, 100]);
        assert!(t.iter().all(|a| a.pValue.is_null()));

        // One buffer too small: that entry is CK_UNAVAILABLE_INFORMATION, the others filled.
        let (mut class_buf, mut label_buf, mut value_buf) = ([0xeeu8; 8], [0u8; 4], [0u8; 128]);
        let mut t = [
            out(CKA_CLASS, &mut class_buf),
            out(CKA_LABEL, &mut label_buf),
            out(CKA_VALUE, &mut value_buf),
            query(CKA_TOKEN),
        ];
        // SAFETY: every buffer holds its stated length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, t.as_mut_ptr(), 4) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(t[0].ulValueLen, 8);
        assert_eq!(CK_ULONG::from_ne_bytes(class_buf), CKO_DATA);
        assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[2].ulValueLen, 100);
        assert_eq!(&value_buf[..100], &value[..]);
        assert_eq!(t[3].ulValueLen, 1, "a later length query is answered too");

        // A buffer of exactly the right size is enough.
        let mut label_buf = [0u8; 11];
        let mut t = [out(CKA_LABEL, &mut label_buf)];
        // SAFETY: the buffer holds 11 bytes.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, t.as_mut_ptr(), 1) }, CKR_OK);
        assert_eq!((t[0].ulValueLen, &label_buf[..]), (11, &label[..]));

        // A sensitive attribute: CKR_ATTRIBUTE_SENSITIVE, its entry unavailable, others filled.
        let (mut class_buf, mut value_buf, mut type_buf) = ([0u8; 8], [0xaau8; 32], [0u8; 8]);
        let mut t = [
            out(CKA_CLASS, &mut class_buf),
            out(CKA_VALUE, &mut value_buf),
            out(CKA_KEY_TYPE, &mut type_buf),
            query(CKA_VALUE_LEN),
        ];
        // SAFETY: every buffer holds its stated length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, key, t.as_mut_ptr(), 4) }, CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(value_buf, [0xaa; 32], "no secret byte written");
        assert_eq!((t[0].ulValueLen, CK_ULONG::from_ne_bytes(class_buf)), (8, CKO_SECRET_KEY));
        assert_eq!((t[2].ulValueLen, CK_ULONG::from_ne_bytes(type_buf)), (8, CKK_AES));
        assert_eq!(t[3].ulValueLen, 8);
        // A length query of a sensitive value is refused the same way.
        let mut t = [query(CKA_VALUE)];
        // SAFETY: a NULL value asks for the length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, key, t.as_mut_ptr(), 1) }, CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(read_ulong(&p, h, key, CKA_VALUE_LEN), 32);

        // Invalid types (one the data class lacks, one no class has): CKR_ATTRIBUTE_TYPE_INVALID.
        let mut label_buf = [0u8; 32];
        let mut t = [
            query(CKA_MODULUS),
            out(CKA_LABEL, &mut label_buf),
            query(CKA_VENDOR_DEFINED | 0x1234),
            query(CKA_VALUE),
        ];
        // SAFETY: every buffer holds its stated length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, t.as_mut_ptr(), 4) }, CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!((t[1].ulValueLen, &label_buf[..11]), (11, &label[..]));
        assert_eq!(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[3].ulValueLen, 100);

        // All three problems in one call: any of the three codes, every entry processed.
        let (mut small, mut class_buf) = ([0u8; 1], [0u8; 8]);
        let mut t = [
            out(CKA_LABEL, &mut small),
            query(CKA_VALUE),
            query(CKA_MODULUS),
            out(CKA_CLASS, &mut class_buf),
        ];
        // SAFETY: every buffer holds its stated length.
        let rv = unsafe { p.C_GetAttributeValue(h, key, t.as_mut_ptr(), 4) };
        assert!(
            [CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL].contains(&rv),
            "got {rv:#x}"
        );
        assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!((t[3].ulValueLen, CK_ULONG::from_ne_bytes(class_buf)), (8, CKO_SECRET_KEY));

        // NULL template with a count; an empty template; a bad handle.
        // SAFETY: a NULL template with a non-zero count must be refused.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, null_mut(), 2) }, CKR_ARGUMENTS_BAD);
        // SAFETY: an empty template.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, data, null_mut(), 0) }, CKR_OK);
        let mut t = [query(CKA_LABEL)];
        // SAFETY: a NULL value asks for the length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, 0xdead, t.as_mut_ptr(), 1) }, CKR_OBJECT_HANDLE_INVALID);
        // Nothing above changed the object.
        assert_eq!(read_bytes(&p, h, data, CKA_LABEL), label);
        assert_eq!(read_bytes(&p, h, data, CKA_VALUE), value);
    }
);

// ---------------------------------------------------------------------------------------
// Output buffers of cryptographic operations.
// ---------------------------------------------------------------------------------------

isolated_test!(
    fn encrypt_output_buffer_protocol_and_known_answer() {
        let (p, h, k, key) = kat_setup();
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut pt = k.pt.clone();
        let needed = ulen(pt.len() + 16);

        // NULL output: the length, and the operation goes on.
        let mut len: CK_ULONG = 0;
        // SAFETY: the input holds its length; a NULL output asks for the length.
        assert_eq!(unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len, needed);
        assert!(encryption_active(&p, h, key));

        // Too small: CKR_BUFFER_TOO_SMALL with the length, and the operation goes on.
        let mut ct = vec![0u8; 128];
        let mut len: CK_ULONG = needed - 1;
        // SAFETY: the output holds 128 >= len bytes.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), ct.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
        assert_eq!(len, needed);
        assert!(encryption_active(&p, h, key));

        // Enough room: the ciphertext, and the operation is over.
        let mut len: CK_ULONG = 128;
        // SAFETY: the output holds 128 bytes.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), ct.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OK);
        assert_eq!(len, needed);
        assert_eq!(&ct[..len as usize], &k.ct[..], "NIST known answer");
        let mut len: CK_ULONG = 128;
        // SAFETY: as above.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), ct.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);
        assert!(!encryption_active(&p, h, key));

        // Multi-part encryption gives the same bytes (GCM releases everything at the end).
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut produced = Vec::new();
        for part in pt.chunks_mut(25) {
            let mut buf = [0u8; 64];
            let mut len: CK_ULONG = 64;
            // SAFETY: the part and the 64-byte output hold their lengths.
            let rv = unsafe {
                p.C_EncryptUpdate(h, part.as_mut_ptr(), ulen(part.len()), buf.as_mut_ptr(), &mut len)
            };
            assert_eq!(rv, CKR_OK);
            produced.extend_from_slice(&buf[..len as usize]);
        }
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL output asks for the length.
        assert_eq!(unsafe { p.C_EncryptFinal(h, null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len as usize, k.ct.len() - produced.len());
        let mut buf = vec![0u8; 128];
        let mut small: CK_ULONG = len - 1;
        // SAFETY: the output holds 128 bytes.
        assert_eq!(unsafe { p.C_EncryptFinal(h, buf.as_mut_ptr(), &mut small) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(small, len);
        let mut len: CK_ULONG = 128;
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_EncryptFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OK);
        produced.extend_from_slice(&buf[..len as usize]);
        assert_eq!(produced, k.ct);
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_EncryptFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OPERATION_NOT_INITIALIZED);
    }
);

isolated_test!(
    fn encrypt_init_with_null_mechanism_cancels_and_active_init_is_refused() {
        let (p, h, k, key) = kat_setup();
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        // A second init while active is refused, and the first operation is intact.
        assert_eq!(encrypt_init(&p, h, key, &[0; 12], b"other"), CKR_OPERATION_ACTIVE);
        let mut pt = k.pt.clone();
        let mut ct = vec![0u8; 128];
        let mut len: CK_ULONG = 128;
        // SAFETY: the output holds 128 bytes.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), ct.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OK);
        assert_eq!(&ct[..len as usize], &k.ct[..], "the first init's parameters were kept");

        // NULL mechanism ends an active encryption (PKCS#11 3.0).
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        // SAFETY: a NULL mechanism cancels.
        assert_eq!(unsafe { p.C_EncryptInit(h, null_mut(), key) }, CKR_OK);
        let mut len: CK_ULONG = 128;
        // SAFETY: the output holds 128 bytes.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), ct.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);
        // The same for decryption, without touching an encryption.
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        // SAFETY: a NULL mechanism cancels.
        assert_eq!(unsafe { p.C_DecryptInit(h, null_mut(), key) }, CKR_OK);
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK, "decryption was ended");
        assert!(encryption_active(&p, h, key), "encryption was not");
    }
);

isolated_test!(
    fn gcm_parameters_of_the_wrong_shape_are_refused_and_start_nothing() {
        let (p, h, k, key) = kat_setup();
        let (mut iv, mut aad) = (k.iv.clone(), k.aad.clone());
        let size = size_of::<CK_GCM_PARAMS>();

        let mut params = gcm_params(&mut iv, &mut aad, 128);
        for wrong in [0, 1, size - 8, size - 1, size + 1, size + 8] {
            let mut m = gcm_mechanism(&mut params);
            m.ulParameterLen = ulen(wrong);
            // SAFETY: the parameter points to a live CK_GCM_PARAMS; a stated length other
            // than its size must be refused before anything is read.
            let rv = unsafe { p.C_EncryptInit(h, &mut m, key) };
            assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID, "len {wrong}");
            assert!(!encryption_active(&p, h, key), "nothing started (len {wrong})");
            // SAFETY: as above.
            assert_eq!(unsafe { p.C_DecryptInit(h, &mut m, key) }, CKR_MECHANISM_PARAM_INVALID);
        }
        // NULL parameter.
        let mut m =
            CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: null_mut(), ulParameterLen: ulen(size) };
        // SAFETY: a NULL parameter must be refused, not read.
        assert_eq!(unsafe { p.C_EncryptInit(h, &mut m, key) }, CKR_MECHANISM_PARAM_INVALID);
        // A NULL IV with a length, a 257-byte IV (1 to 256 are taken), a 100-bit tag (no
        // length SP 800-38D allows): refused.
        let mut null_iv = gcm_params(&mut iv, &mut aad, 128);
        null_iv.pIv = null_mut();
        let mut long_iv = vec![0u8; 257];
        let mut long = gcm_params(&mut long_iv, &mut aad, 128);
        let mut short_tag = gcm_params(&mut iv, &mut aad, 100);
        for params in [&mut null_iv, &mut long, &mut short_tag] {
            let mut m = gcm_mechanism(params);
            // SAFETY: the parameter and its buffers are live (or NULL, to be refused).
            assert_eq!(unsafe { p.C_EncryptInit(h, &mut m, key) }, CKR_MECHANISM_PARAM_INVALID);
            assert!(!encryption_active(&p, h, key));
        }
        // The good shape works after all the refusals.
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
    }
);

isolated_test!(
    fn decrypt_single_and_multi_part_follow_the_protocol() {
        let (p, h, k, key) = kat_setup();
        let mut ct = k.ct.clone();

        // Single part with a length query and a short buffer first.
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL output asks for the length.
        assert_eq!(unsafe { p.C_Decrypt(h, ct.as_mut_ptr(), ulen(ct.len()), null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len as usize, k.pt.len());
        let mut pt = vec![0u8; 100];
        let mut small: CK_ULONG = 10;
        // SAFETY: the output holds 100 bytes.
        let rv = unsafe { p.C_Decrypt(h, ct.as_mut_ptr(), ulen(ct.len()), pt.as_mut_ptr(), &mut small) };
        assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
        assert_eq!(small as usize, k.pt.len());
        let mut len: CK_ULONG = 100;
        // SAFETY: as above.
        let rv = unsafe { p.C_Decrypt(h, ct.as_mut_ptr(), ulen(ct.len()), pt.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OK);
        assert_eq!(&pt[..len as usize], &k.pt[..]);
        // SAFETY: as above.
        let rv = unsafe { p.C_Decrypt(h, ct.as_mut_ptr(), ulen(ct.len()), pt.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);

        // Multi-part: updates, then a final with a length query and a short buffer.
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut produced = Vec::new();
        for part in ct.chunks_mut(17) {
            let mut buf = [0u8; 64];
            let mut len: CK_ULONG = 0;
            // SAFETY: a NULL output asks for the length.
            let rv =
                unsafe { p.C_DecryptUpdate(h, part.as_mut_ptr(), ulen(part.len()), null_mut(), &mut len) };
            assert_eq!(rv, CKR_OK);
            let mut len: CK_ULONG = 64;
            // SAFETY: the output holds 64 bytes.
            let rv = unsafe {
                p.C_DecryptUpdate(h, part.as_mut_ptr(), ulen(part.len()), buf.as_mut_ptr(), &mut len)
            };
            assert_eq!(rv, CKR_OK);
            produced.extend_from_slice(&buf[..len as usize]);
        }
        let remaining = k.pt.len() - produced.len();
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL output asks for the length.
        assert_eq!(unsafe { p.C_DecryptFinal(h, null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len as usize, remaining);
        let mut buf = vec![0u8; 100];
        if remaining > 0 {
            let mut small: CK_ULONG = ulen(remaining - 1);
            // SAFETY: the output holds 100 bytes.
            assert_eq!(unsafe { p.C_DecryptFinal(h, buf.as_mut_ptr(), &mut small) }, CKR_BUFFER_TOO_SMALL);
            assert_eq!(small as usize, remaining);
        }
        let mut len: CK_ULONG = 100;
        // SAFETY: the output holds 100 bytes.
        assert_eq!(unsafe { p.C_DecryptFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OK);
        produced.extend_from_slice(&buf[..len as usize]);
        assert_eq!(produced, k.pt);
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_DecryptFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OPERATION_NOT_INITIALIZED);

        // A tampered tag: refused, nothing released, and the operation is over.
        let mut bad = k.ct.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut out_buf = vec![0u8; 100];
        let mut len: CK_ULONG = 100;
        // SAFETY: the output holds 100 bytes.
        let rv = unsafe { p.C_Decrypt(h, bad.as_mut_ptr(), ulen(bad.len()), out_buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_ENCRYPTED_DATA_INVALID);
        assert_eq!(out_buf, vec![0u8; 100], "no unauthenticated plaintext released");
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK, "the failed operation was ended");
    }
);

isolated_test!(
    fn digest_output_buffer_protocol() {
        let (p, slot) = setup();
        let h = open(&p, slot);
        let want = hex(SHA256_ABC);
        let mut data = b"abc".to_vec();

        let mut m = sha256_mechanism();
        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OPERATION_ACTIVE);
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL output asks for the length.
        assert_eq!(unsafe { p.C_Digest(h, data.as_mut_ptr(), 3, null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len, 32);
        let mut buf = [0u8; 64];
        let mut small: CK_ULONG = 31;
        // SAFETY: the output holds 64 bytes.
        let rv = unsafe { p.C_Digest(h, data.as_mut_ptr(), 3, buf.as_mut_ptr(), &mut small) };
        assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
        assert_eq!(small, 32);
        let mut len: CK_ULONG = 64;
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_Digest(h, data.as_mut_ptr(), 3, buf.as_mut_ptr(), &mut len) }, CKR_OK);
        assert_eq!(&buf[..len as usize], &want[..], "the queries did not feed the data twice");
        // SAFETY: as above.
        let rv = unsafe { p.C_Digest(h, data.as_mut_ptr(), 3, buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);

        // Multi-part, with the protocol on C_DigestFinal.
        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);
        for b in data.iter_mut() {
            // SAFETY: one live byte.
            assert_eq!(unsafe { p.C_DigestUpdate(h, b, 1) }, CKR_OK);
        }
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL output asks for the length.
        assert_eq!(unsafe { p.C_DigestFinal(h, null_mut(), &mut len) }, CKR_OK);
        assert_eq!(len, 32);
        let mut small: CK_ULONG = 16;
        // SAFETY: the output holds 64 bytes.
        assert_eq!(unsafe { p.C_DigestFinal(h, buf.as_mut_ptr(), &mut small) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(small, 32);
        let mut buf = [0u8; 32];
        let mut len: CK_ULONG = 32;
        // SAFETY: the output holds 32 bytes.
        assert_eq!(unsafe { p.C_DigestFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OK);
        assert_eq!(&buf[..], &want[..]);
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_DigestFinal(h, buf.as_mut_ptr(), &mut len) }, CKR_OPERATION_NOT_INITIALIZED);
    }
);

isolated_test!(
    fn session_cancel_ends_only_the_named_operations() {
        let (p, h, k, key) = kat_setup();
        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut m = sha256_mechanism();
        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);

        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(h, CKF_ENCRYPT) }, CKR_OK);
        let mut pt = k.pt.clone();
        let mut buf = vec![0u8; 128];
        let mut len: CK_ULONG = 128;
        // SAFETY: the output holds 128 bytes.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED, "the encryption was ended");
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OPERATION_ACTIVE, "decryption goes on");
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OPERATION_ACTIVE, "the digest goes on");
        // The decryption that went on still works.
        let mut ct = k.ct.clone();
        let mut len: CK_ULONG = 128;
        // SAFETY: the output holds 128 bytes.
        let rv = unsafe { p.C_Decrypt(h, ct.as_mut_ptr(), ulen(ct.len()), buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_OK);
        assert_eq!(&buf[..len as usize], &k.pt[..]);

        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(h, CKF_DIGEST) }, CKR_OK);
        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK, "the digest was ended");
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(0xbad, CKF_ENCRYPT) }, CKR_SESSION_HANDLE_INVALID);
    }
);

isolated_test!(
    fn mechanism_list_follows_the_buffer_protocol() {
        let (p, slot) = setup();
        let mut n: CK_ULONG = 0;
        // SAFETY: a NULL list asks for the count.
        assert_eq!(unsafe { p.C_GetMechanismList(slot, null_mut(), &mut n) }, CKR_OK);
        assert!(n >= 3, "at least AES key generation, AES-GCM and SHA-256");
        let mut buf = vec![CKM_VENDOR_DEFINED; n as usize + 2];
        let mut small = n - 1;
        // SAFETY: the list holds n + 2 entries.
        assert_eq!(unsafe { p.C_GetMechanismList(slot, buf.as_mut_ptr(), &mut small) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(small, n);
        assert!(buf.iter().all(|m| *m == CKM_VENDOR_DEFINED), "nothing written");
        let mut zero: CK_ULONG = 0;
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_GetMechanismList(slot, buf.as_mut_ptr(), &mut zero) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(zero, n);
        let mut len = n + 2;
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_GetMechanismList(slot, buf.as_mut_ptr(), &mut len) }, CKR_OK);
        assert_eq!(len, n);
        assert_eq!(&buf[n as usize..], &[CKM_VENDOR_DEFINED; 2]);
        let list = &buf[..n as usize];
        for m in [CKM_AES_KEY_GEN, CKM_AES_GCM, CKM_SHA256] {
            assert!(list.contains(&m), "{m:#x} listed");
        }
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), list.len(), "no duplicates");
        // Every listed mechanism has info.
        for m in list {
            let mut info = CK_MECHANISM_INFO::default();
            // SAFETY: out-pointer to a live local.
            assert_eq!(unsafe { p.C_GetMechanismInfo(slot, *m, &mut info) }, CKR_OK);
            assert_ne!(info.flags, 0);
        }
        // SAFETY: a NULL count must be refused.
        assert_eq!(unsafe { p.C_GetMechanismList(slot, buf.as_mut_ptr(), null_mut()) }, CKR_ARGUMENTS_BAD);
        let mut n2: CK_ULONG = 0;
        // SAFETY: a NULL list asks for the count.
        assert_eq!(unsafe { p.C_GetMechanismList(0xbad, null_mut(), &mut n2) }, CKR_SLOT_ID_INVALID);
        assert_eq!(n2, 0);
        // The free slot offers the same mechanisms.
        let free = *slot_list(&p).iter().find(|s| **s != slot).unwrap();
        let mut n3: CK_ULONG = 0;
        // SAFETY: a NULL list asks for the count.
        assert_eq!(unsafe { p.C_GetMechanismList(free, null_mut(), &mut n3) }, CKR_OK);
        assert_eq!(n3, n);
    }
);

// PKCS#11 3.0 §5.8–5.10: `C_Encrypt`, `C_Decrypt` and the `*Final` calls always end the
// operation unless they return `CKR_BUFFER_TOO_SMALL` or answer a length query, and an
// `*Update` that fails ends it too; bad arguments are no exception. Every case is checked
// (and the session reset) before the test reports all that were wrong.
isolated_test!(
    fn failed_cipher_and_digest_calls_end_the_operation() {
        let (p, h, k, key) = kat_setup();
        let mut pt = k.pt.clone();
        let mut buf = vec![0u8; 128];
        let mut problems = Vec::new();
        let mut m = sha256_mechanism();
        let reset = || {
            // SAFETY: no pointers.
            assert_eq!(unsafe { p.C_SessionCancel(h, CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST) }, CKR_OK);
        };

        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        // SAFETY: a NULL length pointer must be refused, not written.
        let rv = unsafe { p.C_Encrypt(h, pt.as_mut_ptr(), ulen(pt.len()), buf.as_mut_ptr(), null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        if encryption_active(&p, h, key) {
            problems.push(
                "C_Encrypt(pulEncryptedDataLen = NULL) -> CKR_ARGUMENTS_BAD left the encryption active",
            );
        }
        reset();

        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut len: CK_ULONG = 128;
        // SAFETY: a NULL input with a non-zero length must be refused, not read.
        let rv = unsafe { p.C_EncryptUpdate(h, null_mut(), 16, buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        if encryption_active(&p, h, key) {
            problems
                .push("C_EncryptUpdate(pPart = NULL, 16) -> CKR_ARGUMENTS_BAD left the encryption active");
        }
        reset();

        assert_eq!(encrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        // SAFETY: a NULL length pointer must be refused, not written.
        let rv = unsafe { p.C_EncryptFinal(h, buf.as_mut_ptr(), null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        if encryption_active(&p, h, key) {
            problems.push("C_EncryptFinal(pulLen = NULL) -> CKR_ARGUMENTS_BAD left the encryption active");
        }
        reset();

        // A too-short GCM ciphertext (shorter than the tag).
        let mut short = [0u8; 8];
        assert_eq!(decrypt_init(&p, h, key, &k.iv, &k.aad), CKR_OK);
        let mut len: CK_ULONG = 128;
        // SAFETY: the input holds 8 bytes and the output 128.
        let rv = unsafe { p.C_Decrypt(h, short.as_mut_ptr(), 8, buf.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_ENCRYPTED_DATA_LEN_RANGE);
        if decrypt_init(&p, h, key, &k.iv, &k.aad) != CKR_OK {
            problems.push(
                "C_Decrypt(8-byte GCM input) -> CKR_ENCRYPTED_DATA_LEN_RANGE left the decryption active",
            );
        }
        reset();

        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);
        let mut data = *b"abc";
        // SAFETY: a NULL length pointer must be refused, not written.
        let rv = unsafe { p.C_Digest(h, data.as_mut_ptr(), 3, buf.as_mut_ptr(), null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        // SAFETY: a live mechanism without parameter.
        if unsafe { p.C_DigestInit(h, &mut m) } != CKR_OK {
            problems.push("C_Digest(pulDigestLen = NULL) -> CKR_ARGUMENTS_BAD left the digest active");
        }
        reset();

        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);
        // SAFETY: a NULL part with a non-zero length must be refused, not read.
        assert_eq!(unsafe { p.C_DigestUpdate(h, null_mut(), 5) }, CKR_ARGUMENTS_BAD);
        // SAFETY: a live mechanism without parameter.
        if unsafe { p.C_DigestInit(h, &mut m) } != CKR_OK {
            problems.push("C_DigestUpdate(pPart = NULL, 5) -> CKR_ARGUMENTS_BAD left the digest active");
        }
        reset();

        // SAFETY: a live mechanism without parameter.
        assert_eq!(unsafe { p.C_DigestInit(h, &mut m) }, CKR_OK);
        // SAFETY: a NULL length pointer must be refused, not written.
        assert_eq!(unsafe { p.C_DigestFinal(h, buf.as_mut_ptr(), null_mut()) }, CKR_ARGUMENTS_BAD);
        // SAFETY: a live mechanism without parameter.
        if unsafe { p.C_DigestInit(h, &mut m) } != CKR_OK {
            problems.push("C_DigestFinal(pulDigestLen = NULL) -> CKR_ARGUMENTS_BAD left the digest active");
        }
        reset();

        assert!(problems.is_empty(), "operations not ended by a failed call:\n{}", problems.join("\n"));
    }
);
