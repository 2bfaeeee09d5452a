//! What each request on `/ws` does: parse, refuse what is malformed, relay opaque payloads,
//! and hand room requests to the registry. The socket loop around it is in `ws.rs`.

use ferry_proto::signal::{ClientMsg, ErrorCode, ServerMsg};
use ferry_proto::{SIGNAL_SHARED_VERSION, SIGNAL_VERSION};

use super::{Next, Session};
use crate::relay;
use crate::rooms::{ConnId, Refusal};
use crate::state::{AppState, ms_to_unix};

impl Session {
    pub(super) async fn on_text(&mut self, text: &str) -> (Vec<ServerMsg>, Next) {
        let msg = match ClientMsg::parse(text) {
            Ok(m) => m,
            Err(why) => return self.malformed(&why),
        };
        // A relayed payload past what its kind ever needs is refused before it is queued.
        let relayed = match relay::check(&msg) {
            Ok(r) => r,
            Err(why) => return self.malformed(why),
        };
        if let Some(r) = relayed {
            return match self.relay(r, msg).await {
                Ok(()) => (Vec::new(), Next::Go),
                Err(r) => (vec![ServerMsg::error(None, r.code, r.message)], Next::Go),
            };
        }
        if let ClientMsg::ToGuest { guest, msg } = msg {
            return self.addressed(guest, *msg).await;
        }
        let rid = msg.rid();
        match self.dispatch(msg).await {
            Ok(replies) => (replies, Next::Go),
            Err(r) => (vec![ServerMsg::error(rid, r.code, r.message)], Next::Go),
        }
    }

    fn version(&self, v: u16) -> Result<(), Refusal> {
        if v == SIGNAL_VERSION || v == SIGNAL_SHARED_VERSION {
            Ok(())
        } else {
            Err(self.state.reject(Refusal {
                code: ErrorCode::UnsupportedVersion,
                message: "this server speaks another signaling protocol version; update Ferry",
            }))
        }
    }

