// The browser peer receives from the real CLI straight into a picked folder (File System
// Access; ui/src/web/sink-folder.ts): byte-exact files, subfolders, a name already taken, a
// refused picker, and a sender killed mid-file whose successor the still-open page resumes from
// what the folder holds.
//
// Headless Chromium cannot show the folder picker, so the page's `showDirectoryPicker` is
// replaced (before any script runs) by one returning a real FileSystemDirectoryHandle: a folder
// of the origin-private file system, which has the interface a picked folder has. Only the
// dialog is replaced; permission, planning, the Worker's writable streams and the reads back
// are the real ones.
//
// Run by scripts/test-web-e2e.sh, which builds everything and sets:
//   FERRY_CLI_BIN, FERRY_SIGNAL_BIN, WEB_DIST, CHROMIUM, E2E_WORK
// Bounded: every wait has a timeout and the whole run is capped.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { checks, env, exitWithin, Harness, NET, pageFinished } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");

const hx = new Harness();
const log = hx.log;

const CAP_MS = 90_000;
const suite = checks("web-folder-e2e", log, CAP_MS, () => hx.cleanup());
const check = suite.check;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");


function sender(args, password, serverUrl, tag, extraEnv = {}) {
  return hx.start(
    FERRY,
    ["send", ...args, "--server", serverUrl, "--password", password, "--json"],
    { FERRY_BIND: NET.cliBind, FERRY_DB: join(WORK, `folder-send-${tag}.db`), RUST_LOG: process.env.RUST_LOG ?? "warn", ...extraEnv },
    `ferry send (${tag})`,
  );
}

async function roomOf(send) {
  const line = await send.line((l) => l.includes('"room-created"'), 15_000, "room-created");
  return JSON.parse(line);
}

/** A browser context whose folder picker hands out the OPFS folder `folder` (see the top). */
async function pickerContext(browser, folder) {
  const ctx = await browser.newContext();
  await ctx.addInitScript((name) => {
    window.__pickerCalls = 0;
    window.__refuseNext = false;
    window.showDirectoryPicker = async () => {
      window.__pickerCalls += 1;
      if (window.__refuseNext) {
        window.__refuseNext = false;
        throw new DOMException("The user aborted a request.", "AbortError");
      }
      return (await navigator.storage.getDirectory()).getDirectoryHandle(name, { create: true });
    };
  }, folder);
  return ctx;
}

/** Every file under the OPFS folder `folder`, read back in the page: path → [size, SHA-256]. */
function folderContents(page, folder) {
  return page.evaluate(async (name) => {
    const out = {};
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
    const walk = async (dir, prefix) => {
      for await (const [n, h] of dir.entries()) {
        if (h.kind === "directory") await walk(h, `${prefix}${n}/`);
        else {
          const f = await h.getFile();
          out[`${prefix}${n}`] = [f.size, hex(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()))];
        }
      }
    };
    await walk(await (await navigator.storage.getDirectory()).getDirectoryHandle(name), "");
    return out;
  }, folder);
}

