//! The browser peer's hashing and compression: ferry-core's own `transfer/tree.rs` (BLAKE3
//! chaining values of pieces, the whole-file hash built from them) and `transfer/compress.rs`
//! (LZ4 chunk payloads), compiled to `wasm32-unknown-unknown` by `scripts/build-wasm.sh`.
//! The sources are included by path, not copied, so the browser cannot drift from the
//! native engine; `tests/vectors/ferry-v1.json` checks both against the same values.
//!
//! The interface is plain C ABI over linear memory, no bindings generator: the caller
//! allocates buffers with [`ferry_alloc`], copies bytes in, calls, and reads results out.
//! Status codes: 0 is success; negative values are the errors listed at each function.
//! Every `u64` is a JavaScript `BigInt` on the other side.

#[allow(unreachable_pub, dead_code)]
#[path = "../../ferry-core/src/transfer/tree.rs"]
mod tree;

#[allow(unreachable_pub, dead_code)]
#[path = "../../ferry-core/src/transfer/compress.rs"]
mod compress;

use compress::{Compressor, DecompressError};
use tree::{FileTree, TreeError};

/// A piece does not continue the tree where it stands.
pub const ERR_OUT_OF_ORDER: i32 = -1;
/// A piece is not a BLAKE3 subtree of the file (see `tree::valid_piece`).
pub const ERR_BAD_SHAPE: i32 = -2;
/// The root was asked for before every byte was pushed.
pub const ERR_INCOMPLETE: i32 = -3;
/// A piece's chaining value differs from the one its sender claimed.
pub const ERR_MISMATCH: i32 = -4;
/// A compressed payload is shorter than its length prefix.
pub const ERR_TRUNCATED: i64 = -1;
/// A compressed payload claims more bytes than the output buffer holds.
pub const ERR_TOO_LARGE: i64 = -2;
/// A compressed payload does not decode to what its prefix says.
pub const ERR_CORRUPT: i64 = -3;
/// Compression was skipped or did not pay: send the chunk as it is.
pub const NOT_COMPRESSED: i64 = -1;

/// # Safety
/// `ptr` must be valid for `len` bytes (or `len` 0), as handed out by [`ferry_alloc`].
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract above.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// # Safety
/// `ptr` must be valid for writes of `len` bytes (or `len` 0).
unsafe fn output<'a>(ptr: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        &mut []
    } else {
        // SAFETY: the caller's contract above.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

/// `len` bytes of linear memory for the caller to fill; give them back with [`ferry_free`].
#[unsafe(no_mangle)]
pub extern "C" fn ferry_alloc(len: usize) -> *mut u8 {
    let mut v = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len.max(1)));
    v.as_mut_ptr()
}

/// Free what [`ferry_alloc`] returned.
///
/// # Safety
/// `ptr` and `len` must be exactly a pointer [`ferry_alloc`] returned and the length it was
/// asked for, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_free(ptr: *mut u8, len: usize) {
    // SAFETY: rebuilds the Vec `ferry_alloc` leaked, with its capacity.
    drop(unsafe { Vec::from_raw_parts(ptr, 0, len.max(1)) });
}

/// The plain BLAKE3 hash of `len` bytes at `ptr` into the 32 bytes at `out`.
///
/// # Safety
/// `ptr` readable for `len` bytes, `out` writable for 32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_blake3(ptr: *const u8, len: usize, out: *mut u8) {
    // SAFETY: the caller's contract above.
    let (data, out) = unsafe { (input(ptr, len), output(out, 32)) };
    out.copy_from_slice(blake3::hash(data).as_bytes());
}

/// Whether `len` bytes at `offset` of a `total`-byte file form a piece (1) or not (0).
#[unsafe(no_mangle)]
pub extern "C" fn ferry_valid_piece(offset: u64, len: u64, total: u64) -> u32 {
    u32::from(tree::valid_piece(offset, len, total))
}

/// Length of the piece at `offset` towards `end`, at most `target` bytes (0: none left).
#[unsafe(no_mangle)]
pub extern "C" fn ferry_piece_len(offset: u64, end: u64, total: u64, target: u64) -> u64 {
    tree::piece_len(offset, end, total, target)
}

/// The chaining value of the piece of `len` bytes at `ptr` that starts at `offset` of a
/// `total`-byte file, into the 32 bytes at `out`; [`ERR_BAD_SHAPE`] if it is no piece.
///
/// # Safety
/// `ptr` readable for `len` bytes, `out` writable for 32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_piece_cv(
    offset: u64,
    total: u64,
    ptr: *const u8,
    len: usize,
    out: *mut u8,
) -> i32 {
    if !tree::valid_piece(offset, len as u64, total) {
        return ERR_BAD_SHAPE;
    }
    // SAFETY: the caller's contract above.
    let (data, out) = unsafe { (input(ptr, len), output(out, 32)) };
    out.copy_from_slice(&tree::piece_cv(offset, data));
    0
}

