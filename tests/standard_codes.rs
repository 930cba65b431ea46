//! Return codes decided against the standard's lists (issue 13): where a code was outside a
//! function's list and the standard's text does not allow it, the function now answers one
//! from its list, and nothing changed (tests/abi_fuzz/allow.txt cites the codes kept).
#![allow(unsafe_code)]

mod common;

use std::mem::size_of;
use std::ptr::null_mut;

use common::raw::*;
use cryptoki_sys::*;

isolated_test!(
    fn generate_key_with_a_size_the_key_type_cannot_have_is_an_invalid_attribute_value() {
        let (p, _slot, h) = user_setup();
        let before = find_all(&p, h);
        let mut m = CK_MECHANISM { mechanism: CKM_AES_KEY_GEN, pParameter: null_mut(), ulParameterLen: 0 };
        for len in [17 as CK_ULONG, 0, 64, CK_ULONG::MAX] {
            let mut t = [attr(CKA_VALUE_LEN, &len)];
            let mut key = CK_INVALID_HANDLE;
            // SAFETY: the mechanism, template and out-pointer are live locals.
            let rv = unsafe { p.C_GenerateKey(h, &mut m, t.as_mut_ptr(), 1, &mut key) };
            // Not CKR_KEY_SIZE_RANGE, which C_GenerateKey's list lacks.
            assert_eq!(rv, CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN {len}");
            assert_eq!(key, CK_INVALID_HANDLE);
        }
        assert_eq!(find_all(&p, h), before, "no key was made");
        let len: CK_ULONG = 32;
        let mut t = [attr(CKA_VALUE_LEN, &len)];
        let mut key = CK_INVALID_HANDLE;
        // SAFETY: as above.
        assert_eq!(unsafe { p.C_GenerateKey(h, &mut m, t.as_mut_ptr(), 1, &mut key) }, CKR_OK);
    }
);

/// An EC P-256 key pair for signing and deriving.
fn ec_pair(p: &Pkcs11, h: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut m = CK_MECHANISM { mechanism: CKM_EC_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
    let mut public = [attr_bytes(CKA_EC_PARAMS, P256), attr(CKA_VERIFY, &TRUE)];
    let mut private = [attr(CKA_SIGN, &TRUE), attr(CKA_DERIVE, &FALSE)];
    let (mut pk, mut sk) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
    // SAFETY: the mechanism, templates and out-pointers are live locals.
    let rv = unsafe {
        p.C_GenerateKeyPair(h, &mut m, public.as_mut_ptr(), 2, private.as_mut_ptr(), 2, &mut pk, &mut sk)
    };
    assert_eq!(rv, CKR_OK);
    (pk, sk)
}

isolated_test!(
    fn a_multi_part_step_of_a_single_part_mechanism_is_operation_not_initialized_and_ends_the_operation() {
        let (p, _slot, h) = user_setup();
        let (_, sk) = ec_pair(&p, h);
        let mut m = CK_MECHANISM { mechanism: CKM_ECDSA, pParameter: null_mut(), ulParameterLen: 0 };
        let mut digest = [5u8; 32];
        let mut sig = [0u8; 64];
        let mut n = ulen(sig.len());
        // SAFETY: the mechanism and buffers are live locals of the stated lengths.
        unsafe {
            assert_eq!(p.C_SignInit(h, &mut m, sk), CKR_OK);
            // No multi-part operation of this kind is active (mechanism::SINGLE_PART_ONLY: a
            // code of C_SignUpdate's own list, as Kryoptic answers).
            assert_eq!(p.C_SignUpdate(h, digest.as_mut_ptr(), 32), CKR_OPERATION_NOT_INITIALIZED);
            // The failed step ended the operation.
            assert_eq!(
                p.C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut n),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // Nothing else changed: single-part signing works.
            assert_eq!(p.C_SignInit(h, &mut m, sk), CKR_OK);
            assert_eq!(p.C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut n), CKR_OK);
        }
    }
);

isolated_test!(
    fn wrap_unwrap_and_derive_with_a_key_not_permitted_that_use_answer_key_function_not_permitted() {
        let (p, _slot, h) = user_setup();
        // Neither CKA_WRAP nor CKA_UNWRAP (and the EC key has no CKA_DERIVE).
        let (class, key_type) = (CKO_SECRET_KEY, CKK_AES);
        let kek =
            create_secret_key(&p, h, key_type, &[1; 32], &[attr(CKA_WRAP, &FALSE), attr(CKA_UNWRAP, &FALSE)]);
        let other = aes_key(&p, h, &[2; 32], false);
        let (_, sk) = ec_pair(&p, h);
        let before = find_all(&p, h);
        let mut kw =
            CK_MECHANISM { mechanism: CKM_AES_KEY_WRAP_KWP, pParameter: null_mut(), ulParameterLen: 0 };
        let mut out = [0u8; 64];
        let mut n = ulen(out.len());
        let mut wrapped = [0u8; 40];
        let mut key = CK_INVALID_HANDLE;
        let mut t = [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type)];
        let mut public = [4u8; 65];
        let mut params = CK_ECDH1_DERIVE_PARAMS {
            kdf: CKD_NULL,
            ulSharedDataLen: 0,
            pSharedData: null_mut(),
            ulPublicDataLen: 65,
            pPublicData: public.as_mut_ptr(),
        };
        let mut ecdh = CK_MECHANISM {
            mechanism: CKM_ECDH1_DERIVE,
            pParameter: (&raw mut params).cast(),
            ulParameterLen: ulen(size_of::<CK_ECDH1_DERIVE_PARAMS>()),
        };
        // SAFETY: mechanisms, templates and buffers are live locals of the stated lengths.
        unsafe {
            assert_eq!(
                p.C_WrapKey(h, &mut kw, kek, other, out.as_mut_ptr(), &mut n),
                CKR_KEY_FUNCTION_NOT_PERMITTED
            );
            let rv = p.C_UnwrapKey(h, &mut kw, kek, wrapped.as_mut_ptr(), 40, t.as_mut_ptr(), 2, &mut key);
            assert_eq!(rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
            let rv = p.C_DeriveKey(h, &mut ecdh, sk, t.as_mut_ptr(), 2, &mut key);
            assert_eq!(rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        assert_eq!(key, CK_INVALID_HANDLE);
        assert_eq!(find_all(&p, h), before, "no key was made");
    }
);
