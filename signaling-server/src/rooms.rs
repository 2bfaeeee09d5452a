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

/// One guest's seat: its number in the room, its socket and its run's guess state.
#[derive(Debug)]
struct Seat {
    id: u32,
    conn: ConnId,
    /// This guest run's password-guess state.
    guess: GuessRun,
}

#[derive(Debug)]
struct Room {
    rec: RoomRecord,
    host: Option<ConnId>,
    /// Guests seated now, in join order; at most `capacity`.
    guests: Vec<Seat>,
    /// Most guests at once: 1 for an ordinary room.
    capacity: usize,
    /// Created with `create-shared-room`: the host's traffic is addressed by guest number.
    shared: bool,
    /// The next guest's number (from 1; never reused while the room lives).
    next_guest: u32,
    /// The last guest run's guess state, kept after its seat is gone so a late host report
    /// about it is recognised (ordinary rooms: see [`GuessRun::host_reported`]).
    last_guess: GuessRun,
    /// Failed guesses across every guest run of the room: the lock counts the room, not a guest.
    failures: u32,
    locked: bool,
    /// Address key of whoever created it; in memory only (rooms loaded from the store have none).
    owner: Option<IpKey>,
    /// Since when no host socket is attached; the room is reaped after the grace period.
    host_gone_since: Option<u64>,
}

impl Room {
    /// `msg` about guest `id` as the host hears it: addressed in a shared room.
    fn about(&self, id: u32, msg: ServerMsg) -> ServerMsg {
        if self.shared {
            ServerMsg::FromGuest {
                guest: id,
                msg: Box::new(msg),
            }
        } else {
            msg
        }
    }

    fn seat_of(&self, conn: ConnId) -> Option<usize> {
        self.guests.iter().position(|s| s.conn == conn)
    }

