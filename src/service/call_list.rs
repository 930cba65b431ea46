//! The calls of the protocol that carry a `Module` method as it is, listed once: the client's
//! method and the server's dispatch of each are generated from this list ([`listed_calls!`]),
//! so that carrying one more such method is one line here (and its `Call` variant).
//!
//! A line `fn name(arg: Kind, ...) -> Ret = Variant;` says: `Client::name` takes the same
//! arguments as `Module::name` and sends `Call::Variant { arg, ... }` (the variant's fields
//! are named as the arguments); the server calls `Module::name` with them and answers with
//! `Ret`. Each `Kind` says how one argument travels ([`Arg`]): a session or object handle
//! (the client maps its handles to the connection's), a template, a mechanism, a PIN... The
//! calls with more to them (the operations' inits and steps, which the client holds back or
//! answers itself, handles that come back as lists, limits the server applies) are written
//! out in `client.rs`/`client_ops.rs` and `dispatch.rs`.

use cryptoki_sys::*;

use super::client::{Client, Handles};
use super::protocol::*;
use super::wire::*;
use crate::mechanism::Mechanism;
use crate::object::Attribute;
use crate::session::{CipherKind, Output, OutputBuffer};
use crate::store::ApprovalRecord;
use crate::{Error, Result};

/// Calls `$then!` with the list of calls.
macro_rules! listed_calls {
    ($then:ident) => {
        $then! {
            fn check_slot(slot: Plain<u64>) -> Done = CheckSlot;
            fn init_token(slot: Plain<u64>, so_pin: Pin, label: Plain<[u8; 32]>) -> Done = InitToken;
            fn session_cancel(session: SessionHandle, flags: Plain<u64>) -> Done = SessionCancel;
            fn login(session: SessionHandle, user_type: Plain<u64>, pin: Pin) -> Done = Login;
            fn login_user(session: SessionHandle, user_type: Plain<u64>, pin: Pin, name: Text) -> Done = LoginUser;
            fn logout(session: SessionHandle) -> Done = Logout;
            fn init_pin(session: SessionHandle, pin: Pin) -> Done = InitPin;
            fn set_pin(session: SessionHandle, old: Pin, new: Pin) -> Done = SetPin;
            fn seed_random(session: SessionHandle) -> Done = SeedRandom;

            fn create_object(session: SessionHandle, template: Template) -> NewHandle = CreateObject;
            fn copy_object(session: SessionHandle, object: ObjectHandle, template: Template) -> NewHandle = CopyObject;
            fn destroy_object(session: SessionHandle, object: ObjectHandle) -> Done = DestroyObject;
            fn object_size(session: SessionHandle, object: ObjectHandle) -> Size = ObjectSize;
            fn set_attributes(session: SessionHandle, object: ObjectHandle, template: Template) -> Done = SetAttributes;
            fn find_init(session: SessionHandle, template: Template) -> Done = FindInit;
            fn find_final(session: SessionHandle) -> Done = FindFinal;

            fn generate_key(session: SessionHandle, mechanism: Mech, template: Template) -> NewHandle = GenerateKey;
            fn generate_key_pair(session: SessionHandle, mechanism: Mech, public: Template, private: Template) -> NewPair = GenerateKeyPair;
            fn derive_key(session: SessionHandle, mechanism: Mech, base: KeyHandle, template: Template) -> NewHandle = DeriveKey;
            fn wrap_key(session: SessionHandle, mechanism: Mech, wrapping: WrappingKeyHandle, key: KeyHandle, buffer: Buffer) -> Out = WrapKey;
            fn unwrap_key(session: SessionHandle, mechanism: Mech, unwrapping: UnwrappingKeyHandle, wrapped: Data, template: Template) -> NewHandle = UnwrapKey;
            fn decapsulate_key(session: SessionHandle, mechanism: Mech, private: KeyHandle, template: Template, ciphertext: Data) -> NewHandle = DecapsulateKey;

            fn digest_key(session: SessionHandle, key: KeyHandle) -> Done = DigestKey;
            fn message_init(session: SessionHandle, kind: Cipher, mechanism: Mech, key: KeyHandle) -> Done = MessageInit;
            fn message_final(session: SessionHandle, kind: Cipher) -> Done = MessageFinal;

            fn principals(session: SessionHandle) -> PrincipalList = Principals;
            fn set_principal(session: SessionHandle, name: Name, pin: Pin, replace: Plain<bool>) -> Done = SetPrincipal;
            fn remove_principal(session: SessionHandle, name: Name) -> Done = RemovePrincipal;
            fn apply_policy(session: SessionHandle, text: Name) -> PolicyVersion = ApplyPolicy;
            fn policy(session: SessionHandle) -> CurrentPolicy = Policy;
            fn approvals(session: SessionHandle) -> ApprovalList = Approvals;
            fn revoke_approval(session: SessionHandle, id: Plain<i64>) -> OneApproval = RevokeApproval;
        }
    };
}
pub(crate) use listed_calls;

