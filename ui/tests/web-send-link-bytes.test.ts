// What the browser sender says crossed the link (send.ts `SendStats.linkBytes`, the `done`
// event's `link_bytes`): the chunk payload after compression, counted off the frames the
// real send loop put on an in-memory link to the real receive loop, hashing with the wasm
// build (`bash scripts/build-wasm.sh`; skipped without it, as web-send.test.ts is).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { FrameQueue } from "../src/web/frame-queue";
import { CHUNK_HEADER_LEN, type FileEntry, KIND_CHUNK } from "../src/web/frames";
import { receive } from "../src/web/receive";
import { send, type SendStats, type Source } from "../src/web/send";
import { doneEvent } from "../src/web/send-run";
import type { FrameLink } from "../src/web/session";
import { MemorySink } from "../src/web/sink";
import { FerryWasm } from "../src/web/wasm";

const here = dirname(fileURLToPath(import.meta.url));
const WASM = join(here, "../src/web/ferry.wasm");

/** Two ends of an in-memory link; `tap` sees each frame on its way to the receiver. */
function linkPair(tap: (f: Uint8Array) => void) {
  const qa = new FrameQueue();
  const qb = new FrameQueue();
  const end = (mine: FrameQueue, theirs: FrameQueue, out?: (f: Uint8Array) => void): FrameLink => ({
    maxMessageSize: 256 * 1024,
    get isOpen() {
      return !mine.closed;
    },
    next: (d) => mine.next(d),
    async send(f) {
      if (mine.closed) throw new Error("closed");
      out?.(f);
      theirs.push(f.slice());
    },
    async close() {
      mine.close();
      theirs.close();
    },
  });
  return { sender: end(qa, qb, tap), receiver: end(qb, qa) };
}

describe.skipIf(!existsSync(WASM))("link bytes (wasm)", () => {
  const load = () => FerryWasm.load(readFileSync(WASM));

  /** Send `files` with LZ4 offered; the stats, and the chunk payload bytes seen on the link. */
  async function transfer(files: Uint8Array[]): Promise<{ stats: SendStats; onLink: number }> {
    const entries: FileEntry[] = files.map((f, i) => ({ path: `f${i}.bin`, size: f.length, mtime_ms: 0 }));
    let onLink = 0;
    const { sender, receiver } = linkPair((f) => {
      if (f[0] === KIND_CHUNK) onLink += f.length - CHUNK_HEADER_LEN;
    });
    const source: Source = { read: async (file, offset, len) => files[file].slice(offset, offset + len) };
    const [stats] = await Promise.all([
      send({ link: sender, wasm: await load(), transferId: "t", entries, source, caps: ["lz4"] }),
      receive({ link: receiver, wasm: await load(), sink: new MemorySink() }),
    ]);
    return { stats, onLink };
  }

  it("a compressible file: link_bytes is what crossed, well below the bytes", async () => {
    const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog\n".repeat(40_000));
    const { stats, onLink } = await transfer([text]);
    expect(stats.bytes).toBe(text.length);
    expect(stats.sent).toBe(text.length);
    expect(stats.compressed).toBeGreaterThan(0);
    expect(stats.linkBytes).toBe(onLink);
    expect(stats.linkBytes).toBeLessThan(text.length / 4);
    const done = doneEvent(stats, "t", 1);
    expect(done).toMatchObject({ event: "done", bytes: text.length, link_bytes: onLink });
  });

  it("random data goes as it is: link_bytes equals the payload sent", async () => {
    const b = new Uint8Array(600_000);
    for (let i = 0; i < b.length; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(i + 65536, b.length)));
    const { stats, onLink } = await transfer([b]);
    expect(stats.compressed).toBe(0);
    expect(stats.linkBytes).toBe(onLink);
    expect(stats.linkBytes).toBe(stats.sent);
  });
});
