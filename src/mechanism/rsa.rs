//! RSA: CKM_RSA_PKCS_KEY_PAIR_GEN; signatures with CKM_RSA_PKCS, CKM_SHA*_RSA_PKCS,
//! CKM_RSA_PKCS_PSS, CKM_SHA*_RSA_PKCS_PSS and CKM_RSA_X_509; encryption with CKM_RSA_PKCS,
//! CKM_RSA_PKCS_OAEP and CKM_RSA_X_509.
//!
//! AWS-LC does the work wherever aws-lc-rs offers it: key generation, PKCS#1 v1.5 and PSS
//! signatures with SHA-256/384/512 (PSS with a salt as long as the hash), verification of those
//! and of PKCS#1 v1.5 SHA-1 signatures, PKCS#1 v1.5 and OAEP (SHA-1/256/384/512) encryption.
//! aws-lc-rs has no raw RSA operation, so the rest — CKM_RSA_X_509, CKM_RSA_PKCS over data that
//! is not a SHA-256/384/512 DigestInfo, SHA-1/SHA-224 PKCS#1 v1.5 signing, SHA-224
//! verification, PSS with SHA-1/SHA-224 or another salt length — is the RSA primitive of the
//! RustCrypto `rsa` crate (constant-time arithmetic, blinded with AWS-LC randomness, checked by
//! re-encryption) under the PKCS#1 encodings written here (RFC 8017 §9).
//!
//! Key sizes: keys of 1024 to 8192 bits import, and verify signatures; signing, encryption
//! and decryption take keys from the process's `rsa_min_bits` (default 2048, see
//! [`set_min_modulus_bits`]). Generation makes 2048, 3072 or 4096-bit keys (not below
//! `rsa_min_bits`) with e = 65537. AWS-LC takes keys from 2048 bits, so smaller ones use the
//! `rsa` crate's primitive; OAEP, which only AWS-LC offers here, needs 2048 bits. The
//! engine's key is built once per `*_init`. Decryption failures of every kind are one
//! `Error::EncryptedDataInvalid`.

use ::rsa::BoxedUint;
use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
use aws_lc_rs::digest::{self, Context, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeyPairComponents, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    PublicKeyComponents,
};
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaEncoding, RsaParameters};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::encoding::{self, RsaParts, strip_leading_zeros};
use super::prepared::{self, PreparedKeys};
use super::{
    CipherOperation, MechanismParams, OaepParams, PssParams, RsaCrt, RsaPrivateKey, RsaPublicKey,
    SignOperation, VerifyOperation,
};
use crate::{Error, Result};

/// Smallest and largest modulus the module accepts at all, in bits: 1024-bit keys still sign
/// old documents that need checking.
pub const LEGACY_MIN_MODULUS_BITS: u64 = 1024;
pub const MAX_MODULUS_BITS: u64 = 8192;
/// The smallest modulus AWS-LC takes; smaller keys use the `rsa` crate's primitive.
const AWS_MIN_MODULUS_BITS: usize = 2048;

/// The smallest modulus generated or used to sign, encrypt or decrypt (`rsa_min_bits`).
static MIN_MODULUS_BITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2048);

/// Sets the smallest modulus generated or used to sign, encrypt or decrypt, for the process
/// (from the settings' `rsa_min_bits`, at `C_Initialize`); clamped to 1024..=8192.
pub fn set_min_modulus_bits(bits: u64) {
    let bits = bits.clamp(LEGACY_MIN_MODULUS_BITS, MAX_MODULUS_BITS);
    MIN_MODULUS_BITS.store(bits, std::sync::atomic::Ordering::Relaxed);
}

/// The smallest modulus generated or used to sign, encrypt or decrypt.
pub fn min_modulus_bits() -> u64 {
    MIN_MODULUS_BITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A hash as the RSA mechanisms name it: mechanism, MGF1 generator, AWS-LC algorithm and the
/// DER prefix of its PKCS#1 v1.5 DigestInfo.
struct Hash {
    mechanism: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    algorithm: &'static digest::Algorithm,
    digest_info: &'static [u8],
}

const SHA1: Hash = Hash {
    mechanism: CKM_SHA_1,
    mgf: CKG_MGF1_SHA1,
    algorithm: &digest::SHA1_FOR_LEGACY_USE_ONLY,
    digest_info: &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
};
const SHA224: Hash = Hash {
    mechanism: CKM_SHA224,
    mgf: CKG_MGF1_SHA224,
    algorithm: &digest::SHA224,
    digest_info: &[
        0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00,
        0x04, 0x1c,
    ],
};
const SHA256: Hash = Hash {
    mechanism: CKM_SHA256,
    mgf: CKG_MGF1_SHA256,
    algorithm: &digest::SHA256,
    digest_info: &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ],
};
const SHA384: Hash = Hash {
    mechanism: CKM_SHA384,
    mgf: CKG_MGF1_SHA384,
    algorithm: &digest::SHA384,
    digest_info: &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
        0x04, 0x30,
    ],
};
const SHA512: Hash = Hash {
    mechanism: CKM_SHA512,
    mgf: CKG_MGF1_SHA512,
    algorithm: &digest::SHA512,
    digest_info: &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
        0x04, 0x40,
    ],
};
const HASHES: [&Hash; 5] = [&SHA1, &SHA224, &SHA256, &SHA384, &SHA512];

impl Hash {
    fn by_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<&'static Hash> {
        HASHES.into_iter().find(|h| h.mechanism == mechanism)
    }

    fn len(&self) -> usize {
        self.algorithm.output_len()
    }

    /// The hash a DigestInfo names, if `data` is exactly one.
    fn of_digest_info(data: &[u8]) -> Option<&'static Hash> {
        HASHES
            .into_iter()
            .find(|h| data.len() == h.digest_info.len() + h.len() && data.starts_with(h.digest_info))
    }

    /// AWS-LC's PKCS#1 v1.5 signing encoding for this hash, if it has one.
    fn aws_pkcs1_signing(&self) -> Option<&'static dyn RsaEncoding> {
        match self.mechanism {
            CKM_SHA256 => Some(&sig::RSA_PKCS1_SHA256),
            CKM_SHA384 => Some(&sig::RSA_PKCS1_SHA384),
            CKM_SHA512 => Some(&sig::RSA_PKCS1_SHA512),
            _ => None,
        }
    }

    /// AWS-LC's PKCS#1 v1.5 verification parameters for this hash, if it has them.
    fn aws_pkcs1_verification(&self) -> Option<&'static RsaParameters> {
        match self.mechanism {
            CKM_SHA_1 => Some(&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
            CKM_SHA256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            CKM_SHA384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            CKM_SHA512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            _ => None,
        }
    }

    /// AWS-LC's PSS encoding and parameters for this hash with a salt as long as the hash.
    fn aws_pss(&self, salt_len: usize) -> Option<(&'static dyn RsaEncoding, &'static RsaParameters)> {
        if salt_len != self.len() {
            return None;
        }
        match self.mechanism {
            CKM_SHA256 => Some((&sig::RSA_PSS_SHA256, &sig::RSA_PSS_2048_8192_SHA256)),
            CKM_SHA384 => Some((&sig::RSA_PSS_SHA384, &sig::RSA_PSS_2048_8192_SHA384)),
            CKM_SHA512 => Some((&sig::RSA_PSS_SHA512, &sig::RSA_PSS_2048_8192_SHA512)),
            _ => None,
        }
    }

    fn aws_oaep(&self) -> Option<&'static OaepAlgorithm> {
        match self.mechanism {
            CKM_SHA_1 => Some(&OAEP_SHA1_MGF1SHA1),
            CKM_SHA256 => Some(&OAEP_SHA256_MGF1SHA256),
            CKM_SHA384 => Some(&OAEP_SHA384_MGF1SHA384),
            CKM_SHA512 => Some(&OAEP_SHA512_MGF1SHA512),
            _ => None,
        }
    }

    fn digest(&self, parts: &[&[u8]]) -> Digest {
        let mut ctx = Context::new(self.algorithm);
        for part in parts {
            ctx.update(part);
        }
        ctx.finish()
    }
}

fn no_params(params: &MechanismParams) -> Result<()> {
    match params {
        MechanismParams::None => Ok(()),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// The bit length of a big-endian integer without leading zeros.
fn bit_len(digits: &[u8]) -> usize {
    match digits.first() {
        Some(first) => digits.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// AWS-LC randomness for the blinding of the `rsa` crate's private operation.
struct AwsLcRng;

impl rand_core::TryRng for AwsLcRng {
    type Error = aws_lc_rs::error::Unspecified;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        aws_lc_rs::rand::fill(dst)
    }
}

impl rand_core::TryCryptoRng for AwsLcRng {}

fn uint(bytes: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(bytes)
}

/// The last `k` bytes of `value`'s big-endian encoding (the value is below the modulus).
fn to_k_bytes(value: &BoxedUint, k: usize) -> Zeroizing<Vec<u8>> {
    let full = Zeroizing::new(value.to_be_bytes());
    let start = full.len().saturating_sub(k);
    let mut out = Zeroizing::new(vec![0u8; k - (full.len() - start)]);
    out.extend_from_slice(&full[start..]);
    out
}

/// RSAEP/RSAVP1 on a `k`-byte input; `None` if the input is not below the modulus.
fn raw_public(key: &::rsa::PublicKey, k: usize, input: &[u8]) -> Option<Vec<u8>> {
    let m = Zeroizing::new(BoxedUint::from_be_slice(input, key.n_bits_precision()).ok()?);
    if *m >= key.n().as_ref() {
        return None;
    }
    let c = ::rsa::hazmat::rsa_encrypt(key, &m).ok()?;
    Some(to_k_bytes(&c, k).to_vec())
}

/// RSADP/RSASP1 on a `k`-byte input, blinded and checked by re-encryption; `None` if the input
/// is not below the modulus.
fn raw_private(key: &::rsa::PrivateKey, k: usize, input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let c = BoxedUint::from_be_slice(input, key.n_bits_precision()).ok()?;
    if c >= key.n().as_ref() {
        return None;
    }
    let m = Zeroizing::new(::rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut AwsLcRng), &c).ok()?);
    Some(to_k_bytes(&m, k))
}

/// Left-pads `data` with zeros to `k` bytes (`data` is at most `k` bytes).
fn left_pad(data: &[u8], k: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; k - data.len()]);
    out.extend_from_slice(data);
    out
}

