//! The shortest end-to-end path: load, initialize a token, log in, generate a key, encrypt.
mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, ObjectClass};

isolated_test!(
    fn token_key_and_gcm_round_trip() {
        let (_p, _slot, s) = logged_in();
        let key = s
            .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Token(true)])
            .unwrap();
        let mut iv = [7u8; 12];
        let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
        let ct = s.encrypt(&Mechanism::AesGcm(params), key, b"hello").unwrap();
        assert_eq!(ct.len(), 5 + 16);
        let mut iv = [7u8; 12];
        let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
        assert_eq!(s.decrypt(&Mechanism::AesGcm(params), key, &ct).unwrap(), b"hello");
        let found = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!(found, vec![key]);
    }
);
