//! A token's audit trail, as the module writes it: the register `token-<slot>.audit` shared
//! by all processes, and one segment per process in `token-<slot>.audit.d/`.
//!
//! Why segments: a record must be in the page cache before the call it records returns, and
//! a shared file costs a lock and a `write(2)` per record — more than the AES-GCM encryption
//! of a kilobyte it records. A process's own segment needs neither (`super::segment`), and
//! its records are linked (the HMAC of the chain) by a thread of the trail's own, off the
//! caller's path, within about a millisecond; with `sync`, or when the application forbids
//! the library threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`), each record is linked before
//! its call returns.
//!
//! A process writes one segment per stripe of threads (see [`AuditLog`]).
//!
//! The register keeps the segments honest: a process's first record opens its segment with
//! a `segment_open` record in the register (the segment is named after that record's
//! sequence number, and its first record is chained to that record's link), and a clean
//! close (`C_Finalize`) links what is left and appends `segment_close` with the segment's
//! last sequence number and link. So a deleted or added segment, and a closed segment cut
//! short, show in the register, whose chain shows any edit to itself.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::record::Record;
use super::register::{OpenOptions, Register};
use super::segment::{Linker, Segment};
use super::{AuditKey, LINK_LEN};
use crate::{Error, Result};

/// The directory of the segments of the register at `register`.
pub fn segment_dir(register: &Path) -> PathBuf {
    let mut name = register.as_os_str().to_os_string();
    name.push(".d");
    PathBuf::from(name)
}

/// The operation names of the register's own records.
pub const SEGMENT_OPEN: &str = "segment_open";
pub const SEGMENT_CLOSE: &str = "segment_close";
/// The last record of a register archived (see [`AuditLog::archive`]).
pub const TRAIL_ARCHIVED: &str = "trail_archived";
/// A process runs with auditing off (`audit = false`): its calls are not recorded from here
/// on (see `super::switch`). Written with the key once the process has it, without before.
pub const AUDIT_OFF: &str = "audit_off";
/// The first process with auditing on after an [`AUDIT_OFF`]: the gap ends here. Only ever
/// authenticated (a forged one would hide a gap).
pub const AUDIT_ON: &str = "audit_on";

/// How long the linking thread lets records gather before linking them: the longest a
/// record stays unlinked under load.
const LINK_BATCH_WINDOW: Duration = Duration::from_micros(500);

/// How far ahead of the records the linking thread prepares the segment's file.
const PREPARE_AHEAD: usize = 8 << 20;

/// More than a record takes (its string fields are cut at `super::record::MAX_FIELD_LEN`).
const MAX_RECORD: usize = 4096;

/// A token's audit trail, open for appending.
///
/// The threads of a process write to up to [`AuditLog::stripes`] segments at once, each
/// thread sticking to one (given out in turn at its first record), so that threads on
/// different cores do not queue for one segment.
pub struct AuditLog {
    /// Replaced (under the write lock) only when the trail is archived.
    register: parking_lot::RwLock<Register>,
    path: PathBuf,
    options: OpenOptions,
    dir: PathBuf,
    sync: bool,
    /// Whether records may be linked on a thread of the trail's own.
    threads: bool,
    segment_bytes: usize,
    /// The process that opened the trail: only it may close its segments (a child after
    /// `fork` must not cut its parent's files).
    pid: u32,
    /// The audit key, once a login showed it; `keyed` says so without the lock.
    key: Mutex<Option<AuditKey>>,
    /// Held by [`AuditLog::set_key`] from start to end (first in the lock order).
    changing_key: Mutex<()>,
    keyed: AtomicBool,
    stripes: Box<[Mutex<Option<Writer>>]>,
    /// Unique among the trails this process opens (see [`AuditLog::id`]).
    id: u64,
}

/// Numbers the trails of the process.
static NEXT_TRAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// This process's segment: the writing half here, the linking half shared with the
/// linking thread, if there is one.
struct Writer {
    segment: Segment,
    /// The key service's client its records are made for, named again when it closes.
    client: Option<super::record::ClientProcess>,
    linker: Arc<SharedLinker>,
    thread: Option<LinkingThread>,
}

