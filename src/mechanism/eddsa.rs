//! Edwards curves: CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA on Ed25519 (RFC 8032).
//!
//! Keys are `CKK_EC_EDWARDS` objects. `CKA_EC_PARAMS` names the curve as PKCS#11 3.0 allows:
//! the DER of the OID id-Ed25519 (1.3.101.112), of the older GnuPG OID some clients send
//! (1.3.6.1.4.1.11591.15.1), or the PrintableString "edwards25519". The public key is the
//! 32-byte encoded point of RFC 8032 (kept in `CKA_EC_POINT` as a DER OCTET STRING, the
//! encoding of PKCS#11 3.1; a raw 32-byte value is accepted on import); the private key is
//! the 32-byte seed of RFC 8032 (`CKA_VALUE`).
//!
//! CKM_EDDSA's optional `CK_EDDSA_PARAMS` selects the instance of RFC 8032 (PKCS#11 3.0's
//! EdDSA mechanism):
//!
//! | parameter                           | instance   | signs through                |
//! |-------------------------------------|------------|------------------------------|
//! | none                                | Ed25519    | aws-lc-rs                    |
//! | `phFlag` false, context 1–255 bytes | Ed25519ctx | AWS-LC's C interface (`sys`) |
//! | `phFlag` false, empty context       | Ed25519    | aws-lc-rs                    |
//! | `phFlag` true, context 0–255 bytes  | Ed25519ph  | AWS-LC's C interface (`sys`) |
//!
//! The standard's table marks the context of Ed25519ctx "optional", but RFC 8032 says it
//! SHOULD NOT be empty and AWS-LC (as OpenSSL) refuses an empty one; with no context the only
//! instance left is pure Ed25519, which is what this module signs then (as Thales Luna
//! documents for `phFlag` false). A context over 255 bytes, or a `phFlag` other than
//! `CK_TRUE`/`CK_FALSE`, is `CKR_MECHANISM_PARAM_INVALID`.
//!
//! Ed25519ph is multi-part: its parts are hashed (SHA-512) as they come and the digest signed
//! at the end. Pure Ed25519 and Ed25519ctx hash the whole message twice (once for the nonce,
//! once for the challenge), so a multi-part signature would have to hold the whole message;
//! they stay single-part, and `C_SignUpdate`/`C_VerifyUpdate` answer `CKR_MECHANISM_INVALID`.
//! (The 3.0 text calls CKM_EDDSA "single-part and multipart"; Ed25519ph is the instance that
//! makes multi-part real without buffering.)
//!
//! Ed448 and Ed448ph are not offered (AWS-LC has no Curve448): the Ed448 names are
//! `CKR_CURVE_NOT_SUPPORTED` on generation and import, so no Ed448 key ever meets a
//! `CK_EDDSA_PARAMS`.

