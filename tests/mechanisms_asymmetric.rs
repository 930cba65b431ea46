//! RSA and EC through the PKCS#11 API of the built module:
//!
//! 1. `C_GenerateKeyPair` with `CKM_RSA_PKCS_KEY_PAIR_GEN` (2048, 3072, 4096 bits): the
//!    attributes of both halves, and every refusal leaving no object behind.
//! 2. `CKM_EC_KEY_PAIR_GEN` on P-256 and P-384, and its refusals.
//! 3. Signatures: PKCS#1 v1.5 (raw over a DigestInfo and hash-and-sign, single- and
//!    multi-part), PSS, `CKM_RSA_X_509`, ECDSA; known answers run through keys imported with
//!    `C_CreateObject` (Wycheproof RSA PKCS#1 v1.5 and PSS, NIST CAVP P-256 SigVer); the
//!    usage and key-type refusals.
//! 4. Encryption: OAEP and PKCS#1 v1.5 round trips, the Wycheproof OAEP decryption vectors
//!    through an imported private key with its CRT values, the length and parameter
//!    refusals, and an imported private key without CRT values.
//! 5. Wrapping private keys with `CKM_AES_KEY_WRAP_KWP` and AES-GCM, and an AES key with
//!    RSA-OAEP.
//! 6. ECDH (`CKM_ECDH1_DERIVE`) with the peer point raw and as a DER OCTET STRING.
//!
//! After each refusal the test checks that nothing changed: the number of objects the session
//! sees is the same, and the session still works (a digest, and the refused kind of operation
//! succeeding afterwards).
//!
//! Choices where PKCS#11 3.0 leaves room, asserted here: signing with a public key (or
//! verifying with a private key) is `CKR_KEY_FUNCTION_NOT_PERMITTED` — such a key has no
//! `CKA_SIGN` (`CKA_VERIFY`), so its attributes do not allow the function, which is what
//! SoftHSMv2 answers too. A mechanism of the other algorithm (`CKM_ECDSA` with an RSA key,
//! `CKM_SHA256_RSA_PKCS` with an EC key) is `CKR_KEY_TYPE_INCONSISTENT`: the mechanism is
//! one the token supports, the key is the wrong type for it.
//!
//! The `cryptoki` crate is the client wherever it can express the call. It has no
//! `CKM_AES_KEY_WRAP_KWP`, does not show the handle a failed `C_UnwrapKey` leaves, and skips
//! sensitive attributes instead of reporting `CKR_ATTRIBUTE_SENSITIVE`: those calls go through
//! `cryptoki_sys::Pkcs11`, loaded beside it (the same library, so the same initialized
//! module, sessions and objects).
#![allow(unsafe_code)]

mod common;
use common::keys::{RsaComponents, aes_key};
use common::objects::{bytes, count, flag, gcm, read};
use common::raw_wrap::{mech_none, object, unwrap_key, wrap_key};
use common::*;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys as sys;
use sys::{CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_ULONG};

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

/// The 2048-bit key of Wycheproof's rsa_signature_2048_sha256_test.json,
/// rsa_pss_2048_sha256_mgf1_32_test.json and rsa_oaep_2048_sha256_mgf1sha256_test.json (its
/// `privateKeyPkcs8`, as in `src/mechanism/rsa.rs`, split into its components).
const WP_N: &str = "
    a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097
    b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d981
    4c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a19
    69816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5";
const WP_E: &str = "010001";
const WP_D: &str = "
    24cdc62317f5d72a6f6ba6cc9632899b01d1ff28867d72f61688995bc855a4e420a8405250089bdb13cf8e09543827b748b9d27fbb2b4d9e20af8c5a6a862796
    d1a4cc18ad16ea678bc1bd4a83bbbe9c5e57453b5ce7388e41a3ba4ce2b77b4438a229e954f720dae0353dc088ac8a76b26dc276f8e1b7851ddd6398ad16ff2e
    78195123b9b036e945c38c9d12434f6df76fe22359eb3e1ac9c011678fc926fad3ae475a4fffff55feb2d147e9c894f4c0e29a599e762462482d968bf4278094
    5fc0d2c31c573c4431b8f4fe8b8c67bec815abd44f7a86edca1c2308737358d2c2ae5e2e0e2dadf730980262377e58b13b7d9992060a0bc870ccfdb4a9319ee1";
const WP_P: &str = "
    dc431050f782e894fb5248247d98cb7d58b8d1e24f3b55d041c56e4de086b0d5bb028bda42eeb5d234d5681e5809d415e6a289ad4cfbf78f978f6c35814f50ee
    bff1c5b80a69f788e81e6bab5ddaa78369d659d143ec6f17e79813a575cfad9c569156b90113e2e9110ad9e7b48a1c9348a6e653321191290ea36cfb3a5b18f1";
const WP_Q: &str = "
    bd1a81e7977f9898122273ae3222b598ea5fb19eb4eabc38308a5e32196603b2e500ffb79f5b886816611debc472fac45544070beb057c941378a6868af3b7a0
    3d3f9880ec47d5e089b94fbde542aba9ae8d72c57088d7abf5b131f39098f7bc160f90536abc9492fd4e06f3ed7299d4b97bb03677207d95669f140cfbc20f25";
const WP_DP: &str = "
    a94b528b28f291599121d91952ffd1c7f21d7c1479d99d478885fb161870ee1218bf08472612dbe5497e8d9c650688e09c786961ae3e2c354dc48ae34514759c
    4c23c4588488961dc06b414e61c0e1e7fbbd2923d31532fe289f96da220711e58c14019808e00414276933bb07e4efb9b4a9b37656917205209f33f09515d7c1";
const WP_DQ: &str = "
    3af0e72a933aef09ff2503df78bafed531c02ff1a2bc437c540cdcbd4ad35435cf511763596543480629b114ca7f780ff7efa32ea0cb6e000d6d9ea1f2ef71fd
    9cf9948422a165557e37e755edfe70d90b920502eb478bc98a63f788ce3a0f856d6ede7251a383bfa8fa480a81a925af7b3cc538c4bab8c9f7597ffb68011d8d";
const WP_QINV: &str = "
    2640fbfbcfefb163ee7a87b6483a66ee41f956d90fa8a7939bfc042ee0924b1b7993d0445f758d51933e85179c0320b0c968b48a91c38b5be923e1097c0c562f
    88d42294b6a2759bafa5428a74f1270874e45f6fcc60f21602de5eccd143cf31241f5921b5ad3983fb54ef17be3b285367e50c999c67247b552fe4bfce945f7b";

/// tcId 3 of rsa_signature_2048_sha256_test.json: msg "Test".
const WP_PKCS1_SHA256_SIG: &str = "
    264491e844c119f14e425c03282139a558dcdaeb82a4628173cd407fd319f9076eaebc0dd87a1c22e4d17839096886d58a9d5b7f7aeb63efec56c45ac7bead42
    03b6886e1faa90e028ec0ae094d46bf3f97efdd19045cfbc25a1abda2432639f9876405c0d68f8edbf047c12a454f7681d5d5a2b54bd3723d193dbad4338baad
    753264006e2d08931c4b8bb79aa1c9cad10eb6605f87c5831f6e2b08e002f9c6f21141f5841d92727dd3e1d99c36bc560da3c9067df99fcaf818941f72588be3
    3032bad22caf6704223bb114d575b6d02d9d222b580005d930e8f40cce9f672eebb634a20177d84351627964b83f2053d736a84ab1a005f63bd5ba943de6205c";

/// tcId 3 of rsa_pss_2048_sha256_mgf1_32_test.json: msg "Test", SHA-256, MGF1-SHA-256, salt 32.
const WP_PSS_SHA256_SIG: &str = "
    401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b309891d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f
    5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea792569
    0f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3
    169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d77277c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5";

/// rsa_oaep_2048_sha256_mgf1sha256_test.json: tcId 3 (msg "Test", no label).
const WP_OAEP_TEST: &str = "
    5eab3f0741e63986ed647d53e1cd71df041986900803d0f99c68355d249a15a47dc5b4f70a191477654299e5a2731f3b4eec76dea18262fc696ac794e5f66cbf
    cddac4472c578e246c26707598055584540b839836b1404c5611ae558a984cee8fd036cea924e0be2474a940f61e0acc14fcae95ebdc59942a9ce9af9a9c8199
    9f7f6815f057ffdc2533cb15d6391d1e2d95f16f9c04209c889a4c359c7d2926d28a66e2b030a416b928d2825627998e5191fb4983a6e65024262d94fc09187a
    2d78162122433251d1bfcc8e507d06eba2d229c10031261da32ab8ccd15f1c5f9fbf07ed158483d736a110af4b44d6a4da60d6cb519b4454213cf9f0dc560f2b";
