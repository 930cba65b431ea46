//! ML-DSA through an external mu (FIPS 204 §5.2–5.4): CKM_ML_DSA with a context string, and
//! HashML-DSA (PKCS#11 3.2: CKM_HASH_ML_DSA over a hash the caller made, and
//! CKM_HASH_ML_DSA_SHA224 ... _SHAKE256, which hash the data themselves).
//!
//! This module builds M' and mu as FIPS 204 Algorithms 2–5 say, and `sys::ml_dsa_mu` signs or
//! verifies mu in AWS-LC:
//!
//! ```text
//! tr = SHAKE256(pk, 64)
//! M' = 0 || len(ctx) || ctx || M                  (pure ML-DSA)
//! M' = 1 || len(ctx) || ctx || OID(PH) || PH(M)   (HashML-DSA)
//! mu = SHAKE256(tr || M', 64)
//! ```
//!
//! Both the message and its pre-hash stream into their hashes as they come, so these
//! operations hold nothing: multi-part signing and (for the hashing variants) verification
//! take any length. CKM_ML_DSA stays single-part on verification, as the 3.2 text says, and
//! CKM_HASH_ML_DSA single-part on both (its data is the hash). Signatures are hedged; a
//! deterministic one (`CKH_DETERMINISTIC_REQUIRED`) is refused on signing, since AWS-LC's
//! interface draws `rnd` itself; verification ignores the variant.

use cryptoki_sys::*;

use super::ml_dsa::SignContext;
use super::pq::{PqPrivateKey, PqPublicKey};
use super::{MechanismParams, SignOperation, VerifyOperation};
use crate::sys::ml_dsa_mu::{Hash, Hashing, MU_LEN, MlDsaKey, ParameterSet};
use crate::{Error, Result};

/// FIPS 204's limit on a context string.
pub const MAX_CONTEXT_LEN: usize = 255;

/// The HashML-DSA mechanisms, each with the hash it applies to the data (`None`: the data is
/// the hash, named in the parameter).
pub const HASH_ML_DSA: &[(CK_MECHANISM_TYPE, Option<Hash>)] = &[
    (CKM_HASH_ML_DSA, None),
    (CKM_HASH_ML_DSA_SHA224, Some(Hash::Sha224)),
    (CKM_HASH_ML_DSA_SHA256, Some(Hash::Sha256)),
    (CKM_HASH_ML_DSA_SHA384, Some(Hash::Sha384)),
    (CKM_HASH_ML_DSA_SHA512, Some(Hash::Sha512)),
    (CKM_HASH_ML_DSA_SHA3_224, Some(Hash::Sha3_224)),
    (CKM_HASH_ML_DSA_SHA3_256, Some(Hash::Sha3_256)),
    (CKM_HASH_ML_DSA_SHA3_384, Some(Hash::Sha3_384)),
    (CKM_HASH_ML_DSA_SHA3_512, Some(Hash::Sha3_512)),
    (CKM_HASH_ML_DSA_SHAKE128, Some(Hash::Shake128)),
    (CKM_HASH_ML_DSA_SHAKE256, Some(Hash::Shake256)),
];

/// Whether `mechanism` is one of [`HASH_ML_DSA`].
pub fn is_hash_ml_dsa(mechanism: CK_MECHANISM_TYPE) -> bool {
    HASH_ML_DSA.iter().any(|(m, _)| *m == mechanism)
}

/// The hash a `CK_HASH_SIGN_ADDITIONAL_CONTEXT` names, by its digest mechanism. The SHAKEs
/// have no digest mechanism in PKCS#11 to name them by; CKM_HASH_ML_DSA_SHAKE128/256 offer them.
fn named_hash(mechanism: CK_MECHANISM_TYPE) -> Result<Hash> {
    Ok(match mechanism {
        CKM_SHA224 => Hash::Sha224,
        CKM_SHA256 => Hash::Sha256,
        CKM_SHA384 => Hash::Sha384,
        CKM_SHA512 => Hash::Sha512,
        CKM_SHA3_224 => Hash::Sha3_224,
        CKM_SHA3_256 => Hash::Sha3_256,
        CKM_SHA3_384 => Hash::Sha3_384,
        CKM_SHA3_512 => Hash::Sha3_512,
        _ => return Err(Error::MechanismParamInvalid),
    })
}

