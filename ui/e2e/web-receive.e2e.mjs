// The browser peer receives from the real CLI: headless Chromium (the system's, driven by
// playwright-core) opens the built web page (dist-web, served from 127.0.0.1), joins a room
// that `ferry send` holds on a real `ferry-signal`, and downloads the files; their SHA-256
// must equal the sources'. Then a wrong password: the page and the sender must both say so.
//
// Run by scripts/test-web-e2e.sh, which builds everything and sets:
//   FERRY_CLI_BIN, FERRY_SIGNAL_BIN, WEB_DIST, CHROMIUM, E2E_WORK
// Bounded: every wait has a timeout and the whole run is capped (60 s plus time for the file).
// WEB_E2E_MB sizes the random file of the first check (default 256, the size the browser peer
// must carry in CI).
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { checks, env, exitWithin, Harness, NET } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");

const hx = new Harness();
const log = hx.log;
const start = (...a) => hx.start(...a);
let browser = null;

const cleanup = () => hx.cleanup();

// The page writes to OPFS, so disk is the limit for bigger runs.
const MB = Math.min(Number(process.env.WEB_E2E_MB ?? 256), 4096);
const CAP_MS = 60_000 + MB * 400;
const suite = checks("web-e2e", log, CAP_MS, () => cleanup());
const check = suite.check;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");


function sender(files, password, serverUrl, tag, extraEnv = {}) {
  return start(
    FERRY,
    ["send", ...files, "--server", serverUrl, "--password", password, "--json"],
    { FERRY_BIND: NET.cliBind, FERRY_DB: join(WORK, `send-${tag}.db`), RUST_LOG: process.env.RUST_LOG ?? "warn", ...extraEnv },
    `ferry send (${tag})`,
  );
}

async function roomOf(send) {
  const line = await send.line((l) => l.includes('"room-created"'), 15_000, "room-created");
  return JSON.parse(line).room;
}

