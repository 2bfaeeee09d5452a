// One browser send, without a screen: the page (as the room's host, host.ts) opens a room,
// waits for the receiver, sends in a Worker (send-port.ts) and reports it all as the engine's
// `FerryEvent`s, in the order the native sender (ferry-core api/mod.rs `send`) emits them, so
// the shared controller and views (app.ts, state.ts) show a browser send as they show a
// native one. The room outlives a dropped link: the next guest to prove the password resumes
// from what the receiver already holds.
import type { TransferReport } from "../engine";
import type { FerryEvent } from "../ipc";
import { displayRoom } from "../link";
import type { FileEntry } from "./frames";
import { type HostEvent, HostRoom } from "./host";
import { linkPath } from "./link-path";
import { manifestOpening } from "./manifest";
import { ProgressMeter } from "./progress-meter";
import type { SendEvent, SendStats } from "./send";
import { sendInWorker } from "./send-port";
import type { DcLink } from "./session";
import { asWebError, WebError } from "./signal";

/** How long a dropped receiver may take to come back (defaults.rs RECONNECT_FOR). */
export const RECONNECT_FOR = 120_000;
/** Ends that a new attempt cannot mend. */
export const FINAL = new Set(["cancelled", "declined", "integrity", "too-large", "disk-full", "permission-denied", "unsupported", "room-locked", "room-expired"]);

export interface SendRunOptions {
  /** The signaling server, as the page was given it. */
  server: string;
  files: File[];
  /** The sender's own password, or null (or empty) for a generated one. */
  password: string | null;
  /** Room lifetime in seconds, or null for the server's default. The server clamps it;
   * `room-created` carries the `expires_at` it granted and `capped` when that is less. */
  ttlSecs: number | null;
  onEvent: (e: FerryEvent) => void;
  /** Tests only: a rate cap in bytes/s, so a transfer is slow enough to interrupt; 0 = none. */
  rateBps?: number;
  /** The link that opens the room in a browser (join-url.ts's `pageJoinLink` over the page's
   * location); `SendRun.browserLink` returns it once the room exists. */
  webLink?: (room: string, password: string) => string;
  /** STUN/TURN and other settings for the connection (host.ts adds the server's ICE servers). */
  rtc?: RTCConfiguration;
}

export interface SendRun {
  /** Resolves when the run is over (done, error, cancelled); never rejects. */
  readonly ended: Promise<void>;
  pause(): void;
  resume(): void;
  /** While waiting: close the room. While sending: cancel, telling the receiver. */
  cancel(): void;
  /** A new room lifetime of `ttlSecs` from now (`extend-room`); reports `room-extended`.
   * Rejects (a `WebError`) when there is no open room or the server refuses. */
  extendRoom(ttlSecs: number): Promise<void>;
  /** After `done`: the figures the done card carries, and which files were not sent. */
  report(): TransferReport | null;
  /** The browser link for the room (`SendRunOptions.webLink`); null before the room exists. */
  browserLink(): string | null;
}

/** The manifest for the picked files: folder-relative paths where a folder was picked,
 * duplicates renamed as the native receiver would land them ("name (1).ext"). */
export function entriesFor(files: { name: string; size: number; lastModified: number; webkitRelativePath?: string }[]): FileEntry[] {
  const seen = new Set<string>();
  return files.map((f) => {
    let path = (f.webkitRelativePath || f.name).replace(/\\/g, "/").replace(/^\/+/, "");
    if (seen.has(path)) {
      const dot = path.lastIndexOf(".");
      const [stem, ext] = dot > path.lastIndexOf("/") + 1 ? [path.slice(0, dot), path.slice(dot)] : [path, ""];
      let n = 1;
      while (seen.has(`${stem} (${n})${ext}`)) n += 1;
      path = `${stem} (${n})${ext}`;
    }
    seen.add(path);
    return { path, size: f.size, mtime_ms: Math.trunc(f.lastModified) };
  });
}

/** Whether an attempt that ended with `code` ends the send, rather than waiting for the
 * receiver to come back. */
export function isFinal(code: string): boolean {
  return FINAL.has(code) || code === "protocol" || code === "source-changed";
}

/** `p`, unless `at` (ms since the epoch) passes first: then `peer-left`. */
export function withDeadline<T>(p: Promise<T>, at: number): Promise<T> {
  if (!Number.isFinite(at)) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new WebError("peer-left", "the receiver did not come back")), Math.max(at - Date.now(), 0));
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The room's events as the engine reports them. `linkLive`: a link is carrying the
 * transfer, and the one `accept` that keeps running meanwhile (for a receiver that comes
 * back) must not move the screen back to "connecting" for a guest that may never connect;
 * wrong passwords and failed attempts are still said. `connected` is the run's to report,
 * with the link's path. */
