// @vitest-environment node
// The web engine against tests/vectors/ferry-v1.json, which crates/ferry-core/tests/vectors.rs
// writes from the native engine's own code: every value must come out byte for byte the same.
// Needs ui/src/web/ferry.wasm (scripts/build-wasm.sh); scripts/test-web-vectors.sh builds it
// and runs this file. Format of the vectors: tests/vectors/README.md.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { sha256 } from "@noble/hashes/sha2.js";
import { beforeAll, describe, expect, it } from "vitest";

import { b64decode, fromHex, toHex, utf8 } from "../src/web/bytes";
import { CryptoError, type Role } from "../src/web/common";
import * as frames from "../src/web/frames";
import { certFingerprint, normalizeFp, Pake, PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX, PROTOCOL_LABEL, type RoomKeys } from "../src/web/keys";
import { transferId } from "../src/web/manifest";
import { sealAad, type SealKind } from "../src/web/seal";
import { passwordScalar, scalarFromRandom } from "../src/web/spake2";
import { FerryWasm, Lz4Error, simdSupported, TreeError } from "../src/web/wasm";

const here = dirname(fileURLToPath(import.meta.url));
type Any = any;
const V: Any = JSON.parse(readFileSync(join(here, "../../tests/vectors/ferry-v1.json"), "utf8"));

// Both builds: with SIMD (what browsers load) and without (the fallback).
const WASM_FILES = ["ferry.wasm", "ferry-scalar.wasm"];
const builds = new Map<string, FerryWasm>();
let wasm: FerryWasm; // the SIMD build, for the vectors outside the per-build block
beforeAll(async () => {
  for (const f of WASM_FILES) builds.set(f, await FerryWasm.load(readFileSync(join(here, "../src/web", f))));
  wasm = builds.get(WASM_FILES[0])!;
  expect(simdSupported(), "Node runs wasm SIMD, so the SIMD build is the one under test").toBe(true);
});

const hex = toHex;

/** `[name, index]` rows for `it.each`, so each vector is its own named test. */
const cases = (list: Any[], name: (v: Any) => string): [string, number][] => list.map((v, i) => [name(v), i]);
const scalarHex = (s: bigint): string => {
  const b = new Uint8Array(32);
  for (let i = 0, v = s; i < 32; i++, v >>= 8n) b[i] = Number(v & 0xffn);
  return hex(b);
};

/** crates/ferry-testkit's `data(len, seed)`: xorshift64 on two 32-bit halves. */
function testData(len: number, seed: number): Uint8Array {
  const mask = (1n << 64n) - 1n;
  const x = ((BigInt(seed) * 6364136223846793005n + 1442695040888963407n) & mask) | 1n;
  let hi = Number(x >> 32n) | 0;
  let lo = Number(x & 0xffffffffn) | 0;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    hi ^= (hi << 13) | (lo >>> 19);
    lo ^= lo << 13;
    lo ^= (lo >>> 7) | (hi << 25);
    hi ^= hi >>> 7;
    hi ^= (hi << 17) | (lo >>> 15);
    lo ^= lo << 17;
    out[i] = lo & 0xff;
  }
  return out;
}

/** The seeded data a vector describes, checked against its digest (and inline bytes). */
function data(d: Any): Uint8Array {
  const bytes = testData(d.len, d.seed);
  expect(hex(sha256(bytes)), `data seed ${d.seed}`).toBe(d.sha256);
  if (d.hex !== undefined) expect(hex(bytes)).toBe(d.hex);
  return bytes;
}

function logText(lines: number): Uint8Array {
  let s = "";
  const two = (n: number) => String(n).padStart(2, "0");
  for (let i = 0; i < lines; i++) s += `2026-11-25T08:${two(i % 60)}:${two(i % 59)}Z INFO request ${i} served in ${i % 97} ms\n`;
  return utf8(s);
}

