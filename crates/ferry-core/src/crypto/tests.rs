use super::*;

fn room() -> RoomId {
    "ABCDE-FGHJK".parse().unwrap()
}

fn run(host_pw: &str, guest_pw: &str, guest_room: RoomId) -> (RoomKeys, RoomKeys) {
    let (h, hm) = Pake::start(Role::Host, &room(), &Password::new(host_pw));
    let (g, gm) = Pake::start(Role::Guest, &guest_room, &Password::new(guest_pw));
    (h.finish(&gm).unwrap(), g.finish(&hm).unwrap())
}

#[test]
fn same_password_confirms_both_ways() {
    let (h, g) = run("gladly-brave-otter", "gladly-brave-otter", room());
    h.verify_confirmation(&g.confirmation()).unwrap();
    g.verify_confirmation(&h.confirmation()).unwrap();
    assert_eq!(h.verification_code(), g.verification_code());
    assert_eq!(h.verification_code().len(), 11);
}

#[test]
fn wrong_password_fails_confirmation_both_ways() {
    let (h, g) = run("gladly-brave-otter", "gladly-brave-otters", room());
    assert_eq!(
        h.verify_confirmation(&g.confirmation()),
        Err(CryptoError::ConfirmationFailed)
    );
    assert_eq!(
        g.verify_confirmation(&h.confirmation()),
        Err(CryptoError::ConfirmationFailed)
    );
    assert_ne!(h.verification_code(), g.verification_code());
}

#[test]
fn other_room_fails_confirmation() {
    let (h, g) = run("pw", "pw", "ZZZZZ-ZZZZZ".parse().unwrap());
    assert!(h.verify_confirmation(&g.confirmation()).is_err());
}

#[test]
fn reflected_confirmation_is_rejected() {
    let (h, _g) = run("pw", "pw", room());
    assert_eq!(
        h.verify_confirmation(&h.confirmation()),
        Err(CryptoError::ConfirmationFailed)
    );
}

#[test]
fn garbage_pake_messages_are_errors() {
    let (h, _) = Pake::start(Role::Host, &room(), &Password::new("pw"));
    assert_eq!(h.finish("nope").err(), Some(CryptoError::BadPakeMessage));
    let (h, _) = Pake::start(Role::Host, &room(), &Password::new("pw"));
    assert_eq!(
        h.finish("spake2:!!!").err(),
        Some(CryptoError::BadPakeMessage)
    );
    let (h, _) = Pake::start(Role::Host, &room(), &Password::new("pw"));
    assert!(h.finish("spake2:AAAA").is_err());
    let (h, g) = run("pw", "pw", room());
    assert!(h.verify_confirmation("confirm:AAAA").is_err());
    assert!(g.verify_confirmation("garbage").is_err());
}

#[test]
fn sealing_roundtrips_and_detects_tampering() {
    let (h, g) = run("pw", "pw", room());
    let (mut hs, mut gs) = (h.sealer(), g.sealer());
    let offer = hs.seal(SealKind::Offer, b"v=0 sdp");
    assert!(!offer.contains("sdp"));
    assert_eq!(&gs.open(SealKind::Offer, &offer).unwrap()[..], b"v=0 sdp");

    // Any flipped bit is rejected.
    let ice = hs.seal(
        SealKind::Ice,
        b"candidate:1 1 udp 1 127.0.0.1 5000 typ host",
    );
    let mut raw = B64.decode(&ice).unwrap();
    for i in [0usize, 9, raw.len() - 1] {
        raw[i] ^= 1;
        assert!(
            gs.open(SealKind::Ice, &B64.encode(&raw)).is_err(),
            "bit at {i}"
        );
        raw[i] ^= 1;
    }
    // Wrong kind (server swapping message types) and reflection back to the sender fail.
    assert_eq!(
        gs.open(SealKind::Answer, &ice),
        Err(CryptoError::Unauthentic)
    );
    assert_eq!(hs.open(SealKind::Ice, &ice), Err(CryptoError::Unauthentic));
    // The untouched message opens; a replay of it does not.
    gs.open(SealKind::Ice, &ice).unwrap();
    assert_eq!(gs.open(SealKind::Ice, &ice), Err(CryptoError::Replay));
    assert_eq!(gs.open(SealKind::Ice, "short"), Err(CryptoError::Malformed));

    let answer = gs.seal(SealKind::Answer, b"answer");
    assert_eq!(&hs.open(SealKind::Answer, &answer).unwrap()[..], b"answer");

    // A key from a wrong-password run opens nothing.
    let (_h2, g2) = run("pw", "other", room());
    let mut g2s = g2.sealer();
    assert_eq!(
        g2s.open(SealKind::Offer, &hs.seal(SealKind::Offer, b"x")),
        Err(CryptoError::Unauthentic)
    );
}

#[test]
fn nonces_are_unique() {
    let (h, _) = run("pw", "pw", room());
    let mut s = h.sealer();
    let nonces: std::collections::HashSet<Vec<u8>> = (0..5000)
        .map(|_| {
            B64.decode(s.seal(SealKind::Ice, b"x")).unwrap()[CTR_LEN..CTR_LEN + NONCE_LEN].to_vec()
        })
        .collect();
    assert_eq!(nonces.len(), 5000);
}

#[test]
fn fingerprint_mac_binds_roles_and_both_fingerprints() {
    let (h, g) = run("pw", "pw", room());
    let (fh, fg) = ("sha-256 AA:BB", "sha-256 CC:DD");
    let mac_h = h.fingerprint_mac(fh, fg);
    // The guest sees the host's fingerprint as remote.
    assert!(g.verify_fingerprint_mac(fg, fh, &mac_h));
    // Case and spacing of the SDP spelling do not matter.
    assert!(g.verify_fingerprint_mac("SHA-256  cc:dd", fh, &mac_h));
    // A swapped certificate (MITM) fails, as do swapped order and a reflected MAC.
    assert!(!g.verify_fingerprint_mac(fg, "sha-256 EE:FF", &mac_h));
    assert!(!g.verify_fingerprint_mac(fh, fg, &mac_h));
    assert!(!h.verify_fingerprint_mac(fh, fg, &mac_h));
    let mac_g = g.fingerprint_mac(fg, fh);
    assert!(h.verify_fingerprint_mac(fh, fg, &mac_g));
    assert_ne!(mac_g, mac_h);
}

#[test]
fn cert_fingerprint_format() {
    let fp = cert_fingerprint(b"abc");
    assert!(fp.starts_with("sha-256 BA:78:16:BF"), "{fp}");
    assert_eq!(fp.len(), "sha-256 ".len() + 32 * 3 - 1);
}
