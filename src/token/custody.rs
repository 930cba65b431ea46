//! Custody of the token key: who can open it, recorded per token ([`KeyCustody`]).
//!
//! - **`pins`** (development tokens, and every token made before service custody existed):
//!   the token key is sealed under a KDF of each PIN, so the SO, the user and every principal
//!   each hold a copy of it. Anyone with a copy of the token file and any one PIN opens every
//!   key, offline, and can re-seal the audit trail, whose key derives from the token key.
//! - **`service`**: the token key is sealed under a key derived from the **service key**, 32
//!   random bytes in a file only the key service's OS user reads ([`ServiceKey`]; where it is
//!   looked for: `crate::config`). The file holds no copy of the token key under any PIN: a PIN
//!   record is a **verifier**, an AES-256-GCM seal of nothing under a key derived from the
//!   service key and the PIN's KDF output. So checking a PIN needs the service key too: a copy
//!   of the file gives no offline test of guessed PINs, and the check is the AEAD's tag check
//!   (constant time, inside aws-lc) rather than a comparison of our own. The audit key derives
//!   from the service key as well (`ServiceKey::audit_key`), so no principal can re-seal the
//!   trail. A process without the service key shows the token (`C_GetTokenInfo`) but refuses
//!   every login with `CKR_DEVICE_ERROR` and a log line naming the key file (not
//!   `CKR_PIN_INCORRECT`, which would be a lie, nor `CKR_TOKEN_NOT_RECOGNIZED`, which is not
//!   among `C_Login`'s codes); nothing is counted and nothing in the file changes.
//!
//! Moving a token from `pins` to `service` ([`Token::seal_for_service`]) rotates the token key
//! in the same transaction: every sealed attribute is sealed again under a new key, so the
//! copies under PINs that old backups still hold open only a dead key. The SO's record becomes
//! a verifier (its PIN is at hand); the others keep their old sealed copies, which now open
//! only the dead key, as verifiers of their PINs until their next login turns each into a
//! verifier proper (and secure-deletes the old one). Requiring every PIN to be reset instead
//! would lock every principal out until the SO acts, and would gain nothing: those old copies
//! are in the backups anyway, and open nothing alive.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::handles::ObjectRef;
use super::pin::{PinResult, PinRole};
use super::{Token, TokenKey, TokenState, objects};
use crate::mechanism::{mac, rng, seal};
use crate::store::{KeyCustody, StoredAttribute};
use crate::{Error, Result};

/// Bytes of the service key.
pub const SERVICE_KEY_LEN: usize = 32;

/// Who can open a token's key, as `ecm-hsm status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Custody {
    Pins,
    Service,
}

impl Custody {
    pub fn of(stored: &KeyCustody) -> Custody {
        match stored {
            KeyCustody::Pins => Custody::Pins,
            KeyCustody::Service { .. } => Custody::Service,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Custody::Pins => "pins",
            Custody::Service => "service",
        }
    }
}

/// The key service's key: opens the token keys of tokens in service custody, and keys their
/// PIN verifiers and audit trails. Never printed.
pub struct ServiceKey {
    key: Zeroizing<[u8; SERVICE_KEY_LEN]>,
    path: PathBuf,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKey").field("path", &self.path).finish_non_exhaustive()
    }
}

impl ServiceKey {
    /// Reads the key file at `path`: a regular file of exactly 32 bytes that no other user
    /// may read or write (mode `0600` or `0400`), owned by this process's user or root (a
    /// systemd credential is root's).
    pub fn load(path: &Path) -> Result<ServiceKey> {
        let fail = |why: String| Error::Device(format!("service key file {}: {why}", path.display()));
        let mut file = crate::sys::owned_file::open_owned(path, 0o077, "at it (chmod 600)")
            .map_err(|e| fail(e.to_string()))?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(SERVICE_KEY_LEN + 1));
        Read::by_ref(&mut file)
            .take(SERVICE_KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        let key: [u8; SERVICE_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| fail(format!("holds {} bytes, not {SERVICE_KEY_LEN}", bytes.len())))?;
        Ok(ServiceKey { key: Zeroizing::new(key), path: path.to_path_buf() })
    }

    /// Makes a new key file at `path` (which must not exist): 32 random bytes, mode `0600`.
    pub fn create(path: &Path) -> Result<ServiceKey> {
        let key = Zeroizing::new(rng::bytes::<SERVICE_KEY_LEN>()?);
        let mut file = crate::store::files::create_private_file(path)
            .map_err(|e| Error::Device(format!("service key file {}: {e}", path.display())))?;
        file.write_all(key.as_slice()).and_then(|()| file.sync_all())?;
        Ok(ServiceKey { key, path: path.to_path_buf() })
    }

    /// The key file at `path`, made first if there is none; and whether it was made.
    pub fn load_or_create(path: &Path) -> Result<(ServiceKey, bool)> {
        if path.exists() {
            Ok((ServiceKey::load(path)?, false))
        } else {
            Ok((ServiceKey::create(path)?, true))
        }
    }