/// The DER of the hash's OID (NIST CSOR 2.16.840.1.101.3.4.2.n), as OID(PH) in M'. Checked
/// by hand against the table of mldsa-native inside AWS-LC (`mld_get_hash_oid`, which AWS-LC
/// does not export), as the output lengths in `sys::ml_dsa_mu::Hash` are.
fn oid_der(hash: Hash) -> [u8; 11] {
    let arc = match hash {
        Hash::Sha256 => 1,
        Hash::Sha384 => 2,
        Hash::Sha512 => 3,
        Hash::Sha224 => 4,
        Hash::Sha3_224 => 7,
        Hash::Sha3_256 => 8,
        Hash::Sha3_384 => 9,
        Hash::Sha3_512 => 10,
        Hash::Shake128 => 11,
        Hash::Shake256 => 12,
    };
    [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc]
}

fn engine(_: crate::sys::sha3::EngineFailure) -> Error {
    Error::Internal("AWS-LC ML-DSA call failed")
}

fn parameter_set(key_type: CK_KEY_TYPE, set: CK_ULONG) -> Result<ParameterSet> {
    match (key_type, set) {
        (CKK_ML_DSA, CKP_ML_DSA_44) => Ok(ParameterSet::MlDsa44),
        (CKK_ML_DSA, CKP_ML_DSA_65) => Ok(ParameterSet::MlDsa65),
        (CKK_ML_DSA, CKP_ML_DSA_87) => Ok(ParameterSet::MlDsa87),
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// What the data is, for the mechanism asked for.
enum Input {
    /// Pure ML-DSA: the message goes into mu itself.
    Message,
    /// HashML-DSA over the data: PH of the data so far.
    PreHashing(Hashing),
    /// CKM_HASH_ML_DSA: the data is PH(M) already, of this hash.
    Hashed(Hash),
}

/// mu under way: SHAKE256 over tr || the head of M', and what the data feeds.
struct Mu {
    mu: Hashing,
    input: Input,
}

impl Mu {
    /// The head of M' for `mechanism` and its parameter, after tr of `pk`.
    fn start(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams, pk: &[u8]) -> Result<Mu> {
        let context = check_params(params)?;
        let mut tr = Hashing::new(Hash::Shake256).map_err(engine)?;
        tr.update(pk).map_err(engine)?;
        let tr = tr.finish().map_err(engine)?;
        let input = match HASH_ML_DSA.iter().find(|(m, _)| *m == mechanism) {
            None if mechanism == CKM_ML_DSA && context.hash.is_none() => Input::Message,
            Some((_, Some(hash))) if context.hash.is_none() => {
                Input::PreHashing(Hashing::new(*hash).map_err(engine)?)
            }
            Some((_, None)) => Input::Hashed(named_hash(context.hash.ok_or(Error::MechanismParamInvalid)?)?),
            _ => return Err(Error::MechanismParamInvalid),
        };
        let domain = u8::from(!matches!(input, Input::Message));
        let mut mu = Hashing::new(Hash::Shake256).map_err(engine)?;
        for part in [&tr[..], &[domain, context.context.len() as u8], &context.context] {
            mu.update(part).map_err(engine)?;
        }
        Ok(Mu { mu, input })
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        match &mut self.input {
            Input::Message => self.mu.update(part).map_err(engine),
            Input::PreHashing(h) => h.update(part).map_err(engine),
            Input::Hashed(_) => Err(super::SINGLE_PART_ONLY),
        }
    }

    /// mu of the data given to `update`.
    fn finish(self) -> Result<[u8; MU_LEN]> {
        let Mu { mut mu, input } = self;
        match input {
            Input::Message => {}
            Input::PreHashing(h) => {
                let hash = h.hash();
                let ph = h.finish().map_err(engine)?;
                mu.update(&oid_der(hash)).map_err(engine)?;
                mu.update(&ph).map_err(engine)?;
            }
            Input::Hashed(_) => return Err(super::SINGLE_PART_ONLY),
        }
        mu.finish().map_err(engine)?.try_into().map_err(|_| Error::Internal("mu of the wrong length"))
    }

    /// mu of `data` in one part.
    fn whole(mut self, data: &[u8]) -> Result<[u8; MU_LEN]> {
        if let Input::Hashed(hash) = self.input {
            if data.len() != hash.output_len() {
                return Err(Error::DataLenRange);
            }
            self.mu.update(&oid_der(hash)).map_err(engine)?;
            self.mu.update(data).map_err(engine)?;
            return self.mu.finish().map_err(engine)?.try_into().map_err(|_| Error::Internal("mu"));
        }
        self.update(data)?;
        self.finish()
    }
}

/// The parameter's requests this module can honour: a context of at most 255 bytes, any of
/// the three hedge variants (ignored on verification), and a hash only where the mechanism
/// takes one.
fn check_params(params: &MechanismParams) -> Result<SignContext> {
    let context = match params {
        MechanismParams::None => SignContext { hedge: CKH_HEDGE_PREFERRED, context: Vec::new(), hash: None },
        MechanismParams::SignContext(p) => p.clone(),
        _ => return Err(Error::MechanismParamInvalid),
    };
    let hedge_ok =
        matches!(context.hedge, CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED | CKH_DETERMINISTIC_REQUIRED);
    if !hedge_ok || context.context.len() > MAX_CONTEXT_LEN {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(context)
}

/// Whether CKM_ML_DSA with `params` needs this module rather than aws-lc-rs's pure, hedged
/// ML-DSA: a context string, or (`signing`) a deterministic signature. Verification ignores
/// the hedge variant.
pub fn needs_external_mu(params: &MechanismParams, signing: bool) -> bool {
    matches!(params, MechanismParams::SignContext(p)
        if !p.context.is_empty() || (signing && p.hedge == CKH_DETERMINISTIC_REQUIRED))
}

struct MuSign {
    key: MlDsaKey,
    mu: Option<Mu>,
    /// `CKH_DETERMINISTIC_REQUIRED`: FIPS 204's deterministic variant; otherwise hedged
    /// (`CKH_HEDGE_PREFERRED` is hedged here too).
    deterministic: bool,
}

/// Starts a signature of `mechanism` (CKM_ML_DSA with a context, or a HashML-DSA mechanism)
/// under an ML-DSA private key.
pub fn sign_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &PqPrivateKey,
) -> Result<Box<dyn SignOperation>> {
    let set = parameter_set(key.key_type, key.parameter_set)?;
    let pk = super::ml_dsa::public_key(key)?;
    let mu = Mu::start(mechanism, params, &pk)?;
    let bytes = key.seed.as_deref().unwrap_or(&key.value);
    let key = MlDsaKey::private(set, bytes).map_err(|_| Error::KeyTypeInconsistent)?;
    let deterministic =
        matches!(params, MechanismParams::SignContext(p) if p.hedge == CKH_DETERMINISTIC_REQUIRED);
    Ok(Box::new(MuSign { key, mu: Some(mu), deterministic }))
}

impl MuSign {
    fn mu(&mut self) -> Result<&mut Mu> {
        self.mu.as_mut().ok_or(Error::OperationNotInitialized)
    }

    fn sign_mu(&self, mu: [u8; MU_LEN]) -> Result<Vec<u8>> {
        let signed =
            if self.deterministic { self.key.sign_mu_deterministic(&mu) } else { self.key.sign_mu(&mu) };
        signed.map_err(|_| Error::Internal("ML-DSA signing failed"))
    }
}

impl SignOperation for MuSign {
    fn signature_len(&self) -> usize {
        self.key.parameter_set().signature_len()
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.mu()?.update(part)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let mu = self.mu.take().ok_or(Error::OperationNotInitialized)?.finish()?;
        self.sign_mu(mu)
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mu = self.mu.take().ok_or(Error::OperationNotInitialized)?.whole(data)?;
        self.sign_mu(mu)
    }
}

struct MuVerify {
    key: MlDsaKey,
    mu: Option<Mu>,
}

/// Starts a verification of `mechanism` under an ML-DSA public key.
pub fn verify_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &PqPublicKey,
) -> Result<Box<dyn VerifyOperation>> {
    let set = parameter_set(key.key_type, key.parameter_set)?;
    super::ml_dsa::check_public_key(key).map_err(|_| Error::KeyTypeInconsistent)?;
    let mu = Mu::start(mechanism, params, &key.value)?;
    let engine_key = MlDsaKey::public(set, &key.value).map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(Box::new(MuVerify { key: engine_key, mu: Some(mu) }))
}

impl MuVerify {
    fn check(&self, mu: [u8; MU_LEN], signature: &[u8]) -> Result<()> {
        if signature.len() != self.key.parameter_set().signature_len() {
            return Err(Error::SignatureLenRange);
        }
        match self.key.verify_mu(&mu, signature) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::SignatureInvalid),
            Err(_) => Err(Error::Internal("ML-DSA verification failed")),
        }
    }
}

impl VerifyOperation for MuVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.key.parameter_set().signature_len())
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.mu.as_mut().ok_or(Error::OperationNotInitialized)?.update(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let mu = self.mu.take().ok_or(Error::OperationNotInitialized)?.finish()?;
        self.check(mu, signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        let mu = self.mu.take().ok_or(Error::OperationNotInitialized)?.whole(data)?;
        self.check(mu, signature)
    }
}

#[cfg(test)]
#[path = "ml_dsa_mu_tests.rs"]
mod tests;
