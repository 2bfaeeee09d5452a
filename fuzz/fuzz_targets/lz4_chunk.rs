//! The compressed-chunk path: a peer's `FLAG_COMPRESSED` payload goes through
//! `compress::decompress` with the chunk limit as `max`.
//! Invariants: no panic; the decoder never allocates more than `max` bytes (plus a small
//! allowance for an error message) whatever length the payload claims; a success yields
//! exactly the claimed length; and anything `Compressor` sends decompresses to its input.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use ferry_fuzz::transfer::compress::{Compressor, decompress};
use ferry_proto::peer::MAX_CHUNK;
use libfuzzer_sys::fuzz_target;

/// Counts live heap bytes and their high-water mark, so the test can see what one call
/// allocated (the fuzzer runs one input at a time on this thread).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Room for `Corrupt`'s message and the Vec's minimum capacity.
const SLACK: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // Hostile payload against a limit the input picks: up to the real chunk limit.
        let Some((lim, payload)) = rest.split_first_chunk::<3>() else {
            return;
        };
        let max = (u32::from_le_bytes([lim[0], lim[1], lim[2], 0]) as usize) % (MAX_CHUNK + 1);
        let mut out = Vec::new();
        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        let res = decompress(payload, &mut out, max).map(|s| s.len());
        let grew = PEAK.load(Relaxed) - base;
        assert!(
            grew <= max + SLACK,
            "decompress allocated {grew} bytes with max {max}"
        );
        if let Ok(n) = res {
            let claimed = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
            assert_eq!(n, claimed as usize);
            assert!(n <= max);
        }
    } else {
        // Round trip: whatever the sender compresses comes back byte for byte.
        let mut c = Compressor::new();
        if let Some(wire) = c.compress(rest) {
            let wire = wire.to_vec();
            assert!(wire.len() < rest.len(), "compressed form is not smaller");
            let mut out = Vec::new();
            let back = decompress(&wire, &mut out, rest.len()).expect("own output decompresses");
            assert_eq!(back, rest);
        }
    }
});