async function main() {
  const origin = await hx.serveDist(DIST);
  const serverUrl = await hx.signal(SIGNAL, join(WORK, "signal.db"), origin);
  log(`web app at ${origin}, signaling at ${serverUrl}`);

  // Host addresses, not mDNS names: see web-harness.mjs's `launch`.
  browser = await hx.launch(CHROMIUM);

  await check(`CLI → browser: ${MB} MiB random, a compressible text and a 0-byte file, byte-exact`, async () => {
    const big = join(WORK, "random.bin");
    const text = join(WORK, "notes.txt");
    const empty = join(WORK, "empty.bin");
    writeFileSync(big, randomBytes(MB * 1024 * 1024 + 12_345));
    writeFileSync(text, Array.from({ length: 6000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(""));
    writeFileSync(empty, "");
    const want = new Map([big, text, empty].map((p) => [p.split("/").pop(), sha256(readFileSync(p))]));
    const password = "correct horse battery staple";
    // The session's debug log says which kind of channel the two sides settled on.
    const send = sender([big, text, empty], password, serverUrl, "ok", { RUST_LOG: "warn,ferry_core::session=debug" });
    const room = await roomOf(send);
    const ctx = await browser.newContext({ acceptDownloads: true });
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    let workers = 0;
    let worker = null;
    page.on("worker", (w) => {
      workers += 1;
      worker = w;
    });
    try {
      await page.goto(`${origin}/web.html?server=${encodeURIComponent(serverUrl)}#${room}/${encodeURIComponent(password)}`);
      const offered = await page
        .locator("#accept, main[data-state=error]")
        .first()
        .waitFor({ timeout: 20_000 })
        .then(() => page.locator("#accept").count())
        .catch(() => 0);
      if (!offered) {
        throw new Error(
          `no offer on the page: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}\n` +
            `sender:\n${send.lines.join("\n")}\n${send.stderr().slice(-4000)}`,
        );
      }
      await page.locator("#accept").click({ timeout: 5_000 });
      const t0 = Date.now();
      // Sample the JS heaps (Chromium's non-standard performance.memory) while receiving.
      let peak = { page: 0, worker: 0 };
      const sampler = setInterval(async () => {
        const p = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0).catch(() => 0);
        const w = worker ? await worker.evaluate(() => performance.memory?.usedJSHeapSize ?? 0).catch(() => 0) : 0;
        peak = { page: Math.max(peak.page, p), worker: Math.max(peak.worker, w) };
      }, 200);
      await page
        .locator("main[data-state=done], main[data-state=error]")
        .waitFor({ timeout: 30_000 + MB * 200 })
        .finally(() => clearInterval(sampler));
      const secs = (Date.now() - t0) / 1000;
      log(
        `received ${MB} MiB + 0.3 MB in ${secs.toFixed(2)} s from accepting (${((MB * 1.048576) / secs).toFixed(1)} MB/s incl. setup); ` +
          `peak JS heap: page ${(peak.page / 1e6).toFixed(1)} MB, worker ${peak.worker ? `${(peak.worker / 1e6).toFixed(1)} MB` : "n/a (no performance.memory in Workers)"}`,
      );
      const state = await page.locator("main").getAttribute("data-state");
      if (state !== "done") throw new Error(`page ended in ${state}: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
      if (workers !== 1) throw new Error(`the transfer should run in one Worker, saw ${workers}`);
      // The page took up the stream the sealed offer named (docs/CRYPTO.md §4), so the host's
      // hello and manifest left without waiting for DCEP's ACK.
      if (!send.stderr().includes("data channel open, on the agreed stream")) {
        throw new Error(`the page did not take up the agreed stream:\n${send.stderr().slice(-3000)}`);
      }
      // Chromium has the origin-private file system: the files went to disk, not memory.
      const storage = await page.locator("#done").getAttribute("data-storage");
      if (storage !== "disk") throw new Error(`files were kept in ${storage}, expected disk (OPFS)`);
      // The text file must have come LZ4-compressed, so the wasm decoder was on the path.
      const compressed = Number(await page.locator("#done").getAttribute("data-compressed"));
      if (!(compressed > 0)) throw new Error(`no compressed chunk arrived (${compressed})`);
      const links = page.locator("a[download]");
      const n = await links.count();
      if (n !== want.size) throw new Error(`page offers ${n} files, expected ${want.size}`);
      for (let i = 0; i < n; i += 1) {
        const [download] = await Promise.all([page.waitForEvent("download", { timeout: 10_000 }), links.nth(i).click()]);
        const name = download.suggestedFilename();
        const got = sha256(readFileSync(await download.path()));
        if (want.get(name) !== got) throw new Error(`${name}: SHA-256 ${got}, expected ${want.get(name)}`);
        want.delete(name);
      }
      if (want.size) throw new Error(`not received: ${[...want.keys()].join(", ")}`);
      const code = await exitWithin(send, 10_000);
      if (code !== 0) throw new Error(`sender ended with ${code}:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      if (!send.lines.some((l) => l.includes('"event":"done"') || l.includes('"event":"complete"'))) {
        throw new Error(`sender reported no completion:\n${send.lines.join("\n")}`);
      }
    } finally {
      await ctx.close();
    }
  });

  await check("a chunk corrupted after hashing is refused and fetched again; the file is byte-exact", async () => {
    const file = join(WORK, "corrupt.bin");
    writeFileSync(file, randomBytes(2 * 1024 * 1024 + 777));
    const want = sha256(readFileSync(file));
    const password = "flip one byte";
    // The sender's test hook flips a byte of its 3rd chunk after computing its hash.
    const send = sender([file], password, serverUrl, "corrupt", { FERRY_TEST_CORRUPT_CHUNK: "3" });
    const room = await roomOf(send);
    const ctx = await browser.newContext({ acceptDownloads: true });
    const page = await ctx.newPage();
    try {
      await page.goto(`${origin}/web.html?server=${encodeURIComponent(serverUrl)}#${room}/${encodeURIComponent(password)}`);
      await page.locator("#accept").click({ timeout: 20_000 });
      await page.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 30_000 });
      if ((await page.locator("main").getAttribute("data-state")) !== "done") throw new Error(await page.locator("main").innerText());
      const rejected = Number(await page.locator("#done").getAttribute("data-rejected"));
      if (rejected !== 1) throw new Error(`the page refused ${rejected} chunks, expected 1`);
      const [download] = await Promise.all([page.waitForEvent("download", { timeout: 10_000 }), page.locator("a[download]").first().click()]);
      const got = sha256(readFileSync(await download.path()));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      const exit = await exitWithin(send, 10_000);
      if (exit !== 0) throw new Error(`sender ended with ${exit}`);
      if (!send.lines.some((l) => l.includes('"event":"chunk-rejected"'))) throw new Error("the sender saw no resend request");
    } finally {
      await ctx.close();
    }
  });

  await check("the tab closes mid-transfer: the sender keeps the room, a new tab resumes where the first stopped", async () => {
    const file = join(WORK, "slow.bin");
    writeFileSync(file, randomBytes(3 * 1024 * 1024));
    const want = sha256(readFileSync(file));
    const password = "close the tab";
    // About 3 s of sending, so the tab can close in the middle.
    const send = sender([file], password, serverUrl, "drop", { FERRY_TEST_RATE_BPS: String(1024 * 1024) });
    const room = await roomOf(send);
    const url = `${origin}/web.html?server=${encodeURIComponent(serverUrl)}#${room}/${encodeURIComponent(password)}`;
    // One browser profile, two tabs one after the other: the second finds what the first wrote.
    const ctx = await browser.newContext({ acceptDownloads: true });
    try {
      const page1 = await ctx.newPage();
      await page1.goto(url);
      await page1
        .locator("#accept")
        .click({ timeout: 20_000 })
        .catch(async (e) => {
          throw new Error(`first tab: ${e.message}\npage: ${await page1.locator("main").innerText()}\nsender:\n${send.lines.join("\n")}`);
        });
      await page1.locator("main[data-state=transferring]").waitFor({ timeout: 10_000 });
      // Wait for some progress (over 1 MiB) so there is something to resume.
      await page1.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 40, null, { timeout: 10_000 });
      await page1.close({ runBeforeUnload: true });
      // The sender must notice at once (the page closes its connection cleanly) and keep the room.
      await send.line((l) => l.includes('"event":"reconnecting"'), 5_000, "a reconnecting event after the tab closed");
      if (send.child.exitCode !== null) throw new Error(`the sender exited (${send.child.exitCode}) when the tab closed`);
      if (send.lines.some((l) => l.includes('"event":"done"'))) throw new Error("the sender claimed done after the tab closed");
      const page = await ctx.newPage();
      await page.goto(url);
      await page
        .locator("#accept")
        .click({ timeout: 20_000 })
        .catch(async (e) => {
          throw new Error(`second tab: ${e.message}\npage: ${await page.locator("main").innerText()}\nsender:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
        });
      await page.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 30_000 });
      if ((await page.locator("main").getAttribute("data-state")) !== "done") throw new Error(await page.locator("main").innerText());
      const resumed = Number(await page.locator("#done").getAttribute("data-resumed"));
      if (!(resumed >= 1024 * 1024)) throw new Error(`the second tab resumed from ${resumed} bytes, expected at least 1 MiB`);
      const [download] = await Promise.all([page.waitForEvent("download", { timeout: 10_000 }), page.locator("a[download]").first().click()]);
      const got = sha256(readFileSync(await download.path()));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      const exit = await exitWithin(send, 10_000);
      if (exit !== 0) throw new Error(`sender ended with ${exit}\n${send.lines.join("\n")}`);
      log(`resumed from ${resumed} of ${3 * 1024 * 1024} bytes`);
    } finally {
      await ctx.close();
    }
  });

  await check("an offer too large for the page (memory sink): Accept is off, Decline reaches the sender", async () => {
    // Sparse: the sender reads nothing before the receiver accepts.
    const huge = join(WORK, "huge.bin");
    writeFileSync(huge, "");
    truncateSync(huge, 300 * 1024 * 1024);
    const password = "big file words";
    const send = sender([huge], password, serverUrl, "huge");
    const room = await roomOf(send);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    try {
      // `sink=memory`: what a browser without the origin-private file system gets (256 MiB cap).
      await page.goto(`${origin}/web.html?server=${encodeURIComponent(serverUrl)}&sink=memory#${room}/${encodeURIComponent(password)}`);
      const accept = page.locator("#accept");
      await accept.waitFor({ timeout: 20_000 }).catch(async (e) => {
        throw new Error(`${e.message}\npage: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}\nsender:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      });
      if (!(await accept.isDisabled())) throw new Error("Accept is enabled for an offer the page cannot hold");
      const text = await page.locator("main").innerText();
      if (!text.includes("can hold at most")) throw new Error(`no size notice: ${text}`);
      await page.locator("#decline").click({ timeout: 5_000 });
      // The page drops the declined offer and is back on the Receive screen.
      await page.locator("main[data-state=receive]").waitFor({ timeout: 10_000 });
      const exit = await exitWithin(send, 10_000);
      if (exit !== 22) throw new Error(`sender: exit ${exit}, expected 22 (declined)\n${send.lines.join("\n")}`);
    } finally {
      await ctx.close();
    }
  });

  await check("a room that does not exist: the page says so", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    try {
      await page.goto(`${origin}/web.html?server=${encodeURIComponent(serverUrl)}#ZZZZZ-ZZZZZ/${encodeURIComponent("any words")}`);
      const err = page.locator("#error");
      await err.waitFor({ timeout: 10_000 });
      const code = await err.getAttribute("data-code");
      const text = await err.innerText();
      if (code !== "room-not-found" || !text.includes("Room not found")) throw new Error(`page says ${code}: ${text}`);
    } finally {
      await ctx.close();
    }
  });

  await check("wrong password: the page and the sender both say so", async () => {
    const file = join(WORK, "secret.bin");
    writeFileSync(file, randomBytes(4096));
    const send = sender([file], "the right words", serverUrl, "wrong");
    const room = await roomOf(send);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    try {
      await page.goto(`${origin}/web.html?server=${encodeURIComponent(serverUrl)}#${room}/${encodeURIComponent("a wrong guess")}`);
      const err = page.locator("#error");
      await err.waitFor({ timeout: 20_000 });
      const code = await err.getAttribute("data-code");
      const text = await err.innerText();
      if (code !== "wrong-password" || !text.includes("Wrong password")) throw new Error(`page says ${code}: ${text}`);
      if (await page.locator("#accept").count()) throw new Error("the page offered files after a wrong password");
      const exit = await exitWithin(send, 10_000);
      const said = send.lines.some((l) => l.includes("wrong-password"));
      if (exit !== 10 || !said) throw new Error(`sender: exit ${exit}, wrong-password reported: ${said}\n${send.lines.join("\n")}`);
    } finally {
      await ctx.close();
    }
  });
}

await suite.finish(main);
