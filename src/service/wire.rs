//! Conversions between the core's types and the protocol's (`protocol.rs`), both ways: the
//! server decodes calls into core values and encodes the answers; the client the reverse.

use std::time::Duration;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::protocol::*;
use crate::mechanism::aes_gcm::GcmMessageParams;
use crate::mechanism::{CtrParams, EcdhParams, GcmParams, Mechanism, MechanismParams, OaepParams, PssParams};
use crate::object::attribute::{decode_attribute_array, encode_attribute_array, is_attribute_array};
use crate::object::{Attribute, AttributeRead};
use crate::policy::LoginState;
use crate::policy::approval_ahead::ManagementOp;
use crate::session::{CipherKind, OperationKind, Step};
use crate::session::{Output, OutputBuffer};
use crate::store::ApprovalRecord;
use crate::token::{ApprovalRequest, ApprovalTarget};
use crate::{Error, Result};

/// A count or length from the wire as a `usize`; one that does not fit is a bad argument.
pub fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad)
}

pub fn attributes_to_wire(template: &[Attribute]) -> Vec<WireAttribute> {
    template.iter().map(|a| WireAttribute { kind: a.kind, value: value_to_wire(a.kind, &a.value) }).collect()
}

fn value_to_wire(kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> WireValue {
    if is_attribute_array(kind)
        && let Some(entries) = decode_attribute_array(value)
    {
        return WireValue::Array(
            entries
                .into_iter()
                .map(|e| FlatAttribute { kind: e.kind, value: Secret(e.value.to_vec()) })
                .collect(),
        );
    }
    WireValue::Bytes(Secret(value.to_vec()))
}

pub fn attributes_from_wire(template: Vec<WireAttribute>) -> Vec<Attribute> {
    template.into_iter().map(|a| Attribute { kind: a.kind, value: value_from_wire(a.value) }).collect()
}

fn value_from_wire(value: WireValue) -> Zeroizing<Vec<u8>> {
    match value {
        WireValue::Bytes(mut b) => Zeroizing::new(std::mem::take(&mut b.0)),
        WireValue::Array(entries) => {
            let entries: Vec<Attribute> = entries
                .into_iter()
                .map(|mut e| Attribute {
                    kind: e.kind,
                    value: Zeroizing::new(std::mem::take(&mut e.value.0)),
                })
                .collect();
            Zeroizing::new(encode_attribute_array(&entries))
        }
    }
}

pub fn reads_to_wire(kinds: &[CK_ATTRIBUTE_TYPE], reads: Vec<AttributeRead>) -> Vec<WireRead> {
    reads
        .into_iter()
        .zip(kinds)
        .map(|(r, kind)| match r {
            AttributeRead::Value(v) => WireRead::Value(value_to_wire(*kind, &v)),
            AttributeRead::Sensitive => WireRead::Sensitive,
            AttributeRead::Invalid => WireRead::Invalid,
        })
        .collect()
}

pub fn reads_from_wire(reads: Vec<WireRead>) -> Vec<AttributeRead> {
    reads
        .into_iter()
        .map(|r| match r {
            WireRead::Value(v) => AttributeRead::Value(value_from_wire(v)),
            WireRead::Sensitive => AttributeRead::Sensitive,
            WireRead::Invalid => AttributeRead::Invalid,
        })
        .collect()
}

pub fn mechanism_to_wire(m: &Mechanism) -> WireMechanism {
    let b = |v: &Vec<u8>| Bytes(v.clone());
    let params = match &m.params {
        MechanismParams::None => WireParams::None,
        MechanismParams::Gcm(p) => WireParams::Gcm { iv: b(&p.iv), aad: b(&p.aad), tag_bits: p.tag_bits },
        MechanismParams::Iv(iv) => WireParams::Iv(b(iv)),
        MechanismParams::Ctr(p) => {
            WireParams::Ctr { counter_bits: p.counter_bits, counter_block: p.counter_block }
        }
        MechanismParams::Pss(p) => WireParams::Pss { hash: p.hash, mgf: p.mgf, salt_len: p.salt_len },
        MechanismParams::Oaep(p) => WireParams::Oaep { hash: p.hash, mgf: p.mgf, label: b(&p.label) },
        MechanismParams::Ecdh(p) => {
            WireParams::Ecdh { kdf: p.kdf, shared_data: b(&p.shared_data), public_data: b(&p.public_data) }
        }
        MechanismParams::Opaque(v) => WireParams::Opaque(b(v)),
        MechanismParams::Data(v) => WireParams::Data(b(v)),
        MechanismParams::CbcData(p) => WireParams::CbcData(p.clone()),
        MechanismParams::Hkdf(p) => WireParams::Hkdf(p.clone()),
        MechanismParams::Kbkdf(p) => WireParams::Kbkdf(p.clone()),
        MechanismParams::SignContext(p) => WireParams::SignContext(p.clone()),
        MechanismParams::Eddsa(p) => WireParams::Eddsa(p.clone()),
    };
    WireMechanism { kind: m.kind, params }
}

pub fn mechanism_from_wire(m: WireMechanism) -> Mechanism {
    let params = match m.params {
        WireParams::None => MechanismParams::None,
        WireParams::Gcm { iv, aad, tag_bits } => {
            MechanismParams::Gcm(GcmParams { iv: iv.0, aad: aad.0, tag_bits })
        }
        WireParams::Iv(iv) => MechanismParams::Iv(iv.0),
        WireParams::Ctr { counter_bits, counter_block } => {
            MechanismParams::Ctr(CtrParams { counter_bits, counter_block })
        }
        WireParams::Pss { hash, mgf, salt_len } => MechanismParams::Pss(PssParams { hash, mgf, salt_len }),
        WireParams::Oaep { hash, mgf, label } => {
            MechanismParams::Oaep(OaepParams { hash, mgf, label: label.0 })
        }
        WireParams::Ecdh { kdf, shared_data, public_data } => {
            MechanismParams::Ecdh(EcdhParams { kdf, shared_data: shared_data.0, public_data: public_data.0 })
        }
        WireParams::Opaque(v) => MechanismParams::Opaque(v.0),
        WireParams::Data(v) => MechanismParams::Data(v.0),
        WireParams::CbcData(p) => MechanismParams::CbcData(p),
        WireParams::Hkdf(p) => MechanismParams::Hkdf(p),
        WireParams::Kbkdf(p) => MechanismParams::Kbkdf(p),
        WireParams::SignContext(p) => MechanismParams::SignContext(p),
        WireParams::Eddsa(p) => MechanismParams::Eddsa(p),
    };
    Mechanism { kind: m.kind, params }
}

pub fn gcm_message_to_wire(p: &GcmMessageParams) -> WireGcmMessage {
    WireGcmMessage {
        iv: Bytes(p.iv.clone()),
        fixed_bits: p.fixed_bits,
        generator: p.generator,
        tag_bits: p.tag_bits,
    }
}

pub fn gcm_message_from_wire(p: WireGcmMessage) -> GcmMessageParams {
    GcmMessageParams { iv: p.iv.0, fixed_bits: p.fixed_bits, generator: p.generator, tag_bits: p.tag_bits }
}

pub fn cipher_to_wire(kind: CipherKind) -> WireCipher {
    match kind {
        CipherKind::Encrypt => WireCipher::Encrypt,
        CipherKind::Decrypt => WireCipher::Decrypt,
    }
}

pub fn cipher_from_wire(kind: WireCipher) -> CipherKind {
    match kind {
        WireCipher::Encrypt => CipherKind::Encrypt,
        WireCipher::Decrypt => CipherKind::Decrypt,
    }
}

pub fn operation_to_wire(kind: OperationKind) -> WireOperation {
    match kind {
        OperationKind::Encrypt => WireOperation::Encrypt,
        OperationKind::Decrypt => WireOperation::Decrypt,
        OperationKind::Digest => WireOperation::Digest,
        OperationKind::Sign => WireOperation::Sign,
        OperationKind::Verify => WireOperation::Verify,
        OperationKind::SignRecover => WireOperation::SignRecover,
        OperationKind::VerifyRecover => WireOperation::VerifyRecover,
    }
}

pub fn operation_from_wire(kind: WireOperation) -> OperationKind {
    match kind {
        WireOperation::Encrypt => OperationKind::Encrypt,
        WireOperation::Decrypt => OperationKind::Decrypt,
        WireOperation::Digest => OperationKind::Digest,
        WireOperation::Sign => OperationKind::Sign,
        WireOperation::Verify => OperationKind::Verify,
        WireOperation::SignRecover => OperationKind::SignRecover,
        WireOperation::VerifyRecover => OperationKind::VerifyRecover,
    }
}

pub fn step_to_wire(step: Step<'_>) -> WireStep {
    match step {
        Step::Single(d) => WireStep::Single(Secret(d.to_vec())),
        Step::Update(d) => WireStep::Update(Secret(d.to_vec())),
        Step::Final => WireStep::Final,
    }
}

/// The core's view of a step, borrowing the frame's data.
pub fn step_from_wire(step: &WireStep) -> Step<'_> {
    match step {
        WireStep::Single(d) => Step::Single(&d.0),
        WireStep::Update(d) => Step::Update(&d.0),
        WireStep::Final => Step::Final,
    }
}

