/**
 * The passes quantlab ships, under one name each, for `ptq(model).use(...)`:
 * `passes.foldBatchNorm()`, `passes.equalize()`, `passes.calibrate()`, `passes.biasCorrection()`, `passes.ocs()`.
 * New methods add a module with one pass factory and register it (pass.ts).
 *
 * @module
 */
import { biasCorrectionPass } from "./bias_correction.ts";
import { calibratePass } from "./calibrate_pass.ts";
import { type EqualizeOptions, equalizePass } from "./equalize.ts";
import { foldBatchNormPass } from "./fold_pass.ts";
import { ocs, type OcsOptions } from "./ocs.ts";
import type { PtqPass } from "./pass.ts";

/**
 * Pass factories by name.
 *
 * @example
 * ```ts
 * import { passes } from "./passes.ts";
 * const list = [passes.foldBatchNorm(), passes.equalize(), passes.calibrate(), passes.biasCorrection({ count: 64 })];
 * if (list.map((p) => p.stage).join() !== "graph,graph,calibrate,calibrated") throw new Error("bad");
 * ```
 */
export const passes: {
  /** BatchNorm folding (stage `graph`). */
  readonly foldBatchNorm: () => PtqPass;
  /** Cross-layer equalization (stage `graph`). */
  readonly equalize: (options?: EqualizeOptions) => PtqPass;
  /** Activation calibration (stage `calibrate`; added by default). */
  readonly calibrate: () => PtqPass;
  /** Empirical bias correction (stage `calibrated`). */
  readonly biasCorrection: (options?: { count?: number }) => PtqPass;
  /** Outlier channel splitting (stage `calibrated`, before passes that learn weights). */
  readonly ocs: (options?: OcsOptions) => PtqPass;
} = Object.freeze({
  foldBatchNorm: foldBatchNormPass,
  equalize: equalizePass,
  calibrate: calibratePass,
  biasCorrection: biasCorrectionPass,
  ocs,
});
