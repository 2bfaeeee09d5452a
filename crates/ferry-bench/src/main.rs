//! `raw-ceiling`: the fastest a webrtc 0.21 data channel moves bytes on this machine with a
//! given set of transport knobs — the yardstick Ferry's end-to-end throughput is judged by.
//!
//! The sender (offerer) is this process. In `two-process` mode the receiver (answerer) is a
//! child process of the same binary; each side sends exactly one SDP (candidates gathered)
//! as a JSON line over the child's stdin/stdout, and the child reports its byte count and
//! peak RSS on the same pipe. No disk is touched: the sender cycles through an in-memory
//! pool of random bytes, the receiver only counts.

mod knobs;
mod peer;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use knobs::{Knobs, Mode};

/// Lines on the signaling pipe.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "kebab-case", tag = "type")]
enum Line {
    Offer {
        i: usize,
        sdp: RTCSessionDescription,
    },
    Answer {
        i: usize,
        sdp: RTCSessionDescription,
    },
    Done(Received),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Received {
    bytes: u64,
    messages: u64,
    /// First byte to last byte, as the receiver saw it.
    recv_secs: f64,
    rss_peak_kib: Option<u64>,
}

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    bytes: u64,
    /// Sender's first channel open → receiver confirmed the last byte.
    secs: f64,
    /// Decimal megabytes (1e6) per second, like every other figure in docs/BENCHMARKS.md.
    mb_per_s: f64,
    /// Process start → first channel open (ICE + DTLS + SCTP + DCEP).
    setup_secs: f64,
    recv_secs: f64,
    messages: u64,
    sender_rss_peak_kib: Option<u64>,
    receiver_rss_peak_kib: Option<u64>,
    knobs: Knobs,
}

/// A bidirectional line pipe between the two peers.
struct Signal {
    tx: mpsc::UnboundedSender<Line>,
    rx: mpsc::UnboundedReceiver<Line>,
}

impl Signal {
    fn pair() -> (Signal, Signal) {
        let (a_tx, b_rx) = mpsc::unbounded_channel();
        let (b_tx, a_rx) = mpsc::unbounded_channel();
        (Signal { tx: a_tx, rx: a_rx }, Signal { tx: b_tx, rx: b_rx })
    }

    /// Bridges a `Signal` onto an async reader/writer pair of JSON lines.
    fn over<R, W>(reader: R, mut writer: W) -> Signal
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (ours, theirs) = Signal::pair();
        let Signal { tx, mut rx } = theirs;
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Line>(&line) {
                    Ok(msg) => {
                        if tx.send(msg).is_err() {
                            break;
                        }
                    }
                    Err(e) => eprintln!("raw-ceiling: bad signaling line: {e}"),
                }
            }
        });
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let Ok(mut text) = serde_json::to_string(&msg) else {
                    break;
                };
                text.push('\n');
                if writer.write_all(text.as_bytes()).await.is_err() || writer.flush().await.is_err()
                {
                    break;
                }
            }
        });
        ours
    }

    async fn recv(&mut self) -> Result<Line> {
        self.rx.recv().await.context("signaling pipe closed")
    }

    fn send(&self, line: Line) -> Result<()> {
        self.tx
            .send(line)
            .map_err(|_| anyhow!("signaling pipe closed"))
    }
}

/// Peak resident set of this process (VmHWM), the figure `/usr/bin/time -v` reports.
fn rss_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn offerer(knobs: Knobs, mut sig: Signal) -> Result<Report> {
    let start = Instant::now();
    // Random so nothing on the path can get lucky with compressible data; large enough that
    // cycling through it does not stay in L2.
    let pool_len = (16usize << 20).max(usize::try_from(knobs.msg())? * 4);
    let mut pool = vec![0u8; pool_len];
    rand::thread_rng().fill_bytes(&mut pool);
    let pool = Arc::new(pool);

    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let mut pumps = JoinSet::new();
    let mut peers = Vec::new();
    for i in 0..knobs.connections {
        let mut p = peer::build(&knobs, "sender").await?;
        let dc = p.open_channel().await?;
        let offer = p.pc.create_offer(None).await?;
        let sdp = p.finish_local(offer).await?;
        sig.send(Line::Offer { i, sdp })?;
        let (k, pool, opened) = (knobs.clone(), pool.clone(), opened_tx.clone());
        pumps.spawn(async move { peer::pump(dc, k.share(i), &k, pool, opened).await });
        peers.push(p);
    }
    for _ in 0..knobs.connections {
        match sig.recv().await? {
            Line::Answer { i, sdp } => {
                let p = peers.get(i).context("answer for an unknown connection")?;
                p.pc.set_remote_description(sdp).await?;
            }
            other => bail!("expected an answer, got {other:?}"),
        }
    }

    let received = loop {
        tokio::select! {
            line = sig.recv() => match line? {
                Line::Done(r) => break r,
                other => bail!("unexpected signaling line {other:?}"),
            },
            Some(res) = pumps.join_next() => res??,
        }
    };
    let end = Instant::now();
    let mut first_open = end;
    while let Ok(t) = opened_rx.try_recv() {
        first_open = first_open.min(t);
    }
    for p in &peers {
        let _ = p.pc.close().await;
    }
    let secs = end.duration_since(first_open).as_secs_f64();
    Ok(Report {
        tool: "raw-ceiling",
        bytes: received.bytes,
        secs,
        mb_per_s: received.bytes as f64 / secs / 1e6,
        setup_secs: first_open.duration_since(start).as_secs_f64(),
        recv_secs: received.recv_secs,
        messages: received.messages,
        sender_rss_peak_kib: rss_peak_kib(),
        receiver_rss_peak_kib: received.rss_peak_kib,
        knobs,
    })
}

