// Signaling client of the web engine: JSON text frames over a WebSocket to `ferry-signal`,
// the protocol of crates/ferry-proto/src/signal.rs (docs/PROTOCOL.md, signaling v2).
// A guest joins a room; a host (the sending page, host.ts) creates one and reports a guest's
// failed key confirmation. Both relay `pake`/`offer`/`answer`/`ice-candidate` and leave.

export const SIGNAL_VERSION = 2;

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export type Relay = "pake" | "offer" | "answer" | "ice-candidate";

/** What the server sends, as far as a guest reads it. Unknown fields are ignored. */
export type ServerMsg =
  | { type: "welcome"; v: number; max_frame_bytes: number; join_in_url?: boolean }
  | { type: "room-created"; rid?: number; room: string; host_token: string; expires_at: number; ice_servers: IceServer[] }
  | { type: "joined"; rid?: number; room: string; role: "host" | "guest"; expires_at: number; peer_present: boolean; ice_servers: IceServer[] }
  | { type: "room-extended"; rid?: number; expires_at: number }
  | { type: "peer-joined"; role: "host" | "guest" }
  | { type: "peer-left"; role: "host" | "guest" }
  | { type: "handshake-failed"; attempts_left?: number }
  | { type: "room-expired"; room?: string }
  | { type: "room-closed" }
  | { type: "error"; rid?: number; code: string; message: string }
  | { type: Relay; payload: string };

/** A failure with one of the engine's error codes (`ui/src/errors.ts` words them). */
export class WebError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `e` as a `WebError`: itself, or an `io` failure carrying its message. */
export function asWebError(e: unknown): WebError {
  return e instanceof WebError ? e : new WebError("io", e instanceof Error ? e.message : String(e));
}

