//! Named short-Weierstrass curves: `CKA_EC_PARAMS` (the DER of the curve's OID) and
//! `CKA_EC_POINT` (an uncompressed point in a DER OCTET STRING). The keys' DER encodings that
//! use them are in `encoding.rs`, which re-exports what is public here.

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};

use crate::{Error, Result};

/// A named short-Weierstrass curve this module supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    /// secp256k1: ECDSA only, as AWS-LC offers no ECDH on it through aws-lc-rs.
    Secp256k1,
}

const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const SECP256K1_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

impl Curve {
    pub const ALL: [Curve; 4] = [Curve::P256, Curve::P384, Curve::P521, Curve::Secp256k1];

    /// The curve's OID: prime256v1, secp384r1, secp521r1, secp256k1.
    pub const fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
            Curve::P384 => ObjectIdentifier::new_unwrap("1.3.132.0.34"),
            Curve::P521 => ObjectIdentifier::new_unwrap("1.3.132.0.35"),
            Curve::Secp256k1 => ObjectIdentifier::new_unwrap("1.3.132.0.10"),
        }
    }

    /// `CKA_EC_PARAMS` of the curve: the DER of its OID.
    pub const fn params_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => P256_PARAMS,
            Curve::P384 => P384_PARAMS,
            Curve::P521 => P521_PARAMS,
            Curve::Secp256k1 => SECP256K1_PARAMS,
        }
    }

    /// Bytes of a field element (and of a private scalar, and of each half of a signature).
    pub const fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::Secp256k1 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The key size in bits, as `CK_MECHANISM_INFO` counts EC keys.
    pub const fn bits(self) -> u64 {
        match self {
            Curve::P256 | Curve::Secp256k1 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// Whether ECDH is offered on the curve.
    pub const fn has_ecdh(self) -> bool {
        !matches!(self, Curve::Secp256k1)
    }

    /// Bytes of an uncompressed point: 0x04 ‖ x ‖ y.
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    pub(super) fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid() == *oid)
    }
}

