/**
 * The passes quantlab ships, under one name each, for `ptq(model).use(...)`:
 * `passes.foldBatchNorm()`, `passes.equalize()`, `passes.calibrate()`, `passes.biasCorrection()`.
 * New methods add a module with one pass factory and register it (pass.ts).
 *
 * @module
 */
import { biasCorrectionPass } from "./bias_correction.ts";
import { calibratePass } from "./calibrate_pass.ts";
import { equalizePass } from "./equalize.ts";
import { foldBatchNormPass } from "./fold_pass.ts";

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
  readonly foldBatchNorm: typeof foldBatchNormPass;
  readonly equalize: typeof equalizePass;
  readonly calibrate: typeof calibratePass;
  readonly biasCorrection: typeof biasCorrectionPass;
} = Object.freeze({
  foldBatchNorm: foldBatchNormPass,
  equalize: equalizePass,
  calibrate: calibratePass,
  biasCorrection: biasCorrectionPass,
});
