// The web engine's hashing and LZ4: crates/ferry-wasm (ferry-core's own tree.rs and
// compress.rs compiled to wasm32, built by scripts/build-wasm.sh into ferry.wasm here, and
// ferry-scalar.wasm for engines without wasm SIMD),
// behind typed wrappers. Nothing here hashes or decodes in JavaScript.
//
// The module's memory can grow on any call that allocates, which detaches earlier views of
// it, so every view below is made fresh after the call that might have grown it.

interface Exports {
  memory: WebAssembly.Memory;
  ferry_alloc(len: number): number;
  ferry_free(ptr: number, len: number): void;
  ferry_blake3(ptr: number, len: number, out: number): void;
  ferry_valid_piece(offset: bigint, len: bigint, total: bigint): number;
  ferry_piece_len(offset: bigint, end: bigint, total: bigint, target: bigint): bigint;
  ferry_piece_cv(offset: bigint, total: bigint, ptr: number, len: number, out: number): number;
  ferry_tree_new(total: bigint): number;
  ferry_tree_free(tree: number): void;
  ferry_tree_push(tree: number, offset: bigint, ptr: number, len: number, cv: number, check: number): number;
  ferry_tree_next(tree: number): bigint;
  ferry_tree_root(tree: number, out: number): number;
  ferry_compressor_new(): number;
  ferry_compressor_free(c: number): void;
  ferry_compress(c: number, ptr: number, len: number, out: number, cap: number): bigint;
  ferry_decompress(ptr: number, len: number, out: number, cap: number): bigint;
}

export type TreeErrorCode = "out-of-order" | "bad-shape" | "incomplete" | "mismatch";
const TREE_ERRORS: Record<number, TreeErrorCode> = { [-1]: "out-of-order", [-2]: "bad-shape", [-3]: "incomplete", [-4]: "mismatch" };

/** A piece refused by the hash tree; `mismatch` means its chaining value is not the claimed one. */
export class TreeError extends Error {
  constructor(readonly code: TreeErrorCode) {
    super(code);
  }
}

export type Lz4ErrorCode = "truncated" | "too-large" | "corrupt";
const LZ4_ERRORS: Record<number, Lz4ErrorCode> = { [-1]: "truncated", [-2]: "too-large", [-3]: "corrupt" };

/** A compressed chunk that does not decode (the Rust `DecompressError` variants). */
export class Lz4Error extends Error {
  constructor(readonly code: Lz4ErrorCode) {
    super(code);
  }
}

function treeStatus(r: number): void {
  if (r !== 0) throw new TreeError(TREE_ERRORS[r] ?? "bad-shape");
}

