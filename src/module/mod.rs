//! The process-wide module instance and the thin facade of the core: each PKCS#11 function
//! is one method of [`Module`], holding its whole body and its audit record, in the file of
//! its chapter of the standard (as Kryoptic's `fns/` are split):
//!
//! - `general.rs`: slots and tokens (`C_GetSlotList`, `C_InitToken`, `C_InitPIN`,
//!   `C_SetPIN`) and random numbers;
//! - `sessions.rs`: sessions and login (`C_OpenSession`, `C_Login`, `C_LoginUser`,
//!   `C_Logout`, `C_SessionCancel`);
//! - `objects.rs`: object management and searches;
//! - `keys.rs`: key generation, derivation, wrapping and unwrapping;
//!   `derive_data.rs`: CKM_HKDF_DATA, a derivation into a data object;
//!   `encapsulation.rs`: key encapsulation (3.2's `C_EncapsulateKey`/`C_DecapsulateKey`);
//! - `operations.rs`: encryption, decryption, digests, signatures and verification, with
//!   the rules for steps; `messages.rs`: the message-based functions;
//! - `principals.rs`: principals, the policy and approvals (no PKCS#11 verb; the CLI's);
//! - `audit.rs`: how a call is recorded (`audited`), and nothing else;
//! - `slots.rs`: the slot table.
//!
//! `C_Initialize` makes a [`Backend`]: this core, or in client mode (`ECM_HSM_SERVICE`) a
//! client of the key service (`backend.rs`).
//!
//! The work itself is done a layer below, on the session's state (`crate::session`) and
//! its token (`crate::token`).

mod audit;
mod backend;
pub use backend::Backend;
mod derive_data;
mod encapsulation;
mod general;
pub use crate::session::TokenStatus;
mod keys;
mod messages;
mod objects;
mod operations;
pub use crate::session::{CipherKind, OperationKind, Step};
mod principals;
mod sessions;
pub mod slots;
pub use crate::token::{ApprovalRequest, ApprovalTarget, handles};
/// The token layer under its former path, for callers of `module::token` (the CLI).
pub mod token {
    pub use crate::token::*;
}

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cryptoki_sys::*;
use parking_lot::RwLock;

use crate::config::Config;
use crate::session::{Session, SessionTable};
use crate::sys::thread_slot::ThreadSlot;
use crate::token::Token;
use crate::token::handles::HandleTable;
use crate::{Error, Result};
use slots::SlotTable;

pub struct Module {
    config: Arc<Config>,
    slots: RwLock<SlotTable>,
    /// Sharded by handle, so that threads working in their own sessions touch neither a
    /// common lock nor a common reference count.
    sessions: SessionTable,
    next_session: AtomicU64,
    handles: Arc<RwLock<HandleTable>>,
    /// What `C_WaitForSlotEvent` reports (see `general.rs`).
    slot_events: general::SlotEvents,
}

/// The instance and the fork generation that made it: a child of `fork()` must not use its
/// parent's open store connections, so it sees the module as not initialized until it
/// initializes it again itself.
struct Instance {
    forks: u64,
    module: Arc<Backend>,
}

/// Leaks a backend inherited across fork: a core's SQLite connections must not be closed
/// by the child (that could disturb the parent's locks and journal), and a client's socket
/// is the parent's connection too, so the child only closes its copy, never using it.
fn abandon(backend: Arc<Backend>) {
    backend.forget_after_fork();
    std::mem::forget(backend);
}

static INSTANCE: RwLock<Option<Instance>> = RwLock::new(None);

/// How many times this process is the child of a `fork()` (bumped by the `pthread_atfork`
/// child handler the ABI installs at `C_Initialize`). Comparing it replaces a `getpid()`
/// system call on every call.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Changes with every `C_Initialize`, `C_Finalize` and fork: a thread's cached module (below)
/// is current while this has not changed. Written only by those rare events, so every
/// thread keeps its cache line shared and the check costs one load.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Each thread's reference to the module, so that a call neither locks `INSTANCE` nor
/// touches the module's shared reference count (whose cache line two cores would otherwise
/// pass back and forth on every call).
struct Cached {
    generation: u64,
    forks: u64,
    /// Always `Some` until dropped.
    module: Option<LocalModule>,
}

impl Drop for Cached {
    fn drop(&mut self) {
        // A module inherited across fork holds the parent's SQLite connections, which the
        // child must never close (see `initialize`): it is leaked.
        if let Some(module) = self.module.take()
            && self.forks != FORKS.load(Ordering::Acquire)
        {
            abandon(Rc::unwrap_or_clone(module));
        }
    }
}

/// In a pthread key, not a `thread_local!`: a Rust thread-local destructor would keep the
/// library mapped after the host unloads it (see `abi/unload.rs`).
static CACHED: ThreadSlot<RefCell<Option<Cached>>> = ThreadSlot::new();

