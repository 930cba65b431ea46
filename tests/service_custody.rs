//! Issue 14, items 2, 3 and 8: a token in service custody, attacked by a principal that has
//! a copy of the token file and its own PIN — offline with a script, by loading the module on
//! the copy, by re-sealing the audit trail, after its removal — and by another OS user. Each
//! attack is also run on a token in pins custody where it should succeed, so that the test
//! shows the attack is real and the custody is what stops it.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{BIN, with_pins};
use common::{SO_PIN, USER_PIN, fresh_dir, load, write_private};
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_SO, CKU_USER};
use ecm_hsm::config::Config;
use ecm_hsm::mechanism::{mac, pin_kdf, seal};
use ecm_hsm::module::Module;

const ALICE_PIN: &str = "alice-pin-1";
const BOB_PIN: &str = "bob-pin-1";

/// A token directory (made by the tool, under `root`), its settings beside it, and a service
/// key file outside it.
struct Tokens {
    root: PathBuf,
    dir: PathBuf,
    key: PathBuf,
}

impl Drop for Tokens {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Tokens {
    /// A token with the hierarchy, tenant acme and principal alice; in service custody when
    /// `service`, else in pins custody.
    fn new(tag: &str, service: bool) -> Tokens {
        let root = fresh_dir(tag);
        let settings = format!(
            "test_settings = true\npin_kdf_iterations = {}\nmax_pin_failures = 5\n",
            common::TEST_KDF_ITERATIONS
        );
        write_private(&root.join("ecm-hsm.toml"), settings.as_bytes());
        let t = Tokens { dir: root.join("tokens"), key: root.join("token-key"), root };
        let key = t.key.display().to_string();
        let mut init = vec!["init", "--label", "custody"];
        if service {
            init.extend(["--service-key", &key]);
        }
        t.ok(&init, USER_PIN);
        t.ok(&["hierarchy", "init"], "");
        t.ok(&["tenant", "add", "acme"], "");
        t.ok(&["principal", "add", "alice"], ALICE_PIN);
        t
    }

    /// The tool as the service's user runs it: the service key at hand, every PIN in the
    /// environment (`new_pin` for a PIN being set).
    fn cmd(&self, args: &[&str], new_pin: &str) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("ECM_HSM_DIR", &self.dir)
            .env("ECM_HSM_CONF", self.root.join("ecm-hsm.toml"))
            .env_remove("ECM_HSM_SERVICE_KEY_FILE")
            .env_remove("CREDENTIALS_DIRECTORY");
        with_pins(&mut c, USER_PIN, new_pin);
        if self.key.exists() {
            c.env("ECM_HSM_SERVICE_KEY_FILE", &self.key);
        }
        c
    }

    fn run(&self, args: &[&str], new_pin: &str) -> Output {
        self.cmd(args, new_pin).output().unwrap()
    }

