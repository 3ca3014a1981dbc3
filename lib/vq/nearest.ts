/**
 * Nearest-centroid search by the expansion `||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2`, blocked for the cache:
 * points are processed in chunks, centroids in blocks whose transposed coordinates fit in L1/L2, and every
 * chunk x block tile is a register-tiled matrix product fused with the running argmin (the distance matrix
 * is never stored). Two backends compute the same thing:
 *
 * - `"simd"` (default where available): a WebAssembly f32x4 kernel ({@link simdKernel}), float32 arithmetic
 *   like faiss's BLAS path;
 * - `"js"`: plain TypeScript over Float32Array, float64 accumulation, 2 points x 4 centroids register tile.
 *
 * Ties (equal computed distances) go to the lowest centroid index in both. The two backends can differ only
 * where two centroids' distances agree to float32 rounding.
 *
 * Precision and range: the squared norms `||c||^2` are accumulated and kept in float64 (the `norms` and
 * `paddedNorms` of {@link PreparedCentroids}). The JS backend accumulates the dot products in float64 too, so it is
 * exact to float64 rounding for every finite float32 input (squares up to about 1e77). The SIMD kernel works in
 * float32 (like faiss's BLAS path), which is only valid while `4 d max|v|^2` stays inside the float32 range: a
 * chunk of points whose largest coordinate (or the centroids' largest) reaches {@link simdSafeMaxAbs}`(d)` (about
 * 9e18 for `d = 1`), or whose coordinates are all below 2^-50 (squares would underflow), is routed to the float64
 * JS path automatically, so both backends give the float64 answer there (clusters at +-1e20 stay apart). Checking
 * costs one `max |v|` per gathered coordinate, an O(n d) pass beside the O(n k d) kernel.
 *
 * There is no rounding here to make stochastic: the assignment is an argmin.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { ensureBytes, simdKernel } from "./simd_kernel.ts";

/** Which nearest-centroid implementation to use. */
export type NearestBackend = "simd" | "js";

/** Centroids prepared for repeated search: transposed blocks, squared norms. */
export interface PreparedCentroids {
  /** Number of centroids. */
  readonly k: number;
  /** Dimension. */
  readonly d: number;
  /** The centroids, row-major `k x d` (float32, not copied). */
  readonly centroids: Float32Array;
  /** Squared norms `||c||^2` (float64 accumulation and storage). */
  readonly norms: Float64Array;
  /** Largest absolute coordinate of the centroids (decides whether the float32 SIMD kernel is safe). */
  readonly maxAbs: number;
  /** Centroids per block (a multiple of 16). */
  readonly blockSize: number;
  /** Transposed, zero-padded blocks: block `b` is `d` rows of `blockSize` floats, blocks back to back. */
  readonly transposed: Float32Array;
  /** Norms padded to whole blocks with `+Infinity` (padding never wins), float64. */
  readonly paddedNorms: Float64Array;
}

/** Target bytes of one transposed centroid block (fits L1/L2 next to the point chunk). */
const BLOCK_BYTES = 64 * 1024;
/** Points per chunk. */
const CHUNK = 2048;

/**
 * Prepare `k` centroids of dimension `d` (row-major) for {@link assignNearest}.
 *
 * @example
 * ```ts
 * import { prepareCentroids } from "./nearest.ts";
 * const p = prepareCentroids(new Float32Array([0, 0, 3, 4]), 2, 2);
 * if (p.norms[1] !== 25 || p.blockSize % 16 !== 0) throw new Error("bad");
 * ```
 */
export function prepareCentroids(centroids: Float32Array, k: number, d: number): PreparedCentroids {
  if (centroids.length !== k * d) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `centroids hold ${centroids.length} values, expected k * d = ${k} * ${d} = ${k * d}`,
    );
  }
  const norms = new Float64Array(k);
  let maxAbs = 0;
  for (let c = 0; c < k; c++) {
    let s = 0;
    const o = c * d;
    for (let j = 0; j < d; j++) {
      const v = centroids[o + j];
      s += v * v;
      const a = v < 0 ? -v : v;
      if (a > maxAbs) maxAbs = a;
    }
    norms[c] = s;
  }
  const maxBlock = Math.max(16, Math.floor(BLOCK_BYTES / 4 / d / 16) * 16);
  const blockSize = Math.min(maxBlock, Math.ceil(k / 16) * 16);
  const blocks = Math.ceil(k / blockSize);
  const padded = blocks * blockSize;
  const transposed = new Float32Array(padded * d);
  const paddedNorms = new Float64Array(padded).fill(Infinity);
  paddedNorms.set(norms);
  for (let c = 0; c < k; c++) {
    const b = Math.floor(c / blockSize), cb = c - b * blockSize;
    const base = b * blockSize * d + cb;
    for (let j = 0; j < d; j++) transposed[base + j * blockSize] = centroids[c * d + j];
  }
  return { k, d, centroids, norms, maxAbs, blockSize, transposed, paddedNorms };
}

