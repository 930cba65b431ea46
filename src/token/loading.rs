//! Keeping the object cache in step with the store: reloads when another process changed
//! it, reopening after a login, and reading objects' rows as they are needed.

use std::collections::HashMap;
use std::sync::Arc;

use super::handles::ObjectRef;
use super::object_cache::ObjectCache;
use super::{Token, TokenKey, TokenState, hierarchy_keys, objects};
use crate::object::Object;
use crate::policy::Policy;
use crate::store::StoredObject;
use crate::{Error, Result};

/// Reads a stored object for the login of `state`, opening its secret values (`key`) only
/// if the login may use the object: a key the policy hides from the logged-in principal
/// keeps its values sealed, so that they never exist in this process's memory in the
/// clear. That holds for keys of the envelope hierarchy too (a decrypt-only principal's
/// master key and KEK); their stored row comes back beside the sealed object, so that a DEK
/// the login may use can be reached through them, each opened for that moment only (see
/// `hierarchy_keys.rs`).
pub(crate) fn open_for_login(
    state: &TokenState,
    stored: StoredObject,
    key: Option<&TokenKey>,
) -> Result<(Object, Option<StoredObject>)> {
    let Some(key) = key else { return Ok((objects::object_from_store(stored, None)?, None)) };
    if state.principal.is_none() && state.policy.is_none() {
        // The token's user without a policy may use every key.
        return Ok((objects::object_from_store(stored, Some(key))?, None));
    }
    // Reading without the key costs no cryptography: it shows the class, label and tier.
    let closed = objects::object_from_store(stored.clone(), None)?;
    if state.sees(&closed) {
        if crate::hierarchy::tier_of(&closed).is_some() {
            let label = closed.get(cryptoki_sys::CKA_LABEL).unwrap_or_default();
            log::debug!("hierarchy key '{}' opened for this login", String::from_utf8_lossy(label));
        }
        Ok((objects::object_from_store(stored, Some(key))?, None))
    } else if crate::hierarchy::tier_of(&closed).is_some() {
        Ok((closed, Some(stored)))
    } else {
        Ok((closed, None))
    }
}

