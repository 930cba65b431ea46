//! Attribute arrays (`CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`) through the raw C ABI:
//! stored with their key, read back by the nested `C_GetAttributeValue` protocol, and
//! enforced by `C_WrapKey` and `C_UnwrapKey`.
#![allow(unsafe_code)]

mod common;

use std::ffi::c_void;
use std::mem::{size_of, size_of_val};
use std::ptr::null_mut;

use common::raw::*;
use common::raw_wrap::unwrap_key;
use cryptoki_sys::*;

const KW: CK_MECHANISM =
    CK_MECHANISM { mechanism: CKM_AES_KEY_WRAP, pParameter: null_mut(), ulParameterLen: 0 };

/// A session AES key usable for wrapping, with the given wrap and unwrap templates.
fn wrapping_key(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    wrap_template: &mut [CK_ATTRIBUTE],
    unwrap_template: &mut [CK_ATTRIBUTE],
) -> CK_OBJECT_HANDLE {
    let (class, key_type) = (CKO_SECRET_KEY, CKK_AES);
    let value = [0x42u8; 32];
    let mut t = vec![attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type), attr_bytes(CKA_VALUE, &value)];
    if !wrap_template.is_empty() {
        t.push(CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: wrap_template.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(size_of_val(wrap_template)),
        });
    }
    if !unwrap_template.is_empty() {
        t.push(CK_ATTRIBUTE {
            type_: CKA_UNWRAP_TEMPLATE,
            pValue: unwrap_template.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(size_of_val(unwrap_template)),
        });
    }
    create(p, h, &mut t)
}

/// An extractable session AES key with a label.
fn extractable_key(p: &Pkcs11, h: CK_SESSION_HANDLE, label: &[u8]) -> CK_OBJECT_HANDLE {
    let (yes, no) = (CK_TRUE, CK_FALSE);
    let extra = [attr_bytes(CKA_LABEL, label), attr(CKA_EXTRACTABLE, &yes), attr(CKA_SENSITIVE, &no)];
    create_secret_key(p, h, CKK_AES, &[7u8; 16], &extra)
}

fn wrap(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> (CK_RV, Vec<u8>) {
    let mut m = KW;
    let mut buf = [0u8; 64];
    let mut len = ulen(buf.len());
    // SAFETY: the mechanism and the output buffer are live locals of the stated sizes.
    let rv = unsafe { p.C_WrapKey(h, &mut m, wrapping, key, buf.as_mut_ptr(), &mut len) };
    (rv, buf[..if rv == CKR_OK { len as usize } else { 0 }].to_vec())
}

fn unwrap(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    unwrapping: CK_OBJECT_HANDLE,
    blob: &[u8],
    template: &mut [CK_ATTRIBUTE],
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut m = KW;
    unwrap_key(p, h, &mut m, unwrapping, blob, template)
}

isolated_test!(
    fn a_wrap_template_is_read_back_entry_by_entry() {
        let (p, _, h) = user_setup();
        let (key_type, yes) = (CKK_AES, CK_TRUE);
        let mut wrap_template = [attr(CKA_KEY_TYPE, &key_type), attr(CKA_EXTRACTABLE, &yes)];
        let wrapping = wrapping_key(&p, h, &mut wrap_template, &mut []);

        // A NULL value asks for the array's size in bytes.
        let mut t = [query(CKA_WRAP_TEMPLATE)];
        // SAFETY: a NULL value asks for the length.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, wrapping, t.as_mut_ptr(), 1) }, CKR_OK);
        assert_eq!(t[0].ulValueLen, ulen(2 * size_of::<CK_ATTRIBUTE>()));

        // An array of entries with NULL values gets each entry's type and length.
        let mut entries = [query(0), query(0)];
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: entries.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(2 * size_of::<CK_ATTRIBUTE>()),
        }];
        // SAFETY: the nested array holds two live entries.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, wrapping, t.as_mut_ptr(), 1) }, CKR_OK);
        assert_eq!((entries[0].type_, entries[0].ulValueLen), (CKA_KEY_TYPE, ulen(size_of::<CK_ULONG>())));
        assert_eq!((entries[1].type_, entries[1].ulValueLen), (CKA_EXTRACTABLE, 1));

        // With buffers, the values themselves.
        let (mut kt, mut ex): (CK_ULONG, CK_BBOOL) = (0, 0);
        let mut entries = [
            CK_ATTRIBUTE {
                type_: 0,
                pValue: &mut kt as *mut _ as *mut c_void,
                ulValueLen: ulen(size_of::<CK_ULONG>()),
            },
            CK_ATTRIBUTE { type_: 0, pValue: &mut ex as *mut _ as *mut c_void, ulValueLen: 1 },
        ];
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: entries.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(2 * size_of::<CK_ATTRIBUTE>()),
        }];
        // SAFETY: the nested entries point to live locals of their stated sizes.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, wrapping, t.as_mut_ptr(), 1) }, CKR_OK);
        assert_eq!((kt, ex), (CKK_AES, CK_TRUE));

        // Room for one entry only: too small, the length marked unavailable.
        let mut one = [query(0)];
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: one.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(size_of::<CK_ATTRIBUTE>()),
        }];
        // SAFETY: the nested array holds one live entry, as stated.
        assert_eq!(unsafe { p.C_GetAttributeValue(h, wrapping, t.as_mut_ptr(), 1) }, CKR_BUFFER_TOO_SMALL);
        assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    }
);

