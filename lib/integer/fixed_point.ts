/**
 * gemmlowp / TensorFlow Lite fixed-point primitives, bit-exact in JavaScript.
 *
 * Reference: TFLite `tensorflow/lite/kernels/internal/common.{h,cc}` and
 * gemmlowp `fixedpoint/fixedpoint.h`:
 *
 * - `SaturatingRoundingDoublingHighMul(a, b)`: `(a*b + nudge) / 2^31` with C
 *   truncating division, `nudge = 2^30` if `a*b >= 0` else `1 - 2^30`, so
 *   `a*b / 2^31` rounded to nearest with ties toward +infinity; saturates only
 *   for `a = b = INT32_MIN` (the ARM `VQRDMULH` instruction).
 * - `RoundingDivideByPOT(x, e)`: `x / 2^e` rounded to nearest, ties away from 0.
 * - `MultiplyByQuantizedMultiplier(x, M0, shift)` (TFLite's default, "double
 *   rounding"): `RoundingDivideByPOT(SRDHM(x * 2^max(shift,0), M0), max(-shift,0))`,
 *   the `x * 2^left` product wrapping in 32 bits as compiled C does.
 * - The `TFLITE_SINGLE_ROUNDING` variant: `(x*M0 + 2^(30-shift)) >> (31-shift)`
 *   (one rounding, ties toward +infinity).
 *
 * **Exact 64-bit products without BigInt.** `a*b` needs up to 62 bits, more
 * than a float64 holds (53). The hot paths split `|b| = bh*2^16 + bl`
 * (`bh <= 2^15`, `bl < 2^16`), so `|a|*bh < 2^46` and `|a|*bl < 2^47` are exact
 * doubles, and use `floor((P*2^16 + Q + n) / 2^31) = floor((P + floor((Q + n) / 2^16)) / 2^15)`
 * (nested floor division by positive integers is exact); every intermediate
 * stays below 2^48 and every division is by a power of two, so each step is an
 * exact float64 operation. BigInt versions ({@link saturatingRoundingDoublingHighMulBig})
 * serve as the test oracle.
 *
 * @module
 */

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const TWO16 = 65536;
const INV16 = 1 / 65536;
const INV15 = 1 / 32768;
const TWO30 = 1073741824;

/**
 * gemmlowp `SaturatingRoundingDoublingHighMul` for int32 `a`, `b`: the high 32
 * bits of `2*a*b`, rounded (ties toward +infinity), saturating `INT32_MIN^2` to
 * `INT32_MAX`. Exact, without BigInt.
 *
 * @example
 * ```ts
 * import { saturatingRoundingDoublingHighMul } from "./fixed_point.ts";
 * // 0.5 * 0.5 = 0.25 in Q0.31
 * if (saturatingRoundingDoublingHighMul(1 << 30, 1 << 30) !== 1 << 29) throw new Error("bad");
 * if (saturatingRoundingDoublingHighMul(-2147483648, -2147483648) !== 2147483647) throw new Error("no saturation");
 * ```
 */
export function saturatingRoundingDoublingHighMul(a: number, b: number): number {
  a |= 0;
  b |= 0;
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const neg = (a < 0) !== (b < 0) && a !== 0 && b !== 0;
  const A = a < 0 ? -a : a;
  const B = b < 0 ? -b : b;
  const bh = Math.floor(B * INV16), bl = B - bh * TWO16;
  // |ab| >= 0: floor((|ab| + 2^30) / 2^31); ab < 0: -floor((|ab| + 2^30 - 1) / 2^31) (C truncation).
  const n = neg ? TWO30 - 1 : TWO30;
  const q = Math.floor((A * bh + Math.floor((A * bl + n) * INV16)) * INV15);
  return neg ? -q | 0 : q | 0;
}

/**
 * gemmlowp `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest with ties
 * away from zero, for int32 `x` and `exponent` in `0..31`.
 *
 * @example
 * ```ts
 * import { roundingDivideByPOT } from "./fixed_point.ts";
 * if (roundingDivideByPOT(5, 1) !== 3 || roundingDivideByPOT(-5, 1) !== -3 || roundingDivideByPOT(-6, 2) !== -2) {
 *   throw new Error("bad");
 * }
 * ```
 */
export function roundingDivideByPOT(x: number, exponent: number): number {
  x |= 0;
  const mask = (2 ** exponent - 1) | 0;
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return ((x >> exponent) + (remainder > threshold ? 1 : 0)) | 0;
}

