//! Object management on a token (spec chapter 5.7): create, copy, destroy, read and change
//! attributes, search; session objects and token objects behind one set of handles.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::approvals;
use super::handles::ObjectRef;
use super::object_cache::ObjectCache;
use super::{SessionObject, Token, TokenKey, TokenState};
use crate::hierarchy;
use crate::mechanism::seal;
use crate::object::template::{self, Actor, Change, Origin};
use crate::object::{Attribute, AttributeRead, Object, Values};
use crate::policy::approval_ahead::ManagementOp;
use crate::policy::{Access, Decision, Operation, SessionView};
use crate::store::{ApprovalRecord, StoreWriter, StoredAttribute, StoredObject};
use crate::{Error, Result};

/// The associated data binding a sealed value to its object and attribute.
pub(crate) fn seal_context(id: i64, attribute: CK_ATTRIBUTE_TYPE) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..8].copy_from_slice(&id.to_be_bytes());
    c[8..].copy_from_slice(&attribute.to_be_bytes());
    c
}

/// Rebuilds an object from its stored row, opening sealed values if `key` is given.
pub(crate) fn object_from_store(stored: StoredObject, key: Option<&TokenKey>) -> Result<Object> {
    let mut values = Values::new();
    let mut sealed = Vec::new();
    for a in stored.attributes {
        let kind = a.kind as CK_ATTRIBUTE_TYPE;
        if !a.sealed {
            values.insert(kind, &a.value);
            continue;
        }
        match key {
            Some(k) => {
                let clear = seal::open(k, &seal_context(stored.id, kind), &a.value)
                    .map_err(|_| Error::StoreCorrupt(format!("attribute {kind:#x} does not open")))?;
                values.insert(kind, &clear);
            }
            None => sealed.push(kind),
        }
    }
    Object::from_parts(values, sealed)
}

/// The stored form of `object` as row `id`: its secret values sealed under the token key.
fn object_to_store(id: i64, object: &Object, key: Option<&TokenKey>) -> Result<Vec<StoredAttribute>> {
    object_to_store_with_value(id, object, key, None)
}

/// As `object_to_store`, with `value_at_rest` stored (sealed) in place of `CKA_VALUE`: a key
/// of the hierarchy below the master is kept wrapped by its parent.
pub(crate) fn object_to_store_with_value(
    id: i64,
    object: &Object,
    key: Option<&TokenKey>,
    value_at_rest: Option<&[u8]>,
) -> Result<Vec<StoredAttribute>> {
    if !object.sealed_attributes().is_empty() {
        // Values we could not open cannot be written elsewhere: the user must log in first.
        return Err(Error::UserNotLoggedIn);
    }
    object
        .attributes()
        .map(|(kind, value)| {
            let value = match value_at_rest {
                Some(v) if kind == CKA_VALUE => v,
                _ => value,
            };
            stored_attribute(id, object, kind, value, key)
        })
        .collect()
}

/// The stored form of one attribute: sealed under the token key if it is secret at rest,
/// which needs someone logged in.
pub(crate) fn stored_attribute(
    id: i64,
    object: &Object,
    kind: CK_ATTRIBUTE_TYPE,
    value: &[u8],
    key: Option<&TokenKey>,
) -> Result<StoredAttribute> {
    if object.is_secret_at_rest(kind) {
        let k = key.ok_or(Error::UserNotLoggedIn)?;
        let sealed = seal::seal(k, &seal_context(id, kind), value)?;
        Ok(StoredAttribute { kind, value: sealed, sealed: true })
    } else {
        Ok(StoredAttribute { kind, value: value.to_vec(), sealed: false })
    }
}

/// The operations that wait in the session for approvers when the policy asks approval of
/// them (`crate::policy::approval`).
const IN_BAND_APPROVED: [Operation; 4] =
    [Operation::Encrypt, Operation::Decrypt, Operation::Sign, Operation::Verify];

