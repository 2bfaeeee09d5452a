// The screen of one running transfer, both directions: room card (sender), offer
// (receiver), verification words, progress, controls, result.
import { h, svgElement } from "../dom";
import { ALL_CAPS, type Capabilities, type EngineError, type OfferStorage, type SavedFile, type TransferReport } from "../engine";
import { displayName, formatBytes, formatCountdown, formatDuration, formatRate, percent } from "../format";
import { displayRoom, webLink } from "../link";
import { statusText, type FileRow, type ReceiverRow, type TransferState } from "../state";

export interface TransferActions {
  copy(text: string, what: string): void;
  pause(): void;
  resume(): void;
  cancel(): void;
  retry(): void;
  back(): void;
  accept(): void;
  /** Browser receiver: accept into a folder picked now. */
  acceptInto?(): void;
  reveal(): void;
  /** Sender: keep the waiting room open for the picked lifetime from now. */
  extendRoom(): void;
  /** Sender: close the waiting room now. */
  closeRoom(): void;
  /** Sender of a room for several receivers: stop receiver `n`; the others carry on. */
  stopReceiver?(n: number): void;
}

export interface TransferExtras {
  qrSvg?: string;
  dest?: string;
  nowMs: number;
  /** The lifetime an Extend asks for, as people say it ("1 hour"). */
  extendBy?: string;
  caps?: Capabilities;
  /** The room's browser link; undefined: derived from its `ferry://` link. */
  webLink?: string | null;
  /** Browser receiver: where the pending offer would go. */
  storage?: OfferStorage | null;
  /** Browser receiver: why the last "save into a folder" did not happen. */
  folderError?: EngineError;
  /** What the finished transfer left (files to save, where they went). */
  report?: TransferReport | null;
}

function bar(value: number, label: string, id?: string): HTMLElement {
  return h("progress", { id, max: 100, value, "aria-label": label, "aria-valuetext": `${value}%` });
}

const RECEIVER_PHASE: Record<ReceiverRow["phase"], string> = {
  checking: "Checking the password",
  connecting: "Connecting",
  sending: "Sending",
  done: "Done",
  failed: "Ended",
};

/** A room for several receivers: one line each, with its progress and a Stop button. */
function receiverList(rows: ReceiverRow[], a: TransferActions): HTMLElement {
  return h(
    "ul",
    { id: "receivers", class: "files receivers", "aria-label": "Receivers" },
    rows.map((r) => {
      const live = r.phase !== "done" && r.phase !== "failed";
      return h(
        "li",
        { class: `file receiver ${r.phase}`, "data-receiver": String(r.n) },
        h("span", { class: "fname" }, `Receiver ${r.n}`),
        h(
          "span",
          { class: "fsize" },
          r.phase === "sending" && r.total
            ? `${formatBytes(r.bytesDone)} / ${formatBytes(r.total)} · ${formatRate(r.rateBps)}`
            : r.message ? `${RECEIVER_PHASE[r.phase]}: ${r.message}` : RECEIVER_PHASE[r.phase],
        ),
        bar(r.phase === "done" ? 100 : percent(r.bytesDone, r.total), `Receiver ${r.n} progress`),
        live && a.stopReceiver
          ? h("button", { class: "small danger", "data-stop": String(r.n), onclick: () => a.stopReceiver?.(r.n) }, "Stop")
          : null,
      );
    }),
  );
}

/** The files, each with its progress; where the page holds a finished file (a browser
 * receiver), its name is the link that saves it. */
function fileList(files: FileRow[], saved: SavedFile[] = []): HTMLElement {
  const urls = new Map(saved.filter((f) => f.url).map((f, i) => [f.path, { url: f.url ?? "", i }]));
  return h(
    "ul",
    { class: "files", "aria-label": "Files" },
    files.map((f) => {
      const link = urls.get(f.path);
      return h(
        "li",
        { class: f.finished ? "file finished" : f.failed ? "file failed" : "file" },
        link
          ? h("a", { class: "fname", href: link.url, download: f.path.split("/").pop() || "file", id: `file-${link.i}`, "data-path": f.path, title: `Save ${displayName(f.path)}` }, displayName(f.path))
          : h("span", { class: "fname", title: displayName(f.path) }, displayName(f.path)),
        h("span", { class: "fsize" }, f.finished ? `✓ ${formatBytes(f.size)}` : `${formatBytes(f.done)} / ${formatBytes(f.size)}`),
        bar(percent(f.done, f.size), `${displayName(f.path)} progress`),
        f.failed ? h("span", { class: "ferr", role: "alert" }, f.failed) : null,
      );
    }),
  );
}

