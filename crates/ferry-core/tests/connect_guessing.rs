//! Password guessing against a real `ferry-signal` over real WebRTC on 127.0.0.1: a wrong
//! password fails fast on both sides, every run costs the room one guess whatever the guest
//! does, and the host stops at its own limit (docs/CRYPTO.md §3).

mod session_common;

use std::time::{Duration, Instant};

use ferry_core::crypto::{PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX, Pake};
use ferry_core::{ConnectError, HostRoom, Password, SessionEvent, join};
use ferry_proto::signal::{ClientMsg, Role, ServerMsg};
use session_common::{cfg, drain, exchange, next_event, server, within};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_fast_on_both_sides_and_host_keeps_waiting() {
    let srv = server().await;
    let pw = Password::new("gladly-wildly-brave-otter");
    let mut host = HostRoom::create(cfg(&srv.ws_url()), pw.clone())
        .await
        .unwrap();
    let room = host.ticket().room;
    let (etx, mut erx) = mpsc::unbounded_channel();
    let url = srv.ws_url();
    let accept = tokio::spawn(async move {
        let r = host.accept(&etx).await;
        (host, r)
    });

    let t0 = Instant::now();
    let err = join(cfg(&url), room, Password::new("gladly-wildly-brave-otters"))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, ConnectError::WrongPassword), "{err:?}");
    assert_eq!(err.code(), "wrong-password");
    assert!(took < Duration::from_secs(2), "guest took {took:?}");

    // The host saw it, reported it, and is still waiting.
    let ev = next_event(&mut erx, 2, |e| match e {
        SessionEvent::WrongPassword { attempts_left } => Some(attempts_left),
        _ => None,
    })
    .await;
    assert_eq!(ev, 2);
    assert!(!accept.is_finished());

    // The right guest still gets in.
    let g = within(30, join(cfg(&url), room, pw)).await.unwrap();
    let (host, h) = within(30, accept).await.unwrap();
    let (mut h, mut g) = (h.unwrap(), g);
    exchange(&mut h.link, &mut g.link, 3).await;
    host.close().await;
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_locks_after_repeated_wrong_passwords() {
    let srv = server().await;
    let mut host = HostRoom::create(cfg(&srv.ws_url()), Password::new("right"))
        .await
        .unwrap();
    let room = host.ticket().room;
    let (etx, mut erx) = mpsc::unbounded_channel();
    let url = srv.ws_url();
    let accept = tokio::spawn(async move { host.accept(&etx).await });
    for left in [2, 1, 0] {
        let e = join(cfg(&url), room, Password::new("wrong"))
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::WrongPassword), "{e:?}");
        // Like a person would, try again once the host has reported the failure.
        let got = next_event(&mut erx, 5, |e| match e {
            SessionEvent::WrongPassword { attempts_left } => Some(attempts_left),
            _ => None,
        })
        .await;
        assert_eq!(got, left);
    }
    let r = within(10, accept).await.unwrap();
    assert!(matches!(r, Err(ConnectError::RoomLocked)), "{:?}", r.err());
    let e = join(cfg(&url), room, Password::new("right"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "room-locked");
    srv.shutdown().await;
}

/// A guest that joins and then never speaks (a crashed app, a network that ate its
/// packets) costs the host one attempt, not the room: the next guest still gets in. It is
/// no password guess either: the host sends nothing keyed to a guest that proved nothing
/// (`a_guesser_that_leaves_before_the_verdict_still_costs_a_guess` covers one that does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_goes_silent_does_not_end_the_room() {
    let srv = server().await;
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut hcfg = cfg(&url);
    hcfg.connect_timeout = Duration::from_secs(4);
    let mut host = HostRoom::create(hcfg, pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, mut erx) = mpsc::unbounded_channel();
    let accept = tokio::spawn(async move {
        let r = host.accept(&etx).await;
        (host, r)
    });

    let mut silent = ferry_core::signaling::SignalClient::connect(&url, Duration::from_secs(5))
        .await
        .unwrap();
    let rid = silent.rid();
    silent
        .send(ferry_proto::signal::ClientMsg::JoinRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(rid),
            room,
        })
        .unwrap();
    let (code, message) = next_event(&mut erx, 15, |e| match e {
        SessionEvent::AttemptFailed { code, message } => Some((code, message)),
        _ => None,
    })
    .await;
    assert_eq!(code, "timeout", "{message}");
    assert!(!accept.is_finished(), "the host gave up the room");

    let _ = silent.send(ferry_proto::signal::ClientMsg::Leave);
    drop(silent);
    // The server may not have seen the silent guest leave yet: its seat frees shortly.
    let mut tries = 0;
    let g = loop {
        match within(30, join(cfg(&url), room, pw.clone())).await {
            Err(ConnectError::RoomFull) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => break r.unwrap(),
        }
    };
    let (host, h) = within(30, accept).await.unwrap();
    let (mut h, mut g) = (h.unwrap(), g);
    exchange(&mut h.link, &mut g.link, 3).await;
    host.close().await;
    srv.shutdown().await;
}

/// Speaks the guest's side of the PAKE by hand, as an online guesser would.
struct Guesser {
    sig: ferry_core::signaling::SignalClient,
}

impl Guesser {
    async fn join(url: &str, room: ferry_proto::RoomId) -> Guesser {
        let mut sig = ferry_core::signaling::SignalClient::connect(url, Duration::from_secs(5))
            .await
            .unwrap();
        let rid = sig.rid();
        sig.send(ClientMsg::JoinRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(rid),
            room,
        })
        .unwrap();
        Guesser { sig }
    }

    /// Every `pake` payload that arrives within `ms`.
    async fn pakes_within(&mut self, ms: u64) -> Vec<String> {
        let mut got = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Ok(m)) = tokio::time::timeout_at(end, self.sig.recv()).await {
            if let ServerMsg::Pake { payload } = m {
                got.push(payload);
            }
        }
        got
    }
}

