//! What the client knows of its sessions' operations, so that an operation costs one round
//! trip to the key service (issue 14 item 1), where the C API makes two to four calls.
//!
//! - **Held-back inits.** An `*Init` is sent at once the first time its key, operation and
//!   mechanism (with parameters of the same shape: IV length, tag length) meet on a
//!   connection. Once the service has accepted that combination, later inits of it are held
//!   back and travel with the operation's first step, in one request (the service runs a
//!   request's calls in order and stops at the first failure). The client checks what it can
//!   itself: the session handle is of this connection, the mechanism is in the local registry
//!   for that function, and no operation of that kind may be active on the session. The
//!   service's checks of the key (its handle, usage, the login, the policy) were passed by the
//!   same combination just before; if something changed since (the key destroyed by another
//!   process, a policy applied by the admin), the init's own error is reported at the step.
//!   In-process that init would have failed at the init; the standard lists no key codes for
//!   `C_Encrypt`, but the init's code says what was wrong, where `CKR_FUNCTION_FAILED` would
//!   not. Any call that may change what a key allows or what a session's login is (login,
//!   logout, destroy, set attributes, the policy, ...: all but [`keeps_operations`]) first
//!   sends the held inits, in the order they were made, and forgets the proofs, so that the
//!   next init is checked at once again. Keys that make a step wait (approvals,
//!   `CKA_ALWAYS_AUTHENTICATE`) are never held back: their inits stay one round trip each.
//!   A `C_VerifySignatureInit` is the session's verification, held back as `C_VerifyInit`
//!   is, and only while its signature has the length the service accepted before for the
//!   key and mechanism (kept with the learned lengths), so that it never fails late for that.
//! - **Length queries** (a NULL output buffer) are answered without a round trip where the
//!   mechanism's rule gives the exact length the service would answer: AES-GCM (input plus or
//!   minus the tag), CBC-PAD encryption (rounded up to the next block), CTR, ECB and CBC on
//!   whole blocks; and for mechanisms whose output has one length per key and mechanism
//!   (signatures, digests, RSA encryption), the length the service answered before for that
//!   key and mechanism. Where the rule gives only an upper bound (CBC-PAD or RSA decryption)
//!   the service is asked.

use cryptoki_sys::*;

use super::client::Reply;
use super::protocol::{Answer, Call, WireError, WireOperation, WireOutput};
use super::wire::error_from_wire;
use crate::mechanism::{CtrParams, GcmParams, Mechanism, MechanismParams, registry};
use crate::session::Step;
use crate::{Error, Result};

/// A session's operation of one kind: (the application's session handle, the kind).
pub(super) type At = (u64, WireOperation);

/// How many proofs and learned lengths a connection keeps (then it starts over).
const MAX_REMEMBERED: usize = 512;

/// How an operation began: its key (0 for a digest) and mechanism.
#[derive(Debug, Clone)]
pub(super) struct Begun {
    pub key: u64,
    pub mechanism: Mechanism,
    /// No step of it has been sent yet.
    pub fresh: bool,
}

/// An `*Init` checked locally and not sent yet.
pub(super) struct HeldInit {
    pub call: Call,
    pub begun: Begun,
}

enum Held {
    Init(Box<HeldInit>),
    /// The service refused the init when it was sent ahead of another call: the operation's
    /// next step reports it.
    Failed(Error),
}

#[derive(Default)]
pub(super) struct Operations {
    /// In the order the application made them.
    held: Vec<(At, Held)>,
    /// The operations the service may hold: begun and not known to be finished.
    active: Vec<(At, Begun)>,
    /// (key, kind, shape of the mechanism) whose init the service accepted since the last
    /// call that may change what keys allow.
    proven: Vec<(u64, WireOperation, Mechanism)>,
    /// Keys whose steps waited for approvals or a context-specific login.
    gated: Vec<u64>,
    /// Output lengths of mechanisms with one length per key, as the service answered them;
    /// for `Verify`, the length of the signature a `C_VerifySignatureInit` the service
    /// accepted brought.
    lengths: Vec<(u64, WireOperation, Mechanism, usize)>,
}

