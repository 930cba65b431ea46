//! The SQLite token store: one file per token, WAL journal, `synchronous=FULL` so that an
//! acknowledged change survives a crash or power loss, and `BEGIN IMMEDIATE` transactions so
//! that concurrent writers in other processes queue (for up to the busy timeout) rather than
//! fail or interleave.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use super::schema;
use super::{
    ApprovalRecord, ApprovalsOf, KeyCustody, ObjectNames, PrincipalRecord, StoreWriter, StoredAttribute,
    StoredObject, TokenRecord, TokenStore, WrappedTokenKey,
};
use crate::{Error, Result};

pub struct SqliteStore {
    conn: Connection,
    data_version: i64,
}

impl SqliteStore {
    /// Opens an existing token file, migrating its schema forward if it is older.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        let mut store = SqliteStore::configure(conn, busy_timeout)?;
        let version = schema::version(&store.conn)?;
        if version == 0 {
            return Err(Error::StoreCorrupt(format!("{} is not an ecm-hsm token", path.display())));
        }
        if version != schema::CURRENT_VERSION {
            // Older files are migrated forward; newer ones are refused by migrate().
            schema::migrate(&mut store.conn)?;
        }
        store.record()?;
        Ok(store)
    }

    /// Creates a new token file holding `record` and no objects. The file must not exist.
    pub fn create(path: &Path, record: &TokenRecord, busy_timeout: Duration) -> Result<SqliteStore> {
        // Made 0600 before SQLite opens it (an empty file is an empty database), so that
        // neither it nor the `-wal`/`-shm` files SQLite makes beside it take the umask's mode.
        drop(super::files::create_private_file(path)?);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        SqliteStore::initialize(conn, record, busy_timeout)
    }

    /// A store in memory, for tests of the layers above.
    pub fn in_memory(record: &TokenRecord) -> Result<SqliteStore> {
        SqliteStore::initialize(Connection::open_in_memory()?, record, Duration::from_secs(1))
    }

    fn initialize(conn: Connection, record: &TokenRecord, busy_timeout: Duration) -> Result<SqliteStore> {
        let mut store = SqliteStore::configure(conn, busy_timeout)?;
        schema::migrate(&mut store.conn)?;
        store.write(&mut |w| w.save_record(record))?;
        Ok(store)
    }

    fn configure(conn: Connection, busy_timeout: Duration) -> Result<SqliteStore> {
        conn.busy_timeout(busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" && mode != "memory" {
            return Err(Error::Device(format!("cannot use WAL journal (got {mode})")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted and overwritten content (an old PIN record, a removed principal) is zeroed
        // in the page rather than left in free space for anyone who copies the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        // A short write-ahead log: a process that opens the store after another exited
        // without closing it (no C_Finalize) rebuilds the log's index by reading all of it,
        // which at SQLite's default (1,000 pages, 4 MB) costs C_Initialize about 5 ms; at
        // 128 pages, well under one. The price: a checkpoint every ~128 pages written.
        conn.pragma_update(None, "wal_autocheckpoint", 128)?;
        conn.pragma_update(None, "journal_size_limit", 1 << 20)?;
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(SqliteStore { conn, data_version })
    }
}

fn principal_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrincipalRecord> {
    Ok(PrincipalRecord {
        name: r.get(0)?,
        pin: WrappedTokenKey { salt: r.get(1)?, iterations: r.get(2)?, sealed_key: r.get(3)? },
        failures: r.get(4)?,
    })
}

const PRINCIPAL_COLUMNS: &str = "SELECT name, salt, iterations, wrapped, failures FROM principals";

const APPROVAL_COLUMNS: &str = "SELECT id, approver, principal, operation, key, key_label, created_at,
    expires_at, consumed_at, revoked_at FROM approvals";

fn approval_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    let time = |i: usize| r.get::<_, Option<i64>>(i).map(|t| t.map(|t| t as u64));
    Ok(ApprovalRecord {
        id: r.get(0)?,
        approver: r.get(1)?,
        principal: r.get(2)?,
        operation: r.get(3)?,
        key: r.get(4)?,
        key_label: r.get(5)?,
        created_at: r.get::<_, i64>(6)? as u64,
        expires_at: r.get::<_, i64>(7)? as u64,
        consumed_at: time(8)?,
        revoked_at: time(9)?,
    })
}

fn read_policy(conn: &Connection) -> Result<Option<(u64, String)>> {
    Ok(conn
        .query_row("SELECT version, document FROM policy WHERE id = 1", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })
        .optional()?)
}

