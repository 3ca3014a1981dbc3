/**
 * Product quantization (Jégou, Douze & Schmid 2011), as faiss's `ProductQuantizer`: a vector of dimension
 * `d` is cut into `M` sub-vectors of `dsub = d / M` coordinates; sub-space `m` has its own codebook of `K`
 * centroids learned by k-means ({@link lloyd}) on that sub-vector of the training points; a vector is
 * stored as `M` centroid indices (Uint8Array when `K <= 256`, Uint16Array up to 65536).
 *
 * `productQuantizer().subvectors(8).centroids(256).iterations(25).seed(0).fit(matrix)` trains like faiss:
 * at most `K * maxPointsPerCentroid` training points (one seeded sample shared by all sub-spaces), random
 * initial centroids, `iterations` Lloyd rounds per sub-space. Encoding is an exact argmin (ties -> lowest
 * index) of the blocked `||x||^2 - 2 x.c + ||c||^2` distances; there is nothing to round stochastically.
 *
 * Weights (the builder is a {@link WeightQuantizer}, kind `"product"`): `fitWeights(w, { axis })` cuts the weight
 * into blocks as "And the Bit Goes Down" (Stock et al., ICLR 2020) does ({@link weightToBlocks}: for each output
 * channel `axis`, blocks of `blockSize` values along the input side; default block size 9 = `kh * kw` for 3x3
 * convolutions, 4 for 1x1 convolutions and fully connected layers) and learns one codebook of `centroids` blocks
 * shared by all blocks of the tensor (the paper's; `subvectors` applies only to `fit(matrix)`). It returns
 * {@link ProductWeights}: one code per block (uint8 up to 256 centroids, else int32) into the float32 `codebooks`
 * table (`[1, centroids, blockSize]`). {@link productFromRecipe} reads `toRecipe()`'s JSON.
 *
 * Validation (nothing answers NaN or reads another sub-space's table in silence): codebooks must be finite
 * (`NON_FINITE`, at construction and in a stored form given to `ProductWeights.decode`), queries must be finite, and
 * codes given to `decode`/`asymmetricDistances` must be a Uint8Array/Uint16Array of `n x M` integers below `K`
 * (`INVALID_ARGUMENT` naming the first bad code, its flat index, vector and sub-space).
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
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
import { axisView } from "../tensor/layout.ts";
import { checkSeed } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type CompressionReport, pqCompression } from "./compression.ts";
import { checkCentroids, initialCentroids, subsample } from "./kmeans.ts";
import { lloyd } from "./lloyd.ts";
import { asMatrix, type MatrixInput, sliceColumns } from "./matrix.ts";
import { assignNearest, type NearestBackend, prepareCentroids, type PreparedCentroids } from "./nearest.ts";
import { type BlockOrder, blocksToWeight, weightToBlocks } from "./weight_layout.ts";

/** Codes of `n` vectors: `n x M` indices, row-major. */
export type PqCodeArray = Uint8Array | Uint16Array;

/** Encoded vectors. */
export interface PqCodes {
  /** `n x M` centroid indices, row-major (Uint8Array for `K <= 256`, else Uint16Array). */
  readonly codes: PqCodeArray;
  /** Number of vectors. */
  readonly n: number;
  /** Sub-vectors per vector. */
  readonly M: number;
}

/** Everything a {@link ProductQuantizerBuilder} holds. */
export interface ProductQuantizerConfig {
  /** Number of sub-vectors `M` (must divide the dimension). */
  readonly subvectors: number;
  /** Centroids per sub-space `K` (1..65536). */
  readonly centroids: number;
  /** Lloyd iterations per sub-space. */
  readonly iterations: number;
  /** Relative centroid-shift tolerance (default 0: run all iterations unless the assignment is stable). */
  readonly tolerance: number;
  /** Seed of subsampling, initialisation and empty-cluster repair. */
  readonly seed: number;
  /** Train on at most `K * maxPointsPerCentroid` vectors (`Infinity`: all). */
  readonly maxPointsPerCentroid: number;
  /** Initial centroids per sub-space. */
  readonly init: "random" | "kmeans++" | "linear";
  /** Nearest-centroid backend. */
  readonly backend?: NearestBackend;
  /** `fitWeights` only: values per block (`undefined`: 9 = `kh * kw` for 3x3 convs, else 4). */
  readonly blockSize?: number;
  /** `fitWeights` only: how blocks run through the input side (see {@link weightToBlocks}; default `"flat"`). */
  readonly blockOrder?: BlockOrder;
}

