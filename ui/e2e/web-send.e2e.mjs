// The browser peer sends to the real CLI: headless Chromium (the system's, driven by
// playwright-core) opens the built web page in send mode (web.html?send), picks files and a
// folder, opens a room on a real `ferry-signal` as its host, and the real `ferry receive`
// joins with the link the page shows; every received file's SHA-256 must equal the source's.
// Then: a wrong password on the CLI side (both sides say so), the room lifetime picked on the
// Send screen (and Extend, and a capped one), a receiver killed mid-transfer
// whose successor resumes from its .part, and a second browser page receiving from the first.
//
// Run by scripts/test-web-e2e.sh, which builds everything and sets:
//   FERRY_CLI_BIN, FERRY_SIGNAL_BIN, WEB_DIST, CHROMIUM, E2E_WORK
// WEB_SEND_MB sets the random file's size (default 256, the size the browser peer must carry in CI).
// Bounded: every wait has a timeout and the whole run is capped.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { checks, env, fileTree, exitWithin, Harness, NET, heapSampler, openSendRoom, pageFinished, sha256File } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");
const MB = Math.min(Number(process.env.WEB_SEND_MB ?? 256), 4096);
const CAP_MS = 90_000 + MB * 400;

const hx = new Harness();
const log = hx.log;
const start = (...a) => hx.start(...a);

const suite = checks("web-send-e2e", log, CAP_MS, () => hx.cleanup());
const check = suite.check;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");


const tree = fileTree;

/** `ferry receive`; its output folder and resume database are per `tag`, fresh per run. */
function receiver(ticket, outDir, tag, extra = [], extraEnv = {}, fresh = true) {
  if (fresh) {
    rmSync(outDir, { recursive: true, force: true });
    rmSync(join(WORK, `recv-${tag}.db`), { force: true });
  }
  mkdirSync(outDir, { recursive: true });
  return start(
    FERRY,
    ["receive", ticket, "--out", outDir, "--yes", "--json", ...extra],
    { FERRY_BIND: NET.cliBind, FERRY_DB: join(WORK, `recv-${tag}.db`), RUST_LOG: process.env.RUST_LOG ?? "warn", ...extraEnv },
    `ferry receive (${tag})`,
  );
}

