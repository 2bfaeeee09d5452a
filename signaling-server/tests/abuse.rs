//! Abuse load test against the real `ferry-signal` binary: socket floods from one address and
//! from many loopback addresses, create floods, hosts that never read while their guests
//! flood, slowloris, all at once, while a control pair measures relay round-trips. Checks the
//! server's memory (VmHWM from /proc), that the control pair keeps relaying, and that the
//! abusers are cut off.
//!
//! Default: a few seconds. `FERRY_HEAVY=1`: 2,000 sockets, 4,000 creates, 100 stuck hosts,
//! 500 slowloris connections. On Linux all of 127/8 is local, so clients bind 127.0.x.y.
//! `FERRY_SIGNAL_BIN` runs another build of the server (e.g. an older one, for comparison).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::signal::{ClientMsg, ErrorCode, Role, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn heavy() -> bool {
    std::env::var("FERRY_HEAVY").is_ok_and(|v| v == "1")
}

/// 127.0.a.b: block `a` per kind of abuser, so each has addresses of its own.
fn lo(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// Room for every client socket of the heavy run in this process.
fn raise_fd_limit(want: u64) {
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

struct Server {
    child: Child,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
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
    fn rss(&self) -> (f64, f64) {
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
    async fn gauge(&self, name: &str) -> Option<u64> {
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

async fn tcp_from(from: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::new(from, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(10), s.connect(to))
        .await
        .ok()?
        .ok()
}

async fn next_msg(ws: &mut Ws, within: Duration) -> Option<ServerMsg> {
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
async fn ws_from(from: IpAddr, to: SocketAddr) -> Option<Ws> {
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

async fn send(ws: &mut Ws, m: &ClientMsg) -> bool {
    ws.send(Message::Text(m.to_json().into())).await.is_ok()
}

/// A join of a room that does not exist: the socket has spoken, and holds nothing.
fn bad_join() -> ClientMsg {
    ClientMsg::JoinRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: None,
        room: "ZZZZZ-ZZZZZ".parse().unwrap(),
    }
}

fn create() -> ClientMsg {
    ClientMsg::CreateRoom {
        v: ferry_proto::SIGNAL_VERSION,
        rid: None,
        ttl_secs: None,
    }
}

/// Host and guest in a new room; hosts from `host_ip`, guest from `guest_ip`.
async fn pair(host_ip: IpAddr, guest_ip: IpAddr, to: SocketAddr) -> Option<(Ws, Ws)> {
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
async fn rest_create(from: IpAddr, to: SocketAddr) -> u16 {
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

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Relay round-trips on the control pair until `stop`.
async fn control(mut a: Ws, mut b: Ws, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
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

#[derive(Debug, Default)]
struct Scale {
    one_addr_sockets: usize,
    silent_sockets: usize,
    many_addr_sockets: usize,
    creates_one_addr: usize,
    creates_many_addr: usize,
    stuck_hosts: usize,
    slowloris: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusers_are_cut_off_while_other_rooms_relay() {
    let s = if heavy() {
        Scale {
            one_addr_sockets: 300,
            silent_sockets: 64,
            many_addr_sockets: 2000,
            creates_one_addr: 2000,
            creates_many_addr: 2000,
            stuck_hosts: 100,
            slowloris: 500,
        }
    } else {
        Scale {
            one_addr_sockets: 80,
            silent_sockets: 10,
            many_addr_sockets: 150,
            creates_one_addr: 60,
            creates_many_addr: 100,
            stuck_hosts: 4,
            slowloris: 30,
        }
    };
    raise_fd_limit(16_384);
    // Short handshake deadlines so the run stays short; every other limit is the default.
    let srv = Server::start(
        &[
            "--header-read-timeout",
            "2",
            "--first-message-timeout",
            "3",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let to = srv.addr;
    let (rss0, _) = srv.rss();

    let (ca, cb) = pair(lo(0, 1), lo(0, 1), to).await.expect("control pair");
    let stop = Arc::new(AtomicBool::new(false));
    let ctl = tokio::spawn(control(ca, cb, stop.clone()));
    let t0 = Instant::now();

    // Slowloris: half a request line, then a byte every 500 ms.
    let slow = tokio::spawn({
        let n = s.slowloris;
        async move {
            let mut conns = Vec::new();
            for i in 0..n {
                if let Some(mut t) = tcp_from(lo(1, 1 + (i / 200) as u8), to).await {
                    let _ = t.write_all(b"GET /ws HTTP/1.1\r\nHo").await;
                    conns.push(t);
                }
            }
            let opened = conns.len();
            let start = Instant::now();
            while !conns.is_empty() && start.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut alive = Vec::new();
                for mut t in conns {
                    if t.write_all(b"s").await.is_ok() {
                        alive.push(t);
                    }
                }
                conns = alive;
            }
            (opened, conns.len(), start.elapsed())
        }
    });

    // One address opening far more sockets than its cap (each says something, so only the
    // cap stops them); and sockets from another address that never say anything.
    let one = tokio::spawn({
        let (n, silent_n) = (s.one_addr_sockets, s.silent_sockets);
        async move {
            let mut held = Vec::new();
            let mut refused = 0;
            for _ in 0..n {
                let Some(tcp) = tcp_from(lo(2, 1), to).await else {
                    refused += 1;
                    continue;
                };
                let url = format!("ws://{to}/ws");
                let hs = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp));
                let Ok(Ok((mut ws, _))) = tokio::time::timeout(Duration::from_secs(10), hs).await
                else {
                    refused += 1;
                    continue;
                };
                match next_msg(&mut ws, Duration::from_secs(10)).await {
                    Some(ServerMsg::Welcome { .. }) => {
                        send(&mut ws, &bad_join()).await;
                        held.push(ws);
                    }
                    Some(ServerMsg::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }) => refused += 1,
                    _ => refused += 1,
                }
            }
            let mut silent = Vec::new();
            for _ in 0..silent_n {
                if let Some(ws) = ws_from(lo(2, 2), to).await {
                    silent.push(ws);
                }
            }
            // Silent sockets are closed after the first-message timeout.
            let start = Instant::now();
            let mut closed = 0;
            for mut ws in silent {
                let left = Duration::from_secs(15).saturating_sub(start.elapsed());
                if next_msg(&mut ws, left).await.is_none() {
                    closed += 1;
                }
            }
            (held, refused, closed, start.elapsed())
        }
    });

    // Many addresses, each under the cap, holding sockets that did speak (a failed join).
    let many = tokio::spawn({
        let n = s.many_addr_sockets;
        async move {
            let mut held = Vec::new();
            for i in 0..n {
                let ip = lo(3, 1 + (i / 50) as u8);
                if let Some(mut ws) = ws_from(ip, to).await {
                    send(&mut ws, &bad_join()).await;
                    held.push(ws);
                }
            }
            held
        }
    });

    // Create floods over REST: one address, and many.
    let creates = tokio::spawn({
        let (n1, nm) = (s.creates_one_addr, s.creates_many_addr);
        async move {
            let ok = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for w in 0..8 {
                let ok = ok.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut one_ok, mut many_ok) = (0, 0);
                    for i in (w..n1).step_by(8) {
                        let _ = i;
                        one_ok += (rest_create(lo(4, 1), to).await == 200) as usize;
                    }
                    for i in (w..nm).step_by(8) {
                        let ip = lo(5, 1 + (i / 50) as u8);
                        many_ok += (rest_create(ip, to).await == 200) as usize;
                    }
                    ok.fetch_add(one_ok + many_ok, Ordering::Relaxed);
                    (one_ok, many_ok)
                }));
            }
            let (mut a, mut b) = (0, 0);
            for t in tasks {
                let (x, y) = t.await.unwrap();
                a += x;
                b += y;
            }
            (a, b)
        }
    });

    // Hosts that never read while their guests flood them with sealed-offer-sized frames.
    let stuck = tokio::spawn({
        let n = s.stuck_hosts;
        async move {
            let mut tasks = Vec::new();
            for i in 0..n {
                let Some((host, guest)) =
                    pair(lo(6, 1 + (i / 20) as u8), lo(7, 1 + (i / 20) as u8), to).await
                else {
                    continue;
                };
                tasks.push(tokio::spawn(async move {
                    let (mut tx, mut rx) = guest.split();
                    let frame = ClientMsg::Offer {
                        payload: "o".repeat(8 * 1024),
                    }
                    .to_json();
                    let start = Instant::now();
                    let flood = async {
                        for _ in 0..20_000 {
                            let m = Message::Text(frame.clone().into());
                            let sent = tokio::time::timeout(Duration::from_secs(3), tx.send(m));
                            if !matches!(sent.await, Ok(Ok(()))) {
                                break;
                            }
                        }
                    };
                    // The guest hears `peer-left` when the server cuts its host off.
                    let watch = async {
                        loop {
                            match tokio::time::timeout(Duration::from_secs(20), rx.next()).await {
                                Ok(Some(Ok(Message::Text(t)))) => {
                                    if let Ok(ServerMsg::PeerLeft { role: Role::Host }) =
                                        ServerMsg::parse(t.as_str())
                                    {
                                        return Some(start.elapsed());
                                    }
                                }
                                Ok(Some(Ok(_))) => {}
                                _ => return None,
                            }
                        }
                    };
                    let cut = tokio::select! {
                        c = watch => c,
                        _ = async { flood.await; std::future::pending::<()>().await } => None,
                    };
                    drop(host);
                    cut
                }));
            }
            let mut cuts = Vec::new();
            for t in tasks {
                cuts.push(t.await.unwrap());
            }
            cuts
        }
    });

    let (created_one, created_many) = creates.await.unwrap();
    let cuts = stuck.await.unwrap();
    let (slow_opened, slow_left, slow_time) = slow.await.unwrap();
    let (one_held, one_refused, one_closed, one_time) = one.await.unwrap();
    let one_accepted = one_held.len();
    let held = many.await.unwrap();
    let held_n = held.len();
    let (_, hwm_abuse) = srv.rss();
    let rooms_peak = srv.gauge("ferry_signal_rooms").await;
    let peers_peak = srv.gauge("ferry_signal_peers").await;
    drop(held);
    drop(one_held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut rtts, ctl_errors) = ctl.await.unwrap();
    let (rss_after, hwm) = srv.rss();
    let wall = t0.elapsed();

    let cut_times: Vec<Duration> = cuts.iter().flatten().copied().collect();
    let mut cut_sorted = cut_times.clone();
    let cut_max = cut_sorted.iter().max().copied().unwrap_or_default();
    let cut_p50 = pct(&mut cut_sorted, 0.5);
    let (p50, p99, max) = (
        pct(&mut rtts, 0.5),
        pct(&mut rtts, 0.99),
        rtts.iter().max().copied().unwrap_or_default(),
    );
    eprintln!(
        "abuse run ({}) in {wall:.1?}\n\
         RSS MiB: before {rss0:.1}, peak {hwm:.1} (at end of abuse {hwm_abuse:.1}), after {rss_after:.1}\n\
         control relay ({} round-trips, {ctl_errors} errors): p50 {p50:?}, p99 {p99:?}, max {max:?}\n\
         one address: {one_accepted} sockets accepted, {one_refused} refused; {one_closed} of {} silent ones closed within {one_time:.1?}\n\
         many addresses: {held_n} of {} sockets held; rooms {rooms_peak:?}, peers {peers_peak:?} at peak\n\
         creates: {created_one} of {} from one address, {created_many} of {} from many\n\
         stuck hosts: {} of {} cut off, p50 {cut_p50:?}, max {cut_max:?} after their guest began flooding\n\
         slowloris: {slow_opened} opened, {slow_left} still open after {slow_time:.1?}",
        if heavy() { "heavy" } else { "small" },
        rtts.len(),
        s.silent_sockets,
        s.many_addr_sockets,
        s.creates_one_addr,
        s.creates_many_addr,
        cut_times.len(),
        s.stuck_hosts,
    );

    // The control pair kept relaying throughout.
    assert_eq!(ctl_errors, 0);
    assert!(rtts.len() >= 20, "{} round-trips", rtts.len());
    assert!(p99 < Duration::from_millis(500), "control p99 {p99:?}");
    // Abusers were cut off.
    assert!(
        one_accepted <= 64,
        "{one_accepted} sockets from one address"
    );
    assert_eq!(one_accepted + one_refused, s.one_addr_sockets);
    assert_eq!(one_closed, s.silent_sockets, "silent sockets left open");
    assert!(created_one <= 32, "{created_one} rooms from one address");
    assert_eq!(
        cuts.len(),
        s.stuck_hosts,
        "a stuck-host pair could not be set up"
    );
    assert_eq!(
        cut_times.len(),
        cuts.len(),
        "a stuck host was never cut off"
    );
    assert!(
        cut_max < Duration::from_secs(10),
        "stuck host cut after {cut_max:?}"
    );
    assert_eq!(slow_left, 0, "slowloris connections still open");
    assert!(
        held_n >= s.many_addr_sockets * 9 / 10,
        "{held_n} sockets held"
    );
    // Memory stays bounded: the debug build, all of the above at once.
    let bound = if heavy() { 150.0 } else { 60.0 };
    assert!(hwm < bound, "peak RSS {hwm:.1} MiB over {bound} MiB");
}

/// Server RSS after a burst of room creations (REST, 100 addresses, 16 at a time). Measures
/// the host-token hash cost; run against an older build with `FERRY_SIGNAL_BIN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_burst_memory() {
    let n = if heavy() { 2000 } else { 200 };
    let srv = Server::start(
        &["--max-rooms", "100000"],
        &[
            ("FERRY_SIGNAL_GLOBAL_CREATE_RATE", "100000"),
            ("FERRY_SIGNAL_GLOBAL_CREATE_BURST", "100000"),
        ],
    );
    let to = srv.addr;
    let (rss0, _) = srv.rss();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..16 {
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in (w..n).step_by(16) {
                ok += (rest_create(lo(8, 1 + (i % 100) as u8), to).await == 200) as usize;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    let wall = t0.elapsed();
    let (rss, hwm) = srv.rss();
    eprintln!(
        "create burst: {ok} of {n} created in {wall:.1?}; RSS MiB before {rss0:.1}, after {rss:.1}, peak {hwm:.1}"
    );
    assert_eq!(ok, n);
    if std::env::var("FERRY_SIGNAL_BIN").is_err() {
        assert!(hwm < 100.0, "peak RSS {hwm:.1} MiB after {n} creates");
    }
}
