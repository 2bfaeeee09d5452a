// What the web engine's crypto modules share: the protocol label, roles and the error type.

/** Domain label bound into every identity, KDF and MAC (crypto.rs `PROTOCOL_LABEL`). */
export const PROTOCOL_LABEL = "ferry/v1";

export type Role = "host" | "guest";
export const otherRole = (r: Role): Role => (r === "host" ? "guest" : "host");

export type CryptoErrorCode = "bad-pake-message" | "confirmation-failed" | "malformed" | "unauthentic" | "replay";

/** What the room crypto refuses; `code` names the Rust `CryptoError` variant. */
export class CryptoError extends Error {
  constructor(readonly code: CryptoErrorCode) {
    super(code);
  }
}
