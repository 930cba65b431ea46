//! Elliptic curves (P-256, P-384, P-521, secp256k1): CKM_EC_KEY_PAIR_GEN, CKM_ECDSA and
//! CKM_ECDSA_SHA* signatures, the keys' checks; CKM_ECDH1_DERIVE is in [`super::ecdh`].
//!
//! Signatures are r ‖ s, each as long as the curve's field (PKCS#11's format, not DER).
//! CKM_ECDSA takes the hash itself: as ECDSA uses the leftmost bits of the hash up to the
//! order's length, a hash is brought to the length of the curve's own digest (left-padded with
//! zeros when shorter, which keeps its value; cut to its leftmost bytes when longer, as ECDSA
//! does for P-256 and P-384, whose orders are whole bytes) and signed by AWS-LC as that
//! digest. On P-521 a hash of more than 64 bytes is `Error::DataLenRange`.

use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384, ECDH_P521};
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, ParsedPublicKey,
};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::encoding::{self, Curve, curve_of, fixed_scalar};
use super::hashed_input::HashedInput;
use super::prepared::{self, PreparedKeys};
use super::{EcPrivateKey, EcPublicKey, MechanismParams, SignOperation, VerifyOperation};
use crate::{Error, Result};

/// The ECDH algorithm of a curve; `None` where aws-lc-rs has none (secp256k1).
pub(super) fn agreement_algorithm(curve: Curve) -> Option<&'static agreement::Algorithm> {
    match curve {
        Curve::P256 => Some(&ECDH_P256),
        Curve::P384 => Some(&ECDH_P384),
        Curve::P521 => Some(&ECDH_P521),
        Curve::Secp256k1 => None,
    }
}

fn signing_algorithm(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
        Curve::Secp256k1 => &sig::ECDSA_P256K1_SHA256_FIXED_SIGNING,
    }
}

fn verification_algorithm(curve: Curve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &sig::ECDSA_P521_SHA512_FIXED,
        Curve::Secp256k1 => &sig::ECDSA_P256K1_SHA256_FIXED,
    }
}

/// The digest the curve's AWS-LC algorithms are bound to.
fn curve_digest(curve: Curve) -> &'static digest::Algorithm {
    match curve {
        Curve::P256 | Curve::Secp256k1 => &digest::SHA256,
        Curve::P384 => &digest::SHA384,
        Curve::P521 => &digest::SHA512,
    }
}

/// The curve of a key in use; an unsupported one is `Error::KeySizeRange`, an Edwards or
/// Montgomery key (which the mechanisms of this file do not take) `Error::KeyTypeInconsistent`.
pub(super) fn key_curve(params: &[u8]) -> Result<Curve> {
    match family_of(params) {
        Family::Weierstrass => curve_of(params),
        Family::Edwards | Family::Montgomery => Err(Error::KeyTypeInconsistent),
    }
}

/// The private scalar of a key, exactly as long as the field; `Error::KeyTypeInconsistent` if
/// it does not fit.
pub(super) fn key_scalar(curve: Curve, key: &EcPrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    fixed_scalar(curve, &key.value).ok_or(Error::KeyTypeInconsistent)
}

/// The uncompressed public point of a private scalar (exactly `curve.field_len()` bytes);
/// `Error::KeyTypeInconsistent` if the scalar is not a valid key (0 or not below the order).
pub(crate) fn public_point(curve: Curve, scalar: &[u8]) -> Result<Vec<u8>> {
    let Some(algorithm) = agreement_algorithm(curve) else {
        // No ECDH on the curve: its ECDSA key computes the point instead.
        use aws_lc_rs::signature::KeyPair;
        let key = ecdsa_key_pair(curve, scalar)?;
        return Ok(key.public_key().as_ref().to_vec());
    };
    let key =
        agreement::PrivateKey::from_private_key(algorithm, scalar).map_err(|_| Error::KeyTypeInconsistent)?;
    let public = key.compute_public_key().map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(public.as_ref().to_vec())
}

