//! RSA signatures and their verification: PKCS#1 v1.5, PSS and raw X.509, on AWS-LC
//! where it can, else on the `rsa` crate.

use super::*;
use crate::mechanism::hashed_input::HashedInput;

/// What a signature mechanism does with its input.
#[derive(Clone, Copy)]
pub(super) enum Scheme {
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
pub(super) fn pss_scheme(
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

/// A signature in progress.
pub struct RsaSign {
    scheme: Scheme,
    k: usize,
    aws: Option<std::sync::Arc<KeyPair>>,
    raw: Option<::rsa::PrivateKey>,
    /// Kept for CKM_RSA_PKCS, whose input decides the engine: the raw key is built on demand.
    private: Option<Private>,
    input: HashedInput,
}

/// The AWS-LC signing key of `private`, built once per key (see `prepared.rs`).
pub(super) fn prepared_key_pair(private: &Private) -> Result<std::sync::Arc<KeyPair>> {
    static PREPARED: PreparedKeys<KeyPair> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[&private.public.n, &private.public.e, &private.d])?;
    PREPARED.get_or_build(fingerprint, || private.aws_key_pair())
}

/// The AWS-LC verifying key of `public` for the scheme `scheme_id` names (`params`), built
/// once per key and scheme: its Montgomery values, computed at its first verification, stay
/// with it (building it at every `C_VerifyInit` cost a quarter of a 2048-bit verification).
pub(super) fn prepared_verifier(
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
    Ok(Box::new(RsaSign {
        scheme,
        k,
        aws,
        raw,
        private,
        input: HashedInput::new(scheme.hashes_input().map(|h| h.algorithm)),
    }))
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

    /// The `rsa` crate's key, built on first use.
    fn raw_key(&mut self) -> Result<&::rsa::PrivateKey> {
        if self.raw.is_none() {
            let private = self.private.as_ref().ok_or(Error::Internal("RSA signing key missing"))?;
            self.raw = Some(private.raw()?);
        }
        self.raw.as_ref().ok_or(Error::Internal("RSA signing key missing"))
    }

    /// CKM_RSA_X_509: the representative signed as is.
    fn raw_sign(&mut self, representative: &[u8]) -> Result<Vec<u8>> {
        let k = self.k;
        // Only CKM_RSA_X_509 can hand in a representative that is not below the modulus.
        let signature = raw_private(self.raw_key()?, k, representative).ok_or(Error::DataInvalid)?;
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
                    None => padding::pss_sign(self.raw_key()?, hash.mechanism, salt_len, m_hash),
                }
            }
            _ => match hash.aws_pkcs1_signing().filter(|_| self.aws.is_some()) {
                Some(encoding) => self.aws_sign(encoding, hash, m_hash),
                // A DigestInfo too long for the modulus: the key is too small for the hash.
                None => padding::pkcs1_sign(self.raw_key()?, hash.digest_info, m_hash).map_err(|e| match e {
                    Error::DataLenRange => Error::KeySizeRange,
                    other => other,
                }),
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
        let hash = self.scheme.hashes_input().ok_or(crate::mechanism::SINGLE_PART_ONLY)?;
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
                padding::pkcs1_sign(self.raw_key()?, &[], data)
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
    aws: Option<std::sync::Arc<ParsedPublicKey>>,
    raw: Option<::rsa::PublicKey>,
    input: HashedInput,
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
        aws,
        raw,
        input: HashedInput::new(scheme.hashes_input().map(|h| h.algorithm)),
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
        let raw = self.raw.as_ref().ok_or(Error::Internal("RSA verification key missing"))?;
        let valid = match self.scheme {
            Scheme::Pss { salt_len, .. } => {
                padding::pss_verify(raw, hash.mechanism, salt_len, m_hash, signature)?
            }
            _ => padding::pkcs1_verify(raw, hash.digest_info, m_hash, signature),
        };
        if valid { Ok(()) } else { Err(Error::SignatureInvalid) }
    }
}

impl VerifyOperation for RsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.k)
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let hash = self.scheme.hashes_input().ok_or(crate::mechanism::SINGLE_PART_ONLY)?;
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
        let valid = match self.scheme {
            Scheme::Pkcs1Raw => {
                let raw = self.raw.as_ref().ok_or(Error::Internal("RSA verification key missing"))?;
                padding::pkcs1_verify(raw, &[], data, signature)
            }
            _ => *left_pad(data, self.k) == self.open(signature)?,
        };
        if valid { Ok(()) } else { Err(Error::SignatureInvalid) }
    }
}
