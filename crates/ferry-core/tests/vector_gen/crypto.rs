//! SPAKE2 runs with fixed scalars, the key schedule, confirmation, sealed envelopes with
//! fixed nonces, fingerprint MACs, and what the room crypto refuses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ferry_core::Password;
use ferry_core::crypto::{
    CryptoError, Pake, RoomKeys, SealKind, Sealer, cert_fingerprint, normalize_fp,
};
use ferry_proto::RoomId;
use ferry_proto::signal::Role;
use rand::{CryptoRng, RngCore};
use serde_json::{Value, json};
use spake2::{Ed25519Group, Group};

use crate::{data_json, hex, role_name};

/// Hands SPAKE2 fixed bytes where it asks for randomness: the scalar it draws is then these
/// 64 bytes read little-endian mod L (curve25519-dalek's `Scalar::random`).
pub(crate) struct FixedRng(pub(crate) Vec<u8>);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "fixed randomness used up");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

/// One side of a SPAKE2 run: its message and everything derived from the peer's.
fn side_json(
    role: Role,
    rng: &[u8],
    msg: &str,
    keys: &RoomKeys,
    secret: &[u8],
    peer_confirm: &str,
) -> Value {
    let scalar = Ed25519Group::random_scalar(&mut FixedRng(rng.to_vec()));
    let schedule: serde_json::Map<String, Value> = keys
        .schedule()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(hex(&v))))
        .collect();
    let raw = B64.decode(msg.strip_prefix("spake2:").unwrap()).unwrap();
    json!({
        "role": role_name(role),
        "rng_hex": hex(rng),
        "scalar_le_hex": hex(scalar.as_bytes()),
        "message_hex": hex(&raw),
        "payload": msg,
        "spake2_key_hex": hex(secret),
        "keys": schedule,
        "confirmation": keys.confirmation(),
        "accepts_peer_confirmation": keys.verify_confirmation(peer_confirm).is_ok(),
        "verification_code": keys.verification_code(),
    })
}

pub(crate) struct Run {
    json: Value,
    pub(crate) host: RoomKeys,
    pub(crate) guest: RoomKeys,
}

fn pake_run(name: &str, room: &str, host_pw: &str, guest_pw: &str, seed: u64) -> Run {
    let room_id: RoomId = room.parse().unwrap();
    let rng_h = ferry_testkit::data(64, seed);
    let rng_g = ferry_testkit::data(64, seed + 1);
    let (hp, hmsg) = Pake::start_with_rng(
        Role::Host,
        &room_id,
        &Password::new(host_pw),
        FixedRng(rng_h.clone()),
    );
    let (gp, gmsg) = Pake::start_with_rng(
        Role::Guest,
        &room_id,
        &Password::new(guest_pw),
        FixedRng(rng_g.clone()),
    );
    let (hk, hs) = hp.finish_with_secret(&gmsg).unwrap();
    let (gk, gs) = gp.finish_with_secret(&hmsg).unwrap();
    let pw_scalar = |pw: &str| {
        let s = Ed25519Group::hash_to_scalar(pw.trim().as_bytes());
        hex(s.as_bytes())
    };
    let json = json!({
        "name": name,
        "room": room_id.as_str(),
        "id_a": format!("ferry/v1 host {}", room_id.as_str()),
        "id_b": format!("ferry/v1 guest {}", room_id.as_str()),
        "host_password": host_pw,
        "guest_password": guest_pw,
        "host_password_scalar_le_hex": pw_scalar(host_pw),
        "guest_password_scalar_le_hex": pw_scalar(guest_pw),
        "host": side_json(Role::Host, &rng_h, &hmsg, &hk, &hs, &gk.confirmation()),
        "guest": side_json(Role::Guest, &rng_g, &gmsg, &gk, &gs, &hk.confirmation()),
    });
    Run {
        json,
        host: hk,
        guest: gk,
    }
}

pub(crate) fn pake_vectors() -> (Value, Run) {
    let ok = pake_run(
        "same password",
        "7K3QM-X9PDA",
        "gladly-brave-otter",
        "gladly-brave-otter",
        100,
    );
    // The password is trimmed before SPAKE2, so a pasted trailing newline still matches.
    let trimmed = pake_run(
        "same password, guest's pasted with spaces",
        "ABCDE-FGHJK",
        "otter-lantern-7",
        "  otter-lantern-7\n",
        200,
    );
    let wrong = pake_run(
        "wrong password",
        "ZZZZZ-00001",
        "gladly-brave-otter",
        "gladly-brave-otters",
        300,
    );
    assert!(
        ok.json["guest"]["accepts_peer_confirmation"]
            .as_bool()
            .unwrap()
    );
    assert!(
        !wrong.json["guest"]["accepts_peer_confirmation"]
            .as_bool()
            .unwrap()
    );
    let runs = json!([ok.json, trimmed.json, wrong.json]);
    (runs, ok)
}

