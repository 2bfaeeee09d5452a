// The browser sender's Worker: reading the picked files (File.slice per chunk), hashing and
// LZ4 in wasm, and the peer protocol, off the page's main thread (which relays the data
// channel's frames; see send-port.ts).
import { displayRoom } from "../link";
import type { FileEntry } from "./frames";
import { transferId } from "./manifest";
import { send, type Source } from "./send";
import { CreditLink, type FromSendWorker, type ToSendWorker } from "./send-port";
import { WebError } from "./signal";
import { loadFerryWasm } from "./wasm-load";

const scope = self as unknown as {
  postMessage(m: FromSendWorker, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToSendWorker>) => void) | null;
};
const post = (m: FromSendWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

let link: CreditLink | null = null;
let cancelNow: (() => void) | null = null;
const cancelled = new Promise<void>((resolve) => (cancelNow = resolve));
let paused = false;

/** The picked files, read a slice at a time. A file edited since it was picked no longer
 * reads (NotReadableError) or reads short: `source-changed`, as the native reader says. */
export function fileSource(files: File[], entries: FileEntry[]): Source {
  return {
    async read(file, offset, len) {
      const f = files[file];
      const e = entries[file];
      if (!f || !e) throw new WebError("protocol", `no file ${file}`);
      let buf: ArrayBuffer;
      try {
        buf = await f.slice(offset, offset + len).arrayBuffer();
      } catch (err) {
        throw new WebError("source-changed", `${e.path} can no longer be read (${err instanceof Error ? err.name : String(err)}): was it changed or removed?`);
      }
      if (buf.byteLength !== len) throw new WebError("source-changed", `${e.path} shrank while sending`);
      return new Uint8Array(buf);
    },
  };
}

async function run(m: Extract<ToSendWorker, { t: "start" }>): Promise<void> {
  const l = new CreditLink(post, m.maxMessageSize);
  link = l;
  try {
    const wasm = await loadFerryWasm();
    // The native sender's id: BLAKE3 over the room (as shown) and the manifest.
    const id = transferId(displayRoom(m.room), m.entries, (d) => wasm.blake3(d));
    const stats = await send({
      link: l,
      wasm,
      transferId: id,
      entries: m.entries,
      manifestSent: m.manifestSent,
      source: fileSource(m.files, m.entries),
      caps: m.caps,
      rateBps: m.rateBps || undefined,
      onEvent: (e) => post({ t: "event", e }),
      cancelled,
      paused: () => paused,
    });
    post({ t: "end", ok: true, stats, transferId: id });
  } catch (e) {
    const err = e instanceof WebError ? e : new WebError("io", e instanceof Error ? e.message : String(e));
    post({ t: "end", ok: false, code: err.code, message: err.message });
  }
}

scope.onmessage = (ev: MessageEvent<ToSendWorker>) => {
  const m = ev.data;
  switch (m.t) {
    case "start":
      void run(m);
      break;
    case "frame":
    case "closed":
    case "sent":
      link?.deliver(m);
      break;
    case "cancel":
      cancelNow?.();
      break;
    case "pause":
      paused = m.paused;
      break;
  }
};
