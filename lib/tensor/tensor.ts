/**
 * A small dense tensor: a typed array plus a shape, row-major (C order).
 *
 * Bounds: dimensions are non-negative integers (`SHAPE_MISMATCH` otherwise) and a tensor holds at most
 * {@link MAX_TENSOR_ELEMENTS} (2^32) elements; {@link checkedSize} says so with the element count (`INVALID_ARGUMENT`,
 * "too large") before anything is allocated, and an allocation the machine cannot satisfy below that bound is a
 * typed `INVALID_ARGUMENT` with the count too, never a raw `RangeError`.
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

/**
 * The most elements one tensor may hold (2^32: 16 GiB of float32).
 *
 * @example
 * ```ts
 * import { MAX_TENSOR_ELEMENTS } from "./tensor.ts";
 * if (MAX_TENSOR_ELEMENTS !== 2 ** 32) throw new Error("bad");
 * ```
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 32;

/**
 * The element count of `shape`, checked before allocating: every dimension a non-negative integer
 * (`SHAPE_MISMATCH` naming the axis) and the product at most {@link MAX_TENSOR_ELEMENTS} (`INVALID_ARGUMENT`, "too
 * large", with the count). `what` names the tensor in messages.
 *
 * @example
 * ```ts
 * import { checkedSize } from "./tensor.ts";
 * if (checkedSize([2, 3, 4]) !== 24) throw new Error("bad");
 * try {
 *   checkedSize([1e6, 1e6], "noise");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("too large")) throw e;
 * }
 * ```
 */
export function checkedSize(shape: readonly number[], what = "tensor"): number {
  if (!Array.isArray(shape)) {
    throw new QuantlabError("SHAPE_MISMATCH", `${what}: shape must be an array of dimensions, got ${String(shape)}`);
  }
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new QuantlabError(
        "SHAPE_MISMATCH",
        `${what}: shape [${shape}] has dimension ${d} at axis ${i}; dimensions must be non-negative integers`,
      );
    }
    n *= d;
  }
  if (n > MAX_TENSOR_ELEMENTS) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${what}: shape [${shape}] is too large: ${n} elements (${
        (n * 4 / 2 ** 30).toPrecision(3)
      } GiB of float32), above the limit of ${MAX_TENSOR_ELEMENTS} elements`,
    );
  }
  return n;
}

/**
 * Allocate `n` elements of an array type, turning an allocation failure (a raw `RangeError`) into a typed
 * `INVALID_ARGUMENT` that names `what` and the element count.
 *
 * @example
 * ```ts
 * import { allocate } from "./tensor.ts";
 * if (allocate(Float32Array, 3, "x").length !== 3) throw new Error("bad");
 * ```
 */
export function allocate<T>(type: { new (n: number): T }, n: number, what = "tensor"): T {
  try {
    return new type(n);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${what}: could not allocate ${n} elements (too large for this machine: ${e.message})`,
      { cause: e },
    );
  }
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

  /**
   * A zero-filled tensor. Throws `SHAPE_MISMATCH` for a negative or fractional dimension and `INVALID_ARGUMENT`
   * ("too large", with the element count) beyond {@link MAX_TENSOR_ELEMENTS} or what can be allocated.
   */
  static zeros<E extends DType = "float32">(shape: readonly number[], dtype?: E): Tensor<E> {
    const n = checkedSize(shape, "Tensor.zeros");
    const d = (dtype ?? "float32") as DType;
    const type = d === "float32" ? Float32Array : d === "int8" ? Int8Array : d === "uint8" ? Uint8Array : Int32Array;
    const data = allocate<DTypeArrays[DType]>(type, n, `Tensor.zeros([${shape}])`);
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
