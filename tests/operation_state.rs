//! Operation and login state as clients take it for granted (issue 15 item 6), through the
//! raw C ABI: `C_SessionCancel` ends a digest, `C_LoginUser` without a name is `C_Login`,
//! and `C_WaitForSlotEvent` reports token changes, answers `CKR_NO_EVENT` when asked not to
//! block, and returns from a blocking wait at `C_Finalize`.
#![allow(unsafe_code)]

mod common;

use std::ptr::null_mut;
use std::sync::mpsc;
use std::time::Duration;

use common::raw::*;
use common::*;
use cryptoki_sys::*;

/// Long enough for any loaded machine; a wait that exceeds it is a hang.
const DEADLINE: Duration = Duration::from_secs(120);

fn digest_init(p: &Pkcs11, h: CK_SESSION_HANDLE) -> CK_RV {
    let mut m = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
    // SAFETY: a live mechanism without parameter.
    unsafe { p.C_DigestInit(h, &mut m) }
}

fn wait_event(p: &Pkcs11, flags: CK_FLAGS) -> (CK_RV, CK_SLOT_ID) {
    let mut slot: CK_SLOT_ID = 0xdead;
    // SAFETY: out-pointer to a live local; pReserved NULL.
    let rv = unsafe { p.C_WaitForSlotEvent(flags, &mut slot, null_mut()) };
    (rv, slot)
}

/// Every event pending now, in order, until `CKR_NO_EVENT`.
fn pending_events(p: &Pkcs11) -> Vec<CK_SLOT_ID> {
    let mut events = Vec::new();
    loop {
        match wait_event(p, CKF_DONT_BLOCK) {
            (CKR_OK, slot) => events.push(slot),
            (CKR_NO_EVENT, slot) => {
                assert_eq!(slot, 0xdead, "no slot is written without an event");
                return events;
            }
            (rv, _) => panic!("C_WaitForSlotEvent returned {rv:#x}"),
        }
        assert!(events.len() < 100, "events never run out");
    }
}

isolated_test!(
    fn session_cancel_ends_a_digest() {
        let (p, slot) = setup();
        let h = open(&p, slot);
        assert_eq!(digest_init(&p, h), CKR_OK);
        assert_eq!(digest_init(&p, h), CKR_OPERATION_ACTIVE);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(h, CKF_DIGEST) }, CKR_OK);
        let mut out = [0u8; 32];
        let mut out_len = ulen(out.len());
        // SAFETY: the output holds `out_len` bytes.
        let rv = unsafe { p.C_DigestFinal(h, out.as_mut_ptr(), &mut out_len) };
        assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED, "the digest was cancelled");
        assert_eq!(digest_init(&p, h), CKR_OK, "a new digest may begin");
        // Cancelling another kind leaves the digest alone.
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_SessionCancel(h, CKF_ENCRYPT) }, CKR_OK);
        assert_eq!(digest_init(&p, h), CKR_OPERATION_ACTIVE);
    }
);

isolated_test!(
    fn login_user_without_a_name_is_login() {
        let (p, slot) = setup();
        let h = open(&p, slot);
        let login_user = |pin: &str, name: Option<&mut [u8]>| {
            let mut pin = pin.as_bytes().to_vec();
            let (name_ptr, name_len) = match name {
                Some(n) => (n.as_mut_ptr(), ulen(n.len())),
                None => (null_mut(), 0),
            };
            // SAFETY: the PIN and the name (NULL or empty) hold their stated lengths.
            unsafe { p.C_LoginUser(h, CKU_USER, pin.as_mut_ptr(), ulen(pin.len()), name_ptr, name_len) }
        };
        assert_eq!(login_user("wrong-pin-1", None), CKR_PIN_INCORRECT);
        assert_eq!(session_info(&p, h).state, CKS_RW_PUBLIC_SESSION, "a wrong PIN logs nobody in");
        assert_eq!(login_user(USER_PIN, None), CKR_OK, "NULL name: the user PIN");
        assert_eq!(session_info(&p, h).state, CKS_RW_USER_FUNCTIONS);
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_Logout(h) }, CKR_OK);
        let mut empty: [u8; 0] = [];
        assert_eq!(login_user(USER_PIN, Some(&mut empty)), CKR_OK, "empty name: the user PIN");
        assert_eq!(session_info(&p, h).state, CKS_RW_USER_FUNCTIONS);
    }
);

isolated_test!(
    fn wait_for_slot_event_reports_changes_and_does_not_block_when_told() {
        let p = load_raw();
        initialize(&p);
        // Bad arguments.
        // SAFETY: NULL slot pointer, which must be refused without a write.
        let rv = unsafe { p.C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        let mut slot: CK_SLOT_ID = 0;
        let mut reserved = 0u8;
        // SAFETY: pReserved must be NULL; the module refuses without reading it.
        let rv =
            unsafe { p.C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, &mut reserved as *mut u8 as *mut _) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        // Nothing changed since C_Initialize.
        assert_eq!(pending_events(&p), Vec::<CK_SLOT_ID>::new());
        // A token initialized in slot 0 (and the free slot 1 that appears with it).
        let first = init_token(&p);
        let events = pending_events(&p);
        assert!(events.contains(&first), "{events:?}");
        assert!(events.iter().all(|s| slot_list(&p).contains(s)), "{events:?}");
        assert_eq!(pending_events(&p), Vec::<CK_SLOT_ID>::new(), "each event is reported once");

        // A blocking wait returns with the next change, made while it waits or before.
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let p = &p;
            scope.spawn(move || tx.send(wait_event(p, 0)).unwrap());
            let free =
                *slot_list(p).iter().find(|s| token_info(p, **s).flags & CKF_TOKEN_INITIALIZED == 0).unwrap();
            let mut so = SO_PIN.as_bytes().to_vec();
            let mut label = padded_label("second");
            // SAFETY: the PIN holds its stated length and the label 32 bytes.
            let rv = unsafe { p.C_InitToken(free, so.as_mut_ptr(), ulen(so.len()), label.as_mut_ptr()) };
            assert_eq!(rv, CKR_OK);
            let (rv, slot) = rx.recv_timeout(DEADLINE).expect("the blocking wait returned");
            assert_eq!(rv, CKR_OK);
            assert!(slot_list(p).contains(&slot));
        });
        pending_events(&p);

        // A blocking wait with nothing to report returns at C_Finalize.
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let p = &p;
            scope.spawn(move || tx.send(wait_event(p, 0)).unwrap());
            finalize(p);
            let (rv, _) = rx.recv_timeout(DEADLINE).expect("the blocking wait returned");
            assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
        });
    }
);
