//! A token's objects in memory, with an index by label, so that the most common search —
//! an application looking for its key by `CKA_LABEL` — does not scan every object.

use std::collections::{BTreeSet, HashMap};
use std::ops::Index;
use std::sync::Arc;

use cryptoki_sys::CKA_LABEL;

use crate::object::Object;

#[derive(Default)]
pub struct ObjectCache {
    objects: HashMap<i64, Arc<Object>>,
    by_label: HashMap<Vec<u8>, BTreeSet<i64>>,
}

impl ObjectCache {
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

    pub fn contains_key(&self, id: &i64) -> bool {
        self.objects.contains_key(id)
    }

    pub fn insert(&mut self, id: i64, object: Arc<Object>) {
        self.remove(&id);
        self.by_label.entry(object.get(CKA_LABEL).unwrap_or_default().to_vec()).or_default().insert(id);
        self.objects.insert(id, object);
    }

    pub fn remove(&mut self, id: &i64) -> Option<Arc<Object>> {
        let old = self.objects.remove(id)?;
        let label = old.get(CKA_LABEL).unwrap_or_default();
        if let Some(ids) = self.by_label.get_mut(label) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_label.remove(label);
            }
        }
        Some(old)
    }

    pub fn clear(&mut self) {
        self.objects.clear();
        self.by_label.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&i64, &Arc<Object>)> + Clone {
        self.objects.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<Object>> {
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
}
