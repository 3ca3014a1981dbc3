/**
 * One vector-quantized weight of a model: codes (one per block of `blockSize` weights; `blockSize = 1` is Deep
 * Compression's scalar weight sharing) into one codebook of `k` centroids (`k x blockSize`, float32), and the map
 * between blocks and the weight's flat positions (the kill-the-bits layout of lib/vq/weight_layout.ts: per output
 * channel, blocks along the input side, `"flat"` or `"channels"`).
 *
 * The two operations fine-tuning needs live here: {@link VqLayer.reconstruct} (`w = C[codes]`) and
 * {@link VqLayer.centroidGradient}: with codes frozen, `dL/dC[c] = sum of dL/dw over the members of c` (the
 * chain rule through the gather), which is Deep Compression's update (`"sum"`); kill-the-bits' CentroidSGD
 * averages over the members (`"mean"`).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { axisView } from "../tensor/layout.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type BlockOrder, weightToBlocks } from "../vq/weight_layout.ts";

/** Which model-level method produced a layer. */
export type VqMethod = "kmeans" | "pq";

/** How a centroid's gradient is reduced over its members. */
export type CentroidReduce = "sum" | "mean";

/** Where a weight sits in the model. */
export interface WeightSite {
  /** Initializer name. */
  readonly weight: string;
  /** Label of the consuming node. */
  readonly node: string;
  /** Op type of the consuming node (`Conv`, `Gemm`, `MatMul`). */
  readonly opType: string;
  /** Weight shape. */
  readonly shape: readonly number[];
  /** Output-channel axis (0 for Conv and Gemm with transB, 1 for MatMul and Gemm without). */
  readonly axis: number;
}

/** Everything that defines a {@link VqLayer}. */
export interface VqLayerInit extends WeightSite {
  /** The method. */
  readonly method: VqMethod;
  /** Values per block (1 for scalar k-means). */
  readonly blockSize: number;
  /** Block order (see lib/vq/weight_layout.ts). */
  readonly order: BlockOrder;
  /** Number of centroids. */
  readonly k: number;
  /** One code per block, in block order (output channel first). */
  readonly codes: Int32Array;
  /** Codebook, `k x blockSize`, row-major. */
  readonly codebook: Float32Array;
  /**
   * Stored precision of the codebook values: 32 (float32, default) or 16 (float16, as kill-the-bits stores its
   * centroids; the codebook is rounded to float16 values, so the in-memory model equals the exported one).
   */
  readonly codebookBits?: 16 | 32;
}

/**
 * `data` (of `shape`) with `axis` moved to the front (copied unless `axis` is 0).
 *
 * @example
 * ```ts
 * import { moveAxisFirst } from "./layer.ts";
 * const t = moveAxisFirst(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], 1);
 * if (t.shape.join() !== "3,2" || t.toArray().join() !== "1,4,2,5,3,6") throw new Error("bad");
 * ```
 */
export function moveAxisFirst(data: Float32Array, shape: readonly number[], axis: number): Tensor<"float32"> {
  const moved = [shape[axis], ...shape.slice(0, axis), ...shape.slice(axis + 1)];
  if (axis === 0) return new Tensor(data, moved);
  const { outer, axisLength, inner } = axisView(shape, axis);
  const out = new Float32Array(data.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < axisLength; c++) {
      const from = (o * axisLength + c) * inner, to = (c * outer + o) * inner;
      for (let i = 0; i < inner; i++) out[to + i] = data[from + i];
    }
  }
  return new Tensor(out, moved);
}

/**
 * For block order `order` and block size `d`, the flat weight index of every block slot: `slots[b * d + j]` is
 * the position in the weight (of `shape`, output channels along `axis`) of value `j` of block `b`.
 *
 * @example
 * ```ts
 * import { blockSlots } from "./layer.ts";
 * // [out=1, in=2, 1, 2] in channel blocks of 2: block 0 = (w[0], w[2]), block 1 = (w[1], w[3])
 * if (blockSlots([1, 2, 1, 2], 0, 2, "channels").join() !== "0,2,1,3") throw new Error("bad");
 * ```
 */
