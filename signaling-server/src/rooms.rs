//! The room registry: who is in which room, what each request does to it, and whom to tell.
//!
//! Pure bookkeeping with an injected clock (unix milliseconds) and no I/O: every mutation
//! returns the messages to deliver as `(connection, message)` pairs, and the socket layer
//! delivers them. Payloads never pass through here; relaying asks `relay_target`, told only
//! whether a `pake` is a confirmation tag (see [`crate::guess`]).

use std::collections::HashMap;

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

use crate::guess::GuessRun;
use crate::limits::{IpKey, PerKey};

/// Identifies one WebSocket connection for the lifetime of the process.
pub type ConnId = u64;

/// Messages the caller must deliver, in order.
pub type Notices = Vec<(ConnId, ServerMsg)>;

/// What is persisted about a room (the `sessions` table); never the host token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub room: RoomId,
    /// Hash of the host token (see [`crate::token`]).
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
    /// Address key of whoever created it; in memory only (rooms loaded from the store have none).
    owner: Option<IpKey>,
    /// Since when no host socket is attached; the room is reaped after the grace period.
    host_gone_since: Option<u64>,
    /// The current (or last) guest run's password-guess state.
    guess: GuessRun,
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
    /// Open rooms per creator address key.
    owned: PerKey,
    max_rooms_per_owner: usize,
    host_grace_ms: u64,
    /// Failed guesses counted so far (host reports and unanswered guest tags).
    guesses_counted: u64,
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
            owned: PerKey::default(),
            max_rooms_per_owner: usize::MAX,
            host_grace_ms: u64::MAX,
            guesses_counted: 0,
        }
    }

    /// Cap on open rooms created from one address key.
    pub fn with_rooms_per_owner(mut self, max: usize) -> Self {
        self.max_rooms_per_owner = max;
        self
    }

    /// How long a room may have no host socket before it is reaped.
    pub fn with_host_grace(mut self, ms: u64) -> Self {
        self.host_grace_ms = ms;
        self
    }

    /// Failed password guesses counted since start.
    pub fn guesses_counted(&self) -> u64 {
        self.guesses_counted
    }

    /// Tombstones are bounded so a create/close flood cannot grow them without limit; past
    /// the bound a late join gets `room-not-found` instead of `room-expired`.
    fn max_tombstones(&self) -> usize {
        self.max_rooms.saturating_mul(10).max(1024)
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

    /// Whether the server, and `owner`, may take another room (checked before hashing).
    pub fn has_capacity(&self, owner: Option<IpKey>) -> Result<(), Refusal> {
        if self.rooms.len() >= self.max_rooms {
            return refuse(ErrorCode::ServerFull, "the server has too many open rooms");
        }
        if let Some(o) = owner
            && !self.owned.has_room(o, self.max_rooms_per_owner)
        {
            return refuse(
                ErrorCode::RateLimited,
                "too many open rooms from this address; close one first",
            );
        }
        Ok(())
    }

    /// Register a room (fresh from a create, or loaded from the store on start). It has no
    /// host yet: the grace period for one to attach starts now.
    pub fn insert(
        &mut self,
        rec: RoomRecord,
        owner: Option<IpKey>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        self.has_capacity(owner)?;
        if self.rooms.contains_key(&rec.room) {
            // 50 random bits make this practically impossible; the caller retries with a new id.
            return refuse(ErrorCode::Internal, "room id collision");
        }
        if let Some(o) = owner {
            self.owned.try_take(o, usize::MAX);
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
                owner,
                host_gone_since: Some(now_ms),
                guess: GuessRun::Idle,
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
            if let Some(o) = r.owner {
                self.owned.give_back(o);
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
        r.guess = GuessRun::Idle;
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
        r.host_gone_since = None;
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
    /// until it expires, is closed, or has had no host for the grace period, so its host can
    /// come back with the token.
    ///
    /// A guest run that ends with its confirmation tag unanswered is a failed guess; so is one
    /// cut short by its host leaving (that guest is removed: its run is over).
    pub fn leave(&mut self, conn: ConnId, now_ms: u64) -> Notices {
        let Some((room, role)) = self.members.remove(&conn) else {
            return Vec::new();
        };
        let limit = self.fail_limit;
        let Some(r) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        let mut counted = false;
        match role {
            Role::Host => {
                r.host = None;
                r.host_gone_since = Some(now_ms);
                if let Some(g) = r.guest {
                    notices.push((g, ServerMsg::PeerLeft { role }));
                    if r.guess.ended() {
                        counted = true;
                        let attempts_left = count_failure(r, limit);
                        r.guest = None;
                        self.members.remove(&g);
                        notices.push((g, ServerMsg::HandshakeFailed { attempts_left }));
                    }
                }
            }
            Role::Guest => {
                r.guest = None;
                if let Some(h) = r.host {
                    notices.push((h, ServerMsg::PeerLeft { role }));
                }
                if r.guess.ended() {
                    counted = true;
                    let attempts_left = count_failure(r, limit);
                    if let Some(h) = r.host {
                        notices.push((h, ServerMsg::HandshakeFailed { attempts_left }));
                        if r.locked {
                            notices.push((h, locked_notice()));
                        }
                    }
                }
            }
        }
        if counted {
            self.guesses_counted += 1;
        }
        notices
    }

    /// Where a relayed message from `conn` goes. A `pake` (`pake_confirm` is `Some`) also
    /// moves the guest run's guess state: whether it is a confirmation tag is all we know.
    pub fn relay_target(
        &mut self,
        conn: ConnId,
        pake_confirm: Option<bool>,
    ) -> Result<ConnId, Refusal> {
        let to = self.peer_of(conn)?;
        if let (Some(confirm), Some((room, role))) = (pake_confirm, self.members.get(&conn))
            && let Some(r) = self.rooms.get_mut(room)
        {
            match role {
                Role::Guest => r.guess.guest_pake(confirm),
                Role::Host => r.guess.host_pake(confirm),
            }
        }
        Ok(to)
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
    /// the room locks and refuses further joins. Counts once per guest run: a run the server
    /// already counted (its guest left with its tag unanswered) is not counted again.
    pub fn handshake_failed(&mut self, conn: ConnId) -> Result<Notices, Refusal> {
        let limit = self.fail_limit;
        let (_, r) = self.hosted_room(conn)?;
        let counted = r.guess.host_reported();
        let attempts_left = if counted {
            count_failure(r, limit)
        } else {
            limit.saturating_sub(r.failures)
        };
        let locked = r.locked;
        // A stale report (see `GuessRun::host_reported`) leaves the current guest alone.
        let guest = if counted { r.guest.take() } else { None };
        if counted {
            self.guesses_counted += 1;
        }
        let mut notices = Vec::new();
        if let Some(g) = guest {
            self.members.remove(&g);
            notices.push((g, ServerMsg::HandshakeFailed { attempts_left }));
        }
        notices.push((conn, ServerMsg::HandshakeFailed { attempts_left }));
        if locked {
            notices.push((conn, locked_notice()));
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
        if let Some(mut r) = self.rooms.remove(room) {
            for c in [r.host, r.guest].into_iter().flatten() {
                self.members.remove(&c);
                notices.push((c, msg(room)));
            }
            // The guest's run ends with the room; an unanswered tag is still a failed guess
            // (for the count; the room that would lock is gone).
            if r.guest.is_some() && r.guess.ended() {
                self.guesses_counted += 1;
            }
            if let Some(o) = r.owner {
                self.owned.give_back(o);
            }
            if self.tombstones.len() < self.max_tombstones() {
                self.tombstones.insert(*room, now_ms);
            }
        }
        notices
    }

    /// Remove every room whose lifetime has ended, or whose host has been gone longer than the
    /// grace period; tell its peers. Also forgets old tombstones. Returns the removed room ids
    /// (for the store) and the notices.
    pub fn expire_due(&mut self, now_ms: u64) -> (Vec<RoomId>, Notices) {
        let grace = self.host_grace_ms;
        let due: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.rec.expires_at_ms <= now_ms
                    || r.host_gone_since
                        .is_some_and(|t| now_ms.saturating_sub(t) >= grace)
            })
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

/// One more failed guess for `r`; locks it at the limit. Returns the attempts left.
fn count_failure(r: &mut Room, limit: u32) -> u32 {
    r.failures = r.failures.saturating_add(1);
    if r.failures >= limit {
        r.locked = true;
    }
    limit.saturating_sub(r.failures)
}

pub(crate) fn locked_notice() -> ServerMsg {
    ServerMsg::error(
        None,
        ErrorCode::RoomLocked,
        "too many failed handshakes: the room no longer accepts guests",
    )
}

#[cfg(test)]
mod tests;
