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
  /** Bytes already held from an earlier attempt (verified when written), on the 1 KiB grid. */
  readonly start?: number;
  /** Read back held bytes, to rebuild the hash tree over them. */
  read?(offset: number, len: number): Uint8Array;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Every byte is in and the whole-file hash matched: make the file available. */
  finish(): Promise<void>;
  /** The transfer stopped before this file finished. With `keep`, what was written (a verified
   * prefix) stays for a later attempt to resume from; otherwise it is dropped. */
  abort(keep?: boolean): Promise<void>;
}

export interface Sink {
  /** Called once the offer is accepted: a sink that keeps files across attempts keys them here. */
  prepare?(transferId: string): Promise<void>;
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
  read(into: Uint8Array, opts: { at: number }): number;
  write(data: Uint8Array, opts: { at: number }): number;
  getSize(): number;
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

/** Writes each file into the origin-private file system, one folder per transfer id, so a
 * transfer that comes back (the tab was closed, the link dropped) resumes where it stopped. */
export class OpfsSink implements Sink {
  readonly files: ReceivedFile[] = [];
  private dir: FileSystemDirectoryHandle | null = null;

  private constructor(
    private readonly root: FileSystemDirectoryHandle,
    /** Bytes this origin may still store. */
    readonly capacity: number,
  ) {}

  static async create(): Promise<OpfsSink> {
    const top = await navigator.storage.getDirectory();
    const root = await top.getDirectoryHandle(OPFS_DIR, { create: true });
    const est = await navigator.storage.estimate();
    const capacity = Math.max((est.quota ?? 0) - (est.usage ?? 0), 0);
    return new OpfsSink(root, capacity);
  }

  /** Keep this transfer's folder; other transfers' files (unreachable now) are removed. */
  async prepare(transferId: string): Promise<void> {
    if (!/^[0-9a-f]{1,64}$/.test(transferId)) throw new WebError("protocol", "malformed transfer id");
    const names: string[] = [];
    for await (const name of (this.root as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    for (const name of names) {
      if (name !== transferId) await this.root.removeEntry(name, { recursive: true }).catch(() => undefined);
    }
    this.dir = await this.root.getDirectoryHandle(transferId, { create: true });
  }

  fits(total: number): boolean {
    return total <= this.capacity;
  }

  async open(index: number, entry: FileEntry): Promise<FileSink> {
    if (!this.dir) await this.prepare("0");
    const dir = this.dir as FileSystemDirectoryHandle;
    const name = `${index}`;
    const handle = (await dir.getFileHandle(name, { create: true })) as OpfsFileHandle;
    let access: SyncAccessHandle;
    try {
      access = await handle.createSyncAccessHandle();
    } catch (e) {
      throw new WebError("permission-denied", `cannot write ${entry.path} in this browser's storage: ${e instanceof Error ? e.message : e}`);
    }
    // Bytes are written only after they verified, in order, so what an earlier attempt left
    // is a verified prefix. A complete file keeps its last piece out, so it ends through the
    // sender's file-end and its whole-file hash like any other.
    const held = Math.min(access.getSize(), entry.size);
    const start = held < entry.size ? held - (held % 1024) : Math.max(entry.size - 1, 0) - (Math.max(entry.size - 1, 0) % 1024);
    access.truncate(start);
    const files = this.files;
    let open = true;
    const close = () => {
      if (open) access.close();
      open = false;
    };
    return {
      start,
      read(offset, len) {
        const buf = new Uint8Array(len);
        let at = 0;
        while (at < len) {
          const n = access.read(buf.subarray(at), { at: offset + at });
          if (n <= 0) throw new WebError("io", `${entry.path}: short read`);
          at += n;
        }
        return buf;
      },
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
      async abort(keep = false) {
        close();
        if (!keep) await dir.removeEntry(name).catch(() => undefined);
      },
    };
  }
}
