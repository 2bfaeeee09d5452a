// @vitest-environment happy-dom
// The sending page's room against the real `ferry-signal` over loopback: the lifetime it
// asks for (`create-room` `ttl_secs`), `capped` when the server grants less, and the host's
// `extend-room` heard while the room waits (host.ts, send-run.ts). Needs the server binary
// (`cargo build -p ferry-signal`; FERRY_SIGNAL_BIN overrides the path); skipped without it.
// The page's WebSocket is the `ws` package's (this runner has none of its own), made to deliver
// each message as a task of its own as a browser does; no guest joins, so no
// RTCPeerConnection is ever made: the check that the browser has one is all it meets.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket as NodeWebSocket } from "ws";

import type { FerryEvent } from "../src/ipc";
import { HostRoom, wasCapped } from "../src/web/host";
import { startSend } from "../src/web/send-run";
import { SignalClient } from "../src/web/signal";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.FERRY_SIGNAL_BIN ?? join(here, "../../target/debug/ferry-signal");
/** The server's largest lifetime in these tests. */
const MAX_TTL = 900;
/** Its lifetime for a room that asks for none. */
const DEFAULT_TTL = 450;

describe("capped", () => {
  it("is said when the room ends before the asked lifetime, with two seconds of slack", () => {
    expect(wasCapped(1000, 600, 1600)).toBe(false);
    expect(wasCapped(1000, 600, 1598)).toBe(false);
    expect(wasCapped(1000, 600, 1597)).toBe(true);
    expect(wasCapped(1000, 7 * 86400, 1000 + 86400)).toBe(true);
    // Nothing asked: the server's default is never "capped".
    expect(wasCapped(1000, null, 1001)).toBe(false);
  });
});

const now = () => Math.floor(Date.now() / 1000);

/** `ws` hands over a frame that came with the upgrade's response at once, in the same task
 * as `open`, before the page's code after `open` could set `onmessage`; a browser queues
 * every message as a task of its own. This does the same. */
class BrowserWebSocket extends NodeWebSocket {
  emit(ev: string | symbol, ...args: unknown[]): boolean {
    if (ev === "message" || ev === "close") {
      setImmediate(() => super.emit(ev, ...args));
      return true;
    }
    return super.emit(ev, ...args);
  }
}

describe.skipIf(!existsSync(BIN))("a room on the real server", () => {
  let server: ChildProcess;
  let url = "";
  const saved: Record<string, unknown> = {};

  beforeAll(async () => {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
      });
    });
    server = spawn(BIN, ["--listen", `127.0.0.1:${port}`, "--db", ":memory:", "--room-ttl", String(DEFAULT_TTL), "--max-room-ttl", String(MAX_TTL), "--log-format", "json"], {
      stdio: "ignore",
      env: { ...process.env, RUST_LOG: "warn" },
    });
    url = `ws://127.0.0.1:${port}/ws`;
    for (const k of ["WebSocket", "RTCPeerConnection"]) saved[k] = (globalThis as Record<string, unknown>)[k];
    (globalThis as Record<string, unknown>).WebSocket = BrowserWebSocket;
    (globalThis as Record<string, unknown>).RTCPeerConnection ??= class {};
    // Up when it answers (bounded: 10 s).
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const ws = new NodeWebSocket(url);
        ws.once("open", () => {
          ws.close();
          resolve(true);
        });
        ws.once("error", () => resolve(false));
      });
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("ferry-signal did not come up");
  }, 20_000);

  afterAll(() => {
    server?.kill();
    for (const [k, v] of Object.entries(saved)) (globalThis as Record<string, unknown>)[k] = v;
  });

  it("lives the lifetime asked for, or the server's maximum (capped), or its default", async () => {
    const asked = await HostRoom.create({ server: url, ttlSecs: 600 });
    expect(Math.abs(asked.expiresAt - (now() + 600))).toBeLessThanOrEqual(3);
    expect(asked.capped).toBe(false);
    asked.close();

    const long = await HostRoom.create({ server: url, ttlSecs: 7 * 86400 });
    expect(Math.abs(long.expiresAt - (now() + MAX_TTL))).toBeLessThanOrEqual(3);
    expect(long.capped).toBe(true);
    long.close();

    const dflt = await HostRoom.create({ server: url, ttlSecs: null });
    expect(Math.abs(dflt.expiresAt - (now() + DEFAULT_TTL))).toBeLessThanOrEqual(3);
    expect(dflt.capped).toBe(false);
    dflt.close();
  });

  it("a guest's join rides in the upgrade request and is answered without a frame", async () => {
    const host = await SignalClient.connect(url, 5000);
    const created = await host.create(Date.now() + 5000);
    const guest = await SignalClient.connect(url, 5000, created.room);
    const joined = await guest.join(created.room, Date.now() + 5000);
    // rid 1 is the one the URL carried; a join sent as a frame would have taken rid 2.
    expect(joined.rid).toBe(1);
    expect(joined.role).toBe("guest");
    const heard = await host.recv(Date.now() + 5000);
    expect(heard).toEqual({ type: "peer-joined", role: "guest" });
    guest.close();
    host.close();
  });

  it("extends while it waits for a guest, up to the server's maximum", async () => {
    const room = await HostRoom.create({ server: url, ttlSecs: 600 });
    const waiting = room.accept().catch((e: unknown) => e);
    const at = await room.extend(120);
    expect(Math.abs(at - (now() + 120))).toBeLessThanOrEqual(3);
    expect(room.expiresAt).toBe(at);
    const max = await room.extend(10 * 86400);
    expect(Math.abs(max - (now() + MAX_TTL))).toBeLessThanOrEqual(3);
    room.close();
    expect(await waiting).toBeInstanceOf(Error);
    await expect(room.extend(60)).rejects.toMatchObject({ code: "room-expired" });
  });

  it("a send run asks for its lifetime and reports the extend as the native sender does", async () => {
    const events: FerryEvent[] = [];
    const run = startSend({ server: url, files: [], password: null, ttlSecs: 300, onEvent: (e) => events.push(e) });
    for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const created = events[0];
    expect(created?.event).toBe("room-created");
    if (created?.event !== "room-created") return;
    expect(Math.abs(created.expires_at - (now() + 300))).toBeLessThanOrEqual(3);
    expect(created.capped).toBe(false);
    expect(events[1]).toEqual({ event: "waiting" });
    await run.extendRoom(200);
    const ext = events[2];
    expect(ext?.event).toBe("room-extended");
    if (ext?.event === "room-extended") expect(Math.abs(ext.expires_at - (now() + 200))).toBeLessThanOrEqual(3);
    run.cancel();
    await run.ended;
    expect(events.at(-1)).toMatchObject({ event: "error", code: "cancelled" });
    await expect(run.extendRoom(60)).rejects.toMatchObject({ code: "room-expired" });
  });
});
