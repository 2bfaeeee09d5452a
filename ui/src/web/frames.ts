// Peer protocol frames on the data channel, as crates/ferry-proto/src/peer.rs encodes them
// (docs/PEER-PROTOCOL.md): `[kind, flags]` then a JSON control message (kind 1), a chunk
// `file u32 BE | offset u64 BE | cv [32] | data` (kind 2), or a slice of a control message
// too large for one frame (kind 3, FLAG_LAST on the final slice).
//
// JSON is written with the keys in the order serde writes them (the tag first, then the
// fields as the Rust types declare them), so encoded frames are byte-identical to the native
// engine's. Numbers are JavaScript numbers: exact below 2^53 (8 PiB), far past any real file.
import { concat, fromUtf8, u32be, u64be, utf8 } from "./bytes";

export const KIND_CONTROL = 1;
export const KIND_CHUNK = 2;
export const KIND_CONTROL_PART = 3;
export const FLAG_LAST = 0b1;
export const FLAG_COMPRESSED = 0b1;
export const CAP_LZ4 = "lz4";
export const CAP_TEXT = "text";
export const CHUNK_HEADER_LEN = 2 + 4 + 8 + 32;
export const MIN_CHUNK = 16 * 1024;
export const MAX_CHUNK = 256 * 1024;
export const MAX_FRAME_LEN = CHUNK_HEADER_LEN + MAX_CHUNK;
export const MAX_CONTROL_LEN = 64 * 1024 * 1024;
export const MAX_FILES = 1_000_000;

export interface FileEntry {
  path: string;
  size: number;
  mtime_ms: number;
  /** Present (true) only for an empty directory, as serde omits `false`. */
  dir?: true;
}

export interface FileAccept {
  file: number;
  offset: number;
}

export const PEER_ERROR_CODES = [
  "disk-full",
  "permission-denied",
  "source-changed",
  "cancelled",
  "declined",
  "protocol",
  "integrity",
  "io",
  "unsupported",
  "too-large",
] as const;
export type PeerErrorCode = (typeof PEER_ERROR_CODES)[number];

export type Control =
  | { type: "hello"; version: number; caps: string[]; max_message_size: number; mac: string }
  | { type: "manifest"; transfer_id: string; files: FileEntry[] }
  | { type: "text"; transfer_id: string; text: string }
  | { type: "accept"; files: FileAccept[] }
  | { type: "decline"; reason: string }
  | { type: "ack"; file: number; offset: number }
  | { type: "resend"; file: number; offset: number }
  | { type: "file-end"; file: number; hash: string }
  | { type: "file-done"; file: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "cancel"; reason: string }
  | { type: "error"; code: PeerErrorCode; message: string; file?: number }
  | { type: "done" };

export interface Chunk {
  file: number;
  offset: bigint;
  flags: number;
  /** BLAKE3 chaining value of the (uncompressed) data at `offset`. */
  hash: Uint8Array;
  /** A view into the frame: copy it to keep it past the frame's buffer. */
  data: Uint8Array;
}

export type Frame = { kind: "control"; control: Control } | { kind: "chunk"; chunk: Chunk };

export type FrameErrorCode =
  | "empty"
  | "unknown-kind"
  | "short-chunk"
  | "bad-control"
  | "control-too-large"
  | "frame-too-large"
  | "too-many-entries";

/** Why a frame was refused; `code` names the Rust `FrameError` variant. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    detail = "",
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }
}

const entryJson = (e: FileEntry) =>
  e.dir ? { path: e.path, size: e.size, mtime_ms: e.mtime_ms, dir: true } : { path: e.path, size: e.size, mtime_ms: e.mtime_ms };

/** The message with its keys in serde's order. */
function ordered(c: Control): object {
  switch (c.type) {
    case "hello":
      return { type: c.type, version: c.version, caps: c.caps, max_message_size: c.max_message_size, mac: c.mac };
    case "manifest":
      return { type: c.type, transfer_id: c.transfer_id, files: c.files.map(entryJson) };
    case "text":
      return { type: c.type, transfer_id: c.transfer_id, text: c.text };
    case "accept":
      return { type: c.type, files: c.files.map((f) => ({ file: f.file, offset: f.offset })) };
    case "decline":
    case "cancel":
      return { type: c.type, reason: c.reason };
    case "ack":
    case "resend":
      return { type: c.type, file: c.file, offset: c.offset };
    case "file-end":
      return { type: c.type, file: c.file, hash: c.hash };
    case "file-done":
      return { type: c.type, file: c.file };
    case "error":
      return c.file === undefined
        ? { type: c.type, code: c.code, message: c.message }
        : { type: c.type, code: c.code, message: c.message, file: c.file };
    case "pause":
    case "resume":
    case "done":
      return { type: c.type };
  }
}

