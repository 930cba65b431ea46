//! A host that unloads the module (`dlclose()`) without `C_Finalize` and loads it again gets a
//! module that starts clean (issue 15 item 6): `C_Initialize` answers `CKR_OK`, the token
//! opens with everything earlier rounds stored, and a host thread that used the module and
//! exits after the unloading does not crash the process (no destructor of the module's or
//! AWS-LC's runs in unmapped code). The plain path, `C_Finalize` then `dlclose()`, too.
//!
//! The rounds run with the module's own threads allowed and auditing on, and make the host
//! wait for the audit-linking thread's locks: a wait on one of parking_lot's locks would give
//! the host's thread a record with a destructor that keeps the library mapped until that
//! thread exits (README, Unloading). Rounds with those threads forbidden check the other way
//! of linking records (in the calling thread). A host thread that waited in a blocked
//! `C_WaitForSlotEvent` and is still alive at the unloading must not keep the library either.
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

/// How many times each round makes the process's first login meet the linking thread.
const FIRST_LOGINS: usize = 4;

fn initialize_with(p: &Pkcs11, flags: CK_FLAGS, round: usize) {
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags,
        pReserved: null_mut(),
    };
    // SAFETY: points to a live CK_C_INITIALIZE_ARGS without callbacks.
    let rv = unsafe { p.C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()) };
    assert_eq!(rv, CKR_OK, "round {round}: C_Initialize (after an unloading or a C_Finalize)");
}

/// Makes this thread wait for the audit-linking thread's lock, `FIRST_LOGINS` times: a
/// refused login is the trail's first record, which opens the segment and starts its linking
/// thread, which at once prepares megabytes of the file ahead, holding the segment's linker
/// (milliseconds); the right PIN then brings the audit key, which `AuditLog::set_key` gives
/// to that linker: this thread waits for it. (Only the first login of a trail does: the key
/// stays after a logout, so each time the module is finalized and initialized again.)
fn first_logins_racing_the_linking_thread(p: &Pkcs11, slot: CK_SLOT_ID, flags: CK_FLAGS, round: usize) {
    for _ in 0..FIRST_LOGINS {
        let h = open(p, slot);
        assert_eq!(login(p, h, CKU_USER, "not-the-pin"), CKR_PIN_INCORRECT, "round {round}");
        assert_eq!(login(p, h, CKU_USER, USER_PIN), CKR_OK, "round {round}");
        finalize(p);
        initialize_with(p, flags, round);
    }
}

fn rounds(finalize_first: bool, module_threads: bool) {
    for round in 0..ROUNDS {
        let p = Arc::new(load_raw());
        let flags = if module_threads {
            CKF_OS_LOCKING_OK
        } else {
            // Records are then linked in the calling thread, at each record.
            CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS
        };
        initialize_with(&p, flags, round);
        let slot = if round == 0 {
            init_token(&p)
        } else {
            *slot_list(&p).iter().find(|s| token_info(&p, **s).flags & CKF_TOKEN_INITIALIZED != 0).unwrap()
        };
        if module_threads {
            first_logins_racing_the_linking_thread(&p, slot, flags, round);
        }
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
        rounds(false, true);
    }
);

isolated_test!(
    fn finalized_unloaded_and_loaded_again_the_module_starts_clean() {
        rounds(true, true);
    }
);

isolated_test!(
    fn without_the_module_threads_unloaded_and_loaded_again_the_module_starts_clean() {
        rounds(false, false);
    }
);

/// Whether thread `tid` of this process is blocked in a `futex` wait (a lock or condvar).
fn in_futex_wait(tid: libc::pid_t) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
    syscall.split_whitespace().next() == Some(&libc::SYS_futex.to_string())
}

isolated_test!(
    fn a_thread_that_waited_for_a_slot_event_does_not_keep_the_library_loaded() {
        // A blocked C_WaitForSlotEvent always sleeps on the module's condition variable; the
        // waiting thread, still alive at the unloading, must not keep the library mapped.
        let p = Arc::new(load_raw());
        initialize(&p);
        let module = Arc::clone(&p);
        let (tid_tx, tid_rx) = channel();
        let (woken_tx, woken_rx) = channel();
        let (exit_tx, exit_rx) = channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: no arguments.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let mut slot = 0;
            // SAFETY: an out-pointer to a live local; pReserved NULL.
            let rv = unsafe { module.C_WaitForSlotEvent(0, &mut slot, null_mut()) };
            drop(module);
            woken_tx.send(rv).unwrap();
            exit_rx.recv().unwrap();
        });
        let tid = tid_rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !in_futex_wait(tid) {
            assert!(std::time::Instant::now() < deadline, "the waiter never blocked");
            std::thread::yield_now();
        }
        finalize(&p);
        assert_eq!(woken_rx.recv().unwrap(), CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize ends the wait");
        drop(Arc::into_inner(p).expect("the waiter gave its reference back"));
        assert!(!mapped(), "dlclose() left the library mapped while the waiter lives");
        let again = load_raw();
        initialize(&again);
        finalize(&again);
        drop(again);
        exit_tx.send(()).unwrap();
        thread.join().expect("the waiter exits after the unloading without a crash");
    }
);