/// The curve of a 25519 key (Ed25519, X25519), whose 448 sibling aws-lc-rs does not offer:
/// `is_25519` says whether `params` names the offered curve; params among `named_448` are
/// `Error::CurveNotSupported`, anything else names no curve of the family
/// (`Error::AttributeValueInvalid`).
pub fn require_25519(params: &[u8], is_25519: fn(&[u8]) -> bool, named_448: &[&[u8]]) -> Result<()> {
    if is_25519(params) {
        Ok(())
    } else if named_448.contains(&params) {
        Err(Error::CurveNotSupported)
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// The curve named by `CKA_EC_PARAMS` (the DER of a named-curve OID). Another well-formed
/// curve name (an OID such as Brainpool's, P-192's or P-224's, or the PrintableString form
/// PKCS#11 3.0 allows) is `Error::CurveNotSupported`, as the standard names it, on import as on
/// generation; anything else is `Error::AttributeValueInvalid` (see [`unsupported_curve_error`]).
pub fn curve_of(params: &[u8]) -> Result<Curve> {
    match Curve::ALL.into_iter().find(|c| c.params_der() == params) {
        Some(curve) => Ok(curve),
        None => Err(unsupported_curve_error(params)),
    }
}

/// The error for `CKA_EC_PARAMS` that name no curve offered here: a well-formed curve name (a
/// DER OID, or the PrintableString form PKCS#11 3.0 allows) is `Error::CurveNotSupported`;
/// anything else (`ecParameters`, `implicitlyCA`, garbage) `Error::AttributeValueInvalid`.
pub fn unsupported_curve_error(params: &[u8]) -> Error {
    if <ObjectIdentifier>::from_der(params).is_ok() || der::asn1::PrintableStringRef::from_der(params).is_ok()
    {
        Error::CurveNotSupported
    } else {
        Error::AttributeValueInvalid
    }
}

/// Whether `point` looks like an uncompressed point of one of the supported curves.
fn is_uncompressed_point(point: &[u8]) -> bool {
    point.first() == Some(&0x04) && Curve::ALL.iter().any(|c| c.point_len() == point.len())
}

/// `CKA_EC_POINT` of a raw uncompressed point: the point in a DER OCTET STRING.
pub fn ec_point_to_attribute(point: &[u8]) -> Vec<u8> {
    // A point is at most 133 bytes, far below what an OCTET STRING can hold; the encoder
    // fails only on lengths beyond 256 MiB.
    OctetStringRef::new(point).and_then(|octets| octets.to_der()).unwrap_or_default()
}

/// The raw uncompressed point of a `CKA_EC_POINT` value: the DER OCTET STRING form, or
/// (leniently, as some applications send it) the raw point itself. An Edwards or Montgomery
/// public key (32 bytes) is taken the same two ways. Anything else is
/// `Error::AttributeValueInvalid`. The curve is checked by the caller.
pub fn ec_point_from_attribute(attr: &[u8]) -> Result<Vec<u8>> {
    let acceptable = |p: &[u8]| is_uncompressed_point(p) || p.len() == CURVE25519_KEY_LEN;
    if let Ok(octets) = <&OctetStringRef>::from_der(attr)
        && acceptable(octets.as_bytes())
    {
        return Ok(octets.as_bytes().to_vec());
    }
    // A raw point cannot also parse as an OCTET STRING holding a point of a valid length, so
    // the two forms never collide.
    if acceptable(attr) {
        return Ok(attr.to_vec());
    }
    Err(Error::AttributeValueInvalid)
}

/// Bytes of an Ed25519 or X25519 public key.
const CURVE25519_KEY_LEN: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::test_vectors::unhex as hex;

    #[test]
    fn curves_are_named_by_their_oid_der_only() {
        assert_eq!(curve_of(&hex("06082a8648ce3d030107")).unwrap(), Curve::P256);
        assert_eq!(curve_of(&hex("06052b81040022")).unwrap(), Curve::P384);
        assert_eq!(curve_of(&hex("06052b81040023")).unwrap(), Curve::P521);
        assert_eq!(curve_of(&hex("06052b8104000a")).unwrap(), Curve::Secp256k1);
        for c in Curve::ALL {
            assert_eq!(c.oid().to_der().unwrap(), c.params_der());
            assert_eq!(curve_of(c.params_der()).unwrap(), c);
        }
        // P-192, P-224, brainpoolP256r1, an OID of no curve: named curves not offered.
        for other in ["06082a8648ce3d030101", "06052b81040021", "06092b2403030208010107", "06032a0304"] {
            assert_eq!(curve_of(&hex(other)), Err(Error::CurveNotSupported), "{other}");
        }
        // A curve named in the PrintableString form is a name too (not one offered here).
        assert_eq!(curve_of(&hex("13097072696d6532353676")), Err(Error::CurveNotSupported));
        // A string whose length is wrong, trailing bytes, garbage: no curve named at all.
        for bad in ["130a7072696d6532353676", "06082a8648ce3d03010700", "", "05"] {
            assert_eq!(curve_of(&hex(bad)), Err(Error::AttributeValueInvalid), "{bad}");
        }
        assert_eq!((Curve::P521.field_len(), Curve::P521.point_len(), Curve::P521.bits()), (66, 133, 521));
    }

    #[test]
    fn ec_points_wrap_and_unwrap() {
        for c in Curve::ALL {
            let mut point = vec![0x5a; c.point_len()];
            point[0] = 0x04;
            let attr = ec_point_to_attribute(&point);
            // The header is the DER of an OCTET STRING of that length.
            assert_eq!(attr, OctetStringRef::new(&point).unwrap().to_der().unwrap());
            assert_eq!(ec_point_from_attribute(&attr).unwrap(), point);
            assert_eq!(ec_point_from_attribute(&point).unwrap(), point, "raw point accepted");
        }
        // A raw P-256 point whose x starts with 0x3f is not mistaken for an OCTET STRING.
        let mut tricky = vec![0x3f; 65];
        tricky[0] = 0x04;
        assert_eq!(ec_point_from_attribute(&tricky).unwrap(), tricky);
        // Compressed points, wrong lengths, garbage: refused.
        let mut compressed = vec![0x11; 33];
        compressed[0] = 0x02;
        for bad in
            [compressed.clone(), ec_point_to_attribute(&compressed), vec![0x04; 64], vec![], vec![0x04]]
        {
            assert_eq!(ec_point_from_attribute(&bad), Err(Error::AttributeValueInvalid));
        }
    }
}
