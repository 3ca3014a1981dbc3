/**
 * WebAssembly SIMD kernels over contiguous float32 runs, with a plain
 * TypeScript fallback where the engine lacks Wasm SIMD.
 *
 * Two kernels, each processing 4 lanes per instruction:
 * - {@link runMinMax}: minimum and maximum of a run, and whether every value is finite;
 * - {@link runAffineRound}: `y = S * clamp(roundHalfEven(x * inv), lo, hi)` in float32 arithmetic,
 *   the fake-quantization step (bit-identical to the scalar float32 formula, since Wasm
 *   `f32` operations are IEEE-754 single precision, correctly rounded).
 *
 * The module is assembled at load time from the small instruction list below (no
 * binary blob, no build step). Data is copied through a 64 KiB scratch buffer in the
 * module's memory, so any `Float32Array` can be processed.
 *
 * @module
 */

import {
  assembleModule,
  BLOCK,
  br,
  brIf,
  END,
  F32,
  f32Const,
  F32X4_ADD,
  F32X4_MUL,
  F32X4_SPLAT,
  F32X4_SUB,
  I32,
  I32_SUB,
  i32Const as i32c,
  I32X4_SPLAT,
  localGet as get,
  localInc,
  localSet as set,
  LOOP,
  simd,
  V128,
  v128Load,
  v128Store,
} from "./wasm_asm.ts";

const CHUNK = 16384; // floats per scratch chunk (64 KiB)
const RES = 0; // byte offset of the 48-byte result area
const BUF = 64; // byte offset of the scratch buffer

const V128_AND = simd(0x4e), I32X4_MAX_S = simd(0xb8);
const F32X4_PMIN = simd(0xea), F32X4_PMAX = simd(0xeb);
const I32_EQZ = [0x45];

const UNROLL = 4; // vectors per loop iteration: 16 floats

/**
 * `minmax(ptr, n16)`: over `n16` blocks of 16 floats, stores the lane-wise min, max
 * and max(bits & 0x7fffffff) vectors at RES, RES + 16, RES + 32 (bits >= 0x7f800000
 * flags NaN or ±Infinity). Four independent accumulators hide the min/max latency.
 */
function minMaxBody(): number[] {
  // params: 0 ptr, 1 n16; locals: 2..5 vmin[u], 6..9 vmax[u], 10 vbits, 11 vmask, 12 v
  const VMIN = 2, VMAX = 6, VBITS = 10, VMASK = 11, V = 12;
  const code: number[] = [];
  for (let u = 0; u < UNROLL; u++) {
    code.push(...f32Const(Infinity), ...F32X4_SPLAT, ...set(VMIN + u));
    code.push(...f32Const(-Infinity), ...F32X4_SPLAT, ...set(VMAX + u));
  }
  code.push(...i32c(0x7fffffff), ...I32X4_SPLAT, ...set(VMASK));
  code.push(...BLOCK, ...LOOP, ...get(1), ...I32_EQZ, ...brIf(1));
  for (let u = 0; u < UNROLL; u++) {
    code.push(...get(0), ...v128Load(16 * u), ...set(V));
    code.push(...get(VMIN + u), ...get(V), ...F32X4_PMIN, ...set(VMIN + u)); // v < min ? v : min
    code.push(...get(VMAX + u), ...get(V), ...F32X4_PMAX, ...set(VMAX + u)); // max < v ? v : max
    code.push(...get(VBITS), ...get(V), ...get(VMASK), ...V128_AND, ...I32X4_MAX_S, ...set(VBITS));
  }
  code.push(...localInc(0, 16 * UNROLL));
  code.push(...get(1), ...i32c(1), ...I32_SUB, ...set(1), ...br(0), ...END, ...END);
  // combine the accumulators
  code.push(...i32c(RES), ...get(VMIN), ...get(VMIN + 1), ...F32X4_PMIN, ...get(VMIN + 2), ...F32X4_PMIN);
  code.push(...get(VMIN + 3), ...F32X4_PMIN, ...v128Store(0));
  code.push(...i32c(RES), ...get(VMAX), ...get(VMAX + 1), ...F32X4_PMAX, ...get(VMAX + 2), ...F32X4_PMAX);
  code.push(...get(VMAX + 3), ...F32X4_PMAX, ...v128Store(16));
  code.push(...i32c(RES), ...get(VBITS), ...v128Store(32));
  return code;
}

/**
 * `affine(ptr, n16, inv, s, lo, hi)`: in place over `n16` blocks of 16 floats,
 * `v = s * round(clamp(v * inv, lo, hi))`, where round adds and subtracts 1.5 * 2^23
 * (ties to even, exact for |v| < 2^22, which the clamp to integer bounds |lo|, |hi| <= 2^17
 * guarantees; it also turns -0 into +0, as PyTorch's integer round trip does). Clamping
 * before rounding equals rounding before clamping because the bounds are integers.
 * Stores max(bits & 0x7fffffff) of the inputs at RES + 32.
 */