/**
 * TFLite `MultiplyByQuantizedMultiplier(int32 x, int32 M0, int shift)` (the
 * default double-rounding build): `x * M0 * 2^(shift - 31)` rounded, for
 * `shift` in `-31..30`. `x * 2^shift` (left shifts) wraps in 32 bits, as in C.
 *
 * @example
 * ```ts
 * import { multiplyByQuantizedMultiplier } from "./fixed_point.ts";
 * import { quantizeMultiplier } from "./dyadic.ts";
 * const { multiplier, shift } = quantizeMultiplier(0.25);
 * if (multiplyByQuantizedMultiplier(1000, multiplier, shift) !== 250) throw new Error("bad");
 * if (multiplyByQuantizedMultiplier(-6, multiplier, shift) !== -2) throw new Error("ties away from zero");
 * ```
 */
export function multiplyByQuantizedMultiplier(x: number, quantizedMultiplier: number, shift: number): number {
  const left = shift > 0 ? shift : 0;
  const right = shift > 0 ? 0 : -shift;
  return roundingDivideByPOT(
    saturatingRoundingDoublingHighMul(Math.imul(x, 2 ** left | 0), quantizedMultiplier),
    right,
  );
}

/**
 * TFLite's single-rounding `MultiplyByQuantizedMultiplier` (built with
 * `TFLITE_SINGLE_ROUNDING`): `(x * M0 + 2^(30 - shift)) >> (31 - shift)`, one
 * rounding with ties toward +infinity. Needs `M0 >= 0`, `shift` in `-31..30`,
 * and a result that fits in int32 (as TFLite's DCHECK demands).
 *
 * @example
 * ```ts
 * import { multiplyByQuantizedMultiplierSingleRounding } from "./fixed_point.ts";
 * import { quantizeMultiplier } from "./dyadic.ts";
 * const { multiplier, shift } = quantizeMultiplier(0.25);
 * // -6 * 0.25 = -1.5 rounds up to -1 (double rounding gives -2)
 * if (multiplyByQuantizedMultiplierSingleRounding(-6, multiplier, shift) !== -1) throw new Error("bad");
 * ```
 */
export function multiplyByQuantizedMultiplierSingleRounding(
  x: number,
  quantizedMultiplier: number,
  shift: number,
): number {
  const b = quantizedMultiplier;
  const bh = Math.floor(b * INV16), bl = b - bh * TWO16;
  const k = 31 - shift; // 1..62
  const p = x * bh, q = x * bl; // exact: |p| < 2^46, |q| < 2^47
  let r: number;
  if (k > 16) {
    // floor((p*2^16 + q + 2^(k-1)) / 2^k) = floor((p + 2^(k-17) + floor(q / 2^16)) / 2^(k-16))
    r = Math.floor((p + 2 ** (k - 17) + Math.floor(q * INV16)) / 2 ** (k - 16));
  } else {
    // p * 2^(16-k) is the integer part of a result that must fit in int32, so it is exact.
    r = p * 2 ** (16 - k) + Math.floor((q + 2 ** (k - 1)) / 2 ** k);
  }
  return r | 0;
}

/**
 * BigInt oracle for {@link saturatingRoundingDoublingHighMul} (slow; for tests).
 *
 * @example
 * ```ts
 * import { saturatingRoundingDoublingHighMulBig } from "./fixed_point.ts";
 * // -3 * 0.5 = -1.5 rounds to -1 (ties toward +infinity)
 * if (saturatingRoundingDoublingHighMulBig(-3, 1 << 30) !== -1) throw new Error("bad");
 * ```
 */
export function saturatingRoundingDoublingHighMulBig(a: number, b: number): number {
  if ((a | 0) === INT32_MIN && (b | 0) === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a | 0) * BigInt(b | 0);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number(BigInt.asIntN(32, (ab + nudge) / (1n << 31n))); // BigInt division truncates like C
}

/**
 * BigInt oracle for {@link multiplyByQuantizedMultiplierSingleRounding} (slow; for tests).
 *
 * @example
 * ```ts
 * import { multiplyByQuantizedMultiplierSingleRoundingBig } from "./fixed_point.ts";
 * if (multiplyByQuantizedMultiplierSingleRoundingBig(-6, 1 << 30, -1) !== -1) throw new Error("bad");
 * ```
 */
export function multiplyByQuantizedMultiplierSingleRoundingBig(
  x: number,
  quantizedMultiplier: number,
  shift: number,
): number {
  const total = BigInt(31 - shift);
  const r = (BigInt(x | 0) * BigInt(quantizedMultiplier | 0) + (1n << (total - 1n))) >> total; // arithmetic shift
  return Number(BigInt.asIntN(32, r));
}
