//! Several `ferry-signal` processes sharing rooms through one real redis-server: relay across
//! nodes, a node's death, expiry with the creating node down, guesses and per-address limits
//! across nodes, Redis going away and coming back.

mod common;

use std::time::Duration;

use common::nodes::{Node, metric};
use common::redis::start_or_skip;
use common::{Client, pair};
use ferry_proto::signal::{ClientMsg, ErrorCode, PAKE_CONFIRM_PREFIX, Role, ServerMsg};

/// Host on node 1, guest on node 2: every relayed kind crosses, in order, both ways; a third
/// peer through node 3 finds the room full.
#[tokio::test]
async fn host_and_guest_on_different_nodes_relay_in_order() {
    let Some(redis) = start_or_skip("host_and_guest_on_different_nodes_relay_in_order") else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, _) = host.create(None).await;
    let mut guest = Client::connect(&n[1].ws()).await;
    match guest.join(room).await {
        ServerMsg::Joined {
            role, peer_present, ..
        } => {
            assert_eq!(role, Role::Guest);
            assert!(peer_present);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    host.send(ClientMsg::Pake {
        payload: "h".into(),
    })
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMsg::Pake {
            payload: "h".into()
        }
    );
    guest
        .send(ClientMsg::Answer {
            payload: "a".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Answer {
            payload: "a".into()
        }
    );
    for i in 0..300 {
        host.send(ClientMsg::IceCandidate {
            payload: format!("c{i}"),
        })
        .await;
    }
    for i in 0..300 {
        assert_eq!(
            guest.recv().await,
            ServerMsg::IceCandidate {
                payload: format!("c{i}")
            },
            "in order"
        );
    }
    let mut third = Client::connect(&n[2].ws()).await;
    match third.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomFull),
        other => panic!("{other:?}"),
    }
    // Leaving through node 2 is heard on node 1.
    guest.send(ClientMsg::Leave).await;
    assert_eq!(host.recv().await, ServerMsg::PeerLeft { role: Role::Guest });
    // The same suite helper works across nodes too.
    let (_h, _g, _) = pair(&n[2].ws()).await;
    let text = n[0].metrics().await;
    assert_eq!(metric(&text, "ferry_signal_redis_up"), 1.0, "{text}");
    assert_eq!(n[1].health().await, 200);
    drop(redis);
    let _ = PAKE_CONFIRM_PREFIX;
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A room created on node 1 ends on time with node 1 dead: its guest on node 2 is told, and a
/// late join through node 3 hears `room-expired`, not `room-not-found`.
#[tokio::test]
async fn room_expires_on_time_with_its_node_down() {
    let Some(redis) = start_or_skip("room_expires_on_time_with_its_node_down") else {
        return;
    };
    let mut n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let t0 = std::time::Instant::now();
    let (room, _) = host.create(Some(2)).await;
    let mut guest = Client::connect(&n[1].ws()).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    n[0].kill();
    assert_eq!(guest.recv().await, ServerMsg::RoomExpired { room });
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3000),
        "expired after {took:?}"
    );
    let mut late = Client::connect(&n[2].ws()).await;
    match late.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomExpired),
        other => panic!("{other:?}"),
    }
    match late.join("ABCDE-FGHJK".parse().unwrap()).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomNotFound),
        other => panic!("{other:?}"),
    }
}

/// Guesses through different nodes add up: three unanswered confirmation tags (through nodes
/// 2, 3, 2; one reported by the host, two not) lock the room for a guest on any node.
#[tokio::test]
async fn wrong_password_lock_holds_across_nodes() {
    let Some(redis) = start_or_skip("wrong_password_lock_holds_across_nodes") else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, _) = host.create(None).await;
    for (i, via) in [1usize, 2, 1].into_iter().enumerate() {
        let left = 2 - i as u32;
        let mut guest = Client::connect(&n[via].ws()).await;
        assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
        assert_eq!(
            host.recv().await,
            ServerMsg::PeerJoined { role: Role::Guest }
        );
        guest
            .send(ClientMsg::Pake {
                payload: format!("{PAKE_CONFIRM_PREFIX}guess{i}"),
            })
            .await;
        assert!(matches!(host.recv().await, ServerMsg::Pake { .. }));
        if i == 1 {
            // The host reports this one; the guest is removed and told.
            host.send(ClientMsg::HandshakeFailed).await;
            assert_eq!(
                guest.recv().await,
                ServerMsg::HandshakeFailed {
                    attempts_left: left
                }
            );
            assert_eq!(
                host.recv().await,
                ServerMsg::HandshakeFailed {
                    attempts_left: left
                }
            );
        } else {
            drop(guest);
            assert_eq!(host.recv().await, ServerMsg::PeerLeft { role: Role::Guest });
            assert_eq!(
                host.recv().await,
                ServerMsg::HandshakeFailed {
                    attempts_left: left
                }
            );
        }
    }
    host.expect_error(ErrorCode::RoomLocked).await;
    for node in &n {
        let mut late = Client::connect(&node.ws()).await;
        match late.join(room).await {
            ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomLocked),
            other => panic!("expected room-locked, got {other:?}"),
        }
    }
}

