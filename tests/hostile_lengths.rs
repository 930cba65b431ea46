//! Lengths no valid call can have, through the raw C ABI (issue 13, items 2 and 16): each is
//! stated over a pointer to an address that is never mapped, so that the module reading the
//! caller's memory at all would crash this (isolated) test. Each is refused with a code from
//! the function's list in the standard (README, "Hostile lengths"), and nothing changed:
//! no failed login counted, no object made, the session still works.
#![allow(unsafe_code)]

mod common;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use common::raw::*;
use common::{SO_PIN, USER_PIN};
use cryptoki_sys::*;

/// Lengths beyond every cap: the one that reads far past a short buffer, the one beyond
/// `isize::MAX`, and just beyond the largest cap (a template value, 64 MiB; the data cap).
const HUGE: [CK_ULONG; 3] = [0xffff_ffff, CK_ULONG::MAX, (64 << 20) + 1];

/// An address in the first page above NULL that Linux never maps (`vm.mmap_min_addr`): any
/// read of it faults.
fn unmapped<T>() -> *mut T {
    0x1000 as *mut T
}

/// A session AES key that may encrypt, decrypt, sign and unwrap.
fn key(p: &Pkcs11, h: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let extra = [
        attr(CKA_ENCRYPT, &TRUE),
        attr(CKA_DECRYPT, &TRUE),
        attr(CKA_SIGN, &TRUE),
        attr(CKA_VERIFY, &TRUE),
        attr(CKA_UNWRAP, &TRUE),
    ];
    create_secret_key(p, h, CKK_AES, &[7; 32], &extra)
}

fn gcm(iv: &mut [u8; 12], aad: (*mut u8, CK_ULONG)) -> CK_GCM_PARAMS {
    CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: aad.0,
        ulAADLen: aad.1,
        ulTagBits: 128,
    }
}

/// Starts an AES-GCM encryption (`encrypt`) or decryption under `key`.
fn gcm_init(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, encrypt: bool) {
    let mut iv = [9u8; 12];
    let mut params = gcm(&mut iv, (null_mut(), 0));
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: (&raw mut params).cast(),
        ulParameterLen: ulen(size_of::<CK_GCM_PARAMS>()),
    };
    // SAFETY: the mechanism and its parameter are live for the call.
    let rv =
        unsafe { if encrypt { p.C_EncryptInit(h, &mut m, key) } else { p.C_DecryptInit(h, &mut m, key) } };
    assert_eq!(rv, CKR_OK);
}

