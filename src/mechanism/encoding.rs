//! The DER side of asymmetric keys: EC curve parameters (`CKA_EC_PARAMS`) and points
//! (`CKA_EC_POINT`; both in `curve.rs`, re-exported here), PKCS#8 private keys for
//! C_WrapKey/C_UnwrapKey, and SubjectPublicKeyInfo for `CKA_PUBLIC_KEY_INFO`.
//!
//! Only named curves are accepted (P-256, P-384, P-521, secp256k1), as the DER of their OID. PKCS#8 is
//! produced with the RSA CRT values (derived from n, e and d when an object lacks them) and,
//! for EC keys, a SEC1 `ECPrivateKey` carrying the curve and the public point.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

pub use super::curve::{
    Curve, curve_of, ec_point_from_attribute, ec_point_to_attribute, unsupported_curve_error,
};
use super::{EcPrivateKey, EcPublicKey, KeyMaterial, RsaCrt, RsaPrivateKey, RsaPublicKey};
use crate::{Error, Result};

/// `rsaEncryption` (PKCS#1).
pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480).
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// Strips the leading zero bytes of a big-endian unsigned integer.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A private scalar as exactly `curve.field_len()` bytes (CKA_VALUE may come without leading
/// zeros, or with extra ones); `None` if it does not fit.
pub(crate) fn fixed_scalar(curve: Curve, value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let digits = strip_leading_zeros(value);
    let len = curve.field_len();
    if digits.len() > len {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    out[len - digits.len()..].copy_from_slice(digits);
    Some(out)
}

/// The RSA private key components, all present: the PKCS#1 `RSAPrivateKey` fields.
pub(crate) struct RsaParts<'a> {
    pub n: &'a [u8],
    pub e: &'a [u8],
    pub d: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
    pub dp: &'a [u8],
    pub dq: &'a [u8],
    pub qinv: &'a [u8],
}

/// PKCS#8 `PrivateKeyInfo` (rsaEncryption) of a two-prime RSA key.
pub(crate) fn rsa_pkcs8(parts: &RsaParts<'_>) -> der::Result<Zeroizing<Vec<u8>>> {
    let inner = pkcs1::RsaPrivateKeyRef {
        modulus: UintRef::new(parts.n)?,
        public_exponent: UintRef::new(parts.e)?,
        private_exponent: UintRef::new(parts.d)?,
        prime1: UintRef::new(parts.p)?,
        prime2: UintRef::new(parts.q)?,
        exponent1: UintRef::new(parts.dp)?,
        exponent2: UintRef::new(parts.dq)?,
        coefficient: UintRef::new(parts.qinv)?,
        other_prime_infos: None,
    };
    let inner = Zeroizing::new(inner.to_der()?);
    let info = PrivateKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) },
        private_key: OctetStringRef::new(&inner)?,
        public_key: None,
    };
    Ok(Zeroizing::new(info.to_der()?))
}

/// PKCS#8 `PrivateKeyInfo` (id-ecPublicKey) holding a SEC1 `ECPrivateKey` with the curve and
/// the public point.
fn ec_pkcs8(curve: Curve, scalar: &[u8], point: &[u8]) -> der::Result<Zeroizing<Vec<u8>>> {
    let curve_oid = curve.oid();
    let inner = sec1::EcPrivateKey {
        private_key: scalar,
        parameters: Some(sec1::EcParameters::NamedCurve(curve_oid)),
        public_key: Some(point),
    };
    let inner = Zeroizing::new(inner.to_der()?);
    let info = PrivateKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: Some(AnyRef::from(&curve_oid)) },
        private_key: OctetStringRef::new(&inner)?,
        public_key: None,
    };
    Ok(Zeroizing::new(info.to_der()?))
}

