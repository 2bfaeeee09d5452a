//! The room registry: who is in which room, what each request does to it, and whom to tell.
//!
//! Pure bookkeeping with an injected clock (unix milliseconds) and no I/O: every mutation
//! returns the messages to deliver as `(connection, message)` pairs, and the socket layer
//! delivers them. Payloads never pass through here; relaying only asks `peer_of`.

use std::collections::HashMap;

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

/// Identifies one WebSocket connection for the lifetime of the process.
pub type ConnId = u64;

/// Messages the caller must deliver, in order.
pub type Notices = Vec<(ConnId, ServerMsg)>;

/// What is persisted about a room (the `sessions` table); never the host token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub room: RoomId,
    /// argon2id PHC string of the host token.
    pub host_token_hash: String,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
}

#[derive(Debug)]
struct Room {
    rec: RoomRecord,
    host: Option<ConnId>,
    guest: Option<ConnId>,
    failures: u32,
    locked: bool,
}

/// Result of a successful join or host attach.
#[derive(Debug, PartialEq, Eq)]
pub struct Attached {
    pub role: Role,
    pub expires_at_ms: u64,
    pub peer_present: bool,
    pub notices: Notices,
}

/// A typed refusal with a human-readable reason (safe to send to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: &'static str,
}

fn refuse<T>(code: ErrorCode, message: &'static str) -> Result<T, Refusal> {
    Err(Refusal { code, message })
}

#[derive(Debug)]
pub struct Registry {
    rooms: HashMap<RoomId, Room>,
    members: HashMap<ConnId, (RoomId, Role)>,
    /// Recently expired or closed rooms, with the time they ended.
    tombstones: HashMap<RoomId, u64>,
    max_rooms: usize,
    fail_limit: u32,
    tombstone_ttl_ms: u64,
}