    /// The file the key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A key for one use (`label`) on one token (`serial`): tokens sharing a service key
    /// share no derived key.
    fn derived(&self, label: &str, serial: &str) -> Zeroizing<[u8; 32]> {
        let input = format!("ecm-hsm service key/{label}/{serial}");
        Zeroizing::new(mac::hmac_sha256(self.key.as_slice(), input.as_bytes()))
    }

    fn token_key_context(serial: &str) -> Vec<u8> {
        format!("ecm-hsm token key/service/{serial}").into_bytes()
    }

    /// The token key of token `serial`, sealed for the service.
    pub(crate) fn seal_token_key(&self, serial: &str, key: &TokenKey) -> Result<Vec<u8>> {
        seal::seal(&self.derived("token key", serial), &Self::token_key_context(serial), key.as_slice())
    }

    /// Opens the token key sealed for the service; a key file that does not open it is an
    /// error of the device (the wrong file, or a damaged token), never a wrong PIN.
    pub(crate) fn open_token_key(&self, serial: &str, sealed: &[u8]) -> Result<TokenKey> {
        let opened = seal::open(&self.derived("token key", serial), &Self::token_key_context(serial), sealed)
            .map_err(|_| {
                Error::Device(format!(
                    "the service key in {} does not open token {serial}: the wrong key file, or a damaged token",
                    self.path.display()
                ))
            })?;
        let key: [u8; seal::KEY_LEN] =
            opened.as_slice().try_into().map_err(|_| Error::StoreCorrupt("token key length".into()))?;
        Ok(TokenKey::new(key))
    }

    /// The audit key of token `serial` in its `epoch` (a re-initialization or a change of
    /// custody starts a trail under a new key): from the service key alone, so that no
    /// principal can derive it.
    pub(crate) fn audit_key(&self, serial: &str, epoch: u64) -> crate::audit::AuditKey {
        crate::audit::derive_key(self.derived(&format!("audit/{epoch}"), serial).as_slice())
    }

    /// The key a PIN's verifier is sealed under: the PIN's KDF output, keyed by the service.
    fn verifier_key(&self, serial: &str, pin_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let key = self.derived("pin verifier", serial);
        Zeroizing::new(mac::hmac_sha256(key.as_slice(), pin_key))
    }

    /// A verifier of the PIN whose KDF output is `pin_key`, for the PIN owner `context`.
    pub(crate) fn verifier(&self, serial: &str, pin_key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>> {
        seal::seal(&self.verifier_key(serial, pin_key), context, &[])
    }

    /// Whether `verifier` is one of the PIN whose KDF output is `pin_key`.
    pub(crate) fn verifies(&self, serial: &str, pin_key: &[u8; 32], context: &[u8], verifier: &[u8]) -> bool {
        seal::open(&self.verifier_key(serial, pin_key), context, verifier).is_ok()
    }
}

impl Token {
    /// The service key this process holds for the token: the one given
    /// ([`Token::use_service_key`]), else the configured file's, read once and kept. `None`
    /// when none is configured; an error (logged, naming the file) when it cannot be read.
    pub(crate) fn service_key(&self, state: &mut TokenState) -> Result<Option<Arc<ServiceKey>>> {
        if let Some(key) = &state.service_key {
            return Ok(Some(key.clone()));
        }
        let Some(path) = &self.config.service_key_file else { return Ok(None) };
        match ServiceKey::load(path) {
            Ok(key) => {
                let key = Arc::new(key);
                state.service_key = Some(key.clone());
                Ok(Some(key))
            }
            Err(e) => {
                crate::error::log_fault(&format!("token of slot {}", self.slot_id), &e);
                Err(e)
            }
        }
    }

    /// The service key, which a token in service custody cannot do without: a login without
    /// it is refused as a fault of the device, with a log line saying what is missing.
    pub(crate) fn required_service_key(&self, state: &mut TokenState) -> Result<Arc<ServiceKey>> {
        match self.service_key(state)? {
            Some(key) => Ok(key),
            None => {
                let e = Error::Device(format!(
                    "token of slot {} is sealed for the key service, and this process has no service key \
                     (the systemd credential {}, ECM_HSM_SERVICE_KEY_FILE or service_key_file)",
                    self.slot_id,
                    crate::config::SERVICE_KEY_CREDENTIAL
                ));
                crate::error::log_fault("login", &e);
                Err(e)
            }
        }
    }

    /// Makes this process use `key` as the service key for this token (an admin command's
    /// `--key-file`), in place of the configured one.
    pub fn use_service_key(&self, key: ServiceKey) {
        self.lock().service_key = Some(Arc::new(key));
    }

    /// The token's custody.
    pub fn custody(&self) -> Result<Custody> {
        let state = self.ready_lazy()?;
        let record = state.record.as_ref().ok_or(Error::TokenNotRecognized)?;
        Ok(Custody::of(&record.custody))
    }

    /// The token key of a token in service custody, opened with the service key (before any
    /// PIN is checked, so that a missing or wrong key file counts no PIN failure).
    pub(crate) fn service_token_key(
        &self,
        state: &mut TokenState,
    ) -> Result<Option<(Arc<ServiceKey>, TokenKey)>> {
        let record = state.record.clone().ok_or(Error::TokenNotRecognized)?;
        let KeyCustody::Service { sealed_key } = &record.custody else { return Ok(None) };
        let service = self.required_service_key(state)?;
        let key = service.open_token_key(&record.serial, sealed_key).inspect_err(|e| {
            crate::error::log_fault("login", e);
        })?;
        Ok(Some((service, key)))
    }