/** Where {@link assignNearest} reads points and writes results. */
export interface NearestRequest {
  /** Point storage; point `i`'s coordinate `j` is `points[offset + i * stride + j]`. */
  readonly points: Float32Array;
  /** Number of points. */
  readonly n: number;
  /** Floats between consecutive points (default `d`). */
  readonly stride?: number;
  /** Float offset of point 0 (default 0). */
  readonly offset?: number;
  /** Output indices: point `i`'s nearest centroid goes to `index[indexOffset + i * indexStride]`. */
  readonly index: Int32Array | Uint8Array | Uint16Array;
  /** Default 1. */
  readonly indexStride?: number;
  /** Default 0. */
  readonly indexOffset?: number;
  /** Optional output: squared distance to the nearest centroid (clamped at 0), per point. */
  readonly distance?: Float64Array | Float32Array;
  /** Backend (default `"simd"` where available, else `"js"`). */
  readonly backend?: NearestBackend;
}

/**
 * For each point, the index of the nearest centroid (ties -> lowest index) and optionally the squared
 * distance. Returns the sum of squared distances (float64).
 *
 * @example
 * ```ts
 * import { assignNearest, prepareCentroids } from "./nearest.ts";
 * const cents = prepareCentroids(new Float32Array([0, 0, 10, 10]), 2, 2);
 * const index = new Int32Array(3);
 * const sum = assignNearest(cents, { points: new Float32Array([1, 1, 9, 9, 5, 5]), n: 3, index });
 * if (index.join() !== "0,1,0" || Math.abs(sum - (2 + 2 + 50)) > 1e-4) throw new Error("bad");
 * ```
 */
export function assignNearest(cents: PreparedCentroids, req: NearestRequest): number {
  const backend = req.backend ?? (simdKernel() ? "simd" : "js");
  if (backend === "simd") {
    const kernel = simdKernel();
    if (kernel) return assignSimd(cents, req, kernel);
  }
  return assignJs(cents, req);
}

/** Below this largest coordinate the float32 kernel's squares would underflow (2^-50: squares 2^-100). */
const SIMD_MIN_ABS = 2 ** -50;
const F32_MAX = 3.4028234663852886e38;

/**
 * The largest coordinate magnitude the float32 SIMD kernel accepts at dimension `d`: `sqrt(F32_MAX / (4 d))`, so
 * that `||c||^2 - 2 x.c` cannot overflow float32. Larger coordinates go through the float64 JS path.
 *
 * @example
 * ```ts
 * import { simdSafeMaxAbs } from "./nearest.ts";
 * const m = simdSafeMaxAbs(1);
 * if (!(m > 9e18 && m < 1e19) || !(simdSafeMaxAbs(64) < m)) throw new Error("bad");
 * ```
 */
export function simdSafeMaxAbs(d: number): number {
  return Math.sqrt(F32_MAX / (4 * Math.max(1, d)));
}

function pointNorm(x: Float32Array, o: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += x[o + j] * x[o + j];
  return s;
}

function assignSimd(
  cents: PreparedCentroids,
  req: NearestRequest,
  kernel: NonNullable<ReturnType<typeof simdKernel>>,
): number {
  const { d, blockSize, transposed, paddedNorms } = cents;
  const { points, n, index, distance } = req;
  const stride = req.stride ?? d, offset = req.offset ?? 0;
  const iStride = req.indexStride ?? 1, iOffset = req.indexOffset ?? 0;
  const safeMax = simdSafeMaxAbs(d);
  if (!(cents.maxAbs < safeMax)) return assignJs(cents, req);
  const ctBytes = transposed.length * 4, cnBytes = paddedNorms.length * 4; // the kernel reads float32 norms
  const chunk = Math.min(CHUNK, n + (n & 1)); // the kernel works on pairs of points
  const xPtr = ctBytes + cnBytes, outPtr = xPtr + chunk * d * 4;
  const buffer = ensureBytes(kernel, outPtr + chunk * 32);
  const f32 = new Float32Array(buffer), i32 = new Int32Array(buffer);
  f32.set(transposed, 0);
  f32.set(paddedNorms, ctBytes / 4);
  const blocks = paddedNorms.length / blockSize;
  let total = 0;
  for (let i0 = 0; i0 < n; i0 += chunk) {
    const m = Math.min(chunk, n - i0), mEven = m + (m & 1);
    // Gather the chunk compactly (a zero row pads an odd count) and reset the running minima.
    let w = xPtr / 4, hi = 0, lo = 0;
    for (let i = 0; i < m; i++) {
      const src = offset + (i0 + i) * stride;
      for (let j = 0; j < d; j++) {
        const v = points[src + j];
        f32[w++] = v;
        if (v > hi) hi = v;
        else if (v < lo) lo = v;
      }
    }
    const maxAbs = Math.max(hi, -lo, cents.maxAbs);
    if (!(maxAbs < safeMax) || (maxAbs < SIMD_MIN_ABS && maxAbs > 0)) {
      // Outside the float32 kernel's range: this chunk in float64.
      total += assignJs(cents, {
        ...req,
        n: m,
        offset: offset + i0 * stride,
        stride,
        indexOffset: iOffset + i0 * iStride,
        indexStride: iStride,
        distance: distance?.subarray(i0),
      });
      continue;
    }
    if (mEven > m) f32.fill(0, w, w + d);
    const o4 = outPtr / 4;
    for (let i = 0; i < mEven; i++) {
      const q = o4 + i * 8;
      f32[q] =
        f32[q + 1] =
        f32[q + 2] =
        f32[q + 3] =
          Infinity;
      i32[q + 4] =
        i32[q + 5] =
        i32[q + 6] =
        i32[q + 7] =
          0;
    }
    for (let b = 0; b < blocks; b++) {
      kernel.nearest(
        xPtr,
        mEven,
        d,
        d * 4,
        b * blockSize * d * 4,
        blockSize,
        b * blockSize,
        ctBytes + b * blockSize * 4,
        outPtr,
      );
    }
    // Cross-lane reduction: smallest value, lowest index among equals.
    for (let i = 0; i < m; i++) {
      const q = o4 + i * 8;
      let best = f32[q], bi = i32[q + 4];
      for (let l = 1; l < 4; l++) {
        const v = f32[q + l], vi = i32[q + 4 + l];
        if (v < best || (v === best && vi < bi)) {
          best = v;
          bi = vi;
        }
      }
      index[iOffset + (i0 + i) * iStride] = bi;
      let dist = best + pointNorm(f32, xPtr / 4 + i * d, d);
      if (dist < 0) dist = 0;
      if (distance) distance[i0 + i] = dist;
      total += dist;
    }
  }
  return total;
}

