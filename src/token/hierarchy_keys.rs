//! The envelope hierarchy on a token: generating (rotating) its keys in one transaction, and
//! opening the values that are stored wrapped by their parent key.

use std::collections::HashMap;
use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::handles::ObjectRef;
use super::objects::{self, object_to_store_with_value, stored_attribute};
use super::{Token, TokenState};
use crate::hierarchy::rotation::{self, Plan};
use crate::hierarchy::{self, Tier, tier_of};
use crate::mechanism::prepared;
use crate::object::Object;
use crate::policy::Operation;
use crate::policy::approval_ahead::ManagementOp;
use crate::store::{ApprovalRecord, StoredAttribute};
use crate::sys::secret::LockedBuffer;
use crate::vendor::CKA_ECM_PARENT_ID;
use crate::{Error, Result};

/// Checks that the stored (parent-wrapped) `CKA_VALUE` of each KEK and DEK opens under its
/// parent, parents first; the opened values are not kept (a key of the hierarchy is
/// unwrapped when used, see [`Token::hierarchy_value`]). An object whose parent is missing
/// or whose value does not open is dropped from view and logged: it is damaged, and never
/// used with a wrong value. A key whose parent stays sealed for this login (a
/// decrypt-only principal's KEK) is not checked here: its parent is not opened for a check,
/// and the key-wrap's integrity check refuses a damaged value at its first use.
pub(crate) fn open_wrapped_values(objects: &mut HashMap<i64, Object>) {
    // Opened values of KEKs, to check the DEKs below them; zeroized when dropped.
    let mut opened_keks: HashMap<Vec<u8>, zeroize::Zeroizing<Vec<u8>>> = HashMap::new();
    for tier in [Tier::Kek, Tier::Dek] {
        let ids: Vec<i64> = objects
            .iter()
            .filter(|(_, o)| tier_of(o) == Some(tier) && !o.sealed_attributes().contains(&CKA_VALUE))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let opened = (|| {
                let child = &objects[&id];
                let parent_uid =
                    child.get(CKA_ECM_PARENT_ID).ok_or(Error::StoreCorrupt("no parent".into()))?;
                let parent = objects
                    .values()
                    .find(|o| o.get(CKA_UNIQUE_ID) == Some(parent_uid))
                    .ok_or(Error::StoreCorrupt("parent key missing".into()))?;
                let parent_value = match opened_keks.get(parent_uid) {
                    Some(v) => v.as_slice(),
                    // A parent sealed for this login, or a KEK left unchecked (its value is
                    // still the wrapped one) for that reason.
                    None if parent.sealed_attributes().contains(&CKA_VALUE)
                        || tier_of(parent) != Some(Tier::Master) =>
                    {
                        return Ok(None);
                    }
                    None => {
                        parent.get(CKA_VALUE).ok_or(Error::StoreCorrupt("parent without value".into()))?
                    }
                };
                let wrapped = child.get(CKA_VALUE).ok_or(Error::StoreCorrupt("no value".into()))?;
                let value = rotation::unwrap_value(parent_value, wrapped)
                    .map_err(|_| Error::StoreCorrupt("value does not open under its parent".into()))?;
                Ok::<_, Error>(Some((child.get(CKA_UNIQUE_ID).map(<[u8]>::to_vec), value)))
            })();
            match opened {
                Ok(None) => {}
                Ok(Some((uid, value))) => {
                    if tier == Tier::Kek
                        && let Some(uid) = uid
                    {
                        opened_keks.insert(uid, value);
                    }
                }
                Err(e) => {
                    crate::error::log_fault(&format!("hierarchy key {id} skipped"), &e);
                    objects.remove(&id);
                }
            }
        }
    }
}

/// The plain value of a key the login may use: its `CKA_VALUE`, or for a KEK or DEK (stored
/// wrapped by its parent) the value unwrapped through its parents, kept in the token's
/// bounded cache. Only that key's value is kept: its parents' values are opened for the
/// unwrapping and wiped at once ([`transient_value`]), so that a login that may use a DEK
/// and not its KEK or the master key (a decrypt-only principal) holds neither afterwards.
pub(crate) fn hierarchy_value(state: &TokenState, key: &Object) -> Result<Zeroizing<Vec<u8>>> {
    if key.sealed_attributes().contains(&CKA_VALUE) {
        return Err(Error::UserNotLoggedIn);
    }
    let stored = key.get(CKA_VALUE).ok_or(Error::Internal("key without value"))?;
    match tier_of(key) {
        None | Some(Tier::Master) => Ok(Zeroizing::new(stored.to_vec())),
        Some(_) => {
            let uid = key.get(CKA_UNIQUE_ID).unwrap_or_default();
            let fingerprint = prepared::fingerprint(&[uid, stored])?;
            let value = state.unwrapped.get_or_build(fingerprint, || {
                let parent_value = transient_value(state, parent_of(state, key)?)?;
                log::debug!("hierarchy key '{}' unwrapped for use", label_of(key));
                let value = rotation::unwrap_value(&parent_value, stored)?;
                // Kept in its own locked page, left out of core dumps (issue 13 item 14).
                LockedBuffer::copy_from(&value).map_err(|e| Error::Device(format!("key memory: {e}")))
            })?;
            Ok(Zeroizing::new(value.to_vec()))
        }
    }
}

