//! Assertions about the operations a session has active, for the tests that check that an
//! error which ends an operation ends it and a refused `*Init` starts none.
#![allow(dead_code)]

use cryptoki::error::RvError;
use cryptoki::session::Session;

use super::expect_rv;

/// Neither an encryption nor a decryption is active on the session: both finals answer
/// `CKR_OPERATION_NOT_INITIALIZED`.
#[track_caller]
pub fn assert_no_cipher_operation(s: &Session) {
    expect_rv(s.encrypt_final(), RvError::OperationNotInitialized);
    expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);
}
