//! Abuse findings against the server, each reproduced over real loopback sockets: a peer that
//! never reads, guesses the host never answers, half-sent requests, one address taking every
//! slot, and what is public by default.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Client, config, pair, start};
use ferry_proto::signal::{ClientMsg, ErrorCode, PAKE_CONFIRM_PREFIX, Role, ServerMsg};
use ferry_signal::close_code;
use futures::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Relay round-trips on a healthy pair still work (and how long one takes).
async fn round_trip(a: &mut Client, b: &mut Client) -> Duration {
    let t0 = Instant::now();
    a.send(ClientMsg::IceCandidate {
        payload: "ping".into(),
    })
    .await;
    assert_eq!(
        b.recv().await,
        ServerMsg::IceCandidate {
            payload: "ping".into()
        }
    );
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_that_never_reads_is_cut_off_while_other_rooms_relay() {
    let srv = start(config()).await;
    let url = srv.ws_url();
    let (stuck_host, mut flooder, _) = pair(&url).await;
    let (mut a, mut b, _) = pair(&url).await;
    assert_eq!(srv.state().counts().1, 4);

    // The flooder writes sealed-offer-sized frames as fast as the server takes them; its
    // host never reads a byte.
    let payload = "o".repeat(8 * 1024);
    let frame = ClientMsg::Offer { payload }.to_json();
    let flood = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(8);
        let mut sent = 0usize;
        while Instant::now() < until && sent < 4_000 {
            let send = flooder.ws.send(Message::Text(frame.clone().into()));
            match tokio::time::timeout(Duration::from_secs(2), send).await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
        }
        (flooder, sent)
    });

    // Within a few seconds the server drops the stuck socket; the other room keeps relaying.
    let t0 = Instant::now();
    let mut cut_after = None;
    while t0.elapsed() < Duration::from_secs(8) {
        round_trip(&mut a, &mut b).await;
        if srv.state().counts().1 <= 3 {
            cut_after = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_flooder, sent) = flood.await.unwrap();
    eprintln!("flooder sent {sent} frames; stuck host cut after {cut_after:?}");
    let cut = cut_after.expect("the socket that never reads was never closed");
    assert!(cut < Duration::from_secs(6), "{cut:?}");
    round_trip(&mut b, &mut a).await;
    drop(stuck_host);
    srv.shutdown().await;
}

/// A guest that sends its confirmation tag and leaves before the host answers has made one
/// password guess, whether or not the host reports it.
#[tokio::test]
async fn unanswered_guest_confirmations_count_and_lock_the_room() {
    let mut cfg = config();
    cfg.handshake_fail_limit = 2;
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (room, _) = host.create(None).await;
    for left in [1u32, 0] {
        let mut guest = Client::connect(&url).await;
        assert!(matches!(guest.join(room).await, ServerMsg::Joined { .. }));
        assert_eq!(
            host.recv().await,
            ServerMsg::PeerJoined { role: Role::Guest }
        );
        guest
            .send(ClientMsg::Pake {
                payload: format!("{PAKE_CONFIRM_PREFIX}guess"),
            })
            .await;
        assert!(matches!(host.recv().await, ServerMsg::Pake { .. }));
        // The guest vanishes before the host says anything.
        drop(guest);
        assert_eq!(host.recv().await, ServerMsg::PeerLeft { role: Role::Guest });
        assert_eq!(
            host.recv().await,
            ServerMsg::HandshakeFailed {
                attempts_left: left
            }
        );
    }
    host.expect_error(ErrorCode::RoomLocked).await;
    let counted = srv
        .state()
        .metrics()
        .handshake_failures
        .load(Ordering::Relaxed);
    assert_eq!(
        counted, 2,
        "the failure metric counts the server's own verdicts"
    );
    let mut late = Client::connect(&url).await;
    match late.join(room).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomLocked),
        other => panic!("expected room-locked, got {other:?}"),
    }
    srv.shutdown().await;
}

