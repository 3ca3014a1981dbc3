/**
 * Row-major float32 matrices (`n` points of dimension `d`) as the vector quantizers take them.
 *
 * @module
 */
import { assertFinite, QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Points for clustering: a `[n, d]` tensor, or a flat Float32Array / number array with the dimension given. */
export type MatrixInput = Tensor<"float32"> | Float32Array | readonly number[];

/** A row-major matrix view (data not copied when it already is a Float32Array). */
export interface Matrix {
  /** `rows * cols` values, row-major. */
  readonly data: Float32Array;
  /** Number of points. */
  readonly rows: number;
  /** Dimension. */
  readonly cols: number;
}

/**
 * Coerce points to a {@link Matrix}, checking shape and finiteness.
 *
 * A tensor must be rank 2 (`[n, d]`), or rank 1 with `cols` given; a flat array needs `cols`.
 * Throws `SHAPE_MISMATCH`, `EMPTY_TENSOR`, `INVALID_ARGUMENT` or `NON_FINITE`, naming `what`.
 *
 * @example
 * ```ts
 * import { asMatrix } from "./matrix.ts";
 * const m = asMatrix(new Float32Array(6), 3, "points");
 * if (m.rows !== 2 || m.cols !== 3) throw new Error("bad");
 * ```
 */
export function asMatrix(x: MatrixInput, cols: number | undefined, what: string): Matrix {
  let data: Float32Array;
  let d: number;
  if (x instanceof Tensor) {
    if (x.dtype !== "float32") {
      throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a float32 tensor, got ${x.dtype}`);
    }
    data = x.data;
    if (x.rank === 2) {
      d = x.shape[1];
      if (cols !== undefined && cols !== d) {
        throw new QuantlabError("SHAPE_MISMATCH", `${what} has shape [${x.shape}] but dimension ${cols} was given`);
      }
    } else if (x.rank === 1 && cols !== undefined) {
      d = cols;
    } else {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${what} must be a rank-2 tensor [n, d] (or rank 1 with the dimension given), got shape [${x.shape}]`,
      );
    }
  } else {
    if (cols === undefined) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `${what} is a flat array: give the dimension d (points are n x d, row-major)`,
      );
    }
    data = x instanceof Float32Array ? x : Float32Array.from(x);
    d = cols;
  }
  if (!Number.isInteger(d) || d < 1) {
    throw new QuantlabError("SHAPE_MISMATCH", `${what}: dimension must be a positive integer, got ${d}`);
  }
  if (data.length === 0) throw new QuantlabError("EMPTY_TENSOR", `${what} holds no points`);
  if (data.length % d !== 0) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what} holds ${data.length} values, not a whole number of points of dimension ${d}`,
    );
  }
  assertFinite(data, what);
  return { data, rows: data.length / d, cols: d };
}

/**
 * Copy rows `index[0..count)` of a row-major matrix into a new one.
 *
 * @example
 * ```ts
 * import { gatherRows } from "./matrix.ts";
 * const g = gatherRows(new Float32Array([1, 2, 3, 4, 5, 6]), 2, new Int32Array([2, 0]), 2);
 * if (g.join() !== "5,6,1,2") throw new Error("bad");
 * ```
 */
export function gatherRows(data: Float32Array, d: number, index: Int32Array, count: number): Float32Array {
  const out = new Float32Array(count * d);
  for (let i = 0; i < count; i++) out.set(data.subarray(index[i] * d, index[i] * d + d), i * d);
  return out;
}

/**
 * Columns `[col, col + width)` of a row-major `rows x cols` matrix, as a new `rows x width` matrix.
 *
 * @example
 * ```ts
 * import { sliceColumns } from "./matrix.ts";
 * const s = sliceColumns(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3, 1, 2);
 * if (s.join() !== "2,3,5,6") throw new Error("bad");
 * ```
 */
export function sliceColumns(data: Float32Array, rows: number, cols: number, col: number, width: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let i = 0, w = 0; i < rows; i++) {
    const o = i * cols + col;
    for (let j = 0; j < width; j++) out[w++] = data[o + j];
  }
  return out;
}
