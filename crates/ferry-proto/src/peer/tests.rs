use super::*;
use proptest::prelude::*;

#[test]
fn chunk_layout_is_fixed() {
    let f = encode_chunk(3, 0x0102, FLAG_COMPRESSED, &[9u8; 32], b"abc");
    assert_eq!(f.len(), CHUNK_HEADER_LEN + 3);
    assert_eq!(&f[..2], &[KIND_CHUNK, FLAG_COMPRESSED]);
    assert_eq!(&f[2..6], &[0, 0, 0, 3]);
    assert_eq!(&f[6..14], &[0, 0, 0, 0, 0, 0, 1, 2]);
    match decode(&f).unwrap() {
        Frame::Chunk(c) => {
            assert_eq!(
                (c.file, c.offset, c.flags, c.data),
                (3, 0x0102, 1, &b"abc"[..])
            );
            assert_eq!(c.hash, [9u8; 32]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn control_roundtrip_and_shape() {
    let m = Control::Ack {
        file: 1,
        offset: 42,
    };
    let f = m.encode();
    assert_eq!(&f[2..], br#"{"type":"ack","file":1,"offset":42}"#);
    assert_eq!(decode(&f).unwrap(), Frame::Control(m));
}

#[test]
fn text_shape_keeps_every_character() {
    let m = Control::Text {
        transfer_id: "ab".into(),
        text: "h\u{e9}llo \u{1f6a2}\r\nline\n".into(),
    };
    let f = m.encode();
    assert_eq!(
        std::str::from_utf8(&f[2..]).unwrap(),
        "{\"type\":\"text\",\"transfer_id\":\"ab\",\"text\":\"h\u{e9}llo \u{1f6a2}\\r\\nline\\n\"}"
    );
    assert_eq!(decode(&f).unwrap(), Frame::Control(m));
    let e = Control::Error {
        code: PeerErrorCode::TooLarge,
        message: String::new(),
        file: None,
    };
    assert!(
        String::from_utf8(e.encode())
            .unwrap()
            .contains("\"code\":\"too-large\"")
    );
}

#[test]
fn bad_frames_are_errors() {
    assert_eq!(decode(&[]), Err(FrameError::Empty));
    assert_eq!(decode(&[9, 0]), Err(FrameError::UnknownKind(9)));
    assert_eq!(decode(&[KIND_CHUNK, 0, 1]), Err(FrameError::ShortChunk(3)));
    assert!(matches!(
        decode(&[KIND_CONTROL]),
        Err(FrameError::BadControl(_))
    ));
    assert!(matches!(
        decode(b"\x01\x00{\"type\":\"bogus\"}"),
        Err(FrameError::BadControl(_))
    ));
}

fn big_manifest(n: usize) -> Control {
    Control::Manifest {
        transfer_id: "ab".repeat(32),
        files: (0..n)
            .map(|i| FileEntry {
                path: format!("folder/sub{}/file-{i:05}.txt", i % 10),
                size: i as u64,
                mtime_ms: 1_700_000_000_000,
                dir: false,
            })
            .collect(),
    }
}

#[test]
fn small_control_stays_one_plain_frame() {
    let m = Control::Done;
    assert_eq!(m.encode_frames(64 * 1024), vec![m.encode()]);
}

#[test]
fn large_manifest_splits_under_the_limit_and_other_frames_pass_through() {
    let m = big_manifest(10_000);
    let max = 64 * 1024;
    assert!(m.encode().len() > max * 10, "the case this guards");
    let frames = m.encode_frames(max);
    assert!(frames.len() > 10);
    assert!(
        frames
            .iter()
            .all(|f| f.len() <= max && f[0] == KIND_CONTROL_PART)
    );
    let last = frames.len() - 1;
    assert!(frames[..last].iter().all(|f| f[1] & FLAG_LAST == 0));
    assert_eq!(frames[last][1] & FLAG_LAST, FLAG_LAST);
    let mut r = ControlReassembler::new();
    let chunk = encode_chunk(1, 2, 0, &[0; 32], b"x");
    for f in &frames[..last] {
        assert_eq!(r.push(f).unwrap(), None);
        // A frame that is not a part is handed back untouched mid-message.
        assert!(matches!(r.push(&chunk).unwrap(), Some(Frame::Chunk(_))));
    }
    assert_eq!(
        r.push(&frames[last]).unwrap(),
        Some(Frame::Control(m.clone()))
    );
    // The reassembler is reusable for the next message.
    let again = m.encode_frames(max);
    let out: Vec<_> = again.iter().filter_map(|f| r.push(f).unwrap()).collect();
    assert_eq!(out, vec![Frame::Control(m)]);
}

#[test]
fn oversized_or_broken_parts_are_errors() {
    let mut r = ControlReassembler::new();
    let mut part = vec![KIND_CONTROL_PART, 0];
    part.extend(std::iter::repeat_n(b' ', MAX_FRAME_LEN - 2));
    let mut res = Ok(None);
    for _ in 0..=(MAX_CONTROL_LEN / (MAX_FRAME_LEN - 2)) {
        res = r.push(&part);
        if res.is_err() {
            break;
        }
    }
    assert_eq!(res, Err(FrameError::ControlTooLarge));
    assert!(matches!(
        r.push(&[KIND_CONTROL_PART]),
        Err(FrameError::BadControl(_))
    ));
    assert!(matches!(
        r.push(&[KIND_CONTROL_PART, FLAG_LAST, b'{']),
        Err(FrameError::BadControl(_))
    ));
    // Plain decode still rejects parts: only the reassembler understands them.
    assert_eq!(
        decode(&[KIND_CONTROL_PART, 1]),
        Err(FrameError::UnknownKind(3))
    );
}

#[test]
fn frames_over_the_limit_are_refused() {
    let mut chunk = encode_chunk(0, 0, 0, &[0; 32], &vec![0u8; MAX_CHUNK]);
    assert_eq!(chunk.len(), MAX_FRAME_LEN);
    assert!(decode(&chunk).is_ok(), "the largest chunk passes");
    chunk.push(0);
    assert_eq!(
        decode(&chunk),
        Err(FrameError::FrameTooLarge(MAX_FRAME_LEN + 1))
    );
    // A small control message padded with JSON whitespace past the limit.
    let mut ctl = vec![KIND_CONTROL, 0];
    ctl.extend(std::iter::repeat_n(b' ', MAX_FRAME_LEN));
    ctl.extend_from_slice(br#"{"type":"pause"}"#);
    let len = ctl.len();
    assert_eq!(decode(&ctl), Err(FrameError::FrameTooLarge(len)));
    let mut r = ControlReassembler::new();
    assert_eq!(r.push(&ctl), Err(FrameError::FrameTooLarge(len)));
    ctl[0] = KIND_CONTROL_PART;
    assert_eq!(r.push(&ctl), Err(FrameError::FrameTooLarge(len)));
}

#[test]
fn encode_frames_never_exceeds_the_frame_limit() {
    let m = big_manifest(20_000);
    let frames = m.encode_frames(usize::MAX);
    assert!(frames.len() > 1);
    assert!(frames.iter().all(|f| f.len() <= MAX_FRAME_LEN));
    let mut r = ControlReassembler::new();
    let out: Vec<_> = frames.iter().filter_map(|f| r.push(f).unwrap()).collect();
    assert_eq!(out, vec![Frame::Control(m)]);
}

/// `{"type":..,"files":[0,0,...]}` with `n` elements, as control parts.
fn listing(kind: &str, n: usize) -> Vec<Vec<u8>> {
    let mut body = format!(r#"{{"type":"{kind}","transfer_id":"ab","files":["#).into_bytes();
    body.extend(std::iter::repeat_n(&b"0,"[..], n).flatten());
    body.pop();
    body.extend_from_slice(b"]}");
    let n = body.len().div_ceil(MAX_FRAME_LEN - 2);
    body.chunks(MAX_FRAME_LEN - 2)
        .enumerate()
        .map(|(i, p)| {
            let mut f = vec![KIND_CONTROL_PART, if i + 1 == n { FLAG_LAST } else { 0 }];
            f.extend_from_slice(p);
            f
        })
        .collect()
}

#[test]
fn entry_lists_are_counted_before_they_are_built() {
    for kind in ["manifest", "accept"] {
        let mut r = ControlReassembler::new();
        let mut last = Ok(false);
        for f in listing(kind, MAX_FILES + 1) {
            last = r.push(&f).map(|x| x.is_some());
        }
        assert_eq!(last, Err(FrameError::TooManyEntries), "{kind}");
        // At the cap the count passes and the real parse has its say (numbers are not
        // entries).
        let mut last = Ok(false);
        for f in listing(kind, MAX_FILES) {
            last = r.push(&f).map(|x| x.is_some());
        }
        assert!(
            matches!(last, Err(FrameError::BadControl(_))),
            "{kind}: {last:?}"
        );
    }
    // Large messages without a list, or with a short one, are left to the real parse.
    assert_eq!(check_entry_count(&vec![b' '; 3 * MAX_FILES]), Ok(()));
    let mut m = br#"{"type":"cancel","reason":""#.to_vec();
    m.extend(std::iter::repeat_n(b'x', 3 * MAX_FILES));
    m.extend_from_slice(br#""}"#);
    assert_eq!(check_entry_count(&m), Ok(()));
    assert!(matches!(parse_control(&m), Ok(Control::Cancel { .. })));
}

fn arb_control() -> impl Strategy<Value = Control> {
    let entry = (".*", any::<u64>(), any::<i64>(), any::<bool>()).prop_map(
        |(path, size, mtime_ms, dir)| FileEntry {
            path,
            size,
            mtime_ms,
            dir,
        },
    );
    prop_oneof![
        (
            any::<u16>(),
            proptest::collection::vec("[a-z0-9]{1,8}", 0..4),
            any::<u32>(),
            "[0-9a-f]{0,64}"
        )
            .prop_map(|(version, caps, max_message_size, mac)| Control::Hello {
                version,
                caps,
                max_message_size,
                mac
            }),
        ("[0-9a-f]{0,64}", proptest::collection::vec(entry, 0..5))
            .prop_map(|(transfer_id, files)| Control::Manifest { transfer_id, files }),
        proptest::collection::vec(
            (any::<u32>(), any::<u64>()).prop_map(|(file, offset)| FileAccept { file, offset }),
            0..5
        )
        .prop_map(|files| Control::Accept { files }),
        (any::<u32>(), any::<u64>()).prop_map(|(file, offset)| Control::Ack { file, offset }),
        (any::<u32>(), any::<u64>()).prop_map(|(file, offset)| Control::Resend { file, offset }),
        (any::<u32>(), "[0-9a-f]{64}").prop_map(|(file, hash)| Control::FileEnd { file, hash }),
        any::<u32>().prop_map(|file| Control::FileDone { file }),
        ("[0-9a-f]{0,64}", ".*")
            .prop_map(|(transfer_id, text)| Control::Text { transfer_id, text }),
        Just(Control::Pause),
        Just(Control::Resume),
        Just(Control::Done),
        ".*".prop_map(|reason| Control::Cancel { reason }),
        ".*".prop_map(|reason| Control::Decline { reason }),
        (".*", any::<Option<u32>>()).prop_map(|(message, file)| Control::Error {
            code: PeerErrorCode::DiskFull,
            message,
            file
        }),
    ]
}

proptest! {
    #[test]
    fn control_roundtrip(m in arb_control()) {
        let f = m.encode();
        prop_assert_eq!(decode(&f).unwrap(), Frame::Control(m));
    }

    #[test]
    fn chunk_roundtrip(file in any::<u32>(), offset in any::<u64>(), flags in any::<u8>(),
                       hash in any::<[u8; 32]>(), data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let f = encode_chunk(file, offset, flags, &hash, &data);
        let expected = Frame::Chunk(Chunk { file, offset, flags, hash, data: &data });
        prop_assert_eq!(decode(&f).unwrap(), expected);
    }

    #[test]
    fn split_control_reassembles(m in arb_control(), max in 3usize..200) {
        let frames = m.encode_frames(max);
        let mut r = ControlReassembler::new();
        let mut got = Vec::new();
        for f in &frames {
            prop_assert!(frames.len() == 1 || f.len() <= max);
            if let Some(fr) = r.push(f).unwrap() {
                got.push(fr);
            }
        }
        prop_assert_eq!(got, vec![Frame::Control(m)]);
    }

    #[test]
    fn reassembler_never_panics(bufs in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut r = ControlReassembler::new();
        for b in &bufs {
            let _ = r.push(b);
        }
    }

    #[test]
    fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode(&buf);
    }
}
