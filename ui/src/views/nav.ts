import { h } from "../dom";
import type { Capabilities } from "../engine";

/** The sections the nav offers; History and Settings only where the engine has them. */
export type Section = "send" | "receive" | "history" | "settings";

const SECTIONS: [Section, string][] = [
  ["send", "Send"],
  ["receive", "Receive"],
  ["history", "History"],
  ["settings", "Settings"],
];

export function navView(active: string, caps: Capabilities, go: (s: Section) => void): HTMLElement {
  const shown = SECTIONS.filter(([s]) => (s !== "history" || caps.history) && (s !== "settings" || caps.settings));
  return h(
    "div",
    { class: "nav-inner" },
    shown.map(([s, label]) => h("button", { id: `nav-${s}`, class: "nav", "aria-current": active === s ? "page" : null, onclick: () => go(s) }, label)),
  );
}
