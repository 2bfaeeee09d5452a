// Where the browser receiver puts verified bytes. The receiver acknowledges a chunk only after
// the sink's `write` resolved, so a sink that streams to disk keeps the page's memory flat:
// the sender never has more than its window (8 MiB) unacknowledged.
//
// `MemorySink` is the only sink so far (small files, tests). File System Access (positional
// writes through `FileSystemWritableFileStream`) and a Service Worker download stream are
// meant to implement the same two interfaces.
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