function recipe(r: Any): Uint8Array {
  if (r.log_lines !== undefined) return logText(r.log_lines);
  if (r.repeat_hex !== undefined) {
    const unit = fromHex(r.repeat_hex);
    const out = new Uint8Array(r.len);
    for (let i = 0; i < r.len; i++) out[i] = unit[i % unit.length];
    return out;
  }
  return testData(r.len, r.seed);
}

describe("constants", () => {
  it("match the native engine's", () => {
    const c = V.constants;
    expect([c.protocol_label, c.pake_msg_prefix, c.pake_confirm_prefix]).toEqual([PROTOCOL_LABEL, PAKE_MSG_PREFIX, PAKE_CONFIRM_PREFIX]);
    expect(c).toMatchObject({
      kind_control: frames.KIND_CONTROL,
      kind_chunk: frames.KIND_CHUNK,
      kind_control_part: frames.KIND_CONTROL_PART,
      flag_last: frames.FLAG_LAST,
      flag_compressed: frames.FLAG_COMPRESSED,
      cap_lz4: frames.CAP_LZ4,
      cap_text: frames.CAP_TEXT,
      peer_error_codes: [...frames.PEER_ERROR_CODES],
      chunk_header_len: frames.CHUNK_HEADER_LEN,
      min_chunk: frames.MIN_CHUNK,
      max_chunk: frames.MAX_CHUNK,
      max_frame_len: frames.MAX_FRAME_LEN,
      max_control_len: frames.MAX_CONTROL_LEN,
      max_files: frames.MAX_FILES,
    });
  });
});

/** Both sides of run `i`, recomputed from the vector's inputs. */
function run(i: number): { host: RoomKeys; guest: RoomKeys; secrets: Record<Role, Uint8Array>; payloads: Record<Role, string> } {
  const r = V.pake[i];
  const h = Pake.start("host", r.room, r.host_password, fromHex(r.host.rng_hex));
  const g = Pake.start("guest", r.room, r.guest_password, fromHex(r.guest.rng_hex));
  const hk = h.pake.finishWithSecret(g.payload);
  const gk = g.pake.finishWithSecret(h.payload);
  return { host: hk.keys, guest: gk.keys, secrets: { host: hk.secret, guest: gk.secret }, payloads: { host: h.payload, guest: g.payload } };
}

describe("SPAKE2 and key schedule", () => {
  it.each(cases(V.pake, (r: Any) => r.name))("%s", (_name: string, i: number) => {
    const r = V.pake[i];
    const got = run(i);
    expect(r.id_a).toBe(`${PROTOCOL_LABEL} host ${r.room}`);
    expect(r.id_b).toBe(`${PROTOCOL_LABEL} guest ${r.room}`);
    expect(scalarHex(passwordScalar(utf8(r.host_password.trim())))).toBe(r.host_password_scalar_le_hex);
    expect(scalarHex(passwordScalar(utf8(r.guest_password.trim())))).toBe(r.guest_password_scalar_le_hex);
    for (const role of ["host", "guest"] as const) {
      const side = r[role];
      const keys = got[role];
      const other = got[role === "host" ? "guest" : "host"];
      expect(scalarHex(scalarFromRandom(fromHex(side.rng_hex))), `${role} scalar`).toBe(side.scalar_le_hex);
      expect(got.payloads[role], `${role} payload`).toBe(side.payload);
      expect(hex(b64decode(got.payloads[role].slice(PAKE_MSG_PREFIX.length)))).toBe(side.message_hex);
      expect(hex(got.secrets[role]), `${role} SPAKE2 key`).toBe(side.spake2_key_hex);
      const schedule = Object.fromEntries(Object.entries(keys.schedule()).map(([k, v]) => [k, hex(v)]));
      expect(schedule, `${role} key schedule`).toEqual(side.keys);
      expect(keys.confirmation(), `${role} confirmation`).toBe(side.confirmation);
      const accepts = (() => {
        try {
          keys.verifyConfirmation(other.confirmation());
          return true;
        } catch (e) {
          expect((e as CryptoError).code).toBe("confirmation-failed");
          return false;
        }
      })();
      expect(accepts, `${role} accepts the peer's tag`).toBe(side.accepts_peer_confirmation);
      expect(keys.verificationCode(), `${role} verification code`).toBe(side.verification_code);
    }
  });
});

