//! Harness for `tests/abuse.rs`: the server binary as a child process (RSS from /proc,
//! gauges from its metrics listener), and clients bound to chosen loopback addresses.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::signal::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) fn heavy() -> bool {
    std::env::var("FERRY_HEAVY").is_ok_and(|v| v == "1")
}

/// 127.0.a.b: block `a` per kind of abuser, so each has addresses of its own.
pub(crate) fn lo(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// Room for every client socket of the heavy run in this process.
pub(crate) fn raise_fd_limit(want: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

pub(crate) struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

impl Server {
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let bin = std::env::var("FERRY_SIGNAL_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry-signal").to_string());
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
            .args(args)
            .envs(env.iter().copied())
            .env("FERRY_SIGNAL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server binary starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .trim_start_matches("listening on ")
            .parse()
            .unwrap();
        let metrics = args.contains(&"--metrics-listen").then(|| {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            l.trim().trim_start_matches("metrics on ").parse().unwrap()
        });
        Server {
            child,
            addr,
            metrics,
        }
    }

    /// (VmRSS, VmHWM) in MiB.
    pub(crate) fn rss(&self) -> (f64, f64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib = |k: &str| {
            s.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    /// One gauge from `/metrics`.
    pub(crate) async fn gauge(&self, name: &str) -> Option<u64> {
        let m = self.metrics?;
        let (_, body) = ferry_signal::client::request(
            axum::http::Method::GET,
            &format!("http://{m}/metrics"),
            None,
            Duration::from_secs(5),
        )
        .await
        .ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn tcp_from(from: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::new(from, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(10), s.connect(to))
        .await
        .ok()?
        .ok()
}

pub(crate) async fn next_msg(ws: &mut Ws, within: Duration) -> Option<ServerMsg> {
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return ServerMsg::parse(t.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// A WebSocket from `from`, its `welcome` read.
pub(crate) async fn ws_from(from: IpAddr, to: SocketAddr) -> Option<Ws> {
    let tcp = tcp_from(from, to).await?;
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(format!("ws://{to}/ws"), MaybeTlsStream::Plain(tcp)),
    )
    .await
    .ok()?
    .ok()?;
    matches!(
        next_msg(&mut ws, Duration::from_secs(10)).await?,
        ServerMsg::Welcome { .. }
    )
    .then_some(ws)
}

pub(crate) async fn send(ws: &mut Ws, m: &ClientMsg) -> bool {
    ws.send(Message::Text(m.to_json().into())).await.is_ok()
}

/// A join of a room that does not exist: the socket has spoken, and holds nothing.
pub(crate) fn bad_join() -> ClientMsg {
    ClientMsg::JoinRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: None,
        room: "ZZZZZ-ZZZZZ".parse().unwrap(),
    }
}

pub(crate) fn create() -> ClientMsg {
    ClientMsg::CreateRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: None,
        ttl_secs: None,
    }
}

/// Host and guest in a new room; hosts from `host_ip`, guest from `guest_ip`.
pub(crate) async fn pair(host_ip: IpAddr, guest_ip: IpAddr, to: SocketAddr) -> Option<(Ws, Ws)> {
    let mut host = ws_from(host_ip, to).await?;
    send(&mut host, &create()).await;
    let Some(ServerMsg::RoomCreated { room, .. }) =
        next_msg(&mut host, Duration::from_secs(10)).await
    else {
        return None;
    };
    let mut guest = ws_from(guest_ip, to).await?;
    let join = ClientMsg::JoinRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: None,
        room,
    };
    send(&mut guest, &join).await;
    matches!(
        next_msg(&mut guest, Duration::from_secs(10)).await?,
        ServerMsg::Joined { .. }
    )
    .then_some(())?;
    matches!(
        next_msg(&mut host, Duration::from_secs(10)).await?,
        ServerMsg::PeerJoined { .. }
    )
    .then_some((host, guest))
}

/// `POST /api/room/create` from `from`; the HTTP status (0 when the exchange failed).
pub(crate) async fn rest_create(from: IpAddr, to: SocketAddr) -> u16 {
    let Some(mut t) = tcp_from(from, to).await else {
        return 0;
    };
    let req = format!(
        "POST /api/room/create HTTP/1.1\r\nHost: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if t.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(12)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Relay round-trips on the control pair until `stop`.
pub(crate) async fn control(mut a: Ws, mut b: Ws, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let mut rtts = Vec::new();
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let m = ClientMsg::IceCandidate {
            payload: format!("c{}", rtts.len()),
        };
        let ok = send(&mut a, &m).await
            && matches!(
                next_msg(&mut b, Duration::from_secs(5)).await,
                Some(ServerMsg::IceCandidate { .. })
            )
            && send(&mut b, &m).await
            && matches!(
                next_msg(&mut a, Duration::from_secs(5)).await,
                Some(ServerMsg::IceCandidate { .. })
            );
        if ok {
            rtts.push(t0.elapsed() / 2);
        } else {
            errors += 1;
            if errors > 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (rtts, errors)
}
