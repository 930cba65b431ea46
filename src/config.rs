//! Settings: where tokens live and the tunable costs and limits.
//!
//! `ECM_HSM_DIR` names the token directory (default
//! `${XDG_DATA_HOME:-$HOME/.local/share}/ecm-hsm`); `ECM_HSM_CONF` names an optional TOML
//! file (default `$ECM_HSM_DIR/ecm-hsm.toml`). Every key is optional:
//!
//! ```toml
//! pin_kdf_iterations = 600000   # PBKDF2-HMAC-SHA256 cost for PINs set from now on
//! max_pin_failures = 10         # wrong PINs in a row before the PIN locks
//! busy_timeout_ms = 10000       # how long to wait for another process holding the store
//! master_rotation_days = 365    # rotation periods of the envelope hierarchy's tiers
//! kek_rotation_days = 91
//! dek_rotation_days = 30
//! sensitive_by_default = false # true: a secret key made without CKA_SENSITIVE is sensitive
//! rsa_min_bits = 2048           # smallest RSA key generated, or used to sign, encrypt, decrypt
//! service = "unix:/run/ecm-hsm/ecm-hsm.sock"  # client mode: the key service's address
//! service_key_file = "/etc/ecm-hsm/token-key"  # the key service's key (service custody)
//! ```
//!
//! The service key ([`Config::service_key_file`]) is found, first found wins: the systemd
//! credential `token-key` (`$CREDENTIALS_DIRECTORY/token-key`, what the unit's
//! `LoadCredential=` passes), `ECM_HSM_SERVICE_KEY_FILE`, then `service_key_file`. The
//! credential comes first because systemd gives it to the service alone (a private, unswappable
//! mount no other user enters, from a source that `LoadCredentialEncrypted=` can keep
//! encrypted), so the key file itself may stay where only root reads it.
//!
//! `ECM_HSM_SERVICE` (same form as `service`) overrides the setting; an empty value turns
//! client mode off.
//!
//! The file decides how hard PINs are to guess and whether key use is recorded, so it is
//! trusted only when nobody else could have written it: a settings file that is group- or
//! world-writable, or owned by a user other than the process's own or root, is refused with its
//! path and the reason. The security settings have floors ([`MIN_PIN_KDF_ITERATIONS`],
//! [`MAX_MAX_PIN_FAILURES`]) that only `test_settings = true` lowers; a token running with that
//! setting says so in `C_GetTokenInfo`'s model ("ecm-hsm TEST") and in `ecm-hsm status`, so
//! that no production token runs with weakened settings unnoticed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256; about 80 ms on the reference machine.
pub const DEFAULT_PIN_KDF_ITERATIONS: u32 = 600_000;
pub const DEFAULT_MAX_PIN_FAILURES: u32 = 10;
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 10_000;
/// The lowest PIN KDF cost a production token accepts: below it a stolen token file's PINs
/// fall to a brute force in hours (NIST SP 800-132 asks for as many iterations as users
/// tolerate; 100,000 is about 13 ms here).
pub const MIN_PIN_KDF_ITERATIONS: u32 = 100_000;
/// The most wrong PINs in a row a production token tolerates before it locks the PIN.
pub const MAX_MAX_PIN_FAILURES: u32 = 100;
/// NIST SP 800-131A: RSA keys below 2048 bits are disallowed for new protection.
pub const DEFAULT_RSA_MIN_BITS: u32 = 2048;
/// The range `rsa_min_bits` may take: 1024-bit keys are the oldest still met, and 4096 is the
/// largest size the module generates.
pub const RSA_MIN_BITS_RANGE: std::ops::RangeInclusive<u32> = 1024..=4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub token_dir: PathBuf,
    pub pin_kdf_iterations: u32,
    pub max_pin_failures: u32,
    pub busy_timeout_ms: u64,
    /// Rotation periods in days of the master key, KEKs and DEKs.
    pub rotation_days: [u32; 3],
    /// Whether key operations and security events are recorded in the token's audit file
    /// (`audit = false` in the settings turns it off, for measurements).
    pub audit: bool,
    /// `audit_sync = true`: every audit record linked and flushed to the disk before its call
    /// returns (survives a power loss; costs a disk flush per record).
    pub audit_sync: bool,
    /// `audit_segment_bytes`: how large a process's audit segment grows before the process
    /// starts another (default [`DEFAULT_AUDIT_SEGMENT_BYTES`]).
    pub audit_segment_bytes: usize,
    /// Whether the library may start threads of its own (the audit trail's linking thread);
    /// not when the application's `C_Initialize` says `CKF_LIBRARY_CANT_CREATE_OS_THREADS`.
    pub may_create_threads: bool,
    /// `test_settings = true`: the settings may go below the security floors (fast PIN KDF,
    /// no practical lockout), for test suites; the token then reports itself as a test token.
    pub test_settings: bool,
    /// `sensitive_by_default = true`: a secret key made without `CKA_SENSITIVE` is sensitive
    /// (the standard's default is not; see the README's "Attribute defaults").
    pub sensitive_by_default: bool,
    /// `rsa_min_bits`: the smallest RSA modulus generated, or used to sign, encrypt or decrypt.
    /// Keys from 1024 bits are always accepted for import and to verify signatures.
    pub rsa_min_bits: u32,
    /// `service` or `ECM_HSM_SERVICE`: the key service's address; set, `libecm_hsm.so` is a
    /// client of that service and holds no token of its own (issue 14).
    pub service: Option<String>,
    /// The file holding the service key, which opens tokens in service custody
    /// (`crate::token::custody`); see the module documentation for where it is looked for.
    pub service_key_file: Option<PathBuf>,
    /// Not a setting: in the key service, the client process a connection's core serves
    /// (`SO_PEERCRED`), named in every audit record that core writes; `None` in-process.
    pub audit_client: Option<crate::audit::ClientProcess>,
}

