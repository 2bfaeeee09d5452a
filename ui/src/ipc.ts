// The contract between the UI and the Rust shell. Commands are thin wrappers over
// ferry-core; transfer events arrive on a Channel (pushed, never polled) with the exact
// JSON shape of `ferry_core::events::Event` (the CLI's `--json` lines use it too).
import { Channel, invoke } from "@tauri-apps/api/core";

export interface OfferFile {
  path: string;
  /** Bytes of this one file (0 for a folder). */
  size: number;
  dir?: boolean;
}

export type PathKind = "host" | "srflx" | "prflx" | "relay" | "memory" | "unknown";

/**
 * Progress numbers are in bytes and count the whole transfer, never one file: `resuming`,
 * `progress` and `done` all use the same scale, and `file` only names where the latest bytes
 * landed. `ui/tests/fixtures/events/` holds one fixture per variant, written by the Rust test
 * `crates/ferry-core/tests/ui_contract.rs`; `ui/tests/fixtures/events.ts` checks them against
 * these types, so a field renamed on either side fails `tsc --noEmit` (docs/ARCHITECTURE.md §5).
 */
export type FerryEvent =
  | {
      event: "room-created";
      room: string;
      password: string;
      link: string;
      /** Unix seconds. */
      expires_at: number;
      server?: string;
      transfer_id?: string;
      /** The server granted less than the lifetime asked for (its maximum). */
      capped?: boolean;
    }
  /** Sender: the room now ends at `expires_at` (Unix seconds), after an extend. */
  | { event: "room-extended"; expires_at: number }
  | { event: "waiting" }
  | { event: "peer-joined" }
  /** Sender: the receiver proved the password; the devices are being connected. */
  | { event: "connecting" }
  | { event: "wrong-password-attempt"; attempts_left?: number | null }
  | { event: "attempt-failed"; code: string; message: string }
  | { event: "retrying"; code: string; message: string }
  | { event: "connected"; path: string; kind?: PathKind }
  | { event: "verification"; words: string | string[] }
  | {
      event: "offer";
      transfer_id?: string;
      files: OfferFile[];
      /** Bytes of every file in the offer together. */
      total: number;
    }
  /** Where this attempt starts when it resumes; same scale as `progress`. */
  | {
      event: "resuming";
      /** Bytes the receiver already held, over the whole transfer. */
      bytes_done: number;
      /** As in `progress`. */
      total: number;
    }
  | {
      event: "progress";
      /** The file the latest bytes belong to: for display only, the numbers are overall. */
      file: string;
      /**
       * Bytes done over the whole transfer, counting what was held before a resume. Sender:
       * bytes the receiver acknowledged, finished files whole. Receiver: bytes verified and
       * written to disk.
       */
      bytes_done: number;
      /**
       * Bytes of the whole transfer. Sender: the files the receiver accepted. Receiver: the
       * whole offer (the same number as `offer.total`).
       */
      total: number;
      /** Bytes (not bits) per second, averaged over this attempt since it started. */
      rate_bps: number;
      /** Seconds left at that rate; null until there is a rate. */
      eta_secs: number | null;
    }
  /** `hash`: the file's BLAKE3 hash, hex. */
  | { event: "file-done"; path: string; hash: string }
  | { event: "file-failed"; path: string; code: string; message: string }
  /** `offset`: byte offset, within `file`, of the chunk that failed its check and is sent again. */
  | { event: "chunk-rejected"; file: string; offset: number }
  | { event: "paused" }
  | { event: "resumed" }
  | { event: "reconnecting" }
  /** Symlinks inside a picked folder that were not sent (paths as the receiver would see them). */
  | { event: "skipped-symlinks"; paths: string[] }
  /** Receiver: a text snippet arrived instead of files (shown, never saved); `done` follows. */
  | { event: "text"; transfer_id: string; text: string }
  | {
      event: "done";
      /**
       * Bytes of the whole transfer, counting any held from before a resume. Sender: bytes the
       * receiver acknowledged. Receiver: the offer's total.
       */
      bytes: number;
      /** Seconds data moved in the last attempt, from the receiver's accept to the end (waits not counted). */
      secs: number;
      transfer_id?: string;
      /**
       * Sender only: chunk payload bytes that crossed the link in the last attempt, after
       * compression (below `bytes` when the data compressed).
       */
      link_bytes?: number;
    }
  | { event: "error"; code: string; message: string }
  /**
   * A room that serves several receivers (`ferry send --receivers`): `inner` is what receiver
   * number `receiver` (from 1) reports, shaped as a one-receiver send's event.
   */
  | { event: "receiver"; receiver: number; inner: FerryEvent };

export interface TurnServer {
  urls: string;
  username?: string;
  credential?: string;
}

export type Theme = "system" | "light" | "dark";

export interface Settings {
  /** Empty: the app runs its own signaling server (works on the LAN, zero setup). */
  server_url: string;
  stun: string[];
  turn: TurnServer[];
  download_dir: string;
  theme: Theme;
  /** Announce rooms this device hosts on the local network (name, room id, server only). */
  announce: boolean;
  /** The name nearby devices see; empty: the host name. */
  device_name: string;
}

