//! The key service carries the core's calls: a client initializes a token, logs in,
//! generates keys, encrypts and signs through it, with the same answers as in-process.

mod service_support;

use cryptoki_sys::*;
use ecm_hsm::Error;
use ecm_hsm::mechanism::{GcmParams, Mechanism, MechanismParams};
use ecm_hsm::module::{CipherKind, OperationKind, Step};
use ecm_hsm::object::attribute::{decode_attribute_array, encode_attribute_array};
use ecm_hsm::object::{Attribute, AttributeRead};
use ecm_hsm::server::Limits;
use ecm_hsm::session::{Output, OutputBuffer};
use service_support::*;

fn gcm(iv: u8) -> Mechanism {
    Mechanism {
        kind: CKM_AES_GCM,
        params: MechanismParams::Gcm(GcmParams { iv: vec![iv; 12], aad: b"header".to_vec(), tag_bits: 128 }),
    }
}

fn aes_key(client: &ecm_hsm::service::Client, h: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let keygen = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
    let template = [
        attr_ulong(CKA_VALUE_LEN, 32),
        attr_bool(CKA_ENCRYPT, true),
        attr_bool(CKA_DECRYPT, true),
        attr_bool(CKA_SENSITIVE, true),
        Attribute::new(CKA_LABEL, b"aes-1".to_vec()),
    ];
    client.generate_key(h, &keygen, &template).unwrap()
}

fn bytes(output: Output) -> Vec<u8> {
    match output {
        Output::Bytes(b) => b.to_vec(),
        Output::Length(n) => panic!("a length ({n}), not bytes"),
    }
}

#[test]
fn aes_gcm_round_trip_through_the_service() {
    let (_service, client, h) = serving_a_user(Limits::default());
    let key = aes_key(&client, h);

    // The key's value stays in the service.
    let reads = client.get_attributes(h, key, &[CKA_VALUE, CKA_LABEL]).unwrap();
    assert_eq!(reads[0], AttributeRead::Sensitive);
    assert_eq!(reads[1], AttributeRead::Value(b"aes-1".to_vec().into()));

    let plaintext = b"the context data of tenant acme".to_vec();
    client.operation_init(h, OperationKind::Encrypt, Some(&gcm(1)), key).unwrap();
    // The length query and the short buffer behave as in-process: the operation stays.
    assert_eq!(
        client.cipher(h, CipherKind::Encrypt, Step::Single(&plaintext), OutputBuffer::Query).unwrap(),
        Output::Length(plaintext.len() + 16)
    );
    assert_eq!(
        client
            .cipher(h, CipherKind::Encrypt, Step::Single(&plaintext), OutputBuffer::Capacity(3))
            .unwrap_err(),
        Error::BufferTooSmall { needed: plaintext.len() + 16 }
    );
    let sealed = bytes(
        client
            .cipher(h, CipherKind::Encrypt, Step::Single(&plaintext), OutputBuffer::Capacity(4096))
            .unwrap(),
    );
    assert_ne!(&sealed[..plaintext.len()], &plaintext[..]);

    // The first decryption with this key and mechanism sends its init at once; later ones
    // hold it back for the first step: init, length query and step in one round trip.
    client.operation_init(h, OperationKind::Decrypt, Some(&gcm(1)), key).unwrap();
    let opened = bytes(
        client.cipher(h, CipherKind::Decrypt, Step::Single(&sealed), OutputBuffer::Capacity(4096)).unwrap(),
    );
    assert_eq!(opened, plaintext);
    let before = client.round_trips();
    client.operation_init(h, OperationKind::Decrypt, Some(&gcm(1)), key).unwrap();
    assert_eq!(
        client.cipher(h, CipherKind::Decrypt, Step::Single(&sealed), OutputBuffer::Query).unwrap(),
        Output::Length(plaintext.len())
    );
    let opened = bytes(
        client.cipher(h, CipherKind::Decrypt, Step::Single(&sealed), OutputBuffer::Capacity(4096)).unwrap(),
    );
    assert_eq!(opened, plaintext);
    assert_eq!(client.round_trips() - before, 1, "one round trip per decryption");

    // A tampered ciphertext fails with the same code as in-process, the init held back or not.
    let mut tampered = sealed.clone();
    tampered[0] ^= 1;
    client.operation_init(h, OperationKind::Decrypt, Some(&gcm(1)), key).unwrap();
    let refused =
        client.cipher(h, CipherKind::Decrypt, Step::Single(&tampered), OutputBuffer::Capacity(4096));
    assert_eq!(refused.unwrap_err().ck_rv(), CKR_ENCRYPTED_DATA_INVALID);
    // A key handle the service does not know is refused at the init, as in-process.
    assert_eq!(
        client.operation_init(h, OperationKind::Decrypt, Some(&gcm(1)), key + 1000).unwrap_err(),
        Error::KeyHandleInvalid
    );
    // No decryption was left active by the refused init.
    assert_eq!(
        client
            .cipher(h, CipherKind::Decrypt, Step::Single(&sealed), OutputBuffer::Capacity(4096))
            .unwrap_err(),
        Error::OperationNotInitialized
    );
}

