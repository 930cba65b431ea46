//! AES-GCM tag and IV lengths, and the parameters of the PKCS#11 3.0 message API, through the
//! C ABI (the `cryptoki` client, and raw calls for what it cannot express).
//!
//! Tags of 128, 120, 112, 104, 96, 64 and 32 bits (the lengths NIST SP 800-38D allows) work;
//! a truncated tag is the full tag's prefix. IVs of 1 to 256 bytes work (96 bits on
//! aws-lc-rs, the others on AWS-LC's C interface); longer IVs, other tag lengths and random
//! IVs with fewer than 64 random bits are refused with
//! `CKR_MECHANISM_PARAM_INVALID` and change nothing.
#![allow(unsafe_code)]
mod common;
use common::operations::assert_no_cipher_operation;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use common::raw::{self, ulen};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::{GcmMessageParams, GcmParams, GeneratorFunction};
use cryptoki::mechanism::{Mechanism, MessageParam};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys as sys;

/// A session AES key with `value`, for encryption and decryption.
fn aes_key(s: &Session, value: &[u8]) -> ObjectHandle {
    keys::aes_key(s, value, &[Attribute::Encrypt(true), Attribute::Decrypt(true)])
}

/// NIST GCM test vector (gcmEncryptExtIV128.rsp, [Keylen = 128] [IVlen = 96] [PTlen = 128]
/// [AADlen = 128] [Taglen = 128], Count 0).
struct Nist {
    key: Vec<u8>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    tag: Vec<u8>,
}

fn nist() -> Nist {
    Nist {
        key: hex("c939cc13397c1d37de6ae0e1cb7c423c"),
        iv: hex("b3d8cc017cbb89b39e0f67e2"),
        aad: hex("24825602bd12a984e0092d3e448eda5f"),
        pt: hex("c3b3c41f113a31b73d9a5cd432103069"),
        ct: hex("93fe7d9e9bfd10348a5606e5cafa7354"),
        tag: hex("0032a1dc85f1c9786925a2e71d8272dd"),
    }
}

isolated_test!(
    fn truncated_tags_are_the_full_tags_prefix_and_are_checked() {
        let (_p, _slot, s) = logged_in();
        let v = nist();
        let key = aes_key(&s, &v.key);
        for bits in [128u64, 120, 112, 104, 96, 64, 32] {
            let expected = [v.ct.as_slice(), &v.tag[..bits as usize / 8]].concat();
            let mut iv = v.iv.clone();
            let m = Mechanism::AesGcm(GcmParams::new(&mut iv, &v.aad, bits.into()).unwrap());
            assert_eq!(s.encrypt(&m, key, &v.pt).unwrap(), expected, "{bits}-bit tag");
            assert_eq!(s.decrypt(&m, key, &expected).unwrap(), v.pt, "{bits}-bit tag");
            // A changed tag bit, ciphertext bit or AAD opens nothing.
            for i in [0, v.ct.len(), expected.len() - 1] {
                let mut bad = expected.clone();
                bad[i] ^= 0x01;
                expect_rv(s.decrypt(&m, key, &bad), RvError::EncryptedDataInvalid);
            }
            let mut iv = v.iv.clone();
            let other_aad = Mechanism::AesGcm(GcmParams::new(&mut iv, b"other", bits.into()).unwrap());
            expect_rv(s.decrypt(&other_aad, key, &expected), RvError::EncryptedDataInvalid);
        }
    }
);

isolated_test!(
    fn other_tag_lengths_and_ivs_longer_than_256_bytes_are_refused_and_start_nothing() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[7; 32]);
        for bits in [0u64, 8, 16, 31, 33, 48, 100, 127, 129, 256] {
            let mut iv = [1u8; 12];
            let m = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", bits.into()).unwrap());
            expect_rv(s.encrypt_init(&m, key), RvError::MechanismParamInvalid);
            expect_rv(s.decrypt_init(&m, key), RvError::MechanismParamInvalid);
        }
        for len in [257usize, 1024] {
            let mut iv = vec![1u8; len];
            let m = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap());
            expect_rv(s.encrypt_init(&m, key), RvError::MechanismParamInvalid);
            expect_rv(s.decrypt_init(&m, key), RvError::MechanismParamInvalid);
        }
        assert_no_cipher_operation(&s);
    }
);

