//! Ferry patch: a BBR-style congestion controller (after the IETF CCWG BBR draft), written
//! for SCTP's SACK-driven sender. Reno halves its window on every loss, so on a long path
//! with a little random loss it cannot keep the pipe full (Mathis: 0.5 % loss at 150 ms
//! RTT allows about 1.8 % of 50 Mbit/s). BBR instead models the path: the bottleneck
//! bandwidth (windowed max of delivery-rate samples over ~10 rounds) and the minimum RTT
//! (over ~10 s); it paces at a gain times that bandwidth and keeps about two
//! bandwidth-delay products in flight. Random loss does not touch the model; a round that
//! loses more than 2 % sets a ceiling on inflight (BBRv2's `inflight_hi`).
//!
//! Pure code over `Instant`s handed in by the caller, so it runs on a simulated clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::delivery::DeliveryRate;
use super::{AckEvent, CongestionController, Window};

/// 4·ln 2: the smallest gain that doubles the delivery rate each round in startup.
const STARTUP_PACING_GAIN: f64 = 2.77;
const DRAIN_PACING_GAIN: f64 = 0.5;
const CWND_GAIN: f64 = 2.0;
/// Probe up, drain what probing queued, then cruise six rounds.
const PROBE_BW_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Rounds the bandwidth filter remembers.
const BTL_BW_ROUNDS: u64 = 10;
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// ProbeRTT holds inflight to half a BDP (BBRv2's `probe_rtt_cwnd_gain`), not BBRv1's four
/// packets: half a BDP already drains the queue this flow built, and on a 150 ms path four
/// packets for 200 ms + a round cost ~0.5 s of throughput every 10 s (seen as 45 % dips in
/// the emulator's timeline).
const PROBE_RTT_CWND_GAIN: f64 = 0.5;
const PROBE_RTT_CWND_PACKETS: u32 = 4;
/// Startup ends when three rounds in a row grow the bandwidth by less than a quarter.
const FULL_BW_GROWTH: f64 = 1.25;
const FULL_BW_ROUNDS: u32 = 3;
/// A round losing more than this fraction of what it delivered is congestion, not noise.
const LOSS_THRESH: f64 = 0.02;
/// ...and at least this many packets' worth, so that one loss in a small round is not.
const LOSS_MIN_PACKETS: u32 = 4;
/// On such a round the ceiling drops to this fraction of what was in flight.
const BETA: f64 = 0.7;
/// Extra cwnd beyond gain·BDP for delayed SACKs and send batching.
const QUANTUM_PACKETS: u32 = 3;
const MIN_CWND_PACKETS: u32 = 4;
/// Rounds the ack-aggregation filter remembers (the draft's `BBRExtraAckedFilterLen`).
const EXTRA_ACKED_ROUNDS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

#[derive(Debug)]
pub(crate) struct Bbr {
    mode: Mode,
    /// Per-round maxima of delivery rate (bytes/s), oldest first.
    bw_samples: VecDeque<(u64, u64)>,
    btl_bw: u64,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,

    rate: DeliveryRate,

    round_count: u64,
    next_round_delivered: u64,
    round_start: bool,

    full_bw: u64,
    full_bw_count: u32,
    filled_pipe: bool,

    cycle_index: usize,
    cycle_stamp: Instant,

    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    prior_cwnd: u32,

    pacing_gain: f64,
    pacing_rate: u64,

    round_lost: u64,
    round_delivered_start: u64,
    round_max_inflight: u32,
    inflight_hi: Option<u64>,
    loss_handled_this_round: bool,
    probe_rtt_due: bool,

    /// Ack aggregation (the draft's `extra_acked`): acks arrive in clumps (delayed SACKs,
    /// a receiver that reads a batch of packets per wakeup, a driver whose timers fire a
    /// millisecond apart), so over a short interval more is acked than `btl_bw` explains.
    /// cwnd must cover that excess or the sender stalls waiting for the next clump: on
    /// loopback the min RTT is ~30 µs while SACKs come ~1 ms apart, and with 2·BDP alone
    /// cwnd shrank toward 4 packets (a 1 GiB loopback transfer took 1.4x Reno's time).
    extra_acked_start: Instant,
    extra_acked_delivered: u64,
    /// Per-round maxima of the excess, oldest first.
    extra_acked_samples: VecDeque<(u64, u64)>,
    extra_acked: u64,
}

