//! The registry operations against Redis, in the shapes the socket layer already uses
//! (`Attached`, `Notices`, `Refusal`). Notices for other sockets are published by the scripts;
//! what comes back here is only for the caller's own socket.

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

use super::{Member, Peer, RedisError, RedisRooms, busy, num, refusal_of};
use crate::limits::IpKey;
use crate::rooms::{Attached, ConnId, Notices, Refusal, RoomRecord, locked_notice};

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Host => "host",
        Role::Guest => "guest",
    }
}

fn ok_or_refusal(v: Vec<String>) -> Result<Vec<String>, Refusal> {
    match v.first().map(String::as_str) {
        Some("ok") => Ok(v),
        Some(other) => Err(refusal_of(other)),
        None => Err(refusal_of("")),
    }
}

/// Outcome of a script that may have counted a failed guess.
pub(crate) struct Counted<T> {
    pub value: T,
    pub guesses: u64,
}

impl RedisRooms {
    /// Per-address create/join/reconnect rate, shared by every node.
    pub(crate) async fn rate_check(
        &self,
        ip: IpKey,
        per_second: u32,
        burst: u32,
    ) -> Result<(), Refusal> {
        let bucket = format!("ip:{}", self.owner(ip));
        let v = self
            .script(
                &self.scripts.rate,
                &[&bucket, &per_second.max(1), &burst.max(1)],
            )
            .await?;
        ok_or_refusal(v).map(|_| ())
    }