/// A public key checked for size: modulus and exponent without leading zeros.
struct Public {
    n: Vec<u8>,
    e: Vec<u8>,
    k: usize,
    bits: usize,
}

impl Public {
    /// The key, if its modulus has `min_bits` to 8192 bits (else `Error::KeySizeRange`).
    fn new(key: &RsaPublicKey, min_bits: u64) -> Result<Public> {
        let n = strip_leading_zeros(&key.modulus).to_vec();
        let e = strip_leading_zeros(&key.public_exponent).to_vec();
        let bits = bit_len(&n);
        if !(min_bits..=MAX_MODULUS_BITS).contains(&(bits as u64)) {
            return Err(Error::KeySizeRange);
        }
        // An even modulus or exponent (or e = 1) is no RSA key.
        if n.last().is_none_or(|b| b & 1 == 0) || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
            return Err(Error::KeyTypeInconsistent);
        }
        Ok(Public { k: n.len(), bits, n, e })
    }

    /// Whether AWS-LC takes this key.
    fn aws_sized(&self) -> bool {
        self.bits >= AWS_MIN_MODULUS_BITS
    }

    fn components(&self) -> PublicKeyComponents<&[u8]> {
        PublicKeyComponents { n: &self.n, e: &self.e }
    }

    fn aws_verifier(&self, params: &'static RsaParameters) -> Result<ParsedPublicKey> {
        self.components().to_parsed_public_key(params).map_err(|_| Error::KeyTypeInconsistent)
    }

    fn aws_encrypting(&self) -> Result<PublicEncryptingKey> {
        self.components().try_into().map_err(|_| Error::KeyTypeInconsistent)
    }

    fn raw(&self) -> Result<::rsa::PublicKey> {
        let range = LEGACY_MIN_MODULUS_BITS as usize..=MAX_MODULUS_BITS as usize;
        ::rsa::PublicKey::new_with_size_limits(uint(&self.n), uint(&self.e), range)
            .map_err(|_| Error::KeyTypeInconsistent)
    }
}

/// A private key checked for size, with its CRT values (derived if the object has none).
struct Private {
    public: Public,
    d: Zeroizing<Vec<u8>>,
    crt: RsaCrt,
}

impl Private {
    /// As [`Public::new`], with the private components.
    fn new(key: &RsaPrivateKey, min_bits: u64) -> Result<Private> {
        let public = Public::new(&key.public, min_bits)?;
        let crt = match &key.crt {
            Some(crt) => RsaCrt {
                prime_1: crt.prime_1.clone(),
                prime_2: crt.prime_2.clone(),
                exponent_1: crt.exponent_1.clone(),
                exponent_2: crt.exponent_2.clone(),
                coefficient: crt.coefficient.clone(),
            },
            None => derive_crt(key)?,
        };
        Ok(Private { public, d: key.private_exponent.clone(), crt })
    }

    fn parts(&self) -> RsaParts<'_> {
        RsaParts {
            n: &self.public.n,
            e: &self.public.e,
            d: &self.d,
            p: &self.crt.prime_1,
            q: &self.crt.prime_2,
            dp: &self.crt.exponent_1,
            dq: &self.crt.exponent_2,
            qinv: &self.crt.coefficient,
        }
    }

    fn aws_key_pair(&self) -> Result<KeyPair> {
        let components = KeyPairComponents {
            public_key: self.public.components(),
            d: self.d.as_slice(),
            p: self.crt.prime_1.as_slice(),
            q: self.crt.prime_2.as_slice(),
            dP: self.crt.exponent_1.as_slice(),
            dQ: self.crt.exponent_2.as_slice(),
            qInv: self.crt.coefficient.as_slice(),
        };
        KeyPair::from_components(&components).map_err(|_| Error::KeyTypeInconsistent)
    }

    fn aws_decrypting(&self) -> Result<PrivateDecryptingKey> {
        let pkcs8 = encoding::rsa_pkcs8(&self.parts()).map_err(|_| Error::KeyTypeInconsistent)?;
        PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| Error::KeyTypeInconsistent)
    }

    fn raw(&self) -> Result<::rsa::PrivateKey> {
        let primes = vec![uint(&self.crt.prime_1), uint(&self.crt.prime_2)];
        ::rsa::PrivateKey::from_components(uint(&self.public.n), uint(&self.public.e), uint(&self.d), primes)
            .map_err(|_| Error::KeyTypeInconsistent)
    }
}

/// The CRT values of a key that has only n, e and d: the primes are recovered with the
/// deterministic method of NIST SP 800-56B rev. 2 appendix C.2 (which needs 2^16 < e), then the
/// exponents and the coefficient follow. Inconsistent components are
/// `Error::KeyTypeInconsistent`.
pub fn derive_crt(key: &RsaPrivateKey) -> Result<RsaCrt> {
    let n = strip_leading_zeros(&key.public.modulus);
    let e = strip_leading_zeros(&key.public.public_exponent);
    if n.is_empty() || e.is_empty() || bit_len(n) as u64 > MAX_MODULUS_BITS {
        return Err(Error::KeyTypeInconsistent);
    }
    let raw = ::rsa::PrivateKey::from_components(uint(n), uint(e), uint(&key.private_exponent), Vec::new())
        .map_err(|_| Error::KeyTypeInconsistent)?;
    let bytes = |value: &BoxedUint| {
        let full = Zeroizing::new(value.to_be_bytes());
        Zeroizing::new(strip_leading_zeros(&full).to_vec())
    };
    let primes = raw.primes();
    let (Some(dp), Some(dq), Some(qinv)) = (raw.dp(), raw.dq(), raw.crt_coefficient().map(Zeroizing::new))
    else {
        return Err(Error::KeyTypeInconsistent);
    };
    if primes.len() != 2 {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(RsaCrt {
        prime_1: bytes(&primes[0]),
        prime_2: bytes(&primes[1]),
        exponent_1: bytes(dp),
        exponent_2: bytes(dq),
        coefficient: bytes(&qinv),
    })
}

/// Checks that an RSA public key can be imported: 1024 to 8192 bits (`Error::KeySizeRange`),
/// odd modulus and exponent (`Error::KeyTypeInconsistent`). For C_CreateObject.
pub fn check_public_key(key: &RsaPublicKey) -> Result<()> {
    Public::new(key, LEGACY_MIN_MODULUS_BITS).map(|_| ())
}

/// Checks that an RSA private key can be imported: 1024 to 8192 bits and consistent
/// components (deriving CRT values if absent). For C_CreateObject and C_UnwrapKey.
pub fn check_private_key(key: &RsaPrivateKey) -> Result<()> {
    let private = Private::new(key, LEGACY_MIN_MODULUS_BITS)?;
    if private.public.aws_sized() { private.aws_key_pair().map(|_| ()) } else { private.raw().map(|_| ()) }
}

/// Generates an RSA key pair of `modulus_bits` (2048, 3072 or 4096, and not below
/// [`min_modulus_bits`]; others are `Error::KeySizeRange`) with public exponent 65537; a `public_exponent` other than 65537 is
/// `Error::AttributeValueInvalid`. The private key carries all CRT values.
pub fn generate_key_pair(
    modulus_bits: u64,
    public_exponent: Option<&[u8]>,
) -> Result<(RsaPublicKey, RsaPrivateKey)> {
    if modulus_bits < min_modulus_bits() {
        return Err(Error::KeySizeRange);
    }
    let size = match modulus_bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return Err(Error::KeySizeRange),
    };
    if public_exponent.is_some_and(|e| strip_leading_zeros(e) != [0x01, 0x00, 0x01]) {
        return Err(Error::AttributeValueInvalid);
    }
    let pair = KeyPair::generate(size).map_err(|_| Error::Internal("RSA key generation failed"))?;
    let pkcs8 = pair.as_der().map_err(|_| Error::Internal("RSA key export failed"))?;
    let private = encoding::rsa_private_key_from_pkcs8(pkcs8.as_ref())
        .ok_or(Error::Internal("RSA key export failed"))?;
    Ok((private.public.clone(), private))
}

/// EMSA-PKCS1-v1_5 (type 1) padding of `t` to `k` bytes; `None` if `t` is longer than k - 11.
fn pkcs1_type1(t: &[u8], k: usize) -> Option<Vec<u8>> {
    let ps = k.checked_sub(t.len() + 3).filter(|ps| *ps >= 8)?;
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + ps, 0xff);
    em.push(0x00);
    em.extend_from_slice(t);
    Some(em)
}

/// MGF1 with `hash` (RFC 8017 B.2.1): `len` bytes from `seed`, XORed into `out`.
fn mgf1_xor(hash: &Hash, seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(hash.len()).enumerate() {
        let mask = hash.digest(&[seed, &(counter as u32).to_be_bytes()]);
        for (o, m) in chunk.iter_mut().zip(mask.as_ref()) {
            *o ^= m;
        }
    }
}

/// EMSA-PSS-ENCODE (RFC 8017 9.1.1) of the hash `m_hash` for a modulus of `bits` bits, as a
/// `k`-byte integer representative.
fn pss_encode(hash: &Hash, m_hash: &[u8], salt_len: usize, bits: usize, k: usize) -> Result<Vec<u8>> {
    let em_bits = bits - 1;
    let em_len = em_bits.div_ceil(8);
    let h_len = hash.len();
    if em_len < h_len + salt_len + 2 {
        return Err(Error::MechanismParamInvalid);
    }
    let mut salt = vec![0u8; salt_len];
    super::rng::fill(&mut salt)?;
    let h = hash.digest(&[&[0u8; 8], m_hash, &salt]);
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - salt_len - 1] = 0x01;
    db[db_len - salt_len..].copy_from_slice(&salt);
    mgf1_xor(hash, h.as_ref(), &mut db);
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = vec![0u8; k - em_len];
    em.extend_from_slice(&db);
    em.extend_from_slice(h.as_ref());
    em.push(0xbc);
    Ok(em)
}