/// AWS-LC's signing key of a scalar (exactly `curve.field_len()` bytes); a scalar that is not
/// a valid key (0 or not below the order) is `Error::KeyTypeInconsistent`.
fn ecdsa_key_pair(curve: Curve, scalar: &[u8]) -> Result<EcdsaKeyPair> {
    let der = encoding::ec_private_key_der(curve, scalar).map_err(|_| Error::KeyTypeInconsistent)?;
    EcdsaKeyPair::from_private_key_der(signing_algorithm(curve), &der).map_err(|_| Error::KeyTypeInconsistent)
}

/// The families of curves `CKA_EC_PARAMS` may name, each with its own key type and code.
enum Family {
    Edwards,
    Montgomery,
    /// The short Weierstrass curves (P-256, ...), and anything that names no curve.
    Weierstrass,
}

fn family_of(params: &[u8]) -> Family {
    if super::eddsa::is_edwards(params) {
        Family::Edwards
    } else if super::montgomery::is_montgomery(params) {
        Family::Montgomery
    } else {
        Family::Weierstrass
    }
}

/// The key type `CKA_EC_PARAMS` belong to: `CKK_EC_EDWARDS` for the Edwards curves,
/// `CKK_EC_MONTGOMERY` for the Montgomery curves, `CKK_EC` for anything else (whether
/// offered or not), so that an object's key type and curve can be checked to agree.
pub fn key_type_of_params(params: &[u8]) -> CK_KEY_TYPE {
    match family_of(params) {
        Family::Edwards => CKK_EC_EDWARDS,
        Family::Montgomery => CKK_EC_MONTGOMERY,
        Family::Weierstrass => CKK_EC,
    }
}

/// Checks that an EC public key is usable here: a supported curve (`Error::CurveNotSupported`
/// for a named curve not offered) and an uncompressed point on it
/// (`Error::KeyTypeInconsistent`). For C_CreateObject.
pub fn check_public_key(key: &EcPublicKey) -> Result<()> {
    let curve = match family_of(&key.params) {
        Family::Edwards => return super::eddsa::check_public_key(key),
        Family::Montgomery => return super::montgomery::check_public_key(key),
        Family::Weierstrass => key_curve(&key.params)?,
    };
    if key.point.len() != curve.point_len() || key.point.first() != Some(&0x04) {
        return Err(Error::KeyTypeInconsistent);
    }
    ParsedPublicKey::new(verification_algorithm(curve), &key.point)
        .map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(())
}

/// Checks that an EC private key is usable here: a supported curve (as
/// [`check_public_key`]) and a scalar in 1..n (`Error::KeyTypeInconsistent`). For
/// C_CreateObject.
pub fn check_private_key(key: &EcPrivateKey) -> Result<()> {
    match family_of(&key.params) {
        Family::Edwards => super::eddsa::check_private_key(key),
        Family::Montgomery => super::montgomery::check_private_key(key),
        Family::Weierstrass => {
            let curve = key_curve(&key.params)?;
            public_point(curve, &key_scalar(curve, key)?).map(|_| ())
        }
    }
}

/// The number of bytes of the ECDH shared secret Z on the curve of `params`: the longest key
/// CKD_NULL can derive, and a natural default when a template names no length.
pub fn shared_secret_len(params: &[u8]) -> Result<usize> {
    if super::montgomery::is_montgomery(params) {
        return Ok(super::montgomery::KEY_LEN);
    }
    Ok(key_curve(params)?.field_len())
}

/// Generates a key pair on the curve named by `params` (`CKA_EC_PARAMS`); a named curve not
/// offered is `Error::CurveNotSupported`, a value that names no curve
/// `Error::AttributeValueInvalid`. The public key holds the raw
/// uncompressed point, the private key the scalar as long as the field.
pub fn generate_key_pair(params: &[u8]) -> Result<(EcPublicKey, EcPrivateKey)> {
    let curve = curve_of(params).map_err(|_| encoding::unsupported_curve_error(params))?;
    let (scalar, point): (EcPrivateKeyBin<'static>, Vec<u8>) = match agreement_algorithm(curve) {
        Some(algorithm) => {
            let private = agreement::PrivateKey::generate(algorithm)
                .map_err(|_| Error::Internal("EC key generation failed"))?;
            let public = private.compute_public_key().map_err(|_| Error::Internal("EC key export failed"))?;
            (
                private.as_be_bytes().map_err(|_| Error::Internal("EC key export failed"))?,
                public.as_ref().to_vec(),
            )
        }
        None => {
            use aws_lc_rs::signature::KeyPair;
            let key = EcdsaKeyPair::generate(signing_algorithm(curve))
                .map_err(|_| Error::Internal("EC key generation failed"))?;
            let scalar =
                key.private_key().as_be_bytes().map_err(|_| Error::Internal("EC key export failed"))?;
            (scalar, key.public_key().as_ref().to_vec())
        }
    };
    let params = curve.params_der().to_vec();
    Ok((
        EcPublicKey { params: params.clone(), point },
        EcPrivateKey { params, value: Zeroizing::new(scalar.as_ref().to_vec()) },
    ))
}