pub fn buffer_to_wire(buffer: OutputBuffer) -> WireBuffer {
    match buffer {
        OutputBuffer::Query => WireBuffer::Query,
        OutputBuffer::Capacity(c) => WireBuffer::Capacity(c as u64),
    }
}

/// A capacity beyond `usize` is as good as unbounded: it is clamped, never refused.
pub fn buffer_from_wire(buffer: WireBuffer) -> OutputBuffer {
    match buffer {
        WireBuffer::Query => OutputBuffer::Query,
        WireBuffer::Capacity(c) => OutputBuffer::Capacity(usize::try_from(c).unwrap_or(usize::MAX)),
    }
}

pub fn output_to_wire(output: Output) -> WireOutput {
    match output {
        Output::Length(n) => WireOutput::Length(n as u64),
        Output::Bytes(mut b) => WireOutput::Bytes(Secret(std::mem::take(&mut *b))),
    }
}

pub fn output_from_wire(output: WireOutput) -> Result<Output> {
    Ok(match output {
        WireOutput::Length(n) => Output::Length(to_usize(n)?),
        WireOutput::Bytes(mut b) => Output::Bytes(Zeroizing::new(std::mem::take(&mut b.0))),
    })
}

pub fn login_to_wire(login: LoginState) -> WireLogin {
    match login {
        LoginState::Public => WireLogin::Public,
        LoginState::User => WireLogin::User,
        LoginState::SecurityOfficer => WireLogin::SecurityOfficer,
    }
}

