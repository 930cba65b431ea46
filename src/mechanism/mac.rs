//! MACs as C_Sign/C_Verify: HMAC with SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512
//! (`CKM_SHA*_HMAC`, aws-lc-rs), with SHA3-224/256/384/512 (`CKM_SHA3_*_HMAC`, AWS-LC's own
//! interface through `sys::sha3`, as aws-lc-rs has no SHA-3 HMAC), AES-CMAC (`CKM_AES_CMAC`), and their `_GENERAL` variants, whose parameter
//! (`CK_MAC_GENERAL_PARAMS`, decoded as `MechanismParams::Opaque` of one native-endian
//! `CK_ULONG`) truncates the MAC to 1 byte up to its full length.
//!
//! HMAC takes generic secret keys of any length of at least one byte, and the key type named
//! after its hash (`CKK_SHA256_HMAC` for the SHA-256 mechanisms, ...); AES-CMAC takes AES keys
//! of 16, 24 or 32 bytes. Single- and multi-part. Verification compares in constant time; a
//! MAC of the wrong length is `CKR_SIGNATURE_LEN_RANGE`, a wrong one `CKR_SIGNATURE_INVALID`.

use aws_lc_rs::{aead, cmac, constant_time, hmac};
use cryptoki_sys::*;

use super::{MechanismParams, SecretKey, SignOperation, VerifyOperation};
use crate::sys::sha3::{Sha3, Sha3Hmac};
use crate::{Error, Result};

/// Starts a MAC computation (`C_SignInit`) or verification (`C_VerifyInit`): the same
/// operation serves both (a verification computes the MAC and compares).
pub fn init(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
) -> Result<Box<MacOperation>> {
    Ok(Box::new(MacOperation::new(mechanism, params, key)?))
}

#[derive(Clone, Copy)]
enum Kind {
    Hmac(hmac::Algorithm, CK_KEY_TYPE),
    Sha3Hmac(Sha3, CK_KEY_TYPE),
    Cmac,
}

/// The MAC family of `mechanism`, and whether it is the `_GENERAL` (truncated) form.
fn kind(mechanism: CK_MECHANISM_TYPE) -> Result<(Kind, bool)> {
    use hmac::{HMAC_SHA1_FOR_LEGACY_USE_ONLY, HMAC_SHA224, HMAC_SHA256, HMAC_SHA384, HMAC_SHA512};
    Ok(match mechanism {
        CKM_SHA_1_HMAC => (Kind::Hmac(HMAC_SHA1_FOR_LEGACY_USE_ONLY, CKK_SHA_1_HMAC), false),
        CKM_SHA224_HMAC => (Kind::Hmac(HMAC_SHA224, CKK_SHA224_HMAC), false),
        CKM_SHA256_HMAC => (Kind::Hmac(HMAC_SHA256, CKK_SHA256_HMAC), false),
        CKM_SHA384_HMAC => (Kind::Hmac(HMAC_SHA384, CKK_SHA384_HMAC), false),
        CKM_SHA512_HMAC => (Kind::Hmac(HMAC_SHA512, CKK_SHA512_HMAC), false),
        CKM_SHA_1_HMAC_GENERAL => (Kind::Hmac(HMAC_SHA1_FOR_LEGACY_USE_ONLY, CKK_SHA_1_HMAC), true),
        CKM_SHA224_HMAC_GENERAL => (Kind::Hmac(HMAC_SHA224, CKK_SHA224_HMAC), true),
        CKM_SHA256_HMAC_GENERAL => (Kind::Hmac(HMAC_SHA256, CKK_SHA256_HMAC), true),
        CKM_SHA384_HMAC_GENERAL => (Kind::Hmac(HMAC_SHA384, CKK_SHA384_HMAC), true),
        CKM_SHA512_HMAC_GENERAL => (Kind::Hmac(HMAC_SHA512, CKK_SHA512_HMAC), true),
        CKM_SHA3_224_HMAC => (Kind::Sha3Hmac(Sha3::Sha3_224, CKK_SHA3_224_HMAC), false),
        CKM_SHA3_256_HMAC => (Kind::Sha3Hmac(Sha3::Sha3_256, CKK_SHA3_256_HMAC), false),
        CKM_SHA3_384_HMAC => (Kind::Sha3Hmac(Sha3::Sha3_384, CKK_SHA3_384_HMAC), false),
        CKM_SHA3_512_HMAC => (Kind::Sha3Hmac(Sha3::Sha3_512, CKK_SHA3_512_HMAC), false),
        CKM_SHA3_224_HMAC_GENERAL => (Kind::Sha3Hmac(Sha3::Sha3_224, CKK_SHA3_224_HMAC), true),
        CKM_SHA3_256_HMAC_GENERAL => (Kind::Sha3Hmac(Sha3::Sha3_256, CKK_SHA3_256_HMAC), true),
        CKM_SHA3_384_HMAC_GENERAL => (Kind::Sha3Hmac(Sha3::Sha3_384, CKK_SHA3_384_HMAC), true),
        CKM_SHA3_512_HMAC_GENERAL => (Kind::Sha3Hmac(Sha3::Sha3_512, CKK_SHA3_512_HMAC), true),
        CKM_AES_CMAC => (Kind::Cmac, false),
        CKM_AES_CMAC_GENERAL => (Kind::Cmac, true),
        _ => return Err(Error::MechanismInvalid),
    })
}

