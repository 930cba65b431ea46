//! The cryptography: one registry of mechanisms and their implementations on aws-lc-rs.
//!
//! This is the only layer that names aws-lc-rs. Higher layers hand it owned key material and
//! typed parameters; it hands back operations ([`CipherOperation`], [`DigestOperation`]) and
//! bytes. The store's encryption at rest ([`seal`]) and the PIN KDF ([`pin_kdf`]) live here
//! too, so that every use of a primitive is in one place.

mod aes_ctr;
pub mod aes_gcm;
pub mod aes_gcm_message;
pub mod aes_modes;
pub mod aes_wrap;
pub mod check_value;
mod curve;
pub mod derive;
pub mod digest;
pub mod ec;
pub mod ecdh;
pub mod eddsa;
pub mod encoding;
mod hashed_input;
pub mod hkdf;
pub mod keygen;
pub mod mac;
pub mod ml_dsa;
pub mod ml_dsa_mu;
pub mod ml_kem;
pub mod montgomery;
pub mod pin_kdf;
pub mod pq;
pub mod pq_pkcs8;
pub mod prepared;
pub mod registry;
pub mod rng;
pub mod rsa;
pub mod seal;
pub mod secret_buffer;
pub mod sp800_108;
#[cfg(test)]
pub(crate) mod test_vectors;
mod whole_input;

use cryptoki_sys::CK_MECHANISM_TYPE;
use zeroize::Zeroizing;

use crate::{Error, Result};

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
    /// An IV (`CKM_AES_CBC`, `CKM_AES_CBC_PAD`) or the initial value of a key wrap.
    Iv(Vec<u8>),
    Ctr(CtrParams),
    Pss(PssParams),
    Oaep(OaepParams),
    Ecdh(EcdhParams),
    /// `CK_KEY_DERIVATION_STRING_DATA`: the data of CKM_CONCATENATE_BASE_AND_DATA,
    /// CKM_CONCATENATE_DATA_AND_BASE, CKM_XOR_BASE_AND_DATA, CKM_AES_ECB_ENCRYPT_DATA.
    Data(Vec<u8>),
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS` (CKM_AES_CBC_ENCRYPT_DATA).
    CbcData(derive::CbcDataParams),
    /// `CK_HKDF_PARAMS` (CKM_HKDF_DERIVE, CKM_HKDF_DATA).
    Hkdf(hkdf::HkdfParams),
    /// `CK_SP800_108_KDF_PARAMS` / `CK_SP800_108_FEEDBACK_KDF_PARAMS`.
    Kbkdf(sp800_108::KbkdfParams),
    /// `CK_SIGN_ADDITIONAL_CONTEXT` (CKM_ML_DSA, CKM_HASH_ML_DSA_SHA256...) or
    /// `CK_HASH_SIGN_ADDITIONAL_CONTEXT` (CKM_HASH_ML_DSA).
    SignContext(ml_dsa::SignContext),
    /// `CK_EDDSA_PARAMS` (CKM_EDDSA: Ed25519ctx and Ed25519ph).
    Eddsa(eddsa::EddsaParams),
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

/// `CK_AES_CTR_PARAMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrParams {
    pub counter_bits: u64,
    pub counter_block: [u8; 16],
}

/// `CK_RSA_PKCS_PSS_PARAMS`: the hash (`CKM_SHA256`, ...), the MGF (`CKG_MGF1_SHA256`, ...)
/// and the salt length in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PssParams {
    pub hash: CK_MECHANISM_TYPE,
    pub mgf: cryptoki_sys::CK_RSA_PKCS_MGF_TYPE,
    pub salt_len: u64,
}

/// `CK_RSA_PKCS_OAEP_PARAMS`: hash, MGF, and the label (`CKZ_DATA_SPECIFIED` source data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaepParams {
    pub hash: CK_MECHANISM_TYPE,
    pub mgf: cryptoki_sys::CK_RSA_PKCS_MGF_TYPE,
    pub label: Vec<u8>,
}

