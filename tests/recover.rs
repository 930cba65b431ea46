//! `C_SignRecover`/`C_VerifyRecover` with `CKM_RSA_PKCS` and `CKM_RSA_X_509`, through the raw
//! C ABI (the `cryptoki` client has no recovery calls).
#![allow(unsafe_code)]

mod common;

use std::ptr::null_mut;

use common::raw::*;
use cryptoki_sys::*;

/// A session RSA-2048 key pair; `sign_recover` sets CKA_SIGN_RECOVER on the private key.
fn key_pair(p: &Pkcs11, h: CK_SESSION_HANDLE, sign_recover: bool) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let bits: CK_ULONG = 2048;
    let recover = if sign_recover { CK_TRUE } else { CK_FALSE };
    let mut public = [attr(CKA_MODULUS_BITS, &bits)];
    let mut private = [attr(CKA_SIGN_RECOVER, &recover)];
    let mut m =
        CK_MECHANISM { mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
    let (mut pk, mut sk) = (0, 0);
    // SAFETY: mechanism, templates and out-pointers are live locals.
    let rv = unsafe {
        p.C_GenerateKeyPair(h, &mut m, public.as_mut_ptr(), 1, private.as_mut_ptr(), 1, &mut pk, &mut sk)
    };
    assert_eq!(rv, CKR_OK, "C_GenerateKeyPair");
    (pk, sk)
}

fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 }
}

/// Runs one recovery step: size query first (which must leave the operation active), then
/// the call itself. Returns the code and the output.
fn recover(p: &Pkcs11, h: CK_SESSION_HANDLE, sign: bool, input: &[u8]) -> (CK_RV, Vec<u8>) {
    let mut input = input.to_vec();
    let mut len: CK_ULONG = 0;
    let call = |out: *mut u8, len: &mut CK_ULONG, input: &mut [u8]| {
        // SAFETY: the input and the output buffer are live and of the stated lengths.
        unsafe {
            if sign {
                p.C_SignRecover(h, input.as_mut_ptr(), ulen(input.len()), out, len)
            } else {
                p.C_VerifyRecover(h, input.as_mut_ptr(), ulen(input.len()), out, len)
            }
        }
    };
    let rv = call(null_mut(), &mut len, &mut input);
    if rv != CKR_OK {
        return (rv, Vec::new());
    }
    let mut out = vec![0u8; len as usize];
    let rv = call(out.as_mut_ptr(), &mut len, &mut input);
    out.truncate(if rv == CKR_OK { len as usize } else { 0 });
    (rv, out)
}

isolated_test!(
    fn rsa_pkcs_signatures_recover_their_message() {
        let (p, _, h) = user_setup();
        let (public, private) = key_pair(&p, h, true);
        for kind in [CKM_RSA_PKCS, CKM_RSA_X_509] {
            let mut m = mechanism(kind);
            // SAFETY: live mechanism.
            assert_eq!(unsafe { p.C_SignRecoverInit(h, &mut m, private) }, CKR_OK);
            let (rv, signature) = recover(&p, h, true, b"the message is in the signature");
            assert_eq!((rv, signature.len()), (CKR_OK, 256));
            // SAFETY: live mechanism.
            assert_eq!(unsafe { p.C_VerifyRecoverInit(h, &mut m, public) }, CKR_OK);
            let (rv, recovered) = recover(&p, h, false, &signature);
            assert_eq!(rv, CKR_OK);
            assert!(recovered.ends_with(b"the message is in the signature"));
            if kind == CKM_RSA_PKCS {
                assert_eq!(recovered, b"the message is in the signature");
                // A forged signature recovers nothing, and the operation is over.
                let mut forged = signature.clone();
                forged[7] ^= 0x40;
                // SAFETY: live mechanism.
                assert_eq!(unsafe { p.C_VerifyRecoverInit(h, &mut m, public) }, CKR_OK);
                assert_eq!(recover(&p, h, false, &forged).0, CKR_SIGNATURE_INVALID);
                assert_eq!(recover(&p, h, false, &signature).0, CKR_OPERATION_NOT_INITIALIZED);
            }
        }
    }
);

isolated_test!(
    fn recovery_needs_its_own_usage_flag_and_fitting_input() {
        let (p, _, h) = user_setup();
        let (public, private) = key_pair(&p, h, false);
        let mut m = mechanism(CKM_RSA_PKCS);
        // SAFETY: live mechanism.
        assert_eq!(unsafe { p.C_SignRecoverInit(h, &mut m, private) }, CKR_KEY_FUNCTION_NOT_PERMITTED);
        let (_, private) = key_pair(&p, h, true);
        // SAFETY: live mechanism.
        assert_eq!(unsafe { p.C_SignRecoverInit(h, &mut m, private) }, CKR_OK);
        assert_eq!(recover(&p, h, true, &[1u8; 246]).0, CKR_DATA_LEN_RANGE, "more than k - 11 bytes");
        // A hash-and-sign mechanism has no recovery.
        let mut hashed = mechanism(CKM_SHA256_RSA_PKCS);
        // SAFETY: live mechanism.
        assert_eq!(unsafe { p.C_SignRecoverInit(h, &mut hashed, private) }, CKR_MECHANISM_INVALID);
        // A signature of the wrong length.
        // SAFETY: live mechanism.
        assert_eq!(unsafe { p.C_VerifyRecoverInit(h, &mut m, public) }, CKR_OK);
        assert_eq!(recover(&p, h, false, &[1u8; 255]).0, CKR_SIGNATURE_LEN_RANGE);
    }
);
