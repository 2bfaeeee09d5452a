// End-to-end: the real Ferry app in a real webview (tauri-driver + WebKitWebDriver under Xvfb),
// with the `ferry` CLI as the other peer. Run by scripts/test-e2e-app.sh, which builds both,
// starts Xvfb and tauri-driver and sets the environment below.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WebDriver } from "./webdriver.mjs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const APP = env("FERRY_APP_BIN");
const CLI = env("FERRY_CLI_BIN");
const WD = process.env.WEBDRIVER_URL ?? "http://127.0.0.1:4444";
const WORK = env("E2E_WORK");
const SRC = env("FERRY_E2E_PICK"); // what the app's "Choose files…" returns
const RECV_DIR = env("FERRY_E2E_PICK_FOLDER"); // what the app's "Choose folder…" returns
const SHOTS = process.env.SHOTS_DIR ?? "";

const results = [];
const sha256 = (p) => createHash("sha256").update(readFileSync(p)).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Run the CLI with a hard timeout; resolves with exit code and output lines. */
function cli(args, { timeoutMs = 60_000, onLine, db = "cli.db" } = {}) {
  return new Promise((resolve) => {
    // Its own history database: both peers derive the same transfer id from the manifest.
    const child = spawn(CLI, args, {
      env: { ...process.env, FERRY_DB: join(WORK, db), FERRY_BIND: "127.0.0.1:0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let buf = "";
    child.stdout.on("data", (d) => {
      out += d;
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onLine?.(line, child);
      }
    });
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, child });
    });
  });
}

async function shot(wd, name) {
  if (!SHOTS) return;
  try {
    writeFileSync(join(SHOTS, `${name}.png`), await wd.screenshot());
  } catch (e) {
    // WebKitWebDriver's screenshot call sometimes times out under load; the window is on
    // the Xvfb display either way, so grab the screen instead.
    try {
      // The window sits at the origin at its configured 920x700 (tauri.conf.json).
      execFileSync("import", ["-window", "root", "-crop", "920x700+0+0", "+repage", join(SHOTS, `${name}.png`)], {
        timeout: 10_000,
      });
      console.log(`  (screenshot ${name}: WebDriver timed out, took it from the display)`);
    } catch (e2) {
      console.log(`  (screenshot ${name} failed: ${e.message}; ${e2.message})`);
    }
  }
}

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}

async function withApp(fn) {
  const wd = new WebDriver(WD);
  // What tauri-driver turns `tauri:options` into on Linux; works with or without it.
  await wd.start({ "webkitgtk:browserOptions": { binary: APP, args: [] } });
  try {
    await wd.waitFor("the app UI", () => wd.text("#screen-title"), 30_000);
    await fn(wd);
  } finally {
    await wd.quit().catch(() => undefined);
  }
}

/** App sends: room on screen, a wrong password is reported, then the CLI receives the file. */
async function sendFlow(wd) {
  await wd.exec("window.ferry.go('send')");
  await shot(wd, "send");
  await wd.click("#pick-files");
  const room = (await wd.waitText("#room-id", /^[0-9A-Z]{5}-[0-9A-Z]{5}$/, 30_000)).replace("-", "");
  const password = await wd.text("#room-password");
  const server = await wd.text("#room-server");
  if (!password || !server) throw new Error(`no password/server on screen (${password}, ${server})`);
  await wd.waitFor("the QR code", () => wd.exec("return !!document.querySelector('.qr svg')"), 10_000);
  await shot(wd, "room");

  await test("wrong password from the CLI shows the notice in the app", async () => {
    const bad = join(WORK, "bad");
    mkdirSync(bad, { recursive: true });
    const r = await cli(["receive", room, "--password", `${password}-nope`, "--out", bad, "--yes", "--server", server, "--json"], { timeoutMs: 45_000 });
    if (r.code === 0) throw new Error(`CLI with a wrong password exited 0:\n${r.out}`);
    if (!/wrong-password/.test(r.out + r.err)) throw new Error(`CLI did not report wrong-password:\n${r.out}\n${r.err}`);
    await wd.waitText("#notice", /Someone tried a wrong password/, 15_000);
    if (readdirSync(bad).length) throw new Error("files were written despite the wrong password");
    await shot(wd, "wrong-password");
  });

  await test("app sends a file, CLI receives it intact, app shows Sent", async () => {
    const out = join(WORK, "cli-recv");
    mkdirSync(out, { recursive: true });
    let sawProgress = false;
    const r = cli(["receive", room, "--password", password, "--out", out, "--yes", "--server", server, "--json"], {
      timeoutMs: 90_000,
    });
    // Catch the app mid-transfer for the progress screenshot when the transfer is slow enough to see.
    const watch = (async () => {
      for (let i = 0; i < 200 && !sawProgress; i++) {
        const phase = await wd.exec("return document.querySelector('.screen.transfer')?.dataset.phase ?? null").catch(() => null);
        if (phase === "transferring") {
          sawProgress = true;
          await shot(wd, "progress");
        }
        if (phase === "done" || phase === "error") break;
        await sleep(50);
      }
    })();
    const res = await r;
    await watch;
    if (res.code !== 0) throw new Error(`CLI receive failed (${res.code ?? res.signal}):\n${res.out}\n${res.err}`);
    await wd.waitText("#status", /^Sent$/, 30_000);
    const name = SRC.split("/").pop();
    const got = join(out, name);
    if (!statSync(got).isFile()) throw new Error(`no ${got}`);
    const a = sha256(SRC);
    const b = sha256(got);
    if (a !== b) throw new Error(`hash mismatch: sent ${a}, received ${b}`);
    const pct = await wd.text("#overall-pct");
    if (pct !== "100%") throw new Error(`overall progress shows ${pct}`);
    await shot(wd, sawProgress ? "sent" : "progress");
  });
}

