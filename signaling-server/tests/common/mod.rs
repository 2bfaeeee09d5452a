//! Real-socket test helpers: a server on 127.0.0.1:0 and tokio-tungstenite clients.
#![allow(dead_code)]

pub(crate) mod nodes;
pub(crate) mod redis;

use std::time::Duration;

use ferry_proto::RoomId;
use ferry_proto::signal::{ClientMsg, ErrorCode, ServerMsg};
use ferry_signal::{Config, RateLimit, RunningServer};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub(crate) const STEP: Duration = Duration::from_secs(5);

/// Test defaults: generous rate and per-address limits so only the tests about them trip
/// them (every test client comes from 127.0.0.1).
pub(crate) fn config() -> Config {
    Config {
        rate_limit: RateLimit {
            per_second: 10_000,
            burst: 10_000,
        },
        global_create_rate: RateLimit {
            per_second: 10_000,
            burst: 10_000,
        },
        max_sockets_per_ip: 10_000,
        max_rooms_per_ip: 10_000,
        ..Config::default()
    }
}

/// Start a server in this process, or say why it did not start.
pub(crate) async fn try_start(mut cfg: Config) -> Result<RunningServer, ferry_signal::ServerError> {
    if redis::suite_on_redis() && cfg.redis.is_none() {
        let key = match &cfg.db {
            ferry_signal::DbLocation::File(p) => Some(p.clone()),
            ferry_signal::DbLocation::Memory => None,
        };
        cfg.redis = Some(redis::shared_for(key.as_deref()).0);
    }
    ferry_signal::spawn(cfg).await
}

/// Start a server in this process. With `FERRY_SIGNAL_TEST_REDIS=1` every suite server keeps
/// its rooms in a real redis-server of its own instead (the same suite, the other backend).
pub(crate) async fn start(cfg: Config) -> RunningServer {
    try_start(cfg).await.expect("server starts")
}

pub(crate) struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connect and consume the `welcome`.
    pub(crate) async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(STEP, connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut c = Client { ws };
        match c.recv().await {
            ServerMsg::Welcome { v, .. } => assert_eq!(v, ferry_proto::SIGNAL_VERSION),
            other => panic!("expected welcome, got {other:?}"),
        }
        c
    }

    pub(crate) async fn send(&mut self, m: ClientMsg) {
        self.send_text(m.to_json()).await;
    }

    pub(crate) async fn send_text(&mut self, t: String) {
        self.ws.send(Message::Text(t.into())).await.expect("send");
    }

    /// Next server message (pings are answered by tungstenite and skipped).
    pub(crate) async fn recv(&mut self) -> ServerMsg {
        loop {
            let m = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("server message in time")
                .expect("socket open")
                .expect("socket ok");
            match m {
                Message::Text(t) => {
                    return ServerMsg::parse(t.as_str()).expect("valid server json");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Expect an `error` with this code.
    pub(crate) async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            ServerMsg::Error { code: c, .. } => assert_eq!(c, code),
            other => panic!("expected error {code}, got {other:?}"),
        }
    }

    /// Read until the server closes; return its close code.
    pub(crate) async fn closed_with(&mut self) -> Option<u16> {
        loop {
            let m = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("close in time");
            match m {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub(crate) async fn create(&mut self, ttl_secs: Option<u64>) -> (RoomId, String) {
        self.send(ClientMsg::CreateRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(1),
            ttl_secs,
        })
        .await;
        match self.recv().await {
            ServerMsg::RoomCreated {
                rid,
                room,
                host_token,
                ..
            } => {
                assert_eq!(rid, Some(1));
                (room, host_token)
            }
            other => panic!("expected room-created, got {other:?}"),
        }
    }

    pub(crate) async fn join(&mut self, room: RoomId) -> ServerMsg {
        self.send(ClientMsg::JoinRoom {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(2),
            room,
        })
        .await;
        self.recv().await
    }

    pub(crate) async fn reconnect_host(&mut self, room: RoomId, host_token: &str) -> ServerMsg {
        self.send(ClientMsg::ReconnectHost {
            v: ferry_proto::SIGNAL_VERSION,
            rid: Some(3),
            room,
            host_token: host_token.to_string(),
        })
        .await;
        self.recv().await
    }
}

/// Host and guest in a fresh room; the host has seen `peer-joined`.
pub(crate) async fn pair(url: &str) -> (Client, Client, RoomId) {
    let mut host = Client::connect(url).await;
    let (room, _) = host.create(None).await;
    let mut guest = Client::connect(url).await;
    match guest.join(room).await {
        ServerMsg::Joined {
            role, peer_present, ..
        } => {
            assert_eq!(role, ferry_proto::signal::Role::Guest);
            assert!(peer_present);
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(
        host.recv().await,
        ServerMsg::PeerJoined {
            role: ferry_proto::signal::Role::Guest
        }
    );
    (host, guest, room)
}

pub(crate) async fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let m = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
    ferry_signal::client::request(m, url, body.map(str::to_string), STEP)
        .await
        .expect("http request")
}

/// A TCP connection to `server` from the local address `from` (any 127/8 address on Linux).
pub(crate) async fn tcp_from(from: std::net::IpAddr, server: std::net::SocketAddr) -> TcpStream {
    let sock = if from.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .expect("socket");
    sock.bind(std::net::SocketAddr::new(from, 0)).expect("bind");
    tokio::time::timeout(STEP, sock.connect(server))
        .await
        .expect("connect in time")
        .expect("connect")
}

impl Client {
    /// Like `connect`, from the local address `from`. `None` when the server refused the
    /// upgrade; the server's first message is returned unread in `Some`.
    pub(crate) async fn connect_raw_from(
        from: std::net::IpAddr,
        server: std::net::SocketAddr,
    ) -> Option<Client> {
        let tcp = tcp_from(from, server).await;
        let url = format!("ws://{server}/ws");
        let (ws, _) = tokio::time::timeout(
            STEP,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
        )
        .await
        .expect("handshake in time")
        .ok()?;
        Some(Client { ws })
    }

    /// Connect from `from` and consume the `welcome`.
    pub(crate) async fn connect_from(
        from: std::net::IpAddr,
        server: std::net::SocketAddr,
    ) -> Client {
        let mut c = Client::connect_raw_from(from, server)
            .await
            .expect("upgrade accepted");
        match c.recv().await {
            ServerMsg::Welcome { v, .. } => assert_eq!(v, ferry_proto::SIGNAL_VERSION),
            other => panic!("expected welcome, got {other:?}"),
        }
        c
    }
}