/** The WebSocket URL for a server given as `ws(s)://host[:port][/ws]` or `http(s)://...`. */
export function wsUrl(server: string): string {
  let u = server.trim().replace(/^http(s?):\/\//i, "ws$1://");
  if (!/^wss?:\/\//i.test(u)) u = `wss://${u}`;
  const parsed = new URL(u);
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = "/ws";
  return parsed.toString();
}

/** A lifetime as the protocol carries it (`u64` seconds, at least 1), or null for none. */
export function wireTtl(secs: number | null | undefined): number | null {
  if (secs === null || secs === undefined || !Number.isFinite(secs) || secs < 1) return null;
  return Math.floor(secs);
}

/** One WebSocket to the signaling server, read as an ordered queue of messages. */
export class SignalClient {
  private queue: ServerMsg[] = [];
  private waiter: (() => void) | null = null;
  private closed: WebError | null = null;
  private nextRid = 1;
  /** The room whose join rode in the upgrade request and that the server took (rid 1). */
  private urlJoin: string | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      let m: unknown;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof m !== "object" || m === null || typeof (m as { type?: unknown }).type !== "string") return;
      this.queue.push(m as ServerMsg);
      this.wake();
    };
    ws.onclose = (ev) => {
      this.closed ??= new WebError("server-unreachable", `signaling connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
      this.wake();
    };
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Open the socket and read the server's `welcome`. A guest names its `room`: the join then
   * rides in the upgrade request (`/ws?join=ROOM`, docs/PROTOCOL.md), which saves a round
   * trip, and `join` only waits for the answer; a welcome that does not say `join_in_url`
   * (an older server, or a proxy that dropped the query) means the join goes as a frame. */
  static async connect(server: string, timeoutMs: number, room?: string): Promise<SignalClient> {
    let url: string;
    try {
      url = wsUrl(server);
      if (room) {
        const u = new URL(url);
        u.searchParams.set("join", room);
        u.searchParams.set("v", String(SIGNAL_VERSION));
        u.searchParams.set("rid", "1");
        url = u.toString();
      }
    } catch {
      throw new WebError("server-unreachable", `not a server address: ${server}`);
    }
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new WebError("server-unreachable", String(e)));
        return;
      }
      const t = setTimeout(() => {
        ws.close();
        reject(new WebError("server-unreachable", `no answer from ${url}`));
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(t);
        resolve(ws);
      };
      // A browser tells a page nothing about why (refused origin, no server, TLS): one message.
      ws.onerror = () => {
        clearTimeout(t);
        reject(new WebError("server-unreachable", `could not open ${url}`));
      };
    });
    const c = new SignalClient(ws);
    const first = await c.recv(Date.now() + timeoutMs);
    if (first.type !== "welcome") throw new WebError("protocol", `server opened with ${first.type}, not welcome`);
    if (first.v !== SIGNAL_VERSION) throw new WebError("unsupported-version", `server speaks signaling v${first.v}`);
    if (room) {
      c.nextRid = 2;
      if (first.join_in_url === true) c.urlJoin = room;
    }
    return c;
  }

  /** The next message, or a `WebError` once `deadline` (ms since the epoch) passes or the socket closes. */
  async recv(deadline: number): Promise<ServerMsg> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new WebError("timeout", "the other side did not answer in time");
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.waiter = null;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private send(msg: object): void {
    if (this.closed) throw this.closed;
    this.ws.send(JSON.stringify(msg));
  }

  /** `join-room`, then wait for `joined` (or the server's refusal, as its error code). */
  async join(room: string, deadline: number): Promise<Extract<ServerMsg, { type: "joined" }>> {
    let rid: number;
    if (this.urlJoin !== null && this.urlJoin === room) {
      rid = 1;
      this.urlJoin = null;
    } else {
      rid = this.nextRid++;
      this.send({ type: "join-room", v: SIGNAL_VERSION, rid, room });
    }
    for (;;) {
      const m = await this.recv(deadline);
      if (m.type === "joined") return m;
      if (m.type === "error") throw new WebError(m.code, m.message);
      if (m.type === "room-expired") throw new WebError("room-expired", "the room expired");
    }
  }

  /** `create-room`, then wait for `room-created`. `ttlSecs`: the lifetime asked for (the
   * server clamps it to its bounds); null, the server's default. */
  async create(deadline: number, ttlSecs: number | null = null): Promise<Extract<ServerMsg, { type: "room-created" }>> {
    const rid = this.nextRid++;
    const ttl = wireTtl(ttlSecs);
    this.send(ttl === null ? { type: "create-room", v: SIGNAL_VERSION, rid } : { type: "create-room", v: SIGNAL_VERSION, rid, ttl_secs: ttl });
    for (;;) {
      const m = await this.recv(deadline);
      if (m.type === "room-created") return m;
      if (m.type === "error") throw new WebError(m.code, m.message);
    }
  }

  /** Host only: `extend-room`, a new lifetime of `ttlSecs` from now (clamped by the server).
   * Returns the request id that its `room-extended` (or `error`) echoes; whoever reads the
   * socket next sees the reply. */
  extend(ttlSecs: number): number {
    const ttl = wireTtl(ttlSecs);
    if (ttl === null) throw new WebError("bad-request", `not a room lifetime: ${ttlSecs}`);
    const rid = this.nextRid++;
    this.send({ type: "extend-room", rid, ttl_secs: ttl });
    return rid;
  }

  /** Host only: the guest failed key confirmation (the server counts it and drops the guest). */
  reportFailure(): void {
    this.send({ type: "handshake-failed" });
  }

  relay(type: Relay, payload: string): void {
    this.send({ type, payload });
  }

  /** Leave the room and close the socket. */
  close(): void {
    if (!this.closed) {
      try {
        this.send({ type: "leave" });
      } catch {
        // Already gone: nothing to leave.
      }
    }
    this.closed ??= new WebError("server-unreachable", "signaling closed");
    this.ws.close(1000);
    this.wake();
  }
}
