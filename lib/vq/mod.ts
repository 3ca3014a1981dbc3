/**
 * Vector quantization: k-means clustering and product quantization at the tensor level, with the weight
 * layout of "And the Bit Goes Down" and compression accounting in bits.
 *
 * @example
 * ```ts
 * import { kmeans, productQuantizer } from "./mod.ts";
 * const x = new Float32Array([0, 0, 0, 1, 10, 10, 10, 11]);
 * const km = kmeans().clusters(2).seed(0).fit(x, 2);
 * if (km.assignments[0] === km.assignments[2]) throw new Error("bad clusters");
 * const pq = productQuantizer().subvectors(2).centroids(2).fit(x, 2);
 * if (pq.encode(x, 2).codes.length !== 8) throw new Error("bad codes");
 * ```
 *
 * @module
 */
export { type CompressionReport, pqCompression, type PqShape } from "./compression.ts";
export { kmeansPlusPlus, randomInit, samplePoints } from "./init.ts";
export {
  kmeans,
  KMeansBuilder,
  type KMeansConfig,
  type KMeansInit,
  KMeansModel,
  MAX_CLUSTERS,
  subsample,
  type TrainingSet,
} from "./kmeans.ts";
export { lloyd, type LloydOptions, type LloydResult, splitClusters } from "./lloyd.ts";
export { asMatrix, type Matrix, type MatrixInput } from "./matrix.ts";
export {
  assignNearest,
  type NearestBackend,
  type NearestRequest,
  prepareCentroids,
  type PreparedCentroids,
} from "./nearest.ts";
export {
  MAX_PQ_CENTROIDS,
  type PqCodeArray,
  type PqCodes,
  ProductQuantizer,
  productQuantizer,
  ProductQuantizerBuilder,
  type ProductQuantizerConfig,
  type ReconstructionError,
} from "./product_quantizer.ts";
export { type BlockOrder, blocksToWeight, type WeightBlocks, weightToBlocks } from "./weight_layout.ts";
