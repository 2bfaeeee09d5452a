// The send side of peer protocol v2 (docs/PEER-PROTOCOL.md), as
// crates/ferry-core/src/transfer/{sender,reader}.rs and machine/send_session.rs do it:
// manifest → the receiver's accept (offsets: where a resumed transfer continues) → chunks,
// each a BLAKE3 subtree whose chaining value the wasm tree (ferry-core's own tree.rs)
// computes while it builds the whole-file hash, LZ4-compressed when that pays and the
// receiver takes it, at most `window` bytes unacknowledged → `file-end` with the whole-file
// hash → the receiver's `file-done` → `done` both ways. A `resend` rewinds the file.
//
// One chunk is read at a time (`Source.read`, File.slice in the browser) and handed to the
// link, which waits while the data channel's buffer is full: memory stays flat in file size.
import { toHex } from "./bytes";
import {
  CHUNK_HEADER_LEN,
  type Control,
  ControlReassembler,
  encodeChunk,
  FLAG_COMPRESSED,
  type FileEntry,
  FrameError,
  MAX_CHUNK,
  MIN_CHUNK,
  type PeerErrorCode,
} from "./frames";
import { SendMachine, type SendStep, Violation } from "./send-machine";
import { controlFrames, type FrameLink } from "./session";
import { asWebError, WebError } from "./signal";
import type { Compressor, FerryWasm, FileTree } from "./wasm";

/** Unacknowledged bytes allowed out (defaults.rs WINDOW). */
export const WINDOW = 8 * 1024 * 1024;
/** How long the receiver's `done` is awaited once ours is out (defaults.rs DONE_WAIT). */
export const DONE_WAIT_MS = 5000;
/** Pieces a resumed file's prefix is hashed in (the native reader's prefix hashing). */
const PREFIX_PIECE = 1024 * 1024;

/** Where the bytes come from: the picked files (File.slice in the browser). */
export interface Source {
  /** Exactly `len` bytes of `file` at `offset`; throws `WebError("source-changed")` when the
   * file is no longer what the manifest said. */
  read(file: number, offset: number, len: number): Promise<Uint8Array>;
}

export type SendEvent =
  | { type: "accepted"; files: number; total: number; resumed: number }
  | { type: "progress"; bytes_done: number; total: number; file: string }
  | { type: "chunk-rejected"; file: string; offset: number }
  | { type: "file-done"; path: string; hash: string }
  | { type: "file-failed"; path: string; code: string; message: string }
  | { type: "paused" }
  | { type: "resumed" };

export interface SendStats {
  /** Files the receiver confirmed. */
  files: number;
  /** Bytes the receiver confirmed, including what it already held. */
  bytes: number;
  /** Chunk payload bytes put on the link this attempt (re-sent ones included), before
   * compression. */
  sent: number;
  /** The same chunks' payload as it crossed the link, after compression: native's
   * `link_bytes` (below `sent` when the data compressed). */
  linkBytes: number;
  /** Where the receiver's accept started us (sum of offsets). */
  resumed: number;
  /** Chunks that went LZ4-compressed. */
  compressed: number;
  /** Files that could not be sent. */
  failed: { path: string; code: string }[];
}

export interface SendOptions {
  link: FrameLink;
  wasm: FerryWasm;
  transferId: string;
  entries: FileEntry[];
  /** The manifest already went behind our hello (`manifestOpening`); only its answer is due. */
  manifestSent?: boolean;
  source: Source;
  window?: number;
  /** Compress chunks that shrink, when the receiver announced `lz4`. */
  compress?: boolean;
  /** The receiver's capabilities (from its `hello`). */
  caps?: string[];
  /** Cap on the send rate in bytes/s (tests: a transfer slow enough to interrupt). */
  rateBps?: number;
  onEvent?: (e: SendEvent) => void;
  /** Resolves when the user cancels: the receiver is told, the send ends `cancelled`. */
  cancelled?: Promise<void>;
  /** Whether the user has paused (read on every step; each change is announced once). */
  paused?: () => boolean;
}