fn read_record(conn: &Connection) -> Result<TokenRecord> {
    let row = conn
        .query_row(
            "SELECT slot_id, label, serial, epoch, so_salt, so_iterations, so_wrapped,
                    user_salt, user_iterations, user_wrapped, so_failures, user_failures,
                    custody, service_sealed
             FROM token WHERE id = 1",
            [],
            |r| {
                let label: Vec<u8> = r.get(1)?;
                let user_salt: Option<Vec<u8>> = r.get(7)?;
                let user_iterations: Option<u32> = r.get(8)?;
                let user_wrapped: Option<Vec<u8>> = r.get(9)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    label,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    WrappedTokenKey { salt: r.get(4)?, iterations: r.get(5)?, sealed_key: r.get(6)? },
                    match (user_salt, user_iterations, user_wrapped) {
                        (Some(salt), Some(iterations), Some(sealed_key)) => {
                            Some(WrappedTokenKey { salt, iterations, sealed_key })
                        }
                        _ => None,
                    },
                    r.get::<_, u32>(10)?,
                    r.get::<_, u32>(11)?,
                    (r.get::<_, String>(12)?, r.get::<_, Option<Vec<u8>>>(13)?),
                ))
            },
        )
        .optional()?;
    let (slot_id, label, serial, epoch, so_pin, user_pin, so_failures, user_failures, custody) =
        row.ok_or_else(|| Error::StoreCorrupt("token row missing".into()))?;
    let custody = match custody {
        (c, None) if c == "pins" => KeyCustody::Pins,
        (c, Some(sealed_key)) if c == "service" => KeyCustody::Service { sealed_key },
        _ => return Err(Error::StoreCorrupt("custody of the token key".into())),
    };
    let label: [u8; 32] = label.try_into().map_err(|_| Error::StoreCorrupt("bad label".into()))?;
    Ok(TokenRecord {
        slot_id: slot_id as u64,
        label,
        serial,
        epoch: epoch as u64,
        so_pin,
        user_pin,
        so_failures,
        user_failures,
        custody,
    })
}

/// Every object with its attributes, by id (inside whatever transaction `conn` is in).
fn read_objects(conn: &Connection) -> Result<Vec<StoredObject>> {
    let mut objects: Vec<StoredObject> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, a.kind, a.value, a.sealed FROM objects o
         JOIN attributes a ON a.object_id = o.id ORDER BY o.id, a.kind",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let attribute =
            StoredAttribute { kind: r.get::<_, i64>(1)? as u64, value: r.get(2)?, sealed: r.get(3)? };
        match objects.last_mut() {
            Some(o) if o.id == id => o.attributes.push(attribute),
            _ => objects.push(StoredObject { id, attributes: vec![attribute] }),
        }
    }
    Ok(objects)
}

impl TokenStore for SqliteStore {
    fn record(&mut self) -> Result<TokenRecord> {
        read_record(&self.conn)
    }

    fn changed_elsewhere(&mut self) -> Result<bool> {
        // On the path of every call: a cached statement, no parse.
        let now: i64 = self.conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        let changed = now != self.data_version;
        self.data_version = now;
        Ok(changed)
    }

    fn load_objects(&mut self) -> Result<Vec<StoredObject>> {
        // One read transaction, so the snapshot is consistent even while others write.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let objects = read_objects(&tx)?;
        tx.commit()?;
        Ok(objects)
    }

