//! The key service (issue 14): the core run in a process of its own, and a client that
//! speaks to it, so that no key value, token key or PIN-derived key need exist in an
//! application's process.
//!
//! # Protocol (version 1)
//!
//! - **Transport**: a stream socket; today a Unix socket (`ecm-hsm serve --socket PATH`, or
//!   the socket systemd hands over by `LISTEN_FDS`). Who may connect is decided by the
//!   socket's mode and group; the server reads each peer's uid, gid and pid with
//!   `SO_PEERCRED` ([`transport::Peer`]). The stream is behind [`transport::Transport`] and
//!   the listener behind `crate::server::Listener`, so that a TCP+mTLS listener is one more
//!   implementation of each.
//! - **Framing**: tokio-util's `LengthDelimitedCodec` (4-byte big-endian length, then the
//!   payload), through its synchronous `Encoder`/`Decoder` traits on a `BytesMut` over a
//!   blocking `std` stream: no async runtime in the application's process.
//! - **Messages**: serde types ([`protocol`]) encoded with postcard. A connection opens with
//!   [`protocol::Hello`] (a magic and the versions the client speaks); the server answers
//!   [`protocol::HelloReply::Accepted`] with the version it picked and its limits, or
//!   `Refused` with the versions it speaks, and closes. Then each client frame is a
//!   [`protocol::Request`]: several [`protocol::Call`]s run in order, stopping at the first
//!   that fails, so that an `*Init` checked locally travels with the first data step (one
//!   round trip; see `client_operations.rs`). Every call mirrors a public `Module` method;
//!   those that carry one as it is are listed once (`call_list.rs`), and the client's method
//!   and the server's dispatch of each are generated from that list;
//!   mechanism parameters and attribute arrays are typed (`WireParams`, `WireValue::Array`).
//!   Errors travel as their `CK_RV` (plus a short buffer's needed length, or a policy's
//!   refusal); fault texts stay in the service's log.
//!
//! # Server (`crate::server`, the layer above `module`)
//!
//! A thread per connection, each with a core `Module` of its own: a connection is an
//! application in the standard's sense (its own session and object handles, its own login
//! state), cannot name another's sessions, and when it ends — closed, killed mid-call,
//! garbage, over a limit — its module is dropped, closing its sessions and ending its login.
//! Limits (`crate::server::Limits`): frame size (which also bounds what a connection buffers: a
//! longer frame is refused from its length prefix), sessions per connection
//! (`CKR_SESSION_COUNT`), connections at once, calls per request, and the time the rest of
//! a frame may take once begun.
//!
//! # Client ([`client`])
//!
//! A blocking client with the `Module` method names it carries, answering the same `Error`
//! values. Handles carry the connection's epoch; a lost connection fails the call in flight
//! with `CKR_DEVICE_REMOVED` and every later use of its handles with
//! `CKR_SESSION_HANDLE_INVALID` (or the object handle's code); the next call that names no
//! old handle connects again.
//!
//! The C ABI's client mode (`ECM_HSM_SERVICE`) and the admin tool's (`--service`) hold a
//! client in `module::Backend`.
//!
//! # Audit
//!
//! A connection's core is made with the peer in `Config::audit_client`: every record it
//! writes names the client process (`client_uid`, `client_gid`, `client_pid`).
//!
//! An operation is one round trip: an `*Init` the service accepted before for the same key,
//! operation and mechanism shape is held back and sent with the first step, and a length
//! query is answered by the client where the mechanism's rule is exact
//! (`client_operations.rs`).
//!
//! # Layers
//!
//! The client side (`client*.rs`, `protocol.rs`, `wire.rs`, `transport.rs`) sits below the
//! module: it speaks the plain types of `session` and `token`, never `module`, and
//! `module::Backend` holds a client. The server side is a layer of its own above the module,
//! `crate::server`, as `abi` is: it drives a core `Module` per connection.

pub(crate) mod call_list;
pub mod client;
mod client_operations;
mod client_ops;
pub mod protocol;
pub mod transport;
pub mod wire;

pub use client::{Address, Client};
pub use transport::Peer;
