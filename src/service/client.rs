//! The blocking client of the key service: the methods of the core's `Module` that a PKCS#11
//! application uses, of the same names and signatures, each sent to the service as one
//! request (one round trip), and the service's error turned back into the same [`Error`], so
//! that the C ABI answers the same code in client mode as in-process.
//!
//! Handles: the service numbers sessions and objects per connection, from 1. The client gives
//! the application `epoch << 48 | remote` instead, where the epoch changes whenever the
//! connection is lost. A lost connection takes its sessions with it: the call during which it
//! is lost fails with `CKR_DEVICE_REMOVED` (the standard's "the token was removed from its
//! slot during the execution of the function"), and every later use of a handle of the old
//! connection with `CKR_SESSION_HANDLE_INVALID` (or the object handle's code), never reaching
//! an object of the new connection that happens to bear the same number. The next call that
//! needs no old handle (`C_GetSlotList`, `C_OpenSession`) connects again.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cryptoki_sys::*;
use parking_lot::Mutex;

use super::call_list::kinds::*;
use super::call_list::{Arg, Ret, listed_calls};
use super::client_operations::{Operations, keeps_operations};
use super::protocol::*;
use super::transport::{Framed, Peer};
use super::wire::*;
use crate::object::AttributeRead;
use crate::policy::SessionView;
use crate::session::TokenStatus;
use crate::token::TokenInfo;
use crate::{Error, Result};

/// The longest answer the client accepts before it has the server's limits.
const HELLO_MAX_FRAME: usize = 64 * 1024;
/// The longest answer the client accepts at all.
const MAX_ANSWER: usize = 256 << 20;
const EPOCH_SHIFT: u32 = 48;
/// How long the client polls for an answer before it blocks (see `Framed::set_spin`): longer
/// than the service takes for a small operation, shorter than a signature.
const ANSWER_SPIN: Duration = Duration::from_micros(50);
const REMOTE_MASK: u64 = (1 << EPOCH_SHIFT) - 1;

/// Where the service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
}

impl Address {
    /// `unix:/run/ecm-hsm/ecm-hsm.sock` (the form of `ECM_HSM_SERVICE`), or a bare path.
    pub fn parse(text: &str) -> Result<Address> {
        let path = text.strip_prefix("unix:").unwrap_or(text);
        if path.is_empty() || !Path::new(path).is_absolute() {
            return Err(Error::ArgumentsBad);
        }
        Ok(Address::Unix(PathBuf::from(path)))
    }
}

pub struct Client {
    address: Address,
    state: Mutex<State>,
}

pub(super) struct State {
    connection: Option<Framed<UnixStream>>,
    /// The epoch of the current connection's handles (1 to 0xffff).
    pub(super) epoch: u64,
    next_request: u64,
    round_trips: u64,
    /// What the client knows of its sessions' operations (held-back inits, output lengths).
    pub(super) operations: Operations,
}

/// The handles of the current connection, for building a call.
pub struct Handles {
    pub(super) epoch: u64,
}

/// A call's reply as the service sends it.
pub(super) type Reply = std::result::Result<Answer, WireError>;

impl Handles {
    pub(super) fn remote(&self, local: u64, stale: Error) -> Result<u64> {
        if local >> EPOCH_SHIFT == self.epoch { Ok(local & REMOTE_MASK) } else { Err(stale) }
    }

    pub fn session(&self, local: CK_SESSION_HANDLE) -> Result<u64> {
        self.remote(local, Error::SessionHandleInvalid)
    }

    pub fn object(&self, local: CK_OBJECT_HANDLE) -> Result<u64> {
        self.remote(local, Error::ObjectHandleInvalid)
    }

    pub fn key(&self, local: CK_OBJECT_HANDLE) -> Result<u64> {
        self.remote(local, Error::KeyHandleInvalid)
    }

    fn local(&self, remote: u64) -> Result<u64> {
        if remote > REMOTE_MASK {
            return Err(Error::Device("key service handle out of range".into()));
        }
        Ok(self.epoch << EPOCH_SHIFT | remote)
    }
}

impl Client {
    /// A client of the service at `address`; it connects at its first call.
    pub fn new(address: Address) -> Client {
        Client {
            address,
            state: Mutex::new(State {
                connection: None,
                epoch: 1,
                next_request: 1,
                round_trips: 0,
                operations: Operations::default(),
            }),
        }
    }

    /// Sends the calls `build` makes as one request; returns each call's answer, all of them
    /// when all succeeded, else the first failure. A call that may change what a key allows
    /// or what a session's login is (see [`keeps_operations`]) first sends the `*Init`s held
    /// back, in the order the application made them, and forgets which inits were proven.
    pub fn request(&self, build: impl FnOnce(&Handles) -> Result<Vec<Call>>) -> Result<Vec<Answer>> {
        let mut state = self.state.lock();
        let handles = Handles { epoch: state.epoch };
        let calls = build(&handles)?;
        if !calls.iter().all(keeps_operations) {
            self.flush(&mut state)?;
            state.operations.forget_proofs();
        }
        let count = calls.len();
        let mut answers = Vec::with_capacity(count);
        for reply in self.exchange(&mut state, calls)? {
            answers.push(reply.map_err(error_from_wire)?);
        }
        Ok(answers)
    }

