//! RSA key sizes and the `rsa_min_bits` setting, through the C ABI; and RSA decryption into
//! a buffer as long as the plaintext.
//!
//! Keys of 1024 to 8192 bits import and verify signatures whatever the setting (an old
//! signature still needs checking); generation, signing, encryption and decryption take keys
//! from `rsa_min_bits` (default 2048). `C_GetMechanismInfo` reports those ranges.
#![allow(unsafe_code)]
mod common;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use common::keys::RsaComponents;
use common::raw::{self, ulen};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys as sys;

/// A 1024-bit key made with `openssl genrsa 1024` (n, d, p, q, dP, dQ, qInv; e = 65537).
const N: &str = "b054da0f9a8e85d9aa5cfdf739b77ce9be66831be0a31a94a87ed75b29fe0052dd3c2804acdb06ae2679d22cace84fabaad26725f0a7573d3428bef6c806e5244159590c1bf94051570a5fd963bbd0f7115d56ce1daa609553f49a743a67824e7b87f844e07e92f4029713639a05e45b88c1ea51830d5ebd246022ed44a499e5";
const D: &str = "65f6db15d4d0ff938b913486a68875221128e43dd59b5b7e8524bbd18aa9c774235c6ae3b135025ae802dfc757c10a790151a3b5ebc048912abd39182938db7d325fa789cd0731dac8247185399830ba45e9644af46ac289c3249b97139477e78e84ce5d62a58d595a561fe644624353c31975032b2c9aaab51c624f2f5ef4a1";
const P: &str = "e20ce2961caf0f31a23801d95faa2282578ea2df69f39658c1484965b0053da99d5132f207fa644ea1ac9841c16c727a5a4a87b1a46975978b054ea308a6c9cd";
const Q: &str = "c7b19d6f614e9e07d3af3c653a418f4fc39910c9522a30450854f43c83d59da80f73262d7d5cdc49afaf3e5391a04da3578afea4de037a18c938a00582741879";
const DP: &str = "dedde1502abb95f9537c70a6462151a0bc7e8eaa42a5bc678938a1d4b5f494d4f39ba8e4e364c51c995db747ad522493e90d6e378067d15e35dc67a969d03749";
const DQ: &str = "610d1e71a23e1e29b9a4a1daa4ac762512efd22bb5c6113d8ba616294efd43a90911328dcb2e95552e9021df65981e0373a976c6d3aba6ec62e7254668375a29";
const QINV: &str = "c1dc766beed99302519ce7c5ed4161e519ff5c1fd00896a2694644d26c25fcf2208387386fe37060b5dbdab8ed41b8a1fcbd5dbd538b0dec71d15d645a92a135";
/// `openssl dgst -sha256 -sign` of [`MESSAGE`] with that key.
const SIGNATURE: &str = "42d52b0b1fd77d7e925d3902ae5a15afbfe3d5bf5847b64a971e2d0598b0509f1404a0805bd25bbdc6e0eaf6dd85d6b2964ff0c26e37ae68f3fd36a6ee82c7291b954a375193ce88ea2e756b14ed341783ed011d133f1e9b32f42a0b35380237b4924525809d9a50051c7319780628fe40ccbe0f55efb1754b668b9f0621eeda";
const MESSAGE: &[u8] = b"a signature from 2009";

/// The 1024-bit key's components.
const KEY_1024: RsaComponents =
    RsaComponents { n: N, e: "010001", d: D, p: P, q: Q, dp: DP, dq: DQ, qinv: QINV };

fn import_1024(s: &Session) -> (ObjectHandle, ObjectHandle) {
    let public = s.create_object(&KEY_1024.public_template()).expect("a 1024-bit public key imports");
    let private = s.create_object(&KEY_1024.private_template(true)).expect("a 1024-bit private key imports");
    (public, private)
}

fn oaep_with(hash: MechanismType, mgf: PkcsMgfType) -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
}

fn generate(s: &Session, bits: u64) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::ModulusBits(bits.into()), Attribute::Verify(true), Attribute::Encrypt(true)],
        &[Attribute::Sign(true), Attribute::Decrypt(true)],
    )
}

