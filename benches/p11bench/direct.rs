//! The ceiling: the workloads' operations on aws-lc-rs directly, in-process, with keys held
//! in memory as the library's own types. Every operation writes into a fresh buffer, as a
//! PKCS#11 call writes into the caller's.

use std::num::NonZeroU32;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    self, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, ParsedPublicKey};
use aws_lc_rs::{digest, pbkdf2};

use crate::p11::USER_PIN;
use crate::timing::Bench;
use crate::workloads::{DIGEST, MESSAGE, PAYLOAD, next_iv};

/// ecm-hsm's PIN KDF at its default cost (`pin_kdf_iterations` = 600,000): the floor of its
/// login, shown against the login row.
pub const DEFAULT_PIN_KDF_ITERATIONS: u32 = 600_000;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

pub fn pin_kdf() -> Bench<'static> {
    let iterations = NonZeroU32::new(DEFAULT_PIN_KDF_ITERATIONS).expect("non-zero");
    let salt = [0x5c; 16];
    Bench::new(move || {
        let mut key = [0u8; 32];
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, USER_PIN.as_bytes(), &mut key);
        Ok(())
    })
}

fn gcm_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x11; 32]).expect("AES-256 key"))
}

/// AES-256-GCM encryption of `len` bytes with a fresh IV per call.
pub fn gcm_encrypt_op(len: usize) -> impl FnMut() -> Result<(), String> + Send + 'static {
    let key = gcm_key();
    let data = vec![PAYLOAD; len];
    let mut counter = 0;
    move || {
        let mut out = Vec::with_capacity(len + 16);
        out.extend_from_slice(&data);
        let nonce = Nonce::assume_unique_for_key(next_iv(&mut counter));
        key.seal_in_place_append_tag(nonce, Aad::empty(), &mut out).map_err(err)
    }
}

pub fn gcm_encrypt_1k() -> Bench<'static> {
    Bench::new(gcm_encrypt_op(1024))
}

pub fn gcm_encrypt_64k() -> Bench<'static> {
    Bench::new(gcm_encrypt_op(65536))
}

pub fn gcm_decrypt_64k() -> Bench<'static> {
    const IV: [u8; 12] = [7; 12];
    let key = gcm_key();
    let mut ciphertext = vec![PAYLOAD; 65536];
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(IV), Aad::empty(), &mut ciphertext)
        .expect("seal");
    Bench::new(move || {
        let mut out = ciphertext.clone();
        key.open_in_place(Nonce::assume_unique_for_key(IV), Aad::empty(), &mut out).map(drop).map_err(err)
    })
}

const KEK: [u8; 32] = [0x22; 32];
const WRAPPED_KEY: [u8; 32] = [0x33; 32];

/// One RFC 5649 call under [`KEK`] into a 40-byte output: `wrap` pads and wraps `input`, else
/// it unwraps `input`. aws-lc-rs takes the KEK by value per call, so each call builds it.
fn kwp_call(input: &[u8], wrap: bool) -> Result<(), String> {
    let kek = AesKek::new(&AES_256, &KEK).map_err(err)?;
    let mut out = vec![0u8; 40];
    let done =
        if wrap { kek.wrap_with_padding(input, &mut out) } else { kek.unwrap_with_padding(input, &mut out) };
    done.map(drop).map_err(err)
}

/// RFC 5649 of a 32-byte key (40 bytes out).
pub fn kwp_wrap() -> Bench<'static> {
    Bench::new(|| kwp_call(&WRAPPED_KEY, true))
}

pub fn kwp_unwrap() -> Bench<'static> {
    let mut wrapped = [0u8; 40];
    AesKek::new(&AES_256, &KEK)
        .and_then(|k| k.wrap_with_padding(&WRAPPED_KEY, &mut wrapped).map(drop))
        .expect("wrap");
    Bench::new(move || kwp_call(&wrapped, false))
}

fn rsa_key(bits: usize) -> rsa::KeyPair {
    let size = if bits == 4096 { KeySize::Rsa4096 } else { KeySize::Rsa2048 };
    rsa::KeyPair::generate(size).expect("RSA key generation")
}

