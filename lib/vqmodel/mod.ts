/**
 * Model-level vector quantization: Deep Compression k-means weight sharing with centroid fine-tuning, and
 * product quantization of layers as in "And the Bit Goes Down" (activation-aware EM layer by layer, per-layer and
 * global codebook fine-tuning, BatchNorm re-estimation), with compressed ONNX export (`Gather(codebook, codes)`).
 *
 * @example
 * ```ts
 * import { vqModel } from "./mod.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
 * const q = await vqModel(model).kmeans({ bits: 2 }).quantize();
 * if (!(q.bitsPerWeight > 2 && q.bitsPerWeight < 2.5)) throw new Error(String(q.bitsPerWeight));
 * ```
 *
 * @module
 */
export { blockGram, captureValues, layerInputName } from "./activations.ts";
export { exportCompressed, type ExportedLayer, type ExportOptions } from "./export.ts";
export {
  allocateCentroids,
  type AllocationLayer,
  centroidsForBudget,
  defaultBlockSize,
  fitKMeansLayer,
  fitPqLayer,
  initializerValues,
  type KMeansLayerOptions,
  pqCentroids,
  type PqLayerOptions,
  weightSites,
} from "./fit.ts";
export {
  finetuneCodebooks,
  type Finetuned,
  type FinetuneOptions,
  reconstructedModel,
  reestimateBatchNorm,
} from "./finetune.ts";
export {
  blockSlots,
  type CentroidReduce,
  moveAxisFirst,
  VqLayer,
  type VqLayerInit,
  type VqMethod,
  type WeightSite,
} from "./layer.ts";
export {
  type FinetuneStageOptions,
  type KMeansModelOptions,
  type PqModelOptions,
  type VqLayerSummary,
  VqModel,
  vqModel,
  VqModelBuilder,
  type VqModelConfig,
} from "./vq_model.ts";
