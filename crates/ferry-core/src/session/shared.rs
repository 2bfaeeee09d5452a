//! The host of a shared room (signaling v3): one socket to the server, several guests at
//! once, each with its own PAKE run and peer connection.
//!
//! The server addresses the host's traffic by guest number (`to-guest` / `from-guest`). Each
//! guest's run gets a [`SignalClient`] over channels that unwraps what concerns that guest
//! and addresses what the run sends, so the ordinary [`Handshake`] runs unchanged, one per
//! guest, concurrently.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_proto::signal::{ClientMsg, IceServer, Role, ServerMsg};
use ferry_proto::{RoomId, SIGNAL_SHARED_VERSION};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::handshake::{Handshake, recv_by};
use super::host::{merged_ice, reply};
use super::{ConnectConfig, ConnectError, Connected, RoomTicket, SessionEvent};
use crate::password::Password;
use crate::signaling::{SignalClient, SignalError};

/// A room that serves several receivers. [`SharedRoom::next`] hears the room; each guest
/// that joins comes out as a [`GuestRun`] for the caller to run (concurrently).
pub struct SharedRoom {
    cfg: ConnectConfig,
    password: Password,
    ticket: RoomTicket,
    sig: Option<SignalClient>,
    server_ice: Vec<IceServer>,
    /// Each running guest's inbound queue, by guest number.
    guests: HashMap<u32, mpsc::UnboundedSender<ServerMsg>>,
    /// Wrong passwords across every guest: the host's own lock (see
    /// [`ConnectConfig::guess_limit`]) counts the room, not a guest.
    failed_guesses: Arc<AtomicU32>,
}

/// What the room says next.
pub enum RoomNews {
    /// A guest joined and was admitted: run it to get its link.
    Guest(Box<GuestRun>),
    /// A guest joined while the host was not admitting: it was turned away (`room-full`).
    TurnedAway(u32),
    /// The room's end moved.
    Extended {
        /// Unix seconds.
        expires_at: u64,
    },
}

/// One guest's handshake, to be driven by [`GuestRun::run`].
pub struct GuestRun {
    /// The guest's number in the room (from 1).
    pub guest: u32,
    sig: SignalClient,
    room: RoomId,
    password: Password,
    cfg: ConnectConfig,
    ice: Vec<IceServer>,
    failed_guesses: Arc<AtomicU32>,
}

impl GuestRun {
    /// PAKE, key confirmation, WebRTC and hello with this guest. A wrong password is
    /// reported to the server and ends as [`ConnectError::WrongPassword`]; when the room's
    /// wrong guesses reach the host's limit it ends as [`ConnectError::RoomLocked`] (the
    /// caller then closes the room).
    pub async fn run(
        mut self,
        events: &mpsc::UnboundedSender<SessionEvent>,
    ) -> Result<Connected, ConnectError> {
        let _ = events.send(SessionEvent::PeerJoined);
        let result = Handshake {
            sig: &mut self.sig,
            role: Role::Host,
            room: self.room,
            password: &self.password,
            cfg: &self.cfg,
            ice_servers: self.ice.clone(),
            events: Some(events),
            opening: &[],
        }
        .run()
        .await;
        if !matches!(result, Err(ConnectError::WrongPassword)) {
            return result;
        }
        let ours = self.failed_guesses.fetch_add(1, Ordering::AcqRel) + 1;
        let ours = self.cfg.guess_limit.saturating_sub(ours);
        let server = self.report_failure().await;
        let attempts_left = server.min(ours);
        let _ = events.send(SessionEvent::WrongPassword { attempts_left });
        if attempts_left == 0 {
            return Err(ConnectError::RoomLocked);
        }
        Err(ConnectError::WrongPassword)
    }

