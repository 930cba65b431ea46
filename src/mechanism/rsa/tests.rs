use super::*;

pub(crate) use crate::mechanism::test_vectors::unhex as hex;

/// The 2048-bit key of Wycheproof's rsa_oaep_2048_sha256_mgf1sha256_test.json,
/// rsa_signature_2048_sha256_test.json and rsa_pss_2048_sha256_mgf1_32_test.json.
pub(crate) const MODULUS: &str = "
    a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097
    b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d981
    4c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a19
    69816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5";

/// Its `privateKeyPkcs8`.
pub(crate) const PKCS8: &str = "
    308204bd020100300d06092a864886f70d0101010500048204a7308204a30201000282010100a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094f
    a1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e
    42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d9814c22da610428e09c7d9658594266f5c021d0fceca08d945a12be
    82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a1969816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c
    4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d502030100010282010024cdc62317f5d72a6f6ba6cc9632899b01
    d1ff28867d72f61688995bc855a4e420a8405250089bdb13cf8e09543827b748b9d27fbb2b4d9e20af8c5a6a862796d1a4cc18ad16ea678bc1bd4a83bbbe9c5e
    57453b5ce7388e41a3ba4ce2b77b4438a229e954f720dae0353dc088ac8a76b26dc276f8e1b7851ddd6398ad16ff2e78195123b9b036e945c38c9d12434f6df7
    6fe22359eb3e1ac9c011678fc926fad3ae475a4fffff55feb2d147e9c894f4c0e29a599e762462482d968bf42780945fc0d2c31c573c4431b8f4fe8b8c67bec8
    15abd44f7a86edca1c2308737358d2c2ae5e2e0e2dadf730980262377e58b13b7d9992060a0bc870ccfdb4a9319ee102818100dc431050f782e894fb5248247d
    98cb7d58b8d1e24f3b55d041c56e4de086b0d5bb028bda42eeb5d234d5681e5809d415e6a289ad4cfbf78f978f6c35814f50eebff1c5b80a69f788e81e6bab5d
    daa78369d659d143ec6f17e79813a575cfad9c569156b90113e2e9110ad9e7b48a1c9348a6e653321191290ea36cfb3a5b18f102818100bd1a81e7977f989812
    2273ae3222b598ea5fb19eb4eabc38308a5e32196603b2e500ffb79f5b886816611debc472fac45544070beb057c941378a6868af3b7a03d3f9880ec47d5e089
    b94fbde542aba9ae8d72c57088d7abf5b131f39098f7bc160f90536abc9492fd4e06f3ed7299d4b97bb03677207d95669f140cfbc20f2502818100a94b528b28
    f291599121d91952ffd1c7f21d7c1479d99d478885fb161870ee1218bf08472612dbe5497e8d9c650688e09c786961ae3e2c354dc48ae34514759c4c23c45884
    88961dc06b414e61c0e1e7fbbd2923d31532fe289f96da220711e58c14019808e00414276933bb07e4efb9b4a9b37656917205209f33f09515d7c10281803af0
    e72a933aef09ff2503df78bafed531c02ff1a2bc437c540cdcbd4ad35435cf511763596543480629b114ca7f780ff7efa32ea0cb6e000d6d9ea1f2ef71fd9cf9
    948422a165557e37e755edfe70d90b920502eb478bc98a63f788ce3a0f856d6ede7251a383bfa8fa480a81a925af7b3cc538c4bab8c9f7597ffb68011d8d0281
    802640fbfbcfefb163ee7a87b6483a66ee41f956d90fa8a7939bfc042ee0924b1b7993d0445f758d51933e85179c0320b0c968b48a91c38b5be923e1097c0c56
    2f88d42294b6a2759bafa5428a74f1270874e45f6fcc60f21602de5eccd143cf31241f5921b5ad3983fb54ef17be3b285367e50c999c67247b552fe4bfce945f
    7b";

/// tcId 3 of rsa_signature_2048_sha256_test.json: msg "Test".
const PKCS1_SHA256_SIGNATURE: &str = "
    264491e844c119f14e425c03282139a558dcdaeb82a4628173cd407fd319f9076eaebc0dd87a1c22e4d17839096886d58a9d5b7f7aeb63efec56c45ac7bead42
    03b6886e1faa90e028ec0ae094d46bf3f97efdd19045cfbc25a1abda2432639f9876405c0d68f8edbf047c12a454f7681d5d5a2b54bd3723d193dbad4338baad
    753264006e2d08931c4b8bb79aa1c9cad10eb6605f87c5831f6e2b08e002f9c6f21141f5841d92727dd3e1d99c36bc560da3c9067df99fcaf818941f72588be3
    3032bad22caf6704223bb114d575b6d02d9d222b580005d930e8f40cce9f672eebb634a20177d84351627964b83f2053d736a84ab1a005f63bd5ba943de6205c";

