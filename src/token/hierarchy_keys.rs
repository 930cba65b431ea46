//! The envelope hierarchy on a token: generating (rotating) its keys in one transaction, and
//! opening the values that are stored wrapped by their parent key.

use std::collections::HashMap;
use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::handles::ObjectRef;
use super::objects::{object_to_store_with_value, stored_attribute};
use super::{Token, TokenState};
use crate::hierarchy::rotation::{self, Plan};
use crate::hierarchy::{self, Tier, tier_of};
use crate::mechanism::prepared;
use crate::object::Object;
use crate::policy::Operation;
use crate::policy::approval_ahead::ManagementOp;
use crate::store::{ApprovalRecord, StoredAttribute};
use crate::vendor::CKA_ECM_PARENT_ID;
use crate::{Error, Result};

/// Checks that the stored (parent-wrapped) `CKA_VALUE` of each KEK and DEK opens under its
/// parent, parents first; the opened values are not kept (a key of the hierarchy is
/// unwrapped when used, see [`Token::hierarchy_value`]). An object whose parent is missing
/// or whose value does not open is dropped from view and logged: it is damaged, and never
/// used with a wrong value.
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
                    None => parent.get(CKA_VALUE).ok_or(Error::StoreCorrupt("parent sealed".into()))?,
                };
                let wrapped = child.get(CKA_VALUE).ok_or(Error::StoreCorrupt("no value".into()))?;
                let value = rotation::unwrap_value(parent_value, wrapped)
                    .map_err(|_| Error::StoreCorrupt("value does not open under its parent".into()))?;
                Ok::<_, Error>((child.get(CKA_UNIQUE_ID).map(<[u8]>::to_vec), value))
            })();
            match opened {
                Ok((uid, value)) => {
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

impl Token {
    /// The plain value of a key: its `CKA_VALUE`, or for a KEK or DEK (stored wrapped by its
    /// parent) the value unwrapped through its parents, kept in the token's bounded cache.
    pub(crate) fn hierarchy_value(&self, state: &TokenState, key: &Object) -> Result<Zeroizing<Vec<u8>>> {
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
                    let parent_uid = key.get(CKA_ECM_PARENT_ID).ok_or(Error::Internal("no parent"))?;
                    let parent = state
                        .objects
                        .values()
                        .find(|o| o.get(CKA_UNIQUE_ID) == Some(parent_uid))
                        .ok_or(Error::Internal("parent key missing"))?;
                    let parent_value = self.hierarchy_value(state, parent)?;
                    rotation::unwrap_value(&parent_value, stored)
                })?;
                Ok(Zeroizing::new(value.to_vec()))
            }
        }
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
        let value_of = |id: i64| -> Result<Zeroizing<Vec<u8>>> {
            let o = state.objects.get(&id).ok_or(Error::Internal("planned key missing"))?;
            self.hierarchy_value(&state, o)
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
        let store = state.store.as_mut().ok_or(Error::TokenNotRecognized)?;
        let mut new_id = 0;
        let mut consumed = Vec::new();
        let now_ms = crate::audit::record::now_ms();
        store.write(&mut |w| {
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