/// Half-sent HTTP requests are closed after the header timeout; a normal client still works.
#[tokio::test]
async fn slowloris_connections_are_closed() {
    let mut cfg = config();
    cfg.header_read_timeout = Duration::from_secs(1);
    let srv = start(cfg).await;
    let addr = srv.local_addr();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut t = tokio::net::TcpStream::connect(addr).await.unwrap();
        t.write_all(b"GET /ws HTTP/1.1\r\nHo").await.unwrap();
        slow.push(t);
    }
    let t0 = Instant::now();
    let mut open = slow.len();
    let mut closed_after = None;
    while t0.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        open = 0;
        for t in &mut slow {
            // One more byte now and then; a closed connection fails the write (or the one after).
            if t.write_all(b"s").await.is_ok() && t.flush().await.is_ok() {
                open += 1;
            }
        }
        if open == 0 {
            closed_after = Some(t0.elapsed());
            break;
        }
        if t0.elapsed() > Duration::from_secs(1) {
            // Meanwhile a real client connects and creates a room.
            Client::connect(&srv.ws_url()).await.create(None).await;
        }
    }
    eprintln!("slowloris: {open} of 20 still open; all closed after {closed_after:?}");
    assert_eq!(open, 0, "half-sent requests were never timed out");
    assert!(closed_after.unwrap() < Duration::from_secs(4));
    srv.shutdown().await;
}

/// A socket that upgrades and then says nothing is closed after the first-message timeout,
/// long before the idle timeout.
#[tokio::test]
async fn silent_websocket_is_closed_after_the_first_message_timeout() {
    let mut cfg = config();
    cfg.first_message_timeout = Duration::from_millis(500);
    let srv = start(cfg).await;
    let mut quiet = Client::connect(&srv.ws_url()).await;
    let mut talker = Client::connect(&srv.ws_url()).await;
    talker.create(None).await;
    let t0 = Instant::now();
    assert_eq!(quiet.closed_with().await, Some(close_code::POLICY));
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The one that spoke in time stays.
    tokio::time::sleep(Duration::from_millis(300)).await;
    talker
        .send(ClientMsg::ExtendRoom {
            rid: Some(5),
            ttl_secs: 60,
        })
        .await;
    assert!(matches!(
        talker.recv().await,
        ServerMsg::RoomExtended { .. }
    ));
    srv.shutdown().await;
}

/// A room whose host socket is gone is removed after the grace period; the host that comes
/// back within it keeps its room; a late join is told the room expired.
#[tokio::test]
async fn room_without_host_is_reaped_after_the_grace() {
    let mut cfg = config();
    cfg.host_grace = Duration::from_millis(600);
    cfg.sweep_interval = Duration::from_millis(50);
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let mut host = Client::connect(&url).await;
    let (kept, token) = host.create(None).await;
    let mut gone = Client::connect(&url).await;
    let (reaped, _) = gone.create(None).await;
    drop(gone);
    drop(host);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut host = Client::connect(&url).await;
    assert!(matches!(
        host.reconnect_host(kept, &token).await,
        ServerMsg::Joined { .. }
    ));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut late = Client::connect(&url).await;
    match late.join(reaped).await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RoomExpired),
        other => panic!("expected room-expired, got {other:?}"),
    }
    assert!(matches!(late.join(kept).await, ServerMsg::Joined { .. }));
    assert_eq!(srv.state().counts().0, 1);
    srv.shutdown().await;
}

/// The shipped per-address caps, with the create/join rate out of the way so the caps are
/// what a test meets.
fn default_caps() -> ferry_signal::Config {
    ferry_signal::Config {
        rate_limit: config().rate_limit,
        ..ferry_signal::Config::default()
    }
}

