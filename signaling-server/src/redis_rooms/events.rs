//! Messages between nodes: what a script tells a socket held by another node.
//!
//! One pub/sub channel per node; a message is `"<conn> <room> <code> <arg>"`. Scripts publish
//! notices; a node relaying for its socket publishes `F <from seat> <frame>` straight to the
//! peer's node (see [`super::Peer`]). Pub/sub rather
//! than streams: a message is for a socket that exists now, so a node that is gone needs no
//! backlog (its clients reconnect, and the protocol restarts the handshake), and publishing
//! costs one command with no per-consumer trimming. Measured in `docs/DEPLOY.md`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};
use futures::StreamExt;

use super::Peer;
use crate::rooms::{ConnId, locked_notice};
use crate::state::{AppState, push};

/// What one message asks of the receiving node.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Deliver a frame as is (a relayed message, already framed by the sender's node).
    Frame(String),
    /// Deliver a frame published by the node of seat `from`, if that is still the peer.
    From { from: Peer, frame: String },
    /// Who holds the other seat now.
    Peer(Peer),
    /// Deliver a message; `detach` when the socket lost its seat with it.
    Msg { msg: ServerMsg, detach: bool },
    /// The room's end moved.
    Deadline(u64),
}

fn about(guest: u32, msg: ServerMsg) -> ServerMsg {
    ServerMsg::FromGuest {
        guest,
        msg: Box::new(msg),
    }
}

fn role(s: &str) -> Option<Role> {
    match s {
        "host" => Some(Role::Host),
        "guest" => Some(Role::Guest),
        _ => None,
    }
}

/// Parse one channel message.
pub(crate) fn parse(text: &str) -> Option<(ConnId, RoomId, Event)> {
    let mut it = text.splitn(4, ' ');
    let conn = it.next()?.parse::<ConnId>().ok()?;
    let room = it.next()?.parse::<RoomId>().ok()?;
    let code = it.next()?;
    let arg = it.next().unwrap_or("");
    let msg = |msg, detach| Some(Event::Msg { msg, detach });
    let ev = match code {
        "R" => Some(Event::Frame(arg.to_string())),
        "F" => {
            let (from, frame) = arg.split_once(' ')?;
            match Peer::parse(from)? {
                from @ Peer::At { .. } => Some(Event::From {
                    from,
                    frame: frame.to_string(),
                }),
                _ => None,
            }
        }
        "P" => Some(Event::Peer(Peer::parse(arg)?)),
        "PJ" => msg(ServerMsg::PeerJoined { role: role(arg)? }, false),
        "PL" => msg(ServerMsg::PeerLeft { role: role(arg)? }, false),
        "HF" | "HFD" => msg(
            ServerMsg::HandshakeFailed {
                attempts_left: arg.parse().ok()?,
            },
            code == "HFD",
        ),
        "LK" => msg(locked_notice(), false),
        // About guest n of a shared room, to its host.
        "GJ" => msg(
            about(
                arg.parse().ok()?,
                ServerMsg::PeerJoined { role: Role::Guest },
            ),
            false,
        ),
        "GL" => msg(
            about(arg.parse().ok()?, ServerMsg::PeerLeft { role: Role::Guest }),
            false,
        ),
        "GF" => {
            let (n, left) = arg.split_once(' ')?;
            msg(
                about(
                    n.parse().ok()?,
                    ServerMsg::HandshakeFailed {
                        attempts_left: left.parse().ok()?,
                    },
                ),
                false,
            )
        }
        // A shared room's host turned this guest away.
        "KF" => msg(
            ServerMsg::error(
                None,
                ErrorCode::RoomFull,
                "the sender is busy with other receivers; try again shortly",
            ),
            true,
        ),
        "RC" => msg(ServerMsg::RoomClosed, true),
        "RP" => msg(
            ServerMsg::error(
                None,
                ErrorCode::Unauthorized,
                "replaced by a newer host connection",
            ),
            true,
        ),
        "D" => Some(Event::Deadline(arg.parse().ok()?)),
        _ => None,
    }?;
    Some((conn, room, ev))
}

