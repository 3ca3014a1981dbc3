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
  const acc = new SqnrAccumulator();
  acc.add(x, y);
  return acc.db();
}

/**
 * `10 log10(signal / noise)` in dB from accumulated powers (`Infinity` when the noise is 0) — the one SQNR formula
 * every quantlab module uses.
 *
 * @example
 * ```ts
 * import { sqnrFromPowers } from "./metrics.ts";
 * if (sqnrFromPowers(100, 1) !== 20 || sqnrFromPowers(1, 0) !== Infinity) throw new Error("bad");
 * ```
 */
export function sqnrFromPowers(signal: number, noise: number): number {
  return noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
}

/**
 * Streaming SQNR: signal and noise powers summed in float64 over any number of (reference, approximation) pairs.
 *
 * @example
 * ```ts
 * import { SqnrAccumulator } from "./metrics.ts";
 * const a = new SqnrAccumulator();
 * a.add(new Float32Array([1, 1]), new Float32Array([1.5, 1]));
 * a.add(new Float32Array([1]), new Float32Array([0.5]));
 * if (Math.abs(a.db() - 10 * Math.log10(3 / 0.5)) > 1e-12) throw new Error(String(a.db()));
 * ```
 */
export class SqnrAccumulator {
  /** Sum of reference squares. */
  signal = 0;
  /** Sum of squared differences. */
  noise = 0;

  /** Fold in one pair of equal-length arrays. */
  add(x: ArrayLike<number>, y: ArrayLike<number>): void {
    let s = 0, e = 0;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      s += x[i] * x[i];
      e += d * d;
    }
    this.signal += s;
    this.noise += e;
  }

  /** The SQNR so far, dB. */
  db(): number {
    return sqnrFromPowers(this.signal, this.noise);
  }
}

/**
 * Mean over equal contiguous slices (rows, channels) of each slice's SQNR in dB; a slice reproduced exactly
 * counts as 300 dB (noise floored at 1e-30) so the mean stays finite.
 *
 * @example
 * ```ts
 * import { meanSliceSqnr } from "./metrics.ts";
 * const x = new Float32Array([3, 4, 1, 1]), y = new Float32Array([3, 3, 1, 0]);
 * // slice 0: 25 / 1 -> 13.98 dB; slice 1: 2 / 1 -> 3.01 dB
 * const m = meanSliceSqnr(x, y, 2);
 * if (Math.abs(m - (10 * Math.log10(25) + 10 * Math.log10(2)) / 2) > 1e-12) throw new Error(String(m));
 * ```
 */
export function meanSliceSqnr(x: ArrayLike<number>, y: ArrayLike<number>, sliceLength: number): number {
  const slices = Math.floor(x.length / sliceLength);
  let total = 0;
  for (let r = 0; r < slices; r++) {
    let sig = 0, noise = 0;
    for (let j = r * sliceLength; j < (r + 1) * sliceLength; j++) {
      const d = x[j] - y[j];
      sig += x[j] * x[j];
      noise += d * d;
    }
    total += 10 * Math.log10(sig / Math.max(noise, 1e-30));
  }
  return total / slices;
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
