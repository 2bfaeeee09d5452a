//! Ferry patch: the association's congestion decisions behind one interface, so that a
//! model-based controller (`bbr`) can be selected beside upstream's Reno (RFC 9260 7.2
//! plus Ferry's HyStart exit) and the two compared on the same build.
//!
//! The association keeps loss *recovery* (miss indicators, fast-recovery state, T3-rtx
//! marking, what is resent); the controller only decides how much may be in flight
//! (`cwnd`) and, optionally, how fast it may leave (`pacing_rate`). `cwnd` and
//! `ssthresh` stay fields of `Association`, passed in as a [`Window`], because
//! upstream's tests set them directly and Reno must keep reading what they set.

use std::time::{Duration, Instant};

pub(crate) mod bbr;
mod delivery;
pub(crate) mod pacer;
#[cfg(test)]
mod sim_test;

use super::hystart::SlowStartExit;

/// Which congestion controller new associations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CongestionControlKind {
    /// Upstream's RFC 9260 slow start / congestion avoidance, with Ferry's delay-based
    /// slow-start exit. The default.
    #[default]
    Reno,
    /// Experimental: a BBR-style model of bottleneck bandwidth and minimum RTT, with
    /// pacing. Random loss does not shrink the model. Not yet measured end to end.
    Bbr,
}

/// The association's window variables, lent to the controller for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) cwnd: u32,
    pub(crate) ssthresh: u32,
}

/// One SACK's worth of acknowledgement, as the association saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckEvent {
    pub(crate) now: Instant,
    /// Payload bytes newly acknowledged, by the cumulative ack and gap blocks.
    pub(crate) bytes_acked: u32,
    pub(crate) cum_advanced: bool,
    /// Highest TSN this SACK newly acknowledged (HTNA), for delivery-rate sampling.
    pub(crate) highest_acked_tsn: u32,
    /// Payload bytes still outstanding after the SACK.
    pub(crate) inflight: u32,
    pub(crate) in_fast_recovery: bool,
    /// Data is waiting to be sent: the window, not the application, limits us.
    pub(crate) has_pending: bool,
    pub(crate) mtu: u32,
}

/// The decisions a congestion controller makes for the association.
pub(crate) trait CongestionController {
    /// DATA left: `bytes` of payload, the last new TSN if any was new data.
    fn on_sent(
        &mut self,
        now: Instant,
        bytes: u32,
        last_new_tsn: Option<u32>,
        inflight: u32,
        app_limited: bool,
    );
    /// An RTT measurement (Karn's rule applied by the caller).
    fn on_rtt_sample(&mut self, w: &mut Window, rtt: Duration, now: Instant, mtu: u32);
    /// A SACK was processed.
    fn on_ack(&mut self, w: &mut Window, ack: &AckEvent);
    /// A chunk reached three miss indications: `bytes` are considered lost.
    fn on_lost(&mut self, bytes: u32);
    /// Fast retransmit is entered (RFC 9260 7.2.4 step 2).
    fn on_fast_retransmit_entry(&mut self, w: &mut Window, now: Instant, mtu: u32);
    /// T3-rtx fired (RFC 9260 6.3.3 E1).
    fn on_timeout(&mut self, w: &mut Window, now: Instant, mtu: u32);
    fn in_slow_start(&self, w: &Window) -> bool;
    /// Bytes per second the sender should pace at; `None` sends at line rate.
    fn pacing_rate(&self) -> Option<u64>;
}

/// Upstream's behaviour, moved here unchanged: RFC 9260 7.2.1-7.2.3 with the TCP-style
/// slow-start increment and Ferry's HyStart exit.
#[derive(Debug, Default)]
pub(crate) struct Reno {
    partial_bytes_acked: u32,
    slow_start_exit: SlowStartExit,
}

impl CongestionController for Reno {
    fn on_sent(&mut self, _: Instant, _: u32, _: Option<u32>, _: u32, _: bool) {}