/// The GCM specification's test case 6 (McGrew and Viega, "The Galois/Counter Mode of
/// Operation", appendix B): AES-128 with a 60-byte IV.
struct GcmCase {
    key: &'static str,
    iv: &'static str,
    aad: &'static str,
    plain: &'static str,
    ciphertext: &'static str,
    tag: &'static str,
}

const CASE_6: GcmCase = GcmCase {
    key: "feffe9928665731c6d6a8f9467308308",
    iv: "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    plain: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    ciphertext: "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
    tag: "619cc5aefffe0bfa462af43c1699d050",
};

isolated_test!(
    /// IVs other than 96 bits (1 to 256 bytes): the GCM specification's test case 6 (a
    /// 60-byte IV), and round trips with IVs of 1, 8, 16 and 256 bytes, single- and
    /// multi-part, with a full and a truncated tag; a wrong tag is refused.
    fn ivs_of_1_to_256_bytes_work() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &hex(CASE_6.key));
        let mut iv = hex(CASE_6.iv);
        let aad = hex(CASE_6.aad);
        let plain = hex(CASE_6.plain);
        let m = Mechanism::AesGcm(GcmParams::new(&mut iv, &aad, 128.into()).unwrap());
        let sealed = s.encrypt(&m, key, &plain).unwrap();
        assert_eq!(sealed, [hex(CASE_6.ciphertext), hex(CASE_6.tag)].concat());
        assert_eq!(s.decrypt(&m, key, &sealed).unwrap(), plain);

        for len in [1usize, 8, 16, 256] {
            for bits in [128u64, 96] {
                let mut iv = vec![len as u8; len];
                let m = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", bits.into()).unwrap());
                let sealed = s.encrypt(&m, key, &plain).unwrap();
                assert_eq!(sealed.len(), plain.len() + bits as usize / 8);
                s.decrypt_init(&m, key).unwrap();
                let mut opened = s.decrypt_update(&sealed[..5]).unwrap();
                opened.extend(s.decrypt_update(&sealed[5..]).unwrap());
                opened.extend(s.decrypt_final().unwrap());
                assert_eq!(opened, plain, "IV of {len} bytes, {bits}-bit tag");
                let mut forged = sealed.clone();
                forged[0] ^= 1;
                expect_rv(s.decrypt(&m, key, &forged), RvError::EncryptedDataInvalid);
            }
        }
    }
);