/// tcId 9: msg "123400" (hex 313233343030), label 000102...13.
const WP_OAEP_LABELLED: &str = "
    a0443ba434156d0b503ec662f5eb5b10e20ad0cb8233720ee187ba986e4811dd312844d3edb26bfaf51b4b9268dc3c76072dd47c199d713c91824da23ff00481
    ee69e9d4cc543120fc33b7244bf0c1ad5fdd1ae9cbada7fe9a70ad0afaaaad8361e8dc4b3198ae661a84e275b60bf2ebb85e512da785d2fc3482294fa1196768
    1d7bceffc08ce0e36f0a8af7fcfb1337186863c2c1c1b94c9ec9785cd3d94d15437c23b775677f3d29a4c9e52f13398fd14661160e5868bca97625aa6c7ecb07
    bbb479644def353f1f01a4c4100f9adb82c4f6a265a5ee962da58c3c042aa549c9d2de3008e7448e0c4b9b4ac8f5e4d8629873909bb995ccc0825fe87d81d596";
const WP_OAEP_LABEL: &str = "000102030405060708090a0b0c0d0e0f10111213";
/// tcId 12: the first byte of lHash modified (invalid).
const WP_OAEP_BAD_LHASH: &str = "
    287d7108a1c6e7a18acb0045b20c57cdf2ac03456b44942764a7a9e9fdf3db481d7e202e4c8d733b56b9c1e93d71e791af8325c9363df789b252a5ed0eddc79e
    76fa41c2cb0a35618398217a390a5e6d99eed905d5554d19c1cf4e30bdf1c2fcc5148b641d71b3f1977b63d232648ddd935ec9499a53ac2fbcac55f462e91065
    adaa018a39c453ba759bd68b454074153421e2ce75cf149f748b5b84758df8a423d1c50c880af863f2a6df3cd465ca36aa2152b5771f3d507f4a4dd9f8006d80
    eca23537092287976f218a90df1e16d889fe31e79f7309f3224f613e9b52479fe73b7aad915319a3b62a5936649f7d015d7b09f7fa9f454f78a7c3dd4bf791e0";

/// NIST CAVP FIPS 186-4 ECDSA SigVer, [P-256,SHA-256], a vector with Result = P (as in
/// `src/mechanism/ec.rs`).
const CAVP_QX: &str = "e424dc61d4bb3cb7ef4344a7f8957a0c5134e16f7a67c074f82e6e12f49abf3c";
const CAVP_QY: &str = "970eed7aa2bc48651545949de1dddaf0127e5965ac85d1243d6f60e7dfaee927";
const CAVP_MSG: &str = "
    e1130af6a38ccb412a9c8d13e15dbfc9e69a16385af3c3f1e5da954fd5e7c45fd75e2b8c36699228e92840c0562fbf3772f07e17f1add56588dd45f7450e1217
    ad239922dd9c32695dc71ff2424ca0dec1321aa47064a044b7fe3c2b97d03ce470a592304c5ef21eed9f93da56bb232d1eeb0035f9bf0dfafdcc4606272b20a3";
const CAVP_R: &str = "bf96b99aa49c705c910be33142017c642ff540c76349b9dab72f981fd9347f4f";
const CAVP_S: &str = "17c55095819089c2e03b9cd415abdf12444e323075d98f31920b9e0f57ec871c";

/// `CKA_EC_PARAMS` of the curves: the DER of their OIDs.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// P-192, a curve the module does not offer.
const P192: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01];

/// The DER prefix of a SHA-256 DigestInfo (RFC 8017 9.2 note 1).
const SHA256_DIGEST_INFO: &str = "3031300d060960864801650304020105000420";
/// FIPS 180-4 example: SHA-256("abc").
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ulen(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

/// After a refusal: no object appeared or vanished, and the session still works.
#[track_caller]
fn assert_unchanged(s: &Session, objects_before: usize) {
    assert_eq!(count(s), objects_before, "a refused call changed the objects");
    assert_eq!(s.digest(&Mechanism::Sha256, b"abc").unwrap(), hex(SHA256_ABC), "the session is unusable");
}

/// An RSA key pair of `bits` with e = 65537 (session objects unless the extras say otherwise).
fn rsa_pair(
    s: &Session,
    bits: u64,
    public_extra: &[Attribute],
    private_extra: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let mut public = vec![Attribute::ModulusBits(bits.into()), Attribute::PublicExponent(vec![1, 0, 1])];
    public.extend_from_slice(public_extra);
    s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, private_extra).unwrap()
}

/// An EC key pair on the curve of `params`; the private key may derive.
fn ec_pair(s: &Session, params: &[u8], private_extra: &[Attribute]) -> (ObjectHandle, ObjectHandle) {
    let mut private = vec![Attribute::Derive(true)];
    private.extend_from_slice(private_extra);
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(params.to_vec())], &private).unwrap()
}

/// The raw uncompressed point inside a `CKA_EC_POINT` (a DER OCTET STRING of < 128 bytes).
#[track_caller]
fn raw_point(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x04, "CKA_EC_POINT is not an OCTET STRING");
    assert_eq!(der[1] as usize, der.len() - 2, "CKA_EC_POINT has a wrong length");
    der[2..].to_vec()
}

/// A raw point as a DER OCTET STRING (points here are shorter than 128 bytes).
fn octet_string(point: &[u8]) -> Vec<u8> {
    [&[0x04, point.len() as u8][..], point].concat()
}

fn sha256(s: &Session, data: &[u8]) -> Vec<u8> {
    s.digest(&Mechanism::Sha256, data).unwrap()
}

fn sha256_digest_info(s: &Session, data: &[u8]) -> Vec<u8> {
    [hex(SHA256_DIGEST_INFO), sha256(s, data)].concat()
}

fn pss_params(hash: MechanismType, mgf: PkcsMgfType, salt: u64) -> PkcsPssParams {
    PkcsPssParams { hash_alg: hash, mgf, s_len: salt.into() }
}

fn pss_sha256() -> Mechanism<'static> {
    Mechanism::Sha256RsaPkcsPss(pss_params(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32))
}

fn oaep_sha256(label: &[u8]) -> Mechanism<'_> {
    let source =
        if label.is_empty() { PkcsOaepSource::empty() } else { PkcsOaepSource::data_specified(label) };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, source))
}

fn ecdh<'a>(peer: &'a [u8]) -> Mechanism<'a> {
    Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer))
}

/// The Wycheproof key's components.
const WYCHEPROOF: RsaComponents =
    RsaComponents { n: WP_N, e: WP_E, d: WP_D, p: WP_P, q: WP_Q, dp: WP_DP, dq: WP_DQ, qinv: WP_QINV };

/// The Wycheproof public key, imported.
fn import_wycheproof_public(s: &Session) -> ObjectHandle {
    s.create_object(&WYCHEPROOF.public_template()).unwrap()
}

/// The Wycheproof private key, imported with or without its CRT values.
fn import_wycheproof_private(s: &Session, with_crt: bool) -> ObjectHandle {
    s.create_object(&WYCHEPROOF.private_template(with_crt)).unwrap()
}

// --- Raw calls -------------------------------------------------------------------------------

/// The module's C ABI, loaded beside the `cryptoki` client.
struct Raw(sys::Pkcs11);

impl Raw {
    /// `C_GetAttributeValue` of one attribute with a NULL value (a length query): the code and
    /// the length written back.
    fn attribute_query(&self, s: &Session, o: ObjectHandle, kind: CK_ATTRIBUTE_TYPE) -> (CK_RV, CK_ULONG) {
        let mut t = [CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: 0 }];
        // SAFETY: one entry with a NULL value, which asks for the length only.
        let rv = unsafe { self.0.C_GetAttributeValue(s.handle(), o.handle(), t.as_mut_ptr(), 1) };
        (rv, t[0].ulValueLen)
    }

    /// `C_GetAttributeValue` of one attribute into a 4 KiB buffer: the code and the length.
    fn attribute_read(&self, s: &Session, o: ObjectHandle, kind: CK_ATTRIBUTE_TYPE) -> (CK_RV, CK_ULONG) {
        let mut buf = vec![0u8; 4096];
        let mut t = [CK_ATTRIBUTE {
            type_: kind,
            pValue: buf.as_mut_ptr() as *mut c_void,
            ulValueLen: ulen(buf.len()),
        }];
        // SAFETY: the entry points to a live buffer of its stated length.
        let rv = unsafe { self.0.C_GetAttributeValue(s.handle(), o.handle(), t.as_mut_ptr(), 1) };
        (rv, t[0].ulValueLen)
    }

    /// `C_WrapKey` without mechanism parameter, asking for the length first.
    fn wrap(
        &self,
        s: &Session,
        kind: CK_MECHANISM_TYPE,
        wrapping: ObjectHandle,
        key: ObjectHandle,
    ) -> Result<Vec<u8>, CK_RV> {
        wrap_key(&self.0, s.handle(), &mut mech_none(kind), wrapping.handle(), key.handle())
    }

    /// `C_UnwrapKey` without mechanism parameter; the code and the handle left.
    fn unwrap(
        &self,
        s: &Session,
        kind: CK_MECHANISM_TYPE,
        unwrapping: ObjectHandle,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut t: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
        unwrap_key(&self.0, s.handle(), &mut mech_none(kind), unwrapping.handle(), wrapped, &mut t)
    }
}

