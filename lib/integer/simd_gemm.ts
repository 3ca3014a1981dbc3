/**
 * WebAssembly SIMD int16 GEMM micro-kernel (`i32x4.dot_i16x8_s`: 8 multiply-adds
 * per instruction), used by {@link gemmPacked} when the engine has Wasm SIMD.
 *
 * Operands use the packed layout of `gemm_kernel.ts` (int16 values, panels of
 * 4 rows, depth in chunks of 8): the kernel loads one 8-value chunk of each of
 * 4 rows of A and 4 columns of B, and keeps 16 `i32x4` accumulators for the
 * 4x4 output block. Lane sums wrap modulo 2^32, the same as int32 accumulation.
 * The module is assembled at load time from the instruction list below (encoders
 * and module layout from `../tensor/wasm_asm.ts`).
 *
 * @module
 */

import {
  assembleModule,
  brIf,
  END,
  I32,
  I32_ADD,
  I32_MUL,
  I32_SUB,
  i32Const as i32c,
  I32X4_ADD,
  localGet as get,
  localInc as inc,
  localSet as set,
  LOOP,
  simd,
  uleb,
  V128,
  v128ConstI32,
  v128Load,
} from "../tensor/wasm_asm.ts";

// Instructions only this kernel uses.
const I32_LT_U = [0x49];
const I32_STORE = (offset: number) => [0x36, 2, ...uleb(offset)]; // i32.store align=4
const V128_ZERO = v128ConstI32(0, 0, 0, 0);
const DOT = simd(0xba); // i32x4.dot_i16x8_s
const EXTRACT_LANE = (l: number) => [...simd(0x1b), l]; // i32x4.extract_lane

// params: a, b, c, mb, nb, k8, ldc; locals: i, j, p, pa, pb, row (i32); acc[16], va[4], vb[4] (v128)
const A = 0, B = 1, C = 2, MB = 3, NB = 4, K8 = 5, LDC = 6;
const I = 7, J = 8, P = 9, PA = 10, PB = 11, ROW = 12;
const ACC = 13, VA = 29, VB = 33;

function body(): number[] {
  const code: number[] = [];
  const e = (...parts: (readonly number[])[]) => {
    for (const p of parts) code.push(...p);
  };
  e(i32c(0), set(I));
  e(LOOP); // i
  e(i32c(0), set(J));
  e(LOOP); // j
  for (let q = 0; q < 16; q++) e(V128_ZERO, set(ACC + q));
  // pa = a + i * k8 * 64; pb = b + j * k8 * 64
  e(get(A), get(I), get(K8), I32_MUL, i32c(64), I32_MUL, I32_ADD, set(PA));
  e(get(B), get(J), get(K8), I32_MUL, i32c(64), I32_MUL, I32_ADD, set(PB));
  e(get(K8), set(P));
  e(LOOP); // p
  for (let r = 0; r < 4; r++) e(get(PA), v128Load(16 * r), set(VA + r));
  for (let s = 0; s < 4; s++) e(get(PB), v128Load(16 * s), set(VB + s));
  for (let r = 0; r < 4; r++) {
    for (let s = 0; s < 4; s++) {
      e(get(ACC + r * 4 + s), get(VA + r), get(VB + s), DOT, I32X4_ADD, set(ACC + r * 4 + s));
    }
  }
  e(inc(PA, 64), inc(PB, 64));
  e(get(P), i32c(1), I32_SUB, set(P), get(P), brIf(0));
  e(END);
  // store the 4x4 block: c[((i*4 + r) * ldc + j*4 + s) * 4] = sum of lanes of acc[r][s]
  for (let r = 0; r < 4; r++) {
    // row = c + ((i*4 + r) * ldc + j*4) * 4
    e(get(C), get(I), i32c(4), I32_MUL, i32c(r), I32_ADD, get(LDC), I32_MUL, get(J), i32c(4), I32_MUL, I32_ADD);
    e(i32c(4), I32_MUL, I32_ADD, set(ROW));
    for (let s = 0; s < 4; s++) {
      const q = ACC + r * 4 + s;
      e(get(ROW));
      e(get(q), EXTRACT_LANE(0), get(q), EXTRACT_LANE(1), I32_ADD, get(q), EXTRACT_LANE(2), I32_ADD);
      e(get(q), EXTRACT_LANE(3), I32_ADD, I32_STORE(4 * s));
    }
  }
  e(inc(J, 1), get(J), get(NB), I32_LT_U, brIf(0));
  e(END);
  e(inc(I, 1), get(I), get(MB), I32_LT_U, brIf(0));
  e(END);
  return code;
}

function assemble(): Uint8Array<ArrayBuffer> {
  return assembleModule({
    functions: [{
      name: "gemm",
      params: Array(7).fill(I32),
      locals: [...Array(6).fill(I32), ...Array(24).fill(V128)],
      body: body(),
    }],
    memory: { pages: 1, export: "mem" },
  });
}

interface Kernel {
  gemm: (a: number, b: number, c: number, mb: number, nb: number, k8: number, ldc: number) => void;
  mem: WebAssembly.Memory;
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
    kernel = instance.exports as unknown as Kernel;
  } catch {
    kernel = null;
  }
  return kernel;
}

/**
 * Whether the Wasm SIMD GEMM kernel is available in this engine.
 *
 * @example
 * ```ts
 * import { simdGemmAvailable } from "./simd_gemm.ts";
 * if (typeof simdGemmAvailable() !== "boolean") throw new Error("bad");
 * ```
 */
export function simdGemmAvailable(): boolean {
  return load() !== null;
}

/**
 * Run the SIMD kernel on packed int16 panels (`mb` row panels of A, `nb`
 * column panels of B, `k8` depth chunks of 8). Returns a padded
 * `[mb*4, nb*4]` int32 result (a view into Wasm memory, valid until the next
 * call), or null when Wasm SIMD is unavailable.
 *
 * @example
 * ```ts
 * import { simdGemmPanels } from "./simd_gemm.ts";
 * // one 4x4 block, depth 8: A row 0 = [1..8], B column 0 = all ones
 * const a = new Int16Array(32), b = new Int16Array(32);
 * for (let q = 0; q < 8; q++) { a[q] = q + 1; b[q] = 1; }
 * const c = simdGemmPanels(a, b, 1, 1, 1);
 * if (c && c[0] !== 36) throw new Error(String(c[0]));
 * ```
 */
export function simdGemmPanels(a: Int16Array, b: Int16Array, mb: number, nb: number, k8: number): Int32Array | null {
  const k = load();
  if (!k) return null;
  const aBytes = mb * k8 * 64, bBytes = nb * k8 * 64, cBytes = mb * nb * 64;
  const need = aBytes + bBytes + cBytes;
  const have = k.mem.buffer.byteLength;
  if (need > have) k.mem.grow(Math.ceil((need - have) / 65536));
  const buf = k.mem.buffer;
  new Int16Array(buf, 0, aBytes / 2).set(a.subarray(0, aBytes / 2));
  new Int16Array(buf, aBytes, bBytes / 2).set(b.subarray(0, bBytes / 2));
  k.gemm(0, aBytes, aBytes + bBytes, mb, nb, k8, nb * 4);
  return new Int32Array(buf, aBytes + bBytes, mb * nb * 16);
}
