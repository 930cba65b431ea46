//! ML-DSA (FIPS 204, PKCS#11 3.2): CKM_ML_DSA_KEY_PAIR_GEN and CKM_ML_DSA, pure signatures.
//!
//! Keys are `CKK_ML_DSA` objects with `CKA_PARAMETER_SET` `CKP_ML_DSA_44`, `_65` or `_87`;
//! the public key's `CKA_VALUE` is `pk` (1312, 1952 or 2592 bytes), the private key's
//! `CKA_VALUE` the expanded `sk` and its `CKA_SEED` the 32-byte seed ξ of ML-DSA.KeyGen. A
//! generated key keeps both; an imported one needs either (both must agree).
//!
//! Pure ML-DSA with an empty context is aws-lc-rs's, hedged (AWS-LC draws the per-signature
//! randomness). A context string (`CK_SIGN_ADDITIONAL_CONTEXT`, at most 255 bytes),
//! HashML-DSA and deterministic signatures (`CKH_DETERMINISTIC_REQUIRED`, FIPS 204's
//! rnd = 0) go through AWS-LC's external-mu interface ([`super::ml_dsa_mu`]);
//! `CKH_HEDGE_PREFERRED` signs hedged. aws-lc-rs signs a whole message, so a
//! multi-part signature or verification without context (the 3.2 table of ML-DSA
//! mechanisms marks only HashML-DSA and external mu single-part) holds its parts until
//! `C_SignFinal`/`C_VerifyFinal` (at most `secret_buffer::MAX_HELD_INPUT` bytes, beyond which
//! `CKR_DATA_LEN_RANGE`).

use aws_lc_rs::encoding::AsRawBytes;
use aws_lc_rs::signature::{self as sig, KeyPair, PqdsaKeyPair, PqdsaSigningAlgorithm, UnparsedPublicKey};
use cryptoki_sys::{
    CK_MECHANISM_TYPE, CK_ULONG, CKH_DETERMINISTIC_REQUIRED, CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED,
    CKK_ML_DSA, CKM_ML_DSA, CKP_ML_DSA_44, CKP_ML_DSA_65, CKP_ML_DSA_87,
};
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use super::pq::{PqPrivateKey, PqPublicKey};
use super::secret_buffer::SecretBuffer;
use super::{MechanismParams, SignOperation, VerifyOperation};
use crate::{Error, Result};

/// Bytes of the seed ξ.
pub const SEED_LEN: usize = 32;
/// The shortest and longest public keys (`CK_MECHANISM_INFO` gives ML-DSA key sizes as the
/// public key's length in bytes).
pub const PUBLIC_KEY_LENS: (usize, usize) = (1312, 2592);

/// `CK_SIGN_ADDITIONAL_CONTEXT`, or `CK_HASH_SIGN_ADDITIONAL_CONTEXT` with its `hash` (the
/// digest mechanism naming the pre-hash of CKM_HASH_ML_DSA), as the C ABI copied it in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignContext {
    pub hedge: CK_ULONG,
    #[serde(with = "serde_bytes")]
    pub context: Vec<u8>,
    #[serde(default)]
    pub hash: Option<CK_MECHANISM_TYPE>,
}

fn algorithm(parameter_set: CK_ULONG) -> Result<&'static PqdsaSigningAlgorithm> {
    Ok(match parameter_set {
        CKP_ML_DSA_44 => &sig::ML_DSA_44_SIGNING,
        CKP_ML_DSA_65 => &sig::ML_DSA_65_SIGNING,
        CKP_ML_DSA_87 => &sig::ML_DSA_87_SIGNING,
        _ => return Err(Error::AttributeValueInvalid),
    })
}

fn verification_algorithm(parameter_set: CK_ULONG) -> Result<&'static sig::PqdsaVerificationAlgorithm> {
    Ok(match parameter_set {
        CKP_ML_DSA_44 => &sig::ML_DSA_44,
        CKP_ML_DSA_65 => &sig::ML_DSA_65,
        CKP_ML_DSA_87 => &sig::ML_DSA_87,
        _ => return Err(Error::AttributeValueInvalid),
    })
}