const DEFAULTS: ProductQuantizerConfig = Object.freeze({
  subvectors: 8,
  centroids: 256,
  iterations: 25,
  tolerance: 0,
  seed: 0,
  maxPointsPerCentroid: 256,
  init: "random",
});

/**
 * Largest `K` (codes are stored in 16 bits).
 *
 * @example
 * ```ts
 * import { MAX_PQ_CENTROIDS } from "./product_quantizer.ts";
 * if (MAX_PQ_CENTROIDS !== 2 ** 16) throw new Error("bad");
 * ```
 */
export const MAX_PQ_CENTROIDS = 65536;

/** Reconstruction error of vectors against their decoded codes. */
export interface ReconstructionError {
  /** Mean squared error per coordinate. */
  readonly mse: number;
  /** Mean over vectors of `||x - decode(encode(x))||^2` (what faiss benchmarks call MSE). */
  readonly squaredErrorPerVector: number;
  /** Total squared error over total squared norm. */
  readonly relative: number;
}

/**
 * A trained (or given) product quantizer.
 *
 * @example
 * ```ts
 * import { ProductQuantizer } from "./product_quantizer.ts";
 * // d = 4, M = 2 sub-spaces of 2 coordinates, K = 2 centroids each
 * const pq = ProductQuantizer.fromCodebooks(new Float32Array([0, 0, 1, 1, 5, 5, -5, -5]), 2, 2, 4);
 * const { codes } = pq.encode(new Float32Array([0.9, 1.2, -4, -6]), 4);
 * if (codes.join() !== "1,1") throw new Error("bad codes");
 * if (pq.decode(codes).toArray().join() !== "1,1,-5,-5") throw new Error("bad decode");
 * ```
 */
export class ProductQuantizer {
  /** Sub-vectors per vector. */
  readonly M: number;
  /** Centroids per sub-space. */
  readonly K: number;
  /** Vector dimension. */
  readonly d: number;
  /** Sub-vector dimension `d / M`. */
  readonly dsub: number;
  /** Codebooks, `M x K x dsub` (faiss's `centroids` layout). */
  readonly codebooks: Float32Array;
  /** Per sub-space, the k-means objective at the start of each iteration (empty when given codebooks). */
  readonly objectives: readonly (readonly number[])[];
  readonly #prepared: PreparedCentroids[];
  readonly #backend: NearestBackend | undefined;

