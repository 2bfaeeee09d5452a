// One transfer as the UI sees it, folded from the engine's events. Pure: no DOM, no IPC,
// so every screen's logic is testable with plain event lists.
import type { FerryEvent, OfferFile } from "./ipc";
import { attemptFailedNotice, humanError, retryingNotice, wrongPasswordNotice, type HumanError } from "./errors";

export type Phase =
  | "starting" // asked the shell to start, nothing heard yet
  | "waiting" // sender: room open, no receiver yet
  | "connecting" // peers found each other; PAKE / WebRTC under way
  | "offer" // receiver: files offered, waiting for the user's decision
  | "transferring"
  | "paused"
  | "reconnecting"
  | "done"
  | "error";

export interface FileRow {
  path: string;
  size: number;
  done: number;
  finished: boolean;
  hash?: string;
  failed?: string;
}

export interface TransferState {
  role: "send" | "receive";
  phase: Phase;
  room?: string;
  password?: string;
  link?: string;
  expiresAt?: number;
  /** The server granted less than the lifetime asked for. */
  capped?: boolean;
  server?: string;
  transferId?: string;
  /** Why the transfer is not moving yet (a wrong password, a failed or retried attempt); null when none. */
  notice: string | null;
  /** The error code behind `notice` ("wrong-password" for a wrong guess). */
  noticeCode?: string;
  wrongAttempts: number;
  path?: string;
  words?: string;
  files: FileRow[];
  total: number;
  bytesDone: number;
  rateBps: number;
  etaSecs: number | null;
  currentFile?: string;
  doneSecs?: number;
  /** `message`: the engine's own words, shown under the explanation when they add to it. */
  error?: HumanError & { code: string; message?: string };
  /** Symlinks the sender skipped inside picked folders (never followed out of them). */
  skipped: string[];
  /** A text snippet rather than files (the sender knows from the start, a receiver on `text`). */
  isText?: boolean;
  /** Receiver: the snippet that arrived; shown with a Copy button, never saved. */
  text?: string;
  /** Sender of a room for several receivers: each receiver so far, by number. */
  receivers?: ReceiverRow[];
}

/** One receiver of a room that serves several, as the room screen lists it. */
export interface ReceiverRow {
  n: number;
  phase: "checking" | "connecting" | "sending" | "done" | "failed";
  bytesDone: number;
  total: number;
  rateBps: number;
  /** Why it ended, when it failed or was stopped. */
  message?: string;
}

/** Fold one receiver's own event into its row (a new number starts a new row). */
export function foldReceiver(rows: ReceiverRow[], n: number, e: FerryEvent): ReceiverRow[] {
  const old = rows.find((r) => r.n === n) ?? { n, phase: "checking" as const, bytesDone: 0, total: 0, rateBps: 0 };
  let row: ReceiverRow = old;
  switch (e.event) {
    case "connecting":
      row = { ...old, phase: "connecting" };
      break;
    case "connected":
      row = { ...old, phase: "sending" };
      break;
    case "progress":
      row = { ...old, phase: "sending", bytesDone: e.bytes_done, total: e.total, rateBps: e.rate_bps };
      break;
    case "done":
      row = { ...old, phase: "done", bytesDone: e.bytes, total: Math.max(old.total, e.bytes) };
      break;
    case "error":
      row = { ...old, phase: "failed", message: humanError(e.code, e.message).title };
      break;
    default:
      break;
  }
  const others = rows.filter((r) => r.n !== n);
  return [...others, row].sort((a, b) => a.n - b.n);
}

export function initialState(role: "send" | "receive", isText = false): TransferState {
  return {
    role,
    isText,
    phase: "starting",
    notice: null,
    skipped: [],
    wrongAttempts: 0,
    files: [],
    total: 0,
    bytesDone: 0,
    rateBps: 0,
    etaSecs: null,
  };
}

function rowsFromOffer(files: OfferFile[]): FileRow[] {
  return files.filter((f) => !f.dir).map((f) => ({ path: f.path, size: f.size, done: 0, finished: false }));
}

/** Bytes of every finished file before `idx` plus nothing else: where `idx` starts overall. */
function finishedBytes(files: FileRow[], except: string): number {
  return files.filter((f) => f.finished && f.path !== except).reduce((a, f) => a + f.size, 0);
}

/** A receiver's attempt ended before the devices connected: the room card comes back. Any
 * other phase (a resume that is reconnecting, a finished transfer) is left as it is. */
function attemptOver(p: Phase): Phase {
  return p === "connecting" ? "waiting" : p;
}

