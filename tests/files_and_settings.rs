//! Who can reach a token's files, and which settings a token trusts (issue 13, items 12 and
//! 13): each attack is performed through the files, the C ABI or the admin tool and must fail
//! with nothing changed.
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{SO_PIN, USER_PIN, write_private};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");
const TEST_SETTINGS: &str = "test_settings = true\npin_kdf_iterations = 1000\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn cli(dir: &Path, conf: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ECM_HSM_DIR", dir)
        .env("ECM_HSM_CONF", conf)
        .env("ECM_HSM_SO_PIN", SO_PIN)
        .env("ECM_HSM_NEW_PIN", USER_PIN)
        .env("ECM_HSM_PIN", USER_PIN)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every file in `dir`, recursively.
/// A token labelled `label`, made by the admin tool in `root/TOKENS` with the settings file
/// `root/settings.toml` (the test settings, private); the settings file and token directory.
fn token_in(root: &Path, tokens: &str, label: &str) -> (PathBuf, PathBuf) {
    let conf = root.join("settings.toml");
    write_private(&conf, TEST_SETTINGS.as_bytes());
    let dir = root.join(tokens);
    ok(cli(&dir, &conf, &["init", "--label", label]));
    (conf, dir)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
            all.extend(files_in(&path));
        } else {
            all.push(path);
        }
    }
    all
}

/// With the permissive umask most systems have (022: files 0644, directories 0755), a token
/// made by the admin tool and used by the module is readable by nobody else: the directory
/// 0700, the database, its `-wal`/`-shm`, the audit register and segments 0600.
#[test]
fn a_token_and_its_files_are_private_whatever_the_umask() {
    // This test binary's only umask change; children (the admin tool) inherit it.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let root = tempfile::tempdir().unwrap();
    let (conf, dir) = token_in(root.path(), "new/tokens", "private");
    ok(cli(&dir, &conf, &["hierarchy", "init"]));
    let status = ok(cli(&dir, &conf, &["status"]));
    // A connection kept open while the files are checked, so that SQLite's -wal and -shm
    // files exist (it removes them when the last connection closes).
    let db = rusqlite::Connection::open(dir.join("token-0.sqlite")).unwrap();
    let _: i64 = db.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
    assert!(!status.contains("WARNING: token directory"), "{status}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("new")), 0o700);
    let files = files_in(&dir);
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.ends_with(".sqlite")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".audit")), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("-wal")) && names.iter().any(|n| n.ends_with("-shm")),
        "{names:?}"
    );
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

/// An existing token directory that others can read or write is reported by `status`, with
/// its mode and what it lets others do.
#[test]
fn a_token_directory_others_can_reach_is_reported_by_status() {
    let root = tempfile::tempdir().unwrap();
    let (conf, dir) = token_in(root.path(), "tokens", "open");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = ok(cli(&dir, &conf, &["status"]));
    assert!(status.contains("WARNING: token directory") && status.contains("0755"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&ok(cli(&dir, &conf, &["status", "--json"]))).unwrap();
    let warnings = json["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("0755")), "{json}");
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("test settings")), "{json}");
}

/// A settings file someone else could have written (`audit = false`, no lockout, a KDF cost
/// of 1) is refused by the module and by the admin tool with its path and the reason, and
/// the token is left as it was.
#[test]
fn a_settings_file_others_may_write_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (conf, dir) = token_in(root.path(), "tokens", "guarded");
    let before = std::fs::read(dir.join("token-0.sqlite")).unwrap();
    let attack =
        "test_settings = true\npin_kdf_iterations = 1\nmax_pin_failures = 4294967295\naudit = false\n";
    write_private(&conf, attack.as_bytes());
    for m in [0o666, 0o620, 0o602] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(m)).unwrap();
        let out = cli(&dir, &conf, &["status"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{m:o}");
        assert!(err.contains(&conf.display().to_string()) && err.contains("other users write it"), "{err}");
        let (rv, _) = initialize(&dir, &conf);
        assert_eq!(rv, format!("{:?}", RvError::DeviceError));
    }
    assert_eq!(std::fs::read(dir.join("token-0.sqlite")).unwrap(), before);
}

/// Loads and initializes the module in a child process (the module reads its settings from
/// the environment at `C_Initialize`): `C_Initialize`'s answer and, if it succeeded, the token
/// model `C_GetTokenInfo` reports.
fn initialize(dir: &Path, conf: &Path) -> (String, Option<String>) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["initialize_child", "--exact", "--nocapture", "--test-threads=1", "--ignored"])
        .env("ECM_HSM_DIR", dir)
        .env("ECM_HSM_CONF", conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The harness prints "test initialize_child ... " before the child's first line.
    let field = |name: &str| text.lines().find_map(|l| l.split_once(name)).map(|(_, v)| v.trim().to_owned());
    (field("C_Initialize: ").unwrap_or_else(|| panic!("{text}")), field("model: "))
}

/// Run by [`initialize`] in a child process.
#[test]
#[ignore = "run by other tests in a child process"]
fn initialize_child() {
    let p = Pkcs11::new(common::module_path()).unwrap();
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {
            let slot = p.get_all_slots().unwrap()[0];
            println!("model: {}", p.get_token_info(slot).unwrap().model());
            println!("C_Initialize: ok");
        }
        Err(CkError::Pkcs11(rv, _)) => println!("C_Initialize: {rv:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// The security settings have floors: a weak PIN cost or a lockout that never comes is refused
/// unless the file says `test_settings = true`, and a token on test settings says so in
/// `C_GetTokenInfo`'s model.
#[test]
fn security_settings_below_their_floors_are_refused_unless_named_test_settings() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tokens");
    let conf = root.path().join("settings.toml");
    for weak in
        ["pin_kdf_iterations = 1\n", "pin_kdf_iterations = 99999\n", "max_pin_failures = 4294967295\n"]
    {
        write_private(&conf, weak.as_bytes());
        assert_ne!(initialize(&dir, &conf).0, "ok", "{weak}");
        let out = cli(&dir, &conf, &["status"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("test_settings = true"), "{weak}: {err}");
        assert!(!dir.join("token-0.sqlite").exists());
        write_private(&conf, format!("{weak}test_settings = true\n").as_bytes());
        assert_eq!(initialize(&dir, &conf), ("ok".into(), Some("ecm-hsm TEST".into())), "{weak}");
    }
    write_private(&conf, b"pin_kdf_iterations = 100000\nmax_pin_failures = 100\n");
    assert_eq!(initialize(&dir, &conf), ("ok".into(), Some("ecm-hsm".into())));
}
