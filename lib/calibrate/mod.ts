/**
 * Range calibration: observers that stream over batches and choose clipping ranges.
 *
 * @module
 */
import { minMax } from "./min_max.ts";

export type { Calibrator, ClipRange, Observer, ObserverContext } from "./observer.ts";
export { minMax };

/**
 * The calibrators, as a namespace: `calibrate.minMax()`.
 *
 * @example
 * ```ts
 * import { calibrate } from "./mod.ts";
 * if (calibrate.minMax().name !== "minmax") throw new Error("bad");
 * ```
 */
export const calibrate = Object.freeze({
  minMax,
});
