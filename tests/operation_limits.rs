//! Lengths a multi-part operation cannot hold, through the raw C ABI: a caller passing a
//! short buffer with a huge length is answered at once with the length-range code, before
//! the module reads the buffer, and the operation ends as PKCS#11 3.0 says of a failed
//! update (5.9, 5.10: "a call ... which results in an error terminates the current ...
//! operation"). Each test then shows the session still works.
#![allow(unsafe_code)]

mod common;

use std::ffi::c_void;
use std::mem::size_of;

use common::raw::*;
use cryptoki_sys::*;

/// What the README states as the cap on what a multi-part operation holds (64 MiB).
const CAP: usize = 64 << 20;

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];

/// Starts an AES-GCM encryption (`encrypt`) or decryption under `key`.
fn gcm_init(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, encrypt: bool) -> CK_RV {
    let mut iv = IV;
    let mut params = gcm_params(&mut iv);
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: &mut params as *mut CK_GCM_PARAMS as *mut c_void,
        ulParameterLen: ulen(size_of::<CK_GCM_PARAMS>()),
    };
    // SAFETY: the mechanism and the IV it points to are live for the call.
    unsafe { if encrypt { p.C_EncryptInit(h, &mut m, key) } else { p.C_DecryptInit(h, &mut m, key) } }
}

/// One update of the active encryption or decryption over `part`, claiming `claimed` bytes.
fn update(p: &Pkcs11, h: CK_SESSION_HANDLE, encrypt: bool, part: &mut [u8], claimed: CK_ULONG) -> CK_RV {
    let mut out = [0xAAu8; 64];
    let mut out_len = ulen(out.len());
    // SAFETY: deliberately a false length for `part` in the attacks; the module must refuse
    // it without reading past `part`. The output buffer holds `out_len` bytes.
    let rv = unsafe {
        if encrypt {
            p.C_EncryptUpdate(h, part.as_mut_ptr(), claimed, out.as_mut_ptr(), &mut out_len)
        } else {
            p.C_DecryptUpdate(h, part.as_mut_ptr(), claimed, out.as_mut_ptr(), &mut out_len)
        }
    };
    if rv != CKR_OK {
        assert_eq!(out, [0xAA; 64], "a refused update writes no output");
    }
    rv
}

/// The final call of the active encryption or decryption, its output.
fn finish(p: &Pkcs11, h: CK_SESSION_HANDLE, encrypt: bool) -> (CK_RV, Vec<u8>) {
    let mut out = vec![0u8; 256];
    let mut out_len = ulen(out.len());
    // SAFETY: the output buffer holds `out_len` bytes.
    let rv = unsafe {
        if encrypt {
            p.C_EncryptFinal(h, out.as_mut_ptr(), &mut out_len)
        } else {
            p.C_DecryptFinal(h, out.as_mut_ptr(), &mut out_len)
        }
    };
    out.truncate(out_len as usize);
    (rv, out)
}

/// GCM ciphertext and tag of `plaintext` under the test key, by a whole operation.
fn gcm_encrypt(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, plaintext: &[u8]) -> Vec<u8> {
    assert_eq!(gcm_init(p, h, key, true), CKR_OK);
    let mut part = plaintext.to_vec();
    assert_eq!(update(p, h, true, &mut part, ulen(plaintext.len())), CKR_OK);
    let (rv, out) = finish(p, h, true);
    assert_eq!(rv, CKR_OK);
    out
}