impl Bbr {
    pub(crate) fn new(now: Instant) -> Self {
        Bbr {
            mode: Mode::Startup,
            bw_samples: VecDeque::new(),
            btl_bw: 0,
            min_rtt: None,
            min_rtt_stamp: now,
            rate: DeliveryRate::new(now),
            round_count: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bw: 0,
            full_bw_count: 0,
            filled_pipe: false,
            // The draft picks the starting phase at random among all but the 0.75 one;
            // a fixed cruise phase keeps runs reproducible.
            cycle_index: 2,
            cycle_stamp: now,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            prior_cwnd: 0,
            pacing_gain: STARTUP_PACING_GAIN,
            pacing_rate: 0,
            round_lost: 0,
            round_delivered_start: 0,
            round_max_inflight: 0,
            inflight_hi: None,
            loss_handled_this_round: false,
            probe_rtt_due: false,
            extra_acked_start: now,
            extra_acked_delivered: 0,
            extra_acked_samples: VecDeque::new(),
            extra_acked: 0,
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn btl_bw(&self) -> u64 {
        self.btl_bw
    }

    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Index into the ProbeBW gain cycle (1 is the 0.75 drain phase).
    pub(crate) fn cycle_index(&self) -> usize {
        self.cycle_index
    }

    pub(crate) fn inflight_hi(&self) -> Option<u64> {
        self.inflight_hi
    }

    fn bdp(&self) -> Option<u64> {
        let rtt = self.min_rtt?;
        if self.btl_bw == 0 {
            return None;
        }
        Some((self.btl_bw as f64 * rtt.as_secs_f64()) as u64)
    }

    fn target_cwnd(&self, gain: f64, mtu: u32, current: u32) -> u32 {
        let Some(bdp) = self.bdp() else {
            // No model yet: keep the initial window growing as slow start would.
            return current;
        };
        let mut target =
            (gain * bdp as f64) as u64 + self.extra_acked + u64::from(QUANTUM_PACKETS * mtu);
        if let Some(hi) = self.inflight_hi {
            target = target.min(hi.max(self.ceiling_floor(mtu)));
        }
        target.clamp(u64::from(MIN_CWND_PACKETS * mtu), u64::from(u32::MAX)) as u32
    }

    /// The least an inflight ceiling may leave: one BDP plus what acks clump by plus the
    /// send quantum. A ceiling at one bare BDP left the pipe short whenever a SACK came
    /// late or a loss was being repaired; each such round sampled less bandwidth, which
    /// lowered the next BDP (on a 150 ms, 0.5 %-loss path cwnd sat at exactly the BDP).
    fn ceiling_floor(&self, mtu: u32) -> u64 {
        self.bdp().unwrap_or(0) + self.extra_acked + u64::from(QUANTUM_PACKETS * mtu)
    }

    fn probe_rtt_cwnd(&self, mtu: u32) -> u32 {
        let half_bdp = (PROBE_RTT_CWND_GAIN * self.bdp().unwrap_or(0) as f64) as u64;
        half_bdp.max(u64::from(PROBE_RTT_CWND_PACKETS * mtu)) as u32
    }

    fn update_btl_bw(&mut self, rate: u64) {
        match self.bw_samples.back_mut() {
            Some((round, max)) if *round == self.round_count => *max = (*max).max(rate),
            _ => self.bw_samples.push_back((self.round_count, rate)),
        }
        while self
            .bw_samples
            .front()
            .is_some_and(|(r, _)| r + BTL_BW_ROUNDS <= self.round_count)
        {
            self.bw_samples.pop_front();
        }
        self.btl_bw = self.bw_samples.iter().map(|s| s.1).max().unwrap_or(0);
    }

    /// The draft's `BBRUpdateACKAggregation`: how far acks ran ahead of `btl_bw` since
    /// the last time they fell behind it, capped at cwnd, max-filtered over rounds (one
    /// round while the pipe is still filling, so startup's overshoot is not remembered).
    fn update_ack_aggregation(&mut self, now: Instant, acked: u32, cwnd: u32) {
        if self.btl_bw == 0 || acked == 0 {
            return;
        }
        let interval = now.saturating_duration_since(self.extra_acked_start);
        let mut expected = (self.btl_bw as f64 * interval.as_secs_f64()) as u64;
        if self.extra_acked_delivered <= expected {
            self.extra_acked_delivered = 0;
            self.extra_acked_start = now;
            expected = 0;
        }
        self.extra_acked_delivered += u64::from(acked);
        let extra = (self.extra_acked_delivered - expected).min(u64::from(cwnd));
        match self.extra_acked_samples.back_mut() {
            Some((round, max)) if *round == self.round_count => *max = (*max).max(extra),
            _ => self
                .extra_acked_samples
                .push_back((self.round_count, extra)),
        }
        let rounds = if self.filled_pipe {
            EXTRA_ACKED_ROUNDS
        } else {
            1
        };
        while self
            .extra_acked_samples
            .front()
            .is_some_and(|(r, _)| r + rounds <= self.round_count)
        {
            self.extra_acked_samples.pop_front();
        }
        self.extra_acked = self
            .extra_acked_samples
            .iter()
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
    }

    fn round_is_lossy(&self, mtu: u32) -> bool {
        let delivered = self.rate.delivered() - self.round_delivered_start;
        let lost = self.round_lost;
        lost >= u64::from(LOSS_MIN_PACKETS * mtu)
            && lost as f64 > LOSS_THRESH * (delivered + lost) as f64
    }

    /// Acts on heavy loss as soon as the round shows it, not at its end: in startup a
    /// round later is another 2.77x of data into an overflowing queue.
    ///
    /// Only while probing (startup, or ProbeBW's 1.25 phase), as BBRv3 does: that is when
    /// this flow pushes past what the path has shown it can carry, so loss then is its own
    /// queue overflowing. At cruise and below, loss is the path's (a lossy last hop): at
    /// 1 % random loss a 430-packet round crosses 2 % by chance every few seconds, and a
    /// ceiling set on such a round held cwnd at one BDP, where every stall lowered the
    /// bandwidth sample and with it the next BDP (52 % of a 100 Mbit/s, 40 ms link).
    fn check_loss(&mut self, inflight: u32, mtu: u32) {
        let probing = self.mode == Mode::Startup
            || (self.mode == Mode::ProbeBw && self.pacing_gain > 1.0);
        if self.loss_handled_this_round || !probing || !self.round_is_lossy(mtu) {
            return;
        }
        self.loss_handled_this_round = true;
        let base = u64::from(self.round_max_inflight.max(inflight));
        let hi = (base as f64 * BETA) as u64;
        self.inflight_hi = Some(self.inflight_hi.map_or(hi, |h| h.min(hi).max(hi / 2)));
        if self.mode == Mode::Startup {
            // Loss is the queue overflowing: the pipe is full.
            self.filled_pipe = true;
        }
    }

    fn on_round_end(&mut self, inflight: u32, mtu: u32) {
        let clean = !self.loss_handled_this_round && !self.round_is_lossy(mtu);
        if clean && self.pacing_gain > 1.0 {
            // A clean round while probing up: the ceiling may rise with the probe.
            if let Some(hi) = self.inflight_hi {
                let raised = (hi as f64 * FULL_BW_GROWTH) as u64;
                let bdp = self.bdp().unwrap_or(0);
                self.inflight_hi = (raised < 4 * bdp).then_some(raised);
            }
        }
        self.round_lost = 0;
        self.round_delivered_start = self.rate.delivered();
        self.round_max_inflight = inflight;
        self.loss_handled_this_round = false;
    }

    fn check_full_pipe(&mut self, app_limited: bool) {
        if self.filled_pipe || !self.round_start || app_limited {
            return;
        }
        if self.btl_bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = self.btl_bw;
            self.full_bw_count = 0;
            return;
        }
        self.full_bw_count += 1;
        if self.full_bw_count >= FULL_BW_ROUNDS {
            self.filled_pipe = true;
        }
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = Mode::ProbeBw;
        self.cycle_index = 2;
        self.cycle_stamp = now;
        self.pacing_gain = PROBE_BW_GAINS[self.cycle_index];
    }

    fn update_mode(&mut self, w: &mut Window, now: Instant, inflight: u32) {
        let bdp = self.bdp().unwrap_or(u64::MAX);
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::Drain;
            self.pacing_gain = DRAIN_PACING_GAIN;
        }
        if self.mode == Mode::Drain && u64::from(inflight) <= bdp {
            self.enter_probe_bw(now);
        }
        if self.mode == Mode::ProbeBw {
            let min_rtt = self.min_rtt.unwrap_or(Duration::from_millis(100));
            let full_length = now.saturating_duration_since(self.cycle_stamp) > min_rtt;
            let gain = PROBE_BW_GAINS[self.cycle_index];
            let next = if gain > 1.0 {
                // Probe until the extra is actually in flight, or the path pushes back
                // (a lossy round), or the window cannot hold it (an inflight ceiling).
                let reached = inflight as f64 >= gain * bdp as f64;
                let capped = f64::from(w.cwnd) < gain * bdp as f64;
                full_length && (reached || capped || self.loss_handled_this_round)
            } else if gain < 1.0 {
                full_length || u64::from(inflight) <= bdp
            } else {
                full_length
            };
            if next {
                self.cycle_index = (self.cycle_index + 1) % PROBE_BW_GAINS.len();
                self.cycle_stamp = now;
                self.pacing_gain = PROBE_BW_GAINS[self.cycle_index];
            }
        }
        // Min RTT not refreshed for 10 s: drain the queue briefly to measure it.
        let expired = now.saturating_duration_since(self.min_rtt_stamp) > MIN_RTT_WINDOW;
        let due = std::mem::take(&mut self.probe_rtt_due);
        if (expired || due) && self.mode != Mode::ProbeRtt && self.min_rtt.is_some() {
            self.mode = Mode::ProbeRtt;
            self.pacing_gain = 1.0;
            self.prior_cwnd = self.prior_cwnd.max(w.cwnd);
            self.probe_rtt_done = None;
        }
    }

