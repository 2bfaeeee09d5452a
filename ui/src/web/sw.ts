// The browser peer's Service Worker (served at /sw.js, scope /ferry-dl/): it turns a file the
// receive Worker is still receiving into an ordinary browser download, for browsers whose
// private storage (OPFS) is missing or too small. It controls no page. The page hands it one MessagePort per file
// (download-stream.ts), then opens /ferry-dl/<id>/<name> in a hidden frame; this worker answers
// that request with `Content-Disposition: attachment` and a body streamed from the port, so
// the bytes go to the download folder as they are verified and never pile up in memory.
//
// Browsers stop an idle Service Worker after about 30 s even while a response it gave is still
// streaming; the page pings it every few seconds while a download runs, and each ping holds it
// awake a little longer than the gap to the next. A Service Worker that restarted knows no
// streams: the download fails, and the Worker hears nothing more and gives up (sink-stream.ts).
import { contentDisposition, type DownloadStream, downloadId, downloadStream, type ToServiceWorker } from "./download-stream";

// The DOM typings have no ServiceWorkerGlobalScope; these are the parts used here.
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  request: Request;
  respondWith(r: Response | Promise<Response>): void;
}
interface ExtendableMessageEvent extends ExtendableEvent {
  data: ToServiceWorker;
}
const sw = self as unknown as {
  addEventListener(t: "install", f: (e: ExtendableEvent) => void): void;
  addEventListener(t: "fetch", f: (e: FetchEvent) => void): void;
  addEventListener(t: "message", f: (e: ExtendableMessageEvent) => void): void;
  skipWaiting(): Promise<void>;
};

/** How long one ping keeps this worker awake: longer than the page's ping interval (5 s). */
const HOLD_MS = 20_000;
/** A stream whose Worker (and page) has said nothing for this long is presumed gone: a paused
 * sender still leaves the page pinging, so only a closed page goes quiet this long. */
const SILENT_MS = 60_000;
/** A stream registered but never fetched is dropped after this. */
const UNCLAIMED_MS = 60_000;

interface Entry {
  name: string;
  size: number;
  dl: DownloadStream;
  registered: number;
  fetched: boolean;
}

const streams = new Map<string, Entry>();
let lastPing = Date.now();

// Its scope holds no page, so there is nothing to wait for before a new version takes over.
sw.addEventListener("install", (e) => e.waitUntil(sw.skipWaiting()));

sw.addEventListener("message", (e) => {
  const m = e.data;
  if (m?.t === "ping") {
    lastPing = Date.now();
    sweep();
    for (const s of streams.values()) s.dl.alive();
    e.waitUntil(new Promise((r) => setTimeout(r, HOLD_MS)));
    return;
  }
  if (m?.t === "stream" && downloadId(`/ferry-dl/${m.id}`) === m.id && Number.isSafeInteger(m.size) && m.size >= 0) {
    streams.set(m.id, { name: String(m.name), size: m.size, dl: downloadStream(m.port), registered: Date.now(), fetched: false });
    m.reply.postMessage({ t: "ready" });
    m.reply.close();
  }
});

sw.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (url.origin !== location.origin) return;
  const id = downloadId(url.pathname);
  if (id === null) return;
  const s = streams.get(id);
  if (!s || s.fetched || s.dl.ended) {
    e.respondWith(new Response("This download is no longer available: the page that received it has closed or started over.\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } }));
    return;
  }
  s.fetched = true;
  e.respondWith(
    new Response(s.dl.stream, {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(s.size),
        "content-disposition": contentDisposition(s.name),
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
      },
    }),
  );
});

/** Drop streams that ended, were never fetched, or whose page went quiet. */
function sweep(): void {
  const now = Date.now();
  for (const [id, s] of streams) {
    if (s.dl.ended) streams.delete(id);
    else if (!s.fetched && now - s.registered > UNCLAIMED_MS) {
      s.dl.fail("the download was never started");
      streams.delete(id);
    } else if (now - Math.max(s.dl.lastHeard(), lastPing) > SILENT_MS) {
      s.dl.fail("the page receiving this file has closed");
      streams.delete(id);
    }
  }
}

setInterval(sweep, 10_000);
