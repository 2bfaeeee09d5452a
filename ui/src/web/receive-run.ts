// One browser receive, from joining the room to the last verified byte, with no DOM: joining
// (session.ts, on this page's main thread where RTCPeerConnection lives), the transfer in a
// Worker (receive-worker.ts through link-port.ts), and the offer decision the person makes.
// It reports as the native receiver does (crates/ferry-core/src/api/receive.rs): `FerryEvent`s
// in the same order, so the app's state fold (state.ts) and screens serve both engines.
import type { EngineError, OfferStorage, SavedFile, TransferReport } from "../engine";
import { formatBytes } from "../format";
import type { FerryEvent } from "../ipc";
import { encodeFrames } from "./frames";
import { linkPath } from "./link-path";
import { ProgressMeter } from "./progress-meter";
import { receiveInWorker, type ReceivedFile, type Storage } from "./link-port";
import { CANCEL_REASON, type Offer, type ReceiveEvent, type ReceiveStats } from "./receive";
import { type DcLink, join, WebError } from "./session";
import { type FolderTarget, folderPickerAvailable, pickFolder, planFolder, writePermission } from "./sink-folder";
import { Downloads, registerDownloads } from "./stream-page";

/** What the in-memory sink (where the browser has no origin-private file system) may hold:
 * the page then keeps every received byte until it is saved. */
export const MAX_IN_MEMORY = 256 * 1024 * 1024;
/** Added to an error's message once streamed downloads had started: they cannot resume. */
export const STOPPED_DOWNLOADS =
  " The downloads that were running stopped; a download cannot resume, so those files start over on the next try.";
const PICKER_ABORTED = "No folder was picked. Pick one to save into, Accept to keep the files in this browser, or Decline.";
/** How long a cancelled Worker has to tell the sender and end before the page closes the link. */
const CANCEL_GRACE_MS = 3_000;

/** The folder the last offer went into: an attempt of the same transfer after a dropped link
 * continues there, each file from what it holds (sink-folder.ts). Lives as long as the page. */
let lastFolder: FolderTarget | null = null;

export interface ReceiveRunOptions {
  /** ws URL or "" (session.ts `join`). */
  server: string;
  /** Normalized room id. */
  room: string;
  password: string;
  onEvent: (e: FerryEvent) => void;
  /** "auto": receive-worker.ts picks; "memory" / "stream" force a sink (tests, `?sink=`). */
  sink?: "auto" | "memory" | "stream";
  /** Tests: the transfer's Worker (default: receive-worker.ts). */
  worker?: () => Worker;
  /** Tests: joining the room (default: session.ts `join`). */
  join?: typeof join;
  /** Tests: the Service Worker for streamed downloads (default: stream-page.ts `registerDownloads`). */
  registerDownloads?: () => Promise<ServiceWorker | null>;
  /** Tests: the clock, in milliseconds. */
  now?: () => number;
}

export interface ReceiveRun {
  /** Resolves when the run ended (done, error or cancelled); never rejects. */
  readonly ended: Promise<void>;
  /** Take the pending offer with the offered storage. */
  accept(): Promise<void>;
  /** Pick a folder (call it synchronously inside the click: the picker needs its user
   * activation) and take the offer into it. Rejects with `{code, message}` (`picker-aborted`
   * when the person closed the picker) and leaves the offer pending. */
  acceptIntoFolder(): Promise<void>;
  /** At the offer: decline; later: cancel the transfer. Ends the run with `cancelled`. */
  cancel(): void;
  /** Where the pending offer would go; null when no offer is waiting. */
  storage(): OfferStorage | null;
  /** After `done`: the files to save, where they went, and the done card's figures. */
  report(): TransferReport | null;
  /** Let go of the report's object URLs (the files they point at may be large, in memory). */
  dispose(): void;
}

// ---- pure parts ---------------------------------------------------------------------------

/** Where Accept puts the files, said before accepting. */
export function storageText(storage: Storage): string {
  if (storage.kind === "stream") {
    return "Each file is saved to your downloads as it arrives. A download that stops cannot resume: if the connection drops, the unfinished files start over.";
  }
  if (storage.kind === "disk") return "Accept keeps the files in this browser's storage, then offers each one to save.";
  return `Accept keeps the files in this page's memory (at most ${formatBytes(storage.capacity)}), then offers each one to save.`;
}

