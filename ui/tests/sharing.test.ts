// Sharing as people do it: text snippets and room expiry in the controller and views,
// against mocked Tauri IPC.
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "../src/app";
import type { FerryEvent, HistoryEntry } from "../src/ipc";
import { initialState, reduce } from "../src/state";
import { parseLifetime } from "../src/lifetime";
import { TEXT_MAX_BYTES, textBudget } from "../src/views/send";

type Handler = (e: FerryEvent) => void;

let calls: Record<string, Record<string, unknown>[]>;
let channel: Handler | null;
let history: HistoryEntry[];
let app: App;

const tick = () => new Promise((r) => setTimeout(r, 0));
const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;
const text = (sel: string) => $(sel)?.textContent ?? "";
const click = async (sel: string) => {
  const el = $(sel);
  if (!el) throw new Error(`no ${sel} in ${document.body.innerHTML}`);
  el.click();
  await tick();
  await tick();
};
const emit = async (...events: FerryEvent[]) => {
  for (const e of events) channel?.(e);
  await tick();
};
const type = (sel: string, value: string) => {
  const el = $(sel) as HTMLTextAreaElement;
  el.value = value;
  el.dispatchEvent(new Event("input"));
};

const SNIPPET = "héllo 🚢\r\nsecond line\n\n";

