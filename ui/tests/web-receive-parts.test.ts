// The browser receiver's pure parts (ui/src/web/receive-run.ts and what it uses): event
// mapping, rate and ETA, the offer's storage line, the done report, the connection's path.
// The run itself is web-receive-run.test.ts.
import type { FerryEvent } from "../src/ipc";
import { initialState, reduce } from "../src/state";
import type { Storage } from "../src/web/link-port";
import { selectedPath } from "../src/web/link-path";
import { ProgressMeter } from "../src/web/progress-meter";
import { buildReport, errorEvent, folderError, MAX_IN_MEMORY, offerStorage, ReceiveEvents, STOPPED_DOWNLOADS, storageText, tooLargeText } from "../src/web/receive-run";
import { WebError } from "../src/web/session";
import type { FolderTarget } from "../src/web/sink-folder";
import { fakeDir, MB, OFFER, STATS } from "./web-receive-fixtures";

describe("the offer's storage line", () => {
  it("says where Accept puts the files, in the join page's words", () => {
    expect(storageText({ kind: "disk", capacity: 10 * MB })).toBe("Accept keeps the files in this browser's storage, then offers each one to save.");
    expect(storageText({ kind: "memory", capacity: MAX_IN_MEMORY })).toBe(
      "Accept keeps the files in this page's memory (at most 268 MB), then offers each one to save.",
    );
    expect(storageText({ kind: "stream", capacity: Number.MAX_SAFE_INTEGER })).toMatch(/^Each file is saved to your downloads as it arrives\./);
    expect(tooLargeText({ kind: "memory", capacity: MAX_IN_MEMORY })).toBe(
      "This browser page can hold at most 268 MB; this browser cannot save larger transfers to disk.",
    );
    expect(tooLargeText({ kind: "disk", capacity: 5 * MB })).toBe(
      "This browser's storage has room for 5.00 MB only. Free some disk space, or receive with the Ferry app.",
    );
  });

  it("turns Accept off when the offer does not fit, and offers a folder where one can be picked", () => {
    const mem: Storage = { kind: "memory", capacity: 3000 };
    expect(offerStorage(3000, mem, null, false)).toEqual({ kind: "memory", text: storageText(mem), fits: true });
    expect(offerStorage(3001, mem, null, true)).toEqual({
      kind: "memory",
      text: storageText(mem),
      fits: false,
      tooLarge: tooLargeText(mem),
      folder: "Save into a folder…",
    });
    // An earlier attempt's folder is offered again even where the picker itself is missing.
    const again: FolderTarget = { dir: fakeDir("Holiday"), transferId: OFFER.transferId, entries: [] };
    expect(offerStorage(10, mem, again, false).folder).toBe("Continue into “Holiday”");
  });
});

describe("rate and ETA", () => {
  it("count this attempt's bytes since the accept, with no ETA until there is a rate", () => {
    const m = new ProgressMeter(1000, 0, 4000);
    expect(m.event(1000, "a", 0, false)).toEqual({ event: "progress", file: "a", bytes_done: 0, total: 4000, rate_bps: 0, eta_secs: null });
    expect(m.event(1500, "a", 1000, false)).toEqual({ event: "progress", file: "a", bytes_done: 1000, total: 4000, rate_bps: 2000, eta_secs: 1 });
    // Bytes held before the attempt are not this attempt's rate.
    const resumed = new ProgressMeter(0, 3000, 4000);
    expect(resumed.rate(2000, 3500)).toBe(250);
    expect(resumed.secs(2500)).toBe(2.5);
  });

  it("go out at most every 100 ms unless forced", () => {
    const m = new ProgressMeter(0, 0, 100);
    expect(m.event(10, "a", 1, false)).not.toBeNull();
    expect(m.event(60, "a", 2, false)).toBeNull();
    expect(m.event(70, "a", 100, true)).not.toBeNull();
    expect(m.event(171, "a", 100, false)).not.toBeNull();
  });
});

