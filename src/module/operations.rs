//! Cryptographic operations (PKCS#11 3.0 chapters 5.8 to 5.13): encryption, decryption,
//! digests, signatures and verification, with recovery; each begun by a recorded `*Init`
//! and run in steps on the session's operation of its kind. The standard's rules for steps
//! live here: a failed step ends its operation, a step whose arguments could not even be
//! read included ([`Module::step_with`]).

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::Module;
use crate::mechanism::prepared::PreparedKey;
use crate::mechanism::{self, CipherOperation, Mechanism};
use crate::object::AttributeRead;
use crate::policy::PendingApproval;
use crate::session::{
    CachedKey, Delivered, Dest, Operations, Output, OutputBuffer, output_step, output_step_into,
};
use crate::session::{CipherKind, OperationKind, Step};
use crate::session::{GivenSignature, Session, Verification};
use crate::token::{ContextPin, KEY_USE_STALENESS, KeyForUse, PinResult};
use crate::{Error, Result};

/// Where a session keeps its encryption or its decryption.
type CipherSlot = fn(&mut Operations) -> &mut Option<Box<dyn CipherOperation>>;

/// Records what the operation just begun as `operation` waits for, replacing what an
/// earlier operation of that kind had: an approval serves one operation only.
fn set_approval(ops: &mut Operations, operation: &'static str, approval: Option<PendingApproval>) {
    match approval {
        Some(a) => ops.approvals.insert(operation, a),
        None => ops.approvals.remove(operation),
    };
}

/// Records whether the operation just begun as `operation` waits for the login's PIN (a key
/// with `CKA_ALWAYS_AUTHENTICATE`), replacing what an earlier operation of that kind had.
fn set_pin_for_use(ops: &mut Operations, operation: &'static str, needs_pin: bool) {
    if needs_pin {
        ops.pin_for_use.insert(operation, false);
    } else {
        ops.pin_for_use.remove(operation);
    }
}

/// `CKR_USER_NOT_LOGGED_IN` while the operation in progress as `operation` still waits for
/// approvers, or for the context-specific login a `CKA_ALWAYS_AUTHENTICATE` key needs.
fn awaits_approval(ops: &Operations, operation: &str) -> Result<()> {
    match ops.approvals.get(operation) {
        Some(a) if !a.is_met() => return Err(Error::UserNotLoggedIn),
        _ => {}
    }
    match ops.pin_for_use.get(operation) {
        Some(false) => Err(Error::UserNotLoggedIn),
        _ => Ok(()),
    }
}

/// Runs a step on the caller's `arguments`, or calls `end` when they could not be read (a
/// NULL pointer, a length out of range): a call that fails, other than for a buffer too
/// small, ends the operation it continues, whatever made it fail.
pub(super) fn step_or_end<A, T>(
    arguments: Result<A>,
    end: impl FnOnce(),
    step: impl FnOnce(A) -> Result<T>,
) -> Result<T> {
    match arguments {
        Ok(arguments) => step(arguments),
        Err(e) => {
            end();
            Err(e)
        }
    }
}