/// `CK_ECDH1_DERIVE_PARAMS`: the KDF (`CKD_NULL`, `CKD_SHA256_KDF`, ...), its shared data, and
/// the other party's public point (raw or DER OCTET STRING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdhParams {
    pub kdf: cryptoki_sys::CK_EC_KDF_TYPE,
    pub shared_data: Vec<u8>,
    pub public_data: Vec<u8>,
}

/// Secret key material handed down from an object, zeroized when dropped.
pub struct SecretKey {
    pub key_type: cryptoki_sys::CK_KEY_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

/// An RSA public key: big-endian unsigned integers, as in `CKA_MODULUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
}

/// An RSA private key; the CRT values are optional, as they are for `C_CreateObject`.
pub struct RsaPrivateKey {
    pub public: RsaPublicKey,
    pub private_exponent: Zeroizing<Vec<u8>>,
    pub crt: Option<RsaCrt>,
}

pub struct RsaCrt {
    pub prime_1: Zeroizing<Vec<u8>>,
    pub prime_2: Zeroizing<Vec<u8>>,
    pub exponent_1: Zeroizing<Vec<u8>>,
    pub exponent_2: Zeroizing<Vec<u8>>,
    pub coefficient: Zeroizing<Vec<u8>>,
}

/// An EC public key: `params` is the DER of the curve's OID (`CKA_EC_PARAMS`), `point` the
/// SEC1 uncompressed point itself (not wrapped in the OCTET STRING of `CKA_EC_POINT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcPublicKey {
    pub params: Vec<u8>,
    pub point: Vec<u8>,
}

/// An EC private key: the curve's OID in DER and the big-endian scalar (`CKA_VALUE`).
pub struct EcPrivateKey {
    pub params: Vec<u8>,
    pub value: Zeroizing<Vec<u8>>,
}

/// The key an operation uses, as the object layer hands it down.
pub enum KeyMaterial {
    Secret(SecretKey),
    RsaPublic(RsaPublicKey),
    RsaPrivate(RsaPrivateKey),
    EcPublic(EcPublicKey),
    EcPrivate(EcPrivateKey),
    /// An ML-DSA or ML-KEM public key (PKCS#11 3.2).
    PqPublic(pq::PqPublicKey),
    /// An ML-DSA or ML-KEM private key.
    PqPrivate(pq::PqPrivateKey),
}

/// The answer to a multi-part step (`C_SignUpdate`, `C_VerifyFinal`, `C_EncryptUpdate`, ...)
/// of an operation whose mechanism is single-part only (raw RSA, `CKM_ECDSA`, pure Ed25519
/// and Ed25519ctx, HashML-DSA). PKCS#11 names no code for the case;
/// `CKR_OPERATION_NOT_INITIALIZED`, "there is no active operation of an appropriate type in
/// the specified session", is in every step function's list, and is what Kryoptic answers and
/// the `cryptoki` crate's own suite expects (its HashML-DSA tests). The session layer then
/// ends the operation, as after any failed step. (Until 2026-12-07 this was
/// `CKR_MECHANISM_INVALID`, opencryptoki's answer, which is in none of those lists.)
pub const SINGLE_PART_ONLY: Error = Error::OperationNotInitialized;

/// A signature (or MAC) in progress. Single-part-only mechanisms (`CKM_RSA_PKCS`,
/// `CKM_RSA_X_509`, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`) refuse `update` and `finish` with
/// [`SINGLE_PART_ONLY`] (the default methods).
pub trait SignOperation: Send {
    /// The signature's length in bytes, known before signing.
    fn signature_len(&self) -> usize;
    fn update(&mut self, _part: &[u8]) -> Result<()> {
        Err(SINGLE_PART_ONLY)
    }
    /// Signs everything given to `update`.
    fn finish(&mut self) -> Result<Vec<u8>> {
        Err(SINGLE_PART_ONLY)
    }
    /// Single-part: signs `data` (for hash-and-sign mechanisms, hashing it first).
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>>;
}

