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
    g.insert(r.clone(), None, 0).unwrap();
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
    g.insert(r.clone(), None, 0).unwrap();
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
    g.insert(r.clone(), None, 0).unwrap();
    g.attach_host(1, &r.room, 0).unwrap();
    g.join(2, &r.room, 0).unwrap();
    assert_eq!(
        g.handshake_failed(2).unwrap_err().code,
        ErrorCode::Unauthorized
    );
    // The host's verdict counts for a run whose guest showed its confirmation tag.
    g.relay_target(2, Some(true)).unwrap();
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
    g.relay_target(3, Some(true)).unwrap();
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
    g.insert(r.clone(), None, 0).unwrap();
    g.attach_host(1, &r.room, 0).unwrap();
    g.join(2, &r.room, 0).unwrap();
    assert_eq!(
        g.leave(1, 0),
        vec![(2, ServerMsg::PeerLeft { role: Role::Host })]
    );
    assert!(g.leave(1, 0).is_empty());
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
    g.insert(a.clone(), None, 0).unwrap();
    g.insert(b.clone(), None, 0).unwrap();
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
        g.insert(rec(i, 1000), None, 0).unwrap();
    }
    assert_eq!(
        g.insert(rec(9, 1000), None, 0).unwrap_err().code,
        ErrorCode::ServerFull
    );
    let (gone, _) = g.expire_due(1000);
    assert_eq!(gone.len(), 3);
    assert!(g.insert(rec(9, 2000), None, 0).is_ok());
}

use crate::limits::IpKey;

fn confirm_room(g: &mut Registry) -> RoomId {
    let r = rec(1, 100_000);
    g.insert(r.clone(), None, 0).unwrap();
    g.attach_host(1, &r.room, 0).unwrap();
    r.room
}

fn failed(left: u32) -> ServerMsg {
    ServerMsg::HandshakeFailed {
        attempts_left: left,
    }
}

#[test]
fn unanswered_guest_confirm_counts_when_the_guest_leaves() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    g.join(2, &room, 0).unwrap();
    assert_eq!(g.relay_target(2, Some(false)).unwrap(), 1);
    assert_eq!(g.relay_target(1, Some(false)).unwrap(), 2);
    g.relay_target(2, Some(true)).unwrap();
    // A second tag and more pake from the guest in the same run: still one guess.
    g.relay_target(2, Some(true)).unwrap();
    g.relay_target(2, Some(false)).unwrap();
    assert_eq!(
        g.leave(2, 0),
        vec![
            (1, ServerMsg::PeerLeft { role: Role::Guest }),
            (1, failed(1))
        ]
    );
    assert_eq!(g.guesses_counted(), 1);
    // A late host report about the same run counts nothing more.
    assert_eq!(g.handshake_failed(1).unwrap(), vec![(1, failed(1))]);
    assert_eq!(g.guesses_counted(), 1);
    // The next run that leaves unanswered locks the room (limit 2).
    g.join(3, &room, 0).unwrap();
    g.relay_target(3, Some(true)).unwrap();
    let n = g.leave(3, 0);
    assert_eq!(n.len(), 3);
    assert_eq!(n[1], (1, failed(0)));
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
    assert_eq!(g.join(4, &room, 0).unwrap_err().code, ErrorCode::RoomLocked);
}

#[test]
fn answered_confirm_or_no_confirm_counts_nothing() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    // No tag at all: leaving is not a guess.
    g.join(2, &room, 0).unwrap();
    g.relay_target(2, Some(false)).unwrap();
    assert_eq!(g.leave(2, 0).len(), 1);
    // Tag answered by the host's tag: the guest knew the password.
    g.join(3, &room, 0).unwrap();
    g.relay_target(3, Some(true)).unwrap();
    g.relay_target(1, Some(false)).unwrap();
    g.relay_target(1, Some(true)).unwrap();
    assert_eq!(g.leave(3, 0).len(), 1);
    assert_eq!(g.guesses_counted(), 0);
    // Offers and candidates do not touch the state.
    g.join(4, &room, 0).unwrap();
    g.relay_target(4, None).unwrap();
    assert_eq!(g.leave(4, 0).len(), 1);
    assert_eq!(g.guesses_counted(), 0);
}

#[test]
fn host_report_counts_once_per_run() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    g.join(2, &room, 0).unwrap();
    g.relay_target(2, Some(true)).unwrap();
    assert_eq!(
        g.handshake_failed(1).unwrap(),
        vec![(2, failed(1)), (1, failed(1))]
    );
    // The guest was removed with the report; its run is over and was counted once.
    assert_eq!(g.membership(2), None);
    assert!(g.leave(2, 0).is_empty());
    assert_eq!(g.handshake_failed(1).unwrap(), vec![(1, failed(1))]);
    assert_eq!(g.guesses_counted(), 1);
}

