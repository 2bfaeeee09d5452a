//! Ferry patch: the congestion controllers driven over a simulated path (no sockets): a
//! bottleneck of fixed rate behind a drop-tail queue, a fixed propagation delay and
//! seeded random loss. The sender acknowledges like SCTP's: per-packet SACKs, loss
//! declared after three later packets are acked, fast retransmit, T3-rtx on silence.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::pacer::Pacer;
use super::{AckEvent, CongestionControlKind, CongestionController, Controller, Window};

const MTU: u32 = 1200;
const RTO_MIN: Duration = Duration::from_millis(250);

struct Link {
    /// Bottleneck rate, bytes per second.
    rate: f64,
    rtt: Duration,
    queue_bytes: u32,
    loss: f64,
    /// A route change: from this time on, the propagation RTT is the second value.
    rtt_change: Option<(Duration, Duration)>,
    /// Acks reach the sender in clumps, at the next multiple of this interval (a
    /// receiver or driver that handles a batch of packets per wakeup), except a packet
    /// that finds the receiver idle for a whole interval: its ack comes straight back,
    /// and sets a min RTT far below the interval between clumps.
    ack_clump: Option<Duration>,
}

impl Link {
    fn rtt_at(&self, t: Duration) -> Duration {
        match self.rtt_change {
            Some((at, rtt)) if t >= at => rtt,
            _ => self.rtt,
        }
    }
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

#[derive(Clone, Copy)]
struct Outstanding {
    tsn: u32,
    sent: Duration,
    nsent: u32,
    acked: bool,
    lost: bool,
}

#[derive(Default, Debug)]
struct Report {
    /// Unique payload bytes acknowledged in the measured interval.
    delivered: u64,
    queue_drops: u64,
    random_drops: u64,
    max_queue: u32,
    /// Largest queue seen after `measure_from`.
    max_queue_measured: u32,
    timeouts: u32,
    /// Bytes delivered per RTT, from the start.
    per_rtt: Vec<u64>,
    /// Queue-overflow drops per RTT.
    drops_per_rtt: Vec<u64>,
    /// BBR only: when it entered ProbeRTT, and its min RTT at the end.
    probe_rtt_at: Vec<Duration>,
    min_rtt_end: Option<Duration>,
    /// BBR only: ProbeBW drain (0.75) phases entered while an inflight ceiling was set.
    drain_phases_under_ceiling: u32,
    inflight_hi_end: Option<u64>,
}

fn simulate(
    kind: CongestionControlKind,
    link: &Link,
    secs: u64,
    measure_from: Duration,
    seed: u64,
) -> Report {
    let t0 = Instant::now();
    let end = Duration::from_secs(secs);
    let mut rng = Rng(seed | 1);
    let mut cc = Controller::new(kind, t0);
    // As the association starts: RFC 4960's initial window, ssthresh from a 16 MiB rwnd.
    let mut w = Window {
        cwnd: 4 * MTU,
        ssthresh: 16 << 20,
    };
    let mut pacer = Pacer::default();
    let mut report = Report::default();
    let n_rtt = (end.as_secs_f64() / link.rtt.as_secs_f64()) as usize + 1;
    report.per_rtt = vec![0; n_rtt];
    report.drops_per_rtt = vec![0; n_rtt];

    let mut next_tsn: u32 = 1;
    // Outstanding in TSN order; acked entries are trimmed from the front.
    let mut out: VecDeque<Outstanding> = VecDeque::new();
    let mut inflight: u32 = 0;
    let mut retransmit: VecDeque<u32> = VecDeque::new();
    let mut in_recovery = false;
    let mut recovery_point = 0u32;
    let mut loss_scan = 0usize; // index into `out` below which loss is already decided
    // (arrival time at the sender, tsn, transmission number)
    let mut acks: BinaryHeap<Reverse<(Duration, u32, u32)>> = BinaryHeap::new();
    let mut link_free_at = Duration::ZERO;
    let mut last_progress = Duration::ZERO;
    let mut srtt = link.rtt;
    let mut now = Duration::ZERO;
    let mut last_cycle = usize::MAX;
    let mut last_ack_at: Option<Duration> = None;

    let idx = |out: &VecDeque<Outstanding>, tsn: u32| -> Option<usize> {
        let first = out.front()?.tsn;
        let i = tsn.checked_sub(first)? as usize;
        (i < out.len()).then_some(i)
    };

    for _ in 0..50_000_000u64 {
        if now >= end {
            break;
        }
        // Send: retransmissions first (not held by cwnd or the pacer, but paid for), then
        // new data while cwnd and the pacer allow.
        let mut transmit: Vec<(u32, u32)> = vec![];
        while let Some(tsn) = retransmit.pop_front() {
            if let Some(i) = idx(&out, tsn)
                && !out[i].acked
            {
                out[i].nsent += 1;
                out[i].sent = now;
                out[i].lost = false;
                transmit.push((tsn, out[i].nsent));
                if let Some(rate) = cc.pacing_rate() {
                    pacer.charge(t0 + now, rate, MTU, MTU);
                }
            }
        }
        let mut paced_until = None;
        while inflight + MTU <= w.cwnd {
            if let Some(rate) = cc.pacing_rate()
                && !pacer.try_send(t0 + now, rate, MTU, MTU)
            {
                paced_until = Some(pacer.next_send_time(t0 + now, rate, MTU) - t0);
                break;
            }
            let tsn = next_tsn;
            next_tsn += 1;
            out.push_back(Outstanding {
                tsn,
                sent: now,
                nsent: 1,
                acked: false,
                lost: false,
            });
            inflight += MTU;
            cc.on_sent(t0 + now, MTU, Some(tsn), inflight, false);
            transmit.push((tsn, 1));
        }
        for (tsn, nth) in transmit {
            // Queue occupancy: bytes waiting for the bottleneck at `now`.
            let backlog = link_free_at.saturating_sub(now).as_secs_f64() * link.rate;
            if backlog + f64::from(MTU) > f64::from(link.queue_bytes) {
                report.queue_drops += 1;
                let r = (now.as_secs_f64() / link.rtt.as_secs_f64()) as usize;
                report.drops_per_rtt[r.min(n_rtt - 1)] += u64::from(MTU);
                continue;
            }
            report.max_queue = report.max_queue.max(backlog as u32 + MTU);
            if now >= measure_from {
                report.max_queue_measured = report.max_queue_measured.max(backlog as u32 + MTU);
            }
            let start = link_free_at.max(now);
            link_free_at = start + Duration::from_secs_f64(f64::from(MTU) / link.rate);
            if rng.unit() < link.loss {
                report.random_drops += 1;
                continue;
            }
            let mut at = link_free_at + link.rtt_at(now);
            if let Some(clump) = link.ack_clump {
                let idle = last_ack_at.is_none_or(|l| at.saturating_sub(l) >= clump);
                if !idle {
                    let n = at.as_nanos().div_ceil(clump.as_nanos());
                    at = clump * n as u32;
                }
                last_ack_at = Some(at);
            }
            acks.push(Reverse((at, tsn, nth)));
        }

        // Advance to the next event: an ack, the pacer, or the retransmission timer.
        let rto = (srtt * 2).max(RTO_MIN);
        let timer = out
            .iter()
            .find(|o| !o.acked)
            .map(|o| o.sent.max(last_progress) + rto);
        let mut next = end;
        if let Some(Reverse((t, _, _))) = acks.peek() {
            next = next.min(*t);
        }
        if let Some(t) = paced_until {
            next = next.min(t.max(now + Duration::from_micros(1)));
        }
        if let Some(t) = timer {
            next = next.min(t);
        }
        now = next.max(now);

        if timer.is_some_and(|t| now >= t) && acks.peek().is_none_or(|Reverse((t, _, _))| *t > now)
        {
            report.timeouts += 1;
            cc.on_timeout(&mut w, t0 + now, MTU);
            in_recovery = false;
            for o in out.iter_mut().filter(|o| !o.acked) {
                o.lost = true;
                retransmit.push_back(o.tsn);
            }
            last_progress = now;
            continue;
        }

        while let Some(Reverse((t, tsn, nth))) = acks.peek().copied() {
            if t > now {
                break;
            }
            acks.pop();
            let Some(i) = idx(&out, tsn) else { continue };
            if out[i].acked {
                continue;
            }
            let o = out[i];
            out[i].acked = true;
            inflight -= MTU;
            last_progress = now;
            if now >= measure_from {
                report.delivered += u64::from(MTU);
            }
            let r = (now.as_secs_f64() / link.rtt.as_secs_f64()) as usize;
            report.per_rtt[r.min(n_rtt - 1)] += u64::from(MTU);
            if o.nsent == 1 && nth == 1 {
                let rtt = now - o.sent;
                srtt = (srtt * 7 + rtt) / 8;
                cc.on_rtt_sample(&mut w, rtt, t0 + now, MTU);
            }
            // Three later TSNs acked: what is still missing below is lost.
            while loss_scan < out.len() && out[loss_scan].tsn + 3 <= tsn {
                let c = &mut out[loss_scan];
                if !c.acked && !c.lost && c.nsent == 1 {
                    c.lost = true;
                    cc.on_lost(MTU);
                    retransmit.push_back(c.tsn);
                    if !in_recovery {
                        in_recovery = true;
                        recovery_point = next_tsn - 1;
                        cc.on_fast_retransmit_entry(&mut w, t0 + now, MTU);
                    }
                }
                loss_scan += 1;
            }
            let mut cum_advanced = false;
            while out.front().is_some_and(|o| o.acked) {
                out.pop_front();
                loss_scan = loss_scan.saturating_sub(1);
                cum_advanced = true;
            }
            if in_recovery && out.front().is_none_or(|o| o.tsn > recovery_point) {
                in_recovery = false;
            }
            let ack = AckEvent {
                now: t0 + now,
                bytes_acked: MTU,
                cum_advanced,
                highest_acked_tsn: tsn,
                inflight,
                in_fast_recovery: in_recovery,
                has_pending: true,
                mtu: MTU,
            };
            cc.on_ack(&mut w, &ack);
            if let Controller::Bbr(b) = &cc
                && b.mode() == super::bbr::Mode::ProbeBw
                && b.inflight_hi().is_some()
            {
                if b.cycle_index() == 1 && last_cycle != 1 {
                    report.drain_phases_under_ceiling += 1;
                }
                last_cycle = b.cycle_index();
            }
            if let Controller::Bbr(b) = &cc
                && b.mode() == super::bbr::Mode::ProbeRtt
                && report
                    .probe_rtt_at
                    .last()
                    .is_none_or(|t| now - *t > Duration::from_secs(1))
            {
                report.probe_rtt_at.push(now);
            }
        }
    }
    if let Controller::Bbr(b) = &cc {
        report.min_rtt_end = b.min_rtt();
        report.inflight_hi_end = b.inflight_hi();
    }
    report
}

fn mbit(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

const LONG_LOSSY: Link = Link {
    rate: 50e6 / 8.0,
    rtt: Duration::from_millis(150),
    queue_bytes: 1 << 20,
    loss: 0.005,
    rtt_change: None,
    ack_clump: None,
};

/// (a) 0.5 % random loss, 50 Mbit/s, 150 ms: the path. Reno's window halves on
/// every loss (Mathis: ~2 % of the link); the model does not.
#[test]
fn bbr_keeps_a_lossy_long_path_full_where_reno_collapses() {
    let from = Duration::from_secs(5);
    let secs = 25;
    let span = Duration::from_secs(secs) - from;
    let bbr = simulate(CongestionControlKind::Bbr, &LONG_LOSSY, secs, from, 7);
    let reno = simulate(CongestionControlKind::Reno, &LONG_LOSSY, secs, from, 7);
    let (b, r) = (mbit(bbr.delivered, span), mbit(reno.delivered, span));
    eprintln!("50 Mbit/s, 150 ms, 0.5 % loss: bbr {b:.1} Mbit/s {bbr:?}");
    eprintln!(
        "reno {r:.1} Mbit/s timeouts {} drops {}",
        reno.timeouts, reno.random_drops
    );
    assert!(b >= 0.8 * 50.0, "bbr delivered {b:.1} Mbit/s");
    // Past startup, probing keeps at most a quarter BDP or so queued (Reno's sawtooth
    // fills the whole queue before each loss on a clean path).
    let bdp = LONG_LOSSY.rate * LONG_LOSSY.rtt.as_secs_f64();
    assert!(
        f64::from(bbr.max_queue_measured) <= 0.5 * bdp,
        "standing queue {}",
        bbr.max_queue_measured
    );
    assert!(
        r <= 0.2 * 50.0,
        "reno delivered {r:.1} Mbit/s: the path no longer shows the collapse"
    );
}

/// (b) A clean 150 ms path: startup reaches the link rate within about ten round trips.
/// With a router queue of about one BDP (1 MiB) its overshoot fits in the queue: nothing
/// is lost. With a quarter-BDP queue startup does overflow it, for the round the loss
/// takes to be seen (~650 KB here); the bound asserted is one BDP, and an earlier,
/// delay-based startup exit is left for later (see vendor/README.md).
#[test]
fn bbr_startup_reaches_the_link_rate_without_a_burst_of_drops() {
    for (queue_bytes, max_dropped) in [(1u32 << 20, 0u64), (256 << 10, 937_500)] {
        let link = Link {
            loss: 0.0,
            queue_bytes,
            ..LONG_LOSSY
        };
        let rtt_bytes = (link.rate * link.rtt.as_secs_f64()) as u64;
        let r = simulate(CongestionControlKind::Bbr, &link, 6, Duration::ZERO, 1);
        eprintln!(
            "queue {queue_bytes}: per rtt {:?} drops {:?} max queue {}",
            &r.per_rtt[..20],
            &r.drops_per_rtt[..20],
            r.max_queue
        );
        let reached = r
            .per_rtt
            .iter()
            .position(|&b| b as f64 >= 0.9 * rtt_bytes as f64);
        assert!(
            reached.is_some_and(|n| n <= 12),
            "link rate first reached in rtt {reached:?}"
        );
        let dropped: u64 = r.drops_per_rtt.iter().sum();
        assert!(dropped <= max_dropped, "{dropped} bytes dropped");
        // And it stays there: the last 2 s run at ≥ 90 % of the link.
        let tail: u64 = r.per_rtt[26..39].iter().sum();
        assert!(tail as f64 >= 0.9 * 13.0 * rtt_bytes as f64, "tail {tail}");
    }
}

/// The min-RTT filter forgets after ~10 s: a route change from 60 to 150 ms leaves the
/// model with a stale 60 ms (so a BDP far too small) until ProbeRTT re-measures it.
#[test]
fn bbr_min_rtt_follows_a_route_change_through_probe_rtt() {
    let link = Link {
        rtt: Duration::from_millis(60),
        loss: 0.0,
        rtt_change: Some((Duration::from_secs(3), Duration::from_millis(150))),
        ..LONG_LOSSY
    };
    let r = simulate(
        CongestionControlKind::Bbr,
        &link,
        20,
        Duration::from_secs(16),
        1,
    );
    eprintln!(
        "route change: probe rtt at {:?}, min rtt {:?}, last 4 s {:.1} Mbit/s",
        r.probe_rtt_at,
        r.min_rtt_end,
        mbit(r.delivered, Duration::from_secs(4))
    );
    let min_rtt = r.min_rtt_end.unwrap();
    assert!(
        min_rtt >= Duration::from_millis(150) && min_rtt < Duration::from_millis(160),
        "{min_rtt:?}"
    );
    // Entered once the 60 ms sample was 10 s old (it was last seen before 3 s).
    assert!(
        r.probe_rtt_at
            .first()
            .is_some_and(|t| *t > Duration::from_secs(10) && *t < Duration::from_secs(14)),
        "{:?}",
        r.probe_rtt_at
    );
    assert!(mbit(r.delivered, Duration::from_secs(4)) >= 0.9 * 50.0);
}

/// 3 % random loss is above the 2 % a round may lose: the inflight ceiling engages, and
/// the gain cycle must keep turning under it (its probe phase once waited for inflight
/// to reach 1.25 BDP, which a ceiling below that never allows: 2 drain phases in 15 s).
/// Throughput here is ~9 Mbit/s of 50: above 2 % random loss the ceiling, like BBRv2's,
/// reads the loss as congestion (Reno would get well under 1 Mbit/s).
#[test]
fn bbr_gain_cycle_keeps_turning_under_an_inflight_ceiling() {
    let link = Link {
        loss: 0.03,
        ..LONG_LOSSY
    };
    let r = simulate(
        CongestionControlKind::Bbr,
        &link,
        20,
        Duration::from_secs(5),
        5,
    );
    let got = mbit(r.delivered, Duration::from_secs(15));
    eprintln!(
        "3 % loss: {got:.1} Mbit/s, ceiling {:?}, drain phases under it {}, timeouts {}",
        r.inflight_hi_end, r.drain_phases_under_ceiling, r.timeouts
    );
    assert!(r.inflight_hi_end.is_some(), "no ceiling at 3 % loss");
    // A cycle is 8 round trips (~1.2 s here): about a dozen in 15 s.
    assert!(
        r.drain_phases_under_ceiling >= 5,
        "{}",
        r.drain_phases_under_ceiling
    );
    // The ceiling never leaves less than a BDP plus the ack clump in flight: at one bare
    // BDP every late SACK lowered the next bandwidth sample (10.1 Mbit/s here).
    assert!(got >= 0.25 * 50.0, "{got:.1} Mbit/s under the ceiling");
}

/// A fast, short path whose acks come in clumps a millisecond apart, as on loopback
/// through the webrtc driver: the min RTT is tens of microseconds but the sender hears
/// back only once per clump. cwnd = 2·BDP alone (~10 KB here) would let the sender fill
/// a few percent of the link per clump; the ack-aggregation term must cover the clump.
#[test]
fn bbr_window_covers_clumped_acks_on_a_fast_short_path() {
    let link = Link {
        rate: 100e6,
        rtt: Duration::from_micros(50),
        queue_bytes: 4 << 20,
        loss: 0.0,
        rtt_change: None,
        ack_clump: Some(Duration::from_millis(1)),
    };
    let from = Duration::from_millis(500);
    let span = Duration::from_secs(2) - from;
    let bbr = simulate(CongestionControlKind::Bbr, &link, 2, from, 1);
    let reno = simulate(CongestionControlKind::Reno, &link, 2, from, 1);
    let (b, r) = (mbit(bbr.delivered, span), mbit(reno.delivered, span));
    eprintln!("clumped acks, 800 Mbit/s: bbr {b:.0} Mbit/s, reno {r:.0} Mbit/s");
    assert!(b >= 0.8 * 800.0, "bbr delivered {b:.0} Mbit/s of 800");
    assert!(b >= 0.9 * r, "bbr {b:.0} vs reno {r:.0} Mbit/s");
}

/// ProbeRTT comes every 10 s; at four packets in flight for 200 ms plus a round it emptied
/// a 150 ms pipe for about half a second each time. At half a BDP the worst second stays
/// near the link rate.
#[test]
fn bbr_probe_rtt_costs_little_on_a_long_path() {
    let link = Link {
        loss: 0.0,
        ..LONG_LOSSY
    };
    let r = simulate(CongestionControlKind::Bbr, &link, 32, Duration::ZERO, 1);
    assert!(!r.probe_rtt_at.is_empty(), "no ProbeRTT in 32 s");
    let per_sec = (1.0 / link.rtt.as_secs_f64()).round() as usize; // ~7 rounds
    let rtt_bytes = link.rate * link.rtt.as_secs_f64();
    let worst = r.per_rtt[40..r.per_rtt.len() - 2]
        .windows(per_sec)
        .map(|w| w.iter().sum::<u64>() as f64 / (per_sec as f64 * rtt_bytes))
        .fold(f64::MAX, f64::min);
    eprintln!(
        "probe rtt at {:?}: worst second {:.0} % of the link",
        r.probe_rtt_at,
        worst * 100.0
    );
    assert!(
        worst >= 0.8,
        "worst second {:.0} % of the link",
        worst * 100.0
    );
}

/// 1 % random loss on 100 Mbit/s, 40 ms: a 430-packet round loses more than 2 % by chance
/// every few seconds. Read as congestion at cruise, that capped inflight at one BDP and
/// the bandwidth estimate drifted down with every stall; only rounds that probe may set
/// the ceiling.
#[test]
fn bbr_keeps_a_one_percent_lossy_path_full() {
    let link = Link {
        rate: 100e6 / 8.0,
        rtt: Duration::from_millis(40),
        queue_bytes: 1 << 20,
        loss: 0.01,
        rtt_change: None,
        ack_clump: None,
    };
    let from = Duration::from_secs(5);
    let secs = 25;
    let r = simulate(CongestionControlKind::Bbr, &link, secs, from, 3);
    let b = mbit(r.delivered, Duration::from_secs(secs) - from);
    eprintln!(
        "100 Mbit/s, 40 ms, 1 % loss: bbr {b:.1} Mbit/s, ceiling {:?}",
        r.inflight_hi_end
    );
    assert!(b >= 0.85 * 100.0, "bbr delivered {b:.1} Mbit/s of 100");
}