isolated_test!(
    /// The message API with IVs the caller gives of other lengths than 96 bits, as
    /// Wycheproof's AES-GCM cases have them (the `cryptoki` crate's suite runs those through
    /// this API): the GCM specification's test case 6 (a 60-byte IV) gives its known answer,
    /// and 1-, 15-, 16- and 256-byte IVs give what single-message GCM gives; a generated IV
    /// stays 96 bits.
    fn message_api_takes_given_ivs_of_1_to_256_bytes() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &hex(CASE_6.key));
        let mut iv = hex(CASE_6.iv);
        let aad = hex(CASE_6.aad);
        let plain = hex(CASE_6.plain);
        let mut tag = [0u8; 16];
        let params =
            GcmMessageParams::new(&mut iv, 128.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        s.message_encrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
        let ct = s.encrypt_message(&MessageParam::AesGcmMessage(params), &aad, &plain).unwrap();
        s.message_encrypt_final().unwrap();
        assert_eq!(ct, hex(CASE_6.ciphertext));
        assert_eq!(tag.to_vec(), hex(CASE_6.tag));

        for len in [1usize, 15, 16, 256] {
            let mut iv: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let single = s
                .encrypt(
                    &Mechanism::AesGcm(GcmParams::new(&mut iv.clone(), b"aad", 128.into()).unwrap()),
                    key,
                    &plain,
                )
                .unwrap();
            let mut tag = [0u8; 16];
            let sealed = {
                let params =
                    GcmMessageParams::new(&mut iv, 128.into(), GeneratorFunction::NoGenerate, &mut tag)
                        .unwrap();
                s.message_encrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
                let ct = s.encrypt_message(&MessageParam::AesGcmMessage(params), b"aad", &plain).unwrap();
                s.message_encrypt_final().unwrap();
                ct
            };
            assert_eq!([sealed.as_slice(), &tag].concat(), single, "IV of {len} bytes");
            let params =
                GcmMessageParams::new(&mut iv, 128.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
            s.message_decrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
            let opened = s.decrypt_message(&MessageParam::AesGcmMessage(params), b"aad", &sealed).unwrap();
            assert_eq!(opened, plain);
            expect_rv(
                s.decrypt_message(&MessageParam::AesGcmMessage(params), b"aaD", &sealed),
                RvError::EncryptedDataInvalid,
            );
            s.message_decrypt_final().unwrap();
        }
        let mut short = [0u8; 8];
        let mut tag = [0u8; 16];
        let params =
            GcmMessageParams::new(&mut short, 0.into(), GeneratorFunction::GenerateRandom, &mut tag).unwrap();
        s.message_encrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
        expect_rv(
            s.encrypt_message(&MessageParam::AesGcmMessage(params), b"", b"x"),
            RvError::MechanismParamInvalid,
        );
        s.message_encrypt_final().unwrap();
    }
);

isolated_test!(
    /// As the `cryptoki` crate's own suite does: the message parameters are passed to
    /// `C_MessageEncryptInit` too, and the tag is 96 bits.
    fn message_api_takes_the_parameters_clients_pass_at_init_and_short_tags() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[0; 16]);
        let plain = [0u8; 32];
        let mut full_iv = [0u8; 12];
        let full = s
            .encrypt(&Mechanism::AesGcm(GcmParams::new(&mut full_iv, &[], 128.into()).unwrap()), key, &plain)
            .unwrap();

        let mut iv = [0u8; 12];
        let mut tag = [0u8; 12];
        let params =
            GcmMessageParams::new(&mut iv, 96.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        s.message_encrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
        let ct = s.encrypt_message(&MessageParam::AesGcmMessage(params), &[], &plain).unwrap();
        s.message_encrypt_final().unwrap();
        assert_eq!(ct, full[..32]);
        assert_eq!(ct[..4], hex("0388dace"));
        assert_eq!(tag, full[32..44], "the 96-bit tag is the full tag's prefix");

        let params =
            GcmMessageParams::new(&mut iv, 96.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        s.message_decrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
        let opened = s.decrypt_message(&MessageParam::AesGcmMessage(params), &[], &ct).unwrap();
        assert_eq!(opened, plain);
        let mut bad_tag = tag;
        bad_tag[11] ^= 1;
        let params =
            GcmMessageParams::new(&mut iv, 96.into(), GeneratorFunction::NoGenerate, &mut bad_tag).unwrap();
        expect_rv(
            s.decrypt_message(&MessageParam::AesGcmMessage(params), &[], &ct),
            RvError::EncryptedDataInvalid,
        );
        s.message_decrypt_final().unwrap();
    }
);