function roomCard(s: TransferState, x: TransferExtras, a: TransferActions): HTMLElement {
  const room = s.room ? displayRoom(s.room) : "";
  const web = x.webLink !== undefined ? x.webLink : s.link ? webLink(s.link) : null;
  return h(
    "section",
    { class: "card room", "aria-labelledby": "room-title" },
    h("h2", { id: "room-title" }, "Share these with the receiver"),
    h(
      "div",
      { class: "room-grid" },
      h(
        "dl",
        { class: "creds" },
        h("dt", {}, "Room ID"),
        h("dd", {}, h("code", { id: "room-id", class: "big" }, room), h("button", { id: "copy-room", class: "small", onclick: () => a.copy(room, "Room ID") }, "Copy")),
        h("dt", {}, "Password"),
        h("dd", {}, h("code", { id: "room-password", class: "big" }, s.password ?? ""), h("button", { id: "copy-password", class: "small", onclick: () => a.copy(s.password ?? "", "Password") }, "Copy")),
        h("dt", {}, "Link"),
        h("dd", {}, h("code", { id: "room-link", class: "link", title: s.link ?? "" }, s.link ?? ""), h("button", { id: "copy-link", class: "small", onclick: () => a.copy(s.link ?? "", "Link") }, "Copy link")),
        web ? h("dt", {}, "Browser link") : null,
        web ? h("dd", {}, h("code", { id: "room-web-link", class: "link", title: web }, web), h("button", { id: "copy-web-link", class: "small", onclick: () => a.copy(web, "Browser link") }, "Copy")) : null,
        s.server ? h("dt", {}, "Server") : null,
        s.server ? h("dd", {}, h("code", { id: "room-server", class: "link" }, s.server)) : null,
        h("dt", {}, "Expires in"),
        h(
          "dd",
          {},
          h("span", { id: "expiry", "data-expires": s.expiresAt ?? "" }, s.expiresAt ? formatCountdown(s.expiresAt, x.nowMs) : "—"),
          s.capped ? h("span", { id: "expiry-capped", class: "hint" }, " (the server's longest)") : null,
        ),
      ),
      x.qrSvg ? h("figure", { class: "qr" }, svgElement(x.qrSvg), h("figcaption", {}, "Scan to join")) : null,
    ),
    skippedNote(s.skipped),
    s.receivers?.length ? receiverList(s.receivers, a) : null,
    h(
      "div",
      { class: "actions room-actions" },
      (x.caps ?? ALL_CAPS).extendRoom
        ? h("button", { id: "extend-room", class: "small", onclick: () => a.extendRoom() }, x.extendBy ? `Keep open ${x.extendBy} more` : "Extend")
        : null,
      h("button", { id: "close-room", class: "small danger", onclick: () => a.closeRoom() }, "Close room"),
    ),
  );
}

/** Symlinks inside a picked folder are never followed (they could point at ~/.ssh): say so. */
function skippedNote(paths: string[]): HTMLElement | null {
  if (!paths.length) return null;
  const shown = paths.slice(0, 5).map(displayName).join(", ");
  const more = paths.length > 5 ? ` and ${paths.length - 5} more` : "";
  return h(
    "p",
    { id: "skipped", class: "hint" },
    `Not sent: ${paths.length} symlink${paths.length === 1 ? "" : "s"} inside the folder (${shown}${more}). Pick a link itself to send what it points to.`,
  );
}

