//! What the CLI and the desktop app call: send some paths, receive from a ticket. Both keep
//! going across dropped links (the sender keeps its room, the receiver re-joins) and pick
//! up where the receiver's store says.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_proto::RoomId;
use tokio::sync::mpsc;

use crate::defaults::{self, Tuning};
use crate::error::{ConnectKind, ErrorKind, FerryError};
use crate::events::{Event, EventSink};
use crate::link::PathKind;
use crate::manifest::{self, Manifest};
use crate::password::Password;
use crate::session::{ConnectConfig, ConnectError, HostRoom, SessionEvent};
use crate::store::{
    self, Direction, FileRow, FileState, Store, TransferKind, TransferRow, TransferState,
};
use crate::ticket::JoinTicket;
use crate::transfer::TransferHandle;
use crate::transfer::sender::{self, SendJob};
use crate::transfer::text;

mod many;
mod receive;

pub use crate::transfer::receiver::{Decision, Offer, ReceivedFile};
pub use crate::transfer::text::check_size as check_text_size;
pub use many::{DEFAULT_RECEIVERS_AT_ONCE, ManyOptions, ManyReport, send_many};
pub use receive::{ReceiveOptions, ReceiveReport, receive};

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

/// The manifest to send and, on resume, the room to go back to.
fn load_or_build(
    opts: &SendOptions,
    paths: &[PathBuf],
) -> Result<(Manifest, Option<TransferRow>), FerryError> {
    let Some(id) = &opts.resume else {
        return Ok((
            manifest::build(paths).map_err(|e| FerryError::io("reading the files to send", &e))?,
            None,
        ));
    };
    let (t, files) = opts
        .store
        .transfer(id)?
        .filter(|(t, _)| t.direction == Direction::Send)
        .ok_or_else(|| FerryError::Io(format!("no sent transfer {id} in the store")))?;
    let m = Manifest {
        entries: files
            .iter()
            .map(|f| ferry_proto::peer::FileEntry {
                path: f.path.clone(),
                size: f.size,
                mtime_ms: f.mtime_ms,
                dir: f.is_dir,
            })
            .collect(),
        sources: files
            .iter()
            .map(|f| f.source.as_ref().map(PathBuf::from))
            .collect(),
        skipped: Vec::new(),
    };
    Ok((m, Some(t)))
}

/// Send `paths` (or resume `opts.resume`): create a room, wait for the receiver, transfer.
pub async fn send(
    opts: SendOptions,
    paths: &[PathBuf],
    handle: &TransferHandle,
    ev: EventSink,
) -> Result<SendReport, FerryError> {
    let (manifest, previous) = load_or_build(&opts, paths)?;
    if !manifest.skipped.is_empty() {
        tracing::warn!(skipped = ?manifest.skipped, "symlinks inside picked folders not sent");
        ev.emit(Event::SkippedSymlinks {
            paths: manifest.skipped.clone(),
        });
    }
    let total = manifest::checked_total(&manifest.entries).ok_or_else(|| {
        FerryError::Io("the files add up to more than 8 EiB; send fewer at once".into())
    })?;
    run_room(
        opts,
        Payload::Files { manifest, previous },
        total,
        handle,
        ev,
    )
    .await
}

/// Send a text snippet (at most [`defaults::TEXT_MAX_BYTES`] bytes, checked before any room
/// opens) through a room, as [`send`] sends files. The receiver shows it; nothing is stored
/// but its size.
pub async fn send_text(
    opts: SendOptions,
    text: String,
    handle: &TransferHandle,
    ev: EventSink,
) -> Result<SendReport, FerryError> {
    text::check_size(&text)?;
    let total = text.len() as u64;
    run_room(opts, Payload::Text(text), total, handle, ev).await
}

/// What a room carries.
// Built once per send and moved twice: boxing the manifest would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Payload {
    Files {
        manifest: Manifest,
        previous: Option<TransferRow>,
    },
    Text(String),
}

