//! Test vectors for other implementations of Ferry's wire protocol (the browser peer's web
//! engine, `ui/src/web/`): `tests/vectors/ferry-v1.json`, computed here by the real
//! ferry-core and ferry-proto code with fixed inputs (SPAKE2 scalars, seal nonces, seeded
//! data). The web engine's Vitest suite (`ui/tests/vectors.test.ts`) must reproduce every
//! value byte for byte; this test fails when the committed file no longer matches what
//! the Rust code computes. Format: `tests/vectors/README.md`.
//!
//! To accept a change on purpose: `FERRY_BLESS=1 cargo test -p ferry-core --test vectors`,
//! then `bash scripts/test-web-vectors.sh` and fix the web engine until it passes.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ferry_core::Password;
use ferry_core::crypto::{Pake, RoomKeys, SealKind, Sealer, cert_fingerprint, normalize_fp};
use ferry_core::manifest::transfer_id;
use ferry_core::transfer::compress::{Compressor, DecompressError, decompress};
use ferry_core::transfer::tree::{FileTree, UNIT, piece_cv, piece_len, valid_piece};
use ferry_proto::RoomId;
use ferry_proto::peer::{self, Control, FileAccept, FileEntry, FrameError, PeerErrorCode};
use ferry_proto::signal::Role;
use rand::{CryptoRng, RngCore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Group};

const BLESS: &str = "FERRY_BLESS=1 cargo test -p ferry-core --test vectors";

