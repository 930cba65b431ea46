//! Helpers for tests that call the C ABI directly through `cryptoki_sys::Pkcs11`: each wraps
//! one call with valid arguments, so that a test's own `unsafe` blocks are the deliberately
//! unusual calls.
#![allow(dead_code)]

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use cryptoki_sys::*;

use super::{LABEL, SO_PIN, USER_PIN, module_path};

pub fn load_raw() -> Pkcs11 {
    // SAFETY: loads the module under test; its only load-time work is Rust statics.
    unsafe { Pkcs11::new(module_path()) }.expect("load libecm_hsm.so")
}

pub fn ulen(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

pub fn initialize(p: &Pkcs11) {
    // SAFETY: NULL initialization arguments are allowed.
    assert_eq!(unsafe { p.C_Initialize(null_mut()) }, CKR_OK, "C_Initialize");
}

pub fn finalize(p: &Pkcs11) {
    // SAFETY: pReserved must be NULL.
    assert_eq!(unsafe { p.C_Finalize(null_mut()) }, CKR_OK, "C_Finalize");
}

pub fn get_info(p: &Pkcs11) -> CK_RV {
    let mut info = CK_INFO::default();
    // SAFETY: out-pointer to a live local.
    unsafe { p.C_GetInfo(&mut info) }
}

pub fn slot_list(p: &Pkcs11) -> Vec<CK_SLOT_ID> {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL list with a live count asks for the count.
    assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, null_mut(), &mut n) }, CKR_OK);
    let mut list = vec![0; n as usize];
    // SAFETY: the list holds `n` elements.
    assert_eq!(unsafe { p.C_GetSlotList(CK_FALSE, list.as_mut_ptr(), &mut n) }, CKR_OK);
    list.truncate(n as usize);
    list
}

pub fn token_info(p: &Pkcs11, slot: CK_SLOT_ID) -> CK_TOKEN_INFO {
    let mut info = CK_TOKEN_INFO::default();
    // SAFETY: out-pointer to a live local.
    assert_eq!(unsafe { p.C_GetTokenInfo(slot, &mut info) }, CKR_OK, "C_GetTokenInfo");
    info
}

pub fn session_info(p: &Pkcs11, h: CK_SESSION_HANDLE) -> CK_SESSION_INFO {
    let mut info = CK_SESSION_INFO::default();
    // SAFETY: out-pointer to a live local.
    assert_eq!(unsafe { p.C_GetSessionInfo(h, &mut info) }, CKR_OK, "C_GetSessionInfo");
    info
}

pub fn open(p: &Pkcs11, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut h = CK_INVALID_HANDLE;
    // SAFETY: no callback; out-pointer to a live local.
    let rv = unsafe { p.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut h) };
    assert_eq!(rv, CKR_OK, "C_OpenSession");
    h
}

pub fn close(p: &Pkcs11, h: CK_SESSION_HANDLE) {
    // SAFETY: no pointers.
    assert_eq!(unsafe { p.C_CloseSession(h) }, CKR_OK, "C_CloseSession");
}

pub fn login(p: &Pkcs11, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
    let mut pin = pin.as_bytes().to_vec();
    // SAFETY: the PIN buffer holds its stated length.
    unsafe { p.C_Login(h, user, pin.as_mut_ptr(), ulen(pin.len())) }
}

pub fn padded_label(text: &str) -> [u8; 32] {
    let mut label = [b' '; 32];
    label[..text.len()].copy_from_slice(text.as_bytes());
    label
}

/// Initializes the first slot's token with the SO and user PINs, leaving no session open.
pub fn init_token(p: &Pkcs11) -> CK_SLOT_ID {
    let slot = slot_list(p)[0];
    let mut so = SO_PIN.as_bytes().to_vec();
    let mut label = padded_label(LABEL);
    // SAFETY: the PIN holds its stated length and the label 32 bytes.
    let rv = unsafe { p.C_InitToken(slot, so.as_mut_ptr(), ulen(so.len()), label.as_mut_ptr()) };
    assert_eq!(rv, CKR_OK, "C_InitToken");
    let h = open(p, slot);
    assert_eq!(login(p, h, CKU_SO, SO_PIN), CKR_OK);
    let mut user = USER_PIN.as_bytes().to_vec();
    // SAFETY: the PIN holds its stated length.
    assert_eq!(unsafe { p.C_InitPIN(h, user.as_mut_ptr(), ulen(user.len())) }, CKR_OK, "C_InitPIN");
    close(p, h);
    slot
}

