//! The resume store and history: one SQLite file per user (WAL), shared by the CLI and app.
//!
//! The receiver's `files.verified_offset` is only ever raised after the bytes below it are
//! written and fsynced, so after any crash it is a safe place to resume from. The sender
//! keeps each file's source path and size/mtime so `ferry send --resume ID` can refuse a
//! file that changed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

mod file;

pub(crate) use crate::status::{FileState, TransferState};

/// What can go wrong opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused a statement.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The database's folder could not be created (owner-only).
    #[error("cannot create the database folder {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    /// The database file could not be made owner-only.
    #[error("cannot make the database {0} private: {1}")]
    File(PathBuf, std::io::Error),
    /// The OS names no data directory for this user.
    #[error("no data directory for this user; set FERRY_DB")]
    NoDir,
}

/// Which side of a transfer this device was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// This device sent.
    Send,
    /// This device received.
    Receive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
        }
    }
}

/// What a transfer carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferKind {
    /// Files and folders (the `files` rows).
    Files,
    /// A text snippet: recorded by its size only, the text itself is never stored.
    Text,
}

impl TransferKind {
    fn as_str(self) -> &'static str {
        match self {
            TransferKind::Files => "files",
            TransferKind::Text => "text",
        }
    }
}

/// One transfer as the store keeps it (`ferry history --json` prints these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferRow {
    /// The transfer id (the sender derives it from the room and the manifest).
    pub id: String,
    /// Which side this device was.
    pub direction: Direction,
    /// Files, or a text snippet.
    pub kind: TransferKind,
    /// Room id as shown to people.
    pub room: String,
    /// The other device's name, when known (empty otherwise).
    pub peer: String,
    /// Signaling server the room lives on (ws URL).
    pub server: String,
    /// Sender: the secret that reattaches to the room after a restart; never shown.
    #[serde(skip)]
    pub host_token: String,
    /// Receiver: the folder files land in (empty for a sender).
    pub out_dir: String,
    /// Where the transfer stands.
    pub state: TransferState,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change; the end time once finished.
    pub updated_at: i64,
    /// Bytes of the whole transfer.
    pub total_bytes: u64,
    /// Bytes the receiver holds durably (verified and synced), counting earlier attempts.
    pub done_bytes: u64,
    /// Why it failed or was cancelled, for a person.
    pub error: Option<String>,
}

/// One file (or folder) of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRow {
    /// Position in the manifest.
    pub idx: u32,
    /// Relative path as offered (`/`-separated).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Modification time at the sender, Unix milliseconds.
    pub mtime_ms: i64,
    /// A folder (created, never written).
    pub is_dir: bool,
    /// Sender: the file on disk this entry reads from.
    pub source: Option<String>,
    /// Receiver: where the file lands (or landed).
    pub dest: Option<String>,
    /// Receiver: bytes from the start that are written, verified and synced.
    pub verified_offset: u64,
    /// BLAKE3 root of the finished file, hex.
    pub hash: Option<String>,
    /// Where the file stands.
    pub state: FileState,
}

