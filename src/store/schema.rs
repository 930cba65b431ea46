//! The schema, as numbered migrations. `PRAGMA user_version` records how many have run; a
//! file from a newer ecm-hsm (a higher version) is refused rather than misread.

use rusqlite::Connection;

use crate::{Error, Result};

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: the token row, objects, and their attributes.
    "CREATE TABLE token (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        slot_id INTEGER NOT NULL,
        label BLOB NOT NULL,
        serial TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        so_salt BLOB NOT NULL,
        so_iterations INTEGER NOT NULL,
        so_wrapped BLOB NOT NULL,
        user_salt BLOB,
        user_iterations INTEGER,
        user_wrapped BLOB,
        so_failures INTEGER NOT NULL DEFAULT 0,
        user_failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE objects (id INTEGER PRIMARY KEY AUTOINCREMENT);
    CREATE TABLE attributes (
        object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
        kind INTEGER NOT NULL,
        value BLOB NOT NULL,
        sealed INTEGER NOT NULL,
        PRIMARY KEY (object_id, kind)
    ) WITHOUT ROWID;",
    // 2: principals, the named users of a token, each with the token key wrapped under a
    // KDF of its own PIN and its own failure count.
    "CREATE TABLE principals (
        name TEXT PRIMARY KEY,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;",
    // 3: the key-permission policy, one versioned document.
    "CREATE TABLE policy (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        document TEXT NOT NULL
    );",
    // 4: approvals recorded ahead for management operations (`ecm-hsm approve`): each is
    // given by one approver to one principal for one operation on one key (its
    // CKA_UNIQUE_ID; for a policy change the SHA-256 of the new canonical document), expires,
    // and is used up by the operation it allows, in the operation's own transaction.
    // `key_label` is only for display. Rows are kept once used or revoked, as history.
    "CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        approver TEXT NOT NULL,
        principal TEXT NOT NULL,
        operation TEXT NOT NULL CHECK (operation IN ('destroy', 'modify', 'rotate', 'policy')),
        key TEXT NOT NULL,
        key_label TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        consumed_at INTEGER,
        revoked_at INTEGER,
        CHECK (approver <> principal)
    );
    CREATE INDEX approvals_binding ON approvals (principal, operation, key);",
    // 5: an empty CKA_ALLOWED_MECHANISMS (0x40000600) now allows no mechanism; until now
    // every key got one by default, meaning "any". Dropping those keeps each key's meaning:
    // a key without the attribute may use any mechanism.
    "DELETE FROM attributes WHERE kind = 1073743360 AND value = x'';",
    // 6: custody of the token key (`crate::token::custody`): `pins` as until now, or
    // `service`, the token key sealed under the service key in `service_sealed` and the PIN
    // columns holding verifiers.
    "ALTER TABLE token ADD COLUMN custody TEXT NOT NULL DEFAULT 'pins'
        CHECK (custody IN ('pins', 'service'));
    ALTER TABLE token ADD COLUMN service_sealed BLOB;",
];

pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date inside one immediate transaction.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        return Err(Error::StoreCorrupt(format!(
            "schema version {version} is newer than this ecm-hsm understands ({CURRENT_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_5_drops_only_empty_allowed_mechanism_lists() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..4] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.execute_batch(
            "INSERT INTO objects (id) VALUES (1), (2);
             INSERT INTO attributes VALUES (1, 1073743360, x'', 0), (1, 3, x'', 0),
                                           (2, 1073743360, x'0100000000000000', 0);",
        )
        .unwrap();
        tx.commit().unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT object_id, kind FROM attributes ORDER BY object_id, kind")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(1, 3), (2, 1073743360)]);
        assert_eq!(cryptoki_sys::CKA_ALLOWED_MECHANISMS as i64, 1073743360);
    }
}
