/**
 * k-means clustering with a fluent, immutable builder:
 * `kmeans().clusters(16).iterations(25).tolerance(1e-4).init("kmeans++").seed(0).fit(points, d)`.
 *
 * What happens in `fit` (faiss's `Clustering::train` order; see {@link lloyd}):
 * 1. finite check, `k <= n` check;
 * 2. if `n > k * maxPointsPerCentroid`, train on `k * maxPointsPerCentroid` points drawn by a seeded
 *    permutation (faiss's subsampling);
 * 3. initial centroids: `"random"` (k distinct training points, seed `seed + 1`), `"kmeans++"` (greedy,
 *    seed `seed + 1`) or the centroids given;
 * 4. Lloyd iterations (assignment, objective, mean update, empty-cluster split), stopping early on an
 *    unchanged assignment or a centroid shift within tolerance;
 * 5. a final assignment of all input points to the final centroids (`assignments`, `inertia`).
 *
 * If `n === k` the centroids are the points (faiss's corner case). Distances are squared Euclidean.
 * Assignment is an argmin, so there is no rounding and no stochastic-rounding option.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";
import { kmeansPlusPlus, randomInit, samplePoints } from "./init.ts";
import { lloyd } from "./lloyd.ts";
import { asMatrix, gatherRows, type MatrixInput } from "./matrix.ts";
import { assignNearest, type NearestBackend, prepareCentroids, type PreparedCentroids } from "./nearest.ts";

/** How to choose initial centroids: a named method or the centroids themselves (`k x d`). */
export type KMeansInit = "kmeans++" | "random" | Float32Array | Tensor<"float32">;

/** Everything a {@link KMeansBuilder} holds. */
export interface KMeansConfig {
  /** Number of clusters `k` (1..2^24). */
  readonly clusters: number;
  /** Maximum Lloyd iterations. */
  readonly iterations: number;
  /** Relative centroid-shift tolerance (scikit-learn's rule); 0 runs until the assignment is stable. */
  readonly tolerance: number;
  /** Initialisation. */
  readonly init: KMeansInit;
  /** Seed of subsampling, initialisation and empty-cluster repair. */
  readonly seed: number;
  /** Train on at most `k * maxPointsPerCentroid` points (`Infinity`: all). */
  readonly maxPointsPerCentroid: number;
  /** Nearest-centroid backend (`"simd"` WebAssembly f32x4 where available, `"js"` float64). */
  readonly backend?: NearestBackend;
}

const DEFAULTS: KMeansConfig = Object.freeze({
  clusters: 8,
  iterations: 25,
  tolerance: 1e-4,
  init: "kmeans++",
  seed: 0,
  maxPointsPerCentroid: 256,
});

/**
 * The largest number of clusters accepted.
 *
 * @example
 * ```ts
 * import { MAX_CLUSTERS } from "./kmeans.ts";
 * if (MAX_CLUSTERS !== 2 ** 24) throw new Error("bad");
 * ```
 */
export const MAX_CLUSTERS = 1 << 24;

/**
 * Throw `INVALID_ARGUMENT` unless `k` is an integer in `1..max`.
 *
 * @example
 * ```ts
 * import { checkClusters } from "./kmeans.ts";
 * checkClusters(8, "clusters");
 * try {
 *   checkClusters(0, "clusters");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("clusters must")) throw e;
 * }
 * ```
 */
