// Joining a room as the guest, as crates/ferry-core/src/session/ does it (docs/CRYPTO.md):
// SPAKE2 and key confirmation (the guest proves first), sealed offer/answer/trickle ICE, the
// host's data channel, and the `hello` whose MAC binds both DTLS fingerprints to the room key.
// What comes out is an authenticated `DcLink` for the peer protocol (receive.ts).
//
// RTCPeerConnection exists only on a page's main thread in Chromium and Firefox, so this part
// runs there whatever runs the transfer.
import { fromHex, fromUtf8, toHex, utf8 } from "./bytes";
import { CryptoError } from "./common";
import { CAP_LZ4, CAP_TEXT, ControlReassembler, encodeControl, encodeFrames, FrameError } from "./frames";
import { certFingerprint, normalizeFp, Pake, PAKE_CONFIRM_PREFIX, PAKE_MSG_PREFIX, type RoomKeys } from "./keys";
import type { Sealer } from "./seal";
import { FrameQueue, ownBuffer } from "./frame-queue";
import { type IceServer, type ServerMsg, SignalClient, WebError } from "./signal";

export { WebError } from "./signal";

/** Peer protocol version (ferry_proto::PEER_VERSION). */
export const PEER_VERSION = 2;
const MIN_MESSAGE = 16 * 1024;
const MAX_MESSAGE = 256 * 1024;
/** Largest SCTP packet we tell the native peer to send (it probes for larger ones otherwise):
 * 1400 fits a 1500-byte path in any framing and stays under the browsers' DTLS datagram cap. */
export const MAX_SCTP_PACKET = 1400;
/** The data channel's label (rtc.rs CHANNEL_LABEL). */
export const CHANNEL_LABEL = "ferry";
/** The SCTP stream a host (native, or a sending page) puts the channel on when its sealed
 * offer says `stream: 0` (rtc.rs AGREED_STREAM, docs/CRYPTO.md §4): taking it up spares DCEP's
 * OPEN/ACK round trip, so the host's hello and manifest come a round trip sooner. */
export const AGREED_STREAM = 0;
/** Data the channel may hold unsent before `send` waits (bytes). */
const BUFFERED_HIGH = 1024 * 1024;

export type SessionEvent =
  | { type: "joined"; room: string }
  | { type: "connecting" }
  | { type: "connected"; verification: string };

export interface JoinOptions {
  server: string;
  /** Canonical room id (no hyphen). */
  room: string;
  password: string;
  timeoutMs?: number;
  onEvent?: (e: SessionEvent) => void;
  /** Extra RTCConfiguration (tests); the server's ICE servers are added. */
  rtc?: RTCConfiguration;
}

/** What the peer protocol needs of a link: ordered frames both ways. `DcLink` is the data
 * channel itself; `PortLink` (link-port.ts) is the same link seen from a Worker. */
export interface FrameLink {
  /** The next frame, or null once the link closed (or `deadline`, ms since the epoch, passed). */
  next(deadline?: number): Promise<Uint8Array | null>;
  /** Send one frame, waiting while the link's buffer is full. */
  send(frame: Uint8Array): Promise<void>;
  /** Let what was sent leave (at most `drainMs`), then close. */
  close(drainMs?: number): Promise<void>;
  readonly isOpen: boolean;
  /** Largest message either side takes (the minimum of both `hello`s). */
  maxMessageSize: number;
}

/** Where a handed-off link delivers what arrives (see `DcLink.handOff`). */
export interface LinkTap {
  frame(data: ArrayBuffer): void;
  closed(): void;
}

/** The authenticated data channel, read as an ordered queue of frames. */
export class DcLink implements FrameLink {
  private frames = new FrameQueue();
  private tap: LinkTap | null = null;
  /** Largest message either side takes (the minimum of both `hello`s). */
  maxMessageSize = MIN_MESSAGE;
  caps: string[] = [];

