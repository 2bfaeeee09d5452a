import type { FerryEvent } from "../src/ipc";
import { initialState, reduce, statusText, type TransferState } from "../src/state";

const fold = (role: "send" | "receive", events: FerryEvent[]): TransferState => events.reduce(reduce, initialState(role));

const offer: FerryEvent = {
  event: "offer",
  files: [
    { path: "dir", size: 0, dir: true },
    { path: "dir/a.bin", size: 1000 },
    { path: "dir/b.bin", size: 3000 },
  ],
  total: 4000,
};

test("sender: room, wrong password notice, peer joins, progress, done", () => {
  let s = fold("send", [
    { event: "room-created", room: "ABCDEFGHJK", password: "otter-7", link: "ferry://join/ABCDEFGHJK", expires_at: 100 },
    { event: "waiting" },
  ]);
  expect(s.phase).toBe("waiting");
  expect(statusText(s)).toBe("Waiting for the receiver…");
  s = reduce(s, { event: "peer-joined" });
  expect(s.phase).toBe("connecting");
  s = reduce(s, { event: "wrong-password-attempt", attempts_left: 2 });
  expect(s.notice).toMatch(/^Someone tried a wrong password/);
  expect(s.phase).toBe("waiting"); // the room card comes back for the right receiver
  expect(s.wrongAttempts).toBe(1);
  expect(s.room).toBe("ABCDEFGHJK");
  s = reduce(s, { event: "peer-joined" });
  expect(s.phase).toBe("connecting");
  expect(s.notice).toBeNull();
  s = [
    { event: "connected", path: "direct", kind: "host" },
    { event: "verification", words: "apple river moon" },
    offer,
    { event: "progress", file: "dir/a.bin", bytes_done: 500, total: 1000, rate_bps: 10, eta_secs: 5 },
  ].reduce((acc, e) => reduce(acc, e as FerryEvent), s);
  expect(s.phase).toBe("transferring");
  expect(s.words).toBe("apple river moon");
  expect(s.files.map((f) => f.path)).toEqual(["dir/a.bin", "dir/b.bin"]);
  expect(s.bytesDone).toBe(500);
  s = reduce(s, { event: "file-done", path: "dir/a.bin", hash: "h" });
  s = reduce(s, { event: "progress", file: "dir/b.bin", bytes_done: 1500, total: 3000, rate_bps: 10, eta_secs: 1 });
  // per-file progress folds into overall: 1000 finished + 1500 of the second file
  expect(s.bytesDone).toBe(2500);
  expect(s.files[1].done).toBe(1500);
  s = reduce(s, { event: "done", bytes: 4000, secs: 2 });
  expect(s.phase).toBe("done");
  expect(s.bytesDone).toBe(4000);
  expect(s.rateBps).toBe(2000);
  expect(s.files.every((f) => f.finished)).toBe(true);
});

test("sender: a failed attempt brings the room card back with a notice", () => {
  let s = fold("send", [
    { event: "room-created", room: "ABCDEFGHJK", password: "otter-7", link: "ferry://join/ABCDEFGHJK", expires_at: 100 },
    { event: "waiting" },
    { event: "peer-joined" },
  ]);
  s = reduce(s, { event: "attempt-failed", code: "timeout", message: "timed out waiting for the other peer" });
  expect(s.phase).toBe("waiting");
  expect(s.notice).toMatch(/room is still open/);
  expect(s.room).toBe("ABCDEFGHJK");
  s = reduce(s, { event: "attempt-failed", code: "rtc", message: "WebRTC: ICE failed" });
  expect(s.notice).toMatch(/could not reach this device/);
  // A later receiver clears it, as with a wrong password.
  s = reduce(s, { event: "peer-joined" });
  expect(s.notice).toBeNull();
  // Mid-transfer (a resume attempt failing) the phase is left alone.
  const r = reduce({ ...s, phase: "reconnecting" }, { event: "attempt-failed", code: "timeout", message: "" });
  expect(r.phase).toBe("reconnecting");
});

test("receiver: a retried join keeps it connecting and says why until it connects", () => {
  let s = fold("receive", [{ event: "retrying", code: "connect", message: "could not connect (rtc): WebRTC: ICE failed" }]);
  expect(s.phase).toBe("starting");
  expect(statusText(s)).toBe("Joining the room…");
  expect(s.notice).toMatch(/No connection path formed; trying again/);
  s = reduce(s, { event: "retrying", code: "peer-gone", message: "the other side went away" });
  expect(s.notice).toMatch(/sender dropped the connection/);
  s = reduce(s, { event: "connected", path: "direct" });
  expect(s.phase).toBe("connecting");
  expect(s.notice).toBeNull();
});

test("a receiver that leaves before connecting puts the sender back to waiting", () => {
  let s = fold("send", [
    { event: "room-created", room: "ABCDEFGHJK", password: "pw", link: "ferry://join/ABCDEFGHJK", expires_at: 0, server: "ws://x", transfer_id: "t" },
    { event: "waiting" },
    { event: "peer-joined" },
  ]);
  expect(s.phase).toBe("connecting");
  s = reduce(s, { event: "waiting" });
  expect(s.phase).toBe("waiting");
  expect(s.room).toBe("ABCDEFGHJK");
  expect(reduce({ ...s, phase: "reconnecting" }, { event: "waiting" }).phase).toBe("reconnecting");
});

test("progress reported against the whole offer is used as overall", () => {
  const s = fold("receive", [offer, { event: "progress", file: "dir/b.bin", bytes_done: 3500, total: 4000, rate_bps: 1, eta_secs: 1 }]);
  expect(s.bytesDone).toBe(3500);
});

test("receiver waits on the offer; pause and resume; errors become human", () => {
  let s = fold("receive", [{ event: "peer-joined" }, offer]);
  expect(s.phase).toBe("offer");
  expect(s.total).toBe(4000);
  s = reduce(s, { event: "paused" });
  expect(s.phase).toBe("paused");
  s = reduce(s, { event: "progress", file: "dir/a.bin", bytes_done: 10, total: 1000, rate_bps: 1, eta_secs: null });
  expect(s.phase).toBe("paused"); // a late progress event doesn't un-pause the view
  s = reduce(s, { event: "resumed" });
  expect(s.phase).toBe("transferring");
  s = reduce(s, { event: "error", code: "disk-full", message: "No space left on device (os error 28)" });
  expect(s.phase).toBe("error");
  expect(s.error?.title).toBe("Disk full");
  expect(statusText(s)).toBe("Disk full");
});

test("bytes done never goes backwards on a stale progress event", () => {
  const s = fold("receive", [
    offer,
    { event: "progress", file: "dir/a.bin", bytes_done: 800, total: 1000, rate_bps: 1, eta_secs: 1 },
    { event: "progress", file: "dir/a.bin", bytes_done: 700, total: 1000, rate_bps: 1, eta_secs: 1 },
  ]);
  expect(s.bytesDone).toBe(800);
});

test("sender: symlinks skipped inside a picked folder are kept for the room card", () => {
  let s = initialState("send");
  s = reduce(s, { event: "skipped-symlinks", paths: ["project/id_rsa", "project/keys"] });
  s = reduce(s, { event: "room-created", room: "ABCDE-FGHJK", password: "p", link: "l", expires_at: 1 });
  expect(s.skipped).toEqual(["project/id_rsa", "project/keys"]);
  expect(s.phase).toBe("waiting");
});