/// `CKA_ALWAYS_AUTHENTICATE` as the session's login experiences the key: true when stored
/// so, or when the policy lets this login use the key only with approvers logging in
/// (`C_Login(CKU_CONTEXT_SPECIFIC)`) for each operation, which is what the attribute tells
/// an application to expect. A computed view, not a change to the key: the SO and a
/// principal whose rule needs no approval read false on the same key. Secret keys have no
/// such attribute in the standard's tables; since their operations wait for approvers in
/// the same way, they report it too (read-only: it is never stored on them).
fn always_authenticate(state: &TokenState, object: &Object) -> AttributeRead {
    let stored = match object.read(CKA_ALWAYS_AUTHENTICATE) {
        AttributeRead::Value(v) => v.first().is_some_and(|b| *b != 0),
        AttributeRead::Invalid if object.profile() == crate::object::Profile::SecretKey => false,
        // A public key, a certificate, data: not an attribute of theirs.
        other => return other,
    };
    let label = object.get(CKA_LABEL).unwrap_or_default();
    let gated = IN_BAND_APPROVED.iter().any(|op| state.decide(label, *op) == Decision::NeedsApproval);
    AttributeRead::Value(Zeroizing::new(crate::object::attribute::encode_bool(stored || gated)))
}

/// Whether this login may read the secret values of `object` (`CKA_VALUE` of a secret key,
/// a private key's components: those sealed at rest): for a key, the policy's `read`,
/// which an approval cannot stand in for (a read cannot wait for approvers). Visibility
/// alone (any permission on the key) is not enough: a principal allowed only to `sign`
/// with a key may not take its value out.
fn may_read_values(state: &TokenState, object: &Object) -> bool {
    !object.profile().is_key()
        || state.decide(object.get(CKA_LABEL).unwrap_or_default(), Operation::Read) == Decision::Allow
}

impl Token {
    /// Looks up a handle this session may see; anything else is an invalid handle.
    pub(crate) fn visible(
        &self,
        state: &TokenState,
        view: SessionView,
        handle: CK_OBJECT_HANDLE,
    ) -> Result<(ObjectRef, Arc<Object>, Access)> {
        let object_ref = self.handles.read().resolve(handle).ok_or(Error::ObjectHandleInvalid)?;
        let object = match object_ref {
            ObjectRef::Token { slot, id } if slot == self.slot_id => state.objects.get(&id).cloned(),
            ObjectRef::Session { slot, id } if slot == self.slot_id => {
                state.session_objects.get(&id).map(|s| s.object.clone())
            }
            _ => None,
        }
        .ok_or(Error::ObjectHandleInvalid)?;
        // Keys the policy lets this login do nothing with do not exist for it.
        if !state.sees(&object) {
            return Err(Error::ObjectHandleInvalid);
        }
        match view.access(object.is_token(), object.is_private()) {
            Access::None => Err(Error::ObjectHandleInvalid),
            access => Ok((object_ref, object, access)),
        }
    }

    /// An object the session may destroy or change: visible to it, reached in a read-write
    /// session if it is a token object (else `CKR_SESSION_READ_ONLY`), and with `permitted_by`
    /// (`CKA_DESTROYABLE`, `CKA_MODIFIABLE`) true (else `CKR_ACTION_PROHIBITED`).
    fn changeable(
        &self,
        state: &TokenState,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        permitted_by: CK_ATTRIBUTE_TYPE,
    ) -> Result<(ObjectRef, Arc<Object>)> {
        let (object_ref, object, access) = self.visible(state, state.view(read_write), handle)?;
        if access == Access::ReadOnly {
            return Err(Error::SessionReadOnly);
        }
        if !object.flag(permitted_by) {
            return Err(Error::ActionProhibited);
        }
        Ok((object_ref, object))
    }

    /// Stores a new object (in the store for token objects, in memory for session objects)
    /// and returns its handle.
    fn insert(
        &self,
        state: &mut TokenState,
        session: CK_SESSION_HANDLE,
        object: Object,
    ) -> Result<CK_OBJECT_HANDLE> {
        Ok(self.insert_all(state, session, vec![object])?[0])
    }

