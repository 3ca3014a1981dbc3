/**
 * Argument checks shared by the integer kernels: zero points inside their
 * integer type, positive finite scales, per-tensor or per-channel vectors.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";

/** 8-bit integer element types the integer kernels read and write. */
export type Int8Type = "int8" | "uint8";

/** An int8 or uint8 tensor (what the integer kernels return). */
export type QTensor = Tensor<"int8" | "uint8">;

/**
 * The value range of an 8-bit type: int8 `[-128, 127]`, uint8 `[0, 255]`.
 *
 * @example
 * ```ts
 * import { int8Range } from "./checks.ts";
 * if (int8Range("uint8").qmax !== 255 || int8Range("int8").qmin !== -128) throw new Error("bad");
 * ```
 */
export function int8Range(dtype: Int8Type): { qmin: number; qmax: number } {
  return dtype === "int8" ? { qmin: -128, qmax: 127 } : { qmin: 0, qmax: 255 };
}

/**
 * Check that `t` is an int8 or uint8 tensor of the given rank; returns its dtype.
 *
 * @example
 * ```ts
 * import { checkQTensor } from "./checks.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * if (checkQTensor(new Tensor(new Uint8Array(4), [2, 2]), "x", 2) !== "uint8") throw new Error("bad");
 * ```
 */
export function checkQTensor(t: Tensor, what: string, rank: number): Int8Type {
  if (!(t instanceof Tensor)) throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a Tensor`);
  if (t.dtype !== "int8" && t.dtype !== "uint8") {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be an int8 or uint8 tensor, got ${t.dtype}`);
  }
  if (t.rank !== rank) {
    throw new QuantlabError("SHAPE_MISMATCH", `${what} must have rank ${rank}, got shape [${t.shape}]`);
  }
  return t.dtype;
}

/**
 * Check a zero point (scalar or one per channel) against an 8-bit type and
 * return it as an Int32Array of length `n` (a scalar is broadcast).
 *
 * @example
 * ```ts
 * import { zeroPointVector } from "./checks.ts";
 * if (zeroPointVector(3, "uint8", 2, "xZeroPoint").join() !== "3,3") throw new Error("bad");
 * ```
 */
export function zeroPointVector(
  zp: number | ArrayLike<number>,
  dtype: Int8Type,
  n: number,
  what: string,
): Int32Array {
  const { qmin, qmax } = int8Range(dtype);
  const out = new Int32Array(n);
  if (typeof zp === "number") {
    checkOneZeroPoint(zp, qmin, qmax, dtype, what);
    out.fill(zp);
    return out;
  }
  if (zp.length !== n && zp.length !== 1) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what} must be a scalar or hold ${n} values (one per channel), got ${zp.length}`,
    );
  }
  for (let i = 0; i < n; i++) {
    const v = zp.length === 1 ? zp[0] : zp[i];
    checkOneZeroPoint(v, qmin, qmax, dtype, zp.length === 1 ? what : `${what}[${i}]`);
    out[i] = v;
  }
  return out;
}

function checkOneZeroPoint(v: number, qmin: number, qmax: number, dtype: Int8Type, what: string): void {
  if (!Number.isInteger(v) || v < qmin || v > qmax) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${what} must be an integer in [${qmin}, ${qmax}] (the ${dtype} range), got ${v}`,
    );
  }
}

/**
 * Check scales (scalar or one per channel: positive, finite) and return them
 * as a Float64Array of length `n` holding the float32-rounded values (scales
 * are float32 in ONNX and PyTorch).
 *
 * @example
 * ```ts
 * import { scaleVector } from "./checks.ts";
 * if (scaleVector([0.5, 0.25], 2, "wScale")[1] !== 0.25) throw new Error("bad");
 * ```
 */
export function scaleVector(scale: number | ArrayLike<number>, n: number, what: string): Float64Array {
  const out = new Float64Array(n);
  if (typeof scale === "number") {
    out.fill(checkOneScale(scale, what));
    return out;
  }
  if (scale.length !== n && scale.length !== 1) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `${what} must be a scalar or hold ${n} values (one per channel), got ${scale.length}`,
    );
  }
  for (let i = 0; i < n; i++) {
    out[i] = checkOneScale(scale.length === 1 ? scale[0] : scale[i], scale.length === 1 ? what : `${what}[${i}]`);
  }
  return out;
}

function checkOneScale(s: number, what: string): number {
  if (typeof s !== "number" || !Number.isFinite(s)) {
    throw new QuantlabError("NON_FINITE", `${what} must be a finite positive number, got ${s}`);
  }
  const f = Math.fround(s);
  if (!(f > 0)) throw new QuantlabError("INVALID_ARGUMENT", `${what} must be > 0 (as float32), got ${s}`);
  return f;
}

/**
 * Length of a scale/zero-point argument (1 for a scalar).
 *
 * @example
 * ```ts
 * import { vectorLength } from "./checks.ts";
 * if (vectorLength(0.5) !== 1 || vectorLength([1, 2, 3]) !== 3 || vectorLength(undefined) !== 1) throw new Error("bad");
 * ```
 */
export function vectorLength(v: number | ArrayLike<number> | undefined): number {
  return v === undefined || typeof v === "number" ? 1 : v.length;
}
