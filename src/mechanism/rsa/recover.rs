//! RSA sign-recover and verify-recover (`CKM_RSA_PKCS`, `CKM_RSA_X_509`).

use super::*;

/// `C_SignRecover`/`C_VerifyRecover` with `CKM_RSA_PKCS` (type-1 padding around the data) or
/// `CKM_RSA_X_509` (raw): single-part operations whose output is the signature, or the data
/// recovered from it. Exposed as a [`CipherOperation`] (`single` only), since both are
/// "bytes in, bytes out".
pub struct RsaRecover {
    mechanism: CK_MECHANISM_TYPE,
    k: usize,
    key: RecoverKey,
}

pub(super) enum RecoverKey {
    Sign(Box<::rsa::PrivateKey>),
    Verify(::rsa::PublicKey),
}

pub(super) fn recover_mechanism(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams) -> Result<()> {
    no_params(params)?;
    match mechanism {
        CKM_RSA_PKCS | CKM_RSA_X_509 => Ok(()),
        _ => Err(Error::MechanismInvalid),
    }
}

pub fn sign_recover_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
) -> Result<Box<dyn CipherOperation>> {
    recover_mechanism(mechanism, params)?;
    let private = Private::new(key, min_modulus_bits())?;
    let k = private.public.k;
    Ok(Box::new(RsaRecover { mechanism, k, key: RecoverKey::Sign(Box::new(private.raw()?)) }))
}

pub fn verify_recover_init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
) -> Result<Box<dyn CipherOperation>> {
    recover_mechanism(mechanism, params)?;
    let public = Public::new(key, LEGACY_MIN_MODULUS_BITS)?;
    Ok(Box::new(RsaRecover { mechanism, k: public.k, key: RecoverKey::Verify(public.raw()?) }))
}

impl CipherOperation for RsaRecover {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        match self.key {
            RecoverKey::Sign(_) if input_len > self.k => Err(Error::DataLenRange),
            RecoverKey::Verify(_) if input_len != self.k => Err(Error::SignatureLenRange),
            _ => Ok(self.k),
        }
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        0
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        match &self.key {
            RecoverKey::Sign(key) => {
                if self.mechanism == CKM_RSA_PKCS {
                    return padding::pkcs1_sign(key, &[], input).map(Zeroizing::new);
                }
                raw_private(key, self.k, &left_pad(input, self.k)).ok_or(Error::DataInvalid)
            }
            RecoverKey::Verify(key) => {
                let em = Zeroizing::new(raw_public(key, self.k, input).ok_or(Error::SignatureInvalid)?);
                match self.mechanism {
                    CKM_RSA_PKCS => {
                        // 00 01 FF..FF (at least eight) 00 data
                        let body = em.strip_prefix(&[0x00, 0x01]).ok_or(Error::SignatureInvalid)?;
                        let ff = body.iter().take_while(|b| **b == 0xff).count();
                        if ff < 8 || body.get(ff) != Some(&0x00) {
                            return Err(Error::SignatureInvalid);
                        }
                        Ok(Zeroizing::new(body[ff + 1..].to_vec()))
                    }
                    _ => Ok(em),
                }
            }
        }
    }
}

#[cfg(test)]
mod recover_tests {
    use super::*;

    #[test]
    fn sign_recover_round_trips_and_verify_recover_refuses_forgeries() {
        let (public, private) = generate_key_pair(2048, None).unwrap();
        for mechanism in [CKM_RSA_PKCS, CKM_RSA_X_509] {
            let mut signer = sign_recover_init(mechanism, &MechanismParams::None, &private).unwrap();
            let signature = signer.single(b"recoverable message").unwrap();
            assert_eq!(signature.len(), 256);
            let mut verifier = verify_recover_init(mechanism, &MechanismParams::None, &public).unwrap();
            let recovered = verifier.single(&signature).unwrap();
            if mechanism == CKM_RSA_PKCS {
                assert_eq!(recovered.as_slice(), b"recoverable message");
            } else {
                assert!(recovered.ends_with(b"recoverable message"));
            }
            let mut forged = signature.to_vec();
            forged[100] ^= 1;
            if mechanism == CKM_RSA_PKCS {
                assert_eq!(verifier.single(&forged).unwrap_err(), Error::SignatureInvalid);
            }
            assert_eq!(verifier.single(&forged[1..]).unwrap_err(), Error::SignatureLenRange);
        }
        let mut signer = sign_recover_init(CKM_RSA_PKCS, &MechanismParams::None, &private).unwrap();
        assert_eq!(signer.single(&[1; 246]).unwrap_err(), Error::DataLenRange);
        assert!(sign_recover_init(CKM_SHA256_RSA_PKCS, &MechanismParams::None, &private).is_err());
    }
}