/// Unix seconds now (0 if the clock is before 1970).
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A handle to the store; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// `ferry.db` in the OS data directory. The binaries let `FERRY_DB` override it.
    pub fn default_path() -> Result<PathBuf, StoreError> {
        directories::ProjectDirs::from("dev", "ferry", "Ferry")
            .map(|d| d.data_dir().join("ferry.db"))
            .ok_or(StoreError::NoDir)
    }

    /// Open (creating, owner-only, and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = file::open(path)?;
        // A host token is only worth keeping while its room can be reattached.
        conn.execute(
            "UPDATE transfers SET host_token = '' WHERE host_token != '' AND room_expires_at <= ?1",
            [now()],
        )?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&g)?)
    }

    /// Record a transfer and its files unless it is already known (then nothing changes:
    /// the stored offsets are what a resume needs).
    pub fn insert_if_new(&self, t: &TransferRow, files: &[FileRow]) -> Result<bool, StoreError> {
        let mut g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = g.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO transfers (id, direction, room, peer, server, host_token, out_dir,
               state, created_at, updated_at, total_bytes, done_bytes, error, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13)",
            params![
                t.id,
                t.direction.as_str(),
                t.room,
                t.peer,
                t.server,
                t.host_token,
                t.out_dir,
                t.state,
                t.created_at,
                t.total_bytes as i64,
                t.done_bytes as i64,
                t.error,
                t.kind.as_str()
            ],
        )?;
        if n == 1 {
            for f in files {
                tx.execute(
                    "INSERT INTO files (transfer_id, idx, path, size, mtime_ms, is_dir, source, dest,
                       verified_offset, hash, state) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                    params![
                        t.id,
                        f.idx,
                        f.path,
                        f.size as i64,
                        f.mtime_ms,
                        f.is_dir,
                        f.source,
                        f.dest,
                        f.verified_offset as i64,
                        f.hash,
                        f.state
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// A transfer and its files, in manifest order.
    pub fn transfer(&self, id: &str) -> Result<Option<(TransferRow, Vec<FileRow>)>, StoreError> {
        self.with(|c| {
            let t = c
                .query_row(
                    &format!("SELECT {TCOLS} FROM transfers WHERE id = ?1"),
                    [id],
                    row_transfer,
                )
                .optional()?;
            let Some(t) = t else { return Ok(None) };
            let mut st = c.prepare(
                "SELECT idx, path, size, mtime_ms, is_dir, source, dest, verified_offset, hash, state
                 FROM files WHERE transfer_id = ?1 ORDER BY idx",
            )?;
            let files = st
                .query_map([id], |r| {
                    Ok(FileRow {
                        idx: r.get(0)?,
                        path: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        mtime_ms: r.get(3)?,
                        is_dir: r.get(4)?,
                        source: r.get(5)?,
                        dest: r.get(6)?,
                        verified_offset: r.get::<_, i64>(7)? as u64,
                        hash: r.get(8)?,
                        state: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((t, files)))
        })
    }

    /// Raise a file's durable verified offset (callers fsync first). A file already done
    /// keeps its full size: a checkpoint that lands after the file finished is stale.
    pub fn set_offset(&self, id: &str, idx: u32, offset: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET verified_offset = ?3
                 WHERE transfer_id = ?1 AND idx = ?2 AND state != 'done'",
                params![id, idx, offset as i64],
            )?;
            c.execute(
                "UPDATE transfers SET updated_at = ?2 WHERE id = ?1",
                params![id, now()],
            )?;
            Ok(())
        })
    }

    /// Record a file's state; a file done counts in full towards the durable bytes.
    pub fn set_file_state(
        &self,
        id: &str,
        idx: u32,
        state: FileState,
        hash: Option<&str>,
        dest: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET state = ?3, hash = COALESCE(?4, hash), dest = COALESCE(?5, dest),
                   verified_offset = CASE WHEN ?3 = 'done' THEN size ELSE verified_offset END
                 WHERE transfer_id = ?1 AND idx = ?2",
                params![id, idx, state, hash, dest],
            )?;
            Ok(())
        })
    }

    /// Record a transfer's state, why it ended, and (at the end) its byte count.
    pub fn set_transfer_state(
        &self,
        id: &str,
        state: TransferState,
        error: Option<&str>,
        done_bytes: Option<u64>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET state = ?2, error = ?3, updated_at = ?4,
                   done_bytes = COALESCE(?5, done_bytes) WHERE id = ?1",
                params![id, state, error, now(), done_bytes.map(|b| b as i64)],
            )?;
            Ok(())
        })
    }

    /// Where to find the room again (sender resume after a restart), until `expires_at`
    /// (Unix seconds), when the host token is dropped.
    pub fn set_room(
        &self,
        id: &str,
        room: &str,
        server: &str,
        host_token: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET room = ?2, server = ?3, host_token = ?4, room_expires_at = ?5,
                   updated_at = ?6 WHERE id = ?1",
                params![id, room, server, host_token, expires_at, now()],
            )?;
            Ok(())
        })
    }

    /// The room now ends at `expires_at` (Unix seconds; it was extended): its host token is
    /// worth keeping until then.
    pub fn set_room_expiry(&self, id: &str, expires_at: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET room_expires_at = ?2 WHERE id = ?1",
                params![id, expires_at],
            )?;
            Ok(())
        })
    }

    /// Forget a room's host token (the transfer ended; nothing will reattach to it).
    pub fn clear_host_token(&self, id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE transfers SET host_token = '' WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// The `.part` file this transfer created for file `idx`, if it recorded one.
    pub fn part(&self, id: &str, idx: u32) -> Result<Option<PathBuf>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT part FROM files WHERE transfer_id = ?1 AND idx = ?2",
                params![id, idx],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(|p| p.flatten().map(PathBuf::from))
        })
    }

    /// Record the `.part` file created for file `idx`: from now on it is this transfer's.
    pub fn set_part(&self, id: &str, idx: u32, part: &Path) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET part = ?3 WHERE transfer_id = ?1 AND idx = ?2",
                params![id, idx, part.to_string_lossy()],
            )?;
            Ok(())
        })
    }

    /// Most recent first.
    pub fn history(&self, limit: u32) -> Result<Vec<TransferRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TCOLS} FROM transfers ORDER BY updated_at DESC, created_at DESC LIMIT ?1"
            ))?;
            st.query_map([limit], row_transfer)?.collect()
        })
    }
}