/// A GCM encryption and decryption of a short message, which must work after each attack.
fn round_trip(p: &Pkcs11, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) {
    gcm_init(p, h, key, true);
    let mut data = *b"still works";
    let mut sealed = [0u8; 64];
    let mut n = ulen(sealed.len());
    // SAFETY: the buffers hold their stated lengths.
    let rv = unsafe { p.C_Encrypt(h, data.as_mut_ptr(), ulen(data.len()), sealed.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_OK);
    gcm_init(p, h, key, false);
    let mut opened = [0u8; 64];
    let mut m = ulen(opened.len());
    // SAFETY: the buffers hold their stated lengths.
    let rv = unsafe { p.C_Decrypt(h, sealed.as_mut_ptr(), n, opened.as_mut_ptr(), &mut m) };
    assert_eq!((rv, &opened[..m as usize]), (CKR_OK, &data[..]));
}

isolated_test!(
    fn pins_and_names_beyond_any_valid_length_are_refused_unread_and_count_no_failure() {
        let (p, slot) = setup();
        let h = open(&p, slot);
        let counts = CKF_USER_PIN_COUNT_LOW | CKF_SO_PIN_COUNT_LOW;
        for huge in HUGE {
            // SAFETY: the PIN and name pointers are never to be read (see `unmapped`).
            unsafe {
                assert_eq!(p.C_Login(h, CKU_USER, unmapped(), huge), CKR_ARGUMENTS_BAD, "{huge:#x}");
                assert_eq!(p.C_Login(h, CKU_SO, unmapped(), huge), CKR_ARGUMENTS_BAD);
                let mut pin = USER_PIN.as_bytes().to_vec();
                let rv = p.C_LoginUser(h, CKU_USER, pin.as_mut_ptr(), ulen(pin.len()), unmapped(), huge);
                assert_eq!(rv, CKR_ARGUMENTS_BAD);
                let mut label = padded_label("other");
                assert_eq!(p.C_InitToken(slot, unmapped(), huge, label.as_mut_ptr()), CKR_ARGUMENTS_BAD);
            }
            assert_eq!(token_info(&p, slot).flags & counts, 0, "a refused length is not a PIN tried");
        }
        // One byte beyond the longest PIN is a length range error too, from the functions
        // whose lists have it.
        let long = vec![b'x'; 256];
        assert_eq!(login(&p, h, CKU_SO, SO_PIN), CKR_OK);
        for huge in HUGE.into_iter().chain([ulen(long.len())]) {
            let pin = if huge == ulen(long.len()) { long.as_ptr() as *mut u8 } else { unmapped() };
            let mut old = USER_PIN.as_bytes().to_vec();
            // SAFETY: a huge length is refused before its pointer is read; `long` holds 256 bytes.
            unsafe {
                assert_eq!(p.C_InitPIN(h, pin, huge), CKR_PIN_LEN_RANGE, "{huge:#x}");
                assert_eq!(p.C_SetPIN(h, old.as_mut_ptr(), ulen(old.len()), pin, huge), CKR_PIN_LEN_RANGE);
                assert_eq!(p.C_SetPIN(h, pin, huge, old.as_mut_ptr(), ulen(old.len())), CKR_PIN_LEN_RANGE);
            }
        }
        close(&p, h);
        // Nothing changed: both PINs still log in.
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(token_info(&p, slot).flags & counts, 0);
    }
);

isolated_test!(
    fn templates_and_mechanism_parameters_beyond_any_valid_length_are_refused_unread() {
        let (p, _slot, h) = user_setup();
        let k = key(&p, h);
        let before = find_all(&p, h);
        let mut handle = CK_INVALID_HANDLE;
        for huge in HUGE {
            // SAFETY: huge counts and lengths over pointers never to be read.
            unsafe {
                assert_eq!(
                    p.C_CreateObject(h, unmapped(), huge, &mut handle),
                    CKR_ARGUMENTS_BAD,
                    "{huge:#x}"
                );
                assert_eq!(p.C_FindObjectsInit(h, unmapped(), huge), CKR_ARGUMENTS_BAD);
                assert_eq!(p.C_GetAttributeValue(h, k, unmapped(), huge), CKR_ARGUMENTS_BAD);
                assert_eq!(p.C_SetAttributeValue(h, k, unmapped(), huge), CKR_ARGUMENTS_BAD);
                // A value length beyond any attribute's.
                let class = CKO_DATA;
                let mut t = [
                    attr(CKA_CLASS, &class),
                    CK_ATTRIBUTE { type_: CKA_VALUE, pValue: unmapped(), ulValueLen: huge },
                ];
                assert_eq!(p.C_CreateObject(h, t.as_mut_ptr(), 2, &mut handle), CKR_ATTRIBUTE_VALUE_INVALID);
                // A parameter block, and a byte string inside one.
                let mut m =
                    CK_MECHANISM { mechanism: CKM_AES_CBC, pParameter: unmapped(), ulParameterLen: huge };
                assert_eq!(p.C_EncryptInit(h, &mut m, k), CKR_MECHANISM_PARAM_INVALID);
                let mut iv = [9u8; 12];
                let mut params = gcm(&mut iv, (unmapped(), huge));
                let mut m = CK_MECHANISM {
                    mechanism: CKM_AES_GCM,
                    pParameter: (&raw mut params).cast(),
                    ulParameterLen: ulen(size_of::<CK_GCM_PARAMS>()),
                };
                assert_eq!(p.C_EncryptInit(h, &mut m, k), CKR_MECHANISM_PARAM_INVALID);
                // A wrapped key.
                let mut iv = [0u8; 16];
                let mut m = CK_MECHANISM {
                    mechanism: CKM_AES_CBC_PAD,
                    pParameter: iv.as_mut_ptr() as *mut c_void,
                    ulParameterLen: 16,
                };
                let rv = p.C_UnwrapKey(h, &mut m, k, unmapped(), huge, null_mut(), 0, &mut handle);
                assert_eq!(rv, CKR_WRAPPED_KEY_LEN_RANGE);
            }
        }
        assert_eq!(find_all(&p, h), before, "no object was made");
        round_trip(&p, h, k);
    }
);

isolated_test!(
    fn single_part_data_beyond_any_valid_length_is_refused_unread() {
        let (p, _slot, h) = user_setup();
        let k = key(&p, h);
        let mut out = [0xAAu8; 64];
        for huge in HUGE {
            let mut n = ulen(out.len());
            let o = out.as_mut_ptr();
            // SAFETY: huge lengths over pointers never to be read; the output holds `n` bytes.
            unsafe {
                gcm_init(&p, h, k, true);
                assert_eq!(p.C_Encrypt(h, unmapped(), huge, o, &mut n), CKR_DATA_LEN_RANGE, "{huge:#x}");
                gcm_init(&p, h, k, false);
                assert_eq!(p.C_Decrypt(h, unmapped(), huge, o, &mut n), CKR_ENCRYPTED_DATA_LEN_RANGE);
                let mut m = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
                assert_eq!(p.C_DigestInit(h, &mut m), CKR_OK);
                assert_eq!(p.C_Digest(h, unmapped(), huge, o, &mut n), CKR_ARGUMENTS_BAD);
                let mut m =
                    CK_MECHANISM { mechanism: CKM_AES_CMAC, pParameter: null_mut(), ulParameterLen: 0 };
                assert_eq!(p.C_SignInit(h, &mut m, k), CKR_OK);
                assert_eq!(p.C_Sign(h, unmapped(), huge, o, &mut n), CKR_DATA_LEN_RANGE);
                assert_eq!(p.C_VerifyInit(h, &mut m, k), CKR_OK);
                assert_eq!(p.C_Verify(h, o, 16, unmapped(), huge), CKR_SIGNATURE_LEN_RANGE);
                assert_eq!(p.C_VerifyInit(h, &mut m, k), CKR_OK);
                assert_eq!(p.C_Verify(h, unmapped(), huge, o, 16), CKR_DATA_LEN_RANGE);
                assert_eq!(p.C_SeedRandom(h, unmapped(), huge), CKR_ARGUMENTS_BAD);
                // An output beyond any one call's (128 MiB): refused unwritten.
                if huge > (128 << 20) {
                    assert_eq!(p.C_GenerateRandom(h, unmapped(), huge), CKR_ARGUMENTS_BAD);
                }
                // Message-based encryption: the data and the associated data.
                let mut m =
                    CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: null_mut(), ulParameterLen: 0 };
                assert_eq!(p.C_MessageEncryptInit(h, &mut m, k), CKR_OK);
                let (mut iv, mut tag) = ([0u8; 12], [0u8; 16]);
                let mut params = CK_GCM_MESSAGE_PARAMS {
                    pIv: iv.as_mut_ptr(),
                    ulIvLen: 12,
                    ulIvFixedBits: 0,
                    ivGenerator: CKG_GENERATE_RANDOM,
                    pTag: tag.as_mut_ptr(),
                    ulTagBits: 128,
                };
                let pp: *mut c_void = (&raw mut params).cast();
                let size = ulen(size_of::<CK_GCM_MESSAGE_PARAMS>());
                let rv = p.C_EncryptMessage(h, pp, size, null_mut(), 0, unmapped(), huge, o, &mut n);
                assert_eq!(rv, CKR_DATA_LEN_RANGE);
                let rv = p.C_EncryptMessage(h, pp, size, unmapped(), huge, o, 4, o, &mut n);
                assert_eq!(rv, CKR_DATA_LEN_RANGE);
                assert_eq!(p.C_MessageEncryptFinal(h), CKR_OK);
            }
            assert_eq!(out, [0xAA; 64], "a refused call writes no output");
        }
        round_trip(&p, h, k);
    }
);
