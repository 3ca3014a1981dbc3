/**
 * quantlab: neural-network quantization research in Deno and Jupyter.
 *
 * The root module holds what a researcher reaches for: the tensor-level quantizer builders, the model-level
 * core (`ptq()`, plans, passes, sensitivity), datasets and readers, the gradient tools, zero-shot quantization,
 * display helpers and the survey's experiments. Everything else lives in one subpath per area (see `deno.json`
 * `exports`): `quantlab/quant`, `quantlab/calibrate`, `quantlab/integer`, `quantlab/nonuniform`,
 * `quantlab/extreme`, `quantlab/vq`, `quantlab/onnx`, `quantlab/data`, `quantlab/grad`, `quantlab/models`,
 * `quantlab/ptq`, `quantlab/zeroshot`, `quantlab/adaround`, `quantlab/mixed`, `quantlab/qat`, `quantlab/notebook`,
 * `quantlab/viz`, `quantlab/experiments`, `quantlab/stats`, `quantlab/sweep`, `quantlab/tensor` (by path: `lib/<area>/mod.ts`).
 *
 * @example
 * ```ts
 * import { quantizer } from "./mod.ts";
 * const { values, params } = quantizer().int(4).symmetric().perChannel(0).fakeQuantize(
 *   [0.1, -0.5, 0.25, 2, -1, 0.5],
 *   [2, 3],
 * );
 * if (params.scale.length !== 2 || values.data[3] !== 2) throw new Error("bad");
 * ```
 *
 * @module
 */
// Core.
export { QuantlabError, type QuantlabErrorCode } from "./lib/errors.ts";
export { Tensor } from "./lib/tensor/tensor.ts";
export { Prng } from "./lib/tensor/prng.ts";

// Tensor-level quantizers (each one a WeightQuantizer) and calibrators.
export { quantizer, QuantizerBuilder } from "./lib/quant/quantizer.ts";
export type { QuantParams } from "./lib/quant/params.ts";
export type { FittedWeights, WeightQuantizer } from "./lib/quant/weight_quantizer.ts";
export { mse, sqnr } from "./lib/quant/metrics.ts";
export { calibrate } from "./lib/quant/calibrate/mod.ts";
export { dyadicApproximation, quantizeMultiplier } from "./lib/integer/dyadic.ts";
export { nonUniform } from "./lib/nonuniform/nonuniform_quantizer.ts";
export { binary } from "./lib/extreme/binary.ts";
export { ternary } from "./lib/extreme/ternary.ts";
export { kmeans } from "./lib/vq/kmeans.ts";
export { productQuantizer } from "./lib/vq/product_quantizer.ts";
export { weightToBlocks } from "./lib/vq/weight_layout.ts";

// Models and data.
export { OnnxModel } from "./lib/onnx/model.ts";
export { foldBatchNorm } from "./lib/onnx/fold_bn.ts";
export { createSession } from "./lib/onnx/session.ts";
export { batches, subset } from "./lib/data/batching.ts";
export { type ImageDataset, imageDataset, withNormalization } from "./lib/data/images.ts";
export { loadDigits } from "./lib/data/digits.ts";
export { loadFashionMnist } from "./lib/data/fashion_mnist.ts";
export {
  asReader,
  type InputReader,
  readerFromDataset,
  readerFromFeeds,
  readerFromNpy,
  readerFromTensors,
} from "./lib/data/reader.ts";
export { digitsCnn } from "./lib/models/digits_cnn.ts";
export { resnet8 } from "./lib/models/resnet8.ts";

// Gradients and training.
export { buildGradientGraph } from "./lib/grad/compiler.ts";
export { GradientSession } from "./lib/grad/session.ts";
export { crossEntropyLoss, klDivLoss } from "./lib/grad/losses.ts";
export { adam, sgd } from "./lib/grad/optim.ts";
export { Trainer } from "./lib/grad/train.ts";

// The model-level core.
export { ptq, type PtqPipeline } from "./lib/ptq/pipeline.ts";
export { QuantPlan } from "./lib/ptq/plan.ts";
export { buildPlan, type QuantPolicy } from "./lib/ptq/policy.ts";
export { passes } from "./lib/ptq/passes.ts";
export { planFromJson } from "./lib/ptq/recipes.ts";
export { materializeQdq, materializeTrainable } from "./lib/ptq/materialize.ts";
export { analyzeSensitivity } from "./lib/ptq/sensitivity.ts";
export { compareOutputs, evaluateAccuracy } from "./lib/ptq/evaluate.ts";

