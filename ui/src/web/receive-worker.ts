// The browser receiver's Worker: the peer protocol, hashing and LZ4 decoding off the page's
// main thread (which only relays data-channel frames; see link-port.ts).
import { type FromWorker, PortLink, type ReceivedFile, type SinkChoice, type Storage, type ToWorker } from "./link-port";
import { receive } from "./receive";
import { asWebError, WebError } from "./signal";
import { MemorySink, OpfsSink, opfsAvailable, type Sink } from "./sink";
import { FolderSink, type FolderTarget } from "./sink-folder";
import { StreamSink } from "./sink-stream";
import { loadFerryWasm } from "./wasm-load";

// The page's DOM typings describe `self` as a Window; in a Worker it is this.
const scope = self as unknown as {
  postMessage(m: FromWorker, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
};
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

// The page starts this Worker before it joins the room, so the hashing module loads while the
// connection comes up rather than after it (a round trip or more on a long path).
const wasmReady = loadFerryWasm();
wasmReady.catch(() => undefined); // a failure is reported by the run that awaits it

let link: PortLink | null = null;
let streamSink: StreamSink | null = null;
let decided: ((accept: boolean, folder?: FolderTarget) => void) | null = null;
let cancelNow: () => void = () => undefined;
const cancelled = new Promise<void>((resolve) => (cancelNow = resolve));

async function run(maxMessageSize: number, maxBytes: number, choice: SinkChoice, streams: boolean): Promise<void> {
  const l = new PortLink(post, maxMessageSize);
  link = l;
  try {
    const wasm = await wasmReady;
    const opfs = choice === "auto" && opfsAvailable() ? await OpfsSink.create().catch(() => null) : null;
    const stream = streams && choice !== "memory" ? new StreamSink((req) => post({ t: "download", req }, [req.port])) : null;
    streamSink = stream;
    const memory = new MemorySink(maxBytes);
    // Picked once the offer's size is known: OPFS if it fits its quota, else streamed downloads
    // (the page has a Service Worker), else memory, whose cap refuses before accepting.
    let fallback: Sink = memory;
    let storage: Storage = { kind: "memory", capacity: maxBytes };
    const choose = (total: number) => {
      if (opfs && (opfs.fits(total) || !stream)) [fallback, storage] = [opfs, { kind: "disk", capacity: opfs.capacity }];
      else if (stream) [fallback, storage] = [stream, { kind: "stream", capacity: Number.MAX_SAFE_INTEGER }];
    };
    // A folder picked on the offer screen replaces the default sink from then on.
    let folder = null as FolderSink | null;
    const sink: Sink = {
      prepare: async (id) => (folder ?? fallback).prepare?.(id),
      open: (i, entry) => (folder ?? fallback).open(i, entry),
    };
    const result = await receive({
      link: l,
      wasm,
      sink,
      onEvent: (e) => post({ t: "event", e }),
      cancelled,
      decide: (offer) => {
        choose(offer.total);
        post({ t: "decide", offer, storage });
        return new Promise((resolve) => {
          decided = (accept, target) => {
            if (accept && target) folder = new FolderSink(target);
            resolve(accept);
          };
        });
      },
    });
    if ("text" in result) {
      post({ t: "end", ok: true, text: result.text });
      return;
    }
    const files: ReceivedFile[] = folder
      ? folder.files.map((f) => ({ path: f.path, blob: f.file }))
      : fallback === opfs
      ? opfs.files.map((f) => ({ path: f.path, blob: f.file }))
      : fallback === stream
      ? stream.files
      : memory.files.map((f) => ({ path: f.path, blob: new Blob([f.data as Uint8Array<ArrayBuffer>]) }));
    post({ t: "end", ok: true, stats: result, files });
  } catch (e) {
    const err = asWebError(e);
    post({ t: "end", ok: false, code: err.code, message: err.message });
  }
}

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.t) {
    case "start":
      void run(m.maxMessageSize, m.maxBytes, m.sink, m.streams);
      break;
    case "frame":
    case "closed":
      link?.deliver(m);
      // A write may be waiting on a download nobody lets move; the link's end must still show.
      if (m.t === "closed") streamSink?.stop(new WebError("peer-left", "the connection to the other device closed"));
      break;
    case "decision":
      decided?.(m.accept, m.folder);
      decided = null;
      break;
    case "cancel":
      cancelNow();
      // A write waiting on a download nobody lets move must not hold the cancel up.
      streamSink?.stop(new WebError("cancelled", "you cancelled the transfer"));
      break;
  }
};
