//! The kinds of operation a session runs in steps, and the step a call makes: plain values
//! that the module's facade, the key service's protocol and its client share (the client
//! speaks them without the module, which holds the client in client mode).

/// Which of a session's cipher operations a call concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    Encrypt,
    Decrypt,
}

impl CipherKind {
    /// The operation of this kind.
    pub fn operation(self) -> OperationKind {
        match self {
            CipherKind::Encrypt => OperationKind::Encrypt,
            CipherKind::Decrypt => OperationKind::Decrypt,
        }
    }

    /// The operation's name in the policy, approvals and the audit record.
    pub fn name(self) -> &'static str {
        match self {
            CipherKind::Encrypt => "encrypt",
            CipherKind::Decrypt => "decrypt",
        }
    }
}

/// The operations of a session that run in steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
    SignRecover,
    VerifyRecover,
}

/// Which step of a multi-part operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Single(&'a [u8]),
    Update(&'a [u8]),
    Final,
}
