// The browser sender's pure parts: the window/rewind bookkeeping (send-machine.ts), the
// manifest and link it shows, and the whole send loop (send.ts) against the browser's own
// receive loop (receive.ts) over an in-memory link, hashing with the real wasm module (that
// part needs `bash scripts/build-wasm.sh`; scripts/test-web-e2e.sh runs it after building).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { FrameQueue } from "../src/web/frame-queue";
import { ControlReassembler, encodeFrames, FLAG_COMPRESSED, KIND_CHUNK, type FileEntry } from "../src/web/frames";
import { manifestOpening, transferId } from "../src/web/manifest";
import { generatePassword, joinLink } from "../src/web/host";
import { receive, type ReceiveEvent } from "../src/web/receive";
import { chunkSize, send, type Source } from "../src/web/send";
import { SendMachine, UNIT } from "../src/web/send-machine";
import { entriesFor } from "../src/web/send-run";
import { pageJoinLink as webLink } from "../src/web/join-url";
import { parseJoinUrl } from "../src/web/join-url";
import type { FrameLink } from "../src/web/session";
import { type FileSink, MemorySink, type Sink } from "../src/web/sink";
import { FerryWasm } from "../src/web/wasm";

const here = dirname(fileURLToPath(import.meta.url));
const WASM = join(here, "../src/web/ferry.wasm");

// tree.rs `piece_len`, for the machine tests that run without the wasm build.
const prevPow2 = (n: number) => (n <= 0 ? 0 : 2 ** Math.floor(Math.log2(n)));
function pieceLen(offset: number, end: number, total: number, target: number): number {
  const remaining = Math.max(end - offset, 0);
  if (remaining === 0) return 0;
  let cap = prevPow2(Math.max(target, UNIT));
  if (offset !== 0) cap = Math.min(cap, offset & -offset);
  return end === total && remaining <= cap ? remaining : Math.min(cap, prevPow2(remaining));
}

const K = 1024;

describe("SendMachine", () => {
  it("keeps at most the window unacknowledged and continues on acks", () => {
    const m = new SendMachine([40 * K], 8 * K, 4 * K, pieceLen);
    m.accept([{ file: 0, offset: 0 }]);
    const steps = [m.nextStep(), m.nextStep(), m.nextStep()];
    expect(steps.map((s) => s.kind)).toEqual(["chunk", "chunk", "wait"]);
    expect(m.inFlight()).toBe(8 * K);
    m.onAck(0, 4 * K);
    expect(m.nextStep()).toMatchObject({ kind: "chunk", offset: 8 * K, len: 4 * K });
  });

  it("starts a resumed file at the accepted offset and skips files not accepted", () => {
    const m = new SendMachine([8 * K, 8 * K], 64 * K, 4 * K, pieceLen);
    m.accept([{ file: 1, offset: 4 * K }]);
    expect(m.nextStep()).toMatchObject({ kind: "chunk", file: 1, offset: 4 * K, len: 4 * K });
    expect(m.nextStep()).toMatchObject({ kind: "end", file: 1 });
    expect(m.nextStep().kind).toBe("wait");
    m.onFileDone(1);
    expect(m.nextStep().kind).toBe("done");
    expect(m.ackedTotal()).toBe(8 * K);
  });

  it("rewinds on resend with a new generation, and bounds rewinds", () => {
    const m = new SendMachine([16 * K], 64 * K, 4 * K, pieceLen);
    m.accept([{ file: 0, offset: 0 }]);
    m.nextStep();
    m.nextStep();
    const g = m.generation(0);
    m.onResend(0, 4 * K);
    expect(m.generation(0)).toBe((g ?? 0) + 1);
    expect(m.nextStep()).toMatchObject({ kind: "chunk", offset: 4 * K });
    expect(() => m.onResend(0, 100)).toThrow(/out of range/);
    for (let i = 1; i < 17; i += 1) m.onResend(0, 0);
    expect(() => m.onResend(0, 0)).toThrow(/more than 17 times/);
  });

  it("refuses what a receiver must not say", () => {
    const m = new SendMachine([8 * K], 64 * K, 4 * K, pieceLen);
    expect(() => m.accept([{ file: 3, offset: 0 }])).toThrow(/unknown file/);
    expect(() => m.accept([{ file: 0, offset: 100 }])).toThrow(/boundary/);
    m.accept([{ file: 0, offset: 0 }]);
    expect(() => m.onAck(0, 4 * K)).toThrow(/beyond what was sent/);
    expect(() => m.onFileDone(0)).toThrow(/before it was all sent/);
  });

  it("ends a 0-byte file at once", () => {
    const m = new SendMachine([0], 64 * K, 4 * K, pieceLen);
    m.accept([{ file: 0, offset: 0 }]);
    expect(m.nextStep()).toMatchObject({ kind: "end", file: 0 });
    m.onFileDone(0);
    expect(m.nextStep().kind).toBe("done");
  });
});