    /// Create a room with no host attached (`shared` > 0: a shared room seating that many
    /// guests at once). `None` asks the caller to retry with a new id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create(
        &self,
        room: RoomId,
        hash: &str,
        ttl_ms: u64,
        ip: IpKey,
        global_rate: (u32, u32),
        shared: usize,
    ) -> Result<Option<RoomRecord>, Refusal> {
        let owner = self.owner(ip);
        let l = &self.limits;
        let v = self
            .script(
                &self.scripts.create,
                &[
                    &room.as_str(),
                    &hash,
                    &ttl_ms,
                    &owner,
                    &l.max_rooms,
                    &l.max_rooms_per_ip,
                    &l.grace_ms,
                    &l.tomb_ms,
                    &global_rate.0.max(1),
                    &global_rate.1.max(1),
                    &shared,
                ],
            )
            .await?;
        if v.first().map(String::as_str) == Some("collision") {
            return Ok(None);
        }
        let v = ok_or_refusal(v)?;
        Ok(Some(RoomRecord {
            room,
            host_token_hash: hash.to_string(),
            created_at_ms: num(&v, 1),
            expires_at_ms: num(&v, 2),
        }))
    }

    /// Record `conn` as in `room` before a script that seats it runs: an event for it may
    /// arrive before the script's reply does.
    fn pre_seat(&self, conn: ConnId, room: RoomId, role: Role) {
        self.members().insert(
            conn,
            Member {
                room,
                role,
                deadline_ms: u64::MAX,
                peer: Peer::Unknown,
                guest: None,
            },
        );
    }

    fn seated(&self, conn: ConnId, r: &Result<Vec<String>, Refusal>) {
        let mut m = self.members();
        match r {
            Ok(v) => {
                if let Some(me) = m.get_mut(&conn) {
                    me.deadline_ms = num(v, 2);
                }
            }
            Err(_) => {
                m.remove(&conn);
            }
        }
    }

    /// Whether `conn` may enter `room` as `role`: true when it already holds that seat.
    fn ensure_free(&self, conn: ConnId, room: &RoomId, role: Role) -> Result<bool, Refusal> {
        match self.members().get(&conn) {
            None => Ok(false),
            Some(m) if m.room == *room && m.role == role => Ok(true),
            Some(_) => Err(Refusal {
                code: ErrorCode::BadMessage,
                message: "this connection is already in a room; send leave first",
            }),
        }
    }

    pub(crate) async fn join(
        &self,
        conn: ConnId,
        room: &RoomId,
    ) -> Result<Counted<Attached>, Refusal> {
        let held = self.ensure_free(conn, room, Role::Guest)?;
        if !held {
            self.pre_seat(conn, *room, Role::Guest);
        }
        let seat = self.seat(conn);
        let l = &self.limits;
        let r = self
            .member_script(
                conn,
                &self.scripts.join,
                &[&room.as_str(), &seat, &l.fail_limit, &l.grace_ms],
            )
            .await
            .and_then(ok_or_refusal);
        if !held {
            self.seated(conn, &r);
        }
        let v = r?;
        // A shared room numbers its guests: this one's relays to the host carry it.
        if let Some(n) = v.get(5).and_then(|s| s.parse::<u32>().ok())
            && let Some(me) = self.members().get_mut(&conn)
        {
            me.guest = Some(n);
        }
        Ok(Counted {
            value: Attached {
                role: Role::Guest,
                expires_at_ms: num(&v, 1),
                peer_present: v.get(3).map(String::as_str) == Some("1"),
                notices: Vec::new(),
            },
            guesses: num(&v, 4),
        })
    }

    /// The stored token hash of a live room.
    pub(crate) async fn host_token_hash(&self, room: &RoomId) -> Result<String, Refusal> {
        let v = self
            .script(&self.scripts.check, &[&room.as_str(), &"host"])
            .await
            .and_then(ok_or_refusal)?;
        Ok(v.get(2).cloned().unwrap_or_default())
    }

    /// Whether a guest could join `room` now; its expiry.
    pub(crate) async fn check_joinable(&self, room: &RoomId) -> Result<u64, Refusal> {
        let v = self
            .script(&self.scripts.check, &[&room.as_str(), &"join"])
            .await
            .and_then(ok_or_refusal)?;
        Ok(num(&v, 1))
    }

    /// Seat `conn` as the host (token already verified); a previous host socket is told it
    /// was replaced, wherever it is.
    pub(crate) async fn attach_host(
        &self,
        conn: ConnId,
        room: &RoomId,
        v: u16,
    ) -> Result<Counted<Attached>, Refusal> {
        let held = self.ensure_free(conn, room, Role::Host)?;
        if !held {
            self.pre_seat(conn, *room, Role::Host);
        }
        let seat = self.seat(conn);
        let l = &self.limits;
        let r = self
            .script(
                &self.scripts.attach,
                &[&room.as_str(), &seat, &l.fail_limit, &l.grace_ms, &v],
            )
            .await
            .and_then(ok_or_refusal);
        if !held {
            self.seated(conn, &r);
        } else if let Ok(v) = &r
            && let Some(m) = self.members().get_mut(&conn)
        {
            m.deadline_ms = num(v, 2);
        }
        let v = r?;
        Ok(Counted {
            value: Attached {
                role: Role::Host,
                expires_at_ms: num(&v, 1),
                peer_present: v.get(3).map(String::as_str) == Some("1"),
                notices: Vec::new(),
            },
            guesses: num(&v, 4),
        })
    }

    /// Leave the room `conn` is in, if any. Returns the guesses this counted. A Redis failure
    /// here leaves the seat to lapse with this node's heartbeat or to be replaced.
    pub(crate) async fn leave(&self, conn: ConnId) -> u64 {
        let Some(m) = self.members().remove(&conn) else {
            return 0;
        };
        let seat = self.seat(conn);
        let l = &self.limits;
        match self
            .script(
                &self.scripts.leave,
                &[
                    &m.room.as_str(),
                    &seat,
                    &role_name(m.role),
                    &l.fail_limit,
                    &l.grace_ms,
                ],
            )
            .await
        {
            Ok(v) => num(&v, 1),
            Err(_) => 0,
        }
    }

    fn hosted(&self, conn: ConnId) -> Result<RoomId, Refusal> {
        match self.members().get(&conn) {
            Some(Member {
                room,
                role: Role::Host,
                ..
            }) => Ok(*room),
            Some(_) => Err(Refusal {
                code: ErrorCode::Unauthorized,
                message: "only the host may do this",
            }),
            None => Err(Refusal {
                code: ErrorCode::NotInRoom,
                message: "not in a room",
            }),
        }
    }

    /// Run a room script for member `conn`: its refusal as a `Refusal`, and a member the
    /// script no longer finds in a room forgotten here too.
    async fn member_script(
        &self,
        conn: ConnId,
        s: &redis::Script,
        args: &[&(dyn std::fmt::Display + Sync)],
    ) -> Result<Vec<String>, Refusal> {
        let r = self.script(s, args).await.and_then(ok_or_refusal);
        if let Err(e) = &r {
            self.dropped(conn, e);
        }
        r
    }

    /// A script said `conn` no longer holds its seat: forget it here too.
    fn dropped(&self, conn: ConnId, r: &Refusal) {
        if r.message == "not in a room" {
            self.members().remove(&conn);
        }
    }

    /// Relay `frame` to the peer of `conn`. With the peer's seat known, one PUBLISH to its
    /// node; a confirmation tag (it moves the guess state) or an unknown peer takes the script,
    /// which checks both seats in Redis. The socket's task awaits each relay before reading
    /// its next message, so its messages reach Redis, and the peer, in order either way.
    pub(crate) async fn relay(
        &self,
        conn: ConnId,
        pake_confirm: Option<bool>,
        frame: &str,
    ) -> Result<(), Refusal> {
        let Some(m) = self.members().get(&conn).copied() else {
            return Err(refusal_of("not-member"));
        };
        if pake_confirm != Some(true)
            && let Peer::At { node, conn: to } = m.peer
        {
            let channel = format!("ferry:node:{node:016x}");
            let msg = format!("{to} {} F {}:{conn} {frame}", m.room.as_str(), self.node);
            let mut inv = self.scripts.publish.prepare_invoke();
            inv.arg(channel).arg(msg);
            let mut c = self.conn.clone();
            return self
                .timed(inv.invoke_async::<i64>(&mut c))
                .await
                .map(|_| ())
                .map_err(|_: RedisError| busy());
        }
        let pake = match pake_confirm {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        };
        let seat = self.seat(conn);
        let guest = m.guest.map(|n| n.to_string()).unwrap_or_default();
        let r = self
            .script(
                &self.scripts.relay,
                &[
                    &m.room.as_str(),
                    &seat,
                    &role_name(m.role),
                    &pake,
                    &frame,
                    &guest,
                ],
            )
            .await
            .and_then(ok_or_refusal);
        match &r {
            Err(e) => self.dropped(conn, e),
            // Learn the peer only if nothing was heard since: an event is never older.
            Ok(v) => {
                if let Some(p) = v.get(1).and_then(|s| Peer::parse(s))
                    && let Some(me) = self.members().get_mut(&conn)
                    && me.room == m.room
                    && me.peer == Peer::Unknown
                {
                    me.peer = p;
                }
            }
        }
        r.map(|_| ())
    }

    /// Host only: the guest failed key confirmation.
    pub(crate) async fn handshake_failed(&self, conn: ConnId) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .script(
                &self.scripts.failed,
                &[&room.as_str(), &seat, &self.limits.fail_limit, &""],
            )
            .await;
        let v = r?;
        // The guest may have been removed: relay by script until this node hears who is
        // there (its `P` event can trail this reply).
        if let Some(m) = self.members().get_mut(&conn)
            && m.room == room
        {
            m.peer = Peer::Unknown;
        }
        let attempts_left = num(&v, 1) as u32;
        let mut notices = vec![(conn, ServerMsg::HandshakeFailed { attempts_left })];
        if v.get(2).map(String::as_str) == Some("1") {
            notices.push((conn, locked_notice()));
        }
        Ok(Counted {
            value: notices,
            guesses: num(&v, 3),
        })
    }

    /// Host only: end the room now.
    pub(crate) async fn close(&self, conn: ConnId) -> Result<Counted<(RoomId, Notices)>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(conn, &self.scripts.close, &[&room.as_str(), &seat])
            .await;
        let v = r?;
        self.members().remove(&conn);
        Ok(Counted {
            value: (room, vec![(conn, ServerMsg::RoomClosed)]),
            guesses: num(&v, 1),
        })
    }

    /// Host only: a new lifetime from now. Returns the new expiry.
    pub(crate) async fn extend(&self, conn: ConnId, ttl_ms: u64) -> Result<u64, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let l = &self.limits;
        let r = self
            .member_script(
                conn,
                &self.scripts.extend,
                &[&room.as_str(), &seat, &ttl_ms, &l.tomb_ms, &l.grace_ms],
            )
            .await;
        let v = r?;
        if let Some(m) = self.members().get_mut(&conn) {
            m.deadline_ms = num(&v, 2);
        }
        Ok(num(&v, 1))
    }

    /// Rooms of this node's sockets whose known end has passed: ask Redis whether they did
    /// end (the key is gone) and return the sockets to tell `room-expired`. Sockets whose seat
    /// went to someone else are forgotten quietly.
    pub(crate) async fn expire_due(&self, now_ms: u64) -> Notices {
        const BATCH: usize = 1024;
        let due: Vec<(ConnId, Member)> = self
            .members()
            .iter()
            .filter(|(_, m)| m.deadline_ms <= now_ms)
            .take(BATCH)
            .map(|(c, m)| (*c, *m))
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let mut p = redis::pipe();
        for (_, m) in &due {
            // A shared room's guest holds `g:<n>`, not `gs`.
            let guest_seat = m
                .guest
                .map_or_else(|| "gs".to_string(), |n| format!("g:{n}"));
            p.cmd("HMGET")
                .arg(format!("ferry:room:{}", m.room.as_str()))
                .arg("d")
                .arg("hs")
                .arg(guest_seat);
        }
        let mut c = self.conn.clone();
        type Row = (Option<u64>, Option<String>, Option<String>);
        let Ok(rows) = self.timed(p.query_async::<Vec<Row>>(&mut c)).await else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        let mut members = self.members();
        for ((conn, m), (d, hs, gs)) in due.into_iter().zip(rows) {
            // Only if it is still the same membership this pass looked at.
            let Some(cur) = members.get_mut(&conn) else {
                continue;
            };
            if cur.room != m.room {
                continue;
            }
            let held = match m.role {
                Role::Host => hs,
                Role::Guest => gs,
            };
            match d {
                None => {
                    members.remove(&conn);
                    notices.push((conn, ServerMsg::RoomExpired { room: m.room }));
                }
                Some(_) if held.as_deref() != Some(self.seat(conn).as_str()) => {
                    members.remove(&conn);
                }
                // Not ended by Redis's clock yet (clocks differ a little): look again then.
                Some(d) => cur.deadline_ms = d.max(now_ms.saturating_add(50)),
            }
        }
        notices
    }

    /// Host of a shared room: relay `frame` to its guest `guest` (always by script: the host
    /// has no one peer to cache).
    pub(crate) async fn relay_to_guest(
        &self,
        conn: ConnId,
        guest: u32,
        pake_confirm: Option<bool>,
        frame: &str,
    ) -> Result<(), Refusal> {
        let room = self.hosted(conn)?;
        let pake = match pake_confirm {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        };
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.relay,
                &[&room.as_str(), &seat, &"host", &pake, &frame, &guest],
            )
            .await;
        r.map(|_| ())
    }

    /// Host of a shared room: guest `guest` failed key confirmation.
    pub(crate) async fn guest_failed(
        &self,
        conn: ConnId,
        guest: u32,
    ) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.failed,
                &[&room.as_str(), &seat, &self.limits.fail_limit, &guest],
            )
            .await;
        let v = r?;
        let attempts_left = num(&v, 1) as u32;
        let mut notices = vec![(
            conn,
            about(guest, ServerMsg::HandshakeFailed { attempts_left }),
        )];
        if v.get(2).map(String::as_str) == Some("1") {
            notices.push((conn, locked_notice()));
        }
        Ok(Counted {
            value: notices,
            guesses: num(&v, 3),
        })
    }

    /// Host of a shared room: turn guest `guest` away (it hears `room-full`).
    pub(crate) async fn remove_guest(
        &self,
        conn: ConnId,
        guest: u32,
    ) -> Result<Counted<Notices>, Refusal> {
        let room = self.hosted(conn)?;
        let seat = self.seat(conn);
        let r = self
            .member_script(
                conn,
                &self.scripts.kick,
                &[&room.as_str(), &seat, &guest, &self.limits.fail_limit],
            )
            .await;
        let v = r?;
        let counted = num(&v, 3);
        let mut notices = vec![(
            conn,
            about(guest, ServerMsg::PeerLeft { role: Role::Guest }),
        )];
        if counted > 0 {
            let attempts_left = num(&v, 1) as u32;
            notices.push((
                conn,
                about(guest, ServerMsg::HandshakeFailed { attempts_left }),
            ));
            if v.get(2).map(String::as_str) == Some("1") {
                notices.push((conn, locked_notice()));
            }
        }
        Ok(Counted {
            value: notices,
            guesses: counted,
        })
    }
}

/// `msg` about guest `guest`, as the host of a shared room hears it.
fn about(guest: u32, msg: ServerMsg) -> ServerMsg {
    ServerMsg::FromGuest {
        guest,
        msg: Box::new(msg),
    }
}