/// Loaded, initialized, a token ready; returns the module and the token's slot.
pub fn setup() -> (Pkcs11, CK_SLOT_ID) {
    let p = load_raw();
    initialize(&p);
    let slot = init_token(&p);
    (p, slot)
}

/// `setup()` plus a read/write session logged in as the user.
pub fn user_setup() -> (Pkcs11, CK_SLOT_ID, CK_SESSION_HANDLE) {
    let (p, slot) = setup();
    let h = open(&p, slot);
    assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK, "C_Login");
    (p, slot, h)
}

pub fn attr<T>(kind: CK_ATTRIBUTE_TYPE, value: &T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: kind, pValue: value as *const T as *mut c_void, ulValueLen: ulen(size_of::<T>()) }
}

pub fn attr_bytes(kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: kind, pValue: value.as_ptr() as *mut c_void, ulValueLen: ulen(value.len()) }
}

/// `C_GenerateKeyPair` with the parameterless mechanism `kind` and the two templates (whose
/// values must be live); the code and the two handles the module wrote.
pub fn generate_key_pair(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    kind: CK_MECHANISM_TYPE,
    public: &mut [CK_ATTRIBUTE],
    private: &mut [CK_ATTRIBUTE],
) -> (CK_RV, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut m = CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 };
    let (mut pk, mut sk) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
    // SAFETY: the mechanism, both templates and the values they point to are live for the
    // call; the out-pointers are locals.
    let rv = unsafe {
        p.C_GenerateKeyPair(
            h,
            &mut m,
            public.as_mut_ptr(),
            ulen(public.len()),
            private.as_mut_ptr(),
            ulen(private.len()),
            &mut pk,
            &mut sk,
        )
    };
    (rv, pk, sk)
}

/// `CK_GCM_PARAMS` over `iv` (which must outlive its use) with no AAD (a NULL pointer) and a
/// 128-bit tag: what most GCM tests need of the parameter block.
pub fn gcm_params(iv: &mut [u8]) -> CK_GCM_PARAMS {
    CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: ulen(iv.len()),
        ulIvBits: ulen(iv.len() * 8),
        pAAD: null_mut(),
        ulAADLen: 0,
        ulTagBits: 128,
    }
}

/// An entry asking only for the length.
pub fn query(kind: CK_ATTRIBUTE_TYPE) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: 0 }
}

pub fn out(kind: CK_ATTRIBUTE_TYPE, buf: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: kind, pValue: buf.as_mut_ptr() as *mut c_void, ulValueLen: ulen(buf.len()) }
}

/// `C_CreateObject` of `template` (whose values must be live); the code and the handle written.
pub fn try_create(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    template: &mut [CK_ATTRIBUTE],
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut o = CK_INVALID_HANDLE;
    // SAFETY: the template's values are live for the call; out-pointer to a local.
    let rv = unsafe { p.C_CreateObject(h, template.as_mut_ptr(), ulen(template.len()), &mut o) };
    (rv, o)
}