/// EMSA-PSS-VERIFY (RFC 8017 9.1.2) of the `k`-byte representative `em` against `m_hash`.
fn pss_verify(hash: &Hash, m_hash: &[u8], em: &[u8], salt_len: usize, bits: usize) -> bool {
    let em_bits = bits - 1;
    let em_len = em_bits.div_ceil(8);
    let h_len = hash.len();
    // The representative is below 2^emBits: any leading byte beyond emLen is zero.
    let (extra, em) = em.split_at(em.len() - em_len);
    if extra.iter().any(|b| *b != 0) || em_len < h_len + salt_len + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if em[0] & !top_mask != 0 {
        return false;
    }
    let h = &em[db_len..em_len - 1];
    let mut db = em[..db_len].to_vec();
    mgf1_xor(hash, h, &mut db);
    db[0] &= top_mask;
    let ps_len = db_len - salt_len - 1;
    if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 0x01 {
        return false;
    }
    let salt = &db[ps_len + 1..];
    hash.digest(&[&[0u8; 8], m_hash, salt]).as_ref() == h
}

/// What a signature mechanism does with its input.
#[derive(Clone, Copy)]
enum Scheme {
    /// CKM_RSA_PKCS: the input (a DigestInfo, or any data up to k - 11 bytes) is padded as is.
    Pkcs1Raw,
    /// CKM_SHA*_RSA_PKCS: the input is hashed and put in a DigestInfo.
    Pkcs1(&'static Hash),
    /// CKM_RSA_PKCS_PSS (`hashed`: the input is the hash) and CKM_SHA*_RSA_PKCS_PSS.
    Pss { hash: &'static Hash, salt_len: usize, hashed: bool },
    /// CKM_RSA_X_509: the input, left-padded with zeros to k bytes, is the representative.
    X509,
}

impl Scheme {
    fn new(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams, bits: usize) -> Result<Scheme> {
        let hashed = |h| Hash::by_mechanism(h).ok_or(Error::MechanismInvalid);
        let scheme = match mechanism {
            CKM_RSA_PKCS => Scheme::Pkcs1Raw,
            CKM_RSA_X_509 => Scheme::X509,
            CKM_SHA1_RSA_PKCS => Scheme::Pkcs1(hashed(CKM_SHA_1)?),
            CKM_SHA224_RSA_PKCS => Scheme::Pkcs1(hashed(CKM_SHA224)?),
            CKM_SHA256_RSA_PKCS => Scheme::Pkcs1(hashed(CKM_SHA256)?),
            CKM_SHA384_RSA_PKCS => Scheme::Pkcs1(hashed(CKM_SHA384)?),
            CKM_SHA512_RSA_PKCS => Scheme::Pkcs1(hashed(CKM_SHA512)?),
            CKM_RSA_PKCS_PSS => return pss_scheme(params, None, bits),
            CKM_SHA1_RSA_PKCS_PSS => return pss_scheme(params, Some(CKM_SHA_1), bits),
            CKM_SHA224_RSA_PKCS_PSS => return pss_scheme(params, Some(CKM_SHA224), bits),
            CKM_SHA256_RSA_PKCS_PSS => return pss_scheme(params, Some(CKM_SHA256), bits),
            CKM_SHA384_RSA_PKCS_PSS => return pss_scheme(params, Some(CKM_SHA384), bits),
            CKM_SHA512_RSA_PKCS_PSS => return pss_scheme(params, Some(CKM_SHA512), bits),
            _ => return Err(Error::MechanismInvalid),
        };
        no_params(params)?;
        Ok(scheme)
    }

    /// Whether C_SignUpdate/C_VerifyUpdate are allowed (the hash-and-sign mechanisms).
    fn hashes_input(self) -> Option<&'static Hash> {
        match self {
            Scheme::Pkcs1(hash) => Some(hash),
            Scheme::Pss { hash, hashed: false, .. } => Some(hash),
            _ => None,
        }
    }
}

/// `CK_RSA_PKCS_PSS_PARAMS`: a known hash (equal to the mechanism's, if it has one), MGF1 with
/// that same hash, and a salt that fits the modulus.
fn pss_scheme(
    params: &MechanismParams,
    mechanism_hash: Option<CK_MECHANISM_TYPE>,
    bits: usize,
) -> Result<Scheme> {
    let MechanismParams::Pss(PssParams { hash, mgf, salt_len }) = params else {
        return Err(Error::MechanismParamInvalid);
    };
    let hash = Hash::by_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?;
    if mechanism_hash.is_some_and(|m| m != hash.mechanism) || *mgf != hash.mgf {
        return Err(Error::MechanismParamInvalid);
    }
    let salt_len = usize::try_from(*salt_len).map_err(|_| Error::MechanismParamInvalid)?;
    let em_len = (bits - 1).div_ceil(8);
    if em_len < hash.len().saturating_add(salt_len).saturating_add(2) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Scheme::Pss { hash, salt_len, hashed: mechanism_hash.is_none() })
}

/// Hash-and-sign mechanisms hash as parts come; the others refuse parts.
struct Accumulator {
    context: Option<Context>,
}

impl Accumulator {
    fn new(scheme: Scheme) -> Accumulator {
        Accumulator { context: scheme.hashes_input().map(|h| Context::new(h.algorithm)) }
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.context.as_mut().ok_or(Error::MechanismInvalid)?.update(part);
        Ok(())
    }

    fn finish(&mut self) -> Result<Digest> {
        let context = self.context.as_mut().ok_or(Error::MechanismInvalid)?;
        let algorithm = context.algorithm();
        Ok(std::mem::replace(context, Context::new(algorithm)).finish())
    }
}

/// A signature in progress.
pub struct RsaSign {
    scheme: Scheme,
    k: usize,
    bits: usize,
    aws: Option<std::sync::Arc<KeyPair>>,
    raw: Option<::rsa::PrivateKey>,
    /// Kept for CKM_RSA_PKCS, whose input decides the engine: the raw key is built on demand.
    private: Option<Private>,
    input: Accumulator,
}

/// The AWS-LC signing key of `private`, built once per key (see `prepared.rs`).
fn prepared_key_pair(private: &Private) -> Result<std::sync::Arc<KeyPair>> {
    static PREPARED: PreparedKeys<KeyPair> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[&private.public.n, &private.public.e, &private.d])?;
    PREPARED.get_or_build(fingerprint, || private.aws_key_pair())
}

/// The AWS-LC decrypting key of `private`, built once per key; each operation takes a new
/// reference to it.
fn prepared_decrypting_key(private: &Private) -> Result<PrivateDecryptingKey> {
    static PREPARED: PreparedKeys<PrivateDecryptingKey> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[&private.public.n, &private.public.e, &private.d])?;
    Ok(PrivateDecryptingKey::clone(&*PREPARED.get_or_build(fingerprint, || private.aws_decrypting())?))
}

/// The AWS-LC verifying key of `public` for the scheme `scheme_id` names (`params`), built
/// once per key and scheme: its Montgomery values, computed at its first verification, stay
/// with it (building it at every `C_VerifyInit` cost a quarter of a 2048-bit verification).
fn prepared_verifier(
    public: &Public,
    scheme_id: &[u8],
    params: &'static RsaParameters,
) -> Result<std::sync::Arc<ParsedPublicKey>> {
    static PREPARED: PreparedKeys<ParsedPublicKey> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[&public.n, &public.e, scheme_id])?;
    PREPARED.get_or_build(fingerprint, || public.aws_verifier(params))
}

/// Starts a signature with `mechanism` under `key`.
pub fn sign_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
) -> Result<Box<dyn SignOperation>> {
    let private = Private::new(key, min_modulus_bits())?;
    let (k, bits) = (private.public.k, private.public.bits);
    let scheme = Scheme::new(mechanism, params, bits)?;
    let aws_capable = private.public.aws_sized()
        && match scheme {
            Scheme::Pkcs1Raw => true,
            Scheme::Pkcs1(hash) => hash.aws_pkcs1_signing().is_some(),
            Scheme::Pss { hash, salt_len, .. } => hash.aws_pss(salt_len).is_some(),
            Scheme::X509 => false,
        };
    let aws = if aws_capable { Some(prepared_key_pair(&private)?) } else { None };
    let (raw, private) = match scheme {
        Scheme::Pkcs1Raw if aws.is_some() => (None, Some(private)),
        _ if aws.is_none() => (Some(private.raw()?), None),
        _ => (None, None),
    };
    Ok(Box::new(RsaSign { scheme, k, bits, aws, raw, private, input: Accumulator::new(scheme) }))
}

impl RsaSign {
    fn aws(&self) -> Result<&KeyPair> {
        self.aws.as_deref().ok_or(Error::Internal("RSA signing key missing"))
    }

    fn aws_sign(&self, encoding: &'static dyn RsaEncoding, hash: &Hash, value: &[u8]) -> Result<Vec<u8>> {
        let digest = Digest::import_less_safe(value, hash.algorithm).map_err(|_| Error::DataLenRange)?;
        let mut signature = vec![0u8; self.k];
        self.aws()?
            .sign_digest(encoding, &digest, &mut signature)
            .map_err(|_| Error::Internal("RSA signing failed"))?;
        Ok(signature)
    }

    fn raw_sign(&mut self, representative: &[u8]) -> Result<Vec<u8>> {
        if self.raw.is_none() {
            let private = self.private.as_ref().ok_or(Error::Internal("RSA signing key missing"))?;
            self.raw = Some(private.raw()?);
        }
        let raw = self.raw.as_ref().ok_or(Error::Internal("RSA signing key missing"))?;
        // Only CKM_RSA_X_509 can hand in a representative that is not below the modulus.
        let signature = raw_private(raw, self.k, representative).ok_or(Error::DataInvalid)?;
        Ok(signature.to_vec())
    }

    /// Signs a hash (of `hash`) with the scheme's padding.
    fn sign_hash(&mut self, hash: &'static Hash, m_hash: &[u8]) -> Result<Vec<u8>> {
        match self.scheme {
            Scheme::Pss { salt_len, .. } => {
                if m_hash.len() != hash.len() {
                    return Err(Error::DataLenRange);
                }
                match hash.aws_pss(salt_len).filter(|_| self.aws.is_some()) {
                    Some((encoding, _)) => self.aws_sign(encoding, hash, m_hash),
                    None => {
                        let em = pss_encode(hash, m_hash, salt_len, self.bits, self.k)?;
                        self.raw_sign(&em)
                    }
                }
            }
            _ => match hash.aws_pkcs1_signing().filter(|_| self.aws.is_some()) {
                Some(encoding) => self.aws_sign(encoding, hash, m_hash),
                None => {
                    let t = [hash.digest_info, m_hash].concat();
                    let em = pkcs1_type1(&t, self.k).ok_or(Error::KeySizeRange)?;
                    self.raw_sign(&em)
                }
            },
        }
    }
}

