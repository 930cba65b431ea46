//! Object handles: one per object for the life of the process, whichever session or thread
//! finds it, so that two lookups of one object never yield two handles.

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SLOT_ID};

use super::number_map::NumberMap;

/// What a handle stands for: a row of a token's store, or a session object in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectRef {
    Token { slot: CK_SLOT_ID, id: i64 },
    Session { slot: CK_SLOT_ID, id: u64 },
}

impl ObjectRef {
    pub fn slot(self) -> CK_SLOT_ID {
        match self {
            ObjectRef::Token { slot, .. } | ObjectRef::Session { slot, .. } => slot,
        }
    }
}

#[derive(Default)]
pub struct HandleTable {
    next: CK_OBJECT_HANDLE,
    by_handle: NumberMap<CK_OBJECT_HANDLE, ObjectRef>,
    by_ref: NumberMap<ObjectRef, CK_OBJECT_HANDLE>,
}

impl HandleTable {
    /// The handle of `object`, assigned on first sight. Handles start at 1 (0 is
    /// `CK_INVALID_HANDLE`) and are never reused.
    pub fn handle_of(&mut self, object: ObjectRef) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.by_ref.get(&object) {
            return *h;
        }
        self.next += 1;
        let h = self.next;
        self.by_handle.insert(h, object);
        self.by_ref.insert(object, h);
        h
    }

    pub fn resolve(&self, handle: CK_OBJECT_HANDLE) -> Option<ObjectRef> {
        self.by_handle.get(&handle).copied()
    }

    pub fn forget(&mut self, object: ObjectRef) {
        if let Some(h) = self.by_ref.remove(&object) {
            self.by_handle.remove(&h);
        }
    }

    /// Forgets every handle of `slot` for which `keep` says no.
    pub fn retain_slot(&mut self, slot: CK_SLOT_ID, mut keep: impl FnMut(ObjectRef) -> bool) {
        self.by_ref.retain(|r, _| r.slot() != slot || keep(*r));
        let by_ref = &self.by_ref;
        self.by_handle.retain(|_, r| by_ref.contains_key(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_handle_per_object_never_reused() {
        let mut t = HandleTable::default();
        let a = ObjectRef::Token { slot: 0, id: 1 };
        let b = ObjectRef::Session { slot: 0, id: 1 };
        let ha = t.handle_of(a);
        assert_eq!(t.handle_of(a), ha);
        let hb = t.handle_of(b);
        assert_ne!(ha, hb);
        assert_ne!(ha, 0);
        t.forget(a);
        assert_eq!(t.resolve(ha), None);
        assert!(t.handle_of(a) > hb, "a forgotten object gets a new handle");
        t.retain_slot(0, |r| matches!(r, ObjectRef::Session { .. }));
        assert_eq!(t.resolve(hb), Some(b));
        assert_eq!(t.handle_of(a), t.handle_of(a));
    }
}