isolated_test!(
    /// Attack: ask the module for "random" IVs with only a few random bits, so that they
    /// repeat within a handful of messages under one key (GCM's confidentiality and
    /// integrity fail on a repeated IV). Refused; nothing is sealed or written back.
    fn random_message_ivs_with_fewer_than_64_random_bits_are_refused() {
        let (_p, _slot, s) = logged_in();
        let key = aes_key(&s, &[5; 32]);
        let mut iv = [0xAB; 12];
        let mut tag = [0xCD; 16];
        let params =
            GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        s.message_encrypt_init(&Mechanism::AesGcmMessage(params), key).unwrap();
        for fixed in [33u64, 40, 90, 96] {
            for generator in [GeneratorFunction::GenerateRandom, GeneratorFunction::Generate] {
                let params = GcmMessageParams::new(&mut iv, fixed.into(), generator, &mut tag).unwrap();
                expect_rv(
                    s.encrypt_message(&MessageParam::AesGcmMessage(params), b"", b"secret"),
                    RvError::MechanismParamInvalid,
                );
                assert_eq!(iv, [0xAB; 12], "no IV written back");
                assert_eq!(tag, [0xCD; 16], "no tag written back");
            }
        }
        // The operation is still there, and 64 random bits are enough.
        let params =
            GcmMessageParams::new(&mut iv, 32.into(), GeneratorFunction::GenerateRandom, &mut tag).unwrap();
        s.encrypt_message(&MessageParam::AesGcmMessage(params), b"", b"secret").unwrap();
        assert_eq!(iv[..4], [0xAB; 4], "the fixed bits are kept");
        assert_ne!(tag, [0xCD; 16]);
    }
);

/// A raw `CK_GCM_MESSAGE_PARAMS`.
fn message_params(
    iv: &mut [u8],
    generator: sys::CK_GENERATOR_FUNCTION,
    tag: &mut [u8],
    tag_bits: u64,
) -> sys::CK_GCM_MESSAGE_PARAMS {
    sys::CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: ulen(iv.len()),
        ulIvFixedBits: 0,
        ivGenerator: generator,
        pTag: tag.as_mut_ptr(),
        ulTagBits: tag_bits as sys::CK_ULONG,
    }
}

isolated_test!(
    /// The init parameter is not read as a `CK_GCM_PARAMS` (same size, other fields: the
    /// generator would be taken for the AAD pointer); a parameter of another size is refused;
    /// a message's tag length is checked before its bytes are read.
    fn message_init_parameters_and_tag_lengths_through_the_raw_abi() {
        let (p, _slot, h) = raw::user_setup();
        let key = raw::aes_key(&p, h, &[3; 32], true);
        let mut iv = [0u8; 12];
        let mut tag = [0u8; 16];
        let mut params = message_params(&mut iv, sys::CKG_GENERATE_RANDOM, &mut tag, 128);
        let mut m = sys::CK_MECHANISM {
            mechanism: sys::CKM_AES_GCM,
            pParameter: &mut params as *mut _ as *mut c_void,
            ulParameterLen: ulen(size_of::<sys::CK_GCM_MESSAGE_PARAMS>()),
        };
        let mut short = m;
        short.ulParameterLen = ulen(size_of::<sys::CK_GCM_MESSAGE_PARAMS>() - 8);
        // SAFETY: the mechanism and its parameter are live locals.
        unsafe {
            assert_eq!(p.C_MessageEncryptInit(h, &mut short, key), sys::CKR_MECHANISM_PARAM_INVALID);
            assert_eq!(p.C_MessageDecryptInit(h, &mut short, key), sys::CKR_MECHANISM_PARAM_INVALID);
            assert_eq!(p.C_MessageDecryptInit(h, &mut m, key), sys::CKR_OK);
        }
        let mut huge = message_params(&mut iv, sys::CKG_NO_GENERATE, &mut tag, !7);
        let (mut ct, mut out) = ([0u8; 4], [0u8; 4]);
        let mut out_len = ulen(out.len());
        // SAFETY: all buffers are live; the tag buffer is 16 bytes whatever ulTagBits claims.
        let rv = unsafe {
            p.C_DecryptMessage(
                h,
                &mut huge as *mut _ as *mut c_void,
                ulen(size_of::<sys::CK_GCM_MESSAGE_PARAMS>()),
                null_mut(),
                0,
                ct.as_mut_ptr(),
                ulen(ct.len()),
                out.as_mut_ptr(),
                &mut out_len,
            )
        };
        assert_eq!(rv, sys::CKR_MECHANISM_PARAM_INVALID);
        assert_eq!(out, [0; 4]);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_MessageDecryptFinal(h) }, sys::CKR_OK);
    }
);
