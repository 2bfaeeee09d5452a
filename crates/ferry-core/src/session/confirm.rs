//! Key confirmation as a plain state machine (no I/O): which side reveals its tag when, and
//! which endings of a run count as a failed password guess. `handshake.rs` pumps signaling
//! messages through it; the order it enforces is CRYPTO.md §3.

use ferry_proto::signal::Role;

use super::ConnectError;
use crate::crypto::{PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX, Pake, RoomKeys};

/// What the PAKE step wants done after a message.
pub(super) enum PakeOut {
    Wait,
    Send(String),
    /// Key confirmed; the host still owes the guest its own tag.
    Done(RoomKeys, Option<String>),
}

/// The key-confirmation order as a plain state machine (no I/O), so each path is unit tested.
pub(super) struct PakeStep {
    role: Role,
    pake: Option<Pake>,
    keys: Option<RoomKeys>,
    /// Our tag is out: from here on, a run that ends without a valid peer tag is a failed
    /// guess (somebody may test a password against what we sent).
    revealed: bool,
}

impl PakeStep {
    pub(super) fn new(role: Role, pake: Pake) -> Self {
        PakeStep {
            role,
            pake: Some(pake),
            keys: None,
            revealed: false,
        }
    }

    pub(super) fn on_message(&mut self, payload: &str) -> Result<PakeOut, ConnectError> {
        if payload.starts_with(PAKE_MSG_PREFIX) {
            let Some(p) = self.pake.take() else {
                // A second SPAKE2 message: after our tag is out, treat it as the failed guess
                // it may be; before, it is only a broken peer.
                return Err(self.ended(ConnectError::Protocol("second PAKE message".into())));
            };
            // A malformed SPAKE2 message is a wrong password as far as either side can tell.
            let k = p.finish(payload).map_err(|_| ConnectError::WrongPassword)?;
            let out = match self.role {
                Role::Guest => {
                    self.revealed = true;
                    PakeOut::Send(k.confirmation())
                }
                Role::Host => PakeOut::Wait,
            };
            self.keys = Some(k);
            return Ok(out);
        }
        if payload.starts_with(PAKE_CONFIRM_PREFIX) {
            let Some(k) = self.keys.take() else {
                // A tag before the key: the peer cannot hold the key, so it guessed nothing.
                return Err(ConnectError::Protocol(
                    "confirmation before the PAKE message".into(),
                ));
            };
            if k.verify_confirmation(payload).is_err() {
                return Err(ConnectError::WrongPassword);
            }
            return Ok(match self.role {
                Role::Host => {
                    let tag = k.confirmation();
                    PakeOut::Done(k, Some(tag))
                }
                Role::Guest => PakeOut::Done(k, None),
            });
        }
        Err(self.ended(ConnectError::Protocol("unknown PAKE payload".into())))
    }

    /// The run ends for `e` before the key was confirmed: once our tag is out, that is a
    /// failed password attempt whatever the cause (the peer left, went silent, sent garbage,
    /// or the server dropped our socket), so it is never silently retried.
    pub(super) fn ended(&self, e: ConnectError) -> ConnectError {
        if self.revealed {
            tracing::debug!("run ended after our confirmation tag went out: {e}");
            ConnectError::WrongPassword
        } else {
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::Password;
    use ferry_proto::RoomId;

    fn pair(host_pw: &str, guest_pw: &str) -> ((PakeStep, String), (PakeStep, String)) {
        let room = RoomId::random();
        let (hp, hmsg) = Pake::start(Role::Host, &room, &Password::new(host_pw));
        let (gp, gmsg) = Pake::start(Role::Guest, &room, &Password::new(guest_pw));
        (
            (PakeStep::new(Role::Host, hp), hmsg),
            (PakeStep::new(Role::Guest, gp), gmsg),
        )
    }

    fn sent(out: Result<PakeOut, ConnectError>) -> String {
        match out {
            Ok(PakeOut::Send(p)) => p,
            Ok(PakeOut::Wait) => panic!("expected a tag, got Wait"),
            Ok(PakeOut::Done(..)) => panic!("expected a tag, got Done"),
            Err(e) => panic!("expected a tag, got {e}"),
        }
    }

    #[test]
    fn the_guest_proves_the_key_first_and_the_host_answers_only_then() {
        let ((mut host, hmsg), (mut guest, gmsg)) = pair("pw", "pw");
        // The host learns the key from the guest's message but reveals nothing keyed.
        assert!(matches!(host.on_message(&gmsg), Ok(PakeOut::Wait)));
        let gtag = sent(guest.on_message(&hmsg));
        assert!(gtag.starts_with(PAKE_CONFIRM_PREFIX));
        let (hkeys, htag) = match host.on_message(&gtag) {
            Ok(PakeOut::Done(k, Some(t))) => (k, t),
            _ => panic!("host should confirm and answer"),
        };
        let gkeys = match guest.on_message(&htag) {
            Ok(PakeOut::Done(k, None)) => k,
            _ => panic!("guest should confirm"),
        };
        assert_eq!(hkeys.verification_code(), gkeys.verification_code());
    }

    #[test]
    fn a_wrong_guess_gets_no_host_tag_and_is_a_wrong_password() {
        let ((mut host, hmsg), (mut guest, gmsg)) = pair("right", "guess");
        assert!(matches!(host.on_message(&gmsg), Ok(PakeOut::Wait)));
        let gtag = sent(guest.on_message(&hmsg));
        assert!(matches!(
            host.on_message(&gtag),
            Err(ConnectError::WrongPassword)
        ));
    }

    #[test]
    fn a_run_that_ends_after_the_guests_tag_is_a_failed_attempt() {
        for end in [
            ConnectError::PeerLeft,
            ConnectError::Timeout,
            ConnectError::Signaling("closed".into()),
            ConnectError::RoomClosed,
        ] {
            let ((_, hmsg), (mut guest, _)) = pair("pw", "pw");
            // Before the guest's tag is out an ending keeps its own cause (retryable).
            assert!(!matches!(
                guest.ended(ConnectError::PeerLeft),
                ConnectError::WrongPassword
            ));
            sent(guest.on_message(&hmsg));
            assert!(matches!(guest.ended(end), ConnectError::WrongPassword));
        }
        // Garbage or a second SPAKE2 message where the host's tag belongs count the same.
        let ((_, hmsg), (mut guest, _)) = pair("pw", "pw");
        sent(guest.on_message(&hmsg));
        assert!(matches!(
            guest.on_message(&hmsg),
            Err(ConnectError::WrongPassword)
        ));
        let ((_, hmsg), (mut guest, _)) = pair("pw", "pw");
        sent(guest.on_message(&hmsg));
        assert!(matches!(
            guest.on_message("nonsense"),
            Err(ConnectError::WrongPassword)
        ));
        assert!(matches!(
            guest.on_message("confirm:AAAA"),
            Err(ConnectError::WrongPassword)
        ));
    }

    #[test]
    fn the_host_never_counts_a_guest_that_proved_nothing() {
        let ((mut host, _), (_, gmsg)) = pair("pw", "pw");
        // A tag before any key, garbage, a second SPAKE2: protocol errors, not guesses.
        assert!(matches!(
            host.on_message("confirm:AAAA"),
            Err(ConnectError::Protocol(_))
        ));
        assert!(matches!(host.on_message(&gmsg), Ok(PakeOut::Wait)));
        assert!(matches!(
            host.on_message(&gmsg),
            Err(ConnectError::Protocol(_))
        ));
        assert!(matches!(
            host.ended(ConnectError::PeerLeft),
            ConnectError::PeerLeft
        ));
    }
}
