// The page's part in streamed downloads (sink-stream.ts, sw.ts): register the Service Worker,
// hand it each file's port, open the download in a hidden frame, and keep the Service Worker
// awake while downloads run (browsers stop an idle one after about 30 s, mid-file).
// Only types from download-stream.ts: a value imported here would make Vite share that module
// between the page and sw.js, which must stay one classic script.
import type { ToServiceWorker } from "./download-stream";
import type { DownloadRequest } from "./sink-stream";

/** The address sw.ts answers for download `id` (its DOWNLOAD_PREFIX). */
export function downloadUrl(id: string, name: string): string {
  return `/ferry-dl/${id}/${encodeURIComponent(name)}`;
}

/** Longest wait for the Service Worker to install and start (it is small; this is generous). */
const READY_MS = 5_000;
/** How often the page pings the Service Worker while downloads run (it holds 20 s per ping). */
const PING_MS = 5_000;

/** The active Service Worker for streamed downloads, or null where there is none (no Service
 * Worker support, a private window that refuses it, a plain-http page, or it failed to start). */
export async function registerDownloads(): Promise<ServiceWorker | null> {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return null;
  try {
    // Scoped to the download addresses only: it answers the frames' requests there and
    // controls no page, so the app's own requests never pass through it.
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/ferry-dl/" });
    return reg.active ?? (await activated(reg.installing ?? reg.waiting));
  } catch (e) {
    console.warn("ferry: no Service Worker for streamed downloads:", e);
    return null;
  }
}

/** `w` once it is activated, or null if it fails or takes longer than READY_MS. */
function activated(w: ServiceWorker | null): Promise<ServiceWorker | null> {
  return new Promise((resolve) => {
    if (!w) return resolve(null);
    const t = setTimeout(() => resolve(null), READY_MS);
    const check = () => {
      if (w.state === "activated" || w.state === "redundant") {
        clearTimeout(t);
        resolve(w.state === "activated" ? w : null);
      }
    };
    w.addEventListener("statechange", check);
    check();
  });
}

/** Starts downloads through `sw` and keeps it awake until `stop()`. */
export class Downloads {
  private timer: ReturnType<typeof setInterval> | null = null;
  private frames: HTMLIFrameElement[] = [];

  constructor(private readonly sw: ServiceWorker) {}

  /** Hand `req.port` to the Service Worker, then open its download in a hidden frame (one per
   * file, so several files download side by side without cancelling each other). */
  async start(req: DownloadRequest): Promise<void> {
    this.keepAlive();
    const reply = new MessageChannel();
    const ready = new Promise<void>((resolve) => {
      reply.port1.onmessage = () => resolve();
    });
    const m: ToServiceWorker = { t: "stream", id: req.id, name: req.name, size: req.size, port: req.port, reply: reply.port2 };
    this.sw.postMessage(m, [req.port, reply.port2]);
    // If it never answers, the Worker's write times out and says so (sink-stream.ts).
    await ready;
    reply.port1.close();
    const frame = document.createElement("iframe");
    frame.hidden = true;
    frame.src = downloadUrl(req.id, req.name);
    document.body.append(frame);
    this.frames.push(frame);
  }

  private keepAlive(): void {
    if (this.timer !== null) return;
    const ping = () => this.sw.postMessage({ t: "ping" } satisfies ToServiceWorker);
    ping();
    this.timer = setInterval(ping, PING_MS);
  }

  /** The transfer ended: stop pinging. The frames go after a while (removing a frame early
   * could cancel a download the browser is still finishing). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const frames = this.frames.splice(0);
    setTimeout(() => frames.forEach((f) => f.remove()), 60_000);
  }
}
