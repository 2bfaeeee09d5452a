// Fetching and instantiating the wasm module (BLAKE3 subtrees, LZ4), the SIMD build where the
// browser has it. Apart from wasm.ts so that its tests run without the bundler's `?url` assets.
import { FerryWasm, simdSupported } from "./wasm";
import { WebError } from "./signal";
import simdUrl from "./ferry.wasm?url";
import scalarUrl from "./ferry-scalar.wasm?url";

export async function loadFerryWasm(): Promise<FerryWasm> {
  const bytes = await fetch(simdSupported() ? simdUrl : scalarUrl).then((r) => {
    if (!r.ok) throw new WebError("io", `could not load the hashing module (${r.status})`);
    return r.arrayBuffer();
  });
  return FerryWasm.load(bytes);
}
