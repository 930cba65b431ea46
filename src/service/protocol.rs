//! The messages of the key service, version 3: what travels in each frame.
//!
//! These types are the wire contract, kept apart from the core's own types (which may change
//! shape without changing the protocol): `wire.rs` converts between the two. Every value is a
//! plain serde type encoded with postcard; byte strings go through `serde_bytes` so that a
//! 1 KiB plaintext is one length and one copy, not a thousand elements.
//!
//! A connection starts with [`Hello`] / [`HelloReply`]; after that each frame from the client
//! is a [`Request`] and each frame from the server the [`Response`] to it, in order.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The first bytes of a client's hello, so that a stray connection (another protocol, a port
/// scanner) is told apart from a client of another version.
pub const MAGIC: [u8; 8] = *b"ECMHSM\0\0";

/// The protocol versions this build speaks, oldest first. Version 2 changed the encoding of
/// ML-DSA's parameter (`SignContext` gained the hash of HashML-DSA) and added EdDSA's, so a
/// version-1 peer is refused at the hello rather than misreading a signature's parameter.
/// Version 3 added the calls of PKCS#11 3.2's verification with the signature first
/// ([`Call::VerifySignatureInit`], [`Call::VerifySignature`]): a version-2 service would
/// take either for garbage and drop the connection in the middle of an operation, so a
/// version-2 peer is refused at the hello instead.
pub const VERSIONS: [u16; 1] = [3];

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 8],
    /// The versions the client speaks; the server picks the newest it speaks too.
    pub versions: Vec<u16>,
}

/// The server's answer to [`Hello`]. After `Refused` the server closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Accepted {
        version: u16,
        /// Limits of this connection, so that a client can refuse locally what the server
        /// would refuse (an oversized frame) instead of losing the connection over it.
        limits: WireLimits,
    },
    Refused {
        /// The versions the server speaks.
        supported: Vec<u16>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLimits {
    pub max_frame: u64,
    pub max_sessions: u64,
}

/// Bytes that are not secret (ciphertext, signatures, labels of the wire).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

/// Bytes that may be secret (PINs, plaintext, attribute values, random output): zeroized when
/// dropped and never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// One frame of calls. The server runs them in order in the connection's thread and stops at
/// the first that fails, so that a client can send a `*Init` it has checked locally together
/// with the operation's first step: one round trip where the C API makes two calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client and repeated in the response: requests are answered in order
    /// today, and the id lets a later version answer them out of order.
    pub id: u64,
    pub calls: Vec<Call>,
}

/// The answers to a [`Request`]'s calls, one per call run: all succeeded but maybe the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub replies: Vec<Result<Answer, WireError>>,
}

/// A template entry. An attribute array (`CKA_WRAP_TEMPLATE`, ...) is carried as its typed
/// entries rather than the core's own byte encoding of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAttribute {
    pub kind: u64,
    pub value: WireValue,
}

/// The types do not recurse: an array's entries are [`FlatAttribute`]s, whose values are
/// bytes. A recursive type would let one frame of nested arrays exhaust the server thread's
/// stack while it is decoded; an array inside an array (which PKCS#11 allows, and no known
/// caller uses) travels as the inner array's bytes in the core's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireValue {
    Bytes(Secret),
    Array(Vec<FlatAttribute>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatAttribute {
    pub kind: u64,
    pub value: Secret,
}

/// One attribute as `C_GetAttributeValue` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireRead {
    Value(WireValue),
    Sensitive,
    Invalid,
}

/// A mechanism with its parameter decoded, every structure of the core carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMechanism {
    pub kind: u64,
    pub params: WireParams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireParams {
    None,
    Gcm {
        iv: Bytes,
        aad: Bytes,
        tag_bits: u64,
    },
    Iv(Bytes),
    Ctr {
        counter_bits: u64,
        counter_block: [u8; 16],
    },
    Pss {
        hash: u64,
        mgf: u64,
        salt_len: u64,
    },
    Oaep {
        hash: u64,
        mgf: u64,
        label: Bytes,
    },
    Ecdh {
        kdf: u64,
        shared_data: Bytes,
        public_data: Bytes,
    },
    Opaque(Bytes),
    /// The derivation parameters (plain data: no key value travels in them).
    Data(Bytes),
    CbcData(crate::mechanism::derive::CbcDataParams),
    Hkdf(crate::mechanism::hkdf::HkdfParams),
    Kbkdf(crate::mechanism::sp800_108::KbkdfParams),
    /// `CK_SIGN_ADDITIONAL_CONTEXT` (CKM_ML_DSA, PKCS#11 3.2).
    SignContext(crate::mechanism::ml_dsa::SignContext),
    /// `CK_EDDSA_PARAMS` (CKM_EDDSA: Ed25519ctx, Ed25519ph), appended.
    Eddsa(crate::mechanism::eddsa::EddsaParams),
}