fn seal_kind(k: SealKind) -> &'static str {
    match k {
        SealKind::Offer => "offer",
        SealKind::Answer => "answer",
        SealKind::Ice => "ice-candidate",
    }
}

/// Envelopes of the first run, in the order each side seals them (counters from 1).
pub(crate) fn sealed_vectors(run: &Run) -> Value {
    let mut out = Vec::new();
    let plan: [(Role, SealKind, &[u8]); 5] = [
        (
            Role::Host,
            SealKind::Offer,
            b"v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\n",
        ),
        (
            Role::Host,
            SealKind::Ice,
            b"candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host",
        ),
        (Role::Host, SealKind::Ice, b""),
        (
            Role::Guest,
            SealKind::Answer,
            b"v=0\r\no=- 9 2 IN IP4 127.0.0.1\r\n",
        ),
        (
            Role::Guest,
            SealKind::Ice,
            b"candidate:2 1 udp 1694498815 198.51.100.4 61000 typ srflx",
        ),
    ];
    let mut hs = run.host.sealer();
    let mut gs = run.guest.sealer();
    let (mut hctr, mut gctr) = (0u64, 0u64);
    for (i, (from, kind, pt)) in plan.into_iter().enumerate() {
        let nonce: [u8; 24] = ferry_testkit::data(24, 400 + i as u64).try_into().unwrap();
        let (sealer, ctr): (&mut Sealer, &mut u64) = match from {
            Role::Host => (&mut hs, &mut hctr),
            Role::Guest => (&mut gs, &mut gctr),
        };
        *ctr += 1;
        let env = sealer.seal_with_nonce(kind, pt, nonce);
        // The other side opens it: the vector is one a real peer accepts.
        let opener = match from {
            Role::Host => &mut gs,
            Role::Guest => &mut hs,
        };
        assert_eq!(&opener.open(kind, &env).unwrap()[..], pt);
        out.push(json!({
            "run": 0,
            "from": role_name(from),
            "kind": seal_kind(kind),
            "counter": *ctr,
            "nonce_hex": hex(&nonce),
            "aad_hex": hex(&Sealer::aad(from, kind, *ctr)),
            "plaintext_hex": hex(pt),
            "envelope": env,
        }));
    }
    Value::Array(out)
}

fn crypto_error(e: &CryptoError) -> &'static str {
    match e {
        CryptoError::BadPakeMessage => "bad-pake-message",
        CryptoError::ConfirmationFailed => "confirmation-failed",
        CryptoError::Malformed => "malformed",
        CryptoError::Unauthentic => "unauthentic",
        CryptoError::Replay => "replay",
    }
}

fn outcome<T>(r: Result<T, CryptoError>) -> Value {
    match r {
        Ok(_) => json!("ok"),
        Err(e) => json!(crypto_error(&e)),
    }
}