/// A token with its user PIN set, a read/write session logged in as the user, and the raw ABI.
fn setup() -> (Pkcs11, Session, Raw) {
    let (p, _slot, s) = logged_in();
    let raw = Raw(common::raw::load_raw());
    (p, s, raw)
}

// ---------------------------------------------------------------------------------------------
// 1. RSA key pair generation
// ---------------------------------------------------------------------------------------------

/// Checks the attributes of a generated RSA pair of `bits` whose private half was generated
/// sensitive and unextractable.
/// The pair signs `msg` (SHA-256, PKCS #1 v1.5) into `len` bytes and verifies what it signed.
#[track_caller]
fn assert_signs(s: &Session, public: ObjectHandle, private: ObjectHandle, msg: &[u8], len: usize) {
    let signature = s.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap();
    assert_eq!(signature.len(), len);
    s.verify(&Mechanism::Sha256RsaPkcs, public, msg, &signature).unwrap();
}

fn check_rsa_pair(s: &Session, raw: &Raw, public: ObjectHandle, private: ObjectHandle, bits: u64) {
    let k = (bits / 8) as usize;
    assert_eq!(read(s, public, AttributeType::Class), Attribute::Class(ObjectClass::PUBLIC_KEY));
    assert_eq!(read(s, private, AttributeType::Class), Attribute::Class(ObjectClass::PRIVATE_KEY));
    for key in [public, private] {
        assert_eq!(read(s, key, AttributeType::KeyType), Attribute::KeyType(KeyType::RSA));
        assert!(flag(s, key, AttributeType::Local));
        assert_eq!(
            read(s, key, AttributeType::KeyGenMechanism),
            Attribute::KeyGenMechanism(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        );
    }
    let modulus = bytes(s, public, AttributeType::Modulus);
    assert_eq!(modulus.len(), k);
    assert!(modulus[0] & 0x80 != 0, "the modulus has exactly {bits} bits");
    assert_eq!(modulus[k - 1] & 1, 1, "the modulus is odd");
    assert_eq!(read(s, public, AttributeType::ModulusBits), Attribute::ModulusBits(bits.into()));
    assert_eq!(bytes(s, public, AttributeType::PublicExponent), [1, 0, 1]);
    assert_eq!(bytes(s, private, AttributeType::Modulus), modulus);
    assert_eq!(bytes(s, private, AttributeType::PublicExponent), [1, 0, 1]);
    // The SubjectPublicKeyInfo: a SEQUENCE holding the modulus, the same on both halves.
    let info = bytes(s, public, AttributeType::PublicKeyInfo);
    assert_eq!(info[0], 0x30, "CKA_PUBLIC_KEY_INFO is no SEQUENCE");
    assert!(info.windows(k).any(|w| w == modulus), "the SPKI does not hold the modulus");
    assert_eq!(bytes(s, private, AttributeType::PublicKeyInfo), info);
    // The private components are sensitive.
    for kind in [sys::CKA_PRIVATE_EXPONENT, sys::CKA_PRIME_1, sys::CKA_COEFFICIENT] {
        assert_eq!(
            raw.attribute_query(s, private, kind),
            (sys::CKR_ATTRIBUTE_SENSITIVE, sys::CK_UNAVAILABLE_INFORMATION),
            "attribute {kind:#x}"
        );
    }
}

isolated_test!(
    /// A 2048-bit token key pair with CKA_ID on both halves: every attribute the standard
    /// names, and the pair works.
    fn rsa_2048_token_key_pair_has_the_standard_attributes() {
        let (_p, s, raw) = setup();
        let id = b"rsa-2048".to_vec();
        let (public, private) = rsa_pair(
            &s,
            2048,
            &[Attribute::Token(true), Attribute::Id(id.clone()), Attribute::Verify(true)],
            &[
                Attribute::Token(true),
                Attribute::Id(id.clone()),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ],
        );
        assert_eq!(count(&s), 2);
        let found = s.find_objects(&[Attribute::Id(id.clone())]).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.contains(&public) && found.contains(&private));
        for key in [public, private] {
            assert!(flag(&s, key, AttributeType::Token));
            assert_eq!(bytes(&s, key, AttributeType::Id), id);
        }
        check_rsa_pair(&s, &raw, public, private, 2048);
        assert!(flag(&s, private, AttributeType::Sensitive));
        assert!(flag(&s, private, AttributeType::AlwaysSensitive));
        assert!(!flag(&s, private, AttributeType::Extractable));
        assert!(flag(&s, private, AttributeType::NeverExtractable));
        assert!(flag(&s, private, AttributeType::Private));
        assert_signs(&s, public, private, b"works", 256);
    }
);

isolated_test!(
    /// A 3072-bit pair whose private key is generated readable: its history says so, and its
    /// private exponent can be read.
    fn rsa_3072_key_pair_with_a_readable_private_key() {
        let (_p, s, raw) = setup();
        let (public, private) =
            rsa_pair(&s, 3072, &[], &[Attribute::Sensitive(false), Attribute::Extractable(true)]);
        assert_eq!(count(&s), 2);
        assert_eq!(bytes(&s, public, AttributeType::Modulus).len(), 384);
        assert_eq!(read(&s, public, AttributeType::ModulusBits), Attribute::ModulusBits(3072.into()));
        assert!(!flag(&s, private, AttributeType::AlwaysSensitive));
        assert!(!flag(&s, private, AttributeType::NeverExtractable));
        assert!(flag(&s, private, AttributeType::Local));
        let (rv, len) = raw.attribute_read(&s, private, sys::CKA_PRIVATE_EXPONENT);
        assert_eq!(rv, sys::CKR_OK);
        assert!((370..=384).contains(&(len as usize)), "d is {len} bytes");
        assert_signs(&s, public, private, b"3072", 384);
    }
);

isolated_test!(
    fn rsa_4096_key_pair() {
        let (_p, s, raw) = setup();
        let (public, private) = rsa_pair(&s, 4096, &[], &[]);
        check_rsa_pair(&s, &raw, public, private, 4096);
        assert_signs(&s, public, private, b"4096", 512);
    }
);

isolated_test!(
    /// Templates the mechanism cannot serve: the exact code, and neither half created.
    fn rsa_key_pair_templates_are_checked() {
        let (_p, s, _raw) = setup();
        let e = Attribute::PublicExponent(vec![1, 0, 1]);
        let bits = Attribute::ModulusBits(2048.into());
        let token = Attribute::Token(true);
        // (what, public template, private template, the code)
        let cases = [
            ("no modulus size", vec![e.clone()], vec![token.clone()], RvError::TemplateIncomplete),
            (
                "1024 bits",
                vec![Attribute::ModulusBits(1024.into()), e.clone()],
                vec![token.clone()],
                RvError::KeySizeRange,
            ),
            (
                "2049 bits",
                vec![Attribute::ModulusBits(2049.into()), e.clone()],
                vec![token.clone()],
                RvError::KeySizeRange,
            ),
            // src/mechanism/rsa.rs: a public exponent other than 65537 is an invalid value.
            (
                "exponent 3",
                vec![bits.clone(), Attribute::PublicExponent(vec![3])],
                vec![token.clone()],
                RvError::AttributeValueInvalid,
            ),
            (
                "a modulus given",
                vec![bits.clone(), e.clone(), Attribute::Modulus(vec![0xc5; 256])],
                vec![token.clone()],
                RvError::TemplateInconsistent,
            ),
            (
                "an EC public key type",
                vec![bits.clone(), e.clone(), Attribute::KeyType(KeyType::EC)],
                vec![token.clone()],
                RvError::TemplateInconsistent,
            ),
            (
                "a private public class",
                vec![bits.clone(), e.clone(), Attribute::Class(ObjectClass::PRIVATE_KEY)],
                vec![token.clone()],
                RvError::TemplateInconsistent,
            ),
            // The private template is checked as well.
            (
                "an EC private key type",
                vec![bits.clone(), e.clone()],
                vec![Attribute::KeyType(KeyType::EC)],
                RvError::TemplateInconsistent,
            ),
            (
                "a private exponent given",
                vec![bits.clone(), e.clone()],
                vec![Attribute::PrivateExponent(vec![1; 256])],
                RvError::TemplateInconsistent,
            ),
        ];
        for (what, public, private, code) in cases {
            match s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) {
                Ok(pair) => panic!("{what}: expected {code:?}, got {pair:?}"),
                Err(err) => assert_eq!(rv(err), code, "{what}"),
            }
            assert_eq!(count(&s), 0, "{what}: a half was created");
            assert_unchanged(&s, 0);
        }
        // The same session then generates.
        rsa_pair(&s, 2048, &[], &[]);
        assert_eq!(count(&s), 2);
    }
);

