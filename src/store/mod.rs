//! Persistence of one token, behind the [`TokenStore`] trait.
//!
//! The store keeps bytes; it does not know which are secret. Callers seal secret attribute
//! values (and the token key) before handing them down, so the store's file never holds a
//! secret in clear. Every change goes through [`TokenStore::write`], one transaction that is
//! either committed whole or not at all.
//!
//! Nothing of an old credential stays readable: the SQLite store runs with `secure_delete`
//! (freed cells and pages are overwritten with zeros), and the token layer checkpoints the
//! write-ahead log ([`TokenStore::checkpoint`]) after a change of PIN, a removal of a
//! principal and a change of custody.

pub mod files;
pub mod schema;
pub mod sqlite;

use crate::Result;

pub use sqlite::SqliteStore;

/// One attribute as stored: `sealed` values are token-key ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttribute {
    pub kind: u64,
    pub value: Vec<u8>,
    pub sealed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub id: i64,
    pub attributes: Vec<StoredAttribute>,
}

/// What identifies an object to a search, read without its other rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNames {
    /// The object's row id.
    pub id: i64,
    /// Its `CKA_LABEL` (empty if it has none).
    pub label: Vec<u8>,
    /// Its `CKA_ID`, if it has one.
    pub cka_id: Option<Vec<u8>>,
}

/// What is stored of one PIN: its KDF's salt and cost, and under [`KeyCustody::Pins`] the
/// token key sealed under the KDF's output, under [`KeyCustody::Service`] a verifier of the
/// PIN (see `crate::token::custody`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedTokenKey {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub sealed_key: Vec<u8>,
}

/// Who can open the token key (see `crate::token::custody`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCustody {
    /// Each PIN: the token key is sealed under a KDF of every PIN.
    Pins,
    /// The key service alone: the token key is sealed under a key derived from the service
    /// key, and the PIN records are verifiers.
    Service { sealed_key: Vec<u8> },
}

/// The token's own row: identity, custody of the token key, PIN records and failure counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub slot_id: u64,
    pub label: [u8; 32],
    pub serial: String,
    /// Changes on every `C_InitToken`, so that other processes notice a re-initialization.
    pub epoch: u64,
    pub so_pin: WrappedTokenKey,
    pub user_pin: Option<WrappedTokenKey>,
    pub so_failures: u32,
    pub user_failures: u32,
    pub custody: KeyCustody,
}

/// A principal: a named user of the token with its own PIN record (see [`WrappedTokenKey`])
/// and its own count of failed logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub name: String,
    pub pin: WrappedTokenKey,
    pub failures: u32,
}

/// An approval recorded ahead (`ecm-hsm approve`): `approver` lets `principal` do
/// `operation` (`destroy`, `modify`, `rotate`, `policy`) once on `key` until `expires_at`.
/// Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// Assigned by the store (never reused); 0 before it is stored.
    pub id: i64,
    pub approver: String,
    pub principal: String,
    pub operation: String,
    /// The key's `CKA_UNIQUE_ID`, or for `policy` the SHA-256 (hex) of the new canonical document.
    pub key: String,
    /// The key's label when it was approved, for display only.
    pub key_label: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub consumed_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// The changes one transaction may make.
