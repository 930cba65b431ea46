//! Slots, tokens, sessions, login and PINs, through the `cryptoki` client.
//!
//! Every test runs in its own process with a fresh token directory (see `isolated_test!`), so
//! the module starts with one free slot each time. Refusals are checked as carefully as
//! successes: after each one the test verifies that nothing changed (login state, token flags,
//! objects, and that the PINs still work).
//!
//! Not expressible through `cryptoki` 0.12 and therefore not tested here: `C_OpenSession`
//! without `CKF_SERIAL_SESSION` (the crate always sets it) and `C_LoginUser` (the crate has no
//! call for it).
mod common;
use common::objects::find_label;
use common::*;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo};

fn state(s: &Session) -> SessionState {
    s.get_session_info().expect("C_GetSessionInfo").session_state()
}

fn token_info(p: &Pkcs11, slot: Slot) -> TokenInfo {
    p.get_token_info(slot).expect("C_GetTokenInfo")
}

fn slot_ids(p: &Pkcs11) -> Vec<u64> {
    p.get_all_slots().unwrap().iter().map(Slot::id).collect()
}

fn slot(id: u64) -> Slot {
    Slot::try_from(id).unwrap()
}

/// The user logs in on a fresh session and out again: the PIN works.
#[track_caller]
fn user_pin_works(p: &Pkcs11, slot: Slot, user_pin: &str) {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin(user_pin))).expect("user PIN should work");
    s.logout().unwrap();
}

#[track_caller]
fn so_pin_works(p: &Pkcs11, slot: Slot, so_pin: &str) {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(so_pin))).expect("SO PIN should work");
    s.logout().unwrap();
}

/// A public token data object labelled `label`.
fn create_public_token_object(s: &Session, label: &str) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(b"payload".to_vec()),
    ])
    .unwrap()
}

/// User PIN flags as a tuple (count low, final try, locked).
fn user_pin_flags(info: &TokenInfo) -> (bool, bool, bool) {
    (info.user_pin_count_low(), info.user_pin_final_try(), info.user_pin_locked())
}

fn so_pin_flags(info: &TokenInfo) -> (bool, bool, bool) {
    (info.so_pin_count_low(), info.so_pin_final_try(), info.so_pin_locked())
}

// ---------------------------------------------------------------------------------------------
// Library, slots and tokens
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn library_info_names_version_3_0_the_manufacturer_and_this_build() {
        let p = load();
        let info = p.get_library_info().unwrap();
        assert_eq!((info.cryptoki_version().major(), info.cryptoki_version().minor()), (3, 0));
        assert_eq!(info.manufacturer_id(), "ecm-hsm project");
        // The library's version is Cargo.toml's, and its description names the commit.
        let version = info.library_version();
        let cargo_version = format!("{}.{}.", version.major(), version.minor());
        assert!(env!("CARGO_PKG_VERSION").starts_with(&cargo_version));
        let description = format!("ecm-hsm {}", env!("CARGO_PKG_VERSION"));
        assert!(info.library_description().starts_with(&description));
        assert_eq!(info.library_description(), ecm_hsm::version::library_description());
    }
);

isolated_test!(
    fn empty_directory_has_one_free_uninitialized_slot() {
        let p = load();
        assert_eq!(slot_ids(&p), vec![0]);
        let s0 = slot(0);
        let slot_info = p.get_slot_info(s0).unwrap();
        assert!(slot_info.token_present());
        assert_eq!(slot_info.manufacturer_id(), "ecm-hsm project");
        let info = token_info(&p, s0);
        assert!(!info.token_initialized());
        assert!(!info.user_pin_initialized());
        assert!(p.get_slots_with_initialized_token().unwrap().is_empty());
        // Nothing can be done with a token that does not exist yet.
        expect_rv(p.open_ro_session(s0), RvError::TokenNotRecognized);
        expect_rv(p.open_rw_session(s0), RvError::TokenNotRecognized);
        // Looking did not create anything.
        assert_eq!(slot_ids(&p), vec![0]);
        assert!(!token_info(&p, s0).token_initialized());
    }
);