/// A segment's linker, shared by its writers and its linking thread: std's `Mutex`, not
/// parking_lot's, because the linking thread holds it for milliseconds at a time (preparing
/// the file ahead), and a host thread waiting for it (a login's `set_key`) would then park
/// in parking_lot, which gives that thread a per-thread record with a destructor: glibc
/// keeps the library mapped until the thread exits, so a host that unloads the library would
/// get the same, still initialized, copy back (README, Unloading). std's lock waits on a
/// futex and keeps nothing per thread. The other lock the linking thread takes, the file
/// mapping's `growing`, is std's for the same reason; the linking thread takes no other.
/// (Poisoning is ignored: a panic in linking leaves the linker as whole as an error does.)
struct SharedLinker(std::sync::Mutex<Linker>);

impl SharedLinker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Linker> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct LinkingThread {
    /// Started with `sys::thread::spawn`, not `std::thread`: std's spawning would keep the
    /// library mapped after a host unloads it (see `abi/unload.rs`).
    handle: crate::sys::thread::Spawned,
    control: Arc<Control>,
}

#[derive(Default)]
struct Control {
    stop: AtomicBool,
    /// The thread found nothing to link and is about to sleep until woken.
    idle: AtomicBool,
}

/// Hands out stripes to threads in turn.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe number (taken modulo each trail's number of stripes).
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
}

impl AuditLog {
    /// Opens the trail whose register is `path` (created, mode 0600, if missing).
    pub fn open(path: &Path) -> Result<AuditLog> {
        AuditLog::open_with(path, OpenOptions::default())
    }