isolated_test!(
    fn malformed_attribute_arrays_are_refused() {
        let (p, _, h) = user_setup();
        let before = find_all(&p, h).len();
        // A length that is not a whole number of CK_ATTRIBUTEs (shorter than the array).
        let mut nested = [attr(CKA_LABEL, &0u8)];
        let short = CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: nested.as_mut_ptr() as *mut c_void,
            ulValueLen: 5,
        };
        let (rv, _) = try_create(&p, h, &mut secret_template(&CKK_AES, &[1u8; 16], &[short]));
        assert_eq!(rv, CKR_ATTRIBUTE_VALUE_INVALID);
        // A wrap template on a data object, which has none.
        let data = CKO_DATA;
        let mut d = [
            attr(CKA_CLASS, &data),
            CK_ATTRIBUTE {
                type_: CKA_WRAP_TEMPLATE,
                pValue: nested.as_mut_ptr() as *mut c_void,
                ulValueLen: ulen(size_of::<CK_ATTRIBUTE>()),
            },
        ];
        let (rv, _) = try_create(&p, h, &mut d);
        assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(find_all(&p, h).len(), before, "nothing was created");
    }
);

isolated_test!(
    fn the_wrap_template_decides_which_keys_may_leave() {
        let (p, _, h) = user_setup();
        let mut wrap_template = [attr_bytes(CKA_LABEL, b"exportable")];
        let wrapping = wrapping_key(&p, h, &mut wrap_template, &mut []);
        let allowed = extractable_key(&p, h, b"exportable");
        let other = extractable_key(&p, h, b"internal");
        let (rv, blob) = wrap(&p, h, wrapping, allowed);
        assert_eq!(rv, CKR_OK);
        assert_eq!(blob.len(), 24);
        let (rv, blob) = wrap(&p, h, wrapping, other);
        assert_eq!(rv, CKR_KEY_NOT_WRAPPABLE);
        assert!(blob.is_empty());
        // Without a template, both may leave.
        let free = wrapping_key(&p, h, &mut [], &mut []);
        assert_eq!(wrap(&p, h, free, other).0, CKR_OK);
    }
);

isolated_test!(
    fn the_unwrap_template_is_imposed_and_may_not_be_contradicted() {
        let (p, _, h) = user_setup();
        let (yes, no) = (CK_TRUE, CK_FALSE);
        let mut unwrap_template = [attr(CKA_SENSITIVE, &yes), attr(CKA_EXTRACTABLE, &no)];
        let unwrapping = wrapping_key(&p, h, &mut [], &mut unwrap_template);
        let plain_wrapper = wrapping_key(&p, h, &mut [], &mut []);
        // Wrap a key under the unwrapping key (same value as the plain wrapper: both 0x42).
        let key = extractable_key(&p, h, b"k");
        let (rv, blob) = wrap(&p, h, plain_wrapper, key);
        assert_eq!(rv, CKR_OK);

        let (class, key_type) = (CKO_SECRET_KEY, CKK_AES);
        let before = find_all(&p, h).len();
        // Contradicting the imposed template is refused, and nothing is made.
        let mut contradicting =
            [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type), attr(CKA_EXTRACTABLE, &yes)];
        let (rv, handle) = unwrap(&p, h, unwrapping, &blob, &mut contradicting);
        assert_eq!((rv, handle), (CKR_TEMPLATE_INCONSISTENT, CK_INVALID_HANDLE));
        assert_eq!(find_all(&p, h).len(), before);
        // Otherwise the imposed attributes are on the new key.
        let mut plain = [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type)];
        let (rv, unwrapped) = unwrap(&p, h, unwrapping, &blob, &mut plain);
        assert_eq!(rv, CKR_OK);
        let flag = |o, kind| {
            let mut b: CK_BBOOL = 0xFF;
            let mut t = [attr(kind, &b)];
            t[0].pValue = &mut b as *mut CK_BBOOL as *mut c_void;
            // SAFETY: the entry points to a live CK_BBOOL.
            assert_eq!(unsafe { p.C_GetAttributeValue(h, o, t.as_mut_ptr(), 1) }, CKR_OK);
            b
        };
        assert_eq!((flag(unwrapped, CKA_SENSITIVE), flag(unwrapped, CKA_EXTRACTABLE)), (CK_TRUE, CK_FALSE));
        // Under the plain wrapper the caller's template alone decides.
        let mut extractable =
            [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type), attr(CKA_EXTRACTABLE, &yes)];
        let (rv, free) = unwrap(&p, h, plain_wrapper, &blob, &mut extractable);
        assert_eq!(rv, CKR_OK);
        assert_eq!(flag(free, CKA_EXTRACTABLE), CK_TRUE);
    }
);