  /** Use {@link productQuantizer} or {@link ProductQuantizer.fromCodebooks}. */
  constructor(
    codebooks: Float32Array,
    M: number,
    K: number,
    d: number,
    objectives: readonly (readonly number[])[] = [],
    backend?: NearestBackend,
  ) {
    checkSubvectors(M, d);
    checkCentroids(K, "centroids (K)", MAX_PQ_CENTROIDS);
    if (codebooks.length !== K * d) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `codebooks hold ${codebooks.length} values, expected M x K x dsub = ${M} x ${K} x ${d / M} = ${K * d}`,
      );
    }
    assertFinite(codebooks, "PQ codebooks");
    this.M = M;
    this.K = K;
    this.d = d;
    this.dsub = d / M;
    this.codebooks = codebooks;
    this.objectives = Object.freeze(objectives.map((o) => Object.freeze([...o])));
    this.#backend = backend;
    this.#prepared = [];
    for (let m = 0; m < M; m++) {
      const cb = codebooks.subarray(m * K * this.dsub, (m + 1) * K * this.dsub);
      this.#prepared.push(prepareCentroids(cb, K, this.dsub));
    }
  }

  /** A quantizer from given codebooks (`M x K x dsub`, e.g. faiss's `pq.centroids`). */
  static fromCodebooks(codebooks: Float32Array, M: number, K: number, d: number): ProductQuantizer {
    return new ProductQuantizer(codebooks, M, K, d);
  }

  /** Codebook of sub-space `m` (`K x dsub`, a view). */
  codebook(m: number): Float32Array {
    return this.codebooks.subarray(m * this.K * this.dsub, (m + 1) * this.K * this.dsub);
  }

  /** Nearest centroid per sub-vector: `n x M` codes. */
  encode(x: MatrixInput, d?: number): PqCodes {
    const mat = this.#matrix(x, d);
    const n = mat.rows;
    const codes = this.K <= 256 ? new Uint8Array(n * this.M) : new Uint16Array(n * this.M);
    for (let m = 0; m < this.M; m++) {
      assignNearest(this.#prepared[m], {
        points: mat.data,
        n,
        stride: this.d,
        offset: m * this.dsub,
        index: codes,
        indexStride: this.M,
        indexOffset: m,
        backend: this.#backend,
      });
    }
    return { codes, n, M: this.M };
  }

  /**
   * Vectors rebuilt from codes (`[n, d]`). Throws `SHAPE_MISMATCH` (not `n x M` codes) or `INVALID_ARGUMENT`
   * naming the first code that is not an integer in `[0, K)` (vector, sub-space, flat index and value).
   */
  decode(codes: PqCodes | PqCodeArray): Tensor<"float32"> {
    const c = this.#codes(codes);
    const n = c.length / this.M, M = this.M, K = this.K, dsub = this.dsub, cb = this.codebooks;
    const out = new Float32Array(n * this.d);
    for (let i = 0; i < n; i++) {
      for (let m = 0; m < M; m++) {
        const code = c[i * M + m];
        const src = (m * K + code) * dsub, dst = i * this.d + m * dsub;
        for (let j = 0; j < dsub; j++) out[dst + j] = cb[src + j];
      }
    }
    return new Tensor(out, [n, this.d], "decoded");
  }

  /**
   * Asymmetric distance table of one query: `table[m * K + k] = ||q_m - c_{m,k}||^2` (float64 sums of
   * differences, stored float32). Throws `SHAPE_MISMATCH` for a query of another length and `NON_FINITE` naming
   * the first NaN or infinite query value.
   */
  distanceTable(query: Float32Array | readonly number[]): Float32Array {
    if (query.length !== this.d) {
      throw new QuantlabError("SHAPE_MISMATCH", `query has ${query.length} values, expected d = ${this.d}`);
    }
    const q = query instanceof Float32Array ? query : Float32Array.from(query);
    assertFinite(q, "PQ query");
    const { M, K, dsub } = this, cb = this.codebooks;
    const table = new Float32Array(M * K);
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) {
        let s = 0;
        const o = (m * K + k) * dsub;
        for (let j = 0; j < dsub; j++) {
          const e = q[m * dsub + j] - cb[o + j];
          s += e * e;
        }
        table[m * K + k] = s;
      }
    }
    return table;
  }

  /**
   * Asymmetric distances (squared) from a query to encoded vectors: `sum_m table[m][code_m]`. Codes are checked
   * as {@link ProductQuantizer.decode} checks them; the query as {@link ProductQuantizer.distanceTable} does.
   */
  asymmetricDistances(query: Float32Array | readonly number[], codes: PqCodes | PqCodeArray): Float32Array {
    const c = this.#codes(codes);
    const table = this.distanceTable(query);
    const M = this.M, K = this.K, n = c.length / M;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += table[m * K + c[i * M + m]];
      out[i] = s;
    }
    return out;
  }

  /** Reconstruction error of `x` (encoded here unless `codes` are given). */
  reconstructionError(x: MatrixInput, codes?: PqCodes, d?: number): ReconstructionError {
    const mat = this.#matrix(x, d);
    const rec = this.decode(codes ?? this.encode(mat.data, this.d)).data;
    if (rec.length !== mat.data.length) {
      throw new QuantlabError("SHAPE_MISMATCH", `codes describe ${rec.length / this.d} vectors, x has ${mat.rows}`);
    }
    let err = 0, norm = 0;
    for (let i = 0; i < rec.length; i++) {
      const v = mat.data[i], e = v - rec[i];
      err += e * e;
      norm += v * v;
    }
    return { mse: err / rec.length, squaredErrorPerVector: err / mat.rows, relative: norm > 0 ? err / norm : 0 };
  }

  /** Storage of `n` encoded vectors in bits: codes `n*M*log2(K)`, codebooks `M*K*dsub*32`. */
  compression(n: number): CompressionReport {
    return pqCompression({ vectors: n, subvectors: this.M, centroids: this.K, dimension: this.d });
  }

  /** A one-line summary. */
  toString(): string {
    return `ProductQuantizer(d=${this.d}, M=${this.M}, K=${this.K}, dsub=${this.dsub})`;
  }

  /** The code array of `codes`, checked: `n x M` values, each an integer in `[0, K)`. */
  #codes(codes: PqCodes | PqCodeArray): PqCodeArray {
    const c = codes && typeof codes === "object" && "codes" in codes ? codes.codes : codes;
    if (!(c instanceof Uint8Array || c instanceof Uint16Array)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `PQ codes must be a Uint8Array or Uint16Array (or { codes }), got ${
          c === null || typeof c !== "object" ? String(c) : (c as object).constructor?.name
        }`,
      );
    }
    const M = this.M, K = this.K;
    if (c.length % M !== 0) {
      throw new QuantlabError("SHAPE_MISMATCH", `PQ codes hold ${c.length} values, not a multiple of M = ${M}`);
    }
    for (let i = 0; i < c.length; i++) {
      if (c[i] >= K) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `PQ codes: code ${c[i]} at flat index ${i} (vector ${Math.floor(i / M)}, sub-space ${
            i % M
          }) is not below K = ${K}`,
        );
      }
    }
    return c;
  }

  #matrix(x: MatrixInput, d?: number) {
    const mat = asMatrix(x, d ?? this.d, "vectors");
    if (mat.cols !== this.d) {
      throw new QuantlabError("SHAPE_MISMATCH", `vectors have dimension ${mat.cols}, the quantizer has ${this.d}`);
    }
    return mat;
  }
}