/// What the room crypto refuses, and how: a peer's SPAKE2 message, a confirmation tag, and
/// sealed envelopes opened in sequence by one fresh opener.
pub(crate) fn refusal_vectors(run: &Run, run_json: &Value) -> Value {
    let room: RoomId = run_json["room"].as_str().unwrap().parse().unwrap();
    let rng_h = hex::decode(run_json["host"]["rng_hex"].as_str().unwrap()).unwrap();
    let pw = run_json["host_password"].as_str().unwrap();
    // An element that is no curve point: the first [i, 0, ..] curve25519-dalek refuses.
    let bad_y = (0u8..=255)
        .map(|i| {
            let mut b = [0u8; 32];
            b[0] = i;
            b
        })
        .find(|b| Ed25519Group::bytes_to_element(b).is_none())
        .unwrap();
    let guest_msg = hex::decode(run_json["guest"]["message_hex"].as_str().unwrap()).unwrap();
    let msg = |side: u8, element: &[u8]| {
        let mut m = vec![side];
        m.extend_from_slice(element);
        format!("spake2:{}", B64.encode(m))
    };
    let pake: Vec<Value> = [
        "nope".to_string(),
        "spake2:!!!".into(),
        "spake2:AAAA".into(),
        msg(b'A', &guest_msg[1..]),
        msg(b'B', &bad_y),
        format!("spake2:{}=", B64.encode(&guest_msg)),
    ]
    .into_iter()
    .map(|payload| {
        let (p, _) = Pake::start_with_rng(
            Role::Host,
            &room,
            &Password::new(pw),
            FixedRng(rng_h.clone()),
        );
        json!({ "run": 0, "role": "host", "payload": payload, "result": outcome(p.finish(&payload)) })
    })
    .collect();

    let confirm: Vec<Value> = [
        ("host", "garbage".to_string()),
        ("host", "confirm:!!".into()),
        ("host", "confirm:AAAA".into()),
        ("host", run.host.confirmation()),
        ("host", run.guest.confirmation()),
    ]
    .into_iter()
    .map(|(role, payload)| {
        json!({ "run": 0, "role": role, "payload": payload,
                "result": outcome(run.host.verify_confirmation(&payload)) })
    })
    .collect();

    // Host envelopes (counters 1, 2) under fixed nonces, then what a guest makes of them.
    let mut hs = run.host.sealer();
    let n = |seed| -> [u8; 24] { ferry_testkit::data(24, seed).try_into().unwrap() };
    let e1 = hs.seal_with_nonce(SealKind::Ice, b"candidate one", n(450));
    let e2 = hs.seal_with_nonce(SealKind::Ice, b"candidate two", n(451));
    let mut tampered = B64.decode(&e1).unwrap();
    *tampered.last_mut().unwrap() ^= 1;
    let tampered = B64.encode(&tampered);
    // (case, who opens, what it opens in order)
    type Sequence<'a> = (&'a str, Role, Vec<(SealKind, String)>);
    let sequences: Vec<Sequence> = vec![
        ("tampered", Role::Guest, vec![(SealKind::Ice, tampered)]),
        (
            "other kind",
            Role::Guest,
            vec![(SealKind::Answer, e1.clone())],
        ),
        (
            "reflected to its sender",
            Role::Host,
            vec![(SealKind::Ice, e1.clone())],
        ),
        (
            "replayed",
            Role::Guest,
            vec![(SealKind::Ice, e1.clone()), (SealKind::Ice, e1.clone())],
        ),
        (
            "reordered",
            Role::Guest,
            vec![(SealKind::Ice, e2.clone()), (SealKind::Ice, e1.clone())],
        ),
        (
            "too short",
            Role::Guest,
            vec![(SealKind::Ice, "short".into())],
        ),
        (
            "padded base64",
            Role::Guest,
            vec![(SealKind::Ice, format!("{e1}="))],
        ),
    ];
    let sealed: Vec<Value> = sequences
        .into_iter()
        .map(|(name, opener, steps)| {
            let mut o = match opener {
                Role::Host => run.host.sealer(),
                Role::Guest => run.guest.sealer(),
            };
            let steps: Vec<Value> = steps
                .into_iter()
                .map(|(kind, env)| {
                    let r = outcome(o.open(kind, &env));
                    json!({ "kind": seal_kind(kind), "envelope": env, "result": r })
                })
                .collect();
            json!({ "name": name, "run": 0, "opener": role_name(opener), "steps": steps })
        })
        .collect();
    json!({ "pake": pake, "confirmation": confirm, "sealed": sealed })
}

pub(crate) fn fingerprint_vectors(run: &Run) -> Value {
    let (der_h, _) = data_json(300, 500);
    let (der_g, _) = data_json(280, 501);
    let fp_h = cert_fingerprint(&der_h);
    let fp_g = cert_fingerprint(&der_g);
    // The guest's SDP spells the host's fingerprint in lower case with doubled spaces: the
    // MAC is over the normalized form, so both spellings give the same value.
    let fp_h_spelt = fp_h.to_lowercase().replacen(' ', "  ", 1);
    let mac_h = run.host.fingerprint_mac(&fp_h, &fp_g);
    let mac_g = run.guest.fingerprint_mac(&fp_g, &fp_h_spelt);
    assert!(run.guest.verify_fingerprint_mac(&fp_g, &fp_h_spelt, &mac_h));
    assert!(run.host.verify_fingerprint_mac(&fp_h, &fp_g, &mac_g));
    // What each side makes of a MAC: the right one, one over other fingerprints, the order
    // swapped, and its own MAC reflected back.
    let verify: Vec<Value> = [
        ("guest", fp_g.as_str(), fp_h_spelt.as_str(), mac_h, true),
        ("guest", fp_g.as_str(), "sha-256 EE:FF", mac_h, false),
        ("guest", fp_h_spelt.as_str(), fp_g.as_str(), mac_h, false),
        ("host", fp_h.as_str(), fp_g.as_str(), mac_h, false),
        ("host", fp_h.as_str(), fp_g.as_str(), mac_g, true),
    ]
    .into_iter()
    .map(|(role, local, remote, mac, expect)| {
        let keys = if role == "host" { &run.host } else { &run.guest };
        let ok = keys.verify_fingerprint_mac(local, remote, &mac);
        assert_eq!(ok, expect, "{role} {local} {remote}");
        json!({ "run": 0, "role": role, "local": local, "remote": remote, "mac_hex": hex(&mac), "valid": ok })
    })
    .collect();
    json!({
        "verify": verify,
        "certificates": [
            { "der_hex": hex(&der_h), "fingerprint": fp_h },
            { "der_hex": hex(&der_g), "fingerprint": fp_g },
        ],
        "normalize": [
            { "input": fp_h_spelt, "output": normalize_fp(&fp_h_spelt) },
            { "input": "SHA-256\tAB:CD  ", "output": normalize_fp("SHA-256\tAB:CD  ") },
        ],
        "macs": [
            { "run": 0, "role": "host", "local": fp_h, "remote": fp_g, "mac_hex": hex(&mac_h) },
            { "run": 0, "role": "guest", "local": fp_g, "remote": fp_h_spelt, "mac_hex": hex(&mac_g) },
        ],
    })
}