/// SEC1 `ECPrivateKey` (RFC 5915) with the curve and without the public point, as AWS-LC
/// parses it (computing the point itself).
pub(crate) fn ec_private_key_der(curve: Curve, scalar: &[u8]) -> der::Result<Zeroizing<Vec<u8>>> {
    let key = sec1::EcPrivateKey {
        private_key: scalar,
        parameters: Some(sec1::EcParameters::NamedCurve(curve.oid())),
        public_key: None,
    };
    Ok(Zeroizing::new(key.to_der()?))
}

/// The PKCS#8 encoding of a private key, for C_WrapKey.
///
/// RSA keys without CRT values get them derived from n, e and d (NIST SP 800-56B C.2, which
/// needs e > 2^16); a key whose components are inconsistent is `Error::KeyNotWrappable`. EC keys
/// carry the curve and the public point computed from the scalar. Other keys are
/// `Error::KeyNotWrappable`.
pub fn private_key_to_pkcs8(key: &KeyMaterial) -> Result<Zeroizing<Vec<u8>>> {
    match key {
        KeyMaterial::RsaPrivate(k) => {
            let derived;
            let crt = match &k.crt {
                Some(crt) => crt,
                None => {
                    derived = super::rsa::derive_crt(k).map_err(|_| Error::KeyNotWrappable)?;
                    &derived
                }
            };
            let parts = RsaParts {
                n: &k.public.modulus,
                e: &k.public.public_exponent,
                d: &k.private_exponent,
                p: &crt.prime_1,
                q: &crt.prime_2,
                dp: &crt.exponent_1,
                dq: &crt.exponent_2,
                qinv: &crt.coefficient,
            };
            if strip_leading_zeros(parts.n).is_empty() || strip_leading_zeros(parts.e).is_empty() {
                return Err(Error::KeyNotWrappable);
            }
            rsa_pkcs8(&parts).map_err(|_| Error::KeyNotWrappable)
        }
        KeyMaterial::EcPrivate(k) if curve25519_oid(&k.params).is_some() => {
            curve25519_pkcs8(&k.params, &k.value).map_err(|_| Error::KeyNotWrappable)
        }
        KeyMaterial::EcPrivate(k) => {
            let curve = curve_of(&k.params).map_err(|_| Error::KeyNotWrappable)?;
            let scalar = fixed_scalar(curve, &k.value).ok_or(Error::KeyNotWrappable)?;
            let point = super::ec::public_point(curve, &scalar).map_err(|_| Error::KeyNotWrappable)?;
            ec_pkcs8(curve, &scalar, &point).map_err(|_| Error::KeyNotWrappable)
        }
        KeyMaterial::PqPrivate(k) => super::pq_pkcs8::to_pkcs8(k),
        _ => Err(Error::KeyNotWrappable),
    }
}

fn owned(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes.to_vec())
}

/// The components of a PKCS#1 `RSAPrivateKey` inside PKCS#8, leading zeros stripped; `None`
/// if the encoding is not a two-prime RSA key.
pub(crate) fn rsa_private_key_from_pkcs8(der: &[u8]) -> Option<RsaPrivateKey> {
    let info = PrivateKeyInfoRef::from_der(der).ok()?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    rsa_private_key_from_info(&info)
}

fn rsa_private_key_from_info(info: &PrivateKeyInfoRef<'_>) -> Option<RsaPrivateKey> {
    if info.algorithm.parameters.is_some_and(|p| p != AnyRef::NULL) {
        return None;
    }
    let key = pkcs1::RsaPrivateKeyRef::from_der(info.private_key.as_bytes()).ok()?;
    if key.other_prime_infos.is_some() {
        return None;
    }
    let public = RsaPublicKey {
        modulus: key.modulus.as_bytes().to_vec(),
        public_exponent: key.public_exponent.as_bytes().to_vec(),
    };
    if public.modulus.is_empty() || public.public_exponent.is_empty() {
        return None;
    }
    Some(RsaPrivateKey {
        public,
        private_exponent: owned(key.private_exponent.as_bytes()),
        crt: Some(RsaCrt {
            prime_1: owned(key.prime1.as_bytes()),
            prime_2: owned(key.prime2.as_bytes()),
            exponent_1: owned(key.exponent1.as_bytes()),
            exponent_2: owned(key.exponent2.as_bytes()),
            coefficient: owned(key.coefficient.as_bytes()),
        }),
    })
}