/// RSA sign of [`MESSAGE`] with SHA-256, PKCS#1 v1.5 or PSS.
pub fn rsa_sign_op(bits: usize, pss: bool) -> impl FnMut() -> Result<(), String> + Send + 'static {
    let key = rsa_key(bits);
    let rng = SystemRandom::new();
    let encoding: &'static dyn signature::RsaEncoding =
        if pss { &signature::RSA_PSS_SHA256 } else { &signature::RSA_PKCS1_SHA256 };
    move || {
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(encoding, &rng, &MESSAGE, &mut sig).map_err(err)
    }
}

pub fn rsa2048_sign() -> Bench<'static> {
    Bench::new(rsa_sign_op(2048, false))
}

pub fn rsa2048_sign_pss() -> Bench<'static> {
    Bench::new(rsa_sign_op(2048, true))
}

pub fn rsa4096_sign() -> Bench<'static> {
    Bench::new(rsa_sign_op(4096, false))
}

pub fn rsa2048_verify() -> Bench<'static> {
    let key = rsa_key(2048);
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), &MESSAGE, &mut sig).expect("sign");
    let public = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
        .expect("public key");
    Bench::new(move || public.verify_sig(&MESSAGE, &sig).map_err(err))
}

pub fn rsa2048_oaep_decrypt() -> Bench<'static> {
    let private = rsa::PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key generation");
    let public = OaepPublicEncryptingKey::new(private.public_key()).expect("public key");
    let mut ciphertext = vec![0u8; public.ciphertext_size()];
    public.encrypt(&OAEP_SHA256_MGF1SHA256, &[PAYLOAD; 32], &mut ciphertext, None).expect("encrypt");
    let private = OaepPrivateDecryptingKey::new(private).expect("private key");
    Bench::new(move || {
        let mut out = vec![0u8; private.min_output_size()];
        private.decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, None).map(drop).map_err(err)
    })
}

pub fn ecdsa_sign() -> Bench<'static> {
    let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key generation");
    let rng = SystemRandom::new();
    Bench::new(move || key.sign(&rng, &DIGEST).map(drop).map_err(err))
}

pub fn ecdsa_keygen() -> Bench<'static> {
    Bench::new(|| EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map(drop).map_err(err))
}

pub fn rsa2048_keygen() -> Bench<'static> {
    Bench::new(|| rsa::KeyPair::generate(KeySize::Rsa2048).map(drop).map_err(err))
}

pub fn rsa4096_keygen() -> Bench<'static> {
    Bench::new(|| rsa::KeyPair::generate(KeySize::Rsa4096).map(drop).map_err(err))
}

pub fn sha256_64k() -> Bench<'static> {
    let data = vec![PAYLOAD; 65536];
    Bench::new(move || {
        std::hint::black_box(digest::digest(&digest::SHA256, &data));
        Ok(())
    })
}

/// One append to an audit register holding the key (the record encoded, HMAC-linked and
/// written under the register's lock): what the library's register costs per record, in
/// this process; no PKCS#11 call measures it alone. (Was the ignored test `append_cost`.)
pub fn audit_register_append() -> Bench<'static> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let register = ecm_hsm::audit::Register::open(&dir.path().join("token-0.audit")).expect("a register");
    register.set_key(Some(ecm_hsm::audit::derive_key(&[0x5a; 32])));
    Bench::new(move || {
        // The directory lives as long as the workload.
        let _dir = &dir;
        let mut r = ecm_hsm::audit::Record::new("encrypt", 0);
        r.principal = "context-api";
        r.session = 17;
        r.key_uid = Some("3f2a9c1e-0d4b-4e7a-9b1c-5d6e7f8a9b0c");
        r.key_label = Some("dek-acme-v3");
        r.key_version = Some(3);
        r.mechanism = Some(cryptoki_sys::CKM_AES_GCM);
        register.append(&r).map(drop).map_err(err)
    })
}