impl SignOperation for RsaSign {
    fn signature_len(&self) -> usize {
        self.k
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let hash = self.scheme.hashes_input().ok_or(Error::MechanismInvalid)?;
        let digest = self.input.finish()?;
        self.sign_hash(hash, digest.as_ref())
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        match self.scheme {
            Scheme::Pkcs1Raw => {
                if data.len() + 11 > self.k {
                    return Err(Error::DataLenRange);
                }
                // A SHA-256/384/512 DigestInfo is the same signature by AWS-LC; anything else is
                // padded here and signed with the raw operation.
                if self.aws.is_some()
                    && let Some(hash) = Hash::of_digest_info(data)
                    && let Some(encoding) = hash.aws_pkcs1_signing()
                {
                    return self.aws_sign(encoding, hash, &data[hash.digest_info.len()..]);
                }
                let em = pkcs1_type1(data, self.k).ok_or(Error::DataLenRange)?;
                self.raw_sign(&em)
            }
            Scheme::Pss { hash, hashed: true, .. } => self.sign_hash(hash, data),
            Scheme::X509 => {
                if data.len() > self.k {
                    return Err(Error::DataLenRange);
                }
                let representative = left_pad(data, self.k);
                self.raw_sign(&representative)
            }
            Scheme::Pkcs1(_) | Scheme::Pss { hashed: false, .. } => {
                self.update(data)?;
                self.finish()
            }
        }
    }
}

/// A verification in progress.
pub struct RsaVerify {
    scheme: Scheme,
    k: usize,
    bits: usize,
    aws: Option<std::sync::Arc<ParsedPublicKey>>,
    raw: Option<::rsa::PublicKey>,
    input: Accumulator,
}

/// Starts a verification with `mechanism` under `key`.
pub fn verify_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
) -> Result<Box<dyn VerifyOperation>> {
    // Old signatures made with 1024-bit keys still need checking, whatever `rsa_min_bits`.
    let public = Public::new(key, LEGACY_MIN_MODULUS_BITS)?;
    let scheme = Scheme::new(mechanism, params, public.bits)?;
    // The parameters AWS-LC verifies with, and what tells them apart in the cache.
    let aws_params = match scheme {
        _ if !public.aws_sized() => None,
        Scheme::Pkcs1(hash) => hash.aws_pkcs1_verification().map(|params| (b"pkcs1", hash, params)),
        Scheme::Pss { hash, salt_len, .. } => {
            hash.aws_pss(salt_len).map(|(_, params)| (b"pss-h", hash, params))
        }
        Scheme::Pkcs1Raw | Scheme::X509 => None,
    };
    let (aws, raw) = match aws_params {
        Some((kind, hash, params)) => {
            let scheme_id = [&kind[..], &hash.mechanism.to_be_bytes()].concat();
            (Some(prepared_verifier(&public, &scheme_id, params)?), None)
        }
        None => (None, Some(public.raw()?)),
    };
    Ok(Box::new(RsaVerify {
        scheme,
        k: public.k,
        bits: public.bits,
        aws,
        raw,
        input: Accumulator::new(scheme),
    }))
}

impl RsaVerify {
    /// The representative of a `k`-byte signature (RSAVP1).
    fn open(&self, signature: &[u8]) -> Result<Vec<u8>> {
        let raw = self.raw.as_ref().ok_or(Error::Internal("RSA verification key missing"))?;
        raw_public(raw, self.k, signature).ok_or(Error::SignatureInvalid)
    }

    fn verify_hash(&self, hash: &'static Hash, m_hash: &[u8], signature: &[u8]) -> Result<()> {
        if let Some(aws) = &self.aws {
            let digest = Digest::import_less_safe(m_hash, hash.algorithm).map_err(|_| Error::DataLenRange)?;
            return aws.verify_digest_sig(&digest, signature).map_err(|_| Error::SignatureInvalid);
        }
        let em = self.open(signature)?;
        let valid = match self.scheme {
            Scheme::Pss { salt_len, .. } => pss_verify(hash, m_hash, &em, salt_len, self.bits),
            _ => pkcs1_type1(&[hash.digest_info, m_hash].concat(), self.k)
                .is_some_and(|expected| expected == em),
        };
        if valid { Ok(()) } else { Err(Error::SignatureInvalid) }
    }
}

impl VerifyOperation for RsaVerify {
    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let hash = self.scheme.hashes_input().ok_or(Error::MechanismInvalid)?;
        let digest = self.input.finish()?;
        if signature.len() != self.k {
            return Err(Error::SignatureLenRange);
        }
        self.verify_hash(hash, digest.as_ref(), signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        match self.scheme {
            Scheme::Pkcs1(_) | Scheme::Pss { hashed: false, .. } => {
                self.update(data)?;
                return self.finish(signature);
            }
            Scheme::Pkcs1Raw if data.len() + 11 > self.k => return Err(Error::DataLenRange),
            Scheme::X509 if data.len() > self.k => return Err(Error::DataLenRange),
            Scheme::Pss { hash, hashed: true, .. } if data.len() != hash.len() => {
                return Err(Error::DataLenRange);
            }
            _ => {}
        }
        if signature.len() != self.k {
            return Err(Error::SignatureLenRange);
        }
        if let Scheme::Pss { hash, .. } = self.scheme {
            return self.verify_hash(hash, data, signature);
        }
        let representative = self.open(signature)?;
        let valid = match self.scheme {
            Scheme::Pkcs1Raw => pkcs1_type1(data, self.k).is_some_and(|expected| expected == representative),
            _ => *left_pad(data, self.k) == representative,
        };
        if valid { Ok(()) } else { Err(Error::SignatureInvalid) }
    }
}

/// The padding of an encryption mechanism, checked against its parameters.
enum Padding {
    Pkcs1,
    Oaep { algorithm: &'static OaepAlgorithm, hash_len: usize, label: Vec<u8> },
    X509,
}

impl Padding {
    fn new(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams) -> Result<Padding> {
        match mechanism {
            CKM_RSA_PKCS => no_params(params).map(|_| Padding::Pkcs1),
            CKM_RSA_X_509 => no_params(params).map(|_| Padding::X509),
            CKM_RSA_PKCS_OAEP => {
                let MechanismParams::Oaep(OaepParams { hash, mgf, label }) = params else {
                    return Err(Error::MechanismParamInvalid);
                };
                let hash = Hash::by_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?;
                // AWS-LC has no OAEP with SHA-224; the MGF must use the same hash.
                let algorithm = hash.aws_oaep().ok_or(Error::MechanismParamInvalid)?;
                if *mgf != hash.mgf {
                    return Err(Error::MechanismParamInvalid);
                }
                Ok(Padding::Oaep { algorithm, hash_len: hash.len(), label: label.clone() })
            }
            _ => Err(Error::MechanismInvalid),
        }
    }

    /// The longest plaintext for a `k`-byte modulus.
    fn max_input(&self, k: usize) -> usize {
        match self {
            Padding::Pkcs1 => k - 11,
            Padding::Oaep { hash_len, .. } => k - 2 * hash_len - 2,
            Padding::X509 => k,
        }
    }

