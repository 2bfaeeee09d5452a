// The browser peer's join page (web.html): room and password from the link's fragment
// (`#ROOM/PASSWORD`, or `/j/ROOM#PASSWORD`) or typed in, then the offer, progress, and the
// received files as downloads. Joining (signaling, PAKE, WebRTC) runs on this page's main
// thread, where RTCPeerConnection lives; the transfer (peer protocol, hashing, LZ4) runs in a
// Worker (receive-worker.ts), fed the data channel's frames. `?send` opens the send screen
// instead (send-page.ts: this page as a room's host, sending picked files).
import "../style.css";

import { h } from "../dom";
import { humanError } from "../errors";
import { formatBytes, percent } from "../format";
import { displayRoom, normalizeRoom } from "../link";
import { parseJoinUrl } from "./join-url";
import { receiveInWorker, type Storage } from "./link-port";
import type { Offer } from "./receive";
import { sendPage } from "./send-page";
import { join, WebError } from "./session";
import { type FolderTarget, folderPickerAvailable, pickFolder, planFolder, writePermission } from "./sink-folder";
import { Downloads, registerDownloads } from "./stream-page";

/** What the in-memory sink (where the browser has no origin-private file system) may hold:
 * the page then keeps every received byte until it is saved. */
const MAX_IN_MEMORY = 256 * 1024 * 1024;

/** The folder the last offer went into: an attempt of the same transfer after a dropped link
 * continues there, each file from what it holds (sink-folder.ts). Lives as long as the page. */
let lastFolder: FolderTarget | null = null;

const main = document.getElementById("main") as HTMLElement;
const live = document.getElementById("live") as HTMLElement;

interface Target {
  room: string;
  password: string;
  server: string;
}

/** What the address carries: `?server=`, `/j/ROOM`, `#ROOM/PASSWORD` or `#PASSWORD` (join-url.ts). */
function fromLocation(): Partial<Target> {
  return parseJoinUrl(location);
}

function setState(state: string, ...children: Node[]): void {
  main.dataset.state = state;
  main.replaceChildren(...children);
}

function say(text: string): void {
  live.textContent = text;
}

function joinForm(t: Partial<Target>, error?: { code: string; message: string }): void {
  const room = h("input", { id: "room", autocomplete: "off", spellcheck: "false", value: t.room ? displayRoom(t.room) : "" });
  const password = h("input", { id: "password", autocomplete: "off", spellcheck: "false", value: t.password ?? "" });
  const problem = h("p", { class: "field-error", id: "form-error", role: "alert" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const r = normalizeRoom(room.value);
        if (!r) {
          problem.textContent = "A room ID is 10 letters and digits, like ABCDE-FGHJK.";
          return;
        }
        if (!password.value.trim()) {
          problem.textContent = "Enter the password the sender gave you.";
          return;
        }
        void run({ room: r, password: password.value, server: t.server ?? "" });
      },
    },
    h("label", { for: "room" }, "Room"),
    room,
    h("label", { for: "password" }, "Password"),
    password,
    problem,
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", id: "join" }, "Join")),
    h("p", { class: "hint" }, h("a", { id: "to-send", href: sendHref() }, "Send files instead")),
  );
  const notice = error ? errorNotice(error.code, error.message) : null;
  setState(error ? "error" : "join", h("h1", {}, "Receive with Ferry"), ...(notice ? [notice] : []), form);
}

/** This page in send mode (`?send`), keeping `?server=`. */
function sendHref(): string {
  const q = new URLSearchParams(location.search);
  q.set("send", "");
  return `${location.pathname}?${q.toString()}`;
}

function errorNotice(code: string, message: string): HTMLElement {
  const e = humanError(code, message);
  return h(
    "div",
    { class: "notice error", id: "error", "data-code": code, role: "alert" },
    h("strong", {}, e.title),
    h("p", {}, e.detail),
    message && message !== e.detail ? h("p", { class: "hint" }, message) : null,
  );
}

