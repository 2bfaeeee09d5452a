// The browser peer in headless Firefox ESR (Debian's firefox-esr, driven over WebDriver BiDi by
// puppeteer-core; nothing downloads a browser), with the page served by `ferry-signal
// --web-dir`. CLI → Firefox: `ferry send --web-link` prints the link, Firefox opens it,
// accepts, and saves the files into a download folder, whose SHA-256 must equal the sources'.
// Firefox → CLI: the page in send mode hosts a room and `ferry receive` joins with the link
// it shows, byte-exact. Also in Firefox: a wrong password (both sides say so) and a chunk
// damaged after hashing (refused, sent again, byte-exact).
//
// Run by scripts/test-web-e2e.sh when firefox-esr is installed; it sets FERRY_CLI_BIN,
// FERRY_SIGNAL_BIN, WEB_DIST, FIREFOX, E2E_WORK. Bounded: every wait has a timeout and the
// whole run is capped at 90 s.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import puppeteer from "puppeteer-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run scripts/test-web-e2e.sh)`);
  return v;
};
const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const FIREFOX = env("FIREFOX");
const WORK = env("E2E_WORK");

const started = Date.now();
const children = [];
let browser = null;
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] firefox:`, ...a);
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
}
const cap = setTimeout(async () => {
  console.error("web-firefox-e2e: the whole run passed its 90 s cap");
  await cleanup();
  process.exit(1);
}, 90_000);

function start(cmd, args, extraEnv) {
  const child = spawn(cmd, args, { env: { ...process.env, ...extraEnv }, stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-20_000)));
  createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
  const exited = new Promise((r) => child.on("exit", (code, sig) => r(code ?? sig)));
  return {
    lines,
    exited,
    stderr: () => stderr,
    async line(prefix, ms) {
      for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) {
        const hit = lines.find((l) => l.startsWith(prefix));
        if (hit) return hit;
        if (child.exitCode !== null) break;
      }
      throw new Error(`no "${prefix}" line within ${ms} ms:\n${lines.join("\n")}\n${stderr.slice(-3000)}`);
    },
  };
}

async function main() {
  const signal = start(SIGNAL, ["--listen", "127.0.0.1:0", "--db", join(WORK, "firefox.db"), "--web-dir", DIST], { RUST_LOG: "warn" });
  const addr = (await signal.line("listening on ", 15_000)).slice("listening on ".length).trim();

  const files = { "ff-random.bin": randomBytes(3 * 1024 * 1024 + 555), "ff-text.txt": Buffer.from("the quick brown fox\n".repeat(20_000)), "ff-empty.bin": Buffer.alloc(0) };
  const paths = Object.entries(files).map(([name, data]) => {
    writeFileSync(join(WORK, name), data);
    return join(WORK, name);
  });
  const send = start(FERRY, ["send", ...paths, "--server", `ws://${addr}/ws`, "--password", "firefox words", "--web-link"], {
    FERRY_BIND: "127.0.0.1:0",
    FERRY_DB: join(WORK, "send-firefox.db"),
    RUST_LOG: "warn",
    FERRY_NO_ANNOUNCE: "true",
  });
  const link = (await send.line("Web link: ", 15_000)).slice("Web link: ".length).trim();

  const downloads = join(WORK, "firefox-downloads");
  mkdirSync(downloads, { recursive: true });
  browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    protocol: "webDriverBiDi",
    extraPrefsFirefox: {
      // Everything here is on 127.0.0.1: let ICE use loopback, and show host addresses as
      // they are (webrtc-rs does not resolve mDNS names).
      "media.peerconnection.ice.loopback": true,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "browser.download.folderList": 2,
      "browser.download.dir": downloads,
      "browser.download.useDownloadDir": true,
      "browser.download.always_ask_before_handling_new_types": false,
      "browser.helperApps.neverAsk.saveToDisk": "application/octet-stream,text/plain",
    },
  });
  log(`Firefox ${await browser.version()}; opening ${link.replace(/#.*/, "#…")}`);
  const page = await browser.newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await page.goto(link);
  const offered = await page.waitForSelector("#accept, main[data-state=error]", { timeout: 20_000 }).catch(() => null);
  if (!offered || !(await page.$("#accept"))) {
    throw new Error(`no offer: ${await page.$eval("main", (m) => m.innerText).catch(() => "?")}\n${consoleLines.join("\n")}\nsender:\n${send.lines.join("\n")}\n${send.stderr()}`);
  }
  await page.click("#accept");
  await page.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: 40_000 });
  const state = await page.$eval("main", (m) => m.dataset.state);
  if (state !== "done") throw new Error(`page ended in ${state}: ${await page.$eval("main", (m) => m.innerText)}\n${consoleLines.join("\n")}`);
  const storage = await page.$eval("#done", (d) => d.dataset.storage);
  const links = await page.$$("a[download]");
  if (links.length !== 3) throw new Error(`page offers ${links.length} files, expected 3`);
  for (const a of links) await a.click();
  const until = Date.now() + 15_000;
  for (;;) {
    const have = readdirSync(downloads).filter((f) => !f.endsWith(".part"));
    const done = Object.keys(files).every((n) => have.includes(n) && existsSync(join(downloads, n)) && readFileSync(join(downloads, n)).length === files[n].length);
    if (done) break;
    if (Date.now() > until) throw new Error(`downloads incomplete: ${have.join(", ")}`);
    await sleep(100);
  }
  for (const [n, data] of Object.entries(files)) {
    const got = sha256(readFileSync(join(downloads, n)));
    if (got !== sha256(data)) throw new Error(`${n}: SHA-256 ${got}, expected ${sha256(data)}`);
  }
  const code = await Promise.race([send.exited, sleep(10_000).then(() => "still running")]);
  if (code !== 0) throw new Error(`sender ended with ${code}\n${send.lines.join("\n")}\n${send.stderr()}`);
  const violations = consoleLines.filter((l) => l.includes("Content-Security-Policy") || l.includes("Content Security Policy"));
  if (violations.length) throw new Error(`CSP violations:\n${violations.join("\n")}`);
  log(`CLI → Firefox: 3 files byte-exact (stored in ${storage})`);
  await page.close();

  // A wrong password: the page and the sender both say so, and nothing is offered.
  {
    const wsend = start(FERRY, ["send", paths[1], "--server", `ws://${addr}/ws`, "--password", "right words", "--web-link"], {
      FERRY_BIND: "127.0.0.1:0",
      FERRY_DB: join(WORK, "send-firefox-wrong.db"),
      RUST_LOG: "warn",
      FERRY_NO_ANNOUNCE: "true",
    });
    const wlink = (await wsend.line("Web link: ", 15_000)).slice("Web link: ".length).trim().replace(/#.*/, "#a%20wrong%20guess");
    const wpage = await browser.newPage();
    await wpage.goto(wlink);
    await wpage.waitForSelector("#error", { timeout: 20_000 });
    const code = await wpage.$eval("#error", (e) => e.dataset.code);
    if (code !== "wrong-password") throw new Error(`wrong password: the page says ${code}`);
    if (await wpage.$("#accept")) throw new Error("the page offered files after a wrong password");
    const exit = await Promise.race([wsend.exited, sleep(10_000).then(() => "still running")]);
    if (exit !== 10 || !/wrong.password/i.test(`${wsend.lines.join("\n")}\n${wsend.stderr()}`)) {
      throw new Error(`sender after a wrong password: exit ${exit}\n${wsend.lines.join("\n")}\n${wsend.stderr()}`);
    }
    await wpage.close();
    log("wrong password: the page and the sender both say so");
  }

  // A chunk damaged after hashing (the debug CLI's test hook): Firefox refuses it, the sender
  // sends it again, and the file is byte-exact.
  {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const file = join(WORK, "ff-corrupt.bin");
    writeFileSync(file, data);
    const csend = start(FERRY, ["send", file, "--server", `ws://${addr}/ws`, "--password", "damaged words", "--web-link", "--json"], {
      FERRY_BIND: "127.0.0.1:0",
      FERRY_DB: join(WORK, "send-firefox-corrupt.db"),
      RUST_LOG: "warn",
      FERRY_NO_ANNOUNCE: "true",
      FERRY_TEST_CORRUPT_CHUNK: "3",
    });
    const created = JSON.parse(await csend.line('{"event":"room-created"', 15_000));
    const clink = `http://${addr}/j/${created.room}#${encodeURIComponent("damaged words")}`;
    const cpage = await browser.newPage();
    await cpage.goto(clink);
    await cpage.waitForSelector("#accept", { timeout: 20_000 });
    await cpage.click("#accept");
    await cpage.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: 40_000 });
    const rejected = Number(await cpage.$eval("#done", (d) => d.dataset.rejected).catch(() => -1));
    if (rejected !== 1) throw new Error(`the page refused ${rejected} chunks, expected 1: ${await cpage.$eval("main", (m) => m.innerText)}`);
    await (await cpage.$("a[download]")).click();
    const cuntil = Date.now() + 15_000;
    while (!(existsSync(join(downloads, "ff-corrupt.bin")) && readFileSync(join(downloads, "ff-corrupt.bin")).length === data.length)) {
      if (Date.now() > cuntil) throw new Error("the repaired file was not downloaded");
      await sleep(100);
    }
    const got = sha256(readFileSync(join(downloads, "ff-corrupt.bin")));
    if (got !== sha256(data)) throw new Error(`damaged chunk: SHA-256 ${got}, expected ${sha256(data)}`);
    if (!csend.lines.some((l) => l.includes('"event":"chunk-rejected"'))) throw new Error("the sender saw no resend request");
    await cpage.close();
    log("a chunk damaged after hashing: refused, sent again, byte-exact");
  }

  // Firefox → CLI: the same served page in send mode hosts a room; `ferry receive` joins with
  // the link the page shows.
  const src = join(WORK, "ff-send.bin");
  const sent = randomBytes(2 * 1024 * 1024 + 99);
  writeFileSync(src, sent);
  const spage = await browser.newPage();
  const sconsole = [];
  spage.on("console", (m) => sconsole.push(`${m.type()}: ${m.text()}`));
  await spage.goto(`http://${addr}/?send`);
  const input = await spage.waitForSelector("#files", { timeout: 10_000 });
  await input.uploadFile(src);
  await spage.click("#create");
  await spage.waitForSelector("#room-link, main[data-state=error]", { timeout: 15_000 });
  const roomLink = await spage.$eval("#room-link", (e) => e.innerText).catch(async () => {
    throw new Error(`no room: ${await spage.$eval("main", (m) => m.innerText)}\n${sconsole.join("\n")}`);
  });
  const out = join(WORK, "ff-recv");
  mkdirSync(out, { recursive: true });
  const recv = start(FERRY, ["receive", roomLink, "--out", out, "--yes", "--json"], {
    FERRY_BIND: "127.0.0.1:0",
    FERRY_DB: join(WORK, "recv-firefox.db"),
    RUST_LOG: "warn",
  });
  await spage.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: 40_000 });
  const sstate = await spage.$eval("main", (m) => m.dataset.state);
  if (sstate !== "done") throw new Error(`sending page ended in ${sstate}: ${await spage.$eval("main", (m) => m.innerText)}\n${sconsole.join("\n")}`);
  const rcode = await Promise.race([recv.exited, sleep(10_000).then(() => "still running")]);
  if (rcode !== 0) throw new Error(`receiver ended with ${rcode}\n${recv.lines.join("\n")}\n${recv.stderr()}`);
  const got = sha256(readFileSync(join(out, "ff-send.bin")));
  if (got !== sha256(sent)) throw new Error(`Firefox → CLI: SHA-256 ${got}, expected ${sha256(sent)}`);
  const sviolations = sconsole.filter((l) => l.includes("Content-Security-Policy") || l.includes("Content Security Policy"));
  if (sviolations.length) throw new Error(`CSP violations while sending:\n${sviolations.join("\n")}`);
  log("Firefox → CLI: byte-exact");
}

let ok = false;
try {
  await main();
  ok = true;
} catch (e) {
  log(`FAIL: ${e?.stack ?? e}`);
}
await cleanup();
clearTimeout(cap);
console.log(`web-firefox-e2e: ${ok ? "1 passed, 0 failed" : "0 passed, 1 failed"} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(ok ? 0 : 1);