describe("sealed envelopes", () => {
  it.each(cases(V.sealed, (s: Any) => `${s.from} ${s.kind} #${s.counter}`))("%s", (_name: string, i: number) => {
    // Replay the envelopes in order up to this one, so counters line up with the vectors.
    const r = run(0);
    const sealers = { host: r.host.sealer(), guest: r.guest.sealer() };
    for (const s of V.sealed.slice(0, (i) + 1)) {
      const from = s.from as Role;
      const to: Role = from === "host" ? "guest" : "host";
      const env = sealers[from].seal(s.kind as SealKind, fromHex(s.plaintext_hex), fromHex(s.nonce_hex));
      expect(hex(sealAad(from, s.kind, BigInt(s.counter)))).toBe(s.aad_hex);
      expect(env).toBe(s.envelope);
      expect(hex(sealers[to].open(s.kind, s.envelope))).toBe(s.plaintext_hex);
    }
    // Opening it again is a replay.
    const last = V.sealed[i];
    const to: Role = last.from === "host" ? "guest" : "host";
    expect(() => sealers[to].open(last.kind, last.envelope)).toThrow(CryptoError);
  });
});

describe("fingerprints", () => {
  it("certificate fingerprints and their normal form", () => {
    for (const c of V.fingerprint.certificates) expect(certFingerprint(fromHex(c.der_hex))).toBe(c.fingerprint);
    for (const n of V.fingerprint.normalize) expect(normalizeFp(n.input)).toBe(n.output);
  });
  it("fingerprint MACs, and the other side verifies them", () => {
    const r = run(0);
    for (const m of V.fingerprint.macs) {
      const [mine, theirs] = m.role === "host" ? [r.host, r.guest] : [r.guest, r.host];
      expect(hex(mine.fingerprintMac(m.local, m.remote))).toBe(m.mac_hex);
      expect(theirs.verifyFingerprintMac(m.remote, m.local, fromHex(m.mac_hex))).toBe(true);
    }
  });
});

describe("fresh randomness", () => {
  // Not vectors: the path a real run takes (scalars from crypto.getRandomValues).
  it("two web sides agree with the same password and refuse each other with another", () => {
    for (const [pw, agree] of [
      ["gladly-brave-otter", true],
      ["gladly-brave-otters", false],
    ] as const) {
      const h = Pake.start("host", "7K3QMX9PDA", "gladly-brave-otter");
      const g = Pake.start("guest", "7K3QMX9PDA", pw);
      const hk = h.pake.finish(g.payload);
      const gk = g.pake.finish(h.payload);
      expect(outcome(() => hk.verifyConfirmation(gk.confirmation()))).toBe(agree ? "ok" : "confirmation-failed");
      expect(hk.verificationCode() === gk.verificationCode()).toBe(agree);
      if (agree) expect(new TextDecoder().decode(gk.sealer().open("offer", hk.sealer().seal("offer", utf8("v=0"))))).toBe("v=0");
    }
  });
});

/** "ok", or the `CryptoError` code `f` throws. */
function outcome(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (!(e instanceof CryptoError)) throw e;
    return e.code;
  }
}