/// Hands SPAKE2 fixed bytes where it asks for randomness: the scalar it draws is then these
/// 64 bytes read little-endian mod L (curve25519-dalek's `Scalar::random`).
struct FixedRng(Vec<u8>);

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

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Seeded data as the vectors describe it: inline when small, else generator and digest.
fn data_json(len: usize, seed: u64) -> (Vec<u8>, Value) {
    let d = ferry_testkit::data(len, seed);
    let mut v = json!({ "len": len, "seed": seed, "sha256": sha256_hex(&d) });
    if len <= 2048 {
        v["hex"] = json!(hex(&d));
    }
    (d, v)
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

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

struct Run {
    json: Value,
    host: RoomKeys,
    guest: RoomKeys,
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

fn pake_vectors() -> (Value, Run) {
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
fn sealed_vectors(run: &Run) -> Value {
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

fn fingerprint_vectors(run: &Run) -> Value {
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
    json!({
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

fn entry(path: &str, size: u64, mtime_ms: i64, dir: bool) -> FileEntry {
    FileEntry {
        path: path.into(),
        size,
        mtime_ms,
        dir,
    }
}

fn sample_entries() -> Vec<FileEntry> {
    vec![
        entry("holiday/IMG_0001.jpg", 4_718_592, 1_764_000_000_123, false),
        entry("holiday/notes ü✓.txt", 0, 1_764_000_000_000, false),
        entry("holiday/empty", 0, 0, true),
        entry("old.bin", 7, -1, false),
    ]
}

fn transfer_id_vectors() -> Value {
    let cases = [
        (
            "7K3QM-X9PDA"
                .parse::<RoomId>()
                .unwrap()
                .as_str()
                .to_string(),
            sample_entries(),
        ),
        ("ABCDEFGHJK".to_string(), vec![entry("a", 1, 2, false)]),
        ("ABCDEFGHJK".to_string(), vec![]),
    ];
    Value::Array(
        cases
            .iter()
            .map(|(room, entries)| {
                json!({ "room": room, "entries": entries, "transfer_id": transfer_id(room, entries) })
            })
            .collect(),
    )
}

/// Pieces of a `total`-byte file cut as the sender cuts them: each phase reads up to its
/// `end` in pieces of at most `target` bytes (a resumed transfer rebuilds its prefix in one
/// size and receives the rest in another).
fn blake3_case(name: &str, total: usize, seed: u64, phases: &[(u64, u64)]) -> Value {
    let (data, data_json) = data_json(total, seed);
    let total = total as u64;
    let mut tree = FileTree::new(total);
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for &(end, target) in phases {
        loop {
            let len = piece_len(at, end, total, target);
            if len == 0 {
                break;
            }
            let bytes = &data[at as usize..(at + len) as usize];
            let cv = tree.push_data(at, bytes).unwrap();
            assert_eq!(cv, piece_cv(at, bytes));
            pieces.push(json!({ "offset": at, "len": len, "cv_hex": hex(&cv) }));
            at += len;
        }
    }
    let root = tree.finalize().unwrap();
    assert_eq!(root, blake3::hash(&data));
    let phases: Vec<Value> = phases
        .iter()
        .map(|&(end, target)| json!({ "end": end, "target": target }))
        .collect();
    json!({
        "name": name,
        "data": data_json,
        "phases": phases,
        "pieces": pieces,
        "root_hex": hex(root.as_bytes()),
    })
}

fn blake3_vectors() -> Value {
    let min = peer::MIN_CHUNK as u64;
    let max = peer::MAX_CHUNK as u64;
    let mut cases = Vec::new();
    for (i, size) in [
        0,
        1,
        UNIT - 1,
        UNIT,
        UNIT + 1,
        min - 1,
        min,
        min + 1,
        3 * min + 1,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("{size}-byte file in {min}-byte pieces");
        cases.push(blake3_case(
            &name,
            size as usize,
            600 + i as u64,
            &[(size, min)],
        ));
    }
    let odd = 5 * UNIT + 1;
    cases.push(blake3_case(
        "1 KiB pieces (merges)",
        odd as usize,
        620,
        &[(odd, UNIT)],
    ));
    for (i, size) in [max - 1, max, max + 1, 3 * max + 1].into_iter().enumerate() {
        let name = format!("{size}-byte file in {max}-byte pieces");
        cases.push(blake3_case(
            &name,
            size as usize,
            630 + i as u64,
            &[(size, max)],
        ));
    }
    let total = 300_001;
    cases.push(blake3_case(
        "resumed: 97 KiB prefix in 64 KiB reads, then 16 KiB pieces",
        total as usize,
        640,
        &[(97 * UNIT, 64 * 1024), (total, min)],
    ));
    let shapes: Vec<Value> = [
        (0, UNIT, 10 * UNIT),
        (0, 3 * UNIT, 10 * UNIT),
        (UNIT, 2 * UNIT, 10 * UNIT),
        (100, UNIT, 10 * UNIT),
        (8 * UNIT, 2 * UNIT, 10 * UNIT),
        (8 * UNIT, 4 * UNIT, 10 * UNIT),
        (0, 0, 10 * UNIT),
        (0, 10 * UNIT, 10 * UNIT),
        (4096, 904, 5000),
        (u64::MAX - 10, 20, u64::MAX),
    ]
    .into_iter()
    .map(|(offset, len, total)| {
        // u64 past 2^53 does not survive a JSON number in JavaScript: decimal strings.
        json!({
            "offset": offset.to_string(),
            "len": len.to_string(),
            "total": total.to_string(),
            "valid": valid_piece(offset, len, total),
        })
    })
    .collect();
    json!({ "unit": UNIT, "files": cases, "valid_piece": shapes })
}

/// Compressible text, the same recipe on both sides (see the README).
fn log_text(lines: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..lines {
        v.extend_from_slice(
            format!(
                "2026-11-25T08:{:02}:{:02}Z INFO request {i} served in {} ms\n",
                i % 60,
                i % 59,
                i % 97
            )
            .as_bytes(),
        );
    }
    v
}

fn lz4_vectors() -> Value {
    let max = peer::MAX_CHUNK;
    let mut cases = Vec::new();
    let inputs: Vec<(&str, Vec<u8>, Value)> = vec![
        (
            "log text, 40 lines",
            log_text(40),
            json!({ "log_lines": 40 }),
        ),
        (
            "log text, 3000 lines",
            log_text(3000),
            json!({ "log_lines": 3000 }),
        ),
        (
            "one byte repeated",
            vec![b'f'; 65536],
            json!({ "repeat_hex": "66", "len": 65536 }),
        ),
        (
            "seeded random",
            ferry_testkit::data(4096, 700),
            json!({ "len": 4096, "seed": 700 }),
        ),
        (
            "too short to pay",
            b"abcd".to_vec(),
            json!({ "repeat_hex": "61626364", "len": 4 }),
        ),
    ];
    for (name, input, recipe) in inputs {
        let wire = Compressor::new().compress(&input).map(<[u8]>::to_vec);
        if let Some(w) = &wire {
            let mut out = Vec::new();
            assert_eq!(decompress(w, &mut out, max).unwrap(), &input[..]);
        }
        cases.push(json!({
            "name": name,
            "input": recipe,
            "input_len": input.len(),
            "input_sha256": sha256_hex(&input),
            "wire_hex": wire.as_deref().map(hex),
        }));
    }
    let mut good = Compressor::new().compress(&log_text(40)).unwrap().to_vec();
    let mut refused = vec![
        ("shorter than its prefix", vec![1u8, 2]),
        ("claims more than a chunk", vec![0xff, 0xff, 0xff, 0x7f, 0]),
        ("corrupt block", {
            let mut b = 1000u32.to_le_bytes().to_vec();
            b.extend_from_slice(&[0xf0, 1, 2, 3]);
            b
        }),
    ];
    good[..4].copy_from_slice(&((log_text(40).len() + 1) as u32).to_le_bytes());
    refused.push(("prefix one byte longer than the block", good));
    let refused: Vec<Value> = refused
        .into_iter()
        .map(|(name, wire)| {
            let err = decompress(&wire, &mut Vec::new(), max).unwrap_err();
            let code = match err {
                DecompressError::Truncated => "truncated",
                DecompressError::TooLarge(..) => "too-large",
                DecompressError::Corrupt(_) => "corrupt",
            };
            json!({ "name": name, "wire_hex": hex(&wire), "max": max, "error": code })
        })
        .collect();
    json!({ "max_chunk": max, "chunks": cases, "refused": refused })
}

fn control_samples(mac: &str) -> Vec<Control> {
    vec![
        Control::Hello {
            version: 2,
            caps: vec![peer::CAP_LZ4.into()],
            max_message_size: 262_144,
            mac: mac.into(),
        },
        Control::Manifest {
            transfer_id: transfer_id("7K3QMX9PDA", &sample_entries()),
            files: sample_entries(),
        },
        Control::Text {
            transfer_id: "0123456789abcdef0123456789abcdef".into(),
            text: "line one\r\nline two\ttabbed \u{0}nul 🦦\n".into(),
        },
        Control::Accept {
            files: vec![
                FileAccept {
                    file: 0,
                    offset: 1_048_576,
                },
                FileAccept { file: 1, offset: 0 },
                FileAccept { file: 3, offset: 0 },
            ],
        },
        // Everything JSON must escape, and what it must not (non-ASCII, U+2028).
        Control::Decline {
            reason: "not now: \"busy\"\t\\ \u{1}\u{1f} ü ✓ \u{2028} </script>".into(),
        },
        Control::Ack {
            file: 0,
            offset: 9_007_199_254_740_991,
        },
        Control::Resend {
            file: 2,
            offset: 262_144,
        },
        Control::FileEnd {
            file: 0,
            hash: hex(blake3::hash(b"x").as_bytes()),
        },
        Control::FileDone { file: 0 },
        Control::Pause,
        Control::Resume,
        Control::Cancel {
            reason: String::new(),
        },
        Control::Error {
            code: PeerErrorCode::DiskFull,
            message: "No space left on device".into(),
            file: Some(3),
        },
        Control::Error {
            code: PeerErrorCode::Integrity,
            message: "hash mismatch".into(),
            file: None,
        },
        Control::Done,
    ]
}

/// Which sample `c` is: a variant added to `Control` stops this compiling until it is
/// listed here and [`control_samples`] has one (checked by `every_control_variant_has_a_sample`).
fn control_variant(c: &Control) -> &'static str {
    match c {
        Control::Hello { .. } => "hello",
        Control::Manifest { .. } => "manifest",
        Control::Text { .. } => "text",
        Control::Accept { .. } => "accept",
        Control::Decline { .. } => "decline",
        Control::Ack { .. } => "ack",
        Control::Resend { .. } => "resend",
        Control::FileEnd { .. } => "file-end",
        Control::FileDone { .. } => "file-done",
        Control::Pause => "pause",
        Control::Resume => "resume",
        Control::Cancel { .. } => "cancel",
        Control::Error { .. } => "error",
        Control::Done => "done",
    }
}
const CONTROL_VARIANTS: usize = 14;

/// Every error code, in declaration order; the `match` makes a new one a compile error here.
fn peer_error_codes() -> Vec<PeerErrorCode> {
    use PeerErrorCode::*;
    let all = [
        DiskFull,
        PermissionDenied,
        SourceChanged,
        Cancelled,
        Declined,
        Protocol,
        Integrity,
        Io,
        Unsupported,
        TooLarge,
    ];
    for c in all {
        match c {
            DiskFull | PermissionDenied | SourceChanged | Cancelled | Declined | Protocol
            | Integrity | Io | Unsupported | TooLarge => {}
        }
    }
    all.to_vec()
}

fn frame_error(e: &FrameError) -> &'static str {
    match e {
        FrameError::Empty => "empty",
        FrameError::UnknownKind(_) => "unknown-kind",
        FrameError::ShortChunk(_) => "short-chunk",
        FrameError::BadControl(_) => "bad-control",
        FrameError::ControlTooLarge => "control-too-large",
        FrameError::FrameTooLarge(_) => "frame-too-large",
        FrameError::TooManyEntries => "too-many-entries",
    }
}

fn frame_vectors(mac: &[u8; 32]) -> Value {
    let control: Vec<Value> = control_samples(&hex(mac))
        .iter()
        .map(|c| {
            let frame = c.encode();
            assert_eq!(
                peer::decode(&frame).unwrap(),
                peer::Frame::Control(c.clone())
            );
            json!({ "message": c, "frame_hex": hex(&frame) })
        })
        .collect();

    let manifest = &control_samples("")[1];
    let max_frame = 120;
    let parts: Vec<String> = manifest
        .encode_frames(max_frame)
        .iter()
        .map(|f| hex(f))
        .collect();
    let mut joiner = peer::ControlReassembler::new();
    let mut joined = None;
    for p in manifest.encode_frames(max_frame) {
        if let Some(peer::Frame::Control(c)) = joiner.push(&p).unwrap() {
            joined = Some(c);
        }
    }
    assert_eq!(joined.as_ref(), Some(manifest));

    let data = ferry_testkit::data(UNIT as usize + 5, 800);
    let cv = piece_cv(0, &data);
    let text = log_text(40);
    let wire = Compressor::new().compress(&text).unwrap().to_vec();
    // The last piece of a (4 KiB + 2100)-byte file: a piece at 4 KiB may hold up to 4 KiB.
    let text_cv = piece_cv(4 * UNIT, &text);
    let chunks: Vec<Value> = [
        (0u32, 0u64, 0u8, cv, data.as_slice()),
        (7, 4 * UNIT, peer::FLAG_COMPRESSED, text_cv, wire.as_slice()),
        (u32::MAX, u64::MAX, 0, [0xab; 32], &b""[..]),
    ]
    .into_iter()
    .map(|(file, offset, flags, hash, payload)| {
        let frame = peer::encode_chunk(file, offset, flags, &hash, payload);
        let want = peer::Chunk {
            file,
            offset,
            flags,
            hash,
            data: payload,
        };
        assert_eq!(peer::decode(&frame).unwrap(), peer::Frame::Chunk(want));
        json!({
            "file": file,
            "offset": offset.to_string(),
            "flags": flags,
            "cv_hex": hex(&hash),
            "data_hex": hex(payload),
            "frame_hex": hex(&frame),
        })
    })
    .collect();

    let bad: Vec<Value> = [
        vec![],
        vec![9, 0],
        peer::encode_chunk(1, 2, 0, &[0; 32], b"")[..peer::CHUNK_HEADER_LEN - 1].to_vec(),
        vec![peer::KIND_CONTROL, 0, b'{', b'}'],
        vec![peer::KIND_CONTROL],
        {
            let mut f = vec![peer::KIND_CONTROL, 0];
            f.extend_from_slice(br#"{"type":"ack","file":1}"#);
            f
        },
        {
            let mut f = vec![peer::KIND_CONTROL, 0];
            f.extend_from_slice(br#"{"type":"teleport"}"#);
            f
        },
        vec![peer::KIND_CHUNK; peer::MAX_FRAME_LEN + 1][..].to_vec(),
    ]
    .iter()
    .map(|f| {
        let err = peer::decode(f).unwrap_err();
        // The oversized frame is described, not spelled out.
        if f.len() > 1024 {
            json!({ "repeat_hex": hex(&f[..1]), "len": f.len(), "error": frame_error(&err) })
        } else {
            json!({ "frame_hex": hex(f), "error": frame_error(&err) })
        }
    })
    .collect();

    json!({
        "control": control,
        "control_parts": { "max_frame": max_frame, "message_index": 1, "frames_hex": parts },
        "chunks": chunks,
        "refused": bad,
    })
}

fn constants() -> Value {
    json!({
        "protocol_label": ferry_core::crypto::PROTOCOL_LABEL,
        "pake_msg_prefix": ferry_core::crypto::PAKE_MSG_PREFIX,
        "pake_confirm_prefix": ferry_core::crypto::PAKE_CONFIRM_PREFIX,
        "kind_control": peer::KIND_CONTROL,
        "kind_chunk": peer::KIND_CHUNK,
        "kind_control_part": peer::KIND_CONTROL_PART,
        "flag_last": peer::FLAG_LAST,
        "flag_compressed": peer::FLAG_COMPRESSED,
        "cap_lz4": peer::CAP_LZ4,
        "cap_text": peer::CAP_TEXT,
        "peer_error_codes": peer_error_codes(),
        "chunk_header_len": peer::CHUNK_HEADER_LEN,
        "min_chunk": peer::MIN_CHUNK,
        "max_chunk": peer::MAX_CHUNK,
        "max_frame_len": peer::MAX_FRAME_LEN,
        "max_control_len": peer::MAX_CONTROL_LEN,
        "max_files": peer::MAX_FILES,
    })
}

fn vectors() -> String {
    let (pake, run) = pake_vectors();
    let mac = run.host.fingerprint_mac("sha-256 AA:BB", "sha-256 CC:DD");
    let v = json!({
        "format": "ferry-test-vectors 1",
        "generated_by": BLESS,
        "constants": constants(),
        "pake": pake,
        "sealed": sealed_vectors(&run),
        "fingerprint": fingerprint_vectors(&run),
        "transfer_id": transfer_id_vectors(),
        "blake3": blake3_vectors(),
        "lz4": lz4_vectors(),
        "frames": frame_vectors(&mac),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap();
    s.push('\n');
    s
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/ferry-v1.json")
}

#[test]
fn vectors_file_matches_what_the_code_computes() {
    let want = vectors();
    let path = vectors_path();
    if std::env::var_os("FERRY_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    if got == want {
        return;
    }
    let line = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
    let show = |s: &str| -> String {
        s.lines()
            .skip(line.saturating_sub(3))
            .take(7)
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "tests/vectors/ferry-v1.json is stale: it differs from what ferry-core computes now, \
         first at line {}.\n--- committed\n{}\n--- computed\n{}\n\n\
         If the change is meant: {BLESS}, then make the web engine reproduce it \
         (bash scripts/test-web-vectors.sh).",
        line + 1,
        show(&got),
        show(&want)
    );
}

#[test]
fn every_control_variant_has_a_sample() {
    let seen: std::collections::BTreeSet<&str> =
        control_samples("").iter().map(control_variant).collect();
    assert_eq!(seen.len(), CONTROL_VARIANTS, "{seen:?}");
}

#[test]
fn vectors_are_deterministic() {
    assert_eq!(vectors(), vectors());
}

#[test]
fn fixed_rng_gives_the_scalar_the_vectors_describe() {
    // x = the 64 given bytes read little-endian, mod L: what the web engine recomputes.
    let mut bytes = [0u8; 64];
    bytes[0] = 5;
    let s = Ed25519Group::random_scalar(&mut FixedRng(bytes.to_vec()));
    let mut want = [0u8; 32];
    want[0] = 5;
    assert_eq!(s.as_bytes(), &want);
}
