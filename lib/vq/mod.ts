/**
 * Vector quantization: k-means clustering and product quantization at the tensor level, with the weight
 * layout of "And the Bit Goes Down" and compression accounting in bits. Both builders are weight quantizers
 * (`kmeans().bits(4).fitWeights(w)`: Deep Compression weight sharing; `productQuantizer().fitWeights(w)`:
 * kill-the-bits blocks).
 *
 * @example
 * ```ts
 * import { kmeans, productQuantizer } from "./mod.ts";
 * const x = new Float32Array([0, 0, 0, 1, 10, 10, 10, 11]);
 * const km = kmeans().centroids(2).seed(0).fit(x, 2);
 * if (km.assignments[0] === km.assignments[2]) throw new Error("bad clusters");
 * const pq = productQuantizer().subvectors(2).centroids(2).fit(x, 2);
 * if (pq.encode(x, 2).codes.length !== 8) throw new Error("bad codes");
 * ```
 *
 * @module
 */
export { type CompressionReport, pqCompression, type PqShape } from "./compression.ts";
export { kmeansPlusPlus, linearInit, randomInit, samplePoints } from "./init.ts";
export {
  kmeans,
  KMeansBuilder,
  type KMeansConfig,
  kmeansFromRecipe,
  type KMeansInit,
  KMeansModel,
  KMeansWeights,
  MAX_KMEANS_CENTROIDS,
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
  productFromRecipe,
  ProductQuantizer,
  productQuantizer,
  ProductQuantizerBuilder,
  type ProductQuantizerConfig,
  ProductWeights,
  type ReconstructionError,
} from "./product_quantizer.ts";
export { type BlockOrder, blocksToWeight, type WeightBlocks, weightToBlocks } from "./weight_layout.ts";
