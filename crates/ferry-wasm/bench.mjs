// Throughput of the browser peer's wasm hashing and LZ4 decode, in Node (same V8 as
// Chromium): what a receiving tab pays per byte before the network. Not run by the suite.
//   bash scripts/build-wasm.sh && node crates/ferry-wasm/bench.mjs ui/src/web/ferry.wasm
import { readFileSync } from "node:fs";
const file = process.argv[2];
const { instance } = await WebAssembly.instantiate(readFileSync(file), {});
const x = instance.exports;
const CH = 256 * 1024, TOTAL = 256 * 1024 * 1024;
const buf = x.ferry_alloc(CH) >>> 0, cv = x.ferry_alloc(32) >>> 0;
const src = new Uint8Array(CH); for (let i = 0; i < CH; i++) src[i] = (i * 2654435761) >>> 24;
let t = x.ferry_tree_new(BigInt(TOTAL));
let t0 = performance.now();
for (let off = 0; off < TOTAL; off += CH) {
  new Uint8Array(x.memory.buffer, buf, CH).set(src);
  if (x.ferry_tree_push(t, BigInt(off), buf, CH, cv, 0) !== 0) throw new Error("push");
}
x.ferry_tree_root(t, cv);
let dt = (performance.now() - t0) / 1000;
console.log(`blake3 tree push (copy in + hash), 256 KiB pieces: ${(TOTAL / 1e6 / dt).toFixed(0)} MB/s`);
// LZ4: compress log-like text once, decode it repeatedly.
let s = ""; for (let i = 0; s.length < CH; i++) s += `2026-11-25T08:${String(i%60).padStart(2,"0")}:${String(i%59).padStart(2,"0")}Z INFO request ${i} served in ${i%97} ms\n`;
const text = new TextEncoder().encode(s).subarray(0, CH);
const c = x.ferry_compressor_new();
const inp = x.ferry_alloc(CH) >>> 0, wire = x.ferry_alloc(CH + 4) >>> 0, out = x.ferry_alloc(CH) >>> 0;
new Uint8Array(x.memory.buffer, inp, CH).set(text);
const n = Number(x.ferry_compress(c, inp, CH, wire, CH + 4));
const w = new Uint8Array(x.memory.buffer, wire, n).slice();
const N = 1000; t0 = performance.now();
for (let i = 0; i < N; i++) {
  new Uint8Array(x.memory.buffer, wire, n).set(w);
  const m = Number(x.ferry_decompress(wire, n, out, CH));
  if (m !== CH) throw new Error("lz4 " + m);
  new Uint8Array(x.memory.buffer, out, CH).slice();
}
dt = (performance.now() - t0) / 1000;
console.log(`lz4 decode (copy in, decode, copy out), 256 KiB chunk at ratio ${(n / CH).toFixed(3)}: ${(N * CH / 1e6 / dt).toFixed(0)} MB/s of output`);
