//! A login is never undone by another thread closing its last session (found by the soak,
//! defect D4): closing the token's last session logs the token out, and that check and logout
//! must not land between another thread's C_OpenSession and its successful C_Login.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use cryptoki::error::{Error, RvError};
use cryptoki::session::{SessionState, UserType};

const ROUNDS: usize = 400;

isolated_test!(
    fn a_login_that_succeeded_is_not_undone_by_a_concurrent_close_of_the_last_session() {
        let (p, slot) = load_with_token();
        let p = Arc::new(p);
        let done = Arc::new(AtomicBool::new(false));
        // Closers: open and close sessions as fast as they can, each close possibly the last.
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let (p, done) = (p.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        drop(p.open_ro_session(slot).unwrap());
                    }
                })
            })
            .collect();
        // Loggers: a login that answered CKR_OK (or "already logged in") must leave the
        // session in a user state for as long as the session is open.
        let loggers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        let s = p.open_ro_session(slot).unwrap();
                        match s.login(UserType::User, Some(&pin(USER_PIN))) {
                            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                            Err(e) => panic!("round {round}: login: {e}"),
                        }
                        let state = s.get_session_info().unwrap().session_state();
                        assert_eq!(state, SessionState::RoUser, "round {round}: the login was undone");
                    }
                })
            })
            .collect();
        for l in loggers {
            l.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for c in closers {
            c.join().unwrap();
        }
    }
);
