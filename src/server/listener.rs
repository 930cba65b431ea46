//! The key service's server: accepts connections, gives each a thread and a core `Module` of
//! its own, and answers its requests until it goes.
//!
//! A module per connection is what makes a connection an application in the standard's
//! sense: its session handles, object handles and login state are its own, and none of them
//! can be named by another client. When the connection ends, for whatever reason (closed,
//! garbage, a limit, the client killed mid-call), its module is dropped: its sessions close,
//! its session objects go and its login ends, as when an in-process application exits.
//!
//! The module is made with the peer's credentials (`SO_PEERCRED`) as its audit client, so
//! every record it writes names the client process (`for_client`).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::dispatch::{CallLimits, dispatch};
use crate::audit::ClientProcess;
use crate::config::Config;
use crate::module::Module;
use crate::service::protocol::{
    Answer, Call, Hello, HelloReply, MAGIC, Request, Response, VERSIONS, WireError, WireLimits,
};
use crate::service::transport::{Framed, Peer, Transport};
use crate::service::wire::error_to_wire;

/// What one connection may hold and send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest frame either way, in bytes; also bounds what a connection buffers. Data
    /// longer than this goes in several `Update` steps.
    pub max_frame: usize,
    /// Sessions open at once on one connection.
    pub max_sessions: usize,
    /// Connections served at once; a connection beyond is closed at once.
    pub max_connections: usize,
    /// Calls in one request.
    pub max_calls: usize,
    /// How long the rest of a frame may take once it has begun.
    pub mid_frame_timeout: Option<Duration>,
    /// How long a connection's thread polls for the next request after answering one, before
    /// it blocks (see `Framed::set_spin`): an application that makes calls one after the
    /// other finds the thread awake; an idle one costs this much CPU once.
    pub spin: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: 4 << 20,
            max_sessions: 256,
            max_connections: 256,
            max_calls: 16,
            mid_frame_timeout: Some(Duration::from_secs(30)),
            spin: Duration::from_micros(50),
        }
    }
}

/// Where connections come from: a Unix socket today, a TLS listener later.
pub trait Listener: Send + Sync {
    type Stream: Transport + 'static;
    fn accept(&self) -> io::Result<Self::Stream>;
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    fn accept(&self) -> io::Result<UnixStream> {
        UnixListener::accept(self).map(|(stream, _)| stream)
    }
}

/// One client connection, as the service knows it. The peer's credentials are what the
/// kernel reported when it connected, for the audit to name the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Numbers the connections of this server, from 1.
    pub id: u64,
    pub peer: Peer,
}

pub struct Server<L: Listener> {
    listener: L,
    config: Config,
    limits: Limits,
    active: Arc<AtomicUsize>,
    next_id: AtomicU64,
    quiet: bool,
}

impl<L: Listener> Server<L> {
    pub fn new(listener: L, config: Config, limits: Limits) -> Server<L> {
        Server {
            listener,
            config,
            limits,
            active: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
            quiet: false,
        }
    }

    /// Logs nothing of connections coming and going (faults are still logged).
    pub fn quiet(mut self) -> Server<L> {
        self.quiet = true;
        self
    }

    /// How many connections are being served now.
    pub fn connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Serves connections until accepting fails for good.
    pub fn run(&self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of file descriptors or memory for a moment: the next accept may work.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)) => {
                    log(&format!("accept: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.spawn(stream);
        }
    }

    fn spawn(&self, stream: L::Stream) {
        let slot = Slot::take(&self.active, self.limits.max_connections);
        let Some(slot) = slot else {
            log("connection refused: too many connections");
            stream.shutdown();
            return;
        };
        let peer = match stream.peer() {
            Ok(p) => p,
            Err(e) => {
                log(&format!("connection refused: no peer credentials: {e}"));
                stream.shutdown();
                return;
            }
        };
        let connection = Connection { id: self.next_id.fetch_add(1, Ordering::Relaxed), peer };
        let config = self.config.clone();
        let limits = self.limits.clone();
        let quiet = self.quiet;
        let spawned =
            std::thread::Builder::new().name(format!("ecm-hsm-conn-{}", connection.id)).spawn(move || {
                let _slot = slot;
                if !quiet {
                    log(&format!(
                        "connection {} open: uid {} gid {} pid {}",
                        connection.id, peer.uid, peer.gid, peer.pid
                    ));
                }
                let end = serve_connection(stream, connection, config, &limits);
                if !quiet {
                    log(&format!("connection {} closed: {end}", connection.id));
                }
            });
        if let Err(e) = spawned {
            log(&format!("connection refused: no thread: {e}"));
        }
    }
}

