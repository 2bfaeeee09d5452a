// The sending page holds a room as its host, as crates/ferry-core/src/session/host.rs and
// handshake.rs do it (docs/CRYPTO.md): `create-room`, then for each guest SPAKE2 and key
// confirmation in the native order (the guest's tag first; the host answers only a valid
// one, and reports a failed one to the server, which counts guesses and locks the room),
// the sealed offer (the host offers and opens the data channel) / answer / trickle ICE, and
// the `hello` exchange binding both DTLS fingerprints to the room key (session.ts `hello`).
// After a link drops the room stays: the next guest to join resumes the transfer.
import { utf8 } from "./bytes";
import { CryptoError } from "./common";
import { Pake, PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX, type RoomKeys } from "./keys";
import { AGREED_STREAM, CHANNEL_LABEL, DcLink, hello, MAX_SCTP_PACKET, openJson, roomEvent, toRtcIce } from "./session";
import { asWebError, type IceServer, type ServerMsg, SignalClient, WebError, wireTtl } from "./signal";

/** How long one guest's handshake may take (defaults.rs CONNECT_TIMEOUT). */
const CONNECT_TIMEOUT = 30_000;
/** After the guest's `peer-left` mid-ICE, how long the connection may still come up. */
const PEER_LEFT_GRACE = 5_000;
/** How long the server may take to answer an `extend-room`. */
const EXTEND_TIMEOUT = 10_000;

export type HostEvent =
  | { type: "peer-joined" }
  | { type: "connecting" }
  | { type: "connected"; verification: string }
  | { type: "wrong-password"; attemptsLeft: number | null }
  | { type: "peer-left" }
  | { type: "attempt-failed"; code: string; message: string };

/** 4 groups of 4 symbols from a 32-letter alphabet without look-alikes: 80 bits, more than
 * the native generator's 41 and still easy to read out. */
export function generatePassword(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
  const out: string[] = [];
  // Rejection sampling keeps every symbol equally likely (256 is not a multiple of 31).
  while (out.length < 16) {
    for (const b of random(32)) {
      if (b < 248 && out.length < 16) out.push(alphabet[b % 31]);
    }
  }
  return [0, 4, 8, 12].map((i) => out.slice(i, i + 4).join("")).join("-");
}

