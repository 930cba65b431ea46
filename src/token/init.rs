//! `C_InitToken`: a new token file on the free slot, or an existing token wiped and
//! re-keyed.

use std::time::Duration;

use super::handles::ObjectRef;
use super::pin::{PinOwner, PinResult, PinRole, check_pin_len};
use super::{Token, TokenKey, busy_timeout};
use crate::mechanism::{rng, seal};
use crate::store::{KeyCustody, SqliteStore, TokenRecord};
use crate::{Error, Result};

impl Token {
    /// `C_InitToken`: creates the token on a free slot, or wipes and re-keys an existing one
    /// after checking its SO PIN. A new token is in service custody when this process holds
    /// a service key (`custody.rs`), in pins custody otherwise; a wiped one keeps its custody. `sessions_open` is checked by the caller's count. Returns
    /// the new token's audit key, so that the record of this call, and the process's later
    /// ones, are authenticated under the token as it now is (see `Module::init_token`).
    pub fn init_token(
        &self,
        so_pin: &[u8],
        label: [u8; 32],
        sessions_open: bool,
    ) -> PinResult<crate::audit::AuditKey> {
        check_pin_len(so_pin).map_err(|_| Error::PinIncorrect)?;
        let mut state = self.lock();
        if state.unrecognized.is_some() {
            return Err(Error::TokenNotRecognized.into());
        }
        if sessions_open {
            return Err(Error::SessionExists.into());
        }
        let token_key = TokenKey::new(rng::bytes::<{ seal::KEY_LEN }>()?);
        if state.store.is_none() {
            // A process that holds a service key makes tokens in service custody.
            let service = self.service_key(&mut state)?;
            let serial = new_serial()?;
            let (custody, so_pin, audit_key) = match &service {
                Some(service) => (
                    KeyCustody::Service { sealed_key: service.seal_token_key(&serial, &token_key)? },
                    self.new_pin_record(service, &serial, so_pin, PinOwner::SecurityOfficer)?,
                    service.audit_key(&serial, 1),
                ),
                None => (
                    KeyCustody::Pins,
                    self.wrap_token_key_for(&token_key, so_pin, PinOwner::SecurityOfficer)?,
                    crate::audit::derive_key(token_key.as_ref()),
                ),
            };
            let record = TokenRecord {
                slot_id: self.slot_id,
                label,
                serial,
                epoch: 1,
                so_pin,
                user_pin: None,
                so_failures: 0,
                user_failures: 0,
                custody,
            };
            let store = create_token_file(&self.path, &record, busy_timeout(&self.config))?;
            state.store = Some(Box::new(store));
            state.record = Some(record);
            return Ok(audit_key);
        }
        self.refresh(&mut state)?;
        self.check_pin(&mut state, PinRole::SecurityOfficer, so_pin)?;
        // The token keeps its custody; in service custody the check above had the service key.
        let record = state.record.clone().ok_or(Error::Internal("no record"))?;
        let (custody, so_wrap, audit_key) = match &record.custody {
            KeyCustody::Service { .. } => {
                let service = self.required_service_key(&mut state)?;
                (
                    KeyCustody::Service { sealed_key: service.seal_token_key(&record.serial, &token_key)? },
                    self.new_pin_record(&service, &record.serial, so_pin, PinOwner::SecurityOfficer)?,
                    service.audit_key(&record.serial, record.epoch + 1),
                )
            }
            KeyCustody::Pins => (
                KeyCustody::Pins,
                self.wrap_token_key_for(&token_key, so_pin, PinOwner::SecurityOfficer)?,
                crate::audit::derive_key(token_key.as_ref()),
            ),
        };
        let store = state.store.as_mut().ok_or(Error::Internal("no store"))?;
        let mut new_record = None;
        store.write(&mut |w| {
            let mut r = w.record()?;
            w.delete_all_objects()?;
            w.delete_all_principals()?;
            w.delete_policy()?;
            w.delete_all_approvals()?;
            r.label = label;
            r.epoch += 1;
            r.so_pin = so_wrap.clone();
            r.user_pin = None;
            r.so_failures = 0;
            r.user_failures = 0;
            r.custody = custody.clone();
            w.save_record(&r)?;
            new_record = Some(r);
            Ok(())
        })?;
        state.record = new_record;
        state.forget_login();
        state.objects.clear();
        state.loaded = None;
        self.handles.write().retain_slot(self.slot_id, |r| matches!(r, ObjectRef::Session { .. }));
        self.scrub(&mut state);
        Ok(audit_key)
    }
}

fn new_serial() -> Result<String> {
    Ok(rng::bytes::<8>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the token file so that no other process ever sees it half made: it is built
/// under a temporary name and linked into place, which fails if another process made a token
/// in this slot first.
fn create_token_file(path: &std::path::Path, record: &TokenRecord, busy: Duration) -> Result<SqliteStore> {
    let dir = path.parent().ok_or(Error::Internal("token path without directory"))?;
    crate::store::files::create_private_dir(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", record.serial, std::process::id()));
    let built = SqliteStore::create(&tmp, record, busy);
    let linked = built.and_then(|store| {
        drop(store);
        std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::Device("another process initialized this slot".into())
            }
            _ => Error::from(e),
        })
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    SqliteStore::open(path, busy)
}
