//! Ferry patch: packetization-layer path MTU discovery (RFC 8899, §6.2.1 for SCTP).
//!
//! Every association starts at the 1191-byte base that fits any path (IPv6 minimum MTU, TURN
//! framing, DTLS). Each packet carries ~93 bytes of IP/UDP/DTLS/SCTP headers, so on a path that
//! takes 1500-byte packets the base wastes two percentage points of the link, and on loopback or
//! a jumbo-frame LAN, where the cost is per packet rather than per byte, far more. This search
//! sends HEARTBEAT + PAD probes of growing size; a HEARTBEAT-ACK proves that size crossed the
//! path (the sockets set "don't fragment"), and only then does the association use it.
//!
//! Plain state: the association asks for the next probe, reports acks and the clock; no I/O.

use std::time::{Duration, Instant};

/// Probe sizes tried in order, as whole SCTP packets (what `Association::mtu` counts).
///
/// 1328 fits a 1420-byte tunnel (WireGuard) and 1400 a 1500-byte path, each in every framing
/// (IPv6 + UDP + TURN channel + DTLS is 89 bytes), so a later switch between direct and
/// relayed candidates cannot black-hole them. The larger steps only pass on loopback or
/// jumbo-frame links; 16384 is the largest plaintext a DTLS record may carry. The search stops
/// at the first size that fails.
pub(crate) const PROBE_LADDER: [u32; 4] = [1328, 1400, 8192, 16384];

/// RFC 8899 MAX_PROBES: a size is given up after this many unanswered probes, so one random
/// loss does not end the search.
const MAX_PROBES: u32 = 3;

/// A probe is lost when unanswered for this long (at least; the caller passes its RTO).
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// The search for the largest packet the path carries.
#[derive(Debug)]
pub(crate) struct PmtuSearch {
    ladder: Vec<u32>,
    next: usize,
    attempts: u32,
    outstanding: Option<Probe>,
    serial: u64,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    size: u32,
    id: u64,
    deadline: Instant,
}

/// A probe to send now: exactly `size` bytes of SCTP packet, identified by `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeRequest {
    pub(crate) size: u32,
    pub(crate) id: u64,
}

impl PmtuSearch {
    /// A search from `current` up to `max` (both SCTP packet sizes). `None` when there is
    /// nothing above `current` to try.
    pub(crate) fn new(current: u32, max: u32) -> Option<Self> {
        let ladder: Vec<u32> = PROBE_LADDER
            .iter()
            .copied()
            .filter(|&s| s > current && s <= max)
            .collect();
        if ladder.is_empty() {
            return None;
        }
        Some(PmtuSearch {
            ladder,
            next: 0,
            attempts: 0,
            outstanding: None,
            serial: 0,
        })
    }

    /// True once every size has been confirmed or given up.
    pub(crate) fn is_done(&self) -> bool {
        self.next >= self.ladder.len()
    }

    /// The probe to send now, if one is due: none while one is in flight.
    pub(crate) fn poll_probe(&mut self, now: Instant, rto: Duration) -> Option<ProbeRequest> {
        if self.outstanding.is_some() || self.is_done() {
            return None;
        }
        let size = self.ladder[self.next];
        self.serial += 1;
        let id = self.serial;
        self.outstanding = Some(Probe {
            size,
            id,
            deadline: now + rto.max(MIN_PROBE_TIMEOUT),
        });
        self.attempts += 1;
        Some(ProbeRequest { size, id })
    }

    /// A HEARTBEAT-ACK echoed `id`: returns the newly confirmed size, if it answers the probe in
    /// flight (an ack for an older, timed-out probe still proves its size).
    pub(crate) fn on_ack(&mut self, id: u64, confirmed_size: u32) -> Option<u32> {
        let current = self.ladder.get(self.next).copied()?;
        // Acks carry the size they probed; a late ack of a size below the current step
        // confirms nothing new.
        if confirmed_size < current || id == 0 || id > self.serial {
            return None;
        }
        self.outstanding = None;
        self.attempts = 0;
        // Every step up to the confirmed size is passed.
        while self.next < self.ladder.len() && self.ladder[self.next] <= confirmed_size {
            self.next += 1;
        }
        Some(confirmed_size)
    }

    /// Advances the clock: an unanswered probe past its deadline counts as lost.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        let Some(p) = self.outstanding else { return };
        if now < p.deadline {
            return;
        }
        self.outstanding = None;
        if self.attempts >= MAX_PROBES {
            // This size does not pass; larger ones will not either.
            self.next = self.ladder.len();
        }
    }

    /// When [`Self::on_timeout`] next has something to do.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.outstanding.map(|p| p.deadline)
    }
}