    /// Stores new objects all together or not at all (a key pair is never half made): the
    /// token objects in one transaction, the session objects once it has committed.
    fn insert_all(
        &self,
        state: &mut TokenState,
        session: CK_SESSION_HANDLE,
        objects: Vec<Object>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let key = state.token_key.clone();
        let mut ids = Vec::new();
        if objects.iter().any(Object::is_token) {
            // Sealed under the login's key: only into the epoch that key belongs to (`epoch.rs`).
            self.write_as_login(state, &mut |w| {
                ids.clear();
                for object in objects.iter().filter(|o| o.is_token()) {
                    let id = w.insert_object()?;
                    w.put_attributes(id, &object_to_store(id, object, key.as_ref())?)?;
                    ids.push(id);
                }
                Ok(())
            })?;
        }
        let mut token_ids = ids.into_iter();
        let mut refs = Vec::with_capacity(objects.len());
        for object in objects {
            let object_ref = if object.is_token() {
                let id = token_ids.next().ok_or(Error::Internal("token object without an id"))?;
                state.objects.insert(id, Arc::new(object));
                ObjectRef::Token { slot: self.slot_id, id }
            } else {
                state.next_session_object += 1;
                let id = state.next_session_object;
                state.session_objects.insert(id, SessionObject { owner: session, object: Arc::new(object) });
                ObjectRef::Session { slot: self.slot_id, id }
            };
            refs.push(object_ref);
        }
        let mut handles = self.handles.write();
        Ok(refs.into_iter().map(|r| handles.handle_of(r)).collect())
    }

