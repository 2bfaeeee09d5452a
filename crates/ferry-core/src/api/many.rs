//! One room, many receivers: [`send_many`] keeps a shared room open and serves each receiver
//! that joins with its own PAKE run, peer connection, reader thread and history row, up to a
//! number at once. The files are read from disk by each receiver's own reader (nothing is
//! copied per receiver in memory), and one slow receiver holds back nobody else: each runs in
//! its own task over its own link.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{SendOptions, connect_config, connected_event, file_rows, finish_store, room_created};
use crate::error::FerryError;
use crate::events::{Event, EventSink};
use crate::manifest;
use crate::password::Password;
use crate::session::{ConnectError, GuestRun, RoomNews, SessionEvent, SharedRoom};
use crate::store::{self, Direction, TransferKind, TransferRow, TransferState};
use crate::transfer::TransferHandle;
use crate::transfer::sender::{self, SendJob};

/// Default [`ManyOptions::at_once`]: a handful of receivers served side by side.
pub const DEFAULT_RECEIVERS_AT_ONCE: u32 = 4;

/// How many receivers a shared room serves.
#[derive(Debug)]
pub struct ManyOptions {
    /// Receivers to serve in all (`None`: until the room is closed, expires, or the user
    /// stops). A receiver counts when it finishes: one that drops and joins again to resume
    /// counts once.
    pub total: Option<u32>,
    /// Receivers served at once (handshakes and transfers); more are turned away with
    /// `room-full` until one finishes.
    pub at_once: u32,
    /// Receiver numbers to stop (the others carry on).
    pub stop: Option<mpsc::UnboundedReceiver<u32>>,
}

impl Default for ManyOptions {
    fn default() -> Self {
        ManyOptions {
            total: None,
            at_once: DEFAULT_RECEIVERS_AT_ONCE,
            stop: None,
        }
    }
}

/// How a shared room ended.
#[derive(Debug, Clone, Default)]
pub struct ManyReport {
    /// The room's base transfer id; each receiver's history row is `<id>.<n>`.
    pub transfer_id: String,
    /// Receivers that got everything.
    pub finished: u32,
    /// Receivers whose run ended otherwise (stopped, failed, gone).
    pub failed: u32,
}

/// What a receiver's task ends with.
struct Outcome {
    receiver: u32,
    /// Whether it connected at all (a failed handshake is not a receiver served).
    connected: bool,
    result: Result<u64, FerryError>,
}

