/**
 * Non-uniform scalar quantization: power-of-two levels, Lloyd-Max (optimal 1-D
 * k-means) levels and binary codes, with codebook encode / decode / fake-quantize.
 *
 * @module
 */
export * from "./sorted_slot.ts";
export * from "./codebook_kernels.ts";
export * from "./lloyd_max.ts";
export * from "./log2_levels.ts";
export * from "./binary_code.ts";
export * from "./nonuniform_quantizer.ts";
