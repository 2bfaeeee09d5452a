// A room for several receivers in the controller and views, against mocked Tauri IPC: the
// Send screen's choice, the room card's list of receivers with progress, stopping one.
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "../src/app";
import type { FerryEvent } from "../src/ipc";
import { foldReceiver, initialState, reduce } from "../src/state";

type Handler = (e: FerryEvent) => void;

let calls: Record<string, Record<string, unknown>[]>;
let channel: Handler | null;
let app: App;

const tick = () => new Promise((r) => setTimeout(r, 0));
const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;
const text = (sel: string) => $(sel)?.textContent ?? "";
const emit = async (...events: FerryEvent[]) => {
  for (const e of events) channel?.(e);
  await tick();
};
const select = (sel: string, value: string) => {
  const el = $(sel) as HTMLSelectElement;
  el.value = value;
  el.dispatchEvent(new Event("change"));
};
const of = (receiver: number, inner: FerryEvent): FerryEvent => ({ event: "receiver", receiver, inner });

beforeEach(async () => {
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
  calls = {};
  channel = null;
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    (calls[cmd] ??= []).push(a);
    if (a.onEvent) channel = (e) => (a.onEvent as { onmessage: Handler }).onmessage(e);
    switch (cmd) {
      case "settings_get":
        return { server_url: "", stun: [], turn: [], download_dir: "/dl", theme: "system" };
      case "signal_url":
        return "ws://127.0.0.1:1";
      case "send_start":
      case "send_many_start":
        return 9;
      case "qr_svg":
        return "<svg></svg>";
      default:
        return null;
    }
  });
  app = new App($("#main")!, $("#nav"));
  await app.init();
});

afterEach(() => {
  app.dispose();
  clearMocks();
});

test("single use stays the default; picking 3 receivers opens a room for several", async () => {
  app.startSend({ kind: "paths", paths: ["/f/a.bin"] });
  await tick();
  await tick();
  expect(calls.send_start?.length).toBe(1);
  expect(calls.send_many_start).toBeUndefined();
  app.dispose();
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
  app = new App($("#main")!, $("#nav"));
  await app.init();
  select("#receivers-picker", "3");
  app.startSend({ kind: "paths", paths: ["/f/a.bin"] });
  await tick();
  await tick();
  expect(calls.send_many_start?.[0]).toMatchObject({ paths: ["/f/a.bin"], receivers: 3 });
});

test("the room card lists each receiver with its progress, and stops one", async () => {
  select("#receivers-picker", "0");
  app.startSend({ kind: "paths", paths: ["/f/a.bin"] });
  await tick();
  await tick();
  expect(calls.send_many_start?.[0]).toMatchObject({ receivers: 0 });
  await emit(
    { event: "room-created", room: "ABCDEFGHJK", password: "p", link: "ferry://join/ABCDEFGHJK#p", expires_at: 2_000_000_000 },
    { event: "waiting" },
    of(1, { event: "peer-joined" }),
    of(2, { event: "peer-joined" }),
    of(1, { event: "connected", path: "direct", kind: "host" }),
    of(1, { event: "progress", file: "a.bin", bytes_done: 500, total: 1000, rate_bps: 100, eta_secs: 5 }),
    of(2, { event: "connected", path: "direct", kind: "host" }),
    of(2, { event: "done", bytes: 1000, secs: 1 }),
  );
  // The room card stays up while receivers come and go.
  expect($("#room-id")).not.toBeNull();
  const rows = document.querySelectorAll("#receivers li");
  expect(rows.length).toBe(2);
  expect(rows[0].textContent).toContain("Receiver 1");
  expect(rows[0].textContent).toContain("500 B / 1.00 KB");
  expect(rows[1].textContent).toContain("Done");
  expect($('[data-stop="2"]')).toBeNull();
  ($('[data-stop="1"]') as HTMLButtonElement).click();
  await tick();
  expect(calls.receiver_stop?.[0]).toEqual({ id: 9, receiver: 1 });
  await emit(of(1, { event: "error", code: "cancelled", message: "cancelled: by the sender" }));
  expect(text('[data-receiver="1"]')).toContain("Ended");
});

test("receivers fold by number, in order, whatever order their events come in", () => {
  let rows = foldReceiver([], 3, { event: "peer-joined" });
  rows = foldReceiver(rows, 1, { event: "connecting" });
  rows = foldReceiver(rows, 3, { event: "progress", file: "a", bytes_done: 10, total: 20, rate_bps: 1, eta_secs: null });
  expect(rows.map((r) => [r.n, r.phase])).toEqual([
    [1, "connecting"],
    [3, "sending"],
  ]);
  const s = [of(2, { event: "peer-joined" })].reduce(reduce, initialState("send"));
  expect(s.phase).toBe("starting");
  expect(s.receivers?.[0].n).toBe(2);
});