function checkSubvectors(M: number, d: number): void {
  if (!Number.isInteger(M) || M < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `subvectors (M) must be a positive integer, got ${M}`);
  }
  if (d % M !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `subvectors (M = ${M}) must divide the dimension (d = ${d}); d % M = ${d % M}`,
    );
  }
}

/**
 * An immutable product-quantizer recipe.
 *
 * @example
 * ```ts
 * import { Prng } from "../tensor/prng.ts";
 * import { productQuantizer } from "./product_quantizer.ts";
 * const x = new Prng(0).fillNormal(new Float32Array(512 * 8)) as Float32Array;
 * const pq = productQuantizer().subvectors(4).centroids(16).seed(0).fit(x, 8);
 * const codes = pq.encode(x, 8);
 * const err = pq.reconstructionError(x, codes);
 * if (codes.codes.length !== 512 * 4 || !(err.mse < 0.5)) throw new Error(`bad: ${err.mse}`);
 * ```
 */
export class ProductQuantizerBuilder implements WeightQuantizer {
  /** The weight-quantizer family. */
  readonly kind = "product" as const;
  /** The full configuration. */
  readonly config: ProductQuantizerConfig;

  /** Use {@link productQuantizer} to start a builder. */
  constructor(config: ProductQuantizerConfig = DEFAULTS) {
    this.config = Object.freeze({ ...config });
  }