/** One control frame, whatever its size (see `encodeFrames`). */
export function encodeControl(c: Control): Uint8Array {
  return concat(Uint8Array.of(KIND_CONTROL, 0), utf8(JSON.stringify(ordered(c))));
}

/** Frames of at most `maxFrame` bytes: one control frame when it fits, else control parts. */
export function encodeFrames(c: Control, maxFrame: number): Uint8Array[] {
  const whole = encodeControl(c);
  const max = Math.min(maxFrame, MAX_FRAME_LEN);
  if (whole.length <= max) return [whole];
  const body = whole.subarray(2);
  const per = Math.max(max - 2, 1);
  const out: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += per) {
    const last = at + per >= body.length;
    out.push(concat(Uint8Array.of(KIND_CONTROL_PART, last ? FLAG_LAST : 0), body.subarray(at, at + per)));
  }
  return out;
}

export function encodeChunk(file: number, offset: bigint, flags: number, hash: Uint8Array, data: Uint8Array): Uint8Array {
  if (hash.length !== 32) throw new Error("a chunk's chaining value is 32 bytes");
  return concat(Uint8Array.of(KIND_CHUNK, flags), u32be(file), u64be(offset), hash, data);
}

// --- parsing: what serde accepts, nothing more ---------------------------------------

class Shape extends Error {}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// A missing field takes its serde default; `null` is no default (serde refuses it).
const get = (o: Obj, k: string, dflt: unknown): unknown => (Object.hasOwn(o, k) ? o[k] : dflt);

function uint(o: Obj, k: string, max: number, dflt?: number): number {
  const v = get(o, k, dflt);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw new Shape(`${k}: not an integer in range`);
  return v;
}

function int(o: Obj, k: string, dflt: number): number {
  const v = get(o, k, dflt);
  if (typeof v !== "number" || !Number.isInteger(v)) throw new Shape(`${k}: not an integer`);
  return v;
}

function str(o: Obj, k: string, dflt?: string): string {
  const v = get(o, k, dflt);
  if (typeof v !== "string") throw new Shape(`${k}: not a string`);
  return v;
}

function list(o: Obj, k: string, dflt?: unknown[]): unknown[] {
  const v = get(o, k, dflt);
  if (!Array.isArray(v)) throw new Shape(`${k}: not a list`);
  return v;
}

function obj(v: unknown): Obj {
  if (!isObj(v)) throw new Shape("not an object");
  return v;
}

const U16 = 0xffff;
const U32 = 0xffff_ffff;
const U64 = Number.MAX_SAFE_INTEGER;

function entry(v: unknown): FileEntry {
  const o = obj(v);
  const e: FileEntry = { path: str(o, "path"), size: uint(o, "size", U64), mtime_ms: int(o, "mtime_ms", 0) };
  const dir = get(o, "dir", false);
  if (typeof dir !== "boolean") throw new Shape("dir: not a boolean");
  if (dir) e.dir = true;
  return e;
}

function files<T>(o: Obj, each: (v: unknown) => T): T[] {
  const l = list(o, "files");
  if (l.length > MAX_FILES) throw new FrameError("too-many-entries");
  return l.map(each);
}

