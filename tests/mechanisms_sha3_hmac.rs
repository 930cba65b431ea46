//! SHA3-224 and the SHA-3 HMACs through the C ABI of the built module: `C_GetMechanismInfo`,
//! NIST's HMAC-SHA3 examples (csrc.nist.gov, "Examples with Intermediate Values") single- and
//! multi-part, the truncated `_GENERAL` forms, the key types `CKK_SHA3_*_HMAC` and their
//! `CKM_SHA3_*_KEY_GEN`, and the refusals (wrong key type, wrong length, bad parameter), each
//! leaving nothing behind. Raw calls: `cryptoki` 0.12 names no SHA-3 mechanism or key type.
#![allow(unsafe_code)]

mod common;
use common::raw::*;
use common::*;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;

fn mechanism(kind: CK_MECHANISM_TYPE, param: Option<&mut CK_ULONG>) -> CK_MECHANISM {
    match param {
        Some(p) => CK_MECHANISM {
            mechanism: kind,
            pParameter: p as *mut CK_ULONG as *mut c_void,
            ulParameterLen: ulen(size_of::<CK_ULONG>()),
        },
        None => CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 },
    }
}

/// A session secret key of `key_type` holding `value`.
fn hmac_key(p: &Pkcs11, h: CK_SESSION_HANDLE, key_type: CK_KEY_TYPE, value: &[u8]) -> CK_OBJECT_HANDLE {
    create_secret_key(p, h, key_type, value, &[attr(CKA_SIGN, &TRUE), attr(CKA_VERIFY, &TRUE)])
}

/// `C_SignInit` then `C_Sign` (single part) or `C_SignUpdate` by 7-byte parts and
/// `C_SignFinal`; the MAC, or the first failing call's code.
fn sign(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    parts: bool,
) -> Result<Vec<u8>, CK_RV> {
    let check = |rv: CK_RV| if rv == CKR_OK { Ok(()) } else { Err(rv) };
    // SAFETY: the mechanism and its parameter are live for the call.
    check(unsafe { p.C_SignInit(h, m, key) })?;
    let mut out = [0u8; 64];
    let mut len = ulen(out.len());
    if parts {
        for part in data.chunks(7) {
            // SAFETY: the part is a live slice of its stated length.
            check(unsafe { p.C_SignUpdate(h, part.as_ptr() as *mut u8, ulen(part.len())) })?;
        }
        // SAFETY: the buffer holds `len` bytes.
        check(unsafe { p.C_SignFinal(h, out.as_mut_ptr(), &mut len) })?;
    } else {
        // SAFETY: data and buffer are live slices of their stated lengths.
        check(unsafe {
            p.C_Sign(h, data.as_ptr() as *mut u8, ulen(data.len()), out.as_mut_ptr(), &mut len)
        })?;
    }
    Ok(out[..len as usize].to_vec())
}

/// `C_VerifyInit` then `C_Verify`; the code of the first call that is not `CKR_OK`.
fn verify(
    p: &Pkcs11,
    h: CK_SESSION_HANDLE,
    m: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    mac: &[u8],
) -> CK_RV {
    // SAFETY: the mechanism and its parameter are live for the call.
    let rv = unsafe { p.C_VerifyInit(h, m, key) };
    if rv != CKR_OK {
        return rv;
    }
    // SAFETY: data and MAC are live slices of their stated lengths.
    unsafe {
        p.C_Verify(h, data.as_ptr() as *mut u8, ulen(data.len()), mac.as_ptr() as *mut u8, ulen(mac.len()))
    }
}

fn info(p: &Pkcs11, slot: CK_SLOT_ID, kind: CK_MECHANISM_TYPE) -> CK_MECHANISM_INFO {
    let mut info = CK_MECHANISM_INFO::default();
    // SAFETY: out-pointer to a local.
    assert_eq!(unsafe { p.C_GetMechanismInfo(slot, kind, &mut info) }, CKR_OK, "{kind:#x}");
    info
}

/// Each hash: its HMAC, `_GENERAL` form, key type and key generation.
const HMACS: [(CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, CK_KEY_TYPE, CK_MECHANISM_TYPE, usize); 4] = [
    (CKM_SHA3_224_HMAC, CKM_SHA3_224_HMAC_GENERAL, CKK_SHA3_224_HMAC, CKM_SHA3_224_KEY_GEN, 28),
    (CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL, CKK_SHA3_256_HMAC, CKM_SHA3_256_KEY_GEN, 32),
    (CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL, CKK_SHA3_384_HMAC, CKM_SHA3_384_KEY_GEN, 48),
    (CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL, CKK_SHA3_512_HMAC, CKM_SHA3_512_KEY_GEN, 64),
];

