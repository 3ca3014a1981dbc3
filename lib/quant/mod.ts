/**
 * Uniform affine quantization: parameters, kernels, rounding, the fluent builder and error measures.
 *
 * @module
 */
export * from "./params.ts";
export * from "./rounding.ts";
export * from "./affine.ts";
export * from "./quantizer.ts";
export * from "./metrics.ts";
export { forEachSegment, slotMinMax } from "./slots.ts";
