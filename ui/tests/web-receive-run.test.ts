// The browser receiver without its page (ui/src/web/receive-run.ts): the pure parts (event
// mapping, rate and ETA, the offer's storage line, the done report, the connection's path) and
// the run itself, driven through joining, the offer decision, the transfer and its end with a
// scripted Worker that speaks link-port.ts's messages. The real Worker, data channel and sinks
// run in the browser end-to-end tests (ui/e2e/).
import type { FerryEvent } from "../src/ipc";
import { initialState, reduce } from "../src/state";
import { ControlReassembler, encodeControl, type FileEntry } from "../src/web/frames";
import type { FromWorker, Storage, ToWorker } from "../src/web/link-port";
import { selectedPath } from "../src/web/link-path";
import { ProgressMeter } from "../src/web/progress-meter";
import type { Offer, ReceiveStats } from "../src/web/receive";
import {
  buildReport,
  errorEvent,
  folderError,
  MAX_IN_MEMORY,
  offerStorage,
  ReceiveEvents,
  startReceive,
  STOPPED_DOWNLOADS,
  storageText,
  tooLargeText,
} from "../src/web/receive-run";
import { type DcLink, type join, WebError } from "../src/web/session";
import type { FolderTarget } from "../src/web/sink-folder";

const MB = 1000 * 1000;
const entry = (path: string, size: number, dir?: true): FileEntry => (dir ? { path, size, mtime_ms: 0, dir } : { path, size, mtime_ms: 0 });
const OFFER: Offer = { transferId: "6f1c0a52d3b94e7e", files: [entry("photos", 0, true), entry("photos/a.jpg", 1000), entry("photos/b.jpg", 3000)], total: 4000 };
const STATS: ReceiveStats = { files: 2, bytes: 4000, compressed: 3, rejected: 1, resumed: 0 };
const fakeDir = (name: string) => ({ name }) as unknown as FileSystemDirectoryHandle;

describe("the offer's storage line", () => {
  it("says where Accept puts the files, in the join page's words", () => {
    expect(storageText({ kind: "disk", capacity: 10 * MB })).toBe("Accept keeps the files in this browser's storage, then offers each one to save.");
    expect(storageText({ kind: "memory", capacity: MAX_IN_MEMORY })).toBe(
      "Accept keeps the files in this page's memory (at most 268 MB), then offers each one to save.",
    );
    expect(storageText({ kind: "stream", capacity: Number.MAX_SAFE_INTEGER })).toMatch(/^Each file is saved to your downloads as it arrives\./);
    expect(tooLargeText({ kind: "memory", capacity: MAX_IN_MEMORY })).toBe(
      "This browser page can hold at most 268 MB; this browser cannot save larger transfers to disk.",
    );
    expect(tooLargeText({ kind: "disk", capacity: 5 * MB })).toBe(
      "This browser's storage has room for 5.00 MB only. Free some disk space, or receive with the Ferry app.",
    );
  });

  it("turns Accept off when the offer does not fit, and offers a folder where one can be picked", () => {
    const mem: Storage = { kind: "memory", capacity: 3000 };
    expect(offerStorage(3000, mem, null, false)).toEqual({ kind: "memory", text: storageText(mem), fits: true });
    expect(offerStorage(3001, mem, null, true)).toEqual({
      kind: "memory",
      text: storageText(mem),
      fits: false,
      tooLarge: tooLargeText(mem),
      folder: "Save into a folder…",
    });
    // An earlier attempt's folder is offered again even where the picker itself is missing.
    const again: FolderTarget = { dir: fakeDir("Holiday"), transferId: OFFER.transferId, entries: [] };
    expect(offerStorage(10, mem, again, false).folder).toBe("Continue into “Holiday”");
  });
});

