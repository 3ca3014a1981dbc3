/**
 * Lloyd's k-means iterations, following faiss's `Clustering::train` step by step:
 *
 * 1. assign every training point to its nearest centroid ({@link assignNearest}: blocked
 *    `||x||^2 - 2 x.c + ||c||^2` product, ties -> lowest index) and record the objective (sum of squared
 *    distances, float64) *before* the update;
 * 2. move each centroid to the mean of its points (float64 sums, stored float32);
 * 3. repair empty clusters as faiss's `split_clusters` does: pick a cluster `j` with probability
 *    `(size_j - 1) / (n - k)` (scanning cyclically with a seeded generator), copy its centroid and perturb
 *    the two copies symmetrically by a factor `1 +- 1/1024` alternating over coordinates, and split its
 *    count in two.
 *
 * Stopping: after `iterations` rounds, or earlier when the assignment no longer changes (the update would
 * be a no-op), or, with `tolerance > 0`, when the total squared centroid shift is at most
 * `tolerance * mean per-coordinate variance of the training data` (scikit-learn's rule).
 *
 * @module
 */
import { Prng } from "../tensor/prng.ts";
import { assignNearest, type NearestBackend, prepareCentroids } from "./nearest.ts";

/** Settings of {@link lloyd}. */
export interface LloydOptions {
  /** Maximum number of iterations (>= 0). */
  readonly iterations: number;
  /** Relative shift tolerance (0: only stop on an unchanged assignment). */
  readonly tolerance: number;
  /** Seed of the empty-cluster repair. */
  readonly seed: number;
  /** Nearest-centroid backend. */
  readonly backend?: NearestBackend;
}

/** What {@link lloyd} returns. */
export interface LloydResult {
  /** Final centroids, `k x d` (the input array is not modified). */
  readonly centroids: Float32Array;
  /** Objective (sum of squared distances to the assigned centroid) at the start of each iteration. */
  readonly objective: number[];
  /** Empty clusters repaired in each iteration. */
  readonly splits: number[];
  /** Whether it stopped before the iteration limit (assignment stable or shift within tolerance). */
  readonly converged: boolean;
}

/**
 * Run Lloyd iterations on `n` points (`x`, `n x d`) from initial centroids `init` (`k x d`).
 *
 * @example
 * ```ts
 * import { lloyd } from "./lloyd.ts";
 * const x = new Float32Array([0, 1, 10, 11]);
 * const r = lloyd(x, 4, 1, 2, new Float32Array([0, 1]), { iterations: 10, tolerance: 0, seed: 0 });
 * if (r.centroids.join() !== "0.5,10.5" || !r.converged) throw new Error("bad");
 * ```
 */
export function lloyd(
  x: Float32Array,
  n: number,
  d: number,
  k: number,
  init: Float32Array,
  options: LloydOptions,
): LloydResult {
  let centroids = init.slice();
  const objective: number[] = [];
  const splits: number[] = [];
  let assign = new Int32Array(n);
  let previous = new Int32Array(n);
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  let tolAbs = 0;
  if (options.tolerance > 0) tolAbs = options.tolerance * meanVariance(x, n, d);
  let converged = false;
  let lastSplit = 0;
  for (let it = 0; it < options.iterations; it++) {
    const prepared = prepareCentroids(centroids, k, d);
    objective.push(assignNearest(prepared, { points: x, n, index: assign, backend: options.backend }));
    if (it > 0 && lastSplit === 0 && sameAssignment(assign, previous)) {
      converged = true;
      break;
    }
    // Update: mean of the assigned points.
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assign[i], o = c * d, xo = i * d;
      counts[c]++;
      for (let j = 0; j < d; j++) sums[o + j] += x[xo + j];
    }
    const next = new Float32Array(k * d);
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue;
      const inv = 1 / counts[c], o = c * d;
      for (let j = 0; j < d; j++) next[o + j] = sums[o + j] * inv;
    }
    lastSplit = splitClusters(next, counts, n, k, d, options.seed);
    splits.push(lastSplit);
    let shift = 0;
    for (let i = 0; i < k * d; i++) {
      const e = next[i] - centroids[i];
      shift += e * e;
    }
    centroids = next;
    const t = previous;
    previous = assign;
    assign = t;
    if (options.tolerance > 0 && shift <= tolAbs) {
      converged = true;
      break;
    }
  }
  return { centroids, objective, splits, converged };
}

function sameAssignment(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Mean over coordinates of the per-coordinate variance (float64, two passes).
 *
 * @example
 * ```ts
 * import { meanVariance } from "./lloyd.ts";
 * // Coordinate 0 holds {0, 2} (variance 1), coordinate 1 holds {0, 4} (variance 4).
 * if (meanVariance(new Float32Array([0, 0, 2, 4]), 2, 2) !== 2.5) throw new Error("bad");
 * ```
 */
export function meanVariance(x: Float32Array, n: number, d: number): number {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  let v = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const e = x[i * d + j] - mean[j];
      v += e * e;
    }
  }
  return v / n / d;
}

/** faiss's relative perturbation of a split centroid ("a bit above machine epsilon for float16"). */
const EPS = 1 / 1024;

/**
 * Repair empty clusters in place (faiss `split_clusters`); returns how many were repaired.
 *
 * @example
 * ```ts
 * import { splitClusters } from "./lloyd.ts";
 * const c = new Float32Array([1, 1, 0, 0]); // cluster 1 is empty
 * const counts = new Float64Array([4, 0]);
 * if (splitClusters(c, counts, 4, 2, 2, 0) !== 1 || counts[0] !== 2 || counts[1] !== 2) throw new Error("bad");
 * if (c[2] === c[0] || Math.abs(c[2] - 1) > 0.01) throw new Error("not split");
 * ```
 */
export function splitClusters(
  centroids: Float32Array,
  counts: Float64Array,
  n: number,
  k: number,
  d: number,
  seed: number,
): number {
  let nsplit = 0;
  let prng: Prng | null = null;
  for (let ci = 0; ci < k; ci++) {
    if (counts[ci] !== 0) continue;
    prng ??= new Prng(seed + 1234);
    let cj = 0;
    for (;; cj = (cj + 1) % k) {
      const p = (counts[cj] - 1) / (n - k);
      if (prng.nextFloat() < p) break;
    }
    const oi = ci * d, oj = cj * d;
    for (let j = 0; j < d; j++) {
      const v = centroids[oj + j];
      if (j % 2 === 0) {
        centroids[oi + j] = v * (1 + EPS);
        centroids[oj + j] = v * (1 - EPS);
      } else {
        centroids[oi + j] = v * (1 - EPS);
        centroids[oj + j] = v * (1 + EPS);
      }
    }
    counts[ci] = counts[cj] / 2;
    counts[cj] -= counts[ci];
    nsplit++;
  }
  return nsplit;
}
