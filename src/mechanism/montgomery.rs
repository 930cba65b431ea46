//! Montgomery curves: CKM_EC_MONTGOMERY_KEY_PAIR_GEN and X25519 (RFC 7748) with
//! CKM_ECDH1_DERIVE.
//!
//! Keys are `CKK_EC_MONTGOMERY` objects. `CKA_EC_PARAMS` names the curve as PKCS#11 3.0
//! allows: the DER of the OID id-X25519 (1.3.101.110), of the older OID some clients send
//! (1.3.6.1.4.1.3029.1.5.1), or the PrintableString "curve25519". The public key is the
//! 32-byte u-coordinate of RFC 7748 (in `CKA_EC_POINT` as a DER OCTET STRING, as for the other
//! curves; raw on import and as the peer's public data of a derive), the private key the
//! 32-byte scalar (`CKA_VALUE`). X448 is not offered by aws-lc-rs: `CKR_CURVE_NOT_SUPPORTED`.
//!
//! The KDFs and lengths are those of the other curves' ECDH ([`super::ecdh`]); AWS-LC refuses a
//! peer key of small order (an all-zero shared secret, RFC 7748 6.1), which is
//! `CKR_MECHANISM_PARAM_INVALID` like any bad peer point.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use der::Decode;
use der::asn1::OctetStringRef;
use zeroize::Zeroizing;

use super::{EcPrivateKey, EcPublicKey, MechanismParams};
use crate::{Error, Result};

/// Bytes of an X25519 public key, private key and shared secret.
pub const KEY_LEN: usize = 32;

/// `CKA_EC_PARAMS` of X25519: the DER of id-X25519.
pub const X25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
/// 1.3.6.1.4.1.3029.1.5.1, the curve25519 OID of GnuPG and OpenSC.
const X25519_GNUPG_PARAMS: &[u8] = &[0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];
/// PrintableString "curve25519".
const X25519_NAME_PARAMS: &[u8] = b"\x13\x0acurve25519";
/// What OpenSC 0.23's pkcs11-tool sends for "curve25519": the PrintableString with a length
/// byte one too large (11 for 10 characters). Not DER, but unambiguous; accepted so that the
/// most common command-line client can make X25519 keys.
const X25519_OPENSC_PARAMS: &[u8] = b"\x13\x0bcurve25519";
/// X448 by OID (1.3.101.111) and by name: named only to be refused as unsupported.
const X448_PARAMS: [&[u8]; 2] = [&[0x06, 0x03, 0x2b, 0x65, 0x6f], b"\x13\x08curve448"];

/// Whether `params` names X25519.
pub fn is_x25519(params: &[u8]) -> bool {
    [X25519_PARAMS, X25519_GNUPG_PARAMS, X25519_NAME_PARAMS, X25519_OPENSC_PARAMS].contains(&params)
}

/// Whether `params` names a Montgomery curve (offered or not).
pub fn is_montgomery(params: &[u8]) -> bool {
    is_x25519(params) || X448_PARAMS.contains(&params)
}

/// The curve of a Montgomery key: X25519, or `Error::CurveNotSupported` for X448 and
/// `Error::AttributeValueInvalid` for anything that names no Montgomery curve.
fn require_x25519(params: &[u8]) -> Result<()> {
    super::curve::require_25519(params, is_x25519, &X448_PARAMS)
}

/// Generates an X25519 key pair for `params`; both halves carry `params` as given.
pub fn generate_key_pair(params: &[u8]) -> Result<(EcPublicKey, EcPrivateKey)> {
    require_x25519(params)?;
    let failed = |_| Error::Internal("X25519 key generation failed");
    let private = PrivateKey::generate(&X25519).map_err(failed)?;
    let public = private.compute_public_key().map_err(failed)?;
    let value: Curve25519SeedBin<'static> = private.as_be_bytes().map_err(failed)?;
    Ok((
        EcPublicKey { params: params.to_vec(), point: public.as_ref().to_vec() },
        EcPrivateKey { params: params.to_vec(), value: Zeroizing::new(value.as_ref().to_vec()) },
    ))
}

fn private_key(key: &EcPrivateKey) -> Result<PrivateKey> {
    if key.value.len() != KEY_LEN {
        return Err(Error::KeyTypeInconsistent);
    }
    PrivateKey::from_private_key(&X25519, &key.value).map_err(|_| Error::KeyTypeInconsistent)
}

/// The public key of a private scalar.
pub fn public_key(key: &EcPrivateKey) -> Result<Vec<u8>> {
    let public = private_key(key)?.compute_public_key().map_err(|_| Error::KeyTypeInconsistent)?;
    Ok(public.as_ref().to_vec())
}