    pub fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        read_write: bool,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let mut state = self.ready_lazy()?;
        let view = state.view(read_write);
        hierarchy::refuse_outside_generation(template)?;
        let actor = Actor { is_so: view.is_so() };
        let object =
            template::new_object_with(template, None, Origin::Create, actor, self.config.object_defaults())?;
        may_make(&state, view, &object)?;
        self.insert(&mut state, session, object)
    }

    /// Stores objects the module made (a generated key pair, say) after the same checks as a
    /// create, all or none.
    pub fn store_new_objects(
        &self,
        session: CK_SESSION_HANDLE,
        read_write: bool,
        objects: Vec<Object>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut state = self.ready_lazy()?;
        let view = state.view(read_write);
        for o in &objects {
            may_make(&state, view, o)?;
        }
        self.insert_all(&mut state, session, objects)
    }

    /// Stores an object the module made (a generated, unwrapped or derived key) after the
    /// same checks as a create.
    ///
    /// A session object never reaches the store, so the store is asked about other
    /// processes' changes (to the policy that permits making it, or a re-initialization) only
    /// within the staleness a key use allows ([`Token::ready_for_use`]): that check, an SQLite
    /// statement, cost as much as the rest of making the object. A token object is written,
    /// so its store is checked as for any change.
    pub fn store_new_object(
        &self,
        session: CK_SESSION_HANDLE,
        read_write: bool,
        mut object: Object,
    ) -> Result<CK_OBJECT_HANDLE> {
        // A CKA_CHECK_VALUE the template gave is checked once the module has made the value.
        template::settle_check_value(&mut object)?;
        let mut state = if object.is_token() { self.ready_lazy()? } else { self.ready_for_use()? };
        may_make(&state, state.view(read_write), &object)?;
        self.insert(&mut state, session, object)
    }

    pub fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let mut state = self.ready_lazy()?;
        let view = state.view(read_write);
        let (_, source, _) = self.visible(&state, view, handle)?;
        if !source.flag(CKA_COPYABLE) {
            return Err(Error::ActionProhibited);
        }
        // A copy holds the source's value under attributes the caller chooses (a label its
        // rules let it read, say): the source needs `read`, the copy `generate` (`may_make`).
        if !may_read_values(&state, &source) {
            return Err(Error::ActionProhibited);
        }
        hierarchy::refuse_outside_generation(template)?;
        if !source.sealed_attributes().is_empty() {
            // A copy needs the values themselves, which are sealed until someone logs in.
            return Err(Error::UserNotLoggedIn);
        }
        let copy = template::changed_object(&source, template, Change::Copy, Actor { is_so: view.is_so() })?;
        may_make(&state, view, &copy)?;
        self.insert(&mut state, session, copy)
    }

    /// `C_DestroyObject`; returns the approvals it used up (when the policy asks approval
    /// of this login, see `approvals.rs`), which the same transaction marked used.
    pub fn destroy_object(&self, read_write: bool, handle: CK_OBJECT_HANDLE) -> Result<Vec<ApprovalRecord>> {
        let mut state = self.ready_lazy()?;
        let (object_ref, object) = self.changeable(&state, read_write, handle, CKA_DESTROYABLE)?;
        let gate = state.gate(&object, ManagementOp::Destroy, Error::ActionProhibited)?;
        if hierarchy::tier_of(&object).is_some() {
            // Whether another key of the hierarchy still names it as parent needs them all
            // (`check_destroy` has nothing to check for other objects).
            self.complete(&mut state)?;
            hierarchy::check_destroy(&object, state.objects.values().map(|o| o.as_ref()))?;
        }
        let now = crate::audit::record::now_ms();
        let consumed;
        match object_ref {
            ObjectRef::Token { id, .. } => {
                let delete = |w: &mut dyn StoreWriter| w.delete_object(id);
                let Some(used) = change_stored(self, &mut state, id, gate.as_ref(), now, delete, |_| Ok(()))?
                else {
                    // Another process destroyed it first; its handle is gone for us too.
                    self.handles.write().forget(object_ref);
                    return Err(Error::ObjectHandleInvalid);
                };
                consumed = used;
                state.objects.remove(&id);
            }
            ObjectRef::Session { id, .. } => {
                // A session object is not in the store; its approvals are, and are used up
                // before the object goes (removing it from memory cannot fail).
                consumed = consume_alone(self, &mut state, gate.as_ref(), now)?;
                state.session_objects.remove(&id);
            }
        }
        self.handles.write().forget(object_ref);
        Ok(consumed)
    }

    pub fn object_size(&self, read_write: bool, handle: CK_OBJECT_HANDLE) -> Result<usize> {
        let state = self.ready_lazy()?;
        let (_, object, _) = self.visible(&state, state.view(read_write), handle)?;
        Ok(object.size())
    }

    pub fn get_attributes(
        &self,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        let state = self.ready_lazy()?;
        let (_, object, _) = self.visible(&state, state.view(read_write), handle)?;
        let readable = may_read_values(&state, &object);
        Ok(kinds
            .iter()
            .map(|k| match *k {
                CKA_ALWAYS_AUTHENTICATE => always_authenticate(&state, &object),
                // A value the policy does not let this login read is sensitive to it.
                kind if !readable && object.is_secret_at_rest(kind) => AttributeRead::Sensitive,
                kind => object.read(kind),
            })
            .collect())
    }

    /// `C_SetAttributeValue`; returns the approvals it used up, as `destroy_object` does.
    pub fn set_attributes(
        &self,
        read_write: bool,
        handle: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<Vec<ApprovalRecord>> {
        let mut state = self.ready_lazy()?;
        let (object_ref, object) = self.changeable(&state, read_write, handle, CKA_MODIFIABLE)?;
        let gate = state.gate_change(&object, template, Error::ActionProhibited)?;
        hierarchy::check_change(&object, template)?;
        let actor = Actor { is_so: state.view(read_write).is_so() };
        let changed = template::changed_object(&object, template, Change::Set, actor)?;
        let now = crate::audit::record::now_ms();
        let consumed;
        match object_ref {
            ObjectRef::Token { id, .. } => {
                // Only the attributes that change are written, so a public object whose key
                // value is sealed can be relabelled without a login.
                let key = state.token_key.clone();
                let stored = changed
                    .attributes()
                    .filter(|(kind, value)| object.get(*kind) != Some(*value))
                    .map(|(kind, value)| stored_attribute(id, &changed, kind, value, key.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
                let exists = |w: &mut dyn StoreWriter| w.object_exists(id);
                let update = |w: &mut dyn StoreWriter| w.update_attributes(id, &stored);
                consumed = change_stored(self, &mut state, id, gate.as_ref(), now, exists, update)?
                    .ok_or(Error::ObjectHandleInvalid)?;
                state.objects.insert(id, Arc::new(changed));
            }
            ObjectRef::Session { id, .. } => {
                consumed = consume_alone(self, &mut state, gate.as_ref(), now)?;
                if let Some(s) = state.session_objects.get_mut(&id) {
                    s.object = Arc::new(changed);
                }
            }
        }
        Ok(consumed)
    }

    /// The handles of every object this session may see that matches `template`, in a
    /// stable order (token objects by id, then session objects by id).
    pub fn find(&self, read_write: bool, template: &[Attribute]) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let mut state = self.ready_lazy()?;
        // A search that names a label, or else a CKA_ID, looks only at the objects that have
        // it (the cache's indexes); they are read now if they were not. Any other search
        // reads every object.
        let indexed = template
            .iter()
            .find(|a| a.kind == CKA_LABEL)
            .or_else(|| template.iter().find(|a| ObjectCache::indexes(a.kind)));
        match indexed {
            Some(named) => {
                let unread = state.objects.unloaded_with(named.kind, &named.value);
                if !unread.is_empty() {
                    self.load_ids(&mut state, &unread)?;
                }
            }
            None => self.complete(&mut state)?,
        }
        let view = state.view(read_write);
        // A search naming a secret value would be a guessing oracle for it: only over keys
        // whose values this login may read.
        let names_values = |o: &Object| template.iter().any(|a| o.is_secret_at_rest(a.kind));
        let visible = |o: &Object| {
            view.access(o.is_token(), o.is_private()) != Access::None
                && state.sees(o)
                && (!names_values(o) || may_read_values(&state, o))
                && o.matches(template)
        };
        let mut token_ids: Vec<i64> = match indexed {
            Some(named) => state
                .objects
                .ids_with(named.kind, &named.value)
                .filter(|id| state.objects.get(id).is_some_and(|o| visible(o)))
                .collect(),
            None => state.objects.iter().filter(|(_, o)| visible(o)).map(|(id, _)| *id).collect(),
        };
        token_ids.sort_unstable();
        let mut session_ids: Vec<u64> =
            state.session_objects.iter().filter(|(_, s)| visible(&s.object)).map(|(id, _)| *id).collect();
        session_ids.sort_unstable();
        let mut handles = self.handles.write();
        let slot = self.slot_id;
        let refs = token_ids
            .into_iter()
            .map(|id| ObjectRef::Token { slot, id })
            .chain(session_ids.into_iter().map(|id| ObjectRef::Session { slot, id }));
        Ok(refs.map(|r| handles.handle_of(r)).collect())
    }

    /// Drops the session objects of a closed session.
    pub fn drop_session_objects(&self, session: CK_SESSION_HANDLE) {
        let mut state = self.lock();
        let gone: Vec<u64> =
            state.session_objects.iter().filter(|(_, o)| o.owner == session).map(|(id, _)| *id).collect();
        let mut handles = self.handles.write();
        for id in gone {
            state.session_objects.remove(&id);
            handles.forget(ObjectRef::Session { slot: self.slot_id, id });
        }
    }
}

/// May this session make `object`? The access rules, and for a key the policy's `generate`
/// (`CKR_ACTION_PROHIBITED` otherwise).
fn may_make(state: &TokenState, view: crate::policy::SessionView, object: &Object) -> Result<()> {
    view.may_write(object.is_token(), object.is_private())?;
    state.permits(object, Operation::Generate, Error::ActionProhibited)
}

/// Changes the stored object `id` and uses up the approvals `gate` asks for, in one
/// transaction: `exists` answers whether the object is there (`C_DestroyObject` deletes it
/// in asking), then `change` writes. `None` if it was gone (another process destroyed it
/// first): then nothing is written or used up (rolled back), and it leaves the cache. Only
/// in the epoch of the login it is made under (`epoch.rs`).
fn change_stored(
    token: &Token,
    state: &mut TokenState,
    id: i64,
    gate: Option<&approvals::Gate>,
    now: u64,
    mut exists: impl FnMut(&mut dyn StoreWriter) -> Result<bool>,
    mut change: impl FnMut(&mut dyn StoreWriter) -> Result<()>,
) -> Result<Option<Vec<ApprovalRecord>>> {
    let mut existed = false;
    let mut consumed = Vec::new();
    let written = token.write_as_login(state, &mut |w| {
        existed = exists(w)?;
        if !existed {
            // Nothing to change, so nothing may be used up: roll back.
            return Err(Error::ObjectHandleInvalid);
        }
        change(w)?;
        consumed = approvals::consume(gate, w, now)?;
        Ok(())
    });
    match written {
        Ok(()) => Ok(Some(consumed)),
        Err(Error::ObjectHandleInvalid) if !existed => {
            state.objects.remove(&id);
            Ok(None)
        }
        // A stale login (`epoch.rs`) is refused before the object is looked at.
        Err(e) => Err(e),
    }
}

/// Uses up the approvals `gate` asks for in a transaction of their own (for a change that
/// is not in the store: a session object's), before the change is made.
fn consume_alone(
    token: &Token,
    state: &mut TokenState,
    gate: Option<&approvals::Gate>,
    now: u64,
) -> Result<Vec<ApprovalRecord>> {
    if gate.is_none() {
        return Ok(Vec::new());
    }
    let mut consumed = Vec::new();
    token.write_as_login(state, &mut |w| {
        consumed = approvals::consume(gate, w, now)?;
        Ok(())
    })?;
    Ok(consumed)
}
