//! The receiving side: join the room, and keep joining it while a try can still succeed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{connect_config, connected_event, finish_store};
use crate::defaults::{self, Tuning};
use crate::error::{ConnectKind, ErrorKind, FerryError};
use crate::events::{Event, EventSink};
use crate::password::Password;
use crate::session;
use crate::store::Store;
use crate::ticket::JoinTicket;
use crate::transfer::TransferHandle;
use crate::transfer::receiver::{self, Decision, Offer, ReceivedFile, RecvJob};

pub(crate) use crate::defaults::FIRST_CONNECT_TRIES;

/// Whether a failed join is worth another. Before the first link (`lost_link_until` is
/// `None`) only a WebRTC path that did not form, or a sender that left mid-handshake, is
/// retried, a few times: the sender's room stays open for exactly that (`HostRoom::accept`).
/// A timeout is not: the user has already waited the whole connect timeout, and the likely
/// cause (no sender) does not go away. After a lost link the receiver keeps trying until
/// its reconnect budget is spent, including a full room, which is the server not yet having
/// seen the old link's seat free up.
pub(crate) fn should_rejoin(
    e: &FerryError,
    failed_tries: u32,
    lost_link_until: Option<Instant>,
    now: Instant,
) -> bool {
    match lost_link_until {
        Some(until) => {
            now < until
                && matches!(
                    e,
                    FerryError::PeerGone(_) | FerryError::Connect { .. } | FerryError::RoomFull
                )
        }
        None => {
            failed_tries < FIRST_CONNECT_TRIES
                && match e {
                    FerryError::PeerGone(_) => true,
                    FerryError::Connect { kind, .. } => *kind == ConnectKind::Rtc,
                    _ => false,
                }
        }
    }
}

/// How to receive: [`ReceiveOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// STUN/TURN servers to use besides those the signaling server hands out.
    pub ice_servers: Vec<ferry_proto::signal::IceServer>,
    /// Used when the ticket is a bare room id.
    pub server: Option<String>,
    /// Overrides a password carried in the link.
    pub password: Option<String>,
    /// The folder files land in.
    pub out_dir: PathBuf,
    /// Replace existing files instead of landing beside them as `name (1).ext`.
    pub overwrite: bool,
    /// Where the transfer is recorded, and a resume finds what is already here.
    pub store: Store,
    /// Local UDP binds for WebRTC (`None`: all interfaces).
    pub bind_addrs: Option<Vec<String>>,
    /// How long to keep re-joining after the link drops.
    pub reconnect_for: Duration,
    /// Data channel (defaults: `defaults.rs`); `compress` is the sender's to choose.
    pub tuning: Tuning,
}

impl ReceiveOptions {
    /// The defaults for receiving into `out_dir`, recording in `store`.
    pub fn new(out_dir: impl Into<PathBuf>, store: Store) -> Self {
        Self {
            server: None,
            password: None,
            out_dir: out_dir.into(),
            overwrite: false,
            store,
            bind_addrs: None,
            ice_servers: Vec::new(),
            reconnect_for: defaults::RECONNECT_FOR,
            tuning: Tuning::default(),
        }
    }
}

/// How a receive ended, when it did not fail as a whole.
#[derive(Debug, Clone)]
pub struct ReceiveReport {
    /// The transfer's id.
    pub transfer_id: String,
    /// Bytes of the whole offer.
    pub bytes: u64,
    /// Seconds from the user's accept to the end of the last attempt (the time data moved).
    pub secs: f64,
    /// Where each file landed.
    pub files: Vec<ReceivedFile>,
    /// Files not received, `(path, why)`.
    pub failed: Vec<(String, ErrorKind)>,
    /// The text snippet, when the sender sent one instead of files (never written to disk).
    pub text: Option<String>,
}

