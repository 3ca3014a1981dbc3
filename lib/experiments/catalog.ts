/**
 * The built-in experiments, registered in reading order. Later experiments
 * add themselves here (one import and one entry).
 *
 * @module
 */
import { type Experiment, registerExperiment } from "./registry.ts";
import { uniformExperiment } from "./uniform.ts";
import { calibrationExperiment } from "./calibration.ts";
import { granularityExperiment } from "./granularity.ts";
import { stochasticRoundingExperiment } from "./stochastic_rounding.ts";
import { nonUniformExperiment } from "./non_uniform.ts";
import { vectorQuantizationExperiment } from "./vector_quantization.ts";
import { binaryTernaryExperiment } from "./binary_ternary.ts";
import { ptqOnnxExperiment } from "./ptq_onnx.ts";
import { integerOnlyExperiment } from "./integer_only.ts";
import { zeroShotExperiment } from "./zero_shot.ts";
import { qatExperiment } from "./qat.ts";
import { ptqRoundingExperiment } from "./ptq_rounding.ts";
import { mixedPrecisionExperiment } from "./mixed_precision.ts";
import { extremeTrainingExperiment } from "./extreme_training.ts";
import { vqModelsExperiment } from "./vq_models.ts";

/**
 * The built-in experiments in order.
 *
 * @example
 * ```ts
 * import { BUILTIN_EXPERIMENTS } from "./catalog.ts";
 * const ids = BUILTIN_EXPERIMENTS.map((e) => e.id);
 * if (ids[0] !== "uniform" || new Set(ids).size !== ids.length) throw new Error("bad");
 * ```
 */
export const BUILTIN_EXPERIMENTS: readonly Experiment[] = Object.freeze([
  uniformExperiment,
  calibrationExperiment,
  granularityExperiment,
  stochasticRoundingExperiment,
  nonUniformExperiment,
  vectorQuantizationExperiment,
  binaryTernaryExperiment,
  ptqOnnxExperiment,
  integerOnlyExperiment,
  zeroShotExperiment,
  ptqRoundingExperiment,
  qatExperiment,
  extremeTrainingExperiment,
  mixedPrecisionExperiment,
  vqModelsExperiment,
]);

for (const e of BUILTIN_EXPERIMENTS) registerExperiment(e, { replace: true });