/// A GCM mechanism with no additional data.
fn gcm_plain(iv: u8) -> Mechanism {
    Mechanism {
        kind: CKM_AES_GCM,
        params: MechanismParams::Gcm(GcmParams { iv: vec![iv; 12], aad: Vec::new(), tag_bits: 128 }),
    }
}

#[test]
fn a_held_init_refused_by_the_service_fails_its_step_and_begins_nothing() {
    let (service, client, h) = serving_a_user(Limits::default());
    let keygen = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
    let template = [
        attr_ulong(CKA_VALUE_LEN, 32),
        attr_bool(CKA_TOKEN, true),
        attr_bool(CKA_ENCRYPT, true),
        Attribute::new(CKA_LABEL, b"shared".to_vec()),
    ];
    let key = client.generate_key(h, &keygen, &template).unwrap();
    let data = [7u8; 100];
    let encrypt = |iv| {
        client.operation_init(h, OperationKind::Encrypt, Some(&gcm_plain(iv)), key)?;
        client.cipher(h, CipherKind::Encrypt, Step::Single(&data), OutputBuffer::Capacity(200))
    };
    encrypt(1).unwrap();
    // Proven once: the next init waits for its step. A length query is answered by the
    // client from GCM's rule, as the service would answer it.
    let before = client.round_trips();
    client.operation_init(h, OperationKind::Encrypt, Some(&gcm_plain(2)), key).unwrap();
    assert_eq!(
        client.cipher(h, CipherKind::Encrypt, Step::Single(&data), OutputBuffer::Query).unwrap(),
        Output::Length(116)
    );
    assert_eq!(client.round_trips(), before, "held init and length query stay in the client");

    // Another application (connection) destroys the key in between.
    let other = service.client();
    let o = other.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    other.login(o, CKU_USER, USER_PIN).unwrap();
    other.find_init(o, &[Attribute::new(CKA_LABEL, b"shared".to_vec())]).unwrap();
    let found = other.find_next(o, 2).unwrap();
    other.find_final(o).unwrap();
    assert_eq!(found.len(), 1);
    other.destroy_object(o, found[0]).unwrap();

    // The step reports the init's failure, and no operation began.
    let step = client.cipher(h, CipherKind::Encrypt, Step::Single(&data), OutputBuffer::Capacity(200));
    assert_eq!(step.unwrap_err(), Error::KeyHandleInvalid);
    assert_eq!(
        client.cipher(h, CipherKind::Encrypt, Step::Single(&data), OutputBuffer::Capacity(200)).unwrap_err(),
        Error::OperationNotInitialized
    );
    // And the next init is checked at once again.
    assert_eq!(encrypt(3).unwrap_err(), Error::KeyHandleInvalid);
}

