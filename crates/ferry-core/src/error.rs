//! The one error type the CLI and the app see, with stable string codes and exit codes.

use ferry_proto::peer::PeerErrorCode;
use ferry_proto::signal::ErrorCode;

use crate::fsio::{IoKind, classify};
use crate::store::StoreError;

/// What went wrong while connecting, when it is none of the cases [`FerryError`] names on
/// its own. [`ConnectKind::as_str`] is the stable form shown in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    /// The link or room id given is not one Ferry can read.
    BadTicket,
    /// A bare room id, and no server to look it up on.
    NoServer,
    /// No password given, and none carried in the link.
    NoPassword,
    /// The host closed the room.
    RoomClosed,
    /// The signaling server refused: too many requests from this address.
    RateLimited,
    /// The other side did not answer within the connect timeout.
    Timeout,
    /// The signaling connection failed or closed.
    Signaling,
    /// The signaling server answered with this error.
    Server(ErrorCode),
    /// WebRTC found no path, or the connection failed.
    Rtc,
    /// The other side or the server broke the protocol.
    Protocol,
}

impl ConnectKind {
    /// Stable kebab-case form (the same strings as `ConnectError::code`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectKind::BadTicket => "bad-ticket",
            ConnectKind::NoServer => "no-server",
            ConnectKind::NoPassword => "no-password",
            ConnectKind::RoomClosed => "room-closed",
            ConnectKind::RateLimited => "rate-limited",
            ConnectKind::Timeout => "timeout",
            ConnectKind::Signaling => "signaling",
            ConnectKind::Server(code) => code.as_str(),
            ConnectKind::Rtc => "rtc",
            ConnectKind::Protocol => "protocol",
        }
    }
}

impl std::fmt::Display for ConnectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why a transfer (or the steps before it) failed. Each variant's kind is in
/// [`ErrorKind`]; the text says what happened, for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FerryError {
    /// The password did not match (or the server interfered with the exchange).
    #[error("wrong password, or the server interfered")]
    WrongPassword,
    /// No such room on the server.
    #[error("room not found")]
    RoomNotFound,
    /// The room's lifetime ran out.
    #[error("room expired")]
    RoomExpired,
    /// Someone else holds the room's other seat.
    #[error("room is full")]
    RoomFull,
    /// Too many wrong passwords: the room takes no more joins.
    #[error("room is locked after too many wrong passwords")]
    RoomLocked,
    /// The other side went away and did not come back in time.
    #[error("the other side went away: {0}")]
    PeerGone(String),
    /// A disk filled up (ours, or the peer's when the message starts with "peer:").
    #[error("disk full: {0}")]
    DiskFull(String),
    /// A file or folder could not be read or written for lack of permission.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A file changed on the sender's disk while it was being sent.
    #[error("source changed since the transfer began: {0}")]
    SourceChanged(String),
    /// Either side cancelled.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The receiver said no to the offer.
    #[error("declined: {0}")]
    Declined(String),
    /// Data kept failing its BLAKE3 check.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// The other side broke the peer protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A text snippet over the size limit (ours before sending, or the receiver's).
    #[error("too large: {0}")]
    TooLarge(String),
    /// The connection could not be made.
    #[error("could not connect ({kind}): {message}")]
    Connect {
        /// Which step failed, in a form code can match on.
        kind: ConnectKind,
        /// What happened, for a person.
        message: String,
    },
    /// Any other failure (a file, the store, the network).
    #[error("{0}")]
    Io(String),
}

/// The kind of a [`FerryError`], without its detail: what JSON events, the store and the
/// exit status carry. [`ErrorKind::as_str`] is the stable code (`"wrong-password"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Any other failure (a file, the store, the network).
    Io,
    /// The password did not match (or the server interfered).
    WrongPassword,
    /// No such room on the server.
    RoomNotFound,
    /// The room's lifetime ran out.
    RoomExpired,
    /// Someone else is already in the room.
    RoomFull,
    /// Too many wrong passwords: the room is closed to joins.
    RoomLocked,
    /// The other side went away and did not come back in time.
    PeerGone,
    /// A disk filled up (ours or, reported, the peer's).
    DiskFull,
    /// A file or folder could not be read or written for lack of permission.
    PermissionDenied,
    /// A file changed on the sender's disk while it was being sent.
    SourceChanged,
    /// Either side cancelled.
    Cancelled,
    /// Data failed its BLAKE3 check more often than a resend can cure.
    Integrity,
    /// The other side broke the peer protocol.
    Protocol,
    /// The receiver said no to the offer.
    Declined,
    /// The connection could not be made, for a reason in [`ConnectKind`].
    Connect,
    /// A text snippet over the size limit.
    TooLarge,
}

