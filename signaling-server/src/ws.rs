//! `/ws`: one task per socket. Control messages go to the registry; relay messages are
//! forwarded to the other peer's queue untouched. Nothing here logs a frame's content.
//! The socket loop is here; what each request does is in `ws/requests.rs`.

mod requests;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_proto::SIGNAL_VERSION;
use ferry_proto::signal::{ErrorCode, ServerMsg};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use writer::Writer;

use crate::rest::{client_ip, origin_allowed};
use crate::rooms::ConnId;
use crate::state::{AppState, ConnHandle, OUT_QUEUE, Out, SocketSlot, now_ms};

/// Close codes (RFC 6455 §7.4.1).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A guest's `join-room` carried by the upgrade request: `/ws?join=ROOM&v=2&rid=N`. It saves
/// the guest the round trip between the server's upgrade answer and its first frame.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct UrlJoin {
    join: Option<String>,
    v: Option<u16>,
    rid: Option<u64>,
}

impl UrlJoin {
    /// The join as the frame it stands for, so it meets every check a frame meets (size, room
    /// id, version, one room per socket) in the same code.
    fn frame(&self) -> Option<String> {
        let room = self.join.as_ref()?;
        let v = self.v.unwrap_or(SIGNAL_VERSION);
        Some(
            serde_json::json!({"type": "join-room", "v": v, "rid": self.rid, "room": room})
                .to_string(),
        )
    }
}

pub(crate) async fn handler(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(url_join): Query<UrlJoin>,
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
        .on_upgrade(move |socket| tracker.track_future(run(state, socket, ip, url_join.frame())))
}

fn is_too_large(e: &axum::Error) -> bool {
    // axum wraps the tungstenite error; its source is the original.
    matches!(
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn run(state: AppState, socket: WebSocket, ip: IpAddr, first: Option<String>) {
    let metrics = state.metrics();
    let n = metrics.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let (sink, stream) = socket.split();
    let kill = CancellationToken::new();
    let mut w = Writer {
        sink,
        timeout: state.config().write_timeout,
        kill: kill.clone(),
        shutdown: state.0.shutdown.clone(),
    };
    let refused = if n as usize > state.config().max_connections {
        Some((ErrorCode::ServerFull, "too many connections", "server full"))
    } else {
        None
    };
    let slot = match refused {
        Some(_) => None,
        None => state.take_socket_slot(ip),
    };
    let refused = refused.or(slot.is_none().then_some((
        ErrorCode::RateLimited,
        "too many connections from this address",
        "too many connections from this address",
    )));
    if let Some((code, message, reason)) = refused {
        metrics.reject(code);
        let _ = w.send(&ServerMsg::error(None, code, message)).await;
        w.close_with(close::TRY_AGAIN_LATER, reason).await;
        metrics.connections.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let conn = state.next_conn_id();
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    state.hub().conns.insert(
        conn,
        ConnHandle {
            tx,
            queued: queued.clone(),
            max_queued: state.config().max_queue_bytes,
            kill: kill.clone(),
        },
    );
    tracing::debug!(conn, "connected");
    let mut s = Session {
        state: state.clone(),
        conn,
        ip,
        bad: 0,
        _slot: slot,
    };
    s.pump(w, stream, rx, queued, first).await;
    let notices = if state.redis().is_some() {
        state.hub().conns.remove(&conn);
        state.leave(conn).await
    } else {
        let mut hub = state.hub();
        hub.conns.remove(&conn);
        let notices = hub.rooms.leave(conn, now_ms());
        state.sync_failures(&hub);
        notices
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
    /// This address's socket slot, held for the socket's lifetime.
    _slot: Option<SocketSlot>,
}

/// What the socket loop does after a client frame.
enum Next {
    Go,
    Close(u16, &'static str),
}

impl Session {
    async fn pump(
        &mut self,
        mut w: Writer,
        mut stream: futures::stream::SplitStream<WebSocket>,
        mut rx: mpsc::Receiver<Out>,
        queued: Arc<AtomicUsize>,
        first: Option<String>,
    ) {
        let cfg = self.state.config().clone();
        let welcome = ServerMsg::Welcome {
            v: SIGNAL_VERSION,
            max_frame_bytes: cfg.max_frame_bytes,
            join_in_url: first.is_some(),
        };
        if !w.send(&welcome).await {
            return;
        }
        let mut greeted = false;
        if let Some(text) = first {
            greeted = true;
            match self.text(&mut w, &text).await {
                Some(Next::Go) => {}
                Some(Next::Close(code, reason)) => {
                    w.close_with(code, reason).await;
                    return;
                }
                None => return,
            }
        }
        let shutdown = self.state.0.shutdown.clone();
        let kill = w.kill.clone();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = tokio::time::sleep(cfg.idle_timeout);
        tokio::pin!(idle);
        // A socket that upgrades and then says nothing holds a slot for free; it gets a short
        // deadline for its first message rather than the idle timeout.
        let first = tokio::time::sleep(cfg.first_message_timeout);
        tokio::pin!(first);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    w.close_with(close::GOING_AWAY, "server shutting down").await;
                    return;
                }
                _ = kill.cancelled() => {
                    w.close_with(close::POLICY, "too slow to read relayed messages").await;
                    return;
                }
                _ = &mut idle => {
                    w.close_with(close::NORMAL, "idle timeout").await;
                    return;
                }
                _ = &mut first, if !greeted => {
                    w.close_with(close::POLICY, "no request in time").await;
                    return;
                }
                _ = ping.tick() => {
                    if !w.write(Message::Ping(Default::default())).await {
                        return;
                    }
                }
                out = rx.recv() => {
                    let Some(out) = out else { return };
                    let len = out.len();
                    let Out::Text(t) = out;
                    let ok = w.write(Message::Text(t.into())).await;
                    queued.fetch_sub(len, Ordering::AcqRel);
                    if !ok {
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
                                w.close_with(close::TOO_BIG, "frame too large").await;
                            }
                            return;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Next::Go,
                        Some(Ok(Message::Text(t))) => {
                            greeted = true;
                            let Some(next) = self.text(&mut w, t.as_str()).await else {
                                return;
                            };
                            next
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let (replies, next) = self.malformed("binary frames are not part of the protocol");
                            for r in replies {
                                if !w.send(&r).await {
                                    return;
                                }
                            }
                            next
                        }
                    };
                    if let Next::Close(code, reason) = next {
                        w.close_with(code, reason).await;
                        return;
                    }
                }
            }
        }
    }

    /// Answers one text frame; `None` when a reply could not be written.
    async fn text(&mut self, w: &mut Writer, text: &str) -> Option<Next> {
        if text.len() > self.state.config().max_frame_bytes {
            self.state.metrics().reject(ErrorCode::TooLarge);
            return Some(Next::Close(close::TOO_BIG, "frame too large"));
        }
        let (replies, next) = self.on_text(text).await;
        for r in replies {
            if !w.send(&r).await {
                return None;
            }
        }
        Some(next)
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
}
