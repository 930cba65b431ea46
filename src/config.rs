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
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256; about 80 ms on the reference machine.
pub const DEFAULT_PIN_KDF_ITERATIONS: u32 = 600_000;
pub const DEFAULT_MAX_PIN_FAILURES: u32 = 10;
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 10_000;

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
}

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
        let text = match std::fs::read_to_string(&conf_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(e) => {
                return Err(Error::Device(format!("cannot read {}: {e}", conf_path.display())));
            }
        };
        Config::from_toml(token_dir, &text, &conf_path)
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
        };
        if config.pin_kdf_iterations == 0 || config.max_pin_failures == 0 || config.rotation_days.contains(&0)
        {
            return Err(Error::Device(format!(
                "{}: pin_kdf_iterations, max_pin_failures and the rotation periods must be at least 1",
                origin.display()
            )));
        }
        if !(MIN_AUDIT_SEGMENT_BYTES..=MAX_AUDIT_SEGMENT_BYTES).contains(&config.audit_segment_bytes) {
            return Err(Error::Device(format!(
                "{}: audit_segment_bytes must be from {} to {}",
                origin.display(),
                MIN_AUDIT_SEGMENT_BYTES,
                MAX_AUDIT_SEGMENT_BYTES
            )));
        }
        Ok(config)
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

    #[test]
    fn empty_file_gives_strong_defaults() {
        let c = Config::from_toml("/t".into(), "", Path::new("x.toml")).unwrap();
        assert_eq!(c.pin_kdf_iterations, 600_000);
        assert_eq!(c.max_pin_failures, 10);
    }

    #[test]
    fn values_override_defaults() {
        let c = Config::from_toml(
            "/t".into(),
            "pin_kdf_iterations = 1000\nmax_pin_failures = 3\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!((c.pin_kdf_iterations, c.max_pin_failures), (1000, 3));
    }

    #[test]
    fn audit_settings_default_on_and_are_checked() {
        let c = Config::from_toml("/t".into(), "", Path::new("x.toml")).unwrap();
        assert!(c.audit && !c.audit_sync && c.may_create_threads);
        assert_eq!(c.audit_segment_bytes, DEFAULT_AUDIT_SEGMENT_BYTES);
        let c = Config::from_toml(
            "/t".into(),
            "audit_sync = true\naudit_segment_bytes = 4096\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert!(c.audit_sync);
        assert_eq!(c.audit_segment_bytes, 4096);
        for bad in ["audit_segment_bytes = 4095", "audit_segment_bytes = 1099511627776", "audit_sync = 1"] {
            let e = Config::from_toml("/t".into(), bad, Path::new("my.toml")).unwrap_err();
            assert!(e.to_string().contains("my.toml"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_and_zero_costs_are_refused_with_the_file_name() {
        for bad in ["pin_kdf_iteration = 5", "max_pin_failures = 0", "pin_kdf_iterations = -1"] {
            let e = Config::from_toml("/t".into(), bad, Path::new("my.toml")).unwrap_err();
            assert!(e.to_string().contains("my.toml"), "{bad}: {e}");
        }
    }
}