function offerCard(s: TransferState, x: TransferExtras, a: TransferActions): HTMLElement {
  return h(
    "section",
    { class: "card", "aria-labelledby": "offer-title" },
    h("h2", { id: "offer-title" }, `${s.files.length} file${s.files.length === 1 ? "" : "s"}, ${formatBytes(s.total)} in total`),
    h(
      "ul",
      { class: "files offer", "aria-label": "Offered files" },
      s.files.map((f) => h("li", { class: "file" }, h("span", { class: "fname", title: displayName(f.path) }, displayName(f.path)), h("span", { class: "fsize" }, formatBytes(f.size)))),
    ),
    (x.caps ?? ALL_CAPS).destBeforeJoin ? h("p", { class: "dest" }, h("span", {}, "Saving to"), h("code", { id: "dest" }, x.dest ?? "")) : null,
    x.storage ? h("p", { class: "hint", id: "storage", "data-kind": x.storage.kind }, x.storage.text) : null,
    x.storage && !x.storage.fits ? h("p", { class: "field-error", id: "too-large" }, x.storage.tooLarge ?? "") : null,
    h(
      "div",
      { class: "actions" },
      h("button", { id: "accept", class: "primary", disabled: x.storage ? !x.storage.fits : false, onclick: () => a.accept() }, "Accept and receive"),
      x.storage?.folder && a.acceptInto ? h("button", { id: "folder", onclick: () => a.acceptInto?.() }, x.storage.folder) : null,
      h("button", { id: "decline", onclick: () => a.cancel() }, "Decline"),
    ),
    x.storage ? h("p", { class: "field-error", id: "folder-error", role: "alert", "data-code": x.folderError?.code ?? null }, x.folderError ? folderProblem(x.folderError) : "") : null,
  );
}

/** What the offer card says when saving into a folder did not happen. */
function folderProblem(e: EngineError): string {
  return e.code === "picker-aborted" ? "No folder was picked. Pick one to save into, Accept to keep the files in this browser, or Decline." : e.message;
}

/** The finished transfer's sentence, with the figures tests read as `data-*`. */
function doneLine(s: TransferState, report: TransferReport | null | undefined): HTMLElement {
  const n = s.files.length;
  const what = `${n} file${n === 1 ? "" : "s"}, ${formatBytes(s.total)}`;
  const text = s.role === "send" ? `Sent ${what}; the receiver verified every byte.` : `Received ${what}, every byte verified.`;
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(report?.data ?? {})) data[`data-${k}`] = String(v);
  return h("p", { id: "done", ...data }, text);
}

/** A text snippet: the receiver sees it with a Copy button; it is never saved to a file. */
function textCard(s: TransferState, a: TransferActions): HTMLElement {
  const received = s.role === "receive" && s.text != null;
  return h(
    "section",
    { class: "card text", "aria-labelledby": "text-title" },
    h("h2", { id: "text-title" }, received ? "Text received" : "Text sent"),
    received ? h("pre", { id: "received-text", class: "snippet", tabindex: 0 }, s.text ?? "") : null,
    received ? h("p", { class: "hint" }, "Shown here only: it is not saved to a file.") : null,
    h(
      "div",
      { class: "actions" },
      received ? h("button", { id: "copy-text", class: "primary", onclick: () => a.copy(s.text ?? "", "Text") }, "Copy") : null,
      h("button", { id: "back", onclick: () => a.back() }, s.role === "send" ? "Send more" : "Receive more"),
    ),
  );
}