/** Put `text` at `path` in the OPFS folder `folder`: a file that was there before the transfer. */
function plant(page, folder, path, text) {
  return page.evaluate(
    async ([name, p, t]) => {
      let dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(name, { create: true });
      const parts = p.split("/");
      for (const c of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(c, { create: true });
      const w = await (await dir.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
      await w.write(t);
      await w.close();
    },
    [folder, path, text],
  );
}

/** Compare what the folder holds with `want` (path → SHA-256 of the bytes), exactly: nothing
 * missing, nothing extra (no leftover side files). */
function sameFiles(got, want) {
  const problems = [];
  for (const [p, h] of Object.entries(want)) {
    if (!got[p]) problems.push(`${p}: missing`);
    else if (got[p][1] !== h) problems.push(`${p}: SHA-256 ${got[p][1]}, expected ${h}`);
  }
  for (const p of Object.keys(got)) if (!(p in want)) problems.push(`${p}: not expected in the folder`);
  if (problems.length) throw new Error(`the folder is not as expected:\n${problems.join("\n")}\nit holds: ${JSON.stringify(got)}`);
}

async function offerShown(page, send, consoleLines) {
  const offered = await page
    .locator("#folder, main[data-state=error]")
    .first()
    .waitFor({ timeout: 20_000 })
    .then(() => page.locator("#folder").count())
    .catch(() => 0);
  if (!offered) {
    throw new Error(
      `no offer with a folder choice: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}\n` +
        `sender:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`,
    );
  }
}

async function main() {
  const origin = await hx.serveDist(DIST);
  const serverUrl = await hx.signal(SIGNAL, join(WORK, "folder-signal.db"), origin);
  log(`web app at ${origin}, signaling at ${serverUrl}`);
  const browser = await hx.launch(CHROMIUM);
  const joinUrl = (room, password) => `${origin}/web.html?server=${encodeURIComponent(serverUrl)}#${room}/${encodeURIComponent(password)}`;

  await check("CLI → a picked folder: 64 MiB random, a folder of small files in subfolders, a 0-byte file, byte-exact; taken names land as name (1).ext; a refused picker leaves the offer open", async () => {
    const src = join(WORK, "folder-src");
    mkdirSync(join(src, "tree", "sub", "deeper"), { recursive: true });
    const want = {};
    const put = (rel, data, as = rel) => {
      writeFileSync(join(src, rel), data);
      want[as] = sha256(data);
    };
    put("big.bin", randomBytes(64 * 1024 * 1024 + 4321));
    put("empty.bin", Buffer.alloc(0));
    for (let i = 0; i < 12; i += 1) put(`tree/f${i}.txt`, `small file ${i}\n`.repeat(i * 37 + 1));
    put("tree/sub/x.dat", randomBytes(70_000), "tree/sub/x (1).dat");
    put("tree/sub/deeper/y.bin", randomBytes(1025));
    put("notes.txt", "the sender's notes\n".repeat(500), "notes (1).txt");
    // Already in the picked folder: neither may be replaced nor appended to.
    const theirs = { "notes.txt": "someone else's notes\n", "tree/sub/x.dat": "someone else's data\n" };
    for (const [p, t] of Object.entries(theirs)) want[p] = sha256(Buffer.from(t));

    const password = "save into a folder";
    const send = sender([join(src, "big.bin"), join(src, "tree"), join(src, "empty.bin"), join(src, "notes.txt")], password, serverUrl, "ok");
    const { room } = await roomOf(send);
    const folder = "picked-ok";
    const ctx = await pickerContext(browser, folder);
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    try {
      await page.goto(joinUrl(room, password));
      await offerShown(page, send, consoleLines);
      for (const [p, t] of Object.entries(theirs)) await plant(page, folder, p, t);
      // The person closes the picker without choosing: a specific message, the offer stays.
      await page.evaluate(() => (window.__refuseNext = true));
      await page.locator("#folder").click({ timeout: 5_000 });
      await page.locator("#folder-error[data-code=picker-aborted]").waitFor({ timeout: 5_000 });
      if (!(await page.locator("#accept").isVisible()) || (await page.locator("main").getAttribute("data-state")) !== "offer") {
        throw new Error(`the offer did not stay answerable after a refused picker: ${await page.locator("main").innerText()}`);
      }
      const t0 = Date.now();
      await page.locator("#folder").click({ timeout: 5_000 });
      await pageFinished(page, consoleLines, 60_000);
      const secs = (Date.now() - t0) / 1000;
      log(`received 64 MiB + 17 files into the folder in ${secs.toFixed(2)} s from picking (${(67.2 / secs).toFixed(1)} MB/s incl. setup)`);
      const storage = await page.locator("#done").getAttribute("data-storage");
      if (storage !== "folder") throw new Error(`the page says the files went to ${storage}, expected the folder`);
      sameFiles(await folderContents(page, folder), want);
      const calls = await page.evaluate(() => window.__pickerCalls);
      if (calls !== 2) throw new Error(`the picker opened ${calls} times, expected 2 (refused, then picked)`);
      const code = await exitWithin(send, 10_000);
      if (code !== 0) throw new Error(`sender ended with ${code}:\n${send.lines.join("\n")}\n${send.stderr().slice(-3000)}`);
    } finally {
      await ctx.close();
    }
  });

  await check("the sender is killed mid-file: the page, still open, continues into the same folder from what it holds, byte-exact", async () => {
    const file = join(WORK, "folder-resume.bin");
    const data = randomBytes(8 * 1024 * 1024 + 999);
    writeFileSync(file, data);
    const password = "killed mid file";
    const tag = "resume";
    // About 4 s of sending, so the sender can die in the middle.
    const send1 = sender([file], password, serverUrl, tag, { FERRY_TEST_RATE_BPS: String(2 * 1024 * 1024) });
    const created = await roomOf(send1);
    const folder = "picked-resume";
    const ctx = await pickerContext(browser, folder);
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    try {
      await page.goto(joinUrl(created.room, password));
      await offerShown(page, send1, consoleLines);
      await page.locator("#folder").click({ timeout: 5_000 });
      await page.locator("main[data-state=transferring]").waitFor({ timeout: 10_000 });
      await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 30, null, { timeout: 10_000 });
      send1.child.kill("SIGKILL");
      await exitWithin(send1, 5_000);
      const tKill = Date.now();
      // The page notices the link is gone and offers to try again, keeping the folder in mind.
      await page.locator("#error").waitFor({ timeout: 40_000 });
      log(`the page saw the link drop ${((Date.now() - tKill) / 1000).toFixed(1)} s after the sender died (${await page.locator("#error").getAttribute("data-code")})`);
      // The same transfer from the same resume database: it goes back to its room.
      const send2 = sender(["--resume", created.transfer_id], password, serverUrl, tag);
      await send2.line((l) => l.includes('"room-created"') || l.includes('"waiting"'), 15_000, "the room again");
      // "Try again" on the error joins the same room again.
      await page.locator("#retry").click({ timeout: 5_000 });
      await offerShown(page, send2, consoleLines);
      const label = await page.locator("#folder").innerText();
      if (!label.includes(folder)) throw new Error(`the offer does not offer to continue into ${folder}: "${label}"`);
      await page.locator("#folder").click({ timeout: 5_000 });
      await pageFinished(page, consoleLines, 30_000);
      const resumed = Number(await page.locator("#done").getAttribute("data-resumed"));
      if (!(resumed >= 1024 * 1024) || resumed % 1024 !== 0) throw new Error(`the page resumed from ${resumed} bytes, expected a 1 KiB multiple of at least 1 MiB`);
      sameFiles(await folderContents(page, folder), { "folder-resume.bin": sha256(data) });
      const calls = await page.evaluate(() => window.__pickerCalls);
      if (calls !== 1) throw new Error(`the picker opened ${calls} times; continuing should not ask again`);
      const code = await exitWithin(send2, 10_000);
      if (code !== 0) throw new Error(`the second sender ended with ${code}:\n${send2.lines.join("\n")}\n${send2.stderr().slice(-3000)}`);
      log(`resumed from ${resumed} of ${data.length} bytes`);
    } finally {
      await ctx.close();
    }
  });

  await check("the folder's disk fills up: the page says disk-full", async () => {
    const file = join(WORK, "folder-full.bin");
    writeFileSync(file, randomBytes(6 * 1024 * 1024));
    const password = "no room left";
    const send = sender([file], password, serverUrl, "full");
    const { room } = await roomOf(send);
    const folder = "picked-full";
    const ctx = await pickerContext(browser, folder);
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    try {
      // The picked folder lives in this origin's storage here, so its quota stands for a full
      // disk: 2 MiB for a 6 MiB file.
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: 2 * 1024 * 1024 });
      await page.goto(joinUrl(room, password));
      await offerShown(page, send, consoleLines);
      await page.locator("#folder").click({ timeout: 5_000 });
      await page.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 20_000 });
      const code = await page.locator("#error").getAttribute("data-code", { timeout: 1_000 }).catch(() => null);
      if (code !== "disk-full") throw new Error(`the page ended with ${code}, expected disk-full: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
    } finally {
      await ctx.close();
      send.child.kill("SIGKILL");
    }
  });
}

await suite.finish(main);
