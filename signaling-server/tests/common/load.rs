//! Load generator shared by the bounded load test and `examples/loadtest.rs`: `rooms` rooms of
//! two WebSocket clients each, all connected at once, each side relaying `msgs` messages to the
//! other. Latency is client → server → client, stamped in the payload against one clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::signal::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Default)]
pub struct Report {
    pub clients: usize,
    pub relayed: usize,
    pub errors: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub wall: Duration,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_msg(ws: &mut Ws) -> Option<ServerMsg> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
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
    ws.send(Message::Text(m.to_json().into())).await.is_ok()
}

/// One side's relay phase: send `msgs` stamped offers, read `msgs` from the other side.
async fn relay(ws: Ws, msgs: usize, every: Duration, base: Instant) -> (Vec<u64>, usize) {
    let (mut tx, mut rx) = ws.split();
    let writer = async move {
        for _ in 0..msgs {
            let stamp = base.elapsed().as_nanos() as u64;
            let m = ClientMsg::Offer {
                payload: stamp.to_string(),
            };
            if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                return 1;
            }
            tokio::time::sleep(every).await;
        }
        // Keep the socket open until the reader is done.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tx.close().await;
        0
    };
    let reader = async move {
        let mut lat = Vec::with_capacity(msgs);
        while lat.len() < msgs {
            match tokio::time::timeout(Duration::from_secs(30), rx.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => match ServerMsg::parse(t.as_str()) {
                    Ok(ServerMsg::Offer { payload }) => {
                        let now = base.elapsed().as_nanos() as u64;
                        let sent: u64 = payload.parse().unwrap_or(now);
                        lat.push(now.saturating_sub(sent) / 1000);
                    }
                    _ => return (lat, 1),
                },
                Ok(Some(Ok(_))) => continue,
                _ => return (lat, 1),
            }
        }
        (lat, 0)
    };
    let (werr, (lat, rerr)) = tokio::join!(writer, reader);
    (lat, werr + rerr)
}

async fn room(
    (url, guest_url): (String, String),
    (msgs, every): (usize, Duration),
    barrier: Arc<Barrier>,
    base: Instant,
) -> (Vec<u64>, usize) {
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
    // Everyone waits until every room is set up: the relay phase runs with all clients connected.
    barrier.wait().await;
    let Some((host, guest)) = pair else {
        return (Vec::new(), 1);
    };
    let ((mut a, ea), (b, eb)) = tokio::join!(
        relay(host, msgs, every, base),
        relay(guest, msgs, every, base)
    );
    a.extend(b);
    (a, ea + eb)
}

pub async fn run(url: &str, rooms: usize, msgs: usize) -> Report {
    let urls = [url.to_string()];
    run_across(&urls, rooms, msgs, Duration::from_millis(20)).await
}

/// Like [`run`] over several nodes: room `i`'s host on `urls[i % n]`, its guest on the next
/// node, so with two or more nodes every message crosses between nodes. Each client sends
/// `msgs` messages, one every `every`.
pub async fn run_across(urls: &[String], rooms: usize, msgs: usize, every: Duration) -> Report {
    let base = Instant::now();
    let barrier = Arc::new(Barrier::new(rooms));
    let n = urls.len().max(1);
    let tasks: Vec<_> = (0..rooms)
        .map(|i| {
            let pair = (urls[i % n].clone(), urls[(i + 1) % n].clone());
            tokio::spawn(room(pair, (msgs, every), barrier.clone(), base))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((lat, e)) => {
                all.extend(lat);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Report {
        clients: rooms * 2,
        relayed: all.len(),
        errors,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: all.last().copied().unwrap_or(0),
        wall: base.elapsed(),
    }
}
