// Engine error codes → words a person understands, and whether trying again can help.

export interface HumanError {
  title: string;
  detail: string;
  /** Offer a "Try again" button. */
  retry: boolean;
}

const KNOWN: Record<string, Omit<HumanError, "detail"> & { detail?: string }> = {
  "wrong-password": {
    title: "Wrong password",
    // Key confirmation cannot tell a wrong password from a signaling server that altered the
    // handshake: both leave the two devices with different keys.
    detail: "The password doesn't match this room, or the signaling server interfered. Check it with the sender and try again.",
    retry: true,
  },
  "room-not-found": {
    title: "Room not found",
    detail: "No room has this ID. Check the ID, or ask the sender for a new link.",
    retry: true,
  },
  "room-expired": {
    title: "Room expired",
    detail: "This room has expired. The sender needs to create a new one.",
    retry: true,
  },
  "room-full": {
    title: "Room already in use",
    detail: "Someone else already joined this room.",
    retry: false,
  },
  "room-locked": {
    title: "Room locked",
    detail: "Too many wrong passwords were tried, so the room was locked. Start a new one.",
    retry: true,
  },
  "rate-limited": {
    title: "Too many attempts",
    detail: "Wait a minute, then try again.",
    retry: true,
  },
  "peer-left": {
    title: "The other side left",
    detail: "The connection to the other device was lost. Try again to pick up where it stopped.",
    retry: true,
  },
  "disk-full": {
    title: "Disk full",
    detail: "There isn't enough free space in the download folder. Free some space or choose another folder.",
    retry: true,
  },
  "server-unreachable": {
    title: "Can't reach the signaling server",
    detail: "Check your network, or the server address in Settings.",
    retry: true,
  },
  "connect-failed": {
    title: "Couldn't connect the two devices",
    detail: "A direct connection wasn't possible. A TURN relay in Settings can help across strict networks.",
    retry: true,
  },
  "declined": { title: "Transfer declined", detail: "The receiver declined the files.", retry: false },
  cancelled: { title: "Cancelled", detail: "The transfer was cancelled.", retry: true },
  "integrity": {
    title: "File check failed",
    detail: "A file didn't arrive intact. Try again; finished parts are kept.",
    retry: true,
  },
  "too-large": {
    title: "Too long to send as text",
    detail: "A text snippet can be at most 64 KB. Send it as a file instead.",
    retry: false,
  },
  "permission-denied": {
    title: "No permission",
    detail: "Ferry can't read or write that location.",
    retry: true,
  },
};

/** Aliases the engine or server may use for the same situation. */
const ALIASES: Record<string, string> = {
  "bad-password": "wrong-password",
  "key-confirmation-failed": "wrong-password",
  "pake-failed": "wrong-password",
  expired: "room-expired",
  "not-found": "room-not-found",
  "peer-gone": "peer-left",
  "peer-disconnected": "peer-left",
  "link-lost": "peer-left",
  "no-space": "disk-full",
  enospc: "disk-full",
  "signaling-unreachable": "server-unreachable",
  "server-error": "server-unreachable",
  "ice-failed": "connect-failed",
  connect: "connect-failed",
  canceled: "cancelled",
  "hash-mismatch": "integrity",
};

export function humanError(code: string, message?: string): HumanError {
  const key = ALIASES[code] ?? code;
  const known = KNOWN[key];
  if (known) return { title: known.title, detail: known.detail ?? message ?? "", retry: known.retry };
  // Unknown code: the engine's own message is the best we have, and a retry rarely hurts.
  return { title: "Something went wrong", detail: message || code, retry: true };
}

export function wrongPasswordNotice(attemptsLeft?: number | null): string {
  const base = "Someone tried a wrong password";
  // The engine reports u32::MAX when the server did not say.
  if (attemptsLeft == null || attemptsLeft > 1000) return `${base}.`;
  if (attemptsLeft <= 0) return `${base}. The room is now locked.`;
  return `${base}. ${attemptsLeft} attempt${attemptsLeft === 1 ? "" : "s"} left before the room locks.`;
}

/** Sender's notice when a receiver got in but the devices could not connect this time. */
export function attemptFailedNotice(code: string): string {
  const why = code === "timeout" ? "went quiet before the devices connected" : "could not reach this device";
  return `The receiver ${why}. The room is still open, so they can try again.`;
}

/** Receiver: a join attempt failed before the devices connected and is being tried again. */
export function retryingNotice(code: string): string {
  const why = code === "peer-gone" ? "The sender dropped the connection" : "No connection path formed";
  return `${why}; trying again…`;
}

/** What a failed command rejected with: the engine's typed error `{code, message}`, or a
 * plain value (then the code is `internal`). */
export function errorCode(err: unknown): string {
  if (err && typeof err === "object" && "code" in err) return String((err as { code: unknown }).code);
  return "internal";
}

export function errorMessage(err: unknown): string {
  if (err && typeof err === "object" && "message" in err) return String((err as { message: unknown }).message);
  return String(err);
}