/** Why Accept is off when the offer does not fit `storage`. */
export function tooLargeText(storage: Storage): string {
  return storage.kind === "memory"
    ? `This browser page can hold at most ${formatBytes(storage.capacity)}; this browser cannot save larger transfers to disk.`
    : `This browser's storage has room for ${formatBytes(storage.capacity)} only. Free some disk space, or receive with the Ferry app.`;
}

/** The offer card's storage line. `again`: the folder an earlier attempt of this transfer went
 * into (offered to continue into, even where the picker itself is missing). */
export function offerStorage(total: number, storage: Storage, again: FolderTarget | null, pickerAvailable: boolean): OfferStorage {
  const fits = total <= storage.capacity;
  const s: OfferStorage = { kind: storage.kind, text: storageText(storage), fits };
  if (!fits) s.tooLarge = tooLargeText(storage);
  if (again) s.folder = `Continue into “${again.dir.name}”`;
  else if (pickerAvailable) s.folder = "Save into a folder…";
  return s;
}

/** Turns the Worker's events into `FerryEvent`s (receive.ts's numbers are already overall:
 * `bytes_done` over the whole offer, `total` the offer's total). */
export class ReceiveEvents {
  private offer: Offer | null = null;
  private meter: ProgressMeter | null = null;

  constructor(
    private readonly emit: (e: FerryEvent) => void,
    private readonly now: () => number,
  ) {}

  /** The offer, once where it would go is known (the card asks for it on this event). */
  offered(offer: Offer): void {
    this.offer = offer;
    this.emit({
      event: "offer",
      transfer_id: offer.transferId,
      files: offer.files.map((f) => (f.dir ? { path: f.path, size: f.size, dir: true } : { path: f.path, size: f.size })),
      total: offer.total,
    });
  }

  /** The person accepted: this attempt's rate and seconds count from now. */
  accepted(): void {
    this.meter = new ProgressMeter(this.now(), 0, this.offer?.total ?? 0);
  }

  worker(e: ReceiveEvent): void {
    switch (e.type) {
      // The offer goes out with its storage (`offered`); `done` once the report is ready.
      case "offer":
      case "done":
        return;
      // Before the accept, with the exact bytes held (none held: no event, the base stays 0).
      case "resuming":
        this.meterFor(e.total).base = e.bytes_done;
        this.emit({ event: "resuming", bytes_done: e.bytes_done, total: e.total });
        return;
      case "progress": {
        const meter = this.meterFor(e.total);
        const p = meter.event(this.now(), e.file, e.bytes_done, e.bytes_done >= meter.total);
        if (p) this.emit(p);
        return;
      }
      case "chunk-rejected":
        this.emit({ event: "chunk-rejected", file: e.file, offset: e.offset });
        return;
      case "file-done":
        this.emit({ event: "file-done", path: e.path, hash: e.hash });
        return;
      case "file-failed":
        this.emit({ event: "file-failed", path: e.path, code: e.code, message: e.message });
        return;
      case "text":
        this.emit({ event: "text", transfer_id: e.transfer_id, text: e.text });
        return;
    }
  }

  /** The files' end: the native receiver reports the offer's total and the accept-to-end seconds. */
  done(): FerryEvent {
    const now = this.now();
    return { event: "done", bytes: this.offer?.total ?? 0, secs: this.meter?.secs(now) ?? 0, transfer_id: this.offer?.transferId };
  }

  /** A text snippet's end (nothing moved after an accept: no seconds). */
  textDone(text: string): FerryEvent {
    return { event: "done", bytes: new TextEncoder().encode(text).length, secs: 0 };
  }

  private meterFor(total: number): ProgressMeter {
    this.meter ??= new ProgressMeter(this.now(), 0, this.offer?.total ?? total);
    return this.meter;
  }
}

/** The done card's contents, as the join page showed them (`#done` and its `data-*`). */
export function buildReport(
  files: ReceivedFile[],
  stats: ReceiveStats,
  storedOn: string,
  folderName: string | null,
  makeUrl: (b: Blob) => string = (b) => URL.createObjectURL(b),
): TransferReport {
  const saved: SavedFile[] = files.map((f) => (f.blob ? { path: f.path, size: f.blob.size, url: makeUrl(f.blob) } : { path: f.path, size: f.size ?? 0 }));
  const note =
    storedOn === "folder" && folderName !== null
      ? `Saved in the folder “${folderName}”.`
      : storedOn === "stream"
        ? "Saved to your downloads as they arrived."
        : undefined;
  return {
    files: saved,
    ...(note ? { note } : {}),
    data: { storage: storedOn, resumed: stats.resumed, compressed: stats.compressed, rejected: stats.rejected },
  };
}