beforeEach(async () => {
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
  calls = {};
  channel = null;
  history = [];
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    (calls[cmd] ??= []).push(a);
    if (a.onEvent) channel = (e) => (a.onEvent as { onmessage: Handler }).onmessage(e);
    switch (cmd) {
      case "settings_get":
        return { server_url: "", stun: [], turn: [], download_dir: "/dl", theme: "system" };
      case "signal_url":
        return "ws://127.0.0.1:1";
      case "send_text":
      case "receive_start":
        return 9;
      case "history_list":
        return history;
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

test("text: the Send screen's box sends exactly what was typed, with the own password", async () => {
  expect(($("#send-text-button") as HTMLButtonElement).disabled).toBe(true);
  type("#send-text", SNIPPET);
  (document.getElementById("own-password") as HTMLInputElement).value = "pw-mine";
  expect(($("#send-text-button") as HTMLButtonElement).disabled).toBe(false);
  await click("#send-text-button");
  expect(calls.send_text?.[0]).toMatchObject({ text: SNIPPET, password: "pw-mine" });
  await emit({ event: "room-created", room: "ABCDEFGHJK", password: "pw-mine", link: "ferry://join/ABCDEFGHJK#pw-mine", expires_at: 1.9e9 });
  expect(text("#room-id")).toBe("ABCDE-FGHJK");
  await emit({ event: "connected", path: "direct" }, { event: "done", bytes: 22, secs: 0.1 });
  expect(text("#status")).toBe("Text sent");
  expect($("#text-title")?.textContent).toBe("Text sent");
  expect($("#overall-bar")).toBeNull();
});

test("text: over the limit the box says so and the button stays off", () => {
  type("#send-text", "é".repeat(TEXT_MAX_BYTES / 2 + 1));
  expect(($("#send-text-button") as HTMLButtonElement).disabled).toBe(true);
  expect(text("#send-text-budget")).toContain("Too long");
  expect(textBudget("x".repeat(TEXT_MAX_BYTES)).over).toBe(false);
  expect(textBudget("🚢").bytes).toBe(4);
});

test("text: the receiver sees the snippet exactly, with a Copy button, and no folder button", async () => {
  app.join("ABCDE-FGHJK", "pw");
  await tick();
  await emit({ event: "connected", path: "direct" }, { event: "text", transfer_id: "t-r", text: SNIPPET });
  expect($("#received-text")?.textContent).toBe(SNIPPET);
  await emit({ event: "done", bytes: 22, secs: 0.1, transfer_id: "t-r" });
  expect(text("#status")).toBe("Text received");
  expect($("#received-text")?.textContent).toBe(SNIPPET);
  expect($("#copy-text")).not.toBeNull();
  expect($("#reveal")).toBeNull();
  expect($("#overall-bar")).toBeNull();
});

test("text: the state keeps the snippet and counts its bytes", () => {
  const s = reduce(initialState("receive"), { event: "text", transfer_id: "x", text: "🚢\n" });
  expect(s.isText).toBe(true);
  expect(s.text).toBe("🚢\n");
  expect(s.total).toBe(5);
});

test("history: a snippet is listed as text, not as a file", async () => {
  history = [
    { transfer_id: "t9-r", direction: "receive", kind: "text", name: "Text snippet", files: 0, bytes: 42, bytes_done: 42, peer: null, state: "done", started_at: 1.7e9, secs: 1, resumable: false },
    { transfer_id: "t1", direction: "send", kind: "files", name: "a.iso", files: 1, bytes: 5e9, bytes_done: 5e9, peer: null, state: "done", started_at: 1.7e9, secs: 40, resumable: false },
  ];
  app.go("history");
  await tick();
  await tick();
  const row = $('tr[data-id="t9-r"]')!;
  expect(row.querySelector(".badge.text")?.textContent).toBe("Text");
  expect(row.textContent).toContain("Text snippet");
  expect($('tr[data-id="t1"]')?.textContent).toContain("a.iso");
});

// ---- expiry --------------------------------------------------------------------------------

const select = (sel: string, value: string) => {
  const el = $(sel) as HTMLSelectElement;
  el.value = value;
  el.dispatchEvent(new Event("change"));
};

test("expiry: the picked lifetime goes with the send; custom values read like 45m", async () => {
  select("#expiry-picker", String(24 * 3600));
  type("#send-text", "hi");
  await click("#send-text-button");
  expect(calls.send_text?.[0]).toMatchObject({ ttlSecs: 86400 });
  app.back();
  await tick();
  select("#expiry-picker", "custom");
  expect(($("#expiry-custom") as HTMLInputElement).hidden).toBe(false);
  type("#expiry-custom", "45m");
  expect(text("#expiry-note")).toBe("45 minutes");
  type("#send-text", "again");
  await click("#send-text-button");
  expect(calls.send_text?.[1]).toMatchObject({ ttlSecs: 2700 });
  expect(parseLifetime("1h30m")).toBe(5400);
  expect(parseLifetime("soon")).toBeNull();
});

test("expiry: the room card counts down, says when capped, extends and closes", async () => {
  app.dispose();
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
  try {
    vi.setSystemTime(new Date(1_800_000_000_000));
    document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
    app = new App($("#main")!, $("#nav"));
    await app.init();
    select("#expiry-picker", "600");
    type("#send-text", "hi");
    await click("#send-text-button");
    const now = 1_800_000_000;
    await emit({ event: "room-created", room: "ABCDEFGHJK", password: "p", link: "ferry://join/ABCDEFGHJK#p", expires_at: now + 600, capped: false });
    expect(text("#expiry")).toBe("10:00");
    expect($("#expiry-capped")).toBeNull();
    vi.advanceTimersByTime(5000);
    expect(text("#expiry")).toBe("09:55");
    expect(text("#extend-room")).toBe("Keep open 10 minutes more");

    await click("#extend-room");
    expect(calls.extend_room?.[0]).toEqual({ id: 9, ttlSecs: 600 });
    await emit({ event: "room-extended", expires_at: now + 5 + 3600 });
    expect(text("#expiry")).toBe("1:00:00");
    vi.advanceTimersByTime(1000);
    expect(text("#expiry")).toBe("59:59");

    await click("#close-room");
    expect(calls.close_room?.[0]).toEqual({ id: 9 });
    expect($("#send-text")).not.toBeNull();
  } finally {
    vi.useRealTimers();
  }
});

test("expiry: a lifetime the server capped is marked on the room card", async () => {
  type("#send-text", "hi");
  await click("#send-text-button");
  await emit({ event: "room-created", room: "ABCDEFGHJK", password: "p", link: "l", expires_at: Date.now() / 1000 + 60, capped: true });
  expect(text("#expiry-capped")).toContain("server's longest");
  const s = reduce(reduce(initialState("send"), { event: "room-created", room: "R", password: "p", link: "l", expires_at: 5, capped: true }), { event: "room-extended", expires_at: 99 });
  expect(s.expiresAt).toBe(99);
});
