//! A token's objects in memory, with indexes by label and by `CKA_ID`, so that the most
//! common searches — an application looking for its key by `CKA_LABEL`, or (as OpenSSL's
//! PKCS#11 engine and provider, and PKCS#11 URIs, do) by `CKA_ID` — do not scan every object.
//!
//! The cache may be incomplete: after a (re)load from the store only each object's id, label
//! and `CKA_ID` are known, and an object's rows are read (and its secrets opened) when it is
//! first looked for — by a search on its label or `CKA_ID`, a handle, or an operation that
//! needs every object (`Token::complete`). So a new process's first login costs what it uses
//! rather than a read of every row of the store. Every object a handle names is loaded (see
//! `Token::refresh`).

use std::collections::{BTreeSet, HashMap};
use std::ops::Index;
use std::sync::Arc;

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CKA_ID, CKA_LABEL};

use super::number_map::NumberMap;
use crate::object::Object;
use crate::store::{ObjectNames, StoredObject};

/// What a search may find an object by before its rows are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Names {
    label: Vec<u8>,
    cka_id: Option<Vec<u8>>,
}

impl Names {
    fn of(object: &Object) -> Names {
        Names {
            label: object.get(CKA_LABEL).unwrap_or_default().to_vec(),
            cka_id: object.get(CKA_ID).map(<[u8]>::to_vec),
        }
    }
}

/// Object ids by a name (a label, a `CKA_ID`).
type NameIndex = HashMap<Vec<u8>, BTreeSet<i64>>;

#[derive(Default)]
pub struct ObjectCache {
    objects: NumberMap<i64, Arc<Object>>,
    /// Objects in the store whose rows are not read yet, with what identifies them.
    unloaded: NumberMap<i64, Names>,
    by_label: NameIndex,
    /// Objects that have a `CKA_ID`, by it.
    by_cka_id: NameIndex,
    /// The stored rows of keys of the envelope hierarchy the login may not use (a
    /// decrypt-only principal's master key and KEK), by `CKA_UNIQUE_ID`: their values stay
    /// sealed under the token key in memory, opened only for the moment a key below them the
    /// login may use is unwrapped (`Token::hierarchy_value`).
    sealed_rows: HashMap<Vec<u8>, StoredObject>,
}

fn index(index: &mut NameIndex, key: &[u8], id: i64) {
    index.entry(key.to_vec()).or_default().insert(id);
}

fn unindex(index: &mut NameIndex, key: &[u8], id: i64) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

impl ObjectCache {
    /// A cache that knows of each object only its id, label and `CKA_ID`.
    pub fn from_names(names: Vec<ObjectNames>) -> ObjectCache {
        let mut cache = ObjectCache::default();
        for n in names {
            let names = Names { label: n.label, cka_id: n.cka_id };
            cache.index_names(n.id, &names);
            cache.unloaded.insert(n.id, names);
        }
        cache
    }

    fn index_names(&mut self, id: i64, names: &Names) {
        index(&mut self.by_label, &names.label, id);
        if let Some(cka_id) = &names.cka_id {
            index(&mut self.by_cka_id, cka_id, id);
        }
    }

    fn unindex_names(&mut self, id: i64, names: &Names) {
        unindex(&mut self.by_label, &names.label, id);
        if let Some(cka_id) = &names.cka_id {
            unindex(&mut self.by_cka_id, cka_id, id);
        }
    }

    /// Whether every object's rows are loaded (so `iter` and `values` see every object).
    pub fn is_complete(&self) -> bool {
        self.unloaded.is_empty()
    }

    pub fn is_unloaded(&self, id: &i64) -> bool {
        self.unloaded.contains_key(id)
    }

    /// Whether searches on `attribute` are indexed: `CKA_LABEL` and `CKA_ID`.
    pub fn indexes(attribute: CK_ATTRIBUTE_TYPE) -> bool {
        attribute == CKA_LABEL || attribute == CKA_ID
    }

