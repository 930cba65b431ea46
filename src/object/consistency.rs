//! The checks of a created object that its attributes' rows alone cannot express: across
//! attributes (a key's length, an RSA key's parts, a curve in the key type of its own) and,
//! with the mechanism layer, the key material itself. Called by `template::new_object_with`,
//! whose tests cover it.

use cryptoki_sys::*;

use super::attribute::encode_ulong;
use super::instance::Object;
use super::rules::Profile;
use super::template::Origin;
use crate::{Error, Result};

/// Checks across attributes that the rows alone cannot express, and derives the attributes
/// that follow from others (`CKA_VALUE_LEN`, `CKA_MODULUS_BITS`).
pub(super) fn check_consistency(object: &mut Object, origin: Origin) -> Result<()> {
    let nonempty = |o: &Object, a| o.get(a).is_some_and(|v| !v.is_empty());
    match object.profile() {
        Profile::SecretKey if origin == Origin::Create => {
            let len = object.get(CKA_VALUE).map_or(0, <[u8]>::len);
            let ok = match object.key_type() {
                Some(CKK_AES) => matches!(len, 16 | 24 | 32),
                _ => len > 0,
            };
            if !ok {
                return Err(Error::AttributeValueInvalid);
            }
            object.set(CKA_VALUE_LEN, encode_ulong(len as CK_ULONG));
        }
        Profile::RsaPublicKey | Profile::RsaPrivateKey if origin == Origin::Create => {
            let modulus = object.get(CKA_MODULUS).unwrap_or_default();
            let first = modulus.iter().position(|b| *b != 0);
            let Some(first) = first else { return Err(Error::AttributeValueInvalid) };
            if !nonempty(object, CKA_PUBLIC_EXPONENT) {
                return Err(Error::AttributeValueInvalid);
            }
            if object.profile() == Profile::RsaPrivateKey && !nonempty(object, CKA_PRIVATE_EXPONENT) {
                return Err(Error::AttributeValueInvalid);
            }
            if object.profile() == Profile::RsaPublicKey {
                let bits = (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize;
                object.set(CKA_MODULUS_BITS, encode_ulong(bits as CK_ULONG));
            }
            check_key_material(object)?;
        }
        Profile::EcPublicKey | Profile::EcPrivateKey if origin == Origin::Create => {
            let point_or_value =
                if object.profile() == Profile::EcPublicKey { CKA_EC_POINT } else { CKA_VALUE };
            if !nonempty(object, CKA_EC_PARAMS) || !nonempty(object, point_or_value) {
                return Err(Error::AttributeValueInvalid);
            }
            // An Edwards or Montgomery curve only in a key of its own type, and back.
            let params = object.get(CKA_EC_PARAMS).unwrap_or_default();
            if object.key_type() != Some(crate::mechanism::ec::key_type_of_params(params)) {
                return Err(Error::TemplateInconsistent);
            }
            check_key_material(object)?;
        }
        Profile::MlDsaPublicKey
        | Profile::MlDsaPrivateKey
        | Profile::MlKemPublicKey
        | Profile::MlKemPrivateKey
            if origin == Origin::Create =>
        {
            // A private key from its expanded value, its seed, or both (PKCS#11 3.2).
            if matches!(object.profile(), Profile::MlDsaPublicKey | Profile::MlKemPublicKey) {
                if !nonempty(object, CKA_VALUE) {
                    return Err(Error::AttributeValueInvalid);
                }
            } else if !nonempty(object, CKA_VALUE) && !nonempty(object, CKA_SEED) {
                return Err(Error::TemplateIncomplete);
            }
            // An ML-KEM key given by its seed alone is kept with its dk, which every use reads.
            if let crate::mechanism::KeyMaterial::PqPrivate(key) =
                object.key_material().map_err(|_| Error::AttributeValueInvalid)?
                && let Some(value) = crate::mechanism::pq::expanded_value_to_keep(&key)?
            {
                object.set(CKA_VALUE, value.to_vec());
            }
            check_key_material(object)?;
        }
        _ => {}
    }
    Ok(())
}

/// Checks an imported asymmetric key with the mechanism layer (a point on its curve,
/// consistent RSA components) and records its `CKA_PUBLIC_KEY_INFO`. A key of a size the
/// mechanisms do not use is kept: using it fails then, with `CKR_KEY_SIZE_RANGE`.
fn check_key_material(object: &mut Object) -> Result<()> {
    use crate::mechanism::{KeyMaterial, ec, eddsa, encoding, montgomery, rsa};
    // The curve first: a named curve not offered is refused as on generation, whatever the
    // point looks like (the Edwards and Montgomery curves are checked with their keys).
    if let Some(params) = object.get(CKA_EC_PARAMS)
        && !eddsa::is_edwards(params)
        && !montgomery::is_montgomery(params)
    {
        encoding::curve_of(params)?;
    }
    let material = object.key_material().map_err(|_| Error::AttributeValueInvalid)?;
    let checked = match &material {
        KeyMaterial::RsaPublic(k) => rsa::check_public_key(k),
        KeyMaterial::RsaPrivate(k) => rsa::check_private_key(k),
        KeyMaterial::EcPublic(k) => ec::check_public_key(k),
        KeyMaterial::EcPrivate(k) => ec::check_private_key(k),
        KeyMaterial::PqPublic(k) => crate::mechanism::pq::check_public_key(k),
        KeyMaterial::PqPrivate(k) => crate::mechanism::pq::check_private_key(k),
        KeyMaterial::Secret(_) => Ok(()),
    };
    match checked {
        Ok(()) | Err(Error::KeySizeRange) => {}
        Err(Error::CurveNotSupported) => return Err(Error::CurveNotSupported),
        Err(_) => return Err(Error::AttributeValueInvalid),
    }
    if object.get(CKA_PUBLIC_KEY_INFO).is_none_or(<[u8]>::is_empty)
        && let Ok(info) = encoding::public_key_info(&material)
    {
        object.set(CKA_PUBLIC_KEY_INFO, info);
    }
    Ok(())
}
