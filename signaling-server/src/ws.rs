//! `/ws`: one task per socket. Control messages go to the registry; relay messages are
//! forwarded to the other peer's queue untouched. Nothing here logs a frame's content.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_proto::SIGNAL_VERSION;
use ferry_proto::signal::{ClientMsg, ErrorCode, ServerMsg};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::rest::{client_ip, origin_allowed};
use crate::rooms::{ConnId, Refusal};
use crate::state::{AppState, ConnHandle, OUT_QUEUE, Out, ms_to_unix, now_ms, push};

/// Close codes (RFC 6455 §7.4.1).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

pub(crate) async fn handler(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.config().allowed_origins, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let ip = client_ip(state.config(), addr, &headers);
    let max = state.config().max_frame_bytes;
    let tracker = state.0.tracker.clone();
    // tungstenite's 128 KiB default buffers would dominate memory at thousands of sockets
    // (measured: 362 MB peak for 1,000 clients); signaling frames are small.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| tracker.track_future(run(state, socket, ip)))
}

type Sink = SplitSink<WebSocket, Message>;

async fn send(sink: &mut Sink, msg: &ServerMsg) -> bool {
    sink.send(Message::Text(msg.to_json().into())).await.is_ok()
}

async fn close_with(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}

fn is_too_large(e: &axum::Error) -> bool {
    // axum wraps the tungstenite error; its source is the original.
    matches!(
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn run(state: AppState, socket: WebSocket, ip: IpAddr) {
    let metrics = state.metrics();
    let n = metrics.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let (mut sink, stream) = socket.split();
    if n as usize > state.config().max_connections {
        metrics.reject(ErrorCode::ServerFull);
        let _ = send(
            &mut sink,
            &ServerMsg::error(None, ErrorCode::ServerFull, "too many connections"),
        )
        .await;
        close_with(&mut sink, close::TRY_AGAIN_LATER, "server full").await;
        metrics.connections.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let conn = state.next_conn_id();
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let kill = CancellationToken::new();
    state.hub().conns.insert(
        conn,
        ConnHandle {
            tx,
            kill: kill.clone(),
        },
    );
    tracing::debug!(conn, "connected");
    let mut s = Session {
        state: state.clone(),
        conn,
        ip,
        bad: 0,
    };
    s.pump(sink, stream, rx, kill).await;
    let notices = {
        let mut hub = state.hub();
        hub.conns.remove(&conn);
        hub.rooms.leave(conn)
    };
    state.deliver(notices, None);
    metrics.connections.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(conn, "disconnected");
}

struct Session {
    state: AppState,
    conn: ConnId,
    ip: IpAddr,
    bad: u32,
}

/// What the socket loop does after a client frame.
enum Next {
    Go,
    Close(u16, &'static str),
}

impl Session {
    async fn pump(
        &mut self,
        mut sink: Sink,
        mut stream: futures::stream::SplitStream<WebSocket>,
        mut rx: mpsc::Receiver<Out>,
        kill: CancellationToken,
    ) {
        let cfg = self.state.config().clone();
        let welcome = ServerMsg::Welcome {
            v: SIGNAL_VERSION,
            max_frame_bytes: cfg.max_frame_bytes,
        };
        if !send(&mut sink, &welcome).await {
            return;
        }
        let shutdown = self.state.0.shutdown.clone();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = tokio::time::sleep(cfg.idle_timeout);
        tokio::pin!(idle);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    close_with(&mut sink, close::GOING_AWAY, "server shutting down").await;
                    return;
                }
                _ = kill.cancelled() => {
                    close_with(&mut sink, close::POLICY, "too slow to read relayed messages").await;
                    return;
                }
                _ = &mut idle => {
                    close_with(&mut sink, close::NORMAL, "idle timeout").await;
                    return;
                }
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                out = rx.recv() => {
                    let Some(Out::Text(t)) = out else { return };
                    if sink.send(Message::Text(t.into())).await.is_err() {
                        return;
                    }
                }
                msg = stream.next() => {
                    idle.as_mut().reset(Instant::now() + cfg.idle_timeout);
                    let next = match msg {
                        None | Some(Ok(Message::Close(_))) => return,
                        Some(Err(e)) => {
                            if is_too_large(&e) {
                                self.state.metrics().reject(ErrorCode::TooLarge);
                                close_with(&mut sink, close::TOO_BIG, "frame too large").await;
                            }
                            return;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Next::Go,
                        Some(Ok(Message::Text(t))) if t.len() > cfg.max_frame_bytes => {
                            self.state.metrics().reject(ErrorCode::TooLarge);
                            Next::Close(close::TOO_BIG, "frame too large")
                        }
                        Some(Ok(Message::Text(t))) => {
                            let (replies, next) = self.on_text(t.as_str()).await;
                            for r in replies {
                                if !send(&mut sink, &r).await {
                                    return;
                                }
                            }
                            next
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let (replies, next) = self.malformed("binary frames are not part of the protocol");
                            for r in replies {
                                let _ = send(&mut sink, &r).await;
                            }
                            next
                        }
                    };
                    if let Next::Close(code, reason) = next {
                        close_with(&mut sink, code, reason).await;
                        return;
                    }
                }
            }
        }
    }

    fn malformed(&mut self, why: &str) -> (Vec<ServerMsg>, Next) {
        self.bad += 1;
        self.state.metrics().reject(ErrorCode::BadMessage);
        let reply = vec![ServerMsg::error(None, ErrorCode::BadMessage, why)];
        if self.bad >= self.state.config().max_bad_messages {
            (
                reply,
                Next::Close(close::POLICY, "too many malformed messages"),
            )
        } else {
            (reply, Next::Go)
        }
    }

    async fn on_text(&mut self, text: &str) -> (Vec<ServerMsg>, Next) {
        let msg = match ClientMsg::parse(text) {
            Ok(m) => m,
            Err(why) => return self.malformed(&why),
        };
        let rid = msg.rid();
        match self.dispatch(msg).await {
            Ok(replies) => (replies, Next::Go),
            Err(r) => (vec![ServerMsg::error(rid, r.code, r.message)], Next::Go),
        }
    }

    fn version(&self, v: u16) -> Result<(), Refusal> {
        if v == SIGNAL_VERSION {
            Ok(())
        } else {
            Err(self.state.reject(Refusal {
                code: ErrorCode::UnsupportedVersion,
                message: "this server speaks signaling protocol v1",
            }))
        }
    }

    fn not_in_room(&self) -> Result<(), Refusal> {
        match self.state.hub().rooms.membership(self.conn) {
            None => Ok(()),
            Some(_) => Err(self.state.reject(Refusal {
                code: ErrorCode::BadMessage,
                message: "this connection is already in a room; send leave first",
            })),
        }
    }

    async fn dispatch(&mut self, msg: ClientMsg) -> Result<Vec<ServerMsg>, Refusal> {
        let st = self.state.clone();
        let conn = self.conn;
        let rej = |r: Refusal| st.reject(r);
        match msg {
            ClientMsg::CreateRoom { v, rid, ttl_secs } => {
                self.version(v)?;
                self.not_in_room()?;
                let (rec, host_token) = st.create_room(self.ip, ttl_secs).await?;
                let a = st
                    .hub()
                    .rooms
                    .attach_host(conn, &rec.room, now_ms())
                    .map_err(rej)?;
                let mut out = st.deliver(a.notices, Some(conn));
                out.insert(
                    0,
                    ServerMsg::RoomCreated {
                        rid,
                        room: rec.room,
                        host_token,
                        expires_at: ms_to_unix(a.expires_at_ms),
                        ice_servers: st.ice_servers(&rec.room),
                    },
                );
                Ok(out)
            }
            ClientMsg::JoinRoom { v, rid, room } => {
                self.version(v)?;
                st.rate_check(self.ip)?;
                let a = st.hub().rooms.join(conn, &room, now_ms()).map_err(rej)?;
                tracing::debug!(conn, room = %room, "guest joined");
                Ok(joined_reply(&st, conn, rid, room, a))
            }
            ClientMsg::ReconnectHost {
                v,
                rid,
                room,
                host_token,
            } => {
                self.version(v)?;
                st.rate_check(self.ip)?;
                st.verify_host(&room, host_token).await?;
                let a = st
                    .hub()
                    .rooms
                    .attach_host(conn, &room, now_ms())
                    .map_err(rej)?;
                tracing::debug!(conn, room = %room, "host attached");
                Ok(joined_reply(&st, conn, rid, room, a))
            }
            ClientMsg::ExtendRoom { rid, ttl_secs } => {
                let ttl = st.config().clamp_ttl(Some(ttl_secs));
                let exp = now_ms().saturating_add(ttl.as_millis() as u64);
                let room = st.hub().rooms.extend(conn, exp).map_err(rej)?;
                if let Err(e) = st.store().set_expiry(room, exp).await {
                    tracing::error!(error = %e, "could not store a new expiry");
                }
                Ok(vec![ServerMsg::RoomExtended {
                    rid,
                    expires_at: ms_to_unix(exp),
                }])
            }
            ClientMsg::CloseRoom { rid: _ } => {
                let (room, notices) = st.hub().rooms.close(conn, now_ms()).map_err(rej)?;
                tracing::debug!(conn, room = %room, "room closed by host");
                let out = st.deliver(notices, Some(conn));
                if let Err(e) = st.store().delete(vec![room]).await {
                    tracing::error!(error = %e, "could not delete a closed session");
                }
                Ok(out)
            }
            ClientMsg::Leave => {
                let notices = st.hub().rooms.leave(conn);
                Ok(st.deliver(notices, Some(conn)))
            }
            ClientMsg::HandshakeFailed => {
                let notices = st.hub().rooms.handshake_failed(conn).map_err(rej)?;
                st.metrics()
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                Ok(st.deliver(notices, Some(conn)))
            }
            ClientMsg::Pake { payload } => self.relay(0, ServerMsg::Pake { payload }),
            ClientMsg::Offer { payload } => self.relay(1, ServerMsg::Offer { payload }),
            ClientMsg::Answer { payload } => self.relay(2, ServerMsg::Answer { payload }),
            ClientMsg::IceCandidate { payload } => {
                self.relay(3, ServerMsg::IceCandidate { payload })
            }
        }
    }

    /// Forward an opaque message to the other peer. The payload is re-framed, never inspected.
    fn relay(&self, kind: usize, msg: ServerMsg) -> Result<Vec<ServerMsg>, Refusal> {
        let hub = self.state.hub();
        let to = hub
            .rooms
            .peer_of(self.conn)
            .map_err(|r| self.state.reject(r))?;
        if let Some(h) = hub.conns.get(&to) {
            push(h, msg.to_json());
            self.state.metrics().relayed(kind);
        }
        Ok(Vec::new())
    }
}

/// `joined` to the peer that just entered (first), then the notices for the room.
fn joined_reply(
    st: &AppState,
    conn: ConnId,
    rid: Option<u64>,
    room: ferry_proto::RoomId,
    a: crate::rooms::Attached,
) -> Vec<ServerMsg> {
    let mut out = st.deliver(a.notices, Some(conn));
    out.insert(
        0,
        ServerMsg::Joined {
            rid,
            room,
            role: a.role,
            expires_at: ms_to_unix(a.expires_at_ms),
            peer_present: a.peer_present,
            ice_servers: st.ice_servers(&room),
        },
    );
    out
}