    fn handle_probe_rtt(&mut self, w: &mut Window, now: Instant, inflight: u32, mtu: u32) {
        if self.mode != Mode::ProbeRtt {
            return;
        }
        let floor = self.probe_rtt_cwnd(mtu);
        match self.probe_rtt_done {
            None if inflight <= floor => {
                self.probe_rtt_done = Some(now + PROBE_RTT_TIME);
                self.probe_rtt_round_done = false;
                self.next_round_delivered = self.rate.delivered();
            }
            Some(done) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done && now >= done {
                    self.min_rtt_stamp = now;
                    w.cwnd = w.cwnd.max(self.prior_cwnd);
                    self.prior_cwnd = 0;
                    if self.filled_pipe {
                        self.enter_probe_bw(now);
                    } else {
                        self.mode = Mode::Startup;
                        self.pacing_gain = STARTUP_PACING_GAIN;
                    }
                }
            }
            None => {}
        }
    }

    fn update_pacing_rate(&mut self, w: &Window) {
        let rate = if self.btl_bw > 0 {
            (self.pacing_gain * self.btl_bw as f64) as u64
        } else {
            // Before the first sample: the initial window per RTT (or per 100 ms).
            let rtt = self.min_rtt.unwrap_or(Duration::from_millis(100));
            (self.pacing_gain * f64::from(w.cwnd) / rtt.as_secs_f64().max(1e-3)) as u64
        };
        // In startup the rate only rises: one low sample must not slow the ramp.
        self.pacing_rate = if self.filled_pipe {
            rate
        } else {
            self.pacing_rate.max(rate)
        };
    }

    fn update_cwnd(&mut self, w: &mut Window, acked: u32, mtu: u32) {
        let gain = if self.mode == Mode::ProbeRtt {
            1.0
        } else {
            CWND_GAIN
        };
        let target = self.target_cwnd(gain, mtu, w.cwnd);
        if self.bdp().is_none() {
            // Slow-start growth until the first rate sample.
            w.cwnd = w.cwnd.saturating_add(acked);
        } else if self.filled_pipe {
            w.cwnd = w.cwnd.saturating_add(acked).min(target);
        } else if w.cwnd < target {
            // Startup: grow with what is delivered while below the model's target.
            w.cwnd = w.cwnd.saturating_add(acked);
        }
        w.cwnd = w.cwnd.max(MIN_CWND_PACKETS * mtu);
        if let Some(hi) = self.inflight_hi {
            let floor = self.ceiling_floor(mtu);
            w.cwnd = w
                .cwnd
                .min(hi.max(floor).max(u64::from(MIN_CWND_PACKETS * mtu)) as u32);
        }
        if self.mode == Mode::ProbeRtt {
            w.cwnd = w.cwnd.min(self.probe_rtt_cwnd(mtu));
        }
    }
}

