// Measurement, not a test: the data-channel ceiling of the system Chromium, two
// RTCPeerConnections in one headless page over loopback, 128 KiB messages (what ferry's sender
// uses), bufferedAmountLow back-pressure. The browser peer's throughput is compared with it.
//   CHROMIUM=/usr/bin/chromium node ui/e2e/web-ceiling.mjs [MiB]
import { chromium } from "playwright-core";

const mib = Number(process.argv[2] ?? 128);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"],
});
const timer = setTimeout(() => {
  console.error("web-ceiling: no result within 120 s");
  process.exit(1);
}, 120_000);
try {
  const page = await browser.newPage();
  const result = await page.evaluate(async (mib) => {
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    const dc = a.createDataChannel("ceiling", { ordered: true });
    dc.binaryType = "arraybuffer";
    const total = mib * 1024 * 1024;
    const msg = 128 * 1024;
    const got = new Promise((resolve) => {
      b.ondatachannel = (ev) => {
        let n = 0;
        let t0 = 0;
        ev.channel.binaryType = "arraybuffer";
        ev.channel.onmessage = (m) => {
          if (!t0) t0 = performance.now();
          n += m.data.byteLength;
          if (n >= total) resolve((performance.now() - t0) / 1000);
        };
      };
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    await new Promise((r) => (dc.onopen = r));
    const buf = new Uint8Array(msg);
    crypto.getRandomValues(buf.subarray(0, 65536));
    dc.bufferedAmountLowThreshold = 4 * 1024 * 1024;
    let sent = 0;
    while (sent < total) {
      if (dc.bufferedAmount > 8 * 1024 * 1024) {
        await new Promise((r) => (dc.onbufferedamountlow = r));
      }
      dc.send(buf);
      sent += msg;
    }
    const secs = await got;
    return { mib, secs, mbps: total / 1e6 / secs, maxMessageSize: a.sctp?.maxMessageSize };
  }, mib);
  console.log(`chromium ↔ chromium data channel, one page: ${result.mib} MiB in ${result.secs.toFixed(2)} s = ${result.mbps.toFixed(1)} MB/s (max message ${result.maxMessageSize})`);

  // Two pages in separate contexts (separate renderers), as two users' tabs would be; the
  // descriptions go through this script after ICE gathering completes.
  const [ctxA, ctxB] = [await browser.newContext(), await browser.newContext()];
  const [pa, pb] = [await ctxA.newPage(), await ctxB.newPage()];
  const gathered = `new Promise((r) => { if (pc.iceGatheringState === "complete") r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); })`;
  const offer = await pa.evaluate(`(async () => {
    window.pc = new RTCPeerConnection();
    window.dc = pc.createDataChannel("ceiling", { ordered: true });
    await pc.setLocalDescription(await pc.createOffer());
    await ${gathered};
    return pc.localDescription.toJSON();
  })()`);
  const answer = await pb.evaluate(`(async (offer) => {
    window.pc = new RTCPeerConnection();
    window.got = new Promise((resolve) => {
      pc.ondatachannel = (ev) => {
        let n = 0, t0 = 0;
        ev.channel.binaryType = "arraybuffer";
        ev.channel.onmessage = (m) => {
          if (!t0) t0 = performance.now();
          n += m.data.byteLength;
          if (n >= ${mib} * 1024 * 1024) resolve((performance.now() - t0) / 1000);
        };
      };
    });
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await ${gathered};
    return pc.localDescription.toJSON();
  })(${JSON.stringify(offer)})`);
  const receiving = pb.evaluate("window.got");
  await pa.evaluate(`(async (answer) => {
    await pc.setRemoteDescription(answer);
    if (dc.readyState !== "open") await new Promise((r) => (dc.onopen = r));
    const buf = new Uint8Array(128 * 1024);
    crypto.getRandomValues(buf.subarray(0, 65536));
    dc.bufferedAmountLowThreshold = 4 * 1024 * 1024;
    for (let sent = 0; sent < ${mib} * 1024 * 1024; sent += buf.length) {
      if (dc.bufferedAmount > 8 * 1024 * 1024) await new Promise((r) => (dc.onbufferedamountlow = r));
      dc.send(buf);
    }
  })(${JSON.stringify(answer)})`);
  const secs = await receiving;
  console.log(`chromium ↔ chromium data channel, two pages: ${mib} MiB in ${secs.toFixed(2)} s = ${((mib * 1.048576) / secs).toFixed(1)} MB/s`);
} finally {
  clearTimeout(timer);
  await browser.close();
}