describe("rate and ETA", () => {
  it("count this attempt's bytes since the accept, with no ETA until there is a rate", () => {
    const m = new ProgressMeter(1000, 0, 4000);
    expect(m.event(1000, "a", 0, false)).toEqual({ event: "progress", file: "a", bytes_done: 0, total: 4000, rate_bps: 0, eta_secs: null });
    expect(m.event(1500, "a", 1000, false)).toEqual({ event: "progress", file: "a", bytes_done: 1000, total: 4000, rate_bps: 2000, eta_secs: 1 });
    // Bytes held before the attempt are not this attempt's rate.
    const resumed = new ProgressMeter(0, 3000, 4000);
    expect(resumed.rate(2000, 3500)).toBe(250);
    expect(resumed.secs(2500)).toBe(2.5);
  });

  it("go out at most every 100 ms unless forced", () => {
    const m = new ProgressMeter(0, 0, 100);
    expect(m.event(10, "a", 1, false)).not.toBeNull();
    expect(m.event(60, "a", 2, false)).toBeNull();
    expect(m.event(70, "a", 100, true)).not.toBeNull();
    expect(m.event(171, "a", 100, false)).not.toBeNull();
  });
});

describe("the Worker's events as FerryEvents", () => {
  const mapper = () => {
    const out: FerryEvent[] = [];
    const clock = { t: 0 };
    return { out, clock, ev: new ReceiveEvents((e) => out.push(e), () => clock.t) };
  };

  it("say the offer (folders marked), overall progress, file results, and done with the accept-to-end seconds", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    clock.t = 5000; // the person took five seconds to decide; they are not transfer time
    ev.accepted();
    ev.worker({ type: "offer", offer: OFFER });
    clock.t = 5500;
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000 });
    ev.worker({ type: "file-done", path: "photos/a.jpg", hash: "ab" });
    ev.worker({ type: "chunk-rejected", file: "photos/b.jpg", offset: 0 });
    ev.worker({ type: "file-failed", path: "photos/b.jpg", code: "disk-full", message: "full" });
    clock.t = 7000;
    ev.worker({ type: "done", ...STATS });
    out.push(ev.done());
    expect(out).toEqual([
      { event: "offer", transfer_id: OFFER.transferId, files: [{ path: "photos", size: 0, dir: true }, { path: "photos/a.jpg", size: 1000 }, { path: "photos/b.jpg", size: 3000 }], total: 4000 },
      { event: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000, rate_bps: 2000, eta_secs: 1 },
      { event: "file-done", path: "photos/a.jpg", hash: "ab" },
      { event: "chunk-rejected", file: "photos/b.jpg", offset: 0 },
      { event: "file-failed", path: "photos/b.jpg", code: "disk-full", message: "full" },
      { event: "done", bytes: 4000, secs: 2, transfer_id: OFFER.transferId },
    ]);
  });

  it("say resuming exactly as the Worker held it, and rate only the new bytes", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    ev.accepted();
    // a.jpg held 700 bytes, b.jpg 2100: the first progress (a whole 256 KiB chunk away from
    // what an estimate could tell apart) changes nothing of it.
    ev.worker({ type: "resuming", bytes_done: 2800, total: 4000 });
    clock.t = 1000;
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 3100, total: 4000 });
    ev.worker({ type: "file-done", path: "photos/a.jpg", hash: "ab" });
    clock.t = 2000;
    ev.worker({ type: "progress", file: "photos/b.jpg", bytes_done: 4000, total: 4000 });
    expect(out.slice(1)).toEqual([
      { event: "resuming", bytes_done: 2800, total: 4000 },
      { event: "progress", file: "photos/a.jpg", bytes_done: 3100, total: 4000, rate_bps: 300, eta_secs: 3 },
      { event: "file-done", path: "photos/a.jpg", hash: "ab" },
      { event: "progress", file: "photos/b.jpg", bytes_done: 4000, total: 4000, rate_bps: 600, eta_secs: 0 },
    ]);
    // The fold shows the whole transfer's figures.
    const s = out.reduce(reduce, initialState("receive"));
    expect(s.bytesDone).toBe(4000);
    expect(s.total).toBe(4000);
  });

  it("never guess a resume from progress: without the Worker's resuming the attempt started at 0", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    ev.accepted();
    clock.t = 1000;
    // One 1000-byte file whole in the first progress, then more: all of it moved in this attempt.
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000 });
    clock.t = 2000;
    ev.worker({ type: "progress", file: "photos/b.jpg", bytes_done: 3500, total: 4000 });
    expect(out.slice(1)).toEqual([
      { event: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000, rate_bps: 1000, eta_secs: 3 },
      { event: "progress", file: "photos/b.jpg", bytes_done: 3500, total: 4000, rate_bps: 1750, eta_secs: 0 },
    ]);
  });

  it("end a text with its UTF-8 length", () => {
    const { out, ev } = mapper();
    ev.worker({ type: "text", transfer_id: "0123abcd-r", text: "héllo" });
    out.push(ev.textDone("héllo"));
    expect(out).toEqual([
      { event: "text", transfer_id: "0123abcd-r", text: "héllo" },
      { event: "done", bytes: 6, secs: 0 },
    ]);
  });
});

