/**
 * Storage accounting for low-bit weights: payload bits (codes) plus scale /
 * codebook bits, per weight, and sparsity.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** Bits needed to store quantized weights. */
export interface BitAccounting {
  /** Number of weights. */
  readonly weights: number;
  /** Bits of the codes (payload), all weights together. */
  readonly payloadBits: number;
  /** Bits of the scales / codebooks / bases, all together. */
  readonly scaleBits: number;
  /** `payloadBits + scaleBits`. */
  readonly totalBits: number;
  /** Payload bits per weight. */
  readonly payloadBitsPerWeight: number;
  /** Scale bits per weight. */
  readonly scaleBitsPerWeight: number;
  /** Total bits per weight. */
  readonly bitsPerWeight: number;
  /** `32 / bitsPerWeight`: compression against float32. */
  readonly compressionRatio: number;
}

/**
 * Account `weights` weights stored with `payloadBitsPerWeight` bits each plus
 * `scaleCount` stored numbers of `scaleBits` bits each (default float32).
 *
 * @example
 * ```ts
 * import { bitAccounting } from "./accounting.ts";
 * // 64 binary weights in 2 channels with one float32 scale each: 1 + 64/64 = 2 bits per weight
 * const a = bitAccounting(64, 1, 2);
 * if (a.bitsPerWeight !== 2 || a.compressionRatio !== 16) throw new Error("bad");
 * ```
 */
export function bitAccounting(
  weights: number,
  payloadBitsPerWeight: number,
  scaleCount: number,
  scaleBits = 32,
): BitAccounting {
  if (!Number.isInteger(weights) || weights < 1) {
    throw new QuantlabError("EMPTY_TENSOR", `bit accounting needs a positive weight count, got ${weights}`);
  }
  if (!(payloadBitsPerWeight >= 0) || !(scaleCount >= 0) || !(scaleBits >= 0)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `bit accounting needs non-negative payload bits, scale count and scale bits, got ${payloadBitsPerWeight}, ${scaleCount}, ${scaleBits}`,
    );
  }
  const payloadBits = weights * payloadBitsPerWeight;
  const sBits = scaleCount * scaleBits;
  const totalBits = payloadBits + sBits;
  const bitsPerWeight = totalBits / weights;
  return {
    weights,
    payloadBits,
    scaleBits: sBits,
    totalBits,
    payloadBitsPerWeight,
    scaleBitsPerWeight: sBits / weights,
    bitsPerWeight,
    compressionRatio: 32 / bitsPerWeight,
  };
}

/**
 * Fraction of exact zeros in `values` (0 for an empty array).
 *
 * @example
 * ```ts
 * import { sparsity } from "./accounting.ts";
 * if (sparsity([0, 1, 0, -2]) !== 0.5) throw new Error("bad");
 * ```
 */
export function sparsity(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return 0;
  let z = 0;
  for (let i = 0; i < n; i++) if (values[i] === 0) z++;
  return z / n;
}
