//! RSA encryption and decryption: PKCS#1 v1.5, OAEP and raw X.509 (single-part).

use super::*;

/// The AWS-LC decrypting key of `private`, built once per key; each operation takes a new
/// reference to it.
pub(super) fn prepared_decrypting_key(private: &Private) -> Result<PrivateDecryptingKey> {
    static PREPARED: PreparedKeys<PrivateDecryptingKey> = PreparedKeys::new();
    let fingerprint = prepared::fingerprint(&[&private.public.n, &private.public.e, &private.d])?;
    Ok(PrivateDecryptingKey::clone(&*PREPARED.get_or_build(fingerprint, || private.aws_decrypting())?))
}

/// The padding of an encryption mechanism, checked against its parameters.
pub(super) enum Padding {
    Pkcs1,
    Oaep { algorithm: &'static OaepAlgorithm, hash: CK_MECHANISM_TYPE, hash_len: usize, label: Vec<u8> },
    X509,
}

impl Padding {
    fn new(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams) -> Result<Padding> {
        match mechanism {
            CKM_RSA_PKCS => no_params(params).map(|_| Padding::Pkcs1),
            CKM_RSA_X_509 => no_params(params).map(|_| Padding::X509),
            CKM_RSA_PKCS_OAEP => {
                let MechanismParams::Oaep(OaepParams { hash, mgf, label }) = params else {
                    return Err(Error::MechanismParamInvalid);
                };
                let mechanism = *hash;
                let hash = Hash::by_mechanism(mechanism).ok_or(Error::MechanismParamInvalid)?;
                // AWS-LC has no OAEP with SHA-224; the MGF must use the same hash.
                let algorithm = hash.aws_oaep().ok_or(Error::MechanismParamInvalid)?;
                if *mgf != hash.mgf {
                    return Err(Error::MechanismParamInvalid);
                }
                Ok(Padding::Oaep { algorithm, hash: mechanism, hash_len: hash.len(), label: label.clone() })
            }
            _ => Err(Error::MechanismInvalid),
        }
    }

    /// The longest plaintext for a `k`-byte modulus.
    fn max_input(&self, k: usize) -> usize {
        match self {
            Padding::Pkcs1 => k - 11,
            Padding::Oaep { hash_len, .. } => k.saturating_sub(2 * hash_len + 2),
            Padding::X509 => k,
        }
    }

    fn label(&self) -> Option<&[u8]> {
        match self {
            Padding::Oaep { label, .. } if !label.is_empty() => Some(label),
            _ => None,
        }
    }

