// Sealing of the relay payloads (SDP offer/answer, ICE candidates), as crypto.rs's `Sealer`:
// envelope = base64(counter u64 BE ‖ 24-byte nonce ‖ XChaCha20-Poly1305 ciphertext+tag),
// AAD = "ferry/v1 sealed FROM->TO KIND" ‖ counter. Counters start at 1 and strictly increase.
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";

import { b64decode, b64encode, concat, u64be, utf8 } from "./bytes";
import { CryptoError, otherRole, PROTOCOL_LABEL, type Role } from "./common";

export type SealKind = "offer" | "answer" | "ice-candidate";

const CTR_LEN = 8;
const NONCE_LEN = 24;
const TAG_LEN = 16;

export function sealAad(from: Role, kind: SealKind, ctr: bigint): Uint8Array {
  return concat(utf8(`${PROTOCOL_LABEL} sealed ${from}->${otherRole(from)} ${kind}`), u64be(ctr));
}

export class Sealer {
  private sendCtr = 0n;
  private recvCtr = 0n;

  constructor(
    readonly role: Role,
    private readonly sendKey: Uint8Array,
    private readonly recvKey: Uint8Array,
  ) {}

  /** Encrypt the next message of `kind` from this side. `nonce` only for test vectors. */
  seal(kind: SealKind, plaintext: Uint8Array, nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(NONCE_LEN))): string {
    this.sendCtr += 1n;
    const aad = sealAad(this.role, kind, this.sendCtr);
    const ct = xchacha20poly1305(this.sendKey, nonce, aad).encrypt(plaintext);
    return b64encode(concat(u64be(this.sendCtr), nonce, ct));
  }

  /** Decrypt the peer's next message of `kind`, refusing a replay or a reorder. */
  open(kind: SealKind, payload: string): Uint8Array {
    let raw: Uint8Array;
    try {
      raw = b64decode(payload);
    } catch {
      throw new CryptoError("malformed");
    }
    if (raw.length < CTR_LEN + NONCE_LEN + TAG_LEN) throw new CryptoError("malformed");
    const ctr = new DataView(raw.buffer, raw.byteOffset, CTR_LEN).getBigUint64(0);
    const nonce = raw.subarray(CTR_LEN, CTR_LEN + NONCE_LEN);
    let pt: Uint8Array;
    try {
      pt = xchacha20poly1305(this.recvKey, nonce, sealAad(otherRole(this.role), kind, ctr)).decrypt(
        raw.subarray(CTR_LEN + NONCE_LEN),
      );
    } catch {
      throw new CryptoError("unauthentic");
    }
    // Checked after authentication so a forged counter cannot burn the window.
    if (ctr <= this.recvCtr) throw new CryptoError("replay");
    this.recvCtr = ctr;
    return pt;
  }
}