function affineBody(): number[] {
  // params: 0 ptr, 1 n16, 2 inv, 3 s, 4 lo, 5 hi; locals: 6 vinv, 7 vs, 8 vlo, 9 vhi, 10 vm, 11 vbits, 12 vmask, 13 v
  const VINV = 6, VS = 7, VLO = 8, VHI = 9, VM = 10, VBITS = 11, VMASK = 12, V = 13;
  const code: number[] = [];
  for (const [param, local] of [[2, VINV], [3, VS], [4, VLO], [5, VHI]]) {
    code.push(...get(param), ...F32X4_SPLAT, ...set(local));
  }
  code.push(...f32Const(12582912), ...F32X4_SPLAT, ...set(VM));
  code.push(...i32c(0x7fffffff), ...I32X4_SPLAT, ...set(VMASK));
  code.push(...BLOCK, ...LOOP, ...get(1), ...I32_EQZ, ...brIf(1));
  for (let u = 0; u < UNROLL; u++) {
    code.push(...get(0), ...v128Load(16 * u), ...set(V));
    code.push(...get(VBITS), ...get(V), ...get(VMASK), ...V128_AND, ...I32X4_MAX_S, ...set(VBITS));
    code.push(...get(0)); // store address
    code.push(...get(V), ...get(VINV), ...F32X4_MUL); // fround(x * inv)
    code.push(...get(VLO), ...F32X4_PMAX); // v < lo ? lo : v (NaN stays NaN)
    code.push(...get(VHI), ...F32X4_PMIN); // hi < v ? hi : v
    code.push(...get(VM), ...F32X4_ADD, ...get(VM), ...F32X4_SUB); // round half to even
    code.push(...get(VS), ...F32X4_MUL, ...v128Store(16 * u)); // fround(q * S)
  }
  code.push(...localInc(0, 16 * UNROLL));
  code.push(...get(1), ...i32c(1), ...I32_SUB, ...set(1), ...br(0), ...END, ...END);
  code.push(...i32c(RES), ...get(VBITS), ...v128Store(32));
  return code;
}

function assemble(): Uint8Array<ArrayBuffer> {
  return assembleModule({
    functions: [
      { name: "minmax", params: [I32, I32], locals: Array(11).fill(V128), body: minMaxBody() },
      { name: "affine", params: [I32, I32, F32, F32, F32, F32], locals: Array(8).fill(V128), body: affineBody() },
    ],
    memory: { pages: 2, export: "mem" }, // 128 KiB, never grown
  });
}

interface Kernels {
  minmax(ptr: number, n16: number): void;
  affine(ptr: number, n16: number, inv: number, s: number, lo: number, hi: number): void;
  f32: Float32Array;
  i32: Int32Array;
}

let kernels: Kernels | null | undefined;

function load(): Kernels | null {
  if (kernels !== undefined) return kernels;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
    const e = instance.exports as unknown as {
      minmax: Kernels["minmax"];
      affine: Kernels["affine"];
      mem: WebAssembly.Memory;
    };
    kernels = {
      minmax: e.minmax,
      affine: e.affine,
      f32: new Float32Array(e.mem.buffer),
      i32: new Int32Array(e.mem.buffer),
    };
    if (!selfTest(kernels)) kernels = null;
  } catch {
    kernels = null;
  }
  return kernels;
}

function selfTest(k: Kernels): boolean {
  const x = new Float32Array([2.5, -2.5, 3.5, -0.25, 7, -9, 0.5, 1.5]);
  k.f32.set(x, BUF >> 2);
  k.f32.fill(0, (BUF >> 2) + 8, (BUF >> 2) + 16);
  k.affine(BUF, 1, 1, 1, -8, 6);
  const want = [2, -2, 4, 0, 6, -8, 0, 2];
  for (let i = 0; i < 8; i++) if (!Object.is(k.f32[(BUF >> 2) + i], want[i])) return false;
  return true;
}

/**
 * Whether the Wasm SIMD kernels are in use (else the TypeScript fallback runs).
 *
 * @example
 * ```ts
 * import { simdAvailable } from "./simd.ts";
 * if (typeof simdAvailable() !== "boolean") throw new Error("bad");
 * ```
 */
export function simdAvailable(): boolean {
  return load() !== null;
}

/**
 * Disable (`false`) or re-enable (`true`) the Wasm SIMD kernels, e.g. to test the fallback.
 *
 * @example
 * ```ts
 * import { simdAvailable, useSimd } from "./simd.ts";
 * useSimd(false);
 * if (simdAvailable()) throw new Error("bad");
 * useSimd(true);
 * ```
 */
