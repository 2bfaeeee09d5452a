// The browser peer in headless Firefox ESR (Debian's firefox-esr, driven over WebDriver BiDi by
// puppeteer-core; nothing downloads a browser), with the page served by `ferry-signal
// --web-dir`. Every check is byte-exact (SHA-256 of what lands against the source's):
// - CLI → Firefox: `ferry send --web-link` prints the link, Firefox opens it, accepts, and
//   saves a 256 MiB random file, a folder of 20 small files in subfolders and a 0-byte file
//   into a download folder.
// - a wrong password (both sides say so) and a chunk damaged after hashing (refused, resent).
// - CLI → Firefox with the link dropped: `ferry send` is killed mid-file, `ferry send --resume`
//   takes the same room back from its resume database, the page joins again and resumes from
//   the bytes it already holds (a non-zero offset).
// - Firefox → CLI: the page in send mode hosts a room and `ferry receive` joins with its link:
//   the same 256 MiB file, the folder and the 0-byte file. Firefox's WebDriver BiDi cannot set
//   a directory on `<input webkitdirectory>` (input.setFiles: "Is directory"), so the
//   folder's files go through the Send screen's multi-file input, flat, and the log says so.
// - Firefox → CLI with the link dropped: `ferry receive` is killed mid-file and run again on
//   its resume database; the page resumes from the receiver's checkpoint.
//
// Run by scripts/test-web-e2e.sh when firefox-esr is installed; it sets FERRY_CLI_BIN,
// FERRY_SIGNAL_BIN, WEB_DIST, FIREFOX, E2E_WORK. With E2E_HOST set (the script's network
// namespaces) the server listens there, every `ferry` binds E2E_CLI_HOST, and Firefox treats
// the page's plain-http origin as secure (`dom.securecontext.allowlist`) instead of being
// allowed loopback ICE. WEB_FIREFOX_MB sizes the random file (default 256). Bounded: every wait
// has a timeout and the whole run a cap that grows with the size. Each run keeps its files in
// a fresh folder under E2E_WORK, so an earlier run's downloads are never mistaken for this one's.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";

import puppeteer from "puppeteer-core";

import { checks, fileTree, sha256File } from "./web-harness.mjs";

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
const MB = Math.min(Number(process.env.WEB_FIREFOX_MB ?? 256), 4096);
// Measured alone on 2 cores: 52 s at 256 MiB (about 25 s fixed, mostly Firefox waiting out
// ICE consent after the killed sender, plus 0.1 s per MiB); room for a busy machine.
const CAP_MS = 60_000 + MB * 300;
// Where the peers live (see scripts/test-web-e2e.sh): the browser's side and the CLI's side of
// a veth pair, or loopback for both.
const NET = {
  host: process.env.E2E_HOST || "127.0.0.1",
  cliBind: `${process.env.E2E_CLI_HOST || "127.0.0.1"}:0`,
  netns: !!process.env.E2E_HOST,
};

const started = Date.now();
const children = [];
let browser = null;
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] firefox:`, ...a);
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const exitWithin = (p, ms) => Promise.race([p.exited, sleep(ms).then(() => "still running")]);

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
}
const suite = checks("web-firefox-e2e", log, CAP_MS, () => cleanup());
const check = suite.check;


function start(cmd, args, extraEnv, name) {
  const child = spawn(cmd, args, { env: { ...process.env, ...extraEnv }, stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-20_000)));
  createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
  const exited = new Promise((r) => {
    child.on("exit", (code, sig) => r(code ?? sig));
    child.on("error", (e) => r(`spawn failed: ${e.message}`));
  });
  const said = () => `${name}:\n${lines.join("\n")}\n${stderr.slice(-3000)}`;
  return {
    child,
    lines,
    exited,
    said,
    /** The first stdout line matching `pred`, within `ms`. */
    async line(pred, ms, what) {
      for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before ${what}\n${said()}`);
      }
      throw new Error(`no ${what} within ${ms} ms\n${said()}`);
    },
  };
}

/** The environment of one `ferry` process; its resume database is per `tag`. */
const cliEnv = (run, tag, extra = {}) => ({ FERRY_BIND: NET.cliBind, FERRY_DB: join(run, `${tag}.db`), RUST_LOG: "warn", FERRY_NO_ANNOUNCE: "true", ...extra });


