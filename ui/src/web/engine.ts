// The browser peer as an `Engine` (engine.ts): the same screens as the desktop app, with the
// transfer run by this page — joining and hosting on the main thread (RTCPeerConnection lives
// here), the peer protocol, hashing and LZ4 in Workers (receive-run.ts, send-run.ts). What a
// page cannot do (history across restarts, settings, nearby rooms, showing a file in its
// folder, several receivers, text) is off in `caps`, so the views do not offer it.
import { type Capabilities, type Engine, type OfferStorage, type Picked, type TransferReport, ALL_CAPS, unsupported } from "../engine";
import type { EventHandler, TransferId } from "../ipc";
import { renderSVG } from "uqr";

import { parseJoinLink } from "../link";
import { pageJoinLink, parseJoinUrl, type PageAddress } from "./join-url";
import { type ReceiveRun, startReceive } from "./receive-run";
import { type SendRun, startSend } from "./send-run";

export const WEB_CAPS: Capabilities = {
  ...ALL_CAPS,
  history: false,
  settings: false,
  reveal: false,
  nearby: false,
  destBeforeJoin: false,
  manyReceivers: false,
  text: false,
  pause: { send: true, receive: false },
  dropFolders: false,
};

type Run = { kind: "receive"; run: ReceiveRun } | { kind: "send"; run: SendRun };

/** The page's address, as far as the engine reads it. */
export type WebPage = PageAddress & Pick<Location, "origin">;

export class WebEngine implements Engine {
  readonly caps = WEB_CAPS;
  private runs = new Map<TransferId, Run>();
  private nextId = 1;
  private inputs: { files: HTMLInputElement; folder: HTMLInputElement } | null = null;
  /** The picker waiting for its input's `change` (or `cancel`). */
  private picking: ((p: Picked | null) => void) | null = null;

  constructor(private page: WebPage) {}

  /** The signaling socket: `?server=`, else this page's own origin (join-url.ts). */
  private get server(): string {
    return parseJoinUrl(this.page).server;
  }

  private query(name: string): string | null {
    return new URLSearchParams(this.page.search).get(name);
  }

  /** Files chosen on an input while no `pick` waited (a test setting the input directly, or
   * a change that came after the browser reported the picker cancelled): sent all the same. */
  onUnaskedPick: ((p: Picked) => void) | null = null;

  /** Two hidden file inputs kept in the page: a picker needs a real input to click. */
  private input(folder: boolean): HTMLInputElement {
    if (!this.inputs) {
      const make = (id: string, dir: boolean) => {
        const i = document.createElement("input");
        i.type = "file";
        i.id = id;
        i.multiple = true;
        i.hidden = true;
        if (dir) i.setAttribute("webkitdirectory", "");
        i.addEventListener("change", () => {
          const files = Array.from(i.files ?? []);
          i.value = "";
          const picked: Picked | null = files.length ? { kind: "files", files } : null;
          if (this.picking) this.settle(picked);
          else if (picked) this.onUnaskedPick?.(picked);
        });
        i.addEventListener("cancel", () => this.settle(null));
        document.body.append(i);
        return i;
      };
      this.inputs = { files: make("files-input", false), folder: make("folder-input", true) };
    }
    return folder ? this.inputs.folder : this.inputs.files;
  }

  /** Put the pickers' inputs in the page now (before any click). */
  mountInputs(): void {
    this.input(false);
  }

  private settle(p: Picked | null): void {
    const done = this.picking;
    this.picking = null;
    done?.(p);
  }

  pick(folder: boolean): Promise<Picked | null> {
    // Clicked within the user's click: the browser opens its picker only then.
    const input = this.input(folder);
    this.settle(null);
    const p = new Promise<Picked | null>((resolve) => (this.picking = resolve));
    input.click();
    return p;
  }

  pickFolder(): Promise<string | null> {
    return unsupported("Choosing a folder before joining");
  }

  private add(run: Run): TransferId {
    // One transfer is on screen at a time: a new one lets go of the files earlier receives
    // still hold in memory (their download links are gone with their screen).
    for (const [old, r] of this.runs) {
      if (r.kind === "receive") r.run.dispose();
      this.runs.delete(old);
    }
    const id = this.nextId++;
    this.runs.set(id, run);
    return id;
  }

