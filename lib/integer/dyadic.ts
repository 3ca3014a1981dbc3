/**
 * Dyadic multipliers: a real multiplier `M > 0` as an integer times a power of two.
 *
 * - {@link quantizeMultiplier} is TFLite's `QuantizeMultiplier`
 *   (`tensorflow/lite/kernels/internal/quantization_util.cc`), bit-exact:
 *   `M = q * 2^shift` with `q` in `[0.5, 1)` (C `frexp`), `M0 = round(q * 2^31)`
 *   (`std::round`, ties away from zero), `M0 = 2^31` folded to `2^30` with
 *   `shift + 1`, and `shift < -31` flushed to `M0 = 0, shift = 0`. Then
 *   `M ~ M0 * 2^(shift - 31)`, i.e. `M0 * 2^-n` with `n = 31 - shift`
 *   (`rightShift`); `M0` lies in `[2^30, 2^31)`.
 * - {@link dyadicApproximation} is the survey's simpler form `b / 2^c` with `b`
 *   of a chosen bit width (or the fewest bits meeting a relative-error target),
 *   reporting the relative error.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";

/** A TFLite-style quantized multiplier: `M ~ multiplier * 2^(shift - 31)`. */
export interface QuantizedMultiplier {
  /** `M0`, an int32 in `[2^30, 2^31)` (0 only when the multiplier flushed to zero). */
  readonly multiplier: number;
  /** TFLite's `shift` (positive = left shift); `M ~ M0 * 2^(shift - 31)`. */
  readonly shift: number;
  /** `n = 31 - shift`: `M ~ M0 * 2^-n`. */
  readonly rightShift: number;
}

/** A dyadic number `b / 2^c` approximating a real multiplier. */
export interface DyadicApproximation {
  /** The integer numerator `b` (positive). */
  readonly b: number;
  /** The exponent `c` (negative when `M >= 2^bits`). */
  readonly c: number;
  /** `b / 2^c` as a double. */
  readonly value: number;
  /** `|b / 2^c - M| / M`. */
  readonly relError: number;
  /** Bits of `b`: `b < 2^bits`. */
  readonly bits: number;
}

const scratch = new DataView(new ArrayBuffer(8));

/**
 * C `frexp` for a positive finite double: `x = fraction * 2^exponent` with
 * `fraction` in `[0.5, 1)`, exact (reads the IEEE-754 bits; handles subnormals).
 *
 * @example
 * ```ts
 * import { frexp } from "./dyadic.ts";
 * const { fraction, exponent } = frexp(12);
 * if (fraction !== 0.75 || exponent !== 4) throw new Error("bad");
 * ```
 */
export function frexp(x: number): { fraction: number; exponent: number } {
  if (!(x > 0) || !Number.isFinite(x)) {
    throw new QuantlabError("INVALID_ARGUMENT", `frexp: x must be a positive finite number, got ${x}`);
  }
  let bias = 0;
  if (x < 2.2250738585072014e-308) { // subnormal: scale into the normal range first
    x *= 18446744073709551616; // 2^64
    bias = -64;
  }
  scratch.setFloat64(0, x);
  const hi = scratch.getUint32(0);
  const e = (hi >>> 20) & 0x7ff;
  scratch.setUint32(0, (hi & 0x800fffff) | (1022 << 20));
  return { fraction: scratch.getFloat64(0), exponent: e - 1022 + bias };
}

/**
 * Throw unless `m` is a positive finite number; `what` names the argument.
 *
 * @example
 * ```ts
 * import { checkMultiplier } from "./dyadic.ts";
 * checkMultiplier(0.25);
 * try {
 *   checkMultiplier(NaN, "scale ratio");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("scale ratio")) throw e;
 * }
 * ```
 */