pub fn login_from_wire(login: WireLogin) -> LoginState {
    match login {
        WireLogin::Public => LoginState::Public,
        WireLogin::User => LoginState::User,
        WireLogin::SecurityOfficer => LoginState::SecurityOfficer,
    }
}

pub fn management_op_to_wire(op: ManagementOp) -> WireManagementOp {
    match op {
        ManagementOp::Destroy => WireManagementOp::Destroy,
        ManagementOp::Modify => WireManagementOp::Modify,
        ManagementOp::Rotate => WireManagementOp::Rotate,
        ManagementOp::Policy => WireManagementOp::Policy,
    }
}

pub fn management_op_from_wire(op: WireManagementOp) -> ManagementOp {
    match op {
        WireManagementOp::Destroy => ManagementOp::Destroy,
        WireManagementOp::Modify => ManagementOp::Modify,
        WireManagementOp::Rotate => ManagementOp::Rotate,
        WireManagementOp::Policy => ManagementOp::Policy,
    }
}

pub fn approval_request_to_wire(r: &ApprovalRequest) -> WireApprovalRequest {
    WireApprovalRequest {
        principal: r.principal.clone(),
        op: management_op_to_wire(r.op),
        target: match &r.target {
            ApprovalTarget::Key(h) => WireApprovalTarget::Key(*h),
            ApprovalTarget::Policy(text) => WireApprovalTarget::Policy(text.clone()),
            ApprovalTarget::Change { key, attributes } => {
                WireApprovalTarget::Change { key: *key, attributes: attributes_to_wire(attributes) }
            }
        },
        expires_in_ms: u64::try_from(r.expires_in.as_millis()).unwrap_or(u64::MAX),
    }
}

pub fn approval_request_from_wire(r: WireApprovalRequest) -> ApprovalRequest {
    ApprovalRequest {
        principal: r.principal,
        op: management_op_from_wire(r.op),
        target: match r.target {
            WireApprovalTarget::Key(h) => ApprovalTarget::Key(h),
            WireApprovalTarget::Policy(text) => ApprovalTarget::Policy(text),
            WireApprovalTarget::Change { key, attributes } => {
                ApprovalTarget::Change { key, attributes: attributes_from_wire(attributes) }
            }
        },
        expires_in: Duration::from_millis(r.expires_in_ms),
    }
}

