//! The client's cryptographic operations, random numbers, principals, policy and approvals
//! (the rest of `client.rs`, split to keep files short).

use cryptoki_sys::*;

use super::client::Client;
use super::protocol::*;
use super::wire::*;
use crate::mechanism::Mechanism;
use crate::mechanism::aes_gcm::{GcmMessageParams, Tag};
use crate::module::{ApprovalRequest, CipherKind, OperationKind, Step};
use crate::session::{Output, OutputBuffer};
use crate::store::ApprovalRecord;
use crate::{Error, Result};

fn unexpected() -> Error {
    Error::Device("unexpected answer from the key service".into())
}

fn done(answer: Answer) -> Result<()> {
    match answer {
        Answer::Done => Ok(()),
        _ => Err(unexpected()),
    }
}

fn output(answer: Answer) -> Result<Output> {
    match answer {
        Answer::Output(o) => output_from_wire(o),
        _ => Err(unexpected()),
    }
}

impl Client {
    pub fn cipher_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::CipherInit {
                session: c.session(h)?,
                kind: cipher_to_wire(kind),
                mechanism: mechanism.map(mechanism_to_wire),
                key: c.key(key)?,
            })
        })?)
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::SignInit {
                session: c.session(h)?,
                mechanism: mechanism.map(mechanism_to_wire),
                key: c.key(key)?,
            })
        })?)
    }

    pub fn verify_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::VerifyInit {
                session: c.session(h)?,
                mechanism: mechanism.map(mechanism_to_wire),
                key: c.key(key)?,
            })
        })?)
    }

    pub fn recover_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::RecoverInit {
                session: c.session(h)?,
                kind: operation_to_wire(kind),
                mechanism: mechanism.map(mechanism_to_wire),
                key: c.key(key)?,
            })
        })?)
    }

    pub fn digest_init(&self, h: CK_SESSION_HANDLE, mechanism: Option<&Mechanism>) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::DigestInit { session: c.session(h)?, mechanism: mechanism.map(mechanism_to_wire) })
        })?)
    }

    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let kind = match kind {
            CipherKind::Encrypt => OperationKind::Encrypt,
            CipherKind::Decrypt => OperationKind::Decrypt,
        };
        self.operation_step(h, kind, step, buffer)
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        self.operation_step(h, OperationKind::Sign, step, buffer)
    }

    pub fn digest(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        self.operation_step(h, OperationKind::Digest, step, buffer)
    }

    /// One step of an operation that produces output (not a verification).
    pub fn operation_step(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        if kind == OperationKind::Verify {
            return Err(Error::Internal("verification steps take a signature"));
        }
        output(self.one(|c| {
            Ok(Call::Step {
                session: c.session(h)?,
                kind: operation_to_wire(kind),
                step: step_to_wire(step),
                buffer: buffer_to_wire(buffer),
            })
        })?)
    }

    /// A `*Init` and the operation's first step in one round trip: what a client module
    /// does when it has checked the init's arguments itself and holds it back until the
    /// data comes. `init` is a `CipherInit`, `SignInit`, `DigestInit` or `RecoverInit` call
    /// built with the handles given; if it fails, its error is returned and no step is run.
    pub fn init_and_step(
        &self,
        h: CK_SESSION_HANDLE,
        init: impl FnOnce(&super::client::Handles) -> Result<Call>,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let mut answers = self.request(|c| {
            let init = init(c)?;
            let step = Call::Step {
                session: c.session(h)?,
                kind: operation_to_wire(kind),
                step: step_to_wire(step),
                buffer: buffer_to_wire(buffer),
            };
            Ok(vec![init, step])
        })?;
        output(answers.pop().ok_or_else(unexpected)?)
    }

    /// One step of a verification: `Single(data)` and `Final` take the signature.
    pub fn verify(&self, h: CK_SESSION_HANDLE, step: Step<'_>, signature: &[u8]) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::Verify {
                session: c.session(h)?,
                step: step_to_wire(step),
                signature: Bytes(signature.to_vec()),
            })
        })?)
    }

    /// Ends an operation, if any; as in-process, nothing is reported (a lost connection has
    /// ended it anyway).
    pub fn end_operation(&self, h: CK_SESSION_HANDLE, kind: OperationKind) {
        let _ =
            self.one(|c| Ok(Call::EndOperation { session: c.session(h)?, kind: operation_to_wire(kind) }));
    }

    pub fn digest_key(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        done(self.one(|c| Ok(Call::DigestKey { session: c.session(h)?, key: c.key(key)? }))?)
    }

    pub fn message_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::MessageInit {
                session: c.session(h)?,
                kind: cipher_to_wire(kind),
                mechanism: mechanism_to_wire(mechanism),
                key: c.key(key)?,
            })
        })?)
    }

    /// `C_EncryptMessage`; the IV the service used is written back to `params`.
    pub fn encrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &mut GcmMessageParams,
        aad: &[u8],
        plaintext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<(Output, Tag)> {
        let answer = self.one(|c| {
            Ok(Call::EncryptMessage {
                session: c.session(h)?,
                params: gcm_message_to_wire(params),
                aad: Bytes(aad.to_vec()),
                plaintext: Secret(plaintext.to_vec()),
                buffer: buffer_to_wire(buffer),
            })
        })?;
        match answer {
            Answer::Sealed { output, tag, iv } if iv.0.len() == params.iv.len() => {
                params.iv = iv.0;
                let tag = Tag::from_bytes(&tag.0).ok_or_else(unexpected)?;
                Ok((output_from_wire(output)?, tag))
            }
            _ => Err(unexpected()),
        }
    }

    pub fn decrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &GcmMessageParams,
        tag: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<Output> {
        output(self.one(|c| {
            Ok(Call::DecryptMessage {
                session: c.session(h)?,
                params: gcm_message_to_wire(params),
                tag: Bytes(tag.to_vec()),
                aad: Bytes(aad.to_vec()),
                ciphertext: Bytes(ciphertext.to_vec()),
                buffer: buffer_to_wire(buffer),
            })
        })?)
    }

    pub fn message_final(&self, h: CK_SESSION_HANDLE, kind: CipherKind) -> Result<()> {
        done(self.one(|c| Ok(Call::MessageFinal { session: c.session(h)?, kind: cipher_to_wire(kind) }))?)
    }

    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        match self.one(|c| Ok(Call::GenerateRandom { session: c.session(h)?, len: out.len() as u64 }))? {
            Answer::Random(bytes) if bytes.0.len() == out.len() => {
                out.copy_from_slice(&bytes.0);
                Ok(())
            }
            _ => Err(unexpected()),
        }
    }

    pub fn seed_random(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        done(self.one(|c| Ok(Call::SeedRandom { session: c.session(h)? }))?)
    }
}