describe("what the room crypto refuses", () => {
  it.each(cases(V.refused.pake, (p: Any) => p.payload))("PAKE message %s", (_p: string, i: number) => {
    const c = V.refused.pake[i];
    const r = V.pake[c.run];
    const { pake } = Pake.start(c.role, r.room, r[`${c.role}_password`], fromHex(r[c.role].rng_hex));
    expect(outcome(() => pake.finish(c.payload))).toBe(c.result);
  });
  it.each(cases(V.refused.confirmation, (p: Any) => p.payload))("confirmation %s", (_p: string, i: number) => {
    const c = V.refused.confirmation[i];
    const keys = run(c.run)[c.role as Role];
    expect(outcome(() => keys.verifyConfirmation(c.payload))).toBe(c.result);
  });
  it.each(cases(V.refused.sealed, (s: Any) => s.name))("sealed: %s", (_n: string, i: number) => {
    const c = V.refused.sealed[i];
    const opener = run(c.run)[c.opener as Role].sealer();
    expect(c.steps.map((s: Any) => outcome(() => opener.open(s.kind, s.envelope)))).toEqual(c.steps.map((s: Any) => s.result));
  });
  it("fingerprint MACs over other fingerprints, swapped or reflected", () => {
    const r = run(0);
    for (const v of V.fingerprint.verify) {
      expect(r[v.role as Role].verifyFingerprintMac(v.local, v.remote, fromHex(v.mac_hex)), JSON.stringify(v)).toBe(v.valid);
    }
  });
});

describe("transfer ids", () => {
  it.each(cases(V.transfer_id, (t: Any) => t.transfer_id))("%s", (_id: string, i: number) => {
    const t = V.transfer_id[i];
    expect(transferId(t.room, t.entries, (d) => wasm.blake3(d))).toBe(t.transfer_id);
  });
});

describe.each(WASM_FILES)("%s", (file) => {
  let w: FerryWasm;
  beforeAll(() => {
    w = builds.get(file)!;
  });

  describe("BLAKE3 pieces and roots", () => {
    it.each(cases(V.blake3.files, (f: Any) => f.name))("%s", (_name: string, i: number) => {
      const f = V.blake3.files[i];
      const bytes = data(f.data);
      const total = BigInt(bytes.length);
      // The piece schedule, as the sender cuts it.
      const pieces: { offset: number; len: number }[] = [];
      let at = 0n;
      for (const ph of f.phases) {
        for (;;) {
          const len = w.pieceLen(at, BigInt(ph.end), total, BigInt(ph.target));
          if (len === 0n) break;
          pieces.push({ offset: Number(at), len: Number(len) });
          at += len;
        }
      }
      expect(pieces).toEqual(f.pieces.map((p: Any) => ({ offset: p.offset, len: p.len })));
      // The sender's values, and the receiver's tree checking them as claimed.
      const send = w.tree(total);
      const recv = w.tree(total);
      try {
        for (const p of f.pieces) {
          const piece = bytes.subarray(p.offset, p.offset + p.len);
          expect(hex(w.pieceCv(BigInt(p.offset), total, piece))).toBe(p.cv_hex);
          expect(hex(send.push(BigInt(p.offset), piece))).toBe(p.cv_hex);
          recv.push(BigInt(p.offset), piece, fromHex(p.cv_hex));
        }
        expect(hex(send.root())).toBe(f.root_hex);
        expect(hex(recv.root())).toBe(f.root_hex);
        expect(hex(w.blake3(bytes))).toBe(f.root_hex);
      } finally {
        send.free();
        recv.free();
      }
    });

    it("a piece whose value is not the claimed one is refused, not added", () => {
      const f = V.blake3.files.find((x: Any) => x.pieces.length > 2);
      const bytes = data(f.data);
      const t = w.tree(BigInt(bytes.length));
      const p = f.pieces[0];
      const bad = fromHex(p.cv_hex);
      bad[31] ^= 1;
      const piece = bytes.subarray(p.offset, p.offset + p.len);
      expect(() => t.push(0n, piece, bad)).toThrow(TreeError);
      expect(t.next()).toBe(0n);
      t.push(0n, piece, fromHex(p.cv_hex));
      expect(t.next()).toBe(BigInt(p.len));
      expect(() => t.root()).toThrow(TreeError);
      t.free();
    });

    it("valid piece shapes", () => {
      for (const s of V.blake3.valid_piece) {
        expect(w.validPiece(BigInt(s.offset), BigInt(s.len), BigInt(s.total)), JSON.stringify(s)).toBe(s.valid);
      }
    });
  });

  describe("LZ4 chunks", () => {
    it.each(cases(V.lz4.chunks, (c: Any) => c.name))("%s", (_name: string, i: number) => {
      const c = V.lz4.chunks[i];
      const input = recipe(c.input);
      expect(input.length).toBe(c.input_len);
      expect(hex(sha256(input))).toBe(c.input_sha256);
      // What the native sender puts on the wire decodes to the input, exactly.
      if (c.wire_hex !== null) expect(hex(sha256(w.decompress(fromHex(c.wire_hex), V.lz4.max_chunk)))).toBe(c.input_sha256);
      // The browser's own encoder makes the same send-compressed-or-not decision. Its bytes may
      // differ: LZ4 encodings are not canonical, and lz4_flex's match finder reads words of the
      // target's pointer width (wasm32 vs x86_64). What it sends must decode to the input.
      const comp = w.compressor();
      const wire = comp.compress(input);
      comp.free();
      expect(wire === null, "sent compressed or not").toBe(c.wire_hex === null);
      if (wire !== null) {
        expect(wire.length).toBeLessThanOrEqual(Math.floor(input.length * 0.9));
        expect(hex(sha256(w.decompress(wire, V.lz4.max_chunk)))).toBe(c.input_sha256);
      }
    });
    it.each(cases(V.lz4.refused, (c: Any) => c.name))("refused: %s", (_name: string, i: number) => {
      const c = V.lz4.refused[i];
      let code = "accepted";
      try {
        w.decompress(fromHex(c.wire_hex), c.max);
      } catch (e) {
        code = (e as Lz4Error).code;
      }
      expect(code).toBe(c.error);
    });
  });

});

