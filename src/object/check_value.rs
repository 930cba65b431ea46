//! `CKA_CHECK_VALUE` of a new object (PKCS #11 3.0): what a template gave is checked, what it
//! left out is recorded. How the value is computed per type is `mechanism::check_value`'s;
//! reading it is `Object::read`'s, and changing it `template::changed_object`'s.

use cryptoki_sys::CKA_CHECK_VALUE;

use super::instance::Object;
use super::rules::CHECKSUM;
use crate::{Error, Result};

/// Settles a new object's `CKA_CHECK_VALUE` once its value is known: one the template gave
/// must equal the one the value gives (`CKR_ATTRIBUTE_VALUE_INVALID` otherwise, as the
/// standard requires); an empty one (the caller asked for none) stays; without one, the
/// computed one is recorded, so that it can be read while the value is sealed (a public key
/// with nobody logged in). Objects stored before check values existed compute it when read.
pub fn settle_check_value(object: &mut Object) -> Result<()> {
    if object.profile().rule(CKA_CHECK_VALUE).is_none_or(|r| r.flags & CHECKSUM == 0) {
        return Ok(());
    }
    match object.get(CKA_CHECK_VALUE) {
        Some([]) => Ok(()),
        Some(given) => match object.computed_check_value() {
            Ok(computed) if computed.as_slice() == given => Ok(()),
            Ok(_) => Err(Error::AttributeValueInvalid),
            Err(e) => Err(e),
        },
        None => {
            // Not computable (a key of the hierarchy, whose CKA_VALUE is wrapped): none.
            if let Ok(computed) = object.computed_check_value() {
                object.set(CKA_CHECK_VALUE, computed);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::template::{Change, Origin, changed_object, new_object};
    use crate::object::{Attribute, AttributeRead};
    use cryptoki_sys::*;

    use crate::object::test_templates::{USER, aes_template};

    #[test]
    fn check_values_are_computed_offered_and_checked() {
        // AES-256 under the all-zero key: the encrypted zero block begins dc95c0.
        let zero_key = |extra: Vec<Attribute>| {
            let mut t = aes_template();
            t[2] = Attribute::new(CKA_VALUE, vec![0; 32]);
            t.extend(extra);
            new_object(&t, None, Origin::Create, USER)
        };
        let kcv = AttributeRead::Value(zeroize::Zeroizing::new(vec![0xdc, 0x95, 0xc0]));
        let o = zero_key(vec![]).unwrap();
        assert_eq!(o.read(CKA_VALUE), AttributeRead::Sensitive);
        assert_eq!(o.read(CKA_CHECK_VALUE), kcv, "offered though the value is not");
        assert!(o.matches(&[Attribute::new(CKA_CHECK_VALUE, vec![0xdc, 0x95, 0xc0])]));
        assert!(!o.matches(&[Attribute::new(CKA_CHECK_VALUE, vec![0xdc, 0x95, 0xc1])]));
        let given = zero_key(vec![Attribute::new(CKA_CHECK_VALUE, vec![0xdc, 0x95, 0xc0])]).unwrap();
        assert_eq!(given.read(CKA_CHECK_VALUE), kcv);
        for wrong in [vec![0xdc, 0x95, 0xc1], vec![0xdc, 0x95], vec![0xdc, 0x95, 0xc0, 0]] {
            let e = zero_key(vec![Attribute::new(CKA_CHECK_VALUE, wrong)]).unwrap_err();
            assert_eq!(e, Error::AttributeValueInvalid);
        }
        let none = zero_key(vec![Attribute::new(CKA_CHECK_VALUE, vec![])]).unwrap();
        assert_eq!(none.read(CKA_CHECK_VALUE), AttributeRead::Value(zeroize::Zeroizing::new(vec![])));

        // C_SetAttributeValue may empty it or restate it, never change it.
        let set = |o: &Object, v: Vec<u8>| {
            changed_object(o, &[Attribute::new(CKA_CHECK_VALUE, v)], Change::Set, USER)
        };
        assert_eq!(set(&o, vec![1, 2, 3]).unwrap_err(), Error::AttributeValueInvalid);
        assert_eq!(set(&o, vec![0xdc, 0x95, 0xc0]).unwrap().read(CKA_CHECK_VALUE), kcv);
        let emptied = set(&o, vec![]).unwrap();
        assert_eq!(emptied.read(CKA_CHECK_VALUE), AttributeRead::Value(zeroize::Zeroizing::new(vec![])));

        // A value the module makes later (an unwrap) is checked once it is set.
        let implied = Some((CKO_SECRET_KEY, CKK_GENERIC_SECRET));
        let t = vec![Attribute::new(CKA_CHECK_VALUE, vec![0xa9, 0x99, 0x3e])];
        let mut k = new_object(&t, implied, Origin::Unwrap, USER).unwrap();
        k.set(CKA_VALUE, b"abc".to_vec());
        assert_eq!(settle_check_value(&mut k), Ok(()));
        k.set(CKA_VALUE, b"abd".to_vec());
        assert_eq!(settle_check_value(&mut k), Err(Error::AttributeValueInvalid));
        // Without one given, the computed one is recorded.
        let mut k = new_object(&[], implied, Origin::Unwrap, USER).unwrap();
        assert_eq!(k.get(CKA_CHECK_VALUE), None);
        k.set(CKA_VALUE, b"abc".to_vec());
        settle_check_value(&mut k).unwrap();
        assert_eq!(k.get(CKA_CHECK_VALUE), Some(&[0xa9, 0x99, 0x3e][..]));
    }
}
