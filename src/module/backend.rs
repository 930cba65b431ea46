//! What `C_Initialize` makes: the core itself (in-process mode), or a client of the key
//! service (client mode, issue 14), chosen by the `service` setting or `ECM_HSM_SERVICE`.
//!
//! Each export calls the method of the same name on the [`Backend`] it holds; the methods
//! below forward to [`Module`] or to [`Client`], which mirror each other. In client mode the
//! C ABI's argument checks still run in the application's process (they sit above this
//! switch), the mechanism list and info come from the local registry, and everything that
//! needs a key, a token or a PIN goes to the service: the client never makes a `Module`, so
//! no key value, token key or PIN-derived key exists in the application's process.
//!
//! Differences from in-process: the zero-copy cipher path (`Module::cipher_into`) is
//! in-process only ([`Backend::local`]); a `*Init` the service accepted before for the same
//! key, operation and mechanism shape waits for the first step and travels with it (one round
//! trip), so that if the key changed in between (destroyed by another process, a policy
//! applied), the init's error shows at that step (`service/client_operations.rs`).

use cryptoki_sys::*;

use super::{CipherKind, Module, OperationKind, Step, TokenStatus};
use crate::config::Config;
use crate::mechanism::Mechanism;
use crate::mechanism::aes_gcm::{GcmMessageParams, Tag};
use crate::object::{Attribute, AttributeRead};
use crate::policy::SessionView;
use crate::service::{Address, Client};
use crate::session::{Output, OutputBuffer};
use crate::{Error, Result};

// One per process, behind an `Arc`: boxing the core would add a pointer hop to every call.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// The core in this process.
    Local(Module),
    /// A client of the key service.
    Remote(Remote),
}

pub struct Remote {
    client: Client,
    /// The application's own settings (which named the service); the service's are its own.
    config: Config,
}

impl Backend {
    /// The backend the settings ask for.
    pub fn new(config: Config) -> Result<Backend> {
        match &config.service {
            Some(address) => {
                if cfg!(not(target_pointer_width = "64")) {
                    // Handles carry the connection's epoch above bit 48.
                    return Err(Error::Device("client mode needs a 64-bit CK_ULONG".into()));
                }
                let address = Address::parse(address).map_err(|_| {
                    Error::Device(format!("service address {address:?}: expected unix:/absolute/path"))
                })?;
                Ok(Backend::Remote(Remote { client: Client::new(address), config }))
            }
            None => Ok(Backend::Local(Module::new(config)?)),
        }
    }

    /// The core, in in-process mode.
    pub fn local(&self) -> Option<&Module> {
        match self {
            Backend::Local(module) => Some(module),
            Backend::Remote(_) => None,
        }
    }

    pub fn config(&self) -> &Config {
        match self {
            Backend::Local(module) => module.config(),
            Backend::Remote(remote) => &remote.config,
        }
    }

    /// `C_GetTokenInfo`'s status and model, the model naming the token's custody
    /// (`Module::token_model`; in client mode as the service gave it).
    pub fn token_status_and_model(&self, slot: CK_SLOT_ID) -> Result<(TokenStatus, String)> {
        match self {
            Backend::Local(module) => Ok((module.token_status(slot)?, module.token_model(slot)?)),
            Backend::Remote(remote) => remote.client.token_status_and_model(slot),
        }
    }

    /// In client mode: the library talks to a key service.
    pub fn is_client(&self) -> bool {
        matches!(self, Backend::Remote(_))
    }

    /// `C_Finalize`: in-process, drops every session and token; in client mode, closes the
    /// connection, which ends its sessions and login in the service.
    pub(super) fn shut_down(&self) {
        match self {
            Backend::Local(module) => module.shut_down(),
            Backend::Remote(remote) => remote.client.disconnect(),
        }
    }

    /// In the child of a `fork()`, before the backend is leaked (see `module::abandon`).
    pub(super) fn forget_after_fork(&self) {
        if let Backend::Remote(remote) = self {
            remote.client.forget_after_fork();
        }
    }

    /// Runs `step` with the arguments the export could read; if it could not, ends the
    /// session's operation of `kind` (as the standard asks of a failed step) and fails.
    pub fn step_with<A, T>(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OperationKind,
        arguments: Result<A>,
        step: impl FnOnce(&Backend, A) -> Result<T>,
    ) -> Result<T> {
        super::operations::step_or_end(arguments, || self.end_operation(h, kind), |a| step(self, a))
    }