/// A verification in progress; a wrong signature is `Error::SignatureInvalid`, a signature of
/// the wrong length `Error::SignatureLenRange`. Single-part-only mechanisms refuse `update`
/// and `finish` with [`SINGLE_PART_ONLY`] (the default methods).
pub trait VerifyOperation: Send {
    /// The length every signature this operation can accept has, where the operation knows
    /// it before it sees one (`C_VerifySignatureInit` refuses another length at once).
    fn signature_len(&self) -> Option<usize> {
        None
    }
    fn update(&mut self, _part: &[u8]) -> Result<()> {
        Err(SINGLE_PART_ONLY)
    }
    fn finish(&mut self, _signature: &[u8]) -> Result<()> {
        Err(SINGLE_PART_ONLY)
    }
    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()>;
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
    /// Output size of a single-part call over `input`: `single_len` unless the output's
    /// length depends on the input's content (RSA decryption, where the caller may offer a
    /// buffer only as long as the plaintext).
    fn single_output_len(&self, input: &[u8]) -> Result<usize> {
        self.single_len(input.len())
    }
    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// Multi-part steps; single-part-only mechanisms (RSA) keep these defaults, which refuse
    /// with [`SINGLE_PART_ONLY`].
    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(SINGLE_PART_ONLY)
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Err(SINGLE_PART_ONLY)
    }

    /// The longest input the next update may bring: what the operation can still hold
    /// (see [`secret_buffer::MAX_HELD_INPUT`]); the C ABI refuses a longer length before it
    /// reads the caller's buffer.
    fn update_room(&self) -> usize {
        secret_buffer::MAX_HELD_INPUT
    }

    /// As `single`, written into `out` (at least `single_len` bytes); returns the length
    /// written. Mechanisms on the hot path override it to write straight into the caller's
    /// buffer, without an intermediate allocation, copy and wipe.
    fn single_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        copy_into(self.single(input)?, out)
    }

    /// As `update`, written into `out` (at least `update_len` bytes).
    fn update_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        copy_into(self.update(input)?, out)
    }

    /// As `finish`, written into `out` (at least `final_len` bytes).
    fn finish_into(&mut self, out: &mut [u8]) -> Result<usize> {
        copy_into(self.finish()?, out)
    }
}

fn copy_into(bytes: Zeroizing<Vec<u8>>, out: &mut [u8]) -> Result<usize> {
    let dest = out.get_mut(..bytes.len()).ok_or(crate::Error::Internal("output longer than announced"))?;
    dest.copy_from_slice(&bytes);
    Ok(bytes.len())
}

/// A message digest in progress.
pub trait DigestOperation: Send {
    fn output_len(&self) -> usize;
    fn update(&mut self, input: &[u8]);
    fn finish(&mut self) -> Vec<u8>;
}

/// The families of mechanisms, for dispatching an operation to its implementation.
mod family {
    use cryptoki_sys::*;

    pub const AES_MODES: &[CK_MECHANISM_TYPE] = &[CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR];
    pub const AES_WRAPS: &[CK_MECHANISM_TYPE] =
        &[CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PKCS7];
    pub const MACS: &[CK_MECHANISM_TYPE] = &[
        CKM_SHA_1_HMAC,
        CKM_SHA224_HMAC,
        CKM_SHA256_HMAC,
        CKM_SHA384_HMAC,
        CKM_SHA512_HMAC,
        CKM_SHA_1_HMAC_GENERAL,
        CKM_SHA224_HMAC_GENERAL,
        CKM_SHA256_HMAC_GENERAL,
        CKM_SHA384_HMAC_GENERAL,
        CKM_SHA512_HMAC_GENERAL,
        CKM_SHA3_224_HMAC,
        CKM_SHA3_256_HMAC,
        CKM_SHA3_384_HMAC,
        CKM_SHA3_512_HMAC,
        CKM_SHA3_224_HMAC_GENERAL,
        CKM_SHA3_256_HMAC_GENERAL,
        CKM_SHA3_384_HMAC_GENERAL,
        CKM_SHA3_512_HMAC_GENERAL,
        CKM_AES_CMAC,
        CKM_AES_CMAC_GENERAL,
    ];
    pub const RSA_CIPHERS: &[CK_MECHANISM_TYPE] = &[CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_RSA_X_509];
    pub const RSA_SIGNATURES: &[CK_MECHANISM_TYPE] = &[
        CKM_RSA_PKCS,
        CKM_RSA_X_509,
        CKM_RSA_PKCS_PSS,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
    ];
    pub const ECDSA: &[CK_MECHANISM_TYPE] =
        &[CKM_ECDSA, CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512];
}