use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use aws_lc_rs::signature::{self as sig, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::hashed_input::HashedInput;
use super::{EcPrivateKey, EcPublicKey, MechanismParams, SignOperation, VerifyOperation};
use crate::sys::ed25519_instances::{self as instances, DIGEST_LEN, SigningKey};
use crate::{Error, Result};

/// Bytes of an Ed25519 public key, private seed, and half a signature.
pub const KEY_LEN: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// `CKA_EC_PARAMS` of Ed25519 this module writes: the DER of id-Ed25519.
pub const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// The GnuPG OID 1.3.6.1.4.1.11591.15.1, which OpenSC's pkcs11-tool sends for "edwards25519".
const ED25519_GNUPG_PARAMS: &[u8] = &[0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];
/// PrintableString "edwards25519".
const ED25519_NAME_PARAMS: &[u8] = b"\x13\x0cedwards25519";
/// Ed448, by OID (1.3.101.113) and by name: named here only to be refused as unsupported.
const ED448_PARAMS: [&[u8]; 2] = [&[0x06, 0x03, 0x2b, 0x65, 0x71], b"\x13\x0aedwards448"];

/// Whether `params` names Ed25519.
pub fn is_ed25519(params: &[u8]) -> bool {
    [ED25519_PARAMS, ED25519_GNUPG_PARAMS, ED25519_NAME_PARAMS].contains(&params)
}

/// Whether `params` names an Edwards curve (offered or not).
pub fn is_edwards(params: &[u8]) -> bool {
    is_ed25519(params) || ED448_PARAMS.contains(&params)
}

/// The curve of an Edwards key: Ed25519, or `Error::CurveNotSupported` for Ed448 and
/// `Error::AttributeValueInvalid` for anything that names no Edwards curve.
fn require_ed25519(params: &[u8]) -> Result<()> {
    super::curve::require_25519(params, is_ed25519, &ED448_PARAMS)
}

/// Generates an Ed25519 key pair for `params`; both halves carry `params` as given.
pub fn generate_key_pair(params: &[u8]) -> Result<(EcPublicKey, EcPrivateKey)> {
    require_ed25519(params)?;
    let key = Ed25519KeyPair::generate().map_err(|_| Error::Internal("Ed25519 key generation failed"))?;
    let seed: Curve25519SeedBin<'static> =
        key.seed().and_then(|s| s.as_be_bytes()).map_err(|_| Error::Internal("Ed25519 key export failed"))?;
    Ok((
        EcPublicKey { params: params.to_vec(), point: key.public_key().as_ref().to_vec() },
        EcPrivateKey { params: params.to_vec(), value: Zeroizing::new(seed.as_ref().to_vec()) },
    ))
}

/// AWS-LC's key of a 32-byte seed; any other length is `Error::KeyTypeInconsistent`.
fn key_pair(key: &EcPrivateKey) -> Result<Ed25519KeyPair> {
    if key.value.len() != KEY_LEN {
        return Err(Error::KeyTypeInconsistent);
    }
    Ed25519KeyPair::from_seed_unchecked(&key.value).map_err(|_| Error::KeyTypeInconsistent)
}

/// The public key of a private seed.
pub fn public_key(key: &EcPrivateKey) -> Result<Vec<u8>> {
    Ok(key_pair(key)?.public_key().as_ref().to_vec())
}

/// Checks an imported Ed25519 public key: 32 bytes that decode to a point of the curve.
pub fn check_public_key(key: &EcPublicKey) -> Result<()> {
    require_ed25519(&key.params).map_err(|_| Error::KeySizeRange)?;
    if key.point.len() != KEY_LEN || !decodes_to_point(&key.point) {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// Checks an imported Ed25519 private key: a 32-byte seed.
pub fn check_private_key(key: &EcPrivateKey) -> Result<()> {
    require_ed25519(&key.params).map_err(|_| Error::KeySizeRange)?;
    key_pair(key).map(|_| ())
}

/// Whether `point` is a canonical encoding of y (y < p = 2^255 - 19, RFC 8032 5.1.3 step 1).
/// The square-root step of decoding is left to verification: AWS-LC takes a raw public key
/// without decoding it, and a key that does not decode never verifies a signature.
fn decodes_to_point(point: &[u8]) -> bool {
    let top = point[31] & 0x7f;
    let all_ones = point[1..31].iter().all(|b| *b == 0xff);
    !(top == 0x7f && all_ones && point[0] >= 0xed)
}

/// `CK_EDDSA_PARAMS`, as the C ABI copied it in (`phFlag` already checked to be a boolean).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EddsaParams {
    pub prehash: bool,
    #[serde(with = "serde_bytes")]
    pub context: Vec<u8>,
}

/// The instance of RFC 8032 a CKM_EDDSA names (the table at the top of this file).
enum Instance {
    Pure,
    Ctx(Vec<u8>),
    Ph(Vec<u8>),
}

fn instance(params: &MechanismParams) -> Result<Instance> {
    match params {
        MechanismParams::None => Ok(Instance::Pure),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(Instance::Pure),
        MechanismParams::Eddsa(p) if p.context.len() > instances::MAX_CONTEXT_LEN => {
            Err(Error::MechanismParamInvalid)
        }
        MechanismParams::Eddsa(p) if p.prehash => Ok(Instance::Ph(p.context.clone())),
        MechanismParams::Eddsa(p) if p.context.is_empty() => Ok(Instance::Pure),
        MechanismParams::Eddsa(p) => Ok(Instance::Ctx(p.context.clone())),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// A single-part Ed25519 signature.
struct Ed25519Sign {
    key: Ed25519KeyPair,
}

/// Starts a CKM_EDDSA signature under a `CKK_EC_EDWARDS` private key.
pub fn sign_init(params: &MechanismParams, key: &EcPrivateKey) -> Result<Box<dyn SignOperation>> {
    let instance = instance(params)?;
    require_ed25519(&key.params).map_err(key_error)?;
    let (context, input) = match instance {
        Instance::Pure => return Ok(Box::new(Ed25519Sign { key: key_pair(key)? })),
        Instance::Ctx(context) => (context, HashedInput::new(None)),
        Instance::Ph(context) => (context, HashedInput::new(Some(&aws_lc_rs::digest::SHA512))),
    };
    let key = SigningKey::from_seed(&key.value).ok_or(Error::KeyTypeInconsistent)?;
    Ok(Box::new(ContextSign { key, context, input }))
}

/// A key of a curve not offered is out of range; one that is no Edwards key at all is of
/// the wrong type for the mechanism.
fn key_error(e: Error) -> Error {
    match e {
        Error::CurveNotSupported => Error::KeySizeRange,
        _ => Error::KeyTypeInconsistent,
    }
}

impl SignOperation for Ed25519Sign {
    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(data).as_ref().to_vec())
    }
}

/// A single-part Ed25519 verification.
struct Ed25519Verify {
    point: Vec<u8>,
}

/// Starts a CKM_EDDSA verification under a `CKK_EC_EDWARDS` public key.
pub fn verify_init(params: &MechanismParams, key: &EcPublicKey) -> Result<Box<dyn VerifyOperation>> {
    let instance = instance(params)?;
    require_ed25519(&key.params).map_err(key_error)?;
    check_public_key(key)?;
    let (context, input) = match instance {
        Instance::Pure => return Ok(Box::new(Ed25519Verify { point: key.point.clone() })),
        Instance::Ctx(context) => (context, HashedInput::new(None)),
        Instance::Ph(context) => (context, HashedInput::new(Some(&aws_lc_rs::digest::SHA512))),
    };
    let point = key.point.as_slice().try_into().map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(Box::new(ContextVerify { point, context, input }))
}

impl VerifyOperation for Ed25519Verify {
    fn signature_len(&self) -> Option<usize> {
        Some(SIGNATURE_LEN)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != SIGNATURE_LEN {
            return Err(Error::SignatureLenRange);
        }
        UnparsedPublicKey::new(&sig::ED25519, &self.point)
            .verify(data, signature)
            .map_err(|_| Error::SignatureInvalid)
    }
}

/// An Ed25519ctx signature (single-part: `input` refuses parts) or an Ed25519ph one (`input`
/// hashes the parts with SHA-512).
struct ContextSign {
    key: SigningKey,
    context: Vec<u8>,
    input: HashedInput,
}

impl ContextSign {
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let digest: &[u8; DIGEST_LEN] = digest.try_into().map_err(|_| Error::Internal("not a SHA-512"))?;
        let signature = self.key.sign_ph_digest(digest, &self.context);
        Ok(signature.map_err(|_| Error::Internal("Ed25519ph signing failed"))?.to_vec())
    }
}

impl SignOperation for ContextSign {
    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let digest = self.input.finish()?;
        self.sign_digest(digest.as_ref())
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        if self.input.hashes() {
            return self.sign_digest(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, data).as_ref());
        }
        let signature = self.key.sign_ctx(data, &self.context);
        Ok(signature.map_err(|_| Error::Internal("Ed25519ctx signing failed"))?.to_vec())
    }
}

