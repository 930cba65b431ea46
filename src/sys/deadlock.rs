//! A watcher of `parking_lot`'s deadlock detector, for test builds (the cargo feature
//! `deadlock-detection`): a deadlock becomes an abort that names the threads and where they
//! wait, instead of a hang. Never in a release build: the detector costs on every lock.

use std::sync::Once;
use std::time::Duration;

static STARTED: Once = Once::new();

/// Starts the watcher once per process.
pub fn watch() {
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new().name("ecm-hsm-deadlock-watch".into()).spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let cycles = parking_lot::deadlock::check_deadlock();
                if cycles.is_empty() {
                    continue;
                }
                // A test feature: the report goes to stderr, where the test shows it.
                let mut report = format!("ecm-hsm: {} deadlock(s) detected\n", cycles.len());
                for (i, threads) in cycles.iter().enumerate() {
                    for t in threads {
                        report.push_str(&format!(
                            "cycle {i}, thread {:?}:\n{:?}\n",
                            t.thread_id(),
                            t.backtrace()
                        ));
                    }
                }
                eprintln!("{report}");
                std::process::abort();
            }
        });
    });
}