    fn ok(&self, args: &[&str], new_pin: &str) -> String {
        let out = self.run(args, new_pin);
        assert!(out.status.success(), "ecm-hsm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn db(&self) -> PathBuf {
        self.dir.join("token-0.sqlite")
    }

    /// A copy of the token file (with its write-ahead log, if any), as a principal would take.
    fn copy(&self, to: &Path) -> PathBuf {
        std::fs::create_dir_all(to).unwrap();
        for suffix in ["", "-wal"] {
            let from = PathBuf::from(format!("{}{suffix}", self.db().display()));
            if from.exists() {
                std::fs::copy(&from, to.join(format!("token-0.sqlite{suffix}"))).unwrap();
            }
        }
        to.join("token-0.sqlite")
    }
}

/// Every stored PIN record (salt, iterations, sealed blob), the service-sealed blob if any,
/// and every sealed attribute (object id, type, value) of the token file at `db`.
struct Stolen {
    pins: Vec<(String, Vec<u8>, u32, Vec<u8>)>,
    service_sealed: Option<Vec<u8>>,
    attributes: Vec<(i64, u64, Vec<u8>)>,
    serial: String,
}

fn steal(db: &Path) -> Stolen {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (so, user, service_sealed, serial) = conn
        .query_row(
            "SELECT so_salt, so_iterations, so_wrapped, user_salt, user_iterations, user_wrapped,
                    service_sealed, serial FROM token",
            [],
            |r| {
                Ok((
                    ("so".to_string(), r.get(0)?, r.get(1)?, r.get(2)?),
                    ("user".to_string(), r.get(3)?, r.get(4)?, r.get(5)?),
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    let mut pins = vec![so, user];
    let mut stmt = conn.prepare("SELECT name, salt, iterations, wrapped FROM principals").unwrap();
    pins.extend(
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap),
    );
    let mut stmt = conn.prepare("SELECT object_id, kind, value FROM attributes WHERE sealed = 1").unwrap();
    let attributes = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    Stolen { pins, service_sealed, attributes, serial }
}

fn attribute_context(id: i64, kind: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..8].copy_from_slice(&id.to_be_bytes());
    c[8..].copy_from_slice(&kind.to_be_bytes());
    c
}

/// The offline attack of issue 14: with the copied file and `name`'s PIN, run the PIN KDF on
/// every stored PIN record, open whatever it opens under every context a record could have
/// been sealed with, and try every key so found (and the PIN keys themselves) on every sealed
/// attribute. Returns the keys recovered and how many attributes they open.
fn offline_attack(db: &Path, name: &str, pin: &str) -> (Vec<[u8; 32]>, usize) {
    let stolen = steal(db);
    assert!(stolen.attributes.len() >= 3, "the hierarchy's keys are sealed in the file");
    let contexts: Vec<Vec<u8>> =
        ["so", "user", &format!("principal/{name}"), &format!("service/{}", stolen.serial)]
            .iter()
            .flat_map(|c| {
                let c = format!("ecm-hsm token key/{c}").into_bytes();
                [c.clone(), [b"ecm-hsm pin verifier/".as_slice(), &c].concat()]
            })
            .collect();
    let mut pin_keys: Vec<[u8; 32]> = Vec::new();
    let mut recovered: Vec<[u8; 32]> = Vec::new();
    let mut blobs: Vec<Vec<u8>> = stolen.pins.iter().map(|p| p.3.clone()).collect();
    blobs.extend(stolen.service_sealed.clone());
    for (_, salt, iterations, _) in &stolen.pins {
        let pin_key = *pin_kdf::derive(pin.as_bytes(), salt, *iterations).unwrap();
        pin_keys.push(pin_key);
        for blob in &blobs {
            for context in &contexts {
                if let Ok(opened) = seal::open(&pin_key, context, blob)
                    && let Ok(key) = <[u8; 32]>::try_from(opened.as_slice())
                {
                    recovered.push(key);
                }
            }
        }
    }
    let opened = stolen
        .attributes
        .iter()
        .filter(|(id, kind, value)| {
            pin_keys
                .iter()
                .chain(&recovered)
                .any(|k| seal::open(k, &attribute_context(*id, *kind), value).is_ok())
        })
        .count();
    (recovered, opened)
}

#[test]
fn offline_a_principal_with_the_file_and_its_pin_recovers_no_key_in_service_custody() {
    let pins = Tokens::new("custody-offline-pins", false);
    let (keys, opened) = offline_attack(&pins.copy(&pins.root.join("copy")), "alice", ALICE_PIN);
    assert!(
        !keys.is_empty() && opened >= 3,
        "pins custody: alice's PIN opens the token key and every secret"
    );

    let service = Tokens::new("custody-offline-service", true);
    let stolen = service.copy(&service.root.join("copy"));
    assert_eq!(offline_attack(&stolen, "alice", ALICE_PIN), (vec![], 0), "service custody: nothing opens");
    // The PIN tried is alice's real one: with the service key, she logs in.
    let alice =
        service.cmd(&["--user", "alice", "status"], "").env("ECM_HSM_PIN", ALICE_PIN).output().unwrap();
    assert!(alice.status.success(), "{}", String::from_utf8_lossy(&alice.stderr));
}

#[test]
fn moving_to_service_custody_leaves_old_pin_copies_opening_only_a_dead_key() {
    let t = Tokens::new("custody-migrate", false);
    let before = t.copy(&t.root.join("before"));
    let (old_keys, _) = offline_attack(&before, "alice", ALICE_PIN);
    let out = t.ok(&["token", "seal-for-service", "--key-file", &t.key.display().to_string()], "");
    assert!(out.contains("service custody"), "{out}");
    assert!(t.ok(&["status", "--json"], "").contains("\"custody\": \"service\""));
    // Alice's record, not yet replaced, still opens with her PIN — the old key, which opens
    // no attribute of the token now.
    let after = t.copy(&t.root.join("after"));
    let (keys, opened) = offline_attack(&after, "alice", ALICE_PIN);
    assert_eq!(opened, 0, "no secret opens with anything alice's PIN gives");
    assert!(keys.iter().all(|k| old_keys.contains(k)), "only the dead key");
    assert!(!old_keys.is_empty());
    // Her next login turns the record into a verifier: then nothing opens at all.
    let status = t.cmd(&["--user", "alice", "status"], "").env("ECM_HSM_PIN", ALICE_PIN).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(offline_attack(&t.copy(&t.root.join("later")), "alice", ALICE_PIN), (vec![], 0));
    // The trail before the move was archived; the new one verifies with the service key.
    assert!(t.ok(&["audit", "verify"], "").contains("chain intact"));
}

/// Every file of the token (database, `-wal`, `-shm`) as it is on disk now.
fn raw_files(db: &Path) -> Vec<u8> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::read(format!("{}{s}", db.display())).ok())
        .flatten()
        .collect()
}

fn holds(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_removed_principal_and_a_replaced_pin_leave_nothing_in_the_raw_files() {
    let t = Tokens::new("custody-scrub", true);
    t.ok(&["principal", "add", "bob"], BOB_PIN);
    let record = |name: &str| -> (Vec<u8>, Vec<u8>) {
        let conn = rusqlite::Connection::open(t.db()).unwrap();
        conn.query_row("SELECT salt, wrapped FROM principals WHERE name = ?1", [name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    let (bob_salt, bob_verifier) = record("bob");
    let (alice_salt, alice_verifier) = record("alice");
    assert!(holds(&raw_files(&t.db()), &bob_verifier), "the scan finds a record that is there");
    // The changes are made by a process that stays, as the service does: its store is still
    // open when the files are read, so no last close has cleaned the write-ahead log for it.
    let settings = std::fs::read_to_string(t.root.join("ecm-hsm.toml")).unwrap();
    let mut config = Config::from_toml(t.dir.clone(), &settings, Path::new("ecm-hsm.toml")).unwrap();
    config.service_key_file = Some(t.key.clone());
    let module = Module::new(config).unwrap();
    let s = module.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
    module.login(s, CKU_SO, SO_PIN.as_bytes()).unwrap();
    module.remove_principal(s, "bob").unwrap();
    module.set_principal(s, "alice", b"alice-pin-2", true).unwrap();
    let raw = raw_files(&t.db());
    for (what, old) in [
        ("bob's verifier", &bob_verifier),
        ("bob's salt", &bob_salt),
        ("alice's old verifier", &alice_verifier),
        ("alice's old salt", &alice_salt),
    ] {
        assert!(!holds(&raw, old), "{what} is still in the raw pages");
    }
    // Bob's PIN opens nothing: he is refused as any unknown name is.
    module.logout(s).unwrap();
    assert_eq!(module.login_user(s, CKU_USER, BOB_PIN.as_bytes(), b"bob"), Err(ecm_hsm::Error::PinIncorrect));
    drop(module);
}

#[test]
fn the_token_directory_is_the_service_users_alone() {
    use std::os::unix::fs::MetadataExt;
    let t = Tokens::new("custody-modes", true);
    assert_eq!(std::fs::metadata(&t.dir).unwrap().mode() & 0o7777, 0o700);
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{}", path.display());
    }
    assert_eq!(std::fs::metadata(&t.key).unwrap().mode() & 0o7777, 0o600);
    if rustix::process::geteuid().is_root() {
        // Another OS user (nobody) reads neither the token nor the key, nor lists the directory.
        // The parents of the directory are made passable, so that only its own mode decides.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&t.root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for target in [t.db(), t.key.clone(), t.dir.join("token-0.audit")] {
            let out = Command::new("setpriv")
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat"])
                .arg(&target)
                .output()
                .unwrap();
            assert!(!out.status.success() && out.stdout.is_empty(), "nobody read {}", target.display());
        }
        let out = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "ls"])
            .arg(&t.dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "nobody listed the token directory");
    }
}

/// Deletes a record from the segment whose close ends the register and seals the segment and
/// the register again under `key`, as one who holds `key` as the audit key would.
fn reseal_trail_without_a_record(dir: &Path, key: &[u8; 32]) {
    use ecm_hsm::audit::record::{gmac_link, segment_key};
    let register = dir.join("token-0.audit");
    let mut lines: Vec<String> =
        std::fs::read_to_string(&register).unwrap().lines().map(String::from).collect();
    let field = |line: &str, name: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(line).unwrap()[name].clone()
    };
    let link_of = |line: &str| -> [u8; 32] {
        let mut link = [0u8; 32];
        let digits = field(line, "link").as_str().unwrap().to_string();
        link[..digits.len() / 2].copy_from_slice(&hex::decode(digits).unwrap());
        link
    };
    let close = lines.len() - 1;
    assert_eq!(field(&lines[close], "operation"), "segment_close");
    let number = field(&lines[close], "segment").as_u64().unwrap();
    let open = lines.iter().position(|l| field(l, "seq").as_u64() == Some(number)).unwrap();
    let opened_by = link_of(&lines[open]);
    let segment = dir.join(format!("token-0.audit.d/segment-{number}.jsonl"));
    let mut records: Vec<String> =
        std::fs::read_to_string(&segment).unwrap().lines().map(String::from).collect();
    assert!(records.len() >= 2, "{records:?}");
    records.remove(1);
    let gmac = segment_key(key, &opened_by);
    let mut prev = opened_by;
    for (i, line) in records.iter_mut().enumerate() {
        let seq = i as u64 + 1;
        let covered = &line[..line.len() - 43];
        let covered = format!("{{\"seq\":{seq}{}", &covered[covered.find(',').unwrap()..]);
        let link = gmac_link(&gmac, seq, &[prev.as_slice(), covered.as_bytes()].concat());
        *line = format!("{covered},\"link\":\"{}\"}}", hex::encode(&link[..16]));
        prev = link;
    }
    std::fs::write(&segment, records.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let record: serde_json::Value = serde_json::from_str(&lines[close]).unwrap();
    let covered_end = lines[close].len() - 75;
    let old_covered = lines[close][..covered_end].to_string();
    let old_end = format!(
        "\"end_seq\":{},\"end_link\":\"{}\"",
        record["end_seq"],
        record["end_link"].as_str().unwrap()
    );
    let new_end = format!("\"end_seq\":{},\"end_link\":\"{}\"", records.len(), hex::encode(prev));
    let covered = old_covered.replace(&old_end, &new_end);
    assert_ne!(covered, old_covered);
    let prev_register = link_of(&lines[close - 1]);
    let link = mac::hmac_sha256(key, &[prev_register.as_slice(), covered.as_bytes()].concat());
    lines[close] = format!("{covered},\"link\":\"{}\"}}", hex::encode(link));
    std::fs::write(&register, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[test]
fn a_principal_cannot_reseal_the_trail_of_a_token_in_service_custody() {
    // Pins custody: alice's PIN gives the token key, hence the audit key; her edit passes.
    let pins = Tokens::new("custody-trail-pins", false);
    pins.ok(&["status"], "");
    let (keys, _) = offline_attack(&pins.copy(&pins.root.join("copy")), "alice", ALICE_PIN);
    reseal_trail_without_a_record(&pins.dir, &ecm_hsm::audit::derive_key(&keys[0]));
    assert!(pins.ok(&["audit", "verify"], "").contains("chain intact"), "the forgery is whole");

    // Service custody, moved from pins: alice holds the dead key and her PIN keys; every
    // audit key she can derive from them fails.
    let service = Tokens::new("custody-trail-service", false);
    let (dead, _) = offline_attack(&service.copy(&service.root.join("copy")), "alice", ALICE_PIN);
    service.ok(&["token", "seal-for-service", "--key-file", &service.key.display().to_string()], "");
    service.ok(&["status"], "");
    let stolen = steal(&service.copy(&service.root.join("after")));
    let mut candidates: Vec<[u8; 32]> = dead.clone();
    for (_, salt, iterations, _) in &stolen.pins {
        candidates.push(*pin_kdf::derive(ALICE_PIN.as_bytes(), salt, *iterations).unwrap());
    }
    let pristine = service.root.join("pristine");
    copy_trail(&service.dir, &pristine);
    for key in candidates.iter().flat_map(|k| [*k, *ecm_hsm::audit::derive_key(k)]) {
        copy_trail(&pristine, &service.dir);
        reseal_trail_without_a_record(&service.dir, &key);
        let out = service.run(&["audit", "verify"], "");
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    }
    copy_trail(&pristine, &service.dir);
    assert!(service.ok(&["audit", "verify"], "").contains("chain intact"), "the untouched trail verifies");
}

/// Copies the trail of slot 0 (register and segments) from `from` to `to`, replacing it.
fn copy_trail(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to.join("token-0.audit.d"));
    std::fs::create_dir_all(to.join("token-0.audit.d")).unwrap();
    std::fs::copy(from.join("token-0.audit"), to.join("token-0.audit")).unwrap();
    for entry in std::fs::read_dir(from.join("token-0.audit.d")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("token-0.audit.d").join(path.file_name().unwrap())).unwrap();
    }
}

isolated_test!(
    /// The module loaded in-process on a copy of a service-custody token (no service key in
    /// this process): the token shows, every login is refused as a device fault, and the
    /// database is byte for byte what it was.
    fn the_module_on_a_copy_logs_nobody_in_and_changes_nothing() {
        let t = Tokens::new("custody-inprocess", true);
        let dir = common::token_dir();
        let copy = t.copy(&dir);
        let before = std::fs::read(&copy).unwrap();
        {
            let p = load();
            let slot = common::first_slot(&p);
            assert_eq!(p.get_token_info(slot).unwrap().label(), "custody");
            let s = p.open_rw_session(slot).unwrap();
            for (user, pin) in [
                (UserType::User, format!("alice:{ALICE_PIN}")),
                (UserType::User, USER_PIN.to_string()),
                (UserType::So, SO_PIN.to_string()),
            ] {
                common::expect_rv(s.login(user, Some(&AuthPin::new(pin.into()))), RvError::DeviceError);
            }
            let info = p.get_token_info(slot).unwrap();
            assert!(!info.user_pin_count_low() && !info.so_pin_count_low(), "no failure was counted");
        }
        assert!(std::fs::read(&copy).unwrap() == before, "the database did not change");
        let wal = PathBuf::from(format!("{}-wal", copy.display()));
        assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0, "nothing was written");
    }
);

