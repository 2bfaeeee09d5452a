// The sender's per-file bookkeeping, as crates/ferry-core/src/transfer/machine/send_files.rs
// keeps it: which bytes go out next, bounded by a window of unacknowledged bytes, and how
// the receiver's acks, rewinds (`resend`) and confirmations (`file-done`) move it. No I/O:
// send.ts drives it, and the unit tests in ui/tests/send.test.ts drive it alone.
import type { FileAccept } from "./frames";
import { MAX_BAD_CHUNKS } from "./receive";

/** BLAKE3's chunk: accept and resend offsets sit on it (tree.rs UNIT). */
export const UNIT = 1024;
/** Rewinds the receiver may ask for per file (recv_file.rs MAX_RESENDS). */
export const MAX_RESENDS = MAX_BAD_CHUNKS + 1;

/** What the sender does next. */
export type SendStep =
  | { kind: "chunk"; file: number; offset: number; len: number; generation: number }
  | { kind: "end"; file: number; generation: number }
  | { kind: "done" }
  | { kind: "wait" };

/** The length of the BLAKE3 subtree at `offset` towards `end` of a `total`-byte file, at most
 * `target` bytes (wasm `pieceLen`, ferry-core's own tree.rs). */
export type PieceLen = (offset: number, end: number, total: number, target: number) => number;

/** A message from the receiver that breaks the protocol (the Rust `ProtoViolation`). */
export class Violation extends Error {}

interface SendFile {
  size: number;
  accepted: boolean;
  /** Next byte to read and send. */
  sent: number;
  /** Everything below is written on the receiver (cumulative ack). */
  acked: number;
  endSent: boolean;
  done: boolean;
  failed: boolean;
  /** Bumped on every rewind, so a chunk read before it is recognised and dropped. */
  generation: number;
  resends: number;
}

const finished = (f: SendFile) => !f.accepted || f.done || f.failed;

export class SendMachine {
  private readonly files: SendFile[];
  private readonly window: number;
  private chunk: number;
  private cursor = 0;
  /** Every file before `low` is finished and none from `high` on was sent from, so in-flight
   * bytes live in `low..high` and a step costs the window, not the file count. */
  private low = 0;
  private high = 0;
  private doneSent = false;
  pausedLocal = false;
  pausedRemote = false;

  constructor(
    sizes: number[],
    window: number,
    chunk: number,
    private readonly pieceLen: PieceLen,
  ) {
    this.files = sizes.map((size) => ({ size, accepted: false, sent: 0, acked: 0, endSent: false, done: false, failed: false, generation: 0, resends: 0 }));
    this.window = Math.max(window, chunk);
    this.chunk = Math.max(chunk, UNIT);
  }

  /** Apply the receiver's accept: listed files start at their offset, the others are skipped. */
  accept(accepts: FileAccept[]): void {
    for (const a of accepts) {
      const f = this.files[a.file];
      if (!f) throw new Violation(`accept names unknown file ${a.file}`);
      if (a.offset > f.size) throw new Violation(`accept offset ${a.offset} past the end of file ${a.file}`);
      if (a.offset % UNIT !== 0 && a.offset !== f.size) throw new Violation(`accept offset ${a.offset} of file ${a.file} is not on a ${UNIT}-byte boundary`);
      f.accepted = true;
      f.sent = a.offset;
      f.acked = a.offset;
    }
  }

  generation(file: number): number | undefined {
    return this.files[file]?.generation;
  }

  get paused(): boolean {
    return this.pausedLocal || this.pausedRemote;
  }

  setChunk(chunk: number): void {
    this.chunk = Math.max(chunk, UNIT);
  }

  /** Bytes handed out but not yet acknowledged: what the window bounds. */
  inFlight(): number {
    let n = 0;
    for (let i = this.low; i < this.high; i += 1) {
      const f = this.files[i];
      if (!finished(f)) n += f.sent - f.acked;
    }
    return n;
  }

  /** Bytes the receiver confirmed, across the accepted files. */
  ackedTotal(): number {
    let n = 0;
    for (const f of this.files) if (f.accepted && !f.failed) n += f.done ? f.size : f.acked;
    return n;
  }

  nextStep(): SendStep {
    while (this.cursor < this.files.length) {
      const f = this.files[this.cursor];
      if (finished(f) || (f.endSent && f.sent === f.size)) this.cursor += 1;
      else break;
    }
    while (this.low < this.files.length && finished(this.files[this.low])) this.low += 1;
    if (this.cursor >= this.files.length) {
      if (this.low === this.files.length && !this.doneSent) {
        this.doneSent = true;
        return { kind: "done" };
      }
      return { kind: "wait" };
    }
    if (this.paused) return { kind: "wait" };
    const file = this.cursor;
    const inFlight = this.inFlight();
    this.high = Math.max(this.high, file + 1);
    const f = this.files[file];
    if (f.sent < f.size) {
      const len = this.pieceLen(f.sent, f.size, f.size, this.chunk);
      if (inFlight > 0 && inFlight + len > this.window) return { kind: "wait" };
      const step: SendStep = { kind: "chunk", file, offset: f.sent, len, generation: f.generation };
      f.sent += len;
      return step;
    }
    f.endSent = true;
    return { kind: "end", file, generation: f.generation };
  }

  private accepted(file: number): SendFile {
    const f = this.files[file];
    if (!f?.accepted) throw new Violation(`message names file ${file} that was not accepted`);
    return f;
  }

  onAck(file: number, offset: number): void {
    const f = this.accepted(file);
    if (offset > Math.max(f.sent, f.acked)) throw new Violation(`ack ${offset} beyond what was sent of file ${file}`);
    f.acked = Math.max(f.acked, offset);
  }

  /** The receiver refused a chunk (or the whole file): rewind `file` to `offset`. */
  onResend(file: number, offset: number): void {
    const f = this.accepted(file);
    if (f.done || offset > f.sent || (offset % UNIT !== 0 && offset !== f.size)) {
      throw new Violation(`resend of file ${file} at ${offset} is out of range`);
    }
    f.resends += 1;
    if (f.resends > MAX_RESENDS) throw new Violation(`receiver asked for file ${file} again more than ${MAX_RESENDS} times`);
    f.sent = offset;
    f.acked = Math.min(f.acked, offset);
    f.endSent = false;
    f.generation += 1;
    this.cursor = Math.min(this.cursor, file);
  }

  onFileDone(file: number): void {
    const f = this.accepted(file);
    if (f.done) throw new Violation(`file ${file} confirmed twice`);
    if (!f.endSent || f.sent !== f.size) throw new Violation(`file ${file} confirmed before it was all sent`);
    f.done = true;
    f.acked = f.size;
  }

  /** Accepted and neither confirmed nor failed: what a per-file error may name. */
  inProgress(file: number): boolean {
    const f = this.files[file];
    return !!f && !finished(f);
  }

  failFile(file: number): void {
    const f = this.files[file];
    if (f) f.failed = true;
  }
}