#[test]
fn signature_lengths_are_learned_per_key_and_a_held_init_goes_before_a_login() {
    let (_service, client, h) = serving_a_user(Limits::default());
    let keygen = Mechanism { kind: CKM_EC_KEY_PAIR_GEN, params: MechanismParams::None };
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let public = [Attribute::new(CKA_EC_PARAMS, p256), attr_bool(CKA_VERIFY, true)];
    let private = [attr_bool(CKA_SIGN, true), attr_bool(CKA_SENSITIVE, true)];
    let (_, private) = client.generate_key_pair(h, &keygen, &public, &private).unwrap();
    let ecdsa = Mechanism { kind: CKM_ECDSA, params: MechanismParams::None };
    let digest = [0xd1u8; 32];
    // First signature: init, query and step each a round trip; the length is learned.
    client.operation_init(h, OperationKind::Sign, Some(&ecdsa), private).unwrap();
    assert_eq!(client.sign(h, Step::Single(&digest), OutputBuffer::Query).unwrap(), Output::Length(64));
    assert_eq!(bytes(client.sign(h, Step::Single(&digest), OutputBuffer::Capacity(64)).unwrap()).len(), 64);
    let before = client.round_trips();
    client.operation_init(h, OperationKind::Sign, Some(&ecdsa), private).unwrap();
    assert_eq!(client.sign(h, Step::Single(&digest), OutputBuffer::Query).unwrap(), Output::Length(64));
    assert_eq!(
        client.sign(h, Step::Single(&digest), OutputBuffer::Capacity(10)).unwrap_err(),
        Error::BufferTooSmall { needed: 64 }
    );
    assert_eq!(bytes(client.sign(h, Step::Single(&digest), OutputBuffer::Capacity(64)).unwrap()).len(), 64);
    assert_eq!(client.round_trips() - before, 2, "the short buffer is the service's to answer");

    // A held init is sent before a call that may change the login, in the order made: the
    // logout then ends nothing the application did not see begin.
    client.operation_init(h, OperationKind::Sign, Some(&ecdsa), private).unwrap();
    let before = client.round_trips();
    client.logout(h).unwrap();
    assert_eq!(client.round_trips() - before, 2, "the held init, then the logout");
}