function progressCard(s: TransferState, x: TransferExtras, a: TransferActions): HTMLElement {
  const caps = x.caps ?? ALL_CAPS;
  const pct = percent(s.bytesDone, s.total);
  const done = s.phase === "done";
  return h(
    "section",
    { class: "card", "aria-labelledby": "progress-title" },
    h("h2", { id: "progress-title" }, done ? "Finished" : "Progress"),
    h("div", { class: "overall" }, bar(pct, "Overall progress", "overall-bar"), h("span", { id: "overall-pct", class: "pct" }, `${pct}%`)),
    h(
      "dl",
      { class: "stats" },
      h("dt", {}, "Transferred"),
      h("dd", { id: "bytes" }, `${formatBytes(s.bytesDone)} of ${formatBytes(s.total)}`),
      h("dt", {}, done ? "Average speed" : "Speed"),
      h("dd", { id: "rate" }, formatRate(s.rateBps)),
      h("dt", {}, done ? "Took" : "Time left"),
      h("dd", { id: "eta" }, done ? formatDuration(s.doneSecs) : formatDuration(s.etaSecs)),
      s.path ? h("dt", {}, "Connection") : null,
      s.path ? h("dd", { id: "path" }, s.path === "relayed" ? "Relayed (TURN)" : "Direct") : null,
    ),
    done ? doneLine(s, x.report) : null,
    done && x.report?.note ? h("p", { class: "hint", id: "saved-in" }, x.report.note) : null,
    fileList(s.files, done ? x.report?.files : undefined),
    done
      ? h(
          "div",
          { class: "actions" },
          s.role === "receive" && caps.reveal ? h("button", { id: "reveal", class: "primary", onclick: () => a.reveal() }, "Show in folder") : null,
          h("button", { id: "back", onclick: () => a.back() }, s.role === "send" ? "Send more" : "Receive more"),
        )
      : h(
          "div",
          { class: "actions" },
          !caps.pause[s.role]
            ? null
            : s.phase === "paused"
              ? h("button", { id: "resume", class: "primary", onclick: () => a.resume() }, "Resume")
              : h("button", { id: "pause", onclick: () => a.pause(), disabled: s.phase !== "transferring" }, "Pause"),
          h("button", { id: "cancel", class: "danger", onclick: () => a.cancel() }, "Cancel"),
        ),
  );
}

export function transferView(s: TransferState, x: TransferExtras, a: TransferActions): HTMLElement {
  const title = s.role === "send" ? "Send" : "Receive";
  const showRoom = s.role === "send" && s.room && (s.phase === "waiting" || s.phase === "starting");
  const showText = s.isText && (s.phase === "done" || s.text != null);
  const showProgress = !s.isText && (["transferring", "paused", "reconnecting", "done"].includes(s.phase) || (s.phase === "error" && s.bytesDone > 0));
  return h(
    "div",
    { class: "screen transfer", "data-phase": s.phase },
    h("h1", { id: "screen-title", tabindex: -1 }, title),
    h(
      "p",
      { id: "status", class: `status ${s.phase}`, role: "status" },
      s.phase === "waiting" || s.phase === "connecting" || s.phase === "starting" ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
      statusText(s),
    ),
    s.notice ? h("div", { id: "notice", class: "notice warn", role: "alert", "data-code": s.noticeCode ?? null }, s.notice) : null,
    s.phase === "error" && s.error
      ? h(
          "div",
          { id: "error", class: "notice error", role: "alert", "data-code": s.error.code },
          h("strong", { id: "error-title" }, s.error.title),
          h("p", { id: "error-detail" }, s.error.detail),
          s.error.message && s.error.message !== s.error.detail ? h("p", { id: "error-message", class: "hint" }, s.error.message) : null,
          h(
            "div",
            { class: "actions" },
            s.error.retry ? h("button", { id: "retry", class: "primary", onclick: () => a.retry() }, "Try again") : null,
            h("button", { id: "back", onclick: () => a.back() }, "Back"),
          ),
        )
      : null,
    s.words
      ? h(
          "div",
          { class: "card verify", "aria-labelledby": "words-title" },
          h("h2", { id: "words-title" }, "Verification code"),
          h("p", { id: "words", class: "words" }, s.words),
          h("p", { class: "hint" }, "They should match on both devices. If not, cancel."),
        )
      : null,
    showRoom ? roomCard(s, x, a) : null,
    s.phase === "offer" ? offerCard(s, x, a) : null,
    showProgress ? progressCard(s, x, a) : null,
    showText ? textCard(s, a) : null,
    s.phase === "waiting" || s.phase === "connecting" || s.phase === "starting"
      ? h("div", { class: "actions" }, h("button", { id: "cancel", class: "danger", onclick: () => a.cancel() }, "Cancel"))
      : null,
  );
}
