// One UI, two engines: the same controller and views over an engine that can do less (a
// browser's), hiding what it cannot do from its capabilities, and showing what it adds
// (where an offer would be kept, files to save) from its own answers.
import { App } from "../src/app";
import { ALL_CAPS, type Engine, type OfferStorage, type TransferReport } from "../src/engine";
import type { EventHandler, FerryEvent } from "../src/ipc";
import { tauriEngine } from "../src/tauri-engine";

const tick = () => new Promise((r) => setTimeout(r, 0));
const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;

const BROWSER_CAPS = { ...ALL_CAPS, history: false, settings: false, reveal: false, nearby: false, destBeforeJoin: false, manyReceivers: false, extendRoom: false, pause: { send: true, receive: false }, dropFolders: false };

function limitedEngine() {
  let onEvent: EventHandler = () => {};
  const calls: string[] = [];
  const no = (what: string) => () => Promise.reject({ code: "unsupported", message: what });
  let storage: OfferStorage | null = { kind: "disk", text: "Accept keeps the files in this browser's storage.", fits: true, folder: "Save into a folder…" };
  let report: TransferReport | null = null;
  let folderAnswer: () => Promise<void> = () => Promise.reject({ code: "picker-aborted", message: "closed" });
  const engine: Engine = {
    ...tauriEngine,
    caps: BROWSER_CAPS,
    pick: async () => ({ kind: "files", files: [new File(["abc"], "a.txt")] }),
    pickFolder: no("pickFolder"),
    sendStart: async (what, _pw, _ttl, on) => {
      calls.push(`send ${what.kind}`);
      onEvent = on;
      return 1;
    },
    sendManyStart: no("many"),
    receiveStart: async (room, _pw, _srv, dest, on) => {
      calls.push(`receive ${room} dest=${dest}`);
      onEvent = on;
      return 2;
    },
    receiveAccept: async () => {
      calls.push("accept");
    },
    receiveAcceptInto: () => {
      calls.push("accept-into");
      return folderAnswer();
    },
    offerStorage: () => storage,
    report: () => report,
    settingsGet: no("settings"),
    history: no("history"),
    qrSvg: no("qr"),
    signalUrl: async () => "wss://example.test/ws",
    initialLink: async () => null,
    browserLink: (link) => `https://example.test/j/${link.length}`,
  };
  return {
    engine,
    calls,
    emit: async (...es: FerryEvent[]) => {
      for (const e of es) onEvent(e);
      await tick();
    },
    setStorage: (s: OfferStorage | null) => (storage = s),
    setReport: (r: TransferReport | null) => (report = r),
    setFolderAnswer: (p: () => Promise<void>) => (folderAnswer = p),
  };
}

let app: App;

/** The App over the browser-like engine, a join under way. */
async function joining() {
  const t = limitedEngine();
  app = new App($("#main")!, $("#nav"), t.engine);
  await app.init();
  app.join("ABCDE-FGHJK", "pw");
  await tick();
  return t;
}

beforeEach(() => {
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
});
afterEach(() => app.dispose());

test("what the browser cannot do is not offered: no History, Settings, nearby, folder or pause", async () => {
  const t = limitedEngine();
  app = new App($("#main")!, $("#nav"), t.engine);
  await app.init();
  expect($("#nav-history")).toBeNull();
  expect($("#nav-settings")).toBeNull();
  expect($("#nav-send")).not.toBeNull();
  expect($("#main")!.dataset.state).toBe("send");
  expect($("#receivers-picker")).toBeNull();
  expect($(".drop-text")!.textContent).toBe("Drop files anywhere on this page");
  app.go("receive");
  expect($("#find-nearby")).toBeNull();
  expect($("#choose-dest")).toBeNull();
  // No folder asked for before joining.
  app.join("ABCDE-FGHJK", "pw");
  await tick();
  expect(t.calls).toEqual(["receive ABCDEFGHJK dest="]);
  await t.emit(
    { event: "connected", path: "direct" },
    { event: "offer", files: [{ path: "a.bin", size: 10 }], total: 10 },
  );
  expect($("#main")!.dataset.state).toBe("offer");
  expect($("#dest")).toBeNull();
  expect($("#storage")!.dataset.kind).toBe("disk");
  expect(($("#accept") as HTMLButtonElement).disabled).toBe(false);
  await t.emit({ event: "progress", file: "a.bin", bytes_done: 5, total: 10, rate_bps: 1, eta_secs: 5 });
  expect($("#pause")).toBeNull();
  expect($("#cancel")).not.toBeNull();
});

