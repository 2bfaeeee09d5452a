//! Load generator shared by the bounded load test and `examples/loadtest.rs`: `rooms` rooms of
//! two WebSocket clients each, all connected at once, each side relaying `msgs` messages to the
//! other. Latency is client → server → client: the sender stamps the payload with the instant
//! its frame leaves (one `Instant` base for every client of the process), the peer's reader
//! subtracts it on receipt.
//!
//! Pace: each client sends on its own schedule, `phase + k·every` after a common start, its
//! phase drawn uniformly from `[0, every)` by a seeded generator (real clients are not
//! synchronised), or every phase 0 (`Pace::sync`, all clients at once). How late each send
//! left against its schedule is reported as the generator's own lag: when it is large, the
//! generator (not the server) was short of CPU.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferry_proto::signal::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub clients: usize,
    pub relayed: usize,
    pub errors: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// How late sends left against their schedule (generator lag).
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    /// The run cut into one-second slices by receive time: how many, how many had a p99
    /// over 50 ms, and the median of the slices' p99 (a tail from a few bad seconds shows).
    pub slices: usize,
    pub slices_over_50ms: usize,
    pub slice_p99_median_us: u64,
    /// The slices over 50 ms, as (seconds since the first slice, p99 in ms).
    pub slow_slices: Vec<(u32, u64)>,
    pub wall: Duration,
}

/// When clients send: one message each `every`, at a per-client phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub every: Duration,
    /// Spread phases uniformly over `every` (seeded); false: every client at the same instant.
    pub spread: bool,
    pub seed: u64,
}

impl Pace {
    pub(crate) fn spread(every: Duration) -> Pace {
        Pace {
            every,
            spread: true,
            seed: 1,
        }
    }