/** CLI sends; the app joins by room ID and password, accepts into a folder and receives. */
async function receiveFlow(wd) {
  const srcDir = join(WORK, "cli-src");
  mkdirSync(srcDir, { recursive: true });
  const file = join(srcDir, "from-cli.bin");
  writeFileSync(file, randomBytes(3 * 1024 * 1024 + 17));
  const server = await wd.exec("return window.ferry.signalUrl ?? null");
  await test("CLI sends, app joins, accepts and receives the file intact", async () => {
    if (!server) throw new Error("the app did not report its signaling server");
    let room = null;
    let password = null;
    const sender = cli(["send", file, "--server", server, "--json"], {
      timeoutMs: 120_000,
      onLine: (line) => {
        try {
          const ev = JSON.parse(line);
          if (ev.event === "room-created") {
            room = ev.room;
            password = ev.password;
          }
        } catch {
          /* not JSON */
        }
      },
    });
    await wd.waitFor("the CLI's room", () => room && password, 30_000);
    await wd.exec("window.ferry.go('receive')");
    await wd.type("#join-room", room);
    await wd.type("#join-password", password);
    await wd.click("#choose-dest");
    await wd.waitFor("the chosen folder", async () => (await wd.text("#dest")) === RECV_DIR, 10_000);
    await shot(wd, "receive");
    await wd.click("#join");
    await wd.waitFor("the offer", () => wd.exec("return !!document.querySelector('#accept')"), 45_000);
    await shot(wd, "offer");
    await wd.click("#accept");
    await wd.waitText("#status", /^Received$/, 90_000);
    const got = join(RECV_DIR, "from-cli.bin");
    const a = sha256(file);
    const b = sha256(got);
    if (a !== b) throw new Error(`hash mismatch: sent ${a}, received ${b}`);
    const res = await sender;
    if (res.code !== 0) throw new Error(`CLI send exited ${res.code ?? res.signal}:\n${res.err}`);
    await shot(wd, "received");
  });

  await test("history shows both transfers", async () => {
    await wd.exec("window.ferry.go('history')");
    const rows = await wd.waitFor(
      "history rows",
      async () => {
        const n = await wd.exec("return document.querySelectorAll('#history-table tbody tr').length");
        return n >= 2 ? n : null;
      },
      15_000,
    );
    if (rows < 2) throw new Error(`history has ${rows} rows`);
    await shot(wd, "history");
  });
}

/** Pick a value in a <select> the way a person does (the app listens for `change`). */
async function choose(wd, css, value) {
  await wd.exec(`const s = document.querySelector(${JSON.stringify(css)}); s.value = ${JSON.stringify(value)}; s.dispatchEvent(new Event("change"));`);
}

