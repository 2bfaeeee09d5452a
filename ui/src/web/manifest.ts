// The transfer id, as crates/ferry-core/src/manifest.rs computes it: BLAKE3 over
// "ferry-transfer-v1\0" ‖ room ‖ "\0", then per entry path ‖ "\0" ‖ size u64 LE ‖
// mtime_ms i64 LE ‖ dir byte; the first 32 hex digits. The resume store's key.
import { concat, toHex, u64le, utf8 } from "./bytes";
import type { FileEntry } from "./frames";

export function transferId(room: string, entries: FileEntry[], blake3: (data: Uint8Array) => Uint8Array): string {
  const parts = [utf8("ferry-transfer-v1\0"), utf8(room), Uint8Array.of(0)];
  for (const e of entries) {
    parts.push(utf8(e.path), Uint8Array.of(0), u64le(BigInt(e.size)), u64le(BigInt(e.mtime_ms)), Uint8Array.of(e.dir ? 1 : 0));
  }
  return toHex(blake3(concat(...parts))).slice(0, 32);
}