    /// Moves the token from `pins` to `service` custody (`ecm-hsm token seal-for-service`),
    /// with `service` as its service key, after checking the SO PIN: in one transaction, a
    /// new token key seals every sealed attribute again, is itself sealed under the service
    /// key, and the SO's PIN record becomes a verifier (see the module documentation for the
    /// others). Other processes' logins end (the epoch changes); so does this one's. Then the
    /// write-ahead log is checkpointed, so no page image from before stays readable. Returns
    /// the new audit key (the caller starts a new trail under it, as `C_InitToken` does).
    /// Refused with `CKR_SESSION_EXISTS` while this process has sessions on the token, and
    /// with `CKR_ARGUMENTS_BAD` for a token already in service custody.
    pub fn seal_for_service(
        &self,
        so_pin: &[u8],
        service: ServiceKey,
        sessions_open: bool,
    ) -> PinResult<crate::audit::AuditKey> {
        let mut state = self.ready_lazy()?;
        if sessions_open {
            return Err(Error::SessionExists.into());
        }
        if !matches!(state.record.as_ref().map(|r| &r.custody), Some(KeyCustody::Pins)) {
            return Err(Error::ArgumentsBad.into());
        }
        let checked_epoch = state.record.as_ref().map(|r| r.epoch);
        let old_key = self.check_pin(&mut state, PinRole::SecurityOfficer, so_pin)?;
        let new_key = TokenKey::new(rng::bytes::<{ seal::KEY_LEN }>()?);
        let serial = state.record.as_ref().ok_or(Error::TokenNotRecognized)?.serial.clone();
        let sealed_key = service.seal_token_key(&serial, &new_key)?;
        let so_verifier = self.new_pin_record(&service, &serial, so_pin, PinRole::SecurityOfficer.into())?;
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut saved = None;
        store.write(&mut |w| {
            let mut r = w.record()?;
            if r.custody != KeyCustody::Pins {
                return Err(Error::ArgumentsBad);
            }
            if Some(r.epoch) != checked_epoch {
                // Re-initialized by another process since the SO PIN opened the old key,
                // which opens nothing now: try again (`CKR_FUNCTION_FAILED`).
                return Err(Error::StoreBusy);
            }
            for object in w.objects()? {
                let resealed = object
                    .attributes
                    .iter()
                    .filter(|a| a.sealed)
                    .map(|a| reseal(object.id, a, &old_key, &new_key))
                    .collect::<Result<Vec<_>>>()?;
                if !resealed.is_empty() {
                    w.update_attributes(object.id, &resealed)?;
                }
            }
            r.custody = KeyCustody::Service { sealed_key: sealed_key.clone() };
            r.so_pin = so_verifier.clone();
            r.so_failures = 0;
            r.epoch += 1;
            w.save_record(&r)?;
            saved = Some(r);
            Ok(())
        })?;
        let record = saved.ok_or(Error::Internal("custody change without record"))?;
        let audit_key = service.audit_key(&record.serial, record.epoch);
        state.record = Some(record);
        state.service_key = Some(Arc::new(service));
        self.end_login(&mut state);
        state.objects.clear();
        state.loaded = None;
        self.handles.write().retain_slot(self.slot_id, |r| matches!(r, ObjectRef::Session { .. }));
        self.scrub(&mut state);
        Ok(audit_key)
    }

    /// After a change that replaced or removed a credential: the write-ahead log is
    /// checkpointed and emptied, so the old record's page images do not stay in `-wal`
    /// (`secure_delete` has zeroed them in the database's own pages). Best effort: a
    /// checkpoint another process's open read holds back is finished by the next one.
    pub(crate) fn scrub(&self, state: &mut TokenState) {
        let Some(store) = state.store.as_mut() else { return };
        match store.checkpoint() {
            Ok(true) => {}
            Ok(false) => log::warn!(
                "token of slot {}: another process's read held back the checkpoint; old page images stay \
                 in the write-ahead log until the next one",
                self.slot_id
            ),
            Err(e) => crate::error::log_fault("checkpoint after a credential change", &e),
        }
    }
}

/// A sealed attribute of object `id`, opened with the old token key and sealed with the new.
fn reseal(id: i64, a: &StoredAttribute, old: &TokenKey, new: &TokenKey) -> Result<StoredAttribute> {
    let context = objects::seal_context(id, a.kind as cryptoki_sys::CK_ATTRIBUTE_TYPE);
    let clear = seal::open(old, &context, &a.value)
        .map_err(|_| Error::StoreCorrupt(format!("object {id}: attribute {:#x} does not open", a.kind)))?;
    Ok(StoredAttribute { kind: a.kind, value: seal::seal(new, &context, &clear)?, sealed: true })
}

#[cfg(test)]
#[path = "custody_tests.rs"]
mod tests;
