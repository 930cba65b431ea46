//! CKM_SHA_1, the SHA-2 and the SHA-3 digests (FIPS 202) for C_Digest*: all on aws-lc-rs but
//! SHA3-224, which aws-lc-rs lacks and AWS-LC's own interface gives (`sys::sha3`).

use aws_lc_rs::digest::{self, Context};
use cryptoki_sys::*;

use super::DigestOperation;
use crate::sys::sha3::{Sha3, Sha3Digest};
use crate::{Error, Result};

pub struct Digest {
    context: Engine,
}

enum Engine {
    AwsLcRs(Context),
    Sha3_224(Sha3Digest),
}

/// The aws-lc-rs algorithm of a digest mechanism (`CKM_SHA256`, ...), in one place for every
/// mechanism that hashes with one (ECDSA, the X9.63 KDF); SHA3-224 has none.
pub(super) fn algorithm(mechanism: CK_MECHANISM_TYPE) -> Result<&'static digest::Algorithm> {
    Ok(match mechanism {
        CKM_SHA_1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        CKM_SHA224 => &digest::SHA224,
        CKM_SHA256 => &digest::SHA256,
        CKM_SHA384 => &digest::SHA384,
        CKM_SHA512 => &digest::SHA512,
        CKM_SHA3_256 => &digest::SHA3_256,
        CKM_SHA3_384 => &digest::SHA3_384,
        CKM_SHA3_512 => &digest::SHA3_512,
        _ => return Err(Error::MechanismInvalid),
    })
}

/// AWS-LC failing a SHA-3 call it should take (out of memory): aws-lc-rs's own digests panic
/// there (`DigestOperation` has no error path), and the C ABI's guard turns the panic into
/// `CKR_GENERAL_ERROR`; these do the same.
const SHA3_FAILED: &str = "AWS-LC refused a SHA3-224 call";

impl Digest {
    pub fn new(mechanism: CK_MECHANISM_TYPE) -> Result<Digest> {
        let context = if mechanism == CKM_SHA3_224 {
            Engine::Sha3_224(Sha3Digest::new(Sha3::Sha3_224).map_err(|_| Error::Internal(SHA3_FAILED))?)
        } else {
            Engine::AwsLcRs(Context::new(algorithm(mechanism)?))
        };
        Ok(Digest { context })
    }
}

impl DigestOperation for Digest {
    fn output_len(&self) -> usize {
        match &self.context {
            Engine::AwsLcRs(c) => c.algorithm().output_len(),
            Engine::Sha3_224(c) => c.hash().output_len(),
        }
    }

    fn update(&mut self, input: &[u8]) {
        match &mut self.context {
            Engine::AwsLcRs(c) => c.update(input),
            Engine::Sha3_224(c) => c.update(input).expect(SHA3_FAILED),
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        match &mut self.context {
            Engine::AwsLcRs(c) => {
                let algorithm = c.algorithm();
                let done = std::mem::replace(c, Context::new(algorithm));
                done.finish().as_ref().to_vec()
            }
            Engine::Sha3_224(c) => c.finish().expect(SHA3_FAILED),
        }
    }
}

/// SHA-256 of `data`, for the module's own use (e.g. check values).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// SHA-256 of `data` as an array, without allocating (e.g. the audit chain).
pub fn sha256_array(data: &[u8]) -> [u8; 32] {
    sha256_parts(&[data])
}

/// SHA-256 of `parts` one after the other (without joining them first).
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use hex::encode as hex;

    /// FIPS 180-4 "abc" vectors.
    #[test]
    fn known_answers_for_abc() {
        let cases = [
            (CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (CKM_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
            (CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                CKM_SHA384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                CKM_SHA512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
            // FIPS 202 examples.
            (CKM_SHA3_224, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"),
            (CKM_SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
            (
                CKM_SHA3_384,
                "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
            ),
            (
                CKM_SHA3_512,
                "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
            ),
        ];
        for (mechanism, expected) in cases {
            let mut d = Digest::new(mechanism).unwrap();
            d.update(b"a");
            d.update(b"bc");
            assert_eq!(d.output_len() * 2, expected.len());
            assert_eq!(hex(d.finish()), expected);
        }
        assert_eq!(hex(sha256(b"abc")), cases[2].1);
        assert!(Digest::new(CKM_SHA3_256_HMAC).is_err());
    }
}
