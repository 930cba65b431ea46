//! Work done in worker processes: a test of the same binary run again as a child. The SO's
//! administration through the module's safe core (as the admin tool does it) runs there
//! because two copies of SQLite in one process (the core linked into the test, and the loaded
//! `.so`) do not see each other's locks; the crash tests kill workers at a chosen point.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command};

use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_SO, CKU_USER};
use ecm_hsm::config::Config;
use ecm_hsm::module::Module;

use super::{CHILD_ENV, SO_PIN, USER_PIN, fresh_dir, token_dir, worker_command, write_test_config};

/// The variable that hands a binary's `admin_worker` test its actions.
pub const ADMIN_ENV: &str = "ECM_HSM_TEST_ADMIN";

/// Runs the test `worker` of this binary as a child on this process's token directory with
/// `env_var=value`, asserts that it succeeded, and returns the lines it printed as `> LINE`.
pub fn worker_lines(worker: &str, env_var: &str, value: &str) -> Vec<String> {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([worker, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(env_var, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{worker} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The first line follows libtest's "test NAME ... " on the same line.
    stdout.lines().filter_map(|l| l.split("> ").nth(1)).map(str::to_string).collect()
}

/// The SO's administration, run by this binary's `admin_worker` test (whose body is
/// [`run_admin_actions`]). `actions` are lines `add NAME PIN`, `reset NAME PIN`, `remove
/// NAME`, `list`, `policy PATH`, `show`, `user-add NAME` (the user trying to add one); the
/// output has one line `ACTION: ok TEXT` or `ACTION: err ERROR` per action.
pub fn administer(actions: &[&str]) -> Vec<String> {
    worker_lines("admin_worker", ADMIN_ENV, &actions.join("\n"))
}

/// Writes `policy` into the token directory, and has the SO add the `principals` (name, PIN)
/// and apply it, through [`administer`]; asserts that each step succeeded, and returns the
/// output lines (the last one the policy's).
pub fn apply_policy(policy: &str, principals: &[(&str, &str)]) -> Vec<String> {
    let file = token_dir().join("policy.json");
    std::fs::write(&file, policy).unwrap();
    let mut actions: Vec<String> = principals.iter().map(|(n, p)| format!("add {n} {p}")).collect();
    actions.push(format!("policy {}", file.display()));
    let refs: Vec<&str> = actions.iter().map(String::as_str).collect();
    let out = administer(&refs);
    assert!(out.iter().all(|l| l.contains(": ok")), "{out:?}");
    out
}

/// The body of a binary's `admin_worker` test: runs the actions [`administer`] handed it, and
/// does nothing when run as an ordinary test.
pub fn run_admin_actions() {
    let Ok(actions) = std::env::var(ADMIN_ENV) else { return };
    let m = Module::new(Config::from_env().unwrap()).unwrap();
    let so = m.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    m.login(so, CKU_SO, SO_PIN.as_bytes()).unwrap();
    for action in actions.lines() {
        let words: Vec<&str> = action.split(' ').collect();
        let result = match words[..] {
            ["add", name, pin] => m.set_principal(so, name, pin.as_bytes(), false).map(|()| String::new()),
            ["reset", name, pin] => m.set_principal(so, name, pin.as_bytes(), true).map(|()| String::new()),
            ["remove", name] => m.remove_principal(so, name).map(|()| String::new()),
            ["list"] => m.principals(so).map(|l| format!("{l:?}")),
            ["policy", path] => {
                m.apply_policy(so, &std::fs::read_to_string(path).unwrap()).map(|v| format!("v{v}"))
            }
            ["show"] => m.policy(so).map(|p| format!("{:?}", p.map(|(v, _)| v))),
            ["user-add", name] => {
                let u = m.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
                m.logout(so).unwrap();
                m.login(u, CKU_USER, USER_PIN.as_bytes()).unwrap();
                let r = m.set_principal(u, name, b"pin-1234", false).map(|()| String::new());
                let listed = m.principals(u);
                m.logout(u).unwrap();
                m.login(so, CKU_SO, SO_PIN.as_bytes()).unwrap();
                r.and(listed.map(|_| String::new()))
            }
            _ => panic!("unknown action {action}"),
        };
        println!("> {action}: {}", result.map_or_else(|e| format!("err {e}"), |t| format!("ok {t}")));
    }
}

/// Reads the piped stdout of the worker `child` until `count` of its lines have contained
/// `marker` (or the output ends), and returns how many did: the points the worker reached,
/// for a test that kills it right after. The first line follows libtest's "test NAME ... ".
pub fn read_until_marked(child: &mut Child, marker: &str, count: usize) -> usize {
    let stdout = BufReader::new(child.stdout.take().expect("the worker's stdout is piped"));
    let mut seen = 0;
    for line in stdout.lines() {
        if line.unwrap().contains(marker) {
            seen += 1;
            if seen == count {
                break;
            }
        }
    }
    seen
}

/// A fresh token directory (named after `tag`) for the test `test`, which plays its roles in
/// worker processes chosen by `role_env`, with the role "setup" already run there and
/// succeeded; the directory and a maker of worker commands for it.
pub fn worker_token(
    test: &'static str,
    tag: &str,
    role_env: &'static str,
) -> (PathBuf, impl Fn(&str) -> Command) {
    let dir = fresh_dir(tag);
    write_test_config(&dir, "");
    let worker = {
        let dir = dir.clone();
        move |role: &str| worker_command(test, &dir, role_env, role)
    };
    let setup = worker("setup").output().unwrap();
    assert!(setup.status.success(), "setup: {}", String::from_utf8_lossy(&setup.stderr));
    (dir, worker)
}
