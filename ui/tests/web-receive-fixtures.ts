// What both browser-receiver suites offer and report.
import type { FileEntry } from "../src/web/frames";
import type { Offer, ReceiveStats } from "../src/web/receive";

export const MB = 1000 * 1000;
const entry = (path: string, size: number, dir?: true): FileEntry => (dir ? { path, size, mtime_ms: 0, dir } : { path, size, mtime_ms: 0 });
export const OFFER: Offer = { transferId: "6f1c0a52d3b94e7e", files: [entry("photos", 0, true), entry("photos/a.jpg", 1000), entry("photos/b.jpg", 3000)], total: 4000 };
export const STATS: ReceiveStats = { files: 2, bytes: 4000, compressed: 3, rejected: 1, resumed: 0 };
export const fakeDir = (name: string) => ({ name }) as unknown as FileSystemDirectoryHandle;