/// Send `paths` to several receivers through one shared room. Ends when `many.total`
/// receivers have finished, or (after the receivers in flight finish) when the room expires
/// or is closed; cancelling the handle stops everyone.
pub async fn send_many(
    opts: SendOptions,
    paths: &[PathBuf],
    mut many: ManyOptions,
    handle: &TransferHandle,
    ev: EventSink,
) -> Result<ManyReport, FerryError> {
    if opts.resume.is_some() {
        return Err(FerryError::Io(
            "a room for several receivers cannot resume a send; each receiver resumes by joining again"
                .into(),
        ));
    }
    let manifest =
        manifest::build(paths).map_err(|e| FerryError::io("reading the files to send", &e))?;
    if !manifest.skipped.is_empty() {
        ev.emit(Event::SkippedSymlinks {
            paths: manifest.skipped.clone(),
        });
    }
    let total = manifest::checked_total(&manifest.entries).ok_or_else(|| {
        FerryError::Io("the files add up to more than 8 EiB; send fewer at once".into())
    })?;
    let password = match &opts.password {
        Some(p) => Password::new(p.clone()),
        None => Password::generate(),
    };
    let at_once = many.at_once.max(1);
    let cfg = connect_config(
        &opts.server,
        &opts.bind_addrs,
        &opts.ice_servers,
        &opts.tuning,
    );
    let mut room = SharedRoom::create(cfg, password.clone(), opts.ttl_secs, at_once)
        .await
        .map_err(FerryError::from)?;
    let ticket = room.ticket().clone();
    let room_name = ticket.room.display().to_string();
    let base_id = manifest::transfer_id(&room_name, &manifest.entries);
    ev.emit(room_created(
        &opts.server,
        &ticket,
        &password,
        &base_id,
        false,
    ));
    ev.emit(Event::Waiting);

    let rows = file_rows(&manifest);
    let mut job = SendJob::new(base_id.clone(), manifest);
    #[cfg(feature = "test-hooks")]
    {
        job.hooks = opts.test_hooks.clone();
    }
    job.compress = opts.tuning.compress;
    let job = Arc::new(job);
    let rows = Arc::new(rows);

    let mut running: HashMap<u32, TransferHandle> = HashMap::new();
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut report = ManyReport {
        transfer_id: base_id.clone(),
        ..ManyReport::default()
    };
    let mut commands = handle.room_commands();
    let cancel = handle.cancelled_token();
    let closed = handle.room_closed_token();
    let mut room_open = true;
    let mut room_end: Option<FerryError> = None;
    let mut pause_rx = handle.pause_rx();
    let mut cancelling = false;

    loop {
        let served = report.finished as usize + running.len();
        let want_more = many.total.is_none_or(|t| served < t as usize);
        if !want_more && running.is_empty() {
            break;
        }
        if !room_open && running.is_empty() {
            break;
        }
        let admit = want_more && running.len() < at_once as usize;
        tokio::select! {
            news = room.next(admit), if room_open => match news {
                Ok(RoomNews::Guest(run)) => {
                    let receiver = run.guest;
                    let rh = TransferHandle::new();
                    if *pause_rx.borrow() {
                        rh.pause();
                    }
                    running.insert(receiver, rh.clone());
                    let ctx = ReceiverCtx {
                        opts: &opts,
                        base_id: &base_id,
                        room: &room_name,
                        total,
                    };
                    tasks.spawn(serve_receiver(
                        ctx.row(receiver),
                        rows.clone(),
                        *run,
                        job.clone(),
                        rh,
                        ev.for_receiver(receiver),
                        opts.store.clone(),
                    ));
                }
                Ok(RoomNews::TurnedAway(g)) => {
                    tracing::info!(guest = g, "receiver turned away: serving as many as allowed");
                }
                Ok(RoomNews::Extended { expires_at }) => {
                    ev.emit(Event::RoomExtended { expires_at: expires_at as i64 });
                }
                Err(e) => {
                    room_open = false;
                    room_end = Some(FerryError::from(e));
                }
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok(o) = done else { continue };
                running.remove(&o.receiver);
                match (&o.result, o.connected) {
                    (Ok(_), _) => report.finished += 1,
                    (Err(FerryError::RoomLocked), _) => {
                        room_open = false;
                        room_end = Some(FerryError::RoomLocked);
                    }
                    (Err(_), true) => report.failed += 1,
                    (Err(_), false) => {}
                }
            }
            Some(n) = recv_opt(&mut many.stop) => {
                if let Some(h) = running.get(&n) {
                    tracing::info!(receiver = n, "stopping one receiver");
                    h.cancel();
                }
            }
            Some(cmd) = recv_opt(&mut commands) => {
                let crate::session::RoomCommand::Extend { ttl_secs } = cmd;
                room.extend(ttl_secs);
            }
            _ = cancel.cancelled(), if !cancelling => {
                cancelling = true;
                for h in running.values() {
                    h.cancel();
                }
                room_open = false;
                room_end.get_or_insert(FerryError::Cancelled("by the user".into()));
            }
            // Pause and resume reach every receiver being served.
            Ok(()) = pause_rx.changed() => {
                let paused = *pause_rx.borrow_and_update();
                for h in running.values() {
                    if paused { h.pause() } else { h.resume() }
                }
            }
            _ = closed.cancelled(), if room_open => {
                room_open = false;
                room_end = Some(FerryError::Cancelled("you closed the room".into()));
            }
        }
        if !room_open {
            // Nobody new will be admitted; those in flight finish (or were cancelled).
            many.total = Some(report.finished + running.len() as u32);
        }
    }
    room.close().await;
    let end = match room_end {
        // Served everyone it was asked to, or the room ran its course after serving some.
        _ if many.total.is_some_and(|t| report.finished >= t) && report.finished > 0 => Ok(report),
        Some(FerryError::RoomExpired) if report.finished > 0 => Ok(report),
        Some(e) => Err(e),
        None => Ok(report),
    };
    match &end {
        Ok(r) => ev.emit(Event::Done {
            bytes: total.saturating_mul(u64::from(r.finished)),
            secs: 0.0,
            transfer_id: r.transfer_id.clone(),
            link_bytes: None,
        }),
        Err(e) => ev.emit(Event::Error {
            code: e.code().into(),
            message: e.to_string(),
        }),
    }
    end
}