/// The MAC length asked for by a `CK_MAC_GENERAL_PARAMS`: 1 up to `full` bytes.
fn general_len(params: &MechanismParams, full: usize) -> Result<usize> {
    let MechanismParams::Opaque(bytes) = params else {
        return Err(Error::MechanismParamInvalid);
    };
    let raw: [u8; size_of::<CK_ULONG>()] =
        bytes.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?;
    let len = usize::try_from(CK_ULONG::from_ne_bytes(raw)).map_err(|_| Error::MechanismParamInvalid)?;
    if len == 0 || len > full {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(len)
}

enum Context {
    Hmac(Box<hmac::Context>),
    Sha3Hmac(Sha3Hmac),
    Cmac(cmac::Context),
}

pub struct MacOperation {
    /// `None` once the MAC has been produced.
    context: Option<Context>,
    mac_len: usize,
}

const CMAC_FAILED: Error = Error::Internal("CMAC failed");
const SHA3_HMAC_FAILED: Error = Error::Internal("HMAC-SHA3 failed");

/// An HMAC key must be a generic secret or of the key type named for the mechanism's hash,
/// and not empty.
fn hmac_key_checked(key: &SecretKey, own_key_type: CK_KEY_TYPE) -> Result<&[u8]> {
    if key.key_type != CKK_GENERIC_SECRET && key.key_type != own_key_type {
        return Err(Error::KeyTypeInconsistent);
    }
    if key.value.is_empty() {
        return Err(Error::KeySizeRange);
    }
    Ok(&key.value)
}

impl MacOperation {
    fn new(mechanism: CK_MECHANISM_TYPE, params: &MechanismParams, key: &SecretKey) -> Result<MacOperation> {
        let (kind, general) = kind(mechanism)?;
        let (context, full) = match kind {
            Kind::Hmac(algorithm, own_key_type) => {
                let k = hmac::Key::new(algorithm, hmac_key_checked(key, own_key_type)?);
                (Context::Hmac(Box::new(hmac::Context::with_key(&k))), algorithm.tag_len())
            }
            Kind::Sha3Hmac(hash, own_key_type) => {
                let mac = Sha3Hmac::new(hash, hmac_key_checked(key, own_key_type)?)
                    .map_err(|_| SHA3_HMAC_FAILED)?;
                (Context::Sha3Hmac(mac), hash.output_len())
            }
            Kind::Cmac => {
                if key.key_type != CKK_AES {
                    return Err(Error::KeyTypeInconsistent);
                }
                let algorithm = match key.value.len() {
                    16 => cmac::AES_128,
                    24 => cmac::AES_192,
                    32 => cmac::AES_256,
                    _ => return Err(Error::KeySizeRange),
                };
                let k = cmac::Key::new(algorithm, &key.value).map_err(|_| Error::KeySizeRange)?;
                (Context::Cmac(cmac::Context::with_key(&k)), algorithm.tag_len())
            }
        };
        let mac_len = if general {
            general_len(params, full)?
        } else if *params == MechanismParams::None {
            full
        } else {
            return Err(Error::MechanismParamInvalid);
        };
        Ok(MacOperation { context: Some(context), mac_len })
    }

    fn absorb(&mut self, data: &[u8]) -> Result<()> {
        match self.context.as_mut().ok_or(Error::OperationNotInitialized)? {
            Context::Hmac(c) => c.update(data),
            Context::Sha3Hmac(c) => c.update(data).map_err(|_| SHA3_HMAC_FAILED)?,
            Context::Cmac(c) => c.update(data).map_err(|_| CMAC_FAILED)?,
        }
        Ok(())
    }

    /// The MAC of everything absorbed, truncated to `mac_len`; ends the computation.
    fn mac(&mut self) -> Result<Vec<u8>> {
        let mut tag = match self.context.take().ok_or(Error::OperationNotInitialized)? {
            Context::Hmac(c) => c.sign().as_ref().to_vec(),
            Context::Sha3Hmac(c) => c.finish().map_err(|_| SHA3_HMAC_FAILED)?,
            Context::Cmac(c) => c.sign().map_err(|_| CMAC_FAILED)?.as_ref().to_vec(),
        };
        tag.truncate(self.mac_len);
        Ok(tag)
    }

    fn check(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.mac_len {
            return Err(Error::SignatureLenRange);
        }
        let expected = self.mac()?;
        constant_time::verify_slices_are_equal(&expected, signature).map_err(|_| Error::SignatureInvalid)
    }
}

impl SignOperation for MacOperation {
    fn signature_len(&self) -> usize {
        self.mac_len
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.absorb(part)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        self.mac()
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.absorb(data)?;
        self.mac()
    }
}

impl VerifyOperation for MacOperation {
    fn signature_len(&self) -> Option<usize> {
        Some(self.mac_len)
    }

    fn update(&mut self, part: &[u8]) -> Result<()> {
        self.absorb(part)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        self.check(signature)
    }

    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        self.absorb(data)?;
        self.check(signature)
    }
}

