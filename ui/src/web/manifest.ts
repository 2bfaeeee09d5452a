// The transfer id, as crates/ferry-core/src/manifest.rs computes it: BLAKE3 over
// "ferry-transfer-v1\0" ‖ room ‖ "\0", then per entry path ‖ "\0" ‖ size u64 LE ‖
// mtime_ms i64 LE ‖ dir byte; the first 32 hex digits. The resume store's key.
import { concat, toHex, u64le, utf8 } from "./bytes";
import { encodeFrames, type FileEntry } from "./frames";

/** Largest frame a host sends behind its hello, before the guest's says what it takes: the
 * least any Ferry peer announces (defaults.rs OPENING_FRAME). */
const OPENING_FRAME = 16 * 1024;
/** Most frames a host sends behind its hello (defaults.rs OPENING_FRAMES): with the hello they
 * stay under what a receiver holds while its channel opens. */
const OPENING_FRAMES = 8;

export function transferId(room: string, entries: FileEntry[], blake3: (data: Uint8Array) => Uint8Array): string {
  const parts = [utf8("ferry-transfer-v1\0"), utf8(room), Uint8Array.of(0)];
  for (const e of entries) {
    parts.push(utf8(e.path), Uint8Array.of(0), u64le(BigInt(e.size)), u64le(BigInt(e.mtime_ms)), Uint8Array.of(e.dir ? 1 : 0));
  }
  return toHex(blake3(concat(...parts))).slice(0, 32);
}

/** The manifest as frames a host sends right behind its hello (docs/CRYPTO.md §5), so the
 * guest's hello and its accept come back together; empty when it is more than those few small
 * frames, and it then follows the guest's hello as before (SendJob::opening_frames). */
export function manifestOpening(room: string, entries: FileEntry[], blake3: (data: Uint8Array) => Uint8Array): Uint8Array[] {
  const frames = encodeFrames({ type: "manifest", transfer_id: transferId(room, entries, blake3), files: entries }, OPENING_FRAME);
  return frames.length <= OPENING_FRAMES ? frames : [];
}