export function hostEventToFerry(e: HostEvent, linkLive: boolean): FerryEvent | null {
  switch (e.type) {
    case "wrong-password":
      return { event: "wrong-password-attempt", attempts_left: e.attemptsLeft };
    case "attempt-failed":
      return { event: "attempt-failed", code: e.code, message: e.message };
    case "peer-joined":
      return linkLive ? null : { event: "peer-joined" };
    case "connecting":
      return linkLive ? null : { event: "connecting" };
    // The guest left before the devices connected: back to waiting (events.rs `from_session`).
    case "peer-left":
      return linkLive ? null : { event: "waiting" };
    case "connected":
      return null;
  }
}

/** One attempt's events, from the Worker's `SendEvent`s: where it resumed, and progress with
 * the rate over this attempt since the receiver's accept and the time left at that rate
 * (transfer/machine/progress.rs). `SendEvent` progress is already overall (bytes acknowledged
 * over the whole transfer, counting what a resume started from). */
export class AttemptMeter {
  private meter: ProgressMeter | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  map(e: SendEvent): FerryEvent[] {
    switch (e.type) {
      case "accepted":
        this.meter = new ProgressMeter(this.now(), e.resumed, e.total);
        return e.resumed > 0 ? [{ event: "resuming", bytes_done: e.resumed, total: e.total }] : [];
      case "progress":
        // send.ts already sends at most ten a second: every one is passed on.
        return [this.meter?.event(this.now(), e.file, e.bytes_done, true) ?? { event: "progress", file: e.file, bytes_done: e.bytes_done, total: e.total, rate_bps: 0, eta_secs: null }];
      case "chunk-rejected":
        return [{ event: "chunk-rejected", file: e.file, offset: e.offset }];
      case "file-done":
        return [{ event: "file-done", path: e.path, hash: e.hash }];
      case "file-failed":
        return [{ event: "file-failed", path: e.path, code: e.code, message: e.message }];
      case "paused":
        return [{ event: "paused" }];
      case "resumed":
        return [{ event: "resumed" }];
    }
  }

  /** Seconds since the receiver's accept (0 before it). */
  secs(): number {
    return this.meter?.secs(this.now()) ?? 0;
  }
}

/** The `done` event of a finished send: `link_bytes` is the chunk payload that crossed the
 * link in the last attempt, after compression, as the native sender counts it. */
export function doneEvent(stats: SendStats, transferId: string, secs: number): FerryEvent {
  return { event: "done", bytes: stats.bytes, secs, transfer_id: transferId, link_bytes: stats.linkBytes };
}

/** The figures send-page put on its done card (`#done`'s data attributes), and the files
 * that were not sent. */
export function buildReport(stats: SendStats, transferId: string, attempts: number): TransferReport {
  const report: TransferReport = {
    data: {
      bytes: stats.bytes,
      files: stats.files,
      resumed: stats.resumed,
      sent: stats.sent,
      compressed: stats.compressed,
      failed: stats.failed.length,
      attempts,
      transfer: transferId,
    },
  };
  if (stats.failed.length) report.note = `Not sent: ${stats.failed.map((f) => f.path).join(", ")}`;
  return report;
}

