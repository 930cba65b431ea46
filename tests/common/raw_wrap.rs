//! `C_WrapKey` and `C_UnwrapKey` through `cryptoki_sys::Pkcs11`, for the tests that need what
//! the `cryptoki` client cannot express: mechanisms it lacks, the length-query protocol, and
//! the handle a refused `C_UnwrapKey` leaves behind.
#![allow(dead_code)]
#![allow(unsafe_code)]

use std::ptr::null_mut;

use cryptoki::object::ObjectHandle;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_INVALID_HANDLE, CK_MECHANISM, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV,
    CK_SESSION_HANDLE, CK_ULONG, CKR_OK, Pkcs11,
};

use super::raw::ulen;

/// `Ok` for `CKR_OK`, else the code.
pub fn check(rv: CK_RV) -> Result<(), CK_RV> {
    if rv == CKR_OK { Ok(()) } else { Err(rv) }
}

/// A mechanism without parameter.
pub fn mech_none(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 }
}

/// The object behind a handle the module returned through a raw call.
#[track_caller]
pub fn object(h: CK_OBJECT_HANDLE) -> ObjectHandle {
    assert_ne!(h, CK_INVALID_HANDLE);
    // SAFETY: `h` is a handle the module has just returned for a new object.
    unsafe { ObjectHandle::new_from_raw(h) }
}

/// `C_WrapKey`, asking for the length first (a NULL output), then into a buffer of that size.
pub fn wrap_key(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, CK_RV> {
    let mut len: CK_ULONG = 0;
    // SAFETY: `m` is live (its parameter, if any, outlives the call); a NULL output asks for
    // the length.
    check(unsafe { p.C_WrapKey(h, m, wrapping, key, null_mut(), &mut len) })?;
    let mut out = vec![0u8; len as usize];
    // SAFETY: as above; the output holds `len` bytes.
    check(unsafe { p.C_WrapKey(h, m, wrapping, key, out.as_mut_ptr(), &mut len) })?;
    out.truncate(len as usize);
    Ok(out)
}

/// `C_UnwrapKey`; returns the code and what was left in `*phKey` (set to `CK_INVALID_HANDLE`
/// before the call).
pub fn unwrap_key(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &mut [CK_ATTRIBUTE],
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut wrapped = wrapped.to_vec();
    let mut key = CK_INVALID_HANDLE;
    // SAFETY: the mechanism, the blob and the template (whose values the caller keeps alive)
    // are live for the call, each of its stated length; out-pointer to a local.
    let rv = unsafe {
        p.C_UnwrapKey(
            h,
            m,
            unwrapping,
            wrapped.as_mut_ptr(),
            ulen(wrapped.len()),
            template.as_mut_ptr(),
            ulen(template.len()),
            &mut key,
        )
    };
    (rv, key)
}