function control(o: Obj): Control {
  const type = str(o, "type");
  switch (type) {
    case "hello":
      return {
        type,
        version: uint(o, "version", U16),
        caps: list(o, "caps", []).map((c) => {
          if (typeof c !== "string") throw new Shape("caps: not strings");
          return c;
        }),
        max_message_size: uint(o, "max_message_size", U32),
        mac: str(o, "mac"),
      };
    case "manifest":
      return { type, transfer_id: str(o, "transfer_id"), files: files(o, entry) };
    case "text":
      return { type, transfer_id: str(o, "transfer_id"), text: str(o, "text") };
    case "accept":
      return {
        type,
        files: files(o, (v) => {
          const f = obj(v);
          return { file: uint(f, "file", U32), offset: uint(f, "offset", U64) };
        }),
      };
    case "decline":
    case "cancel":
      return { type, reason: str(o, "reason", "") };
    case "ack":
    case "resend":
      return { type, file: uint(o, "file", U32), offset: uint(o, "offset", U64) };
    case "file-end":
      return { type, file: uint(o, "file", U32), hash: str(o, "hash") };
    case "file-done":
      return { type, file: uint(o, "file", U32) };
    case "error": {
      const code = str(o, "code");
      if (!(PEER_ERROR_CODES as readonly string[]).includes(code)) throw new Shape("unknown error code");
      const e: Control = { type, code: code as PeerErrorCode, message: str(o, "message") };
      if (o.file !== undefined && o.file !== null) e.file = uint(o, "file", U32);
      return e;
    }
    case "pause":
    case "resume":
    case "done":
      return { type };
    default:
      throw new Shape(`unknown type ${type}`);
  }
}

function parseControl(body: Uint8Array): Control {
  try {
    return control(obj(JSON.parse(fromUtf8(body))));
  } catch (e) {
    if (e instanceof FrameError) throw e;
    throw new FrameError("bad-control", e instanceof Error ? e.message : String(e));
  }
}

/** Decode one frame (a control part is `unknown-kind` here: see `ControlReassembler`). */
export function decodeFrame(buf: Uint8Array): Frame {
  if (buf.length === 0) throw new FrameError("empty");
  if (buf.length > MAX_FRAME_LEN) throw new FrameError("frame-too-large", `${buf.length} bytes`);
  switch (buf[0]) {
    case KIND_CONTROL:
      if (buf.length < 2) throw new FrameError("bad-control", "truncated header");
      return { kind: "control", control: parseControl(buf.subarray(2)) };
    case KIND_CHUNK: {
      if (buf.length < CHUNK_HEADER_LEN) throw new FrameError("short-chunk", `${buf.length} bytes`);
      const v = new DataView(buf.buffer, buf.byteOffset, CHUNK_HEADER_LEN);
      return {
        kind: "chunk",
        chunk: {
          file: v.getUint32(2),
          offset: v.getBigUint64(6),
          flags: buf[1],
          hash: buf.subarray(14, CHUNK_HEADER_LEN),
          data: buf.subarray(CHUNK_HEADER_LEN),
        },
      };
    }
    default:
      throw new FrameError("unknown-kind", String(buf[0]));
  }
}

/** Joins control parts into a message; every other frame passes through `decodeFrame`. */
export class ControlReassembler {
  private parts: Uint8Array[] = [];
  private len = 0;

  /** `null`: a part was taken and more are expected. */
  push(frame: Uint8Array): Frame | null {
    if (frame[0] !== KIND_CONTROL_PART) return decodeFrame(frame);
    if (frame.length > MAX_FRAME_LEN) {
      this.reset();
      throw new FrameError("frame-too-large", `${frame.length} bytes`);
    }
    if (frame.length < 2) throw new FrameError("bad-control", "truncated part header");
    const piece = frame.subarray(2);
    if (this.len + piece.length > MAX_CONTROL_LEN) {
      this.reset();
      throw new FrameError("control-too-large");
    }
    this.parts.push(piece.slice());
    this.len += piece.length;
    if ((frame[1] & FLAG_LAST) === 0) return null;
    const body = concat(...this.parts);
    this.reset();
    return { kind: "control", control: parseControl(body) };
  }

  private reset(): void {
    this.parts = [];
    this.len = 0;
  }
}
