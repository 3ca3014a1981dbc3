/**
 * k-means clustering with a fluent, immutable builder:
 * `kmeans().centroids(16).iterations(25).tolerance(1e-4).init("kmeans++").seed(0).fit(points, d)`.
 *
 * What happens in `fit` (faiss's `Clustering::train` order; see {@link lloyd}):
 * 1. finite check, `k <= n` check;
 * 2. if `n > k * maxPointsPerCentroid`, train on `k * maxPointsPerCentroid` points drawn by a seeded
 *    permutation (faiss's subsampling);
 * 3. initial centroids: `"random"` (k distinct training points, seed `seed + 1`), `"kmeans++"` (greedy,
 *    seed `seed + 1`), `"linear"` (evenly spaced over `[min, max]` of all the points, Deep Compression's) or the
 *    centroids given;
 * 4. Lloyd iterations (assignment, objective, mean update, empty-cluster split), stopping early on an
 *    unchanged assignment or a centroid shift within tolerance;
 * 5. a final assignment of all input points to the final centroids (`assignments`, `inertia`).
 *
 * If `n === k` the centroids are the points (faiss's corner case). Distances are squared Euclidean.
 * Assignment is an argmin, so there is no rounding and no stochastic-rounding option.
 *
 * Weight sharing (Deep Compression, Han, Mao & Dally 2016): the builder is also a {@link WeightQuantizer} (kind
 * `"kmeans"`): `kmeans().bits(4).init("linear").fitWeights(w)` clusters the scalar weight values of the whole
 * tensor (one codebook per tensor, `2^bits` centroids; the op's axis is checked but not used) and returns
 * {@link KMeansWeights}: codes (uint8 up to 256 centroids, else int32) into the float32 `centroids` table.
 * {@link kmeansFromRecipe} reads `toRecipe()`'s JSON. The codebook size is called `centroids` here and in
 * product quantization.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import {
  checkWeights,
  type EncodedWeights,
  FittedWeightsBase,
  numberFromJson,
  numberToJson,
  recipeConfig,
  type WeightFitOptions,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "../quant/weight_quantizer.ts";
import { checkSeed } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { kmeansPlusPlus, linearInit, randomInit, samplePoints } from "./init.ts";
import { lloyd } from "./lloyd.ts";
import { asMatrix, gatherRows, type MatrixInput } from "./matrix.ts";
import { assignNearest, type NearestBackend, prepareCentroids, type PreparedCentroids } from "./nearest.ts";

/** How to choose initial centroids: a named method or the centroids themselves (`k x d`). */
export type KMeansInit = "kmeans++" | "random" | "linear" | Float32Array | Tensor<"float32">;

/** Everything a {@link KMeansBuilder} holds. */
export interface KMeansConfig {
  /** Number of centroids `k`, the codebook size (1..2^24). */
  readonly centroids: number;
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
  /**
   * Nearest-centroid backend (`"simd"` WebAssembly f32x4 where available, `"js"` float64). Squared norms are float64
   * in both; data beyond the float32 kernel's range goes through the float64 path either way (see {@link assignNearest}).
   */
  readonly backend?: NearestBackend;
}

const DEFAULTS: KMeansConfig = Object.freeze({
  centroids: 8,
  iterations: 25,
  tolerance: 1e-4,
  init: "kmeans++",
  seed: 0,
  maxPointsPerCentroid: 256,
});

/**
 * The largest number of k-means centroids accepted.
 *
 * @example
 * ```ts
 * import { MAX_KMEANS_CENTROIDS } from "./kmeans.ts";
 * if (MAX_KMEANS_CENTROIDS !== 2 ** 24) throw new Error("bad");
 * ```
 */
export const MAX_KMEANS_CENTROIDS = 1 << 24;

/**
 * Throw `INVALID_ARGUMENT` unless the centroid count `k` is an integer in `1..max`.
 *
 * @example
 * ```ts
 * import { checkCentroids } from "./kmeans.ts";
 * checkCentroids(8, "centroids");
 * try {
 *   checkCentroids(0, "centroids");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("centroids must")) throw e;
 * }
 * ```
 */
