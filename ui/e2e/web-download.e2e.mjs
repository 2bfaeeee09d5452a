// Streamed downloads: the page, forced onto its Service Worker sink (`?sink=stream`, what a
// browser without room in its private storage gets), receives from the real `ferry send` and
// each file goes straight to the browser's downloads as it verifies (sw.ts, sink-stream.ts).
// The page is served by `ferry-signal --web-dir`, so the deployment's CSP applies (a CSP
// violation fails the check). Checked: every file byte-exact (a random one, a text one, an
// empty one), the page's JS heap stays flat while a file larger than it streams, the offer
// screen says where the files go, and a transfer cancelled mid-file fails its download and
// says the file must start over. In Firefox too when firefox-esr and puppeteer-core are there.
//
// Run by scripts/test-web-e2e.sh, which builds everything and sets:
//   FERRY_CLI_BIN, FERRY_SIGNAL_BIN, WEB_DIST, CHROMIUM, E2E_WORK (FIREFOX optional)
// WEB_DOWNLOAD_MB sizes the random file (default 64). Bounded: every wait has a timeout and the
// whole run is capped.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Script } from "node:vm";

import * as harness from "./web-harness.mjs";

const { env, exitWithin, Harness, heapSampler, sha256File } = harness;
// Loopback unless the harness says the run is split across network namespaces.
const NET = harness.NET ?? { host: "127.0.0.1", cliBind: "127.0.0.1:0", netns: false };

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");
const FIREFOX = process.env.FIREFOX || "";

const MB = Math.min(Number(process.env.WEB_DOWNLOAD_MB ?? 64), 4096);
const CAP_MS = 60_000 + MB * 500 + (process.env.FERRY_HEAVY ? 120_000 : 0);

const hx = new Harness();
const log = (...a) => hx.log("download:", ...a);
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let firefox = null;

const cleanup = async () => {
  if (firefox) await firefox.close().catch(() => {});
  await hx.cleanup();
};
const suite = harness.checks("web-download-e2e", log, CAP_MS, () => cleanup());
const check = suite.check;


/** `ferry send` with a browser link; the link, forced onto the streamed-download sink unless
 * `auto`. */
async function sender(files, password, addr, tag, extraEnv = {}, auto = false) {
  const send = hx.start(
    FERRY,
    ["send", ...files, "--server", `ws://${addr}/ws`, "--password", password, "--web-link"],
    { FERRY_BIND: NET.cliBind, FERRY_DB: join(WORK, `dl-send-${tag}.db`), RUST_LOG: "warn", FERRY_NO_ANNOUNCE: "true", ...extraEnv },
    `ferry send (${tag})`,
  );
  const line = await send.line((l) => l.startsWith("Web link: "), 15_000, "its web link");
  const link = line.slice("Web link: ".length).trim();
  return { send, link: auto ? link : link.replace("#", "?sink=stream#") };
}

/** Sample the JS heap (with ArrayBuffer contents) of every Service Worker and dedicated Worker of the browser every 200 ms
 * (CDP Runtime.getHeapUsage; Workers have no performance.memory); `stop()` → peak per type. */
async function workerHeaps(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const peak = { service_worker: 0, worker: 0 };
  const pending = new Map();
  let seq = 0;
  cdp.on("Target.receivedMessageFromTarget", ({ sessionId, message }) => {
    const m = JSON.parse(message);
    pending.get(`${sessionId}/${m.id}`)?.(m.result);
  });
  const sessions = new Map();
  const ask = (sessionId, method) =>
    new Promise((resolve) => {
      const id = ++seq;
      pending.set(`${sessionId}/${id}`, resolve);
      setTimeout(() => resolve(null), 1_000);
      cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method }) }).catch(() => resolve(null));
    });
  let busy = false;
  const t = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const { targetInfos } = await cdp.send("Target.getTargets");
      for (const ti of targetInfos.filter((x) => x.type in peak)) {
        if (!sessions.has(ti.targetId)) {
          const { sessionId } = await cdp.send("Target.attachToTarget", { targetId: ti.targetId, flatten: false });
          sessions.set(ti.targetId, sessionId);
        }
        const r = await ask(sessions.get(ti.targetId), "Runtime.getHeapUsage");
        // ArrayBuffers' bytes live outside the JS heap proper: count them too.
        if (r?.usedSize) peak[ti.type] = Math.max(peak[ti.type], r.usedSize + (r.backingStorageSize ?? 0));
      }
    } catch {
      // A target that went away between the calls.
    } finally {
      busy = false;
    }
  }, 200);
  return () => {
    clearInterval(t);
    void cdp.detach().catch(() => {});
    return peak;
  };
}