    fn seat_by_id(&self, id: u32) -> Option<usize> {
        self.guests.iter().position(|s| s.id == id)
    }
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
        self.insert_room(rec, owner, now_ms, None)
    }

    /// Register a shared room (`create-shared-room`) that seats up to `guests` at once.
    pub fn insert_shared(
        &mut self,
        rec: RoomRecord,
        owner: Option<IpKey>,
        now_ms: u64,
        guests: usize,
    ) -> Result<(), Refusal> {
        self.insert_room(rec, owner, now_ms, Some(guests.max(1)))
    }

    fn insert_room(
        &mut self,
        rec: RoomRecord,
        owner: Option<IpKey>,
        now_ms: u64,
        shared: Option<usize>,
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
                guests: Vec::new(),
                capacity: shared.unwrap_or(1),
                shared: shared.is_some(),
                next_guest: 1,
                last_guess: GuessRun::Idle,
                failures: 0,
                locked: false,
                owner,
                host_gone_since: Some(now_ms),
            },
        );
        Ok(())
    }

    /// Forget a room without a trace (its creation failed half-way).
    pub fn discard(&mut self, room: &RoomId) {
        if let Some(r) = self.rooms.remove(room) {
            for c in r.host.into_iter().chain(r.guests.iter().map(|s| s.conn)) {
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
        if r.guests.len() >= r.capacity {
            if r.shared {
                return refuse(
                    ErrorCode::RoomFull,
                    "the room is seating as many receivers as it can at once; try again shortly",
                );
            }
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
        let id = r.next_guest;
        r.next_guest = r.next_guest.saturating_add(1);
        r.guests.push(Seat {
            id,
            conn,
            guess: GuessRun::Idle,
        });
        r.last_guess = GuessRun::Idle;
        self.members.insert(conn, (*room, Role::Guest));
        let mut notices = Vec::new();
        if let Some(h) = r.host {
            notices.push((h, r.about(id, ServerMsg::PeerJoined { role: Role::Guest })));
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
            for s in &r.guests {
                notices.push((s.conn, ServerMsg::PeerJoined { role: Role::Host }));
            }
            // A shared room's host learns who is seated, one by one, after its `joined`.
            if r.shared {
                for s in &r.guests {
                    notices.push((
                        conn,
                        r.about(s.id, ServerMsg::PeerJoined { role: Role::Guest }),
                    ));
                }
            }
        }
        Ok(Attached {
            role: Role::Host,
            expires_at_ms: r.rec.expires_at_ms,
            peer_present: !r.guests.is_empty(),
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
        let mut counted = 0;
        match role {
            Role::Host => {
                r.host = None;
                r.host_gone_since = Some(now_ms);
                let mut kept = Vec::with_capacity(r.guests.len());
                for mut seat in std::mem::take(&mut r.guests) {
                    notices.push((seat.conn, ServerMsg::PeerLeft { role }));
                    if seat.guess.ended() {
                        counted += 1;
                        let attempts_left = count_failure(r, limit);
                        self.members.remove(&seat.conn);
                        notices.push((seat.conn, ServerMsg::HandshakeFailed { attempts_left }));
                        r.last_guess = seat.guess;
                    } else {
                        kept.push(seat);
                    }
                }
                r.guests = kept;
            }
            Role::Guest => {
                if let Some(i) = r.seat_of(conn) {
                    let mut seat = r.guests.remove(i);
                    if let Some(h) = r.host {
                        notices.push((h, r.about(seat.id, ServerMsg::PeerLeft { role })));
                    }
                    if seat.guess.ended() {
                        counted += 1;
                        let attempts_left = count_failure(r, limit);
                        if let Some(h) = r.host {
                            let m = r.about(seat.id, ServerMsg::HandshakeFailed { attempts_left });
                            notices.push((h, m));
                            if r.locked {
                                notices.push((h, locked_notice()));
                            }
                        }
                    }
                    r.last_guess = seat.guess;
                }
            }
        }
        self.guesses_counted += counted;
        notices
    }

    /// Where a relayed message from `conn` goes, in an ordinary room (the host of a shared
    /// room addresses its relays: [`Registry::relay_to_guest`]).
    pub fn relay_target(
        &mut self,
        conn: ConnId,
        pake_confirm: Option<bool>,
    ) -> Result<ConnId, Refusal> {
        self.relay_route(conn, pake_confirm).map(|(to, _)| to)
    }

    /// Where a relayed message from `conn` goes, and the guest number to address it with when
    /// it goes from a guest to the host of a shared room. A `pake` (`pake_confirm` is `Some`)
    /// also moves the guest run's guess state: whether it is a confirmation tag is all we know.
    pub fn relay_route(
        &mut self,
        conn: ConnId,
        pake_confirm: Option<bool>,
    ) -> Result<(ConnId, Option<u32>), Refusal> {
        let Some((room, role)) = self.members.get(&conn).copied() else {
            return refuse(ErrorCode::NotInRoom, "not in a room");
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return refuse(ErrorCode::NotInRoom, "not in a room");
        };
        match role {
            Role::Guest => {
                let Some(i) = r.seat_of(conn) else {
                    return refuse(ErrorCode::NotInRoom, "not in a room");
                };
                let Some(h) = r.host else {
                    return refuse(ErrorCode::NotInRoom, "the other peer is not connected");
                };
                let seat = &mut r.guests[i];
                if let Some(confirm) = pake_confirm {
                    seat.guess.guest_pake(confirm);
                }
                Ok((h, r.shared.then_some(seat.id)))
            }
            Role::Host => {
                if r.shared {
                    return refuse(
                        ErrorCode::BadMessage,
                        "this room seats several guests: address relays with to-guest",
                    );
                }
                let Some(seat) = r.guests.first_mut() else {
                    return refuse(ErrorCode::NotInRoom, "the other peer is not connected");
                };
                if let Some(confirm) = pake_confirm {
                    seat.guess.host_pake(confirm);
                }
                Ok((seat.conn, None))
            }
        }
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
        self.handshake_failed_for(conn, None)
    }

    /// [`Registry::handshake_failed`] about guest `guest` (`None`: the only guest of an
    /// ordinary room; a shared room needs the number).
    pub fn handshake_failed_for(
        &mut self,
        conn: ConnId,
        guest: Option<u32>,
    ) -> Result<Notices, Refusal> {
        let limit = self.fail_limit;
        let (_, r) = self.hosted_room(conn)?;
        let i = match (r.shared, guest) {
            (true, Some(id)) => r.seat_by_id(id),
            (false, None) => (!r.guests.is_empty()).then_some(0),
            _ => {
                return refuse(
                    ErrorCode::BadMessage,
                    "handshake-failed must name a guest in a shared room, and only there",
                );
            }
        };
        let counted = match i {
            Some(i) => r.guests[i].guess.host_reported(),
            // The run's seat is gone (its guest left first): the server counted it then.
            None => r.last_guess.host_reported(),
        };
        let attempts_left = if counted {
            count_failure(r, limit)
        } else {
            limit.saturating_sub(r.failures)
        };
        let locked = r.locked;
        // A stale report (see `GuessRun::host_reported`) leaves the current guest alone.
        let seat = match (counted, i) {
            (true, Some(i)) => Some(r.guests.remove(i)),
            _ => None,
        };
        let id = seat.as_ref().map_or(guest.unwrap_or(0), |s| s.id);
        let ack = r.about(id, ServerMsg::HandshakeFailed { attempts_left });
        if let Some(s) = &seat {
            r.last_guess = s.guess;
        }
        if counted {
            self.guesses_counted += 1;
        }
        let mut notices = Vec::new();
        if let Some(s) = seat {
            self.members.remove(&s.conn);
            notices.push((s.conn, ServerMsg::HandshakeFailed { attempts_left }));
        }
        notices.push((conn, ack));
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
            Role::Host => r.guests.first().map(|s| s.conn),
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
            for c in r.host.into_iter().chain(r.guests.iter().map(|s| s.conn)) {
                self.members.remove(&c);
                notices.push((c, msg(room)));
            }
            // The guests' runs end with the room; an unanswered tag is still a failed guess
            // (for the count; the room that would lock is gone).
            for seat in &mut r.guests {
                if seat.guess.ended() {
                    self.guesses_counted += 1;
                }
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

mod shared;

#[cfg(test)]
mod tests;
