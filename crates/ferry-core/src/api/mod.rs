//! What the CLI and the desktop app call: send some paths, receive from a ticket. Both keep
//! going across dropped links (the sender keeps its room, the receiver re-joins) and pick
//! up where the receiver's store says.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::defaults::{self, Tuning};
use crate::error::{ConnectKind, ErrorKind, FerryError};
use crate::events::{Event, EventSink};
use crate::link::PathKind;
use crate::manifest::Manifest;
use crate::password::Password;
use crate::session::{ConnectConfig, ConnectError, RoomTicket, SessionEvent};
use crate::store::{FileRow, FileState, Store, TransferState};
use crate::ticket::JoinTicket;

mod many;
mod receive;
mod send;

pub use crate::transfer::receiver::{Decision, Offer, ReceivedFile};
pub use crate::transfer::text::check_size as check_text_size;
pub use many::{DEFAULT_RECEIVERS_AT_ONCE, ManyOptions, ManyReport, send_many};
pub use receive::{ReceiveOptions, ReceiveReport, receive};
pub use send::{send, send_text};

impl From<ConnectError> for FerryError {
    fn from(e: ConnectError) -> Self {
        // Exhaustive on purpose: a new way to fail connecting needs a kind of its own.
        let kind = match &e {
            ConnectError::WrongPassword => return FerryError::WrongPassword,
            ConnectError::RoomNotFound => return FerryError::RoomNotFound,
            ConnectError::RoomExpired => return FerryError::RoomExpired,
            ConnectError::RoomFull => return FerryError::RoomFull,
            ConnectError::RoomLocked => return FerryError::RoomLocked,
            ConnectError::PeerLeft => return FerryError::PeerGone(e.to_string()),
            ConnectError::RoomClosed => ConnectKind::RoomClosed,
            ConnectError::RateLimited => ConnectKind::RateLimited,
            ConnectError::Timeout => ConnectKind::Timeout,
            ConnectError::Signaling(_) => ConnectKind::Signaling,
            ConnectError::Server { code, .. } => ConnectKind::Server(*code),
            ConnectError::Rtc(_) => ConnectKind::Rtc,
            ConnectError::Protocol(_) | ConnectError::BadGuest(_) => ConnectKind::Protocol,
        };
        debug_assert_eq!(kind.as_str(), e.code());
        FerryError::Connect {
            kind,
            message: e.to_string(),
        }
    }
}

/// How to send: [`SendOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// STUN/TURN servers to use besides those the signaling server hands out.
    pub ice_servers: Vec<ferry_proto::signal::IceServer>,
    /// Signaling server, `ws://host:port/ws`.
    pub server: String,
    /// Room password; generated when `None`.
    pub password: Option<String>,
    /// Where the transfer is recorded (and, on resume, found).
    pub store: Store,
    /// Continue this transfer (id from `ferry history` / the room-created event).
    pub resume: Option<String>,
    /// How long the room lives, seconds (the server clamps it to its maximum; `None`: the
    /// server's default). Not applied when a resume reattaches to its earlier room.
    pub ttl_secs: Option<u64>,
    /// Local UDP binds for WebRTC (`None`: all interfaces).
    pub bind_addrs: Option<Vec<String>>,
    /// Give up on the first wrong password instead of waiting for another try.
    pub stop_on_wrong_password: bool,
    /// How long to wait for the receiver to come back after the link drops.
    pub reconnect_for: Duration,
    /// Data channel and compression (defaults: `defaults.rs`).
    pub tuning: Tuning,
    /// Fault injection for tests (the `test-hooks` feature; see [`crate::transfer::TestHooks`]).
    #[cfg(feature = "test-hooks")]
    pub test_hooks: crate::transfer::TestHooks,
}

impl SendOptions {
    /// The defaults for sending through `server`, recording in `store`.
    pub fn new(server: impl Into<String>, store: Store) -> Self {
        Self {
            server: server.into(),
            password: None,
            store,
            resume: None,
            ttl_secs: None,
            bind_addrs: None,
            ice_servers: Vec::new(),
            stop_on_wrong_password: true,
            reconnect_for: defaults::RECONNECT_FOR,
            tuning: Tuning::default(),
            #[cfg(feature = "test-hooks")]
            test_hooks: Default::default(),
        }
    }
}