    fn label(&self) -> Option<&[u8]> {
        match self {
            Padding::Oaep { label, .. } if !label.is_empty() => Some(label),
            _ => None,
        }
    }
}

enum Encryptor {
    Pkcs1(Pkcs1PublicEncryptingKey),
    Oaep(OaepPublicEncryptingKey, &'static OaepAlgorithm),
    /// PKCS#1 v1.5 with a key below AWS-LC's sizes, by the `rsa` crate.
    RawPkcs1(::rsa::PublicKey),
    Raw(::rsa::PublicKey),
}

/// A single-part RSA encryption.
pub struct RsaEncrypt {
    padding: Padding,
    engine: Encryptor,
    k: usize,
}

/// Starts an encryption with `mechanism` under `key` (single-part only).
pub fn encrypt_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
) -> Result<Box<dyn CipherOperation>> {
    let padding = Padding::new(mechanism, params)?;
    let public = Public::new(key, min_modulus_bits())?;
    let engine = match &padding {
        Padding::Oaep { .. } if !public.aws_sized() => return Err(Error::KeySizeRange),
        Padding::Pkcs1 if !public.aws_sized() => Encryptor::RawPkcs1(public.raw()?),
        Padding::Pkcs1 => Encryptor::Pkcs1(
            Pkcs1PublicEncryptingKey::new(public.aws_encrypting()?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
        ),
        Padding::Oaep { algorithm, .. } => Encryptor::Oaep(
            OaepPublicEncryptingKey::new(public.aws_encrypting()?).map_err(|_| Error::KeyTypeInconsistent)?,
            algorithm,
        ),
        Padding::X509 => Encryptor::Raw(public.raw()?),
    };
    Ok(Box::new(RsaEncrypt { padding, engine, k: public.k }))
}

impl CipherOperation for RsaEncrypt {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        if input_len > self.padding.max_input(self.k) {
            return Err(Error::DataLenRange);
        }
        Ok(self.k)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        let written = match &self.engine {
            Encryptor::Pkcs1(key) => key.encrypt(input, &mut out).map_err(|_| Error::DataLenRange)?.len(),
            Encryptor::Oaep(key, algorithm) => key
                .encrypt(algorithm, input, &mut out, self.padding.label())
                .map_err(|_| Error::DataLenRange)?
                .len(),
            Encryptor::RawPkcs1(key) => {
                let c =
                    key.pkcs1v15_encrypt_with_rng(&mut AwsLcRng, input).map_err(|_| Error::DataLenRange)?;
                let len = c.len();
                out.get_mut(..len).ok_or(Error::DataLenRange)?.copy_from_slice(&c);
                len
            }
            Encryptor::Raw(key) => {
                let c = raw_public(key, self.k, &left_pad(input, self.k)).ok_or(Error::DataInvalid)?;
                out.copy_from_slice(&c);
                c.len()
            }
        };
        out.truncate(written);
        Ok(out)
    }

    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
}

enum Decryptor {
    Pkcs1(Pkcs1PrivateDecryptingKey),
    Oaep(OaepPrivateDecryptingKey, &'static OaepAlgorithm),
    /// PKCS#1 v1.5 with a key below AWS-LC's sizes, by the `rsa` crate (blinded).
    RawPkcs1(Box<::rsa::PrivateKey>),
    Raw(Box<::rsa::PrivateKey>),
}

/// A ciphertext and its plaintext.
type Decrypted = (Vec<u8>, Zeroizing<Vec<u8>>);

/// A single-part RSA decryption.
pub struct RsaDecrypt {
    padding: Padding,
    engine: Decryptor,
    k: usize,
    /// The plaintext of the last input whose exact length was asked for, kept for the call
    /// that delivers it: clients offer a buffer as long as the plaintext, not the modulus.
    decrypted: parking_lot::Mutex<Option<Decrypted>>,
}

/// Starts a decryption with `mechanism` under `key` (single-part only).
pub fn decrypt_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
) -> Result<Box<dyn CipherOperation>> {
    let padding = Padding::new(mechanism, params)?;
    let private = Private::new(key, min_modulus_bits())?;
    let engine = match &padding {
        Padding::Oaep { .. } if !private.public.aws_sized() => return Err(Error::KeySizeRange),
        Padding::Pkcs1 if !private.public.aws_sized() => Decryptor::RawPkcs1(Box::new(private.raw()?)),
        Padding::Pkcs1 => Decryptor::Pkcs1(
            Pkcs1PrivateDecryptingKey::new(prepared_decrypting_key(&private)?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
        ),
        Padding::Oaep { algorithm, .. } => Decryptor::Oaep(
            OaepPrivateDecryptingKey::new(prepared_decrypting_key(&private)?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
            algorithm,
        ),
        Padding::X509 => Decryptor::Raw(Box::new(private.raw()?)),
    };
    Ok(Box::new(RsaDecrypt {
        padding,
        engine,
        k: private.public.k,
        decrypted: parking_lot::Mutex::new(None),
    }))
}

impl CipherOperation for RsaDecrypt {
    /// The modulus size: an upper bound of the plaintext, exact for CKM_RSA_X_509.
    fn single_len(&self, input_len: usize) -> Result<usize> {
        if input_len != self.k {
            return Err(Error::EncryptedDataLenRange);
        }
        Ok(self.k)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    /// The plaintext's exact length for the padded mechanisms: the input is decrypted now and
    /// its plaintext kept for the call that delivers it (one decryption in all).
    fn single_output_len(&self, input: &[u8]) -> Result<usize> {
        let k = self.single_len(input.len())?;
        if matches!(self.padding, Padding::X509) {
            return Ok(k);
        }
        let plaintext = self.decrypt(input)?;
        let len = plaintext.len();
        *self.decrypted.lock() = Some((input.to_vec(), plaintext));
        Ok(len)
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if let Some((decrypted_input, plaintext)) = self.decrypted.get_mut().take()
            && decrypted_input == input
        {
            return Ok(plaintext);
        }
        self.decrypt(input)
    }

    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
}

impl RsaDecrypt {
    fn decrypt(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        // One opaque error for every failure: no padding oracle beyond the mechanism's own.
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        let written = match &self.engine {
            Decryptor::Pkcs1(key) => key.decrypt(input, &mut out).map(|p| p.len()),
            Decryptor::Oaep(key, algorithm) => {
                key.decrypt(algorithm, input, &mut out, self.padding.label()).map(|p| p.len())
            }
            Decryptor::RawPkcs1(key) => {
                let m = Zeroizing::new(
                    key.pkcs1v15_decrypt_with_rng(&mut AwsLcRng, input)
                        .map_err(|_| Error::EncryptedDataInvalid)?,
                );
                out[..m.len()].copy_from_slice(&m);
                Ok(m.len())
            }
            Decryptor::Raw(key) => {
                let m = raw_private(key, self.k, input).ok_or(Error::EncryptedDataInvalid)?;
                out.copy_from_slice(&m);
                Ok(m.len())
            }
        }
        .map_err(|_| Error::EncryptedDataInvalid)?;
        out.truncate(written);
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The 2048-bit key of Wycheproof's rsa_oaep_2048_sha256_mgf1sha256_test.json,
    /// rsa_signature_2048_sha256_test.json and rsa_pss_2048_sha256_mgf1_32_test.json.
    pub(crate) const MODULUS: &str = "
        a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097
        b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d981
        4c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a19
        69816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5";

    /// Its `privateKeyPkcs8`.
    pub(crate) const PKCS8: &str = "
        308204bd020100300d06092a864886f70d0101010500048204a7308204a30201000282010100a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094f
        a1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e
        42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d9814c22da610428e09c7d9658594266f5c021d0fceca08d945a12be
        82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a1969816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c
        4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d502030100010282010024cdc62317f5d72a6f6ba6cc9632899b01
        d1ff28867d72f61688995bc855a4e420a8405250089bdb13cf8e09543827b748b9d27fbb2b4d9e20af8c5a6a862796d1a4cc18ad16ea678bc1bd4a83bbbe9c5e
        57453b5ce7388e41a3ba4ce2b77b4438a229e954f720dae0353dc088ac8a76b26dc276f8e1b7851ddd6398ad16ff2e78195123b9b036e945c38c9d12434f6df7
        6fe22359eb3e1ac9c011678fc926fad3ae475a4fffff55feb2d147e9c894f4c0e29a599e762462482d968bf42780945fc0d2c31c573c4431b8f4fe8b8c67bec8
        15abd44f7a86edca1c2308737358d2c2ae5e2e0e2dadf730980262377e58b13b7d9992060a0bc870ccfdb4a9319ee102818100dc431050f782e894fb5248247d
        98cb7d58b8d1e24f3b55d041c56e4de086b0d5bb028bda42eeb5d234d5681e5809d415e6a289ad4cfbf78f978f6c35814f50eebff1c5b80a69f788e81e6bab5d
        daa78369d659d143ec6f17e79813a575cfad9c569156b90113e2e9110ad9e7b48a1c9348a6e653321191290ea36cfb3a5b18f102818100bd1a81e7977f989812
        2273ae3222b598ea5fb19eb4eabc38308a5e32196603b2e500ffb79f5b886816611debc472fac45544070beb057c941378a6868af3b7a03d3f9880ec47d5e089
        b94fbde542aba9ae8d72c57088d7abf5b131f39098f7bc160f90536abc9492fd4e06f3ed7299d4b97bb03677207d95669f140cfbc20f2502818100a94b528b28
        f291599121d91952ffd1c7f21d7c1479d99d478885fb161870ee1218bf08472612dbe5497e8d9c650688e09c786961ae3e2c354dc48ae34514759c4c23c45884
        88961dc06b414e61c0e1e7fbbd2923d31532fe289f96da220711e58c14019808e00414276933bb07e4efb9b4a9b37656917205209f33f09515d7c10281803af0
        e72a933aef09ff2503df78bafed531c02ff1a2bc437c540cdcbd4ad35435cf511763596543480629b114ca7f780ff7efa32ea0cb6e000d6d9ea1f2ef71fd9cf9
        948422a165557e37e755edfe70d90b920502eb478bc98a63f788ce3a0f856d6ede7251a383bfa8fa480a81a925af7b3cc538c4bab8c9f7597ffb68011d8d0281
        802640fbfbcfefb163ee7a87b6483a66ee41f956d90fa8a7939bfc042ee0924b1b7993d0445f758d51933e85179c0320b0c968b48a91c38b5be923e1097c0c56
        2f88d42294b6a2759bafa5428a74f1270874e45f6fcc60f21602de5eccd143cf31241f5921b5ad3983fb54ef17be3b285367e50c999c67247b552fe4bfce945f
        7b";

    /// tcId 3 of rsa_signature_2048_sha256_test.json: msg "Test".
    const PKCS1_SHA256_SIGNATURE: &str = "
        264491e844c119f14e425c03282139a558dcdaeb82a4628173cd407fd319f9076eaebc0dd87a1c22e4d17839096886d58a9d5b7f7aeb63efec56c45ac7bead42
        03b6886e1faa90e028ec0ae094d46bf3f97efdd19045cfbc25a1abda2432639f9876405c0d68f8edbf047c12a454f7681d5d5a2b54bd3723d193dbad4338baad
        753264006e2d08931c4b8bb79aa1c9cad10eb6605f87c5831f6e2b08e002f9c6f21141f5841d92727dd3e1d99c36bc560da3c9067df99fcaf818941f72588be3
        3032bad22caf6704223bb114d575b6d02d9d222b580005d930e8f40cce9f672eebb634a20177d84351627964b83f2053d736a84ab1a005f63bd5ba943de6205c";

    /// tcId 3 of rsa_pss_2048_sha256_mgf1_32_test.json: msg "Test", SHA-256, MGF1-SHA-256, salt 32.
    const PSS_SHA256_SIGNATURE: &str = "
        401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b309891d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f
        5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea792569
        0f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3
        169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d77277c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5";

    /// rsa_oaep_2048_sha256_mgf1sha256_test.json: tcId 3 (msg "Test"), tcId 9 (msg "123400",
    /// label 00..13) and tcId 12 (first byte of lHash modified: invalid).
    const OAEP_TEST: &str = "
        5eab3f0741e63986ed647d53e1cd71df041986900803d0f99c68355d249a15a47dc5b4f70a191477654299e5a2731f3b4eec76dea18262fc696ac794e5f66cbf
        cddac4472c578e246c26707598055584540b839836b1404c5611ae558a984cee8fd036cea924e0be2474a940f61e0acc14fcae95ebdc59942a9ce9af9a9c8199
        9f7f6815f057ffdc2533cb15d6391d1e2d95f16f9c04209c889a4c359c7d2926d28a66e2b030a416b928d2825627998e5191fb4983a6e65024262d94fc09187a
        2d78162122433251d1bfcc8e507d06eba2d229c10031261da32ab8ccd15f1c5f9fbf07ed158483d736a110af4b44d6a4da60d6cb519b4454213cf9f0dc560f2b";
    const OAEP_LABEL: &str = "
        a0443ba434156d0b503ec662f5eb5b10e20ad0cb8233720ee187ba986e4811dd312844d3edb26bfaf51b4b9268dc3c76072dd47c199d713c91824da23ff00481
        ee69e9d4cc543120fc33b7244bf0c1ad5fdd1ae9cbada7fe9a70ad0afaaaad8361e8dc4b3198ae661a84e275b60bf2ebb85e512da785d2fc3482294fa1196768
        1d7bceffc08ce0e36f0a8af7fcfb1337186863c2c1c1b94c9ec9785cd3d94d15437c23b775677f3d29a4c9e52f13398fd14661160e5868bca97625aa6c7ecb07
        bbb479644def353f1f01a4c4100f9adb82c4f6a265a5ee962da58c3c042aa549c9d2de3008e7448e0c4b9b4ac8f5e4d8629873909bb995ccc0825fe87d81d596";
    const OAEP_BAD_LHASH: &str = "
        287d7108a1c6e7a18acb0045b20c57cdf2ac03456b44942764a7a9e9fdf3db481d7e202e4c8d733b56b9c1e93d71e791af8325c9363df789b252a5ed0eddc79e
        76fa41c2cb0a35618398217a390a5e6d99eed905d5554d19c1cf4e30bdf1c2fcc5148b641d71b3f1977b63d232648ddd935ec9499a53ac2fbcac55f462e91065
        adaa018a39c453ba759bd68b454074153421e2ce75cf149f748b5b84758df8a423d1c50c880af863f2a6df3cd465ca36aa2152b5771f3d507f4a4dd9f8006d80
        eca23537092287976f218a90df1e16d889fe31e79f7309f3224f613e9b52479fe73b7aad915319a3b62a5936649f7d015d7b09f7fa9f454f78a7c3dd4bf791e0";

    pub(crate) fn wycheproof_key() -> RsaPrivateKey {
        encoding::rsa_private_key_from_pkcs8(&hex(PKCS8)).unwrap()
    }

    fn none() -> MechanismParams {
        MechanismParams::None
    }

    fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, salt_len: u64) -> MechanismParams {
        MechanismParams::Pss(PssParams { hash, mgf, salt_len })
    }

    fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, label: &[u8]) -> MechanismParams {
        MechanismParams::Oaep(OaepParams { hash, mgf, label: label.to_vec() })
    }

    fn sign(
        mechanism: CK_MECHANISM_TYPE,
        params: &MechanismParams,
        key: &RsaPrivateKey,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        sign_init(mechanism, params, key)?.sign(data)
    }

    fn verify(
        mechanism: CK_MECHANISM_TYPE,
        params: &MechanismParams,
        key: &RsaPublicKey,
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        verify_init(mechanism, params, key)?.verify(data, signature)
    }

    fn sha256_digest_info(data: &[u8]) -> Vec<u8> {
        [SHA256.digest_info, digest::digest(&digest::SHA256, data).as_ref()].concat()
    }

    #[test]
    fn the_test_key_parses() {
        let key = wycheproof_key();
        assert_eq!(key.public.modulus, hex(MODULUS));
        assert_eq!(key.public.public_exponent, [1, 0, 1]);
        check_private_key(&key).unwrap();
    }

    /// Wycheproof RSASSA-PKCS1-v1_5 SHA-256: the published signature verifies, and signing is
    /// deterministic, so every signing path (AWS-LC with CKM_SHA256_RSA_PKCS and with a
    /// DigestInfo through CKM_RSA_PKCS, the raw operation with the padding built here) gives it.
    #[test]
    fn known_answer_pkcs1_sha256() {
        let key = wycheproof_key();
        let expected = hex(PKCS1_SHA256_SIGNATURE);
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &expected).unwrap();
        verify(CKM_RSA_PKCS, &none(), &key.public, &sha256_digest_info(b"Test"), &expected).unwrap();
        assert_eq!(sign(CKM_SHA256_RSA_PKCS, &none(), &key, b"Test").unwrap(), expected);
        assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &sha256_digest_info(b"Test")).unwrap(), expected);
        let private = Private::new(&key, 2048).unwrap();
        let em = pkcs1_type1(&sha256_digest_info(b"Test"), 256).unwrap();
        assert_eq!(*raw_private(&private.raw().unwrap(), 256, &em).unwrap(), expected);
        // Multi-part hashing gives the same.
        let mut multi = sign_init(CKM_SHA256_RSA_PKCS, &none(), &key).unwrap();
        multi.update(b"Te").unwrap();
        multi.update(b"st").unwrap();
        assert_eq!(multi.finish().unwrap(), expected);

        let mut bad = expected.clone();
        bad[100] ^= 1;
        assert_eq!(
            verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &bad),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(
            verify(CKM_RSA_PKCS, &none(), &key.public, &sha256_digest_info(b"Test"), &bad),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(
            verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Tesu", &expected),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(
            verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &expected[1..]),
            Err(Error::SignatureLenRange)
        );
        assert_eq!(
            verify(CKM_SHA384_RSA_PKCS, &none(), &key.public, b"Test", &expected),
            Err(Error::SignatureInvalid)
        );
    }