    pub fn open_with(path: &Path, options: OpenOptions) -> Result<AuditLog> {
        #[cfg(feature = "deadlock-detection")]
        crate::sys::deadlock::watch();
        let stripes = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
        Ok(AuditLog {
            register: parking_lot::RwLock::new(Register::open_with(path, options)?),
            path: path.to_path_buf(),
            options,
            dir: segment_dir(path),
            sync: options.sync,
            threads: options.threads && !options.sync,
            segment_bytes: options.segment_bytes,
            pid: std::process::id(),
            key: Mutex::new(None),
            changing_key: Mutex::new(()),
            keyed: AtomicBool::new(false),
            stripes: (0..stripes).map(|_| Mutex::new(None)).collect(),
            id: NEXT_TRAIL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// A number no other trail of this process has had: what a cache of descriptions made
    /// for this trail's records can be keyed by (an address may be reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The register's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many segments this process may write at once.
    pub fn stripes(&self) -> usize {
        self.stripes.len()
    }

    /// The key to write `m` links with (a login), or `None` for `h` links.
    ///
    /// Takes the locks in the process's order (`docs/locking.md`): the key, then the
    /// register, released; then each stripe and its linker in turn — never the key while
    /// waiting for a stripe, which `append` holds while it opens a segment and reads the key.
    pub fn set_key(&self, key: Option<AuditKey>) {
        // One change of key at a time, each to the end: two racing changes (a login and a
        // logout) must not leave the linkers with one key and `keyed` saying the other.
        let _changing = self.changing_key.lock();
        if key.is_none() {
            self.keyed.store(false, Ordering::SeqCst);
        }
        // A segment opened from here on gets the new key from `open_writer`; one opened
        // before is in its stripe by the time the walk below takes that stripe's lock
        // (`append` holds the stripe while it opens the segment).
        {
            let mut held = self.key.lock();
            *held = key.clone();
            self.register.read().set_key(key.clone());
        }
        // Every linker holds the key before any writer marks a record `m`.
        for stripe in self.stripes.iter() {
            if let Some(writer) = &*stripe.lock() {
                let mut linker = writer.linker.lock();
                // Records written under the old key are linked under it.
                if let Err(e) = linker.link_pending() {
                    crate::error::log_fault("linking audit records", &e);
                }
                linker.set_key(key.as_ref().map(|k| &k[..]));
            }
        }
        self.keyed.store(key.is_some(), Ordering::SeqCst);
        // With the key, the segments of dead processes can be closed (their tails then
        // covered by the register), and the end of a time with auditing off recorded. A
        // failure leaves them as they were.
        if let Some(key) = &key {
            let register = self.register.read();
            if let Err(e) = super::reclaim::close_dead_segments(&register, &self.dir, key) {
                crate::error::log_fault("closing audit segments of dead processes", &e);
            }
            if let Err(e) = register.record_audit_on_if_off() {
                crate::error::log_fault("recording that auditing is on again", &e);
            }
        }
    }

    pub fn has_key(&self) -> bool {
        self.keyed.load(Ordering::SeqCst)
    }

    /// The register's last record: its sequence number and link.
    pub fn head(&self) -> Result<(u64, [u8; LINK_LEN])> {
        self.register.read().head()
    }

    /// The number of the calling thread's segment, once it has one.
    pub fn segment(&self) -> Option<u64> {
        self.stripe().lock().as_ref().map(|w| w.segment.number())
    }

    fn stripe(&self) -> &Mutex<Option<Writer>> {
        &self.stripes[STRIPE.with(|n| *n) % self.stripes.len()]
    }

    /// Appends `record` to the calling thread's segment (opening it first if need be); its
    /// sequence number in the segment. An error means the record was not written.
    pub fn append(&self, record: &Record<'_>) -> Result<u64> {
        let mut stripe = self.stripe().lock();
        // A full segment is closed and a new one opened (a process writing a gigabyte).
        if stripe.as_ref().is_some_and(|w| !w.segment.fits(MAX_RECORD)) {
            self.close_writer(stripe.take())?;
        }
        if stripe.is_none() {
            *stripe = Some(self.open_writer(record)?);
        }
        let writer = stripe.as_mut().expect("opened above");
        // Read under the stripe's lock: `set_key` gives this writer's linker the key before
        // it sets `keyed`.
        let seq = writer.segment.append(record, self.pid, self.keyed.load(Ordering::SeqCst))?;
        match &writer.thread {
            None => {
                writer.linker.lock().link_pending()?;
            }
            Some(thread) => {
                if thread.control.idle.load(Ordering::SeqCst)
                    && thread.control.idle.swap(false, Ordering::SeqCst)
                {
                    thread.handle.thread().unpark();
                }
            }
        }
        Ok(seq)
    }

    /// Creates a segment and records its opening in the register, under the register's
    /// lock, so that its number is the opening record's sequence number; then starts its
    /// linking thread.
    fn open_writer(&self, first: &Record<'_>) -> Result<Writer> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        let opening = Record {
            principal: first.principal,
            session: first.session,
            client: first.client,
            ..Record::new(SEGMENT_OPEN, 0)
        };
        // The key as the register will see it (`set_key` holds this lock while it changes).
        let key = self.key.lock();
        let mut created = None;
        let appended = self.register.read().append_after(&opening, |n| {
            created = Some(Segment::create(&self.dir, n, self.sync, self.segment_bytes)?);
            Ok(())
        });
        let (segment, mut linker) = match appended {
            Ok((_, link)) => {
                let (segment, mut linker) = created.ok_or(Error::Internal("audit segment not created"))?;
                linker.chain_to(link);
                (segment, linker)
            }
            Err(e) => {
                if let Some((segment, _)) = created {
                    let _ = std::fs::remove_file(segment.path());
                }
                return Err(e);
            }
        };
        linker.set_key(key.as_ref().map(|k| &k[..]));
        drop(key);
        let linker = Arc::new(SharedLinker(std::sync::Mutex::new(linker)));
        let thread = if self.threads { spawn_linking_thread(&linker, segment.number()) } else { None };
        Ok(Writer { segment, client: first.client, linker, thread })
    }

    /// Ends this process's segments: every record linked, each file cut to its records,
    /// and each segment closed in the register with its last sequence number and link.
    /// The next append opens new ones.
    pub fn close(&self) -> Result<()> {
        let mut first_error = None;
        for stripe in self.stripes.iter() {
            let writer = stripe.lock().take();
            if let Err(e) = self.close_writer(writer) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn close_writer(&self, writer: Option<Writer>) -> Result<()> {
        let Some(writer) = writer else {
            return Ok(());
        };
        if self.pid != std::process::id() {
            // Inherited across fork (without its thread): the parent's, left as it is.
            return Ok(());
        }
        if let Some(thread) = writer.thread {
            thread.control.stop.store(true, Ordering::SeqCst);
            thread.handle.thread().unpark();
            thread.handle.join();
        }
        let mut linker = Arc::try_unwrap(writer.linker)
            .map_err(|_| Error::Internal("the audit linker is still shared"))?
            .0
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        linker.link_pending()?;
        let number = writer.segment.number();
        let end = linker.end();
        writer.segment.finish(linker)?;
        let closing = Record {
            segment: Some(number),
            end: Some(end),
            client: writer.client,
            ..Record::new(SEGMENT_CLOSE, 0)
        };
        self.register.read().append(&closing)?;
        Ok(())
    }
}

impl AuditLog {
    /// Ends this trail and starts a new one in its place, keeping the old (a token
    /// re-initialized: its records are authenticated under a token key that no longer
    /// exists, so they stay a trail of their own). The segments are closed, a
    /// `trail_archived` record ends the register, and the register and its segment directory
    /// are renamed to `<register>.archived-<time>` (and `.d`); the next record starts a new
    /// register. The archived trail's path (the register's own if there was nothing to
    /// archive).
    pub fn archive(&self) -> Result<PathBuf> {
        self.close()?;
        // The key before the register, as everywhere (`docs/locking.md`): held, so that the
        // new register gets the key in force.
        let key = self.key.lock();
        let mut register = self.register.write();
        if register.head()?.0 == 0 && !self.dir.exists() {
            // Nothing recorded yet (a slot's first token): nothing to keep.
            return Ok(self.path.clone());
        }
        let time = super::record::now_ms();
        let mut archived = self.path.as_os_str().to_os_string();
        archived.push(format!(".archived-{time}"));
        let archived = PathBuf::from(archived);
        register.append(&Record::new(TRAIL_ARCHIVED, 0))?;
        // The segments first: a process that opens one meanwhile (it locks the register)
        // then finds no directory and makes a new one, for the new register.
        if self.dir.exists() {
            std::fs::rename(&self.dir, segment_dir(&archived))?;
        }
        std::fs::rename(&self.path, &archived)?;
        let fresh = Register::open_with(&self.path, self.options)?;
        fresh.set_key(key.clone());
        *register = fresh;
        Ok(archived)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            crate::error::log_fault("closing the audit segment", &e);
        }
    }
}

/// Starts the thread that links the segment's records as they come; `None` (records are
/// then linked by their writers) if it cannot be started.
fn spawn_linking_thread(linker: &Arc<SharedLinker>, segment: u64) -> Option<LinkingThread> {
    let control = Arc::new(Control::default());
    let (linker, thread_control) = (linker.clone(), control.clone());
    let spawned = crate::sys::thread::spawn(&format!("ecm-hsm-audit-{segment}"), move || {
        link_as_records_come(&linker, &thread_control)
    });
    match spawned {
        Ok(handle) => Some(LinkingThread { handle, control }),
        Err(e) => {
            crate::error::log_fault("starting the audit linking thread", &Error::from(e));
            None
        }
    }
}

/// The linking thread: links what was written, lets the next records gather for
/// [`LINK_BATCH_WINDOW`], and sleeps until woken when there is nothing to link.
fn link_as_records_come(linker: &SharedLinker, control: &Control) {
    // Ahead of the first records too: a process that starts with a burst would otherwise
    // grow the file itself, record by record, until this thread caught up.
    let _ = linker.lock().reserve_ahead(PREPARE_AHEAD);
    loop {
        let stop = control.stop.load(Ordering::SeqCst);
        let linked = linker.lock().link_pending();
        if stop {
            return;
        }
        // (Writers do not take the linker's lock.) A failure, a full disk, is the writer's
        // to meet and report.
        let _ = linker.lock().reserve_ahead(PREPARE_AHEAD);
        match linked {
            Ok(n) if n > 0 => std::thread::sleep(LINK_BATCH_WINDOW),
            Ok(_) => {
                control.idle.store(true, Ordering::SeqCst);
                // A writer that published after the store sees `idle` and wakes us; one that
                // published before it is seen here.
                if !linker.lock().has_pending() && !control.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                control.idle.store(false, Ordering::SeqCst);
            }
            Err(e) => {
                // A record that cannot be linked (an `m` record before the key): tried
                // again at the next record, and its writer's close reports it.
                crate::error::log_fault("linking audit records", &e);
                control.idle.store(true, Ordering::SeqCst);
                std::thread::park();
                control.idle.store(false, Ordering::SeqCst);
            }
        }
    }
}