/** `bytes` random bytes written in 8 MiB pieces (never the whole file in memory); its SHA-256. */
function writeRandom(path, bytes) {
  const h = createHash("sha256");
  const fd = openSync(path, "w");
  try {
    for (let left = bytes; left > 0; left -= 8 << 20) {
      const piece = randomBytes(Math.min(left, 8 << 20));
      h.update(piece);
      writeSync(fd, piece);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

const tree = fileTree;

/** Wait (at most `ms`) until every file of `want` (name → size) sits finished in `dir`. */
async function downloaded(dir, want, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const have = readdirSync(dir);
    // Firefox fills `name.part` and then renames it; another check's leftovers do not count.
    const busy = have.filter((f) => f.endsWith(".part") && [...want.keys()].some((n) => f.startsWith(n.replace(/\.[^.]*$/, ""))));
    const missing = [...want].filter(([n, size]) => !have.includes(n) || statSync(join(dir, n)).size !== size);
    if (!missing.length && !busy.length) return;
    if (Date.now() > until) throw new Error(`downloads incomplete after ${ms} ms: missing ${missing.map(([n]) => n).join(", ")}; in ${dir}: ${have.join(", ")}`);
    await sleep(100);
  }
}

/** A page's console, kept; a CSP violation in it fails the check. */
function watchConsole(page) {
  const lines = [];
  page.on("console", (m) => lines.push(`${m.type()}: ${m.text()}`));
  return {
    lines,
    csp() {
      const v = lines.filter((l) => l.includes("Content-Security-Policy") || l.includes("Content Security Policy"));
      if (v.length) throw new Error(`CSP violations:\n${v.join("\n")}`);
    },
  };
}

const stateOf = (page) => page.$eval("main", (m) => m.dataset.state);
const textOf = (page) => page.$eval("main", (m) => m.innerText).catch(() => "?");

/** Wait (at most `ms`) for the page to end; anything but `done` throws with what it said. */
async function finished(page, con, ms) {
  await page.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: ms });
  const state = await stateOf(page);
  if (state !== "done") throw new Error(`page ended in ${state}: ${await textOf(page)}\n${con.lines.join("\n")}`);
}

/** Click the page's download links; each lands in `dir` under its base name. */
async function saveAll(page) {
  // Another page may be in front (the checks overlap): a click lands in the active tab only.
  await page.bringToFront();
  const links = await page.$$("a[download]");
  const paths = [];
  for (const a of links) {
    paths.push(await a.evaluate((e) => e.dataset.path));
    await a.click();
  }
  return paths;
}