/** `ferry://join/ABCDE-FGHJK?server=...#password`, as ticket.rs `JoinTicket::to_url` prints it. */
export function joinLink(room: string, server: string, password: string): string {
  const display = room.length === 10 ? `${room.slice(0, 5)}-${room.slice(5)}` : room;
  const q = server ? `?${new URLSearchParams({ server }).toString()}` : "";
  // The url crate's fragment set: space, `"`, `<`, `>` and backtick are escaped.
  const frag = password.replace(/[ "<>`%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
  return `ferry://join/${display}${q}#${frag}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether the server granted less than `asked` seconds (asked at `askedAt`, Unix seconds)
 * when the room ends at `expiresAt`, as api/mod.rs `was_capped` decides it: two seconds of
 * slack cover the round trip and the rounding up of `expires_at`. */
export function wasCapped(askedAt: number, asked: number | null, expiresAt: number): boolean {
  return asked !== null && expiresAt + 2 < askedAt + asked;
}

type Pending = { resolve: (expiresAt: number) => void; reject: (e: WebError) => void; timer: ReturnType<typeof setTimeout> };

export class HostRoom {
  private guestPresent = false;
  private closed = false;
  /** `extend-room` requests waiting for their reply, by request id. */
  private extending = new Map<number, Pending>();

  private constructor(
    private readonly sig: SignalClient,
    /** Canonical room id (no hyphen). */
    readonly room: string,
    readonly server: string,
    readonly password: string,
    /** When the room ends (Unix seconds); an extend moves it. */
    public expiresAt: number,
    /** The server granted less than the lifetime asked for (its maximum). */
    readonly capped: boolean,
    private readonly ice: IceServer[],
    private readonly rtc: RTCConfiguration | undefined,
  ) {}

  /** Create a room on `server`; the password is generated unless given. `ttlSecs`: the
   * lifetime to ask for (null or absent: the server's default). */
  static async create(opts: { server: string; password?: string; rtc?: RTCConfiguration; ttlSecs?: number | null }): Promise<HostRoom> {
    if (typeof RTCPeerConnection === "undefined") throw new WebError("unsupported", "this browser cannot do WebRTC");
    const sig = await SignalClient.connect(opts.server, CONNECT_TIMEOUT);
    try {
      const asked = wireTtl(opts.ttlSecs);
      const askedAt = Math.floor(Date.now() / 1000);
      const made = await sig.create(Date.now() + CONNECT_TIMEOUT, asked);
      const room = made.room.replace(/-/g, "");
      const capped = wasCapped(askedAt, asked, made.expires_at);
      return new HostRoom(sig, room, opts.server, opts.password ?? generatePassword(), made.expires_at, capped, made.ice_servers ?? [], opts.rtc);
    } catch (e) {
      sig.close();
      throw e;
    }
  }

  /** Ask the server for a new lifetime of `ttlSecs` from now (`extend-room`, heard because
   * this socket holds the room as its host); resolves with the new end, Unix seconds. The
   * reply comes in through whichever loop reads the socket (`accept` always runs while the
   * room is open), so it is heard while waiting, during a guest's handshake and while sending. */
  extend(ttlSecs: number): Promise<number> {
    if (this.closed) return Promise.reject(new WebError("room-expired", "the room was closed"));
    let rid: number;
    try {
      rid = this.sig.extend(ttlSecs);
    } catch (e) {
      return Promise.reject(asWebError(e));
    }
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.extending.delete(rid);
        reject(new WebError("timeout", "the server did not answer the extend in time"));
      }, EXTEND_TIMEOUT);
      this.extending.set(rid, { resolve, reject, timer });
    });
  }

  /** The next server message for the room's loops: replies to `extend` are taken out here
   * (whatever loop is reading), so no loop mistakes a refused extend for the room's end. */
  private async recv(deadline: number): Promise<ServerMsg> {
    for (;;) {
      const m = await this.sig.recv(deadline);
      if (m.type === "room-extended") {
        this.expiresAt = m.expires_at;
        this.settleExtend(m.rid, (p) => p.resolve(m.expires_at));
        continue;
      }
      if (m.type === "error" && m.rid !== undefined && this.extending.has(m.rid)) {
        this.settleExtend(m.rid, (p) => p.reject(new WebError(m.code, m.message)));
        continue;
      }
      return m;
    }
  }

  private settleExtend(rid: number | undefined, how: (p: Pending) => void): void {
    // A reply without its id answers the oldest request (the server echoes ids; be lenient).
    const key = rid !== undefined && this.extending.has(rid) ? rid : this.extending.keys().next().value;
    if (key === undefined) return;
    const p = this.extending.get(key);
    this.extending.delete(key);
    if (!p) return;
    clearTimeout(p.timer);
    how(p);
  }

  get link(): string {
    return joinLink(this.room, this.server, this.password);
  }

  /** The next server message, waiting as long as it takes (in slices, so `stop` is heard). */
  private async recvForever(stop: () => boolean): Promise<ServerMsg | null> {
    for (;;) {
      if (stop()) return null;
      try {
        return await this.recv(Date.now() + 250);
      } catch (e) {
        if (e instanceof WebError && e.code === "timeout") continue;
        throw e;
      }
    }
  }

  /** Wait for a guest and connect: returns the authenticated link. A wrong password is
   * reported to the server and to `onEvent`, and the wait goes on (the server locks the room
   * after its limit: `room-locked`); so does a guest whose attempt fails or who leaves.
   * The sending page keeps one call running while it sends: a guest that comes back after
   * its link died (a receiver killed without closing its connection) is served as soon as it
   * has proved the password, and someone who only knows the room id disturbs nothing. */
  async accept(onEvent: (e: HostEvent) => void = () => {}, opening: Uint8Array[] = []): Promise<{ link: DcLink; verification: string; opened: boolean }> {
    for (;;) {
      if (this.closed) throw new WebError("cancelled", "the room was closed");
      if (!this.guestPresent) {
        const m = await this.recvForever(() => this.closed);
        if (!m) continue;
        if (m.type === "peer-joined" && m.role === "guest") this.guestPresent = true;
        else if (m.type === "room-expired" || m.type === "room-closed") throw new WebError("room-expired", "the room expired or was closed");
        else if (m.type === "error" && (m.code === "room-locked" || m.code === "room-expired")) throw new WebError(m.code, m.message);
        continue;
      }
      onEvent({ type: "peer-joined" });
      let pc: RTCPeerConnection | null = null;
      try {
        const deadline = Date.now() + CONNECT_TIMEOUT;
        const keys = await this.pake(deadline);
        onEvent({ type: "connecting" });
        pc = new RTCPeerConnection({ ...this.rtc, iceServers: [...(this.rtc?.iceServers ?? []), ...toRtcIce(this.ice)] });
        const { link, agreed } = await this.negotiate(pc, keys, deadline);
        // Only on the agreed stream do the opening frames gain anything: on a channel opened
        // in band ours opens with the guest's hello in hand, as in older builds.
        const opened = agreed && opening.length > 0;
        await hello(link, keys, deadline, opened ? opening : []);
        this.guestPresent = false;
        const verification = keys.verificationCode();
        onEvent({ type: "connected", verification });
        return { link, verification, opened };
      } catch (e) {
        pc?.close();
        this.guestPresent = false;
        const err = asWebError(e);
        if (err.code === "wrong-password") {
          const left = await this.reportFailure();
          onEvent({ type: "wrong-password", attemptsLeft: left });
          if (left === 0) throw new WebError("room-locked", "too many wrong passwords: the room is locked");
        } else if (err.code === "peer-left") {
          onEvent({ type: "peer-left" });
        } else if (["timeout", "connect-failed", "protocol"].includes(err.code)) {
          onEvent({ type: "attempt-failed", code: err.code, message: err.message });
        } else {
          throw err;
        }
      }
    }
  }

  /** SPAKE2 and key confirmation, host side (confirm.rs `PakeStep`). */
  private async pake(deadline: number): Promise<RoomKeys> {
    const { pake, payload } = Pake.start("host", this.room, this.password);
    this.sig.relay("pake", payload);
    let keys: RoomKeys | null = null;
    for (;;) {
      const m = await this.recv(deadline);
      if (m.type === "handshake-failed") continue; // a late notice about an earlier guest
      if (m.type !== "pake") {
        const err = roomEvent(m);
        if (err) throw err.code === "peer-left" ? new WebError("peer-left", "the receiver left the room") : err;
        continue;
      }
      if (m.payload.startsWith(PAKE_MSG_PREFIX)) {
        if (keys) throw new WebError("protocol", "second PAKE message");
        try {
          keys = pake.finish(m.payload);
        } catch {
          throw new WebError("wrong-password", "the receiver's PAKE message does not decode");
        }
      } else if (m.payload.startsWith(PAKE_CONFIRM_PREFIX)) {
        // A tag before the key: the guest cannot hold the key, so it guessed nothing.
        if (!keys) throw new WebError("protocol", "confirmation before the PAKE message");
        try {
          keys.verifyConfirmation(m.payload);
        } catch (e) {
          if (e instanceof CryptoError) throw new WebError("wrong-password", "the receiver used a different password");
          throw e;
        }
        this.sig.relay("pake", keys.confirmation());
        return keys;
      } else {
        throw new WebError("protocol", "unknown PAKE payload");
      }
    }
  }

  /** Tell the server the guest failed key confirmation; the attempts it has left (null: unknown). */
  private async reportFailure(): Promise<number | null> {
    try {
      this.sig.reportFailure();
      const until = Date.now() + CONNECT_TIMEOUT;
      for (;;) {
        const m = await this.recv(until);
        if (m.type === "handshake-failed") return m.attempts_left ?? null;
        if (m.type === "error") return m.code === "room-locked" ? 0 : null;
        if (m.type === "room-expired" || m.type === "room-closed") throw new WebError("room-expired", "the room expired or was closed");
        // A next guest may already be knocking: remember it.
        if (m.type === "peer-joined" && m.role === "guest") this.guestPresent = true;
        if (m.type === "peer-left") this.guestPresent = false;
      }
    } catch (e) {
      if (e instanceof WebError && e.code === "room-expired") throw e;
      return null;
    }
  }

  /** Sealed offer/answer and trickle ICE until our data channel opens. The host offers; its
   * own candidates go right behind the offer, as the native host's do (handshake.rs), so the
   * guest can check as soon as it has answered: across 150 ms that took a receiving CLI's
   * set-up from 1.47 to 1.32 s, a receiving page's from 2.35 to 2.21 s. The channel sits on the
   * agreed stream (`stream` in the sealed offer, docs/CRYPTO.md §4); a guest whose answer does
   * not take it up (an older build or page) gets one opened in band. */
  private async negotiate(pc: RTCPeerConnection, keys: RoomKeys, deadline: number): Promise<{ link: DcLink; agreed: boolean }> {
    const sealer = keys.sealer();
    const seal = (kind: "offer" | "ice-candidate", v: object) => sealer.seal(kind, utf8(JSON.stringify(v)));
    let link = new DcLink(pc, pc.createDataChannel(CHANNEL_LABEL, { ordered: true, negotiated: true, id: AGREED_STREAM }));
    let agreed = true;
    let remoteSet = false;
    let sigAlive = true;
    let failed = false;
    const held: RTCIceCandidateInit[] = [];
    const pending: RTCIceCandidateInit[] = [];
    const sendCandidate = (c: RTCIceCandidateInit) => {
      try {
        this.sig.relay("ice-candidate", seal("ice-candidate", c));
      } catch {
        // Signaling gone mid-ICE: what was exchanged may be enough to connect.
      }
    };
    // Candidates gathered before the offer is out wait for it: the guest must see them after.
    let offerSent = false;
    pc.onicecandidate = (ev) => {
      if (!ev.candidate?.candidate) return;
      const c = ev.candidate.toJSON();
      if (offerSent) sendCandidate(c);
      else held.push(c);
    };
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") failed = true;
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // `max_packet`: our DTLS transport ends the connection on a datagram past ~2 KiB rather
    // than dropping it, so the native peer must not probe its path MTU beyond this.
    this.sig.relay("offer", seal("offer", { type: offer.type, sdp: offer.sdp, max_packet: MAX_SCTP_PACKET, stream: AGREED_STREAM }));
    offerSent = true;
    for (const c of held.splice(0)) sendCandidate(c);
    let peerLeft = false;
    for (;;) {
      if (link.isOpen) return { link, agreed };
      if (failed) throw new WebError("connect-failed", "connection failed (no usable ICE path)");
      if (Date.now() >= deadline) {
        throw peerLeft ? new WebError("peer-left", "the receiver left before connecting") : new WebError("timeout", "the devices did not connect in time");
      }
      if (!sigAlive) {
        await sleep(50);
        continue;
      }
      let m: ServerMsg;
      try {
        m = await this.recv(Math.min(deadline, Date.now() + 50));
      } catch (e) {
        if (!(e instanceof WebError && e.code === "timeout")) sigAlive = false;
        continue;
      }
      if (m.type === "answer" && !remoteSet) {
        const answer = openJson<RTCSessionDescriptionInit & { stream?: unknown }>(sealer, "answer", m.payload);
        await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
        remoteSet = true;
        // The channel on the agreed stream stays unused then: it sends nothing by itself.
        if (answer.stream !== AGREED_STREAM) {
          agreed = false;
          link = new DcLink(pc, pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
        }
        for (const c of pending.splice(0)) await pc.addIceCandidate(c).catch(() => undefined);
      } else if (m.type === "ice-candidate") {
        const c = openJson<RTCIceCandidateInit>(sealer, "ice-candidate", m.payload);
        if (!c.candidate) continue;
        if (remoteSet) await pc.addIceCandidate(c).catch(() => undefined);
        else pending.push(c);
      } else if (m.type === "peer-left") {
        // The guest may have finished its side and closed its socket; give ICE a moment.
        deadline = Math.min(deadline, Date.now() + PEER_LEFT_GRACE);
        peerLeft = true;
      } else if (m.type === "peer-joined" && m.role === "guest") {
        this.guestPresent = true;
      } else if (m.type !== "pake" && m.type !== "handshake-failed") {
        const err = roomEvent(m);
        if (err) throw err;
      }
    }
  }

  /** Close the room for good (`close-room` needs the host token; leaving ends it for us). */
  close(): void {
    this.closed = true;
    this.sig.close();
    for (const p of this.extending.values()) {
      clearTimeout(p.timer);
      p.reject(new WebError("room-expired", "the room was closed"));
    }
    this.extending.clear();
  }
}

