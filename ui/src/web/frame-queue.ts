// Frames that arrived and are waiting to be read, shared by the two `FrameLink`s: the data
// channel on the page (`DcLink`) and the Worker's end of the relay (`PortLink`).

/** An ordered queue of frames with one reader that may wait, until it is closed. */
export class FrameQueue {
  private frames: Uint8Array[] = [];
  private waiter: (() => void) | null = null;
  private done = false;

  get closed(): boolean {
    return this.done;
  }

  push(frame: Uint8Array): void {
    this.frames.push(frame);
    this.wake();
  }

  /** No more frames will come; a waiting reader gets what is left, then null. */
  close(): void {
    this.done = true;
    this.wake();
  }

  /** Every queued frame, removed from the queue. */
  drain(): Uint8Array[] {
    return this.frames.splice(0);
  }

  /** The next frame, or null once closed and empty (or `deadline`, ms since the epoch, passed). */
  async next(deadline = Infinity): Promise<Uint8Array | null> {
    for (;;) {
      const m = this.frames.shift();
      if (m) return m;
      if (this.done) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.waiter = () => {
          if (t !== undefined) clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Whether a frame is waiting (or the queue closed) by `deadline`; takes nothing. */
  async ready(deadline: number): Promise<boolean> {
    while (!this.frames.length && !this.done) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return true;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** An ArrayBuffer holding exactly `b`'s bytes, to transfer. */
export function ownBuffer(b: Uint8Array): ArrayBuffer {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b.buffer : (b.slice().buffer as ArrayBuffer);
}