async fn recv_opt<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(r) => match r.recv().await {
            Some(v) => Some(v),
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// What every receiver's history row shares.
struct ReceiverCtx<'a> {
    opts: &'a SendOptions,
    base_id: &'a str,
    room: &'a str,
    total: u64,
}

impl ReceiverCtx<'_> {
    /// Receiver `n`'s own history row (`<base id>.<n>`).
    fn row(&self, n: u32) -> TransferRow {
        TransferRow {
            id: format!("{}.{n}", self.base_id),
            direction: Direction::Send,
            kind: TransferKind::Files,
            room: self.room.to_string(),
            peer: format!("receiver {n}"),
            server: self.opts.server.clone(),
            host_token: String::new(),
            out_dir: String::new(),
            state: TransferState::Active,
            created_at: store::now(),
            updated_at: store::now(),
            total_bytes: self.total,
            done_bytes: 0,
            error: None,
        }
    }
}

/// One receiver, start to end: its handshake, then its transfer over its own link, recorded
/// in its own row. Its events come out wrapped as [`Event::Receiver`].
async fn serve_receiver(
    row: TransferRow,
    rows: Arc<Vec<crate::store::FileRow>>,
    run: GuestRun,
    job: Arc<SendJob>,
    handle: TransferHandle,
    ev: EventSink,
    store: crate::store::Store,
) -> Outcome {
    let receiver = run.guest;
    let (stx, mut srx) = mpsc::unbounded_channel::<SessionEvent>();
    let sev = ev.clone();
    let forward = tokio::spawn(async move {
        while let Some(e) = srx.recv().await {
            if let Some(event) = Event::from_session(e) {
                sev.emit(event);
            }
        }
    });
    let cancel = handle.cancelled_token();
    let connected = tokio::select! {
        c = run.run(&stx) => c,
        _ = cancel.cancelled() => Err(ConnectError::PeerLeft),
    };
    drop(stx);
    let _ = forward.await;
    let connected = match connected {
        Ok(c) => c,
        Err(e) => {
            let e = FerryError::from(e);
            ev.emit(Event::Error {
                code: e.code().into(),
                message: e.to_string(),
            });
            return Outcome {
                receiver,
                connected: false,
                result: Err(e),
            };
        }
    };
    ev.emit(connected_event(connected.link.info.path));
    ev.emit(Event::Verification {
        words: connected.verification.clone(),
    });
    if let Err(e) = store.insert_if_new(&row, &rows) {
        tracing::warn!("could not record receiver {receiver}'s transfer: {e}");
    }
    let attempt = sender::run(connected.link, &job, &handle, &ev).await;
    let result = attempt.map(|a| (a.bytes_acked, a.bytes_sent, a.secs));
    finish_store(
        &store,
        &row.id,
        &result.as_ref().map(|r| &r.0),
        result.as_ref().ok().map(|r| r.1),
        &ev,
        result.as_ref().map_or(0.0, |r| r.2),
    );
    Outcome {
        receiver,
        connected: true,
        result: result.map(|r| r.0),
    }
}
