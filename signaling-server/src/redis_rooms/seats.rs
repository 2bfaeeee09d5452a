//! Seats against Redis: the per-address rate, creating a room, and a connection taking or
//! giving up its place in one (guest join, host attach, leave), with the checks the socket
//! layer makes before them (token hash, joinable). In-memory counterpart: `rooms/seats.rs`.

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role};

use super::ops::{Counted, ok_or_refusal, role_name};
use super::{Member, Peer, RedisRooms, num};
use crate::limits::IpKey;
use crate::rooms::{Attached, ConnId, Refusal, RoomRecord};

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
}