/// The names the list uses, for the files that expand it.
pub mod kinds {
    pub use super::{
        ApprovalList, Buffer, Cipher, CurrentPolicy, Data, Done, KeyHandle, Mech, Name, NewHandle, NewPair,
        ObjectHandle, OneApproval, Out, Pin, Plain, PolicyVersion, PrincipalList, SessionHandle, Size,
        Template, Text, UnwrappingKeyHandle, WrappingKeyHandle,
    };
}

/// How one argument travels: as the application's module takes it (`Local`), on the wire
/// (`Wire`), and as the server holds it to call its module (`Core`).
pub trait Arg {
    type Local<'a>;
    type Wire;
    type Core;
    /// The client's side; `handles` maps the application's handles to the connection's.
    fn to_wire(local: Self::Local<'_>, handles: &Handles) -> Result<Self::Wire>;
    fn from_wire(wire: Self::Wire) -> Self::Core;
    /// The server's side: the argument as its module's method takes it.
    fn local(core: &Self::Core) -> Self::Local<'_>;
}

/// What a call answers: as the module returns it (`Local`) and as an [`Answer`].
pub trait Ret {
    type Local;
    fn to_answer(local: Self::Local) -> Answer;
    fn from_answer(client: &Client, answer: Answer) -> Result<Self::Local>;
}

/// A number, flag or fixed array that travels as it is.
pub struct Plain<T>(std::marker::PhantomData<T>);

impl<T: Copy> Arg for Plain<T> {
    type Local<'a> = T;
    type Wire = T;
    type Core = T;
    fn to_wire(local: T, _: &Handles) -> Result<T> {
        Ok(local)
    }
    fn from_wire(wire: T) -> T {
        wire
    }
    fn local(core: &T) -> T {
        *core
    }
}

/// Handles of the application, mapped to the connection's, each refused with its own code
/// when it is of an earlier connection.
macro_rules! handle_kind {
    ($($(#[$doc:meta])* $kind:ident => $map:expr;)*) => {$(
        $(#[$doc])*
        pub struct $kind;

        impl Arg for $kind {
            type Local<'a> = u64;
            type Wire = u64;
            type Core = u64;
            fn to_wire(local: u64, handles: &Handles) -> Result<u64> {
                $map(handles, local)
            }
            fn from_wire(wire: u64) -> u64 {
                wire
            }
            fn local(core: &u64) -> u64 {
                *core
            }
        }
    )*};
}

handle_kind! {
    SessionHandle => |c: &Handles, h| c.session(h);
    ObjectHandle => |c: &Handles, h| c.object(h);
    KeyHandle => |c: &Handles, h| c.key(h);
    WrappingKeyHandle => |c: &Handles, h| c.remote(h, Error::WrappingKeyHandleInvalid);
    UnwrappingKeyHandle => |c: &Handles, h| c.remote(h, Error::UnwrappingKeyHandleInvalid);
}

/// Arguments that travel without handles, each converted by three expressions: `to_wire`
/// makes the wire value from the application's, `from_wire` the server's value from the wire
/// one, and `local` lends the server's value as its module's method takes it.
macro_rules! converted_arg {
    ($($(#[$doc:meta])* $kind:ident<$lt:lifetime>($local:ty, $wire:ty, $core:ty) {
        to_wire($l:ident) = $to:expr;
        from_wire($w:ident) = $from:expr;
        local($c:ident) = $lend:expr;
    })*) => {$(
        $(#[$doc])*
        pub struct $kind;

        impl Arg for $kind {
            type Local<$lt> = $local;
            type Wire = $wire;
            type Core = $core;
            fn to_wire($l: Self::Local<'_>, _: &Handles) -> Result<$wire> {
                Ok($to)
            }
            fn from_wire($w: $wire) -> $core {
                $from
            }
            fn local($c: &$core) -> Self::Local<'_> {
                $lend
            }
        }
    )*};
}

converted_arg! {
    /// Bytes that may be secret (PINs): zeroized wherever they are held.
    Pin<'a>(&'a [u8], Secret, Secret) {
        to_wire(local) = Secret(local.to_vec());
        from_wire(wire) = wire;
        local(core) = &core.0;
    }
    /// Bytes that are not secret (a principal's name in `C_LoginUser`, a wrapped key).
    Text<'a>(&'a [u8], Bytes, Bytes) {
        to_wire(local) = Bytes(local.to_vec());
        from_wire(wire) = wire;
        local(core) = &core.0;
    }
    /// A string (a principal's name, a policy's text).
    Name<'a>(&'a str, String, String) {
        to_wire(local) = local.into();
        from_wire(wire) = wire;
        local(core) = core;
    }
    Template<'a>(&'a [Attribute], Vec<WireAttribute>, Vec<Attribute>) {
        to_wire(local) = attributes_to_wire(local);
        from_wire(wire) = attributes_from_wire(wire);
        local(core) = core;
    }
    Mech<'a>(&'a Mechanism, WireMechanism, Mechanism) {
        to_wire(local) = mechanism_to_wire(local);
        from_wire(wire) = mechanism_from_wire(wire);
        local(core) = core;
    }
    Buffer<'a>(OutputBuffer, WireBuffer, OutputBuffer) {
        to_wire(local) = buffer_to_wire(local);
        from_wire(wire) = buffer_from_wire(wire);
        local(core) = *core;
    }
    Cipher<'a>(CipherKind, WireCipher, CipherKind) {
        to_wire(local) = cipher_to_wire(local);
        from_wire(wire) = cipher_from_wire(wire);
        local(core) = *core;
    }
}

