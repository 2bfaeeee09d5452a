// Measurement, not a test: how long a receiver takes to get going across a long link, the
// browser page against the CLI. Run by bench/shaped_web.py, which builds the emulated link
// (bench/shaped_link.py) and starts this script in the sender's namespace; every sender and
// the signaling server live there, every receiver across the link. Per round, in turn:
//   CLI → CLI       receiver launch → its `offer`, and → its `connected`
//   CLI → Chromium  page opened on the join link → the offer's Accept button on screen
//   Chromium → CLI  receiver launch → its `offer`, and → its `connected`
//   Chromium → Chromium  the receiving page opened → its Accept button on screen
// The page is served from the sender's side, so opening it also crosses the link, as opening a
// link to a server far away would; the page's own load (the `load` event) is given apart.
// A 1 MiB file, accepted, each round: the figures are set-up, not rate.
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { env, exitWithin, Harness, NET, openSendRoom, pageFinished } from "./web-harness.mjs";

const FERRY_NEAR = env("FERRY_NEAR_BIN"); // in this (the senders') namespace
const FERRY_FAR = env("FERRY_CLI_BIN"); // a wrapper that runs `ferry` across the link
const CHROMIUM_FAR = env("CHROMIUM_FAR"); // the same, for Chromium
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PASSWORD = "setup bench words";
const hx = new Harness();
const cap = setTimeout(async () => {
  console.error("web-setup-bench: over its time cap");
  await hx.cleanup();
  process.exit(1);
}, 60_000 + RUNS * 90_000);

// SETUP_LOG_DIR: keep each CLI's stderr (with SETUP_RUST_LOG, e.g. ferry_core=debug) and each
// page's console there, to see where a set-up spends its time.
const LOG_DIR = process.env.SETUP_LOG_DIR;
const cliEnv = (tag, bind) => ({ FERRY_BIND: bind, FERRY_DB: join(WORK, `setup-${tag}.db`), RUST_LOG: process.env.SETUP_RUST_LOG ?? "warn", FERRY_NO_ANNOUNCE: "1" });
const keep = (name, text) => LOG_DIR && writeFileSync(join(LOG_DIR, name), text);
// A line's arrival on our side, in seconds after `t0` (the child prints it as it happens).
const seen = async (proc, event, t0) => {
  await proc.line((l) => l.includes(`"event":"${event}"`), 60_000, event);
  return (performance.now() - t0) / 1000;
};

