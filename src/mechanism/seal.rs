//! Encryption at rest: AES-256-GCM with a fresh random nonce, the caller's context (object id
//! and attribute type, or the PIN role) as associated data. Layout: nonce ‖ ciphertext ‖ tag.

use aws_lc_rs::aead::{Aad, Nonce};
use zeroize::Zeroizing;

use super::aes_gcm::{IV_LEN, TAG_LEN, gcm_key, open_in_place};
use super::rng;
use crate::{Error, Result};

pub const KEY_LEN: usize = 32;

pub fn seal(key: &[u8; KEY_LEN], context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let k = gcm_key(key)?;
    let nonce = rng::bytes::<IV_LEN>()?;
    let mut out = Vec::with_capacity(IV_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut out[IV_LEN..],
        )
        .map_err(|_| Error::Internal("seal failed"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a sealed blob; any mismatch (wrong key, wrong context, tampering) is one opaque error.
pub fn open(key: &[u8; KEY_LEN], context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < IV_LEN + TAG_LEN {
        return Err(Error::EncryptedDataInvalid);
    }
    let k = gcm_key(key)?;
    let nonce: [u8; IV_LEN] = sealed[..IV_LEN].try_into().map_err(|_| Error::EncryptedDataInvalid)?;
    open_in_place(&k, nonce, context, Zeroizing::new(sealed[IV_LEN..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_mismatch_is_refused() {
        let key = [9u8; 32];
        let blob = seal(&key, b"ctx", b"secret").unwrap();
        assert_eq!(open(&key, b"ctx", &blob).unwrap().as_slice(), b"secret");
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(open(&[8u8; 32], b"ctx", &blob).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(open(&key, b"other", &blob).unwrap_err(), Error::EncryptedDataInvalid);
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&key, b"ctx", &tampered).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(open(&key, b"ctx", &blob[..10]).unwrap_err(), Error::EncryptedDataInvalid);
        assert_ne!(seal(&key, b"ctx", b"secret").unwrap(), blob, "nonces must differ");
    }
}