    pub fn end_operation(&self, h: CK_SESSION_HANDLE, kind: OperationKind) {
        match self {
            Backend::Local(module) => module.end_operation(h, kind),
            Backend::Remote(remote) => remote.client.end_operation(h, kind),
        }
    }

    /// How many bytes the next update of the operation `kind` may bring (`None`: no limit),
    /// asked before the caller's buffer is read. In client mode the cap every buffering
    /// operation has: the service, which holds the operation, refuses what its state cannot
    /// take (a round trip per update is not spent asking).
    pub fn update_room(&self, h: CK_SESSION_HANDLE, kind: OperationKind) -> Result<Option<usize>> {
        match self {
            Backend::Local(module) => module.update_room(h, kind),
            Backend::Remote(_) => Ok(match kind {
                OperationKind::Digest | OperationKind::Sign | OperationKind::Verify => None,
                _ => Some(crate::mechanism::secret_buffer::MAX_HELD_INPUT),
            }),
        }
    }

    /// `C_WaitForSlotEvent`: in-process only; the key service carries no slot events yet.
    pub fn wait_for_slot_event(&self, dont_block: bool) -> Result<CK_SLOT_ID> {
        match self {
            Backend::Local(module) => module.wait_for_slot_event(dont_block),
            Backend::Remote(_) => Err(Error::FunctionNotSupported),
        }
    }
}

