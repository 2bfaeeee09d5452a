// The browser peer's screens, captured from a real transfer: the join form, the offer, progress
// and done (receiving from the real `ferry send` through a real `ferry-signal`), and the send
// screen with its room open. Each screen must appear with its own state, so this is a check as
// well as the source of the README's pictures.
//
// Run by scripts/test-web-e2e.sh (same variables as the other web E2E files). The images go to
// WEB_SCREENSHOTS (default: $E2E_WORK/screens); `WEB_SCREENSHOTS=docs/screenshots` refreshes
// the committed ones.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

import { env, Harness, openSendRoom } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");
const OUT = resolve(process.env.WEB_SCREENSHOTS || join(WORK, "screens"));

const h = new Harness();
const cap = setTimeout(async () => {
  console.error("web-screens: the run passed its 60 s cap");
  await h.cleanup();
  process.exit(1);
}, 60_000);

async function main() {
  mkdirSync(OUT, { recursive: true });
  const origin = await h.serveDist(DIST);
  const server = await h.signal(SIGNAL, join(WORK, "screens-signal.db"), origin);
  const browser = await h.launch(CHROMIUM);
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 720, height: 640 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  let send = null;
  const shot = async (name, state) => {
    await page
      .locator(`main[data-state=${state}]`)
      .waitFor({ timeout: 40_000 })
      .catch(async (e) => {
        const now = await page.locator("main").getAttribute("data-state");
        const text = await page.locator("main").innerText();
        throw new Error(`${e.message}\npage (${now}): ${text}\n${consoleLines.join("\n")}\nsender:\n${send?.lines.join("\n")}\n${send?.stderr().slice(-3000)}`);
      });
    await page.screenshot({ path: join(OUT, `${name}.png`) });
    h.log(`wrote ${name}.png (${state})`);
  };

  // A sender slow enough that the progress screen can be caught mid-transfer.
  const dir = join(WORK, "screens-src");
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, "holiday-video.mp4"), join(dir, "notes.txt")];
  writeFileSync(files[0], randomBytes(6 * 1024 * 1024));
  writeFileSync(files[1], "Ferry sends files directly, device to device.\n".repeat(200));
  const password = "river-lamp-cobalt-seven";
  send = h.start(
    FERRY,
    ["send", ...files, "--server", server, "--password", password, "--json", "--no-announce"],
    { FERRY_DB: join(WORK, "screens-send.db"), FERRY_TEST_RATE_BPS: String(2 * 1024 * 1024), RUST_LOG: "warn" },
    "ferry send",
  );
  const created = await send.line((l) => l.includes('"event":"room-created"'), 15_000, "room-created");
  const room = JSON.parse(created).room;

  // The join form, filled as a person would type it.
  await page.goto(`${origin}/web.html?server=${encodeURIComponent(server)}`);
  await page.locator("#join-room").fill(room);
  await page.locator("#join-password").fill(password);
  await shot("web-join", "receive");
  await page.locator("#join").click();
  await shot("web-offer", "offer");
  await page.locator("#accept").click();
  await page.waitForFunction(() => Number(document.querySelector("#overall-bar")?.value ?? 0) >= 20, null, { timeout: 20_000 });
  await shot("web-progress", "transferring");
  await shot("web-done", "done");

  // The send screen with its room open, waiting for a receiver.
  const sendPage = await openSendRoom(ctx, `${origin}/web.html?send&server=${encodeURIComponent(server)}`, [files[1]]);
  await sendPage.page.setViewportSize({ width: 720, height: 640 });
  await sendPage.page.screenshot({ path: join(OUT, "web-send.png") });
  h.log("wrote web-send.png");
  await ctx.close();
}

try {
  await main();
  console.log(`web-screens: 5 screens in ${OUT}`);
} catch (e) {
  console.error(`web-screens: FAIL ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(cap);
  await h.cleanup();
}
