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

import {
  assembleModule,
  BLOCK,
  br,
  brIf,
  END,
  F32X4_ADD,
  F32X4_MUL,
  F32X4_SUB,
  I32,
  I32_ADD,
  I32_MUL,
  i32Const as i32c,
  I32X4_ADD,
  I32X4_SPLAT,
  localGet as get,
  localInc as inc,
  localSet as set,
  LOOP,
  simd,
  V128,
  v128ConstI32,
  v128Load,
  v128Store,
} from "../tensor/wasm_asm.ts";

// Instructions only this kernel uses.
const I32_LT_S = [0x48], I32_GE_S = [0x4e];
const LOAD32_SPLAT = [...simd(0x09), 2, 0]; // v128.load32_splat align=4
const F32X4_LT = simd(0x43);
const BITSELECT = simd(0x52);
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
  const emit = (...parts: (readonly number[])[]) => {
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

/**
 * The assembled module bytes (one function `nearest`, one imported memory `env.mem`).
 *
 * @example
 * ```ts
 * import { nearestModuleBytes } from "./simd_kernel.ts";
 * const bytes = nearestModuleBytes();
 * if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes.length < 100) throw new Error("not a Wasm module");
 * ```
 */
export function nearestModuleBytes(): Uint8Array<ArrayBuffer> {
  return assembleModule({
    functions: [{
      name: "nearest",
      params: Array(9).fill(I32),
      locals: [...Array(N_I32).fill(I32), ...Array(N_V128).fill(V128)],
      body: nearestBody(),
    }],
    memory: { pages: 1, import: { module: "env", name: "mem" } },
  });
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