/// A place among the connections served at once, given back when dropped (a panic of the
/// connection's thread included).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(active.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection to its end; returns why it ended, for the log.
pub fn serve_connection<S: Transport>(
    stream: S,
    connection: Connection,
    config: Config,
    limits: &Limits,
) -> String {
    let mut framed = Framed::new(stream, limits.max_frame, limits.mid_frame_timeout);
    let end = match handshake(&mut framed, limits) {
        Ok(()) => match Module::new(for_client(config, connection.peer)) {
            Ok(module) => {
                framed.set_spin(limits.spin);
                serve_requests(&mut framed, &module, connection, limits)
            }
            Err(e) => format!("no module: {e}"),
        },
        Err(why) => why,
    };
    framed.stream().shutdown();
    end
}

/// The settings of a connection's core: the service's, with the client that every audit
/// record of that core names (uid, gid and pid as the kernel reported them at connect).
fn for_client(config: Config, peer: Peer) -> Config {
    // A pid is positive; the kernel reports 0 for a peer in another pid namespace.
    let pid = u32::try_from(peer.pid).unwrap_or(0);
    Config { audit_client: Some(ClientProcess { uid: peer.uid, gid: peer.gid, pid }), ..config }
}

/// Reads the client's hello and answers it; `Err` says why the connection is to end.
fn handshake<S: Transport>(framed: &mut Framed<S>, limits: &Limits) -> Result<(), String> {
    // A client that connects and says nothing holds a connection no longer than one that
    // stops inside a frame.
    framed.stream().set_read_timeout(limits.mid_frame_timeout).map_err(|e| format!("read timeout: {e}"))?;
    let received = framed.receive();
    framed.stream().set_read_timeout(None).map_err(|e| format!("read timeout: {e}"))?;
    let hello: Hello = match received {
        Ok(Some(h)) => h,
        Ok(None) => return Err("closed before its hello".into()),
        Err(e) => return Err(format!("bad hello: {e}")),
    };
    if hello.magic != MAGIC {
        return Err("not an ecm-hsm client".into());
    }
    let Some(version) = VERSIONS.iter().rev().find(|v| hello.versions.contains(v)) else {
        let _ = framed.send(&HelloReply::Refused { supported: VERSIONS.to_vec() });
        return Err(format!("no common version (client speaks {:?})", hello.versions));
    };
    let wire_limits =
        WireLimits { max_frame: limits.max_frame as u64, max_sessions: limits.max_sessions as u64 };
    framed
        .send(&HelloReply::Accepted { version: *version, limits: wire_limits })
        .map_err(|e| format!("hello reply: {e}"))
}

fn serve_requests<S: Transport>(
    framed: &mut Framed<S>,
    module: &Module,
    connection: Connection,
    limits: &Limits,
) -> String {
    // Room for the response's own framing and envelope around a call's output.
    let call_limits =
        CallLimits { max_sessions: limits.max_sessions, max_output: limits.max_frame.saturating_sub(64) };
    loop {
        let request: Request = match framed.receive() {
            Ok(Some(r)) => r,
            Ok(None) => return "by the client".into(),
            Err(e) => return format!("bad frame: {e}"),
        };
        if request.calls.len() > limits.max_calls {
            return format!("{} calls in one request", request.calls.len());
        }
        let mut replies = Vec::with_capacity(request.calls.len());
        for call in request.calls {
            let reply = match call {
                Call::Peer => Ok(Answer::Peer {
                    uid: connection.peer.uid,
                    gid: connection.peer.gid,
                    pid: connection.peer.pid,
                }),
                call => dispatch(module, &call_limits, call).map_err(|e| {
                    if e.is_fault() {
                        log(&format!("connection {}: {e}", connection.id));
                    }
                    error_to_wire(&e)
                }),
            };
            let failed = reply.is_err();
            replies.push(reply);
            if failed {
                break;
            }
        }
        if let Err(e) = framed.send(&Response { id: request.id, replies }) {
            // An answer too long for a frame is refused by the codec before anything is
            // written: say so rather than leave the client waiting.
            if e.kind() == io::ErrorKind::InvalidInput {
                let refused = Response {
                    id: request.id,
                    replies: vec![Err(WireError::Code(cryptoki_sys::CKR_DATA_LEN_RANGE))],
                };
                if framed.send(&refused).is_ok() {
                    continue;
                }
            }
            return format!("write: {e}");
        }
    }
}

fn log(line: &str) {
    eprintln!("ecm-hsm serve: {line}");
}
