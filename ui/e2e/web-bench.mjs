// Measurement, not a test: the browser peer against native, one random file, in one run so
// every row saw the same machine. Each round (alternating, BENCH_RUNS rounds):
//   native → native     `ferry send` → `ferry receive`
//   Chromium → CLI      the page (web.html?send) → `ferry receive`
//   CLI → Chromium      `ferry send` → the page (web.html#ROOM/PASSWORD)
//   Chromium → Chromium the page → another page
// The rate is the file's size over the data phase as the CLI end reports it (its `done`
// event's `secs`; for Chromium → Chromium the time from the receiving page's Accept to done),
// plus the peak JS heap of the browser page (Chromium's performance.memory; a Worker's heap
// is not visible). Received files are checked by SHA-256 where they land on disk.
//   FERRY_CLI_BIN=target/release/ferry FERRY_SIGNAL_BIN=... WEB_DIST=<vite build --mode web>
//   CHROMIUM=/usr/bin/chromium E2E_WORK=<dir> BENCH_MB=1024 BENCH_RUNS=2 node ui/e2e/web-bench.mjs
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { env, exitWithin, Harness, NET, heapSampler, openSendRoom, pageFinished, sha256File } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");
const MB = Number(process.env.BENCH_MB ?? 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
// BENCH_ONLY=nn,bc,cb,bb picks rows (native → native, browser → CLI, CLI → browser, browser → browser).
const ONLY = new Set((process.env.BENCH_ONLY ?? "nn,bc,cb,bb").split(","));
const hx = new Harness();
const log = hx.log;
const cap = setTimeout(async () => {
  console.error("web-bench: over its time cap");
  await hx.cleanup();
  process.exit(1);
}, 120_000 + RUNS * MB * 600);

const doneOf = (proc) => {
  const l = proc.lines.find((x) => x.includes('"event":"done"'));
  return l ? JSON.parse(l) : null;
};
const mbps = (bytes, secs) => bytes / 1e6 / secs;
const cliEnv = (tag) => ({ FERRY_BIND: NET.cliBind, FERRY_DB: join(WORK, `bench-${tag}.db`), RUST_LOG: "warn" });

async function main() {
  const file = join(WORK, "bench.bin");
  writeFileSync(file, "");
  for (let left = MB * 1024 * 1024; left > 0; left -= 8 << 20) writeFileSync(file, randomBytes(Math.min(left, 8 << 20)), { flag: "a" });
  const want = await sha256File(file);
  const bytes = MB * 1024 * 1024;
  const origin = await hx.serveDist(DIST);
  const server = await hx.signal(SIGNAL, join(WORK, "bench-signal.db"), origin);
  const browser = await hx.launch(CHROMIUM);
  const rows = { "native → native": [], "Chromium → CLI": [], "CLI → Chromium": [], "Chromium → Chromium": [] };
  const budget = 60_000 + MB * 500;

  const fresh = (tag) => {
    const out = join(WORK, `bench-out-${tag}`);
    rmSync(out, { recursive: true, force: true });
    rmSync(join(WORK, `bench-${tag}.db`), { force: true });
    mkdirSync(out, { recursive: true });
    return out;
  };
  const cliSend = (tag) => hx.start(FERRY, ["send", file, "--server", server, "--password", "bench words", "--json"], cliEnv(`${tag}-send`), `ferry send (${tag})`);
  const cliReceive = (ticket, out, tag, extra = []) =>
    hx.start(FERRY, ["receive", ticket, "--out", out, "--yes", "--json", ...extra], cliEnv(`${tag}-recv`), `ferry receive (${tag})`);
  const roomOf = async (send) => JSON.parse(await send.line((l) => l.includes('"room-created"'), 15_000, "room-created")).room;
  const verify = async (path) => {
    const got = await sha256File(path);
    if (got !== want) throw new Error(`${path}: SHA-256 ${got}, expected ${want}`);
  };

  for (let run = 1; run <= RUNS; run += 1) {
    if (ONLY.has("nn")) {
      const out = fresh("nn");
      const send = cliSend("nn");
      const room = await roomOf(send);
      const recv = cliReceive(room, out, "nn", ["--server", server, "--password", "bench words"]);
      if ((await exitWithin(recv, budget)) !== 0) throw new Error(`native receive failed:\n${recv.lines.join("\n")}\n${recv.stderr()}`);
      await exitWithin(send, 10_000);
      await verify(join(out, "bench.bin"));
      const d = doneOf(recv);
      rows["native → native"].push({ mbps: mbps(bytes, d.secs) });
      log(`run ${run} native → native: ${mbps(bytes, d.secs).toFixed(1)} MB/s`);
      rmSync(out, { recursive: true, force: true });
    }
    if (ONLY.has("bc")) {
      const out = fresh("bc");
      const ctx = await browser.newContext();
      try {
        const { page, link, consoleLines } = await openSendRoom(ctx, `${origin}/web.html?send&server=${encodeURIComponent(server)}`, [file], null);
        const stop = heapSampler(page);
        const recv = cliReceive(link, out, "bc");
        let peak = 0;
        await pageFinished(page, consoleLines, budget).finally(() => (peak = stop()));
        if ((await exitWithin(recv, 10_000)) !== 0) throw new Error(`receive failed:\n${recv.lines.join("\n")}`);
        await verify(join(out, "bench.bin"));
        const d = doneOf(recv);
        rows["Chromium → CLI"].push({ mbps: mbps(bytes, d.secs), heap: peak });
        log(`run ${run} Chromium → CLI: ${mbps(bytes, d.secs).toFixed(1)} MB/s, page peak JS heap ${(peak / 1e6).toFixed(1)} MB`);
      } finally {
        await ctx.close();
        rmSync(out, { recursive: true, force: true });
      }
    }
    if (ONLY.has("cb")) {
      const send = cliSend("cb");
      const room = await roomOf(send);
      const ctx = await browser.newContext();
      try {
        const page = await ctx.newPage();
        await page.goto(`${origin}/web.html?server=${encodeURIComponent(server)}#${room}/${encodeURIComponent("bench words")}`);
        await page.locator("#accept").click({ timeout: 20_000 });
        const stop = heapSampler(page);
        let peak = 0;
        await pageFinished(page, [], budget).finally(() => (peak = stop()));
        if ((await exitWithin(send, 10_000)) !== 0) throw new Error(`send failed:\n${send.lines.join("\n")}`);
        const d = doneOf(send);
        rows["CLI → Chromium"].push({ mbps: mbps(bytes, d.secs), heap: peak });
        log(`run ${run} CLI → Chromium: ${mbps(bytes, d.secs).toFixed(1)} MB/s, page peak JS heap ${(peak / 1e6).toFixed(1)} MB`);
      } finally {
        await ctx.close();
      }
    }
    if (ONLY.has("bb")) {
      const sctx = await browser.newContext();
      const rctx = await browser.newContext();
      try {
        const { page, room, password, consoleLines } = await openSendRoom(sctx, `${origin}/web.html?send&server=${encodeURIComponent(server)}`, [file], null);
        const rpage = await rctx.newPage();
        await rpage.goto(`${origin}/web.html?server=${encodeURIComponent(server)}#${room}/${encodeURIComponent(password)}`);
        await rpage.locator("#accept").click({ timeout: 20_000 });
        const t0 = Date.now();
        const stop = heapSampler(page);
        let peak = 0;
        await pageFinished(rpage, [], budget).finally(() => (peak = stop()));
        const secs = (Date.now() - t0) / 1000;
        await pageFinished(page, consoleLines, 10_000);
        rows["Chromium → Chromium"].push({ mbps: mbps(bytes, secs), heap: peak });
        log(`run ${run} Chromium → Chromium: ${mbps(bytes, secs).toFixed(1)} MB/s (from Accept), sending page peak JS heap ${(peak / 1e6).toFixed(1)} MB`);
      } finally {
        await sctx.close();
        await rctx.close();
      }
    }
  }
  console.log(`\n${MB} MiB, ${RUNS} run(s) each, alternating:`);
  for (const [name, r] of Object.entries(rows).filter(([, r]) => r.length)) {
    const rates = r.map((x) => x.mbps.toFixed(1)).join(", ");
    const heaps = r.filter((x) => x.heap).map((x) => (x.heap / 1e6).toFixed(1));
    console.log(`${name.padEnd(20)} ${rates} MB/s${heaps.length ? `; page peak JS heap ${heaps.join(", ")} MB` : ""}`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`web-bench: ${e?.stack ?? e}`);
  process.exitCode = 1;
}
await hx.cleanup();
clearTimeout(cap);
// The static server's keep-alive sockets would hold the process open.
process.exit();