/// One address cannot take every socket: past the per-address cap it gets a clear refusal,
/// while another address still connects.
#[tokio::test]
async fn one_address_cannot_take_every_socket() {
    let srv = start(default_caps()).await;
    let addr = srv.local_addr();
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(Client::connect_from(lo(1), addr).await);
    }
    let mut extra = Client::connect_raw_from(lo(1), addr)
        .await
        .expect("upgrade answered");
    match extra.recv().await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("65th socket from one address: {other:?}"),
    }
    assert_eq!(extra.closed_with().await, Some(close_code::TRY_AGAIN_LATER));
    Client::connect_from(lo(2), addr).await.create(None).await;
    // A slot frees up when one of the 64 goes.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    Client::connect_from(lo(1), addr).await;
    srv.shutdown().await;
}

/// One address cannot hold every room either.
#[tokio::test]
async fn one_address_cannot_hold_every_room() {
    let srv = start(default_caps()).await;
    let addr = srv.local_addr();
    let mut hosts = Vec::new();
    for _ in 0..32 {
        let mut h = Client::connect_from(lo(3), addr).await;
        h.create(None).await;
        hosts.push(h);
    }
    let mut c = Client::connect_from(lo(3), addr).await;
    c.send(ClientMsg::CreateRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: Some(9),
        ttl_secs: None,
    })
    .await;
    c.expect_error(ErrorCode::RateLimited).await;
    Client::connect_from(lo(4), addr).await.create(None).await;
    srv.shutdown().await;
}

/// Browser origins are refused unless configured; native clients (no Origin) are served.
#[tokio::test]
async fn browser_origins_are_refused_by_default() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let srv = start(config()).await;
    let mut r = srv.ws_url().into_client_request().unwrap();
    r.headers_mut()
        .insert("origin", "https://evil.test".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(r).await.is_err());
    let m = axum::http::Method::POST;
    let url = format!("{}/api/room/create", srv.http_url());
    let (status, _) = origin_request(m, &url, "https://evil.test").await;
    assert_eq!(status, 403);
    Client::connect(&srv.ws_url()).await.create(None).await;
    srv.shutdown().await;
}

async fn origin_request(m: axum::http::Method, url: &str, origin: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let uri: axum::http::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().to_string();
    let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = axum::http::Request::builder()
        .method(m)
        .uri(uri.path())
        .header("host", host)
        .header("origin", origin)
        .body(Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `/metrics` is not served on the public listener.
#[tokio::test]
async fn metrics_are_not_public() {
    let srv = start(config()).await;
    let (status, _) = common::http("GET", &format!("{}/metrics", srv.http_url()), None).await;
    assert_eq!(status, 404);
    srv.shutdown().await;
}

/// One address cannot hold more than its cap of connections in the HTTP phase either: past
/// it, a new connection is closed at once, while another address is served.
#[tokio::test]
async fn half_open_requests_per_address_are_capped() {
    use tokio::io::AsyncReadExt;
    let mut cfg = config();
    cfg.max_sockets_per_ip = 5;
    let srv = start(cfg).await;
    let addr = srv.local_addr();
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut t = common::tcp_from(lo(9), addr).await;
        t.write_all(b"GET /ws HTTP/1.1\r\nHo").await.unwrap();
        held.push(t);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = common::tcp_from(lo(9), addr).await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
        .await
        .expect("closed at once, not left waiting");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    Client::connect_from(lo(10), addr).await.create(None).await;
    drop(held);
    srv.shutdown().await;
}

/// Over IPv6 loopback the socket cap applies to the client's /64 (::1 is the only loopback
/// address, so the /64 sharing itself is shown by `limits`' unit test). Skipped where ::1
/// cannot be bound.
#[tokio::test]
async fn ipv6_sockets_share_their_prefix_cap() {
    let mut cfg = config();
    cfg.max_sockets_per_ip = 2;
    cfg.listen = "[::1]:0".parse().unwrap();
    let Ok(srv) = common::try_start(cfg).await else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let addr = srv.local_addr();
    let v6: IpAddr = "::1".parse().unwrap();
    let _a = Client::connect_from(v6, addr).await;
    let _b = Client::connect_from(v6, addr).await;
    let mut c = Client::connect_raw_from(v6, addr)
        .await
        .expect("upgrade answered");
    match c.recv().await {
        ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("third socket from ::1/64: {other:?}"),
    }
    srv.shutdown().await;
}