fn ec_private_key_from_info(info: &PrivateKeyInfoRef<'_>) -> Option<EcPrivateKey> {
    let outer_curve = match info.algorithm.parameters {
        Some(any) => Some(Curve::from_oid(&any.decode_as::<ObjectIdentifier>().ok()?)?),
        None => None,
    };
    let key = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).ok()?;
    let inner_curve = match key.parameters {
        Some(params) => Some(Curve::from_oid(&params.named_curve()?)?),
        None => None,
    };
    let curve = match (outer_curve, inner_curve) {
        (Some(a), Some(b)) if a != b => return None,
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return None,
    };
    let scalar = fixed_scalar(curve, key.private_key)?;
    // The scalar must be a valid key (0 < d < n); the point, if given, must be its own.
    let point = super::ec::public_point(curve, &scalar).ok()?;
    if key.public_key.is_some_and(|given| given != point.as_slice()) {
        return None;
    }
    Some(EcPrivateKey { params: curve.params_der().to_vec(), value: scalar })
}

/// The private key in a PKCS#8 `PrivateKeyInfo`, for C_UnwrapKey: a two-prime RSA key (with its
/// CRT values, checked for consistency), an EC key on a supported curve, or an Ed25519 or
/// X25519 key (RFC 8410). Anything else, or
/// malformed input, is `Error::WrappedKeyInvalid`.
pub fn private_key_from_pkcs8(der: &[u8]) -> Result<KeyMaterial> {
    let info = PrivateKeyInfoRef::from_der(der).map_err(|_| Error::WrappedKeyInvalid)?;
    if info.algorithm.oid == RSA_ENCRYPTION {
        let key = rsa_private_key_from_info(&info).ok_or(Error::WrappedKeyInvalid)?;
        super::rsa::check_private_key(&key).map_err(|_| Error::WrappedKeyInvalid)?;
        Ok(KeyMaterial::RsaPrivate(key))
    } else if info.algorithm.oid == EC_PUBLIC_KEY {
        let key = ec_private_key_from_info(&info).ok_or(Error::WrappedKeyInvalid)?;
        Ok(KeyMaterial::EcPrivate(key))
    } else if info.algorithm.oid == ID_ED25519 || info.algorithm.oid == ID_X25519 {
        curve25519_private_key_from_info(&info).map(KeyMaterial::EcPrivate).ok_or(Error::WrappedKeyInvalid)
    } else if super::pq_pkcs8::is_pq_algorithm(&info.algorithm.oid) {
        super::pq_pkcs8::from_pkcs8(&info).map(KeyMaterial::PqPrivate)
    } else {
        Err(Error::WrappedKeyInvalid)
    }
}

fn rsa_spki(key: &RsaPublicKey) -> Result<Vec<u8>> {
    let n = strip_leading_zeros(&key.modulus);
    let e = strip_leading_zeros(&key.public_exponent);
    if n.is_empty() || e.is_empty() {
        return Err(Error::AttributeValueInvalid);
    }
    let inner = pkcs1::RsaPublicKeyRef {
        modulus: UintRef::new(n).map_err(|_| Error::AttributeValueInvalid)?,
        public_exponent: UintRef::new(e).map_err(|_| Error::AttributeValueInvalid)?,
    };
    let inner = inner.to_der().map_err(|_| Error::AttributeValueInvalid)?;
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) },
        subject_public_key: BitStringRef::from_bytes(&inner).map_err(|_| Error::AttributeValueInvalid)?,
    };
    info.to_der().map_err(|_| Error::AttributeValueInvalid)
}