/** `{code, message}` of anything a run or the Worker threw (errors.ts codes; unknown: `io`). */
export function asEngineError(e: unknown): EngineError {
  if (e instanceof WebError) return { code: e.code, message: e.message };
  if (e && typeof e === "object" && "code" in e && "message" in e) return { code: String(e.code), message: String(e.message) };
  return { code: "io", message: e instanceof Error ? e.message : String(e) };
}

/** The run's failure as an `error` event; `streamed`: downloads had started and stopped with it. */
export function errorEvent(e: unknown, streamed: boolean): FerryEvent {
  const err = asEngineError(e);
  return { event: "error", code: err.code, message: err.message + (streamed ? STOPPED_DOWNLOADS : "") };
}

/** Why choosing a folder failed; the offer stays for another choice. */
export function folderError(e: unknown): EngineError {
  if (e instanceof DOMException && e.name === "AbortError") return { code: "picker-aborted", message: PICKER_ABORTED };
  return asEngineError(e);
}

// ---- the run ------------------------------------------------------------------------------

interface Pending {
  offer: Offer;
  storage: Storage;
  again: FolderTarget | null;
  view: OfferStorage;
  decide: (d: boolean | FolderTarget) => void;
}

const cancelledError = (): WebError => new WebError("cancelled", "you cancelled the transfer");

/** Tell the sender the person cancelled (it then ends as cancelled rather than waiting for the
 * link to come back), bounded: a full channel must not hold the cancel up. */
async function sendCancel(link: DcLink): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const frames = encodeFrames({ type: "cancel", reason: CANCEL_REASON }, link.maxMessageSize);
  const sent = (async () => {
    for (const f of frames) await link.send(f);
  })().catch(() => undefined);
  await Promise.race([sent, new Promise<void>((r) => (timer = setTimeout(r, 1_000)))]);
  clearTimeout(timer);
}

