//! Relaying between the two sides of an ordinary room, and the failed-guess count it feeds:
//! a `pake` moves the guest run's guess state, the host's `handshake-failed` counts it and
//! past the limit locks the room. (A shared room's host addresses guests: [`super::shared`].)

use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

use super::{ConnId, Notices, Refusal, Registry, count_failure, locked_notice, refuse};

impl Registry {
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
}
