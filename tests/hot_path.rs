//! The per-call fast paths of issue 6 keep the semantics of the slow ones.
//!
//! A session reuses what an `*Init` established about a key (`src/session/keys.rs`) only
//! while the token has not changed: every change that matters to a key's use — its
//! attributes, its destruction, a logout, a policy — must be seen by the next `*Init` at
//! once. Encryption writes straight into the caller's buffer unless the input and output
//! overlap (an in-place call), which must still give the right bytes.
#![allow(unsafe_code)]
mod common;
use common::*;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};

fn aes_key(s: &Session, label: &str) -> ObjectHandle {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.generate_key(&Mechanism::AesKeyGen, &template).unwrap()
}

fn seal(s: &Session, key: ObjectHandle, data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [3u8; 12];
    s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"ad", 128.into()).unwrap()), key, data)
}

isolated_test!(
    fn a_cached_key_lookup_sees_every_change_to_the_key_at_once() {
        let (p, slot, s) = logged_in();
        let key = aes_key(&s, "k");
        let first = seal(&s, key, b"hello").unwrap();
        assert_eq!(seal(&s, key, b"hello").unwrap(), first, "the cached key is the same key");

        // An attribute change (here, the permission to encrypt) is seen by the next Init.
        s.update_attributes(key, &[Attribute::Encrypt(false)]).unwrap();
        expect_rv(seal(&s, key, b"hello"), RvError::KeyFunctionNotPermitted);
        s.update_attributes(key, &[Attribute::Encrypt(true)]).unwrap();
        assert_eq!(seal(&s, key, b"hello").unwrap(), first);

        // Another session's change, too.
        let other = p.open_rw_session(slot).unwrap();
        other.update_attributes(key, &[Attribute::Encrypt(false)]).unwrap();
        expect_rv(seal(&s, key, b"hello"), RvError::KeyFunctionNotPermitted);
        other.update_attributes(key, &[Attribute::Encrypt(true)]).unwrap();
        seal(&s, key, b"hello").unwrap();

        // A destroyed key is gone.
        let doomed = aes_key(&s, "doomed");
        seal(&s, doomed, b"x").unwrap();
        other.destroy_object(doomed).unwrap();
        expect_rv(seal(&s, doomed, b"x"), RvError::KeyHandleInvalid);

        // A logout (from another session) ends the use of private keys.
        seal(&s, key, b"x").unwrap();
        other.logout().unwrap();
        expect_rv(seal(&s, key, b"x"), RvError::KeyHandleInvalid);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(seal(&s, key, b"x"), RvError::KeyHandleInvalid);
    }
);

isolated_test!(
    fn in_place_and_separate_buffers_give_the_same_bytes() {
        use common::raw::*;
        use cryptoki_sys::*;
        let (p, _slot, h) = user_setup();
        let key = common::raw::aes_key(&p, h, &[7u8; 32], true);
        let plain = b"sixteen byte msg and some more".to_vec();
        let mut iv = [3u8; 12];
        let mut ad = *b"ad";
        let mut params = CK_GCM_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: ad.as_mut_ptr(),
            ulAADLen: 2,
            ulTagBits: 128,
        };
        let mut m = CK_MECHANISM {
            mechanism: CKM_AES_GCM,
            pParameter: &mut params as *mut CK_GCM_PARAMS as *mut std::ffi::c_void,
            ulParameterLen: ulen(std::mem::size_of::<CK_GCM_PARAMS>()),
        };
        // Separate buffers.
        let mut input = plain.clone();
        let mut expected = vec![0u8; plain.len() + 16];
        let mut len = ulen(expected.len());
        // SAFETY: the mechanism, its parameter and the buffers are live locals of the stated
        // lengths.
        unsafe {
            assert_eq!(p.C_EncryptInit(h, &mut m, key), CKR_OK);
            let rv = p.C_Encrypt(h, input.as_mut_ptr(), ulen(input.len()), expected.as_mut_ptr(), &mut len);
            assert_eq!(rv, CKR_OK);
        }
        assert_eq!(len as usize, expected.len());
        // In place: the input is the start of the output buffer.
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let mut len = ulen(buf.len());
        // SAFETY: as above; input and output share one live buffer.
        unsafe {
            assert_eq!(p.C_EncryptInit(h, &mut m, key), CKR_OK);
            let data = buf.as_mut_ptr();
            assert_eq!(p.C_Encrypt(h, data, ulen(plain.len()), data, &mut len), CKR_OK);
        }
        assert_eq!(&buf[..len as usize], expected.as_slice());
        let mut out_len = ulen(buf.len());
        // SAFETY: as above.
        unsafe {
            assert_eq!(p.C_DecryptInit(h, &mut m, key), CKR_OK);
            let data = buf.as_mut_ptr();
            assert_eq!(p.C_Decrypt(h, data, len, data, &mut out_len), CKR_OK);
        }
        assert_eq!(&buf[..out_len as usize], plain.as_slice());
        // A wrong tag leaves no plaintext in a separate output buffer.
        expected[0] ^= 1;
        let mut out = vec![0xEEu8; plain.len()];
        let mut out_len = ulen(out.len());
        // SAFETY: as above.
        unsafe {
            assert_eq!(p.C_DecryptInit(h, &mut m, key), CKR_OK);
            let rv =
                p.C_Decrypt(h, expected.as_mut_ptr(), ulen(expected.len()), out.as_mut_ptr(), &mut out_len);
            assert_eq!(rv, CKR_ENCRYPTED_DATA_INVALID);
        }
        assert!(out.iter().all(|b| *b == 0 || *b == 0xEE), "no plaintext released");
    }
);