function sources(tag, mb) {
  const dir = join(WORK, `dl-src-${tag}`);
  mkdirSync(dir, { recursive: true });
  const big = join(dir, `random-${tag}.bin`);
  const text = join(dir, `notes ${tag} ü.txt`);
  const empty = join(dir, `empty-${tag}.bin`);
  writeFileSync(big, randomBytes(mb * 1024 * 1024 + 4_321));
  writeFileSync(text, Array.from({ length: 6000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(""));
  writeFileSync(empty, "");
  return [big, text, empty];
}

async function main() {
  // The built Service Worker must be one classic script: nothing imported, nothing exported.
  try {
    new Script(readFileSync(join(DIST, "sw.js"), "utf8"));
  } catch (e) {
    throw new Error(`dist/sw.js is not a classic script: ${e.message}`);
  }

  const signal = hx.start(SIGNAL, ["--listen", `${NET.host}:0`, "--db", join(WORK, "download.db"), "--web-dir", DIST], { RUST_LOG: "warn" }, "ferry-signal");
  const addr = (await signal.line((l) => l.startsWith("listening on "), 15_000, "its address")).slice("listening on ".length).trim();
  const base = `http://${addr}`;
  const sw = await fetch(`${base}/sw.js`);
  if (sw.status !== 200 || !sw.headers.get("content-type")?.startsWith("text/javascript")) throw new Error(`/sw.js: HTTP ${sw.status} ${sw.headers.get("content-type")}`);

  // In the namespace the page's origin is the veth address over plain http; a deployment
  // serves it over https, which this stands in for (a Service Worker needs a secure context).
  const browser = await hx.launch(CHROMIUM, NET.netns ? [base] : []);

  await check(`Chromium, ?sink=stream: ${MB} MiB random, a text and an empty file as downloads, byte-exact, page heap flat`, async () => {
    const files = sources("cr", MB);
    const want = new Map(await Promise.all(files.map(async (p) => [p.split("/").pop(), await sha256File(p)])));
    const { send, link } = await sender(files, "stream these words", addr, "cr");
    const ctx = await browser.newContext({ acceptDownloads: true });
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    const downloads = [];
    page.on("download", (d) => downloads.push(d));
    try {
      await page.goto(link);
      await page.locator("#accept").click({ timeout: 20_000 }).catch(async (e) => {
        throw new Error(`${e.message}\npage: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}\nsender:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      });
      // (The offer screen was showing when Accept was clicked; what it said is checked below.)
      const stopHeap = heapSampler(page);
      const stopWorkers = await workerHeaps(browser);
      const t0 = Date.now();
      await page
        .locator("main[data-state=done], main[data-state=error]")
        .waitFor({ timeout: 30_000 + MB * 300 })
        .catch(async (e) => {
          throw new Error(`${e.message}\npage: ${await page.locator("main").innerText()}\n${downloads.length} downloads\n${consoleLines.join("\n")}`);
        });
      const secs = (Date.now() - t0) / 1000;
      // A small run may end between two samples: take one more.
      const peak = Math.max(stopHeap(), await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0));
      const workers = stopWorkers();
      const state = await page.locator("main").getAttribute("data-state");
      if (state !== "done") throw new Error(`page ended in ${state}: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
      const storage = await page.locator("#done").getAttribute("data-storage");
      if (storage !== "stream") throw new Error(`files went to ${storage}, expected stream`);
      if (await page.locator("a[download]").count()) throw new Error("the done screen offers blobs to save: the files did not stream");
      if (downloads.length !== want.size) throw new Error(`${downloads.length} downloads, expected ${want.size}`);
      for (const d of downloads) {
        const name = d.suggestedFilename();
        const path = await d.path();
        const got = await sha256File(path);
        if (want.get(name) !== got) throw new Error(`${name}: SHA-256 ${got}, expected ${want.get(name)} (${statSync(path).size} bytes)`);
        want.delete(name);
      }
      if (want.size) throw new Error(`not downloaded: ${[...want.keys()].join(", ")}`);
      log(`${MB} MiB + 0.3 MB streamed to downloads in ${secs.toFixed(1)} s (${((MB * 1.048576) / secs).toFixed(1)} MB/s); peak JS heap: page ${(peak / 1e6).toFixed(1)} MB, receive Worker ${(workers.worker / 1e6).toFixed(1)} MB, Service Worker ${(workers.service_worker / 1e6).toFixed(1)} MB`);
      // Flat: the bytes go Worker → Service Worker → download, never through the page; it
      // holds well under the file's size.
      if (!(peak > 0 && peak < 48e6)) throw new Error(`page JS heap peaked at ${(peak / 1e6).toFixed(1)} MB`);
      // The Workers hold at most the Service Worker's window live; what they show above that is
      // chunks already handed on and not yet collected, which V8 caps (about 60-80 MB measured,
      // whether the file is 64 or 256 MiB). A bound that a leak of a large file would pass.
      for (const [kind, bytes] of Object.entries(workers)) {
        if (bytes > 160e6) throw new Error(`${kind} heap peaked at ${(bytes / 1e6).toFixed(1)} MB`);
      }
      const code = await exitWithin(send, 10_000);
      if (code !== 0) throw new Error(`sender ended with ${code}\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      const violations = consoleLines.filter((l) => l.includes("Content Security Policy"));
      if (violations.length) throw new Error(`CSP violations:\n${violations.join("\n")}`);
    } finally {
      await ctx.close();
    }
  });

  await check("Chromium, private storage too small for the offer: the page picks streamed downloads and says so; a transfer cancelled mid-file fails its download and says it must start over", async () => {
    // Sparse, larger than the private file system's quota (10 GiB in a headless context, all
    // of it free): as a 7 GB file may not fit a real browser's. The sender reads nothing
    // before the page accepts, and the transfer is cancelled a few MB in.
    const file = join(WORK, "dl-huge.bin");
    writeFileSync(file, "");
    truncateSync(file, 12 * 1024 * 1024 * 1024);
    // 1 MiB/s, so it is stopped a few seconds in.
    const { send, link } = await sender([file], "stop half way", addr, "stop", { FERRY_TEST_RATE_BPS: String(1024 * 1024) }, true);
    const ctx = await browser.newContext({ acceptDownloads: true });
    const page = await ctx.newPage();
    const downloads = [];
    page.on("download", (d) => downloads.push(d));
    try {
      await page.goto(link);
      const where = page.locator("#storage");
      await where.waitFor({ timeout: 20_000 }).catch(async (e) => {
        throw new Error(`${e.message}\npage: ${await page.locator("main").innerText()}\nsender:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      });
      if ((await where.getAttribute("data-kind")) !== "stream") throw new Error(`offer storage is ${await where.getAttribute("data-kind")}`);
      const said = await where.innerText();
      if (!said.includes("downloads") || !said.includes("cannot resume")) throw new Error(`offer says: ${said}`);
      await page.locator("#accept").click({ timeout: 5_000 });
      // A few MB through (the bar shows whole percents of 12 GiB, so read the bytes line; zeros
      // compress, so this may pass quickly).
      await page.waitForFunction(
        () => {
          const m = /^([\d.]+) (B|KB|MB|GB) of/.exec(document.querySelector("#bytes")?.textContent ?? "");
          return !!m && Number(m[1]) * { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[m[2]] >= 3e6;
        },
        null,
        { timeout: 15_000 },
      );
      if (downloads.length !== 1) throw new Error(`${downloads.length} downloads running, expected 1`);
      // Ctrl-C: the sender cancels the transfer.
      send.child.kill("SIGINT");
      await page.locator("#error").waitFor({ timeout: 15_000 }).catch(async (e) => {
        throw new Error(`${e.message}\npage: ${await page.locator("main").innerText()}\nsender (${send.child.exitCode}):\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
      });
      const text = await page.locator("main").innerText();
      if (!text.includes("start over")) throw new Error(`the page does not say the file must start over: ${text}`);
      const failure = await Promise.race([downloads[0].failure(), sleep(15_000).then(() => "still running")]);
      if (!failure || failure === "still running") throw new Error(`the stopped download did not fail (${failure})`);
      log(`page: ${(await page.locator("#error").getAttribute("data-code")) ?? "?"}; the download failed with "${failure}"`);
      await exitWithin(send, 5_000);
    } finally {
      await ctx.close();
    }
  });

  // Opt-in (about a minute): a download that lasts longer than a Service Worker may sit idle
  // (about 30 s) arrives whole. (Under automation the browser may not stop idle workers at all,
  // so this shows the long stream works; it cannot show that the page's pings are what kept it.)
  if (process.env.FERRY_HEAVY) {
    await check("Chromium, ?sink=stream: a 45 s download, longer than a Service Worker's idle timeout, byte-exact", async () => {
      const file = join(WORK, "dl-long.bin");
      writeFileSync(file, randomBytes(11 * 1024 * 1024));
      const want = await sha256File(file);
      const { send, link } = await sender([file], "a long slow one", addr, "long", { FERRY_TEST_RATE_BPS: String(256 * 1024) });
      const ctx = await browser.newContext({ acceptDownloads: true });
      const page = await ctx.newPage();
      const downloads = [];
      page.on("download", (d) => downloads.push(d));
      try {
        await page.goto(link);
        await page.locator("#accept").click({ timeout: 20_000 });
        const t0 = Date.now();
        await page.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 120_000 });
        if ((await page.locator("main").getAttribute("data-state")) !== "done") throw new Error(await page.locator("main").innerText());
        const secs = (Date.now() - t0) / 1000;
        if (secs < 35) throw new Error(`the transfer took ${secs.toFixed(1)} s, not long enough to show anything`);
        const got = await sha256File(await downloads[0].path());
        if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
        log(`${secs.toFixed(1)} s download, byte-exact`);
      } finally {
        await ctx.close();
      }
    });
  }

  const puppeteer = FIREFOX && existsSync(FIREFOX) ? await import("puppeteer-core").then((m) => m.default).catch(() => null) : null;
  if (puppeteer) {
    await check("Firefox, ?sink=stream: the files stream into its download folder, byte-exact", async () => {
      const dir = join(WORK, "dl-firefox");
      mkdirSync(dir, { recursive: true });
      const files = sources("ff", Math.min(MB, 16));
      const want = new Map(await Promise.all(files.map(async (p) => [p.split("/").pop(), await sha256File(p)])));
      const { send, link } = await sender(files, "firefox stream words", addr, "ff");
      firefox = await puppeteer.launch({
        browser: "firefox",
        executablePath: FIREFOX,
        headless: true,
        protocol: "webDriverBiDi",
        extraPrefsFirefox: {
          // As web-firefox.e2e.mjs: loopback ICE, or across the veth a plain-http origin that
          // counts as secure (as https would), which a Service Worker needs too.
          ...(NET.netns ? { "dom.securecontext.allowlist": NET.host, "dom.serviceWorkers.testing.enabled": true } : { "media.peerconnection.ice.loopback": true }),
          "media.peerconnection.ice.obfuscate_host_addresses": false,
          "browser.download.dir": dir,
          "browser.download.folderList": 2,
          "browser.download.useDownloadDir": true,
          "browser.download.always_ask_before_handling_new_types": false,
          "browser.helperApps.neverAsk.saveToDisk": "application/octet-stream,text/plain",
          "browser.download.alwaysOpenPanel": false,
        },
      });
      const page = await firefox.newPage();
      try {
        await page.goto(link);
        await page.waitForSelector("#accept", { timeout: 20_000 });
        const kind = await page.$eval("#storage", (e) => e.getAttribute("data-kind"));
        if (kind !== "stream") throw new Error(`offer storage is ${kind} (no Service Worker in this Firefox?)`);
        await page.click("#accept");
        await page.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: 60_000 });
        const state = await page.$eval("main", (e) => e.dataset.state);
        if (state !== "done") throw new Error(`page ended in ${state}: ${await page.$eval("main", (e) => e.innerText)}`);
        // Firefox writes to a .part file and renames it when the download ends.
        for (let i = 0; i < 100; i += 1) {
          const names = readdirSync(dir).filter((n) => !n.endsWith(".part"));
          if (names.length >= want.size && !readdirSync(dir).some((n) => n.endsWith(".part"))) break;
          await sleep(100);
        }
        for (const name of readdirSync(dir)) {
          const got = await sha256File(join(dir, name));
          if (want.get(name) !== got) throw new Error(`${name}: SHA-256 ${got}, expected ${want.get(name)}`);
          want.delete(name);
        }
        if (want.size) throw new Error(`not downloaded: ${[...want.keys()].join(", ")} (folder: ${readdirSync(dir).join(", ")})`);
        const code = await exitWithin(send, 10_000);
        if (code !== 0) throw new Error(`sender ended with ${code}`);
      } finally {
        await firefox.close().catch(() => {});
        firefox = null;
      }
    });
  } else {
    log("Firefox: SKIPPED (needs FIREFOX set to firefox-esr, and puppeteer-core)");
  }
}

await suite.finish(main);