/// tcId 3 of rsa_pss_2048_sha256_mgf1_32_test.json: msg "Test", SHA-256, MGF1-SHA-256, salt 32.
const PSS_SHA256_SIGNATURE: &str = "
    401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b309891d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f
    5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea792569
    0f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3
    169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d77277c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5";

/// rsa_oaep_2048_sha256_mgf1sha256_test.json: tcId 3 (msg "Test"), tcId 9 (msg "123400",
/// label 00..13) and tcId 12 (first byte of lHash modified: invalid).
const OAEP_TEST: &str = "
    5eab3f0741e63986ed647d53e1cd71df041986900803d0f99c68355d249a15a47dc5b4f70a191477654299e5a2731f3b4eec76dea18262fc696ac794e5f66cbf
    cddac4472c578e246c26707598055584540b839836b1404c5611ae558a984cee8fd036cea924e0be2474a940f61e0acc14fcae95ebdc59942a9ce9af9a9c8199
    9f7f6815f057ffdc2533cb15d6391d1e2d95f16f9c04209c889a4c359c7d2926d28a66e2b030a416b928d2825627998e5191fb4983a6e65024262d94fc09187a
    2d78162122433251d1bfcc8e507d06eba2d229c10031261da32ab8ccd15f1c5f9fbf07ed158483d736a110af4b44d6a4da60d6cb519b4454213cf9f0dc560f2b";
const OAEP_LABEL: &str = "
    a0443ba434156d0b503ec662f5eb5b10e20ad0cb8233720ee187ba986e4811dd312844d3edb26bfaf51b4b9268dc3c76072dd47c199d713c91824da23ff00481
    ee69e9d4cc543120fc33b7244bf0c1ad5fdd1ae9cbada7fe9a70ad0afaaaad8361e8dc4b3198ae661a84e275b60bf2ebb85e512da785d2fc3482294fa1196768
    1d7bceffc08ce0e36f0a8af7fcfb1337186863c2c1c1b94c9ec9785cd3d94d15437c23b775677f3d29a4c9e52f13398fd14661160e5868bca97625aa6c7ecb07
    bbb479644def353f1f01a4c4100f9adb82c4f6a265a5ee962da58c3c042aa549c9d2de3008e7448e0c4b9b4ac8f5e4d8629873909bb995ccc0825fe87d81d596";
const OAEP_BAD_LHASH: &str = "
    287d7108a1c6e7a18acb0045b20c57cdf2ac03456b44942764a7a9e9fdf3db481d7e202e4c8d733b56b9c1e93d71e791af8325c9363df789b252a5ed0eddc79e
    76fa41c2cb0a35618398217a390a5e6d99eed905d5554d19c1cf4e30bdf1c2fcc5148b641d71b3f1977b63d232648ddd935ec9499a53ac2fbcac55f462e91065
    adaa018a39c453ba759bd68b454074153421e2ce75cf149f748b5b84758df8a423d1c50c880af863f2a6df3cd465ca36aa2152b5771f3d507f4a4dd9f8006d80
    eca23537092287976f218a90df1e16d889fe31e79f7309f3224f613e9b52479fe73b7aad915319a3b62a5936649f7d015d7b09f7fa9f454f78a7c3dd4bf791e0";

pub(crate) fn wycheproof_key() -> RsaPrivateKey {
    encoding::rsa_private_key_from_pkcs8(&hex(PKCS8)).unwrap()
}

fn none() -> MechanismParams {
    MechanismParams::None
}

fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, salt_len: u64) -> MechanismParams {
    MechanismParams::Pss(PssParams { hash, mgf, salt_len })
}

fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, label: &[u8]) -> MechanismParams {
    MechanismParams::Oaep(OaepParams { hash, mgf, label: label.to_vec() })
}

fn sign(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPrivateKey,
    data: &[u8],
) -> Result<Vec<u8>> {
    sign_init(mechanism, params, key)?.sign(data)
}

fn verify(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &RsaPublicKey,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    verify_init(mechanism, params, key)?.verify(data, signature)
}

fn sha256_digest_info(data: &[u8]) -> Vec<u8> {
    [SHA256.digest_info, digest::digest(&digest::SHA256, data).as_ref()].concat()
}

