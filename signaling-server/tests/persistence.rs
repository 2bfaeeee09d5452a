//! What the server keeps: sessions survive a restart; payloads are never stored nor logged.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Client, config, pair, start};
use ferry_proto::signal::{ClientMsg, Role, ServerMsg};
use ferry_signal::DbLocation;

#[tokio::test]
async fn restart_keeps_unexpired_rooms_joinable_and_host_reattachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.db = DbLocation::File(dir.path().join("sessions.sqlite"));

    let srv = start(cfg.clone()).await;
    let mut host = Client::connect(&srv.ws_url()).await;
    let (room, token) = host.create(Some(600)).await;
    let (short, _) = Client::connect(&srv.ws_url()).await.create(Some(1)).await;
    srv.shutdown().await;
    // The socket was closed with 1001 by the shutdown.
    assert_eq!(
        host.closed_with().await,
        Some(ferry_signal::close_code::GOING_AWAY)
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let srv = start(cfg).await;
    let mut host = Client::connect(&srv.ws_url()).await;
    match host.reconnect_host(room, &token).await {
        ServerMsg::Joined { role, room: r, .. } => {
            assert_eq!(role, Role::Host);
            assert_eq!(r, room);
        }
        other => panic!("{other:?}"),
    }
    let mut guest = Client::connect(&srv.ws_url()).await;
    assert!(matches!(
        guest.join(room).await,
        ServerMsg::Joined {
            peer_present: true,
            ..
        }
    ));
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined { role: Role::Guest }
    );
    guest
        .send(ClientMsg::Offer {
            payload: "after restart".into(),
        })
        .await;
    assert_eq!(
        host.recv().await,
        ServerMsg::Offer {
            payload: "after restart".into()
        }
    );
    // The room that expired while the server was down is gone.
    let mut late = Client::connect(&srv.ws_url()).await;
    assert!(matches!(late.join(short).await, ServerMsg::Error { .. }));
    // A wrong token still fails after the restart.
    let mut other = Client::connect(&srv.ws_url()).await;
    assert!(matches!(
        other.reconnect_host(room, "AAAA").await,
        ServerMsg::Error {
            code: ferry_proto::signal::ErrorCode::Unauthorized,
            ..
        }
    ));
    srv.shutdown().await;
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn relayed_marker_is_neither_stored_nor_logged() {
    // TRACE for everything, through the same filter the binary uses.
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(ferry_signal::log_filter("trace"))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.sqlite");
    let mut cfg = config();
    cfg.db = DbLocation::File(db.clone());
    let srv = start(cfg).await;
    let (mut host, mut guest, room) = pair(&srv.ws_url()).await;
    let marker = format!("MARKER-{}", rand::random::<u64>());
    host.send(ClientMsg::Pake {
        payload: format!("pake {marker}"),
    })
    .await;
    assert!(matches!(guest.recv().await, ServerMsg::Pake { payload } if payload.contains(&marker)));
    for m in [
        ClientMsg::Offer {
            payload: format!("offer {marker}"),
        },
        ClientMsg::IceCandidate {
            payload: format!("cand {marker}"),
        },
    ] {
        host.send(m).await;
        guest.recv().await;
    }
    guest
        .send(ClientMsg::Answer {
            payload: format!("answer {marker}"),
        })
        .await;
    assert!(matches!(host.recv().await, ServerMsg::Answer { .. }));
    // A client from an address of its own: that address must appear in no log line.
    let client_ip: std::net::IpAddr = "127.0.0.77".parse().unwrap();
    let mut other = Client::connect_from(client_ip, srv.local_addr()).await;
    let (other_room, _) = other.create(None).await;
    let mut other_guest = Client::connect_from(client_ip, srv.local_addr()).await;
    assert!(matches!(
        other_guest.join(other_room).await,
        ServerMsg::Joined { .. }
    ));
    drop(other_guest);
    drop(other);
    // A malformed frame carrying the marker is not echoed or logged either.
    host.send_text(format!("{{\"type\":\"offer\",\"payload\":{marker}"))
        .await;
    match host.recv().await {
        ServerMsg::Error { message, .. } => assert!(!message.contains(&marker)),
        other => panic!("{other:?}"),
    }
    srv.shutdown().await;

    let captured = logs.0.lock().unwrap().clone();
    // The capture really works: the server's own trace/debug lines are there.
    assert!(
        contains(&captured, b"room created"),
        "no server logs were captured"
    );
    assert!(
        contains(&captured, room.as_str().as_bytes())
            || contains(&captured, room.to_string().as_bytes())
    );
    assert!(
        !contains(&captured, marker.as_bytes()),
        "marker found in logs"
    );
    assert!(
        !contains(&captured, b"127.0.0.77"),
        "a client address was logged"
    );

    // The SQLite files, or with the suite on Redis its append-only files.
    let mut stored = Vec::new();
    let mut dirs = vec![common::redis::stored_dir(&db)];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                stored.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    assert!(
        contains(&stored, room.as_str().as_bytes()),
        "the session row is in the files"
    );
    assert!(
        !contains(&stored, marker.as_bytes()),
        "marker found in the database files"
    );
    assert!(
        !contains(&stored, b"127.0.0.77"),
        "a client address was stored"
    );
}