describe("what the send page shows and offers", () => {
  it("builds the manifest from picked files and folders, renaming duplicates", () => {
    const f = (name: string, rel = "") => ({ name, size: 3, lastModified: 1700000000123.4, webkitRelativePath: rel });
    expect(entriesFor([f("a.txt"), f("a.txt"), f("b", "dir/sub/b"), f("a.txt")])).toEqual([
      { path: "a.txt", size: 3, mtime_ms: 1700000000123 },
      { path: "a (1).txt", size: 3, mtime_ms: 1700000000123 },
      { path: "dir/sub/b", size: 3, mtime_ms: 1700000000123 },
      { path: "a (2).txt", size: 3, mtime_ms: 1700000000123 },
    ]);
  });

  it("prints the link in ticket.rs's form", () => {
    expect(joinLink("ABCDEFGHJK", "ws://127.0.0.1:8080/ws", "abcd-efgh")).toBe("ferry://join/ABCDE-FGHJK?server=ws%3A%2F%2F127.0.0.1%3A8080%2Fws#abcd-efgh");
    expect(joinLink("ABCDEFGHJK", "", "two words")).toBe("ferry://join/ABCDE-FGHJK#two%20words");
  });

  it("gives a browser link that the join page reads back", () => {
    const own = webLink({ origin: "https://ferry.example", pathname: "/", search: "?send" }, "ABCDEFGHJK", "ab cd");
    expect(own).toBe("https://ferry.example/j/ABCDE-FGHJK#ab%20cd");
    const u = new URL(own);
    expect(parseJoinUrl({ protocol: u.protocol, host: u.host, pathname: u.pathname, search: u.search, hash: u.hash })).toEqual({
      server: "wss://ferry.example/ws",
      room: "ABCDEFGHJK",
      password: "ab cd",
    });
    // From a page opened at a join link (the App's Send screen after a receive).
    expect(webLink({ origin: "https://ferry.example", pathname: "/p/j/ABCDE-FGHJK", search: "" }, "KMNPQ-RSTVW", "x")).toBe("https://ferry.example/p/j/KMNPQ-RSTVW#x");
    const apart = webLink({ origin: "http://127.0.0.1:5", pathname: "/web.html", search: "?send&server=ws%3A%2F%2F127.0.0.1%3A9%2Fws" }, "ABCDEFGHJK", "pw");
    const v = new URL(apart);
    expect(parseJoinUrl({ protocol: v.protocol, host: v.host, pathname: v.pathname, search: v.search, hash: v.hash })).toEqual({
      server: "ws://127.0.0.1:9/ws",
      room: "ABCDEFGHJK",
      password: "pw",
    });
  });

  it("generates 80-bit passwords without look-alikes", () => {
    const p = generatePassword();
    expect(p).toMatch(/^[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}$/);
    expect(generatePassword()).not.toBe(p);
  });

  it("sizes chunks as the native sender does", () => {
    expect(chunkSize(256 * K)).toBe(128 * K);
    expect(chunkSize(64 * K)).toBe(32 * K);
    expect(chunkSize(1024)).toBe(16 * K);
  });
});