impl Module {
    /// Every `*Init` (`C_EncryptInit` ... `C_VerifyRecoverInit`): recorded as the operation's
    /// name (`encrypt`, `sign`, ...) naming key and mechanism, but for `C_DigestInit`, which
    /// takes no key (`key` is not read); `None` for the mechanism ends an active operation
    /// (not recorded).
    pub fn operation_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let (usage, name) = match kind {
            OperationKind::Digest => return self.digest_init(h, mechanism),
            OperationKind::Encrypt => (CKA_ENCRYPT, "encrypt"),
            OperationKind::Decrypt => (CKA_DECRYPT, "decrypt"),
            OperationKind::Sign => (CKA_SIGN, "sign"),
            OperationKind::Verify => (CKA_VERIFY, "verify"),
            // The policy counts these as `sign` and `verify`; the record keeps the difference,
            // since what is recovered from a signature is data.
            OperationKind::SignRecover => (CKA_SIGN_RECOVER, "sign_recover"),
            OperationKind::VerifyRecover => (CKA_VERIFY_RECOVER, "verify_recover"),
        };
        self.audited_init(h, name, mechanism, key, |m| match kind {
            OperationKind::Sign => {
                let sign = |m: &Mechanism, k: &Arc<PreparedKey>| mechanism::sign_init(m, &k.material);
                self.begin(h, m, key, usage, name, |o| &mut o.sign, sign)
            }
            OperationKind::Verify => {
                let verify = |m: &Mechanism, k: &Arc<PreparedKey>| {
                    let operation = mechanism::verify_init(m, &k.material)?;
                    Ok(Verification { operation, signature: None })
                };
                self.begin(h, m, key, usage, name, |o| &mut o.verify, verify)
            }
            OperationKind::SignRecover | OperationKind::VerifyRecover => {
                self.begin_recovery(h, kind, m, key, usage, name)
            }
            // Encrypt or decrypt: digests returned above.
            _ => {
                let encrypt = kind == OperationKind::Encrypt;
                let slot: CipherSlot = if encrypt { |o| &mut o.encrypt } else { |o| &mut o.decrypt };
                self.begin(h, m, key, usage, name, slot, |m, k| {
                    mechanism::cipher_init_prepared(m, k, encrypt)
                })
            }
        })
    }

    /// `C_VerifySignatureInit` (PKCS#11 3.2): a verification of `signature`, given before the
    /// data. It is the session's verification, begun as `C_VerifyInit` begins one (the key's
    /// checks, the policy, approvals, and its record as `verify`), so that either init finds
    /// the other's operation `CKR_OPERATION_ACTIVE`; a signature of a length the mechanism
    /// and key rule out is `CKR_SIGNATURE_LEN_RANGE` and begins nothing. `None` for the
    /// mechanism ends the verification in progress, whichever init began it.
    pub fn verify_signature_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        signature: &[u8],
    ) -> Result<()> {
        self.audited_init(h, "verify", mechanism, key, |m| {
            let verify = |m: &Mechanism, k: &Arc<PreparedKey>| {
                let operation = mechanism::verify_signature_init(m, &k.material, signature.len())?;
                let signature = Some(GivenSignature { bytes: signature.to_vec(), updated: false });
                Ok(Verification { operation, signature })
            };
            self.begin(h, m, key, CKA_VERIFY, "verify", |o| &mut o.verify, verify)
        })
    }

    /// Every `*Init` that may wait for approvals: `None` for the mechanism ends the operation
    /// in `slot` (and its approval); otherwise the key is checked for `usage`, `begin` makes
    /// the operation, and the approval it waits for, if any, is kept under `name`.
    ///
    /// A key this session looked up for the same use and mechanism is taken from its cache
    /// (`crate::session::keys`) while the token has not changed since and the store was
    /// checked recently enough: the lookup would give the same answer, and the token's lock
    /// is not taken. Keys that wait for approvals are never cached.
    #[allow(clippy::too_many_arguments)]
    fn begin<T>(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        name: &'static str,
        slot: fn(&mut Operations) -> &mut Option<T>,
        begin: impl FnOnce(&Mechanism, &Arc<PreparedKey>) -> Result<T>,
    ) -> Result<()> {
        let s = self.session(h)?;
        let token = &s.token;
        let mut ops = s.operations.lock();
        let Some(mechanism) = mechanism else {
            *slot(&mut ops) = None;
            ops.approvals.remove(name);
            ops.pin_for_use.remove(name);
            return Ok(());
        };
        if slot(&mut ops).is_some() {
            return Err(Error::OperationActive);
        }
        let version = token.version();
        if let Some(prepared) = ops.keys.get(key, usage, mechanism.kind, version, KEY_USE_STALENESS).cloned()
        {
            *slot(&mut ops) = Some(begin(mechanism, &prepared)?);
            ops.approvals.remove(name);
            ops.pin_for_use.remove(name);
            return Ok(());
        }
        let KeyForUse { material, approval, needs_pin } =
            token.key_material_gated(s.read_write, key, usage, mechanism.kind)?;
        let prepared = Arc::new(PreparedKey::new(material));
        // Read after the lookup: unchanged, the lookup saw the token as of `version`.
        let checked_at = token.checked_at();
        // Keys that wait for approvers or for the PIN are never cached: each use asks again.
        if approval.is_none()
            && !needs_pin
            && let Some(checked_at) = checked_at
            && token.version() == version
        {
            let entry = CachedKey {
                handle: key,
                usage,
                mechanism: mechanism.kind,
                version,
                checked_at,
                key: prepared.clone(),
            };
            ops.keys.put(entry);
        }
        *slot(&mut ops) = Some(begin(mechanism, &prepared)?);
        set_approval(&mut ops, name, approval);
        set_pin_for_use(&mut ops, name, needs_pin);
        Ok(())
    }

    /// `C_Login(CKU_CONTEXT_SPECIFIC, pin)` for the operations of `session` begun on a key
    /// with `CKA_ALWAYS_AUTHENTICATE` and still waiting for the login's PIN: once the token
    /// has checked it (`Token::reauthenticate`; a wrong one counts toward the lockout), they
    /// may run. `Ok(false)` when none waits, or when the PIN is another principal's approval
    /// (for `Module::approve_waiting`). One such login serves the operations waiting at that
    /// moment; the next `*Init` waits again.
    pub(super) fn reauthenticate(&self, session: &Session, pin: &[u8]) -> PinResult<bool> {
        let mut ops = session.operations.lock();
        if !ops.pin_for_use.values().any(|done| !*done) {
            return Ok(false);
        }
        let approvals_waiting = ops.approvals.values().any(|a| !a.is_met());
        match session.token.reauthenticate(pin, approvals_waiting)? {
            ContextPin::Approval => Ok(false),
            ContextPin::Reauthenticated => {
                ops.pin_for_use.values_mut().for_each(|done| *done = true);
                Ok(true)
            }
        }
    }

    /// One step of an encryption or decryption, its output returned.
    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        self.with_cipher(h, kind, |slot| match step {
            Step::Single(input) => {
                output_step(slot, buffer, true, |op| op.single_output_len(input), |op| op.single(input))
            }
            Step::Update(input) => {
                output_step(slot, buffer, false, |op| Ok(op.update_len(input.len())), |op| op.update(input))
            }
            Step::Final => output_step(slot, buffer, true, |op| Ok(op.final_len()), |op| op.finish()),
        })
    }

    /// As [`Module::cipher`], writing into the caller's buffer (the C ABI's path, when the
    /// input and output do not overlap).
    pub fn cipher_into(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: Step<'_>,
        dest: Dest<'_>,
    ) -> Result<Delivered> {
        self.with_cipher(h, kind, |slot| match step {
            Step::Single(input) => output_step_into(
                slot,
                dest,
                true,
                |op| op.single_output_len(input),
                |op, out| op.single_into(input, out),
            ),
            Step::Update(input) => output_step_into(
                slot,
                dest,
                false,
                |op| Ok(op.update_len(input.len())),
                |op, out| op.update_into(input, out),
            ),
            Step::Final => {
                output_step_into(slot, dest, true, |op| Ok(op.final_len()), |op, out| op.finish_into(out))
            }
        })
    }

    /// Runs `step` on the session's encryption or decryption, once it waits for no
    /// approvers.
    fn with_cipher<T>(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        step: impl FnOnce(&mut Option<Box<dyn CipherOperation>>) -> Result<T>,
    ) -> Result<T> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        // Most sessions wait for nothing: one check of each map spares the lookups.
        if !ops.approvals.is_empty() || !ops.pin_for_use.is_empty() {
            awaits_approval(&ops, kind.name())?;
        }
        step(match kind {
            CipherKind::Encrypt => &mut ops.encrypt,
            CipherKind::Decrypt => &mut ops.decrypt,
        })
    }

    pub fn sign(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        awaits_approval(&ops, "sign")?;
        let slot = &mut ops.sign;
        let bytes = |r: Result<Vec<u8>>| r.map(Zeroizing::new);
        match step {
            Step::Single(data) => {
                output_step(slot, buffer, true, |op| Ok(op.signature_len()), |op| bytes(op.sign(data)))
            }
            Step::Update(data) => output_step(
                slot,
                buffer,
                false,
                |_| Ok(0),
                |op| op.update(data).map(|()| Zeroizing::new(Vec::new())),
            ),
            Step::Final => {
                output_step(slot, buffer, true, |op| Ok(op.signature_len()), |op| bytes(op.finish()))
            }
        }
    }

    /// One step of a verification begun by `C_VerifyInit` (`C_Verify`, `C_VerifyUpdate`,
    /// `C_VerifyFinal`): `Single(data)` and `Final` take the signature; the operation ends
    /// after them, and after any error.
    pub fn verify(&self, h: CK_SESSION_HANDLE, step: Step<'_>, signature: &[u8]) -> Result<()> {
        self.verification_step(h, step, Some(signature))
    }

    /// One step of a verification begun by `C_VerifySignatureInit` (`C_VerifySignature`,
    /// `C_VerifySignatureUpdate`, `C_VerifySignatureFinal`), checking the signature given
    /// there; the operation ends as [`Module::verify`]'s does. `C_VerifySignature` after an
    /// update is `CKR_OPERATION_NOT_INITIALIZED` (the text requires it right after the init:
    /// the single part it would verify was never begun) and ends the operation, as every
    /// `C_VerifySignature` does.
    pub fn verify_signature(&self, h: CK_SESSION_HANDLE, step: Step<'_>) -> Result<()> {
        self.verification_step(h, step, None)
    }

    /// A step of the session's verification: `given` is the signature of a `C_Verify*` step,
    /// `None` for a `C_VerifySignature*` step, which checks the one given at the init. Each
    /// family continues only what its own init began: the other's operation answers
    /// `CKR_OPERATION_NOT_INITIALIZED` and goes on untouched.
    fn verification_step(&self, h: CK_SESSION_HANDLE, step: Step<'_>, given: Option<&[u8]>) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        if !matches!(&ops.verify, Some(v) if v.signature.is_some() == given.is_none()) {
            return Err(Error::OperationNotInitialized);
        }
        awaits_approval(&ops, "verify")?;
        let v = ops.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
        let single_refused = match (step, v.signature.as_mut()) {
            (Step::Update(_), Some(first)) => {
                first.updated = true;
                false
            }
            (Step::Single(_), Some(first)) => first.updated,
            _ => false,
        };
        let signature =
            given.or(v.signature.as_ref().map(|first| first.bytes.as_slice())).unwrap_or_default();
        let (result, finished) = match step {
            Step::Single(_) if single_refused => (Err(Error::OperationNotInitialized), true),
            Step::Single(data) => (v.operation.verify(data, signature), true),
            Step::Update(data) => (v.operation.update(data), false),
            Step::Final => (v.operation.finish(signature), true),
        };
        if finished || result.is_err() {
            ops.verify = None;
        }
        result
    }

    /// Runs one step of the operation `kind` that produces output (not a verification).
    pub fn operation_step(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        match kind {
            OperationKind::Encrypt => self.cipher(h, CipherKind::Encrypt, step, buffer),
            OperationKind::Decrypt => self.cipher(h, CipherKind::Decrypt, step, buffer),
            OperationKind::Digest => self.digest(h, step, buffer),
            OperationKind::Sign => self.sign(h, step, buffer),
            OperationKind::SignRecover | OperationKind::VerifyRecover => self.recover(h, kind, step, buffer),
            OperationKind::Verify => Err(Error::Internal("verification steps take a signature")),
        }
    }

    /// The longest input the next update of operation `kind` may bring (`None`: no limit,
    /// the operation hashes its parts as they come); the C ABI refuses a longer length
    /// before it reads the caller's buffer. `CKR_OPERATION_NOT_INITIALIZED` without one.
    pub fn update_room(&self, h: CK_SESSION_HANDLE, kind: OperationKind) -> Result<Option<usize>> {
        let s = self.session(h)?;
        let ops = s.operations.lock();
        let op = match kind {
            OperationKind::Encrypt => &ops.encrypt,
            OperationKind::Decrypt => &ops.decrypt,
            OperationKind::SignRecover => &ops.sign_recover,
            OperationKind::VerifyRecover => &ops.verify_recover,
            OperationKind::Digest | OperationKind::Sign | OperationKind::Verify => return Ok(None),
        };
        op.as_ref().map(|op| Some(op.update_room())).ok_or(Error::OperationNotInitialized)
    }

    /// Ends the operation `kind` of a session, if any (also for the key service, whose
    /// client ends an operation on an argument it refused before sending).
    pub(crate) fn end_operation(&self, h: CK_SESSION_HANDLE, kind: OperationKind) {
        if let Ok(s) = self.session(h) {
            let mut ops = s.operations.lock();
            match kind {
                OperationKind::Encrypt => ops.encrypt = None,
                OperationKind::Decrypt => ops.decrypt = None,
                OperationKind::Digest => ops.digest = None,
                OperationKind::Sign => ops.sign = None,
                OperationKind::Verify => ops.verify = None,
                OperationKind::SignRecover => ops.sign_recover = None,
                OperationKind::VerifyRecover => ops.verify_recover = None,
            }
        }
    }

    /// Runs one step of operation `kind` of session `h` on the caller's `arguments`, or
    /// ends the operation when they could not be read ([`step_or_end`]).
    pub fn step_with<A, T>(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        arguments: Result<A>,
        step: impl FnOnce(&Module, A) -> Result<T>,
    ) -> Result<T> {
        step_or_end(arguments, || self.end_operation(h, kind), |a| step(self, a))
    }

    /// The body of `C_SignRecoverInit` (`kind` `SignRecover`) or `C_VerifyRecoverInit`, the key
    /// checked for `usage`, the operation named `name` ([`Module::operation_init`] records
    /// it); `None` for the mechanism ends an active operation.
    fn begin_recovery(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        mechanism: Option<&Mechanism>,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        name: &'static str,
    ) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        let slot = match kind {
            OperationKind::SignRecover => &mut ops.sign_recover,
            OperationKind::VerifyRecover => &mut ops.verify_recover,
            _ => return Err(Error::Internal("not a recovery operation")),
        };
        let Some(mechanism) = mechanism else {
            *slot = None;
            ops.pin_for_use.remove(name);
            return Ok(());
        };
        if slot.is_some() {
            return Err(Error::OperationActive);
        }
        // Recovery does not wait for approvers (refused as elsewhere), but a signature
        // with a CKA_ALWAYS_AUTHENTICATE key waits for the PIN as C_Sign does.
        let (material, needs_pin) =
            match token.key_material_gated(s.read_write, key, usage, mechanism.kind)? {
                KeyForUse { approval: Some(_), .. } => return Err(Error::KeyFunctionNotPermitted),
                KeyForUse { material, needs_pin, .. } => (material, needs_pin),
            };
        *slot = Some(match kind {
            OperationKind::SignRecover => mechanism::sign_recover_init(mechanism, &material)?,
            _ => mechanism::verify_recover_init(mechanism, &material)?,
        });
        set_pin_for_use(&mut ops, name, needs_pin);
        Ok(())
    }

    /// `C_SignRecover`/`C_VerifyRecover`: single-part only.
    fn recover(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        step: Step<'_>,
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        if !ops.pin_for_use.is_empty() {
            awaits_approval(
                &ops,
                if kind == OperationKind::SignRecover { "sign_recover" } else { "verify_recover" },
            )?;
        }
        let slot = match kind {
            OperationKind::SignRecover => &mut ops.sign_recover,
            _ => &mut ops.verify_recover,
        };
        match step {
            Step::Single(input) => {
                output_step(slot, buffer, true, |op| op.single_len(input.len()), |op| op.single(input))
            }
            Step::Update(_) | Step::Final => Err(Error::FunctionNotSupported),
        }
    }

    /// `C_DigestInit`, which names no key: not recorded.
    fn digest_init(&self, h: CK_SESSION_HANDLE, mechanism: Option<&Mechanism>) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let Some(mechanism) = mechanism else {
            ops.digest = None;
            return Ok(());
        };
        if ops.digest.is_some() {
            return Err(Error::OperationActive);
        }
        ops.digest = Some(mechanism::digest_init(mechanism)?);
        Ok(())
    }

    pub fn digest(&self, h: CK_SESSION_HANDLE, step: Step<'_>, buffer: OutputBuffer) -> Result<Output> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let slot = &mut ops.digest;
        let bytes = |v: Vec<u8>| Ok(Zeroizing::new(v));
        match step {
            Step::Single(input) => output_step(
                slot,
                buffer,
                true,
                |op| Ok(op.output_len()),
                |op| {
                    op.update(input);
                    bytes(op.finish())
                },
            ),
            Step::Update(input) => output_step(
                slot,
                buffer,
                false,
                |_| Ok(0),
                |op| {
                    op.update(input);
                    bytes(Vec::new())
                },
            ),
            Step::Final => output_step(slot, buffer, true, |op| Ok(op.output_len()), |op| bytes(op.finish())),
        }
    }

    /// `C_DigestKey`, recorded as `digest_key` naming the key: feeds a secret key's value to
    /// the digest. Keys whose value may not be revealed are refused (`CKR_KEY_INDIGESTIBLE`):
    /// a digest is a partial reveal, so it needs what a read of the value needs (the
    /// policy's `read` included, `Token::get_attributes`).
    pub fn digest_key(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        // A digest fed a key cannot be taken back: when its record fails, the digest ends.
        let end = || self.end_operation(h, OperationKind::Digest);
        self.audited(h, "digest_key", Some(key), None, || self.feed_key_to_digest(h, key), end)
    }

    /// The body of [`Module::digest_key`], which records it.
    fn feed_key_to_digest(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        let (s, token) = self.session_and_token(h)?;
        let mut ops = s.operations.lock();
        if ops.digest.is_none() {
            return Err(Error::OperationNotInitialized);
        }
        let value = match token.get_attributes(s.read_write, key, &[CKA_CLASS, CKA_VALUE]) {
            Ok(reads) => match &reads[..] {
                [AttributeRead::Value(class), AttributeRead::Value(v)]
                    if class.as_slice()
                        == crate::object::attribute::encode_ulong(CKO_SECRET_KEY).as_slice() =>
                {
                    Ok(v.clone())
                }
                _ => Err(Error::KeyIndigestible),
            },
            Err(Error::ObjectHandleInvalid) => Err(Error::KeyHandleInvalid),
            Err(e) => Err(e),
        };
        match value {
            Ok(v) => {
                if let Some(d) = ops.digest.as_mut() {
                    d.update(&v);
                }
                Ok(())
            }
            Err(e) => {
                ops.digest = None;
                Err(e)
            }
        }
    }
}