    /// One round trip: `calls` as one request, and the replies of the calls the service ran
    /// (all of them, or up to the first that failed).
    pub(super) fn exchange(&self, state: &mut State, calls: Vec<Call>) -> Result<Vec<Reply>> {
        let count = calls.len();
        let id = state.next_request;
        state.next_request += 1;
        if state.connection.is_none() {
            state.connection = Some(self.connect()?);
        }
        state.round_trips += 1;
        let connection = state.connection.as_mut().ok_or(Error::Internal("connected"))?;
        let sent = connection.send(&Request { id, calls });
        let received = match sent {
            // Too long for a frame: refused before anything was written; the connection is
            // as good as before.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Err(Error::DataLenRange),
            Err(e) => Err(e),
            Ok(()) => connection.receive::<Response>(),
        };
        match received {
            // All succeeded, or the last one run failed; a short answer without a failure is
            // a broken server.
            Ok(Some(r))
                if r.id == id
                    && !r.replies.is_empty()
                    && r.replies.len() <= count
                    && (r.replies.len() == count || r.replies.last().is_some_and(|x| x.is_err())) =>
            {
                Ok(r.replies)
            }
            _ => {
                state.lost();
                Err(Error::DeviceRemoved)
            }
        }
    }

    /// Sends the `*Init`s held back, each as the application made it; one the service refuses
    /// is kept as its error, for the operation's next step to report.
    pub(super) fn flush(&self, state: &mut State) -> Result<()> {
        while let Some((at, init)) = state.operations.next_held() {
            let reply = self.exchange(state, vec![init.call])?.pop().ok_or(Error::Internal("one reply"))?;
            state.operations.flushed(at, init.begun, reply.map(drop).map_err(error_from_wire));
        }
        Ok(())
    }

    /// How many requests this client has sent (each one round trip): what the tests of the
    /// one-round-trip rule count.
    pub fn round_trips(&self) -> u64 {
        self.state.lock().round_trips
    }

    /// The client's state, locked: for the calls that look at it before they build a request.
    pub(super) fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// One call, one answer.
    pub(super) fn one(&self, build: impl FnOnce(&Handles) -> Result<Call>) -> Result<Answer> {
        let mut answers = self.request(|h| build(h).map(|c| vec![c]))?;
        answers.pop().ok_or(Error::Internal("one answer"))
    }

    /// A local handle of the current connection for `remote`, as answered just now.
    pub(super) fn local(&self, remote: u64) -> Result<u64> {
        Handles { epoch: self.state.lock().epoch }.local(remote)
    }

    fn connect(&self) -> Result<Framed<UnixStream>> {
        let Address::Unix(path) = &self.address;
        let stream = UnixStream::connect(path).map_err(|e| Error::Device(format!("key service: {e}")))?;
        let mut framed = Framed::new(stream, HELLO_MAX_FRAME, None);
        let hello = Hello { magic: MAGIC, versions: VERSIONS.to_vec() };
        let refused = |what: String| Error::Device(format!("key service: {what}"));
        framed.send(&hello).map_err(|e| refused(e.to_string()))?;
        match framed.receive::<HelloReply>() {
            Ok(Some(HelloReply::Accepted { version, limits })) if VERSIONS.contains(&version) => {
                framed.set_max_frame(usize::try_from(limits.max_frame).unwrap_or(MAX_ANSWER).min(MAX_ANSWER));
                framed.set_spin(ANSWER_SPIN);
                Ok(framed)
            }
            Ok(Some(HelloReply::Refused { supported })) => {
                Err(refused(format!("speaks protocol versions {supported:?}, this client {VERSIONS:?}")))
            }
            Ok(_) => Err(refused("no valid hello".into())),
            Err(e) => Err(refused(e.to_string())),
        }
    }
}

impl State {
    /// The connection is gone, and its handles with it.
    fn lost(&mut self) {
        if let Some(c) = self.connection.take() {
            c.stream().shutdown(std::net::Shutdown::Both).ok();
        }
        self.epoch = if self.epoch >= 0xffff { 1 } else { self.epoch + 1 };
        self.operations = Operations::default();
    }
}

fn remote_handle(answer: Answer) -> Result<u64> {
    match answer {
        Answer::Handle(h) => Ok(h),
        _ => Err(unexpected()),
    }
}

/// The methods of `Module`, by chapter.
impl Client {
    /// The connection's peer as the service sees it (`SO_PEERCRED`).
    pub fn peer(&self) -> Result<Peer> {
        match self.one(|_| Ok(Call::Peer))? {
            Answer::Peer { uid, gid, pid } => Ok(Peer { uid, gid, pid }),
            _ => Err(unexpected()),
        }
    }