    /// Wycheproof RSASSA-PSS SHA-256, MGF1-SHA-256, 32-byte salt: verified by AWS-LC (the
    /// hash-and-sign and the prehashed mechanism) and by the EMSA-PSS verification written here.
    #[test]
    fn known_answer_pss_sha256() {
        let key = wycheproof_key();
        let signature = hex(PSS_SHA256_SIGNATURE);
        let params = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
        verify(CKM_SHA256_RSA_PKCS_PSS, &params, &key.public, b"Test", &signature).unwrap();
        let m_hash = digest::digest(&digest::SHA256, b"Test");
        verify(CKM_RSA_PKCS_PSS, &params, &key.public, m_hash.as_ref(), &signature).unwrap();
        let public = Public::new(&key.public, 2048).unwrap();
        let em = raw_public(&public.raw().unwrap(), 256, &signature).unwrap();
        assert!(pss_verify(&SHA256, m_hash.as_ref(), &em, 32, 2048));
        assert!(!pss_verify(&SHA256, m_hash.as_ref(), &em, 31, 2048));
        assert!(!pss_verify(&SHA256, digest::digest(&digest::SHA256, b"Tesu").as_ref(), &em, 32, 2048));
        // Read with another salt length, the signature is not valid.
        assert_eq!(
            verify(
                CKM_SHA256_RSA_PKCS_PSS,
                &pss(CKM_SHA256, CKG_MGF1_SHA256, 20),
                &key.public,
                b"Test",
                &signature
            ),
            Err(Error::SignatureInvalid)
        );
        let mut bad = signature.clone();
        bad[0] ^= 1;
        assert_eq!(
            verify(CKM_SHA256_RSA_PKCS_PSS, &params, &key.public, b"Test", &bad),
            Err(Error::SignatureInvalid)
        );
    }