async fn answerer(knobs: Knobs, mut sig: Signal) -> Result<()> {
    let tally = Arc::new(peer::Tally::default());
    let (first_tx, mut first_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut pcs = Vec::new();
    for _ in 0..knobs.connections {
        let (i, offer) = match sig.recv().await? {
            Line::Offer { i, sdp } => (i, sdp),
            other => bail!("expected an offer, got {other:?}"),
        };
        let mut p = peer::build(&knobs, "receiver").await?;
        p.pc.set_remote_description(offer).await?;
        let answer = p.pc.create_answer(None).await?;
        let sdp = p.finish_local(answer).await?;
        sig.send(Line::Answer { i, sdp })?;
        let peer::Peer {
            pc, mut channels, ..
        } = p;
        let (tally, first_tx, done_tx) = (tally.clone(), first_tx.clone(), done_tx.clone());
        let expected = knobs.bytes;
        tokio::spawn(async move {
            while let Some(dc) = channels.recv().await {
                let (t, f, d) = (tally.clone(), first_tx.clone(), done_tx.clone());
                tokio::spawn(peer::drain(dc, t, expected, f, d));
            }
        });
        pcs.push(pc);
    }
    let end = done_rx.recv().await.context("receiver stopped early")?;
    let first = first_rx.recv().await.unwrap_or(end);
    sig.send(Line::Done(Received {
        bytes: tally.bytes.load(Ordering::Acquire),
        messages: tally.messages.load(Ordering::Acquire),
        recv_secs: end.duration_since(first).as_secs_f64(),
        rss_peak_kib: rss_peak_kib(),
    }))?;
    // The sender closes the pipe once it has the report; closing first would tear the
    // association down under it.
    let _ = tokio::time::timeout(Duration::from_secs(5), sig.rx.recv()).await;
    for pc in &pcs {
        let _ = pc.close().await;
    }
    Ok(())
}

async fn run(knobs: Knobs) -> Result<()> {
    if knobs.answerer {
        let sig = Signal::over(tokio::io::stdin(), tokio::io::stdout());
        answerer(knobs, sig).await?;
        // Let the writer task flush the Done line before the runtime goes away.
        tokio::time::sleep(Duration::from_millis(50)).await;
        return Ok(());
    }
    let report = match knobs.mode {
        Mode::InProcess => {
            let (a, b) = Signal::pair();
            let (report, answered) = tokio::join!(offerer(knobs.clone(), a), answerer(knobs, b));
            answered?;
            report?
        }
        Mode::TwoProcess => {
            let exe = std::env::current_exe().context("locating own binary")?;
            let mut child = tokio::process::Command::new(exe)
                .args(knobs.child_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("spawning receiver process")?;
            let stdin = child.stdin.take().context("child stdin")?;
            let stdout = child.stdout.take().context("child stdout")?;
            let sig = Signal::over(stdout, stdin);
            let report = offerer(knobs, sig).await?;
            // Dropping the signal closed the child's stdin; it exits on its own.
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            report
        }
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn main() -> Result<()> {
    let mut knobs = Knobs::parse();
    knobs.resolve();
    if !knobs.malloc_defaults {
        ferry_core::tune_allocator();
    }
    if knobs.msg() == 0 || knobs.connections == 0 {
        bail!("--msg-size and --connections must be positive");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if knobs.threads > 0 {
        rt.worker_threads(knobs.threads);
    }
    let rt = rt.enable_all().build()?;
    let limit = Duration::from_secs(knobs.timeout_secs);
    rt.block_on(async move {
        tokio::time::timeout(limit, run(knobs))
            .await
            .map_err(|_| anyhow!("timed out"))?
    })?;
    // Connection drivers may still hold tasks; don't wait for them.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
