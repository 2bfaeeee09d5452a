// Nearby devices in the app: the Receive screen lists rooms announced on the local network
// and joins one on the server it was announced with; Settings turn announcing off. Against
// mocked Tauri IPC, with the shell's own fixture for what `nearby_rooms` returns.
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "../src/app";
import type { NearbyRoom, Settings } from "../src/ipc";
import { NO_NEARBY } from "../src/views/receive";
import { nearbyRooms as fixture } from "./fixtures/commands";

let calls: Record<string, Record<string, unknown>[]>;
let rooms: NearbyRoom[] | Error;
let settings: Settings;
let app: App;

const tick = () => new Promise((r) => setTimeout(r, 0));
const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;
const click = async (sel: string) => {
  const el = $(sel);
  if (!el) throw new Error(`no ${sel} in ${document.body.innerHTML}`);
  el.click();
  await tick();
  await tick();
};
const type = (sel: string, value: string) => {
  ($(sel) as HTMLInputElement).value = value;
};

beforeEach(async () => {
  document.body.innerHTML = '<nav id="nav"></nav><main id="main"></main><div id="live"></div>';
  calls = {};
  rooms = [];
  settings = { server_url: "", stun: [], turn: [], download_dir: "/home/me/Downloads", theme: "system", announce: true, device_name: "" };
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    (calls[cmd] ??= []).push(a);
    switch (cmd) {
      case "settings_get":
        return settings;
      case "settings_set":
        settings = a.settings as Settings;
        return null;
      case "nearby_rooms":
        if (rooms instanceof Error) throw { code: "nearby", message: rooms.message };
        return rooms;
      case "receive_start":
        return 3;
      default:
        return null;
    }
  });
  app = new App($("#main")!, $("#nav"));
  await app.init();
  await click("#nav-receive");
});

afterEach(() => {
  app.dispose();
  clearMocks();
});

test("nearby rooms are listed by device name and one joins on the server it was announced with", async () => {
  rooms = [...fixture, { device: "Desk", room: "QRSTV-WXYZ0", server: "ws://192.0.2.9:7000/ws" }];
  await click("#find-nearby");
  expect(calls.nearby_rooms).toHaveLength(1);
  const items = [...document.querySelectorAll("#nearby-list .nearby-room")].map((b) => b.textContent);
  expect(items).toEqual(["Ana's laptop ABCDE-FGHJK", "Desk QRSTV-WXYZ0"]);
  // Nothing about the offer or the password is shown before joining.
  expect($("#nearby")!.textContent).not.toMatch(/password|\.jpg|bytes/i);

  await click('.nearby-room[data-room="QRSTV-WXYZ0"]');
  expect(($("#join-room") as HTMLInputElement).value).toBe("QRSTV-WXYZ0");
  expect(document.activeElement?.id).toBe("join-password");
  type("#join-password", "pw-nearby");
  await click("#join");
  expect(calls.receive_start).toEqual([
    expect.objectContaining({ room: "QRSTVWXYZ0", password: "pw-nearby", server: "ws://192.0.2.9:7000/ws" }),
  ]);
});

test("a room typed over the picked one joins on the usual server", async () => {
  rooms = fixture;
  await click("#find-nearby");
  await click('.nearby-room[data-room="ABCDE-FGHJK"]');
  type("#join-room", "QRSTV-WXYZ0");
  type("#join-password", "pw");
  await click("#join");
  expect(calls.receive_start[0]).toMatchObject({ room: "QRSTVWXYZ0", server: null });
});

test("an empty list says multicast may be blocked, and a failure says what failed", async () => {
  await click("#find-nearby");
  expect($("#nearby-empty")!.textContent).toBe(NO_NEARBY);
  expect(NO_NEARBY).toMatch(/multicast may be blocked/i);
  expect($("#live")!.textContent).toBe("No nearby rooms found");

  rooms = new Error("cannot use the local network for nearby devices: no interface");
  await click("#find-nearby");
  expect($("#nearby-empty")!.textContent).toContain("no interface");
});

test("announcing is a setting, with the device name nearby devices see", async () => {
  await click("#nav-settings");
  const box = $("#announce") as HTMLInputElement;
  expect(box.checked).toBe(true);
  box.checked = false;
  type("#device-name", "  Kitchen tablet ");
  await click("#save-settings");
  expect(settings.announce).toBe(false);
  expect(settings.device_name).toBe("Kitchen tablet");
});