/** The app hosts one room for two receivers; then a room's lifetime is extended and it is closed. */
async function sharingFlow(wd) {
  await test("app serves two CLI receivers from one room, each listed with its progress", async () => {
    await wd.exec("window.ferry.go('send')");
    await choose(wd, "#receivers-picker", "2");
    await wd.click("#pick-files");
    const room = (await wd.waitText("#room-id", /^[0-9A-Z]{5}-[0-9A-Z]{5}$/, 30_000)).replace("-", "");
    const password = await wd.text("#room-password");
    const server = await wd.text("#room-server");
    const runs = [1, 2].map((n) => {
      const out = join(WORK, `many-${n}`);
      mkdirSync(out, { recursive: true });
      const r = cli(["receive", room, "--password", password, "--out", out, "--yes", "--server", server, "--json"], { timeoutMs: 120_000, db: `many-${n}.db` });
      return { out, r };
    });
    let listed = false;
    const watch = (async () => {
      for (let i = 0; i < 600 && !listed; i++) {
        const n = await wd.exec("return document.querySelectorAll('#receivers li[data-receiver]').length").catch(() => 0);
        if (n >= 2) {
          listed = true;
          await shot(wd, "receivers");
        }
        await sleep(50);
      }
    })();
    const results = await Promise.all(runs.map((x) => x.r));
    await watch;
    results.forEach((res, i) => {
      if (res.code !== 0) throw new Error(`receiver ${i + 1} failed (${res.code ?? res.signal}):\n${res.out}\n${res.err}`);
    });
    if (!listed) throw new Error("the room card never listed both receivers");
    const name = SRC.split("/").pop();
    for (const { out } of runs) {
      const got = join(out, name);
      if (sha256(got) !== sha256(SRC)) throw new Error(`hash mismatch in ${got}`);
    }
    await wd.waitFor(
      "the room to end once both received",
      () => wd.exec("return document.querySelector('.screen.transfer')?.dataset.phase === 'done' || null"),
      30_000,
    );
  });

  await test("expiry: the picked lifetime counts down, Extend moves the deadline, Close ends the room", async () => {
    await wd.exec("window.ferry.go('send')");
    await choose(wd, "#receivers-picker", "1");
    await choose(wd, "#expiry-picker", "600");
    await wd.click("#pick-files");
    await wd.waitText("#room-id", /^[0-9A-Z]{5}-[0-9A-Z]{5}$/, 30_000);
    const first = Number(await wd.waitFor("a deadline", () => wd.exec("return Number(document.querySelector('#expiry')?.dataset.expires) || null"), 15_000));
    const left = first - Date.now() / 1000;
    if (left < 500 || left > 610) throw new Error(`a 10 min room expires in ${left.toFixed(0)} s`);
    // Extend gives the room its lifetime again from now, so let a few seconds pass first.
    await sleep(3_000);
    const label = await wd.text("#extend-room");
    await wd.click("#extend-room");
    const later = Number(
      await wd
        .waitFor("a later deadline", () => wd.exec(`const e = Number(document.querySelector('#expiry')?.dataset.expires); return e >= ${first + 2} ? e : null`), 15_000)
        .catch(async (e) => {
          throw new Error(`${e.message}; button "${label}", expiry now ${await wd.exec("return document.querySelector('#expiry')?.outerHTML")}`);
        }),
    );
    await shot(wd, "expiry");
    if (later <= first) throw new Error(`deadline ${first} -> ${later}`);
    await wd.click("#close-room");
    // Closed: the room card goes and the send screen is back, ready for the next room.
    await wd.waitFor(
      "the room card to go",
      () => wd.exec("return (!document.querySelector('.screen.transfer') && !!document.querySelector('#pick-files')) || null"),
      15_000,
    );
  });
}

const deadline = setTimeout(() => {
  console.log("app-e2e: overall time limit reached");
  console.log(`app-e2e: ${results.filter((r) => r[1]).length} passed, ${results.filter((r) => !r[1]).length + 1} failed`);
  process.exit(1);
}, 8 * 60_000);

try {
  await withApp(async (wd) => {
    await sendFlow(wd);
    await receiveFlow(wd);
    await sharingFlow(wd);
    await wd.exec("window.ferry.go('settings')");
    await shot(wd, "settings");
  });
} catch (e) {
  results.push(["app session", false]);
  console.log(`FAIL app session: ${e.stack ?? e}`);
}
clearTimeout(deadline);
const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed;
console.log(`app-e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