  constructor(
    readonly pc: RTCPeerConnection,
    readonly dc: RTCDataChannel,
  ) {
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = BUFFERED_HIGH / 2;
    dc.onmessage = (ev) => {
      const data = ev.data instanceof ArrayBuffer ? ev.data : typeof ev.data === "string" ? utf8(ev.data).buffer : null;
      if (!data) return;
      if (this.tap) this.tap.frame(data as ArrayBuffer);
      else this.frames.push(new Uint8Array(data));
    };
    dc.onclose = () => this.markClosed();
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.markClosed();
    });
  }

  private markClosed(): void {
    if (!this.frames.closed) this.tap?.closed();
    this.frames.close();
  }

  /** From now on deliver every frame to `tap` (a Worker), starting with any already queued. */
  handOff(tap: LinkTap): void {
    for (const m of this.frames.drain()) tap.frame(ownBuffer(m));
    this.tap = tap;
    if (this.frames.closed) tap.closed();
  }

  get isOpen(): boolean {
    return !this.frames.closed && this.dc.readyState === "open";
  }

  /** Whether a frame has arrived (or the channel closed) by `deadline`; reads nothing. */
  ready(deadline: number): Promise<boolean> {
    return this.frames.ready(deadline);
  }

  /** The next frame, or null once the channel closed and nothing is left (or `deadline` passed). */
  next(deadline = Infinity): Promise<Uint8Array | null> {
    return this.frames.next(deadline);
  }

  /** Send one frame, waiting while the channel's buffer is full. */
  async send(frame: Uint8Array): Promise<void> {
    if (!this.isOpen) throw new WebError("peer-left", "the connection to the other device closed");
    if (this.dc.bufferedAmount > BUFFERED_HIGH) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.dc.removeEventListener("bufferedamountlow", done);
          this.dc.removeEventListener("close", done);
          resolve();
        };
        this.dc.addEventListener("bufferedamountlow", done);
        this.dc.addEventListener("close", done);
      });
      if (!this.isOpen) throw new WebError("peer-left", "the connection to the other device closed");
    }
    this.dc.send(frame as Uint8Array<ArrayBuffer>);
  }

  /** Wait (bounded) until what was sent has left, then close. */
  async close(drainMs = 2000): Promise<void> {
    const until = Date.now() + drainMs;
    while (this.isOpen && this.dc.bufferedAmount > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.dc.close();
    this.pc.close();
    this.markClosed();
  }
}

/** `sha-256 AB:..` from an SDP's first `a=fingerprint:` line (rtc.rs `sdp_fingerprint`). */
export function sdpFingerprint(sdp: string): string | null {
  for (const line of sdp.split(/\r?\n/)) {
    const l = line.trim();
    if (l.startsWith("a=fingerprint:")) return l.slice("a=fingerprint:".length).trim();
  }
  return null;
}

/** Server messages that end a handshake (handshake.rs `room_event`); null: ignore it. */
export function roomEvent(m: ServerMsg): WebError | null {
  switch (m.type) {
    case "peer-left":
      return new WebError("peer-left", "the sender left the room");
    case "handshake-failed":
      return wrongPassword();
    case "room-expired":
    case "room-closed":
      return new WebError("room-expired", "the room expired or was closed");
    case "error":
      return m.code === "not-in-room" ? new WebError("peer-left", "the sender left the room") : new WebError(m.code, m.message);
    default:
      return null;
  }
}

const wrongPassword = () =>
  new WebError("wrong-password", "wrong password, or the signaling server interfered with the handshake");

/** Join `room` as its guest and return the authenticated link. Closes everything on failure. */
/** How long after the `hello`s the host's first message (the offer) may take. */
const FIRST_MESSAGE_MS = 4000;
/** How many times a join starts over when the host never heard our `hello`. */
const STUCK_RETRIES = 2;

/**
 * Join as the guest. Chromium (156 here) now and then never sends what the page queues on a
 * channel the native host opened in the packet that ends the SCTP handshake: our `hello` did
 * not reach the host's SCTP at all (its debug log shows no DATA chunk), so the host waited
 * for it while the page waited for the offer (a few connections in a hundred in the
 * end-to-end runs, with or without path MTU probing). The host sends its offer right after
 * the `hello`s, so when nothing comes the page closes that connection and joins again; the
 * host counts it as a failed attempt and waits for the next.
 */
export async function join(opts: JoinOptions): Promise<{ link: DcLink; verification: string; sig: SignalClient }> {
  for (let attempt = 0; ; attempt += 1) {
    const joined = await joinOnce(opts);
    if (await joined.link.ready(Date.now() + FIRST_MESSAGE_MS)) return joined;
    await joined.link.close(0);
    joined.sig.close();
    if (attempt >= STUCK_RETRIES) throw new WebError("channel-stuck", "the sender never answered over the new connection");
    console.warn("ferry: the sender did not answer our hello; joining again");
  }
}

async function joinOnce(opts: JoinOptions): Promise<{ link: DcLink; verification: string; sig: SignalClient }> {
  const timeout = opts.timeoutMs ?? 30_000;
  if (typeof RTCPeerConnection === "undefined") throw new WebError("unsupported", "this browser cannot do WebRTC");
  const sig = await SignalClient.connect(opts.server, timeout, opts.room);
  let pc: RTCPeerConnection | null = null;
  try {
    const joined = await sig.join(opts.room, Date.now() + timeout);
    opts.onEvent?.({ type: "joined", room: joined.room });
    const keys = await pake(sig, opts, Date.now() + timeout);
    opts.onEvent?.({ type: "connecting" });
    pc = new RTCPeerConnection({ ...opts.rtc, iceServers: [...(opts.rtc?.iceServers ?? []), ...toRtcIce(joined.ice_servers)] });
    const link = await negotiate(sig, pc, keys, Date.now() + timeout);
    await hello(link, keys, Date.now() + timeout);
    const verification = keys.verificationCode();
    opts.onEvent?.({ type: "connected", verification });
    return { link, verification, sig };
  } catch (e) {
    pc?.close();
    sig.close();
    throw e;
  }
}