/// The verification of an Ed25519ctx or Ed25519ph signature (as [`ContextSign`]).
struct ContextVerify {
    point: [u8; KEY_LEN],
    context: Vec<u8>,
    input: HashedInput,
}

fn signature_array(signature: &[u8]) -> Result<&[u8; SIGNATURE_LEN]> {
    signature.try_into().map_err(|_| Error::SignatureLenRange)
}

impl ContextVerify {
    fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<()> {
        let signature = signature_array(signature)?;
        let digest: &[u8; DIGEST_LEN] = digest.try_into().map_err(|_| Error::Internal("not a SHA-512"))?;
        if instances::verify_ph_digest(&self.point, digest, signature, &self.context) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

impl VerifyOperation for ContextVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(SIGNATURE_LEN)
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let digest = self.input.finish()?;
        self.verify_digest(digest.as_ref(), signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        if self.input.hashes() {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, data);
            return self.verify_digest(digest.as_ref(), signature);
        }
        if instances::verify_ctx(&self.point, data, signature_array(signature)?, &self.context) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mechanism::test_vectors::unhex as hex;

    fn private(seed: &str) -> EcPrivateKey {
        EcPrivateKey { params: ED25519_PARAMS.to_vec(), value: Zeroizing::new(hex(seed)) }
    }

    fn public(point: &str) -> EcPublicKey {
        EcPublicKey { params: ED25519_PARAMS.to_vec(), point: hex(point) }
    }

    /// RFC 8032 7.1, TEST 1 (empty message), TEST 2 (one byte) and TEST 3 (two bytes).
    #[test]
    fn known_answers_rfc8032() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b\
                 d25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c\
                 387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659\
                 4a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (seed, point, msg, signature) in vectors {
            let (d, q, msg, signature) = (private(seed), public(point), hex(msg), hex(signature));
            assert_eq!(public_key(&d).unwrap(), q.point);
            check_public_key(&q).unwrap();
            check_private_key(&d).unwrap();
            let mut signer = sign_init(&MechanismParams::None, &d).unwrap();
            assert_eq!(signer.signature_len(), 64);
            assert_eq!(signer.sign(&msg).unwrap(), signature);
            verify_init(&MechanismParams::None, &q).unwrap().verify(&msg, &signature).unwrap();
            let mut bad = signature.clone();
            bad[5] ^= 1;
            assert_eq!(
                verify_init(&MechanismParams::None, &q).unwrap().verify(&msg, &bad),
                Err(Error::SignatureInvalid)
            );
            assert_eq!(
                verify_init(&MechanismParams::None, &q).unwrap().verify(&msg, &signature[..63]),
                Err(Error::SignatureLenRange)
            );
        }
    }