/// Starts an encryption with `mechanism` under `key`.
pub fn encrypt_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_ENCRYPT)?;
    cipher_init(mechanism, key, true)
}

/// Starts a decryption with `mechanism` under `key`.
pub fn decrypt_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_DECRYPT)?;
    cipher_init(mechanism, key, false)
}

/// Starts an encryption (`encrypt`) or decryption with a key a session may keep between
/// operations: AES-GCM reuses the key's schedule; other mechanisms start from its material.
pub fn cipher_init_prepared(
    mechanism: &Mechanism,
    key: &std::sync::Arc<prepared::PreparedKey>,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let function = if encrypt { cryptoki_sys::CKF_ENCRYPT } else { cryptoki_sys::CKF_DECRYPT };
    registry::require(mechanism.kind, function)?;
    if mechanism.kind == cryptoki_sys::CKM_AES_GCM {
        let MechanismParams::Gcm(p) = &mechanism.params else {
            return Err(crate::Error::MechanismParamInvalid);
        };
        return Ok(Box::new(aes_gcm::GcmOperation::with_key(key, p, encrypt)?));
    }
    cipher_init(mechanism, &key.material, encrypt)
}

fn cipher_init(mechanism: &Mechanism, key: &KeyMaterial, encrypt: bool) -> Result<Box<dyn CipherOperation>> {
    let kind = mechanism.kind;
    if family::RSA_CIPHERS.contains(&kind) {
        return match (key, encrypt) {
            (KeyMaterial::RsaPublic(k), true) => rsa::encrypt_init(kind, &mechanism.params, k),
            (KeyMaterial::RsaPrivate(k), false) => rsa::decrypt_init(kind, &mechanism.params, k),
            _ => Err(crate::Error::KeyTypeInconsistent),
        };
    }
    let KeyMaterial::Secret(secret) = key else {
        return Err(crate::Error::KeyTypeInconsistent);
    };
    if kind == cryptoki_sys::CKM_AES_GCM {
        let MechanismParams::Gcm(p) = &mechanism.params else {
            return Err(crate::Error::MechanismParamInvalid);
        };
        return Ok(Box::new(aes_gcm::GcmOperation::new(secret, p, encrypt)?));
    }
    if family::AES_MODES.contains(&kind) {
        return aes_modes::cipher(kind, &mechanism.params, secret, encrypt);
    }
    if family::AES_WRAPS.contains(&kind) {
        return aes_wrap::cipher(kind, &mechanism.params, secret, encrypt);
    }
    Err(crate::Error::MechanismInvalid)
}

