//! The relay hot path across nodes: once a socket's node knows its peer's seat, a relayed
//! message is one PUBLISH to the peer's node, with no room lookup in Redis; that knowledge
//! follows every change of seat (a guest leaving, a new guest, the host reattaching through
//! another node, a guest removed after a failed handshake).

mod common;

use std::time::Duration;

use common::Client;
use common::nodes::Node;
use common::redis::{RedisServer, start_or_skip};
use ferry_proto::signal::{ClientMsg, ErrorCode, PAKE_CONFIRM_PREFIX, Role, ServerMsg};

/// Calls of one Redis command so far, scripts' calls included (`INFO commandstats`).
async fn calls(redis: &RedisServer, cmd: &str) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    let key = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn offer(p: &str) -> ClientMsg {
    ClientMsg::Offer { payload: p.into() }
}

fn offered(p: &str) -> ServerMsg {
    ServerMsg::Offer { payload: p.into() }
}

/// Nothing arrives for `c` within a moment.
async fn quiet(c: &mut Client) {
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(300), c.recv()).await {
        panic!("expected nothing, got {m:?}");
    }
}

/// 200 messages each way between nodes cost no room lookup (the relay script reads the
/// room's seats with HMGET on every call; the hot path does not run it).
#[tokio::test]
async fn relayed_messages_skip_the_room_lookup() {
    let Some(redis) = start_or_skip("relayed_messages_skip_the_room_lookup") else {
        return;
    };
    let n: Vec<Node> = (0..2).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, _) = host.create(None).await;
    let mut guest = Client::connect(&n[1].ws()).await;
    assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    // One round trip first: both nodes have heard their peer's seat by then.
    host.send(offer("first")).await;
    assert_eq!(guest.recv().await, offered("first"));
    guest
        .send(ClientMsg::Answer {
            payload: "first".into(),
        })
        .await;
    assert!(matches!(host.recv().await, ServerMsg::Answer { .. }));
    let before = calls(&redis, "hmget").await;
    for i in 0..200 {
        host.send(offer(&format!("h{i}"))).await;
        guest
            .send(ClientMsg::IceCandidate {
                payload: format!("g{i}"),
            })
            .await;
    }
    for i in 0..200 {
        assert_eq!(guest.recv().await, offered(&format!("h{i}")), "in order");
        assert_eq!(
            host.recv().await,
            ServerMsg::IceCandidate {
                payload: format!("g{i}")
            },
            "in order"
        );
    }
    let lookups = calls(&redis, "hmget").await - before;
    assert!(
        lookups < 20,
        "{lookups} room lookups for 400 relayed messages"
    );
}

/// The cached peer follows every change of seat, on three nodes: a guest leaves (the host's
/// next message is refused, not lost), a new guest joins elsewhere, the host reattaches through
/// another node while its old socket is still open (only the new socket is the peer), the host
/// reports a failed handshake (the removed guest is no longer relayed to).
#[tokio::test]
async fn cached_peer_follows_every_change_of_seat() {
    let Some(redis) = start_or_skip("cached_peer_follows_every_change_of_seat") else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let mut host = Client::connect(&n[0].ws()).await;
    let (room, token) = host.create(None).await;
    let mut a = Client::connect(&n[1].ws()).await;
    assert!(matches!(a.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    host.send(offer("to a")).await;
    assert_eq!(a.recv().await, offered("to a"));

    // Guest A leaves: the host hears it, and its next message has no peer.
    a.send(ClientMsg::Leave).await;
    assert_eq!(host.recv().await, ServerMsg::PeerLeft { role: Role::Guest });
    host.send(offer("to nobody")).await;
    host.expect_error(ErrorCode::NotInRoom).await;

    // Guest B joins through node 3 and gets the host's messages; A gets nothing.
    let mut b = Client::connect(&n[2].ws()).await;
    assert!(matches!(b.join(room).await, ServerMsg::Joined { .. }));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    host.send(offer("to b")).await;
    assert_eq!(b.recv().await, offered("to b"));
    quiet(&mut a).await;

    // The host reattaches through node 2 with its old socket still open: B hears the host
    // leave and come back, and from then on only the new socket is B's peer.
    let mut host2 = Client::connect(&n[1].ws()).await;
    assert!(matches!(
        host2.reconnect_host(room, &token).await,
        ServerMsg::Joined {
            role: Role::Host,
            ..
        }
    ));
    host.expect_error(ErrorCode::Unauthorized).await;
    assert_eq!(b.recv().await, ServerMsg::PeerLeft { role: Role::Host });
    assert_eq!(b.recv().await, ServerMsg::PeerJoined { role: Role::Host });
    host.send(offer("from the old host")).await;
    host.expect_error(ErrorCode::NotInRoom).await;
    host2.send(offer("from the new host")).await;
    assert_eq!(b.recv().await, offered("from the new host"));
    b.send(ClientMsg::Answer {
        payload: "to the new host".into(),
    })
    .await;
    assert_eq!(
        host2.recv().await,
        ServerMsg::Answer {
            payload: "to the new host".into()
        }
    );
    quiet(&mut host).await;

    // B sends its confirmation tag; the host reports the handshake failed: B is removed, and
    // the host's next message has no peer.
    b.send(ClientMsg::Pake {
        payload: format!("{PAKE_CONFIRM_PREFIX}tag"),
    })
    .await;
    assert!(matches!(host2.recv().await, ServerMsg::Pake { .. }));
    host2.send(ClientMsg::HandshakeFailed).await;
    assert!(matches!(b.recv().await, ServerMsg::HandshakeFailed { .. }));
    assert!(matches!(
        host2.recv().await,
        ServerMsg::HandshakeFailed { .. }
    ));
    host2.send(offer("to the removed guest")).await;
    host2.expect_error(ErrorCode::NotInRoom).await;
    quiet(&mut b).await;
}
