//! Room lifecycle: the host creates (or reattaches to) a room and accepts guests; a guest joins.

use bytes::Bytes;
use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, IceServer, Role, ServerMsg};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::handshake::{Handshake, recv_by, room_event};
use super::{ConnectConfig, ConnectError, Connected, RoomTicket, SessionEvent};
use crate::password::Password;
use crate::signaling::{SignalClient, SignalError, backoff};

/// What the host's user may ask of a waiting room (through [`crate::TransferHandle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCommand {
    /// A new lifetime from now, in seconds (the server clamps it to its bounds).
    Extend {
        /// Requested lifetime.
        ttl_secs: u64,
    },
}

/// The host's side of a room.
pub struct HostRoom {
    /// The user's requests, heard while no guest is in the room.
    commands: Option<mpsc::UnboundedReceiver<RoomCommand>>,
    cfg: ConnectConfig,
    password: Password,
    ticket: RoomTicket,
    sig: Option<SignalClient>,
    server_ice: Vec<IceServer>,
    guest_present: bool,
    /// Guests' failed key confirmations seen by this host (its own count, see
    /// [`ConnectConfig::guess_limit`]).
    failed_guesses: u32,
    /// Frames sent right behind our hello on every link (see [`HostRoom::open_with`]).
    opening: Vec<Bytes>,
}

pub(super) fn merged_ice(server: &[IceServer], cfg: &ConnectConfig) -> Vec<IceServer> {
    let mut v = server.to_vec();
    v.extend(cfg.ice_servers.iter().cloned());
    v
}

/// Wait for the reply to request `rid`; room-level errors end the wait.
pub(super) async fn reply(
    sig: &mut SignalClient,
    rid: u64,
    deadline: Instant,
) -> Result<ServerMsg, ConnectError> {
    loop {
        match recv_by(sig, deadline).await? {
            ServerMsg::Error {
                rid: Some(r),
                code,
                message,
            } if r == rid => return Err(ConnectError::from_server(code, message)),
            m @ (ServerMsg::RoomCreated { .. } | ServerMsg::Joined { .. }) => return Ok(m),
            other => room_event(other)?,
        }
    }
}

async fn attach(
    cfg: &ConnectConfig,
    room: RoomId,
    host_token: &str,
) -> Result<(SignalClient, u64, bool, Vec<IceServer>), ConnectError> {
    let mut sig = SignalClient::connect(&cfg.server, cfg.connect_timeout).await?;
    let rid = sig.rid();
    sig.send(ClientMsg::ReconnectHost {
        v: ferry_proto::SIGNAL_VERSION,
        rid: Some(rid),
        room,
        host_token: host_token.to_owned(),
    })?;
    match reply(&mut sig, rid, Instant::now() + cfg.connect_timeout).await? {
        ServerMsg::Joined {
            expires_at,
            peer_present,
            ice_servers,
            ..
        } => Ok((sig, expires_at, peer_present, ice_servers)),
        other => Err(ConnectError::Protocol(format!(
            "unexpected reply {other:?}"
        ))),
    }
}

impl HostRoom {
    /// Create a room on the signaling server, with the server's default lifetime.
    pub async fn create(cfg: ConnectConfig, password: Password) -> Result<HostRoom, ConnectError> {
        Self::create_for(cfg, password, None).await
    }

