//! The room registry: who is in which room, what each request does to it, and whom to tell.
//!
//! Pure bookkeeping with an injected clock (unix milliseconds) and no I/O: every mutation
//! returns the messages to deliver as `(connection, message)` pairs, and the socket layer
//! delivers them. Payloads never pass through here; relaying asks `relay_target`, told only
//! whether a `pake` is a confirmation tag (see [`crate::guess`]).
//!
//! The types and shared helpers live here; the registry's work is split by concern:
//! `seats` (creating rooms, attaching, joining, leaving), `relaying` (where relays go, and the
//! failed-guess count and lock they feed), `lifetime` (extend, close, expiry sweep, tombstones)
//! and `shared` (what rooms with several guests add).

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

    /// The room `conn` hosts; a guest is refused.
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

mod lifetime;
mod relaying;
mod seats;
mod shared;

#[cfg(test)]
mod tests;