/// The per-address room cap and create/join rate are counted once for the deployment, not
/// once per node.
#[tokio::test]
async fn per_address_limits_hold_across_nodes() {
    let Some(redis) = start_or_skip("per_address_limits_hold_across_nodes") else {
        return;
    };
    let caps = ["--max-rooms-per-ip", "3"];
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &caps)).collect();
    let mut hosts = Vec::new();
    for via in [0usize, 1, 2] {
        let mut h = Client::connect(&n[via].ws()).await;
        h.create(None).await;
        hosts.push(h);
    }
    for node in &n {
        let mut c = Client::connect(&node.ws()).await;
        c.send(ClientMsg::CreateRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(9),
            ttl_secs: None,
        })
        .await;
        c.expect_error(ErrorCode::RateLimited).await;
    }
    // Closing one (through its node) gives the address a room back, on any node.
    hosts[1].send(ClientMsg::CloseRoom { rid: None }).await;
    assert_eq!(hosts[1].recv().await, ServerMsg::RoomClosed);
    Client::connect(&n[2].ws()).await.create(None).await;

    // The rate: a burst of 4 shared by all three nodes.
    let rate = ["--rate-per-sec", "1", "--rate-burst", "4"];
    let redis2 = common::redis::RedisServer::start();
    let m: Vec<Node> = (0..3).map(|_| Node::start(&redis2, &rate)).collect();
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..6 {
        let mut c = Client::connect(&m[i % 3].ws()).await;
        c.send(ClientMsg::CreateRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(1),
            ttl_secs: None,
        })
        .await;
        match c.recv().await {
            ServerMsg::RoomCreated { .. } => ok += 1,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, limited), (4, 2), "one burst for the deployment");
}

/// Redis stops: requests get a clear "server busy" answer within seconds rather than hanging,
/// `/healthz` says unhealthy and `/metrics` counts the errors. Redis comes back: every node
/// recovers by itself and the rooms it kept are usable again.
#[tokio::test]
async fn redis_outage_is_visible_and_recovered_from() {
    let Some(mut redis) = start_or_skip("redis_outage_is_visible_and_recovered_from") else {
        return;
    };
    let n: Vec<Node> = (0..2).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, _) = host.create(None).await;
    redis.stop();
    let t0 = std::time::Instant::now();
    let mut c = Client::connect(&n[1].ws()).await;
    match c.join(room).await {
        ServerMsg::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::ServerFull);
            assert!(
                message.contains("busy") && message.contains("retry"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    for node in &n {
        assert_eq!(node.health().await, 503);
    }
    let text = n[1].metrics().await;
    assert!(
        metric(&text, "ferry_signal_redis_errors_total") >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "ferry_signal_redis_up"), 0.0, "{text}");
    assert!(metric(&text, "ferry_signal_redis_latency_seconds_count") >= 1.0);

    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for node in &n {
        while node.health().await != 200 {
            assert!(std::time::Instant::now() < deadline, "no recovery");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The room survived (Redis's append-only file) and relays again across nodes.
    let mut guest = Client::connect(&n[1].ws()).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    guest
        .send(ClientMsg::Offer {
            payload: "back".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Offer {
            payload: "back".into()
        }
    );
    let text = n[0].metrics().await;
    assert_eq!(metric(&text, "ferry_signal_redis_up"), 1.0, "{text}");
}