    fn object_names(&mut self) -> Result<Vec<ObjectNames>> {
        // Two seeks per object into the attributes' primary key (object_id, kind), rather
        // than reading every attribute row. (Neither attribute is ever stored sealed.)
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, l.value, i.value FROM objects o
             LEFT JOIN attributes l ON l.object_id = o.id AND l.kind = ?1
             LEFT JOIN attributes i ON i.object_id = o.id AND i.kind = ?2
             ORDER BY o.id",
        )?;
        let kinds = [cryptoki_sys::CKA_LABEL as i64, cryptoki_sys::CKA_ID as i64];
        let rows = stmt.query_map(kinds, |r| {
            Ok(ObjectNames {
                id: r.get(0)?,
                label: r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                cka_id: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn load_objects_by_id(&mut self, ids: &[i64]) -> Result<Vec<StoredObject>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let mut objects = Vec::with_capacity(ids.len());
        {
            let mut stmt = tx.prepare_cached(
                "SELECT kind, value, sealed FROM attributes WHERE object_id = ?1 ORDER BY kind",
            )?;
            for &id in ids {
                let attributes = stmt
                    .query_map([id], |r| {
                        Ok(StoredAttribute {
                            kind: r.get::<_, i64>(0)? as u64,
                            value: r.get(1)?,
                            sealed: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // An object is written with its attributes in one transaction: no rows, no object.
                if !attributes.is_empty() {
                    objects.push(StoredObject { id, attributes });
                }
            }
        }
        tx.commit()?;
        Ok(objects)
    }

    fn principals(&mut self) -> Result<Vec<PrincipalRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!("{PRINCIPAL_COLUMNS} ORDER BY name"))?;
        let rows = stmt.query_map([], principal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn policy(&mut self) -> Result<Option<(u64, String)>> {
        read_policy(&self.conn)
    }

    fn approvals(&mut self) -> Result<Vec<ApprovalRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!("{APPROVAL_COLUMNS} ORDER BY id"))?;
        let rows = stmt.query_map([], approval_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn write(&mut self, change: &mut dyn FnMut(&mut dyn StoreWriter) -> Result<()>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut writer = SqliteWriter { tx };
        change(&mut writer)?;
        writer.tx.commit()?;
        // Our own commit does not move data_version; what other connections did before our
        // transaction began is still to be noticed by the next changed_elsewhere().
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<bool> {
        let busy: i64 = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }
}

struct SqliteWriter<'c> {
    tx: Transaction<'c>,
}

impl SqliteWriter<'_> {
    /// Runs `insert` (an INSERT of one attribute row, `?1`..`?4` = object, kind, value,
    /// sealed) for each of `attributes` of object `id`.
    fn write_attributes(&self, insert: &str, id: i64, attributes: &[StoredAttribute]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(insert)?;
        for a in attributes {
            stmt.execute(params![id, a.kind as i64, a.value, a.sealed])?;
        }
        Ok(())
    }
}

impl StoreWriter for SqliteWriter<'_> {
    fn record(&mut self) -> Result<TokenRecord> {
        read_record(&self.tx)
    }

    fn epoch(&mut self) -> Result<u64> {
        // A cached statement over the one-row table, whose page this connection's cache
        // normally holds: no parse, and no I/O unless another process changed the file.
        let epoch: i64 =
            self.tx.prepare_cached("SELECT epoch FROM token WHERE id = 1")?.query_row([], |r| r.get(0))?;
        Ok(epoch as u64)
    }

    fn save_record(&mut self, r: &TokenRecord) -> Result<()> {
        let user = r.user_pin.as_ref();
        self.tx.execute(
            "INSERT OR REPLACE INTO token (id, slot_id, label, serial, epoch, so_salt,
                so_iterations, so_wrapped, user_salt, user_iterations, user_wrapped,
                so_failures, user_failures, custody, service_sealed)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.slot_id as i64,
                &r.label[..],
                r.serial,
                r.epoch as i64,
                r.so_pin.salt,
                r.so_pin.iterations,
                r.so_pin.sealed_key,
                user.map(|u| &u.salt),
                user.map(|u| u.iterations),
                user.map(|u| &u.sealed_key),
                r.so_failures,
                r.user_failures,
                match r.custody {
                    KeyCustody::Pins => "pins",
                    KeyCustody::Service { .. } => "service",
                },
                match &r.custody {
                    KeyCustody::Pins => None,
                    KeyCustody::Service { sealed_key } => Some(sealed_key),
                },
            ],
        )?;
        Ok(())
    }

    fn insert_object(&mut self) -> Result<i64> {
        self.tx.execute("INSERT INTO objects DEFAULT VALUES", [])?;
        Ok(self.tx.last_insert_rowid())
    }

    fn put_attributes(&mut self, id: i64, attributes: &[StoredAttribute]) -> Result<()> {
        self.tx.execute("DELETE FROM attributes WHERE object_id = ?1", [id])?;
        self.write_attributes(
            "INSERT INTO attributes (object_id, kind, value, sealed) VALUES (?1, ?2, ?3, ?4)",
            id,
            attributes,
        )
    }

    fn update_attributes(&mut self, id: i64, attributes: &[StoredAttribute]) -> Result<()> {
        self.write_attributes(
            "INSERT OR REPLACE INTO attributes (object_id, kind, value, sealed) VALUES (?1, ?2, ?3, ?4)",
            id,
            attributes,
        )
    }

    fn delete_object(&mut self, id: i64) -> Result<bool> {
        Ok(self.tx.execute("DELETE FROM objects WHERE id = ?1", [id])? == 1)
    }

    fn object_exists(&mut self, id: i64) -> Result<bool> {
        Ok(self.tx.query_row("SELECT 1 FROM objects WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
    }

    fn delete_all_objects(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM objects", [])?;
        Ok(())
    }

    fn objects(&mut self) -> Result<Vec<StoredObject>> {
        read_objects(&self.tx)
    }

    fn principal(&mut self, name: &str) -> Result<Option<PrincipalRecord>> {
        Ok(self
            .tx
            .query_row(&format!("{PRINCIPAL_COLUMNS} WHERE name = ?1"), [name], principal_from_row)
            .optional()?)
    }

    fn save_principal(&mut self, p: &PrincipalRecord) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO principals (name, salt, iterations, wrapped, failures)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![p.name, p.pin.salt, p.pin.iterations, p.pin.sealed_key, p.failures],
        )?;
        Ok(())
    }

    fn delete_principal(&mut self, name: &str) -> Result<bool> {
        Ok(self.tx.execute("DELETE FROM principals WHERE name = ?1", [name])? == 1)
    }

    fn delete_all_principals(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM principals", [])?;
        Ok(())
    }

    fn policy(&mut self) -> Result<Option<(u64, String)>> {
        read_policy(&self.tx)
    }

    fn save_policy(&mut self, version: u64, document: &str) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO policy (id, version, document) VALUES (1, ?1, ?2)",
            params![version as i64, document],
        )?;
        Ok(())
    }

    fn delete_policy(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM policy", [])?;
        Ok(())
    }

    fn insert_approval(&mut self, a: &ApprovalRecord) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO approvals (approver, principal, operation, key, key_label, created_at,
                expires_at, consumed_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                a.approver,
                a.principal,
                a.operation,
                a.key,
                a.key_label,
                a.created_at as i64,
                a.expires_at as i64,
                a.consumed_at.map(|t| t as i64),
                a.revoked_at.map(|t| t as i64),
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn approvals_for(&mut self, principal: &str, operation: &str, key: &str) -> Result<Vec<ApprovalRecord>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "{APPROVAL_COLUMNS} WHERE principal = ?1 AND operation = ?2 AND key = ?3 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![principal, operation, key], approval_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn consume_approval(&mut self, id: i64, now: u64) -> Result<bool> {
        // The conditions are repeated here so that a row can never be used twice or late,
        // whatever the caller checked.
        let changed = self.tx.execute(
            "UPDATE approvals SET consumed_at = ?2 WHERE id = ?1 AND consumed_at IS NULL
                AND revoked_at IS NULL AND expires_at > ?2",
            params![id, now as i64],
        )?;
        Ok(changed == 1)
    }

    fn revoke_approvals(&mut self, which: ApprovalsOf<'_>, now: u64) -> Result<usize> {
        const PENDING: &str = "consumed_at IS NULL AND revoked_at IS NULL";
        let changed = match which {
            ApprovalsOf::Id(id) => self.tx.execute(
                &format!("UPDATE approvals SET revoked_at = ?2 WHERE id = ?1 AND {PENDING}"),
                params![id, now as i64],
            )?,
            ApprovalsOf::Principal(name) => self.tx.execute(
                &format!(
                    "UPDATE approvals SET revoked_at = ?2 WHERE (approver = ?1 OR principal = ?1) AND {PENDING}"
                ),
                params![name, now as i64],
            )?,
        };
        Ok(changed)
    }

    fn delete_all_approvals(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM approvals", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn record() -> TokenRecord {
        TokenRecord {
            slot_id: 3,
            label: [b' '; 32],
            serial: "0123456789abcdef".into(),
            epoch: 1,
            so_pin: WrappedTokenKey { salt: vec![1; 16], iterations: 10, sealed_key: vec![2; 60] },
            user_pin: None,
            so_failures: 0,
            user_failures: 0,
            custody: KeyCustody::Pins,
        }
    }

    fn attr(kind: u64, value: &[u8]) -> StoredAttribute {
        StoredAttribute { kind, value: value.to_vec(), sealed: false }
    }

    #[test]
    fn objects_round_trip_and_failed_transactions_change_nothing() {
        let mut s = SqliteStore::in_memory(&record()).unwrap();
        assert_eq!(s.record().unwrap(), record());
        let mut id = 0;
        s.write(&mut |w| {
            id = w.insert_object()?;
            w.put_attributes(id, &[attr(0, b"a"), attr(3, b"label")])
        })
        .unwrap();
        let objects = s.load_objects().unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].attributes, vec![attr(0, b"a"), attr(3, b"label")]);
        s.write(&mut |w| w.update_attributes(id, &[attr(3, b"new"), attr(4, b"x")])).unwrap();
        let objects = s.load_objects().unwrap();
        assert_eq!(objects[0].attributes, vec![attr(0, b"a"), attr(3, b"new"), attr(4, b"x")]);

