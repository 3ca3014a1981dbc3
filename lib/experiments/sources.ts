/**
 * Seeded synthetic data for experiments: Gaussian, Laplacian, uniform,
 * ReLU-like (one-sided) and heavy-tailed samples with outliers.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";

/** A distribution name {@link sample} knows. */
export type Distribution = "gaussian" | "laplacian" | "uniform" | "relu" | "outliers";

/**
 * `n` seeded samples, float32:
 * - `gaussian`: N(0, 1); `laplacian`: Laplace(0, b = 1/sqrt(2)) (unit variance);
 * - `uniform`: U(-sqrt(3), sqrt(3)) (unit variance);
 * - `relu`: max(0, N(0, 1)) (post-ReLU activations, one-sided);
 * - `outliers`: Laplace(0, 1/sqrt(2)) with 0.01% of values (at least one) replaced by +-U(20, 40) (heavy tail
 *   plus rare outliers).
 *
 * @example
 * ```ts
 * import { sample } from "./sources.ts";
 * const x = sample("relu", 1000, 1);
 * if (x.length !== 1000 || Math.min(...x) !== 0) throw new Error("bad");
 * ```
 */
export function sample(kind: Distribution, n: number, seed: number): Float32Array {
  if (!Number.isInteger(n) || n < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `sample count must be a positive integer, got ${n}`);
  }
  const rng = new Prng(seed);
  const out = new Float32Array(n);
  switch (kind) {
    case "gaussian":
      return rng.fillNormal(out) as Float32Array;
    case "laplacian":
      for (let i = 0; i < n; i++) out[i] = rng.nextLaplace(Math.SQRT1_2);
      return out;
    case "uniform": {
      const a = Math.sqrt(3);
      for (let i = 0; i < n; i++) out[i] = (2 * rng.nextFloat() - 1) * a;
      return out;
    }
    case "relu":
      for (let i = 0; i < n; i++) {
        const v = rng.nextNormal();
        out[i] = v > 0 ? v : 0;
      }
      return out;
    case "outliers": {
      for (let i = 0; i < n; i++) out[i] = rng.nextLaplace(Math.SQRT1_2);
      const k = Math.max(1, Math.floor(n / 10000));
      for (let j = 0; j < k; j++) {
        const i = rng.nextInt(n);
        out[i] = (rng.nextFloat() < 0.5 ? -1 : 1) * (20 + 20 * rng.nextFloat());
      }
      return out;
    }
    default:
      throw new QuantlabError("INVALID_ARGUMENT", `unknown distribution "${kind as string}"`);
  }
}

/**
 * Least-squares slope of `y` against `x`.
 *
 * @example
 * ```ts
 * import { slope } from "./sources.ts";
 * if (Math.abs(slope([1, 2, 3], [2, 4, 6]) - 2) > 1e-12) throw new Error("bad");
 * ```
 */
export function slope(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] / n;
    my += y[i] / n;
  }
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  return sxy / sxx;
}

/**
 * Round to `d` decimals for display in findings.
 *
 * @example
 * ```ts
 * import { fixed } from "./sources.ts";
 * if (fixed(6.0234, 2) !== "6.02") throw new Error("bad");
 * ```
 */
export function fixed(v: number, d = 2): string {
  return v.toFixed(d);
}
