//! ecm-hsm: a software HSM exposed through the PKCS#11 C ABI.
//!
//! Layers, top to bottom (see README.md): `abi` (C pointers) → `module` (process-wide
//! slots, tokens, handles) → `session` (per-session state and operations) → `policy` (who
//! may see or change what) → `object` (typed attributes and the per-class rules) →
//! `mechanism` (the cryptography, on aws-lc-rs) → `store` (persistence); `sys`
//! (operating-system interfaces std lacks: file mapping, memory locking) below all. `abi`
//! and `sys` are the only modules allowed `unsafe`. Data flows down as owned, typed values;
//! errors flow up as [`Error`].

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
pub mod session;
pub mod store;
pub mod sys;
pub mod vendor;

pub use error::{Error, Result};
