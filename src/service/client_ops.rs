//! The client's cryptographic operations, random numbers, principals, policy and approvals
//! (the rest of `client.rs`, split to keep files short).

use cryptoki_sys::*;

use super::client::{Client, Handles, State};
use super::client_operations::{At, Begun, HeldInit};
use super::protocol::*;
use super::wire::*;
use crate::mechanism::Mechanism;
use crate::mechanism::aes_gcm::{GcmMessageParams, Tag};
use crate::session::{CipherKind, OperationKind, Step};
use crate::session::{Output, OutputBuffer};
use crate::store::ApprovalRecord;
use crate::token::ApprovalRequest;
use crate::{Error, Result};

impl Client {
    /// Every `*Init` (`key` is not read for `C_DigestInit`, which takes none): recovery is
    /// rare, its init always sent at once; the others go through [`Client::held_init`].
    pub fn operation_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let build = |c: &Handles| -> Result<Call> {
            let session = c.session(h)?;
            let key = || init_key(c, mechanism, key);
            let mechanism = mechanism.map(mechanism_to_wire);
            Ok(match kind {
                OperationKind::Encrypt => {
                    Call::CipherInit { session, kind: WireCipher::Encrypt, mechanism, key: key()? }
                }
                OperationKind::Decrypt => {
                    Call::CipherInit { session, kind: WireCipher::Decrypt, mechanism, key: key()? }
                }
                OperationKind::Sign => Call::SignInit { session, mechanism, key: key()? },
                OperationKind::Verify => Call::VerifyInit { session, mechanism, key: key()? },
                OperationKind::SignRecover | OperationKind::VerifyRecover => {
                    Call::RecoverInit { session, kind: operation_to_wire(kind), mechanism, key: key()? }
                }
                OperationKind::Digest => Call::DigestInit { session, mechanism },
            })
        };
        match kind {
            OperationKind::SignRecover | OperationKind::VerifyRecover => done(self.one(build)?),
            _ => self.held_init(h, kind, mechanism, key, None, build),
        }
    }

    /// `C_VerifySignatureInit`: the session's verification, as `C_VerifyInit`'s (held back
    /// the same way, in the same place), the signature travelling with the init. Held back
    /// only while the signature has the length the service accepted before for this key
    /// and mechanism, so that a held init can fail only as any held init can (the key
    /// changed since), never for its signature's length.
    pub fn verify_signature_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        signature: &[u8],
    ) -> Result<()> {
        let build = |c: &Handles| -> Result<Call> {
            Ok(Call::VerifySignatureInit {
                session: c.session(h)?,
                mechanism: mechanism.map(mechanism_to_wire),
                key: init_key(c, mechanism, key)?,
                signature: Bytes(signature.to_vec()),
            })
        };
        self.held_init(h, OperationKind::Verify, mechanism, key, Some(signature.len()), build)
    }

    /// An `*Init` held back for the operation's first step when the client may (see
    /// `client_operations.rs`), else sent at once. `signature_len` is the length of the
    /// signature a `C_VerifySignatureInit` brings.
    fn held_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        signature_len: Option<usize>,
        build: impl FnOnce(&Handles) -> Result<Call>,
    ) -> Result<()> {
        let mut state = self.lock();
        let call = build(&Handles { epoch: state.epoch })?;
        let at = (h, operation_to_wire(kind));
        if state.operations.holds_init(at) {
            // The earlier init of this operation goes first, as the application made it.
            self.flush(&mut state)?;
        }
        state.operations.forget_failure(at);
        if let Some(m) = mechanism
            && state.operations.may_hold(at, key, m, signature_len)
        {
            let begun = Begun { key, mechanism: m.clone(), fresh: true };
            state.operations.hold(at, HeldInit { call, begun });
            return Ok(());
        }
        let reply = self.exchange(&mut state, vec![call])?.pop().ok_or(Error::Internal("one reply"))?;
        match reply {
            Ok(Answer::Done) => {
                state.operations.began(at, key, mechanism, signature_len);
                Ok(())
            }
            Ok(_) => Err(unexpected()),
            Err(e) => Err(error_from_wire(e)),
        }
    }

    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        self.operation_step(h, kind.operation(), step, buffer)
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        self.operation_step(h, OperationKind::Sign, step, buffer)
    }

    pub fn digest(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        self.operation_step(h, OperationKind::Digest, step, buffer)
    }

    /// One step of an operation that produces output (not a verification): a length query
    /// the client can answer exactly is answered here; otherwise the step goes with the
    /// operation's held init, if any, in one request.
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
        let at = (h, operation_to_wire(kind));
        let mut state = self.lock();
        let session = Handles { epoch: state.epoch }.session(h)?;
        if buffer == OutputBuffer::Query
            && let Some(n) = state.operations.local_length(at, &step)
        {
            return Ok(Output::Length(n));
        }
        let call =
            Call::Step { session, kind: at.1, step: step_to_wire(step), buffer: buffer_to_wire(buffer) };
        output(self.step_request(&mut state, at, call, &step)?)
    }

    /// Sends a step, after its operation's held init if there is one, and notes what the
    /// replies say of the operation.
    fn step_request(&self, state: &mut State, at: At, call: Call, step: &Step<'_>) -> Result<Answer> {
        let (calls, init) = match state.operations.take_held(at)? {
            Some(init) => (vec![init.call, call], Some(init.begun)),
            None => (vec![call], None),
        };
        let replies = self.exchange(state, calls)?;
        state.operations.after_step(at, init, replies, step)
    }

    /// One step of a verification: `Single(data)` and `Final` take the signature.
    pub fn verify(&self, h: CK_SESSION_HANDLE, step: Step<'_>, signature: &[u8]) -> Result<()> {
        let at = (h, WireOperation::Verify);
        let mut state = self.lock();
        let session = Handles { epoch: state.epoch }.session(h)?;
        let call = Call::Verify { session, step: step_to_wire(step), signature: Bytes(signature.to_vec()) };
        done(self.step_request(&mut state, at, call, &step)?)
    }

    /// One step of a verification begun by `C_VerifySignatureInit`, which checks the signature
    /// given there.
    pub fn verify_signature(&self, h: CK_SESSION_HANDLE, step: Step<'_>) -> Result<()> {
        let at = (h, WireOperation::Verify);
        let mut state = self.lock();
        let session = Handles { epoch: state.epoch }.session(h)?;
        let call = Call::VerifySignature { session, step: step_to_wire(step) };
        done(self.step_request(&mut state, at, call, &step)?)
    }

    /// Ends an operation, if any; as in-process, nothing is reported (a lost connection has
    /// ended it anyway). A held init is dropped: the service never began it.
    pub fn end_operation(&self, h: CK_SESSION_HANDLE, kind: OperationKind) {
        let at = (h, operation_to_wire(kind));
        let mut state = self.lock();
        let held = state.operations.holds_init(at);
        state.operations.ended(at);
        if held {
            return;
        }
        let Ok(session) = Handles { epoch: state.epoch }.session(h) else { return };
        let _ = self.exchange(&mut state, vec![Call::EndOperation { session, kind: at.1 }]);
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

    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        match self.one(|c| Ok(Call::GenerateRandom { session: c.session(h)?, len: out.len() as u64 }))? {
            Answer::Random(bytes) if bytes.0.len() == out.len() => {
                out.copy_from_slice(&bytes.0);
                Ok(())
            }
            _ => Err(unexpected()),
        }
    }
}

/// The key an `*Init` names, as the service knows it. A NULL mechanism ends the operation
/// and reads no key in-process, so whatever handle comes with it (`CK_INVALID_HANDLE`, one
/// of an earlier connection) goes as 0 rather than being refused.
fn init_key(c: &Handles, mechanism: Option<&Mechanism>, key: CK_OBJECT_HANDLE) -> Result<u64> {
    if mechanism.is_some() { c.key(key) } else { Ok(0) }
}

/// Principals, policy and approvals (the admin tool's calls).
impl Client {
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
}
