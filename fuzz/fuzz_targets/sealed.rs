//! Sealed signaling: what a client does with `pake`, `offer`, `answer` and `ice-candidate`
//! payloads relayed by a server that may be hostile (crypto.rs).
//! Invariants: no panic on any payload; nothing opens that the peer did not seal (random
//! payloads, any bit flipped in a real envelope, another kind, a replay); a forged envelope
//! does not burn the replay window, so the genuine one still opens after it; a confirmation
//! or fingerprint MAC verifies only when it is the real one.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ferry_fuzz::crypto::{CryptoError, Pake, RoomKeys, SealKind};
use ferry_fuzz::password::Password;
use ferry_proto::RoomId;
use ferry_proto::signal::Role;
use libfuzzer_sys::fuzz_target;

fn room() -> RoomId {
    "ABCDE-FGHJK".parse().expect("room id")
}

/// One real SPAKE2 run, done once: (host keys, guest keys).
fn keys() -> &'static (RoomKeys, RoomKeys) {
    static KEYS: OnceLock<(RoomKeys, RoomKeys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pw = Password::new("gladly-brave-otter");
        let (h, hm) = Pake::start(Role::Host, &room(), &pw);
        let (g, gm) = Pake::start(Role::Guest, &room(), &pw);
        (
            h.finish(&gm).expect("host finishes"),
            g.finish(&hm).expect("guest finishes"),
        )
    })
}

fn kind(b: u8) -> SealKind {
    match b % 3 {
        0 => SealKind::Offer,
        1 => SealKind::Answer,
        _ => SealKind::Ice,
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, k, rest @ ..] = data else {
        return;
    };
    let (host, guest) = keys();
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        // A server-supplied `spake2:` message.
        0 => {
            let (p, _) = Pake::start(Role::Guest, &room(), &Password::new("pw"));
            let _ = p.finish(&text);
        }
        // Any payload a server makes up.
        1 => {
            let mut s = guest.sealer();
            assert!(s.open(kind(*k), &text).is_err(), "opened a made-up payload");
        }
        // A genuine envelope with bits flipped by the input.
        2 => {
            let split = rest.len() / 2;
            let (plain, mask) = rest.split_at(split);
            let mut h = host.sealer();
            let genuine = h.seal(kind(*k), plain);
            let mut raw = B64.decode(&genuine).expect("own envelope decodes");
            for (i, m) in mask.iter().enumerate() {
                let at = i % raw.len();
                raw[at] ^= m;
            }
            // Trailing bytes past the mask's reach may grow the envelope too.
            if mask.len() > raw.len() {
                raw.extend_from_slice(&mask[raw.len()..]);
            }
            let forged = B64.encode(&raw);
            let mut g = guest.sealer();
            match g.open(kind(*k), &forged) {
                Ok(pt) => {
                    assert_eq!(forged, genuine, "a changed envelope opened");
                    assert_eq!(&pt[..], plain);
                    assert_eq!(g.open(kind(*k), &genuine), Err(CryptoError::Replay));
                }
                Err(_) => {
                    assert_eq!(
                        g.open(kind(*k).other_for_fuzz(), &genuine).err(),
                        Some(CryptoError::Unauthentic),
                        "opened as another kind"
                    );
                    let pt = g
                        .open(kind(*k), &genuine)
                        .expect("genuine opens after a forgery");
                    assert_eq!(&pt[..], plain);
                    assert_eq!(g.open(kind(*k), &genuine), Err(CryptoError::Replay));
                }
            }
        }
        // Key confirmation and the fingerprint MAC in `hello`.
        _ => {
            let real = guest.confirmation();
            assert_eq!(host.verify_confirmation(&text).is_ok(), text == real);
            let mac = guest.fingerprint_mac("sha-256 AA:BB", "sha-256 CC:DD");
            assert_eq!(
                host.verify_fingerprint_mac("sha-256 CC:DD", "sha-256 AA:BB", rest),
                rest == mac
            );
        }
    }
});

/// A different kind than `self`, to check the kind is bound into the envelope.
trait OtherKind {
    fn other_for_fuzz(self) -> SealKind;
}

impl OtherKind for SealKind {
    fn other_for_fuzz(self) -> SealKind {
        match self {
            SealKind::Offer => SealKind::Answer,
            SealKind::Answer => SealKind::Ice,
            SealKind::Ice => SealKind::Offer,
        }
    }
}