impl Registry {
    pub fn new(max_rooms: usize, fail_limit: u32, tombstone_ttl_ms: u64) -> Self {
        Registry {
            rooms: HashMap::new(),
            members: HashMap::new(),
            tombstones: HashMap::new(),
            max_rooms,
            fail_limit,
            tombstone_ttl_ms,
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.members.len()
    }

    pub fn contains(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// Where a connection currently is.
    pub fn membership(&self, conn: ConnId) -> Option<(RoomId, Role)> {
        self.members.get(&conn).copied()
    }

    /// Whether the server may take another room (checked before the costly token hash).
    pub fn has_capacity(&self) -> Result<(), Refusal> {
        if self.rooms.len() >= self.max_rooms {
            return refuse(ErrorCode::ServerFull, "the server has too many open rooms");
        }
        Ok(())
    }

    /// Register a room (fresh from a create, or loaded from the store on start).
    pub fn insert(&mut self, rec: RoomRecord) -> Result<(), Refusal> {
        self.has_capacity()?;
        if self.rooms.contains_key(&rec.room) {
            // 50 random bits make this practically impossible; the caller retries with a new id.
            return refuse(ErrorCode::Internal, "room id collision");
        }
        self.tombstones.remove(&rec.room);
        self.rooms.insert(
            rec.room,
            Room {
                rec,
                host: None,
                guest: None,
                failures: 0,
                locked: false,
            },
        );
        Ok(())
    }

    /// Forget a room without a trace (its creation failed half-way).
    pub fn discard(&mut self, room: &RoomId) {
        if let Some(r) = self.rooms.remove(room) {
            for c in [r.host, r.guest].into_iter().flatten() {
                self.members.remove(&c);
            }
        }
    }

    fn live_room(&self, room: &RoomId, now_ms: u64) -> Result<&Room, Refusal> {
        match self.rooms.get(room) {
            Some(r) if r.rec.expires_at_ms > now_ms => Ok(r),
            Some(_) => refuse(ErrorCode::RoomExpired, "the room has expired"),
            None if self.tombstones.contains_key(room) => {
                refuse(ErrorCode::RoomExpired, "the room has expired or was closed")
            }
            None => refuse(ErrorCode::RoomNotFound, "no such room"),
        }
    }

    /// Whether a guest could join right now (the REST join check).
    pub fn check_joinable(&self, room: &RoomId, now_ms: u64) -> Result<u64, Refusal> {
        let r = self.live_room(room, now_ms)?;
        if r.locked {
            return refuse(
                ErrorCode::RoomLocked,
                "the room is locked after failed handshakes",
            );
        }
        if r.guest.is_some() {
            return refuse(ErrorCode::RoomFull, "the room already has two peers");
        }
        Ok(r.rec.expires_at_ms)
    }

    /// The stored token hash of a live room, for the caller to verify a `reconnect-host` against.
    pub fn host_token_hash(&self, room: &RoomId, now_ms: u64) -> Result<String, Refusal> {
        Ok(self.live_room(room, now_ms)?.rec.host_token_hash.clone())
    }

    fn ensure_free(&self, conn: ConnId, room: &RoomId, role: Role) -> Result<bool, Refusal> {
        match self.members.get(&conn) {
            None => Ok(false),
            Some((r, ro)) if r == room && *ro == role => Ok(true),
            Some(_) => refuse(
                ErrorCode::BadMessage,
                "this connection is already in a room; send leave first",
            ),
        }
    }

    pub fn join(&mut self, conn: ConnId, room: &RoomId, now_ms: u64) -> Result<Attached, Refusal> {
        self.ensure_free(conn, room, Role::Guest)?;
        self.check_joinable(room, now_ms)?;
        let Some(r) = self.rooms.get_mut(room) else {
            return refuse(ErrorCode::RoomNotFound, "no such room");
        };
        r.guest = Some(conn);
        self.members.insert(conn, (*room, Role::Guest));
        let mut notices = Vec::new();
        if let Some(h) = r.host {
            notices.push((h, ServerMsg::PeerJoined { role: Role::Guest }));
        }
        Ok(Attached {
            role: Role::Guest,
            expires_at_ms: r.rec.expires_at_ms,
            peer_present: r.host.is_some(),
            notices,
        })
    }

    /// Attach `conn` as the host of `room`. The caller has already verified the host token.
    /// A previous host connection is detached and told why (the newest socket wins, so a
    /// host whose old socket is half-dead can always come back).
    pub fn attach_host(
        &mut self,
        conn: ConnId,
        room: &RoomId,
        now_ms: u64,
    ) -> Result<Attached, Refusal> {
        let already = self.ensure_free(conn, room, Role::Host)?;
        self.live_room(room, now_ms)?;
        let Some(r) = self.rooms.get_mut(room) else {
            return refuse(ErrorCode::RoomNotFound, "no such room");
        };
        let mut notices = Vec::new();
        if !already {
            if let Some(old) = r.host.replace(conn) {
                self.members.remove(&old);
                notices.push((
                    old,
                    ServerMsg::error(
                        None,
                        ErrorCode::Unauthorized,
                        "replaced by a newer host connection",
                    ),
                ));
            }
            self.members.insert(conn, (*room, Role::Host));
            if let Some(g) = r.guest {
                notices.push((g, ServerMsg::PeerJoined { role: Role::Host }));
            }
        }
        Ok(Attached {
            role: Role::Host,
            expires_at_ms: r.rec.expires_at_ms,
            peer_present: r.guest.is_some(),
            notices,
        })
    }

    /// Detach `conn` from its room (explicit leave or socket closed). The room itself stays
    /// until it expires or is closed, so its host can come back with the token.
    pub fn leave(&mut self, conn: ConnId) -> Notices {
        let Some((room, role)) = self.members.remove(&conn) else {
            return Vec::new();
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        let other = match role {
            Role::Host => {
                r.host = None;
                r.guest
            }
            Role::Guest => {
                r.guest = None;
                r.host
            }
        };
        other
            .map(|o| (o, ServerMsg::PeerLeft { role }))
            .into_iter()
            .collect()
    }

    fn hosted_room(&mut self, conn: ConnId) -> Result<(RoomId, &mut Room), Refusal> {
        match self.members.get(&conn) {
            Some((room, Role::Host)) => {
                let room = *room;
                match self.rooms.get_mut(&room) {
                    Some(r) => Ok((room, r)),
                    None => refuse(ErrorCode::NotInRoom, "not in a room"),
                }
            }
            Some((_, Role::Guest)) => refuse(ErrorCode::Unauthorized, "only the host may do this"),
            None => refuse(ErrorCode::NotInRoom, "not in a room"),
        }
    }

    /// Host only: set a new expiry (already clamped by the caller). Returns the room for the store.
    pub fn extend(&mut self, conn: ConnId, expires_at_ms: u64) -> Result<RoomId, Refusal> {
        let (room, r) = self.hosted_room(conn)?;
        r.rec.expires_at_ms = expires_at_ms;
        Ok(room)
    }

    /// Host only: end the room now. Both peers get `room-closed` (the host's is the acknowledgement).
    pub fn close(&mut self, conn: ConnId, now_ms: u64) -> Result<(RoomId, Notices), Refusal> {
        let (room, _) = self.hosted_room(conn)?;
        let notices = self.remove_room(&room, now_ms, |_| ServerMsg::RoomClosed);
        Ok((room, notices))
    }

    /// Host only: the guest failed key confirmation. The guest is removed; past the limit
    /// the room locks and refuses further joins.
    pub fn handshake_failed(&mut self, conn: ConnId) -> Result<Notices, Refusal> {
        let limit = self.fail_limit;
        let (_, r) = self.hosted_room(conn)?;
        r.failures = r.failures.saturating_add(1);
        if r.failures >= limit {
            r.locked = true;
        }
        let attempts_left = limit.saturating_sub(r.failures);
        let locked = r.locked;
        let guest = r.guest.take();
        let mut notices = Vec::new();
        if let Some(g) = guest {
            self.members.remove(&g);
            notices.push((g, ServerMsg::HandshakeFailed { attempts_left }));
        }
        notices.push((conn, ServerMsg::HandshakeFailed { attempts_left }));
        if locked {
            notices.push((
                conn,
                ServerMsg::error(
                    None,
                    ErrorCode::RoomLocked,
                    "too many failed handshakes: the room no longer accepts guests",
                ),
            ));
        }
        Ok(notices)
    }

    /// The connection a relayed message from `conn` goes to.
    pub fn peer_of(&self, conn: ConnId) -> Result<ConnId, Refusal> {
        let Some((room, role)) = self.members.get(&conn) else {
            return refuse(ErrorCode::NotInRoom, "not in a room");
        };
        let r = self.rooms.get(room);
        let other = r.and_then(|r| match role {
            Role::Host => r.guest,
            Role::Guest => r.host,
        });
        match other {
            Some(o) => Ok(o),
            None => refuse(ErrorCode::NotInRoom, "the other peer is not connected"),
        }
    }

    fn remove_room(
        &mut self,
        room: &RoomId,
        now_ms: u64,
        msg: impl Fn(&RoomId) -> ServerMsg,
    ) -> Notices {
        let mut notices = Vec::new();
        if let Some(r) = self.rooms.remove(room) {
            for c in [r.host, r.guest].into_iter().flatten() {
                self.members.remove(&c);
                notices.push((c, msg(room)));
            }
            self.tombstones.insert(*room, now_ms);
        }
        notices
    }

    /// Remove every room whose lifetime has ended; tell its peers. Also forgets old tombstones.
    /// Returns the expired room ids (for the store) and the notices.
    pub fn expire_due(&mut self, now_ms: u64) -> (Vec<RoomId>, Notices) {
        let due: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.rec.expires_at_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        let mut notices = Vec::new();
        for room in &due {
            notices.extend(self.remove_room(room, now_ms, |r| ServerMsg::RoomExpired { room: *r }));
        }
        let ttl = self.tombstone_ttl_ms;
        self.tombstones
            .retain(|_, ended| now_ms.saturating_sub(*ended) < ttl);
        (due, notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64, expires_at_ms: u64) -> RoomRecord {
        use rand::SeedableRng;
        RoomRecord {
            room: RoomId::random_from(&mut rand::rngs::StdRng::seed_from_u64(n)),
            host_token_hash: "h".into(),
            created_at_ms: 0,
            expires_at_ms,
        }
    }

    fn reg() -> Registry {
        Registry::new(3, 2, 10_000)
    }

    #[test]
    fn host_then_guest_then_relay_targets() {
        let mut g = reg();
        let r = rec(1, 1000);
        g.insert(r.clone()).unwrap();
        let a = g.attach_host(1, &r.room, 0).unwrap();
        assert!(!a.peer_present && a.notices.is_empty());
        assert_eq!(g.peer_of(1).unwrap_err().code, ErrorCode::NotInRoom);
        let j = g.join(2, &r.room, 0).unwrap();
        assert_eq!(j.role, Role::Guest);
        assert!(j.peer_present);
        assert_eq!(
            j.notices,
            vec![(1, ServerMsg::PeerJoined { role: Role::Guest })]
        );
        assert_eq!(g.peer_of(1).unwrap(), 2);
        assert_eq!(g.peer_of(2).unwrap(), 1);
        assert_eq!(g.join(3, &r.room, 0).unwrap_err().code, ErrorCode::RoomFull);
        assert_eq!(g.peer_of(3).unwrap_err().code, ErrorCode::NotInRoom);
    }

    #[test]
    fn unknown_expired_and_closed_are_told_apart() {
        let mut g = reg();
        let r = rec(1, 1000);
        let never = rec(2, 0).room;
        g.insert(r.clone()).unwrap();
        assert_eq!(
            g.join(5, &never, 0).unwrap_err().code,
            ErrorCode::RoomNotFound
        );
        // Past expiry but before the sweep: already refused.
        assert_eq!(
            g.join(5, &r.room, 1000).unwrap_err().code,
            ErrorCode::RoomExpired
        );
        g.attach_host(1, &r.room, 0).unwrap();
        let (gone, notices) = g.expire_due(1000);
        assert_eq!(gone, vec![r.room]);
        assert_eq!(notices, vec![(1, ServerMsg::RoomExpired { room: r.room })]);
        assert_eq!(g.room_count(), 0);
        assert_eq!(g.peer_count(), 0);
        assert_eq!(
            g.join(5, &r.room, 1001).unwrap_err().code,
            ErrorCode::RoomExpired
        );
        // Tombstones are forgotten after their ttl.
        g.expire_due(1000 + 10_000);
        assert_eq!(
            g.join(5, &r.room, 20_000).unwrap_err().code,
            ErrorCode::RoomNotFound
        );
    }

    #[test]
    fn handshake_failures_lock_the_room() {
        let mut g = reg();
        let r = rec(1, 1000);
        g.insert(r.clone()).unwrap();
        g.attach_host(1, &r.room, 0).unwrap();
        g.join(2, &r.room, 0).unwrap();
        assert_eq!(
            g.handshake_failed(2).unwrap_err().code,
            ErrorCode::Unauthorized
        );
        let n = g.handshake_failed(1).unwrap();
        assert_eq!(
            n,
            vec![
                (2, ServerMsg::HandshakeFailed { attempts_left: 1 }),
                (1, ServerMsg::HandshakeFailed { attempts_left: 1 })
            ]
        );
        assert_eq!(g.membership(2), None);
        g.join(3, &r.room, 0).unwrap();
        let n = g.handshake_failed(1).unwrap();
        assert_eq!(n.len(), 3);
        assert!(matches!(
            &n[2],
            (
                1,
                ServerMsg::Error {
                    code: ErrorCode::RoomLocked,
                    ..
                }
            )
        ));
        assert_eq!(
            g.join(4, &r.room, 0).unwrap_err().code,
            ErrorCode::RoomLocked
        );
        // The host still owns the room.
        assert!(g.attach_host(9, &r.room, 0).is_ok());
    }

    #[test]
    fn leave_tells_the_other_and_host_can_return() {
        let mut g = reg();
        let r = rec(1, 1000);
        g.insert(r.clone()).unwrap();
        g.attach_host(1, &r.room, 0).unwrap();
        g.join(2, &r.room, 0).unwrap();
        assert_eq!(
            g.leave(1),
            vec![(2, ServerMsg::PeerLeft { role: Role::Host })]
        );
        assert!(g.leave(1).is_empty());
        let a = g.attach_host(7, &r.room, 0).unwrap();
        assert!(a.peer_present);
        assert_eq!(
            a.notices,
            vec![(2, ServerMsg::PeerJoined { role: Role::Host })]
        );
        // A newer host socket replaces the old one, which is told.
        let b = g.attach_host(8, &r.room, 0).unwrap();
        assert!(matches!(
            &b.notices[0],
            (
                7,
                ServerMsg::Error {
                    code: ErrorCode::Unauthorized,
                    ..
                }
            )
        ));
        assert_eq!(g.peer_of(2).unwrap(), 8);
        assert_eq!(g.membership(7), None);
    }

    #[test]
    fn one_room_per_connection_and_host_only_ops() {
        let mut g = reg();
        let a = rec(1, 1000);
        let b = rec(2, 1000);
        g.insert(a.clone()).unwrap();
        g.insert(b.clone()).unwrap();
        g.attach_host(1, &a.room, 0).unwrap();
        assert!(g.attach_host(1, &a.room, 0).is_ok(), "idempotent");
        assert_eq!(
            g.join(1, &b.room, 0).unwrap_err().code,
            ErrorCode::BadMessage
        );
        assert_eq!(
            g.join(1, &a.room, 0).unwrap_err().code,
            ErrorCode::BadMessage
        );
        g.join(2, &a.room, 0).unwrap();
        assert_eq!(g.extend(2, 5000).unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(g.extend(3, 5000).unwrap_err().code, ErrorCode::NotInRoom);
        assert_eq!(g.extend(1, 5000).unwrap(), a.room);
        assert_eq!(g.check_joinable(&b.room, 999).unwrap(), 1000);
        assert!(g.host_token_hash(&a.room, 4999).is_ok(), "extended");
        let (room, n) = g.close(1, 10).unwrap();
        assert_eq!(room, a.room);
        assert_eq!(
            n,
            vec![(1, ServerMsg::RoomClosed), (2, ServerMsg::RoomClosed)]
        );
        assert_eq!(
            g.join(3, &a.room, 10).unwrap_err().code,
            ErrorCode::RoomExpired
        );
    }

    #[test]
    fn room_cap() {
        let mut g = reg();
        for i in 0..3 {
            g.insert(rec(i, 1000)).unwrap();
        }
        assert_eq!(
            g.insert(rec(9, 1000)).unwrap_err().code,
            ErrorCode::ServerFull
        );
        let (gone, _) = g.expire_due(1000);
        assert_eq!(gone.len(), 3);
        assert!(g.insert(rec(9, 2000)).is_ok());
    }
}
