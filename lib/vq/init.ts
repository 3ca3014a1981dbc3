/**
 * Seeded k-means initialisation and training-set subsampling.
 *
 * - {@link samplePoints}: the first `count` entries of a seeded random permutation (partial Fisher-Yates),
 *   the way faiss subsamples (`rand_perm`, then the first `k * max_points_per_centroid`) and picks random
 *   initial centroids (the first `k` of a permutation seeded with `seed + 1`). The generator is quantlab's
 *   xoshiro128**, so the chosen points differ from faiss's (mt19937) for the same seed.
 * - {@link kmeansPlusPlus}: greedy k-means++ as scikit-learn does it (Arthur & Vassilvitskii's D^2
 *   sampling, with `2 + floor(ln k)` candidates per step keeping the one that lowers the potential most).
 * - {@link linearInit}: `k` centroids evenly spaced over `[min, max]` of each coordinate, Deep Compression's
 *   linear initialisation of shared weights (Han, Mao & Dally 2016, section 3.1: it keeps the large weights,
 *   which density-based initialisations under-represent, and worked best there).
 *
 * @module
 */
import { Prng } from "../tensor/prng.ts";

/**
 * Indices of `count` distinct points out of `n`, in the order a seeded permutation gives them.
 *
 * @example
 * ```ts
 * import { samplePoints } from "./init.ts";
 * const s = samplePoints(10, 4, 7);
 * if (s.length !== 4 || new Set(s).size !== 4) throw new Error("bad");
 * if (samplePoints(10, 4, 7).join() !== s.join()) throw new Error("not deterministic");
 * ```
 */
export function samplePoints(n: number, count: number, seed: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const prng = new Prng(seed);
  for (let i = 0; i < count; i++) {
    const j = i + prng.nextInt(n - i);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, count);
}

/**
 * `k` distinct points chosen uniformly at random (seeded) as initial centroids (`k x d`).
 *
 * @example
 * ```ts
 * import { randomInit } from "./init.ts";
 * const c = randomInit(new Float32Array([0, 1, 2, 3, 4]), 5, 1, 2, 0);
 * if (c.length !== 2 || c[0] === c[1]) throw new Error("bad");
 * ```
 */
export function randomInit(x: Float32Array, n: number, d: number, k: number, seed: number): Float32Array {
  const idx = samplePoints(n, k, seed);
  const out = new Float32Array(k * d);
  for (let c = 0; c < k; c++) out.set(x.subarray(idx[c] * d, idx[c] * d + d), c * d);
  return out;
}

function sqDist(x: Float32Array, a: number, b: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const e = x[a + j] - x[b + j];
    s += e * e;
  }
  return s;
}

/**
 * Greedy k-means++ seeding (`k x d` centroids chosen among the points), float64 distances.
 *
 * `trials` candidates are drawn per step with probability proportional to the squared distance to the
 * nearest chosen centroid; the one giving the lowest total potential is kept (default, as scikit-learn:
 * `2 + floor(ln k)`; `trials = 1` is the original k-means++).
 *
 * @example
 * ```ts
 * import { kmeansPlusPlus } from "./init.ts";
 * // two far groups: k-means++ picks one point from each
 * const x = new Float32Array([0, 0.1, 0.2, 100, 100.1, 100.2]);
 * const c = kmeansPlusPlus(x, 6, 1, 2, 3);
 * if (Math.abs(c[0] - c[1]) < 50) throw new Error("bad seeding");
 * ```
 */
export function kmeansPlusPlus(
  x: Float32Array,
  n: number,
  d: number,
  k: number,
  seed: number,
  trials: number = 2 + Math.floor(Math.log(k)),
): Float32Array {
  const prng = new Prng(seed);
  const out = new Float32Array(k * d);
  const closest = new Float64Array(n);
  const cand = new Float64Array(n);
  const best = new Float64Array(n);
  const cum = new Float64Array(n);
  let first = prng.nextInt(n);
  out.set(x.subarray(first * d, first * d + d), 0);
  let pot = 0;
  for (let i = 0; i < n; i++) pot += closest[i] = sqDist(x, i * d, first * d, d);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) cum[i] = acc += closest[i];
    let bestPot = Infinity;
    first = -1;
    for (let t = 0; t < trials; t++) {
      let pick: number;
      if (pot > 0) {
        const r = prng.nextFloat() * pot;
        let lo = 0, hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cum[mid] > r) hi = mid;
          else lo = mid + 1;
        }
        pick = lo;
      } else {
        pick = prng.nextInt(n);
      }
      let p = 0;
      for (let i = 0; i < n; i++) {
        const dd = sqDist(x, i * d, pick * d, d);
        const v = dd < closest[i] ? dd : closest[i];
        cand[i] = v;
        p += v;
      }
      if (p < bestPot) {
        bestPot = p;
        first = pick;
        best.set(cand);
      }
    }
    out.set(x.subarray(first * d, first * d + d), c * d);
    closest.set(best);
    pot = bestPot;
  }
  return out;
}

/**
 * Linear initialisation (Deep Compression): centroid `i` of `k` has coordinate `j` equal to
 * `min_j + (max_j - min_j) * i / (k - 1)` over the points (float64, stored float32; `k = 1` takes the midpoint).
 *
 * @example
 * ```ts
 * import { linearInit } from "./init.ts";
 * const c = linearInit(new Float32Array([-1, 0.2, 3, 0.5]), 4, 1, 3);
 * if (c.join() !== "-1,1,3") throw new Error(c.join());
 * ```
 */
export function linearInit(x: Float32Array, n: number, d: number, k: number): Float32Array {
  const out = new Float32Array(k * d);
  for (let j = 0; j < d; j++) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = x[i * d + j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (let c = 0; c < k; c++) out[c * d + j] = k === 1 ? (lo + hi) / 2 : lo + ((hi - lo) * c) / (k - 1);
  }
  return out;
}