isolated_test!(
    fn init_token_makes_a_token_and_a_new_free_slot() {
        let p = load();
        p.init_token(slot(0), &pin(SO_PIN), "first token").unwrap();
        let info = token_info(&p, slot(0));
        assert_eq!(info.label(), "first token");
        assert!(info.token_initialized());
        assert!(info.login_required());
        assert!(info.rng());
        assert!(!info.user_pin_initialized());
        assert_eq!(user_pin_flags(&info), (false, false, false));
        assert_eq!(so_pin_flags(&info), (false, false, false));
        assert_eq!(info.manufacturer_id(), "ecm-hsm project");
        assert!(!info.serial_number().is_empty());

        // A new free slot appears after the token.
        assert_eq!(slot_ids(&p), vec![0, 1]);
        assert!(!token_info(&p, slot(1)).token_initialized());
        expect_rv(p.open_rw_session(slot(1)), RvError::TokenNotRecognized);
        let initialized: Vec<u64> =
            p.get_slots_with_initialized_token().unwrap().iter().map(Slot::id).collect();
        assert_eq!(initialized, vec![0]);

        // Initializing the free slot makes a second, distinct token and yet another free slot.
        p.init_token(slot(1), &pin("other-so-pin"), "second token").unwrap();
        assert_eq!(slot_ids(&p), vec![0, 1, 2]);
        let second = token_info(&p, slot(1));
        assert_eq!(second.label(), "second token");
        assert_ne!(second.serial_number(), info.serial_number());
        assert_eq!(token_info(&p, slot(0)).label(), "first token");
        // Each token has its own SO PIN.
        so_pin_works(&p, slot(0), SO_PIN);
        so_pin_works(&p, slot(1), "other-so-pin");
        let s = p.open_rw_session(slot(1)).unwrap();
        expect_rv(s.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinIncorrect);
    }
);

isolated_test!(
    fn init_token_with_a_too_short_so_pin_is_refused() {
        let p = load();
        expect_rv(p.init_token(slot(0), &pin("123"), LABEL), RvError::PinIncorrect);
        assert!(!token_info(&p, slot(0)).token_initialized());
        assert_eq!(slot_ids(&p), vec![0]);
        // A valid PIN still works afterwards.
        p.init_token(slot(0), &pin("1234"), LABEL).unwrap();
        assert!(token_info(&p, slot(0)).token_initialized());
    }
);

isolated_test!(
    fn invalid_slot_ids_are_refused() {
        let p = load();
        let bad = slot(99);
        expect_rv(p.get_slot_info(bad), RvError::SlotIdInvalid);
        expect_rv(p.get_token_info(bad), RvError::SlotIdInvalid);
        expect_rv(p.open_ro_session(bad), RvError::SlotIdInvalid);
        expect_rv(p.open_rw_session(bad), RvError::SlotIdInvalid);
        expect_rv(p.init_token(bad, &pin(SO_PIN), LABEL), RvError::SlotIdInvalid);
        expect_rv(p.get_mechanism_list(bad), RvError::SlotIdInvalid);
        // Nothing was created by the refusals.
        assert_eq!(slot_ids(&p), vec![0]);
    }
);

isolated_test!(
    fn token_info_reports_pin_limits_and_session_counts() {
        let (p, slot) = load_with_token();
        let info = token_info(&p, slot);
        assert_eq!((info.min_pin_length(), info.max_pin_length()), (4, 255));
        assert!(info.user_pin_initialized());
        assert_eq!((info.session_count(), info.rw_session_count()), (Some(0), Some(0)));
        let ro = p.open_ro_session(slot).unwrap();
        let rw = p.open_rw_session(slot).unwrap();
        let rw2 = p.open_rw_session(slot).unwrap();
        let info = token_info(&p, slot);
        assert_eq!((info.session_count(), info.rw_session_count()), (Some(3), Some(2)));
        drop(rw2);
        drop(ro);
        let info = token_info(&p, slot);
        assert_eq!((info.session_count(), info.rw_session_count()), (Some(1), Some(1)));
        drop(rw);
        assert_eq!(token_info(&p, slot).session_count(), Some(0));
    }
);