isolated_test!(
    /// A token key pair from a read-only session is refused before anything is generated.
    fn rsa_token_key_pair_in_a_read_only_session_is_refused() {
        let (p, slot) = load_with_token();
        let rw = user_session(&p, slot);
        let ro = p.open_ro_session(slot).unwrap();
        let public = [
            Attribute::Token(true),
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ];
        expect_rv(
            ro.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &[Attribute::Token(true)]),
            RvError::SessionReadOnly,
        );
        assert_unchanged(&ro, 0);
        assert_unchanged(&rw, 0);
        // A token public key with a session private key: still refused, nothing created.
        expect_rv(
            ro.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &[]),
            RvError::SessionReadOnly,
        );
        assert_unchanged(&rw, 0);
        // The read/write session may.
        rw.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &[Attribute::Token(true)]).unwrap();
        assert_eq!(count(&rw), 2);
    }
);

isolated_test!(
    /// A private key (CKA_PRIVATE by default) without a login is refused; neither half is left.
    fn rsa_key_pair_without_login_is_refused() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        let public = [Attribute::ModulusBits(2048.into()), Attribute::PublicExponent(vec![1, 0, 1])];
        expect_rv(s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &[]), RvError::UserNotLoggedIn);
        assert_unchanged(&s, 0);
        let token_public = [&public[..], &[Attribute::Token(true), Attribute::Private(false)]].concat();
        expect_rv(
            s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &token_public, &[Attribute::Token(true)]),
            RvError::UserNotLoggedIn,
        );
        assert_unchanged(&s, 0);
        s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
        assert_unchanged(&s, 0);
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &[]).unwrap();
        assert_eq!(count(&s), 2);
    }
);

// ---------------------------------------------------------------------------------------------
// 2. EC key pair generation
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// P-256 and P-384: the public point is a DER OCTET STRING of an uncompressed point, the
    /// private key names the same curve, the SPKI holds the point, and the pair works.
    fn ec_p256_and_p384_key_pairs() {
        let (_p, s, raw) = setup();
        for (params, point_len, sig_len) in [(P256, 65, 64), (P384, 97, 96)] {
            let before = count(&s);
            let (public, private) = ec_pair(&s, params, &[]);
            assert_eq!(count(&s), before + 2);
            for key in [public, private] {
                assert_eq!(read(&s, key, AttributeType::KeyType), Attribute::KeyType(KeyType::EC));
                assert_eq!(bytes(&s, key, AttributeType::EcParams), params);
                assert!(flag(&s, key, AttributeType::Local));
                assert_eq!(
                    read(&s, key, AttributeType::KeyGenMechanism),
                    Attribute::KeyGenMechanism(MechanismType::ECC_KEY_PAIR_GEN)
                );
            }
            let der = bytes(&s, public, AttributeType::EcPoint);
            assert_eq!(der.len(), point_len + 2);
            let point = raw_point(&der);
            assert_eq!(point.len(), point_len);
            assert_eq!(point[0], 0x04, "the point is uncompressed");
            let info = bytes(&s, public, AttributeType::PublicKeyInfo);
            assert_eq!(info[0], 0x30);
            assert!(info.ends_with(&point), "the SPKI does not hold the point");
            assert_eq!(bytes(&s, private, AttributeType::PublicKeyInfo), info);
            assert_eq!(
                raw.attribute_query(&s, private, sys::CKA_VALUE),
                (sys::CKR_ATTRIBUTE_SENSITIVE, sys::CK_UNAVAILABLE_INFORMATION)
            );
            assert!(flag(&s, private, AttributeType::AlwaysSensitive));
            assert!(flag(&s, private, AttributeType::NeverExtractable));
            let signature = s.sign(&Mechanism::EcdsaSha256, private, b"curve").unwrap();
            assert_eq!(signature.len(), sig_len);
            s.verify(&Mechanism::EcdsaSha256, public, b"curve", &signature).unwrap();
        }
    }
);

isolated_test!(
    fn ec_key_pair_templates_are_checked() {
        let (_p, s, _raw) = setup();
        // An unsupported curve: a well-formed curve name is CKR_CURVE_NOT_SUPPORTED, anything
        // else CKR_ATTRIBUTE_VALUE_INVALID (src/mechanism/encoding.rs unsupported_curve_error).
        for params in [P192, &[0x06, 0x03, 0x2a, 0x03, 0x04][..], &[0x05, 0x00][..]] {
            let result = s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(params.to_vec())],
                &[Attribute::Token(true)],
            );
            let code = rv(result.expect_err("an unknown curve was accepted"));
            assert!(
                matches!(code, RvError::AttributeValueInvalid | RvError::CurveNotSupported),
                "unknown curve {params:02x?}: {code:?}"
            );
            assert_unchanged(&s, 0);
        }
        expect_rv(s.generate_key_pair(&Mechanism::EccKeyPairGen, &[], &[]), RvError::TemplateIncomplete);
        assert_unchanged(&s, 0);
        expect_rv(
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(P256.to_vec()), Attribute::EcPoint(vec![4; 67])],
                &[],
            ),
            RvError::TemplateInconsistent,
        );
        assert_unchanged(&s, 0);
        expect_rv(
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(P256.to_vec()), Attribute::KeyType(KeyType::RSA)],
                &[],
            ),
            RvError::TemplateInconsistent,
        );
        assert_unchanged(&s, 0);
        ec_pair(&s, P256, &[]);
        assert_eq!(count(&s), 2);
    }
);

// ---------------------------------------------------------------------------------------------
// 3. Signatures
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// PKCS#1 v1.5: CKM_SHA256_RSA_PKCS single- and multi-part and CKM_RSA_PKCS over the
    /// DigestInfo are one deterministic signature, which both mechanisms verify.
    fn rsa_pkcs1_signatures_agree_across_mechanisms_and_parts() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let data = b"The quick brown fox jumps over the lazy dog".repeat(5);
        let single = s.sign(&Mechanism::Sha256RsaPkcs, private, &data).unwrap();
        assert_eq!(single.len(), 256);
        assert_eq!(s.sign(&Mechanism::Sha256RsaPkcs, private, &data).unwrap(), single, "not deterministic");
        s.sign_init(&Mechanism::Sha256RsaPkcs, private).unwrap();
        for part in data.chunks(7) {
            s.sign_update(part).unwrap();
        }
        assert_eq!(s.sign_final().unwrap(), single);
        let info = sha256_digest_info(&s, &data);
        assert_eq!(s.sign(&Mechanism::RsaPkcs, private, &info).unwrap(), single);

        s.verify(&Mechanism::Sha256RsaPkcs, public, &data, &single).unwrap();
        s.verify(&Mechanism::RsaPkcs, public, &info, &single).unwrap();
        s.verify_init(&Mechanism::Sha256RsaPkcs, public).unwrap();
        for part in data.chunks(11) {
            s.verify_update(part).unwrap();
        }
        s.verify_final(&single).unwrap();
        // CKM_RSA_PKCS over data that is no DigestInfo (a 36-byte MD5+SHA-1 TLS hash).
        let tls = [0x36u8; 36];
        let signature = s.sign(&Mechanism::RsaPkcs, private, &tls).unwrap();
        s.verify(&Mechanism::RsaPkcs, public, &tls, &signature).unwrap();
        // The longest input, k - 11 bytes.
        let longest = [0x5au8; 245];
        let signature = s.sign(&Mechanism::RsaPkcs, private, &longest).unwrap();
        s.verify(&Mechanism::RsaPkcs, public, &longest, &signature).unwrap();
    }
);

isolated_test!(
    /// Wrong signatures and inputs: the exact code, and the session signs and verifies after.
    fn rsa_signature_refusals() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let before = count(&s);
        let good = s.sign(&Mechanism::Sha256RsaPkcs, private, b"message").unwrap();
        let mut flipped = good.clone();
        flipped[100] ^= 0x01;
        expect_rv(
            s.verify(&Mechanism::Sha256RsaPkcs, public, b"message", &flipped),
            RvError::SignatureInvalid,
        );
        assert_unchanged(&s, before);
        expect_rv(s.verify(&Mechanism::Sha256RsaPkcs, public, b"messagf", &good), RvError::SignatureInvalid);
        expect_rv(
            s.verify(&Mechanism::Sha256RsaPkcs, public, b"message", &good[..255]),
            RvError::SignatureLenRange,
        );
        assert_unchanged(&s, before);
        expect_rv(
            s.verify(&Mechanism::Sha256RsaPkcs, public, b"message", &[good.clone(), vec![0]].concat()),
            RvError::SignatureLenRange,
        );
        let info = sha256_digest_info(&s, b"message");
        expect_rv(s.verify(&Mechanism::RsaPkcs, public, &info, &good[..255]), RvError::SignatureLenRange);
        expect_rv(s.verify(&Mechanism::RsaPkcs, public, &info, &flipped), RvError::SignatureInvalid);
        // CKM_RSA_PKCS takes at most k - 11 = 245 bytes.
        expect_rv(s.sign(&Mechanism::RsaPkcs, private, &[0x11; 246]), RvError::DataLenRange);
        assert_unchanged(&s, before);
        // A failed step ended the operation; the session signs and verifies again.
        assert_eq!(s.sign(&Mechanism::Sha256RsaPkcs, private, b"message").unwrap(), good);
        s.verify(&Mechanism::Sha256RsaPkcs, public, b"message", &good).unwrap();
    }
);