    /// Tell the server this guest failed key confirmation; the attempts it says are left
    /// (`u32::MAX` when it does not say: the host's own count decides).
    async fn report_failure(&mut self) -> u32 {
        if self.sig.send(ClientMsg::HandshakeFailed).is_err() {
            return u32::MAX;
        }
        let deadline = Instant::now() + self.cfg.connect_timeout;
        loop {
            match recv_by(&mut self.sig, deadline).await {
                Ok(ServerMsg::HandshakeFailed { attempts_left }) => return attempts_left,
                Ok(ServerMsg::Error { .. }) | Err(_) => return u32::MAX,
                Ok(_) => {}
            }
        }
    }
}

/// Open (or re-open) the room socket as the host of shared room `room`.
async fn attach(
    cfg: &ConnectConfig,
    room: RoomId,
    host_token: &str,
) -> Result<(SignalClient, u64, Vec<IceServer>), ConnectError> {
    let mut sig = SignalClient::connect(&cfg.server, cfg.connect_timeout).await?;
    let rid = sig.rid();
    sig.send(ClientMsg::ReconnectHost {
        v: SIGNAL_SHARED_VERSION,
        rid: Some(rid),
        room,
        host_token: host_token.to_owned(),
    })?;
    match reply(&mut sig, rid, Instant::now() + cfg.connect_timeout).await? {
        ServerMsg::Joined {
            expires_at,
            ice_servers,
            ..
        } => Ok((sig, expires_at, ice_servers)),
        other => Err(ConnectError::Protocol(format!(
            "unexpected reply {other:?}"
        ))),
    }
}

