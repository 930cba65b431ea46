//! Attribute values as the C ABI lays them out (`CK_BBOOL` is one byte, `CK_ULONG` is native
//! width and order), so that reading one back is a copy. Values are zeroized when dropped,
//! since some of them are keys.

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_BBOOL, CK_ULONG};
use zeroize::Zeroizing;

/// One entry of a caller's template, owned.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Attribute {
    // Values may be secrets: show the type and the length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attribute({:#x}, {} bytes)", self.kind, self.value.len())
    }
}

impl Attribute {
    pub fn new(kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Attribute {
        Attribute { kind, value: Zeroizing::new(value) }
    }
    pub fn bool(kind: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
        Attribute::new(kind, encode_bool(v))
    }
    pub fn ulong(kind: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attribute {
        Attribute::new(kind, encode_ulong(v))
    }
}

/// What `C_GetAttributeValue` learns about one requested attribute.
#[derive(Debug, PartialEq, Eq)]
pub enum AttributeRead {
    Value(Zeroizing<Vec<u8>>),
    /// Protected by `CKA_SENSITIVE`/`CKA_EXTRACTABLE`, or sealed while nobody is logged in.
    Sensitive,
    /// Not an attribute of this object.
    Invalid,
}

pub fn encode_bool(v: bool) -> Vec<u8> {
    vec![v as CK_BBOOL]
}

pub fn encode_ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A `CK_BBOOL` is any non-zero byte for true; other lengths are not a boolean.
pub fn decode_bool(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [b] => Some(*b != 0),
        _ => None,
    }
}

pub fn decode_ulong(bytes: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(bytes.try_into().ok()?))
}

/// Attribute arrays (`CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`, and
/// 3.2's `CKA_ENCAPSULATE_TEMPLATE`, `CKA_DECAPSULATE_TEMPLATE`) are
/// kept as one value in this layout: per entry, the type and the value's length as
/// little-endian u64s, then the value.
pub fn encode_attribute_array(attributes: &[Attribute]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attributes {
        out.extend_from_slice(&a.kind.to_le_bytes());
        out.extend_from_slice(&(a.value.len() as u64).to_le_bytes());
        out.extend_from_slice(&a.value);
    }
    out
}

/// The entries of an encoded attribute array; `None` if the bytes are not one.
pub fn decode_attribute_array(mut bytes: &[u8]) -> Option<Vec<Attribute>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let kind = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let len = usize::try_from(u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?)).ok()?;
        let value = bytes.get(16..16usize.checked_add(len)?)?;
        out.push(Attribute::new(kind as CK_ATTRIBUTE_TYPE, value.to_vec()));
        bytes = &bytes[16 + len..];
    }
    Some(out)
}

/// Whether `kind` is an attribute whose value is an array of attributes. (Not every
/// `CKF_ARRAY_ATTRIBUTE` type is: `CKA_ALLOWED_MECHANISMS` is an array of mechanisms.)
pub fn is_attribute_array(kind: CK_ATTRIBUTE_TYPE) -> bool {
    use cryptoki_sys::{
        CKA_DECAPSULATE_TEMPLATE, CKA_DERIVE_TEMPLATE, CKA_ENCAPSULATE_TEMPLATE, CKA_UNWRAP_TEMPLATE,
        CKA_WRAP_TEMPLATE,
    };
    matches!(
        kind,
        CKA_WRAP_TEMPLATE
            | CKA_UNWRAP_TEMPLATE
            | CKA_DERIVE_TEMPLATE
            | CKA_ENCAPSULATE_TEMPLATE
            | CKA_DECAPSULATE_TEMPLATE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_arrays_round_trip_and_reject_garbage() {
        let entries =
            vec![Attribute::bool(2, true), Attribute::new(3, b"label".to_vec()), Attribute::new(4, vec![])];
        let encoded = encode_attribute_array(&entries);
        assert_eq!(decode_attribute_array(&encoded).unwrap(), entries);
        assert_eq!(decode_attribute_array(&[]).unwrap(), vec![]);
        assert!(decode_attribute_array(&encoded[..encoded.len() - 1]).is_none());
        assert!(decode_attribute_array(&[0; 7]).is_none());
        let mut huge = encoded.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_attribute_array(&huge).is_none());
        assert!(
            is_attribute_array(cryptoki_sys::CKA_WRAP_TEMPLATE)
                && !is_attribute_array(cryptoki_sys::CKA_LABEL)
        );
        assert!(!is_attribute_array(cryptoki_sys::CKA_ALLOWED_MECHANISMS), "an array of mechanisms");
    }

    #[test]
    fn encodings_round_trip_and_reject_wrong_lengths() {
        assert_eq!(decode_bool(&encode_bool(true)), Some(true));
        assert_eq!(decode_bool(&[2]), Some(true));
        assert_eq!(decode_bool(&[0, 0]), None);
        assert_eq!(decode_ulong(&encode_ulong(0x1234)), Some(0x1234));
        assert_eq!(decode_ulong(&[1, 2, 3]), None);
    }

    #[test]
    fn debug_never_shows_values() {
        let a = Attribute::new(1, b"topsecret".to_vec());
        assert!(!format!("{a:?}").contains("topsecret"));
    }
}