export function toRtcIce(list: IceServer[] | undefined): RTCIceServer[] {
  return (list ?? []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
}

/** SPAKE2 then key confirmation, guest side (session/confirm.rs). */
async function pake(sig: SignalClient, opts: JoinOptions, deadline: number): Promise<RoomKeys> {
  const { pake, payload } = Pake.start("guest", opts.room, opts.password);
  sig.relay("pake", payload);
  let keys: RoomKeys | null = null;
  // Once our tag is out, any end without a valid host tag counts as a wrong password: a server
  // posing as the host could have tested one guess against it (CRYPTO.md §3).
  const ended = (e: unknown) => (keys ? wrongPassword() : e);
  for (;;) {
    let m: ServerMsg;
    try {
      m = await sig.recv(deadline);
    } catch (e) {
      throw ended(e);
    }
    if (m.type !== "pake") {
      const err = roomEvent(m);
      if (err) throw ended(err);
      continue;
    }
    if (m.payload.startsWith(PAKE_MSG_PREFIX)) {
      if (keys) throw wrongPassword();
      try {
        keys = pake.finish(m.payload);
      } catch {
        throw wrongPassword();
      }
      sig.relay("pake", keys.confirmation());
    } else if (m.payload.startsWith(PAKE_CONFIRM_PREFIX)) {
      if (!keys) throw new WebError("protocol", "confirmation before the PAKE message");
      try {
        keys.verifyConfirmation(m.payload);
      } catch (e) {
        if (e instanceof CryptoError) throw wrongPassword();
        throw e;
      }
      return keys;
    } else {
      throw ended(new WebError("protocol", "unknown PAKE payload"));
    }
  }
}

export function openJson<T>(sealer: Sealer, kind: "offer" | "answer" | "ice-candidate", payload: string): T {
  try {
    return JSON.parse(fromUtf8(sealer.open(kind, payload))) as T;
  } catch (e) {
    throw new WebError("protocol", `sealed ${kind}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Sealed offer/answer and trickle ICE until the host's data channel opens. The host offers. */
async function negotiate(sig: SignalClient, pc: RTCPeerConnection, keys: RoomKeys, deadline: number): Promise<DcLink> {
  const sealer = keys.sealer();
  let remoteSet = false;
  const pending: RTCIceCandidateInit[] = [];
  let link: DcLink | null = null;
  let failed: WebError | null = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate) return;
    try {
      sig.relay("ice-candidate", sealer.seal("ice-candidate", utf8(JSON.stringify(ev.candidate.toJSON()))));
    } catch {
      // Signaling gone mid-ICE: what was exchanged may be enough to connect.
    }
  };
  pc.ondatachannel = (ev) => {
    if (link) return;
    link = new DcLink(pc, ev.channel);
    if (ev.channel.readyState === "open") poke();
    else ev.channel.addEventListener("open", poke);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") {
      failed = new WebError("connect-failed", "connection failed (no usable ICE path)");
      poke();
    }
  };

  // Signaling and the data channel are read together: a message loop that also returns when
  // the channel opens or the connection fails.
  const sigLoop = (async () => {
    for (;;) {
      if ((link as DcLink | null)?.isOpen || failed) return;
      let m: ServerMsg;
      try {
        m = await sig.recv(deadline);
      } catch (e) {
        if (e instanceof WebError && e.code === "timeout") throw e;
        // Signaling closed mid-ICE; keep waiting for the channel until the deadline.
        return;
      }
      if (m.type === "offer" && !remoteSet) {
        const offer = openJson<RTCSessionDescriptionInit & { stream?: unknown }>(sealer, "offer", m.payload);
        await pc.setRemoteDescription({ type: offer.type, sdp: offer.sdp });
        remoteSet = true;
        for (const c of pending.splice(0)) await pc.addIceCandidate(c).catch(() => undefined);
        const agreed = offer.stream === AGREED_STREAM && !link;
        if (agreed) {
          const dc = pc.createDataChannel(CHANNEL_LABEL, { ordered: true, negotiated: true, id: AGREED_STREAM });
          link = new DcLink(pc, dc);
          dc.addEventListener("open", poke);
        }
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        // `max_packet`: our DTLS transport ends the connection on a datagram past ~2 KiB rather
        // than dropping it, so the native peer must not probe its path MTU beyond this.
        const desc = { type: answer.type, sdp: answer.sdp, max_packet: MAX_SCTP_PACKET, ...(agreed ? { stream: AGREED_STREAM } : {}) };
        sig.relay("answer", sealer.seal("answer", utf8(JSON.stringify(desc))));
      } else if (m.type === "ice-candidate") {
        const c = openJson<RTCIceCandidateInit>(sealer, "ice-candidate", m.payload);
        if (!c.candidate) continue;
        if (remoteSet) await pc.addIceCandidate(c).catch(() => undefined);
        else pending.push(c);
      } else if (m.type === "peer-left") {
        // The host may have finished its side and closed its socket; ICE may still complete.
        return;
      } else if (m.type !== "pake") {
        const err = roomEvent(m);
        if (err) throw err;
      }
    }
  })();
  let sigErr: unknown = null;
  let sigDone = false;
  sigLoop.then(
    () => {
      sigDone = true;
      poke();
    },
    (e) => {
      sigErr = e;
      sigDone = true;
      poke();
    },
  );
  for (;;) {
    const l = link as DcLink | null;
    if (l?.isOpen) return l;
    if (failed) throw failed;
    if (sigErr) throw sigErr;
    const left = deadline - Date.now();
    if (left <= 0) throw new WebError("timeout", "the devices did not connect in time");
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, sigDone ? Math.min(left, 100) : left);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** The remote DTLS certificate's fingerprint, from what the handshake actually presented. */
function remoteCertFingerprint(pc: RTCPeerConnection): string | null {
  const transport = pc.sctp?.transport as (RTCDtlsTransport & { getRemoteCertificates?: () => ArrayBuffer[] }) | undefined;
  const certs = transport?.getRemoteCertificates?.() ?? [];
  return certs.length ? certFingerprint(new Uint8Array(certs[0])) : null;
}

/** Exchange `hello`s (handshake.rs `hello`): our MAC binds our role and both fingerprints.
 * `opening` (a host's manifest) follows our hello at once, before the peer's is in: the
 * certificate already matched the sealed SDP (docs/CRYPTO.md §5). */
export async function hello(link: DcLink, keys: RoomKeys, deadline: number, opening: Uint8Array[] = []): Promise<void> {
  const pc = link.pc;
  const localFp = sdpFingerprint(pc.localDescription?.sdp ?? "");
  if (!localFp) throw new WebError("protocol", "no local DTLS fingerprint");
  const remoteFp = remoteCertFingerprint(pc);
  if (!remoteFp) throw new WebError("protocol", "the peer presented no DTLS certificate (or this browser does not show it)");
  const sdpFp = sdpFingerprint(pc.remoteDescription?.sdp ?? "");
  if (!sdpFp) throw new WebError("protocol", "no DTLS fingerprint in the peer's SDP");
  if (normalizeFp(sdpFp) !== normalizeFp(remoteFp)) throw new WebError("protocol", "DTLS certificate does not match the sealed SDP");
  const ours = Math.min(Math.max(pc.sctp?.maxMessageSize ?? MIN_MESSAGE, MIN_MESSAGE), MAX_MESSAGE);
  const caps = [CAP_LZ4, CAP_TEXT];
  await link.send(
    encodeControl({ type: "hello", version: PEER_VERSION, caps, max_message_size: ours, mac: toHex(keys.fingerprintMac(localFp, remoteFp)) }),
  );
  for (const f of opening) await link.send(f);
  const first = await link.next(deadline);
  if (!first) throw new WebError("peer-left", "the link closed before the peer's hello");
  let frame;
  try {
    frame = new ControlReassembler().push(first);
  } catch (e) {
    throw new WebError("protocol", `first message: ${e instanceof FrameError ? e.message : String(e)}`);
  }
  if (!frame || frame.kind !== "control" || frame.control.type !== "hello") throw new WebError("protocol", "first message was not hello");
  const h = frame.control;
  let mac: Uint8Array;
  try {
    mac = fromHex(h.mac.toLowerCase());
  } catch {
    throw new WebError("protocol", "hello MAC is not hex");
  }
  if (!keys.verifyFingerprintMac(localFp, remoteFp, mac)) {
    await link.close(0);
    throw new WebError("protocol", "fingerprint MAC mismatch: the DTLS connection is not with the PAKE peer");
  }
  if (h.version !== PEER_VERSION) throw new WebError("protocol", `peer speaks version ${h.version}, we speak ${PEER_VERSION}`);
  link.maxMessageSize = Math.max(Math.min(ours, h.max_message_size), 1024);
  link.caps = h.caps.filter((c) => caps.includes(c));
}

/** Encode a control message into frames that fit this link. */
export const controlFrames = (link: FrameLink, c: Parameters<typeof encodeFrames>[0]) => encodeFrames(c, link.maxMessageSize);
