// The Service Worker's half of a streamed download (sw.ts; the receive Worker's half is
// sink-stream.ts). The receive Worker and the Service Worker talk over one MessagePort per
// file; the Service Worker answers the download's request with a ReadableStream fed from it.
//
// Flow control is by credit: the Service Worker says how many bytes in total the Worker may
// have sent (`upTo`), always what the download has read plus `window`. So at most one window
// (plus one chunk) sits between the two, whatever the file's size, and a Worker that writes
// faster than the browser saves simply waits: its `write` resolves later, the receiver
// acknowledges later, and the sender slows down.
//
// No imports: Vite emits sw.ts as one classic script, so nothing may be shared with the page.

/** Receive Worker → Service Worker, on the file's port. */
export type ToDownload = { t: "chunk"; data: ArrayBuffer } | { t: "end" } | { t: "abort"; reason: string };

/** Service Worker → receive Worker, on the file's port. */
export type FromDownload =
  /** The Worker may have sent this many bytes in total. */
  | { t: "credit"; upTo: number }
  /** The Service Worker is still there (sent on each keep-alive ping). */
  | { t: "alive" }
  /** The download read every byte and its end. */
  | { t: "done" }
  /** The browser cancelled the download (the user, or the download failed). */
  | { t: "cancelled"; reason: string };

/** Page → Service Worker (its `message` event). */
export type ToServiceWorker =
  | { t: "stream"; id: string; name: string; size: number; port: MessagePort; reply: MessagePort }
  | { t: "ping" };

/** Where a streamed download is fetched from: the Service Worker answers these. (The page
 * builds them in stream-page.ts: importing anything from here would put this module in a chunk
 * shared with the page, which a classic Service Worker script cannot load.) */
export const DOWNLOAD_PREFIX = "/ferry-dl/";

/** The download id a request path names, if it is one of ours. */
export function downloadId(pathname: string): string | null {
  if (!pathname.startsWith(DOWNLOAD_PREFIX)) return null;
  const id = pathname.slice(DOWNLOAD_PREFIX.length).split("/")[0];
  return /^[0-9a-f]{32}$/.test(id) ? id : null;
}

/** `Content-Disposition` for saving as `name`: an ASCII fallback plus the exact name as
 * RFC 8187 UTF-8 (which every current browser prefers). */
export function contentDisposition(name: string): string {
  const base = name.replace(/[/\\]/g, "_").replace(/[\u0000-\u001f\u007f]/g, "") || "download";
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const exact = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/** One download being fed from a port. */
export interface DownloadStream {
  stream: ReadableStream<Uint8Array>;
  /** The Worker's side is presumed gone (its page closed): fail the download. */
  fail(reason: string): void;
  /** Tell the Worker this end is still alive. */
  alive(): void;
  /** When the last message (chunk, end, abort) came from the Worker. */
  lastHeard(): number;
  /** Whether the download has ended (every byte read, failed or cancelled). */
  readonly ended: boolean;
}

/** A ReadableStream that takes its bytes from `port`, holding at most `window` bytes ahead of
 * what the download read. */
export function downloadStream(port: MessagePort, window = 4 * 1024 * 1024): DownloadStream {
  const queue: Uint8Array[] = [];
  let read = 0;
  let ended = false;
  let finished = false;
  let error: string | null = null;
  let heard = Date.now();
  let wake: (() => void) | null = null;
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  const post = (m: FromDownload) => {
    try {
      port.postMessage(m);
    } catch {
      // The Worker is gone; the download fails through `fail` or the next read.
    }
  };
  const settle = () => {
    finished = true;
    port.onmessage = null;
    port.close();
  };
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  port.onmessage = (ev: MessageEvent<ToDownload>) => {
    heard = Date.now();
    const m = ev.data;
    if (m.t === "chunk") queue.push(new Uint8Array(m.data));
    else if (m.t === "end") ended = true;
    else if (m.t === "abort") {
      // Fail the download now, not at its next read, so the browser shows it stopped.
      error = m.reason;
      try {
        controller?.error(new Error(m.reason));
      } catch {
        // Already closed or errored.
      }
      settle();
    }
    poke();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        post({ t: "credit", upTo: window });
      },
      async pull(c) {
        // Called only when the download asks for more (high-water mark 0), so a close here
        // means it already read every byte before.
        while (!queue.length && !ended && error === null && !finished) await new Promise<void>((r) => (wake = r));
        if (finished && error === null) return;
        if (error !== null) {
          c.error(new Error(error));
          settle();
          return;
        }
        const b = queue.shift();
        if (b) {
          read += b.length;
          c.enqueue(b);
          post({ t: "credit", upTo: read + window });
          return;
        }
        c.close();
        post({ t: "done" });
        settle();
      },
      cancel(reason) {
        post({ t: "cancelled", reason: reason instanceof Error ? reason.message : String(reason ?? "cancelled") });
        settle();
        poke();
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    fail(reason) {
      if (finished) return;
      error = reason;
      poke();
      // A pull may not be pending (the download has not asked yet): fail it now.
      try {
        controller?.error(new Error(reason));
      } catch {
        // Already closed or errored.
      }
      post({ t: "cancelled", reason });
      settle();
    },
    alive: () => {
      if (!finished) post({ t: "alive" });
    },
    lastHeard: () => heard,
    get ended() {
      return finished;
    },
  };
}