/// `CK_GCM_MESSAGE_PARAMS` of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireGcmMessage {
    pub iv: Bytes,
    pub fixed_bits: u64,
    pub generator: u64,
    pub tag_bits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireCipher {
    Encrypt,
    Decrypt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireOperation {
    Encrypt,
    Decrypt,
    Digest,
    Sign,
    Verify,
    SignRecover,
    VerifyRecover,
}

/// A step of a multi-part operation; the input may be plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireStep {
    Single(Secret),
    Update(Secret),
    Final,
}

/// The caller's output buffer: absent (a length query) or of this many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireBuffer {
    Query,
    Capacity(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireOutput {
    Length(u64),
    Bytes(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTokenStatus {
    pub label: [u8; 32],
    pub serial: String,
    pub flags: u64,
    pub session_count: u64,
    pub rw_session_count: u64,
    /// The service's `C_GetTokenInfo` model (a token on test settings says so).
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireManagementOp {
    Destroy,
    Modify,
    Rotate,
    Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireApprovalTarget {
    Key(u64),
    Policy(String),
    /// A `modify` approval: the key and the attributes of the change it serves.
    Change {
        key: u64,
        attributes: Vec<WireAttribute>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireApprovalRequest {
    pub principal: String,
    pub op: WireManagementOp,
    pub target: WireApprovalTarget,
    pub expires_in_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireApproval {
    pub id: i64,
    pub approver: String,
    pub principal: String,
    pub operation: String,
    pub key: String,
    pub key_label: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub consumed_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// A failed call: the `CK_RV` the C ABI answers, with what the core's error carries beyond it
/// that a caller may see (the length a short buffer needed, a policy's refusal). Device and
/// internal faults carry no text: it stays in the service's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    Code(u64),
    BufferTooSmall { needed: u64 },
    PolicyInvalid(String),
}

/// The calls, one per public method of the core's `Module` that a client may make. Session
/// and object handles are the service's (of this connection's module). Left out on purpose:
/// `audit_key` (the audit key is the service's alone) and the mechanism list and info (the
/// client answers them from its own copy of the registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// The connection's peer as the server sees it (`SO_PEERCRED`): what the audit names.
    Peer,
    SlotList,
    CheckSlot {
        slot: u64,
    },
    TokenStatus {
        slot: u64,
    },
    InitToken {
        slot: u64,
        so_pin: Secret,
        label: [u8; 32],
    },
    OpenSession {
        slot: u64,
        flags: u64,
    },
    CloseSession {
        session: u64,
    },
    /// `C_GetSessionInfo`: the session's slot, login state and read/write flag.
    SessionView {
        session: u64,
    },
    CloseAllSessions {
        slot: u64,
    },
    SessionCancel {
        session: u64,
        flags: u64,
    },
    Login {
        session: u64,
        user_type: u64,
        pin: Secret,
    },
    LoginUser {
        session: u64,
        user_type: u64,
        pin: Secret,
        name: Bytes,
    },
    Logout {
        session: u64,
    },
    InitPin {
        session: u64,
        pin: Secret,
    },
    SetPin {
        session: u64,
        old: Secret,
        new: Secret,
    },

    CreateObject {
        session: u64,
        template: Vec<WireAttribute>,
    },
    CopyObject {
        session: u64,
        object: u64,
        template: Vec<WireAttribute>,
    },
    DestroyObject {
        session: u64,
        object: u64,
    },
    ObjectSize {
        session: u64,
        object: u64,
    },
    GetAttributes {
        session: u64,
        object: u64,
        kinds: Vec<u64>,
    },
    SetAttributes {
        session: u64,
        object: u64,
        template: Vec<WireAttribute>,
    },
    FindInit {
        session: u64,
        template: Vec<WireAttribute>,
    },
    FindNext {
        session: u64,
        max: u64,
    },
    FindFinal {
        session: u64,
    },

    GenerateKey {
        session: u64,
        mechanism: WireMechanism,
        template: Vec<WireAttribute>,
    },
    GenerateKeyPair {
        session: u64,
        mechanism: WireMechanism,
        public: Vec<WireAttribute>,
        private: Vec<WireAttribute>,
    },
    DeriveKey {
        session: u64,
        mechanism: WireMechanism,
        base: u64,
        template: Vec<WireAttribute>,
    },
    WrapKey {
        session: u64,
        mechanism: WireMechanism,
        wrapping: u64,
        key: u64,
        buffer: WireBuffer,
    },
    UnwrapKey {
        session: u64,
        mechanism: WireMechanism,
        unwrapping: u64,
        wrapped: Bytes,
        template: Vec<WireAttribute>,
    },

    /// `C_EncryptInit`/`C_DecryptInit`; no mechanism ends the active operation.
    CipherInit {
        session: u64,
        kind: WireCipher,
        mechanism: Option<WireMechanism>,
        key: u64,
    },
    SignInit {
        session: u64,
        mechanism: Option<WireMechanism>,
        key: u64,
    },
    VerifyInit {
        session: u64,
        mechanism: Option<WireMechanism>,
        key: u64,
    },
    /// `kind` is `SignRecover` or `VerifyRecover`.
    RecoverInit {
        session: u64,
        kind: WireOperation,
        mechanism: Option<WireMechanism>,
        key: u64,
    },
    DigestInit {
        session: u64,
        mechanism: Option<WireMechanism>,
    },
    /// A step of an operation that produces output (all but verification).
    Step {
        session: u64,
        kind: WireOperation,
        step: WireStep,
        buffer: WireBuffer,
    },
    /// A step of a verification: `Single` and `Final` take the signature.
    Verify {
        session: u64,
        step: WireStep,
        signature: Bytes,
    },
    EndOperation {
        session: u64,
        kind: WireOperation,
    },
    DigestKey {
        session: u64,
        key: u64,
    },

    MessageInit {
        session: u64,
        kind: WireCipher,
        mechanism: WireMechanism,
        key: u64,
    },
    EncryptMessage {
        session: u64,
        params: WireGcmMessage,
        aad: Bytes,
        plaintext: Secret,
        buffer: WireBuffer,
    },
    DecryptMessage {
        session: u64,
        params: WireGcmMessage,
        tag: Bytes,
        aad: Bytes,
        ciphertext: Bytes,
        buffer: WireBuffer,
    },
    MessageFinal {
        session: u64,
        kind: WireCipher,
    },

    GenerateRandom {
        session: u64,
        len: u64,
    },
    SeedRandom {
        session: u64,
    },

    Principals {
        session: u64,
    },
    SetPrincipal {
        session: u64,
        name: String,
        pin: Secret,
        replace: bool,
    },
    RemovePrincipal {
        session: u64,
        name: String,
    },
    ApplyPolicy {
        session: u64,
        text: String,
    },
    Policy {
        session: u64,
    },
    ApproveAhead {
        session: u64,
        request: WireApprovalRequest,
    },
    Approvals {
        session: u64,
    },
    RevokeApproval {
        session: u64,
        id: i64,
    },

    // --- PKCS#11 3.2 key encapsulation (ML-KEM); appended so earlier calls keep their tags.
    EncapsulateKey {
        session: u64,
        mechanism: WireMechanism,
        public: u64,
        template: Vec<WireAttribute>,
        buffer: WireBuffer,
    },
    DecapsulateKey {
        session: u64,
        mechanism: WireMechanism,
        private: u64,
        template: Vec<WireAttribute>,
        ciphertext: Bytes,
    },

    // --- PKCS#11 3.2 verification with the signature first (version 3); appended likewise.
    /// `C_VerifySignatureInit`: the session's verification, begun with its signature; no
    /// mechanism ends the active verification.
    VerifySignatureInit {
        session: u64,
        mechanism: Option<WireMechanism>,
        key: u64,
        signature: Bytes,
    },
    /// A step of a verification begun by `VerifySignatureInit`, which checks its signature.
    VerifySignature {
        session: u64,
        step: WireStep,
    },
}

/// What a call that succeeded returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Done,
    Slots(Vec<u64>),
    TokenStatus(WireTokenStatus),
    Handle(u64),
    Handles(Vec<u64>),
    KeyPair {
        public: u64,
        private: u64,
    },
    Size(u64),
    Reads(Vec<WireRead>),
    Output(WireOutput),
    /// `C_EncryptMessage`: the ciphertext, the tag, and the IV used (generated or given).
    Sealed {
        output: WireOutput,
        tag: Bytes,
        iv: Bytes,
    },
    Random(Secret),
    Principals(Vec<(String, u32)>),
    PolicyVersion(u64),
    Policy(Option<(u64, String)>),
    Approval(WireApproval),
    Approvals(Vec<WireApproval>),
    Peer {
        uid: u32,
        gid: u32,
        pid: i32,
    },
    SessionView {
        slot: u64,
        login: WireLogin,
        read_write: bool,
        principal: bool,
    },
    /// `C_EncapsulateKey`: the ciphertext (or its length) and the new key, if one was made.
    Encapsulated {
        output: WireOutput,
        key: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireLogin {
    Public,
    User,
    SecurityOfficer,
}