isolated_test!(
    fn tokens_keep_their_slots_and_token_objects_across_reinitialization() {
        let (p, s0) = load_with_token();
        p.init_token(slot(1), &pin("so-of-slot-1"), "slot one").unwrap();
        let serial0 = token_info(&p, s0).serial_number().to_string();
        {
            let s = user_session(&p, s0);
            create_public_token_object(&s, "public token object");
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"private token object".to_vec()),
                Attribute::Value(b"secret payload".to_vec()),
            ])
            .unwrap();
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(false),
                Attribute::Label(b"session object".to_vec()),
            ])
            .unwrap();
            assert_eq!(find_label(&s, "session object").len(), 1);
        }

        reinitialize(&p);

        assert_eq!(slot_ids(&p), vec![0, 1, 2]);
        let info0 = token_info(&p, s0);
        assert_eq!(info0.label(), LABEL);
        assert_eq!(info0.serial_number(), serial0);
        assert!(info0.user_pin_initialized());
        assert_eq!(token_info(&p, slot(1)).label(), "slot one");
        assert!(!token_info(&p, slot(2)).token_initialized());

        let s = p.open_rw_session(s0).unwrap();
        // Public token objects are there before login; the private one is not visible yet.
        assert_eq!(find_label(&s, "public token object").len(), 1);
        assert!(find_label(&s, "private token object").is_empty());
        assert!(find_label(&s, "session object").is_empty());
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let private = find_label(&s, "private token object");
        assert_eq!(private.len(), 1);
        let value = s.get_attributes(private[0], &[AttributeType::Value]).unwrap();
        assert_eq!(value, vec![Attribute::Value(b"secret payload".to_vec())]);
        // Session objects did not survive.
        assert!(find_label(&s, "session object").is_empty());
        assert_eq!(s.find_objects(&[]).unwrap().len(), 2);
        // The other token's SO PIN still works in its own slot.
        drop(s);
        so_pin_works(&p, slot(1), "so-of-slot-1");
    }
);

isolated_test!(
    fn reinit_token_with_the_right_so_pin_wipes_objects_and_the_user_pin() {
        let (p, slot) = load_with_token();
        let old = {
            let s = user_session(&p, slot);
            s.logout().unwrap();
            // Two wrong user PINs: the count goes with the user PIN.
            for _ in 0..2 {
                expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
            }
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            create_public_token_object(&s, "doomed")
        };
        {
            let s = p.open_rw_session(slot).unwrap();
            expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        }
        assert!(token_info(&p, slot).user_pin_count_low());
        p.init_token(slot, &pin(SO_PIN), "relabeled").unwrap();
        let info = token_info(&p, slot);
        assert_eq!(info.label(), "relabeled");
        assert!(info.token_initialized());
        assert!(!info.user_pin_initialized());
        assert_eq!(user_pin_flags(&info), (false, false, false));
        assert_eq!(so_pin_flags(&info), (false, false, false));
        // Re-initializing an existing token does not take a new slot.
        assert_eq!(slot_ids(&p), vec![0, 1]);

        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserPinNotInitialized);
        assert!(s.find_objects(&[]).unwrap().is_empty());
        expect_rv(s.get_attributes(old, &[AttributeType::Label]), RvError::ObjectHandleInvalid);
        // The SO PIN given to C_InitToken is the SO PIN now.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin("fresh-user-pin")).unwrap();
        s.logout().unwrap();
        drop(s);
        user_pin_works(&p, slot, "fresh-user-pin");
    }
);