    /// Wycheproof RSAES-OAEP SHA-256 decryption, with and without a label, and a ciphertext with
    /// a broken padding.
    #[test]
    fn known_answer_oaep_sha256() {
        let key = wycheproof_key();
        let params = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
        let mut op = decrypt_init(CKM_RSA_PKCS_OAEP, &params, &key).unwrap();
        assert_eq!(op.single_len(256).unwrap(), 256);
        assert_eq!(op.single(&hex(OAEP_TEST)).unwrap().as_slice(), b"Test");
        assert_eq!(op.single(&hex(OAEP_BAD_LHASH)).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(op.single(&hex(OAEP_TEST)[1..]).unwrap_err(), Error::EncryptedDataLenRange);
        // With its label it decrypts; without, or with another, it is the same opaque error.
        let label = hex("000102030405060708090a0b0c0d0e0f10111213");
        let mut op =
            decrypt_init(CKM_RSA_PKCS_OAEP, &oaep(CKM_SHA256, CKG_MGF1_SHA256, &label), &key).unwrap();
        assert_eq!(op.single(&hex(OAEP_LABEL)).unwrap().as_slice(), hex("313233343030"));
        let mut op = decrypt_init(CKM_RSA_PKCS_OAEP, &params, &key).unwrap();
        assert_eq!(op.single(&hex(OAEP_LABEL)).unwrap_err(), Error::EncryptedDataInvalid);
    }

    #[test]
    fn every_signature_mechanism_round_trips() {
        let key = wycheproof_key();
        let other = another_public_key();
        let hashed = [
            (CKM_SHA1_RSA_PKCS, CKM_SHA_1),
            (CKM_SHA224_RSA_PKCS, CKM_SHA224),
            (CKM_SHA256_RSA_PKCS, CKM_SHA256),
            (CKM_SHA384_RSA_PKCS, CKM_SHA384),
            (CKM_SHA512_RSA_PKCS, CKM_SHA512),
        ];
        for (mechanism, hash) in hashed {
            let signature = sign(mechanism, &none(), &key, b"message").unwrap();
            assert_eq!(signature.len(), 256);
            verify(mechanism, &none(), &key.public, b"message", &signature).unwrap();
            assert_eq!(
                verify(mechanism, &none(), &key.public, b"messagf", &signature),
                Err(Error::SignatureInvalid)
            );
            assert_eq!(
                verify(mechanism, &none(), &other, b"message", &signature),
                Err(Error::SignatureInvalid)
            );
            // The same signature is CKM_RSA_PKCS over the DigestInfo (both engines agree).
            let h = Hash::by_mechanism(hash).unwrap();
            let info = [h.digest_info, h.digest(&[b"message"]).as_ref()].concat();
            assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &info).unwrap(), signature);
            verify(CKM_RSA_PKCS, &none(), &key.public, &info, &signature).unwrap();
        }
        // CKM_RSA_PKCS over data that is no DigestInfo (a TLS 1.1 MD5+SHA-1 hash, 36 bytes).
        let data = [0x36u8; 36];
        let signature = sign(CKM_RSA_PKCS, &none(), &key, &data).unwrap();
        verify(CKM_RSA_PKCS, &none(), &key.public, &data, &signature).unwrap();
        assert_eq!(
            verify(CKM_RSA_PKCS, &none(), &key.public, &data[1..], &signature),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &[0; 246]).unwrap_err(), Error::DataLenRange);
        sign(CKM_RSA_PKCS, &none(), &key, &[0; 245]).unwrap();

        let pss_cases = [
            (CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1),
            (CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224),
            (CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256),
            (CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384),
            (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512),
        ];
        for (mechanism, hash, mgf) in pss_cases {
            let h = Hash::by_mechanism(hash).unwrap();
            for salt in [0, 20, h.len() as u64, 64] {
                let params = pss(hash, mgf, salt);
                let signature = sign(mechanism, &params, &key, b"message").unwrap();
                verify(mechanism, &params, &key.public, b"message", &signature).unwrap();
                assert_eq!(
                    verify(mechanism, &params, &other, b"message", &signature),
                    Err(Error::SignatureInvalid)
                );
                let m_hash = h.digest(&[b"message"]);
                verify(CKM_RSA_PKCS_PSS, &params, &key.public, m_hash.as_ref(), &signature).unwrap();
                let signature = sign(CKM_RSA_PKCS_PSS, &params, &key, m_hash.as_ref()).unwrap();
                verify(mechanism, &params, &key.public, b"message", &signature).unwrap();
                // Whichever engine signed, the other verifies: the raw-path EMSA-PSS check.
                let em = raw_public(&Public::new(&key.public, 2048).unwrap().raw().unwrap(), 256, &signature)
                    .unwrap();
                assert!(pss_verify(h, m_hash.as_ref(), &em, salt as usize, 2048));
            }
        }
        // A PSS signature made here (raw path) verifies with AWS-LC.
        let m_hash = SHA256.digest(&[b"abc"]);
        let em = pss_encode(&SHA256, m_hash.as_ref(), 32, 2048, 256).unwrap();
        let private = Private::new(&key, 2048).unwrap();
        let signature = raw_private(&private.raw().unwrap(), 256, &em).unwrap();
        verify(
            CKM_SHA256_RSA_PKCS_PSS,
            &pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
            &key.public,
            b"abc",
            &signature,
        )
        .unwrap();

        // CKM_RSA_X_509: raw, left-padded input.
        let signature = sign(CKM_RSA_X_509, &none(), &key, b"raw input").unwrap();
        verify(CKM_RSA_X_509, &none(), &key.public, b"raw input", &signature).unwrap();
        verify(CKM_RSA_X_509, &none(), &key.public, &[&[0u8; 5][..], b"raw input"].concat(), &signature)
            .unwrap();
        assert_eq!(
            verify(CKM_RSA_X_509, &none(), &key.public, b"raw inpuT", &signature),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(sign(CKM_RSA_X_509, &none(), &key, &[0xff; 256]).unwrap_err(), Error::DataInvalid);
        assert_eq!(sign(CKM_RSA_X_509, &none(), &key, &[1; 257]).unwrap_err(), Error::DataLenRange);
    }

    /// A fresh 2048-bit public key, to check that signatures do not verify under another key.
    fn another_public_key() -> RsaPublicKey {
        generate_key_pair(2048, None).unwrap().0
    }

    #[test]
    fn single_part_mechanisms_refuse_parts_and_parameters_are_checked() {
        let key = wycheproof_key();
        for (mechanism, params) in [
            (CKM_RSA_PKCS, none()),
            (CKM_RSA_X_509, none()),
            (CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)),
        ] {
            let mut op = sign_init(mechanism, &params, &key).unwrap();
            assert_eq!(op.update(b"x"), Err(Error::MechanismInvalid));
            assert_eq!(op.finish(), Err(Error::MechanismInvalid));
            let mut op = verify_init(mechanism, &params, &key.public).unwrap();
            assert_eq!(op.update(b"x"), Err(Error::MechanismInvalid));
            assert_eq!(op.finish(&[0; 256]), Err(Error::MechanismInvalid));
        }
        let invalid = |mechanism, params: MechanismParams| sign_init(mechanism, &params, &key).err();
        let param_invalid = Some(Error::MechanismParamInvalid);
        assert_eq!(invalid(CKM_RSA_PKCS, MechanismParams::Opaque(vec![1])), param_invalid);
        assert_eq!(invalid(CKM_SHA256_RSA_PKCS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)), param_invalid);
        assert_eq!(invalid(CKM_RSA_PKCS_PSS, none()), param_invalid);
        assert_eq!(invalid(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA1, 32)), param_invalid);
        assert_eq!(invalid(CKM_RSA_PKCS_PSS, pss(CKM_MD5, CKG_MGF1_SHA1, 16)), param_invalid);
        assert_eq!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA384, CKG_MGF1_SHA384, 48)), param_invalid);
        // emLen 256 ≥ hLen + sLen + 2: a 222-byte salt fits with SHA-256, 223 does not.
        assert!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 222)).is_none());
        assert_eq!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 223)), param_invalid);
        assert_eq!(invalid(CKM_RSA_PKCS_OAEP, none()), Some(Error::MechanismInvalid));
        assert_eq!(invalid(CKM_ECDSA, none()), Some(Error::MechanismInvalid));
        // CKM_RSA_PKCS_PSS takes exactly the hash.
        let mut op = sign_init(CKM_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA256, 32), &key).unwrap();
        assert_eq!(op.sign(&[0; 31]), Err(Error::DataLenRange));
        let mut op =
            verify_init(CKM_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA256, 32), &key.public).unwrap();
        assert_eq!(op.verify(&[0; 33], &[0; 256]), Err(Error::DataLenRange));
    }

    #[test]
    fn encryption_round_trips() {
        let key = wycheproof_key();
        let cases = [
            (CKM_RSA_PKCS, none(), 245),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA_1, CKG_MGF1_SHA1, b""), 214),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA256, CKG_MGF1_SHA256, b"label"), 190),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA384, CKG_MGF1_SHA384, b""), 158),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA512, CKG_MGF1_SHA512, b"l"), 126),
        ];
        for (mechanism, params, max) in cases {
            let mut enc = encrypt_init(mechanism, &params, &key.public).unwrap();
            let mut dec = decrypt_init(mechanism, &params, &key).unwrap();
            for len in [0, 1, max] {
                let plain = vec![0x42u8; len];
                assert_eq!(enc.single_len(len).unwrap(), 256);
                let ct = enc.single(&plain).unwrap();
                assert_eq!(ct.len(), 256);
                assert_eq!(dec.single(&ct).unwrap().as_slice(), plain.as_slice());
                let mut tampered = ct.to_vec();
                tampered[255] ^= 1;
                assert_eq!(dec.single(&tampered).unwrap_err(), Error::EncryptedDataInvalid);
            }
            assert_eq!(enc.single_len(max + 1).unwrap_err(), Error::DataLenRange);
            assert_eq!(enc.single(&vec![0; max + 1]).unwrap_err(), Error::DataLenRange);
            assert_eq!(enc.update(b"x").unwrap_err(), Error::MechanismInvalid);
            assert_eq!(dec.finish().unwrap_err(), Error::MechanismInvalid);
            assert_eq!(dec.single(&[0; 255]).unwrap_err(), Error::EncryptedDataLenRange);
            assert_eq!(dec.single(&[0xff; 256]).unwrap_err(), Error::EncryptedDataInvalid);
        }
        // CKM_RSA_X_509: k-byte output, left-padded input.
        let mut enc = encrypt_init(CKM_RSA_X_509, &none(), &key.public).unwrap();
        let mut dec = decrypt_init(CKM_RSA_X_509, &none(), &key).unwrap();
        let ct = enc.single(b"raw").unwrap();
        let plain = dec.single(&ct).unwrap();
        assert_eq!(plain.len(), 256);
        assert_eq!(&plain[253..], b"raw");
        assert!(plain[..253].iter().all(|b| *b == 0));
        assert_eq!(enc.single(&[0xff; 256]).unwrap_err(), Error::DataInvalid);
        assert_eq!(enc.single(&[1; 257]).unwrap_err(), Error::DataLenRange);
        assert_eq!(dec.single(&[0xff; 256]).unwrap_err(), Error::EncryptedDataInvalid);
        // The ciphertext of the PKCS#1 v1.5 mechanism, opened raw, shows its type 2 padding.
        let ct = encrypt_init(CKM_RSA_PKCS, &none(), &key.public).unwrap().single(b"hi").unwrap();
        let em = dec.single(&ct).unwrap();
        assert_eq!((em[0], em[1], em[253], &em[254..]), (0, 2, 0, &b"hi"[..]));
        assert!(em[2..253].iter().all(|b| *b != 0));
        // OAEP with SHA-224 (which AWS-LC lacks) or a mismatched MGF is refused.
        for params in [oaep(CKM_SHA224, CKG_MGF1_SHA224, b""), oaep(CKM_SHA256, CKG_MGF1_SHA1, b""), none()] {
            assert_eq!(
                encrypt_init(CKM_RSA_PKCS_OAEP, &params, &key.public).err(),
                Some(Error::MechanismParamInvalid)
            );
        }
    }

    #[test]
    fn keys_lacking_crt_values_are_completed() {
        let key = wycheproof_key();
        let bare = RsaPrivateKey {
            public: key.public.clone(),
            private_exponent: key.private_exponent.clone(),
            crt: None,
        };
        let crt = derive_crt(&bare).unwrap();
        let given = key.crt.as_ref().unwrap();
        let mut primes = [crt.prime_1.to_vec(), crt.prime_2.to_vec()];
        primes.sort();
        let mut expected = [given.prime_1.to_vec(), given.prime_2.to_vec()];
        expected.sort();
        assert_eq!(primes, expected);
        check_private_key(&bare).unwrap();
        // Deterministic PKCS#1 v1.5: the same signature as with the full key.
        assert_eq!(sign(CKM_SHA256_RSA_PKCS, &none(), &bare, b"Test").unwrap(), hex(PKCS1_SHA256_SIGNATURE));
        let ct = encrypt_init(CKM_RSA_PKCS, &none(), &key.public).unwrap().single(b"x").unwrap();
        assert_eq!(decrypt_init(CKM_RSA_PKCS, &none(), &bare).unwrap().single(&ct).unwrap().as_slice(), b"x");
        // A wrong d cannot be completed or used.
        let mut wrong = RsaPrivateKey {
            public: key.public.clone(),
            private_exponent: key.private_exponent.clone(),
            crt: None,
        };
        wrong.private_exponent[10] ^= 1;
        assert_eq!(derive_crt(&wrong).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(sign_init(CKM_RSA_PKCS, &none(), &wrong).err(), Some(Error::KeyTypeInconsistent));
        // Nor an inconsistent CRT value.
        let mut broken = wycheproof_key();
        broken.crt.as_mut().unwrap().coefficient[5] ^= 1;
        assert_eq!(check_private_key(&broken).err(), Some(Error::KeyTypeInconsistent));
    }

    /// A 1024-bit key made with `openssl genrsa 1024`, and its PKCS#1 v1.5 SHA-256 signature
    /// (`openssl dgst -sha256 -sign`) of "a signature from 2009".
    pub(crate) fn legacy_1024_key() -> RsaPrivateKey {
        let h = |s: &str| Zeroizing::new(hex(s));
        RsaPrivateKey {
            public: RsaPublicKey {
                modulus: hex(
                    "b054da0f9a8e85d9aa5cfdf739b77ce9be66831be0a31a94a87ed75b29fe0052dd3c2804acdb06ae2679d22cace84f\
                     abaad26725f0a7573d3428bef6c806e5244159590c1bf94051570a5fd963bbd0f7115d56ce1daa609553f49a743a\
                     67824e7b87f844e07e92f4029713639a05e45b88c1ea51830d5ebd246022ed44a499e5",
                ),
                public_exponent: vec![1, 0, 1],
            },
            private_exponent: h(
                "65f6db15d4d0ff938b913486a68875221128e43dd59b5b7e8524bbd18aa9c774235c6ae3b135025ae802dfc757c10a79\
                 0151a3b5ebc048912abd39182938db7d325fa789cd0731dac8247185399830ba45e9644af46ac289c3249b97139477e7\
                 8e84ce5d62a58d595a561fe644624353c31975032b2c9aaab51c624f2f5ef4a1",
            ),
            crt: Some(RsaCrt {
                prime_1: h(
                    "e20ce2961caf0f31a23801d95faa2282578ea2df69f39658c1484965b0053da99d5132f207fa644ea1ac9841c16c727a5a4a87b1a46975978b054ea308a6c9cd",
                ),
                prime_2: h(
                    "c7b19d6f614e9e07d3af3c653a418f4fc39910c9522a30450854f43c83d59da80f73262d7d5cdc49afaf3e5391a04da3578afea4de037a18c938a00582741879",
                ),
                exponent_1: h(
                    "dedde1502abb95f9537c70a6462151a0bc7e8eaa42a5bc678938a1d4b5f494d4f39ba8e4e364c51c995db747ad522493e90d6e378067d15e35dc67a969d03749",
                ),
                exponent_2: h(
                    "610d1e71a23e1e29b9a4a1daa4ac762512efd22bb5c6113d8ba616294efd43a90911328dcb2e95552e9021df65981e0373a976c6d3aba6ec62e7254668375a29",
                ),
                coefficient: h(
                    "c1dc766beed99302519ce7c5ed4161e519ff5c1fd00896a2694644d26c25fcf2208387386fe37060b5dbdab8ed41b8a1fcbd5dbd538b0dec71d15d645a92a135",
                ),
            }),
        }
    }

    pub(crate) const LEGACY_1024_SIGNATURE: &str = "42d52b0b1fd77d7e925d3902ae5a15afbfe3d5bf5847b64a971e2d0598b0509f\
        1404a0805bd25bbdc6e0eaf6dd85d6b2964ff0c26e37ae68f3fd36a6ee82c7291b954a375193ce88ea2e756b14ed341783ed011d133f\
        1e9b32f42a0b35380237b4924525809d9a50051c7319780628fe40ccbe0f55efb1754b668b9f0621eeda";

    #[test]
    fn a_1024_bit_key_imports_and_verifies_an_old_signature() {
        let key = legacy_1024_key();
        check_private_key(&key).unwrap();
        check_public_key(&key.public).unwrap();
        let signature = hex(LEGACY_1024_SIGNATURE);
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"a signature from 2009", &signature).unwrap();
        assert_eq!(
            verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"a signature from 2010", &signature),
            Err(Error::SignatureInvalid)
        );
        // The raw primitive at this size: the signature's representative is the padded DigestInfo.
        let private = Private::new(&key, 1024).unwrap();
        let t = [SHA256.digest_info, SHA256.digest(&[b"a signature from 2009"]).as_ref()].concat();
        let em = pkcs1_type1(&t, 128).unwrap();
        assert_eq!(raw_private(&private.raw().unwrap(), 128, &em).unwrap().as_slice(), signature);
    }

    #[test]
    fn key_sizes_and_generation() {
        let small = RsaPublicKey { modulus: vec![0xc5; 127], public_exponent: vec![1, 0, 1] };
        assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &small).err(), Some(Error::KeySizeRange));
        assert_eq!(check_public_key(&small), Err(Error::KeySizeRange));
        check_public_key(&wycheproof_key().public).unwrap();
        assert_eq!(encrypt_init(CKM_RSA_PKCS, &none(), &small).err(), Some(Error::KeySizeRange));
        // 1024 bits: imported and verifying; encrypting only where `rsa_min_bits` allows
        // (2048 unless the process set it lower).
        let legacy = RsaPublicKey { modulus: vec![0xc5; 128], public_exponent: vec![1, 0, 1] };
        check_public_key(&legacy).unwrap();
        verify_init(CKM_SHA256_RSA_PKCS, &none(), &legacy).unwrap();
        if min_modulus_bits() > 1024 {
            assert_eq!(encrypt_init(CKM_RSA_PKCS, &none(), &legacy).err(), Some(Error::KeySizeRange));
        }
        let huge = RsaPublicKey { modulus: vec![0xc5; 1025], public_exponent: vec![1, 0, 1] };
        assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &huge).err(), Some(Error::KeySizeRange));
        let even = RsaPublicKey { modulus: vec![0xc4; 256], public_exponent: vec![1, 0, 1] };
        assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &even).err(), Some(Error::KeyTypeInconsistent));

        assert_eq!(generate_key_pair(1024, None).err(), Some(Error::KeySizeRange));
        assert_eq!(generate_key_pair(2049, None).err(), Some(Error::KeySizeRange));
        assert_eq!(generate_key_pair(2048, Some(&[3])).err(), Some(Error::AttributeValueInvalid));
        let (public, private) = generate_key_pair(2048, Some(&[0, 1, 0, 1])).unwrap();
        assert_eq!(public.modulus.len(), 256);
        assert_eq!(bit_len(&public.modulus), 2048);
        assert_eq!(public.public_exponent, [1, 0, 1]);
        assert!(private.crt.is_some());
        check_private_key(&private).unwrap();
        let signature = sign(CKM_SHA256_RSA_PKCS, &none(), &private, b"m").unwrap();
        verify(CKM_SHA256_RSA_PKCS, &none(), &public, b"m", &signature).unwrap();
        let (public, _) = generate_key_pair(3072, None).unwrap();
        assert_eq!(bit_len(&public.modulus), 3072);
    }
}