    /// Create a room that lives `ttl_secs` (clamped by the server: the ticket's `expires_at`
    /// is what it granted), or the server's default.
    pub async fn create_for(
        cfg: ConnectConfig,
        password: Password,
        ttl_secs: Option<u64>,
    ) -> Result<HostRoom, ConnectError> {
        let mut sig = SignalClient::connect(&cfg.server, cfg.connect_timeout).await?;
        let rid = sig.rid();
        sig.send(ClientMsg::CreateRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(rid),
            ttl_secs,
        })?;
        match reply(&mut sig, rid, Instant::now() + cfg.connect_timeout).await? {
            ServerMsg::RoomCreated {
                room,
                host_token,
                expires_at,
                ice_servers,
                ..
            } => Ok(HostRoom {
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
                guest_present: false,
                failed_guesses: 0,
                opening: Vec::new(),
                commands: None,
            }),
            other => Err(ConnectError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Reattach to a room created earlier (after a sender crash), with its host token.
    pub async fn reattach(
        cfg: ConnectConfig,
        room: RoomId,
        host_token: String,
        password: Password,
    ) -> Result<HostRoom, ConnectError> {
        let (sig, expires_at, peer_present, ice) = attach(&cfg, room, &host_token).await?;
        Ok(HostRoom {
            ticket: RoomTicket {
                server: cfg.server.clone(),
                room,
                host_token,
                expires_at,
            },
            cfg,
            password,
            sig: Some(sig),
            server_ice: ice,
            guest_present: peer_present,
            failed_guesses: 0,
            opening: Vec::new(),
            commands: None,
        })
    }

    /// The room as the user is shown it (id, expiry) and the host keeps it (token).
    pub fn ticket(&self) -> &RoomTicket {
        &self.ticket
    }

    /// Send `frames` right behind our hello on every link on the agreed stream, without
    /// waiting for the guest's: what the host says first anyway (the manifest), so the
    /// guest's answer to it comes back with its hello, a round trip sooner
    /// (`LinkInfo::opened` says whether they went). They go only after the guest's DTLS
    /// certificate matched the fingerprint in its sealed answer, so only to the PAKE peer
    /// (docs/CRYPTO.md §5). The caller keeps them within `defaults::OPENING_FRAME` bytes
    /// each and `OPENING_FRAMES` in all: what any Ferry peer takes before its hello says more.
    pub fn open_with(&mut self, frames: Vec<Bytes>) {
        self.opening = frames;
    }

    /// Hear the user's [`RoomCommand`]s from `rx` while waiting for a guest.
    pub fn listen(&mut self, rx: mpsc::UnboundedReceiver<RoomCommand>) {
        self.commands = Some(rx);
    }

    /// Re-open the room socket with backoff, for up to `connect_timeout`.
    async fn reconnect(&mut self) -> Result<(), ConnectError> {
        let give_up = Instant::now() + self.cfg.connect_timeout;
        let (sig, expires_at, peer_present, ice) = with_backoff(give_up, || {
            attach(&self.cfg, self.ticket.room, &self.ticket.host_token)
        })
        .await?;
        tracing::info!(room = %self.ticket.room, "reattached to the room");
        self.sig = Some(sig);
        self.ticket.expires_at = expires_at;
        self.server_ice = ice;
        self.guest_present = peer_present;
        Ok(())
    }

    /// Wait for a guest, run PAKE + key confirmation, sealed offer/answer/trickle ICE, the
    /// data channel and the hello/fingerprint MAC. A guest with a wrong password is reported
    /// to the server, surfaces as [`SessionEvent::WrongPassword`], and the wait goes on
    /// ([`ConnectError::RoomLocked`] once the server locks the room). A guest whose attempt
    /// times out or finds no WebRTC path surfaces as [`SessionEvent::AttemptFailed`], and the
    /// wait goes on too. Call again after a link drops to let the guest reconnect (resume).
    /// The room socket is re-opened with backoff if it drops.
    pub async fn accept(
        &mut self,
        events: &mpsc::UnboundedSender<SessionEvent>,
    ) -> Result<Connected, ConnectError> {
        let mut announced = false;
        loop {
            if self.sig.is_none() {
                self.reconnect().await?;
            }
            let Some(sig) = self.sig.as_mut() else {
                continue;
            };
            if !self.guest_present {
                announced = false;
                // The server's next message, or the user's next request.
                enum Heard {
                    Server(Result<ServerMsg, SignalError>),
                    User(Option<RoomCommand>),
                }
                let heard = match self.commands.as_mut() {
                    Some(cmds) => tokio::select! {
                        m = sig.recv() => Heard::Server(m),
                        c = cmds.recv() => Heard::User(c),
                    },
                    None => Heard::Server(sig.recv().await),
                };
                let msg = match heard {
                    Heard::Server(m) => m,
                    Heard::User(Some(RoomCommand::Extend { ttl_secs })) => {
                        let rid = sig.rid();
                        // The reply, `room-extended`, comes back through this loop.
                        if sig
                            .send(ClientMsg::ExtendRoom {
                                rid: Some(rid),
                                ttl_secs,
                            })
                            .is_err()
                        {
                            self.sig = None;
                        }
                        continue;
                    }
                    // Nobody can ask any more: stop listening.
                    Heard::User(None) => {
                        self.commands = None;
                        continue;
                    }
                };
                match msg {
                    Ok(ServerMsg::PeerJoined { role: Role::Guest }) => self.guest_present = true,
                    Ok(ServerMsg::RoomExtended { expires_at, .. }) => {
                        self.ticket.expires_at = expires_at;
                        let _ = events.send(SessionEvent::RoomExtended { expires_at });
                    }
                    Ok(ServerMsg::RoomExpired { .. }) => return Err(ConnectError::RoomExpired),
                    Ok(ServerMsg::RoomClosed) => return Err(ConnectError::RoomClosed),
                    Ok(ServerMsg::Error { code, message, .. }) => {
                        let e = ConnectError::from_server(code, message);
                        if matches!(e, ConnectError::RoomLocked | ConnectError::RoomExpired) {
                            return Err(e);
                        }
                        tracing::debug!("server error while waiting for a guest: {e}");
                    }
                    Ok(other) => tracing::debug!("ignoring {other:?} while no guest"),
                    Err(SignalError::Closed) | Err(_) => self.sig = None,
                }
                continue;
            }
            if !announced {
                announced = true;
                let _ = events.send(SessionEvent::PeerJoined);
            }
            let result = Handshake {
                sig,
                role: Role::Host,
                room: self.ticket.room,
                password: &self.password,
                cfg: &self.cfg,
                ice_servers: merged_ice(&self.server_ice, &self.cfg),
                events: Some(events),
                opening: &self.opening,
            }
            .run()
            .await;
            self.guest_present = false;
            match result {
                Ok(c) => return Ok(c),
                Err(ConnectError::WrongPassword) => {
                    self.failed_guesses = self.failed_guesses.saturating_add(1);
                    let ours = self.cfg.guess_limit.saturating_sub(self.failed_guesses);
                    let server_left = self.report_failure().await?;
                    let attempts_left = server_left.min(ours);
                    let _ = events.send(SessionEvent::WrongPassword { attempts_left });
                    if attempts_left == 0 {
                        if server_left != 0 {
                            // The server may not have locked the room; closing it is the
                            // only way the host can stop further guesses on its own.
                            tracing::info!("guess limit reached; closing the room");
                            self.close_room().await;
                        }
                        return Err(ConnectError::RoomLocked);
                    }
                }
                Err(ConnectError::PeerLeft) => {
                    let _ = events.send(SessionEvent::PeerLeft);
                }
                Err(ConnectError::Signaling(e)) => {
                    tracing::info!("room socket lost: {e}");
                    self.sig = None;
                }
                // One guest's failed attempt is not the room's end: the sender's user would
                // otherwise have to start over while the receiver simply tries again.
                Err(
                    e @ (ConnectError::Timeout | ConnectError::Rtc(_) | ConnectError::BadGuest(_)),
                ) => {
                    tracing::info!("a guest's connection attempt failed: {e}; still waiting");
                    let _ = events.send(SessionEvent::AttemptFailed {
                        code: e.code(),
                        message: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Tell the server the guest failed key confirmation; returns the attempts left.
    async fn report_failure(&mut self) -> Result<u32, ConnectError> {
        let Some(sig) = self.sig.as_mut() else {
            return Ok(u32::MAX);
        };
        sig.send(ClientMsg::HandshakeFailed)?;
        let deadline = Instant::now() + self.cfg.connect_timeout;
        loop {
            match recv_by(sig, deadline).await {
                Ok(ServerMsg::HandshakeFailed { attempts_left }) => return Ok(attempts_left),
                Ok(ServerMsg::Error { code, message, .. }) => {
                    let e = ConnectError::from_server(code, message);
                    if matches!(e, ConnectError::RoomLocked) {
                        return Ok(0);
                    }
                    // No count from the server (it may have counted the run already when the
                    // guest left): the host's own count decides.
                    tracing::debug!("while reporting a failed handshake: {e}");
                    return Ok(u32::MAX);
                }
                Ok(ServerMsg::RoomExpired { .. }) => return Err(ConnectError::RoomExpired),
                // A next guest may already be knocking; remember it rather than swallow it.
                Ok(ServerMsg::PeerJoined { role: Role::Guest }) => self.guest_present = true,
                Ok(ServerMsg::PeerLeft { .. }) => self.guest_present = false,
                // Relays still in flight from the rejected guest.
                Ok(_) => {}
                Err(e) => {
                    self.sig = None;
                    tracing::debug!("no acknowledgement of the failed handshake: {e}");
                    return Ok(u32::MAX);
                }
            }
        }
    }

    /// Close the room for good.
    pub async fn close(mut self) {
        self.close_room().await;
    }

    async fn close_room(&mut self) {
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

/// Join a room as its guest.
pub async fn join(
    cfg: ConnectConfig,
    room: RoomId,
    password: Password,
) -> Result<Connected, ConnectError> {
    let (mut sig, rid) =
        SignalClient::connect_joining(&cfg.server, room, cfg.connect_timeout).await?;
    let deadline = Instant::now() + cfg.connect_timeout;
    let (peer_present, ice) = match reply(&mut sig, rid, deadline).await? {
        ServerMsg::Joined {
            peer_present,
            ice_servers,
            ..
        } => (peer_present, ice_servers),
        other => {
            return Err(ConnectError::Protocol(format!(
                "unexpected reply {other:?}"
            )));
        }
    };
    if !peer_present {
        // The host is reconnecting; give it the connect timeout to come back.
        loop {
            match recv_by(&mut sig, deadline).await? {
                ServerMsg::PeerJoined { role: Role::Host } => break,
                ServerMsg::PeerLeft { .. } => {}
                other => room_event(other)?,
            }
        }
    }
    let result = Handshake {
        sig: &mut sig,
        role: Role::Guest,
        room,
        password: &password,
        cfg: &cfg,
        ice_servers: merged_ice(&ice, &cfg),
        events: None,
        opening: &[],
    }
    .run()
    .await;
    if result.is_err() {
        let _ = sig.send(ClientMsg::Leave);
    }
    // Dropping the socket leaves the room: a resume joins again.
    result
}

/// Runs `op` until it succeeds, retrying with backoff while it fails the way a dropped or
/// restarting server makes it fail (signaling, timeout) and `give_up` is not reached.
pub(super) async fn with_backoff<T, F, Fut>(give_up: Instant, mut op: F) -> Result<T, ConnectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e @ (ConnectError::Signaling(_) | ConnectError::Timeout))
                if Instant::now() < give_up =>
            {
                tracing::debug!("reconnect attempt {attempt} failed: {e}");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}