// The smallest module that uses a SIMD instruction (i8x16.splat, i8x16.popcnt): it
// validates exactly where the engine has wasm SIMD.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this engine runs wasm SIMD: load `ferry.wasm` if so, else `ferry-scalar.wasm`. */
export function simdSupported(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

export class FerryWasm {
  private scratch = 0;
  private scratchLen = 0;
  private readonly cv: number;

  private constructor(private readonly x: Exports) {
    this.cv = x.ferry_alloc(32) >>> 0;
  }

  /** Instantiate from the module's bytes (`fetch` them in a page, read them in a test). */
  static async load(bytes: BufferSource): Promise<FerryWasm> {
    const { instance } = await WebAssembly.instantiate(bytes, {});
    return new FerryWasm(instance.exports as unknown as Exports);
  }

  private mem(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, ptr, len);
  }

  /** A buffer of at least `len` bytes in linear memory, reused across calls. */
  private buf(len: number): number {
    if (len > this.scratchLen) {
      if (this.scratchLen) this.x.ferry_free(this.scratch, this.scratchLen);
      this.scratchLen = Math.max(len, 64 * 1024);
      this.scratch = this.x.ferry_alloc(this.scratchLen) >>> 0;
    }
    return this.scratch;
  }

  /** Copy `data` in at the start of the scratch buffer (with `extra` bytes after it). */
  private put(data: Uint8Array, extra = 0): number {
    const p = this.buf(data.length + extra);
    this.mem(p, data.length).set(data);
    return p;
  }

  private cvOut(): Uint8Array {
    return this.mem(this.cv, 32).slice();
  }

  /** The plain BLAKE3 hash. */
  blake3(data: Uint8Array): Uint8Array {
    const p = this.put(data);
    this.x.ferry_blake3(p, data.length, this.cv);
    return this.cvOut();
  }

  validPiece(offset: bigint, len: bigint, total: bigint): boolean {
    return this.x.ferry_valid_piece(offset, len, total) === 1;
  }

  /** Length of the piece at `offset` towards `end`, at most `target` bytes (0n: none left). */
  pieceLen(offset: bigint, end: bigint, total: bigint, target: bigint): bigint {
    return BigInt.asUintN(64, this.x.ferry_piece_len(offset, end, total, target));
  }

  /** Chaining value of a piece of a `total`-byte file. */
  pieceCv(offset: bigint, total: bigint, data: Uint8Array): Uint8Array {
    const p = this.put(data);
    treeStatus(this.x.ferry_piece_cv(offset, total, p, data.length, this.cv));
    return this.cvOut();
  }

  /** A whole-file hash fed piece by piece; `free()` it when done. */
  tree(total: bigint): FileTree {
    return new FileTree(this, total);
  }

  /** @internal */
  treeOps() {
    const x = this.x;
    return {
      create: (total: bigint) => x.ferry_tree_new(total) >>> 0,
      free: (t: number) => x.ferry_tree_free(t),
      next: (t: number) => BigInt.asUintN(64, x.ferry_tree_next(t)),
      push: (t: number, offset: bigint, data: Uint8Array, claimed?: Uint8Array): Uint8Array => {
        const p = this.put(data);
        if (claimed) this.mem(this.cv, 32).set(claimed);
        treeStatus(x.ferry_tree_push(t, offset, p, data.length, this.cv, claimed ? 1 : 0));
        return this.cvOut();
      },
      root: (t: number): Uint8Array => {
        treeStatus(x.ferry_tree_root(t, this.cv));
        return this.cvOut();
      },
    };
  }

  /** A sender's compression state (backs off on incompressible data); `free()` it. */
  compressor(): Compressor {
    return new Compressor(this);
  }

  /** @internal */
  compressOps() {
    const x = this.x;
    return {
      create: () => x.ferry_compressor_new() >>> 0,
      free: (c: number) => x.ferry_compressor_free(c),
      compress: (c: number, data: Uint8Array): Uint8Array | null => {
        // Room for LZ4's worst case after the input: the wire form is sent only when smaller.
        const cap = data.length + 4;
        const p = this.put(data, cap);
        const n = Number(x.ferry_compress(c, p, data.length, p + data.length, cap));
        return n < 0 ? null : this.mem(p + data.length, n).slice();
      },
    };
  }

  /** Decode a compressed chunk payload (u32 LE length, LZ4 block) of at most `max` bytes. */
  decompress(payload: Uint8Array, max: number): Uint8Array {
    const p = this.put(payload, max);
    const n = Number(this.x.ferry_decompress(p, payload.length, p + payload.length, max));
    if (n < 0) throw new Lz4Error(LZ4_ERRORS[n] ?? "corrupt");
    return this.mem(p + payload.length, n).slice();
  }
}

/** The whole-file BLAKE3, fed in order. Holds wasm memory until `free()`. */
export class FileTree {
  private handle: number;
  private readonly ops: ReturnType<FerryWasm["treeOps"]>;

  constructor(w: FerryWasm, total: bigint) {
    this.ops = w.treeOps();
    this.handle = this.ops.create(total);
  }

  /** Where the next piece must start. */
  next(): bigint {
    return this.ops.next(this.handle);
  }

  /** Hash the next piece and add it; returns its chaining value. With `claimed` (the
   * receiver), a piece whose value differs throws `TreeError("mismatch")` and is not added. */
  push(offset: bigint, data: Uint8Array, claimed?: Uint8Array): Uint8Array {
    return this.ops.push(this.handle, offset, data, claimed);
  }

  /** The file's BLAKE3 hash, once every byte is in. */
  root(): Uint8Array {
    return this.ops.root(this.handle);
  }

  free(): void {
    if (this.handle) this.ops.free(this.handle);
    this.handle = 0;
  }
}

export class Compressor {
  private handle: number;
  private readonly ops: ReturnType<FerryWasm["compressOps"]>;

  constructor(w: FerryWasm) {
    this.ops = w.compressOps();
    this.handle = this.ops.create();
  }

  /** The wire payload when compressing `data` pays, else `null` (send it as it is). */
  compress(data: Uint8Array): Uint8Array | null {
    return this.ops.compress(this.handle, data);
  }

  free(): void {
    if (this.handle) this.ops.free(this.handle);
    this.handle = 0;
  }
}
