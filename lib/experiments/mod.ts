/**
 * Experiments: each survey comparison as a function returning a {@link Report},
 * and the registry `deno task reproduce` runs.
 *
 * @module
 */
import "./catalog.ts";

export * from "./report.ts";
export * from "./registry.ts";
export { citeFindings, CLAIM_REFERENCES, type ClaimReference } from "./references.ts";
export { type Distribution, sample as sampleDistribution } from "./sources.ts";
export { BUILTIN_EXPERIMENTS } from "./catalog.ts";
export { type ErrorMeasure, measureError, uniformExperiment, uniformQuantization } from "./uniform.ts";
export { calibrationComparison, calibrationExperiment } from "./calibration.ts";
export { convWeights, granularityComparison, granularityExperiment } from "./granularity.ts";
export {
  type EpochRecord,
  type LowPrecisionTraining,
  meanRoundingError,
  stochasticRounding,
  stochasticRoundingExperiment,
  trainSoftmax,
} from "./stochastic_rounding.ts";
export {
  asMatrixView,
  describeWeight,
  type ModelInput,
  modelWeights,
  pickWeight,
  type SyntheticWeightOptions,
  syntheticWeights,
  type WeightKind,
  type WeightStats,
  weightStats,
  type WeightTensor,
} from "./weights.ts";
export {
  type LevelMethod,
  levelMethods,
  nonUniformComparison,
  nonUniformExperiment,
  type WeightExperimentOptions,
} from "./non_uniform.ts";
export {
  equalBits,
  type EqualBitsRow,
  interpolateAt,
  scalarKMeans,
  vectorQuantizationComparison,
  vectorQuantizationExperiment,
  type VqPoint,
  vqSweep,
} from "./vector_quantization.ts";
export {
  binaryTernaryComparison,
  binaryTernaryExperiment,
  type ExtremeMethod,
  extremeMethods,
  type ExtremeResult,
  thresholdSweep,
} from "./binary_ternary.ts";
export {
  type LoadedModel,
  loadExperimentModel,
  loadFashionOrNote,
  type OnnxExperimentOptions,
  ptqOnnxComparison,
  ptqOnnxExperiment,
  skippedReport,
} from "./ptq_onnx.ts";
export {
  integerOnlyComparison,
  integerOnlyExperiment,
  requantizationTable,
  type RequantLayer,
} from "./integer_only.ts";
export { type ZeroShotComparison, zeroShotComparison, zeroShotExperiment } from "./zero_shot.ts";
export {
  type ComparedAllocation,
  type MixedPrecisionComparison,
  mixedPrecisionComparison,
  mixedPrecisionExperiment,
  type MixedPrecisionSetup,
} from "./mixed_precision.ts";
export {
  type MixedPrecisionQat,
  mixedPrecisionQat,
  type MixedPrecisionQatOptions,
  type MixedQatRun,
  type QatBudget,
} from "./mixed_precision_qat.ts";
export {
  type ExtremeTrainingComparison,
  extremeTrainingComparison,
  extremeTrainingExperiment,
  type ExtremeTrainingOptions,
  extremeTrainingReport,
  type ExtremeTrainingRow,
  type ExtremeTrainingRuns,
  extremeTrainingRuns,
} from "./extreme_training.ts";
export {
  type VqModelsComparison,
  vqModelsComparison,
  vqModelsExperiment,
  type VqModelsOptions,
  type VqModelsRow,
  type VqModelsSettings,
} from "./vq_models.ts";
export {
  QAT_METHODS,
  type QatComparison,
  qatComparison,
  type QatComparisonOptions,
  type QatComparisonRun,
  qatExperiment,
  type QatMethod,
} from "./qat.ts";
export {
  type CurvePoint,
  type LayerErrorRow,
  type PtqRoundingComparison,
  ptqRoundingComparison,
  ptqRoundingExperiment,
  type PtqRoundingMethod,
  type PtqRoundingModel,
  type PtqRoundingOptions,
  type PtqRoundingRow,
  type PtqRoundingRun,
  ptqRoundingRuns,
} from "./ptq_rounding.ts";