/// How a send ended, when it did not fail as a whole.
#[derive(Debug, Clone)]
pub struct SendReport {
    /// The transfer's id.
    pub transfer_id: String,
    /// Bytes the receiver holds and confirmed (including earlier attempts).
    pub bytes: u64,
    /// Chunk payload bytes sent over the link in the last attempt, after compression.
    pub link_bytes: u64,
    /// Seconds from the receiver's answer to the end of the last attempt: the time data
    /// moved, not the wait for a receiver or for its user to accept.
    pub secs: f64,
    /// Files not sent, `(path, why)`.
    pub failed: Vec<(String, ErrorKind)>,
}

fn connect_config(
    server: &str,
    bind: &Option<Vec<String>>,
    ice_servers: &[ferry_proto::signal::IceServer],
    tuning: &Tuning,
) -> ConnectConfig {
    let mut cfg = ConnectConfig::new(server);
    cfg.ice_servers = ice_servers.to_vec();
    cfg.tuning = tuning.rtc.clone();
    if let Some(b) = bind {
        cfg.bind_addrs = b.clone();
    }
    cfg
}

/// `room-created` for a room this sender holds on `server`, with the link that joins it.
fn room_created(
    server: &str,
    ticket: &RoomTicket,
    password: &Password,
    transfer_id: &str,
    capped: bool,
) -> Event {
    Event::RoomCreated {
        room: ticket.room.display().to_string(),
        password: password.expose().to_string(),
        link: JoinTicket {
            server: server.to_string(),
            room: ticket.room,
            password: Some(password.clone()),
        }
        .to_url(),
        expires_at: ticket.expires_at as i64,
        server: server.to_string(),
        transfer_id: transfer_id.to_string(),
        capped,
    }
}

fn connected_event(kind: PathKind) -> Event {
    Event::Connected {
        path: if kind.is_direct() {
            "direct"
        } else {
            "relayed"
        }
        .into(),
        kind,
    }
}

/// Forward session events as engine events; returns a token cancelled on a wrong password.
/// A room extended moves transfer `id`'s recorded room expiry in `store` with it, so a resume
/// after a crash can still reattach until the new end.
fn forward_session_events(
    ev: EventSink,
    store: Store,
    id: String,
) -> (
    mpsc::UnboundedSender<SessionEvent>,
    tokio_util::sync::CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<SessionEvent>();
    let wrong = tokio_util::sync::CancellationToken::new();
    let w = wrong.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let wrong_password = matches!(e, SessionEvent::WrongPassword { .. });
            if let SessionEvent::RoomExtended { expires_at } = e
                && let Err(err) = store.set_room_expiry(&id, expires_at as i64)
            {
                tracing::warn!("could not record the room's new expiry: {err}");
            }
            if let Some(event) = Event::from_session(e) {
                ev.emit(event);
            }
            if wrong_password {
                w.cancel();
            }
        }
    });
    (tx, wrong)
}

fn file_rows(manifest: &Manifest) -> Vec<FileRow> {
    manifest
        .entries
        .iter()
        .zip(&manifest.sources)
        .enumerate()
        .map(|(i, (e, s))| FileRow {
            idx: i as u32,
            path: e.path.clone(),
            size: e.size,
            mtime_ms: e.mtime_ms,
            is_dir: e.dir,
            source: s.as_ref().map(|p| p.display().to_string()),
            dest: None,
            verified_offset: 0,
            hash: None,
            state: FileState::Pending,
        })
        .collect()
}

fn finish_store(
    store: &Store,
    id: &str,
    result: &Result<&u64, &FerryError>,
    link_bytes: Option<u64>,
    ev: &EventSink,
    secs: f64,
) {
    // Record the end before announcing it: whoever hears `done` or `error` (the app reloads
    // its history list on it) must find the transfer in that state, not still "active".
    let (recorded, event) = match result {
        Ok(bytes) => (
            store.set_transfer_state(id, TransferState::Done, None, Some(**bytes)),
            Event::Done {
                bytes: **bytes,
                secs,
                transfer_id: id.to_string(),
                link_bytes,
            },
        ),
        Err(e) => (
            store.set_transfer_state(id, TransferState::ended_by(e), Some(&e.to_string()), None),
            Event::Error {
                code: e.code().into(),
                message: e.to_string(),
            },
        ),
    };
    if let Err(e) = recorded {
        tracing::warn!("could not record the transfer's end: {e}");
    }
    ev.emit(event);
}