/// Hand one message to its socket, if that socket is still here and still in that room (a
/// late message for a room it left is dropped, as a single node would never have sent it).
fn apply(state: &AppState, text: &str) {
    let Some(rooms) = state.redis() else { return };
    let Some((conn, room, ev)) = parse(text) else {
        tracing::debug!("unparseable node message");
        return;
    };
    let frame = {
        let mut members = rooms.members();
        let Some(m) = members.get_mut(&conn).filter(|m| m.room == room) else {
            return;
        };
        match ev {
            Event::Deadline(d) => {
                m.deadline_ms = d;
                return;
            }
            Event::Peer(p) => {
                m.peer = p;
                return;
            }
            Event::Frame(f) => f,
            // Unknown: seated an instant ago, the peer may have heard of this seat first.
            Event::From { from, frame }
                if m.peer == from || m.peer == Peer::Unknown || m.peer == Peer::Guests =>
            {
                frame
            }
            Event::From { .. } => return,
            Event::Msg { msg, detach } => {
                if detach {
                    members.remove(&conn);
                } else if matches!(msg, ServerMsg::PeerLeft { .. }) {
                    m.peer = Peer::Absent;
                }
                msg.to_json()
            }
        }
    };
    let hub = state.hub();
    if let Some(h) = hub.conns.get(&conn) {
        push(h, frame);
    }
}

/// Keep this node subscribed to its channel for as long as the server runs, reconnecting
/// with backoff when Redis goes away.
pub(crate) async fn subscriber(state: AppState) {
    let Some(rooms) = state.redis().cloned() else {
        return;
    };
    let stop = state.0.shutdown.clone();
    let channel = rooms.channel();
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut ps = rooms.client().get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        let ps = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(2), attempt) => r,
        };
        match ps {
            Ok(Ok(mut ps)) => {
                // Peer changes published while not subscribed were lost.
                rooms.forget_peers();
                rooms.subscribed.store(true, Ordering::Relaxed);
                tracing::info!("subscribed to this node's channel");
                backoff = Duration::from_millis(100);
                let mut stream = ps.on_message();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        m = stream.next() => match m {
                            Some(m) => match std::str::from_utf8(m.get_payload_bytes()) {
                                Ok(t) => apply(&state, t),
                                Err(_) => tracing::debug!("non-utf8 node message"),
                            },
                            None => break,
                        },
                    }
                }
                rooms.subscribed.store(false, Ordering::Relaxed);
                rooms.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("lost the redis subscription; reconnecting");
            }
            Ok(Err(e)) => {
                rooms.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot subscribe to redis");
            }
            Err(_) => {
                rooms.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("redis subscription timed out");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_parse() {
        let room: RoomId = "AAAAA-BBBBB".parse().unwrap();
        let r = room.as_str();
        let (c, rm, ev) = parse(&format!("7 {r} R {{\"type\":\"pake\"}} x")).unwrap();
        assert_eq!((c, rm), (7, room));
        assert_eq!(ev, Event::Frame("{\"type\":\"pake\"} x".into()));
        let (_, _, ev) = parse(&format!("7 {r} HFD 2")).unwrap();
        assert_eq!(
            ev,
            Event::Msg {
                msg: ServerMsg::HandshakeFailed { attempts_left: 2 },
                detach: true
            }
        );
        let (_, _, ev) = parse(&format!("7 {r} RC ")).unwrap();
        assert!(matches!(ev, Event::Msg { detach: true, .. }));
        let (_, _, ev) = parse(&format!("7 {r} D 123")).unwrap();
        assert_eq!(ev, Event::Deadline(123));
        assert!(parse(&format!("7 {r} PJ nobody")).is_none());
        assert!(parse("x AAAAA-BBBBB R {}").is_none());
        assert!(parse(&format!("7 {r} ZZ 1")).is_none());
        let (_, _, ev) = parse(&format!("7 {r} F 00000000000000ff:9 {{\"a\": 1}}")).unwrap();
        assert_eq!(
            ev,
            Event::From {
                from: Peer::At { node: 255, conn: 9 },
                frame: "{\"a\": 1}".into()
            }
        );
        assert!(parse(&format!("7 {r} F - {{}}")).is_none());
        let (_, _, ev) = parse(&format!("7 {r} GF 3 1")).unwrap();
        assert_eq!(
            ev,
            Event::Msg {
                msg: about(3, ServerMsg::HandshakeFailed { attempts_left: 1 }),
                detach: false
            }
        );
        let (_, _, ev) = parse(&format!("7 {r} KF ")).unwrap();
        assert!(matches!(ev, Event::Msg { detach: true, .. }));
        assert!(parse(&format!("7 {r} GJ x")).is_none());
        let (_, _, ev) = parse(&format!("7 {r} P -")).unwrap();
        assert_eq!(ev, Event::Peer(Peer::Absent));
        let (_, _, ev) = parse(&format!("7 {r} P 0a:3")).unwrap();
        assert_eq!(ev, Event::Peer(Peer::At { node: 10, conn: 3 }));
    }
}