export function startReceive(o: ReceiveRunOptions): ReceiveRun {
  const now = o.now ?? (() => performance.now());
  let over = false;
  const emit = (e: FerryEvent) => {
    if (over) return;
    if (e.event === "done" || e.event === "error") over = true;
    try {
      o.onEvent(e);
    } catch (err) {
      console.error("ferry: event handler failed:", err);
    }
  };
  const events = new ReceiveEvents(emit, now);
  let pending: Pending | null = null;
  let link: DcLink | null = null;
  let worker: Worker | null = null;
  let cancelled = false;
  let cancelWorker: () => void = () => undefined;
  const workerCancelled = new Promise<void>((resolve) => (cancelWorker = resolve));
  let storedOn = "";
  let folderName: string | null = null;
  let report: TransferReport | null = null;
  let urls: string[] = [];

  const settle = (p: Pending, d: true | FolderTarget) => {
    pending = null;
    storedOn = d === true ? p.storage.kind : "folder";
    if (d !== true) {
      lastFolder = d;
      folderName = d.dir.name;
    }
    events.accepted();
    p.decide(d);
  };

  /** After cancelling past the offer. Before the Worker runs, the page tells the sender and
   * closes; then the Worker does (receive.ts: the sender hears `cancel`, what it wrote is
   * dropped, a cancelled transfer does not resume). */
  const stopTransfer = async (l: DcLink) => {
    if (!worker) {
      await sendCancel(l);
      return l.close(500);
    }
    cancelWorker();
    // A Worker stuck past that (in a write that does not return) still must not keep the
    // sender waiting: the page tells it and closes the link, which ends the Worker's reads.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = await Promise.race([ended.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CANCEL_GRACE_MS)))]);
    clearTimeout(timer);
    if (stuck) await sendCancel(l);
    await l.close(0);
  };

  const ended = (async () => {
    const sw = o.sink === "memory" ? Promise.resolve(null) : (o.registerDownloads ?? registerDownloads)();
    // The Worker starts now, so its script and the hashing module load while the room is
    // joined and the link comes up (on a long path that saves about half a second). A load
    // error before the transfer takes the Worker over is kept and reported then.
    let spare: Worker | null = o.worker ? o.worker() : new Worker(new URL("./receive-worker.ts", import.meta.url), { type: "module" });
    let spareError: string | null = null;
    spare.onerror = (ev) => {
      spareError = ev.message || "it did not start";
    };
    let downloads: Downloads | null = null;
    let streamed = false;
    let onHide: (() => void) | null = null;
    try {
      const joined = await (o.join ?? join)({
        server: o.server,
        room: o.room,
        password: o.password,
        onEvent: (e) => {
          if (e.type === "connecting") emit({ event: "connecting" });
        },
      });
      joined.sig.close();
      const l = joined.link;
      link = l;
      // Closing the tab should end the connection cleanly (DTLS close_notify), so the sender
      // notices at once and keeps the room for another try instead of waiting out ICE timeouts.
      onHide = () => l.pc.close();
      addEventListener("pagehide", onHide);
      const path = await linkPath(l.pc);
      emit({ event: "connected", ...path });
      emit({ event: "verification", words: joined.verification });
      const active = await sw;
      // Cancelled while joining or setting up: the sender hears it and the link closes.
      if (cancelled) {
        await stopTransfer(l);
        throw cancelledError();
      }
      downloads = active ? new Downloads(active) : null;
      if (spareError) throw new WebError("io", `receiver worker failed: ${spareError}`);
      worker = spare;
      spare = null;
      const result = await receiveInWorker(worker, l, {
        maxBytes: MAX_IN_MEMORY,
        sink: o.sink ?? "auto",
        onDownload: downloads
          ? (req) => {
              streamed = true;
              void downloads?.start(req);
            }
          : undefined,
        decide: (offer, storage) =>
          new Promise((resolve) => {
            if (cancelled) return resolve(false);
            const again = lastFolder?.transferId === offer.transferId ? lastFolder : null;
            const view = offerStorage(offer.total, storage, again, folderPickerAvailable());
            pending = { offer, storage, again, view, decide: resolve };
            events.offered(offer);
          }),
        onEvent: (e) => events.worker(e),
        cancelled: workerCancelled,
      });
      if ("text" in result) {
        emit(events.textDone(result.text));
        return;
      }
      const r = buildReport(result.files, result.stats, storedOn, folderName);
      urls = (r.files ?? []).flatMap((f) => (f.url ? [f.url] : []));
      report = r;
      emit(events.done());
    } catch (e) {
      const err = asEngineError(e);
      if (!cancelled) console.error("ferry:", err.code, err.message);
      emit(errorEvent(e, streamed));
    } finally {
      spare?.terminate();
      downloads?.stop();
      if (onHide) removeEventListener("pagehide", onHide);
    }
  })();

  return {
    ended,
    accept() {
      const p = pending;
      if (!p) return Promise.reject<void>({ code: "no-offer", message: "no offer is waiting" } satisfies EngineError);
      if (!p.view.fits) return Promise.reject<void>({ code: "too-large", message: p.view.tooLarge ?? "the files do not fit" } satisfies EngineError);
      settle(p, true);
      return Promise.resolve();
    },
    async acceptIntoFolder() {
      const p = pending;
      if (!p) throw { code: "no-offer", message: "no offer is waiting" } satisfies EngineError;
      try {
        // The picker (or the permission prompt) opens before anything is awaited: it needs
        // the click's user activation.
        const dir = p.again ? p.again.dir : await pickFolder();
        if (p.again) await writePermission(dir);
        const target = await planFolder(dir, p.offer, p.again);
        if (pending !== p) throw { code: "no-offer", message: "the offer is no longer waiting" } satisfies EngineError;
        settle(p, target);
      } catch (e) {
        throw folderError(e);
      }
    },
    cancel() {
      if (over || cancelled) return;
      cancelled = true;
      const p = pending;
      pending = null;
      if (p) {
        // The Worker declines to the sender and ends.
        p.decide(false);
        emit({ event: "error", code: "cancelled", message: "you declined the files" });
        return;
      }
      emit({ event: "error", code: "cancelled", message: cancelledError().message });
      // Before the link is up the run stops itself once joining returns.
      if (link && worker) void stopTransfer(link);
    },
    storage: () => pending?.view ?? null,
    report: () => report,
    dispose() {
      for (const u of urls.splice(0)) URL.revokeObjectURL(u);
    },
  };
}
