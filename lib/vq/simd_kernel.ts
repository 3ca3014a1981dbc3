/**
 * A WebAssembly SIMD (128-bit, f32x4) kernel for nearest-centroid search, assembled at load time from the
 * readable instruction list below (no binary blob, no toolchain).
 *
 * The kernel computes, for each point `x` of a block and each centroid `c` of a centroid block, the partial
 * squared distance `||c||^2 - 2 x.c` in float32 (the `||x||^2` term is constant per point and added by the
 * caller), and keeps a running per-lane minimum and its centroid index. Centroids are stored transposed
 * (`d` rows of `kp` floats, `kp` a multiple of 16) so one `v128.load` reads 4 centroids' coordinate `j`;
 * the register tile is 2 points x 16 centroids (8 accumulators of 4 lanes; `n` must be even), each point's
 * coordinate is broadcast with `v128.load32_splat`. Lane `l` of group `g` holds centroid `kBase + k + 4g + l`; each lane
 * keeps the first (lowest-index) minimum of its centroids with a strict `<`, so the caller's cross-lane
 * reduction (lowest index among equal minima) gives exact argmin semantics over the computed values.
 *
 * Plain `f32x4` arithmetic only (no relaxed-SIMD fused multiply-add), so results are bit-identical on
 * every engine. Output per point (32 bytes, point `i` at `outPtr + 32 i`): 4 float32 lane minima, then 4 int32 lane indices; the kernel
 * reads them first, so calling it once per centroid block accumulates the minimum over all blocks.
 *
 * @module
 */

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

// Instruction helpers (each returns its bytes).
const get = (l: number) => [0x20, ...uleb(l)];
const set = (l: number) => [0x21, ...uleb(l)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const I32_ADD = [0x6a], I32_MUL = [0x6c], I32_LT_S = [0x48], I32_GE_S = [0x4e];
const BLOCK = [0x02, 0x40], LOOP = [0x03, 0x40], END = [0x0b];
const br = (depth: number) => [0x0c, ...uleb(depth)];
const brIf = (depth: number) => [0x0d, ...uleb(depth)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)];
const LOAD32_SPLAT = [...simd(0x09), 2, 0];
const I32X4_SPLAT = simd(0x11);
const F32X4_LT = simd(0x43);
const BITSELECT = simd(0x52);
const I32X4_ADD = simd(0xae);
const F32X4_ADD = simd(0xe4), F32X4_SUB = simd(0xe5), F32X4_MUL = simd(0xe6);
function v128ConstI32(a: number, b: number, c: number, d: number): number[] {
  const bytes = new Uint8Array(new Int32Array([a, b, c, d]).buffer);
  return [...simd(0x0c), ...bytes];
}
const inc = (l: number, by: number) => [...get(l), ...i32c(by), ...I32_ADD, ...set(l)];
const incBy = (l: number, byLocal: number) => [...get(l), ...get(byLocal), ...I32_ADD, ...set(l)];

// Parameters.
const X_PTR = 0, N = 1, D = 2, STRIDE = 3, CT_PTR = 4, KP = 5, K_BASE = 6, CN_PTR = 7, OUT_PTR = 8;
// i32 locals.
const I = 9, K = 10, J = 11, XROW = 12, PJ = 13, XP = 14, O = 15, CNP = 16, P = 17, KP_BYTES = 18;
// v128 locals: per point of the pair (A, B): best, best index, 4 accumulators, broadcast coordinate.
const BEST = [19, 20], BIDX = [21, 22], ACC = [[23, 24, 25, 26], [27, 28, 29, 30]], XV = [31, 32];
const DIST = 33, MASK = 34, KIDX = 35, KIDX0 = 36, C = 37;
const N_I32 = 10, N_V128 = 19;