  #with(patch: Partial<ProductQuantizerConfig>): ProductQuantizerBuilder {
    return new ProductQuantizerBuilder({ ...this.config, ...patch });
  }

  /** Number of sub-vectors `M` (default 8); must divide the dimension at `fit`. */
  subvectors(M: number): ProductQuantizerBuilder {
    if (!Number.isInteger(M) || M < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `subvectors (M) must be a positive integer, got ${M}`);
    }
    return this.#with({ subvectors: M });
  }

  /** Centroids per sub-space `K` (1..65536; default 256). */
  centroids(K: number): ProductQuantizerBuilder {
    checkCentroids(K, "centroids (K)", MAX_PQ_CENTROIDS);
    return this.#with({ centroids: K });
  }

  /** Lloyd iterations per sub-space (default 25). */
  iterations(n: number): ProductQuantizerBuilder {
    if (!Number.isInteger(n) || n < 0) {
      throw new QuantlabError("INVALID_ARGUMENT", `iterations must be a non-negative integer, got ${n}`);
    }
    return this.#with({ iterations: n });
  }

  /** Relative centroid-shift tolerance (default 0, as faiss: all iterations unless the assignment is stable). */
  tolerance(t: number): ProductQuantizerBuilder {
    if (!(t >= 0) || !Number.isFinite(t)) {
      throw new QuantlabError("INVALID_ARGUMENT", `tolerance must be a finite number >= 0, got ${t}`);
    }
    return this.#with({ tolerance: t });
  }

  /** Seed (an integer; default 0). */
  seed(seed: number): ProductQuantizerBuilder {
    checkSeed(seed, "PQ seed");
    return this.#with({ seed });
  }

  /** Train on at most `K * m` vectors (default 256 as faiss; `Infinity` for all). */
  maxPointsPerCentroid(m: number): ProductQuantizerBuilder {
    if (!(m === Infinity || (Number.isInteger(m) && m >= 1))) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `maxPointsPerCentroid must be a positive integer or Infinity, got ${m}`,
      );
    }
    return this.#with({ maxPointsPerCentroid: m });
  }

  /** Initial centroids per sub-space: `"random"` (default, faiss), `"kmeans++"` or `"linear"` (see `linearInit`). */
  init(init: "random" | "kmeans++" | "linear"): ProductQuantizerBuilder {
    if (init !== "random" && init !== "kmeans++" && init !== "linear") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `init must be "random", "kmeans++" or "linear", got ${String(init)}`,
      );
    }
    return this.#with({ init });
  }

  /** `fitWeights` only: values per block (a positive integer; default 9 for 3x3 convs, else 4). */
  blockSize(d: number): ProductQuantizerBuilder {
    if (!Number.isInteger(d) || d < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `block size must be a positive integer, got ${d}`);
    }
    return this.#with({ blockSize: d });
  }

  /** `fitWeights` only: `"flat"` (default) or `"channels"` blocks (see {@link weightToBlocks}). */
  blockOrder(order: BlockOrder): ProductQuantizerBuilder {
    if (order !== "flat" && order !== "channels") {
      throw new QuantlabError("INVALID_ARGUMENT", `block order must be "flat" or "channels", got ${String(order)}`);
    }
    return this.#with({ blockOrder: order });
  }

  /**
   * `log2(centroids) / blockSize` (a {@link WeightQuantizer}'s nominal bits per weight; with the automatic block
   * size it assumes blocks of 4, the larger of the two defaults' code bits).
   */
  get nominalBits(): number {
    return Math.log2(this.config.centroids) / (this.config.blockSize ?? 4);
  }

  /**
   * Fit to one weight tensor (see the module doc): blocks per output channel `options.axis` (default 0; a MatMul
   * weight `[in, out]` takes 1), one shared codebook. Throws `NON_FINITE`, `EMPTY_TENSOR`, `AXIS_OUT_OF_RANGE`,
   * `SHAPE_MISMATCH` (rank below 2, a block size that does not divide the channel) or `INVALID_ARGUMENT` (more
   * centroids than blocks), naming the tensor.
   */
  fitWeights(w: Tensor<"float32">, options: WeightFitOptions = {}): ProductWeights {
    const { name, axis: given } = checkWeights(w, options);
    if (w.rank < 2) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${name}: product quantization needs a weight of rank >= 2 ([out, in] or [Cout, Cin, kh, kw]), got shape [${w.shape}]`,
      );
    }
    const axis = given ?? 0;
    const moved = moveAxisFirst(w, axis);
    const order = this.config.blockOrder ?? "flat";
    const d = this.config.blockSize ?? autoBlockSize(moved.shape, order);
    const blocks = named(name, () => weightToBlocks(moved, d, order));
    if (this.config.centroids > blocks.count) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${name}: centroids (K = ${this.config.centroids}) exceeds the number of blocks (${blocks.count} blocks of ${d})`,
      );
    }
    const pq = this.#with({ subvectors: 1 }).fit(blocks.vectors, d);
    return new ProductWeights(pq, axis, order, w, name);
  }

  /** The configuration as JSON (`"Infinity"` for no subsampling; block settings only when set). */
  toRecipe(): WeightQuantizerRecipe {
    const c = this.config;
    const config: Record<string, unknown> = {
      subvectors: c.subvectors,
      centroids: c.centroids,
      iterations: c.iterations,
      tolerance: c.tolerance,
      seed: c.seed,
      maxPointsPerCentroid: numberToJson(c.maxPointsPerCentroid),
      init: c.init,
    };
    if (c.backend !== undefined) config.backend = c.backend;
    if (c.blockSize !== undefined) config.blockSize = c.blockSize;
    if (c.blockOrder !== undefined) config.blockOrder = c.blockOrder;
    return { kind: "product", config };
  }

  /** Nearest-centroid backend: `"simd"` (default where available) or `"js"`. */
  backend(b: NearestBackend): ProductQuantizerBuilder {
    if (b !== "simd" && b !== "js") {
      throw new QuantlabError("INVALID_ARGUMENT", `backend must be "simd" or "js", got ${String(b)}`);
    }
    return this.#with({ backend: b });
  }

  /** Train on `x` (`[n, d]` tensor, or flat row-major data with the dimension `d`). */
  fit(x: MatrixInput, d?: number): ProductQuantizer {
    const c = this.config, M = c.subvectors, K = c.centroids;
    const mat = asMatrix(x, d, "training vectors");
    const n = mat.rows, dim = mat.cols;
    checkSubvectors(M, dim);
    if (K > n) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `centroids (K = ${K}) exceeds the number of training vectors (n = ${n}); give at least K vectors`,
      );
    }
    const dsub = dim / M;
    const train = subsample(mat.data, n, dim, K, c.maxPointsPerCentroid, c.seed);
    const codebooks = new Float32Array(M * K * dsub);
    const objectives: number[][] = [];
    for (let m = 0; m < M; m++) {
      const slice = sliceColumns(train.data, train.rows, dim, m * dsub, dsub);
      let cb: Float32Array;
      if (train.rows === K) {
        cb = slice;
        objectives.push([0]);
      } else {
        const init = initialCentroids(c.init, slice, train.rows, dsub, K, c.seed);
        const r = lloyd(slice, train.rows, dsub, K, init, {
          iterations: c.iterations,
          tolerance: c.tolerance,
          seed: c.seed,
          backend: c.backend,
        });
        cb = r.centroids;
        objectives.push(r.objective);
      }
      codebooks.set(cb, m * K * dsub);
    }
    return new ProductQuantizer(codebooks, M, K, dim, objectives, c.backend);
  }

  /** A readable description of the recipe. */
  toString(): string {
    const c = this.config;
    return `productQuantizer(M=${c.subvectors}, K=${c.centroids}, iterations=${c.iterations}, tolerance=${c.tolerance}, ` +
      `init=${c.init}, seed=${c.seed}, maxPointsPerCentroid=${c.maxPointsPerCentroid}${
        c.backend ? `, backend=${c.backend}` : ""
      }${c.blockSize !== undefined ? `, blockSize=${c.blockSize}` : ""}${
        c.blockOrder !== undefined ? `, blockOrder=${c.blockOrder}` : ""
      })`;
  }
}

