//! `libecm_hsm.so` in client mode (issue 14 item 1): with a `service` address in its
//! settings, the module loaded by an application sends every operation to the key service,
//! answers argument errors itself with the in-process codes, and keeps no token of its own.
#![allow(unsafe_code)]

#[macro_use]
mod common;
mod service_support;

use common::raw;
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki_sys::*;
use ecm_hsm::server::Limits;

/// Starts a service in this (isolated) process on a directory of its own and points the
/// application's settings at it.
fn service_for_this_process() -> service_support::Service {
    let service = service_support::Service::start(Limits::default());
    write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", service.socket.display()));
    service
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

isolated_test!(
    fn keys_live_in_the_service_and_work_through_the_c_abi() {
        let service = service_for_this_process();
        let (p, slot) = load_with_token();
        let session = user_session(&p, slot);

        // The token is the service's: its directory holds it, the application's holds only
        // the settings file.
        assert!(files_in(&service.dir.join("tokens")).iter().any(|f| f.ends_with(".sqlite")));
        assert_eq!(files_in(&token_dir()), vec!["ecm-hsm.toml".to_string()]);
        let info = p.get_slot_info(slot).unwrap();
        assert!(info.slot_description().ends_with("via the key service"), "{:?}", info.slot_description());

        let key = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Sensitive(true),
                    Attribute::Label(b"svc-aes".to_vec()),
                ],
            )
            .unwrap();
        // Sensitive stays sensitive through the client: no value comes back.
        let read = session.get_attributes(key, &[cryptoki::object::AttributeType::Value]).unwrap();
        assert!(read.is_empty(), "a sensitive value was returned: {read:?}");

        let mut iv = [7u8; 12];
        let plaintext = b"tenant data through the service".to_vec();
        let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
        let sealed = session.encrypt(&gcm, key, &plaintext).unwrap();
        assert_eq!(sealed.len(), plaintext.len() + 16);
        assert_eq!(session.decrypt(&gcm, key, &sealed).unwrap(), plaintext);

        // Found by label through the service.
        let found = session.find_objects(&[Attribute::Label(b"svc-aes".to_vec())]).unwrap();
        assert_eq!(found, vec![key]);

        // An EC key pair signs and verifies.
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(hex("06082a8648ce3d030107")), Attribute::Verify(true)],
                &[Attribute::Sign(true), Attribute::Private(true)],
            )
            .unwrap();
        let signature = session.sign(&Mechanism::Ecdsa, private, &[0x5a; 32]).unwrap();
        assert_eq!(signature.len(), 64);
        session.verify(&Mechanism::Ecdsa, public, &[0x5a; 32], &signature).unwrap();
        expect_rv(
            session.verify(&Mechanism::Ecdsa, public, &[0x5b; 32], &signature),
            RvError::SignatureInvalid,
        );
        let class = session.get_attributes(private, &[cryptoki::object::AttributeType::Class]).unwrap();
        assert_eq!(class, vec![Attribute::Class(ObjectClass::PRIVATE_KEY)]);
        drop(service);
    }
);