/// Both conversions between a core struct and its wire twin, which has the same fields (the
/// core types do not carry serde; the wire format is the protocol's own).
macro_rules! field_for_field {
    ($to_wire:ident($core:ident) -> $wire:ident, $from_wire:ident: $($field:ident),* $(,)?) => {
        pub fn $to_wire(a: $core) -> $wire {
            $wire { $($field: a.$field),* }
        }

        pub fn $from_wire(a: $wire) -> $core {
            $core { $($field: a.$field),* }
        }
    };
}

field_for_field!(approval_to_wire(ApprovalRecord) -> WireApproval, approval_from_wire:
    id, approver, principal, operation, key, key_label, created_at, expires_at, consumed_at, revoked_at);

/// An answer of another kind than the call has: the service and the client disagree.
pub fn unexpected() -> Error {
    Error::Device("unexpected answer from the key service".into())
}

/// The answer of a call that returns nothing.
pub fn done(answer: Answer) -> Result<()> {
    match answer {
        Answer::Done => Ok(()),
        _ => Err(unexpected()),
    }
}

/// The answer of a call that returns output through the output-buffer protocol.
pub fn output(answer: Answer) -> Result<Output> {
    match answer {
        Answer::Output(o) => output_from_wire(o),
        _ => Err(unexpected()),
    }
}

/// What the client may learn of a failure: its code, a short buffer's needed length, a
/// policy's refusal. Fault texts (`Device`, `Internal`, `StoreCorrupt`) stay on the server.
pub fn error_to_wire(e: &Error) -> WireError {
    match e {
        Error::BufferTooSmall { needed } => WireError::BufferTooSmall { needed: *needed as u64 },
        Error::PolicyInvalid(text) => WireError::PolicyInvalid(text.clone()),
        other => WireError::Code(other.ck_rv()),
    }
}

/// The core's error for a failure reported by the service, so that the C ABI answers the same
/// code in client mode as in-process.
pub fn error_from_wire(e: WireError) -> Error {
    match e {
        WireError::BufferTooSmall { needed } => {
            Error::BufferTooSmall { needed: usize::try_from(needed).unwrap_or(usize::MAX) }
        }
        WireError::PolicyInvalid(text) => Error::PolicyInvalid(text),
        WireError::Code(rv) => error_of_code(rv),
    }
}

/// The errors whose code names them, in the order the first of a shared code wins
/// (`ArgumentsBad` before `PolicyInvalid`, which travels apart).
const BY_CODE: &[Error] = &[
    Error::ArgumentsBad,
    Error::AttributeReadOnly,
    Error::AttributeSensitive,
    Error::AttributeTypeInvalid,
    Error::AttributeValueInvalid,
    Error::CryptokiAlreadyInitialized,
    Error::CryptokiNotInitialized,
    Error::DataInvalid,
    Error::DeviceRemoved,
    Error::DataLenRange,
    Error::EncryptedDataInvalid,
    Error::EncryptedDataLenRange,
    Error::FunctionNotSupported,
    Error::FunctionNotParallel,
    Error::KeyFunctionNotPermitted,
    Error::KeyHandleInvalid,
    Error::KeyIndigestible,
    Error::KeyNotWrappable,
    Error::KeySizeRange,
    Error::KeyTypeInconsistent,
    Error::KeyUnextractable,
    Error::MechanismInvalid,
    Error::MechanismParamInvalid,
    Error::NoEvent,
    Error::ObjectHandleInvalid,
    Error::OperationActive,
    Error::OperationNotInitialized,
    Error::PinIncorrect,
    Error::PinInvalid,
    Error::PinLenRange,
    Error::PinLocked,
    Error::RandomSeedNotSupported,
    Error::SessionCount,
    Error::SessionExists,
    Error::SignatureInvalid,
    Error::SignatureLenRange,
    Error::SessionHandleInvalid,
    Error::SessionParallelNotSupported,
    Error::SessionReadOnly,
    Error::SessionReadOnlyExists,
    Error::SessionReadWriteSoExists,
    Error::SlotIdInvalid,
    Error::TemplateIncomplete,
    Error::TemplateInconsistent,
    Error::TokenNotRecognized,
    Error::UserAlreadyLoggedIn,
    Error::UserAnotherAlreadyLoggedIn,
    Error::UserNotLoggedIn,
    Error::UserPinNotInitialized,
    Error::UserTypeInvalid,
    Error::UnwrappingKeyHandleInvalid,
    Error::UnwrappingKeyTypeInconsistent,
    Error::WrappedKeyInvalid,
    Error::WrappedKeyLenRange,
    Error::WrappingKeyHandleInvalid,
    Error::WrappingKeyTypeInconsistent,
    Error::ActionProhibited,
    Error::StoreBusy,
];

