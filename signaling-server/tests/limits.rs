//! Socket-level limits: idle timeout and pings, connection cap, allowed origins, rate limit,
//! oversize frames, malformed JSON, and the binary (flags, healthcheck subcommand, SIGTERM →
//! close 1001).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, config, pair, start};
use ferry_proto::signal::{ClientMsg, ErrorCode, Role, ServerMsg};
use ferry_signal::close_code;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn idle_sockets_close_and_pinged_ones_stay() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(400);
    cfg.ping_interval = Duration::from_millis(100);
    let srv = start(cfg.clone()).await;
    // A client that keeps reading answers pings automatically and stays connected past the timeout.
    let mut alive = Client::connect(&srv.ws_url()).await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(m) = tokio::time::timeout_at(until, alive.ws.next()).await {
        match m {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 5, "{pings} pings");
    alive.create(None).await;
    srv.shutdown().await;

    // Without pings nothing arrives from the client, so the idle timeout closes it.
    cfg.ping_interval = Duration::from_secs(60);
    let srv = start(cfg).await;
    let mut quiet = Client::connect(&srv.ws_url()).await;
    let t0 = std::time::Instant::now();
    assert_eq!(quiet.closed_with().await, Some(close_code::NORMAL));
    assert!(t0.elapsed() >= Duration::from_millis(350));
    srv.shutdown().await;
}

#[tokio::test]
async fn connection_cap_answers_server_full() {
    let mut cfg = config();
    cfg.max_connections = 2;
    let srv = start(cfg).await;
    let _a = Client::connect(&srv.ws_url()).await;
    let _b = Client::connect(&srv.ws_url()).await;
    let (ws, _) = tokio_tungstenite::connect_async(srv.ws_url())
        .await
        .unwrap();
    let mut c = Client { ws };
    c.expect_error(ErrorCode::ServerFull).await;
    assert_eq!(c.closed_with().await, Some(close_code::TRY_AGAIN_LATER));
    drop(_a);
    // A slot frees up once a socket goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _d = Client::connect(&srv.ws_url()).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn only_allowed_browser_origins_connect() {
    let mut cfg = config();
    cfg.allowed_origins = vec!["https://app.ferry.test".into()];
    let srv = start(cfg).await;
    let with_origin = |o: &str| {
        let mut r = srv.ws_url().into_client_request().unwrap();
        r.headers_mut().insert("origin", o.parse().unwrap());
        r
    };
    assert!(
        tokio_tungstenite::connect_async(with_origin("https://evil.test"))
            .await
            .is_err()
    );
    let (ws, _) = tokio_tungstenite::connect_async(with_origin("https://app.ferry.test"))
        .await
        .unwrap();
    let mut ok = Client { ws };
    assert!(matches!(ok.recv().await, ServerMsg::Welcome { .. }));
    // Native clients send no Origin.
    Client::connect(&srv.ws_url()).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn rate_limit_has_its_own_code_on_ws_and_rest() {
    let mut cfg = config();
    cfg.rate_limit = ferry_signal::RateLimit {
        per_second: 1,
        burst: 3,
    };
    let srv = start(cfg).await;
    let mut c = Client::connect(&srv.ws_url()).await;
    let ghost: ferry_proto::RoomId = "ABCDE-FGHJK".parse().unwrap();
    let mut codes = Vec::new();
    for _ in 0..5 {
        match c.join(ghost).await {
            ServerMsg::Error { code, .. } => codes.push(code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&codes[..3], &[ErrorCode::RoomNotFound; 3]);
    assert!(
        codes[3..].iter().all(|c| *c == ErrorCode::RateLimited),
        "{codes:?}"
    );
    let (status, body) =
        common::http("POST", &format!("{}/api/room/create", srv.http_url()), None).await;
    assert_eq!(status, 429);
    assert!(body.contains("rate-limited"), "{body}");
    srv.shutdown().await;
}

#[tokio::test]
async fn oversize_frame_closes_only_that_socket() {
    let mut cfg = config();
    cfg.max_frame_bytes = 4096;
    let srv = start(cfg).await;
    let url = srv.ws_url();
    let (mut h1, mut g1, _) = pair(&url).await;
    let (mut h2, mut g2, _) = pair(&url).await;
    let big = "x".repeat(5000);
    h1.send(ClientMsg::Offer { payload: big }).await;
    assert_eq!(h1.closed_with().await, Some(close_code::TOO_BIG));
    // The partner of the closed socket is told; the other room keeps relaying.
    assert_eq!(g1.recv().await, ServerMsg::PeerLeft { role: Role::Host });
    h2.send(ClientMsg::Offer {
        payload: "still here".into(),
    })
    .await;
    assert_eq!(
        g2.recv().await,
        ServerMsg::Offer {
            payload: "still here".into()
        }
    );
    g2.send(ClientMsg::Answer {
        payload: "yes".into(),
    })
    .await;
    assert_eq!(
        h2.recv().await,
        ServerMsg::Answer {
            payload: "yes".into()
        }
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn malformed_json_gets_a_typed_error_and_repeated_abuse_closes() {
    let mut cfg = config();
    cfg.max_bad_messages = 3;
    let srv = start(cfg).await;
    let (mut host, mut guest, _) = pair(&srv.ws_url()).await;
    host.send_text("{not json".into()).await;
    host.expect_error(ErrorCode::BadMessage).await;
    host.send_text(r#"{"type":"no-such-type"}"#.into()).await;
    host.expect_error(ErrorCode::BadMessage).await;
    // Still open and relaying after bad messages.
    host.send(ClientMsg::Offer {
        payload: "ok".into(),
    })
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMsg::Offer {
            payload: "ok".into()
        }
    );
    host.send_text("[]".into()).await;
    host.expect_error(ErrorCode::BadMessage).await;
    assert_eq!(host.closed_with().await, Some(close_code::POLICY));
    srv.shutdown().await;
}

#[tokio::test]
async fn binary_serves_checks_health_and_stops_on_sigterm() {
    let bin = env!("CARGO_BIN_EXE_ferry-signal");
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--db".into(),
        ":memory:".into(),
        "--log-format".into(),
        "json".into(),
    ];
    if common::redis::suite_on_redis() {
        args.push("--redis".into());
        args.push(common::redis::shared_for(None).0);
    }
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();

    let health = |url: String| {
        Command::new(bin)
            .args(["healthcheck", "--url", &url])
            .status()
            .unwrap()
    };
    assert!(health(format!("http://{addr}/healthz")).success());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(!health(format!("http://{dead}/healthz")).success());

    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    c.create(None).await;
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(c.closed_with().await, Some(close_code::GOING_AWAY));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "server did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
