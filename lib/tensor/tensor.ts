/**
 * A small dense tensor: a typed array plus a shape, row-major (C order).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** Element types a {@link Tensor} can hold. */
export type DType = "float32" | "int8" | "uint8" | "int32";

/** The typed array behind each {@link DType}. */
export interface DTypeArrays {
  /** 32-bit floats. */
  float32: Float32Array;
  /** Signed bytes. */
  int8: Int8Array;
  /** Unsigned bytes. */
  uint8: Uint8Array;
  /** 32-bit integers. */
  int32: Int32Array;
}

/** Any typed array a {@link Tensor} can hold. */
export type TensorData = DTypeArrays[DType];

/** Things a float tensor can be made from. */
export type FloatInput = Tensor<"float32"> | Float32Array | readonly number[];

/**
 * Name the dtype of a typed array.
 *
 * @example
 * ```ts
 * import { dtypeOf } from "./tensor.ts";
 * if (dtypeOf(new Int8Array(2)) !== "int8" || dtypeOf(new Float32Array(2)) !== "float32") throw new Error("bad");
 * ```
 */
export function dtypeOf(data: TensorData): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Int32Array) return "int32";
  throw new QuantlabError(
    "INVALID_ARGUMENT",
    "tensor data must be a Float32Array, Int8Array, Uint8Array or Int32Array",
  );
}

/**
 * Number of elements of a shape (1 for a scalar shape `[]`).
 *
 * @example
 * ```ts
 * import { sizeOf } from "./tensor.ts";
 * if (sizeOf([2, 3, 4]) !== 24 || sizeOf([]) !== 1) throw new Error("bad");
 * ```
 */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[], length: number, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${what}: shape [${shape}] has a dimension that is not a non-negative integer`,
      );
    }
  }
  if (sizeOf(shape) !== length) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what}: shape [${shape}] holds ${sizeOf(shape)} elements but the data has ${length}`,
    );
  }
}

/**
 * A dense row-major tensor of float32, int8, uint8 or int32 values.
 *
 * Tensors are cheap wrappers: the constructor does not copy `data`.
 *
 * @example
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
 * if (t.size !== 6 || t.shape[1] !== 3 || t.dtype !== "float32") throw new Error("bad");
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** Element type. */
  readonly dtype: D;
  /** Row-major element storage (not copied). */
  readonly data: DTypeArrays[D];
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];

  /** Wrap `data` with `shape` (default: 1-D). Throws `SHAPE_MISMATCH` if sizes disagree. */
  constructor(data: DTypeArrays[D], shape?: readonly number[], name = "tensor") {
    const s = shape ? [...shape] : [data.length];
    checkShape(s, data.length, name);
    this.data = data;
    this.shape = Object.freeze(s);
    this.dtype = dtypeOf(data) as D;
  }

  /** A float32 tensor from numbers, a Float32Array (not copied) or another tensor. */
  static from(values: FloatInput, shape?: readonly number[]): Tensor<"float32"> {
    if (values instanceof Tensor) return shape ? values.reshape(shape) : values;
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return new Tensor(data, shape);
  }

  /** A zero-filled tensor. */
  static zeros<E extends DType = "float32">(shape: readonly number[], dtype?: E): Tensor<E> {
    const n = sizeOf(shape);
    const d = (dtype ?? "float32") as DType;
    const data = d === "float32"
      ? new Float32Array(n)
      : d === "int8"
      ? new Int8Array(n)
      : d === "uint8"
      ? new Uint8Array(n)
      : new Int32Array(n);
    return new Tensor(data as DTypeArrays[E], shape);
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** The same data with another shape of equal size (no copy). */
  reshape(shape: readonly number[]): Tensor<D> {
    return new Tensor(this.data, shape);
  }

  /** A deep copy. */
  clone(): Tensor<D> {
    return new Tensor(this.data.slice() as DTypeArrays[D], this.shape);
  }

  /** Data as plain numbers (for printing and tests). */
  toArray(): number[] {
    return Array.from(this.data as ArrayLike<number>);
  }

  /** A short description such as `Tensor<float32>[2, 3]`. */
  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(", ")}]`;
  }
}

/**
 * Coerce any {@link FloatInput} to a float32 tensor (no copy where possible).
 *
 * @example
 * ```ts
 * import { asFloatTensor, Tensor } from "./tensor.ts";
 * const t = Tensor.from([1, 2, 3]);
 * if (asFloatTensor(t) !== t || asFloatTensor([1, 2]).shape.join() !== "2") throw new Error("bad");
 * ```
 */
export function asFloatTensor(x: FloatInput, what = "input"): Tensor<"float32"> {
  if (x instanceof Tensor) {
    if (x.dtype !== "float32") {
      throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a float32 tensor, got ${x.dtype}`);
    }
    return x;
  }
  return Tensor.from(x);
}