/// id-ml-dsa-44/65/87 (NIST CSOR 2.16.840.1.101.3.4.3.17-19).
pub fn oid(parameter_set: CK_ULONG) -> Result<ObjectIdentifier> {
    Ok(match parameter_set {
        CKP_ML_DSA_44 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17"),
        CKP_ML_DSA_65 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18"),
        CKP_ML_DSA_87 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19"),
        _ => return Err(Error::AttributeValueInvalid),
    })
}

/// Generates a key pair from a fresh seed, and keeps the seed with the expanded key.
pub fn generate_key_pair(parameter_set: CK_ULONG) -> Result<(PqPublicKey, PqPrivateKey)> {
    let alg = algorithm(parameter_set)?;
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| Error::Internal("ML-DSA seed generation failed"))?;
    let key =
        PqdsaKeyPair::from_seed(alg, &seed).map_err(|_| Error::Internal("ML-DSA key generation failed"))?;
    let expanded = expanded_key(&key)?;
    let public =
        PqPublicKey { key_type: CKK_ML_DSA, parameter_set, value: key.public_key().as_ref().to_vec() };
    let private = PqPrivateKey { key_type: CKK_ML_DSA, parameter_set, value: expanded, seed: Some(seed) };
    Ok((public, private))
}

fn expanded_key(key: &PqdsaKeyPair) -> Result<Zeroizing<Vec<u8>>> {
    let raw = key.private_key().as_raw_bytes().map_err(|_| Error::Internal("ML-DSA key export failed"))?;
    Ok(Zeroizing::new(raw.as_ref().to_vec()))
}

/// AWS-LC's key of a private key: from the seed if there is one, else from the expanded key.
/// A value that is no key of the parameter set is `Error::KeyTypeInconsistent`.
fn key_pair(key: &PqPrivateKey) -> Result<PqdsaKeyPair> {
    if key.key_type != CKK_ML_DSA {
        return Err(Error::KeyTypeInconsistent);
    }
    let alg = algorithm(key.parameter_set).map_err(|_| Error::KeyTypeInconsistent)?;
    match &key.seed {
        Some(seed) => PqdsaKeyPair::from_seed(alg, seed),
        None => PqdsaKeyPair::from_raw_private_key(alg, &key.value),
    }
    .map_err(|_| Error::KeyTypeInconsistent)
}

/// The public key `pk` of a private key.
pub fn public_key(key: &PqPrivateKey) -> Result<Vec<u8>> {
    Ok(key_pair(key)?.public_key().as_ref().to_vec())
}