impl ErrorKind {
    /// Every kind, in exit-code order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Io,
        ErrorKind::WrongPassword,
        ErrorKind::RoomNotFound,
        ErrorKind::RoomExpired,
        ErrorKind::RoomFull,
        ErrorKind::RoomLocked,
        ErrorKind::PeerGone,
        ErrorKind::DiskFull,
        ErrorKind::PermissionDenied,
        ErrorKind::SourceChanged,
        ErrorKind::Cancelled,
        ErrorKind::Integrity,
        ErrorKind::Protocol,
        ErrorKind::Declined,
        ErrorKind::Connect,
        ErrorKind::TooLarge,
    ];

    /// Stable kebab-case code, as in JSON events and the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::WrongPassword => "wrong-password",
            ErrorKind::RoomNotFound => "room-not-found",
            ErrorKind::RoomExpired => "room-expired",
            ErrorKind::RoomFull => "room-full",
            ErrorKind::RoomLocked => "room-locked",
            ErrorKind::PeerGone => "peer-gone",
            ErrorKind::DiskFull => "disk-full",
            ErrorKind::PermissionDenied => "permission-denied",
            ErrorKind::SourceChanged => "source-changed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Declined => "declined",
            ErrorKind::Connect => "connect",
            ErrorKind::TooLarge => "too-large",
        }
    }

    /// The kind whose code is `s`.
    pub fn from_code(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Exit status of the `ferry` command when it ends with this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Io => 1,
            ErrorKind::WrongPassword => 10,
            ErrorKind::RoomNotFound => 11,
            ErrorKind::RoomExpired => 12,
            ErrorKind::RoomFull => 13,
            ErrorKind::RoomLocked => 14,
            ErrorKind::PeerGone => 15,
            ErrorKind::DiskFull => 16,
            ErrorKind::PermissionDenied => 17,
            ErrorKind::SourceChanged => 18,
            ErrorKind::Cancelled => 19,
            ErrorKind::Integrity => 20,
            ErrorKind::Protocol => 21,
            ErrorKind::Declined => 22,
            ErrorKind::Connect => 23,
            ErrorKind::TooLarge => 24,
        }
    }

    /// How the exit-code table names this kind.
    fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Io => "io / other",
            ErrorKind::Connect => "connect (other connection failure)",
            k => k.as_str(),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Exit status for success.
pub(crate) const EXIT_SUCCESS: i32 = 0;
/// Exit status for a command line that does not parse (clap's).
pub(crate) const EXIT_USAGE: i32 = 2;

/// The `ferry` command's exit codes, `(status, meaning)` in ascending order: the one table
/// that `ferry --help` prints and docs/PEER-PROTOCOL.md shows (a test holds them equal).
pub fn exit_codes() -> Vec<(i32, &'static str)> {
    let mut rows = vec![(EXIT_SUCCESS, "success"), (EXIT_USAGE, "usage")];
    rows.extend(ErrorKind::ALL.iter().map(|k| (k.exit_code(), k.meaning())));
    rows.sort_by_key(|(c, _)| *c);
    rows
}

impl FerryError {
    /// The error's kind (what the exit status and JSON code follow).
    pub fn kind(&self) -> ErrorKind {
        match self {
            FerryError::WrongPassword => ErrorKind::WrongPassword,
            FerryError::RoomNotFound => ErrorKind::RoomNotFound,
            FerryError::RoomExpired => ErrorKind::RoomExpired,
            FerryError::RoomFull => ErrorKind::RoomFull,
            FerryError::RoomLocked => ErrorKind::RoomLocked,
            FerryError::PeerGone(_) => ErrorKind::PeerGone,
            FerryError::DiskFull(_) => ErrorKind::DiskFull,
            FerryError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            FerryError::SourceChanged(_) => ErrorKind::SourceChanged,
            FerryError::Cancelled(_) => ErrorKind::Cancelled,
            FerryError::Declined(_) => ErrorKind::Declined,
            FerryError::Integrity(_) => ErrorKind::Integrity,
            FerryError::Protocol(_) => ErrorKind::Protocol,
            FerryError::Connect { .. } => ErrorKind::Connect,
            FerryError::TooLarge(_) => ErrorKind::TooLarge,
            FerryError::Io(_) => ErrorKind::Io,
        }
    }

    /// Stable kebab-case code of the error's kind.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Exit status of the `ferry` command for this error.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
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
            FerryError::TooLarge(_) => PeerErrorCode::TooLarge,
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
            PeerErrorCode::TooLarge => FerryError::TooLarge(m),
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
        for (exit, meaning) in exit_codes() {
            assert!(seen.insert(exit), "{meaning}");
        }
        let mut codes = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(codes.insert(k.as_str()), "{k}");
            assert_eq!(ErrorKind::from_code(k.as_str()), Some(k));
            // The serde form is the code: JSON and the store stay as they were.
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(FerryError::WrongPassword.exit_code(), 10);
        assert_eq!(FerryError::DiskFull(String::new()).exit_code(), 16);
        let e = FerryError::io("x", &std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.code(), "disk-full");
    }

    #[test]
    fn connect_errors_read_as_before() {
        let e = FerryError::Connect {
            kind: ConnectKind::Server(ErrorCode::ServerFull),
            message: "busy".into(),
        };
        assert_eq!(e.to_string(), "could not connect (server-full): busy");
        assert_eq!(e.exit_code(), 23);
    }

    /// docs/PEER-PROTOCOL.md lists the exit codes for people; it must say what the code does.
    #[test]
    fn the_documented_exit_codes_are_the_real_ones() {
        let doc = include_str!("../../../docs/PEER-PROTOCOL.md");
        let section = doc
            .split("## CLI exit codes")
            .nth(1)
            .expect("docs/PEER-PROTOCOL.md has a '## CLI exit codes' section");
        let mut documented: Vec<(i32, String)> = section
            .lines()
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with('|'))
            .flat_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                // Two tables side by side: each `| status | meaning |` pair.
                cells
                    .windows(2)
                    .filter_map(|c| Some((c[0].parse::<i32>().ok()?, c[1].to_string())))
                    .collect::<Vec<_>>()
            })
            .collect();
        documented.sort();
        let real: Vec<(i32, String)> = exit_codes()
            .into_iter()
            .map(|(c, m)| (c, m.to_string()))
            .collect();
        assert_eq!(documented, real);
    }
}