fn error_of_code(rv: CK_RV) -> Error {
    if let Some(e) = BY_CODE.iter().find(|e| e.ck_rv() == rv) {
        return e.clone();
    }
    match rv {
        CKR_GENERAL_ERROR => Error::Internal("reported by the key service"),
        // CKR_DEVICE_ERROR, and any code this build does not know (a newer service).
        _ => Error::Device("reported by the key service".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_keeps_its_code_across_the_wire() {
        let mut all = BY_CODE.to_vec();
        all.extend([
            Error::BufferTooSmall { needed: 77 },
            Error::PolicyInvalid("line 3".into()),
            Error::StoreCorrupt("secret path".into()),
            Error::Device("disk".into()),
            Error::Internal("x"),
        ]);
        for e in all {
            let back = error_from_wire(error_to_wire(&e));
            assert_eq!(back.ck_rv(), e.ck_rv(), "{e:?}");
        }
        assert_eq!(
            error_from_wire(error_to_wire(&Error::BufferTooSmall { needed: 77 })),
            Error::BufferTooSmall { needed: 77 }
        );
        assert_eq!(
            error_from_wire(error_to_wire(&Error::PolicyInvalid("line 3".into()))),
            Error::PolicyInvalid("line 3".into())
        );
        // Fault texts stay on the server.
        assert_eq!(
            error_to_wire(&Error::Device("/var/lib/x: EIO".into())),
            WireError::Code(CKR_DEVICE_ERROR)
        );
        assert_eq!(error_from_wire(WireError::Code(0x7777_0000)).ck_rv(), CKR_DEVICE_ERROR);
    }

    #[test]
    fn templates_with_attribute_arrays_round_trip_typed() {
        let inner = vec![
            Attribute::new(CKA_CLASS, vec![4, 0, 0, 0, 0, 0, 0, 0]),
            Attribute::new(CKA_LABEL, b"x".to_vec()),
        ];
        let template = vec![
            Attribute::new(CKA_LABEL, b"wrapper".to_vec()),
            Attribute::new(CKA_WRAP_TEMPLATE, encode_attribute_array(&inner)),
            // Not a valid array encoding: carried as the bytes it is.
            Attribute::new(CKA_UNWRAP_TEMPLATE, vec![1, 2, 3]),
        ];
        let wire = attributes_to_wire(&template);
        match &wire[1].value {
            WireValue::Array(entries) => {
                assert_eq!(entries.len(), 2);
                assert_eq!(entries[1].kind, CKA_LABEL);
            }
            other => panic!("not typed: {other:?}"),
        }
        assert!(matches!(wire[2].value, WireValue::Bytes(_)));
        let bytes = postcard::to_stdvec(&wire).unwrap();
        let back: Vec<WireAttribute> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(attributes_from_wire(back), template);
    }

    #[test]
    fn every_mechanism_parameter_round_trips() {
        let all = [
            MechanismParams::None,
            MechanismParams::Gcm(GcmParams { iv: vec![1; 12], aad: vec![2; 5], tag_bits: 128 }),
            MechanismParams::Iv(vec![3; 16]),
            MechanismParams::Ctr(CtrParams { counter_bits: 32, counter_block: [4; 16] }),
            MechanismParams::Pss(PssParams { hash: CKM_SHA256, mgf: CKG_MGF1_SHA256, salt_len: 32 }),
            MechanismParams::Oaep(OaepParams { hash: CKM_SHA256, mgf: CKG_MGF1_SHA256, label: vec![5] }),
            MechanismParams::Ecdh(EcdhParams {
                kdf: CKD_NULL,
                shared_data: vec![6],
                public_data: vec![7; 65],
            }),
            MechanismParams::Opaque(vec![8, 9]),
        ];
        for params in all {
            let m = Mechanism { kind: CKM_AES_GCM, params };
            let bytes = postcard::to_stdvec(&mechanism_to_wire(&m)).unwrap();
            assert_eq!(mechanism_from_wire(postcard::from_bytes(&bytes).unwrap()), m);
        }
    }
}