function nearestBody(): number[] {
  const code: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) code.push(...p);
  };
  // kpBytes = kp * 4; kidx0 = splat(kBase) + (0, 1, 2, 3)
  emit(get(KP), i32c(4), I32_MUL, set(KP_BYTES));
  emit(get(K_BASE), I32X4_SPLAT, v128ConstI32(0, 1, 2, 3), I32X4_ADD, set(KIDX0));
  emit(i32c(0), set(I));
  emit(BLOCK, LOOP); // pairs of points (the caller pads n to even)
  emit(get(I), get(N), I32_GE_S, brIf(1));
  emit(get(X_PTR), get(I), get(STRIDE), I32_MUL, I32_ADD, set(XROW));
  emit(get(OUT_PTR), get(I), i32c(32), I32_MUL, I32_ADD, set(O));
  for (let q = 0; q < 2; q++) {
    emit(get(O), v128Load(32 * q), set(BEST[q]), get(O), v128Load(32 * q + 16), set(BIDX[q]));
  }
  emit(get(KIDX0), set(KIDX), get(CN_PTR), set(CNP), get(CT_PTR), set(P), i32c(0), set(K));
  emit(BLOCK, LOOP); // centroid groups of 16
  emit(get(K), get(KP), I32_GE_S, brIf(1));
  for (let q = 0; q < 2; q++) {
    for (let g = 0; g < 4; g++) emit(v128ConstI32(0, 0, 0, 0), set(ACC[q][g]));
  }
  emit(get(P), set(PJ), get(XROW), set(XP), i32c(0), set(J));
  emit(LOOP); // coordinates (d >= 1)
  emit(get(XP), LOAD32_SPLAT, set(XV[0]));
  emit(get(XP), get(STRIDE), I32_ADD, LOAD32_SPLAT, set(XV[1]));
  for (let g = 0; g < 4; g++) {
    emit(get(PJ), v128Load(16 * g), set(C));
    for (let q = 0; q < 2; q++) emit(get(ACC[q][g]), get(XV[q]), get(C), F32X4_MUL, F32X4_ADD, set(ACC[q][g]));
  }
  emit(incBy(PJ, KP_BYTES), inc(XP, 4), inc(J, 1));
  emit(get(J), get(D), I32_LT_S, brIf(0));
  emit(END);
  for (let g = 0; g < 4; g++) {
    // dist = cn - (acc + acc); mask = dist < best; best = mask ? dist : best; bidx = mask ? kidx : bidx
    for (let q = 0; q < 2; q++) {
      emit(get(CNP), v128Load(16 * g), get(ACC[q][g]), get(ACC[q][g]), F32X4_ADD, F32X4_SUB, set(DIST));
      emit(get(DIST), get(BEST[q]), F32X4_LT, set(MASK));
      emit(get(DIST), get(BEST[q]), get(MASK), BITSELECT, set(BEST[q]));
      emit(get(KIDX), get(BIDX[q]), get(MASK), BITSELECT, set(BIDX[q]));
    }
    emit(get(KIDX), v128ConstI32(4, 4, 4, 4), I32X4_ADD, set(KIDX));
  }
  emit(inc(CNP, 64), inc(P, 64), inc(K, 16), br(0));
  emit(END, END);
  for (let q = 0; q < 2; q++) {
    emit(get(O), get(BEST[q]), v128Store(32 * q), get(O), get(BIDX[q]), v128Store(32 * q + 16));
  }
  emit(inc(I, 2), br(0));
  emit(END, END);
  return code;
}

/** The assembled module bytes (one function `nearest`, one imported memory `env.mem`). */
export function nearestModuleBytes(): Uint8Array<ArrayBuffer> {
  const params = Array(9).fill(I32);
  const type = section(1, [1, 0x60, ...uleb(params.length), ...params, 0]);
  const imports = section(2, [1, ...str("env"), ...str("mem"), 0x02, 0x00, 1]);
  const funcs = section(3, [1, 0]);
  const exports = section(7, [1, ...str("nearest"), 0x00, 0]);
  const locals = [2, N_I32, I32, N_V128, V128];
  const body = [...locals, ...nearestBody(), ...END];
  const code = section(10, [1, ...uleb(body.length), ...body]);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...type, ...imports, ...funcs, ...exports, ...code]);
}

/** Signature of the exported kernel (all byte offsets into the memory). */
export type NearestFn = (
  xPtr: number,
  n: number,
  d: number,
  strideBytes: number,
  ctPtr: number,
  kp: number,
  kBase: number,
  cnPtr: number,
  outPtr: number,
) => void;

/** An instantiated kernel with its growable memory. */
export interface SimdKernel {
  /** The kernel's memory (grow with {@link ensureBytes}). */
  readonly memory: WebAssembly.Memory;
  /** The kernel. */
  readonly nearest: NearestFn;
}

let cached: SimdKernel | null | undefined;

/**
 * The SIMD kernel, or `null` when this engine has no WebAssembly SIMD. Instantiated once (synchronously;
 * the module is about 600 bytes).
 *
 * @example
 * ```ts
 * import { simdKernel } from "./simd_kernel.ts";
 * const k = simdKernel();
 * if (k !== null && typeof k.nearest !== "function") throw new Error("bad kernel");
 * ```
 */
export function simdKernel(): SimdKernel | null {
  if (cached !== undefined) return cached;
  try {
    const bytes = nearestModuleBytes();
    if (typeof WebAssembly === "undefined" || !WebAssembly.validate(bytes)) {
      cached = null;
      return cached;
    }
    const memory = new WebAssembly.Memory({ initial: 1 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } });
    cached = { memory, nearest: instance.exports.nearest as unknown as NearestFn };
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * Grow `kernel`'s memory to hold at least `bytes` bytes; returns its (possibly new) buffer.
 *
 * @example
 * ```ts
 * import { ensureBytes, simdKernel } from "./simd_kernel.ts";
 * const k = simdKernel();
 * if (k !== null && ensureBytes(k, 200000).byteLength < 200000) throw new Error("did not grow");
 * ```
 */
export function ensureBytes(kernel: SimdKernel, bytes: number): ArrayBufferLike {
  const have = kernel.memory.buffer.byteLength;
  if (have < bytes) kernel.memory.grow(Math.ceil((bytes - have) / 65536));
  return kernel.memory.buffer;
}