isolated_test!(
    fn reinit_token_with_a_wrong_so_pin_changes_nothing() {
        let (p, slot) = load_with_token();
        let object = {
            let s = user_session(&p, slot);
            create_public_token_object(&s, "keeper")
        };
        expect_rv(p.init_token(slot, &pin("wrong-so-pin"), "hijacked"), RvError::PinIncorrect);
        let info = token_info(&p, slot);
        assert_eq!(info.label(), LABEL);
        assert!(info.user_pin_initialized());
        // The wrong SO PIN counts as a failed SO authentication.
        assert!(info.so_pin_count_low());
        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(find_label(&s, "keeper"), vec![object]);
        drop(s);
        user_pin_works(&p, slot, USER_PIN);
        so_pin_works(&p, slot, SO_PIN);
        assert!(!token_info(&p, slot).so_pin_count_low());
    }
);

isolated_test!(
    fn reinit_token_with_a_session_open_is_refused() {
        let (p, slot) = load_with_token();
        let s = p.open_ro_session(slot).unwrap();
        let object = {
            let rw = p.open_rw_session(slot).unwrap();
            create_public_token_object(&rw, "survivor")
        };
        expect_rv(p.init_token(slot, &pin(SO_PIN), "relabeled"), RvError::SessionExists);
        // The session is intact and so is the token.
        assert_eq!(state(&s), SessionState::RoPublic);
        assert_eq!(find_label(&s, "survivor"), vec![object]);
        let info = token_info(&p, slot);
        assert_eq!(info.label(), LABEL);
        assert!(info.user_pin_initialized());
        drop(s);
        // Without sessions, it works.
        p.init_token(slot, &pin(SO_PIN), "relabeled").unwrap();
        assert_eq!(token_info(&p, slot).label(), "relabeled");
    }
);

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn stale_session_handles_are_invalid() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(s.get_session_info().unwrap().slot_id(), slot);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // A new module instance knows no sessions (and no login); the old handle is refused.
        reinitialize(&p);
        expect_rv(s.get_session_info(), RvError::SessionHandleInvalid);
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::SessionHandleInvalid);
        expect_rv(s.logout(), RvError::SessionHandleInvalid);
        expect_rv(s.find_objects(&[]), RvError::SessionHandleInvalid);
        expect_rv(s.generate_random_vec(8), RvError::SessionHandleInvalid);
        expect_rv(s.close(), RvError::SessionHandleInvalid);
        // Nobody is logged in: neither the old login nor the refused one counts.
        let fresh = p.open_rw_session(slot).unwrap();
        assert_eq!(state(&fresh), SessionState::RwPublic);
    }
);

isolated_test!(
    fn session_info_reports_state_slot_and_flags() {
        let (p, slot) = load_with_token();
        let ro = p.open_ro_session(slot).unwrap();
        let rw = p.open_rw_session(slot).unwrap();
        let info = ro.get_session_info().unwrap();
        assert_eq!(
            (info.slot_id(), info.read_write(), info.session_state()),
            (slot, false, SessionState::RoPublic)
        );
        let info = rw.get_session_info().unwrap();
        assert_eq!(
            (info.slot_id(), info.read_write(), info.session_state()),
            (slot, true, SessionState::RwPublic)
        );

        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(state(&ro), SessionState::RoUser);
        assert_eq!(state(&rw), SessionState::RwUser);
        rw.logout().unwrap();
        assert_eq!(state(&ro), SessionState::RoPublic);
        assert_eq!(state(&rw), SessionState::RwPublic);

        drop(ro);
        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(state(&rw), SessionState::RwSecurityOfficer);
        let rw2 = p.open_rw_session(slot).unwrap();
        assert_eq!(state(&rw2), SessionState::RwSecurityOfficer);
    }
);

