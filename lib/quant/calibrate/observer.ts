/**
 * The calibration contract: observers stream over batches and report a
 * clipping range per slot; calibrators are immutable recipes that create them.
 *
 * @module
 */
import type { Tensor } from "../../tensor/tensor.ts";
import type { QuantScheme } from "../params.ts";

/** What an observer is calibrating for. */
export interface ObserverContext {
  /** The integer grid the range will be mapped to (KL, MSE and ACIQ depend on it). */
  readonly scheme: QuantScheme;
  /** Per-channel axis, or `undefined` for per-tensor. */
  readonly axis?: number;
  /** Name of the tensor being observed, for error messages. */
  readonly name?: string;
}

/** A clipping range per slot (one slot per-tensor, one per channel per-channel). */
export interface ClipRange {
  /** Lower clipping bound of each slot. */
  readonly min: Float64Array;
  /** Upper clipping bound of each slot. */
  readonly max: Float64Array;
}

/** A streaming statistics collector. Never holds all the data. */
export interface Observer {
  /** Calibrator name, e.g. `"minmax"`. */
  readonly name: string;
  /** Number of batches observed so far. */
  readonly batches: number;
  /** Fold one batch in (float32; the per-channel axis refers to this batch's shape). */
  observe(batch: Tensor<"float32">): void;
  /** The clipping range chosen from everything observed. Throws `NOT_CALIBRATED` before any batch. */
  range(): ClipRange;
}

/** A calibrator as JSON: its name and settings (rebuilt by `calibratorFromRecipe` in ./recipe.ts). */
export interface CalibratorRecipe {
  /** The calibrator's `name`, e.g. `"percentile"`. */
  readonly name: string;
  /** Its options, JSON-safe (what the factory takes, e.g. `{ percentile: 99.9, bins: 2048 }`). */
  readonly options: Readonly<Record<string, number | string>>;
}

/** An immutable recipe for observers (what `calibrate.minMax()` etc. return). */
export interface Calibrator {
  /** Short name, e.g. `"entropy"`. */
  readonly name: string;
  /** Make a fresh observer for a scheme and granularity. */
  create(context: ObserverContext): Observer;
  /** Readable description with settings. */
  toString(): string;
  /**
   * JSON-safe description (every calibrator quantlab ships has one; a hand-made calibrator without it can be
   * used but not written into a recipe).
   */
  toRecipe?(): CalibratorRecipe;
}