describe("the Worker's events as FerryEvents", () => {
  const mapper = () => {
    const out: FerryEvent[] = [];
    const clock = { t: 0 };
    return { out, clock, ev: new ReceiveEvents((e) => out.push(e), () => clock.t) };
  };

  it("say the offer (folders marked), overall progress, file results, and done with the accept-to-end seconds", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    clock.t = 5000; // the person took five seconds to decide; they are not transfer time
    ev.accepted();
    ev.worker({ type: "offer", offer: OFFER });
    clock.t = 5500;
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000 });
    ev.worker({ type: "file-done", path: "photos/a.jpg", hash: "ab" });
    ev.worker({ type: "chunk-rejected", file: "photos/b.jpg", offset: 0 });
    ev.worker({ type: "file-failed", path: "photos/b.jpg", code: "disk-full", message: "full" });
    clock.t = 7000;
    ev.worker({ type: "done", ...STATS });
    out.push(ev.done());
    expect(out).toEqual([
      { event: "offer", transfer_id: OFFER.transferId, files: [{ path: "photos", size: 0, dir: true }, { path: "photos/a.jpg", size: 1000 }, { path: "photos/b.jpg", size: 3000 }], total: 4000 },
      { event: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000, rate_bps: 2000, eta_secs: 1 },
      { event: "file-done", path: "photos/a.jpg", hash: "ab" },
      { event: "chunk-rejected", file: "photos/b.jpg", offset: 0 },
      { event: "file-failed", path: "photos/b.jpg", code: "disk-full", message: "full" },
      { event: "done", bytes: 4000, secs: 2, transfer_id: OFFER.transferId },
    ]);
  });

  it("say resuming exactly as the Worker held it, and rate only the new bytes", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    ev.accepted();
    // a.jpg held 700 bytes, b.jpg 2100: the first progress (a whole 256 KiB chunk away from
    // what an estimate could tell apart) changes nothing of it.
    ev.worker({ type: "resuming", bytes_done: 2800, total: 4000 });
    clock.t = 1000;
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 3100, total: 4000 });
    ev.worker({ type: "file-done", path: "photos/a.jpg", hash: "ab" });
    clock.t = 2000;
    ev.worker({ type: "progress", file: "photos/b.jpg", bytes_done: 4000, total: 4000 });
    expect(out.slice(1)).toEqual([
      { event: "resuming", bytes_done: 2800, total: 4000 },
      { event: "progress", file: "photos/a.jpg", bytes_done: 3100, total: 4000, rate_bps: 300, eta_secs: 3 },
      { event: "file-done", path: "photos/a.jpg", hash: "ab" },
      { event: "progress", file: "photos/b.jpg", bytes_done: 4000, total: 4000, rate_bps: 600, eta_secs: 0 },
    ]);
    // The fold shows the whole transfer's figures.
    const s = out.reduce(reduce, initialState("receive"));
    expect(s.bytesDone).toBe(4000);
    expect(s.total).toBe(4000);
  });

  it("never guess a resume from progress: without the Worker's resuming the attempt started at 0", () => {
    const { out, clock, ev } = mapper();
    ev.offered(OFFER);
    ev.accepted();
    clock.t = 1000;
    // One 1000-byte file whole in the first progress, then more: all of it moved in this attempt.
    ev.worker({ type: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000 });
    clock.t = 2000;
    ev.worker({ type: "progress", file: "photos/b.jpg", bytes_done: 3500, total: 4000 });
    expect(out.slice(1)).toEqual([
      { event: "progress", file: "photos/a.jpg", bytes_done: 1000, total: 4000, rate_bps: 1000, eta_secs: 3 },
      { event: "progress", file: "photos/b.jpg", bytes_done: 3500, total: 4000, rate_bps: 1750, eta_secs: 0 },
    ]);
  });

  it("end a text with its UTF-8 length", () => {
    const { out, ev } = mapper();
    ev.worker({ type: "text", transfer_id: "0123abcd-r", text: "héllo" });
    out.push(ev.textDone("héllo"));
    expect(out).toEqual([
      { event: "text", transfer_id: "0123abcd-r", text: "héllo" },
      { event: "done", bytes: 6, secs: 0 },
    ]);
  });
});

describe("the connection's path", () => {
  const cand = (id: string, type: "local-candidate" | "remote-candidate", candidateType: string, address = "10.0.0.1", port = 5000) => ({
    id,
    type,
    candidateType,
    address,
    port,
  });

  it("reads the selected pair (Chromium's transport, Firefox's flag) as the less direct end", () => {
    const chromium = [
      { id: "T", type: "transport", selectedCandidatePairId: "P2" },
      { id: "P1", type: "candidate-pair", localCandidateId: "L1", remoteCandidateId: "R1", nominated: true, state: "succeeded" },
      { id: "P2", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R1" },
      cand("L1", "local-candidate", "host"),
      cand("L2", "local-candidate", "relay"),
      cand("R1", "remote-candidate", "srflx"),
    ];
    expect(selectedPath(chromium)).toEqual({ path: "relayed", kind: "relay" });
    const firefox = [
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true },
      cand("L", "local-candidate", "host"),
      cand("R", "remote-candidate", "srflx"),
    ];
    expect(selectedPath(firefox)).toEqual({ path: "direct", kind: "srflx" });
    expect(selectedPath([])).toEqual({ path: "direct", kind: "unknown" });
  });

  it("reads a remote prflx as the candidate announced at that address", () => {
    const stats = [
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true },
      cand("L", "local-candidate", "host"),
      cand("R", "remote-candidate", "prflx", "192.168.1.9", 6000),
      cand("R2", "remote-candidate", "host", "192.168.1.9", 6000),
    ];
    expect(selectedPath(stats)).toEqual({ path: "direct", kind: "host" });
    stats.pop();
    expect(selectedPath(stats)).toEqual({ path: "direct", kind: "prflx" });
  });
});

describe("the done report and errors", () => {
  it("offers blobs as object URLs and says where the files went, with the done card's figures", () => {
    const blob = new Blob([new Uint8Array(1000)]);
    const files = [{ path: "photos/a.jpg", blob }, { path: "photos/b.jpg", size: 3000 }];
    const urls: Blob[] = [];
    const mk = (b: Blob) => {
      urls.push(b);
      return `blob:${urls.length}`;
    };
    expect(buildReport(files, STATS, "disk", null, mk)).toEqual({
      files: [
        { path: "photos/a.jpg", size: 1000, url: "blob:1" },
        { path: "photos/b.jpg", size: 3000 },
      ],
      data: { storage: "disk", resumed: 0, compressed: 3, rejected: 1 },
    });
    expect(buildReport([], STATS, "folder", "Holiday", mk).note).toBe("Saved in the folder “Holiday”.");
    expect(buildReport([], STATS, "stream", null, mk).note).toBe("Saved to your downloads as they arrived.");
  });

  it("keeps the WebError's code, says io otherwise, and adds the stopped-downloads tail", () => {
    expect(errorEvent(new WebError("peer-left", "gone"), false)).toEqual({ event: "error", code: "peer-left", message: "gone" });
    expect(errorEvent(new Error("boom"), true)).toEqual({ event: "error", code: "io", message: `boom${STOPPED_DOWNLOADS}` });
    expect(folderError(new DOMException("closed", "AbortError")).code).toBe("picker-aborted");
    expect(folderError(new WebError("permission-denied", "no"))).toEqual({ code: "permission-denied", message: "no" });
  });
});

// ---- the run, with a scripted Worker --------------------------------------------------------