/// The name of the systemd credential holding the service key.
pub const SERVICE_KEY_CREDENTIAL: &str = "token-key";

/// The address space an audit segment may fill by default (the segment is a mapped file,
/// `crate::sys::mapped_file`); a process that writes more starts another segment. Settable
/// (`audit_segment_bytes`) from [`MIN_AUDIT_SEGMENT_BYTES`] to [`MAX_AUDIT_SEGMENT_BYTES`].
pub const DEFAULT_AUDIT_SEGMENT_BYTES: usize = 1 << 30;
pub const MIN_AUDIT_SEGMENT_BYTES: usize = 4096;
pub const MAX_AUDIT_SEGMENT_BYTES: usize = 1 << 36;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    pin_kdf_iterations: Option<u32>,
    max_pin_failures: Option<u32>,
    busy_timeout_ms: Option<u64>,
    master_rotation_days: Option<u32>,
    kek_rotation_days: Option<u32>,
    dek_rotation_days: Option<u32>,
    audit: Option<bool>,
    audit_sync: Option<bool>,
    audit_segment_bytes: Option<usize>,
    test_settings: Option<bool>,
    sensitive_by_default: Option<bool>,
    rsa_min_bits: Option<u32>,
    service: Option<String>,
    service_key_file: Option<PathBuf>,
}

impl Config {
    /// Reads the environment and, if present, the configuration file.
    pub fn from_env() -> Result<Config> {
        Config::from_env_with_dir(None)
    }