#[test]
fn the_test_key_parses() {
    let key = wycheproof_key();
    assert_eq!(key.public.modulus, hex(MODULUS));
    assert_eq!(key.public.public_exponent, [1, 0, 1]);
    check_private_key(&key).unwrap();
}

/// Wycheproof RSASSA-PKCS1-v1_5 SHA-256: the published signature verifies, and signing is
/// deterministic, so every signing path (AWS-LC with CKM_SHA256_RSA_PKCS and with a
/// DigestInfo through CKM_RSA_PKCS, the raw operation with the padding built here) gives it.
#[test]
fn known_answer_pkcs1_sha256() {
    let key = wycheproof_key();
    let expected = hex(PKCS1_SHA256_SIGNATURE);
    verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &expected).unwrap();
    verify(CKM_RSA_PKCS, &none(), &key.public, &sha256_digest_info(b"Test"), &expected).unwrap();
    assert_eq!(sign(CKM_SHA256_RSA_PKCS, &none(), &key, b"Test").unwrap(), expected);
    assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &sha256_digest_info(b"Test")).unwrap(), expected);
    let private = Private::new(&key, 2048).unwrap();
    // The `rsa` crate's encoding (the engine below 2048 bits) gives AWS-LC's signature.
    let t = sha256_digest_info(b"Test");
    assert_eq!(padding::pkcs1_sign(&private.raw().unwrap(), &[], &t).unwrap(), expected);
    let m_hash = SHA256.digest(&[b"Test"]);
    assert_eq!(
        padding::pkcs1_sign(&private.raw().unwrap(), SHA256.digest_info, m_hash.as_ref()).unwrap(),
        expected
    );
    let raw_public_key = private.public.raw().unwrap();
    assert!(padding::pkcs1_verify(&raw_public_key, SHA256.digest_info, m_hash.as_ref(), &expected));
    assert!(!padding::pkcs1_verify(&raw_public_key, SHA384.digest_info, m_hash.as_ref(), &expected));
    // Multi-part hashing gives the same.
    let mut multi = sign_init(CKM_SHA256_RSA_PKCS, &none(), &key).unwrap();
    multi.update(b"Te").unwrap();
    multi.update(b"st").unwrap();
    assert_eq!(multi.finish().unwrap(), expected);

    let mut bad = expected.clone();
    bad[100] ^= 1;
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &bad),
        Err(Error::SignatureInvalid)
    );
    assert_eq!(
        verify(CKM_RSA_PKCS, &none(), &key.public, &sha256_digest_info(b"Test"), &bad),
        Err(Error::SignatureInvalid)
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Tesu", &expected),
        Err(Error::SignatureInvalid)
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"Test", &expected[1..]),
        Err(Error::SignatureLenRange)
    );
    assert_eq!(
        verify(CKM_SHA384_RSA_PKCS, &none(), &key.public, b"Test", &expected),
        Err(Error::SignatureInvalid)
    );
}

/// Wycheproof RSASSA-PSS SHA-256, MGF1-SHA-256, 32-byte salt: verified by AWS-LC (the
/// hash-and-sign and the prehashed mechanism) and by the `rsa` crate's EMSA-PSS.
#[test]
fn known_answer_pss_sha256() {
    let key = wycheproof_key();
    let signature = hex(PSS_SHA256_SIGNATURE);
    let params = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
    verify(CKM_SHA256_RSA_PKCS_PSS, &params, &key.public, b"Test", &signature).unwrap();
    let m_hash = digest::digest(&digest::SHA256, b"Test");
    verify(CKM_RSA_PKCS_PSS, &params, &key.public, m_hash.as_ref(), &signature).unwrap();
    let public = Public::new(&key.public, 2048).unwrap();
    let raw = public.raw().unwrap();
    assert!(padding::pss_verify(&raw, CKM_SHA256, 32, m_hash.as_ref(), &signature).unwrap());
    assert!(!padding::pss_verify(&raw, CKM_SHA256, 31, m_hash.as_ref(), &signature).unwrap());
    let other = digest::digest(&digest::SHA256, b"Tesu");
    assert!(!padding::pss_verify(&raw, CKM_SHA256, 32, other.as_ref(), &signature).unwrap());
    // Read with another salt length, the signature is not valid.
    assert_eq!(
        verify(
            CKM_SHA256_RSA_PKCS_PSS,
            &pss(CKM_SHA256, CKG_MGF1_SHA256, 20),
            &key.public,
            b"Test",
            &signature
        ),
        Err(Error::SignatureInvalid)
    );
    let mut bad = signature.clone();
    bad[0] ^= 1;
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS_PSS, &params, &key.public, b"Test", &bad),
        Err(Error::SignatureInvalid)
    );
}

