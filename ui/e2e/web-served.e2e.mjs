// The page as a deployment serves it: `ferry-signal --web-dir <built dist>` serves the page
// itself, `ferry send --web-link` prints http://SERVER/j/ROOM#PASSWORD, and headless Chromium
// opens exactly that link (no ?server=: the page finds the socket on its own origin, which
// the server lets in without --allowed-origin) and receives the file byte-exact. The page's
// headers (CSP and the rest) are checked, and any CSP violation on the page fails the check.
//
// Run by scripts/test-web-e2e.sh, which builds everything and sets:
//   FERRY_CLI_BIN, FERRY_SIGNAL_BIN, WEB_DIST, CHROMIUM, E2E_WORK
// Bounded: every wait has a timeout and the whole run is capped at 60 s.
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { env, exitWithin, Harness, NET } from "./web-harness.mjs";

const FERRY = env("FERRY_CLI_BIN");
const SIGNAL = env("FERRY_SIGNAL_BIN");
const DIST = env("WEB_DIST");
const CHROMIUM = env("CHROMIUM");
const WORK = env("E2E_WORK");

const hx = new Harness();
const started = hx.started;
const log = (...a) => hx.log("served:", ...a);
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const cleanup = () => hx.cleanup();
const cap = setTimeout(async () => {
  console.error("web-served-e2e: the whole run passed its 60 s cap");
  await cleanup();
  process.exit(1);
}, 60_000);

/** A child whose stdout lines can be awaited, and the first line starting with `prefix`. */
function start(cmd, args, extraEnv) {
  const p = hx.start(cmd, args, extraEnv, cmd.split("/").pop());
  return { ...p, line: (prefix, ms) => p.line((l) => l.startsWith(prefix), ms, `a "${prefix}" line`) };
}

function expectHeader(h, name, pred, what) {
  const v = h.get(name);
  if (v === null || !pred(v)) throw new Error(`${what}: ${name} is ${JSON.stringify(v)}`);
}

async function main() {
  const signal = start(SIGNAL, ["--listen", `${NET.host}:0`, "--db", join(WORK, "served.db"), "--web-dir", DIST], { RUST_LOG: "warn" });
  const addr = (await signal.line("listening on ", 15_000)).slice("listening on ".length).trim();
  const base = `http://${addr}`;

  // Headers of the page and of its wasm, straight from the server.
  const page = await fetch(`${base}/j/ABCDE-FGHJK`);
  if (page.status !== 200) throw new Error(`/j/ROOM: HTTP ${page.status}`);
  const h = page.headers;
  expectHeader(h, "content-type", (v) => v.startsWith("text/html"), "page");
  expectHeader(
    h,
    "content-security-policy",
    (v) => v.includes("script-src 'self' 'wasm-unsafe-eval';") && v.includes("default-src 'none'") && v.includes(`connect-src 'self' ws://${addr}`) && !v.includes("unsafe-inline"),
    "page",
  );
  expectHeader(h, "x-content-type-options", (v) => v === "nosniff", "page");
  expectHeader(h, "referrer-policy", (v) => v === "no-referrer", "page");
  expectHeader(h, "cache-control", (v) => v === "no-cache", "page");
  const wasm = readdirSync(join(DIST, "assets")).find((f) => f.endsWith(".wasm"));
  const w = await fetch(`${base}/assets/${wasm}`);
  expectHeader(w.headers, "content-type", (v) => v === "application/wasm", wasm);
  expectHeader(w.headers, "cache-control", (v) => v.includes("immutable"), wasm);
  const up = await fetch(`${base}/assets/..%2f..%2fweb.html`);
  if (up.status !== 404) throw new Error(`an escaping path got HTTP ${up.status}`);

  // The sender prints the browser link itself.
  const file = join(WORK, "served.bin");
  writeFileSync(file, randomBytes(2 * 1024 * 1024 + 4321));
  const want = sha256(readFileSync(file));
  const password = "served page 100% words";
  const send = start(FERRY, ["send", file, "--server", `ws://${addr}/ws`, "--password", password, "--web-link"], {
    FERRY_BIND: NET.cliBind,
    FERRY_DB: join(WORK, "send-served.db"),
    RUST_LOG: "warn",
    FERRY_NO_ANNOUNCE: "true",
  });
  const link = (await send.line("Web link: ", 15_000)).slice("Web link: ".length).trim();
  if (!link.startsWith(`${base}/j/`) || link.includes("?")) throw new Error(`unexpected link ${link}`);
  log(`page and socket at ${base}; the sender printed ${link.replace(/#.*/, "#…")}`);

  // In the namespace the link's origin is the veth address over plain http; a deployment
  // serves it over https, which this stands in for.
  const browser = await hx.launch(CHROMIUM, NET.netns ? [base] : []);
  const ctx = await browser.newContext({ acceptDownloads: true });
  const tab = await ctx.newPage();
  const consoleLines = [];
  tab.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await tab.goto(link);
  await tab.locator("#accept").click({ timeout: 20_000 }).catch(async (e) => {
    throw new Error(`${e.message}\npage: ${await tab.locator("main").innerText()}\n${consoleLines.join("\n")}\nsender:\n${send.lines.join("\n")}`);
  });
  await tab.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: 30_000 });
  if ((await tab.locator("main").getAttribute("data-state")) !== "done") throw new Error(await tab.locator("main").innerText());
  const [download] = await Promise.all([tab.waitForEvent("download", { timeout: 10_000 }), tab.locator("a[download]").first().click()]);
  const got = sha256(readFileSync(await download.path()));
  if (got !== want) throw new Error(`SHA-256 ${got}, expected ${want}`);
  const code = await exitWithin(send, 10_000);
  if (code !== 0) throw new Error(`sender ended with ${code}\n${send.lines.join("\n")}\n${send.stderr()}`);
  const violations = consoleLines.filter((l) => l.includes("Content Security Policy"));
  if (violations.length) throw new Error(`CSP violations:\n${violations.join("\n")}`);
  // The fragment (the password) is gone from the address bar once the page has it.
  if ((await tab.evaluate(() => location.hash)) !== "") throw new Error("the password stayed in the address bar");
  await ctx.close();
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
console.log(`web-served-e2e: ${ok ? "1 passed, 0 failed" : "0 passed, 1 failed"} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(ok ? 0 : 1);
