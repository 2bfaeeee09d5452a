import { h } from "../dom";
import { ALL_CAPS, type Capabilities } from "../engine";
import { type JoinInfo, parseRoomInput } from "../link";
import type { NearbyRoom } from "../ipc";

export interface ReceiveActions {
  /** `server`: where a nearby room lives (null: the link's, or Settings'). */
  join(room: string, password: string, server?: string | null): void;
  chooseFolder(): void;
  /** Listen for rooms announced on the local network. */
  findNearby(): void;
}

/** The Receive screen's nearby list: not looked yet, looking, or what was found. */
export type NearbyState = { kind: "idle" } | { kind: "looking" } | { kind: "found"; rooms: NearbyRoom[] } | { kind: "failed"; message: string };

/** What an empty list says: silence is all a listener hears where multicast is dropped. */
export const NO_NEARBY = "No nearby rooms found. Multicast may be blocked on this network; enter the room ID instead.";

function nearbyList(a: ReceiveActions, state: NearbyState, chosen: { server: string | null }, fill: (r: NearbyRoom) => void): HTMLElement {
  const looking = state.kind === "looking";
  const body =
    state.kind === "found"
      ? state.rooms.length === 0
        ? h("p", { id: "nearby-empty", class: "hint" }, NO_NEARBY)
        : h(
            "ul",
            { id: "nearby-list", class: "nearby" },
            state.rooms.map((r) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", class: "nearby-room", "data-room": r.room, onclick: () => { chosen.server = r.server; fill(r); } },
                  h("strong", {}, r.device),
                  " ",
                  h("code", {}, r.room),
                ),
              ),
            ),
          )
      : state.kind === "failed"
        ? h("p", { id: "nearby-empty", class: "field-error" }, state.message)
        : null;
  return h(
    "div",
    { class: "card nearby-card", id: "nearby" },
    h(
      "div",
      { class: "actions" },
      h("button", { id: "find-nearby", type: "button", disabled: looking, onclick: () => a.findNearby() }, looking ? "Looking for nearby rooms…" : "Find nearby rooms"),
    ),
    body,
  );
}

/** The join form's answer: the room to join and its password, or what to fix (and the field
 * to put the cursor in). `dest`: the folder picked before joining, or null where the engine
 * decides where files go at the offer. */
export function checkJoin(roomInput: string, password: string, dest: string | null): { parsed: JoinInfo; pw: string } | { error: string; field?: string } {
  const parsed = parseRoomInput(roomInput);
  const pw = password.trim() || parsed?.password || "";
  if (!parsed) return { error: "That isn't a room ID. It looks like ABCDE-FGHJK." };
  if (!pw) return { error: "Enter the password the sender sees.", field: "join-password" };
  if (dest !== null && !dest) return { error: "Choose a folder to save into." };
  return { parsed, pw };
}

export interface ReceivePrefill {
  room?: string;
  password?: string;
  error?: string;
  /** Shown above the form, e.g. how to resume an unfinished transfer. */
  note?: string;
}

export function receiveView(a: ReceiveActions, prefill: ReceivePrefill, dest: string, nearby: NearbyState = { kind: "idle" }, caps: Capabilities = ALL_CAPS): HTMLElement {
  // A room picked from the nearby list joins on the server it was announced with, unless the
  // user then types another room.
  const chosen: { server: string | null; room?: string } = { server: null };
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
    caps.destBeforeJoin ? h("label", { for: "choose-dest" }, "Save to") : null,
    caps.destBeforeJoin
      ? h(
          "div",
          { class: "dest" },
          h("code", { id: "dest" }, dest || "(choose a folder)"),
          h("button", { id: "choose-dest", type: "button", onclick: () => a.chooseFolder() }, "Choose folder…"),
        )
      : null,
    h("p", { id: "join-error", class: "field-error", role: "alert" }, prefill.error ?? ""),
    h("div", { class: "actions" }, h("button", { id: "join", class: "primary", type: "submit" }, "Join")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const room = (form.querySelector("#join-room") as HTMLInputElement).value;
    const password = (form.querySelector("#join-password") as HTMLInputElement).value;
    a.join(room, password, chosen.server !== null && room === chosen.room ? chosen.server : null);
  });
  const fill = (r: NearbyRoom) => {
    chosen.room = r.room;
    (form.querySelector("#join-room") as HTMLInputElement).value = r.room;
    (form.querySelector("#join-password") as HTMLInputElement).focus();
  };
  return h(
    "div",
    { class: "screen receive" },
    h("h1", { id: "screen-title", tabindex: -1 }, "Receive files"),
    h("p", { class: "hint" }, "Enter the room ID and password the sender sees, or paste their link."),
    prefill.note ? h("p", { id: "receive-note", class: "notice warn" }, prefill.note) : null,
    caps.nearby ? nearbyList(a, nearby, chosen, fill) : null,
    form,
  );
}
