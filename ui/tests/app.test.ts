// The controller and views against mocked Tauri IPC: what a user sees after each event.
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "../src/app";
import type { FerryEvent, Settings } from "../src/ipc";

type Handler = (e: FerryEvent) => void;
interface Calls {
  [cmd: string]: Record<string, unknown>[];
}

let calls: Calls;
let channel: Handler | null;
let settings: Settings;
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

beforeEach(async () => {
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div><div id="drop-overlay" hidden></div>';
  calls = {};
  channel = null;
  settings = { server_url: "", stun: [], turn: [], download_dir: "/home/me/Downloads", theme: "system", announce: true, device_name: "" };
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    (calls[cmd] ??= []).push(a);
    if (a.onEvent) channel = (e) => (a.onEvent as { onmessage: Handler }).onmessage(e);
    switch (cmd) {
      case "settings_get":
        return settings;
      case "settings_set":
        settings = a.settings as Settings;
        return null;
      case "initial_link":
        return null;
      case "signal_url":
        return "ws://127.0.0.1:45678";
      case "pick_paths":
        return ["/tmp/report.pdf"];
      case "pick_folder":
        return "/data/incoming";
      case "send_start":
      case "receive_start":
      case "history_resume":
        return 7;
      case "qr_svg":
        return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>';
      case "history_list":
        return [
          { transfer_id: "t1", direction: "send", name: "a.iso", files: 1, bytes: 5e9, bytes_done: 5e9, peer: "laptop", state: "done", started_at: 1.7e9, secs: 40, resumable: false },
          { transfer_id: "t2", direction: "receive", name: "b.mov", files: 3, bytes: 2e9, bytes_done: 1e9, peer: null, state: "active", started_at: 1.7e9, resumable: true, out_dir: "/media/usb" },
          { transfer_id: "t3", direction: "send", name: "c.zip", files: 1, bytes: 9e8, bytes_done: 1e8, peer: null, state: "failed", started_at: 1.7e9, resumable: true },
        ];
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

test("send: pick a file, see room id, password, link, QR and countdown, then a wrong password notice", async () => {
  (document.getElementById("own-password") as HTMLInputElement).value = "my-own-pw";
  await click("#pick-files");
  expect(calls.pick_paths[0]).toEqual({ folder: false });
  expect(calls.send_start[0].paths).toEqual(["/tmp/report.pdf"]);
  expect(calls.send_start[0].password).toBe("my-own-pw");
  expect(text("#status")).toContain("Creating a room");
  await emit(
    { event: "room-created", room: "ABCDEFGHJK", password: "my-own-pw", link: "ferry://join/ABCDEFGHJK", expires_at: Date.now() / 1000 + 600, server: "ws://192.0.2.7:7000" },
    { event: "waiting" },
  );
  await tick();
  expect(text("#room-id")).toBe("ABCDE-FGHJK");
  expect(text("#room-password")).toBe("my-own-pw");
  expect(text("#room-link")).toBe("ferry://join/ABCDEFGHJK");
  expect(text("#room-server")).toBe("ws://192.0.2.7:7000");
  expect(text("#expiry")).toMatch(/^(10:00|09:59)$/);
  expect($(".qr svg")).not.toBeNull();
  expect(calls.qr_svg[0].text).toBe("ferry://join/ABCDEFGHJK");
  expect(text("#status")).toContain("Waiting for the receiver");
  await emit({ event: "wrong-password-attempt", attempts_left: 2 });
  expect(text("#notice")).toContain("Someone tried a wrong password");
  expect($("#notice")?.getAttribute("role")).toBe("alert");
});

test("send: skipped symlinks are listed on the room card; hostile names show escaped", async () => {
  await click("#pick-files");
  await emit(
    { event: "skipped-symlinks", paths: ["project/id_rsa"] },
    { event: "room-created", room: "ABCDEFGHJK", password: "x", link: "ferry://join/ABCDEFGHJK", expires_at: 1e10 },
  );
  expect(text("#skipped")).toContain("Not sent: 1 symlink");
  expect(text("#skipped")).toContain("project/id_rsa");
  await emit(
    { event: "peer-joined" },
    { event: "connected", path: "direct" },
    { event: "offer", files: [{ path: "report\u202efdp.exe", size: 10 }], total: 10 },
    { event: "progress", file: "report\u202efdp.exe", bytes_done: 5, total: 10, rate_bps: 1, eta_secs: 5 },
  );
  expect(text(".fname")).toBe("report\\u{202e}fdp.exe");
  expect(document.body.innerHTML).not.toContain("\u202e");
});

test("send: progress, pause/resume/cancel reach the shell with the transfer handle", async () => {
  await click("#pick-files");
  await emit(
    { event: "room-created", room: "ABCDEFGHJK", password: "x", link: "ferry://join/ABCDEFGHJK", expires_at: 1e10 },
    { event: "peer-joined" },
    { event: "connected", path: "direct" },
    { event: "verification", words: "lemon tiger harbor" },
    { event: "offer", files: [{ path: "report.pdf", size: 2000 }], total: 2000 },
    { event: "progress", file: "report.pdf", bytes_done: 1000, total: 2000, rate_bps: 5_000_000, eta_secs: 3 },
  );
  expect($("#room-id")).toBeNull(); // the room card goes once the receiver is in
  expect(text("#words")).toBe("lemon tiger harbor");
  expect(text("#overall-pct")).toBe("50%");
  expect(text("#rate")).toBe("5.00 MB/s");
  expect(text("#eta")).toBe("3 s");
  expect(text("#path")).toBe("Direct");
  await click("#pause");
  expect(calls.transfer_pause[0]).toEqual({ id: 7 });
  await emit({ event: "paused" });
  await click("#resume");
  expect(calls.transfer_resume[0]).toEqual({ id: 7 });
  await emit({ event: "resumed" });
  await click("#cancel");
  expect(calls.transfer_cancel[0]).toEqual({ id: 7 });
  expect($("#pick-files")).not.toBeNull(); // back on the send screen
});

test("receive: choose a folder, join by pasted link, see the offer, accept, finish, show in folder", async () => {
  app.go("receive");
  expect(text("#dest")).toBe("/home/me/Downloads");
  (document.getElementById("join-room") as HTMLInputElement).value = "ferry://join/abcde-fghjk#otter-7";
  await click("#choose-dest");
  expect(text("#dest")).toBe("/data/incoming");
  // picking a folder keeps what was typed
  expect((document.getElementById("join-room") as HTMLInputElement).value).toBe("ferry://join/abcde-fghjk#otter-7");
  await click("#join");
  expect(calls.receive_start[0]).toMatchObject({ room: "ABCDEFGHJK", password: "otter-7", server: null, dest: "/data/incoming" });
  await emit({ event: "peer-joined" }, { event: "offer", files: [{ path: "a.txt", size: 10 }, { path: "b.txt", size: 20 }], total: 30 });
  expect(text("#offer-title")).toBe("2 files, 30 B in total");
  expect(text("#dest")).toBe("/data/incoming");
  await click("#accept");
  expect(calls.receive_accept[0]).toEqual({ id: 7 });
  await emit({ event: "file-done", path: "a.txt", hash: "h1" }, { event: "file-done", path: "b.txt", hash: "h2" }, { event: "done", bytes: 30, secs: 1 });
  expect(text("#status")).toBe("Received");
  await click("#reveal");
  expect(calls.reveal[0]).toEqual({ path: "/data/incoming/a.txt" });
});

test("receive: missing password and bad room id are explained at the field", async () => {
  app.go("receive");
  (document.getElementById("join-room") as HTMLInputElement).value = "not a room";
  (document.getElementById("join-password") as HTMLInputElement).value = "pw";
  await click("#join");
  expect(text("#join-error")).toContain("isn't a room ID");
  (document.getElementById("join-room") as HTMLInputElement).value = "ABCDE-FGHJK";
  (document.getElementById("join-password") as HTMLInputElement).value = "";
  await click("#join");
  expect(text("#join-error")).toContain("Enter the password");
  expect(calls.receive_start).toBeUndefined();
});

test("errors show a human message and Try again starts the same transfer again", async () => {
  app.go("receive");
  (document.getElementById("join-room") as HTMLInputElement).value = "ABCDE-FGHJK";
  (document.getElementById("join-password") as HTMLInputElement).value = "wrong";
  await click("#join");
  await emit({ event: "error", code: "wrong-password", message: "key confirmation failed" });
  expect(text("#error-title")).toBe("Wrong password");
  await click("#retry");
  expect(calls.receive_start).toHaveLength(2);
  expect(calls.receive_start[1]).toMatchObject({ room: "ABCDEFGHJK", password: "wrong" });
});

test("a rejected start command surfaces as an error screen", async () => {
  mockIPC((cmd) => {
    if (cmd === "send_start") throw { code: "server-unreachable", message: "connection refused" };
    return null;
  });
  app.startSend({ kind: "paths", paths: ["/x"] });
  await tick();
  await tick();
  expect(text("#error-title")).toBe("Can't reach the signaling server");
});

test("a dropped file starts a send; events from a cancelled transfer are ignored", async () => {
  app.onDrop({ kind: "paths", paths: ["/tmp/dropped.bin"] });
  await tick();
  expect(calls.send_start[0].paths).toEqual(["/tmp/dropped.bin"]);
  const old = channel!;
  app.back();
  old({ event: "error", code: "peer-left", message: "" });
  await tick();
  expect($("#error")).toBeNull();
});

test("history lists transfers and resumes unfinished ones", async () => {
  app.go("history");
  await tick();
  await tick();
  const rows = document.querySelectorAll("#history-table tbody tr");
  expect(rows).toHaveLength(3);
  expect(rows[0].textContent).toContain("Completed");
  expect(rows[0].querySelector("button")).toBeNull();
  expect(rows[1].textContent).toContain("Unfinished");
  expect(rows[1].textContent).toContain("+2 more");
  // a send resumes by transfer id
  (rows[2].querySelector("button") as HTMLButtonElement).click();
  await tick();
  expect(calls.history_resume[0].transferId).toBe("t3");
  // a receive resumes by joining the sender's new room into the same folder
  app.back();
  app.go("history");
  await tick();
  await tick();
  (document.querySelectorAll("#history-table tbody tr")[1].querySelector("button") as HTMLButtonElement).click();
  await tick();
  expect(text("#receive-note")).toContain("b.mov");
  expect(text("#dest")).toBe("/media/usb");
});

test("settings save and apply the theme", async () => {
  app.go("settings");
  (document.getElementById("server-url") as HTMLInputElement).value = " wss://signal.example ";
  (document.getElementById("turn") as HTMLTextAreaElement).value = "turn:relay.example:3478 alice s3cret";
  (document.getElementById("theme") as HTMLSelectElement).value = "dark";
  await click("#save-settings");
  expect(settings.server_url).toBe("wss://signal.example");
  expect(settings.turn).toEqual([{ urls: "turn:relay.example:3478", username: "alice", credential: "s3cret" }]);
  expect(document.documentElement.getAttribute("data-theme")).toBe("dark");
  expect(text("#saved")).toBe("Saved");
  expect(text("#signal-url")).toBe("ws://127.0.0.1:45678");
});

test("a ferry:// link with a password joins straight away", async () => {
  app.openLink("ferry://join/ABCDEFGHJK/pw?server=ws%3A%2F%2F192.0.2.1%3A7000");
  await tick();
  expect(calls.receive_start[0]).toMatchObject({ room: "ABCDEFGHJK", password: "pw", server: "ws://192.0.2.1:7000" });
});

test("send through a wss server: the browser link is shown and the QR code carries it", async () => {
  await click("#pick-files");
  await emit(
    {
      event: "room-created",
      room: "ABCDEFGHJK",
      password: "pw words",
      link: "ferry://join/ABCDE-FGHJK?server=wss%3A%2F%2Fferry.example%2Fws#pw%20words",
      expires_at: Date.now() / 1000 + 600,
      server: "wss://ferry.example/ws",
    },
    { event: "waiting" },
  );
  await tick();
  expect(text("#room-web-link")).toBe("https://ferry.example/j/ABCDE-FGHJK#pw%20words");
  expect(calls.qr_svg[0].text).toBe("https://ferry.example/j/ABCDE-FGHJK#pw%20words");
});