    #[test]
    fn generation_names_and_refusals() {
        for params in [ED25519_PARAMS, ED25519_GNUPG_PARAMS, ED25519_NAME_PARAMS] {
            let (q, d) = generate_key_pair(params).unwrap();
            assert_eq!((q.params.as_slice(), d.params.as_slice()), (params, params));
            assert_eq!((q.point.len(), d.value.len()), (32, 32));
            let signature = sign_init(&MechanismParams::None, &d).unwrap().sign(b"m").unwrap();
            verify_init(&MechanismParams::None, &q).unwrap().verify(b"m", &signature).unwrap();
        }
        for ed448 in ED448_PARAMS {
            assert!(is_edwards(ed448));
            assert_eq!(generate_key_pair(ed448).err(), Some(Error::CurveNotSupported));
        }
        assert_eq!(generate_key_pair(&[0x05, 0x00]).err(), Some(Error::AttributeValueInvalid));
        let (q, d) = generate_key_pair(ED25519_PARAMS).unwrap();
        // Single-part only; no Ed25519ctx/ph parameters.
        let mut op = sign_init(&MechanismParams::None, &d).unwrap();
        assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
        assert_eq!(
            sign_init(&MechanismParams::Opaque(vec![0; 24]), &d).err(),
            Some(Error::MechanismParamInvalid)
        );
        assert!(sign_init(&MechanismParams::Opaque(vec![]), &d).is_ok());
        // A seed of the wrong length; a point that is too long or out of range.
        let short = EcPrivateKey { params: d.params.clone(), value: Zeroizing::new(vec![1; 31]) };
        assert_eq!(sign_init(&MechanismParams::None, &short).err(), Some(Error::KeyTypeInconsistent));
        let long = EcPublicKey { params: q.params.clone(), point: [q.point.clone(), vec![0]].concat() };
        assert_eq!(check_public_key(&long), Err(Error::KeyTypeInconsistent));
        let mut big_y = vec![0xff; 32];
        big_y[31] = 0x7f;
        assert_eq!(
            check_public_key(&EcPublicKey { params: q.params.clone(), point: big_y }),
            Err(Error::KeyTypeInconsistent)
        );
        // A P-256 key is not an Edwards key.
        let p256 = EcPrivateKey {
            params: super::super::encoding::Curve::P256.params_der().to_vec(),
            value: d.value.clone(),
        };
        assert_eq!(sign_init(&MechanismParams::None, &p256).err(), Some(Error::KeyTypeInconsistent));
    }

    fn eddsa(prehash: bool, context: &[u8]) -> MechanismParams {
        MechanismParams::Eddsa(EddsaParams { prehash, context: context.to_vec() })
    }

