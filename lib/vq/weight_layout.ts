/**
 * Weight tensors as sets of sub-vectors, as in "And the Bit Goes Down" (Stock, Joulin, Gribonval, Graham &
 * Jégou, ICLR 2020): a linear weight `[out, in]` or a conv weight `[Cout, Cin, kh, kw]` (any number of
 * spatial axes) is cut, for every output channel, into blocks of `d` values along the input side.
 *
 * - `"flat"`: blocks of `d` consecutive values of the output channel's flattened `Cin * kh * kw` row
 *   (row-major `c, h, w`). With `d = kh * kw` each block is one spatial kernel (the paper's choice for 3x3
 *   convs); for a linear layer or a 1x1 conv the blocks run along input channels.
 * - `"channels"`: blocks of `d` consecutive input channels at one spatial position, `W[o, c:c+d, h, w]`
 *   (the paper's choice for 1x1 convs, here for any kernel size).
 *
 * Sub-vectors are ordered output channel first, then (for `"channels"`) spatial position, then block, so
 * the `count x d` set is also a `rows x rowLength` matrix (one row per output channel) that a product
 * quantizer with `M = rowLength / d` sub-vectors takes directly (one codebook per block position), while
 * k-means on the `count x d` set gives the paper's single shared codebook.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";

/** How blocks run through the input side. */
export type BlockOrder = "flat" | "channels";

/** A weight tensor's sub-vectors and what is needed to put them back. */
export interface WeightBlocks {
  /** Sub-vectors, `count x blockSize`, row-major (a copy). */
  readonly vectors: Float32Array;
  /** Number of sub-vectors. */
  readonly count: number;
  /** Sub-vector length `d`. */
  readonly blockSize: number;
  /** Shape of the weight. */
  readonly shape: readonly number[];
  /** Block order. */
  readonly order: BlockOrder;
  /** Output channels (rows of the matrix view). */
  readonly rows: number;
  /** Values per output channel (`Cin * kh * kw`). */
  readonly rowLength: number;
}

function checkWeight(shape: readonly number[], blockSize: number, order: BlockOrder): void {
  if (shape.length < 2) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `weight must have rank >= 2 ([out, in] or [Cout, Cin, kh, kw]), got shape [${shape}]`,
    );
  }
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `block size must be a positive integer, got ${blockSize}`);
  }
  if (order !== "flat" && order !== "channels") {
    throw new QuantlabError("INVALID_ARGUMENT", `block order must be "flat" or "channels", got ${String(order)}`);
  }
  const cin = shape[1];
  let rowLength = 1;
  for (let i = 1; i < shape.length; i++) rowLength *= shape[i];
  if (order === "flat" && rowLength % blockSize !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `block size ${blockSize} must divide the values per output channel (${rowLength} for weight shape [${shape}])`,
    );
  }
  if (order === "channels" && cin % blockSize !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `block size ${blockSize} must divide the input channels (${cin} for weight shape [${shape}])`,
    );
  }
}

/**
 * Cut a weight tensor into sub-vectors of `blockSize` values along the input side.
 *
 * @example
 * ```ts
 * import { Tensor } from "../tensor/tensor.ts";
 * import { weightToBlocks } from "./weight_layout.ts";
 * // conv weight [Cout=1, Cin=2, 1, 2]: values c0:(1,2) c1:(3,4)
 * const w = Tensor.from([1, 2, 3, 4], [1, 2, 1, 2]);
 * if (weightToBlocks(w, 2, "flat").vectors.join() !== "1,2,3,4") throw new Error("bad flat");
 * // channel blocks at each spatial position: (1,3) then (2,4)
 * if (weightToBlocks(w, 2, "channels").vectors.join() !== "1,3,2,4") throw new Error("bad channels");
 * ```
 */
export function weightToBlocks(weight: Tensor<"float32">, blockSize: number, order: BlockOrder = "flat"): WeightBlocks {
  if (weight.dtype !== "float32") {
    throw new QuantlabError("INVALID_ARGUMENT", `weight must be a float32 tensor, got ${weight.dtype}`);
  }
  const shape = weight.shape;
  checkWeight(shape, blockSize, order);
  const rows = shape[0], rowLength = weight.size / Math.max(rows, 1);
  const count = weight.size / blockSize;
  const src = weight.data;
  let vectors: Float32Array;
  if (order === "flat") {
    vectors = src.slice();
  } else {
    vectors = new Float32Array(weight.size);
    const cin = shape[1], spatial = rowLength / cin, blocks = cin / blockSize;
    let w = 0;
    for (let o = 0; o < rows; o++) {
      for (let s = 0; s < spatial; s++) {
        for (let b = 0; b < blocks; b++) {
          for (let j = 0; j < blockSize; j++) vectors[w++] = src[o * rowLength + (b * blockSize + j) * spatial + s];
        }
      }
    }
  }
  return { vectors, count, blockSize, shape: Object.freeze([...shape]), order, rows, rowLength };
}

/**
 * Put sub-vectors (e.g. decoded or clustered ones) back into a weight tensor of the layout's shape.
 *
 * @example
 * ```ts
 * import { Tensor } from "../tensor/tensor.ts";
 * import { blocksToWeight, weightToBlocks } from "./weight_layout.ts";
 * const w = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 1, 2]);
 * const b = weightToBlocks(w, 2, "channels");
 * if (blocksToWeight(b.vectors, b).toArray().join() !== w.toArray().join()) throw new Error("not inverse");
 * ```
 */
export function blocksToWeight(
  vectors: Float32Array,
  layout: Pick<WeightBlocks, "shape" | "blockSize" | "order">,
): Tensor<"float32"> {
  const { shape, blockSize, order } = layout;
  checkWeight(shape, blockSize, order);
  let size = 1;
  for (const s of shape) size *= s;
  if (vectors.length !== size) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `sub-vectors hold ${vectors.length} values, the weight shape [${shape}] needs ${size}`,
    );
  }
  if (order === "flat") return new Tensor(vectors.slice(), shape, "weight");
  const out = new Float32Array(size);
  const rows = shape[0], rowLength = size / rows, cin = shape[1], spatial = rowLength / cin, blocks = cin / blockSize;
  let r = 0;
  for (let o = 0; o < rows; o++) {
    for (let s = 0; s < spatial; s++) {
      for (let b = 0; b < blocks; b++) {
        for (let j = 0; j < blockSize; j++) out[o * rowLength + (b * blockSize + j) * spatial + s] = vectors[r++];
      }
    }
  }
  return new Tensor(out, shape, "weight");
}
