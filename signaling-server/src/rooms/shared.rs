//! What only shared rooms (signaling v3, several guests at once) add to the registry: the
//! host addressing one guest. Guests of a shared room see an ordinary room.

use ferry_proto::RoomId;
use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

use super::{ConnId, Notices, Refusal, Registry, count_failure, locked_notice, refuse};

impl Registry {
    /// Whether `room` is a shared room (its host must speak signaling v3).
    pub fn is_shared(&self, room: &RoomId) -> bool {
        self.rooms.get(room).is_some_and(|r| r.shared)
    }

    /// The shared room `conn` hosts and the seat of its guest `guest`.
    fn hosted_seat(
        &mut self,
        conn: ConnId,
        guest: u32,
    ) -> Result<(&mut super::Room, usize), Refusal> {
        let (_, r) = self.hosted_room(conn)?;
        if !r.shared {
            return refuse(
                ErrorCode::BadMessage,
                "this room has one guest: send to-guest only in a shared room",
            );
        }
        match r.seat_by_id(guest) {
            Some(i) => Ok((r, i)),
            None => refuse(ErrorCode::NotInRoom, "that guest is not in the room"),
        }
    }

    /// Host of a shared room: where a relay to guest `guest` goes. A `pake` moves that
    /// guest run's guess state as in an ordinary room.
    pub fn relay_to_guest(
        &mut self,
        conn: ConnId,
        guest: u32,
        pake_confirm: Option<bool>,
    ) -> Result<ConnId, Refusal> {
        let (r, i) = self.hosted_seat(conn, guest)?;
        let seat = &mut r.guests[i];
        if let Some(confirm) = pake_confirm {
            seat.guess.host_pake(confirm);
        }
        Ok(seat.conn)
    }

