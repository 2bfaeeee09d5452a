// Rate and time left over one attempt, shared by the receive and send runs.
import type { FerryEvent } from "../ipc";

/** Progress events at most this often (ferry-core defaults.rs PROGRESS_EVERY). */
export const PROGRESS_EVERY_MS = 100;

/** Rate and ETA over this attempt, as ferry-core's transfer/machine/progress.rs: bytes moved
 * since the accept (what was held before not counted) over the seconds since then, and a
 * progress event at most every PROGRESS_EVERY_MS unless forced. */
export class ProgressMeter {
  private last: number | null = null;

  constructor(
    readonly startedMs: number,
    /** Bytes held before this attempt. */
    public base: number,
    readonly total: number,
  ) {}

  /** Bytes per second. */
  rate(nowMs: number, done: number): number {
    const secs = (nowMs - this.startedMs) / 1000;
    if (secs <= 0) return 0;
    return Math.floor(Math.max(done - this.base, 0) / secs);
  }

  event(nowMs: number, file: string, done: number, force: boolean): FerryEvent | null {
    if (!force && this.last !== null && nowMs - this.last < PROGRESS_EVERY_MS) return null;
    this.last = nowMs;
    const rate = this.rate(nowMs, done);
    const eta = rate > 0 ? Math.floor(Math.max(this.total - done, 0) / rate) : null;
    return { event: "progress", file, bytes_done: done, total: this.total, rate_bps: rate, eta_secs: eta };
  }

  secs(nowMs: number): number {
    return Math.max(nowMs - this.startedMs, 0) / 1000;
  }
}
