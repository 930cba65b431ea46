//! The module's sessions by handle, in shards.
//!
//! Handles are handed out in sequence, so two threads working in their own sessions land in
//! different shards: neither the lock word nor the reference count they touch on every call
//! is shared with the other core. One lock for the whole table made two threads take turns
//! on its cache line at every call.
//!
//! Each thread also remembers the last session it looked up (weakly): an operation is
//! several calls on one session (`C_EncryptInit`, a length query, `C_Encrypt`, and the
//! audit record of each), and the memo spares each of them the shard's lock — two of the
//! four atomic operations a lookup cost. A session leaving the table is marked closed
//! first, so the memo never outlives it as far as callers can tell.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use cryptoki_sys::CK_SESSION_HANDLE;
use parking_lot::RwLock;

use super::Session;
use crate::sys::thread_slot::ThreadSlot;
use crate::token::number_map::NumberMap;

const SHARDS: usize = 16;

type Map = NumberMap<CK_SESSION_HANDLE, Arc<Session>>;

/// One shard on a cache line (two, for adjacent-line prefetch) of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<Map>);

pub struct SessionTable {
    /// Tells this table from another (a module initialized again) in the threads' memos,
    /// since handles start again from 1.
    id: u64,
    shards: [Shard; SHARDS],
}

static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

impl Default for SessionTable {
    fn default() -> SessionTable {
        SessionTable { id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed), shards: Default::default() }
    }
}

/// A thread's last looked-up session: (table id, handle, the session).
type Memo = (u64, CK_SESSION_HANDLE, Weak<Session>);

/// In a pthread key, not a `thread_local!`, so that the library can be unloaded (see
/// `sys::thread_slot`).
static LAST: ThreadSlot<RefCell<Memo>> = ThreadSlot::new();

impl SessionTable {
    fn shard(&self, handle: CK_SESSION_HANDLE) -> &RwLock<Map> {
        &self.shards[(handle % SHARDS as CK_SESSION_HANDLE) as usize].0
    }

    pub fn get(&self, handle: CK_SESSION_HANDLE) -> Option<Arc<Session>> {
        let remembered = LAST.with(|last| {
            let last = last.borrow();
            if last.0 != self.id || last.1 != handle {
                return None;
            }
            last.2.upgrade().filter(|s| !s.closed.load(Ordering::Acquire))
        });
        if remembered.is_some() {
            return remembered;
        }
        let session = self.shard(handle).read().get(&handle).cloned()?;
        LAST.with(|last| *last.borrow_mut() = (self.id, handle, Arc::downgrade(&session)));
        Some(session)
    }

    pub fn insert(&self, session: Arc<Session>) {
        self.shard(session.handle).write().insert(session.handle, session);
    }

    pub fn remove(&self, handle: CK_SESSION_HANDLE) -> Option<Arc<Session>> {
        let session = self.shard(handle).write().remove(&handle)?;
        session.closed.store(true, Ordering::Release);
        Some(session)
    }

    /// The sessions for which `keep` says yes.
    pub fn filter(&self, mut keep: impl FnMut(&Session) -> bool) -> Vec<Arc<Session>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(shard.0.read().values().filter(|s| keep(s)).cloned());
        }
        out
    }

    /// Removes and returns the sessions for which `take` says yes.
    pub fn remove_where(&self, mut take: impl FnMut(&Session) -> bool) -> Vec<Arc<Session>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut map = shard.0.write();
            let handles: Vec<CK_SESSION_HANDLE> =
                map.values().filter(|s| take(s)).map(|s| s.handle).collect();
            for session in handles.iter().filter_map(|h| map.remove(h)) {
                session.closed.store(true, Ordering::Release);
                out.push(session);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::token::Token;
    use crate::token::handles::HandleTable;

    fn session(handle: CK_SESSION_HANDLE) -> Arc<Session> {
        let dir = std::env::temp_dir().join(format!("ecm-hsm-memo-{}-{handle}", std::process::id()));
        let config = Arc::new(Config::from_toml(dir.clone(), "", Path::new("test")).unwrap());
        let token =
            Token::open(0, dir.join("absent.sqlite"), config, Arc::new(RwLock::new(HandleTable::default())));
        Arc::new(Session::new(handle, 0, false, Arc::new(token)))
    }

    #[test]
    fn a_threads_memo_of_its_last_session_never_hands_out_a_closed_or_foreign_one() {
        let table = SessionTable::default();
        let one = session(1);
        table.insert(one.clone());
        assert!(Arc::ptr_eq(&table.get(1).unwrap(), &one));
        assert!(Arc::ptr_eq(&table.get(1).unwrap(), &one), "from the memo");
        // Closed while another call still holds it: refused from the memo too.
        let in_flight = table.get(1).unwrap();
        assert!(table.remove(1).is_some());
        assert!(table.get(1).is_none());
        drop(in_flight);
        assert!(table.get(1).is_none());
        // Closed by slot, the same.
        let two = session(2);
        table.insert(two.clone());
        assert!(table.get(2).is_some());
        assert_eq!(table.remove_where(|s| s.handle == 2).len(), 1);
        assert!(table.get(2).is_none());
        // Another table (a module initialized again) numbers its sessions from 1 too.
        let again = SessionTable::default();
        let other = session(3);
        assert!(again.get(1).is_none());
        table.insert(one.clone());
        assert!(Arc::ptr_eq(&table.get(1).unwrap(), &one));
        let renumbered = Arc::new(Session::new(1, 0, false, other.token.clone()));
        again.insert(renumbered.clone());
        assert!(Arc::ptr_eq(&again.get(1).unwrap(), &renumbered));
        assert!(Arc::ptr_eq(&table.get(1).unwrap(), &one));
    }

    #[test]
    fn sessions_spread_over_shards_are_all_found_filtered_and_removed_by_slot() {
        let table = SessionTable::default();
        let token = session(100).token.clone();
        // More sessions than shards, on two slots.
        for handle in 1..=40 {
            table.insert(Arc::new(Session::new(handle, handle % 2, handle % 3 == 0, token.clone())));
        }
        let mut odd: Vec<_> = table.filter(|s| s.slot_id == 1).iter().map(|s| s.handle).collect();
        odd.sort();
        assert_eq!(odd, (1..=40).filter(|h| h % 2 == 1).collect::<Vec<_>>());
        assert_eq!(table.filter(|s| s.read_write).len(), 13);
        let removed = table.remove_where(|s| s.slot_id == 0);
        assert_eq!(removed.len(), 20);
        assert!(removed.iter().all(|s| s.slot_id == 0 && table.get(s.handle).is_none()));
        assert!((1..=40).filter(|h| h % 2 == 1).all(|h| table.get(h).is_some_and(|s| s.handle == h)));
        assert!(table.remove(41).is_none(), "a handle never given out");
    }
}
