//! The emulated link as plain arithmetic: when each packet leaves, or why it never does.
//!
//! Model (the same as netem's `rate` + `delay` + `loss` with a byte-limited tail-drop queue):
//! a packet that survives the loss draw waits behind everything already queued, takes
//! `len * 8 / rate` to serialize onto the wire, then spends the constant one-way delay in
//! flight. Because the delay is constant and departures are serialized, release times never
//! decrease, so a FIFO ordered by arrival is also ordered by release time — no timer wheel.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Times are nanoseconds on the caller's monotonic clock.
pub(crate) type Nanos = u64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    /// One-way delay added to every packet.
    pub delay_ns: Nanos,
    /// Bottleneck rate in bits per second; `None` = no rate limit.
    pub rate_bps: Option<f64>,
    /// Probability in [0, 1] that a packet is dropped before it is queued.
    pub loss: f64,
    /// Bytes the bottleneck queue holds (waiting + serializing); more is tail-dropped.
    pub queue_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand the packet back to the kernel at this time.
    Release(Nanos),
    /// Random loss.
    Lost,
    /// The bottleneck queue was full.
    QueueFull,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub lost: u64,
    pub queue_drops: u64,
}

/// Decides each packet's fate; owns no packets.
pub(crate) struct Link {
    shape: Shape,
    /// When the last accepted packet finishes serializing.
    wire_free_at: Nanos,
    rng: StdRng,
    pub counters: Counters,
}

impl Link {
    pub(crate) fn new(shape: Shape, seed: u64) -> Self {
        Self {
            shape,
            wire_free_at: 0,
            rng: StdRng::seed_from_u64(seed),
            counters: Counters::default(),
        }
    }

    /// Bytes queued at the bottleneck (including the one serializing) at `now`.
    pub(crate) fn backlog_bytes(&self, now: Nanos) -> u64 {
        match self.shape.rate_bps {
            Some(bps) => (self.wire_free_at.saturating_sub(now) as f64 * bps / 8e9) as u64,
            None => 0,
        }
    }

    pub(crate) fn offer(&mut self, now: Nanos, len: usize) -> Verdict {
        self.counters.packets_in += 1;
        self.counters.bytes_in += len as u64;
        if self.shape.loss > 0.0 && self.rng.gen_bool(self.shape.loss.min(1.0)) {
            self.counters.lost += 1;
            return Verdict::Lost;
        }
        let leaves = match self.shape.rate_bps {
            Some(bps) => {
                if self.backlog_bytes(now) + len as u64 > self.shape.queue_bytes {
                    self.counters.queue_drops += 1;
                    return Verdict::QueueFull;
                }
                let serialize = (len as f64 * 8e9 / bps).round() as Nanos;
                self.wire_free_at = self.wire_free_at.max(now) + serialize;
                self.wire_free_at
            }
            None => now,
        };
        Verdict::Release(leaves + self.shape.delay_ns)
    }
}

/// Packets in flight, oldest first. Buffers are recycled so the steady state allocates nothing.
pub(crate) struct DelayLine {
    queue: VecDeque<(Nanos, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
}

impl DelayLine {
    pub(crate) fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(4096),
            spare: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Copies `packet` in; `at` must not be earlier than the last pushed time.
    pub(crate) fn push(&mut self, at: Nanos, packet: &[u8]) {
        debug_assert!(self.queue.back().is_none_or(|(t, _)| *t <= at));
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.queue.push_back((at, buf));
    }

    /// When the oldest packet is due.
    pub(crate) fn next_due(&self) -> Option<Nanos> {
        self.queue.front().map(|(t, _)| *t)
    }

