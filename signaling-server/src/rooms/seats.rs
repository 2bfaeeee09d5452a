//! Seats: taking a room (capacity, create, discard) and a connection taking or giving up its
//! place in one (host attach, guest join, leave). A guest run that ends when its seat goes is
//! counted here as a failed guess; the count itself is [`super::count_failure`].

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

use super::{
    Attached, ConnId, Notices, Refusal, Registry, Room, RoomRecord, Seat, count_failure,
    locked_notice, refuse,
};
use crate::guess::GuessRun;
use crate::limits::IpKey;

impl Registry {
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
}
