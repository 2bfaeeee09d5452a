// What the browser-peer runs share (web-send.e2e.mjs, web-bench.mjs): child processes whose
// stdout lines can be awaited, the built web app served on loopback with a strict CSP, a
// real `ferry-signal` that lets that origin in, and headless Debian Chromium.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, relative } from "node:path";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run scripts/test-web-e2e.sh)`);
  return v;
};

export const sha256File = (path) =>
  new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });

/** Where the run's peers live. scripts/test-web-e2e.sh runs the browsers (and this script) in
 * one network namespace and the CLI in another, joined by a veth pair: `E2E_HOST` is the
 * browsers' side, where servers listen, and `E2E_CLI_HOST` the CLI's side. Unset, everything
 * is on 127.0.0.1 and the browsers are told to gather loopback candidates instead. */
export const NET = {
  host: process.env.E2E_HOST || "127.0.0.1",
  cliBind: `${process.env.E2E_CLI_HOST || "127.0.0.1"}:0`,
  netns: !!process.env.E2E_HOST,
};

/** One E2E script's bookkeeping: each check reported on its own (`WEB_E2E_ONLY=text` runs only
 * the checks whose name holds it), a cap on the whole run, and the closing summary line and
 * exit code. `cleanup` runs before any exit. */
export function checks(label, log, capMs, cleanup) {
  const t0 = Date.now();
  let passed = 0;
  let failed = 0;
  const cap = setTimeout(async () => {
    console.error(`${label}: the whole run passed its ${capMs / 1000} s cap`);
    await cleanup();
    process.exit(1);
  }, capMs);
  return {
    get failed() {
      return failed;
    },
    async check(name, fn) {
      if (process.env.WEB_E2E_ONLY && !name.includes(process.env.WEB_E2E_ONLY)) return;
      log(`-- ${name}`);
      try {
        await fn();
        passed += 1;
        log(`ok   ${name}`);
      } catch (e) {
        failed += 1;
        log(`FAIL ${name}: ${e?.stack ?? e}`);
      }
    },
    /** Runs `main`, then exits with the summary. */
    async finish(main) {
      try {
        await main();
      } catch (e) {
        failed += 1;
        log(`FAIL setup: ${e?.stack ?? e}`);
      }
      await cleanup();
      clearTimeout(cap);
      console.log(`${label}: ${passed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      process.exit(failed ? 1 : 0);
    },
  };
}

/** Every regular file under `dir`, by its path relative to `dir`, with its SHA-256. */
export async function fileTree(dir) {
  const out = new Map();
  const walk = async (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.set(relative(dir, p), await sha256File(p));
    }
  };
  await walk(dir);
  return out;
}

export const exitWithin = (p, ms) => Promise.race([p.exited, new Promise((r) => setTimeout(() => r("still running"), ms))]);

const MIME = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".svg": "image/svg+xml" };

export class Harness {
  children = new Set();
  browsers = [];
  httpServer = null;
  started = Date.now();

  log = (...a) => console.log(`[${((Date.now() - this.started) / 1000).toFixed(1)}s]`, ...a);

  /** A child process whose stdout lines are kept (and awaited) and whose stderr is kept. */
  start(cmd, args, extraEnv, name) {
    const child = spawn(cmd, args, { env: { ...process.env, ...extraEnv }, stdio: ["pipe", "pipe", "pipe"] });
    this.children.add(child);
    const lines = [];
    const waiters = [];
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    });
    createInterface({ input: child.stdout }).on("line", (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) w();
    });
    const exited = new Promise((resolve) => {
      child.on("exit", (code, sig) => resolve(code ?? sig));
      // A binary that cannot start (e.g. being rebuilt right now) fails the check, not the run.
      child.on("error", (e) => {
        stderr += `spawn failed: ${e.message}\n`;
        resolve(`spawn failed: ${e.message}`);
      });
    });
    exited.then(() => {
      for (const w of waiters.splice(0)) w();
    });
    return {
      child,
      lines,
      exited,
      stderr: () => stderr,
      name,
      /** The first stdout line matching `pred`, within `ms`. */
      async line(pred, ms, what) {
        const until = Date.now() + ms;
        for (;;) {
          const hit = lines.find(pred);
          if (hit) return hit;
          if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before ${what}:\n${lines.join("\n")}\n${stderr.slice(-3000)}`);
          const left = until - Date.now();
          if (left <= 0) throw new Error(`${name}: no ${what} within ${ms} ms:\n${lines.join("\n")}\n${stderr.slice(-3000)}`);
          await new Promise((r) => {
            const t = setTimeout(r, left);
            waiters.push(() => {
              clearTimeout(t);
              r();
            });
          });
        }
      },
    };
  }

  /** The built web app on loopback, with the CSP a deployment should send; its origin. Loopback
   * even inside the namespace: a page from localhost is a secure context over plain http. A
   * browser in another namespace needs another `host` (and that origin treated as secure). */
  serveDist(dist, host = "127.0.0.1") {
    return new Promise((resolve) => {
      this.httpServer = createServer((req, res) => {
        const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
        const file = join(dist, path === "/" ? "web.html" : path);
        try {
          if (!file.startsWith(dist) || !statSync(file).isFile()) throw new Error("not a file");
        } catch {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, {
          "content-type": MIME[extname(file)] ?? "application/octet-stream",
          "content-security-policy": `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws://${NET.host}:*; img-src 'self' blob: data:`,
        });
        createReadStream(file).pipe(res);
      });
      this.httpServer.listen(0, host, () => resolve(`http://${host}:${this.httpServer.address().port}`));
    });
  }

  /** A real `ferry-signal` (on `NET.host`) that lets `origin` in; its WebSocket URL. */
  async signal(bin, db, origin) {
    const s = this.start(bin, ["--listen", `${NET.host}:0`, "--db", db, "--allowed-origin", origin], { RUST_LOG: "warn" }, "ferry-signal");
    const listening = await s.line((l) => l.startsWith("listening on "), 15_000, "its address");
    return `ws://${listening.slice("listening on ".length).trim()}/ws`;
  }

  /** Headless Chromium that puts addresses (not mDNS names, which webrtc-rs does not resolve)
   * in its candidates: the veth's in the namespace, loopback's outside it. `secureOrigins`: plain
   * http origins off localhost to treat as secure, as a page served over https would be.
   * Each browser launched is closed by `cleanup`. */
  async launch(executablePath, secureOrigins = []) {
    const args = ["--disable-features=WebRtcHideLocalIpsWithMdns"];
    if (!NET.netns) args.push("--allow-loopback-in-peer-connection");
    if (secureOrigins.length) args.push(`--unsafely-treat-insecure-origin-as-secure=${secureOrigins.join(",")}`);
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...args, ...(process.env.CHROMIUM_ARGS ?? "").split(" ").filter(Boolean)],
    });
    this.browsers.push(browser);
    return browser;
  }

  async cleanup() {
    for (const b of this.browsers.splice(0)) await b.close().catch(() => {});
    this.httpServer?.close();
    for (const c of this.children) if (c.exitCode === null) c.kill("SIGKILL");
  }
}

