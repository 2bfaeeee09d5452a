//! The `sessions` table: the only thing the server persists. One row per open room with the
//! argon2id hash of its host token and its lifetime — never a token, never a payload.

use std::sync::{Arc, Mutex};

use ferry_proto::RoomId;
use rusqlite::{Connection, params};
use rusqlite_migration::{M, Migrations};

use crate::config::DbLocation;
use crate::rooms::RoomRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("session database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("session database task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("session database lock poisoned")]
    Poisoned,
}

// Times are unix milliseconds so short test lifetimes survive a restart intact.
const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_id TEXT NOT NULL UNIQUE,
        host_token_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_expires_at ON sessions(expires_at);",
)];

/// Handle to the session database. Cheap to clone; calls run on the blocking pool.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(loc: &DbLocation) -> Result<Store, StoreError> {
        let mut conn = match loc {
            DbLocation::Memory => Connection::open_in_memory()?,
            DbLocation::File(p) => Connection::open(p)?,
        };
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a crash may lose the last few creates, never corrupt the table.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let guard = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&guard)?)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(f)).await?
    }

    /// Drop rows that expired while the server was down, then return the live ones.
    pub fn load_unexpired(&self, now_ms: u64) -> Result<Vec<RoomRecord>, StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                params![now_ms as i64],
            )?;
            let mut stmt =
                c.prepare("SELECT room_id, host_token_hash, created_at, expires_at FROM sessions")?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (room, hash, created, expires) = row?;
                // A row we cannot parse is skipped rather than failing the whole start.
                if let Ok(room) = room.parse::<RoomId>() {
                    out.push(RoomRecord {
                        room,
                        host_token_hash: hash,
                        created_at_ms: created.max(0) as u64,
                        expires_at_ms: expires.max(0) as u64,
                    });
                }
            }
            Ok(out)
        })
    }

    pub async fn insert(&self, rec: RoomRecord) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO sessions (room_id, host_token_hash, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    rec.room.as_str(),
                    rec.host_token_hash,
                    rec.created_at_ms as i64,
                    rec.expires_at_ms as i64
                ],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn set_expiry(&self, room: RoomId, expires_at_ms: u64) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE sessions SET expires_at = ?2 WHERE room_id = ?1",
                params![room.as_str(), expires_at_ms as i64],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn delete(&self, rooms: Vec<RoomId>) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        self.run(move |c| {
            for r in rooms {
                c.execute(
                    "DELETE FROM sessions WHERE room_id = ?1",
                    params![r.as_str()],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Number of rows (tests and metrics).
    pub fn count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(room: &str, exp: u64) -> RoomRecord {
        RoomRecord {
            room: room.parse().unwrap(),
            host_token_hash: "$argon2id$x".into(),
            created_at_ms: 1,
            expires_at_ms: exp,
        }
    }

    #[tokio::test]
    async fn rows_survive_reopen_and_expired_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let loc = DbLocation::File(dir.path().join("s.db"));
        let s = Store::open(&loc).unwrap();
        s.insert(rec("AAAAA-AAAAA", 1_000)).await.unwrap();
        s.insert(rec("BBBBB-BBBBB", 5_000)).await.unwrap();
        s.set_expiry("AAAAA-AAAAA".parse().unwrap(), 9_000)
            .await
            .unwrap();
        s.insert(rec("CCCCC-CCCCC", 9_000)).await.unwrap();
        s.delete(vec!["CCCCC-CCCCC".parse().unwrap()])
            .await
            .unwrap();
        drop(s);
        let s = Store::open(&loc).unwrap();
        let live = s.load_unexpired(6_000).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].room.as_str(), "AAAAAAAAAA");
        assert_eq!(live[0].expires_at_ms, 9_000);
        assert_eq!(s.count().unwrap(), 1);
    }
}