isolated_test!(
    fn login_is_per_application_and_ends_with_the_last_session() {
        let (p, slot) = load_with_token();
        let s1 = p.open_rw_session(slot).unwrap();
        s1.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // A session opened later shares the login.
        let s2 = p.open_ro_session(slot).unwrap();
        assert_eq!(state(&s2), SessionState::RoUser);
        expect_rv(s2.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAlreadyLoggedIn);
        // Logging out in one session logs out all of them.
        s2.logout().unwrap();
        assert_eq!(state(&s1), SessionState::RwPublic);
        s2.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(state(&s1), SessionState::RwUser);
        // Closing one session keeps the login while another is open.
        drop(s1);
        assert_eq!(state(&s2), SessionState::RoUser);
        // Closing the last session logs out.
        drop(s2);
        let s3 = p.open_rw_session(slot).unwrap();
        assert_eq!(state(&s3), SessionState::RwPublic);
        s3.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(state(&s3), SessionState::RwUser);
    }
);

// ---------------------------------------------------------------------------------------------
// Login rules
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn user_login_before_init_pin_is_refused() {
        let p = load();
        p.init_token(slot(0), &pin(SO_PIN), LABEL).unwrap();
        let s = p.open_rw_session(slot(0)).unwrap();
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserPinNotInitialized);
        expect_rv(s.login(UserType::User, Some(&pin(SO_PIN))), RvError::UserPinNotInitialized);
        assert_eq!(state(&s), SessionState::RwPublic);
        let info = token_info(&p, slot(0));
        assert!(!info.user_pin_initialized());
        assert_eq!(user_pin_flags(&info), (false, false, false));
        // The SO can still log in and set it.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin(USER_PIN)).unwrap();
        assert!(token_info(&p, slot(0)).user_pin_initialized());
    }
);

isolated_test!(
    fn conflicting_logins_are_refused() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAlreadyLoggedIn);
        expect_rv(s.login(UserType::So, Some(&pin(SO_PIN))), RvError::UserAnotherAlreadyLoggedIn);
        assert_eq!(state(&s), SessionState::RwUser);
        s.logout().unwrap();

        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        expect_rv(s.login(UserType::So, Some(&pin(SO_PIN))), RvError::UserAlreadyLoggedIn);
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserAnotherAlreadyLoggedIn);
        assert_eq!(state(&s), SessionState::RwSecurityOfficer);
        s.logout().unwrap();
        assert_eq!(state(&s), SessionState::RwPublic);
        // No failure was counted by the refused logins.
        let info = token_info(&p, slot);
        assert_eq!(user_pin_flags(&info), (false, false, false));
        assert_eq!(so_pin_flags(&info), (false, false, false));
    }
);

isolated_test!(
    fn so_login_with_a_read_only_session_open_is_refused() {
        let (p, slot) = load_with_token();
        let ro = p.open_ro_session(slot).unwrap();
        let rw = p.open_rw_session(slot).unwrap();
        expect_rv(rw.login(UserType::So, Some(&pin(SO_PIN))), RvError::SessionReadOnlyExists);
        assert_eq!(state(&rw), SessionState::RwPublic);
        assert_eq!(state(&ro), SessionState::RoPublic);
        assert!(!token_info(&p, slot).so_pin_count_low());
        // The user may log in with a read-only session open.
        rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        rw.logout().unwrap();
        drop(ro);
        rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(state(&rw), SessionState::RwSecurityOfficer);
    }
);

isolated_test!(
    fn read_only_session_cannot_open_while_the_so_is_logged_in() {
        let (p, slot) = load_with_token();
        let rw = so_session(&p, slot);
        expect_rv(p.open_ro_session(slot), RvError::SessionReadWriteSoExists);
        assert_eq!(token_info(&p, slot).session_count(), Some(1));
        // Read/write sessions may still be opened, and share the SO login.
        let rw2 = p.open_rw_session(slot).unwrap();
        assert_eq!(state(&rw2), SessionState::RwSecurityOfficer);
        rw.logout().unwrap();
        let ro = p.open_ro_session(slot).unwrap();
        assert_eq!(state(&ro), SessionState::RoPublic);
    }
);

