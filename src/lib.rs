//! ecm-hsm: a software HSM exposed through the PKCS#11 C ABI.
//!
//! Layers, top to bottom (see README.md, "Code layout"): `abi` (the C ABI; with `sys`, the
//! only modules allowed `unsafe`) and `server` (the key service's server) → `module` (the process-wide instance, one file per chapter
//! of the standard, each call's body and audit record in one method) → `session` (per-session
//! state and operations) → `token` (one token: state, object cache, PIN authentication,
//! principals, hierarchy keys, the approval gate) → `policy`/`hierarchy` (pure rules) →
//! `object`/`mechanism`/`audit` → `store` (persistence); `sys` below all. No module imports
//! from a layer above it.
//! Data flows down as owned, typed values; errors flow up as [`Error`].

pub mod abi;
pub mod audit;
pub mod config;
pub mod envelope;
pub mod error;
pub mod hierarchy;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod policy;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod sys;
pub mod token;
pub mod vendor;
pub mod version;

pub use error::{Error, Result};