/// Starts a signature (or MAC) with `mechanism` under `key`. The mechanism decides the
/// algorithm; a key of another type is `CKR_KEY_TYPE_INCONSISTENT`.
pub fn sign_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn SignOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_SIGN)?;
    let (kind, params) = (mechanism.kind, &mechanism.params);
    match key {
        KeyMaterial::Secret(secret) if family::MACS.contains(&kind) => Ok(mac::init(kind, params, secret)?),
        KeyMaterial::RsaPrivate(k) if family::RSA_SIGNATURES.contains(&kind) => {
            rsa::sign_init(kind, params, k)
        }
        KeyMaterial::EcPrivate(k) if family::ECDSA.contains(&kind) => ec::sign_init(kind, params, k),
        KeyMaterial::EcPrivate(k) if kind == cryptoki_sys::CKM_EDDSA => eddsa::sign_init(params, k),
        KeyMaterial::PqPrivate(k) if kind == cryptoki_sys::CKM_ML_DSA => ml_dsa::sign_init(params, k),
        KeyMaterial::PqPrivate(k) if ml_dsa_mu::is_hash_ml_dsa(kind) => ml_dsa_mu::sign_init(kind, params, k),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// Starts a verification with `mechanism` under `key`.
pub fn verify_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn VerifyOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_VERIFY)?;
    let (kind, params) = (mechanism.kind, &mechanism.params);
    match key {
        KeyMaterial::Secret(secret) if family::MACS.contains(&kind) => Ok(mac::init(kind, params, secret)?),
        KeyMaterial::RsaPublic(k) if family::RSA_SIGNATURES.contains(&kind) => {
            rsa::verify_init(kind, params, k)
        }
        KeyMaterial::EcPublic(k) if family::ECDSA.contains(&kind) => ec::verify_init(kind, params, k),
        KeyMaterial::EcPublic(k) if kind == cryptoki_sys::CKM_EDDSA => eddsa::verify_init(params, k),
        KeyMaterial::PqPublic(k) if kind == cryptoki_sys::CKM_ML_DSA => ml_dsa::verify_init(params, k),
        KeyMaterial::PqPublic(k) if ml_dsa_mu::is_hash_ml_dsa(kind) => {
            ml_dsa_mu::verify_init(kind, params, k)
        }
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// Starts a verification of a signature given before the data (`C_VerifySignatureInit`,
/// PKCS#11 3.2): [`verify_init`], refusing at once a signature of `signature_len` bytes when
/// every signature of the mechanism under `key` has another length
/// (`CKR_SIGNATURE_LEN_RANGE`, "in which case no active operation is initiated").
pub fn verify_signature_init(
    mechanism: &Mechanism,
    key: &KeyMaterial,
    signature_len: usize,
) -> Result<Box<dyn VerifyOperation>> {
    let operation = verify_init(mechanism, key)?;
    match operation.signature_len() {
        Some(n) if n != signature_len => Err(Error::SignatureLenRange),
        _ => Ok(operation),
    }
}

/// Starts a signature with recovery (`C_SignRecoverInit`): single-part, output the signature.
pub fn sign_recover_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_SIGN_RECOVER)?;
    match key {
        KeyMaterial::RsaPrivate(k) => rsa::sign_recover_init(mechanism.kind, &mechanism.params, k),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// Starts a verification with recovery (`C_VerifyRecoverInit`): output the recovered data.
pub fn verify_recover_init(mechanism: &Mechanism, key: &KeyMaterial) -> Result<Box<dyn CipherOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_VERIFY_RECOVER)?;
    match key {
        KeyMaterial::RsaPublic(k) => rsa::verify_recover_init(mechanism.kind, &mechanism.params, k),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// A generated key pair, public half first.
pub enum KeyPair {
    Rsa(RsaPublicKey, RsaPrivateKey),
    Ec(EcPublicKey, EcPrivateKey),
    /// ML-DSA or ML-KEM.
    Pq(pq::PqPublicKey, pq::PqPrivateKey),
}

/// `C_GenerateKeyPair`: RSA from the modulus size and optional public exponent, EC (prime,
/// Edwards and Montgomery curves) from the curve's parameters, ML-DSA and ML-KEM from the
/// parameter set (`CKA_PARAMETER_SET`).
pub fn generate_key_pair(
    mechanism: &Mechanism,
    modulus_bits: Option<u64>,
    public_exponent: Option<&[u8]>,
    ec_params: Option<&[u8]>,
    parameter_set: Option<cryptoki_sys::CK_ULONG>,
) -> Result<KeyPair> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_GENERATE_KEY_PAIR)?;
    if mechanism.params != MechanismParams::None {
        return Err(crate::Error::MechanismParamInvalid);
    }
    match mechanism.kind {
        cryptoki_sys::CKM_RSA_PKCS_KEY_PAIR_GEN => {
            let bits = modulus_bits.ok_or(crate::Error::TemplateIncomplete)?;
            let (public, private) = rsa::generate_key_pair(bits, public_exponent)?;
            Ok(KeyPair::Rsa(public, private))
        }
        cryptoki_sys::CKM_EC_KEY_PAIR_GEN => {
            let (public, private) =
                ec::generate_key_pair(ec_params.ok_or(crate::Error::TemplateIncomplete)?)?;
            Ok(KeyPair::Ec(public, private))
        }
        cryptoki_sys::CKM_EC_EDWARDS_KEY_PAIR_GEN => {
            let params = ec_params.ok_or(crate::Error::TemplateIncomplete)?;
            let (public, private) = eddsa::generate_key_pair(params).map_err(|e| curve_error(e, params))?;
            Ok(KeyPair::Ec(public, private))
        }
        cryptoki_sys::CKM_EC_MONTGOMERY_KEY_PAIR_GEN => {
            let params = ec_params.ok_or(crate::Error::TemplateIncomplete)?;
            let (public, private) =
                montgomery::generate_key_pair(params).map_err(|e| curve_error(e, params))?;
            Ok(KeyPair::Ec(public, private))
        }
        cryptoki_sys::CKM_ML_DSA_KEY_PAIR_GEN | cryptoki_sys::CKM_ML_KEM_KEY_PAIR_GEN => {
            let key_type = registry::key_pair_type(mechanism.kind)?;
            let set = parameter_set.ok_or(crate::Error::TemplateIncomplete)?;
            let (public, private) = pq::generate_key_pair(key_type, set)?;
            Ok(KeyPair::Pq(public, private))
        }
        _ => Err(crate::Error::MechanismInvalid),
    }
}