pub fn create(p: &Pkcs11, h: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> CK_OBJECT_HANDLE {
    let (rv, o) = try_create(p, h, template);
    assert_eq!(rv, CKR_OK, "C_CreateObject");
    assert_ne!(o, CK_INVALID_HANDLE);
    o
}

pub const TRUE: CK_BBOOL = CK_TRUE;
pub const FALSE: CK_BBOOL = CK_FALSE;

pub fn data_object(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    label: &[u8],
    value: &[u8],
    token: bool,
) -> CK_OBJECT_HANDLE {
    let class = CKO_DATA;
    let token = if token { TRUE } else { FALSE };
    let mut t = [
        attr(CKA_CLASS, &class),
        attr(CKA_TOKEN, &token),
        attr_bytes(CKA_LABEL, label),
        attr_bytes(CKA_VALUE, value),
    ];
    create(p, h, &mut t)
}

/// The template of a session secret key of `key_type` holding `value`, the `extra` entries
/// after class, key type and value; it points into its arguments.
pub fn secret_template(key_type: &CK_KEY_TYPE, value: &[u8], extra: &[CK_ATTRIBUTE]) -> Vec<CK_ATTRIBUTE> {
    let mut t =
        vec![attr(CKA_CLASS, &CKO_SECRET_KEY), attr(CKA_KEY_TYPE, key_type), attr_bytes(CKA_VALUE, value)];
    t.extend_from_slice(extra);
    t
}

/// Creates the key of [`secret_template`]; its handle.
pub fn create_secret_key(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    key_type: CK_KEY_TYPE,
    value: &[u8],
    extra: &[CK_ATTRIBUTE],
) -> CK_OBJECT_HANDLE {
    create(p, h, &mut secret_template(&key_type, value, extra))
}

/// A session AES key with `value`; readable if not `sensitive`.
pub fn aes_key(p: &Pkcs11, h: CK_SESSION_HANDLE, value: &[u8], sensitive: bool) -> CK_OBJECT_HANDLE {
    let (sensitive, extractable) = if sensitive { (TRUE, FALSE) } else { (FALSE, TRUE) };
    let extra =
        [attr_bytes(CKA_LABEL, b"aes"), attr(CKA_SENSITIVE, &sensitive), attr(CKA_EXTRACTABLE, &extractable)];
    create_secret_key(p, h, CKK_AES, value, &extra)
}

/// Every object the session can see matching `template`.
pub fn find(p: &Pkcs11, h: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> Vec<CK_OBJECT_HANDLE> {
    let ptr = if template.is_empty() { null_mut() } else { template.as_mut_ptr() };
    // SAFETY: the template's values are live for the call.
    assert_eq!(unsafe { p.C_FindObjectsInit(h, ptr, ulen(template.len())) }, CKR_OK, "C_FindObjectsInit");
    let mut found = Vec::new();
    loop {
        let mut batch = [CK_INVALID_HANDLE; 16];
        let mut n: CK_ULONG = 0;
        // SAFETY: the array holds 16 handles; out-pointer to a local.
        let rv = unsafe { p.C_FindObjects(h, batch.as_mut_ptr(), 16, &mut n) };
        assert_eq!(rv, CKR_OK, "C_FindObjects");
        if n == 0 {
            break;
        }
        found.extend_from_slice(&batch[..n as usize]);
    }
    // SAFETY: no pointers.
    assert_eq!(unsafe { p.C_FindObjectsFinal(h) }, CKR_OK, "C_FindObjectsFinal");
    found
}

pub fn find_all(p: &Pkcs11, h: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    find(p, h, &mut [])
}

pub fn read_ulong(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
) -> CK_ULONG {
    let mut v: CK_ULONG = 0;
    let mut t = [CK_ATTRIBUTE {
        type_: kind,
        pValue: &mut v as *mut CK_ULONG as *mut c_void,
        ulValueLen: ulen(size_of::<CK_ULONG>()),
    }];
    // SAFETY: the entry points to a live CK_ULONG.
    assert_eq!(unsafe { p.C_GetAttributeValue(h, o, t.as_mut_ptr(), 1) }, CKR_OK);
    assert_eq!(t[0].ulValueLen, ulen(size_of::<CK_ULONG>()));
    v
}

pub fn read_bytes(p: &Pkcs11, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, kind: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut t = [query(kind)];
    // SAFETY: a NULL value asks for the length.
    assert_eq!(unsafe { p.C_GetAttributeValue(h, o, t.as_mut_ptr(), 1) }, CKR_OK);
    let mut buf = vec![0u8; t[0].ulValueLen as usize];
    let mut t = [out(kind, &mut buf)];
    // SAFETY: the buffer holds the stated length.
    assert_eq!(unsafe { p.C_GetAttributeValue(h, o, t.as_mut_ptr(), 1) }, CKR_OK);
    buf.truncate(t[0].ulValueLen as usize);
    buf
}
