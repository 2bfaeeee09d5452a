//! A file's BLAKE3 hash assembled from its chunks' chaining values, so each byte is hashed
//! once per side.
//!
//! BLAKE3 is a tree over 1 KiB chunks. A chunk of `2^k` KiB that starts at a multiple of its
//! own length is a complete subtree, and the hash of that subtree (its *chaining value*)
//! verifies the chunk just as well as a plain hash would. Sending chaining values instead of
//! plain hashes lets both sides build the standard whole-file BLAKE3 (what `b3sum` prints)
//! from the values they already computed for per-chunk verification, instead of feeding every
//! byte through a second hasher. That second pass was ~12 % of each side's CPU at full speed.
//!
//! The price is a rule on chunk shapes ([`valid_piece`]): every chunk except a file's last is
//! a power of two of at least 1 KiB and starts at a multiple of its length. [`piece_len`]
//! produces such chunks for any target size, so the sender can still change its chunk size
//! mid-file.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

/// BLAKE3's chunk length: every piece boundary is a multiple of it.
pub const UNIT: u64 = blake3::CHUNK_LEN as u64;

/// The largest subtree that may start at `offset` (its lowest set bit); `None` at 0.
fn align_cap(offset: u64) -> Option<u64> {
    (offset != 0).then(|| 1u64 << offset.trailing_zeros())
}

fn prev_pow2(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1u64 << (63 - n.leading_zeros())
    }
}

/// Length of the piece that starts at `offset` and reads towards `end` (≤ `total`), at most
/// `target` bytes (rounded down to a power of two ≥ [`UNIT`]). A piece ends at `end` only
/// when `end` is the file's end or the shape allows it; otherwise it is the largest aligned
/// power of two that fits. `offset` and `end` must be multiples of [`UNIT`] (or `end ==
/// total`); returns 0 when nothing is left.
pub fn piece_len(offset: u64, end: u64, total: u64, target: u64) -> u64 {
    let remaining = end.saturating_sub(offset);
    if remaining == 0 {
        return 0;
    }
    let mut cap = prev_pow2(target.max(UNIT));
    if let Some(a) = align_cap(offset) {
        cap = cap.min(a);
    }
    if end == total && remaining <= cap {
        remaining
    } else {
        cap.min(prev_pow2(remaining))
    }
}

/// Whether `len` bytes at `offset` of a `total`-byte file form a subtree of the file's
/// BLAKE3 tree. Checked on everything a peer sends before it reaches the hasher, whose
/// shape checks are assertions.
pub fn valid_piece(offset: u64, len: u64, total: u64) -> bool {
    let Some(end) = offset.checked_add(len) else {
        return false;
    };
    if len == 0 || end > total || !offset.is_multiple_of(UNIT) {
        return false;
    }
    if align_cap(offset).is_some_and(|a| len > a) {
        return false;
    }
    end == total || (len.is_power_of_two() && len >= UNIT)
}

/// Chaining value of a piece; the caller has checked [`valid_piece`].
pub fn piece_cv(offset: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(data);
    h.finalize_non_root()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("piece at {offset}+{len} does not continue the hash tree at {expected}")]
    OutOfOrder {
        offset: u64,
        len: u64,
        expected: u64,
    },
    #[error("piece at {offset}+{len} is not a BLAKE3 subtree of a {total}-byte file")]
    BadShape { offset: u64, len: u64, total: u64 },
    #[error("hash asked for at {at} of {total} bytes")]
    Incomplete { at: u64, total: u64 },
}

#[derive(Debug, Clone)]
struct Node {
    offset: u64,
    len: u64,
    cv: ChainingValue,
}

/// The whole-file hash, fed piece by piece in order. Holds O(log size) values.
#[derive(Debug, Clone)]
pub struct FileTree {
    total: u64,
    next: u64,
    /// Complete subtrees left of `last`, merged as far as their alignment allows.
    stack: Vec<Node>,
    /// The newest piece. Kept apart until a later one arrives: only then is it known not to
    /// be the root's right edge.
    last: Option<Node>,
    /// A file that is one piece has no parent node; its hash is the plain hash of the piece.
    whole: Option<blake3::Hash>,
}