/** Largest chunk payload that fits the link's messages (transfer/mod.rs `chunk_size`). */
export function chunkSize(maxMessageSize: number): number {
  const fits = Math.min(Math.max(maxMessageSize - CHUNK_HEADER_LEN, MIN_CHUNK), MAX_CHUNK);
  return 2 ** Math.floor(Math.log2(fits));
}

const protocol = (m: string) => new WebError("protocol", m);
/** An end the receiver announced: it is not told back. */
class FromPeer extends WebError {}
const PEER_CODES = new Set<string>(["disk-full", "permission-denied", "source-changed", "cancelled", "declined", "protocol", "integrity", "io", "unsupported", "too-large"]);
const peerCode = (code: string) => (PEER_CODES.has(code) ? code : "io") as PeerErrorCode;
const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…` : s);

/** Per-file hashing state: the whole-file tree is fed once, in order, whatever is re-sent. */
interface Hashing {
  tree: FileTree;
  compressor: Compressor | null;
}

/** Frames from the receiver, read in the background so sending never blocks reading. */
class Inbox {
  private frames: Uint8Array[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  constructor(link: FrameLink) {
    void (async () => {
      for (;;) {
        const f = await link.next();
        if (!f) {
          this.closed = true;
          this.poke();
          return;
        }
        this.frames.push(f);
        this.poke();
      }
    })();
  }

  take(): Uint8Array | undefined {
    return this.frames.shift();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Until a frame arrives, the link closes, or `ms` pass. */
  wait(ms: number): Promise<void> {
    if (this.frames.length || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** Send `entries` over `link` (one attempt). Resolves once every accepted file is confirmed
 * (or failed) and `done` went out; a dropped link is `peer-left`, and the caller may run
 * another attempt over a new link: the receiver's accept says where to continue. */
export async function send(opts: SendOptions): Promise<SendStats> {
  const { link, wasm, entries, source } = opts;
  const emit = (e: SendEvent) => opts.onEvent?.(e);
  // The last chunk handed to the link, not yet taken: the next chunk is read meanwhile, and
  // anything sent after it waits for it, so frames keep their order.
  let chunkOut: Promise<void> | null = null;
  const flush = async () => {
    const p = chunkOut;
    chunkOut = null;
    await p;
  };
  const sendControl = async (c: Control) => {
    await flush();
    for (const f of controlFrames(link, c)) await link.send(f);
  };
  let userCancelled = false;
  void opts.cancelled?.then(() => (userCancelled = true));
  const hashing = new Map<number, Hashing>();
  const lz4 = (opts.compress ?? true) && (opts.caps ?? []).includes("lz4");
  try {
    if (!opts.manifestSent) await sendControl({ type: "manifest", transfer_id: opts.transferId, files: entries });
    const inbox = new Inbox(link);
    const reasm = new ControlReassembler();
    const nextControl = async (): Promise<Control | null> => {
      for (;;) {
        const raw = inbox.take();
        if (!raw) return null;
        let frame;
        try {
          frame = reasm.push(raw);
        } catch (e) {
          throw protocol(e instanceof FrameError ? e.message : String(e));
        }
        if (!frame) continue;
        if (frame.kind === "chunk") throw protocol("the receiver sent a chunk");
        return frame.control;
      }
    };

    // The answer to the manifest.
    let accepts;
    for (;;) {
      if (userCancelled) throw await cancel(sendControl);
      const c = await nextControl();
      if (!c) {
        if (inbox.closed) throw new WebError("peer-left", "the link closed before the offer was answered");
        await inbox.wait(250);
        continue;
      }
      if (c.type === "hello") continue;
      if (c.type === "accept") {
        accepts = c.files;
        break;
      }
      if (c.type === "decline") throw new FromPeer("declined", `the receiver declined${c.reason ? `: ${clip(c.reason)}` : ""}`);
      if (c.type === "cancel") throw new FromPeer("cancelled", `cancelled by the receiver: ${clip(c.reason)}`);
      if (c.type === "error") throw new FromPeer(c.code, clip(c.message));
      throw protocol(`expected accept, got ${c.type}`);
    }

    const m = new SendMachine(
      entries.map((e) => (e.dir ? 0 : e.size)),
      opts.window ?? WINDOW,
      chunkSize(link.maxMessageSize),
      (offset, end, total, target) => Number(wasm.pieceLen(BigInt(offset), BigInt(end), BigInt(total), BigInt(target))),
    );
    try {
      m.accept(accepts);
    } catch (e) {
      throw protocol(e instanceof Error ? e.message : String(e));
    }
    const resumed = accepts.reduce((n, a) => n + a.offset, 0);
    const total = accepts.reduce((n, a) => n + (entries[a.file]?.size ?? 0), 0);
    emit({ type: "accepted", files: accepts.length, total, resumed });

    const stats: SendStats = { files: 0, bytes: resumed, sent: 0, linkBytes: 0, resumed, compressed: 0, failed: [] };
    const hashes = new Map<number, string>();
    const started = Date.now();
    let lastProgress = 0;

    const hashingFor = (file: number): Hashing => {
      let h = hashing.get(file);
      if (!h) {
        h = { tree: wasm.tree(BigInt(entries[file].size)), compressor: lz4 ? wasm.compressor() : null };
        hashing.set(file, h);
      }
      return h;
    };
    const dropHashing = (file: number) => {
      const h = hashing.get(file);
      h?.tree.free();
      h?.compressor?.free();
      hashing.delete(file);
    };
    /** Feed the whole-file tree up to `to` (a resumed prefix, which is not sent). */
    const hashUpTo = async (file: number, to: number) => {
      const size = entries[file].size;
      const tree = hashingFor(file).tree;
      for (let at = Number(tree.next()); at < to; ) {
        const len = Number(wasm.pieceLen(BigInt(at), BigInt(to), BigInt(size), BigInt(PREFIX_PIECE)));
        if (len <= 0) break;
        tree.push(BigInt(at), await source.read(file, at, len));
        at += len;
      }
    };
    const failFile = async (file: number, err: WebError) => {
      m.failFile(file);
      dropHashing(file);
      stats.failed.push({ path: entries[file].path, code: err.code });
      emit({ type: "file-failed", path: entries[file].path, code: err.code, message: err.message });
      await sendControl({ type: "error", code: peerCode(err.code), message: err.message, file });
      // Only a file that changed under us is a per-file condition; anything else stops it all.
      if (err.code !== "source-changed") throw err;
    };

    /** Act on what the receiver said since the last look. */
    const drain = async (): Promise<void> => {
      for (;;) {
        const c = await nextControl();
        if (!c) return;
        try {
          handle(c);
        } catch (e) {
          if (e instanceof Violation) throw protocol(e.message);
          throw e;
        }
      }
    };
    const handle = (c: Control): void => {
      switch (c.type) {
        case "ack": {
          m.onAck(c.file, c.offset);
          const acked = m.ackedTotal();
          stats.bytes = acked;
          if (Date.now() - lastProgress >= 100) {
            lastProgress = Date.now();
            emit({ type: "progress", bytes_done: acked, total, file: entries[c.file]?.path ?? "" });
          }
          return;
        }
        case "resend":
          m.onResend(c.file, c.offset);
          emit({ type: "chunk-rejected", file: entries[c.file]?.path ?? "", offset: c.offset });
          return;
        case "file-done": {
          m.onFileDone(c.file);
          stats.files += 1;
          dropHashing(c.file);
          const path = entries[c.file]?.path ?? "";
          emit({ type: "file-done", path, hash: hashes.get(c.file) ?? "" });
          hashes.delete(c.file);
          stats.bytes = m.ackedTotal();
          emit({ type: "progress", bytes_done: stats.bytes, total, file: path });
          return;
        }
        case "pause":
        case "resume": {
          const p = c.type === "pause";
          if (m.pausedRemote !== p) {
            m.pausedRemote = p;
            emit({ type: p ? "paused" : "resumed" });
          }
          return;
        }
        case "cancel":
          throw new FromPeer("cancelled", `cancelled by the receiver: ${clip(c.reason)}`);
        case "error":
          if (c.file !== undefined) {
            if (!m.inProgress(c.file)) throw protocol(`error for file ${c.file}, which is not in progress`);
            m.failFile(c.file);
            dropHashing(c.file);
            stats.failed.push({ path: entries[c.file].path, code: c.code });
            emit({ type: "file-failed", path: entries[c.file].path, code: c.code, message: clip(c.message) });
            return;
          }
          throw new FromPeer(c.code, clip(c.message));
        case "hello":
          return;
        default:
          throw protocol(`unexpected ${c.type} from the receiver`);
      }
    };

    const current = (step: { file: number; generation: number }) => m.generation(step.file) === step.generation;

    for (;;) {
      if (userCancelled) throw await cancel(sendControl);
      const pause = opts.paused?.() ?? false;
      if (pause !== m.pausedLocal) {
        m.pausedLocal = pause;
        await sendControl({ type: pause ? "pause" : "resume" });
        emit({ type: pause ? "paused" : "resumed" });
      }
      await drain();
      if (inbox.closed) throw new WebError("peer-left", "the link closed during the transfer");
      const step: SendStep = m.nextStep();
      if (step.kind === "wait") {
        await inbox.wait(250);
        continue;
      }
      if (step.kind === "done") {
        await sendControl({ type: "done" });
        // The receiver's `done`, or its hang-up, ends it; either way every file is confirmed.
        const until = Date.now() + DONE_WAIT_MS;
        while (Date.now() < until) {
          const c = await nextControl();
          if (c?.type === "done" || inbox.closed) break;
          if (!c) await inbox.wait(until - Date.now());
        }
        stats.bytes = m.ackedTotal();
        await link.close();
        return stats;
      }
      const entry = entries[step.file];
      if (step.kind === "end") {
        let hash: string;
        try {
          await hashUpTo(step.file, entry.size);
          hash = toHex(hashingFor(step.file).tree.root());
        } catch (e) {
          await failFile(step.file, sendError(e));
          continue;
        }
        hashes.set(step.file, hash);
        await drain();
        if (!current(step)) continue;
        await sendControl({ type: "file-end", file: step.file, hash });
        continue;
      }
      // A chunk: read it, hash it (and, once, into the file's tree), maybe compress it.
      let data: Uint8Array;
      let cv: Uint8Array;
      try {
        const h = hashingFor(step.file);
        await hashUpTo(step.file, step.offset);
        data = await source.read(step.file, step.offset, step.len);
        cv =
          Number(h.tree.next()) === step.offset
            ? h.tree.push(BigInt(step.offset), data)
            : wasm.pieceCv(BigInt(step.offset), BigInt(entry.size), data);
      } catch (e) {
        await failFile(step.file, sendError(e));
        continue;
      }
      // A `resend` that arrived while reading makes this chunk stale.
      await drain();
      if (!current(step)) continue;
      const wire = hashing.get(step.file)?.compressor?.compress(data) ?? null;
      if (wire) stats.compressed += 1;
      const frame = encodeChunk(step.file, BigInt(step.offset), wire ? FLAG_COMPRESSED : 0, cv, wire ?? data);
      if (opts.rateBps) {
        const due = started + (stats.sent / opts.rateBps) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      await flush();
      chunkOut = link.send(frame);
      // Settled here so a failure while the next chunk is read is not unhandled; `flush`
      // rethrows it.
      chunkOut.catch(() => undefined);
      stats.sent += step.len;
      stats.linkBytes += (wire ?? data).length;
    }
  } catch (e) {
    await flush().catch(() => undefined);
    for (const file of [...hashing.keys()]) {
      const h = hashing.get(file);
      h?.tree.free();
      h?.compressor?.free();
    }
    hashing.clear();
    const err = sendError(e);
    // Tell the receiver why, when the link still carries it and the end is ours.
    if (link.isOpen && !(err instanceof FromPeer) && !["peer-left", "cancelled"].includes(err.code)) {
      await sendControl({ type: "error", code: peerCode(err.code), message: clip(err.message) }).catch(() => undefined);
    }
    if (link.isOpen) await link.close(500);
    throw err;
  }
}

/** A peer's protocol violation is `protocol`; anything else as `asWebError` says. */
function sendError(e: unknown): WebError {
  return e instanceof Violation ? protocol(e.message) : asWebError(e);
}

async function cancel(sendControl: (c: Control) => Promise<void>): Promise<WebError> {
  await sendControl({ type: "cancel", reason: "sender cancelled" }).catch(() => undefined);
  return new WebError("cancelled", "you cancelled the transfer");
}
