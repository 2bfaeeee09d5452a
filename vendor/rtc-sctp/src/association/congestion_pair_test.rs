//! Ferry patch: two real associations (handshake, DATA, delayed SACKs, gap blocks, T3,
//! pacing wakeups through `poll_timeout`) over a simulated path, no sockets: the
//! controller as the association actually drives it, not only as the model does.

use super::congestion::CongestionControlKind;
use super::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

struct Path {
    /// Bottleneck rate in bytes per second, sender to receiver.
    rate: f64,
    rtt: Duration,
    queue_bytes: f64,
    loss: f64,
    /// Timer resolution of the driver: a wakeup the association asks for through
    /// `poll_timeout` happens at the next multiple of this (tokio's timers: 1 ms).
    /// Packet arrivals wake it at once.
    timer_granularity: Duration,
    /// Largest SCTP packet the path carries; larger ones vanish (sockets set "don't fragment").
    mtu: usize,
    /// Drops every packet with a PAD chunk, as a peer that rejects probes would.
    drop_probes: bool,
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A packet on the wire: (arrival, sequence, to the receiver, bytes).
type InFlight = (Duration, u64, bool, Vec<u8>);

#[derive(Debug, Default)]
struct Run {
    /// Payload bytes the receiving application read after the warm-up.
    read: u64,
    queue_drops: u32,
    /// Queue drops after the warm-up (startup overshoot excluded).
    queue_drops_late: u32,
    /// When each queue drop happened, in ms (first few).
    drop_times_ms: Vec<u64>,
    random_drops: u32,
    t3_timeouts: u64,
    /// Largest burst of DATA packets one `poll_transmit` call released, after warm-up.
    max_batch_bytes: usize,
    /// The sender's packet size at the end.
    final_mtu: u32,
    /// Packets larger than the path's MTU, dropped.
    too_big: u32,
    /// Path MTU probes sent, both directions.
    probes: u32,
}

fn packets(m: Option<TransportMessage<Payload>>) -> Vec<Bytes> {
    match m.map(|m| m.message) {
        Some(Payload::RawEncode(raw)) => raw,
        _ => vec![],
    }
}

fn run(kind: CongestionControlKind, path: &Path, secs: u64, warmup: Duration, seed: u64) -> Run {
    run_probing(kind, path, secs, warmup, seed, 0)
}

/// Whether a marshalled packet carries a PAD chunk (a path MTU probe).
fn is_probe(raw: &[u8]) -> bool {
    Packet::unmarshal(&Bytes::copy_from_slice(raw)).is_ok_and(|p| {
        p.chunks.iter().any(|c| {
            c.as_any()
                .downcast_ref::<crate::chunk::chunk_pad::ChunkPad>()
                .is_some()
        })
    })
}

fn run_probing(
    kind: CongestionControlKind,
    path: &Path,
    secs: u64,
    warmup: Duration,
    seed: u64,
    max_probe_mtu: u32,
) -> Run {
    let t0 = Instant::now();
    let addr = SocketAddr::from_str("127.0.0.1:5000").unwrap();
    // A 16 MiB receive window, as Ferry configures, so the window is the controller's.
    let transport = TransportConfig::default()
        .with_max_receive_buffer_size(16 << 20)
        .with_congestion_control(kind)
        .with_max_probe_mtu(max_probe_mtu);
    let mut tx = Association::new(
        None,
        Arc::new(transport.clone()),
        1200,
        1,
        addr,
        addr,
        TransportProtocol::UDP,
        t0,
    );
    let mut rx = Association::new(
        Some(Arc::new(ServerConfig::new(transport))),
        Arc::new(
            TransportConfig::default()
                .with_max_receive_buffer_size(16 << 20)
                .with_max_probe_mtu(max_probe_mtu),
        ),
        1200,
        2,
        addr,
        addr,
        TransportProtocol::UDP,
        t0,
    );
    let mut rng = Rng(seed | 1);
    let mut out = Run::default();
    // (arrival, sequence, to_receiver, packet)
    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut link_free_at = Duration::ZERO;
    let one_way = path.rtt / 2;
    let end = Duration::from_secs(secs);
    let mut now = Duration::ZERO;
    let mut stream_open = false;
    let payload = Bytes::from(vec![0x5a; 16 * 1024]);

    for _ in 0..20_000_000u32 {
        if now >= end {
            break;
        }
        let at = t0 + now;
        // Deliver what has arrived.
        while let Some(Reverse((t, _, _, _))) = wire.peek()
            && *t <= now
        {
            let Reverse((_, _, to_rx, raw)) = wire.pop().unwrap();
            let p = Packet::unmarshal(&Bytes::from(raw)).unwrap();
            let a = if to_rx { &mut rx } else { &mut tx };
            a.handle_inbound(p, at).unwrap();
        }
        for a in [&mut tx, &mut rx] {
            if a.poll_timeout().is_some_and(|t| t <= at) {
                a.handle_timeout(at);
            }
        }
        // The receiving application reads everything; the sender keeps 1 MiB queued.
        while let Some(s) = rx.accept_stream() {
            let _ = s.stream_identifier();
        }
        let ids = rx.stream_ids();
        for id in ids {
            let mut s = rx.stream(id).unwrap();
            while let Ok(Some(chunks)) = s.read_sctp() {
                if now >= warmup {
                    out.read += chunks.len() as u64;
                }
            }
        }
        if tx.state() == AssociationState::Established {
            if !stream_open {
                tx.open_stream(1, PayloadProtocolIdentifier::Binary)
                    .unwrap();
                stream_open = true;
            }
            let mut s = tx.stream(1).unwrap();
            while s.buffered_amount().unwrap() < 1 << 20 {
                s.write_sctp(at, &payload, PayloadProtocolIdentifier::Binary)
                    .unwrap();
            }
        }
        // SCTP_CC_TRACE=1 prints the sender's model every 50 ms of simulated time.
        if std::env::var_os("SCTP_CC_TRACE").is_some()
            && now.as_millis().is_multiple_of(50)
            && let super::congestion::Controller::Bbr(b) = &tx.cc
        {
            eprintln!(
                "{:>5} ms read {:>9} cum {:>10} cwnd {:>7} inflight {:>7} mode {:?} btl_bw {:>8} rate {:?} hi {:?} fr {}",
                now.as_millis(),
                out.read,
                tx.cumulative_tsn_ack_point,
                tx.cwnd,
                tx.inflight_queue.get_num_bytes(),
                b.mode(),
                b.btl_bw(),
                tx.cc.pacing_rate(),
                b.inflight_hi(),
                tx.in_fast_recovery
            );
        }
        // Transmit.
        let mut batch = 0usize;
        while let Some(m) = tx.poll_transmit(at) {
            for raw in packets(Some(m)) {
                out.probes += u32::from(is_probe(&raw));
                if raw.len() > path.mtu || (path.drop_probes && is_probe(&raw)) {
                    out.too_big += 1;
                    continue;
                }
                batch += raw.len();
                let len = raw.len() as f64;
                let backlog = link_free_at.saturating_sub(now).as_secs_f64() * path.rate;
                if backlog + len > path.queue_bytes {
                    out.queue_drops += 1;
                    if now >= warmup {
                        out.queue_drops_late += 1;
                    }
                    if out.drop_times_ms.len() < 40 {
                        out.drop_times_ms.push(now.as_millis() as u64);
                    }
                    continue;
                }
                let start = link_free_at.max(now);
                link_free_at = start + Duration::from_secs_f64(len / path.rate);
                if rng.unit() < path.loss {
                    out.random_drops += 1;
                    continue;
                }
                seq += 1;
                wire.push(Reverse((link_free_at + one_way, seq, true, raw.to_vec())));
            }
        }
        if now >= warmup {
            out.max_batch_bytes = out.max_batch_bytes.max(batch);
        }
        while let Some(m) = rx.poll_transmit(at) {
            for raw in packets(Some(m)) {
                out.probes += u32::from(is_probe(&raw));
                if raw.len() > path.mtu || (path.drop_probes && is_probe(&raw)) {
                    out.too_big += 1;
                    continue;
                }
                seq += 1;
                wire.push(Reverse((now + one_way, seq, false, raw.to_vec())));
            }
        }
        // Next event.
        let mut next = end;
        if let Some(Reverse((t, _, _, _))) = wire.peek() {
            next = next.min(*t);
        }
        for a in [&tx, &rx] {
            if let Some(t) = a.poll_timeout() {
                let mut t = t.saturating_duration_since(t0);
                let g = path.timer_granularity.as_nanos();
                if g > 0 {
                    t = Duration::from_nanos((t.as_nanos().div_ceil(g) * g) as u64);
                }
                next = next.min(t);
            }
        }
        now = next.max(now + Duration::from_micros(1));
    }
    out.t3_timeouts = tx.stats.get_num_t3timeouts();
    out.final_mtu = tx.mtu;
    out
}

const LOSSY: Path = Path {
    rate: 20e6 / 8.0,
    rtt: Duration::from_millis(150),
    queue_bytes: 512.0 * 1024.0,
    loss: 0.005,
    timer_granularity: Duration::ZERO,
    mtu: usize::MAX,
    drop_probes: false,
};

/// The case on real associations, at 20 Mbit/s to keep the debug-build test
/// short: 0.5 % random loss and 150 ms. On such a path fast recovery hardly ever ends, so
/// the seeds where losses bunched are the ones that show whether holes are repaired while
/// it lasts: before lost chunks went ahead of new data and were counted missing on every
/// SACK, seeds 1, 5 and 21 read 84–85 % with a T3-rtx timeout in one (twelve seeds: 84–100 %,
/// after: 93–97 %, none timing out). `SCTP_CC_SEED` runs one seed instead.
#[test]
fn bbr_association_keeps_a_lossy_long_path_full() {
    let (secs, warmup) = (12, Duration::from_secs(4));
    let span = (Duration::from_secs(secs) - warmup).as_secs_f64();
    let seeds: Vec<u64> = match std::env::var("SCTP_CC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => vec![1, 5, 21],
    };
    let link = LOSSY.rate;
    for &seed in &seeds {
        let bbr = run(CongestionControlKind::Bbr, &LOSSY, secs, warmup, seed);
        let b = bbr.read as f64 / span / link;
        eprintln!(
            "20 Mbit/s 150 ms 0.5 %, seed {seed}: bbr {:.0} % {bbr:?}",
            b * 100.0
        );
        assert!(
            b >= 0.9,
            "seed {seed}: bbr read {:.0} % of the link",
            b * 100.0
        );
        assert_eq!(bbr.t3_timeouts, 0, "seed {seed}: a hole waited for T3-rtx");
        // Paced: no poll_transmit after warm-up released more than the bucket (at most
        // 1.25 x 20 Mbit/s x 2 ms = 6.25 KB) plus the one fast retransmission that RFC 9260
        // sends at once and the packets' own headers. Unpaced, a window (~400 KB) could go.
        let bucket = Pacer::burst((link * 1.25) as u64, 1228) as usize;
        assert!(
            bbr.max_batch_bytes <= bucket + 2 * 1228,
            "burst {} > bucket {bucket}",
            bbr.max_batch_bytes
        );
    }
    let reno = run(CongestionControlKind::Reno, &LOSSY, secs, warmup, seeds[0]);
    let r = reno.read as f64 / span / link;
    eprintln!("reno {:.0} % {reno:?}", r * 100.0);
    assert!(r <= 0.3, "reno read {:.0} % of the link", r * 100.0);
}

/// Opt-in (FERRY_HEAVY=1; run with --release): fast paths driven with 1 ms timer
/// resolution, as webrtc's tokio driver has. Pacing must not cap the rate at what one
/// bucket per millisecond allows.
#[test]
fn bbr_on_a_fast_lan_is_not_capped_by_pacing_wakeups() {
    if std::env::var_os("FERRY_HEAVY").is_none() {
        return;
    }
    let (secs, warmup) = (4, Duration::from_secs(2));
    let span = (Duration::from_secs(secs) - warmup).as_secs_f64();
    // A LAN, and a loopback-like path whose bottleneck is faster than any pacing bucket
    // per millisecond (128 packets per ms is ~150 MB/s).
    for (rate, rtt_us) in [(1e9 / 8.0, 2000), (4e9 / 8.0, 200)] {
        let path = Path {
            rate,
            rtt: Duration::from_micros(rtt_us),
            queue_bytes: 1024.0 * 1024.0,
            loss: 0.0,
            timer_granularity: Duration::from_millis(1),
            mtu: usize::MAX,
            drop_probes: false,
        };
        for kind in [CongestionControlKind::Reno, CongestionControlKind::Bbr] {
            let r = run(kind, &path, secs, warmup, 1);
            let share = r.read as f64 / span / rate;
            eprintln!(
                "{:.0} Mbit/s {rtt_us} us, 1 ms timers: {kind:?} {:.0} % {r:?}",
                rate * 8e-6,
                share * 100.0
            );
            assert!(share >= 0.8, "{kind:?} {:.0} %", share * 100.0);
        }
    }
}

/// Path MTU discovery settles on the largest probe size the path carries, never on one it
/// drops, and data flows throughout: on a 1500-byte path (1435 bytes of SCTP packet under
/// IPv4, UDP and DTLS), on loopback, and toward a peer that drops every probe.
#[test]
fn path_mtu_discovery_settles_on_what_the_path_carries() {
    let (secs, warmup) = (3, Duration::from_secs(1));
    let base = Path {
        rate: 100e6 / 8.0,
        rtt: Duration::from_millis(20),
        queue_bytes: 512.0 * 1024.0,
        loss: 0.0,
        timer_granularity: Duration::ZERO,
        mtu: 1435,
        drop_probes: false,
    };
    let off = run_probing(CongestionControlKind::Bbr, &base, secs, warmup, 1, 0);
    assert_eq!(off.final_mtu, 1228, "no probing unless configured: {off:?}");
    assert_eq!(off.too_big, 0);

    let ethernet = run_probing(CongestionControlKind::Bbr, &base, secs, warmup, 1, 16384);
    assert_eq!(ethernet.final_mtu, 1400, "{ethernet:?}");
    // The 8192 probe is tried three times, in each direction; nothing else is too big.
    assert_eq!(ethernet.too_big, 6, "{ethernet:?}");
    assert!(ethernet.probes >= 6, "{ethernet:?}");

    let lo = Path {
        mtu: usize::MAX,
        ..base
    };
    let lo = run_probing(CongestionControlKind::Bbr, &lo, secs, warmup, 1, 16384);
    assert_eq!(lo.final_mtu, 16384, "{lo:?}");

    let old_peer = Path {
        drop_probes: true,
        ..base
    };
    let old = run_probing(
        CongestionControlKind::Bbr,
        &old_peer,
        secs,
        warmup,
        1,
        16384,
    );
    assert_eq!(old.final_mtu, 1228, "{old:?}");

    // A connection that may be relayed holds probing: nothing is probed while the hold lives.
    crate::config::TEST_PATH_HOLD.with(|h| h.set(true));
    let lo_path = Path {
        mtu: usize::MAX,
        ..base
    };
    let held = run_probing(CongestionControlKind::Bbr, &lo_path, secs, warmup, 1, 16384);
    crate::config::TEST_PATH_HOLD.with(|h| h.set(false));
    assert_eq!(held.final_mtu, 1228, "{held:?}");
    assert_eq!(held.probes, 0, "{held:?}");

    for r in [&ethernet, &lo, &old, &held] {
        assert_eq!(r.t3_timeouts, 0, "{r:?}");
        let share = r.read as f64 / (secs as f64 - 1.0) / base.rate;
        assert!(share >= 0.85, "{:.0} % of the link: {r:?}", share * 100.0);
    }
}
