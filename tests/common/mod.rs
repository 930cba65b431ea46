//! Shared harness for the integration tests, which load the built `libecm_hsm.so` the way an
//! application does.
//!
//! The module is a process-wide singleton configured from the environment, so each test runs
//! in a child process of its own: [`isolated_test!`] re-runs the test binary for exactly that
//! test with `ECM_HSM_DIR` pointing to a fresh temporary directory (removed afterwards). Tests
//! are therefore parallel-safe under both `cargo test` and `cargo nextest`.
#![allow(dead_code)]

#[allow(unsafe_code)]
pub mod raw;

pub mod audit;
pub mod cli;
pub mod keys;
pub mod nist_gcm;
pub mod objects;
pub mod operations;
pub mod raw_wrap;
pub mod served;
pub mod workers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

pub const SO_PIN: &str = "so-secret-1";
pub const USER_PIN: &str = "user-secret-1";
pub const LABEL: &str = "ecm-test";
/// Low PBKDF2 cost so that tests which log in many times stay fast; the default stays strong.
pub const TEST_KDF_ITERATIONS: u32 = 1000;
pub const MAX_PIN_FAILURES: u32 = 5;

const CHILD_ENV: &str = "ECM_HSM_TEST_CHILD";

/// The module under test: `TEST_PKCS11_MODULE`, or the `.so` cargo built for this test run.
///
/// `cargo test` builds the cdylib into `target/<profile>/deps/` beside the test binaries but
/// does not copy it up to `target/<profile>/` (only `cargo build` does), so the copy beside
/// the test executable is the fresh one.
///
/// Chosen once per process: every load in a process must name the same file, so that the
/// dynamic loader hands back the library already loaded (it matches the name) rather than
/// mapping a second copy with its own, uninitialized module. A build running meanwhile in
/// the same target directory makes the choice flip otherwise: the linker (LLD) unlinks
/// `deps/libecm_hsm.so` while it writes the new one, and a second load then took
/// `target/<profile>/libecm_hsm.so`, whose calls answered CKR_CRYPTOKI_NOT_INITIALIZED
/// (tests/module_path.rs).
pub fn module_path() -> PathBuf {
    static CHOSEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHOSEN.get_or_init(choose_module_path).clone()
}

fn choose_module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TEST_PKCS11_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let beside = deps.join("libecm_hsm.so");
    if beside.exists() {
        return beside;
    }
    deps.parent().expect("target dir").join("libecm_hsm.so")
}

/// The token directory of this (child) test process.
pub fn token_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("ECM_HSM_DIR").expect("ECM_HSM_DIR is set by the harness"))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty directory under the system temp dir.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ecm-hsm-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the test configuration into `dir`.
pub fn write_test_config(dir: &Path, extra: &str) {
    let text = format!(
        "test_settings = true\npin_kdf_iterations = {TEST_KDF_ITERATIONS}\nmax_pin_failures = {MAX_PIN_FAILURES}\nbusy_timeout_ms = 20000\n{extra}"
    );
    write_private(&dir.join("ecm-hsm.toml"), text.as_bytes());
}

/// Writes a file only its owner may write, as a settings file must be whatever the umask.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs `body` in a child process with its own token directory. `name` is the test's path
/// inside its binary (what `--exact` matches).
pub fn run_isolated(name: &str, config_extra: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        return;
    }
    let dir = fresh_dir("t");
    write_test_config(&dir, config_extra);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("ECM_HSM_DIR", &dir)
        .env_remove("ECM_HSM_CONF")
        .output()
        .expect("spawn test child");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "isolated test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// Declares a test that runs in its own process with its own `ECM_HSM_DIR`.
/// `isolated_test!(fn name() { ... })`, or with extra config lines:
/// `isolated_test!(config = "max_pin_failures = 3", fn name() { ... })`.
#[macro_export]
macro_rules! isolated_test {
    (config = $extra:expr, $(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            let path = module_path!();
            let name = match path.split_once("::") {
                Some((_, inner)) => format!("{inner}::{}", stringify!($name)),
                None => stringify!($name).to_string(),
            };
            $crate::common::run_isolated(&name, $extra, || $body);
        }
    };
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        isolated_test!(config = "", $(#[$meta])* fn $name() $body);
    };
}

/// Loads and initializes the module with OS locking.
pub fn load() -> Pkcs11 {
    let p = Pkcs11::new(module_path()).expect("load module");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
    p
}

/// Loads the module and initializes slot 0's token with the SO and user PINs.
pub fn load_with_token() -> (Pkcs11, Slot) {
    let p = load();
    let slot = first_slot(&p);
    p.init_token(slot, &AuthPin::new(SO_PIN.into()), LABEL).expect("C_InitToken");
    {
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).unwrap();
        s.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    }
    (p, slot)
}

pub fn first_slot(p: &Pkcs11) -> Slot {
    p.get_all_slots().unwrap()[0]
}

/// A read/write session logged in as the user.
pub fn user_session(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).unwrap();
    s
}

/// The opening most tests share: a fresh token ([`load_with_token`]) and a user session on it.
pub fn logged_in() -> (Pkcs11, Slot, Session) {
    let (p, slot) = load_with_token();
    let s = user_session(&p, slot);
    (p, slot, s)
}

/// A read/write session logged in as the SO.
pub fn so_session(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).unwrap();
    s
}

pub fn pin(text: &str) -> AuthPin {
    AuthPin::new(text.into())
}

/// Asserts that `result` is the PKCS#11 error `expected`.
#[track_caller]
pub fn expect_rv<T: std::fmt::Debug>(result: cryptoki::error::Result<T>, expected: cryptoki::error::RvError) {
    match result {
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(rv(e), expected),
    }
}

/// `C_Finalize` then `C_Initialize` on the same loaded library: a fresh module instance that
/// must rebuild its state from the token directory. Every session must be closed first.
pub fn reinitialize(p: &Pkcs11) {
    p.clone().finalize().expect("C_Finalize");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
}

/// Bytes from hex text; white space is ignored (vectors are quoted as published).
pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("a hex test vector")
}

/// The PKCS#11 return code inside a cryptoki error, for asserting refusals.
pub fn rv(e: cryptoki::error::Error) -> cryptoki::error::RvError {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Test `name` of this binary run again as a worker child with `role` in the variable
/// `role_env`, on the token directory `dir`, its output piped (for tests that kill workers).
pub fn worker_command(name: &str, dir: &Path, role_env: &str, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("ECM_HSM_DIR", dir)
        .env_remove("ECM_HSM_CONF")
        .env(role_env, role)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// Every byte the token directory holds (database, WAL, anything else): what an attacker
/// with a copy of the directory has.
pub fn all_file_bytes() -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(token_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}