fn label_of(key: &Object) -> String {
    String::from_utf8_lossy(key.get(CKA_LABEL).unwrap_or_default()).into_owned()
}

/// The parent of a KEK or DEK among the loaded objects.
fn parent_of<'s>(state: &'s TokenState, key: &Object) -> Result<&'s Object> {
    let parent_uid = key.get(CKA_ECM_PARENT_ID).ok_or(Error::Internal("no parent"))?;
    state
        .objects
        .values()
        .find(|o| o.get(CKA_UNIQUE_ID) == Some(parent_uid))
        .map(|o| o.as_ref())
        .ok_or(Error::Internal("parent key missing"))
}

/// A parent's value for one unwrapping, never cached: a key this login may not use is kept
/// sealed under the token key (its stored row, `ObjectCache::sealed_row`) and opened here
/// for that moment only; the value is wiped when the caller drops it.
fn transient_value(state: &TokenState, key: &Object) -> Result<Zeroizing<Vec<u8>>> {
    let at_rest = if key.sealed_attributes().contains(&CKA_VALUE) {
        let uid = key.get(CKA_UNIQUE_ID).ok_or(Error::Internal("hierarchy key without unique id"))?;
        let row = state.objects.sealed_row(uid).ok_or(Error::UserNotLoggedIn)?;
        let token_key = state.token_key.as_ref().ok_or(Error::UserNotLoggedIn)?;
        // The opened object is zeroized as it drops, at the end of this block.
        let opened = objects::object_from_store(row.clone(), Some(token_key))?;
        log::debug!("hierarchy key '{}' opened for a moment, to unwrap a key below it", label_of(key));
        Zeroizing::new(opened.get(CKA_VALUE).ok_or(Error::Internal("key without value"))?.to_vec())
    } else {
        Zeroizing::new(key.get(CKA_VALUE).ok_or(Error::Internal("key without value"))?.to_vec())
    };
    match tier_of(key) {
        None | Some(Tier::Master) => Ok(at_rest),
        Some(_) => rotation::unwrap_value(&transient_value(state, parent_of(state, key)?)?, &at_rest),
    }
}

impl Token {
    /// See [`hierarchy_value`].
    pub(crate) fn hierarchy_value(&self, state: &TokenState, key: &Object) -> Result<Zeroizing<Vec<u8>>> {
        hierarchy_value(state, key)
    }