    /// As [`Config::from_env`], with `token_dir` (an admin tool's `--token-dir`) in place of
    /// `ECM_HSM_DIR` when given.
    pub fn from_env_with_dir(token_dir: Option<PathBuf>) -> Result<Config> {
        let token_dir = match (token_dir, std::env::var_os("ECM_HSM_DIR")) {
            (Some(dir), _) => dir,
            (None, Some(dir)) if !dir.is_empty() => PathBuf::from(dir),
            _ => default_token_dir()?,
        };
        let conf_path = match std::env::var_os("ECM_HSM_CONF") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => None,
        };
        let explicit = conf_path.is_some();
        let conf_path = conf_path.unwrap_or_else(|| token_dir.join("ecm-hsm.toml"));
        let text = match read_trusted(&conf_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(e) => {
                return Err(Error::Device(format!("cannot read {}: {e}", conf_path.display())));
            }
        };
        let mut config = Config::from_toml(token_dir, &text, &conf_path)?;
        if let Some(service) = std::env::var_os("ECM_HSM_SERVICE") {
            let service = service.into_string().map_err(|_| Error::ArgumentsBad)?;
            config.service = Some(service).filter(|s| !s.is_empty());
        } else if config.service.is_none() {
            config.service = system_service(Path::new(SYSTEM_CLIENT_SETTINGS))?;
        }
        let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d).join(SERVICE_KEY_CREDENTIAL))
            .filter(|p| p.exists());
        let named = std::env::var_os("ECM_HSM_SERVICE_KEY_FILE").filter(|p| !p.is_empty()).map(PathBuf::from);
        if let Some(path) = credential.or(named) {
            config.service_key_file = Some(path);
        }
        Ok(config)
    }

    /// The model `C_GetTokenInfo` reports: a token on test settings says so.
    pub fn model(&self) -> &'static str {
        if self.test_settings { "ecm-hsm TEST" } else { "ecm-hsm" }
    }

    /// Parses the TOML settings text; `origin` names the file in error messages.
    pub fn from_toml(token_dir: PathBuf, text: &str, origin: &Path) -> Result<Config> {
        let file: ConfigFile = toml::from_str(text)
            .map_err(|e| Error::Device(format!("{}: {}", origin.display(), e.message())))?;
        let config = Config {
            token_dir,
            pin_kdf_iterations: file.pin_kdf_iterations.unwrap_or(DEFAULT_PIN_KDF_ITERATIONS),
            max_pin_failures: file.max_pin_failures.unwrap_or(DEFAULT_MAX_PIN_FAILURES),
            busy_timeout_ms: file.busy_timeout_ms.unwrap_or(DEFAULT_BUSY_TIMEOUT_MS),
            rotation_days: [
                file.master_rotation_days.unwrap_or(365),
                file.kek_rotation_days.unwrap_or(91),
                file.dek_rotation_days.unwrap_or(30),
            ],
            audit: file.audit.unwrap_or(true),
            audit_sync: file.audit_sync.unwrap_or(false),
            audit_segment_bytes: file.audit_segment_bytes.unwrap_or(DEFAULT_AUDIT_SEGMENT_BYTES),
            may_create_threads: true,
            test_settings: file.test_settings.unwrap_or(false),
            sensitive_by_default: file.sensitive_by_default.unwrap_or(false),
            rsa_min_bits: file.rsa_min_bits.unwrap_or(DEFAULT_RSA_MIN_BITS),
            service: file.service,
            service_key_file: file.service_key_file,
            audit_client: None,
        };
        if config.pin_kdf_iterations == 0 || config.max_pin_failures == 0 || config.rotation_days.contains(&0)
        {
            return Err(Error::Device(format!(
                "{}: pin_kdf_iterations, max_pin_failures and the rotation periods must be at least 1",
                origin.display()
            )));
        }
        if !config.test_settings {
            if config.pin_kdf_iterations < MIN_PIN_KDF_ITERATIONS {
                return Err(Error::Device(format!(
                    "{}: pin_kdf_iterations must be at least {MIN_PIN_KDF_ITERATIONS} \
                     (lower costs only with test_settings = true)",
                    origin.display()
                )));
            }
            if config.max_pin_failures > MAX_MAX_PIN_FAILURES {
                return Err(Error::Device(format!(
                    "{}: max_pin_failures must be at most {MAX_MAX_PIN_FAILURES} \
                     (more only with test_settings = true)",
                    origin.display()
                )));
            }
        }
        if !(MIN_AUDIT_SEGMENT_BYTES..=MAX_AUDIT_SEGMENT_BYTES).contains(&config.audit_segment_bytes) {
            return Err(Error::Device(format!(
                "{}: audit_segment_bytes must be from {} to {}",
                origin.display(),
                MIN_AUDIT_SEGMENT_BYTES,
                MAX_AUDIT_SEGMENT_BYTES
            )));
        }
        if !RSA_MIN_BITS_RANGE.contains(&config.rsa_min_bits) {
            return Err(Error::Device(format!(
                "{}: rsa_min_bits must be from {} to {}",
                origin.display(),
                RSA_MIN_BITS_RANGE.start(),
                RSA_MIN_BITS_RANGE.end()
            )));
        }
        Ok(config)
    }

    /// The token's choices among the attribute defaults the standard leaves to it.
    pub fn object_defaults(&self) -> crate::object::template::TokenDefaults {
        crate::object::template::TokenDefaults { sensitive_secret_keys: self.sensitive_by_default }
    }

    /// The default rotation period of a tier of the envelope hierarchy, in seconds.
    pub fn rotation_period(&self, tier: crate::hierarchy::Tier) -> u64 {
        let days = match tier {
            crate::hierarchy::Tier::Master => self.rotation_days[0],
            crate::hierarchy::Tier::Kek => self.rotation_days[1],
            crate::hierarchy::Tier::Dek => self.rotation_days[2],
        };
        u64::from(days) * 86_400
    }
}

