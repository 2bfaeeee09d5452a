//! Ferry patch: delay-based slow-start exit, after HyStart (Ha & Rhee, 2011; Linux
//! `tcp_cubic`). Upstream slow start doubles cwnd until a loss, and with a receive
//! window larger than the path's bandwidth-delay product plus its router queue that
//! loss is a burst of hundreds of packets. Round-trip time starts to rise as soon as
//! the queue fills, one round before it overflows; leaving slow start then keeps cwnd
//! at what the path holds, without the burst.

use std::time::Duration;

/// Not below 16 packets, as in Linux: small windows say nothing about the queue.
const LOW_WINDOW_PACKETS: u32 = 16;
/// The rise that counts: an eighth of the path's own RTT, kept within 4..16 ms so
/// that scheduling noise on a LAN is not mistaken for a queue.
const MIN_RISE: Duration = Duration::from_millis(4);
const MAX_RISE: Duration = Duration::from_millis(16);
/// One measurement per round trip arrives (Karn's rule), so one late sample could be
/// noise; two in a row are a queue. Slow start doubles cwnd each round, so a queue
/// can go from empty to overflowing in two rounds: a rise of twice the threshold is
/// acted on at once.
const SAMPLES_ABOVE: u8 = 2;

#[derive(Debug, Default)]
pub(crate) struct SlowStartExit {
    min_rtt: Option<Duration>,
    above: u8,
}

impl SlowStartExit {
    /// Feeds one RTT measurement; returns the new ssthresh when slow start should end.
    pub(crate) fn on_rtt(&mut self, rtt: Duration, cwnd: u32, ssthresh: u32, mtu: u32) -> Option<u32> {
        let base = *self.min_rtt.get_or_insert(rtt);
        self.min_rtt = Some(base.min(rtt));
        if cwnd > ssthresh || cwnd < LOW_WINDOW_PACKETS.saturating_mul(mtu) {
            self.above = 0;
            return None;
        }
        let rise = (base / 8).clamp(MIN_RISE, MAX_RISE);
        if rtt >= base + 2 * rise {
            self.above = SAMPLES_ABOVE;
        } else if rtt >= base + rise {
            self.above += 1;
        } else {
            self.above = 0;
        }
        if self.above >= SAMPLES_ABOVE {
            self.above = 0;
            return Some(cwnd);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTU: u32 = 1200;
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn leaves_slow_start_after_two_late_samples() {
        let mut h = SlowStartExit::default();
        let cwnd = 100 * MTU;
        assert_eq!(None, h.on_rtt(40 * MS, cwnd, u32::MAX, MTU));
        assert_eq!(None, h.on_rtt(41 * MS, cwnd, u32::MAX, MTU));
        assert_eq!(None, h.on_rtt(46 * MS, cwnd, u32::MAX, MTU));
        assert_eq!(Some(cwnd), h.on_rtt(47 * MS, cwnd, u32::MAX, MTU));
        // A queue that doubles in one round: at once.
        assert_eq!(None, h.on_rtt(40 * MS, cwnd, u32::MAX, MTU));
        assert_eq!(Some(cwnd), h.on_rtt(80 * MS, cwnd, u32::MAX, MTU));
    }

    #[test]
    fn one_late_sample_small_windows_and_avoidance_are_left_alone() {
        let mut h = SlowStartExit::default();
        let cwnd = 100 * MTU;
        h.on_rtt(MS, cwnd, u32::MAX, MTU);
        for _ in 0..10 {
            // A 6 ms scheduling hiccup between normal samples on a 1 ms LAN.
            assert_eq!(None, h.on_rtt(MS, cwnd, u32::MAX, MTU));
            assert_eq!(None, h.on_rtt(6 * MS, cwnd, u32::MAX, MTU));
            assert_eq!(None, h.on_rtt(MS, cwnd, u32::MAX, MTU));
        }
        // Below 16 packets, and in congestion avoidance, the delay is not acted on.
        for _ in 0..3 {
            assert_eq!(None, h.on_rtt(30 * MS, 8 * MTU, u32::MAX, MTU));
            assert_eq!(None, h.on_rtt(30 * MS, cwnd, cwnd - 1, MTU));
        }
    }
}
