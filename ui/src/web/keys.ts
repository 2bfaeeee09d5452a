// Room crypto of the web engine, mirroring crates/ferry-core/src/crypto.rs (docs/CRYPTO.md):
// SPAKE2 between host (side A) and guest (side B), the HKDF key schedule, key confirmation,
// the fingerprint MAC of the first data-channel message and the verification code.
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { b64decode, b64encode, concat, equalBytes, toHex, u32be, utf8 } from "./bytes";
import { CryptoError, otherRole, PROTOCOL_LABEL, type Role } from "./common";
import { Sealer } from "./seal";
import * as spake2 from "./spake2";

export { CryptoError, otherRole, PROTOCOL_LABEL, type Role } from "./common";
export const PAKE_MSG_PREFIX = "spake2:";
export const PAKE_CONFIRM_PREFIX = "confirm:";

// Rust's `str::trim` (Unicode White_Space), which differs from String.prototype.trim on
// U+0085 and U+FEFF.
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const TRIM = new RegExp(`^[${WS}]+|[${WS}]+$`, "g");
const SPLIT_WS = new RegExp(`[${WS}]+`);

/** What goes into SPAKE2: the password with surrounding whitespace trimmed. */
export const pakeBytes = (password: string): Uint8Array => utf8(password.replace(TRIM, ""));

export const identity = (role: Role, room: string): Uint8Array => utf8(`${PROTOCOL_LABEL} ${role} ${room}`);

/** Length-prefixed (u32 BE) concatenation, as the transcript and the fingerprint MAC use. */
function framed(parts: Uint8Array[]): Uint8Array {
  return concat(...parts.flatMap((p) => [u32be(p.length), p]));
}

/** One side of a SPAKE2 run (`room` in canonical form, no hyphen). */
export class Pake {
  private constructor(
    readonly role: Role,
    readonly room: string,
    private readonly state: spake2.Spake2State,
    private readonly message: Uint8Array,
  ) {}

  /** Start a run; `payload` is what goes to the peer in the `pake` relay message. */
  static start(role: Role, room: string, password: string, random64?: Uint8Array): { pake: Pake; payload: string } {
    const { state, message } = spake2.start(
      role === "host" ? "A" : "B",
      pakeBytes(password),
      identity("host", room),
      identity("guest", room),
      random64,
    );
    return { pake: new Pake(role, room, state, message), payload: PAKE_MSG_PREFIX + b64encode(message) };
  }

  /** Finish with the peer's `spake2:` payload. The keys are not trusted until the peer's
   * confirmation verifies. */
  finish(peerPayload: string): RoomKeys {
    return this.finishWithSecret(peerPayload).keys;
  }

  /** `finish`, also handing back the raw SPAKE2 output (test vectors). */
  finishWithSecret(peerPayload: string): { keys: RoomKeys; secret: Uint8Array } {
    if (!peerPayload.startsWith(PAKE_MSG_PREFIX)) throw new CryptoError("bad-pake-message");
    let peerMsg: Uint8Array;
    let secret: Uint8Array;
    try {
      peerMsg = b64decode(peerPayload.slice(PAKE_MSG_PREFIX.length));
      secret = spake2.finish(this.state, peerMsg);
    } catch {
      throw new CryptoError("bad-pake-message");
    }
    const [a, b] = this.role === "host" ? [this.message, peerMsg] : [peerMsg, this.message];
    const transcript = sha256(framed([utf8(PROTOCOL_LABEL), utf8(this.room), a, b]));
    return { keys: RoomKeys.derive(this.role, this.room, secret, transcript), secret };
  }
}

const LABELS = ["seal host->guest", "seal guest->host", "confirm", "fingerprint mac", "verification code"] as const;
type Label = (typeof LABELS)[number];

/** Keys derived from one SPAKE2 run. */
export class RoomKeys {
  private constructor(
    readonly role: Role,
    private readonly keys: Record<Label, Uint8Array>,
    private readonly transcript: Uint8Array,
  ) {}

  static derive(role: Role, room: string, shared: Uint8Array, transcript: Uint8Array): RoomKeys {
    const salt = utf8(`${PROTOCOL_LABEL} room ${room}`);
    const keys = Object.fromEntries(
      LABELS.map((l) => [l, hkdf(sha256, shared, salt, utf8(`${PROTOCOL_LABEL} ${l}`), 32)]),
    ) as Record<Label, Uint8Array>;
    return new RoomKeys(role, keys, transcript);
  }

  /** Every derived key by its HKDF label, then the transcript hash (test vectors). */
  schedule(): Record<string, Uint8Array> {
    return { ...this.keys, transcript: this.transcript };
  }

  private confirmTag(role: Role): Uint8Array {
    return hmac(sha256, this.keys.confirm, concat(utf8("key confirmation "), utf8(role), this.transcript));
  }

  /** Our `confirm:` payload for the `pake` relay. */
  confirmation(): string {
    return PAKE_CONFIRM_PREFIX + b64encode(this.confirmTag(this.role));
  }

  /** Check the peer's `confirm:` payload; throws `CryptoError` when it does not match. */
  verifyConfirmation(payload: string): void {
    if (!payload.startsWith(PAKE_CONFIRM_PREFIX)) throw new CryptoError("bad-pake-message");
    let tag: Uint8Array;
    try {
      tag = b64decode(payload.slice(PAKE_CONFIRM_PREFIX.length));
    } catch {
      throw new CryptoError("bad-pake-message");
    }
    if (!equalBytes(tag, this.confirmTag(otherRole(this.role)))) throw new CryptoError("confirmation-failed");
  }

  /** A sealer/opener for the relay, one per handshake. */
  sealer(): Sealer {
    const h2g = this.keys["seal host->guest"];
    const g2h = this.keys["seal guest->host"];
    return this.role === "host" ? new Sealer("host", h2g, g2h) : new Sealer("guest", g2h, h2g);
  }

  /** MAC for our `hello`: binds our role and both DTLS fingerprints to the room key. */
  fingerprintMac(localFp: string, remoteFp: string): Uint8Array {
    return fpMac(this.keys["fingerprint mac"], this.role, localFp, remoteFp);
  }

  /** Check the peer's `hello` MAC; the peer's local fingerprint is our remote one. */
  verifyFingerprintMac(localFp: string, remoteFp: string, mac: Uint8Array): boolean {
    return equalBytes(mac, fpMac(this.keys["fingerprint mac"], otherRole(this.role), remoteFp, localFp));
  }

  /** 9 digits in groups of three, equal on both sides exactly when the keys are. */
  verificationCode(): string {
    const v = this.keys["verification code"];
    const n = new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0) % 1_000_000_000n;
    const d = n.toString().padStart(9, "0");
    return `${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}`;
  }
}

function fpMac(key: Uint8Array, role: Role, localFp: string, remoteFp: string): Uint8Array {
  const msg = framed([utf8("dtls fingerprints"), utf8(role), utf8(normalizeFp(localFp)), utf8(normalizeFp(remoteFp))]);
  return hmac(sha256, key, msg);
}

/** `sha-256 AB:CD:..` with whitespace runs collapsed and ASCII case folded. */
export function normalizeFp(fp: string): string {
  return fp
    .split(SPLIT_WS)
    .filter((w) => w !== "")
    .join(" ")
    .replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** `sha-256 AB:CD:...` of a DER certificate, as SDP writes it. */
export function certFingerprint(der: Uint8Array): string {
  const hex = toHex(sha256(der)).toUpperCase();
  return "sha-256 " + (hex.match(/../g) ?? []).join(":");
}