/// Wycheproof RSAES-OAEP SHA-256 decryption, with and without a label, and a ciphertext with
/// a broken padding.
#[test]
fn known_answer_oaep_sha256() {
    let key = wycheproof_key();
    let params = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
    let mut op = decrypt_init(CKM_RSA_PKCS_OAEP, &params, &key).unwrap();
    assert_eq!(op.single_len(256).unwrap(), 256);
    assert_eq!(op.single(&hex(OAEP_TEST)).unwrap().as_slice(), b"Test");
    assert_eq!(op.single(&hex(OAEP_BAD_LHASH)).unwrap_err(), Error::EncryptedDataInvalid);
    assert_eq!(op.single(&hex(OAEP_TEST)[1..]).unwrap_err(), Error::EncryptedDataLenRange);
    // With its label it decrypts; without, or with another, it is the same opaque error.
    let label = hex("000102030405060708090a0b0c0d0e0f10111213");
    let mut op = decrypt_init(CKM_RSA_PKCS_OAEP, &oaep(CKM_SHA256, CKG_MGF1_SHA256, &label), &key).unwrap();
    assert_eq!(op.single(&hex(OAEP_LABEL)).unwrap().as_slice(), hex("313233343030"));
    let mut op = decrypt_init(CKM_RSA_PKCS_OAEP, &params, &key).unwrap();
    assert_eq!(op.single(&hex(OAEP_LABEL)).unwrap_err(), Error::EncryptedDataInvalid);
}

#[test]
fn every_signature_mechanism_round_trips() {
    let key = wycheproof_key();
    let other = another_public_key();
    let hashed = [
        (CKM_SHA1_RSA_PKCS, CKM_SHA_1),
        (CKM_SHA224_RSA_PKCS, CKM_SHA224),
        (CKM_SHA256_RSA_PKCS, CKM_SHA256),
        (CKM_SHA384_RSA_PKCS, CKM_SHA384),
        (CKM_SHA512_RSA_PKCS, CKM_SHA512),
    ];
    for (mechanism, hash) in hashed {
        let signature = sign(mechanism, &none(), &key, b"message").unwrap();
        assert_eq!(signature.len(), 256);
        verify(mechanism, &none(), &key.public, b"message", &signature).unwrap();
        assert_eq!(
            verify(mechanism, &none(), &key.public, b"messagf", &signature),
            Err(Error::SignatureInvalid)
        );
        assert_eq!(verify(mechanism, &none(), &other, b"message", &signature), Err(Error::SignatureInvalid));
        // The same signature is CKM_RSA_PKCS over the DigestInfo (both engines agree).
        let h = Hash::by_mechanism(hash).unwrap();
        let info = [h.digest_info, h.digest(&[b"message"]).as_ref()].concat();
        assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &info).unwrap(), signature);
        verify(CKM_RSA_PKCS, &none(), &key.public, &info, &signature).unwrap();
    }
    // CKM_RSA_PKCS over data that is no DigestInfo (a TLS 1.1 MD5+SHA-1 hash, 36 bytes).
    let data = [0x36u8; 36];
    let signature = sign(CKM_RSA_PKCS, &none(), &key, &data).unwrap();
    verify(CKM_RSA_PKCS, &none(), &key.public, &data, &signature).unwrap();
    assert_eq!(
        verify(CKM_RSA_PKCS, &none(), &key.public, &data[1..], &signature),
        Err(Error::SignatureInvalid)
    );
    assert_eq!(sign(CKM_RSA_PKCS, &none(), &key, &[0; 246]).unwrap_err(), Error::DataLenRange);
    sign(CKM_RSA_PKCS, &none(), &key, &[0; 245]).unwrap();

    let pss_cases = [
        (CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1),
        (CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224),
        (CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256),
        (CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384),
        (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512),
    ];
    for (mechanism, hash, mgf) in pss_cases {
        let h = Hash::by_mechanism(hash).unwrap();
        for salt in [0, 20, h.len() as u64, 64] {
            let params = pss(hash, mgf, salt);
            let signature = sign(mechanism, &params, &key, b"message").unwrap();
            verify(mechanism, &params, &key.public, b"message", &signature).unwrap();
            assert_eq!(
                verify(mechanism, &params, &other, b"message", &signature),
                Err(Error::SignatureInvalid)
            );
            let m_hash = h.digest(&[b"message"]);
            verify(CKM_RSA_PKCS_PSS, &params, &key.public, m_hash.as_ref(), &signature).unwrap();
            let signature = sign(CKM_RSA_PKCS_PSS, &params, &key, m_hash.as_ref()).unwrap();
            verify(mechanism, &params, &key.public, b"message", &signature).unwrap();
            // Whichever engine signed, the other verifies: the `rsa` crate's EMSA-PSS check.
            let raw = Public::new(&key.public, 2048).unwrap().raw().unwrap();
            assert!(padding::pss_verify(&raw, hash, salt as usize, m_hash.as_ref(), &signature).unwrap());
        }
    }
    // A PSS signature made here (raw path) verifies with AWS-LC.
    let m_hash = SHA256.digest(&[b"abc"]);
    let private = Private::new(&key, 2048).unwrap();
    let signature = padding::pss_sign(&private.raw().unwrap(), CKM_SHA256, 32, m_hash.as_ref()).unwrap();
    verify(CKM_SHA256_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA256, 32), &key.public, b"abc", &signature)
        .unwrap();

    // CKM_RSA_X_509: raw, left-padded input.
    let signature = sign(CKM_RSA_X_509, &none(), &key, b"raw input").unwrap();
    verify(CKM_RSA_X_509, &none(), &key.public, b"raw input", &signature).unwrap();
    verify(CKM_RSA_X_509, &none(), &key.public, &[&[0u8; 5][..], b"raw input"].concat(), &signature).unwrap();
    assert_eq!(
        verify(CKM_RSA_X_509, &none(), &key.public, b"raw inpuT", &signature),
        Err(Error::SignatureInvalid)
    );
    assert_eq!(sign(CKM_RSA_X_509, &none(), &key, &[0xff; 256]).unwrap_err(), Error::DataInvalid);
    assert_eq!(sign(CKM_RSA_X_509, &none(), &key, &[1; 257]).unwrap_err(), Error::DataLenRange);
}

