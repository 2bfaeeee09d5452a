// What the page's own address says about the room to join. The forms:
//   https://SERVER/j/ROOM#PASSWORD    the link `ferry send` prints (the fragment never reaches
//                                     the server); also under a path prefix: /PREFIX/j/ROOM
//   https://HOST/#ROOM/PASSWORD       or #ROOM, or #PASSWORD after /j/ROOM
//   ?server=wss://... (or ?s=)        a page hosted apart from its signaling server
// Without ?server=, the socket is the page's own origin's /ws (beside /j/ under a prefix):
// ws: for an http page, wss: for https.
import { displayRoom, normalizeRoom } from "../link";

export interface JoinTarget {
  server: string;
  room?: string;
  password?: string;
}

/** The parts of `Location` read here, so tests can pass a plain URL. */
export type PageAddress = Pick<Location, "protocol" | "host" | "pathname" | "search" | "hash">;

/** decodeURIComponent that keeps text it cannot decode (a bare `%` in a typed-in link). */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseJoinUrl(at: PageAddress): JoinTarget {
  const q = new URLSearchParams(at.search);
  const path = /^(.*)\/j\/([^/]+)\/?$/.exec(at.pathname);
  const prefix = path ? path[1] : "";
  const ws = at.protocol === "https:" ? "wss" : "ws";
  const out: JoinTarget = { server: q.get("server") ?? q.get("s") ?? `${ws}://${at.host}${prefix}/ws` };
  const frag = decode(at.hash.replace(/^#/, ""));
  if (path) {
    const room = normalizeRoom(decode(path[2]));
    if (room) out.room = room;
    if (frag) out.password = frag;
  } else if (frag) {
    const slash = frag.indexOf("/");
    const room = normalizeRoom(slash < 0 ? frag : frag.slice(0, slash));
    if (room) out.room = room;
    if (slash >= 0 && frag.length > slash + 1) out.password = frag.slice(slash + 1);
  }
  return out;
}

/** A link that opens this web app's join screen for the room: `/j/ROOM#PASSWORD` beside the
 * page when the page came from the signaling server itself (no `?server=`), else this page
 * with its `?server=` and `#ROOM/PASSWORD` (parseJoinUrl reads both). */
export function pageJoinLink(at: Pick<Location, "origin" | "pathname" | "search">, room: string, password: string): string {
  const server = new URLSearchParams(at.search).get("server") ?? new URLSearchParams(at.search).get("s");
  const display = displayRoom(room);
  if (!server) return `${at.origin}${at.pathname.replace(/\/j\/[^/]*\/?$/, "/x").replace(/\/[^/]*$/, "")}/j/${display}#${encodeURIComponent(password)}`;
  return `${at.origin}${at.pathname}?${new URLSearchParams({ server }).toString()}#${display}/${encodeURIComponent(password)}`;
}
