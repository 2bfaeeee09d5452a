// The peer protocol runs in a Worker, but RTCPeerConnection exists only on the page's main
// thread. The main thread keeps the data channel and relays frames both ways over
// postMessage (buffers transferred, not copied); the Worker sees a `FrameLink`.
// Memory stays bounded without flow control here: the sender never has more than its window
// (8 MiB) unacknowledged, and the Worker acknowledges only what its sink wrote.
import type { FileEntry } from "./frames";
import type { Offer, ReceiveEvent, ReceiveStats } from "./receive";
import type { DcLink, FrameLink } from "./session";
import { WebError } from "./signal";
import { FrameQueue, ownBuffer } from "./frame-queue";
import type { FolderTarget } from "./sink-folder";
import type { DownloadRequest } from "./sink-stream";

/** Main thread → Worker. */
export type ToWorker =
  | { t: "start"; maxMessageSize: number; maxBytes: number; sink: SinkChoice; streams: boolean }
  | { t: "frame"; data: ArrayBuffer }
  | { t: "closed" }
  | { t: "decision"; accept: boolean; folder?: FolderTarget }
  /** The person cancelled: the Worker tells the sender and ends `cancelled`. */
  | { t: "cancel" };

/** `auto`: the origin-private file system where the browser has it and the offer fits, else
 * streamed downloads where the page has a Service Worker (`streams`), else memory. */
export type SinkChoice = "auto" | "memory" | "stream";

/** Where the files go, and how many bytes fit there. */
export interface Storage {
  /** `stream`: each file is a browser download as it arrives (sink-stream.ts). */
  kind: "disk" | "memory" | "stream";
  capacity: number;
}

export interface ReceivedFile {
  path: string;
  /** On disk (OPFS) or in memory; none for a file already saved as a streamed download. */
  blob?: Blob;
  size?: number;
}

/** Worker → main thread. */
export type FromWorker =
  | { t: "send"; data: ArrayBuffer }
  | { t: "close"; drainMs: number }
  | { t: "event"; e: ReceiveEvent }
  | { t: "decide"; offer: Offer; storage: Storage }
  | { t: "download"; req: DownloadRequest }
  | { t: "end"; ok: true; stats: ReceiveStats; files: ReceivedFile[] }
  | { t: "end"; ok: true; text: string }
  | { t: "end"; ok: false; code: string; message: string };

/** The Worker's side of the link. */
export class PortLink implements FrameLink {
  private frames = new FrameQueue();

  constructor(
    private readonly post: (m: FromWorker, transfer?: Transferable[]) => void,
    public maxMessageSize: number,
  ) {}

  /** Feed what the main thread relayed. */
  deliver(m: Extract<ToWorker, { t: "frame" } | { t: "closed" }>): void {
    if (m.t === "frame") this.frames.push(new Uint8Array(m.data));
    else this.frames.close();
  }

  get isOpen(): boolean {
    return !this.frames.closed;
  }

  next(deadline = Infinity): Promise<Uint8Array | null> {
    return this.frames.next(deadline);
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.frames.closed) throw new WebError("peer-left", "the connection to the other device closed");
    const data = ownBuffer(frame);
    this.post({ t: "send", data }, [data]);
  }

  async close(drainMs = 2000): Promise<void> {
    if (this.frames.closed) return;
    this.frames.close();
    this.post({ t: "close", drainMs });
  }
}

export interface WorkerReceiveOptions {
  /** The memory sink's cap. */
  maxBytes: number;
  sink?: SinkChoice;
  onEvent?: (e: ReceiveEvent) => void;
  /** Start a streamed download (stream-page.ts); without it the Worker never streams. */
  onDownload?: (req: DownloadRequest) => void;
  /** Whether to take the offer; a `FolderTarget` takes it into that picked folder (sink-folder.ts). */
  decide?: (offer: Offer, storage: Storage) => Promise<boolean | FolderTarget>;
  /** Resolves when the person cancels (receive.ts `cancelled`). */
  cancelled?: Promise<void>;
}

export type WorkerResult = { stats: ReceiveStats; files: ReceivedFile[] } | { text: string };

/** Run the receive side in `worker` over `link` (main thread). Ends the worker when done. */
export function receiveInWorker(worker: Worker, link: DcLink, opts: WorkerReceiveOptions): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    // Frames go out in the order the Worker posted them, each after the previous one left.
    let chain = Promise.resolve();
    const toWorker = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);
    const finish = (f: () => void) => {
      worker.terminate();
      f();
    };
    worker.onerror = (ev) => finish(() => reject(new WebError("io", `receiver worker failed: ${ev.message}`)));
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      switch (m.t) {
        case "send":
          chain = chain.then(() => link.send(new Uint8Array(m.data))).catch(() => toWorker({ t: "closed" }));
          break;
        case "close":
          chain = chain.then(() => link.close(m.drainMs));
          break;
        case "download":
          opts.onDownload?.(m.req);
          break;
        case "event":
          opts.onEvent?.(m.e);
          break;
        case "decide":
          void (opts.decide ? opts.decide(m.offer, m.storage) : Promise.resolve(m.offer.total <= m.storage.capacity)).then((d) =>
            toWorker(typeof d === "boolean" ? { t: "decision", accept: d } : { t: "decision", accept: true, folder: d }),
          );
          break;
        case "end":
          // Let the last frames (`done`) leave before the Worker goes.
          void chain.then(() =>
            finish(() => {
              if (!m.ok) reject(new WebError(m.code, m.message));
              else if ("text" in m) resolve({ text: m.text });
              else resolve({ stats: m.stats, files: m.files });
            }),
          );
          break;
      }
    };
    toWorker({ t: "start", maxMessageSize: link.maxMessageSize, maxBytes: opts.maxBytes, sink: opts.sink ?? "auto", streams: !!opts.onDownload });
    // After the Worker ended this posts into nothing.
    void opts.cancelled?.then(() => toWorker({ t: "cancel" }));
    link.handOff({
      frame: (data) => toWorker({ t: "frame", data }, [data]),
      closed: () => toWorker({ t: "closed" }),
    });
  });
}

export type { FileEntry };