/** A page in send mode (`url`) with `files` or a `folder` picked through the Send screen's
 * own buttons and file chooser, and its room open. */
export async function openSendRoom(ctx, url, files, folder) {
  if (files.length && folder) throw new Error("one pick per room: files or a folder");
  const page = await ctx.newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  let workers = 0;
  page.on("worker", () => (workers += 1));
  await page.goto(url);
  const [chooser] = await Promise.all([page.waitForEvent("filechooser", { timeout: 10_000 }), page.locator(folder ? "#pick-folder" : "#pick-files").click({ timeout: 5_000 })]);
  await chooser.setFiles(folder ?? files);
  await page.locator("#room-link, main[data-state=error]").first().waitFor({ timeout: 15_000 });
  const link = await page
    .locator("#room-link")
    .innerText({ timeout: 1_000 })
    .catch(async () => {
      throw new Error(`no room: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
    });
  const room = await page.locator("#room-id").innerText();
  const password = await page.locator("#room-password").innerText();
  return { page, link, room, password, consoleLines, workers: () => workers };
}

/** Wait (at most `ms`) for the page to end; anything but `done` throws with what it said. */
export async function pageFinished(page, consoleLines, ms) {
  await page.locator("main[data-state=done], main[data-state=error]").waitFor({ timeout: ms });
  const state = await page.locator("main").getAttribute("data-state");
  if (state !== "done") throw new Error(`page ended in ${state}: ${await page.locator("main").innerText()}\n${consoleLines.join("\n")}`);
}

/** Sample the page's JS heap (Chromium's performance.memory) every 200 ms; `stop()` → peak bytes. */
export function heapSampler(page) {
  let peak = 0;
  const t = setInterval(async () => {
    peak = Math.max(peak, await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0).catch(() => 0));
  }, 200);
  return () => {
    clearInterval(t);
    return peak;
  };
}