/// Whether a call leaves what keys allow, and the sessions' logins, as they were: held inits
/// may wait past it.
pub(super) fn keeps_operations(call: &Call) -> bool {
    matches!(
        call,
        Call::Peer
            | Call::SlotList
            | Call::CheckSlot { .. }
            | Call::TokenStatus { .. }
            | Call::OpenSession { .. }
            | Call::SessionView { .. }
            | Call::CreateObject { .. }
            | Call::CopyObject { .. }
            | Call::ObjectSize { .. }
            | Call::GetAttributes { .. }
            | Call::FindInit { .. }
            | Call::FindNext { .. }
            | Call::FindFinal { .. }
            | Call::GenerateKey { .. }
            | Call::GenerateKeyPair { .. }
            | Call::DeriveKey { .. }
            | Call::WrapKey { .. }
            | Call::UnwrapKey { .. }
            | Call::CipherInit { .. }
            | Call::SignInit { .. }
            | Call::VerifyInit { .. }
            | Call::RecoverInit { .. }
            | Call::DigestInit { .. }
            | Call::Step { .. }
            | Call::Verify { .. }
            | Call::VerifySignatureInit { .. }
            | Call::VerifySignature { .. }
            | Call::GenerateRandom { .. }
            | Call::SeedRandom { .. }
    )
}

/// The mechanism with what changes from one operation to the next (IV and counter values,
/// GCM's additional data) left out: what the service's check of the parameters depends on.
fn shape(mechanism: &Mechanism) -> Mechanism {
    let params = match &mechanism.params {
        MechanismParams::Gcm(g) => {
            MechanismParams::Gcm(GcmParams { iv: vec![0; g.iv.len()], aad: Vec::new(), tag_bits: g.tag_bits })
        }
        MechanismParams::Iv(iv) => MechanismParams::Iv(vec![0; iv.len()]),
        MechanismParams::Ctr(c) => {
            MechanismParams::Ctr(CtrParams { counter_bits: c.counter_bits, counter_block: [0; 16] })
        }
        other => other.clone(),
    };
    Mechanism { kind: mechanism.kind, params }
}

/// The registry's flag for an operation's `*Init`.
fn function_flag(kind: WireOperation) -> CK_FLAGS {
    match kind {
        WireOperation::Encrypt => CKF_ENCRYPT,
        WireOperation::Decrypt => CKF_DECRYPT,
        WireOperation::Digest => CKF_DIGEST,
        WireOperation::Sign => CKF_SIGN,
        WireOperation::Verify => CKF_VERIFY,
        WireOperation::SignRecover => CKF_SIGN_RECOVER,
        WireOperation::VerifyRecover => CKF_VERIFY_RECOVER,
    }
}

/// The exact output length of a single-part encryption or decryption over `input_len` bytes,
/// where the mechanism's rule gives one (as the service's `single_len` answers it).
fn single_len_rule(kind: WireOperation, mechanism: &Mechanism, input_len: usize) -> Option<usize> {
    const BLOCK: usize = 16;
    let encrypt = match kind {
        WireOperation::Encrypt => true,
        WireOperation::Decrypt => false,
        _ => return None,
    };
    match (mechanism.kind, &mechanism.params) {
        (CKM_AES_GCM, MechanismParams::Gcm(g)) => {
            let tag = crate::mechanism::aes_gcm::tag_len(g.tag_bits).ok()?;
            if encrypt { input_len.checked_add(tag) } else { input_len.checked_sub(tag) }
        }
        (CKM_AES_CBC_PAD, _) if encrypt => (input_len / BLOCK).checked_add(1)?.checked_mul(BLOCK),
        (CKM_AES_CTR, _) => Some(input_len),
        (CKM_AES_ECB | CKM_AES_CBC, _) if input_len.is_multiple_of(BLOCK) => Some(input_len),
        _ => None,
    }
}

/// Whether every output of the operation has one length for a given key and mechanism.
fn one_length(kind: WireOperation, mechanism: &Mechanism) -> bool {
    match kind {
        WireOperation::Sign | WireOperation::Digest => true,
        WireOperation::Encrypt => matches!(mechanism.kind, CKM_RSA_PKCS | CKM_RSA_PKCS_OAEP | CKM_RSA_X_509),
        _ => false,
    }
}

