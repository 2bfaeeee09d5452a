//! The database file: created owner-only, switched to WAL, its schema migrated. Everything
//! here happens once per `Store::open`; the queries are in `store/mod.rs`.

use std::path::Path;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::StoreError;

/// Open `path` ready for use: its folder and the file owner-only, WAL, writes that wait for
/// each other, the schema up to date.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        create_private_dir(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
    }
    make_private(path).map_err(|e| StoreError::File(path.to_path_buf(), e))?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(crate::defaults::STORE_BUSY_TIMEOUT)?;
    enable_wal(&conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every transaction here writes. A deferred one starts as a reader and must upgrade,
    // and SQLite refuses that upgrade at once (no busy wait) when another connection
    // wrote meanwhile; taking the write lock at BEGIN waits out the busy timeout instead.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    migrate(&mut conn)?;
    Ok(conn)
}

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE transfers (
        id TEXT PRIMARY KEY,
        direction TEXT NOT NULL,
        room TEXT NOT NULL DEFAULT '',
        peer TEXT NOT NULL DEFAULT '',
        server TEXT NOT NULL DEFAULT '',
        host_token TEXT NOT NULL DEFAULT '',
        out_dir TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL DEFAULT 0,
        done_bytes INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE files (
        transfer_id TEXT NOT NULL REFERENCES transfers(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ms INTEGER NOT NULL,
        is_dir INTEGER NOT NULL DEFAULT 0,
        source TEXT,
        dest TEXT,
        verified_offset INTEGER NOT NULL DEFAULT 0,
        hash TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        PRIMARY KEY (transfer_id, idx)
    );
    CREATE INDEX transfers_updated ON transfers(updated_at);",
    ),
    // `part`: the `.part` file this transfer created for a file; only that one is ever
    // reused. `room_expires_at`: when the host token stops being worth keeping.
    M::up(
        "ALTER TABLE files ADD COLUMN part TEXT;
    ALTER TABLE transfers ADD COLUMN room_expires_at INTEGER NOT NULL DEFAULT 0;",
    ),
    // `kind`: `files`, or `text` for a snippet (which has no file rows and is not stored).
    M::up("ALTER TABLE transfers ADD COLUMN kind TEXT NOT NULL DEFAULT 'files';"),
];

/// The app, the CLI, or a sender and a receiver in one process may open a new database at the
/// same moment. The migration crate reads the schema version before its transaction begins, so
/// both can read 0; the loser's `CREATE TABLE` then fails and its transaction rolls back, by
/// which time the winner has committed. A second pass reads the new version and has nothing
/// left to do; any other failure repeats and is reported as the first error.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let migrations = Migrations::from_slice(MIGRATIONS);
    match migrations.to_latest(conn) {
        Ok(()) => Ok(()),
        Err(first) => migrations.to_latest(conn).map_err(|_| first.into()),
    }
}

/// Switching a new file to WAL needs an exclusive lock, and SQLite reports that contention at
/// once instead of through the busy handler. WAL is a property of the file, so a short retry
/// finds it either switched by us or already switched by the other opener.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut tries = 0;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create `dir` (and missing parents) readable by this user only; an existing folder is
/// left as it is (it may be shared on purpose).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// The store holds paths, peers and, while a room lives, its host token: mode 0600 for the
/// database and its `-wal`/`-shm` (SQLite gives those the database's mode when it creates
/// them; existing ones from older versions are tightened here).
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_os_string();
            p.push(suffix);
            match std::fs::metadata(&p) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