    /// This client's offset into the period.
    fn phase(&self, client: u64) -> Duration {
        use rand::{Rng, SeedableRng};
        if !self.spread || self.every.is_zero() {
            return Duration::ZERO;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.seed ^ client.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        self.every.mul_f64(rng.r#gen::<f64>())
    }
}

/// The relay phase's common start, fixed by the first client past the barrier.
type Start = Arc<OnceLock<Instant>>;

/// The relay phase's end: every client keeps its socket open until every relaying client has
/// read all it expects, so no closing (a leave per socket, all within the last second) runs
/// while others still relay — the end mirrors the barrier at the start.
#[derive(Default)]
struct End {
    relaying: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
    all: tokio_util::sync::CancellationToken,
}

impl End {
    fn reader_done(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.done.fetch_add(1, SeqCst) + 1 >= self.relaying.load(SeqCst) {
            self.all.cancel();
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message within 30 s in all (keepalive pings do not extend it: a notice that never
/// comes must not hold the whole run at the barrier).
async fn next_msg(ws: &mut Ws) -> Option<ServerMsg> {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return ServerMsg::parse(t.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

async fn connect(url: &str) -> Option<Ws> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .ok()?
    .ok()?;
    matches!(next_msg(&mut ws).await?, ServerMsg::Welcome { .. }).then_some(ws)
}

async fn send(ws: &mut Ws, m: ClientMsg) -> bool {
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        ws.send(Message::Text(m.to_json().into())),
    );
    matches!(sent.await, Ok(Ok(())))
}

/// One side's relay phase: send `msgs` stamped offers on this client's schedule, read `msgs`
/// from the other side. Returns (latencies, send lags, errors), in µs.
async fn relay(
    ws: Ws,
    (msgs, every): (usize, Duration),
    (first, base): (Instant, Instant),
    end: Arc<End>,
) -> Sampled {
    let end2 = end.clone();
    let (mut tx, mut rx) = ws.split();
    // Phases differ, so this side may finish sending well before its peer: it closes only
    // once it has read everything the peer sends.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = async move {
        let mut lags = Vec::with_capacity(msgs);
        for k in 0..msgs {
            let due = first + every * k as u32;
            tokio::time::sleep_until(due.into()).await;
            let now = Instant::now();
            lags.push(now.saturating_duration_since(due).as_micros() as u64);
            let stamp = now.duration_since(base).as_nanos() as u64;
            let m = ClientMsg::Offer {
                payload: stamp.to_string(),
            };
            if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                return (lags, 1);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), done_rx).await;
        let _ = tokio::time::timeout(Duration::from_secs(60), end2.all.cancelled()).await;
        let _ = tx.close().await;
        (lags, 0)
    };
    let reader = async move {
        // Dropped when the reader returns, however it returns: the writer may close then.
        let _done = done_tx;
        let mut lat = Vec::with_capacity(msgs);
        // 30 s from the start or the last relayed message; pings do not extend it.
        let mut until = tokio::time::Instant::from_std(first) + Duration::from_secs(30);
        while lat.len() < msgs {
            match tokio::time::timeout_at(until, rx.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => match ServerMsg::parse(t.as_str()) {
                    Ok(ServerMsg::Offer { payload }) => {
                        until = tokio::time::Instant::now() + Duration::from_secs(30);
                        let now = base.elapsed().as_nanos() as u64;
                        let sent: u64 = payload.parse().unwrap_or(now);
                        lat.push((
                            (now / 1_000_000_000) as u32,
                            now.saturating_sub(sent) / 1000,
                        ));
                    }
                    _ => return (lat, 1),
                },
                Ok(Some(Ok(_))) => continue,
                _ => return (lat, 1),
            }
        }
        (lat, 0)
    };
    let reader = async {
        let r = reader.await;
        end.reader_done();
        r
    };
    let ((lags, werr), (lat, rerr)) = tokio::join!(writer, reader);
    (lat, lags, werr + rerr)
}

/// Latencies (receive second, µs), send lags (µs), errors.
type Sampled = (Vec<(u32, u64)>, Vec<u64>, usize);

async fn room(
    (url, guest_url): (String, String),
    (i, msgs, pace): (u64, usize, Pace),
    (barrier, start, end): (Arc<Barrier>, Start, Arc<End>),
    base: Instant,
) -> Sampled {
    let setup = async {
        let mut host = connect(&url).await?;
        if !send(
            &mut host,
            ClientMsg::CreateRoom {
                v: ferry_proto::SIGNAL_VERSION,
                rid: None,
                ttl_secs: None,
            },
        )
        .await
        {
            return None;
        }
        let ServerMsg::RoomCreated { room, .. } = next_msg(&mut host).await? else {
            return None;
        };
        let mut guest = connect(&guest_url).await?;
        send(
            &mut guest,
            ClientMsg::JoinRoom {
                v: ferry_proto::SIGNAL_VERSION,
                rid: None,
                room,
            },
        )
        .await;
        let ServerMsg::Joined { .. } = next_msg(&mut guest).await? else {
            return None;
        };
        let ServerMsg::PeerJoined { .. } = next_msg(&mut host).await? else {
            return None;
        };
        Some((host, guest))
    };
    let pair = setup.await;
    if pair.is_some() {
        end.relaying
            .fetch_add(2, std::sync::atomic::Ordering::SeqCst);
    }
    // Everyone waits until every room is set up: the relay phase runs with all clients connected.
    // Bounded too: a room whose setup hangs counts as an error, it does not stop the run.
    let _ = tokio::time::timeout(Duration::from_secs(90), barrier.wait()).await;
    let start = *start.get_or_init(|| Instant::now() + Duration::from_millis(100));
    let Some((host, guest)) = pair else {
        return (Vec::new(), Vec::new(), 1);
    };
    let ((mut a, mut la, ea), (b, lb, eb)) = tokio::join!(
        relay(
            host,
            (msgs, pace.every),
            (start + pace.phase(2 * i), base),
            end.clone()
        ),
        relay(
            guest,
            (msgs, pace.every),
            (start + pace.phase(2 * i + 1), base),
            end
        )
    );
    a.extend(b);
    la.extend(lb);
    (a, la, ea + eb)
}

pub(crate) async fn run(url: &str, rooms: usize, msgs: usize) -> Report {
    let urls = [url.to_string()];
    run_paced(&urls, rooms, msgs, Pace::spread(Duration::from_millis(20))).await
}

/// Like [`run`] over several nodes: room `i`'s host on `urls[i % n]`, its guest on the next
/// node, so with two or more nodes every message crosses between nodes. Each client sends
/// `msgs` messages, one every `every`, at spread phases.
pub(crate) async fn run_across(
    urls: &[String],
    rooms: usize,
    msgs: usize,
    every: Duration,
) -> Report {
    run_paced(urls, rooms, msgs, Pace::spread(every)).await
}

fn percentiles(mut v: Vec<u64>) -> (u64, u64, u64) {
    v.sort_unstable();
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    (pct(0.50), pct(0.99), v.last().copied().unwrap_or(0))
}

pub(crate) async fn run_paced(urls: &[String], rooms: usize, msgs: usize, pace: Pace) -> Report {
    let base = Instant::now();
    let barrier = Arc::new(Barrier::new(rooms));
    let start: Start = Arc::new(OnceLock::new());
    let end = Arc::new(End::default());
    let n = urls.len().max(1);
    let tasks: Vec<_> = (0..rooms)
        .map(|i| {
            let pair = (urls[i % n].clone(), urls[(i + 1) % n].clone());
            tokio::spawn(room(
                pair,
                (i as u64, msgs, pace),
                (barrier.clone(), start.clone(), end.clone()),
                base,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut lags = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((lat, lag, e)) => {
                all.extend(lat);
                lags.extend(lag);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let relayed = all.len();
    let mut by_sec: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for (sec, us) in &all {
        by_sec.entry(*sec).or_default().push(*us);
    }
    let first_sec = by_sec.keys().next().copied().unwrap_or(0);
    let slow_slices: Vec<(u32, u64)> = by_sec
        .iter()
        .map(|(s, v)| (s - first_sec, percentiles(v.clone()).1))
        .filter(|(_, p)| *p > 50_000)
        .map(|(s, p)| (s, p / 1000))
        .collect();
    let slice_p99: Vec<u64> = by_sec.into_values().map(|v| percentiles(v).1).collect();
    let slices = slice_p99.len();
    let slices_over_50ms = slice_p99.iter().filter(|&&p| p > 50_000).count();
    let slice_p99_median_us = percentiles(slice_p99).0;
    let (p50_us, p99_us, max_us) = percentiles(all.into_iter().map(|(_, us)| us).collect());
    let (lag_p50_us, lag_p99_us, lag_max_us) = percentiles(lags);
    Report {
        clients: rooms * 2,
        relayed,
        errors,
        p50_us,
        p99_us,
        max_us,
        lag_p50_us,
        lag_p99_us,
        lag_max_us,
        slices,
        slices_over_50ms,
        slice_p99_median_us,
        slow_slices,
        wall: base.elapsed(),
    }
}
