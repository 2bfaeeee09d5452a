//! Fixtures shared by Ferry's test suites: one seeded data generator, and the file sizes at
//! which the transfer protocol changes what it does. Only ever a dev-dependency.

use std::path::Path;

/// `len` bytes, the same for the same seed and different across seeds. Incompressible, so
/// chunk compression never changes what a test moves.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64; the state must not be 0.
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut v = Vec::with_capacity(len);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Write [`data`]`(len, seed)` to `path`, creating its folder.
pub fn write_file(path: &Path, len: usize, seed: u64) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("create the test file's folder");
    }
    std::fs::write(path, data(len, seed)).expect("write the test file");
}

/// BLAKE3 hashes the data in 1 KiB chunks: resume offsets and rewinds sit on this grid.
pub const UNIT: u64 = 1024;

/// File sizes where the transfer changes behaviour, for a link whose chunk payload is
/// `chunk`, with the receiver acknowledging every `ack_every` bytes and the sender allowing
/// `window` unacknowledged: empty, one byte, each side of the hash unit, of one and two
/// chunks, of the ack interval and of the window. Sorted, without repeats.
pub fn boundary_sizes(chunk: u64, ack_every: u64, window: u64) -> Vec<u64> {
    let mut v = vec![0, 1];
    for edge in [UNIT, chunk, 2 * chunk, ack_every, window] {
        v.extend([edge - 1, edge, edge + 1]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_seeded() {
        assert_eq!(data(1000, 7), data(1000, 7));
        assert_ne!(data(1000, 7), data(1000, 8));
        assert_eq!(data(0, 1), Vec::<u8>::new());
        // The zero seed must not collapse into zeros.
        assert!(data(64, 0).iter().any(|&b| b != 0));
    }

    #[test]
    fn boundaries_straddle_each_edge() {
        let s = boundary_sizes(64 * 1024, 1 << 20, 8 << 20);
        for edge in [1024u64, 64 * 1024, 128 * 1024, 1 << 20, 8 << 20] {
            assert!(s.contains(&(edge - 1)) && s.contains(&edge) && s.contains(&(edge + 1)));
        }
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s[..2], [0, 1]);
    }
}
