// Receiving straight into a folder the person picked (File System Access, Chromium's
// `showDirectoryPicker`), so a finished file needs room once, on the disk they chose, not in
// the browser's storage and then again as a download.
//
// The page picks the folder and plans where each file lands (`planFolder`, on the main thread:
// the picker and the permission prompt live there); the plan, folder handle included, is
// structured-cloned to the Worker, whose `FolderSink` writes with positional writes through
// `createWritable({ keepExistingData: true })`.
//
// Names: the sender's paths are cleaned as the native receiver cleans them (fsio/names.rs), a folder
// transfer's paths become subfolders, and a file already in the folder is never replaced nor
// appended to: the new one lands beside it as `name (1).ext`, `name (2).ext`, ...
//
// Resume, while the page lives: the page remembers the plan. When the link drops, what each
// file got (a verified prefix) is committed by closing its writable; the next attempt of the
// same transfer into the same folder reuses the plan's names, and each file resumes at what it
// holds rounded down to the 1 KiB grid, its hash tree rebuilt over that prefix. A writable
// writes to a side file that replaces the real one only on `close`, so bytes written since the
// last commit are lost if the tab dies; a new page treats the half file as someone else's.
import type { FileEntry } from "./frames";
import type { Offer } from "./receive";
import { WebError } from "./signal";
import type { FileSink, ReceivedFile, Sink } from "./sink";

/** Where each entry of one offer lands in a picked folder. Structured-cloneable. */
export interface FolderTarget {
  dir: FileSystemDirectoryHandle;
  transferId: string;
  /** By manifest index: the `/`-separated path under `dir` (cleaned), and whether an earlier
   * attempt from this page wrote it (then what it holds is resumed from, not refused). */
  entries: { path: string; ours: boolean; dir: boolean }[];
}

// Parts of the File System Access API the DOM typings leave out.
type PermissionHandle = FileSystemHandle & {
  queryPermission?(d: { mode: "readwrite" }): Promise<PermissionState>;
  requestPermission?(d: { mode: "readwrite" }): Promise<PermissionState>;
};
type DirectoryPicker = (opts?: { id?: string; mode?: "read" | "readwrite" }) => Promise<FileSystemDirectoryHandle>;

