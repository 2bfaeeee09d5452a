//! Shared rooms (signaling v3) over real sockets: several guests, addressed relays both ways,
//! the lock across guests, turning a guest away, and a v2 host refused. Runs on the in-memory
//! registry, and on Redis under `scripts/test-signal-redis.sh`; the last test spreads one room
//! over three nodes sharing a real redis-server.

mod common;

use common::nodes::Node;
use common::redis::start_or_skip;
use common::{Client, config, start};
use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, ErrorCode, PAKE_CONFIRM_PREFIX, Role, ServerMsg};

async fn create_shared(host: &mut Client, guests: u32) -> (RoomId, String) {
    host.send(ClientMsg::CreateSharedRoom {
        v: ferry_proto::SIGNAL_SHARED_VERSION,
        rid: Some(1),
        ttl_secs: None,
        guests,
    })
    .await;
    match host.recv().await {
        ServerMsg::RoomCreated {
            room, host_token, ..
        } => (room, host_token),
        other => panic!("expected room-created, got {other:?}"),
    }
}

fn from(guest: u32, msg: ServerMsg) -> ServerMsg {
    ServerMsg::FromGuest {
        guest,
        msg: Box::new(msg),
    }
}

fn to(guest: u32, msg: ClientMsg) -> ClientMsg {
    ClientMsg::ToGuest {
        guest,
        msg: Box::new(msg),
    }
}

fn pake(p: &str) -> ClientMsg {
    ClientMsg::Pake { payload: p.into() }
}

/// Three guests seated in a room of three (the hosts's `peer-joined` notices numbered 1..3).
async fn three_guests(url: &[String], room: RoomId, host: &mut Client) -> Vec<Client> {
    let mut gs = Vec::new();
    for (i, u) in url.iter().enumerate() {
        let mut g = Client::connect(u).await;
        match g.join(room).await {
            ServerMsg::Joined { peer_present, .. } => assert!(peer_present),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            host.recv().await,
            from(i as u32 + 1, ServerMsg::PeerJoined { role: Role::Guest })
        );
        gs.push(g);
    }
    gs
}