/// A fresh 2048-bit public key, to check that signatures do not verify under another key.
fn another_public_key() -> RsaPublicKey {
    generate_key_pair(2048, None).unwrap().0
}

#[test]
fn single_part_mechanisms_refuse_parts_and_parameters_are_checked() {
    let key = wycheproof_key();
    for (mechanism, params) in [
        (CKM_RSA_PKCS, none()),
        (CKM_RSA_X_509, none()),
        (CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)),
    ] {
        let mut op = sign_init(mechanism, &params, &key).unwrap();
        assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
        assert_eq!(op.finish(), Err(Error::OperationNotInitialized));
        let mut op = verify_init(mechanism, &params, &key.public).unwrap();
        assert_eq!(op.update(b"x"), Err(Error::OperationNotInitialized));
        assert_eq!(op.finish(&[0; 256]), Err(Error::OperationNotInitialized));
    }
    let invalid = |mechanism, params: MechanismParams| sign_init(mechanism, &params, &key).err();
    let param_invalid = Some(Error::MechanismParamInvalid);
    assert_eq!(invalid(CKM_RSA_PKCS, MechanismParams::Opaque(vec![1])), param_invalid);
    assert_eq!(invalid(CKM_SHA256_RSA_PKCS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)), param_invalid);
    assert_eq!(invalid(CKM_RSA_PKCS_PSS, none()), param_invalid);
    assert_eq!(invalid(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA1, 32)), param_invalid);
    assert_eq!(invalid(CKM_RSA_PKCS_PSS, pss(CKM_MD5, CKG_MGF1_SHA1, 16)), param_invalid);
    assert_eq!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA384, CKG_MGF1_SHA384, 48)), param_invalid);
    // emLen 256 ≥ hLen + sLen + 2: a 222-byte salt fits with SHA-256, 223 does not.
    assert!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 222)).is_none());
    assert_eq!(invalid(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 223)), param_invalid);
    assert_eq!(invalid(CKM_RSA_PKCS_OAEP, none()), Some(Error::MechanismInvalid));
    assert_eq!(invalid(CKM_ECDSA, none()), Some(Error::MechanismInvalid));
    // CKM_RSA_PKCS_PSS takes exactly the hash.
    let mut op = sign_init(CKM_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA256, 32), &key).unwrap();
    assert_eq!(op.sign(&[0; 31]), Err(Error::DataLenRange));
    let mut op = verify_init(CKM_RSA_PKCS_PSS, &pss(CKM_SHA256, CKG_MGF1_SHA256, 32), &key.public).unwrap();
    assert_eq!(op.verify(&[0; 33], &[0; 256]), Err(Error::DataLenRange));
}