    pub fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>> {
        match self.one(|_| Ok(Call::SlotList))? {
            Answer::Slots(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    pub fn token_status(&self, slot: CK_SLOT_ID) -> Result<TokenStatus> {
        self.token_status_and_model(slot).map(|(status, _)| status)
    }

    /// `C_GetTokenInfo`'s answer: the token's status and the service's model.
    pub fn token_status_and_model(&self, slot: CK_SLOT_ID) -> Result<(TokenStatus, String)> {
        match self.one(|_| Ok(Call::TokenStatus { slot }))? {
            Answer::TokenStatus(s) => Ok((
                TokenStatus {
                    info: TokenInfo { label: s.label, serial: s.serial, flags: s.flags },
                    session_count: to_usize(s.session_count)?,
                    rw_session_count: to_usize(s.rw_session_count)?,
                },
                s.model,
            )),
            _ => Err(unexpected()),
        }
    }

    /// `C_Finalize`: closes the connection (the service then closes its sessions and ends
    /// its login); the next call connects again.
    pub fn disconnect(&self) {
        self.state.lock().lost();
    }

    /// In the child of a `fork()`: closes this process's copy of the connection's socket
    /// without sending or shutting anything down (the parent's connection is the same
    /// socket and stays usable). A lock held at the fork by another thread of the parent
    /// is never released in the child: the socket is then left open, never used.
    pub fn forget_after_fork(&self) {
        if let Some(mut state) = self.state.try_lock() {
            drop(state.connection.take());
        }
    }

    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let remote = remote_handle(self.one(|_| Ok(Call::OpenSession { slot, flags }))?)?;
        self.local(remote)
    }

    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let closed = done(self.one(|c| Ok(Call::CloseSession { session: c.session(h)? }))?);
        self.lock().operations.forget_session(h);
        closed
    }

    /// `C_GetSessionInfo`'s answer: the session's slot and what it sees.
    pub fn session_view(&self, h: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, SessionView)> {
        match self.one(|c| Ok(Call::SessionView { session: c.session(h)? }))? {
            Answer::SessionView { slot, login, read_write, principal } => {
                Ok((slot, SessionView { login: login_from_wire(login), read_write, principal }))
            }
            _ => Err(unexpected()),
        }
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        let closed = done(self.one(|_| Ok(Call::CloseAllSessions { slot }))?);
        self.lock().operations.forget_sessions();
        closed
    }
}

/// Objects.
impl Client {
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        let answer = self.one(|c| {
            Ok(Call::GetAttributes {
                session: c.session(h)?,
                object: c.object(object)?,
                kinds: kinds.to_vec(),
            })
        })?;
        match answer {
            Answer::Reads(reads) if reads.len() == kinds.len() => Ok(reads_from_wire(reads)),
            _ => Err(unexpected()),
        }
    }

    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        match self.one(|c| Ok(Call::FindNext { session: c.session(h)?, max: max as u64 }))? {
            Answer::Handles(found) if found.len() <= max => {
                found.into_iter().map(|r| self.local(r)).collect()
            }
            _ => Err(unexpected()),
        }
    }
}

/// Keys.
impl Client {}

/// The client's methods of the calls listed in `call_list.rs`: each sends its call, with the
/// application's handles mapped to the connection's, and gives back the answer.
macro_rules! client_methods {
    ($(fn $name:ident($($arg:ident: $kind:ty),*) -> $ret:ty = $variant:ident;)*) => {
        impl Client {
            $(
                pub fn $name(&self, $($arg: <$kind as Arg>::Local<'_>),*) -> Result<<$ret as Ret>::Local> {
                    let answer =
                        self.one(|c| Ok(Call::$variant { $($arg: <$kind as Arg>::to_wire($arg, c)?),* }))?;
                    <$ret as Ret>::from_answer(self, answer)
                }
            )*
        }
    };
}

listed_calls!(client_methods);

/// PKCS#11 3.2 key encapsulation (ML-KEM), carried as the other key management calls are.
impl Client {
    pub fn encapsulate_key(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: &crate::mechanism::Mechanism,
        public: CK_OBJECT_HANDLE,
        template: &[crate::object::Attribute],
        buffer: crate::session::OutputBuffer,
    ) -> Result<(crate::session::Output, Option<CK_OBJECT_HANDLE>)> {
        let answer = self.one(|c| {
            Ok(Call::EncapsulateKey {
                session: c.session(h)?,
                mechanism: mechanism_to_wire(mechanism),
                public: c.key(public)?,
                template: attributes_to_wire(template),
                buffer: buffer_to_wire(buffer),
            })
        })?;
        match answer {
            Answer::Encapsulated { output, key } => {
                let key = key.map(|k| self.local(k)).transpose()?;
                Ok((output_from_wire(output)?, key))
            }
            _ => Err(unexpected()),
        }
    }
}