    /// The ids of the objects whose `attribute` (one [`ObjectCache::indexes`]) is `value`, in
    /// id order.
    pub fn ids_with(&self, attribute: CK_ATTRIBUTE_TYPE, value: &[u8]) -> impl Iterator<Item = i64> + '_ {
        let index = if attribute == CKA_ID { &self.by_cka_id } else { &self.by_label };
        debug_assert!(Self::indexes(attribute));
        index.get(value).into_iter().flatten().copied()
    }

    /// As [`ObjectCache::ids_with`], of the objects whose rows are not read yet.
    pub fn unloaded_with(&self, attribute: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Vec<i64> {
        if self.unloaded.is_empty() {
            return Vec::new();
        }
        self.ids_with(attribute, value).filter(|id| self.unloaded.contains_key(id)).collect()
    }

    pub fn from_loaded(loaded: HashMap<i64, Object>) -> ObjectCache {
        let mut cache = ObjectCache::default();
        for (id, object) in loaded {
            cache.insert(id, Arc::new(object));
        }
        cache
    }

    /// Keeps the stored row of a key of the hierarchy loaded sealed (see `sealed_rows`).
    pub fn keep_sealed_row(&mut self, unique_id: Vec<u8>, row: StoredObject) {
        self.sealed_rows.insert(unique_id, row);
    }

    /// The stored row of the sealed key of the hierarchy with `unique_id`, if kept.
    pub fn sealed_row(&self, unique_id: &[u8]) -> Option<&StoredObject> {
        self.sealed_rows.get(unique_id)
    }

    pub fn get(&self, id: &i64) -> Option<&Arc<Object>> {
        self.objects.get(id)
    }

    /// Whether the object exists, loaded or not.
    pub fn contains_key(&self, id: &i64) -> bool {
        self.objects.contains_key(id) || self.unloaded.contains_key(id)
    }

    pub fn insert(&mut self, id: i64, object: Arc<Object>) {
        self.remove(&id);
        // A key replaced (rewrapped by a rotation) is no longer what its kept row says.
        if !self.sealed_rows.is_empty()
            && let Some(uid) = object.get(cryptoki_sys::CKA_UNIQUE_ID)
        {
            self.sealed_rows.remove(uid);
        }
        self.index_names(id, &Names::of(&object));
        self.objects.insert(id, object);
    }

    /// Removes the object, loaded or not; returns it if it was loaded.
    pub fn remove(&mut self, id: &i64) -> Option<Arc<Object>> {
        let (old, names) = match self.objects.remove(id) {
            Some(o) => {
                let names = Names::of(&o);
                (Some(o), names)
            }
            None => (None, self.unloaded.remove(id)?),
        };
        self.unindex_names(*id, &names);
        old
    }

    /// Forgets every loaded object's rows (zeroized as the objects drop, once no operation
    /// holds them), keeping what identifies it: after a login, objects are read again with
    /// the key that opens their secrets.
    pub fn unload_all(&mut self) {
        for (id, o) in self.objects.drain() {
            self.unloaded.insert(id, Names::of(&o));
        }
        self.sealed_rows.clear();
    }

    pub fn clear(&mut self) {
        self.sealed_rows.clear();
        self.objects.clear();
        self.unloaded.clear();
        self.by_label.clear();
        self.by_cka_id.clear();
    }

    /// Every object; only for a complete cache (`Token::complete`).
    pub fn iter(&self) -> impl Iterator<Item = (&i64, &Arc<Object>)> + Clone {
        debug_assert!(self.is_complete(), "iterating a cache whose rows are not all loaded");
        self.objects.iter()
    }

    /// Every object; only for a complete cache (`Token::complete`).
    pub fn values(&self) -> impl Iterator<Item = &Arc<Object>> {
        debug_assert!(self.is_complete(), "iterating a cache whose rows are not all loaded");
        self.objects.values()
    }
}

impl Index<&i64> for ObjectCache {
    type Output = Arc<Object>;