/// The length a decryption announces is the plaintext's, for the padded mechanisms; the
/// plaintext announced is the one delivered, and a changed input is decrypted anew.
#[test]
fn decryption_announces_the_plaintexts_length() {
    let key = wycheproof_key();
    let params = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
    for (mechanism, params) in [(CKM_RSA_PKCS_OAEP, params), (CKM_RSA_PKCS, none())] {
        let a = encrypt_init(mechanism, &params, &key.public).unwrap().single(b"first").unwrap();
        let b = encrypt_init(mechanism, &params, &key.public).unwrap().single(b"second!").unwrap();
        let mut dec = decrypt_init(mechanism, &params, &key).unwrap();
        assert_eq!(dec.single_output_len(&a).unwrap(), 5);
        assert_eq!(dec.single_output_len(&a).unwrap(), 5);
        assert_eq!(dec.single(&b).unwrap().as_slice(), b"second!");
        assert_eq!(dec.single_output_len(&b).unwrap(), 7);
        assert_eq!(dec.single(&b).unwrap().as_slice(), b"second!");
        assert_eq!(dec.single(&a).unwrap().as_slice(), b"first");
        let mut bad = a.to_vec();
        bad[7] ^= 1;
        assert_eq!(dec.single_output_len(&bad), Err(Error::EncryptedDataInvalid));
        assert_eq!(dec.single_output_len(&a[1..]), Err(Error::EncryptedDataLenRange));
    }
    let raw = decrypt_init(CKM_RSA_X_509, &none(), &key).unwrap();
    assert_eq!(raw.single_output_len(&[1; 256]).unwrap(), 256);
}

#[test]
fn encryption_round_trips() {
    let key = wycheproof_key();
    let cases = [
        (CKM_RSA_PKCS, none(), 245),
        (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA_1, CKG_MGF1_SHA1, b""), 214),
        (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA256, CKG_MGF1_SHA256, b"label"), 190),
        (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA384, CKG_MGF1_SHA384, b""), 158),
        (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA512, CKG_MGF1_SHA512, b"l"), 126),
    ];
    for (mechanism, params, max) in cases {
        let mut enc = encrypt_init(mechanism, &params, &key.public).unwrap();
        let mut dec = decrypt_init(mechanism, &params, &key).unwrap();
        for len in [0, 1, max] {
            let plain = vec![0x42u8; len];
            assert_eq!(enc.single_len(len).unwrap(), 256);
            let ct = enc.single(&plain).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(dec.single(&ct).unwrap().as_slice(), plain.as_slice());
            let mut tampered = ct.to_vec();
            tampered[255] ^= 1;
            assert_eq!(dec.single(&tampered).unwrap_err(), Error::EncryptedDataInvalid);
        }
        assert_eq!(enc.single_len(max + 1).unwrap_err(), Error::DataLenRange);
        assert_eq!(enc.single(&vec![0; max + 1]).unwrap_err(), Error::DataLenRange);
        assert_eq!(enc.update(b"x").unwrap_err(), Error::OperationNotInitialized);
        assert_eq!(dec.finish().unwrap_err(), Error::OperationNotInitialized);
        assert_eq!(dec.single(&[0; 255]).unwrap_err(), Error::EncryptedDataLenRange);
        assert_eq!(dec.single(&[0xff; 256]).unwrap_err(), Error::EncryptedDataInvalid);
    }
    // CKM_RSA_X_509: k-byte output, left-padded input.
    let mut enc = encrypt_init(CKM_RSA_X_509, &none(), &key.public).unwrap();
    let mut dec = decrypt_init(CKM_RSA_X_509, &none(), &key).unwrap();
    let ct = enc.single(b"raw").unwrap();
    let plain = dec.single(&ct).unwrap();
    assert_eq!(plain.len(), 256);
    assert_eq!(&plain[253..], b"raw");
    assert!(plain[..253].iter().all(|b| *b == 0));
    assert_eq!(enc.single(&[0xff; 256]).unwrap_err(), Error::DataInvalid);
    assert_eq!(enc.single(&[1; 257]).unwrap_err(), Error::DataLenRange);
    assert_eq!(dec.single(&[0xff; 256]).unwrap_err(), Error::EncryptedDataInvalid);
    // The ciphertext of the PKCS#1 v1.5 mechanism, opened raw, shows its type 2 padding.
    let ct = encrypt_init(CKM_RSA_PKCS, &none(), &key.public).unwrap().single(b"hi").unwrap();
    let em = dec.single(&ct).unwrap();
    assert_eq!((em[0], em[1], em[253], &em[254..]), (0, 2, 0, &b"hi"[..]));
    assert!(em[2..253].iter().all(|b| *b != 0));
    // OAEP with SHA-224 (which AWS-LC lacks) or a mismatched MGF is refused.
    for params in [oaep(CKM_SHA224, CKG_MGF1_SHA224, b""), oaep(CKM_SHA256, CKG_MGF1_SHA1, b""), none()] {
        assert_eq!(
            encrypt_init(CKM_RSA_PKCS_OAEP, &params, &key.public).err(),
            Some(Error::MechanismParamInvalid)
        );
    }
}