function status(text: string): HTMLElement {
  return h("p", { class: "status", id: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** Where Accept puts the files, said before accepting. */
function storageText(storage: Storage): string {
  if (storage.kind === "stream") {
    return "Each file is saved to your downloads as it arrives. A download that stops cannot resume: if the connection drops, the unfinished files start over.";
  }
  if (storage.kind === "disk") return "Accept keeps the files in this browser's storage, then offers each one to save.";
  return `Accept keeps the files in this page's memory (at most ${formatBytes(storage.capacity)}), then offers each one to save.`;
}

function offerView(offer: Offer, storage: Storage): Promise<boolean | FolderTarget> {
  return new Promise((resolve) => {
    const fits = offer.total <= storage.capacity;
    const again = lastFolder?.transferId === offer.transferId ? lastFolder : null;
    const folderProblem = h("p", { class: "field-error", id: "folder-error", role: "alert" });
    // The picker needs this click's user activation, so it opens before anything is awaited.
    const toFolder = async () => {
      folderProblem.textContent = "";
      try {
        const dir = again ? again.dir : await pickFolder();
        if (again) await writePermission(dir);
        resolve(await planFolder(dir, offer, again));
      } catch (e) {
        const aborted = e instanceof DOMException && e.name === "AbortError";
        const err = e instanceof WebError ? e : new WebError("io", e instanceof Error ? e.message : String(e));
        folderProblem.dataset.code = aborted ? "picker-aborted" : err.code;
        folderProblem.textContent = aborted ? "No folder was picked. Pick one to save into, Accept to keep the files in this browser, or Decline." : err.message;
      }
    };
    const list = h(
      "ul",
      { class: "files" },
      offer.files.map((f) => h("li", { class: "file" }, h("span", { class: "fname" }, f.path), h("span", { class: "fsize" }, formatBytes(f.size)))),
    );
    setState(
      "offer",
      h("h1", {}, "Incoming files"),
      h(
        "div",
        { class: "card" },
        h("p", {}, `${offer.files.length} file${offer.files.length === 1 ? "" : "s"}, ${formatBytes(offer.total)}`),
        list,
        h("p", { class: "hint", id: "storage", "data-kind": storage.kind }, storageText(storage)),
        fits
          ? null
          : h(
              "p",
              { class: "field-error", id: "too-large" },
              storage.kind === "memory"
                ? `This browser page can hold at most ${formatBytes(storage.capacity)}; this browser cannot save larger transfers to disk.`
                : `This browser's storage has room for ${formatBytes(storage.capacity)} only. Free some disk space, or receive with the Ferry app.`,
            ),
        h(
          "div",
          { class: "actions" },
          h("button", { class: "primary", id: "accept", disabled: !fits, onclick: () => resolve(true) }, "Accept"),
          folderPickerAvailable() || again
            ? h("button", { id: "folder", onclick: () => void toFolder() }, again ? `Continue into “${again.dir.name}”` : "Save into a folder…")
            : null,
          h("button", { id: "decline", onclick: () => resolve(false) }, "Decline"),
        ),
        folderProblem,
      ),
    );
  });
}

async function run(t: Target): Promise<void> {
  history.replaceState(null, "", location.pathname + location.search);
  setState("connecting", h("h1", {}, `Room ${displayRoom(t.room)}`), status("Connecting…"));
  say("Connecting");
  // `?sink=memory` / `?sink=stream` force a sink (tests); otherwise receive-worker.ts picks.
  const sinkParam = new URLSearchParams(location.search).get("sink");
  const sw = sinkParam === "memory" ? Promise.resolve(null) : registerDownloads();
  let downloads: Downloads | null = null;
  let streamed = false;
  let storedOn = "";
  try {
    const { link, verification, sig } = await join({
      server: t.server,
      room: t.room,
      password: t.password,
      onEvent: (e) => {
        if (e.type === "connecting") setState("connecting", h("h1", {}, `Room ${displayRoom(t.room)}`), status("Password accepted; connecting the devices…"));
      },
    });
    sig.close();
    // Closing the tab should end the connection cleanly (DTLS close_notify), so the sender
    // notices at once and keeps the room for another try instead of waiting out ICE timeouts.
    const onHide = () => link.pc.close();
    addEventListener("pagehide", onHide);
    say("Connected");
    const bar = h("progress", { id: "progress", max: 100, value: 0 });
    const pct = h("span", { class: "pct" }, "0 %");
    const line = h("p", { class: "hint" }, "");
    let started = false;
    const active = await sw;
    downloads = active ? new Downloads(active) : null;
    const worker = new Worker(new URL("./receive-worker.ts", import.meta.url), { type: "module" });
    const result = await receiveInWorker(worker, link, {
      maxBytes: MAX_IN_MEMORY,
      sink: sinkParam === "memory" || sinkParam === "stream" ? sinkParam : "auto",
      onDownload: downloads
        ? (req) => {
            streamed = true;
            void downloads?.start(req);
          }
        : undefined,
      decide: async (offer, storage) => {
        const d = await offerView(offer, storage);
        storedOn = typeof d === "boolean" ? storage.kind : "folder";
        if (typeof d !== "boolean") lastFolder = d;
        return d;
      },
      onEvent: (e) => {
        if (e.type === "progress" || (e.type === "file-done" && !started)) {
          if (!started) {
            started = true;
            setState(
              "receiving",
              h("h1", {}, "Receiving"),
              h("div", { class: "card" }, h("div", { class: "overall" }, bar, pct), line, h("p", { class: "hint" }, `Verification code ${verification}`)),
            );
          }
        }
        if (e.type === "progress") {
          const p = percent(e.bytes_done, e.total);
          bar.value = p;
          pct.textContent = `${p} %`;
          line.textContent = `${e.file} — ${formatBytes(e.bytes_done)} of ${formatBytes(e.total)}`;
        }
      },
    });
    if ("text" in result) {
      setState("done", h("h1", {}, "Text received"), h("pre", { class: "card", id: "text" }, result.text));
      say("Text received");
      return;
    }
    const items = result.files.map((f, i) => {
      if (!f.blob) {
        return h("li", { class: "file" }, h("span", { class: "fname", id: `file-${i}`, "data-path": f.path }, f.path), h("span", { class: "fsize" }, formatBytes(f.size ?? 0)));
      }
      const url = URL.createObjectURL(f.blob);
      const name = f.path.split("/").pop() || "file";
      return h(
        "li",
        { class: "file" },
        h("a", { class: "fname", href: url, download: name, id: `file-${i}`, "data-path": f.path }, f.path),
        h("span", { class: "fsize" }, formatBytes(f.blob.size)),
      );
    });
    setState(
      "done",
      h("h1", {}, "Done"),
      h("div", { class: "card" }, h("p", { id: "done", "data-storage": storedOn, "data-resumed": result.stats.resumed, "data-compressed": result.stats.compressed, "data-rejected": result.stats.rejected }, `Received ${result.stats.files} file${result.stats.files === 1 ? "" : "s"}, ${formatBytes(result.stats.bytes)}, every byte verified.`), storedOn === "folder" && lastFolder ? h("p", { class: "hint", id: "saved-in" }, `Saved in the folder “${lastFolder.dir.name}”.`) : null, storedOn === "stream" ? h("p", { class: "hint", id: "saved-in" }, "Saved to your downloads as they arrived.") : null, h("ul", { class: "files" }, items)),
    );
    say("Transfer complete");
  } catch (e) {
    const err = e instanceof WebError ? e : new WebError("io", e instanceof Error ? e.message : String(e));
    console.error("ferry:", err.code, err.message);
    const stopped = streamed ? " The downloads that were running stopped; a download cannot resume, so those files start over on the next try." : "";
    joinForm(t, { code: err.code, message: err.message + stopped });
    say(humanError(err.code, err.message).title);
  } finally {
    downloads?.stop();
  }
}

const start = fromLocation();
if (!window.isSecureContext) {
  setState("error", h("h1", {}, "Receive with Ferry"), errorNotice("insecure-context", "Open this page over https (or on localhost): browsers allow its cryptography only there."));
} else if (new URLSearchParams(location.search).has("send")) {
  sendPage({ main, say, server: start.server ?? "", errorNotice });
} else if (start.room && start.password) {
  void run(start as Target);
} else {
  joinForm(start);
}