/** Default block size: `kh * kw` (9 for 3x3) for flat blocks of a conv with a spatial kernel, else 4. */
function autoBlockSize(shape: readonly number[], order: BlockOrder): number {
  let spatial = 1;
  for (let i = 2; i < shape.length; i++) spatial *= shape[i];
  return order === "flat" && spatial > 1 ? spatial : 4;
}

/** Run `fn`, prefixing the tensor name to the message of a quantlab error that lacks it. */
function named<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof QuantlabError && !e.message.includes(name)) {
      throw new QuantlabError(e.code, `${name}: ${e.message} (set productQuantizer().blockSize(d))`, { cause: e });
    }
    throw e;
  }
}

/** `w` with `axis` moved to the front (a copy unless `axis` is 0). */
function moveAxisFirst(w: Tensor<"float32">, axis: number): Tensor<"float32"> {
  if (axis === 0) return w;
  const { outer, axisLength, inner } = axisView(w.shape, axis);
  const src = w.data, out = new Float32Array(w.size);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < axisLength; c++) {
      const from = (o * axisLength + c) * inner, to = (c * outer + o) * inner;
      for (let i = 0; i < inner; i++) out[to + i] = src[from + i];
    }
  }
  return new Tensor(out, [w.shape[axis], ...w.shape.slice(0, axis), ...w.shape.slice(axis + 1)]);
}