/// HMAC-SHA256 of `data` under `key`, for the module's own use (e.g. the audit chain).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    HmacSha256Key::new(key).sign(data)
}

/// An HMAC-SHA256 key prepared once (its inner and outer hash states, released by aws-lc
/// on drop), for many MACs: what [`hmac_sha256`] does, without redoing the key schedule.
pub struct HmacSha256Key(hmac::Key);

impl HmacSha256Key {
    pub fn new(key: &[u8]) -> HmacSha256Key {
        HmacSha256Key(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        self.sign_parts(&[data])
    }

    /// The MAC of `parts` one after the other (without joining them first).
    pub fn sign_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.0);
        for part in parts {
            context.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }
}

/// AES-256-GMAC (GCM over no plaintext, the data as its additional data), for the module's
/// own use: the audit segments' chain, where HMAC-SHA256's ~0.36 µs per 300-byte record was
/// most of the linking thread's work and GMAC takes ~0.05 µs. A Wegman-Carter MAC: secure only
/// while no nonce repeats under a key, which its user guarantees (one key per segment, the
/// record's position as the nonce).
pub struct GmacKey(aead::LessSafeKey);

/// Bytes of a GMAC tag.
pub const GMAC_LEN: usize = 16;

impl GmacKey {
    pub fn new(key: &[u8; 32]) -> GmacKey {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("a 32-byte AES-256 key");
        GmacKey(aead::LessSafeKey::new(unbound))
    }

