//! Server-side counting of password guesses, pure.
//!
//! From signaling v2 the guest sends its key-confirmation tag first and the host answers only
//! a valid one with its own. So a guest's tag that the host does not answer is one failed
//! guess, whatever the host reports and whenever the guest leaves. The server sees only the
//! payload's `confirm:` prefix (see [`crate::relay::is_confirm`]), never the tag.
//!
//! One `GuessRun` per guest seat (a run: from join to leave); at most one failure per run.

/// Where the current (or last) guest run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuessRun {
    /// No confirmation tag from the guest yet.
    #[default]
    Idle,
    /// The guest's tag went to the host; no answer yet.
    Pending,
    /// The host answered with its own tag: the guest knew the password.
    Confirmed,
    /// This run has been counted as a failed guess.
    Counted,
}

impl GuessRun {
    /// The guest relayed a `pake`. Only its first confirmation tag matters: a second one, or
    /// anything after it, changes nothing.
    pub fn guest_pake(&mut self, confirm: bool) {
        if confirm && *self == GuessRun::Idle {
            *self = GuessRun::Pending;
        }
    }

    /// The host relayed a `pake`; a confirmation tag answers the guest's.
    pub fn host_pake(&mut self, confirm: bool) {
        if confirm && *self == GuessRun::Pending {
            *self = GuessRun::Confirmed;
        }
    }

    /// The host reported `handshake-failed`. True when this counts as a failure: only a run
    /// whose guest showed a tag can be a guess, and only once. A report for a run the server
    /// already counted (its guest left first) can arrive after the next guest joined; it must
    /// neither count again nor touch that guest.
    pub fn host_reported(&mut self) -> bool {
        if *self != GuessRun::Pending {
            return false;
        }
        *self = GuessRun::Counted;
        true
    }

    /// The guest's run ended without a host verdict. True when it counts as a failure: its
    /// tag went out and was never answered.
    pub fn ended(&mut self) -> bool {
        if *self == GuessRun::Pending {
            *self = GuessRun::Counted;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::GuessRun::*;
    use super::*;

    #[test]
    fn unanswered_tag_counts_once() {
        let mut g = GuessRun::default();
        g.guest_pake(false);
        assert_eq!(g, Idle);
        g.guest_pake(true);
        assert_eq!(g, Pending);
        g.guest_pake(true);
        g.guest_pake(false);
        assert_eq!(g, Pending, "second tag or later pake: still one guess");
        assert!(g.ended());
        assert!(!g.ended());
        assert!(
            !g.host_reported(),
            "a late report of the same run counts nothing"
        );
    }

    #[test]
    fn answered_tag_is_not_a_failure() {
        let mut g = GuessRun::default();
        g.host_pake(true);
        assert_eq!(g, Idle, "a host tag before the guest's answers nothing");
        g.guest_pake(true);
        g.host_pake(false);
        assert_eq!(g, Pending);
        g.host_pake(true);
        assert_eq!(g, Confirmed);
        assert!(!g.ended());
        g.guest_pake(true);
        assert_eq!(g, Confirmed);
    }

    #[test]
    fn host_report_counts_once_per_run() {
        let mut g = GuessRun::default();
        g.guest_pake(true);
        assert!(g.host_reported());
        assert!(!g.host_reported());
        assert!(!g.ended());
        // A report with no tag in this run is stale (an earlier guest's, already counted).
        let mut h = GuessRun::default();
        assert!(!h.host_reported());
        assert_eq!(h, Idle);
    }
}