    /// Host of a shared room: remove guest `guest` (the host serves as many as it will at
    /// once). The guest hears `room-full`; a run with its tag unanswered still counts as a
    /// failed guess, so turning guests away cannot launder guesses.
    pub fn remove_guest(&mut self, conn: ConnId, guest: u32) -> Result<Notices, Refusal> {
        let limit = self.fail_limit;
        let (r, i) = self.hosted_seat(conn, guest)?;
        let mut seat = r.guests.remove(i);
        let mut notices = vec![(
            seat.conn,
            ServerMsg::error(
                None,
                ErrorCode::RoomFull,
                "the sender is busy with other receivers; try again shortly",
            ),
        )];
        notices.push((
            conn,
            r.about(guest, ServerMsg::PeerLeft { role: Role::Guest }),
        ));
        let counted = seat.guess.ended();
        if counted {
            let attempts_left = count_failure(r, limit);
            notices.push((
                conn,
                r.about(guest, ServerMsg::HandshakeFailed { attempts_left }),
            ));
            if r.locked {
                notices.push((conn, locked_notice()));
            }
        }
        r.last_guess = seat.guess;
        self.members.remove(&seat.conn);
        if counted {
            self.guesses_counted += 1;
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use ferry_proto::signal::{ErrorCode, Role, ServerMsg};

    use super::super::{Registry, RoomRecord};

    fn shared_room(g: &mut Registry, guests: usize) -> ferry_proto::RoomId {
        use rand::SeedableRng;
        let rec = RoomRecord {
            room: ferry_proto::RoomId::random_from(&mut rand::rngs::StdRng::seed_from_u64(7)),
            host_token_hash: "h".into(),
            created_at_ms: 0,
            expires_at_ms: 100_000,
        };
        let room = rec.room;
        g.insert_shared(rec, None, 0, guests).unwrap();
        g.attach_host(1, &room, 0).unwrap();
        room
    }

    fn from(guest: u32, msg: ServerMsg) -> ServerMsg {
        ServerMsg::FromGuest {
            guest,
            msg: Box::new(msg),
        }
    }

    #[test]
    fn guests_are_numbered_and_seated_up_to_the_capacity() {
        let mut g = Registry::new(3, 3, 10_000);
        let room = shared_room(&mut g, 2);
        let a = g.join(10, &room, 0).unwrap();
        assert_eq!(
            a.notices,
            vec![(1, from(1, ServerMsg::PeerJoined { role: Role::Guest }))]
        );
        let b = g.join(11, &room, 0).unwrap();
        assert_eq!(
            b.notices,
            vec![(1, from(2, ServerMsg::PeerJoined { role: Role::Guest }))]
        );
        let full = g.join(12, &room, 0).unwrap_err();
        assert_eq!(full.code, ErrorCode::RoomFull);
        assert!(full.message.contains("at once"), "{}", full.message);
        // A seat frees when its guest leaves; numbers are never reused.
        assert_eq!(
            g.leave(10, 0),
            vec![(1, from(1, ServerMsg::PeerLeft { role: Role::Guest }))]
        );
        let c = g.join(12, &room, 0).unwrap();
        assert_eq!(
            c.notices,
            vec![(1, from(3, ServerMsg::PeerJoined { role: Role::Guest }))]
        );
    }

    #[test]
    fn relays_are_addressed_both_ways() {
        let mut g = Registry::new(3, 3, 10_000);
        let room = shared_room(&mut g, 3);
        g.join(10, &room, 0).unwrap();
        g.join(11, &room, 0).unwrap();
        assert_eq!(g.relay_route(11, Some(false)).unwrap(), (1, Some(2)));
        assert_eq!(g.relay_route(10, None).unwrap(), (1, Some(1)));
        assert_eq!(g.relay_to_guest(1, 2, Some(false)).unwrap(), 11);
        assert_eq!(g.relay_to_guest(1, 1, None).unwrap(), 10);
        assert_eq!(
            g.relay_to_guest(1, 9, None).unwrap_err().code,
            ErrorCode::NotInRoom
        );
        // The host of a shared room must address; a guest cannot address anyone.
        assert_eq!(
            g.relay_route(1, None).unwrap_err().code,
            ErrorCode::BadMessage
        );
        assert_eq!(
            g.relay_to_guest(10, 2, None).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn failed_guesses_count_per_room_across_guests() {
        // Limit 3: three guests, each with an unanswered tag, lock the room between them.
        let mut g = Registry::new(3, 3, 10_000);
        let room = shared_room(&mut g, 3);
        for conn in [10, 11, 12] {
            g.join(conn, &room, 0).unwrap();
            g.relay_route(conn, Some(true)).unwrap();
        }
        // Guest 1: the host reports it. Guest 2: leaves unanswered. Guest 3: turned away.
        let n = g.handshake_failed_for(1, Some(1)).unwrap();
        assert_eq!(
            n,
            vec![
                (10, ServerMsg::HandshakeFailed { attempts_left: 2 }),
                (1, from(1, ServerMsg::HandshakeFailed { attempts_left: 2 }))
            ]
        );
        let n = g.leave(11, 0);
        assert_eq!(
            n[1],
            (1, from(2, ServerMsg::HandshakeFailed { attempts_left: 1 }))
        );
        let n = g.remove_guest(1, 3).unwrap();
        assert!(matches!(
            &n[0],
            (
                12,
                ServerMsg::Error {
                    code: ErrorCode::RoomFull,
                    ..
                }
            )
        ));
        assert_eq!(
            n[2],
            (1, from(3, ServerMsg::HandshakeFailed { attempts_left: 0 }))
        );
        assert!(matches!(
            &n[3],
            (
                1,
                ServerMsg::Error {
                    code: ErrorCode::RoomLocked,
                    ..
                }
            )
        ));
        assert_eq!(g.guesses_counted(), 3);
        assert_eq!(
            g.join(13, &room, 0).unwrap_err().code,
            ErrorCode::RoomLocked
        );
        // A stale report about guest 2 (counted when it left) counts nothing more.
        g.handshake_failed_for(1, Some(2)).unwrap();
        assert_eq!(g.guesses_counted(), 3);
    }

    #[test]
    fn an_answered_guest_is_not_a_guess_and_others_are_unaffected() {
        let mut g = Registry::new(3, 3, 10_000);
        let room = shared_room(&mut g, 3);
        g.join(10, &room, 0).unwrap();
        g.join(11, &room, 0).unwrap();
        g.relay_route(10, Some(true)).unwrap();
        g.relay_to_guest(1, 1, Some(true)).unwrap();
        g.relay_route(11, Some(true)).unwrap();
        // Guest 1 was answered: leaving is no guess. Guest 2's tag is still pending.
        assert_eq!(g.leave(10, 0).len(), 1);
        assert_eq!(g.guesses_counted(), 0);
        // The host going away ends guest 2's run as a failure, not guest 1's.
        let n = g.leave(1, 0);
        assert_eq!(n[0], (11, ServerMsg::PeerLeft { role: Role::Host }));
        assert_eq!(n[1], (11, ServerMsg::HandshakeFailed { attempts_left: 2 }));
        assert_eq!(g.guesses_counted(), 1);
    }

    #[test]
    fn a_host_reattaching_hears_who_is_seated() {
        let mut g = Registry::new(3, 3, 10_000);
        let room = shared_room(&mut g, 3);
        g.join(10, &room, 0).unwrap();
        g.join(11, &room, 0).unwrap();
        g.leave(1, 0);
        assert!(g.is_shared(&room));
        let a = g.attach_host(2, &room, 0).unwrap();
        assert!(a.peer_present);
        assert!(
            a.notices
                .contains(&(10, ServerMsg::PeerJoined { role: Role::Host }))
        );
        assert!(
            a.notices
                .contains(&(2, from(1, ServerMsg::PeerJoined { role: Role::Guest })))
        );
        assert!(
            a.notices
                .contains(&(2, from(2, ServerMsg::PeerJoined { role: Role::Guest })))
        );
    }

    #[test]
    fn an_ordinary_room_refuses_addressing() {
        let mut g = Registry::new(3, 3, 10_000);
        use rand::SeedableRng;
        let rec = RoomRecord {
            room: ferry_proto::RoomId::random_from(&mut rand::rngs::StdRng::seed_from_u64(8)),
            host_token_hash: "h".into(),
            created_at_ms: 0,
            expires_at_ms: 100_000,
        };
        let room = rec.room;
        g.insert(rec, None, 0).unwrap();
        g.attach_host(1, &room, 0).unwrap();
        g.join(10, &room, 0).unwrap();
        assert!(!g.is_shared(&room));
        assert_eq!(
            g.relay_to_guest(1, 1, None).unwrap_err().code,
            ErrorCode::BadMessage
        );
        assert_eq!(
            g.handshake_failed_for(1, Some(1)).unwrap_err().code,
            ErrorCode::BadMessage
        );
        assert_eq!(g.join(11, &room, 0).unwrap_err().code, ErrorCode::RoomFull);
    }
}
