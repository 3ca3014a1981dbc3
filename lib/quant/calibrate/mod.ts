/**
 * Range calibration: observers that stream over batches and choose clipping ranges.
 *
 * Every calibrator works per-tensor and per-channel (`ObserverContext.axis`),
 * folds batches in one at a time without holding the data, and rejects empty
 * or non-finite batches (`EMPTY_TENSOR`, `NON_FINITE`) and batches whose
 * channel count differs from earlier ones (`SHAPE_MISMATCH`).
 *
 * @module
 */
import { minMax } from "./min_max.ts";
import { movingAverage, type MovingAverageOptions } from "./moving_average.ts";
import { percentile, type PercentileOptions } from "./percentile.ts";
import { entropy, type EntropyOptions } from "./entropy.ts";
import { mse, type MseOptions } from "./mse.ts";
import { aciq, type AciqOptions } from "./aciq.ts";
import type { Calibrator } from "./observer.ts";

export type { Calibrator, CalibratorRecipe, ClipRange, Observer, ObserverContext } from "./observer.ts";
export { calibratorFromRecipe, calibratorRecipe } from "./recipe.ts";
export type { MovingAverageOptions } from "./moving_average.ts";
export type { PercentileOptions } from "./percentile.ts";
export type { EntropyOptions } from "./entropy.ts";
export type { MseOptions } from "./mse.ts";
export type { AciqOptions } from "./aciq.ts";
export type { AciqPrior } from "./aciq_alpha.ts";
export { aciqMultiplier } from "./aciq_alpha.ts";
// Only `minMax` is exported by name besides the namespace: `mse` would clash with the
// error metric of lib/quant/metrics.ts in the root module's `export *`.
export { minMax };

/**
 * The calibrators, as a namespace: `calibrate.entropy()`, for
 * `quantizer().calibrate(calibrate.entropy())`.
 *
 * @example
 * ```ts
 * import { calibrate } from "./mod.ts";
 * if (calibrate.minMax().name !== "minmax") throw new Error("bad");
 * if (calibrate.entropy().toString() !== "entropy(bins=2048, startBin=128)") throw new Error("bad");
 * if (calibrate.aciq({ prior: "gaussian" }).toString() !== "aciq(prior=gaussian)") throw new Error("bad");
 * ```
 */
export const calibrate: {
  /** Running min/max (PyTorch's MinMaxObserver). */
  readonly minMax: () => Calibrator;
  /** Moving-average min/max (PyTorch's MovingAverageMinMaxObserver). */
  readonly movingAverage: (options?: MovingAverageOptions) => Calibrator;
  /** Percentile clipping. */
  readonly percentile: (options?: PercentileOptions) => Calibrator;
  /** KL-divergence (entropy) calibration. */
  readonly entropy: (options?: EntropyOptions) => Calibrator;
  /** MSE-optimal clipping. */
  readonly mse: (options?: MseOptions) => Calibrator;
  /** ACIQ analytic clipping. */
  readonly aciq: (options?: AciqOptions) => Calibrator;
} = Object.freeze({
  minMax,
  movingAverage,
  percentile,
  entropy,
  mse,
  aciq,
});
