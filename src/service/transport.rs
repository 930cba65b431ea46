//! Frames over a blocking byte stream: tokio-util's `LengthDelimitedCodec` (a 4-byte
//! big-endian length, then the frame) used through its synchronous `Encoder`/`Decoder`
//! traits on a `BytesMut`, so that neither side needs an async runtime; each frame's payload
//! is one postcard-encoded message.
//!
//! The stream is behind [`Transport`], so that a TLS stream can stand in for the Unix socket
//! later: the framing and the messages do not change.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};
use zeroize::Zeroize;

/// Who is at the other end of a connection, as the kernel reports it (`SO_PEERCRED`): the
/// process that connected, not what it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

/// A connected byte stream the service can speak over.
pub trait Transport: Read + Write + Send {
    /// The peer's credentials, if the transport knows them.
    fn peer(&self) -> io::Result<Peer>;
    /// Bounds the wait of the next read (`None`: wait as long as it takes).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Ends the connection in both directions.
    fn shutdown(&self);
    /// Reads what has already arrived, without waiting: `Ok(None)` when nothing has. A
    /// transport that cannot answers `Unsupported`, and [`Framed`] then only blocks.
    fn read_ready(&self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Transport for UnixStream {
    fn peer(&self) -> io::Result<Peer> {
        let cred = rustix::net::sockopt::socket_peercred(self)?;
        Ok(Peer { uid: cred.uid.as_raw(), gid: cred.gid.as_raw(), pid: cred.pid.as_raw_nonzero().get() })
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn shutdown(&self) {
        let _ = UnixStream::shutdown(self, std::net::Shutdown::Both);
    }

    fn read_ready(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::net::recv(self, buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((_, n)) => Ok(Some(n)),
            Err(e) if e == rustix::io::Errno::AGAIN => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// How much is read from the stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// A stream that sends and receives whole messages.
pub struct Framed<S: Transport> {
    stream: S,
    codec: LengthDelimitedCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// How long the rest of a frame may take once its first byte came; `None` for ever. A
    /// client that stops in the middle of a frame holds its thread no longer than this.
    mid_frame_timeout: Option<Duration>,
    timeout_set: bool,
    /// How long a [`receive`](Self::receive) polls the stream before it blocks (see
    /// [`set_spin`](Self::set_spin)); zero: it blocks at once.
    spin: Duration,
    /// Receives left that block at once, after a poll that found nothing (see
    /// [`read_spinning`](Self::read_spinning)), and how many the next miss sets.
    spin_skip: u32,
    spin_backoff: u32,
}

/// The most receives that skip polling after polls that found nothing.
const MAX_SPIN_BACKOFF: u32 = 64;

impl<S: Transport> Framed<S> {
    /// Frames of at most `max_frame` bytes either way: a longer one announced by the peer is
    /// refused from its length alone, before any of it is buffered.
    pub fn new(stream: S, max_frame: usize, mid_frame_timeout: Option<Duration>) -> Framed<S> {
        let codec = LengthDelimitedCodec::builder().max_frame_length(max_frame).new_codec();
        Framed {
            stream,
            codec,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            mid_frame_timeout,
            timeout_set: false,
            spin: Duration::ZERO,
            spin_skip: 0,
            spin_backoff: 0,
        }
    }

    /// Makes each [`receive`](Self::receive) poll the stream for up to `spin` before it
    /// blocks in the kernel. A request-answer exchange between two processes otherwise pays,
    /// per message, for waking a thread that blocked — on a VM whose idle vCPU halted, a
    /// wake-up costs tens of µs, several times a small operation's work. Polling keeps the
    /// CPU awake for the answer that is about to come; it yields the CPU at each turn, so a
    /// thread that has work there runs first, and it ends after `spin`, so an idle
    /// connection costs no CPU beyond that one stretch after its last message. Polling that
    /// finds nothing (answers slower than `spin`, such as signatures, or a machine too busy
    /// to run the peer at once) is wasted CPU the peer may need: after such a miss the next
    /// receives block at once, twice as many after each further miss (up to 64), and one
    /// poll that finds its message ends the back-off.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Changes the longest frame either way (a client learns the server's in its hello).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.codec.set_max_frame_length(max_frame);
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Sends one message. Its encoding is wiped from memory once written: it may hold a PIN
    /// or plaintext.
    pub fn send<T: Serialize>(&mut self, message: &T) -> io::Result<()> {
        let payload =
            postcard::to_stdvec(message).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut payload = bytes::Bytes::from(payload);
        let encoded = self.codec.encode(payload.clone(), &mut self.write_buf);
        // The only other reference was the codec's, now dropped: the bytes are ours again.
        if let Ok(mut owned) = bytes::Bytes::try_into_mut(std::mem::take(&mut payload)) {
            wipe(&mut owned);
        }
        let result =
            encoded.and_then(|()| self.stream.write_all(&self.write_buf)).and_then(|()| self.stream.flush());
        wipe(&mut self.write_buf);
        self.write_buf.clear();
        result
    }

    /// Receives one message; `None` when the peer closed the connection between messages. A
    /// frame that does not decode as a `T`, or is too long, is an `InvalidData` error; a
    /// connection closed inside a frame is `UnexpectedEof`.
    pub fn receive<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        // One stretch of polling per message, however many reads it takes.
        let spin_until = if self.spin.is_zero() || self.spin_skip > 0 {
            self.spin_skip = self.spin_skip.saturating_sub(1);
            None
        } else {
            Some(Instant::now() + self.spin)
        };
        loop {
            if let Some(mut frame) = self.codec.decode(&mut self.read_buf)? {
                let message =
                    postcard::from_bytes(&frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                wipe(&mut frame);
                return message.map(Some);
            }
            self.arm_timeout()?;
            let filled = self.read_buf.len();
            self.read_buf.resize(filled + READ_CHUNK, 0);
            let read = match spin_until {
                Some(until) => self.read_spinning(filled, until),
                None => self.stream.read(&mut self.read_buf[filled..]),
            };
            self.read_buf.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) if self.read_buf.is_empty() => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads into `read_buf[filled..]`: polls until `until`, then blocks.
    /// A miss (nothing came in time) starts or doubles the back-off; a hit ends it.
    fn read_spinning(&mut self, filled: usize, until: Instant) -> io::Result<usize> {
        loop {
            match self.stream.read_ready(&mut self.read_buf[filled..]) {
                Ok(Some(n)) => {
                    self.spin_backoff = 0;
                    return Ok(n);
                }
                Ok(None) if Instant::now() < until => std::thread::yield_now(),
                Ok(None) => {
                    self.spin_backoff = (self.spin_backoff * 2).clamp(1, MAX_SPIN_BACKOFF);
                    self.spin_skip = self.spin_backoff;
                    return self.stream.read(&mut self.read_buf[filled..]);
                }
                Err(_) => return self.stream.read(&mut self.read_buf[filled..]),
            }
        }
    }

    /// Waits without a bound between frames, and at most `mid_frame_timeout` inside one.
    fn arm_timeout(&mut self) -> io::Result<()> {
        let inside = !self.read_buf.is_empty();
        if self.mid_frame_timeout.is_some() && inside != self.timeout_set {
            self.stream.set_read_timeout(if inside { self.mid_frame_timeout } else { None })?;
            self.timeout_set = inside;
        }
        Ok(())
    }
}

impl<S: Transport> Drop for Framed<S> {
    fn drop(&mut self) {
        wipe(&mut self.read_buf);
    }
}

/// Overwrites a buffer's bytes (what it holds, not its spare capacity, which the code above
/// never fills without holding it first).
fn wipe(buf: &mut BytesMut) {
    buf.as_mut().zeroize();
}