/// HEARTBEAT info of a probe: a tag, the probe's id and its size, so the ack alone says which
/// size it proves.
pub(crate) fn encode_probe_info(req: ProbeRequest) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(PROBE_TAG);
    b[4..12].copy_from_slice(&req.id.to_be_bytes());
    b[12..].copy_from_slice(&req.size.to_be_bytes());
    b
}

/// The probe an echoed HEARTBEAT info names, if it is one of ours.
pub(crate) fn decode_probe_info(info: &[u8]) -> Option<ProbeRequest> {
    if info.len() != 16 || &info[..4] != PROBE_TAG {
        return None;
    }
    let id = u64::from_be_bytes(info[4..12].try_into().ok()?);
    let size = u32::from_be_bytes(info[12..].try_into().ok()?);
    Some(ProbeRequest { size, id })
}

const PROBE_TAG: &[u8; 4] = b"PMTU";

#[cfg(test)]
mod tests {
    use super::*;

    const RTO: Duration = Duration::from_millis(300);

    #[test]
    fn climbs_the_ladder_as_probes_are_acked() {
        let t0 = Instant::now();
        let mut s = PmtuSearch::new(1191, 16384).unwrap();
        let p = s.poll_probe(t0, RTO).unwrap();
        assert_eq!(p.size, 1328);
        assert_eq!(s.poll_probe(t0, RTO), None, "one probe in flight at a time");
        assert_eq!(s.on_ack(p.id, p.size), Some(1328));
        let p = s.poll_probe(t0, RTO).unwrap();
        assert_eq!(p.size, 1400);
        assert_eq!(s.on_ack(p.id, p.size), Some(1400));
        let p = s.poll_probe(t0, RTO).unwrap();
        assert_eq!(p.size, 8192);
        assert_eq!(s.on_ack(p.id, p.size), Some(8192));
        let p = s.poll_probe(t0, RTO).unwrap();
        assert_eq!(p.size, 16384);
        assert_eq!(s.on_ack(p.id, p.size), Some(16384));
        assert!(s.is_done());
        assert_eq!(s.poll_probe(t0, RTO), None);
    }

    #[test]
    fn a_size_is_given_up_after_three_lost_probes_and_the_search_ends() {
        let t0 = Instant::now();
        let mut s = PmtuSearch::new(1191, 16384).unwrap();
        for _ in 0..2 {
            let p = s.poll_probe(t0, RTO).unwrap();
            s.on_ack(p.id, p.size);
        }
        let mut now = t0;
        for attempt in 1..=3 {
            let p = s.poll_probe(now, RTO).unwrap();
            assert_eq!(p.size, 8192, "attempt {attempt}");
            s.on_timeout(now + RTO / 2);
            assert!(s.deadline().is_some(), "not lost before its deadline");
            now += RTO;
            s.on_timeout(now);
        }
        assert!(s.is_done(), "three losses end the search below 8192");
        assert_eq!(s.poll_probe(now, RTO), None);
    }

    #[test]
    fn one_lost_probe_is_retried_and_a_late_ack_still_counts() {
        let t0 = Instant::now();
        let mut s = PmtuSearch::new(1328, 1400).unwrap();
        let first = s.poll_probe(t0, RTO).unwrap();
        s.on_timeout(t0 + RTO);
        let second = s.poll_probe(t0 + RTO, RTO).unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(
            s.on_ack(first.id, first.size),
            Some(1400),
            "the first one arrived after all"
        );
        assert!(s.is_done());
    }

    #[test]
    fn acks_that_prove_nothing_new_are_ignored() {
        let t0 = Instant::now();
        let mut s = PmtuSearch::new(1191, 16384).unwrap();
        let p = s.poll_probe(t0, RTO).unwrap();
        assert_eq!(s.on_ack(p.id + 7, p.size), None, "an id never sent");
        assert_eq!(s.on_ack(p.id, 1300), None, "a size below the step");
        assert_eq!(s.on_ack(p.id, p.size), Some(1328));
    }

    #[test]
    fn nothing_to_search_when_the_ceiling_is_at_or_below_the_start() {
        assert!(PmtuSearch::new(1191, 1191).is_none());
        assert!(PmtuSearch::new(1400, 1400).is_none());
        assert!(PmtuSearch::new(16384, 65535).is_none());
        // A configured MTU above the first step skips it.
        let mut s = PmtuSearch::new(1500, 16384).unwrap();
        assert_eq!(s.poll_probe(Instant::now(), RTO).unwrap().size, 8192);
    }

    #[test]
    fn probe_info_round_trips_and_foreign_heartbeats_are_not_probes() {
        let req = ProbeRequest { size: 8192, id: 42 };
        assert_eq!(decode_probe_info(&encode_probe_info(req)), Some(req));
        assert_eq!(decode_probe_info(b"some other heartbeat"), None);
        assert_eq!(decode_probe_info(&[0u8; 16]), None);
    }
}