/// `done_bytes` is written when a transfer ends; until then, and after a crash or power cut,
/// what counts is what a resume keeps: the durable offsets (a finished file's is its size).
/// Derived on read: summed on every checkpoint, it cost 10 s over 10,000 small files.
const TCOLS: &str = "id, direction, room, peer, server, host_token, out_dir, state, created_at, updated_at, total_bytes,
    MAX(done_bytes, (SELECT COALESCE(SUM(f.verified_offset), 0) FROM files f WHERE f.transfer_id = transfers.id)),
    error, kind";

fn row_transfer(r: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRow> {
    let dir: String = r.get(1)?;
    Ok(TransferRow {
        id: r.get(0)?,
        direction: if dir == "send" {
            Direction::Send
        } else {
            Direction::Receive
        },
        room: r.get(2)?,
        peer: r.get(3)?,
        server: r.get(4)?,
        host_token: r.get(5)?,
        out_dir: r.get(6)?,
        state: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        total_bytes: r.get::<_, i64>(10)? as u64,
        done_bytes: r.get::<_, i64>(11)? as u64,
        error: r.get(12)?,
        kind: if r.get::<_, String>(13)? == "text" {
            TransferKind::Text
        } else {
            TransferKind::Files
        },
    })
}

/// Rows for tests of the store and of what writes to it.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn row(id: &str) -> TransferRow {
        TransferRow {
            id: id.into(),
            direction: Direction::Receive,
            kind: TransferKind::Files,
            room: "R".into(),
            peer: String::new(),
            server: "ws://x".into(),
            host_token: String::new(),
            out_dir: "/tmp".into(),
            state: TransferState::Active,
            created_at: now(),
            updated_at: now(),
            total_bytes: 10,
            done_bytes: 0,
            error: None,
        }
    }

    pub(crate) fn file(idx: u32) -> FileRow {
        FileRow {
            idx,
            path: format!("f{idx}"),
            size: 5,
            mtime_ms: 1,
            is_dir: false,
            source: None,
            dest: None,
            verified_offset: 0,
            hash: None,
            state: FileState::Pending,
        }
    }
}

#[cfg(test)]
mod tests;