pub trait StoreWriter {
    fn record(&mut self) -> Result<TokenRecord>;
    /// The token's epoch ([`TokenRecord::epoch`]) as this transaction sees it: one column,
    /// for the check every change made under a login starts with (`crate::token::epoch`).
    fn epoch(&mut self) -> Result<u64>;
    fn save_record(&mut self, record: &TokenRecord) -> Result<()>;
    /// Creates an empty object and returns its id (never reused).
    fn insert_object(&mut self) -> Result<i64>;
    /// Replaces all attributes of object `id`.
    fn put_attributes(&mut self, id: i64, attributes: &[StoredAttribute]) -> Result<()>;
    /// Adds or replaces the given attributes of object `id`, leaving the others as they are.
    fn update_attributes(&mut self, id: i64, attributes: &[StoredAttribute]) -> Result<()>;
    /// Deletes object `id`; false if it did not exist (another process got there first).
    fn delete_object(&mut self, id: i64) -> Result<bool>;
    fn object_exists(&mut self, id: i64) -> Result<bool>;
    fn delete_all_objects(&mut self) -> Result<()>;
    /// Every object, read inside this transaction (what re-sealing them all needs).
    fn objects(&mut self) -> Result<Vec<StoredObject>>;
    fn principal(&mut self, name: &str) -> Result<Option<PrincipalRecord>>;
    /// Adds or replaces a principal.
    fn save_principal(&mut self, principal: &PrincipalRecord) -> Result<()>;
    /// Removes a principal; false if there was none of that name.
    fn delete_principal(&mut self, name: &str) -> Result<bool>;
    fn delete_all_principals(&mut self) -> Result<()>;
    /// The stored policy's version and document, if any.
    fn policy(&mut self) -> Result<Option<(u64, String)>>;
    fn save_policy(&mut self, version: u64, document: &str) -> Result<()>;
    fn delete_policy(&mut self) -> Result<()>;
    /// Stores a new approval (its `id` is ignored) and returns its id.
    fn insert_approval(&mut self, approval: &ApprovalRecord) -> Result<i64>;
    /// Every approval bound to exactly this principal, operation and key, whatever its state.
    fn approvals_for(&mut self, principal: &str, operation: &str, key: &str) -> Result<Vec<ApprovalRecord>>;
    /// Marks a pending approval used at `now`; false if it was not pending (used, revoked or
    /// expired, or no such id).
    fn consume_approval(&mut self, id: i64, now: u64) -> Result<bool>;
    /// Revokes the pending approvals `which` names; how many were revoked.
    fn revoke_approvals(&mut self, which: ApprovalsOf<'_>, now: u64) -> Result<usize>;
    fn delete_all_approvals(&mut self) -> Result<()>;
}

/// Which approvals [`StoreWriter::revoke_approvals`] revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalsOf<'a> {
    Id(i64),
    /// Given by or to this principal (when it is removed).
    Principal(&'a str),
}

pub trait TokenStore: Send {
    fn record(&mut self) -> Result<TokenRecord>;
    /// True if another connection (another process) committed a change since the last call.
    fn changed_elsewhere(&mut self) -> Result<bool>;
    fn load_objects(&mut self) -> Result<Vec<StoredObject>>;
    /// Every object's id, `CKA_LABEL` and `CKA_ID`, by id: what a cache needs to know an
    /// object exists and find it by label or id without reading its other rows.
    fn object_names(&mut self) -> Result<Vec<ObjectNames>>;
    /// The objects among `ids` that exist, in one read transaction.
    fn load_objects_by_id(&mut self, ids: &[i64]) -> Result<Vec<StoredObject>>;
    /// Every principal, by name.
    fn principals(&mut self) -> Result<Vec<PrincipalRecord>>;
    /// The stored policy's version and document, if any.
    fn policy(&mut self) -> Result<Option<(u64, String)>>;
    /// Every approval recorded ahead, oldest first.
    fn approvals(&mut self) -> Result<Vec<ApprovalRecord>>;
    /// Runs `change` in one transaction that holds the store's write lock throughout;
    /// commits if it returns `Ok`, rolls back otherwise.
    fn write(&mut self, change: &mut dyn FnMut(&mut dyn StoreWriter) -> Result<()>) -> Result<()>;
    /// Moves every committed page into the database file and empties the write-ahead log
    /// (SQLite's `wal_checkpoint(TRUNCATE)`), so that page images from before a change (an
    /// old PIN record) do not stay in the log. False if another connection's open read kept
    /// it from finishing (the next checkpoint finishes it).
    fn checkpoint(&mut self) -> Result<bool>;
}