/// The attack the confirmation order closes: a guest sends one SPAKE2 message for a guessed
/// password and waits for the host's tag to test the guess offline, then leaves without ever
/// showing its own. The host must reveal nothing keyed before the guest's tag, and a guest
/// that shows a tag and leaves before the verdict still costs the room a guess, until the
/// room locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_that_leaves_before_the_verdict_still_costs_a_guess() {
    let srv = server().await;
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&url), pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, mut erx) = mpsc::unbounded_channel();
    let accept = tokio::spawn(async move {
        let r = host.accept(&etx).await;
        (host, r)
    });
    for expected_left in [2u32, 1, 0] {
        let mut g = Guesser::join(&url, room).await;
        let (pake, msg) = Pake::start(Role::Guest, &room, &Password::new("a guess"));
        g.sig.send(ClientMsg::Pake { payload: msg }).unwrap();
        let seen = g.pakes_within(1500).await;
        assert!(
            seen.iter().all(|p| !p.starts_with(PAKE_CONFIRM_PREFIX)),
            "the host revealed its confirmation tag to a guest that proved nothing"
        );
        let host_msg = seen
            .iter()
            .find(|p| p.starts_with(PAKE_MSG_PREFIX))
            .expect("the host's SPAKE2 message");
        let keys = pake.finish(host_msg).unwrap();
        g.sig
            .send(ClientMsg::Pake {
                payload: keys.confirmation(),
            })
            .unwrap();
        // Gone before any verdict could reach it.
        let _ = g.sig.send(ClientMsg::Leave);
        drop(g);
        let left = next_event(&mut erx, 15, |e| match e {
            SessionEvent::WrongPassword { attempts_left } => Some(attempts_left),
            _ => None,
        })
        .await;
        assert_eq!(left, expected_left);
    }
    let (_host, r) = within(15, accept).await.unwrap();
    assert!(matches!(r, Err(ConnectError::RoomLocked)), "{r:?}");
    let e = within(15, join(cfg(&url), room, pw)).await.unwrap_err();
    assert_eq!(e.code(), "room-locked", "{e}");
    srv.shutdown().await;
}

/// A server that ignores the host's reports (here: one whose lock is set far away) cannot
/// give guessers more tries than the host allows: the host counts by itself and closes the
/// room at its own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_stops_guessing_by_itself_whatever_the_server_says() {
    let srv = ferry_signal::spawn(ferry_signal::Config {
        rate_limit: ferry_signal::RateLimit {
            per_second: 1000,
            burst: 1000,
        },
        handshake_fail_limit: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = srv.ws_url();
    let pw = Password::generate();
    let mut host = HostRoom::create(cfg(&url), pw.clone()).await.unwrap();
    let room = host.ticket().room;
    let (etx, mut erx) = mpsc::unbounded_channel();
    let accept = tokio::spawn(async move { host.accept(&etx).await });
    for _ in 0..ferry_core::session::DEFAULT_GUESS_LIMIT {
        let e = within(20, join(cfg(&url), room, Password::new("wrong")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "wrong-password", "{e}");
    }
    let r = within(15, accept).await.unwrap();
    assert!(matches!(r, Err(ConnectError::RoomLocked)), "{r:?}");
    let lefts: Vec<u32> = drain(&mut erx)
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::WrongPassword { attempts_left } => Some(attempts_left),
            _ => None,
        })
        .collect();
    assert_eq!(lefts, vec![2, 1, 0]);
    // The host closed the room: the right password no longer gets in.
    let e = within(15, join(cfg(&url), room, pw)).await.unwrap_err();
    assert!(
        matches!(e, ConnectError::RoomExpired | ConnectError::RoomNotFound),
        "{e}"
    );
    srv.shutdown().await;
}

/// The other direction: a server posing as the host gets the guest's tag and never answers
/// it. The guest must call that a failed attempt (and so not retry into more guesses), not
/// a peer that simply left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_whose_tag_goes_unanswered_reports_a_wrong_password() {
    let srv = server().await;
    let url = srv.ws_url();
    let mut fake = ferry_core::signaling::SignalClient::connect(&url, Duration::from_secs(5))
        .await
        .unwrap();
    let rid = fake.rid();
    fake.send(ClientMsg::CreateRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: Some(rid),
        ttl_secs: None,
    })
    .unwrap();
    let room = loop {
        if let ServerMsg::RoomCreated { room, .. } = within(5, fake.recv()).await.unwrap() {
            break room;
        }
    };
    let guest = tokio::spawn(join(cfg(&url), room, Password::new("the real one")));
    let (_, msg) = Pake::start(Role::Host, &room, &Password::new("a guess"));
    let mut sent = false;
    let tag = within(10, async {
        loop {
            match fake.recv().await.unwrap() {
                ServerMsg::PeerJoined { .. } if !sent => {
                    fake.send(ClientMsg::Pake {
                        payload: msg.clone(),
                    })
                    .unwrap();
                    sent = true;
                }
                ServerMsg::Pake { payload } if payload.starts_with(PAKE_CONFIRM_PREFIX) => {
                    break payload;
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(tag.starts_with(PAKE_CONFIRM_PREFIX));
    // Walk away with the tag (an offline test of one guess), leaving the guest hanging.
    fake.send(ClientMsg::CloseRoom { rid: None }).unwrap();
    let e = within(20, guest).await.unwrap().unwrap_err();
    assert!(matches!(e, ConnectError::WrongPassword), "{e:?}");
    assert_eq!(e.to_string(), "wrong password, or the server interfered");
    srv.shutdown().await;
}
