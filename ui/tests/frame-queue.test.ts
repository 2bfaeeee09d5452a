// The page's frame queue: `ready` tells whether the peer said anything yet without taking it
// (the guest's join waits on it for the host's first message after the hellos).
import { FrameQueue } from "../src/web/frame-queue";

test("ready: true as soon as a frame waits, and the frame is still there to read", async () => {
  const q = new FrameQueue();
  const waiting = q.ready(Date.now() + 5_000);
  setTimeout(() => q.push(new Uint8Array([7])), 10);
  expect(await waiting).toBe(true);
  expect(await q.next(Date.now() + 10)).toEqual(new Uint8Array([7]));
});

test("ready: false when nothing came by the deadline; true once the queue closed", async () => {
  const q = new FrameQueue();
  const t0 = Date.now();
  expect(await q.ready(t0 + 50)).toBe(false);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  q.close();
  expect(await q.ready(Date.now() + 1_000)).toBe(true);
  expect(await q.next()).toBeNull();
});
