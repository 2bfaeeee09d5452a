// What a receiver types or opens: a room ID, or a `ferry://join/...` link that may also
// carry the password and the signaling server.

export interface JoinInfo {
  room: string;
  password?: string;
  server?: string;
}

const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{10}$/;

/** Canonical room ID (10 upper-case Crockford symbols) or null. Folds look-alikes like the engine does. */
export function normalizeRoom(input: string): string | null {
  const s = input
    .toUpperCase()
    .replace(/[\s-]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  return CROCKFORD.test(s) ? s : null;
}

/** `ABCDEFGHJK` → `ABCDE-FGHJK`, the way rooms are shown. */
export function displayRoom(room: string): string {
  const r = normalizeRoom(room) ?? room;
  return r.length === 10 ? `${r.slice(0, 5)}-${r.slice(5)}` : r;
}

/** decodeURIComponent that keeps what it cannot decode (a bare `%`). */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The browser link `https://SERVER/j/ROOM#PASSWORD` (ferry-core's `JoinTicket::web_url`) for a
 * `ferry://` link whose server is `wss://SERVER/ws`; null for any other server (a phone's
 * camera can open only an https link, and only where that server serves the page).
 */
export function webLink(link: string): string | null {
  const info = parseJoinLink(link);
  if (!info?.server) return null;
  const m = /^wss:\/\/([^/?#@]+)((?:\/[^?#]*)?)\/ws$/i.exec(info.server);
  if (!m) return null;
  const pw = info.password ? `#${encodeURIComponent(info.password)}` : "";
  return `https://${m[1]}${m[2]}/j/${displayRoom(info.room)}${pw}`;
}

/** `https://SERVER[/PREFIX]/j/ROOM[?server=...]#PASSWORD`: the socket is `wss://SERVER[/PREFIX]/ws`. */
function parseWebLink(t: string): JoinInfo | null {
  const m = /^(https?):\/\/([^/?#]+)((?:\/[^?#]*)?)\/j\/([^/?#]+)\/?(\?[^#]*)?(#.*)?$/i.exec(t);
  if (!m) return null;
  const room = normalizeRoom(decode(m[4]));
  if (!room) return null;
  const q = new URLSearchParams((m[5] ?? "").slice(1));
  const ws = m[1].toLowerCase() === "https" ? "wss" : "ws";
  const info: JoinInfo = { room, server: q.get("server") ?? q.get("s") ?? `${ws}://${m[2]}${m[3]}/ws` };
  const pw = m[6] ? decode(m[6].slice(1)) : "";
  if (pw) info.password = pw;
  return info;
}

/**
 * Accepts `ferry://join/ROOM`, `ferry://join/ROOM/PASSWORD`, query `?password=`/`?p=`,
 * a `#PASSWORD` fragment and `server=`/`s=`, and the browser link
 * `https://SERVER/j/ROOM#PASSWORD`. Returns null for anything else.
 */
export function parseJoinLink(text: string): JoinInfo | null {
  const t = text.trim();
  const web = parseWebLink(t);
  if (web) return web;
  const m = /^ferry:\/\/join\/([^?#]+)(\?[^#]*)?(#.*)?$/i.exec(t);
  if (!m) return null;
  const parts = m[1].split("/").filter(Boolean).map(decode);
  const room = normalizeRoom(parts[0] ?? "");
  if (!room) return null;
  const q = new URLSearchParams((m[2] ?? "").slice(1));
  const info: JoinInfo = { room };
  const pw = parts[1] ?? q.get("password") ?? q.get("p") ?? (m[3] ? decode(m[3].slice(1)) : null);
  if (pw) info.password = pw;
  const server = q.get("server") ?? q.get("s");
  if (server) info.server = server;
  return info;
}

/** A room field may hold a pasted link: split it into its parts, or treat it as a plain ID. */
export function parseRoomInput(text: string): JoinInfo | null {
  const link = parseJoinLink(text);
  if (link) return link;
  const room = normalizeRoom(text);
  return room ? { room } : null;
}