impl CongestionController for Bbr {
    fn on_sent(
        &mut self,
        now: Instant,
        bytes: u32,
        last_new_tsn: Option<u32>,
        inflight: u32,
        app_limited: bool,
    ) {
        // Only new DATA is stamped: a retransmission's ack is ambiguous (Karn).
        if let Some(last_tsn) = last_new_tsn {
            self.rate
                .on_sent(now, bytes, last_tsn, inflight, app_limited);
        }
    }

    fn on_rtt_sample(&mut self, _: &mut Window, rtt: Duration, now: Instant, _: u32) {
        let expired = now.saturating_duration_since(self.min_rtt_stamp) > MIN_RTT_WINDOW;
        if expired && self.mode != Mode::ProbeRtt && self.min_rtt.is_some() {
            // The sample below refreshes the stamp; ProbeRTT is still due, to see the
            // path without our own queue.
            self.probe_rtt_due = true;
        }
        if self.min_rtt.is_none_or(|m| rtt <= m) || (expired && self.mode != Mode::ProbeRtt) {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = now;
        }
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckEvent) {
        let now = ack.now;
        self.round_max_inflight = self.round_max_inflight.max(ack.inflight + ack.bytes_acked);
        self.round_start = false;
        let mut sample_app_limited = true;
        let min_rtt = self.min_rtt;
        if let Some(sample) = self
            .rate
            .on_ack(now, ack.bytes_acked, ack.highest_acked_tsn, min_rtt)
        {
            if sample.prior_delivered >= self.next_round_delivered {
                self.next_round_delivered = self.rate.delivered();
                self.round_count += 1;
                self.round_start = true;
            }
            if let Some(rate) = sample.rate {
                sample_app_limited = sample.app_limited;
                if !sample.app_limited || rate >= self.btl_bw {
                    self.update_btl_bw(rate);
                }
            }
        }
        if self.round_start {
            self.on_round_end(ack.inflight, ack.mtu);
        }
        self.update_ack_aggregation(now, ack.bytes_acked, w.cwnd);
        self.check_loss(ack.inflight, ack.mtu);
        self.check_full_pipe(sample_app_limited);
        self.update_mode(w, now, ack.inflight);
        self.handle_probe_rtt(w, now, ack.inflight, ack.mtu);
        self.update_pacing_rate(w);
        self.update_cwnd(w, ack.bytes_acked, ack.mtu);
    }

