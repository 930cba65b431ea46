//! What the object layer's unit tests share: a caller and a template to start from.

use cryptoki_sys::*;

use super::Attribute;
use super::template::Actor;

/// A caller who is not the SO.
pub(crate) const USER: Actor = Actor { is_so: false };

/// A token-less AES-256 secret key, labelled "k"; tests change entries by index (2 is the
/// value).
pub(crate) fn aes_template() -> Vec<Attribute> {
    vec![
        Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
        Attribute::new(CKA_VALUE, vec![7; 32]),
        Attribute::new(CKA_LABEL, b"k".to_vec()),
    ]
}