isolated_test!(
    fn logout_without_login_is_refused() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.logout(), RvError::UserNotLoggedIn);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        s.logout().unwrap();
        expect_rv(s.logout(), RvError::UserNotLoggedIn);
        assert_eq!(state(&s), SessionState::RwPublic);
    }
);

isolated_test!(
    fn invalid_and_context_specific_user_types_are_refused() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.login(UserType::VendorExtension(7), Some(&pin(USER_PIN))), RvError::UserTypeInvalid);
        // No operation asks for a context-specific login.
        expect_rv(s.login(UserType::ContextSpecific, Some(&pin(USER_PIN))), RvError::OperationNotInitialized);
        assert_eq!(state(&s), SessionState::RwPublic);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(s.login(UserType::ContextSpecific, Some(&pin(USER_PIN))), RvError::OperationNotInitialized);
        assert_eq!(state(&s), SessionState::RwUser);
        let info = token_info(&p, slot);
        assert_eq!(user_pin_flags(&info), (false, false, false));
    }
);

// ---------------------------------------------------------------------------------------------
// PIN failure counting and lockout (max_pin_failures = 5)
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn wrong_user_pins_count_down_to_a_lock() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        for attempt in 1..=4 {
            expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
            assert_eq!(state(&s), SessionState::RwPublic, "attempt {attempt}");
            let flags = user_pin_flags(&token_info(&p, slot));
            let final_try = attempt == 4;
            assert_eq!(flags, (true, final_try, false), "after {attempt} wrong PINs");
        }
        // The fifth wrong PIN locks.
        expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinLocked);
        assert!(token_info(&p, slot).user_pin_locked());
        // Now even the right PIN is refused.
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked);
        assert_eq!(state(&s), SessionState::RwPublic);
        assert!(token_info(&p, slot).user_pin_locked());
        // The SO PIN is not affected.
        assert_eq!(so_pin_flags(&token_info(&p, slot)), (false, false, false));
        drop(s);
        so_pin_works(&p, slot, SO_PIN);
    }
);

isolated_test!(
    fn pin_failure_counts_persist_across_reinitialization() {
        let (p, slot) = load_with_token();
        {
            let s = p.open_rw_session(slot).unwrap();
            for _ in 0..3 {
                expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
            }
        }
        reinitialize(&p);
        assert_eq!(user_pin_flags(&token_info(&p, slot)), (true, false, false));
        let s = p.open_rw_session(slot).unwrap();
        // The count went on from 3: the next failure leaves one try, the one after locks.
        expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        assert_eq!(user_pin_flags(&token_info(&p, slot)), (true, true, false));
        expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinLocked);
        drop(s);
        reinitialize(&p);
        assert!(token_info(&p, slot).user_pin_locked());
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked);
    }
);

isolated_test!(
    fn a_correct_login_resets_the_failure_count() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        for _ in 0..4 {
            expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        }
        assert_eq!(user_pin_flags(&token_info(&p, slot)), (true, true, false));
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(user_pin_flags(&token_info(&p, slot)), (false, false, false));
        s.logout().unwrap();
        // A full four failures are allowed again without locking.
        for _ in 0..4 {
            expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        }
        assert!(!token_info(&p, slot).user_pin_locked());
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    }
);

isolated_test!(
    fn the_so_unlocks_a_locked_user_pin_with_init_pin() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        for _ in 0..4 {
            expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinIncorrect);
        }
        expect_rv(s.login(UserType::User, Some(&pin("wrong-pin"))), RvError::PinLocked);
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin("new-user-pin")).unwrap();
        s.logout().unwrap();
        let info = token_info(&p, slot);
        assert_eq!(user_pin_flags(&info), (false, false, false));
        assert!(info.user_pin_initialized());
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin("new-user-pin"))).unwrap();
        assert_eq!(user_pin_flags(&token_info(&p, slot)), (false, false, false));
    }
);