export function reduce(s: TransferState, e: FerryEvent): TransferState {
  switch (e.event) {
    case "room-created":
      return {
        ...s,
        phase: "waiting",
        room: e.room,
        password: e.password,
        link: e.link,
        expiresAt: e.expires_at,
        capped: e.capped ?? false,
        server: e.server,
        transferId: e.transfer_id ?? s.transferId,
      };
    case "room-extended":
      return { ...s, expiresAt: e.expires_at, capped: false };
    case "waiting":
      // Also sent when a receiver leaves before the devices connect.
      return { ...s, phase: attemptOver(s.phase) };
    case "connecting":
    case "peer-joined":
      return { ...s, phase: "connecting", notice: null, noticeCode: undefined };
    case "wrong-password-attempt":
      // The guest that failed is gone; the room stays open for the right one.
      return {
        ...s,
        phase: attemptOver(s.phase),
        wrongAttempts: s.wrongAttempts + 1,
        notice: wrongPasswordNotice(e.attempts_left),
        noticeCode: "wrong-password",
      };
    case "attempt-failed":
      // Same as a wrong password: that attempt is over, the room waits for the next.
      return { ...s, phase: attemptOver(s.phase), notice: attemptFailedNotice(e.code), noticeCode: e.code };
    case "retrying":
      // The receiver is still on its way in: same phase, and say why it is taking longer.
      return { ...s, notice: retryingNotice(e.code), noticeCode: e.code };
    case "connected":
      return { ...s, notice: null, noticeCode: undefined, phase: s.phase === "reconnecting" ? "transferring" : "connecting", path: e.path };
    case "verification":
      return { ...s, words: Array.isArray(e.words) ? e.words.join(" ") : e.words };
    case "offer": {
      const files = rowsFromOffer(e.files);
      return {
        ...s,
        // The sender sees its own manifest go out; only the receiver has a decision to make.
        phase: s.role === "receive" ? "offer" : s.phase,
        files,
        total: e.total,
        transferId: e.transfer_id ?? s.transferId,
      };
    }
    case "text":
      return { ...s, isText: true, text: e.text, total: new TextEncoder().encode(e.text).length, transferId: e.transfer_id };
    case "skipped-symlinks":
      return { ...s, skipped: [...s.skipped, ...e.paths] };
    case "resuming":
      return { ...s, phase: "transferring", bytesDone: e.bytes_done, total: e.total || s.total };
    case "progress": {
      // The engine reports the current file's progress; overall = finished files + this one.
      // If it reports overall totals instead (total equals the whole offer), use them directly.
      const overall = s.total > 0 && e.total === s.total && !s.files.some((f) => f.path === e.file && f.size === e.total);
      const files = s.files.map((f) => (f.path === e.file ? { ...f, done: overall ? f.done : e.bytes_done } : f));
      const bytesDone = overall ? e.bytes_done : finishedBytes(files, e.file) + e.bytes_done;
      return {
        ...s,
        phase: s.phase === "paused" ? "paused" : "transferring",
        files,
        currentFile: e.file,
        bytesDone: Math.max(s.bytesDone, Math.min(bytesDone, s.total || bytesDone)),
        total: s.total || e.total,
        rateBps: e.rate_bps,
        etaSecs: e.eta_secs,
      };
    }
    case "file-done": {
      const files = s.files.map((f) => (f.path === e.path ? { ...f, done: f.size, finished: true, hash: e.hash } : f));
      const bytesDone = Math.max(s.bytesDone, finishedBytes(files, ""));
      return { ...s, files, bytesDone };
    }
    case "file-failed":
      return { ...s, files: s.files.map((f) => (f.path === e.path ? { ...f, failed: e.message } : f)) };
    case "chunk-rejected":
      return s;
    case "paused":
      return { ...s, phase: "paused", rateBps: 0 };
    case "resumed":
      return { ...s, phase: "transferring" };
    case "reconnecting":
      return { ...s, phase: "reconnecting", rateBps: 0 };
    case "done":
      return {
        ...s,
        phase: "done",
        bytesDone: Math.max(s.bytesDone, e.bytes),
        total: s.total || e.bytes,
        files: s.files.map((f) => ({ ...f, done: f.size, finished: true })),
        doneSecs: e.secs,
        rateBps: e.secs > 0 ? e.bytes / e.secs : s.rateBps,
        etaSecs: 0,
        transferId: e.transfer_id ?? s.transferId,
      };
    case "error":
      return { ...s, phase: "error", error: { code: e.code, message: e.message, ...humanError(e.code, e.message) } };
    // One receiver of a room that serves several: the app sends to one receiver per room, so
    // the transfer's own state is the room's; the receivers' lines are not folded in here.
    case "receiver":
      return { ...s, receivers: foldReceiver(s.receivers ?? [], e.receiver, e.inner) };
  }
}

/** What the status line says for a phase. */
export function statusText(s: TransferState): string {
  switch (s.phase) {
    case "starting":
      return s.role === "send" ? "Creating a room…" : "Joining the room…";
    case "waiting":
      return "Waiting for the receiver…";
    case "connecting":
      return s.role === "send" ? "Receiver joined — connecting…" : "Connecting to the sender…";
    case "offer":
      return "The sender offers these files";
    case "transferring":
      return s.role === "send" ? "Sending…" : "Receiving…";
    case "paused":
      return "Paused";
    case "reconnecting":
      return "Connection lost — reconnecting…";
    case "done":
      if (s.isText) return s.role === "send" ? "Text sent" : "Text received";
      return s.role === "send" ? "Sent" : "Received";
    case "error":
      return s.error?.title ?? "Failed";
  }
}

export function isActive(s: TransferState): boolean {
  return s.phase === "transferring" || s.phase === "paused" || s.phase === "reconnecting" || s.phase === "connecting";
}
