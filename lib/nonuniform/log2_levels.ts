/**
 * Power-of-two (logarithmic) levels: `{0} ∪ {±alpha * 2^-k : k = 0 .. M-1}` with
 * `M = 2^(bits-1) - 1`, i.e. `2^bits - 1` levels (one sign bit, `bits - 1` bits of
 * exponent index, and one exponent code spent on an exact zero; the one code left
 * over is unused, as in a restricted-range symmetric grid). Needs `bits >= 2`.
 *
 * The scale `alpha` (the largest magnitude) comes from the data:
 * - `"max"`: `alpha = max|r|` (nothing is clipped);
 * - `"mse"`: `alpha` minimising `sum (Q(r) - r)^2`, found by a grid search over
 *   `alpha = max|r| * 2^-t`, `t` in `[0, 4]` in steps of 1/32, then golden-section
 *   refinement between the best grid point's neighbours (a local optimum of a
 *   piecewise-smooth function; never worse than the best grid point, which
 *   includes `max|r|`).
 * With `powerOfTwo`, `alpha` itself is a power of two, so every level is
 * exactly `±2^e` (shift-only multiplies): `"max"` takes the smallest power of two
 * `>= max|r|`, `"mse"` the power of two with the lowest error among
 * `2^e`, `e = ceil(log2 max|r|) - 8 .. ceil(log2 max|r|)`.
 * An all-zero slot gets `alpha = 1` (every value encodes to the zero level).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { cellEnds, type SortedSlot, sortedSSE } from "./sorted_slot.ts";

/** How the log2 scale `alpha` is chosen. */
export type Log2Scale = "max" | "mse";

/**
 * The ascending log2 levels for `alpha` and `bits` (2..8): `2^bits - 1` values.
 *
 * @example
 * ```ts
 * import { log2Levels } from "./log2_levels.ts";
 * if (log2Levels(1, 3).join() !== "-1,-0.5,-0.25,0,0.25,0.5,1") throw new Error("bad");
 * ```
 */
export function log2Levels(alpha: number, bits: number): Float64Array {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
    throw new QuantlabError(
      "BITS_OUT_OF_RANGE",
      `log2 levels need bits from 2 to 8 (a sign, a zero level and at least one magnitude), got ${bits}`,
    );
  }
  const m = 2 ** (bits - 1) - 1;
  const out = new Float64Array(2 * m + 1);
  for (let k = 0; k < m; k++) {
    const v = alpha * 2 ** -k;
    out[k] = -v;
    out[2 * m - k] = v;
  }
  return out;
}

function sseFor(slot: SortedSlot, alpha: number, bits: number): number {
  const lv = log2Levels(alpha, bits);
  return sortedSSE(slot, lv, cellEnds(slot.sorted, lv));
}

/**
 * Fit the log2 scale `alpha` of one sorted slot.
 *
 * @example
 * ```ts
 * import { fitLog2Scale } from "./log2_levels.ts";
 * import { sortedSlot } from "./sorted_slot.ts";
 * const s = sortedSlot(new Float64Array([-3, 0.1, 1.5, 2]));
 * if (fitLog2Scale(s, 3, "max", false) !== 3 || fitLog2Scale(s, 3, "max", true) !== 4) throw new Error("bad");
 * ```
 */
export function fitLog2Scale(slot: SortedSlot, bits: number, mode: Log2Scale, powerOfTwo: boolean): number {
  const s = slot.sorted;
  const maxAbs = Math.max(Math.abs(s[0]), Math.abs(s[s.length - 1]));
  if (maxAbs === 0) return 1;
  if (mode === "max") return powerOfTwo ? 2 ** Math.ceil(Math.log2(maxAbs)) : maxAbs;
  if (powerOfTwo) {
    const top = Math.ceil(Math.log2(maxAbs));
    let best = 2 ** top, bestErr = sseFor(slot, best, bits);
    for (let e = top - 1; e >= top - 8; e--) {
      const err = sseFor(slot, 2 ** e, bits);
      if (err < bestErr) {
        bestErr = err;
        best = 2 ** e;
      }
    }
    return best;
  }
  const steps = 128;
  let bi = 0, bestErr = Infinity;
  const errs = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) {
    errs[i] = sseFor(slot, maxAbs * 2 ** (-i / 32), bits);
    if (errs[i] < bestErr) {
      bestErr = errs[i];
      bi = i;
    }
  }
  // golden-section search on t in [t(bi-1), t(bi+1)]
  let a = Math.max(0, bi - 1) / 32, b = Math.min(steps, bi + 1) / 32;
  const gr = (Math.sqrt(5) - 1) / 2;
  let c = b - gr * (b - a), d = a + gr * (b - a);
  let fc = sseFor(slot, maxAbs * 2 ** -c, bits), fd = sseFor(slot, maxAbs * 2 ** -d, bits);
  for (let it = 0; it < 40; it++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - gr * (b - a);
      fc = sseFor(slot, maxAbs * 2 ** -c, bits);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + gr * (b - a);
      fd = sseFor(slot, maxAbs * 2 ** -d, bits);
    }
  }
  const tBest = fc < fd ? c : d;
  const fBest = Math.min(fc, fd);
  return fBest < bestErr ? maxAbs * 2 ** -tBest : maxAbs * 2 ** (-bi / 32);
}