#[tokio::test]
async fn guests_are_addressed_both_ways_and_the_room_seats_its_capacity() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = create_shared(&mut host, 3).await;
    let urls = vec![url.clone(), url.clone(), url.clone()];
    let mut gs = three_guests(&urls, room, &mut host).await;
    let mut fourth = Client::connect(&url).await;
    match fourth.join(room).await {
        ServerMsg::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::RoomFull);
            assert!(message.contains("at once"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Guest → host: tagged by the server. Host → guest: only the addressed one hears it.
    gs[1].send(pake("spake2:g2")).await;
    assert_eq!(
        host.recv().await,
        from(
            2,
            ServerMsg::Pake {
                payload: "spake2:g2".into()
            }
        )
    );
    host.send(to(3, pake("spake2:h3"))).await;
    assert_eq!(
        gs[2].recv().await,
        ServerMsg::Pake {
            payload: "spake2:h3".into()
        }
    );
    host.send(to(
        1,
        ClientMsg::Offer {
            payload: "o1".into(),
        },
    ))
    .await;
    assert_eq!(
        gs[0].recv().await,
        ServerMsg::Offer {
            payload: "o1".into()
        }
    );
    // An unaddressed relay from the host, or one to nobody, is refused, addressed.
    host.send(pake("x")).await;
    host.expect_error(ErrorCode::BadMessage).await;
    host.send(to(9, pake("x"))).await;
    match host.recv().await {
        ServerMsg::FromGuest { guest: 9, msg } => {
            assert!(matches!(
                *msg,
                ServerMsg::Error {
                    code: ErrorCode::NotInRoom,
                    ..
                }
            ))
        }
        other => panic!("{other:?}"),
    }
    // A seat frees when its guest leaves; the next guest gets a new number.
    gs[0].send(ClientMsg::Leave).await;
    assert_eq!(
        host.recv().await,
        from(1, ServerMsg::PeerLeft { role: Role::Guest })
    );
    assert!(matches!(fourth.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        from(4, ServerMsg::PeerJoined { role: Role::Guest })
    );
    // Turning a guest away: it hears room-full and loses its seat.
    host.send(to(4, ClientMsg::Leave)).await;
    fourth.expect_error(ErrorCode::RoomFull).await;
    assert_eq!(
        host.recv().await,
        from(4, ServerMsg::PeerLeft { role: Role::Guest })
    );
}

#[tokio::test]
async fn failed_guesses_count_across_guests_and_lock_the_room() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = create_shared(&mut host, 3).await;
    let urls = vec![url.clone(), url.clone(), url.clone()];
    let mut gs = three_guests(&urls, room, &mut host).await;
    for (i, g) in gs.iter_mut().enumerate() {
        g.send(pake(&format!("{PAKE_CONFIRM_PREFIX}guess{i}")))
            .await;
        assert!(matches!(host.recv().await, ServerMsg::FromGuest { .. }));
    }
    // Guest 1: reported by the host. Guest 2: leaves unanswered. Guest 3: turned away.
    host.send(to(1, ClientMsg::HandshakeFailed)).await;
    assert_eq!(
        gs[0].recv().await,
        ServerMsg::HandshakeFailed { attempts_left: 2 }
    );
    assert_eq!(
        host.recv().await,
        from(1, ServerMsg::HandshakeFailed { attempts_left: 2 })
    );
    gs[1].send(ClientMsg::Leave).await;
    assert_eq!(
        host.recv().await,
        from(2, ServerMsg::PeerLeft { role: Role::Guest })
    );
    assert_eq!(
        host.recv().await,
        from(2, ServerMsg::HandshakeFailed { attempts_left: 1 })
    );
    host.send(to(3, ClientMsg::Leave)).await;
    gs[2].expect_error(ErrorCode::RoomFull).await;
    assert_eq!(
        host.recv().await,
        from(3, ServerMsg::PeerLeft { role: Role::Guest })
    );
    assert_eq!(
        host.recv().await,
        from(3, ServerMsg::HandshakeFailed { attempts_left: 0 })
    );
    host.expect_error(ErrorCode::RoomLocked).await;
    let mut late = Client::connect(&url).await;
    match late.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomLocked),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_v2_host_cannot_take_a_shared_room_and_v2_cannot_create_one() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, token) = create_shared(&mut host, 2).await;
    drop(host);
    let mut old = Client::connect(&url).await;
    match old.reconnect_host(room, &token).await {
        ServerMsg::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::UnsupportedVersion);
            assert!(message.contains("newer Ferry"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    old.send(ClientMsg::CreateSharedRoom {
        v: 2,
        rid: Some(5),
        ttl_secs: None,
        guests: 2,
    })
    .await;
    old.expect_error(ErrorCode::UnsupportedVersion).await;
    // A v3 host re-attaches and hears who is seated.
    let mut guest = Client::connect(&url).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    let mut new = Client::connect(&url).await;
    new.send(ClientMsg::ReconnectHost {
        v: ferry_proto::SIGNAL_SHARED_VERSION,
        rid: Some(3),
        room,
        host_token: token,
    })
    .await;
    let mut heard = Vec::new();
    for _ in 0..2 {
        heard.push(new.recv().await);
    }
    assert!(
        matches!(
            heard[0],
            ServerMsg::Joined {
                peer_present: true,
                ..
            }
        ) || matches!(
            heard[1],
            ServerMsg::Joined {
                peer_present: true,
                ..
            }
        ),
        "{heard:?}"
    );
    assert!(
        heard.contains(&from(1, ServerMsg::PeerJoined { role: Role::Guest })),
        "{heard:?}"
    );
    assert_eq!(
        guest.recv().await,
        ServerMsg::PeerJoined { role: Role::Host }
    );
}

/// One shared room over three nodes: its host on node 1, guests through nodes 2 and 3.
#[tokio::test]
async fn a_shared_room_spans_nodes() {
    let Some(redis) = start_or_skip("a_shared_room_spans_nodes") else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, _) = create_shared(&mut host, 3).await;
    let urls = vec![n[1].ws(), n[2].ws(), n[1].ws()];
    let mut gs = three_guests(&urls, room, &mut host).await;
    for (i, g) in gs.iter_mut().enumerate() {
        g.send(ClientMsg::Answer {
            payload: format!("a{i}"),
        })
        .await;
        assert_eq!(
            host.recv().await,
            from(
                i as u32 + 1,
                ServerMsg::Answer {
                    payload: format!("a{i}")
                }
            )
        );
    }
    for i in (0..3u32).rev() {
        host.send(to(
            i + 1,
            ClientMsg::IceCandidate {
                payload: format!("c{i}"),
            },
        ))
        .await;
    }
    for (i, g) in gs.iter_mut().enumerate() {
        assert_eq!(
            g.recv().await,
            ServerMsg::IceCandidate {
                payload: format!("c{i}")
            }
        );
    }
    // A guess through node 3, unanswered, then its guest leaves: counted, across nodes.
    gs[1].send(pake(&format!("{PAKE_CONFIRM_PREFIX}x"))).await;
    assert!(matches!(
        host.recv().await,
        ServerMsg::FromGuest { guest: 2, .. }
    ));
    gs[1].send(ClientMsg::Leave).await;
    assert_eq!(
        host.recv().await,
        from(2, ServerMsg::PeerLeft { role: Role::Guest })
    );
    assert_eq!(
        host.recv().await,
        from(2, ServerMsg::HandshakeFailed { attempts_left: 2 })
    );
    host.send(to(3, ClientMsg::Leave)).await;
    gs[2].expect_error(ErrorCode::RoomFull).await;
    assert_eq!(
        host.recv().await,
        from(3, ServerMsg::PeerLeft { role: Role::Guest })
    );
    // Closing tells the guest still seated.
    host.send(ClientMsg::CloseRoom { rid: Some(9) }).await;
    assert_eq!(gs[0].recv().await, ServerMsg::RoomClosed);
}
