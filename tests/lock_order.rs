//! The process's lock order (docs/locking.md) under a race: many threads making their first
//! audited calls while one logs in for the first time (the audit key arrives), logs out, and
//! `C_Finalize` comes in the middle. Once this hung the whole process: `AuditLog::set_key`
//! held the key's lock and waited for a segment's stripe, while `append` held that stripe
//! and waited for the key.
//!
//! The race runs in a child process bounded in time; a hang is the child not finishing by a
//! generous deadline. Built with `--features deadlock-detection`, the library also watches
//! `parking_lot`'s detector and aborts with the threads of the cycle (shown here).

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;

const ROLE: &str = "ECM_HSM_LOCK_ORDER_ROLE";
const TEST: &str = "first_logins_logouts_and_finalize_racing_audited_calls_never_deadlock";

/// How long the child races (rounds are short; the count varies with the machine's load).
const RACE_FOR: Duration = Duration::from_secs(3);
/// How long the child may take before it counts as hung: far above what the race needs even
/// on a loaded machine (a round is a few milliseconds).
const HUNG_AFTER: Duration = Duration::from_secs(120);
const THREADS: usize = 6;

#[test]
fn first_logins_logouts_and_finalize_racing_audited_calls_never_deadlock() {
    if std::env::var_os(ROLE).is_some() {
        race();
        return;
    }
    let dir = fresh_dir("lock-order");
    write_test_config(&dir, "");
    let mut child = worker_command(TEST, &dir, ROLE, "race").spawn().unwrap();
    // The child's output is piped: read it on threads, or a full pipe would stall it.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut stderr).unwrap_or_default());
    let deadline = Instant::now() + HUNG_AFTER;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    let status =
        status.unwrap_or_else(|| panic!("the race hung for {HUNG_AFTER:?} (a deadlock):\n{out}\n{err}"));
    assert!(status.success() && out.contains("1 passed"), "the race failed ({status}):\n{out}\n{err}");
    assert!(out.contains("rounds raced: "), "{out}");
}

/// In the child: rounds of C_Initialize, then threads racing on a barrier — one logs in (the
/// process's first login of this module instance: the audit key arrives) and out, the
/// others search (an audited call that opens their stripe's segment), one finalizes after a
/// varying pause — until [`RACE_FOR`] has passed.
fn race() {
    let (p, _) = load_with_token();
    p.finalize().unwrap();
    let p = Pkcs11::new(module_path()).unwrap();
    let started = Instant::now();
    let mut rounds = 0u32;
    while started.elapsed() < RACE_FOR || rounds < 5 {
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
        let slot = first_slot(&p);
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (p, barrier) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Sessions open before the race: what races is the login and the calls.
                    let session = p.open_rw_session(slot);
                    barrier.wait();
                    let Ok(session) = session else { return };
                    // Errors are expected once C_Finalize has come: what matters is that
                    // every call returns.
                    if i == 0 {
                        let _ = session.login(UserType::User, Some(&pin(USER_PIN)));
                        let _ = session.find_objects(&[]);
                        let _ = session.logout();
                    } else {
                        for _ in 0..3 {
                            let _ = session.find_objects(&[]);
                        }
                    }
                    drop(session);
                })
            })
            .collect();
        barrier.wait();
        // C_Finalize in the middle of the calls in one round of three, after them otherwise.
        if rounds.is_multiple_of(3) {
            for _ in 0..(rounds % 7) * 200 {
                std::hint::spin_loop();
            }
            let _ = p.clone().finalize();
            for w in workers {
                w.join().unwrap();
            }
        } else {
            for w in workers {
                w.join().unwrap();
            }
            let _ = p.clone().finalize();
        }
        rounds += 1;
    }
    println!("rounds raced: {rounds}");
}
