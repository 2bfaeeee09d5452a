import { h } from "../dom";

export interface ReceiveActions {
  join(room: string, password: string): void;
  chooseFolder(): void;
}

export interface ReceivePrefill {
  room?: string;
  password?: string;
  error?: string;
  /** Shown above the form, e.g. how to resume an unfinished transfer. */
  note?: string;
}

export function receiveView(a: ReceiveActions, prefill: ReceivePrefill, dest: string): HTMLElement {
  const form = h(
    "form",
    { class: "card form", id: "join-form", novalidate: true },
    h("label", { for: "join-room" }, "Room ID or link"),
    h("input", {
      id: "join-room",
      name: "room",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "ABCDE-FGHJK or ferry://join/…",
      value: prefill.room ?? "",
      "aria-describedby": "join-error",
    }),
    h("label", { for: "join-password" }, "Password"),
    h("input", { id: "join-password", name: "password", autocomplete: "off", spellcheck: "false", value: prefill.password ?? "" }),
    h("label", { for: "choose-dest" }, "Save to"),
    h(
      "div",
      { class: "dest" },
      h("code", { id: "dest" }, dest || "(choose a folder)"),
      h("button", { id: "choose-dest", type: "button", onclick: () => a.chooseFolder() }, "Choose folder…"),
    ),
    h("p", { id: "join-error", class: "field-error", role: "alert" }, prefill.error ?? ""),
    h("div", { class: "actions" }, h("button", { id: "join", class: "primary", type: "submit" }, "Join")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const room = (form.querySelector("#join-room") as HTMLInputElement).value;
    const password = (form.querySelector("#join-password") as HTMLInputElement).value;
    a.join(room, password);
  });
  return h(
    "div",
    { class: "screen receive" },
    h("h1", { id: "screen-title", tabindex: -1 }, "Receive files"),
    h("p", { class: "hint" }, "Enter the room ID and password the sender sees, or paste their link."),
    prefill.note ? h("p", { id: "receive-note", class: "notice warn" }, prefill.note) : null,
    form,
  );
}