    fn index(&self, id: &i64) -> &Arc<Object> {
        &self.objects[id]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Attribute;
    use crate::object::template::{Actor, Origin, new_object};
    use cryptoki_sys::{CKA_CLASS, CKO_DATA};

    fn data(label: &[u8]) -> Arc<Object> {
        let t = [Attribute::ulong(CKA_CLASS, CKO_DATA), Attribute::new(CKA_LABEL, label.to_vec())];
        Arc::new(new_object(&t, None, Origin::Create, Actor { is_so: false }).unwrap())
    }

    #[test]
    fn the_label_index_follows_inserts_replacements_and_removals() {
        let mut c = ObjectCache::default();
        c.insert(1, data(b"a"));
        c.insert(2, data(b"a"));
        c.insert(3, data(b"b"));
        assert_eq!(c.ids_with(CKA_LABEL, b"a").collect::<Vec<_>>(), vec![1, 2]);
        c.insert(2, data(b"b"));
        assert_eq!(c.ids_with(CKA_LABEL, b"a").collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.ids_with(CKA_LABEL, b"b").collect::<Vec<_>>(), vec![2, 3]);
        c.remove(&1);
        assert_eq!(c.ids_with(CKA_LABEL, b"a").count(), 0);
        assert!(c.get(&1).is_none() && c.contains_key(&3));
        c.clear();
        assert_eq!(c.ids_with(CKA_LABEL, b"b").count(), 0);
    }

    fn key(label: &[u8], cka_id: Option<&[u8]>) -> Arc<Object> {
        let mut t = vec![
            Attribute::ulong(CKA_CLASS, cryptoki_sys::CKO_SECRET_KEY),
            Attribute::ulong(cryptoki_sys::CKA_KEY_TYPE, cryptoki_sys::CKK_AES),
            Attribute::new(cryptoki_sys::CKA_VALUE, vec![7; 16]),
            Attribute::new(CKA_LABEL, label.to_vec()),
        ];
        if let Some(cka_id) = cka_id {
            t.push(Attribute::new(CKA_ID, cka_id.to_vec()));
        }
        Arc::new(new_object(&t, None, Origin::Create, Actor { is_so: false }).unwrap())
    }

    #[test]
    fn the_cka_id_index_follows_loads_changes_and_removals() {
        let named = |id, cka_id: Option<&[u8]>| ObjectNames {
            id,
            label: b"l".to_vec(),
            cka_id: cka_id.map(<[u8]>::to_vec),
        };
        let mut c =
            ObjectCache::from_names(vec![named(1, Some(b"\x01")), named(2, None), named(3, Some(b"\x01"))]);
        assert_eq!(c.unloaded_with(CKA_ID, b"\x01"), vec![1, 3]);
        assert_eq!(c.unloaded_with(CKA_ID, b""), Vec::<i64>::new(), "no CKA_ID is not an empty one");
        c.insert(1, key(b"l", Some(b"\x01")));
        assert_eq!(c.unloaded_with(CKA_ID, b"\x01"), vec![3]);
        assert_eq!(c.ids_with(CKA_ID, b"\x01").collect::<Vec<_>>(), vec![1, 3]);
        // A changed CKA_ID moves the object; a removed object leaves the index.
        c.insert(1, key(b"l", Some(b"\x02")));
        assert_eq!(c.ids_with(CKA_ID, b"\x02").collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.ids_with(CKA_ID, b"\x01").collect::<Vec<_>>(), vec![3]);
        c.remove(&3);
        assert_eq!(c.ids_with(CKA_ID, b"\x01").count(), 0);
        c.insert(2, key(b"l", Some(b"")));
        assert_eq!(c.ids_with(CKA_ID, b"").collect::<Vec<_>>(), vec![2]);
        // Unloaded again after a login: still found by it.
        c.unload_all();
        assert_eq!(c.unloaded_with(CKA_ID, b"\x02"), vec![1]);
        assert_eq!(c.unloaded_with(CKA_LABEL, b"l"), vec![1, 2]);
        assert!(
            ObjectCache::indexes(CKA_ID)
                && ObjectCache::indexes(CKA_LABEL)
                && !ObjectCache::indexes(CKA_CLASS)
        );
    }

    #[test]
    fn unloaded_objects_are_known_by_id_and_label_until_loaded() {
        let named = |id, label: &[u8]| ObjectNames { id, label: label.to_vec(), cka_id: None };
        let mut c = ObjectCache::from_names(vec![named(1, b"a"), named(2, b"a"), named(3, b"b")]);
        assert!(!c.is_complete() && c.contains_key(&1) && c.get(&1).is_none());
        assert_eq!(c.unloaded_with(CKA_LABEL, b"a"), vec![1, 2]);
        c.insert(1, data(b"a"));
        assert_eq!(c.unloaded_with(CKA_LABEL, b"a"), vec![2]);
        assert_eq!(c.ids_with(CKA_LABEL, b"a").collect::<Vec<_>>(), vec![1, 2]);
        assert!(c.remove(&2).is_none(), "an unloaded object is removed, and nothing returned");
        assert_eq!(c.ids_with(CKA_LABEL, b"a").collect::<Vec<_>>(), vec![1]);
        c.insert(3, data(b"c"));
        assert!(c.is_complete());
        c.unload_all();
        assert!(!c.is_complete() && c.contains_key(&3) && c.get(&3).is_none());
        assert_eq!(c.unloaded_with(CKA_LABEL, b"c"), vec![3]);
        c.insert(3, data(b"c"));
        assert_eq!(c.ids_with(CKA_LABEL, b"b").count(), 0);
        assert_eq!(c.ids_with(CKA_LABEL, b"c").collect::<Vec<_>>(), vec![3]);
    }
}
