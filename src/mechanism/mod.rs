//! The cryptography: one registry of mechanisms and their implementations on aws-lc-rs.
//!
//! This is the only layer that names aws-lc-rs. Higher layers hand it owned key material and
//! typed parameters; it hands back operations ([`CipherOperation`], [`DigestOperation`]) and
//! bytes. The store's encryption at rest ([`seal`]) and the PIN KDF ([`pin_kdf`]) live here
//! too, so that every use of a primitive is in one place.

pub mod aes_gcm;
pub mod digest;
pub mod keygen;
pub mod pin_kdf;
pub mod registry;
pub mod rng;
pub mod seal;

use cryptoki_sys::CK_MECHANISM_TYPE;
use zeroize::Zeroizing;

use crate::Result;

pub use registry::{MechanismInfo, mechanism_info, mechanism_list};

/// A mechanism as the caller asked for it, its parameter already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub params: MechanismParams,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechanismParams {
    None,
    Gcm(GcmParams),
    /// Parameter bytes of a mechanism whose structure this module does not decode; the
    /// mechanism's implementation rejects them if it expected none.
    Opaque(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    pub iv: Vec<u8>,
    pub aad: Vec<u8>,
    pub tag_bits: u64,
}

/// Secret key material handed down from an object, zeroized when dropped.
pub struct SecretKey {
    pub key_type: cryptoki_sys::CK_KEY_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

/// An encryption or decryption in progress (single- or multi-part).
///
/// The `*_len` methods let the session layer answer size queries and `CKR_BUFFER_TOO_SMALL`
/// without consuming the operation; the others do the work.
pub trait CipherOperation: Send {
    /// Output size of a single-part call over `input_len` bytes.
    fn single_len(&self, input_len: usize) -> Result<usize>;
    /// Output size of an update over `input_len` more bytes.
    fn update_len(&self, input_len: usize) -> usize;
    /// Output size of the final call.
    fn final_len(&self) -> usize;
    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>>;
}

/// A message digest in progress.
pub trait DigestOperation: Send {
    fn output_len(&self) -> usize;
    fn update(&mut self, input: &[u8]);
    fn finish(&mut self) -> Vec<u8>;
}

/// Starts an encryption with `mechanism` under `key`.
pub fn encrypt_init(mechanism: &Mechanism, key: &SecretKey) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_ENCRYPT)?;
    match &mechanism.params {
        MechanismParams::Gcm(p) => Ok(Box::new(aes_gcm::GcmOperation::new(key, p, true)?)),
        _ => Err(crate::Error::MechanismParamInvalid),
    }
}

/// Starts a decryption with `mechanism` under `key`.
pub fn decrypt_init(mechanism: &Mechanism, key: &SecretKey) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_DECRYPT)?;
    match &mechanism.params {
        MechanismParams::Gcm(p) => Ok(Box::new(aes_gcm::GcmOperation::new(key, p, false)?)),
        _ => Err(crate::Error::MechanismParamInvalid),
    }
}

/// Starts a digest with `mechanism`.
pub fn digest_init(mechanism: &Mechanism) -> Result<Box<dyn DigestOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_DIGEST)?;
    if mechanism.params != MechanismParams::None {
        return Err(crate::Error::MechanismParamInvalid);
    }
    Ok(Box::new(digest::Digest::new(mechanism.kind)?))
}
