// The browser send run's pure parts (send-run.ts): how the room's and the Worker's events
// become the engine's `FerryEvent`s, the rate and time left, the done report, and that the
// events fold (state.ts) into the screens a native send shows. The connected path (a real
// room, data channel and Worker) is covered by the browser end-to-end tests.
import { describe, expect, it } from "vitest";

import type { FerryEvent } from "../src/ipc";
import { initialState, reduce } from "../src/state";
import { selectedPath } from "../src/web/link-path";
import type { SendStats } from "../src/web/send";
import {
  AttemptMeter,
  buildReport,
  doneEvent,
  hostEventToFerry,
  isFinal,
  startSend,
  withDeadline,
} from "../src/web/send-run";
import { WebError } from "../src/web/signal";

/** A statistics report's entries, as `linkPath` hands them to `selectedPath`. */
const stats = (...s: Record<string, unknown>[]) => s.map((x) => ({ ...x, id: String(x.id), type: String(x.type) }));

describe("room events", () => {
  it("map as the native sender reports them", () => {
    expect(hostEventToFerry({ type: "wrong-password", attemptsLeft: 2 }, false)).toEqual({ event: "wrong-password-attempt", attempts_left: 2 });
    expect(hostEventToFerry({ type: "wrong-password", attemptsLeft: null }, false)).toEqual({ event: "wrong-password-attempt", attempts_left: null });
    expect(hostEventToFerry({ type: "attempt-failed", code: "timeout", message: "slow" }, false)).toEqual({ event: "attempt-failed", code: "timeout", message: "slow" });
    expect(hostEventToFerry({ type: "peer-joined" }, false)).toEqual({ event: "peer-joined" });
    expect(hostEventToFerry({ type: "connecting" }, false)).toEqual({ event: "connecting" });
    expect(hostEventToFerry({ type: "peer-left" }, false)).toEqual({ event: "waiting" });
    // The run reports `connected` itself, with the link's path.
    expect(hostEventToFerry({ type: "connected", verification: "x" }, false)).toBeNull();
  });

  it("while a link carries the transfer, only say wrong passwords and failed attempts", () => {
    expect(hostEventToFerry({ type: "peer-joined" }, true)).toBeNull();
    expect(hostEventToFerry({ type: "connecting" }, true)).toBeNull();
    expect(hostEventToFerry({ type: "peer-left" }, true)).toBeNull();
    expect(hostEventToFerry({ type: "wrong-password", attemptsLeft: 4 }, true)).toEqual({ event: "wrong-password-attempt", attempts_left: 4 });
    expect(hostEventToFerry({ type: "attempt-failed", code: "connect-failed", message: "m" }, true)?.event).toBe("attempt-failed");
    // Folded, a knock during the transfer leaves the screen on the transfer.
    let s = [...roomAndConnect(), progress(500, 1000)].reduce(reduce, initialState("send"));
    for (const e of [hostEventToFerry({ type: "peer-joined" }, true), hostEventToFerry({ type: "wrong-password", attemptsLeft: 4 }, true)]) {
      if (e) s = reduce(s, e);
    }
    expect(s.phase).toBe("transferring");
    expect(s.wrongAttempts).toBe(1);
  });
});