impl Token {
    /// Reloads the object cache if the store changed under us, or if the login changed what
    /// can be opened. A re-initialization by another process logs this one out. Returns
    /// whether anything changed (beyond the time of the check).
    pub(crate) fn refresh(&self, state: &mut TokenState) -> Result<bool> {
        let Some(store) = state.store.as_mut() else { return Ok(false) };
        let changed = store.changed_elsewhere()?;
        state.checked_at = Some(std::time::Instant::now());
        let with_key = state.token_key.is_some();
        if !changed && state.loaded == Some(with_key) {
            return Ok(false);
        }
        let record = store.record()?;
        // The login's own epoch is compared as well as the record's: `C_GetTokenInfo` reads
        // the record afresh (for its counters) without looking at logins.
        if state.record.as_ref().is_some_and(|r| r.epoch != record.epoch)
            || state.login_epoch.is_some_and(|e| e != record.epoch)
        {
            self.end_login(state);
        }
        state.record = Some(record);
        let store = state.store.as_mut().ok_or(Error::Internal("no store"))?;
        let (policy, policy_version) = match store.policy()? {
            Some((version, document)) => match Policy::parse(&document) {
                Ok(p) => (Some(Arc::new(p)), version),
                Err(e) => {
                    // A stored policy that no longer parses grants principals nothing.
                    crate::error::log_fault("stored policy", &e);
                    (None, version)
                }
            },
            None => (None, 0),
        };
        state.policy = policy;
        state.policy_version = policy_version;
        // Only ids, labels and CKA_IDs: rows are read as objects are used (`object_cache.rs`).
        let names = state.store.as_mut().ok_or(Error::Internal("no store"))?.object_names()?;
        state.objects = ObjectCache::from_names(names);
        state.loaded = Some(state.token_key.is_some());
        // Handles to objects that still exist stay valid, and their objects are read now:
        // `visible`, and the audit context, find an object by handle without the store.
        let objects = &state.objects;
        let mut held = Vec::new();
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => {
                let exists = objects.contains_key(&id);
                if exists {
                    held.push(id);
                }
                exists
            }
            ObjectRef::Session { .. } => true,
        });
        self.load_ids(state, &held)?;
        Ok(true)
    }

    /// After a login, which changes what can be opened: the objects read so far are read
    /// again (with the token key) as they are used, those with handles now. Their ids and
    /// labels stay, since the store was checked as the login began. If the read fails, the
    /// next call reloads from the store.
    pub(crate) fn reopen_objects(&self, state: &mut TokenState) {
        state.objects.unload_all();
        state.loaded = Some(state.token_key.is_some());
        let mut held = Vec::new();
        self.handles.write().retain_slot(self.slot_id, |r| {
            if let ObjectRef::Token { id, .. } = r {
                held.push(id);
            }
            true
        });
        if let Err(e) = self.load_ids(state, &held) {
            crate::error::log_fault("objects after login", &e);
            state.loaded = None;
        }
    }

    /// Reads the rows of the objects `ids` names that are not loaded yet, opening their
    /// secrets if someone is logged in. An object gone from the store in the meantime (another
    /// process destroyed it) leaves the cache; one that does not open is logged and left out,
    /// as a full load does. A key of the envelope hierarchy makes the whole cache load: its
    /// value is checked against its parent's, and `hierarchy_value` finds parents among
    /// loaded objects.
    pub(crate) fn load_ids(&self, state: &mut TokenState, ids: &[i64]) -> Result<()> {
        let wanted: Vec<i64> = ids.iter().copied().filter(|id| state.objects.is_unloaded(id)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let stored = state.store.as_mut().ok_or(Error::Internal("no store"))?.load_objects_by_id(&wanted)?;
        let key = state.token_key.clone();
        let mut opened = Vec::with_capacity(stored.len());
        for s in stored {
            let id = s.id;
            match open_for_login(state, s, key.as_ref()) {
                Ok((o, _)) if crate::hierarchy::tier_of(&o).is_some() => return self.complete(state),
                Ok((o, _)) => opened.push((id, o)),
                Err(e) => crate::error::log_fault(&format!("object {id} skipped"), &e),
            }
        }
        let all_found = opened.len() == wanted.len();
        for id in &wanted {
            state.objects.remove(id);
        }
        for (id, o) in opened {
            state.objects.insert(id, Arc::new(o));
        }
        if !all_found {
            // Handles to what is gone go too (walking the handle table only then: it grows
            // with every object a session has found).
            let objects = &state.objects;
            self.handles.write().retain_slot(self.slot_id, |r| match r {
                ObjectRef::Token { id, .. } => objects.contains_key(&id),
                ObjectRef::Session { .. } => true,
            });
        }
        Ok(())
    }

    /// Loads every object's rows (with the key of the current login, if any): what a search
    /// without a label, the hierarchy rules and approval listings need.
    pub(crate) fn complete(&self, state: &mut TokenState) -> Result<()> {
        if state.objects.is_complete() {
            return Ok(());
        }
        let stored = state.store.as_mut().ok_or(Error::Internal("no store"))?.load_objects()?;
        let key = state.token_key.clone();
        let mut loaded = HashMap::with_capacity(stored.len());
        let mut sealed_rows = Vec::new();
        for s in stored {
            let id = s.id;
            match open_for_login(state, s, key.as_ref()) {
                Ok((o, row)) => {
                    if let (Some(row), Some(uid)) = (row, o.get(cryptoki_sys::CKA_UNIQUE_ID)) {
                        sealed_rows.push((uid.to_vec(), row));
                    }
                    loaded.insert(id, o);
                }
                Err(e) => crate::error::log_fault(&format!("object {id} skipped"), &e),
            }
        }
        // Keys of the hierarchy below the master are stored wrapped by their parent.
        hierarchy_keys::open_wrapped_values(&mut loaded);
        state.objects = ObjectCache::from_loaded(loaded);
        for (uid, row) in sealed_rows {
            state.objects.keep_sealed_row(uid, row);
        }
        let objects = &state.objects;
        self.handles.write().retain_slot(self.slot_id, |r| match r {
            ObjectRef::Token { id, .. } => objects.contains_key(&id),
            ObjectRef::Session { .. } => true,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::values::Values;
    use crate::policy::LoginState;
    use cryptoki_sys::*;

    const POLICY: &str = r#"{"key_permissions": {
        "context-api": {"keys": ["dek-*"], "operations": ["decrypt"]}
    }}"#;

    fn ulong(n: CK_ULONG) -> [u8; std::mem::size_of::<CK_ULONG>()] {
        n.to_ne_bytes()
    }

    /// An AES key labelled `label` with value `value`, as the store holds it (sealed).
    fn stored_key(id: i64, label: &str, value: &[u8], key: &TokenKey) -> StoredObject {
        let mut values = Values::new();
        values.insert(CKA_CLASS, &ulong(CKO_SECRET_KEY));
        values.insert(CKA_KEY_TYPE, &ulong(CKK_AES));
        values.insert(CKA_LABEL, label.as_bytes());
        values.insert(CKA_VALUE, value);
        let object = Object::from_parts(values, Vec::new()).unwrap();
        let attributes = objects::object_to_store_with_value(id, &object, Some(key), None).unwrap();
        assert!(attributes.iter().any(|a| a.kind == CKA_VALUE && a.sealed && a.value != value));
        StoredObject { id, attributes }
    }

    #[test]
    fn a_principal_opens_only_the_keys_its_policy_lets_it_use() {
        let key = TokenKey::new([0x42; crate::mechanism::seal::KEY_LEN]);
        let mut state = TokenState::principal_login("context-api", POLICY);
        // Key `id` labelled `label` holding `[id; 32]`, as `state`'s login opens it.
        let open = |state: &TokenState, id: u8, label: &str| {
            open_for_login(state, stored_key(id.into(), label, &[id; 32], &key), Some(&key)).unwrap().0
        };
        let usable = open(&state, 1, "dek-acme-v1");
        assert_eq!(usable.get(CKA_VALUE), Some(&[1u8; 32][..]));
        let other = open(&state, 2, "app-signing");
        assert_eq!(other.get(CKA_VALUE), None, "a key the principal may not use stays sealed");
        assert!(other.sealed_attributes().contains(&CKA_VALUE));
        assert_eq!(other.get(CKA_LABEL), Some(&b"app-signing"[..]), "what it may see of it is there");
        // The token's user without a policy, and the SO, open everything.
        state.principal = None;
        state.policy = None;
        let opened = open(&state, 2, "app-signing");
        assert_eq!(opened.get(CKA_VALUE), Some(&[2u8; 32][..]));
        state.login = LoginState::SecurityOfficer;
        state.principal = Some("context-api".into());
        state.policy = Some(Arc::new(Policy::parse(POLICY).unwrap()));
        let opened = open(&state, 2, "app-signing");
        assert_eq!(opened.get(CKA_VALUE), Some(&[2u8; 32][..]));
    }
}
