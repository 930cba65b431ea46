//! RSA keys: sizes, components and their checks, generation, and the `rsa` crate's raw
//! primitive (RSAEP/RSADP) for what AWS-LC does not do here.

use super::*;

/// The bit length of a big-endian integer without leading zeros.
pub(super) fn bit_len(digits: &[u8]) -> usize {
    match digits.first() {
        Some(first) => digits.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// AWS-LC randomness for the blinding of the `rsa` crate's private operation.
pub(super) struct AwsLcRng;

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

pub(super) fn uint(bytes: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(bytes)
}

/// The last `k` bytes of `value`'s big-endian encoding (the value is below the modulus).
pub(super) fn to_k_bytes(value: &BoxedUint, k: usize) -> Zeroizing<Vec<u8>> {
    let full = Zeroizing::new(value.to_be_bytes());
    let start = full.len().saturating_sub(k);
    let mut out = Zeroizing::new(vec![0u8; k - (full.len() - start)]);
    out.extend_from_slice(&full[start..]);
    out
}

/// RSAEP/RSAVP1 on a `k`-byte input; `None` if the input is not below the modulus.
pub(super) fn raw_public(key: &::rsa::PublicKey, k: usize, input: &[u8]) -> Option<Vec<u8>> {
    let m = Zeroizing::new(BoxedUint::from_be_slice(input, key.n_bits_precision()).ok()?);
    if *m >= key.n().as_ref() {
        return None;
    }
    let c = ::rsa::hazmat::rsa_encrypt(key, &m).ok()?;
    Some(to_k_bytes(&c, k).to_vec())
}

/// RSADP/RSASP1 on a `k`-byte input, blinded and checked by re-encryption; `None` if the input
/// is not below the modulus.
pub(super) fn raw_private(key: &::rsa::PrivateKey, k: usize, input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let c = BoxedUint::from_be_slice(input, key.n_bits_precision()).ok()?;
    if c >= key.n().as_ref() {
        return None;
    }
    let m = Zeroizing::new(::rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut AwsLcRng), &c).ok()?);
    Some(to_k_bytes(&m, k))
}

/// Left-pads `data` with zeros to `k` bytes (`data` is at most `k` bytes).
pub(super) fn left_pad(data: &[u8], k: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; k - data.len()]);
    out.extend_from_slice(data);
    out
}

/// A public key checked for size: modulus and exponent without leading zeros.
pub(super) struct Public {
    pub(super) n: Vec<u8>,
    pub(super) e: Vec<u8>,
    pub(super) k: usize,
    pub(super) bits: usize,
}