/** Two ends of an in-memory link; `tamper` may change a frame on its way to the receiver. */
function linkPair(maxMessageSize: number, tamper?: (f: Uint8Array) => Uint8Array) {
  const qa = new FrameQueue();
  const qb = new FrameQueue();
  const end = (mine: FrameQueue, theirs: FrameQueue, out?: (f: Uint8Array) => Uint8Array): FrameLink => ({
    maxMessageSize,
    get isOpen() {
      return !mine.closed;
    },
    next: (d) => mine.next(d),
    async send(f) {
      if (mine.closed) throw new Error("closed");
      theirs.push(out ? out(f.slice()) : f.slice());
    },
    async close() {
      mine.close();
      theirs.close();
    },
  });
  return { sender: end(qa, qb, tamper), receiver: end(qb, qa) };
}

/** A memory sink that already holds `held[i]` bytes of file i (an earlier attempt's verified
 * prefix, as OpfsSink and FolderSink report it) and records how each file ended. */
class HeldSink implements Sink {
  readonly data = new Map<number, Uint8Array>();
  readonly ends = new Map<number, "finished" | "kept" | "dropped">();

  constructor(
    private readonly files: Uint8Array[],
    private readonly held: number[],
  ) {}

  async open(index: number, entry: FileEntry): Promise<FileSink> {
    const buf = new Uint8Array(entry.size);
    const start = this.held[index] ?? 0;
    buf.set(this.files[index].subarray(0, start));
    this.data.set(index, buf);
    return {
      start,
      read: (offset, len) => buf.slice(offset, offset + len),
      write: async (offset, data) => void buf.set(data, offset),
      finish: async () => void this.ends.set(index, "finished"),
      abort: async (keep) => void this.ends.set(index, keep ? "kept" : "dropped"),
    };
  }
}

const memorySource = (files: Uint8Array[]): Source => ({
  async read(file, offset, len) {
    return files[file].slice(offset, offset + len);
  },
});