describe("the connection's path", () => {
  const cand = (id: string, type: "local-candidate" | "remote-candidate", candidateType: string, address = "10.0.0.1", port = 5000) => ({
    id,
    type,
    candidateType,
    address,
    port,
  });

  it("reads the selected pair (Chromium's transport, Firefox's flag) as the less direct end", () => {
    const chromium = [
      { id: "T", type: "transport", selectedCandidatePairId: "P2" },
      { id: "P1", type: "candidate-pair", localCandidateId: "L1", remoteCandidateId: "R1", nominated: true, state: "succeeded" },
      { id: "P2", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R1" },
      cand("L1", "local-candidate", "host"),
      cand("L2", "local-candidate", "relay"),
      cand("R1", "remote-candidate", "srflx"),
    ];
    expect(selectedPath(chromium)).toEqual({ path: "relayed", kind: "relay" });
    const firefox = [
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true },
      cand("L", "local-candidate", "host"),
      cand("R", "remote-candidate", "srflx"),
    ];
    expect(selectedPath(firefox)).toEqual({ path: "direct", kind: "srflx" });
    expect(selectedPath([])).toEqual({ path: "direct", kind: "unknown" });
  });

  it("reads a remote prflx as the candidate announced at that address", () => {
    const stats = [
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true },
      cand("L", "local-candidate", "host"),
      cand("R", "remote-candidate", "prflx", "192.168.1.9", 6000),
      cand("R2", "remote-candidate", "host", "192.168.1.9", 6000),
    ];
    expect(selectedPath(stats)).toEqual({ path: "direct", kind: "host" });
    stats.pop();
    expect(selectedPath(stats)).toEqual({ path: "direct", kind: "prflx" });
  });
});

describe("the done report and errors", () => {
  it("offers blobs as object URLs and says where the files went, with the done card's figures", () => {
    const blob = new Blob([new Uint8Array(1000)]);
    const files = [{ path: "photos/a.jpg", blob }, { path: "photos/b.jpg", size: 3000 }];
    const urls: Blob[] = [];
    const mk = (b: Blob) => {
      urls.push(b);
      return `blob:${urls.length}`;
    };
    expect(buildReport(files, STATS, "disk", null, mk)).toEqual({
      files: [
        { path: "photos/a.jpg", size: 1000, url: "blob:1" },
        { path: "photos/b.jpg", size: 3000 },
      ],
      data: { storage: "disk", resumed: 0, compressed: 3, rejected: 1 },
    });
    expect(buildReport([], STATS, "folder", "Holiday", mk).note).toBe("Saved in the folder “Holiday”.");
    expect(buildReport([], STATS, "stream", null, mk).note).toBe("Saved to your downloads as they arrived.");
  });

  it("keeps the WebError's code, says io otherwise, and adds the stopped-downloads tail", () => {
    expect(errorEvent(new WebError("peer-left", "gone"), false)).toEqual({ event: "error", code: "peer-left", message: "gone" });
    expect(errorEvent(new Error("boom"), true)).toEqual({ event: "error", code: "io", message: `boom${STOPPED_DOWNLOADS}` });
    expect(folderError(new DOMException("closed", "AbortError")).code).toBe("picker-aborted");
    expect(folderError(new WebError("permission-denied", "no"))).toEqual({ code: "permission-denied", message: "no" });
  });
});