/// The same steps answer the same codes in both modes (run by the two tests below).
fn argument_errors_and_buffer_sizes() {
    let (p, _slot, h) = raw::user_setup();
    let key = raw::aes_key(&p, h, &[9; 32], true);
    let mut mechanism =
        CK_MECHANISM { mechanism: CKM_AES_ECB, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
    let encrypt_init = |h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM| {
        // SAFETY: `m` is NULL or a live local mechanism without parameters.
        unsafe { p.C_EncryptInit(h, m, key) }
    };
    let mut data = [0u8; 32];
    let mut out = [0u8; 32];
    let (data, out) = (data.as_mut_ptr(), out.as_mut_ptr());
    let encrypt = |with_output: bool, len: &mut CK_ULONG| {
        let out = if with_output { out } else { std::ptr::null_mut() };
        // SAFETY: live locals of 32 bytes each; `len` is at most 32.
        unsafe { p.C_Encrypt(h, data, raw::ulen(32), out, len) }
    };
    assert_eq!(encrypt_init(h, &mut mechanism), CKR_OK);
    // Length query, then a short buffer (the needed length comes back), then the data.
    let mut len: CK_ULONG = 0;
    assert_eq!(encrypt(false, &mut len), CKR_OK);
    assert_eq!(len, 32);
    len = 16;
    assert_eq!(encrypt(true, &mut len), CKR_BUFFER_TOO_SMALL);
    assert_eq!(len, 32);
    assert_eq!(encrypt(true, &mut len), CKR_OK);
    // The operation has ended: a further step answers as in-process.
    assert_eq!(encrypt(true, &mut len), CKR_OPERATION_NOT_INITIALIZED);
    // A handle the service never gave is refused; a NULL input is refused before the
    // service is asked.
    assert_eq!(encrypt_init(0x1234, &mut mechanism), CKR_SESSION_HANDLE_INVALID);
    // SAFETY: NULL pointers are what is tested; the module checks them.
    assert_eq!(unsafe { p.C_Encrypt(h, std::ptr::null_mut(), 5, out, &mut len) }, CKR_ARGUMENTS_BAD);
    assert_eq!(encrypt_init(h, &mut mechanism), CKR_OK);
    // SAFETY: a NULL length pointer is what is tested; the module checks it.
    let rv = unsafe { p.C_Encrypt(h, data, 32, out, std::ptr::null_mut()) };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
    // As in-process, the failed step ended the operation.
    len = 32;
    assert_eq!(encrypt(true, &mut len), CKR_OPERATION_NOT_INITIALIZED);
    // A NULL mechanism ends the operation whatever key handle comes with it: none is read.
    assert_eq!(encrypt_init(h, &mut mechanism), CKR_OK);
    // SAFETY: a NULL mechanism is what is tested.
    assert_eq!(unsafe { p.C_EncryptInit(h, std::ptr::null_mut(), CK_INVALID_HANDLE) }, CKR_OK);
    assert_eq!(encrypt(true, &mut len), CKR_OPERATION_NOT_INITIALIZED);
}

isolated_test!(
    fn argument_errors_and_buffer_sizes_in_process() {
        argument_errors_and_buffer_sizes();
    }
);

isolated_test!(
    fn argument_errors_and_buffer_sizes_in_client_mode() {
        let _service = service_for_this_process();
        argument_errors_and_buffer_sizes();
    }
);

isolated_test!(
    fn without_its_service_the_client_answers_device_error_and_holds_nothing() {
        // A service address where nothing listens: the library starts (it connects at its
        // first call), answers what needs no token, and refuses the rest with a device error
        // rather than falling back to a token of its own.
        let nowhere = token_dir().join("no-service.sock");
        write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", nowhere.display()));
        let p = raw::load_raw();
        raw::initialize(&p);
        assert_eq!(raw::get_info(&p), CKR_OK);
        let mut count: CK_ULONG = 0;
        // SAFETY: a NULL list with a live count asks for the count.
        let rv = unsafe { p.C_GetSlotList(CK_FALSE, std::ptr::null_mut(), &mut count) };
        assert_eq!(rv, CKR_DEVICE_ERROR);
        assert_eq!(files_in(&token_dir()), vec!["ecm-hsm.toml".to_string()]);
        raw::finalize(&p);
    }
);

isolated_test!(
    fn a_session_handle_of_before_c_finalize_never_reaches_a_new_session() {
        let _service = service_for_this_process();
        let (p, slot, h) = raw::user_setup();
        raw::finalize(&p);
        raw::initialize(&p);
        // The new connection's first session bears the same number in the service as the
        // old one did; the old handle must not reach it.
        let new = raw::open(&p, slot);
        assert_ne!(new, h);
        let mut info = CK_SESSION_INFO::default();
        // SAFETY: out-pointer to a live local.
        assert_eq!(unsafe { p.C_GetSessionInfo(h, &mut info) }, CKR_SESSION_HANDLE_INVALID);
        assert_eq!(raw::session_info(&p, new).slotID, slot);
    }
);
