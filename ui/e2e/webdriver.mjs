// A minimal W3C WebDriver client over fetch: just what the app E2E needs, no browser downloads.

export class WebDriver {
  constructor(base) {
    this.base = base.replace(/\/$/, "");
    this.session = null;
  }

  async cmd(method, path, body, timeoutMs = 60_000) {
    const url = `${this.base}${this.session && !path.startsWith("/session") ? `/session/${this.session}` : ""}${path}`;
    const res = await fetch(url, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const v = json.value ?? {};
      throw new Error(`webdriver ${method} ${path}: ${res.status} ${v.error ?? ""} ${v.message ?? ""}`);
    }
    return json.value;
  }

  async start(capabilities) {
    const v = await this.cmd("POST", "/session", { capabilities: { alwaysMatch: capabilities } });
    this.session = v.sessionId;
    return v;
  }

  async quit() {
    if (!this.session) return;
    const id = this.session;
    try {
      await this.cmd("DELETE", `/session/${id}`);
    } finally {
      this.session = null;
    }
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return Object.values(v)[0];
  }

  /** Run JS in the page; `args` are passed as `arguments`. */
  exec(script, ...args) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  text(css) {
    return this.exec("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css);
  }

  async click(css) {
    const id = await this.find(css);
    await this.cmd("POST", `/element/${id}/click`, {});
  }

  async type(css, text) {
    const id = await this.find(css);
    await this.cmd("POST", `/element/${id}/clear`, {});
    await this.cmd("POST", `/element/${id}/value`, { text });
  }

  async screenshot() {
    return Buffer.from(await this.cmd("GET", "/screenshot", undefined, 10_000), "base64");
  }

  /** Poll `fn` until it returns a truthy value; bounded by `ms`. */
  async waitFor(what, fn, ms = 30_000, every = 150) {
    const deadline = Date.now() + ms;
    let last;
    while (Date.now() < deadline) {
      try {
        last = await fn();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, every));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
  }

  waitText(css, re, ms) {
    return this.waitFor(`${css} ~ ${re}`, async () => {
      const t = await this.text(css);
      return t != null && re.test(t) ? t : null;
    }, ms);
  }
}
