import { h } from "../dom";
import { displayName, formatBytes, formatDate, formatDuration } from "../format";
import type { HistoryEntry, TransferState } from "../ipc";

export interface HistoryActions {
  resume(e: HistoryEntry): void;
  refresh(): void;
}

const OUTCOME: Record<TransferState, string> = {
  done: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  active: "Unfinished",
};

export function outcomeLabel(state: TransferState): string {
  return OUTCOME[state] ?? state;
}

export function historyView(entries: HistoryEntry[] | null, error: string | null, a: HistoryActions): HTMLElement {
  let body: HTMLElement;
  if (error) {
    body = h("div", { class: "notice error", role: "alert" }, h("p", {}, error), h("button", { onclick: () => a.refresh() }, "Try again"));
  } else if (!entries) {
    body = h("p", { class: "hint" }, "Loading…");
  } else if (entries.length === 0) {
    body = h("p", { class: "hint", id: "history-empty" }, "Nothing sent or received yet.");
  } else {
    body = h(
      "table",
      { class: "history", id: "history-table" },
      h("caption", { class: "sr-only" }, "Past transfers"),
      h("thead", {}, h("tr", {}, ["", "Name", "Size", "Peer", "Outcome", "When", "Took", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            { "data-id": e.transfer_id },
            h("td", { title: e.direction === "send" ? "Sent" : "Received" }, h("span", { "aria-label": e.direction === "send" ? "Sent" : "Received" }, e.direction === "send" ? "↑" : "↓")),
            h(
              "td",
              { class: e.kind === "text" ? "fname text" : "fname" },
              e.kind === "text" ? h("span", { class: "badge text", "aria-label": "Text" }, "Text") : null,
              e.kind === "text" ? " Text snippet" : displayName(e.name),
              e.files > 1 ? h("span", { class: "hint" }, ` +${e.files - 1} more`) : null,
            ),
            h("td", {}, e.bytes_done < e.bytes && e.state !== "done" ? `${formatBytes(e.bytes_done)} / ${formatBytes(e.bytes)}` : formatBytes(e.bytes)),
            h("td", {}, e.peer ?? "—"),
            h("td", {}, h("span", { class: `badge ${e.state}` }, outcomeLabel(e.state))),
            h("td", {}, formatDate(e.started_at)),
            h("td", {}, formatDuration(e.secs ?? (e.finished_at ? e.finished_at - e.started_at : null))),
            h("td", {}, e.resumable ? h("button", { class: "small", onclick: () => a.resume(e) }, "Resume") : null),
          ),
        ),
      ),
    );
  }
  return h(
    "div",
    { class: "screen history-screen" },
    h("h1", { id: "screen-title", tabindex: -1 }, "History"),
    body,
  );
}
