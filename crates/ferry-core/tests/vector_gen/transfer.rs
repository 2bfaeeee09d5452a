//! Transfer ids, BLAKE3 pieces and roots, LZ4 chunk payloads.

use ferry_core::manifest::transfer_id;
use ferry_core::transfer::compress::{Compressor, DecompressError, decompress};
use ferry_core::transfer::tree::{FileTree, UNIT, piece_cv, piece_len, valid_piece};
use ferry_proto::RoomId;
use ferry_proto::peer::{self, FileEntry};
use serde_json::{Value, json};

use crate::{data_json, hex, log_text, sha256_hex};

fn entry(path: &str, size: u64, mtime_ms: i64, dir: bool) -> FileEntry {
    FileEntry {
        path: path.into(),
        size,
        mtime_ms,
        dir,
    }
}

pub(crate) fn sample_entries() -> Vec<FileEntry> {
    vec![
        entry("holiday/IMG_0001.jpg", 4_718_592, 1_764_000_000_123, false),
        entry("holiday/notes ü✓.txt", 0, 1_764_000_000_000, false),
        entry("holiday/empty", 0, 0, true),
        entry("old.bin", 7, -1, false),
    ]
}

pub(crate) fn transfer_id_vectors() -> Value {
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

pub(crate) fn blake3_vectors() -> Value {
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

pub(crate) fn lz4_vectors() -> Value {
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
