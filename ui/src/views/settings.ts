import { h } from "../dom";
import type { Settings, Theme, TurnServer } from "../ipc";

export interface SettingsActions {
  save(s: Settings): void;
  chooseDownloadDir(): void;
}

/** "turn:host:3478 user pass" per line ↔ TurnServer. */
export function parseTurnLines(text: string): TurnServer[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [urls, username, credential] = l.split(/\s+/);
      const t: TurnServer = { urls };
      if (username) t.username = username;
      if (credential) t.credential = credential;
      return t;
    });
}

export function turnLines(t: TurnServer[]): string {
  return t.map((x) => [x.urls, x.username, x.credential].filter(Boolean).join(" ")).join("\n");
}

export function settingsView(s: Settings, a: SettingsActions, saved: string, inUse: string | null = null): HTMLElement {
  const form = h(
    "form",
    { class: "card form", id: "settings-form" },
    h("label", { for: "server-url" }, "Signaling server"),
    h("input", { id: "server-url", value: s.server_url, placeholder: "empty: built-in server (same network)", spellcheck: "false", "aria-describedby": "server-hint" }),
    h("p", { class: "hint", id: "server-hint" }, "Leave empty to run Ferry's own server on this device — the receiver must reach it on your network. Example: wss://ferry.example.org"),
    inUse ? h("p", { class: "hint" }, "In use now: ", h("code", { id: "signal-url" }, inUse)) : null,
    h("label", { for: "stun" }, "STUN servers (one per line)"),
    h("textarea", { id: "stun", rows: 2, spellcheck: "false" }, s.stun.join("\n")),
    h("label", { for: "turn" }, "TURN servers (one per line: url username credential)"),
    h("textarea", { id: "turn", rows: 2, spellcheck: "false" }, turnLines(s.turn)),
    h("label", { for: "download-dir" }, "Download folder"),
    h(
      "div",
      { class: "row" },
      h("input", { id: "download-dir", value: s.download_dir, spellcheck: "false" }),
      h("button", { type: "button", id: "choose-download-dir", onclick: () => a.chooseDownloadDir() }, "Choose…"),
    ),
    h(
      "label",
      { class: "check", for: "announce" },
      h("input", { id: "announce", type: "checkbox", checked: s.announce }),
      " Announce my rooms on the local network",
    ),
    h("p", { class: "hint", id: "announce-hint" }, "Nearby devices see this device's name and the room ID, never the password or the files."),
    h("label", { for: "device-name" }, "Device name shown nearby"),
    h("input", { id: "device-name", value: s.device_name, placeholder: "empty: this computer's name", spellcheck: "false", maxlength: 32 }),
    h("label", { for: "theme" }, "Theme"),
    h(
      "select",
      { id: "theme" },
      (["system", "light", "dark"] as Theme[]).map((t) => h("option", { value: t, selected: s.theme === t }, t === "system" ? "Same as system" : t[0].toUpperCase() + t.slice(1))),
    ),
    h("div", { class: "actions" }, h("button", { id: "save-settings", class: "primary", type: "submit" }, "Save"), h("span", { id: "saved", role: "status" }, saved)),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (id: string) => (form.querySelector(`#${id}`) as HTMLInputElement).value;
    a.save({
      server_url: v("server-url").trim(),
      stun: v("stun").split("\n").map((x) => x.trim()).filter(Boolean),
      turn: parseTurnLines(v("turn")),
      download_dir: v("download-dir").trim(),
      theme: v("theme") as Theme,
      announce: (form.querySelector("#announce") as HTMLInputElement).checked,
      device_name: v("device-name").trim(),
    });
  });
  return h("div", { class: "screen settings" }, h("h1", { id: "screen-title", tabindex: -1 }, "Settings"), form);
}