function assignJs(cents: PreparedCentroids, req: NearestRequest): number {
  const { d, k, blockSize, transposed, paddedNorms } = cents;
  const { points: x, n, index, distance } = req;
  const stride = req.stride ?? d, offset = req.offset ?? 0;
  const iStride = req.indexStride ?? 1, iOffset = req.indexOffset ?? 0;
  const blocks = paddedNorms.length / blockSize;
  const chunk = Math.min(CHUNK, n);
  const best = new Float64Array(chunk);
  const bestIdx = new Int32Array(chunk);
  let total = 0;
  for (let i0 = 0; i0 < n; i0 += chunk) {
    const m = Math.min(chunk, n - i0);
    best.fill(Infinity);
    bestIdx.fill(0);
    for (let b = 0; b < blocks; b++) {
      const base = b * blockSize * d, kb = b * blockSize;
      const kEnd = Math.min(blockSize, k - kb);
      let i = 0;
      // 2 points x 4 centroids register tile.
      for (; i + 1 < m; i += 2) {
        const xa = offset + (i0 + i) * stride, xb = xa + stride;
        let ba = best[i], ia = bestIdx[i], bb = best[i + 1], ib = bestIdx[i + 1];
        for (let c = 0; c < kEnd; c += 4) {
          let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
          for (let j = 0, p = base + c; j < d; j++, p += blockSize) {
            const u = x[xa + j], v = x[xb + j];
            const c0 = transposed[p], c1 = transposed[p + 1], c2 = transposed[p + 2], c3 = transposed[p + 3];
            a0 += u * c0;
            a1 += u * c1;
            a2 += u * c2;
            a3 += u * c3;
            b0 += v * c0;
            b1 += v * c1;
            b2 += v * c2;
            b3 += v * c3;
          }
          const g = kb + c;
          const n0 = paddedNorms[g], n1 = paddedNorms[g + 1], n2 = paddedNorms[g + 2], n3 = paddedNorms[g + 3];
          let e = n0 - 2 * a0;
          if (e < ba) (ba = e), (ia = g);
          e = n1 - 2 * a1;
          if (e < ba) (ba = e), (ia = g + 1);
          e = n2 - 2 * a2;
          if (e < ba) (ba = e), (ia = g + 2);
          e = n3 - 2 * a3;
          if (e < ba) (ba = e), (ia = g + 3);
          e = n0 - 2 * b0;
          if (e < bb) (bb = e), (ib = g);
          e = n1 - 2 * b1;
          if (e < bb) (bb = e), (ib = g + 1);
          e = n2 - 2 * b2;
          if (e < bb) (bb = e), (ib = g + 2);
          e = n3 - 2 * b3;
          if (e < bb) (bb = e), (ib = g + 3);
        }
        best[i] = ba;
        bestIdx[i] = ia;
        best[i + 1] = bb;
        bestIdx[i + 1] = ib;
      }
      for (; i < m; i++) {
        const xa = offset + (i0 + i) * stride;
        let ba = best[i], ia = bestIdx[i];
        for (let c = 0; c < kEnd; c++) {
          let s = 0;
          for (let j = 0, p = base + c; j < d; j++, p += blockSize) s += x[xa + j] * transposed[p];
          const e = paddedNorms[kb + c] - 2 * s;
          if (e < ba) (ba = e), (ia = kb + c);
        }
        best[i] = ba;
        bestIdx[i] = ia;
      }
    }
    for (let i = 0; i < m; i++) {
      index[iOffset + (i0 + i) * iStride] = bestIdx[i];
      let dist = best[i] + pointNorm(x, offset + (i0 + i) * stride, d);
      if (dist < 0) dist = 0;
      if (distance) distance[i0 + i] = dist;
      total += dist;
    }
  }
  return total;
}
