//! Per-session state: the session's slot and read/write flag, and the active operation of
//! each kind (one find, encryption, decryption, digest, signature and verification at a time).

pub mod keys;
mod kinds;
pub mod output;
pub mod table;
mod token_status;

use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::Mutex;

use crate::mechanism::aes_gcm::GcmMessageKey;
use crate::mechanism::{CipherOperation, DigestOperation, SignOperation, VerifyOperation};

pub use keys::{CachedKey, KeyCache};
pub use kinds::{CipherKind, OperationKind, Step};
pub use output::{Delivered, Dest, Output, OutputBuffer, output_step, output_step_into};
pub use table::SessionTable;
pub use token_status::TokenStatus;

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot_id: CK_SLOT_ID,
    pub read_write: bool,
    /// The session's token, held here so that a call reaches it without the slot table.
    pub token: Arc<crate::token::Token>,
    pub operations: Mutex<Operations>,
    /// Set when the session leaves its table (closed): a thread's memo of its last
    /// session (`table.rs`) must not hand it out after that.
    closed: std::sync::atomic::AtomicBool,
}

/// The operations a session may have in progress, one of each kind.
#[derive(Default)]
pub struct Operations {
    pub find: Option<FindCursor>,
    pub encrypt: Option<Box<dyn CipherOperation>>,
    pub decrypt: Option<Box<dyn CipherOperation>>,
    pub digest: Option<Box<dyn DigestOperation>>,
    pub sign: Option<Box<dyn SignOperation>>,
    pub verify: Option<Verification>,
    pub sign_recover: Option<Box<dyn CipherOperation>>,
    pub verify_recover: Option<Box<dyn CipherOperation>>,
    /// PKCS#11 3.0 message-based encryption and decryption (`C_MessageEncryptInit`, ...).
    pub message_encrypt: Option<GcmMessageKey>,
    pub message_decrypt: Option<GcmMessageKey>,
    /// Approvals that operations begun here wait for or hold, by operation (`encrypt`,
    /// `decrypt`, `sign`, `verify`); see `crate::policy::approval`.
    pub approvals: std::collections::BTreeMap<&'static str, crate::policy::PendingApproval>,
    /// Operations begun here on a key with `CKA_ALWAYS_AUTHENTICATE`, by operation (`sign`,
    /// `decrypt`, `sign_recover`): false until `C_Login(CKU_CONTEXT_SPECIFIC)` with the
    /// login's own PIN. Each `*Init` sets its entry afresh, so each operation needs its own.
    pub pin_for_use: std::collections::BTreeMap<&'static str, bool>,
    /// Keys looked up by recent `*Init` calls (see `keys.rs`); emptied with the operations.
    pub keys: KeyCache,
}

impl Operations {
    /// Ends everything in progress (logout, `C_SessionCancel`).
    pub fn cancel_all(&mut self) {
        *self = Operations::default();
    }
}

/// The session's verification, begun by `C_VerifyInit` (the signature comes with the step
/// that checks it) or by `C_VerifySignatureInit` (PKCS#11 3.2: the signature comes first and
/// is kept here). One slot for both, as the standard has one verification per session; each
/// family of steps continues only the operation its own init began.
pub struct Verification {
    pub operation: Box<dyn VerifyOperation>,
    /// `C_VerifySignatureInit`'s signature; `None` for `C_VerifyInit`'s operation.
    pub signature: Option<GivenSignature>,
}

/// The signature a verification was begun with (`C_VerifySignatureInit`).
pub struct GivenSignature {
    pub bytes: Vec<u8>,
    /// A `C_VerifySignatureUpdate` was made: the operation is multi-part, so
    /// `C_VerifySignature` may no longer end it with a single part.
    pub updated: bool,
}

/// The results of `C_FindObjectsInit`, handed out by `C_FindObjects`.
pub struct FindCursor {
    handles: Vec<CK_OBJECT_HANDLE>,
    next: usize,
}

impl FindCursor {
    pub fn new(handles: Vec<CK_OBJECT_HANDLE>) -> FindCursor {
        FindCursor { handles, next: 0 }
    }

    pub fn take(&mut self, max: usize) -> Vec<CK_OBJECT_HANDLE> {
        let end = self.handles.len().min(self.next.saturating_add(max));
        let out = self.handles[self.next..end].to_vec();
        self.next = end;
        out
    }
}

impl Session {
    pub fn new(
        handle: CK_SESSION_HANDLE,
        slot_id: CK_SLOT_ID,
        read_write: bool,
        token: Arc<crate::token::Token>,
    ) -> Session {
        Session {
            handle,
            slot_id,
            read_write,
            token,
            operations: Mutex::new(Operations::default()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_cursor_hands_out_each_handle_once() {
        let mut c = FindCursor::new(vec![1, 2, 3, 4, 5]);
        assert_eq!(c.take(2), vec![1, 2]);
        assert_eq!(c.take(0), Vec::<CK_OBJECT_HANDLE>::new());
        assert_eq!(c.take(10), vec![3, 4, 5]);
        assert!(c.take(10).is_empty());
    }
}
