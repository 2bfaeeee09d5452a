// @vitest-environment node
// The streamed download's two halves joined by a real MessageChannel: the receive Worker's
// `StreamSink` (sink-stream.ts) and the Service Worker's stream (download-stream.ts), read the
// way a browser download reads its response body.
import { describe, expect, it } from "vitest";

import { concat } from "../src/web/bytes";
import { contentDisposition, downloadId, downloadStream } from "../src/web/download-stream";
import type { FileEntry } from "../src/web/frames";
import { type DownloadRequest, StreamSink } from "../src/web/sink-stream";
import { WebError } from "../src/web/signal";
import { downloadUrl } from "../src/web/stream-page";

const entry = (path: string, size: number): FileEntry => ({ path, size }) as FileEntry;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i += 1) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A sink whose downloads are served by `downloadStream` with `window`, as sw.ts does. */
function pipe(window: number, silentMs?: number) {
  const started: { req: DownloadRequest; reader: ReadableStreamDefaultReader<Uint8Array> }[] = [];
  const sink = new StreamSink((req) => {
    const dl = downloadStream(req.port, window);
    started.push({ req, reader: dl.stream.getReader() });
  }, silentMs);
  return { sink, started };
}

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return concat(...parts);
}

describe("streamed download", () => {
  it("is byte-exact, holds at most a window ahead of the reader, and finishes only once read", async () => {
    const WINDOW = 64 * 1024;
    const CHUNK = 16 * 1024;
    const data = bytes(1024 * 1024 + 333);
    const { sink, started } = pipe(WINDOW);
    const file = await sink.open(0, entry("dir/big.bin", data.length));
    expect(file.start).toBe(0);
    expect(file.read).toBeUndefined();
    let written = 0;
    const writer = (async () => {
      for (let at = 0; at < data.length; at += CHUNK) {
        const piece = data.subarray(at, Math.min(at + CHUNK, data.length));
        await file.write(at, piece);
        written = at + piece.length;
      }
      await file.finish();
      return "finished";
    })();
    // Nobody reads: the writer must stall at the window (plus one chunk in flight).
    await sleep(200);
    expect(started).toHaveLength(1);
    expect(started[0].req.name).toBe("big.bin");
    expect(started[0].req.size).toBe(data.length);
    expect(started[0].req.id).toMatch(/^[0-9a-f]{32}$/);
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThanOrEqual(WINDOW + CHUNK);
    const got = await readAll(started[0].reader);
    expect(await writer).toBe("finished");
    expect(got.length).toBe(data.length);
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    expect(sink.files).toEqual([{ path: "dir/big.bin", size: data.length }]);
  });

  it("finish waits for the download to read the last bytes", async () => {
    const { sink, started } = pipe(1024 * 1024);
    const file = await sink.open(0, entry("a.bin", 1000));
    await file.write(0, bytes(1000));
    let finished = false;
    const fin = file.finish().then(() => (finished = true));
    await sleep(100);
    expect(finished).toBe(false);
    expect((await readAll(started[0].reader)).length).toBe(1000);
    await fin;
    expect(finished).toBe(true);
  });

  it("an empty file is a download of nothing, started at its end", async () => {
    const { sink, started } = pipe(1024);
    const file = await sink.open(3, entry("empty", 0));
    expect(started).toHaveLength(0);
    const fin = file.finish();
    expect(started).toHaveLength(1);
    expect((await readAll(started[0].reader)).length).toBe(0);
    await fin;
    expect(sink.files).toEqual([{ path: "empty", size: 0 }]);
  });

  it("a rewind before what the download already has is refused, not written", async () => {
    const { sink, started } = pipe(1024 * 1024);
    const file = await sink.open(0, entry("r.bin", 4096));
    await file.write(0, bytes(2048));
    const err = await file.write(0, bytes(1024)).catch((e) => e);
    expect(err).toBeInstanceOf(WebError);
    expect(err.code).toBe("integrity");
    expect(err.message).toMatch(/cannot be rewound/);
    await file.abort();
    await expect(readAll(started[0].reader)).rejects.toThrow(/must be received again/);
  });

  it("a gap is a protocol error", async () => {
    const { sink } = pipe(1024 * 1024);
    const file = await sink.open(0, entry("g.bin", 4096));
    await file.write(0, bytes(1024));
    await expect(file.write(2048, bytes(1024))).rejects.toMatchObject({ code: "protocol" });
    await file.abort();
  });

  it("a transfer that stops fails the download, which says the file must start over", async () => {
    const { sink, started } = pipe(1024 * 1024);
    const file = await sink.open(0, entry("s.bin", 1 << 20));
    await file.write(0, bytes(4096));
    const reader = started[0].reader;
    expect((await reader.read()).value?.length).toBe(4096);
    const next = reader.read();
    await file.abort(true);
    await expect(next).rejects.toThrow(/cannot resume/);
  });

  it("a download cancelled in the browser fails the waiting write", async () => {
    const { sink, started } = pipe(8 * 1024);
    const file = await sink.open(0, entry("c.bin", 1 << 20));
    const writes = (async () => {
      for (let at = 0; at < 1 << 20; at += 4096) await file.write(at, bytes(4096));
    })();
    await sleep(50);
    await started[0].reader.cancel("user cancelled");
    const err = await writes.catch((e) => e);
    expect(err).toBeInstanceOf(WebError);
    expect(err.code).toBe("cancelled");
  });

  it("a Service Worker that never answers fails the write instead of hanging", async () => {
    const ports: MessagePort[] = [];
    const sink = new StreamSink((req) => ports.push(req.port), 300);
    const file = await sink.open(0, entry("x.bin", 10));
    const t0 = Date.now();
    await expect(file.write(0, bytes(10))).rejects.toMatchObject({ code: "io" });
    expect(Date.now() - t0).toBeLessThan(3000);
    await file.abort();
    for (const p of ports) p.close();
  });

  it("the link closing fails a write waiting on a stalled download at once", async () => {
    const { sink, started } = pipe(8 * 1024);
    const file = await sink.open(0, entry("p.bin", 1 << 20));
    const writes = (async () => {
      for (let at = 0; at < 1 << 20; at += 4096) await file.write(at, bytes(4096));
    })();
    await sleep(50);
    const t0 = Date.now();
    sink.stop(new WebError("peer-left", "the link closed"));
    await expect(writes).rejects.toMatchObject({ code: "peer-left" });
    expect(Date.now() - t0).toBeLessThan(1000);
    await file.abort(true);
    await expect(readAll(started[0].reader)).rejects.toThrow(/cannot resume/);
  });

  it("names and addresses", () => {
    expect(contentDisposition("report.pdf")).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
    expect(contentDisposition('Grüße "1" (a)*.txt')).toBe(
      `attachment; filename="Gr__e _1_ (a)*.txt"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%221%22%20%28a%29%2A.txt`,
    );
    expect(contentDisposition("a/b\\c\r\n.txt")).toBe(`attachment; filename="a_b_c.txt"; filename*=UTF-8''a_b_c.txt`);
    expect(contentDisposition("")).toContain(`filename="download"`);
    const id = "0123456789abcdef0123456789abcdef";
    expect(downloadUrl(id, "a b/c.txt")).toBe(`/ferry-dl/${id}/a%20b%2Fc.txt`);
    expect(downloadId(downloadUrl(id, "x"))).toBe(id);
    expect(downloadId(`/ferry-dl/${id}`)).toBe(id);
    expect(downloadId("/ferry-dl/../sw.js")).toBeNull();
    expect(downloadId("/assets/x.js")).toBeNull();
    expect(downloadId("/ferry-dl/ABC")).toBeNull();
  });
});