/// `C_EncapsulateKey`'s ciphertext length under `key`, known without encapsulating.
pub fn encapsulated_len(mechanism: &Mechanism, key: &KeyMaterial) -> Result<usize> {
    kem_check(mechanism, cryptoki_sys::CKF_ENCAPSULATE)?;
    match key {
        KeyMaterial::PqPublic(k) => ml_kem::ciphertext_len(k),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// `C_EncapsulateKey`: a ciphertext under the public `key` and the shared secret in it.
pub fn encapsulate(mechanism: &Mechanism, key: &KeyMaterial) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    kem_check(mechanism, cryptoki_sys::CKF_ENCAPSULATE)?;
    match key {
        KeyMaterial::PqPublic(k) => ml_kem::encapsulate(k),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// `C_DecapsulateKey`: the shared secret in `ciphertext`, under the private `key`.
pub fn decapsulate(
    mechanism: &Mechanism,
    key: &KeyMaterial,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    kem_check(mechanism, cryptoki_sys::CKF_DECAPSULATE)?;
    match key {
        KeyMaterial::PqPrivate(k) => ml_kem::decapsulate(k, ciphertext),
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// CKM_ML_KEM, registered for `function`, takes no parameter.
fn kem_check(mechanism: &Mechanism, function: cryptoki_sys::CK_FLAGS) -> Result<()> {
    registry::require(mechanism.kind, function)?;
    match &mechanism.params {
        MechanismParams::None => Ok(()),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(()),
        _ => Err(crate::Error::MechanismParamInvalid),
    }
}

/// A key pair generation's refusal of `params` that name no curve of its family: a
/// well-formed name of another curve is `Error::CurveNotSupported` too.
fn curve_error(e: crate::Error, params: &[u8]) -> crate::Error {
    match e {
        crate::Error::AttributeValueInvalid => encoding::unsupported_curve_error(params),
        other => other,
    }
}

/// `C_DeriveKey` with one base key: `len` bytes of key value (see [`derive_with`]).
pub fn derive(mechanism: &Mechanism, base: &KeyMaterial, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    derive_with(mechanism, base, None, len)
}

/// `C_DeriveKey`: `len` bytes of key value derived from `base` with `mechanism`, and from
/// `other`, the key named inside the parameter ([`derive::other_key`]: the second key of
/// CKM_CONCATENATE_BASE_AND_KEY, an HKDF salt key), which the caller has fetched.
/// CKM_ECDH1_DERIVE takes an EC private key; the others a secret key.
pub fn derive_with(
    mechanism: &Mechanism,
    base: &KeyMaterial,
    other: Option<&KeyMaterial>,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_DERIVE)?;
    match (mechanism.kind, base) {
        (cryptoki_sys::CKM_ECDH1_DERIVE, KeyMaterial::EcPrivate(k)) => {
            ecdh::derive(&mechanism.params, k, len)
        }
        (cryptoki_sys::CKM_ECDH1_DERIVE, _) => Err(crate::Error::KeyTypeInconsistent),
        (_, KeyMaterial::Secret(k)) => {
            let other = match other {
                Some(KeyMaterial::Secret(o)) => Some(o),
                Some(_) => return Err(crate::Error::KeyTypeInconsistent),
                None => None,
            };
            derive::secret(mechanism, k, other, len)
        }
        _ => Err(crate::Error::KeyTypeInconsistent),
    }
}

/// The length of the key `mechanism` derives from `base` (and `other`) when the template
/// names none and the key type has no size of its own: the ECDH shared secret's, the
/// length the data or keys give a concatenation, XOR or encryption; `None` where the
/// template must say (HKDF, SP 800-108, extraction).
pub fn natural_derive_len(
    mechanism: &Mechanism,
    base: &KeyMaterial,
    other: Option<&KeyMaterial>,
) -> Result<Option<usize>> {
    match base {
        KeyMaterial::EcPrivate(k) => ec::shared_secret_len(&k.params).map(Some),
        KeyMaterial::Secret(k) => {
            let other = match other {
                Some(KeyMaterial::Secret(o)) => Some(o),
                _ => None,
            };
            Ok(derive::natural_len(mechanism, k, other))
        }
        _ => Ok(None),
    }
}

/// Wraps `key_bytes` (a secret key's value, or a private key's PKCS#8) under `wrapping_key`.
pub fn wrap(mechanism: &Mechanism, wrapping_key: &KeyMaterial, key_bytes: &[u8]) -> Result<Vec<u8>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_WRAP)?;
    let kind = mechanism.kind;
    match wrapping_key {
        KeyMaterial::Secret(secret) if family::AES_WRAPS.contains(&kind) => {
            aes_wrap::wrap(kind, &mechanism.params, secret, key_bytes).map_err(wrap_error)
        }
        // The other wrapping mechanisms are ciphers applied to the key bytes in one part.
        _ => {
            let mut op = encrypt_init(mechanism, wrapping_key).map_err(wrap_error)?;
            op.single(key_bytes).map(|c| c.to_vec()).map_err(wrap_error)
        }
    }
}

/// The length [`wrap`] would give `key_len` bytes, when it is known without wrapping (the
/// AES key wraps); `None` for mechanisms whose output length needs the work done.
pub fn wrapped_len(
    mechanism: &Mechanism,
    wrapping_key: &KeyMaterial,
    key_len: usize,
) -> Option<Result<usize>> {
    match wrapping_key {
        KeyMaterial::Secret(secret) if family::AES_WRAPS.contains(&mechanism.kind) => Some(
            registry::require(mechanism.kind, cryptoki_sys::CKF_WRAP)
                .and_then(|_| aes_wrap::wrapped_len(mechanism.kind, &mechanism.params, secret, key_len))
                .map_err(wrap_error),
        ),
        _ => None,
    }
}

/// Unwraps a blob made by [`wrap`]; every failure to open it is one opaque error.
pub fn unwrap(
    mechanism: &Mechanism,
    unwrapping_key: &KeyMaterial,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_UNWRAP)?;
    let kind = mechanism.kind;
    match unwrapping_key {
        KeyMaterial::Secret(secret) if family::AES_WRAPS.contains(&kind) => {
            aes_wrap::unwrap(kind, &mechanism.params, secret, wrapped).map_err(unwrap_error)
        }
        _ => {
            let mut op = decrypt_init(mechanism, unwrapping_key).map_err(unwrap_error)?;
            op.single(wrapped).map_err(unwrap_error)
        }
    }
}

/// A cipher's refusal, as `C_WrapKey` names it: the key to wrap has the wrong size for the
/// mechanism, or the wrapping key the wrong type.
fn wrap_error(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::DataLenRange => crate::Error::KeySizeRange,
        crate::Error::KeyTypeInconsistent => crate::Error::WrappingKeyTypeInconsistent,
        other => other,
    }
}