fn ec_spki(curve: Curve, point: &[u8]) -> Result<Vec<u8>> {
    if point.len() != curve.point_len() || point[0] != 0x04 {
        return Err(Error::AttributeValueInvalid);
    }
    let curve_oid = curve.oid();
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: Some(AnyRef::from(&curve_oid)) },
        subject_public_key: BitStringRef::from_bytes(point).map_err(|_| Error::AttributeValueInvalid)?,
    };
    info.to_der().map_err(|_| Error::AttributeValueInvalid)
}

/// `id-Ed25519` and `id-X25519` (RFC 8410).
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");

/// The RFC 8410 OID of Ed25519 or X25519 `params`, if they name one of them.
fn curve25519_oid(params: &[u8]) -> Option<ObjectIdentifier> {
    if super::eddsa::is_ed25519(params) {
        Some(ID_ED25519)
    } else if super::montgomery::is_x25519(params) {
        Some(ID_X25519)
    } else {
        None
    }
}

/// PKCS#8 of an Ed25519 or X25519 private key (RFC 8410): the OID without parameters, and the
/// 32-byte key as a `CurvePrivateKey` OCTET STRING inside the `privateKey` OCTET STRING.
fn curve25519_pkcs8(params: &[u8], key: &[u8]) -> der::Result<Zeroizing<Vec<u8>>> {
    let oid = curve25519_oid(params).ok_or_else(|| der::Tag::ObjectIdentifier.value_error())?;
    if key.len() != 32 {
        return Err(der::Tag::OctetString.length_error().into());
    }
    let inner = Zeroizing::new(OctetStringRef::new(key)?.to_der()?);
    let info = PrivateKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters: None },
        private_key: OctetStringRef::new(&inner)?,
        public_key: None,
    };
    Ok(Zeroizing::new(info.to_der()?))
}

/// The Ed25519 or X25519 key of an RFC 8410 `PrivateKeyInfo`; its `CKA_EC_PARAMS` are the
/// DER of the OID. A public key inside (PKCS#8 v2) must be the key's own.
fn curve25519_private_key_from_info(info: &PrivateKeyInfoRef<'_>) -> Option<EcPrivateKey> {
    if info.algorithm.parameters.is_some() {
        return None;
    }
    let key = <&OctetStringRef>::from_der(info.private_key.as_bytes()).ok()?.as_bytes();
    if key.len() != 32 {
        return None;
    }
    let params = info.algorithm.oid.to_der().ok()?;
    let private = EcPrivateKey { params, value: Zeroizing::new(key.to_vec()) };
    let public = if info.algorithm.oid == ID_ED25519 {
        super::eddsa::public_key(&private).ok()?
    } else {
        super::montgomery::public_key(&private).ok()?
    };
    if let Some(given) = &info.public_key
        && given.raw_bytes() != public.as_slice()
    {
        return None;
    }
    Some(private)
}

/// The SubjectPublicKeyInfo of an Ed25519 or X25519 key (RFC 8410: the OID without
/// parameters, the raw key as the bit string); `None` if `params` names neither.
fn curve25519_spki(params: &[u8], key: &[u8]) -> Option<Result<Vec<u8>>> {
    let oid = if super::eddsa::is_ed25519(params) {
        ID_ED25519
    } else if super::montgomery::is_x25519(params) {
        ID_X25519
    } else {
        return None;
    };
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid, parameters: None },
        subject_public_key: match BitStringRef::from_bytes(key) {
            Ok(bits) => bits,
            Err(_) => return Some(Err(Error::AttributeValueInvalid)),
        },
    };
    Some(info.to_der().map_err(|_| Error::AttributeValueInvalid))
}

