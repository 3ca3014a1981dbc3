/**
 * The int32 GEMM micro-kernel behind the integer GEMM and convolution.
 *
 * Both operands are *packed* with their zero points already subtracted, as
 * int16: rows of A (and columns of B) go in panels of 4, the depth in chunks
 * of 8, `panel[((block * k8 + chunk) * 4 + row) * 8 + lane]`, zero-padded to
 * whole panels and chunks. Values after zero-point subtraction lie in
 * `[-255, 255]`, so products are below 2^16 in magnitude. Where the engine has
 * WebAssembly SIMD the 4x4 block is computed with `i32x4.dot_i16x8_s`
 * (`simd_gemm.ts`); otherwise a plain TypeScript loop with 16 scalar
 * accumulators does it (sums exact in float64 below 2^53, stored into an
 * Int32Array). Both wrap modulo 2^32 exactly as 32-bit accumulation does
 * (ONNX allows accumulator overflow only in 32 bits).
 *
 * @module
 */
import { simdGemmPanels } from "./simd_gemm.ts";

/**
 * Number of 4-wide panels for `n` rows.
 *
 * @example
 * ```ts
 * import { panelCount } from "./gemm_kernel.ts";
 * if (panelCount(4) !== 1 || panelCount(5) !== 2) throw new Error("bad");
 * ```
 */
export function panelCount(n: number): number {
  return (n + 3) >> 2;
}

/**
 * Number of depth chunks of 8 for depth `k`.
 *
 * @example
 * ```ts
 * import { chunkCount } from "./gemm_kernel.ts";
 * if (chunkCount(8) !== 1 || chunkCount(9) !== 2) throw new Error("bad");
 * ```
 */
export function chunkCount(k: number): number {
  return (k + 7) >> 3;
}

/**
 * Index of element (row `r`, depth `p`) in a packed panel array of depth chunks `k8`.
 *
 * @example
 * ```ts
 * import { panelIndex } from "./gemm_kernel.ts";
 * // Within a panel: 8 depth values per row, 4 rows per chunk; the next panel follows all k8 chunks.
 * if (panelIndex(0, 1, 2) !== 1 || panelIndex(1, 0, 2) !== 8 || panelIndex(4, 0, 2) !== 64) throw new Error("bad");
 * ```
 */
export function panelIndex(r: number, p: number, k8: number): number {
  return ((((r >> 2) * k8 + (p >> 3)) << 2) + (r & 3)) * 8 + (p & 7);
}

/**
 * Pack `rows` strided vectors of length `k` from an 8-bit array, subtracting a
 * per-row zero point: vector `r` element `p` is `src[offset + r*rowStride + p*depthStride] - zp[r]`.
 * Returns `panelCount(rows) * chunkCount(k) * 32` int16 values.
 *
 * @example
 * ```ts
 * import { packPanels, panelIndex } from "./gemm_kernel.ts";
 * // A 2x3 matrix [[1, 2, 3], [4, 5, 6]], row zero points [1, 0]
 * const p = packPanels(new Int8Array([1, 2, 3, 4, 5, 6]), 0, 2, 3, 3, 1, new Int32Array([1, 0]));
 * if (p[panelIndex(0, 0, 1)] !== 0 || p[panelIndex(1, 0, 1)] !== 4 || p[panelIndex(1, 2, 1)] !== 6) {
 *   throw new Error(Array.from(p).join());
 * }
 * if (p.length !== 32 || p[panelIndex(2, 0, 1)] !== 0) throw new Error("padding");
 * ```
 */
export function packPanels(
  src: Int8Array | Uint8Array,
  offset: number,
  rows: number,
  k: number,
  rowStride: number,
  depthStride: number,
  zp: Int32Array,
): Int16Array {
  const k8 = chunkCount(k);
  const dst = new Int16Array(panelCount(rows) * k8 * 32);
  for (let r = 0; r < rows; r++) {
    const z = zp[r];
    const s = offset + r * rowStride;
    const base = (r >> 2) * k8 * 32 + (r & 3) * 8;
    for (let p = 0; p < k; p++) dst[base + (p >> 3) * 32 + (p & 7)] = src[s + p * depthStride] - z;
  }
  return dst;
}

