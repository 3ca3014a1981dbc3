/**
 * Error measures between a reference and an approximation (float64 accumulation).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { asFloatTensor, type FloatInput } from "../tensor/tensor.ts";

function pair(a: FloatInput, b: FloatInput): [Float32Array, Float32Array] {
  const x = asFloatTensor(a, "reference").data, y = asFloatTensor(b, "approximation").data;
  if (x.length !== y.length) {
    throw new QuantlabError("SHAPE_MISMATCH", `reference has ${x.length} elements but approximation has ${y.length}`);
  }
  if (x.length === 0) throw new QuantlabError("EMPTY_TENSOR", "error measures need non-empty tensors");
  return [x, y];
}

/**
 * Mean squared error.
 *
 * @example
 * ```ts
 * import { mse } from "./metrics.ts";
 * if (mse([1, 2], [1, 4]) !== 2) throw new Error("bad");
 * ```
 */
export function mse(reference: FloatInput, approx: FloatInput): number {
  const [x, y] = pair(reference, approx);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    s += d * d;
  }
  return s / x.length;
}

/**
 * Signal-to-quantization-noise ratio in dB: `10 log10(sum r^2 / sum (r - r~)^2)`
 * (`Infinity` when the approximation is exact).
 *
 * @example
 * ```ts
 * import { sqnr } from "./metrics.ts";
 * if (Math.abs(sqnr([1, 1], [1.5, 0.5]) - 10 * Math.log10(4)) > 1e-12) throw new Error("bad");
 * ```
 */
export function sqnr(reference: FloatInput, approx: FloatInput): number {
  const [x, y] = pair(reference, approx);
  let sig = 0, noise = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    sig += x[i] * x[i];
    noise += d * d;
  }
  return 10 * Math.log10(sig / noise);
}

/**
 * Largest absolute difference.
 *
 * @example
 * ```ts
 * import { maxAbsError } from "./metrics.ts";
 * if (maxAbsError([1, 2], [1.5, 2]) !== 0.5) throw new Error("bad");
 * ```
 */
export function maxAbsError(reference: FloatInput, approx: FloatInput): number {
  const [x, y] = pair(reference, approx);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (d > m) m = d;
  }
  return m;
}

/**
 * Cosine similarity (1 for identical directions; NaN if either is all zeros).
 *
 * @example
 * ```ts
 * import { cosineSimilarity } from "./metrics.ts";
 * if (Math.abs(cosineSimilarity([1, 0], [2, 0]) - 1) > 1e-12) throw new Error("bad");
 * ```
 */
export function cosineSimilarity(reference: FloatInput, approx: FloatInput): number {
  const [x, y] = pair(reference, approx);
  let xy = 0, xx = 0, yy = 0;
  for (let i = 0; i < x.length; i++) {
    xy += x[i] * y[i];
    xx += x[i] * x[i];
    yy += y[i] * y[i];
  }
  return xy / Math.sqrt(xx * yy);
}
