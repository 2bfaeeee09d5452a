// The browser receiver without its page (ui/src/web/receive-run.ts), driven through joining,
// the offer decision, the transfer and its end with a scripted Worker that speaks
// link-port.ts's messages. Its pure parts are web-receive-parts.test.ts; the real Worker, data
// channel and sinks run in the browser end-to-end tests (ui/e2e/).
import type { FerryEvent } from "../src/ipc";
import { initialState, reduce } from "../src/state";
import { ControlReassembler, encodeControl } from "../src/web/frames";
import type { FromWorker, Storage, ToWorker } from "../src/web/link-port";
import type { Offer } from "../src/web/receive";
import { MAX_IN_MEMORY, startReceive, STOPPED_DOWNLOADS, storageText, tooLargeText } from "../src/web/receive-run";
import { type DcLink, type join, WebError } from "../src/web/session";
import type { FolderTarget } from "../src/web/sink-folder";
import { OFFER, STATS } from "./web-receive-fixtures";

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
    // The Worker started before joining (to load while the link came up) ends with the run.
    expect(h.worker.terminated).toBe(true);
    expect(h.worker.got).toEqual([]);
  });

  it("starts its Worker before joining, so the Worker's script and hashing module load meanwhile", async () => {
    let workerAtJoin: boolean | null = null;
    let made = 0;
    const fake = new FakeWorker({ t: 0 }, () => undefined);
    const run = startReceive({
      server: "",
      room: "ABCDEFGHJK",
      password: "pw",
      onEvent: () => undefined,
      sink: "auto",
      worker: () => {
        made += 1;
        return fake as unknown as Worker;
      },
      join: (async () => {
        workerAtJoin = made === 1;
        throw new WebError("wrong-password", "wrong password");
      }) as unknown as typeof join,
      registerDownloads: async () => null,
    });
    await run.ended;
    expect(workerAtJoin).toBe(true);
    expect(made).toBe(1);
    expect(fake.terminated).toBe(true);
  });

  it("a Worker that failed to load while joining fails the run with what it said, instead of waiting on it", async () => {
    const h = harness(offering(OFFER, MEMORY));
    h.worker.onerror?.({ message: "Failed to fetch a worker script" } as ErrorEvent);
    await h.run.ended;
    expect(h.events.at(-1)).toEqual({ event: "error", code: "io", message: "receiver worker failed: Failed to fetch a worker script" });
    expect(h.worker.got).toEqual([]);
    expect(h.worker.terminated).toBe(true);
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