// Methods.
export { zeroShot } from "./lib/zeroshot/distill.ts";
export { quantizeZeroShot } from "./lib/zeroshot/level1.ts";
export { fineTuneZeroShot } from "./lib/zeroshot/level2.ts";
export { adaRound } from "./lib/adaround/adaround_pass.ts";
export { adaQuant } from "./lib/adaround/adaquant.ts";
export { brecq } from "./lib/adaround/brecq.ts";
export { qat, type QatPipeline } from "./lib/qat/qat.ts";
export {
  type HawqAnalysis,
  hawqAnalysis,
  type HawqLayer,
  type HawqOptions,
  type MixedAllocation,
  type MixedBudgets,
} from "./lib/mixed/hawq.ts";
export { vqModel, type VqModelBuilder } from "./lib/vqmodel/vq_model.ts";

// Presentation.
export { show } from "./lib/notebook/show.ts";
export { table } from "./lib/notebook/table.ts";
export { progress } from "./lib/notebook/progress.ts";
export { notebookQuick } from "./lib/notebook/quick.ts";
export { inspectTensor } from "./lib/viz/inspect.ts";

// The survey's experiments (notebooks 01-10, `deno task reproduce`).
export {
  binaryTernaryComparison,
  calibrationComparison,
  convWeights,
  granularityComparison,
  integerOnlyComparison,
  listExperiments,
  loadExperimentModel,
  nonUniformComparison,
  pickWeight,
  ptqOnnxComparison,
  Report,
  sampleDistribution,
  stochasticRounding,
  uniformQuantization,
  vectorQuantizationComparison,
  zeroShotComparison,
} from "./lib/experiments/mod.ts";
export {
  type ComparedAllocation,
  type MixedPrecisionComparison,
  mixedPrecisionComparison,
  type MixedPrecisionSetup,
} from "./lib/experiments/mixed_precision.ts";
export {
  type MixedPrecisionQat,
  mixedPrecisionQat,
  type MixedPrecisionQatOptions,
  type MixedQatRun,
  type QatBudget,
} from "./lib/experiments/mixed_precision_qat.ts";
export { type QatComparison, qatComparison } from "./lib/experiments/qat.ts";
export { extremeTrainingReport, extremeTrainingRuns } from "./lib/experiments/extreme_training.ts";
export { type VqModelsComparison, vqModelsComparison } from "./lib/experiments/vq_models.ts";
export {
  type CurvePoint,
  type LayerErrorRow,
  type PtqRoundingComparison,
  ptqRoundingComparison,
  type PtqRoundingMethod,
  type PtqRoundingModel,
  type PtqRoundingOptions,
  type PtqRoundingRow,
  type PtqRoundingRun,
  ptqRoundingRuns,
} from "./lib/experiments/ptq_rounding.ts";
export { compareByom, loadByom } from "./lib/experiments/byom.ts";

