// The app controller: which screen is up, the running transfer, and wiring views to the shell.
import { announce, copyText, h, replaceKeepingFocus } from "./dom";
import { errorCode, errorMessage } from "./errors";
import { formatCountdown } from "./format";
import type { Engine, EngineError, Picked } from "./engine";
import type { FerryEvent, HistoryEntry, Settings, TransferId } from "./ipc";
import { parseJoinLink } from "./link";
import { DEFAULT_LIFETIME, lifetimeLabel } from "./lifetime";
import { initialState, isActive, reduce, statusText, type TransferState } from "./state";
import { historyView } from "./views/history";
import { navView, type Section } from "./views/nav";
import { checkJoin, receiveView, type NearbyState, type ReceivePrefill } from "./views/receive";
import { sendView } from "./views/send";
import { settingsView } from "./views/settings";
import { transferView } from "./views/transfer";
import { tauriEngine } from "./tauri-engine";

export type Screen = "send" | "receive" | "history" | "settings" | "transfer";

interface Running {
  id?: TransferId;
  state: TransferState;
  qrSvg?: string;
  dest?: string;
  /** Browser receiver: why the last "save into a folder" did not happen. */
  folderError?: EngineError;
  retry: () => void;
}

export class App {
  screen: Screen = "send";
  transfer: Running | null = null;
  settings: Settings | null = null;
  history: HistoryEntry[] | null = null;
  historyError: string | null = null;
  receivePrefill: ReceivePrefill = {};
  /** The Receive screen's list of rooms announced on the local network. */
  nearby: NearbyState = { kind: "idle" };
  /** Where received files go; from Settings until the user picks another folder. */
  receiveDest = "";
  settingsSaved = "";
  signalUrl: string | null = null;
  dragging = false;
  /** How long the next room stays open (the Send screen's picker), seconds. */
  lifetimeSecs = DEFAULT_LIFETIME;
  /** Receivers the next room serves: 1 is single use, 0 any number until it is closed. */
  receivers = 1;
  private generation = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private root: HTMLElement,
    private nav: HTMLElement | null,
    private engine: Engine = tauriEngine,
  ) {}

  async init(): Promise<void> {
    if (this.engine.caps.settings) {
      try {
        this.settings = await this.engine.settingsGet();
        this.receiveDest = this.settings.download_dir;
        this.applyTheme();
      } catch (e) {
        console.warn("settings", e);
      }
    }
    this.signalUrl = await this.engine.signalUrl().catch(() => null);
    this.render(true);
    this.timer ??= setInterval(() => this.tick(), 1000);
    try {
      const link = await this.engine.initialLink();
      if (link) this.openLink(link);
    } catch {
      /* not started from a link */
    }
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  applyTheme(): void {
    const t = this.settings?.theme ?? "system";
    if (t === "system") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", t);
  }

  go(screen: Screen): void {
    this.screen = screen;
    if (screen === "history") void this.loadHistory();
    this.render(true);
  }

  /** Re-draw the current screen; `moveFocus` puts focus on its heading (screen changes). */
  render(moveFocus = false): void {
    this.renderNav();
    const view = this.view();
    // Where the app stands, for tests and styling: the transfer's phase, else the screen.
    this.root.dataset.state = this.screen === "transfer" && this.transfer ? this.transfer.state.phase : this.screen;
    replaceKeepingFocus(this.root, view);
    if (moveFocus) (this.root.querySelector("#screen-title") as HTMLElement | null)?.focus();
  }

  private renderNav(): void {
    if (!this.nav) return;
    const active = this.screen === "transfer" ? (this.transfer?.state.role ?? "send") : this.screen;
    replaceKeepingFocus(this.nav, navView(active, this.engine.caps, (s) => this.navTo(s)));
  }

  private navTo(s: Section): void {
    // A running transfer keeps its screen reachable: Send/Receive leads back to it.
    if (this.transfer && isActive(this.transfer.state) && (s === "send" || s === "receive") && s === this.transfer.state.role) {
      this.go("transfer");
      return;
    }
    this.go(s);
  }

  private view(): HTMLElement {
    switch (this.screen) {
      case "send":
        return sendView(this.sendActions(), this.dragging, this.lifetimeSecs, this.receivers, this.engine.caps);
      case "receive":
        return receiveView(
          { join: (r, p, s) => this.join(r, p, s ?? null), chooseFolder: () => void this.chooseDest(), findNearby: () => void this.findNearby() },
          this.receivePrefill,
          this.receiveDest,
          this.nearby,
          this.engine.caps,
        );
      case "history":
        return historyView(this.history, this.historyError, { resume: (e) => this.resumeFromHistory(e), refresh: () => void this.loadHistory() });
      case "settings":
        return this.settings
          ? settingsView(this.settings, { save: (s) => void this.saveSettings(s), chooseDownloadDir: () => void this.chooseDownloadDir() }, this.settingsSaved, this.signalUrl)
          : h("p", { class: "hint" }, "Loading…");
      case "transfer":
        if (!this.transfer) return sendView(this.sendActions(), false, this.lifetimeSecs, this.receivers, this.engine.caps);
        return transferView(this.transfer.state, this.extras(this.transfer), {
          copy: (text, what) => void this.copy(text, what),
          pause: () => void this.control("pause"),
          resume: () => void this.control("resume"),
          cancel: () => void this.control("cancel"),
          retry: () => this.transfer?.retry(),
          back: () => this.back(),
          accept: () => void this.accept(),
          acceptInto: () => void this.acceptInto(),
          reveal: () => void this.reveal(),
          extendRoom: () => void this.extendRoom(),
          closeRoom: () => void this.closeRoom(),
          stopReceiver: (n) => void this.stopReceiver(n),
        });
    }
  }

  /** What the transfer screen shows besides the folded state. */
  private extras(t: Running) {
    const id = t.id;
    const e = this.engine;
    return {
      qrSvg: t.qrSvg,
      dest: t.dest,
      nowMs: Date.now(),
      extendBy: lifetimeLabel(this.lifetimeSecs),
      caps: e.caps,
      webLink: t.state.link ? e.browserLink(t.state.link) : null,
      storage: id != null && t.state.phase === "offer" ? (e.offerStorage?.(id) ?? null) : null,
      folderError: t.folderError,
      report: id != null && (t.state.phase === "done" || t.state.phase === "error") ? (e.report?.(id) ?? null) : null,
    };
  }

  private sendActions() {
    return {
      pickFiles: () => void this.pick(false),
      pickFolder: () => void this.pick(true),
      sendText: (t: string) => this.startText(t),
      setLifetime: (secs: number) => {
        this.lifetimeSecs = secs;
      },
      setReceivers: (n: number) => {
        this.receivers = n;
      },
    };
  }

  private tick(): void {
    const el = document.getElementById("expiry");
    const at = Number(el?.dataset.expires);
    if (el && at) el.textContent = formatCountdown(at, Date.now());
  }

  // ---- send ------------------------------------------------------------------------

  async pick(folder: boolean): Promise<void> {
    try {
      const what = await this.engine.pick(folder);
      if (what) this.startSend(what);
    } catch (e) {
      announce(`Could not open the picker: ${errorMessage(e)}`);
    }
  }

  /** What a drop or the picker gave: open a room for it. */
  startSend(what: Picked): void {
    const receivers = this.engine.caps.manyReceivers ? this.receivers : 1;
    this.openRoom((own, ttl, onEvent) =>
      receivers === 1
        ? this.engine.sendStart(what, own, ttl, onEvent)
        : this.engine.sendManyStart(what, own, ttl, receivers, onEvent),
    );
  }

  /** The Send screen's text box: open a room for a snippet. */
  startText(text: string): void {
    if (!text) return;
    this.openRoom((own, ttl, onEvent) => this.engine.sendText(text, own, ttl, onEvent), true);
  }

  /** Open a room with the Send screen's password and lifetime, unless a transfer is running. */
  private openRoom(
    start: (own: string | null, ttl: number, onEvent: (e: FerryEvent) => void) => Promise<TransferId>,
    isText = false,
  ): void {
    if (this.transfer && isActive(this.transfer.state)) {
      announce("A transfer is already running");
      return;
    }
    const own = (document.getElementById("own-password") as HTMLInputElement | null)?.value.trim() || null;
    const run = () => {
      const ttl = this.lifetimeSecs;
      this.begin("send", (onEvent) => start(own, ttl, onEvent), run, isText);
    };
    run();
  }

  /** The room card's Extend: the picked lifetime again, from now. */
  async extendRoom(): Promise<void> {
    const t = this.transfer;
    if (t?.id == null) return;
    try {
      await this.engine.extendRoom(t.id, this.lifetimeSecs);
    } catch (e) {
      announce(`Could not extend the room: ${errorMessage(e)}`);
    }
  }

  /** A room for several receivers: stop one of them; the others carry on. */
  async stopReceiver(n: number): Promise<void> {
    const t = this.transfer;
    if (t?.id == null) return;
    try {
      await this.engine.receiverStop(t.id, n);
      announce(`Stopping receiver ${n}`);
    } catch (e) {
      announce(`Could not stop receiver ${n}: ${errorMessage(e)}`);
    }
  }

  /** The room card's Close: the room goes now and the link stops working. */
  async closeRoom(): Promise<void> {
    const t = this.transfer;
    if (t?.id == null) return;
    try {
      await this.engine.closeRoom(t.id);
      // The engine ends the send as cancelled; nothing more to show for this room.
      this.generation++;
      this.transfer = null;
      this.go(t.state.role);
      announce("Room closed");
    } catch (e) {
      announce(`Could not close the room: ${errorMessage(e)}`);
    }
  }

  // ---- receive ---------------------------------------------------------------------

  join(roomInput: string, password: string, server: string | null = null): void {
    const form = checkJoin(roomInput, password, this.engine.caps.destBeforeJoin ? this.receiveDest : null);
    if ("error" in form) {
      this.receivePrefill = { room: roomInput, password, error: form.error };
      this.render();
      if (form.field) (this.root.querySelector(`#${form.field}`) as HTMLElement | null)?.focus();
      return;
    }
    const { parsed, pw } = form;
    this.receivePrefill = { room: parsed.room, password: pw };
    const srv = server ?? parsed.server ?? null;
    const dest = this.receiveDest;
    const run = () => {
      this.begin("receive", (onEvent) => this.engine.receiveStart(parsed.room, pw, srv, dest, onEvent), run);
      if (this.transfer) this.transfer.dest = dest;
    };
    run();
  }

  /** List the rooms announced on the local network (the shell listens a few seconds). */
  async findNearby(): Promise<void> {
    this.nearby = { kind: "looking" };
    this.render();
    try {
      const rooms = await this.engine.nearbyRooms();
      this.nearby = { kind: "found", rooms };
      announce(rooms.length ? `${rooms.length} nearby room${rooms.length === 1 ? "" : "s"} found` : "No nearby rooms found");
    } catch (e) {
      this.nearby = { kind: "failed", message: errorMessage(e) };
    }
    if (this.screen === "receive") this.render();
  }

  openLink(url: string): void {
    const info = parseJoinLink(url);
    if (!info) return;
    if (info.password) {
      this.join(info.room, info.password, info.server ?? null);
    } else {
      this.receivePrefill = { room: info.room };
      this.go("receive");
    }
  }

  /** Pick the receive folder, keeping what the user already typed in the form. */
  async chooseDest(): Promise<void> {
    const field = (id: string) => (this.root.querySelector(`#${id}`) as HTMLInputElement | null)?.value;
    const dir = await this.engine.pickFolder().catch(() => null);
    if (!dir) return;
    this.receiveDest = dir;
    this.receivePrefill = { ...this.receivePrefill, room: field("join-room") ?? this.receivePrefill.room, password: field("join-password") ?? this.receivePrefill.password, error: "" };
    if (this.screen === "receive") this.render();
  }

  async accept(): Promise<void> {
    const t = this.transfer;
    if (!t || t.id == null) return;
    t.state = { ...t.state, phase: "transferring" };
    this.render();
    try {
      await this.engine.receiveAccept(t.id);
    } catch (e) {
      this.onEvent(t, { event: "error", code: "accept-failed", message: String(e) });
    }
  }

  /** Browser receiver: accept into a folder picked now. The picker must open within the
   * click, so nothing is awaited before the engine's call. */
  async acceptInto(): Promise<void> {
    const t = this.transfer;
    if (!t || t.id == null || !this.engine.receiveAcceptInto) return;
    const pending = this.engine.receiveAcceptInto(t.id);
    t.folderError = undefined;
    try {
      await pending;
      if (t.state.phase === "offer") t.state = { ...t.state, phase: "transferring" };
    } catch (e) {
      t.folderError = { code: errorCode(e), message: errorMessage(e) };
    }
    if (this.transfer === t) this.render();
  }

  async reveal(): Promise<void> {
    const t = this.transfer;
    if (!t?.dest) return;
    const first = t.state.files[0]?.path;
    await this.engine.reveal(first ? `${t.dest}/${first}` : t.dest).catch((e) => announce(String(e)));
  }

  // ---- both ------------------------------------------------------------------------

  private begin(role: "send" | "receive", start: (onEvent: (e: FerryEvent) => void) => Promise<TransferId>, retry: () => void, isText = false): void {
    const gen = ++this.generation;
    const running: Running = { state: initialState(role, isText), retry };
    this.transfer = running;
    this.screen = "transfer";
    this.render(true);
    start((e) => {
      if (gen === this.generation) this.onEvent(running, e);
    })
      .then((id) => {
        running.id = id;
      })
      .catch((err) => {
        if (gen === this.generation) this.onEvent(running, { event: "error", code: errorCode(err), message: errorMessage(err) });
      });
  }

  onEvent(t: Running, e: FerryEvent): void {
    const before = t.state.phase;
    t.state = reduce(t.state, e);
    if (e.event === "room-created" && e.link) {
      this.engine
        // A phone's camera opens the browser link where the server serves the page.
        .qrSvg(this.engine.browserLink(e.link) ?? e.link)
        .then((svg) => {
          t.qrSvg = svg;
          if (this.transfer === t) this.render();
        })
        .catch(() => undefined);
    }
    if (this.transfer !== t) return;
    if (t.state.phase !== before) announce(statusText(t.state));
    if ((e.event === "wrong-password-attempt" || e.event === "attempt-failed") && t.state.notice) announce(t.state.notice);
    if (e.event === "room-extended") announce(`Room extended: ${formatCountdown(e.expires_at, Date.now())} left`);
    if (this.screen === "transfer") this.render();
  }

  private async control(what: "pause" | "resume" | "cancel"): Promise<void> {
    const t = this.transfer;
    if (!t) return;
    if (t.id == null) {
      this.back();
      return;
    }
    try {
      await this.engine[what](t.id);
      if (what === "cancel") {
        this.generation++;
        this.transfer = null;
        this.go(t.state.role);
        announce("Cancelled");
      }
    } catch (e) {
      announce(`Could not ${what}: ${e}`);
    }
  }

  back(): void {
    const role = this.transfer?.state.role ?? "send";
    if (this.transfer && isActive(this.transfer.state) && this.transfer.id != null) void this.engine.cancel(this.transfer.id).catch(() => undefined);
    this.generation++;
    this.transfer = null;
    this.go(role);
  }

  private async copy(text: string, what: string): Promise<void> {
    announce((await copyText(text)) ? `${what} copied` : `Could not copy the ${what.toLowerCase()}`);
  }

  // ---- history & settings ----------------------------------------------------------

  async loadHistory(): Promise<void> {
    try {
      this.history = await this.engine.history();
      this.historyError = null;
    } catch (e) {
      this.historyError = `Could not read the history: ${errorMessage(e)}`;
    }
    if (this.screen === "history") this.render();
  }

  resumeFromHistory(e: HistoryEntry): void {
    if (e.direction === "receive") {
      // The sender opens a new room for the same transfer; joining it into the same folder
      // picks up the verified parts.
      if (e.out_dir) this.receiveDest = e.out_dir;
      this.receivePrefill = { note: `To finish "${e.name}", ask the sender to send it again and join their room here. Parts already received are kept.` };
      this.go("receive");
      return;
    }
    const run = () => {
      this.begin("send", (onEvent) => this.engine.historyResume(e.transfer_id, onEvent), run);
    };
    run();
  }

  async saveSettings(s: Settings): Promise<void> {
    try {
      await this.engine.settingsSet(s);
      if (this.settings?.download_dir !== s.download_dir) this.receiveDest = s.download_dir;
      this.settings = s;
      this.settingsSaved = "Saved";
      this.applyTheme();
      this.signalUrl = await this.engine.signalUrl().catch(() => this.signalUrl);
    } catch (e) {
      this.settingsSaved = `Not saved: ${errorMessage(e)}`;
    }
    this.render();
  }

  async chooseDownloadDir(): Promise<void> {
    const dir = await this.engine.pickFolder().catch(() => null);
    if (dir && this.settings) {
      this.settings = { ...this.settings, download_dir: dir };
      this.settingsSaved = "";
      this.render();
    }
  }

  // ---- drag and drop ---------------------------------------------------------------

  setDragging(on: boolean): void {
    if (this.dragging === on) return;
    this.dragging = on;
    const overlay = document.getElementById("drop-overlay");
    if (overlay) overlay.hidden = !on;
  }

  onDrop(what: Picked): void {
    this.setDragging(false);
    const n = what.kind === "paths" ? what.paths.length : what.files.length;
    if (n) this.startSend(what);
  }
}