impl FileTree {
    pub fn new(total: u64) -> Self {
        FileTree {
            total,
            next: 0,
            stack: Vec::new(),
            last: None,
            whole: None,
        }
    }

    /// Size of the file this tree hashes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Where the next piece must start.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Add the piece at [`Self::next_offset`] whose chaining value is `cv` (from
    /// [`piece_cv`], already compared with what the peer claimed).
    pub fn push(&mut self, offset: u64, data: &[u8], cv: ChainingValue) -> Result<(), TreeError> {
        let len = data.len() as u64;
        if offset != self.next {
            return Err(TreeError::OutOfOrder {
                offset,
                len,
                expected: self.next,
            });
        }
        if !valid_piece(offset, len, self.total) {
            return Err(TreeError::BadShape {
                offset,
                len,
                total: self.total,
            });
        }
        if offset == 0 && len == self.total {
            self.whole = Some(blake3::hash(data));
        }
        if let Some(prev) = self.last.take() {
            self.stack.push(prev);
            self.merge();
        }
        self.last = Some(Node { offset, len, cv });
        self.next = offset + len;
        Ok(())
    }

    /// Hash `data` as the next piece and add it; returns its chaining value.
    pub fn push_data(&mut self, offset: u64, data: &[u8]) -> Result<ChainingValue, TreeError> {
        let len = data.len() as u64;
        if !valid_piece(offset, len, self.total) {
            return Err(TreeError::BadShape {
                offset,
                len,
                total: self.total,
            });
        }
        let cv = piece_cv(offset, data);
        self.push(offset, data, cv)?;
        Ok(cv)
    }

    /// Join neighbours of equal size whose union is itself an aligned subtree. Safe only
    /// because a later piece exists, so none of these can be the root.
    fn merge(&mut self) {
        while let [.., a, b] = self.stack.as_slice() {
            if a.len != b.len || !a.offset.is_multiple_of(2 * a.len) {
                break;
            }
            let node = Node {
                offset: a.offset,
                len: 2 * a.len,
                cv: merge_subtrees_non_root(&a.cv, &b.cv, Mode::Hash),
            };
            self.stack.truncate(self.stack.len() - 2);
            self.stack.push(node);
        }
    }

