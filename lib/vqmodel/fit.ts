/**
 * Fitting one layer: Deep Compression k-means weight sharing (scalar, linear initialisation over `[min, max]`,
 * `k = 2^bits`) and kill-the-bits product quantization of blocks with the activation-aware objective.
 *
 * Activation-aware EM ("And the Bit Goes Down", Stock et al. 2020, `src/quantization/em.py`): minimise
 * `||X (w - c)||^2` over the sampled layer inputs `X` (unrolled into blocks). With the block Gram matrix
 * `G = X^T X / n = L L^T` (Cholesky; a small ridge keeps it positive definite), that is the Euclidean k-means
 * objective on the transformed blocks `L^T w`. So the E-step here is the exact argmin over centroids of
 * `(w - c)^T G (w - c)`, and the M-step (kill-the-bits' `solve_stack`, `pinv(X) X mean(w)`) is the member mean
 * whenever `X` has full column rank: the transformed k-means gives both. Centroids are then recomputed as member
 * means in weight space (equal up to rounding).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { attrInt, indexGraph, nodeLabel } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { tensorValues } from "../onnx/tensor_data.ts";
import { kmeans } from "../vq/kmeans.ts";
import type { BlockOrder } from "../vq/weight_layout.ts";
import { blockSlots, VqLayer, type WeightSite } from "./layer.ts";

/**
 * The float weights of Conv, Gemm and MatMul nodes (rank >= 2 initializers), in graph order, with their
 * output-channel axis.
 *
 * @example
 * ```ts ignore
 * const sites = weightSites(await OnnxModel.load("datasets/models/digits_cnn.onnx"));
 * console.log(sites.map((s) => s.weight)); // conv1.weight, conv2.weight, conv3.weight, fc.weight
 * ```
 */
export function weightSites(model: OnnxModel): WeightSite[] {
  const ix = indexGraph(model.graph);
  const out: WeightSite[] = [];
  const seen = new Set<string>();
  model.graph.node.forEach((n, i) => {
    if (n.opType !== "Conv" && n.opType !== "Gemm" && n.opType !== "MatMul") return;
    const name = n.input[1];
    const t = ix.initializers.get(name);
    if (!t || t.dims.length < 2 || t.dataType !== 1 || seen.has(name)) return;
    let axis = 0;
    if (n.opType === "MatMul") axis = t.dims.length - 1;
    if (n.opType === "Gemm") axis = attrInt(n, "transB", 0) === 1 ? 0 : 1;
    if (n.opType === "MatMul" && t.dims.length !== 2) return;
    seen.add(name);
    out.push({ weight: name, node: nodeLabel(n, i), opType: n.opType, shape: t.dims.map(Number), axis });
  });
  return out;
}

/**
 * The float32 values of initializer `name` (a copy).
 *
 * @example
 * ```ts ignore
 * const w = initializerValues(model, "fc.weight");
 * ```
 */
export function initializerValues(model: OnnxModel, name: string): Float32Array {
  const t = model.graph.initializer.find((x) => x.name === name);
  if (!t) throw new QuantlabError("INVALID_ARGUMENT", `${model.source}: no initializer "${name}"`);
  const v = tensorValues(t);
  if (!(v instanceof Float32Array)) {
    throw new QuantlabError("UNSUPPORTED", `${model.source}: initializer "${name}" is not float32`);
  }
  return v.slice();
}

/**
 * kill-the-bits' block size for a weight: 9 (or 18 with `large`) for 3x3 convolutions, 4 (or 8) for 1x1
 * convolutions, 4 for fully connected layers; other kernels take `kh * kw`. Halved until it divides the values
 * per output channel.
 *
 * @example
 * ```ts
 * import { defaultBlockSize } from "./fit.ts";
 * if (defaultBlockSize([64, 64, 3, 3], 0) !== 9 || defaultBlockSize([64, 32, 1, 1], 0, true) !== 8) throw new Error("bad");
 * if (defaultBlockSize([10, 64], 0) !== 4) throw new Error("bad fc");
 * ```
 */