/// A cipher's refusal, as `C_UnwrapKey` names it.
fn unwrap_error(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::EncryptedDataLenRange => crate::Error::WrappedKeyLenRange,
        crate::Error::EncryptedDataInvalid => crate::Error::WrappedKeyInvalid,
        crate::Error::KeyTypeInconsistent => crate::Error::UnwrappingKeyTypeInconsistent,
        other => other,
    }
}

/// Sets up `key` for message-based encryption (`encrypt`) or decryption with `mechanism`;
/// the per-message parameters come with each message.
pub fn message_init(mechanism: &Mechanism, key: &SecretKey, encrypt: bool) -> Result<aes_gcm::GcmMessageKey> {
    let function =
        if encrypt { cryptoki_sys::CKF_MESSAGE_ENCRYPT } else { cryptoki_sys::CKF_MESSAGE_DECRYPT };
    registry::require(mechanism.kind, function)?;
    if mechanism.params != MechanismParams::None {
        return Err(crate::Error::MechanismParamInvalid);
    }
    aes_gcm::GcmMessageKey::new(key)
}

/// Starts a digest with `mechanism`.
pub fn digest_init(mechanism: &Mechanism) -> Result<Box<dyn DigestOperation>> {
    registry::require(mechanism.kind, cryptoki_sys::CKF_DIGEST)?;
    if mechanism.params != MechanismParams::None {
        return Err(crate::Error::MechanismParamInvalid);
    }
    Ok(Box::new(digest::Digest::new(mechanism.kind)?))
}

