//! CKM_ECDH1_DERIVE on the prime curves (P-256, P-384, P-521 on aws-lc-rs; secp256k1, for
//! which aws-lc-rs offers no ECDH, on AWS-LC's own interface in `sys::ecdh_secp256k1`) and,
//! through
//! [`derive_from_agreement`], on X25519 ([`super::montgomery`]).
//!
//! ECDH gives the x-coordinate Z of the shared point; with CKD_NULL the key is Z's last `len`
//! bytes, with CKD_SHA*_KDF / CKD_SHA3_*_KDF it is the ANSI X9.63 KDF of Z and the shared
//! data, with CKD_SHA*_KDF_SP800 / CKD_SHA3_*_KDF_SP800 the one-step KDF of NIST SP 800-56C
//! (the counter before Z).

use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::digest::Digest;
use super::ec::{agreement_algorithm, key_curve, key_scalar};
use super::encoding::ec_point_from_attribute;
use super::{DigestOperation, EcPrivateKey, EcdhParams, MechanismParams};
use crate::sys::ecdh_secp256k1;
use crate::{Error, Result};

/// The longest key a hashing KDF derives, in bytes.
pub const MAX_KDF_OUTPUT: usize = 1024;

/// How a `CK_EC_KDF_TYPE` hashes: the digest and where the 32-bit big-endian counter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kdf {
    hash: CK_MECHANISM_TYPE,
    /// ANSI X9.63 (`CKD_SHA*_KDF`): Hash(Z ‖ counter ‖ SharedInfo). NIST SP 800-56C's
    /// one-step KDF (`CKD_SHA*_KDF_SP800`): Hash(counter ‖ Z ‖ FixedInfo).
    counter_first: bool,
}

/// The KDF a `CK_EC_KDF_TYPE` names, if it hashes (not `CKD_NULL`) and the module offers it.
fn kdf_of(kdf: CK_EC_KDF_TYPE) -> Option<Kdf> {
    let (hash, counter_first) = match kdf {
        CKD_SHA1_KDF => (CKM_SHA_1, false),
        CKD_SHA224_KDF => (CKM_SHA224, false),
        CKD_SHA256_KDF => (CKM_SHA256, false),
        CKD_SHA384_KDF => (CKM_SHA384, false),
        CKD_SHA512_KDF => (CKM_SHA512, false),
        CKD_SHA3_224_KDF => (CKM_SHA3_224, false),
        CKD_SHA3_256_KDF => (CKM_SHA3_256, false),
        CKD_SHA3_384_KDF => (CKM_SHA3_384, false),
        CKD_SHA3_512_KDF => (CKM_SHA3_512, false),
        CKD_SHA1_KDF_SP800 => (CKM_SHA_1, true),
        CKD_SHA224_KDF_SP800 => (CKM_SHA224, true),
        CKD_SHA256_KDF_SP800 => (CKM_SHA256, true),
        CKD_SHA384_KDF_SP800 => (CKM_SHA384, true),
        CKD_SHA512_KDF_SP800 => (CKM_SHA512, true),
        CKD_SHA3_224_KDF_SP800 => (CKM_SHA3_224, true),
        CKD_SHA3_256_KDF_SP800 => (CKM_SHA3_256, true),
        CKD_SHA3_384_KDF_SP800 => (CKM_SHA3_384, true),
        CKD_SHA3_512_KDF_SP800 => (CKM_SHA3_512, true),
        _ => return None,
    };
    Some(Kdf { hash, counter_first })
}