    /// RFC 8032 7.2 (Ed25519ctx, "foo") and 7.3 (Ed25519ph, "abc") through the mechanism
    /// layer; Ed25519ph in parts gives the same signature; each instance's signature fails
    /// under the others.
    #[test]
    fn ctx_and_ph_known_answers() {
        let d = private("0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6");
        let q = public("dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292");
        let message = hex("f726936d19c800494e3fdaff20b276a8");
        let expected = hex("55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a\
             8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d");
        let foo = eddsa(false, b"foo");
        let mut signer = sign_init(&foo, &d).unwrap();
        assert_eq!(signer.signature_len(), 64);
        assert_eq!(signer.sign(&message).unwrap(), expected);
        verify_init(&foo, &q).unwrap().verify(&message, &expected).unwrap();
        for other in [eddsa(false, b"bar"), eddsa(true, b"foo"), MechanismParams::None] {
            assert_eq!(
                verify_init(&other, &q).unwrap().verify(&message, &expected),
                Err(Error::SignatureInvalid)
            );
        }
        assert_eq!(
            verify_init(&foo, &q).unwrap().verify(&message, &expected[..63]),
            Err(Error::SignatureLenRange)
        );
        // Ed25519ctx is single-part.
        assert_eq!(sign_init(&foo, &d).unwrap().update(b"x"), Err(Error::OperationNotInitialized));
        assert_eq!(verify_init(&foo, &q).unwrap().update(b"x"), Err(Error::OperationNotInitialized));

        let d = private("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let q = public("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
        let expected = hex("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406");
        let ph = eddsa(true, b"");
        assert_eq!(sign_init(&ph, &d).unwrap().sign(b"abc").unwrap(), expected);
        let mut parts = sign_init(&ph, &d).unwrap();
        for part in [&b"a"[..], b"", b"bc"] {
            parts.update(part).unwrap();
        }
        assert_eq!(parts.finish().unwrap(), expected);
        verify_init(&ph, &q).unwrap().verify(b"abc", &expected).unwrap();
        let mut parts = verify_init(&ph, &q).unwrap();
        parts.update(b"ab").unwrap();
        parts.update(b"c").unwrap();
        parts.finish(&expected).unwrap();
        let mut parts = verify_init(&ph, &q).unwrap();
        parts.update(b"abd").unwrap();
        assert_eq!(parts.finish(&expected), Err(Error::SignatureInvalid));
        for other in [eddsa(true, b"x"), eddsa(false, b"x"), MechanismParams::None] {
            assert_eq!(
                verify_init(&other, &q).unwrap().verify(b"abc", &expected),
                Err(Error::SignatureInvalid)
            );
        }
    }

    /// An empty context without the pre-hash is pure Ed25519; a context over 255 bytes and
    /// other parameter shapes are refused.
    #[test]
    fn parameter_shapes() {
        let (q, d) = generate_key_pair(ED25519_PARAMS).unwrap();
        let pure = sign_init(&MechanismParams::None, &d).unwrap().sign(b"m").unwrap();
        assert_eq!(sign_init(&eddsa(false, b""), &d).unwrap().sign(b"m").unwrap(), pure);
        verify_init(&eddsa(false, b""), &q).unwrap().verify(b"m", &pure).unwrap();
        for too_long in [eddsa(false, &[1; 256]), eddsa(true, &[1; 256])] {
            assert_eq!(sign_init(&too_long, &d).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(verify_init(&too_long, &q).err(), Some(Error::MechanismParamInvalid));
        }
        for longest in [eddsa(false, &[1; 255]), eddsa(true, &[1; 255])] {
            let signature = sign_init(&longest, &d).unwrap().sign(b"m").unwrap();
            verify_init(&longest, &q).unwrap().verify(b"m", &signature).unwrap();
        }
        assert_eq!(sign_init(&MechanismParams::Data(vec![1]), &d).err(), Some(Error::MechanismParamInvalid));
        // The parameters are checked before the key: a P-256 key with bad ones.
        let p256 = EcPrivateKey {
            params: super::super::encoding::Curve::P256.params_der().to_vec(),
            value: d.value.clone(),
        };
        assert_eq!(sign_init(&eddsa(false, &[1; 256]), &p256).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(sign_init(&eddsa(false, b"c"), &p256).err(), Some(Error::KeyTypeInconsistent));
    }
}
