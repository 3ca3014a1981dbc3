/**
 * Starting points of distillation and the noise baseline.
 *
 * ZeroQ's quirk ({@link zeroqInit}): its `UniformDataset` draws `torch.randint(high=255)` (integers 0..254, 255
 * values, not 256) and returns `(r - 127.5) / 5418.75`. The comment says "mean 0 and variance 1" and
 * 5418.75 = 255^2 / 12 is the VARIANCE of U(-128, 127), but it divides by the variance instead of its square
 * root (73.6), so the start is uniform on [-0.0235, 0.0234] with standard deviation about 0.0136 (and mean
 * -0.5 / 5418.75 = -9.2e-5), not 1. The input term of the loss then pulls the images to std 1 within the
 * first few dozen Adam steps (lr 0.5). quantlab reproduces the quirk by default, with its own seeded generator
 * (xoshiro128**), so images differ from PyTorch's for the same seed but follow the same distribution.
 *
 * @module
 */
import type { Prng } from "../tensor/prng.ts";

/**
 * Fill `out` with ZeroQ's initial values `(randint[0, 255) - 127.5) / 5418.75`.
 *
 * @example
 * ```ts
 * import { zeroqInit } from "./init.ts";
 * import { Prng } from "../tensor/prng.ts";
 * const x = zeroqInit(new Prng(0), new Float32Array(1000));
 * const [lo, hi] = [Math.fround(-127.5 / 5418.75), Math.fround(126.5 / 5418.75)];
 * if (!x.every((v) => v >= lo && v <= hi) || !x.some((v) => v === lo)) throw new Error("range");
 * ```
 */
export function zeroqInit(rng: Prng, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = (rng.nextInt(255) - 127.5) / 5418.75;
  return out;
}

/**
 * Fill `out` with Gaussian noise N(mean, std^2): the "no knowledge" calibration baseline.
 *
 * @example
 * ```ts
 * import { gaussianNoise } from "./init.ts";
 * import { Prng } from "../tensor/prng.ts";
 * const x = gaussianNoise(new Prng(0), new Float32Array(10000));
 * const m = x.reduce((a, b) => a + b, 0) / x.length;
 * if (Math.abs(m) > 0.05) throw new Error(String(m));
 * ```
 */
export function gaussianNoise(rng: Prng, out: Float32Array, mean = 0, std = 1): Float32Array {
  return rng.fillNormal(out, mean, std) as Float32Array;
}