export function defaultBlockSize(shape: readonly number[], axis: number, large = false): number {
  let size = 1;
  for (const s of shape) size *= s;
  const rowLength = size / shape[axis];
  let d: number;
  if (shape.length === 4) {
    const spatial = shape[2] * shape[3];
    d = spatial === 1 ? (large ? 8 : 4) : spatial * (large ? 2 : 1);
  } else d = 4;
  while (d > 1 && rowLength % d !== 0) d = d % 2 === 0 ? d / 2 : 1;
  return d;
}

/**
 * kill-the-bits' centroid count for a layer of `blocks` blocks: `min(requested, the largest power of two below
 * blocks / threshold)` (so every centroid has `threshold` blocks on average; threshold 4 as the paper's code),
 * at least 2 (and at most `blocks`).
 *
 * @example
 * ```ts
 * import { pqCentroids } from "./fit.ts";
 * if (pqCentroids(4096, 256) !== 256 || pqCentroids(160, 256) !== 32 || pqCentroids(4, 256) !== 2) throw new Error("bad");
 * ```
 */
export function pqCentroids(blocks: number, requested: number, threshold = 4): number {
  let p = 1;
  while (p * 2 < blocks / threshold) p *= 2;
  return Math.max(Math.min(2, blocks), Math.min(requested, p));
}

/**
 * The largest power-of-two `k` in `[2, maxK]` whose storage (`log2 k` bits per block plus `k x d` float32
 * centroids) stays within `targetBits` per weight over `n` weights; 2 when even that exceeds it.
 *
 * @example
 * ```ts
 * import { centroidsForBudget } from "./fit.ts";
 * // 36864 weights in blocks of 9: k = 64 costs 6/9 + 64*9*32/36864 = 1.17 bits, k = 128 costs 1.78
 * if (centroidsForBudget(36864, 9, 1.5, 256) !== 64) throw new Error("bad");
 * ```
 */
export function centroidsForBudget(n: number, d: number, targetBits: number, maxK: number): number {
  let best = 2;
  for (let k = 2; k <= maxK && k <= n / d; k *= 2) {
    const bits = ((n / d) * Math.log2(k) + 32 * k * d) / n;
    if (bits <= targetBits + 1e-12) best = k;
  }
  return best;
}

/** Options of {@link fitKMeansLayer}. */
export interface KMeansLayerOptions {
  /** Centroids (`2^bits`). */
  readonly k: number;
  /** Lloyd iterations (default 30). */
  readonly iterations?: number;
  /** Seed (empty-cluster repair). */
  readonly seed?: number;
  /** Codebook precision (default 32; 16 rounds the centroids to float16). */
  readonly codebookBits?: 16 | 32;
}

/**
 * Deep Compression weight sharing of one weight: scalar k-means over all its values, linear initialisation over
 * `[min, max]`.
 *
 * @example
 * ```ts
 * import { fitKMeansLayer } from "./fit.ts";
 * const site = { weight: "w", node: "fc", opType: "Gemm", shape: [2, 3], axis: 0 };
 * const l = fitKMeansLayer(site, Float32Array.from([0, 0.1, 1, 1.1, 2, 2.1]), { k: 3 });
 * if (l.k !== 3 || l.codes[0] !== l.codes[1] || l.codes[1] === l.codes[2]) throw new Error("bad");
 * ```
 */
export function fitKMeansLayer(site: WeightSite, w: Float32Array, options: KMeansLayerOptions): VqLayer {
  const k = Math.min(options.k, w.length);
  const m = kmeans().centroids(k).init("linear").maxPointsPerCentroid(Infinity).iterations(options.iterations ?? 30)
    .tolerance(0).seed(options.seed ?? 0).fit(w, 1);
  return new VqLayer({
    ...site,
    method: "kmeans",
    blockSize: 1,
    order: "flat",
    k,
    codes: m.assignments,
    codebook: m.centroids.slice(),
    codebookBits: options.codebookBits,
  });
}

