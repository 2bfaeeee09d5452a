// The receive side of peer protocol v2 (docs/PEER-PROTOCOL.md), as
// crates/ferry-core/src/transfer/machine/{recv_session,recv_file}.rs and writer.rs do it:
// manifest → accept (at the prefix the sink already holds, its hash tree rebuilt) → chunks verified as
// BLAKE3 subtrees by the wasm tree (ferry-core's own tree.rs), LZ4-decoded by the wasm
// decoder, written to a `Sink` and acknowledged every 1 MiB once written → file-end checked
// against the whole-file root → file-done → done. The person's cancel (`cancelled`) is told to
// the sender as `cancel{reason}` and ends the receive as a sender's cancel does (recv_session.rs).
import { toHex } from "./bytes";
import {
  type Control,
  ControlReassembler,
  FLAG_COMPRESSED,
  type FileEntry,
  type Frame,
  FrameError,
  MAX_CHUNK,
  type PeerErrorCode,
} from "./frames";
import { controlFrames, type FrameLink } from "./session";
import { asWebError, WebError } from "./signal";
import type { FileSink, Sink } from "./sink";
import { type FerryWasm, type FileTree, Lz4Error, TreeError } from "./wasm";

/** Cumulative acknowledgement every this many verified and written bytes (defaults.rs ACK_EVERY). */
export const ACK_EVERY = 1024 * 1024;
/** Bad chunks tolerated per file before the transfer ends (recv_file.rs MAX_BAD_CHUNKS). */
export const MAX_BAD_CHUNKS = 16;
/** Largest text snippet (defaults.rs TEXT_MAX_BYTES). */
export const TEXT_MAX_BYTES = 64 * 1024;
/** The reason a receiver's own cancel gives the sender (recv_session.rs `cancel`). */
export const CANCEL_REASON = "receiver cancelled";
/** Longest wait for the cancel to leave: a full channel must not hold the end up. */
const CANCEL_SEND_MS = 1_000;

export interface Offer {
  transferId: string;
  files: FileEntry[];
  total: number;
}

export type ReceiveEvent =
  | { type: "offer"; offer: Offer }
  /** Right before the accept, when earlier attempts left verified bytes: how many, over the
   * whole transfer as in `progress` (receiver.rs emits `Event::Resuming` the same way). */
  | { type: "resuming"; bytes_done: number; total: number }
  | { type: "progress"; bytes_done: number; total: number; file: string }
  | { type: "chunk-rejected"; file: string; offset: number }
  | { type: "file-done"; path: string; hash: string }
  | { type: "file-failed"; path: string; code: string; message: string }
  /** `transfer_id`: the sender's id with `-r`, as the native receiver keys its row (receiver.rs). */
  | { type: "text"; transfer_id: string; text: string }
  | { type: "done" } & ReceiveStats;

export interface ReceiveStats {
  files: number;
  bytes: number;
  /** Chunks that arrived LZ4-compressed. */
  compressed: number;
  /** Chunks refused (bad chaining value or undecodable) and fetched again. */
  rejected: number;
  /** Bytes an earlier attempt had already written (the sink kept them). */
  resumed: number;
}

export interface ReceiveOptions {
  link: FrameLink;
  wasm: FerryWasm;
  sink: Sink;
  onEvent?: (e: ReceiveEvent) => void;
  /** Whether to take the offer; `true` when absent. */
  decide?: (offer: Offer) => Promise<boolean>;
  /** Resolves when the person cancels: the sender is told, and the receive ends `cancelled`,
   * dropping the unfinished files (a cancelled transfer does not resume). */
  cancelled?: Promise<void>;
}

interface RecvFile {
  entry: FileEntry;
  expected: number;
  tree: FileTree;
  sink: FileSink;
  unacked: number;
  resendPending: boolean;
  badChunks: number;
  restarts: number;
  done: boolean;
}