impl SharedRoom {
    /// Create a shared room seating up to `guests` guests at once, living `ttl_secs` (or the
    /// server's default). A server without shared rooms answers `unsupported-version` or
    /// `bad-message`: [`ConnectError::Server`].
    pub async fn create(
        cfg: ConnectConfig,
        password: Password,
        ttl_secs: Option<u64>,
        guests: u32,
    ) -> Result<SharedRoom, ConnectError> {
        let mut sig = SignalClient::connect(&cfg.server, cfg.connect_timeout).await?;
        let rid = sig.rid();
        sig.send(ClientMsg::CreateSharedRoom {
            v: SIGNAL_SHARED_VERSION,
            rid: Some(rid),
            ttl_secs,
            guests,
        })?;
        let deadline = Instant::now() + cfg.connect_timeout;
        let created = match reply(&mut sig, rid, deadline).await {
            Ok(m) => m,
            // An older server does not know the request at all.
            Err(ConnectError::Server {
                code: ferry_proto::signal::ErrorCode::BadMessage,
                ..
            }) => {
                return Err(ConnectError::Server {
                    code: ferry_proto::signal::ErrorCode::UnsupportedVersion,
                    message: "the signaling server is too old for several receivers per room"
                        .into(),
                });
            }
            Err(e) => return Err(e),
        };
        match created {
            ServerMsg::RoomCreated {
                room,
                host_token,
                expires_at,
                ice_servers,
                ..
            } => Ok(SharedRoom {
                ticket: RoomTicket {
                    server: cfg.server.clone(),
                    room,
                    host_token,
                    expires_at,
                },
                cfg,
                password,
                sig: Some(sig),
                server_ice: ice_servers,
                guests: HashMap::new(),
                failed_guesses: Arc::new(AtomicU32::new(0)),
            }),
            other => Err(ConnectError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// The room as the user is shown it and the host keeps it.
    pub fn ticket(&self) -> &RoomTicket {
        &self.ticket
    }

    /// Ask the server for a new lifetime from now; the answer comes as [`RoomNews::Extended`].
    pub fn extend(&mut self, ttl_secs: u64) {
        if let Some(sig) = self.sig.as_mut() {
            let rid = sig.rid();
            if sig
                .send(ClientMsg::ExtendRoom {
                    rid: Some(rid),
                    ttl_secs,
                })
                .is_err()
            {
                self.sig = None;
            }
        }
    }

    /// Re-open the room socket with backoff, for up to `connect_timeout`. Guests in the
    /// middle of a handshake lose it (their runs end); connected ones are not affected.
    async fn reconnect(&mut self) -> Result<(), ConnectError> {
        self.guests.clear();
        let give_up = Instant::now() + self.cfg.connect_timeout;
        let (sig, expires_at, ice) = super::host::with_backoff(give_up, || {
            attach(&self.cfg, self.ticket.room, &self.ticket.host_token)
        })
        .await?;
        self.sig = Some(sig);
        self.ticket.expires_at = expires_at;
        self.server_ice = ice;
        Ok(())
    }

    /// The room's next news. Messages about running guests are passed to their runs on the
    /// way. A guest joining while `admit` is false is turned away. Ends with the room:
    /// expired, closed or locked.
    pub async fn next(&mut self, admit: bool) -> Result<RoomNews, ConnectError> {
        loop {
            if self.sig.is_none() {
                self.reconnect().await?;
            }
            let Some(sig) = self.sig.as_mut() else {
                continue;
            };
            let msg = match sig.recv().await {
                Ok(m) => m,
                Err(SignalError::Closed) | Err(_) => {
                    tracing::info!("shared room socket lost; reattaching");
                    self.sig = None;
                    continue;
                }
            };
            match msg {
                ServerMsg::FromGuest { guest, msg } => {
                    if let ServerMsg::PeerJoined { role: Role::Guest } = *msg {
                        if !admit {
                            let _ = sig.send(ClientMsg::ToGuest {
                                guest,
                                msg: Box::new(ClientMsg::Leave),
                            });
                            return Ok(RoomNews::TurnedAway(guest));
                        }
                        return Ok(RoomNews::Guest(Box::new(self.admit(guest))));
                    }
                    let gone = match self.guests.get(&guest) {
                        Some(tx) => tx.send(*msg).is_err(),
                        None => false,
                    };
                    if gone {
                        self.guests.remove(&guest);
                    }
                }
                ServerMsg::RoomExtended { expires_at, .. } => {
                    self.ticket.expires_at = expires_at;
                    return Ok(RoomNews::Extended { expires_at });
                }
                ServerMsg::RoomExpired { .. } => return Err(ConnectError::RoomExpired),
                ServerMsg::RoomClosed => return Err(ConnectError::RoomClosed),
                ServerMsg::Error { code, message, .. } => {
                    let e = ConnectError::from_server(code, message);
                    if matches!(e, ConnectError::RoomLocked | ConnectError::RoomExpired) {
                        return Err(e);
                    }
                    tracing::debug!("server error in a shared room: {e}");
                }
                other => tracing::debug!("ignoring {other:?} in a shared room"),
            }
        }
    }

    /// A run for guest `guest`: its own channel pair, addressed on the room's socket.
    fn admit(&mut self, guest: u32) -> GuestRun {
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientMsg>();
        let max_frame = self
            .sig
            .as_ref()
            .map_or(ferry_proto::signal::MAX_FRAME_BYTES, |s| s.max_frame_bytes);
        if let Some(real) = self.sig.as_ref().map(SignalClient::sender) {
            tokio::spawn(async move {
                while let Some(m) = out_rx.recv().await {
                    let addressed = ClientMsg::ToGuest {
                        guest,
                        msg: Box::new(m),
                    };
                    if real.send(addressed).is_err() {
                        break;
                    }
                }
            });
        }
        self.guests.insert(guest, in_tx);
        GuestRun {
            guest,
            sig: SignalClient::from_channels(out_tx, in_rx, max_frame),
            room: self.ticket.room,
            password: self.password.clone(),
            cfg: self.cfg.clone(),
            ice: merged_ice(&self.server_ice, &self.cfg),
            failed_guesses: self.failed_guesses.clone(),
        }
    }

    /// Close the room for good (receivers already connected carry on).
    pub async fn close(mut self) {
        if let Some(mut sig) = self.sig.take() {
            let rid = sig.rid();
            if sig.send(ClientMsg::CloseRoom { rid: Some(rid) }).is_ok() {
                let deadline = Instant::now() + crate::defaults::ROOM_CLOSE_WAIT;
                while let Ok(m) = recv_by(&mut sig, deadline).await {
                    if matches!(m, ServerMsg::RoomClosed | ServerMsg::Error { .. }) {
                        break;
                    }
                }
            }
        }
    }
}