export function checkCentroids(k: number, what: string, max = MAX_KMEANS_CENTROIDS): void {
  if (!Number.isInteger(k) || k < 1 || k > max) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be an integer from 1 to ${max}, got ${k}`);
  }
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
  if (init === "linear") return linearInit(train, n, d, k);
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
 * const m = kmeans().centroids(2).seed(1).fit(new Float32Array([0, 0, 0, 1, 9, 9, 9, 10]), 2);
 * const a = m.assign(new Float32Array([0, 0.4, 9, 9.6]), 2);
 * if (a[0] === a[1] || m.centroids.length !== 4) throw new Error("bad");
 * ```
 */
export class KMeansModel {
  /** Number of centroids. */
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

  /** Each point replaced by its nearest centroid (`n x d`); the codes are {@link KMeansModel.assign}'s. */
  fakeQuantize(points: MatrixInput, d?: number): Float32Array {
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
 * const m = kmeans().centroids(3).init("kmeans++").seed(0).fit(x, 1);
 * const c = [...m.centroids].sort((a, b) => a - b);
 * if (Math.abs(c[0] - 0.1) > 1e-6 || Math.abs(c[1] - 5.1) > 1e-6 || Math.abs(c[2] - 10.05) > 1e-5) {
 *   throw new Error(`bad centroids ${c}`);
 * }
 * ```
 */
export class KMeansBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "kmeans" as const;
  /** The full configuration. */
  readonly config: KMeansConfig;

  /** Use {@link kmeans} to start a builder. */
  constructor(config: KMeansConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<KMeansConfig>): KMeansBuilder {
    return new KMeansBuilder({ ...this.config, ...patch });
  }

  /** Number of centroids `k`, the codebook size (1..2^24). */
  centroids(k: number): KMeansBuilder {
    checkCentroids(k, "centroids (k)");
    return this.#with({ centroids: k });
  }

  /** `2^bits` centroids (bits 1..24), for weight sharing with `bits`-bit codes. */
  bits(bits: number): KMeansBuilder {
    if (!Number.isInteger(bits) || bits < 1 || bits > 24) {
      throw new QuantlabError("BITS_OUT_OF_RANGE", `k-means bits must be an integer from 1 to 24, got ${bits}`);
    }
    return this.centroids(2 ** bits);
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

  /**
   * Initialisation: `"kmeans++"` (default), `"random"`, `"linear"` (evenly spaced over `[min, max]` of all the
   * points, Deep Compression's) or initial centroids (`k x d`).
   */
  init(init: KMeansInit): KMeansBuilder {
    if (
      init !== "kmeans++" && init !== "random" && init !== "linear" && !(init instanceof Float32Array) &&
      !(init instanceof Tensor)
    ) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `init must be "kmeans++", "random", "linear", a Float32Array or a float32 Tensor, got ${String(init)}`,
      );
    }
    return this.#with({ init });
  }

  /** Seed for subsampling, initialisation and empty-cluster repair (an integer; default 0). */
  seed(seed: number): KMeansBuilder {
    checkSeed(seed, "k-means seed");
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
    const c = this.config, k = c.centroids;
    const m = asMatrix(points, d, "points");
    const n = m.rows, dim = m.cols;
    if (k > n) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `centroids (k = ${k}) exceeds the number of points (n = ${n}); give at least k points`,
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
      // linear initialisation spans all the points, not only the training sample
      const init = c.init === "linear"
        ? linearInit(m.data, n, dim, k)
        : initialCentroids(c.init, train.data, train.rows, dim, k, c.seed);
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

  /** `log2(centroids)` (a {@link WeightQuantizer}'s nominal bits per weight: `bits` for `2^bits` centroids). */
  get nominalBits(): number {
    return Math.log2(this.config.centroids);
  }

  /**
   * Weight sharing: cluster the scalar values of `w` (one codebook for the whole tensor; `options.axis` is checked
   * but not used). Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE` or `INVALID_ARGUMENT` (more centroids
   * than weights) naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): KMeansWeights {
    const { name } = checkWeights(w, options);
    if (this.config.centroids > w.size) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${name}: centroids (k = ${this.config.centroids}) exceeds the number of weights (${w.size})`,
      );
    }
    return new KMeansWeights(this.fit(w.data, 1), w, name);
  }

  /** The configuration as JSON (given centroids as a number array, `"Infinity"` for no subsampling). */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    const config: Record<string, unknown> = {
      centroids: c.centroids,
      iterations: c.iterations,
      tolerance: c.tolerance,
      init: typeof c.init === "string" ? c.init : Array.from(c.init instanceof Tensor ? c.init.data : c.init),
      seed: c.seed,
      maxPointsPerCentroid: numberToJson(c.maxPointsPerCentroid),
    };
    if (c.backend !== undefined) config.backend = c.backend;
    return { kind: "kmeans", config };
  }

  /** A readable description of the recipe. */
  toString(): string {
    const c = this.config;
    const init = typeof c.init === "string" ? c.init : "given";
    return `kmeans(k=${c.centroids}, iterations=${c.iterations}, tolerance=${c.tolerance}, init=${init}, seed=${c.seed}, ` +
      `maxPointsPerCentroid=${c.maxPointsPerCentroid}${c.backend ? `, backend=${c.backend}` : ""})`;
  }
}

/**
 * k-means weight sharing fitted by {@link KMeansBuilder.fitWeights}: one code per weight (uint8 up to 256
 * centroids, else int32, same shape as the weight) into the float32 `centroids` table (`k` values).
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const w = Tensor.from([0.1, 0.12, -1, -1.1, 2, 2.05, 0.11, -0.9], [2, 4]);
 * const fw = kmeans().bits(2).init("linear").fitWeights(w, { name: "fc.weight" });
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.bitsPerWeight() !== 2 + (4 * 32) / 8) throw new Error("bad bits"); // 2-bit codes, 4 float32 centroids
 * ```
 */
export class KMeansWeights extends FittedWeightsBase {
  /** Use {@link KMeansBuilder.fitWeights}. */
  constructor(
    /** The fitted model (scalar: `d = 1`). */
    readonly model: KMeansModel,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    super("kmeans", fittedOn, undefined, name);
  }

  /** Each weight replaced by its nearest centroid. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    return new Tensor(this.model.fakeQuantize(t.data, 1), t.shape);
  }

  /** Nearest-centroid codes and the centroids. */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const a = this.model.assign(t.data, 1);
    const codes: EncodedWeights["codes"] = this.model.k <= 256
      ? new Tensor<"uint8">(Uint8Array.from(a), t.shape)
      : new Tensor<"int32">(a, t.shape);
    return { codes, tables: { centroids: this.model.centroids.slice() } };
  }

  /** Stored centroids looked up by code. */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const k = this.model.k;
    const c = this.table(e, "centroids", Float32Array, k);
    const codes = e.codes.data, out = new Float32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const j = codes[i];
      if (!(Number.isInteger(j) && j >= 0 && j < k)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${this.name}: code ${j} at flat index ${i} is not an integer in [0, k = ${k})`,
        );
      }
      out[i] = c[j];
    }
    return new Tensor(out, e.shape);
  }

  /** `ceil(log2 k)` bits per code plus `k` float32 centroids. */
  bitsPerWeight(): number {
    const n = this.fittedOn.size, k = this.model.k;
    return Math.ceil(Math.log2(k)) + (32 * k) / n;
  }

  /** Centroid count, tensor name and shape. */
  toString(): string {
    return `kmeans weights(k=${this.model.k}, inertia=${
      this.model.inertia.toPrecision(6)
    }) on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a k-means quantizer from {@link KMeansBuilder.toRecipe}'s JSON (validated as the builder methods do;
 * `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { kmeans, kmeansFromRecipe } from "./kmeans.ts";
 * const q = kmeans().bits(3).init("linear").maxPointsPerCentroid(Infinity);
 * if (kmeansFromRecipe(JSON.parse(JSON.stringify(q.toRecipe()))).toString() !== q.toString()) throw new Error("bad");
 * ```
 */
export function kmeansFromRecipe(recipe: WeightQuantizerRecipe): KMeansBuilder {
  const c = recipeConfig(recipe, "kmeans");
  let q = kmeans()
    .centroids((c.centroids ?? DEFAULTS.centroids) as number)
    .iterations((c.iterations ?? DEFAULTS.iterations) as number)
    .tolerance((c.tolerance ?? DEFAULTS.tolerance) as number)
    .seed((c.seed ?? DEFAULTS.seed) as number)
    .maxPointsPerCentroid(
      numberFromJson(c.maxPointsPerCentroid ?? DEFAULTS.maxPointsPerCentroid, "maxPointsPerCentroid"),
    );
  const init = c.init ?? DEFAULTS.init;
  q = q.init(Array.isArray(init) ? Float32Array.from(init as number[]) : init as KMeansInit);
  if (c.backend !== undefined) q = q.backend(c.backend as NearestBackend);
  return q;
}

/**
 * Start a k-means recipe (defaults: 8 centroids, 25 iterations, tolerance 1e-4, k-means++ init, seed 0,
 * at most 256 training points per centroid).
 *
 * @example
 * ```ts
 * import { kmeans } from "./kmeans.ts";
 * const b = kmeans().centroids(4).iterations(10);
 * if (b.config.centroids !== 4 || kmeans().config.centroids !== 8) throw new Error("builders must be immutable");
 * ```
 */
export function kmeans(): KMeansBuilder {
  return new KMeansBuilder();
}