/// The sending side's room: open it (or reattach to a resumed transfer's), record the
/// transfer, wait for the receiver and carry `payload`, waiting again after a lost link.
async fn run_room(
    opts: SendOptions,
    payload: Payload,
    total: u64,
    handle: &TransferHandle,
    ev: EventSink,
) -> Result<SendReport, FerryError> {
    let password = match &opts.password {
        Some(p) => Password::new(p.clone()),
        None => Password::generate(),
    };
    let cfg = connect_config(
        &opts.server,
        &opts.bind_addrs,
        &opts.ice_servers,
        &opts.tuning,
    );
    let previous = match &payload {
        Payload::Files { previous, .. } => previous.as_ref(),
        Payload::Text(_) => None,
    };
    let mut host = None;
    if let Some(t) = previous
        && t.server == opts.server
        && !t.host_token.is_empty()
        && let Ok(room) = t.room.parse::<RoomId>()
    {
        match HostRoom::reattach(cfg.clone(), room, t.host_token.clone(), password.clone()).await {
            Ok(h) => host = Some(h),
            Err(e) => tracing::info!("cannot reattach to room {}: {e}; opening a new one", t.room),
        }
    }
    let asked_at = store::now();
    let (mut host, asked) = match host {
        Some(h) => (h, None),
        None => (
            HostRoom::create_for(cfg, password.clone(), opts.ttl_secs).await?,
            opts.ttl_secs,
        ),
    };
    if let Some(rx) = handle.room_commands() {
        host.listen(rx);
    }
    let ticket = host.ticket().clone();
    let room = ticket.room.display().to_string();
    let transfer_id = match (&payload, previous) {
        (_, Some(t)) => t.id.clone(),
        (Payload::Files { manifest, .. }, None) => manifest::transfer_id(&room, &manifest.entries),
        (Payload::Text(t), None) => text::transfer_id(&room, t),
    };
    let row = TransferRow {
        id: transfer_id.clone(),
        direction: Direction::Send,
        kind: match &payload {
            Payload::Files { .. } => TransferKind::Files,
            Payload::Text(_) => TransferKind::Text,
        },
        room: room.clone(),
        peer: String::new(),
        server: opts.server.clone(),
        // Recorded by `set_room` with the room's expiry, when it is dropped at the latest.
        host_token: String::new(),
        out_dir: String::new(),
        state: TransferState::Active,
        created_at: store::now(),
        updated_at: store::now(),
        total_bytes: total,
        done_bytes: 0,
        error: None,
    };
    let rows: Vec<FileRow> = match &payload {
        Payload::Files { manifest, .. } => file_rows(manifest),
        Payload::Text(_) => Vec::new(),
    };
    opts.store.insert_if_new(&row, &rows)?;
    opts.store.set_room(
        &transfer_id,
        &room,
        &opts.server,
        &ticket.host_token,
        ticket.expires_at as i64,
    )?;
    let link = JoinTicket {
        server: opts.server.clone(),
        room: ticket.room,
        password: Some(password.clone()),
    }
    .to_url();
    ev.emit(Event::RoomCreated {
        room,
        password: password.expose().to_string(),
        link,
        expires_at: ticket.expires_at as i64,
        server: opts.server.clone(),
        transfer_id: transfer_id.clone(),
        capped: asked.is_some_and(|t| was_capped(asked_at, t, ticket.expires_at)),
    });
    ev.emit(Event::Waiting);

    let job = match payload {
        Payload::Files { manifest, .. } => {
            let mut job = SendJob::new(transfer_id.clone(), manifest);
            #[cfg(feature = "test-hooks")]
            {
                job.hooks = opts.test_hooks.clone();
            }
            job.compress = opts.tuning.compress;
            Carry::Files(job)
        }
        Payload::Text(t) => Carry::Text(t),
    };
    let (stx, wrong) = forward_session_events(ev.clone(), opts.store.clone(), transfer_id.clone());
    let cancel = handle.cancelled_token();
    let closed = handle.room_closed_token();
    let mut deadline: Option<Instant> = None;
    let result = loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let accepted = tokio::select! {
            r = host.accept(&stx) => r.map_err(FerryError::from),
            _ = cancel.cancelled() => Err(FerryError::Cancelled("by the user".into())),
            _ = closed.cancelled() => Err(FerryError::Cancelled("you closed the room".into())),
            _ = wrong.cancelled(), if opts.stop_on_wrong_password => Err(FerryError::WrongPassword),
            _ = tokio::time::sleep(remaining.unwrap_or(Duration::MAX)), if remaining.is_some() => {
                Err(FerryError::PeerGone("the receiver did not come back".into()))
            }
        };
        let connected = match accepted {
            Ok(c) => c,
            Err(e) => break Err(e),
        };
        ev.emit(connected_event(connected.link.info.path));
        ev.emit(Event::Verification {
            words: connected.verification.clone(),
        });
        let attempt = match &job {
            Carry::Files(job) => sender::run(connected.link, job, handle, &ev)
                .await
                .map(|att| SendReport {
                    transfer_id: transfer_id.clone(),
                    bytes: att.bytes_acked,
                    link_bytes: att.bytes_sent,
                    secs: att.secs,
                    failed: att
                        .failed
                        .iter()
                        .map(|(i, e)| (job.manifest.entries[*i as usize].path.clone(), e.kind()))
                        .collect(),
                }),
            Carry::Text(t) => {
                let start = Instant::now();
                text::send(connected.link, &transfer_id, t, handle)
                    .await
                    .map(|()| SendReport {
                        transfer_id: transfer_id.clone(),
                        bytes: total,
                        link_bytes: total,
                        secs: start.elapsed().as_secs_f64(),
                        failed: Vec::new(),
                    })
            }
        };
        match attempt {
            Ok(report) => break Ok(report),
            Err(FerryError::PeerGone(why)) => {
                tracing::info!("link lost ({why}); keeping the room for the receiver");
                ev.emit(Event::Reconnecting);
                deadline = Some(Instant::now() + opts.reconnect_for);
            }
            Err(e) => break Err(e),
        }
    };
    // Done or cancelled, nothing will reattach to the room: its token goes. A failed
    // transfer keeps it until the room expires, for `ferry send --resume`.
    if matches!(&result, Ok(_) | Err(FerryError::Cancelled(_)))
        && let Err(e) = opts.store.clear_host_token(&transfer_id)
    {
        tracing::warn!("could not forget the room's host token: {e}");
    }
    finish_store(
        &opts.store,
        &transfer_id,
        &result.as_ref().map(|r| &r.bytes),
        result.as_ref().ok().map(|r| r.link_bytes),
        &ev,
        result.as_ref().map_or(0.0, |r| r.secs),
    );
    if result.is_ok() || closed.is_cancelled() {
        host.close().await;
    }
    result
}

/// Whether the server granted less than `asked` seconds (asked at `asked_at`, Unix seconds)
/// when the room ends at `expires_at`. A second or two of slack covers the round trip and
/// the clocks' rounding.
fn was_capped(asked_at: i64, asked: u64, expires_at: u64) -> bool {
    let wanted = asked_at.saturating_add(i64::try_from(asked).unwrap_or(i64::MAX));
    i64::try_from(expires_at)
        .unwrap_or(i64::MAX)
        .saturating_add(2)
        < wanted
}

/// What each attempt in a room sends.
enum Carry {
    Files(SendJob),
    Text(String),
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