/**
 * Whether {@link gemmPacked} may use the Wasm SIMD kernel (tests switch it off to check the fallback).
 *
 * @example
 * ```ts
 * import { gemmConfig } from "./gemm_kernel.ts";
 * if (typeof gemmConfig.simd !== "boolean") throw new Error("bad");
 * ```
 */
export const gemmConfig: { simd: boolean } = { simd: true };

/**
 * `C[i, j] = sum_p A[i, p] * B[p, j]` for packed A (`m` rows) and packed B
 * (`n` columns) of depth `k`; writes `out[outOffset + i*ldc + j]` (int32, wrapping).
 * Uses Wasm SIMD when available and {@link gemmConfig}`.simd` is true.
 *
 * @example
 * ```ts
 * import { gemmPacked, packPanels } from "./gemm_kernel.ts";
 * const a = packPanels(new Int8Array([1, 2, 3, 4]), 0, 2, 2, 2, 1, new Int32Array(2)); // [[1,2],[3,4]]
 * const b = packPanels(new Int8Array([5, 6, 7, 8]), 0, 2, 2, 1, 2, new Int32Array(2)); // columns of [[5,6],[7,8]]
 * const c = new Int32Array(4);
 * gemmPacked(a, b, 2, 2, 2, c, 0, 2);
 * if (c.join() !== "19,22,43,50") throw new Error(c.join());
 * ```
 */
export function gemmPacked(
  a: Int16Array,
  b: Int16Array,
  m: number,
  n: number,
  k: number,
  out: Int32Array,
  outOffset: number,
  ldc: number,
): void {
  const k8 = chunkCount(k), mb = panelCount(m), nb = panelCount(n);
  const c = gemmConfig.simd ? simdGemmPanels(a, b, mb, nb, k8) : null;
  if (c) {
    const cw = nb * 4;
    for (let i = 0; i < m; i++) {
      out.set(c.subarray(i * cw, i * cw + n), outOffset + i * ldc);
    }
    return;
  }
  gemmPackedJs(a, b, m, n, k8, out, outOffset, ldc);
}

function gemmPackedJs(
  a: Int16Array,
  b: Int16Array,
  m: number,
  n: number,
  k8: number,
  out: Int32Array,
  outOffset: number,
  ldc: number,
): void {
  const len = k8 * 32;
  for (let i = 0; i < m; i += 4) {
    const ao = (i >> 2) * len;
    const fullRows = i + 4 <= m;
    for (let j = 0; j < n; j += 4) {
      const bo = (j >> 2) * len;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let ch = 0; ch < len; ch += 32) {
        for (let q = ch, e = ch + 8; q < e; q++) {
          const x = ao + q, y = bo + q;
          const a0 = a[x], a1 = a[x + 8], a2 = a[x + 16], a3 = a[x + 24];
          const b0 = b[y], b1 = b[y + 8], b2 = b[y + 16], b3 = b[y + 24];
          c00 += a0 * b0;
          c01 += a0 * b1;
          c02 += a0 * b2;
          c03 += a0 * b3;
          c10 += a1 * b0;
          c11 += a1 * b1;
          c12 += a1 * b2;
          c13 += a1 * b3;
          c20 += a2 * b0;
          c21 += a2 * b1;
          c22 += a2 * b2;
          c23 += a2 * b3;
          c30 += a3 * b0;
          c31 += a3 * b1;
          c32 += a3 * b2;
          c33 += a3 * b3;
        }
      }
      let o = outOffset + i * ldc + j;
      if (fullRows && j + 4 <= n) {
        out[o] = c00, out[o + 1] = c01, out[o + 2] = c02, out[o + 3] = c03;
        o += ldc;
        out[o] = c10, out[o + 1] = c11, out[o + 2] = c12, out[o + 3] = c13;
        o += ldc;
        out[o] = c20, out[o + 1] = c21, out[o + 2] = c22, out[o + 3] = c23;
        o += ldc;
        out[o] = c30, out[o + 1] = c31, out[o + 2] = c32, out[o + 3] = c33;
      } else {
        const rows = Math.min(4, m - i), cols = Math.min(4, n - j);
        const block = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
        for (let r = 0; r < rows; r++, o += ldc) {
          for (let s = 0; s < cols; s++) out[o + s] = block[r * 4 + s];
        }
      }
    }
  }
}