export function startSend(o: SendRunOptions): SendRun {
  let room: HostRoom | null = null;
  /** A link is carrying the transfer (an attempt runs in the Worker). */
  let sending = false;
  let stopped = false;
  let paused = false;
  let setPaused: ((p: boolean) => void) | null = null;
  let report: TransferReport | null = null;
  let browser: string | null = null;
  let cancelNow: () => void = () => {};
  const cancelled = new Promise<void>((resolve) => (cancelNow = resolve));

  const emit = (e: FerryEvent) => {
    try {
      o.onEvent(e);
    } catch (err) {
      console.error("ferry: event handler failed", err);
    }
  };
  /** The user's cancel wins over whatever the closed room or link made of it. */
  const ending = (e: unknown): WebError => {
    const err = asWebError(e);
    return stopped && err.code !== "cancelled" ? new WebError("cancelled", "cancelled by the user") : err;
  };
  const fail = (e: unknown) => {
    const err = ending(e);
    console.error("ferry:", err.code, err.message);
    emit({ event: "error", code: err.code, message: err.message });
  };

  let current: DcLink | null = null;
  // Closing the tab ends the connection cleanly (DTLS close_notify), so the receiver hears
  // it at once rather than after ICE timeouts.
  const onHide = () => {
    current?.pc.close();
    room?.close();
  };

  async function run(): Promise<void> {
    const files = o.files;
    const entries = entriesFor(files);
    let r: HostRoom;
    try {
      r = await HostRoom.create({ server: o.server, password: o.password || undefined, rtc: o.rtc, ttlSecs: o.ttlSecs });
    } catch (e) {
      return fail(e);
    }
    room = r;
    if (stopped) {
      r.close();
      return fail(new WebError("cancelled", "you closed the room"));
    }
    addEventListener("pagehide", onHide);
    browser = o.webLink ? o.webLink(r.room, r.password) : null;
    emit({ event: "room-created", room: r.room, password: r.password, link: r.link, expires_at: r.expiresAt, server: o.server, capped: r.capped });
    emit({ event: "waiting" });

    const onHostEvent = (e: HostEvent) => {
      const f = hostEventToFerry(e, sending);
      if (f) emit(f);
    };
    // The manifest rides behind our hello on links on the agreed stream; without the hashing
    // module (which the Worker would then fail to load too) it follows the receiver's hello.
    // Imported here, not at the top: the module names the built wasm files as assets, and the
    // engine's unit tests run without a wasm build.
    const wasm = await import("./wasm-load").then((m) => m.loadFerryWasm()).catch(() => null);
    const opening = wasm ? manifestOpening(displayRoom(r.room), entries, (d) => wasm.blake3(d)) : [];
    let giveUpAt = Infinity;
    let attempts = 0;
    // Exactly one `accept` runs at any time, also while sending (see HostRoom.accept).
    let next = r.accept(onHostEvent, opening);
    for (;;) {
      let connected;
      try {
        connected = await withDeadline(next, giveUpAt);
      } catch (e) {
        r.close();
        return fail(e);
      }
      attempts += 1;
      const { link, verification, opened } = connected;
      sending = true;
      current = link;
      next = r.accept(onHostEvent, opening);
      // A receiver that proved the password again replaces this link (whose peer, if it is
      // the same receiver, vanished without closing it); it resumes where this one stopped.
      void next.then(
        () => link.close(0),
        () => undefined,
      );
      const path = await linkPath(link.pc);
      emit({ event: "connected", ...path });
      emit({ event: "verification", words: verification });
      const meter = new AttemptMeter();
      const worker = new Worker(new URL("./send-worker.ts", import.meta.url), { type: "module" });
      try {
        const res = await sendInWorker(worker, link, {
          room: r.room,
          files,
          entries,
          manifestSent: opened,
          caps: link.caps,
          rateBps: o.rateBps ?? 0,
          cancelled,
          pauseWith: (set) => {
            setPaused = set;
            // Paused before this attempt (or the last one dropped while paused): stay paused.
            if (paused) set(true);
          },
          onEvent: (e) => {
            for (const f of meter.map(e)) emit(f);
          },
        });
        r.close();
        // A guest that connected just as this one finished gets nothing.
        void next.then(
          (c) => c.link.close(0),
          () => undefined,
        );
        report = buildReport(res.stats, res.transferId, attempts);
        emit(doneEvent(res.stats, res.transferId, meter.secs()));
        return;
      } catch (e) {
        sending = false;
        setPaused = null;
        current = null;
        const err = asWebError(e);
        if (stopped || isFinal(err.code)) {
          r.close();
          return fail(err);
        }
        // The link dropped: keep the room for the receiver to come back and resume.
        giveUpAt = Date.now() + RECONNECT_FOR;
        emit({ event: "reconnecting" });
      }
    }
  }

  const ended = run()
    .catch((e) => fail(e))
    .finally(() => {
      sending = false;
      removeEventListener("pagehide", onHide);
    })
    .catch(() => undefined);

  return {
    ended,
    pause() {
      paused = true;
      setPaused?.(true);
    },
    resume() {
      paused = false;
      setPaused?.(false);
    },
    cancel() {
      if (stopped) return;
      stopped = true;
      cancelNow();
      // While sending, the Worker tells the receiver and the attempt ends `cancelled`; the
      // room closes then. Otherwise nothing is under way but the wait: end it.
      if (!sending) room?.close();
    },
    async extendRoom(ttlSecs: number) {
      if (!room || stopped) throw new WebError("room-expired", "the room is not open");
      const expiresAt = await room.extend(ttlSecs);
      emit({ event: "room-extended", expires_at: expiresAt });
    },
    report: () => report,
    browserLink: () => browser,
  };
}