/// Receive from `ticket` (a `ferry://join/...` link or a room id).
pub async fn receive(
    opts: ReceiveOptions,
    ticket: &str,
    decide: impl FnOnce(&Offer) -> Decision + Send,
    handle: &TransferHandle,
    ev: EventSink,
) -> Result<ReceiveReport, FerryError> {
    let t = JoinTicket::parse(ticket).map_err(|e| FerryError::Connect {
        kind: ConnectKind::BadTicket,
        message: e.to_string(),
    })?;
    let server = if t.server.is_empty() {
        opts.server.clone().ok_or_else(|| FerryError::Connect {
            kind: ConnectKind::NoServer,
            message: "a bare room id needs --server".into(),
        })?
    } else {
        t.server.clone()
    };
    let password = match (&opts.password, &t.password) {
        (Some(p), _) => Password::new(p.clone()),
        (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(FerryError::Connect {
                kind: ConnectKind::NoPassword,
                message: "the room's password is needed (--password)".into(),
            });
        }
    };
    let job = RecvJob {
        out_dir: opts.out_dir.clone(),
        overwrite: opts.overwrite,
        store: opts.store.clone(),
        room: t.room.display().to_string(),
        server: server.clone(),
    };
    let cfg = connect_config(&server, &opts.bind_addrs, &opts.ice_servers, &opts.tuning);
    let mut decide = Some(decide);
    let mut decided: Option<Decision> = None;
    // The offer names the transfer; remembered so a failure can be recorded against it.
    let seen_id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = seen_id.clone();
    let mut decide_once = move |o: &Offer| -> Decision {
        if let Ok(mut s) = seen.lock() {
            s.clone_from(&o.transfer_id);
        }
        *decided.get_or_insert_with(|| decide.take().map_or(Decision::Decline, |d| d(o)))
    };
    let cancel = handle.cancelled_token();
    let mut transfer_id = String::new();
    let mut bytes = 0;
    let mut deadline: Option<Instant> = None;
    let mut failed_tries = 0;
    let result = loop {
        let joined = tokio::select! {
            r = session::join(cfg.clone(), t.room, password.clone()) => r.map_err(FerryError::from),
            _ = cancel.cancelled() => Err(FerryError::Cancelled("by the user".into())),
        };
        let connected = match joined {
            Ok(c) => c,
            Err(e) => {
                failed_tries += 1;
                if should_rejoin(&e, failed_tries, deadline, Instant::now()) {
                    tracing::info!("join failed ({e}); retrying");
                    if deadline.is_none() {
                        ev.emit(Event::Retrying {
                            code: e.code().into(),
                            message: e.to_string(),
                        });
                    }
                    tokio::time::sleep(defaults::REJOIN_PAUSE).await;
                    continue;
                }
                break Err(e);
            }
        };
        ev.emit(connected_event(connected.link.info.path));
        ev.emit(Event::Verification {
            words: connected.verification.clone(),
        });
        match receiver::run(connected.link, &job, &mut decide_once, handle, &ev).await {
            Ok(att) => {
                transfer_id = att.transfer_id.clone();
                bytes = att.total;
                break Ok(ReceiveReport {
                    transfer_id: att.transfer_id,
                    bytes: att.total,
                    secs: att.secs,
                    files: att.files,
                    failed: att
                        .failed
                        .iter()
                        .map(|(p, e)| (p.clone(), e.kind()))
                        .collect(),
                    text: att.text,
                });
            }
            Err(FerryError::PeerGone(why)) => {
                tracing::info!("link lost ({why}); joining the room again");
                ev.emit(Event::Reconnecting);
                deadline = Some(Instant::now() + opts.reconnect_for);
            }
            Err(e) => break Err(e),
        }
    };
    if let Ok(r) = &result {
        bytes = r.bytes;
    } else if let Ok(s) = seen_id.lock() {
        transfer_id.clone_from(&s);
    }
    if transfer_id.is_empty() || matches!(&result, Err(FerryError::Declined(_))) {
        // Failed before an offer, or the user said no: nothing to record but the event (a
        // declined offer leaves no trace on disk or in the store).
        if let Err(e) = &result {
            ev.emit(Event::Error {
                code: e.code().into(),
                message: e.to_string(),
            });
        }
    } else {
        finish_store(
            &opts.store,
            &transfer_id,
            &result.as_ref().map(|_| &bytes),
            None,
            &ev,
            result.as_ref().map_or(0.0, |r| r.secs),
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(kind: ConnectKind) -> FerryError {
        FerryError::Connect {
            kind,
            message: String::new(),
        }
    }

    #[test]
    fn first_connect_retries_what_another_try_can_cure_a_few_times() {
        let now = Instant::now();
        let gone = FerryError::PeerGone("left".into());
        for e in [connect(ConnectKind::Rtc), gone] {
            assert!(should_rejoin(&e, 1, None, now), "{e}");
            assert!(should_rejoin(&e, FIRST_CONNECT_TRIES - 1, None, now), "{e}");
            assert!(!should_rejoin(&e, FIRST_CONNECT_TRIES, None, now), "{e}");
        }
    }

    #[test]
    fn first_connect_gives_up_at_once_on_answers_that_will_not_change() {
        let now = Instant::now();
        for e in [
            FerryError::WrongPassword,
            FerryError::RoomNotFound,
            FerryError::RoomExpired,
            FerryError::RoomLocked,
            // Someone else holds the seat, or (timeout) there is no sender to wait for.
            FerryError::RoomFull,
            connect(ConnectKind::Timeout),
            connect(ConnectKind::Signaling),
            connect(ConnectKind::BadTicket),
        ] {
            assert!(!should_rejoin(&e, 1, None, now), "{e}");
        }
    }

    #[test]
    fn after_a_lost_link_it_keeps_trying_until_the_budget_is_spent() {
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        for e in [
            connect(ConnectKind::Timeout),
            connect(ConnectKind::Signaling),
            FerryError::RoomFull,
            FerryError::PeerGone("x".into()),
        ] {
            assert!(should_rejoin(&e, 50, Some(until), now), "{e}");
            assert!(!should_rejoin(&e, 1, Some(until), until), "{e}");
        }
        assert!(!should_rejoin(
            &FerryError::WrongPassword,
            1,
            Some(until),
            now
        ));
        assert!(!should_rejoin(
            &FerryError::RoomExpired,
            1,
            Some(until),
            now
        ));
    }
}