/// Checks an imported X25519 public key: 32 bytes (every u-coordinate is a valid input).
pub fn check_public_key(key: &EcPublicKey) -> Result<()> {
    require_x25519(&key.params).map_err(|_| Error::KeySizeRange)?;
    if key.point.len() != KEY_LEN {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(())
}

/// Checks an imported X25519 private key: 32 bytes.
pub fn check_private_key(key: &EcPrivateKey) -> Result<()> {
    require_x25519(&key.params).map_err(|_| Error::KeySizeRange)?;
    private_key(key).map(|_| ())
}

/// The peer's u-coordinate: 32 raw bytes, or in a DER OCTET STRING.
fn peer_key(public_data: &[u8]) -> Result<&[u8]> {
    if public_data.len() == KEY_LEN {
        return Ok(public_data);
    }
    match <&OctetStringRef>::from_der(public_data) {
        Ok(octets) if octets.as_bytes().len() == KEY_LEN => Ok(octets.as_bytes()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// CKM_ECDH1_DERIVE with an X25519 private key: see [`super::ecdh::derive`] for the KDFs and
/// lengths; Z is the 32-byte X25519 output.
pub fn derive(params: &MechanismParams, key: &EcPrivateKey, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    require_x25519(&key.params).map_err(|e| match e {
        Error::CurveNotSupported => Error::CurveNotSupported,
        _ => Error::KeyTypeInconsistent,
    })?;
    super::ecdh::derive_from_agreement(params, KEY_LEN, len, |public_data| {
        let peer = peer_key(public_data)?;
        let private = private_key(key)?;
        let peer = UnparsedPublicKey::new(&X25519, peer);
        agreement::agree(&private, peer, Error::MechanismParamInvalid, |z| Ok(Zeroizing::new(z.to_vec())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::EcdhParams;
    use cryptoki_sys::{CKD_NULL, CKD_SHA256_KDF};

    use crate::mechanism::test_vectors::unhex as hex;

    fn ecdh(kdf: cryptoki_sys::CK_EC_KDF_TYPE, shared: &[u8], public_data: &[u8]) -> MechanismParams {
        MechanismParams::Ecdh(EcdhParams {
            kdf,
            shared_data: shared.to_vec(),
            public_data: public_data.to_vec(),
        })
    }

    fn private(value: &str) -> EcPrivateKey {
        EcPrivateKey { params: X25519_PARAMS.to_vec(), value: Zeroizing::new(hex(value)) }
    }

    /// CKD_SHA256_KDF_SP800, SP 800-56C's one-step KDF Hash(counter ‖ Z ‖ FixedInfo), which is
    /// OpenPGP's ECDH KDF (RFC 6637 section 7): an X25519 key, the sender's ephemeral key and
    /// the OpenPGP parameter string of the `cryptoki` crate's own test suite
    /// (`derive_key_sp800`), whose expected key was computed outside any PKCS#11 token.
    #[test]
    fn known_answer_sp800_56c_one_step_kdf() {
        let key = private("f00670c5f139e7e6c2511ea04ff507afbbe237ce3c71a89ca59a1c5cf8856562");
        let ephemeral = hex("533b3f09e53b3deed661a13f7a7d9694ab71ce156c728e00dee87a1ee3a14c4a");
        let fixed_info = hex(
            "0a2b0601040197550105011203010807416e6f6e796d6f75732053656e646572202020205633a4c5ae4305bc0fe2abb699a8ee54632790a0",
        );
        let kdf = cryptoki_sys::CKD_SHA256_KDF_SP800;
        let derived = derive(&ecdh(kdf, &fixed_info, &ephemeral), &key, 16).unwrap();
        assert_eq!(*derived, hex("af8ce51d0139a6d60831a9babab20186"));
        // The X9.63 KDF puts the counter after Z: another key from the same inputs.
        let x963 = derive(&ecdh(CKD_SHA256_KDF, &fixed_info, &ephemeral), &key, 16).unwrap();
        assert_ne!(*x963, *derived);
    }

    /// RFC 7748 6.1: Alice's and Bob's keys and their shared secret.
    #[test]
    fn known_answer_rfc7748() {
        let alice = private("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = private("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let k = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(public_key(&alice).unwrap(), alice_public);
        assert_eq!(public_key(&bob).unwrap(), bob_public);
        assert_eq!(*derive(&ecdh(CKD_NULL, &[], &bob_public), &alice, 32).unwrap(), k);
        assert_eq!(*derive(&ecdh(CKD_NULL, &[], &alice_public), &bob, 32).unwrap(), k);
        // The peer key in a DER OCTET STRING; a shorter key is Z's last bytes.
        let wrapped = [&[0x04, 0x20][..], &alice_public].concat();
        assert_eq!(*derive(&ecdh(CKD_NULL, &[], &wrapped), &bob, 16).unwrap(), k[16..]);
        let kdf = derive(&ecdh(CKD_SHA256_KDF, b"info", &bob_public), &alice, 32).unwrap();
        let expected = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &[k.as_slice(), &1u32.to_be_bytes(), b"info"].concat(),
        );
        assert_eq!(*kdf, expected.as_ref());
    }

    #[test]
    fn generation_and_refusals() {
        for params in [X25519_PARAMS, X25519_GNUPG_PARAMS, X25519_NAME_PARAMS, X25519_OPENSC_PARAMS] {
            let (a_pub, a) = generate_key_pair(params).unwrap();
            let (b_pub, b) = generate_key_pair(params).unwrap();
            assert_eq!(a_pub.params, params);
            check_public_key(&a_pub).unwrap();
            check_private_key(&a).unwrap();
            let ab = derive(&ecdh(CKD_NULL, &[], &b_pub.point), &a, 32).unwrap();
            assert_eq!(*ab, *derive(&ecdh(CKD_NULL, &[], &a_pub.point), &b, 32).unwrap());
        }
        for x448 in X448_PARAMS {
            assert_eq!(generate_key_pair(x448).err(), Some(Error::CurveNotSupported));
        }
        let (_, a) = generate_key_pair(X25519_PARAMS).unwrap();
        // A small-order peer (the all-zero point), a peer of the wrong length, a long key.
        assert_eq!(derive(&ecdh(CKD_NULL, &[], &[0; 32]), &a, 32).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(derive(&ecdh(CKD_NULL, &[], &[9; 31]), &a, 32).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(derive(&ecdh(CKD_NULL, &[], &[9; 32]), &a, 33).err(), Some(Error::KeySizeRange));
        assert_eq!(derive(&MechanismParams::None, &a, 32).err(), Some(Error::MechanismParamInvalid));
    }
}