isolated_test!(
    fn so_pin_failures_are_counted_reset_and_locked() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.login(UserType::So, Some(&pin("wrong-so-pin"))), RvError::PinIncorrect);
        assert_eq!(state(&s), SessionState::RwPublic);
        let info = token_info(&p, slot);
        assert_eq!(so_pin_flags(&info), (true, false, false));
        assert_eq!(user_pin_flags(&info), (false, false, false));
        // A correct SO login resets the count.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(so_pin_flags(&token_info(&p, slot)), (false, false, false));
        s.logout().unwrap();

        for attempt in 1..=4 {
            expect_rv(s.login(UserType::So, Some(&pin("wrong-so-pin"))), RvError::PinIncorrect);
            assert_eq!(so_pin_flags(&token_info(&p, slot)), (true, attempt == 4, false));
        }
        expect_rv(s.login(UserType::So, Some(&pin("wrong-so-pin"))), RvError::PinLocked);
        assert!(token_info(&p, slot).so_pin_locked());
        expect_rv(s.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinLocked);
        drop(s);
        // A locked SO PIN cannot re-initialize the token either.
        expect_rv(p.init_token(slot, &pin(SO_PIN), "wiped"), RvError::PinLocked);
        assert_eq!(token_info(&p, slot).label(), LABEL);
        // The user is unaffected.
        user_pin_works(&p, slot, USER_PIN);
    }
);

// ---------------------------------------------------------------------------------------------
// C_InitPIN and C_SetPIN
// ---------------------------------------------------------------------------------------------

isolated_test!(
    fn init_pin_checks_the_pin_length() {
        let (p, slot) = load_with_token();
        let s = so_session(&p, slot);
        expect_rv(s.init_pin(&pin("123")), RvError::PinLenRange);
        expect_rv(s.init_pin(&pin(&"x".repeat(256))), RvError::PinLenRange);
        s.logout().unwrap();
        // The old user PIN is still the PIN.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        s.logout().unwrap();

        // The limits themselves are accepted.
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin("1234")).unwrap();
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin("1234"))).unwrap();
        s.logout().unwrap();
        let longest = "y".repeat(255);
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        s.init_pin(&pin(&longest)).unwrap();
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin(&longest))).unwrap();
    }
);

