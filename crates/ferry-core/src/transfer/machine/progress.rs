//! Rate/ETA bookkeeping and throttled progress events, on the caller's clock.

use std::time::Instant;

use crate::events::Event;

use crate::defaults::PROGRESS_EVERY as EVERY;

#[derive(Debug)]
pub(crate) struct Progress {
    started: Instant,
    base: u64,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    pub(crate) fn new(now: Instant, base: u64, total: u64) -> Self {
        Self {
            started: now,
            base,
            total,
            last: None,
        }
    }

    pub(crate) fn rate(&self, now: Instant, done: u64) -> u64 {
        let secs = now.saturating_duration_since(self.started).as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (done.saturating_sub(self.base) as f64 / secs) as u64
    }

    /// A progress event, unless one went out in the last 100 ms (`force` overrides).
    pub(crate) fn event(
        &mut self,
        now: Instant,
        file: &str,
        done: u64,
        force: bool,
    ) -> Option<Event> {
        if !force
            && self
                .last
                .is_some_and(|l| now.saturating_duration_since(l) < EVERY)
        {
            return None;
        }
        self.last = Some(now);
        let rate = self.rate(now, done);
        let eta = (rate > 0).then(|| self.total.saturating_sub(done) / rate);
        Some(Event::Progress {
            file: file.to_string(),
            bytes_done: done,
            total: self.total,
            rate_bps: rate,
            eta_secs: eta,
        })
    }

    pub(crate) fn secs(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.started).as_secs_f64()
    }
}