/// Called in the child of a `fork()` (from the ABI's `pthread_atfork` handler; it only
/// touches atomics, as a handler in a forked child must).
pub fn forked() {
    FORKS.fetch_add(1, Ordering::AcqRel);
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// `C_Initialize`.
pub fn initialize() -> Result<()> {
    initialize_with(true)
}

/// `C_Initialize`, telling whether the library may start threads of its own.
pub fn initialize_with(may_create_threads: bool) -> Result<()> {
    let mut guard = INSTANCE.write();
    if let Some(instance) = guard.take() {
        if instance.forks == FORKS.load(Ordering::Acquire) {
            *guard = Some(instance);
            return Err(Error::CryptokiAlreadyInitialized);
        }
        // Inherited across fork: leaked, never closed (see `abandon`).
        abandon(instance.module);
    }
    let config = Config { may_create_threads, ..Config::from_env()? };
    let module = Backend::new(config)?;
    *guard = Some(Instance { forks: FORKS.load(Ordering::Acquire), module: Arc::new(module) });
    GENERATION.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// `C_Finalize`. Threads may still hold the module in their cache (until their next call or
/// their exit), so its sessions and tokens are dropped here: the stores close now.
pub fn finalize() -> Result<()> {
    let mut guard = INSTANCE.write();
    let result = match guard.take() {
        Some(instance) if instance.forks == FORKS.load(Ordering::Acquire) => {
            instance.module.shut_down();
            Ok(())
        }
        Some(inherited) => {
            abandon(inherited.module);
            Err(Error::CryptokiNotInitialized)
        }
        None => Err(Error::CryptokiNotInitialized),
    };
    GENERATION.fetch_add(1, Ordering::AcqRel);
    drop(guard);
    // This thread's own reference goes now rather than at its next call.
    let _ = CACHED.try_with(|c| c.borrow_mut().take());
    result
}

/// A reference to the initialized module, for the length of one call.
pub struct ModuleRef(LocalModule);

/// A thread's counted reference to the shared module: cloning it per call touches only this
/// thread's count, never the `Arc`'s (the point of the extra allocation, made once per thread).
#[allow(clippy::redundant_allocation)]
type LocalModule = Rc<Arc<Backend>>;

impl std::ops::Deref for ModuleRef {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.0
    }
}

/// The initialized module of this process.
pub fn instance() -> Result<ModuleRef> {
    let generation = GENERATION.load(Ordering::Acquire);
    CACHED
        .try_with(|cached| {
            if let Some(c) = &*cached.borrow()
                && c.generation == generation
                && let Some(module) = &c.module
            {
                return Ok(ModuleRef(Rc::clone(module)));
            }
            // Dropped outside the borrow: dropping a module may run arbitrary code.
            let stale = cached.borrow_mut().take();
            drop(stale);
            let guard = INSTANCE.read();
            let forks = FORKS.load(Ordering::Acquire);
            match &*guard {
                Some(i) if i.forks == forks => {
                    let module = Rc::new(i.module.clone());
                    *cached.borrow_mut() = Some(Cached {
                        // Read under the lock that initialize/finalize hold while bumping it.
                        generation: GENERATION.load(Ordering::Acquire),
                        forks,
                        module: Some(module.clone()),
                    });
                    Ok(ModuleRef(module))
                }
                _ => Err(Error::CryptokiNotInitialized),
            }
        })
        // pthreads refused this thread a value (no memory, no key).
        .unwrap_or_else(|_| {
            let forks = FORKS.load(Ordering::Acquire);
            match &*INSTANCE.read() {
                Some(i) if i.forks == forks => Ok(ModuleRef(Rc::new(i.module.clone()))),
                _ => Err(Error::CryptokiNotInitialized),
            }
        })
}

impl Module {
    pub fn new(config: Config) -> Result<Module> {
        let config = Arc::new(config);
        // Process-wide, as the settings are: the admin tool's core and the module's alike.
        crate::mechanism::rsa::set_min_modulus_bits(config.rsa_min_bits.into());
        if let Some(warning) = crate::store::files::exposure(&config.token_dir) {
            log::warn!("{warning}");
        }
        if config.test_settings {
            log::warn!(
                "test_settings = true: PIN cost and lockout may be below the floors of a production token"
            );
        }
        let handles = Arc::new(RwLock::new(HandleTable::default()));
        let mut slots = SlotTable::default();
        slots.rescan(&config, &handles)?;
        let slot_events = general::SlotEvents::new(general::slot_states(&slots));
        Ok(Module {
            config,
            slots: RwLock::new(slots),
            sessions: SessionTable::default(),
            next_session: AtomicU64::new(1),
            handles,
            slot_events,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `C_Finalize`: drops every session and token (closing the stores) although threads
    /// may still hold the module itself for a moment.
    fn shut_down(&self) {
        self.slot_events.finalize();
        drop(self.sessions.remove_where(|_| true));
        *self.slots.write() = SlotTable::default();
    }

    fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        self.slots.read().token(slot)
    }

    fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        self.sessions.get(handle).ok_or(Error::SessionHandleInvalid)
    }

    /// The session and its token, the start of every call made on a session. The token is
    /// reached through the session, which holds it: no slot-table lock and no shared
    /// reference count on the way.
    fn session_and_token(&self, handle: CK_SESSION_HANDLE) -> Result<(Arc<Session>, SessionToken)> {
        let session = self.session(handle)?;
        Ok((session.clone(), SessionToken(session)))
    }

    /// The token of session `handle` (for the calls that need only that).
    fn token_of(&self, handle: CK_SESSION_HANDLE) -> Result<SessionToken> {
        self.session(handle).map(SessionToken)
    }

    fn sessions_of(&self, slot: CK_SLOT_ID) -> Vec<Arc<Session>> {
        self.sessions.filter(|s| s.slot_id == slot)
    }

    fn new_session_handle(&self) -> CK_SESSION_HANDLE {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// The token of a session, borrowed through the session (see `Module::session_and_token`).
pub(crate) struct SessionToken(Arc<Session>);

impl std::ops::Deref for SessionToken {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.0.token
    }
}