  private get(id: TransferId): Run {
    const r = this.runs.get(id);
    if (!r) throw { code: "internal", message: `no transfer ${id}` };
    return r;
  }

  // `ttlSecs` is the Send screen's lifetime picker; the page's create-room asks for it.
  async sendStart(what: Picked, password: string | null, ttlSecs: number | null, onEvent: EventHandler): Promise<TransferId> {
    if (what.kind !== "files") throw { code: "unsupported", message: "a page sends the files picked in it" };
    // `?throttle=` caps the rate (tests: a transfer slow enough to interrupt).
    const rateBps = Number(this.query("throttle") ?? 0) || 0;
    const run = startSend({ server: this.server, files: what.files, password, ttlSecs, onEvent, rateBps, webLink: (room, pw) => pageJoinLink(this.page, room, pw) });
    return this.add({ kind: "send", run });
  }

  sendManyStart(): Promise<TransferId> {
    return unsupported("A room for several receivers");
  }

  receiverStop(): Promise<void> {
    return unsupported("Stopping one receiver");
  }

  sendText(): Promise<TransferId> {
    return unsupported("Sending text");
  }

  async extendRoom(id: TransferId, ttlSecs: number): Promise<void> {
    const r = this.get(id);
    if (r.kind !== "send") return unsupported("Extending a room one joined");
    // A refusal is a WebError: its code and message are what the app reads from any failure.
    await r.run.extendRoom(ttlSecs);
  }

  async closeRoom(id: TransferId): Promise<void> {
    this.get(id).run.cancel();
  }

  async receiveStart(room: string, password: string, server: string | null, _dest: string, onEvent: EventHandler): Promise<TransferId> {
    // `?sink=memory` / `?sink=stream` force where files go (tests); otherwise the run picks.
    const s = this.query("sink");
    const sink = s === "memory" || s === "stream" ? s : "auto";
    const run = startReceive({ server: server ?? this.server, room, password, onEvent, sink });
    return this.add({ kind: "receive", run });
  }

  private receiving(id: TransferId): ReceiveRun {
    const r = this.get(id);
    if (r.kind !== "receive") throw { code: "internal", message: "not a receive" };
    return r.run;
  }

  receiveAccept(id: TransferId): Promise<void> {
    return this.receiving(id).accept();
  }

  receiveAcceptInto(id: TransferId): Promise<void> {
    return this.receiving(id).acceptIntoFolder();
  }

  offerStorage(id: TransferId): OfferStorage | null {
    const r = this.runs.get(id);
    return r?.kind === "receive" ? r.run.storage() : null;
  }

  report(id: TransferId): TransferReport | null {
    return this.runs.get(id)?.run.report() ?? null;
  }

  async pause(id: TransferId): Promise<void> {
    const r = this.get(id);
    if (r.kind !== "send") return unsupported("Pausing while receiving in a browser");
    r.run.pause();
  }

  async resume(id: TransferId): Promise<void> {
    const r = this.get(id);
    if (r.kind !== "send") return unsupported("Pausing while receiving in a browser");
    r.run.resume();
  }

  async cancel(id: TransferId): Promise<void> {
    this.get(id).run.cancel();
  }

  history() {
    return unsupported("History");
  }

  historyResume() {
    return unsupported("History");
  }

  settingsGet() {
    return unsupported("Settings");
  }

  settingsSet() {
    return unsupported("Settings");
  }

  /** The room card's QR code, so a phone's camera opens the room's browser link. */
  async qrSvg(text: string): Promise<string> {
    return renderSVG(text);
  }

  reveal(): Promise<void> {
    return unsupported("Showing a file in its folder");
  }

  async signalUrl(): Promise<string> {
    return this.server;
  }

  async initialLink(): Promise<string | null> {
    return null;
  }

  nearbyRooms() {
    return unsupported("Nearby rooms");
  }

  /** A room's link that opens this web app's join screen. */
  browserLink(link: string): string | null {
    const info = parseJoinLink(link);
    return info ? pageJoinLink(this.page, info.room, info.password ?? "") : null;
  }
}
