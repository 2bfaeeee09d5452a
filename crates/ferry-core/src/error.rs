//! The one error type the CLI and the app see, with stable string codes and exit codes.

use ferry_proto::peer::PeerErrorCode;

use crate::fsio::{IoKind, classify};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FerryError {
    #[error("wrong password, or the server interfered")]
    WrongPassword,
    #[error("room not found")]
    RoomNotFound,
    #[error("room expired")]
    RoomExpired,
    #[error("room is full")]
    RoomFull,
    #[error("room is locked after too many wrong passwords")]
    RoomLocked,
    #[error("the other side went away: {0}")]
    PeerGone(String),
    #[error("disk full: {0}")]
    DiskFull(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("source changed since the transfer began: {0}")]
    SourceChanged(String),
    #[error("cancelled: {0}")]
    Cancelled(String),
    #[error("declined: {0}")]
    Declined(String),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("could not connect ({code}): {message}")]
    Connect { code: String, message: String },
    #[error("{0}")]
    Io(String),
}

/// Exit codes of the `ferry` command, one per error code (documented in `ferry --help`).
pub const EXIT_CODES: &[(&str, i32)] = &[
    ("io", 1),
    ("wrong-password", 10),
    ("room-not-found", 11),
    ("room-expired", 12),
    ("room-full", 13),
    ("room-locked", 14),
    ("peer-gone", 15),
    ("disk-full", 16),
    ("permission-denied", 17),
    ("source-changed", 18),
    ("cancelled", 19),
    ("integrity", 20),
    ("protocol", 21),
    ("declined", 22),
    ("connect", 23),
];

impl FerryError {
    pub fn code(&self) -> &'static str {
        match self {
            FerryError::WrongPassword => "wrong-password",
            FerryError::RoomNotFound => "room-not-found",
            FerryError::RoomExpired => "room-expired",
            FerryError::RoomFull => "room-full",
            FerryError::RoomLocked => "room-locked",
            FerryError::PeerGone(_) => "peer-gone",
            FerryError::DiskFull(_) => "disk-full",
            FerryError::PermissionDenied(_) => "permission-denied",
            FerryError::SourceChanged(_) => "source-changed",
            FerryError::Cancelled(_) => "cancelled",
            FerryError::Declined(_) => "declined",
            FerryError::Integrity(_) => "integrity",
            FerryError::Protocol(_) => "protocol",
            FerryError::Connect { .. } => "connect",
            FerryError::Io(_) => "io",
        }
    }

    pub fn exit_code(&self) -> i32 {
        let c = self.code();
        EXIT_CODES
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| *v)
            .unwrap_or(1)
    }

    /// An I/O failure on `what`, classified (disk full, permission) for the user.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        let msg = format!("{what}: {e}");
        match classify(e) {
            IoKind::DiskFull => FerryError::DiskFull(msg),
            IoKind::PermissionDenied => FerryError::PermissionDenied(msg),
            IoKind::Other => FerryError::Io(msg),
        }
    }

    /// The code to tell the peer.
    pub fn peer_code(&self) -> PeerErrorCode {
        match self {
            FerryError::DiskFull(_) => PeerErrorCode::DiskFull,
            FerryError::PermissionDenied(_) => PeerErrorCode::PermissionDenied,
            FerryError::SourceChanged(_) => PeerErrorCode::SourceChanged,
            FerryError::Cancelled(_) => PeerErrorCode::Cancelled,
            FerryError::Declined(_) => PeerErrorCode::Declined,
            FerryError::Integrity(_) => PeerErrorCode::Integrity,
            FerryError::Protocol(_) => PeerErrorCode::Protocol,
            _ => PeerErrorCode::Io,
        }
    }

    /// What the peer told us, as our error (prefixed so the user knows whose disk is full).
    pub fn from_peer(code: PeerErrorCode, message: &str) -> Self {
        let m = format!("peer: {message}");
        match code {
            PeerErrorCode::DiskFull => FerryError::DiskFull(m),
            PeerErrorCode::PermissionDenied => FerryError::PermissionDenied(m),
            PeerErrorCode::SourceChanged => FerryError::SourceChanged(m),
            PeerErrorCode::Cancelled => FerryError::Cancelled(m),
            PeerErrorCode::Declined => FerryError::Declined(m),
            PeerErrorCode::Integrity => FerryError::Integrity(m),
            PeerErrorCode::Protocol | PeerErrorCode::Unsupported => FerryError::Protocol(m),
            PeerErrorCode::Io => FerryError::Io(m),
        }
    }
}

impl From<StoreError> for FerryError {
    fn from(e: StoreError) -> Self {
        FerryError::Io(format!("resume store: {e}"))
    }
}

impl From<crate::transfer::machine::ProtoViolation> for FerryError {
    fn from(e: crate::transfer::machine::ProtoViolation) -> Self {
        FerryError::Protocol(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_exit_codes_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for (code, exit) in EXIT_CODES {
            assert!(seen.insert(*exit), "{code}");
        }
        assert_eq!(FerryError::WrongPassword.exit_code(), 10);
        assert_eq!(FerryError::DiskFull(String::new()).exit_code(), 16);
        let e = FerryError::io("x", &std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.code(), "disk-full");
    }
}
