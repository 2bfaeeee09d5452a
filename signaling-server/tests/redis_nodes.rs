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
