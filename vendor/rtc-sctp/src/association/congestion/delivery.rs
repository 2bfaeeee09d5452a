//! Ferry patch: delivery-rate estimation for the BBR-style controller (after the CCWG
//! "Delivery Rate Estimation" draft), per send batch rather than per packet: SCTP's SACK
//! names TSNs, and the highest TSN a SACK newly acknowledges (HTNA) picks the newest
//! batch it covers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::util::sna32lte;

/// Bounds the flight records kept (each is a send batch, not a chunk).
const MAX_RECORDS: usize = 8192;

/// What the connection looked like when a batch of DATA left: a rate sample divides the
/// bytes delivered since then by the time it took.
#[derive(Debug, Clone, Copy)]
struct SendRecord {
    last_tsn: u32,
    sent_time: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
}

/// One SACK's rate sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// Bytes delivered when the sampled batch was sent (round counting).
    pub(super) prior_delivered: u64,
    /// Bytes per second; None when the interval was too short to mean anything.
    pub(super) rate: Option<u64>,
    /// The sender had nothing to send when the batch left: the rate is a lower bound.
    pub(super) app_limited: bool,
}

#[derive(Debug)]
pub(super) struct DeliveryRate {
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    /// Nonzero while the sender is application-limited: until `delivered` passes it.
    app_limited_until: u64,
    records: VecDeque<SendRecord>,
}

impl DeliveryRate {
    pub(super) fn new(now: Instant) -> Self {
        DeliveryRate {
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited_until: 0,
            records: VecDeque::new(),
        }
    }

    /// Payload bytes acknowledged so far.
    pub(super) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// New DATA up to `last_tsn` left; `inflight` includes it.
    pub(super) fn on_sent(
        &mut self,
        now: Instant,
        bytes: u32,
        last_tsn: u32,
        inflight: u32,
        app_limited: bool,
    ) {
        if inflight <= bytes {
            // Sending into an empty pipe: the sample interval starts now.
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        if app_limited {
            self.app_limited_until = (self.delivered + u64::from(inflight)).max(1);
        }
        if self.records.len() >= MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(SendRecord {
            last_tsn,
            sent_time: now,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.app_limited_until != 0,
        });
    }

    /// A SACK newly acknowledged `bytes_acked`, the highest of them `highest_acked_tsn`.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        bytes_acked: u32,
        highest_acked_tsn: u32,
        min_rtt: Option<Duration>,
    ) -> Option<Sample> {
        if bytes_acked == 0 {
            return None;
        }
        self.delivered += u64::from(bytes_acked);
        self.delivered_time = now;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let rec = self.take_record(highest_acked_tsn)?;
        let send_elapsed = rec.sent_time.saturating_duration_since(rec.first_sent_time);
        let ack_elapsed = now.saturating_duration_since(rec.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        self.first_sent_time = rec.sent_time;
        // Shorter than the min RTT, an interval measures ack compression, not the path.
        let long_enough = min_rtt.is_none_or(|m| interval >= m);
        let rate = (!interval.is_zero() && long_enough)
            .then(|| ((self.delivered - rec.delivered) as f64 / interval.as_secs_f64()) as u64);
        Some(Sample {
            prior_delivered: rec.delivered,
            rate,
            app_limited: rec.app_limited,
        })
    }

    /// The newest flight record this SACK covers, per the draft's rate sampling.
    fn take_record(&mut self, highest_acked_tsn: u32) -> Option<SendRecord> {
        let mut last = None;
        while let Some(r) = self.records.front() {
            if !sna32lte(r.last_tsn, highest_acked_tsn) {
                break;
            }
            last = self.records.pop_front();
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 KB sent at t0 and acknowledged 100 ms later is 100 KB/s. The next batch,
    /// sent 10 ms later, is measured from the same start: 20 KB over 110 ms.
    #[test]
    fn a_batch_acked_one_rtt_later_gives_its_bytes_per_rtt() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut d = DeliveryRate::new(t0);
        d.on_sent(t0, 10_000, 10, 10_000, false);
        d.on_sent(t0 + 10 * ms, 10_000, 20, 20_000, false);
        // A SACK below the first batch's last TSN samples nothing yet.
        assert!(d.on_ack(t0 + 90 * ms, 5_000, 5, None).is_none());
        let s = d.on_ack(t0 + 100 * ms, 5_000, 10, None).unwrap();
        assert_eq!(Some(100_000), s.rate);
        assert_eq!(0, s.prior_delivered);
        let s = d.on_ack(t0 + 110 * ms, 10_000, 20, Some(100 * ms)).unwrap();
        assert_eq!(Some(181_818), s.rate);
        // Shorter than the min RTT: no rate.
        d.on_sent(t0 + 111 * ms, 1_000, 21, 1_000, false);
        let s = d.on_ack(t0 + 120 * ms, 1_000, 21, Some(100 * ms)).unwrap();
        assert_eq!(None, s.rate);
        assert_eq!(20_000, s.prior_delivered);
        assert_eq!(21_000, d.delivered());
    }

    #[test]
    fn app_limited_batches_are_flagged_until_their_data_is_delivered() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut d = DeliveryRate::new(t0);
        d.on_sent(t0, 1_000, 1, 1_000, true);
        d.on_sent(t0 + ms, 1_000, 2, 2_000, false);
        let s = d.on_ack(t0 + 50 * ms, 1_000, 1, None).unwrap();
        assert!(s.app_limited);
        // Still app-limited: the mark (delivered + inflight at send) is not yet passed.
        let s = d.on_ack(t0 + 51 * ms, 1_000, 2, None).unwrap();
        assert!(s.app_limited);
        d.on_sent(t0 + 52 * ms, 1_000, 3, 1_000, false);
        let s = d.on_ack(t0 + 100 * ms, 1_000, 3, None).unwrap();
        assert!(!s.app_limited);
    }
}