describe("peer frames", () => {
  it.each(cases(V.frames.control, (c: Any) => c.message.type))("control %s", (_t: string, i: number) => {
    const c = V.frames.control[i];
    expect(hex(frames.encodeControl(c.message))).toBe(c.frame_hex);
    expect(frames.decodeFrame(fromHex(c.frame_hex))).toEqual({ kind: "control", control: c.message });
  });

  it("control parts", () => {
    const p = V.frames.control_parts;
    const message = V.frames.control[p.message_index].message;
    expect(frames.encodeFrames(message, p.max_frame).map(hex)).toEqual(p.frames_hex);
    const joiner = new frames.ControlReassembler();
    const out = p.frames_hex.map((f: string) => joiner.push(fromHex(f)));
    expect(out.slice(0, -1).every((x: unknown) => x === null)).toBe(true);
    expect(out[out.length - 1]).toEqual({ kind: "control", control: message });
  });

  it.each(cases(V.frames.chunks, (c: Any) => `file ${c.file} at ${c.offset}`))("chunk %s", (_n: string, i: number) => {
    const c = V.frames.chunks[i];
    const f = frames.encodeChunk(c.file, BigInt(c.offset), c.flags, fromHex(c.cv_hex), fromHex(c.data_hex));
    expect(hex(f)).toBe(c.frame_hex);
    const d = frames.decodeFrame(fromHex(c.frame_hex));
    if (d.kind !== "chunk") throw new Error("not a chunk");
    expect([d.chunk.file, d.chunk.offset, d.chunk.flags, hex(d.chunk.hash), hex(d.chunk.data)]).toEqual([
      c.file,
      BigInt(c.offset),
      c.flags,
      c.cv_hex,
      c.data_hex,
    ]);
  });

  it.each(cases(V.frames.refused, (c: Any) => c.error))("refused: %s", (_e: string, i: number) => {
    const c = V.frames.refused[i];
    const f = c.frame_hex !== undefined ? fromHex(c.frame_hex) : recipe(c);
    let code = "accepted";
    try {
      frames.decodeFrame(f);
    } catch (e) {
      code = (e as frames.FrameError).code;
    }
    expect(code).toBe(c.error);
  });
});
