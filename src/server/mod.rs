//! The key service's server (issue 14): the layer above `module` that `ecm-hsm serve` runs,
//! as `abi` is the layer above it that applications load. It accepts connections on a
//! [`Listener`], gives each a thread and a core `Module` of its own ([`listener`]), and
//! answers each connection's calls by calling that module ([`dispatch`]).
//!
//! The protocol it speaks, and the client that speaks it to it, are `crate::service`'s
//! (below `module`: `module::Backend` holds a client); this layer only adds what needs the
//! core itself.

mod dispatch;
pub mod listener;

pub use listener::{Connection, Limits, Listener, Server};