async function main() {
  const file = join(WORK, "setup.bin");
  writeFileSync(file, randomBytes(1 << 20));
  // Served on the senders' address: the far browser opens it across the link.
  const origin = await hx.serveDist(DIST, NET.host);
  const server = await hx.signal(SIGNAL, join(WORK, "setup-signal.db"), origin);
  const near = await hx.launch(CHROMIUM, [origin]);
  const far = await hx.launch(CHROMIUM_FAR, [origin]);
  const rows = { "CLI → CLI": [], "CLI → Chromium": [], "Chromium → CLI": [], "Chromium → Chromium": [] };
  const fresh = (tag) => {
    const out = join(WORK, `setup-out-${tag}`);
    rmSync(out, { recursive: true, force: true });
    rmSync(join(WORK, `setup-${tag}-recv.db`), { force: true });
    return out;
  };
  const cliSend = (tag) => hx.start(FERRY_NEAR, ["send", file, "--server", server, "--password", PASSWORD, "--json"], cliEnv(`${tag}-send`, `${NET.host}:0`), `ferry send (${tag})`);
  const roomOf = async (send) => JSON.parse(await send.line((l) => l.includes('"room-created"'), 15_000, "room-created")).room;
  const cliReceive = async (ticket, tag, extra) => {
    const t0 = performance.now();
    const recv = hx.start(FERRY_FAR, ["receive", ticket, "--out", fresh(tag), "--yes", "--json", ...extra], cliEnv(`${tag}-recv`, NET.cliBind), `ferry receive (${tag})`);
    const offer = await seen(recv, "offer", t0);
    const connected = await seen(recv, "connected", t0);
    if ((await exitWithin(recv, 60_000)) !== 0) throw new Error(`receive (${tag}) failed:\n${recv.lines.join("\n")}\n${recv.stderr()}`);
    keep(`${tag}-recv-${Date.now()}.log`, `${new Date(Date.now() - (performance.now() - t0)).toISOString()} launched\n${recv.stderr()}`);
    return { offer, connected };
  };

  // A page across the link opened on the join link: when it loaded, and when the offer's
  // Accept button appeared, in seconds after it was opened.
  const farOffer = async (ctx, room, password) => {
    // Playwright's waits poll (up to 500 ms apart): the page notes the moment itself.
    await ctx.addInitScript(() => {
      new MutationObserver((_, obs) => {
        if (!document.querySelector("#accept")) return;
        window.__offerAt = performance.timeOrigin + performance.now();
        obs.disconnect();
      }).observe(document, { childList: true, subtree: true });
    });
    const page = await ctx.newPage();
    const t0 = performance.now();
    const t0Wall = Date.now();
    const consoleLines = [];
    const note = (from) => (m) => consoleLines.push(`${((performance.now() - t0) / 1000).toFixed(3)} ${from}${m.type()}: ${m.text()}`);
    page.on("console", note(""));
    page.on("worker", (w) => w.on("console", note("worker ")));
    await page.goto(`${origin}/web.html?server=${encodeURIComponent(server)}#${room}/${encodeURIComponent(password)}`);
    await page.locator("#accept").waitFor({ timeout: 60_000 });
    const [offerAt, loadAt] = await page.evaluate(() => [window.__offerAt, performance.timeOrigin + performance.getEntriesByType("navigation")[0].loadEventEnd]);
    return { page, consoleLines, t0Wall, offer: (offerAt - t0Wall) / 1000, load: (loadAt - t0Wall) / 1000 };
  };

  for (let run = 1; run <= RUNS; run += 1) {
    {
      const send = cliSend("nn");
      const room = await roomOf(send);
      const r = await cliReceive(room, "nn", ["--server", server, "--password", PASSWORD]);
      await exitWithin(send, 10_000);
      keep(`nn-${run}-send.log`, send.stderr());
      rows["CLI → CLI"].push(r);
      hx.log(`run ${run} CLI → CLI: offer ${r.offer.toFixed(2)} s, connected ${r.connected.toFixed(2)} s`);
    }
    {
      const send = cliSend("cb");
      const room = await roomOf(send);
      const ctx = await far.newContext();
      try {
        const { page, consoleLines, t0Wall, offer, load } = await farOffer(ctx, room, PASSWORD);
        if (LOG_DIR) {
          const res = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => `${e.startTime.toFixed(0)}..${e.responseEnd.toFixed(0)} ms ${e.initiatorType} ${e.transferSize} B ${e.name}`));
          keep(`cb-${run}-resources.log`, res.join("\n"));
        }
        await page.locator("#accept").click({ timeout: 5_000 });
        await pageFinished(page, [], 60_000);
        if ((await exitWithin(send, 10_000)) !== 0) throw new Error(`send (cb) failed:\n${send.lines.join("\n")}`);
        keep(`cb-${run}-send.log`, send.stderr());
        keep(`cb-${run}-page.log`, `${new Date(t0Wall).toISOString()} page opened\n${consoleLines.join("\n")}`);
        rows["CLI → Chromium"].push({ load, offer });
        hx.log(`run ${run} CLI → Chromium: page loaded ${load.toFixed(2)} s, offer ${offer.toFixed(2)} s`);
      } finally {
        await ctx.close();
      }
    }
    {
      const ctx = await near.newContext();
      try {
        const { page, link, consoleLines } = await openSendRoom(ctx, `${origin}/web.html?send&server=${encodeURIComponent(server)}`, [file], null);
        const r = await cliReceive(link, "bc", []);
        await pageFinished(page, consoleLines, 30_000);
        rows["Chromium → CLI"].push(r);
        hx.log(`run ${run} Chromium → CLI: offer ${r.offer.toFixed(2)} s, connected ${r.connected.toFixed(2)} s`);
      } finally {
        await ctx.close();
      }
    }
    {
      const sctx = await near.newContext();
      const rctx = await far.newContext();
      try {
        const { page, room, password, consoleLines } = await openSendRoom(sctx, `${origin}/web.html?send&server=${encodeURIComponent(server)}`, [file], null);
        const r = await farOffer(rctx, room, password);
        await r.page.locator("#accept").click({ timeout: 5_000 });
        await pageFinished(r.page, [], 60_000);
        await pageFinished(page, consoleLines, 30_000);
        rows["Chromium → Chromium"].push({ load: r.load, offer: r.offer });
        hx.log(`run ${run} Chromium → Chromium: page loaded ${r.load.toFixed(2)} s, offer ${r.offer.toFixed(2)} s`);
      } finally {
        await sctx.close();
        await rctx.close();
      }
    }
  }
  console.log(JSON.stringify({ rows }));
}

try {
  await main();
} catch (e) {
  console.error(`web-setup-bench: ${e?.stack ?? e}`);
  process.exitCode = 1;
}
await hx.cleanup();
clearTimeout(cap);
process.exit();