/** Whether this browser can let the person pick a folder to receive into (Chromium). */
export function folderPickerAvailable(): boolean {
  return typeof (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker === "function";
}

/** Ask for a folder (the picker: a refusal rejects with an `AbortError` DOMException) and for
 * permission to write in it. Needs the user's click (transient activation). */
export async function pickFolder(): Promise<FileSystemDirectoryHandle> {
  const picker = (globalThis as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
  if (!picker) throw new WebError("unsupported", "this browser cannot save into a folder");
  const dir = await picker({ id: "ferry-receive", mode: "readwrite" });
  await writePermission(dir);
  return dir;
}

/** Make sure the page may write into `dir`; `permission-denied` if the person said no. */
export async function writePermission(dir: FileSystemDirectoryHandle): Promise<void> {
  const h = dir as PermissionHandle;
  if ((await h.queryPermission?.({ mode: "readwrite" })) === "granted") return;
  if (!h.requestPermission) return;
  if ((await h.requestPermission({ mode: "readwrite" })) !== "granted") {
    throw new WebError("permission-denied", `no permission to save into the folder “${dir.name}”`);
  }
}

const MAX_COMPONENT = 255;
const MAX_PATH = 4096;
const MAX_DEPTH = 64;
/** How far `name (n).ext` counts before giving up. */
const MAX_NUMBERED = 1000;

// Controls (C0, DEL, C1), bidi embeddings/overrides/isolates/marks, zero-width characters.
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]/gu;
const WINDOWS_FORBIDDEN = /[<>:"|?*]/g;
const utf8Len = (s: string) => new TextEncoder().encode(s).length;

function isDeviceName(c: string): boolean {
  // ASCII upper case only, as Rust's `to_ascii_uppercase`: `conın$` is no device name.
  const stem = (c.split(".")[0] ?? "").replace(/[ .]+$/, "").replace(/[a-z]/g, (ch) => ch.toUpperCase());
  if (["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"].includes(stem)) return true;
  const chars = [...stem];
  return chars.length === 4 && (stem.startsWith("COM") || stem.startsWith("LPT")) && /^[1-9\u00b9\u00b2\u00b3]$/u.test(chars[3] ?? "");
}

function cleanComponent(c: string): string {
  let s = c.replace(INVISIBLE, "").normalize("NFC").replace(WINDOWS_FORBIDDEN, "_");
  s = s.replace(/[. ]+$/, "");
  return isDeviceName(s) ? `_${s}` : s;
}

/** A sender's path as safe components, by the native receiver's rules (crates/ferry-core
 * fsio/names.rs `sanitize_rel_path`): `/` and `\` separate; empty and `.` components are dropped;
 * `..`, a rooted path or a drive prefix refuse the entry; invisible and control characters go,
 * `<>:"|?*` become `_`, trailing dots and spaces go, Windows device names get a `_`. */
export function sanitizePath(raw: string): string[] {
  const bad = (why: string) => new WebError("protocol", `unsafe path ${JSON.stringify(raw.slice(0, 200))}: ${why}`);
  if (raw.startsWith("/") || raw.startsWith("\\") || /^[A-Za-z]:/.test(raw)) throw bad("absolute");
  const out: string[] = [];
  for (const comp of raw.split(/[/\\]/)) {
    if (comp === "" || comp === ".") continue;
    if (comp === "..") throw bad("parent directory (..)");
    const c = cleanComponent(comp);
    if (c === "") continue;
    if (utf8Len(c) > MAX_COMPONENT) throw bad("a name over 255 bytes");
    out.push(c);
  }
  if (out.length === 0) throw bad("empty");
  if (out.length > MAX_DEPTH || out.reduce((n, c) => n + utf8Len(c) + 1, 0) > MAX_PATH) throw bad("too long or too deep");
  return out;
}

/** `name (n).ext` (the native receiver's rule: the last dot not leading the name splits). */
export function numbered(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

const isNamed = (e: unknown, ...names: string[]) => e instanceof DOMException && names.includes(e.name);

/** The folder at `comps` under `dir`, or null where it does not exist yet. A file in the way
 * refuses the entry. */
async function findDir(dir: FileSystemDirectoryHandle, comps: string[], path: string): Promise<FileSystemDirectoryHandle | null> {
  let at = dir;
  for (const c of comps) {
    try {
      at = await at.getDirectoryHandle(c);
    } catch (e) {
      if (isNamed(e, "NotFoundError")) return null;
      if (isNamed(e, "TypeMismatchError")) throw new WebError("io", `cannot save ${path}: “${c}” is a file in the chosen folder`);
      throw fsError(e, `looking into the chosen folder for ${path}`);
    }
  }
  return at;
}

/** Whether `name` exists in `dir` as anything. */
async function exists(dir: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    await dir.getFileHandle(name);
    return true;
  } catch (e) {
    if (isNamed(e, "NotFoundError")) return false;
    if (isNamed(e, "TypeMismatchError")) return true;
    throw fsError(e, `looking for ${name} in the chosen folder`);
  }
}

/** Where each entry of `offer` lands in `dir`. With `previous` (an earlier attempt of the same
 * transfer from this page, into the same folder) the names are reused, so those files resume;
 * otherwise a name already taken in the folder (or by another entry, case aside) moves on to
 * `name (1).ext`, ... */
export async function planFolder(dir: FileSystemDirectoryHandle, offer: Offer, previous?: FolderTarget | null): Promise<FolderTarget> {
  const again =
    !!previous && previous.transferId === offer.transferId && previous.entries.length === offer.files.length && (await previous.dir.isSameEntry(dir));
  if (again && previous) return { dir, transferId: offer.transferId, entries: previous.entries.map((e) => ({ ...e, ours: !e.dir })) };
  const taken = new Set<string>();
  const entries: FolderTarget["entries"] = [];
  for (const entry of offer.files) {
    const comps = sanitizePath(entry.path);
    if (entry.dir) {
      entries.push({ path: comps.join("/"), ours: false, dir: true });
      continue;
    }
    const parent = comps.slice(0, -1);
    const leaf = comps[comps.length - 1] as string;
    const at = await findDir(dir, parent, entry.path);
    let path: string | null = null;
    for (let n = 0; n <= MAX_NUMBERED && path === null; n += 1) {
      const name = n ? numbered(leaf, n) : leaf;
      const candidate = [...parent, name].join("/");
      if (taken.has(candidate.toLowerCase())) continue;
      if (at && (await exists(at, name))) continue;
      path = candidate;
    }
    if (path === null) throw new WebError("io", `${entry.path}: ${MAX_NUMBERED} files of that name are already in the chosen folder`);
    taken.add(path.toLowerCase());
    entries.push({ path, ours: false, dir: false });
  }
  return { dir, transferId: offer.transferId, entries };
}

function fsError(e: unknown, what: string): WebError {
  const code = isNamed(e, "QuotaExceededError") ? "disk-full" : isNamed(e, "NotAllowedError", "SecurityError") ? "permission-denied" : "io";
  return new WebError(code, `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

/** Create (or open) the folders `comps` under `dir`. */
async function makeDirs(dir: FileSystemDirectoryHandle, comps: string[], path: string): Promise<FileSystemDirectoryHandle> {
  let at = dir;
  for (const c of comps) {
    try {
      at = await at.getDirectoryHandle(c, { create: true });
    } catch (e) {
      throw fsError(e, `creating the folder for ${path}`);
    }
  }
  return at;
}

// Reading back a held prefix synchronously (receive.ts rebuilds the hash tree with `read`):
// FileReaderSync exists in Workers only, which is where this sink runs.
type SyncReader = { readAsArrayBuffer(b: Blob): ArrayBuffer };
const syncReader = (): SyncReader | null => {
  const R = (globalThis as { FileReaderSync?: new () => SyncReader }).FileReaderSync;
  return R ? new R() : null;
};

/** Writes each file of the offer where `target` planned it, inside the picked folder. */
export class FolderSink implements Sink {
  readonly files: ReceivedFile[] = [];

  constructor(private readonly target: FolderTarget) {}

  async prepare(transferId: string): Promise<void> {
    if (transferId !== this.target.transferId) throw new WebError("protocol", "the offer changed after the folder was picked");
    for (const e of this.target.entries) if (e.dir) await makeDirs(this.target.dir, sanitizePath(e.path), e.path);
  }

  async open(index: number, entry: FileEntry): Promise<FileSink> {
    const planned = this.target.entries[index];
    if (!planned || planned.dir) throw new WebError("protocol", `no place planned for file ${index}`);
    // The plan came through postMessage: its names are checked again rather than trusted.
    const comps = sanitizePath(planned.path);
    if (comps.join("/") !== planned.path) throw new WebError("protocol", `unsafe planned path ${planned.path}`);
    const path = planned.path;
    const parent = await makeDirs(this.target.dir, comps.slice(0, -1), path);
    const leaf = comps[comps.length - 1] as string;
    let handle: FileSystemFileHandle;
    let held: File;
    try {
      handle = await parent.getFileHandle(leaf, { create: true });
      held = await handle.getFile();
    } catch (e) {
      throw fsError(e, `creating ${path}`);
    }
    if (!planned.ours && held.size > 0) throw new WebError("io", `${path} appeared in the chosen folder after it was picked; it is left as it is`);
    // What an earlier attempt committed is a verified prefix (bytes are written only once they
    // verified, in order). A complete file keeps its last piece out, so it ends through the
    // sender's file-end and whole-file hash like any other (as OpfsSink does).
    const reader = syncReader();
    const have = reader ? Math.min(held.size, entry.size) : 0;
    const last = Math.max(entry.size - 1, 0);
    const start = have < entry.size ? have - (have % 1024) : last - (last % 1024);
    const files = this.files;
    let writable: FileSystemWritableFileStream | null = null;
    let closed = false;
    const open = async (): Promise<FileSystemWritableFileStream> => {
      if (closed) throw new WebError("io", `${path} is closed`);
      if (!writable) {
        try {
          const w = await handle.createWritable({ keepExistingData: true });
          await w.truncate(start);
          writable = w;
        } catch (e) {
          throw fsError(e, `opening ${path} for writing`);
        }
      }
      return writable;
    };
    return {
      start,
      read(offset, len) {
        if (!reader || offset + len > start) throw new WebError("io", `${path}: reading past what it holds`);
        const buf = new Uint8Array(reader.readAsArrayBuffer(held.slice(offset, offset + len)));
        if (buf.length !== len) throw new WebError("io", `${path}: short read`);
        return buf;
      },
      async write(offset, data) {
        const w = await open();
        try {
          await w.write({ type: "write", position: offset, data: data as Uint8Array<ArrayBuffer> });
        } catch (e) {
          throw fsError(e, `writing ${path}`);
        }
      },
      async finish() {
        const w = await open();
        closed = true;
        try {
          await w.close();
          files.push({ path, file: await handle.getFile() });
        } catch (e) {
          throw fsError(e, `saving ${path}`);
        }
      },
      async abort(keep = false) {
        const w = writable;
        const wasOpen = !closed;
        closed = true;
        if (w && wasOpen) {
          // Closing commits what was written (a verified prefix) for the next attempt.
          if (keep) await w.close();
          else await w.abort().catch(() => undefined);
        }
        if (!keep) await parent.removeEntry(leaf).catch(() => undefined);
      },
    };
  }
}