#[test]
fn rsa_sign_and_verify_through_the_service() {
    let (_service, client, h) = serving_a_user(Limits::default());
    let keygen = Mechanism { kind: CKM_RSA_PKCS_KEY_PAIR_GEN, params: MechanismParams::None };
    let public = [
        attr_ulong(CKA_MODULUS_BITS, 2048),
        Attribute::new(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        attr_bool(CKA_VERIFY, true),
    ];
    let private = [attr_bool(CKA_SIGN, true), attr_bool(CKA_SENSITIVE, true)];
    let (public, private) = client.generate_key_pair(h, &keygen, &public, &private).unwrap();
    let mechanism = Mechanism { kind: CKM_SHA256_RSA_PKCS, params: MechanismParams::None };

    client.operation_init(h, OperationKind::Sign, Some(&mechanism), private).unwrap();
    let signature = bytes(client.sign(h, Step::Single(b"message"), OutputBuffer::Capacity(512)).unwrap());
    assert_eq!(signature.len(), 256);

    client.operation_init(h, OperationKind::Verify, Some(&mechanism), public).unwrap();
    client.verify(h, Step::Single(b"message"), &signature).unwrap();
    client.operation_init(h, OperationKind::Verify, Some(&mechanism), public).unwrap();
    assert_eq!(client.verify(h, Step::Single(b"massage"), &signature).unwrap_err(), Error::SignatureInvalid);

    // The private exponent never leaves the service.
    let reads = client.get_attributes(h, private, &[CKA_PRIVATE_EXPONENT]).unwrap();
    assert_eq!(reads, vec![AttributeRead::Sensitive]);
}

#[test]
fn attribute_arrays_travel_typed_and_come_back_whole() {
    let (_service, client, h) = serving_a_user(Limits::default());
    let imposed = vec![attr_ulong(CKA_CLASS, CKO_SECRET_KEY), attr_bool(CKA_EXTRACTABLE, false)];
    let keygen = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
    let template = [
        attr_ulong(CKA_VALUE_LEN, 32),
        attr_bool(CKA_UNWRAP, true),
        attr_bool(CKA_WRAP, true),
        Attribute::new(CKA_UNWRAP_TEMPLATE, encode_attribute_array(&imposed)),
    ];
    let key = client.generate_key(h, &keygen, &template).unwrap();
    let reads = client.get_attributes(h, key, &[CKA_UNWRAP_TEMPLATE, CKA_MODULUS]).unwrap();
    match &reads[0] {
        AttributeRead::Value(v) => assert_eq!(decode_attribute_array(v).unwrap(), imposed),
        other => panic!("{other:?}"),
    }
    assert_eq!(reads[1], AttributeRead::Invalid);

    // Find by label through the service.
    client.set_attributes(h, key, &[Attribute::new(CKA_LABEL, b"wrapper".to_vec())]).unwrap();
    client.find_init(h, &[Attribute::new(CKA_LABEL, b"wrapper".to_vec())]).unwrap();
    assert_eq!(client.find_next(h, 10).unwrap(), vec![key]);
    client.find_final(h).unwrap();
}

#[test]
fn errors_keep_their_codes_and_a_session_limit_holds() {
    let limits = Limits { max_sessions: 2, ..Limits::default() };
    let (_service, client, h) = serving_a_user(limits);
    assert_eq!(client.login(h, CKU_USER, USER_PIN).unwrap_err(), Error::UserAlreadyLoggedIn);
    let second = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(client.open_session(0, CKF_SERIAL_SESSION).unwrap_err().ck_rv(), CKR_SESSION_COUNT);
    client.close_session(second).unwrap();
    let third = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_ne!(third, second);
    let (slot, view) = client.session_view(third).unwrap();
    assert_eq!((slot, view.read_write, view.login), (0, false, ecm_hsm::policy::LoginState::User));
    // A handle the client never had is refused locally, one of the service as the core does.
    assert_eq!(client.close_session(12345).unwrap_err(), Error::SessionHandleInvalid);
    assert_eq!(client.close_session(second).unwrap_err(), Error::SessionHandleInvalid);
    let mut random = [0u8; 32];
    client.generate_random(h, &mut random).unwrap();
    assert_ne!(random, [0u8; 32]);
    assert_eq!(client.seed_random(h).unwrap_err(), Error::RandomSeedNotSupported);
}

#[test]
fn the_trail_written_by_several_connections_verifies() {
    let service = Service::start(Limits::default());
    let first = service.client();
    let h1 = token_with_user(&first);
    let second = service.client();
    let h2 = second.open_session(0, CKF_SERIAL_SESSION).unwrap();
    second.login(h2, CKU_USER, USER_PIN).unwrap();
    // Interleaved work of two connections (two modules of one process) on one token.
    for _ in 0..3 {
        aes_key(&first, h1);
        aes_key(&second, h2);
    }
    drop(first);
    drop(second);
    service.wait_connections(0);

    let config = ecm_hsm::config::Config::from_toml(
        service.dir.join("tokens"),
        "test_settings = true\npin_kdf_iterations = 1000",
        std::path::Path::new("test"),
    )
    .unwrap();
    let module = ecm_hsm::module::Module::new(config).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    module.login(h, CKU_USER, USER_PIN).unwrap();
    let key = module.audit_key(h).unwrap();
    let path = ecm_hsm::audit::path_for(&service.dir.join("tokens"), 0);
    let report = ecm_hsm::audit::verify_trail(&path, Some(&key), None).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    // init_token, login_so, init_pin, logout, login x2, generate x6 at least.
    assert!(report.records >= 12, "{} records", report.records);
}