async function main() {
  const origin = await hx.serveDist(DIST);
  const serverUrl = await hx.signal(SIGNAL, join(WORK, "signal-send.db"), origin);
  log(`web app at ${origin}, signaling at ${serverUrl}`);
  const sendUrl = (extra = "") => `${origin}/web.html?send&server=${encodeURIComponent(serverUrl)}${extra}`;
  const browser = await hx.launch(CHROMIUM);

  const openRoom = (ctx, files, folder, extra = "") => openSendRoom(ctx, sendUrl(extra), files, folder);
  const finished = pageFinished;

  await check(`browser → CLI: ${MB} MiB random, a folder of small files and a 0-byte file, byte-exact`, async () => {
    const src = join(WORK, "send-src");
    const folder = join(src, "album");
    mkdirSync(join(folder, "sub"), { recursive: true });
    const big = join(src, "random.bin");
    const empty = join(src, "empty.bin");
    // Written in 8 MiB pieces so a heavy run does not hold the whole file in memory.
    writeFileSync(big, "");
    for (let left = MB * 1024 * 1024 + 12_345; left > 0; left -= 8 << 20) writeFileSync(big, randomBytes(Math.min(left, 8 << 20)), { flag: "a" });
    writeFileSync(empty, "");
    for (let i = 0; i < 20; i += 1) writeFileSync(join(folder, i % 2 ? "sub" : "", `note-${i}.txt`), `small file ${i}\n`.repeat(i * 37 + 1));
    // One folder picked on the Send screen: the receiver gets it under the folder's name.
    const want = new Map([["send-src/random.bin", await sha256File(big)], ["send-src/empty.bin", sha256(Buffer.alloc(0))]]);
    for (const [p, h] of await tree(folder)) want.set(join("send-src", "album", p), h);

    const ctx = await browser.newContext();
    try {
      const { page, link, consoleLines, workers } = await openRoom(ctx, [], src);
      if (!link.startsWith("ferry://join/") || !link.includes("?server=") || !link.includes("#")) throw new Error(`link is not in ticket form: ${link}`);
      const out = join(WORK, "recv-ok");
      // The session's debug log says which kind of channel the two sides settled on.
      const recv = receiver(link, out, "ok", [], { RUST_LOG: "warn,ferry_core::session=debug" });
      await page.locator("main[data-state=transferring], main[data-state=done]").first().waitFor({ timeout: 20_000 });
      const t0 = Date.now();
      const stop = heapSampler(page);
      let peak = 0;
      await finished(page, consoleLines, 30_000 + MB * 300).finally(() => (peak = stop()));
      const secs = (Date.now() - t0) / 1000;
      log(`sent ${MB} MiB + small files in ${secs.toFixed(2)} s (${((MB * 1.048576) / secs).toFixed(1)} MB/s incl. setup); page peak JS heap ${(peak / 1e6).toFixed(1)} MB`);
      if (workers() !== 1) throw new Error(`the transfer should run in one Worker, saw ${workers()}`);
      const code = await exitWithin(recv, 10_000);
      if (code !== 0) throw new Error(`receiver ended with ${code}:\n${recv.lines.join("\n")}\n${recv.stderr().slice(-3000)}`);
      // The page offered the agreed stream and the CLI took it up (docs/CRYPTO.md §4); the
      // manifest went behind the page's hello, or the receiver would never have had it.
      if (!recv.stderr().includes("data channel open, on the agreed stream")) {
        throw new Error(`the channel was not on the agreed stream:\n${recv.stderr().slice(-3000)}`);
      }
      const got = await tree(out);
      for (const [p, h] of want) {
        if (got.get(p) !== h) throw new Error(`${p}: SHA-256 ${got.get(p)}, expected ${h} (received: ${[...got.keys()].join(", ")})`);
      }
      if (got.size !== want.size) throw new Error(`received ${got.size} files, expected ${want.size}`);
      const files = Number(await page.locator("#done").getAttribute("data-files"));
      if (files !== want.size) throw new Error(`the page says ${files} files confirmed, expected ${want.size}`);
      if (!(Number(await page.locator("#done").getAttribute("data-compressed")) > 0)) throw new Error("no chunk went LZ4-compressed (the text files should)");
    } finally {
      await ctx.close();
    }
  });

  await check("wrong password on the CLI: the receiver and the page both say so", async () => {
    const file = join(WORK, "secret.bin");
    writeFileSync(file, randomBytes(4096));
    const ctx = await browser.newContext();
    try {
      const { page, room } = await openRoom(ctx, [file]);
      const recv = receiver(room, join(WORK, "recv-wrong"), "wrong", ["--server", serverUrl, "--password", "not the password"]);
      const exit = await exitWithin(recv, 20_000);
      const said = recv.lines.some((l) => l.includes("wrong-password")) || recv.stderr().includes("wrong password");
      if (exit !== 10 || !said) throw new Error(`receiver: exit ${exit}, wrong password reported: ${said}\n${recv.lines.join("\n")}\n${recv.stderr().slice(-2000)}`);
      await page.locator("#notice[data-code=wrong-password]").waitFor({ timeout: 10_000 });
      const text = await page.locator("#notice").innerText();
      if (!text.includes("wrong password")) throw new Error(`page notice: ${text}`);
      if ((await page.locator("main").getAttribute("data-state")) !== "waiting") throw new Error("the page should keep the room open for the right receiver");
    } finally {
      await ctx.close();
    }
  });

  await check("the room lives the lifetime picked on the Send screen: 10 minutes, extended from now; 7 days is capped at the server's day", async () => {
    const file = join(WORK, "lifetime.bin");
    writeFileSync(file, randomBytes(1024));
    const now = () => Math.floor(Date.now() / 1000);
    /** Pick `secs` in #expiry-picker, then the file: the room's `data-expires`, and whether the page says it was capped. */
    const openWith = async (ctx, secs) => {
      const page = await ctx.newPage();
      const consoleLines = [];
      page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      await page.goto(sendUrl());
      await page.locator("#expiry-picker").selectOption(String(secs), { timeout: 5_000 });
      const asked = now();
      const [chooser] = await Promise.all([page.waitForEvent("filechooser", { timeout: 10_000 }), page.locator("#pick-files").click({ timeout: 5_000 })]);
      await chooser.setFiles([file]);
      await page.locator("#room-link, main[data-state=error]").first().waitFor({ timeout: 15_000 });
      if (!(await page.locator("#room-link").count())) throw new Error(`no room: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
      const expires = Number(await page.locator("#expiry").getAttribute("data-expires"));
      return { page, asked, expires, capped: (await page.locator("#expiry-capped").count()) > 0 };
    };
    const ctx = await browser.newContext();
    try {
      const short = await openWith(ctx, 600);
      if (Math.abs(short.expires - (short.asked + 600)) > 5) throw new Error(`10 minutes asked at ${short.asked}: the room ends at ${short.expires} (${short.expires - short.asked} s)`);
      if (short.capped) throw new Error("10 minutes is within the server's limit, yet the page says capped");
      // Extend asks for the picked lifetime again, from now: the end moves by the time waited.
      await new Promise((r) => setTimeout(r, 3000));
      await short.page.locator("#extend-room").click({ timeout: 5_000 });
      const extendedAt = now();
      await short.page.waitForFunction((before) => Number(document.querySelector("#expiry")?.getAttribute("data-expires")) > before, short.expires, { timeout: 10_000 });
      const extended = Number(await short.page.locator("#expiry").getAttribute("data-expires"));
      if (Math.abs(extended - (extendedAt + 600)) > 5) throw new Error(`extended at ${extendedAt}: the room ends at ${extended}`);
      await short.page.close();

      const long = await openWith(ctx, 7 * 86400);
      if (Math.abs(long.expires - (long.asked + 86400)) > 5) throw new Error(`7 days asked: the room ends ${long.expires - long.asked} s later, expected the server's 86400`);
      if (!long.capped) throw new Error("7 days is past the server's day, yet the page does not say capped");
      log(`lifetimes: 10 min → ${short.expires - short.asked} s (extended to ${extended - extendedAt} s from then), 7 days → ${long.expires - long.asked} s, capped`);
    } finally {
      await ctx.close();
    }
  });

  await check("the receiver is killed mid-transfer: a new `ferry receive` resumes from its .part and the page completes", async () => {
    const file = join(WORK, "slow.bin");
    writeFileSync(file, randomBytes(16 * 1024 * 1024));
    const want = await sha256File(file);
    const ctx = await browser.newContext();
    try {
      // About 4 s of sending at 4 MiB/s, so the receiver can die in the middle, past its
      // first durable checkpoint (every 8 MiB, defaults.rs WINDOW).
      const { page, link, consoleLines } = await openRoom(ctx, [file], null, `&throttle=${4 * 1024 * 1024}`);
      const out = join(WORK, "recv-drop");
      const first = receiver(link, out, "drop");
      await page.locator("main[data-state=transferring]").waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 65, null, { timeout: 15_000 });
      first.child.kill("SIGKILL");
      await first.exited;
      if ((await page.locator("main").getAttribute("data-state")) === "done") throw new Error("the page claimed done after the receiver died");
      const second = receiver(link, out, "drop", [], {}, false);
      await finished(page, consoleLines, 30_000);
      const resumed = Number(await page.locator("#done").getAttribute("data-resumed"));
      if (!(resumed >= 8 * 1024 * 1024)) throw new Error(`the second receiver resumed from ${resumed} bytes, expected at least its 8 MiB checkpoint`);
      const exit = await exitWithin(second, 10_000);
      if (exit !== 0) throw new Error(`second receiver ended with ${exit}:\n${second.lines.join("\n")}\n${second.stderr().slice(-3000)}`);
      const got = await sha256File(join(out, "slow.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      log(`resumed from ${resumed} of ${16 * 1024 * 1024} bytes`);
    } finally {
      await ctx.close();
    }
  });

  await check("a wrong password mid-transfer (someone who knows only the room id) does not disturb the transfer", async () => {
    const file = join(WORK, "steady.bin");
    writeFileSync(file, randomBytes(6 * 1024 * 1024));
    const want = await sha256File(file);
    const ctx = await browser.newContext();
    try {
      const { page, link, room, consoleLines } = await openRoom(ctx, [file], null, `&throttle=${2 * 1024 * 1024}`);
      const out = join(WORK, "recv-steady");
      const good = receiver(link, out, "steady");
      await page.locator("main[data-state=transferring]").waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 15, null, { timeout: 15_000 });
      const intruder = receiver(room, join(WORK, "recv-intruder"), "intruder", ["--server", serverUrl, "--password", "a guess"]);
      const exit = await exitWithin(intruder, 20_000);
      if (exit !== 10) throw new Error(`intruder: exit ${exit}\n${intruder.lines.join("\n")}\n${intruder.stderr().slice(-2000)}`);
      await page.locator("#notice[data-code=wrong-password]").waitFor({ timeout: 10_000 });
      await finished(page, consoleLines, 30_000);
      const attempts = Number(await page.locator("#done").getAttribute("data-attempts"));
      if (attempts !== 1) throw new Error(`the transfer took ${attempts} connections, expected 1 (the guess interrupted it)`);
      if ((await exitWithin(good, 10_000)) !== 0) throw new Error(`receiver failed:\n${good.lines.join("\n")}`);
      const got = await sha256File(join(out, "steady.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
    } finally {
      await ctx.close();
    }
  });

  await check("Pause on the page: the receiver hears it and nothing moves; Resume finishes byte-exact", async () => {
    const file = join(WORK, "pause.bin");
    writeFileSync(file, randomBytes(3 * 1024 * 1024));
    const want = await sha256File(file);
    const ctx = await browser.newContext();
    try {
      const { page, link, consoleLines } = await openRoom(ctx, [file], null, `&throttle=${1024 * 1024}`);
      const out = join(WORK, "recv-pause");
      const recv = receiver(link, out, "pause");
      await page.locator("main[data-state=transferring]").waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 10, null, { timeout: 15_000 });
      await page.locator("#pause").click();
      await recv.line((l) => l.includes('"event":"paused"'), 5_000, "a paused event");
      // What was on its way lands; then nothing more is acknowledged.
      await new Promise((r) => setTimeout(r, 1000));
      const held = await page.locator("#overall-bar").getAttribute("value");
      await new Promise((r) => setTimeout(r, 1500));
      const later = await page.locator("#overall-bar").getAttribute("value");
      if (held !== later || Number(later) >= 100) throw new Error(`progress moved while paused: ${held} → ${later}`);
      await page.locator("#resume").click();
      await recv.line((l) => l.includes('"event":"resumed"'), 5_000, "a resumed event");
      await finished(page, consoleLines, 20_000);
      if ((await exitWithin(recv, 10_000)) !== 0) throw new Error(`receiver failed:\n${recv.lines.join("\n")}`);
      const got = await sha256File(join(out, "pause.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
    } finally {
      await ctx.close();
    }
  });

  await check("Cancel on the page mid-transfer: the receiver stops with `cancelled`, nothing claims done", async () => {
    const file = join(WORK, "cancel.bin");
    writeFileSync(file, randomBytes(4 * 1024 * 1024));
    const ctx = await browser.newContext();
    try {
      const { page, link } = await openRoom(ctx, [file], null, `&throttle=${1024 * 1024}`);
      const recv = receiver(link, join(WORK, "recv-cancel"), "cancel");
      await page.locator("main[data-state=transferring]").waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 10, null, { timeout: 15_000 });
      await page.locator("#cancel").click();
      // The page drops the cancelled transfer and is back on the Send screen.
      await page.locator("main[data-state=send]").waitFor({ timeout: 10_000 });
      const exit = await exitWithin(recv, 10_000);
      const said = recv.lines.some((l) => l.includes('"code":"cancelled"'));
      if (exit !== 19 || !said) throw new Error(`receiver: exit ${exit}, cancelled reported: ${said}\n${recv.lines.slice(-5).join("\n")}\n${recv.stderr().slice(-2000)}`);
      if (recv.lines.some((l) => l.includes('"event":"done"'))) throw new Error("the receiver claimed done");
    } finally {
      await ctx.close();
    }
  });

  await check("browser → browser: one page sends (its room card showing a QR code), another receives, byte-exact", async () => {
    const file = join(WORK, "b2b.bin");
    writeFileSync(file, randomBytes(2 * 1024 * 1024 + 4321));
    const want = await sha256File(file);
    const sctx = await browser.newContext();
    const rctx = await browser.newContext({ acceptDownloads: true });
    try {
      const { page, consoleLines } = await openRoom(sctx, [file]);
      // The room card carries a QR code of the same link, for a phone's camera.
      await page.locator("figure.qr svg path").waitFor({ timeout: 5_000 });
      // The page's own browser link (this page's join screen, its server, room and password).
      const webLink = await page.locator("#room-web-link").innerText();
      const rpage = await rctx.newPage();
      const rconsole = [];
      rpage.on("console", (m) => rconsole.push(`${m.type()}: ${m.text()}`));
      await rpage.goto(webLink);
      await rpage.locator("#accept").click({ timeout: 20_000 }).catch(async (e) => {
        throw new Error(`${e.message}\nreceiving page: ${await rpage.locator("main").innerText()}\n${rconsole.join("\n")}\nsending page: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
      });
      await rpage.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 30_000 });
      if ((await rpage.locator("main").getAttribute("data-state")) !== "done") throw new Error(`receiving page: ${await rpage.locator("main").innerText()}`);
      await finished(page, consoleLines, 10_000);
      const [download] = await Promise.all([rpage.waitForEvent("download", { timeout: 10_000 }), rpage.locator("a[download]").first().click()]);
      const got = sha256(readFileSync(await download.path()));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
    } finally {
      await sctx.close();
      await rctx.close();
    }
  });
}

await suite.finish(main);