/// `C_SignRecover`/`C_VerifyRecover` with `CKM_RSA_PKCS` (type-1 padding around the data) or
/// `CKM_RSA_X_509` (raw): single-part operations whose output is the signature, or the data
/// recovered from it. Exposed as a [`CipherOperation`] (`single` only), since both are
/// "bytes in, bytes out".
pub struct RsaRecover {
    mechanism: CK_MECHANISM_TYPE,
    k: usize,
    key: RecoverKey,
}

enum RecoverKey {
    Sign(Box<::rsa::PrivateKey>),
    Verify(::rsa::PublicKey),
}

fn recover_mechanism(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams) -> Result<()> {
    no_params(params)?;
    match mechanism {
        CKM_RSA_PKCS | CKM_RSA_X_509 => Ok(()),
        _ => Err(Error::MechanismInvalid),
    }
}

pub fn sign_recover_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
) -> Result<Box<dyn CipherOperation>> {
    recover_mechanism(mechanism, params)?;
    let private = Private::new(key, min_modulus_bits())?;
    let k = private.public.k;
    Ok(Box::new(RsaRecover { mechanism, k, key: RecoverKey::Sign(Box::new(private.raw()?)) }))
}

pub fn verify_recover_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
) -> Result<Box<dyn CipherOperation>> {
    recover_mechanism(mechanism, params)?;
    let public = Public::new(key, LEGACY_MIN_MODULUS_BITS)?;
    Ok(Box::new(RsaRecover { mechanism, k: public.k, key: RecoverKey::Verify(public.raw()?) }))
}

impl CipherOperation for RsaRecover {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        match self.key {
            RecoverKey::Sign(_) if input_len > self.k => Err(Error::DataLenRange),
            RecoverKey::Verify(_) if input_len != self.k => Err(Error::SignatureLenRange),
            _ => Ok(self.k),
        }
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        match &self.key {
            RecoverKey::Sign(key) => {
                let representative = match self.mechanism {
                    CKM_RSA_PKCS => Zeroizing::new(pkcs1_type1(input, self.k).ok_or(Error::DataLenRange)?),
                    _ => left_pad(input, self.k),
                };
                raw_private(key, self.k, &representative).ok_or(Error::DataInvalid)
            }
            RecoverKey::Verify(key) => {
                let em = Zeroizing::new(raw_public(key, self.k, input).ok_or(Error::SignatureInvalid)?);
                match self.mechanism {
                    CKM_RSA_PKCS => {
                        // 00 01 FF..FF (at least eight) 00 data
                        let body = em.strip_prefix(&[0x00, 0x01]).ok_or(Error::SignatureInvalid)?;
                        let ff = body.iter().take_while(|b| **b == 0xff).count();
                        if ff < 8 || body.get(ff) != Some(&0x00) {
                            return Err(Error::SignatureInvalid);
                        }
                        Ok(Zeroizing::new(body[ff + 1..].to_vec()))
                    }
                    _ => Ok(em),
                }
            }
        }
    }

    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
}

#[cfg(test)]
mod recover_tests {
    use super::*;

    #[test]
    fn sign_recover_round_trips_and_verify_recover_refuses_forgeries() {
        let (public, private) = generate_key_pair(2048, None).unwrap();
        for mechanism in [CKM_RSA_PKCS, CKM_RSA_X_509] {
            let mut signer = sign_recover_init(mechanism, &MechanismParams::None, &private).unwrap();
            let signature = signer.single(b"recoverable message").unwrap();
            assert_eq!(signature.len(), 256);
            let mut verifier = verify_recover_init(mechanism, &MechanismParams::None, &public).unwrap();
            let recovered = verifier.single(&signature).unwrap();
            if mechanism == CKM_RSA_PKCS {
                assert_eq!(recovered.as_slice(), b"recoverable message");
            } else {
                assert!(recovered.ends_with(b"recoverable message"));
            }
            let mut forged = signature.to_vec();
            forged[100] ^= 1;
            if mechanism == CKM_RSA_PKCS {
                assert_eq!(verifier.single(&forged).unwrap_err(), Error::SignatureInvalid);
            }
            assert_eq!(verifier.single(&forged[1..]).unwrap_err(), Error::SignatureLenRange);
        }
        let mut signer = sign_recover_init(CKM_RSA_PKCS, &MechanismParams::None, &private).unwrap();
        assert_eq!(signer.single(&[1; 246]).unwrap_err(), Error::DataLenRange);
        assert!(sign_recover_init(CKM_SHA256_RSA_PKCS, &MechanismParams::None, &private).is_err());
    }
}
