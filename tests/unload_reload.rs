//! A host that unloads the module (`dlclose()`) without `C_Finalize` and loads it again gets a
//! module that starts clean (issue 15 item 6): `C_Initialize` answers `CKR_OK`, the token
//! opens with everything earlier rounds stored, and a host thread that used the module and
//! exits after the unloading does not crash the process (no destructor of the module's or
//! AWS-LC's runs in unmapped code). The plain path, `C_Finalize` then `dlclose()`, too.
//! Not with the `deadlock-detection` feature: that build keeps `-z nodelete` (build.rs).
#![allow(unsafe_code)]
#![cfg(not(feature = "deadlock-detection"))]

mod common;

use std::ptr::null_mut;
use std::sync::Arc;
use std::sync::mpsc::channel;

use common::raw::*;
use common::*;
use cryptoki_sys::*;

const ROUNDS: usize = 20;

/// Whether the module is mapped in this process.
fn mapped() -> bool {
    let path = module_path().canonicalize().unwrap();
    std::fs::read_to_string("/proc/self/maps").unwrap().contains(path.to_str().unwrap())
}

/// A digest and random bytes through the session: AWS-LC's per-thread state on this thread.
fn use_crypto(p: &Pkcs11, h: CK_SESSION_HANDLE) {
    let mut m = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
    let mut data = *b"abc";
    let mut digest = [0u8; 32];
    let mut len = ulen(digest.len());
    // SAFETY: live locals of the stated lengths.
    unsafe {
        assert_eq!(p.C_DigestInit(h, &mut m), CKR_OK);
        assert_eq!(p.C_Digest(h, data.as_mut_ptr(), ulen(3), digest.as_mut_ptr(), &mut len), CKR_OK);
    }
    assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf], "SHA-256 of abc");
    let mut random = [0u8; 32];
    // SAFETY: a live buffer of the stated length.
    assert_eq!(unsafe { p.C_GenerateRandom(h, random.as_mut_ptr(), ulen(32)) }, CKR_OK);
}

/// Makes a token AES key labelled `round` (the store and the audit trail written).
fn make_token_key(p: &Pkcs11, h: CK_SESSION_HANDLE) {
    let mut m = CK_MECHANISM { mechanism: CKM_AES_KEY_GEN, pParameter: null_mut(), ulParameterLen: 0 };
    let len: CK_ULONG = 32;
    let mut t = [attr(CKA_TOKEN, &TRUE), attr(CKA_VALUE_LEN, &len), attr_bytes(CKA_LABEL, b"round")];
    let mut key = 0;
    // SAFETY: the template's values are live locals.
    assert_eq!(unsafe { p.C_GenerateKey(h, &mut m, t.as_mut_ptr(), ulen(t.len()), &mut key) }, CKR_OK);
}

fn rounds(finalize_first: bool) {
    for round in 0..ROUNDS {
        let p = Arc::new(load_raw());
        // The module's own threads are forbidden: a host thread that waits on a lock one of
        // them holds gets parking_lot's per-thread record, which pins the library until that
        // thread exits (README, Unloading: not covered). Whether that happens is up to the
        // scheduler (under load it did), so the rounds leave it out and test what is promised.
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS,
            pReserved: null_mut(),
        };
        // SAFETY: points to a live CK_C_INITIALIZE_ARGS without callbacks.
        let rv = unsafe { p.C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()) };
        assert_eq!(rv, CKR_OK, "round {round}: C_Initialize after the library was unloaded");
        let slot = if round == 0 {
            init_token(&p)
        } else {
            *slot_list(&p).iter().find(|s| token_info(&p, **s).flags & CKF_TOKEN_INITIALIZED != 0).unwrap()
        };
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK, "round {round}");
        let made = find(&p, h, &mut [attr_bytes(CKA_LABEL, b"round")]);
        assert_eq!(made.len(), round, "round {round}: the keys of the earlier rounds are stored");
        make_token_key(&p, h);
        use_crypto(&p, h);

        // A second host thread uses the module, then outlives the unloading.
        let (used_tx, used_rx) = channel();
        let (exit_tx, exit_rx) = channel::<()>();
        let module = Arc::clone(&p);
        let thread = std::thread::spawn(move || {
            let h = open(&module, slot);
            use_crypto(&module, h);
            drop(module);
            used_tx.send(()).unwrap();
            exit_rx.recv().unwrap();
        });
        used_rx.recv().unwrap();
        if finalize_first {
            finalize(&p);
        }
        // The last reference: dlclose().
        drop(Arc::into_inner(p).expect("the thread gave its reference back"));
        assert!(!mapped(), "round {round}: dlclose() left the library mapped (and initialized)");
        exit_tx.send(()).unwrap();
        thread.join().expect("the host thread exits after the unloading without a crash");
    }
}

isolated_test!(
    fn unloaded_without_finalize_and_loaded_again_the_module_starts_clean() {
        rounds(false);
    }
);

isolated_test!(
    fn finalized_unloaded_and_loaded_again_the_module_starts_clean() {
        rounds(true);
    }
);