/** Options of {@link fitPqLayer}. */
export interface PqLayerOptions {
  /** Centroids. */
  readonly k: number;
  /** Values per block. */
  readonly blockSize: number;
  /** Block order (default `"flat"`). */
  readonly order?: BlockOrder;
  /** EM iterations (default 30). */
  readonly iterations?: number;
  /** Seed of the random initial centroids and empty-cluster repair. */
  readonly seed?: number;
  /** Block Gram matrix of the layer inputs (`d x d`, {@link blockGram}): activation-aware EM; none: plain k-means. */
  readonly gram?: Float64Array;
  /** Codebook precision (default 32; 16 rounds the centroids to float16). */
  readonly codebookBits?: 16 | 32;
}

/** Lower Cholesky factor of `a + ridge I` (`d x d`, row-major). */
function cholesky(a: Float64Array, d: number, name: string): Float64Array {
  let trace = 0;
  for (let i = 0; i < d; i++) trace += a[i * d + i];
  const ridge = 1e-6 * (trace / d) + 1e-12;
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j] + (i === j ? ridge : 0);
      for (let p = 0; p < j; p++) s -= L[i * d + p] * L[j * d + p];
      if (i === j) {
        if (!(s > 0)) {
          throw new QuantlabError("SOLVER_FAILED", `${name}: activation Gram matrix is not positive definite`);
        }
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j];
    }
  }
  return L;
}

/**
 * Product quantization of one weight (kill-the-bits): blocks of `blockSize` along the input side of each output
 * channel, one shared codebook of `k` centroids, random initial centroids (seeded), EM with the activation-aware
 * distance when `gram` is given (see the module doc).
 *
 * @example
 * ```ts
 * import { fitPqLayer } from "./fit.ts";
 * const site = { weight: "w", node: "fc", opType: "Gemm", shape: [4, 4], axis: 0 };
 * const w = Float32Array.from([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
 * const l = fitPqLayer(site, w, { k: 2, blockSize: 2 });
 * if (l.reconstruct().join() !== w.join()) throw new Error("two distinct blocks, two centroids: exact");
 * ```
 */