export function blockSlots(shape: readonly number[], axis: number, blockSize: number, order: BlockOrder): Int32Array {
  let n = 1;
  for (const s of shape) n *= s;
  if (n > 1 << 24) {
    throw new QuantlabError("UNSUPPORTED", `weight of ${n} values: block maps are limited to 2^24 values`);
  }
  const idx = new Float32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const moved = moveAxisFirst(idx, shape, axis);
  const blocks = weightToBlocks(moved, blockSize, order);
  // the moved copy holds original indices, so the blocks hold them too
  return Int32Array.from(blocks.vectors);
}

/**
 * A vector-quantized weight: codes into one codebook, and the block layout.
 *
 * @example
 * ```ts
 * import { VqLayer } from "./layer.ts";
 * // a [2, 2] weight shared over 2 scalar centroids
 * const l = new VqLayer({ weight: "w", node: "fc", opType: "Gemm", shape: [2, 2], axis: 0, method: "kmeans",
 *   blockSize: 1, order: "flat", k: 2, codes: Int32Array.from([0, 1, 1, 0]), codebook: Float32Array.from([-1, 2]) });
 * if (l.reconstruct().join() !== "-1,2,2,-1") throw new Error("bad reconstruct");
 * // gradient of centroid 1 = sum of the gradients at positions 1 and 2
 * if (l.centroidGradient(Float32Array.from([1, 2, 3, 4]), "sum").join() !== "5,5") throw new Error("bad grad");
 * if (l.centroidGradient(Float32Array.from([1, 2, 3, 4]), "mean").join() !== "2.5,2.5") throw new Error("bad");
 * ```
 */
export class VqLayer implements VqLayerInit {
  /** Initializer name. */
  readonly weight: string;
  /** Consuming node label. */
  readonly node: string;
  /** Consuming op type. */
  readonly opType: string;
  /** Weight shape. */
  readonly shape: readonly number[];
  /** Output-channel axis. */
  readonly axis: number;
  /** Method. */
  readonly method: VqMethod;
  /** Values per block. */
  readonly blockSize: number;
  /** Block order. */
  readonly order: BlockOrder;
  /** Centroids. */
  readonly k: number;
  /** Codes, one per block. */
  readonly codes: Int32Array;
  /** Codebook `k x blockSize` (float16 values when `codebookBits` is 16). */
  readonly codebook: Float32Array;
  /** Stored precision of the codebook values (16 or 32). */
  readonly codebookBits: 16 | 32;
  /** Number of weights. */
  readonly size: number;
  #slots: Int32Array | null | undefined;
  #counts: Int32Array | undefined;