describe("connection path", () => {
  it("reads Chrome's selected pair off the transport: the less direct end", () => {
    const r = stats(
      { id: "T", type: "transport", selectedCandidatePairId: "P" },
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R" },
      { id: "Q", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R", nominated: true, state: "succeeded" },
      { id: "L", type: "local-candidate", candidateType: "host" },
      { id: "L2", type: "local-candidate", candidateType: "relay" },
      { id: "R", type: "remote-candidate", candidateType: "srflx" },
    );
    expect(selectedPath(r)).toEqual({ path: "direct", kind: "srflx" });
  });

  it("reads Firefox's marked pair; a relay on either end is relayed", () => {
    const r = stats(
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", selected: true },
      { id: "L", type: "local-candidate", candidateType: "host" },
      { id: "R", type: "remote-candidate", candidateType: "relay" },
    );
    expect(selectedPath(r)).toEqual({ path: "relayed", kind: "relay" });
    const host = stats(
      { id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", nominated: true, state: "succeeded" },
      { id: "L", type: "local-candidate", candidateType: "host" },
      { id: "R", type: "remote-candidate", candidateType: "host" },
    );
    expect(selectedPath(host)).toEqual({ path: "direct", kind: "host" });
  });

  it("is unknown (and counted direct, as the native engine does) when no pair is selected", () => {
    expect(selectedPath(stats())).toEqual({ path: "direct", kind: "unknown" });
    expect(selectedPath(stats({ id: "P", type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", nominated: true, state: "in-progress" }))).toEqual({
      path: "direct",
      kind: "unknown",
    });
  });
});

describe("attempt events", () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, at: (ms: number) => (t = 1_000_000 + ms) };
  };

  it("a fresh send: no resuming, rate over this attempt, eta once there is a rate", () => {
    const c = clock();
    const m = new AttemptMeter(c.now);
    expect(m.map({ type: "accepted", files: 2, total: 4000, resumed: 0 })).toEqual([]);
    expect(m.map({ type: "progress", bytes_done: 0, total: 4000, file: "a" })).toEqual([{ event: "progress", file: "a", bytes_done: 0, total: 4000, rate_bps: 0, eta_secs: null }]);
    c.at(2000);
    expect(m.map({ type: "progress", bytes_done: 1000, total: 4000, file: "b" })).toEqual([{ event: "progress", file: "b", bytes_done: 1000, total: 4000, rate_bps: 500, eta_secs: 6 }]);
    c.at(3000);
    // Whole seconds and whole bytes per second, rounded down as the native engine does.
    expect(m.map({ type: "progress", bytes_done: 1000, total: 4000, file: "b" })[0]).toMatchObject({ rate_bps: 333, eta_secs: 9 });
    expect(m.secs()).toBe(3);
  });

  it("a resumed send says where it starts, and counts the rate from there", () => {
    const c = clock();
    const m = new AttemptMeter(c.now);
    expect(m.map({ type: "accepted", files: 1, total: 4000, resumed: 1000 })).toEqual([{ event: "resuming", bytes_done: 1000, total: 4000 }]);
    c.at(1000);
    expect(m.map({ type: "progress", bytes_done: 1500, total: 4000, file: "a" })).toEqual([{ event: "progress", file: "a", bytes_done: 1500, total: 4000, rate_bps: 500, eta_secs: 5 }]);
  });

  it("passes the rest through", () => {
    const m = new AttemptMeter(() => 0);
    expect(m.map({ type: "chunk-rejected", file: "a", offset: 65536 })).toEqual([{ event: "chunk-rejected", file: "a", offset: 65536 }]);
    expect(m.map({ type: "file-done", path: "a", hash: "ab" })).toEqual([{ event: "file-done", path: "a", hash: "ab" }]);
    expect(m.map({ type: "file-failed", path: "a", code: "source-changed", message: "m" })).toEqual([{ event: "file-failed", path: "a", code: "source-changed", message: "m" }]);
    expect(m.map({ type: "paused" })).toEqual([{ event: "paused" }]);
    expect(m.map({ type: "resumed" })).toEqual([{ event: "resumed" }]);
    // Before the accept there is no rate.
    expect(m.secs()).toBe(0);
  });
});

const sent: SendStats = { files: 2, bytes: 4000, sent: 3000, linkBytes: 1200, resumed: 1000, compressed: 3, failed: [] };

describe("done", () => {
  it("carries the bytes, the attempt's seconds, the transfer id and the bytes that crossed the link", () => {
    expect(doneEvent(sent, "6f1c0a52d3b94e7e", 2.5)).toEqual({ event: "done", bytes: 4000, secs: 2.5, transfer_id: "6f1c0a52d3b94e7e", link_bytes: 1200 });
  });

  it("reports the figures the done card carries", () => {
    expect(buildReport(sent, "6f1c", 2)).toEqual({
      data: { bytes: 4000, files: 2, resumed: 1000, sent: 3000, compressed: 3, failed: 0, attempts: 2, transfer: "6f1c" },
    });
  });

  it("names the files not sent", () => {
    const r = buildReport({ ...sent, files: 1, failed: [{ path: "a.txt", code: "source-changed" }, { path: "d/b", code: "source-changed" }] }, "6f1c", 1);
    expect(r.data?.failed).toBe(2);
    expect(r.note).toBe("Not sent: a.txt, d/b");
  });
});

describe("ends", () => {
  it("waits for the receiver after a dropped link, not after a final end", () => {
    for (const code of ["peer-left", "io", "timeout", "connect-failed"]) expect(isFinal(code)).toBe(false);
    for (const code of ["cancelled", "declined", "integrity", "protocol", "source-changed", "room-locked", "room-expired", "disk-full"]) expect(isFinal(code)).toBe(true);
  });

  it("gives up on a receiver that does not come back in time", async () => {
    await expect(withDeadline(new Promise(() => {}), Date.now() + 20)).rejects.toMatchObject({ code: "peer-left" });
    await expect(withDeadline(Promise.resolve(7), Date.now() + 10_000)).resolves.toBe(7);
    await expect(withDeadline(Promise.resolve(8), Infinity)).resolves.toBe(8);
    await expect(withDeadline(Promise.reject(new WebError("room-locked", "m")), Date.now() + 10_000)).rejects.toMatchObject({ code: "room-locked" });
  });

  it("a browser without WebRTC ends with an error event, and ended resolves", async () => {
    const events: FerryEvent[] = [];
    const run = startSend({ server: "ws://127.0.0.1:9/ws", files: [], password: null, ttlSecs: null, onEvent: (e) => events.push(e) });
    await run.ended;
    expect(events).toEqual([{ event: "error", code: "unsupported", message: "this browser cannot do WebRTC" }]);
    expect(run.report()).toBeNull();
    expect(run.browserLink()).toBeNull();
    // Nothing is under way: these are no-ops, not throws; there is no room to extend.
    run.pause();
    run.resume();
    run.cancel();
    await expect(run.extendRoom(600)).rejects.toMatchObject({ code: "room-expired" });
  });
});

function roomAndConnect(): FerryEvent[] {
  return [
    { event: "room-created", room: "ABCDEFGHJK", password: "pw", link: "ferry://join/ABCDE-FGHJK#pw", expires_at: 1796000000, server: "ws://127.0.0.1:9/ws" },
    { event: "waiting" },
    { event: "peer-joined" },
    { event: "connecting" },
    { event: "connected", path: "direct", kind: "host" },
    { event: "verification", words: "1234" },
  ];
}

function progress(done: number, total: number): FerryEvent {
  return { event: "progress", file: "a", bytes_done: done, total, rate_bps: 100, eta_secs: 1 };
}

describe("a run's events fold into a native send's screens", () => {
  it("room, connect, resume after a drop, done", () => {
    const c = { t: 0 };
    const meter = new AttemptMeter(() => c.t);
    const events: FerryEvent[] = [...roomAndConnect(), ...meter.map({ type: "accepted", files: 1, total: 1000, resumed: 0 })];
    let s = events.reduce(reduce, initialState("send"));
    expect(s.phase).toBe("connecting");
    expect(s.words).toBe("1234");
    expect(s.expiresAt).toBe(1796000000);
    c.t = 1000;
    s = meter.map({ type: "progress", bytes_done: 400, total: 1000, file: "a" }).reduce(reduce, s);
    expect(s.phase).toBe("transferring");
    expect(s.bytesDone).toBe(400);
    expect(s.rateBps).toBe(400);
    s = reduce(s, { event: "reconnecting" });
    expect(s.phase).toBe("reconnecting");
    s = reduce(s, { event: "connected", path: "relayed", kind: "relay" });
    expect(s.phase).toBe("transferring");
    const again = new AttemptMeter(() => c.t);
    s = again.map({ type: "accepted", files: 1, total: 1000, resumed: 400 }).reduce(reduce, s);
    expect(s.bytesDone).toBe(400);
    c.t = 2000;
    s = again.map({ type: "progress", bytes_done: 1000, total: 1000, file: "a" }).reduce(reduce, s);
    expect(s.rateBps).toBe(600);
    s = reduce(s, doneEvent({ ...sent, bytes: 1000 }, "id", again.secs()));
    expect(s.phase).toBe("done");
    expect(s.bytesDone).toBe(1000);
    expect(s.transferId).toBe("id");
  });
});