/// Methods of the same name and signature on `Module` and `Client`, forwarded.
macro_rules! forward {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Backend {
            $(
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Backend::Local(module) => module.$name($($arg),*),
                        Backend::Remote(remote) => remote.client.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

forward! {
    fn slot_list(&self) -> Result<Vec<CK_SLOT_ID>>;
    fn check_slot(&self, slot: CK_SLOT_ID) -> Result<()>;
    fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: [u8; 32]) -> Result<()>;
    fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()>;
    fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()>;
    fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()>;
    fn seed_random(&self, h: CK_SESSION_HANDLE) -> Result<()>;

    fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE>;
    fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()>;
    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()>;
    fn session_view(&self, h: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, SessionView)>;
    fn login(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()>;
    fn login_user(&self, h: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8], name: &[u8]) -> Result<()>;
    fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()>;
    fn session_cancel(&self, h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()>;

    fn create_object(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE>;
    fn copy_object(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE>;
    fn destroy_object(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()>;
    fn object_size(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<usize>;
    fn get_attributes(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, types: &[CK_ATTRIBUTE_TYPE]) -> Result<Vec<AttributeRead>>;
    fn set_attributes(&self, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: &[Attribute]) -> Result<()>;
    fn find_init(&self, h: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()>;
    fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>>;
    fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()>;

    fn generate_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE>;
    fn generate_key_pair(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, public_template: &[Attribute], private_template: &[Attribute]) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)>;
    fn derive_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, base: CK_OBJECT_HANDLE, template: &[Attribute]) -> Result<CK_OBJECT_HANDLE>;
    fn wrap_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, wrapping: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE, buffer: OutputBuffer) -> Result<Output>;
    fn unwrap_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, unwrapping: CK_OBJECT_HANDLE, wrapped: &[u8], template: &[Attribute]) -> Result<CK_OBJECT_HANDLE>;
    fn encapsulate_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, public: CK_OBJECT_HANDLE, template: &[Attribute], buffer: OutputBuffer) -> Result<(Output, Option<CK_OBJECT_HANDLE>)>;
    fn decapsulate_key(&self, h: CK_SESSION_HANDLE, mechanism: &Mechanism, private: CK_OBJECT_HANDLE, template: &[Attribute], ciphertext: &[u8]) -> Result<CK_OBJECT_HANDLE>;

    fn operation_init(&self, h: CK_SESSION_HANDLE, kind: OperationKind, mechanism: Option<&Mechanism>, key: CK_OBJECT_HANDLE) -> Result<()>;
    fn digest_key(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()>;
    fn operation_step(&self, h: CK_SESSION_HANDLE, kind: OperationKind, step: Step<'_>, buffer: OutputBuffer) -> Result<Output>;
    fn verify(&self, h: CK_SESSION_HANDLE, step: Step<'_>, signature: &[u8]) -> Result<()>;
    fn verify_signature_init(&self, h: CK_SESSION_HANDLE, mechanism: Option<&Mechanism>, key: CK_OBJECT_HANDLE, signature: &[u8]) -> Result<()>;
    fn verify_signature(&self, h: CK_SESSION_HANDLE, step: Step<'_>) -> Result<()>;

    fn message_init(&self, h: CK_SESSION_HANDLE, kind: CipherKind, mechanism: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()>;
    fn encrypt_message(&self, h: CK_SESSION_HANDLE, params: &mut GcmMessageParams, aad: &[u8], plaintext: &[u8], buffer: OutputBuffer) -> Result<(Output, Tag)>;
    fn decrypt_message(&self, h: CK_SESSION_HANDLE, params: &GcmMessageParams, tag: &[u8], aad: &[u8], ciphertext: &[u8], buffer: OutputBuffer) -> Result<Output>;
    fn message_final(&self, h: CK_SESSION_HANDLE, kind: CipherKind) -> Result<()>;
}

// Issue 14 item 6 (the admin tool through the service): the calls the `ecm-hsm` CLI makes
// that have no PKCS#11 verb (principals, policy, approvals) and the whole-step cipher the
// envelope format uses, forwarded as above. Every one is already a `Client` method; kept as
// a block of its own for the merge with the generated call list.
forward! {
    fn token_status(&self, slot: CK_SLOT_ID) -> Result<TokenStatus>;
    fn cipher(&self, h: CK_SESSION_HANDLE, kind: CipherKind, step: Step<'_>, buffer: OutputBuffer) -> Result<Output>;
    fn principals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<(String, u32)>>;
    fn set_principal(&self, h: CK_SESSION_HANDLE, name: &str, pin: &[u8], replace: bool) -> Result<()>;
    fn remove_principal(&self, h: CK_SESSION_HANDLE, name: &str) -> Result<()>;
    fn policy(&self, h: CK_SESSION_HANDLE) -> Result<Option<(u64, String)>>;
    fn apply_policy(&self, h: CK_SESSION_HANDLE, text: &str) -> Result<u64>;
    fn approvals(&self, h: CK_SESSION_HANDLE) -> Result<Vec<crate::store::ApprovalRecord>>;
    fn approve_ahead(&self, h: CK_SESSION_HANDLE, request: &super::ApprovalRequest) -> Result<crate::store::ApprovalRecord>;
    fn revoke_approval(&self, h: CK_SESSION_HANDLE, id: i64) -> Result<crate::store::ApprovalRecord>;
}

// Custody of the token key (issue 14 item 2): administration of the token files themselves,
// in-process only. Through the service these answer CKR_FUNCTION_NOT_SUPPORTED: moving a
// token into the service's custody needs the token files and the service key, which only the
// service's host has (run `ecm-hsm token seal-for-service` there, with the service stopped).
impl Backend {
    /// Who can open the token key. In client mode, as the service's model says it
    /// (`Module::token_model`): the service's word, the only one a client can have.
    pub fn token_custody(&self, slot: CK_SLOT_ID) -> Result<crate::token::Custody> {
        match self {
            Backend::Local(module) => module.token_custody(slot),
            Backend::Remote(remote) => {
                let (status, model) = remote.client.token_status_and_model(slot)?;
                if !status.info.flags & CKF_TOKEN_INITIALIZED != 0 {
                    return Err(Error::TokenNotRecognized);
                }
                let service = model.rsplit(' ').next() == Some(super::general::SERVICE_CUSTODY_MODEL);
                Ok(if service { crate::token::Custody::Service } else { crate::token::Custody::Pins })
            }
        }
    }

    pub fn use_service_key(&self, slot: CK_SLOT_ID, key: crate::token::ServiceKey) -> Result<()> {
        self.local().ok_or(Error::FunctionNotSupported)?.use_service_key(slot, key)
    }

    pub fn seal_for_service(
        &self,
        slot: CK_SLOT_ID,
        so_pin: &[u8],
        key: crate::token::ServiceKey,
    ) -> Result<()> {
        self.local().ok_or(Error::FunctionNotSupported)?.seal_for_service(slot, so_pin, key)
    }
}

impl Backend {
    /// Where the tokens are, for messages: the token directory in-process, the service's
    /// address in client mode (its directory is the service's own).
    pub fn describe_tokens(&self) -> String {
        match self {
            Backend::Local(module) => module.config().token_dir.display().to_string(),
            Backend::Remote(remote) => {
                format!("the key service at {}", remote.config.service.as_deref().unwrap_or("?"))
            }
        }
    }
}