export function checkClusters(k: number, what: string, max = MAX_CLUSTERS): void {
  if (!Number.isInteger(k) || k < 1 || k > max) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be an integer from 1 to ${max}, got ${k}`);
  }
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed)) throw new QuantlabError("INVALID_ARGUMENT", `seed must be an integer, got ${seed}`);
}

/**
 * Points to cluster: the training sample (after subsampling) and initial centroids, shared by k-means and
 * product quantization.
 */
export interface TrainingSet {
  /** Training points, `rows x d`. */
  readonly data: Float32Array;
  /** Number of training points. */
  readonly rows: number;
}

/**
 * faiss's subsampling: all points if `n <= k * maxPointsPerCentroid`, else that many drawn by a seeded
 * permutation.
 *
 * @example
 * ```ts
 * import { subsample } from "./kmeans.ts";
 * const t = subsample(new Float32Array(100), 100, 1, 2, 10, 0);
 * if (t.rows !== 20) throw new Error("bad");
 * ```
 */
export function subsample(
  x: Float32Array,
  n: number,
  d: number,
  k: number,
  maxPointsPerCentroid: number,
  seed: number,
): TrainingSet {
  const cap = k * maxPointsPerCentroid;
  if (!(n > cap)) return { data: x, rows: n };
  const idx = samplePoints(n, cap, seed);
  return { data: gatherRows(x, d, idx, cap), rows: cap };
}

/**
 * Initial centroids for `init` over a training set (validated against `k x d`).
 *
 * @example
 * ```ts
 * import { initialCentroids } from "./kmeans.ts";
 * const train = new Float32Array([0, 0, 1, 1, 5, 5]); // 3 points in 2-D
 * if (initialCentroids("kmeans++", train, 3, 2, 2, 0).length !== 4) throw new Error("bad");
 * const given = initialCentroids(new Float32Array([0, 0, 5, 5]), train, 3, 2, 2, 0);
 * if (given.join() !== "0,0,5,5") throw new Error("bad");
 * ```
 */
export function initialCentroids(
  init: KMeansInit,
  train: Float32Array,
  n: number,
  d: number,
  k: number,
  seed: number,
): Float32Array {
  if (init === "random") return randomInit(train, n, d, k, seed + 1);
  if (init === "kmeans++") return kmeansPlusPlus(train, n, d, k, seed + 1);
  const c = asMatrix(init, d, "initial centroids");
  if (c.rows !== k) {
    throw new QuantlabError("SHAPE_MISMATCH", `initial centroids hold ${c.rows} centroids, expected k = ${k}`);
  }
  return c.data.slice();
}

/**
 * A fitted k-means model.
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const m = kmeans().clusters(2).seed(1).fit(new Float32Array([0, 0, 0, 1, 9, 9, 9, 10]), 2);
 * const a = m.assign(new Float32Array([0, 0.4, 9, 9.6]), 2);
 * if (a[0] === a[1] || m.centroids.length !== 4) throw new Error("bad");
 * ```
 */
export class KMeansModel {
  /** Number of clusters. */
  readonly k: number;
  /** Dimension. */
  readonly d: number;
  /** Centroids, row-major `k x d`. */
  readonly centroids: Float32Array;
  /** Nearest final centroid of every input point. */
  readonly assignments: Int32Array;
  /** Sum of squared distances of all input points to their nearest final centroid. */
  readonly inertia: number;
  /** Objective (sum of squared distances over the training points) at the start of each Lloyd iteration. */
  readonly objective: readonly number[];
  /** Empty clusters repaired in each iteration. */
  readonly splits: readonly number[];
  /** Whether iterations stopped early (stable assignment or shift within tolerance). */
  readonly converged: boolean;
  /** Number of points trained on (after subsampling). */
  readonly trainingPoints: number;
  #prepared: PreparedCentroids | null = null;
  readonly #backend: NearestBackend | undefined;

  /** Use {@link kmeans} to fit one. */
  constructor(fields: {
    k: number;
    d: number;
    centroids: Float32Array;
    assignments: Int32Array;
    inertia: number;
    objective: readonly number[];
    splits: readonly number[];
    converged: boolean;
    trainingPoints: number;
    backend?: NearestBackend;
  }) {
    this.k = fields.k;
    this.d = fields.d;
    this.centroids = fields.centroids;
    this.assignments = fields.assignments;
    this.inertia = fields.inertia;
    this.objective = Object.freeze([...fields.objective]);
    this.splits = Object.freeze([...fields.splits]);
    this.converged = fields.converged;
    this.trainingPoints = fields.trainingPoints;
    this.#backend = fields.backend;
  }

  /** Index of the nearest centroid of each point (ties -> lowest index). */
  assign(points: MatrixInput, d?: number): Int32Array {
    const m = asMatrix(points, d ?? this.d, "points");
    if (m.cols !== this.d) {
      throw new QuantlabError("SHAPE_MISMATCH", `points have dimension ${m.cols}, the model has ${this.d}`);
    }
    this.#prepared ??= prepareCentroids(this.centroids, this.k, this.d);
    const index = new Int32Array(m.rows);
    assignNearest(this.#prepared, { points: m.data, n: m.rows, index, backend: this.#backend });
    return index;
  }

  /** Each point replaced by its nearest centroid (`n x d`). */
  quantize(points: MatrixInput, d?: number): Float32Array {
    const a = this.assign(points, d);
    const out = new Float32Array(a.length * this.d);
    for (let i = 0; i < a.length; i++) {
      out.set(this.centroids.subarray(a[i] * this.d, a[i] * this.d + this.d), i * this.d);
    }
    return out;
  }

  /** The centroids as a `[k, d]` tensor (shares the data). */
  centroidsTensor(): Tensor<"float32"> {
    return new Tensor(this.centroids, [this.k, this.d], "centroids");
  }

  /** A one-line summary. */
  toString(): string {
    return `KMeansModel(k=${this.k}, d=${this.d}, iterations=${this.objective.length}, inertia=${
      this.inertia.toPrecision(6)
    })`;
  }
}

/**
 * An immutable k-means recipe. Every method returns a new builder and validates its argument.
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const x = new Float32Array([0, 0.2, 0.1, 5, 5.2, 5.1, 10, 10.1]);
 * const m = kmeans().clusters(3).init("kmeans++").seed(0).fit(x, 1);
 * const c = [...m.centroids].sort((a, b) => a - b);
 * if (Math.abs(c[0] - 0.1) > 1e-6 || Math.abs(c[1] - 5.1) > 1e-6 || Math.abs(c[2] - 10.05) > 1e-5) {
 *   throw new Error(`bad centroids ${c}`);
 * }
 * ```
 */
export class KMeansBuilder {
  /** The full configuration. */
  readonly config: KMeansConfig;

  /** Use {@link kmeans} to start a builder. */
  constructor(config: KMeansConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<KMeansConfig>): KMeansBuilder {
    return new KMeansBuilder({ ...this.config, ...patch });
  }

  /** Number of clusters `k` (1..2^24). */
  clusters(k: number): KMeansBuilder {
    checkClusters(k, "clusters (k)");
    return this.#with({ clusters: k });
  }

  /** Maximum Lloyd iterations (a non-negative integer; default 25). */
  iterations(n: number): KMeansBuilder {
    if (!Number.isInteger(n) || n < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `iterations must be a non-negative integer, got ${n}`);
    }
    return this.#with({ iterations: n });
  }

  /** Relative centroid-shift tolerance (>= 0; default 1e-4, scikit-learn's). */
  tolerance(t: number): KMeansBuilder {
    if (!(t >= 0) || !Number.isFinite(t)) {
      throw new QuantlabError("INVALID_ARGUMENT", `tolerance must be a finite number >= 0, got ${t}`);
    }
    return this.#with({ tolerance: t });
  }

  /** Initialisation: `"kmeans++"` (default), `"random"`, or initial centroids (`k x d`). */
  init(init: KMeansInit): KMeansBuilder {
    if (init !== "kmeans++" && init !== "random" && !(init instanceof Float32Array) && !(init instanceof Tensor)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `init must be "kmeans++", "random", a Float32Array or a float32 Tensor, got ${String(init)}`,
      );
    }
    return this.#with({ init });
  }

  /** Seed for subsampling, initialisation and empty-cluster repair (an integer; default 0). */
  seed(seed: number): KMeansBuilder {
    checkSeed(seed);
    return this.#with({ seed });
  }

  /** Train on at most `k * m` points, drawn with the seed (default 256, faiss's; `Infinity` for all). */
  maxPointsPerCentroid(m: number): KMeansBuilder {
    if (!(m === Infinity || (Number.isInteger(m) && m >= 1))) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `maxPointsPerCentroid must be a positive integer or Infinity, got ${m}`,
      );
    }
    return this.#with({ maxPointsPerCentroid: m });
  }

  /** Nearest-centroid backend: `"simd"` (WebAssembly f32x4, default where available) or `"js"` (float64). */
  backend(b: NearestBackend): KMeansBuilder {
    if (b !== "simd" && b !== "js") {
      throw new QuantlabError("INVALID_ARGUMENT", `backend must be "simd" or "js", got ${String(b)}`);
    }
    return this.#with({ backend: b });
  }

  /** Cluster `points` (`[n, d]` tensor, or flat row-major data with the dimension `d`). */
  fit(points: MatrixInput, d?: number): KMeansModel {
    const c = this.config, k = c.clusters;
    const m = asMatrix(points, d, "points");
    const n = m.rows, dim = m.cols;
    if (k > n) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `clusters (k = ${k}) exceeds the number of points (n = ${n}); give at least k points`,
      );
    }
    const train = subsample(m.data, n, dim, k, c.maxPointsPerCentroid, c.seed);
    let centroids: Float32Array;
    let objective: number[] = [], splits: number[] = [];
    let converged = false;
    if (train.rows === k && typeof c.init === "string") {
      centroids = train.data.slice();
      objective = [0];
      splits = [0];
      converged = true;
    } else {
      const init = initialCentroids(c.init, train.data, train.rows, dim, k, c.seed);
      const r = lloyd(train.data, train.rows, dim, k, init, {
        iterations: c.iterations,
        tolerance: c.tolerance,
        seed: c.seed,
        backend: c.backend,
      });
      centroids = r.centroids;
      objective = r.objective;
      splits = r.splits;
      converged = r.converged;
    }
    const assignments = new Int32Array(n);
    const inertia = assignNearest(prepareCentroids(centroids, k, dim), {
      points: m.data,
      n,
      index: assignments,
      backend: c.backend,
    });
    return new KMeansModel({
      k,
      d: dim,
      centroids,
      assignments,
      inertia,
      objective,
      splits,
      converged,
      trainingPoints: train.rows,
      backend: c.backend,
    });
  }

  /** A readable description of the recipe. */
  toString(): string {
    const c = this.config;
    const init = typeof c.init === "string" ? c.init : "given";
    return `kmeans(k=${c.clusters}, iterations=${c.iterations}, tolerance=${c.tolerance}, init=${init}, seed=${c.seed}, ` +
      `maxPointsPerCentroid=${c.maxPointsPerCentroid}${c.backend ? `, backend=${c.backend}` : ""})`;
  }
}

/**
 * Start a k-means recipe (defaults: 8 clusters, 25 iterations, tolerance 1e-4, k-means++ init, seed 0,
 * at most 256 training points per centroid).
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const b = kmeans().clusters(4).iterations(10);
 * if (b.config.clusters !== 4 || kmeans().config.clusters !== 8) throw new Error("builders must be immutable");
 * ```
 */
export function kmeans(): KMeansBuilder {
  return new KMeansBuilder();
}
