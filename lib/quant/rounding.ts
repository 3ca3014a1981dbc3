/**
 * Rounding modes for quantization, written for hot loops (no `Math.round`).
 *
 * - `nearest-even`: ties to even (IEEE default; what PyTorch's `nearbyint`
 *   and ONNX `QuantizeLinear` use).
 * - `nearest-away`: ties away from zero (C `round`).
 * - `floor`, `ceil`.
 * - `stochastic`: `floor(x)` with probability `ceil(x) - x`, else `ceil(x)`;
 *   unbiased (`E[round(x)] = x`), driven by a seeded {@link Prng}.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";

/** A rounding mode name. */
export type RoundingMode = "nearest-even" | "nearest-away" | "floor" | "ceil" | "stochastic";

/**
 * All rounding modes, for validation and iteration.
 *
 * @example
 * ```ts
 * import { ROUNDING_MODES } from "./rounding.ts";
 * if (!ROUNDING_MODES.includes("nearest-even") || !ROUNDING_MODES.includes("floor")) throw new Error("bad");
 * ```
 */
export const ROUNDING_MODES: readonly RoundingMode[] = Object.freeze([
  "nearest-even",
  "nearest-away",
  "floor",
  "ceil",
  "stochastic",
]);

/**
 * 1.5 * 2^52: adding then subtracting it rounds a double to an integer, ties to even, for |x| < 2^51.
 *
 * @example
 * ```ts
 * import { ROUND_MAGIC } from "./rounding.ts";
 * if ((2.5 + ROUND_MAGIC) - ROUND_MAGIC !== 2 || (3.5 + ROUND_MAGIC) - ROUND_MAGIC !== 4) throw new Error("bad");
 * ```
 */
export const ROUND_MAGIC = 6755399441055744;

/**
 * Round to nearest, ties to even, for |x| < 2^51 (exact IEEE behaviour).
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "./rounding.ts";
 * if (roundHalfEven(2.5) !== 2 || roundHalfEven(3.5) !== 4 || roundHalfEven(-2.5) !== -2) throw new Error("bad");
 * ```
 */
export function roundHalfEven(x: number): number {
  return (x + ROUND_MAGIC) - ROUND_MAGIC;
}

/**
 * Round to nearest, ties away from zero.
 *
 * @example
 * ```ts
 * import { roundHalfAway } from "./rounding.ts";
 * if (roundHalfAway(2.5) !== 3 || roundHalfAway(-2.5) !== -3) throw new Error("bad");
 * ```
 */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * Validate a rounding mode name; throws `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import { checkRoundingMode } from "./rounding.ts";
 * if (checkRoundingMode("floor") !== "floor") throw new Error("bad");
 * try {
 *   checkRoundingMode("sideways");
 *   throw new Error("no throw");
 * } catch (e) {
 *   if (!(e as Error).message.includes("sideways")) throw e;
 * }
 * ```
 */
export function checkRoundingMode(mode: string): RoundingMode {
  if (!(ROUNDING_MODES as readonly string[]).includes(mode)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `rounding mode must be one of ${ROUNDING_MODES.join(", ")}, got "${mode}"`,
    );
  }
  return mode as RoundingMode;
}

/**
 * A scalar rounding function for a mode; stochastic draws from `rng`.
 *
 * @example
 * ```ts
 * import { rounder } from "./rounding.ts";
 * if (rounder("nearest-even")(2.5) !== 2 || rounder("floor")(-1.5) !== -2) throw new Error("bad");
 * ```
 */
export function rounder(mode: RoundingMode, rng?: Prng): (x: number) => number {
  switch (mode) {
    case "nearest-even":
      return roundHalfEven;
    case "nearest-away":
      return roundHalfAway;
    case "floor":
      return Math.floor;
    case "ceil":
      return Math.ceil;
    case "stochastic": {
      const r = rng ?? new Prng(0);
      return (x: number) => Math.floor(x + r.nextFloat());
    }
  }
}

/**
 * Round every element of `src` into `out` with the given mode.
 *
 * @example
 * ```ts
 * import { roundArray } from "./rounding.ts";
 * const out = roundArray(new Float64Array([0.5, 1.5, -0.5]), "nearest-even");
 * if (out.join() !== "0,2,0") throw new Error(out.join());
 * ```
 */
export function roundArray(
  src: ArrayLike<number>,
  mode: RoundingMode,
  options: { seed?: number; out?: Float64Array | Float32Array } = {},
): Float64Array | Float32Array {
  const out = options.out ?? new Float64Array(src.length);
  const n = src.length;
  switch (mode) {
    case "nearest-even":
      for (let i = 0; i < n; i++) out[i] = (src[i] + ROUND_MAGIC) - ROUND_MAGIC;
      break;
    case "nearest-away":
      for (let i = 0; i < n; i++) out[i] = roundHalfAway(src[i]);
      break;
    case "floor":
      for (let i = 0; i < n; i++) out[i] = Math.floor(src[i]);
      break;
    case "ceil":
      for (let i = 0; i < n; i++) out[i] = Math.ceil(src[i]);
      break;
    case "stochastic": {
      const rng = new Prng(options.seed ?? 0);
      for (let i = 0; i < n; i++) out[i] = Math.floor(src[i] + rng.nextFloat());
      break;
    }
  }
  return out;
}
