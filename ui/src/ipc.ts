// The contract between the UI and the Rust shell. Commands are thin wrappers over
// ferry-core; transfer events arrive on a Channel (pushed, never polled) with the exact
// JSON shape of `ferry_core::events::Event` (the CLI's `--json` lines use it too).
import { Channel, invoke } from "@tauri-apps/api/core";

export interface OfferFile {
  path: string;
  size: number;
  dir?: boolean;
}

export type PathKind = "host" | "srflx" | "prflx" | "relay" | "memory" | "unknown";

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
    }
  | { event: "waiting" }
  | { event: "peer-joined" }
  /** Sender: the receiver proved the password; the devices are being connected. */
  | { event: "connecting" }
  | { event: "wrong-password-attempt"; attempts_left?: number | null }
  | { event: "attempt-failed"; code: string; message: string }
  | { event: "retrying"; code: string; message: string }
  | { event: "connected"; path: string; kind?: PathKind }
  | { event: "verification"; words: string | string[] }
  | { event: "offer"; transfer_id?: string; files: OfferFile[]; total: number }
  | { event: "resuming"; bytes_done: number; total: number }
  | {
      event: "progress";
      file: string;
      bytes_done: number;
      total: number;
      rate_bps: number;
      eta_secs: number | null;
    }
  | { event: "file-done"; path: string; hash: string }
  | { event: "file-failed"; path: string; code: string; message: string }
  | { event: "chunk-rejected"; file: string; offset: number }
  | { event: "paused" }
  | { event: "resumed" }
  | { event: "reconnecting" }
  /** Symlinks inside a picked folder that were not sent (paths as the receiver would see them). */
  | { event: "skipped-symlinks"; paths: string[] }
  | { event: "done"; bytes: number; secs: number; transfer_id?: string }
  | { event: "error"; code: string; message: string };

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
}

export interface HistoryEntry {
  transfer_id: string;
  direction: "send" | "receive";
  name: string;
  files: number;
  bytes: number;
  bytes_done: number;
  peer?: string | null;
  /** "done" | "failed" | "cancelled" | "partial" | ... */
  state: string;
  started_at: number;
  finished_at?: number | null;
  secs?: number | null;
  resumable: boolean;
  /** Receive side: the folder it went to. */
  out_dir?: string | null;
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
  sendStart: (paths: string[], password: string | null, onEvent: EventHandler) =>
    invoke<TransferId>("send_start", { paths, password, onEvent: channel(onEvent) }),
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
};

/** Name of the app event carrying a `ferry://` link opened while the app runs. */
export const DEEP_LINK_EVENT = "ferry://link";
