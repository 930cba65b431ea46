//! The server's side of each call: one `match` from a [`Call`] to the core `Module` method of
//! the same name, and its answer. The connection's own module (see `server.rs`) is the only
//! one a call can reach, so a client names only its own sessions and objects.

use super::protocol::{Answer, Call, Secret, WireTokenStatus};
use super::wire::*;
use crate::module::Module;
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
    use Answer::{Done, Handle, Output as Out};
    Ok(match call {
        // Answered by the connection, which knows the peer.
        Call::Peer => return Err(Error::Internal("peer asked of the module")),
        Call::SlotList => Answer::Slots(module.slot_list()?),
        Call::CheckSlot { slot } => module.check_slot(slot).map(|()| Done)?,
        Call::TokenStatus { slot } => {
            let status = module.token_status(slot)?;
            Answer::TokenStatus(WireTokenStatus {
                label: status.info.label,
                serial: status.info.serial,
                flags: status.info.flags,
                session_count: status.session_count as u64,
                rw_session_count: status.rw_session_count as u64,
                model: module.config().model().into(),
            })
        }
        Call::InitToken { slot, so_pin, label } => {
            module.init_token(slot, &so_pin.0, label).map(|()| Done)?
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
        Call::SessionCancel { session, flags } => module.session_cancel(session, flags).map(|()| Done)?,
        Call::Login { session, user_type, pin } => module.login(session, user_type, &pin.0).map(|()| Done)?,
        Call::LoginUser { session, user_type, pin, name } => {
            module.login_user(session, user_type, &pin.0, &name.0).map(|()| Done)?
        }
        Call::Logout { session } => module.logout(session).map(|()| Done)?,
        Call::InitPin { session, pin } => module.init_pin(session, &pin.0).map(|()| Done)?,
        Call::SetPin { session, old, new } => module.set_pin(session, &old.0, &new.0).map(|()| Done)?,

        Call::CreateObject { session, template } => {
            Handle(module.create_object(session, &attributes_from_wire(template))?)
        }
        Call::CopyObject { session, object, template } => {
            Handle(module.copy_object(session, object, &attributes_from_wire(template))?)
        }
        Call::DestroyObject { session, object } => module.destroy_object(session, object).map(|()| Done)?,
        Call::ObjectSize { session, object } => Answer::Size(module.object_size(session, object)? as u64),
        Call::GetAttributes { session, object, kinds } => {
            let reads = module.get_attributes(session, object, &kinds)?;
            Answer::Reads(reads_to_wire(&kinds, reads))
        }
        Call::SetAttributes { session, object, template } => {
            module.set_attributes(session, object, &attributes_from_wire(template)).map(|()| Done)?
        }
        Call::FindInit { session, template } => {
            module.find_init(session, &attributes_from_wire(template)).map(|()| Done)?
        }
        Call::FindNext { session, max } => {
            Answer::Handles(module.find_next(session, usize::try_from(max).unwrap_or(usize::MAX))?)
        }
        Call::FindFinal { session } => module.find_final(session).map(|()| Done)?,

        Call::GenerateKey { session, mechanism, template } => Handle(module.generate_key(
            session,
            &mechanism_from_wire(mechanism),
            &attributes_from_wire(template),
        )?),
        Call::GenerateKeyPair { session, mechanism, public, private } => {
            let (public, private) = module.generate_key_pair(
                session,
                &mechanism_from_wire(mechanism),
                &attributes_from_wire(public),
                &attributes_from_wire(private),
            )?;
            Answer::KeyPair { public, private }
        }
        Call::DeriveKey { session, mechanism, base, template } => Handle(module.derive_key(
            session,
            &mechanism_from_wire(mechanism),
            base,
            &attributes_from_wire(template),
        )?),
        Call::WrapKey { session, mechanism, wrapping, key, buffer } => Out(output_to_wire(module.wrap_key(
            session,
            &mechanism_from_wire(mechanism),
            wrapping,
            key,
            buffer_from_wire(buffer),
        )?)),
        Call::UnwrapKey { session, mechanism, unwrapping, wrapped, template } => Handle(module.unwrap_key(
            session,
            &mechanism_from_wire(mechanism),
            unwrapping,
            &wrapped.0,
            &attributes_from_wire(template),
        )?),

        Call::CipherInit { session, kind, mechanism, key } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.cipher_init(session, cipher_from_wire(kind), mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::SignInit { session, mechanism, key } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.sign_init(session, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::VerifyInit { session, mechanism, key } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.verify_init(session, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::RecoverInit { session, kind, mechanism, key } => {
            let kind = operation_from_wire(kind);
            if !matches!(
                kind,
                crate::session::OperationKind::SignRecover | crate::session::OperationKind::VerifyRecover
            ) {
                return Err(Error::ArgumentsBad);
            }
            let mechanism = mechanism.map(mechanism_from_wire);
            module.recover_init(session, kind, mechanism.as_ref(), key).map(|()| Done)?
        }
        Call::DigestInit { session, mechanism } => {
            let mechanism = mechanism.map(mechanism_from_wire);
            module.digest_init(session, mechanism.as_ref()).map(|()| Done)?
        }
        Call::Step { session, kind, step, buffer } => {
            let kind = operation_from_wire(kind);
            if kind == crate::session::OperationKind::Verify {
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
        Call::EndOperation { session, kind } => {
            module.end_operation(session, operation_from_wire(kind));
            Done
        }
        Call::DigestKey { session, key } => module.digest_key(session, key).map(|()| Done)?,

        Call::MessageInit { session, kind, mechanism, key } => module
            .message_init(session, cipher_from_wire(kind), &mechanism_from_wire(mechanism), key)
            .map(|()| Done)?,
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
                tag: super::protocol::Bytes(tag.to_vec()),
                iv: super::protocol::Bytes(params.iv),
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
        Call::MessageFinal { session, kind } => {
            module.message_final(session, cipher_from_wire(kind)).map(|()| Done)?
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
        Call::SeedRandom { session } => module.seed_random(session).map(|()| Done)?,

        Call::Principals { session } => Answer::Principals(module.principals(session)?),
        Call::SetPrincipal { session, name, pin, replace } => {
            module.set_principal(session, &name, &pin.0, replace).map(|()| Done)?
        }
        Call::RemovePrincipal { session, name } => module.remove_principal(session, &name).map(|()| Done)?,
        Call::ApplyPolicy { session, text } => Answer::PolicyVersion(module.apply_policy(session, &text)?),
        Call::Policy { session } => Answer::Policy(module.policy(session)?),
        Call::ApproveAhead { session, request } => Answer::Approval(approval_to_wire(
            module.approve_ahead(session, &approval_request_from_wire(request))?,
        )),
        Call::Approvals { session } => {
            Answer::Approvals(module.approvals(session)?.into_iter().map(approval_to_wire).collect())
        }
        Call::RevokeApproval { session, id } => {
            Answer::Approval(approval_to_wire(module.revoke_approval(session, id)?))
        }
    })
}

/// The sessions open on the connection's module, over all its slots.
fn open_sessions(module: &Module) -> usize {
    let Ok(slots) = module.slot_list() else {
        return 0;
    };
    slots.iter().filter_map(|s| module.token_status(*s).ok()).map(|s| s.session_count).sum()
}