export function checkMultiplier(m: number, what = "multiplier"): void {
  if (typeof m !== "number" || Number.isNaN(m) || !Number.isFinite(m)) {
    throw new QuantlabError("NON_FINITE", `${what} must be a finite positive number, got ${m}`);
  }
  if (!(m > 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be > 0, got ${m}`);
  }
}

/**
 * TFLite `QuantizeMultiplier`: `M ~ M0 * 2^(shift - 31)`, `M0` in `[2^30, 2^31)`.
 * Works for `M >= 1` too (positive `shift`). Multipliers below about `2^-32`
 * flush to `{ multiplier: 0, shift: 0 }` exactly as in TFLite. Throws
 * `INVALID_ARGUMENT` for `M <= 0` and `NON_FINITE` for NaN/Infinity.
 *
 * @example
 * ```ts
 * import { quantizeMultiplier } from "./dyadic.ts";
 * const q = quantizeMultiplier(0.75);
 * // 0.75 = 0.75 * 2^0 -> M0 = 0.75 * 2^31, shift 0
 * if (q.multiplier !== 1610612736 || q.shift !== 0 || q.rightShift !== 31) throw new Error(JSON.stringify(q));
 * const big = quantizeMultiplier(3);
 * if (big.multiplier !== 1610612736 || big.shift !== 2) throw new Error("bad");
 * ```
 */
export function quantizeMultiplier(m: number, what = "multiplier"): QuantizedMultiplier {
  checkMultiplier(m, what);
  const { fraction, exponent } = frexp(m);
  let shift = exponent;
  let q = Math.floor(fraction * 2147483648 + 0.5); // std::round of a positive value (exact: < 2^32)
  if (q === 2147483648) {
    q = 1073741824;
    shift++;
  }
  if (shift < -31) {
    shift = 0;
    q = 0;
  }
  return { multiplier: q, shift, rightShift: 31 - shift };
}

/**
 * {@link quantizeMultiplier} for many multipliers (per-channel requantization).
 *
 * @example
 * ```ts
 * import { quantizeMultipliers } from "./dyadic.ts";
 * const { multipliers, shifts } = quantizeMultipliers([0.5, 0.25]);
 * if (multipliers[0] !== 1 << 30 || shifts[0] !== 0 || shifts[1] !== -1) throw new Error("bad");
 * ```
 */
export function quantizeMultipliers(
  ms: ArrayLike<number>,
  what = "multipliers",
): { multipliers: Int32Array; shifts: Int32Array } {
  const multipliers = new Int32Array(ms.length), shifts = new Int32Array(ms.length);
  for (let i = 0; i < ms.length; i++) {
    const q = quantizeMultiplier(ms[i], `${what}[${i}]`);
    multipliers[i] = q.multiplier;
    shifts[i] = q.shift;
  }
  return { multipliers, shifts };
}

/**
 * The real value `M0 * 2^(shift - 31)` of a quantized multiplier.
 *
 * @example
 * ```ts
 * import { dyadicValue, quantizeMultiplier } from "./dyadic.ts";
 * if (Math.abs(dyadicValue(quantizeMultiplier(0.1)) - 0.1) > 1e-10) throw new Error("bad");
 * ```
 */
export function dyadicValue(q: { multiplier: number; shift: number }): number {
  return q.multiplier * 2 ** (q.shift - 31);
}

/** How to choose `c` in {@link dyadicApproximation}: exactly one field. */
export type DyadicPrecision =
  | { readonly bits: number }
  | { readonly maxRelError: number }
  | { readonly shift: number };

/**
 * Approximate `M > 0` by the dyadic number `b / 2^c`.
 *
 * - `{ bits }` (1..31): `b` has exactly `bits` significant bits
 *   (`2^(bits-1) <= b < 2^bits`), `c = bits - e` where `M = f * 2^e`, `f` in
 *   `[0.5, 1)`; relative error at most `2^-bits`.
 * - `{ maxRelError }`: the fewest bits (up to 31) whose relative error is at
 *   most the target; `INVALID_ARGUMENT` if 31 bits do not suffice.
 * - `{ shift }`: a fixed `c` (integer, -64..64); `b = round(M * 2^c)` must be
 *   between 1 and `2^31 - 1`.
 *
 * `b` is rounded to nearest, ties away from zero. The default is `{ bits: 16 }`.
 *
 * @example
 * ```ts
 * import { dyadicApproximation } from "./dyadic.ts";
 * const d = dyadicApproximation(0.1, { bits: 8 });
 * // 0.1 = 0.8 * 2^-3 -> b = round(0.8 * 256) = 205, c = 11: 205 / 2048 = 0.10009765625
 * if (d.b !== 205 || d.c !== 11 || Math.abs(d.relError - 0.0009765625) > 1e-12) throw new Error(JSON.stringify(d));
 * const e = dyadicApproximation(0.1, { maxRelError: 1e-6 });
 * if (e.relError > 1e-6 || e.bits > 20) throw new Error("bad");
 * ```
 */
export function dyadicApproximation(m: number, precision: DyadicPrecision = { bits: 16 }): DyadicApproximation {
  checkMultiplier(m, "dyadic multiplier");
  const p = precision as { bits?: number; maxRelError?: number; shift?: number };
  const given = [p.bits, p.maxRelError, p.shift].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `dyadic precision must give exactly one of bits, maxRelError or shift, got ${JSON.stringify(precision)}`,
    );
  }
  if (p.bits !== undefined) {
    if (!Number.isInteger(p.bits) || p.bits < 1 || p.bits > 31) {
      throw new QuantlabError("BITS_OUT_OF_RANGE", `dyadic precision bits must be an integer 1..31, got ${p.bits}`);
    }
    return withBits(m, p.bits);
  }
  if (p.maxRelError !== undefined) {
    const t = p.maxRelError;
    if (!(t > 0) || !Number.isFinite(t)) {
      throw new QuantlabError("INVALID_ARGUMENT", `dyadic precision maxRelError must be a positive number, got ${t}`);
    }
    for (let bits = 1; bits <= 31; bits++) {
      const d = withBits(m, bits);
      if (d.relError <= t) return d;
    }
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `dyadic precision maxRelError ${t} is not reachable with a 31-bit numerator for multiplier ${m}`,
    );
  }
  const c = p.shift!;
  if (!Number.isInteger(c) || c < -64 || c > 64) {
    throw new QuantlabError("INVALID_ARGUMENT", `dyadic precision shift must be an integer -64..64, got ${c}`);
  }
  const b = Math.floor(m * 2 ** c + 0.5);
  if (b < 1 || b > 2147483647) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `dyadic precision shift ${c} gives numerator ${b} for multiplier ${m}; expected 1..2^31-1`,
    );
  }
  return make(m, b, c);
}

function withBits(m: number, bits: number): DyadicApproximation {
  const { fraction, exponent } = frexp(m);
  let b = Math.floor(fraction * 2 ** bits + 0.5);
  let c = bits - exponent;
  if (b === 2 ** bits) {
    b /= 2;
    c--;
  }
  return make(m, b, c);
}

function make(m: number, b: number, c: number): DyadicApproximation {
  const value = b * 2 ** -c;
  let bits = 0;
  while (2 ** bits <= b) bits++;
  return { b, c, value, relError: Math.abs(value - m) / m, bits };
}