    fn not_in_room(&self) -> Result<(), Refusal> {
        match self.state.membership(self.conn) {
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
                self.create(v, rid, ttl_secs, None).await
            }
            ClientMsg::CreateSharedRoom {
                v,
                rid,
                ttl_secs,
                guests,
            } => {
                self.version(v)?;
                if v < SIGNAL_SHARED_VERSION {
                    return Err(rej(Refusal {
                        code: ErrorCode::UnsupportedVersion,
                        message: "create-shared-room needs signaling v3",
                    }));
                }
                self.not_in_room()?;
                let guests = (guests as usize).clamp(1, MAX_SHARED_GUESTS);
                self.create(v, rid, ttl_secs, Some(guests)).await
            }
            ClientMsg::ToGuest { guest, msg } => Ok(self.addressed(guest, *msg).await.0),
            ClientMsg::JoinRoom { v, rid, room } => {
                self.version(v)?;
                st.rate_check(self.ip).await?;
                let a = st.join(conn, &room).await?;
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
                st.rate_check(self.ip).await?;
                st.verify_host(&room, host_token).await?;
                if v < SIGNAL_SHARED_VERSION && st.is_shared(&room) {
                    return Err(rej(Refusal {
                        code: ErrorCode::UnsupportedVersion,
                        message: "this room serves several receivers; its host needs a newer Ferry",
                    }));
                }
                let a = st.attach_host(conn, &room, v).await?;
                tracing::debug!(conn, room = %room, "host attached");
                Ok(joined_reply(&st, conn, rid, room, a))
            }
            ClientMsg::ExtendRoom { rid, ttl_secs } => {
                let exp = st.extend(conn, ttl_secs).await?;
                Ok(vec![ServerMsg::RoomExtended {
                    rid,
                    expires_at: ms_to_unix(exp),
                }])
            }
            ClientMsg::CloseRoom { rid: _ } => {
                let (room, notices) = st.close(conn).await?;
                tracing::debug!(conn, room = %room, "room closed by host");
                Ok(st.deliver(notices, Some(conn)))
            }
            ClientMsg::Leave => {
                let notices = st.leave(conn).await;
                Ok(st.deliver(notices, Some(conn)))
            }
            ClientMsg::HandshakeFailed => {
                let notices = st.handshake_failed(conn).await?;
                Ok(st.deliver(notices, Some(conn)))
            }
            // Relayed kinds are handled by `relay` before dispatch.
            ClientMsg::Pake { .. }
            | ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::IceCandidate { .. } => Err(rej(crate::state::internal(
                "relayed message reached dispatch",
            ))),
        }
    }

    /// `to-guest`: the host of a shared room addresses guest `guest`. Whatever goes wrong is
    /// answered as `from-guest` about that guest, so the host's per-guest run hears it.
    async fn addressed(&mut self, guest: u32, msg: ClientMsg) -> (Vec<ServerMsg>, Next) {
        let st = self.state.clone();
        let conn = self.conn;
        let about = |m: ServerMsg| ServerMsg::FromGuest {
            guest,
            msg: Box::new(m),
        };
        let result = match msg {
            ClientMsg::HandshakeFailed => st.guest_failed(conn, guest).await,
            ClientMsg::Leave => st.remove_guest(conn, guest).await,
            m => match relay::check(&m) {
                Ok(Some(r)) => match relayed(m) {
                    Some(out) => st
                        .relay_to_guest(conn, guest, r.kind, r.pake_confirm, out)
                        .await
                        .map(|()| Vec::new()),
                    None => Err(crate::state::internal("not a relayed message")),
                },
                Ok(None) => {
                    let (reply, next) =
                        self.malformed("to-guest carries a relay, handshake-failed or leave");
                    return (reply.into_iter().map(about).collect(), next);
                }
                Err(why) => {
                    let (reply, next) = self.malformed(why);
                    return (reply.into_iter().map(about).collect(), next);
                }
            },
        };
        match result {
            Ok(notices) => (st.deliver(notices, Some(conn)), Next::Go),
            Err(r) => (
                vec![about(ServerMsg::error(None, r.code, r.message))],
                Next::Go,
            ),
        }
    }

    /// A new room with this socket as its host (`guests`: a shared room's seats), answered
    /// with `room-created` before the notices it causes.
    async fn create(
        &self,
        v: u16,
        rid: Option<u64>,
        ttl_secs: Option<u64>,
        guests: Option<usize>,
    ) -> Result<Vec<ServerMsg>, Refusal> {
        let st = &self.state;
        let (rec, host_token) = st.create_room_for(self.ip, ttl_secs, guests).await?;
        let a = st.attach_host(self.conn, &rec.room, v).await?;
        let mut out = st.deliver(a.notices, Some(self.conn));
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

    /// Forward an opaque message to the other peer. The payload is re-framed, never inspected
    /// (beyond a `pake`'s prefix, which `relay::check` has looked at).
    async fn relay(&self, r: relay::Relayed, msg: ClientMsg) -> Result<(), Refusal> {
        let Some(out) = relayed(msg) else {
            return Err(crate::state::internal("not a relayed message"));
        };
        self.state
            .relay(self.conn, r.kind, r.pake_confirm, out)
            .await
    }
}

/// Most guests a shared room seats at once: each seat is a socket in a handshake, which a
/// guest holds only until its peer connection is up.
const MAX_SHARED_GUESTS: usize = 16;

/// A relayed client message as the other peer receives it.
fn relayed(msg: ClientMsg) -> Option<ServerMsg> {
    Some(match msg {
        ClientMsg::Pake { payload } => ServerMsg::Pake { payload },
        ClientMsg::Offer { payload } => ServerMsg::Offer { payload },
        ClientMsg::Answer { payload } => ServerMsg::Answer { payload },
        ClientMsg::IceCandidate { payload } => ServerMsg::IceCandidate { payload },
        _ => return None,
    })
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