/// The SubjectPublicKeyInfo DER of an RSA or EC key (a private key's public half), for
/// `CKA_PUBLIC_KEY_INFO`. Bad components are `Error::AttributeValueInvalid`; a secret key is
/// `Error::KeyTypeInconsistent`.
pub fn public_key_info(key: &KeyMaterial) -> Result<Vec<u8>> {
    match key {
        KeyMaterial::RsaPublic(k) => rsa_spki(k),
        KeyMaterial::RsaPrivate(k) => rsa_spki(&k.public),
        KeyMaterial::EcPublic(EcPublicKey { params, point }) => match curve25519_spki(params, point) {
            Some(info) => info,
            None => ec_spki(curve_of(params)?, point),
        },
        KeyMaterial::EcPrivate(k) if super::eddsa::is_ed25519(&k.params) => {
            let point = super::eddsa::public_key(k).map_err(|_| Error::AttributeValueInvalid)?;
            curve25519_spki(&k.params, &point).unwrap_or(Err(Error::AttributeValueInvalid))
        }
        KeyMaterial::EcPrivate(k) if super::montgomery::is_x25519(&k.params) => {
            let point = super::montgomery::public_key(k).map_err(|_| Error::AttributeValueInvalid)?;
            curve25519_spki(&k.params, &point).unwrap_or(Err(Error::AttributeValueInvalid))
        }
        KeyMaterial::EcPrivate(k) => {
            let curve = curve_of(&k.params)?;
            let scalar = fixed_scalar(curve, &k.value).ok_or(Error::AttributeValueInvalid)?;
            let point = super::ec::public_point(curve, &scalar).map_err(|_| Error::AttributeValueInvalid)?;
            ec_spki(curve, &point)
        }
        KeyMaterial::PqPublic(k) => super::pq::public_key_info(k),
        KeyMaterial::PqPrivate(k) => super::pq::public_key_info(&super::pq::public_of(k)?),
        KeyMaterial::Secret(_) => Err(Error::KeyTypeInconsistent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) use crate::mechanism::test_vectors::unhex as hex;

    #[test]
    fn scalars_are_fixed_to_the_field_length() {
        assert_eq!(*fixed_scalar(Curve::P256, &[1, 2]).unwrap(), [vec![0; 30], vec![1, 2]].concat());
        assert_eq!(fixed_scalar(Curve::P256, &[[0u8; 3].as_slice(), &[9; 32]].concat()).unwrap().len(), 32);
        assert!(fixed_scalar(Curve::P256, &[9; 33]).is_none());
    }

    use crate::mechanism::rsa::tests::{MODULUS, PKCS8, wycheproof_key};
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};

    /// The Wycheproof 2048-bit test key: its published PKCS#8 parses to its components, and
    /// those encode back to the very same bytes (DER is canonical); a key without CRT values
    /// is completed; its SubjectPublicKeyInfo is the published `publicKeyDer`.
    #[test]
    fn known_answer_rsa_pkcs8_and_spki() {
        let der = hex(PKCS8);
        let KeyMaterial::RsaPrivate(key) = private_key_from_pkcs8(&der).unwrap() else { panic!("not RSA") };
        assert_eq!(key.public.modulus, hex(MODULUS));
        assert_eq!(*private_key_to_pkcs8(&KeyMaterial::RsaPrivate(wycheproof_key())).unwrap(), der);
        let bare = RsaPrivateKey {
            public: key.public.clone(),
            private_exponent: key.private_exponent.clone(),
            crt: None,
        };
        let completed = private_key_to_pkcs8(&KeyMaterial::RsaPrivate(bare)).unwrap();
        aws_lc_rs::rsa::KeyPair::from_pkcs8(&completed).unwrap();

        let spki = hex(&format!(
            "30820122300d06092a864886f70d01010105000382010f003082010a0282010100{MODULUS}0203010001"
        ));
        assert_eq!(public_key_info(&KeyMaterial::RsaPublic(key.public.clone())).unwrap(), spki);
        assert_eq!(public_key_info(&KeyMaterial::RsaPrivate(key)).unwrap(), spki);
        // Leading zeros in the attributes do not change the encoding.
        let padded =
            RsaPublicKey { modulus: [vec![0], hex(MODULUS)].concat(), public_exponent: vec![0, 1, 0, 1] };
        assert_eq!(public_key_info(&KeyMaterial::RsaPublic(padded)).unwrap(), spki);
    }

    #[test]
    fn rsa_pkcs8_that_is_inconsistent_or_malformed_is_refused() {
        let mut der = hex(PKCS8);
        // A bit of the modulus flipped: well-formed DER, inconsistent key.
        der[40] ^= 0x01;
        assert_eq!(private_key_from_pkcs8(&der).err(), Some(Error::WrappedKeyInvalid));
        // Trailing bytes.
        let mut der = hex(PKCS8);
        der.push(0);
        assert_eq!(private_key_from_pkcs8(&der).err(), Some(Error::WrappedKeyInvalid));
        // Truncated.
        let der = hex(PKCS8);
        assert_eq!(private_key_from_pkcs8(&der[..der.len() - 1]).err(), Some(Error::WrappedKeyInvalid));
    }

    /// EC private keys: PKCS#8 made here is read by AWS-LC and by this module, AWS-LC's own
    /// PKCS#8 is read here, and the SubjectPublicKeyInfo equals AWS-LC's.
    #[test]
    fn ec_pkcs8_and_spki_agree_with_aws_lc() {
        for curve in Curve::ALL {
            let (public, private) = super::super::ec::generate_key_pair(curve.params_der()).unwrap();
            let value = private.value.clone();
            let params = private.params.clone();
            let private = KeyMaterial::EcPrivate(private);
            let der = private_key_to_pkcs8(&private).unwrap();
            let alg = match curve {
                Curve::P256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                Curve::P384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                Curve::P521 => &aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                Curve::Secp256k1 => &aws_lc_rs::signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            };
            let theirs = EcdsaKeyPair::from_pkcs8(alg, &der).unwrap();
            assert_eq!(theirs.public_key().as_ref(), public.point.as_slice());
            let KeyMaterial::EcPrivate(back) = private_key_from_pkcs8(&der).unwrap() else {
                panic!("not EC")
            };
            assert_eq!((back.params, back.value), (params.clone(), value.clone()));
            let KeyMaterial::EcPrivate(back) =
                private_key_from_pkcs8(theirs.to_pkcs8v1().unwrap().as_ref()).unwrap()
            else {
                panic!("not EC")
            };
            assert_eq!(back.value, value);

            let spki = theirs.public_key().as_der().unwrap();
            assert_eq!(public_key_info(&KeyMaterial::EcPublic(public.clone())).unwrap(), spki.as_ref());
            assert_eq!(public_key_info(&private).unwrap(), spki.as_ref());
            // A scalar given without its leading zeros is the same key.
            let short = EcPrivateKey { params: params.clone(), value: Zeroizing::new(vec![0x01]) };
            let der = private_key_to_pkcs8(&KeyMaterial::EcPrivate(short)).unwrap();
            let KeyMaterial::EcPrivate(back) = private_key_from_pkcs8(&der).unwrap() else {
                panic!("not EC")
            };
            assert_eq!(back.value.len(), curve.field_len());
        }
    }

    /// RFC 8410 10.3's Ed25519 private key; Ed25519 keys through AWS-LC's PKCS#8 and this
    /// module's; X25519 keys through this module's (aws-lc-rs exports no X25519 PKCS#8).
    #[test]
    fn curve25519_pkcs8_agrees_with_rfc8410_and_aws_lc() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let rfc = hex(
            "302e020100300506032b657004220420d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842",
        );
        let KeyMaterial::EcPrivate(k) = private_key_from_pkcs8(&rfc).unwrap() else { panic!("not EC") };
        assert_eq!(k.params, super::super::eddsa::ED25519_PARAMS);
        assert_eq!(*k.value, hex("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842"));
        assert_eq!(*private_key_to_pkcs8(&KeyMaterial::EcPrivate(k)).unwrap(), rfc);

        let (public, private) = super::super::eddsa::generate_key_pair(b"\x13\x0cedwards25519").unwrap();
        let der = private_key_to_pkcs8(&KeyMaterial::EcPrivate(private)).unwrap();
        let theirs = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
        assert_eq!(theirs.public_key().as_ref(), public.point.as_slice());
        // AWS-LC's v2 PKCS#8 (with the public key) reads back; a foreign public key does not.
        let v2 = theirs.to_pkcs8().unwrap();
        let KeyMaterial::EcPrivate(back) = private_key_from_pkcs8(v2.as_ref()).unwrap() else { panic!() };
        assert_eq!(super::super::eddsa::public_key(&back).unwrap(), public.point);
        let mut foreign = v2.as_ref().to_vec();
        let last = foreign.len() - 1;
        foreign[last] ^= 1;
        assert_eq!(private_key_from_pkcs8(&foreign).err(), Some(Error::WrappedKeyInvalid));

        let (x_public, x_private) =
            super::super::montgomery::generate_key_pair(super::super::montgomery::X25519_PARAMS).unwrap();
        let der = private_key_to_pkcs8(&KeyMaterial::EcPrivate(x_private)).unwrap();
        let KeyMaterial::EcPrivate(back) = private_key_from_pkcs8(&der).unwrap() else { panic!() };
        assert_eq!(super::super::montgomery::public_key(&back).unwrap(), x_public.point);
    }

    #[test]
    fn ec_pkcs8_with_a_foreign_point_or_curve_is_refused() {
        let (_, a) = super::super::ec::generate_key_pair(Curve::P256.params_der()).unwrap();
        let (b_pub, _) = super::super::ec::generate_key_pair(Curve::P256.params_der()).unwrap();
        let scalar = a.value.clone();
        let foreign_point = ec_pkcs8(Curve::P256, &scalar, &b_pub.point).unwrap();
        assert_eq!(private_key_from_pkcs8(&foreign_point).err(), Some(Error::WrappedKeyInvalid));
        // P-192 in the AlgorithmIdentifier.
        let k1 = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.1");
        let inner =
            sec1::EcPrivateKey { private_key: &scalar, parameters: None, public_key: None }.to_der().unwrap();
        let info = PrivateKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: Some(AnyRef::from(&k1)) },
            private_key: OctetStringRef::new(&inner).unwrap(),
            public_key: None,
        };
        assert_eq!(private_key_from_pkcs8(&info.to_der().unwrap()).err(), Some(Error::WrappedKeyInvalid));
        // The curve only inside the ECPrivateKey is enough.
        let inner = sec1::EcPrivateKey {
            private_key: &scalar,
            parameters: Some(sec1::EcParameters::NamedCurve(Curve::P256.oid())),
            public_key: None,
        }
        .to_der()
        .unwrap();
        let info = PrivateKeyInfoRef {
            algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: None },
            private_key: OctetStringRef::new(&inner).unwrap(),
            public_key: None,
        };
        let KeyMaterial::EcPrivate(back) = private_key_from_pkcs8(&info.to_der().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(back.value, scalar);
        // A zero scalar is no key.
        let zero =
            EcPrivateKey { params: Curve::P256.params_der().to_vec(), value: Zeroizing::new(vec![0; 32]) };
        assert_eq!(private_key_to_pkcs8(&KeyMaterial::EcPrivate(zero)).err(), Some(Error::KeyNotWrappable));
    }

    #[test]
    fn malformed_pkcs8_is_a_wrapped_key_error() {
        for bad in [vec![], vec![0x30, 0x00], hex("3003020100"), vec![0xff; 40]] {
            assert_eq!(private_key_from_pkcs8(&bad).err(), Some(Error::WrappedKeyInvalid));
        }
        let secret = KeyMaterial::Secret(super::super::SecretKey {
            key_type: cryptoki_sys::CKK_AES,
            value: Zeroizing::new(vec![1; 16]),
        });
        assert_eq!(private_key_to_pkcs8(&secret).err(), Some(Error::KeyNotWrappable));
        assert_eq!(public_key_info(&secret).err(), Some(Error::KeyTypeInconsistent));
    }
}