    fn on_rtt_sample(&mut self, w: &mut Window, rtt: Duration, _: Instant, mtu: u32) {
        if let Some(new) = self.slow_start_exit.on_rtt(rtt, w.cwnd, w.ssthresh, mtu) {
            w.ssthresh = new;
        }
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckEvent) {
        // Upstream grows cwnd only on a SACK that advances the cumulative ack point.
        if !ack.cum_advanced {
            return;
        }
        let total_bytes_acked = ack.bytes_acked;
        if w.cwnd <= w.ssthresh {
            // RFC 4960 7.2.1: grow only while the window is used, the cumulative ack
            // advances and not in fast recovery; by at most the bytes acked (the TCP
            // way; the SCTP way would be at most one MTU).
            if !ack.in_fast_recovery && ack.has_pending {
                w.cwnd += std::cmp::min(total_bytes_acked, w.cwnd);
                log::trace!(
                    "updated cwnd={} ssthresh={} acked={} (SS)",
                    w.cwnd,
                    w.ssthresh,
                    total_bytes_acked
                );
            } else {
                log::trace!(
                    "cwnd did not grow: cwnd={} ssthresh={} acked={} FR={} pending={}",
                    w.cwnd,
                    w.ssthresh,
                    total_bytes_acked,
                    ack.in_fast_recovery,
                    ack.has_pending
                );
            }
        } else {
            // RFC 4960 7.2.2: one MTU per cwnd's worth of acknowledged bytes.
            self.partial_bytes_acked += total_bytes_acked;
            if self.partial_bytes_acked >= w.cwnd && ack.has_pending {
                self.partial_bytes_acked -= w.cwnd;
                w.cwnd += ack.mtu;
                log::trace!(
                    "updated cwnd={} ssthresh={} acked={} (CA)",
                    w.cwnd,
                    w.ssthresh,
                    total_bytes_acked
                );
            }
        }
    }

    fn on_lost(&mut self, _: u32) {}

    fn on_fast_retransmit_entry(&mut self, w: &mut Window, _: Instant, mtu: u32) {
        // RFC 4960 7.2.3.
        w.ssthresh = std::cmp::max(w.cwnd / 2, 4 * mtu);
        w.cwnd = w.ssthresh;
        self.partial_bytes_acked = 0;
    }

    fn on_timeout(&mut self, w: &mut Window, _: Instant, mtu: u32) {
        // RFC 4960 6.3.3 E1 and 7.2.3. Upstream leaves partial_bytes_acked alone here.
        w.ssthresh = std::cmp::max(w.cwnd / 2, 4 * mtu);
        w.cwnd = mtu;
    }

    fn in_slow_start(&self, w: &Window) -> bool {
        w.cwnd <= w.ssthresh
    }

    fn pacing_rate(&self) -> Option<u64> {
        None
    }
}

/// The association's controller: an enum rather than a boxed trait object so that
/// `Association` keeps its auto traits and the default path stays a direct call.
#[derive(Debug)]
pub(crate) enum Controller {
    Reno(Reno),
    Bbr(Box<bbr::Bbr>),
}

impl Default for Controller {
    fn default() -> Self {
        Controller::Reno(Reno::default())
    }
}

impl Controller {
    pub(crate) fn new(kind: CongestionControlKind, now: Instant) -> Self {
        match kind {
            CongestionControlKind::Reno => Controller::Reno(Reno::default()),
            CongestionControlKind::Bbr => Controller::Bbr(Box::new(bbr::Bbr::new(now))),
        }
    }

    fn inner(&mut self) -> &mut dyn CongestionController {
        match self {
            Controller::Reno(c) => c,
            Controller::Bbr(c) => c.as_mut(),
        }
    }

    fn inner_ref(&self) -> &dyn CongestionController {
        match self {
            Controller::Reno(c) => c,
            Controller::Bbr(c) => c.as_ref(),
        }
    }
}

impl CongestionController for Controller {
    fn on_sent(
        &mut self,
        now: Instant,
        bytes: u32,
        last_new_tsn: Option<u32>,
        inflight: u32,
        app_limited: bool,
    ) {
        self.inner()
            .on_sent(now, bytes, last_new_tsn, inflight, app_limited)
    }
    fn on_rtt_sample(&mut self, w: &mut Window, rtt: Duration, now: Instant, mtu: u32) {
        self.inner().on_rtt_sample(w, rtt, now, mtu)
    }
    fn on_ack(&mut self, w: &mut Window, ack: &AckEvent) {
        self.inner().on_ack(w, ack)
    }
    fn on_lost(&mut self, bytes: u32) {
        self.inner().on_lost(bytes)
    }
    fn on_fast_retransmit_entry(&mut self, w: &mut Window, now: Instant, mtu: u32) {
        self.inner().on_fast_retransmit_entry(w, now, mtu)
    }
    fn on_timeout(&mut self, w: &mut Window, now: Instant, mtu: u32) {
        self.inner().on_timeout(w, now, mtu)
    }
    fn in_slow_start(&self, w: &Window) -> bool {
        self.inner_ref().in_slow_start(w)
    }
    fn pacing_rate(&self) -> Option<u64> {
        self.inner_ref().pacing_rate()
    }
}