/// Through the key service holding a service key: `C_InitToken` makes a token in service
/// custody, and the SO, the user and a principal log in through the service as usual — the
/// same token that refuses every login in a process without the key.
#[test]
fn through_the_service_a_service_custody_token_works_as_any_other() {
    use ecm_hsm::server::{Limits, Server};
    use ecm_hsm::service::{Address, Client};
    let root = fresh_dir("custody-serve");
    let key = root.join("token-key");
    ecm_hsm::token::ServiceKey::create(&key).unwrap();
    let settings = "test_settings = true\npin_kdf_iterations = 1000\n";
    let mut config = Config::from_toml(root.join("tokens"), settings, Path::new("test")).unwrap();
    config.service_key_file = Some(key.clone());
    let socket = root.join("s.sock");
    let server = std::sync::Arc::new(
        Server::new(
            std::os::unix::net::UnixListener::bind(&socket).unwrap(),
            config.clone(),
            Limits::default(),
        )
        .quiet(),
    );
    let running = server.clone();
    std::thread::spawn(move || running.run());

    let client = Client::new(Address::Unix(socket));
    let mut label = [b' '; 32];
    label[..3].copy_from_slice(b"svc");
    client.init_token(0, SO_PIN.as_bytes(), label).unwrap();
    let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let so = client.open_session(0, rw).unwrap();
    client.login(so, CKU_SO, SO_PIN.as_bytes()).unwrap();
    client.init_pin(so, USER_PIN.as_bytes()).unwrap();
    client.set_principal(so, "alice", ALICE_PIN.as_bytes(), false).unwrap();
    client.logout(so).unwrap();
    client.login(so, CKU_USER, USER_PIN.as_bytes()).unwrap();
    client.logout(so).unwrap();
    client.login_user(so, CKU_USER, ALICE_PIN.as_bytes(), b"alice").unwrap();
    client.close_session(so).unwrap();

    let with_key = Module::new(config.clone()).unwrap();
    assert_eq!(with_key.token_custody(0), Ok(ecm_hsm::token::Custody::Service));
    let without = Module::new(Config { service_key_file: None, ..config }).unwrap();
    let s = without.open_session(0, rw).unwrap();
    assert!(matches!(
        without.login_user(s, CKU_USER, ALICE_PIN.as_bytes(), b"alice"),
        Err(ecm_hsm::Error::Device(_))
    ));
    let _ = std::fs::remove_dir_all(&root);
}