isolated_test!(
    /// By default a 1024-bit key imports and checks an old signature, and nothing new is made
    /// with it: signing, encryption, decryption and 1024-bit generation are refused with
    /// `CKR_KEY_SIZE_RANGE`, leaving no object behind.
    fn by_default_1024_bit_keys_verify_but_do_not_sign_or_encrypt() {
        let (p, slot, s) = logged_in();
        let (public, private) = import_1024(&s);
        s.verify(&Mechanism::Sha256RsaPkcs, public, MESSAGE, &hex(SIGNATURE)).unwrap();
        expect_rv(
            s.verify(&Mechanism::Sha256RsaPkcs, public, b"a signature from 2010", &hex(SIGNATURE)),
            RvError::SignatureInvalid,
        );
        expect_rv(s.sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE), RvError::KeySizeRange);
        expect_rv(s.encrypt(&Mechanism::RsaPkcs, public, b"x"), RvError::KeySizeRange);
        expect_rv(s.decrypt(&Mechanism::RsaPkcs, private, &[1; 128]), RvError::KeySizeRange);
        let before = s.find_objects(&[]).unwrap().len();
        expect_rv(generate(&s, 1024), RvError::KeySizeRange);
        assert_eq!(s.find_objects(&[]).unwrap().len(), before, "nothing generated");

        let info = |m| p.get_mechanism_info(slot, m).unwrap();
        let keygen = info(MechanismType::RSA_PKCS_KEY_PAIR_GEN);
        assert_eq!((keygen.min_key_size(), keygen.max_key_size()), (2048, 4096));
        let verify = info(MechanismType::SHA256_RSA_PKCS);
        assert_eq!((verify.min_key_size(), verify.max_key_size()), (1024, 8192));
        let oaep = info(MechanismType::RSA_PKCS_OAEP);
        assert_eq!((oaep.min_key_size(), oaep.max_key_size()), (1024, 8192));
        expect_rv(
            s.encrypt(&oaep_with(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1), public, b"x"),
            RvError::KeySizeRange,
        );
    }
);

isolated_test!(
    config = "rsa_min_bits = 1024",
    /// Where the setting allows, a 1024-bit key signs (the same deterministic signature as
    /// OpenSSL) and encrypts with PKCS#1 v1.5; OAEP still needs 2048 bits.
    fn rsa_min_bits_1024_lets_1024_bit_keys_sign_and_encrypt() {
        let (p, slot, s) = logged_in();
        let (public, private) = import_1024(&s);
        assert_eq!(s.sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE).unwrap(), hex(SIGNATURE));
        let pss = Mechanism::Sha256RsaPkcsPss(cryptoki::mechanism::rsa::PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        });
        let signature = s.sign(&pss, private, MESSAGE).unwrap();
        s.verify(&pss, public, MESSAGE, &signature).unwrap();
        let ciphertext = s.encrypt(&Mechanism::RsaPkcs, public, b"legacy secret").unwrap();
        assert_eq!(ciphertext.len(), 128);
        assert_eq!(s.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).unwrap(), b"legacy secret");
        // OAEP too (the `rsa` crate's, AWS-LC taking 2048 bits and up), as python-pkcs11's
        // suite uses it with SHA-1 and 1024-bit keys; SHA-512 leaves no room in 128 bytes.
        for (hash, mgf) in
            [(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1), (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)]
        {
            let ciphertext = s.encrypt(&oaep_with(hash, mgf), public, b"legacy secret").unwrap();
            assert_eq!(ciphertext.len(), 128);
            assert_eq!(s.decrypt(&oaep_with(hash, mgf), private, &ciphertext).unwrap(), b"legacy secret");
            let mut forged = ciphertext.clone();
            forged[5] ^= 1;
            expect_rv(s.decrypt(&oaep_with(hash, mgf), private, &forged), RvError::EncryptedDataInvalid);
        }
        let sha512 = oaep_with(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512);
        expect_rv(s.encrypt(&sha512, public, b"x"), RvError::KeySizeRange);
        // Generation starts at 1024 too (the `rsa` crate's keys below AWS-LC's 2048), as the
        // test suites of PKCS#11 bindings (python-pkcs11's) generate them: the pair is
        // 1024 bits, has e = 65537 and all CRT values, signs and verifies, and OpenSSL-style
        // PKCS#1 v1.5 encryption round-trips; sizes that are no multiple of 8 are refused.
        let keygen = p.get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN).unwrap();
        assert_eq!((keygen.min_key_size(), keygen.max_key_size()), (1024, 4096));
        for bits in [1024u64, 1536] {
            let (public, private) = generate(&s, bits).unwrap();
            let modulus = common::objects::bytes(&s, public, cryptoki::object::AttributeType::Modulus);
            assert_eq!(modulus.len() as u64 * 8, bits, "a {bits}-bit modulus");
            assert!(modulus[0] & 0x80 != 0, "its top bit set");
            assert_eq!(
                common::objects::bytes(&s, public, cryptoki::object::AttributeType::PublicExponent),
                vec![1, 0, 1]
            );
            let signature = s.sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE).unwrap();
            s.verify(&Mechanism::Sha256RsaPkcs, public, MESSAGE, &signature).unwrap();
            let ciphertext = s.encrypt(&Mechanism::RsaPkcs, public, b"legacy secret").unwrap();
            assert_eq!(s.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).unwrap(), b"legacy secret");
        }
        expect_rv(generate(&s, 1025), RvError::KeySizeRange);
        expect_rv(generate(&s, 1016), RvError::KeySizeRange);
    }
);

