//! What the known-answer tests of the mechanisms share: vectors written as hex text, and the
//! keys they give.

use zeroize::Zeroizing;

use super::encoding::Curve;
use super::{EcPrivateKey, EcPublicKey};

/// The bytes of a hex vector as the standards print them (spaces and line breaks between
/// groups of digits are ignored).
pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).expect("a hex test vector")
}

/// An EC public key on `curve` from the coordinates of a published vector.
pub fn ec_public(curve: Curve, x: &str, y: &str) -> EcPublicKey {
    EcPublicKey { params: curve.params_der().to_vec(), point: [vec![0x04], unhex(x), unhex(y)].concat() }
}

/// An EC private key on `curve` from the scalar of a published vector.
pub fn ec_private(curve: Curve, d: &str) -> EcPrivateKey {
    EcPrivateKey { params: curve.params_der().to_vec(), value: Zeroizing::new(unhex(d)) }
}