#[test]
fn host_leaving_ends_a_pending_guest_run_as_a_failure() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    g.join(2, &room, 0).unwrap();
    g.relay_target(2, Some(true)).unwrap();
    assert_eq!(
        g.leave(1, 5),
        vec![
            (2, ServerMsg::PeerLeft { role: Role::Host }),
            (2, failed(1))
        ]
    );
    // The guest is out: it cannot try again with the host's next socket in the same run.
    assert_eq!(g.membership(2), None);
    assert_eq!(g.guesses_counted(), 1);
    // A guest with nothing pending stays when the host leaves.
    g.attach_host(7, &room, 6).unwrap();
    g.join(3, &room, 6).unwrap();
    assert_eq!(
        g.leave(7, 7),
        vec![(3, ServerMsg::PeerLeft { role: Role::Host })]
    );
    assert!(g.membership(3).is_some());
}

#[test]
fn room_closed_with_a_pending_guest_counts_the_guess() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    g.join(2, &room, 0).unwrap();
    g.relay_target(2, Some(true)).unwrap();
    g.close(1, 0).unwrap();
    assert_eq!(g.guesses_counted(), 1);
}

#[test]
fn rooms_per_owner_are_capped_and_freed() {
    let mut g = Registry::new(10, 3, 10_000).with_rooms_per_owner(2);
    let a = IpKey::of("2001:db8::1".parse().unwrap());
    let a2 = IpKey::of("2001:db8::2".parse().unwrap());
    let b = IpKey::of("192.0.2.1".parse().unwrap());
    g.insert(rec(1, 1000), Some(a), 0).unwrap();
    g.insert(rec(2, 1000), Some(a2), 0).unwrap();
    assert_eq!(
        g.has_capacity(Some(a)).unwrap_err().code,
        ErrorCode::RateLimited
    );
    assert_eq!(
        g.insert(rec(3, 1000), Some(a), 0).unwrap_err().code,
        ErrorCode::RateLimited
    );
    g.insert(rec(4, 1000), Some(b), 0).unwrap();
    g.insert(rec(5, 1000), None, 0).unwrap();
    g.discard(&rec(1, 0).room);
    g.insert(rec(3, 1000), Some(a), 0).unwrap();
    // Expiry gives the slots back too.
    g.expire_due(1000);
    assert_eq!(g.room_count(), 0);
    g.insert(rec(6, 2000), Some(a), 1000).unwrap();
    g.insert(rec(7, 2000), Some(a), 1000).unwrap();
}

#[test]
fn rooms_without_a_host_are_reaped_after_the_grace() {
    let mut g = Registry::new(10, 3, 10_000).with_host_grace(100);
    let never = rec(1, 100_000);
    let left = rec(2, 100_000);
    let back = rec(3, 100_000);
    for r in [&never, &left, &back] {
        g.insert(r.clone(), None, 0).unwrap();
    }
    g.attach_host(1, &left.room, 50).unwrap();
    g.join(2, &left.room, 50).unwrap();
    g.attach_host(3, &back.room, 50).unwrap();
    g.leave(1, 60);
    g.leave(3, 60);
    // Nobody is due before the grace runs out.
    assert!(g.expire_due(99).0.is_empty());
    let (gone, notices) = g.expire_due(100);
    assert_eq!(
        gone,
        vec![never.room],
        "never attached: reaped from creation"
    );
    assert!(notices.is_empty());
    // The host that comes back within the grace keeps its room.
    g.attach_host(4, &back.room, 150).unwrap();
    let (gone, notices) = g.expire_due(160);
    assert_eq!(gone, vec![left.room]);
    assert_eq!(
        notices,
        vec![(2, ServerMsg::RoomExpired { room: left.room })]
    );
    assert_eq!(
        g.join(5, &left.room, 161).unwrap_err().code,
        ErrorCode::RoomExpired
    );
    assert!(
        g.expire_due(10_000).0.is_empty(),
        "an attached host is never reaped"
    );
    assert_eq!(g.room_count(), 1);
}

#[test]
fn stale_host_report_leaves_the_next_guest_alone() {
    let mut g = reg();
    let room = confirm_room(&mut g);
    g.join(2, &room, 0).unwrap();
    g.relay_target(2, Some(true)).unwrap();
    g.leave(2, 0);
    // The next guest joins before the host's report about the previous run arrives.
    g.join(3, &room, 0).unwrap();
    assert_eq!(g.handshake_failed(1).unwrap(), vec![(1, failed(1))]);
    assert_eq!(g.peer_of(3).unwrap(), 1, "the new guest is still seated");
    assert_eq!(g.guesses_counted(), 1);
}

#[test]
fn tombstones_are_bounded() {
    let mut g = Registry::new(1, 3, 1_000_000);
    let mut first = None;
    let mut last = None;
    for i in 0..1100u64 {
        let r = rec(1000 + i, 1_000_000);
        g.insert(r.clone(), None, 0).unwrap();
        g.attach_host(1, &r.room, 0).unwrap();
        g.close(1, 0).unwrap();
        first.get_or_insert(r.room);
        last = Some(r.room);
    }
    // 1,024 ids are remembered (the floor for a small server); later ones are not.
    let (first, last) = (first.unwrap(), last.unwrap());
    assert_eq!(
        g.join(2, &first, 1).unwrap_err().code,
        ErrorCode::RoomExpired
    );
    assert_eq!(
        g.join(2, &last, 1).unwrap_err().code,
        ErrorCode::RoomNotFound
    );
}