isolated_test!(
    fn sha3_224_digest_and_mechanism_info() {
        let (p, slot, h) = user_setup();
        let digest = info(&p, slot, CKM_SHA3_224);
        assert_eq!(digest.flags & (CKF_DIGEST | CKF_SIGN), CKF_DIGEST);
        for (mac, general, _, keygen, _) in HMACS {
            for m in [mac, general] {
                let i = info(&p, slot, m);
                assert_eq!(i.flags & (CKF_SIGN | CKF_VERIFY | CKF_DIGEST), CKF_SIGN | CKF_VERIFY);
                assert_eq!((i.ulMinKeySize, i.ulMaxKeySize), (1, 512), "bytes, as for the SHA-2 HMACs");
            }
            assert_eq!(info(&p, slot, keygen).flags & CKF_GENERATE, CKF_GENERATE);
        }

        // FIPS 202's SHA3-224("abc"), single-part and in parts.
        let expected = hex("e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf");
        let mut m = mechanism(CKM_SHA3_224, None);
        let mut out = [0u8; 64];
        let mut len = ulen(out.len());
        // SAFETY: live mechanism, data and buffer of their stated lengths.
        unsafe {
            assert_eq!(p.C_DigestInit(h, &mut m), CKR_OK);
            assert_eq!(p.C_Digest(h, b"abc".as_ptr() as *mut u8, 3, out.as_mut_ptr(), &mut len), CKR_OK);
        }
        assert_eq!(out[..len as usize], expected[..]);
        len = ulen(out.len());
        // SAFETY: as above; a NULL output first asks for the length.
        unsafe {
            assert_eq!(p.C_DigestInit(h, &mut m), CKR_OK);
            assert_eq!(p.C_DigestUpdate(h, b"a".as_ptr() as *mut u8, 1), CKR_OK);
            assert_eq!(p.C_DigestUpdate(h, b"bc".as_ptr() as *mut u8, 2), CKR_OK);
            let mut needed: CK_ULONG = 0;
            assert_eq!(p.C_DigestFinal(h, null_mut(), &mut needed), CKR_OK);
            assert_eq!(needed, 28);
            assert_eq!(p.C_DigestFinal(h, out.as_mut_ptr(), &mut len), CKR_OK);
        }
        assert_eq!(out[..len as usize], expected[..]);
    }
);

isolated_test!(
    fn hmac_sha3_matches_nist_examples_single_and_multi_part() {
        let (p, _, h) = user_setup();
        // Sample 1: the key 00 01 .. as long as the output, "Sample message for keylen<blocklen".
        let macs = [
            "332cfd59347fdb8e576e77260be4aba2d6dc53117b3bfb52c6d18c04",
            "4fe8e202c4f058e8dddc23d8c34e467343e23555e24fc2f025d598f558f67205",
            "d588a3c51f3f2d906e8298c1199aa8ff6296218127f6b38a90b6afe2c5617725bc99987f79b22a557b6520db710b7f42",
            "4efd629d6c71bf86162658f29943b1c308ce27cdfa6db0d9c3ce81763f9cbce5\
             f7ebe9868031db1a8f8eb7b6b95e5c5e3f657a8996c86a2f6527e307f0213196",
        ];
        let data = b"Sample message for keylen<blocklen";
        for ((kind, _, key_type, _, len), mac) in HMACS.into_iter().zip(macs) {
            let value: Vec<u8> = (0..len as u8).collect();
            let mac = hex(mac);
            for key in [hmac_key(&p, h, key_type, &value), hmac_key(&p, h, CKK_GENERIC_SECRET, &value)] {
                for parts in [false, true] {
                    assert_eq!(sign(&p, h, &mut mechanism(kind, None), key, data, parts), Ok(mac.clone()));
                }
                assert_eq!(verify(&p, h, &mut mechanism(kind, None), key, data, &mac), CKR_OK);
                let mut wrong = mac.clone();
                wrong[len - 1] ^= 1;
                assert_eq!(
                    verify(&p, h, &mut mechanism(kind, None), key, data, &wrong),
                    CKR_SIGNATURE_INVALID
                );
                assert_eq!(
                    verify(&p, h, &mut mechanism(kind, None), key, data, &mac[..len - 1]),
                    CKR_SIGNATURE_LEN_RANGE
                );
            }
        }
    }
);

