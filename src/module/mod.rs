//! The process-wide module instance: slots and their tokens, the session table and the
//! object handle table. Each PKCS#11 function of the core is a method of [`Module`], in the
//! file of its chapter: `general.rs` (slots, tokens, sessions, login), `objects.rs` (object
//! management, on [`token::Token`]), `crypto.rs` (keys, ciphers, digests, random).

mod approvals;
pub use approvals::{ApprovalRequest, ApprovalTarget};
mod audit;
mod crypto;
pub use crypto::{CipherKind, OperationKind, Step};
mod general;
pub use general::TokenStatus;
pub mod handles;
mod hierarchy_keys;
mod object_cache;
mod objects;
pub mod slots;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cryptoki_sys::*;
use parking_lot::RwLock;

use crate::config::Config;
use crate::session::Session;
use crate::{Error, Result};
use handles::HandleTable;
use slots::SlotTable;
use token::Token;

pub struct Module {
    config: Arc<Config>,
    slots: RwLock<SlotTable>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    next_session: AtomicU64,
    handles: Arc<RwLock<HandleTable>>,
}

/// The instance and the process that made it: a child of `fork()` must not use its parent's
/// open store connections, so it sees the module as not initialized until it initializes it
/// again itself.
struct Instance {
    pid: u32,
    module: Arc<Module>,
}

static INSTANCE: RwLock<Option<Instance>> = RwLock::new(None);

/// `C_Initialize`.
pub fn initialize() -> Result<()> {
    initialize_with(true)
}

/// `C_Initialize`, telling whether the library may start threads of its own.
pub fn initialize_with(may_create_threads: bool) -> Result<()> {
    let mut guard = INSTANCE.write();
    if let Some(instance) = guard.take() {
        if instance.pid == std::process::id() {
            *guard = Some(instance);
            return Err(Error::CryptokiAlreadyInitialized);
        }
        // Inherited across fork: closing the parent's SQLite connections from the child
        // could disturb the parent's locks and journal, so they are leaked, never closed.
        std::mem::forget(instance);
    }
    let config = Config { may_create_threads, ..Config::from_env()? };
    let module = Module::new(config)?;
    *guard = Some(Instance { pid: std::process::id(), module: Arc::new(module) });
    Ok(())
}

/// `C_Finalize`.
pub fn finalize() -> Result<()> {
    let mut guard = INSTANCE.write();
    match guard.take() {
        Some(instance) if instance.pid == std::process::id() => Ok(()),
        Some(inherited) => {
            std::mem::forget(inherited);
            Err(Error::CryptokiNotInitialized)
        }
        None => Err(Error::CryptokiNotInitialized),
    }
}

/// The initialized module of this process.
pub fn instance() -> Result<Arc<Module>> {
    match &*INSTANCE.read() {
        Some(i) if i.pid == std::process::id() => Ok(i.module.clone()),
        _ => Err(Error::CryptokiNotInitialized),
    }
}

impl Module {
    pub fn new(config: Config) -> Result<Module> {
        let config = Arc::new(config);
        let handles = Arc::new(RwLock::new(HandleTable::default()));
        let mut slots = SlotTable::default();
        slots.rescan(&config, &handles)?;
        Ok(Module {
            config,
            slots: RwLock::new(slots),
            sessions: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            handles,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        self.slots.read().token(slot)
    }

    fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        self.sessions.read().get(&handle).cloned().ok_or(Error::SessionHandleInvalid)
    }

    /// The session and its token, the start of every call made on a session.
    fn session_and_token(&self, handle: CK_SESSION_HANDLE) -> Result<(Arc<Session>, Arc<Token>)> {
        let session = self.session(handle)?;
        let token = self.token(session.slot_id)?;
        Ok((session, token))
    }

    fn sessions_of(&self, slot: CK_SLOT_ID) -> Vec<Arc<Session>> {
        self.sessions.read().values().filter(|s| s.slot_id == slot).cloned().collect()
    }

    fn new_session_handle(&self) -> CK_SESSION_HANDLE {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}