/// Checks an imported public key: a known parameter set and `pk` of its length. (AWS-LC
/// parses `pk` only by its length too; every string of that length is some key.)
pub fn check_public_key(key: &PqPublicKey) -> Result<()> {
    let alg = algorithm(key.parameter_set)?;
    if key.value.len() != alg.public_key_len() {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// Checks an imported private key: the seed, or the expanded key, makes a key of the
/// parameter set; given both, the seed must expand to the key given.
pub fn check_private_key(key: &PqPrivateKey) -> Result<()> {
    algorithm(key.parameter_set)?;
    let pair = key_pair(key)?;
    if key.seed.is_some() && !key.value.is_empty() && *expanded_key(&pair)? != *key.value {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// The parameter's requests aws-lc-rs can honour (an empty context); see the module comment.
fn check_params(params: &MechanismParams, signing: bool) -> Result<()> {
    match params {
        MechanismParams::None => Ok(()),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(()),
        MechanismParams::SignContext(p) => {
            let hedge_ok = match p.hedge {
                CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED => true,
                // Verification ignores the hedge variant (3.2); a deterministic signature is
                // ml_dsa_mu's (needs_external_mu sends it there before this check).
                CKH_DETERMINISTIC_REQUIRED => !signing,
                _ => false,
            };
            if !hedge_ok || !p.context.is_empty() || p.hash.is_some() {
                return Err(Error::MechanismParamInvalid);
            }
            Ok(())
        }
        _ => Err(Error::MechanismParamInvalid),
    }
}

struct MlDsaSign {
    key: PqdsaKeyPair,
    /// The parts of a multi-part signature so far.
    held: SecretBuffer,
}

/// Starts a CKM_ML_DSA signature under a `CKK_ML_DSA` private key.
pub fn sign_init(params: &MechanismParams, key: &PqPrivateKey) -> Result<Box<dyn SignOperation>> {
    if super::ml_dsa_mu::needs_external_mu(params, true) {
        return super::ml_dsa_mu::sign_init(CKM_ML_DSA, params, key);
    }
    check_params(params, true)?;
    Ok(Box::new(MlDsaSign { key: key_pair(key)?, held: SecretBuffer::new() }))
}

impl SignOperation for MlDsaSign {
    fn signature_len(&self) -> usize {
        self.key.algorithm().signature_len()
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.held.append(part, Error::DataLenRange)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let message = self.held.take();
        self.sign(&message)
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0; self.signature_len()];
        let len =
            self.key.sign(data, &mut signature).map_err(|_| Error::Internal("ML-DSA signing failed"))?;
        signature.truncate(len);
        Ok(signature)
    }
}

struct MlDsaVerify {
    algorithm: &'static sig::PqdsaVerificationAlgorithm,
    signature_len: usize,
    public: Vec<u8>,
    /// The parts of a multi-part verification so far.
    held: SecretBuffer,
}

/// Starts a CKM_ML_DSA verification under a `CKK_ML_DSA` public key.
pub fn verify_init(params: &MechanismParams, key: &PqPublicKey) -> Result<Box<dyn VerifyOperation>> {
    if super::ml_dsa_mu::needs_external_mu(params, false) {
        return super::ml_dsa_mu::verify_init(CKM_ML_DSA, params, key);
    }
    check_params(params, false)?;
    if key.key_type != CKK_ML_DSA {
        return Err(Error::KeyTypeInconsistent);
    }
    check_public_key(key).map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(Box::new(MlDsaVerify {
        algorithm: verification_algorithm(key.parameter_set)?,
        signature_len: algorithm(key.parameter_set)?.signature_len(),
        public: key.value.clone(),
        held: SecretBuffer::new(),
    }))
}

impl VerifyOperation for MlDsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.signature_len)
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.held.append(part, Error::DataLenRange)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let message = self.held.take();
        self.verify(&message, signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.signature_len {
            return Err(Error::SignatureLenRange);
        }
        UnparsedPublicKey::new(self.algorithm, &self.public)
            .verify(data, signature)
            .map_err(|_| Error::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(hedge: CK_ULONG, context: &[u8]) -> MechanismParams {
        MechanismParams::SignContext(SignContext { hedge, context: context.to_vec(), hash: None })
    }

    #[test]
    fn each_parameter_set_signs_and_verifies() {
        for (set, pk_len, sig_len) in
            [(CKP_ML_DSA_44, 1312, 2420), (CKP_ML_DSA_65, 1952, 3309), (CKP_ML_DSA_87, 2592, 4627)]
        {
            let (q, d) = generate_key_pair(set).unwrap();
            assert_eq!(q.value.len(), pk_len);
            assert_eq!(d.seed.as_ref().unwrap().len(), SEED_LEN);
            check_public_key(&q).unwrap();
            check_private_key(&d).unwrap();
            assert_eq!(public_key(&d).unwrap(), q.value);
            let mut signer = sign_init(&MechanismParams::None, &d).unwrap();
            assert_eq!(signer.signature_len(), sig_len);
            let signature = signer.sign(b"message").unwrap();
            assert_eq!(signature.len(), sig_len);
            // aws-lc-rs itself accepts the signature: the token's is standard ML-DSA.
            UnparsedPublicKey::new(verification_algorithm(set).unwrap(), &q.value)
                .verify(b"message", &signature)
                .unwrap();
            verify_init(&MechanismParams::None, &q).unwrap().verify(b"message", &signature).unwrap();
            let mut verifier = verify_init(&context(CKH_DETERMINISTIC_REQUIRED, b""), &q).unwrap();
            assert_eq!(verifier.verify(b"messagE", &signature), Err(Error::SignatureInvalid));
            assert_eq!(verifier.verify(b"message", &signature[1..]), Err(Error::SignatureLenRange));
        }
    }

    #[test]
    fn signatures_are_hedged() {
        let (_, d) = generate_key_pair(CKP_ML_DSA_44).unwrap();
        let mut signer = sign_init(&context(CKH_HEDGE_REQUIRED, b""), &d).unwrap();
        assert_ne!(signer.sign(b"m").unwrap(), signer.sign(b"m").unwrap());
    }

    #[test]
    fn what_aws_lc_cannot_do_is_refused() {
        let (q, d) = generate_key_pair(CKP_ML_DSA_44).unwrap();
        let too_long = [b'c'; 256];
        for bad in [context(CKH_HEDGE_PREFERRED, &too_long), context(7, b"")] {
            assert_eq!(sign_init(&bad, &d).err(), Some(Error::MechanismParamInvalid));
        }
        // Deterministic signatures (with or without a context) repeat and verify.
        for ctx in [&b""[..], b"ctx"] {
            let det = context(CKH_DETERMINISTIC_REQUIRED, ctx);
            let once = sign_init(&det, &d).unwrap().sign(b"m").unwrap();
            assert_eq!(sign_init(&det, &d).unwrap().sign(b"m").unwrap(), once);
            verify_init(&context(CKH_HEDGE_PREFERRED, ctx), &q).unwrap().verify(b"m", &once).unwrap();
        }
        // Without a context, the deterministic signature is pure ML-DSA: aws-lc-rs takes it.
        let det = sign_init(&context(CKH_DETERMINISTIC_REQUIRED, b""), &d).unwrap().sign(b"m").unwrap();
        UnparsedPublicKey::new(verification_algorithm(CKP_ML_DSA_44).unwrap(), &q.value)
            .verify(b"m", &det)
            .unwrap();
        assert_eq!(
            verify_init(&context(CKH_HEDGE_PREFERRED, &too_long), &q).err(),
            Some(Error::MechanismParamInvalid)
        );
        assert_eq!(
            sign_init(&MechanismParams::Opaque(vec![1]), &d).err(),
            Some(Error::MechanismParamInvalid)
        );
        // A signature in parts is the signature of the whole, and verifies in parts too.
        let mut op = sign_init(&MechanismParams::None, &d).unwrap();
        op.update(b"mess").unwrap();
        op.update(b"age").unwrap();
        let signature = op.finish().unwrap();
        verify_init(&MechanismParams::None, &q).unwrap().verify(b"message", &signature).unwrap();
        let mut verifier = verify_init(&MechanismParams::None, &q).unwrap();
        verifier.update(b"me").unwrap();
        verifier.update(b"ssage").unwrap();
        verifier.finish(&signature).unwrap();
        let mut verifier = verify_init(&MechanismParams::None, &q).unwrap();
        verifier.update(b"messagE").unwrap();
        assert_eq!(verifier.finish(&signature), Err(Error::SignatureInvalid));
        assert_eq!(generate_key_pair(4).err(), Some(Error::AttributeValueInvalid));
    }

    #[test]
    fn imported_keys_are_checked() {
        let (q, d) = generate_key_pair(CKP_ML_DSA_65).unwrap();
        // The seed alone, and the expanded key alone, make the same key.
        let seed_only = PqPrivateKey { value: Zeroizing::new(Vec::new()), ..d.clone() };
        let value_only = PqPrivateKey { seed: None, ..d.clone() };
        for k in [&seed_only, &value_only] {
            check_private_key(k).unwrap();
            assert_eq!(public_key(k).unwrap(), q.value);
        }
        // A seed that does not give the value; a value of the wrong length; the wrong set.
        let mismatched = PqPrivateKey { seed: Some(Zeroizing::new(vec![7; 32])), ..d.clone() };
        assert_eq!(check_private_key(&mismatched), Err(Error::KeyTypeInconsistent));
        let short = PqPrivateKey { seed: None, value: Zeroizing::new(d.value[1..].to_vec()), ..d.clone() };
        assert_eq!(check_private_key(&short), Err(Error::KeyTypeInconsistent));
        let other_set = PqPublicKey { parameter_set: CKP_ML_DSA_44, ..q.clone() };
        assert_eq!(check_public_key(&other_set), Err(Error::KeyTypeInconsistent));
        assert_eq!(
            check_public_key(&PqPublicKey { parameter_set: 0, ..q }),
            Err(Error::AttributeValueInvalid)
        );
    }
}