isolated_test!(
    /// RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt: randomized, verifies (also as
    /// CKM_RSA_PKCS_PSS over the hash); parameters that contradict the mechanism are refused.
    fn rsa_pss_signatures_and_parameters() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let before = count(&s);
        let a = s.sign(&pss_sha256(), private, b"pss message").unwrap();
        let b = s.sign(&pss_sha256(), private, b"pss message").unwrap();
        assert_eq!(a.len(), 256);
        assert_ne!(a, b, "PSS with a salt is randomized");
        s.verify(&pss_sha256(), public, b"pss message", &a).unwrap();
        s.verify(&pss_sha256(), public, b"pss message", &b).unwrap();
        let hashed = Mechanism::RsaPkcsPss(pss_params(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32));
        let m_hash = sha256(&s, b"pss message");
        s.verify(&hashed, public, &m_hash, &a).unwrap();
        let c = s.sign(&hashed, private, &m_hash).unwrap();
        s.verify(&pss_sha256(), public, b"pss message", &c).unwrap();
        // Multi-part.
        s.sign_init(&pss_sha256(), private).unwrap();
        s.sign_update(b"pss ").unwrap();
        s.sign_update(b"message").unwrap();
        let parts = s.sign_final().unwrap();
        s.verify(&pss_sha256(), public, b"pss message", &parts).unwrap();

        let mut flipped = a.clone();
        flipped[0] ^= 0x80;
        expect_rv(s.verify(&pss_sha256(), public, b"pss message", &flipped), RvError::SignatureInvalid);
        expect_rv(s.verify(&pss_sha256(), public, b"pss message", &a[1..]), RvError::SignatureLenRange);
        assert_unchanged(&s, before);
        // A hash in the parameters other than the mechanism's, or an MGF of another hash.
        for params in [
            pss_params(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
            pss_params(MechanismType::SHA384, PkcsMgfType::MGF1_SHA256, 32),
            pss_params(MechanismType::SHA256, PkcsMgfType::MGF1_SHA1, 32),
        ] {
            let m = Mechanism::Sha256RsaPkcsPss(params);
            expect_rv(s.sign_init(&m, private), RvError::MechanismParamInvalid);
            expect_rv(s.verify_init(&m, public), RvError::MechanismParamInvalid);
            assert_unchanged(&s, before);
        }
        // A refused init started nothing: the next signature works.
        s.verify(
            &pss_sha256(),
            public,
            b"pss message",
            &s.sign(&pss_sha256(), private, b"pss message").unwrap(),
        )
        .unwrap();
    }
);

isolated_test!(
    /// CKM_RSA_X_509: sign (the raw private operation) then verify.
    fn rsa_x509_raw_round_trip() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let data = sha256(&s, b"raw");
        let signature = s.sign(&Mechanism::RsaX509, private, &data).unwrap();
        assert_eq!(signature.len(), 256);
        s.verify(&Mechanism::RsaX509, public, &data, &signature).unwrap();
        // Left-padding with zeros is the same representative.
        s.verify(&Mechanism::RsaX509, public, &[&[0u8; 10][..], &data].concat(), &signature).unwrap();
        let mut flipped = signature.clone();
        flipped[255] ^= 1;
        expect_rv(s.verify(&Mechanism::RsaX509, public, &data, &flipped), RvError::SignatureInvalid);
        // The encryption direction round-trips too (the output is the k-byte representative).
        let ct = s.encrypt(&Mechanism::RsaX509, public, &data).unwrap();
        let plain = s.decrypt(&Mechanism::RsaX509, private, &ct).unwrap();
        assert_eq!(plain.len(), 256);
        assert_eq!(&plain[224..], &data[..]);
        assert!(plain[..224].iter().all(|b| *b == 0));
    }
);

isolated_test!(
    /// ECDSA on P-256: CKM_ECDSA over a 32-byte hash and CKM_ECDSA_SHA256 give 64-byte r ‖ s
    /// that verify under either mechanism; tampering is CKR_SIGNATURE_INVALID.
    fn ecdsa_p256_raw_and_sha256() {
        let (_p, s, _raw) = setup();
        let (public, private) = ec_pair(&s, P256, &[]);
        let before = count(&s);
        let message = b"ecdsa over P-256";
        let hash = sha256(&s, message);
        let raw_sig = s.sign(&Mechanism::Ecdsa, private, &hash).unwrap();
        assert_eq!(raw_sig.len(), 64);
        s.verify(&Mechanism::Ecdsa, public, &hash, &raw_sig).unwrap();
        s.verify(&Mechanism::EcdsaSha256, public, message, &raw_sig).unwrap();
        let hashed_sig = s.sign(&Mechanism::EcdsaSha256, private, message).unwrap();
        assert_eq!(hashed_sig.len(), 64);
        s.verify(&Mechanism::EcdsaSha256, public, message, &hashed_sig).unwrap();
        s.verify(&Mechanism::Ecdsa, public, &hash, &hashed_sig).unwrap();
        // Multi-part.
        s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
        s.sign_update(b"ecdsa over ").unwrap();
        s.sign_update(b"P-256").unwrap();
        let parts = s.sign_final().unwrap();
        s.verify(&Mechanism::Ecdsa, public, &hash, &parts).unwrap();

        let mut tampered = hashed_sig.clone();
        tampered[40] ^= 0x04;
        expect_rv(s.verify(&Mechanism::EcdsaSha256, public, message, &tampered), RvError::SignatureInvalid);
        expect_rv(
            s.verify(&Mechanism::EcdsaSha256, public, b"ecdsa over P-257", &hashed_sig),
            RvError::SignatureInvalid,
        );
        let mut other_hash = hash.clone();
        other_hash[0] ^= 1;
        expect_rv(s.verify(&Mechanism::Ecdsa, public, &other_hash, &raw_sig), RvError::SignatureInvalid);
        expect_rv(
            s.verify(&Mechanism::EcdsaSha256, public, message, &hashed_sig[..63]),
            RvError::SignatureLenRange,
        );
        assert_unchanged(&s, before);
        s.verify(&Mechanism::EcdsaSha256, public, message, &hashed_sig).unwrap();
    }
);

isolated_test!(
    /// Wycheproof RSASSA-PKCS1-v1_5 SHA-256 and RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32)
    /// vectors through a public key made by C_CreateObject; the imported private key makes
    /// the same deterministic PKCS#1 v1.5 signature.
    fn known_answer_rsa_signatures_through_imported_keys() {
        let (_p, s, _raw) = setup();
        let public = import_wycheproof_public(&s);
        assert_eq!(read(&s, public, AttributeType::ModulusBits), Attribute::ModulusBits(2048.into()));
        assert!(!flag(&s, public, AttributeType::Local));
        let pkcs1 = hex(WP_PKCS1_SHA256_SIG);
        s.verify(&Mechanism::Sha256RsaPkcs, public, b"Test", &pkcs1).unwrap();
        s.verify(&Mechanism::RsaPkcs, public, &sha256_digest_info(&s, b"Test"), &pkcs1).unwrap();
        expect_rv(s.verify(&Mechanism::Sha256RsaPkcs, public, b"Tesu", &pkcs1), RvError::SignatureInvalid);
        let pss = hex(WP_PSS_SHA256_SIG);
        s.verify(&pss_sha256(), public, b"Test", &pss).unwrap();
        expect_rv(s.verify(&pss_sha256(), public, b"Tesu", &pss), RvError::SignatureInvalid);
        // Read with another salt length, the PSS signature is not valid.
        let salt20 =
            Mechanism::Sha256RsaPkcsPss(pss_params(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 20));
        expect_rv(s.verify(&salt20, public, b"Test", &pss), RvError::SignatureInvalid);

        let private = import_wycheproof_private(&s, true);
        assert_eq!(s.sign(&Mechanism::Sha256RsaPkcs, private, b"Test").unwrap(), pkcs1);
        let mine = s.sign(&pss_sha256(), private, b"Test").unwrap();
        s.verify(&pss_sha256(), public, b"Test", &mine).unwrap();
    }
);