/** Inverse of {@link moveAxisFirst}: `data` of the moved shape back to `shape` (`axis` in place). */
function moveAxisBack(data: Float32Array, shape: readonly number[], axis: number): Tensor<"float32"> {
  if (axis === 0) return new Tensor(data, shape);
  const { outer, axisLength, inner } = axisView(shape, axis);
  const out = new Float32Array(data.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < axisLength; c++) {
      const to = (o * axisLength + c) * inner, from = (c * outer + o) * inner;
      for (let i = 0; i < inner; i++) out[to + i] = data[from + i];
    }
  }
  return new Tensor(out, shape);
}

/**
 * Product-quantized weights fitted by {@link ProductQuantizerBuilder.fitWeights}: codes `[out channels, blocks per
 * channel]` (uint8 up to 256 centroids, else int32) into the float32 `codebooks` table (`1 x K x blockSize`).
 *
 * @example
 * ```ts
 * import { Prng } from "../tensor/prng.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { productQuantizer } from "./product_quantizer.ts";
 * const w = Tensor.from(new Prng(0).fillNormal(new Float32Array(8 * 4 * 3 * 3)) as Float32Array, [8, 4, 3, 3]);
 * const fw = productQuantizer().centroids(16).fitWeights(w, { axis: 0, name: "conv.weight" });
 * if (fw.blockSize !== 9 || fw.encode().codes.shape.join() !== "8,4") throw new Error("bad layout");
 * if (fw.decode(fw.encode()).toArray().join() !== fw.fakeQuantize().toArray().join()) throw new Error("bad");
 * if (fw.bitsPerWeight() !== (32 * 4 + 16 * 9 * 32) / 288) throw new Error("bad bits"); // 4-bit codes, 16 x 9 floats
 * ```
 */
export class ProductWeights extends FittedWeightsBase {
  /** Use {@link ProductQuantizerBuilder.fitWeights}. */
  constructor(
    /** The trained quantizer (`M = 1`, `d = blockSize`). */
    readonly pq: ProductQuantizer,
    axis: number,
    /** Block order. */
    readonly order: BlockOrder,
    fittedOn: Tensor<"float32">,
    name: string,
  ) {
    super("product", fittedOn, axis, name);
  }

  /** Values per block. */
  get blockSize(): number {
    return this.pq.d;
  }