/// The digest a signing mechanism hashes with; `None` for CKM_ECDSA (the input is the hash).
fn mechanism_digest(mechanism: CK_MECHANISM_TYPE) -> Result<Option<&'static digest::Algorithm>> {
    let hash = match mechanism {
        CKM_ECDSA => return Ok(None),
        CKM_ECDSA_SHA1 => CKM_SHA_1,
        CKM_ECDSA_SHA224 => CKM_SHA224,
        CKM_ECDSA_SHA256 => CKM_SHA256,
        CKM_ECDSA_SHA384 => CKM_SHA384,
        CKM_ECDSA_SHA512 => CKM_SHA512,
        _ => return Err(Error::MechanismInvalid),
    };
    super::digest::algorithm(hash).map(Some)
}

fn no_params(params: &MechanismParams) -> Result<()> {
    match params {
        MechanismParams::None => Ok(()),
        MechanismParams::Opaque(bytes) if bytes.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// A hash as the curve's AWS-LC digest of the same ECDSA value (see the module notes).
fn as_curve_digest(curve: Curve, hash: &[u8]) -> Result<Digest> {
    let algorithm = curve_digest(curve);
    let len = algorithm.output_len();
    let mut value = [0u8; 64];
    if hash.len() >= len {
        if curve == Curve::P521 && hash.len() > len {
            return Err(Error::DataLenRange);
        }
        value[..len].copy_from_slice(&hash[..len]);
    } else {
        value[len - hash.len()..len].copy_from_slice(hash);
    }
    Digest::import_less_safe(&value[..len], algorithm).map_err(|_| Error::DataLenRange)
}

/// An ECDSA signature in progress.
pub struct EcdsaSign {
    curve: Curve,
    key: std::sync::Arc<EcdsaKeyPair>,
    input: HashedInput,
}

/// Starts a signature with `mechanism` (CKM_ECDSA, CKM_ECDSA_SHA*) under `key`.
pub fn sign_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &EcPrivateKey,
) -> Result<Box<dyn SignOperation>> {
    let digest = mechanism_digest(mechanism)?;
    no_params(params)?;
    let curve = key_curve(&key.params)?;
    let scalar = key_scalar(curve, key)?;
    // Built once per key: deriving the public point costs more than a signature.
    static PREPARED: PreparedKeys<EcdsaKeyPair> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[curve.params_der(), &scalar])?;
    let key = PREPARED.get_or_build(fingerprint, || ecdsa_key_pair(curve, &scalar))?;
    Ok(Box::new(EcdsaSign { curve, key, input: HashedInput::new(digest) }))
}

impl EcdsaSign {
    fn sign_hash(&self, hash: &[u8]) -> Result<Vec<u8>> {
        let digest = as_curve_digest(self.curve, hash)?;
        let signature = self.key.sign_digest(&digest).map_err(|_| Error::Internal("ECDSA signing failed"))?;
        Ok(signature.as_ref().to_vec())
    }

    /// The public point of the signing key (for tests and self-checks).
    #[cfg(test)]
    fn public_point(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }
}

impl SignOperation for EcdsaSign {
    fn signature_len(&self) -> usize {
        2 * self.curve.field_len()
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let digest = self.input.finish()?;
        self.sign_hash(digest.as_ref())
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        if !self.input.hashes() {
            return self.sign_hash(data);
        }
        self.update(data)?;
        self.finish()
    }
}

/// An ECDSA verification in progress.
pub struct EcdsaVerify {
    curve: Curve,
    key: ParsedPublicKey,
    input: HashedInput,
}