    /// The standard BLAKE3 hash of the whole file, once every byte has been pushed.
    pub fn finalize(&self) -> Result<blake3::Hash, TreeError> {
        if self.next != self.total {
            return Err(TreeError::Incomplete {
                at: self.next,
                total: self.total,
            });
        }
        if let Some(h) = self.whole {
            return Ok(h);
        }
        let Some(last) = &self.last else {
            return Ok(blake3::hash(b""));
        };
        // The right edge of a left-balanced tree: fold from the newest subtree leftwards,
        // the outermost join being the root.
        let mut out = last.cv;
        for (i, node) in self.stack.iter().enumerate().rev() {
            if i == 0 {
                return Ok(merge_subtrees_root(&node.cv, &out, Mode::Hash));
            }
            out = merge_subtrees_non_root(&node.cv, &out, Mode::Hash);
        }
        // Unreachable with `whole` set for single-piece files; kept total rather than panic.
        Ok(blake3::hash(b""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};

    fn tree_hash(data: &[u8], mut target: impl FnMut() -> u64) -> blake3::Hash {
        let total = data.len() as u64;
        let mut t = FileTree::new(total);
        let mut at = 0;
        while at < total {
            let len = piece_len(at, total, total, target());
            assert!(valid_piece(at, len, total), "{at}+{len} of {total}");
            t.push_data(at, &data[at as usize..(at + len) as usize])
                .unwrap();
            at += len;
        }
        t.finalize().unwrap()
    }

    #[test]
    fn matches_plain_blake3_for_any_size_and_chunk_schedule() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut data = vec![0u8; 3 << 20];
        rng.fill_bytes(&mut data);
        let mut sizes: Vec<usize> = vec![0, 1, 1023, 1024, 1025, 2048, 3072, 65536, 65537];
        sizes.extend((0..40).map(|_| rng.gen_range(0..data.len())));
        sizes.push(data.len());
        for size in sizes {
            let d = &data[..size];
            let want = blake3::hash(d);
            for fixed in [UNIT, 16 << 10, 128 << 10, 256 << 10, 1 << 20] {
                assert_eq!(tree_hash(d, || fixed), want, "size {size} chunk {fixed}");
            }
            // The sender may change its chunk size at any time.
            let mut r = StdRng::seed_from_u64(size as u64);
            assert_eq!(
                tree_hash(d, || 1u64 << r.gen_range(10..19)),
                want,
                "size {size} random chunks"
            );
        }
    }

    #[test]
    fn prefix_rebuilt_in_other_pieces_continues_the_same_tree() {
        // The receiver re-hashes a resumed .part prefix in 1 MiB reads; the sender's chunks
        // then carry on from that offset.
        let mut data = vec![0u8; (5 << 20) + 777];
        StdRng::seed_from_u64(3).fill_bytes(&mut data);
        let total = data.len() as u64;
        let resume = (3 << 20) + 96 * 1024;
        let mut t = FileTree::new(total);
        let mut at = 0;
        while at < resume {
            let len = piece_len(at, resume, total, 1 << 20);
            t.push_data(at, &data[at as usize..(at + len) as usize])
                .unwrap();
            at += len;
        }
        while at < total {
            let len = piece_len(at, total, total, 128 << 10);
            t.push_data(at, &data[at as usize..(at + len) as usize])
                .unwrap();
            at += len;
        }
        assert_eq!(t.finalize().unwrap(), blake3::hash(&data));
    }

    #[test]
    fn pieces_that_break_the_tree_are_refused_not_hashed() {
        let total = 10 * UNIT;
        assert!(!valid_piece(0, 3 * UNIT, total), "not a power of two");
        assert!(!valid_piece(UNIT, 2 * UNIT, total), "misaligned");
        assert!(!valid_piece(100, UNIT, total), "mid-chunk offset");
        assert!(!valid_piece(8 * UNIT, 4 * UNIT, total), "past the end");
        assert!(!valid_piece(0, 0, total), "empty");
        assert!(!valid_piece(u64::MAX - 10, 20, u64::MAX), "overflow");
        assert!(valid_piece(8 * UNIT, 2 * UNIT, total), "final piece");
        assert!(valid_piece(0, total, total), "whole file");
        let mut t = FileTree::new(total);
        let data = vec![1u8; 3 * UNIT as usize];
        assert!(matches!(
            t.push_data(0, &data),
            Err(TreeError::BadShape { .. })
        ));
        t.push_data(0, &data[..UNIT as usize]).unwrap();
        assert!(matches!(
            t.push_data(2 * UNIT, &data[..UNIT as usize]),
            Err(TreeError::OutOfOrder { .. })
        ));
        assert!(matches!(t.finalize(), Err(TreeError::Incomplete { .. })));
    }

    #[test]
    fn piece_len_follows_alignment_and_target() {
        let total = 1 << 30;
        assert_eq!(piece_len(0, total, total, 128 << 10), 128 << 10);
        assert_eq!(piece_len(0, total, total, 100 << 10), 64 << 10);
        assert_eq!(piece_len(64 << 10, total, total, 256 << 10), 64 << 10);
        assert_eq!(piece_len(256 << 10, total, total, 256 << 10), 256 << 10);
        assert_eq!(piece_len(0, 96 << 10, total, 1 << 20), 64 << 10);
        assert_eq!(piece_len(0, 5000, 5000, 1 << 20), 5000);
        assert_eq!(piece_len(4096, 5000, 5000, 1 << 20), 904);
        assert_eq!(piece_len(10, 10, 10, 1024), 0);
    }
}
