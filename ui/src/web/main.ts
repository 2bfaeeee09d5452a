// The browser peer's page (web.html): the desktop app's screens (app.ts, views/) over the
// web engine (engine.ts). The address says what to open: `/j/ROOM#PASSWORD` or
// `#ROOM/PASSWORD` joins at once, `#ROOM` or `/j/ROOM` fills the join form, `?send` opens
// the Send screen, anything else the Receive screen (join-url.ts reads the forms).
import "../style.css";

import { App } from "../app";
import { h } from "../dom";
import { humanError } from "../errors";
import { WebEngine } from "./engine";
import { parseJoinUrl } from "./join-url";

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav");

if (!window.isSecureContext) {
  // Browsers allow WebCrypto, Workers' wasm and WebRTC's certificates only in a secure
  // context: say so instead of failing at the first step.
  const e = humanError("insecure-context", "");
  main.dataset.state = "error";
  main.replaceChildren(
    h("h1", { id: "screen-title" }, "Ferry"),
    h(
      "div",
      { class: "notice error", id: "error", "data-code": "insecure-context", role: "alert" },
      h("strong", {}, e.title),
      h("p", {}, e.detail),
      h("p", { class: "hint" }, "Open this page over https (or on localhost): browsers allow its cryptography only there."),
    ),
  );
} else {
  const engine = new WebEngine(location);
  const app = new App(main, nav, engine);
  engine.onUnaskedPick = (p) => app.startSend(p);
  engine.mountInputs();
  // For the end-to-end tests and debugging: the controller is reachable from the console.
  (window as unknown as { ferry: App }).ferry = app;
  const start = parseJoinUrl(location);
  // The password is in the fragment so it never reaches a server; it leaves the address bar
  // as soon as it is read.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  void app.init().then(() => {
    if (new URLSearchParams(location.search).has("send")) app.go("send");
    else if (start.room && start.password) app.join(start.room, start.password, start.server);
    else {
      app.receivePrefill = { room: start.room ?? "" };
      app.go("receive");
    }
  });
  // A page gets dropped files as `File`s (folders are not read whole here).
  let depth = 0;
  addEventListener("dragenter", (ev) => {
    if (!ev.dataTransfer?.types.includes("Files")) return;
    depth += 1;
    app.setDragging(true);
  });
  addEventListener("dragleave", () => {
    depth = Math.max(depth - 1, 0);
    if (depth === 0) app.setDragging(false);
  });
  addEventListener("dragover", (ev) => ev.preventDefault());
  addEventListener("drop", (ev) => {
    ev.preventDefault();
    depth = 0;
    const files = Array.from(ev.dataTransfer?.files ?? []);
    app.onDrop({ kind: "files", files });
  });
}