/// Starts a verification with `mechanism` (CKM_ECDSA, CKM_ECDSA_SHA*) under `key`, whose point
/// must be an uncompressed point of its curve (`Error::KeyTypeInconsistent` otherwise).
pub fn verify_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &EcPublicKey,
) -> Result<Box<dyn VerifyOperation>> {
    let digest = mechanism_digest(mechanism)?;
    no_params(params)?;
    check_public_key(key)?;
    let curve = key_curve(&key.params)?;
    let parsed = ParsedPublicKey::new(verification_algorithm(curve), &key.point)
        .map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(Box::new(EcdsaVerify { curve, key: parsed, input: HashedInput::new(digest) }))
}

impl EcdsaVerify {
    fn verify_hash(&self, hash: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != 2 * self.curve.field_len() {
            return Err(Error::SignatureLenRange);
        }
        let digest = as_curve_digest(self.curve, hash)?;
        self.key.verify_digest_sig(&digest, signature).map_err(|_| Error::SignatureInvalid)
    }
}

impl VerifyOperation for EcdsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(2 * self.curve.field_len())
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.input.update(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let digest = self.input.finish()?;
        self.verify_hash(digest.as_ref(), signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        if !self.input.hashes() {
            return self.verify_hash(data, signature);
        }
        self.update(data)?;
        self.finish(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::EcdhParams;

    use crate::mechanism::test_vectors::{ec_private, ec_public, unhex as hex};

    fn verify(mechanism: CK_MECHANISM_TYPE, key: &EcPublicKey, data: &[u8], signature: &[u8]) -> Result<()> {
        verify_init(mechanism, &MechanismParams::None, key).unwrap().verify(data, signature)
    }

    /// NIST CAVP FIPS 186-4 ECDSA SigVer, [P-256,SHA-256], a vector with Result = P.
    #[test]
    fn known_answer_p256_sha256_sigver() {
        let key = ec_public(
            Curve::P256,
            "e424dc61d4bb3cb7ef4344a7f8957a0c5134e16f7a67c074f82e6e12f49abf3c",
            "970eed7aa2bc48651545949de1dddaf0127e5965ac85d1243d6f60e7dfaee927",
        );
        let msg = hex(
            "e1130af6a38ccb412a9c8d13e15dbfc9e69a16385af3c3f1e5da954fd5e7c45fd75e2b8c36699228e92840c0562fbf3772f07e17f1add56588dd45f7450e1217\
             ad239922dd9c32695dc71ff2424ca0dec1321aa47064a044b7fe3c2b97d03ce470a592304c5ef21eed9f93da56bb232d1eeb0035f9bf0dfafdcc4606272b20a3",
        );
        let signature = hex("bf96b99aa49c705c910be33142017c642ff540c76349b9dab72f981fd9347f4f\
             17c55095819089c2e03b9cd415abdf12444e323075d98f31920b9e0f57ec871c");
        verify(CKM_ECDSA_SHA256, &key, &msg, &signature).unwrap();
        // CKM_ECDSA over the hash, and multi-part.
        let hash = digest::digest(&digest::SHA256, &msg);
        verify(CKM_ECDSA, &key, hash.as_ref(), &signature).unwrap();
        let mut op = verify_init(CKM_ECDSA_SHA256, &MechanismParams::None, &key).unwrap();
        op.update(&msg[..50]).unwrap();
        op.update(&msg[50..]).unwrap();
        op.finish(&signature).unwrap();
        // A changed message or signature fails; a short signature is a length error.
        let mut bad_msg = msg.clone();
        bad_msg[0] ^= 1;
        assert_eq!(verify(CKM_ECDSA_SHA256, &key, &bad_msg, &signature), Err(Error::SignatureInvalid));
        let mut bad_sig = signature.clone();
        bad_sig[63] ^= 1;
        assert_eq!(verify(CKM_ECDSA_SHA256, &key, &msg, &bad_sig), Err(Error::SignatureInvalid));
        assert_eq!(verify(CKM_ECDSA_SHA256, &key, &msg, &signature[..63]), Err(Error::SignatureLenRange));
    }

    /// NIST CAVP FIPS 186-4 ECDSA SigVer, [P-384,SHA-384], a vector with Result = P.
    #[test]
    fn known_answer_p384_sha384_sigver() {
        let key = ec_public(
            Curve::P384,
            "a370cdbef95d1df5bf68ec487122514a107db87df3f8852068fd4694abcadb9b14302c72491a76a64442fc07bd99f02c",
            "d397c25dc1a5781573d039f2520cf329bf65120fdbe964b6b80101160e533d5570e62125b9f3276c49244b8d0f3e44ec",
        );
        let msg = hex(
            "93e7e75cfaf3fa4e71df80f7f8c0ef6672a630d2dbeba1d61349acbaaa476f5f0e34dccbd85b9a815d908203313a22fe3e919504cb222d623ad95662ea4a9009\
             9742c048341fe3a7a51110d30ad3a48a777c6347ea8b71749316e0dd1902facb304a76324b71f3882e6e70319e13fc2bb9f3f5dbb9bd2cc7265f52dfc0a3bb91",
        );
        let signature = hex(
            "c6c7bb516cc3f37a304328d136b2f44bb89d3dac78f1f5bcd36b412a8b4d879f6cdb75175292c696b58bfa9c91fe6391\
             6b711425e1b14f7224cd4b96717a84d65a60ec9951a30152ea1dd3b6ea66a0088d1fd3e9a1ef069804b7d969148c37a0",
        );
        verify(CKM_ECDSA_SHA384, &key, &msg, &signature).unwrap();
        let hash = hex(
            "709d1bf45b5817f5a67b859651eb47133ebed2622fda09ab66d3467b5e95da50ecc2c74d8f4d289feebec29729a4bfa3",
        );
        verify(CKM_ECDSA, &key, &hash, &signature).unwrap();
        let mut bad_sig = signature.clone();
        bad_sig[10] ^= 0x80;
        assert_eq!(verify(CKM_ECDSA_SHA384, &key, &msg, &bad_sig), Err(Error::SignatureInvalid));
        assert_eq!(verify(CKM_ECDSA_SHA256, &key, &msg, &signature), Err(Error::SignatureInvalid));
    }

    /// RFC 6979 A.2.5: P-256, SHA-256, message "sample"; its public key is also checked against
    /// the private key, and signing with that key verifies.
    #[test]
    fn known_answer_rfc6979_p256_sample() {
        let d = ec_private(Curve::P256, "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        let key = ec_public(
            Curve::P256,
            "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
            "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        );
        assert_eq!(public_point(Curve::P256, &d.value).unwrap(), key.point);
        let signature = hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
             F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
        verify(CKM_ECDSA_SHA256, &key, b"sample", &signature).unwrap();
        assert_eq!(verify(CKM_ECDSA_SHA256, &key, b"samplf", &signature), Err(Error::SignatureInvalid));

        let mut signer = sign_init(CKM_ECDSA_SHA256, &MechanismParams::None, &d).unwrap();
        let mine = signer.sign(b"sample").unwrap();
        assert_eq!(mine.len(), 64);
        verify(CKM_ECDSA_SHA256, &key, b"sample", &mine).unwrap();
    }

    #[test]
    fn round_trips_on_every_curve_and_hash() {
        let mechanisms =
            [CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512];
        for curve in Curve::ALL {
            let (public, private) = generate_key_pair(curve.params_der()).unwrap();
            assert_eq!(public.point.len(), curve.point_len());
            assert_eq!(private.value.len(), curve.field_len());
            let (other, _) = generate_key_pair(curve.params_der()).unwrap();
            for mechanism in mechanisms {
                let mut signer = sign_init(mechanism, &MechanismParams::None, &private).unwrap();
                assert_eq!(signer.signature_len(), 2 * curve.field_len());
                let signature = signer.sign(b"message").unwrap();
                assert_eq!(signature.len(), signer.signature_len());
                verify(mechanism, &public, b"message", &signature).unwrap();
                assert_eq!(verify(mechanism, &public, b"messagE", &signature), Err(Error::SignatureInvalid));
                assert_eq!(verify(mechanism, &other, b"message", &signature), Err(Error::SignatureInvalid));
                // Multi-part signing equals hashing first then CKM_ECDSA.
                signer.update(b"mess").unwrap();
                signer.update(b"age").unwrap();
                let parts = signer.finish().unwrap();
                let algorithm = mechanism_digest(mechanism).unwrap().unwrap();
                let hash = digest::digest(algorithm, b"message");
                verify(CKM_ECDSA, &public, hash.as_ref(), &parts).unwrap();
            }
            // CKM_ECDSA with hashes of any length up to 64 bytes, shorter and longer than the curve's.
            for len in [1, 20, 32, 48, 64] {
                let hash = vec![0xa5; len];
                let signature =
                    sign_init(CKM_ECDSA, &MechanismParams::None, &private).unwrap().sign(&hash).unwrap();
                verify(CKM_ECDSA, &public, &hash, &signature).unwrap();
            }
        }
    }

    /// A hash longer than the order is cut to its leftmost bytes, so a SHA-512 hash signed on
    /// P-256 is the same as its first 32 bytes; a shorter hash is the same number with leading
    /// zeros.
    #[test]
    fn ecdsa_truncates_and_pads_hashes_as_the_standard_says() {
        let (public, private) = generate_key_pair(Curve::P256.params_der()).unwrap();
        let long = [0x5cu8; 64];
        let signature = sign_init(CKM_ECDSA, &MechanismParams::None, &private).unwrap().sign(&long).unwrap();
        verify(CKM_ECDSA, &public, &long[..32], &signature).unwrap();
        let short = [0x11u8; 20];
        let signature = sign_init(CKM_ECDSA, &MechanismParams::None, &private).unwrap().sign(&short).unwrap();
        verify(CKM_ECDSA, &public, &[[0u8; 12].as_slice(), &short].concat(), &signature).unwrap();
        let (_, p521) = generate_key_pair(Curve::P521.params_der()).unwrap();
        let mut op = sign_init(CKM_ECDSA, &MechanismParams::None, &p521).unwrap();
        assert_eq!(op.sign(&[1; 65]), Err(Error::DataLenRange));
    }

    #[test]
    fn misuse_is_refused() {
        let (public, private) = generate_key_pair(Curve::P256.params_der()).unwrap();
        // P-192, P-224, brainpoolP256r1: named curves not offered.
        for oid in ["06082a8648ce3d030101", "06052b81040021", "06092b2403030208010107"] {
            assert_eq!(generate_key_pair(&hex(oid)).err(), Some(Error::CurveNotSupported), "{oid}");
        }
        assert_eq!(generate_key_pair(b"P-256").err(), Some(Error::AttributeValueInvalid));
        assert_eq!(
            generate_key_pair(&hex("130c656477617264733235353139")).err(),
            Some(Error::CurveNotSupported)
        );
        assert_eq!(generate_key_pair(&hex("0500")).err(), Some(Error::AttributeValueInvalid));
        assert_eq!(
            sign_init(CKM_RSA_PKCS, &MechanismParams::None, &private).err(),
            Some(Error::MechanismInvalid)
        );
        assert_eq!(
            sign_init(CKM_ECDSA, &MechanismParams::Opaque(vec![1]), &private).err(),
            Some(Error::MechanismParamInvalid)
        );
        // CKM_ECDSA is single-part.
        let mut op = sign_init(CKM_ECDSA, &MechanismParams::None, &private).unwrap();
        assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
        assert_eq!(op.finish(), Err(Error::OperationNotInitialized));
        let mut op = verify_init(CKM_ECDSA, &MechanismParams::None, &public).unwrap();
        assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
        // Bad keys: a zero or oversized scalar, a point off the curve, a foreign curve.
        let zero = EcPrivateKey { params: private.params.clone(), value: Zeroizing::new(vec![0; 32]) };
        assert_eq!(
            sign_init(CKM_ECDSA, &MechanismParams::None, &zero).err(),
            Some(Error::KeyTypeInconsistent)
        );
        let big = EcPrivateKey { params: private.params.clone(), value: Zeroizing::new(vec![0xff; 32]) };
        assert_eq!(
            sign_init(CKM_ECDSA, &MechanismParams::None, &big).err(),
            Some(Error::KeyTypeInconsistent)
        );
        let mut off_curve = public.clone();
        off_curve.point[64] ^= 1;
        assert_eq!(
            verify_init(CKM_ECDSA, &MechanismParams::None, &off_curve).err(),
            Some(Error::KeyTypeInconsistent)
        );
        check_public_key(&public).unwrap();
        check_private_key(&private).unwrap();
        assert_eq!(check_public_key(&off_curve), Err(Error::KeyTypeInconsistent));
        assert_eq!(check_private_key(&zero), Err(Error::KeyTypeInconsistent));
        let p192 = EcPublicKey { params: hex("06082a8648ce3d030101"), point: public.point.clone() };
        assert_eq!(
            verify_init(CKM_ECDSA, &MechanismParams::None, &p192).err(),
            Some(Error::CurveNotSupported)
        );
    }

    /// secp256k1: the points of d = 1 and d = 2 (G and 2G, SEC 2), and a signature made by
    /// OpenSSL 3 (`openssl dgst -sha256 -sign`) over "secp256k1 known answer".
    #[test]
    fn known_answer_secp256k1() {
        let g = ec_public(
            Curve::Secp256k1,
            "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
            "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8",
        );
        let two_g = ec_public(
            Curve::Secp256k1,
            "C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5",
            "1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A",
        );
        assert_eq!(
            public_point(Curve::Secp256k1, &fixed_scalar(Curve::Secp256k1, &[1]).unwrap()).unwrap(),
            g.point
        );
        assert_eq!(
            public_point(Curve::Secp256k1, &fixed_scalar(Curve::Secp256k1, &[2]).unwrap()).unwrap(),
            two_g.point
        );
        let d =
            ec_private(Curve::Secp256k1, "2c87c9c7ca0d8a04539d6dd540ac8da883146607f79ac30c6ab8accc9a63054d");
        let key = ec_public(
            Curve::Secp256k1,
            "2f840e4aaf6bbce2cbdb41302c29e277fe2e7ad9fb2cac0e85075b49e9729e04",
            "30375f55d17b950473c43dcf865f7a3e3a38ca483e2a74f0ff11908bd0e23496",
        );
        assert_eq!(public_point(Curve::Secp256k1, &d.value).unwrap(), key.point);
        check_public_key(&key).unwrap();
        check_private_key(&d).unwrap();
        let signature = hex("467D69F62D003F404115288447DA828457674EE0BAAC5765671B8F3C56B7EFE1\
             C0CB3B83B50A54F89CD8C1246AC1793837139DF1F11058537467ED751A94802E");
        verify(CKM_ECDSA_SHA256, &key, b"secp256k1 known answer", &signature).unwrap();
        assert_eq!(
            verify(CKM_ECDSA_SHA256, &key, b"secp256k1 known answeR", &signature),
            Err(Error::SignatureInvalid)
        );
        // A signature of its own verifies.
        let mine = sign_init(CKM_ECDSA_SHA256, &MechanismParams::None, &d).unwrap().sign(b"k1").unwrap();
        verify(CKM_ECDSA_SHA256, &key, b"k1", &mine).unwrap();
        // ECDH: 2 times G is 2G, whose x-coordinate SEC 2 gives.
        let g = public_point(Curve::Secp256k1, &fixed_scalar(Curve::Secp256k1, &[1]).unwrap()).unwrap();
        let two = ec_private(Curve::Secp256k1, "02");
        let params = MechanismParams::Ecdh(EcdhParams { kdf: CKD_NULL, shared_data: vec![], public_data: g });
        assert_eq!(
            *super::super::ecdh::derive(&params, &two, 32).unwrap(),
            hex("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
        );
        let mut off_curve = key.point.clone();
        off_curve[64] ^= 1;
        let params =
            MechanismParams::Ecdh(EcdhParams { kdf: CKD_NULL, shared_data: vec![], public_data: off_curve });
        assert_eq!(super::super::ecdh::derive(&params, &d, 32).err(), Some(Error::MechanismParamInvalid));
    }

    #[test]
    fn signing_key_matches_its_public_point() {
        let (public, private) = generate_key_pair(Curve::P384.params_der()).unwrap();
        let der = encoding::ec_private_key_der(Curve::P384, &private.value).unwrap();
        let key = EcdsaKeyPair::from_private_key_der(signing_algorithm(Curve::P384), &der).unwrap();
        let op = EcdsaSign { curve: Curve::P384, key: key.into(), input: HashedInput::new(None) };
        assert_eq!(op.public_point(), public.point);
    }
}
