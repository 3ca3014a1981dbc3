/**
 * WebAssembly SIMD int16 GEMM micro-kernel (`i32x4.dot_i16x8_s`: 8 multiply-adds
 * per instruction), used by {@link gemmPacked} when the engine has Wasm SIMD.
 *
 * Operands use the packed layout of `gemm_kernel.ts` (int16 values, panels of
 * 4 rows, depth in chunks of 8): the kernel loads one 8-value chunk of each of
 * 4 rows of A and 4 columns of B, and keeps 16 `i32x4` accumulators for the
 * 4x4 output block. Lane sums wrap modulo 2^32, the same as int32 accumulation.
 * The module is assembled at load time from the instruction list below.
 *
 * @module
 */

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

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

// opcodes
const LGET = 0x20, LSET = 0x21, I32C = 0x41, ADD = 0x6a, SUB = 0x6b, MUL = 0x6c, LTU = 0x49, BRIF = 0x0d;
const LOOP = [0x03, 0x40], END = 0x0b, I32STORE = 0x36;
const V128LOAD = (offset: number) => [0xfd, 0x00, 4, ...uleb(offset)];
const V128ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)];
const I32X4ADD = [0xfd, 0xae, 0x01];
const DOT = [0xfd, 0xba, 0x01];
const LANE = (l: number) => [0xfd, 0x1b, l];

// params: a, b, c, mb, nb, k8, ldc; locals: i, j, p, pa, pb, row (i32); acc[16], va[4], vb[4] (v128)
const A = 0, B = 1, C = 2, MB = 3, NB = 4, K8 = 5, LDC = 6;
const I = 7, J = 8, P = 9, PA = 10, PB = 11, ROW = 12;
const ACC = 13, VA = 29, VB = 33;

function body(): number[] {
  const code: number[] = [];
  const e = (...xs: (number | number[])[]) => {
    for (const x of xs) typeof x === "number" ? code.push(x) : code.push(...x);
  };
  e(I32C, 0, LSET, I);
  e(LOOP); // i
  e(I32C, 0, LSET, J);
  e(LOOP); // j
  for (let q = 0; q < 16; q++) e(V128ZERO, LSET, ACC + q);
  // pa = a + i * k8 * 64; pb = b + j * k8 * 64
  e(LGET, A, LGET, I, LGET, K8, MUL, I32C, 0xc0, 0x00, MUL, ADD, LSET, PA);
  e(LGET, B, LGET, J, LGET, K8, MUL, I32C, 0xc0, 0x00, MUL, ADD, LSET, PB);
  e(LGET, K8, LSET, P);
  e(LOOP); // p
  for (let r = 0; r < 4; r++) e(LGET, PA, V128LOAD(16 * r), LSET, VA + r);
  for (let s = 0; s < 4; s++) e(LGET, PB, V128LOAD(16 * s), LSET, VB + s);
  for (let r = 0; r < 4; r++) {
    for (let s = 0; s < 4; s++) {
      e(LGET, ACC + r * 4 + s, LGET, VA + r, LGET, VB + s, DOT, I32X4ADD, LSET, ACC + r * 4 + s);
    }
  }
  e(LGET, PA, I32C, 0xc0, 0x00, ADD, LSET, PA);
  e(LGET, PB, I32C, 0xc0, 0x00, ADD, LSET, PB);
  e(LGET, P, I32C, 1, SUB, LSET, P, LGET, P, BRIF, 0);
  e(END);
  // store the 4x4 block: c[((i*4 + r) * ldc + j*4 + s) * 4] = sum of lanes of acc[r][s]
  for (let r = 0; r < 4; r++) {
    // row = c + ((i*4 + r) * ldc + j*4) * 4
    e(LGET, C, LGET, I, I32C, 4, MUL, I32C, r, ADD, LGET, LDC, MUL, LGET, J, I32C, 4, MUL, ADD, I32C, 4, MUL, ADD);
    e(LSET, ROW);
    for (let s = 0; s < 4; s++) {
      const q = ACC + r * 4 + s;
      e(LGET, ROW);
      e(LGET, q, LANE(0), LGET, q, LANE(1), ADD, LGET, q, LANE(2), ADD, LGET, q, LANE(3), ADD);
      e(I32STORE, 2, ...uleb(4 * s));
    }
  }
  e(LGET, J, I32C, 1, ADD, LSET, J, LGET, J, LGET, NB, LTU, BRIF, 0);
  e(END);
  e(LGET, I, I32C, 1, ADD, LSET, I, LGET, I, LGET, MB, LTU, BRIF, 0);
  e(END);
  e(END);
  const locals = [2, 6, 0x7f, 24, 0x7b];
  const fn = [...locals, ...code];
  return [...uleb(fn.length), ...fn];
}

function assemble(): Uint8Array {
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 7, ...new Array(7).fill(0x7f), 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]),
    ...section(7, [2, ...str("gemm"), 0x00, 0, ...str("mem"), 0x02, 0]),
    ...section(10, [1, ...body()]),
  ];
  return new Uint8Array(bytes);
}

interface Kernel {
  gemm: (a: number, b: number, c: number, mb: number, nb: number, k8: number, ldc: number) => void;
  mem: WebAssembly.Memory;
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(assemble() as BufferSource));
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
