//! The tamper-evident audit record: append-only, hash-chained files of one line per event,
//! per token: the register `token-<slot>.audit` beside `token-<slot>.sqlite`, and one
//! segment per process in `token-<slot>.audit.d/` ([`trail`] says why and how they are tied).
//!
//! Every line is a JSON object ([`record`]) that carries its `link`: a MAC of `the previous
//! line's link ‖ the line's bytes up to its link` when the writer holds the key — HMAC-SHA256
//! under the token's audit key in the register (`"auth":"m"`), AES-256-GMAC under a key
//! derived from it per segment in a segment (`"auth":"g"`, [`record::segment_key`]) — else
//! SHA-256 of the same (`"auth":"h"`). A register's first line follows 32 zero bytes, a
//! segment's the register record that opened it. The audit key is HMAC-SHA256(K,
//! "ecm-hsm audit chain v1") ([`derive_key`]), where K is the token key for a token in pins
//! custody — so only a process that logged in can write an `m` or `g` link — and a key derived
//! from the service key (per token and epoch, `crate::token::custody`) for a token in service
//! custody, so that no principal, whatever PIN it holds, can write one.
//!
//! - [`trail`]: the writer the module uses, [`AuditLog`]: register plus this process's segment.
//! - [`register`]: the shared chain, safe across threads and processes (an exclusive `flock`
//!   around each append); [`segment`]: one process's chain, appended without a system call.
//! - [`verify`]: walks a chain, or a whole trail, and names the first bad record.
//! - [`switch`]: auditing turned off and on leaves authenticated records of the gap.
//! - [`reclaim`]: closes the segments of processes that died without closing them.
//! - [`export`]: filters records and writes them as JSON lines or CSV; [`merge`] reads a
//!   trail's files as one stream in time order.
//!
//! What the chain detects and what it does not is in README.md ("Audit record").

pub mod export;
pub mod merge;
pub mod reclaim;
pub mod record;
pub mod register;
pub mod segment;
pub mod switch;
pub mod trail;
pub mod verify;
pub mod verify_trail;

use std::path::{Path, PathBuf};

pub use export::{Filter, Format, export, export_trail, trail_text};
pub use record::{ClientProcess, Entry, LINK_LEN, Record};
pub use register::{OpenOptions, Register};
pub use trail::{AuditLog, segment_dir};
pub use verify::{Anchor, AuditGap, Problem, ProblemKind, VerifyReport, verify};
pub use verify_trail::{TrailProblem, TrailProblemKind, TrailReport, verify_trail};

/// The key that authenticates `m` links: HMAC-SHA256(token key, [`KEY_LABEL`]). Held in
/// locked memory excluded from core dumps (`sys::secret_pool`).
pub type AuditKey = crate::sys::secret_pool::SecretArray<32>;

/// The derivation label of the audit key.
pub const KEY_LABEL: &[u8] = b"ecm-hsm audit chain v1";

/// The audit key of a token, from its token key.
pub fn derive_key(token_key: &[u8]) -> AuditKey {
    AuditKey::new(crate::mechanism::mac::hmac_sha256(token_key, KEY_LABEL))
}

/// The audit file of the token of `slot` in `token_dir`.
pub fn path_for(token_dir: &Path, slot: cryptoki_sys::CK_SLOT_ID) -> PathBuf {
    token_dir.join(format!("token-{slot}.audit"))
}
