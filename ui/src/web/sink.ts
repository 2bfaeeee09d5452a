// Where the browser receiver puts verified bytes. The receiver acknowledges a chunk only after
// the sink's `write` resolved, so a sink that streams to disk keeps the page's memory flat:
// the sender never has more than its window (8 MiB) unacknowledged.
//
// `OpfsSink` writes to the origin-private file system with synchronous positional writes
// (Workers only), so memory stays flat whatever the size and the quota is the limit; the files
// are then offered as downloads (a File backed by disk). `MemorySink` is the fallback.
// A save picker (File System Access) and a Service Worker download stream are meant to
// implement the same two interfaces.
import type { FileEntry } from "./frames";
import { WebError } from "./signal";

/** One file being written. Writes arrive in order, but a resend may rewind to an earlier offset. */
export interface FileSink {
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Every byte is in and the whole-file hash matched: make the file available. */
  finish(): Promise<void>;
  /** The transfer stopped before this file finished: drop what was written. */
  abort(): Promise<void>;
}

export interface Sink {
  /** Open file `index` of the manifest for writing; `WebError` if it cannot be held. */
  open(index: number, entry: FileEntry): Promise<FileSink>;
}

export interface ReceivedBytes {
  path: string;
  data: Uint8Array;
}

/** Keeps every file in memory, refusing a transfer that would pass `maxBytes` in total. */
export class MemorySink implements Sink {
  readonly files: ReceivedBytes[] = [];
  private reserved = 0;

  constructor(readonly maxBytes = 256 * 1024 * 1024) {}

  /** Whether a transfer of `total` bytes fits before accepting it. */
  fits(total: number): boolean {
    return this.reserved + total <= this.maxBytes;
  }

  async open(_index: number, entry: FileEntry): Promise<FileSink> {
    if (!this.fits(entry.size)) {
      throw new WebError("too-large", `${entry.path} is larger than this browser can hold in memory (${this.maxBytes} bytes)`);
    }
    this.reserved += entry.size;
    const buf = new Uint8Array(entry.size);
    const files = this.files;
    let open = true;
    return {
      async write(offset, data) {
        if (!open) throw new WebError("io", `${entry.path} is closed`);
        if (offset + data.length > buf.length) throw new WebError("protocol", `write past the end of ${entry.path}`);
        buf.set(data, offset);
      },
      async finish() {
        open = false;
        files.push({ path: entry.path, data: buf });
      },
      abort: async () => {
        open = false;
        this.reserved -= entry.size;
      },
    };
  }
}

// The parts of the OPFS API used here (in the `webworker` lib, not in the DOM one).
interface SyncAccessHandle {
  write(data: Uint8Array, opts: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}
type OpfsFileHandle = FileSystemFileHandle & { createSyncAccessHandle(): Promise<SyncAccessHandle> };

/** A received file on disk (OPFS), ready to hand to the page as a download. */
export interface ReceivedFile {
  path: string;
  file: File;
}

const OPFS_DIR = "ferry-received";

/** Whether this context can write OPFS files synchronously (a dedicated Worker in Chromium,
 * Firefox and Safari 17+). */
export function opfsAvailable(): boolean {
  const fsh = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle;
  return typeof navigator !== "undefined" && !!navigator.storage?.getDirectory && !!fsh && "createSyncAccessHandle" in fsh.prototype;
}

/** Writes each file into the origin-private file system. */
export class OpfsSink implements Sink {
  readonly files: ReceivedFile[] = [];

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    /** Bytes this origin may still store. */
    readonly capacity: number,
  ) {}

  /** A sink over a fresh folder: files of earlier page loads (unreachable now) are removed. */
  static async create(): Promise<OpfsSink> {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(OPFS_DIR, { recursive: true }).catch(() => undefined);
    const dir = await root.getDirectoryHandle(OPFS_DIR, { create: true });
    const est = await navigator.storage.estimate();
    const capacity = Math.max((est.quota ?? 0) - (est.usage ?? 0), 0);
    return new OpfsSink(dir, capacity);
  }

  fits(total: number): boolean {
    return total <= this.capacity;
  }

  async open(index: number, entry: FileEntry): Promise<FileSink> {
    const name = `${index}`;
    const handle = (await this.dir.getFileHandle(name, { create: true })) as OpfsFileHandle;
    let access: SyncAccessHandle;
    try {
      access = await handle.createSyncAccessHandle();
    } catch (e) {
      throw new WebError("permission-denied", `cannot write ${entry.path} in this browser's storage: ${e instanceof Error ? e.message : e}`);
    }
    access.truncate(0);
    const files = this.files;
    const dir = this.dir;
    let open = true;
    const close = () => {
      if (open) access.close();
      open = false;
    };
    return {
      async write(offset, data) {
        if (!open) throw new WebError("io", `${entry.path} is closed`);
        let at = 0;
        try {
          while (at < data.length) {
            const n = access.write(data.subarray(at), { at: offset + at });
            if (n <= 0) throw new Error("no progress");
            at += n;
          }
        } catch (e) {
          const quota = e instanceof DOMException && e.name === "QuotaExceededError";
          throw new WebError(quota ? "disk-full" : "io", `writing ${entry.path}: ${e instanceof Error ? e.message : e}`);
        }
      },
      async finish() {
        access.flush();
        close();
        files.push({ path: entry.path, file: await handle.getFile() });
      },
      async abort() {
        close();
        await dir.removeEntry(name).catch(() => undefined);
      },
    };
  }
}