isolated_test!(
    fn gcm_decrypt_update_with_a_huge_length_is_refused_before_the_buffer_is_read() {
        let (p, _slot, h) = user_setup();
        let key = aes_key(&p, h, &KEY, true);
        let sealed = gcm_encrypt(&p, h, key, b"the record");
        for claimed in [0xffff_ffff as CK_ULONG, CK_ULONG::MAX, ulen(CAP + 1)] {
            assert_eq!(gcm_init(&p, h, key, false), CKR_OK);
            let mut short = [1u8; 16];
            assert_eq!(
                update(&p, h, false, &mut short, claimed),
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                "{claimed:#x}"
            );
            // The failed update ended the decryption.
            assert_eq!(finish(&p, h, false).0, CKR_OPERATION_NOT_INITIALIZED);
        }
        // Nothing else changed: a new decryption of the real ciphertext works.
        assert_eq!(gcm_init(&p, h, key, false), CKR_OK);
        let mut part = sealed.clone();
        assert_eq!(update(&p, h, false, &mut part, ulen(sealed.len())), CKR_OK);
        assert_eq!(finish(&p, h, false), (CKR_OK, b"the record".to_vec()));
    }
);

isolated_test!(
    fn gcm_refuses_a_part_beyond_what_it_holds_counting_earlier_parts() {
        let (p, _slot, h) = user_setup();
        let key = aes_key(&p, h, &KEY, true);
        assert_eq!(gcm_init(&p, h, key, true), CKR_OK);
        let mut held = vec![3u8; 1024];
        assert_eq!(update(&p, h, true, &mut held, 1024), CKR_OK);
        // What is left of the cap after 1 KiB, plus one: claimed over a 16-byte buffer.
        let mut short = [1u8; 16];
        assert_eq!(update(&p, h, true, &mut short, ulen(CAP - 1024 + 1)), CKR_DATA_LEN_RANGE);
        assert_eq!(finish(&p, h, true).0, CKR_OPERATION_NOT_INITIALIZED);
        // A part that fits exactly is taken (the cap counts what is held).
        assert_eq!(gcm_init(&p, h, key, true), CKR_OK);
        let mut big = vec![5u8; CAP];
        assert_eq!(update(&p, h, true, &mut big[..1024], 1024), CKR_OK);
        assert_eq!(update(&p, h, true, &mut big, ulen(CAP - 1024)), CKR_OK);
        let mut one = [0u8; 1];
        assert_eq!(update(&p, h, true, &mut one, 1), CKR_DATA_LEN_RANGE, "the cap is reached");
    }
);

isolated_test!(
    fn block_mode_updates_with_a_huge_length_are_refused_too() {
        let (p, _slot, h) = user_setup();
        let key = aes_key(&p, h, &KEY, true);
        let mut iv = [0u8; 16];
        for (mechanism, encrypt, code) in [
            (CKM_AES_CBC_PAD, false, CKR_ENCRYPTED_DATA_LEN_RANGE),
            (CKM_AES_CBC_PAD, true, CKR_DATA_LEN_RANGE),
            (CKM_AES_CTR, true, CKR_DATA_LEN_RANGE),
        ] {
            let mut ctr = CK_AES_CTR_PARAMS { ulCounterBits: 128, cb: [0; 16] };
            let mut m = match mechanism {
                CKM_AES_CTR => CK_MECHANISM {
                    mechanism,
                    pParameter: &mut ctr as *mut CK_AES_CTR_PARAMS as *mut c_void,
                    ulParameterLen: ulen(size_of::<CK_AES_CTR_PARAMS>()),
                },
                _ => {
                    CK_MECHANISM { mechanism, pParameter: iv.as_mut_ptr() as *mut c_void, ulParameterLen: 16 }
                }
            };
            // SAFETY: the mechanism and its parameter are live for the call.
            let rv = unsafe {
                if encrypt { p.C_EncryptInit(h, &mut m, key) } else { p.C_DecryptInit(h, &mut m, key) }
            };
            assert_eq!(rv, CKR_OK);
            let mut short = [1u8; 16];
            assert_eq!(update(&p, h, encrypt, &mut short, 0xffff_ffff), code, "{mechanism:#x}");
            assert_eq!(finish(&p, h, encrypt).0, CKR_OPERATION_NOT_INITIALIZED, "{mechanism:#x}");
        }
    }
);