  #blocks(t: Tensor<"float32">) {
    return weightToBlocks(moveAxisFirst(t, this.axis!), this.pq.d, this.order);
  }

  #weight(vectors: Float32Array): Tensor<"float32"> {
    const moved = [this.shape[this.axis!], ...this.shape.slice(0, this.axis), ...this.shape.slice(this.axis! + 1)];
    const w = blocksToWeight(vectors, { shape: moved, blockSize: this.pq.d, order: this.order });
    return moveAxisBack(w.data, this.shape, this.axis!);
  }

  /** Each block replaced by its nearest centroid. */
  protected fake(t: Tensor<"float32">): Tensor<"float32"> {
    const b = this.#blocks(t);
    return this.#weight(this.pq.decode(this.pq.encode(b.vectors, b.blockSize)).data);
  }

  /** One code per block, `[out channels, blocks per channel]`, and the codebook. */
  protected codes(t: Tensor<"float32">): Pick<EncodedWeights, "codes" | "tables"> {
    const b = this.#blocks(t);
    const { codes } = this.pq.encode(b.vectors, b.blockSize);
    const shape = [b.rows, b.count / b.rows];
    const tensor: EncodedWeights["codes"] = codes instanceof Uint8Array
      ? new Tensor<"uint8">(codes, shape)
      : new Tensor<"int32">(Int32Array.from(codes), shape);
    return { codes: tensor, tables: { codebooks: this.pq.codebooks.slice() } };
  }

  /** Stored codebook looked up by code, blocks put back in place. */
  protected values(e: EncodedWeights): Tensor<"float32"> {
    const { K, d } = this.pq;
    const cb = this.table(e, "codebooks", Float32Array, K * d);
    const c = e.codes.data;
    if (c.length * d !== this.fittedOn.size) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${this.name}: ${c.length} block codes do not cover the ${this.fittedOn.size} weights (blocks of ${d})`,
      );
    }
    for (let i = 0; i < c.length; i++) {
      if (!(Number.isInteger(c[i]) && c[i] >= 0 && c[i] < K)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${this.name}: block code ${c[i]} at flat index ${i} is not an integer in [0, K = ${K})`,
        );
      }
    }
    const codes = c instanceof Uint8Array ? c : Uint16Array.from(c);
    return this.#weight(ProductQuantizer.fromCodebooks(cb, 1, K, d).decode(codes).data);
  }

  /** `ceil(log2 K)` bits per block plus `K * blockSize` float32 codebook values. */
  bitsPerWeight(): number {
    const { K, d } = this.pq, n = this.fittedOn.size;
    return ((n / d) * Math.ceil(Math.log2(K)) + K * d * 32) / n;
  }

  /** Sizes, tensor name and shape. */
  toString(): string {
    return `product weights(K=${this.pq.K}, blockSize=${this.pq.d}, order=${this.order}, axis=${this.axis}) on ${this.name} [${this.shape}]`;
  }
}

/**
 * Rebuild a product quantizer from {@link ProductQuantizerBuilder.toRecipe}'s JSON (validated as the builder
 * methods do; `INVALID_ARGUMENT` for a recipe of another kind).
 *
 * @example
 * ```ts
 * import { productQuantizer, productFromRecipe } from "./product_quantizer.ts";
 * const q = productQuantizer().centroids(16).blockSize(4).blockOrder("channels");
 * const back = productFromRecipe(JSON.parse(JSON.stringify(q.toRecipe())));
 * if (back.toString() !== q.toString()) throw new Error(back.toString());
 * ```
 */
export function productFromRecipe(recipe: WeightQuantizerRecipe): ProductQuantizerBuilder {
  const c = recipeConfig(recipe, "product");
  let q = productQuantizer()
    .subvectors((c.subvectors ?? DEFAULTS.subvectors) as number)
    .centroids((c.centroids ?? DEFAULTS.centroids) as number)
    .iterations((c.iterations ?? DEFAULTS.iterations) as number)
    .tolerance((c.tolerance ?? DEFAULTS.tolerance) as number)
    .seed((c.seed ?? DEFAULTS.seed) as number)
    .maxPointsPerCentroid(
      numberFromJson(c.maxPointsPerCentroid ?? DEFAULTS.maxPointsPerCentroid, "maxPointsPerCentroid"),
    )
    .init((c.init ?? DEFAULTS.init) as ProductQuantizerConfig["init"]);
  if (c.backend !== undefined) q = q.backend(c.backend as NearestBackend);
  if (c.blockSize !== undefined) q = q.blockSize(c.blockSize as number);
  if (c.blockOrder !== undefined) q = q.blockOrder(c.blockOrder as BlockOrder);
  return q;
}

/**
 * Start a product-quantizer recipe (defaults: M = 8, K = 256, 25 iterations, tolerance 0, random init,
 * seed 0, at most 256 training vectors per centroid — faiss's settings).
 *
 * @example
 * ```ts
 * import { productQuantizer } from "./product_quantizer.ts";
 * const b = productQuantizer().subvectors(4).centroids(16);
 * if (b.config.subvectors !== 4 || productQuantizer().config.subvectors !== 8) throw new Error("bad");
 * ```
 */
export function productQuantizer(): ProductQuantizerBuilder {
  return new ProductQuantizerBuilder();
}