// Types referenced by the names above (documentation only; no runtime surface).
export type { AdaRoundInputs, AdaRoundOptions } from "./lib/adaround/adaround_pass.ts";
export type { AdaQuantInputs, AdaQuantOptions } from "./lib/adaround/adaquant.ts";
export type { BrecqInputs, BrecqOptions } from "./lib/adaround/brecq.ts";
export type { Batch, BatchOptions } from "./lib/data/batching.ts";
export type { LoadDigitsOptions } from "./lib/data/digits.ts";
export type { FashionMnistOptions } from "./lib/data/fashion_mnist.ts";
export type { ImageDatasetSpec, Normalization, NormalizationSpec } from "./lib/data/images.ts";
export type {
  ArrayReaderOptions,
  ArrayWithShape,
  AsReaderOptions,
  DatasetReaderOptions,
  InputFeeds,
  ReaderSource,
} from "./lib/data/reader.ts";
export type { ByomComparison, ByomReference, ByomRow } from "./lib/experiments/byom.ts";
export type { WeightExperimentOptions } from "./lib/experiments/non_uniform.ts";
export type { LoadedModel, OnnxExperimentOptions } from "./lib/experiments/ptq_onnx.ts";
export type { Experiment, ExperimentOptions, Json, TrialConfig } from "./lib/experiments/registry.ts";
export type { Finding, PaperReference, ReportBlock, SeedVerdict } from "./lib/experiments/report.ts";
export type { Distribution } from "./lib/experiments/sources.ts";
export type { ModelInput, WeightKind, WeightTensor } from "./lib/experiments/weights.ts";
export type {
  ExtremeTrainingComparison,
  ExtremeTrainingOptions,
  ExtremeTrainingRow,
  ExtremeTrainingRuns,
} from "./lib/experiments/extreme_training.ts";
export type { VqModelsOptions, VqModelsRow, VqModelsSettings } from "./lib/experiments/vq_models.ts";
export type { ZeroShotComparison } from "./lib/experiments/zero_shot.ts";
export type {
  BinaryBuilder,
  BinaryConfig,
  BinaryFakeQuantResult,
  BinaryQuantResult,
  BinaryScale,
  BinaryWeights,
  ExtremeRounding,
  FittedBinary,
} from "./lib/extreme/binary.ts";
export type { ExtremeGranularity } from "./lib/extreme/slot_stats.ts";
export type { TtqGradients } from "./lib/extreme/ste.ts";
export type {
  FittedTernary,
  TernaryBuilder,
  TernaryConfig,
  TernaryFakeQuantResult,
  TernaryPacking,
  TernaryQuantResult,
  TernaryScales,
  TernaryWeights,
  ThresholdBase,
} from "./lib/extreme/ternary.ts";
export type { BatchNormStatSpec, GradientGraph, GradientGraphOptions, ParamSpec } from "./lib/grad/compiler.ts";
export type { AttrValue, Emitter } from "./lib/grad/emitter.ts";
export type { LossContext, LossTerm } from "./lib/grad/losses.ts";
export type { AdamOptions, Optimizer, ParamMap, SgdOptions } from "./lib/grad/optim.ts";
export type { ReduceLROnPlateau, Schedule } from "./lib/grad/schedule.ts";
export type { BatchNormStats, GradientResult } from "./lib/grad/session.ts";
export type {
  Evaluation,
  FitOptions,
  ProgressFactory,
  ProgressReporter,
  StepResult,
  TrainerTimings,
  TrainingEpoch,
  TrainResult,
} from "./lib/grad/train.ts";
export type { LabelledBatch } from "./lib/grad/train_data.ts";
export type { DyadicApproximation, DyadicPrecision, QuantizedMultiplier } from "./lib/integer/dyadic.ts";
export type { LatencyTable } from "./lib/mixed/hawq.ts";
export type { BitLayer, BitProblem } from "./lib/mixed/ilp.ts";
export type {
  KernelTiming,
  LatencyKernel,
  LatencyKey,
  LayerLatency,
  MeasuredLatency,
  TimingStats,
} from "./lib/mixed/latency.ts";
export type { LayerEigenvalue, LayerTrace, TraceOptions, TraceProgress, TraceSettings } from "./lib/mixed/traces.ts";
export type { LevelRounding } from "./lib/nonuniform/codebook_kernels.ts";
export type { LloydInit } from "./lib/nonuniform/lloyd_max.ts";
export type { Log2Scale } from "./lib/nonuniform/log2_levels.ts";
export type {
  FittedNonUniform,
  LevelKind,
  NonUniformBuilder,
  NonUniformConfig,
  NonUniformGranularity,
  NonUniformWeights,
} from "./lib/nonuniform/nonuniform_quantizer.ts";
export type { JsonObject, MediaBundle } from "./lib/notebook/display.ts";
export type { Progress, ProgressOptions, ProgressSink } from "./lib/notebook/progress.ts";
export type { Cell, Column, Row, Table, TableOptions } from "./lib/notebook/table.ts";
export type { FoldResult } from "./lib/onnx/fold_bn.ts";
export type { GraphBuilder } from "./lib/onnx/graph.ts";
export type { Fingerprint, ModelSource } from "./lib/onnx/io.ts";
export type {
  AttributeProto,
  Dim,
  GraphProto,
  ModelProto,
  NodeProto,
  OpsetImport,
  StringEntry,
  TensorProto,
  TypeProto,
  ValueInfo,
} from "./lib/onnx/proto.ts";
export type { Backend, FeedValue, OrtSession, SessionOptions } from "./lib/onnx/session.ts";
export type { TensorValues } from "./lib/onnx/tensor_data.ts";
export type { CorrectedLayer } from "./lib/ptq/bias_correction.ts";
export type { EqualizedPair, EqualizeOptions } from "./lib/ptq/equalize.ts";
export type {
  CompareOutputsOptions,
  EvalOptions,
  EvalResult,
  OutputComparison,
  OutputDifference,
} from "./lib/ptq/evaluate.ts";
export type {
  MaterializeInput,
  QdqModel,
  TrainableActivations,
  TrainableModel,
  TrainableOptions,
  TrainableWeights,
} from "./lib/ptq/materialize.ts";
export type { OcsLayerRecord, OcsOptions } from "./lib/ptq/ocs.ts";
export type { PassContext, PassRecord, PassStage, PtqPass, PtqState } from "./lib/ptq/pass.ts";
export type { CalibrationSource, PtqConfig, PtqModels } from "./lib/ptq/pipeline.ts";
export type {
  ActivationEntry,
  BiasEntry,
  PlanEntry,
  PlanEntryJson,
  PlanRole,
  QuantPlanJson,
  WeightEntry,
} from "./lib/ptq/plan.ts";
export type { ActivationCandidate, NodeInfo, NodeMatcher, NodeOverride, Placement } from "./lib/ptq/policy.ts";
export type { LoweringResult } from "./lib/ptq/qoperator.ts";
export type { PtqReport, PtqReportData, ReportRow } from "./lib/ptq/report.ts";
export type { SensitivityOptions, SensitivityResult, SensitivityRow } from "./lib/ptq/sensitivity.ts";
export type { DistillSpec, OptimizerSpec, QatActivations, QatEpoch, QatRecipe, QatWeights } from "./lib/qat/qat.ts";
export type { QatEvaluation, QatResult, QatRun } from "./lib/qat/result.ts";
export type { DorefaWeight } from "./lib/qat/dorefa.ts";
export type { ExtremeTrainMethod } from "./lib/qat/extremes.ts";
export type { QatComparisonOptions, QatComparisonRun, QatMethod } from "./lib/experiments/qat.ts";
export type { BitAccounting } from "./lib/quant/accounting.ts";
export type { AciqOptions } from "./lib/quant/calibrate/aciq.ts";
export type { AciqPrior } from "./lib/quant/calibrate/aciq_alpha.ts";
export type { EntropyOptions } from "./lib/quant/calibrate/entropy.ts";
export type { MovingAverageOptions } from "./lib/quant/calibrate/moving_average.ts";
export type { MseOptions } from "./lib/quant/calibrate/mse.ts";
export type {
  Calibrator,
  CalibratorRecipe,
  ClipRange,
  Observer,
  ObserverContext,
} from "./lib/quant/calibrate/observer.ts";
export type { PercentileOptions } from "./lib/quant/calibrate/percentile.ts";
export type { Granularity, QuantScheme } from "./lib/quant/params.ts";
export type {
  DynamicMode,
  FakeQuantResult,
  FittedQuantizer,
  QuantizerConfig,
  QuantResult,
  UniformWeights,
} from "./lib/quant/quantizer.ts";
export type { RoundingMode } from "./lib/quant/rounding.ts";
export type {
  EncodedWeights,
  FittedWeightsBase,
  WeightFitOptions,
  WeightQuantizerKind,
  WeightQuantizerRecipe,
} from "./lib/quant/weight_quantizer.ts";
export type { DType, DTypeArrays, FloatInput } from "./lib/tensor/tensor.ts";
export type { Chart } from "./lib/viz/chart.ts";
export type { ImageGrid } from "./lib/viz/image_grid.ts";
export type { TensorStats, TensorView } from "./lib/viz/inspect.ts";
export type { VegaLiteSpec } from "./lib/viz/render.ts";
export type { CompressionReport } from "./lib/vq/compression.ts";
export type { KMeansBuilder, KMeansConfig, KMeansInit, KMeansModel, KMeansWeights } from "./lib/vq/kmeans.ts";
export type { MatrixInput } from "./lib/vq/matrix.ts";
export type { NearestBackend } from "./lib/vq/nearest.ts";
export type {
  PqCodeArray,
  PqCodes,
  ProductQuantizer,
  ProductQuantizerBuilder,
  ProductQuantizerConfig,
  ProductWeights,
  ReconstructionError,
} from "./lib/vq/product_quantizer.ts";
export type { BlockOrder, WeightBlocks } from "./lib/vq/weight_layout.ts";
export type { ExportedLayer, ExportOptions } from "./lib/vqmodel/export.ts";
export type { CentroidReduce, VqLayer, VqLayerInit, VqMethod, WeightSite } from "./lib/vqmodel/layer.ts";
export type {
  FinetuneStageOptions,
  KMeansModelOptions,
  PqModelOptions,
  VqLayerSummary,
  VqModel,
  VqModelConfig,
} from "./lib/vqmodel/vq_model.ts";
export type { BatchNormTap } from "./lib/zeroshot/bn_taps.ts";
export type {
  LabelTargets,
  ZeroShotBuilder,
  ZeroShotConfig,
  ZeroShotData,
  ZeroShotLossGraph,
} from "./lib/zeroshot/distill.ts";
export type { ZeroShotCalibration, ZeroShotQuantized, ZeroShotQuantizeOptions } from "./lib/zeroshot/level1.ts";
export type { FineTuned, FineTuneOptions } from "./lib/zeroshot/level2.ts";
export type { StatisticsTarget } from "./lib/zeroshot/loss.ts";