// ---- the run, with a scripted Worker --------------------------------------------------------

type Post = (m: FromWorker, at?: number) => void;

class FakeWorker {
  onmessage: ((ev: MessageEvent<FromWorker>) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  got: ToWorker[] = [];
  terminated = false;

  constructor(
    private readonly clock: { t: number },
    private readonly script: (m: ToWorker, post: Post) => void,
  ) {}

  postMessage(m: ToWorker): void {
    this.got.push(m);
    // Messages cross threads: nothing is answered within the sender's own turn.
    setTimeout(() =>
      this.script(m, (out, at) =>
        setTimeout(() => {
          if (at !== undefined) this.clock.t = at;
          if (!this.terminated) this.onmessage?.({ data: out } as MessageEvent<FromWorker>);
        }),
      ),
    );
  }

  terminate(): void {
    this.terminated = true;
  }
}

function fakeLink() {
  const sent: Uint8Array[] = [];
  const state = { closed: false, pcClosed: false };
  const stats = new Map<string, object>([
    ["P", { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true }],
    ["L", { id: "L", type: "local-candidate", candidateType: "host" }],
    ["R", { id: "R", type: "remote-candidate", candidateType: "host" }],
  ]);
  const link = {
    maxMessageSize: 16 * 1024,
    caps: [],
    pc: {
      getStats: async () => stats,
      close: () => {
        state.pcClosed = true;
      },
    },
    handOff: () => undefined,
    send: async (f: Uint8Array) => {
      if (state.closed) throw new WebError("peer-left", "closed");
      sent.push(f);
    },
    close: async () => {
      state.closed = true;
    },
    get isOpen() {
      return !state.closed;
    },
  };
  return { link: link as unknown as DcLink, sent, state };
}

const controlType = (frame: Uint8Array | ArrayBuffer) => {
  const f = new ControlReassembler().push(new Uint8Array(frame));
  return f?.kind === "control" ? f.control.type : null;
};

interface Harness {
  events: FerryEvent[];
  kinds: () => string[];
  worker: FakeWorker;
  link: ReturnType<typeof fakeLink>;
  sig: { closed: boolean };
  run: ReturnType<typeof startReceive>;
}

function harness(script: (m: ToWorker, post: Post) => void, opts: { join?: typeof join; sw?: ServiceWorker | null } = {}): Harness {
  const clock = { t: 1000 };
  const events: FerryEvent[] = [];
  const worker = new FakeWorker(clock, script);
  const link = fakeLink();
  const sig = { closed: false };
  const joinFake = (async (o: Parameters<typeof join>[0]) => {
    o.onEvent?.({ type: "joined", room: o.room });
    o.onEvent?.({ type: "connecting" });
    return {
      link: link.link,
      verification: "acid-bath-comet",
      sig: {
        close: () => {
          sig.closed = true;
        },
      },
    };
  }) as unknown as typeof join;
  const run = startReceive({
    server: "",
    room: "ABCDEFGHJK",
    password: "pw",
    onEvent: (e) => events.push(e),
    sink: "auto",
    worker: () => worker as unknown as Worker,
    join: opts.join ?? joinFake,
    registerDownloads: async () => opts.sw ?? null,
    now: () => clock.t,
  });
  return { events, kinds: () => events.map((e) => e.event), worker, link, sig, run };
}

const MEMORY: Storage = { kind: "memory", capacity: MAX_IN_MEMORY };

/** Offers `offer` into `storage`; on a yes, the files arrive and the run ends as `end` says. */
function offering(offer: Offer, storage: Storage, end: "ok" | "peer-left" = "ok"): (m: ToWorker, post: Post) => void {
  return (m, post) => {
    if (m.t === "start") {
      post({ t: "event", e: { type: "offer", offer } });
      post({ t: "decide", offer, storage });
    } else if (m.t === "decision" && !m.accept) {
      post({ t: "end", ok: false, code: "declined", message: "you declined the files" });
    } else if (m.t === "decision") {
      post({ t: "event", e: { type: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000 } }, 1500);
      post({ t: "event", e: { type: "file-done", path: "photos/a.jpg", hash: "aa" } });
      if (end === "peer-left") {
        post({ t: "end", ok: false, code: "peer-left", message: "the link closed during the transfer" });
        return;
      }
      post({ t: "event", e: { type: "progress", file: "photos/b.jpg", bytes_done: 4000, total: 4000 } }, 2000);
      post({ t: "event", e: { type: "file-done", path: "photos/b.jpg", hash: "bb" } });
      post({ t: "event", e: { type: "done", ...STATS } });
      const blob = (n: number) => new Blob([new Uint8Array(n)]);
      post({ t: "end", ok: true, stats: STATS, files: [{ path: "photos/a.jpg", blob: blob(1000) }, { path: "photos/b.jpg", blob: blob(3000) }] });
    }
  };
}

describe("a receive run", () => {
  it("joins, offers, and on Accept reports the transfer as the native receiver does", async () => {
    const h = harness(offering(OFFER, MEMORY));
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    expect(h.kinds()).toEqual(["connecting", "connected", "verification", "offer"]);
    expect(h.events[1]).toEqual({ event: "connected", path: "direct", kind: "host" });
    expect(h.events[2]).toEqual({ event: "verification", words: "acid-bath-comet" });
    expect(h.sig.closed).toBe(true);
    expect(h.run.storage()).toEqual({ kind: "memory", text: storageText(MEMORY), fits: true });
    expect(h.worker.got[0]).toMatchObject({ t: "start", maxBytes: MAX_IN_MEMORY, sink: "auto", streams: false });
    expect(h.run.report()).toBeNull();

    await h.run.accept();
    expect(h.run.storage()).toBeNull();
    await h.run.ended;
    expect(h.worker.got).toContainEqual({ t: "decision", accept: true });
    expect(h.kinds()).toEqual(["connecting", "connected", "verification", "offer", "progress", "file-done", "progress", "file-done", "done"]);
    expect(h.events[4]).toEqual({ event: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000, rate_bps: 2000, eta_secs: 1 });
    expect(h.events.at(-1)).toEqual({ event: "done", bytes: 4000, secs: 1, transfer_id: OFFER.transferId });
    const report = h.run.report();
    expect(report?.data).toEqual({ storage: "memory", resumed: 0, compressed: 3, rejected: 1 });
    expect(report?.note).toBeUndefined();
    expect(report?.files?.map((f) => [f.path, f.size, typeof f.url])).toEqual([
      ["photos/a.jpg", 1000, "string"],
      ["photos/b.jpg", 3000, "string"],
    ]);
    h.run.dispose();
    const s = h.events.reduce(reduce, initialState("receive"));
    expect(s.phase).toBe("done");
    expect(s.bytesDone).toBe(4000);
    expect(s.files.every((f) => f.finished)).toBe(true);
  });

  it("keeps Accept off for an offer that does not fit; Decline ends it as cancelled, once", async () => {
    const small: Storage = { kind: "memory", capacity: 3000 };
    const h = harness(offering(OFFER, small));
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    expect(h.run.storage()?.fits).toBe(false);
    expect(h.run.storage()?.tooLarge).toBe(tooLargeText(small));
    await expect(h.run.accept()).rejects.toMatchObject({ code: "too-large" });
    expect(h.run.storage()).not.toBeNull();
    h.run.cancel();
    expect(h.events.at(-1)).toMatchObject({ event: "error", code: "cancelled" });
    await h.run.ended;
    expect(h.worker.got).toContainEqual({ t: "decision", accept: false });
    expect(h.kinds().filter((k) => k === "error")).toHaveLength(1);
    expect(h.run.storage()).toBeNull();
  });

  /** A Worker mid-transfer; on the page's `cancel` it tells the sender (as receive.ts does),
   * unless `stuck`, and ends as cancelled. */
  const transferring = (started: () => void, stuck = false) => (m: ToWorker, post: Post) => {
    if (m.t === "start") post({ t: "decide", offer: OFFER, storage: MEMORY });
    if (m.t === "decision") {
      post({ t: "event", e: { type: "progress", file: "photos/a.jpg", bytes_done: 500, total: 4000 } }, 1200);
      started();
    }
    if (m.t === "cancel" && !stuck) {
      const data = encodeControl({ type: "cancel", reason: "receiver cancelled" }).slice().buffer;
      post({ t: "send", data });
      post({ t: "event", e: { type: "progress", file: "photos/a.jpg", bytes_done: 600, total: 4000 } }, 1400);
      post({ t: "close", drainMs: 500 });
      post({ t: "end", ok: false, code: "cancelled", message: "you cancelled the transfer" });
    }
  };

  it("cancelled mid-transfer asks the Worker to cancel, which tells the sender once, and says nothing after", async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const h = harness(transferring(started));
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    await h.run.accept();
    await running;
    await vi.waitFor(() => expect(h.kinds()).toContain("progress"));
    h.run.cancel();
    expect(h.events.at(-1)).toEqual({ event: "error", code: "cancelled", message: "you cancelled the transfer" });
    const count = h.events.length;
    await h.run.ended;
    expect(h.worker.got.filter((m) => m.t === "cancel")).toHaveLength(1);
    // No frame made up as if the sender had sent it.
    expect(h.worker.got.some((m) => m.t === "frame")).toBe(false);
    expect(h.link.sent.map(controlType)).toEqual(["cancel"]);
    expect(h.link.state.closed).toBe(true);
    expect(h.events).toHaveLength(count);
  });

  it("a Worker stuck past the cancel: after 3 s the page tells the sender itself and closes the link", async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const h = harness(transferring(started, true));
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    await h.run.accept();
    await running;
    vi.useFakeTimers();
    try {
      h.run.cancel();
      await vi.advanceTimersByTimeAsync(2_900);
      expect(h.worker.got.filter((m) => m.t === "cancel")).toHaveLength(1);
      expect(h.link.state.closed).toBe(false);
      expect(h.link.sent).toEqual([]);
      await vi.advanceTimersByTimeAsync(200);
      expect(h.link.sent.map(controlType)).toEqual(["cancel"]);
      expect(h.link.state.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it("adds the stopped-downloads tail when streamed downloads had started", async () => {
    const stream: Storage = { kind: "stream", capacity: Number.MAX_SAFE_INTEGER };
    const sw = { postMessage: () => undefined } as unknown as ServiceWorker;
    const h = harness(
      (m, post) => {
        if (m.t === "start") post({ t: "decide", offer: OFFER, storage: stream });
        if (m.t === "decision") {
          post({ t: "download", req: { id: "00ff", name: "a.jpg", size: 1000, port: new MessageChannel().port1 } });
          post({ t: "end", ok: false, code: "peer-left", message: "the link closed during the transfer" });
        }
      },
      { sw },
    );
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    expect(h.worker.got[0]).toMatchObject({ t: "start", streams: true });
    expect(h.run.storage()).toMatchObject({ kind: "stream", text: storageText(stream), fits: true });
    await h.run.accept();
    await h.run.ended;
    expect(h.events.at(-1)).toEqual({ event: "error", code: "peer-left", message: `the link closed during the transfer${STOPPED_DOWNLOADS}` });
  });

  it("receives a text: text, then done with its length", async () => {
    const h = harness((m, post) => {
      if (m.t !== "start") return;
      post({ t: "event", e: { type: "text", transfer_id: "0123abcd-r", text: "hi 🚢" } });
      post({ t: "end", ok: true, text: "hi 🚢" });
    });
    await h.run.ended;
    expect(h.events.slice(3)).toEqual([
      { event: "text", transfer_id: "0123abcd-r", text: "hi 🚢" },
      { event: "done", bytes: 7, secs: 0 },
    ]);
    expect(h.run.report()).toBeNull();
  });

  it("reports a failed join with its code", async () => {
    const failing = (async () => {
      throw new WebError("wrong-password", "wrong password, or the signaling server interfered with the handshake");
    }) as unknown as typeof join;
    const h = harness(() => undefined, { join: failing });
    await h.run.ended;
    expect(h.events).toEqual([{ event: "error", code: "wrong-password", message: "wrong password, or the signaling server interfered with the handshake" }]);
  });

  it("cancelled while joining, closes the link as soon as it is up and says nothing more", async () => {
    let joined!: () => void;
    const h0 = fakeLink();
    const slow = (async (o: Parameters<typeof join>[0]) => {
      o.onEvent?.({ type: "connecting" });
      await new Promise<void>((r) => (joined = r));
      return { link: h0.link, verification: "x", sig: { close: () => undefined } };
    }) as unknown as typeof join;
    const h = harness(() => undefined, { join: slow });
    await vi.waitFor(() => expect(h.kinds()).toEqual(["connecting"]));
    h.run.cancel();
    joined();
    await h.run.ended;
    expect(h.kinds()).toEqual(["connecting", "error"]);
    expect(h0.state.closed).toBe(true);
    expect(h.worker.got).toEqual([]);
  });
});

describe("saving into a folder", () => {
  const FOLDER_OFFER: Offer = { ...OFFER, transferId: "0123456789abcdef" };
  const notFound = async () => {
    throw new DOMException("not there", "NotFoundError");
  };
  const dir = {
    name: "Holiday",
    kind: "directory",
    getFileHandle: notFound,
    getDirectoryHandle: notFound,
    isSameEntry: async (other: unknown) => other === dir,
    queryPermission: async () => "granted",
  } as unknown as FileSystemDirectoryHandle;
  let picks = 0;
  let pickResult: () => Promise<FileSystemDirectoryHandle> = async () => dir;
  beforeEach(() => {
    (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker = () => {
      picks += 1;
      return pickResult();
    };
  });
  afterEach(() => {
    delete (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker;
  });

  it("keeps the offer when the picker is closed, saves into the folder picked next, and continues there after a dropped link", async () => {
    const h = harness(offering(FOLDER_OFFER, MEMORY, "peer-left"));
    await vi.waitFor(() => expect(h.run.storage()).not.toBeNull());
    expect(h.run.storage()?.folder).toBe("Save into a folder…");

    pickResult = async () => {
      throw new DOMException("closed", "AbortError");
    };
    await expect(h.run.acceptIntoFolder()).rejects.toEqual({ code: "picker-aborted", message: expect.stringMatching(/^No folder was picked\./) });
    expect(h.run.storage()).not.toBeNull();

    pickResult = async () => dir;
    await h.run.acceptIntoFolder();
    const decision = h.worker.got.find((m) => m.t === "decision");
    expect(decision).toMatchObject({ t: "decision", accept: true, folder: { dir, transferId: FOLDER_OFFER.transferId } });
    expect((decision as { folder: FolderTarget }).folder.entries).toEqual([
      { path: "photos", ours: false, dir: true },
      { path: "photos/a.jpg", ours: false, dir: false },
      { path: "photos/b.jpg", ours: false, dir: false },
    ]);
    await h.run.ended;
    expect(h.events.at(-1)).toMatchObject({ event: "error", code: "peer-left" });

    // The next attempt of the same transfer continues into that folder, without the picker.
    const picked = picks;
    const again = harness(offering(FOLDER_OFFER, MEMORY));
    await vi.waitFor(() => expect(again.run.storage()).not.toBeNull());
    expect(again.run.storage()?.folder).toBe("Continue into “Holiday”");
    await again.run.acceptIntoFolder();
    expect(picks).toBe(picked);
    const d2 = again.worker.got.find((m) => m.t === "decision") as { folder: FolderTarget };
    expect(d2.folder.entries.map((e) => e.ours)).toEqual([false, true, true]);
    await again.run.ended;
    expect(again.run.report()?.note).toBe("Saved in the folder “Holiday”.");
    expect(again.run.report()?.data?.storage).toBe("folder");
  });
});
