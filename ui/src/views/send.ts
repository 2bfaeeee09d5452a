import { h } from "../dom";
import { ALL_CAPS, type Capabilities } from "../engine";
import { LIFETIME_PRESETS, lifetimeLabel, parseLifetime } from "../lifetime";

export interface SendActions {
  pickFiles(): void;
  pickFolder(): void;
  /** Send what is in the text box as a snippet. */
  sendText(text: string): void;
  /** The room lifetime picked for the next send, in seconds. */
  setLifetime(secs: number): void;
  /** How many receivers the next room serves: 1 (single use), n, or 0 for any number. */
  setReceivers?(n: number): void;
}

/** Choices for how many receivers a room serves; 0 keeps it open for any number. */
export const RECEIVER_CHOICES: { n: number; label: string }[] = [
  { n: 1, label: "1 (single use)" },
  { n: 2, label: "2" },
  { n: 3, label: "3" },
  { n: 5, label: "5" },
  { n: 0, label: "Any number, until I close it" },
];

function receiversPicker(a: SendActions, n: number): HTMLElement {
  const select = h(
    "select",
    { id: "receivers-picker", onchange: (ev: Event) => a.setReceivers?.(Number((ev.target as HTMLSelectElement).value)) },
    RECEIVER_CHOICES.map((c) => h("option", { value: String(c.n), selected: c.n === n }, c.label)),
  );
  return h("p", { class: "receivers-choice" }, h("label", { for: "receivers-picker" }, "Receivers "), select);
}

/** How long the next room stays open: presets, or a custom value like "45m" or "3d". */
function lifetimePicker(a: SendActions, secs: number): HTMLElement {
  const preset = LIFETIME_PRESETS.find((p) => p.secs === secs);
  const select = h(
    "select",
    { id: "expiry-picker" },
    LIFETIME_PRESETS.map((p) => h("option", { value: String(p.secs), selected: p.secs === secs }, p.label)),
    h("option", { value: "custom", selected: !preset }, "Custom…"),
  ) as HTMLSelectElement;
  const custom = h("input", { id: "expiry-custom", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. 45m, 2h, 3d", value: preset ? "" : lifetimeLabel(secs), hidden: !!preset, "aria-label": "Custom lifetime" }) as HTMLInputElement;
  const note = h("span", { id: "expiry-note", class: "hint" }, "");
  select.addEventListener("change", () => {
    custom.hidden = select.value !== "custom";
    if (select.value !== "custom") a.setLifetime(Number(select.value));
    else custom.focus();
  });
  custom.addEventListener("input", () => {
    const v = parseLifetime(custom.value);
    note.textContent = v ? lifetimeLabel(v) : custom.value.trim() ? "Write it like 30m, 2h or 3d" : "";
    if (v) a.setLifetime(v);
  });
  return h("p", { class: "lifetime" }, h("label", { for: "expiry-picker" }, "Room stays open for "), select, " ", custom, " ", note);
}

/** The engine's limit on one snippet (`TEXT_MAX_BYTES`), bytes of UTF-8. */
export const TEXT_MAX_BYTES = 64 * 1024;

/** What the text box says under it: how much of the limit is used, or that it is over. */
export function textBudget(text: string): { bytes: number; over: boolean; label: string } {
  const bytes = new TextEncoder().encode(text).length;
  const over = bytes > TEXT_MAX_BYTES;
  const kb = (n: number) => `${Math.ceil(n / 1024)} KB`;
  return { bytes, over, label: over ? `Too long: ${kb(bytes)} of at most ${kb(TEXT_MAX_BYTES)}. Send it as a file instead.` : `${kb(bytes)} of ${kb(TEXT_MAX_BYTES)}` };
}

function textBox(a: SendActions): HTMLElement {
  const area = h("textarea", { id: "send-text", rows: 4, spellcheck: "false", placeholder: "Paste a link, a code or a note…", "aria-describedby": "send-text-budget" }) as HTMLTextAreaElement;
  const budget = h("p", { id: "send-text-budget", class: "hint" }, textBudget("").label);
  const button = h("button", { id: "send-text-button", class: "primary", disabled: true, onclick: () => a.sendText(area.value) }, "Send text") as HTMLButtonElement;
  area.addEventListener("input", () => {
    const b = textBudget(area.value);
    budget.textContent = b.label;
    budget.classList.toggle("error", b.over);
    button.disabled = b.bytes === 0 || b.over;
  });
  return h("section", { class: "card send-text", "aria-labelledby": "send-text-title" }, h("h2", { id: "send-text-title" }, "Or send text"), h("label", { for: "send-text", class: "sr-only" }, "Text to send"), area, budget, h("div", { class: "actions" }, button));
}

/** Home screen: drop anywhere on the window, or pick. An optional own password. */
export function sendView(a: SendActions, dragging: boolean, lifetimeSecs: number, receivers = 1, caps: Capabilities = ALL_CAPS): HTMLElement {
  return h(
    "div",
    { class: "screen send" },
    h("h1", { id: "screen-title", tabindex: -1 }, "Send files"),
    h(
      "div",
      { class: `dropzone${dragging ? " over" : ""}`, id: "dropzone" },
      h("div", { class: "drop-icon", "aria-hidden": "true" }, "⇪"),
      h("p", { class: "drop-text" }, caps.dropFolders ? "Drop files or folders anywhere on this window" : "Drop files anywhere on this page"),
      h("p", { class: "hint" }, "or"),
      h(
        "div",
        { class: "actions center" },
        h("button", { id: "pick-files", class: "primary", onclick: () => a.pickFiles() }, "Choose files…"),
        h("button", { id: "pick-folder", onclick: () => a.pickFolder() }, "Choose folder…"),
      ),
    ),
    caps.text ? textBox(a) : null,
    caps.lifetime ? lifetimePicker(a, lifetimeSecs) : null,
    a.setReceivers && caps.manyReceivers ? receiversPicker(a, receivers) : null,
    !caps.ownPassword ? null : h(
      "details",
      { class: "own-password" },
      h("summary", {}, "Use my own password"),
      h("label", { for: "own-password" }, "Password (leave empty to get a generated one)"),
      h("input", { id: "own-password", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. seven-purple-otters" }),
    ),
    h("p", { class: "hint" }, "Files go straight to the other device, end-to-end encrypted. Nothing is uploaded."),
  );
}