  /** Check and hold a layer (codes in `[0, k)`, sizes consistent; errors name the weight). */
  constructor(init: VqLayerInit) {
    let n = 1;
    for (const s of init.shape) n *= s;
    const d = init.blockSize;
    if (!Number.isInteger(d) || d < 1 || n % d !== 0) {
      throw new QuantlabError("SHAPE_MISMATCH", `${init.weight}: block size ${d} does not divide ${n} weights`);
    }
    if (init.codes.length !== n / d) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${init.weight}: ${init.codes.length} codes for ${n / d} blocks of ${d} (shape [${init.shape}])`,
      );
    }
    if (!Number.isInteger(init.k) || init.k < 1 || init.codebook.length !== init.k * d) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${init.weight}: codebook of ${init.codebook.length} values is not k = ${init.k} centroids of ${d}`,
      );
    }
    for (let i = 0; i < init.codes.length; i++) {
      const c = init.codes[i];
      if (!(c >= 0 && c < init.k)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `${init.weight}: code ${c} of block ${i} is outside [0, ${init.k})`,
        );
      }
    }
    const cbBits = init.codebookBits ?? 32;
    if (cbBits !== 16 && cbBits !== 32) {
      throw new QuantlabError("INVALID_ARGUMENT", `${init.weight}: codebookBits must be 16 or 32, got ${cbBits}`);
    }
    const codebook = cbBits === 16 ? init.codebook.map(Math.f16round) : init.codebook;
    for (let i = 0; i < codebook.length; i++) {
      if (!Number.isFinite(codebook[i])) {
        throw new QuantlabError(
          "NON_FINITE",
          `${init.weight}: codebook value ${i} is ${init.codebook[i]}${
            cbBits === 16 ? " (float16 range: +-65504)" : ""
          }`,
        );
      }
    }
    this.weight = init.weight;
    this.node = init.node;
    this.opType = init.opType;
    this.shape = Object.freeze([...init.shape]);
    this.axis = init.axis;
    this.method = init.method;
    this.blockSize = d;
    this.order = init.order;
    this.k = init.k;
    this.codes = init.codes;
    this.codebook = codebook;
    this.codebookBits = cbBits;
    this.size = n;
  }

  /** Number of blocks (codes). */
  get blocks(): number {
    return this.codes.length;
  }

  /** Block slot -> flat weight index, or `null` when blocks are the weight's own row-major order. */
  get slots(): Int32Array | null {
    if (this.#slots === undefined) {
      this.#slots = this.blockSize === 1 || (this.axis === 0 && this.order === "flat")
        ? null
        : blockSlots(this.shape, this.axis, this.blockSize, this.order);
    }
    return this.#slots;
  }

  /** Members per centroid. */
  counts(): Int32Array {
    if (!this.#counts) {
      const c = new Int32Array(this.k);
      for (let i = 0; i < this.codes.length; i++) c[this.codes[i]]++;
      this.#counts = c;
    }
    return this.#counts;
  }

  /** The same codes with another codebook (`k x blockSize`). */
  withCodebook(codebook: Float32Array): VqLayer {
    return new VqLayer({ ...this, codebook });
  }

  /** The weight `C[codes]` in the weight's shape and layout (flat, row-major). */
  reconstruct(codebook: Float32Array = this.codebook): Float32Array {
    const d = this.blockSize, codes = this.codes, out = new Float32Array(this.size);
    const slots = this.slots;
    let t = 0;
    for (let b = 0; b < codes.length; b++) {
      const base = codes[b] * d;
      if (slots === null) {
        for (let j = 0; j < d; j++) out[t++] = codebook[base + j];
      } else {
        for (let j = 0; j < d; j++) out[slots[t++]] = codebook[base + j];
      }
    }
    return out;
  }

  /**
   * The codebook gradient from the weight gradient `grad` (flat, the weight's layout): per centroid the sum
   * (Deep Compression) or the mean (kill-the-bits) of its members' gradients; centroids without members get 0.
   */
  centroidGradient(grad: Float32Array, reduce: CentroidReduce): Float32Array {
    if (grad.length !== this.size) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${this.weight}: gradient of ${grad.length} values, weight has ${this.size}`,
      );
    }
    const d = this.blockSize, codes = this.codes, g = new Float32Array(this.k * d);
    const slots = this.slots;
    let t = 0;
    for (let b = 0; b < codes.length; b++) {
      const base = codes[b] * d;
      if (slots === null) {
        for (let j = 0; j < d; j++) g[base + j] += grad[t++];
      } else {
        for (let j = 0; j < d; j++) g[base + j] += grad[slots[t++]];
      }
    }
    if (reduce === "mean") {
      const counts = this.counts();
      for (let c = 0; c < this.k; c++) {
        if (counts[c] > 1) {
          const inv = 1 / counts[c];
          for (let j = 0; j < d; j++) g[c * d + j] *= inv;
        }
      }
    }
    return g;
  }

  /** Bits of the codes stored at `ceil(log2 k)` each. */
  codeBits(): number {
    return this.codes.length * Math.ceil(Math.log2(this.k));
  }

  /** Bits of the stored codebook (`codebookBits` per value). */
  tableBits(): number {
    return this.codebookBits * this.codebook.length;
  }

  /** Codes plus stored codebook, per weight. */
  bitsPerWeight(): number {
    return (this.codeBits() + this.tableBits()) / this.size;
  }

  /** One line: method, sizes, bits. */
  toString(): string {
    return `${this.method} ${this.weight} [${this.shape}] k=${this.k} block=${this.blockSize} (${this.order}) ` +
      `${this.bitsPerWeight().toFixed(3)} bits/weight`;
  }
}