        let failed = s.write(&mut |w| {
            w.delete_object(id)?;
            let mut r = w.record()?;
            r.user_failures = 9;
            w.save_record(&r)?;
            Err(Error::PinIncorrect)
        });
        assert_eq!(failed, Err(Error::PinIncorrect));
        assert_eq!(s.load_objects().unwrap().len(), 1, "rolled back");
        assert_eq!(s.record().unwrap().user_failures, 0, "rolled back");

        let mut deleted = (false, false);
        s.write(&mut |w| {
            deleted = (w.delete_object(id)?, w.delete_object(id)?);
            Ok(())
        })
        .unwrap();
        assert_eq!(deleted, (true, false));
        assert!(s.load_objects().unwrap().is_empty());
    }

    #[test]
    fn principals_are_stored_replaced_and_removed_in_transactions() {
        let mut s = SqliteStore::in_memory(&record()).unwrap();
        let p = PrincipalRecord {
            name: "context-api".into(),
            pin: WrappedTokenKey { salt: vec![1; 16], iterations: 5, sealed_key: vec![3; 60] },
            failures: 0,
        };
        s.write(&mut |w| w.save_principal(&p)).unwrap();
        assert_eq!(s.principals().unwrap(), vec![p.clone()]);
        let failed = s.write(&mut |w| {
            w.delete_principal("context-api")?;
            Err(Error::PinIncorrect)
        });
        assert!(failed.is_err());
        assert_eq!(s.principals().unwrap().len(), 1, "rolled back");
        let mut removed = (false, false);
        s.write(&mut |w| {
            removed = (w.delete_principal("context-api")?, w.delete_principal("context-api")?);
            Ok(())
        })
        .unwrap();
        assert_eq!(removed, (true, false));
    }

    fn approval(approver: &str, key: &str, expires_at: u64) -> ApprovalRecord {
        ApprovalRecord {
            id: 0,
            approver: approver.into(),
            principal: "admin".into(),
            operation: "destroy".into(),
            key: key.into(),
            key_label: "k".into(),
            created_at: 1_000,
            expires_at,
            consumed_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn approvals_are_consumed_once_before_they_expire_and_only_in_committed_transactions() {
        let mut s = SqliteStore::in_memory(&record()).unwrap();
        let mut ids = Vec::new();
        s.write(&mut |w| {
            ids = vec![
                w.insert_approval(&approval("alice", "uid-1", 5_000))?,
                w.insert_approval(&approval("bob", "uid-1", 2_000))?,
                w.insert_approval(&approval("bob", "uid-2", 5_000))?,
            ];
            Ok(())
        })
        .unwrap();
        let mut bound = Vec::new();
        s.write(&mut |w| {
            bound = w.approvals_for("admin", "destroy", "uid-1")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(bound.iter().map(|a| a.id).collect::<Vec<_>>(), ids[..2]);

        // A failed transaction uses nothing up.
        let failed = s.write(&mut |w| {
            assert!(w.consume_approval(ids[0], 3_000)?);
            Err(Error::ActionProhibited)
        });
        assert_eq!(failed, Err(Error::ActionProhibited));
        assert_eq!(s.approvals().unwrap()[0].consumed_at, None, "rolled back");

        let mut used = Vec::new();
        s.write(&mut |w| {
            used = vec![
                w.consume_approval(ids[0], 3_000)?,
                w.consume_approval(ids[0], 3_001)?, // already used
                w.consume_approval(ids[1], 3_000)?, // expired at 2_000
                w.consume_approval(99, 3_000)?,     // no such approval
            ];
            Ok(())
        })
        .unwrap();
        assert_eq!(used, [true, false, false, false]);
        let all = s.approvals().unwrap();
        assert_eq!((all[0].consumed_at, all[1].consumed_at), (Some(3_000), None));

        let mut revoked = (0, 0);
        s.write(&mut |w| {
            revoked = (
                w.revoke_approvals(ApprovalsOf::Principal("bob"), 4_000)?,
                w.revoke_approvals(ApprovalsOf::Id(ids[2]), 4_000)?,
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(revoked, (2, 0), "bob's two pending ones; none left for the id");
        let mut after = true;
        s.write(&mut |w| {
            after = w.consume_approval(ids[2], 4_001)?;
            Ok(())
        })
        .unwrap();
        assert!(!after, "a revoked approval is not used");
        // Self-approval cannot even be stored.
        let mut own = approval("admin", "uid-1", 5_000);
        own.principal = "admin".into();
        assert!(s.write(&mut |w| w.insert_approval(&own).map(drop)).is_err());
    }

    #[test]
    fn other_connections_changes_are_noticed_and_newer_schemas_refused() {
        let dir = std::env::temp_dir().join(format!("ecm-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite");
        let _ = std::fs::remove_file(&path);
        let t = Duration::from_secs(1);
        let mut a = SqliteStore::create(&path, &record(), t).unwrap();
        let mut b = SqliteStore::open(&path, t).unwrap();
        assert!(!a.changed_elsewhere().unwrap());
        b.write(&mut |w| w.insert_object().map(|_| ())).unwrap();
        assert!(a.changed_elsewhere().unwrap());
        assert!(!a.changed_elsewhere().unwrap());
        drop((a, b));

        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(SqliteStore::open(&path, t), Err(Error::StoreCorrupt(_))));
        std::fs::write(&path, b"not a database at all, just text").unwrap();
        let _ = std::fs::remove_file(dir.join("t.sqlite-wal"));
        assert!(matches!(SqliteStore::open(&path, t), Err(Error::StoreCorrupt(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