test("an offer too big for the browser's storage cannot be accepted; a refused folder picker says so and keeps the offer", async () => {
  const t = await joining();
  t.setStorage({ kind: "disk", text: "t", fits: false, tooLarge: "No room for 12 GB", folder: "Save into a folder…" });
  await t.emit({ event: "offer", files: [{ path: "big.iso", size: 12e9 }], total: 12e9 });
  expect(($("#accept") as HTMLButtonElement).disabled).toBe(true);
  expect($("#too-large")!.textContent).toBe("No room for 12 GB");
  $("#folder")!.click();
  await tick();
  await tick();
  expect(t.calls).toContain("accept-into");
  expect($("#main")!.dataset.state).toBe("offer");
  expect($("#folder-error")!.dataset.code).toBe("picker-aborted");
  expect($("#folder-error")!.textContent).toMatch(/No folder was picked/);
  // A second try that succeeds starts receiving.
  t.setFolderAnswer(() => Promise.resolve());
  $("#folder")!.click();
  await tick();
  await tick();
  expect($("#main")!.dataset.state).toBe("transferring");
});

test("done: files the page holds become downloads, with the report's note and figures", async () => {
  const t = await joining();
  await t.emit({ event: "offer", files: [{ path: "d/a.bin", size: 3 }], total: 3 });
  $("#accept")!.click();
  await tick();
  t.setReport({ files: [{ path: "d/a.bin", size: 3, url: "blob:x" }], note: "Kept in this browser.", data: { storage: "disk", rejected: 1 } });
  await t.emit({ event: "done", bytes: 3, secs: 1 });
  expect($("#done")!.dataset.storage).toBe("disk");
  expect($("#done")!.dataset.rejected).toBe("1");
  expect($("#done")!.textContent).toBe("Received 1 file, 3 B, every byte verified.");
  expect($("#saved-in")!.textContent).toBe("Kept in this browser.");
  const a = $("#file-0") as HTMLAnchorElement;
  expect(a.getAttribute("href")).toBe("blob:x");
  expect(a.getAttribute("download")).toBe("a.bin");
  expect(a.dataset.path).toBe("d/a.bin");
  expect($("#reveal")).toBeNull();
});

test("a browser sender's room card shows the engine's browser link and no Extend", async () => {
  const t = limitedEngine();
  app = new App($("#main")!, $("#nav"), t.engine);
  await app.init();
  await app.pick(false);
  await tick();
  expect(t.calls).toEqual(["send files"]);
  await t.emit({ event: "room-created", room: "ABCDEFGHJK", password: "pw", link: "ferry://join/x", expires_at: Date.now() / 1000 + 600 });
  expect($("#room-web-link")!.textContent).toBe("https://example.test/j/14");
  expect($("#extend-room")).toBeNull();
  expect($("#close-room")).not.toBeNull();
  await t.emit({ event: "error", code: "room-expired", message: "gone" });
  expect($("#error")!.dataset.code).toBe("room-expired");
});

test("the web engine draws the room card's QR code as an SVG the card can show", async () => {
  const { WebEngine } = await import("../src/web/engine");
  const engine = new WebEngine({ protocol: "https:", host: "ferry.example", origin: "https://ferry.example", pathname: "/", search: "?send", hash: "" });
  const link = engine.browserLink("ferry://join/ABCDE-FGHJK?server=wss%3A%2F%2Fferry.example%2Fws#gladly-brave");
  expect(link).toBe("https://ferry.example/j/ABCDE-FGHJK#gladly-brave");
  const svg = await engine.qrSvg(link ?? "");
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  expect(doc.documentElement.nodeName.toLowerCase()).toBe("svg");
  // Presentation attributes only: the page's CSP allows no inline styles.
  expect(svg).not.toMatch(/style=/);
  // Longer text, more modules.
  expect((await engine.qrSvg(`${link}-and-more-words-to-encode-here`)).length).toBeGreaterThan(svg.length);
});
