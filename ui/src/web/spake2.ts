// SPAKE2 over the full Ed25519 group, byte for byte as RustCrypto's `spake2` 0.4 computes it
// (which follows python-spake2, not RFC 9382):
// - M and N are python-spake2's `ParamsEd25519` constants (below);
// - the password scalar is HKDF-SHA256(salt empty, ikm = password, info "SPAKE2 pw",
//   48 bytes) read big-endian, mod L;
// - the random scalar is 64 random bytes read little-endian, mod L;
// - side A sends 'A' ‖ (x·B + pw·M), side B sends 'B' ‖ (y·B + pw·N);
// - key = SHA-256(SHA-256(pw) ‖ SHA-256(idA) ‖ SHA-256(idB) ‖ X ‖ Y ‖ K).
// tests/vectors/ferry-v1.json holds runs computed by the Rust side with fixed randomness.
import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberBE, bytesToNumberLE } from "@noble/curves/utils.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { concat, utf8 } from "./bytes";

const Point = ed25519.Point;
type Point = InstanceType<typeof Point>;
/** Order of the prime subgroup. */
export const L: bigint = Point.Fn.ORDER;

export const M: Point = Point.fromHex("15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312");
export const N: Point = Point.fromHex("f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3");

export type Side = "A" | "B";
const SIDE_BYTE: Record<Side, number> = { A: 0x41, B: 0x42 };

export class Spake2Error extends Error {}

export function passwordScalar(password: Uint8Array): bigint {
  return bytesToNumberBE(hkdf(sha256, password, new Uint8Array(0), utf8("SPAKE2 pw"), 48)) % L;
}

/** The secret scalar drawn from 64 random bytes (curve25519-dalek's `Scalar::random`). */
export function scalarFromRandom(random64: Uint8Array): bigint {
  if (random64.length !== 64) throw new Spake2Error("64 random bytes expected");
  return bytesToNumberLE(random64) % L;
}

export interface Spake2State {
  readonly side: Side;
  readonly scalar: bigint;
  readonly pwScalar: bigint;
  readonly password: Uint8Array;
  readonly idA: Uint8Array;
  readonly idB: Uint8Array;
  /** Our element, without the side byte. */
  readonly element: Uint8Array;
}

/** Our first (and only) message: side byte then the blinded element, 33 bytes. */
export function start(
  side: Side,
  password: Uint8Array,
  idA: Uint8Array,
  idB: Uint8Array,
  random64: Uint8Array = crypto.getRandomValues(new Uint8Array(64)),
): { state: Spake2State; message: Uint8Array } {
  const scalar = scalarFromRandom(random64);
  const pwScalar = passwordScalar(password);
  const blind = side === "A" ? M : N;
  const element = Point.BASE.multiply(scalar).add(blind.multiply(pwScalar)).toBytes();
  const message = concat(Uint8Array.of(SIDE_BYTE[side]), element);
  return { state: { side, scalar, pwScalar, password, idA, idB, element }, message };
}

/** The shared key from the peer's message; throws `Spake2Error` on a malformed one. */
export function finish(state: Spake2State, peerMessage: Uint8Array): Uint8Array {
  const peerSide: Side = state.side === "A" ? "B" : "A";
  if (peerMessage.length !== 33) throw new Spake2Error("wrong length");
  if (peerMessage[0] !== SIDE_BYTE[peerSide]) throw new Spake2Error("bad side");
  const peerElement = peerMessage.subarray(1);
  let peer: Point;
  try {
    // ZIP-215 decoding accepts what curve25519-dalek's decompress accepts (non-canonical y).
    peer = Point.fromBytes(peerElement, true);
  } catch {
    throw new Spake2Error("corrupt message");
  }
  const unblind = state.side === "A" ? N : M;
  const k = peer.add(unblind.multiply(state.pwScalar).negate()).multiply(state.scalar).toBytes();
  const [x, y] = state.side === "A" ? [state.element, peerElement] : [peerElement, state.element];
  return sha256(concat(sha256(state.password), sha256(state.idA), sha256(state.idB), x, y, k));
}