/// The KDF's output: Hash over Z, the counter i = 1, 2, … (32-bit big-endian) and the shared
/// data, in the KDF's order, concatenated and cut to `len` bytes.
fn hash_kdf(kdf: Kdf, z: &[u8], shared_info: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut h = Digest::new(kdf.hash)?;
        if kdf.counter_first {
            h.update(&counter.to_be_bytes());
            h.update(z);
        } else {
            h.update(z);
            h.update(&counter.to_be_bytes());
        }
        h.update(shared_info);
        out.extend_from_slice(&Zeroizing::new(h.finish()));
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

/// CKM_ECDH1_DERIVE: the value of a `len`-byte key agreed between `key` and the public point in
/// `params` (raw, or in a DER OCTET STRING). X25519 keys go to [`super::montgomery`].
///
/// With CKD_NULL (shared data must be empty) the key is the last `len` bytes of Z, and `len`
/// must be 1 to the field size; with a hashing KDF (X9.63 or SP 800-56C, SHA-1, SHA-2 or
/// SHA-3) it is the KDF's output, 1 to [`MAX_KDF_OUTPUT`] bytes. Other lengths are `Error::KeySizeRange`; other KDFs, a bad
/// or foreign point, missing parameters are `Error::MechanismParamInvalid`.
pub fn derive(params: &MechanismParams, key: &EcPrivateKey, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if super::montgomery::is_montgomery(&key.params) {
        return super::montgomery::derive(params, key, len);
    }
    let curve = key_curve(&key.params)?;
    derive_from_agreement(params, curve.field_len(), len, |public_data| {
        let peer = ec_point_from_attribute(public_data).map_err(|_| Error::MechanismParamInvalid)?;
        if peer.len() != curve.point_len() {
            return Err(Error::MechanismParamInvalid);
        }
        let scalar = key_scalar(curve, key)?;
        let Some(algorithm) = agreement_algorithm(curve) else {
            // secp256k1: AWS-LC checks the point is on the curve and the scalar is a key.
            let z = ecdh_secp256k1::agree(&scalar, &peer).ok_or(Error::MechanismParamInvalid)?;
            return Ok(Zeroizing::new(z.to_vec()));
        };
        let private = agreement::PrivateKey::from_private_key(algorithm, &scalar)
            .map_err(|_| Error::KeyTypeInconsistent)?;
        let peer = UnparsedPublicKey::new(algorithm, &peer);
        agreement::agree(&private, peer, Error::MechanismParamInvalid, |z| Ok(Zeroizing::new(z.to_vec())))
    })
}

/// The common part of CKM_ECDH1_DERIVE on every curve: checks the KDF and the length against
/// a shared secret of `z_len` bytes, has `agree` compute Z with the peer's public data, and
/// applies the KDF.
pub(super) fn derive_from_agreement(
    params: &MechanismParams,
    z_len: usize,
    len: usize,
    agree: impl FnOnce(&[u8]) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>> {
    let MechanismParams::Ecdh(EcdhParams { kdf, shared_data, public_data }) = params else {
        return Err(Error::MechanismParamInvalid);
    };
    let hashing = match *kdf {
        CKD_NULL if shared_data.is_empty() => None,
        CKD_NULL => return Err(Error::MechanismParamInvalid),
        other => Some(kdf_of(other).ok_or(Error::MechanismParamInvalid)?),
    };
    let max_len = if hashing.is_some() { MAX_KDF_OUTPUT } else { z_len };
    if len == 0 || len > max_len {
        return Err(Error::KeySizeRange);
    }
    let z = agree(public_data)?;
    match hashing {
        None => Ok(Zeroizing::new(z[z.len() - len..].to_vec())),
        Some(kdf) => hash_kdf(kdf, &z, shared_data, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::ec::{generate_key_pair, public_point, shared_secret_len};
    use crate::mechanism::encoding::{self, Curve};
    use aws_lc_rs::digest;

    use crate::mechanism::test_vectors::{ec_private, ec_public, unhex as hex};

    fn ecdh(kdf: CK_EC_KDF_TYPE, shared_data: &[u8], public_data: &[u8]) -> MechanismParams {
        MechanismParams::Ecdh(EcdhParams {
            kdf,
            shared_data: shared_data.to_vec(),
            public_data: public_data.to_vec(),
        })
    }

    /// NIST CAVS 14.1 ECC CDH Primitive, P-256, COUNT = 0.
    #[test]
    fn known_answer_ecdh_p256_cavs() {
        let d = ec_private(Curve::P256, "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534");
        let q_iut = ec_public(
            Curve::P256,
            "ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230",
            "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141",
        );
        assert_eq!(public_point(Curve::P256, &d.value).unwrap(), q_iut.point);
        let q_cavs = ec_public(
            Curve::P256,
            "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287",
            "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac",
        );
        let z = hex("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");
        assert_eq!(shared_secret_len(&d.params).unwrap(), 32);
        // The peer point raw and as a DER OCTET STRING.
        let raw = derive(&ecdh(CKD_NULL, &[], &q_cavs.point), &d, 32).unwrap();
        assert_eq!(*raw, z);
        let wrapped = encoding::ec_point_to_attribute(&q_cavs.point);
        assert_eq!(*derive(&ecdh(CKD_NULL, &[], &wrapped), &d, 32).unwrap(), z);
        // Shorter keys are the last bytes of Z.
        assert_eq!(*derive(&ecdh(CKD_NULL, &[], &q_cavs.point), &d, 16).unwrap(), z[16..]);
        assert_eq!(derive(&ecdh(CKD_NULL, &[], &q_cavs.point), &d, 33).err(), Some(Error::KeySizeRange));
        assert_eq!(derive(&ecdh(CKD_NULL, &[], &q_cavs.point), &d, 0).err(), Some(Error::KeySizeRange));
        // The X9.63 KDF over Z matches a straightforward computation.
        let kdf = derive(&ecdh(CKD_SHA256_KDF, b"info", &q_cavs.point), &d, 40).unwrap();
        let block =
            |i: u32| digest::digest(&digest::SHA256, &[z.as_slice(), &i.to_be_bytes(), b"info"].concat());
        assert_eq!(*kdf, [block(1).as_ref(), &block(2).as_ref()[..8]].concat());
    }

    /// NIST CAVS ANSI X9.63-2001 KDF vectors (ansx963_2001.rsp, SHA-256).
    #[test]
    fn known_answer_x963_kdf() {
        let sha256 = kdf_of(CKD_SHA256_KDF).unwrap();
        let out =
            hash_kdf(sha256, &hex("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08"), &[], 16).unwrap();
        assert_eq!(*out, hex("443024c3dae66b95e6f5670601558f71"));
        let out = hash_kdf(
            sha256,
            &hex("22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d"),
            &hex("75eef81aa3041e33b80971203d2c0c52"),
            128,
        )
        .unwrap();
        assert_eq!(
            *out,
            hex(
                "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d00971114\
                 85500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21"
            )
        );
    }

    #[test]
    fn ecdh_round_trip_and_bad_parameters() {
        for curve in Curve::ALL.into_iter().filter(|c| c.has_ecdh()) {
            let (a_pub, a) = generate_key_pair(curve.params_der()).unwrap();
            let (b_pub, b) = generate_key_pair(curve.params_der()).unwrap();
            for (kdf, shared) in [
                (CKD_NULL, &b""[..]),
                (CKD_SHA1_KDF, b"x"),
                (CKD_SHA224_KDF, b""),
                (CKD_SHA384_KDF, b"y"),
                (CKD_SHA512_KDF, b""),
            ] {
                let len = if kdf == CKD_NULL { curve.field_len() } else { 100 };
                let ab = derive(&ecdh(kdf, shared, &b_pub.point), &a, len).unwrap();
                let ba = derive(&ecdh(kdf, shared, &a_pub.point), &b, len).unwrap();
                assert_eq!(*ab, *ba);
                assert_eq!(ab.len(), len);
            }
        }
        let (p256_pub, p256) = generate_key_pair(Curve::P256.params_der()).unwrap();
        let (p384_pub, _) = generate_key_pair(Curve::P384.params_der()).unwrap();
        let bad = |params: MechanismParams, len| derive(&params, &p256, len).err();
        assert_eq!(bad(ecdh(CKD_NULL, b"data", &p256_pub.point), 32), Some(Error::MechanismParamInvalid));
        assert_eq!(
            bad(ecdh(CKD_SHA1_KDF_ASN1, b"", &p256_pub.point), 32),
            Some(Error::MechanismParamInvalid)
        );
        assert_eq!(bad(ecdh(CKD_NULL, b"", &p384_pub.point), 32), Some(Error::MechanismParamInvalid));
        let mut off_curve = p256_pub.point.clone();
        off_curve[64] ^= 1;
        assert_eq!(bad(ecdh(CKD_NULL, b"", &off_curve), 32), Some(Error::MechanismParamInvalid));
        assert_eq!(bad(ecdh(CKD_NULL, b"", &p256_pub.point[..33]), 32), Some(Error::MechanismParamInvalid));
        assert_eq!(bad(MechanismParams::None, 32), Some(Error::MechanismParamInvalid));
        assert_eq!(
            bad(ecdh(CKD_SHA256_KDF, b"", &p256_pub.point), MAX_KDF_OUTPUT + 1),
            Some(Error::KeySizeRange)
        );
    }
}