export function useSimd(on: boolean): void {
  kernels = on ? undefined : null;
}

/**
 * Minimum and maximum of `data[start..end)` into `out[0]`, `out[1]`; returns `false`
 * (and leaves `out` unspecified) if the run holds NaN or ±Infinity. An empty run gives
 * `+Infinity, -Infinity`.
 *
 * @example
 * ```ts
 * import { runMinMax } from "./simd.ts";
 * const out = new Float64Array(2);
 * const ok = runMinMax(new Float32Array([3, -1, 2, 8, 0]), 0, 5, out);
 * if (!ok || out[0] !== -1 || out[1] !== 8) throw new Error("bad");
 * if (runMinMax(new Float32Array([1, NaN]), 0, 2, out)) throw new Error("NaN not seen");
 * ```
 */
export function runMinMax(data: Float32Array, start: number, end: number, out: Float64Array): boolean {
  const k = end - start >= 32 ? load() : null;
  if (k === null) return minMaxScalar(data, start, end, out);
  let lo = Infinity, hi = -Infinity, bad = false;
  const f32 = k.f32, i32 = k.i32;
  for (let a = start; a < end; a += CHUNK) {
    const b = Math.min(end, a + CHUNK), n = b - a;
    f32.set(data.subarray(a, b), BUF >> 2);
    const n16 = (n + 15) >> 4;
    for (let p = n; p < n16 * 16; p++) f32[(BUF >> 2) + p] = data[a]; // pad with a value of the run
    k.minmax(BUF, n16);
    for (let l = 0; l < 4; l++) {
      const mn = f32[(RES >> 2) + l], mx = f32[(RES >> 2) + 4 + l];
      if (mn < lo) lo = mn;
      if (mx > hi) hi = mx;
      if (i32[(RES >> 2) + 8 + l] >= 0x7f800000) bad = true;
    }
  }
  out[0] = lo;
  out[1] = hi;
  return !bad;
}

function minMaxScalar(data: Float32Array, start: number, end: number, out: Float64Array): boolean {
  let lo = Infinity, hi = -Infinity, nan = false;
  for (let j = start; j < end; j++) {
    const v = data[j];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    else if (v !== v) nan = true;
  }
  out[0] = lo;
  out[1] = hi;
  return !nan && lo !== -Infinity && hi !== Infinity;
}

/**
 * `out[j] = S * clamp(roundHalfEven(fround(x[j] * inv)), lo, hi)` for `j` in
 * `[start, end)`, in float32 arithmetic (`lo`, `hi` integers with |lo|, |hi| <= 2^17;
 * `inv`, `s` float32 values). Returns `false` if the run holds NaN or ±Infinity
 * (the outputs are then unspecified). `out` may be `x`.
 *
 * @example
 * ```ts
 * import { runAffineRound } from "./simd.ts";
 * const x = new Float32Array([0.25, 0.75, -0.25, 9]);
 * const y = new Float32Array(4);
 * runAffineRound(x, y, 0, 4, 2, 0.5, -4, 3); // S = 0.5, codes in [-4, 3]
 * if (y.join() !== "0,1,0,1.5") throw new Error(y.join());
 * ```
 */
export function runAffineRound(
  x: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
  inv: number,
  s: number,
  lo: number,
  hi: number,
): boolean {
  const k = end - start >= 32 ? load() : null;
  if (k === null) return affineScalar(x, out, start, end, inv, s, lo, hi);
  const f32 = k.f32, i32 = k.i32;
  let bad = false;
  for (let a = start; a < end; a += CHUNK) {
    const b = Math.min(end, a + CHUNK), n = b - a;
    f32.set(x.subarray(a, b), BUF >> 2);
    const n16 = (n + 15) >> 4;
    for (let p = n; p < n16 * 16; p++) f32[(BUF >> 2) + p] = 0;
    k.affine(BUF, n16, inv, s, lo, hi);
    out.set(f32.subarray(BUF >> 2, (BUF >> 2) + n), a);
    for (let l = 0; l < 4; l++) if (i32[(RES >> 2) + 8 + l] >= 0x7f800000) bad = true;
  }
  return !bad;
}

const MAGIC = 6755399441055744; // 1.5 * 2^52

function affineScalar(
  x: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
  inv: number,
  s: number,
  lo: number,
  hi: number,
): boolean {
  const f = Math.fround;
  let finite = true;
  for (let j = start; j < end; j++) {
    let q = (f(x[j] * inv) + MAGIC) - MAGIC;
    if (!(q >= lo && q <= hi)) {
      // cold path: clamp, and catch NaN / ±Infinity
      if (x[j] - x[j] !== 0) finite = false;
      q = q > hi ? hi : lo;
    }
    out[j] = q * s;
  }
  return finite;
}
