//! Adaptive LZ4 for chunk payloads.
//!
//! On two busy cores the WebRTC stack costs about three CPU-seconds per GiB per side, so every
//! byte not sent is worth far more than the LZ4 pass that saves it. Incompressible data must
//! not pay for the attempt, though: a chunk that does not shrink to [`WORTH`] of its size
//! makes the sender skip the next chunks, doubling the skip each time up to [`MAX_SKIP`], so
//! random or already-compressed files see one attempt in 64 chunks.
//!
//! Wire form (`FLAG_COMPRESSED`): uncompressed length as u32 LE, then an LZ4 block. The chunk's
//! chaining value is over the uncompressed bytes, so verification is unchanged.

/// A compressed chunk must be at most this fraction of the original to be sent compressed.
pub const WORTH: f64 = 0.9;
/// Longest run of chunks sent without trying after repeated failures.
pub const MAX_SKIP: u32 = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("compressed chunk shorter than its length prefix")]
    Truncated,
    #[error("compressed chunk claims {0} bytes, above the {1}-byte chunk limit")]
    TooLarge(usize, usize),
    #[error("compressed chunk is corrupt: {0}")]
    Corrupt(String),
}

/// The sender's per-transfer compression state.
#[derive(Debug, Clone)]
pub struct Compressor {
    /// Chunks still to send as they are before the next attempt.
    skip: u32,
    /// Skip to apply after the next failure.
    backoff: u32,
    out: Vec<u8>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        Compressor {
            skip: 0,
            backoff: 1,
            out: Vec::new(),
        }
    }

    /// The wire payload for `data` if compressing it is worth it (prefix included).
    pub fn compress(&mut self, data: &[u8]) -> Option<&[u8]> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let budget = (data.len() as f64 * WORTH) as usize;
        if budget <= 4 || u32::try_from(data.len()).is_err() {
            return None;
        }
        // lz4_flex wants room for the worst case up front, so it cannot stop early.
        self.out
            .resize(4 + lz4_flex::block::get_maximum_output_size(data.len()), 0);
        self.out[..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        match lz4_flex::block::compress_into(data, &mut self.out[4..]) {
            Ok(n) if 4 + n <= budget => {
                self.backoff = 1;
                Some(&self.out[..4 + n])
            }
            _ => {
                self.skip = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_SKIP);
                None
            }
        }
    }
}

/// Undo [`Compressor::compress`] into `out`, refusing to expand past `max` bytes.
pub fn decompress<'a>(
    payload: &[u8],
    out: &'a mut Vec<u8>,
    max: usize,
) -> Result<&'a [u8], DecompressError> {
    let (len, block) = payload
        .split_first_chunk::<4>()
        .ok_or(DecompressError::Truncated)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > max {
        return Err(DecompressError::TooLarge(len, max));
    }
    out.resize(len, 0);
    let n = lz4_flex::block::decompress_into(block, out)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if n != len {
        return Err(DecompressError::Corrupt(format!(
            "{n} bytes where the prefix said {len}"
        )));
    }
    Ok(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng, rngs::StdRng};

    fn text(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!(
                    "2026-11-25T08:{:02}:{:02}Z INFO request {i} served in {} ms\n",
                    i % 60,
                    i % 59,
                    i % 97
                )
                .as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn compressible_chunks_shrink_and_round_trip() {
        let data = text(128 * 1024);
        let mut c = Compressor::new();
        let wire = c.compress(&data).expect("log text compresses").to_vec();
        assert!(
            wire.len() < data.len() / 3,
            "{} of {}",
            wire.len(),
            data.len()
        );
        let mut out = Vec::new();
        assert_eq!(decompress(&wire, &mut out, 256 * 1024).unwrap(), &data[..]);
    }

    #[test]
    fn random_data_backs_off_to_one_attempt_in_max_skip() {
        let mut data = vec![0u8; 64 * 1024];
        StdRng::seed_from_u64(1).fill_bytes(&mut data);
        let mut c = Compressor::new();
        let mut attempts = 0;
        for _ in 0..1000 {
            let before = c.skip;
            assert!(c.compress(&data).is_none());
            if before == 0 {
                attempts += 1;
            }
        }
        // 1 + 1 + 2 + 4 + ... then one in every 65.
        assert!(attempts < 25, "{attempts} attempts in 1000 chunks");
        // Compressible data after a random stretch is picked up again.
        let t = text(64 * 1024);
        let picked = (0..=MAX_SKIP).any(|_| c.compress(&t).is_some());
        assert!(picked);
        assert_eq!(c.backoff, 1);
    }

    #[test]
    fn hostile_payloads_are_refused() {
        let mut out = Vec::new();
        assert_eq!(
            decompress(&[1, 2], &mut out, 1024),
            Err(DecompressError::Truncated)
        );
        let huge = [0xff, 0xff, 0xff, 0x7f, 0];
        assert!(matches!(
            decompress(&huge, &mut out, 256 * 1024),
            Err(DecompressError::TooLarge(..))
        ));
        let mut bad = (1000u32).to_le_bytes().to_vec();
        bad.extend_from_slice(&[0xf0, 1, 2, 3]);
        assert!(matches!(
            decompress(&bad, &mut out, 256 * 1024),
            Err(DecompressError::Corrupt(_))
        ));
        // A valid block that decodes to fewer bytes than its prefix claims.
        let data = text(4096);
        let mut c = Compressor::new();
        let mut wire = c.compress(&data).unwrap().to_vec();
        wire[..4].copy_from_slice(&5000u32.to_le_bytes());
        assert!(decompress(&wire, &mut out, 256 * 1024).is_err());
    }
}