export function fitPqLayer(site: WeightSite, w: Float32Array, options: PqLayerOptions): VqLayer {
  const d = options.blockSize, order = options.order ?? "flat";
  const slots = blockSlots(site.shape, site.axis, d, order);
  const n = slots.length / d;
  const k = Math.min(options.k, n);
  const vectors = new Float32Array(slots.length);
  for (let t = 0; t < slots.length; t++) vectors[t] = w[slots[t]];
  let train = vectors;
  if (options.gram) {
    if (options.gram.length !== d * d) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${site.weight}: Gram matrix of ${options.gram.length} values for blocks of ${d}`,
      );
    }
    const L = cholesky(options.gram, d, site.weight);
    train = new Float32Array(vectors.length);
    for (let b = 0; b < n; b++) {
      const o = b * d;
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = i; j < d; j++) s += L[j * d + i] * vectors[o + j];
        train[o + i] = s;
      }
    }
  }
  const m = kmeans().centroids(k).init("random").maxPointsPerCentroid(Infinity).iterations(options.iterations ?? 30)
    .tolerance(0).seed(options.seed ?? 0).fit(train, d);
  const codes = m.assignments;
  // M-step in weight space: member means (centroids without members keep the back-transformed value)
  const sums = new Float64Array(k * d), counts = new Int32Array(k);
  for (let b = 0; b < n; b++) {
    const c = codes[b];
    counts[c]++;
    for (let j = 0; j < d; j++) sums[c * d + j] += vectors[b * d + j];
  }
  const codebook = new Float32Array(k * d);
  for (let c = 0; c < k; c++) {
    if (counts[c] > 0) {
      for (let j = 0; j < d; j++) codebook[c * d + j] = sums[c * d + j] / counts[c];
    } else if (!options.gram) {
      codebook.set(m.centroids.subarray(c * d, c * d + d), c * d);
    } else {
      const L = cholesky(options.gram, d, site.weight);
      // solve L^T x = c' by back substitution
      for (let i = d - 1; i >= 0; i--) {
        let s = m.centroids[c * d + i];
        for (let j = i + 1; j < d; j++) s -= L[j * d + i] * codebook[c * d + j];
        codebook[c * d + i] = s / L[i * d + i];
      }
    }
  }
  return new VqLayer({
    ...site,
    method: "pq",
    blockSize: d,
    order,
    k,
    codes,
    codebook,
    codebookBits: options.codebookBits,
  });
}

/** One layer's inputs to {@link allocateCentroids}. */
export interface AllocationLayer {
  /** Weights. */
  readonly size: number;
  /** Block size. */
  readonly blockSize: number;
  /**
   * Importance: the layer's distortion per weight at k = 1 in the units compared across layers (`vqModel` uses
   * `1 / size`, so each layer's relative error counts the same; a weight variance would count absolute error).
   */
  readonly scale: number;
  /** Largest k allowed (a power of two >= 2). */
  readonly maxK: number;
  /** Bits per codebook value (default 32). */
  readonly codebookBits?: number;
}

/**
 * Centroids per layer for a model-wide budget of `targetBits` per weight (codes at `log2 k` bits per block plus
 * codebooks at `codebookBits` per value, over all the layers): every layer starts at k = 2, then the layer with the best
 * distortion reduction per added bit doubles its k while the total fits. Distortion follows high-rate theory,
 * `D(k) ~ size * scale * k^(-2/d)`, so doubling k saves `D(k) (1 - 2^(-2/d))` for `blocks + codebookBits k d` more bits.
 *
 * @example
 * ```ts
 * import { allocateCentroids } from "./fit.ts";
 * const layers = [
 *   { size: 36864, blockSize: 9, scale: 1, maxK: 256 },
 *   { size: 640, blockSize: 4, scale: 1, maxK: 32 },
 * ];
 * const ks = allocateCentroids(layers, 2);
 * if (ks.join() !== "128,32") throw new Error(String(ks));
 * const bits = layers.reduce((a, l, i) => a + (l.size / l.blockSize) * Math.log2(ks[i]) + 32 * ks[i] * l.blockSize, 0);
 * if (bits > 2 * (36864 + 640)) throw new Error("over budget");
 * ```
 */
export function allocateCentroids(layers: readonly AllocationLayer[], targetBits: number): number[] {
  const ks = layers.map(() => 2);
  let total = 0, weights = 0;
  const bits = (l: AllocationLayer, k: number) =>
    (l.size / l.blockSize) * Math.log2(k) + (l.codebookBits ?? 32) * k * l.blockSize;
  layers.forEach((l, i) => {
    total += bits(l, ks[i]);
    weights += l.size;
  });
  const budget = targetBits * weights;
  for (;;) {
    let best = -1, bestGain = 0, bestCost = 0;
    layers.forEach((l, i) => {
      const k = ks[i];
      if (2 * k > l.maxK || 2 * k > l.size / l.blockSize) return;
      const cost = bits(l, 2 * k) - bits(l, k);
      if (total + cost > budget + 1e-9) return;
      const gain = l.size * l.scale * Math.pow(k, -2 / l.blockSize) * (1 - Math.pow(2, -2 / l.blockSize)) / cost;
      if (gain > bestGain) {
        best = i;
        bestGain = gain;
        bestCost = cost;
      }
    });
    if (best < 0) return ks;
    ks[best] *= 2;
    total += bestCost;
  }
}