/// Principals, policy and approvals (the admin tool's calls).
impl Client {
    pub fn principals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<(String, u32)>> {
        match self.one(|c| Ok(Call::Principals { session: c.session(h)? }))? {
            Answer::Principals(p) => Ok(p),
            _ => Err(unexpected()),
        }
    }

    pub fn set_principal(&self, h: CK_SESSION_HANDLE, name: &str, pin: &[u8], replace: bool) -> Result<()> {
        done(self.one(|c| {
            Ok(Call::SetPrincipal {
                session: c.session(h)?,
                name: name.into(),
                pin: Secret(pin.to_vec()),
                replace,
            })
        })?)
    }

    pub fn remove_principal(&self, h: CK_SESSION_HANDLE, name: &str) -> Result<()> {
        done(self.one(|c| Ok(Call::RemovePrincipal { session: c.session(h)?, name: name.into() }))?)
    }

    pub fn apply_policy(&self, h: CK_SESSION_HANDLE, text: &str) -> Result<u64> {
        match self.one(|c| Ok(Call::ApplyPolicy { session: c.session(h)?, text: text.into() }))? {
            Answer::PolicyVersion(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    pub fn policy(&self, h: CK_SESSION_HANDLE) -> Result<Option<(u64, String)>> {
        match self.one(|c| Ok(Call::Policy { session: c.session(h)? }))? {
            Answer::Policy(p) => Ok(p),
            _ => Err(unexpected()),
        }
    }

    pub fn approve_ahead(&self, h: CK_SESSION_HANDLE, request: &ApprovalRequest) -> Result<ApprovalRecord> {
        let answer = self.one(|c| {
            let mut wire = approval_request_to_wire(request);
            if let WireApprovalTarget::Key(key) | WireApprovalTarget::Change { key, .. } = &mut wire.target {
                *key = c.key(*key)?;
            }
            Ok(Call::ApproveAhead { session: c.session(h)?, request: wire })
        })?;
        match answer {
            Answer::Approval(a) => Ok(approval_from_wire(a)),
            _ => Err(unexpected()),
        }
    }

    pub fn approvals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<ApprovalRecord>> {
        match self.one(|c| Ok(Call::Approvals { session: c.session(h)? }))? {
            Answer::Approvals(list) => Ok(list.into_iter().map(approval_from_wire).collect()),
            _ => Err(unexpected()),
        }
    }

    pub fn revoke_approval(&self, h: CK_SESSION_HANDLE, id: i64) -> Result<ApprovalRecord> {
        match self.one(|c| Ok(Call::RevokeApproval { session: c.session(h)?, id }))? {
            Answer::Approval(a) => Ok(approval_from_wire(a)),
            _ => Err(unexpected()),
        }
    }
}
