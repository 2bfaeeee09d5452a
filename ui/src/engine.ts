// One UI, two engines. The views and the controller (app.ts) talk to an `Engine`: the Tauri
// shell's commands (tauri-engine.ts, over ipc.ts) in the desktop app, or the browser peer
// (web/engine.ts) on the page ferry-signal serves. Both report a transfer with the same
// `FerryEvent`s (`ferry_core::events::Event`) and the same error codes, so the state fold
// (state.ts) and the screens are shared. What one engine cannot do is said once, in
// `Capabilities`, and the views hide it from there instead of forking.
import type { EventHandler, HistoryEntry, NearbyRoom, Settings, TransferId } from "./ipc";

/** What the user picked to send: paths for the native shell, `File`s in a browser. */
export type Picked = { kind: "paths"; paths: string[] } | { kind: "files"; files: File[] };

export interface Capabilities {
  /** Transfers recorded across restarts: the History screen and resuming from it. */
  history: boolean;
  /** The Settings screen (server, STUN/TURN, download folder, nearby announcing, theme). */
  settings: boolean;
  /** Show a received file in the OS file manager. */
  reveal: boolean;
  /** Rooms announced on the local network. */
  nearby: boolean;
  /** The receiver picks a folder before joining (native). A browser decides where files go
   * when the offer arrives, from what its storage can hold (`Engine.offerStorage`). */
  destBeforeJoin: boolean;
  /** One room for several receivers. */
  manyReceivers: boolean;
  /** Sending a text snippet. */
  text: boolean;
  /** Sender: extend a waiting room's lifetime. */
  extendRoom: boolean;
  /** Choosing how long the room stays open before it is created. */
  lifetime: boolean;
  /** Pause and resume a running transfer, as its sender and as its receiver. */
  pause: { send: boolean; receive: boolean };
  /** Folders dropped on the window arrive whole (the Tauri shell gets their paths; a page
   * gets only files). */
  dropFolders: boolean;
  /** The sender may choose the room's password. */
  ownPassword: boolean;
}

/** Everything the views offer: the desktop app's engine. */
export const ALL_CAPS: Capabilities = {
  history: true,
  settings: true,
  reveal: true,
  nearby: true,
  destBeforeJoin: true,
  manyReceivers: true,
  text: true,
  extendRoom: true,
  lifetime: true,
  pause: { send: true, receive: true },
  dropFolders: true,
  ownPassword: true,
};

/** Receiver in a browser: where an accepted offer would go and whether it fits, said on the
 * offer card before the user accepts. */
export interface OfferStorage {
  /** Where Accept keeps the files ("disk": the browser's private storage, "memory", "stream":
   * straight to downloads); the card carries it as `data-kind`. */
  kind: string;
  /** What Accept does with the files, in a sentence. */
  text: string;
  /** False: Accept is off and `tooLarge` says why. */
  fits: boolean;
  tooLarge?: string;
  /** The label of a "save into a folder" choice, where the browser can write into one. */
  folder?: string;
}

/** A received file the page still holds and offers to save (browser). */
export interface SavedFile {
  path: string;
  size: number;
  /** An object URL to download it from; absent where the file is already on disk. */
  url?: string;
}

/** What a finished transfer leaves besides its events: files to save (browser receiver), a
 * line on where they went, and figures the done card carries as `data-*` attributes (the
 * end-to-end tests read them; people see the sentence). */
export interface TransferReport {
  files?: SavedFile[];
  note?: string;
  data?: Record<string, string | number>;
}

/** An engine's command failed: the same `{code, message}` as an `error` event. */
export interface EngineError {
  code: string;
  message: string;
}

export interface Engine {
  readonly caps: Capabilities;
  /** Pick files (or one folder) to send; null when the user cancels. */
  pick(folder: boolean): Promise<Picked | null>;
  /** Native: the receive folder. */
  pickFolder(): Promise<string | null>;
  /** `ttlSecs`: how long the room stays open (null: the server's default); the server caps it. */
  sendStart(what: Picked, password: string | null, ttlSecs: number | null, onEvent: EventHandler): Promise<TransferId>;
  /** One room for `receivers` receivers (0: any number); their events come as `receiver` events. */
  sendManyStart(what: Picked, password: string | null, ttlSecs: number | null, receivers: number, onEvent: EventHandler): Promise<TransferId>;
  receiverStop(id: TransferId, receiver: number): Promise<void>;
  sendText(text: string, password: string | null, ttlSecs: number | null, onEvent: EventHandler): Promise<TransferId>;
  extendRoom(id: TransferId, ttlSecs: number): Promise<void>;
  closeRoom(id: TransferId): Promise<void>;
  /** `dest`: the folder picked before joining (ignored where `caps.destBeforeJoin` is false). */
  receiveStart(room: string, password: string, server: string | null, dest: string, onEvent: EventHandler): Promise<TransferId>;
  receiveAccept(id: TransferId): Promise<void>;
  /** Browser: accept into a folder the user picks now (needs the click's user activation). */
  receiveAcceptInto?(id: TransferId): Promise<void>;
  /** Browser: where the pending offer would go; null where the engine decides nothing. */
  offerStorage?(id: TransferId): OfferStorage | null;
  /** What the finished (or failed) transfer left; null when nothing beyond its events. */
  report?(id: TransferId): TransferReport | null;
  pause(id: TransferId): Promise<void>;
  resume(id: TransferId): Promise<void>;
  cancel(id: TransferId): Promise<void>;
  history(): Promise<HistoryEntry[]>;
  historyResume(transferId: string, onEvent: EventHandler): Promise<TransferId>;
  settingsGet(): Promise<Settings>;
  settingsSet(settings: Settings): Promise<void>;
  qrSvg(text: string): Promise<string>;
  reveal(path: string): Promise<void>;
  /** The signaling server in use. */
  signalUrl(): Promise<string>;
  /** The join link the app was opened with, if any. */
  initialLink(): Promise<string | null>;
  nearbyRooms(waitSecs?: number | null): Promise<NearbyRoom[]>;
  /** The link that opens a room in a browser, from its `ferry://` link; null where none. */
  browserLink(link: string): string | null;
}

/** What an engine rejects a command it cannot run with. */
export function unsupported(what: string): Promise<never> {
  const e: EngineError = { code: "unsupported", message: `${what} is not available here` };
  return Promise.reject(e);
}