isolated_test!(
    config = "rsa_min_bits = 3072",
    fn rsa_min_bits_3072_raises_generation_and_use() {
        let (p, slot, s) = logged_in();
        let keygen = p.get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN).unwrap();
        assert_eq!((keygen.min_key_size(), keygen.max_key_size()), (3072, 4096));
        let before = s.find_objects(&[]).unwrap().len();
        expect_rv(generate(&s, 2048), RvError::KeySizeRange);
        assert_eq!(s.find_objects(&[]).unwrap().len(), before);
        let (public, _) = import_1024(&s);
        s.verify(&Mechanism::Sha256RsaPkcs, public, MESSAGE, &hex(SIGNATURE)).unwrap();
    }
);

/// `C_GenerateKeyPair` of a 2048-bit RSA pair for encryption, through the raw ABI.
fn raw_rsa_pair(
    p: &sys::Pkcs11,
    h: sys::CK_SESSION_HANDLE,
) -> (sys::CK_OBJECT_HANDLE, sys::CK_OBJECT_HANDLE) {
    let bits: sys::CK_ULONG = 2048;
    let yes = raw::TRUE;
    let mut public_t = [raw::attr(sys::CKA_MODULUS_BITS, &bits), raw::attr(sys::CKA_ENCRYPT, &yes)];
    let mut private_t = [raw::attr(sys::CKA_DECRYPT, &yes)];
    let (rv, public, private) =
        raw::generate_key_pair(p, h, sys::CKM_RSA_PKCS_KEY_PAIR_GEN, &mut public_t, &mut private_t);
    assert_eq!(rv, sys::CKR_OK, "C_GenerateKeyPair");
    (public, private)
}

isolated_test!(
    /// Clients size the output of `C_Decrypt` by the plaintext they expect, not the modulus:
    /// OAEP and PKCS#1 v1.5 decryption into a buffer exactly that long succeed; one byte
    /// shorter is `CKR_BUFFER_TOO_SMALL` with the exact length, and the operation stays.
    fn rsa_decryption_fits_a_buffer_as_long_as_the_plaintext() {
        let (p, _slot, h) = raw::user_setup();
        let (public, private) = raw_rsa_pair(&p, h);
        let plain = [0x5Au8; 32];
        let mut params = sys::CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: sys::CKM_SHA256,
            mgf: sys::CKG_MGF1_SHA256,
            source: sys::CKZ_DATA_SPECIFIED,
            pSourceData: null_mut(),
            ulSourceDataLen: 0,
        };
        let oaep = sys::CK_MECHANISM {
            mechanism: sys::CKM_RSA_PKCS_OAEP,
            pParameter: &mut params as *mut _ as *mut c_void,
            ulParameterLen: ulen(size_of::<sys::CK_RSA_PKCS_OAEP_PARAMS>()),
        };
        let pkcs1 =
            sys::CK_MECHANISM { mechanism: sys::CKM_RSA_PKCS, pParameter: null_mut(), ulParameterLen: 0 };
        for mut m in [oaep, pkcs1] {
            let mut ciphertext = [0u8; 256];
            let mut ct_len = ulen(ciphertext.len());
            let mut input = plain;
            // SAFETY: live mechanism, buffers and lengths.
            unsafe {
                assert_eq!(p.C_EncryptInit(h, &mut m, public), sys::CKR_OK);
                let rv = p.C_Encrypt(
                    h,
                    input.as_mut_ptr(),
                    ulen(input.len()),
                    ciphertext.as_mut_ptr(),
                    &mut ct_len,
                );
                assert_eq!(rv, sys::CKR_OK);
                assert_eq!(p.C_DecryptInit(h, &mut m, private), sys::CKR_OK);
                // A NULL output asks the length: the plaintext's.
                let mut len = 0;
                let rv = p.C_Decrypt(h, ciphertext.as_mut_ptr(), ct_len, null_mut(), &mut len);
                assert_eq!((rv, len), (sys::CKR_OK, ulen(plain.len())));
                let mut out = [0u8; 32];
                let mut len = ulen(31);
                let rv = p.C_Decrypt(h, ciphertext.as_mut_ptr(), ct_len, out.as_mut_ptr(), &mut len);
                assert_eq!((rv, len), (sys::CKR_BUFFER_TOO_SMALL, ulen(32)));
                assert_eq!(out, [0; 32], "nothing written into a short buffer");
                let mut len = ulen(out.len());
                let rv = p.C_Decrypt(h, ciphertext.as_mut_ptr(), ct_len, out.as_mut_ptr(), &mut len);
                assert_eq!((rv, len), (sys::CKR_OK, ulen(32)), "mechanism {:#x}", m.mechanism);
                assert_eq!(out, plain);
                // A wrong ciphertext into the same buffer is the usual opaque error.
                assert_eq!(p.C_DecryptInit(h, &mut m, private), sys::CKR_OK);
                ciphertext[10] ^= 1;
                let mut out = [0u8; 32];
                let mut len = ulen(out.len());
                let rv = p.C_Decrypt(h, ciphertext.as_mut_ptr(), ct_len, out.as_mut_ptr(), &mut len);
                assert_eq!(rv, sys::CKR_ENCRYPTED_DATA_INVALID);
                assert_eq!(out, [0; 32]);
            }
        }
    }
);
