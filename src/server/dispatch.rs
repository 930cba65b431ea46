//! The server's side of each call: one `match` from a [`Call`] to the core `Module` method of
//! the same name, and its answer. The connection's own module (see `listener.rs`) is the only
//! one a call can reach, so a client names only its own sessions and objects.

use std::ops::ControlFlow;

use crate::module::Module;
use crate::service::call_list::kinds::*;
use crate::service::call_list::{Arg, Ret, listed_calls};
use crate::service::protocol::{Answer, Call, Secret, WireTokenStatus};
use crate::service::wire::*;
use crate::session::OperationKind;
use crate::{Error, Result};

/// What one connection may hold and ask for.
pub struct CallLimits {
    pub max_sessions: usize,
    /// The longest output a call may ask the server to make up (`C_GenerateRandom`): answers
    /// must fit in a frame.
    pub max_output: usize,
}

/// Runs one call on `module`.
pub fn dispatch(module: &Module, limits: &CallLimits, call: Call) -> Result<Answer> {
    let call = match listed(module, call) {
        ControlFlow::Break(answer) => return answer,
        ControlFlow::Continue(call) => call,
    };
    use Answer::{Done, Handle, Output as Out};
    Ok(match call {
        // Answered by the connection, which knows the peer.
        Call::Peer => return Err(Error::Internal("peer asked of the module")),
        Call::SlotList => Answer::Slots(module.slot_list()?),
        Call::TokenStatus { slot } => {
            let status = module.token_status(slot)?;
            Answer::TokenStatus(WireTokenStatus {
                label: status.info.label,
                serial: status.info.serial,
                flags: status.info.flags,
                session_count: status.session_count as u64,
                rw_session_count: status.rw_session_count as u64,
                model: module.token_model(slot)?,
            })
        }
        Call::OpenSession { slot, flags } => {
            if open_sessions(module) >= limits.max_sessions {
                return Err(Error::SessionCount);
            }
            Handle(module.open_session(slot, flags)?)
        }
        Call::CloseSession { session } => module.close_session(session).map(|()| Done)?,
        Call::SessionView { session } => {
            let (slot, view) = module.session_view(session)?;
            Answer::SessionView {
                slot,
                login: login_to_wire(view.login),
                read_write: view.read_write,
                principal: view.principal,
            }
        }
        Call::CloseAllSessions { slot } => module.close_all_sessions(slot).map(|()| Done)?,

        Call::GetAttributes { session, object, kinds } => {
            let reads = module.get_attributes(session, object, &kinds)?;
            Answer::Reads(reads_to_wire(&kinds, reads))
        }
        Call::FindNext { session, max } => {
            Answer::Handles(module.find_next(session, usize::try_from(max).unwrap_or(usize::MAX))?)
        }

        Call::CipherInit { session, kind, mechanism, key } => {
            let (kind, mechanism) = (cipher_from_wire(kind).operation(), mechanism.map(mechanism_from_wire));
            module.operation_init(session, kind, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::SignInit { session, mechanism, key } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.operation_init(session, OperationKind::Sign, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::VerifyInit { session, mechanism, key } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.operation_init(session, OperationKind::Verify, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::RecoverInit { session, kind, mechanism, key } => {
            let kind = operation_from_wire(kind);
            if !matches!(kind, OperationKind::SignRecover | OperationKind::VerifyRecover) {
                return Err(Error::ArgumentsBad);
            }
            let mechanism = mechanism.map(mechanism_from_wire);
            module.operation_init(session, kind, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::DigestInit { session, mechanism } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.operation_init(session, OperationKind::Digest, mechanism.as_ref(), 0).map(|()| Done)?
        }
        Call::Step { session, kind, step, buffer } => {
            let kind = operation_from_wire(kind);
            if kind == OperationKind::Verify {
                return Err(Error::ArgumentsBad);
            }
            Out(output_to_wire(module.operation_step(
                session,
                kind,
                step_from_wire(&step),
                buffer_from_wire(buffer),
            )?))
        }
        Call::Verify { session, step, signature } => {
            module.verify(session, step_from_wire(&step), &signature.0).map(|()| Done)?
        }
        Call::VerifySignatureInit { session, mechanism, key, signature } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.verify_signature_init(session, mechanism.as_ref(), key, &signature.0).map(|()| Done)?
        }
        Call::VerifySignature { session, step } => {
            module.verify_signature(session, step_from_wire(&step)).map(|()| Done)?
        }
        Call::EndOperation { session, kind } => {
            module.end_operation(session, operation_from_wire(kind));
            Done
        }

        Call::EncryptMessage { session, params, aad, plaintext, buffer } => {
            let mut params = gcm_message_from_wire(params);
            let (output, tag) = module.encrypt_message(
                session,
                &mut params,
                &aad.0,
                &plaintext.0,
                buffer_from_wire(buffer),
            )?;
            Answer::Sealed {
                output: output_to_wire(output),
                tag: crate::service::protocol::Bytes(tag.to_vec()),
                iv: crate::service::protocol::Bytes(params.iv),
            }
        }
        Call::DecryptMessage { session, params, tag, aad, ciphertext, buffer } => {
            let params = gcm_message_from_wire(params);
            Out(output_to_wire(module.decrypt_message(
                session,
                &params,
                &tag.0,
                &aad.0,
                &ciphertext.0,
                buffer_from_wire(buffer),
            )?))
        }

        Call::GenerateRandom { session, len } => {
            let len = to_usize(len)?;
            if len > limits.max_output {
                return Err(Error::ArgumentsBad);
            }
            let mut out = Secret(vec![0; len]);
            module.generate_random(session, &mut out.0)?;
            Answer::Random(out)
        }

        Call::ApproveAhead { session, request } => Answer::Approval(approval_to_wire(
            module.approve_ahead(session, &approval_request_from_wire(request))?,
        )),
        // --- PKCS#11 3.2 key encapsulation.
        Call::EncapsulateKey { session, mechanism, public, template, buffer } => {
            let (output, key) = module.encapsulate_key(
                session,
                &mechanism_from_wire(mechanism),
                public,
                &attributes_from_wire(template),
                buffer_from_wire(buffer),
            )?;
            Answer::Encapsulated { output: output_to_wire(output), key }
        }
        // Answered by `listed` above.
        _ => return Err(Error::Internal("a listed call")),
    })
}

/// The sessions open on the connection's module, over all its slots.
fn open_sessions(module: &Module) -> usize {
    let Ok(slots) = module.slot_list() else {
        return 0;
    };
    slots.iter().filter_map(|s| module.token_status(*s).ok()).map(|s| s.session_count).sum()
}

/// The server's side of the calls listed in `call_list.rs`: the module's method of the same
/// name, with the arguments as it takes them.
macro_rules! dispatch_listed {
    ($(fn $name:ident($($arg:ident: $kind:ty),*) -> $ret:ty = $variant:ident;)*) => {
        /// Runs a listed call on `module`; gives any other call back.
        fn listed(module: &Module, call: Call) -> ControlFlow<Result<Answer>, Call> {
            match call {
                $(
                    Call::$variant { $($arg),* } => {
                        $(let $arg = <$kind as Arg>::from_wire($arg);)*
                        ControlFlow::Break(
                            module.$name($(<$kind as Arg>::local(&$arg)),*).map(<$ret as Ret>::to_answer),
                        )
                    }
                )*
                other => ControlFlow::Continue(other),
            }
        }
    };
}

listed_calls!(dispatch_listed);
