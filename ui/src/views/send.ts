import { h } from "../dom";

export interface SendActions {
  pickFiles(): void;
  pickFolder(): void;
}

/** Home screen: drop anywhere on the window, or pick. An optional own password. */
export function sendView(a: SendActions, dragging: boolean): HTMLElement {
  return h(
    "div",
    { class: "screen send" },
    h("h1", { id: "screen-title", tabindex: -1 }, "Send files"),
    h(
      "div",
      { class: `dropzone${dragging ? " over" : ""}`, id: "dropzone" },
      h("div", { class: "drop-icon", "aria-hidden": "true" }, "⇪"),
      h("p", { class: "drop-text" }, "Drop files or folders anywhere on this window"),
      h("p", { class: "hint" }, "or"),
      h(
        "div",
        { class: "actions center" },
        h("button", { id: "pick-files", class: "primary", onclick: () => a.pickFiles() }, "Choose files…"),
        h("button", { id: "pick-folder", onclick: () => a.pickFolder() }, "Choose folder…"),
      ),
    ),
    h(
      "details",
      { class: "own-password" },
      h("summary", {}, "Use my own password"),
      h("label", { for: "own-password" }, "Password (leave empty to get a generated one)"),
      h("input", { id: "own-password", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e.g. seven-purple-otters" }),
    ),
    h("p", { class: "hint" }, "Files go straight to the other device, end-to-end encrypted. Nothing is uploaded."),
  );
}