/// Bytes that are not secret, as the data of a call names them.
pub type Data = Text;

/// Answers of one shape: `$local` from and to `Answer::$variant`.
macro_rules! answer_kind {
    ($($(#[$doc:meta])* $kind:ident($local:ty) = $to:expr, $from:pat => $back:expr;)*) => {$(
        $(#[$doc])*
        pub struct $kind;

        impl Ret for $kind {
            type Local = $local;
            #[allow(clippy::redundant_closure_call)]
            fn to_answer(local: $local) -> Answer {
                $to(local)
            }
            fn from_answer(client: &Client, answer: Answer) -> Result<$local> {
                match answer {
                    #[allow(clippy::redundant_closure_call)]
                    $from => ($back)(client),
                    _ => Err(unexpected()),
                }
            }
        }
    )*};
}

answer_kind! {
    Done(()) = |()| Answer::Done, Answer::Done => |_| Ok(());
    /// A handle of the connection, given to the application as its own.
    NewHandle(CK_OBJECT_HANDLE) = Answer::Handle, Answer::Handle(h) => |client: &Client| client.local(h);
    NewPair((CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)) =
        |(public, private)| Answer::KeyPair { public, private },
        Answer::KeyPair { public, private } =>
            |client: &Client| Ok((client.local(public)?, client.local(private)?));
    Size(usize) = |n: usize| Answer::Size(n as u64), Answer::Size(n) => |_| to_usize(n);
    Out(Output) = |o| Answer::Output(output_to_wire(o)), Answer::Output(o) => |_| output_from_wire(o);
    PrincipalList(Vec<(String, u32)>) = Answer::Principals, Answer::Principals(p) => |_| Ok(p);
    PolicyVersion(u64) = Answer::PolicyVersion, Answer::PolicyVersion(v) => |_| Ok(v);
    CurrentPolicy(Option<(u64, String)>) = Answer::Policy, Answer::Policy(p) => |_| Ok(p);
    ApprovalList(Vec<ApprovalRecord>) =
        |list: Vec<ApprovalRecord>| Answer::Approvals(list.into_iter().map(approval_to_wire).collect()),
        Answer::Approvals(list) => |_| Ok(list.into_iter().map(approval_from_wire).collect());
    OneApproval(ApprovalRecord) =
        |a| Answer::Approval(approval_to_wire(a)),
        Answer::Approval(a) => |_| Ok(approval_from_wire(a));
}