isolated_test!(
    /// NIST CAVP FIPS 186-4 SigVer [P-256,SHA-256] through a public key made by
    /// C_CreateObject (CKA_EC_POINT as a DER OCTET STRING).
    fn known_answer_p256_ecdsa_sigver_through_an_imported_key() {
        let (_p, s, _raw) = setup();
        let point = [vec![0x04], hex(CAVP_QX), hex(CAVP_QY)].concat();
        let public = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(P256.to_vec()),
                Attribute::EcPoint(octet_string(&point)),
                Attribute::Verify(true),
            ])
            .unwrap();
        let msg = hex(CAVP_MSG);
        let signature = [hex(CAVP_R), hex(CAVP_S)].concat();
        s.verify(&Mechanism::EcdsaSha256, public, &msg, &signature).unwrap();
        s.verify(&Mechanism::Ecdsa, public, &sha256(&s, &msg), &signature).unwrap();
        let mut modified = msg.clone();
        modified[0] ^= 1;
        expect_rv(
            s.verify(&Mechanism::EcdsaSha256, public, &modified, &signature),
            RvError::SignatureInvalid,
        );
        let mut bad = signature.clone();
        bad[63] ^= 1;
        expect_rv(s.verify(&Mechanism::EcdsaSha256, public, &msg, &bad), RvError::SignatureInvalid);
        assert_unchanged(&s, 1);
    }
);

isolated_test!(
    /// CKA_SIGN false, and keys of the wrong class for the function: refused at C_SignInit /
    /// C_VerifyInit with CKR_KEY_FUNCTION_NOT_PERMITTED (see the module notes above).
    fn key_usage_is_enforced() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[Attribute::Verify(false)], &[Attribute::Sign(false)]);
        let (ec_public, ec_private) = ec_pair(&s, P256, &[Attribute::Sign(false)]);
        let before = count(&s);
        expect_rv(s.sign(&Mechanism::Sha256RsaPkcs, private, b"x"), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        expect_rv(s.sign(&Mechanism::EcdsaSha256, ec_private, b"x"), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        expect_rv(
            s.verify(&Mechanism::Sha256RsaPkcs, public, b"x", &[0; 256]),
            RvError::KeyFunctionNotPermitted,
        );
        assert_unchanged(&s, before);

        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let before = count(&s);
        // A public key cannot sign, a private key cannot verify.
        expect_rv(s.sign_init(&Mechanism::Sha256RsaPkcs, public), RvError::KeyFunctionNotPermitted);
        expect_rv(s.sign_init(&Mechanism::EcdsaSha256, ec_public), RvError::KeyFunctionNotPermitted);
        expect_rv(s.verify_init(&Mechanism::Sha256RsaPkcs, private), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        // The refusals started nothing.
        let signature = s.sign(&Mechanism::Sha256RsaPkcs, private, b"x").unwrap();
        s.verify(&Mechanism::Sha256RsaPkcs, public, b"x", &signature).unwrap();
    }
);

isolated_test!(
    /// A mechanism of the other algorithm is CKR_KEY_TYPE_INCONSISTENT: the mechanism is valid,
    /// the key is not the type it needs.
    fn mechanisms_of_the_other_algorithm_are_key_type_inconsistent() {
        let (_p, s, _raw) = setup();
        let (rsa_public, rsa_private) = rsa_pair(&s, 2048, &[], &[]);
        let (ec_public, ec_private) = ec_pair(&s, P256, &[]);
        let before = count(&s);
        let mut failures = Vec::new();
        let mut expect = |what: &str, result: cryptoki::error::Result<()>| {
            let got = result.map_err(rv);
            if got != Err(RvError::KeyTypeInconsistent) {
                failures.push(format!("{what}: got {got:?}"));
            }
        };
        expect("C_SignInit CKM_ECDSA with an RSA key", s.sign_init(&Mechanism::Ecdsa, rsa_private));
        expect(
            "C_SignInit CKM_ECDSA_SHA256 with an RSA key",
            s.sign_init(&Mechanism::EcdsaSha256, rsa_private),
        );
        expect("C_VerifyInit CKM_ECDSA with an RSA key", s.verify_init(&Mechanism::Ecdsa, rsa_public));
        expect(
            "C_SignInit CKM_SHA256_RSA_PKCS with an EC key",
            s.sign_init(&Mechanism::Sha256RsaPkcs, ec_private),
        );
        expect("C_VerifyInit CKM_RSA_PKCS with an EC key", s.verify_init(&Mechanism::RsaPkcs, ec_public));
        expect("C_EncryptInit CKM_RSA_PKCS with an EC key", s.encrypt_init(&Mechanism::RsaPkcs, ec_public));
        assert_unchanged(&s, before);
        let signature = s.sign(&Mechanism::EcdsaSha256, ec_private, b"x").unwrap();
        s.verify(&Mechanism::EcdsaSha256, ec_public, b"x", &signature).unwrap();
        assert!(failures.is_empty(), "expected CKR_KEY_TYPE_INCONSISTENT:\n{}", failures.join("\n"));
    }
);

// ---------------------------------------------------------------------------------------------
// 4. Encryption
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// OAEP (SHA-256, MGF1-SHA-256) with and without a label, and PKCS#1 v1.5, from empty to
    /// the longest plaintext; a label mismatch does not decrypt.
    fn rsa_oaep_and_pkcs1_round_trips() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let before = count(&s);
        let label = b"context label".to_vec();
        let cases: [(Mechanism, usize); 3] =
            [(oaep_sha256(&[]), 190), (oaep_sha256(&label), 190), (Mechanism::RsaPkcs, 245)];
        for (m, max) in &cases {
            for len in [0, 1, 32, *max] {
                let plain = vec![0xa5u8; len];
                let ct = s.encrypt(m, public, &plain).unwrap();
                assert_eq!(ct.len(), 256);
                assert_ne!(s.encrypt(m, public, &plain).unwrap(), ct, "encryption is randomized");
                assert_eq!(s.decrypt(m, private, &ct).unwrap(), plain, "{m:?} {len}");
            }
            expect_rv(s.encrypt(m, public, &vec![0; max + 1]), RvError::DataLenRange);
            assert_unchanged(&s, before);
        }
        let ct = s.encrypt(&oaep_sha256(&label), public, b"labelled").unwrap();
        expect_rv(s.decrypt(&oaep_sha256(&[]), private, &ct), RvError::EncryptedDataInvalid);
        expect_rv(s.decrypt(&oaep_sha256(b"other label"), private, &ct), RvError::EncryptedDataInvalid);
        assert_eq!(s.decrypt(&oaep_sha256(&label), private, &ct).unwrap(), b"labelled");
    }
);

isolated_test!(
    /// Wycheproof RSAES-OAEP SHA-256 through the Wycheproof private key imported with its CRT
    /// values: both vectors decrypt; a broken padding and a wrong length are refused.
    fn known_answer_oaep_decryption_through_an_imported_private_key() {
        let (_p, s, raw) = setup();
        let private = import_wycheproof_private(&s, true);
        assert!(!flag(&s, private, AttributeType::Local));
        assert_eq!(bytes(&s, private, AttributeType::Modulus), hex(WP_N));
        assert_eq!(
            raw.attribute_query(&s, private, sys::CKA_PRIME_1),
            (sys::CKR_ATTRIBUTE_SENSITIVE, sys::CK_UNAVAILABLE_INFORMATION)
        );
        assert_eq!(s.decrypt(&oaep_sha256(&[]), private, &hex(WP_OAEP_TEST)).unwrap(), b"Test");
        let label = hex(WP_OAEP_LABEL);
        assert_eq!(s.decrypt(&oaep_sha256(&label), private, &hex(WP_OAEP_LABELLED)).unwrap(), b"123400");
        let before = count(&s);
        expect_rv(
            s.decrypt(&oaep_sha256(&[]), private, &hex(WP_OAEP_BAD_LHASH)),
            RvError::EncryptedDataInvalid,
        );
        assert_unchanged(&s, before);
        let mut corrupted = hex(WP_OAEP_TEST);
        corrupted[128] ^= 0x10;
        expect_rv(s.decrypt(&oaep_sha256(&[]), private, &corrupted), RvError::EncryptedDataInvalid);
        assert_unchanged(&s, before);
        expect_rv(
            s.decrypt(&oaep_sha256(&[]), private, &hex(WP_OAEP_TEST)[1..]),
            RvError::EncryptedDataLenRange,
        );
        assert_unchanged(&s, before);
        expect_rv(
            s.decrypt(&oaep_sha256(&[]), private, &[hex(WP_OAEP_TEST), vec![0]].concat()),
            RvError::EncryptedDataLenRange,
        );
        assert_unchanged(&s, before);
        // The failures ended their operations: the vector decrypts again.
        assert_eq!(s.decrypt(&oaep_sha256(&[]), private, &hex(WP_OAEP_TEST)).unwrap(), b"Test");
        // And the imported public key encrypts for it.
        let public = import_wycheproof_public(&s);
        let ct = s.encrypt(&oaep_sha256(&label), public, b"round trip").unwrap();
        assert_eq!(s.decrypt(&oaep_sha256(&label), private, &ct).unwrap(), b"round trip");
    }
);

