//! Abuse load test against the real `ferry-signal` binary: socket floods from one address and
//! from many loopback addresses, create floods, hosts that never read while their guests
//! flood, slowloris, all at once, while a control pair measures relay round-trips. Checks the
//! server's memory (VmHWM from /proc), that the control pair keeps relaying, and that the
//! abusers are cut off.
//!
//! Default: a few seconds. `FERRY_HEAVY=1`: 2,000 sockets, 4,000 creates, 100 stuck hosts,
//! 500 slowloris connections. On Linux all of 127/8 is local, so clients bind 127.0.x.y.
//! `FERRY_SIGNAL_BIN` runs another build of the server (e.g. an older one, for comparison).

#[path = "common/abuse_kit.rs"]
mod kit;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::signal::{ClientMsg, ErrorCode, Role, ServerMsg};
use futures::{SinkExt, StreamExt};
use kit::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

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