impl Operations {
    /// Whether an init of `kind` with `key` and `mechanism` on `session` may wait for the
    /// operation's first step; `signature_len` is the length of the signature a
    /// `C_VerifySignatureInit` brings, which the service must have accepted before.
    pub fn may_hold(&self, at: At, key: u64, mechanism: &Mechanism, signature_len: Option<usize>) -> bool {
        let shape = shape(mechanism);
        registry::require(mechanism.kind, function_flag(at.1)).is_ok()
            && !self.active.iter().any(|(a, _)| *a == at)
            && !self.held.iter().any(|(a, _)| *a == at)
            && !self.gated.contains(&key)
            && self.proven.iter().any(|(k, op, m)| *k == key && *op == at.1 && *m == shape)
            && signature_len.is_none_or(|n| {
                self.lengths
                    .iter()
                    .any(|(k, op, m, len)| *k == key && *op == at.1 && *m == shape && *len == n)
            })
    }

    pub fn hold(&mut self, at: At, init: HeldInit) {
        self.held.push((at, Held::Init(Box::new(init))));
    }

    /// Whether an init of this operation is held back (not yet sent).
    pub fn holds_init(&self, at: At) -> bool {
        self.held.iter().any(|(a, h)| *a == at && matches!(h, Held::Init(_)))
    }

    /// Forgets a held init's failure: a new init replaces it.
    pub fn forget_failure(&mut self, at: At) {
        self.held.retain(|(a, h)| *a != at || matches!(h, Held::Init(_)));
    }

    /// The held init of the operation at `at`, taken for its first step; its failure, if the
    /// service refused it already.
    pub fn take_held(&mut self, at: At) -> Result<Option<HeldInit>> {
        let Some(i) = self.held.iter().position(|(a, _)| *a == at) else {
            return Ok(None);
        };
        match self.held.remove(i).1 {
            Held::Init(init) => Ok(Some(*init)),
            Held::Failed(e) => Err(e),
        }
    }

    /// The oldest held init, taken to be sent.
    pub fn next_held(&mut self) -> Option<(At, HeldInit)> {
        let i = self.held.iter().position(|(_, h)| matches!(h, Held::Init(_)))?;
        match self.held.remove(i) {
            (at, Held::Init(init)) => Some((at, *init)),
            (_, Held::Failed(_)) => None,
        }
    }

    /// A held init was sent alone, with this result.
    pub fn flushed(&mut self, at: At, begun: Begun, result: Result<()>) {
        match result {
            Ok(()) => self.set_active(at, begun),
            Err(e) => self.held.push((at, Held::Failed(e))),
        }
    }

    /// An init sent at once succeeded: `None` for the mechanism ended the operation. A
    /// verification's init that brought its signature (`signature_len`) teaches the length
    /// the service accepts for the key and mechanism.
    pub fn began(&mut self, at: At, key: u64, mechanism: Option<&Mechanism>, signature_len: Option<usize>) {
        match mechanism {
            Some(m) => {
                if self.proven.len() >= MAX_REMEMBERED {
                    self.proven.clear();
                }
                self.proven.push((key, at.1, shape(m)));
                if let Some(n) = signature_len {
                    self.learn_length(key, at.1, m, n);
                }
                self.set_active(at, Begun { key, mechanism: m.clone(), fresh: true });
            }
            None => self.active.retain(|(a, _)| *a != at),
        }
    }

    /// Keeps `n` as the length of the outputs (or, for a verification, of the signatures) of
    /// `kind` with `key` and `mechanism`, unless one is known already.
    fn learn_length(&mut self, key: u64, kind: WireOperation, mechanism: &Mechanism, n: usize) {
        let shape = shape(mechanism);
        if !self.lengths.iter().any(|(k, op, m, _)| *k == key && *op == kind && *m == shape) {
            if self.lengths.len() >= MAX_REMEMBERED {
                self.lengths.clear();
            }
            self.lengths.push((key, kind, shape, n));
        }
    }

    fn set_active(&mut self, at: At, begun: Begun) {
        self.active.retain(|(a, _)| *a != at);
        self.active.push((at, begun));
    }