#[cfg(test)]
mod verify_signature_tests {
    use cryptoki_sys::*;

    use super::*;

    /// `C_VerifySignatureInit`'s check: each mechanism's signatures have one length under a
    /// given key, and a signature of another length is refused before any data comes.
    #[test]
    fn a_signature_given_first_must_have_the_one_length_of_its_mechanism_and_key() {
        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let none = |kind| Mechanism { kind, params: MechanismParams::None };
        let general = |kind, len: CK_ULONG| Mechanism {
            kind,
            params: MechanismParams::Opaque(len.to_ne_bytes().to_vec()),
        };
        let hmac = || {
            KeyMaterial::Secret(SecretKey {
                key_type: CKK_GENERIC_SECRET,
                value: Zeroizing::new(vec![7; 32]),
            })
        };
        let ecdsa = KeyMaterial::EcPublic(ec::generate_key_pair(P256).unwrap().0);
        let ed25519 = KeyMaterial::EcPublic(eddsa::generate_key_pair(eddsa::ED25519_PARAMS).unwrap().0);
        let rsa = KeyMaterial::RsaPublic(rsa::generate_key_pair(2048, None).unwrap().0);
        let ml_dsa = || KeyMaterial::PqPublic(ml_dsa::generate_key_pair(CKP_ML_DSA_65).unwrap().0);
        let cases = [
            (none(CKM_ECDSA_SHA256), ecdsa, 64),
            (none(CKM_EDDSA), ed25519, 64),
            (none(CKM_SHA256_RSA_PKCS), rsa, 256),
            (none(CKM_SHA256_HMAC), hmac(), 32),
            (general(CKM_SHA256_HMAC_GENERAL, 10), hmac(), 10),
            // ML-DSA's length comes from the key's parameter set (`ml_dsa_signature_len`).
            (none(CKM_ML_DSA), ml_dsa(), 3309),
            (none(CKM_HASH_ML_DSA_SHA256), ml_dsa(), 3309),
        ];
        for (mechanism, key, len) in &cases {
            let kind = mechanism.kind;
            assert!(verify_signature_init(mechanism, key, *len).is_ok(), "{kind:#x} with {len} bytes");
            for wrong in [0, len - 1, len + 1] {
                let refused = verify_signature_init(mechanism, key, wrong).err();
                assert_eq!(refused, Some(Error::SignatureLenRange), "{kind:#x} with {wrong} bytes");
            }
        }
        // What `verify_init` refuses is refused first, whatever the signature's length.
        let wrong_key = verify_signature_init(&none(CKM_ECDSA_SHA256), &hmac(), 0).err();
        assert_eq!(wrong_key, Some(Error::KeyTypeInconsistent));
    }
}