async function main() {
  // A fresh folder per run: Firefox names a download `x(1).bin` when `x.bin` is already there.
  const run = mkdtempSync(join(WORK, "firefox-"));
  const downloads = join(run, "downloads");
  mkdirSync(downloads);

  const signal = start(SIGNAL, ["--listen", `${NET.host}:0`, "--db", join(run, "signal.db"), "--web-dir", DIST], { RUST_LOG: "warn" }, "ferry-signal");
  const addr = (await signal.line((l) => l.startsWith("listening on "), 15_000, "its address")).slice("listening on ".length).trim();
  const server = `ws://${addr}/ws`;
  const webLink = (room, password) => `http://${addr}/j/${room}#${encodeURIComponent(password)}`;

  browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    protocol: "webDriverBiDi",
    extraPrefsFirefox: {
      // Show host addresses as they are (webrtc-rs does not resolve mDNS names). On loopback,
      // let ICE use it; across the veth, the page's plain-http origin must count as secure
      // (as an https deployment would be) for its WebCrypto and WebRTC.
      ...(NET.netns ? { "dom.securecontext.allowlist": NET.host } : { "media.peerconnection.ice.loopback": true }),
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "browser.download.folderList": 2,
      "browser.download.dir": downloads,
      "browser.download.useDownloadDir": true,
      "browser.download.always_ask_before_handling_new_types": false,
      "browser.helperApps.neverAsk.saveToDisk": "application/octet-stream,text/plain",
    },
  });
  log(`Firefox ${await browser.version()}; page and signaling at ${addr}${NET.netns ? ` (netns; ferry binds ${NET.cliBind})` : ""}; files in ${run}`);

  // The sources, shared by both directions: the random file (hashed as it is written), a
  // folder of 20 small files in subfolders, and a 0-byte file. Base names are unique, since
  // the page offers each file as a download under its base name.
  const src = join(run, "src");
  const album = join(src, "album");
  for (const d of ["", "sub", "sub/deeper"]) mkdirSync(join(album, d), { recursive: true });
  const big = join(src, "random.bin");
  const empty = join(src, "empty.bin");
  const bigSize = MB * 1024 * 1024 + 12_345;
  const t0 = Date.now();
  const bigSha = writeRandom(big, bigSize);
  writeFileSync(empty, "");
  for (let i = 0; i < 20; i += 1) writeFileSync(join(album, ["", "sub", "sub/deeper"][i % 3], `note-${i}.txt`), `small file ${i}\n`.repeat(i * 37 + 1));
  const albumTree = await tree(album);
  log(`wrote ${MB} MiB of random bytes and the folder in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  await check(`CLI → Firefox: ${MB} MiB random, a folder of 20 small files and a 0-byte file, byte-exact`, async () => {
    const password = "firefox words";
    const send = start(FERRY, ["send", big, album, empty, "--server", server, "--password", password, "--web-link"], cliEnv(run, "send-big"), "ferry send (big)");
    const link = (await send.line((l) => l.startsWith("Web link: "), 15_000, "a web link")).slice("Web link: ".length).trim();
    const page = await browser.newPage();
    const con = watchConsole(page);
    try {
      await page.goto(link);
      if (!(await page.evaluate(() => window.isSecureContext))) throw new Error(`${new URL(link).origin} is not a secure context in Firefox`);
      const offered = await page.waitForSelector("#accept, main[data-state=error]", { timeout: 20_000 }).catch(() => null);
      if (!offered || !(await page.$("#accept"))) throw new Error(`no offer: ${await textOf(page)}\n${con.lines.join("\n")}\n${send.said()}`);
      await page.click("#accept");
      const t = Date.now();
      await finished(page, con, 30_000 + MB * 300);
      const secs = (Date.now() - t) / 1000;
      log(`received ${MB} MiB + the folder in ${secs.toFixed(2)} s from Accept (${((MB * 1.048576) / secs).toFixed(1)} MB/s incl. setup)`);
      const storage = await page.$eval("#done", (d) => d.dataset.storage);
      if (storage !== "disk") throw new Error(`files were kept in ${storage}, expected disk (the origin-private file system)`);
      const want = new Map([["random.bin", bigSha], ["empty.bin", sha256(Buffer.alloc(0))], ...[...albumTree].map(([p, h]) => [join("album", p), h])]);
      const t1 = Date.now();
      const paths = await saveAll(page);
      if (paths.length !== want.size || paths.some((p) => !want.has(p))) throw new Error(`the page offers ${paths.join(", ")}; expected ${[...want.keys()].join(", ")}`);
      await downloaded(downloads, new Map(paths.map((p) => [basename(p), p === "random.bin" ? bigSize : statSync(join(src, p)).size])), 30_000 + MB * 100);
      log(`clicked and saved ${paths.length} downloads in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      for (const [p, h] of want) {
        const got = await sha256File(join(downloads, basename(p)));
        if (got !== h) throw new Error(`${p}: SHA-256 ${got}, expected ${h}`);
      }
      const code = await exitWithin(send, 10_000);
      if (code !== 0) throw new Error(`sender ended with ${code}\n${send.said()}`);
      con.csp();
    } finally {
      await page.close();
    }
  });

  // Firefox notices a peer that vanished without a word only when ICE consent runs out (about
  // 30 s), so the other checks run while this page waits; it resumes once they are done, so the
  // 256 MiB figures are not shared with it.
  await check("a wrong password: the page and the sender both say so", async () => {
    const send = start(FERRY, ["send", join(album, "note-0.txt"), "--server", server, "--password", "right words", "--web-link"], cliEnv(run, "send-wrong"), "ferry send (wrong)");
    const link = (await send.line((l) => l.startsWith("Web link: "), 15_000, "a web link")).slice("Web link: ".length).trim().replace(/#.*/, "#a%20wrong%20guess");
    const page = await browser.newPage();
    try {
      await page.goto(link);
      await page.waitForSelector("#error", { timeout: 20_000 });
      const code = await page.$eval("#error", (e) => e.dataset.code);
      if (code !== "wrong-password") throw new Error(`wrong password: the page says ${code}`);
      if (await page.$("#accept")) throw new Error("the page offered files after a wrong password");
      const exit = await exitWithin(send, 10_000);
      if (exit !== 10 || !/wrong.password/i.test(send.said())) throw new Error(`sender after a wrong password: exit ${exit}\n${send.said()}`);
    } finally {
      await page.close();
    }
  });

  await check("a chunk damaged after hashing (the debug CLI's test hook): refused, sent again, byte-exact", async () => {
    const file = join(run, "corrupt.bin");
    const want = writeRandom(file, 3 * 1024 * 1024 + 7);
    const password = "damaged words";
    const send = start(FERRY, ["send", file, "--server", server, "--password", password, "--json"], cliEnv(run, "send-corrupt", { FERRY_TEST_CORRUPT_CHUNK: "3" }), "ferry send (corrupt)");
    const { room } = JSON.parse(await send.line((l) => l.includes('"event":"room-created"'), 15_000, "room-created"));
    const page = await browser.newPage();
    try {
      await page.goto(webLink(room, password));
      await page.waitForSelector("#accept", { timeout: 20_000 });
      await page.click("#accept");
      await page.waitForSelector("main[data-state=done], main[data-state=error]", { timeout: 40_000 });
      const rejected = Number(await page.$eval("#done", (d) => d.dataset.rejected).catch(() => -1));
      if (rejected !== 1) throw new Error(`the page refused ${rejected} chunks, expected 1: ${await textOf(page)}`);
      await saveAll(page);
      await downloaded(downloads, new Map([["corrupt.bin", statSync(file).size]]), 15_000);
      const got = await sha256File(join(downloads, "corrupt.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      if (!send.lines.some((l) => l.includes('"event":"chunk-rejected"'))) throw new Error("the sender saw no resend request");
    } finally {
      await page.close();
    }
  });

  /** The page in send mode with `files` picked (and `folder`, see the header), its room open. */
  async function sendRoom(files, folder, extra = "") {
    const page = await browser.newPage();
    const con = watchConsole(page);
    await page.goto(`http://${addr}/?send${extra}`);
    // Firefox's WebDriver BiDi cannot set a directory on an input, so a folder's files go
    // flat, with the other files, through the Send screen's file input in one pick.
    const flat = !!folder;
    const more = flat ? [...files, ...[...(await tree(folder)).keys()].map((p) => join(folder, p))] : files;
    await (await page.waitForSelector("#files-input", { timeout: 10_000 })).uploadFile(...more);
    await page.waitForSelector("#room-link, main[data-state=error]", { timeout: 15_000 });
    const link = await page.$eval("#room-link", (e) => e.innerText).catch(async () => {
      throw new Error(`no room: ${await textOf(page)}\n${con.lines.join("\n")}`);
    });
    return { page, con, link, flat };
  }

  // Downloads are clicked in the front tab only; the dropped-link page waits in the
  // background from here on, so the checks that save downloads run before it opens.
  let openGate;
  const gate = new Promise((r) => (openGate = r));
  const dropped = check("CLI → Firefox, the link dropped: `ferry send` killed mid-file, `--resume` takes the room back, the page resumes", async () => {
    const size = 16 * 1024 * 1024;
    const file = join(run, "resume.bin");
    const want = writeRandom(file, size);
    const password = "killed sender words";
    // About 4 s of sending at 4 MiB/s, so the sender can die in the middle.
    const slow = { FERRY_TEST_RATE_BPS: String(4 * 1024 * 1024) };
    const first = start(FERRY, ["send", file, "--server", server, "--password", password, "--json"], cliEnv(run, "send-resume", slow), "ferry send (first)");
    const created = JSON.parse(await first.line((l) => l.includes('"event":"room-created"'), 15_000, "room-created"));
    const page = await browser.newPage();
    const con = watchConsole(page);
    try {
      await page.goto(webLink(created.room, password));
      await page.waitForSelector("#accept", { timeout: 20_000 });
      await page.click("#accept");
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 40, { timeout: 20_000 });
      first.child.kill("SIGKILL");
      await first.exited;
      const killedAt = Date.now();
      // The page notices the link is gone and offers to try again (same room and password).
      // The sender comes back at once, in the same room, from its resume database.
      const second = start(FERRY, ["send", "--resume", created.transfer_id, "--server", server, "--password", password, "--json"], cliEnv(run, "send-resume", slow), "ferry send (resumed)");
      const again = JSON.parse(await second.line((l) => l.includes('"event":"room-created"'), 15_000, "room-created"));
      if (again.room !== created.room) throw new Error(`the resumed sender opened room ${again.room}, not ${created.room}`);
      await page.waitForSelector("main[data-state=error] #retry, main[data-state=done]", { timeout: 60_000 });
      if ((await stateOf(page)) === "done") throw new Error("the page claimed done after the sender died");
      const code = await page.$eval("#error", (e) => e.dataset.code).catch(() => "?");
      log(`dropped link: the page saw it after ${((Date.now() - killedAt) / 1000).toFixed(1)} s (${code}); joining again once the other checks are done`);
      await gate;
      await page.click("#retry");
      await page.waitForSelector("#accept", { timeout: 20_000 }).catch(async (e) => {
        throw new Error(`no second offer: ${e.message}\n${await textOf(page)}\n${second.said()}`);
      });
      await page.click("#accept");
      await finished(page, con, 30_000);
      const resumed = Number(await page.$eval("#done", (d) => d.dataset.resumed));
      if (!(resumed >= 1024 * 1024)) throw new Error(`the page resumed from ${resumed} bytes, expected at least 1 MiB`);
      await saveAll(page);
      await downloaded(downloads, new Map([["resume.bin", size]]), 15_000);
      const got = await sha256File(join(downloads, "resume.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      const exit = await exitWithin(second, 10_000);
      if (exit !== 0) throw new Error(`resumed sender ended with ${exit}\n${second.said()}`);
      log(`dropped link: the page resumed from ${resumed} of ${size} bytes`);
    } finally {
      await page.close();
    }
  });

  await check(`Firefox → CLI: ${MB} MiB random, a folder of 20 small files and a 0-byte file, byte-exact`, async () => {
    const { page, con, link, flat } = await sendRoom([big, empty], album);
    try {
      if (flat) log("Firefox's WebDriver BiDi cannot pick a directory: the folder's files go through the multi-file input, flat");
      const want = new Map([["random.bin", bigSha], ["empty.bin", sha256(Buffer.alloc(0))], ...[...albumTree].map(([p, h]) => [flat ? basename(p) : join("album", p), h])]);
      const out = join(run, "recv-big");
      mkdirSync(out);
      const recv = start(FERRY, ["receive", link, "--out", out, "--yes", "--json"], cliEnv(run, "recv-big"), "ferry receive (big)");
      await page.waitForSelector("main[data-state=transferring], main[data-state=done]", { timeout: 20_000 }).catch(async (e) => {
        throw new Error(`never connected: ${e.message}\n${await textOf(page)}\n${recv.said()}`);
      });
      const t = Date.now();
      await finished(page, con, 30_000 + MB * 300);
      const secs = (Date.now() - t) / 1000;
      log(`sent ${MB} MiB + the folder in ${secs.toFixed(2)} s from connecting (${((MB * 1.048576) / secs).toFixed(1)} MB/s incl. setup)`);
      const code = await exitWithin(recv, 10_000);
      if (code !== 0) throw new Error(`receiver ended with ${code}\n${recv.said()}`);
      const got = await tree(out);
      for (const [p, h] of want) if (got.get(p) !== h) throw new Error(`${p}: SHA-256 ${got.get(p)}, expected ${h} (received: ${[...got.keys()].join(", ")})`);
      if (got.size !== want.size) throw new Error(`received ${got.size} files, expected ${want.size}: ${[...got.keys()].join(", ")}`);
      const files = Number(await page.$eval("#done", (d) => d.dataset.files));
      if (files !== want.size) throw new Error(`the page says ${files} files confirmed, expected ${want.size}`);
      con.csp();
    } finally {
      await page.close();
    }
  });

  await check("Firefox → CLI, the link dropped: `ferry receive` killed mid-file and run again, the page resumes", async () => {
    const size = 16 * 1024 * 1024;
    const file = join(run, "upload.bin");
    const want = writeRandom(file, size);
    // About 4 s at 4 MiB/s, so the receiver dies past its first durable checkpoint (8 MiB).
    const { page, con, link } = await sendRoom([file], null, `&throttle=${4 * 1024 * 1024}`);
    try {
      const out = join(run, "recv-drop");
      mkdirSync(out);
      const first = start(FERRY, ["receive", link, "--out", out, "--yes", "--json"], cliEnv(run, "recv-drop"), "ferry receive (first)");
      await page.waitForSelector("main[data-state=transferring]", { timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 65, { timeout: 20_000 });
      first.child.kill("SIGKILL");
      await first.exited;
      if ((await stateOf(page)) === "done") throw new Error("the page claimed done after the receiver died");
      const second = start(FERRY, ["receive", link, "--out", out, "--yes", "--json"], cliEnv(run, "recv-drop"), "ferry receive (again)");
      await finished(page, con, 40_000);
      const resumed = Number(await page.$eval("#done", (d) => d.dataset.resumed));
      if (!(resumed >= 8 * 1024 * 1024)) throw new Error(`the second receiver resumed from ${resumed} bytes, expected at least its 8 MiB checkpoint`);
      const exit = await exitWithin(second, 10_000);
      if (exit !== 0) throw new Error(`second receiver ended with ${exit}\n${second.said()}`);
      const got = await sha256File(join(out, "upload.bin"));
      if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
      log(`resumed from ${resumed} of ${size} bytes`);
    } finally {
      await page.close();
    }
  });

  openGate();
  await dropped;

  // The big files are no use once checked (the script removes E2E_WORK anyway).
  if (!suite.failed && !process.env.KEEP_E2E_WORK) rmSync(run, { recursive: true, force: true });
}

await suite.finish(main);
