//! Ferry patch: a token bucket that spreads a window's worth of DATA over the round trip
//! instead of releasing it at line rate. Unpaced bursts of a whole window overflow relay
//! (TURN) socket buffers and shallow router queues, which loss-based control then reads
//! as congestion.

use std::time::{Duration, Instant};

/// Smallest bucket: a few packets, so a sender is never held to one packet per wakeup.
const MIN_BURST_PACKETS: u32 = 4;
/// Largest bucket: bounds what leaves back to back however fast the model says the
/// path is (150 KB at a 1200-byte MTU: a 1 ms wakeup still allows ~150 MB/s).
const MAX_BURST_PACKETS: u32 = 128;
/// A driver whose timers fire with about a millisecond of slack must be allowed a couple
/// of milliseconds of data per wakeup, or the timer resolution, not the rate, sets the
/// throughput. At 50 Mbit/s that is ten packets.
const BURST_TIME: Duration = Duration::from_millis(2);

#[derive(Debug, Default)]
pub(crate) struct Pacer {
    tokens: f64,
    last: Option<Instant>,
}

impl Pacer {
    /// Bucket size in bytes at `rate` bytes per second.
    pub(crate) fn burst(rate: u64, mtu: u32) -> u32 {
        let per_time = (rate as f64 * BURST_TIME.as_secs_f64()) as u64;
        let lo = u64::from(MIN_BURST_PACKETS * mtu);
        let hi = u64::from(MAX_BURST_PACKETS * mtu);
        per_time.clamp(lo, hi) as u32
    }

    fn refill(&mut self, now: Instant, rate: u64, mtu: u32) {
        let cap = f64::from(Self::burst(rate, mtu));
        match self.last {
            // A fresh bucket starts full: the first flight may go at once.
            None => self.tokens = cap,
            Some(last) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                self.tokens = (self.tokens + dt * rate as f64).min(cap);
            }
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    /// Takes `bytes` if the bucket holds them; new DATA waits otherwise.
    pub(crate) fn try_send(&mut self, now: Instant, rate: u64, mtu: u32, bytes: u32) -> bool {
        self.refill(now, rate, mtu);
        if self.tokens >= f64::from(bytes) {
            self.tokens -= f64::from(bytes);
            true
        } else {
            false
        }
    }

    /// Bytes that may go now.
    pub(crate) fn available(&mut self, now: Instant, rate: u64, mtu: u32) -> u32 {
        self.refill(now, rate, mtu);
        self.tokens.max(0.0) as u32
    }

    /// Retransmissions are not held back (RFC 9260 7.2.4 sends the first at once) but
    /// are paid for, down to one bucket of debt, so they do not add to the rate.
    pub(crate) fn charge(&mut self, now: Instant, rate: u64, mtu: u32, bytes: u32) {
        self.refill(now, rate, mtu);
        let cap = f64::from(Self::burst(rate, mtu));
        self.tokens = (self.tokens - f64::from(bytes)).max(-cap);
    }

    /// When `bytes` will have accumulated, assuming nothing else is sent.
    pub(crate) fn next_send_time(&self, now: Instant, rate: u64, bytes: u32) -> Instant {
        let missing = f64::from(bytes) - self.tokens;
        if missing <= 0.0 || rate == 0 {
            return now;
        }
        // Round up to whole microseconds so the wakeup finds the tokens there.
        let micros = (missing * 1e6 / rate as f64).ceil() as u64;
        self.last.unwrap_or(now).max(now) + Duration::from_micros(micros.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTU: u32 = 1200;

    /// (c) Whatever the sender asks, no interval releases more than one bucket plus
    /// what the rate earns in it.
    #[test]
    fn never_releases_more_than_the_burst_allowance() {
        let t0 = Instant::now();
        for rate in [100_000u64, 6_250_000, 125_000_000] {
            let mut p = Pacer::default();
            let burst = Pacer::burst(rate, MTU);
            assert!((MIN_BURST_PACKETS * MTU..=MAX_BURST_PACKETS * MTU).contains(&burst));
            let mut released: Vec<(Duration, u32)> = vec![];
            let mut t = Duration::ZERO;
            // A greedy sender polling at irregular times, up to 200 packets each.
            for step in 0..20_000u64 {
                t += Duration::from_micros(7 + (step * 7919) % 90);
                for _ in 0..200 {
                    if !p.try_send(t0 + t, rate, MTU, MTU) {
                        break;
                    }
                    released.push((t, MTU));
                }
            }
            assert!(!released.is_empty());
            // Sliding check over every pair of release times.
            let mut start = 0;
            let mut in_window = 0u64;
            for end in 0..released.len() {
                in_window += u64::from(released[end].1);
                while released[end].0 - released[start].0 > Duration::from_millis(50) {
                    in_window -= u64::from(released[start].1);
                    start += 1;
                }
                let dt = (released[end].0 - released[start].0).as_secs_f64();
                let allowed = f64::from(burst) + rate as f64 * dt + 1.0;
                assert!(
                    in_window as f64 <= allowed,
                    "rate {rate}: {in_window} bytes in {dt}s, allowed {allowed}"
                );
            }
            // And a greedy sender does get the rate over time.
            let total: u64 = released.iter().map(|r| u64::from(r.1)).sum();
            let secs = released.last().unwrap().0.as_secs_f64();
            let achieved = total as f64 / secs;
            assert!(
                achieved > 0.9 * rate as f64,
                "rate {rate}: achieved {achieved}"
            );
        }
    }

    #[test]
    fn next_send_time_is_when_the_tokens_are_there() {
        let t0 = Instant::now();
        let rate = 1_000_000; // 1 MB/s: one 1200-byte packet per 1.2 ms
        let mut p = Pacer::default();
        while p.try_send(t0, rate, MTU, MTU) {}
        let at = p.next_send_time(t0, rate, MTU);
        assert!(
            at > t0 && at <= t0 + Duration::from_micros(1201),
            "{:?}",
            at - t0
        );
        assert!(!p.try_send(at - Duration::from_micros(100), rate, MTU, MTU));
        assert!(p.try_send(at, rate, MTU, MTU));
    }

    #[test]
    fn retransmissions_are_charged_but_not_held() {
        let t0 = Instant::now();
        let rate = 1_000_000;
        let mut p = Pacer::default();
        p.charge(t0, rate, MTU, 100 * MTU);
        // One bucket of debt at most: new data waits one bucket's refill time plus a packet.
        let wait = p.next_send_time(t0, rate, MTU) - t0;
        let most = Duration::from_secs_f64(f64::from(Pacer::burst(rate, MTU) + MTU) / rate as f64);
        assert!(
            wait <= most + Duration::from_micros(1),
            "{wait:?} > {most:?}"
        );
    }
}
