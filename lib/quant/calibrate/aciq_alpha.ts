/**
 * ACIQ's optimal clipping multipliers (Banner, Nahshan & Soudry, "Post
 * training 4-bit quantization of convolutional networks for rapid-deployment",
 * NeurIPS 2019), solved numerically for any bit width.
 *
 * The paper models the expected squared error of clipping a prior to
 * `[-alpha, alpha]` and quantizing it uniformly with `2^M` levels
 * (step `2 alpha / 2^M`, rounding noise `alpha^2 / (3 * 4^M)`):
 *
 * - Laplace(0, b): `E = 2 b^2 exp(-alpha / b) + alpha^2 / (3 * 4^M)`. Setting
 *   the derivative to zero gives `x e^x = 3 * 4^M` for `x = alpha / b`, so
 *   `alpha* = W(3 * 4^M) * b` with `W` the Lambert W function.
 * - Normal(0, sigma^2): `E = (sigma^2 + alpha^2) erfc(alpha / (sigma sqrt 2))
 *   - sqrt(2/pi) alpha sigma exp(-alpha^2 / (2 sigma^2)) + alpha^2 / (3 * 4^M)`;
 *   with `sigma = 1` the derivative over two is
 *   `g(a) = a erfc(a / sqrt 2) - sqrt(2/pi) exp(-a^2/2) + a / (3 * 4^M)`,
 *   increasing in `a` (`g' = erfc(a / sqrt 2) + 1 / (3 * 4^M) > 0`), so its one
 *   root is found by bisection.
 *
 * These reproduce the paper's table (Laplace 2.83, 3.89, 5.03, 6.20, 7.41,
 * 8.64, 9.89 b and Gaussian 1.71, 2.15, 2.55, 2.94, 3.29, 3.61, 3.92 sigma for
 * M = 2..8 bits; the authors' code indexes them by bit width starting at 2)
 * and its 9-bit Laplace value 11.16 b.
 *
 * @module
 */
import { checkBits, QuantlabError } from "../../errors.ts";

/** The prior ACIQ assumes for the values. */
export type AciqPrior = "laplace" | "gaussian";

/**
 * Complementary error function, float64, relative error about 1e-13:
 * the Maclaurin-type series `erf(x) = 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!!`
 * (all terms positive) below 2.5, and the continued fraction
 * `erfc(x) = e^{-x^2}/sqrt(pi) / (x + 1/2 / (x + 1 / (x + 3/2 / (x + ...))))` above.
 *
 * @example
 * ```ts
 * import { erfc } from "./aciq_alpha.ts";
 * if (Math.abs(erfc(1) - 0.15729920705028513) > 1e-15) throw new Error("bad");
 * if (Math.abs(erfc(3) / 2.209049699858544e-5 - 1) > 1e-12) throw new Error("bad");
 * ```
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) {
    let term = x, sum = x;
    const x2 = 2 * x * x;
    for (let n = 1; n < 200; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + (k / 2) / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/**
 * Principal branch of the Lambert W function for `z >= 0` (`W(z) e^{W(z)} = z`), by Halley's iteration.
 *
 * @example
 * ```ts
 * import { lambertW } from "./aciq_alpha.ts";
 * const w = lambertW(48);
 * if (Math.abs(w * Math.exp(w) - 48) > 1e-10) throw new Error("bad");
 * ```
 */
export function lambertW(z: number): number {
  if (!(z >= 0) || !Number.isFinite(z)) {
    throw new QuantlabError("INVALID_ARGUMENT", `lambertW needs a finite z >= 0, got ${z}`);
  }
  if (z === 0) return 0;
  let w = z < 3 ? Math.log1p(z) : Math.log(z) - Math.log(Math.log(z));
  for (let i = 0; i < 100; i++) {
    const ew = Math.exp(w);
    const f = w * ew - z;
    const step = f / (ew * (w + 1) - ((w + 2) * f) / (2 * w + 2));
    w -= step;
    if (Math.abs(step) <= 1e-15 * Math.max(1, Math.abs(w))) break;
  }
  return w;
}

/**
 * The optimal clipping multiplier `alpha* / scale` for `bits` (2..16) bits:
 * `alpha*` in units of the Laplace scale `b` or the Gaussian `sigma`.
 *
 * @example
 * ```ts
 * import { aciqMultiplier } from "./aciq_alpha.ts";
 * if (Math.abs(aciqMultiplier("laplace", 2) - 2.83) > 0.005) throw new Error("bad");
 * if (Math.abs(aciqMultiplier("gaussian", 8) - 3.92) > 0.005) throw new Error("bad");
 * ```
 */
export function aciqMultiplier(prior: AciqPrior, bits: number): number {
  checkBits(bits, "ACIQ bits");
  const noise = 1 / (3 * 4 ** bits);
  if (prior === "laplace") return lambertW(3 * 4 ** bits);
  if (prior !== "gaussian") {
    throw new QuantlabError("INVALID_ARGUMENT", `ACIQ prior must be "laplace" or "gaussian", got "${prior}"`);
  }
  const c = Math.sqrt(2 / Math.PI);
  const g = (a: number) => a * erfc(a / Math.SQRT2) - c * Math.exp(-a * a / 2) + a * noise;
  let lo = 0, hi = 20;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (g(mid) < 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
