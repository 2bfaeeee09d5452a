// The send side runs in a Worker (send-worker.ts) like the receive side (link-port.ts): the
// page keeps the data channel, which exists only on its main thread, and relays frames both
// ways. Back-pressure crosses the relay as credit: the page reports each frame it handed to
// the data channel (whose `send` waits on `bufferedamountlow`), and the Worker stops reading
// the file while more than `RELAY_CREDIT` bytes are on their way, so neither side buffers
// more than that whatever the file size. The page hands each frame's buffer back once the
// channel copied it, and the Worker fills it again: the page allocates nothing per chunk, so
// its heap does not swell with buffers waiting for a collection.
import { type FileEntry, MAX_FRAME_LEN } from "./frames";
import { FrameQueue } from "./frame-queue";
import type { SendEvent, SendStats } from "./send";
import type { DcLink, FrameLink } from "./session";
import { WebError } from "./signal";

/** Bytes the Worker may have posted that the data channel has not taken yet. */
export const RELAY_CREDIT = 2 * 1024 * 1024;

/** Page → Worker. */
export type ToSendWorker =
  | { t: "start"; maxMessageSize: number; caps: string[]; room: string; files: File[]; entries: FileEntry[]; manifestSent: boolean; rateBps: number }
  | { t: "frame"; data: ArrayBuffer }
  | { t: "closed" }
  | { t: "sent"; bytes: number; buf: ArrayBuffer }
  | { t: "cancel" }
  | { t: "pause"; paused: boolean };

/** Worker → page. */
export type FromSendWorker =
  /** A frame: the first `len` bytes of `data`. */
  | { t: "send"; data: ArrayBuffer; len: number }
  | { t: "close"; drainMs: number }
  | { t: "event"; e: SendEvent }
  | { t: "end"; ok: true; stats: SendStats; transferId: string }
  | { t: "end"; ok: false; code: string; message: string };

/** The Worker's end of the relayed data channel, with credit-based back-pressure. */
export class CreditLink implements FrameLink {
  private frames = new FrameQueue();
  private inRelay = 0;
  private wake: (() => void) | null = null;
  /** Buffers the page handed back, to carry the next frames. */
  private pool: ArrayBuffer[] = [];

  constructor(
    private readonly post: (m: FromSendWorker, transfer?: Transferable[]) => void,
    public maxMessageSize: number,
  ) {}

  deliver(m: Extract<ToSendWorker, { t: "frame" } | { t: "closed" } | { t: "sent" }>): void {
    if (m.t === "frame") this.frames.push(new Uint8Array(m.data));
    else if (m.t === "sent") {
      this.inRelay -= m.bytes;
      if (this.pool.length < 32) this.pool.push(m.buf);
    } else this.frames.close();
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  get isOpen(): boolean {
    return !this.frames.closed;
  }

  next(deadline = Infinity): Promise<Uint8Array | null> {
    return this.frames.next(deadline);
  }

  async send(frame: Uint8Array): Promise<void> {
    while (this.inRelay > RELAY_CREDIT && !this.frames.closed) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.frames.closed) throw new WebError("peer-left", "the connection to the other device closed");
    const pooled = this.pool.pop();
    const data = pooled && pooled.byteLength >= frame.length ? pooled : new ArrayBuffer(Math.max(frame.length, MAX_FRAME_LEN));
    new Uint8Array(data, 0, frame.length).set(frame);
    this.inRelay += frame.length;
    this.post({ t: "send", data, len: frame.length }, [data]);
  }

  async close(drainMs = 2000): Promise<void> {
    if (this.frames.closed) return;
    this.frames.close();
    this.post({ t: "close", drainMs });
  }
}

export interface WorkerSendOptions {
  room: string;
  files: File[];
  entries: FileEntry[];
  /** The manifest already went behind the hello (HostRoom.accept's `opening`). */
  manifestSent?: boolean;
  caps: string[];
  rateBps?: number;
  onEvent?: (e: SendEvent) => void;
  /** Resolves when the user cancels. */
  cancelled?: Promise<void>;
  /** Called once with the function that pauses (true) or resumes (false) the sending. */
  pauseWith?: (set: (paused: boolean) => void) => void;
}

/** Run one send attempt in `worker` over `link` (page side). Ends the worker when done. */
export function sendInWorker(worker: Worker, link: DcLink, opts: WorkerSendOptions): Promise<{ stats: SendStats; transferId: string }> {
  return new Promise((resolve, reject) => {
    let chain = Promise.resolve();
    const toWorker = (m: ToSendWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);
    const finish = (f: () => void) => {
      worker.terminate();
      f();
    };
    void opts.cancelled?.then(() => toWorker({ t: "cancel" }));
    opts.pauseWith?.((paused) => toWorker({ t: "pause", paused }));
    worker.onerror = (ev) => finish(() => reject(new WebError("io", `sender worker failed: ${ev.message}`)));
    worker.onmessage = (ev: MessageEvent<FromSendWorker>) => {
      const m = ev.data;
      switch (m.t) {
        case "send": {
          const { data, len } = m;
          // The channel copies what it is given, so the buffer goes back at once.
          chain = chain
            .then(() => link.send(new Uint8Array(data, 0, len)))
            .then(
              () => toWorker({ t: "sent", bytes: len, buf: data }, [data]),
              () => toWorker({ t: "closed" }),
            );
          break;
        }
        case "close":
          chain = chain.then(() => link.close(m.drainMs));
          break;
        case "event":
          opts.onEvent?.(m.e);
          break;
        case "end":
          void chain.then(() =>
            finish(() => {
              if (m.ok) resolve({ stats: m.stats, transferId: m.transferId });
              else reject(new WebError(m.code, m.message));
            }),
          );
          break;
      }
    };
    toWorker({
      t: "start",
      maxMessageSize: link.maxMessageSize,
      caps: opts.caps,
      room: opts.room,
      files: opts.files,
      entries: opts.entries,
      manifestSent: opts.manifestSent ?? false,
      rateBps: opts.rateBps ?? 0,
    });
    link.handOff({
      frame: (data) => toWorker({ t: "frame", data }, [data]),
      closed: () => toWorker({ t: "closed" }),
    });
  });
}