isolated_test!(
    fn rsa_encryption_refusals() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[], &[]);
        let before = count(&s);
        // k - 2 hLen - 2 = 190 bytes at most for OAEP with SHA-256.
        expect_rv(s.encrypt(&oaep_sha256(&[]), public, &[1; 191]), RvError::DataLenRange);
        assert_unchanged(&s, before);
        // An MGF of another hash than the OAEP hash.
        let mismatched = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        ));
        expect_rv(s.encrypt_init(&mismatched, public), RvError::MechanismParamInvalid);
        expect_rv(s.decrypt_init(&mismatched, private), RvError::MechanismParamInvalid);
        assert_unchanged(&s, before);
        // A ciphertext of the wrong length, and a corrupted one, for PKCS#1 v1.5.
        let ct = s.encrypt(&Mechanism::RsaPkcs, public, b"v1.5").unwrap();
        expect_rv(s.decrypt(&Mechanism::RsaPkcs, private, &ct[..255]), RvError::EncryptedDataLenRange);
        // (A value above the modulus: invalid whatever the key, unlike a flipped bit, which
        // leaves a valid v1.5 padding with a small probability.)
        expect_rv(s.decrypt(&Mechanism::RsaPkcs, private, &[0xff; 256]), RvError::EncryptedDataInvalid);
        assert_unchanged(&s, before);
        // Usage: CKA_ENCRYPT / CKA_DECRYPT false.
        let (no_enc, no_dec) = rsa_pair(&s, 2048, &[Attribute::Encrypt(false)], &[Attribute::Decrypt(false)]);
        let before = count(&s);
        expect_rv(s.encrypt(&Mechanism::RsaPkcs, no_enc, b"x"), RvError::KeyFunctionNotPermitted);
        expect_rv(s.decrypt(&Mechanism::RsaPkcs, no_dec, &ct), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        // Nothing was left active.
        assert_eq!(s.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(), b"v1.5");
    }
);

isolated_test!(
    /// A private key imported with n, e and d only gets its CRT values derived: it makes the
    /// Wycheproof signature, its PSS signatures verify under the imported public key, and it
    /// decrypts the Wycheproof OAEP vector.
    fn imported_rsa_private_key_without_crt_values_works() {
        let (_p, s, _raw) = setup();
        let private = import_wycheproof_private(&s, false);
        let public = import_wycheproof_public(&s);
        let signature = s.sign(&Mechanism::Sha256RsaPkcs, private, b"Test").unwrap();
        assert_eq!(signature, hex(WP_PKCS1_SHA256_SIG));
        s.verify(&Mechanism::Sha256RsaPkcs, public, b"Test", &signature).unwrap();
        let pss = s.sign(&pss_sha256(), private, b"no crt").unwrap();
        s.verify(&pss_sha256(), public, b"no crt", &pss).unwrap();
        assert_eq!(s.decrypt(&oaep_sha256(&[]), private, &hex(WP_OAEP_TEST)).unwrap(), b"Test");
        // A d that does not belong to n is refused at import.
        let mut wrong_d = hex(WP_D);
        wrong_d[10] ^= 1;
        let before = count(&s);
        expect_rv(
            s.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(hex(WP_N)),
                Attribute::PublicExponent(hex(WP_E)),
                Attribute::PrivateExponent(wrong_d),
            ]),
            RvError::AttributeValueInvalid,
        );
        assert_unchanged(&s, before);
    }
);

// ---------------------------------------------------------------------------------------------
// 5. Wrapping
// ---------------------------------------------------------------------------------------------

/// The template of `C_UnwrapKey` for a session private key of `key_type` that signs.
fn private_unwrap_template(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sign(true),
        Attribute::Token(false),
    ]
}

/// An unwrapped private key signs what the original public key verifies, and has the history
/// of a key that came from outside.
#[track_caller]
fn assert_unwrapped_signs(s: &Session, unwrapped: ObjectHandle, public: ObjectHandle, m: &Mechanism) {
    let signature = s.sign(m, unwrapped, b"unwrapped").unwrap();
    s.verify(m, public, b"unwrapped", &signature).unwrap();
    assert!(!flag(s, unwrapped, AttributeType::Local));
    assert!(!flag(s, unwrapped, AttributeType::AlwaysSensitive));
    assert!(!flag(s, unwrapped, AttributeType::NeverExtractable));
    assert!(flag(s, unwrapped, AttributeType::Sensitive), "unwrapped private keys default to sensitive");
}

isolated_test!(
    /// Extractable EC and RSA private keys leave under an AES key with KWP and with AES-GCM
    /// and come back as working keys.
    fn private_keys_wrap_with_kwp_and_gcm() {
        let (_p, s, raw) = setup();
        let kek = aes_key(&s, &[0x42; 32], &[]);
        let (ec_public, ec_private) = ec_pair(&s, P256, &[Attribute::Extractable(true)]);
        let (rsa_public, rsa_private) = rsa_pair(&s, 2048, &[], &[Attribute::Extractable(true)]);
        let keys = [
            (KeyType::EC, ec_public, ec_private, Mechanism::EcdsaSha256, P256.to_vec()),
            (KeyType::RSA, rsa_public, rsa_private, Mechanism::Sha256RsaPkcs, Vec::new()),
        ];
        for (key_type, public, private, m, params) in &keys {
            // CKM_AES_KEY_WRAP_KWP (raw: cryptoki 0.12 does not name it).
            let wrapped = raw.wrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, *private).unwrap();
            assert_eq!(wrapped.len() % 8, 0);
            let before = count(&s);
            let (rv, handle) =
                raw.unwrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, &wrapped, &private_unwrap_template(*key_type));
            assert_eq!(rv, sys::CKR_OK, "{key_type:?}");
            let unwrapped = object(handle);
            assert_eq!(count(&s), before + 1);
            assert_unwrapped_signs(&s, unwrapped, *public, m);
            assert_eq!(read(&s, unwrapped, AttributeType::KeyType), Attribute::KeyType(*key_type));
            if *key_type == KeyType::EC {
                assert_eq!(bytes(&s, unwrapped, AttributeType::EcParams), *params);
            } else {
                assert_eq!(
                    bytes(&s, unwrapped, AttributeType::Modulus),
                    bytes(&s, *public, AttributeType::Modulus)
                );
            }
            assert_eq!(
                bytes(&s, unwrapped, AttributeType::PublicKeyInfo),
                bytes(&s, *public, AttributeType::PublicKeyInfo)
            );

            // AES-GCM.
            let mut iv = [7u8; 12];
            let wrapped = s.wrap_key(&gcm(&mut iv, b"wrap"), kek, *private).unwrap();
            let mut iv = [7u8; 12];
            let unwrapped = s
                .unwrap_key(&gcm(&mut iv, b"wrap"), kek, &wrapped, &private_unwrap_template(*key_type))
                .unwrap();
            assert_unwrapped_signs(&s, unwrapped, *public, m);
            // A changed tag opens nothing.
            let mut broken = wrapped.clone();
            *broken.last_mut().unwrap() ^= 1;
            let before = count(&s);
            let mut iv = [7u8; 12];
            expect_rv(
                s.unwrap_key(&gcm(&mut iv, b"wrap"), kek, &broken, &private_unwrap_template(*key_type)),
                RvError::WrappedKeyInvalid,
            );
            assert_unchanged(&s, before);
        }
    }
);

isolated_test!(
    fn unextractable_private_keys_and_mismatched_templates_are_refused() {
        let (_p, s, raw) = setup();
        let kek = aes_key(&s, &[0x24; 32], &[]);
        let (_, ec_locked) = ec_pair(&s, P256, &[]);
        let (_, rsa_locked) = rsa_pair(&s, 2048, &[], &[Attribute::Extractable(false)]);
        let before = count(&s);
        for key in [ec_locked, rsa_locked] {
            assert_eq!(raw.wrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, key), Err(sys::CKR_KEY_UNEXTRACTABLE));
            let mut iv = [1u8; 12];
            expect_rv(s.wrap_key(&gcm(&mut iv, b""), kek, key), RvError::KeyUnextractable);
            assert_unchanged(&s, before);
        }
        // An EC blob unwrapped into an RSA template (and the reverse): inconsistent, no key.
        let (_, ec_open) = ec_pair(&s, P256, &[Attribute::Extractable(true)]);
        let (_, rsa_open) = rsa_pair(&s, 2048, &[], &[Attribute::Extractable(true)]);
        let before = count(&s);
        let ec_blob = raw.wrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, ec_open).unwrap();
        let rsa_blob = raw.wrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, rsa_open).unwrap();
        for (blob, template) in [(&ec_blob, KeyType::RSA), (&rsa_blob, KeyType::EC)] {
            let (rv, handle) =
                raw.unwrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, blob, &private_unwrap_template(template));
            assert_eq!(rv, sys::CKR_TEMPLATE_INCONSISTENT, "blob into {template:?}");
            assert_eq!(handle, sys::CK_INVALID_HANDLE);
            assert_unchanged(&s, before);
        }
        // The right template works.
        let (rv, _) =
            raw.unwrap(&s, sys::CKM_AES_KEY_WRAP_KWP, kek, &ec_blob, &private_unwrap_template(KeyType::EC));
        assert_eq!(rv, sys::CKR_OK);
        assert_eq!(count(&s), before + 1);
    }
);