    fn on_lost(&mut self, bytes: u32) {
        self.round_lost += u64::from(bytes);
    }

    fn on_fast_retransmit_entry(&mut self, _: &mut Window, _: Instant, _: u32) {
        // The model is the path's, not the loss's: random loss leaves cwnd alone. Heavy
        // loss is answered per round by the inflight ceiling.
    }

    fn on_timeout(&mut self, w: &mut Window, _: Instant, mtu: u32) {
        // Nothing acked for an RTO: the model may be stale. Start from one packet and let
        // acks regrow cwnd toward the model's target.
        self.prior_cwnd = self.prior_cwnd.max(w.cwnd);
        w.cwnd = mtu;
        self.round_lost = 0;
        if self.mode == Mode::Startup {
            // In startup a timeout means the queue startup built outgrew the RTO, or
            // overflowed. SCTP now resends everything outstanding: at startup's 2.77x
            // that go-back-N refills the queue it just overflowed. Drain instead.
            self.filled_pipe = true;
            self.mode = Mode::Drain;
            self.pacing_gain = DRAIN_PACING_GAIN;
            self.update_pacing_rate(w);
        }
    }

    fn in_slow_start(&self, _: &Window) -> bool {
        self.mode == Mode::Startup
    }

    fn pacing_rate(&self) -> Option<u64> {
        (self.pacing_rate > 0).then_some(self.pacing_rate)
    }
}
