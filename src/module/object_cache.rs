//! A token's objects in memory, with an index by label, so that the most common search —
//! an application looking for its key by `CKA_LABEL` — does not scan every object.
//!
//! The cache may be incomplete: after a (re)load from the store only each object's id and
//! label are known, and an object's rows are read (and its secrets opened) when it is first
//! looked for — by a search on its label, a handle, or an operation that needs every object
//! (`Token::complete`). So a new process's first login costs what it uses rather than a read
//! of every row of the store. Every object a handle names is loaded (see `Token::refresh`).

use std::collections::{BTreeSet, HashMap};
use std::ops::Index;
use std::sync::Arc;

use cryptoki_sys::CKA_LABEL;

use crate::object::Object;
use crate::session::table::NumberMap;

#[derive(Default)]
pub struct ObjectCache {
    objects: NumberMap<i64, Arc<Object>>,
    /// Objects in the store whose rows are not read yet, with their labels.
    unloaded: NumberMap<i64, Vec<u8>>,
    by_label: HashMap<Vec<u8>, BTreeSet<i64>>,
}

impl ObjectCache {
    /// A cache that knows of each object only its id and label.
    pub fn from_labels(labels: Vec<(i64, Vec<u8>)>) -> ObjectCache {
        let mut cache = ObjectCache::default();
        for (id, label) in labels {
            cache.by_label.entry(label.clone()).or_default().insert(id);
            cache.unloaded.insert(id, label);
        }
        cache
    }

    /// Whether every object's rows are loaded (so `iter` and `values` see every object).
    pub fn is_complete(&self) -> bool {
        self.unloaded.is_empty()
    }

    pub fn is_unloaded(&self, id: &i64) -> bool {
        self.unloaded.contains_key(id)
    }

    /// The ids of the objects labelled `label` whose rows are not read yet.
    pub fn unloaded_with_label(&self, label: &[u8]) -> Vec<i64> {
        if self.unloaded.is_empty() {
            return Vec::new();
        }
        self.ids_with_label(label).filter(|id| self.unloaded.contains_key(id)).collect()
    }

    pub fn from_loaded(loaded: HashMap<i64, Object>) -> ObjectCache {
        let mut cache = ObjectCache::default();
        for (id, object) in loaded {
            cache.insert(id, Arc::new(object));
        }
        cache
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
        self.by_label.entry(object.get(CKA_LABEL).unwrap_or_default().to_vec()).or_default().insert(id);
        self.objects.insert(id, object);
    }

    /// Removes the object, loaded or not; returns it if it was loaded.
    pub fn remove(&mut self, id: &i64) -> Option<Arc<Object>> {
        let (old, label) = match self.objects.remove(id) {
            Some(o) => {
                let label = o.get(CKA_LABEL).unwrap_or_default().to_vec();
                (Some(o), label)
            }
            None => (None, self.unloaded.remove(id)?),
        };
        if let Some(ids) = self.by_label.get_mut(&label) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_label.remove(&label);
            }
        }
        old
    }

    /// Forgets every loaded object's rows (zeroized as the objects drop, once no operation
    /// holds them), keeping its id and label: after a login, objects are read again with
    /// the key that opens their secrets.
    pub fn unload_all(&mut self) {
        for (id, o) in self.objects.drain() {
            self.unloaded.insert(id, o.get(CKA_LABEL).unwrap_or_default().to_vec());
        }
    }

    pub fn clear(&mut self) {
        self.objects.clear();
        self.unloaded.clear();
        self.by_label.clear();
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

    /// The ids of the objects labelled `label`, in id order.
    pub fn ids_with_label(&self, label: &[u8]) -> impl Iterator<Item = i64> + '_ {
        self.by_label.get(label).into_iter().flatten().copied()
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
        assert_eq!(c.ids_with_label(b"a").collect::<Vec<_>>(), vec![1, 2]);
        c.insert(2, data(b"b"));
        assert_eq!(c.ids_with_label(b"a").collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.ids_with_label(b"b").collect::<Vec<_>>(), vec![2, 3]);
        c.remove(&1);
        assert_eq!(c.ids_with_label(b"a").count(), 0);
        assert!(c.get(&1).is_none() && c.contains_key(&3));
        c.clear();
        assert_eq!(c.ids_with_label(b"b").count(), 0);
    }

    #[test]
    fn unloaded_objects_are_known_by_id_and_label_until_loaded() {
        let mut c =
            ObjectCache::from_labels(vec![(1, b"a".to_vec()), (2, b"a".to_vec()), (3, b"b".to_vec())]);
        assert!(!c.is_complete() && c.contains_key(&1) && c.get(&1).is_none());
        assert_eq!(c.unloaded_with_label(b"a"), vec![1, 2]);
        c.insert(1, data(b"a"));
        assert_eq!(c.unloaded_with_label(b"a"), vec![2]);
        assert_eq!(c.ids_with_label(b"a").collect::<Vec<_>>(), vec![1, 2]);
        assert!(c.remove(&2).is_none(), "an unloaded object is removed, and nothing returned");
        assert_eq!(c.ids_with_label(b"a").collect::<Vec<_>>(), vec![1]);
        c.insert(3, data(b"c"));
        assert!(c.is_complete());
        c.unload_all();
        assert!(!c.is_complete() && c.contains_key(&3) && c.get(&3).is_none());
        assert_eq!(c.unloaded_with_label(b"c"), vec![3]);
        c.insert(3, data(b"c"));
        assert_eq!(c.ids_with_label(b"b").count(), 0);
        assert_eq!(c.ids_with_label(b"c").collect::<Vec<_>>(), vec![3]);
    }
}
