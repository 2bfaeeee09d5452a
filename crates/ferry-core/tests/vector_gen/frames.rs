//! Peer frames: one of each control message, control parts, chunk frames, refused frames.

use ferry_core::manifest::transfer_id;
use ferry_core::transfer::compress::Compressor;
use ferry_core::transfer::tree::{UNIT, piece_cv};
use ferry_proto::peer::{self, Control, FileAccept, FrameError, PeerErrorCode};
use serde_json::{Value, json};

use crate::transfer::sample_entries;
use crate::{hex, log_text};

pub(crate) fn control_samples(mac: &str) -> Vec<Control> {
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
pub(crate) fn control_variant(c: &Control) -> &'static str {
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
pub(crate) const CONTROL_VARIANTS: usize = 14;

/// Every error code, in declaration order; the `match` makes a new one a compile error here.
pub(crate) fn peer_error_codes() -> Vec<PeerErrorCode> {
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

pub(crate) fn frame_vectors(mac: &[u8; 32]) -> Value {
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