/// A whole-file hash for a `total`-byte file, fed with [`ferry_tree_push`]; free it with
/// [`ferry_tree_free`].
#[unsafe(no_mangle)]
pub extern "C" fn ferry_tree_new(total: u64) -> *mut FileTree {
    Box::into_raw(Box::new(FileTree::new(total)))
}

/// Free a tree from [`ferry_tree_new`].
///
/// # Safety
/// `tree` came from [`ferry_tree_new`] and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_tree_free(tree: *mut FileTree) {
    // SAFETY: the caller's contract above.
    drop(unsafe { Box::from_raw(tree) });
}

fn tree_status(e: TreeError) -> i32 {
    match e {
        TreeError::OutOfOrder { .. } => ERR_OUT_OF_ORDER,
        TreeError::BadShape { .. } => ERR_BAD_SHAPE,
        TreeError::Incomplete { .. } => ERR_INCOMPLETE,
    }
}

/// Hash the next piece (`len` bytes at `ptr`, starting at `offset`) and add it to `tree`.
/// With `check` 0 the piece's chaining value is written to the 32 bytes at `cv` (sender);
/// otherwise `cv` holds the value the sender claimed and a piece that differs is refused
/// with [`ERR_MISMATCH`] and not added (receiver). Also [`ERR_OUT_OF_ORDER`], [`ERR_BAD_SHAPE`].
///
/// # Safety
/// `tree` from [`ferry_tree_new`], `ptr` readable for `len` bytes, `cv` valid for 32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_tree_push(
    tree: *mut FileTree,
    offset: u64,
    ptr: *const u8,
    len: usize,
    cv: *mut u8,
    check: u32,
) -> i32 {
    // SAFETY: the caller's contract above.
    let (tree, data, cv) = unsafe { (&mut *tree, input(ptr, len), output(cv, 32)) };
    if offset != tree.next_offset() {
        return ERR_OUT_OF_ORDER;
    }
    if !tree::valid_piece(offset, len as u64, tree.total()) {
        return ERR_BAD_SHAPE;
    }
    let got = tree::piece_cv(offset, data);
    if check != 0 && got[..] != cv[..] {
        return ERR_MISMATCH;
    }
    match tree.push(offset, data, got) {
        Ok(()) => {
            cv.copy_from_slice(&got);
            0
        }
        Err(e) => tree_status(e),
    }
}

/// Where the next piece of `tree` must start.
///
/// # Safety
/// `tree` from [`ferry_tree_new`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_tree_next(tree: *const FileTree) -> u64 {
    // SAFETY: the caller's contract above.
    unsafe { &*tree }.next_offset()
}

/// The file's BLAKE3 hash into the 32 bytes at `out`, once every byte has been pushed
/// ([`ERR_INCOMPLETE`] before).
///
/// # Safety
/// `tree` from [`ferry_tree_new`], `out` writable for 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_tree_root(tree: *const FileTree, out: *mut u8) -> i32 {
    // SAFETY: the caller's contract above.
    let (tree, out) = unsafe { (&*tree, output(out, 32)) };
    match tree.finalize() {
        Ok(h) => {
            out.copy_from_slice(h.as_bytes());
            0
        }
        Err(e) => tree_status(e),
    }
}

/// A sender's compression state (it backs off on incompressible data); free it with
/// [`ferry_compressor_free`].
#[unsafe(no_mangle)]
pub extern "C" fn ferry_compressor_new() -> *mut Compressor {
    Box::into_raw(Box::new(Compressor::new()))
}

/// Free a compressor from [`ferry_compressor_new`].
///
/// # Safety
/// `c` came from [`ferry_compressor_new`] and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_compressor_free(c: *mut Compressor) {
    // SAFETY: the caller's contract above.
    drop(unsafe { Box::from_raw(c) });
}

/// The wire payload (length prefix and LZ4 block) for `len` bytes at `ptr`, written to
/// `out` (room for `cap` bytes); returns its length, or [`NOT_COMPRESSED`] when the chunk
/// goes as it is (skipped, not worth it, or larger than `cap`).
///
/// # Safety
/// `c` from [`ferry_compressor_new`], `ptr` readable for `len` bytes, `out` writable for `cap`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_compress(
    c: *mut Compressor,
    ptr: *const u8,
    len: usize,
    out: *mut u8,
    cap: usize,
) -> i64 {
    // SAFETY: the caller's contract above.
    let (c, data, out) = unsafe { (&mut *c, input(ptr, len), output(out, cap)) };
    match c.compress(data) {
        Some(wire) if wire.len() <= out.len() => {
            out[..wire.len()].copy_from_slice(wire);
            wire.len() as i64
        }
        _ => NOT_COMPRESSED,
    }
}