    /// The operation at `at` was ended by the application.
    pub fn ended(&mut self, at: At) {
        self.active.retain(|(a, _)| *a != at);
        self.held.retain(|(a, _)| *a != at);
    }

    pub fn forget_proofs(&mut self) {
        self.proven.clear();
    }

    /// The session `h` was closed.
    pub fn forget_session(&mut self, h: u64) {
        self.active.retain(|((s, _), _)| *s != h);
        self.held.retain(|((s, _), _)| *s != h);
    }

    /// Every session of a slot was closed (the client does not know which slot each is in).
    pub fn forget_sessions(&mut self) {
        self.active.clear();
        self.held.clear();
    }

    fn begun(&self, at: At) -> Option<&Begun> {
        match self.held.iter().find(|(a, _)| *a == at) {
            Some((_, Held::Init(init))) => Some(&init.begun),
            Some((_, Held::Failed(_))) => None,
            None => self.active.iter().find(|(a, _)| *a == at).map(|(_, b)| b),
        }
    }

    fn learned(&self, begun: &Begun, kind: WireOperation) -> Option<usize> {
        let shape = shape(&begun.mechanism);
        self.lengths.iter().find(|(k, op, m, _)| *k == begun.key && *op == kind && *m == shape).map(|x| x.3)
    }

    /// The answer to a length query the client can give itself, exactly as the service would.
    pub fn local_length(&self, at: At, step: &Step<'_>) -> Option<usize> {
        let begun = self.begun(at)?;
        if self.gated.contains(&begun.key) {
            return None;
        }
        match step {
            Step::Single(data) if begun.fresh => single_len_rule(at.1, &begun.mechanism, data.len())
                .or_else(|| self.learned(begun, at.1).filter(|_| one_length(at.1, &begun.mechanism))),
            Step::Final if matches!(at.1, WireOperation::Sign | WireOperation::Digest) => {
                self.learned(begun, at.1)
            }
            _ => None,
        }
    }

    /// Takes in the replies to a step (sent after its held init, if `init` is some); returns
    /// the step's answer, or the init's failure.
    pub fn after_step(
        &mut self,
        at: At,
        init: Option<Begun>,
        mut replies: Vec<Reply>,
        step: &Step<'_>,
    ) -> Result<Answer> {
        let reply = replies.pop().ok_or(Error::Internal("a reply"))?;
        if let Some(begun) = init {
            if replies.is_empty() {
                // Only the init ran: it failed, and no operation began.
                return match reply {
                    Err(e) => Err(error_from_wire(e)),
                    Ok(_) => Err(Error::Internal("a step's reply")),
                };
            }
            self.set_active(at, begun);
        }
        let finishing = !matches!(step, Step::Update(_));
        let Some(i) = self.active.iter().position(|(a, _)| *a == at) else {
            return reply.map_err(error_from_wire);
        };
        let learned = match &reply {
            Ok(Answer::Output(WireOutput::Length(n))) => usize::try_from(*n).ok(),
            Ok(Answer::Output(WireOutput::Bytes(b))) => Some(b.0.len()),
            Err(WireError::BufferTooSmall { needed }) => usize::try_from(*needed).ok(),
            _ => None,
        };
        let begun = self.active[i].1.clone();
        if let (Some(n), true) = (learned, finishing && one_length(at.1, &begun.mechanism)) {
            self.learn_length(begun.key, at.1, &begun.mechanism, n);
        }
        match &reply {
            // A length query or a short buffer: the operation goes on as it was.
            Ok(Answer::Output(WireOutput::Length(_))) | Err(WireError::BufferTooSmall { .. }) => {}
            Ok(_) if finishing => {
                self.active.remove(i);
            }
            Ok(_) => self.active[i].1.fresh = false,
            Err(e) => {
                if error_from_wire(e.clone()) == Error::UserNotLoggedIn && !self.gated.contains(&begun.key) {
                    // The step waits for approvals or a context-specific login.
                    self.gated.push(begun.key);
                    self.proven.retain(|(k, _, _)| *k != begun.key);
                }
                // Whether the failure ended the operation is the service's to say; taken as
                // still active, the next init is sent at once and answered as in-process.
                self.active[i].1.fresh = false;
            }
        }
        reply.map_err(error_from_wire)
    }
}
