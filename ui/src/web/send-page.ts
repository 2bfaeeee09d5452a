// The browser peer's send screen (web.html?send): pick files or a folder, open a room as its
// host, show its id, password and `ferry://join/...` link, then send to whoever joins with
// the password (`ferry receive`, the app, or another browser page). The room outlives a
// dropped link: the next guest resumes from what the receiver already holds.
import { h } from "../dom";
import { attemptFailedNotice, humanError, wrongPasswordNotice } from "../errors";
import { formatBytes, percent } from "../format";
import { displayRoom } from "../link";
import { type HostEvent, HostRoom } from "./host";
import { sendInWorker } from "./send-port";
import { asWebError, entriesFor, FINAL, RECONNECT_FOR, webLink, withDeadline } from "./send-run";

export { entriesFor, webLink };

export interface SendPageOptions {
  main: HTMLElement;
  say: (text: string) => void;
  server: string;
  errorNotice: (code: string, message: string) => HTMLElement;
}

export function sendPage(o: SendPageOptions): void {
  const { main, say } = o;
  const setState = (state: string, ...children: Node[]) => {
    main.dataset.state = state;
    main.replaceChildren(...children);
  };
  let picked: File[] = [];
  const list = h("ul", { class: "files", id: "picked" });
  const summary = h("p", { class: "hint", id: "picked-summary" }, "No files chosen yet.");
  const create = h("button", { class: "primary", id: "create", disabled: true, onclick: () => void start() }, "Send");
  const add = (files: FileList | null) => {
    if (!files) return;
    picked = [...picked, ...Array.from(files)];
    list.replaceChildren(...picked.map((f) => h("li", { class: "file" }, h("span", { class: "fname" }, f.webkitRelativePath || f.name), h("span", { class: "fsize" }, formatBytes(f.size)))));
    const total = picked.reduce((n, f) => n + f.size, 0);
    summary.textContent = `${picked.length} file${picked.length === 1 ? "" : "s"}, ${formatBytes(total)}`;
    create.disabled = picked.length === 0;
  };
  const filesInput = h("input", { type: "file", id: "files", multiple: true, onchange: (ev: Event) => add((ev.target as HTMLInputElement).files) });
  const folderInput = h("input", { type: "file", id: "folder", webkitdirectory: true, onchange: (ev: Event) => add((ev.target as HTMLInputElement).files) });
  setState(
    "pick",
    h("h1", {}, "Send with Ferry"),
    h(
      "div",
      { class: "card" },
      h("label", { for: "files" }, "Files"),
      filesInput,
      h("label", { for: "folder" }, "Or a folder"),
      folderInput,
      summary,
      list,
      h("div", { class: "actions" }, create),
    ),
  );

  async function start(): Promise<void> {
    const files = picked;
    const entries = entriesFor(files);
    const q = new URLSearchParams(location.search);
    // Tests only: a rate cap, so a transfer is slow enough to interrupt.
    const rateBps = Number(q.get("throttle") ?? 0) || 0;
    setState("connecting", h("h1", {}, "Send with Ferry"), status("Opening a room…"));
    let room: HostRoom;
    try {
      room = await HostRoom.create({ server: o.server });
    } catch (e) {
      return fail(e);
    }
    let current: { pc: RTCPeerConnection } | null = null;
    // Closing the tab ends the connection cleanly (DTLS close_notify), so the receiver hears
    // it at once rather than after ICE timeouts.
    addEventListener("pagehide", () => {
      current?.pc.close();
      room.close();
    });
    const notice = h("p", { class: "notice", id: "notice", role: "status" });
    const waitStatus = h("div", { id: "wait" }, status("Waiting for the receiver…"));
    setState(
      "waiting",
      h("h1", {}, "Ready to send"),
      h(
        "div",
        { class: "card" },
        h("p", {}, "Give the receiver the room and the password, or the link:"),
        h("p", {}, "Room ", h("strong", { id: "room-id" }, displayRoom(room.room))),
        h("p", {}, "Password ", h("strong", { id: "room-password" }, room.password)),
        h("p", { class: "hint" }, h("code", { id: "room-link" }, room.link)),
        h("p", { class: "hint" }, "In a browser: ", h("a", { id: "web-link", href: webLink(location, room.room, room.password), target: "_blank", rel: "noopener" }, "join link")),
        h("p", { class: "hint" }, `ferry receive ${room.link}`),
        waitStatus,
        notice,
      ),
    );
    say("Room open, waiting for the receiver");
    const onHostEvent = (e: HostEvent) => {
      if (e.type === "wrong-password") {
        notice.dataset.code = "wrong-password";
        notice.textContent = wrongPasswordNotice(e.attemptsLeft);
        say("Someone tried a wrong password");
      } else if (e.type === "attempt-failed") {
        notice.dataset.code = e.code;
        notice.textContent = attemptFailedNotice(e.code);
      } else if (e.type === "connecting") {
        waitStatus.replaceChildren(status("Password accepted; connecting the devices…"));
      }
    };
    let giveUpAt = Infinity;
    let attempts = 0;
    // Exactly one `accept` runs at any time, also while sending (see HostRoom.accept).
    let next = room.accept(onHostEvent);
    for (;;) {
      let connected;
      try {
        connected = await withDeadline(next, giveUpAt);
      } catch (e) {
        room.close();
        return fail(e);
      }
      attempts += 1;
      const { link, verification } = connected;
      next = room.accept(onHostEvent);
      // A receiver that proved the password again replaces this link (whose peer, if it is
      // the same receiver, vanished without closing it); it resumes where this one stopped.
      void next.then(
        () => link.close(0),
        () => undefined,
      );
      current = link;
      const bar = h("progress", { id: "progress", max: 100, value: 0 });
      const pct = h("span", { class: "pct" }, "0 %");
      const line = h("p", { class: "hint" }, "");
      const cancelBtn = h("button", { id: "cancel" }, "Cancel");
      const cancelled = new Promise<void>((resolve) => cancelBtn.addEventListener("click", () => resolve()));
      let setPaused: (p: boolean) => void = () => {};
      const pauseBtn = h("button", { id: "pause", "aria-pressed": "false" }, "Pause");
      pauseBtn.addEventListener("click", () => {
        const p = pauseBtn.getAttribute("aria-pressed") !== "true";
        pauseBtn.setAttribute("aria-pressed", String(p));
        pauseBtn.textContent = p ? "Resume" : "Pause";
        setPaused(p);
      });
      setState(
        "sending",
        h("h1", {}, attempts > 1 ? "Sending (resumed)" : "Sending"),
        h(
          "div",
          { class: "card" },
          h("div", { class: "overall" }, bar, pct),
          line,
          h("p", { class: "hint" }, `Verification code ${verification}`),
          h("div", { class: "actions" }, pauseBtn, cancelBtn),
          notice,
        ),
      );
      say("Connected, sending");
      const worker = new Worker(new URL("./send-worker.ts", import.meta.url), { type: "module" });
      try {
        const r = await sendInWorker(worker, link, {
          room: room.room,
          files,
          entries,
          caps: link.caps,
          rateBps,
          cancelled,
          pauseWith: (set) => (setPaused = set),
          onEvent: (e) => {
            if (e.type === "paused" || e.type === "resumed") bar.dataset.paused = String(e.type === "paused");
            if (e.type === "progress") {
              const p = percent(e.bytes_done, e.total);
              bar.value = p;
              pct.textContent = `${p} %`;
              line.textContent = `${e.file} — ${formatBytes(e.bytes_done)} of ${formatBytes(e.total)}`;
            }
          },
        });
        room.close();
        // A guest that connected just as this one finished gets nothing.
        void next.then(
          (c) => c.link.close(0),
          () => undefined,
        );
        const s = r.stats;
        setState(
          "done",
          h("h1", {}, "Done"),
          h(
            "div",
            { class: "card" },
            h(
              "p",
              { id: "done", "data-bytes": s.bytes, "data-files": s.files, "data-resumed": s.resumed, "data-sent": s.sent, "data-compressed": s.compressed, "data-failed": s.failed.length, "data-attempts": attempts, "data-transfer": r.transferId },
              `Sent ${s.files} file${s.files === 1 ? "" : "s"}, ${formatBytes(s.bytes)}; the receiver verified every byte.`,
            ),
            s.failed.length ? h("p", { class: "field-error" }, `Not sent: ${s.failed.map((f) => f.path).join(", ")}`) : null,
          ),
        );
        say("Transfer complete");
        return;
      } catch (e) {
        const err = asWebError(e);
        if (FINAL.has(err.code) || err.code === "protocol" || err.code === "source-changed") {
          room.close();
          return fail(err);
        }
        // The link dropped: keep the room for the receiver to come back and resume.
        giveUpAt = Date.now() + RECONNECT_FOR;
        notice.dataset.code = err.code;
        notice.textContent = "The connection dropped; waiting for the receiver to reconnect…";
        setState("reconnecting", h("h1", {}, "Reconnecting"), h("div", { class: "card" }, h("p", {}, `Room ${displayRoom(room.room)}`), notice));
        say("Connection lost, waiting for the receiver");
      }
    }
  }

  function fail(e: unknown): void {
    const err = asWebError(e);
    console.error("ferry:", err.code, err.message);
    setState("error", h("h1", {}, "Send with Ferry"), o.errorNotice(err.code, err.message));
    say(humanError(err.code, err.message).title);
  }
}

function status(text: string): HTMLElement {
  return h("p", { class: "status", id: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}