    /// The tag of `data` under `nonce`, which must never be used twice with this key.
    pub fn tag(&self, nonce: [u8; aead::NONCE_LEN], data: &[u8]) -> [u8; GMAC_LEN] {
        let nonce = aead::Nonce::assume_unique_for_key(nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, aead::Aad::from(data), &mut [])
            .expect("GCM seals an empty message");
        let mut out = [0u8; GMAC_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    use crate::mechanism::test_vectors::unhex as hex;

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_sha256_helper() {
        let expected = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(hmac_sha256(b"Jefe", b"what do ya want for nothing?").to_vec(), expected);
    }

    /// NIST CAVP gcmEncryptExtIV256.rsp, the first vector with AAD and no plaintext.
    #[test]
    fn gmac_matches_the_gcm_vector_without_plaintext() {
        let key: [u8; 32] =
            hex("78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223").try_into().unwrap();
        let nonce: [u8; 12] = hex("d79cf22d504cc793c3fb6c8a").try_into().unwrap();
        let gmac = GmacKey::new(&key);
        let tag = gmac.tag(nonce, &hex("b96baa8c1c75a671bfb2d08d06be5f36"));
        assert_eq!(tag.to_vec(), hex("3e5d486aa2e30b22e040b85723a06e76"));
        let mut other = nonce;
        other[11] ^= 1;
        assert_ne!(gmac.tag(other, &hex("b96baa8c1c75a671bfb2d08d06be5f36")), tag, "the nonce counts");
    }

    fn secret(key_type: CK_KEY_TYPE, value: &[u8]) -> SecretKey {
        SecretKey { key_type, value: Zeroizing::new(value.to_vec()) }
    }

    const NONE: MechanismParams = MechanismParams::None;

    /// Signs single-part and in 1-, 7- and 17-byte parts, and verifies both ways.
    fn known_answer(m: CK_MECHANISM_TYPE, p: &MechanismParams, key: &SecretKey, data: &[u8], mac: &[u8]) {
        let mut op: Box<dyn SignOperation> = init(m, p, key).unwrap();
        assert_eq!(op.signature_len(), mac.len());
        assert_eq!(op.sign(data).unwrap(), mac, "{m:#x}");
        for chunk in [1, 7, 17] {
            let mut op: Box<dyn SignOperation> = init(m, p, key).unwrap();
            for part in data.chunks(chunk) {
                op.update(part).unwrap();
            }
            assert_eq!(op.finish().unwrap(), mac, "{m:#x} by {chunk}");
            let mut v: Box<dyn VerifyOperation> = init(m, p, key).unwrap();
            for part in data.chunks(chunk) {
                v.update(part).unwrap();
            }
            v.finish(mac).unwrap();
        }
        init(m, p, key).unwrap().verify(data, mac).unwrap();
    }

    const HMACS: [CK_MECHANISM_TYPE; 4] =
        [CKM_SHA224_HMAC, CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC];

    /// RFC 4231 test cases 1-4, 6 and 7: key, data, then the SHA-224/256/384/512 HMACs.
    #[test]
    fn rfc4231_known_answers() {
        let big_key = [0xaa; 131];
        let cases: [(&[u8], &[u8], [&str; 4]); 6] = [
            (
                &[0x0b; 20],
                b"Hi There",
                [
                    "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
                     faea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
                     daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                [
                    "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
                     8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
                     9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                [
                    "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
                    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
                    "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b\
                     2a5ab39dc13814b94e3ab6e101a34f27",
                    "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39\
                     bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
                ],
            ),
            (
                &[
                    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
                ],
                &[0xcd; 50],
                [
                    "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
                    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
                    "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e\
                     6801dd23c4a7d679ccf8a386c674cffb",
                    "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db\
                     a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
                ],
            ),
            (
                &big_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                [
                    "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                     0c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
                     6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
            (
                &big_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. \
                  The key needs to be hashed before being used by the HMAC algorithm.",
                [
                    "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
                    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
                    "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
                     a678cc31e799176d3860e6110c46523e",
                    "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944\
                     b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
                ],
            ),
        ];
        for (key, data, macs) in cases {
            for (m, mac) in HMACS.iter().zip(macs) {
                known_answer(*m, &NONE, &secret(CKK_GENERIC_SECRET, key), data, &hex(mac));
            }
        }
    }

    /// RFC 2202 section 3, test cases 1 and 2.
    #[test]
    fn rfc2202_hmac_sha1_known_answers() {
        let cases: [(&[u8], &[u8], &str); 2] = [
            (&[0x0b; 20], b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
            (b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        ];
        for (key, data, mac) in cases {
            known_answer(CKM_SHA_1_HMAC, &NONE, &secret(CKK_GENERIC_SECRET, key), data, &hex(mac));
            known_answer(CKM_SHA_1_HMAC, &NONE, &secret(CKK_SHA_1_HMAC, key), data, &hex(mac));
        }
    }

    /// The message of NIST SP 800-38B appendix D and RFC 4493 section 4 (64 bytes).
    const CMAC_MESSAGE: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                                30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";

    /// RFC 4493 section 4 (= SP 800-38B D.1), AES-128, all four message lengths; and SP 800-38B
    /// D.3, AES-256, examples 9 to 12.
    #[test]
    fn cmac_known_answers() {
        let message = hex(CMAC_MESSAGE);
        let aes128 = secret(CKK_AES, &hex("2b7e151628aed2a6abf7158809cf4f3c"));
        let aes256 =
            secret(CKK_AES, &hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"));
        let cases = [
            (&aes128, 0, "bb1d6929e95937287fa37d129b756746"),
            (&aes128, 16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (&aes128, 40, "dfa66747de9ae63030ca32611497c827"),
            (&aes128, 64, "51f0bebf7e3b9d92fc49741779363cfe"),
            (&aes256, 0, "028962f61b7bf89efc6b551f4667d983"),
            (&aes256, 16, "28a7023f452e8f82bd4bf28d8c37c35c"),
            (&aes256, 40, "aaf3d8f1de5640c232f5b169b9c911e6"),
            (&aes256, 64, "e1992190549f6ed5696a2c056c315410"),
        ];
        for (key, len, mac) in cases {
            known_answer(CKM_AES_CMAC, &NONE, key, &message[..len], &hex(mac));
        }
    }

    fn general(len: CK_ULONG) -> MechanismParams {
        MechanismParams::Opaque(len.to_ne_bytes().to_vec())
    }

    /// The _GENERAL forms are the full MAC truncated (RFC 4231 test case 5 truncates
    /// HMAC-SHA-256 to 128 bits).
    #[test]
    fn general_forms_truncate() {
        let key = secret(CKK_GENERIC_SECRET, &[0x0c; 20]);
        let data = b"Test With Truncation";
        known_answer(
            CKM_SHA256_HMAC_GENERAL,
            &general(16),
            &key,
            data,
            &hex("a3b6167473100ee06e0c796c2955552b"),
        );
        known_answer(
            CKM_SHA224_HMAC_GENERAL,
            &general(16),
            &key,
            data,
            &hex("0e2aea68a90c8d37c988bcdb9fca6fa8"),
        );
        known_answer(
            CKM_SHA512_HMAC_GENERAL,
            &general(16),
            &key,
            data,
            &hex("415fad6271580a531d4179bc891d87a6"),
        );
        let aes = secret(CKK_AES, &hex("2b7e151628aed2a6abf7158809cf4f3c"));
        known_answer(CKM_AES_CMAC_GENERAL, &general(4), &aes, &[], &hex("bb1d6929"));
        known_answer(CKM_AES_CMAC_GENERAL, &general(16), &aes, &[], &hex("bb1d6929e95937287fa37d129b756746"));
        let full = init(CKM_SHA_1_HMAC, &NONE, &key).unwrap().sign(data).unwrap();
        known_answer(CKM_SHA_1_HMAC_GENERAL, &general(20), &key, data, &full);
        known_answer(CKM_SHA_1_HMAC_GENERAL, &general(1), &key, data, &full[..1]);
        for (m, bad) in
            [(CKM_SHA256_HMAC_GENERAL, 33), (CKM_SHA_1_HMAC_GENERAL, 0), (CKM_AES_CMAC_GENERAL, 17)]
        {
            let k = if m == CKM_AES_CMAC_GENERAL { &aes } else { &key };
            assert_eq!(init(m, &general(bad), k).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(init(m, &NONE, k).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(
                init(m, &MechanismParams::Opaque(vec![16]), k).err(),
                Some(Error::MechanismParamInvalid)
            );
        }
    }

    /// NIST's HMAC-SHA3 examples (csrc.nist.gov, "Examples with Intermediate Values"):
    /// sample 2 (a key as long as the hash's block, 00 01 ..) for each hash and key type, and
    /// sample 4 (a key as long as the output, the MAC truncated to half) through `_GENERAL`.
    #[test]
    fn hmac_sha3_known_answers() {
        let full = [
            (
                CKM_SHA3_224_HMAC,
                CKK_SHA3_224_HMAC,
                144,
                "d8b733bcf66c644a12323d564e24dcf3fc75f231f3b67968359100c7",
            ),
            (
                CKM_SHA3_256_HMAC,
                CKK_SHA3_256_HMAC,
                136,
                "68b94e2e538a9be4103bebb5aa016d47961d4d1aa906061313b557f8af2c3faa",
            ),
            (
                CKM_SHA3_384_HMAC,
                CKK_SHA3_384_HMAC,
                104,
                "a27d24b592e8c8cbf6d4ce6fc5bf62d8fc98bf2d486640d9eb8099e24047837f5f3bffbe92dcce90b4ed5b1e7e44fa90",
            ),
            (
                CKM_SHA3_512_HMAC,
                CKK_SHA3_512_HMAC,
                72,
                "544e257ea2a3e5ea19a590e6a24b724ce6327757723fe2751b75bf007d80f6b3\
                 60744bf1b7a88ea585f9765b47911976d3191cf83c039f5ffab0d29cc9d9b6da",
            ),
        ];
        for (m, key_type, key_len, mac) in full {
            let value: Vec<u8> = (0..key_len).collect();
            for k in [secret(key_type, &value), secret(CKK_GENERIC_SECRET, &value)] {
                known_answer(m, &NONE, &k, b"Sample message for keylen=blocklen", &hex(mac));
            }
            let other = if key_type == CKK_SHA3_224_HMAC { CKK_SHA3_256_HMAC } else { CKK_SHA3_224_HMAC };
            for wrong in [other, CKK_SHA256_HMAC, CKK_AES] {
                assert_eq!(init(m, &NONE, &secret(wrong, &value)).err(), Some(Error::KeyTypeInconsistent));
            }
            assert_eq!(init(m, &NONE, &secret(key_type, &[])).err(), Some(Error::KeySizeRange));
        }
        let truncated = [
            (CKM_SHA3_224_HMAC_GENERAL, 28, "8569c54cbb00a9b78ff1b391b0e5"),
            (CKM_SHA3_256_HMAC_GENERAL, 32, "c8dc7148d8c1423aa549105dafdf9cad"),
            (CKM_SHA3_384_HMAC_GENERAL, 48, "25f4bf53606e91af79d24a4bb1fd6aecd44414a30c8ebb0a"),
            (
                CKM_SHA3_512_HMAC_GENERAL,
                64,
                "7bb06d859257b25ce73ca700df34c5cbef5c898bac91029e0b27975d4e526a08",
            ),
        ];
        for (m, len, mac) in truncated {
            let key = secret(CKK_GENERIC_SECRET, &(0..len).collect::<Vec<u8>>());
            let data = b"Sample message for keylen<blocklen, with truncated tag";
            known_answer(m, &general(mac.len() as CK_ULONG / 2), &key, data, &hex(mac));
            let mut short = hex(mac);
            short.pop();
            let mut v: Box<dyn VerifyOperation> = init(m, &general(mac.len() as CK_ULONG / 2), &key).unwrap();
            assert_eq!(v.verify(data, &short), Err(Error::SignatureLenRange));
            assert_eq!(
                init(m, &general(len as CK_ULONG + 1), &key).err(),
                Some(Error::MechanismParamInvalid)
            );
            assert_eq!(init(m, &general(0), &key).err(), Some(Error::MechanismParamInvalid));
        }
    }

    #[test]
    fn verify_refuses_wrong_and_wrong_length_macs() {
        let key = secret(CKK_GENERIC_SECRET, b"Jefe");
        let data = b"what do ya want for nothing?";
        let mac = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        for i in 0..mac.len() {
            let mut bad = mac.clone();
            bad[i] ^= 1;
            let err = init(CKM_SHA256_HMAC, &NONE, &key).unwrap().verify(data, &bad);
            assert_eq!(err, Err(Error::SignatureInvalid));
        }
        for len in [0, 31, 33] {
            let mut sig = mac.clone();
            sig.resize(len, 0);
            let err = init(CKM_SHA256_HMAC, &NONE, &key).unwrap().verify(data, &sig);
            assert_eq!(err, Err(Error::SignatureLenRange), "{len}");
        }
        assert_eq!(
            init(CKM_SHA256_HMAC, &NONE, &key).unwrap().verify(b"other data", &mac),
            Err(Error::SignatureInvalid)
        );
        let mut v: Box<dyn VerifyOperation> = init(CKM_SHA256_HMAC, &NONE, &key).unwrap();
        v.update(data).unwrap();
        assert_eq!(v.finish(&mac[..16]), Err(Error::SignatureLenRange));
        let cmac_key = secret(CKK_AES, &[1; 24]);
        let tag = init(CKM_AES_CMAC, &NONE, &cmac_key).unwrap().sign(data).unwrap();
        let mut bad = tag.clone();
        bad[15] ^= 0x80;
        assert_eq!(
            init(CKM_AES_CMAC, &NONE, &cmac_key).unwrap().verify(data, &bad),
            Err(Error::SignatureInvalid)
        );
        init(CKM_AES_CMAC, &NONE, &cmac_key).unwrap().verify(data, &tag).unwrap();
    }

    #[test]
    fn keys_and_parameters_are_checked() {
        let generic = secret(CKK_GENERIC_SECRET, &[1; 32]);
        let aes = secret(CKK_AES, &[1; 32]);
        // HMAC: generic secrets and the key type of its own hash; not AES, not another hash's.
        assert_eq!(init(CKM_SHA256_HMAC, &NONE, &aes).err(), Some(Error::KeyTypeInconsistent));
        assert!(init(CKM_SHA256_HMAC, &NONE, &secret(CKK_SHA256_HMAC, &[1; 32])).is_ok());
        assert!(init(CKM_SHA384_HMAC, &NONE, &secret(CKK_SHA384_HMAC, &[1; 32])).is_ok());
        assert_eq!(
            init(CKM_SHA256_HMAC, &NONE, &secret(CKK_SHA512_HMAC, &[1; 32])).err(),
            Some(Error::KeyTypeInconsistent)
        );
        assert_eq!(
            init(CKM_SHA256_HMAC, &NONE, &secret(CKK_GENERIC_SECRET, &[])).err(),
            Some(Error::KeySizeRange)
        );
        assert!(init(CKM_SHA256_HMAC, &NONE, &secret(CKK_GENERIC_SECRET, &[1])).is_ok());
        // CMAC: AES keys of 16, 24 or 32 bytes.
        assert_eq!(init(CKM_AES_CMAC, &NONE, &generic).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(init(CKM_AES_CMAC, &NONE, &secret(CKK_AES, &[1; 20])).err(), Some(Error::KeySizeRange));
        // Parameters must be absent.
        for p in [MechanismParams::Iv(vec![0; 16]), MechanismParams::Opaque(vec![])] {
            assert_eq!(init(CKM_SHA256_HMAC, &p, &generic).err(), Some(Error::MechanismParamInvalid));
            assert_eq!(init(CKM_AES_CMAC, &p, &aes).err(), Some(Error::MechanismParamInvalid));
        }
        assert_eq!(init(CKM_SHA256, &NONE, &generic).err(), Some(Error::MechanismInvalid));
        // A finished operation does not produce a second MAC.
        let mut op: Box<dyn SignOperation> = init(CKM_SHA256_HMAC, &NONE, &generic).unwrap();
        op.sign(b"x").unwrap();
        assert_eq!(op.finish().err(), Some(Error::OperationNotInitialized));
    }
}