/// Decode a compressed chunk payload (`len` bytes at `ptr`) into `out`, which holds at most
/// `cap` bytes (the largest chunk); returns the decoded length, or [`ERR_TRUNCATED`],
/// [`ERR_TOO_LARGE`], [`ERR_CORRUPT`].
///
/// # Safety
/// `ptr` readable for `len` bytes, `out` writable for `cap`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_decompress(
    ptr: *const u8,
    len: usize,
    out: *mut u8,
    cap: usize,
) -> i64 {
    // SAFETY: the caller's contract above.
    let (payload, out) = unsafe { (input(ptr, len), output(out, cap)) };
    // compress.rs decodes into a Vec it may resize; the bound keeps it within `cap`.
    let mut buf = Vec::new();
    match compress::decompress(payload, &mut buf, cap) {
        Ok(data) => {
            out[..data.len()].copy_from_slice(data);
            data.len() as i64
        }
        Err(DecompressError::Truncated) => ERR_TRUNCATED,
        Err(DecompressError::TooLarge(..)) => ERR_TOO_LARGE,
        Err(DecompressError::Corrupt(_)) => ERR_CORRUPT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn tree_through_the_c_interface_gives_the_plain_hash() {
        let d = data(300_001);
        let total = d.len() as u64;
        let t = ferry_tree_new(total);
        let mut at = 0u64;
        let mut cv = [0u8; 32];
        while at < total {
            let len = ferry_piece_len(at, total, total, 16 << 10);
            let piece = &d[at as usize..(at + len) as usize];
            let mut want = [0u8; 32];
            assert_eq!(
                unsafe {
                    ferry_piece_cv(at, total, piece.as_ptr(), piece.len(), want.as_mut_ptr())
                },
                0
            );
            if at == 16 << 10 {
                // A receiver refuses a piece whose claimed value is wrong, and can retry it.
                let mut bad = want;
                bad[0] ^= 1;
                let r = unsafe {
                    ferry_tree_push(t, at, piece.as_ptr(), piece.len(), bad.as_mut_ptr(), 1)
                };
                assert_eq!(r, ERR_MISMATCH);
                assert_eq!(unsafe { ferry_tree_next(t) }, at);
                cv = want;
                let r = unsafe {
                    ferry_tree_push(t, at, piece.as_ptr(), piece.len(), cv.as_mut_ptr(), 1)
                };
                assert_eq!(r, 0);
            } else {
                let r = unsafe {
                    ferry_tree_push(t, at, piece.as_ptr(), piece.len(), cv.as_mut_ptr(), 0)
                };
                assert_eq!((r, cv), (0, want));
            }
            at += len;
        }
        let mut root = [0u8; 32];
        assert_eq!(unsafe { ferry_tree_root(t, root.as_mut_ptr()) }, 0);
        assert_eq!(&root, blake3::hash(&d).as_bytes());
        unsafe { ferry_tree_free(t) };
    }

    #[test]
    fn out_of_order_and_incomplete_are_codes() {
        let d = data(4096);
        let t = ferry_tree_new(8192);
        let mut cv = [0u8; 32];
        let r = unsafe { ferry_tree_push(t, 4096, d.as_ptr(), d.len(), cv.as_mut_ptr(), 0) };
        assert_eq!(r, ERR_OUT_OF_ORDER);
        let r = unsafe { ferry_tree_push(t, 0, d.as_ptr(), 3000, cv.as_mut_ptr(), 0) };
        assert_eq!(r, ERR_BAD_SHAPE);
        assert_eq!(
            unsafe { ferry_tree_root(t, cv.as_mut_ptr()) },
            ERR_INCOMPLETE
        );
        unsafe { ferry_tree_free(t) };
    }

    #[test]
    fn lz4_round_trip_and_refusals() {
        let text: Vec<u8> = b"ferry ferry ferry ".repeat(1000);
        let c = ferry_compressor_new();
        let mut wire = vec![0u8; 64 << 10];
        let n =
            unsafe { ferry_compress(c, text.as_ptr(), text.len(), wire.as_mut_ptr(), wire.len()) };
        assert!(n > 0 && (n as usize) < text.len() / 10, "{n}");
        let mut out = vec![0u8; 256 << 10];
        let m = unsafe { ferry_decompress(wire.as_ptr(), n as usize, out.as_mut_ptr(), out.len()) };
        assert_eq!(&out[..m as usize], &text[..]);
        let small = unsafe { ferry_decompress(wire.as_ptr(), n as usize, out.as_mut_ptr(), 100) };
        assert_eq!(small, ERR_TOO_LARGE);
        assert_eq!(
            unsafe { ferry_decompress(wire.as_ptr(), 2, out.as_mut_ptr(), 100) },
            ERR_TRUNCATED
        );
        unsafe { ferry_compressor_free(c) };
        let p = ferry_alloc(10);
        unsafe { ferry_free(p, 10) };
    }
}