/// The system-wide client setting the Debian package installs: `service = "unix:PATH"`.
pub const SYSTEM_CLIENT_SETTINGS: &str = "/etc/ecm-hsm/client.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    service: Option<String>,
}

/// The service the system-wide client setting at `path` names, used only while its socket
/// exists: installing the package changes nothing for applications, enabling the service's
/// socket unit (which removes the socket when it stops) makes every application's module its
/// client. `ECM_HSM_SERVICE` (empty: in-process) and a `service` in the settings file come
/// first. The file is trusted as the settings file is (its owner or root, not writable by
/// others); a missing file is no setting.
fn system_service(path: &Path) -> Result<Option<String>> {
    let text = match read_trusted(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Device(format!("cannot read {}: {e}", path.display()))),
    };
    let file: ClientFile =
        toml::from_str(&text).map_err(|e| Error::Device(format!("{}: {}", path.display(), e.message())))?;
    let Some(service) = file.service.filter(|s| !s.is_empty()) else { return Ok(None) };
    let listening = service.strip_prefix("unix:").is_some_and(|socket| Path::new(socket).exists());
    Ok(listening.then_some(service))
}

/// Reads a settings file that only its owner (this process's user or root) can have written.
fn read_trusted(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = crate::sys::owned_file::open_owned(path, 0o022, "write it (chmod go-w)")?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

fn default_token_dir() -> Result<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(data).join("ecm-hsm"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/ecm-hsm")),
        None => Err(Error::Device("neither ECM_HSM_DIR nor HOME is set".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a file holding `text`, which must be accepted.
    fn parsed(text: &str) -> Config {
        Config::from_toml("/t".into(), text, Path::new("x.toml")).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The error of a file `my.toml` holding `text`, which must be refused.
    fn refusal(text: &str) -> String {
        match Config::from_toml("/t".into(), text, Path::new("my.toml")) {
            Ok(_) => panic!("{text}: accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// Each of the settings texts `bad` is refused with a message that names `naming`.
    fn assert_refused_naming(bad: &[&str], naming: &str) {
        for bad in bad {
            let e = refusal(bad);
            assert!(e.contains(naming), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_file_gives_strong_defaults() {
        let c = parsed("");
        assert_eq!(c.pin_kdf_iterations, 600_000);
        assert_eq!(c.max_pin_failures, 10);
    }

    #[test]
    fn values_override_defaults() {
        let c = parsed("test_settings = true\npin_kdf_iterations = 1000\nmax_pin_failures = 3\n");
        assert_eq!((c.pin_kdf_iterations, c.max_pin_failures), (1000, 3));
        assert_eq!(c.model(), "ecm-hsm TEST");
    }

    #[test]
    fn the_system_client_setting_counts_only_while_its_socket_exists() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.toml");
        assert_eq!(system_service(&file), Ok(None));
        let socket = dir.path().join("ecm-hsm.sock");
        std::fs::write(&file, format!("service = \"unix:{}\"\n", socket.display())).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(system_service(&file), Ok(None));
        std::fs::write(&socket, b"").unwrap();
        assert_eq!(system_service(&file), Ok(Some(format!("unix:{}", socket.display()))));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(system_service(&file).is_err());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&file, "servce = 1\n").unwrap();
        assert!(system_service(&file).is_err());
    }

    #[test]
    fn security_settings_below_their_floors_need_test_settings() {
        for (bad, floor) in [
            ("pin_kdf_iterations = 99999", "at least 100000"),
            ("pin_kdf_iterations = 1", "at least 100000"),
            ("max_pin_failures = 101", "at most 100"),
            ("max_pin_failures = 4294967295", "at most 100"),
        ] {
            let e = refusal(bad);
            assert!(e.contains("my.toml") && e.contains(floor), "{bad}: {e}");
            parsed(&format!("{bad}\ntest_settings = true\n"));
        }
        let c = parsed("pin_kdf_iterations = 100000\nmax_pin_failures = 100");
        assert!(!c.test_settings);
        assert_eq!(c.model(), "ecm-hsm");
    }

    #[test]
    fn a_settings_file_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecm-hsm.toml");
        std::fs::write(&path, "max_pin_failures = 5\n").unwrap();
        for mode in [0o600, 0o644, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(read_trusted(&path).is_ok(), "{mode:o}");
        }
        for mode in [0o620, 0o602, 0o666, 0o777] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_trusted(&path).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{mode:o}");
            assert!(e.to_string().contains("other users write it"), "{mode:o}: {e}");
        }
    }

    #[test]
    fn audit_settings_default_on_and_are_checked() {
        let c = parsed("");
        assert!(c.audit && !c.audit_sync && c.may_create_threads);
        assert_eq!(c.audit_segment_bytes, DEFAULT_AUDIT_SEGMENT_BYTES);
        let c = parsed("audit_sync = true\naudit_segment_bytes = 4096\n");
        assert!(c.audit_sync);
        assert_eq!(c.audit_segment_bytes, 4096);
        assert_refused_naming(
            &["audit_segment_bytes = 4095", "audit_segment_bytes = 1099511627776", "audit_sync = 1"],
            "my.toml",
        );
    }

    #[test]
    fn sensitive_by_default_is_off_unless_set() {
        let c = parsed("");
        assert!(!c.sensitive_by_default && !c.object_defaults().sensitive_secret_keys);
        let c = parsed("sensitive_by_default = true");
        assert!(c.object_defaults().sensitive_secret_keys);
        refusal("sensitive_by_default = 1");
    }

    #[test]
    fn rsa_min_bits_defaults_to_2048_and_is_bounded() {
        let c = parsed("");
        assert_eq!(c.rsa_min_bits, 2048);
        let c = parsed("rsa_min_bits = 1024");
        assert_eq!(c.rsa_min_bits, 1024);
        assert_refused_naming(
            &["rsa_min_bits = 512", "rsa_min_bits = 1023", "rsa_min_bits = 8192"],
            "rsa_min_bits",
        );
    }

    #[test]
    fn unknown_keys_and_zero_costs_are_refused_with_the_file_name() {
        assert_refused_naming(
            &[
                "pin_kdf_iteration = 5",
                "max_pin_failures = 0",
                "pin_kdf_iterations = -1",
                "test_settings = 1",
            ],
            "my.toml",
        );
    }
}
