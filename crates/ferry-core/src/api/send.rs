//! Sending to one receiver: [`send`] (paths, or a resumed transfer) and [`send_text`] open
//! or reattach to a room, record the transfer, and carry it across dropped links.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_proto::RoomId;

use super::{
    SendOptions, SendReport, connect_config, connected_event, file_rows, finish_store,
    forward_session_events, room_created,
};
use crate::error::FerryError;
use crate::events::{Event, EventSink};
use crate::link::Link;
use crate::manifest::{self, Manifest};
use crate::password::Password;
use crate::session::HostRoom;
use crate::store::{self, Direction, FileRow, TransferKind, TransferRow, TransferState};
use crate::transfer::TransferHandle;
use crate::transfer::sender::{self, SendJob};
use crate::transfer::text;

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

/// Send a text snippet (at most [`TEXT_MAX_BYTES`](crate::defaults::TEXT_MAX_BYTES) bytes,
/// checked before any room opens) through a room, as [`send`] sends files. The receiver shows
/// it; nothing is stored but its size.
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
    let capped = asked.is_some_and(|t| was_capped(asked_at, t, ticket.expires_at));
    ev.emit(room_created(
        &opts.server,
        &ticket,
        &password,
        &transfer_id,
        capped,
    ));
    ev.emit(Event::Waiting);

    let job = match payload {
        Payload::Files { manifest, .. } => {
            let mut job = SendJob::new(transfer_id.clone(), manifest);
            #[cfg(feature = "test-hooks")]
            {
                job.hooks = opts.test_hooks.clone();
            }
            job.compress = opts.tuning.compress;
            if let Some(frames) = job.opening_frames() {
                host.open_with(frames);
            }
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
        let attempt = job
            .attempt(connected.link, &transfer_id, total, handle, &ev)
            .await;
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

impl Carry {
    /// One attempt over a fresh `link` (`total`: the bytes a text attempt reports; files
    /// count their own). `PeerGone` means the link dropped and the room may wait for the
    /// receiver to come back.
    async fn attempt(
        &self,
        link: Link,
        transfer_id: &str,
        total: u64,
        handle: &TransferHandle,
        ev: &EventSink,
    ) -> Result<SendReport, FerryError> {
        match self {
            Carry::Files(job) => sender::run(link, job, handle, ev)
                .await
                .map(|att| SendReport {
                    transfer_id: transfer_id.to_string(),
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
                text::send(link, transfer_id, t, handle)
                    .await
                    .map(|()| SendReport {
                        transfer_id: transfer_id.to_string(),
                        bytes: total,
                        link_bytes: total,
                        secs: start.elapsed().as_secs_f64(),
                        failed: Vec::new(),
                    })
            }
        }
    }
}