isolated_test!(
    fn init_pin_needs_the_so() {
        let (p, slot) = load_with_token();
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.init_pin(&pin("hijacked-pin")), RvError::UserNotLoggedIn);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(s.init_pin(&pin("hijacked-pin")), RvError::UserNotLoggedIn);
        s.logout().unwrap();
        expect_rv(s.login(UserType::User, Some(&pin("hijacked-pin"))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    }
);

isolated_test!(
    fn set_pin_checks_the_new_pin_length() {
        let (_p, _slot, s) = logged_in();
        expect_rv(s.set_pin(&pin(USER_PIN), &pin("123")), RvError::PinLenRange);
        expect_rv(s.set_pin(&pin(USER_PIN), &pin(&"z".repeat(256))), RvError::PinLenRange);
        s.logout().unwrap();
        expect_rv(s.login(UserType::User, Some(&pin("123"))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    }
);

isolated_test!(
    fn set_pin_in_a_read_only_session_is_refused() {
        let (p, slot) = load_with_token();
        let ro = p.open_ro_session(slot).unwrap();
        expect_rv(ro.set_pin(&pin(USER_PIN), &pin("changed-pin")), RvError::SessionReadOnly);
        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        expect_rv(ro.set_pin(&pin(USER_PIN), &pin("changed-pin")), RvError::SessionReadOnly);
        drop(ro);
        user_pin_works(&p, slot, USER_PIN);
        let s = p.open_rw_session(slot).unwrap();
        expect_rv(s.login(UserType::User, Some(&pin("changed-pin"))), RvError::PinIncorrect);
    }
);

isolated_test!(
    fn set_user_pin_with_a_wrong_old_pin_is_refused() {
        let (_p, _slot, s) = logged_in();
        expect_rv(s.set_pin(&pin("not-the-pin"), &pin("changed-pin")), RvError::PinIncorrect);
        s.logout().unwrap();
        expect_rv(s.login(UserType::User, Some(&pin("changed-pin"))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    }
);

isolated_test!(
    fn after_set_pin_only_the_new_user_pin_works() {
        let (p, slot) = load_with_token();
        // Changed while logged in as the user.
        let s = user_session(&p, slot);
        s.set_pin(&pin(USER_PIN), &pin("second-user-pin")).unwrap();
        assert_eq!(state(&s), SessionState::RwUser);
        s.logout().unwrap();
        expect_rv(s.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin("second-user-pin"))).unwrap();
        s.logout().unwrap();
        // Changed from a public read/write session: C_SetPIN then concerns the user PIN.
        s.set_pin(&pin("second-user-pin"), &pin("third-user-pin")).unwrap();
        assert_eq!(state(&s), SessionState::RwPublic);
        expect_rv(s.login(UserType::User, Some(&pin("second-user-pin"))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin("third-user-pin"))).unwrap();
        s.logout().unwrap();
        drop(s);
        // The change is persistent and did not touch the SO PIN.
        reinitialize(&p);
        user_pin_works(&p, slot, "third-user-pin");
        so_pin_works(&p, slot, SO_PIN);
    }
);

isolated_test!(
    fn after_set_pin_only_the_new_so_pin_works() {
        let (p, slot) = load_with_token();
        let s = so_session(&p, slot);
        expect_rv(s.set_pin(&pin("wrong-so-pin"), &pin("second-so-pin")), RvError::PinIncorrect);
        s.set_pin(&pin(SO_PIN), &pin("second-so-pin")).unwrap();
        s.logout().unwrap();
        expect_rv(s.login(UserType::So, Some(&pin(SO_PIN))), RvError::PinIncorrect);
        s.login(UserType::So, Some(&pin("second-so-pin"))).unwrap();
        s.logout().unwrap();
        // The user PIN is unchanged.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        s.logout().unwrap();
        drop(s);
        // The new SO PIN is the one C_InitToken checks.
        expect_rv(p.init_token(slot, &pin(SO_PIN), "relabeled"), RvError::PinIncorrect);
        p.init_token(slot, &pin("second-so-pin"), "relabeled").unwrap();
        assert_eq!(token_info(&p, slot).label(), "relabeled");
    }
);

isolated_test!(
    fn logins_and_session_rules_are_per_token() {
        let (p, s0) = load_with_token();
        let s1 = slot(1);
        p.init_token(s1, &pin("so-of-slot-1"), "slot one").unwrap();
        let a = p.open_rw_session(s0).unwrap();
        let b = p.open_ro_session(s1).unwrap();
        // A read-only session on another token does not stop the SO of this one.
        a.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(state(&a), SessionState::RwSecurityOfficer);
        assert_eq!(state(&b), SessionState::RoPublic);
        // Nor does the SO of this token stop read-only sessions on the other.
        let b2 = p.open_ro_session(s1).unwrap();
        assert_eq!(state(&b2), SessionState::RoPublic);
        // Closing every session of the other token does not log this one out.
        drop(b);
        drop(b2);
        assert_eq!(state(&a), SessionState::RwSecurityOfficer);
        // A session on one token does not block C_InitToken on another.
        p.init_token(s1, &pin("so-of-slot-1"), "slot one again").unwrap();
        assert_eq!(token_info(&p, s1).label(), "slot one again");
        expect_rv(p.init_token(s0, &pin(SO_PIN), "busy"), RvError::SessionExists);
    }
);