isolated_test!(
    fn general_forms_truncate_and_check_their_parameter() {
        let (p, _, h) = user_setup();
        // Sample 4: as sample 1, the message "... with truncated tag", the MAC cut to half.
        let truncated = [
            "8569c54cbb00a9b78ff1b391b0e5",
            "c8dc7148d8c1423aa549105dafdf9cad",
            "25f4bf53606e91af79d24a4bb1fd6aecd44414a30c8ebb0a",
            "7bb06d859257b25ce73ca700df34c5cbef5c898bac91029e0b27975d4e526a08",
        ];
        let data = b"Sample message for keylen<blocklen, with truncated tag";
        for ((_, general, key_type, _, len), mac) in HMACS.into_iter().zip(truncated) {
            let key = hmac_key(&p, h, key_type, &(0..len as u8).collect::<Vec<u8>>());
            let mac = hex(mac);
            let mut half = ulen(len / 2);
            for parts in [false, true] {
                assert_eq!(
                    sign(&p, h, &mut mechanism(general, Some(&mut half)), key, data, parts),
                    Ok(mac.clone())
                );
            }
            assert_eq!(verify(&p, h, &mut mechanism(general, Some(&mut half)), key, data, &mac), CKR_OK);
            let mut wrong = mac.clone();
            wrong[0] ^= 0x80;
            assert_eq!(
                verify(&p, h, &mut mechanism(general, Some(&mut half)), key, data, &wrong),
                CKR_SIGNATURE_INVALID
            );
            let mut full_len = ulen(len);
            assert_eq!(
                verify(&p, h, &mut mechanism(general, Some(&mut full_len)), key, data, &mac),
                CKR_SIGNATURE_LEN_RANGE,
                "a truncated MAC offered where the parameter asks for the full one"
            );
            for bad in [0, len + 1] {
                let mut bad = ulen(bad);
                assert_eq!(
                    sign(&p, h, &mut mechanism(general, Some(&mut bad)), key, data, false),
                    Err(CKR_MECHANISM_PARAM_INVALID)
                );
            }
            assert_eq!(
                sign(&p, h, &mut mechanism(general, None), key, data, false),
                Err(CKR_MECHANISM_PARAM_INVALID)
            );
            // Nothing was left active: a full HMAC works at once.
            assert!(
                sign(
                    &p,
                    h,
                    &mut mechanism(HMACS[0].0, None),
                    hmac_key(&p, h, CKK_GENERIC_SECRET, &[1]),
                    b"x",
                    false
                )
                .is_ok()
            );
        }
    }
);

isolated_test!(
    fn key_types_and_generation() {
        let (p, _, h) = user_setup();
        let class = CKO_SECRET_KEY;
        for (kind, _, key_type, keygen, len) in HMACS {
            let generate = |template: &mut [CK_ATTRIBUTE]| {
                let mut m = mechanism(keygen, None);
                let mut key = CK_INVALID_HANDLE;
                // SAFETY: live mechanism and template; out-pointer to a local.
                let rv = unsafe {
                    p.C_GenerateKey(h, &mut m, template.as_mut_ptr(), ulen(template.len()), &mut key)
                };
                (rv, key)
            };
            let value_len = ulen(len);
            let (rv, key) = generate(&mut [
                attr(CKA_VALUE_LEN, &value_len),
                attr(CKA_SIGN, &TRUE),
                attr(CKA_VERIFY, &TRUE),
            ]);
            assert_eq!(rv, CKR_OK, "{keygen:#x}");
            assert_eq!(read_ulong(&p, h, key, CKA_KEY_TYPE), key_type);
            assert_eq!(read_ulong(&p, h, key, CKA_CLASS), CKO_SECRET_KEY);
            assert_eq!(read_ulong(&p, h, key, CKA_VALUE_LEN), value_len);
            let mac = sign(&p, h, &mut mechanism(kind, None), key, b"data", false).unwrap();
            assert_eq!(verify(&p, h, &mut mechanism(kind, None), key, b"data", &mac), CKR_OK);

            // Refusals, each leaving no object behind.
            let before = find_all(&p, h).len();
            let other = if key_type == CKK_SHA3_224_HMAC { CKK_SHA3_256_HMAC } else { CKK_SHA3_224_HMAC };
            let (rv, _) = generate(&mut [attr(CKA_VALUE_LEN, &value_len), attr(CKA_KEY_TYPE, &other)]);
            assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT);
            let (rv, _) = generate(&mut [attr(CKA_VALUE_LEN, &value_len), attr(CKA_CLASS, &CKO_DATA)]);
            assert_ne!(rv, CKR_OK);
            let too_long: CK_ULONG = 513;
            // A length the key type cannot have: the template's value is invalid (as for SHA-2).
            assert_eq!(generate(&mut [attr(CKA_VALUE_LEN, &too_long)]).0, CKR_ATTRIBUTE_VALUE_INVALID);
            assert_eq!(generate(&mut [attr(CKA_CLASS, &class)]).0, CKR_TEMPLATE_INCOMPLETE);
            assert_eq!(find_all(&p, h).len(), before);

            // Another hash's key type is refused; so is a key of no HMAC type.
            let foreign = hmac_key(&p, h, other, &[7; 32]);
            assert_eq!(
                sign(&p, h, &mut mechanism(kind, None), foreign, b"x", false),
                Err(CKR_KEY_TYPE_INCONSISTENT)
            );
            let sha2 = hmac_key(&p, h, CKK_SHA256_HMAC, &[7; 32]);
            assert_eq!(
                verify(&p, h, &mut mechanism(kind, None), sha2, b"x", &mac),
                CKR_KEY_TYPE_INCONSISTENT
            );
            let aes = aes_key(&p, h, &[7; 32], false);
            assert_eq!(
                sign(&p, h, &mut mechanism(kind, None), aes, b"x", false),
                Err(CKR_KEY_TYPE_INCONSISTENT)
            );
        }
    }
);