#[test]
fn keys_lacking_crt_values_are_completed() {
    let key = wycheproof_key();
    let bare = RsaPrivateKey {
        public: key.public.clone(),
        private_exponent: key.private_exponent.clone(),
        crt: None,
    };
    let crt = derive_crt(&bare).unwrap();
    let given = key.crt.as_ref().unwrap();
    let mut primes = [crt.prime_1.to_vec(), crt.prime_2.to_vec()];
    primes.sort();
    let mut expected = [given.prime_1.to_vec(), given.prime_2.to_vec()];
    expected.sort();
    assert_eq!(primes, expected);
    check_private_key(&bare).unwrap();
    // Deterministic PKCS#1 v1.5: the same signature as with the full key.
    assert_eq!(sign(CKM_SHA256_RSA_PKCS, &none(), &bare, b"Test").unwrap(), hex(PKCS1_SHA256_SIGNATURE));
    let ct = encrypt_init(CKM_RSA_PKCS, &none(), &key.public).unwrap().single(b"x").unwrap();
    assert_eq!(decrypt_init(CKM_RSA_PKCS, &none(), &bare).unwrap().single(&ct).unwrap().as_slice(), b"x");
    // A wrong d cannot be completed or used.
    let mut wrong = RsaPrivateKey {
        public: key.public.clone(),
        private_exponent: key.private_exponent.clone(),
        crt: None,
    };
    wrong.private_exponent[10] ^= 1;
    assert_eq!(derive_crt(&wrong).err(), Some(Error::KeyTypeInconsistent));
    assert_eq!(sign_init(CKM_RSA_PKCS, &none(), &wrong).err(), Some(Error::KeyTypeInconsistent));
    // Nor an inconsistent CRT value.
    let mut broken = wycheproof_key();
    broken.crt.as_mut().unwrap().coefficient[5] ^= 1;
    assert_eq!(check_private_key(&broken).err(), Some(Error::KeyTypeInconsistent));
}

/// A 1024-bit key made with `openssl genrsa 1024`, and its PKCS#1 v1.5 SHA-256 signature
/// (`openssl dgst -sha256 -sign`) of "a signature from 2009".
pub(crate) fn legacy_1024_key() -> RsaPrivateKey {
    let h = |s: &str| Zeroizing::new(hex(s));
    RsaPrivateKey {
        public: RsaPublicKey {
            modulus: hex(
                "b054da0f9a8e85d9aa5cfdf739b77ce9be66831be0a31a94a87ed75b29fe0052dd3c2804acdb06ae2679d22cace84f\
                 abaad26725f0a7573d3428bef6c806e5244159590c1bf94051570a5fd963bbd0f7115d56ce1daa609553f49a743a\
                 67824e7b87f844e07e92f4029713639a05e45b88c1ea51830d5ebd246022ed44a499e5",
            ),
            public_exponent: vec![1, 0, 1],
        },
        private_exponent: h(
            "65f6db15d4d0ff938b913486a68875221128e43dd59b5b7e8524bbd18aa9c774235c6ae3b135025ae802dfc757c10a79\
             0151a3b5ebc048912abd39182938db7d325fa789cd0731dac8247185399830ba45e9644af46ac289c3249b97139477e7\
             8e84ce5d62a58d595a561fe644624353c31975032b2c9aaab51c624f2f5ef4a1",
        ),
        crt: Some(RsaCrt {
            prime_1: h(
                "e20ce2961caf0f31a23801d95faa2282578ea2df69f39658c1484965b0053da99d5132f207fa644ea1ac9841c16c727a5a4a87b1a46975978b054ea308a6c9cd",
            ),
            prime_2: h(
                "c7b19d6f614e9e07d3af3c653a418f4fc39910c9522a30450854f43c83d59da80f73262d7d5cdc49afaf3e5391a04da3578afea4de037a18c938a00582741879",
            ),
            exponent_1: h(
                "dedde1502abb95f9537c70a6462151a0bc7e8eaa42a5bc678938a1d4b5f494d4f39ba8e4e364c51c995db747ad522493e90d6e378067d15e35dc67a969d03749",
            ),
            exponent_2: h(
                "610d1e71a23e1e29b9a4a1daa4ac762512efd22bb5c6113d8ba616294efd43a90911328dcb2e95552e9021df65981e0373a976c6d3aba6ec62e7254668375a29",
            ),
            coefficient: h(
                "c1dc766beed99302519ce7c5ed4161e519ff5c1fd00896a2694644d26c25fcf2208387386fe37060b5dbdab8ed41b8a1fcbd5dbd538b0dec71d15d645a92a135",
            ),
        }),
    }
}