    /// `C_GenerateKey` of a key of the hierarchy: the next version of its family. In one
    /// transaction the new key is stored (wrapped by the active key of the parent tier), the
    /// version it supersedes becomes decrypt-only, and every key of the next tier is
    /// rewrapped under it; no key value leaves the module. Returns the new key's handle and
    /// the approvals the rotation used up (in the same transaction).
    pub fn generate_in_hierarchy(
        &self,
        read_write: bool,
        mut key: Object,
        tier: Tier,
        tenant: Option<Vec<u8>>,
        period: u64,
    ) -> Result<(CK_OBJECT_HANDLE, Vec<ApprovalRecord>)> {
        let mut state = self.ready()?;
        state.view(read_write).may_write(true, true)?;
        let now = rotation::now();
        let plan: Plan = rotation::plan(
            tier,
            tenant.as_deref(),
            period,
            now,
            state.objects.iter().map(|(id, o)| (*id, o.as_ref())),
        )?;
        for a in &plan.attributes {
            key.set(a.kind, a.value.to_vec());
        }
        // The first version of a family is generated, later ones rotate it; a rotation the
        // policy asks approval for uses up approvals bound to the version it supersedes.
        let gate = match (plan.version, plan.supersedes) {
            (1, _) => {
                state.permits(&key, Operation::Generate, Error::ActionProhibited)?;
                None
            }
            (_, Some(old)) => {
                let current = state.objects.get(&old).ok_or(Error::Internal("planned key missing"))?;
                state.gate_for(&key, current, ManagementOp::Rotate, Error::ActionProhibited)?
            }
            (_, None) => {
                state.permits(&key, Operation::Rotate, Error::ActionProhibited)?;
                None
            }
        };
        let value = key.get(CKA_VALUE).ok_or(Error::Internal("generated key without value"))?.to_vec();
        let unique_id = key.get(CKA_UNIQUE_ID).ok_or(Error::Internal("key without unique id"))?.to_vec();
        // For the wrapping only, never cached (the parent may be a key this login may not
        // use otherwise).
        let value_of = |id: i64| -> Result<Zeroizing<Vec<u8>>> {
            let o = state.objects.get(&id).ok_or(Error::Internal("planned key missing"))?;
            transient_value(&state, o)
        };
        let at_rest = match plan.parent {
            Some(parent) => {
                let parent_object = &state.objects[&parent];
                let parent_uid = parent_object.get(CKA_UNIQUE_ID).ok_or(Error::Internal("no unique id"))?;
                key.set(CKA_ECM_PARENT_ID, parent_uid.to_vec());
                Some(rotation::wrap_value(&value_of(parent)?, &value)?)
            }
            None => None,
        };
        let rewrapped: Vec<(i64, Vec<u8>)> = plan
            .rewrap
            .iter()
            .map(|id| Ok((*id, rotation::wrap_value(&value, &value_of(*id)?)?)))
            .collect::<Result<_>>()?;
        let superseded = hierarchy::superseded(now);
        let token_key = state.token_key.clone();
        // Every row the transaction changes, computed before it starts.
        let mut updates: Vec<(i64, Vec<StoredAttribute>)> = Vec::new();
        for (id, wrapped) in &rewrapped {
            let child = &state.objects[id];
            updates.push((
                *id,
                vec![
                    stored_attribute(*id, child, CKA_VALUE, wrapped, token_key.as_ref())?,
                    stored_attribute(*id, child, CKA_ECM_PARENT_ID, &unique_id, token_key.as_ref())?,
                ],
            ));
        }
        if let Some(old) = plan.supersedes {
            let previous = &state.objects[&old];
            let rows = superseded
                .iter()
                .map(|a| stored_attribute(old, previous, a.kind, &a.value, token_key.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            updates.push((old, rows));
        }
        let mut new_id = 0;
        let mut consumed = Vec::new();
        let now_ms = crate::audit::record::now_ms();
        // Sealed and wrapped under the login's keys: only in their epoch (`epoch.rs`).
        self.write_as_login(&mut state, &mut |w| {
            consumed = super::approvals::consume(gate.as_ref(), w, now_ms)?;
            new_id = w.insert_object()?;
            w.put_attributes(
                new_id,
                &object_to_store_with_value(new_id, &key, token_key.as_ref(), at_rest.as_deref())?,
            )?;
            for (id, rows) in &updates {
                w.update_attributes(*id, rows)?;
            }
            Ok(())
        })?;
        // Committed: bring the cache up to date. Keys below the master are kept wrapped.
        for (id, wrapped) in &rewrapped {
            if let Some(o) = state.objects.get(id) {
                let mut child = Object::clone(o);
                child.set(CKA_ECM_PARENT_ID, unique_id.clone());
                child.set(CKA_VALUE, wrapped.clone());
                state.objects.insert(*id, Arc::new(child));
            }
        }
        if let Some(wrapped) = &at_rest {
            key.set(CKA_VALUE, wrapped.clone());
        }
        if let Some(old) = plan.supersedes
            && let Some(o) = state.objects.get(&old)
        {
            let mut previous = Object::clone(o);
            for a in &superseded {
                previous.set(a.kind, a.value.to_vec());
            }
            state.objects.insert(old, Arc::new(previous));
        }
        state.objects.insert(new_id, Arc::new(key));
        Ok((self.handles.write().handle_of(ObjectRef::Token { slot: self.slot_id, id: new_id }), consumed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::values::Values;
    use crate::store::StoredObject;
    use crate::token::TokenKey;
    use crate::token::loading::open_for_login;
    use crate::token::object_cache::ObjectCache;
    use crate::vendor::CKA_ECM_TIER;

    const POLICY: &str = r#"{"key_permissions": {"ctx": {"keys": ["dek-*"], "operations": ["decrypt"]}}}"#;
    const MASTER: [u8; 32] = [0x11; 32];
    const KEK: [u8; 32] = [0x22; 32];
    const DEK: [u8; 32] = [0x33; 32];

    /// A key of `tier` as the store holds it: sealed under `token_key`, below the master
    /// also wrapped by its parent's value.
    fn stored(
        id: i64,
        tier: Tier,
        label: &str,
        value: &[u8],
        parent: Option<(&[u8], &[u8])>,
        key: &TokenKey,
    ) -> StoredObject {
        let ulong = |n: CK_ULONG| n.to_ne_bytes();
        let mut values = Values::new();
        values.insert(CKA_CLASS, &ulong(CKO_SECRET_KEY));
        values.insert(CKA_KEY_TYPE, &ulong(CKK_AES));
        values.insert(CKA_LABEL, label.as_bytes());
        values.insert(CKA_UNIQUE_ID, label.as_bytes());
        values.insert(CKA_ECM_TIER, &ulong(tier.code()));
        values.insert(CKA_VALUE, value);
        let at_rest = parent.map(|(uid, parent_value)| {
            values.insert(CKA_ECM_PARENT_ID, uid);
            rotation::wrap_value(parent_value, value).unwrap()
        });
        let object = Object::from_parts(values, Vec::new()).unwrap();
        let attributes = object_to_store_with_value(id, &object, Some(key), at_rest.as_deref()).unwrap();
        StoredObject { id, attributes }
    }

    /// Loads the master key, the KEK and the DEK (all under `token_key`) into `state` as
    /// `Token::complete` does with the rows; returns how many objects were kept.
    fn load(state: &mut TokenState, token_key: &TokenKey) -> usize {
        let rows = [
            stored(1, Tier::Master, "master-v1", &MASTER, None, token_key),
            stored(2, Tier::Kek, "kek-v1", &KEK, Some((b"master-v1", &MASTER)), token_key),
            stored(3, Tier::Dek, "dek-acme-v1", &DEK, Some((b"kek-v1", &KEK)), token_key),
        ];
        let mut loaded = HashMap::new();
        let mut sealed = Vec::new();
        for row in rows {
            let (o, kept) = open_for_login(state, row.clone(), Some(token_key)).unwrap();
            if let Some(kept) = kept {
                sealed.push((o.get(CKA_UNIQUE_ID).unwrap().to_vec(), kept));
            }
            loaded.insert(row.id, o);
        }
        open_wrapped_values(&mut loaded);
        let kept = loaded.len();
        state.objects = ObjectCache::from_loaded(loaded);
        for (uid, row) in sealed {
            state.objects.keep_sealed_row(uid, row);
        }
        kept
    }

    #[test]
    fn a_decrypt_only_principal_uses_its_dek_and_holds_no_value_of_the_kek_or_master_key() {
        let token_key = TokenKey::new([0x42; crate::mechanism::seal::KEY_LEN]);
        let mut state = TokenState::principal_login("ctx", POLICY);
        state.token_key = Some(token_key.clone());
        let loaded = load(&mut state, &token_key);
        assert_eq!(loaded, 3, "the DEK under a sealed KEK is kept, unchecked");
        let opened = |id: i64| state.objects[&id].get(CKA_VALUE).map(<[u8]>::to_vec);
        assert_eq!(opened(1), None, "the master key stays sealed");
        assert_eq!(opened(2), None, "the KEK stays sealed");

        // The DEK is usable: its value comes through the KEK and the master key.
        let dek = state.objects[&3].clone();
        assert_eq!(&hierarchy_value(&state, &dek).unwrap()[..], &DEK);
        // Afterwards the cache holds the DEK's value and no other: the objects are still
        // sealed, and no unwrapped value of the KEK is cached.
        assert_eq!((opened(1), opened(2)), (None, None));
        let kek = state.objects[&2].clone();
        assert_eq!(hierarchy_value(&state, &kek), Err(Error::UserNotLoggedIn), "not usable by this login");
        for (id, o) in [(2, &kek), (3, &dek)] {
            let fingerprint =
                prepared::fingerprint(&[o.get(CKA_UNIQUE_ID).unwrap(), o.get(CKA_VALUE).unwrap_or_default()])
                    .unwrap();
            let cached = state.unwrapped.get_or_build(fingerprint, || Err(Error::Internal("not cached")));
            assert_eq!(cached.is_ok(), id == 3, "key {id}");
        }
        // A login that may use the KEK and the DEK but not the master key: the KEK is left
        // unchecked, and so is the DEK below it (not dropped), and both are usable.
        let mut rotation_state = TokenState::principal_login(
            "rot",
            r#"{"key_permissions": {"rot": {"keys": ["dek-*", "kek-*"], "operations": ["rotate"]}}}"#,
        );
        rotation_state.token_key = Some(token_key.clone());
        assert_eq!(load(&mut rotation_state, &token_key), 3, "nothing dropped");
        let (kek, dek) = (rotation_state.objects[&2].clone(), rotation_state.objects[&3].clone());
        assert_eq!(&hierarchy_value(&rotation_state, &kek).unwrap()[..], &KEK);
        assert_eq!(&hierarchy_value(&rotation_state, &dek).unwrap()[..], &DEK);

        // A damaged KEK row is refused at the DEK's first use, not used with a wrong value.
        state.unwrapped.clear();
        let mut bad =
            stored(2, Tier::Kek, "kek-v1", &[0x99; 32], Some((b"master-v1", &[0x98; 32])), &token_key);
        bad.id = 2;
        state.objects.keep_sealed_row(b"kek-v1".to_vec(), bad);
        assert!(hierarchy_value(&state, &dek).is_err());
    }
}