describe.skipIf(!existsSync(WASM))("send ↔ receive over an in-memory link (wasm)", () => {
  const load = () => FerryWasm.load(readFileSync(WASM));
  const random = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(i + 65536, n)));
    return b;
  };

  async function transfer(files: Uint8Array[], tamper?: (f: Uint8Array) => Uint8Array) {
    const wasm = await load();
    const entries: FileEntry[] = files.map((f, i) => ({ path: `f${i}.bin`, size: f.length, mtime_ms: 0 }));
    const { sender, receiver } = linkPair(256 * K, tamper);
    const sink = new MemorySink();
    const [sent, got] = await Promise.all([
      send({ link: sender, wasm, transferId: "t", entries, source: memorySource(files), caps: ["lz4"] }),
      receive({ link: receiver, wasm: await load(), sink }),
    ]);
    return { sent, got, sink };
  }

  it("delivers random, compressible and empty files byte-exact", async () => {
    const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog\n".repeat(20_000));
    const files = [random(3 * 1024 * 1024 + 12_345), text, new Uint8Array(0)];
    const { sent, got, sink } = await transfer(files);
    expect(sent.files).toBe(3);
    expect(sent.bytes).toBe(files.reduce((n, f) => n + f.length, 0));
    expect(sent.compressed).toBeGreaterThan(0);
    expect(got).toMatchObject({ files: 3, rejected: 0 });
    for (const [i, f] of files.entries()) {
      const r = sink.files.find((x) => x.path === `f${i}.bin`);
      expect(r && Buffer.from(r.data).equals(Buffer.from(f))).toBe(true);
    }
  });

  it("a chunk corrupted on the way is refused, re-sent, and the file is byte-exact", async () => {
    const file = random(1024 * 1024 + 333);
    let chunks = 0;
    const { sent, got, sink } = await transfer([file], (f) => {
      if (f[0] === KIND_CHUNK && (f[1] & FLAG_COMPRESSED) === 0 && ++chunks === 3) f[100] ^= 1;
      return f;
    });
    expect(got).toMatchObject({ files: 1, rejected: 1 });
    expect(sent.sent).toBeGreaterThan(file.length);
    expect(Buffer.from(sink.files[0].data).equals(Buffer.from(file))).toBe(true);
  });

  it("sends no chunk while paused, and finishes once resumed", async () => {
    const wasm = await load();
    const file = random(300 * 1024);
    let chunks = 0;
    const { sender, receiver } = linkPair(256 * K, (f) => {
      if (f[0] === KIND_CHUNK) chunks += 1;
      return f;
    });
    let paused = true;
    const sink = new MemorySink();
    const both = Promise.all([
      send({ link: sender, wasm, transferId: "t", entries: [{ path: "p", size: file.length, mtime_ms: 0 }], source: memorySource([file]), paused: () => paused }),
      receive({ link: receiver, wasm: await load(), sink }),
    ]);
    await new Promise((r) => setTimeout(r, 400));
    expect(chunks).toBe(0);
    paused = false;
    const [sent] = await both;
    expect(sent.files).toBe(1);
    expect(Buffer.from(sink.files[0].data).equals(Buffer.from(file))).toBe(true);
  });

  it("ends with the receiver's decline", async () => {
    const wasm = await load();
    const { sender, receiver } = linkPair(256 * K);
    const entries = [{ path: "x", size: 5, mtime_ms: 0 }];
    const [s, r] = await Promise.allSettled([
      send({ link: sender, wasm, transferId: "t", entries, source: memorySource([new Uint8Array(5)]) }),
      receive({ link: receiver, wasm, sink: new MemorySink(), decide: async () => false }),
    ]);
    expect(s.status === "rejected" && (s.reason as { code: string }).code).toBe("declined");
    expect(r.status === "rejected" && (r.reason as { code: string }).code).toBe("declined");
  });
  it("says exactly what it held before accepting, over the whole transfer, and resumes there", async () => {
    const wasm = await load();
    const files = [random(3 * 1024 * 1024 + 777), random(10 * K), random(20 * K)];
    // File 0 holds 1 MiB + 3 KiB, file 1 nothing, file 2 5 KiB (all on the 1 KiB grid).
    const held = [1024 * 1024 + 3 * K, 0, 5 * K];
    const entries: FileEntry[] = files.map((f, i) => ({ path: `f${i}.bin`, size: f.length, mtime_ms: 0 }));
    const { sender, receiver } = linkPair(256 * K);
    const sink = new HeldSink(files, held);
    const events: ReceiveEvent[] = [];
    const [sent, got] = await Promise.all([
      send({ link: sender, wasm, transferId: "t", entries, source: memorySource(files) }),
      receive({ link: receiver, wasm: await load(), sink, onEvent: (e) => events.push(e) }),
    ]);
    const total = files.reduce((n, f) => n + f.length, 0);
    const heldAll = held.reduce((a, b) => a + b, 0);
    expect(events.filter((e) => e.type === "resuming")).toEqual([{ type: "resuming", bytes_done: heldAll, total }]);
    // Right after the offer, before any byte of this attempt.
    expect(events.slice(0, 2).map((e) => e.type)).toEqual(["offer", "resuming"]);
    const firstProgress = events.find((e) => e.type === "progress");
    expect(firstProgress && firstProgress.type === "progress" && firstProgress.bytes_done).toBeGreaterThan(heldAll);
    expect(got).toMatchObject({ files: 3, resumed: heldAll, bytes: total });
    // Only what was missing crossed the link.
    expect(sent.sent).toBe(total - heldAll);
    for (const [i, f] of files.entries()) expect(Buffer.from(sink.data.get(i) ?? []).equals(Buffer.from(f))).toBe(true);
  });

  it("says no resuming on a fresh start", async () => {
    const wasm = await load();
    const files = [random(40 * K)];
    const { sender, receiver } = linkPair(256 * K);
    const events: ReceiveEvent[] = [];
    await Promise.all([
      send({ link: sender, wasm, transferId: "t", entries: [{ path: "a", size: files[0].length, mtime_ms: 0 }], source: memorySource(files) }),
      receive({ link: receiver, wasm: await load(), sink: new HeldSink(files, [0]), onEvent: (e) => events.push(e) }),
    ]);
    expect(events.some((e) => e.type === "resuming")).toBe(false);
  });

  it("a cancel by the receiving person reaches the sender, and the partial file is dropped", async () => {
    const wasm = await load();
    const files = [random(24 * 1024 * 1024)];
    const { sender, receiver } = linkPair(256 * K);
    const sink = new HeldSink(files, [0]);
    let cancelNow!: () => void;
    const cancelled = new Promise<void>((r) => (cancelNow = r));
    const [s, r] = await Promise.allSettled([
      send({ link: sender, wasm, transferId: "t", entries: [{ path: "big", size: files[0].length, mtime_ms: 0 }], source: memorySource(files) }),
      receive({
        link: receiver,
        wasm: await load(),
        sink,
        cancelled,
        onEvent: (e) => {
          if (e.type === "progress" && e.bytes_done >= 2 * 1024 * 1024) cancelNow();
        },
      }),
    ]);
    expect(r.status === "rejected" && r.reason).toMatchObject({ code: "cancelled", message: "you cancelled the transfer" });
    expect(s.status === "rejected" && s.reason).toMatchObject({ code: "cancelled", message: "cancelled by the receiver: receiver cancelled" });
    expect(sink.ends.get(0)).toBe("dropped");
  });

  it("a cancel while nothing arrives (the sender paused) still reaches the sender at once", async () => {
    const wasm = await load();
    const files = [random(300 * K)];
    const { sender, receiver } = linkPair(256 * K);
    const sink = new HeldSink(files, [0]);
    let cancelNow!: () => void;
    const cancelled = new Promise<void>((r) => (cancelNow = r));
    const both = Promise.allSettled([
      send({ link: sender, wasm, transferId: "t", entries: [{ path: "p", size: files[0].length, mtime_ms: 0 }], source: memorySource(files), paused: () => true }),
      receive({ link: receiver, wasm: await load(), sink, cancelled }),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const at = Date.now();
    cancelNow();
    const [s, r] = await both;
    expect(Date.now() - at).toBeLessThan(2000);
    expect(r.status === "rejected" && (r.reason as { code: string }).code).toBe("cancelled");
    expect(s.status === "rejected" && s.reason).toMatchObject({ code: "cancelled", message: "cancelled by the receiver: receiver cancelled" });
    expect(sink.ends.get(0)).toBe("dropped");
  });

  it("a text carries the sender's transfer id with the receiver's -r, as the native receiver keys it", async () => {
    const { sender, receiver } = linkPair(256 * K);
    const events: ReceiveEvent[] = [];
    const got = receive({ link: receiver, wasm: await load(), sink: new MemorySink(), onEvent: (e) => events.push(e) });
    for (const f of encodeFrames({ type: "text", transfer_id: "0123abcd", text: "hi" }, 256 * K)) await sender.send(f);
    await expect(got).resolves.toEqual({ text: "hi" });
    expect(events).toEqual([{ type: "text", transfer_id: "0123abcd-r", text: "hi" }]);
  });
});
describe("manifestOpening", () => {
  const zeros = () => new Uint8Array(32);
  const entry = (i: number): FileEntry => ({ path: `folder/file-${i}.bin`, size: 1000 + i, mtime_ms: 1_700_000_000_000 });

  it("sends a small manifest behind the hello, in frames no peer refuses", () => {
    const entries = Array.from({ length: 300 }, (_, i) => entry(i));
    const frames = manifestOpening("abc-def", entries, zeros);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.length).toBeLessThanOrEqual(8);
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(16 * 1024);
    const reasm = new ControlReassembler();
    let whole = null;
    for (const f of frames) whole = reasm.push(f) ?? whole;
    expect(whole).toEqual({ kind: "control", control: { type: "manifest", transfer_id: transferId("abc-def", entries, zeros), files: entries } });
  });

  it("leaves a manifest of more than eight such frames to follow the receiver's hello", () => {
    const entries = Array.from({ length: 5000 }, (_, i) => entry(i));
    expect(manifestOpening("abc-def", entries, zeros)).toEqual([]);
  });
});