impl Public {
    /// The key, if its modulus has `min_bits` to 8192 bits (else `Error::KeySizeRange`).
    pub(super) fn new(key: &RsaPublicKey, min_bits: u64) -> Result<Public> {
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
    pub(super) fn aws_sized(&self) -> bool {
        self.bits >= AWS_MIN_MODULUS_BITS
    }

    pub(super) fn components(&self) -> PublicKeyComponents<&[u8]> {
        PublicKeyComponents { n: &self.n, e: &self.e }
    }

    pub(super) fn aws_verifier(&self, params: &'static RsaParameters) -> Result<ParsedPublicKey> {
        self.components().to_parsed_public_key(params).map_err(|_| Error::KeyTypeInconsistent)
    }

    pub(super) fn aws_encrypting(&self) -> Result<PublicEncryptingKey> {
        self.components().try_into().map_err(|_| Error::KeyTypeInconsistent)
    }

    pub(super) fn raw(&self) -> Result<::rsa::PublicKey> {
        let range = LEGACY_MIN_MODULUS_BITS as usize..=MAX_MODULUS_BITS as usize;
        ::rsa::PublicKey::new_with_size_limits(uint(&self.n), uint(&self.e), range)
            .map_err(|_| Error::KeyTypeInconsistent)
    }
}

/// A private key checked for size, with its CRT values (derived if the object has none).
pub(super) struct Private {
    pub(super) public: Public,
    pub(super) d: Zeroizing<Vec<u8>>,
    pub(super) crt: RsaCrt,
}

impl Private {
    /// As [`Public::new`], with the private components.
    pub(super) fn new(key: &RsaPrivateKey, min_bits: u64) -> Result<Private> {
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

    pub(super) fn parts(&self) -> RsaParts<'_> {
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

    pub(super) fn aws_key_pair(&self) -> Result<KeyPair> {
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

    pub(super) fn aws_decrypting(&self) -> Result<PrivateDecryptingKey> {
        let pkcs8 = encoding::rsa_pkcs8(&self.parts()).map_err(|_| Error::KeyTypeInconsistent)?;
        PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| Error::KeyTypeInconsistent)
    }

    pub(super) fn raw(&self) -> Result<::rsa::PrivateKey> {
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
    crt_of(&raw).ok_or(Error::KeyTypeInconsistent)
}

/// A big-endian integer without leading zeros, wiped on drop.
fn unsigned_bytes(value: &BoxedUint) -> Zeroizing<Vec<u8>> {
    let full = Zeroizing::new(value.to_be_bytes());
    Zeroizing::new(strip_leading_zeros(&full).to_vec())
}

/// The CRT values of an `rsa` crate key with two primes; `None` for another.
fn crt_of(key: &::rsa::PrivateKey) -> Option<RsaCrt> {
    let primes = key.primes();
    let (Some(dp), Some(dq), Some(qinv)) = (key.dp(), key.dq(), key.crt_coefficient().map(Zeroizing::new))
    else {
        return None;
    };
    if primes.len() != 2 {
        return None;
    }
    Some(RsaCrt {
        prime_1: unsigned_bytes(&primes[0]),
        prime_2: unsigned_bytes(&primes[1]),
        exponent_1: unsigned_bytes(dp),
        exponent_2: unsigned_bytes(dq),
        coefficient: unsigned_bytes(&qinv),
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

/// The largest RSA key generated, in bits.
pub const MAX_GENERATED_MODULUS_BITS: u64 = 4096;

/// Generates an RSA key pair of `modulus_bits` (from [`min_modulus_bits`], the process's
/// `rsa_min_bits`, to [`MAX_GENERATED_MODULUS_BITS`], a multiple of 8; others are
/// `Error::KeySizeRange`) with public exponent 65537; a `public_exponent` other than 65537 is
/// `Error::AttributeValueInvalid`. 2048, 3072 and 4096 bits are AWS-LC's keys; other sizes
/// (1024-bit keys where the settings allow them, which legacy clients and the test suites of
/// PKCS#11 bindings generate) are the `rsa` crate's, from AWS-LC's randomness. The private
/// key carries all CRT values.
pub fn generate_key_pair(
    modulus_bits: u64,
    public_exponent: Option<&[u8]>,
) -> Result<(RsaPublicKey, RsaPrivateKey)> {
    if modulus_bits < min_modulus_bits()
        || modulus_bits > MAX_GENERATED_MODULUS_BITS
        || !modulus_bits.is_multiple_of(8)
    {
        return Err(Error::KeySizeRange);
    }
    if public_exponent.is_some_and(|e| strip_leading_zeros(e) != [0x01, 0x00, 0x01]) {
        return Err(Error::AttributeValueInvalid);
    }
    let size = match modulus_bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => return generate_with_rsa_crate(other),
    };
    let pair = KeyPair::generate(size).map_err(|_| Error::Internal("RSA key generation failed"))?;
    let pkcs8 = pair.as_der().map_err(|_| Error::Internal("RSA key export failed"))?;
    let private = encoding::rsa_private_key_from_pkcs8(pkcs8.as_ref())
        .ok_or(Error::Internal("RSA key export failed"))?;
    Ok((private.public.clone(), private))
}

/// An RSA key pair of a size AWS-LC does not generate, from the `rsa` crate (two primes,
/// e = 65537).
fn generate_with_rsa_crate(modulus_bits: u64) -> Result<(RsaPublicKey, RsaPrivateKey)> {
    let failed = |_| Error::Internal("RSA key generation failed");
    let key =
        ::rsa::PrivateKey::new_with_exp(&mut AwsLcRng, modulus_bits as usize, BoxedUint::from(65537u64))
            .map_err(failed)?;
    let modulus = unsigned_bytes(key.n().as_ref());
    let crt = crt_of(&key).ok_or(Error::Internal("RSA key generation failed"))?;
    if bit_len(&modulus) as u64 != modulus_bits {
        return Err(Error::Internal("RSA key generation failed"));
    }
    let public =
        RsaPublicKey { modulus: modulus.to_vec(), public_exponent: unsigned_bytes(key.e()).to_vec() };
    let private =
        RsaPrivateKey { public: public.clone(), private_exponent: unsigned_bytes(key.d()), crt: Some(crt) };
    Ok((public, private))
}