/** A room announced on the local network (`ferry_core::NearbyRoom`): the password is still needed. */
export interface NearbyRoom {
  /** The name the sender chose to show, already sanitised. */
  device: string;
  /** Room id as people type it. */
  room: string;
  /** The signaling server the room lives on. */
  server: string;
}

/** Where a transfer stands, as the engine's store records it (`ferry_core::status::TransferState`). */
export type TransferState = "active" | "done" | "failed" | "cancelled";

export interface HistoryEntry {
  transfer_id: string;
  direction: "send" | "receive";
  /** A text snippet is recorded by its size only: `name` says "Text snippet". */
  kind: "files" | "text";
  name: string;
  files: number;
  bytes: number;
  bytes_done: number;
  peer?: string | null;
  state: TransferState;
  started_at: number;
  finished_at?: number | null;
  secs?: number | null;
  resumable: boolean;
  /** Receive side: the folder it went to. */
  out_dir?: string | null;
}

/** What a failed command rejects with (`CmdError` in the shell): the same codes as `error` events. */
export interface CommandError {
  code: string;
  message: string;
}

/** Handle of one running transfer in the Rust shell. */
export type TransferId = number;

export type EventHandler = (e: FerryEvent) => void;

function channel(onEvent: EventHandler): Channel<FerryEvent> {
  const ch = new Channel<FerryEvent>();
  ch.onmessage = onEvent;
  return ch;
}

export const api = {
  /** Native file/folder picker (Rust side). Empty when the user cancels. */
  pickPaths: (folder: boolean) => invoke<string[]>("pick_paths", { folder }),
  pickFolder: () => invoke<string | null>("pick_folder"),
  /** `ttlSecs`: how long the room stays open (null: the server's default); the server caps it. */
  sendStart: (paths: string[], password: string | null, ttlSecs: number | null, onEvent: EventHandler) =>
    invoke<TransferId>("send_start", { paths, password, ttlSecs, onEvent: channel(onEvent) }),
  /**
   * One room for several receivers: `receivers` in all (0: any number until the room is closed
   * or expires), each with its own connection; their events come as `receiver` events.
   */
  sendManyStart: (paths: string[], password: string | null, ttlSecs: number | null, receivers: number, onEvent: EventHandler) =>
    invoke<TransferId>("send_many_start", { paths, password, ttlSecs, receivers, onEvent: channel(onEvent) }),
  /** Sender of a room for several receivers: stop receiver `receiver`; the others carry on. */
  receiverStop: (id: TransferId, receiver: number) => invoke<void>("receiver_stop", { id, receiver }),
  /** A text snippet (at most 64 KiB of UTF-8; the engine refuses more with `too-large`). */
  sendText: (text: string, password: string | null, ttlSecs: number | null, onEvent: EventHandler) =>
    invoke<TransferId>("send_text", { text, password, ttlSecs, onEvent: channel(onEvent) }),
  /** Sender: the waiting room stays open `ttlSecs` from now (capped by the server); `room-extended` follows. */
  extendRoom: (id: TransferId, ttlSecs: number) => invoke<void>("extend_room", { id, ttlSecs }),
  /** Sender: close the waiting room now; the send ends as cancelled. */
  closeRoom: (id: TransferId) => invoke<void>("close_room", { id }),
  /** `dest` is fixed before the offer: the engine resumes from parts already there. */
  receiveStart: (room: string, password: string, server: string | null, dest: string, onEvent: EventHandler) =>
    invoke<TransferId>("receive_start", { room, password, server, dest, onEvent: channel(onEvent) }),
  receiveAccept: (id: TransferId) => invoke<void>("receive_accept", { id }),
  pause: (id: TransferId) => invoke<void>("transfer_pause", { id }),
  resume: (id: TransferId) => invoke<void>("transfer_resume", { id }),
  cancel: (id: TransferId) => invoke<void>("transfer_cancel", { id }),
  history: () => invoke<HistoryEntry[]>("history_list"),
  historyResume: (transferId: string, onEvent: EventHandler) =>
    invoke<TransferId>("history_resume", { transferId, onEvent: channel(onEvent) }),
  settingsGet: () => invoke<Settings>("settings_get"),
  settingsSet: (settings: Settings) => invoke<void>("settings_set", { settings }),
  qrSvg: (text: string) => invoke<string>("qr_svg", { text }),
  reveal: (path: string) => invoke<void>("reveal", { path }),
  /** The signaling server this app uses now (its built-in one unless Settings name another). */
  signalUrl: () => invoke<string>("signal_url"),
  /** The `ferry://` link the app was started with, if any. */
  initialLink: () => invoke<string | null>("initial_link"),
  /** Rooms announced on the local network, listening `waitSecs` (default 3, at most 15). */
  nearbyRooms: (waitSecs: number | null = null) => invoke<NearbyRoom[]>("nearby_rooms", { waitSecs }),
};

/** Name of the app event carrying a `ferry://` link opened while the app runs. */
export const DEEP_LINK_EVENT = "ferry://link";
