//! The chunk-shape rules a receiver applies to every chunk before hashing it
//! (`tree::valid_piece`, then `piece_cv` and `FileTree`, whose BLAKE3 hazmat calls assert on
//! shapes), with offsets and lengths a hostile sender picks, interleaved with the shapes an
//! honest sender makes (`piece_len`, any chunk size, changing mid-file).
//! Invariants: no panic; `piece_len` only makes pieces `valid_piece` accepts; whatever
//! sequence of pieces the tree accepts, once it covers the file its hash is the file's plain
//! BLAKE3 hash.
#![no_main]

use ferry_fuzz::transfer::tree::{FileTree, UNIT, piece_len, valid_piece};
use libfuzzer_sys::fuzz_target;

/// Largest file the target builds: big enough for several levels of subtrees, small enough
/// to hash thousands of times a second.
const MAX_TOTAL: u64 = 64 * 1024 + 100;

fuzz_target!(|data: &[u8]| {
    let Some((size, ops)) = data.split_first_chunk::<3>() else {
        return;
    };
    let total = u64::from(u32::from_le_bytes([size[0], size[1], size[2], 0])) % (MAX_TOTAL + 1);
    let file: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let mut tree = FileTree::new(total);
    for op in ops.chunks(3) {
        let next = tree.next_offset();
        if next == total {
            break;
        }
        let (b0, b1, b2) = (
            op[0],
            op.get(1).copied().unwrap_or(0),
            op.get(2).copied().unwrap_or(0),
        );
        if b0 & 0x80 != 0 {
            // Honest sender: a power-of-two target; sometimes reading towards an earlier end
            // (a window edge), which must be a UNIT multiple.
            let target = UNIT << (b0 % 10);
            let end = if b1 & 1 == 0 {
                total
            } else {
                (next + UNIT * (1 + u64::from(b2)))
                    .min(total / UNIT * UNIT)
                    .max(next)
            };
            let len = piece_len(next, end, total, target);
            if len == 0 {
                continue;
            }
            assert!(
                valid_piece(next, len, total),
                "piece_len made an invalid piece {next}+{len} of {total} (target {target}, end {end})"
            );
            let piece = &file[next as usize..(next + len) as usize];
            tree.push_data(next, piece).expect("honest piece accepted");
        } else {
            // Hostile sender: any length, at the expected offset or a nearby one.
            let len = u64::from(u16::from_le_bytes([b1, b2])) % (total + 2);
            let offset = match b0 % 4 {
                0 | 1 => next,
                2 => next + UNIT * u64::from(b0 >> 2),
                _ => next.saturating_sub(u64::from(b0 >> 2) * 7),
            };
            let valid = valid_piece(offset, len, total);
            if valid {
                assert!(offset + len <= total && len > 0);
            }
            let Some(piece) = file.get(offset as usize..(offset + len) as usize) else {
                assert!(
                    !valid,
                    "valid piece {offset}+{len} outside a {total}-byte file"
                );
                continue;
            };
            let res = tree.push_data(offset, piece);
            assert!(
                res.is_err() || (valid && offset == next),
                "tree took {offset}+{len}"
            );
        }
    }
    if tree.next_offset() == total {
        assert_eq!(
            tree.finalize().expect("complete"),
            blake3::hash(&file),
            "tree hash differs from the file's BLAKE3"
        );
    } else {
        assert!(tree.finalize().is_err());
    }
});
