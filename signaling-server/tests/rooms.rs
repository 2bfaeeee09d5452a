//! Room lifecycle over real sockets: create, join, relay, full, unknown, expired, locked,
//! host reconnect. The limits on what one socket may send are limits.rs.

mod common;

use std::time::Duration;

use common::{Client, config, pair, start};
use ferry_proto::signal::{ClientMsg, ErrorCode, Role, ServerMsg};
use tokio_tungstenite::connect_async;

#[tokio::test]
async fn relay_both_ways_and_third_peer_is_rejected() {
    let mut cfg = config();
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let (mut host, mut guest, room) = pair(&url).await;

    host.send(ClientMsg::Pake {
        payload: "h-pake".into(),
    })
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMsg::Pake {
            payload: "h-pake".into()
        }
    );
    guest
        .send(ClientMsg::Pake {
            payload: "g-pake".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Pake {
            payload: "g-pake".into()
        }
    );
    host.send(ClientMsg::Offer {
        payload: "sealed-offer".into(),
    })
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMsg::Offer {
            payload: "sealed-offer".into()
        }
    );
    guest
        .send(ClientMsg::Answer {
            payload: "sealed-answer".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Answer {
            payload: "sealed-answer".into()
        }
    );
    for (from_host, p) in [(true, "c1"), (false, "c2"), (true, "c3"), (false, "c4")] {
        let m = ClientMsg::IceCandidate { payload: p.into() };
        let (a, b) = if from_host {
            (&mut host, &mut guest)
        } else {
            (&mut guest, &mut host)
        };
        a.send(m).await;
        assert_eq!(
            b.recv().await,
            ServerMsg::IceCandidate { payload: p.into() }
        );
    }

    let mut third = Client::connect(&url).await;
    match third.join(room).await {
        ServerMsg::Error { rid, code, .. } => {
            assert_eq!(code, ErrorCode::RoomFull);
            assert_eq!(rid, Some(2), "error echoes the request id");
        }
        other => panic!("expected room-full, got {other:?}"),
    }
    // A lone peer cannot relay.
    third
        .send(ClientMsg::Offer {
            payload: "x".into(),
        })
        .await;
    third.expect_error(ErrorCode::NotInRoom).await;

    // Guest leaves: host told; a new guest may join.
    guest.send(ClientMsg::Leave).await;
    assert_eq!(host.recv().await, ServerMsg::PeerLeft { role: Role::Guest });
    assert!(matches!(third.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );

    let metrics_url = format!("http://{}/metrics", srv.metrics_addr().unwrap());
    let (_, metrics) = common::http("GET", &metrics_url, None).await;
    assert!(
        metrics.contains("ferry_signal_messages_relayed_total{type=\"ice-candidate\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_signal_rejects_total{reason=\"room-full\"} 1"),
        "{metrics}"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn unknown_room_and_bad_version() {
    let srv = start(config()).await;
    let mut d = Client::connect(&srv.ws_url()).await;
    match d.join("YYYYY-YYYYY".parse().unwrap()).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomNotFound),
        other => panic!("{other:?}"),
    }
    d.send_text(r#"{"type":"create-room","v":99}"#.into()).await;
    d.expect_error(ErrorCode::UnsupportedVersion).await;
    srv.shutdown().await;
}

/// Open `url` and return the socket with the server's welcome.
async fn dial(url: &str) -> (Client, ServerMsg) {
    let (ws, _) = tokio::time::timeout(Duration::from_secs(5), connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut c = Client { ws };
    let welcome = c.recv().await;
    (c, welcome)
}

#[tokio::test]
async fn a_join_in_the_upgrade_url_is_answered_without_a_frame() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = host.create(None).await;

    // A socket whose URL carries no join is told none was taken, so a client whose query a
    // proxy dropped sends its join as a frame instead of waiting.
    let (_, plain) = dial(&url).await;
    assert!(
        matches!(
            plain,
            ServerMsg::Welcome {
                join_in_url: false,
                ..
            }
        ),
        "{plain:?}"
    );
    let (mut guest, welcome) = dial(&format!("{url}?join={room}&v=2&rid=7")).await;
    assert!(
        matches!(
            welcome,
            ServerMsg::Welcome {
                join_in_url: true,
                ..
            }
        ),
        "{welcome:?}"
    );
    match guest.recv().await {
        ServerMsg::Joined {
            rid, role, room: r, ..
        } => {
            assert_eq!((rid, role, r), (Some(7), Role::Guest, room));
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    guest
        .send(ClientMsg::Pake {
            payload: "g".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Pake {
            payload: "g".into()
        }
    );

    // Whatever a join frame would get, the URL's join gets: the room is full now...
    let (mut third, _) = dial(&format!("{url}?join={room}&rid=8")).await;
    match third.recv().await {
        ServerMsg::Error { rid, code, .. } => {
            assert_eq!((rid, code), (Some(8), ErrorCode::RoomFull))
        }
        other => panic!("expected room-full, got {other:?}"),
    }
    // ...a room id that is not one is a bad message, and the socket stays open for a frame...
    let (mut bad, _) = dial(&format!("{url}?join=not%20a%20room")).await;
    bad.expect_error(ErrorCode::BadMessage).await;
    let (other_room, _) = Client::connect(&url).await.create(None).await;
    assert!(matches!(
        bad.join(other_room).await,
        ServerMsg::Joined { .. }
    ));
    // ...and an unknown version is refused as in a frame.
    let (mut old, _) = dial(&format!("{url}?join={room}&v=99")).await;
    old.expect_error(ErrorCode::UnsupportedVersion).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn expired_room_tells_peers_and_rejects_joins() {
    let mut cfg = config();
    cfg.sweep_interval = Duration::from_millis(20);
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = host.create(Some(1)).await;
    let mut guest = Client::connect(&url).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    assert!(matches!(host.recv().await, ServerMsg::PeerJoined { .. }));
    // Both peers are told when the 1 s lifetime ends.
    assert_eq!(host.recv().await, ServerMsg::RoomExpired { room });
    assert_eq!(guest.recv().await, ServerMsg::RoomExpired { room });
    let mut late = Client::connect(&url).await;
    match late.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomExpired),
        other => panic!("{other:?}"),
    }
    // Removed peers cannot relay any more.
    host.send(ClientMsg::Offer {
        payload: "x".into(),
    })
    .await;
    host.expect_error(ErrorCode::NotInRoom).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn repeated_handshake_failures_lock_the_room() {
    let mut cfg = config();
    cfg.handshake_fail_limit = 2;
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = host.create(None).await;
    for left in [1u32, 0] {
        let mut guest = Client::connect(&url).await;
        assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
        assert!(matches!(host.recv().await, ServerMsg::PeerJoined { .. }));
        guest.send(ClientMsg::HandshakeFailed).await;
        guest.expect_error(ErrorCode::Unauthorized).await;
        // v2: the guest's confirmation tag goes first; the host checks it and reports.
        guest
            .send(ClientMsg::Pake {
                payload: format!("{}tag", ferry_proto::signal::PAKE_CONFIRM_PREFIX),
            })
            .await;
        assert!(matches!(host.recv().await, ServerMsg::Pake { .. }));
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
        guest
            .send(ClientMsg::Pake {
                payload: "x".into(),
            })
            .await;
        guest.expect_error(ErrorCode::NotInRoom).await;
    }
    host.expect_error(ErrorCode::RoomLocked).await;
    let mut next = Client::connect(&url).await;
    match next.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomLocked),
        other => panic!("{other:?}"),
    }
    let body = format!(r#"{{"room":"{room}"}}"#);
    let (status, text) = common::http(
        "POST",
        &format!("{}/api/room/join", srv.http_url()),
        Some(&body),
    )
    .await;
    assert_eq!(status, 409);
    assert!(text.contains("room-locked"), "{text}");
    srv.shutdown().await;
}

#[tokio::test]
async fn host_reconnect_needs_the_right_token() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, token) = host.create(None).await;
    let mut guest = Client::connect(&url).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    drop(host);
    assert_eq!(guest.recv().await, ServerMsg::PeerLeft { role: Role::Host });

    let mut thief = Client::connect(&url).await;
    let wrong = format!("{}x", &token[..token.len() - 1]);
    match thief.reconnect_host(room, &wrong).await {
        ServerMsg::Error { code, rid, .. } => {
            assert_eq!(code, ErrorCode::Unauthorized);
            assert_eq!(rid, Some(3));
        }
        other => panic!("{other:?}"),
    }
    thief
        .send(ClientMsg::Offer {
            payload: "x".into(),
        })
        .await;
    thief.expect_error(ErrorCode::NotInRoom).await;

    let mut back = Client::connect(&url).await;
    match back.reconnect_host(room, &token).await {
        ServerMsg::Joined {
            role, peer_present, ..
        } => {
            assert_eq!(role, Role::Host);
            assert!(peer_present);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        guest.recv().await,
        ServerMsg::PeerJoined { role: Role::Host }
    );
    back.send(ClientMsg::Offer {
        payload: "again".into(),
    })
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMsg::Offer {
            payload: "again".into()
        }
    );

    // Host-only operations.
    guest
        .send(ClientMsg::ExtendRoom {
            rid: Some(9),
            ttl_secs: 60,
        })
        .await;
    guest.expect_error(ErrorCode::Unauthorized).await;
    back.send(ClientMsg::ExtendRoom {
        rid: Some(9),
        ttl_secs: 10 * 24 * 3600,
    })
    .await;
    match back.recv().await {
        ServerMsg::RoomExtended { rid, expires_at } => {
            assert_eq!(rid, Some(9));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            // Clamped to the 24 h maximum.
            assert!(
                expires_at <= now + 24 * 3600 + 2 && expires_at >= now + 24 * 3600 - 2,
                "{expires_at}"
            );
        }
        other => panic!("{other:?}"),
    }
    back.send(ClientMsg::CloseRoom { rid: None }).await;
    assert_eq!(back.recv().await, ServerMsg::RoomClosed);
    assert_eq!(guest.recv().await, ServerMsg::RoomClosed);
    srv.shutdown().await;
}

#[tokio::test]
async fn rest_create_then_host_attaches_over_ws() {
    let srv = start(config()).await;
    let base = srv.http_url();
    let (status, body) = common::http(
        "POST",
        &format!("{base}/api/room/create"),
        Some(r#"{"ttl_secs":120}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let created: ferry_proto::signal::CreateRoomResponse = serde_json::from_str(&body).unwrap();
    let join_body = format!(r#"{{"room":"{}"}}"#, created.room);
    let (status, body) =
        common::http("POST", &format!("{base}/api/room/join"), Some(&join_body)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::http(
        "POST",
        &format!("{base}/api/room/join"),
        Some(r#"{"room":"ZZZZZ-ZZZZZ"}"#),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("room-not-found"));
    let (status, _) = common::http("POST", &format!("{base}/api/room/join"), Some("{")).await;
    assert_eq!(status, 400);

    let mut host = Client::connect(&srv.ws_url()).await;
    assert!(matches!(
        host.reconnect_host(created.room, &created.host_token).await,
        ServerMsg::Joined {
            role: Role::Host,
            peer_present: false,
            ..
        }
    ));
    let mut guest = Client::connect(&srv.ws_url()).await;
    assert!(matches!(
        guest.join(created.room).await,
        ServerMsg::Joined {
            peer_present: true,
            ..
        }
    ));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    let (status, body) = common::http("GET", &format!("{base}/healthz"), None).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    srv.shutdown().await;
}