    /// Takes the oldest packet if it is due at `now`; give the buffer back with `recycle`.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<Vec<u8>> {
        match self.queue.front() {
            Some((t, _)) if *t <= now => self.queue.pop_front().map(|(_, p)| p),
            _ => None,
        }
    }

    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        // Bound the pool: a burst must not pin its peak memory forever.
        if self.spare.len() < 8192 {
            self.spare.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn shape(delay_ms: u64, mbit: Option<f64>, loss: f64, queue: u64) -> Shape {
        Shape {
            delay_ns: delay_ms * MS,
            rate_bps: mbit.map(|m| m * 1e6),
            loss,
            queue_bytes: queue,
        }
    }

    #[test]
    fn delay_only_adds_the_delay_to_each_arrival() {
        let mut l = Link::new(shape(20, None, 0.0, 0), 1);
        assert_eq!(l.offer(0, 1500), Verdict::Release(20 * MS));
        assert_eq!(l.offer(5, 1500), Verdict::Release(20 * MS + 5));
        assert_eq!(l.backlog_bytes(5), 0);
    }

    #[test]
    fn back_to_back_packets_leave_one_serialization_time_apart() {
        // 1500 B at 100 Mbit/s = 120 us on the wire.
        let mut l = Link::new(shape(20, Some(100.0), 0.0, 1 << 20), 1);
        let times: Vec<Nanos> = (0..4)
            .map(|_| match l.offer(0, 1500) {
                Verdict::Release(t) => t,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(times[0], 120_000 + 20 * MS);
        for w in times.windows(2) {
            assert_eq!(w[1] - w[0], 120_000);
        }
        assert_eq!(l.backlog_bytes(0), 6000);
        assert_eq!(l.backlog_bytes(240_000), 3000);
    }

    #[test]
    fn an_idle_link_does_not_bank_credit() {
        let mut l = Link::new(shape(0, Some(100.0), 0.0, 1 << 20), 1);
        assert_eq!(l.offer(0, 1500), Verdict::Release(120_000));
        // Long after the wire went idle, the next packet still pays its own serialization.
        assert_eq!(l.offer(10 * MS, 1500), Verdict::Release(10 * MS + 120_000));
    }

    #[test]
    fn sustained_overload_converges_to_the_rate_and_tail_drops_the_rest() {
        // Offer 2 Gbit/s to a 1 Gbit/s link for 100 ms with a 64 KiB queue.
        let queue = 64 * 1024;
        let mut l = Link::new(shape(1, Some(1000.0), 0.0, queue), 1);
        let (mut released, mut last) = (0u64, 0);
        for i in 0..(100 * MS / 6_000) {
            let now = i * 6_000; // 1500 B every 6 us = 2 Gbit/s
            if let Verdict::Release(t) = l.offer(now, 1500) {
                released += 1500;
                last = t;
            }
            assert!(l.backlog_bytes(now) <= queue);
        }
        let secs = (last - MS) as f64 / 1e9;
        let gbit = released as f64 * 8.0 / secs / 1e9;
        assert!((gbit - 1.0).abs() < 0.01, "{gbit}");
        assert!(l.counters.queue_drops > 0);
        assert_eq!(
            l.counters.packets_in,
            released / 1500 + l.counters.queue_drops
        );
    }

    #[test]
    fn loss_rate_matches_and_the_seed_reproduces_it() {
        let run = |seed| {
            let mut l = Link::new(shape(0, None, 0.01, 0), seed);
            (0..200_000).for_each(|i| {
                l.offer(i, 100);
            });
            l.counters.lost
        };
        let lost = run(7);
        assert!((1_700..2_300).contains(&lost), "{lost}");
        assert_eq!(lost, run(7));
        assert_ne!(lost, run(8));
    }

    #[test]
    fn delay_line_releases_in_order_only_when_due_and_reuses_buffers() {
        let mut d = DelayLine::new();
        d.push(10, b"one");
        d.push(10, b"two");
        d.push(30, b"three");
        assert_eq!(d.next_due(), Some(10));
        assert!(d.pop_due(9).is_none());
        let a = d.pop_due(10).unwrap();
        assert_eq!(a, b"one");
        let cap = a.capacity();
        let ptr = a.as_ptr();
        d.recycle(a);
        assert_eq!(d.pop_due(20).unwrap(), b"two");
        assert!(d.pop_due(20).is_none());
        d.push(40, b"fou");
        assert_eq!(d.len(), 2);
        assert_eq!(d.pop_due(100).unwrap(), b"three");
        let reused = d.pop_due(100).unwrap();
        assert_eq!(reused, b"fou");
        assert_eq!((reused.capacity(), reused.as_ptr()), (cap, ptr));
    }
}