pub(crate) const LEGACY_1024_SIGNATURE: &str = "42d52b0b1fd77d7e925d3902ae5a15afbfe3d5bf5847b64a971e2d0598b0509f\
    1404a0805bd25bbdc6e0eaf6dd85d6b2964ff0c26e37ae68f3fd36a6ee82c7291b954a375193ce88ea2e756b14ed341783ed011d133f\
    1e9b32f42a0b35380237b4924525809d9a50051c7319780628fe40ccbe0f55efb1754b668b9f0621eeda";

#[test]
fn a_1024_bit_key_imports_and_verifies_an_old_signature() {
    let key = legacy_1024_key();
    check_private_key(&key).unwrap();
    check_public_key(&key.public).unwrap();
    let signature = hex(LEGACY_1024_SIGNATURE);
    verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"a signature from 2009", &signature).unwrap();
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, &none(), &key.public, b"a signature from 2010", &signature),
        Err(Error::SignatureInvalid)
    );
    // The `rsa` crate's PKCS#1 v1.5 at this size gives OpenSSL's signature.
    let private = Private::new(&key, 1024).unwrap();
    let m_hash = SHA256.digest(&[b"a signature from 2009"]);
    assert_eq!(
        padding::pkcs1_sign(&private.raw().unwrap(), SHA256.digest_info, m_hash.as_ref()).unwrap(),
        signature
    );
}

#[test]
fn key_sizes_and_generation() {
    let small = RsaPublicKey { modulus: vec![0xc5; 127], public_exponent: vec![1, 0, 1] };
    assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &small).err(), Some(Error::KeySizeRange));
    assert_eq!(check_public_key(&small), Err(Error::KeySizeRange));
    check_public_key(&wycheproof_key().public).unwrap();
    assert_eq!(encrypt_init(CKM_RSA_PKCS, &none(), &small).err(), Some(Error::KeySizeRange));
    // 1024 bits: imported and verifying; encrypting only where `rsa_min_bits` allows
    // (2048 unless the process set it lower).
    let legacy = RsaPublicKey { modulus: vec![0xc5; 128], public_exponent: vec![1, 0, 1] };
    check_public_key(&legacy).unwrap();
    verify_init(CKM_SHA256_RSA_PKCS, &none(), &legacy).unwrap();
    if min_modulus_bits() > 1024 {
        assert_eq!(encrypt_init(CKM_RSA_PKCS, &none(), &legacy).err(), Some(Error::KeySizeRange));
    }
    let huge = RsaPublicKey { modulus: vec![0xc5; 1025], public_exponent: vec![1, 0, 1] };
    assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &huge).err(), Some(Error::KeySizeRange));
    let even = RsaPublicKey { modulus: vec![0xc4; 256], public_exponent: vec![1, 0, 1] };
    assert_eq!(verify_init(CKM_RSA_PKCS, &none(), &even).err(), Some(Error::KeyTypeInconsistent));

    assert_eq!(generate_key_pair(1024, None).err(), Some(Error::KeySizeRange));
    assert_eq!(generate_key_pair(2049, None).err(), Some(Error::KeySizeRange));
    assert_eq!(generate_key_pair(2048, Some(&[3])).err(), Some(Error::AttributeValueInvalid));
    let (public, private) = generate_key_pair(2048, Some(&[0, 1, 0, 1])).unwrap();
    assert_eq!(public.modulus.len(), 256);
    assert_eq!(bit_len(&public.modulus), 2048);
    assert_eq!(public.public_exponent, [1, 0, 1]);
    assert!(private.crt.is_some());
    check_private_key(&private).unwrap();
    let signature = sign(CKM_SHA256_RSA_PKCS, &none(), &private, b"m").unwrap();
    verify(CKM_SHA256_RSA_PKCS, &none(), &public, b"m", &signature).unwrap();
    let (public, _) = generate_key_pair(3072, None).unwrap();
    assert_eq!(bit_len(&public.modulus), 3072);
}