isolated_test!(
    /// RSA-OAEP wraps an AES key under a generated public key (CKA_WRAP) and the private key
    /// (CKA_UNWRAP) unwraps it to the same value.
    fn rsa_oaep_wraps_an_aes_key() {
        let (_p, s, _raw) = setup();
        let (public, private) = rsa_pair(&s, 2048, &[Attribute::Wrap(true)], &[Attribute::Unwrap(true)]);
        let value = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let key = aes_key(&s, &value, &[Attribute::Extractable(true), Attribute::Sensitive(false)]);
        for label in [&b""[..], b"wrapping label"] {
            let wrapped = s.wrap_key(&oaep_sha256(label), public, key).unwrap();
            assert_eq!(wrapped.len(), 256);
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Extractable(true),
                Attribute::Sensitive(false),
            ];
            let unwrapped = s.unwrap_key(&oaep_sha256(label), private, &wrapped, &template).unwrap();
            assert_eq!(bytes(&s, unwrapped, AttributeType::Value), value);
            assert_eq!(read(&s, unwrapped, AttributeType::ValueLen), Attribute::ValueLen(32.into()));
            assert!(!flag(&s, unwrapped, AttributeType::Local));
            let mut iv = [9u8; 12];
            let ct = s.encrypt(&gcm(&mut iv, b""), unwrapped, b"same key").unwrap();
            let mut iv = [9u8; 12];
            assert_eq!(s.decrypt(&gcm(&mut iv, b""), key, &ct).unwrap(), b"same key");
            // A corrupted blob opens nothing.
            let mut corrupted = wrapped.clone();
            corrupted[5] ^= 1;
            let before = count(&s);
            expect_rv(
                s.unwrap_key(&oaep_sha256(label), private, &corrupted, &template),
                RvError::WrappedKeyInvalid,
            );
            assert_unchanged(&s, before);
        }
        // Without CKA_WRAP / CKA_UNWRAP.
        let (no_wrap, no_unwrap) = rsa_pair(&s, 2048, &[Attribute::Wrap(false)], &[Attribute::Unwrap(false)]);
        let before = count(&s);
        expect_rv(s.wrap_key(&oaep_sha256(&[]), no_wrap, key), RvError::KeyFunctionNotPermitted);
        let wrapped = s.wrap_key(&oaep_sha256(&[]), public, key).unwrap();
        expect_rv(
            s.unwrap_key(
                &oaep_sha256(&[]),
                no_unwrap,
                &wrapped,
                &[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)],
            ),
            RvError::KeyFunctionNotPermitted,
        );
        assert_unchanged(&s, before);
    }
);

// ---------------------------------------------------------------------------------------------
// 6. ECDH
// ---------------------------------------------------------------------------------------------

isolated_test!(
    /// Two P-256 parties agree, with the peer point raw and as a DER OCTET STRING, into AES and
    /// generic secret keys: the same values on both sides; derived keys are not local.
    fn ecdh_p256_both_sides_derive_the_same_key() {
        let (_p, s, _raw) = setup();
        let (a_public, a) = ec_pair(&s, P256, &[]);
        let (b_public, b) = ec_pair(&s, P256, &[]);
        let a_der = bytes(&s, a_public, AttributeType::EcPoint);
        let b_der = bytes(&s, b_public, AttributeType::EcPoint);
        let (a_point, b_point) = (raw_point(&a_der), raw_point(&b_der));
        assert_eq!(a_point.len(), 65);

        let open = |key_type: KeyType, len: Option<u64>| {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(key_type),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            if let Some(len) = len {
                t.push(Attribute::ValueLen(len.into()));
            }
            t
        };
        // AES-256: raw point on one side, DER on the other.
        let ab = s.derive_key(&ecdh(&b_point), a, &open(KeyType::AES, Some(32))).unwrap();
        let ba = s.derive_key(&ecdh(&a_der), b, &open(KeyType::AES, Some(32))).unwrap();
        let ab_value = bytes(&s, ab, AttributeType::Value);
        assert_eq!(ab_value.len(), 32);
        assert_eq!(bytes(&s, ba, AttributeType::Value), ab_value);
        for key in [ab, ba] {
            assert!(!flag(&s, key, AttributeType::Local));
            assert_eq!(read(&s, key, AttributeType::ValueLen), Attribute::ValueLen(32.into()));
            assert_eq!(read(&s, key, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
        }
        let mut iv = [3u8; 12];
        let ct = s.encrypt(&gcm(&mut iv, b"ecdh"), ab, b"agreed").unwrap();
        let mut iv = [3u8; 12];
        assert_eq!(s.decrypt(&gcm(&mut iv, b"ecdh"), ba, &ct).unwrap(), b"agreed");
        // Both forms of the point give the same key.
        let ab_der = s.derive_key(&ecdh(&b_der), a, &open(KeyType::AES, Some(32))).unwrap();
        assert_eq!(bytes(&s, ab_der, AttributeType::Value), ab_value);

        // Sensitive derived keys: compared by what they encrypt.
        let sealed = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(16.into()),
        ];
        let ab_sealed = s.derive_key(&ecdh(&b_point), a, &sealed).unwrap();
        let ba_sealed = s.derive_key(&ecdh(&a_point), b, &sealed).unwrap();
        assert!(!flag(&s, ab_sealed, AttributeType::Local));
        let mut iv = [4u8; 12];
        let x = s.encrypt(&gcm(&mut iv, b""), ab_sealed, b"sealed").unwrap();
        let mut iv = [4u8; 12];
        let y = s.encrypt(&gcm(&mut iv, b""), ba_sealed, b"sealed").unwrap();
        assert_eq!(x, y);
        assert_eq!(
            ab_value[16..],
            bytes(
                &s,
                s.derive_key(&ecdh(&b_point), a, &open(KeyType::AES, Some(16))).unwrap(),
                AttributeType::Value
            )[..]
        );

        // Generic secret, with no length (the field size) and with one.
        let g_ab = s.derive_key(&ecdh(&b_point), a, &open(KeyType::GENERIC_SECRET, None)).unwrap();
        let g_ba = s.derive_key(&ecdh(&a_der), b, &open(KeyType::GENERIC_SECRET, None)).unwrap();
        assert_eq!(bytes(&s, g_ab, AttributeType::Value), ab_value, "CKD_NULL gives Z itself");
        assert_eq!(bytes(&s, g_ba, AttributeType::Value), ab_value);
        assert!(!flag(&s, g_ab, AttributeType::Local));
        let g20 = s.derive_key(&ecdh(&a_point), b, &open(KeyType::GENERIC_SECRET, Some(20))).unwrap();
        assert_eq!(bytes(&s, g20, AttributeType::Value), ab_value[12..]);
    }
);

isolated_test!(
    fn ecdh_refusals() {
        let (_p, s, _raw) = setup();
        let (_, a) = ec_pair(&s, P256, &[]);
        let (b_public, _) = ec_pair(&s, P256, &[]);
        let (p384_public, _) = ec_pair(&s, P384, &[]);
        let p256 = [Attribute::EcParams(P256.to_vec())];
        let (_, no_derive) =
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &p256, &[Attribute::Derive(false)]).unwrap();
        let (_, by_default) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &p256, &[]).unwrap();
        let b_point = raw_point(&bytes(&s, b_public, AttributeType::EcPoint));
        let p384_der = bytes(&s, p384_public, AttributeType::EcPoint);
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
        ];
        let before = count(&s);
        // CKA_DERIVE false, and left out (it defaults to false).
        expect_rv(s.derive_key(&ecdh(&b_point), no_derive, &template), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        expect_rv(s.derive_key(&ecdh(&b_point), by_default, &template), RvError::KeyFunctionNotPermitted);
        assert_unchanged(&s, before);
        // A point of another curve, raw or DER.
        expect_rv(s.derive_key(&ecdh(&p384_der), a, &template), RvError::MechanismParamInvalid);
        assert_unchanged(&s, before);
        expect_rv(s.derive_key(&ecdh(&raw_point(&p384_der)), a, &template), RvError::MechanismParamInvalid);
        assert_unchanged(&s, before);
        // A point off the curve, and a truncated one.
        let mut off_curve = b_point.clone();
        off_curve[64] ^= 1;
        expect_rv(s.derive_key(&ecdh(&off_curve), a, &template), RvError::MechanismParamInvalid);
        expect_rv(s.derive_key(&ecdh(&b_point[..33]), a, &template), RvError::MechanismParamInvalid);
        assert_unchanged(&s, before);
        // CKD_NULL derives at most the field size.
        expect_rv(
            s.derive_key(
                &ecdh(&b_point),
                a,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(33.into()),
                ],
            ),
            RvError::KeySizeRange,
        );
        assert_unchanged(&s, before);
        // The same call with the right point works.
        s.derive_key(&ecdh(&b_point), a, &template).unwrap();
        assert_eq!(count(&s), before + 1);
    }
);