    /// OAEP with a key below AWS-LC's sizes (the `rsa` crate's): its hash, if the `k`-byte
    /// modulus leaves room for a message at all (a 1024-bit key and SHA-512 does not:
    /// `Error::KeySizeRange`).
    fn small_key_oaep(&self, k: usize) -> Result<CK_MECHANISM_TYPE> {
        match self {
            Padding::Oaep { hash, hash_len, .. } if k > 2 * hash_len + 2 => Ok(*hash),
            _ => Err(Error::KeySizeRange),
        }
    }
}

pub(super) enum Encryptor {
    Pkcs1(Pkcs1PublicEncryptingKey),
    Oaep(OaepPublicEncryptingKey, &'static OaepAlgorithm),
    /// PKCS#1 v1.5 with a key below AWS-LC's sizes, by the `rsa` crate.
    RawPkcs1(::rsa::PublicKey),
    /// OAEP with a key below AWS-LC's sizes, by the `rsa` crate, with this hash.
    RawOaep(::rsa::PublicKey, CK_MECHANISM_TYPE),
    Raw(::rsa::PublicKey),
}

/// A single-part RSA encryption.
pub struct RsaEncrypt {
    padding: Padding,
    engine: Encryptor,
    k: usize,
}

/// Starts an encryption with `mechanism` under `key` (single-part only).
pub fn encrypt_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
) -> Result<Box<dyn CipherOperation>> {
    let padding = Padding::new(mechanism, params)?;
    let public = Public::new(key, min_modulus_bits())?;
    let engine = match &padding {
        Padding::Oaep { .. } if !public.aws_sized() => {
            Encryptor::RawOaep(public.raw()?, padding.small_key_oaep(public.k)?)
        }
        Padding::Pkcs1 if !public.aws_sized() => Encryptor::RawPkcs1(public.raw()?),
        Padding::Pkcs1 => Encryptor::Pkcs1(
            Pkcs1PublicEncryptingKey::new(public.aws_encrypting()?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
        ),
        Padding::Oaep { algorithm, .. } => Encryptor::Oaep(
            OaepPublicEncryptingKey::new(public.aws_encrypting()?).map_err(|_| Error::KeyTypeInconsistent)?,
            algorithm,
        ),
        Padding::X509 => Encryptor::Raw(public.raw()?),
    };
    Ok(Box::new(RsaEncrypt { padding, engine, k: public.k }))
}

impl CipherOperation for RsaEncrypt {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        if input_len > self.padding.max_input(self.k) {
            return Err(Error::DataLenRange);
        }
        Ok(self.k)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        let written = match &self.engine {
            Encryptor::Pkcs1(key) => key.encrypt(input, &mut out).map_err(|_| Error::DataLenRange)?.len(),
            Encryptor::Oaep(key, algorithm) => key
                .encrypt(algorithm, input, &mut out, self.padding.label())
                .map_err(|_| Error::DataLenRange)?
                .len(),
            Encryptor::RawPkcs1(key) => {
                let c =
                    key.pkcs1v15_encrypt_with_rng(&mut AwsLcRng, input).map_err(|_| Error::DataLenRange)?;
                let len = c.len();
                out.get_mut(..len).ok_or(Error::DataLenRange)?.copy_from_slice(&c);
                len
            }
            Encryptor::RawOaep(key, hash) => {
                let label = self.padding.label().unwrap_or_default();
                let c = padding::oaep_encrypt(key, *hash, label, input)?;
                let len = c.len();
                out.get_mut(..len).ok_or(Error::DataLenRange)?.copy_from_slice(&c);
                len
            }
            Encryptor::Raw(key) => {
                let c = raw_public(key, self.k, &left_pad(input, self.k)).ok_or(Error::DataInvalid)?;
                out.copy_from_slice(&c);
                c.len()
            }
        };
        out.truncate(written);
        Ok(out)
    }
}

pub(super) enum Decryptor {
    Pkcs1(Pkcs1PrivateDecryptingKey),
    Oaep(OaepPrivateDecryptingKey, &'static OaepAlgorithm),
    /// PKCS#1 v1.5 with a key below AWS-LC's sizes, by the `rsa` crate (blinded).
    RawPkcs1(Box<::rsa::PrivateKey>),
    /// OAEP with a key below AWS-LC's sizes, by the `rsa` crate (blinded), with this hash.
    RawOaep(Box<::rsa::PrivateKey>, CK_MECHANISM_TYPE),
    Raw(Box<::rsa::PrivateKey>),
}

/// A ciphertext and its plaintext.
pub(super) type Decrypted = (Vec<u8>, Zeroizing<Vec<u8>>);

/// A single-part RSA decryption.
pub struct RsaDecrypt {
    padding: Padding,
    engine: Decryptor,
    k: usize,
    /// The plaintext of the last input whose exact length was asked for, kept for the call
    /// that delivers it: clients offer a buffer as long as the plaintext, not the modulus.
    decrypted: parking_lot::Mutex<Option<Decrypted>>,
}

/// Starts a decryption with `mechanism` under `key` (single-part only).
pub fn decrypt_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
) -> Result<Box<dyn CipherOperation>> {
    let padding = Padding::new(mechanism, params)?;
    let private = Private::new(key, min_modulus_bits())?;
    let engine = match &padding {
        Padding::Oaep { .. } if !private.public.aws_sized() => {
            Decryptor::RawOaep(Box::new(private.raw()?), padding.small_key_oaep(private.public.k)?)
        }
        Padding::Pkcs1 if !private.public.aws_sized() => Decryptor::RawPkcs1(Box::new(private.raw()?)),
        Padding::Pkcs1 => Decryptor::Pkcs1(
            Pkcs1PrivateDecryptingKey::new(prepared_decrypting_key(&private)?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
        ),
        Padding::Oaep { algorithm, .. } => Decryptor::Oaep(
            OaepPrivateDecryptingKey::new(prepared_decrypting_key(&private)?)
                .map_err(|_| Error::KeyTypeInconsistent)?,
            algorithm,
        ),
        Padding::X509 => Decryptor::Raw(Box::new(private.raw()?)),
    };
    Ok(Box::new(RsaDecrypt {
        padding,
        engine,
        k: private.public.k,
        decrypted: parking_lot::Mutex::new(None),
    }))
}

impl CipherOperation for RsaDecrypt {
    /// The modulus size: an upper bound of the plaintext, exact for CKM_RSA_X_509.
    fn single_len(&self, input_len: usize) -> Result<usize> {
        if input_len != self.k {
            return Err(Error::EncryptedDataLenRange);
        }
        Ok(self.k)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    /// The plaintext's exact length for the padded mechanisms: the input is decrypted now and
    /// its plaintext kept for the call that delivers it (one decryption in all, also across a
    /// length query and the call after it).
    fn single_output_len(&self, input: &[u8]) -> Result<usize> {
        let k = self.single_len(input.len())?;
        if matches!(self.padding, Padding::X509) {
            return Ok(k);
        }
        let mut decrypted = self.decrypted.lock();
        // A length query followed by the call itself: decrypted once.
        if let Some((decrypted_input, plaintext)) = decrypted.as_ref()
            && decrypted_input == input
        {
            return Ok(plaintext.len());
        }
        let plaintext = self.decrypt(input)?;
        let len = plaintext.len();
        *decrypted = Some((input.to_vec(), plaintext));
        Ok(len)
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if let Some((decrypted_input, plaintext)) = self.decrypted.get_mut().take()
            && decrypted_input == input
        {
            return Ok(plaintext);
        }
        self.decrypt(input)
    }
}

impl RsaDecrypt {
    fn decrypt(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        // One opaque error for every failure: no padding oracle beyond the mechanism's own.
        let mut out = Zeroizing::new(vec![0u8; self.k]);
        let written = match &self.engine {
            Decryptor::Pkcs1(key) => key.decrypt(input, &mut out).map(|p| p.len()),
            Decryptor::Oaep(key, algorithm) => {
                key.decrypt(algorithm, input, &mut out, self.padding.label()).map(|p| p.len())
            }
            Decryptor::RawPkcs1(key) => {
                let m = Zeroizing::new(
                    key.pkcs1v15_decrypt_with_rng(&mut AwsLcRng, input)
                        .map_err(|_| Error::EncryptedDataInvalid)?,
                );
                out[..m.len()].copy_from_slice(&m);
                Ok(m.len())
            }
            Decryptor::RawOaep(key, hash) => {
                let label = self.padding.label().unwrap_or_default();
                let m = padding::oaep_decrypt(key, *hash, label, input)?;
                out.get_mut(..m.len()).ok_or(Error::EncryptedDataInvalid)?.copy_from_slice(&m);
                Ok(m.len())
            }
            Decryptor::Raw(key) => {
                let m = raw_private(key, self.k, input).ok_or(Error::EncryptedDataInvalid)?;
                out.copy_from_slice(&m);
                Ok(m.len())
            }
        }
        .map_err(|_| Error::EncryptedDataInvalid)?;
        out.truncate(written);
        Ok(out)
    }
}
