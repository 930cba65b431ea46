//! ECDH on secp256k1, through AWS-LC's `EC_KEY`/`ECDH_compute_key` interface.
//!
//! aws-lc-rs signs and verifies on secp256k1 but offers no key agreement on it; AWS-LC
//! itself does (the same constant-time scalar multiplication as its other curves). This
//! file only makes the calls: parsing the peer's point (which AWS-LC checks is on the
//! curve), setting the private scalar, and computing the shared x-coordinate.

use std::ffi::c_int;
use std::ptr::null_mut;

use super::aws_lc_object::Owned;
use aws_lc_sys::{
    BIGNUM, BN_bin2bn, BN_clear_free, EC_KEY, EC_KEY_free, EC_KEY_get0_group, EC_KEY_new_by_curve_name,
    EC_KEY_set_private_key, EC_POINT, EC_POINT_free, EC_POINT_new, EC_POINT_oct2point, ECDH_compute_key,
    NID_secp256k1,
};
use zeroize::Zeroizing;

/// The field's length in bytes: the scalar's and the shared secret's.
pub const FIELD_LEN: usize = 32;

/// The x-coordinate of `scalar` (32 bytes, big-endian) times the peer's point
/// (`peer_point`, SEC 1 encoded: uncompressed or compressed). `None` when the point is not on
/// the curve, the scalar is not a valid private key, or the result is the point at infinity.
pub fn agree(scalar: &[u8], peer_point: &[u8]) -> Option<Zeroizing<[u8; FIELD_LEN]>> {
    if scalar.len() != FIELD_LEN {
        return None;
    }
    // SAFETY: each constructor's result is checked for null and owned (freed on every path);
    // `scalar` and `peer_point` are read within their lengths; the group pointer is the
    // key's own, live while the key is; ECDH_compute_key writes at most `FIELD_LEN` bytes
    // into `shared`, which has that many, and is given no KDF.
    unsafe {
        let key = Owned::<EC_KEY>::new(EC_KEY_new_by_curve_name(NID_secp256k1 as c_int), EC_KEY_free)?;
        let group = EC_KEY_get0_group(key.get());
        let d = Owned::<BIGNUM>::new(BN_bin2bn(scalar.as_ptr(), scalar.len(), null_mut()), BN_clear_free)?;
        if EC_KEY_set_private_key(key.get(), d.get()) != 1 {
            return None;
        }
        let peer = Owned::<EC_POINT>::new(EC_POINT_new(group), EC_POINT_free)?;
        if EC_POINT_oct2point(group, peer.get(), peer_point.as_ptr(), peer_point.len(), null_mut()) != 1 {
            return None;
        }
        let mut shared = Zeroizing::new([0u8; FIELD_LEN]);
        let written = ECDH_compute_key(shared.as_mut_ptr().cast(), FIELD_LEN, peer.get(), key.get(), None);
        (written == FIELD_LEN as c_int).then_some(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator G of secp256k1, uncompressed.
    const G: &str = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
                     483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";
    /// 2G, uncompressed (its x-coordinate is that of 2·G).
    const TWO_G_X: &str = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";

    fn scalar(n: u8) -> [u8; 32] {
        let mut s = [0u8; 32];
        s[31] = n;
        s
    }

    #[test]
    fn two_times_the_generator_is_known() {
        let g = hex::decode(G).unwrap();
        assert_eq!(agree(&scalar(2), &g).unwrap().to_vec(), hex::decode(TWO_G_X).unwrap());
        // Compressed form of G (even y: 02).
        let compressed = [&[0x02][..], &g[1..33]].concat();
        assert_eq!(agree(&scalar(2), &compressed).unwrap().to_vec(), hex::decode(TWO_G_X).unwrap());
    }

    #[test]
    fn points_off_the_curve_and_bad_scalars_are_refused() {
        let mut g = hex::decode(G).unwrap();
        assert!(agree(&scalar(0), &g).is_none(), "zero scalar");
        assert!(agree(&[1u8; 31], &g).is_none(), "short scalar");
        g[64] ^= 1;
        assert!(agree(&scalar(2), &g).is_none(), "point off the curve");
        assert!(agree(&scalar(2), &[]).is_none(), "empty point");
        assert!(agree(&scalar(2), &[0u8]).is_none(), "point at infinity");
    }
}
