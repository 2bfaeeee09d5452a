// The receive Worker's half of a streamed download: each file goes, as its chunks verify, to a
// browser download that the Service Worker (sw.ts, download-stream.ts) feeds from a
// MessagePort. For browsers whose private storage (OPFS) is missing or too small for the offer.
//
// `write` resolves only once the Service Worker has granted room for the bytes (its credit is
// what the download has read plus a window), so the receiver's acknowledgements, and with them
// the sender, follow the speed at which the browser saves: memory stays flat.
//
// A download cannot be rewound or resumed: a file starts at byte 0 on every attempt, and a
// transfer that stops (the link dropped, the tab closed) fails the running downloads; the next
// attempt downloads those files again from the start.
import { toHex } from "./bytes";
import type { FromDownload, ToDownload } from "./download-stream";
import type { FileEntry } from "./frames";
import { WebError } from "./signal";
import type { FileSink, Sink } from "./sink";

/** What the page is asked to do for each file: hand `port` to the Service Worker under `id`
 * and start the download of `/ferry-dl/<id>/<name>`. */
export interface DownloadRequest {
  id: string;
  name: string;
  size: number;
  port: MessagePort;
}

/** A file handed to the browser's downloads. */
export interface StreamedFile {
  path: string;
  size: number;
}

/** If the Service Worker says nothing (no credit, no keep-alive answer) for this long while a
 * write waits, it is presumed gone (the browser stopped it): the transfer fails rather than hang. */
export const SILENT_MS = 45_000;

export class StreamSink implements Sink {
  readonly files: StreamedFile[] = [];
  private readonly running = new Set<StreamFile>();

  constructor(
    /** Ask the page to start the download (the request goes out once per file, at its first
     * byte or, for an empty file, at its end). */
    private readonly start: (d: DownloadRequest) => void,
    private readonly silentMs = SILENT_MS,
  ) {}

  async open(_index: number, entry: FileEntry): Promise<FileSink> {
    const f = new StreamFile(entry, this.start, this.silentMs, this.files, () => this.running.delete(f));
    this.running.add(f);
    return f;
  }

  /** The link closed: a write waiting for a stalled download (a prompt nobody answered yet)
   * fails now, so the receiver sees the end at once instead of when the download moves. */
  stop(err: WebError): void {
    for (const f of this.running) f.fail(err);
  }
}

/** The name a download is saved under: the path's last part (the browser picks the folder). */
export function downloadName(path: string): string {
  return path.split("/").pop() || "file";
}

function randomId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

class StreamFile implements FileSink {
  /** Always from the start: a download holds nothing a later attempt could read back. */
  readonly start = 0;
  private port: MessagePort | null = null;
  /** Bytes handed to the Service Worker so far (all verified, in order). */
  private sent = 0;
  private upTo = 0;
  private done = false;
  private failure: WebError | null = null;
  private closed = false;
  private heard = Date.now();
  private wake: (() => void) | null = null;

  constructor(
    private readonly entry: FileEntry,
    private readonly startDownload: (d: DownloadRequest) => void,
    private readonly silentMs: number,
    private readonly files: StreamedFile[],
    private readonly ended: () => void,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check();
    if (offset !== this.sent) {
      if (offset < this.sent) {
        // receive.ts rewinds only when the whole-file hash failed: what the download already
        // has cannot be taken back, so the file must be received again from the start.
        throw new WebError(
          "integrity",
          `${this.entry.path}: the sender went back to byte ${offset} after ${this.sent} bytes had gone to the download, which cannot be rewound; the file must be received again from the start`,
        );
      }
      throw new WebError("protocol", `${this.entry.path}: write at ${offset}, expected ${this.sent}`);
    }
    if (offset + data.length > this.entry.size) throw new WebError("protocol", `write past the end of ${this.entry.path}`);
    if (!data.length) return;
    const port = this.open();
    await this.until(() => this.sent < this.upTo);
    // A copy: the caller's buffer may be a view into a frame, and is not ours to transfer.
    const buf = data.slice().buffer as ArrayBuffer;
    this.post(port, { t: "chunk", data: buf }, [buf]);
    this.sent += data.length;
  }

  async finish(): Promise<void> {
    this.check();
    if (this.sent !== this.entry.size) throw new WebError("protocol", `${this.entry.path}: finished at ${this.sent} of ${this.entry.size}`);
    const port = this.open();
    this.post(port, { t: "end" });
    // Done only once the download has read every byte: then the file is the browser's.
    await this.until(() => this.done);
    this.shut();
    this.files.push({ path: this.entry.path, size: this.entry.size });
  }

  async abort(): Promise<void> {
    if (this.port && !this.done && !this.closed) {
      this.post(this.port, { t: "abort", reason: "the transfer stopped; a streamed download cannot resume, so this file must be received again" });
    }
    this.failure ??= new WebError("io", `${this.entry.path}: the transfer stopped`);
    this.shut();
  }

  /** Fail what waits now; the download itself ends at `abort`. */
  fail(err: WebError): void {
    this.failure ??= err;
    this.poke();
  }

  private open(): MessagePort {
    if (this.port) return this.port;
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.heard = Date.now();
    ch.port1.onmessage = (ev: MessageEvent<FromDownload>) => this.hear(ev.data);
    const id = randomId();
    this.startDownload({ id, name: downloadName(this.entry.path), size: this.entry.size, port: ch.port2 });
    return ch.port1;
  }

  private hear(m: FromDownload): void {
    this.heard = Date.now();
    if (m.t === "credit") this.upTo = Math.max(this.upTo, m.upTo);
    else if (m.t === "done") this.done = true;
    else if (m.t === "cancelled") {
      this.failure ??= new WebError("cancelled", `the download of ${this.entry.path} stopped in the browser (${m.reason})`);
    }
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private post(port: MessagePort, m: ToDownload, transfer: Transferable[] = []): void {
    port.postMessage(m, transfer);
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new WebError("io", `${this.entry.path} is closed`);
  }

  /** Wait for `ready`, a failure, or the Service Worker's silence. */
  private async until(ready: () => boolean): Promise<void> {
    for (;;) {
      this.check();
      if (ready()) return;
      const left = this.heard + this.silentMs - Date.now();
      if (left <= 0) {
        this.failure = new WebError("io", `the browser stopped saving ${this.entry.path} (its download helper went away); the file must be received again`);
        throw this.failure;
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 5_000));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended();
    if (this.port) {
      this.port.onmessage = null;
      this.port.close();
    }
  }
}