const protocol = (m: string) => new WebError("protocol", m);
const userCancelled = () => new WebError("cancelled", "you cancelled the transfer");
/** What a wait gives when the person cancelled during it. */
const STOP = Symbol("stop");
const PEER_CODES = new Set<string>(["disk-full", "permission-denied", "source-changed", "cancelled", "declined", "protocol", "integrity", "io", "unsupported", "too-large"]);
const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…` : s);

/** Receive one offer over `link`. Resolves once every accepted file is confirmed and `done` exchanged. */
export async function receive(opts: ReceiveOptions): Promise<ReceiveStats | { text: string }> {
  const { link, wasm, sink } = opts;
  const emit = (e: ReceiveEvent) => opts.onEvent?.(e);
  const reasm = new ControlReassembler();
  const send = async (c: Control) => {
    for (const f of controlFrames(link, c)) await link.send(f);
  };
  const files = new Map<number, RecvFile>();
  let stopped = false;
  const stop = opts.cancelled?.then(() => {
    stopped = true;
    return STOP;
  });
  /** `p`, unless the person cancels first: whatever the receive waits on, the cancel wins. */
  const unlessCancelled = async <T>(p: Promise<T>): Promise<T> => {
    if (stopped) throw userCancelled();
    const v = stop ? await Promise.race([p, stop]) : await p;
    if (v === STOP) throw userCancelled();
    return v as T;
  };
  const next = (deadline?: number) => unlessCancelled(link.next(deadline));
  try {
    const first = await nextControl(next, reasm);
    if (first.type === "text") {
      checkTransferId(first.transfer_id);
      if (new TextEncoder().encode(first.text).length > TEXT_MAX_BYTES) {
        await send({ type: "error", code: "too-large", message: `text is over ${TEXT_MAX_BYTES} bytes` });
        throw new WebError("too-large", "the sender's text is longer than 64 KB");
      }
      emit({ type: "text", transfer_id: `${first.transfer_id}-r`, text: first.text });
      await send({ type: "done" });
      await link.close();
      return { text: first.text };
    }
    if (first.type !== "manifest") throw protocol(`expected a manifest, got ${first.type}`);
    const total = first.files.reduce((n, f) => n + (f.dir ? 0 : f.size), 0);
    if (!Number.isSafeInteger(total)) throw protocol("manifest sizes too large");
    const offer: Offer = { transferId: first.transfer_id, files: first.files, total };
    emit({ type: "offer", offer });
    if (opts.decide && !(await unlessCancelled(opts.decide(offer)))) {
      await send({ type: "decline", reason: "declined in the browser" });
      await link.close();
      throw new WebError("declined", "you declined the files");
    }
    await sink.prepare?.(first.transfer_id);
    let resumed = 0;
    for (const [i, entry] of first.files.entries()) {
      if (entry.dir) continue;
      let fileSink: FileSink;
      try {
        fileSink = await sink.open(i, entry);
      } catch (e) {
        const err = asWebError(e);
        await send({ type: "error", code: peerCode(err.code), message: err.message }).catch(() => undefined);
        throw err;
      }
      const tree = wasm.tree(BigInt(entry.size));
      const start = rehash(wasm, tree, entry.size, fileSink);
      resumed += start;
      files.set(i, {
        entry,
        expected: start,
        tree,
        sink: fileSink,
        unacked: 0,
        resendPending: false,
        badChunks: 0,
        restarts: 0,
        done: false,
      });
    }
    if (stopped) throw userCancelled();
    if (resumed > 0) emit({ type: "resuming", bytes_done: resumed, total });
    await send({ type: "accept", files: [...files.entries()].map(([file, f]) => ({ file, offset: f.expected })) });

    let bytesDone = resumed;
    let confirmed = 0;
    let compressed = 0;
    let rejected = 0;
    const remaining = new Set(files.keys());
    for (;;) {
      const frame = await nextFrame(next, reasm, "during the transfer");
      if (frame.kind === "chunk") {
        const c = frame.chunk;
        const f = files.get(c.file);
        if (!f) throw protocol(`chunk for file ${c.file}, which was not accepted`);
        const offset = Number(c.offset);
        if (f.done || offset < f.expected) continue;
        let data: Uint8Array | null;
        if (c.flags & FLAG_COMPRESSED) {
          compressed += 1;
          if (c.data.length >= 4 && new DataView(c.data.buffer, c.data.byteOffset, 4).getUint32(0, true) > MAX_CHUNK) {
            throw protocol("compressed chunk declares more than 256 KiB");
          }
          try {
            data = wasm.decompress(c.data, MAX_CHUNK);
          } catch (e) {
            if (!(e instanceof Lz4Error)) throw e;
            if (e.code === "too-large") throw protocol("compressed chunk declares more than 256 KiB");
            data = null;
          }
        } else {
          data = c.data;
        }
        const len = data?.length ?? 0;
        if (data) {
          if (len === 0 || offset + len > f.entry.size) throw protocol(`chunk at ${offset}+${len} outside a ${f.entry.size}-byte file`);
          if (!wasm.validPiece(BigInt(offset), BigInt(len), BigInt(f.entry.size))) {
            throw protocol(`chunk at ${offset}+${len} is not a BLAKE3 subtree of a ${f.entry.size}-byte file`);
          }
        }
        if (offset > f.expected) {
          if (f.resendPending) continue;
          throw protocol(`chunk at ${offset}, expected ${f.expected}`);
        }
        let ok = data !== null;
        if (data) {
          try {
            f.tree.push(BigInt(offset), data, c.hash);
          } catch (e) {
            if (!(e instanceof TreeError) || e.code !== "mismatch") throw protocol(`chunk at ${offset}: ${e instanceof Error ? e.message : e}`);
            ok = false;
          }
        }
        if (!ok || !data) {
          f.badChunks += 1;
          rejected += 1;
          if (f.badChunks > MAX_BAD_CHUNKS) throw protocol("too many corrupt chunks");
          f.resendPending = true;
          emit({ type: "chunk-rejected", file: f.entry.path, offset: f.expected });
          await send({ type: "resend", file: c.file, offset: f.expected });
          continue;
        }
        f.resendPending = false;
        f.expected += len;
        await f.sink.write(offset, data);
        f.unacked += len;
        bytesDone += len;
        if (f.unacked >= ACK_EVERY) {
          f.unacked = 0;
          await send({ type: "ack", file: c.file, offset: f.expected });
        }
        emit({ type: "progress", bytes_done: bytesDone, total, file: f.entry.path });
        continue;
      }
      const m = frame.control;
      switch (m.type) {
        case "file-end": {
          const f = files.get(m.file);
          if (!f) throw protocol(`file-end for file ${m.file}, which was not accepted`);
          if (f.done || f.resendPending) break;
          if (f.expected !== f.entry.size) throw protocol(`file end at ${f.expected} of ${f.entry.size}`);
          const ours = toHex(f.tree.root());
          if (ours === m.hash) {
            f.done = true;
            f.tree.free();
            await f.sink.finish();
            remaining.delete(m.file);
            confirmed += 1;
            await send({ type: "file-done", file: m.file });
            emit({ type: "file-done", path: f.entry.path, hash: ours });
            break;
          }
          f.restarts += 1;
          if (f.restarts > 1) throw new WebError("integrity", `${f.entry.path}: whole-file hash mismatch twice`);
          f.tree.free();
          f.tree = wasm.tree(BigInt(f.entry.size));
          bytesDone -= f.expected;
          f.expected = 0;
          f.unacked = 0;
          f.resendPending = true;
          await send({ type: "resend", file: m.file, offset: 0 });
          break;
        }
        case "done":
          if (remaining.size > 0) throw protocol("sender finished before every file was confirmed");
          await send({ type: "done" });
          const stats = { files: confirmed, bytes: bytesDone, compressed, rejected, resumed };
          emit({ type: "done", ...stats });
          await link.close();
          return stats;
        case "cancel":
          throw new WebError("cancelled", `cancelled by the sender: ${clip(m.reason)}`);
        case "error":
          if (m.file !== undefined) {
            const f = files.get(m.file);
            if (!f || !remaining.delete(m.file)) throw protocol(`error for file ${m.file}, which is not in progress`);
            f.tree.free();
            await f.sink.abort();
            emit({ type: "file-failed", path: f.entry.path, code: m.code, message: clip(m.message) });
            break;
          }
          throw new WebError(m.code, clip(m.message));
        case "pause":
        case "resume":
        case "hello":
          break;
        default:
          throw protocol(`unexpected ${m.type} from the sender`);
      }
    }
  } catch (thrown) {
    // The person's cancel wins over whatever it interrupted (a download stopped under a
    // write, say), and the sender hears it before anything is dropped.
    const e = stopped ? userCancelled() : thrown;
    if (stopped && link.isOpen) await bounded(send({ type: "cancel", reason: CANCEL_REASON }), CANCEL_SEND_MS);
    // A lost link or a closed tab keeps the verified prefix, so the transfer resumes when it
    // comes back; only an end the sender, the person or the hashes made final drops it.
    const keep = !(e instanceof WebError && FINAL_CODES.has(e.code));
    for (const f of files.values()) {
      if (f.done) continue;
      f.tree.free();
      await f.sink.abort(keep).catch(() => undefined);
    }
    if (link.isOpen) await link.close(500);
    throw e;
  }
}

/** Rebuild the hash tree over what the sink already holds (in subtree-shaped pieces of at
 * most 1 MiB, as the native receiver does); returns where receiving resumes. */
function rehash(wasm: FerryWasm, tree: FileTree, size: number, sink: FileSink): number {
  const start = Math.min(sink.start ?? 0, size);
  if (start <= 0 || !sink.read) return 0;
  let at = 0;
  while (at < start) {
    const len = Number(wasm.pieceLen(BigInt(at), BigInt(start), BigInt(size), 1n << 20n));
    if (len <= 0) break;
    tree.push(BigInt(at), sink.read(at, len));
    at += len;
  }
  return at;
}

/** `p` settled (a failure swallowed) or `ms` passed, whichever is first. */
async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** The peer's transfer id keys what we report: short, and nothing but letters, digits, `-`
 * (receiver.rs `check_transfer_id`). */
function checkTransferId(id: string): void {
  if (id.length === 0 || id.length > 128 || !/^[A-Za-z0-9-]+$/.test(id)) throw protocol("bad transfer id");
}

/** Errors after which a later attempt must start over rather than resume. */
const FINAL_CODES = new Set(["cancelled", "declined", "integrity"]);

function peerCode(code: string): PeerErrorCode {
  return (PEER_CODES.has(code) ? code : "io") as PeerErrorCode;
}

/** The next whole frame (control parts joined); the link closing first is `peer-left`. */
async function nextFrame(next: () => Promise<Uint8Array | null>, reasm: ControlReassembler, when: string): Promise<Frame> {
  for (;;) {
    const raw = await next();
    if (!raw) throw new WebError("peer-left", `the link closed ${when}`);
    let frame;
    try {
      frame = reasm.push(raw);
    } catch (e) {
      throw protocol(e instanceof FrameError ? e.message : String(e));
    }
    if (frame) return frame;
  }
}

/** The next whole control message (control parts joined); a chunk here is a protocol error. */
async function nextControl(next: () => Promise<Uint8Array | null>, reasm: ControlReassembler): Promise<Control> {
  for (;;) {
    const frame = await nextFrame(next, reasm, "before the offer");
    if (frame.kind !== "control") throw protocol("a chunk before the offer");
    if (frame.control.type === "hello") continue;
    return frame.control;
  }
}
